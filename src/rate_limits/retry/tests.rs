//! Real-format examples per provider, written from each provider's documented
//! error shapes (status, headers, body), and the precedence of waits.

use std::time::SystemTime;

use super::timestamps::from_unix;
use super::*;

/// 2026-11-23T11:00:00Z, the moment every case is classified at.
fn now() -> SystemTime {
    from_unix(1_795_431_600, 0).unwrap()
}

struct Case {
    name: &'static str,
    status: Option<u16>,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    kind: ErrorKind,
    retryable: bool,
    retry_after: Option<f64>,
}

fn response(status: Option<u16>, headers: &[(&str, &str)], body: &str) -> ProviderResponse {
    ProviderResponse {
        status,
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        body: body.to_owned(),
    }
}

fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let verdict = classify(&response(case.status, case.headers, case.body), now());
        let got = (verdict.kind, verdict.retryable, verdict.retry_after_seconds);
        let want = (case.kind, case.retryable, case.retry_after);
        if got != want || verdict.is_rate_limit != (case.kind == ErrorKind::RateLimit) {
            failures.push(format!("{}: got {got:?}, want {want:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

use ErrorKind::{Other, Overloaded, QuotaExhausted, RateLimit, TooLarge};

#[test]
fn openai() {
    check(&[
        Case {
            name: "tokens per minute ran out: its reset header wins over the text",
            status: Some(429),
            headers: &[
                ("x-ratelimit-limit-requests", "500"),
                ("x-ratelimit-limit-tokens", "30000"),
                ("x-ratelimit-remaining-requests", "499"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-requests", "120ms"),
                ("x-ratelimit-reset-tokens", "1.35s"),
            ],
            body: r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 1200. Please try again in 1.347s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(1.35),
        },
        Case {
            name: "requests per day ran out: 6m0s",
            status: Some(429),
            headers: &[
                ("X-RateLimit-Remaining-Requests", "0"),
                ("X-RateLimit-Reset-Requests", "6m0s"),
                ("X-RateLimit-Remaining-Tokens", "199000"),
                ("X-RateLimit-Reset-Tokens", "20ms"),
            ],
            body: r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-abc on requests per day (RPD): Limit 10000, Used 10000, Requested 1. Please try again in 6m0s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(360.0),
        },
        Case {
            name: "no remaining says 0: the latest reset",
            status: Some(429),
            headers: &[
                ("x-ratelimit-remaining-requests", "3"),
                ("x-ratelimit-reset-requests", "1h2m3.5s"),
                ("x-ratelimit-reset-tokens", "20ms"),
            ],
            body: r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(3723.5),
        },
        Case {
            name: "text only, minutes and seconds",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"Rate limit reached for gpt-4 in organization org-abc on tokens per min (TPM): Limit 10000, Used 9000, Requested 2000. Please try again in 1m12.5s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(72.5),
        },
        Case {
            name: "insufficient_quota is a 429 but credits are gone",
            status: Some(429),
            headers: &[("x-request-id", "req_123")],
            body: r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "billing hard limit",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"Billing hard limit has been reached","type":"invalid_request_error","param":null,"code":"billing_hard_limit_reached"}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "request too large for the TPM budget",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 36278. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
            kind: TooLarge,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "context length mentions tokens and limits",
            status: Some(400),
            headers: &[],
            body: r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "bad API key",
            status: Some(401),
            headers: &[],
            body: r#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "unknown model",
            status: Some(404),
            headers: &[],
            body: r#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "server error",
            status: Some(500),
            headers: &[],
            body: r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
            kind: Other,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "engine overloaded",
            status: Some(503),
            headers: &[],
            body: r#"{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "overloaded even as a 429",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"That model is currently overloaded with other requests. You can retry your request.","type":"server_error","param":null,"code":null}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "python SDK text with a dict, no status given",
            status: None,
            headers: &[],
            body: r#"openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): Limit 200000, Used 199990, Requested 300. Please try again in 20ms. Visit https://platform.openai.com/account/rate-limits to learn more.', 'type': 'tokens', 'param': None, 'code': 'rate_limit_exceeded'}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(0.02),
        },
        Case {
            name: "python SDK insufficient_quota",
            status: None,
            headers: &[],
            body: r#"openai.RateLimitError: Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check your plan and billing details.', 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
    ]);
}

#[test]
fn azure_openai() {
    check(&[
        Case {
            name: "retry-after-ms is the most precise",
            status: Some(429),
            headers: &[
                ("retry-after", "7"),
                ("retry-after-ms", "6812"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-remaining-tokens", "4000"),
            ],
            body: r#"{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after 7 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(6.812),
        },
        Case {
            name: "body only, code \"429\" as a string",
            status: None,
            headers: &[],
            body: r#"{"error":{"code":"429","message":"Requests to the Embeddings_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second."}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(1.0),
        },
        Case {
            name: "gateway wording",
            status: None,
            headers: &[],
            body: r#"{ "statusCode": 429, "message": "Rate limit is exceeded. Try again in 59 seconds." }"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(59.0),
        },
        Case {
            name: "content filter is a bad request",
            status: Some(400),
            headers: &[],
            body: r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
    ]);
}

#[test]
fn anthropic() {
    const RATE_LIMITED: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (a1b2) of 50,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."},"request_id":"req_011"}"#;
    check(&[
        Case {
            name: "retry-after header",
            status: Some(429),
            headers: &[
                ("retry-after", "12"),
                ("anthropic-ratelimit-input-tokens-remaining", "0"),
                ("anthropic-ratelimit-input-tokens-reset", "2026-11-23T11:00:42Z"),
            ],
            body: RATE_LIMITED,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(12.0),
        },
        Case {
            name: "RFC 3339 reset of the exhausted budget",
            status: Some(429),
            headers: &[
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "37"),
                ("anthropic-ratelimit-requests-reset", "2026-11-23T11:00:05Z"),
                ("anthropic-ratelimit-input-tokens-limit", "50000"),
                ("anthropic-ratelimit-input-tokens-remaining", "0"),
                ("anthropic-ratelimit-input-tokens-reset", "2026-11-23T11:00:42Z"),
                ("anthropic-ratelimit-output-tokens-remaining", "8000"),
                ("anthropic-ratelimit-output-tokens-reset", "2026-11-23T11:00:59Z"),
            ],
            body: RATE_LIMITED,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(42.0),
        },
        Case {
            name: "529 overloaded_error",
            status: Some(529),
            headers: &[("x-should-retry", "true")],
            body: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_012"}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "overload inside a 200 stream",
            status: Some(200),
            headers: &[],
            body: "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n",
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "credit balance too low is a 400",
            status: Some(400),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "spend limit reached",
            status: Some(400),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "413 request_too_large",
            status: Some(413),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#,
            kind: TooLarge,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "prompt is too long",
            status: Some(400),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215342 tokens > 200000 maximum"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "authentication_error",
            status: Some(401),
            headers: &[("x-should-retry", "false")],
            body: r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "api_error",
            status: Some(500),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
            kind: Other,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "python SDK text",
            status: None,
            headers: &[],
            body: r#"anthropic.RateLimitError: Error code: 429 - {'type': 'error', 'error': {'type': 'rate_limit_error', 'message': 'Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.'}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
    ]);
}

#[test]
fn gemini_and_vertex() {
    check(&[
        Case {
            name: "per-minute QuotaFailure with RetryInfo (body beats text)",
            status: Some(429),
            headers: &[],
            body: r#"{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 15, model: gemini-2.0-flash\nPlease retry in 34.077132s.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
       "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                       "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                       "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
                       "quotaValue": "15"}]},
      {"@type": "type.googleapis.com/google.rpc.Help",
       "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"}
    ]
  }
}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(34.0),
        },
        Case {
            name: "per-day QuotaFailure is still a rate limit",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 50, model: gemini-2.5-pro","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"50"}]}]}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "free tier with limit: 0",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_input_token_count, limit: 0, model: gemini-2.5-pro\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro\nPlease retry in 32.146883404s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_input_token_count","quotaId":"GenerateContentInputTokensPerModelPerDay-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"32s"}]}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: Some(32.0),
        },
        Case {
            name: "503 UNAVAILABLE overload",
            status: Some(503),
            headers: &[],
            body: r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "Vertex resource exhausted",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"code":429,"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","status":"RESOURCE_EXHAUSTED"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "Vertex per-minute base-model quota",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model with base model: gemini-1.5-pro. Please submit a quota increase request. https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.","status":"RESOURCE_EXHAUSTED"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "google-genai SDK text with a Python dict",
            status: None,
            headers: &[],
            body: r#"google.genai.errors.ClientError: 429 RESOURCE_EXHAUSTED. {'error': {'code': 429, 'message': 'You exceeded your current quota, please check your plan and billing details.', 'status': 'RESOURCE_EXHAUSTED', 'details': [{'@type': 'type.googleapis.com/google.rpc.RetryInfo', 'retryDelay': '58s'}]}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(58.0),
        },
        Case {
            name: "text only: Please retry in",
            status: None,
            headers: &[],
            body: "429 Too Many Requests: Resource has been exhausted (e.g. check quota). Please retry in 58.93s.",
            kind: RateLimit,
            retryable: true,
            retry_after: Some(58.93),
        },
        Case {
            name: "API key not valid",
            status: Some(400),
            headers: &[],
            body: r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "input token count over the maximum",
            status: Some(400),
            headers: &[],
            body: r#"{"error":{"code":400,"message":"The input token count (1250000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "500 INTERNAL",
            status: Some(500),
            headers: &[],
            body: r#"{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}"#,
            kind: Other,
            retryable: true,
            retry_after: None,
        },
    ]);
}

