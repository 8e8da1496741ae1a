//! `credits limits status --watch`: the status view redrawn in place on a
//! terminal, or one plain line per model and pass when stdout is not one.
//! Reads like `status` and, like it, never writes.

use std::io::IsTerminal as _;
use std::time::Duration;

use super::output;
use super::pacing::{read_status, StatusArgs};
use crate::exit::ExitStatus;
use crate::paths::ProjectPaths;
use crate::process::SignalWatch;
use crate::rate_limits::clock::{duration_millis, sleep_unless, Clock, SystemClock};
use crate::rate_limits::pacing::ModelStatus;

/// How long a watch runs without `--for`: the longest any seconds flag allows.
const LONGEST_WATCH: Duration = Duration::from_secs(super::values::MAX_SECONDS);
/// How often a sleep between redraws looks for a signal.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);
/// Width of a used/limit bar, in cells.
const BAR_WIDTH: usize = 24;
/// Cursor home, then clear to the end of the screen.
const REDRAW: &str = "\x1b[H\x1b[J";

/// Redraws (or prints) the status every `--interval` until `--for` runs out
/// or SIGINT / SIGTERM / SIGHUP arrives; exit 0 either way.
pub(super) fn watch(project: &ProjectPaths, args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let signals = SignalWatch::install();
    let stopped = signals.checker();
    let terminal = std::io::stdout().is_terminal();
    let clock = SystemClock;
    let length = args.for_seconds.unwrap_or(LONGEST_WATCH);
    let end = clock.now().saturating_add(duration_millis(length));
    // Each pass ends in a sleep of at least a millisecond of the clock (or
    // stops), so the loop ends by `end`, or at the first signal.
    loop {
        let now = clock.now();
        let statuses = read_status(project, args)?;
        if terminal {
            let frame = frame(&statuses, now, args.interval);
            output::write_stdout(format!("{REDRAW}{frame}\n").as_bytes())?;
        } else {
            for line in plain_lines(&statuses, now) {
                output::println(&line)?;
            }
        }
        let left = end.saturating_sub(clock.now());
        if left == 0 || stopped().is_some() {
            break;
        }
        let pause = args.interval.min(Duration::from_millis(left));
        if sleep_unless(&clock, pause, SIGNAL_SLICE, &stopped).is_some() {
            break;
        }
    }
    Ok(ExitStatus::Success)
}

/// One full screen: a heading, then per model its requests and tokens as
/// bars of used/limit (the effective limits), in flight and caps.
fn frame(statuses: &[ModelStatus], now: u64, interval: Duration) -> String {
    let mut lines = vec![format!(
        "pacing status at {}, every {} s (Ctrl-C ends)",
        timestamp(now),
        interval.as_secs_f64()
    )];
    if statuses.is_empty() {
        lines.push("no pacing state and no project profiles".to_owned());
    }
    for status in statuses {
        let snapshot = &status.snapshot;
        lines.push(String::new());
        lines.push(output::cell(&format!(
            "{}/{}",
            snapshot.provider, snapshot.model
        )));
        lines.push(format!(
            "  requests  {} {} of {} per minute",
            bar(snapshot.rolling_request_count, snapshot.effective_rpm_limit),
            output::thousands(snapshot.rolling_request_count),
            output::thousands(snapshot.effective_rpm_limit)
        ));
        lines.push(format!(
            "  tokens    {} {} of {} per minute",
            bar(snapshot.rolling_token_count, snapshot.effective_tpm_limit),
            output::thousands(snapshot.rolling_token_count),
            output::thousands(snapshot.effective_tpm_limit)
        ));
        for budget in &status.budgets {
            lines.push(format!(
                "  {:<9} {} {} of {} {}",
                budget.budget.short(),
                bar(budget.used, budget.effective_limit),
                output::thousands(budget.used),
                output::thousands(budget.effective_limit),
                budget.budget.describe()
            ));
        }
        lines.push(format!(
            "  in flight {}, cap {} (profile {})",
            snapshot.in_flight, snapshot.current_concurrency_cap, snapshot.base_concurrency_cap
        ));
    }
    lines.join("\n")
}

