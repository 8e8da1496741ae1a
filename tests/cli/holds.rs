//! Holds the provider's answers place on a model, shared by every process:
//! a spent quota refuses (exit 77) until cleared; a prescribed wait or an
//! overload makes every acquire wait it out.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::fixture::{acquire, acquire_args, Project};
use crate::harness::{status_json, status_text};

const QUOTA_BODY: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;

/// Google's free tier with `limit: 0` for one model: a quota of that model, not the account's.
const MODEL_QUOTA_BODY: &str = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateContentRequestsPerModelPerDay-FreeTier"}]}]}}"#;

fn project() -> Project {
    Project::with_profile("acme", "m", 100, 100_000, 4)
}

#[test]
fn a_spent_quota_holds_every_process_with_exit_77_until_cleared() {
    let project = project();
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
            MODEL_QUOTA_BODY,
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
    let json = status_json(&project, "acme", "m");
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
    acquire(&project, &[]);
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

#[test]
fn record_learns_the_providers_limits_from_a_headers_file_and_paces_with_the_lower() {
    let project = project();
    let id = acquire(&project, &[]);
    let headers = project.write(
        "answer.txt",
        "HTTP/2 200\r\ncontent-type: application/json\r\nx-ratelimit-limit-requests: 3\r\n\
         x-ratelimit-limit-tokens: 40000\r\nx-ratelimit-remaining-requests: 2\r\n\
         x-ratelimit-remaining-tokens: 39000\r\nx-ratelimit-reset-requests: 20s\r\n\
         x-ratelimit-reset-tokens: 1.5s\r\n\r\n{\"usage\": {}}\n",
    );
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "100",
            "--output-tokens",
            "50",
            "--headers-file",
            headers.to_str().unwrap(),
        ])
        .assert()
        .success();
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["stated_limits"]["requests_per_minute"], 3);
    assert_eq!(status["stated_limits"]["tokens_per_minute"], 40_000);
    assert_eq!(
        status["effective_rpm_limit"], 3,
        "the provider's 3 beats the profile's 100"
    );
    assert_eq!(status["effective_tpm_limit"], 40_000);
    assert_eq!(
        status["rpm_limit"], 100,
        "the profile's own number is still shown"
    );
    let text = status_text(&project, "acme", "m");
    assert!(
        text.contains("provider says 3 requests per minute"),
        "{text}"
    );
    // One request is in the window: two more fit, the fourth waits.
    acquire(&project, &[]);
    acquire(&project, &[]);
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .assert()
        .code(75)
        .stderr(predicate::str::contains("requests-per-minute"));
}

#[test]
fn a_spent_budget_in_the_headers_holds_every_process_until_its_reset() {
    let project = project();
    let id = acquire(&project, &[]);
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
            "--header",
            "anthropic-ratelimit-requests-remaining: 0",
            "--header",
            "anthropic-ratelimit-requests-limit: 50",
        ])
        .assert()
        .success();
    // No reset time: nothing to hold until.
    assert!(status_json(&project, "acme", "m").get("hold").is_none());
    let id = acquire(&project, &[]);
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
            "--header",
            "x-ratelimit-remaining-requests: 0",
            "--header",
            "x-ratelimit-reset-requests: 30s",
        ])
        .assert()
        .success();
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["hold"]["kind"], "exhausted");
    project
        .cmd(&acquire_args(&["--timeout", "1"]))
        .assert()
        .code(75)
        .stderr(predicate::str::contains("the end of the provider's hold"));
}

#[test]
fn record_rate_limited_takes_retry_after_from_the_headers() {
    let project = project();
    let id = acquire(&project, &[]);
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--rate-limited",
            "--header",
            "retry-after: 3",
            "--header",
            "x-ratelimit-remaining-requests: 5",
        ])
        .assert()
        .success()
        .stdout("3\n");
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            "rsv-00000000000000aa",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
            "--header",
            "no colon here",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--header"));
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            "rsv-00000000000000aa",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
            "--headers-file",
            "missing.txt",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--headers-file `missing.txt`"));
}