#[test]
fn aws_bedrock() {
    check(&[
        Case {
            name: "ThrottlingException in x-amzn-ErrorType",
            status: Some(429),
            headers: &[(
                "x-amzn-ErrorType",
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            )],
            body: r#"{"message":"Too many requests, please wait before trying again."}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "boto3 text",
            status: None,
            headers: &[],
            body: "botocore.errorfactory.ThrottlingException: An error occurred (ThrottlingException) when calling the InvokeModel operation (reached max retries: 4): Too many tokens, please wait before trying again.",
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "JSON 1.1 __type on a 400",
            status: Some(400),
            headers: &[],
            body: r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "ServiceUnavailableException",
            status: Some(503),
            headers: &[("x-amzn-ErrorType", "ServiceUnavailableException")],
            body: r#"{"message":"Bedrock is unable to process your request."}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "ModelNotReadyException as a 429",
            status: Some(429),
            headers: &[("x-amzn-ErrorType", "ModelNotReadyException")],
            body: r#"{"message":"Model is not ready for inference. Wait and try your request again."}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "ValidationException: input too long",
            status: Some(400),
            headers: &[("x-amzn-ErrorType", "ValidationException")],
            body: r#"{"message":"Input is too long for requested model."}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "AccessDeniedException",
            status: Some(403),
            headers: &[("x-amzn-ErrorType", "AccessDeniedException")],
            body: r#"{"message":"You don't have access to the model with the specified model ID."}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "ModelTimeoutException",
            status: Some(408),
            headers: &[("x-amzn-ErrorType", "ModelTimeoutException")],
            body: r#"{"message":"Model has timed out in processing the request."}"#,
            kind: Other,
            retryable: true,
            retry_after: None,
        },
    ]);
}

