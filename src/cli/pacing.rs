//! `credits limits acquire | record | release | status | reset-state`:
//! pacing shared by every process of a project through its state file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::output::{self, Align};
use super::status_text::{
    buckets_of, buckets_text, budget_text, hold_text, stated_limits, stated_text, unseen_parts,
    unseen_text, BucketJson,
};
use super::values::{
    parse_attempt, parse_bucket, parse_name, parse_pid, parse_reservation_id, parse_status,
    parse_tokens,
};
pub(super) use super::values::{parse_lease, parse_seconds};
use super::{HintedError, StatusError};
use crate::exit::ExitStatus;
use crate::paths::{self, ProjectPaths};
use crate::rate_limits::backend::{Backend, ProviderHold};
use crate::rate_limits::budgets::BudgetUse;
use crate::rate_limits::clock::{Clock, SystemClock};
use crate::rate_limits::fail_open::{is_unpaced, FailOpen};
use crate::rate_limits::hold::{Advice, Hold, StatedLimits, UnseenUse};
use crate::rate_limits::owner::{
    calling_owner, host_name, liveness, Liveness, Owner, ShortLived, SkipReason, MAX_OWNER_WALK,
};
use crate::rate_limits::pacing::{
    ModelStatus, PaceRequest, PacingError, SharedPacer, WaitNotice, MAX_WINDOW_MARGIN,
};
use crate::rate_limits::retry::{classify, ErrorKind, ProviderResponse, DEFAULT_DELAY_CAP_SECONDS};
use crate::rate_limits::scheduler::{RateLimitSnapshot, Reservation, SchedulerError};
use crate::rate_limits::store::{FileStore, MemoryStore, StateStore};
use crate::rate_limits::store_choice::{
    self, ChoiceInputs, FailMode, OpenStore, StoreChoice, StoreSpec,
};
use crate::rate_limits::window::DEFAULT_WINDOW_MARGIN_MILLIS;
use crate::rate_limits::{Catalog, ProfileFile};

/// Carriage return and "erase line": rewrites the progress line on a terminal.
const CLEAR_LINE: &str = "\r\x1b[2K";
/// `--lease` when not given: the library's `DEFAULT_LEASE`, as flag text.
const DEFAULT_LEASE_SECONDS: &str = "600";
/// `--max-delay` when not given: the library's `DEFAULT_DELAY_CAP_SECONDS`, as flag text.
pub(super) const DEFAULT_MAX_DELAY_SECONDS: &str = "60";

/// What a request needs from the budget: shared by `acquire` and `run`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Provider key, such as `openai`.
    #[arg(long, value_parser = parse_name)]
    provider: String,
    /// Model key, such as `gpt-4o`.
    #[arg(long, value_parser = parse_name)]
    model: String,
    /// Estimated prompt tokens of each call.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_tokens)]
    input_tokens: u64,
    /// The most output tokens each call may produce.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_tokens)]
    max_output_tokens: u64,
    /// Seconds a reservation may stay in flight before its slot is reclaimed (at least 1).
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, value_parser = parse_lease, default_value = DEFAULT_LEASE_SECONDS)]
    lease: Duration,
    /// The concurrency bucket the call counts in (`reasoning`, `background`…):
    /// its own cap from the profile's `concurrency_by_bucket`, inside the
    /// model's shared RPM, TPM and concurrency cap.
    #[arg(long, value_name = "NAME", value_parser = parse_bucket)]
    bucket: Option<String>,
}

impl RequestArgs {
    /// The request, held by `owner`.
    pub(super) fn into_request(self, owner: Owner) -> PaceRequest {
        PaceRequest {
            provider: self.provider,
            model: self.model,
            estimated_input_tokens: self.input_tokens,
            max_output_tokens: self.max_output_tokens,
            owner,
            lease: self.lease,
            bucket: self.bucket,
        }
    }
}

/// Where pacing state lives and what to do when a shared store fails:
/// shared by every pacing command and `run`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Where pacing state lives: `file` (the project's state file) or a
    /// shared store, `redis://[user:pass@]host:port[/db]`, `rediss://…`, or a
    /// Redis Cluster, `redis+cluster://[user:pass@]host:port,host:port…`
    /// [default: $SPECSMITH_STORE, then `.specsmith/pacing-store.json`, then `file`]
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// When a shared store cannot be reached: `open` goes ahead unpaced with
    /// a warning, `closed` exits 69 [default: $SPECSMITH_STORE_ON_ERROR, then
    /// the setting file, then `open`]
    #[arg(long, value_name = "MODE")]
    on_store_error: Option<String>,
}

