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
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "both answers pass through unchanged: {stdout}"
    );
    assert!(lines[0].contains("\"code\":\"rate_limit_exceeded\""));
    assert!(lines[1].contains("\"prompt_tokens\":42"));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("curl: (22) The requested URL returned error: 429"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("specsmith-rs: attempt 1 failed (rate_limit: Rate limit reached for gpt-4o")
            && stderr.contains("retrying in 50 ms"),
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
        (0.into(), 0.into())
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
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);
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
fn an_interrupt_reaches_the_command_and_releases_the_reservation() {
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
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "started\nstopping\n"
    );
    let status = snapshot(&project);
    assert_eq!(
        (
            status["in_flight"].clone(),
            status["rolling_request_count"].clone()
        ),
        (0.into(), 0.into())
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
