//! The route table: which path prefix goes to which upstream, and the checks
//! that keep the proxy from reaching anything else.
//!
//! A request path `/NAME/REST` goes to the upstream configured for `NAME`,
//! at its base URL joined with `/REST` and the query. The `Host` header and
//! an absolute request target never choose the upstream; a path that could
//! climb out of the base or name another authority is refused.

use std::collections::BTreeMap;
use std::fmt;

/// Whose API shape a route speaks: how its model, usage and errors are read
/// and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI and the OpenAI-compatible APIs (Azure OpenAI, Groq, Mistral, vLLM…).
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (model in the path).
    Gemini,
}

/// One configured upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The route name: the first path segment clients use.
    pub name: String,
    /// The provider key budgets are kept under (`google` for the `gemini` route).
    pub provider: String,
    /// The API shape.
    pub dialect: Dialect,
    /// `http` or `https`.
    pub scheme: String,
    /// `host` or `host:port`.
    pub authority: String,
    /// The base path, without a trailing `/` (empty for the root).
    pub base_path: String,
}

impl Upstream {
    /// The upstream URL for `rest` (starting with `/`) and an optional query.
    pub fn target(&self, rest: &str, query: Option<&str>) -> String {
        let mut url = format!(
            "{}://{}{}{}",
            self.scheme, self.authority, self.base_path, rest
        );
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}://{}{}",
            self.scheme, self.authority, self.base_path
        )
    }
}

/// Why a route or a request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// `--upstream` text is not `NAME=URL`.
    #[error("`{given}` is not NAME=URL (such as `openai=http://127.0.0.1:9000/v1`)")]
    NotAssignment {
        /// The text given.
        given: String,
    },
    /// The route name is not a lowercase word.
    #[error("route name `{name}` must be lowercase letters, digits, `-` or `_`")]
    BadName {
        /// The name given.
        name: String,
    },
    /// The upstream URL is not a plain `http(s)://host[:port][/path]`.
    #[error("upstream URL `{url}` {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The path names no configured route.
    #[error("no route for `/{name}`")]
    UnknownRoute {
        /// The first path segment.
        name: String,
    },
    /// The path or request target could reach beyond its route.
    #[error("refused request target: {why}")]
    Unsafe {
        /// What made it unsafe.
        why: &'static str,
    },
}

/// The public API hosts routed by default.
pub fn default_upstreams() -> Vec<Upstream> {
    [
        ("openai", "https://api.openai.com"),
        ("anthropic", "https://api.anthropic.com"),
        ("gemini", "https://generativelanguage.googleapis.com"),
    ]
    .into_iter()
    .map(|(name, url)| upstream(name, url).expect("built-in upstreams are valid"))
    .collect()
}

/// Parses `NAME=URL` from the command line.
pub fn parse_upstream(text: &str) -> Result<Upstream, RouteError> {
    let (name, url) = text
        .split_once('=')
        .ok_or_else(|| RouteError::NotAssignment {
            given: text.to_owned(),
        })?;
    upstream(name.trim(), url.trim())
}

/// An upstream named `name` at `url`. The names `openai`, `anthropic` and
/// `gemini` keep their dialect (and `gemini` the provider key `google`);
/// any other name speaks the OpenAI dialect under its own provider key.
pub fn upstream(name: &str, url: &str) -> Result<Upstream, RouteError> {
    let (provider, dialect) = match name {
        "openai" => ("openai", Dialect::OpenAi),
        "anthropic" => ("anthropic", Dialect::Anthropic),
        "gemini" => ("google", Dialect::Gemini),
        other => (other, Dialect::OpenAi),
    };
    upstream_with(name, url, provider, dialect)
}

impl Dialect {
    /// `openai`, `anthropic` or `gemini`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "gemini" => Some(Self::Gemini),
            _ => None,
        }
    }
}

/// Whether `authority` (`host` or `host:port`) names a loopback host:
/// `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An upstream named `name` at `url`, paced under `provider` and read in
/// `dialect`.
pub fn upstream_with(
    name: &str,
    url: &str,
    provider: &str,
    dialect: Dialect,
) -> Result<Upstream, RouteError> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok || matches!(name, "healthz" | "metrics") {
        return Err(RouteError::BadName {
            name: name.to_owned(),
        });
    }
    let bad = |why| RouteError::BadUrl {
        url: url.to_owned(),
        why,
    };
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else {
        return Err(bad("must start with http:// or https://"));
    };
    if rest.contains(['?', '#', '@', '\\'])
        || rest.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("must have no query, fragment, credentials or spaces"));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if path
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(bad("must not contain `.` or `..` segments"));
    }
    Ok(Upstream {
        name: name.to_owned(),
        provider: provider.to_owned(),
        dialect,
        scheme: scheme.to_owned(),
        authority: authority.to_ascii_lowercase(),
        base_path: path.trim_end_matches('/').to_owned(),
    })
}

/// The configured routes by name.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: BTreeMap<String, Upstream>,
}

/// A request resolved to its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// The upstream.
    pub upstream: &'a Upstream,
    /// The path after the route name, starting with `/` (`/` when empty).
    pub rest: String,
}