#[test]
fn openai_compatible_providers() {
    check(&[
        Case {
            name: "Groq: Retry-After wins over the reset headers",
            status: Some(429),
            headers: &[
                ("retry-after", "7"),
                ("x-ratelimit-limit-requests", "14400"),
                ("x-ratelimit-remaining-requests", "14370"),
                ("x-ratelimit-reset-requests", "2m59.56s"),
                ("x-ratelimit-limit-tokens", "6000"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "7.66s"),
            ],
            body: r#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5833, Requested 1012. Please try again in 8.45s. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing","type":"tokens","code":"rate_limit_exceeded"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(7.0),
        },
        Case {
            name: "Groq: exhausted tokens budget without Retry-After",
            status: Some(429),
            headers: &[
                ("x-ratelimit-remaining-requests", "14370"),
                ("x-ratelimit-reset-requests", "2m59.56s"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "7.66s"),
            ],
            body: r#"{"error":{"message":"Rate limit reached for model `llama-3.1-8b-instant` on tokens per minute (TPM): Limit 6000, Used 6000, Requested 100. Please try again in 1s.","type":"tokens","code":"rate_limit_exceeded"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(7.66),
        },
        Case {
            name: "Groq: request too large (413)",
            status: Some(413),
            headers: &[],
            body: r#"{"error":{"message":"Request too large for model `llama-3.1-8b-instant` in organization `org_01` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 9413, please reduce your message size and try again. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing","type":"tokens","code":"rate_limit_exceeded"}}"#,
            kind: TooLarge,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "Groq: flex tier capacity",
            status: Some(498),
            headers: &[],
            body: r#"{"error":{"message":"Flex tier capacity exceeded. This model is currently at capacity, please try again later.","type":"invalid_request_error","code":"capacity_exceeded"}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "Groq: 503",
            status: Some(503),
            headers: &[],
            body: r#"{"error":{"message":"Service Unavailable","type":"internal_server_error"}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "Mistral: ratelimitbysize reset seconds",
            status: Some(429),
            headers: &[
                ("ratelimitbysize-limit", "500000"),
                ("ratelimitbysize-remaining", "0"),
                ("ratelimitbysize-reset", "23"),
            ],
            body: r#"{"message":"Requests rate limit exceeded"}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(23.0),
        },
        Case {
            name: "Mistral: service tier capacity",
            status: Some(429),
            headers: &[],
            body: r#"{"object":"error","message":"Service tier capacity exceeded for this model.","type":"service_tier_capacity_exceeded","param":null,"code":"3505"}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "Mistral: unauthorized",
            status: Some(401),
            headers: &[],
            body: r#"{"message":"Unauthorized","request_id":"7f3a"}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "DeepSeek: insufficient balance (402)",
            status: Some(402),
            headers: &[],
            body: r#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "DeepSeek: rate limit reached",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"Rate Limit Reached","type":"rate_limit_error","param":null,"code":"rate_limit_reached"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "DeepSeek: server overloaded",
            status: Some(503),
            headers: &[],
            body: r#"{"error":{"message":"Server overloaded, please try again later","type":"server_error"}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "DeepSeek: invalid parameters",
            status: Some(422),
            headers: &[],
            body: r#"{"error":{"message":"Invalid parameters: temperature must be <= 2","type":"invalid_request_error"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "OpenRouter: free models per day, reset echoed in the body (epoch ms)",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day","code":429,"metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"1795435200000"}}},"user_id":"user_2x"}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(3600.0),
        },
        Case {
            name: "OpenRouter: out of credits (402)",
            status: Some(402),
            headers: &[],
            body: r#"{"error":{"code":402,"message":"This request requires more credits, or fewer max_tokens. You requested up to 4096 tokens, but can only afford 1000. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account"}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "OpenRouter: upstream error as JSON escaped inside JSON",
            status: None,
            headers: &[],
            body: r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted (e.g. check quota).\",\n    \"status\": \"RESOURCE_EXHAUSTED\",\n    \"details\": [{\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"17s\"}]\n  }\n}\n","provider_name":"Google"}}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(17.0),
        },
        Case {
            name: "OpenRouter: rate-limited upstream, no number",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations","code":429}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "OpenRouter: an error inside a 200 stream takes the error's code",
            status: Some(200),
            headers: &[],
            body: "data: {\"id\":\"gen-1\",\"choices\":[]}\n\ndata: {\"error\":{\"code\":502,\"message\":\"Provider returned error\"}}\n\n",
            kind: Other,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "a provider saying insufficient quota for a per-minute limit",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"code":"insufficient_quota","message":"You have insufficient quota for requests per minute (RPM). Please try again in 20s."}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(20.0),
        },
    ]);
}

