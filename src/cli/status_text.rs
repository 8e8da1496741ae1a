//! How `status` and `status --watch` word the parts of a model's status
//! beyond the table: holds, budgets, concurrency buckets, the limits the
//! provider stated and the use it counts that our window does not. One
//! place, so the two views never say the same thing two ways.

use serde::Serialize;

use super::output;
use crate::rate_limits::budgets::BudgetUse;
use crate::rate_limits::clock::format_epoch_millis;
use crate::rate_limits::hold::{Hold, StatedLimits, UnseenUse};
use crate::rate_limits::pacing::ModelStatus;
use crate::rate_limits::scheduler::normalize_bucket;
use crate::rate_limits::Catalog;

/// One concurrency bucket of a model, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct BucketJson {
    pub(super) bucket: String,
    pub(super) in_flight: u64,
    pub(super) cap: u32,
}

/// The buckets `status`'s profile sets for its model, with the in-flight
/// reservations of each; empty when the profile sets none.
pub(super) fn buckets_of(catalog: &Catalog, status: &ModelStatus) -> Vec<BucketJson> {
    let Some(entry) = catalog.resolve(&status.snapshot.provider, &status.snapshot.model) else {
        return Vec::new();
    };
    let mut buckets: Vec<BucketJson> = entry
        .profile
        .concurrency_by_bucket()
        .into_iter()
        .map(|(name, cap)| {
            let bucket = normalize_bucket(&name);
            let in_flight = status
                .reservations
                .iter()
                .filter(|reservation| reservation.bucket.as_ref() == Some(&bucket))
                .count() as u64;
            BucketJson {
                bucket,
                in_flight,
                cap,
            }
        })
        .collect();
    buckets.sort_by(|one, other| one.bucket.cmp(&other.bucket));
    buckets
}