impl StoreArgs {
    /// The flags as values, for a command that reads them itself (the
    /// proxy's `--store`, which also takes `memory`).
    #[cfg(feature = "proxy")]
    pub(super) fn new(store: Option<String>, on_store_error: Option<String>) -> Self {
        Self {
            store,
            on_store_error,
        }
    }

    /// The store and fail mode these flags, the environment and the project choose.
    pub(super) fn choose(&self, project: &ProjectPaths) -> anyhow::Result<StoreChoice> {
        let inputs = ChoiceInputs::from_env(self.store.clone(), self.on_store_error.clone());
        Ok(store_choice::choose(
            &inputs,
            &project.state_dir().join(store_choice::SETTING_FILE),
        )?)
    }
}

#[derive(Debug, Args)]
pub struct AcquireArgs {
    #[command(flatten)]
    request: RequestArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Give up after SECS seconds (exit 75); 0 tries once without waiting.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// The process that holds the reservation; its death frees the slot.
    /// Default: the calling script, i.e. the parent of specsmith-rs, walking
    /// past wrappers (`timeout`, `env`, `xargs`…) and forked subshells.
    #[arg(long, value_name = "PID", allow_negative_numbers = true, value_parser = parse_pid)]
    owner_pid: Option<u32>,
    /// Print the id, seconds waited and the estimate as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The reservation id `acquire` printed.
    #[arg(value_parser = parse_reservation_id)]
    id: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Actual prompt tokens of the successful call.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_tokens,
        required_unless_present = "rate_limited",
        conflicts_with = "rate_limited"
    )]
    input_tokens: Option<u64>,
    /// Actual output tokens of the successful call.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_tokens,
        required_unless_present = "rate_limited",
        conflicts_with = "rate_limited"
    )]
    output_tokens: Option<u64>,
    /// Reasoning (thinking) tokens the provider reported apart from the
    /// output tokens (Gemini's `thoughtsTokenCount`); they count with them.
    /// OpenAI's and Anthropic's output counts already include them.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_tokens,
        conflicts_with = "rate_limited"
    )]
    reasoning_tokens: Option<u64>,
    /// The call was refused with a rate limit: prints the seconds to wait before retrying.
    #[arg(long)]
    rate_limited: bool,
    /// The provider's error message or body.
    #[arg(long, value_name = "TEXT", conflicts_with = "error_file")]
    error: Option<String>,
    /// A file holding the provider's error body; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    error_file: Option<PathBuf>,
    /// The HTTP status of the refused call (100 to 999).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_status)]
    status: Option<u16>,
    /// Which attempt this was, from 1 (drives the backoff).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_attempt)]
    attempt: Option<u32>,
    /// The longest delay to print, in seconds, whatever the provider says.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, value_parser = parse_seconds)]
    max_delay: Option<Duration>,
    /// The answer's headers, to learn the provider's limits and resets (and,
    /// with --rate-limited, its Retry-After): `curl -D FILE` or `curl -i`
    /// output (the last response counts), or `Name: value` lines.
    #[arg(long, value_name = "FILE")]
    headers_file: Option<PathBuf>,
    /// An answer header, `Name: value`; repeat for more.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = super::retry::parse_header)]
    headers: Vec<super::retry::HeaderArg>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The reservation id `acquire` printed.
    #[arg(value_parser = parse_reservation_id)]
    id: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Provider key (with `--model`: one model in detail).
    #[arg(long, value_parser = parse_name, requires = "model")]
    provider: Option<String>,
    /// Model key (with `--provider`).
    #[arg(long, value_parser = parse_name, requires = "provider")]
    model: Option<String>,
    /// Print the snapshot(s) as JSON with the anchor's field names.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
    /// Redraw the view in place on a terminal (plain lines when stdout is
    /// not one) until --for runs out or Ctrl-C / SIGTERM; never writes.
    #[arg(long)]
    pub(super) watch: bool,
    /// With --watch: stop after this many seconds [default: 365 days].
    #[arg(long = "for", value_name = "SECS", allow_hyphen_values = true, requires = "watch", value_parser = parse_seconds)]
    pub(super) for_seconds: Option<Duration>,
    /// With --watch: seconds between redraws (0.1 to 3600).
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, requires = "watch", default_value = "2", value_parser = super::values::parse_interval)]
    pub(super) interval: Duration,
}

