//! What error text says in words: phrase families the classifier weighs, the
//! wait a provider states ("Please try again in 10.793s", "Please retry after
//! 7 seconds"), and an HTTP status an SDK wrote into its message.

use std::sync::LazyLock;

use regex::Regex;

use super::durations::leading_duration;

/// A family of phrases, matched case-insensitively in one pass.
pub(super) struct Phrases(Regex);

impl Phrases {
    fn new(phrases: &[&str]) -> Self {
        let alternation: Vec<String> = phrases.iter().map(|phrase| regex::escape(phrase)).collect();
        // The phrases are escaped literals, so the pattern always compiles.
        Self(Regex::new(&format!("(?i){}", alternation.join("|"))).expect("escaped literals"))
    }

    /// True when any phrase occurs in `text`.
    pub(super) fn found_in(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// A family of lower-case phrases for the classifier's lower-cased text,
/// found with plain `contains`: on a long log that is several times faster
/// than a case-insensitive regex.
pub(super) struct Literals(&'static [&'static str]);

impl Literals {
    /// True when any phrase occurs in `text`, which must be lower-case.
    pub(super) fn found_in(&self, text: &str) -> bool {
        self.0.iter().any(|phrase| text.contains(phrase))
    }
}

macro_rules! phrases {
    ($name:ident, [$($phrase:literal),+ $(,)?]) => {
        pub(super) static $name: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(&[$($phrase),+]));
    };
}

// Context-window errors mention tokens and limits but are bad requests.
phrases!(
    CONTEXT_LENGTH,
    [
        "maximum context length",
        "context length",
        "context_length_exceeded",
        "context window",
        "prompt is too long",
        "input is too long",
        "exceeds the maximum number of tokens",
        "reduce the length of the messages",
        "maximum prompt length",
    ]
);
phrases!(
    TOO_LARGE,
    [
        "request too large",
        "request entity too large",
        "payload too large",
        "request exceeds the maximum size",
        "request_too_large",
    ]
);
// Money, not time: specific enough to count at any status.
phrases!(
    HARD_QUOTA,
    [
        "credit balance is too low",
        "insufficient balance",
        "insufficient credits",
        "insufficient funds",
        "requires more credits",
        "out of credits",
        "billing hard limit",
        "hard limit has been reached",
        "spend limit",
        "spending limit",
        "spend cap",
        "reached your specified api usage limits",
        "monthly spend",
        "monthly usage limit",
        "monthly quota",
        "budget has been exceeded",
        "exceeded your budget",
        "payment required",
        "billing is not active",
        "requires billing to be enabled",
        "no credits remaining",
        "regain access on",
        "extra usage is required",
    ]
);
// An allowance for a long period: waiting minutes cannot help. Counts only
// when the text names no shorter window, since "usage limits" can be per minute.
pub(super) static ALLOWANCE: Literals = Literals(&[
    "usage limits",
    "out of call volume quota",
    "used all available credits",
]);
// Capacity words that outrank a 429, a 503 and a rate-limit code: the
// provider is short, not the caller's budget.
pub(super) static CAPACITY: Literals = Literals(&[
    "high demand",
    "peak load",
    "no capacity available",
    "model_capacity_exhausted",
    "slow down",
]);
// Words that mean "credits gone" from one provider and "per-minute limit" from another.
phrases!(
    SOFT_QUOTA,
    [
        "insufficient quota",
        "insufficient_quota",
        "exceeded your current quota",
        "check your plan and billing details",
    ]
);
phrases!(
    OVERLOADED,
    [
        "overloaded",
        "high demand",
        "over capacity",
        "out of capacity",
        "at capacity",
        "capacity exceeded",
        "capacity_exceeded",
        "insufficient capacity",
        "no capacity",
        "not enough capacity",
        "capacity constraints",
        "temporarily unavailable",
        "service unavailable",
        "currently unavailable",
        "is currently loading",
    ]
);
phrases!(
    RATE_LIMITED,
    [
        "rate limit",
        "rate-limit",
        "ratelimit",
        "rate limited",
        "rate-limited",
        "too many requests",
        "too many tokens",
        "throttl",
        "resource exhausted",
        "resource has been exhausted",
        "quota exceeded",
        "slow down",
        "requests per",
        "tokens per",
    ]
);
// A limit that resets on its own: per second, minute, hour or day.
phrases!(
    WINDOW,
    [
        "per second",
        "per minute",
        "per min",
        "per hour",
        "per day",
        "perminute",
        "perday",
        "per_minute",
        "per_day",
        "perhour",
        "(rpm)",
        "(tpm)",
        "(rpd)",
        "(tpd)",
        "requests per",
        "tokens per",
    ]
);
// Failures of the network or the server, not of the request.
phrases!(
    TRANSIENT,
    [
        "timed out",
        "timeout",
        "connection refused",
        "connection reset",
        "connection aborted",
        "connection closed",
        "connection error",
        "econnreset",
        "econnrefused",
        "etimedout",
        "network is unreachable",
        "temporary failure in name resolution",
        "could not resolve host",
        "broken pipe",
        "remote end closed",
        "unexpected eof",
        "server disconnected",
        "bad gateway",
        "gateway timeout",
        "internal server error",
    ]
);

