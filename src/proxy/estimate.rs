//! A fast local estimate of what a request will cost, made before it is
//! admitted and reconciled with the provider's reported usage afterwards.
//!
//! Input: one token per [`CHARS_PER_TOKEN`] characters of every string in the
//! body (the prompt, system text, tool definitions and their schema keys,
//! roles), a Han, kana or Hangul character counting as 3/4 of a token, plus
//! [`TOKENS_PER_MESSAGE`] per message and [`TOKENS_PER_MEDIA`] per image,
//! audio clip or file ([`TOKENS_PER_LOW_DETAIL_IMAGE`] for an OpenAI image
//! with `"detail": "low"`), whose encoded bytes are not counted as text. Output:
//! the request's own cap (`max_tokens`, `max_completion_tokens`,
//! `max_output_tokens`, Gemini's `generationConfig.maxOutputTokens`), else a
//! default per dialect. The estimate errs high; the recorded usage corrects
//! the budget once the answer arrives.

use serde_json::{Map, Value};

use super::routes::Dialect;

/// Characters per token of ordinary English text, the common rule of thumb.
pub const CHARS_PER_TOKEN: u64 = 4;
/// Tokens each message adds for its role and framing.
pub const TOKENS_PER_MESSAGE: u64 = 8;
/// Tokens counted for each image, audio clip or attached file (roughly a
/// 1024×1024 image at OpenAI's and Anthropic's rates).
pub const TOKENS_PER_MEDIA: u64 = 1_000;
/// Tokens counted for an OpenAI image sent with `"detail": "low"`: the fixed
/// price OpenAI documents for it, whatever the image's size.
pub const TOKENS_PER_LOW_DETAIL_IMAGE: u64 = 85;
/// Quarter-tokens counted per Han, kana or Hangul character: such text runs
/// near one token a character, not four characters a token.
const CJK_QUARTERS: u64 = 3;
/// Output cap assumed when an OpenAI-dialect request names none.
pub const DEFAULT_OPENAI_MAX_OUTPUT: u64 = 4_096;
/// Output cap assumed when an Anthropic request names none (the API requires one).
pub const DEFAULT_ANTHROPIC_MAX_OUTPUT: u64 = 4_096;
/// Output cap assumed when a Gemini request names none.
pub const DEFAULT_GEMINI_MAX_OUTPUT: u64 = 8_192;
/// Deepest JSON nesting walked; deeper values are not counted.
const MAX_DEPTH: usize = 32;

/// What a request is expected to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Estimated prompt tokens.
    pub input_tokens: u64,
    /// The most output tokens the call may produce.
    pub max_output_tokens: u64,
}

/// The estimate for `body`, a request of `dialect`.
pub fn estimate(dialect: Dialect, body: &Value) -> Estimate {
    let mut tally = Tally::default();
    tally.walk(body, 0, false);
    let messages = ["messages", "contents", "input"]
        .iter()
        .find_map(|key| body.get(key).and_then(Value::as_array))
        .map_or(1, |messages| messages.len() as u64);
    let input_tokens = tally.quarters.div_ceil(CHARS_PER_TOKEN)
        + messages.saturating_mul(TOKENS_PER_MESSAGE)
        + tally.media.saturating_mul(TOKENS_PER_MEDIA)
        + tally.low_detail.saturating_mul(TOKENS_PER_LOW_DETAIL_IMAGE);
    Estimate {
        input_tokens,
        max_output_tokens: max_output_tokens(dialect, body),
    }
}

/// The output cap the request states, else the dialect's default.
pub fn max_output_tokens(dialect: Dialect, body: &Value) -> u64 {
    let stated = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|key| body.get(key).and_then(Value::as_u64))
        .or_else(|| {
            body.get("generationConfig")
                .and_then(|config| config.get("maxOutputTokens"))
                .and_then(Value::as_u64)
        });
    stated.unwrap_or(match dialect {
        Dialect::OpenAi => DEFAULT_OPENAI_MAX_OUTPUT,
        Dialect::Anthropic => DEFAULT_ANTHROPIC_MAX_OUTPUT,
        Dialect::Gemini => DEFAULT_GEMINI_MAX_OUTPUT,
    })
}

