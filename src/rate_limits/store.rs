//! Where pacing state lives between calls: a small trait shaped like
//! governor's `measure_and_replace` (old state in, new state out), a file
//! shared by every process of a project, and an in-memory store for tests.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::hold::Hold;
use super::profile::normalize_name;
use super::scheduler::{model_key, ModelState};
use super::wake::{self, Wake, Watch};
use crate::persist::{self, FileLock, PersistError};

/// The state file format this version writes. It reads every version up to
/// this one: 3 holds a window's events as columns of numbers in strings,
/// 2 as columns in JSON arrays (see the state file section of
/// docs/pacing.md), 1 as a list of objects.
pub const STATE_VERSION: u64 = 3;

/// The pacing state of every model, by `provider::model` key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacingState {
    /// Format version, [`STATE_VERSION`].
    pub version: u64,
    /// Per-model state.
    pub models: BTreeMap<String, ModelState>,
    /// Holds on every model of a provider (the account is out), by
    /// normalised provider name; an ended hold may linger until the next write.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub provider_holds: BTreeMap<String, Hold>,
    /// Top-level fields this version does not use, written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for PacingState {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            models: BTreeMap::new(),
            provider_holds: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

impl PacingState {
    /// Drops models with nothing in their window, nothing in flight and no
    /// reduced cap, so the state holds only what still matters.
    pub fn prune(&mut self) {
        self.models.retain(|_, model| !model.is_idle());
    }

    /// The hold on every model of `provider` standing at `now`, if any.
    pub fn provider_hold(&self, provider: &str, now: u64) -> Option<&Hold> {
        self.provider_holds
            .get(provider)
            .filter(|hold| hold.until > now)
    }
}

/// Errors loading or saving pacing state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be read, parsed, locked or written.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// The file was written by a newer specsmith.
    #[error("`{path}` has state format version {found}; this specsmith reads versions 1 to {supported} (upgrade specsmith, or run `credits limits reset-state`)")]
    NewerVersion {
        /// The state file.
        path: PathBuf,
        /// The version the file declares.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// The file parses but its content is inconsistent.
    #[error("`{path}` is invalid: {message} (fix it or run `credits limits reset-state`)")]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// What is inconsistent.
        message: String,
    },
}

/// A place that holds [`PacingState`] and applies changes to it atomically.
pub trait StateStore {
    /// Hands the current state to `change` and saves the state it returns,
    /// with no other change in between. When `change` fails, nothing is saved.
    /// A store may call `change` more than once (on a newer state each time)
    /// and keeps only the last call's outcome.
    fn measure_and_replace<T, E>(
        &self,
        change: impl FnMut(PacingState) -> Result<(T, PacingState), E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>;

    /// Removes the whole state; true when there was any.
    fn clear(&self) -> Result<bool, StoreError>;

    /// Where the state lives, for messages.
    fn describe(&self) -> String;

    /// Waits at most `timeout` for a sign that a concurrency slot or a place
    /// in a queue may have freed (see [`super::wake`]). A store that cannot
    /// tell says [`Wake::Unsupported`] at once, and the waiter sleeps on
    /// its own clock instead; the default.
    fn wait_for_change(&self, timeout: Duration) -> Wake {
        let _ = timeout;
        Wake::Unsupported
    }
}

/// The state as the file holds it. Read by hand rather than with a
/// flattened `extra`, which would make serde buffer the whole file first.
struct StateRecord {
    version: u64,
    models: BTreeMap<String, ModelState>,
    provider_holds: BTreeMap<String, Hold>,
    extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for StateRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StateRecordVisitor)
    }
}

struct StateRecordVisitor;

