//! Response headers: case-insensitive lookup, `Name: value` lines as `curl -D`
//! writes them, and the wait that headers prescribe.

use std::time::SystemTime;

use super::durations::{parse_reset, parse_seconds};
use super::timestamps::{parse_http_date, seconds_until};

/// A header line that is not `Name: value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A line with no colon, or an empty or non-token name; `line` is 1-based
    /// (0 for a single header given on its own).
    #[error("line {line}: `{text}` is not a `Name: value` header")]
    Malformed {
        /// The 1-based line number in the file, 0 for a lone header.
        line: usize,
        /// The offending line, shortened to 80 characters.
        text: String,
    },
}

/// What a headers file (`curl -D FILE` output) holds: the last response's
/// status, when a status line leads it, and its headers in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadersFile {
    /// The status of the last `HTTP/x NNN reason` line, if any.
    pub status: Option<u16>,
    /// The last response's headers, names as written.
    pub headers: Vec<(String, String)>,
}

/// Parses one `Name: value` header; the value is trimmed.
pub fn parse_header_line(text: &str) -> Result<(String, String), HeaderError> {
    split_header(text, 0)
}

/// Parses a headers file as `curl -D` writes it: CRLF or LF lines, an
/// optional status line before each response's headers, a blank line after
/// them. With redirects or `100 Continue` there are several responses: the
/// last one with headers counts. A line starting with a space or tab
/// continues the previous header's value.
pub fn parse_headers_file(text: &str) -> Result<HeadersFile, HeaderError> {
    let mut current = HeadersFile::default();
    let mut last_complete: Option<HeadersFile> = None;
    for (index, raw_line) in text.lines().enumerate() {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line.trim().is_empty() {
            if current.status.is_some() || !current.headers.is_empty() {
                last_complete = Some(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(status) = status_line(line) {
            if current.status.is_some() || !current.headers.is_empty() {
                last_complete = Some(std::mem::take(&mut current));
            }
            current.status = Some(status);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
        }
        current.headers.push(split_header(line, index + 1)?);
    }
    if current.status.is_some() || !current.headers.is_empty() {
        last_complete = Some(current);
    }
    Ok(last_complete.unwrap_or_default())
}

/// Splits a whole response as `curl -i` prints it (status line, headers, a
/// blank line, the body) into the last response's head and its body. `None`
/// when the text does not start with a status line or a head is malformed.
pub fn split_response(text: &str) -> Option<(HeadersFile, &str)> {
    let mut rest = text;
    let mut head = None;
    // Each pass consumes one head and its blank line, so the loop ends with the text.
    while rest.starts_with("HTTP/") {
        let (block, body) = split_at_blank_line(rest)?;
        head = Some(parse_headers_file(block).ok()?);
        rest = body;
    }
    head.map(|head| (head, rest))
}

fn split_at_blank_line(text: &str) -> Option<(&str, &str)> {
    let crlf = text.find("\r\n\r\n").map(|index| (index, 4));
    let lf = text.find("\n\n").map(|index| (index, 2));
    let (index, length) = match (crlf, lf) {
        (Some(crlf), Some(lf)) => crlf.min(lf),
        (found, None) | (None, found) => found?,
    };
    Some((&text[..index], &text[index + length..]))
}

/// `HTTP/1.1 429 Too Many Requests`, `HTTP/2 429`: the status code.
fn status_line(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("HTTP/")?;
    let mut words = rest.split_whitespace();
    words.next()?;
    let code = words.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|code| (100..=999).contains(code))
}

fn split_header(text: &str, line: usize) -> Result<(String, String), HeaderError> {
    let malformed = || HeaderError::Malformed {
        line,
        text: text.chars().take(80).collect(),
    };
    let (name, value) = text.split_once(':').ok_or_else(malformed)?;
    let name = name.trim();
    let is_token = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(malformed());
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Case-insensitive header lookup over a list of `(name, value)` pairs; the
/// last occurrence wins, as it would in a map built from the response.
pub(super) fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The wait `retry-after-ms` or `Retry-After` states, in seconds.
pub(super) fn retry_after(headers: &[(String, String)], now: SystemTime) -> Option<f64> {
    if let Some(milliseconds) = find(headers, "retry-after-ms").and_then(parse_seconds) {
        return Some(milliseconds / 1000.0);
    }
    if let Some(value) = find(headers, "retry-after") {
        if let Some(seconds) = parse_seconds(value) {
            return Some(seconds);
        }
        if let Some(moment) = parse_http_date(value) {
            return Some(seconds_until(moment, now));
        }
    }
    None
}

/// The reset of the budget that ran out. Each `…reset…` header of a rate-limit
/// family (`x-ratelimit-reset-tokens`, `anthropic-ratelimit-requests-reset`,
/// `ratelimitbysize-reset`, `x-ratelimit-reset-after`, …) pairs with the
/// `remaining` header of the same name. Resets of budgets whose remaining is 0
/// win, and of those the latest (every exhausted budget must refill); when no
/// remaining says 0, the latest reset of all.
pub(super) fn exhausted_budget_reset(headers: &[(String, String)], now: SystemTime) -> Option<f64> {
    let mut exhausted: Option<f64> = None;
    let mut any: Option<f64> = None;
    for (name, value) in headers {
        let lower = name.trim().to_ascii_lowercase();
        if !lower.contains("reset")
            || !(lower.contains("ratelimit") || lower.contains("rate-limit"))
        {
            continue;
        }
        let Some(seconds) = parse_reset(value, now) else {
            continue;
        };
        let remaining_name = if lower.contains("reset-after") {
            lower.replacen("reset-after", "remaining", 1)
        } else {
            lower.replacen("reset", "remaining", 1)
        };
        let remaining =
            find(headers, &remaining_name).and_then(|value| value.trim().parse::<f64>().ok());
        if remaining.is_some_and(|remaining| remaining <= 0.0) {
            exhausted = Some(exhausted.map_or(seconds, |latest| latest.max(seconds)));
        }
        any = Some(any.map_or(seconds, |latest| latest.max(seconds)));
    }
    exhausted.or(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::retry::timestamps::from_unix;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn curl_dump_with_continue_and_crlf() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 429 \r\ndate: Mon, 23 Nov 2026 11:00:00 GMT\r\nRetry-After: 20\r\nX-Folded: a\r\n  b\r\n\r\n";
        let parsed = parse_headers_file(text).unwrap();
        assert_eq!(parsed.status, Some(429));
        assert_eq!(
            parsed.headers,
            pairs(&[
                ("date", "Mon, 23 Nov 2026 11:00:00 GMT"),
                ("Retry-After", "20"),
                ("X-Folded", "a b"),
            ])
        );
    }

    #[test]
    fn curl_include_output_splits_into_head_and_body() {
        let text =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 429\r\nretry-after: 3\r\n\r\n{\"error\": 1}\n";
        let (head, body) = split_response(text).unwrap();
        assert_eq!(head.status, Some(429));
        assert_eq!(head.headers, pairs(&[("retry-after", "3")]));
        assert_eq!(body, "{\"error\": 1}\n");
        let (head, body) = split_response("HTTP/1.1 503 Service Unavailable\nx: y\n\n").unwrap();
        assert_eq!((head.status, body), (Some(503), ""));
        assert_eq!(split_response("{\"error\": 1}"), None);
        assert_eq!(split_response("HTTP/2 429\nno blank line"), None);
        assert_eq!(split_response("HTTP/2 429\nbroken header\n\nbody"), None);
    }

    #[test]
    fn headers_without_status_line() {
        let parsed = parse_headers_file("retry-after-ms: 1500\nx-request-id: abc\n").unwrap();
        assert_eq!(parsed.status, None);
        assert_eq!(parsed.headers.len(), 2);
        assert_eq!(parse_headers_file("").unwrap(), HeadersFile::default());
    }

    #[test]
    fn malformed_lines_are_named() {
        assert_eq!(
            parse_headers_file("retry-after: 1\nnot a header\n"),
            Err(HeaderError::Malformed {
                line: 2,
                text: "not a header".into()
            })
        );
        assert!(parse_header_line(": value").is_err());
        assert!(parse_header_line("bad name: value").is_err());
        assert_eq!(
            parse_header_line("Retry-After:  7 ").unwrap(),
            ("Retry-After".into(), "7".into())
        );
    }

    #[test]
    fn precedence_among_headers() {
        let now = from_unix(1_795_431_600, 0).unwrap();
        let wait = |list: &[(&str, &str)]| {
            let headers = pairs(list);
            retry_after(&headers, now).or_else(|| exhausted_budget_reset(&headers, now))
        };
        assert_eq!(
            wait(&[("retry-after", "7"), ("retry-after-ms", "6500")]),
            Some(6.5)
        );
        assert_eq!(wait(&[("Retry-After", "0")]), Some(0.0));
        assert_eq!(
            wait(&[("Retry-After", "Mon, 23 Nov 2026 11:00:42 GMT")]),
            Some(42.0)
        );
        assert_eq!(
            wait(&[("retry-after", "soon"), ("x-ratelimit-reset-after", "3")]),
            Some(3.0)
        );
        // The tokens budget ran out: its reset counts, not the later requests one.
        assert_eq!(
            wait(&[
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-reset-requests", "6m0s"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "20ms"),
            ]),
            Some(0.02)
        );
        // Nothing says 0: the latest reset.
        assert_eq!(
            wait(&[
                ("x-ratelimit-remaining-requests", "5"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-reset-tokens", "1h2m3.5s"),
            ]),
            Some(3723.5)
        );
        assert_eq!(wait(&[("content-type", "application/json")]), None);
    }
}
