//! Waking the waiters of a file store when room frees, instead of having
//! them re-read the state on a timer.
//!
//! A write that frees a concurrency slot or a place in the queue of a model
//! that has waiters touches the store's lock file (sets its times to now,
//! which nothing else does); a waiter watches that file with inotify and
//! wakes at once. The lock file is the one thing every process of a project
//! already shares and nobody renames.
//!
//! Everything here is best effort: a store on a system without inotify (not
//! Linux), a lock file the waiter cannot watch, or one the releaser may not
//! touch (another user's, in a shared folder) just leaves the waiters
//! polling, as they do without a watch.

use std::path::Path;
use std::time::Duration;

/// What a wait for room ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// This store cannot tell when room frees; nothing was waited for.
    Unsupported,
    /// Room may have freed (or the watch was just set up): look again now.
    Changed,
    /// The timeout passed with no sign.
    TimedOut,
}

/// Tells the waiters of the store locked by `lock` that room may have freed.
pub fn signal(lock: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd as _;
        // SAFETY: a valid open descriptor; a null `times` sets both to now,
        // which needs only write access, not ownership. Failure is ignored:
        // waiters then find the room at their next look.
        unsafe {
            libc::futimens(lock.as_raw_fd(), std::ptr::null());
        }
    }
    #[cfg(not(unix))]
    let _ = lock;
}

/// A watch on a store's lock file for [`signal`]s.
#[derive(Debug)]
pub struct Watch {
    #[cfg(target_os = "linux")]
    inotify: std::os::fd::OwnedFd,
}

impl Watch {
    /// Starts watching the lock file `lock_path`; `None` where that cannot
    /// be done. Signals sent from now on are kept until [`Watch::wait`].
    pub fn new(lock_path: &Path) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::{FromRawFd as _, OwnedFd};
            use std::os::unix::ffi::OsStrExt as _;
            let path = std::ffi::CString::new(lock_path.as_os_str().as_bytes()).ok()?;
            // SAFETY: plain system calls; the descriptor is owned at once.
            let inotify = unsafe {
                let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
                if fd < 0 {
                    return None;
                }
                OwnedFd::from_raw_fd(fd)
            };
            use std::os::fd::AsRawFd as _;
            // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
            let watch = unsafe {
                libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), libc::IN_ATTRIB)
            };
            (watch >= 0).then_some(Self { inotify })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = lock_path;
            None
        }
    }

    /// Waits at most `timeout` for a signal; [`Wake::Changed`] at once for
    /// one sent since the last wait.
    pub fn wait(&self, timeout: Duration) -> Wake {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            let fd = self.inotify.as_raw_fd();
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = libc::c_int::try_from(super::clock::duration_millis(timeout))
                .unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut poll, 1, millis) };
            if ready == 0 {
                return Wake::TimedOut;
            }
            // Ready, or interrupted by a signal: either way look again. Drain
            // what is queued so the next wait blocks; bounded, as each read
            // empties a buffer's worth and the descriptor does not block.
            let mut buffer = [0u8; 4096];
            for _ in 0..64 {
                // SAFETY: reads into a buffer this function owns, within its length.
                let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
                if read <= 0 {
                    break;
                }
            }
            Wake::Changed
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = timeout;
            Wake::Unsupported
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_signal_wakes_a_watcher_and_is_kept_until_it_waits() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join("state.json.lock");
        let lock = std::fs::File::create(&lock_path).unwrap();
        let watch = Watch::new(&lock_path).unwrap();
        assert_eq!(watch.wait(Duration::ZERO), Wake::TimedOut);
        signal(&lock);
        // Sent before the wait began: still seen, and drained by it.
        assert_eq!(watch.wait(Duration::from_secs(5)), Wake::Changed);
        assert_eq!(watch.wait(Duration::ZERO), Wake::TimedOut);
        // Sent while the watcher waits (or just before): it wakes.
        let signaller = std::thread::spawn(move || signal(&lock));
        let started = Instant::now();
        assert_eq!(watch.wait(Duration::from_secs(10)), Wake::Changed);
        assert!(started.elapsed() < Duration::from_secs(5));
        signaller.join().unwrap();
    }

    #[test]
    fn opening_and_writing_the_lock_file_is_no_signal() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join("state.json.lock");
        std::fs::File::create(&lock_path).unwrap();
        let watch = Watch::new(&lock_path).unwrap();
        let mut other = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock_path)
            .unwrap();
        other.lock().unwrap();
        other.write_all(b"").unwrap();
        other.unlock().unwrap();
        drop(other);
        assert_eq!(watch.wait(Duration::ZERO), Wake::TimedOut);
    }

    #[test]
    fn a_missing_lock_file_cannot_be_watched() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Watch::new(&dir.path().join("absent.lock")).is_none());
    }
}
