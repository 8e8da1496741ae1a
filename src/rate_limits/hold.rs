//! What providers said about a model that every process must respect: a
//! hold on sending, and the limits the provider states in its answers.
//!
//! Both live in the model's shared state, so one process's 429 or header
//! holds or tightens the whole fleet.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::retry::{Classification, ErrorKind};

/// How long a quota hold lasts when the provider names no reset time (24 h):
/// long enough that a spent account is not hammered, short enough that a
/// topped-up one recovers by itself the next day. `clear-hold` ends it sooner.
pub const DEFAULT_QUOTA_HOLD: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest shared backoff one answer places (60 s, the default
/// `--max-delay`): a bogus or day-long wait must not stop the fleet for
/// hours; a provider that still refuses answers again and extends it.
pub const MAX_BACKOFF_HOLD: Duration = Duration::from_secs(60);

/// Why sending to a model is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// A short shared backoff: the provider is overloaded, or prescribed a
    /// wait after a rate limit. Acquires wait it out.
    Backoff,
    /// The provider said a budget has nothing left until its reset
    /// (`remaining: 0`). Acquires wait until then.
    Exhausted,
    /// The account's quota or spend cap is used up: acquires are refused at
    /// once, until the hold ends or `credits limits clear-hold`.
    Quota,
}

impl HoldKind {
    /// True when an acquire is refused rather than made to wait.
    pub fn refuses(self) -> bool {
        self == HoldKind::Quota
    }

    /// Lower case, as `status` and the JSON show it.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Backoff => "backoff",
            HoldKind::Exhausted => "exhausted",
            HoldKind::Quota => "quota",
        }
    }
}

/// A hold on sending to a model until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// What kind of hold.
    pub kind: HoldKind,
    /// When it ends (Unix-epoch milliseconds).
    pub until: u64,
    /// What the provider said, secrets redacted, at most [`MAX_REASON_CHARS`].
    pub reason: String,
}

/// The longest reason kept with a hold.
pub const MAX_REASON_CHARS: usize = 300;

impl Hold {
    /// A hold of `kind` until `until`, its reason trimmed and redacted.
    pub fn new(kind: HoldKind, until: u64, reason: &str) -> Self {
        let reason = super::secrets::for_message(reason.trim());
        let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
            Some((end, _)) => format!("{}…", &reason[..end]),
            None => reason,
        };
        Self {
            kind,
            until,
            reason,
        }
    }

    /// The hold that stands when `self` holds and `other` arrives: the more
    /// severe kind wins; of the same kind, the later end.
    pub fn merge(self, other: Hold) -> Hold {
        match self.kind.cmp(&other.kind) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal if other.until > self.until => other,
            std::cmp::Ordering::Equal => self,
        }
    }
}

/// The per-minute limits a provider stated for a model in its answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatedLimits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Input tokens per minute (Anthropic's `input-tokens` budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_per_minute: Option<u64>,
    /// Output tokens per minute (Anthropic's `output-tokens` budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_minute: Option<u64>,
    /// Requests per day (Groq, Cerebras, an IETF policy of a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u64>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
}

impl StatedLimits {
    /// True when the provider stated nothing.
    pub fn is_empty(&self) -> bool {
        self.requests_per_minute.is_none()
            && self.tokens_per_minute.is_none()
            && self.input_tokens_per_minute.is_none()
            && self.output_tokens_per_minute.is_none()
            && self.requests_per_day.is_none()
            && self.tokens_per_day.is_none()
    }

    /// `self` with every limit `newer` states replaced.
    pub fn updated(self, newer: StatedLimits) -> StatedLimits {
        StatedLimits {
            requests_per_minute: newer.requests_per_minute.or(self.requests_per_minute),
            tokens_per_minute: newer.tokens_per_minute.or(self.tokens_per_minute),
            input_tokens_per_minute: newer
                .input_tokens_per_minute
                .or(self.input_tokens_per_minute),
            output_tokens_per_minute: newer
                .output_tokens_per_minute
                .or(self.output_tokens_per_minute),
            requests_per_day: newer.requests_per_day.or(self.requests_per_day),
            tokens_per_day: newer.tokens_per_day.or(self.tokens_per_day),
        }
    }
}

