//! Running a wrapped command: its output passes through unchanged while a
//! bounded copy is kept for classification; terminating signals reach it; a
//! deadline stops it.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Most output kept per stream, in bytes; older output is dropped first, since
/// errors and usage come at the end.
pub const MAX_CAPTURED_BYTES: usize = 8 * 1024 * 1024;

/// How often the supervisor looks for the command's exit, a signal or the deadline.
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(20);
/// How long a command may take to exit after SIGTERM before it is killed.
const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// How long, after the command exits, its output may keep draining: a
/// process it left behind may hold the pipes open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it (Unix).
    Signalled(i32),
    /// The deadline passed first and it was stopped.
    DeadlinePassed,
}

impl Ending {
    /// The exit code a shell would report for this ending (128 + signal).
    pub fn shell_code(self) -> i32 {
        match self {
            Ending::Exited(code) => code,
            Ending::Signalled(signal) => 128 + signal,
            Ending::DeadlinePassed => 124,
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub ending: Ending,
    /// The last [`MAX_CAPTURED_BYTES`] of its stdout.
    pub stdout: String,
    /// The last [`MAX_CAPTURED_BYTES`] of its stderr.
    pub stderr: String,
    /// A terminating signal that reached specsmith while the command ran.
    pub interrupted_by: Option<i32>,
}

/// Runs `program args…`, copying its stdout and stderr to ours as they come.
///
/// Like GNU `timeout`, the command runs in a process group of its own, so a
/// deadline stops everything it started, and SIGINT, SIGTERM and SIGHUP sent
/// to specsmith are passed on to that group.
///
/// Supervision ends when the command exits, or after `time_limit`, when its
/// group is sent SIGTERM and, after a short grace, SIGKILL. Without a limit
/// the command's own lifetime bounds the wait: it is the user's to bound.
pub fn run_passing_through(
    program: &OsString,
    args: &[OsString],
    time_limit: Option<Duration>,
) -> io::Result<Finished> {
    let deadline = time_limit.map(|limit| Instant::now() + limit);
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    // Watch before spawning: the command is in a group of its own, so a
    // Ctrl-C that arrived in between would end us and never reach it.
    let signals = SignalWatch::install();
    let mut child = command.spawn()?;
    let stdout = pump(child.stdout.take(), io::stdout);
    let stderr = pump(child.stderr.take(), io::stderr);

    let mut terminated_at: Option<Instant> = None;
    let ending = loop {
        if let Some(status) = child.try_wait()? {
            break match (terminated_at, exit_code(&status)) {
                (Some(_), _) => Ending::DeadlinePassed,
                (None, Ending::Exited(code)) => Ending::Exited(code),
                (None, other) => other,
            };
        }
        if let Some(signal) = signals.take() {
            forward_signal(child.id(), signal);
        }
        let now = Instant::now();
        match (deadline, terminated_at) {
            (Some(deadline), None) if now >= deadline => {
                forward_signal(child.id(), TERMINATE);
                terminated_at = Some(now);
            }
            (_, Some(since)) if now.duration_since(since) >= TERMINATE_GRACE => {
                forward_signal(child.id(), KILL);
            }
            _ => {}
        }
        thread::sleep(SUPERVISE_INTERVAL);
    };
    let interrupted_by = signals.received();
    drop(signals);
    let drained_by = Instant::now() + DRAIN_GRACE;
    Ok(Finished {
        ending,
        stdout: stdout.finish(drained_by),
        stderr: stderr.finish(drained_by),
        interrupted_by,
    })
}

fn exit_code(status: &std::process::ExitStatus) -> Ending {
    if let Some(code) = status.code() {
        return Ending::Exited(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Ending::Signalled(signal);
        }
    }
    Ending::Exited(1)
}

/// A thread copying one of the command's streams to ours and keeping its tail.
struct Pump {
    handle: thread::JoinHandle<()>,
    captured: Arc<Mutex<Vec<u8>>>,
}

fn pump<R, W, F>(source: Option<R>, target: F) -> Pump
where
    R: Read + Send + 'static,
    W: Write,
    F: Fn() -> W + Send + 'static,
{
    let captured = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&captured);
    let handle = thread::spawn(move || {
        let Some(mut source) = source else { return };
        let mut target = target();
        let mut passing_through = true;
        let mut buffer = [0u8; 16 * 1024];
        // Ends at end of file or on a read error: the command closed the stream.
        while let Ok(read) = source.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let chunk = &buffer[..read];
            if passing_through
                && target
                    .write_all(chunk)
                    .and_then(|()| target.flush())
                    .is_err()
            {
                // Our own reader went away; keep capturing so classification still works.
                passing_through = false;
            }
            let mut kept = sink.lock().unwrap_or_else(|poison| poison.into_inner());
            kept.extend_from_slice(chunk);
            if kept.len() > 2 * MAX_CAPTURED_BYTES {
                let excess = kept.len() - MAX_CAPTURED_BYTES;
                kept.drain(..excess);
            }
        }
    });
    Pump { handle, captured }
}

