//! Holds the provider's answers place on a model, shared by every process:
//! a spent quota refuses (exit 77) until cleared; a prescribed wait or an
//! overload makes every acquire wait it out.

use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

use crate::fixture::{acquire_args, Project};

const QUOTA_BODY: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;

fn project() -> Project {
    Project::with_profile("acme", "m", 100, 100_000, 4)
}

fn acquire_id(project: &Project) -> String {
    let output = project
        .cmd(&acquire_args(&[
            "--owner-pid",
            &std::process::id().to_string(),
        ]))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_spent_quota_holds_every_process_with_exit_77_until_cleared() {
    let project = project();
    let id = acquire_id(&project);
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--rate-limited",
            "--status",
            "429",
            "--error",
            QUOTA_BODY,
        ])
        .assert()
        .success();
    // Another process, later: refused at once, with the reason and the way out.
    let started = Instant::now();
    project
        .cmd(&acquire_args(&[]))
        .assert()
        .code(77)
        .stdout("")
        .stderr(predicate::str::contains("`acme/m` is on hold until"))
        .stderr(predicate::str::contains("You exceeded your current quota"))
        .stderr(predicate::str::contains(
            "credits limits clear-hold --provider acme --model m",
        ));
    assert!(started.elapsed() < Duration::from_secs(5));
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Hold: acme/m quota until "));
    let output = project
        .cmd(&[
            "credits",
            "limits",
            "status",
            "--provider",
            "acme",
            "--model",
            "m",
            "--json",
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["hold"]["kind"], "quota");
    assert!(json["hold"]["until"].as_u64().unwrap() > 0);
    project
        .cmd(&[
            "credits",
            "limits",
            "clear-hold",
            "--provider",
            "acme",
            "--model",
            "m",
        ])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "Cleared the hold on `acme/m`: quota until",
        ));
    acquire_id(&project);
    project
        .cmd(&[
            "credits",
            "limits",
            "clear-hold",
            "--provider",
            "acme",
            "--model",
            "m",
        ])
        .assert()
        .success()
        .stdout("No hold on `acme/m`\n");
}

#[test]
fn a_prescribed_wait_is_a_shared_backoff_that_other_processes_wait_out() {
    let project = project();
    let id = acquire_id(&project);
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--rate-limited",
            "--status",
            "429",
            "--error",
            "Rate limit reached for requests. Please try again in 1.5s.",
        ])
        .assert()
        .success()
        .stdout("1.5\n");
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .assert()
        .code(75)
        .stderr(predicate::str::contains("the end of the provider's hold"));
    let started = Instant::now();
    project
        .cmd(&acquire_args(&["--timeout", "10"]))
        .assert()
        .success();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
}

#[test]
fn run_places_the_quota_hold_and_the_next_run_never_starts_its_command() {
    let project = project();
    let marker = project.root().join("ran");
    let script = format!(
        "touch '{}'; printf '%s' '{QUOTA_BODY}'; exit 1",
        marker.display()
    );
    let run = || {
        project.cmd(&[
            "credits",
            "limits",
            "run",
            "--provider",
            "acme",
            "--model",
            "m",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "1",
            "--",
            "sh",
            "-c",
            &script,
        ])
    };
    run().assert().code(1);
    assert!(marker.exists());
    std::fs::remove_file(&marker).unwrap();
    run()
        .assert()
        .code(77)
        .stderr(predicate::str::contains("is on hold until"));
    assert!(!marker.exists(), "the held run started its command");
}

#[test]
fn clear_hold_refuses_bad_names_and_a_model_without_a_profile() {
    let project = project();
    project
        .cmd(&[
            "credits",
            "limits",
            "clear-hold",
            "--provider",
            "",
            "--model",
            "m",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--provider"));
    project
        .cmd(&[
            "credits",
            "limits",
            "clear-hold",
            "--provider",
            "nobody",
            "--model",
            "m",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no rate-limit profile for `nobody/m`",
        ));
    assert!(!project.exists(".specsmith/model-rate-limit-state.json"));
}
