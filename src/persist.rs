//! Files on disk: JSON reads that report where a file is broken, atomic
//! writes, and an exclusive lock held across a read-modify-write.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

/// How long [`FileLock::acquire`] waits for another holder. Holders keep the
/// lock for one read-modify-write of a small file (milliseconds), so a lock
/// held this long belongs to a stuck or stopped process.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong reading, writing or locking one of specsmith's files.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file exists but cannot be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The file is not what specsmith expects; `line` and `column` are 1-based.
    #[error("`{path}` is invalid at line {line}, column {column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The file (or its temporary sibling) cannot be written.
    #[error("cannot write `{path}`")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The lock file beside a data file cannot be opened or locked.
    #[error("cannot lock `{path}`")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Another process held the lock for longer than any update takes.
    #[error("`{path}` stayed locked for {waited:?}: is another specsmith-rs stuck holding it?")]
    LockTimedOut {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
}

/// Reads and parses a JSON file; `Ok(None)` when it does not exist.
///
/// A file that does not parse, or whose values break the type's rules, is an
/// error naming the file, line and column, never an empty default: treating a
/// corrupt file as empty is how the next write would lose everything in it.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    parse_json(path, &bytes).map(Some)
}

/// Parses JSON bytes that came from `path`, for error messages.
pub fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, PersistError> {
    serde_json::from_slice(bytes).map_err(|error| PersistError::Invalid {
        path: path.to_owned(),
        line: error.line().max(1),
        column: error.column().max(1),
        message: strip_position(&error.to_string()),
    })
}

/// serde_json appends " at line L column C" to its messages; we report the
/// position in our own words, so drop it from the text.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Serialises `value` as pretty JSON (with a final newline) and writes it atomically.
pub fn write_json<T: serde::Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<(), PersistError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|error| PersistError::Write {
        path: path.to_owned(),
        source: io::Error::other(error),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the
/// new one, never a torn one: a temporary file in the same folder is written,
/// flushed and synced, then renamed over `path`. Creates the folder if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let write_error = |source| PersistError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".specsmith-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_error)?;
    temp.write_all(bytes).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(path)
        .map_err(|error| write_error(error.error))?;
    sync_dir(dir);
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Makes the rename itself durable. Best effort: not every platform or file
/// system lets a folder be opened and synced, and the data is already safe.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// An exclusive lock on `<data file>.lock`, released when dropped.
///
/// The lock lives on a sidecar file because [`write_atomic`] replaces the data
/// file by rename, which would silently drop a lock held on the old inode.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Waits until this process holds the lock beside `data_file`, at most
    /// [`LOCK_TIMEOUT`].
    pub fn acquire(data_file: &Path) -> Result<Self, PersistError> {
        Self::acquire_within(data_file, LOCK_TIMEOUT)
    }

    /// Waits until this process holds the lock beside `data_file`, at most `timeout`.
    pub fn acquire_within(data_file: &Path, timeout: Duration) -> Result<Self, PersistError> {
        let path = lock_path(data_file);
        let lock_error = |source| PersistError::Lock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(parent_dir(&path)).map_err(lock_error)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(lock_error)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        // Bounded by `timeout`: each pass either takes the lock, fails, or
        // sleeps no longer than what is left.
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file }),
                Err(std::fs::TryLockError::Error(source)) => return Err(lock_error(source)),
                Err(std::fs::TryLockError::WouldBlock) => {}
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(PersistError::LockTimedOut { path, waited });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The lock file that guards `data_file`: the same name with `.lock` appended.
pub fn lock_path(data_file: &Path) -> PathBuf {
    let mut name = data_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let value: Option<serde_json::Value> = read_json(&dir.path().join("absent.json")).unwrap();
        assert!(value.is_none());
    }

    #[test]
    fn corrupt_file_reports_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "[\n  {\"a\": 1,,}\n]").unwrap();
        let error = read_json::<serde_json::Value>(&path).unwrap_err();
        match error {
            PersistError::Invalid { line, column, .. } => assert_eq!((line, column), (2, 11)),
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("data.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("data.json")]);
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("state.json");
        let held = FileLock::acquire(&data).unwrap();
        let other = File::options().write(true).open(lock_path(&data)).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        assert!(other.try_lock().is_ok());
    }

    #[test]
    fn a_lock_held_too_long_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("state.json");
        let _held = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(&data))
            .and_then(|file| file.lock().map(|()| file))
            .unwrap();
        let error = FileLock::acquire_within(&data, Duration::from_millis(30)).unwrap_err();
        assert!(
            matches!(error, PersistError::LockTimedOut { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("state.json.lock"), "{error}");
    }
}
