//! Points in time as providers write them: RFC 3339 (`2026-11-23T11:00:30Z`,
//! Anthropic's reset headers) and HTTP-dates (`Retry-After: Sun, 06 Nov 1994
//! 08:49:37 GMT`, in all three forms RFC 9110 says a recipient must accept).
//!
//! Hand-written because the grammar is small and fixed, and a date crate would
//! be the heaviest dependency in the tree for two functions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A text that is not a timestamp of the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 time such as `2026-01-01T00:00:00Z`")]
pub struct TimestampError {
    /// The text as given.
    pub text: String,
}

/// Parses an RFC 3339 date-time (`2026-11-23T11:00:30Z`,
/// `2026-11-23T12:00:30.250+01:00`; `t`, `z` and a space separator accepted).
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, TimestampError> {
    parse_rfc3339_parts(text.trim()).ok_or_else(|| TimestampError {
        text: text.to_owned(),
    })
}

fn parse_rfc3339_parts(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    // Fixed positions below are byte offsets: only valid over ASCII.
    if bytes.len() < 20 || !bytes[..20].is_ascii() || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    let hour = digits(&text[11..13])?;
    let minute = digits(&text[14..16])?;
    let second = digits(&text[17..19])?;
    if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if length == 0 {
            return None;
        }
        // Nanosecond precision is all a SystemTime holds; further digits are dropped.
        let kept = &fraction[..length.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[length..];
    }
    let offset_seconds: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = &rest[1..];
            if offset.len() != 5 || !offset.is_ascii() || offset.as_bytes()[2] != b':' {
                return None;
            }
            let hours = digits(&offset[0..2])?;
            let minutes = digits(&offset[3..5])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let seconds = civil_seconds(year, month, day, hour, minute, second)? - offset_seconds;
    from_unix(seconds, nanos)
}

/// Parses an HTTP-date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) or asctime
/// (`Sun Nov  6 08:49:37 1994`). `None` for anything else.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        [weekday, day, month, year, time, zone] if weekday.ends_with(',') => {
            check_zone(zone)?;
            check_weekday(weekday.trim_end_matches(','))?;
            (digits(day)?, month_number(month)?, digits(year)?, *time)
        }
        [weekday, date, time, zone] if weekday.ends_with(',') => {
            check_zone(zone)?;
            check_weekday(weekday.trim_end_matches(','))?;
            let mut parts = date.split('-');
            let day = digits(parts.next()?)?;
            let month = month_number(parts.next()?)?;
            let year_text = parts.next()?;
            let mut year = digits(year_text)?;
            if year_text.len() == 2 {
                year += if year < 70 { 2000 } else { 1900 };
            }
            (day, month, year, *time)
        }
        [weekday, month, day, time, year] => {
            check_weekday(weekday)?;
            (digits(day)?, month_number(month)?, digits(year)?, *time)
        }
        _ => return None,
    };
    let mut clock = time.split(':');
    let hour = digits(clock.next()?)?;
    let minute = digits(clock.next()?)?;
    let second = digits(clock.next()?)?;
    if clock.next().is_some() {
        return None;
    }
    from_unix(civil_seconds(year, month, day, hour, minute, second)?, 0)
}

/// Seconds from `now` until `moment`, never negative: a moment already past
/// means "now".
pub fn seconds_until(moment: SystemTime, now: SystemTime) -> f64 {
    moment
        .duration_since(now)
        .map(|duration| duration.as_secs_f64())
        .unwrap_or(0.0)
}

/// The moment `seconds` (possibly negative) after the Unix epoch; `None`
/// when the platform's time type cannot hold it.
pub fn from_unix(seconds: i64, nanos: u32) -> Option<SystemTime> {
    let moment = if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds as u64))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))?
    };
    moment.checked_add(Duration::from_nanos(nanos.into()))
}

fn check_zone(zone: &str) -> Option<()> {
    (zone == "GMT" || zone == "UTC").then_some(())
}

fn check_weekday(name: &str) -> Option<()> {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = name.to_ascii_lowercase();
    DAYS.iter()
        .any(|day| lower == *day || (lower.len() == 3 && day.starts_with(&lower)))
        .then_some(())
}

fn month_number(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|month| *month == lower)
        .map(|index| index as i64 + 1)
}

/// An unsigned decimal of one to four ASCII digits.
fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Seconds since the Unix epoch of a UTC civil time, after checking every
/// field's range. A leap second (`:60`) counts as the second before it.
fn civil_seconds(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let second = second.min(59);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(text: &str) -> Option<i64> {
        parse_rfc3339(text).ok().map(|time| {
            time.duration_since(UNIX_EPOCH)
                .map(|duration| duration.as_secs() as i64)
                .unwrap_or_else(|error| -(error.duration().as_secs() as i64))
        })
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix("2026-11-23T11:00:30Z"), Some(1_795_431_630));
        assert_eq!(unix("2026-11-23t12:00:30+01:00"), Some(1_795_431_630));
        assert_eq!(unix("2026-11-23 06:00:30-05:00"), Some(1_795_431_630));
        assert_eq!(unix("2024-02-29T00:00:00z"), Some(1_709_164_800));
        assert_eq!(unix("1969-12-31T23:59:59Z"), Some(-1));
        let precise = parse_rfc3339("2026-11-23T11:00:30.250Z").unwrap();
        assert_eq!(
            seconds_until(precise, from_unix(1_795_431_630, 0).unwrap()),
            0.25
        );
    }

    #[test]
    fn rfc3339_rejects_near_misses() {
        for text in [
            "",
            "2026-11-23",
            "2026-11-23T11:00:30",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T11:00:30.Z",
            "2026-11-23T11:00:30+0100",
            "2026-11-23T11:00:30+01:00junk",
            "tomorrow at noon, please",
            "2026-11-2é11:00:30Z",
            "2026-11-23T11:00:30+é:00",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn http_date_forms() {
        let expected = Some(from_unix(784_111_777, 0).unwrap());
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), expected);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("Sun, 31 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("120"), None);
    }

    #[test]
    fn past_moments_are_now() {
        assert_eq!(
            seconds_until(from_unix(10, 0).unwrap(), from_unix(20, 0).unwrap()),
            0.0
        );
        assert_eq!(
            seconds_until(from_unix(20, 0).unwrap(), from_unix(10, 0).unwrap()),
            10.0
        );
    }
}