/// What the provider counts as used of one per-minute budget, by every
/// client of the key, as one answer's headers said (`limit - remaining`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedUse {
    /// Requests or tokens the provider counts as used.
    pub used: u64,
    /// When the provider's budget is whole again (Unix-epoch milliseconds).
    pub resets_at: Option<u64>,
}

/// The per-minute use the provider counts for a model's key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderUse {
    /// Of the requests-per-minute budget.
    pub requests: Option<CountedUse>,
    /// Of the tokens-per-minute budget.
    pub tokens: Option<CountedUse>,
    /// Of the input-tokens-per-minute budget (Anthropic's `input-tokens`).
    #[serde(default)]
    pub input_tokens: Option<CountedUse>,
    /// Of the output-tokens-per-minute budget (Anthropic's `output-tokens`).
    #[serde(default)]
    pub output_tokens: Option<CountedUse>,
}

impl ProviderUse {
    /// True when the answer said nothing of use.
    pub fn is_empty(&self) -> bool {
        self.requests.is_none()
            && self.tokens.is_none()
            && self.input_tokens.is_none()
            && self.output_tokens.is_none()
    }
}

/// What our own window counts of each per-minute budget, beside which the
/// provider's count shows another client's use. `None` for a budget the
/// model's state does not tally (input and output tokens, when the model is
/// paced by neither ITPM nor OTPM): the provider's count of it is not used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnUse {
    /// Requests in the window.
    pub requests: u64,
    /// Tokens in the window.
    pub tokens: u64,
    /// Input tokens in the minute's tally.
    pub input_tokens: Option<u64>,
    /// Output tokens in the minute's tally.
    pub output_tokens: Option<u64>,
}

/// Use the provider counts that our own window does not hold: requests and
/// tokens of another client of the same key. It counts against the budget
/// beside the window until the provider's reset (at most one window span
/// after the answer), then leaves at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnseenUse {
    /// Requests counted beside the window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests: u64,
    /// When they leave (Unix-epoch milliseconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests_until: u64,
    /// Tokens counted beside the window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens: u64,
    /// When they leave (Unix-epoch milliseconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens_until: u64,
    /// Input tokens counted beside the minute's tally.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_tokens: u64,
    /// When they leave (Unix-epoch milliseconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_tokens_until: u64,
    /// Output tokens counted beside the minute's tally.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_tokens: u64,
    /// When they leave (Unix-epoch milliseconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_tokens_until: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl UnseenUse {
    /// True when nothing unseen counts.
    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.tokens == 0 && self.input_tokens == 0 && self.output_tokens == 0
    }

    /// Drops each part whose time has come.
    pub fn expire(&mut self, now: u64) {
        if self.requests_until <= now {
            (self.requests, self.requests_until) = (0, 0);
        }
        if self.tokens_until <= now {
            (self.tokens, self.tokens_until) = (0, 0);
        }
        if self.input_tokens_until <= now {
            (self.input_tokens, self.input_tokens_until) = (0, 0);
        }
        if self.output_tokens_until <= now {
            (self.output_tokens, self.output_tokens_until) = (0, 0);
        }
    }

    /// Replaces the parts `counted` speaks of by what the provider counts
    /// beyond our own (`own`) at `now`; each lasts until the provider's
    /// reset, at most `span` milliseconds (a per-minute budget forgets use
    /// within its window), a full `span` when the provider names no reset.
    /// A part `own` does not tally is left alone.
    pub fn update(&mut self, counted: ProviderUse, own: OwnUse, now: u64, span: u64) {
        let part = |counted: CountedUse, own: u64| {
            let unseen = counted
                .used
                .saturating_sub(own)
                .min(super::window::MAX_COUNT);
            let last = now.saturating_add(span);
            let until = counted
                .resets_at
                .filter(|&reset| reset > now)
                .map_or(last, |reset| reset.min(last));
            if unseen == 0 {
                (0, 0)
            } else {
                (unseen, until)
            }
        };
        if let Some(counted) = counted.requests {
            (self.requests, self.requests_until) = part(counted, own.requests);
        }
        if let Some(counted) = counted.tokens {
            (self.tokens, self.tokens_until) = part(counted, own.tokens);
        }
        if let (Some(counted), Some(own)) = (counted.input_tokens, own.input_tokens) {
            (self.input_tokens, self.input_tokens_until) = part(counted, own);
        }
        if let (Some(counted), Some(own)) = (counted.output_tokens, own.output_tokens) {
            (self.output_tokens, self.output_tokens_until) = part(counted, own);
        }
    }
}

