//! Structured facts from a response body or error text: JSON wherever it
//! appears (the whole body, a streaming `data: {…}` line, an SDK's
//! `Error code: 429 - {'error': {…}}` Python dict, JSON escaped inside a JSON
//! string), reduced to the codes, messages and waits the classifier weighs.

use std::time::SystemTime;

use serde_json::Value;

use super::durations::{parse_duration, parse_reset, parse_seconds};

/// Most `{` positions tried as the start of an object in one text.
const MAX_CANDIDATES: usize = 64;
/// Longest span scanned for the end of one Python-style object, in bytes.
const MAX_OBJECT_BYTES: usize = 1 << 20;
/// How deep JSON escaped inside JSON strings is followed.
const MAX_NESTING: u8 = 3;
/// Most JSON nodes visited per text, so a huge document costs a bounded walk.
const MAX_NODES: usize = 20_000;

/// One `QuotaFailure` violation (Google). Its `quotaId` (`…PerMinute…`,
/// `…PerDay…`) stays in the text the classifier reads; what matters here is a
/// limit of 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Violation {
    /// `quotaValue`, the limit, when given.
    pub limit: Option<f64>,
}

/// What the JSON found in a text says.
#[derive(Debug, Clone, Default)]
pub(super) struct BodyFacts {
    /// Error identifiers (`code`, `type`, `status`, `__type`, `reason`, a bare
    /// `error` word), lower-cased with `_`, `-`, `.` and spaces removed.
    pub codes: Vec<String>,
    /// Error messages in document order (outer before nested).
    pub messages: Vec<String>,
    /// An HTTP status stated in the body (`"code": 429`).
    pub status: Option<u16>,
    /// Google `RetryInfo.retryDelay`, in seconds.
    pub retry_delay: Option<f64>,
    /// A `retry_after` / `retryAfter` field, in seconds.
    pub retry_after: Option<f64>,
    /// Headers echoed inside the body (OpenRouter's `metadata.headers`).
    pub headers: Vec<(String, String)>,
    /// The earliest-found reset time in the body, as seconds from now.
    pub reset: Option<f64>,
    /// Google `QuotaFailure` violations.
    pub violations: Vec<Violation>,
}

/// Finds every JSON object in `text` and gathers its facts. `now` measures
/// reset times in the body.
pub(super) fn read_body(text: &str, now: SystemTime) -> BodyFacts {
    let mut facts = BodyFacts::default();
    let mut nodes = MAX_NODES;
    gather(text, 0, now, &mut facts, &mut nodes);
    facts
}

fn gather(text: &str, nesting: u8, now: SystemTime, facts: &mut BodyFacts, nodes: &mut usize) {
    let mut values = Vec::new();
    extract_objects(text, &mut values);
    if values.is_empty() && text.contains("{\\\"") {
        // JSON escaped once more than the text around it: `"{\"error\": …}"`.
        let unescaped = unescape_once(text);
        extract_objects(&unescaped, &mut values);
    }
    for value in values {
        walk(&value, nesting, now, facts, nodes, 0);
    }
}

/// Appends each top-level object found in `text`, left to right.
fn extract_objects(text: &str, values: &mut Vec<Value>) {
    let mut position = 0;
    let mut candidates = MAX_CANDIDATES;
    while let Some(offset) = text[position..].find('{') {
        if candidates == 0 {
            break;
        }
        candidates -= 1;
        let start = position + offset;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(value)) = stream.next() {
            position = start + stream.byte_offset();
            values.push(value);
            continue;
        }
        if let Some(end) = balanced_end(text, start) {
            if let Some(value) = python_to_json(&text[start..end])
                .and_then(|json| serde_json::from_str::<Value>(&json).ok())
            {
                values.push(value);
                position = end;
                continue;
            }
        }
        position = start + 1;
    }
}

/// The byte index just past the `}` closing the object opened at `start`,
/// honouring single- and double-quoted strings with backslash escapes.
fn balanced_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let limit = bytes.len().min(start.saturating_add(MAX_OBJECT_BYTES));
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut index = start;
    while index < limit {
        let byte = bytes[index];
        match quote {
            Some(open) => {
                if byte == b'\\' {
                    index += 1;
                } else if byte == open {
                    quote = None;
                }
            }
            None => match byte {
                b'\'' | b'"' => quote = Some(byte),
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(index + 1);
                    }
                }
                _ => {}
            },
        }
        index += 1;
    }
    None
}