#[derive(Debug, Args)]
pub struct ResetStateArgs {
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ClearHoldArgs {
    /// Provider key.
    #[arg(long, value_parser = parse_name)]
    provider: String,
    /// Model key; without it, the hold on every model of the provider (the
    /// account was out) is cleared.
    #[arg(long, value_parser = parse_name)]
    model: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Every profile layer of the project: built-ins, the user file, the project file.
pub(super) fn catalog(project: &ProjectPaths) -> anyhow::Result<Catalog> {
    let user_file = paths::user_profiles_file();
    Ok(Catalog::load(
        user_file.as_deref(),
        &project.profiles_file(),
    )?)
}

/// The backend of a CLI pacer: the chosen store, wrapped to fail open when
/// the project chose that.
pub(super) type CliBackend = Box<dyn Backend + Send + Sync>;

/// The pacer every command (and `credits limits run`) shares: the project's
/// profiles over the chosen store, on the system clock.
pub(super) fn pacer(
    project: &ProjectPaths,
    store: &StoreArgs,
) -> anyhow::Result<SharedPacer<CliBackend>> {
    pacer_with_connections(project, store, 1)
}

/// [`pacer`] with up to `connections` connections to a shared store.
pub(super) fn pacer_with_connections(
    project: &ProjectPaths,
    store: &StoreArgs,
    connections: usize,
) -> anyhow::Result<SharedPacer<CliBackend>> {
    let choice = store.choose(project)?;
    let catalog = catalog(project)?;
    let opened =
        store_choice::open_with_connections(&choice.store, &project.state_file(), connections);
    let backend: CliBackend = match choice.fail_mode {
        FailMode::Open => Box::new(FailOpen::new(opened, output::warning)),
        FailMode::Closed => Box::new(opened),
    };
    Ok(SharedPacer::new(catalog, backend, SystemClock).with_window_margin(window_margin()?))
}

/// A pacer over state held in this process only (the proxy's `--store
/// memory`): the project's profiles, an empty state that is never saved.
#[cfg(feature = "proxy")]
pub(super) fn memory_pacer(
    project: &ProjectPaths,
) -> anyhow::Result<SharedPacer<crate::proxy::memory::InProcessBackend>> {
    Ok(SharedPacer::new(
        catalog(project)?,
        crate::proxy::memory::InProcessBackend::default(),
        SystemClock,
    )
    .with_window_margin(window_margin()?))
}

/// The environment variable that sets how long after the minute an admitted
/// request still counts, in seconds.
pub(super) const WINDOW_MARGIN_VARIABLE: &str = "SPECSMITH_WINDOW_MARGIN";

/// The window margin from [`WINDOW_MARGIN_VARIABLE`], else the library's default.
fn window_margin() -> anyhow::Result<Duration> {
    let default = Duration::from_millis(DEFAULT_WINDOW_MARGIN_MILLIS);
    let Some(value) = std::env::var_os(WINDOW_MARGIN_VARIABLE) else {
        return Ok(default);
    };
    let range = || {
        format!(
            "{WINDOW_MARGIN_VARIABLE}: `{}` must be a number of seconds from 0 to {}",
            value.to_string_lossy(),
            MAX_WINDOW_MARGIN.as_secs()
        )
    };
    let seconds: f64 = value
        .to_str()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!(range()))?;
    match Duration::try_from_secs_f64(seconds) {
        Ok(margin) if margin <= MAX_WINDOW_MARGIN => Ok(margin),
        _ => anyhow::bail!(range()),
    }
}

/// Turns a pacing error into the CLI's: a timeout exits 75, a missing
/// profile gets a hint the user can act on.
pub(super) fn explain(error: PacingError) -> anyhow::Error {
    match error {
        PacingError::Scheduler(SchedulerError::DeadlineExceeded { .. }) => {
            StatusError::new(ExitStatus::TimedOut, error.to_string()).into()
        }
        PacingError::Scheduler(SchedulerError::NoProfile { ref label }) => HintedError::new(
            format!("no rate-limit profile for `{label}`"),
            "add one with `specsmith-rs credits limits set`, or `credits limits defaults --install`",
        )
        .into(),
        PacingError::Scheduler(SchedulerError::Held { .. } | SchedulerError::ProviderHeld { .. }) => {
            StatusError::new(ExitStatus::Held, error.to_string()).into()
        }
        PacingError::Unavailable { .. } => {
            StatusError::new(ExitStatus::StoreUnavailable, error.to_string()).into()
        }
        PacingError::Scheduler(SchedulerError::UnknownBucket { .. }) => {
            anyhow::anyhow!("--bucket: {error}")
        }
        other => other.into(),
    }
}

pub fn acquire(project: &ProjectPaths, args: AcquireArgs) -> anyhow::Result<ExitStatus> {
    let owner = match args.owner_pid {
        Some(pid) => {
            let owner = Owner::process(pid);
            if liveness(&owner, &host_name()) == Liveness::Dead {
                anyhow::bail!("--owner-pid {pid}: no such process");
            }
            owner
        }
        None => calling_owner_with_warning(),
    };
    let request = args.request.into_request(owner);
    let pacer = pacer(project, &args.store)?;
    let show_progress = std::io::stderr().is_terminal();
    let label = format!("{}/{}", request.provider, request.model);
    let mut shown = false;
    let mut on_wait = |notice: &WaitNotice| {
        if show_progress {
            // One line, rewritten in place at each poll.
            eprint!("{CLEAR_LINE}{}", progress_line(&label, notice));
            shown = true;
        }
    };
    let outcome = pacer.acquire(&request, args.timeout, &mut on_wait);
    if shown {
        eprint!("{CLEAR_LINE}");
    }
    let admitted = outcome.map_err(explain)?;
    let reservation = &admitted.reservation;
    if args.json {
        output::print_json(&AcquiredJson {
            reservation_id: &reservation.id,
            provider: &reservation.provider,
            model: &reservation.model,
            waited_seconds: admitted.waited.as_secs_f64(),
            estimated_input_tokens: reservation.estimated_input_tokens,
            max_output_tokens: reservation.max_output_tokens,
            estimated_tokens: reservation.estimated_tokens,
            owner: &reservation.owner,
            lease_expires_at: reservation.lease_expires_at,
        })?;
    } else {
        output::println(&reservation.id)?;
    }
    Ok(ExitStatus::Success)
}

pub(super) fn progress_line(label: &str, notice: &WaitNotice) -> String {
    let bound = if notice.reason.is_exact() {
        ""
    } else {
        "up to "
    };
    format!(
        "waiting for {} of `{label}`: {bound}{:.1} s (waited {:.1} s)",
        notice.reason,
        notice.retry_after.as_secs_f64(),
        notice.waited.as_secs_f64()
    )
}

/// The owner of an `acquire`'s reservation: the calling script, walking past
/// wrappers and forked subshells ([`calling_owner`]); a warning on stderr
/// when the owner looks like it may end before the call does.
fn calling_owner_with_warning() -> Owner {
    let choice = calling_owner(calling_process());
    if let Some(short_lived) = &choice.short_lived {
        let why = match short_lived {
            ShortLived::CallerGone => "the calling process has already exited".to_owned(),
            ShortLived::NothingAbove(SkipReason::Wrapper(name)) => {
                format!(
                    "it is `{name}`, which ends with its command, and has no caller to walk up to"
                )
            }
            ShortLived::NothingAbove(SkipReason::Subshell) => {
                "it is a forked subshell with no caller to walk up to".to_owned()
            }
            ShortLived::WalkTooLong => format!(
                "the walk past wrappers and subshells stopped after {MAX_OWNER_WALK} processes"
            ),
        };
        eprintln!(
            "warning: the reservation's owner, PID {}, may end before the call does: {why}; its slot can then be reclaimed while the call is in flight (pass `--owner-pid PID` of the process that lives as long as the work, such as `--owner-pid $$` in a shell script)",
            choice.owner.pid
        );
    }
    choice.owner
}

/// The process that ran `specsmith-rs acquire`, which exits at once: its
/// parent, where the walk for the owner starts.
fn calling_process() -> u32 {
    #[cfg(unix)]
    {
        std::os::unix::process::parent_id()
    }
    #[cfg(not(unix))]
    {
        std::process::id()
    }
}

#[derive(Serialize)]
struct AcquiredJson<'a> {
    reservation_id: &'a str,
    provider: &'a str,
    model: &'a str,
    waited_seconds: f64,
    estimated_input_tokens: u64,
    max_output_tokens: u64,
    estimated_tokens: u64,
    owner: &'a Owner,
    /// Unix-epoch milliseconds.
    lease_expires_at: u64,
}

