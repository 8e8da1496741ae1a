//! `credits limits run -- CMD`: pacing, pass-through, retries, give-ups,
//! signals and secrets, against small provider-like scripts in `tests/scripts/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use crate::fixture::Project;

fn script(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
        .display()
        .to_string()
}

/// A project with a generous profile for `acme/m1` (effective RPM 100, TPM 100,000).
fn project() -> Project {
    Project::with_profile("acme", "m1", 100, 100_000, 2)
}

fn run_args<'a>(extra: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "credits",
        "limits",
        "run",
        "--provider",
        "acme",
        "--model",
        "m1",
        "--input-tokens",
        "100",
        "--max-output-tokens",
        "50",
    ];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    args
}

fn snapshot(project: &Project) -> Value {
    let output = project
        .cmd(&[
            "credits",
            "limits",
            "status",
            "--provider",
            "acme",
            "--model",
            "m1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_rate_limit_is_retried_and_the_actual_usage_recorded() {
    let project = project();
    let marker = project.root().join("called-once");
    let marker = marker.display().to_string();
    let script = script("rate-limited-once.sh");
    let output = project
        .cmd(&run_args(&[], &[&script, &marker]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // Only the final answer reaches stdout, so `run … > answer.json` is valid JSON.
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["usage"]["prompt_tokens"], 42);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("curl: (22) The requested URL returned error: 429"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("specsmith-rs: attempt 1 failed (rate_limit: Rate limit reached for gpt-4o")
            && stderr.contains("retrying in 50 ms (its stdout, 208 bytes, is not passed on)"),
        "{stderr}"
    );
    let status = snapshot(&project);
    assert_eq!(status["rolling_request_count"], 2);
    assert_eq!(status["rolling_token_count"], 150 + 42 + 7);
    assert_eq!(status["in_flight"], 0);
    assert_eq!(status["current_concurrency_cap"], 1, "halved after the 429");
}

#[test]
fn exhausted_credits_stop_at_once_with_the_commands_code_and_no_secret() {
    let project = project();
    let script = script("no-credits.sh");
    project
        .cmd(&run_args(&[], &[&script]))
        .assert()
        .code(3)
        .stdout(contains("insufficient_quota"))
        .stderr(
            contains("error: the command failed and retrying cannot help (quota_exhausted: You exceeded your current quota")
                .and(contains("[REDACTED]"))
                .and(contains("sk-proj").not())
                .and(contains("retrying in").not()),
        );
    let status = snapshot(&project);
    assert_eq!(
        (
            status["in_flight"].clone(),
            status["rolling_request_count"].clone()
        ),
        (0.into(), 1.into()),
        "the call was sent: it counts"
    );
    let state = project.read(".specsmith/model-rate-limit-state.json");
    assert!(!state.contains("sk-proj"), "{state}");
}

#[test]
fn attempts_run_out_with_exit_75() {
    let project = project();
    let script = script("always-rate-limited.sh");
    let output = project
        .cmd(&run_args(&["--max-attempts", "3"], &[&script]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        1,
        "only the last attempt's answer"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.matches("specsmith-rs: attempt").count(),
        2,
        "{stderr}"
    );
    assert!(
        stderr.ends_with("error: gave up on `acme/m1`: all 3 attempt(s) failed; last failure: rate_limit: Rate limit reached. Please try again in 20ms.\n"),
        "{stderr}"
    );
    assert_eq!(snapshot(&project)["in_flight"], 0);
}

#[test]
fn a_retry_that_would_pass_the_deadline_is_not_waited_for() {
    let project = project();
    let slow = r#"echo '{"error":{"code":"rate_limit_exceeded","message":"Please try again in 30s."}}'; exit 22"#;
    let started = Instant::now();
    project
        .cmd(&run_args(&["--deadline", "5"], &["sh", "-c", slow]))
        .assert()
        .code(75)
        .stderr(contains(
            "the next attempt would start after the deadline (wait 30.0 s)",
        ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_deadline_stops_a_running_command() {
    let project = project();
    let started = Instant::now();
    project
        .cmd(&run_args(&["--deadline", "0.3"], &["sleep", "5"]))
        .assert()
        .code(75)
        .stderr(contains(
            "the deadline passed while the command ran; it was stopped",
        ));
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(snapshot(&project)["in_flight"], 0);
}

#[test]
fn a_command_line_secret_never_reaches_the_state_file() {
    let project = project();
    project
        .cmd(&run_args(
            &[],
            &[
                "sh",
                "-c",
                "exit 0",
                "Authorization: Bearer sk-live-abcdefghijklmnopqrstuvwxyz",
            ],
        ))
        .assert()
        .success();
    let state = project.read(".specsmith/model-rate-limit-state.json");
    assert!(!state.contains("abcdefghijklmnop"), "{state}");
    assert!(!state.contains("Bearer"), "{state}");
}

#[test]
fn an_interrupt_reaches_the_command_and_the_call_stays_counted() {
    let project = project();
    let ready = project.root().join("ready");
    let script = format!(
        "trap 'echo stopping; exit 130' INT; echo started; : > '{}'; sleep 10 & wait",
        ready.display()
    );
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("specsmith-rs"))
        .arg("--project-dir")
        .arg(project.root())
        .args(run_args(&[], &["sh", "-c", &script]))
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the command runs, its trap set: run holds the
    // reservation and watches for signals by then.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(snapshot(&project)["in_flight"], 1);
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let output = output_within(child, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "started\nstopping\n"
    );
    let status = snapshot(&project);
    assert_eq!(
        (
            status["in_flight"].clone(),
            status["rolling_request_count"].clone(),
            status["rolling_token_count"].clone()
        ),
        (0.into(), 1.into(), 150.into())
    );
}

#[test]
fn bad_invocations_are_usage_errors() {
    let project = project();
    project
        .cmd(&[
            "credits",
            "limits",
            "run",
            "--provider",
            "acme",
            "--model",
            "m1",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(contains("CMD"));
    project
        .cmd(&run_args(&["--max-attempts", "0"], &["true"]))
        .assert()
        .code(2)
        .stderr(contains("--max-attempts"));
    project
        .cmd(&run_args(&["--deadline", "soon"], &["true"]))
        .assert()
        .code(2)
        .stderr(contains("--deadline"));
    project
        .cmd(&run_args(&[], &["/no/such/program"]))
        .assert()
        .code(2)
        .stderr(contains(
            "error: cannot run `/no/such/program`: No such file or directory",
        ));
    assert_eq!(snapshot(&project)["in_flight"], 0);
}

#[test]
fn a_model_without_a_profile_is_refused_before_running_anything() {
    let project = Project::new();
    let marker = project.root().join("ran");
    project
        .cmd(&[
            "credits",
            "limits",
            "run",
            "--provider",
            "nobody",
            "--model",
            "x",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "1",
            "--",
            "touch",
            &marker.display().to_string(),
        ])
        .assert()
        .code(2)
        .stderr(contains("no rate-limit profile for `nobody/x`"));
    assert!(!marker.exists());
}

/// Waits (bounded) until `condition` holds; fails the test naming `what` otherwise.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True once process `pid` catches SIGINT, SIGTERM and SIGHUP (`/proc`).
fn catches_signals(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let caught = status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap_or(0);
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
        .iter()
        .all(|signal| caught & (1 << (signal - 1)) != 0)
}

/// `specsmith-rs … ARGS` as a child with piped output, in the project's environment.
fn spawn(project: &Project, args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("specsmith-rs"))
        .arg("--project-dir")
        .arg(project.root())
        .args(args)
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .env("HOME", project.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn send(pid: u32, signal: i32) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: kill(2) on a process this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Reads a child's stderr on a thread, so a test can wait for a line.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::Read;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&seen);
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stderr.read(&mut buffer) {
            if read == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    });
    seen
}

#[test]
fn a_bad_request_that_was_sent_counts_against_the_rpm() {
    let project = Project::with_profile("acme", "m1", 3, 100_000, 5);
    let script = script("bad-request.sh");
    for _ in 0..3 {
        project
            .cmd(&run_args(&[], &[&script]))
            .assert()
            .code(22)
            .stderr(contains("retrying cannot help"));
    }
    let status = snapshot(&project);
    assert_eq!(status["rolling_request_count"], 3);
    assert_eq!(status["in_flight"], 0);
    project
        .cmd(&run_args(&["--deadline", "0"], &["true"]))
        .assert()
        .code(75)
        .stderr(contains("the requests-per-minute budget"));
}

#[test]
fn a_call_longer_than_its_lease_keeps_its_reservation_and_succeeds() {
    let project = project();
    let started = Instant::now();
    project
        .cmd(&run_args(
            &["--lease", "1"],
            &["sh", "-c", "echo hi; sleep 2.5"],
        ))
        .assert()
        .code(0)
        .stdout("hi\n")
        .stderr("");
    assert!(started.elapsed() >= Duration::from_millis(2_500));
    let status = snapshot(&project);
    assert_eq!(
        (
            status["rolling_request_count"].clone(),
            status["in_flight"].clone()
        ),
        (1.into(), 0.into())
    );
}

#[test]
fn a_zero_exit_with_a_rate_limit_body_is_retried_and_halves_the_cap() {
    let project = project();
    let marker = project.root().join("called-once").display().to_string();
    let script = script("rate-limited-exit-0-once.sh");
    let output = project
        .cmd(&run_args(&[], &[&script, &marker]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["id"], "chatcmpl-2");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("specsmith-rs: attempt 1 failed (rate_limit: Rate limit reached"),
        "{stderr}"
    );
    let status = snapshot(&project);
    assert_eq!(status["rolling_request_count"], 2);
    assert_eq!(status["current_concurrency_cap"], 1, "halved after the 429");
}

#[test]
fn kill_9_of_run_keeps_the_slot_while_its_command_runs() {
    let project = Project::with_profile("acme", "m1", 100, 100_000, 1);
    let ready = project.root().join("ready");
    let command = format!(": > '{}'; exec sleep 60", ready.display());
    let mut run = spawn(&project, &run_args(&[], &["sh", "-c", &command]));
    wait_for("the command to start", || ready.exists());
    let group = {
        let mut group = None;
        wait_for("the process group in the reservation", || {
            group = snapshot_reservations(&project)
                .first()
                .and_then(|reservation| reservation["owner"]["process_group"]["id"].as_u64());
            group.is_some()
        });
        group.unwrap()
    };
    send(run.id(), libc::SIGKILL);
    run.wait().unwrap();
    let acquire = [
        "credits",
        "limits",
        "acquire",
        "--provider",
        "acme",
        "--model",
        "m1",
        "--input-tokens",
        "1",
        "--max-output-tokens",
        "1",
        "--timeout",
        "0",
    ];
    project
        .cmd(&acquire)
        .assert()
        .code(75)
        .stderr(contains("a concurrency slot"));
    // SAFETY: kill(2) on the group of the command the killed run started.
    assert_eq!(
        unsafe { libc::kill(-libc::pid_t::try_from(group).unwrap(), libc::SIGKILL) },
        0
    );
    wait_for("the slot to come back", || {
        project.cmd(&acquire).output().unwrap().status.success()
    });
}

fn snapshot_reservations(project: &Project) -> Vec<Value> {
    snapshot_full(project)["reservations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn snapshot_full(project: &Project) -> Value {
    snapshot(project)
}

#[test]
fn acquire_owners_outlive_timeout_and_redirection_subshells() {
    let project = Project::with_profile("acme", "m1", 100, 100_000, 5);
    let log = project.root().join("log").display().to_string();
    let binary = assert_cmd::cargo::cargo_bin("specsmith-rs");
    let output = std::process::Command::new(script("owner-walk.sh"))
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .env("HOME", project.root())
        .arg(&binary)
        .arg(project.root())
        .arg(&log)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let pid_of = |label: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{label} ")))
            .unwrap_or_else(|| panic!("no `{label}` line in {stdout}"))
            .to_owned()
    };
    let script_pid = pid_of("script");
    for shape in ["timeout", "redirection", "env"] {
        assert_eq!(pid_of(shape), script_pid, "{shape}: {stdout}");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), "");
}

#[test]
fn a_signal_while_waiting_for_budget_ends_run_and_nothing_is_sent() {
    let project = Project::with_profile("acme", "m1", 1, 100_000, 5);
    let me = std::process::id().to_string();
    project
        .cmd(&[
            "credits",
            "limits",
            "acquire",
            "--provider",
            "acme",
            "--model",
            "m1",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "1",
            "--owner-pid",
            &me,
        ])
        .assert()
        .success();
    let marker = project.root().join("ran");
    let touch = format!(": > '{}'", marker.display());
    let run = spawn(&project, &run_args(&[], &["sh", "-c", &touch]));
    wait_for("run to watch for signals", || catches_signals(run.id()));
    let started = Instant::now();
    send(run.id(), libc::SIGTERM);
    let output = output_within(run, Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(143), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("while waiting for budget"),
        "{output:?}"
    );
    assert!(!marker.exists());
    assert_eq!(snapshot(&project)["rolling_request_count"], 1);
}

#[test]
fn a_signal_while_sleeping_before_a_retry_ends_run_at_once() {
    let project = project();
    let calls = project.root().join("calls");
    let script = script("rate-limited-slowly.sh");
    let calls_arg = calls.display().to_string();
    let mut run = spawn(&project, &run_args(&[], &[&script, &calls_arg]));
    let stderr = stderr_lines(&mut run);
    wait_for("the retry message", || {
        stderr.lock().unwrap().contains("retrying in 30.0 s")
    });
    let started = Instant::now();
    send(run.id(), libc::SIGHUP);
    let status = exit_within(&mut run, Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(129));
    wait_for("the last words on stderr", || {
        stderr.lock().unwrap().contains("while waiting to retry")
    });
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "call\n");
    let status = snapshot(&project);
    assert_eq!(
        (
            status["rolling_request_count"].clone(),
            status["in_flight"].clone()
        ),
        (1.into(), 0.into())
    );
}

#[test]
fn a_command_that_ignores_signals_cannot_keep_run_alive() {
    let project = project();
    let ready = project.root().join("ready");
    let stubborn = format!("trap '' INT TERM HUP; : > '{}'; sleep 30", ready.display());
    let run = spawn(&project, &run_args(&[], &["sh", "-c", &stubborn]));
    wait_for("the command to start", || ready.exists());
    let started = Instant::now();
    send(run.id(), libc::SIGTERM);
    let output = output_within(run, Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended after the 2 s grace"
    );
    assert_eq!(output.status.code(), Some(137), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("the call is counted"));
    assert_eq!(snapshot(&project)["rolling_request_count"], 1);
}

/// A pseudo-terminal whose slave becomes the controlling terminal of a child.
struct Pty {
    master: std::fs::File,
    slave: std::fs::File,
}

impl Pty {
    fn open() -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: the POSIX pseudo-terminal calls, on a descriptor we own;
        // ptsname_r writes into a buffer of the size it is given.
        unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(master >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
            let path = std::ffi::CStr::from_ptr(name.as_ptr())
                .to_str()
                .unwrap()
                .to_owned();
            let slave = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(path)
                .unwrap();
            Self {
                master: std::fs::File::from_raw_fd(master),
                slave,
            }
        }
    }

    /// `specsmith-rs ARGS…` in a session of its own with this terminal as its
    /// controlling terminal and stdio, as an interactive shell would start it.
    fn spawn(&self, project: &Project, args: &[&str]) -> std::process::Child {
        let mut words = vec![
            "--project-dir".to_owned(),
            project.root().display().to_string(),
        ];
        words.extend(args.iter().map(|arg| (*arg).to_owned()));
        self.spawn_program(
            project,
            &assert_cmd::cargo::cargo_bin("specsmith-rs")
                .display()
                .to_string(),
            &words,
        )
    }

    /// `program ARGS…` as [`Pty::spawn`] starts specsmith-rs.
    fn spawn_program(
        &self,
        project: &Project,
        program: &str,
        args: &[String],
    ) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env("SPECSMITH_CONFIG_DIR", project.config_dir())
            .env("HOME", project.root())
            .stdin(self.slave.try_clone().unwrap())
            .stdout(self.slave.try_clone().unwrap())
            .stderr(self.slave.try_clone().unwrap());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.spawn().unwrap()
    }

    /// Everything written to the terminal, read on a thread.
    fn output(&self) -> std::sync::Arc<std::sync::Mutex<String>> {
        use std::io::Read;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&seen);
        let mut master = self.master.try_clone().unwrap();
        // Ends when the last holder of the slave closes it (EIO) or the test ends.
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = master.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        seen
    }

    /// The terminal's foreground process group.
    fn foreground(&self) -> i32 {
        use std::os::fd::AsRawFd;
        // SAFETY: a query on a descriptor we own.
        unsafe { libc::tcgetpgrp(self.master.as_raw_fd()) }
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// Waits (bounded) for `child` to exit; kills it and fails when it hangs.
fn exit_within(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("run hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_that_reads_the_terminal_gets_it() {
    use std::io::Write;
    let project = project();
    let pty = Pty::open();
    let seen = pty.output();
    let mut run = pty.spawn(
        &project,
        &run_args(&[], &["sh", "-c", "read line; echo \"got:$line\""]),
    );
    (&pty.master).write_all(b"hello\n").unwrap();
    let status = exit_within(&mut run, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    wait_for("the answer on the terminal", || {
        seen.lock().unwrap().contains("got:hello")
    });
    assert_eq!(snapshot(&project)["rolling_request_count"], 1);
}

#[test]
fn signals_still_end_run_while_its_command_has_the_terminal() {
    let project = project();
    let pty = Pty::open();
    let _seen = pty.output();
    let mut run = pty.spawn(&project, &run_args(&[], &["sh", "-c", "read line"]));
    let run_group = i32::try_from(run.id()).unwrap();
    wait_for("the command to get the terminal", || {
        let foreground = pty.foreground();
        foreground > 0 && foreground != run_group
    });
    send(run.id(), libc::SIGTERM);
    let status = exit_within(&mut run, Duration::from_secs(10));
    assert_eq!(status.code(), Some(143));
    assert_eq!(snapshot(&project)["rolling_request_count"], 1);
}

#[test]
fn a_reservation_reclaimed_during_the_call_still_counts_and_keeps_the_commands_status() {
    let project = project();
    let binary = assert_cmd::cargo::cargo_bin("specsmith-rs");
    // The command wipes the state under run's feet, as a reclaim would.
    let command = format!(
        "'{}' --project-dir '{}' credits limits reset-state >/dev/null; echo done",
        binary.display(),
        project.root().display()
    );
    project
        .cmd(&run_args(&[], &["sh", "-c", &command]))
        .assert()
        .code(0)
        .stdout("done\n")
        .stderr(contains("warning: reservation `rsv-").and(contains(
            "was reclaimed while the command ran (its lease ended or its owner looked dead); its request is no longer in the state, so nothing more is counted",
        )));
}

/// Like `wait_with_output`, but kills a child that hangs and fails the test.
fn output_within(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    use std::io::Read;
    let read = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut stream) = stream {
                stream.read_to_end(&mut bytes).ok();
            }
            bytes
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = exit_within(&mut child, limit);
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

#[test]
fn a_background_run_whose_command_needs_the_terminal_stops_with_a_clear_error() {
    let project = project();
    let pty = Pty::open();
    let seen = pty.output();
    let binary = assert_cmd::cargo::cargo_bin("specsmith-rs");
    // `set -m` puts the background job in a group of its own, as an
    // interactive shell does: `run` is then not in the terminal's foreground.
    let job = format!(
        "set -m; '{}' --project-dir '{}' credits limits run --provider acme --model m1 \
         --input-tokens 100 --max-output-tokens 50 -- sh -c 'read line' & wait $!; echo \"rc=$?\"",
        binary.display(),
        project.root().display()
    );
    let mut shell = pty.spawn_program(&project, "bash", &["-c".to_owned(), job]);
    let status = exit_within(&mut shell, Duration::from_secs(20));
    assert!(status.success());
    wait_for("run's verdict on the terminal", || {
        let seen = seen.lock().unwrap();
        seen.contains("rc=149") && seen.contains("the command stopped to use the terminal")
    });
    assert_eq!(snapshot(&project)["rolling_request_count"], 1);
}
