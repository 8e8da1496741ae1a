//! Running a wrapped command: its output passes through (or is held until
//! the caller knows it is wanted) while a bounded copy is kept for
//! classification; terminating signals reach it; a deadline stops it; a
//! command that needs the terminal gets it.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Most output kept per stream, in bytes; older output is dropped first, since
/// errors and usage come at the end.
pub const MAX_CAPTURED_BYTES: usize = 8 * 1024 * 1024;

/// How often the supervisor looks for the command's exit, a signal or the deadline.
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(20);
/// How long a command may take to exit after SIGTERM (the deadline) or a
/// signal passed on to it, before its group is killed.
pub const TERMINATE_GRACE: Duration = Duration::from_secs(2);
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
    /// It stopped to use the terminal (this signal, SIGTTIN or SIGTTOU),
    /// which could not be given to it (specsmith is not in the terminal's
    /// foreground), so it was ended.
    NeedsTerminal(i32),
}

impl Ending {
    /// The exit code a shell would report for this ending (128 + signal).
    pub fn shell_code(self) -> i32 {
        match self {
            Ending::Exited(code) => code,
            Ending::Signalled(signal) | Ending::NeedsTerminal(signal) => 128 + signal,
            Ending::DeadlinePassed => 124,
        }
    }
}

/// Where the command's stdout goes while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutMode {
    /// To our stdout, as it comes.
    PassThrough,
    /// Into [`Finished::held_stdout`], for the caller to pass on or drop.
    Hold,
}

/// What the supervisor reports while the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// The command started, leading process group `pid`.
    Started {
        /// Its PID, which is also its process group's id.
        pid: u32,
    },
    /// The command still runs (about every 20 ms).
    Running,
}

/// The result of one run.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub ending: Ending,
    /// The last [`MAX_CAPTURED_BYTES`] of its stdout.
    pub stdout: String,
    /// The last [`MAX_CAPTURED_BYTES`] of its stderr.
    pub stderr: String,
    /// With [`StdoutMode::Hold`]: all of its stdout, in an anonymous
    /// temporary file read from the start.
    pub held_stdout: Option<File>,
    /// A terminating signal that reached specsmith (or, while the command
    /// had the terminal, ended it from the keyboard) during the run.
    pub interrupted_by: Option<i32>,
}

