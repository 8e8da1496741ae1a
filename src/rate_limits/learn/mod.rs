//! What a provider's answer says of its own limits: the rate-limit headers of
//! each family, read into one shape per budget (requests, tokens, input
//! tokens, output tokens; per minute, hour or day), and the advice pacing
//! takes from them ([`advise`]).
//!
//! Families read:
//!
//! - OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, copied
//!   by the OpenAI-compatible providers; resets are Go durations (`6m0s`). The
//!   budgets are per minute, except Groq's requests budget, which is per day
//!   (Groq's documentation). Names with a window suffix
//!   (`x-ratelimit-limit-requests-day`, `…-tokens-minute`) say their window.
//! - Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
//!   per minute, resets in RFC 3339.
//! - The IETF draft's structured `RateLimit-Policy` (`"default";q=100;w=60`)
//!   and `RateLimit` (`"default";r=50;t=30`) fields, joined by policy name,
//!   with draft 7's dictionary form (`limit=100, remaining=50, reset=30`).
//! - The older `RateLimit-Limit` / `-Remaining` / `-Reset` triple, also with
//!   an `X-` prefix (OpenRouter): one requests budget.
//!
//! Reading never touches a clock: the caller passes the moment the answer
//! came, and resets become epoch milliseconds from it.

mod advice;
mod anthropic;
mod ietf;
mod openai;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

pub use advice::{
    advice_from_headers, advise, hold_until, shared_advice, BudgetAdvice, ProfileBudget,
    MAX_EXHAUSTED_HOLD_MILLIS,
};

use super::retry::{self, HeaderError, HeadersFile};

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Requests sent.
    Requests,
    /// Tokens, input and output together (Anthropic: the most restrictive
    /// token budget in effect).
    Tokens,
    /// Input (prompt) tokens.
    InputTokens,
    /// Output (completion) tokens.
    OutputTokens,
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dimension::Requests => "requests",
            Dimension::Tokens => "tokens",
            Dimension::InputTokens => "input tokens",
            Dimension::OutputTokens => "output tokens",
        })
    }
}

/// The span a budget is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// A minute (RPM, TPM, ITPM, OTPM).
    Minute,
    /// An hour.
    Hour,
    /// A day (RPD, TPD).
    Day,
    /// Another span, in seconds (an IETF policy's `w`).
    Seconds(u64),
    /// The headers do not say.
    Unstated,
}

impl Window {
    /// The window of an IETF policy's `w` (seconds): 60, 3600 and 86400 by name.
    pub fn from_seconds(seconds: u64) -> Self {
        match seconds {
            60 => Window::Minute,
            3600 => Window::Hour,
            86_400 => Window::Day,
            other => Window::Seconds(other),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Minute => f.write_str("per minute"),
            Window::Hour => f.write_str("per hour"),
            Window::Day => f.write_str("per day"),
            Window::Seconds(seconds) => write!(f, "per {seconds} s"),
            Window::Unstated => f.write_str("per unstated window"),
        }
    }
}

/// The header family a budget was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `x-ratelimit-*-requests|tokens` (OpenAI and the providers that copy it).
    OpenAi,
    /// `anthropic-ratelimit-*`.
    Anthropic,
    /// The IETF draft's `RateLimit` / `RateLimit-Policy` fields.
    Ietf,
    /// `RateLimit-Limit` / `-Remaining` / `-Reset`, with or without `X-`.
    Triple,
}

impl Family {
    /// How the family's headers are named, for messages.
    pub fn headers(self) -> &'static str {
        match self {
            Family::OpenAi => "x-ratelimit-*",
            Family::Anthropic => "anthropic-ratelimit-*",
            Family::Ietf => "RateLimit / RateLimit-Policy",
            Family::Triple => "RateLimit-Limit / -Remaining / -Reset",
        }
    }
}

/// One budget as the provider states it. Each part is optional: a provider
/// may send the limit without the reset, or only the remaining count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearnedLimit {
    /// The headers it came from.
    pub family: Family,
    /// What it counts.
    pub dimension: Dimension,
    /// The span it is counted over.
    pub window: Window,
    /// The IETF policy name, when the family names policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The budget per window.
    pub limit: Option<u64>,
    /// What is left of it now.
    pub remaining: Option<u64>,
    /// When it is whole again, epoch milliseconds.
    pub reset_at_ms: Option<u64>,
}

impl LearnedLimit {
    /// `limit - remaining`: what the provider counts as used in this window,
    /// by every client of the key.
    pub fn used(&self) -> Option<u64> {
        Some(self.limit?.saturating_sub(self.remaining?))
    }
}

/// Everything one answer's headers say about limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LearnedLimits {
    /// The budgets, sorted by family, dimension and window.
    pub limits: Vec<LearnedLimit>,
    /// Rate-limit headers whose value could not be read, `(name, value)`.
    pub unreadable: Vec<(String, String)>,
}

