//! Files on disk: JSON reads that report where a file is broken, atomic
//! writes, and an exclusive lock held across a read-modify-write.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::rate_limits::clock::{Clock as _, SystemClock};
use crate::rate_limits::owner::{host_name, liveness, Liveness, Owner};

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
    /// The file exists and this process may not change it.
    #[error("`{path}` is read-only: make it writable (`chmod u+w`) to change it")]
    ReadOnly {
        /// The file (the final target when the path is a symbolic link).
        path: PathBuf,
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

/// How hard a write works to outlive the machine, not just the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The data and the rename are synced to the disk before the write
    /// returns: a power loss after it loses nothing. For files a user keeps
    /// (profiles).
    Synced,
    /// No sync: the kernel writes the file back in its own time (within
    /// about 30 s on Linux). A crash of the process still leaves the old
    /// file or the new one; a power loss or kernel crash may lose the last
    /// writes (see docs/pacing.md for what that means for pacing state).
    /// For state whose worth fades within a minute. About 5 ms cheaper a
    /// write on a shared disk.
    Unsynced,
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the
/// new one, never a torn one: a temporary file in the same folder is written,
/// flushed and synced, then renamed over `path`. Creates the folder if needed.
///
/// - A symbolic link is written through: the temporary goes beside the final
///   target and replaces it, so the link stays a link.
/// - An existing file keeps its permission bits; a new file gets the umask's
///   (`0666 & !umask`), as any program's would.
/// - A file that cannot be written ([`PersistError::ReadOnly`]) is refused,
///   not replaced.
/// - Temporaries that killed writers left in the folder are removed
///   ([`remove_stale_temporaries`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    write_atomic_with(path, bytes, Durability::Synced)
}

