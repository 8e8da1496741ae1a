//! The 21 built-in profiles: conservative starting points, the same numbers
//! as Python specsmith's `BUILTIN_PROFILES`. Account tiers vary; project and
//! user files override them.

use super::profile::{Profile, DEFAULT_CONCURRENCY_CAP, DEFAULT_UTILIZATION_TARGET};

// No built-in profile sets the limits beyond RPM and TPM (per day, input
// and output tokens per minute), on purpose. Anthropic's rate-limit page
// (docs.anthropic.com/en/api/rate-limits) publishes ITPM and OTPM per usage
// tier (Tier 1, Claude Sonnet 4: 50 RPM, 30,000 ITPM, 8,000 OTPM), and
// Google publishes Gemini's requests per day per tier, but the RPM and TPM
// below are Python specsmith's, which match no single tier (2,000 RPM is no
// Tier 1 figure), the tiers were renamed and renumbered more than once, and
// an account's tier cannot be known here. Pairing them with one tier's ITPM
// would be a guess. The account's real limits come from its answers'
// headers instead: pacing uses them at once, and `credits limits learn`
// writes them to the project (docs/pacing.md).

/// `source` recorded for built-in profiles, as Python specsmith writes it.
pub const BUILTIN_SOURCE: &str = "default";

/// (provider, model, requests per minute, tokens per minute), in display order.
const BUILTIN_TABLE: [(&str, &str, u64, u64); 21] = [
    ("openai", "gpt-4o", 500, 30_000_000),
    ("openai", "gpt-4o-mini", 500, 200_000_000),
    ("openai", "gpt-4-turbo", 500, 800_000),
    ("openai", "gpt-3.5-turbo", 3_500, 90_000),
    ("openai", "o1", 500, 30_000_000),
    ("openai", "o1-mini", 1_000, 200_000_000),
    ("openai", "o3-mini", 1_000, 200_000_000),
    ("openai", "gpt-5.4", 60, 500_000),
    ("openai", "*", 500, 500_000),
    ("anthropic", "claude-opus-4", 2_000, 40_000_000),
    ("anthropic", "claude-sonnet-4", 2_000, 40_000_000),
    ("anthropic", "claude-haiku-3-5", 2_000, 200_000_000),
    ("anthropic", "claude-3-5-sonnet", 2_000, 40_000_000),
    ("anthropic", "claude-3-5-haiku", 2_000, 200_000_000),
    ("anthropic", "claude-3-opus", 2_000, 40_000_000),
    ("anthropic", "*", 2_000, 40_000_000),
    ("google", "gemini-1.5-pro", 360, 4_000_000),
    ("google", "gemini-1.5-flash", 1_000, 4_000_000),
    ("google", "gemini-2.0-flash", 1_000, 4_000_000),
    ("google", "gemini-2.5-pro", 360, 4_000_000),
    ("google", "*", 360, 4_000_000),
];

/// The built-in profiles, in display order, each at target 0.7 and concurrency 1.
pub fn builtin_profiles() -> Vec<Profile> {
    BUILTIN_TABLE
        .iter()
        .map(|&(provider, model, rpm, tpm)| {
            Profile::new(
                provider,
                model,
                rpm,
                tpm,
                DEFAULT_UTILIZATION_TARGET,
                DEFAULT_CONCURRENCY_CAP,
            )
            .expect("built-in profiles are valid")
            .with_source(BUILTIN_SOURCE)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn twenty_one_unique_profiles_per_provider_as_the_anchor() {
        let profiles = builtin_profiles();
        assert_eq!(profiles.len(), 21);
        let keys: HashSet<_> = profiles.iter().map(Profile::key).collect();
        assert_eq!(keys.len(), 21);
        let count = |provider| profiles.iter().filter(|p| p.provider() == provider).count();
        assert_eq!(
            (count("openai"), count("anthropic"), count("google")),
            (9, 7, 5)
        );
        assert!(profiles
            .iter()
            .all(|p| p.utilization_target() == 0.7 && p.concurrency_cap() == 1));
    }

    #[test]
    fn gpt_5_4_has_the_anchor_numbers() {
        let profile = builtin_profiles()
            .into_iter()
            .find(|p| p.key() == "openai::gpt-5.4")
            .unwrap();
        assert_eq!((profile.rpm_limit(), profile.tpm_limit()), (60, 500_000));
        assert_eq!(profile.effective_rpm_limit(), 42);
        assert_eq!(profile.effective_tpm_limit(), 350_000);
    }
}
