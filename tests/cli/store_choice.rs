//! Choosing the pacing store (`--store`, `SPECSMITH_STORE`,
//! `.specsmith/pacing-store.json`) and the fail modes when a shared store
//! cannot be reached. No test here needs a Redis server: the unreachable
//! store is a loopback port nothing listens on.

use std::net::TcpListener;

use predicates::prelude::*;

use crate::fixture::{acquire_args, Project, STATE};

/// A loopback URL with a password on which nothing listens.
fn dead_store() -> String {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    format!("redis://agent:s3cret-pw@127.0.0.1:{port}/0")
}

fn project() -> Project {
    Project::with_profile("acme", "m", 1, 100_000, 1)
}

#[test]
fn a_bad_store_text_is_refused_naming_its_origin_and_creates_nothing() {
    let project = Project::new();
    project
        .cmd(&acquire_args(&["--store", "memcached://x"]))
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: --store: "))
        .stderr(predicate::str::contains("unsupported scheme"));
    project
        .cmd(&["credits", "limits", "status"])
        .env("SPECSMITH_STORE", "redis://user:hunter2@:0")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: SPECSMITH_STORE: "))
        .stderr(predicate::str::contains("hunter2").not());
    project
        .cmd(&acquire_args(&["--on-store-error", "maybe"]))
        .assert()
        .code(2)
        .stderr("error: --on-store-error: `maybe` is not a fail mode (use `open` or `closed`)\n");
    assert!(!project.exists(".specsmith"));
}

#[test]
fn a_bad_setting_file_is_refused_naming_the_file_and_field() {
    let project = project();
    project.write(".specsmith/pacing-store.json", r#"{"store": "ftp://x"}"#);
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("pacing-store.json` field `store`"));
    project.write(".specsmith/pacing-store.json", r#"{"stor": "file"}"#);
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown field `stor`"));
    project.write(".specsmith/pacing-store.json", "{\n  \"store\": ");
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("pacing-store.json"));
}

#[test]
fn fail_open_lets_the_call_through_unpaced_with_one_warning_and_no_password() {
    let project = project();
    let store = dead_store();
    // RPM 1 and a cap of 1 would hold the second call; unpaced, nothing holds.
    for _ in 0..2 {
        let output = project
            .cmd(&acquire_args(&["--store", &store, "--timeout", "0"]))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let id = String::from_utf8(output.stdout).unwrap();
        assert!(id.starts_with("rsv-unpaced-"), "{id}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("warning: the pacing store redis://agent:***@127.0.0.1:"),
            "{stderr}"
        );
        assert!(stderr.contains("going ahead unpaced"), "{stderr}");
        assert!(!stderr.contains("s3cret-pw"), "{stderr}");
        project
            .cmd(&[
                "credits",
                "limits",
                "record",
                id.trim(),
                "--input-tokens",
                "1",
                "--output-tokens",
                "1",
                "--store",
                &store,
            ])
            .assert()
            .success()
            .stdout(predicate::str::contains("was not paced"));
    }
    // The file store was never touched.
    assert!(!project.exists(STATE));
}

#[test]
fn a_rate_limit_recorded_while_unpaced_still_prints_the_providers_wait() {
    let project = project();
    let store = dead_store();
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            "rsv-unpaced-00000000000000aa",
            "--rate-limited",
            "--status",
            "429",
            "--error",
            "Rate limit reached. Please try again in 7s.",
            "--store",
            &store,
        ])
        .assert()
        .success()
        .stdout("7\n");
}

#[test]
fn run_goes_ahead_unpaced_when_the_store_is_down_and_fails_closed_with_69() {
    let project = project();
    let store = dead_store();
    let run = |mode: &str| {
        project
            .cmd(&[
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
                "--store",
                &store,
                "--on-store-error",
                mode,
                "--",
                "sh",
                "-c",
                "echo ran",
            ])
            .assert()
    };
    run("open")
        .success()
        .stdout("ran\n")
        .stderr(predicate::str::contains("going ahead unpaced"));
    run("closed")
        .code(69)
        .stdout("")
        .stderr(predicate::str::contains("is unavailable"))
        .stderr(predicate::str::contains("s3cret-pw").not());
}

#[test]
fn fail_closed_exits_69_from_every_pacing_command_and_status_always_reports_the_outage() {
    let project = project();
    let store = dead_store();
    project.write(
        ".specsmith/pacing-store.json",
        &format!(r#"{{"store": "{store}", "on_error": "closed"}}"#),
    );
    let before = project.read(".specsmith/pacing-store.json");
    project.cmd(&acquire_args(&[])).assert().code(69);
    for args in [
        vec![
            "credits",
            "limits",
            "record",
            "rsv-00000000000000aa",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
        ],
        vec!["credits", "limits", "release", "rsv-00000000000000aa"],
        vec!["credits", "limits", "status"],
        vec!["credits", "limits", "reset-state"],
    ] {
        project
            .cmd(&args)
            .assert()
            .code(69)
            .stderr(predicate::str::contains("is unavailable"))
            .stderr(predicate::str::contains("s3cret-pw").not());
    }
    // Status is a reading, not a pacing call: fail-open does not hide the outage.
    project
        .cmd(&["credits", "limits", "status", "--on-store-error", "open"])
        .assert()
        .code(69);
    assert!(!project.exists(STATE));
    assert_eq!(project.read(".specsmith/pacing-store.json"), before);
}

#[test]
fn the_flag_beats_the_variable_and_the_setting_file() {
    let project = project();
    project.write(
        ".specsmith/pacing-store.json",
        &format!(r#"{{"store": "{}", "on_error": "closed"}}"#, dead_store()),
    );
    // `--store file` takes the project's state file whatever the others say.
    project
        .cmd(&acquire_args(&["--store", "file"]))
        .env("SPECSMITH_STORE", dead_store())
        .assert()
        .success()
        .stdout(predicate::str::starts_with("rsv-").and(predicate::str::contains("unpaced").not()));
    assert!(project.exists(STATE));
    project
        .cmd(&["credits", "limits", "status", "--store", "file"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Store: the state file"));
    // The variable beats the file: its fail mode `open` lets acquire through.
    project
        .cmd(&acquire_args(&[]))
        .env("SPECSMITH_STORE_ON_ERROR", "open")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("rsv-unpaced-"));
}
