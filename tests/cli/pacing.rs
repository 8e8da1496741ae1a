//! `credits limits acquire | record | release | status | reset-state`.

use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

use crate::fixture::{acquire, acquire_args, Project, STATE};
use crate::harness::{status_json, status_text};

/// A project with one profile: `acme/m` at target 1 (effective = given).
fn project_with(rpm: u64, tpm: u64, concurrency: u32) -> Project {
    Project::with_profile("acme", "m", rpm, tpm, concurrency)
}

/// The binary as a plain std command, to run many at once.
fn spawnable(project: &Project, args: &[&str]) -> StdCommand {
    let mut command = StdCommand::new(assert_cmd::cargo::cargo_bin("specsmith-rs"));
    command
        .current_dir(project.root())
        .env("HOME", project.config_dir())
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .env("NO_COLOR", "1")
        .arg("--project-dir")
        .arg(project.root())
        .args(args);
    command
}

#[test]
fn acquire_prints_an_id_that_record_settles_with_actual_tokens() {
    let project = project_with(10, 1000, 2);
    let id = acquire(&project, &[]);
    assert!(
        id.starts_with("rsv-") && id.len() == 20 && !id.contains('\n'),
        "{id}"
    );
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["rolling_request_count"], 1);
    assert_eq!(status["rolling_token_count"], 150);
    assert_eq!(status["in_flight"], 1);
    assert_eq!(status["reservations"][0]["id"], id.as_str());
    // The owner is the process that ran specsmith-rs: this test.
    assert_eq!(
        status["reservations"][0]["owner"]["pid"],
        u64::from(std::process::id())
    );
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "30",
            "--output-tokens",
            "12",
        ])
        .assert()
        .success()
        .stdout(format!("Recorded `{id}`: 42 tokens (estimated 150)\n"));
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["rolling_token_count"], 42);
    assert_eq!(status["in_flight"], 0);
    assert_eq!(status["reservations"], serde_json::json!([]));
}

#[test]
fn status_json_has_every_anchor_field() {
    let project = project_with(10, 1000, 2);
    acquire(&project, &[]);
    let status = status_json(&project, "acme", "m");
    for field in [
        "provider",
        "model",
        "rpm_limit",
        "tpm_limit",
        "effective_rpm_limit",
        "effective_tpm_limit",
        "rolling_request_count",
        "rolling_token_count",
        "moving_average_requests",
        "moving_average_tokens",
        "request_utilization",
        "token_utilization",
        "base_concurrency_cap",
        "current_concurrency_cap",
        "in_flight",
        "reservations",
    ] {
        assert!(status.get(field).is_some(), "missing {field}: {status}");
    }
    assert_eq!(status["request_utilization"], 0.1);
    assert_eq!(status["token_utilization"], 0.15);
    assert!(
        status["reservations"][0]["lease_expires_at"]
            .as_u64()
            .unwrap()
            > 1_700_000_000_000
    );
}

#[test]
fn acquire_json_reports_id_wait_and_estimate() {
    let project = project_with(10, 1000, 2);
    let output = project.cmd(&acquire_args(&["--json"])).output().unwrap();
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["reservation_id"].as_str().unwrap().starts_with("rsv-"));
    // A grant on the first try waits for nothing but the state file's lock.
    assert!(json["waited_seconds"].as_f64().unwrap() < 1.0);
    assert_eq!(json["estimated_tokens"], 150);
    assert_eq!(json["estimated_input_tokens"], 100);
    assert_eq!(json["max_output_tokens"], 50);
}

#[test]
fn timeout_zero_is_a_non_blocking_try_that_exits_75_with_the_wait() {
    let project = project_with(1, 1000, 5);
    acquire(&project, &[]);
    let before = project.read(STATE);
    let started = Instant::now();
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .assert()
        .code(75)
        .stdout("")
        .stderr(predicate::str::is_match(
            r"^error: timed out after 0\.0 s waiting for the requests-per-minute budget of `acme/m`: the wait would have been (5\d\.\d|6[01]\.\d) s more\n$",
        ).unwrap());
    assert!(started.elapsed() < Duration::from_secs(5));
    let after: Value = serde_json::from_str(&project.read(STATE)).unwrap();
    let before: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(
        after["models"]["acme::m"]["events"], before["models"]["acme::m"]["events"],
        "a refused acquire counts nothing"
    );
}