/// Runs `program args…`, copying its stderr to ours as it comes and its
/// stdout as `stdout_mode` says.
///
/// Like GNU `timeout`, the command runs in a process group of its own, so a
/// deadline stops everything it started. Signals `signals` catches are passed
/// on to that group (with SIGCONT, so a stopped command sees them), and the
/// group is killed [`TERMINATE_GRACE`] later if it has not exited by then:
/// a signal ends the run in bounded time. When the command stops to read or
/// write the terminal (SIGTTIN, SIGTTOU) and specsmith is in the terminal's
/// foreground, the command's group gets the foreground until it exits;
/// otherwise it is ended with [`Ending::NeedsTerminal`].
///
/// Supervision ends when the command exits, or after `time_limit`, when its
/// group is sent SIGTERM and, after the grace, SIGKILL. Without a limit
/// the command's own lifetime bounds the wait: it is the user's to bound.
pub fn run_passing_through(
    program: &OsString,
    args: &[OsString],
    time_limit: Option<Duration>,
    stdout_mode: StdoutMode,
    signals: &SignalWatch,
    on_tick: &mut dyn FnMut(Tick),
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
    let held = match stdout_mode {
        StdoutMode::PassThrough => None,
        StdoutMode::Hold => Some(tempfile::tempfile()?),
    };
    let mut child = command.spawn()?;
    let pid = child.id();
    on_tick(Tick::Started { pid });
    let stdout = match &held {
        None => pump(child.stdout.take(), || {
            Box::new(io::stdout()) as Box<dyn Write>
        }),
        Some(file) => {
            let file = file.try_clone()?;
            pump(child.stdout.take(), move || {
                Box::new(file) as Box<dyn Write>
            })
        }
    };
    let stderr = pump(child.stderr.take(), || {
        Box::new(io::stderr()) as Box<dyn Write>
    });

    let mut terminal = Terminal::default();
    let mut interrupted_by = None;
    let mut deadline_passed = false;
    let mut needs_terminal = None;
    let mut stopping_since: Option<Instant> = None;
    // Each pass sleeps 20 ms; the command's exit ends the loop, and once a
    // signal, the deadline or a refused terminal asks it to stop, SIGKILL
    // follows within the grace, so the loop is bounded from then on.
    let ending = loop {
        match poll_child(&mut child)? {
            ChildState::Exited(ending) => break ending,
            ChildState::Stopped(signal) if is_terminal_stop(signal) => {
                if terminal.give_to(pid) {
                    send_to_group(pid, CONTINUE);
                } else if needs_terminal.is_none() {
                    needs_terminal = Some(signal);
                    stop_group(pid, &mut stopping_since);
                }
            }
            // Ctrl-Z while it has the terminal: `run` cannot be resumed as a
            // job in its place, so the command goes on rather than hang.
            ChildState::Stopped(_) if terminal.given() => send_to_group(pid, CONTINUE),
            ChildState::Stopped(_) | ChildState::Running => {}
        }
        if let Some(signal) = signals.take() {
            interrupted_by = Some(signal);
            send_to_group(pid, signal);
            send_to_group(pid, CONTINUE);
            stopping_since.get_or_insert_with(Instant::now);
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) && !deadline_passed {
            deadline_passed = true;
            stop_group(pid, &mut stopping_since);
        }
        if stopping_since.is_some_and(|since| now.duration_since(since) >= TERMINATE_GRACE) {
            send_to_group(pid, KILL);
        }
        on_tick(Tick::Running);
        thread::sleep(SUPERVISE_INTERVAL);
    };
    if terminal.given() {
        if let Ending::Signalled(signal) = ending {
            // With the terminal, Ctrl-C and Ctrl-\ reach the command, not us.
            if signal == INTERRUPT || signal == QUIT {
                interrupted_by.get_or_insert(signal);
            }
        }
    }
    terminal.take_back();
    let ending = match (deadline_passed, needs_terminal) {
        (true, _) => Ending::DeadlinePassed,
        (false, Some(signal)) => Ending::NeedsTerminal(signal),
        (false, None) => ending,
    };
    let drained_by = Instant::now() + DRAIN_GRACE;
    let stdout = stdout.finish(drained_by);
    let stderr = stderr.finish(drained_by);
    let held_stdout = match held {
        Some(mut file) => {
            file.rewind()?;
            Some(file)
        }
        None => None,
    };
    Ok(Finished {
        ending,
        stdout,
        stderr,
        held_stdout,
        interrupted_by: interrupted_by.or(signals.take()),
    })
}

enum ChildState {
    Running,
    Stopped(i32),
    Exited(Ending),
}

/// Looks at the child without blocking; on Unix also reports it stopped.
#[cfg(unix)]
fn poll_child(child: &mut Child) -> io::Result<ChildState> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // Each pass either returns or retries after EINTR, which needs a signal.
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid pointer to `status`.
        let result = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::WUNTRACED) };
        if result == 0 {
            return Ok(ChildState::Running);
        }
        if result < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if libc::WIFSTOPPED(status) {
            return Ok(ChildState::Stopped(libc::WSTOPSIG(status)));
        }
        if libc::WIFEXITED(status) {
            return Ok(ChildState::Exited(Ending::Exited(libc::WEXITSTATUS(
                status,
            ))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(ChildState::Exited(Ending::Signalled(libc::WTERMSIG(
                status,
            ))));
        }
        // Continued (not asked for) or unknown: still running.
        return Ok(ChildState::Running);
    }
}

#[cfg(not(unix))]
fn poll_child(child: &mut Child) -> io::Result<ChildState> {
    Ok(match child.try_wait()? {
        None => ChildState::Running,
        Some(status) => ChildState::Exited(Ending::Exited(status.code().unwrap_or(1))),
    })
}

fn is_terminal_stop(signal: i32) -> bool {
    #[cfg(unix)]
    {
        signal == libc::SIGTTIN || signal == libc::SIGTTOU
    }
    #[cfg(not(unix))]
    {
        let _ = signal;
        false
    }
}

/// Sends SIGTERM (and SIGCONT) to the group once; the grace starts now.
fn stop_group(pid: u32, stopping_since: &mut Option<Instant>) {
    send_to_group(pid, TERMINATE);
    send_to_group(pid, CONTINUE);
    stopping_since.get_or_insert_with(Instant::now);
}

