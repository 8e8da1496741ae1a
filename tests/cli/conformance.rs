//! One conformance suite for every pacing store: each scenario is written
//! once over a [`SharedPacer`] on a fake clock and run against the in-memory
//! store, the file store (a temp dir), a fresh real `redis-server` (with the
//! scripts on the test's clock) and, once, a three-node Redis Cluster. Every
//! scenario asserts what it expects and writes a transcript of all it saw;
//! the stores' transcripts must be equal (reservation and ticket ids aside).
//!
//! Without `redis-server` the Redis runs skip with a message (fail under `CI=true`).

use std::time::Duration;

use specsmith::rate_limits::backend::{Attempt, AttemptSpec, Backend, Context};
use specsmith::rate_limits::clock::{Clock, FakeClock};
use specsmith::rate_limits::extended::ExtendedLimits;
use specsmith::rate_limits::hold::{Advice, Hold, HoldKind, StatedLimits};
use specsmith::rate_limits::owner::{Owner, ProcessGroup};
use specsmith::rate_limits::pacing::{ModelStatus, PaceRequest, PacingError, SharedPacer};
use specsmith::rate_limits::retry::{Classification, ErrorKind};
use specsmith::rate_limits::scheduler::{
    AcquireRequest, Reservation, SchedulerError, WaitReason, DEFAULT_LEASE,
};
use specsmith::rate_limits::store::{FileStore, MemoryStore};
use specsmith::rate_limits::{Catalog, Layer, Profile};

#[cfg(feature = "redis")]
use crate::redis_server::{require_redis, RedisCluster, RedisServer};
#[cfg(feature = "redis")]
use specsmith::rate_limits::redis_store::RedisStore;
#[cfg(feature = "redis")]
use specsmith::rate_limits::store_url::{StoreUrl, Timeouts};

const START: u64 = 1_700_000_000_000;
/// The pid the death test calls dead.
const DEAD_PID: u32 = 666;

/// Any backend, boxed, so one pacer type runs every store.
pub type AnyBackend = Box<dyn Backend + Send + Sync>;

type Pacer = SharedPacer<AnyBackend, FakeClock>;

/// What a scenario works with: the pacer, its clock, and its transcript.
pub struct Run {
    pub pacer: Pacer,
    pub clock: FakeClock,
    pub catalog: Catalog,
    transcript: Vec<String>,
}

impl Run {
    /// Notes `what` in the transcript, ids replaced by placeholders.
    fn note(&mut self, what: impl std::fmt::Debug) {
        let text = format!("{what:?}");
        let ids = regex::Regex::new(r"(rsv|tkt)-[0-9a-f]{16}").unwrap();
        self.transcript
            .push(ids.replace_all(&text, "$1-…").into_owned());
    }

    fn acquire(
        &mut self,
        request: &PaceRequest,
        deadline: Option<Duration>,
    ) -> Result<Reservation, PacingError> {
        let outcome = self.pacer.acquire(request, deadline, &mut |_| {});
        let noted = outcome
            .as_ref()
            .map(|admitted| (admitted.waited, &admitted.reservation))
            .map_err(ToString::to_string);
        self.note(("acquire", noted));
        outcome.map(|admitted| admitted.reservation)
    }

    fn status(&mut self, model: &str) -> ModelStatus {
        let mut status = self.pacer.status("acme", model).expect("status");
        by_sequence(&mut status);
        self.note(("status", &status));
        status
    }

    fn status_all(&mut self) -> Vec<ModelStatus> {
        let mut all = self.pacer.status_all(&[]).expect("status all");
        all.iter_mut().for_each(by_sequence);
        self.note(("status all", &all));
        all
    }

    /// One backend pass, as a waiter of its own would make it.
    fn attempt(
        &mut self,
        request: &PaceRequest,
        reservation_id: &str,
        ticket: Option<&str>,
        remaining: Option<Duration>,
    ) -> Attempt {
        let now = || self.clock.now();
        let never_dead = |owner: &Owner| owner.pid == DEAD_PID;
        let cx = Context {
            catalog: &self.catalog,
            now: &now,
            is_dead: &never_dead,
            window_margin_millis: 1_000,
        };
        let profile = &self
            .catalog
            .resolve(&request.provider, &request.model)
            .expect("profile")
            .profile;
        let acquire = AcquireRequest {
            estimated_input_tokens: request.estimated_input_tokens,
            max_output_tokens: request.max_output_tokens,
            owner: request.owner.clone(),
            lease: request.lease,
            bucket: request.bucket.clone(),
        };
        let key = format!("{}::{}", request.provider, request.model);
        let spec = AttemptSpec {
            key: &key,
            provider: &request.provider,
            model: &request.model,
            profile,
            request: &acquire,
            reservation_id,
            ticket,
            waiter: &request.owner,
            remaining,
            poll_interval: Duration::from_millis(100),
            ticket_grace: Duration::from_secs(2),
        };
        let attempt = self.pacer.backend().attempt(&cx, &spec).expect("attempt");
        self.note(("attempt", &attempt));
        attempt
    }
}

/// Reservations in admission order: their ids (and so their order by id)
/// differ from run to run.
fn by_sequence(status: &mut ModelStatus) {
    status
        .reservations
        .sort_by_key(|reservation| reservation.sequence);
}

fn owner(pid: u32) -> Owner {
    Owner {
        host: "h".into(),
        pid,
        start_time: Some(77),
        process_group: None,
    }
}

fn request(model: &str, input: u64, output: u64) -> PaceRequest {
    PaceRequest {
        provider: "acme".into(),
        model: model.into(),
        estimated_input_tokens: input,
        max_output_tokens: output,
        owner: owner(1),
        lease: DEFAULT_LEASE,
        bucket: None,
    }
}

fn rate_limit() -> Classification {
    Classification {
        kind: ErrorKind::RateLimit,
        is_rate_limit: true,
        retryable: true,
        retry_after_seconds: None,
        status_code: Some(429),
        message: String::new(),
        resets_at: None,
        whole_account: false,
    }
}

