//! The limits a profile may hold beyond Python specsmith's RPM and TPM:
//! requests and tokens per day, and input and output tokens per minute.
//!
//! Python specsmith 0.11.7 refuses a profile with a field it does not know,
//! so these never enter `model-rate-limits.json`: they live in the companion
//! file `model-rate-limits-extended.json` beside it ([`COMPANION_FILE`]),
//! one entry per profile that sets any of them, joined to its profile by
//! provider and model. A project that sets none has no companion file and a
//! profile file exactly as before.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The companion file's name, beside `model-rate-limits.json`.
pub const COMPANION_FILE: &str = "model-rate-limits-extended.json";

/// A day in milliseconds: the span of a rolling daily window.
pub const DAY_MILLIS: u64 = 24 * 60 * 60 * 1000;

/// Why a daily reset text is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DailyResetError {
    /// Not `rolling` nor `HH:MM`.
    #[error("daily reset `{0}` is not `rolling` nor a time of day `HH:MM` (00:00 to 23:59)")]
    Time(String),
    /// A time zone the time-zone database does not know.
    #[error("time zone `{0}` is unknown (an IANA name such as `America/Los_Angeles` or `UTC`)")]
    Zone(String),
}

/// When a daily budget frees what it counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DailyReset {
    /// Each request counts for the 24 hours after its admission. Never admits
    /// more than a fixed daily window would, whatever its reset time, so it
    /// is the default when the provider's reset time is not known.
    #[default]
    Rolling,
    /// Everything counted frees at a time of day in a time zone (Gemini:
    /// midnight, `America/Los_Angeles`).
    At {
        /// Minutes after midnight, 0 to 1439.
        minute_of_day: u16,
        /// The IANA time-zone name, as given.
        zone: String,
    },
}

impl DailyReset {
    /// A fixed reset at `time` (`HH:MM`) in `zone` (an IANA name).
    pub fn at(time: &str, zone: &str) -> Result<Self, DailyResetError> {
        let invalid = || DailyResetError::Time(time.to_owned());
        let (hours, minutes) = time.trim().split_once(':').ok_or_else(invalid)?;
        let two_digits = |text: &str| text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(hours) || !two_digits(minutes) {
            return Err(invalid());
        }
        let (hours, minutes): (u16, u16) = (
            hours.parse().map_err(|_| invalid())?,
            minutes.parse().map_err(|_| invalid())?,
        );
        if hours > 23 || minutes > 59 {
            return Err(invalid());
        }
        let zone = zone.trim();
        TimeZone::get(zone).map_err(|_| DailyResetError::Zone(zone.to_owned()))?;
        Ok(Self::At {
            minute_of_day: hours * 60 + minutes,
            zone: zone.to_owned(),
        })
    }

    /// The start and end (Unix-epoch milliseconds, end exclusive) of the
    /// fixed daily period holding `now`; `None` for a rolling window. A day
    /// with a clock change is 23 or 25 hours long; a reset time that does not
    /// exist that day (inside a spring-forward gap) is taken just after it.
    pub fn period(&self, now: u64) -> Option<(u64, u64)> {
        let DailyReset::At {
            minute_of_day,
            zone,
        } = self
        else {
            return None;
        };
        // Checked on parse; a zone gone from the database since then falls
        // back to UTC rather than failing every acquire.
        let zone = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
        let instant = Timestamp::from_millisecond(i64::try_from(now).ok()?).ok()?;
        let today = instant.to_zoned_datetime(zone.clone()).date();
        let reset_on = |date: Date| -> Option<u64> {
            let hour = i8::try_from(minute_of_day / 60).ok()?;
            let minute = i8::try_from(minute_of_day % 60).ok()?;
            let zoned = date
                .at(hour, minute, 0, 0)
                .to_zoned_datetime(zone.clone())
                .ok()?;
            u64::try_from(zoned.timestamp().as_millisecond()).ok()
        };
        let todays = reset_on(today)?;
        if todays <= now {
            Some((todays, reset_on(today.tomorrow().ok()?)?))
        } else {
            Some((reset_on(today.yesterday().ok()?)?, todays))
        }
    }
}