#[test]
fn network_failures_and_lookalikes() {
    check(&[
        Case {
            name: "curl timeout",
            status: None,
            headers: &[],
            body: "curl: (28) Operation timed out after 30001 milliseconds with 0 bytes received",
            kind: Other,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "connection refused",
            status: None,
            headers: &[],
            body: "httpx.ConnectError: [Errno 111] Connection refused",
            kind: Other,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "502 from a proxy, HTML body",
            status: Some(502),
            headers: &[],
            body: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
            kind: Other,
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "a 400 that mentions a rate limit is a bad request",
            status: Some(400),
            headers: &[],
            body: r#"{"error":{"message":"Invalid value for 'rate limit tier': expected one of 1, 2.","type":"invalid_request_error","param":"tier","code":null}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "a 400 that mentions a timeout is a bad request",
            status: Some(400),
            headers: &[],
            body: r#"{"error":{"message":"Invalid 'timeout': must be positive"}}"#,
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "context-length text alone, no status",
            status: None,
            headers: &[],
            body: "This model's maximum context length is 8192 tokens, however you requested 9000 tokens (limit 8192). Please reduce your prompt.",
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "an agent's log mentioning a context window, then a 429",
            status: None,
            headers: &[],
            body: "step 3: summarising repo (context window 128k tokens, 40% used)\nopenai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.', 'type': 'requests', 'param': None, 'code': 'rate_limit_exceeded'}}",
            kind: RateLimit,
            retryable: true,
            retry_after: Some(0.12),
        },
        Case {
            name: "auth error text only",
            status: None,
            headers: &[],
            body: "AuthenticationError: Incorrect API key provided",
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "nothing at all",
            status: None,
            headers: &[],
            body: "",
            kind: Other,
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "bare 429",
            status: Some(429),
            headers: &[],
            body: "",
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
    ]);
}

fn wait_of(status: Option<u16>, headers: &[(&str, &str)], body: &str) -> Option<f64> {
    classify(&response(status, headers, body), now()).retry_after_seconds
}

const GOOGLE_BODY: &str = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Please retry in 9s.","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"5s"}]}}"#;

#[test]
fn precedence_of_waits() {
    let all: &[(&str, &str)] = &[
        ("Retry-After", "7"),
        ("Retry-After-Ms", "6500"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "3s"),
    ];
    assert_eq!(wait_of(Some(429), all, GOOGLE_BODY), Some(6.5));
    assert_eq!(wait_of(Some(429), &all[..1], GOOGLE_BODY), Some(7.0));
    assert_eq!(wait_of(Some(429), &all[2..], GOOGLE_BODY), Some(3.0));
    assert_eq!(wait_of(Some(429), &[], GOOGLE_BODY), Some(5.0));
    assert_eq!(
        wait_of(
            Some(429),
            &[],
            r#"{"error":{"message":"Please retry in 9s."}}"#
        ),
        Some(9.0)
    );
    // A reset time in the body comes after RetryInfo and before the text.
    assert_eq!(
        wait_of(
            Some(429),
            &[],
            r#"{"error":{"message":"Try again in 9s","reset_at":"2026-11-23T11:00:04Z"}}"#
        ),
        Some(4.0)
    );
}

#[test]
fn retry_after_forms() {
    assert_eq!(wait_of(Some(429), &[("RETRY-AFTER", "0")], ""), Some(0.0));
    assert_eq!(
        wait_of(
            Some(503),
            &[("Retry-After", "Mon, 23 Nov 2026 11:02:00 GMT")],
            ""
        ),
        Some(120.0)
    );
    assert_eq!(
        wait_of(
            Some(503),
            &[("Retry-After", "Mon, 23 Nov 2026 10:02:00 GMT")],
            ""
        ),
        Some(0.0)
    );
    // An unreadable Retry-After falls through to the next source.
    assert_eq!(
        wait_of(
            Some(429),
            &[("Retry-After", "soon")],
            "Please try again in 2s."
        ),
        Some(2.0)
    );
    assert_eq!(wait_of(Some(429), &[("Retry-After", "-5")], ""), None);
    // The anchor's `x-ratelimit-reset-after` is a reset header too.
    assert_eq!(
        wait_of(Some(429), &[("x-ratelimit-reset-after", "4")], ""),
        Some(4.0)
    );
}