impl<'de> serde::de::Visitor<'de> for StateRecordVisitor {
    type Value = StateRecord;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a pacing state object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StateRecord, A::Error> {
        use serde::de::Error as _;
        let (mut version, mut models) = (None, None);
        let mut provider_holds = BTreeMap::new();
        let mut extra = Map::new();
        // Bounded by the input: each pass consumes one entry.
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => version = Some(map.next_value()?),
                "models" => models = Some(map.next_value()?),
                "provider_holds" => provider_holds = map.next_value()?,
                _ => {
                    extra.insert(key, map.next_value()?);
                }
            }
        }
        Ok(StateRecord {
            version: version.ok_or_else(|| A::Error::missing_field("version"))?,
            models: models.ok_or_else(|| A::Error::missing_field("models"))?,
            provider_holds,
            extra,
        })
    }
}

/// `.specsmith/model-rate-limit-state.json`, shared by every process of a
/// project. Each change locks the sidecar `.lock` file, reads, changes,
/// writes atomically and unlocks; no lock is held while anyone sleeps. A
/// change that frees room for waiters touches the lock file, which wakes
/// them ([`super::wake`]).
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    /// Set up by the first wait; `None` inside when the lock file cannot be watched.
    watch: OnceLock<Option<Watch>>,
}

impl Clone for FileStore {
    /// The same file; the clone sets up its own watch when it first waits.
    fn clone(&self) -> Self {
        Self::new(self.path.clone())
    }
}

impl FileStore {
    /// A store on `path`; nothing is created until the first change.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            watch: OnceLock::new(),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state without locking (a consistent file, thanks to the
    /// atomic writes); an empty state when the file does not exist.
    pub fn load(&self) -> Result<PacingState, StoreError> {
        self.load_sized().map(|(state, _)| state)
    }

    /// [`FileStore::load`], and the file's size in bytes (0 when missing).
    fn load_sized(&self) -> Result<(PacingState, usize), StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok((PacingState::default(), 0))
            }
            Err(source) => {
                return Err(PersistError::Read {
                    path: self.path.clone(),
                    source,
                }
                .into())
            }
        };
        Ok((parse_state(&self.path, &bytes)?, bytes.len()))
    }
}

/// Parses a state file: the version first, so a newer format is reported as
/// such rather than as whatever field it happens to break; then every model
/// is checked for consistency (see [`ModelState`]'s loader) and against its
/// key. Unknown top-level fields are kept.
///
/// A file holding NUL bytes is read as an empty state: specsmith never
/// writes one (JSON escapes them), and it is what a power loss leaves of a
/// file whose data the kernel had not yet written back (see
/// [`persist::Durability::Unsynced`]): there is nothing left in it to keep.
pub fn parse_state(path: &Path, bytes: &[u8]) -> Result<PacingState, StoreError> {
    if bytes.contains(&0) {
        return Ok(PacingState::default());
    }
    // The usual case, a well-formed file, in one pass straight into the
    // state. Anything else is parsed again the slow way below, which checks
    // the version before the content and words the error.
    let record = match serde_json::from_slice::<StateRecord>(bytes) {
        Ok(record) if (1..=STATE_VERSION).contains(&record.version) => record,
        _ => slow_parse(path, bytes)?,
    };
    check_keys(path, record)
}

/// The careful parse of [`parse_state`]: a JSON value first, then its version,
/// then the content.
fn slow_parse(path: &Path, bytes: &[u8]) -> Result<StateRecord, StoreError> {
    let invalid = |message: String| StoreError::Invalid {
        path: path.to_owned(),
        message,
    };
    let value: Value = persist::parse_json(path, bytes)?;
    let version = value.get("version").and_then(Value::as_u64);
    match version {
        Some(found) if found > STATE_VERSION => {
            return Err(StoreError::NewerVersion {
                path: path.to_owned(),
                found,
                supported: STATE_VERSION,
            })
        }
        Some(0) => {
            return Err(invalid(format!(
                "`version` 0 is not a state format version (this specsmith writes version {STATE_VERSION})"
            )))
        }
        Some(_) => {}
        None => return Err(invalid("no numeric `version` field".to_owned())),
    }
    serde_json::from_value(value).map_err(|error| invalid(error.to_string()))
}

