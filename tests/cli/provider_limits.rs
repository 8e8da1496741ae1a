//! The scenario of issue 11's "done": a loopback fake provider that enforces
//! requests per minute, input and output tokens per minute apart, and
//! requests per day, saying so in Anthropic's and the IETF headers; eight
//! paced workers whose profile is set twice too high on every limit learn the
//! real ones from the first answers and meet at most one 429 after them,
//! while eight naive retry loops meet many.
//!
//! Minutes pass in seconds: the provider's window is 1.5 s of real time,
//! which it reports as a minute (`time_scale` 40), and the pacer runs on a
//! clock 40 times faster than real time, so both agree on every reset.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use specsmith::rate_limits::clock::Clock;
use specsmith::rate_limits::extended::ExtendedLimits;
use specsmith::rate_limits::owner::Owner;
use specsmith::rate_limits::pacing::{PaceRequest, PacingError, SharedPacer};
use specsmith::rate_limits::retry::{Classification, ErrorKind};
use specsmith::rate_limits::scheduler::{SchedulerError, WaitReason};
use specsmith::rate_limits::store::MemoryStore;
use specsmith::rate_limits::usage::find_usage;
use specsmith::rate_limits::{Catalog, Layer, Profile};

use crate::fake_provider::{chat_body, post_json, FakeProvider, FakeProviderConfig};

/// How much faster than real time both clocks run.
const SCALE: u32 = 40;
/// The provider's clock at its start, and the pacer's (2026-12-02T00:00:00Z).
const EPOCH_MS: u64 = 1_796_169_600_000;
/// What the provider enforces.
const RPM: u64 = 12;
const ITPM: u64 = 1_200;
const OTPM: u64 = 200;
const DAILY: u64 = 24;
const WORKERS: usize = 8;
/// Each call: 100 prompt tokens, at most 40 out, 20 used.
const PROMPT: u64 = 100;
const MAX_OUT: u64 = 40;

/// A clock `SCALE` times faster than real time, from `EPOCH_MS`.
struct ScaledClock {
    started: Instant,
}

impl Clock for ScaledClock {
    fn now(&self) -> u64 {
        EPOCH_MS + self.started.elapsed().as_millis() as u64 * u64::from(SCALE)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration / SCALE);
    }

    fn wait_timeout<'a, T>(
        &self,
        condvar: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        condvar
            .wait_timeout(guard, timeout / SCALE)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }
}

fn provider(started: &mut Instant) -> FakeProvider {
    let provider = FakeProvider::start(FakeProviderConfig {
        model: "m".to_owned(),
        rpm: RPM,
        tpm: 1_000_000,
        window: Duration::from_millis(60_000 / u64::from(SCALE)),
        completion_tokens: 20,
        latency: Duration::from_millis(5),
        input_tpm: Some(ITPM),
        output_tpm: Some(OTPM),
        daily_requests: Some(DAILY),
        time_scale: SCALE,
        virtual_epoch_ms: EPOCH_MS,
        ..FakeProviderConfig::default()
    })
    .expect("start the fake provider");
    *started = provider.started();
    provider
}

/// What a run of the workers met.
#[derive(Debug, Default)]
struct Tally {
    successes: AtomicUsize,
    /// 429s answered after the first answer that carried headers.
    late_429s: AtomicUsize,
    all_429s: AtomicUsize,
    answered: AtomicUsize,
}

fn rate_limited(retry_after: Option<f64>) -> Classification {
    Classification {
        kind: ErrorKind::RateLimit,
        is_rate_limit: true,
        retryable: true,
        retry_after_seconds: retry_after,
        status_code: Some(429),
        message: String::new(),
        resets_at: None,
        whole_account: false,
    }
}