pub fn record(project: &ProjectPaths, args: RecordArgs) -> anyhow::Result<ExitStatus> {
    if !args.rate_limited {
        let only_for_rate_limits = [
            ("--error", args.error.is_some()),
            ("--error-file", args.error_file.is_some()),
            ("--status", args.status.is_some()),
            ("--attempt", args.attempt.is_some()),
            ("--max-delay", args.max_delay.is_some()),
        ];
        if let Some((flag, _)) = only_for_rate_limits.iter().find(|(_, given)| *given) {
            anyhow::bail!("{flag} needs --rate-limited");
        }
    }
    let answer = super::learn::read_answer_headers(args.headers_file.as_deref(), args.headers)?;
    let pacer = pacer(project, &args.store)?;
    if !args.rate_limited {
        let input = args.input_tokens.unwrap_or_default();
        let output_tokens = args
            .output_tokens
            .unwrap_or_default()
            .saturating_add(args.reasoning_tokens.unwrap_or_default());
        let (reservation, snapshot) = pacer
            .record_success(&args.id, input, output_tokens)
            .map_err(explain)?;
        pacer
            .learn_from_headers(&reservation, &answer.headers)
            .map_err(explain)?;
        let tokens = input.saturating_add(output_tokens);
        if is_unpaced(&reservation.id) && !args.json {
            output::println(&format!(
                "`{}` was not paced (the store was unavailable when it was acquired): nothing to record",
                reservation.id
            ))?;
        } else if args.json {
            output::print_json(&SuccessJson {
                reservation_id: &reservation.id,
                tokens,
                estimated_tokens: reservation.estimated_tokens,
                snapshot: &snapshot,
            })?;
        } else {
            output::println(&format!(
                "Recorded `{}`: {} tokens (estimated {})",
                reservation.id,
                output::thousands(tokens),
                output::thousands(reservation.estimated_tokens)
            ))?;
        }
        return Ok(ExitStatus::Success);
    }
    let body = match (&args.error, &args.error_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => read_error_file(path)?,
        (None, None) => String::new(),
    };
    let response = ProviderResponse {
        status: args.status.or(answer.status),
        headers: answer.headers,
        body,
    };
    let now = UNIX_EPOCH + Duration::from_millis(SystemClock.now());
    let classification = classify(&response, now);
    let attempt = args.attempt.unwrap_or(1);
    let outcome = pacer
        .record_rate_limit(&args.id, &classification, attempt)
        .map_err(explain)?;
    pacer
        .learn_from_headers(&outcome.reservation, &response.headers)
        .map_err(explain)?;
    let said_something = response.status.is_some() || !response.body.trim().is_empty();
    if said_something
        && !matches!(
            classification.kind,
            ErrorKind::RateLimit | ErrorKind::Overloaded
        )
    {
        output::warning(&format!(
            "the error does not look like a rate limit (kind `{}`); waiting may not help",
            classification.kind.as_str()
        ));
    }
    let max_delay = args
        .max_delay
        .map_or(DEFAULT_DELAY_CAP_SECONDS, |delay| delay.as_secs_f64());
    let delay = outcome.delay_seconds.min(max_delay);
    let delay = (delay * 1000.0).round() / 1000.0;
    if args.json {
        output::print_json(&RateLimitedJson {
            reservation_id: &outcome.reservation.id,
            delay_seconds: delay,
            retry_after_seconds: classification.retry_after_seconds,
            kind: classification.kind,
            retryable: classification.retryable,
            attempt,
            snapshot: &outcome.snapshot,
        })?;
    } else {
        output::println(&delay.to_string())?;
    }
    Ok(ExitStatus::Success)
}