/// Checks that every model is stored under its own key and no reservation
/// is in flight under two.
fn check_keys(path: &Path, record: StateRecord) -> Result<PacingState, StoreError> {
    let invalid = |message: String| StoreError::Invalid {
        path: path.to_owned(),
        message,
    };
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, model) in &record.models {
        let view = model.view();
        let expected = model_key(&view.provider, &view.model).map(|(expected, _, _)| expected);
        if expected.as_deref() != Some(key.as_str()) {
            return Err(invalid(format!(
                "model `{}/{}` is stored under the key `{key}`, not `{}`",
                view.provider,
                view.model,
                expected.unwrap_or_default()
            )));
        }
        for reservation in model.in_flight() {
            if let Some(other) = owners.insert(&reservation.id, key) {
                return Err(invalid(format!(
                    "reservation `{}` is in flight under both `{other}` and `{key}`",
                    reservation.id
                )));
            }
        }
    }
    for provider in record.provider_holds.keys() {
        if normalize_name(provider).as_deref() != Some(provider.as_str()) || provider == "*" {
            return Err(invalid(format!(
                "the provider hold of `{provider}` does not name a normalised provider"
            )));
        }
    }
    Ok(PacingState {
        version: record.version,
        models: record.models,
        provider_holds: record.provider_holds,
        extra: record.extra,
    })
}

impl StateStore for FileStore {
    fn measure_and_replace<T, E>(
        &self,
        mut change: impl FnMut(PacingState) -> Result<(T, PacingState), E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        // A missing file is an empty state, and (writes being atomic renames)
        // seeing it missing is a consistent read without the lock. A change
        // that fails on it, or leaves nothing to save, is then answered
        // without creating the folder or the lock: a failing command creates nothing.
        if !self.path.exists() {
            let (outcome, mut new) = change(PacingState::default())?;
            new.prune();
            if new.models.is_empty() {
                return Ok(outcome);
            }
        }
        let lock = FileLock::acquire(&self.path).map_err(StoreError::from)?;
        let existed = self.path.exists();
        let (old, size) = self.load_sized()?;
        let (outcome, mut new) = change(old.clone())?;
        new.version = STATE_VERSION;
        new.prune();
        if new != old && (existed || !new.models.is_empty()) {
            write_state(&self.path, &new, size)?;
            if frees_room(&old, &new) {
                wake::signal(lock.file());
            }
        }
        Ok(outcome)
    }

    fn describe(&self) -> String {
        format!("the state file `{}`", self.path.display())
    }

    /// The first wait sets up the watch and returns [`Wake::Changed`] at
    /// once, so the caller looks again: room freed between its last look
    /// and the watch would otherwise go unseen until its timeout.
    fn wait_for_change(&self, timeout: Duration) -> Wake {
        if let Some(watch) = self.watch.get() {
            return watch
                .as_ref()
                .map_or(Wake::Unsupported, |watch| watch.wait(timeout));
        }
        let watch = self.watch.get_or_init(|| {
            // Beside the final target, as the lock itself is.
            let target =
                persist::resolve_symlinks(&self.path).unwrap_or_else(|_| self.path.clone());
            Watch::new(&persist::lock_path(&target))
        });
        if watch.is_some() {
            Wake::Changed
        } else {
            Wake::Unsupported
        }
    }

    fn clear(&self) -> Result<bool, StoreError> {
        // The lock file stays: deleting it while another process holds it
        // would let a third lock a new file and enter at the same time.
        let lock = FileLock::acquire(&self.path)?;
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                // Waiters' tickets went with it: let them look again.
                wake::signal(lock.file());
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(PersistError::Write {
                path: self.path.clone(),
                source,
            }
            .into()),
        }
    }
}