/// Rewrites a Python literal (`{'a': 'it\'s', "b": True, 'c': None}`) as JSON;
/// `None` when it holds anything else (a call, a bare name).
fn python_to_json(text: &str) -> Option<String> {
    let mut json = String::with_capacity(text.len() + 16);
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\'' | '"' => {
                let quote = character;
                json.push('"');
                loop {
                    let inner = characters.next()?;
                    match inner {
                        '\\' => match characters.next()? {
                            '\'' => json.push('\''),
                            '"' => json.push_str("\\\""),
                            'x' => {
                                let high = characters.next()?.to_digit(16)?;
                                let low = characters.next()?.to_digit(16)?;
                                json.push_str(&format!("\\u00{high:x}{low:x}"));
                            }
                            escaped @ ('\\' | 'n' | 't' | 'r' | 'b' | 'f' | 'u' | '/') => {
                                json.push('\\');
                                json.push(escaped);
                            }
                            other => {
                                // Python keeps unknown escapes literally.
                                json.push_str("\\\\");
                                json.push(other);
                            }
                        },
                        _ if inner == quote => break,
                        '"' => json.push_str("\\\""),
                        '\n' => json.push_str("\\n"),
                        '\r' => json.push_str("\\r"),
                        '\t' => json.push_str("\\t"),
                        _ => json.push(inner),
                    }
                }
                json.push('"');
            }
            _ if character.is_ascii_alphabetic() || character == '_' => {
                let mut word = String::from(character);
                while let Some(&next) = characters.peek() {
                    if next.is_ascii_alphanumeric() || next == '_' {
                        word.push(next);
                        characters.next();
                    } else {
                        break;
                    }
                }
                json.push_str(match word.as_str() {
                    "True" | "true" => "true",
                    "False" | "false" => "false",
                    "None" | "null" => "null",
                    _ => return None,
                });
            }
            '(' => json.push('['),
            ')' => json.push(']'),
            _ => json.push(character),
        }
    }
    Some(json)
}

/// Undoes one level of JSON string escaping (`\"` → `"`, `\\` → `\`, `\n`).
fn unescape_once(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            plain.push(character);
            continue;
        }
        match characters.next() {
            Some('n') => plain.push('\n'),
            Some('t') => plain.push('\t'),
            Some('r') => plain.push('\r'),
            Some(other) => plain.push(other),
            None => plain.push('\\'),
        }
    }
    plain
}

/// `RATE_LIMIT_EXCEEDED`, `rate-limit exceeded`, `ThrottlingException` →
/// `ratelimitexceeded`, `ratelimitexceeded`, `throttlingexception`.
pub(super) fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|character| !matches!(character, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn walk(
    value: &Value,
    nesting: u8,
    now: SystemTime,
    facts: &mut BodyFacts,
    nodes: &mut usize,
    depth: usize,
) {
    if *nodes == 0 || depth > 32 {
        return;
    }
    *nodes -= 1;
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.to_ascii_lowercase();
                match (key.as_str(), child) {
                    ("code" | "status" | "statuscode" | "status_code", Value::Number(number)) => {
                        if let Some(status) = number
                            .as_u64()
                            .filter(|status| (400..=599).contains(status))
                        {
                            facts.status.get_or_insert(status as u16);
                        }
                        facts.codes.push(number.to_string());
                    }
                    (
                        "code" | "type" | "status" | "__type" | "reason" | "error_code"
                        | "errorcode" | "error_type" | "errortype",
                        Value::String(text),
                    ) => {
                        // Azure writes the status as a string code: `"code": "429"`.
                        if key != "type" {
                            if let Some(status) = text
                                .trim()
                                .parse::<u16>()
                                .ok()
                                .filter(|status| (400..=599).contains(status))
                            {
                                facts.status.get_or_insert(status);
                            }
                        }
                        // AWS writes `com.amazon…#ThrottlingException` or `ThrottlingException:http://…`.
                        let name = text.rsplit('#').next().unwrap_or(text);
                        let name = name.split(':').next().unwrap_or(name);
                        facts.codes.push(normalize_code(name));
                    }
                    ("error", Value::String(text)) => {
                        if text.contains(char::is_whitespace) {
                            facts.messages.push(text.clone());
                        } else {
                            facts.codes.push(normalize_code(text));
                        }
                    }
                    (
                        "message" | "msg" | "detail" | "error_message" | "errormessage",
                        Value::String(text),
                    ) => facts.messages.push(text.clone()),
                    ("retrydelay", _) => {
                        facts.retry_delay = facts.retry_delay.or_else(|| protobuf_duration(child));
                    }
                    ("retry_after" | "retryafter" | "retry_after_seconds", _) => {
                        facts.retry_after = facts.retry_after.or_else(|| {
                            let text = number_or_text(child)?;
                            parse_seconds(&text).or_else(|| parse_duration(&text))
                        });
                    }
                    ("retry_after_ms" | "retryafterms", _) => {
                        facts.retry_after = facts.retry_after.or_else(|| {
                            parse_seconds(&number_or_text(child)?)
                                .map(|milliseconds| milliseconds / 1000.0)
                        });
                    }
                    (
                        "reset" | "reset_at" | "resets_at" | "resetat" | "reset_time" | "resettime",
                        _,
                    ) => {
                        facts.reset = facts
                            .reset
                            .or_else(|| parse_reset(&number_or_text(child)?, now));
                    }
                    ("headers", Value::Object(headers)) => {
                        for (name, header_value) in headers {
                            if let Some(text) = number_or_text(header_value) {
                                facts.headers.push((name.clone(), text));
                            }
                        }
                    }
                    ("violations", Value::Array(list)) => {
                        facts.violations.extend(list.iter().filter_map(violation));
                    }
                    _ => {}
                }
                walk(child, nesting, now, facts, nodes, depth + 1);
            }
        }
        Value::Array(list) => {
            for child in list {
                walk(child, nesting, now, facts, nodes, depth + 1);
            }
        }
        Value::String(text) if nesting < MAX_NESTING && text.contains('{') => {
            // A nested search costs like many nodes, so a document full of
            // brace-bearing strings still ends its walk early.
            *nodes = nodes.saturating_sub(MAX_CANDIDATES);
            gather(text, nesting + 1, now, facts, nodes);
        }
        _ => {}
    }
}

