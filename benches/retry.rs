//! How long `classify` takes on typical provider errors, and on a large log.
//!
//! Run with `cargo bench --bench retry`.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use specsmith::rate_limits::retry::{classify, ProviderResponse};

const OPENAI_429: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 1200. Please try again in 1.347s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;

const GEMINI_429: &str = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 15, model: gemini-2.0-flash\nPlease retry in 34.077132s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"15"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34s"}]}}"#;

const SDK_TEXT: &str = r#"openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): Limit 200000, Used 199990, Requested 300. Please try again in 20ms.', 'type': 'tokens', 'param': None, 'code': 'rate_limit_exceeded'}}"#;

fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn benchmarks(criterion: &mut Criterion) {
    let now = UNIX_EPOCH + Duration::from_secs(1_795_431_600);
    let openai = ProviderResponse {
        status: Some(429),
        headers: headers(&[
            ("content-type", "application/json"),
            ("x-request-id", "req_0123456789abcdef"),
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-requests", "499"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-reset-tokens", "1.35s"),
        ]),
        body: OPENAI_429.to_owned(),
    };
    let gemini = ProviderResponse {
        status: Some(429),
        headers: Vec::new(),
        body: GEMINI_429.to_owned(),
    };
    let sdk_text = ProviderResponse {
        status: None,
        headers: Vec::new(),
        body: SDK_TEXT.to_owned(),
    };
    // Dates in headers: RFC 3339 resets (Anthropic), an HTTP-date Retry-After.
    let dated = ProviderResponse {
        status: Some(429),
        headers: headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-11-23T11:00:30Z"),
            ("anthropic-ratelimit-requests-reset", "2026-11-23T11:00:01.250Z"),
        ]),
        body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#.to_owned(),
    };
    let http_date = ProviderResponse {
        status: Some(503),
        headers: headers(&[("retry-after", "Mon, 23 Nov 2026 11:00:30 GMT")]),
        body: String::from("Service Unavailable"),
    };
    let mut log = "2026-11-23 11:00:00 INFO agent step finished without trouble\n".repeat(16_000);
    log.push_str(SDK_TEXT);
    let large_log = ProviderResponse {
        status: None,
        headers: Vec::new(),
        body: log,
    };

    let mut group = criterion.benchmark_group("classify");
    for (name, response) in [
        ("openai_429_with_headers", &openai),
        ("gemini_429_body", &gemini),
        ("python_sdk_text", &sdk_text),
        ("rfc3339_resets", &dated),
        ("http_date_retry_after", &http_date),
        ("one_mib_log", &large_log),
    ] {
        group.bench_function(name, |bencher| {
            bencher.iter(|| classify(black_box(response), now))
        });
    }
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
