//! Flag value parsers: each refuses a bad value with the rule and the range,
//! so a usage error says what would have been accepted.
//!
//! Flags that take numbers are declared with `allow_negative_numbers` (or
//! `allow_hyphen_values` where `-inf` must reach the parser), so `-1` is read
//! as a value and refused by its rule rather than taken for an unknown flag.

use std::time::Duration;

use crate::rate_limits::profile;
use crate::rate_limits::window::MAX_COUNT;

/// The longest duration any seconds flag accepts: 365 days.
pub const MAX_SECONDS: u64 = 365 * 24 * 60 * 60;
/// The shortest lease: a reservation must outlive the call it admits, and a
/// lease that rounds to 0 ms would be reclaimed by the next acquire.
pub const MIN_LEASE_SECONDS: u64 = 1;
/// The largest requests- or tokens-per-minute limit a profile file holds.
pub const MAX_LIMIT: u64 = i64::MAX as u64;

/// `--provider` / `--model`: trimmed, lower-cased, not empty, no control
/// characters, and never able to share a `provider::model` key with another pair.
pub fn parse_name(value: &str) -> Result<String, String> {
    match profile::check_name("name", value) {
        Ok(name) => Ok(name),
        Err(profile::ProfileError::ControlCharacter { code, .. }) => Err(format!(
            "must not contain control characters (found U+{code:04X})"
        )),
        Err(profile::ProfileError::Separator { .. }) => {
            Err(profile::NAME_SEPARATOR_RULE.to_owned())
        }
        Err(_) => Err("must not be empty".to_owned()),
    }
}

/// `--bucket`: a concurrency bucket name, trimmed and lower-cased, not
/// empty, no control characters (whether the profile has it is checked
/// against the profile, which the parser cannot see).
pub fn parse_bucket(value: &str) -> Result<String, String> {
    let bucket = crate::rate_limits::scheduler::normalize_bucket(value);
    if bucket.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if bucket.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(bucket)
}

/// A reservation id as `acquire` printed it: not empty, no control characters
/// (an id is echoed in messages).
pub fn parse_reservation_id(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(value.to_owned())
}

/// A whole number in `min..=max`, refused with the range.
fn whole_in(value: &str, min: u64, max: u64, what: &str) -> Result<u64, String> {
    let rule = || format!("must be {what} from {min} to {max}");
    let text = value.trim();
    // Parsed wide, so `-1` and `18446744073709551616` are out of range, not "not a number".
    let number: i128 = text.parse().map_err(|_| rule())?;
    if number < i128::from(min) || number > i128::from(max) {
        return Err(rule());
    }
    Ok(number as u64)
}

/// Token counts (`--input-tokens`, `--max-output-tokens`, `--output-tokens`):
/// what the state can hold exactly, 0 to 2^53 − 1.
pub fn parse_tokens(value: &str) -> Result<u64, String> {
    whole_in(value, 0, MAX_COUNT, "a whole number")
}

/// `--rpm`, `--tpm`: what a profile file can hold.
pub fn parse_limit(value: &str) -> Result<u64, String> {
    whole_in(value, 1, MAX_LIMIT, "a whole number")
}

/// `--rpd`, `--tpd`, `--itpm`, `--otpm`: a limit, or 0 to remove it.
pub fn parse_optional_limit(value: &str) -> Result<u64, String> {
    whole_in(value, 0, MAX_LIMIT, "a whole number (0 removes the limit)")
}

/// `--daily-reset`: `rolling`, or a time of day `HH:MM`.
pub fn parse_daily_reset(value: &str) -> Result<String, String> {
    let text = value.trim();
    if text.eq_ignore_ascii_case("rolling") {
        return Ok("rolling".to_owned());
    }
    crate::rate_limits::extended::DailyReset::at(text, "UTC")
        .map(|_| text.to_owned())
        .map_err(|_| "must be `rolling` or a time of day HH:MM, from 00:00 to 23:59".to_owned())
}

/// `--daily-reset-zone`: an IANA time-zone name.
pub fn parse_zone(value: &str) -> Result<String, String> {
    let text = value.trim();
    crate::rate_limits::extended::DailyReset::at("00:00", text)
        .map(|_| text.to_owned())
        .map_err(|_| {
            "must be an IANA time-zone name such as `America/Los_Angeles` or `UTC`".to_owned()
        })
}

/// `--concurrency`.
pub fn parse_concurrency(value: &str) -> Result<u32, String> {
    whole_in(value, 1, u64::from(u32::MAX), "a whole number").map(|number| number as u32)
}

/// `--attempt`: which attempt, from 1.
pub fn parse_attempt(value: &str) -> Result<u32, String> {
    whole_in(value, 1, u64::from(u32::MAX), "a whole number").map(|number| number as u32)
}

/// `--max-attempts`: from 1 to `limit`.
pub fn parse_attempts_up_to(value: &str, limit: u32) -> Result<u32, String> {
    whole_in(value, 1, u64::from(limit), "a whole number").map(|number| number as u32)
}

