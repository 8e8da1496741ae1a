//! `credits limits run`: acquire budget, run a command, record what happened,
//! and retry what the provider says is worth retrying, within a bound.
//!
//! The loop decides; it neither prints nor spawns. The command is behind
//! [`Attempt`] and everything worth telling the user goes through
//! [`RunEvent`], so the whole policy runs on a fake clock in tests.

use std::time::Duration;

use super::backend::Backend;
use super::clock::{duration_millis, sleep_unless, Clock};
use super::owner::ProcessGroup;
use super::pacing::{PaceRequest, PacingError, SharedPacer, WaitNotice};
use super::retry::{
    classify, retry_delay, split_response, Classification, ErrorKind, ProviderResponse,
};
use super::scheduler::{Reservation, SchedulerError};
use super::usage::{find_usage, TokenUsage};
use crate::process::{Ending, Tick};

/// Most attempts `run` allows, whatever is asked: a bound on the retry loop.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// How often a retry sleep looks for a signal: the bound on how long a
/// signal waits to end a sleeping run.
pub const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The shortest interval between lease renewals while a command runs.
pub const MIN_RENEW_INTERVAL: Duration = Duration::from_millis(100);

/// What a `run` should do.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The budget each attempt reserves, and who holds it.
    pub request: PaceRequest,
    /// Attempts in all, first included (1 to [`MAX_ATTEMPTS_LIMIT`]).
    pub max_attempts: u32,
    /// Give up once this much time has passed since the start.
    pub deadline: Option<Duration>,
    /// The longest wait between attempts, whatever the provider says.
    pub max_delay: Duration,
}

/// What one attempt of the command produced.
#[derive(Debug, Clone)]
pub struct AttemptOutput {
    /// How the command ended.
    pub ending: Ending,
    /// The tail of its stdout.
    pub stdout: String,
    /// The tail of its stderr.
    pub stderr: String,
    /// A signal that reached specsmith while the command ran (Ctrl-C).
    pub interrupted_by: Option<i32>,
}

/// What an attempt is told before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptContext {
    /// How long it may take before the run's deadline; the runner stops it then.
    pub time_left: Option<Duration>,
    /// No retry can follow this attempt (the last one allowed), so its
    /// output is final whatever happens.
    pub last: bool,
}

/// Runs the command once.
pub trait Attempt {
    /// Runs the command, calling `on_tick` once it started and then while it
    /// runs; an error means it could not be started.
    fn run(
        &mut self,
        context: AttemptContext,
        on_tick: &mut dyn FnMut(Tick),
    ) -> std::io::Result<AttemptOutput>;

    /// The last attempt's stdout is not the final answer (a retry follows):
    /// drop what was held of it; returns how many bytes that was.
    fn discard_output(&mut self) -> u64 {
        0
    }
}

/// Something worth telling the user while the run goes on.
#[derive(Debug, Clone)]
pub enum RunEvent<'a> {
    /// Waiting for budget before an attempt.
    Waiting(&'a WaitNotice),
    /// An attempt failed in a way worth retrying; the next starts after `delay`.
    Retrying {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// Why it failed.
        classification: &'a Classification,
        /// Bytes of its stdout that were held and are not passed on.
        discarded_bytes: u64,
    },
    /// The reservation was reclaimed while the command ran (its lease ended
    /// or its owner looked dead to another process); the call is counted anyway.
    ReservationLost {
        /// The reservation.
        id: &'a str,
        /// Whether its request was still in the window to take the tokens.
        still_counted: bool,
    },
}

/// Why `run` stopped retrying.
#[derive(Debug, Clone, PartialEq)]
pub enum GiveUp {
    /// Every allowed attempt failed.
    AttemptsExhausted,
    /// The wait before the next attempt would pass the deadline.
    RetryPastDeadline {
        /// The wait that was needed.
        delay: Duration,
    },
    /// The deadline passed while waiting for budget.
    BudgetPastDeadline {
        /// Why the budget was not there.
        message: String,
    },
    /// The deadline passed while the command ran; it was stopped.
    CommandPastDeadline,
}

/// Where a run was when a signal stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for budget: nothing was held, nothing sent.
    WaitingForBudget,
    /// The command ran: its call is counted.
    Running,
    /// Sleeping before a retry: the failed attempt was already recorded.
    SleepingBeforeRetry,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The command succeeded; its usage (or the estimate) was recorded.
    Succeeded {
        /// Attempts made.
        attempts: u32,
        /// The usage the command's output reported, if any.
        usage: Option<TokenUsage>,
    },
    /// The command failed in a way retrying cannot fix; the call is counted.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The command's exit code, as a shell reports it.
        exit_code: i32,
        /// Why retrying cannot help.
        classification: Classification,
    },
    /// Retrying stopped before success.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Why.
        reason: GiveUp,
        /// The last failure, if an attempt ran.
        classification: Option<Classification>,
    },
    /// A signal stopped the run; a call the command made is counted.
    Interrupted {
        /// Attempts made.
        attempts: u32,
        /// The signal.
        signal: i32,
        /// The command's exit code, as a shell reports it (128 + signal
        /// when no command was running).
        exit_code: i32,
        /// Where the run was.
        phase: Phase,
    },
}

