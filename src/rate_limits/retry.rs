//! Provider error classification: what a failed call's status, headers and
//! body say about retrying, and how long to wait.
//!
//! This first version keeps the anchor's rules (HTTP 429 or the words "rate
//! limit" / "too many requests"; `retry-after-ms`, `retry-after`,
//! `x-ratelimit-reset-after` headers; "try again in N s" text). The public
//! types are the contract the scheduler and the CLI build on.

use std::time::SystemTime;

/// Longest backoff without a provider-prescribed wait, in seconds.
pub const MAX_BACKOFF_SECONDS: f64 = 60.0;
/// Backoff for the first attempt, in seconds.
pub const BASE_BACKOFF_SECONDS: f64 = 1.0;
/// Jitter added on top of a backoff, as a share of it.
pub const JITTER_RATIO: f64 = 0.2;

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
    /// A per-window request or token limit: wait and retry.
    RateLimit,
    /// Credits, balance or spend cap exhausted: retrying cannot help.
    QuotaExhausted,
    /// The provider is out of capacity: retry later.
    Overloaded,
    /// This request can never fit the limit: retrying cannot help.
    TooLarge,
    /// Anything else.
    Other,
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
    /// The wait the provider prescribed, in seconds, uncapped; `None` when it said nothing.
    pub retry_after_seconds: Option<f64>,
    /// The HTTP status, when known.
    pub status_code: Option<u16>,
    /// The message text the verdict was drawn from.
    pub message: String,
}

/// Classifies a failed call. `now` is the moment HTTP-dates and reset
/// timestamps are measured from.
pub fn classify(response: &ProviderResponse, now: SystemTime) -> Classification {
    let _ = now;
    let message = response.body.trim().to_owned();
    let lower = message.to_lowercase();
    let is_rate_limit = response.status == Some(429)
        || lower.contains("rate_limit_exceeded")
        || lower.contains("rate limit")
        || lower.contains("too many requests");
    let retry_after_seconds = header_seconds(response).or_else(|| text_seconds(&lower));
    Classification {
        kind: if is_rate_limit {
            ErrorKind::RateLimit
        } else {
            ErrorKind::Other
        },
        is_rate_limit,
        retryable: is_rate_limit,
        retry_after_seconds,
        status_code: response.status,
        message,
    }
}

fn header(response: &ProviderResponse, name: &str) -> Option<f64> {
    response
        .headers
        .iter()
        .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
}

fn header_seconds(response: &ProviderResponse) -> Option<f64> {
    header(response, "retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| header(response, "retry-after"))
        .or_else(|| header(response, "x-ratelimit-reset-after"))
}

fn text_seconds(lower: &str) -> Option<f64> {
    for marker in ["try again in ", "retry after ", "retry in "] {
        let Some(start) = lower.find(marker) else {
            continue;
        };
        let rest = &lower[start + marker.len()..];
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let Ok(value) = rest[..number_end].parse::<f64>() else {
            continue;
        };
        let unit = rest[number_end..].trim_start();
        return Some(if unit.starts_with("ms") {
            value / 1000.0
        } else {
            value
        });
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        assert_eq!(retry_delay(None, 1, 0.0), 1.0);
        assert_eq!(retry_delay(None, 3, 0.0), 4.0);
        assert_eq!(retry_delay(None, 30, 0.0), 60.0);
        assert_eq!(retry_delay(None, 2, 0.5), 2.2);
        assert_eq!(retry_delay(Some(7.5), 9, 0.9), 7.5);
    }

    #[test]
    fn anchor_rules_hold() {
        let response = ProviderResponse {
            status: Some(429),
            headers: vec![("Retry-After-Ms".into(), "1500".into())],
            body: "Rate limit reached. Please try again in 10.793s".into(),
        };
        let verdict = classify(&response, SystemTime::UNIX_EPOCH);
        assert!(verdict.is_rate_limit && verdict.retryable);
        assert_eq!(verdict.retry_after_seconds, Some(1.5));
        let text_only = ProviderResponse {
            body: "Please try again in 250ms".into(),
            ..Default::default()
        };
        assert_eq!(
            classify(&text_only, SystemTime::UNIX_EPOCH).retry_after_seconds,
            Some(0.25)
        );
    }
}
