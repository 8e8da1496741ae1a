//! `credits limits status --watch`: the status view redrawn in place on a
//! terminal, or one plain line per model and pass when stdout is not one.
//! Reads like `status` and, like it, never writes.

use std::io::IsTerminal as _;
use std::time::Duration;

use super::output;
use super::pacing::{catalog, read_status_and_holds, StatusArgs};
use super::status_text::{
    buckets_of, buckets_text, budget_figures, hold_text, stated_limits, stated_text, unseen_parts,
    unseen_text, BucketJson,
};
use crate::exit::ExitStatus;
use crate::paths::ProjectPaths;
use crate::process::SignalWatch;
use crate::rate_limits::backend::ProviderHold;
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

/// What one pass shows: each model's status with its concurrency buckets,
/// and the holds on every model of a provider.
struct Pass {
    models: Vec<(ModelStatus, Vec<BucketJson>)>,
    provider_holds: Vec<ProviderHold>,
}

impl Pass {
    /// Reads what `status` reads, never writing.
    fn read(project: &ProjectPaths, args: &StatusArgs) -> anyhow::Result<Self> {
        let (statuses, provider_holds) = read_status_and_holds(project, args)?;
        let catalog = catalog(project)?;
        let models = statuses
            .into_iter()
            .map(|status| {
                let buckets = buckets_of(&catalog, &status);
                (status, buckets)
            })
            .collect();
        Ok(Self {
            models,
            provider_holds,
        })
    }

