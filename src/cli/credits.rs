//! `credits limits …`: rate-limit profiles.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::{Map, Value};

use super::output::{self, Align};
pub(super) use super::values::parse_name;
use super::values::{
    parse_concurrency, parse_daily_reset, parse_limit, parse_optional_limit, parse_target,
    parse_zone,
};
use crate::exit::ExitStatus;
use crate::paths::{self, ProjectPaths};
use crate::rate_limits::defaults::builtin_profiles;
use crate::rate_limits::extended::{DailyReset, ExtendedLimits, COMPANION_FILE};
use crate::rate_limits::profile::{self, Profile};
use crate::rate_limits::{Catalog, Layer, LayeredProfile, ProfileFile};

#[derive(Debug, Args)]
pub struct CreditsArgs {
    #[command(subcommand)]
    command: CreditsCommand,
}

#[derive(Debug, Subcommand)]
enum CreditsCommand {
    /// Per-model rate-limit profiles and pacing.
    #[command(subcommand)]
    Limits(LimitsCommand),
}

#[derive(Debug, Subcommand)]
enum LimitsCommand {
    /// List the project's profiles (`--all`: with built-in and user-level ones).
    List {
        /// Also show built-in and user-level profiles, each with its source.
        #[arg(long)]
        all: bool,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create or replace a project profile.
    Set(SetArgs),
    /// Delete a project profile.
    Remove {
        /// Provider key, such as `openai`.
        #[arg(long, value_parser = parse_name)]
        provider: String,
        /// Model key, such as `gpt-4o`.
        #[arg(long, value_parser = parse_name)]
        model: String,
    },
    /// Show the built-in profiles (`--install`: merge them into the project file).
    Defaults {
        /// Add every built-in profile the project file lacks, keeping the rest.
        #[arg(long)]
        install: bool,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Classify a failed provider call (status, headers, body) as JSON.
    Classify(super::retry::ClassifyArgs),
    /// Wait for rate-limit budget and take a reservation; prints its id.
    Acquire(super::pacing::AcquireArgs),
    /// Record how a reserved call went: its actual tokens, or a rate limit.
    Record(Box<super::pacing::RecordArgs>),
    /// Give back a reservation whose call was never sent.
    Release(super::pacing::ReleaseArgs),
    /// Show the rolling-window figures shared by every process of the project.
    Status(super::pacing::StatusArgs),
    /// Remove the runtime pacing state.
    ResetState(super::pacing::ResetStateArgs),
    /// End a provider's hold on a model (after a quota is restored).
    ClearHold(super::pacing::ClearHoldArgs),
    /// Run a command paced by the budget, retrying rate limits (`run … -- CMD ARGS…`).
    Run(super::run::RunArgs),
    /// Write the per-minute limits a provider's answer states (its rate-limit
    /// headers) into the project profile.
    Learn(super::learn::LearnArgs),
    /// Serve a local HTTP proxy that paces every SDK and agent pointed at it.
    #[cfg(feature = "proxy")]
    Proxy(super::proxy::ProxyArgs),
}

#[derive(Debug, Args)]
struct SetArgs {
    /// Provider key, such as `openai`, or `*` for any provider.
    #[arg(long, value_parser = parse_name)]
    provider: String,
    /// Model key, such as `gpt-4o`, or `*` for any model.
    #[arg(long, value_parser = parse_name)]
    model: String,
    /// Requests per minute the provider allows (> 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_limit)]
    rpm: u64,
    /// Tokens per minute the provider allows (> 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_limit)]
    tpm: u64,
    /// Share of each limit to budget for, in (0, 1].
    #[arg(long, value_name = "F", allow_hyphen_values = true, default_value_t = profile::DEFAULT_UTILIZATION_TARGET, value_parser = parse_target)]
    target: f64,
    /// Requests that may be in flight at once (> 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = profile::DEFAULT_CONCURRENCY_CAP, value_parser = parse_concurrency)]
    concurrency: u32,
    /// Requests per day the provider allows; 0 removes the limit. Kept in
    /// the companion file, beside the profile file Python specsmith reads.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_optional_limit)]
    rpd: Option<u64>,
    /// Tokens (input and output) per day; 0 removes the limit.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_optional_limit)]
    tpd: Option<u64>,
    /// Input tokens per minute, apart from output (Anthropic's ITPM); 0 removes the limit.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_optional_limit)]
    itpm: Option<u64>,
    /// Output tokens per minute, apart from input (Anthropic's OTPM); 0 removes the limit.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_optional_limit)]
    otpm: Option<u64>,
    /// When the per-day budgets reset: `rolling` (each request counts for
    /// the 24 h after it; the default) or a time of day `HH:MM`.
    #[arg(long, value_name = "HH:MM|rolling", value_parser = parse_daily_reset)]
    daily_reset: Option<String>,
    /// The time zone of `--daily-reset HH:MM` (IANA name; default `UTC`).
    #[arg(long, value_name = "ZONE", requires = "daily_reset", value_parser = parse_zone)]
    daily_reset_zone: Option<String>,
}

impl SetArgs {
    /// The daily reset the flags ask for, if any.
    fn daily_reset(&self) -> anyhow::Result<Option<DailyReset>> {
        Ok(
            match (self.daily_reset.as_deref(), self.daily_reset_zone.as_deref()) {
                (Some("rolling"), Some(_)) => anyhow::bail!(
                    "--daily-reset-zone: a rolling daily window has no time zone (give --daily-reset HH:MM)"
                ),
                (Some("rolling"), None) => Some(DailyReset::Rolling),
                (Some(time), zone) => Some(DailyReset::at(time, zone.unwrap_or("UTC"))?),
                (None, _) => None,
            },
        )
    }

    /// `base` (the profile's limits beyond RPM and TPM so far) with the
    /// flags applied, `reset` being [`SetArgs::daily_reset`].
    fn extended(&self, mut base: ExtendedLimits, reset: Option<&DailyReset>) -> ExtendedLimits {
        for (slot, flag) in [
            (&mut base.rpd, self.rpd),
            (&mut base.tpd, self.tpd),
            (&mut base.itpm, self.itpm),
            (&mut base.otpm, self.otpm),
        ] {
            if let Some(limit) = flag {
                *slot = (limit > 0).then_some(limit);
            }
        }
        if let Some(reset) = reset {
            base.daily_reset = reset.clone();
        }
        base
    }
}

pub fn run(project: &ProjectPaths, args: CreditsArgs) -> anyhow::Result<ExitStatus> {
    let CreditsCommand::Limits(command) = args.command;
    let success = |result: anyhow::Result<()>| result.map(|()| ExitStatus::Success);
    match command {
        LimitsCommand::List { all, json } => success(list(project, all, json)),
        LimitsCommand::Set(args) => success(set(project, args)),
        LimitsCommand::Remove { provider, model } => success(remove(project, &provider, &model)),
        LimitsCommand::Defaults { install, json } => success(defaults(project, install, json)),
        LimitsCommand::Classify(args) => success(super::retry::classify(args)),
        LimitsCommand::Acquire(args) => super::pacing::acquire(project, args),
        LimitsCommand::Record(args) => super::pacing::record(project, *args),
        LimitsCommand::Release(args) => super::pacing::release(project, args),
        LimitsCommand::Status(args) => super::pacing::status(project, args),
        LimitsCommand::ResetState(args) => super::pacing::reset_state(project, args),
        LimitsCommand::ClearHold(args) => super::pacing::clear_hold(project, args),
        LimitsCommand::Run(args) => super::run::run(project, args),
        LimitsCommand::Learn(args) => super::learn::learn(project, args),
        #[cfg(feature = "proxy")]
        LimitsCommand::Proxy(args) => super::proxy::proxy(project, args),
    }
}

fn list(project: &ProjectPaths, all: bool, json: bool) -> anyhow::Result<()> {
    let entries: Vec<LayeredProfile> = if all {
        load_catalog(project)?
            .sorted()
            .into_iter()
            .cloned()
            .collect()
    } else {
        let file = load_project_file(project)?;
        let mut catalog = Catalog::default();
        catalog.add_layer(Layer::Project, file.profiles().to_vec());
        catalog.sorted().into_iter().cloned().collect()
    };
    if json {
        return print_profiles_json(&entries);
    }
    if entries.is_empty() {
        output::println(&format!(
            "No model rate-limit profiles configured in `{}`.\nhint: `specsmith-rs credits limits defaults --install` adds the built-in ones.",
            output::shown(&project.profiles_file())
        ))?;
        return Ok(());
    }
    print_profile_table(&entries, all)
}

fn set(project: &ProjectPaths, args: SetArgs) -> anyhow::Result<()> {
    let profile = Profile::new(
        &args.provider,
        &args.model,
        args.rpm,
        args.tpm,
        args.target,
        args.concurrency,
    )?
    .with_source("override");
    let path = project.profiles_file();
    // Checked before the lock, so a bad combination writes nothing.
    let reset = args.daily_reset()?;
    let saved = ProfileFile::update(&path, |file| {
        let before = file
            .profiles()
            .iter()
            .rev()
            .find(|one| one.key() == profile.key())
            .map(|one| one.extended().clone())
            .unwrap_or_default();
        let extended = args.extended(before, reset.as_ref());
        let profile = profile.with_extended(extended);
        file.upsert(profile.clone());
        Ok(profile)
    })
    .context("profile not saved")?;
    let more = describe_extended(saved.extended());
    output::println(&format!(
        "Saved {} (RPM {}, TPM {}, target {:.2}, concurrency {}; effective RPM {}, TPM {}{}) to `{}`{}",
        saved.label(),
        output::thousands(saved.rpm_limit()),
        output::thousands(saved.tpm_limit()),
        saved.utilization_target(),
        saved.concurrency_cap(),
        output::thousands(saved.effective_rpm_limit()),
        output::thousands(saved.effective_tpm_limit()),
        if more.is_empty() {
            String::new()
        } else {
            format!("; {more}")
        },
        output::shown(&path),
        if saved.extended().is_empty() {
            String::new()
        } else {
            format!(" and `{COMPANION_FILE}`")
        }
    ))?;
    Ok(())
}

/// `ITPM 30,000, RPD 100 (resets 00:00 America/Los_Angeles)`; empty when none is set.
fn describe_extended(extended: &ExtendedLimits) -> String {
    let mut parts: Vec<String> = [
        ("ITPM", extended.itpm),
        ("OTPM", extended.otpm),
        ("RPD", extended.rpd),
        ("TPD", extended.tpd),
    ]
    .into_iter()
    .filter_map(|(name, limit)| Some(format!("{name} {}", output::thousands(limit?))))
    .collect();
    if extended.has_daily() {
        if let Some(last) = parts.last_mut() {
            last.push_str(&match &extended.daily_reset {
                DailyReset::Rolling => " (rolling 24 h)".to_owned(),
                fixed => format!(" (resets {fixed})"),
            });
        }
    }
    parts.join(", ")
}

fn remove(project: &ProjectPaths, provider: &str, model: &str) -> anyhow::Result<()> {
    let path = project.profiles_file();
    if !path.exists() {
        anyhow::bail!(
            "no profile `{provider}/{model}`: `{}` does not exist",
            output::shown(&path)
        );
    }
    let removed = ProfileFile::update(&path, |file| file.remove(provider, model))?;
    output::println(&format!(
        "Removed {} from `{}`",
        removed.label(),
        output::shown(&path)
    ))?;
    Ok(())
}

fn defaults(project: &ProjectPaths, install: bool, json: bool) -> anyhow::Result<()> {
    let builtins = builtin_profiles();
    let mut installed = None;
    if install {
        let path = project.profiles_file();
        let outcome = ProfileFile::update(&path, |file| {
            let added = file.install(builtin_profiles());
            Ok((added, file.profiles().len() - added))
        })
        .context("defaults not installed")?;
        installed = Some((path, outcome));
    }
    let entries: Vec<LayeredProfile> = builtins
        .into_iter()
        .map(|profile| LayeredProfile {
            profile,
            layer: Layer::Builtin,
        })
        .collect();
    if json {
        print_profiles_json(&entries)?;
    } else {
        output::println("Built-in model rate-limit profiles (conservative defaults; project and user files take precedence)")?;
        print_profile_table(&entries, false)?;
    }
    if let Some((path, (added, kept))) = installed {
        let message = format!(
            "Installed {added} new default profile(s) into `{}` ({kept} existing profile(s) kept)",
            output::shown(&path)
        );
        if json {
            eprintln!("{}", output::cell(&message));
        } else {
            output::println(&message)?;
        }
    }
    Ok(())
}

fn load_project_file(project: &ProjectPaths) -> anyhow::Result<ProfileFile> {
    Ok(ProfileFile::load(&project.profiles_file())?)
}

pub(super) fn load_catalog(project: &ProjectPaths) -> anyhow::Result<Catalog> {
    let user_file = paths::user_profiles_file();
    Ok(Catalog::load(
        user_file.as_deref(),
        &project.profiles_file(),
    )?)
}

/// The JSON shape of a listed profile: the file's fields, with `source` naming
/// the layer it came from.
#[derive(Serialize)]
struct ProfileJson<'a> {
    provider: &'a str,
    model: &'a str,
    rpm_limit: u64,
    tpm_limit: u64,
    utilization_target: f64,
    concurrency_cap: u32,
    source: String,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpd_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tpd_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    itpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    otpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_reset: Option<String>,
}

fn print_profiles_json(entries: &[LayeredProfile]) -> anyhow::Result<()> {
    let rows: Vec<ProfileJson> = entries
        .iter()
        .map(|entry| {
            let profile = &entry.profile;
            ProfileJson {
                provider: profile.provider(),
                model: profile.model(),
                rpm_limit: profile.rpm_limit(),
                tpm_limit: profile.tpm_limit(),
                utilization_target: profile.utilization_target(),
                concurrency_cap: profile.concurrency_cap(),
                source: entry.layer.to_string(),
                extra: &profile.extra,
                rpd_limit: profile.extended().rpd,
                tpd_limit: profile.extended().tpd,
                itpm_limit: profile.extended().itpm,
                otpm_limit: profile.extended().otpm,
                daily_reset: profile
                    .extended()
                    .has_daily()
                    .then(|| profile.extended().daily_reset.to_string()),
            }
        })
        .collect();
    output::print_json(&rows)
}

fn print_profile_table(entries: &[LayeredProfile], with_source: bool) -> anyhow::Result<()> {
    let mut headers = vec![
        ("PROVIDER", Align::Left),
        ("MODEL", Align::Left),
        ("RPM", Align::Right),
        ("TPM", Align::Right),
        ("TARGET", Align::Right),
        ("CONCURRENCY", Align::Right),
        ("EFFECTIVE RPM", Align::Right),
        ("EFFECTIVE TPM", Align::Right),
    ];
    if with_source {
        headers.push(("SOURCE", Align::Left));
    }
    let with_more = entries
        .iter()
        .any(|entry| !entry.profile.extended().is_empty());
    if with_more {
        headers.push(("OTHER LIMITS", Align::Left));
    }
    let mut table = output::table(&headers);
    for entry in entries {
        let profile = &entry.profile;
        let mut row = vec![
            output::cell(profile.provider()),
            output::cell(profile.model()),
            output::thousands(profile.rpm_limit()),
            output::thousands(profile.tpm_limit()),
            format!("{:.2}", profile.utilization_target()),
            profile.concurrency_cap().to_string(),
            output::thousands(profile.effective_rpm_limit()),
            output::thousands(profile.effective_tpm_limit()),
        ];
        if with_source {
            row.push(entry.layer.to_string());
        }
        if with_more {
            row.push(describe_extended(profile.extended()));
        }
        table.add_row(row);
    }
    output::println(&output::render_table(&table))?;
    Ok(())
}