/// True when a model that has waiters got room for them: fewer reservations
/// in flight or fewer waiters ahead than before, or a higher cap. Budget
/// waits need no signal, as they sleep the exact time.
fn frees_room(old: &PacingState, new: &PacingState) -> bool {
    new.models.iter().any(|(key, now)| {
        now.waiters().len() > 0
            && old.models.get(key).is_some_and(|before| {
                now.in_flight().len() < before.in_flight().len()
                    || now.waiters().len() < before.waiters().len()
                    || now.view().current_concurrency_cap > before.view().current_concurrency_cap
            })
    })
}

/// Writes the state file: compact JSON, replaced atomically but not synced
/// (a pacing window's worth fades within a minute; see
/// [`persist::Durability::Unsynced`]).
/// `size_hint` is the old file's size: the new one is about as large, so
/// the buffer is made once rather than grown by doubling.
fn write_state(path: &Path, state: &PacingState, size_hint: usize) -> Result<(), StoreError> {
    let mut bytes = Vec::with_capacity(size_hint + size_hint / 8 + 1024);
    serde_json::to_writer(&mut bytes, state).map_err(|error| PersistError::Write {
        path: path.to_owned(),
        source: io::Error::other(error),
    })?;
    bytes.push(b'\n');
    persist::write_atomic_with(path, &bytes, persist::Durability::Unsynced)?;
    Ok(())
}

/// State held in memory, for tests and single-process embedding.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<PacingState>,
}

impl MemoryStore {
    /// A store that starts from `state` (for example a file's, to work on a
    /// copy that is never saved).
    pub fn new(state: PacingState) -> Self {
        Self {
            state: Mutex::new(state),
        }
    }
}

impl StateStore for MemoryStore {
    fn measure_and_replace<T, E>(
        &self,
        mut change: impl FnMut(PacingState) -> Result<(T, PacingState), E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (outcome, mut new) = change(state.clone())?;
        new.version = STATE_VERSION;
        new.prune();
        *state = new;
        Ok(outcome)
    }

    fn describe(&self) -> String {
        "the in-memory state".to_owned()
    }

    fn clear(&self) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let had_any = !state.models.is_empty();
        *state = PacingState::default();
        Ok(had_any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::owner::Owner;
    use crate::rate_limits::scheduler::{AcquireRequest, Decision, DEFAULT_LEASE};
    use crate::rate_limits::Profile;

    fn state_with_one_reservation() -> PacingState {
        let profile = Profile::new("acme", "m", 10, 1_000, 1.0, 1).unwrap();
        let mut model = ModelState::new("acme", "m", &profile);
        let request = AcquireRequest {
            estimated_input_tokens: 3,
            max_output_tokens: 4,
            owner: Owner {
                host: "h".into(),
                pid: 1,
                start_time: Some(5),
                process_group: None,
            },
            lease: DEFAULT_LEASE,
            bucket: None,
        };
        let decision = model
            .try_acquire(1_000, &profile, &request, "rsv-1".into())
            .unwrap();
        assert!(matches!(decision, Decision::Granted(_)));
        let mut state = PacingState::default();
        state.models.insert("acme::m".into(), model);
        state
    }

    fn replace_with(store: &FileStore, state: PacingState) {
        store
            .measure_and_replace(|_| Ok::<_, StoreError>(((), state.clone())))
            .unwrap();
    }

    #[test]
    fn file_store_round_trips_with_a_version_and_epoch_times() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let state = state_with_one_reservation();
        replace_with(&store, state.clone());
        assert_eq!(store.load().unwrap(), state);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(json["version"], 3);
        assert_eq!(json["models"]["acme::m"]["events"]["at"], "1000");
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert_eq!(text.lines().count(), 1, "compact, one line: {text}");
        assert_eq!(json["models"]["acme::m"]["in_flight"][0]["owner"]["pid"], 1);
    }