#[test]
fn run_learns_from_curl_include_output_and_retries_a_printed_429_that_exited_0() {
    let project = project();
    let counter = project.root().join("calls");
    // First call: curl -i of a 429 (curl exits 0 on it). Second: a 200 with usage.
    let script = format!(
        r#"n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'
if [ $n -eq 1 ]; then
  printf 'HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\nx-ratelimit-limit-requests: 7\r\n\r\n{{"error":{{"message":"Rate limit reached","type":"requests"}}}}'
else
  printf 'HTTP/1.1 200 OK\r\nx-ratelimit-limit-requests: 7\r\nx-ratelimit-limit-tokens: 9000\r\n\r\n{{"usage":{{"prompt_tokens":11,"completion_tokens":4}}}}'
fi"#,
        c = counter.display()
    );
    let output = project
        .cmd(&[
            "credits",
            "limits",
            "run",
            "--provider",
            "acme",
            "--model",
            "m",
            "--input-tokens",
            "100",
            "--max-output-tokens",
            "50",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "2");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("HTTP/1.1 200 OK"),
        "only the final answer: {stdout}"
    );
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["stated_limits"]["requests_per_minute"], 7);
    assert_eq!(status["stated_limits"]["tokens_per_minute"], 9_000);
    assert_eq!(status["rolling_request_count"], 2);
    assert_eq!(
        status["rolling_token_count"],
        150 + 15,
        "the 429's estimate, then the actual use"
    );
}

#[test]
fn record_tightens_the_window_by_use_the_provider_counts_from_another_client() {
    let project = project();
    let id = acquire(&project, &[]);
    // The provider counts 8 of 10 requests used; our window holds 1.
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "100",
            "--output-tokens",
            "50",
            "--header",
            "x-ratelimit-limit-requests: 10",
            "--header",
            "x-ratelimit-remaining-requests: 2",
            "--header",
            "x-ratelimit-reset-requests: 30s",
        ])
        .assert()
        .success();
    let status = status_json(&project, "acme", "m");
    assert_eq!(status["unseen_use"]["requests"], 7, "{status}");
    assert!(status["unseen_use"].get("tokens").is_none(), "{status}");
    let text = status_text(&project, "acme", "m");
    assert!(
        text.contains(
            "provider counts 7 more requests than this window (another client of the key), for "
        ),
        "{text}"
    );
    // 1 ours + 7 unseen + 2 = the stated 10: the next waits for the reset.
    acquire(&project, &["--timeout", "0"]);
    acquire(&project, &["--timeout", "0"]);
    project
        .cmd(&acquire_args(&["--timeout", "0"]))
        .assert()
        .code(75)
        .stderr(predicate::str::contains("requests-per-minute"));
}

#[test]
fn an_account_that_is_out_holds_every_model_of_the_provider_until_cleared() {
    let project = project();
    project
        .cmd(&crate::fixture::set_args("acme", "other", "100"))
        .assert()
        .success();
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
            QUOTA_BODY,
        ])
        .assert()
        .success();
    // Another model of the provider, in another process: refused at once.
    let other = [
        "credits",
        "limits",
        "acquire",
        "--provider",
        "acme",
        "--model",
        "other",
        "--input-tokens",
        "1",
        "--max-output-tokens",
        "1",
    ];
    project
        .cmd(&other)
        .assert()
        .code(77)
        .stdout("")
        .stderr(predicate::str::contains(
            "every model of `acme` is on hold until",
        ))
        .stderr(predicate::str::contains("You exceeded your current quota"))
        .stderr(predicate::str::contains(
            "credits limits clear-hold --provider acme`",
        ));
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Hold: acme (every model) quota until ",
        ));
    let json = status_json(&project, "acme", "other");
    assert_eq!(json["provider_hold"]["kind"], "quota", "{json}");
    assert!(
        json.get("hold").is_none(),
        "no hold of the model's own: {json}"
    );
    project
        .cmd(&["credits", "limits", "clear-hold", "--provider", "acme"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "Cleared the hold on every model of `acme`: quota until",
        ));
    project.cmd(&other).assert().success();
    acquire(&project, &[]);
    project
        .cmd(&["credits", "limits", "clear-hold", "--provider", "ACME"])
        .assert()
        .success()
        .stdout("No hold on every model of `acme`\n");
}
