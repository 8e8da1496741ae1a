//! Keeps credentials out of everything specsmith writes or says: API keys and
//! bearer tokens in a wrapped command's arguments or output are masked.

use std::sync::LazyLock;

use regex::Regex;

/// What a masked secret is replaced with.
pub const MASK: &str = "[REDACTED]";

static SECRET_PATTERNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // A credential after a name that says what it is: keep the name.
        r"(?P<name>(?i:\bbearer)\s+",
        r"|(?i:\b(?:x-api-key|api-key|x-goog-api-key|api_key|apikey|key|token))\s*[:=]\s*)",
        r"[^\s&,;'\x22]{8,}",
        // Bare keys recognisable by their shape.
        r"|\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}", // OpenAI, Anthropic, OpenRouter, DeepSeek …
        r"|\bgsk_[A-Za-z0-9]{20,}",             // Groq
        r"|\bAIza[0-9A-Za-z_\-]{30,}",          // Google
        r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",      // AWS access key ids
    ))
    .expect("secret patterns are valid")
});

/// `text` with every recognised credential replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    SECRET_PATTERNS
        .replace_all(text, |captures: &regex::Captures| {
            match captures.name("name") {
                Some(name) => format!("{}{MASK}", name.as_str()),
                None => MASK.to_owned(),
            }
        })
        .into_owned()
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
}
