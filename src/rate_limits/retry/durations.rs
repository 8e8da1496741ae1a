//! Lengths of time as providers write them: Go-style durations in OpenAI's and
//! Groq's reset headers (`6m0s`, `1h2m3.5s`, `20ms`), protobuf durations in
//! Google's `RetryInfo` (`34s`, `0.5s`), and words in messages (`7 seconds`,
//! `2 minutes`), plus reset values that may be any of those, a timestamp or a
//! Unix time.

use std::time::SystemTime;

use super::timestamps::{self, parse_http_date, seconds_until};

/// Parses a duration made of one or more `<number><unit>` parts, optionally
/// separated by spaces: `1s`, `6m0s`, `1h2m3.5s`, `20ms`, `7 seconds`,
/// `1 minute 30 seconds`. A lone `0` is zero. Returns seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    let text = text.trim();
    if text == "0" {
        return Some(0.0);
    }
    let (seconds, consumed) = leading_duration(text)?;
    text[consumed..].trim().is_empty().then_some(seconds)
}

/// The duration at the start of `text` and how many bytes it took, stopping
/// at the first part that is not `<number><unit>`. `None` when there is no
/// such part at all.
pub fn leading_duration(text: &str) -> Option<(f64, usize)> {
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut total = 0.0;
    let mut parts = 0;
    // Each pass consumes at least one byte, so the loop ends with the text.
    while position < bytes.len() {
        let mut cursor = position;
        while cursor < bytes.len() && bytes[cursor] == b' ' {
            cursor += 1;
        }
        let number_start = cursor;
        while cursor < bytes.len() && (bytes[cursor].is_ascii_digit() || bytes[cursor] == b'.') {
            cursor += 1;
        }
        let Ok(number) = text[number_start..cursor].parse::<f64>() else {
            break;
        };
        while cursor < bytes.len() && bytes[cursor] == b' ' {
            cursor += 1;
        }
        let unit_start = cursor;
        while cursor < bytes.len() && (bytes[cursor].is_ascii_alphabetic() || bytes[cursor] >= 0x80)
        {
            cursor += 1;
        }
        // A unit glued to the next number (`6m0s`) ends where the letters do.
        let Some(unit_seconds) = unit_seconds(&text[unit_start..cursor]) else {
            break;
        };
        total += number * unit_seconds;
        parts += 1;
        position = cursor;
    }
    (parts > 0 && total.is_finite()).then_some((total, position))
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ns" | "nanosecond" | "nanoseconds" => 1e-9,
        "us" | "µs" | "μs" | "microsecond" | "microseconds" => 1e-6,
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1e-3,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        _ => return None,
    })
}

/// Seconds from `now` until a budget resets, from a reset value in any form
/// providers use: an RFC 3339 time (Anthropic), an HTTP-date, a duration
/// (`6m0s`, OpenAI and Groq), or a bare number, read as a Unix time in
/// milliseconds from 10^12 up (OpenRouter), in seconds from 10^9 up, and as a
/// delay in seconds below that. Never negative.
pub fn parse_reset(value: &str, now: SystemTime) -> Option<f64> {
    let value = value.trim();
    if let Ok(number) = value.parse::<f64>() {
        if !number.is_finite() || number < 0.0 {
            return None;
        }
        return Some(if number >= 1e12 {
            seconds_until(timestamps::from_unix((number / 1000.0) as i64, 0)?, now)
        } else if number >= 1e9 {
            seconds_until(timestamps::from_unix(number as i64, 0)?, now)
        } else {
            number
        });
    }
    if let Ok(moment) = timestamps::parse_rfc3339(value) {
        return Some(seconds_until(moment, now));
    }
    if let Some(moment) = parse_http_date(value) {
        return Some(seconds_until(moment, now));
    }
    parse_duration(value)
}

/// A plain non-negative number of seconds (`Retry-After: 7`, `0.5`).
pub fn parse_seconds(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::retry::timestamps::from_unix;

    #[test]
    fn go_and_protobuf_durations() {
        for (text, seconds) in [
            ("1s", 1.0),
            ("6m0s", 360.0),
            ("20ms", 0.02),
            ("1h2m3.5s", 3723.5),
            ("7.66s", 7.66),
            ("2m59.56s", 179.56),
            ("34s", 34.0),
            ("0", 0.0),
            ("0s", 0.0),
            ("7 seconds", 7.0),
            ("1 minute 30 seconds", 90.0),
            ("1500us", 0.0015),
        ] {
            let parsed = parse_duration(text).unwrap_or(f64::NAN);
            assert!((parsed - seconds).abs() < 1e-9, "{text}: {parsed}");
        }
    }

    #[test]
    fn malformed_durations_are_none() {
        for text in ["", "s", "6x", "1s and change", "fast", "-1s", "1.2.3s"] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
    }

    #[test]
    fn leading_duration_stops_at_the_first_non_part() {
        assert_eq!(leading_duration("10.793s. Visit"), Some((10.793, 7)));
        assert_eq!(leading_duration("7 seconds. Please go"), Some((7.0, 9)));
        assert_eq!(leading_duration("soon"), None);
    }

    #[test]
    fn reset_values_in_every_form() {
        let now = from_unix(1_795_431_600, 0).unwrap(); // 2026-11-23T11:00:00Z
        assert_eq!(parse_reset("2026-11-23T11:00:30Z", now), Some(30.0));
        assert_eq!(
            parse_reset("Mon, 23 Nov 2026 11:01:00 GMT", now),
            Some(60.0)
        );
        assert_eq!(parse_reset("6m0s", now), Some(360.0));
        assert_eq!(parse_reset("12", now), Some(12.0));
        assert_eq!(parse_reset("1795431645", now), Some(45.0));
        assert_eq!(parse_reset("1795431690000", now), Some(90.0));
        assert_eq!(parse_reset("2026-11-23T10:00:00Z", now), Some(0.0));
        assert_eq!(parse_reset("-3", now), None);
        assert_eq!(parse_reset("later", now), None);
    }
}