/// `background 0/1, reasoning 1/1`: each bucket's in-flight count and cap.
pub(super) fn buckets_text(buckets: &[BucketJson]) -> String {
    buckets
        .iter()
        .map(|bucket| {
            format!(
                "{} {}/{}",
                output::cell(&bucket.bucket),
                bucket.in_flight,
                bucket.cap
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A budget beyond RPM and TPM as `status` shows it:
/// `ITPM 600 of 1,000 input tokens per minute (profile limit 1,000; frees at …)`.
pub(super) fn budget_text(budget: &BudgetUse) -> String {
    format!("{} {}", budget.budget.short(), budget_figures(budget))
}

/// [`budget_text`] without the budget's short name, for a view that puts a
/// bar between the two.
pub(super) fn budget_figures(budget: &BudgetUse) -> String {
    let mut text = format!(
        "{} of {} {}",
        output::thousands(budget.used),
        output::thousands(budget.effective_limit),
        budget.budget.describe()
    );
    match budget.limit {
        Some(limit) => text.push_str(&format!(" (profile limit {}", output::thousands(limit))),
        None => text.push_str(" (stated by the provider"),
    }
    if let Some(frees_at) = budget.frees_at {
        text.push_str(&format!("; frees at {}", format_epoch_millis(frees_at)));
    }
    text.push(')');
    text
}

/// A hold as `status` shows it: kind, end and the provider's words.
pub(super) fn hold_text(hold: &Hold, now: u64) -> String {
    format!(
        "{} until {} (in {:.0} s): {}",
        hold.kind.as_str(),
        format_epoch_millis(hold.until),
        hold.until.saturating_sub(now) as f64 / 1000.0,
        output::cell(&hold.reason)
    )
}

/// Each limit the provider stated, with the short name of its budget and
/// its words: `("tpm", 40000, "tokens per minute")`, in a fixed order.
pub(super) fn stated_limits(stated: &StatedLimits) -> Vec<(&'static str, u64, &'static str)> {
    [
        ("rpm", stated.requests_per_minute, "requests per minute"),
        ("tpm", stated.tokens_per_minute, "tokens per minute"),
        (
            "itpm",
            stated.input_tokens_per_minute,
            "input tokens per minute",
        ),
        (
            "otpm",
            stated.output_tokens_per_minute,
            "output tokens per minute",
        ),
        ("rpd", stated.requests_per_day, "requests per day"),
        ("tpd", stated.tokens_per_day, "tokens per day"),
    ]
    .into_iter()
    .filter_map(|(short, limit, what)| limit.map(|limit| (short, limit, what)))
    .collect()
}

/// `40,000 tokens per minute`: one stated limit in words.
pub(super) fn stated_text(limit: u64, what: &str) -> String {
    format!("{} {what}", output::thousands(limit))
}

/// One part of the use the provider counts beyond our window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UnseenPart {
    /// A field name: `requests`, `tokens`, `input_tokens`, `output_tokens`.
    pub(super) key: &'static str,
    /// The same in words.
    pub(super) what: &'static str,
    /// How many.
    pub(super) count: u64,
    /// Milliseconds it still counts.
    pub(super) left: u64,
}

/// Each part of the use the provider counts beyond our window that counts now.
pub(super) fn unseen_parts(unseen: &UnseenUse, now: u64) -> Vec<UnseenPart> {
    [
        (
            "requests",
            "requests",
            unseen.requests,
            unseen.requests_until,
        ),
        ("tokens", "tokens", unseen.tokens, unseen.tokens_until),
        (
            "input_tokens",
            "input tokens",
            unseen.input_tokens,
            unseen.input_tokens_until,
        ),
        (
            "output_tokens",
            "output tokens",
            unseen.output_tokens,
            unseen.output_tokens_until,
        ),
    ]
    .into_iter()
    .filter(|(_, _, count, _)| *count > 0)
    .map(|(key, what, count, until)| UnseenPart {
        key,
        what,
        count,
        left: until.saturating_sub(now),
    })
    .collect()
}

/// One part of [`unseen_parts`] in words.
pub(super) fn unseen_text(part: &UnseenPart) -> String {
    format!(
        "provider counts {} more {} than this window (another client of the key), for {:.0} s",
        output::thousands(part.count),
        part.what,
        part.left as f64 / 1000.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::hold::HoldKind;

    #[test]
    fn a_hold_says_its_kind_end_time_left_and_reason() {
        let hold = Hold::new(HoldKind::Quota, 1_796_169_660_000, "monthly limit");
        assert_eq!(
            hold_text(&hold, 1_796_169_600_000),
            "quota until 2026-12-02T00:01:00Z (in 60 s): monthly limit"
        );
    }

    #[test]
    fn stated_limits_come_in_a_fixed_order_and_only_when_stated() {
        let stated = StatedLimits {
            tokens_per_day: Some(9),
            requests_per_minute: Some(12),
            ..StatedLimits::default()
        };
        assert_eq!(
            stated_limits(&stated),
            [
                ("rpm", 12, "requests per minute"),
                ("tpd", 9, "tokens per day")
            ]
        );
        assert_eq!(
            stated_text(40_000, "tokens per minute"),
            "40,000 tokens per minute"
        );
    }

    #[test]
    fn unseen_use_shows_only_parts_that_count() {
        let unseen = UnseenUse {
            tokens: 1_500,
            tokens_until: 30_000,
            output_tokens: 200,
            output_tokens_until: 20_000,
            ..UnseenUse::default()
        };
        let parts = unseen_parts(&unseen, 12_000);
        assert_eq!(
            parts
                .iter()
                .map(|part| (part.key, part.count, part.left))
                .collect::<Vec<_>>(),
            [("tokens", 1_500, 18_000), ("output_tokens", 200, 8_000)]
        );
        assert_eq!(
            unseen_text(&parts[1]),
            "provider counts 200 more output tokens than this window (another client of the key), for 8 s"
        );
    }
}