#[test]
fn a_clients_own_backoff_is_not_the_providers_word() {
    let log = "INFO:openai._base_client:Retrying request to /chat/completions in 0.403391 seconds\nRetrying in 0.2 seconds\nopenai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached.', 'code': 'rate_limit_exceeded'}}";
    let verdict = classify(&response(None, &[], log), now());
    assert_eq!(verdict.kind, RateLimit);
    assert_eq!(verdict.retry_after_seconds, None);
    assert_eq!(verdict.status_code, Some(429));
    assert_eq!(verdict.message, "Rate limit reached.");
}

#[test]
fn message_is_the_providers_and_bounded() {
    let verdict = classify(
        &response(
            Some(529),
            &[],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        now(),
    );
    assert_eq!(verdict.message, "Overloaded");
    assert_eq!(verdict.status_code, Some(529));
    let leaked = classify(
        &response(
            Some(401),
            &[],
            r#"{"error":{"message":"Incorrect API key provided: sk-proj-AbCdEf0123456789xyzXYZ.","code":"invalid_api_key"}}"#,
        ),
        now(),
    );
    assert_eq!(leaked.message, "Incorrect API key provided: [REDACTED].");
    let long = "x".repeat(5000);
    let verdict = classify(&response(Some(500), &[], &format!("  {long}  ")), now());
    assert_eq!(verdict.message.chars().count(), MAX_MESSAGE_CHARS);
    assert!(verdict.message.ends_with("xx…"));
    let exact = "y".repeat(MAX_MESSAGE_CHARS);
    assert_eq!(
        classify(&response(Some(500), &[], &exact), now()).message,
        exact
    );
}

#[test]
fn compute_retry_delay_caps_what_is_slept() {
    let verdict = classify(&response(Some(429), &[("retry-after", "3600")], ""), now());
    assert_eq!(verdict.retry_after_seconds, Some(3600.0));
    assert_eq!(
        compute_retry_delay(&verdict, 1, 0.5, DEFAULT_DELAY_CAP_SECONDS),
        60.0
    );
    assert_eq!(compute_retry_delay(&verdict, 1, 0.5, 5.0), 5.0);
    assert_eq!(compute_retry_delay(&verdict, 1, 0.5, f64::NAN), 0.0);
    let silent = classify(&response(Some(429), &[], ""), now());
    assert_eq!(compute_retry_delay(&silent, 1, 0.0, 60.0), 1.0);
    assert_eq!(compute_retry_delay(&silent, 3, 0.5, 60.0), 4.4);
    // Backoff at its 60 s ceiling plus jitter is still capped at 60.
    assert_eq!(compute_retry_delay(&silent, 10, 0.9, 60.0), 60.0);
    assert_eq!(compute_retry_delay(&silent, 10, 0.9, 100.0), 70.8);
}

#[test]
fn backoff_doubles_caps_and_jitters() {
    assert_eq!(retry_delay(None, 1, 0.0), 1.0);
    assert_eq!(retry_delay(None, 3, 0.0), 4.0);
    assert_eq!(retry_delay(None, 30, 0.0), 60.0);
    assert_eq!(retry_delay(None, 2, 0.5), 2.2);
    assert_eq!(retry_delay(Some(7.5), 9, 0.9), 7.5);
}

#[test]
fn arbitrary_text_never_panics() {
    let alphabet: Vec<char> = "{}[]()'\"\\:,.0123456789 abcdeflrstuyTFNnEZGMT+\n\t-#_é"
        .chars()
        .collect();
    let mut random = fastrand::Rng::with_seed(5);
    for _ in 0..1000 {
        let length = random.usize(0..200);
        let body: String = (0..length)
            .map(|_| alphabet[random.usize(..alphabet.len())])
            .collect();
        let status = random.bool().then(|| random.u16(100..600));
        let verdict = classify(
            &response(
                status,
                &[("retry-after", &body), ("x-ratelimit-reset", &body)],
                &body,
            ),
            now(),
        );
        assert_eq!(verdict.is_rate_limit, verdict.kind == RateLimit);
        assert!(verdict
            .retry_after_seconds
            .is_none_or(|seconds| seconds.is_finite() && seconds >= 0.0));
    }
}

#[test]
fn absurd_numbers_are_finite_or_ignored() {
    for value in [
        "1e300",
        "1e20",
        "99999999999999999999",
        "inf",
        "NaN",
        "-0",
        "1e400",
    ] {
        let verdict = classify(
            &response(
                Some(429),
                &[
                    ("retry-after", value),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", value),
                ],
                &format!(
                    r#"{{"retryDelay":{{"seconds":{value},"nanos":1e308}},"reset_at":"{value}"}}"#
                ),
            ),
            now(),
        );
        assert!(
            verdict
                .retry_after_seconds
                .is_none_or(|seconds| seconds.is_finite() && seconds >= 0.0),
            "{value}: {:?}",
            verdict.retry_after_seconds
        );
    }
    assert_eq!(
        wait_of(Some(429), &[("retry-after", "1e300")], ""),
        Some(1e300)
    );
}

#[test]
fn billing_disabled_on_google_is_money() {
    check(&[Case {
        name: "billing disabled",
        status: Some(403),
        headers: &[],
        body: r#"{"error":{"code":403,"message":"This API method requires billing to be enabled. Please enable billing on project #1234 then retry.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"BILLING_DISABLED","domain":"googleapis.com"}]}}"#,
        kind: QuotaExhausted,
        retryable: false,
        retry_after: None,
    }]);
}

#[test]
fn deep_and_huge_inputs_stay_bounded() {
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    assert_eq!(classify(&response(None, &[], &deep), now()).kind, Other);
    let braces = "{'a': ".repeat(10_000);
    assert_eq!(
        classify(&response(Some(500), &[], &braces), now()).kind,
        Other
    );
    // More nodes than the walk visits: what came first still counts.
    let wide = format!(
        r#"{{"error":{{"type":"rate_limit_error"}},"items":[{}{{}}]}}"#,
        r#"{"message":"x"},"#.repeat(30_000)
    );
    assert_eq!(classify(&response(None, &[], &wide), now()).kind, RateLimit);
    let mut big = "log line without meaning\n".repeat(20_000);
    big.push_str(r#"{"error":{"type":"rate_limit_error","message":"Please try again in 3s"}}"#);
    let verdict = classify(&response(None, &[], &big), now());
    assert_eq!(
        (verdict.kind, verdict.retry_after_seconds),
        (RateLimit, Some(3.0))
    );
}

#[test]
fn sdk_messages_without_a_status_give_one() {
    for (text, kind, status) in [
        (
            r#"Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            Overloaded,
            529,
        ),
        (
            "RateLimitError: 429 You exceeded your current quota, please check your plan and billing details.",
            QuotaExhausted,
            429,
        ),
        (
            "google.api_core.exceptions.ResourceExhausted: 429 Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model with base model: gemini-1.5-flash.",
            RateLimit,
            429,
        ),
        (
            "google.api_core.exceptions.ServiceUnavailable: 503 The model is overloaded. Please try again later.",
            Overloaded,
            503,
        ),
        (
            "openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided', 'type': 'invalid_request_error', 'code': 'invalid_api_key'}}",
            Other,
            401,
        ),
    ] {
        let verdict = classify(&response(None, &[], text), now());
        assert_eq!(
            (verdict.kind, verdict.status_code),
            (kind, Some(status)),
            "{text}"
        );
    }
}

/// Monthly allowances and spend caps: `quota_exhausted` whatever the status
/// (429 `rate_limit_error`, 400, 403), unless a shorter window is named.
#[test]
fn monthly_allowances_and_spend_caps() {
    check(&[
        Case {
            // anthropics/claude-code#38035 and #2127 (a 400 `invalid_request_error`).
            name: "Anthropic: API usage limits with the date access returns",
            status: Some(400),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC."},"request_id":"req_011CZLrUfBVkVHn5T6EqQaf7"}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // The same message as a 429 `rate_limit_error` is still the allowance.
            name: "Anthropic: API usage limits as a 429 rate_limit_error",
            status: Some(429),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC."}}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // anthropics/claude-code#29584, #39180: a 429 `rate_limit_error`
            // that only paying for extra usage can lift.
            name: "Anthropic: extra usage required, as a 429",
            status: Some(429),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"Extra usage is required for long context requests."},"request_id":"req_011CYZAjb9kGCRmAhG79ySi5"}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // Cohere docs "API Keys and Rate Limits": trial keys are limited to
            // 1,000 calls a month; the 429 text as quoted in public bug reports.
            name: "Cohere: trial key per month, as a 429",
            status: Some(429),
            headers: &[],
            body: r#"{"id":"3e979f4a-9ff2-425f-acfb-076d09c5ab32","message":"You are using a Trial key, which is limited to 1000 API calls / month. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'. Contact us on 'https://discord.gg/XW44jPfYJu' or email us at support@cohere.com with any questions"}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // cohere.errors.TooManyRequestsError as quoted on errornotes.dev,
            // "Fix cohere.TooManyRequestsError 429": the per-minute limit.
            name: "Cohere: trial key per minute stays a rate limit",
            status: Some(429),
            headers: &[],
            body: r#"{"message":"You are using a Trial key, which is limited to 10 API calls / minute. Upgrade to a Production key to increase your rate limit."}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            // continuedev/continue#10373 and #10740 (xAI, a 429).
            name: "xAI: credits used or monthly spending limit, as a 429",
            status: Some(429),
            headers: &[],
            body: r#""Your team 16f2151a-40f4-4a80-8ad0-cae00c27e8dd has either used all available credits or reached its monthly spending limit. To continue making API requests, please purchase more credits or raise your spending limit.""#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // anomalyco/opencode#44099: a coding plan's monthly quota, as a 429.
            name: "monthly usage quota with a reset time and offset",
            status: Some(429),
            headers: &[],
            body: "API Error: Request rejected (429) · You have exceeded the monthly usage quota. It will reset at 2026-08-29 23:59:59 +0800 CST. We recommend upgrading your plan for more quota, or waiting for the reset. Request id: 021787385003028709",
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // Microsoft Learn, LUIS FAQ: "Out of call volume quota. Quota will
            // be replenished in <time>." (Azure AI services free tier, a 403).
            name: "Azure: out of call volume quota",
            status: Some(403),
            headers: &[],
            body: r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 2.12 days."}"#,
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // continuedev/continue#11584 (OpenRouter free account, a 402).
            name: "OpenRouter: prompt tokens limit of a free account",
            status: Some(402),
            headers: &[],
            body: "402 Prompt tokens limit exceeded: 23229 > 14796. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account",
            kind: QuotaExhausted,
            retryable: false,
            retry_after: None,
        },
        Case {
            // anthropics/claude-code#54603: the API's words for a short window.
            name: "Anthropic: account rate limit stays a rate limit",
            status: Some(429),
            headers: &[],
            body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your account's rate limit. Please try again later."},"request_id":"req_011CaXnEVwn7CTN8eP8wBon4"}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            // continuedev/continue#9235 (Ollama cloud): an hourly usage limit.
            name: "hourly usage limit stays a rate limit",
            status: Some(429),
            headers: &[],
            body: r#""you've reached your hourly usage limit, please wait or upgrade to continue""#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            // Constructed: "usage limits" beside a per-minute window.
            name: "usage limits per minute stay a rate limit",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"You have exceeded your usage limits of 60 requests per minute."}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
    ]);
}