/// The error body, at most the classifier's 16 MiB, like `classify --body-file`.
fn read_error_file(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return super::retry::read_stdin().context("--error-file -");
    }
    super::retry::read_bounded(path, super::retry::MAX_BODY_BYTES)
        .with_context(|| format!("--error-file `{}`", output::shown(path)))
}

#[derive(Serialize)]
struct SuccessJson<'a> {
    reservation_id: &'a str,
    tokens: u64,
    estimated_tokens: u64,
    snapshot: &'a RateLimitSnapshot,
}

#[derive(Serialize)]
struct RateLimitedJson<'a> {
    reservation_id: &'a str,
    /// The delay to sleep, capped by `--max-delay`.
    delay_seconds: f64,
    /// The provider's own word, uncapped.
    retry_after_seconds: Option<f64>,
    kind: ErrorKind,
    retryable: bool,
    attempt: u32,
    snapshot: &'a RateLimitSnapshot,
}

pub fn release(project: &ProjectPaths, args: ReleaseArgs) -> anyhow::Result<ExitStatus> {
    let reservation = pacer(project, &args.store)?
        .release(&args.id)
        .map_err(explain)?;
    if is_unpaced(&reservation.id) {
        output::println(&format!(
            "`{}` was not paced (the store was unavailable when it was acquired): nothing to release",
            reservation.id
        ))?;
        return Ok(ExitStatus::Success);
    }
    output::println(&format!(
        "Released `{}` ({}/{})",
        reservation.id, reservation.provider, reservation.model
    ))?;
    Ok(ExitStatus::Success)
}

