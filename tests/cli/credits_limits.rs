//! `credits limits list / set / remove / defaults`, `completions`, and the
//! behaviour every command shares (`--project-dir`, `--help`, `--version`).

use predicates::prelude::*;
use predicates::str::{contains, diff, is_empty};
use serde_json::Value;

use crate::fixture::{Project, PROFILES};

/// A profile file exactly as Python specsmith writes it, with the fields its
/// later releases added.
const PYTHON_FILE: &str = r#"[
  {
    "provider": "openai",
    "model": "gpt-5.4",
    "rpm_limit": 60,
    "tpm_limit": 500000,
    "utilization_target": 0.7,
    "concurrency_cap": 2,
    "source": "override",
    "concurrency_by_bucket": {
      "chat": 2,
      "batch": 1
    },
    "tpm_thinking_budget": 12000
  },
  {
    "provider": "anthropic",
    "model": "claude-sonnet-4",
    "rpm_limit": 50,
    "tpm_limit": 40000,
    "utilization_target": 0.5,
    "concurrency_cap": 1,
    "source": "local"
  }
]"#;

fn json_stdout(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

#[test]
fn list_on_an_empty_project_says_so_and_creates_nothing() {
    let project = Project::new();
    project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .success()
        .stdout(contains("No model rate-limit profiles configured"))
        .stderr(is_empty());
    assert!(!project.exists(".specsmith"));
}

#[test]
fn list_json_on_an_empty_project_is_an_empty_array() {
    let project = Project::new();
    project
        .cmd(&["credits", "limits", "list", "--json"])
        .assert()
        .success()
        .stdout(diff("[]\n"));
}

#[test]
fn set_then_list_shows_an_aligned_table_sorted_by_provider_and_model() {
    let project = Project::new();
    project
        .cmd(&[
            "credits", "limits", "set", "--provider", " OpenAI ", "--model", "GPT-5.4", "--rpm", "60",
            "--tpm", "500000",
        ])
        .assert()
        .success()
        .stdout(diff(format!(
            "Saved openai/gpt-5.4 (RPM 60, TPM 500,000, target 0.70, concurrency 1; effective RPM 42, TPM 350,000) to `{}`\n",
            project.root().join(PROFILES).display()
        )));
    project
        .cmd(&[
            "credits",
            "limits",
            "set",
            "--provider",
            "anthropic",
            "--model",
            "claude-sonnet-4",
            "--rpm",
            "2000",
            "--tpm",
            "40000000",
            "--target",
            "0.5",
            "--concurrency",
            "4",
        ])
        .assert()
        .success();
    let expected = [
        " PROVIDER    MODEL               RPM          TPM   TARGET   CONCURRENCY   EFFECTIVE RPM   EFFECTIVE TPM",
        "─────────────────────────────────────────────────────────────────────────────────────────────────────────",
        " anthropic   claude-sonnet-4   2,000   40,000,000     0.50             4           1,000      20,000,000",
        " openai      gpt-5.4              60      500,000     0.70             1              42         350,000",
        "",
    ]
    .join("\n");
    project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .success()
        .stdout(diff(expected));
}

#[test]
fn set_replaces_an_existing_profile_by_normalised_key() {
    let project = Project::new();
    for rpm in ["10", "20"] {
        project
            .cmd(&[
                "credits",
                "limits",
                "set",
                "--provider",
                "acme",
                "--model",
                "m1",
                "--rpm",
                rpm,
                "--tpm",
                "100",
            ])
            .assert()
            .success();
    }
    project
        .cmd(&[
            "credits",
            "limits",
            "set",
            "--provider",
            "ACME",
            "--model",
            "M1",
            "--rpm",
            "30",
            "--tpm",
            "100",
        ])
        .assert()
        .success();
    let saved: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    let profiles = saved.as_array().unwrap();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0]["rpm_limit"], 30);
    assert_eq!(profiles[0]["provider"], "acme");
    assert_eq!(profiles[0]["source"], "override");
}