impl LearnedLimits {
    /// Whether no budget was found.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// The first budget counting `dimension` over `window` that states a limit,
    /// else the first that states anything.
    pub fn find(&self, dimension: Dimension, window: Window) -> Option<&LearnedLimit> {
        let mut matching = self
            .limits
            .iter()
            .filter(|limit| limit.dimension == dimension && limit.window == window);
        let first = matching.clone().next();
        matching.find(|limit| limit.limit.is_some()).or(first)
    }
}

/// Reads every rate-limit header family in `headers` (names matched without
/// regard to case). `provider` picks per-provider windows (Groq's requests
/// budget is per day); `now_ms` is when the answer came, epoch milliseconds.
pub fn learn(headers: &[(String, String)], provider: &str, now_ms: u64) -> LearnedLimits {
    let mut collector = Collector {
        now_ms,
        budgets: BTreeMap::new(),
        unreadable: Vec::new(),
    };
    let provider = provider.trim().to_ascii_lowercase();
    openai::read(headers, &provider, &mut collector);
    anthropic::read(headers, &mut collector);
    ietf::read(headers, &mut collector);
    let limits = collector
        .budgets
        .into_iter()
        .map(
            |((family, dimension, window, policy), parts)| LearnedLimit {
                family,
                dimension,
                window,
                policy,
                limit: parts.limit,
                remaining: parts.remaining,
                reset_at_ms: parts.reset_at_ms,
            },
        )
        .collect();
    LearnedLimits {
        limits,
        unreadable: collector.unreadable,
    }
}

/// Reads the headers of a provider's answer as a command printed them: the
/// last head of `curl -i` output (a body may follow), or `curl -D -` output,
/// or bare `Name: value` lines. With redirects or `100 Continue` the last
/// response counts.
pub fn headers_from_output(text: &str) -> Result<HeadersFile, HeaderError> {
    match retry::split_response(text) {
        Some((head, _body)) => Ok(head),
        None => retry::parse_headers_file(text),
    }
}

/// Which part of a budget a header gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Limit,
    Remaining,
    Reset,
}

impl Part {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "limit" => Some(Part::Limit),
            "remaining" => Some(Part::Remaining),
            "reset" => Some(Part::Reset),
            _ => None,
        }
    }
}

type BudgetKey = (Family, Dimension, Window, Option<String>);

#[derive(Debug, Default)]
struct Parts {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_at_ms: Option<u64>,
}

/// Gathers the parts of each budget as the families find them.
struct Collector {
    now_ms: u64,
    budgets: BTreeMap<BudgetKey, Parts>,
    unreadable: Vec<(String, String)>,
}

impl Collector {
    /// Reads `value` as `part` of the budget `key`; an unreadable value is
    /// noted under `name` and leaves the budget as it was.
    fn take(&mut self, key: BudgetKey, part: Part, name: &str, value: &str) {
        let parsed = match part {
            Part::Limit | Part::Remaining => parse_count(value),
            Part::Reset => self.reset_at(value),
        };
        let Some(parsed) = parsed else {
            self.unreadable.push((name.to_owned(), value.to_owned()));
            return;
        };
        let parts = self.budgets.entry(key).or_default();
        match part {
            Part::Limit => parts.limit = Some(parsed),
            Part::Remaining => parts.remaining = Some(parsed),
            Part::Reset => parts.reset_at_ms = Some(parsed),
        }
    }

    /// A reset value in any form providers use (duration, RFC 3339,
    /// HTTP-date, seconds, Unix time) as epoch milliseconds.
    fn reset_at(&self, value: &str) -> Option<u64> {
        let now = UNIX_EPOCH + Duration::from_millis(self.now_ms);
        let seconds = retry::parse_reset(value, now)?;
        let millis = (seconds * 1000.0).round();
        // parse_reset never returns a negative or non-finite wait.
        Some(
            self.now_ms
                .saturating_add(millis.min(u64::MAX as f64) as u64),
        )
    }
}

/// A count: a whole number, or a decimal with nothing after the point
/// (`"59"`, `"59.0"`).
fn parse_count(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(count) = value.parse::<u64>() {
        return Some(count);
    }
    let whole = value
        .strip_suffix(".0")
        .or_else(|| value.strip_suffix('.'))?;
    whole.parse().ok()
}

/// `dimension` from the words of a header name (`requests`, `tokens`,
/// `input-tokens`, `output-tokens`).
fn dimension_from(words: &str) -> Option<Dimension> {
    match words {
        "requests" => Some(Dimension::Requests),
        "tokens" => Some(Dimension::Tokens),
        "input-tokens" => Some(Dimension::InputTokens),
        "output-tokens" => Some(Dimension::OutputTokens),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
