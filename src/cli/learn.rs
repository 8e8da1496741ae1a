//! `credits limits learn`: write the per-minute limits a provider's answer
//! states (its rate-limit headers) into the project profile.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{ArgGroup, Args};

use super::credits::{load_catalog, parse_name};
use super::output;
use super::retry::{parse_header, read_bounded, HeaderArg, MAX_BODY_BYTES};
use crate::exit::ExitStatus;
use crate::paths::ProjectPaths;
use crate::rate_limits::clock::{Clock, SystemClock};
use crate::rate_limits::learn::{self, Dimension, LearnedLimits, Window};
use crate::rate_limits::profile::{profile_key, Profile};
use crate::rate_limits::retry::HeadersFile;
use crate::rate_limits::ProfileFile;

/// Arguments of `credits limits learn`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).multiple(true).args(["headers_file", "headers"])))]
pub struct LearnArgs {
    /// Provider key, such as `openai` (also picks the family's windows: Groq's
    /// requests headers are per day).
    #[arg(long, value_parser = parse_name)]
    provider: String,
    /// Model key, such as `gpt-4o`.
    #[arg(long, value_parser = parse_name)]
    model: String,
    /// A file holding the answer's headers: `curl -D FILE` or `curl -i` output
    /// (the last response counts), or `Name: value` lines; at most 16 MiB.
    #[arg(long, value_name = "FILE")]
    headers_file: Option<PathBuf>,
    /// A response header, `Name: value`; repeat for more (wins over --headers-file).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<HeaderArg>,
    /// Print what would change without writing the profile file.
    #[arg(long)]
    dry_run: bool,
}

/// The headers of a provider's answer from `--headers-file` (`curl -i` or
/// `curl -D` output, or `Name: value` lines; the last response counts) and
/// `--header` flags, which come after the file's; the status is the file's.
pub(super) fn read_answer_headers(
    file: Option<&Path>,
    flags: Vec<HeaderArg>,
) -> anyhow::Result<HeadersFile> {
    let mut answer = HeadersFile::default();
    if let Some(path) = file {
        let context = || format!("--headers-file `{}`", output::shown(path));
        // `curl -i` output holds the body too: the body limit, not the headers one.
        let text = read_bounded(path, MAX_BODY_BYTES).with_context(context)?;
        answer = learn::headers_from_output(&text).with_context(context)?;
    }
    answer.headers.extend(
        flags
            .into_iter()
            .map(|HeaderArg(name, value)| (name, value)),
    );
    Ok(answer)
}