/// One line per model: `TIME provider/model requests U/L tokens U/L in_flight N cap C/B`.
fn plain_lines(statuses: &[ModelStatus], now: u64) -> Vec<String> {
    let time = timestamp(now);
    if statuses.is_empty() {
        return vec![format!("{time} no pacing state and no project profiles")];
    }
    statuses
        .iter()
        .map(|status| {
            let snapshot = &status.snapshot;
            let budgets: String = status
                .budgets
                .iter()
                .map(|budget| {
                    format!(
                        " {} {}/{}",
                        budget.budget.short().to_lowercase(),
                        budget.used,
                        budget.effective_limit
                    )
                })
                .collect();
            format!(
                "{time} {} requests {}/{} tokens {}/{}{budgets} in_flight {} cap {}/{}",
                output::cell(&format!("{}/{}", snapshot.provider, snapshot.model)),
                snapshot.rolling_request_count,
                snapshot.effective_rpm_limit,
                snapshot.rolling_token_count,
                snapshot.effective_tpm_limit,
                snapshot.in_flight,
                snapshot.current_concurrency_cap,
                snapshot.base_concurrency_cap
            )
        })
        .collect()
}

/// `[#######-----------------]`: `used` of `limit`, full (and no more) at or
/// past the limit; a used budget shows at least one cell.
fn bar(used: u64, limit: u64) -> String {
    let share = if limit == 0 {
        1.0
    } else {
        (used as f64 / limit as f64).min(1.0)
    };
    let mut filled = (share * BAR_WIDTH as f64).round() as usize;
    if used > 0 {
        filled = filled.max(1);
    }
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
}

/// Epoch milliseconds as RFC 3339 to the second, UTC.
fn timestamp(now: u64) -> String {
    let seconds = i64::try_from(now / 1000).unwrap_or(i64::MAX);
    jiff::Timestamp::from_second(seconds)
        .map_or_else(|_| now.to_string(), |moment| moment.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::budgets::{Budget, BudgetUse};

    #[test]
    fn budgets_beyond_rpm_and_tpm_get_a_bar_and_plain_fields() {
        let status = ModelStatus {
            snapshot: crate::rate_limits::scheduler::RateLimitSnapshot {
                provider: "acme".into(),
                model: "m".into(),
                effective_rpm_limit: 10,
                effective_tpm_limit: 1_000,
                ..Default::default()
            },
            reservations: Vec::new(),
            hold: None,
            stated: Default::default(),
            unseen: Default::default(),
            budgets: vec![BudgetUse {
                budget: Budget::OutputTokensPerMinute,
                limit: Some(400),
                effective_limit: 400,
                used: 200,
                frees_at: None,
            }],
        };
        let now = 1_796_169_600_000;
        assert_eq!(
            plain_lines(std::slice::from_ref(&status), now),
            ["2026-12-02T00:00:00Z acme/m requests 0/10 tokens 0/1000 otpm 200/400 in_flight 0 cap 0/0"]
        );
        let frame = frame(&[status], now, Duration::from_secs(2));
        assert!(
            frame.contains(&format!(
                "  OTPM      {} 200 of 400 output tokens per minute",
                bar(200, 400)
            )),
            "{frame}"
        );
    }

    #[test]
    fn bars_fill_with_use_and_stop_at_the_limit() {
        assert_eq!(bar(0, 100), format!("[{}]", "-".repeat(24)));
        assert_eq!(bar(1, 1000), format!("[#{}]", "-".repeat(23)));
        assert_eq!(
            bar(50, 100),
            format!("[{}{}]", "#".repeat(12), "-".repeat(12))
        );
        assert_eq!(bar(250, 100), format!("[{}]", "#".repeat(24)));
        assert_eq!(bar(0, 0), format!("[{}]", "#".repeat(24)));
    }

    #[test]
    fn timestamps_are_utc_seconds() {
        assert_eq!(timestamp(1_796_169_600_999), "2026-12-02T00:00:00Z");
    }
}