fn catalog(rpm: u64, tpm: u64, cap: u32) -> Catalog {
    let mut catalog = Catalog::default();
    catalog.add_layer(
        Layer::Project,
        vec![Profile::new("acme", "*", rpm, tpm, 1.0, cap).unwrap()],
    );
    catalog
}

fn run_on(backend: AnyBackend, catalog: &Catalog, scenario: fn(&mut Run)) -> Vec<String> {
    let clock = FakeClock::new(START);
    let pacer = SharedPacer::new(catalog.clone(), backend, clock.clone())
        .with_death_test(|owner| owner.pid == DEAD_PID)
        .with_jitter(|| 0.5)
        .with_waiter(owner(2));
    let mut run = Run {
        pacer,
        clock,
        catalog: catalog.clone(),
        transcript: Vec::new(),
    };
    scenario(&mut run);
    run.transcript
}

/// A fresh Redis store on a fresh server, on the scenario's clock.
#[cfg(feature = "redis")]
fn redis_backend(server: &RedisServer) -> AnyBackend {
    let url = StoreUrl::parse(&server.url()).unwrap();
    Box::new(
        RedisStore::open(&url, Timeouts::default())
            .expect("open the Redis store")
            .with_client_time(),
    )
}

/// Runs `scenario` on every store and checks they all saw the same.
fn conform(test: &str, catalog: Catalog, scenario: fn(&mut Run)) {
    let memory = run_on(Box::new(MemoryStore::default()), &catalog, scenario);
    let directory = tempfile::tempdir().unwrap();
    let file = run_on(
        Box::new(FileStore::new(directory.path().join("state.json"))),
        &catalog,
        scenario,
    );
    assert_eq!(
        file, memory,
        "{test}: the file store differs from the in-memory store"
    );
    #[cfg(feature = "redis")]
    if require_redis(test).is_some() {
        let server = RedisServer::start();
        let redis = run_on(redis_backend(&server), &catalog, scenario);
        assert_eq!(
            redis, memory,
            "{test}: the Redis store differs from the in-memory store"
        );
    }
    #[cfg(not(feature = "redis"))]
    let _ = test;
}

fn deadline_error(outcome: Result<Reservation, PacingError>) -> (WaitReason, Duration) {
    match outcome {
        Err(PacingError::Scheduler(SchedulerError::DeadlineExceeded {
            reason, needed, ..
        })) => (reason, needed),
        other => panic!("expected a deadline error, got {other:?}"),
    }
}

fn rolling_window(run: &mut Run) {
    for _ in 0..3 {
        run.acquire(&request("m", 100, 100), Some(Duration::ZERO))
            .unwrap();
        run.clock.advance(Duration::from_millis(1_500));
    }
    // Three requests at 0, 1.5 and 3 s; now 4.5 s. The oldest leaves at 61 s.
    let (reason, needed) = deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::Requests, Duration::from_millis(56_500))
    );
    let reservation = run.acquire(&request("m", 1, 1), None).unwrap();
    assert_eq!(reservation.acquired_at, START + 61_000);
    // Tokens: 200 + 200 + 2 counted; 700 more needs the first two out.
    run.clock.advance(Duration::from_millis(10));
    let (reason, needed) =
        deadline_error(run.acquire(&request("m", 600, 100), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::Requests);
    assert_eq!(needed, Duration::from_millis(1_490));
    run.clock.advance(needed);
    let (reason, needed) =
        deadline_error(run.acquire(&request("m", 600, 300), Some(Duration::from_secs(1))));
    assert_eq!(
        (reason, needed),
        (WaitReason::Tokens, Duration::from_millis(1_500))
    );
    run.status("m");
}

fn too_large(run: &mut Run) {
    let error = run
        .acquire(&request("m", 900, 200), None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("1100") && error.contains("1000"), "{error}");
    assert!(run.status_all().is_empty(), "a refusal leaves no state");
}

fn reconcile(run: &mut Run) {
    let first = run.acquire(&request("m", 400, 400), None).unwrap();
    let (_, snapshot) = run.pacer.record_success(&first.id, 50, 30).unwrap();
    run.note(("success", &snapshot));
    assert_eq!(snapshot.rolling_token_count, 80);
    let second = run
        .acquire(&request("m", 400, 400), Some(Duration::ZERO))
        .unwrap();
    let failed = run.pacer.record_failure(&second.id, 10).unwrap();
    run.note(("failure", &failed));
    let third = run
        .acquire(&request("m", 300, 300), Some(Duration::ZERO))
        .unwrap();
    let released = run.pacer.release(&third.id).unwrap();
    run.note(("release", &released));
    let status = run.status("m");
    assert_eq!(status.snapshot.rolling_token_count, 90);
    assert_eq!(status.snapshot.rolling_request_count, 2);
}

fn cap_halving_and_regrowth(run: &mut Run) {
    let mut caps = Vec::new();
    for attempt in 1..=2 {
        let held = run.acquire(&request("m", 1, 1), None).unwrap();
        let outcome = run
            .pacer
            .record_rate_limit(&held.id, &rate_limit(), attempt)
            .unwrap();
        run.note(("rate limit", &outcome));
        caps.push(outcome.snapshot.current_concurrency_cap);
    }
    for _ in 0..7 {
        let held = run.acquire(&request("m", 1, 1), None).unwrap();
        let (_, snapshot) = run.pacer.record_success(&held.id, 1, 1).unwrap();
        run.note(("success", &snapshot));
        caps.push(snapshot.current_concurrency_cap);
    }
    assert_eq!(caps, vec![3, 2, 2, 2, 3, 3, 3, 4, 4]);
    // A cap of 2 after the halvings would refuse a third slot; the regrown 4 does not.
    let held: Vec<_> = (0..4)
        .map(|_| {
            run.acquire(&request("m", 1, 1), Some(Duration::ZERO))
                .unwrap()
        })
        .collect();
    let (reason, _) = deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::Concurrency);
    run.note(held.len());
    run.status("m");
}

