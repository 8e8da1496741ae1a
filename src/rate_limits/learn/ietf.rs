//! The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers): the
//! structured `RateLimit-Policy` (`"default";q=100;w=60`) and `RateLimit`
//! (`"default";r=50;t=30`) lists joined by policy name, draft 7's forms
//! (`RateLimit: limit=100, remaining=50, reset=30` with `RateLimit-Policy:
//! 100;w=60`), and the older `RateLimit-Limit` / `-Remaining` / `-Reset`
//! triple, also with an `X-` prefix.

use super::{Collector, Dimension, Family, Part, Window};

/// One member of a structured list: its bare item and its parameters.
#[derive(Debug, PartialEq)]
struct Member {
    item: String,
    parameters: Vec<(String, String)>,
}

impl Member {
    fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// A quota policy as `RateLimit-Policy` states it.
#[derive(Debug)]
struct Policy {
    name: Option<String>,
    quota: Option<String>,
    dimension: Dimension,
    window: Window,
}

pub(super) fn read(headers: &[(String, String)], collector: &mut Collector) {
    let policies: Vec<Policy> = all_values(headers, "ratelimit-policy")
        .flat_map(|(_, value)| members(value).into_iter().filter_map(policy))
        .collect();
    for policy in &policies {
        if let Some(quota) = &policy.quota {
            collector.take(key(policy), Part::Limit, "RateLimit-Policy", quota);
        }
    }
    for (name, value) in all_values(headers, "ratelimit") {
        read_current(name, value, &policies, collector);
    }
    read_triple(headers, collector);
}

fn key(policy: &Policy) -> (Family, Dimension, Window, Option<String>) {
    (
        Family::Ietf,
        policy.dimension,
        policy.window,
        policy.name.clone(),
    )
}

/// A `RateLimit-Policy` member; `None` for a unit pacing cannot use
/// (`content-bytes`, `concurrent-requests`).
fn policy(member: Member) -> Option<Policy> {
    let dimension = match member.parameter("qu") {
        None | Some("requests") => Dimension::Requests,
        Some("tokens") => Dimension::Tokens,
        Some(_) => return None,
    };
    let window = match member.parameter("w") {
        Some(seconds) => Window::from_seconds(seconds.parse().ok()?),
        None => Window::Unstated,
    };
    // Draft 7 names no policy: its bare item is the quota (`100;w=60`).
    let (name, quota) = if member.item.bytes().all(|byte| byte.is_ascii_digit()) {
        (None, Some(member.item.clone()))
    } else {
        (
            Some(member.item.clone()),
            member.parameter("q").map(str::to_owned),
        )
    };
    Some(Policy {
        name,
        quota,
        dimension,
        window,
    })
}

/// `RateLimit`: draft 10's list of named items with `r` and `t`, or draft
/// 7's dictionary `limit=…, remaining=…, reset=…`.
fn read_current(name: &str, value: &str, policies: &[Policy], collector: &mut Collector) {
    let members = members(value);
    if members.iter().any(|member| member.item.contains('=')) {
        let field = |key: &str| {
            members.iter().find_map(|member| {
                let (name, value) = member.item.split_once('=')?;
                (name.trim().eq_ignore_ascii_case(key)).then(|| value.trim().to_owned())
            })
        };
        let limit = field("limit");
        // The policy whose quota is this limit gives the window.
        let matching = policies
            .iter()
            .find(|policy| policy.name.is_none() && policy.quota == limit);
        let budget = match matching {
            Some(policy) => key(policy),
            None => (Family::Ietf, Dimension::Requests, Window::Unstated, None),
        };
        for (word, part) in [
            ("limit", Part::Limit),
            ("remaining", Part::Remaining),
            ("reset", Part::Reset),
        ] {
            if let Some(found) = field(word) {
                collector.take(budget.clone(), part, name, &found);
            }
        }
        return;
    }
    for member in members {
        let named = policies
            .iter()
            .find(|policy| policy.name.as_deref() == Some(member.item.as_str()));
        let budget = match named {
            Some(policy) => key(policy),
            None => (
                Family::Ietf,
                Dimension::Requests,
                Window::Unstated,
                Some(member.item.clone()),
            ),
        };
        if let Some(remaining) = member.parameter("r") {
            collector.take(budget.clone(), Part::Remaining, name, remaining);
        }
        if let Some(reset) = member.parameter("t") {
            collector.take(budget, Part::Reset, name, reset);
        }
    }
}

/// `RateLimit-Limit: 100` (or `100, 100;w=60`), `-Remaining`, `-Reset`, with
/// or without `X-`: one requests budget, its window from a `w` when stated.
fn read_triple(headers: &[(String, String)], collector: &mut Collector) {
    for prefix in ["ratelimit-", "x-ratelimit-"] {
        let found = |part: &str| {
            headers
                .iter()
                .rev()
                .find(|(name, _)| name.trim().eq_ignore_ascii_case(&format!("{prefix}{part}")))
        };
        let limit = found("limit");
        let window = limit
            .map(|(_, value)| members(value))
            .and_then(|members| {
                members
                    .iter()
                    .find_map(|member| member.parameter("w")?.parse().ok())
            })
            .map_or(Window::Unstated, Window::from_seconds);
        let budget = (Family::Triple, Dimension::Requests, window, None);
        for (word, part) in [
            ("limit", Part::Limit),
            ("remaining", Part::Remaining),
            ("reset", Part::Reset),
        ] {
            if let Some((name, value)) = found(word) {
                // `100, 100;w=60`: the first member is the limit in force.
                let first = members(value)
                    .into_iter()
                    .next()
                    .map_or_else(|| value.clone(), |member| member.item);
                let value = if part == Part::Limit { &first } else { value };
                collector.take(budget.clone(), part, name, value);
            }
        }
    }
}

/// Every value of the field `field` (several lines of one field form one list).
fn all_values<'a>(
    headers: &'a [(String, String)],
    field: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    headers
        .iter()
        .filter(move |(name, _)| name.trim().eq_ignore_ascii_case(field))
        .map(|(name, value)| (name.as_str(), value.as_str()))
}

/// The members of a structured list, tolerant of spacing; quoted strings
/// lose their quotes and may hold `,`, `;` and `=`.
fn members(value: &str) -> Vec<Member> {
    split_outside_quotes(value, ',')
        .into_iter()
        .filter(|member| !member.trim().is_empty())
        .map(|member| {
            let mut pieces = split_outside_quotes(member, ';').into_iter();
            let item = unquote(pieces.next().unwrap_or_default());
            let parameters = pieces
                .filter_map(|piece| {
                    let (key, value) = piece.split_once('=').unwrap_or((piece, "?1"));
                    let key = key.trim().to_ascii_lowercase();
                    (!key.is_empty()).then(|| (key, unquote(value)))
                })
                .collect();
            Member { item, parameters }
        })
        .collect()
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if character == separator && !quoted => {
                pieces.push(&text[start..index]);
                start = index + character.len_utf8();
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
}

fn unquote(text: &str) -> String {
    let text = text.trim();
    match text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_members_keep_quoted_separators() {
        let parsed = members(r#""a,b";q=10;w=60, "c";q=5, plain;pk=:abc=:"#);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].item, "a,b");
        assert_eq!(parsed[0].parameter("q"), Some("10"));
        assert_eq!(parsed[0].parameter("w"), Some("60"));
        assert_eq!(parsed[2].item, "plain");
        assert_eq!(parsed[2].parameter("pk"), Some(":abc=:"));
        assert!(members("  ").is_empty());
    }
}