fn number_or_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

/// A protobuf JSON duration: `"34s"`, `"0.5s"`, or `{"seconds": 34, "nanos": 0}`.
fn protobuf_duration(value: &Value) -> Option<f64> {
    match value {
        Value::String(text) => parse_duration(text),
        Value::Object(map) => {
            let seconds = map
                .get("seconds")
                .and_then(|seconds| seconds.as_f64().or_else(|| seconds.as_str()?.parse().ok()))
                .unwrap_or(0.0);
            let nanos = map.get("nanos").and_then(Value::as_f64).unwrap_or(0.0);
            let total = seconds + nanos / 1e9;
            (total.is_finite() && total >= 0.0).then_some(total)
        }
        _ => None,
    }
}

fn violation(value: &Value) -> Option<Violation> {
    let limit = value.as_object()?.get("quotaValue").and_then(|limit| {
        limit
            .as_f64()
            .or_else(|| limit.as_str()?.trim().parse().ok())
    });
    Some(Violation { limit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn facts(text: &str) -> BodyFacts {
        read_body(text, UNIX_EPOCH)
    }

    #[test]
    fn plain_json_body() {
        let found = facts(
            r#"{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(found.codes, ["tokens", "ratelimitexceeded"]);
        assert_eq!(found.messages, ["Rate limit reached"]);
    }

    #[test]
    fn python_dict_after_sdk_prefix() {
        let found = facts(
            r#"Error code: 429 - {'error': {'message': "You exceeded your current quota, it's gone", 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota', 'ok': True}}"#,
        );
        assert_eq!(found.codes, ["insufficientquota", "insufficientquota"]);
        assert_eq!(
            found.messages,
            ["You exceeded your current quota, it's gone"]
        );
    }

    #[test]
    fn streaming_lines_and_escaped_json() {
        let stream = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert!(facts(stream).codes.contains(&"overloadederror".to_owned()));
        let nested = r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"{\n  \"error\": {\n    \"code\": 429,\n    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}"}}}"#;
        let found = facts(nested);
        assert_eq!(found.status, Some(429));
        assert!(found.codes.contains(&"resourceexhausted".to_owned()));
        let escaped_whole =
            r#""{\"error\": {\"type\": \"rate_limit_error\", \"message\": \"slow down\"}}""#;
        assert!(facts(escaped_whole)
            .codes
            .contains(&"ratelimiterror".to_owned()));
    }

    #[test]
    fn google_details() {
        let found = facts(
            r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"m","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"0"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34s"}]}}"#,
        );
        assert_eq!(found.retry_delay, Some(34.0));
        assert_eq!(found.violations.len(), 1);
        assert_eq!(found.violations[0].limit, Some(0.0));
        let object_delay = facts(r#"{"retryDelay":{"seconds":"2","nanos":500000000}}"#);
        assert_eq!(object_delay.retry_delay, Some(2.5));
    }

    #[test]
    fn text_without_objects_and_bounded_garbage() {
        let nothing = |text: &str| {
            let found = facts(text);
            found.codes.is_empty() && found.messages.is_empty()
        };
        assert!(nothing("plain words, no json"));
        assert!(nothing("{ not json at all"));
        assert!(nothing("{'code': call(), 'message': 'x'}"));
        assert!(nothing(&"{".repeat(100_000)));
    }
}
