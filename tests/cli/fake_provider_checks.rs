//! The fake provider itself: it must hold its limits and answer 429s in
//! OpenAI's shape, or the load scenarios prove nothing.

use std::time::Duration;

use serde_json::Value;

use crate::fake_provider::{chat_body, format_reset, post_json, FakeProvider, FakeProviderConfig};
use crate::fixture::Project;

fn short_window_provider(rpm: u64, tpm: u64) -> FakeProvider {
    FakeProvider::start(FakeProviderConfig {
        rpm,
        tpm,
        window: Duration::from_secs(2),
        latency: Duration::ZERO,
        ..FakeProviderConfig::default()
    })
    .unwrap()
}

fn call(provider: &FakeProvider, client: &str, prompt_tokens: u64) -> crate::fake_provider::Answer {
    let body = chat_body("gpt-4o", prompt_tokens, 30);
    post_json(
        provider.address(),
        "/v1/chat/completions",
        client,
        &body,
        Duration::from_secs(5),
    )
    .unwrap()
}

#[test]
fn admits_up_to_the_rpm_then_answers_an_openai_429_until_the_window_moves() {
    let provider = short_window_provider(3, 1_000_000);
    for index in 0..3 {
        let answer = call(&provider, &format!("c{index}"), 40);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["usage"]["prompt_tokens"], 40);
        assert_eq!(body["usage"]["completion_tokens"], 20);
        assert_eq!(body["usage"]["total_tokens"], 60);
        assert_eq!(
            answer.header("x-ratelimit-remaining-requests"),
            Some(&*(2 - index).to_string())
        );
    }
    let refused = call(&provider, "c3", 40);
    assert_eq!(refused.status, 429);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["param"], Value::Null);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Rate limit reached for gpt-4o in organization org-fakeprovider on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in "),
        "{message}"
    );
    assert_eq!(refused.header("retry-after"), Some("2"));
    assert_eq!(refused.header("x-ratelimit-limit-requests"), Some("3"));
    assert_eq!(refused.header("x-ratelimit-remaining-requests"), Some("0"));
    assert!(refused
        .header("x-ratelimit-reset-requests")
        .unwrap()
        .ends_with('s'));
    assert_eq!(refused.header("x-ratelimit-limit-tokens"), Some("1000000"));
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(call(&provider, "c4", 40).status, 200);
    assert_eq!(provider.count_status(429), 1);
    assert_eq!(provider.busiest_window(), (3, 180));
    let clients: Vec<_> = provider
        .log()
        .into_iter()
        .filter_map(|request| request.client)
        .collect();
    assert_eq!(clients, ["c0", "c1", "c2", "c3", "c4"]);
}

#[test]
fn a_request_over_the_token_budget_gets_a_tokens_429() {
    let provider = short_window_provider(100, 150);
    assert_eq!(call(&provider, "a", 80).status, 200);
    let refused = call(&provider, "b", 80);
    assert_eq!(refused.status, 429);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["error"]["type"], "tokens");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "on tokens per min (TPM): Limit 150, Used 100, Requested 100. Please try again in "
        ),
        "{message}"
    );
    assert_eq!(refused.header("x-ratelimit-remaining-tokens"), Some("50"));
}

#[test]
fn our_classifier_reads_its_429_as_a_rate_limit_with_the_wait() {
    let provider = short_window_provider(1, 1_000_000);
    assert_eq!(call(&provider, "a", 40).status, 200);
    let refused = call(&provider, "b", 40);
    let project = Project::new();
    let headers: String = refused
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    project.write(
        "headers.txt",
        &format!("HTTP/1.1 429 Too Many Requests\n{headers}"),
    );
    project.write("body.json", &refused.body);
    let output = project
        .cmd(&[
            "credits",
            "limits",
            "classify",
            "--headers-file",
            "headers.txt",
            "--body-file",
            "body.json",
        ])
        .output()
        .unwrap();
    let verdict: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["kind"], "rate_limit", "{verdict}");
    assert_eq!(verdict["retryable"], true);
    let wait = verdict["retry_after_seconds"].as_f64().unwrap();
    assert!((0.0..=2.0).contains(&wait), "{wait}");
}

#[test]
fn waits_are_written_as_openai_writes_them() {
    assert_eq!(format_reset(Duration::from_millis(120)), "120ms");
    assert_eq!(format_reset(Duration::from_secs(2)), "2s");
    assert_eq!(format_reset(Duration::from_millis(1500)), "1.5s");
    assert_eq!(format_reset(Duration::from_secs(360)), "6m0s");
    assert_eq!(format_reset(Duration::from_millis(61_250)), "1m1.25s");
}

#[test]
fn unknown_paths_and_bad_bodies_get_openai_errors_not_a_hang() {
    let provider = short_window_provider(10, 1000);
    let wrong = post_json(
        provider.address(),
        "/v1/other",
        "x",
        "{}",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(wrong.status, 404);
    let bad = post_json(
        provider.address(),
        "/v1/chat/completions",
        "x",
        "not json",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("\"invalid_request_error\""));
}

#[test]
fn meters_output_tokens_and_the_day_apart_and_says_so_in_anthropic_and_ietf_headers() {
    let provider = FakeProvider::start(FakeProviderConfig {
        rpm: 100,
        tpm: 1_000_000,
        window: Duration::from_secs(2),
        latency: Duration::ZERO,
        output_tpm: Some(50),
        daily_requests: Some(3),
        ..FakeProviderConfig::default()
    })
    .unwrap();
    // Each answer reports 20 completion tokens: two fit 50, a third does not.
    for index in 0..2 {
        let answer = call(&provider, &format!("o{index}"), 40);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.header("anthropic-ratelimit-output-tokens-limit"),
            Some("50")
        );
        let remaining = (50 - 20 * (index + 1)).to_string();
        assert_eq!(
            answer.header("anthropic-ratelimit-output-tokens-remaining"),
            Some(remaining.as_str())
        );
        assert_eq!(
            answer.header("ratelimit-policy"),
            Some("\"daily\";q=3;w=86400")
        );
        let left = format!("\"daily\";r={};", 2 - index);
        assert!(answer.header("ratelimit").unwrap().starts_with(&left));
    }
    let refused = call(&provider, "o2", 40);
    assert_eq!(refused.status, 429);
    assert!(refused.body.contains("output_tokens"), "{}", refused.body);
    // Once the window moves, the day's last request goes, then the day is spent.
    std::thread::sleep(Duration::from_millis(2_100));
    assert_eq!(call(&provider, "o3", 40).status, 200);
    std::thread::sleep(Duration::from_millis(2_100));
    let spent = call(&provider, "o4", 40);
    assert_eq!(spent.status, 429);
    assert!(spent.body.contains("daily_requests"), "{}", spent.body);
    assert_eq!(provider.count_status(200), 3);
}