/// A thread copying one of the command's streams to a target and keeping its tail.
struct Pump {
    handle: thread::JoinHandle<()>,
    captured: Arc<Mutex<Vec<u8>>>,
}

fn pump<R, F>(source: Option<R>, target: F) -> Pump
where
    R: Read + Send + 'static,
    F: FnOnce() -> Box<dyn Write> + Send + 'static,
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
#[cfg(unix)]
const CONTINUE: i32 = libc::SIGCONT;
#[cfg(not(unix))]
const CONTINUE: i32 = 18;
#[cfg(unix)]
const INTERRUPT: i32 = libc::SIGINT;
#[cfg(not(unix))]
const INTERRUPT: i32 = 2;
#[cfg(unix)]
const QUIT: i32 = libc::SIGQUIT;
#[cfg(not(unix))]
const QUIT: i32 = 3;

/// Sends `signal` to the process group led by our child `pid`.
#[cfg(unix)]
fn send_to_group(pid: u32, signal: i32) {
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
fn send_to_group(_pid: u32, _signal: i32) {}

/// The controlling terminal, while the command holds its foreground.
#[derive(Default)]
struct Terminal {
    #[cfg(unix)]
    given: Option<File>,
}

impl Terminal {
    /// Gives the terminal's foreground to group `pid` when specsmith holds
    /// it; true when the group has it now.
    #[cfg(unix)]
    fn give_to(&mut self, pid: u32) -> bool {
        use std::os::fd::AsRawFd;
        if self.given.is_some() {
            // Stopped again although it has the terminal: let it go on.
            return true;
        }
        let Ok(group) = libc::pid_t::try_from(pid) else {
            return false;
        };
        let Ok(tty) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags_noctty()
            .open("/dev/tty")
        else {
            return false;
        };
        let fd = tty.as_raw_fd();
        // SAFETY: plain calls on a valid, open file descriptor.
        let ours = unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() };
        // SAFETY: as above; we hold the foreground, so no SIGTTOU is raised.
        if !ours || unsafe { libc::tcsetpgrp(fd, group) } != 0 {
            return false;
        }
        self.given = Some(tty);
        true
    }

    #[cfg(not(unix))]
    fn give_to(&mut self, _pid: u32) -> bool {
        false
    }

    fn given(&self) -> bool {
        #[cfg(unix)]
        {
            self.given.is_some()
        }
        #[cfg(not(unix))]
        false
    }

    /// Takes the foreground back for specsmith's own group.
    fn take_back(&mut self) {
        #[cfg(unix)]
        if let Some(tty) = self.given.take() {
            use std::os::fd::AsRawFd;
            // SAFETY: sigset operations on a local, initialised set;
            // tcsetpgrp on a valid descriptor. SIGTTOU is blocked around the
            // call because we ask from the background, which would stop us.
            unsafe {
                let mut block: libc::sigset_t = std::mem::zeroed();
                let mut previous: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut block);
                libc::sigaddset(&mut block, libc::SIGTTOU);
                libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut previous);
                libc::tcsetpgrp(tty.as_raw_fd(), libc::getpgrp());
                libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(unix)]
trait NoControllingTerminal {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

#[cfg(unix)]
impl NoControllingTerminal for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
    }
}

/// While alive, SIGINT, SIGTERM and SIGHUP no longer end specsmith: they are
/// recorded, so whatever phase the caller is in (waiting, running a command,
/// sleeping) can end in bounded time and clean up. Install it once, before
/// the first phase, and keep it until the end.
pub struct SignalWatch {
    last: Arc<AtomicUsize>,
    seen: Arc<AtomicUsize>,
    #[cfg(unix)]
    ids: Vec<signal_hook::SigId>,
}

impl SignalWatch {
    /// Starts watching.
    pub fn install() -> Self {
        let last = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
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
        match self.last.swap(0, Ordering::SeqCst) {
            0 => None,
            signal => Some(signal as i32),
        }
    }

