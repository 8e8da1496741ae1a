//! Accounting that cannot lie: names that cannot collide, counts that never
//! wrap, state files checked on load, and the window's safety margin.

use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use crate::fixture::{acquire, acquire_args, set_args, Project, PROFILES, STATE};

fn state(project: &Project) -> Value {
    serde_json::from_str(&project.read(STATE)).unwrap()
}

/// The numbers of an event column (state format 3: one string, single spaces).
fn column(value: &Value) -> Vec<u64> {
    let text = value.as_str().expect("a column is a string");
    text.split(' ')
        .map(|number| number.parse().unwrap())
        .collect()
}

#[test]
fn names_that_could_share_a_budget_are_refused_naming_the_flag() {
    let project = Project::new();
    for (provider, model, flag) in [
        ("a::b", "m", "--provider <PROVIDER>"),
        ("a", "b::m", "--model <MODEL>"),
        ("a:", "b", "--provider <PROVIDER>"),
        ("a", ":b", "--model <MODEL>"),
    ] {
        project
            .cmd(&set_args(provider, model, "1"))
            .assert()
            .code(2)
            .stderr(contains(format!(
                "for '{flag}': must not contain `::` or begin or end with `:`"
            )));
    }
    assert!(
        !project.exists(".specsmith"),
        "a refused set creates nothing"
    );
    project
        .cmd(&[
            "credits",
            "limits",
            "acquire",
            "--provider",
            "a::b",
            "--model",
            "m",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(contains(
            "for '--provider <PROVIDER>': must not contain `::`",
        ));
    // A single colon inside a name is an ordinary model name.
    project
        .cmd(&set_args("ollama", "llama3:8b", "1"))
        .assert()
        .success();
}

#[test]
fn a_profile_file_holding_a_colliding_name_is_refused_naming_the_file() {
    let project = Project::new();
    let text = r#"[{"provider":"a::b","model":"m","rpm_limit":1,"tpm_limit":5},
{"provider":"a","model":"b::m","rpm_limit":2,"tpm_limit":5}]"#;
    project.write(PROFILES, text);
    let file = project.root().join(PROFILES).display().to_string();
    for args in [
        &["credits", "limits", "list"][..],
        &set_args("other", "m", "1")[..],
    ] {
        project
            .cmd(args)
            .assert()
            .code(2)
            .stderr(contains(format!("`{file}` is invalid")))
            .stderr(contains("provider `a::b` must not contain `::`"));
    }
    assert_eq!(project.read(PROFILES), text, "never merged or rewritten");
}

#[test]
fn token_counts_beyond_the_state_range_are_refused_with_the_range() {
    let project = Project::with_profile("acme", "m", 10, 1_000_000, 1);
    let id = acquire(&project, &[]);
    let before = project.read(STATE);
    for value in ["18446744073709551615", "9007199254740992", "-1"] {
        project
            .cmd(&[
                "credits",
                "limits",
                "record",
                &id,
                "--input-tokens",
                value,
                "--output-tokens",
                "1",
            ])
            .assert()
            .code(2)
            .stderr(contains(format!(
                "invalid value '{value}' for '--input-tokens <N>': must be a whole number from 0 to 9007199254740991"
            )));
    }
    assert_eq!(project.read(STATE), before);
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "9007199254740991",
            "--output-tokens",
            "9007199254740991",
        ])
        .assert()
        .success();
    let json = state(&project);
    assert_eq!(
        column(&json["models"]["acme::m"]["events"]["tokens"])[0],
        9_007_199_254_740_991u64,
        "saturates at the range, never wraps"
    );
    project
        .cmd(&[
            "credits",
            "limits",
            "acquire",
            "--provider",
            "acme",
            "--model",
            "m",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "18446744073709551615",
        ])
        .assert()
        .code(2)
        .stderr(contains(
            "for '--max-output-tokens <N>': must be a whole number from 0 to 9007199254740991",
        ));
}

#[test]
fn a_state_file_at_the_sequence_limit_is_refused_naming_the_file() {
    let project = Project::with_profile("acme", "m", 10, 1_000_000, 1);
    acquire(&project, &[]);
    let mut json = state(&project);
    let model = &mut json["models"]["acme::m"];
    model["next_sequence"] = u64::MAX.into();
    model["events"]["first"] = (u64::MAX - 1).into();
    model["in_flight"][0]["sequence"] = (u64::MAX - 1).into();
    let text = serde_json::to_string_pretty(&json).unwrap();
    project.write(STATE, &text);
    let file = project.root().join(STATE).display().to_string();
    project
        .cmd(&acquire_args(&[]))
        .assert()
        .code(2)
        .stderr(contains(format!("`{file}` is invalid: model `acme/m`: next_sequence 18446744073709551615 is out of range (0 to 9007199254740991)")));
    assert_eq!(project.read(STATE), text);
}