    fn is_empty(&self) -> bool {
        self.models.is_empty() && self.provider_holds.is_empty()
    }
}

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
        let pass = Pass::read(project, args)?;
        if terminal {
            let frame = frame(&pass, now, args.interval);
            output::write_stdout(format!("{REDRAW}{frame}\n").as_bytes())?;
        } else {
            for line in plain_lines(&pass, now) {
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

/// One full screen: a heading, then per model its requests, tokens and
/// other budgets as bars of used/limit (the effective limits), the limits
/// the provider stated, in flight and caps, buckets, unseen use and its
/// hold; then the holds on every model of a provider.
fn frame(pass: &Pass, now: u64, interval: Duration) -> String {
    let mut lines = vec![format!(
        "pacing status at {}, every {} s (Ctrl-C ends)",
        timestamp(now),
        interval.as_secs_f64()
    )];
    if pass.is_empty() {
        lines.push("no pacing state and no project profiles".to_owned());
    }
    for (status, buckets) in &pass.models {
        let snapshot = &status.snapshot;
        lines.push(String::new());
        lines.push(output::cell(&format!(
            "{}/{}",
            snapshot.provider, snapshot.model
        )));
        lines.push(format!(
            "  requests  {} {} of {} per minute (profile limit {})",
            bar(snapshot.rolling_request_count, snapshot.effective_rpm_limit),
            output::thousands(snapshot.rolling_request_count),
            output::thousands(snapshot.effective_rpm_limit),
            output::thousands(snapshot.rpm_limit)
        ));
        lines.push(format!(
            "  tokens    {} {} of {} per minute (profile limit {})",
            bar(snapshot.rolling_token_count, snapshot.effective_tpm_limit),
            output::thousands(snapshot.rolling_token_count),
            output::thousands(snapshot.effective_tpm_limit),
            output::thousands(snapshot.tpm_limit)
        ));
        for budget in &status.budgets {
            lines.push(format!(
                "  {:<9} {} {}",
                budget.budget.short(),
                bar(budget.used, budget.effective_limit),
                budget_figures(budget)
            ));
        }
        let stated: Vec<String> = stated_limits(&status.stated)
            .into_iter()
            .map(|(_, limit, what)| stated_text(limit, what))
            .collect();
        if !stated.is_empty() {
            lines.push(format!("  provider says {}", stated.join(", ")));
        }
        lines.push(format!(
            "  in flight {}, cap {} (profile {})",
            snapshot.in_flight, snapshot.current_concurrency_cap, snapshot.base_concurrency_cap
        ));
        if !buckets.is_empty() {
            lines.push(format!("  buckets   {}", buckets_text(buckets)));
        }
        for part in unseen_parts(&status.unseen, now) {
            lines.push(format!("  unseen    {}", unseen_text(&part)));
        }
        if let Some(hold) = &status.hold {
            lines.push(format!("  hold      {}", hold_text(hold, now)));
        }
    }
    for held in &pass.provider_holds {
        lines.push(String::new());
        lines.push(format!("{} (every model)", output::cell(&held.provider)));
        lines.push(format!("  hold      {}", hold_text(&held.hold, now)));
    }
    lines.join("\n")
}

/// Per model one line, `TIME provider/model requests U/L tokens U/L [itpm
/// U/L…] in_flight N cap C/B [stated_rpm N…] [bucket_NAME N/C…]
/// [unseen_requests N…]`, and one more for its hold; then one line per hold
/// on every model of a provider.
fn plain_lines(pass: &Pass, now: u64) -> Vec<String> {
    let time = timestamp(now);
    if pass.is_empty() {
        return vec![format!("{time} no pacing state and no project profiles")];
    }
    let mut lines = Vec::new();
    for (status, buckets) in &pass.models {
        let snapshot = &status.snapshot;
        let label = output::cell(&format!("{}/{}", snapshot.provider, snapshot.model));
        let mut line = format!(
            "{time} {label} requests {}/{} tokens {}/{}",
            snapshot.rolling_request_count,
            snapshot.effective_rpm_limit,
            snapshot.rolling_token_count,
            snapshot.effective_tpm_limit,
        );
        for budget in &status.budgets {
            line.push_str(&format!(
                " {} {}/{}",
                budget.budget.short().to_lowercase(),
                budget.used,
                budget.effective_limit
            ));
        }
        line.push_str(&format!(
            " in_flight {} cap {}/{}",
            snapshot.in_flight, snapshot.current_concurrency_cap, snapshot.base_concurrency_cap
        ));
        for (short, limit, _) in stated_limits(&status.stated) {
            line.push_str(&format!(" stated_{short} {limit}"));
        }
        for bucket in buckets {
            line.push_str(&format!(
                " bucket_{} {}/{}",
                output::cell(&bucket.bucket),
                bucket.in_flight,
                bucket.cap
            ));
        }
        for part in unseen_parts(&status.unseen, now) {
            line.push_str(&format!(" unseen_{} {}", part.key, part.count));
        }
        lines.push(line);
        if let Some(hold) = &status.hold {
            lines.push(format!("{time} {label} hold {}", hold_text(hold, now)));
        }
    }
    for held in &pass.provider_holds {
        lines.push(format!(
            "{time} {} (every model) hold {}",
            output::cell(&held.provider),
            hold_text(&held.hold, now)
        ));
    }
    lines
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
    use crate::rate_limits::hold::{Hold, HoldKind, StatedLimits, UnseenUse};

    const NOW: u64 = 1_796_169_600_000;

    fn plain_status() -> ModelStatus {
        ModelStatus {
            snapshot: crate::rate_limits::scheduler::RateLimitSnapshot {
                provider: "acme".into(),
                model: "m".into(),
                rpm_limit: 20,
                tpm_limit: 2_000,
                effective_rpm_limit: 10,
                effective_tpm_limit: 1_000,
                ..Default::default()
            },
            reservations: Vec::new(),
            hold: None,
            stated: Default::default(),
            unseen: Default::default(),
            budgets: Vec::new(),
        }
    }

    fn one(status: ModelStatus, buckets: Vec<BucketJson>) -> Pass {
        Pass {
            models: vec![(status, buckets)],
            provider_holds: Vec::new(),
        }
    }

    #[test]
    fn budgets_beyond_rpm_and_tpm_get_a_bar_and_plain_fields() {
        let mut status = plain_status();
        status.budgets = vec![BudgetUse {
            budget: Budget::OutputTokensPerMinute,
            limit: Some(400),
            effective_limit: 400,
            used: 200,
            frees_at: None,
        }];
        let pass = one(status, Vec::new());
        assert_eq!(
            plain_lines(&pass, NOW),
            ["2026-12-02T00:00:00Z acme/m requests 0/10 tokens 0/1000 otpm 200/400 in_flight 0 cap 0/0"]
        );
        let frame = frame(&pass, NOW, Duration::from_secs(2));
        assert!(
            frame.contains(&format!(
                "  OTPM      {} 200 of 400 output tokens per minute (profile limit 400)",
                bar(200, 400)
            )),
            "{frame}"
        );
    }

    #[test]
    fn holds_stated_limits_buckets_and_unseen_use_show_as_status_words_them() {
        let mut status = plain_status();
        status.hold = Some(Hold::new(
            HoldKind::Backoff,
            NOW + 30_000,
            "overloaded_error",
        ));
        status.stated = StatedLimits {
            requests_per_minute: Some(12),
            output_tokens_per_minute: Some(8_000),
            ..StatedLimits::default()
        };
        status.unseen = UnseenUse {
            requests: 3,
            requests_until: NOW + 20_000,
            ..UnseenUse::default()
        };
        let buckets = vec![
            BucketJson {
                bucket: "background".into(),
                in_flight: 0,
                cap: 1,
            },
            BucketJson {
                bucket: "reasoning".into(),
                in_flight: 1,
                cap: 1,
            },
        ];
        let mut pass = one(status, buckets);
        pass.provider_holds.push(ProviderHold {
            provider: "acme".into(),
            hold: Hold::new(HoldKind::Quota, NOW + 3_600_000, "spend limit reached"),
        });
        let model_hold = "backoff until 2026-12-02T00:00:30Z (in 30 s): overloaded_error";
        let provider_hold = "quota until 2026-12-02T01:00:00Z (in 3600 s): spend limit reached";
        assert_eq!(
            plain_lines(&pass, NOW),
            [
                "2026-12-02T00:00:00Z acme/m requests 0/10 tokens 0/1000 in_flight 0 cap 0/0 \
                 stated_rpm 12 stated_otpm 8000 bucket_background 0/1 bucket_reasoning 1/1 \
                 unseen_requests 3"
                    .to_owned(),
                format!("2026-12-02T00:00:00Z acme/m hold {model_hold}"),
                format!("2026-12-02T00:00:00Z acme (every model) hold {provider_hold}"),
            ]
        );
        let frame = frame(&pass, NOW, Duration::from_secs(2));
        let expected = [
            "pacing status at 2026-12-02T00:00:00Z, every 2 s (Ctrl-C ends)".to_owned(),
            String::new(),
            "acme/m".to_owned(),
            format!("  requests  {} 0 of 10 per minute (profile limit 20)", bar(0, 10)),
            format!("  tokens    {} 0 of 1,000 per minute (profile limit 2,000)", bar(0, 1_000)),
            "  provider says 12 requests per minute, 8,000 output tokens per minute".to_owned(),
            "  in flight 0, cap 0 (profile 0)".to_owned(),
            "  buckets   background 0/1, reasoning 1/1".to_owned(),
            "  unseen    provider counts 3 more requests than this window (another client of the key), for 20 s".to_owned(),
            format!("  hold      {model_hold}"),
            String::new(),
            "acme (every model)".to_owned(),
            format!("  hold      {provider_hold}"),
        ]
        .join("\n");
        assert_eq!(frame, expected);
    }

    #[test]
    fn a_provider_hold_alone_is_shown_rather_than_no_state() {
        let pass = Pass {
            models: Vec::new(),
            provider_holds: vec![ProviderHold {
                provider: "acme".into(),
                hold: Hold::new(HoldKind::Quota, NOW + 1_000, "out"),
            }],
        };
        assert_eq!(
            plain_lines(&pass, NOW),
            ["2026-12-02T00:00:00Z acme (every model) hold quota until 2026-12-02T00:00:01Z (in 1 s): out"]
        );
        assert!(!frame(&pass, NOW, Duration::from_secs(1)).contains("no pacing state"));
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