#[test]
fn a_budget_wait_longer_than_the_timeout_gives_up_at_once() {
    let project = project_with(1, 1000, 5);
    acquire(&project, &[]);
    let started = Instant::now();
    project
        .cmd(&acquire_args(&["--timeout", "30"]))
        .assert()
        .code(75)
        .stderr(predicate::str::contains("the wait would have been"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_concurrency_wait_polls_until_the_timeout_without_progress_off_a_terminal() {
    let project = project_with(100, 100000, 1);
    acquire(&project, &[]);
    let started = Instant::now();
    project
        .cmd(&acquire_args(&["--timeout", "0.5"]))
        .assert()
        .code(75)
        .stderr(predicate::str::is_match(
            r"^error: timed out after 0\.\d s waiting for a concurrency slot of `acme/m`: the wait would have been up to \d+\.\d s more \(until the earliest lease ends\)\n$",
        ).unwrap());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
}

#[test]
fn an_expired_lease_frees_the_slot_for_a_blocked_acquire() {
    let project = project_with(100, 100000, 1);
    acquire(&project, &["--lease", "1"]);
    let started = Instant::now();
    let id = acquire(&project, &["--timeout", "10"]);
    let elapsed = started.elapsed();
    assert!(id.starts_with("rsv-"));
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["in_flight"], 1);
    // The first reservation's request still counts; its unused estimate does not.
    assert_eq!(status["rolling_request_count"], 2);
    assert_eq!(status["rolling_token_count"], 150);
}

#[test]
fn an_estimate_over_the_effective_tpm_fails_at_once_naming_both_numbers() {
    let project = project_with(10, 100, 1);
    project
        .cmd(&acquire_args(&[]))
        .assert()
        .code(2)
        .stderr("error: request for `acme/m` estimates 150 tokens, more than the effective TPM limit of 100: it can never be admitted\n");
}

#[test]
fn a_model_without_a_profile_is_an_error_with_a_hint() {
    let project = Project::new();
    project
        .cmd(&[
            "credits",
            "limits",
            "acquire",
            "--provider",
            "nobody",
            "--model",
            "x",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: no rate-limit profile for `nobody/x`\nhint: add one with",
        ));
    assert!(!project.exists(STATE));
}

#[test]
fn rate_limited_record_prints_the_delay_and_halves_the_cap() {
    let project = project_with(100, 100000, 4);
    let id = acquire(&project, &[]);
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
            "Rate limit reached. Please try again in 7.5s",
        ])
        .assert()
        .success()
        .stdout("7.5\n")
        .stderr("");
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["current_concurrency_cap"], 2);
    assert_eq!(status["in_flight"], 0);
}

#[test]
fn a_bogus_provider_delay_is_capped_by_max_delay() {
    let project = project_with(100, 100000, 4);
    // Both acquired first: the first record places a shared backoff.
    let ids = [acquire(&project, &[]), acquire(&project, &[])];
    for ((extra, expected), id) in [(None, "60\n"), (Some("5"), "5\n")].into_iter().zip(ids) {
        let mut args = vec![
            "credits",
            "limits",
            "record",
            &id,
            "--rate-limited",
            "--error",
            "too many requests, retry after 7200 seconds",
        ];
        if let Some(max) = extra {
            args.extend(["--max-delay", max]);
        }
        project.cmd(&args).assert().success().stdout(expected);
    }
}