/// Breaks a state file in one way.
type Breaking = fn(&mut Value);

#[test]
fn inconsistent_state_files_are_refused_naming_the_file_and_left_alone() {
    let project = Project::with_profile("acme", "m", 10, 1_000_000, 2);
    acquire(&project, &[]);
    let file = project.root().join(STATE).display().to_string();
    let original = state(&project);
    let broken: Vec<(Breaking, &str)> = vec![
        (
            |json| json["models"]["acme::m"]["in_flight"][0]["sequence"] = 7.into(),
            "which was never admitted",
        ),
        (
            |json| json["models"]["acme::m"]["in_flight"][0]["model"] = "n".into(),
            "belongs to `acme/n`",
        ),
        (
            |json| json["models"]["acme::m"]["current_concurrency_cap"] = 5.into(),
            "current_concurrency_cap 5 is above base_concurrency_cap 2",
        ),
        (
            |json| {
                let model = json["models"]["acme::m"].take();
                json["models"] = serde_json::json!({ "acme::x": model });
            },
            "is stored under the key `acme::x`, not `acme::m`",
        ),
        (
            |json| json["version"] = 0.into(),
            "`version` 0 is not a state format version",
        ),
    ];
    for (breaking, expected) in broken {
        let mut json = original.clone();
        breaking(&mut json);
        let text = serde_json::to_string_pretty(&json).unwrap();
        project.write(STATE, &text);
        for args in [
            acquire_args(&[]),
            vec![
                "credits",
                "limits",
                "status",
                "--provider",
                "acme",
                "--model",
                "m",
            ],
        ] {
            project
                .cmd(&args)
                .assert()
                .code(2)
                .stderr(contains(format!("`{file}` is invalid: ")))
                .stderr(contains(expected));
        }
        assert_eq!(project.read(STATE), text, "{expected}");
    }
}

#[test]
fn unknown_top_level_fields_survive_a_rewrite() {
    let project = Project::with_profile("acme", "m", 10, 1_000_000, 2);
    acquire(&project, &[]);
    let mut json = state(&project);
    json["note"] = "kept by a later specsmith".into();
    project.write(STATE, &serde_json::to_string_pretty(&json).unwrap());
    acquire(&project, &[]);
    let json = state(&project);
    assert_eq!(json["note"], "kept by a later specsmith");
    assert_eq!(column(&json["models"]["acme::m"]["events"]["at"]).len(), 2);
}

#[test]
fn the_window_margin_keeps_a_request_counted_past_the_minute() {
    let project = Project::with_profile("acme", "m", 1, 1_000_000, 5);
    acquire(&project, &[]);
    // Move the admitted request back to exactly 60 s ago: without a margin
    // it would have left the window.
    let mut json = state(&project);
    let now = column(&json["models"]["acme::m"]["events"]["at"])[0];
    let at = now - 60_000;
    json["models"]["acme::m"]["events"]["at"] = at.to_string().into();
    json["models"]["acme::m"]["in_flight"][0]["acquired_at"] = at.into();
    project.write(STATE, &serde_json::to_string_pretty(&json).unwrap());
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .env("SPECSMITH_WINDOW_MARGIN", "30")
        .assert()
        .code(75)
        .stderr(predicate::str::is_match(r"the wait would have been (2\d|30)\.\d s more").unwrap());
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .env("SPECSMITH_WINDOW_MARGIN", "0")
        .assert()
        .success();
}

#[test]
fn a_bad_window_margin_is_refused_naming_the_variable() {
    let project = Project::with_profile("acme", "m", 1, 1_000_000, 5);
    for value in ["-1", "61", "soon", "inf"] {
        project
            .cmd(&acquire_args(&[]))
            .env("SPECSMITH_WINDOW_MARGIN", value)
            .assert()
            .code(2)
            .stderr(format!(
                "error: SPECSMITH_WINDOW_MARGIN: `{value}` must be a number of seconds from 0 to 60\n"
            ));
    }
    assert!(!project.exists(STATE), "a refused acquire creates nothing");
}

fn acquire_tokens(input: &str) -> Vec<&str> {
    vec![
        "credits",
        "limits",
        "acquire",
        "--provider",
        "acme",
        "--model",
        "m",
        "--input-tokens",
        input,
        "--max-output-tokens",
        "0",
    ]
}

