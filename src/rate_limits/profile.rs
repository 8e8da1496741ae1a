//! One provider/model rate-limit profile, with the rules every profile obeys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::extended::ExtendedLimits;

/// The utilization target a profile gets when none is given.
pub const DEFAULT_UTILIZATION_TARGET: f64 = 0.7;
/// The concurrency cap a profile gets when none is given.
pub const DEFAULT_CONCURRENCY_CAP: u32 = 1;
/// The wildcard that matches any provider or any model.
pub const WILDCARD: &str = "*";
/// What joins provider and model in a `provider::model` key; a name may not
/// contain it, nor begin or end with `:`, so no two pairs share a key.
pub const KEY_SEPARATOR: &str = "::";

/// Why a profile (from a flag or a file) is not acceptable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// Provider was empty after trimming.
    #[error("provider must not be empty")]
    EmptyProvider,
    /// Model was empty after trimming.
    #[error("model must not be empty")]
    EmptyModel,
    /// A provider or model name holds a control character (a newline or an
    /// escape would reach the terminal in every table and message).
    #[error("{field} must not contain control characters (found U+{code:04X})")]
    ControlCharacter {
        /// `provider` or `model`.
        field: &'static str,
        /// The first control character found.
        code: u32,
    },
    /// A name holds the key separator `::` or begins or ends with `:`, so its
    /// `provider::model` key could equal another pair's.
    #[error("{field} `{name}` {NAME_SEPARATOR_RULE}")]
    Separator {
        /// `provider` or `model`.
        field: &'static str,
        /// The name given, trimmed and lower-cased.
        name: String,
    },
    /// A requests or tokens per minute limit was zero or negative.
    #[error("{field} must be greater than 0, got {value}")]
    NotPositive {
        /// The field's name in the file (`rpm_limit`, `tpm_limit`, `concurrency_cap`).
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// The utilization target was outside (0, 1].
    #[error("utilization_target must be greater than 0 and at most 1, got {0}")]
    Target(f64),
    /// A field of the later Python releases holds a value of the wrong shape.
    #[error("{field} {rule}, got {value}")]
    Field {
        /// The field's name in the file (`tpm_thinking_budget`, `concurrency_by_bucket`).
        field: &'static str,
        /// What the field must hold.
        rule: &'static str,
        /// The value found, as JSON.
        value: String,
    },
}

/// The field of later Python releases holding thinking tokens added to
/// every request's estimate.
pub const THINKING_BUDGET_FIELD: &str = "tpm_thinking_budget";
/// The field of later Python releases holding per-bucket concurrency caps.
pub const BUCKETS_FIELD: &str = "concurrency_by_bucket";

/// Checks the fields of later Python releases that this version honours:
/// `tpm_thinking_budget` a whole number of tokens (0 to 2^53 − 1),
/// `concurrency_by_bucket` an object of bucket names to caps of at least 1.
fn check_later_fields(extra: &Map<String, Value>) -> Result<(), ProfileError> {
    if let Some(value) = extra.get(THINKING_BUDGET_FIELD) {
        if value
            .as_u64()
            .is_none_or(|tokens| tokens > super::window::MAX_COUNT)
        {
            return Err(ProfileError::Field {
                field: THINKING_BUDGET_FIELD,
                rule: "must be a whole number of tokens from 0 to 9007199254740991",
                value: value.to_string(),
            });
        }
    }
    if let Some(value) = extra.get(BUCKETS_FIELD) {
        let rule = "must map bucket names to concurrency caps from 1 to 4294967295";
        let bad = || ProfileError::Field {
            field: BUCKETS_FIELD,
            rule,
            value: value.to_string(),
        };
        let buckets = value.as_object().ok_or_else(bad)?;
        for (name, cap) in buckets {
            let fits = cap
                .as_u64()
                .is_some_and(|cap| cap >= 1 && cap <= u64::from(u32::MAX));
            if name.trim().is_empty() || name.chars().any(char::is_control) || !fits {
                return Err(bad());
            }
        }
    }
    Ok(())
}

/// Limits for one provider/model path (either part may be the wildcard `*`).
///
/// Provider and model are stored trimmed and lower-cased. Fields of later
/// Python releases (`concurrency_by_bucket`, `tpm_thinking_budget`, read by
/// [`Profile::concurrency_by_bucket`] and [`Profile::tpm_thinking_budget`])
/// and fields this version does not use are kept in [`Profile::extra`] and
/// written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ProfileRecord", into = "ProfileRecord")]
pub struct Profile {
    provider: String,
    model: String,
    rpm_limit: u64,
    tpm_limit: u64,
    utilization_target: f64,
    concurrency_cap: u32,
    /// The `source` value recorded in the file, as Python specsmith writes it
    /// (`default`, `override`, `local`).
    pub source: String,
    /// Fields this version does not interpret, kept for round trips.
    pub extra: Map<String, Value>,
    /// Limits beyond RPM and TPM; kept in the companion file, never in the
    /// profile file Python specsmith reads ([`super::extended`]).
    extended: ExtendedLimits,
}

