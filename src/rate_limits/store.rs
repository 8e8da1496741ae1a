//! Where pacing state lives between calls: a small trait shaped like
//! governor's `measure_and_replace` (old state in, new state out), a file
//! shared by every process of a project, and an in-memory store for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event_log::{self, LogInfo, DEAD_SLOTS_MAX};
use super::hold::Hold;
use super::profile::normalize_name;
use super::scheduler::{model_key, ModelState};
use super::wake::{self, Wake, Watch};
use super::window::{Changes, Event};
use crate::persist::{self, FileLock, PersistError};

/// The state file format this version writes. It reads every version up to
/// this one: 4 keeps a window of more than [`event_log::INLINE_MAX`] events
/// in an event log beside the state file and the rest as 3 does,
/// 3 holds a window's events as columns of numbers in strings,
/// 2 as columns in JSON arrays (see the state file section of
/// docs/pacing.md), 1 as a list of objects.
pub const STATE_VERSION: u64 = 4;

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

impl PacingState {
    /// A copy without the models' events (see [`ModelState::without_events`]).
    fn without_events(&self) -> Self {
        Self {
            version: self.version,
            models: self
                .models
                .iter()
                .map(|(key, model)| (key.clone(), model.without_events()))
                .collect(),
            provider_holds: self.provider_holds.clone(),
            extra: self.extra.clone(),
        }
    }

    /// True when this state equals the one `head` was taken from by
    /// [`PacingState::without_events`]; false also when that cannot be told.
    fn unchanged_from(&self, head: &Self) -> bool {
        self.version == head.version
            && self.provider_holds == head.provider_holds
            && self.extra == head.extra
            && self.models.len() == head.models.len()
            && self
                .models
                .iter()
                .zip(&head.models)
                .all(|((key, now), (key_then, then))| key == key_then && now.unchanged_from(then))
    }
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
                "models" => models = Some(map.next_value::<Models>()?.0),
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

/// The models of a state file, each told the event log it was read from
/// ([`event_log::claim_last`]).
struct Models(BTreeMap<String, ModelState>);

impl<'de> Deserialize<'de> for Models {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ModelsVisitor)
    }
}

struct ModelsVisitor;

impl<'de> serde::de::Visitor<'de> for ModelsVisitor {
    type Value = Models;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("the models by key")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Models, A::Error> {
        let mut models = BTreeMap::new();
        // Bounded by the input: each pass consumes one entry.
        while let Some(key) = map.next_key::<String>()? {
            let model = map.next_value()?;
            event_log::claim_last(&key);
            models.insert(key, model);
        }
        Ok(Models(models))
    }
}

/// A state file as read: the state, the file's size in bytes (0 when
/// missing) and the event log of each model whose window is in one.
struct Loaded {
    state: PacingState,
    size: usize,
    logs: BTreeMap<String, LogInfo>,
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
    /// atomic writes); an empty state when the file does not exist. When an
    /// event log it names is gone (a writer replaced it between this reading
    /// the state file and its log), it is read once more under the lock.
    pub fn load(&self) -> Result<PacingState, StoreError> {
        let target = self.target();
        match self.load_from(&target) {
            Err(LoadError::LogMissing(_)) => {
                let _lock = FileLock::acquire(&self.path)?;
                self.load_from(&target)
                    .map_err(LoadError::into_store_error)
                    .map(|loaded| loaded.state)
            }
            other => other
                .map_err(LoadError::into_store_error)
                .map(|loaded| loaded.state),
        }
    }

    /// The file the state path finally names: its event logs are beside it.
    fn target(&self) -> PathBuf {
        persist::resolve_symlinks(&self.path).unwrap_or_else(|_| self.path.clone())
    }

    fn load_from(&self, target: &Path) -> Result<Loaded, LoadError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    state: PacingState::default(),
                    size: 0,
                    logs: BTreeMap::new(),
                })
            }
            Err(source) => {
                return Err(LoadError::Store(
                    PersistError::Read {
                        path: self.path.clone(),
                        source,
                    }
                    .into(),
                ))
            }
        };
        let (parsed, outcome) = event_log::with_reader(target, || parse_state(&self.path, &bytes));
        match parsed {
            Ok(state) => Ok(Loaded {
                state,
                size: bytes.len(),
                logs: outcome.logs,
            }),
            // As for a state file with NUL bytes in it (see [`parse_state`]).
            Err(_) if outcome.lost => Ok(Loaded {
                state: PacingState::default(),
                size: bytes.len(),
                logs: BTreeMap::new(),
            }),
            Err(error) if outcome.missing => Err(LoadError::LogMissing(error)),
            Err(error) => Err(LoadError::Store(error)),
        }
    }
}