/// [`write_atomic`] with the syncs `durability` asks for.
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    durability: Durability,
) -> Result<(), PersistError> {
    let target = resolve_symlinks(path)?;
    let write_error = |source| PersistError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = parent_dir(&target);
    let existing = match std::fs::metadata(&target) {
        Ok(metadata) => Some(metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(source) => return Err(write_error(source)),
    };
    if let Some(metadata) = &existing {
        if !writable(&target, metadata) {
            return Err(PersistError::ReadOnly {
                path: target.clone(),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let prefix = temporary_prefix();
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMPORARY_SUFFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The kernel applies the umask to this mode, which is what a new
        // file should get; an existing file's mode is restored below.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(write_error)?;
    if let Some(metadata) = &existing {
        temp.as_file()
            .set_permissions(metadata.permissions())
            .map_err(write_error)?;
    }
    temp.write_all(bytes).map_err(write_error)?;
    if durability == Durability::Synced {
        temp.as_file().sync_all().map_err(write_error)?;
    }
    temp.persist(&target)
        .map_err(|error| write_error(error.error))?;
    if durability == Durability::Synced {
        sync_dir(dir);
    }
    remove_stale_temporaries(dir, wall_clock_now());
    Ok(())
}

/// Now, from the one reader of system time.
fn wall_clock_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(SystemClock.now())
}

/// Every temporary file specsmith writes starts with this.
pub const TEMPORARY_PREFIX: &str = ".specsmith-";
/// Every temporary file specsmith writes ends with this.
pub const TEMPORARY_SUFFIX: &str = ".tmp";
/// A temporary whose writer cannot be checked (another host, a name from an
/// older version) is stale once it is this old: a write takes milliseconds.
pub const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(60 * 60);
/// How many symbolic links a data file's path may go through.
const MAX_SYMLINKS: usize = 40;

/// `.specsmith-<host>-<pid>-<start time>-`: who is writing, so the next
/// writer can tell a dead writer's leftover from a live one's work.
fn temporary_prefix() -> String {
    let me = Owner::current();
    format!(
        "{TEMPORARY_PREFIX}{}-{}-{}-",
        file_name_host(&me.host),
        me.pid,
        me.start_time.unwrap_or(0)
    )
}

/// The host name as it can appear in a file name.
fn file_name_host(host: &str) -> String {
    host.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The writer a temporary's name records, when it records one.
fn temporary_writer(name: &str) -> Option<Owner> {
    let inner = name
        .strip_prefix(TEMPORARY_PREFIX)?
        .strip_suffix(TEMPORARY_SUFFIX)?;
    let mut parts = inner.rsplitn(4, '-');
    let _random = parts.next()?;
    let start_time: u64 = parts.next()?.parse().ok()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    let host = parts.next().filter(|host| !host.is_empty())?;
    Some(Owner {
        host: host.to_owned(),
        pid,
        start_time: (start_time != 0).then_some(start_time),
        process_group: None,
    })
}

/// Removes the `.specsmith-*.tmp` files in `dir` that no live writer will
/// rename: those whose writer (named in the file name) was a process on this
/// host that is gone, and any older than [`STALE_TEMPORARY_AGE`] whose writer
/// cannot be checked. A live writer's temporary is never touched. Best effort:
/// a file that cannot be looked at or removed is left.
pub fn remove_stale_temporaries(dir: &Path, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let this_host = file_name_host(&host_name());
    let mut removed = 0;
    // Bounded by the folder's entries, read once.
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(TEMPORARY_PREFIX) || !name.ends_with(TEMPORARY_SUFFIX) {
            continue;
        }
        let Ok(metadata) = entry.path().symlink_metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let stale = match temporary_writer(name).map(|writer| liveness(&writer, &this_host)) {
            Some(Liveness::Dead) => true,
            Some(Liveness::Alive) => false,
            Some(Liveness::Unknown) | None => metadata
                .modified()
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= STALE_TEMPORARY_AGE),
        };
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The file `path` finally names, following symbolic links (a dangling one
/// names the file it would create).
pub fn resolve_symlinks(path: &Path) -> Result<PathBuf, PersistError> {
    let mut current = path.to_owned();
    for _ in 0..MAX_SYMLINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(&current).map_err(|source| PersistError::Write {
                        path: path.to_owned(),
                        source,
                    })?;
                current = parent_dir(&current).join(target);
            }
            _ => return Ok(current),
        }
    }
    Err(PersistError::Write {
        path: path.to_owned(),
        source: io::Error::other(format!("more than {MAX_SYMLINKS} symbolic links")),
    })
}

/// Whether this process may change the existing file `path`. A file with no
/// write permission for anyone is read-only for everyone, root included:
/// replacing it by rename would otherwise succeed wherever the folder is writable.
fn writable(path: &Path, metadata: &std::fs::Metadata) -> bool {
    if metadata.permissions().readonly() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return true;
        };
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
        let result = unsafe { libc::access(c_path.as_ptr(), libc::W_OK) };
        if result != 0 {
            let error = io::Error::last_os_error();
            return !matches!(
                error.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    true
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
        // Beside the final target, so every path that reaches one file through
        // links shares one lock.
        let target = resolve_symlinks(data_file).unwrap_or_else(|_| data_file.to_owned());
        let path = lock_path(&target);
        let lock_error = |source| PersistError::Lock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(parent_dir(&path)).map_err(lock_error)?;
        let file = match OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(file) => file,
            // Another user's lock file in a shared folder: a lock needs no
            // write access, only an open file.
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied && path.exists() => {
                File::open(&path).map_err(lock_error)?
            }
            Err(error) => return Err(lock_error(error)),
        };
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

impl FileLock {
    /// The open lock file.
    pub fn file(&self) -> &File {
        &self.file
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

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        std::fs::write(&path, "old").unwrap();
        for wanted in [0o664, 0o640, 0o600] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted)).unwrap();
            write_atomic(&path, b"new").unwrap();
            assert_eq!(mode(&path), wanted);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let target = shared.join("profiles.json");
        std::fs::write(&target, "old").unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir(&project).unwrap();
        let link = project.join("profiles.json");
        std::os::unix::fs::symlink("../shared/profiles.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let names = |dir: &Path| -> Vec<_> {
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(&shared),
            vec![std::ffi::OsString::from("profiles.json")]
        );
        assert_eq!(
            names(&project),
            vec![std::ffi::OsString::from("profiles.json")]
        );
        let _lock = FileLock::acquire(&link).unwrap();
        assert!(
            shared.join("profiles.json.lock").exists(),
            "the lock lives beside the target"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_nobody_may_write_is_refused_and_left_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        // The mode check applies to root too, so this holds when tests run as root.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        std::fs::write(&path, "keep").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let error = write_atomic(&path, b"new").unwrap_err();
        assert!(matches!(error, PersistError::ReadOnly { .. }), "{error:?}");
        assert!(
            error.to_string().contains("data.json` is read-only"),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }

    fn temporary(dir: &Path, name: &str, age: Duration) -> PathBuf {
        let path = dir.join(name);
        let file = File::create(&path).unwrap();
        file.set_modified(wall_clock_now() - age).unwrap();
        path
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_temporaries_of_dead_or_long_gone_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let host = file_name_host(&host_name());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let me = Owner::current();
        let second = Duration::from_secs(1);
        let dead = temporary(
            dir.path(),
            &format!(".specsmith-{host}-{dead_pid}-0-abc123.tmp"),
            second,
        );
        let live = temporary(
            dir.path(),
            &format!(
                ".specsmith-{host}-{}-{}-def456.tmp",
                me.pid,
                me.start_time.unwrap_or(0)
            ),
            Duration::from_secs(7200),
        );
        let foreign_young = temporary(dir.path(), ".specsmith-elsewhere-1-0-ghi789.tmp", second);
        let foreign_old = temporary(
            dir.path(),
            ".specsmith-elsewhere-2-0-jkl012.tmp",
            Duration::from_secs(7200),
        );
        let old_format_young = temporary(dir.path(), ".specsmith-Ab12Cd.tmp", second);
        let old_format_old = temporary(
            dir.path(),
            ".specsmith-Ef34Gh.tmp",
            Duration::from_secs(7200),
        );
        let unrelated = temporary(dir.path(), "notes.tmp", Duration::from_secs(7200));
        assert_eq!(remove_stale_temporaries(dir.path(), wall_clock_now()), 3);
        for gone in [&dead, &foreign_old, &old_format_old] {
            assert!(!gone.exists(), "{}", gone.display());
        }
        for kept in [&live, &foreign_young, &old_format_young, &unrelated] {
            assert!(kept.exists(), "{}", kept.display());
        }
    }

    #[test]
    fn a_write_names_its_temporary_after_its_writer() {
        let name = format!("{}x.tmp", temporary_prefix());
        let writer = temporary_writer(&name).unwrap();
        let me = Owner::current();
        assert_eq!((writer.pid, writer.start_time), (me.pid, me.start_time));
        assert_eq!(writer.host, file_name_host(&me.host));
        assert!(temporary_writer(".specsmith-Ab12Cd.tmp").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_this_user_may_not_write_still_locks() {
        use std::os::unix::fs::PermissionsExt as _;
        // Another user's 0644 lock file in a shared folder. As root the
        // write-open succeeds anyway, so root checks only that locking works;
        // anyone else also goes through the read-only fallback.
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("state.json");
        File::create(lock_path(&data)).unwrap();
        std::fs::set_permissions(lock_path(&data), std::fs::Permissions::from_mode(0o444)).unwrap();
        let held = FileLock::acquire(&data).unwrap();
        let other = File::open(lock_path(&data)).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
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
