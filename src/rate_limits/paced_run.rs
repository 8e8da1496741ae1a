//! `credits limits run`: acquire budget, run a command, record what happened,
//! and retry what the provider says is worth retrying, within a bound.
//!
//! The loop decides; it neither prints nor spawns. The command is behind
//! [`Attempt`] and everything worth telling the user goes through
//! [`RunEvent`], so the whole policy runs on a fake clock in tests.

use std::time::Duration;

use super::clock::Clock;
use super::pacing::{PaceRequest, PacingError, SharedPacer, WaitNotice};
use super::retry::{classify, Classification, ErrorKind, ProviderResponse};
use super::scheduler::SchedulerError;
use super::store::StateStore;
use super::usage::{find_usage, TokenUsage};
use crate::process::Ending;

/// Most attempts `run` allows, whatever is asked: a bound on the retry loop.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

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

/// Runs the command once. `time_left` is how long it may take before the
/// run's deadline; the runner stops it then.
pub trait Attempt {
    /// Runs the command; an error means it could not be started.
    fn run(&mut self, time_left: Option<Duration>) -> std::io::Result<AttemptOutput>;
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
    /// The command failed in a way retrying cannot fix; its reservation was released.
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
    /// A signal stopped the command; its reservation was released.
    Interrupted {
        /// Attempts made.
        attempts: u32,
        /// The signal.
        signal: i32,
        /// The command's exit code, as a shell reports it.
        exit_code: i32,
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

/// Acquires, runs, records and retries until success, a failure retrying
/// cannot fix, `max_attempts`, or the deadline, whichever comes first.
pub fn run_paced<S: StateStore, C: Clock>(
    pacer: &SharedPacer<S, C>,
    plan: &RunPlan,
    command: &mut dyn Attempt,
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
    let max_attempts = plan.max_attempts.clamp(1, MAX_ATTEMPTS_LIMIT);
    let mut last_failure = None;
    for attempt in 1..=max_attempts {
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
            Err(error) => return Err(error.into()),
        };
        let id = admitted.reservation.id.as_str();
        let output = match command.run(time_left(clock)) {
            Ok(output) => output,
            Err(error) => {
                pacer.release(id)?;
                return Err(RunError::Spawn(error));
            }
        };

        if let Some(signal) = output.interrupted_by {
            pacer.release(id)?;
            return Ok(RunOutcome::Interrupted {
                attempts: attempt,
                signal,
                exit_code: output.ending.shell_code(),
            });
        }
        match output.ending {
            Ending::Exited(0) => {
                let usage = find_usage(&output.stdout);
                let tokens = usage.unwrap_or(TokenUsage {
                    input_tokens: plan.request.estimated_input_tokens,
                    output_tokens: plan.request.max_output_tokens,
                });
                pacer.record_success(id, tokens.input_tokens, tokens.output_tokens)?;
                return Ok(RunOutcome::Succeeded {
                    attempts: attempt,
                    usage,
                });
            }
            Ending::DeadlinePassed => {
                // The call may well have reached the provider: count the estimate.
                pacer.record_success(
                    id,
                    plan.request.estimated_input_tokens,
                    plan.request.max_output_tokens,
                )?;
                return Ok(RunOutcome::GaveUp {
                    attempts: attempt,
                    reason: GiveUp::CommandPastDeadline,
                    classification: last_failure,
                });
            }
            Ending::Exited(_) | Ending::Signalled(_) => {}
        }

        let classification = classify_failure(&output, clock);
        if !classification.retryable {
            pacer.release(id)?;
            return Ok(RunOutcome::Failed {
                attempts: attempt,
                exit_code: output.ending.shell_code(),
                classification,
            });
        }
        let recorded = pacer.record_rate_limit(id, &classification, attempt)?;
        let delay = Duration::from_secs_f64(recorded.delay_seconds.clamp(0.0, f64::MAX))
            .min(plan.max_delay);
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
        on_event(RunEvent::Retrying {
            attempt,
            delay,
            classification: &classification,
        });
        clock.sleep(delay);
        last_failure = Some(classification);
    }
    Ok(RunOutcome::GaveUp {
        attempts: max_attempts,
        reason: GiveUp::AttemptsExhausted,
        classification: last_failure,
    })
}

/// Classifies a failed attempt. An HTTP client usually prints the provider's
/// error body on stdout and its own complaint on stderr; the more specific
/// verdict wins, stdout's when both are specific, because it is the provider's word.
fn classify_failure<C: Clock>(output: &AttemptOutput, clock: &C) -> Classification {
    let now = std::time::UNIX_EPOCH + Duration::from_millis(clock.now());
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
            },
            max_attempts,
            deadline,
            max_delay: Duration::from_secs(60),
        }
    }

    /// Plays back scripted attempts; each takes `duration` of fake time.
    struct Script {
        clock: FakeClock,
        outputs: VecDeque<AttemptOutput>,
        duration: Duration,
        runs: u32,
    }

    impl Script {
        fn new(clock: &FakeClock, outputs: Vec<AttemptOutput>) -> Self {
            Self {
                clock: clock.clone(),
                outputs: outputs.into(),
                duration: Duration::from_millis(200),
                runs: 0,
            }
        }
    }

    impl Attempt for Script {
        fn run(&mut self, time_left: Option<Duration>) -> std::io::Result<AttemptOutput> {
            self.runs += 1;
            if time_left.is_some_and(|left| left < self.duration) {
                self.clock.advance(time_left.unwrap());
                return Ok(exited(Ending::DeadlinePassed, "", ""));
            }
            self.clock.advance(self.duration);
            Ok(self.outputs.pop_front().expect("a scripted attempt"))
        }
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
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &mut |event| {
            if let RunEvent::Retrying {
                attempt,
                delay,
                classification,
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
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
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
    fn quota_exhausted_is_not_retried_and_the_slot_is_released() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut script = Script::new(&clock, vec![exited(Ending::Exited(1), NO_CREDITS, "")]);
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
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
        assert_eq!((snapshot.in_flight, snapshot.rolling_request_count), (0, 0));
    }

    #[test]
    fn attempts_are_bounded() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let failures = (0..3)
            .map(|_| exited(Ending::Exited(1), RATE_LIMITED, ""))
            .collect();
        let mut script = Script::new(&clock, failures);
        let outcome = run_paced(&pacer, &plan(3, None), &mut script, &mut |_| {}).unwrap();
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
        let outcome = run_paced(
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
        run_paced(&pacer, &plan, &mut script, &mut |event| {
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
        let outcome = run_paced(
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
    fn an_interrupt_releases_the_reservation() {
        let clock = FakeClock::new(START);
        let pacer = pacer(&clock);
        let mut interrupted = exited(Ending::Signalled(2), "", "");
        interrupted.interrupted_by = Some(2);
        let mut script = Script::new(&clock, vec![interrupted]);
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
        assert_eq!(
            outcome,
            RunOutcome::Interrupted {
                attempts: 1,
                signal: 2,
                exit_code: 130
            }
        );
        let snapshot = pacer.status("acme", "m1").unwrap().snapshot;
        assert_eq!((snapshot.in_flight, snapshot.rolling_request_count), (0, 0));
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
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
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
        let outcome = run_paced(&pacer, &plan(5, None), &mut script, &mut |_| {}).unwrap();
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
        let error = run_paced(&pacer, &plan, &mut script, &mut |_| {}).unwrap_err();
        assert!(error.to_string().contains("nobody"), "{error}");
        assert_eq!(script.runs, 0);
    }
}