impl Pump {
    /// The captured tail, once the stream has closed or `drained_by` passed.
    fn finish(self, drained_by: Instant) -> String {
        while !self.handle.is_finished() && Instant::now() < drained_by {
            thread::sleep(SUPERVISE_INTERVAL);
        }
        let kept = self
            .captured
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let start = kept.len().saturating_sub(MAX_CAPTURED_BYTES);
        String::from_utf8_lossy(&kept[start..]).into_owned()
    }
}

#[cfg(unix)]
const TERMINATE: i32 = libc::SIGTERM;
#[cfg(not(unix))]
const TERMINATE: i32 = 15;
#[cfg(unix)]
const KILL: i32 = libc::SIGKILL;
#[cfg(not(unix))]
const KILL: i32 = 9;

/// Sends `signal` to the process group led by our child `pid`.
#[cfg(unix)]
fn forward_signal(pid: u32, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions. The group is
        // our child's own (process_group(0)), and the child is not reaped yet,
        // so its id cannot have been reused.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

#[cfg(not(unix))]
fn forward_signal(_pid: u32, _signal: i32) {}

/// While alive, SIGINT, SIGTERM and SIGHUP no longer end specsmith: they are
/// recorded so the supervisor can pass them to the command and clean up.
struct SignalWatch {
    last: Arc<std::sync::atomic::AtomicUsize>,
    seen: Arc<std::sync::atomic::AtomicUsize>,
    #[cfg(unix)]
    ids: Vec<signal_hook::SigId>,
}

impl SignalWatch {
    fn install() -> Self {
        let last = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        #[cfg(unix)]
        {
            let mut ids = Vec::new();
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                for flag in [&last, &seen] {
                    if let Ok(id) =
                        signal_hook::flag::register_usize(signal, Arc::clone(flag), signal as usize)
                    {
                        ids.push(id);
                    }
                }
            }
            Self { last, seen, ids }
        }
        #[cfg(not(unix))]
        Self { last, seen }
    }

    /// The signal received since the last call, if any.
    fn take(&self) -> Option<i32> {
        match self.last.swap(0, std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            signal => Some(signal as i32),
        }
    }

    /// The last signal received while watching, if any.
    fn received(&self) -> Option<i32> {
        match self.seen.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            signal => Some(signal as i32),
        }
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        #[cfg(unix)]
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Signal handlers are process-wide: a signal one test sends to the test
    /// process reaches every command another test supervises at that moment.
    /// These tests take turns.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn sh(script: &str) -> (OsString, Vec<OsString>) {
        ("sh".into(), vec!["-c".into(), script.into()])
    }

    #[test]
    fn captures_both_streams_and_the_exit_code() {
        let _turn = one_at_a_time();
        let (program, args) = sh("echo out; echo err >&2; exit 3");
        let finished = run_passing_through(&program, &args, None).unwrap();
        assert_eq!(finished.ending, Ending::Exited(3));
        assert_eq!(finished.stdout, "out\n");
        assert_eq!(finished.stderr, "err\n");
        assert_eq!(finished.interrupted_by, None);
    }

    #[test]
    fn a_deadline_stops_the_command() {
        let _turn = one_at_a_time();
        let (program, args) = sh("sleep 5");
        let started = Instant::now();
        let finished =
            run_passing_through(&program, &args, Some(Duration::from_millis(100))).unwrap();
        assert_eq!(finished.ending, Ending::DeadlinePassed);
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn signals_reach_the_command_and_are_reported() {
        let _turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let (program, args) = sh(&format!(
            "trap 'echo got-term; exit 7' TERM; : > '{}'; sleep 5 & wait",
            ready.display()
        ));
        let me = std::process::id() as libc::pid_t;
        let sender = thread::spawn(move || {
            // Once the command runs (its trap set), specsmith watches for signals.
            let give_up = Instant::now() + Duration::from_secs(10);
            while !ready.exists() && Instant::now() < give_up {
                thread::sleep(Duration::from_millis(10));
            }
            // SAFETY: signalling our own process.
            unsafe { libc::kill(me, libc::SIGTERM) };
        });
        let finished = run_passing_through(&program, &args, None).unwrap();
        sender.join().unwrap();
        assert_eq!(finished.interrupted_by, Some(libc::SIGTERM));
        assert_eq!(finished.ending, Ending::Exited(7));
        assert_eq!(finished.stdout, "got-term\n");
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let _turn = one_at_a_time();
        let error = run_passing_through(&"/no/such/program".into(), &[], None).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
