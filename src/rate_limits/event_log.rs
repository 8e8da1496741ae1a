//! A model's window of events in a file of its own beside the state file,
//! so that a command reads and writes the few events it changes rather than
//! the whole window (state format 4; see the state file section of
//! docs/pacing.md).
//!
//! The log is a 16-byte header (`SSEVLOG1`, then the sequence number of slot
//! 0 as a little-endian `u64`) and one 16-byte slot per event, slot `k`
//! holding event `base + k`: its time (Unix-epoch milliseconds) and its
//! token count with two flags in the top bits, `WRITTEN` (always set, so a
//! slot a power loss left zeroed is told from a real one) and `RELEASED`.
//! The state file says which log a model uses and which of its slots are
//! the window (`{"log": NAME, "first": S, "count": N}`); slots past them are
//! left-overs of a writer that died before its state file was renamed, and
//! are ignored. A slot is only rewritten in place while its event is in
//! flight (acquired, not yet recorded or released); for those the state
//! file's reservation, not the slot, says what the event counts, so a slot
//! changed by a writer that died before its rename is never believed.
//!
//! The loader reaches the log from inside serde (a model's `events` field),
//! which has no way to pass the folder in: [`with_reader`] puts it in a
//! thread-local for the length of one parse.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::window::Event;

/// The log's first 8 bytes.
const MAGIC: &[u8; 8] = b"SSEVLOG1";
/// Bytes before slot 0: the magic and the sequence number of slot 0.
const HEADER: u64 = 16;
/// Bytes per event.
const SLOT: u64 = 16;
/// Set in every slot specsmith writes.
const WRITTEN: u64 = 1 << 63;
/// Set in the slot of an event released unsent (it counts no request).
const RELEASED: u64 = 1 << 62;
/// The token count's bits.
const TOKENS: u64 = RELEASED - 1;

/// How many bytes of slots a read takes at a time (1,024 slots).
const READ_CHUNK: usize = 1_024 * SLOT as usize;

/// Windows of at most this many events stay in the state file itself: a
/// second file costs more than it saves on a window this small.
pub const INLINE_MAX: usize = 256;

/// A log is rewritten from its window's oldest event once more than this
/// many slots before it have expired, and more of them than the window
/// holds: the file stays at most about twice the window, and the rewrite
/// (one sequential write) comes once per that many events.
pub const DEAD_SLOTS_MAX: u64 = 4_096;

/// The log a model's window was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// The name the state file gives it (random hex).
    pub name: String,
    /// The sequence number of its slot 0.
    pub base: u64,
}

/// The log `name` of the state file `state`: `STATE.events-NAME` in the same
/// folder.
pub fn log_path(state: &Path, name: &str) -> PathBuf {
    let mut file_name = state.file_name().unwrap_or_default().to_os_string();
    file_name.push(".events-");
    file_name.push(name);
    state.with_file_name(file_name)
}

/// A fresh log name, unique across processes without coordination.
pub fn new_name() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// Why a log's events cannot be read.
#[derive(Debug)]
pub enum ReadError {
    /// The log is shorter than the state file says, or holds a slot never
    /// written: what a power loss leaves of data not yet written back.
    Lost,
    /// The log cannot be opened or read (a missing log included).
    Io(io::Error),
    /// The log is not one, or does not hold the events asked for.
    Invalid(String),
}

/// Reads events `first .. first + count` of the log at `path`; returns its
/// base too.
pub fn read(path: &Path, first: u64, count: u64) -> Result<(u64, Vec<Event>), ReadError> {
    let mut file = File::open(path).map_err(ReadError::Io)?;
    let mut header = [0u8; HEADER as usize];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Err(ReadError::Lost),
        Err(error) => return Err(ReadError::Io(error)),
    }
    if header.iter().all(|&byte| byte == 0) {
        return Err(ReadError::Lost);
    }
    if &header[..8] != MAGIC {
        return Err(ReadError::Invalid("is not an event log".to_owned()));
    }
    let base = u64::from_le_bytes(header[8..].try_into().unwrap_or_default());
    let offset = first
        .checked_sub(base)
        .and_then(|slots| slots.checked_mul(SLOT))
        .and_then(|bytes| bytes.checked_add(HEADER))
        .ok_or_else(|| {
            ReadError::Invalid(format!("starts at event {base}, after event {first}"))
        })?;
    let length = count
        .checked_mul(SLOT)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| ReadError::Invalid(format!("cannot hold {count} events")))?;
    file.seek(SeekFrom::Start(offset)).map_err(ReadError::Io)?;
    // Read through one small buffer, not one the size of the window: a
    // short-lived process faults in every fresh page it touches, and at
    // 10,000 events a whole-window buffer was 40 of them.
    let mut events = Vec::with_capacity(length / SLOT as usize);
    let mut buffer = vec![0u8; length.min(READ_CHUNK)];
    let mut unwritten = false;
    let mut left = length;
    while left > 0 {
        let piece = &mut buffer[..left.min(READ_CHUNK)];
        match file.read_exact(piece) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ReadError::Lost)
            }
            Err(error) => return Err(ReadError::Io(error)),
        }
        // One pass, no branch but the flag: the loop a long window loads in.
        let start = first + (events.len() as u64);
        events.extend(
            (start..)
                .zip(piece.chunks_exact(SLOT as usize))
                .map(|(sequence, slot)| {
                    let mut at = [0u8; 8];
                    let mut tokens = [0u8; 8];
                    at.copy_from_slice(&slot[..8]);
                    tokens.copy_from_slice(&slot[8..]);
                    let tokens = u64::from_le_bytes(tokens);
                    unwritten |= tokens & WRITTEN == 0;
                    Event {
                        sequence,
                        at: u64::from_le_bytes(at),
                        requests: u64::from(tokens & RELEASED == 0),
                        tokens: tokens & TOKENS,
                    }
                }),
        );
        left -= piece.len();
    }
    if unwritten {
        return Err(ReadError::Lost);
    }
    Ok((base, events))
}

