//! Keeps credentials and terminal control out of everything specsmith writes
//! or says: API keys, bearer tokens and basic credentials are masked
//! ([`redact`]), control characters are escaped ([`escape_controls`]), and
//! [`for_message`] does both, for every message the CLI prints.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What a masked secret is replaced with.
pub const MASK: &str = "[REDACTED]";

static SECRET_PATTERNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // An `Authorization` value with its scheme: the credentials, however
        // short, are secret (`Basic dXNlcjpwYXNz`, `Bearer abc`).
        r#"(?P<scheme>(?i:\bauthorization["']?\s*[:=]\s*["']?(?:bearer|basic|digest|token|apikey|key)\s+))"#,
        r"[A-Za-z0-9._~+/=\-]+",
        // `Bearer` spelt as HTTP spells it is followed by a token, however short.
        r"|(?P<bearer>\bBearer\s+)[A-Za-z0-9._~+/=\-]+",
        // A credential after a name that says what it is: keep the name.
        r#"|(?P<name>(?i:\bbearer\s+"#,
        r#"|\b(?:x-api-key|x-goog-api-key|api[_-]?key|apikey|authorization|access[_-]?token|token|key)"#,
        r#"["']?\s*[:=]\s*["']?(?:bearer\s+)?))"#,
        // Long enough to be a key, or short but not a word (`Bearer abc123`).
        r"(?:[A-Za-z0-9._~+/=\-]{8,}|[A-Za-z]*[0-9._~+/=\-][A-Za-z0-9._~+/=\-]*)",
        // Bare keys recognisable by their shape.
        r"|\b(?:sk|rk|pk)-(?:proj|ant|or|svcacct|admin)-[A-Za-z0-9_\-]{3,}", // prefixed keys, even short ones
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
        let name = ["scheme", "bearer", "name"]
            .into_iter()
            .find_map(|group| captures.name(group));
        match name {
            Some(name) => format!("{}{MASK}", name.as_str()),
            None => MASK.to_owned(),
        }
    })
}

/// `text` with every control character written as an escape (`\n`, `\t`,
/// `\u{1b}`), so what a user or a provider typed can neither start a new
/// line in a message nor send a sequence to the terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// The one filter for every message printed: credentials masked, control
/// characters escaped. The result is always a single line.
pub fn for_message(text: &str) -> String {
    escape_controls(&redact(text)).into_owned()
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
    fn short_and_basic_credentials_are_masked() {
        for (text, expected) in [
            (
                "Authorization: Basic dXNlcjpwYXNz",
                format!("Authorization: Basic {MASK}"),
            ),
            (
                "-H 'authorization: bearer abc' failed",
                format!("-H 'authorization: bearer {MASK}' failed"),
            ),
            ("sent Bearer abc123", format!("sent Bearer {MASK}")),
            ("sent Bearer secret", format!("sent Bearer {MASK}")),
            (
                "cannot run `sk-proj-abc123`",
                format!("cannot run `{MASK}`"),
            ),
            ("key sk-ant-xyz9", format!("key {MASK}")),
        ] {
            assert_eq!(redact(text), expected, "{text}");
        }
        assert_eq!(redact("the bearer of bad news"), "the bearer of bad news");
        assert_eq!(redact("authorization: failed"), "authorization: failed");
    }

    #[test]
    fn messages_are_one_line_without_terminal_control() {
        assert_eq!(
            for_message("a\nfake row\u{1b}]0;title\u{7} Bearer abc123"),
            format!("a\\nfake row\\u{{1b}}]0;title\\u{{7}} Bearer {MASK}")
        );
        assert_eq!(escape_controls("plain"), "plain");
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