/// Errors that end a run before its command could decide anything.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Pacing failed (no profile, broken state file, request too large…).
    #[error(transparent)]
    Pacing(#[from] PacingError),
    /// The command could not be started.
    #[error("cannot run the command")]
    Spawn(#[source] std::io::Error),
}

/// How a started call is settled in the window.
enum Settle {
    Success(TokenUsage),
    Failure(u64),
}

/// Acquires, runs, records and retries until success, a failure retrying
/// cannot fix, `max_attempts`, the deadline, or a signal (`stop` returns
/// it), whichever comes first.
///
/// A reservation is released only when its command never started; a
/// command that started counts as a request, whatever became of it. While
/// the command runs, its lease is renewed every third of the lease and its
/// process group is recorded with the owner. The pacer should be built with
/// [`SharedPacer::with_stop`] on the same `stop` so waits for budget end too.
pub fn run_paced<B: Backend, C: Clock>(
    pacer: &SharedPacer<B, C>,
    plan: &RunPlan,
    command: &mut dyn Attempt,
    stop: &dyn Fn() -> Option<i32>,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<RunOutcome, RunError> {
    let clock = pacer.clock();
    let started = clock.now();
    let time_left = |clock: &C| {
        plan.deadline.map(|deadline| {
            let elapsed = Duration::from_millis(clock.now().saturating_sub(started));
            deadline.saturating_sub(elapsed)
        })
    };
    let interrupted = |attempts: u32, signal: i32, phase: Phase| RunOutcome::Interrupted {
        attempts,
        signal,
        exit_code: 128 + signal,
        phase,
    };
    let estimate = TokenUsage {
        input_tokens: plan.request.estimated_input_tokens,
        output_tokens: plan.request.max_output_tokens,
    };
    let max_attempts = plan.max_attempts.clamp(1, MAX_ATTEMPTS_LIMIT);
    let mut last_failure = None;
    for attempt in 1..=max_attempts {
        if let Some(signal) = stop() {
            return Ok(interrupted(attempt - 1, signal, Phase::WaitingForBudget));
        }
        let admitted = match pacer.acquire(&plan.request, time_left(clock), &mut |notice| {
            on_event(RunEvent::Waiting(notice))
        }) {
            Ok(admitted) => admitted,
            Err(PacingError::Scheduler(error @ SchedulerError::DeadlineExceeded { .. })) => {
                return Ok(RunOutcome::GaveUp {
                    attempts: attempt - 1,
                    reason: GiveUp::BudgetPastDeadline {
                        message: error.to_string(),
                    },
                    classification: last_failure,
                });
            }
            Err(PacingError::Stopped) => {
                let signal = stop().unwrap_or(TERMINATE);
                return Ok(interrupted(attempt - 1, signal, Phase::WaitingForBudget));
            }
            Err(error) => return Err(error.into()),
        };
        let reservation = admitted.reservation;
        let id = reservation.id.as_str();
        if let Some(signal) = stop() {
            pacer.release(id)?;
            return Ok(interrupted(attempt - 1, signal, Phase::WaitingForBudget));
        }
        let context = AttemptContext {
            time_left: time_left(clock),
            last: attempt == max_attempts,
        };
        let mut renewal = Renewal::new(pacer, &reservation, plan.request.lease);
        let output = command.run(context, &mut |tick| renewal.tick(tick));
        let lost = renewal.lost;
        let output = match output {
            Ok(output) => output,
            Err(error) if !renewal.started => {
                pacer.release(id)?;
                return Err(RunError::Spawn(error));
            }
            Err(error) => {
                settle(
                    pacer,
                    &reservation,
                    Settle::Failure(estimate.total()),
                    lost,
                    on_event,
                )?;
                return Err(RunError::Spawn(error));
            }
        };
        let reported = find_usage(&output.stdout);
        let counted_tokens = reported.unwrap_or(estimate).total();
        let printed = split_response(&output.stdout);
        if let Some((head, _)) = &printed {
            pacer.learn_from_headers(&reservation, &head.headers)?;
        }
        // `curl -i` exits 0 on a 429: the printed status tells.
        let printed_failure = printed
            .as_ref()
            .and_then(|(head, _)| head.status)
            .is_some_and(|status| status >= 400);

        if let Some(signal) = output.interrupted_by {
            settle(
                pacer,
                &reservation,
                Settle::Failure(counted_tokens),
                lost,
                on_event,
            )?;
            return Ok(RunOutcome::Interrupted {
                attempts: attempt,
                signal,
                exit_code: output.ending.shell_code(),
                phase: Phase::Running,
            });
        }
        match output.ending {
            Ending::Exited(0) if !printed_failure && !is_error_body(&output.stdout) => {
                let usage = reported.unwrap_or(estimate);
                settle(pacer, &reservation, Settle::Success(usage), lost, on_event)?;
                return Ok(RunOutcome::Succeeded {
                    attempts: attempt,
                    usage: reported,
                });
            }
            Ending::DeadlinePassed => {
                // The call may well have reached the provider: count the estimate.
                settle(
                    pacer,
                    &reservation,
                    Settle::Failure(estimate.total()),
                    lost,
                    on_event,
                )?;
                return Ok(RunOutcome::GaveUp {
                    attempts: attempt,
                    reason: GiveUp::CommandPastDeadline,
                    classification: last_failure,
                });
            }
            Ending::NeedsTerminal(_) => {
                settle(
                    pacer,
                    &reservation,
                    Settle::Failure(estimate.total()),
                    lost,
                    on_event,
                )?;
                return Ok(RunOutcome::Failed {
                    attempts: attempt,
                    exit_code: output.ending.shell_code(),
                    classification: needs_terminal(),
                });
            }
            Ending::Exited(_) | Ending::Signalled(_) => {}
        }

        let classification = classify_failure(&output, clock);
        if !classification.retryable {
            settle(
                pacer,
                &reservation,
                Settle::Failure(counted_tokens),
                lost,
                on_event,
            )?;
            // A spent quota holds the model for every process of the fleet.
            pacer.hold_after(&reservation, &classification, 0.0)?;
            return Ok(RunOutcome::Failed {
                attempts: attempt,
                exit_code: output.ending.shell_code(),
                classification,
            });
        }
        let delay_seconds = if lost {
            let still_counted = pacer.record_lost(&reservation, estimate.total(), true)?;
            on_event(RunEvent::ReservationLost { id, still_counted });
            retry_delay(classification.retry_after_seconds, attempt, fastrand::f64())
        } else {
            match pacer.record_rate_limit(id, &classification, attempt) {
                Ok(recorded) => recorded.delay_seconds,
                Err(PacingError::Scheduler(SchedulerError::UnknownReservation { .. })) => {
                    let still_counted = pacer.record_lost(&reservation, estimate.total(), true)?;
                    on_event(RunEvent::ReservationLost { id, still_counted });
                    retry_delay(classification.retry_after_seconds, attempt, fastrand::f64())
                }
                Err(error) => return Err(error.into()),
            }
        };
        let delay = Duration::from_secs_f64(delay_seconds.clamp(0.0, f64::MAX)).min(plan.max_delay);
        if attempt == max_attempts {
            last_failure = Some(classification);
            break;
        }
        if let Some(left) = time_left(clock) {
            if delay > left {
                return Ok(RunOutcome::GaveUp {
                    attempts: attempt,
                    reason: GiveUp::RetryPastDeadline { delay },
                    classification: Some(classification),
                });
            }
        }
        let discarded_bytes = command.discard_output();
        on_event(RunEvent::Retrying {
            attempt,
            delay,
            classification: &classification,
            discarded_bytes,
        });
        if let Some(signal) = sleep_unless(clock, delay, SIGNAL_CHECK_INTERVAL, stop) {
            return Ok(interrupted(attempt, signal, Phase::SleepingBeforeRetry));
        }
        last_failure = Some(classification);
    }
    Ok(RunOutcome::GaveUp {
        attempts: max_attempts,
        reason: GiveUp::AttemptsExhausted,
        classification: last_failure,
    })
}

#[cfg(unix)]
const TERMINATE: i32 = libc::SIGTERM;
#[cfg(not(unix))]
const TERMINATE: i32 = 15;

impl TokenUsage {
    fn total(self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Counts a started call: by its reservation, or, when that was reclaimed
/// meanwhile, by what is left of its request in the window.
fn settle<B: Backend, C: Clock>(
    pacer: &SharedPacer<B, C>,
    reservation: &Reservation,
    how: Settle,
    lost: bool,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<(), PacingError> {
    let tokens = match how {
        Settle::Success(usage) => usage.total(),
        Settle::Failure(tokens) => tokens,
    };
    let recorded = if lost {
        Err(PacingError::Scheduler(SchedulerError::UnknownReservation {
            id: reservation.id.clone(),
        }))
    } else {
        match how {
            Settle::Success(usage) => pacer
                .record_success(&reservation.id, usage.input_tokens, usage.output_tokens)
                .map(drop),
            Settle::Failure(tokens) => pacer.record_failure(&reservation.id, tokens).map(drop),
        }
    };
    match recorded {
        Ok(()) => Ok(()),
        Err(PacingError::Scheduler(SchedulerError::UnknownReservation { .. })) => {
            let still_counted = pacer.record_lost(reservation, tokens, false)?;
            on_event(RunEvent::ReservationLost {
                id: &reservation.id,
                still_counted,
            });
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Keeps a reservation held while its command runs: records the command's
/// process group as soon as it starts, then renews the lease every third of
/// it, on the pacer's clock.
struct Renewal<'a, B: Backend, C: Clock> {
    pacer: &'a SharedPacer<B, C>,
    id: &'a str,
    lease: Duration,
    every: u64,
    renewed_at: u64,
    started: bool,
    lost: bool,
}

impl<'a, B: Backend, C: Clock> Renewal<'a, B, C> {
    fn new(pacer: &'a SharedPacer<B, C>, reservation: &'a Reservation, lease: Duration) -> Self {
        Self {
            pacer,
            id: &reservation.id,
            lease,
            every: duration_millis((lease / 3).max(MIN_RENEW_INTERVAL)),
            renewed_at: pacer.clock().now(),
            started: false,
            lost: false,
        }
    }

    fn tick(&mut self, tick: Tick) {
        if self.lost {
            return;
        }
        let now = self.pacer.clock().now();
        let group = match tick {
            Tick::Started { pid } => {
                self.started = true;
                Some(ProcessGroup::led_by(pid))
            }
            Tick::Running if now.saturating_sub(self.renewed_at) >= self.every => None,
            Tick::Running => return,
        };
        match self.pacer.renew(self.id, self.lease, group) {
            Ok(_) => self.renewed_at = now,
            Err(PacingError::Scheduler(SchedulerError::UnknownReservation { .. })) => {
                self.lost = true;
            }
            // A store that fails now (a lock held too long) may answer at the
            // next renewal; recording will report it if it stays broken.
            Err(_) => self.renewed_at = now,
        }
    }
}

/// True when the whole of `stdout` is a provider's error body: one JSON
/// document (or an array of them) whose top level holds an `error` object
/// or message and no answer. `curl` without `--fail-with-body` exits 0 on a 429 with such a body.
pub fn is_error_body(stdout: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(stdout.trim()) else {
        return false;
    };
    let is_error = |value: &serde_json::Value| {
        let Some(object) = value.as_object() else {
            return false;
        };
        let answer_fields = ["choices", "candidates", "content", "output", "data"];
        let error = match object.get("error") {
            Some(serde_json::Value::Object(details)) => !details.is_empty(),
            Some(serde_json::Value::String(message)) => !message.trim().is_empty(),
            _ => false,
        };
        error
            && !answer_fields
                .iter()
                .any(|field| object.contains_key(*field))
    };
    match &document {
        serde_json::Value::Array(items) => !items.is_empty() && items.iter().all(is_error),
        other => is_error(other),
    }
}

fn needs_terminal() -> Classification {
    Classification {
        kind: ErrorKind::Other,
        is_rate_limit: false,
        retryable: false,
        retry_after_seconds: None,
        status_code: None,
        resets_at: None,
        whole_account: false,
        message: "the command stopped to use the terminal, and `run` could not give it the terminal (it is not in the terminal's foreground); run it in the foreground, or give the command its input another way".to_owned(),
    }
}

/// Classifies a failed attempt. An HTTP client usually prints the provider's
/// error body on stdout and its own complaint on stderr; the more specific
/// verdict wins, stdout's when both are specific, because it is the provider's word.
fn classify_failure<C: Clock>(output: &AttemptOutput, clock: &C) -> Classification {
    let now = std::time::UNIX_EPOCH + Duration::from_millis(clock.now());
    if let Some((head, body)) = split_response(&output.stdout) {
        // A printed HTTP answer (`curl -i`): its status and headers say the most.
        return classify(
            &ProviderResponse {
                status: head.status,
                headers: head.headers,
                body: body.to_owned(),
            },
            now,
        );
    }
    let verdict = |text: &str| {
        classify(
            &ProviderResponse {
                status: None,
                headers: Vec::new(),
                body: text.to_owned(),
            },
            now,
        )
    };
    let from_stdout = verdict(&output.stdout);
    let from_stderr = verdict(&output.stderr);
    let specific = |verdict: &Classification| verdict.kind != ErrorKind::Other;
    let mut chosen = match (specific(&from_stdout), specific(&from_stderr)) {
        (true, _) => from_stdout,
        (false, true) => from_stderr,
        (false, false) if from_stdout.retryable || from_stdout.status_code.is_some() => from_stdout,
        (false, false) => from_stderr,
    };
    if chosen.status_code.is_none() && chosen.message.is_empty() {
        chosen.message = format!("exit code {}", output.ending.shell_code());
    }
    chosen
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::rate_limits::clock::FakeClock;
    use crate::rate_limits::owner::Owner;
    use crate::rate_limits::store::MemoryStore;
    use crate::rate_limits::{Catalog, Layer, Profile};

    const START: u64 = 1_800_000_000_000;

    fn pacer(clock: &FakeClock) -> SharedPacer<MemoryStore, FakeClock> {
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![Profile::new("acme", "m1", 600, 1_000_000, 1.0, 2).unwrap()],
        );
        SharedPacer::new(catalog, MemoryStore::default(), clock.clone())
            .with_jitter(|| 0.0)
            .with_death_test(|_| false)
    }

    fn plan(max_attempts: u32, deadline: Option<Duration>) -> RunPlan {
        RunPlan {
            request: PaceRequest {
                provider: "acme".into(),
                model: "m1".into(),
                estimated_input_tokens: 100,
                max_output_tokens: 50,
                owner: Owner::process(std::process::id()),
                lease: Duration::from_secs(600),
                bucket: None,
            },
            max_attempts,
            deadline,
            max_delay: Duration::from_secs(60),
        }
    }

    /// Plays back scripted attempts; each takes `duration` of fake time, in
    /// 100 ms ticks, calling `during` halfway through.
    struct Script {
        clock: FakeClock,
        outputs: VecDeque<AttemptOutput>,
        duration: Duration,
        runs: u32,
        discarded: u32,
        contexts: Vec<AttemptContext>,
        during: Option<Box<dyn FnMut()>>,
    }

    const FAKE_GROUP: u32 = 4_000_000;

    impl Script {
        fn new(clock: &FakeClock, outputs: Vec<AttemptOutput>) -> Self {
            Self {
                clock: clock.clone(),
                outputs: outputs.into(),
                duration: Duration::from_millis(200),
                runs: 0,
                discarded: 0,
                contexts: Vec::new(),
                during: None,
            }
        }
    }

    impl Attempt for Script {
        fn run(
            &mut self,
            context: AttemptContext,
            on_tick: &mut dyn FnMut(Tick),
        ) -> std::io::Result<AttemptOutput> {
            self.runs += 1;
            self.contexts.push(context);
            on_tick(Tick::Started { pid: FAKE_GROUP });
            let (duration, ending) = match context.time_left {
                Some(left) if left < self.duration => (left, Some(Ending::DeadlinePassed)),
                _ => (self.duration, None),
            };
            let ticks = duration.as_millis().div_ceil(100).max(1);
            for tick in 0..ticks {
                self.clock
                    .advance(Duration::from_millis(100).min(duration / ticks as u32));
                if tick == ticks / 2 {
                    if let Some(during) = self.during.as_mut() {
                        during();
                    }
                }
                on_tick(Tick::Running);
            }
            match ending {
                Some(ending) => Ok(exited(ending, "", "")),
                None => Ok(self.outputs.pop_front().expect("a scripted attempt")),
            }
        }

        fn discard_output(&mut self) -> u64 {
            self.discarded += 1;
            7
        }
    }

    fn never() -> Option<i32> {
        None
    }

    fn run(
        pacer: &SharedPacer<MemoryStore, FakeClock>,
        plan: &RunPlan,
        script: &mut Script,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<RunOutcome, RunError> {
        run_paced(pacer, plan, script, &never, on_event)
    }

    fn exited(ending: Ending, stdout: &str, stderr: &str) -> AttemptOutput {
        AttemptOutput {
            ending,
            stdout: stdout.into(),
            stderr: stderr.into(),
            interrupted_by: None,
        }
    }

    const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for m1 in organization org-1 on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","code":"rate_limit_exceeded"}}"#;
    const SUCCESS: &str = r#"{"choices":[],"usage":{"prompt_tokens":80,"completion_tokens":12}}"#;
    const NO_CREDITS: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#;

    #[test]
    fn a_rate_limit_waits_the_providers_word_then_records_actual_usage() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut script = Script::new(
            &clock,
            vec![
                exited(
                    Ending::Exited(22),
                    RATE_LIMITED,
                    "curl: (22) The requested URL returned error: 429",
                ),
                exited(Ending::Exited(0), SUCCESS, ""),
            ],
        );
        let mut retries = Vec::new();
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |event| {
            if let RunEvent::Retrying {
                attempt,
                delay,
                classification,
                ..
            } = event
            {
                retries.push((attempt, delay, classification.kind));
            }
        })
        .unwrap();
        assert_eq!(
            outcome,
            RunOutcome::Succeeded {
                attempts: 2,
                usage: Some(TokenUsage {
                    input_tokens: 80,
                    output_tokens: 12
                }),
            }
        );
        assert_eq!(
            retries,
            vec![(1, Duration::from_secs(20), ErrorKind::RateLimit)]
        );
        assert_eq!(
            clock.now() - START,
            20_400,
            "two 200 ms attempts and the 20 s wait"
        );
        let status = pacer.status("acme", "m1").unwrap();
        assert_eq!(status.snapshot.in_flight, 0);
        assert_eq!(status.snapshot.rolling_request_count, 2);
        // The rate-limited attempt keeps its estimate; the success counts what it used.
        assert_eq!(status.snapshot.rolling_token_count, 150 + 92);
        assert_eq!(
            status.snapshot.current_concurrency_cap, 1,
            "halved after the 429"
        );
    }

    #[test]
    fn a_success_without_usage_records_the_estimate() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(0), "plain text", "")]);
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
        assert_eq!(
            outcome,
            RunOutcome::Succeeded {
                attempts: 1,
                usage: None
            }
        );
        assert_eq!(
            pacer
                .status("acme", "m1")
                .unwrap()
                .snapshot
                .rolling_token_count,
            150
        );
    }

    #[test]
    fn quota_exhausted_is_not_retried_and_the_call_stays_counted() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(1), NO_CREDITS, "")]);
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
        let RunOutcome::Failed {
            attempts,
            exit_code,
            classification,
        } = outcome
        else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert_eq!((attempts, exit_code), (1, 1));
        assert_eq!(classification.kind, ErrorKind::QuotaExhausted);
        assert_eq!(script.runs, 1);
        let snapshot = pacer.status("acme", "m1").unwrap().snapshot;
        assert_eq!(
            (
                snapshot.in_flight,
                snapshot.rolling_request_count,
                snapshot.rolling_token_count
            ),
            (0, 1, 150),
            "the call was sent: the provider counts it"
        );
    }

    #[test]
    fn attempts_are_bounded() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let failures = (0..3)
            .map(|_| exited(Ending::Exited(1), RATE_LIMITED, ""))
            .collect();
        let mut script = Script::new(&clock, failures);
        let outcome = run(&pacer, &plan(3, None), &mut script, &mut |_| {}).unwrap();
        assert!(matches!(
            outcome,
            RunOutcome::GaveUp {
                attempts: 3,
                reason: GiveUp::AttemptsExhausted,
                classification: Some(_)
            }
        ));
        assert_eq!(script.runs, 3);
        assert_eq!(pacer.status("acme", "m1").unwrap().snapshot.in_flight, 0);
    }

    #[test]
    fn a_wait_past_the_deadline_stops_before_sleeping() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(1), RATE_LIMITED, "")]);
        let outcome = run(
            &pacer,
            &plan(5, Some(Duration::from_secs(10))),
            &mut script,
            &mut |_| {},
        )
        .unwrap();
        let RunOutcome::GaveUp {
            attempts,
            reason,
            classification,
        } = outcome
        else {
            panic!("expected to give up, got {outcome:?}");
        };
        assert_eq!(attempts, 1);
        assert_eq!(
            reason,
            GiveUp::RetryPastDeadline {
                delay: Duration::from_secs(20)
            }
        );
        assert_eq!(classification.map(|c| c.kind), Some(ErrorKind::RateLimit));
        assert_eq!(clock.now() - START, 200, "it did not sleep");
    }

    #[test]
    fn the_delay_is_capped() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let hours = r#"{"error":{"code":"rate_limit_exceeded","message":"Rate limit reached. Please try again in 3h0m0s."}}"#;
        let mut script = Script::new(
            &clock,
            vec![
                exited(Ending::Exited(1), hours, ""),
                exited(Ending::Exited(0), SUCCESS, ""),
            ],
        );
        let mut plan = plan(5, None);
        plan.max_delay = Duration::from_secs(30);
        let mut delays = Vec::new();
        run(&pacer, &plan, &mut script, &mut |event| {
            if let RunEvent::Retrying {
                delay,
                classification,
                ..
            } = event
            {
                delays.push((delay, classification.retry_after_seconds));
            }
        })
        .unwrap();
        assert_eq!(delays, vec![(Duration::from_secs(30), Some(10_800.0))]);
    }

    #[test]
    fn a_command_stopped_at_the_deadline_gives_up_and_counts_its_estimate() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut script = Script::new(&clock, Vec::new());
        let outcome = run(
            &pacer,
            &plan(5, Some(Duration::from_millis(100))),
            &mut script,
            &mut |_| {},
        )
        .unwrap();
        assert!(matches!(
            outcome,
            RunOutcome::GaveUp {
                attempts: 1,
                reason: GiveUp::CommandPastDeadline,
                ..
            }
        ));
        let snapshot = pacer.status("acme", "m1").unwrap().snapshot;
        assert_eq!((snapshot.in_flight, snapshot.rolling_token_count), (0, 150));
    }

    #[test]
    fn an_interrupt_while_the_command_runs_counts_the_call() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut interrupted = exited(Ending::Signalled(2), "", "");
        interrupted.interrupted_by = Some(2);
        let mut script = Script::new(&clock, vec![interrupted]);
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
        assert_eq!(
            outcome,
            RunOutcome::Interrupted {
                attempts: 1,
                signal: 2,
                exit_code: 130,
                phase: Phase::Running,
            }
        );
        let snapshot = pacer.status("acme", "m1").unwrap().snapshot;
        assert_eq!(
            (
                snapshot.in_flight,
                snapshot.rolling_request_count,
                snapshot.rolling_token_count
            ),
            (0, 1, 150)
        );
    }

    #[test]
    fn a_server_error_is_retried_and_a_bad_request_is_not() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let server_error = r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#;
        let mut script = Script::new(
            &clock,
            vec![
                exited(
                    Ending::Exited(22),
                    server_error,
                    "curl: (22) The requested URL returned error: 500",
                ),
                exited(Ending::Exited(0), SUCCESS, ""),
            ],
        );
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
        assert!(matches!(outcome, RunOutcome::Succeeded { attempts: 2, .. }));

        let bad_request = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        let mut script = Script::new(
            &clock,
            vec![exited(
                Ending::Exited(22),
                bad_request,
                "curl: (22) The requested URL returned error: 400",
            )],
        );
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
        assert!(
            matches!(outcome, RunOutcome::Failed { exit_code: 22, .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_missing_profile_is_an_error_before_anything_runs() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut plan = plan(5, None);
        plan.request.provider = "nobody".into();
        let mut script = Script::new(&clock, Vec::new());
        let error = run(&pacer, &plan, &mut script, &mut |_| {}).unwrap_err();
        assert!(error.to_string().contains("nobody"), "{error}");
        assert_eq!(script.runs, 0);
    }
    fn counts(pacer: &SharedPacer<MemoryStore, FakeClock>) -> (u64, u64, u64) {
        let snapshot = pacer.status("acme", "m1").unwrap().snapshot;
        (
            snapshot.in_flight,
            snapshot.rolling_request_count,
            snapshot.rolling_token_count,
        )
    }

    #[test]
    fn a_bad_request_that_was_sent_stays_counted() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let bad_request = r#"{"error":{"message":"Invalid 'messages': empty array.","type":"invalid_request_error","code":"invalid_value"}}"#;
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(22), bad_request, "")]);
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
        assert!(
            matches!(outcome, RunOutcome::Failed { attempts: 1, .. }),
            "{outcome:?}"
        );
        assert_eq!(counts(&pacer), (0, 1, 150));
        assert_eq!(
            pacer
                .status("acme", "m1")
                .unwrap()
                .snapshot
                .current_concurrency_cap,
            2,
            "not a rate limit: the cap stays"
        );
    }

    #[test]
    fn a_command_that_never_started_is_released() {
        struct Unstartable;
        impl Attempt for Unstartable {
            fn run(
                &mut self,
                _context: AttemptContext,
                _on_tick: &mut dyn FnMut(Tick),
            ) -> std::io::Result<AttemptOutput> {
                Err(std::io::Error::from(std::io::ErrorKind::NotFound))
            }
        }
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let error = run_paced(
            &pacer,
            &plan(5, None),
            &mut Unstartable,
            &never,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(error, RunError::Spawn(_)));
        assert_eq!(counts(&pacer), (0, 0, 0));
    }

    #[test]
    fn a_long_call_keeps_its_reservation_and_records_its_process_group() {
        let clock = FakeClock::new(START);
        let pacer = std::rc::Rc::new(pacer(&clock));
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(0), SUCCESS, "")]);
        script.duration = Duration::from_secs(5);
        let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
        let (watcher, record) = (std::rc::Rc::clone(&pacer), std::rc::Rc::clone(&seen));
        script.during = Some(Box::new(move || {
            // Another process looks (and would reclaim an ended lease) 2.5 s
            // into a call whose lease is 1 s.
            *record.borrow_mut() = Some(watcher.status("acme", "m1").unwrap().reservations);
        }));
        let mut plan = plan(5, None);
        plan.request.lease = Duration::from_secs(1);
        let mut lost = 0;
        let outcome = run_paced(&*pacer, &plan, &mut script, &never, &mut |event| {
            if let RunEvent::ReservationLost { .. } = event {
                lost += 1;
            }
        })
        .unwrap();
        assert!(
            matches!(outcome, RunOutcome::Succeeded { attempts: 1, .. }),
            "{outcome:?}"
        );
        assert_eq!(lost, 0);
        let reservations = seen.borrow_mut().take().unwrap();
        assert_eq!(reservations.len(), 1, "still held halfway through");
        assert!(reservations[0].lease_expires_at > START + 2_500);
        assert_eq!(
            reservations[0].owner.process_group.map(|group| group.id),
            Some(FAKE_GROUP)
        );
        assert_eq!(counts(&pacer), (0, 1, 92));
    }

    #[test]
    fn a_call_whose_reservation_was_reclaimed_is_counted_with_a_warning() {
        let clock = FakeClock::new(START);
        let dead = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_dead = std::sync::Arc::clone(&dead);
        let pacer = std::rc::Rc::new(
            pacer(&clock)
                .with_death_test(move |_| is_dead.load(std::sync::atomic::Ordering::SeqCst)),
        );
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(0), SUCCESS, "")]);
        let watcher = std::rc::Rc::clone(&pacer);
        script.during = Some(Box::new(move || {
            // Another process thinks the owner died and takes the slot back.
            dead.store(true, std::sync::atomic::Ordering::SeqCst);
            assert!(watcher
                .status("acme", "m1")
                .unwrap()
                .reservations
                .is_empty());
        }));
        let mut lost = Vec::new();
        let outcome = run_paced(&*pacer, &plan(5, None), &mut script, &never, &mut |event| {
            if let RunEvent::ReservationLost { still_counted, .. } = event {
                lost.push(still_counted);
            }
        })
        .unwrap();
        assert!(
            matches!(outcome, RunOutcome::Succeeded { attempts: 1, .. }),
            "{outcome:?}"
        );
        assert_eq!(lost, vec![true]);
        assert_eq!(
            counts(&pacer),
            (0, 1, 92),
            "the request and its actual tokens"
        );
    }

    #[test]
    fn a_signal_while_waiting_for_budget_ends_the_run_at_once_holding_nothing() {
        let clock = FakeClock::new(START);
        let stop_at = START + 1_000;
        let watch = clock.clone();
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![Profile::new("acme", "m1", 1, 1_000_000, 1.0, 2).unwrap()],
        );
        let pacer = SharedPacer::new(catalog, MemoryStore::default(), clock.clone())
            .with_death_test(|_| false)
            .with_stop(move || watch.now() >= stop_at);
        let other = plan(1, None).request;
        pacer.acquire(&other, None, &mut |_| {}).unwrap();
        let watch = clock.clone();
        let stop = move || (watch.now() >= stop_at).then_some(15);
        let mut script = Script::new(&clock, Vec::new());
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &stop, &mut |_| {}).unwrap();
        assert_eq!(
            outcome,
            RunOutcome::Interrupted {
                attempts: 0,
                signal: 15,
                exit_code: 143,
                phase: Phase::WaitingForBudget
            }
        );
        assert!(
            clock.now() - START <= 1_100,
            "ended within a poll of the signal"
        );
        assert_eq!(script.runs, 0);
        assert_eq!(
            counts(&pacer),
            (1, 1, 150),
            "only the other holder's request"
        );
    }

    #[test]
    fn a_signal_while_sleeping_before_a_retry_ends_the_run_at_once() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let watch = clock.clone();
        let stop = move || (watch.now() >= START + 5_000).then_some(1);
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(22), RATE_LIMITED, "")]);
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &stop, &mut |_| {}).unwrap();
        assert_eq!(
            outcome,
            RunOutcome::Interrupted {
                attempts: 1,
                signal: 1,
                exit_code: 129,
                phase: Phase::SleepingBeforeRetry
            }
        );
        assert!(clock.now() - START <= 5_100, "not the whole 20 s wait");
        assert_eq!(script.runs, 1);
        assert_eq!(
            counts(&pacer),
            (0, 1, 150),
            "the rate-limited call stays counted"
        );
    }

    #[test]
    fn a_zero_exit_whose_whole_output_is_a_rate_limit_body_is_retried() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut script = Script::new(
            &clock,
            vec![
                exited(Ending::Exited(0), &format!("{RATE_LIMITED}\n"), ""),
                exited(Ending::Exited(0), SUCCESS, ""),
            ],
        );
        let mut retries = Vec::new();
        let outcome = run(&pacer, &plan(5, None), &mut script, &mut |event| {
            if let RunEvent::Retrying {
                classification,
                discarded_bytes,
                ..
            } = event
            {
                retries.push((classification.kind, discarded_bytes));
            }
        })
        .unwrap();
        assert!(
            matches!(outcome, RunOutcome::Succeeded { attempts: 2, .. }),
            "{outcome:?}"
        );
        assert_eq!(retries, vec![(ErrorKind::RateLimit, 7)]);
        assert_eq!(script.discarded, 1, "the first answer is not passed on");
        assert_eq!(
            script
                .contexts
                .iter()
                .map(|context| context.last)
                .collect::<Vec<_>>(),
            vec![false, false]
        );
        let snapshot = pacer.status("acme", "m1").unwrap().snapshot;
        assert_eq!(snapshot.current_concurrency_cap, 1, "halved");
    }

    #[test]
    fn error_bodies_are_told_from_answers() {
        assert!(is_error_body(RATE_LIMITED));
        assert!(is_error_body(
            r#"[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]"#
        ));
        assert!(is_error_body(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        ));
        assert!(!is_error_body(SUCCESS));
        assert!(!is_error_body(r#"{"error":null,"choices":[]}"#));
        assert!(!is_error_body(r#"{"error":false,"result":42}"#));
        assert!(is_error_body(r#"{"error":"Too many requests"}"#));
        assert!(!is_error_body("error: something\n"));
        assert!(!is_error_body(&format!("{RATE_LIMITED}\n{SUCCESS}")));
    }

    #[test]
    fn the_last_allowed_attempt_is_told_it_is_final() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let failures = (0..2)
            .map(|_| exited(Ending::Exited(1), RATE_LIMITED, ""))
            .collect();
        let mut script = Script::new(&clock, failures);
        run(&pacer, &plan(2, None), &mut script, &mut |_| {}).unwrap();
        let last: Vec<bool> = script.contexts.iter().map(|context| context.last).collect();
        assert_eq!(last, vec![false, true]);
        assert_eq!(
            script.discarded, 1,
            "only the retried attempt's output is dropped"
        );
    }
}
