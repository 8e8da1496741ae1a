//! Hostile input: oversized error files, control characters, secrets in
//! messages, and numbers out of range (issue 9, items 18 to 21).

use predicates::prelude::*;

use crate::fixture::Project;

fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}

#[test]
fn an_endless_error_file_is_capped_like_classify() {
    let project = Project::with_profile("acme", "m", 10, 1000, 1);
    let state_before = project.exists(".specsmith/model-rate-limit-state.json");
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            "rsv-feedfeedfeedfeed",
            "--rate-limited",
            "--error-file",
            "/dev/zero",
        ])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stdout("")
        .stderr("error: --error-file `/dev/zero`: larger than 16 MiB\n");
    assert_eq!(
        project.exists(".specsmith/model-rate-limit-state.json"),
        state_before
    );
}

#[test]
fn control_characters_in_names_are_refused_naming_the_flag_and_never_echoed_raw() {
    let project = Project::new();
    for (flag, value, shown) in [
        (
            "--provider",
            "a\nacme  m  fake row",
            "a\\nacme  m  fake row",
        ),
        ("--model", "m\u{1b}]0;owned\u{7}", "m\\u{1b}]0;owned\\u{7}"),
    ] {
        let (provider, model) = if flag == "--provider" {
            (value, "m")
        } else {
            ("acme", value)
        };
        let args = [
            "credits",
            "limits",
            "set",
            "--provider",
            provider,
            "--model",
            model,
            "--rpm",
            "1",
            "--tpm",
            "1",
        ];
        let assert = project.cmd(&args).assert().code(2).stdout("");
        let stderr = stderr_of(&assert);
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
        assert!(
            stderr.contains(&format!("'{shown}' for '{flag} <"))
                && stderr.contains("must not contain control characters"),
            "{stderr:?}"
        );
    }
    assert!(!project.exists(".specsmith"));
}

#[test]
fn a_profile_file_with_a_control_character_is_an_error_with_the_name_escaped() {
    let project = Project::new();
    project.write(
        ".specsmith/model-rate-limits.json",
        r#"[{"provider":"acme\n\u001b[2Jfake","model":"m","rpm_limit":1,"tpm_limit":1}]"#,
    );
    let assert = project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .code(2)
        .stdout("");
    let stderr = stderr_of(&assert);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains(
            "profile `acme\\n\\u{1b}[2Jfake/m`: provider must not contain control characters"
        ),
        "{stderr:?}"
    );
}

#[test]
fn header_file_content_and_paths_are_escaped_in_messages() {
    let project = Project::new();
    let headers = project.write("headers.txt", "HTTP/1.1 429\nX-\u{1b}[31m bad line\n");
    let assert = project
        .cmd(&[
            "credits",
            "limits",
            "classify",
            "--message",
            "x",
            "--headers-file",
        ])
        .arg(&headers)
        .assert()
        .code(2);
    let stderr = stderr_of(&assert);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(stderr.contains("`X-\\u{1b}[31m bad line`"), "{stderr:?}");
    let assert = project
        .bare_cmd()
        .args([
            "--project-dir",
            "/nonexistent\nerror: all good",
            "credits",
            "limits",
            "list",
        ])
        .assert()
        .code(2);
    assert_eq!(
        stderr_of(&assert),
        "error: --project-dir `/nonexistent\\nerror: all good`: No such file or directory (os error 2)\n"
    );
}

#[test]
fn secrets_are_masked_in_runs_own_messages_and_the_command_name() {
    let project = Project::with_profile("acme", "m", 100, 100_000, 1);
    let run = |command: &[&str]| {
        let mut args = vec![
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
            "--max-attempts",
            "2",
            "--max-delay",
            "0",
            "--",
        ];
        args.extend_from_slice(command);
        project.cmd(&args).assert()
    };
    let assert = run(&["sk-proj-abc123"]).code(2);
    assert_eq!(
        stderr_of(&assert).lines().next().unwrap(),
        "error: cannot run `[REDACTED]`: No such file or directory (os error 2)"
    );
    // The command's own output is passed through as the user's; what
    // specsmith-rs itself says about it is masked.
    let body = r#"{"error":{"code":"rate_limit_exceeded","message":"Rate limit reached for Authorization: Basic dXNlcjpwYXNz and Bearer abc123. Please try again in 1ms."}}"#;
    let script = format!("echo '{body}'; exit 22");
    let assert = run(&["sh", "-c", &script]);
    let stderr = stderr_of(&assert);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("specsmith-rs:") || line.starts_with("error:"))
        .collect();
    assert_eq!(ours.len(), 2, "{stderr}");
    for line in ours {
        assert!(
            !line.contains("dXNlcjpwYXNz") && !line.contains("abc123"),
            "{line}"
        );
        assert!(
            line.contains("Basic [REDACTED]") && line.contains("Bearer [REDACTED]"),
            "{line}"
        );
    }
}