/// `--status`: an HTTP status code.
pub fn parse_status(value: &str) -> Result<u16, String> {
    whole_in(value, 100, 999, "an HTTP status").map(|number| number as u16)
}

/// `--owner-pid`: a process id.
pub fn parse_pid(value: &str) -> Result<u32, String> {
    whole_in(value, 1, i32::MAX as u64, "a process id").map(|number| number as u32)
}

/// A number of seconds in `min..=MAX_SECONDS`, fractions allowed.
fn seconds_from(value: &str, min: u64) -> Result<Duration, String> {
    let rule = || {
        format!(
            "must be a number of seconds from {min} to {MAX_SECONDS} (365 days), fractions allowed"
        )
    };
    let text = value.trim();
    let seconds: f64 = text.parse().map_err(|_| rule())?;
    // `-0` parses as negative zero: a sign the user typed, refused like any negative.
    if seconds.is_nan() || seconds.is_sign_negative() || text.starts_with('-') {
        return Err(rule());
    }
    if seconds < min as f64 || seconds > MAX_SECONDS as f64 {
        return Err(rule());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| rule())
}

/// `--timeout`, `--deadline`, `--max-delay`: 0 or more seconds.
pub fn parse_seconds(value: &str) -> Result<Duration, String> {
    seconds_from(value, 0)
}

/// `status --watch --interval`: 0.1 to 3600 seconds between redraws.
pub fn parse_interval(value: &str) -> Result<Duration, String> {
    let rule = || "must be a number of seconds from 0.1 to 3600".to_owned();
    let seconds: f64 = value.trim().parse().map_err(|_| rule())?;
    if !(0.1..=3600.0).contains(&seconds) {
        return Err(rule());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `--lease`: at least [`MIN_LEASE_SECONDS`].
pub fn parse_lease(value: &str) -> Result<Duration, String> {
    seconds_from(value, MIN_LEASE_SECONDS)
}

/// `--target`: a number in (0, 1].
pub fn parse_target(value: &str) -> Result<f64, String> {
    let rule = || "must be a number greater than 0 and at most 1".to_owned();
    let number: f64 = value.trim().parse().map_err(|_| rule())?;
    profile::check_target(number).map_err(|_| rule())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_say_their_range_for_every_bad_value() {
        for bad in [
            "-1",
            "9007199254740992",
            "18446744073709551615",
            "1.5",
            "x",
            "",
        ] {
            assert_eq!(
                parse_tokens(bad).unwrap_err(),
                "must be a whole number from 0 to 9007199254740991",
                "{bad}"
            );
        }
        assert_eq!(parse_tokens("9007199254740991"), Ok(MAX_COUNT));
        assert_eq!(
            parse_limit("18446744073709551615").unwrap_err(),
            "must be a whole number from 1 to 9223372036854775807"
        );
        assert_eq!(parse_limit("9223372036854775807"), Ok(MAX_LIMIT));
        assert!(parse_limit("0").is_err());
        assert_eq!(
            parse_status("1000").unwrap_err(),
            "must be an HTTP status from 100 to 999"
        );
        assert!(parse_status("-1").is_err());
        assert_eq!(parse_status("429"), Ok(429));
        assert_eq!(parse_attempts_up_to("100", 100), Ok(100));
        assert!(parse_attempts_up_to("101", 100).is_err());
        assert!(parse_pid("0").is_err());
    }

    #[test]
    fn seconds_refuse_negatives_and_say_the_range() {
        let rule = "must be a number of seconds from 0 to 31536000 (365 days), fractions allowed";
        for bad in ["-1", "-0", "-0.0", "1e20", "nan", "inf", "-inf", "soon"] {
            assert_eq!(parse_seconds(bad).unwrap_err(), rule, "{bad}");
        }
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(
            parse_seconds("31536000"),
            Ok(Duration::from_secs(MAX_SECONDS))
        );
    }

    #[test]
    fn a_lease_is_at_least_one_second() {
        for bad in ["0.0001", "0", "0.999"] {
            assert!(
                parse_lease(bad).unwrap_err().contains("from 1 to 31536000"),
                "{bad}"
            );
        }
        assert_eq!(parse_lease("1"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn names_refuse_control_characters() {
        assert_eq!(parse_name(" OpenAI "), Ok("openai".to_owned()));
        assert_eq!(
            parse_name("a\nb").unwrap_err(),
            "must not contain control characters (found U+000A)"
        );
        assert!(parse_name("a\u{1b}]0;x").is_err());
        assert!(parse_name("   ").is_err());
        assert!(parse_reservation_id("rsv-1\u{1b}").is_err());
    }

    #[test]
    fn targets_refuse_infinities() {
        for bad in ["-inf", "inf", "0", "1.01", "nan"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_target("0.7"), Ok(0.7));
    }
}
