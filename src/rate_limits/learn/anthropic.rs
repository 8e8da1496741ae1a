//! `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`:
//! Anthropic's per-minute budgets, resets in RFC 3339.

use super::{dimension_from, Collector, Family, Part, Window};

pub(super) fn read(headers: &[(String, String)], collector: &mut Collector) {
    for (name, value) in headers {
        let lower = name.trim().to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("anthropic-ratelimit-") else {
            continue;
        };
        let Some((words, part)) = rest.rsplit_once('-') else {
            continue;
        };
        let (Some(dimension), Some(part)) = (dimension_from(words), Part::from_word(part)) else {
            continue;
        };
        collector.take(
            (Family::Anthropic, dimension, Window::Minute, None),
            part,
            name,
            value,
        );
    }
}