#[test]
fn python_file_round_trips_with_extra_fields_kept() {
    let project = Project::new();
    project.write(PROFILES, PYTHON_FILE);
    let output = project
        .cmd(&["credits", "limits", "list", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let listed = json_stdout(&output);
    assert_eq!(listed[0]["provider"], "anthropic");
    assert_eq!(listed[1]["model"], "gpt-5.4");
    assert_eq!(listed[1]["concurrency_by_bucket"]["chat"], 2);
    assert_eq!(listed[1]["tpm_thinking_budget"], 12000);
    assert_eq!(listed[1]["source"], "project");

    // Rewriting one profile keeps the other's bytes' meaning and this one's unknown fields.
    project
        .cmd(&[
            "credits",
            "limits",
            "set",
            "--provider",
            "openai",
            "--model",
            "gpt-5.4",
            "--rpm",
            "90",
            "--tpm",
            "600000",
            "--concurrency",
            "3",
        ])
        .assert()
        .success();
    let saved: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    let original: Value = serde_json::from_str(PYTHON_FILE).unwrap();
    assert_eq!(saved[1], original[1], "untouched profile is unchanged");
    assert_eq!(saved[0]["rpm_limit"], 90);
    assert_eq!(saved[0]["concurrency_cap"], 3);
    assert_eq!(
        saved[0]["concurrency_by_bucket"],
        original[0]["concurrency_by_bucket"]
    );
    assert_eq!(saved[0]["tpm_thinking_budget"], 12000);
    let keys: Vec<_> = saved[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "provider",
            "model",
            "rpm_limit",
            "tpm_limit",
            "utilization_target",
            "concurrency_cap",
            "source",
            "concurrency_by_bucket",
            "tpm_thinking_budget"
        ]
    );
}

#[test]
fn python_file_with_missing_optional_fields_gets_the_defaults() {
    let project = Project::new();
    project.write(
        PROFILES,
        r#"[{"provider": "openai", "model": "o1", "rpm_limit": 10, "tpm_limit": 1000}]"#,
    );
    let output = project
        .cmd(&["credits", "limits", "list", "--json"])
        .output()
        .unwrap();
    let listed = json_stdout(&output);
    assert_eq!(listed[0]["utilization_target"], 0.7);
    assert_eq!(listed[0]["concurrency_cap"], 1);
}

#[test]
fn remove_deletes_the_profile_and_reports_it() {
    let project = Project::new();
    project.write(PROFILES, PYTHON_FILE);
    project
        .cmd(&[
            "credits",
            "limits",
            "remove",
            "--provider",
            "OpenAI",
            "--model",
            "gpt-5.4",
        ])
        .assert()
        .success()
        .stdout(contains("Removed openai/gpt-5.4 from"));
    let saved: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    assert_eq!(saved.as_array().unwrap().len(), 1);
    assert_eq!(saved[0]["model"], "claude-sonnet-4");
}

#[test]
fn remove_of_an_absent_profile_fails_and_changes_nothing() {
    let project = Project::new();
    project.write(PROFILES, PYTHON_FILE);
    project
        .cmd(&[
            "credits",
            "limits",
            "remove",
            "--provider",
            "openai",
            "--model",
            "gpt-4o",
        ])
        .assert()
        .code(2)
        .stdout(is_empty())
        .stderr(diff(format!(
            "error: no profile `openai/gpt-4o` in `{}`\n",
            project.root().join(PROFILES).display()
        )));
    assert_eq!(project.read(PROFILES), PYTHON_FILE);
}

#[test]
fn remove_without_a_profile_file_fails_and_creates_nothing() {
    let project = Project::new();
    project
        .cmd(&[
            "credits",
            "limits",
            "remove",
            "--provider",
            "openai",
            "--model",
            "gpt-4o",
        ])
        .assert()
        .code(2)
        .stderr(contains("no profile `openai/gpt-4o`").and(contains("does not exist")));
    assert!(!project.exists(".specsmith"));
}

#[test]
fn defaults_lists_all_21_builtins_without_writing() {
    let project = Project::new();
    let output = project
        .cmd(&["credits", "limits", "defaults", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let listed = json_stdout(&output);
    let profiles = listed.as_array().unwrap();
    assert_eq!(profiles.len(), 21);
    assert!(profiles.iter().all(|p| p["source"] == "builtin"));
    assert_eq!(profiles[0]["model"], "gpt-4o");
    assert_eq!(profiles[0]["tpm_limit"], 30_000_000);
    assert!(!project.exists(".specsmith"));
}

#[test]
fn defaults_table_keeps_every_column_aligned() {
    let project = Project::new();
    let output = project
        .cmd(&["credits", "limits", "defaults"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(rows.len(), 21);
    let header = text.lines().nth(1).unwrap();
    let column_end = header.find("TPM").unwrap() + 3;
    for row in rows {
        assert_eq!(
            row.chars().count(),
            text.lines().nth(3).unwrap().chars().count(),
            "{row}"
        );
        assert!(
            row[..column_end].ends_with(|c: char| c.is_ascii_digit()),
            "{row}"
        );
    }
}

#[test]
fn defaults_install_adds_missing_builtins_and_keeps_project_profiles() {
    let project = Project::new();
    project.write(PROFILES, PYTHON_FILE);
    project
        .cmd(&["credits", "limits", "defaults", "--install"])
        .assert()
        .success()
        .stdout(
            contains("Installed 19 new default profile(s)")
                .and(contains("(2 existing profile(s) kept)")),
        );
    let saved: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    let profiles = saved.as_array().unwrap();
    assert_eq!(profiles.len(), 21);
    assert_eq!(profiles[0]["rpm_limit"], 60);
    assert_eq!(profiles[0]["concurrency_cap"], 2);
    assert_eq!(profiles[0]["tpm_thinking_budget"], 12000);
    let sonnet = profiles
        .iter()
        .find(|p| p["model"] == "claude-sonnet-4")
        .unwrap();
    assert_eq!(
        sonnet["rpm_limit"], 50,
        "project profile wins over the builtin"
    );
    project
        .cmd(&["credits", "limits", "defaults", "--install", "--json"])
        .assert()
        .success()
        .stderr(contains("Installed 0 new default profile(s)"));
}

#[test]
fn list_all_marks_each_layer_and_higher_layers_win() {
    let project = Project::new();
    project.write(PROFILES, PYTHON_FILE);
    std::fs::write(
        project.config_dir().join("model-rate-limits.json"),
        r#"[{"provider":"openai","model":"gpt-4o","rpm_limit":7,"tpm_limit":7000},
            {"provider":"openai","model":"gpt-5.4","rpm_limit":1,"tpm_limit":1}]"#,
    )
    .unwrap();
    let output = project
        .cmd(&["credits", "limits", "list", "--all", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let listed = json_stdout(&output);
    let find = |model: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == "openai" && p["model"] == model)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("gpt-4o")["source"], "user");
    assert_eq!(find("gpt-4o")["rpm_limit"], 7);
    assert_eq!(find("gpt-5.4")["source"], "project");
    assert_eq!(find("gpt-5.4")["rpm_limit"], 60);
    assert_eq!(find("o1")["source"], "builtin");
    assert_eq!(listed.as_array().unwrap().len(), 21);
    project
        .cmd(&["credits", "limits", "list", "--all"])
        .assert()
        .success()
        .stdout(
            contains("SOURCE")
                .and(contains("user"))
                .and(contains("builtin")),
        );
}

#[test]
fn corrupt_user_file_is_an_error_naming_it() {
    let project = Project::new();
    let user_file = project.config_dir().join("model-rate-limits.json");
    std::fs::write(&user_file, "{not json").unwrap();
    project
        .cmd(&["credits", "limits", "list", "--all"])
        .assert()
        .code(2)
        .stderr(contains(user_file.display().to_string()).and(contains(
            "line 1, column 1: invalid type: map, expected a sequence",
        )));
}

#[test]
fn invalid_flag_values_name_the_flag_and_the_rule() {
    let project = Project::new();
    let base = [
        "credits",
        "limits",
        "set",
        "--provider",
        "p",
        "--model",
        "m",
    ];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--rpm", "0", "--tpm", "1"],
            "error: invalid value '0' for '--rpm <N>': must be a whole number from 1 to 9223372036854775807\n",
        ),
        (
            &["--rpm", "-5", "--tpm", "1"],
            "error: invalid value '-5' for '--rpm <N>': must be a whole number from 1 to 9223372036854775807\n",
        ),
        (
            &["--rpm", "1", "--tpm", "0"],
            "error: invalid value '0' for '--tpm <N>': must be a whole number from 1 to 9223372036854775807\n",
        ),
        (
            &["--rpm", "x", "--tpm", "1"],
            "error: invalid value 'x' for '--rpm <N>': must be a whole number from 1 to 9223372036854775807\n",
        ),
        (
            &["--rpm", "1", "--tpm", "1", "--target", "1.5"],
            "error: invalid value '1.5' for '--target <F>': must be a number greater than 0 and at most 1\n",
        ),
        (
            &["--rpm", "1", "--tpm", "1", "--target", "0"],
            "error: invalid value '0' for '--target <F>': must be a number greater than 0 and at most 1\n",
        ),
        (
            &["--rpm", "1", "--tpm", "1", "--target", "NaN"],
            "error: invalid value 'NaN' for '--target <F>': must be a number greater than 0 and at most 1\n",
        ),
        (
            &["--rpm", "1", "--tpm", "1", "--concurrency", "0"],
            "error: invalid value '0' for '--concurrency <N>': must be a whole number from 1 to 4294967295\n",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        project
            .cmd(&args)
            .assert()
            .code(2)
            .stdout(is_empty())
            .stderr(diff(*expected));
    }
    assert!(!project.exists(".specsmith"));
}

#[test]
fn empty_provider_or_model_is_refused() {
    let project = Project::new();
    for (provider, model, flag) in [
        ("  ", "m", "--provider <PROVIDER>"),
        ("p", "", "--model <MODEL>"),
    ] {
        project
            .cmd(&[
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
            ])
            .assert()
            .code(2)
            .stderr(contains(format!("for '{flag}': must not be empty")));
    }
    assert!(!project.exists(".specsmith"));
}

#[test]
fn missing_required_flag_is_a_usage_error() {
    let project = Project::new();
    project
        .cmd(&[
            "credits",
            "limits",
            "set",
            "--provider",
            "p",
            "--model",
            "m",
            "--rpm",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(contains("--tpm <N>"));
}

#[test]
fn corrupt_profile_file_is_reported_and_never_overwritten() {
    let project = Project::new();
    let corrupt = "[\n  {\"provider\": \"openai\", \"model\": \"gpt-4o\",\n  oops\n]\n";
    project.write(PROFILES, corrupt);
    let file = project.root().join(PROFILES).display().to_string();
    let runs: &[&[&str]] = &[
        &["credits", "limits", "list"],
        &["credits", "limits", "list", "--all"],
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "a",
            "--model",
            "b",
            "--rpm",
            "1",
            "--tpm",
            "1",
        ],
        &[
            "credits",
            "limits",
            "remove",
            "--provider",
            "openai",
            "--model",
            "gpt-4o",
        ],
        &["credits", "limits", "defaults", "--install"],
    ];
    for args in runs {
        project
            .cmd(args)
            .assert()
            .code(2)
            .stderr(contains(format!("`{file}` is invalid at line 3, column 3")));
        assert_eq!(project.read(PROFILES), corrupt, "after {args:?}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(project.root().join(".specsmith"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn invalid_values_in_the_file_name_the_profile_and_rule() {
    let project = Project::new();
    let text = r#"[{"provider":"openai","model":"gpt-4o","rpm_limit":0,"tpm_limit":10}]"#;
    project.write(PROFILES, text);
    project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .code(2)
        .stderr(contains(
            "profile `openai/gpt-4o`: rpm_limit must be greater than 0, got 0",
        ));
    project
        .cmd(&["credits", "limits", "defaults", "--install"])
        .assert()
        .code(2);
    assert_eq!(project.read(PROFILES), text);
}

#[test]
fn a_file_that_is_not_an_array_is_refused() {
    let project = Project::new();
    project.write(PROFILES, r#"{"provider": "openai"}"#);
    project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .code(2)
        .stderr(contains("expected a sequence"));
}

#[test]
fn missing_project_dir_is_a_clear_error() {
    let project = Project::new();
    let missing = project.root().join("nope");
    project
        .bare_cmd()
        .arg("--project-dir")
        .arg(&missing)
        .args(["credits", "limits", "list"])
        .assert()
        .code(2)
        .stderr(diff(format!(
            "error: --project-dir `{}`: No such file or directory (os error 2)\n",
            missing.display()
        )));
    let file = project.write("plain-file", "x");
    project
        .bare_cmd()
        .arg("--project-dir")
        .arg(&file)
        .args(["credits", "limits", "list"])
        .assert()
        .code(2)
        .stderr(contains("is not a directory"));
}

#[test]
fn project_dir_defaults_to_the_current_folder() {
    let project = Project::new();
    project.write(PROFILES, PYTHON_FILE);
    project
        .bare_cmd()
        .args(["credits", "limits", "list"])
        .assert()
        .success()
        .stdout(contains("claude-sonnet-4"));
}

#[test]
fn help_and_version_exit_zero() {
    let project = Project::new();
    project
        .bare_cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(diff(format!(
            "specsmith-rs {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    for args in [
        &["--help"][..],
        &["credits", "limits", "--help"],
        &["credits", "limits", "set", "--help"],
    ] {
        project
            .bare_cmd()
            .args(args)
            .assert()
            .success()
            .stdout(contains("Usage: specsmith-rs"));
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let project = Project::new();
    project
        .cmd(&["credits", "limits", "frobnicate"])
        .assert()
        .code(2)
        .stderr(contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn completions_are_generated_for_each_shell() {
    let project = Project::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        project
            .bare_cmd()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains("specsmith-rs").and(contains("limits")));
    }
    project
        .bare_cmd()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(contains("invalid value 'tcsh'"));
}

#[test]
fn closed_stdout_is_not_an_error() {
    let project = Project::new();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("specsmith-rs"))
        .args(["credits", "limits", "defaults"])
        .current_dir(project.root())
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stderr)
    );
}