/// Provider capacity: `overloaded` even as a 429 or a 503 with a rate-limit
/// code, unless a per-minute request or token limit is named as hit.
#[test]
fn capacity_outranks_429_and_rate_limit_codes() {
    check(&[
        Case {
            // google-gemini/gemini-cli#25179: a 429 RESOURCE_EXHAUSTED whose
            // reasons are `rateLimitExceeded` and MODEL_CAPACITY_EXHAUSTED.
            name: "Gemini: MODEL_CAPACITY_EXHAUSTED as a 429",
            status: Some(429),
            headers: &[],
            body: r#"[{
  "error": {
    "code": 429,
    "message": "No capacity available for model gemini-3.1-pro-preview on the server",
    "errors": [
      {
        "message": "No capacity available for model gemini-3.1-pro-preview on the server",
        "domain": "global",
        "reason": "rateLimitExceeded"
      }
    ],
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "MODEL_CAPACITY_EXHAUSTED",
        "domain": "cloudcode-pa.googleapis.com",
        "metadata": {"model": "gemini-3.1-pro-preview"}
      }
    ]
  }
}]"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            // badrisnarayanan/antigravity-claude-proxy#197: the 503 form with RetryInfo.
            name: "Gemini: MODEL_CAPACITY_EXHAUSTED as a 503 with a retry delay",
            status: Some(503),
            headers: &[],
            body: r#"{"error":{"code":503,"message":"No capacity available for model gemini-3-pro-high on the server","status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MODEL_CAPACITY_EXHAUSTED","domain":"cloudcode-pa.googleapis.com","metadata":{"model":"gemini-3-pro-high"}},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"40s"}]}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: Some(40.0),
        },
        Case {
            // continuedev/continue#10639: Gemini's 503 "high demand".
            name: "Gemini: high demand as a 503",
            status: Some(503),
            headers: &[],
            body: r#"{"error":{"code":503,"message":"This model is currently experiencing high demand. Spikes in demand are usually temporary. Please try again later.","status":"UNAVAILABLE"}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            // epam/ai-dial-chat#3666: a gateway's 429 for upstream capacity.
            name: "high demand as a 429",
            status: Some(429),
            headers: &[],
            body: "Due to high demand our AI capacities are overloaded. We understand the problem and continuously searching for the way to extend capacities of the service (unfortunately there limits on cloud providers). Please, try again in a couple of minutes or try another model",
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            // danny-avila/LibreChat#1155: OpenAI's "slow down" as a 429.
            name: "OpenAI: slow down as a 429",
            status: Some(429),
            headers: &[],
            body: r#"{"error": "slow down"}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            // OpenAI's error-code name for the same condition.
            name: "slow_down code with a rate-limit type",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"Please reduce your request rate.","type":"rate_limit_error","code":"slow_down"}}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            // google-antigravity/antigravity-cli#544: an overload as a 429.
            name: "model API overloaded as a 429",
            status: None,
            headers: &[],
            body: r#"{"step_index":3,"source":"SYSTEM","type":"ERROR_MESSAGE","status":"DONE","error":"The model API is currently overloaded and may experience intermittent errors.","error_code":429}"#,
            kind: Overloaded,
            retryable: true,
            retry_after: None,
        },
        Case {
            // Constructed: peak-load words beside a per-minute token limit hit.
            name: "peak load beside a per-minute limit stays a rate limit",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"message":"Rate limit reached on tokens per min (TPM): Limit 30000, Used 30000, Requested 900. We are also under peak load. Please try again in 2s.","code":"rate_limit_exceeded"}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: Some(2.0),
        },
        Case {
            // Constructed: Gemini's capacity reason beside a per-minute quota id.
            name: "high demand with a PerMinute quota violation stays a rate limit",
            status: Some(429),
            headers: &[],
            body: r#"{"error":{"code":429,"message":"High demand. Quota exceeded for metric generate_content_requests, limit: 15","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel","quotaValue":"15"}]}]}}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            // aws-samples/amazon-bedrock-client-for-mac#99: a token throttle.
            name: "Bedrock: too many tokens stays a rate limit",
            status: Some(429),
            headers: &[(
                "x-amzn-ErrorType",
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            )],
            body: r#"{"message":"Too many tokens, please wait before trying again."}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            // minorun365/agent-book#29: Bedrock's daily token quota (boto3 text).
            name: "Bedrock: too many tokens per day stays a rate limit",
            status: None,
            headers: &[],
            body: "botocore.errorfactory.ThrottlingException: An error occurred (ThrottlingException) when calling the Converse operation (reached max retries: 4): Too many tokens per day, please wait before trying again.",
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
        Case {
            // cline/cline#9085: Mistral's 429 `rate_limited`, code 1300.
            name: "Mistral: rate_limited stays a rate limit",
            status: Some(429),
            headers: &[],
            body: r#"{"object":"error","message":"Rate limit exceeded","type":"rate_limited","param":null,"code":"1300"}"#,
            kind: RateLimit,
            retryable: true,
            retry_after: None,
        },
    ]);
}