impl Profile {
    /// A validated profile. `rpm_limit` and `tpm_limit` are per minute;
    /// `utilization_target` is the share of them to budget for, in (0, 1].
    pub fn new(
        provider: &str,
        model: &str,
        rpm_limit: u64,
        tpm_limit: u64,
        utilization_target: f64,
        concurrency_cap: u32,
    ) -> Result<Self, ProfileError> {
        let provider = check_name("provider", provider)?;
        let model = check_name("model", model)?;
        check_positive("rpm_limit", rpm_limit.try_into().unwrap_or(i64::MAX))?;
        check_positive("tpm_limit", tpm_limit.try_into().unwrap_or(i64::MAX))?;
        check_target(utilization_target)?;
        check_positive("concurrency_cap", i64::from(concurrency_cap))?;
        Ok(Self {
            provider,
            model,
            rpm_limit,
            tpm_limit,
            utilization_target,
            concurrency_cap,
            source: "local".to_owned(),
            extra: Map::new(),
            extended: ExtendedLimits::default(),
        })
    }

    /// Sets the limits beyond RPM and TPM.
    pub fn with_extended(mut self, extended: ExtendedLimits) -> Self {
        self.extended = extended;
        self
    }

    /// The limits beyond RPM and TPM (per day, input and output per minute).
    pub fn extended(&self) -> &ExtendedLimits {
        &self.extended
    }

    /// Sets the `source` value written to the file.
    pub fn with_source(mut self, source: &str) -> Self {
        self.source = source.to_owned();
        self
    }

    /// Provider, trimmed and lower-cased.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Model, trimmed and lower-cased.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The provider's requests-per-minute limit.
    pub fn rpm_limit(&self) -> u64 {
        self.rpm_limit
    }

    /// The provider's tokens-per-minute limit.
    pub fn tpm_limit(&self) -> u64 {
        self.tpm_limit
    }

    /// The share of each limit to budget for, in (0, 1].
    pub fn utilization_target(&self) -> f64 {
        self.utilization_target
    }

    /// How many requests may be in flight at once.
    pub fn concurrency_cap(&self) -> u32 {
        self.concurrency_cap
    }

    /// `provider::model`, the key profiles are stored and looked up by.
    pub fn key(&self) -> String {
        profile_key(&self.provider, &self.model)
    }

    /// `provider/model`, as shown to people.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }

    /// Requests per minute to budget for: max(1, floor(rpm_limit × target)).
    pub fn effective_rpm_limit(&self) -> u64 {
        effective_limit(self.rpm_limit, self.utilization_target)
    }

    /// Tokens per minute to budget for: max(1, floor(tpm_limit × target)).
    pub fn effective_tpm_limit(&self) -> u64 {
        effective_limit(self.tpm_limit, self.utilization_target)
    }