/// A model's snapshot with its reservations, as `status --json` prints it.
#[derive(Serialize)]
struct StatusJson<'a> {
    #[serde(flatten)]
    snapshot: &'a RateLimitSnapshot,
    reservations: &'a [Reservation],
    #[serde(skip_serializing_if = "Option::is_none")]
    hold: Option<&'a Hold>,
    #[serde(skip_serializing_if = "StatedLimits::is_empty")]
    stated_limits: StatedLimits,
    #[serde(skip_serializing_if = "<[BudgetUse]>::is_empty")]
    budgets: &'a [BudgetUse],
    #[serde(skip_serializing_if = "UnseenUse::is_empty")]
    unseen_use: UnseenUse,
    /// The hold on every model of the provider, if one stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_hold: Option<&'a Hold>,
    /// The profile's concurrency buckets and what each holds in flight.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    buckets: Vec<BucketJson>,
}

pub fn status(project: &ProjectPaths, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    if args.watch {
        return super::watch::watch(project, &args);
    }
    let choice = args.store.choose(project)?;
    let state_file = project.state_file();
    let (statuses, provider_holds) = read_status_and_holds(project, &args)?;
    let profiles = catalog(project)?;
    let provider_hold = |provider: &str| {
        provider_holds
            .iter()
            .find(|held| held.provider == provider)
            .map(|held| &held.hold)
    };
    if args.json {
        let rows: Vec<StatusJson> = statuses
            .iter()
            .map(|status| StatusJson {
                provider_hold: provider_hold(&status.snapshot.provider),
                buckets: buckets_of(&profiles, status),
                snapshot: &status.snapshot,
                reservations: &status.reservations,
                hold: status.hold.as_ref(),
                stated_limits: status.stated,
                budgets: &status.budgets,
                unseen_use: status.unseen,
            })
            .collect();
        match (&args.provider, rows.as_slice()) {
            (Some(_), [one]) => output::print_json(one)?,
            _ => output::print_json(&rows)?,
        }
        return Ok(ExitStatus::Success);
    }
    if args.provider.is_some() {
        if let Some(status) = statuses.first() {
            let now = SystemClock.now();
            let mut text = detail(status, now);
            let buckets = buckets_of(&profiles, status);
            if !buckets.is_empty() {
                text.push_str(&format!("\n  buckets      {}", buckets_text(&buckets)));
            }
            if let Some(hold) = provider_hold(&status.snapshot.provider) {
                text.push_str(&format!(
                    "\n  hold         every model of the provider: {}",
                    hold_text(hold, now)
                ));
            }
            output::println(&text)?;
        }
        return Ok(ExitStatus::Success);
    }
    let store_line = match &choice.store {
        StoreSpec::File => format!("Store: the state file `{}`", output::shown(&state_file)),
        shared => format!("Store: {shared} (from {})", choice.store_source),
    };
    if statuses.is_empty() && provider_holds.is_empty() {
        let place = match &choice.store {
            StoreSpec::File => format!("`{}`", output::shown(&state_file)),
            shared => shared.to_string(),
        };
        output::println(&format!(
            "No pacing state in {place} and no project profiles."
        ))?;
        return Ok(ExitStatus::Success);
    }
    if !statuses.is_empty() {
        print_status_table(&statuses)?;
    }
    let now = SystemClock.now();
    for status in &statuses {
        for budget in &status.budgets {
            output::println(&format!(
                "Budget: {}/{} {}",
                output::cell(&status.snapshot.provider),
                output::cell(&status.snapshot.model),
                budget_text(budget)
            ))?;
        }
        let buckets = buckets_of(&profiles, status);
        if !buckets.is_empty() {
            output::println(&format!(
                "Buckets: {}/{} {}",
                output::cell(&status.snapshot.provider),
                output::cell(&status.snapshot.model),
                buckets_text(&buckets)
            ))?;
        }
    }
    for held in &provider_holds {
        output::println(&format!(
            "Hold: {} (every model) {}",
            output::cell(&held.provider),
            hold_text(&held.hold, now)
        ))?;
    }
    for status in &statuses {
        if let Some(hold) = &status.hold {
            output::println(&format!(
                "Hold: {}/{} {}",
                output::cell(&status.snapshot.provider),
                output::cell(&status.snapshot.model),
                hold_text(hold, now)
            ))?;
        }
    }
    output::println(&store_line)?;
    Ok(ExitStatus::Success)
}

