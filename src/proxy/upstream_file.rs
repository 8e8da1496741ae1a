//! The project setting file `.specsmith/proxy-upstreams.json`: further
//! named routes, such as Azure OpenAI, Groq or a local vLLM.
//!
//! ```json
//! {"azure": {"url": "https://x.openai.azure.com/openai", "provider": "openai"},
//!  "groq": {"url": "https://api.groq.com/openai/v1", "provider": "groq", "dialect": "openai"}}
//! ```
//!
//! A missing file routes nothing more. Each entry's `provider` is the key
//! its budget is kept under (the route name when absent, `google` for a
//! route named `gemini`); `dialect` is how bodies, usage and errors are read
//! (`openai`, `anthropic` or `gemini`), by default the provider's own when
//! it is one of those (`google` reads as `gemini`) and else `openai`. Plain
//! `http` is only accepted for loopback hosts: anything else would send
//! clients' API keys in the clear.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::routes::{is_loopback_authority, upstream, upstream_with, Dialect, Upstream};
use crate::persist;

/// The setting file's name, in `.specsmith/`.
pub const UPSTREAMS_FILE: &str = "proxy-upstreams.json";

/// One entry of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    url: String,
    provider: Option<String>,
    dialect: Option<String>,
}

/// Why the file was refused.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamFileError {
    /// The file cannot be read or is not JSON.
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    /// The JSON is not a map of route entries (unknown field, wrong type…).
    #[error("`{path}` is invalid: {message}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One route's field is wrong.
    #[error("`{path}` route `{route}` field `{field}`: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The route name.
        route: String,
        /// The field at fault (`name` for the key itself).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The routes named in `path`, in name order; none when it does not exist.
