//! Table-driven tests: each family's documented header shapes (our own values),
//! read at a fixed moment.

use super::*;
use crate::rate_limits::profile::Profile;

/// 2026-12-02T00:00:00Z, epoch ms.
const NOW: u64 = 1_796_169_600_000;

fn at(text: &str) -> u64 {
    let moment = retry::parse_rfc3339(text).unwrap();
    u64::try_from(moment.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// (dimension, window, limit, remaining, reset in ms after NOW)
type Expected = (Dimension, Window, Option<u64>, Option<u64>, Option<u64>);

/// (what, provider, headers, family, budgets expected)
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Family,
    Vec<Expected>,
);

fn budgets(learned: &LearnedLimits) -> Vec<Expected> {
    learned
        .limits
        .iter()
        .map(|limit| {
            (
                limit.dimension,
                limit.window,
                limit.limit,
                limit.remaining,
                limit.reset_at_ms.map(|reset| reset - NOW),
            )
        })
        .collect()
}

#[test]
fn now_is_the_moment_the_tests_say() {
    assert_eq!(at("2026-12-02T00:00:00Z"), NOW);
}

#[test]
fn each_family_reads_its_documented_shapes() {
    use Dimension::*;
    use Window::*;
    let cases: Vec<Case> = vec![
        (
            "OpenAI: per-minute requests and tokens, Go-duration resets",
            "openai",
            vec![
                ("x-ratelimit-limit-requests", "60"),
                ("x-ratelimit-limit-tokens", "150000"),
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-remaining-tokens", "149984"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
            Family::OpenAi,
            vec![
                (Requests, Minute, Some(60), Some(59), Some(1_000)),
                (Tokens, Minute, Some(150_000), Some(149_984), Some(360_000)),
            ],
        ),
        (
            "OpenAI: millisecond and compound durations, names in any case",
            "openai",
            vec![
                ("X-RateLimit-Reset-Requests", "20ms"),
                ("X-RateLimit-Remaining-Requests", "0"),
                ("x-ratelimit-reset-tokens", "1h2m3.5s"),
            ],
            Family::OpenAi,
            vec![
                (Requests, Minute, None, Some(0), Some(20)),
                (Tokens, Minute, None, None, Some(3_723_500)),
            ],
        ),
        (
            "Groq: the requests headers are per day, the tokens headers per minute",
            "Groq",
            vec![
                ("x-ratelimit-limit-requests", "14400"),
                ("x-ratelimit-limit-tokens", "18000"),
                ("x-ratelimit-remaining-requests", "14370"),
                ("x-ratelimit-remaining-tokens", "17997"),
                ("x-ratelimit-reset-requests", "2m59.56s"),
                ("x-ratelimit-reset-tokens", "7.66s"),
                ("retry-after", "2"),
            ],
            Family::OpenAi,
            vec![
                (Requests, Day, Some(14_400), Some(14_370), Some(179_560)),
                (Tokens, Minute, Some(18_000), Some(17_997), Some(7_660)),
            ],
        ),
        (
            "OpenAI-compatible names with a window suffix say their window",
            "cerebras",
            vec![
                ("x-ratelimit-limit-requests-day", "14400"),
                ("x-ratelimit-remaining-requests-day", "14399"),
                ("x-ratelimit-reset-requests-day", "33011.5"),
                ("x-ratelimit-limit-tokens-minute", "60000"),
                ("x-ratelimit-remaining-tokens-minute", "59000"),
                ("x-ratelimit-reset-tokens-minute", "11.5"),
            ],
            Family::OpenAi,
            vec![
                (Requests, Day, Some(14_400), Some(14_399), Some(33_011_500)),
                (Tokens, Minute, Some(60_000), Some(59_000), Some(11_500)),
            ],
        ),
        (
            "Anthropic: four per-minute budgets, RFC 3339 resets",
            "anthropic",
            vec![
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "49"),
                ("anthropic-ratelimit-requests-reset", "2026-12-02T00:00:01Z"),
                ("anthropic-ratelimit-tokens-limit", "38000"),
                ("anthropic-ratelimit-tokens-remaining", "37000"),
                ("anthropic-ratelimit-tokens-reset", "2026-12-02T00:00:02.5Z"),
                ("anthropic-ratelimit-input-tokens-limit", "30000"),
                ("anthropic-ratelimit-input-tokens-remaining", "0"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2026-12-02T01:00:30+01:00",
                ),
                ("anthropic-ratelimit-output-tokens-limit", "8000"),
                ("anthropic-ratelimit-output-tokens-remaining", "8000"),
                (
                    "anthropic-ratelimit-output-tokens-reset",
                    "2026-12-02T00:00:00Z",
                ),
                ("request-id", "req_0123"),
            ],
            Family::Anthropic,
            vec![
                (Requests, Minute, Some(50), Some(49), Some(1_000)),
                (Tokens, Minute, Some(38_000), Some(37_000), Some(2_500)),
                (InputTokens, Minute, Some(30_000), Some(0), Some(30_000)),
                (OutputTokens, Minute, Some(8_000), Some(8_000), Some(0)),
            ],
        ),
        (
            "IETF draft: policies joined to the current field by name",
            "acme",
            vec![
                (
                    "RateLimit-Policy",
                    r#""burst";q=100;w=60, "daily";q=1000;w=86400"#,
                ),
                ("RateLimit", r#""burst";r=0;t=30, "daily";r=900;t=3600"#),
            ],
            Family::Ietf,
            vec![
                (Requests, Minute, Some(100), Some(0), Some(30_000)),
                (Requests, Day, Some(1_000), Some(900), Some(3_600_000)),
            ],
        ),
        (
            "IETF draft: a token unit counts tokens, byte quotas are left out",
            "acme",
            vec![
                (
                    "ratelimit-policy",
                    r#""tpm";q=30000;qu="tokens";w=60;pk=:a2V5:, "bytes";q=1000;qu="content-bytes";w=1"#,
                ),
                ("ratelimit", r#""tpm";r=29000;t=12"#),
            ],
            Family::Ietf,
            vec![(Tokens, Minute, Some(30_000), Some(29_000), Some(12_000))],
        ),
        (
            "IETF draft: a current field naming no known policy",
            "acme",
            vec![("RateLimit", r#""default";r=50;t=30"#)],
            Family::Ietf,
            vec![(Requests, Unstated, None, Some(50), Some(30_000))],
        ),
        (
            "IETF draft 7: dictionary field, policy by quota",
            "acme",
            vec![
                ("RateLimit", "limit=100, remaining=50, reset=5"),
                ("RateLimit-Policy", "100;w=60"),
            ],
            Family::Ietf,
            vec![(Requests, Minute, Some(100), Some(50), Some(5_000))],
        ),
        (
            "The older triple: delay-seconds reset, a window in the limit",
            "acme",
            vec![
                ("RateLimit-Limit", "100, 100;w=60"),
                ("RateLimit-Remaining", "0"),
                ("RateLimit-Reset", "50"),
            ],
            Family::Triple,
            vec![(Requests, Minute, Some(100), Some(0), Some(50_000))],
        ),
        (
            "The X- triple with a reset in epoch milliseconds (OpenRouter)",
            "openrouter",
            vec![
                ("X-RateLimit-Limit", "20"),
                ("X-RateLimit-Remaining", "19"),
                ("X-RateLimit-Reset", "1796169607000"),
            ],
            Family::Triple,
            vec![(Requests, Unstated, Some(20), Some(19), Some(7_000))],
        ),
    ];
    for (what, provider, headers, family, expected) in cases {
        let learned = learn(&pairs(&headers), provider, NOW);
        assert_eq!(budgets(&learned), expected, "{what}");
        assert!(
            learned.limits.iter().all(|limit| limit.family == family),
            "{what}: {learned:?}"
        );
        assert!(learned.unreadable.is_empty(), "{what}: {learned:?}");
    }
}

#[test]
fn the_same_openai_names_are_per_minute_for_other_providers() {
    let headers = pairs(&[("x-ratelimit-limit-requests", "14400")]);
    for (provider, window) in [
        ("groq", Window::Day),
        ("openai", Window::Minute),
        ("together", Window::Minute),
    ] {
        let learned = learn(&headers, provider, NOW);
        assert_eq!(learned.limits[0].window, window, "{provider}");
    }
}

#[test]
fn unreadable_values_are_reported_and_learn_nothing() {
    let learned = learn(
        &pairs(&[
            ("x-ratelimit-limit-requests", "lots"),
            ("x-ratelimit-reset-tokens", "soon"),
            ("anthropic-ratelimit-tokens-remaining", "-1"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-reset-after", "3"),
            ("anthropic-ratelimit-unified-status", "allowed"),
            ("content-type", "application/json"),
        ]),
        "openai",
        NOW,
    );
    assert_eq!(
        budgets(&learned),
        vec![(Dimension::Tokens, Window::Minute, Some(1_000), None, None)]
    );
    assert_eq!(
        learned.unreadable,
        pairs(&[
            ("x-ratelimit-limit-requests", "lots"),
            ("x-ratelimit-reset-tokens", "soon"),
            ("anthropic-ratelimit-tokens-remaining", "-1"),
        ])
    );
    assert!(learn(&pairs(&[("retry-after", "3")]), "openai", NOW).is_empty());
}

#[test]
fn find_prefers_a_budget_that_states_its_limit() {
    let learned = learn(
        &pairs(&[
            ("RateLimit", r#""other";r=5"#),
            ("RateLimit-Limit", "40"),
            ("x-ratelimit-limit-requests", "60"),
        ]),
        "openai",
        NOW,
    );
    let found = learned
        .find(Dimension::Requests, Window::Minute)
        .expect("a requests budget");
    assert_eq!((found.family, found.limit), (Family::OpenAi, Some(60)));
    let unstated = learned
        .find(Dimension::Requests, Window::Unstated)
        .expect("unstated window");
    assert_eq!(unstated.limit, Some(40));
    assert!(learned.find(Dimension::Tokens, Window::Minute).is_none());
}

#[test]
fn headers_come_from_curl_include_dump_and_plain_lines() {
    let include = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 200\r\nx-ratelimit-limit-requests: 60\r\nx-ratelimit-remaining-requests: 58\r\n\r\n{\"id\": \"chatcmpl-1\"}\n";
    let head = headers_from_output(include).unwrap();
    assert_eq!(head.status, Some(200));
    assert_eq!(
        head.headers,
        pairs(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "58")
        ])
    );
    // `curl -D -` after a redirect, the last head without its blank line.
    let dump =
        "HTTP/1.1 301 Moved\nlocation: /v1\n\nHTTP/1.1 429 Too Many Requests\nretry-after: 2\n";
    let head = headers_from_output(dump).unwrap();
    assert_eq!(head.status, Some(429));
    assert_eq!(head.headers, pairs(&[("retry-after", "2")]));
    let plain = headers_from_output("x-ratelimit-limit-tokens: 9\n").unwrap();
    assert_eq!(
        (plain.status, plain.headers),
        (None, pairs(&[("x-ratelimit-limit-tokens", "9")]))
    );
    assert!(headers_from_output("not a header\n").is_err());
}

fn profile(rpm: u64, tpm: u64, target: f64) -> ProfileBudget {
    ProfileBudget::from_profile(&Profile::new("openai", "gpt-4o", rpm, tpm, target, 1).unwrap())
}

#[test]
fn advice_paces_with_the_lower_limit_times_the_target() {
    let learned = learn(
        &pairs(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "100000"),
        ]),
        "openai",
        NOW,
    );
    let advice = advise(&learned, &profile(500, 30_000, 0.5), NOW);
    let summary: Vec<_> = advice
        .iter()
        .map(|budget| {
            (
                budget.dimension,
                budget.profile_limit,
                budget.provider_limit,
                budget.pace_limit,
                budget.provider_is_lower,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Dimension::Requests, Some(500), Some(60), Some(30), true),
            (
                Dimension::Tokens,
                Some(30_000),
                Some(150_000),
                Some(15_000),
                false
            ),
        ]
    );
}

#[test]
fn advice_for_budgets_the_profile_does_not_set_uses_the_providers() {
    let learned = learn(
        &pairs(&[
            ("x-ratelimit-limit-requests", "1000"),
            ("anthropic-ratelimit-output-tokens-limit", "8000"),
        ]),
        "groq",
        NOW,
    );
    let advice = advise(&learned, &profile(30, 6_000, 0.7), NOW);
    let paced: Vec<_> = advice
        .iter()
        .map(|budget| {
            (
                budget.dimension,
                budget.window,
                budget.profile_limit,
                budget.pace_limit,
            )
        })
        .collect();
    assert_eq!(
        paced,
        vec![
            (Dimension::Requests, Window::Day, None, Some(700)),
            (Dimension::OutputTokens, Window::Minute, None, Some(5_600)),
        ]
    );
    let mut budget = profile(30, 6_000, 0.7);
    budget.requests_per_day = Some(500);
    assert_eq!(advise(&learned, &budget, NOW)[0].pace_limit, Some(350));
}

#[test]
fn a_spent_budget_holds_until_its_reset_and_only_then() {
    let headers = pairs(&[
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2026-12-02T00:00:20Z"),
        ("anthropic-ratelimit-input-tokens-remaining", "0"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2026-12-02T00:00:45Z",
        ),
        ("anthropic-ratelimit-output-tokens-remaining", "1"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            "2026-12-02T00:00:59Z",
        ),
        ("anthropic-ratelimit-tokens-remaining", "0"),
    ]);
    let learned = learn(&headers, "anthropic", NOW);
    let budget = profile(50, 40_000, 1.0);
    let advice = advise(&learned, &budget, NOW);
    let holds: Vec<_> = advice
        .iter()
        .map(|budget| (budget.dimension, budget.hold_until_ms))
        .collect();
    assert_eq!(
        holds,
        vec![
            (Dimension::Requests, Some(at("2026-12-02T00:00:20Z"))),
            // Spent, but no reset stated: nothing to hold until.
            (Dimension::Tokens, None),
            (Dimension::InputTokens, Some(at("2026-12-02T00:00:45Z"))),
            (Dimension::OutputTokens, None),
        ]
    );
    assert_eq!(hold_until(&advice), Some(at("2026-12-02T00:00:45Z")));
    // Read later, when the resets have passed: no hold.
    let later = at("2026-12-02T00:00:45Z");
    assert_eq!(hold_until(&advise(&learned, &budget, later)), None);
    assert_eq!(hold_until(&[]), None);
}

#[test]
fn used_counts_what_the_provider_saw_beyond_our_window() {
    let learned = learn(
        &pairs(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "45"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-remaining-tokens", "1200"),
            ("x-ratelimit-remaining-requests-day", "5"),
        ]),
        "openai",
        NOW,
    );
    let advice = advise(&learned, &profile(60, 1_000, 1.0), NOW);
    let requests = &advice[0];
    assert_eq!(requests.provider_used, Some(15));
    assert_eq!(requests.unseen_use(10), 5);
    assert_eq!(requests.unseen_use(20), 0);
    // A remaining above the limit (a limit raised mid-window) counts as none used.
    assert_eq!(advice[2].provider_used, Some(0));
    // No limit stated: nothing known of the use.
    assert_eq!(advice[1].provider_used, None);
    assert_eq!(advice[1].unseen_use(0), 0);
}

#[test]
fn shared_advice_states_the_per_minute_limits_and_holds_until_the_latest_spent_reset() {
    use crate::rate_limits::hold::HoldKind;
    let headers = pairs(&[
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-remaining-tokens", "29000"),
        ("x-ratelimit-reset-requests", "6s"),
        ("x-ratelimit-reset-tokens", "2ms"),
    ]);
    let advice = shared_advice(&learn(&headers, "openai", NOW), NOW);
    assert_eq!(advice.stated.requests_per_minute, Some(500));
    assert_eq!(advice.stated.tokens_per_minute, Some(30_000));
    let hold = advice.hold.unwrap();
    assert_eq!((hold.kind, hold.until), (HoldKind::Exhausted, NOW + 6_000));
    assert!(
        hold.reason.contains("no requests are left"),
        "{}",
        hold.reason
    );
    // Nothing spent: limits only.
    let fine = pairs(&[
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-remaining-requests", "499"),
        ("x-ratelimit-reset-requests", "120ms"),
    ]);
    assert_eq!(shared_advice(&learn(&fine, "openai", NOW), NOW).hold, None);
    // A reset a week away is not believed past a day.
    let far = pairs(&[
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2026-12-09T00:00:00Z"),
    ]);
    let held = shared_advice(&learn(&far, "anthropic", NOW), NOW)
        .hold
        .unwrap();
    assert_eq!(held.until, NOW + MAX_EXHAUSTED_HOLD_MILLIS);
}

#[test]
fn shared_advice_states_input_output_and_daily_limits_apart() {
    // Anthropic's documented names, with the IETF fields for a daily policy.
    let headers = pairs(&[
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-input-tokens-limit", "30000"),
        ("anthropic-ratelimit-input-tokens-remaining", "29000"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2026-12-02T00:00:20Z",
        ),
        ("anthropic-ratelimit-output-tokens-limit", "8000"),
        ("anthropic-ratelimit-output-tokens-remaining", "7990"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            "2026-12-02T00:00:05Z",
        ),
        ("ratelimit-policy", "\"daily\";q=1000;w=86400"),
        ("ratelimit", "\"daily\";r=900;t=3600"),
    ]);
    let advice = shared_advice(&learn(&headers, "anthropic", NOW), NOW);
    assert_eq!(advice.stated.requests_per_minute, Some(50));
    assert_eq!(advice.stated.input_tokens_per_minute, Some(30_000));
    assert_eq!(advice.stated.output_tokens_per_minute, Some(8_000));
    assert_eq!(advice.stated.requests_per_day, Some(1_000));
    assert_eq!(advice.stated.tokens_per_minute, None);
    assert_eq!(advice.hold, None, "nothing is spent");
}

#[test]
fn headers_that_state_nothing_give_no_advice() {
    assert_eq!(
        advice_from_headers(
            &pairs(&[("content-type", "application/json")]),
            "openai",
            NOW
        ),
        None
    );
    // Spent with no reset and no limit: nothing to store either.
    assert_eq!(
        advice_from_headers(
            &pairs(&[("x-ratelimit-remaining-requests", "0")]),
            "openai",
            NOW
        ),
        None
    );
    let stated = advice_from_headers(
        &pairs(&[("x-ratelimit-limit-requests", "60")]),
        "openai",
        NOW,
    )
    .unwrap();
    assert_eq!(stated.stated.requests_per_minute, Some(60));
}

#[test]
fn shared_advice_carries_the_use_the_provider_counts_per_minute() {
    use crate::rate_limits::hold::CountedUse;
    let headers = pairs(&[
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-requests", "480"),
        ("x-ratelimit-remaining-tokens", "21000"),
        ("x-ratelimit-reset-requests", "2.4s"),
        ("x-ratelimit-reset-tokens", "18s"),
    ]);
    let advice = advice_from_headers(&headers, "openai", NOW).unwrap();
    assert_eq!(
        advice.provider_use.requests,
        Some(CountedUse {
            used: 20,
            resets_at: Some(NOW + 2_400)
        })
    );
    assert_eq!(
        advice.provider_use.tokens,
        Some(CountedUse {
            used: 9_000,
            resets_at: Some(NOW + 18_000)
        })
    );
    // Anthropic's input-token budget is not the combined one: only its
    // `tokens` budget (and requests) count here.
    let anthropic = pairs(&[
        ("anthropic-ratelimit-input-tokens-limit", "40000"),
        ("anthropic-ratelimit-input-tokens-remaining", "1000"),
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "41"),
        ("anthropic-ratelimit-requests-reset", "2026-12-02T00:00:30Z"),
    ]);
    let advice = advice_from_headers(&anthropic, "anthropic", NOW).unwrap();
    assert_eq!(advice.provider_use.requests.map(|used| used.used), Some(9));
    assert_eq!(advice.provider_use.tokens, None);
    // A remaining count alone, with no limit, says nothing of use.
    assert_eq!(
        advice_from_headers(
            &pairs(&[("x-ratelimit-remaining-requests", "3")]),
            "openai",
            NOW
        ),
        None
    );
}
