//! The kind of a failure, from the status, the error codes and the text
//! weighed together: one word is never enough.

use super::body::Violation;
use super::text::{self, CAPACITY, CONTEXT_LENGTH, HARD_QUOTA, OVERLOADED, RATE_LIMITED};
use super::text::{SOFT_QUOTA, TOO_LARGE, TRANSIENT, WINDOW};
use super::ErrorKind;

/// Everything the classifier knows about one failure.
pub(super) struct Evidence<'a> {
    /// The HTTP status: given, else stated in the body or the text.
    pub status: Option<u16>,
    /// Normalised error codes from the body and `x-amzn-errortype`.
    pub codes: &'a [String],
    /// The text and every nested message, for phrase matching.
    pub text: &'a str,
    /// Google `QuotaFailure` violations.
    pub violations: &'a [Violation],
    /// True when the provider prescribed a wait (`Retry-After`, `RetryInfo`,
    /// "try again in"), which a limit that money cannot lift never does.
    pub prescribed_wait: bool,
    /// The `x-should-retry` header, when present.
    pub should_retry: Option<bool>,
}

const CONTEXT_CODES: &[&str] = &["contextlengthexceeded", "modelcontextwindowexceeded"];
const TOO_LARGE_CODES: &[&str] = &[
    "requesttoolarge",
    "payloadtoolarge",
    "requestentitytoolarge",
];
const HARD_QUOTA_CODES: &[&str] = &[
    "billinghardlimitreached",
    "insufficientbalance",
    "insufficientcredits",
    "insufficientfunds",
    "paymentrequired",
    "billingnotactive",
    "billingdisabled",
    "creditbalancetoolow",
];
/// Capacity codes that outrank a 429 and a rate-limit code (Google's
/// `ErrorInfo.reason` `MODEL_CAPACITY_EXHAUSTED`, OpenAI's `slow_down`).
const CAPACITY_CODES: &[&str] = &["modelcapacityexhausted", "slowdown"];
const SOFT_QUOTA_CODES: &[&str] = &["insufficientquota"];
const OVERLOADED_CODES: &[&str] = &[
    "overloadederror",
    "overloaded",
    "serveroverloaded",
    "engineoverloaded",
    "unavailable",
    "serviceunavailable",
    "serviceunavailableexception",
    "modelnotreadyexception",
    "capacityexceeded",
    "overcapacity",
    "insufficientcapacity",
];
const RATE_LIMIT_CODES: &[&str] = &[
    "ratelimitexceeded",
    "ratelimited",
    "ratelimiterror",
    "ratelimitreached",
    "ratelimit",
    "resourceexhausted",
    "throttlingexception",
    "throttled",
    "throttling",
    "toomanyrequests",
    "toomanyrequestsexception",
    "requestlimitexceeded",
    "userratelimitexceeded",
    "servicequotaexceededexception",
];
const TRANSIENT_CODES: &[&str] = &[
    "apierror",
    "internal",
    "internalerror",
    "internalservererror",
    "servererror",
    "internalserverexception",
    "deadlineexceeded",
    "modeltimeoutexception",
    "timeout",
    "gatewaytimeout",
    "apiconnectionerror",
    "apitimeouterror",
];

impl Evidence<'_> {
    fn has_code(&self, set: &[&str]) -> bool {
        self.codes.iter().any(|code| set.contains(&code.as_str()))
    }

    /// Generic words ("rate limit", "overloaded", "timeout") count only when
    /// the status does not already say otherwise: no status, 429, or 5xx.
    /// A 400 that mentions a rate limit is still a bad request.
    fn words_count(&self) -> bool {
        match self.status {
            None => true,
            Some(status) => status == 429 || status >= 500,
        }
    }

    /// Google's free tier with `limit: 0` for this model: no wait will help.
    fn zero_limit(&self) -> bool {
        self.violations
            .iter()
            .any(|violation| violation.limit == Some(0.0))
            || (self.text.contains("quota") && text::states_zero_limit(self.text))
    }

    /// Signs of a limit that resets by itself.
    fn windowed(&self) -> bool {
        self.has_code(RATE_LIMIT_CODES)
            || !self.violations.is_empty()
            || self.prescribed_wait
            || WINDOW.found_in(self.text)
    }
}

/// For a `quota_exhausted` verdict: true when the evidence says the whole
/// account is out (billing, credits, a spend cap, a monthly allowance,
/// OpenAI's `insufficient_quota`), so every model of the provider fails
/// alike; false for a quota of one model or metric (Google's per-model
/// `QuotaFailure` violations, a free tier with `limit: 0`) and when nothing
/// says which. Holding one model too few costs one more refused call per
/// model; holding a whole provider wrongly stops every model, so only
/// positive evidence counts.
pub(super) fn whole_account(evidence: &Evidence) -> bool {
    if evidence.zero_limit() || !evidence.violations.is_empty() {
        return false;
    }
    let text = evidence.text;
    evidence.status == Some(402)
        || evidence.has_code(HARD_QUOTA_CODES)
        || evidence.has_code(SOFT_QUOTA_CODES)
        || HARD_QUOTA.found_in(text)
        || SOFT_QUOTA.found_in(text)
        || text::states_allowance(text)
}

/// Decides the kind and whether retrying can succeed.
pub(super) fn decide(evidence: &Evidence) -> (ErrorKind, bool) {
    let status = evidence.status;
    let text = evidence.text;
    // Context-window words decide only where a bad request can be: a 429 or a
    // 5xx whose log merely mentions a context window is still a 429 or a 5xx.
    let request_error = status.is_none_or(|status| (400..500).contains(&status) && status != 429);
    if evidence.has_code(CONTEXT_CODES) || (request_error && CONTEXT_LENGTH.found_in(text)) {
        return (ErrorKind::Other, false);
    }
    if status == Some(413)
        || evidence.has_code(TOO_LARGE_CODES)
        || TOO_LARGE.found_in(text)
        || text::requested_over_limit(text)
    {
        return (ErrorKind::TooLarge, false);
    }
    if status == Some(402)
        || evidence.has_code(HARD_QUOTA_CODES)
        || HARD_QUOTA.found_in(text)
        || evidence.zero_limit()
        || text::states_allowance(text)
    {
        return (ErrorKind::QuotaExhausted, false);
    }
    let rate_limit_code = evidence.has_code(RATE_LIMIT_CODES);
    let capacity =
        evidence.has_code(CAPACITY_CODES) || (evidence.words_count() && CAPACITY.found_in(text));
    let overload_words = !rate_limit_code && evidence.words_count() && OVERLOADED.found_in(text);
    // A per-minute request or token limit named as hit is the caller's
    // budget, whatever capacity words come with it. (Checked last: the
    // scan is the costly one on a long log.)
    if status == Some(529)
        || evidence.has_code(OVERLOADED_CODES)
        || ((capacity || overload_words) && !text::names_per_minute_limit(text))
    {
        return (ErrorKind::Overloaded, true);
    }
    let soft_quota = evidence.has_code(SOFT_QUOTA_CODES) || SOFT_QUOTA.found_in(text);
    if soft_quota && !evidence.windowed() {
        return (ErrorKind::QuotaExhausted, false);
    }
    if status == Some(429)
        || rate_limit_code
        || soft_quota
        || (evidence.words_count() && RATE_LIMITED.found_in(text))
    {
        return (ErrorKind::RateLimit, true);
    }
    let transient = match status {
        Some(status) => status >= 500 || status == 408,
        None => TRANSIENT.found_in(text),
    } || evidence.has_code(TRANSIENT_CODES);
    (ErrorKind::Other, evidence.should_retry.unwrap_or(transient))
}
