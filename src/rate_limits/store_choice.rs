//! Which store pacing uses, and what a call does when a shared store fails.
//!
//! The choice comes, first found wins, from a command's `--store`, the
//! `SPECSMITH_STORE` environment variable, the project setting file
//! `.specsmith/pacing-store.json`, and else the project's state file. The
//! fail mode comes the same way (`--on-store-error`,
//! `SPECSMITH_STORE_ON_ERROR`, the setting file) and is `open` by default.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::backend::{
    Attempt, AttemptSpec, Backend, Context, ProviderHold, Settled, Settlement, Wanted,
};
use super::hold::{Advice, Hold};
use super::pacing::{ModelStatus, PacingError};
use super::scheduler::Reservation;
use super::store::{FileStore, MemoryStore};
use super::store_url::{ClusterUrl, StoreUrl, StoreUrlError};
use super::wake::Wake;
use crate::persist;

/// The environment variable naming the store.
pub const STORE_VARIABLE: &str = "SPECSMITH_STORE";
/// The environment variable naming the fail mode.
pub const ON_ERROR_VARIABLE: &str = "SPECSMITH_STORE_ON_ERROR";
/// The project setting file, in `.specsmith/`.
pub const SETTING_FILE: &str = "pacing-store.json";

/// Where pacing state lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The project's state file, `.specsmith/model-rate-limit-state.json`.
    File,
    /// A Redis server shared by every machine that names it.
    Redis(StoreUrl),
    /// A Redis Cluster, reached through the seed nodes named.
    Cluster(ClusterUrl),
}

impl StoreSpec {
    /// `file`, a `redis://` / `rediss://` URL, or a `redis+cluster://` /
    /// `rediss+cluster://` URL.
    pub fn parse(text: &str) -> Result<Self, StoreUrlError> {
        let text = text.trim();
        if text == "file" {
            return Ok(Self::File);
        }
        if ClusterUrl::is_cluster_text(text) {
            return ClusterUrl::parse(text).map(Self::Cluster);
        }
        StoreUrl::parse(text).map(Self::Redis)
    }

    /// Whether the store is shared through a server (not the state file).
    pub fn is_shared(&self) -> bool {
        !matches!(self, Self::File)
    }
}

impl fmt::Display for StoreSpec {
    /// `file`, or the URL with its password masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => f.write_str("file"),
            Self::Redis(url) => f.write_str(&url.masked()),
            Self::Cluster(url) => f.write_str(&url.masked()),
        }
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a pacing call does when a shared store cannot be reached or errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Warn once and let the call go ahead unpaced; retry advice after a 429
    /// is still computed. The default: a pacer outage must not become an
    /// outage of every agent that uses it.
    #[default]
    Open,
    /// Refuse: the command exits with the store-unavailable code (69).
    Closed,
}

impl FailMode {
    /// `open` or `closed` (also `fail-open`, `fail-closed`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "open" | "fail-open" => Ok(Self::Open),
            "closed" | "fail-closed" => Ok(Self::Closed),
            other => Err(format!(
                "`{other}` is not a fail mode (use `open` or `closed`)"
            )),
        }
    }
}

/// Where a setting came from, for `status` and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Environment(&'static str),
    /// The project setting file.
    SettingFile(PathBuf),
    /// Nothing chose: the default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("the command line"),
            Self::Environment(name) => write!(f, "${name}"),
            Self::SettingFile(path) => write!(f, "`{}`", path.display()),
            Self::Default => f.write_str("the default"),
        }
    }
}

/// The project setting file's content: `{"store": "redis://…", "on_error": "open"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingRecord {
    store: Option<String>,
    on_error: Option<String>,
}