#[test]
fn numbers_are_refused_with_their_rule_and_range() {
    let project = Project::with_profile("acme", "m", 10, 1000, 1);
    let acquire = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec![
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
            "1",
        ];
        args.extend_from_slice(extra);
        args
    };
    let seconds = "must be a number of seconds from 0 to 31536000 (365 days), fractions allowed";
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["credits", "limits", "set", "--provider", "a", "--model", "b", "--rpm",
                 "18446744073709551615", "--tpm", "1"],
            "invalid value '18446744073709551615' for '--rpm <N>': must be a whole number from 1 to 9223372036854775807".into(),
        ),
        (
            vec!["credits", "limits", "set", "--provider", "a", "--model", "b", "--rpm", "1",
                 "--tpm", "1", "--target", "-inf"],
            "invalid value '-inf' for '--target <F>': must be a number greater than 0 and at most 1".into(),
        ),
        (
            vec!["credits", "limits", "acquire", "--provider", "acme", "--model", "m",
                 "--input-tokens", "-1", "--max-output-tokens", "1"],
            "invalid value '-1' for '--input-tokens <N>': must be a whole number from 0 to 18446744073709551615".into(),
        ),
        (acquire(&["--timeout", "-0"]), format!("invalid value '-0' for '--timeout <SECS>': {seconds}")),
        (acquire(&["--timeout", "1e20"]), format!("invalid value '1e20' for '--timeout <SECS>': {seconds}")),
        (
            acquire(&["--lease", "0.0001"]),
            "invalid value '0.0001' for '--lease <SECS>': must be a number of seconds from 1 to 31536000 (365 days), fractions allowed".into(),
        ),
        (
            acquire(&["--owner-pid", "-1"]),
            "invalid value '-1' for '--owner-pid <PID>': must be a process id from 1 to 2147483647".into(),
        ),
        (
            vec!["credits", "limits", "record", "rsv-1", "--rate-limited", "--max-delay", "-1"],
            format!("invalid value '-1' for '--max-delay <SECS>': {seconds}"),
        ),
        (
            vec!["credits", "limits", "record", "rsv-1", "--rate-limited", "--status", "1000"],
            "invalid value '1000' for '--status <N>': must be an HTTP status from 100 to 999".into(),
        ),
        (
            vec!["credits", "limits", "record", "rsv-1", "--input-tokens", "-5", "--output-tokens", "1"],
            "invalid value '-5' for '--input-tokens <N>': must be a whole number from 0 to 18446744073709551615".into(),
        ),
        (
            vec!["credits", "limits", "classify", "--status", "-1"],
            "invalid value '-1' for '--status <N>': must be an HTTP status from 100 to 999".into(),
        ),
        (
            vec!["credits", "limits", "run", "--provider", "acme", "--model", "m",
                 "--input-tokens", "1", "--max-output-tokens", "1", "--max-attempts", "-1", "--", "true"],
            "invalid value '-1' for '--max-attempts <N>': must be a whole number from 1 to 100".into(),
        ),
    ];
    let state_before = project.read(".specsmith/model-rate-limits.json");
    for (args, expected) in cases {
        project
            .cmd(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(format!("error: {expected}\n"));
    }
    assert_eq!(
        project.read(".specsmith/model-rate-limits.json"),
        state_before
    );
}

#[test]
fn the_effective_limit_of_the_largest_profile_never_exceeds_the_limit() {
    let project = Project::new();
    project
        .cmd(&[
            "credits",
            "limits",
            "set",
            "--provider",
            "big",
            "--model",
            "m",
            "--rpm",
            "9223372036854775807",
            "--tpm",
            "9223372036854775807",
            "--target",
            "1",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "effective RPM 9,223,372,036,854,775,807, TPM 9,223,372,036,854,775,807)",
        ));
    let assert = project
        .cmd(&["credits", "limits", "list", "--json"])
        .assert()
        .success();
    let rows: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(rows[0]["rpm_limit"], 9_223_372_036_854_775_807_u64);
}
