//! `credits limits learn`: the per-minute limits of a provider's headers
//! written into the project profile file.

use predicates::prelude::*;
use predicates::str::{contains, diff, is_empty};
use serde_json::Value;

use crate::fixture::{Project, PROFILES};

/// `curl -i` output of an OpenAI-style answer after a `100 Continue`.
const CURL_INCLUDE: &str = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 200\r\ncontent-type: application/json\r\nx-ratelimit-limit-requests: 5000\r\nx-ratelimit-limit-tokens: 800000\r\nx-ratelimit-remaining-requests: 4999\r\nx-ratelimit-remaining-tokens: 799500\r\nx-ratelimit-reset-requests: 12ms\r\nx-ratelimit-reset-tokens: 37ms\r\n\r\n{\"id\": \"chatcmpl-1\"}\n";

fn learn_args<'a>(provider: &'a str, model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "credits",
        "limits",
        "learn",
        "--provider",
        provider,
        "--model",
        model,
    ];
    args.extend_from_slice(extra);
    args
}

const COMPANION: &str = ".specsmith/model-rate-limits-extended.json";

fn profiles(project: &Project) -> Value {
    serde_json::from_str(&project.read(PROFILES)).unwrap()
}

#[test]
fn curl_include_output_creates_the_profile_at_the_default_target() {
    let project = Project::new();
    let headers = project.write("answer.txt", CURL_INCLUDE);
    let output = project
        .cmd(&learn_args(
            "acme",
            "big",
            &["--headers-file", headers.to_str().unwrap()],
        ))
        .assert()
        .success()
        .stderr(is_empty())
        .get_output()
        .clone();
    assert_eq!(
        project.redact(&String::from_utf8(output.stdout).unwrap()),
        "acme/big: RPM 5,000 (new), TPM 800,000 (new) (from x-ratelimit-* headers)\nSaved to `[ROOT]/.specsmith/model-rate-limits.json`\n"
    );
    let saved = profiles(&project);
    assert_eq!(saved[0]["rpm_limit"], 5000);
    assert_eq!(saved[0]["tpm_limit"], 800_000);
    assert_eq!(saved[0]["utilization_target"], 0.7);
    assert_eq!(saved[0]["concurrency_cap"], 1);
    assert_eq!(saved[0]["source"], "override");
}

#[test]
fn an_existing_profile_keeps_its_target_concurrency_and_unknown_fields() {
    let project = Project::new();
    project.write(
        PROFILES,
        r#"[
  {"provider": "anthropic", "model": "claude-sonnet-4", "rpm_limit": 50, "tpm_limit": 40000,
   "utilization_target": 0.5, "concurrency_cap": 3, "source": "local",
   "concurrency_by_bucket": {"reasoning": 1}, "tpm_thinking_budget": 4096},
  {"provider": "openai", "model": "gpt-4o", "rpm_limit": 7, "tpm_limit": 7,
   "utilization_target": 1.0, "concurrency_cap": 1, "source": "local"}
]"#,
    );
    project
        .cmd(&learn_args(
            "Anthropic",
            "claude-sonnet-4",
            &[
                "--header",
                "anthropic-ratelimit-requests-limit: 4000",
                "--header",
                "anthropic-ratelimit-tokens-limit: 40000",
                "--header",
                "anthropic-ratelimit-input-tokens-limit: 2000000",
                "--header",
                "anthropic-ratelimit-requests-reset: 2026-12-02T00:00:01Z",
            ],
        ))
        .assert()
        .success()
        .stdout(diff(
            "anthropic/claude-sonnet-4: RPM 50 → 4,000, TPM 40,000 (unchanged) (from anthropic-ratelimit-* headers)\n  ITPM 2,000,000 (new) (in `model-rate-limits-extended.json`)\n".to_owned()
                + &format!("Saved to `{}/.specsmith/model-rate-limits.json`\n", project.root().display()),
        ));
    let saved = profiles(&project);
    assert_eq!(saved.as_array().unwrap().len(), 2);
    let claude = &saved[0];
    assert_eq!(claude["rpm_limit"], 4000);
    assert_eq!(claude["tpm_limit"], 40000);
    assert_eq!(claude["utilization_target"], 0.5);
    assert_eq!(claude["concurrency_cap"], 3);
    assert_eq!(claude["concurrency_by_bucket"]["reasoning"], 1);
    assert_eq!(claude["tpm_thinking_budget"], 4096);
    assert!(
        claude.get("itpm_limit").is_none(),
        "Python specsmith refuses it"
    );
    assert_eq!(saved[1]["rpm_limit"], 7);
    let companion: Value = serde_json::from_str(&project.read(COMPANION)).unwrap();
    assert_eq!(
        companion,
        serde_json::json!([{"provider": "anthropic", "model": "claude-sonnet-4", "itpm_limit": 2000000}])
    );
}