/// Errors reading the choice.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    /// A store text (flag, variable or setting) is not a store.
    #[error("{origin}: {error}")]
    Store {
        /// Where the text came from.
        origin: String,
        /// Why it is not a store.
        error: StoreUrlError,
    },
    /// A fail mode text is not a fail mode.
    #[error("{origin}: {message}")]
    FailMode {
        /// Where the text came from.
        origin: String,
        /// Why.
        message: String,
    },
    /// The setting file cannot be read or parsed.
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    /// The setting file parses but its fields are wrong.
    #[error("`{path}` is invalid: {message}")]
    Invalid {
        /// The setting file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The store and fail mode a command uses, with where each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreChoice {
    /// The store.
    pub store: StoreSpec,
    /// Where the store was chosen.
    pub store_source: Source,
    /// The fail mode.
    pub fail_mode: FailMode,
    /// Where the fail mode was chosen.
    pub fail_mode_source: Source,
}

/// What a command was given; `None` when absent.
#[derive(Debug, Clone, Default)]
pub struct ChoiceInputs {
    /// `--store`.
    pub flag_store: Option<String>,
    /// `--on-store-error`.
    pub flag_on_error: Option<String>,
    /// `$SPECSMITH_STORE`.
    pub env_store: Option<String>,
    /// `$SPECSMITH_STORE_ON_ERROR`.
    pub env_on_error: Option<String>,
}

impl ChoiceInputs {
    /// The flags given, and the environment variables of this process.
    pub fn from_env(flag_store: Option<String>, flag_on_error: Option<String>) -> Self {
        let read = |name| {
            std::env::var_os(name)
                .map(|value| value.to_string_lossy().into_owned())
                .filter(|value| !value.trim().is_empty())
        };
        Self {
            flag_store,
            flag_on_error,
            env_store: read(STORE_VARIABLE),
            env_on_error: read(ON_ERROR_VARIABLE),
        }
    }
}

/// Works out the store and fail mode from `inputs` and the setting file
/// `setting_file` (read only when a flag or variable leaves something open).
pub fn choose(inputs: &ChoiceInputs, setting_file: &Path) -> Result<StoreChoice, ChoiceError> {
    let needs_file = (inputs.flag_store.is_none() && inputs.env_store.is_none())
        || (inputs.flag_on_error.is_none() && inputs.env_on_error.is_none());
    let setting = if needs_file {
        read_setting(setting_file)?
    } else {
        SettingRecord::default()
    };
    let file_source = || Source::SettingFile(setting_file.to_owned());
    let (store_text, store_source) = match (&inputs.flag_store, &inputs.env_store, &setting.store) {
        (Some(text), _, _) => (Some(text.as_str()), Source::Flag),
        (None, Some(text), _) => (Some(text.as_str()), Source::Environment(STORE_VARIABLE)),
        (None, None, Some(text)) => (Some(text.as_str()), file_source()),
        (None, None, None) => (None, Source::Default),
    };
    let store = match store_text {
        None => StoreSpec::File,
        Some(text) => StoreSpec::parse(text).map_err(|error| ChoiceError::Store {
            origin: origin(&store_source, "--store", "store"),
            error,
        })?,
    };
    let (mode_text, fail_mode_source) = match (
        &inputs.flag_on_error,
        &inputs.env_on_error,
        &setting.on_error,
    ) {
        (Some(text), _, _) => (Some(text.as_str()), Source::Flag),
        (None, Some(text), _) => (Some(text.as_str()), Source::Environment(ON_ERROR_VARIABLE)),
        (None, None, Some(text)) => (Some(text.as_str()), file_source()),
        (None, None, None) => (None, Source::Default),
    };
    let fail_mode = match mode_text {
        None => FailMode::default(),
        Some(text) => FailMode::parse(text).map_err(|message| ChoiceError::FailMode {
            origin: origin(&fail_mode_source, "--on-store-error", "on_error"),
            message,
        })?,
    };
    Ok(StoreChoice {
        store,
        store_source,
        fail_mode,
        fail_mode_source,
    })
}

fn origin(source: &Source, flag: &str, field: &str) -> String {
    match source {
        Source::Flag => flag.to_owned(),
        Source::Environment(name) => name.to_string(),
        Source::SettingFile(path) => format!("`{}` field `{field}`", path.display()),
        Source::Default => "the default".to_owned(),
    }
}