/// `Limit 30000, Requested 36278`: one request larger than the whole budget.
/// (A rate-limit message reads `Limit 30000, Used 29000, Requested 1500`.)
static LIMIT_REQUESTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\blimit:?\s+([\d,]+)\s*,\s*requested:?\s+([\d,]+)").expect("valid pattern")
});

/// Google's free tier for a model it does not offer free: `limit: 0`.
static ZERO_LIMIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\blimit:\s*0(?:\s*[,;)\n]|\s*$)").expect("valid pattern"));

/// A monthly allowance: "monthly usage quota", "monthly … threshold",
/// "limited to 1000 API calls / month".
static MONTHLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\bmonthly\b[^.\n]{0,60}\b(?:limit|quota|threshold|allowance|cap|budget|spend)|\b(?:limit|limited|quota|threshold|allowance|cap|budget|calls|requests|tokens)\b[^.\n]{0,60}(?:\bper|\ba|\beach|\bthis|/)\s*month\b",
    )
    .expect("valid pattern")
});

/// A window shorter than a month: per second, minute, hour or day.
static SHORT_WINDOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:\bper|/)\s*(?:second|sec|minute|min|hour|day)\b|\b(?:hourly|daily)\b|per_?(?:minute|day|hour)|\((?:rpm|tpm|rpd|tpd)\)")
        .expect("valid pattern")
});

/// A per-minute request or token limit: "tokens per min (TPM)",
/// "requests per minute", "10 API calls / minute", `…PerMinute…`.
static PER_MINUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\bper|/)\s*min(?:ute)?\b|per_?minute|\((?:rpm|tpm)\)|\b(?:rpm|tpm|itpm|otpm)\b",
    )
    .expect("valid pattern")
});

/// When access returns: "You will regain access on 2026-12-01 at 00:00 UTC",
/// "It will reset at 2026-08-29 23:59:59 +0800".
static ACCESS_RETURNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:regain access on|resets? (?:at|on))\s+(\d{4}-\d{2}-\d{2})(?:(?:\s+at\s+|\s+|t)(\d{2}:\d{2}(?::\d{2})?))?(?:\s*(utc|gmt|z\b|[+-]\d{2}:?\d{2}))?",
    )
    .expect("valid pattern")
});

/// A wait the provider states: "try again in", "retry in", "retry after".
static WAIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:try\s+again|retry)\s+(?:in|after)\s+").expect("valid pattern")
});

/// A status an SDK or log wrote down: `Error code: 429`, `status code 503`,
/// `HTTP/2 429`, `429 Too Many Requests`, `429 RESOURCE_EXHAUSTED`,
/// `RateLimitError: 429 …` (Node SDKs), `ResourceExhausted: 429 …` (Google).
static STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\b(?:error\s+code|status\s+code|status_code|status|http/[\d.]+)\s*[:=]?\s*([1-5]\d\d)\b)|(?:\b([1-5]\d\d)\s+(?:too many requests|resource_exhausted|unavailable|service unavailable|overloaded|unauthorized|forbidden|not found|bad request|internal server error|bad gateway|gateway timeout|payment required|request entity too large|payload too large))|(?:(?:error|exception|exhausted|unavailable|overloaded)\s*:\s*([45]\d\d)\b)",
    )
    .expect("valid pattern")
});

/// Credentials that error texts sometimes echo: provider API keys (OpenAI,
/// Anthropic, OpenRouter `sk-…`, Groq `gsk_…`, Google `AIza…`, AWS access key
/// ids), bearer tokens, and `api_key=` / `x-api-key:` / `Authorization:` values.
/// True when the text names a request larger than its limit.
pub(super) fn requested_over_limit(text: &str) -> bool {
    LIMIT_REQUESTED.captures_iter(text).any(|captures| {
        let number = |index: usize| {
            captures[index]
                .replace(',', "")
                .parse::<u64>()
                .unwrap_or_default()
        };
        number(2) > number(1)
    })
}

// The three functions below take the classifier's lower-cased text. A plain
// `contains` first spares a long log the regex scan: unguarded, these scans
// doubled `classify` time on the bench's 1 MiB log.

/// True when the text names an allowance for a month or a spend cap and no
/// shorter window.
pub(super) fn states_allowance(text: &str) -> bool {
    (ALLOWANCE.found_in(text) || (text.contains("month") && MONTHLY.is_match(text)))
        && !SHORT_WINDOW.is_match(text)
}

/// True when the text names a per-minute request or token limit.
pub(super) fn names_per_minute_limit(text: &str) -> bool {
    (text.contains("min") || text.contains("pm")) && PER_MINUTE.is_match(text)
}