    #[test]
    fn nothing_is_written_when_there_is_nothing_to_keep() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        store
            .measure_and_replace(|state| Ok::<_, StoreError>(((), state)))
            .unwrap();
        assert!(!store.path().exists());
        assert!(!store.clear().unwrap());
        replace_with(&store, state_with_one_reservation());
        assert!(store.clear().unwrap());
        assert!(!store.path().exists());
    }

    #[test]
    fn a_change_that_fails_on_a_missing_file_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(".specsmith");
        let store = FileStore::new(folder.join("state.json"));
        let outcome: Result<(), StoreError> = store.measure_and_replace(|_| {
            Err(StoreError::Invalid {
                path: PathBuf::from("x"),
                message: "refused".into(),
            })
        });
        assert!(outcome.is_err());
        assert!(!folder.exists(), "no folder and no lock file");
        let mut calls = 0;
        store
            .measure_and_replace(|_| {
                calls += 1;
                Ok::<_, StoreError>(((), state_with_one_reservation()))
            })
            .unwrap();
        assert_eq!(calls, 2, "a dry run without the lock, then the locked run");
        assert_eq!(store.load().unwrap(), state_with_one_reservation());
    }

    #[test]
    fn a_failed_change_leaves_the_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        replace_with(&store, state_with_one_reservation());
        let before = std::fs::read(store.path()).unwrap();
        let outcome: Result<(), StoreError> = store.measure_and_replace(|_| {
            Err(StoreError::Invalid {
                path: PathBuf::from("x"),
                message: "refused".into(),
            })
        });
        assert!(outcome.is_err());
        assert_eq!(std::fs::read(store.path()).unwrap(), before);
    }

    #[test]
    fn corrupt_and_newer_files_are_typed_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = FileStore::new(&path);
        let cases = [
            ("{not json", "is invalid at line 1"),
            (r#"{"version": 4, "models": {}}"#, "state format version 4"),
            (r#"{"models": {}}"#, "no numeric `version` field"),
            (
                r#"{"version": 1, "models": {"a::b": {"provider": 1}}}"#,
                "is invalid:",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let error = store
                .measure_and_replace(|state| Ok::<_, StoreError>(((), state)))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
    }

    #[test]
    fn a_version_1_file_loads_and_the_next_write_upgrades_it_keeping_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let state = state_with_one_reservation();
        let mut json = stored_json();
        json["version"] = 1.into();
        json["models"]["acme::m"]["events"] = serde_json::json!([
            { "sequence": 0, "at": 1_000, "requests": 1, "tokens": 7 }
        ]);
        json["written_by"] = "an older specsmith".into();
        std::fs::write(store.path(), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.models, state.models);
        assert_eq!(loaded.version, 1);
        // Any change rewrites the file in the new format, content kept.
        store
            .measure_and_replace(|mut state| {
                state.extra.insert("touched".into(), true.into());
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(written["version"], STATE_VERSION);
        assert_eq!(written["written_by"], "an older specsmith");
        assert_eq!(
            written["models"]["acme::m"]["events"],
            serde_json::json!({ "first": 0, "at": "1000", "tokens": "7", "released": [] })
        );
        assert_eq!(store.load().unwrap().models, state.models);
    }

    #[test]
    fn a_file_a_power_loss_zeroed_reads_as_empty_and_is_replaced_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        for lost in [vec![0u8; 300], b"{\"version\": 2, \0\0\0".to_vec()] {
            std::fs::write(store.path(), &lost).unwrap();
            assert_eq!(store.load().unwrap(), PacingState::default());
            replace_with(&store, state_with_one_reservation());
            assert_eq!(store.load().unwrap(), state_with_one_reservation());
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn waiters_are_woken_only_by_changes_that_free_room() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let mut state = state_with_one_reservation();
        let model = state.models.get_mut("acme::m").unwrap();
        let waiter = model.in_flight().next().unwrap().owner.clone();
        let ticket = model.join_queue(1_000, waiter, 7, 60_000);
        replace_with(&store, state.clone());
        assert_eq!(
            store.wait_for_change(Duration::ZERO),
            Wake::Changed,
            "armed: look again"
        );
        assert_eq!(store.wait_for_change(Duration::ZERO), Wake::TimedOut);
        // A change that frees nothing (the waiter keeps its ticket longer).
        store
            .measure_and_replace(|mut state| {
                state
                    .models
                    .get_mut("acme::m")
                    .unwrap()
                    .keep_ticket(&ticket.id, 90_000);
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        assert_eq!(store.wait_for_change(Duration::ZERO), Wake::TimedOut);
        // The slot frees while the waiter waits: it wakes.
        let waiting = store.clone();
        assert_eq!(waiting.wait_for_change(Duration::ZERO), Wake::Changed);
        let woken = std::thread::spawn(move || waiting.wait_for_change(Duration::from_secs(30)));
        store
            .measure_and_replace(|mut state| {
                let model = state.models.get_mut("acme::m").unwrap();
                model.release(1_001, None, "rsv-1").unwrap();
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        assert_eq!(woken.join().unwrap(), Wake::Changed);
    }

    #[test]
    fn a_store_that_cannot_watch_says_so() {
        let dir = tempfile::tempdir().unwrap();
        // No lock file: nothing was ever written, so nothing can be watched.
        let store = FileStore::new(dir.path().join("state.json"));
        assert_eq!(store.wait_for_change(Duration::ZERO), Wake::Unsupported);
        assert_eq!(
            MemoryStore::default().wait_for_change(Duration::ZERO),
            Wake::Unsupported
        );
    }

    #[test]
    fn idle_models_are_pruned() {
        let profile = Profile::new("acme", "m", 10, 1_000, 1.0, 1).unwrap();
        let mut state = PacingState::default();
        state
            .models
            .insert("acme::m".into(), ModelState::new("acme", "m", &profile));
        state.prune();
        assert!(state.models.is_empty());
    }

    fn load_text(text: &str) -> Result<PacingState, StoreError> {
        parse_state(Path::new("state.json"), text.as_bytes())
    }

    fn stored_json() -> Value {
        serde_json::to_value(state_with_one_reservation()).unwrap()
    }

    #[test]
    fn a_model_under_the_wrong_key_or_a_shared_id_is_refused() {
        let mut json = stored_json();
        let model = json["models"]["acme::m"].take();
        json["models"] = serde_json::json!({ "acme::other": model.clone() });
        let error = load_text(&json.to_string()).unwrap_err().to_string();
        assert!(
            error.contains("`state.json` is invalid: model `acme/m` is stored under the key `acme::other`, not `acme::m`"),
            "{error}"
        );
        let mut other = model.clone();
        other["model"] = "n".into();
        other["in_flight"][0]["model"] = "n".into();
        json["models"] = serde_json::json!({ "acme::m": model, "acme::n": other });
        let error = load_text(&json.to_string()).unwrap_err().to_string();
        assert!(
            error.contains("is in flight under both `acme::m` and `acme::n`"),
            "{error}"
        );
    }

    #[test]
    fn version_zero_is_refused() {
        let error = load_text(r#"{"version": 0, "models": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`version` 0 is not a state format version"),
            "{error}"
        );
    }

    #[test]
    fn unknown_top_level_fields_are_kept_when_the_file_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let mut json = stored_json();
        json["written_by"] = serde_json::json!({ "tool": "later-specsmith", "build": 7 });
        std::fs::write(store.path(), json.to_string()).unwrap();
        store
            .measure_and_replace(|mut state| {
                state.models.clear();
                state.models.insert(
                    "acme::m".into(),
                    state_with_one_reservation().models["acme::m"].clone(),
                );
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(written["written_by"]["build"], 7);
        assert_eq!(
            store.load().unwrap().extra["written_by"]["tool"],
            "later-specsmith"
        );
    }
}