    /// The last signal received while watching, if any.
    pub fn received(&self) -> Option<i32> {
        match self.seen.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal as i32),
        }
    }

    /// A test, for other threads and the pacer, of whether a signal arrived.
    pub fn checker(&self) -> impl Fn() -> Option<i32> + Send + Sync + 'static {
        let seen = Arc::clone(&self.seen);
        move || match seen.load(Ordering::SeqCst) {
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

    fn run(script: &str, limit: Option<Duration>, mode: StdoutMode) -> Finished {
        let (program, args) = sh(script);
        let signals = SignalWatch::install();
        run_passing_through(&program, &args, limit, mode, &signals, &mut |_| {}).unwrap()
    }

    #[test]
    fn captures_both_streams_and_the_exit_code() {
        let _turn = one_at_a_time();
        let finished = run(
            "echo out; echo err >&2; exit 3",
            None,
            StdoutMode::PassThrough,
        );
        assert_eq!(finished.ending, Ending::Exited(3));
        assert_eq!(finished.stdout, "out\n");
        assert_eq!(finished.stderr, "err\n");
        assert_eq!(finished.interrupted_by, None);
        assert!(finished.held_stdout.is_none());
    }

    #[test]
    fn held_stdout_is_all_there_to_read_from_the_start() {
        let _turn = one_at_a_time();
        let mut finished = run("echo one; echo two", None, StdoutMode::Hold);
        let mut held = String::new();
        finished
            .held_stdout
            .take()
            .unwrap()
            .read_to_string(&mut held)
            .unwrap();
        assert_eq!(held, "one\ntwo\n");
        assert_eq!(finished.stdout, "one\ntwo\n");
    }

    #[test]
    fn a_deadline_stops_the_command() {
        let _turn = one_at_a_time();
        let started = Instant::now();
        let finished = run(
            "sleep 5",
            Some(Duration::from_millis(100)),
            StdoutMode::PassThrough,
        );
        assert_eq!(finished.ending, Ending::DeadlinePassed);
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn the_start_and_the_run_are_reported() {
        let _turn = one_at_a_time();
        let (program, args) = sh("sleep 0.1");
        let signals = SignalWatch::install();
        let mut ticks = Vec::new();
        run_passing_through(
            &program,
            &args,
            None,
            StdoutMode::PassThrough,
            &signals,
            &mut |tick| ticks.push(tick),
        )
        .unwrap();
        assert!(
            matches!(ticks.first(), Some(Tick::Started { .. })),
            "{ticks:?}"
        );
        assert!(ticks[1..].iter().all(|tick| *tick == Tick::Running));
    }

    fn signal_once_ready(ready: std::path::PathBuf, signal: i32) -> thread::JoinHandle<()> {
        let me = std::process::id() as libc::pid_t;
        thread::spawn(move || {
            // Once the command runs (its trap set), specsmith watches for signals.
            let give_up = Instant::now() + Duration::from_secs(10);
            while !ready.exists() && Instant::now() < give_up {
                thread::sleep(Duration::from_millis(10));
            }
            // SAFETY: signalling our own process.
            unsafe { libc::kill(me, signal) };
        })
    }

    #[test]
    fn signals_reach_the_command_and_are_reported() {
        let _turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let sender = signal_once_ready(ready.clone(), libc::SIGTERM);
        let finished = run(
            &format!(
                "trap 'echo got-term; exit 7' TERM; : > '{}'; sleep 5 & wait",
                ready.display()
            ),
            None,
            StdoutMode::PassThrough,
        );
        sender.join().unwrap();
        assert_eq!(finished.interrupted_by, Some(libc::SIGTERM));
        assert_eq!(finished.ending, Ending::Exited(7));
        assert_eq!(finished.stdout, "got-term\n");
    }

    #[test]
    fn a_command_that_ignores_a_signal_is_killed_after_the_grace() {
        let _turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let sender = signal_once_ready(ready.clone(), libc::SIGHUP);
        let started = Instant::now();
        let finished = run(
            &format!(
                "trap '' HUP TERM; : > '{}'; while :; do sleep 1; done",
                ready.display()
            ),
            None,
            StdoutMode::PassThrough,
        );
        sender.join().unwrap();
        assert_eq!(finished.interrupted_by, Some(libc::SIGHUP));
        assert_eq!(finished.ending, Ending::Signalled(libc::SIGKILL));
        assert!(started.elapsed() < TERMINATE_GRACE + Duration::from_secs(8));
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let _turn = one_at_a_time();
        let signals = SignalWatch::install();
        let error = run_passing_through(
            &"/no/such/program".into(),
            &[],
            None,
            StdoutMode::PassThrough,
            &signals,
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
