//! What pacing takes from learned limits: the lower of the provider's and the
//! profile's limit per budget, a hold when a budget is spent, and how much of
//! each budget the provider counts as used (by every client of the key).

use serde::Serialize;

use super::{Dimension, LearnedLimits, Window};
use crate::rate_limits::hold::{Advice, CountedUse, Hold, HoldKind, ProviderUse, StatedLimits};
use crate::rate_limits::profile::{effective_limit, Profile};

/// The limits a profile sets, per budget, before its utilization target.
/// Budgets the profile does not set are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProfileBudget {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// Input tokens per minute.
    pub input_tokens_per_minute: Option<u64>,
    /// Output tokens per minute.
    pub output_tokens_per_minute: Option<u64>,
    /// Requests per day.
    pub requests_per_day: Option<u64>,
    /// Tokens per day.
    pub tokens_per_day: Option<u64>,
    /// The share of each limit to budget for, in (0, 1].
    pub utilization_target: f64,
}

impl ProfileBudget {
    /// The budgets `profile` sets: its RPM and TPM.
    pub fn from_profile(profile: &Profile) -> Self {
        Self {
            requests_per_minute: Some(profile.rpm_limit()),
            tokens_per_minute: Some(profile.tpm_limit()),
            input_tokens_per_minute: None,
            output_tokens_per_minute: None,
            requests_per_day: None,
            tokens_per_day: None,
            utilization_target: profile.utilization_target(),
        }
    }

    /// The profile's limit for `dimension` over `window`, if it sets one.
    pub fn limit(&self, dimension: Dimension, window: Window) -> Option<u64> {
        match (dimension, window) {
            (Dimension::Requests, Window::Minute) => self.requests_per_minute,
            (Dimension::Tokens, Window::Minute) => self.tokens_per_minute,
            (Dimension::InputTokens, Window::Minute) => self.input_tokens_per_minute,
            (Dimension::OutputTokens, Window::Minute) => self.output_tokens_per_minute,
            (Dimension::Requests, Window::Day) => self.requests_per_day,
            (Dimension::Tokens, Window::Day) => self.tokens_per_day,
            _ => None,
        }
    }
}

/// The advice for one budget the provider stated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetAdvice {
    /// What the budget counts.
    pub dimension: Dimension,
    /// Its window.
    pub window: Window,
    /// The profile's limit, before the utilization target.
    pub profile_limit: Option<u64>,
    /// The provider's limit.
    pub provider_limit: Option<u64>,
    /// The lower of the two, times the utilization target: what to pace
    /// with. `None` when neither states a limit.
    pub pace_limit: Option<u64>,
    /// Whether the provider's limit is below the profile's (pacing with the
    /// profile alone would draw 429s).
    pub provider_is_lower: bool,
    /// The provider says the budget is spent (`remaining: 0`) and whole again
    /// at this instant (epoch ms, in the future): no request may go before it.
    pub hold_until_ms: Option<u64>,
    /// `limit - remaining`: what the provider counts as used in the window.
    pub provider_used: Option<u64>,
}

impl BudgetAdvice {
    /// How much more the provider counts as used than `own_used`, what our
    /// own window holds: use by other clients of the key, by which to
    /// tighten our window. 0 when the provider counts no more than we do.
    pub fn unseen_use(&self, own_used: u64) -> u64 {
        self.provider_used
            .map_or(0, |used| used.saturating_sub(own_used))
    }
}