#[test]
fn dry_run_prints_the_change_and_writes_nothing() {
    let project = Project::with_profile("acme", "big", 100, 1000, 2);
    let before = project.read(PROFILES);
    let headers = project.write("answer.txt", CURL_INCLUDE);
    project
        .cmd(&learn_args(
            "acme",
            "big",
            &["--headers-file", headers.to_str().unwrap(), "--dry-run"],
        ))
        .assert()
        .success()
        .stdout(contains("acme/big: RPM 100 → 5,000, TPM 1,000 → 800,000"))
        .stdout(contains("Dry run:"))
        .stderr(is_empty());
    assert_eq!(project.read(PROFILES), before);
}

#[test]
fn groq_requests_per_day_are_not_taken_for_a_per_minute_limit() {
    let project = Project::with_profile("groq", "llama-3.1-8b-instant", 30, 6000, 1);
    project
        .cmd(&learn_args(
            "groq",
            "llama-3.1-8b-instant",
            &[
                "--header",
                "x-ratelimit-limit-requests: 14400",
                "--header",
                "x-ratelimit-limit-tokens: 18000",
                "--header",
                "x-ratelimit-remaining-tokens: 17000",
            ],
        ))
        .assert()
        .success()
        .stdout(contains(
            "groq/llama-3.1-8b-instant: RPM 30 (unchanged), TPM 6,000 → 18,000 (from x-ratelimit-* headers)\n  RPD 14,400 (new) (in `model-rate-limits-extended.json`)\n",
        ));
    let saved = profiles(&project);
    assert_eq!(
        (
            saved[0]["rpm_limit"].as_u64(),
            saved[0]["tpm_limit"].as_u64()
        ),
        (Some(30), Some(18000))
    );
    let companion: Value = serde_json::from_str(&project.read(COMPANION)).unwrap();
    assert_eq!(companion[0]["rpd_limit"], 14400);
    assert_eq!(
        companion[0]["daily_reset"], "rolling",
        "Groq states no reset time"
    );
}

#[test]
fn limits_already_in_the_file_are_not_rewritten() {
    let project = Project::with_profile("acme", "big", 5000, 800_000, 1);
    let path = project.root().join(PROFILES);
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let headers = project.write("answer.txt", CURL_INCLUDE);
    project
        .cmd(&learn_args(
            "acme",
            "big",
            &["--headers-file", headers.to_str().unwrap()],
        ))
        .assert()
        .success()
        .stdout(contains("already holds these limits; nothing written"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn bad_input_is_one_line_naming_the_flag_and_nothing_is_written() {
    let project = Project::new();
    let malformed = project.write("bad.txt", "x-ratelimit-limit-requests: 5\nnot a header\n");
    let empty = project.write("empty.txt", "content-type: application/json\n");
    let cases: Vec<(Vec<String>, &str)> =
        vec![
        (
            vec!["--headers-file".into(), project.root().join("missing.txt").display().to_string()],
            "error: --headers-file `",
        ),
        (
            vec!["--headers-file".into(), malformed.display().to_string()],
            "line 2: `not a header` is not a `Name: value` header",
        ),
        (
            vec!["--headers-file".into(), empty.display().to_string()],
            "no per-minute requests or tokens limit in the headers (read: no rate-limit headers)",
        ),
        (
            vec!["--header".into(), "x-ratelimit-limit-requests: 5".into()],
            "no profile for `acme/new` to take the tokens per minute from",
        ),
        (
            vec![
                "--header".into(),
                "x-ratelimit-limit-requests: 0".into(),
                "--header".into(),
                "x-ratelimit-limit-tokens: 10".into(),
            ],
            "rpm_limit must be greater than 0, got 0",
        ),
        (vec!["--header".into(), "no colon".into()], "expected `Name: value`"),
        (vec![], "--headers-file <FILE>|--header <NAME: VALUE>"),
    ];
    for (extra, expected) in cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let output = project
            .cmd(&learn_args("acme", "new", &extra))
            .assert()
            .code(2)
            .stdout(is_empty())
            .stderr(contains(expected))
            .get_output()
            .clone();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
        if !expected.starts_with("--headers-file <") && !expected.starts_with("expected") {
            assert_eq!(stderr.lines().count(), 1, "{extra:?}: {stderr}");
        }
        assert!(!project.exists(PROFILES), "{extra:?}");
    }
}

#[test]
fn an_unreadable_value_is_a_warning_not_a_failure() {
    let project = Project::with_profile("acme", "big", 100, 1000, 1);
    project
        .cmd(&learn_args(
            "acme",
            "big",
            &[
                "--header",
                "x-ratelimit-limit-requests: 60",
                "--header",
                "x-ratelimit-limit-tokens: lots",
            ],
        ))
        .assert()
        .success()
        .stdout(contains("RPM 100 → 60, TPM 1,000 (unchanged)"))
        .stderr(diff(
            "warning: header `x-ratelimit-limit-tokens` has a value that is not a count or a reset: `lots`\n",
        ));
    assert!(predicate::str::contains("\"rpm_limit\": 60").eval(&project.read(PROFILES)));
}
