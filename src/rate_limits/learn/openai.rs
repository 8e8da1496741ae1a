//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: OpenAI's names,
//! copied by the OpenAI-compatible providers (Groq, Together, DeepSeek, …).

use super::{dimension_from, Collector, Dimension, Family, Part, Window};

/// Providers whose `x-ratelimit-*-requests` budget is per day, not per
/// minute (Groq's rate-limit documentation: the requests headers give RPD,
/// the tokens headers TPM).
const REQUESTS_PER_DAY: &[&str] = &["groq"];

pub(super) fn read(headers: &[(String, String)], provider: &str, collector: &mut Collector) {
    for (name, value) in headers {
        let lower = name.trim().to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("x-ratelimit-") else {
            continue;
        };
        let Some((part, budget)) = rest.split_once('-') else {
            continue;
        };
        let Some(part) = Part::from_word(part) else {
            continue;
        };
        let (words, window) = split_window(budget);
        let Some(dimension) = dimension_from(words) else {
            continue;
        };
        let window = window.unwrap_or_else(|| default_window(provider, dimension));
        collector.take((Family::OpenAi, dimension, window, None), part, name, value);
    }
}

/// `requests-day` → (`requests`, day); `tokens` → (`tokens`, none stated).
fn split_window(budget: &str) -> (&str, Option<Window>) {
    for (suffix, window) in [
        ("-minute", Window::Minute),
        ("-hour", Window::Hour),
        ("-day", Window::Day),
    ] {
        if let Some(words) = budget.strip_suffix(suffix) {
            return (words, Some(window));
        }
    }
    (budget, None)
}

fn default_window(provider: &str, dimension: Dimension) -> Window {
    if dimension == Dimension::Requests && REQUESTS_PER_DAY.contains(&provider) {
        Window::Day
    } else {
        Window::Minute
    }
}