    /// Thinking tokens a reasoning model may spend beyond its visible output
    /// (`tpm_thinking_budget`, a field of later Python releases): added to
    /// every request's estimate. 0 when the profile has none.
    pub fn tpm_thinking_budget(&self) -> u64 {
        self.extra
            .get(THINKING_BUDGET_FIELD)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// The concurrency cap of each bucket of this model
    /// (`concurrency_by_bucket`, a field of later Python releases), by
    /// bucket name as written; empty when the profile has none.
    pub fn concurrency_by_bucket(&self) -> BTreeMap<String, u32> {
        self.extra
            .get(BUCKETS_FIELD)
            .and_then(Value::as_object)
            .map(|buckets| {
                buckets
                    .iter()
                    .filter_map(|(name, cap)| {
                        let cap = u32::try_from(cap.as_u64()?).ok()?;
                        (cap >= 1).then(|| (name.clone(), cap))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Any `limit` at this profile's utilization target: max(1, floor(limit × target)).
    pub fn effective_for(&self, limit: u64) -> u64 {
        effective_limit(limit, self.utilization_target)
    }
}

/// `limit` × `target`, floored, at least 1 and never above `limit`: the budget
/// a profile paces with for a provider limit (per minute or per day).
pub fn effective_limit(limit: u64, target: f64) -> u64 {
    let product = (limit as f64) * target;
    // Targets are decimals that binary floating point cannot hold exactly:
    // 90,000 × 0.7 comes out as 62,999.999…, which a bare floor (Python
    // specsmith's) turns into 62,999. A product within a few ulps of a whole
    // number is that whole number.
    let nearest = product.round();
    let tolerance = nearest.abs().max(1.0) * 8.0 * f64::EPSILON;
    let floored = if (product - nearest).abs() <= tolerance {
        nearest
    } else {
        product.floor()
    };
    // Above 2^53 the product is rounded, possibly up past the limit itself
    // (9,223,372,036,854,775,807 × 1 becomes 2^63): the budget never exceeds the limit.
    (floored.max(1.0) as u64).min(limit)
}

/// Refuses a name holding a control character.
fn check_no_control(field: &'static str, name: &str) -> Result<(), ProfileError> {
    match name.chars().find(|c| c.is_control()) {
        Some(control) => Err(ProfileError::ControlCharacter {
            field,
            code: u32::from(control),
        }),
        None => Ok(()),
    }
}

/// Trims and lower-cases a provider or model name; `None` when nothing is
/// left or when the name breaks the separator rule of [`check_name`].
pub fn normalize_name(name: &str) -> Option<String> {
    let name = name.trim();
    (!name.is_empty() && !breaks_separator_rule(name)).then(|| name.to_lowercase())
}

/// The rule a name breaks when it could make two pairs share a key.
pub const NAME_SEPARATOR_RULE: &str =
    "must not contain `::` or begin or end with `:` (`provider::model` keys would collide)";

/// A `provider` or `model` name (`field`), trimmed and lower-cased: not
/// empty, no control character, no `::` inside, no `:` at either end. With that rule the first
/// `::` of a key is always the separator, so `a::b` / `m` and `a` / `b::m`
/// (or `a:` / `b` and `a` / `:b`) can never share one budget.
pub fn check_name(field: &'static str, name: &str) -> Result<String, ProfileError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(if field == "model" {
            ProfileError::EmptyModel
        } else {
            ProfileError::EmptyProvider
        });
    }
    check_no_control(field, trimmed)?;
    if breaks_separator_rule(trimmed) {
        return Err(ProfileError::Separator {
            field,
            name: trimmed.to_lowercase(),
        });
    }
    Ok(trimmed.to_lowercase())
}

fn breaks_separator_rule(name: &str) -> bool {
    name.contains(KEY_SEPARATOR) || name.starts_with(':') || name.ends_with(':')
}

/// The lookup key for a provider and model, normalised. Unique for names
/// that pass [`check_name`].
pub fn profile_key(provider: &str, model: &str) -> String {
    format!(
        "{}{KEY_SEPARATOR}{}",
        provider.trim().to_lowercase(),
        model.trim().to_lowercase()
    )
}

/// Checks that a per-minute limit or cap is greater than zero.
pub fn check_positive(field: &'static str, value: i64) -> Result<u64, ProfileError> {
    if value > 0 {
        Ok(value as u64)
    } else {
        Err(ProfileError::NotPositive { field, value })
    }
}

/// Checks that a utilization target lies in (0, 1].
pub fn check_target(target: f64) -> Result<f64, ProfileError> {
    if target > 0.0 && target <= 1.0 {
        Ok(target)
    } else {
        Err(ProfileError::Target(target))
    }
}

/// The profile exactly as a file holds it.
#[derive(Serialize, Deserialize)]
struct ProfileRecord {
    provider: String,
    model: String,
    rpm_limit: i64,
    tpm_limit: i64,
    #[serde(default = "default_target")]
    utilization_target: f64,
    #[serde(default = "default_concurrency")]
    concurrency_cap: i64,
    #[serde(default = "default_source")]
    source: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn default_target() -> f64 {
    DEFAULT_UTILIZATION_TARGET
}

fn default_concurrency() -> i64 {
    i64::from(DEFAULT_CONCURRENCY_CAP)
}

fn default_source() -> String {
    "local".to_owned()
}

/// A file-level error: which profile, then what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("profile `{label}`: {error}")]
pub struct InvalidProfile {
    label: String,
    #[source]
    error: ProfileError,
}

impl TryFrom<ProfileRecord> for Profile {
    type Error = InvalidProfile;

    fn try_from(record: ProfileRecord) -> Result<Self, Self::Error> {
        // Escaped: the label is echoed in an error message.
        let label = super::secrets::escape_controls(&format!(
            "{}/{}",
            record.provider.trim(),
            record.model.trim()
        ))
        .into_owned();
        let invalid = |error| InvalidProfile {
            label: label.clone(),
            error,
        };
        let concurrency_cap = check_positive("concurrency_cap", record.concurrency_cap)
            .map_err(invalid)?
            .try_into()
            .map_err(|_| {
                invalid(ProfileError::NotPositive {
                    field: "concurrency_cap",
                    value: record.concurrency_cap,
                })
            })?;
        let rpm_limit = check_positive("rpm_limit", record.rpm_limit).map_err(invalid)?;
        let tpm_limit = check_positive("tpm_limit", record.tpm_limit).map_err(invalid)?;
        let mut profile = Profile::new(
            &record.provider,
            &record.model,
            rpm_limit,
            tpm_limit,
            record.utilization_target,
            concurrency_cap,
        )
        .map_err(invalid)?;
        check_later_fields(&record.extra).map_err(invalid)?;
        profile.source = record.source;
        profile.extra = record.extra;
        Ok(profile)
    }
}

impl From<Profile> for ProfileRecord {
    fn from(profile: Profile) -> Self {
        Self {
            provider: profile.provider,
            model: profile.model,
            rpm_limit: profile.rpm_limit as i64,
            tpm_limit: profile.tpm_limit as i64,
            utilization_target: profile.utilization_target,
            concurrency_cap: i64::from(profile.concurrency_cap),
            source: profile.source,
            extra: profile.extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<Profile, String> {
        let text = format!(
            r#"{{"provider": "acme", "model": "m", "rpm_limit": 10, "tpm_limit": 100{extra}}}"#
        );
        serde_json::from_str::<Profile>(&text).map_err(|error| error.to_string())
    }

    #[test]
    fn the_later_fields_are_read_and_checked_but_kept_as_written() {
        let profile = parse(
            r#", "tpm_thinking_budget": 4096, "concurrency_by_bucket": {"reasoning": 1, "background": 3}"#,
        )
        .unwrap();
        assert_eq!(profile.tpm_thinking_budget(), 4_096);
        assert_eq!(
            profile.concurrency_by_bucket(),
            BTreeMap::from([("background".to_owned(), 3), ("reasoning".to_owned(), 1)])
        );
        assert_eq!(
            serde_json::to_value(&profile).unwrap()["concurrency_by_bucket"]["reasoning"],
            1
        );
        let plain = parse("").unwrap();
        assert_eq!(
            (
                plain.tpm_thinking_budget(),
                plain.concurrency_by_bucket().len()
            ),
            (0, 0)
        );
        for (extra, expected) in [
            (r#", "tpm_thinking_budget": -1"#, "tpm_thinking_budget must be a whole number of tokens from 0 to 9007199254740991, got -1"),
            (r#", "tpm_thinking_budget": "4k""#, "tpm_thinking_budget must be a whole number"),
            (r#", "concurrency_by_bucket": [1]"#, "concurrency_by_bucket must map bucket names to concurrency caps"),
            (r#", "concurrency_by_bucket": {"reasoning": 0}"#, "got {\"reasoning\":0}"),
            (r#", "concurrency_by_bucket": {" ": 1}"#, "concurrency_by_bucket must map"),
        ] {
            let error = parse(extra).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
            assert!(error.contains("profile `acme/m`"), "{error}");
        }
    }

    #[test]
    fn names_are_trimmed_and_lower_cased() {
        let profile = Profile::new(" OpenAI ", "GPT-4o\t", 10, 100, 0.7, 1).unwrap();
        assert_eq!(profile.key(), "openai::gpt-4o");
        assert_eq!(profile.label(), "openai/gpt-4o");
    }

    #[test]
    fn effective_limits_floor_and_never_drop_below_one() {
        let profile = Profile::new("p", "m", 3, 1_000_001, 0.5, 1).unwrap();
        assert_eq!(profile.effective_rpm_limit(), 1);
        assert_eq!(profile.effective_tpm_limit(), 500_000);
        let decimal = Profile::new("p", "m", 3_500, 90_000, 0.7, 1).unwrap();
        assert_eq!(decimal.effective_tpm_limit(), 63_000, "not 62,999");
        assert_eq!(decimal.effective_rpm_limit(), 2_450);
        let just_below = Profile::new("p", "m", 10, 19, 0.5, 1).unwrap();
        assert_eq!(just_below.effective_tpm_limit(), 9);
        let tiny = Profile::new("p", "m", 1, 1, 0.1, 1).unwrap();
        assert_eq!(tiny.effective_rpm_limit(), 1);
        assert_eq!(tiny.effective_tpm_limit(), 1);
    }

    #[test]
    fn every_rule_is_enforced() {
        assert_eq!(
            Profile::new(" ", "m", 1, 1, 0.7, 1),
            Err(ProfileError::EmptyProvider)
        );
        assert_eq!(
            Profile::new("p", "", 1, 1, 0.7, 1),
            Err(ProfileError::EmptyModel)
        );
        assert!(matches!(
            Profile::new("p", "m", 0, 1, 0.7, 1),
            Err(ProfileError::NotPositive {
                field: "rpm_limit",
                ..
            })
        ));
        assert!(matches!(
            Profile::new("p", "m", 1, 0, 0.7, 1),
            Err(ProfileError::NotPositive {
                field: "tpm_limit",
                ..
            })
        ));
        assert!(matches!(
            Profile::new("p", "m", 1, 1, 0.7, 0),
            Err(ProfileError::NotPositive {
                field: "concurrency_cap",
                ..
            })
        ));
        for target in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(Profile::new("p", "m", 1, 1, target, 1).is_err(), "{target}");
        }
        assert!(Profile::new("p", "m", 1, 1, 1.0, 1).is_ok());
    }

    #[test]
    fn the_budget_never_exceeds_the_limit() {
        let huge = Profile::new("p", "m", i64::MAX as u64, i64::MAX as u64, 1.0, 1).unwrap();
        assert_eq!(huge.effective_rpm_limit(), i64::MAX as u64);
        assert_eq!(huge.effective_tpm_limit(), i64::MAX as u64);
        let near = Profile::new("p", "m", (1 << 53) + 1, 1, 1.0, 1).unwrap();
        assert!(near.effective_rpm_limit() <= (1 << 53) + 1);
    }

    #[test]
    fn control_characters_in_names_are_refused_and_escaped_in_the_message() {
        assert_eq!(
            Profile::new("a\nb", "m", 1, 1, 0.7, 1),
            Err(ProfileError::ControlCharacter {
                field: "provider",
                code: 0x0a
            })
        );
        assert!(Profile::new("p", "x\u{1b}]0;title\u{7}", 1, 1, 0.7, 1).is_err());
        let text = r#"{"provider":"a\nfake row","model":"m","rpm_limit":1,"tpm_limit":1}"#;
        let error = serde_json::from_str::<Profile>(text)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("profile `a\\nfake row/m`: provider must not contain control characters (found U+000A)"),
            "{error}"
        );
    }

    #[test]
    fn names_that_could_share_a_key_are_refused() {
        // Each pair would have the key of the one beside it.
        for (provider, model, field) in [
            ("a::b", "m", "provider"),
            ("a", "b::m", "model"),
            ("a:", "b", "provider"),
            ("a", ":b", "model"),
            (":a", "b", "provider"),
            ("a", "b:", "model"),
        ] {
            let error = Profile::new(provider, model, 1, 1, 0.7, 1).unwrap_err();
            assert!(
                matches!(&error, ProfileError::Separator { field: f, .. } if *f == field),
                "{provider}/{model}: {error:?}"
            );
            assert!(
                error.to_string().contains("must not contain `::`"),
                "{error}"
            );
        }
        // Single colons inside a name are common (`llama3:8b`, `…-v1:0`).
        let profile = Profile::new("ollama", "llama3:8b", 1, 1, 0.7, 1).unwrap();
        assert_eq!(profile.key(), "ollama::llama3:8b");
        assert_eq!(normalize_name("a::b"), None);
    }

    #[test]
    fn a_file_with_a_colliding_name_is_refused_naming_the_profile() {
        let text = r#"{"provider":"a::b","model":"m","rpm_limit":1,"tpm_limit":5}"#;
        let error = serde_json::from_str::<Profile>(text)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("profile `a::b/m`: provider `a::b` must not contain `::`"),
            "{error}"
        );
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"provider":"openai","model":"gpt-5.4","rpm_limit":60,"tpm_limit":500000,
            "utilization_target":0.7,"concurrency_cap":2,"source":"override",
            "concurrency_by_bucket":{"chat":2},"tpm_thinking_budget":12000}"#;
        let profile: Profile = serde_json::from_str(text).unwrap();
        assert_eq!(profile.concurrency_cap(), 2);
        let back = serde_json::to_value(&profile).unwrap();
        assert_eq!(back["concurrency_by_bucket"]["chat"], 2);
        assert_eq!(back["tpm_thinking_budget"], 12000);
        assert_eq!(back["source"], "override");
    }

    #[test]
    fn invalid_values_in_a_file_name_the_profile_and_rule() {
        let text = r#"{"provider":"openai","model":"x","rpm_limit":0,"tpm_limit":5}"#;
        let error = serde_json::from_str::<Profile>(text)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("profile `openai/x`: rpm_limit must be greater than 0, got 0"),
            "{error}"
        );
    }
}