fn lease_expiry(run: &mut Run) {
    let mut short = request("m", 100, 100);
    short.lease = Duration::from_secs(5);
    let held = run.acquire(&short, None).unwrap();
    let (reason, needed) = deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::Concurrency, Duration::from_secs(5))
    );
    let renewed = run
        .pacer
        .renew(
            &held.id,
            Duration::from_secs(8),
            Some(ProcessGroup {
                id: 4242,
                start_time: Some(9),
            }),
        )
        .unwrap();
    run.note(("renew", &renewed));
    assert_eq!(renewed.lease_expires_at, START + 8_000);
    assert_eq!(
        renewed.owner.process_group.map(|group| group.id),
        Some(4242)
    );
    run.clock.advance(Duration::from_secs(8));
    let status = run.status("m");
    assert_eq!(status.snapshot.in_flight, 0);
    assert_eq!(
        (
            status.snapshot.rolling_request_count,
            status.snapshot.rolling_token_count
        ),
        (1, 0)
    );
    let error = run.pacer.record_success(&held.id, 5, 5).unwrap_err();
    run.note(("late record", error.to_string()));
    assert!(matches!(
        error,
        PacingError::Scheduler(SchedulerError::UnknownReservation { .. })
    ));
    let counted = run.pacer.record_lost(&held, 70, true).unwrap();
    run.note(("lost", counted));
    assert!(counted);
    let status = run.status("m");
    assert_eq!(status.snapshot.rolling_token_count, 70);
    assert_eq!(status.snapshot.current_concurrency_cap, 1);
}

fn dead_owner(run: &mut Run) {
    let mut doomed = request("m", 100, 100);
    doomed.owner = owner(DEAD_PID);
    run.acquire(&doomed, None).unwrap();
    // The slot of the dead holder comes back; its request stays counted.
    let admitted = run
        .acquire(&request("m", 10, 10), Some(Duration::ZERO))
        .unwrap();
    let status = run.status("m");
    assert_eq!(status.reservations, vec![admitted]);
    assert_eq!(status.snapshot.rolling_request_count, 2);
    assert_eq!(status.snapshot.rolling_token_count, 20);
    // A dead holder found by status.
    let mut doomed_again = request("n", 100, 100);
    doomed_again.owner = owner(DEAD_PID);
    run.acquire(&doomed_again, None).unwrap();
    assert_eq!(run.status("n").snapshot.in_flight, 0);
}

fn moving_averages(run: &mut Run) {
    let mut held = Vec::new();
    for tokens in [10, 250, 33] {
        held.push(run.acquire(&request("m", tokens, 7), None).unwrap());
        run.clock.advance(Duration::from_millis(333));
    }
    run.pacer.record_success(&held[1].id, 3, 4).unwrap();
    run.pacer.record_failure(&held[0].id, 1).unwrap();
    run.clock.advance(Duration::from_secs(61));
    let status = run.status("m");
    let snapshot = &status.snapshot;
    assert!(snapshot.moving_average_tokens > 0.0 && snapshot.moving_average_requests > 0.0);
    run.note((
        snapshot.moving_average_requests.to_bits(),
        snapshot.moving_average_tokens.to_bits(),
    ));
}

fn fairness(run: &mut Run) {
    run.acquire(&request("m", 300, 300), None).unwrap();
    run.clock.advance(Duration::from_secs(1));
    // A big request waits for the tokens, holding its place in the queue.
    let big = request("m", 500, 400);
    let first = run.attempt(&big, "rsv-00000000000000b1", None, None);
    let Attempt::Sleep {
        reason,
        retry_after,
        ticket,
        ..
    } = first
    else {
        panic!("the big request should wait: {first:?}");
    };
    assert_eq!(
        (reason, retry_after),
        (WaitReason::Tokens, Duration::from_secs(60))
    );
    // A small one would fit now, but would push the big one back: refused.
    let (reason, _) = deadline_error(run.acquire(&request("m", 100, 100), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::Queue);
    run.clock.advance(retry_after);
    let again = run.attempt(&big, "rsv-00000000000000b1", Some(&ticket), None);
    assert!(matches!(again, Attempt::Granted(_)), "{again:?}");
    // The same pass repeated (its reply lost) finds the grant, not a second one.
    let repeated = run.attempt(&big, "rsv-00000000000000b1", Some(&ticket), None);
    assert_eq!(again, repeated);
    let status = run.status("m");
    assert_eq!(status.snapshot.rolling_request_count, 1);
    assert_eq!(
        status.snapshot.in_flight, 2,
        "the first holder's event left; its slot did not"
    );
    // A waiter that gives up leaves the queue.
    let give_up = run.attempt(
        &request("m", 500, 400),
        "rsv-00000000000000b2",
        None,
        Some(Duration::from_secs(1)),
    );
    assert!(
        matches!(
            give_up,
            Attempt::GiveUp {
                reason: WaitReason::Tokens,
                ..
            }
        ),
        "{give_up:?}"
    );
}

fn unknown_reservation(run: &mut Run) {
    let error = run
        .pacer
        .record_success("rsv-00000000000000ff", 1, 1)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown reservation `rsv-00000000000000ff` (never acquired, already recorded or released, or reclaimed after its lease ended)"
    );
    let held = run.acquire(&request("m", 1, 1), None).unwrap();
    run.pacer.release(&held.id).unwrap();
    let again = run.pacer.release(&held.id).unwrap_err();
    run.note(("twice", again.to_string()));
    assert!(matches!(
        again,
        PacingError::Scheduler(SchedulerError::UnknownReservation { .. })
    ));
}

fn wanted_status_and_reset(run: &mut Run) {
    let wanted = run
        .pacer
        .status_all(&[
            ("acme".into(), "quiet".into()),
            ("nobody".into(), "x".into()),
        ])
        .unwrap();
    run.note(("wanted", &wanted));
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].snapshot.rolling_request_count, 0);
    assert!(
        run.status_all().is_empty(),
        "a wanted model leaves no state"
    );
    run.acquire(&request("b", 1, 1), None).unwrap();
    run.acquire(&request("a", 1, 1), None).unwrap();
    let models: Vec<String> = run
        .status_all()
        .into_iter()
        .map(|status| status.snapshot.model)
        .collect();
    assert_eq!(models, vec!["a", "b"]);
    assert!(run.pacer.reset().unwrap());
    assert!(run.status_all().is_empty());
    assert!(!run.pacer.reset().unwrap());
}