#[test]
fn a_waiter_in_another_process_is_not_passed_and_its_death_frees_the_queue() {
    let project = Project::with_profile("acme", "m", 100, 1_000, 8);
    project.cmd(&acquire_tokens("600")).assert().success();
    // A large request waits in another process for the first to leave.
    let mut waiter = StdCommand::new(assert_cmd::cargo::cargo_bin("specsmith-rs"));
    waiter
        .current_dir(project.root())
        .env("HOME", project.config_dir())
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .arg("--project-dir")
        .arg(project.root())
        .args(acquire_tokens("800"))
        .args(["--timeout", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut waiter = waiter.spawn().unwrap();
    let started = Instant::now();
    let waiter_pid = u64::from(waiter.id());
    loop {
        let tickets = state(&project)["models"]["acme::m"]["waiters"].clone();
        if tickets[0]["owner"]["pid"] == waiter_pid {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the waiter took no ticket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // 300 tokens fit now but would delay the waiter by a minute: refused.
    project
        .cmd(
            &acquire_tokens("300")
                .into_iter()
                .chain(["--timeout", "0"])
                .collect::<Vec<_>>(),
        )
        .assert()
        .code(75)
        .stderr(contains(
            "waiting for its turn behind earlier waiters of `acme/m`",
        ));
    // 100 tokens fit beside it: passing cannot delay it.
    project
        .cmd(
            &acquire_tokens("100")
                .into_iter()
                .chain(["--timeout", "0"])
                .collect::<Vec<_>>(),
        )
        .assert()
        .success();
    waiter.kill().unwrap();
    waiter.wait().unwrap();
    // A killed waiter's ticket goes with it.
    project
        .cmd(
            &acquire_tokens("300")
                .into_iter()
                .chain(["--timeout", "0"])
                .collect::<Vec<_>>(),
        )
        .assert()
        .success();
    assert!(state(&project)["models"]["acme::m"]
        .get("waiters")
        .is_none());
}

/// A profile of later Python releases: a thinking budget and bucket caps.
fn thinking_project(extra: &str) -> Project {
    let project = Project::new();
    project.write(
        PROFILES,
        &format!(
            r#"[{{"provider": "acme", "model": "m", "rpm_limit": 100, "tpm_limit": 10000,
  "utilization_target": 1.0, "concurrency_cap": 4, "source": "local"{extra}}}]"#
        ),
    );
    project
}

#[test]
fn the_thinking_budget_joins_the_estimate_and_record_counts_reasoning_tokens() {
    let project = thinking_project(r#", "tpm_thinking_budget": 4000"#);
    let output = project.cmd(&acquire_args(&["--json"])).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let acquired: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(acquired["max_output_tokens"], 4_050, "{acquired}");
    assert_eq!(acquired["estimated_tokens"], 4_150);
    let id = acquired["reservation_id"].as_str().unwrap();
    // Gemini-style: 20 visible output tokens and 900 thoughts reported apart.
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            id,
            "--input-tokens",
            "100",
            "--output-tokens",
            "20",
            "--reasoning-tokens",
            "900",
        ])
        .assert()
        .success()
        .stdout(contains("1,020 tokens (estimated 4,150)"));
    let status = crate::harness::status_json(&project, "acme", "m");
    assert_eq!(status["rolling_token_count"], 1_020);
    // Bad input: one line naming the flag, nothing recorded.
    let id = acquire(&project, &[]);
    for (flags, expected) in [
        (vec!["--reasoning-tokens", "-1"], "--reasoning-tokens"),
        (
            vec!["--rate-limited", "--reasoning-tokens", "5"],
            "--reasoning-tokens",
        ),
    ] {
        let mut args = vec!["credits", "limits", "record", id.as_str()];
        if !flags.contains(&"--rate-limited") {
            args.extend(["--input-tokens", "1", "--output-tokens", "1"]);
        }
        args.extend(flags.iter().copied());
        project
            .cmd(&args)
            .assert()
            .code(2)
            .stderr(contains(expected));
    }
    let status = crate::harness::status_json(&project, "acme", "m");
    assert_eq!(status["in_flight"], 1, "the reservation is still in flight");
}

#[test]
fn a_malformed_later_field_is_an_error_naming_the_file_and_field() {
    let project = thinking_project(r#", "tpm_thinking_budget": "lots""#);
    let output = project
        .cmd(&acquire_args(&[]))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("model-rate-limits.json"), "{stderr}");
    assert!(
        stderr.contains("tpm_thinking_budget must be a whole number of tokens"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!project.exists(STATE));
}
