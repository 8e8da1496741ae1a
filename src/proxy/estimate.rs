//! A fast local estimate of what a request will cost, made before it is
//! admitted and reconciled with the provider's reported usage afterwards.
//!
//! Input: one token per [`CHARS_PER_TOKEN`] characters of every string in the
//! body (the prompt, system text, tool definitions, roles), plus
//! [`TOKENS_PER_MESSAGE`] per message and [`TOKENS_PER_MEDIA`] per image,
//! audio clip or file, whose encoded bytes are not counted as text. Output:
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
    tally.walk(body, 0);
    let messages = ["messages", "contents", "input"]
        .iter()
        .find_map(|key| body.get(key).and_then(Value::as_array))
        .map_or(1, |messages| messages.len() as u64);
    let input_tokens = tally.chars.div_ceil(CHARS_PER_TOKEN)
        + messages.saturating_mul(TOKENS_PER_MESSAGE)
        + tally.media.saturating_mul(TOKENS_PER_MEDIA);
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
    chars: u64,
    media: u64,
}

impl Tally {
    fn walk(&mut self, value: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::String(text) if text.starts_with("data:") => self.media += 1,
            Value::String(text) => self.chars += text.chars().count() as u64,
            Value::Array(items) => items.iter().for_each(|item| self.walk(item, depth + 1)),
            Value::Object(map) if is_media(map) => self.media += 1,
            Value::Object(map) => {
                for (key, item) in map {
                    if key != "model" {
                        self.walk(item, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
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
}