fn holds_and_stated_limits(run: &mut Run) {
    let backoff = Advice {
        hold: Some(Hold::new(HoldKind::Backoff, START + 2_000, "overloaded")),
        ..Advice::default()
    };
    let status = run.pacer.advise("acme", "m", &backoff).unwrap();
    run.note(("backoff", &status.hold));
    let (reason, needed) = deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::Hold, Duration::from_millis(2_000))
    );
    let waited = run.acquire(&request("m", 1, 1), None).unwrap();
    assert_eq!(
        waited.acquired_at,
        START + 2_000,
        "admitted as the hold ends"
    );
    // A quota hold refuses, outranks a later backoff, and clears.
    let quota = Advice {
        hold: Some(Hold::new(HoldKind::Quota, START + 3_600_000, "monthly cap")),
        ..Advice::default()
    };
    run.pacer.advise("acme", "m", &quota).unwrap();
    let later_backoff = Advice {
        hold: Some(Hold::new(HoldKind::Backoff, START + 7_200_000, "slow down")),
        ..Advice::default()
    };
    let status = run.pacer.advise("acme", "m", &later_backoff).unwrap();
    assert_eq!(
        status.hold.as_ref().map(|hold| hold.kind),
        Some(HoldKind::Quota)
    );
    let refused = run.acquire(&request("m", 1, 1), None).unwrap_err();
    assert!(matches!(
        refused,
        PacingError::Scheduler(SchedulerError::Held { until, .. }) if until == START + 3_600_000
    ));
    let clear = Advice {
        clear_hold: true,
        ..Advice::default()
    };
    run.pacer.advise("acme", "m", &clear).unwrap();
    // Stated limits lower the effective ones at the profile's target.
    let stated = Advice {
        stated: StatedLimits {
            requests_per_minute: Some(3),
            tokens_per_minute: Some(100_000),
            ..StatedLimits::default()
        },
        ..Advice::default()
    };
    let status = run.pacer.advise("acme", "m", &stated).unwrap();
    assert_eq!(status.snapshot.effective_rpm_limit, 3);
    assert_eq!(status.stated, stated.stated);
    // One request is in the window: two more fit the stated three.
    for _ in 0..2 {
        run.acquire(&request("m", 1, 1), Some(Duration::ZERO))
            .unwrap();
    }
    let (reason, _) = deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::Requests);
    run.status("m");
}

/// `acme/*` with input and output tokens per minute and requests per day
/// resetting at midnight UTC (START is 2023-11-14T22:13:20Z: 1 h 46 min 40 s before).
fn budgets_catalog() -> Catalog {
    let mut catalog = Catalog::default();
    let limits = ExtendedLimits {
        itpm: Some(1_000),
        otpm: Some(100),
        rpd: Some(5),
        daily_reset: "00:00 UTC".parse().unwrap(),
        ..ExtendedLimits::default()
    };
    catalog.add_layer(
        Layer::Project,
        vec![Profile::new("acme", "*", 100, 1_000_000, 1.0, 4)
            .unwrap()
            .with_extended(limits)],
    );
    catalog
}

fn budgets_beyond_rpm_and_tpm(run: &mut Run) {
    let first = run.acquire(&request("m", 600, 80), None).unwrap();
    // Output has no room for 30 more (80 + 30 > 100), input has.
    run.clock.advance(Duration::from_millis(10));
    let (reason, needed) =
        deadline_error(run.acquire(&request("m", 300, 30), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::OutputTokens, Duration::from_millis(60_990))
    );
    // The answer used 10 output tokens: the second fits now.
    let (_, snapshot) = run.pacer.record_success(&first.id, 600, 10).unwrap();
    run.note(("success", &snapshot));
    let second = run
        .acquire(&request("m", 300, 30), Some(Duration::ZERO))
        .unwrap();
    let (reason, _) = deadline_error(run.acquire(&request("m", 200, 1), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::InputTokens);
    let released = run.pacer.release(&second.id).unwrap();
    run.note(("release", &released));
    let third = run
        .acquire(&request("m", 100, 50), Some(Duration::ZERO))
        .unwrap();
    let failed = run.pacer.record_failure(&third.id, 120).unwrap();
    run.note(("failure", &failed));
    let status = run.status("m");
    assert_eq!(status.budgets.len(), 3);
    assert_eq!((status.budgets[0].used, status.budgets[1].used), (700, 30));
    assert_eq!(
        status.budgets[2].used, 2,
        "the released request does not count"
    );
    // A part alone over its budget can never be admitted.
    let error = run.acquire(&request("m", 1, 101), None).unwrap_err();
    assert!(
        matches!(
            error,
            PacingError::Scheduler(SchedulerError::OverBudget {
                amount: 101,
                limit: 100,
                ..
            })
        ),
        "{error:?}"
    );
    // Three more requests spend the day; the next waits for midnight.
    for _ in 0..3 {
        run.acquire(&request("m", 1, 1), Some(Duration::ZERO))
            .unwrap();
    }
    let (reason, needed) =
        deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::from_secs(60))));
    assert_eq!(reason, WaitReason::DailyRequests);
    assert_eq!(needed, Duration::from_millis(6_400_000 - 10));
    run.status("m");
    // A stated input limit lower than the profile's paces at the target.
    let stated = Advice {
        stated: StatedLimits {
            input_tokens_per_minute: Some(500),
            ..StatedLimits::default()
        },
        ..Advice::default()
    };
    let mut advised = run.pacer.advise("acme", "m", &stated).unwrap();
    by_sequence(&mut advised);
    run.note(("advise", &advised));
    assert_eq!(advised.budgets[0].effective_limit, 500);
    assert_eq!(advised.stated.input_tokens_per_minute, Some(500));
    // After midnight a new day begins; the minute budgets have emptied too.
    run.clock.advance(needed);
    let after = run
        .acquire(&request("m", 400, 50), Some(Duration::ZERO))
        .unwrap();
    assert_eq!(after.acquired_at, START + 6_400_000);
    let status = run.status("m");
    assert_eq!(status.budgets[2].used, 1);
    assert_eq!(
        status.budgets[2].frees_at,
        Some(START + 6_400_000 + 86_400_000)
    );
}