/// The bytes of `events`' slots.
fn slots<'a>(events: impl IntoIterator<Item = &'a Event>, into: &mut Vec<u8>) {
    for event in events {
        let flags = if event.requests == 0 {
            WRITTEN | RELEASED
        } else {
            WRITTEN
        };
        into.extend_from_slice(&event.at.to_le_bytes());
        into.extend_from_slice(&(event.tokens.min(TOKENS) | flags).to_le_bytes());
    }
}

/// Writes a new log at `path` holding `events` (consecutive, the first one
/// in slot 0). The name is fresh, so no reader can see it half written:
/// nothing names it until the state file is renamed over.
pub fn create<'a>(
    path: &Path,
    events: impl ExactSizeIterator<Item = &'a Event>,
) -> io::Result<u64> {
    let mut events = events.peekable();
    let base = events.peek().map_or(0, |event| event.sequence);
    let mut bytes = Vec::with_capacity(HEADER as usize + events.len() * SLOT as usize);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&base.to_le_bytes());
    slots(events, &mut bytes);
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(&bytes)?;
    Ok(base)
}

/// Writes `runs` (each a run of consecutive events) into their slots of the
/// log at `path` whose slot 0 is event `base`.
pub fn write_slots(path: &Path, base: u64, runs: &[&[Event]]) -> io::Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let mut file = OpenOptions::new().write(true).open(path)?;
    let mut bytes = Vec::new();
    for run in runs {
        let Some(first) = run.first() else { continue };
        let offset = first
            .sequence
            .checked_sub(base)
            .and_then(|slots| slots.checked_mul(SLOT))
            .and_then(|bytes| bytes.checked_add(HEADER))
            .ok_or_else(|| io::Error::other("an event before the log's first slot"))?;
        bytes.clear();
        slots(run.iter(), &mut bytes);
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&bytes)?;
    }
    Ok(())
}

/// Removes the logs of the state file `state` that `keep` does not name
/// (those of models gone, replaced, or of writers that died between writing
/// a log and renaming the state file). Errors are ignored: a log left
/// behind costs only its space, and goes at the next sweep.
pub fn remove_others(state: &Path, keep: &BTreeSet<&str>) {
    let Some(folder) = state.parent() else { return };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let mut prefix = state.file_name().unwrap_or_default().to_os_string();
    prefix.push(".events-");
    let Some(prefix) = prefix.to_str() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    // Bounded by the folder's entries.
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
        else {
            continue;
        };
        if !keep.contains(name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// What one parse found of the logs it read.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// The log each model's window came from, in the order read; each is
    /// claimed by its model's key with [`claim_last`].
    pending: Option<LogInfo>,
    /// By model key.
    pub logs: BTreeMap<String, LogInfo>,
    /// A log was cut short by a power loss: the state is to be read as empty.
    pub lost: bool,
    /// A log the state file names does not exist (a reader without the
    /// lock may have raced a writer that replaced it).
    pub missing: bool,
}

struct Reader {
    /// The state file, symbolic links resolved: its logs are beside it.
    state: PathBuf,
    outcome: ReadOutcome,
}

thread_local! {
    static READER: RefCell<Option<Reader>> = const { RefCell::new(None) };
}

/// Runs `parse` with the logs of the state file `state` readable by
/// [`read_for_parse`]; returns its result and what was read.
pub fn with_reader<T>(state: &Path, parse: impl FnOnce() -> T) -> (T, ReadOutcome) {
    let previous = READER.with(|reader| {
        reader.replace(Some(Reader {
            state: state.to_owned(),
            outcome: ReadOutcome::default(),
        }))
    });
    let result = parse();
    let reader = READER.with(|reader| reader.replace(previous));
    (
        result,
        reader.map(|reader| reader.outcome).unwrap_or_default(),
    )
}

/// Reads events `first .. first + count` of the log `name` of the state
/// file being parsed; `Err` is the message for the parse error.
pub fn read_for_parse(name: &str, first: u64, count: u64) -> Result<Vec<Event>, String> {
    READER.with(|reader| {
        let mut reader = reader.borrow_mut();
        let Some(reader) = reader.as_mut() else {
            return Err("events in an event log are read only with their state file".to_owned());
        };
        if name.is_empty() || !name.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(format!("`log` `{name}` is not an event log name"));
        }
        let path = log_path(&reader.state, name);
        match read(&path, first, count) {
            Ok((base, events)) => {
                reader.outcome.pending = Some(LogInfo {
                    name: name.to_owned(),
                    base,
                });
                Ok(events)
            }
            Err(ReadError::Lost) => {
                reader.outcome.lost = true;
                Err(format!("the event log `{}` was cut short", path.display()))
            }
            Err(ReadError::Io(error)) => {
                if error.kind() == io::ErrorKind::NotFound {
                    reader.outcome.missing = true;
                }
                Err(format!(
                    "the event log `{}` cannot be read: {error}",
                    path.display()
                ))
            }
            Err(ReadError::Invalid(message)) => {
                Err(format!("the event log `{}` {message}", path.display()))
            }
        }
    })
}