#[test]
fn quota_verdicts_carry_the_time_access_returns() {
    let resets_at =
        |status: u16, body: &str| classify(&response(Some(status), &[], body), now()).resets_at;
    // anthropics/claude-code#38035.
    let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC."}}"#;
    assert_eq!(resets_at(400, anthropic), from_unix(1_775_001_600, 0));
    // anomalyco/opencode#44099: 23:59:59 at +08:00 is 15:59:59 UTC.
    let offset = "You have exceeded the monthly usage quota. It will reset at 2026-08-29 23:59:59 +0800 CST.";
    assert_eq!(resets_at(429, offset), from_unix(1_788_019_199, 0));
    // No date named, or not a quota verdict: nothing to report.
    let cohere =
        r#"{"message":"You are using a Trial key, which is limited to 1000 API calls / month."}"#;
    assert_eq!(resets_at(429, cohere), None);
    let rate_limit = r#"{"error":{"message":"Rate limit exceeded; the window resets at 2026-11-23 11:01:00 UTC"}}"#;
    assert_eq!(resets_at(429, rate_limit), None);

    let json = serde_json::to_value(classify(&response(Some(400), &[], anthropic), now())).unwrap();
    assert_eq!(json["resets_at"], "2026-04-01T00:00:00Z");
    let json = serde_json::to_value(classify(&response(Some(429), &[], cohere), now())).unwrap();
    assert!(json.get("resets_at").is_none(), "{json}");
}