#[test]
fn rate_limited_record_reads_the_error_from_stdin_or_a_file() {
    let project = project_with(100, 100000, 4);
    let id = acquire(&project, &[]);
    let output = project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--rate-limited",
            "--error-file",
            "-",
            "--json",
        ])
        .write_stdin("429 Too Many Requests: try again in 250ms")
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["reservation_id"], id.as_str());
    assert_eq!(json["delay_seconds"], 0.25);
    assert_eq!(json["retry_after_seconds"], 0.25);
    assert_eq!(json["kind"], "rate_limit");
    assert_eq!(json["snapshot"]["current_concurrency_cap"], 2);

    let id = acquire(&project, &[]);
    project.write("error.txt", "rate limit exceeded");
    let output = project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--rate-limited",
            "--error-file",
            "error.txt",
            "--attempt",
            "3",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    // No prescribed wait: 1 s × 2^(3−1) plus up to 20 % jitter.
    let delay: f64 = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((4.0..=4.8).contains(&delay), "{delay}");
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            "rsv-0000000000000000",
            "--rate-limited",
            "--error-file",
            "missing.txt",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: --error-file `missing.txt`",
        ));
}

#[test]
fn record_needs_tokens_or_rate_limited() {
    let project = project_with(100, 100000, 4);
    project
        .cmd(&["credits", "limits", "record", "rsv-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--input-tokens"));
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            "rsv-1",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
            "--error",
            "x",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--rate-limited"));
}

#[test]
fn release_gives_back_the_slot_request_and_tokens() {
    let project = project_with(1, 1000, 1);
    let id = acquire(&project, &[]);
    project
        .cmd(&["credits", "limits", "release", &id])
        .assert()
        .success()
        .stdout(format!("Released `{id}` (acme/m)\n"));
    // RPM 1 and cap 1: only a full give-back admits another request now.
    acquire(&project, &["--timeout", "0"]);
}

#[test]
fn an_unknown_id_is_an_error_naming_it_and_the_file_is_untouched() {
    let project = project_with(10, 1000, 2);
    acquire(&project, &[]);
    let before = project.read(STATE);
    for command in [
        vec![
            "record",
            "rsv-feedfeedfeedfeed",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
        ],
        vec!["record", "rsv-feedfeedfeedfeed", "--rate-limited"],
        vec!["release", "rsv-feedfeedfeedfeed"],
    ] {
        let mut args = vec!["credits", "limits"];
        args.extend(command);
        project
            .cmd(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with(
                "error: unknown reservation `rsv-feedfeedfeedfeed`",
            ));
        assert_eq!(project.read(STATE), before);
    }
}

#[test]
fn a_corrupt_or_newer_state_file_is_refused_by_every_command_and_left_alone() {
    let project = project_with(10, 1000, 2);
    let cases = [
        ("{\"version\": 1, \"models\": {", "is invalid at line 1"),
        (
            "{\"version\": 7, \"models\": {}}",
            "has state format version 7; this specsmith reads versions 1 to 4",
        ),
    ];
    for (text, expected) in cases {
        project.write(STATE, text);
        let commands: [&[&str]; 4] = [
            &acquire_args(&[]),
            &[
                "credits",
                "limits",
                "record",
                "rsv-1",
                "--input-tokens",
                "1",
                "--output-tokens",
                "1",
            ],
            &["credits", "limits", "release", "rsv-1"],
            &["credits", "limits", "status"],
        ];
        for args in commands {
            let assert = project.cmd(args).assert().code(2).stdout("");
            let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
            let stderr = project.redact(&stderr);
            assert!(
                stderr.starts_with("error: `[ROOT]/.specsmith/model-rate-limit-state.json`")
                    && stderr.contains(expected),
                "{args:?}: {stderr}"
            );
            assert_eq!(project.read(STATE), text, "{args:?} touched the file");
        }
    }
    project
        .cmd(&["credits", "limits", "reset-state"])
        .assert()
        .success();
    assert!(!project.exists(STATE));
}

