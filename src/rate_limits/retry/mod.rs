//! Provider error classification: what a failed call's status, headers and
//! body say about retrying, and how long to wait.
//!
//! [`classify`] sorts a failure into an [`ErrorKind`] by weighing the HTTP
//! status, the error codes in the body (and `x-amzn-errortype`) and the text
//! together, then reads the wait the provider prescribed. The most specific
//! source of that wait wins:
//!
//! 1. the `retry-after-ms` header;
//! 2. the `Retry-After` header, as delay-seconds or an HTTP-date measured from `now`;
//! 3. the reset header of the budget that ran out (its `remaining` is 0; when
//!    no `remaining` says so, the latest reset);
//! 4. a structured field of the body: Google's `RetryInfo.retryDelay`, a
//!    `retry_after` field, rate-limit headers echoed in the body, a reset time;
//! 5. the message text ("Please try again in 10.793s", "retry after 7 seconds").
//!
//! `Retry-After: 0` means 0, not none. A client describing its own backoff
//! ("Retrying in 0.2 seconds") is not the provider's word and is ignored.

mod body;
mod durations;
mod headers;
mod text;
pub mod timestamps;
mod verdict;

#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use durations::{parse_duration, parse_reset};
pub use headers::{
    parse_header_line, parse_headers_file, split_response, HeaderError, HeadersFile,
};
pub use timestamps::{parse_rfc3339, TimestampError};

/// Longest backoff without a provider-prescribed wait, in seconds.
pub const MAX_BACKOFF_SECONDS: f64 = 60.0;
/// Backoff for the first attempt, in seconds.
pub const BASE_BACKOFF_SECONDS: f64 = 1.0;
/// Jitter added on top of a backoff, as a share of it.
pub const JITTER_RATIO: f64 = 0.2;
/// Default cap on a delay actually slept, in seconds, so a bogus prescribed
/// wait never puts anyone to sleep for hours.
pub const DEFAULT_DELAY_CAP_SECONDS: f64 = 60.0;
/// Longest `message` kept in a [`Classification`], in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// What a client saw of a failed provider call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderResponse {
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Response headers as received; names are matched case-insensitively.
    pub headers: Vec<(String, String)>,
    /// Body or error message text (may embed JSON).
    pub body: String,
}

/// The broad reason a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A per-window request or token limit, per minute or per day: wait and retry.
    RateLimit,
    /// Credits, balance, spend cap or a zero free-tier limit: retrying cannot help.
    QuotaExhausted,
    /// The provider is out of capacity (even when it answers 429): retry later.
    Overloaded,
    /// This request can never fit the limit: retrying cannot help.
    TooLarge,
    /// Anything else; retryable for server errors and network failures only.
    Other,
}

impl ErrorKind {
    /// The name used in JSON output: `rate_limit`, `quota_exhausted`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The verdict on one failed call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Classification {
    /// The broad reason.
    pub kind: ErrorKind,
    /// True for [`ErrorKind::RateLimit`], as the anchor means it.
    pub is_rate_limit: bool,
    /// Whether waiting and trying again can succeed.
    pub retryable: bool,
    /// The wait the provider prescribed, in seconds (to the millisecond),
    /// uncapped; `None` when it said nothing.
    pub retry_after_seconds: Option<f64>,
    /// The HTTP status: as given, else as the body or an SDK's message states
    /// it. An error inside a 2xx response (a failed stream) reports the
    /// error's own code when it has one.
    pub status_code: Option<u16>,
    /// The provider's error message when the body has one, else the trimmed
    /// text; credentials replaced by `[REDACTED]`; at most
    /// [`MAX_MESSAGE_CHARS`] characters.
    pub message: String,
    /// For [`ErrorKind::QuotaExhausted`], the moment the provider says access
    /// returns ("You will regain access on 2026-12-01 at 00:00 UTC"; a date
    /// or time without a zone is read as UTC); `None` when it names none.
    /// Written in JSON as RFC 3339 and left out when `None`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "timestamps::serialize_moment"
    )]
    pub resets_at: Option<SystemTime>,
    /// For [`ErrorKind::QuotaExhausted`]: the provider says the whole
    /// account is out (billing, credits, a spend cap or monthly allowance),
    /// not one model's quota, so every model of the provider is held. Not
    /// written in JSON: `classify --json` keeps the anchor's fields.
    #[serde(skip)]
    pub whole_account: bool,
}

