//! `credits limits classify`: every input path and every bad input.

use predicates::prelude::*;
use predicates::str::diff;

use crate::fixture::Project;

const OPENAI_429: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 900. Please try again in 1.8s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;

const CURL_HEADERS: &str = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 429 \r\ncontent-type: application/json\r\nretry-after: Mon, 23 Nov 2026 11:02:00 GMT\r\nx-ratelimit-remaining-tokens: 0\r\nx-ratelimit-reset-tokens: 1.8s\r\n\r\n";

fn classify(project: &Project, args: &[&str]) -> assert_cmd::Command {
    let mut full = vec!["credits", "limits", "classify"];
    full.extend_from_slice(args);
    project.cmd(&full)
}

fn verdict(kind: &str, retryable: bool, wait: &str, status: &str, message: &str) -> String {
    format!(
        "{{\n  \"kind\": \"{kind}\",\n  \"is_rate_limit\": {},\n  \"retryable\": {retryable},\n  \"retry_after_seconds\": {wait},\n  \"status_code\": {status},\n  \"message\": \"{message}\"\n}}\n",
        kind == "rate_limit"
    )
}

#[test]
fn message_status_and_headers_from_flags() {
    let project = Project::new();
    classify(
        &project,
        &[
            "--status",
            "429",
            "--header",
            "Retry-After-Ms: 2500",
            "--header",
            "retry-after: 3",
            "--message",
            OPENAI_429,
        ],
    )
    .assert()
    .success()
    .stderr("")
    .stdout(diff(verdict(
        "rate_limit",
        true,
        "2.5",
        "429",
        "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 900. Please try again in 1.8s.",
    )));
}

#[test]
fn curl_headers_file_and_body_file_measured_from_now() {
    let project = Project::new();
    project.write("headers.txt", CURL_HEADERS);
    project.write("body.json", OPENAI_429);
    classify(
        &project,
        &[
            "--headers-file",
            "headers.txt",
            "--body-file",
            "body.json",
            "--now",
            "2026-11-23T11:00:00Z",
        ],
    )
    .assert()
    .success()
    .stdout(predicate::str::contains("\"retry_after_seconds\": 120.0,"))
    .stdout(predicate::str::contains("\"status_code\": 429,"))
    .stdout(predicate::str::contains("\"kind\": \"rate_limit\","));
    // Classifying reads its inputs and writes nothing.
    assert_eq!(project.read("body.json"), OPENAI_429);
    assert!(!project.exists(".specsmith"));
}

#[test]
fn flags_override_the_headers_file() {
    let project = Project::new();
    project.write("headers.txt", CURL_HEADERS);
    classify(
        &project,
        &[
            "--headers-file",
            "headers.txt",
            "--header",
            "Retry-After: 0",
            "--status",
            "503",
            "--message",
            "upstream connect error",
        ],
    )
    .assert()
    .success()
    .stdout(diff(verdict(
        "other",
        true,
        "0.0",
        "503",
        "upstream connect error",
    )));
}

#[test]
fn body_from_stdin_when_no_message_is_given() {
    let project = Project::new();
    classify(&project, &["--status", "429"])
        .write_stdin(r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#)
        .assert()
        .success()
        .stdout(diff(verdict(
            "quota_exhausted",
            false,
            "null",
            "429",
            "You exceeded your current quota, please check your plan and billing details.",
        )));
}

#[test]
fn body_file_dash_reads_stdin() {
    let project = Project::new();
    classify(&project, &["--body-file", "-"])
        .write_stdin("anthropic.InternalServerError: Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}")
        .assert()
        .success()
        .stdout(diff(verdict("overloaded", true, "null", "529", "Overloaded")));
}

#[test]
fn empty_stdin_classifies_on_status_alone() {
    let project = Project::new();
    classify(&project, &["--status", "401"])
        .write_stdin("")
        .assert()
        .success()
        .stdout(diff(verdict("other", false, "null", "401", "")));
}

#[test]
fn missing_headers_file_is_named() {
    let project = Project::new();
    classify(
        &project,
        &["--headers-file", "missing.txt", "--message", "x"],
    )
    .assert()
    .code(2)
    .stdout("")
    .stderr(predicate::str::starts_with(
        "error: --headers-file `missing.txt`: ",
    ))
    .stderr(predicate::str::contains('\n').count(1));
}

#[test]
fn missing_body_file_is_named() {
    let project = Project::new();
    let path = project.root().join("nowhere.json");
    let output = classify(&project, &["--body-file", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = project.redact(&String::from_utf8_lossy(&output.stderr));
    assert!(
        stderr.starts_with("error: --body-file `[ROOT]/nowhere.json`: ")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn malformed_line_in_headers_file_is_named() {
    let project = Project::new();
    project.write("headers.txt", "HTTP/2 429\nretry-after: 1\noops no colon\n");
    classify(&project, &["--headers-file", "headers.txt", "--message", "x"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(diff(
            "error: --headers-file `headers.txt`: line 3: `oops no colon` is not a `Name: value` header\n",
        ));
}

#[test]
fn malformed_header_flag_is_a_usage_error() {
    let project = Project::new();
    classify(&project, &["--header", "no colon here", "--message", "x"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(diff(
            "error: invalid value 'no colon here' for '--header <NAME: VALUE>': expected `Name: value`\n",
        ));
}

#[test]
fn bad_now_is_a_usage_error() {
    let project = Project::new();
    classify(&project, &["--now", "yesterday", "--message", "x"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(diff(
            "error: invalid value 'yesterday' for '--now <RFC3339>': expected an RFC 3339 time such as `2026-01-01T00:00:00Z`\n",
        ));
}

#[test]
fn status_out_of_range_is_a_usage_error() {
    let project = Project::new();
    classify(&project, &["--status", "42", "--message", "x"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "error: invalid value '42' for '--status <N>'",
        ));
}

#[test]
fn message_and_body_file_conflict() {
    let project = Project::new();
    project.write("body.json", "{}");
    classify(&project, &["--message", "x", "--body-file", "body.json"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--message").and(predicate::str::contains("--body-file")));
}

#[test]
fn oversized_body_file_is_refused() {
    let project = Project::new();
    let path = project.write("big.txt", "");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(16 * 1024 * 1024 + 1).unwrap();
    classify(&project, &["--body-file", "big.txt"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(diff("error: --body-file `big.txt`: larger than 16 MiB\n"));
}

#[test]
fn curl_include_output_on_stdin_carries_status_and_headers() {
    let project = Project::new();
    classify(&project, &["--now", "2026-11-23T11:00:00Z"])
        .write_stdin(format!(
            "HTTP/2 429 \r\nanthropic-ratelimit-tokens-remaining: 0\r\nanthropic-ratelimit-tokens-reset: 2026-11-23T11:00:42Z\r\n\r\n{}",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#
        ))
        .assert()
        .success()
        .stdout(diff(verdict(
            "rate_limit",
            true,
            "42.0",
            "429",
            "Number of request tokens has exceeded your per-minute rate limit",
        )));
}
