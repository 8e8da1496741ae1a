//! Points in time as providers write them: RFC 3339 (`2026-11-23T11:00:30Z`,
//! Anthropic's reset headers), HTTP-dates (`Retry-After: Sun, 06 Nov 1994
//! 08:49:37 GMT`, in all three forms RFC 9110 says a recipient must accept),
//! Unix times, and a date written in a message ("You will regain access on
//! 2026-12-01 at 00:00 UTC"). The calendar arithmetic is `jiff`'s.

use std::time::SystemTime;

use jiff::civil::{Date, Time};
use jiff::fmt::{rfc2822, strtime};
use jiff::tz::Offset;
use jiff::Timestamp;

static RFC2822: rfc2822::DateTimeParser = rfc2822::DateTimeParser::new();

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
    let trimmed = text.trim();
    rfc3339_shape(trimmed)
        .then(|| trimmed.parse::<Timestamp>().ok())
        .flatten()
        .and_then(system)
        .ok_or_else(|| TimestampError {
            text: text.to_owned(),
        })
}

/// jiff reads all of ISO 8601 and RFC 9557 (`20261123T110030Z`, `+0100`,
/// `T11:00Z`); RFC 3339 is the strict profile: extended date, time with
/// seconds, and an offset of `Z` or `±HH:MM`.
fn rfc3339_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let length = bytes.len();
    let offset = match bytes.last() {
        Some(b'Z' | b'z') => true,
        _ => length >= 6 && matches!(bytes[length - 6], b'+' | b'-') && bytes[length - 3] == b':',
    };
    length >= 20
        && offset
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':'
}

/// Parses an HTTP-date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) or asctime
/// (`Sun Nov  6 08:49:37 1994`). `None` for anything else.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let civil = match words.as_slice() {
        [date @ .., "GMT" | "UTC"] if date.len() == 5 => {
            // IMF-fixdate through jiff's RFC 2822 parser (faster than
            // strptime), which also checks the weekday against the date.
            let text = format!("{} GMT", date.join(" "));
            return system(RFC2822.parse_timestamp(&text).ok()?);
        }
        [date @ .., "GMT" | "UTC"] => strtime::parse("%A, %d-%b-%y %H:%M:%S", date.join(" ")),
        _ => strtime::parse("%a %b %d %H:%M:%S %Y", words.join(" ")),
    };
    system(
        Offset::UTC
            .to_timestamp(civil.ok()?.to_datetime().ok()?)
            .ok()?,
    )
}

/// The moment a message states as a date (`2026-12-01`), an optional time of
/// day (`00:00`, `23:59:59`) and an optional offset (`+08:00`, `+0800`, `UTC`);
/// a missing time is midnight and a missing offset UTC.
pub fn parse_stated_moment(
    date: &str,
    time: Option<&str>,
    offset: Option<&str>,
) -> Option<SystemTime> {
    let date: Date = date.parse().ok()?;
    let time: Time = time.map_or(Ok(Time::midnight()), str::parse).ok()?;
    let offset = match offset.map(str::trim) {
        None => Offset::UTC,
        Some(zone) if ["utc", "gmt", "z"].contains(&zone.to_ascii_lowercase().as_str()) => {
            Offset::UTC
        }
        Some(zone) => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            let hours: i32 = digits[..2].parse().ok()?;
            let minutes: i32 = digits[2..].parse().ok()?;
            Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()?
        }
    };
    system(offset.to_timestamp(date.to_datetime(time)).ok()?)
}

/// Seconds from `now` until `moment`, never negative: a moment already past
/// means "now".
pub fn seconds_until(moment: SystemTime, now: SystemTime) -> f64 {
    moment
        .duration_since(now)
        .map(|duration| duration.as_secs_f64())
        .unwrap_or(0.0)
}

/// The moment `seconds` (possibly negative) and `nanos` after the Unix
/// epoch; `None` outside the years -9999 to 9999 or for `nanos` of a second
/// or more.
pub fn from_unix(seconds: i64, nanos: u32) -> Option<SystemTime> {
    let nanos = i32::try_from(nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)?;
    Timestamp::new(seconds, nanos).ok().and_then(system)
}

/// Writes an optional moment as RFC 3339 text (`2026-12-01T00:00:00Z`).
pub(super) fn serialize_moment<S: serde::Serializer>(
    moment: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match moment.and_then(|moment| Timestamp::try_from(moment).ok()) {
        Some(moment) => serializer.collect_str(&moment),
        None => serializer.serialize_none(),
    }
}

/// A jiff timestamp as the standard library's time type.
fn system(moment: Timestamp) -> Option<SystemTime> {
    SystemTime::try_from(moment).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

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
        // jiff alone takes these ISO 8601 forms; the shape check keeps RFC 3339.
        for text in [
            "2026-11-23T11:00:30+0100",
            "20261123T110030Z",
            "2026-11-23T11:00Z",
        ] {
            assert!(text.parse::<Timestamp>().is_ok(), "{text:?}");
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
    fn http_dates_must_be_consistent_and_in_gmt() {
        // 1994-11-06 was a Sunday; any other weekday is a corrupt date.
        assert_eq!(parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994 GMT"), None);
        assert_eq!(parse_http_date(""), None);
        assert_eq!(
            parse_http_date("Mon, 23 Nov 2026 11:00:30 UTC"),
            from_unix(1_795_431_630, 0)
        );
    }

    #[test]
    fn stated_moments() {
        let midnight = from_unix(1_796_083_200, 0); // 2026-12-01T00:00:00Z
        assert_eq!(
            parse_stated_moment("2026-12-01", Some("00:00"), Some("UTC")),
            midnight
        );
        assert_eq!(parse_stated_moment("2026-12-01", None, None), midnight);
        assert_eq!(
            parse_stated_moment("2026-12-01", Some("08:00:00"), Some("+0800")),
            midnight
        );
        assert_eq!(
            parse_stated_moment("2026-11-30", Some("19:00"), Some("-05:00")),
            midnight
        );
        assert_eq!(parse_stated_moment("2026-02-30", None, None), None);
        assert_eq!(parse_stated_moment("2026-12-01", Some("25:00"), None), None);
        assert_eq!(parse_stated_moment("2026-12-01", None, Some("+8")), None);
    }

    #[test]
    fn unix_times_in_range() {
        assert_eq!(from_unix(0, 0), Some(UNIX_EPOCH));
        assert_eq!(
            from_unix(-1, 0),
            UNIX_EPOCH.checked_sub(std::time::Duration::from_secs(1))
        );
        assert_eq!(from_unix(i64::MAX, 0), None);
        assert_eq!(from_unix(0, 1_000_000_000), None);
    }

    #[test]
    fn time_zones_work_without_a_system_database() {
        // The `tzdb-bundle-always` feature compiles a copy in; a machine
        // without /usr/share/zoneinfo falls back to it.
        let pacific = jiff::tz::TimeZoneDatabase::bundled()
            .get("America/Los_Angeles")
            .expect("bundled tz database");
        let midnight = Date::constant(2026, 12, 1).to_datetime(Time::midnight());
        let offset = pacific.to_offset(Offset::UTC.to_timestamp(midnight).unwrap());
        assert_eq!(offset.seconds(), -8 * 3600);
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