impl fmt::Display for DailyReset {
    /// `rolling`, or `HH:MM ZONE`, as the companion file holds it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DailyReset::Rolling => f.write_str("rolling"),
            DailyReset::At {
                minute_of_day,
                zone,
            } => write!(
                f,
                "{:02}:{:02} {zone}",
                minute_of_day / 60,
                minute_of_day % 60
            ),
        }
    }
}

impl std::str::FromStr for DailyReset {
    type Err = DailyResetError;

    /// `rolling`, `HH:MM` (UTC) or `HH:MM ZONE`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("rolling") {
            return Ok(DailyReset::Rolling);
        }
        match text.split_once(char::is_whitespace) {
            Some((time, zone)) => DailyReset::at(time, zone),
            None => DailyReset::at(text, "UTC"),
        }
    }
}

/// The limits beyond RPM and TPM, each optional (`None`: not limited).
/// Counts are per minute or per day, as named; zero is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedLimits {
    /// Requests per day.
    pub rpd: Option<u64>,
    /// Tokens (input and output) per day.
    pub tpd: Option<u64>,
    /// Input tokens per minute (Anthropic's ITPM). Counts the input tokens
    /// recorded; for Anthropic record uncached input (`input_tokens` and
    /// cache writes), since cache reads do not count toward its ITPM.
    pub itpm: Option<u64>,
    /// Output tokens per minute (Anthropic's OTPM).
    pub otpm: Option<u64>,
    /// When the daily budgets free what they counted.
    pub daily_reset: DailyReset,
}

impl ExtendedLimits {
    /// True when no limit is set (the daily reset alone does not count).
    pub fn is_empty(&self) -> bool {
        self.rpd.is_none() && self.tpd.is_none() && self.itpm.is_none() && self.otpm.is_none()
    }

    /// True when a per-day budget is set.
    pub fn has_daily(&self) -> bool {
        self.rpd.is_some() || self.tpd.is_some()
    }

    /// True when an input or output per-minute budget is set.
    pub fn has_split(&self) -> bool {
        self.itpm.is_some() || self.otpm.is_some()
    }
}

/// One entry of the companion file, exactly as it holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanionEntry {
    /// Provider, as in the profile file.
    pub provider: String,
    /// Model, as in the profile file.
    pub model: String,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd_limit: Option<u64>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd_limit: Option<u64>,
    /// Input tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itpm_limit: Option<u64>,
    /// Output tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otpm_limit: Option<u64>,
    /// `rolling` or `HH:MM ZONE`; rolling when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_reset: Option<String>,
}

/// Why a companion entry is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompanionError {
    /// A limit of 0 (leave the field out instead).
    #[error("profile `{label}`: {field} must be greater than 0, got 0 (leave the field out for no limit)")]
    Zero {
        /// `provider/model`.
        label: String,
        /// The field's name.
        field: &'static str,
    },
    /// A daily reset that does not parse.
    #[error("profile `{label}`: {source}")]
    DailyReset {
        /// `provider/model`.
        label: String,
        /// What is wrong with it.
        #[source]
        source: DailyResetError,
    },
}