/// A head of the queue that waits only for a slot of its bucket.
fn queued_head(
    run: &mut Run,
    request: &PaceRequest,
    id: &str,
    waits_for: WaitReason,
) -> (Duration, String) {
    let attempt = run.attempt(request, id, None, None);
    let Attempt::Sleep {
        reason,
        retry_after,
        ticket,
        ..
    } = attempt
    else {
        panic!("the head should wait: {attempt:?}");
    };
    assert_eq!(reason, waits_for);
    (retry_after, ticket)
}

/// The queue weighs output tokens per minute: a small request passes a
/// head waiting for them only when the head still gets them as soon.
fn fairness_over_output_tokens(run: &mut Run) {
    run.acquire(&request("m", 10, 45), None).unwrap();
    run.clock.advance(Duration::from_millis(5));
    run.acquire(&request("m", 10, 45), None).unwrap();
    run.clock.advance(Duration::from_millis(5));
    let head = request("m", 10, 50);
    let (retry_after, ticket) =
        queued_head(run, &head, "rsv-00000000000000c1", WaitReason::OutputTokens);
    assert_eq!(retry_after, Duration::from_millis(60_990));
    // The head needs 40 output tokens to leave: the first 45 do. 6 more
    // would need the second entry too (5 ms later); 4 more would not.
    let (reason, _) = deadline_error(run.acquire(&request("m", 10, 6), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::Queue);
    run.acquire(&request("m", 10, 4), Some(Duration::ZERO))
        .unwrap();
    run.clock.advance(retry_after);
    let admitted = run.attempt(&head, "rsv-00000000000000c1", Some(&ticket), None);
    assert!(matches!(admitted, Attempt::Granted(_)), "{admitted:?}");
    run.status("m");
}

/// `acme/*` with TPM 1,000 and two requests per rolling day.
fn daily_catalog() -> Catalog {
    let mut catalog = Catalog::default();
    let limits = ExtendedLimits {
        rpd: Some(2),
        ..ExtendedLimits::default()
    };
    catalog.add_layer(
        Layer::Project,
        vec![Profile::new("acme", "*", 100, 1_000, 1.0, 8)
            .unwrap()
            .with_extended(limits)],
    );
    catalog
}

/// A small request that fits the minute beside a head waiting for tokens
/// does not take the day's last request from it.
fn fairness_over_the_day(run: &mut Run) {
    run.acquire(&request("m", 800, 100), None).unwrap();
    run.clock.advance(Duration::from_millis(10));
    let head = request("m", 400, 100);
    let (retry_after, ticket) = queued_head(run, &head, "rsv-00000000000000d1", WaitReason::Tokens);
    let (reason, _) = deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::Queue);
    run.clock.advance(retry_after);
    let admitted = run.attempt(&head, "rsv-00000000000000d1", Some(&ticket), None);
    assert!(matches!(admitted, Attempt::Granted(_)), "{admitted:?}");
    let status = run.status("m");
    assert_eq!(status.budgets[0].used, 2, "the day's two requests");
}

/// A head waiting for a slot of its bucket holds back newcomers of that
/// bucket, but not one of another bucket that takes nothing it needs.
fn fairness_over_buckets(run: &mut Run) {
    let thinking = run.acquire(&in_bucket(Some("reasoning")), None).unwrap();
    let plain = run.acquire(&in_bucket(None), None).unwrap();
    let head = in_bucket(Some("reasoning"));
    let (_, ticket) = queued_head(run, &head, "rsv-00000000000000e1", WaitReason::Bucket);
    // The model's last slot: the head could not use it before the
    // reasoning call ends, which frees a slot of the model too.
    run.acquire(&in_bucket(Some("background")), Some(Duration::ZERO))
        .unwrap();
    run.pacer.record_success(&thinking.id, 1, 1).unwrap();
    run.pacer.release(&plain.id).unwrap();
    // The reasoning slot is free and so is a model slot: a newcomer of
    // the head's bucket would take it first.
    let (reason, _) =
        deadline_error(run.acquire(&in_bucket(Some("reasoning")), Some(Duration::ZERO)));
    assert_eq!(reason, WaitReason::Queue);
    let admitted = run.attempt(&head, "rsv-00000000000000e1", Some(&ticket), None);
    let Attempt::Granted(admitted) = admitted else {
        panic!("the head should be admitted: {admitted:?}");
    };
    assert_eq!(admitted.bucket.as_deref(), Some("reasoning"));
    run.status("m");
}

#[test]
fn conformance_fairness_over_output_tokens() {
    conform(
        "conformance_fairness_over_output_tokens",
        budgets_catalog(),
        fairness_over_output_tokens,
    );
}

#[test]
fn conformance_fairness_over_the_day() {
    conform(
        "conformance_fairness_over_the_day",
        daily_catalog(),
        fairness_over_the_day,
    );
}

#[test]
fn conformance_fairness_over_buckets() {
    conform(
        "conformance_fairness_over_buckets",
        bucket_catalog(),
        fairness_over_buckets,
    );
}

#[test]
fn conformance_budgets_beyond_rpm_and_tpm() {
    conform(
        "conformance_budgets_beyond_rpm_and_tpm",
        budgets_catalog(),
        budgets_beyond_rpm_and_tpm,
    );
}

#[test]
fn conformance_holds_and_stated_limits() {
    conform(
        "conformance_holds_and_stated_limits",
        catalog(100, 10_000, 10),
        holds_and_stated_limits,
    );
}