/// Advice for every budget in `learned`, compared with `profile`, at `now_ms`
/// (epoch ms). A reset already past holds nothing.
pub fn advise(learned: &LearnedLimits, profile: &ProfileBudget, now_ms: u64) -> Vec<BudgetAdvice> {
    learned
        .limits
        .iter()
        .map(|limit| {
            let profile_limit = profile.limit(limit.dimension, limit.window);
            let lower = match (profile_limit, limit.limit) {
                (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
                (one, other) => one.or(other),
            };
            let spent = limit.remaining == Some(0);
            BudgetAdvice {
                dimension: limit.dimension,
                window: limit.window,
                profile_limit,
                provider_limit: limit.limit,
                pace_limit: lower.map(|lower| effective_limit(lower, profile.utilization_target)),
                provider_is_lower: matches!(
                    (profile_limit, limit.limit),
                    (Some(ours), Some(theirs)) if theirs < ours
                ),
                hold_until_ms: limit.reset_at_ms.filter(|reset| spent && *reset > now_ms),
                provider_used: limit.used(),
            }
        })
        .collect()
}

/// Until when every request must wait: the latest hold among `advice`, since
/// every spent budget must refill first. `None` when nothing is held.
pub fn hold_until(advice: &[BudgetAdvice]) -> Option<u64> {
    advice
        .iter()
        .filter_map(|budget| budget.hold_until_ms)
        .max()
}

/// What the rate-limit headers of an answer from `provider` say, as advice
/// for the model's shared state ([`shared_advice`]); `None` when they say
/// nothing worth storing.
pub fn advice_from_headers(
    headers: &[(String, String)],
    provider: &str,
    now_ms: u64,
) -> Option<Advice> {
    let learned = super::learn(headers, provider, now_ms);
    if learned.is_empty() {
        return None;
    }
    let advice = shared_advice(&learned, now_ms);
    (!advice.stated.is_empty() || advice.hold.is_some() || !advice.provider_use.is_empty())
        .then_some(advice)
}

/// The longest hold a spent budget places (24 h): a daily budget resets
/// within a day; a reset time further out is not believed.
pub const MAX_EXHAUSTED_HOLD_MILLIS: u64 = 24 * 60 * 60 * 1000;

/// What `learned` means for the model's shared state: the per-minute
/// request and token limits the provider states, and, when a budget has
/// nothing left (`remaining: 0`) and its reset is ahead, a hold until the
/// latest such reset (at most [`MAX_EXHAUSTED_HOLD_MILLIS`] away), so no
/// process sends a request that must fail; and the per-minute use the
/// provider counts (`limit - remaining`), by which the model's state
/// tightens its window when another client shares the key.
pub fn shared_advice(learned: &LearnedLimits, now_ms: u64) -> Advice {
    let per_minute = |dimension| {
        learned
            .find(dimension, Window::Minute)
            .and_then(|limit| limit.limit)
    };
    let per_day = |dimension| {
        learned
            .find(dimension, Window::Day)
            .and_then(|limit| limit.limit)
    };
    let stated = StatedLimits {
        requests_per_minute: per_minute(Dimension::Requests),
        tokens_per_minute: per_minute(Dimension::Tokens),
        input_tokens_per_minute: per_minute(Dimension::InputTokens),
        output_tokens_per_minute: per_minute(Dimension::OutputTokens),
        requests_per_day: per_day(Dimension::Requests),
        tokens_per_day: per_day(Dimension::Tokens),
    };
    let spent = learned
        .limits
        .iter()
        .filter(|limit| limit.remaining == Some(0))
        .filter_map(|limit| Some((limit.reset_at_ms.filter(|reset| *reset > now_ms)?, limit)))
        .max_by_key(|(reset, _)| *reset);
    let hold = spent.map(|(reset, limit)| {
        Hold::new(
            HoldKind::Exhausted,
            reset.min(now_ms.saturating_add(MAX_EXHAUSTED_HOLD_MILLIS)),
            &format!(
                "the provider says no {} are left {} until the reset",
                limit.dimension, limit.window
            ),
        )
    });
    let counted = |dimension| {
        let limit = learned.find(dimension, Window::Minute)?;
        Some(CountedUse {
            used: limit.used()?,
            resets_at: limit.reset_at_ms,
        })
    };
    Advice {
        stated,
        hold,
        clear_hold: false,
        provider_use: ProviderUse {
            requests: counted(Dimension::Requests),
            tokens: counted(Dimension::Tokens),
            input_tokens: counted(Dimension::InputTokens),
            output_tokens: counted(Dimension::OutputTokens),
        },
    }
}
