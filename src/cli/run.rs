//! `credits limits run -- CMD`: pace a command, retry what is worth retrying.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use super::pacing::{
    explain, pacer, parse_seconds, progress_line, RequestArgs, StoreArgs, DEFAULT_MAX_DELAY_SECONDS,
};
use super::StatusError;
use crate::exit::ExitStatus;
use crate::paths::ProjectPaths;
use crate::process::{self, SignalWatch, StdoutMode, Tick};
use crate::rate_limits::owner::Owner;
use crate::rate_limits::paced_run::{
    run_paced, Attempt, AttemptContext, AttemptOutput, GiveUp, Phase, RunError, RunEvent,
    RunOutcome, RunPlan, MAX_ATTEMPTS_LIMIT,
};
use crate::rate_limits::retry::Classification;

/// Carriage return and "erase line": rewrites the progress line on a terminal.
const CLEAR_LINE: &str = "\r\x1b[2K";

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    request: RequestArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Attempts in all, the first included.
    #[arg(long, value_name = "N", default_value_t = 5, allow_negative_numbers = true,
          value_parser = |value: &str| super::values::parse_attempts_up_to(value, MAX_ATTEMPTS_LIMIT))]
    max_attempts: u32,
    /// Give up (exit 75) once SECS seconds have passed: waiting for budget,
    /// running the command, or before a retry whose wait would pass it.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, value_parser = parse_seconds)]
    deadline: Option<Duration>,
    /// The longest wait between attempts, whatever the provider says.
    #[arg(long, value_name = "SECS", default_value = DEFAULT_MAX_DELAY_SECONDS, allow_hyphen_values = true, value_parser = parse_seconds)]
    max_delay: Duration,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// The real command, run by [`process::run_passing_through`]. Its stdout is
/// held until the attempt is known to be final, except on the last attempt
/// allowed, which is final whatever happens and streams live.
struct Command<'a> {
    program: OsString,
    args: Vec<OsString>,
    signals: &'a SignalWatch,
    held: Option<std::fs::File>,
}

impl Attempt for Command<'_> {
    fn run(
        &mut self,
        context: AttemptContext,
        on_tick: &mut dyn FnMut(Tick),
    ) -> std::io::Result<AttemptOutput> {
        let mode = if context.last {
            StdoutMode::PassThrough
        } else {
            StdoutMode::Hold
        };
        let finished = process::run_passing_through(
            &self.program,
            &self.args,
            context.time_left,
            mode,
            self.signals,
            on_tick,
        )?;
        self.held = finished.held_stdout;
        Ok(AttemptOutput {
            ending: finished.ending,
            stdout: finished.stdout,
            stderr: finished.stderr,
            interrupted_by: finished.interrupted_by,
        })
    }

    fn discard_output(&mut self) -> u64 {
        self.held
            .take()
            .and_then(|file| file.metadata().ok())
            .map_or(0, |metadata| metadata.len())
    }
}

impl Command<'_> {
    /// Passes the final attempt's held stdout on to ours.
    fn publish(&mut self) -> anyhow::Result<()> {
        if let Some(mut held) = self.held.take() {
            let mut stdout = std::io::stdout().lock();
            match std::io::copy(&mut held, &mut stdout).and_then(|_| stdout.flush()) {
                Ok(()) => {}
                // Whoever reads our stdout went away: as with pass-through, not an error.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(error) => {
                    return Err(
                        anyhow::Error::new(error).context("cannot write the command's output")
                    )
                }
            }
        }
        Ok(())
    }
}