#[derive(Default)]
struct Tally {
    /// Quarter-tokens of text: 1 per ordinary character, [`CJK_QUARTERS`] per
    /// Han, kana or Hangul character.
    quarters: u64,
    media: u64,
    low_detail: u64,
}

impl Tally {
    /// Counts `value`'s strings; with `keys`, its object keys too (tool
    /// definitions: a JSON schema's keys reach the model as text).
    fn walk(&mut self, value: &Value, depth: usize, keys: bool) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::String(text) if text.starts_with("data:") => self.media += 1,
            Value::String(text) => {
                self.quarters += text
                    .chars()
                    .map(|c| if is_cjk(c) { CJK_QUARTERS } else { 1 })
                    .sum::<u64>()
            }
            Value::Array(items) => items
                .iter()
                .for_each(|item| self.walk(item, depth + 1, keys)),
            Value::Object(map) if is_low_detail_image(map) => self.low_detail += 1,
            Value::Object(map) if is_media(map) => self.media += 1,
            Value::Object(map) => {
                for (key, item) in map {
                    if keys {
                        self.quarters += key.chars().count() as u64;
                    }
                    let tools = depth == 0 && matches!(key.as_str(), "tools" | "functions");
                    if key != "model" {
                        self.walk(item, depth + 1, keys || tools);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Han ideographs, Japanese kana and Hangul syllables.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// An OpenAI `image_url` part with `"detail": "low"`.
fn is_low_detail_image(map: &Map<String, Value>) -> bool {
    map.get("type").and_then(Value::as_str) == Some("image_url")
        && map
            .get("image_url")
            .and_then(|image| image.get("detail"))
            .and_then(Value::as_str)
            == Some("low")
}

/// An image, audio clip or file part, in any of the three dialects.
fn is_media(map: &Map<String, Value>) -> bool {
    let typed = map.get("type").and_then(Value::as_str).is_some_and(|kind| {
        matches!(
            kind,
            "image"
                | "image_url"
                | "input_image"
                | "input_audio"
                | "input_file"
                | "document"
                | "file"
        )
    });
    // Gemini's `inlineData {mimeType, data}` and `fileData {mimeType, fileUri}`.
    let gemini = (map.contains_key("mimeType") || map.contains_key("mime_type"))
        && (map.contains_key("data")
            || map.contains_key("fileUri")
            || map.contains_key("file_uri"));
    typed || gemini
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counts_characters_messages_and_the_stated_cap() {
        // 40 characters of content + "user" + "system" (10) = 50 → 13 tokens, 2 messages.
        let body = json!({
            "model": "gpt-4o-mini-with-a-long-name",
            "max_completion_tokens": 77,
            "messages": [
                {"role": "system", "content": "0123456789012345678901234567890123456789"},
                {"role": "user", "content": ""}
            ]
        });
        assert_eq!(
            estimate(Dialect::OpenAi, &body),
            Estimate {
                input_tokens: 13 + 16,
                max_output_tokens: 77
            }
        );
    }

    #[test]
    fn an_image_costs_a_fixed_amount_not_its_bytes() {
        let base64 = "A".repeat(100_000);
        let openai = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "abcd"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{base64}")}}
        ]}]});
        // "user" + "text" + "abcd" = 12 chars → 3 tokens, 1 message, 1 image.
        assert_eq!(
            estimate(Dialect::OpenAi, &openai).input_tokens,
            3 + 8 + 1_000
        );
        let anthropic = json!({"max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64}}
        ]}]});
        assert_eq!(
            estimate(Dialect::Anthropic, &anthropic),
            Estimate {
                input_tokens: 1 + 8 + 1_000,
                max_output_tokens: 5
            }
        );
        let gemini = json!({"contents": [{"role": "user", "parts": [
            {"text": "abcdefgh"},
            {"inlineData": {"mimeType": "image/jpeg", "data": base64}}
        ]}], "generationConfig": {"maxOutputTokens": 9}});
        assert_eq!(
            estimate(Dialect::Gemini, &gemini),
            Estimate {
                input_tokens: 3 + 8 + 1_000,
                max_output_tokens: 9
            }
        );
    }

    #[test]
    fn defaults_the_output_cap_per_dialect() {
        let body = json!({"contents": []});
        assert_eq!(
            max_output_tokens(Dialect::Gemini, &body),
            DEFAULT_GEMINI_MAX_OUTPUT
        );
        assert_eq!(
            max_output_tokens(Dialect::OpenAi, &body),
            DEFAULT_OPENAI_MAX_OUTPUT
        );
        // No messages array counts as one message (a completion prompt).
        assert_eq!(
            estimate(Dialect::OpenAi, &json!({"prompt": "abcd"})).input_tokens,
            1 + 8
        );
    }

    #[test]
    fn weighs_cjk_text_tool_schema_keys_and_low_detail_images() {
        // 9 Han characters × 3 quarters + "user" (4) = 31 quarters → 8 tokens.
        let chinese = json!({"messages": [{"role": "user", "content": "机器学习过拟合方法"}]});
        assert_eq!(estimate(Dialect::OpenAi, &chinese).input_tokens, 8 + 8);
        // Keys of a tool schema count: "name" + "f" + "parameters" + "type" + "object" = 25 → 7.
        let tools =
            json!({"tools": [{"name": "f", "parameters": {"type": "object"}}], "messages": []});
        assert_eq!(estimate(Dialect::OpenAi, &tools).input_tokens, 7);
        let low = json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
        ]}]});
        // "user" → 1 token, 1 message, one low-detail image.
        assert_eq!(estimate(Dialect::OpenAi, &low).input_tokens, 1 + 8 + 85);
    }

    /// Realistic OpenAI chat bodies with a reference prompt count made
    /// offline: the o200k tokenizer (gpt-4o's) over each message's role and
    /// text, plus OpenAI's documented chat framing (3 tokens a message, 3 to
    /// prime the reply), 85 per low-detail image, and, for tool definitions,
    /// the tokens of their compact JSON. See docs/proxy.md.
    const REFERENCE_BODIES: &str = include_str!("../../tests/fixtures/proxy/estimate_bodies.json");

    /// The estimate's relative error `(estimate - reference) / reference`
    /// for each reference body, with its name and kind.
    fn errors() -> Vec<(String, String, f64)> {
        let cases: Vec<Value> = serde_json::from_str(REFERENCE_BODIES).unwrap();
        cases
            .iter()
            .map(|case| {
                let reference = case["reference"].as_u64().unwrap() as f64;
                let estimated = estimate(Dialect::OpenAi, &case["body"]).input_tokens as f64;
                (
                    case["name"].as_str().unwrap().to_owned(),
                    case["kind"].as_str().unwrap().to_owned(),
                    (estimated - reference) / reference,
                )
            })
            .collect()
    }

    #[test]
    fn the_estimate_error_on_realistic_bodies_is_as_documented() {
        let errors = errors();
        assert!(errors.len() >= 20);
        for (name, kind, error) in &errors {
            println!("{kind:<12} {name:<20} {:+.1}%", error * 100.0);
        }
        let mut absolute: Vec<f64> = errors.iter().map(|(_, _, error)| error.abs()).collect();
        absolute.sort_by(f64::total_cmp);
        let mean = absolute.iter().sum::<f64>() / absolute.len() as f64;
        let p90 = absolute[(absolute.len() * 9).div_ceil(10) - 1];
        let under = errors.iter().filter(|(_, _, error)| *error < 0.0).count();
        println!(
            "mean |error| {:.1}%, p90 {:.1}%, {under} under",
            mean * 100.0,
            p90 * 100.0
        );
        // The figures docs/proxy.md reports; a change to the estimator that
        // moves them must update the page.
        assert!((0.15..=0.30).contains(&mean), "mean {mean}");
        assert!((0.35..=0.50).contains(&p90), "p90 {p90}");
    }
}