/// The statuses `status` shows, with the provider-wide holds standing,
/// read without writing anything. The state file is read without the lock
/// (a consistent copy, thanks to the atomic renames), and dead owners' slots
/// and the moving averages are worked out on that copy in memory. So
/// `status` works in a read-only project and never waits for writers.
pub(super) fn read_status_and_holds(
    project: &ProjectPaths,
    args: &StatusArgs,
) -> anyhow::Result<(Vec<ModelStatus>, Vec<ProviderHold>)> {
    let choice = args.store.choose(project)?;
    let catalog = catalog(project)?;
    let state_file = project.state_file();
    let store = match &choice.store {
        // A reading command never writes: the file is read without the lock
        // (a consistent copy, thanks to the atomic renames), and dead
        // owners' slots and the moving averages are worked out on that copy
        // in memory. So `status` works in a read-only project and never
        // waits for writers.
        StoreSpec::File => {
            OpenStore::Snapshot(MemoryStore::new(FileStore::new(&state_file).load()?))
        }
        shared => store_choice::open(shared, &state_file),
    };
    let pacer = SharedPacer::new(catalog, store, SystemClock).with_window_margin(window_margin()?);
    let statuses = collect_status(project, &pacer, args)?;
    let mut holds = pacer.provider_holds().map_err(explain)?;
    if let Some(provider) = &args.provider {
        holds.retain(|held| held.provider == provider.trim().to_lowercase());
    }
    Ok((statuses, holds))
}

fn collect_status<B: Backend>(
    project: &ProjectPaths,
    pacer: &SharedPacer<B>,
    args: &StatusArgs,
) -> anyhow::Result<Vec<ModelStatus>> {
    if let (Some(provider), Some(model)) = (&args.provider, &args.model) {
        return Ok(vec![pacer.status(provider, model).map_err(explain)?]);
    }
    let project_models: Vec<(String, String)> = ProfileFile::load(&project.profiles_file())?
        .profiles()
        .iter()
        .filter(|profile| profile.provider() != "*" && profile.model() != "*")
        .map(|profile| (profile.provider().to_owned(), profile.model().to_owned()))
        .collect();
    pacer.status_all(&project_models).map_err(explain)
}

fn detail(status: &ModelStatus, now: u64) -> String {
    let snapshot = &status.snapshot;
    let mut lines = vec![
        output::cell(&format!("{}/{}", snapshot.provider, snapshot.model)),
        format!(
            "  requests     {} of {} per minute ({:.1} %; provider limit {})",
            output::thousands(snapshot.rolling_request_count),
            output::thousands(snapshot.effective_rpm_limit),
            snapshot.request_utilization * 100.0,
            output::thousands(snapshot.rpm_limit)
        ),
        format!(
            "  tokens       {} of {} per minute ({:.1} %; provider limit {})",
            output::thousands(snapshot.rolling_token_count),
            output::thousands(snapshot.effective_tpm_limit),
            snapshot.token_utilization * 100.0,
            output::thousands(snapshot.tpm_limit)
        ),
        format!(
            "  concurrency  {} in flight, cap {} (profile {})",
            snapshot.in_flight, snapshot.current_concurrency_cap, snapshot.base_concurrency_cap
        ),
        format!(
            "  averages     {:.2} requests, {:.1} tokens (EMA)",
            snapshot.moving_average_requests, snapshot.moving_average_tokens
        ),
    ];
    for (_, limit, what) in stated_limits(&status.stated) {
        lines.push(format!("  provider says {}", stated_text(limit, what)));
    }
    for budget in &status.budgets {
        lines.push(format!("  budget       {}", budget_text(budget)));
    }
    for part in unseen_parts(&status.unseen, now) {
        lines.push(format!("  {}", unseen_text(&part)));
    }
    if let Some(hold) = &status.hold {
        lines.push(format!("  hold         {}", hold_text(hold, now)));
    }
    for reservation in &status.reservations {
        lines.push(format!(
            "  in flight    {} owner {} pid {}, lease ends in {:.0} s",
            output::cell(&reservation.id),
            output::cell(&reservation.owner.host),
            reservation.owner.pid,
            reservation.lease_expires_at.saturating_sub(now) as f64 / 1000.0
        ));
    }
    lines.join("\n")
}