pub fn run(project: &ProjectPaths, args: RunArgs) -> anyhow::Result<ExitStatus> {
    let mut words = args.command.into_iter();
    let program = words.next().expect("clap requires a command");
    // Watch from the start: a signal in any phase (waiting for budget,
    // running, sleeping before a retry) then ends the run in bounded time.
    let signals = SignalWatch::install();
    let mut command = Command {
        program,
        args: words.collect(),
        signals: &signals,
        held: None,
    };
    let plan = RunPlan {
        request: args.request.into_request(Owner::current()),
        max_attempts: args.max_attempts,
        deadline: args.deadline,
        max_delay: args.max_delay,
    };
    let label = format!("{}/{}", plan.request.provider, plan.request.model);
    let stopped = signals.checker();
    let pacer = pacer(project, &args.store)?.with_stop(move || stopped().is_some());
    let show_progress = std::io::stderr().is_terminal();
    let mut progress_shown = false;
    let mut on_event = |event: RunEvent| match event {
        RunEvent::Waiting(notice) if show_progress => {
            eprint!("{CLEAR_LINE}{}", progress_line(&label, notice));
            progress_shown = true;
        }
        RunEvent::Waiting(_) => {}
        RunEvent::Retrying {
            attempt,
            delay,
            classification,
            discarded_bytes,
        } => {
            if std::mem::take(&mut progress_shown) {
                eprint!("{CLEAR_LINE}");
            }
            let dropped = match discarded_bytes {
                0 => String::new(),
                bytes => format!(" (its stdout, {bytes} bytes, is not passed on)"),
            };
            let line = format!(
                "specsmith-rs: attempt {attempt} failed ({}); retrying in {}{dropped}",
                describe(classification),
                human_duration(delay)
            );
            eprintln!("{}", crate::rate_limits::secrets::for_message(&line));
        }
        RunEvent::ReservationLost { id, still_counted } => {
            if std::mem::take(&mut progress_shown) {
                eprint!("{CLEAR_LINE}");
            }
            let counted = if still_counted {
                "the call is counted anyway"
            } else {
                "its request is no longer in the state, so nothing more is counted"
            };
            eprintln!(
                "warning: reservation `{id}` was reclaimed while the command ran (its lease ended or its owner looked dead); {counted}"
            );
        }
    };
    let stop = signals.checker();
    let outcome = run_paced(&pacer, &plan, &mut command, &stop, &mut on_event);
    if progress_shown {
        eprint!("{CLEAR_LINE}");
    }
    command.publish()?;
    let outcome = outcome.map_err(|error| match error {
        RunError::Pacing(error) => explain(error),
        RunError::Spawn(source) => anyhow::Error::new(source).context(format!(
            "cannot run `{}`",
            command.program.to_string_lossy()
        )),
    })?;
    match outcome {
        RunOutcome::Succeeded { .. } => Ok(ExitStatus::Success),
        RunOutcome::Failed {
            exit_code,
            classification,
            ..
        } => Err(StatusError::new(
            child_status(exit_code),
            format!(
                "the command failed and retrying cannot help ({}); exit code {exit_code}",
                describe(&classification)
            ),
        )
        .into()),
        RunOutcome::Interrupted {
            signal,
            exit_code,
            phase,
            ..
        } => {
            let during = match phase {
                Phase::WaitingForBudget => "while waiting for budget; nothing was sent",
                Phase::Running => "while the command ran; the call is counted",
                Phase::SleepingBeforeRetry => "while waiting to retry",
            };
            eprintln!("specsmith-rs: stopped by signal {signal} {during}");
            // A command that handled the signal and exited 0 still did not finish its work.
            let code = if exit_code == 0 {
                128 + signal
            } else {
                exit_code
            };
            Ok(child_status(code))
        }
        RunOutcome::GaveUp {
            attempts,
            reason,
            classification,
        } => {
            let why = match reason {
                GiveUp::AttemptsExhausted => {
                    format!("all {attempts} attempt(s) failed")
                }
                GiveUp::RetryPastDeadline { delay } => format!(
                    "the next attempt would start after the deadline (wait {})",
                    human_duration(delay)
                ),
                GiveUp::BudgetPastDeadline { message } => message,
                GiveUp::CommandPastDeadline => {
                    "the deadline passed while the command ran; it was stopped".to_owned()
                }
            };
            let last = classification
                .map(|classification| format!("; last failure: {}", describe(&classification)))
                .unwrap_or_default();
            Err(StatusError::new(
                ExitStatus::TimedOut,
                format!("gave up on `{label}`: {why}{last}"),
            )
            .into())
        }
    }
}

/// `rate_limit: Rate limit reached …`, for messages (already free of secrets).
fn describe(classification: &Classification) -> String {
    if classification.message.is_empty() {
        classification.kind.as_str().to_owned()
    } else {
        format!("{}: {}", classification.kind, classification.message)
    }
}

/// `50 ms`, `1.5 s`.
fn human_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// The wrapped command's exit code as ours; out-of-range codes become 1.
fn child_status(code: i32) -> ExitStatus {
    match u8::try_from(code) {
        Ok(0) | Err(_) => ExitStatus::Child(1),
        Ok(code) => ExitStatus::Child(code),
    }
}