#[test]
fn only_answers_that_say_the_account_is_out_hold_the_whole_provider() {
    let cases: &[(&str, Option<u16>, &str, bool)] = &[
        (
            "OpenAI insufficient_quota",
            Some(429),
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            true,
        ),
        (
            "Anthropic credit balance too low",
            Some(400),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#,
            true,
        ),
        (
            "Anthropic API usage limits",
            Some(400),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC."}}"#,
            true,
        ),
        (
            "DeepSeek insufficient balance",
            Some(402),
            r#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#,
            true,
        ),
        (
            "xAI credits or monthly spending limit",
            Some(429),
            r#""Your team 16f2151a-40f4-4a80-8ad0-cae00c27e8dd has either used all available credits or reached its monthly spending limit. To continue making API requests, please purchase more credits or raise your spending limit.""#,
            true,
        ),
        (
            "Google free tier with limit: 0 for one model",
            Some(429),
            r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateContentRequestsPerModelPerDay-FreeTier"}]}]}}"#,
            false,
        ),
        (
            "a rate limit is never account-wide",
            Some(429),
            r#"{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 30000, Requested 500. Please try again in 1s.","type":"tokens","code":"rate_limit_exceeded"}}"#,
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (name, status, body, want) in cases {
        let verdict = classify(&response(*status, &[], body), now());
        if verdict.whole_account != *want {
            failures.push(format!(
                "{name}: whole_account {} (kind {:?})",
                verdict.whole_account, verdict.kind
            ));
        }
        if *want {
            assert_eq!(verdict.kind, QuotaExhausted, "{name}");
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
