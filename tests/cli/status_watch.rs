//! `credits limits status --watch`: plain lines when stdout is not a
//! terminal, bounded by `--for` or a signal, and never a write.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use predicates::str::{contains, is_empty};

use crate::fixture::{acquire, acquire_args, Project, STATE};

fn watched_project() -> Project {
    let project = Project::with_profile("acme", "m", 10, 1000, 2);
    project.cmd(&acquire_args(&[])).assert().success();
    project
}

#[test]
fn without_a_terminal_each_pass_is_one_plain_line_per_model_until_for_runs_out() {
    let project = watched_project();
    let state = project.root().join(STATE);
    let before = std::fs::read(&state).unwrap();
    let modified = std::fs::metadata(&state).unwrap().modified().unwrap();
    let started = Instant::now();
    let output = project
        .cmd(&[
            "credits",
            "limits",
            "status",
            "--watch",
            "--for",
            "1",
            "--interval",
            "0.25",
        ])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(10)).contains(&elapsed),
        "{elapsed:?}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    // Passes at 0, 0.25, 0.5, 0.75 and 1 s; a slow machine may fit fewer.
    assert!((3..=6).contains(&lines.len()), "{stdout}");
    for line in &lines {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{line}"
        );
        assert_eq!(
            rest,
            "acme/m requests 1/10 tokens 150/1000 in_flight 1 cap 2/2"
        );
    }
    assert!(
        !stdout.contains('\x1b'),
        "no terminal codes in plain output"
    );
    assert_eq!(std::fs::read(&state).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&state).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn sigterm_ends_a_watch_without_for_promptly_and_cleanly() {
    let project = watched_project();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("specsmith-rs"))
        .arg("--project-dir")
        .arg(project.root())
        .args([
            "credits",
            "limits",
            "status",
            "--watch",
            "--interval",
            "0.2",
        ])
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .env("HOME", project.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first line means the signal watch is installed.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    assert_eq!(stdout.read(&mut first).unwrap(), 1);
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on a process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("status --watch did not end within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// OpenAI's answer when the account is out: a hold on every model of the provider.
const ACCOUNT_QUOTA_BODY: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;

/// Google's free tier with `limit: 0` for one model: a hold on that model.
const MODEL_QUOTA_BODY: &str = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateContentRequestsPerModelPerDay-FreeTier"}]}]}}"#;

/// Records the reservation `id` as refused with `body`.
fn record_refusal(project: &Project, id: &str, body: &str) {
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            id,
            "--rate-limited",
            "--status",
            "429",
            "--error",
            body,
        ])
        .assert()
        .success();
}

/// The text after `marker` on the first line of `text` holding it, up to
/// the seconds left (which may tick between two runs).
fn hold_words<'a>(text: &'a str, marker: &str) -> &'a str {
    let line = text
        .lines()
        .find(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("no `{marker}` in {text}"));
    let words = &line[line.find(marker).unwrap() + marker.len()..];
    &words[..words.find(" (in ").unwrap_or(words.len())]
}

#[test]
fn a_watch_shows_the_holds_status_shows_in_the_same_words() {
    let project = Project::with_profile("acme", "m", 10, 1000, 2);
    let first = acquire(&project, &[]);
    let second = acquire(&project, &[]);
    record_refusal(&project, &first, MODEL_QUOTA_BODY);
    record_refusal(&project, &second, ACCOUNT_QUOTA_BODY);
    let status = project
        .cmd(&["credits", "limits", "status"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let status = String::from_utf8(status.stdout).unwrap();
    let watch = project
        .cmd(&["credits", "limits", "status", "--watch", "--for", "1"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(watch.status.success(), "{watch:?}");
    assert!(watch.stderr.is_empty(), "{watch:?}");
    let watch = String::from_utf8(watch.stdout).unwrap();
    let model_hold = hold_words(&watch, " acme/m hold ");
    assert!(
        model_hold.starts_with("quota until ") && model_hold.ends_with('Z'),
        "{watch}"
    );
    assert_eq!(model_hold, hold_words(&status, "Hold: acme/m "), "{watch}");
    let provider_hold = hold_words(&watch, " acme (every model) hold ");
    assert!(provider_hold.starts_with("quota until "), "{watch}");
    assert_eq!(
        provider_hold,
        hold_words(&status, "Hold: acme (every model) "),
        "{watch}"
    );
    // The provider's words follow the time left, as `status` has them.
    for line in watch.lines().filter(|line| line.contains(" hold ")) {
        assert!(
            line.contains("): You exceeded your current quota"),
            "{line}"
        );
    }
}

#[test]
fn a_watch_of_an_empty_project_creates_nothing() {
    let project = Project::new();
    project
        .cmd(&["credits", "limits", "status", "--watch", "--for", "0"])
        .assert()
        .success()
        .stdout(contains(" no pacing state and no project profiles\n"))
        .stderr(is_empty());
    assert!(!project.exists(".specsmith"));
}

#[test]
fn watch_flags_are_checked() {
    let project = Project::new();
    for (args, expected) in [
        (
            vec!["--for", "1"],
            "the following required arguments were not provided",
        ),
        (vec!["--watch", "--interval", "0"], "from 0.1 to 3600"),
        (
            vec!["--watch", "--for", "-1"],
            "invalid value '-1' for '--for <SECS>'",
        ),
        (vec!["--watch", "--interval", "-2"], "from 0.1 to 3600"),
        (vec!["--watch", "--json"], "cannot be used with"),
    ] {
        let mut full = vec!["credits", "limits", "status"];
        full.extend(args.iter());
        project
            .cmd(&full)
            .assert()
            .code(2)
            .stdout(is_empty())
            .stderr(contains(expected));
    }
}