/// Reads the headers, prints what they say and what changes, and (unless
/// `--dry-run`) saves the profile.
pub fn learn(project: &ProjectPaths, args: LearnArgs) -> anyhow::Result<ExitStatus> {
    let headers = read_answer_headers(args.headers_file.as_deref(), args.headers)?.headers;
    let learned = learn::learn(&headers, &args.provider, SystemClock.now());
    for (name, value) in &learned.unreadable {
        output::warning(&format!(
            "header `{}` has a value that is not a count or a reset: `{}`",
            output::cell(name),
            output::cell(value)
        ));
    }
    let limits = PerMinute::from(&learned);
    if limits.requests.is_none() && limits.tokens.is_none() {
        let source = args
            .headers_file
            .as_ref()
            .map_or("--header".to_owned(), |path| {
                format!("--headers-file `{}`", output::shown(path))
            });
        bail!(
            "{source}: no per-minute requests or tokens limit in the headers (read: {})",
            describe(&learned)
        );
    }

    let path = project.profiles_file();
    let catalog = load_catalog(project)?;
    let current = ProfileFile::load(&path)?
        .profiles()
        .iter()
        .rev()
        .find(|profile| profile.key() == profile_key(&args.provider, &args.model))
        .cloned()
        .or_else(|| {
            catalog
                .resolve(&args.provider, &args.model)
                .map(|entry| entry.profile.clone())
        });
    let updated = limits
        .apply(&args.provider, &args.model, current.as_ref())
        .with_context(|| format!("the headers state {}", describe(&learned)))?;

    output::println(&format!(
        "{}: {}, {} (from {} headers)",
        updated.label(),
        change(
            "RPM",
            current.as_ref().map(Profile::rpm_limit),
            updated.rpm_limit()
        ),
        change(
            "TPM",
            current.as_ref().map(Profile::tpm_limit),
            updated.tpm_limit()
        ),
        limits.families
    ))?;
    let before = current.as_ref().map(Profile::extended);
    for (what, old, new) in [
        (
            "ITPM",
            before.and_then(|one| one.itpm),
            updated.extended().itpm,
        ),
        (
            "OTPM",
            before.and_then(|one| one.otpm),
            updated.extended().otpm,
        ),
        (
            "RPD",
            before.and_then(|one| one.rpd),
            updated.extended().rpd,
        ),
        (
            "TPD",
            before.and_then(|one| one.tpd),
            updated.extended().tpd,
        ),
    ] {
        if let Some(new) = new.filter(|new| Some(*new) != old || limits.states(what)) {
            output::println(&format!(
                "  {} (in `{}`)",
                change(what, old, new),
                crate::rate_limits::extended::COMPANION_FILE
            ))?;
        }
    }
    for limit in &learned.limits {
        let written = matches!(
            (limit.dimension, limit.window),
            (_, Window::Minute) | (Dimension::Requests | Dimension::Tokens, Window::Day)
        );
        if let (false, Some(value)) = (written, limit.limit) {
            output::println(&format!(
                "  not written (profiles hold no such limit yet): {} {} {}",
                limit.dimension,
                limit.window,
                output::thousands(value)
            ))?;
        }
    }
    if args.dry_run {
        output::println(&format!("Dry run: `{}` not changed", output::shown(&path)))?;
        return Ok(ExitStatus::Success);
    }
    let unchanged = current.as_ref().is_some_and(|current| {
        (current.rpm_limit(), current.tpm_limit()) == (updated.rpm_limit(), updated.tpm_limit())
            && current.extended() == updated.extended()
    });
    let in_file = ProfileFile::load(&path)?
        .profiles()
        .iter()
        .any(|profile| profile.key() == updated.key());
    if unchanged && in_file {
        output::println(&format!(
            "`{}` already holds these limits; nothing written",
            output::shown(&path)
        ))?;
        return Ok(ExitStatus::Success);
    }
    ProfileFile::update(&path, |file| {
        // Re-read under the lock: keep what another writer changed meanwhile.
        let fresh = file
            .profiles()
            .iter()
            .rev()
            .find(|profile| profile.key() == updated.key())
            .cloned()
            .or(current);
        // Only a base could change the outcome, and any base makes it valid.
        let profile = limits
            .apply(&args.provider, &args.model, fresh.as_ref())
            .unwrap_or_else(|_| updated.clone());
        file.upsert(profile);
        Ok(())
    })
    .context("profile not saved")?;
    output::println(&format!("Saved to `{}`", output::shown(&path)))?;
    Ok(ExitStatus::Success)
}

/// The per-minute requests and tokens limits the headers state, and the
/// budgets beyond them (input and output tokens per minute, requests and
/// tokens per day).
struct PerMinute {
    requests: Option<u64>,
    tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    daily_requests: Option<u64>,
    daily_tokens: Option<u64>,
    /// The header families they came from, for messages.
    families: String,
}

impl From<&LearnedLimits> for PerMinute {
    fn from(learned: &LearnedLimits) -> Self {
        let requests = learned
            .find(Dimension::Requests, Window::Minute)
            .filter(|limit| limit.limit.is_some());
        let tokens = learned
            .find(Dimension::Tokens, Window::Minute)
            .filter(|limit| limit.limit.is_some());
        let mut families: Vec<&str> = [requests, tokens]
            .into_iter()
            .flatten()
            .map(|limit| limit.family.headers())
            .collect();
        families.dedup();
        let stated = |dimension, window| {
            learned
                .find(dimension, window)
                .and_then(|limit| limit.limit)
        };
        Self {
            requests: requests.and_then(|limit| limit.limit),
            tokens: tokens.and_then(|limit| limit.limit),
            input_tokens: stated(Dimension::InputTokens, Window::Minute),
            output_tokens: stated(Dimension::OutputTokens, Window::Minute),
            daily_requests: stated(Dimension::Requests, Window::Day),
            daily_tokens: stated(Dimension::Tokens, Window::Day),
            families: families.join(" and "),
        }
    }
}