/// The moment the text says access returns, if it names one.
pub(super) fn stated_access_return(text: &str) -> Option<std::time::SystemTime> {
    if !text.contains("access") && !text.contains("reset") {
        return None;
    }
    let captures = ACCESS_RETURNS.captures(text)?;
    super::timestamps::parse_stated_moment(
        &captures[1],
        captures.get(2).map(|time| time.as_str()),
        captures.get(3).map(|zone| zone.as_str()),
    )
}

/// True when a quota message states a limit of 0.
pub(super) fn states_zero_limit(text: &str) -> bool {
    ZERO_LIMIT.is_match(text)
}

/// The wait stated last in `text`, in seconds. "Will retry in 2s" and
/// "Retrying in 0.2 seconds" are a client describing its own backoff, not
/// the provider's word, and are skipped.
pub(super) fn stated_wait(text: &str) -> Option<f64> {
    let mut last = None;
    for found in WAIT.find_iter(text) {
        let before = text[..found.start()].trim_end().to_ascii_lowercase();
        if before.ends_with("will") || before.ends_with("'ll") || before.ends_with("going to") {
            continue;
        }
        if let Some((seconds, _)) = leading_duration(&text[found.end()..]) {
            last = Some(seconds);
        }
    }
    last
}

/// The last error status (400 and up) written in the text, if any: in a log
/// of several calls, the latest failure is the one being classified, and a
/// `status 200` line before it says nothing about the error.
pub(super) fn stated_status(text: &str) -> Option<u16> {
    STATUS
        .captures_iter(text)
        .filter_map(|captures| {
            captures
                .get(1)
                .or_else(|| captures.get(2))
                .or_else(|| captures.get(3))
                .and_then(|code| code.as_str().parse::<u16>().ok())
        })
        .filter(|status| *status >= 400)
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_in_provider_words() {
        for (text, seconds) in [
            ("Please try again in 10.793s. Visit https://x", 10.793),
            ("Please try again in 1m12.5s.", 72.5),
            ("Please try again in 250ms.", 0.25),
            ("Please retry after 7 seconds.", 7.0),
            ("Rate limit is exceeded. Try again in 59 seconds.", 59.0),
            ("Please retry in 58.93s.", 58.93),
            ("Please try again in 5.0s. Need more tokens?", 5.0),
        ] {
            assert_eq!(stated_wait(text), Some(seconds), "{text}");
        }
    }

    #[test]
    fn a_clients_own_backoff_is_not_a_wait() {
        assert_eq!(stated_wait("Retrying in 0.2 seconds"), None);
        assert_eq!(
            stated_wait("INFO Retrying request to /chat/completions in 0.403 seconds"),
            None
        );
        assert_eq!(stated_wait("429 received; will retry in 2s"), None);
        assert_eq!(stated_wait("We'll retry in 4 seconds"), None);
        assert_eq!(
            stated_wait("Please try again in 1.5s.\nRetrying in 0.2 seconds"),
            Some(1.5)
        );
        assert_eq!(stated_wait("try again later"), None);
    }

    #[test]
    fn statuses_in_text() {
        assert_eq!(stated_status("Error code: 429 - {'error': {}}"), Some(429));
        assert_eq!(
            stated_status("429 RESOURCE_EXHAUSTED. {'error': {}}"),
            Some(429)
        );
        assert_eq!(stated_status("HTTP/2 503"), Some(503));
        assert_eq!(
            stated_status("got status code 502 from upstream"),
            Some(502)
        );
        assert_eq!(stated_status("used 429 tokens"), None);
        assert_eq!(
            stated_status("status 200 for /health\nError code: 503\nError code: 429 - {}"),
            Some(429)
        );
        assert_eq!(stated_status("HTTP/1.1 200 OK"), None);
        assert_eq!(
            stated_status("RateLimitError: 429 Rate limit reached for requests"),
            Some(429)
        );
        assert_eq!(
            stated_status("google.api_core.exceptions.ResourceExhausted: 429 Quota exceeded"),
            Some(429)
        );
        assert_eq!(stated_status("Error: 529 {\"type\":\"error\"}"), Some(529));
        assert_eq!(stated_status("Limit: 500, Used: 450"), None);
    }

    #[test]
    fn limit_and_requested() {
        assert!(requested_over_limit("(TPM): Limit 30000, Requested 36278."));
        assert!(!requested_over_limit(
            "(TPM): Limit 30000, Used 29000, Requested 1500."
        ));
        assert!(!requested_over_limit("Limit 30000, Requested 100"));
        assert!(states_zero_limit(
            "free_tier_requests, limit: 0, model: gemini-2.5-pro"
        ));
        assert!(!states_zero_limit("limit: 0.5 per second"));
        assert!(!states_zero_limit("limit: 250, model: x"));
    }
}
