//! The proxy's own answers, in the shape of the API the client speaks, so an
//! SDK reads them as it reads the provider's (and its retry logic follows
//! `Retry-After`).

use std::time::Duration;

use serde_json::{json, Value};

use super::routes::Dialect;

/// Why the proxy answered instead of the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The budget is not free within the longest hold (429).
    RateLimited,
    /// The provider said the account's quota is used up; the model is held
    /// until it returns (429, OpenAI's `insufficient_quota`).
    QuotaHeld,
    /// The request can never fit the budget (400).
    TooLarge,
    /// The body is over the size limit (413).
    BodyTooLarge,
    /// The request is malformed or refused for safety (400).
    BadRequest,
    /// The client token is missing or wrong (401).
    Unauthorized,
    /// No such route (404).
    NotFound,
    /// The upstream could not be reached or timed out (502 / 504).
    Upstream {
        /// True for a timeout (504), false for a failed connection (502).
        timed_out: bool,
    },
    /// The proxy is shutting down or its state is unusable (503).
    Unavailable,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Refusal::RateLimited | Refusal::QuotaHeld => 429,
            Refusal::TooLarge | Refusal::BadRequest => 400,
            Refusal::BodyTooLarge => 413,
            Refusal::Unauthorized => 401,
            Refusal::NotFound => 404,
            Refusal::Upstream { timed_out: false } => 502,
            Refusal::Upstream { timed_out: true } => 504,
            Refusal::Unavailable => 503,
        }
    }

    /// OpenAI's `type`, Anthropic's `error.type` and Gemini's `status`.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Refusal::RateLimited => (
                "rate_limit_exceeded",
                "rate_limit_error",
                "RESOURCE_EXHAUSTED",
            ),
            Refusal::QuotaHeld => (
                "insufficient_quota",
                "rate_limit_error",
                "RESOURCE_EXHAUSTED",
            ),
            Refusal::TooLarge | Refusal::BadRequest => (
                "invalid_request_error",
                "invalid_request_error",
                "INVALID_ARGUMENT",
            ),
            Refusal::BodyTooLarge => (
                "invalid_request_error",
                "request_too_large",
                "INVALID_ARGUMENT",
            ),
            Refusal::Unauthorized => (
                "authentication_error",
                "authentication_error",
                "UNAUTHENTICATED",
            ),
            Refusal::NotFound => ("not_found_error", "not_found_error", "NOT_FOUND"),
            Refusal::Upstream { timed_out: true } => {
                ("timeout", "timeout_error", "DEADLINE_EXCEEDED")
            }
            Refusal::Upstream { timed_out: false } | Refusal::Unavailable => {
                ("server_error", "overloaded_error", "UNAVAILABLE")
            }
        }
    }
}

/// The JSON body for `refusal` with `message`, in `dialect`'s shape.
pub fn error_body(dialect: Dialect, refusal: Refusal, message: &str) -> Value {
    let (openai, anthropic, gemini) = refusal.names();
    match dialect {
        Dialect::OpenAi => json!({"error": {
            "message": message,
            "type": openai,
            "param": null,
            "code": if matches!(refusal, Refusal::RateLimited | Refusal::QuotaHeld) { Value::from(openai) } else { Value::Null },
        }}),
        Dialect::Anthropic => {
            json!({"type": "error", "error": {"type": anthropic, "message": message}})
        }
        Dialect::Gemini => {
            json!({"error": {"code": refusal.status(), "message": message, "status": gemini}})
        }
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, so a client that
/// obeys it never comes back early.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let millis = wait.as_millis();
    u64::try_from(millis.div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_has_its_own_shape() {
        let openai = error_body(Dialect::OpenAi, Refusal::RateLimited, "wait 2 s");
        assert_eq!(openai["error"]["type"], "rate_limit_exceeded");
        assert_eq!(openai["error"]["code"], "rate_limit_exceeded");
        assert_eq!(openai["error"]["message"], "wait 2 s");
        let anthropic = error_body(Dialect::Anthropic, Refusal::RateLimited, "m");
        assert_eq!(
            anthropic,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "m"}})
        );
        let gemini = error_body(Dialect::Gemini, Refusal::RateLimited, "m");
        assert_eq!(
            gemini,
            json!({"error": {"code": 429, "message": "m", "status": "RESOURCE_EXHAUSTED"}})
        );
        assert_eq!(
            error_body(Dialect::OpenAi, Refusal::BodyTooLarge, "m")["error"]["code"],
            Value::Null
        );
        assert_eq!(Refusal::Upstream { timed_out: true }.status(), 504);
        let quota = error_body(Dialect::OpenAi, Refusal::QuotaHeld, "m");
        assert_eq!(quota["error"]["type"], "insufficient_quota");
        assert_eq!(quota["error"]["code"], "insufficient_quota");
        assert_eq!(Refusal::QuotaHeld.status(), 429);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(0)), 0);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
    }
}