impl PerMinute {
    /// True when the headers state the budget `short` (`ITPM`, `OTPM`, `RPD`, `TPD`).
    fn states(&self, short: &str) -> bool {
        match short {
            "ITPM" => self.input_tokens.is_some(),
            "OTPM" => self.output_tokens.is_some(),
            "RPD" => self.daily_requests.is_some(),
            "TPD" => self.daily_tokens.is_some(),
            _ => false,
        }
    }

    /// `base` with the learned limits, or a new profile at the default target
    /// and concurrency when there is no base and both limits were learned.
    fn apply(
        &self,
        provider: &str,
        model: &str,
        base: Option<&Profile>,
    ) -> anyhow::Result<Profile> {
        let (rpm, tpm) = match (self.requests, self.tokens, base) {
            (Some(rpm), Some(tpm), None) => (rpm, tpm),
            (rpm, tpm, Some(base)) => (rpm.unwrap_or(base.rpm_limit()), tpm.unwrap_or(base.tpm_limit())),
            (rpm, _, None) => bail!(
                "no profile for `{provider}/{model}` to take the {} per minute from, and the headers do not say it; set one first with `credits limits set`",
                if rpm.is_some() { "tokens" } else { "requests" }
            ),
        };
        let (target, concurrency) = base.map_or(
            (
                crate::rate_limits::profile::DEFAULT_UTILIZATION_TARGET,
                crate::rate_limits::profile::DEFAULT_CONCURRENCY_CAP,
            ),
            |base| (base.utilization_target(), base.concurrency_cap()),
        );
        let mut profile = Profile::new(provider, model, rpm, tpm, target, concurrency)
            .with_context(|| format!("the headers' limits for `{provider}/{model}`"))?
            .with_source("override");
        if let Some(base) = base.filter(|base| base.key() == profile.key()) {
            profile.extra = base.extra.clone();
        }
        // The budgets beyond RPM and TPM: what the headers state replaces
        // the base's; a daily reset the headers cannot tell is kept (a new
        // one is rolling, which never admits more than the provider's day).
        let mut extended = base.map(|base| base.extended().clone()).unwrap_or_default();
        for (slot, learned) in [
            (&mut extended.itpm, self.input_tokens),
            (&mut extended.otpm, self.output_tokens),
            (&mut extended.rpd, self.daily_requests),
            (&mut extended.tpd, self.daily_tokens),
        ] {
            if let Some(learned) = learned.filter(|&limit| limit > 0) {
                *slot = Some(learned);
            }
        }
        Ok(profile.with_extended(extended))
    }
}

/// `RPM 500 → 60`, `RPM 60 (unchanged)`, `RPM 60 (new)`.
fn change(what: &str, before: Option<u64>, after: u64) -> String {
    match before {
        Some(before) if before == after => {
            format!("{what} {} (unchanged)", output::thousands(after))
        }
        Some(before) => format!(
            "{what} {} → {}",
            output::thousands(before),
            output::thousands(after)
        ),
        None => format!("{what} {} (new)", output::thousands(after)),
    }
}

/// What the headers did state, for the error when they hold no usable limit.
fn describe(learned: &LearnedLimits) -> String {
    if learned.is_empty() {
        return "no rate-limit headers".to_owned();
    }
    learned
        .limits
        .iter()
        .map(|limit| {
            let value = limit.limit.map_or("no limit".to_owned(), |value| {
                format!("limit {}", output::thousands(value))
            });
            format!("{} {} {value}", limit.dimension, limit.window)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