impl RouteTable {
    /// The default routes with `overrides` added or replacing them by name.
    pub fn new(overrides: impl IntoIterator<Item = Upstream>) -> Self {
        let mut routes: BTreeMap<String, Upstream> = default_upstreams()
            .into_iter()
            .map(|upstream| (upstream.name.clone(), upstream))
            .collect();
        for upstream in overrides {
            routes.insert(upstream.name.clone(), upstream);
        }
        Self { routes }
    }

    /// Every route, by name.
    pub fn routes(&self) -> impl Iterator<Item = &Upstream> {
        self.routes.values()
    }

    /// The upstream for the origin-form request `path` (no query). Refuses a
    /// path that is not origin-form, holds `..`, `.`, an empty segment, a
    /// backslash, `@`, percent-escaped separators or control characters.
    pub fn resolve(&self, path: &str) -> Result<Resolved<'_>, RouteError> {
        let unsafe_target = |why| RouteError::Unsafe { why };
        let Some(after_root) = path.strip_prefix('/') else {
            return Err(unsafe_target("not a path starting with `/`"));
        };
        if after_root.starts_with('/') {
            return Err(unsafe_target("`//` could name another host"));
        }
        if path.contains(['\\', '@']) {
            return Err(unsafe_target("`\\` or `@` in the path"));
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b >= 0x80)
        {
            return Err(unsafe_target(
                "control, space or non-ASCII byte in the path",
            ));
        }
        let lower = path.to_ascii_lowercase();
        if ["%2e", "%2f", "%5c", "%40", "%00"]
            .iter()
            .any(|escape| lower.contains(escape))
        {
            return Err(unsafe_target(
                "escaped `.`, `/`, `\\`, `@` or NUL in the path",
            ));
        }
        let (name, rest) = match after_root.find('/') {
            Some(slash) => (&after_root[..slash], &after_root[slash..]),
            None => (after_root, "/"),
        };
        let segments: Vec<&str> = rest.split('/').skip(1).collect();
        let last = segments.len().saturating_sub(1);
        let climbs = segments.iter().enumerate().any(|(index, segment)| {
            *segment == ".." || *segment == "." || (segment.is_empty() && index != last)
        });
        if climbs {
            return Err(unsafe_target("`.`, `..` or an empty segment in the path"));
        }
        let upstream = self
            .routes
            .get(name)
            .ok_or_else(|| RouteError::UnknownRoute {
                name: name.chars().take(64).collect(),
            })?;
        Ok(Resolved {
            upstream,
            rest: rest.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new([parse_upstream("openai=http://127.0.0.1:9000/base/").unwrap()])
    }

    #[test]
    fn routes_by_first_segment_and_keeps_the_rest() {
        let table = table();
        let resolved = table.resolve("/openai/v1/chat/completions").unwrap();
        assert_eq!(resolved.upstream.authority, "127.0.0.1:9000");
        assert_eq!(resolved.rest, "/v1/chat/completions");
        assert_eq!(
            resolved.upstream.target(&resolved.rest, Some("a=1")),
            "http://127.0.0.1:9000/base/v1/chat/completions?a=1"
        );
        let gemini = table
            .resolve("/gemini/v1beta/models/gemini-2.0-flash:generateContent")
            .unwrap();
        assert_eq!(gemini.upstream.provider, "google");
        assert_eq!(gemini.upstream.dialect, Dialect::Gemini);
        assert_eq!(gemini.upstream.scheme, "https");
        assert_eq!(table.resolve("/anthropic").unwrap().rest, "/");
        assert_eq!(table.resolve("/openai/v1/").unwrap().rest, "/v1/");
    }

    #[test]
    fn refuses_paths_that_could_leave_the_route() {
        let table = table();
        for path in [
            "http://evil.example/v1",
            "evil.example:443",
            "*",
            "//evil.example/v1",
            "/openai/../anthropic/v1",
            "/openai/v1/..",
            "/openai/./v1",
            "/openai//evil.example/v1",
            "/openai/v1%2f..%2fx",
            "/openai/%2e%2e/x",
            "/openai/@evil.example/v1",
            "/openai/v1\\x",
            "/openai/v1\u{7f}",
        ] {
            assert!(
                matches!(table.resolve(path), Err(RouteError::Unsafe { .. })),
                "{path} was not refused"
            );
        }
        assert_eq!(
            table.resolve("/evil/v1"),
            Err(RouteError::UnknownRoute {
                name: "evil".into()
            })
        );
    }

    #[test]
    fn parses_and_checks_upstreams() {
        let groq = parse_upstream("groq=https://api.groq.com/openai/v1").unwrap();
        assert_eq!(
            (groq.provider.as_str(), groq.dialect),
            ("groq", Dialect::OpenAi)
        );
        assert_eq!(groq.base_path, "/openai/v1");
        for bad in [
            "openai",
            "Open=http://x",
            "metrics=http://x",
            "x=ftp://host",
            "x=http://user@host",
            "x=http://host/a?b",
            "x=http://",
            "x=http://host/../y",
        ] {
            assert!(parse_upstream(bad).is_err(), "{bad} was accepted");
        }
    }
}