fn print_status_table(statuses: &[ModelStatus]) -> anyhow::Result<()> {
    let mut table = output::table(&[
        ("PROVIDER", Align::Left),
        ("MODEL", Align::Left),
        ("REQUESTS", Align::Right),
        ("TOKENS", Align::Right),
        ("IN FLIGHT", Align::Right),
        ("CAP", Align::Right),
    ]);
    for status in statuses {
        let snapshot = &status.snapshot;
        table.add_row(vec![
            output::cell(&snapshot.provider),
            output::cell(&snapshot.model),
            format!(
                "{}/{}",
                output::thousands(snapshot.rolling_request_count),
                output::thousands(snapshot.effective_rpm_limit)
            ),
            format!(
                "{}/{}",
                output::thousands(snapshot.rolling_token_count),
                output::thousands(snapshot.effective_tpm_limit)
            ),
            snapshot.in_flight.to_string(),
            format!(
                "{}/{}",
                snapshot.current_concurrency_cap, snapshot.base_concurrency_cap
            ),
        ]);
    }
    output::println(&output::render_table(&table))?;
    Ok(())
}

pub fn clear_hold(project: &ProjectPaths, args: ClearHoldArgs) -> anyhow::Result<ExitStatus> {
    let pacer = pacer(project, &args.store)?;
    let Some(model) = &args.model else {
        let provider = &args.provider;
        let before = pacer.provider_holds().map_err(explain)?;
        let Some(held) = before.into_iter().find(|held| held.provider == *provider) else {
            output::println(&format!("No hold on every model of `{provider}`"))?;
            return Ok(ExitStatus::Success);
        };
        pacer.hold_provider(provider, None, true).map_err(explain)?;
        output::println(&format!(
            "Cleared the hold on every model of `{provider}`: {}",
            hold_text(&held.hold, SystemClock.now())
        ))?;
        return Ok(ExitStatus::Success);
    };
    let before = pacer.status(&args.provider, model).map_err(explain)?;
    let label = format!("{}/{}", before.snapshot.provider, before.snapshot.model);
    let Some(hold) = before.hold else {
        output::println(&format!("No hold on `{label}`"))?;
        return Ok(ExitStatus::Success);
    };
    let advice = Advice {
        clear_hold: true,
        ..Advice::default()
    };
    pacer
        .advise(&args.provider, model, &advice)
        .map_err(explain)?;
    output::println(&format!(
        "Cleared the hold on `{label}`: {}",
        hold_text(&hold, SystemClock.now())
    ))?;
    Ok(ExitStatus::Success)
}

pub fn reset_state(project: &ProjectPaths, args: ResetStateArgs) -> anyhow::Result<ExitStatus> {
    let choice = args.store.choose(project)?;
    if choice.store.is_shared() {
        let removed = store_choice::open(&choice.store, &project.state_file())
            .reset()
            .map_err(explain)?;
        let message = if removed {
            format!("Removed pacing state in {}", choice.store)
        } else {
            format!("No pacing state in {}", choice.store)
        };
        output::println(&message)?;
        return Ok(ExitStatus::Success);
    }
    let path = project.state_file();
    let removed = if path.exists() {
        FileStore::new(&path).clear()?
    } else {
        false
    };
    let message = if removed {
        format!("Removed pacing state `{}`", output::shown(&path))
    } else {
        format!("No pacing state at `{}`", output::shown(&path))
    };
    output::println(&message)?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::scheduler::DEFAULT_LEASE;

    #[test]
    fn default_lease_matches_the_library() {
        assert_eq!(parse_lease(DEFAULT_LEASE_SECONDS).unwrap(), DEFAULT_LEASE);
        assert_eq!(
            parse_seconds(DEFAULT_MAX_DELAY_SECONDS).unwrap(),
            Duration::from_secs_f64(DEFAULT_DELAY_CAP_SECONDS)
        );
    }

    #[test]
    fn progress_says_what_it_waits_for() {
        let notice = WaitNotice {
            reason: crate::rate_limits::scheduler::WaitReason::Tokens,
            retry_after: Duration::from_millis(12_340),
            sleep: Duration::from_millis(12_340),
            waited: Duration::ZERO,
        };
        assert_eq!(
            progress_line("acme/m", &notice),
            "waiting for the tokens-per-minute budget of `acme/m`: 12.3 s (waited 0.0 s)"
        );
    }
}