fn read_setting(path: &Path) -> Result<SettingRecord, ChoiceError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SettingRecord::default())
        }
        Err(source) => {
            return Err(persist::PersistError::Read {
                path: path.to_owned(),
                source,
            }
            .into())
        }
    };
    let value: serde_json::Value = persist::parse_json(path, &bytes)?;
    serde_json::from_value(value).map_err(|error| ChoiceError::Invalid {
        path: path.to_owned(),
        message: error.to_string(),
    })
}

/// A store opened for pacing.
pub enum OpenStore {
    /// The project's state file.
    File(FileStore),
    /// A copy of the state file held in memory, for reading commands that
    /// must never write (`status`).
    Snapshot(MemoryStore),
    /// A store on a server, shared across machines.
    Shared(Box<dyn Backend + Send + Sync>),
    /// A shared store that could not be opened: every operation reports why.
    Unreachable {
        /// The store, credentials masked.
        store: String,
        /// Why it could not be opened.
        reason: String,
    },
}

impl OpenStore {
    /// The store's backend, or why there is none.
    fn backend(&self) -> Result<&dyn Backend, PacingError> {
        match self {
            Self::File(store) => Ok(store),
            Self::Snapshot(store) => Ok(store),
            Self::Shared(store) => Ok(store.as_ref()),
            Self::Unreachable { store, reason } => Err(PacingError::Unavailable {
                store: store.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

impl Backend for OpenStore {
    fn describe(&self) -> String {
        match self {
            Self::Unreachable { store, .. } => store.clone(),
            other => other.backend().map(Backend::describe).unwrap_or_default(),
        }
    }

    fn attempt(&self, cx: &Context<'_>, spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
        self.backend()?.attempt(cx, spec)
    }

    fn settle(
        &self,
        cx: &Context<'_>,
        id: &str,
        settlement: &Settlement,
    ) -> Result<Settled, PacingError> {
        self.backend()?.settle(cx, id, settlement)
    }

    fn record_lost(
        &self,
        cx: &Context<'_>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError> {
        self.backend()?
            .record_lost(cx, reservation, tokens, rate_limited)
    }

    fn status(
        &self,
        cx: &Context<'_>,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError> {
        self.backend()?.status(cx, wanted)
    }

    fn advise(
        &self,
        cx: &Context<'_>,
        target: &Wanted<'_>,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        self.backend()?.advise(cx, target, advice)
    }

    fn reset(&self) -> Result<bool, PacingError> {
        self.backend()?.reset()
    }

    fn hold_provider(
        &self,
        cx: &Context<'_>,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        self.backend()?.hold_provider(cx, provider, hold, clear)
    }

    fn provider_holds(&self, cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
        self.backend()?.provider_holds(cx)
    }

    fn wait_for_change(&self, timeout: std::time::Duration) -> Wake {
        match self.backend() {
            Ok(backend) => backend.wait_for_change(timeout),
            Err(_) => Wake::Unsupported,
        }
    }
}

/// Opens the store `spec` names; `state_file` is the project's. A shared
/// store that cannot be reached opens as [`OpenStore::Unreachable`], so the
/// fail mode decides what its first operation does.
pub fn open(spec: &StoreSpec, state_file: &Path) -> OpenStore {
    open_with_connections(spec, state_file, 1)
}

/// [`open`], with up to `connections` connections to a shared store (for a
/// server answering many clients at once, such as the proxy).
pub fn open_with_connections(spec: &StoreSpec, state_file: &Path, connections: usize) -> OpenStore {
    use super::redis_store::RedisStore;
    let timeouts = super::store_url::Timeouts::default();
    let opened = match spec {
        StoreSpec::File => return OpenStore::File(FileStore::new(state_file)),
        StoreSpec::Redis(url) => RedisStore::open(url, timeouts),
        StoreSpec::Cluster(cluster) => RedisStore::open_cluster(cluster.seeds(), timeouts),
    };
    match opened {
        Ok(store) => OpenStore::Shared(Box::new(store.with_connections(connections))),
        Err(PacingError::Unavailable { store, reason }) => OpenStore::Unreachable { store, reason },
        Err(other) => OpenStore::Unreachable {
            store: spec.to_string(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(
        flag_store: Option<&str>,
        env_store: Option<&str>,
        flag_on_error: Option<&str>,
        env_on_error: Option<&str>,
    ) -> ChoiceInputs {
        ChoiceInputs {
            flag_store: flag_store.map(str::to_owned),
            flag_on_error: flag_on_error.map(str::to_owned),
            env_store: env_store.map(str::to_owned),
            env_on_error: env_on_error.map(str::to_owned),
        }
    }

    #[test]
    fn the_flag_beats_the_variable_which_beats_the_setting_file() {
        let dir = tempfile::tempdir().unwrap();
        let setting = dir.path().join(SETTING_FILE);
        std::fs::write(
            &setting,
            r#"{"store": "redis://file-host:1/0", "on_error": "closed"}"#,
        )
        .unwrap();
        let from_file = choose(&inputs(None, None, None, None), &setting).unwrap();
        assert_eq!(from_file.store.to_string(), "redis://file-host:1/0");
        assert_eq!(from_file.store_source, Source::SettingFile(setting.clone()));
        assert_eq!(from_file.fail_mode, FailMode::Closed);
        let from_env = choose(
            &inputs(None, Some("redis://env-host:2"), None, Some("open")),
            &setting,
        )
        .unwrap();
        assert_eq!(from_env.store.to_string(), "redis://env-host:2/0");
        assert_eq!(from_env.store_source, Source::Environment(STORE_VARIABLE));
        assert_eq!(from_env.fail_mode, FailMode::Open);
        let from_flag = choose(
            &inputs(Some("file"), Some("redis://env-host:2"), None, None),
            &setting,
        )
        .unwrap();
        assert_eq!(from_flag.store, StoreSpec::File);
        assert_eq!(from_flag.store_source, Source::Flag);
        assert_eq!(from_flag.fail_mode, FailMode::Closed);
    }

    #[test]
    fn without_any_setting_the_file_store_fails_open() {
        let dir = tempfile::tempdir().unwrap();
        let choice = choose(
            &inputs(None, None, None, None),
            &dir.path().join(SETTING_FILE),
        )
        .unwrap();
        assert_eq!(choice.store, StoreSpec::File);
        assert_eq!(choice.store_source, Source::Default);
        assert_eq!(choice.fail_mode, FailMode::Open);
    }

    #[test]
    fn bad_texts_are_refused_naming_where_they_came_from_and_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let setting = dir.path().join(SETTING_FILE);
        let error = choose(
            &inputs(None, Some("http://user:hunter2@host"), None, None),
            &setting,
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("SPECSMITH_STORE: "), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = choose(&inputs(None, None, Some("sometimes"), None), &setting)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "--on-store-error: `sometimes` is not a fail mode (use `open` or `closed`)"
        );
        std::fs::write(&setting, r#"{"store": "file", "colour": "blue"}"#).unwrap();
        let error = choose(&inputs(None, None, None, None), &setting)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("pacing-store.json` is invalid: unknown field `colour`"),
            "{error}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_cli_wrappers_pass_the_file_stores_wake_ups_through() {
        use super::super::fail_open::FailOpen;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // The lock file a first write leaves is what the waiters watch.
        std::fs::write(crate::persist::lock_path(&path), b"").unwrap();
        let boxed: Box<dyn Backend + Send + Sync> =
            Box::new(FailOpen::new(open(&StoreSpec::File, &path), |_| {}));
        let zero = std::time::Duration::ZERO;
        assert_eq!(
            boxed.wait_for_change(zero),
            Wake::Changed,
            "armed: look again"
        );
        assert_eq!(boxed.wait_for_change(zero), Wake::TimedOut);
    }
}
