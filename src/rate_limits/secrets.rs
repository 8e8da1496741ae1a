//! Keeps credentials out of everything specsmith writes or says: API keys and
//! bearer tokens in a wrapped command's arguments or output are masked.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What a masked secret is replaced with.
pub const MASK: &str = "[REDACTED]";

static SECRET_PATTERNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // A credential after a name that says what it is: keep the name.
        r#"(?P<name>(?i:\bbearer\s+"#,
        r#"|\b(?:x-api-key|x-goog-api-key|api[_-]?key|apikey|authorization|access[_-]?token|token|key)"#,
        r#"["']?\s*[:=]\s*["']?(?:bearer\s+)?))"#,
        r"[A-Za-z0-9._~+/=\-]{8,}",
        // Bare keys recognisable by their shape.
        r"|\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}", // OpenAI, Anthropic, OpenRouter, DeepSeek …
        r"|\bgsk_[A-Za-z0-9]{20,}",              // Groq
        r"|\bAIza[0-9A-Za-z_\-]{30,}",          // Google
        r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",      // AWS access key ids
    ))
    .expect("secret patterns are valid")
});

/// `text` with every recognised credential replaced by [`MASK`]; the name
/// before a credential (`Bearer`, `x-api-key:`, `key=`) is kept so the
/// message still makes sense.
pub fn redact(text: &str) -> Cow<'_, str> {
    SECRET_PATTERNS.replace_all(text, |captures: &regex::Captures| {
        match captures.name("name") {
            Some(name) => format!("{}{MASK}", name.as_str()),
            None => MASK.to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_are_masked() {
        for secret in [
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
            "gsk_abcdefghijklmnopqrstuvwxyz",
            "AIzaSyA1234567890abcdefghijklmnopqrstu",
            "AKIAIOSFODNN7EXAMPLE",
        ] {
            let text = format!("calling with {secret} now");
            assert_eq!(
                redact(&text),
                format!("calling with {MASK} now"),
                "{secret}"
            );
        }
    }

    #[test]
    fn headers_and_parameters_keep_their_names() {
        assert_eq!(
            redact("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def"),
            format!("Authorization: Bearer {MASK}")
        );
        assert_eq!(
            redact("-H x-api-key:0123456789abcdef"),
            format!("-H x-api-key:{MASK}")
        );
        assert_eq!(
            redact("https://host/v1/models?key=0123456789abcdef&alt=sse"),
            format!("https://host/v1/models?key={MASK}&alt=sse")
        );
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let text = "Rate limit reached for gpt-4o: Limit 30000, Requested 36278. Please try again in 6m0s.";
        assert_eq!(redact(text), text);
        assert_eq!(redact("task-scheduler keyboard"), "task-scheduler keyboard");
    }

    #[test]
    fn secrets_are_redacted() {
        for (text, expected) in [
            (
                "Incorrect API key provided: sk-proj-AbCdEf0123456789xyzXYZ.",
                "Incorrect API key provided: [REDACTED].",
            ),
            (
                "curl -H 'Authorization: Bearer eyJhbGciOi.J9.abc' failed",
                "curl -H 'Authorization: Bearer [REDACTED]' failed",
            ),
            ("sent bearer abcdefgh12345678", "sent bearer [REDACTED]"),
            (
                "x-api-key: sk-ant-api03-abcdefghijklmnop rejected",
                "x-api-key: [REDACTED] rejected",
            ),
            (
                "{'api_key': 'gsk_abcdefghijklmnopqrstuv'}",
                "{'api_key': '[REDACTED]'}",
            ),
            (
                "key=AIzaSyA1234567890abcdefghijklmnopqrstuv used",
                "key=[REDACTED] used",
            ),
            ("AKIAIOSFODNN7EXAMPLE denied", "[REDACTED] denied"),
            (
                "Incorrect API key provided: sk-abc***xyz.",
                "Incorrect API key provided: sk-abc***xyz.",
            ),
            (
                "Rate limit reached for gpt-4o",
                "Rate limit reached for gpt-4o",
            ),
        ] {
            assert_eq!(redact(text), expected, "{text}");
        }
    }
}