pub fn read_upstreams(path: &Path) -> Result<Vec<Upstream>, UpstreamFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(persist::PersistError::Read {
                path: path.to_owned(),
                source,
            }
            .into())
        }
    };
    let value: serde_json::Value = persist::parse_json(path, &bytes)?;
    let entries: BTreeMap<String, Entry> =
        serde_json::from_value(value).map_err(|error| UpstreamFileError::Shape {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
    entries
        .into_iter()
        .map(|(name, entry)| route(path, &name, entry))
        .collect()
}

fn route(path: &Path, name: &str, entry: Entry) -> Result<Upstream, UpstreamFileError> {
    let fault = |field, message: String| UpstreamFileError::Field {
        path: path.to_owned(),
        route: name.chars().take(64).collect(),
        field,
        message,
    };
    // The name and URL checks are the flag's; the defaults too.
    let base = upstream(name, &entry.url).map_err(|error| {
        let field = if matches!(error, super::routes::RouteError::BadName { .. }) {
            "name"
        } else {
            "url"
        };
        fault(field, error.to_string())
    })?;
    if base.scheme == "http" && !is_loopback_authority(&base.authority) {
        return Err(fault(
            "url",
            format!(
                "`{}` must use https (plain http only for a loopback host)",
                entry.url
            ),
        ));
    }
    let provider = match entry.provider {
        None => base.provider.clone(),
        Some(provider) => {
            let ok = !provider.is_empty()
                && provider.len() <= 64
                && provider.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !ok {
                return Err(fault(
                    "provider",
                    format!("`{provider}` must be lowercase letters, digits, `-` or `_`"),
                ));
            }
            provider
        }
    };
    let dialect = match entry.dialect {
        Some(text) => Dialect::parse(&text).ok_or_else(|| {
            fault(
                "dialect",
                format!("`{text}` is not a dialect (use `openai`, `anthropic` or `gemini`)"),
            )
        })?,
        None => match provider.as_str() {
            "google" => Dialect::Gemini,
            other => Dialect::parse(other).unwrap_or(base.dialect),
        },
    };
    upstream_with(name, &entry.url, &provider, dialect)
        .map_err(|error| fault("url", error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Upstream>, UpstreamFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(UPSTREAMS_FILE);
        std::fs::write(&path, text).unwrap();
        read_upstreams(&path)
    }

    #[test]
    fn a_missing_file_routes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_upstreams(&dir.path().join(UPSTREAMS_FILE))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn reads_routes_with_their_provider_and_dialect() {
        let routes = read(
            r#"{"azure": {"url": "https://x.openai.azure.com/openai", "provider": "openai"},
                "groq": {"url": "https://api.groq.com/openai/v1", "provider": "groq", "dialect": "openai"},
                "claude-eu": {"url": "https://eu.example.com", "provider": "anthropic"},
                "vertex": {"url": "https://vertex.example.com/v1", "provider": "google"},
                "local": {"url": "http://127.0.0.1:8000/v1"},
                "proxied": {"url": "http://localhost:9/x", "provider": "mine", "dialect": "anthropic"}}"#,
        )
        .unwrap();
        let found: Vec<(&str, &str, Dialect, String)> = routes
            .iter()
            .map(|route| {
                (
                    route.name.as_str(),
                    route.provider.as_str(),
                    route.dialect,
                    route.to_string(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "azure",
                    "openai",
                    Dialect::OpenAi,
                    "https://x.openai.azure.com/openai".into()
                ),
                (
                    "claude-eu",
                    "anthropic",
                    Dialect::Anthropic,
                    "https://eu.example.com".into()
                ),
                (
                    "groq",
                    "groq",
                    Dialect::OpenAi,
                    "https://api.groq.com/openai/v1".into()
                ),
                (
                    "local",
                    "local",
                    Dialect::OpenAi,
                    "http://127.0.0.1:8000/v1".into()
                ),
                (
                    "proxied",
                    "mine",
                    Dialect::Anthropic,
                    "http://localhost:9/x".into()
                ),
                (
                    "vertex",
                    "google",
                    Dialect::Gemini,
                    "https://vertex.example.com/v1".into()
                ),
            ]
        );
    }

    #[test]
    fn refuses_bad_entries_naming_the_file_route_and_field() {
        for (text, field) in [
            (r#"{"a/b": {"url": "https://x"}}"#, "field `name`"),
            (r#"{"healthz": {"url": "https://x"}}"#, "field `name`"),
            (r#"{"metrics": {"url": "https://x"}}"#, "field `name`"),
            (r#"{"x": {"url": "ftp://host"}}"#, "field `url`"),
            (r#"{"x": {"url": "https://user:pw@host"}}"#, "field `url`"),
            (r#"{"x": {"url": "https://host/v1?key=1"}}"#, "field `url`"),
            (r#"{"x": {"url": "https://"}}"#, "field `url`"),
            (
                r#"{"x": {"url": "http://api.example.com"}}"#,
                "must use https",
            ),
            (
                r#"{"x": {"url": "https://h", "dialect": "cohere"}}"#,
                "field `dialect`",
            ),
            (
                r#"{"x": {"url": "https://h", "provider": "Big Co"}}"#,
                "field `provider`",
            ),
            (
                r#"{"x": {"url": "https://h", "region": "eu"}}"#,
                "unknown field `region`",
            ),
            (r#"{"x": {"provider": "openai"}}"#, "missing field `url`"),
            (r#"["x"]"#, "is invalid"),
            ("{", "proxy-upstreams.json"),
        ] {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains(UPSTREAMS_FILE), "{text}: {error}");
            assert!(error.contains(field), "{text}: {error}");
            assert!(!error.contains('\n'), "{text}: {error}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for (authority, loopback) in [
            ("127.0.0.1:80", true),
            ("127.1.2.3", true),
            ("localhost:8000", true),
            ("[::1]:9000", true),
            ("10.0.0.1:80", false),
            ("localhost.example.com", false),
            ("[::2]", false),
        ] {
            assert_eq!(is_loopback_authority(authority), loopback, "{authority}");
        }
    }
}