#[test]
fn status_without_flags_is_a_table_of_models_in_use() {
    let project = project_with(10, 1000, 2);
    project
        .cmd(&[
            "credits",
            "limits",
            "set",
            "--provider",
            "acme",
            "--model",
            "idle",
            "--rpm",
            "5",
            "--tpm",
            "500",
            "--target",
            "1",
        ])
        .assert()
        .success();
    acquire(&project, &[]);
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            " PROVIDER   MODEL   REQUESTS      TOKENS   IN FLIGHT   CAP\n\
             ───────────────────────────────────────────────────────────\n \
             acme       idle         0/5       0/500           0   1/1\n \
             acme       m           1/10   150/1,000           1   2/2\n\
             Store: the state file `",
        ))
        .stdout(predicate::str::ends_with(
            ".specsmith/model-rate-limit-state.json`\n",
        ));
    let output = project
        .cmd(&["credits", "limits", "status", "--json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[1]["in_flight"], 1);
}

#[test]
fn status_on_a_fresh_project_creates_nothing() {
    let project = project_with(10, 1000, 2);
    let text = status_text(&project, "acme", "m");
    assert!(
        text.starts_with("acme/m\n  requests     0 of 10 per minute (0.0 %; provider limit 10)\n"),
        "{text}"
    );
    assert!(!project.exists(STATE));
    assert!(!project.exists(".specsmith/model-rate-limit-state.json.lock"));
}

#[test]
fn reset_state_removes_the_runtime_state() {
    let project = project_with(1, 1000, 1);
    acquire(&project, &[]);
    project
        .cmd(&["credits", "limits", "reset-state"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("Removed pacing state"));
    assert!(!project.exists(STATE));
    assert!(project.exists(".specsmith/model-rate-limits.json"));
    project
        .cmd(&["credits", "limits", "reset-state"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("No pacing state at"));
    acquire(&project, &["--timeout", "0"]);
}

#[test]
fn racing_processes_get_exactly_the_budget() {
    let project = project_with(10, 1000000, 1000);
    let racers: Vec<_> = (0..30)
        .map(|_| {
            spawnable(&project, &acquire_args(&["--timeout", "0"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for racer in racers {
        let output = racer.wait_with_output().unwrap();
        match output.status.code() {
            Some(0) => admitted.push(String::from_utf8(output.stdout).unwrap()),
            Some(75) => refused += 1,
            other => panic!(
                "unexpected exit {other:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
    assert_eq!((admitted.len(), refused), (10, 20));
    admitted.sort();
    admitted.dedup();
    assert_eq!(admitted.len(), 10, "ids are unique");
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["rolling_request_count"], 10);
    assert_eq!(status["in_flight"], 10);
}

#[test]
fn a_killed_holders_slot_comes_back() {
    let project = project_with(100, 100000, 1);
    let mut holder = StdCommand::new("sleep").arg("60").spawn().unwrap();
    let pid = holder.id().to_string();
    acquire(&project, &["--owner-pid", &pid]);
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .assert()
        .code(75);
    holder.kill().unwrap();
    holder.wait().unwrap();
    acquire(&project, &["--timeout", "0"]);
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["in_flight"], 1);
    assert_eq!(
        status["rolling_token_count"], 150,
        "the dead holder's estimate came back"
    );
}

#[test]
fn the_calling_script_owns_the_reservation_and_its_death_frees_it() {
    let project = project_with(100, 100000, 1);
    let id_file = project.root().join("id");
    // The shell that runs acquire is the owner, not the acquire process.
    let mut script = StdCommand::new("sh")
        .arg("-c")
        .arg("\"$0\" --project-dir \"$1\" credits limits acquire --provider acme --model m --input-tokens 1 --max-output-tokens 1 > \"$2.tmp\" && mv \"$2.tmp\" \"$2\" && sleep 60")
        .arg(assert_cmd::cargo::cargo_bin("specsmith-rs"))
        .arg(project.root())
        .arg(&id_file)
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !id_file.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = status_json(&project, "acme", "m");
    assert_eq!(
        status["reservations"][0]["owner"]["pid"],
        u64::from(script.id())
    );
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .assert()
        .code(75);
    script.kill().unwrap();
    script.wait().unwrap();
    acquire(&project, &["--timeout", "0"]);
}

#[test]
fn an_owner_pid_that_does_not_exist_is_refused() {
    let project = project_with(100, 100000, 1);
    let mut gone = StdCommand::new("true").spawn().unwrap();
    let pid = gone.id().to_string();
    gone.wait().unwrap();
    project
        .cmd(&acquire_args(&["--owner-pid", &pid]))
        .assert()
        .code(2)
        .stderr(format!("error: --owner-pid {pid}: no such process\n"));
}

/// `acme/m` at concurrency 3 with buckets `reasoning` (1) and `background` (2).
fn bucket_project() -> Project {
    let project = Project::new();
    project.write(
        crate::fixture::PROFILES,
        r#"[{"provider": "acme", "model": "m", "rpm_limit": 100, "tpm_limit": 100000,
  "utilization_target": 1.0, "concurrency_cap": 3, "source": "local",
  "concurrency_by_bucket": {"reasoning": 1, "background": 2}}]"#,
    );
    project
}

#[test]
fn acquire_and_run_honour_the_bucket_caps_and_status_shows_them() {
    let project = bucket_project();
    let before = project.read(crate::fixture::PROFILES);
    let id = acquire(&project, &["--bucket", "Reasoning", "--timeout", "0"]);
    project
        .cmd(&acquire_args(&["--bucket", "reasoning", "--timeout", "0"]))
        .assert()
        .code(75)
        .stderr(predicate::str::contains(
            "waiting for a slot of its concurrency bucket of `acme/m`",
        ));
    // Another bucket, and the model's shared cap, still have room.
    acquire(&project, &["--bucket", "background", "--timeout", "0"]);
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Buckets: acme/m background 1/2, reasoning 1/1",
        ));
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["buckets"][1]["bucket"], "reasoning", "{status}");
    assert_eq!(status["buckets"][1]["in_flight"], 1);
    assert_eq!(status["buckets"][1]["cap"], 1);
    let buckets: Vec<&str> = status["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reservation| reservation["bucket"].as_str().unwrap_or(""))
        .collect();
    assert!(buckets.contains(&"reasoning") && buckets.contains(&"background"));
    let text = status_text(&project, "acme", "m");
    assert!(
        text.contains("  buckets      background 1/2, reasoning 1/1"),
        "{text}"
    );
    // `run` in the full bucket waits for it; freed, it runs.
    let run = |timeout: &str| {
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
                "--bucket",
                "reasoning",
                "--deadline",
                timeout,
                "--",
                "true",
            ])
            .assert()
    };
    run("0.3").code(75);
    project
        .cmd(&["credits", "limits", "release", &id])
        .assert()
        .success();
    run("5").success();
    assert_eq!(
        project.read(crate::fixture::PROFILES),
        before,
        "profiles untouched"
    );
}

#[test]
fn a_bad_or_unknown_bucket_is_one_line_naming_the_flag() {
    let project = bucket_project();
    for (bucket, expected) in [
        (
            "longform",
            "error: --bucket: `acme/m` has no concurrency bucket `longform` (its profile's buckets: background, reasoning)\n",
        ),
        (" ", "for '--bucket <NAME>': must not be empty"),
        ("a\u{7}b", "for '--bucket <NAME>': must not contain control characters"),
    ] {
        let output = project
            .cmd(&acquire_args(&["--bucket", bucket]))
            .assert()
            .code(2)
            .stdout("")
            .get_output()
            .clone();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(expected), "{bucket:?}: {stderr}");
        if bucket == "longform" {
            assert_eq!(stderr, expected);
        }
    }
    assert!(!project.exists(STATE), "a refused acquire leaves no state");
    // A model whose profile sets no buckets says so.
    let plain = project_with(10, 1000, 1);
    plain
        .cmd(&acquire_args(&["--bucket", "reasoning"]))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "its profile sets no `concurrency_by_bucket`",
        ));
}