/// Classifies a failed call. `now` is the moment HTTP-dates and reset
/// timestamps are measured from.
pub fn classify(response: &ProviderResponse, now: SystemTime) -> Classification {
    let raw = response.body.as_str();
    let facts = body::read_body(raw, now);
    let mut codes = facts.codes.clone();
    if let Some(error_type) = headers::find(&response.headers, "x-amzn-errortype") {
        codes.push(body::normalize_code(
            error_type.split(':').next().unwrap_or_default(),
        ));
    }
    // An error inside a successful response (a stream that failed midway)
    // is better described by the error's own code than by the 200.
    let status = match response.status {
        Some(given) if (200..300).contains(&given) => Some(facts.status.unwrap_or(given)),
        Some(given) => Some(given),
        None => facts.status.or_else(|| text::stated_status(raw)),
    };

    // Nested messages are appended unescaped so phrases split by `\"` still match.
    let mut haystack = raw.to_lowercase();
    for message in &facts.messages {
        haystack.push('\n');
        haystack.push_str(&message.to_lowercase());
    }

    let header_retry_after = headers::retry_after(&response.headers, now);
    let body_retry_after = facts
        .retry_delay
        .or(facts.retry_after)
        .or_else(|| headers::retry_after(&facts.headers, now));
    let text_wait = text::stated_wait(&haystack);
    let retry_after_seconds = header_retry_after
        .or_else(|| headers::exhausted_budget_reset(&response.headers, now))
        .or(body_retry_after)
        .or_else(|| headers::exhausted_budget_reset(&facts.headers, now))
        .or(facts.reset)
        .or(text_wait)
        .map(|seconds| {
            let rounded = (seconds * 1000.0).round() / 1000.0;
            if rounded.is_finite() {
                rounded
            } else {
                seconds
            }
        });

    let should_retry = headers::find(&response.headers, "x-should-retry").and_then(|value| {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    });
    let evidence = verdict::Evidence {
        status,
        codes: &codes,
        text: &haystack,
        violations: &facts.violations,
        prescribed_wait: header_retry_after.is_some()
            || body_retry_after.is_some()
            || text_wait.is_some(),
        should_retry,
    };
    let (kind, retryable) = verdict::decide(&evidence);

    let message = facts
        .messages
        .iter()
        .map(|message| message.trim())
        .find(|message| !message.is_empty())
        .unwrap_or(raw.trim());
    let resets_at = match kind {
        ErrorKind::QuotaExhausted => text::stated_access_return(&haystack),
        _ => None,
    };
    let whole_account = kind == ErrorKind::QuotaExhausted && verdict::whole_account(&evidence);
    Classification {
        kind,
        is_rate_limit: kind == ErrorKind::RateLimit,
        retryable,
        retry_after_seconds,
        status_code: status,
        message: shorten(&crate::rate_limits::secrets::redact(prefix(
            message,
            2 * MAX_MESSAGE_CHARS,
        ))),
        resets_at,
        whole_account,
    }
}

/// The first `characters` characters of `text`. Redaction runs on a prefix
/// twice as long as what is kept, so a key straddling the cut is still seen whole.
fn prefix(text: &str, characters: usize) -> &str {
    match text.char_indices().nth(characters) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters, the last one `…` when cut.
fn shorten(message: &str) -> String {
    if message.chars().nth(MAX_MESSAGE_CHARS).is_none() {
        return message.to_owned();
    }
    format!("{}…", prefix(message, MAX_MESSAGE_CHARS - 1))
}

/// The anchor's retry rule, in seconds: the provider's prescribed wait when it
/// gave one, else `1 × 2^(attempt−1)` capped at 60, plus up to 20 % jitter.
/// `jitter_unit` is a random number in [0, 1); `attempt` counts from 1.
pub fn retry_delay(prescribed_seconds: Option<f64>, attempt: u32, jitter_unit: f64) -> f64 {
    if let Some(seconds) = prescribed_seconds {
        return seconds;
    }
    let exponent = attempt.saturating_sub(1).min(63) as i32;
    let backoff = (BASE_BACKOFF_SECONDS * 2f64.powi(exponent)).min(MAX_BACKOFF_SECONDS);
    backoff + backoff * JITTER_RATIO * jitter_unit.clamp(0.0, 1.0)
}

/// The delay to actually sleep before attempt `attempt + 1`, in seconds:
/// [`retry_delay`] of the classification's prescribed wait, then capped at
/// `cap_seconds` (use [`DEFAULT_DELAY_CAP_SECONDS`]; a negative or NaN cap
/// means 0). The classification's `retry_after_seconds` stays uncapped.
pub fn compute_retry_delay(
    classification: &Classification,
    attempt: u32,
    jitter_unit: f64,
    cap_seconds: f64,
) -> f64 {
    retry_delay(classification.retry_after_seconds, attempt, jitter_unit).min(cap_seconds.max(0.0))
}