impl CompanionEntry {
    /// The entry for `provider` / `model` holding `limits`.
    pub fn new(provider: &str, model: &str, limits: &ExtendedLimits) -> Self {
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            rpd_limit: limits.rpd,
            tpd_limit: limits.tpd,
            itpm_limit: limits.itpm,
            otpm_limit: limits.otpm,
            daily_reset: (limits.daily_reset != DailyReset::Rolling || limits.has_daily())
                .then(|| limits.daily_reset.to_string()),
        }
    }

    /// The limits the entry holds, checked.
    pub fn limits(&self) -> Result<ExtendedLimits, CompanionError> {
        let label = format!("{}/{}", self.provider.trim(), self.model.trim());
        let positive = |field: &'static str, value: Option<u64>| match value {
            Some(0) => Err(CompanionError::Zero {
                label: label.clone(),
                field,
            }),
            other => Ok(other),
        };
        let daily_reset = match &self.daily_reset {
            Some(text) => text.parse().map_err(|source| CompanionError::DailyReset {
                label: label.clone(),
                source,
            })?,
            None => DailyReset::Rolling,
        };
        Ok(ExtendedLimits {
            rpd: positive("rpd_limit", self.rpd_limit)?,
            tpd: positive("tpd_limit", self.tpd_limit)?,
            itpm: positive("itpm_limit", self.itpm_limit)?,
            otpm: positive("otpm_limit", self.otpm_limit)?,
            daily_reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> u64 {
        text.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    #[test]
    fn a_pacific_midnight_reset_follows_daylight_saving_time() {
        let reset: DailyReset = "00:00 America/Los_Angeles".parse().unwrap();
        // Summer: Pacific midnight is 07:00 UTC.
        let (start, end) = reset.period(millis("2026-07-15T12:00:00Z")).unwrap();
        assert_eq!(start, millis("2026-07-15T07:00:00Z"));
        assert_eq!(end, millis("2026-07-16T07:00:00Z"));
        // Winter: 08:00 UTC; just before it the period is the day before's.
        let (start, end) = reset.period(millis("2026-12-02T07:59:59Z")).unwrap();
        assert_eq!(start, millis("2026-12-01T08:00:00Z"));
        assert_eq!(end, millis("2026-12-02T08:00:00Z"));
        // The day clocks go back (1 November 2026) lasts 25 hours.
        let (start, end) = reset.period(millis("2026-11-01T12:00:00Z")).unwrap();
        assert_eq!(end - start, 25 * 60 * 60 * 1000);
        // At the reset instant the new period begins.
        let (start, _) = reset.period(millis("2026-12-02T08:00:00Z")).unwrap();
        assert_eq!(start, millis("2026-12-02T08:00:00Z"));
    }

    #[test]
    fn reset_texts_parse_and_print_back() {
        assert_eq!("rolling".parse::<DailyReset>(), Ok(DailyReset::Rolling));
        let utc: DailyReset = "09:30".parse().unwrap();
        assert_eq!(utc.to_string(), "09:30 UTC");
        let (start, _) = utc.period(millis("2026-12-02T10:00:00Z")).unwrap();
        assert_eq!(start, millis("2026-12-02T09:30:00Z"));
        for bad in ["24:00", "9:30", "09:60", "noon", "09:30 Mars/Olympus"] {
            assert!(bad.parse::<DailyReset>().is_err(), "{bad}");
        }
        assert_eq!(
            "09:30 Mars/Olympus".parse::<DailyReset>().unwrap_err().to_string(),
            "time zone `Mars/Olympus` is unknown (an IANA name such as `America/Los_Angeles` or `UTC`)"
        );
        assert_eq!(DailyReset::Rolling.period(5), None);
    }

    #[test]
    fn companion_entries_round_trip_and_refuse_zero_or_unknown_fields() {
        let limits = ExtendedLimits {
            rpd: Some(100),
            itpm: Some(30_000),
            daily_reset: "00:00 America/Los_Angeles".parse().unwrap(),
            ..ExtendedLimits::default()
        };
        let entry = CompanionEntry::new("google", "gemini-2.5-pro", &limits);
        let text = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            text,
            r#"{"provider":"google","model":"gemini-2.5-pro","rpd_limit":100,"itpm_limit":30000,"daily_reset":"00:00 America/Los_Angeles"}"#
        );
        let back: CompanionEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(back.limits().unwrap(), limits);
        let zero: CompanionEntry =
            serde_json::from_str(r#"{"provider":"p","model":"m","otpm_limit":0}"#).unwrap();
        assert_eq!(
            zero.limits().unwrap_err().to_string(),
            "profile `p/m`: otpm_limit must be greater than 0, got 0 (leave the field out for no limit)"
        );
        assert!(serde_json::from_str::<CompanionEntry>(
            r#"{"provider":"p","model":"m","rpm_limit":1}"#
        )
        .is_err());
    }
}