/// Milliseconds until a window's wait `wait(extra)` (`None`: never) is
/// over when `unseen` more count beside the window until `until`: either
/// the window frees room for them too, or they leave at `until` and the
/// window frees room for the rest. `None` only when the window alone can
/// never make room.
pub fn wait_with_unseen(
    now: u64,
    unseen: u64,
    until: u64,
    wait: impl Fn(u64) -> Option<u64>,
) -> Option<u64> {
    let alone = wait(0);
    if unseen == 0 || until <= now {
        return alone;
    }
    let after_they_leave = alone.map(|wait| wait.max(until - now));
    match (wait(unseen), after_they_leave) {
        (Some(together), Some(after)) => Some(together.min(after)),
        (together, after) => together.or(after),
    }
}

/// The hold a failed call's classification places on its model, if any:
///
/// - `quota_exhausted`: a quota hold until the provider's reset time, else
///   for [`DEFAULT_QUOTA_HOLD`];
/// - `overloaded`: a backoff of `delay_seconds` (the provider's wait, else
///   the backoff with jitter), so the fleet does not hammer it together;
/// - `rate_limit` with a prescribed wait: a backoff of that wait, which the
///   provider applies to the key, not to the one process that asked.
///
/// Backoffs last at most [`MAX_BACKOFF_HOLD`].
pub fn hold_for(classification: &Classification, now: u64, delay_seconds: f64) -> Option<Hold> {
    let after = |seconds: f64| {
        let millis = (seconds.max(0.0) * 1000.0).round();
        now.saturating_add(if millis >= u64::MAX as f64 {
            u64::MAX
        } else {
            millis as u64
        })
    };
    let backoff_cap = MAX_BACKOFF_HOLD.as_secs_f64();
    let (kind, until) = match classification.kind {
        ErrorKind::QuotaExhausted => {
            let reset = classification.resets_at.and_then(|moment| {
                moment
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(super::clock::duration_millis)
            });
            let until = reset
                .filter(|&reset| reset > now)
                .unwrap_or_else(|| after(DEFAULT_QUOTA_HOLD.as_secs_f64()));
            (HoldKind::Quota, until)
        }
        ErrorKind::Overloaded => (HoldKind::Backoff, after(delay_seconds.min(backoff_cap))),
        ErrorKind::RateLimit => (
            HoldKind::Backoff,
            after(classification.retry_after_seconds?.min(backoff_cap)),
        ),
        ErrorKind::TooLarge | ErrorKind::Other => return None,
    };
    (until > now).then(|| Hold::new(kind, until, &classification.message))
}

