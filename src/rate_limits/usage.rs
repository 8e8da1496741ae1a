//! Token usage reported in a provider's JSON answer, as a wrapped command
//! prints it: a single document, JSON lines, or a server-sent event stream.

use serde_json::Value;

/// Most text scanned for usage, in bytes; a larger output is read from its end,
/// where streaming APIs put the final usage.
pub const MAX_SCANNED_BYTES: usize = 8 * 1024 * 1024;

/// Tokens a provider says a call used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub input_tokens: u64,
    /// Completion (output) tokens.
    pub output_tokens: u64,
}

/// Field names per provider: (object holding usage, input field, output
/// field, reasoning tokens reported apart from the output, if any).
/// OpenAI's `completion_tokens` and Anthropic's `output_tokens` already
/// include reasoning (thinking) tokens; Gemini counts its thoughts apart, in
/// `thoughtsTokenCount`, and they are output all the same.
const USAGE_SHAPES: [(&str, &str, &str, Option<&str>); 3] = [
    // OpenAI and OpenAI-compatible APIs.
    ("usage", "prompt_tokens", "completion_tokens", None),
    // Anthropic.
    ("usage", "input_tokens", "output_tokens", None),
    // Google Gemini and Vertex.
    (
        "usageMetadata",
        "promptTokenCount",
        "candidatesTokenCount",
        Some("thoughtsTokenCount"),
    ),
];

/// Finds the usage in `output`. Streams report usage piecemeal (Anthropic
/// sends input tokens first and a growing output count later), so the largest
/// value seen for each side wins. `None` when no usage object is present.
pub fn find_usage(output: &str) -> Option<TokenUsage> {
    let text = tail(output, MAX_SCANNED_BYTES);
    let mut found: Option<TokenUsage> = None;
    let mut merge = |value: &Value| {
        visit_usage(value, &mut |usage| {
            let total = found.get_or_insert_with(TokenUsage::default);
            total.input_tokens = total.input_tokens.max(usage.input_tokens);
            total.output_tokens = total.output_tokens.max(usage.output_tokens);
        })
    };
    if let Ok(document) = serde_json::from_str::<Value>(text) {
        merge(&document);
        return found;
    }
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("data:").map_or(line, str::trim_start);
        if line.starts_with('{') {
            if let Ok(value) = serde_json::from_str::<Value>(line) {
                merge(&value);
            }
        }
    }
    found
}

fn tail(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Calls `found` for every usage object in `value`, looking at most a few
/// levels deep (responses nest usage one or two levels down, e.g. Anthropic's
/// `message_start.message.usage`).
fn visit_usage(value: &Value, found: &mut dyn FnMut(TokenUsage)) {
    visit_at_depth(value, found, 0);
}

const MAX_DEPTH: usize = 4;

fn visit_at_depth(value: &Value, found: &mut dyn FnMut(TokenUsage), depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(object) => {
            for (container, input_field, output_field, apart) in USAGE_SHAPES {
                if let Some(Value::Object(usage)) = object.get(container) {
                    let mut input = usage.get(input_field).and_then(Value::as_u64);
                    // Anthropic counts cache writes toward its input-tokens
                    // budget (ITPM) and, for current models, not cache reads;
                    // its `input_tokens` leaves both out.
                    if input_field == "input_tokens" {
                        if let Some(written) = usage
                            .get("cache_creation_input_tokens")
                            .and_then(Value::as_u64)
                        {
                            input = Some(input.unwrap_or(0).saturating_add(written));
                        }
                    }
                    let thoughts = apart.and_then(|field| usage.get(field)?.as_u64());
                    let output = match (usage.get(output_field).and_then(Value::as_u64), thoughts) {
                        (None, None) => None,
                        (output, thoughts) => {
                            Some(output.unwrap_or(0).saturating_add(thoughts.unwrap_or(0)))
                        }
                    };
                    if input.is_some() || output.is_some() {
                        found(TokenUsage {
                            input_tokens: input.unwrap_or(0),
                            output_tokens: output.unwrap_or(0),
                        });
                    }
                }
            }
            for child in object.values() {
                if child.is_object() || child.is_array() {
                    visit_at_depth(child, found, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                visit_at_depth(item, found, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_cache_writes_count_as_input_and_cache_reads_do_not() {
        let message = r#"{"type":"message","usage":{"input_tokens":10,"cache_creation_input_tokens":500,
            "cache_read_input_tokens":4000,"output_tokens":20}}"#;
        assert_eq!(find_usage(message), usage(510, 20));
        let reads_only =
            r#"{"usage":{"input_tokens":10,"cache_read_input_tokens":4000,"output_tokens":2}}"#;
        assert_eq!(find_usage(reads_only), usage(10, 2));
    }

    fn usage(input_tokens: u64, output_tokens: u64) -> Option<TokenUsage> {
        Some(TokenUsage {
            input_tokens,
            output_tokens,
        })
    }

    #[test]
    fn openai_chat_completion() {
        let text = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[],
            "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}"#;
        assert_eq!(find_usage(text), usage(19, 10));
    }

    #[test]
    fn anthropic_message_and_stream() {
        let message = r#"{"type":"message","usage":{"input_tokens":2095,"output_tokens":503}}"#;
        assert_eq!(find_usage(message), usage(2095, 503));
        let stream = "event: message_start\n\
            data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
            event: content_block_delta\n\
            data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n\
            event: message_delta\n\
            data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n";
        assert_eq!(find_usage(stream), usage(25, 15));
    }

    #[test]
    fn gemini_usage_metadata() {
        let text = r#"{"candidates":[{"content":{}}],
            "usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":12,"totalTokenCount":16}}"#;
        assert_eq!(find_usage(text), usage(4, 12));
    }

    #[test]
    fn thinking_tokens_count_as_output_once() {
        // Gemini counts thoughts apart from the candidates: they add up.
        let gemini = r#"{"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":40,
            "thoughtsTokenCount":1200,"totalTokenCount":1249}}"#;
        assert_eq!(find_usage(gemini), usage(9, 1_240));
        // OpenAI's completion tokens already hold the reasoning tokens.
        let openai = r#"{"usage":{"prompt_tokens":75,"completion_tokens":1186,
            "completion_tokens_details":{"reasoning_tokens":1024}}}"#;
        assert_eq!(find_usage(openai), usage(75, 1_186));
    }

    #[test]
    fn openai_stream_with_usage_in_the_last_chunk() {
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\
            data: [DONE]\n";
        assert_eq!(find_usage(stream), usage(7, 3));
    }

    #[test]
    fn text_without_usage_gives_none() {
        assert_eq!(find_usage("hello world"), None);
        assert_eq!(find_usage(r#"{"usage": "n/a"}"#), None);
        assert_eq!(find_usage(""), None);
    }

    #[test]
    fn huge_output_is_read_from_its_end_on_a_char_boundary() {
        let mut text = "é".repeat(MAX_SCANNED_BYTES);
        text.push_str("\n{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n");
        assert_eq!(find_usage(&text), usage(1, 2));
    }
}