#[test]
fn paced_workers_with_a_profile_twice_too_high_meet_at_most_one_429_after_the_first_headers() {
    let mut started = Instant::now();
    let provider = provider(&mut started);
    // Every limit of the profile twice what the provider enforces.
    let profile = Profile::new("anthropic", "m", 2 * RPM, 2_000_000, 1.0, WORKERS as u32)
        .unwrap()
        .with_extended(ExtendedLimits {
            itpm: Some(2 * ITPM),
            otpm: Some(2 * OTPM),
            rpd: Some(2 * DAILY),
            ..ExtendedLimits::default()
        });
    let mut catalog = Catalog::default();
    catalog.add_layer(Layer::Project, vec![profile]);
    // The window margin covers the way from admission to arrival, which the
    // scaled clock stretches 40 times: 6 s of it are 150 ms of real time.
    let pacer = Arc::new(
        SharedPacer::new(catalog, MemoryStore::default(), ScaledClock { started })
            .with_window_margin(Duration::from_secs(6)),
    );
    let tally = Arc::new(Tally::default());
    let test_start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let pacer = Arc::clone(&pacer);
            let tally = Arc::clone(&tally);
            let address = provider.address();
            std::thread::spawn(move || {
                let request = PaceRequest {
                    provider: "anthropic".into(),
                    model: "m".into(),
                    estimated_input_tokens: PROMPT,
                    max_output_tokens: MAX_OUT,
                    owner: Owner {
                        host: "h".into(),
                        pid: std::process::id(),
                        start_time: None,
                        process_group: None,
                    },
                    lease: Duration::from_secs(600),
                    bucket: None,
                };
                let body = chat_body("m", PROMPT, MAX_OUT);
                // Bounded: each worker makes at most this many calls.
                for attempt in 1..=3 * DAILY as u32 {
                    // Fifteen minutes of the pacer's clock (22.5 s of real
                    // time): longer than any wait behind the per-minute
                    // budgets, far shorter than the day's.
                    let admitted = match pacer.acquire(
                        &request,
                        Some(Duration::from_secs(900)),
                        &mut |_| {},
                    ) {
                        Ok(admitted) => admitted,
                        Err(PacingError::Scheduler(SchedulerError::DeadlineExceeded {
                            reason,
                            needed,
                            ..
                        })) => {
                            assert!(
                                matches!(reason, WaitReason::DailyRequests | WaitReason::Hold)
                                    && needed > Duration::from_secs(3_600),
                                "worker {worker} gave up on {reason:?} after {needed:?}"
                            );
                            return;
                        }
                        Err(other) => panic!("worker {worker}: {other}"),
                    };
                    let id = admitted.reservation.id.clone();
                    let answer = post_json(
                        address,
                        "/v1/chat/completions",
                        &format!("w{worker}"),
                        &body,
                        Duration::from_secs(10),
                    )
                    .expect("the fake provider answers");
                    let seen_headers = tally.answered.load(Ordering::SeqCst) > 0;
                    pacer
                        .learn_from_headers(&admitted.reservation, &answer.headers)
                        .unwrap();
                    if answer.status == 200 {
                        let usage = find_usage(&answer.body).expect("usage in the answer");
                        pacer
                            .record_success(&id, usage.input_tokens, usage.output_tokens)
                            .unwrap();
                        tally.successes.fetch_add(1, Ordering::SeqCst);
                    } else {
                        assert_eq!(answer.status, 429, "{}", answer.body);
                        tally.all_429s.fetch_add(1, Ordering::SeqCst);
                        if seen_headers {
                            tally.late_429s.fetch_add(1, Ordering::SeqCst);
                        }
                        let retry_after = answer
                            .header("retry-after")
                            .and_then(|text| text.parse().ok());
                        pacer
                            .record_rate_limit(&id, &rate_limited(retry_after), attempt)
                            .unwrap();
                    }
                    tally.answered.fetch_add(1, Ordering::SeqCst);
                }
                panic!("worker {worker} did not stop within its bound");
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    let elapsed = test_start.elapsed();
    let paced = (
        tally.successes.load(Ordering::SeqCst),
        tally.all_429s.load(Ordering::SeqCst),
        tally.late_429s.load(Ordering::SeqCst),
    );
    let naive = naive_retry_loops();
    eprintln!(
        "paced: {} answered, {} 429s ({} after the first headers) in {elapsed:.1?}; naive: {} answered, {} 429s",
        paced.0, paced.1, paced.2, naive.0, naive.1
    );
    assert_eq!(paced.0 as u64, DAILY, "the day's requests were all used");
    assert!(paced.2 <= 1, "{} 429s after the first headers", paced.2);
    assert!(
        naive.1 >= 10 * paced.2.max(1),
        "the naive loops met {} 429s, not many more than the paced workers' {}",
        naive.1,
        paced.2
    );
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

/// Eight loops that send, and on a 429 sleep its `retry-after` and send
/// again, until the day's requests are used: (successes, 429s).
fn naive_retry_loops() -> (usize, usize) {
    let mut started = Instant::now();
    let provider = provider(&mut started);
    let done = Arc::new(Mutex::new((0usize, 0usize)));
    let loops: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let done = Arc::clone(&done);
            let address = provider.address();
            std::thread::spawn(move || {
                let body = chat_body("m", PROMPT, MAX_OUT);
                // Bounded by the count and by the provider's day.
                for _ in 0..200 {
                    if done.lock().unwrap().0 as u64 >= DAILY {
                        return;
                    }
                    let answer = post_json(
                        address,
                        "/v1/chat/completions",
                        &format!("n{worker}"),
                        &body,
                        Duration::from_secs(10),
                    )
                    .expect("the fake provider answers");
                    let mut counts = done.lock().unwrap();
                    if answer.status == 200 {
                        counts.0 += 1;
                        continue;
                    }
                    counts.1 += 1;
                    drop(counts);
                    if answer.body.contains("daily_requests") {
                        return;
                    }
                    let wait: f64 = answer
                        .header("retry-after")
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(1.0);
                    std::thread::sleep(Duration::from_secs_f64(wait / f64::from(SCALE)));
                }
            })
        })
        .collect();
    for one in loops {
        one.join().expect("a naive loop failed");
    }
    let counts = *done.lock().unwrap();
    counts
}