#[test]
fn conformance_rolling_window_of_requests_and_tokens() {
    conform(
        "conformance_rolling_window_of_requests_and_tokens",
        catalog(3, 1_000, 10),
        rolling_window,
    );
}

#[test]
fn conformance_too_large() {
    conform("conformance_too_large", catalog(10, 1_000, 10), too_large);
}

#[test]
fn conformance_reconcile_failure_and_release() {
    conform(
        "conformance_reconcile_failure_and_release",
        catalog(100, 1_000, 10),
        reconcile,
    );
}

#[test]
fn conformance_cap_halving_and_regrowth() {
    conform(
        "conformance_cap_halving_and_regrowth",
        catalog(1_000, 100_000, 5),
        cap_halving_and_regrowth,
    );
}

#[test]
fn conformance_lease_expiry_renewal_and_lost_records() {
    conform(
        "conformance_lease_expiry_renewal_and_lost_records",
        catalog(100, 10_000, 1),
        lease_expiry,
    );
}

#[test]
fn conformance_dead_owner_reclaim() {
    conform(
        "conformance_dead_owner_reclaim",
        catalog(100, 10_000, 1),
        dead_owner,
    );
}

#[test]
fn conformance_moving_averages() {
    conform(
        "conformance_moving_averages",
        catalog(100, 10_000, 10),
        moving_averages,
    );
}

#[test]
fn conformance_fairness_and_idempotent_attempts() {
    conform(
        "conformance_fairness_and_idempotent_attempts",
        catalog(100, 1_000, 10),
        fairness,
    );
}

/// A queue of several waiters over a part-full window: the fairness walk
/// weighs each waiter ahead against the events that must leave first (the
/// Redis scripts keep the events' running totals for the walk and answer
/// early when the whole queue is ready with its first waiter).
fn long_queue(run: &mut Run) {
    // Six events of 100 tokens, a second apart: 600 of the TPM's 1,000.
    for _ in 0..6 {
        run.acquire(&request("m", 50, 50), None).unwrap();
        run.clock.advance(Duration::from_secs(1));
    }
    // Three waiters that do not fit now, each holding its place.
    let mut tickets = Vec::new();
    for (index, (input, output)) in [(300, 300), (200, 200), (150, 150)].into_iter().enumerate() {
        let id = format!("rsv-00000000000000c{index}");
        let attempt = run.attempt(&request("m", input, output), &id, None, None);
        let Attempt::Sleep { ticket, .. } = attempt else {
            panic!("waiter {index} should wait: {attempt:?}");
        };
        tickets.push((id, ticket, (input, output)));
    }
    // A small request fits the window alone but would push the queue back.
    let small = request("m", 10, 10);
    let refused = run.attempt(&small, "rsv-00000000000000d0", None, Some(Duration::ZERO));
    assert!(
        matches!(
            refused,
            Attempt::GiveUp {
                reason: WaitReason::Queue,
                ..
            }
        ),
        "{refused:?}"
    );
    // A second after the first waiter's wake (its ticket still stands; the
    // others, queue waits, have lapsed) a third event has left too: the
    // first waiter and the small request fit together, so the small one
    // delays nobody and goes first.
    run.clock.advance(Duration::from_secs(57));
    let admitted = run.attempt(&small, "rsv-00000000000000d1", None, Some(Duration::ZERO));
    assert!(matches!(admitted, Attempt::Granted(_)), "{admitted:?}");
    let (id, ticket, (input, output)) = &tickets[0];
    let first = run.attempt(&request("m", *input, *output), id, Some(ticket), None);
    assert!(matches!(first, Attempt::Granted(_)), "{first:?}");
    run.status("m");
}

#[test]
fn conformance_a_long_queue_over_a_part_full_window() {
    conform(
        "conformance_a_long_queue_over_a_part_full_window",
        catalog(100, 1_000, 10),
        long_queue,
    );
}

#[test]
fn conformance_unknown_reservation() {
    conform(
        "conformance_unknown_reservation",
        catalog(100, 1_000, 10),
        unknown_reservation,
    );
}

#[test]
fn conformance_wanted_status_and_reset() {
    conform(
        "conformance_wanted_status_and_reset",
        catalog(100, 1_000, 10),
        wanted_status_and_reset,
    );
}