/// Gives the log read last to the model `key`, if its window came from one.
pub fn claim_last(key: &str) {
    READER.with(|reader| {
        if let Some(reader) = reader.borrow_mut().as_mut() {
            if let Some(info) = reader.outcome.pending.take() {
                reader.outcome.logs.insert(key.to_owned(), info);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sequence: u64, at: u64, requests: u64, tokens: u64) -> Event {
        Event {
            sequence,
            at,
            requests,
            tokens,
        }
    }

    #[test]
    fn slots_round_trip_and_are_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.events-ab");
        let events = [
            event(7, 1_000, 1, 30),
            event(8, 1_004, 0, 0),
            event(9, 1_004, 1, 150),
        ];
        assert_eq!(create(&path, events.iter()).unwrap(), 7);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16 + 3 * 16);
        assert_eq!(read(&path, 7, 3).unwrap(), (7, events.to_vec()));
        assert_eq!(read(&path, 8, 2).unwrap().1, events[1..].to_vec());
        let changed = [event(9, 1_004, 1, 42), event(10, 1_010, 1, 5)];
        write_slots(&path, 7, &[&changed]).unwrap();
        assert_eq!(read(&path, 9, 2).unwrap().1, changed.to_vec());
        assert!(
            create(&path, events.iter()).is_err(),
            "never over another log"
        );
    }

    #[test]
    fn a_window_longer_than_one_read_comes_back_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.events-cd");
        let slots_per_read = (READ_CHUNK / SLOT as usize) as u64;
        let events: Vec<Event> = (100..100 + 2 * slots_per_read + 7)
            .map(|sequence| event(sequence, 5_000 + sequence, sequence % 2, sequence * 3))
            .collect();
        create(&path, events.iter()).unwrap();
        assert_eq!(
            read(&path, 100, events.len() as u64).unwrap(),
            (100, events.clone())
        );
        // Starting mid-log and ending on a read's boundary.
        let from = 100 + 5;
        assert_eq!(
            read(&path, from, slots_per_read).unwrap().1,
            events[5..5 + slots_per_read as usize].to_vec()
        );
        // A log cut short in a later read is lost, not half read.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(16 + (slots_per_read + 3) * 16).unwrap();
        assert!(matches!(
            read(&path, 100, events.len() as u64),
            Err(ReadError::Lost)
        ));
    }

    #[test]
    fn a_short_or_zeroed_log_is_lost_and_a_foreign_one_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        create(&path, [event(0, 5, 1, 1)].iter()).unwrap();
        assert!(matches!(read(&path, 0, 2), Err(ReadError::Lost)));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend([0u8; 16]);
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path, 0, 2), Err(ReadError::Lost)));
        std::fs::write(&path, [0u8; 40]).unwrap();
        assert!(matches!(read(&path, 0, 1), Err(ReadError::Lost)));
        std::fs::write(&path, b"not a log, not a log, not a log!").unwrap();
        assert!(matches!(read(&path, 0, 1), Err(ReadError::Invalid(_))));
        create(&dir.path().join("later"), [event(5, 5, 1, 1)].iter()).unwrap();
        assert!(matches!(
            read(&dir.path().join("later"), 4, 1),
            Err(ReadError::Invalid(_))
        ));
        assert!(matches!(
            read(&dir.path().join("none"), 0, 1),
            Err(ReadError::Io(_))
        ));
    }

    #[test]
    fn only_the_logs_not_kept_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        for name in ["aa", "bb"] {
            create(&log_path(&state, name), std::iter::empty()).unwrap();
        }
        std::fs::write(dir.path().join("other.events-cc"), "").unwrap();
        remove_others(&state, &BTreeSet::from(["bb"]));
        assert!(!log_path(&state, "aa").exists());
        assert!(log_path(&state, "bb").exists());
        assert!(dir.path().join("other.events-cc").exists());
    }
}