/// Why [`FileStore::load_from`] failed.
enum LoadError {
    /// A log the state file names is missing.
    LogMissing(StoreError),
    Store(StoreError),
}

impl LoadError {
    fn into_store_error(self) -> StoreError {
        match self {
            LoadError::LogMissing(error) | LoadError::Store(error) => error,
        }
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
        let target = self.target();
        let loaded = self
            .load_from(&target)
            .map_err(LoadError::into_store_error)?;
        // What the writer and the waking need of the loaded state, without
        // its events: the windows' change tracking says whether they changed.
        let old = loaded.state.without_events();
        let (outcome, mut new) = change(loaded.state)?;
        new.version = STATE_VERSION;
        new.prune();
        if !new.unchanged_from(&old) && (existed || !new.models.is_empty()) {
            write_state(&self.path, &target, &old, &loaded.logs, &new, loaded.size)?;
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
        let target = self.target();
        let removed = std::fs::remove_file(&self.path);
        // After the state file, which names them: a crash in between leaves
        // logs nothing names, swept by the next write that makes a log.
        event_log::remove_others(&target, &BTreeSet::new());
        match removed {
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

/// The state as a state file of format 4 holds it: each model's events in
/// the file or, by name, in its event log.
#[derive(Serialize)]
struct StateRef<'a> {
    version: u64,
    models: BTreeMap<&'a str, ModelRef<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    provider_holds: &'a BTreeMap<String, Hold>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

/// A model with its events in the file, or in the event log named.
#[derive(Serialize)]
#[serde(untagged)]
enum ModelRef<'a> {
    Inline(&'a ModelState),
    Logged(#[serde(serialize_with = "serialize_logged")] (&'a ModelState, &'a str)),
}

fn serialize_logged<S: serde::Serializer>(
    (model, log): &(&ModelState, &str),
    serializer: S,
) -> Result<S::Ok, S::Error> {
    model.logged(log).serialize(serializer)
}

/// Writes the state: first the event logs' changes (each model's new
/// events, and those whose reservation settled, written into their slots;
/// or a fresh log when the old one holds too many expired events or none
/// fits), then the state file naming them, compact JSON replaced
/// atomically but not synced (a pacing window's worth fades within a
/// minute; see [`persist::Durability::Unsynced`]), then the logs no longer
/// named are removed. A crash at any point leaves the old state file with
/// the logs it names intact in every slot it counts on (see
/// [`event_log`]), or the new one with its own.
///
/// `target` is the state file with symbolic links resolved; `size_hint`
/// the old file's size: the new one is about as large, so the buffer is
/// made once rather than grown by doubling.
fn write_state(
    path: &Path,
    target: &Path,
    old: &PacingState,
    old_logs: &BTreeMap<String, LogInfo>,
    new: &PacingState,
    size_hint: usize,
) -> Result<(), StoreError> {
    let write_error = |log: &Path, source: io::Error| PersistError::Write {
        path: log.to_owned(),
        source,
    };
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    for (key, model) in &new.models {
        let events = model.window().deque();
        let reuse = old_logs
            .get(key)
            .zip(old.models.get(key))
            .filter(|(log, _)| {
                let first = model.window().first_sequence();
                first
                    .checked_sub(log.base)
                    .is_some_and(|dead| dead <= DEAD_SLOTS_MAX.max(events.len() as u64))
            })
            .and_then(|(log, before)| Some((log, changed_runs(before, model)?)));
        if let Some((log, runs)) = reuse {
            let log_path = event_log::log_path(target, &log.name);
            let runs: Vec<&[Event]> = runs.iter().map(Vec::as_slice).collect();
            event_log::write_slots(&log_path, log.base, &runs)
                .map_err(|source| write_error(&log_path, source))?;
            names.insert(key, log.name.clone());
        } else if events.len() > event_log::INLINE_MAX {
            let name = event_log::new_name();
            let log_path = event_log::log_path(target, &name);
            event_log::create(&log_path, events.iter())
                .map_err(|source| write_error(&log_path, source))?;
            // The window is as private as the state file that names it.
            if let Ok(metadata) = std::fs::metadata(target) {
                std::fs::set_permissions(&log_path, metadata.permissions())
                    .map_err(|source| write_error(&log_path, source))?;
            }
            names.insert(key, name);
        }
    }
    let head = StateRef {
        version: new.version,
        models: new
            .models
            .iter()
            .map(|(key, model)| {
                let model = match names.get(key.as_str()) {
                    Some(name) => ModelRef::Logged((model, name)),
                    None => ModelRef::Inline(model),
                };
                (key.as_str(), model)
            })
            .collect(),
        provider_holds: &new.provider_holds,
        extra: &new.extra,
    };
    let mut bytes = Vec::with_capacity(size_hint + size_hint / 8 + 1024);
    serde_json::to_writer(&mut bytes, &head).map_err(|error| PersistError::Write {
        path: path.to_owned(),
        source: io::Error::other(error),
    })?;
    bytes.push(b'\n');
    persist::write_atomic_with(path, &bytes, persist::Durability::Unsynced)?;
    // Also the logs of writers killed between making a log and renaming the
    // state file: one look at the folder, paid only where logs are in use.
    if !names.is_empty() || !old_logs.is_empty() {
        let keep: BTreeSet<&str> = names.values().map(String::as_str).collect();
        event_log::remove_others(target, &keep);
    }
    Ok(())
}

/// The events of `model` its log's slots must be given, in runs of
/// consecutive ones: those admitted since `before` was loaded, those that
/// changed since (the window tracks them, see [`Changes`]), and those
/// `before` had in flight (their slot may hold what a writer that died
/// before its rename wrote, see [`event_log`]). `None` when `model`'s window
/// did not grow from `before`'s (made anew, or renumbered): its log is then
/// written afresh.
fn changed_runs(before: &ModelState, model: &ModelState) -> Option<Vec<Vec<Event>>> {
    let changes = model.window().changes()?;
    if before.window().changes().map(Changes::load) != Some(changes.load()) {
        return None;
    }
    let events = model.window().deque();
    let first = model.window().first_sequence();
    // The new window's events that were loaded: those before `loaded_next`.
    let loaded = usize::try_from(changes.loaded_next().saturating_sub(first))
        .unwrap_or(usize::MAX)
        .min(events.len());
    let in_flight = before.in_flight().map(|reservation| reservation.sequence);
    // Offsets into the new window; a command changes a few.
    let mut changed: Vec<usize> = changes
        .touched()
        .iter()
        .copied()
        .chain(in_flight)
        .filter_map(|sequence| usize::try_from(sequence.checked_sub(first)?).ok())
        .filter(|&offset| offset < loaded)
        .collect();
    changed.sort_unstable();
    changed.dedup();
    let mut runs: Vec<Vec<Event>> = Vec::new();
    let mut previous = None;
    for offset in changed {
        let Some(&event) = events.get(offset) else {
            continue;
        };
        match runs.last_mut() {
            Some(run) if previous == Some(offset.wrapping_sub(1)) => run.push(event),
            _ => runs.push(vec![event]),
        }
        previous = Some(offset);
    }
    if loaded < events.len() {
        runs.push(events.range(loaded..).copied().collect());
    }
    Some(runs)
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
        assert_eq!(json["version"], 4);
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
            (r#"{"version": 5, "models": {}}"#, "state format version 5"),
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
    /// A state whose model has `events` settled events at 1,000 ms.. and one
    /// reservation `rsv-open` in flight after them.
    fn state_with_a_long_window(events: u64) -> PacingState {
        let profile = Profile::new("acme", "m", 1_000_000, 1_000_000_000, 1.0, 10).unwrap();
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
        for index in 0..=events {
            let id = if index == events {
                "rsv-open".to_owned()
            } else {
                format!("rsv-{index}")
            };
            let decision = model.try_acquire(1_000 + index, &profile, &request, id.clone());
            assert!(matches!(decision, Ok(Decision::Granted(_))));
            if index < events {
                model
                    .record_success(1_000 + index, Some(&profile), &id, 2, 3)
                    .unwrap();
            }
        }
        let mut state = PacingState::default();
        state.models.insert("acme::m".into(), model);
        state
    }

    fn logs_of(store: &FileStore) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(store.path().parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().contains(".events-"))
            .collect();
        logs.sort();
        logs
    }

    #[test]
    fn a_long_window_goes_to_an_event_log_and_each_change_writes_only_its_slots() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let small = state_with_a_long_window(10);
        replace_with(&store, small.clone());
        assert!(logs_of(&store).is_empty(), "a small window stays inline");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(store.path(), private).unwrap();
        }
        let state = state_with_a_long_window(event_log::INLINE_MAX as u64 + 100);
        replace_with(&store, state.clone());
        let [log] = logs_of(&store).try_into().unwrap();
        let json: Value = serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(json["version"], 4);
        let events = &json["models"]["acme::m"]["events"];
        assert_eq!(events["first"], 0);
        assert_eq!(events["count"], event_log::INLINE_MAX + 101);
        assert!(log.ends_with(format!(
            "state.json.events-{}",
            events["log"].as_str().unwrap()
        )));
        assert_eq!(store.load().unwrap(), state);
        // Settling the reservation rewrites its slot in place: the log keeps
        // its size and its name, and the state file stays small.
        let before = std::fs::metadata(&log).unwrap().len();
        let profile = Profile::new("acme", "m", 1_000_000, 1_000_000_000, 1.0, 10).unwrap();
        store
            .measure_and_replace(|mut state| {
                let model = state.models.get_mut("acme::m").unwrap();
                model
                    .record_success(2_000, Some(&profile), "rsv-open", 1, 1)
                    .unwrap();
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        let settled = store.load().unwrap();
        assert_eq!(settled.models["acme::m"].in_flight().count(), 0);
        assert_eq!(
            settled.models["acme::m"].window().tokens(),
            (INLINE + 99) * 5 + 2
        );
        assert_eq!(std::fs::metadata(&log).unwrap().len(), before);
        assert_eq!(logs_of(&store), std::slice::from_ref(&log));
        assert!(std::fs::metadata(store.path()).unwrap().len() < 1_000);
    }

    const INLINE: u64 = event_log::INLINE_MAX as u64 + 1;

    #[test]
    fn a_window_that_did_not_grow_from_the_one_loaded_gets_a_fresh_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        replace_with(&store, state_with_a_long_window(INLINE + 10));
        let [old_log] = logs_of(&store).try_into().unwrap();
        // Another window under the same key, with different events in the
        // same slots: written as a new log, not as changes to the old one.
        let mut other = state_with_a_long_window(INLINE + 20);
        let model = other.models.get_mut("acme::m").unwrap();
        let profile = Profile::new("acme", "m", 1_000_000, 1_000_000_000, 1.0, 10).unwrap();
        model
            .record_success(3_000, Some(&profile), "rsv-open", 40, 2)
            .unwrap();
        assert!(model.window().changes().is_none(), "never loaded");
        replace_with(&store, other.clone());
        let [new_log] = logs_of(&store).try_into().unwrap();
        assert_ne!(new_log, old_log);
        assert_eq!(store.load().unwrap(), other);
        // Grown from its load, it keeps its log and only its changes land.
        store
            .measure_and_replace(|mut state| {
                let model = state.models.get_mut("acme::m").unwrap();
                model.release(3_100, None, "rsv-none").ok();
                let request = AcquireRequest {
                    estimated_input_tokens: 3,
                    max_output_tokens: 4,
                    owner: Owner::current(),
                    lease: DEFAULT_LEASE,
                    bucket: None,
                };
                let granted = model.try_acquire(3_100, &profile, &request, "rsv-next".into());
                assert!(matches!(granted, Ok(Decision::Granted(_))));
                other = state.clone();
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        assert_eq!(logs_of(&store), std::slice::from_ref(&new_log));
        assert_eq!(store.load().unwrap(), other);
    }

    #[test]
    fn a_slot_settled_by_a_writer_that_died_before_its_rename_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let state = state_with_a_long_window(INLINE + 10);
        replace_with(&store, state.clone());
        let [log] = logs_of(&store).try_into().unwrap();
        // What a `record` that died between its slot write and its rename
        // leaves: the open reservation's slot settled, the state file not.
        let open = state.models["acme::m"].in_flight().next().unwrap().clone();
        let settled = Event {
            sequence: open.sequence,
            at: open.acquired_at,
            requests: 0,
            tokens: 0,
        };
        event_log::write_slots(&log, 0, &[&[settled]]).unwrap();
        assert_eq!(
            store.load().unwrap(),
            state,
            "the reservation still counts in full"
        );
        // Settled for real at its estimate, the slot is written again.
        let profile = Profile::new("acme", "m", 1_000_000, 1_000_000_000, 1.0, 10).unwrap();
        store
            .measure_and_replace(|mut state| {
                let model = state.models.get_mut("acme::m").unwrap();
                model
                    .record_success(2_000, Some(&profile), "rsv-open", 3, 4)
                    .unwrap();
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        let event = *store.load().unwrap().models["acme::m"]
            .window()
            .event(open.sequence)
            .unwrap();
        assert_eq!((event.requests, event.tokens), (1, 7));
    }

    #[test]
    fn a_log_full_of_expired_slots_is_replaced_and_the_old_one_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let events = DEAD_SLOTS_MAX + 2_000 + 2 * INLINE;
        replace_with(&store, state_with_a_long_window(events));
        let [old_log] = logs_of(&store).try_into().unwrap();
        // The oldest events expire: within the bound, the log stays.
        let expire = |now: u64| {
            store
                .measure_and_replace(|mut state| {
                    let model = state.models.get_mut("acme::m").unwrap();
                    model.release(now, None, "rsv-open").ok();
                    model.refresh(now, None);
                    Ok::<_, StoreError>(((), state))
                })
                .unwrap();
        };
        expire(62_000 + 2_000);
        assert_eq!(logs_of(&store), std::slice::from_ref(&old_log));
        let kept = store.load().unwrap();
        expire(62_000 + DEAD_SLOTS_MAX + 100);
        let [new_log] = logs_of(&store).try_into().unwrap();
        assert_ne!(new_log, old_log);
        let model = &store.load().unwrap().models["acme::m"];
        assert!(model.window().events().count() > event_log::INLINE_MAX);
        assert!(model.window().events().count() < kept.models["acme::m"].window().events().count());
        assert_eq!(
            std::fs::metadata(&new_log).unwrap().len(),
            16 + 16 * model.window().events().count() as u64
        );
        // Everything expired: back inline, no log left.
        expire(10_000_000);
        assert!(logs_of(&store).is_empty());
    }

    #[test]
    fn a_log_cut_short_reads_as_empty_and_a_missing_one_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        replace_with(&store, state_with_a_long_window(INLINE + 10));
        let [log] = logs_of(&store).try_into().unwrap();
        let bytes = std::fs::read(&log).unwrap();
        std::fs::write(&log, &bytes[..bytes.len() - 8]).unwrap();
        assert_eq!(store.load().unwrap(), PacingState::default());
        replace_with(&store, state_with_a_long_window(INLINE + 10));
        let [log] = logs_of(&store).try_into().unwrap();
        std::fs::remove_file(&log).unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(
            error.contains("is invalid: events: the event log"),
            "{error}"
        );
        assert!(error.contains(&log.display().to_string()), "{error}");
    }

    #[test]
    fn a_format_3_file_is_upgraded_into_a_log_and_reset_removes_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state.json"));
        let state = state_with_a_long_window(INLINE + 10);
        let mut json = serde_json::to_value(&state).unwrap();
        json["version"] = 3.into();
        std::fs::write(store.path(), json.to_string()).unwrap();
        assert_eq!(store.load().unwrap().models, state.models);
        store
            .measure_and_replace(|mut state| {
                state.extra.insert("touched".into(), true.into());
                Ok::<_, StoreError>(((), state))
            })
            .unwrap();
        assert_eq!(logs_of(&store).len(), 1);
        assert_eq!(store.load().unwrap().models, state.models);
        assert!(store.clear().unwrap());
        assert!(logs_of(&store).is_empty());
    }
}