/// What an answer taught about a model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advice {
    /// Limits the provider stated.
    pub stated: StatedLimits,
    /// A hold to place (merged with any that stands).
    pub hold: Option<Hold>,
    /// Remove the standing hold first (`credits limits clear-hold`).
    pub clear_hold: bool,
    /// The use the provider counts, by every client of the key.
    pub provider_use: ProviderUse,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classification(kind: ErrorKind, retry_after_seconds: Option<f64>) -> Classification {
        Classification {
            kind,
            is_rate_limit: kind == ErrorKind::RateLimit,
            retryable: kind != ErrorKind::QuotaExhausted,
            retry_after_seconds,
            status_code: Some(429),
            resets_at: None,
            whole_account: false,
            message: "said".to_owned(),
        }
    }

    #[test]
    fn each_kind_places_its_hold() {
        let now = 1_000_000;
        let quota = hold_for(&classification(ErrorKind::QuotaExhausted, None), now, 1.0).unwrap();
        assert_eq!(quota.kind, HoldKind::Quota);
        assert_eq!(quota.until, now + 86_400_000);
        let mut with_reset = classification(ErrorKind::QuotaExhausted, None);
        with_reset.resets_at = Some(UNIX_EPOCH + Duration::from_millis(now + 5_000));
        assert_eq!(hold_for(&with_reset, now, 1.0).unwrap().until, now + 5_000);
        let overloaded = hold_for(&classification(ErrorKind::Overloaded, None), now, 2.5).unwrap();
        assert_eq!(
            (overloaded.kind, overloaded.until),
            (HoldKind::Backoff, now + 2_500)
        );
        let told = hold_for(&classification(ErrorKind::RateLimit, Some(7.0)), now, 7.0).unwrap();
        assert_eq!((told.kind, told.until), (HoldKind::Backoff, now + 7_000));
        assert_eq!(
            hold_for(&classification(ErrorKind::RateLimit, None), now, 4.0),
            None
        );
        assert_eq!(
            hold_for(&classification(ErrorKind::Other, None), now, 4.0),
            None
        );
        assert_eq!(
            hold_for(&classification(ErrorKind::TooLarge, None), now, 4.0),
            None
        );
    }

    #[test]
    fn the_more_severe_hold_wins_and_of_one_kind_the_later() {
        let backoff = Hold::new(HoldKind::Backoff, 50, "overloaded");
        let quota = Hold::new(HoldKind::Quota, 10, "monthly cap");
        assert_eq!(backoff.clone().merge(quota.clone()), quota);
        assert_eq!(quota.clone().merge(backoff.clone()), quota);
        let later = Hold::new(HoldKind::Backoff, 90, "again");
        assert_eq!(backoff.clone().merge(later.clone()), later);
        assert_eq!(later.clone().merge(backoff), later);
    }

    #[test]
    fn a_reason_is_redacted_and_bounded() {
        let hold = Hold::new(
            HoldKind::Quota,
            1,
            &format!(
                "key sk-abcdefghijklmnopqrstuvwxyz012345 {}",
                "x".repeat(1_000)
            ),
        );
        assert!(
            !hold.reason.contains("sk-abcdefghijklmnopqrstuvwxyz012345"),
            "{}",
            hold.reason
        );
        assert_eq!(hold.reason.chars().count(), MAX_REASON_CHARS + 1);
    }

    #[test]
    fn newer_statements_replace_only_what_they_state() {
        let old = StatedLimits {
            requests_per_minute: Some(500),
            tokens_per_minute: Some(30_000),
            input_tokens_per_minute: Some(10_000),
            output_tokens_per_minute: None,
            ..StatedLimits::default()
        };
        let newer = StatedLimits {
            requests_per_minute: None,
            tokens_per_minute: Some(20_000),
            input_tokens_per_minute: None,
            output_tokens_per_minute: Some(4_000),
            ..StatedLimits::default()
        };
        assert_eq!(
            old.updated(newer),
            StatedLimits {
                requests_per_minute: Some(500),
                tokens_per_minute: Some(20_000),
                input_tokens_per_minute: Some(10_000),
                output_tokens_per_minute: Some(4_000),
                ..StatedLimits::default()
            }
        );
    }
}