/// A scenario's name, profiles and steps.
#[cfg(feature = "redis")]
type Scenario = (&'static str, fn() -> Catalog, fn(&mut Run));

/// Every scenario, for the run on the cluster.
#[cfg(feature = "redis")]
const SCENARIOS: &[Scenario] = &[
    ("rolling window", || catalog(3, 1_000, 10), rolling_window),
    ("long queue", || catalog(100, 1_000, 10), long_queue),
    ("too large", || catalog(10, 1_000, 10), too_large),
    ("reconcile", || catalog(100, 1_000, 10), reconcile),
    (
        "cap",
        || catalog(1_000, 100_000, 5),
        cap_halving_and_regrowth,
    ),
    ("lease", || catalog(100, 10_000, 1), lease_expiry),
    ("dead owner", || catalog(100, 10_000, 1), dead_owner),
    (
        "moving averages",
        || catalog(100, 10_000, 10),
        moving_averages,
    ),
    ("fairness", || catalog(100, 1_000, 10), fairness),
    ("unknown", || catalog(100, 1_000, 10), unknown_reservation),
    (
        "holds",
        || catalog(100, 10_000, 10),
        holds_and_stated_limits,
    ),
    ("budgets", budgets_catalog, budgets_beyond_rpm_and_tpm),
    ("unseen use", || catalog(10, 1_000, 10), unseen_use),
    (
        "unseen input and output tokens",
        budgets_catalog,
        unseen_input_and_output_tokens,
    ),
    ("buckets", bucket_catalog, buckets),
    (
        "fairness over output tokens",
        budgets_catalog,
        fairness_over_output_tokens,
    ),
    (
        "fairness over the day",
        daily_catalog,
        fairness_over_the_day,
    ),
    (
        "fairness over buckets",
        bucket_catalog,
        fairness_over_buckets,
    ),
    (
        "provider holds",
        || catalog(100, 10_000, 10),
        provider_holds,
    ),
    (
        "status and reset",
        || catalog(100, 1_000, 10),
        wanted_status_and_reset,
    ),
];

/// Another client of the key: the provider counts more use than our window
/// holds, and every store paces against what is really left until the
/// provider's reset.
fn unseen_use(run: &mut Run) {
    let mut last = None;
    for _ in 0..2 {
        let reservation = run.acquire(&request("m", 1, 1), None).unwrap();
        run.pacer.record_success(&reservation.id, 1, 1).unwrap();
        last = Some(reservation);
    }
    let headers: Vec<(String, String)> = [
        ("x-ratelimit-limit-requests", "10"),
        ("x-ratelimit-remaining-requests", "3"),
        ("x-ratelimit-reset-requests", "20s"),
        ("x-ratelimit-limit-tokens", "1000"),
        ("x-ratelimit-remaining-tokens", "400"),
        ("x-ratelimit-reset-tokens", "30s"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    run.pacer
        .learn_from_headers(&last.unwrap(), &headers)
        .unwrap();
    let status = run.status("m");
    // 7 requests and 600 tokens used at the provider, 2 and 4 in our window.
    assert_eq!(
        (status.unseen.requests, status.unseen.tokens),
        (5, 596),
        "{:?}",
        status.unseen
    );
    for _ in 0..3 {
        run.acquire(&request("m", 1, 1), Some(Duration::ZERO))
            .unwrap();
    }
    let (reason, needed) = deadline_error(run.acquire(&request("m", 1, 1), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::Requests, Duration::from_secs(20))
    );
    run.clock.advance(Duration::from_secs(20));
    // The requests are free again; 10 + 596 + 401 tokens are not, until 30 s.
    let (reason, needed) = deadline_error(run.acquire(&request("m", 1, 400), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::Tokens, Duration::from_secs(10))
    );
    run.clock.advance(Duration::from_secs(10));
    run.acquire(&request("m", 1, 400), Some(Duration::ZERO))
        .unwrap();
    let status = run.status("m");
    assert!(status.unseen.is_empty(), "{:?}", status.unseen);
}

/// Another client of an Anthropic key: the provider counts more input and
/// output tokens than the model's tally holds, and the ITPM and OTPM
/// budgets pace against what is really left until the provider's reset.
fn unseen_input_and_output_tokens(run: &mut Run) {
    let reservation = run.acquire(&request("m", 100, 10), None).unwrap();
    run.pacer.record_success(&reservation.id, 100, 10).unwrap();
    // START is 2023-11-14T22:13:20Z: the budgets are whole again in 30 s.
    let headers: Vec<(String, String)> = [
        ("anthropic-ratelimit-input-tokens-limit", "1000"),
        ("anthropic-ratelimit-input-tokens-remaining", "300"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2023-11-14T22:13:50Z",
        ),
        ("anthropic-ratelimit-output-tokens-limit", "100"),
        ("anthropic-ratelimit-output-tokens-remaining", "60"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            "2023-11-14T22:13:50Z",
        ),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    run.pacer
        .learn_from_headers(&reservation, &headers)
        .unwrap();
    let status = run.status("m");
    // 700 input and 40 output tokens used at the provider, 100 and 10 here.
    assert_eq!(
        (status.unseen.input_tokens, status.unseen.output_tokens),
        (600, 30),
        "{:?}",
        status.unseen
    );
    // 100 + 600 + 350 input tokens are over 1,000 until the reset in 30 s.
    let (reason, needed) =
        deadline_error(run.acquire(&request("m", 350, 10), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::InputTokens, Duration::from_secs(30))
    );
    // 10 + 30 + 61 output tokens are over 100 likewise.
    let (reason, needed) = deadline_error(run.acquire(&request("m", 1, 61), Some(Duration::ZERO)));
    assert_eq!(
        (reason, needed),
        (WaitReason::OutputTokens, Duration::from_secs(30))
    );
    run.clock.advance(Duration::from_secs(30));
    run.acquire(&request("m", 350, 10), Some(Duration::ZERO))
        .unwrap();
    let status = run.status("m");
    assert!(status.unseen.is_empty(), "{:?}", status.unseen);
}

#[test]
fn conformance_unseen_input_and_output_tokens() {
    conform(
        "conformance_unseen_input_and_output_tokens",
        budgets_catalog(),
        unseen_input_and_output_tokens,
    );
}

/// The account is out: a hold on every model of the provider, including
/// models with no state yet, until its end or a clear.
fn provider_holds(run: &mut Run) {
    let reservation = run.acquire(&request("m", 1, 1), None).unwrap();
    let out = Classification {
        kind: ErrorKind::QuotaExhausted,
        is_rate_limit: false,
        retryable: false,
        retry_after_seconds: None,
        status_code: Some(400),
        message: "Your credit balance is too low to access the Anthropic API.".to_owned(),
        resets_at: Some(std::time::UNIX_EPOCH + Duration::from_millis(START + 3_600_000)),
        whole_account: true,
    };
    let outcome = run
        .pacer
        .record_rate_limit(&reservation.id, &out, 1)
        .unwrap();
    run.note(("rate limit", outcome.delay_seconds));
    let holds = run.pacer.provider_holds().unwrap();
    run.note(("provider holds", &holds));
    assert_eq!(holds.len(), 1);
    assert_eq!(
        (holds[0].provider.as_str(), holds[0].hold.until),
        ("acme", START + 3_600_000)
    );
    assert_eq!(
        run.status("m").hold,
        None,
        "the hold is the provider's, not the model's"
    );
    for model in ["m", "never-seen"] {
        let refused = run.acquire(&request(model, 1, 1), None).unwrap_err();
        assert!(
            matches!(
                &refused,
                PacingError::Scheduler(SchedulerError::ProviderHeld { provider, until, .. })
                    if provider == "acme" && *until == START + 3_600_000
            ),
            "{refused}"
        );
    }
    // A shorter hold does not shorten it; it ends by itself.
    let shorter = Hold::new(HoldKind::Quota, START + 1_000, "again");
    let standing = run
        .pacer
        .hold_provider("acme", Some(&shorter), false)
        .unwrap();
    assert_eq!(standing.map(|hold| hold.until), Some(START + 3_600_000));
    run.clock.advance(Duration::from_millis(3_600_000));
    assert!(run.pacer.provider_holds().unwrap().is_empty());
    run.acquire(&request("never-seen", 1, 1), Some(Duration::ZERO))
        .unwrap();
    // Placed again, then cleared at once.
    let again = Hold::new(HoldKind::Quota, START + 7_200_000, "spend cap");
    run.pacer
        .hold_provider("acme", Some(&again), false)
        .unwrap();
    run.acquire(&request("m", 1, 1), Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(run.pacer.hold_provider("acme", None, true).unwrap(), None);
    run.acquire(&request("m", 1, 1), Some(Duration::ZERO))
        .unwrap();
    run.status_all();
}

#[test]
fn conformance_provider_wide_holds() {
    conform(
        "conformance_provider_wide_holds",
        catalog(100, 10_000, 10),
        provider_holds,
    );
}

fn bucket_catalog() -> Catalog {
    let mut profile = Profile::new("acme", "*", 100, 10_000, 1.0, 3).unwrap();
    profile.extra.insert(
        "concurrency_by_bucket".into(),
        serde_json::json!({"reasoning": 1, "background": 2}),
    );
    let mut catalog = Catalog::default();
    catalog.add_layer(Layer::Project, vec![profile]);
    catalog
}

fn in_bucket(bucket: Option<&str>) -> PaceRequest {
    PaceRequest {
        bucket: bucket.map(str::to_owned),
        ..request("m", 1, 1)
    }
}

/// Concurrency buckets: each its own cap inside the model's.
fn buckets(run: &mut Run) {
    let reasoning = run.acquire(&in_bucket(Some("reasoning")), None).unwrap();
    assert_eq!(reasoning.bucket.as_deref(), Some("reasoning"));
    let (reason, needed) =
        deadline_error(run.acquire(&in_bucket(Some("reasoning")), Some(Duration::ZERO)));
    assert_eq!((reason, needed), (WaitReason::Bucket, DEFAULT_LEASE));
    run.acquire(&in_bucket(Some("background")), Some(Duration::ZERO))
        .unwrap();
    run.acquire(&in_bucket(None), Some(Duration::ZERO)).unwrap();
    let (reason, _) =
        deadline_error(run.acquire(&in_bucket(Some("background")), Some(Duration::ZERO)));
    assert_eq!(
        reason,
        WaitReason::Concurrency,
        "the model's cap binds first"
    );
    let status = run.status("m");
    let held: Vec<Option<&str>> = status
        .reservations
        .iter()
        .map(|reservation| reservation.bucket.as_deref())
        .collect();
    assert_eq!(held, [Some("reasoning"), Some("background"), None]);
    run.pacer.record_success(&reasoning.id, 1, 1).unwrap();
    run.acquire(&in_bucket(Some("reasoning")), Some(Duration::ZERO))
        .unwrap();
    let unknown = run
        .acquire(&in_bucket(Some("longform")), None)
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("no concurrency bucket `longform`"),
        "{unknown}"
    );
    run.status("m");
}

#[test]
fn conformance_concurrency_buckets() {
    conform("conformance_concurrency_buckets", bucket_catalog(), buckets);
}

#[test]
fn conformance_unseen_use_tightens_the_window() {
    conform(
        "conformance_unseen_use_tightens_the_window",
        catalog(10, 1_000, 10),
        unseen_use,
    );
}

/// The whole suite once on a three-node Redis Cluster: every model's keys
/// in one slot, status and reset across every primary.
#[cfg(feature = "redis")]
#[test]
fn conformance_on_a_three_node_cluster() {
    let Some(()) = require_redis("conformance_on_a_three_node_cluster") else {
        return;
    };
    let cluster = RedisCluster::start();
    let seeds: Vec<StoreUrl> = cluster
        .urls()
        .iter()
        .map(|url| StoreUrl::parse(url).unwrap())
        .collect();
    for (index, (name, catalog, scenario)) in SCENARIOS.iter().enumerate() {
        let catalog = catalog();
        let memory = run_on(Box::new(MemoryStore::default()), &catalog, *scenario);
        let store = RedisStore::open_cluster(&seeds, Timeouts::default())
            .expect("open the cluster store")
            .with_prefix(&format!("conformance-{index}:"))
            .unwrap()
            .with_client_time();
        let on_cluster = run_on(Box::new(store), &catalog, *scenario);
        assert_eq!(
            on_cluster, memory,
            "{name}: the cluster differs from the in-memory store"
        );
    }
    // Status and reset see the models of every primary.
    let store = RedisStore::open_cluster(&seeds, Timeouts::default())
        .unwrap()
        .with_client_time();
    let mut run = Run {
        pacer: SharedPacer::new(
            catalog(100, 1_000, 10),
            Box::new(store),
            FakeClock::new(START),
        ),
        clock: FakeClock::new(START),
        catalog: catalog(100, 1_000, 10),
        transcript: Vec::new(),
    };
    let models = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for model in models {
        run.acquire(&request(model, 1, 1), None).unwrap();
    }
    let counts = |cluster: &RedisCluster| -> Vec<String> {
        cluster
            .nodes()
            .iter()
            .map(|node| {
                node.command(&["EVAL", "return #redis.call('KEYS', 'specsmith:*')", "0"])
                    .unwrap()
            })
            .collect()
    };
    let nodes_holding = counts(&cluster)
        .iter()
        .filter(|count| *count != ":0")
        .count();
    assert!(nodes_holding >= 2, "eight models all landed on one node");
    let listed: Vec<String> = run
        .status_all()
        .into_iter()
        .map(|status| status.snapshot.model)
        .collect();
    assert_eq!(listed, models);
    assert!(run.pacer.reset().unwrap());
    assert_eq!(
        counts(&cluster),
        [":0", ":0", ":0"],
        "reset left keys behind"
    );
}
