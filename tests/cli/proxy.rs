//! `credits limits proxy` end to end: the binary on a free loopback port in
//! front of a fake upstream, driven by raw HTTP/1.1 exchanges.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

use crate::fake_upstream::{exchange, post, FakeUpstream, Reply, Seen};
use crate::fixture::Project;
use crate::harness::{specsmith, status_json};

/// A running proxy; killed when dropped.
struct Proxy {
    child: Child,
    address: String,
    log: std::path::PathBuf,
}

impl Proxy {
    /// Starts `credits limits proxy --listen 127.0.0.1:0 EXTRA…` and reads the
    /// bound address from its first stdout line.
    fn start(project: &Project, extra: &[&str]) -> Self {
        let log = project.root().join("proxy.log");
        let mut args = vec!["credits", "limits", "proxy", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = specsmith(project, &args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "no address line: {line:?}, log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        Self {
            child,
            address,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project with profiles for the three routed providers, each at `rpm`,
/// TPM 100,000 and concurrency `concurrency`.
fn project(rpm: u64, concurrency: u32) -> Project {
    let project = Project::with_profile("openai", "gpt-4o", rpm, 100_000, concurrency);
    for (provider, model) in [
        ("anthropic", "claude-sonnet-4"),
        ("google", "gemini-2.0-flash"),
    ] {
        let (rpm, concurrency) = (rpm.to_string(), concurrency.to_string());
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
                &rpm,
                "--tpm",
                "100000",
                "--target",
                "1",
                "--concurrency",
                &concurrency,
            ])
            .assert()
            .success();
    }
    project
}

/// `--upstream` flags routing all three providers to `upstream`.
fn routes(upstream: &FakeUpstream) -> Vec<String> {
    ["openai", "anthropic", "gemini"]
        .iter()
        .flat_map(|name| {
            [
                "--upstream".to_owned(),
                format!("{name}={}", upstream.url()),
            ]
        })
        .collect()
}

fn start(project: &Project, upstream: &FakeUpstream, extra: &[&str]) -> Proxy {
    let routes = routes(upstream);
    let mut args: Vec<&str> = routes.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Proxy::start(project, &args)
}

const ANTHROPIC_EVENTS: [&str; 4] = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// Answers like each provider: usage 5 + 7 for OpenAI, an event stream with
/// 25 + 15 for Anthropic, 3 + 4 for Gemini.
fn provider_like(seen: &Seen) -> Reply {
    if seen.target.contains("/messages") {
        Reply::events(&ANTHROPIC_EVENTS, Duration::from_millis(20))
    } else if seen.target.contains(":generateContent") {
        Reply::json(
            200,
            r#"{"candidates":[],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4}}"#,
        )
    } else {
        Reply::json(
            200,
            r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
        )
    }
}

/// The model's status once its in-flight count is 0 (recording happens just
/// after the answer's last byte), within 5 s.
fn settled_status(project: &Project, provider: &str, model: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = status_json(project, provider, model);
        if status["in_flight"] == 0 && status["rolling_request_count"].as_u64() > Some(0)
            || Instant::now() > deadline
        {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const OPENAI_BODY: &str =
    r#"{"model":"gpt-4o","max_tokens":50,"messages":[{"role":"user","content":"hello there"}]}"#;

#[test]
fn routes_each_provider_streams_and_records_usage() {
    let project = project(100, 4);
    let upstream = FakeUpstream::start(provider_like);
    let proxy = start(&project, &upstream, &[]);

    let openai = exchange(
        &proxy.address,
        "POST /openai/v1/chat/completions HTTP/1.1\r\nhost: evil.example\r\nauthorization: Bearer sk-test-secret-0123456789abcdef\r\ncontent-type: application/json",
        OPENAI_BODY.as_bytes(),
    );
    assert_eq!(openai.status, 200, "{}", openai.text());
    assert_eq!(
        openai.text(),
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#
    );

    let anthropic = post(
        &proxy.address,
        "/anthropic/v1/messages",
        r#"{"model":"claude-sonnet-4","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(anthropic.status, 200);
    assert_eq!(anthropic.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        anthropic.text(),
        ANTHROPIC_EVENTS.concat(),
        "the stream passes unchanged"
    );

    let gemini = post(
        &proxy.address,
        "/gemini/v1beta/models/gemini-2.0-flash:generateContent?key=AIzaSyA-0123456789abcdefghijklmnopqrstu",
        r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#,
    );
    assert_eq!(gemini.status, 200);

    let seen = upstream.seen();
    let targets: Vec<&str> = seen.iter().map(|seen| seen.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/v1/chat/completions",
            "/v1/messages",
            "/v1beta/models/gemini-2.0-flash:generateContent?key=AIzaSyA-0123456789abcdefghijklmnopqrstu"
        ]
    );
    // The client's key is forwarded untouched; `Host` names the upstream, not the client's choice.
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-test-secret-0123456789abcdef")
    );
    assert_eq!(
        seen[0].header("host"),
        Some(upstream.url().trim_start_matches("http://"))
    );
    assert_eq!(seen[0].body, OPENAI_BODY.as_bytes());

    for (provider, model, tokens) in [
        ("openai", "gpt-4o", 12),
        ("anthropic", "claude-sonnet-4", 40),
        ("google", "gemini-2.0-flash", 7),
    ] {
        let status = settled_status(&project, provider, model);
        assert_eq!(status["in_flight"], 0, "{provider}: {status}");
        assert_eq!(status["rolling_request_count"], 1, "{provider}: {status}");
        assert_eq!(
            status["rolling_token_count"], tokens,
            "{provider}: the reported usage replaces the estimate"
        );
    }

    let metrics = exchange(&proxy.address, "GET /metrics HTTP/1.1\r\nhost: x", b"");
    assert!(metrics.text().contains("specsmith_proxy_output_tokens_total{provider=\"anthropic\",model=\"claude-sonnet-4\"} 15\n"), "{}", metrics.text());
    assert!(metrics
        .text()
        .contains("specsmith_proxy_requests_total{provider=\"openai\",model=\"gpt-4o\"} 1\n"));
    assert_eq!(
        exchange(&proxy.address, "GET /healthz HTTP/1.1\r\nhost: x", b"").text(),
        "ok\n"
    );

    let log = proxy.log();
    assert!(
        log.contains("POST /openai/v1/chat/completions 200 openai/gpt-4o"),
        "{log}"
    );
    assert!(log.contains("tokens=25+15 (usage)"), "{log}");
    assert!(
        !log.contains("sk-test") && !log.contains("AIzaSy"),
        "a key reached the log: {log}"
    );
}

#[test]
fn answers_429_in_each_providers_shape_with_the_real_wait() {
    let project = project(1, 4);
    let upstream = FakeUpstream::start(provider_like);
    let proxy = start(&project, &upstream, &["--max-wait", "0.2", "--quiet"]);
    let requests = [
        ("/openai/v1/chat/completions", OPENAI_BODY.to_owned()),
        (
            "/anthropic/v1/messages",
            r#"{"model":"claude-sonnet-4","max_tokens":10,"messages":[]}"#.to_owned(),
        ),
        (
            "/gemini/v1beta/models/gemini-2.0-flash:generateContent",
            r#"{"contents":[]}"#.to_owned(),
        ),
    ];
    for (path, body) in &requests {
        assert_eq!(post(&proxy.address, path, body).status, 200, "{path}");
    }
    let mut refused = Vec::new();
    for (path, body) in &requests {
        let started = Instant::now();
        let answer = post(&proxy.address, path, body);
        assert_eq!(answer.status, 429, "{path}: {}", answer.text());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gave up at once: the wait is over 0.2 s"
        );
        let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!(
            (55..=61).contains(&retry_after),
            "Retry-After {retry_after} is the real wait for the window"
        );
        let millis: u64 = answer.header("retry-after-ms").unwrap().parse().unwrap();
        assert_eq!(retry_after, millis.div_ceil(1000));
        refused.push(answer.json());
    }
    assert_eq!(refused[0]["error"]["type"], "rate_limit_exceeded");
    assert_eq!(refused[0]["error"]["code"], "rate_limit_exceeded");
    assert_eq!(refused[1]["type"], "error");
    assert_eq!(refused[1]["error"]["type"], "rate_limit_error");
    assert_eq!(refused[2]["error"]["code"], 429);
    assert_eq!(refused[2]["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        upstream.seen().len(),
        3,
        "refused requests never reach the upstream"
    );
    let metrics = exchange(&proxy.address, "GET /metrics HTTP/1.1\r\nhost: x", b"").text();
    assert!(
        metrics.contains(
            "specsmith_proxy_429_sent_total{provider=\"google\",model=\"gemini-2.0-flash\"} 1\n"
        ),
        "{metrics}"
    );
}

#[test]
fn holds_a_request_until_a_slot_frees() {
    // Concurrency 1: the second call waits for the first stream to end.
    let project = project(100, 1);
    let upstream = FakeUpstream::start(provider_like);
    let proxy = start(&project, &upstream, &["--max-wait", "10"]);
    let address = proxy.address.clone();
    let body = r#"{"model":"claude-sonnet-4","max_tokens":10,"stream":true,"messages":[]}"#;
    let first = std::thread::spawn({
        let address = address.clone();
        move || post(&address, "/anthropic/v1/messages", body)
    });
    std::thread::sleep(Duration::from_millis(30));
    let second = post(&address, "/anthropic/v1/messages", body);
    assert_eq!(first.join().unwrap().status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(upstream.seen().len(), 2);
    let log = proxy.log();
    let queued: Vec<f64> = log
        .lines()
        .filter_map(|line| line.split("queued=").nth(1))
        .map(|rest| rest.split('s').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(queued.len(), 2, "{log}");
    assert!(
        queued.iter().any(|&seconds| seconds >= 0.02),
        "one call was held: {log}"
    );
}

#[test]
fn refuses_requests_that_could_reach_another_host() {
    let project = project(100, 4);
    let upstream = FakeUpstream::start(provider_like);
    let other = FakeUpstream::start(provider_like);
    let other_host = other.url().trim_start_matches("http://").to_owned();
    let proxy = start(&project, &upstream, &[]);
    let body = OPENAI_BODY.as_bytes();
    for (target, status) in [
        (format!("{}/v1/chat/completions", other.url()), 400),
        (format!("//{other_host}/v1/chat/completions"), 400),
        ("/openai/../anthropic/v1/messages".to_owned(), 400),
        ("/openai/%2e%2e/v1".to_owned(), 400),
        (format!("/openai/@{other_host}/v1"), 400),
        (format!("/openai//{other_host}/v1"), 400),
        ("/elsewhere/v1/chat/completions".to_owned(), 404),
    ] {
        let answer = exchange(
            &proxy.address,
            &format!("POST {target} HTTP/1.1\r\nhost: {other_host}"),
            body,
        );
        assert_eq!(answer.status, status, "{target}: {}", answer.text());
        assert!(answer.json()["error"]["message"].is_string());
    }
    // A `Host` naming the other server changes nothing: the route decides.
    let answer = exchange(
        &proxy.address,
        &format!("POST /openai/v1/chat/completions HTTP/1.1\r\nhost: {other_host}"),
        body,
    );
    assert_eq!(answer.status, 200);
    assert!(other.seen().is_empty(), "the other host was reached");
    assert_eq!(upstream.seen().len(), 1);
}

#[test]
fn refuses_an_oversized_body_before_forwarding() {
    let project = project(100, 4);
    let upstream = FakeUpstream::start(provider_like);
    let proxy = start(&project, &upstream, &["--max-body-mib", "1"]);
    let body = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(1024 * 1024)
    );
    let answer = post(&proxy.address, "/openai/v1/chat/completions", &body);
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    assert!(upstream.seen().is_empty());
}

#[test]
fn retries_a_short_upstream_rate_limit_and_passes_a_long_one_through() {
    let project = project(100, 4);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let upstream = FakeUpstream::start({
        let calls = std::sync::Arc::clone(&calls);
        move |seen| {
            let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let limited = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#;
            match (seen.target.as_str(), call) {
                (_, 0) => Reply::json(429, limited).header("retry-after-ms", "150"),
                ("/v1/long", _) => Reply::json(429, limited).header("retry-after", "3600"),
                _ => provider_like(seen),
            }
        }
    });
    let proxy = start(&project, &upstream, &[]);
    let started = Instant::now();
    let answer = post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "waited the prescribed 150 ms"
    );
    assert_eq!(upstream.seen().len(), 2);

    let passed = post(&proxy.address, "/openai/v1/long", OPENAI_BODY);
    assert_eq!(passed.status, 429);
    assert_eq!(passed.header("retry-after"), Some("3600"));
    assert_eq!(
        passed.json()["error"]["type"],
        "requests",
        "the provider's own answer, unchanged"
    );
    assert_eq!(
        upstream.seen().len(),
        3,
        "a long wait is not retried by the proxy"
    );
    let metrics = exchange(&proxy.address, "GET /metrics HTTP/1.1\r\nhost: x", b"").text();
    assert!(
        metrics.contains(
            "specsmith_proxy_429_received_total{provider=\"openai\",model=\"gpt-4o\"} 2\n"
        ),
        "{metrics}"
    );
}

#[test]
fn a_client_that_leaves_mid_stream_is_still_recorded() {
    let project = project(100, 4);
    let upstream = FakeUpstream::start(|_: &Seen| {
        Reply::events(&ANTHROPIC_EVENTS, Duration::from_millis(400))
    });
    let proxy = start(&project, &upstream, &[]);
    let body = r#"{"model":"claude-sonnet-4","max_tokens":100,"stream":true,"messages":[]}"#;
    let mut stream = TcpStream::connect(&proxy.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read until the first event (with the input usage) has come through, then leave.
    let mut received = Vec::new();
    let mut piece = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("message_start") {
        let read = stream.read(&mut piece).unwrap();
        assert!(read > 0, "the stream ended early");
        received.extend_from_slice(&piece[..read]);
    }
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
    drop(stream);
    let status = settled_status(&project, "anthropic", "claude-sonnet-4");
    assert_eq!(status["in_flight"], 0, "the slot was freed: {status}");
    assert_eq!(status["rolling_request_count"], 1);
    assert!(
        status["rolling_token_count"].as_u64().unwrap() >= 25,
        "the input tokens seen count: {status}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.log().contains("cut short") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(proxy.log().contains("cut short"), "{}", proxy.log());
}

#[cfg(unix)]
#[test]
fn sigterm_stops_accepting_and_lets_a_stream_finish() {
    let project = project(100, 4);
    let upstream = FakeUpstream::start(|_: &Seen| {
        Reply::events(&ANTHROPIC_EVENTS, Duration::from_millis(300))
    });
    let mut proxy = start(&project, &upstream, &["--grace", "5"]);
    let address = proxy.address.clone();
    let client = std::thread::spawn(move || {
        post(
            &address,
            "/anthropic/v1/messages",
            r#"{"model":"claude-sonnet-4","max_tokens":100,"stream":true,"messages":[]}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &proxy.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let answer = client.join().unwrap();
    assert_eq!(
        answer.text(),
        ANTHROPIC_EVENTS.concat(),
        "the in-flight stream finished"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = proxy.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the proxy did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        TcpStream::connect(&proxy.address).is_err(),
        "still accepting after shutdown"
    );
    assert_eq!(
        settled_status(&project, "anthropic", "claude-sonnet-4")["rolling_token_count"],
        40
    );
}

#[test]
fn a_client_token_is_required_when_set_and_beyond_loopback() {
    let project = project(100, 4);
    project
        .cmd(&["credits", "limits", "proxy", "--listen", "0.0.0.0:0"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--listen: `0.0.0.0:0` is not a loopback address; pass --allow-remote and --client-token"));
    project
        .cmd(&[
            "credits",
            "limits",
            "proxy",
            "--listen",
            "0.0.0.0:0",
            "--allow-remote",
        ])
        .env_remove("SPECSMITH_PROXY_TOKEN")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a --client-token is required"));
    let upstream = FakeUpstream::start(provider_like);
    let proxy = start(
        &project,
        &upstream,
        &["--client-token", "0123456789abcdef-token"],
    );
    let refused = post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY);
    assert_eq!(refused.status, 401);
    let allowed = exchange(
        &proxy.address,
        "POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-specsmith-proxy-token: 0123456789abcdef-token",
        OPENAI_BODY.as_bytes(),
    );
    assert_eq!(allowed.status, 200);
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(
        upstream.seen()[0].header("x-specsmith-proxy-token"),
        None,
        "the token stays with the proxy"
    );
}

#[test]
fn store_memory_paces_in_the_proxy_and_leaves_the_state_file_alone() {
    let project = project(1, 4);
    let upstream = FakeUpstream::start(provider_like);
    let proxy = start(
        &project,
        &upstream,
        &["--store", "memory", "--max-wait", "0"],
    );
    assert_eq!(
        post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY).status,
        200
    );
    let refused = post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY);
    assert_eq!(refused.status, 429);
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((55..=61).contains(&retry_after), "{retry_after}");
    assert_eq!(upstream.seen().len(), 1);
    assert!(
        !project.exists(crate::fixture::STATE),
        "the budget stayed in memory"
    );
}

#[test]
fn reaches_an_https_upstream_only_with_a_trusted_certificate() {
    let project = project(100, 4);
    let (upstream, pem) = FakeUpstream::start_tls(provider_like);
    let route = format!("openai={}", upstream.url());
    let untrusting = Proxy::start(&project, &["--upstream", &route]);
    let refused = post(
        &untrusting.address,
        "/openai/v1/chat/completions",
        OPENAI_BODY,
    );
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{}",
        refused.text()
    );
    drop(untrusting);
    assert!(
        upstream.seen().is_empty(),
        "nothing is sent over an unverified connection"
    );
    // Released before the 502 was sent.
    let status = status_json(&project, "openai", "gpt-4o");
    assert_eq!(
        status["rolling_request_count"], 0,
        "a call never sent is released: {status}"
    );

    let ca = project.write("upstream-ca.pem", &pem);
    let ca = ca.to_str().unwrap();
    let proxy = Proxy::start(&project, &["--upstream", &route, "--upstream-ca", ca]);
    let answer = post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["usage"]["completion_tokens"], 7);
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(
        settled_status(&project, "openai", "gpt-4o")["rolling_token_count"],
        12
    );

    project.write("not-a-cert.pem", "hello\n");
    project
        .cmd(&[
            "credits",
            "limits",
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream-ca",
            "not-a-cert.pem",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("--upstream-ca")
                .and(predicate::str::contains("no `BEGIN CERTIFICATE` block")),
        );
}

#[test]
fn the_limits_an_answer_states_tighten_the_shared_budget() {
    let project = project(100, 4);
    let upstream = FakeUpstream::start(|seen: &Seen| {
        provider_like(seen)
            .header("x-ratelimit-limit-requests", "3")
            .header("x-ratelimit-limit-tokens", "40000")
            .header("x-ratelimit-remaining-requests", "2")
            .header("x-ratelimit-remaining-tokens", "39000")
            .header("x-ratelimit-reset-requests", "20s")
            .header("x-ratelimit-reset-tokens", "1.5s")
    });
    let proxy = start(&project, &upstream, &["--quiet"]);
    let answer = post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY);
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("x-ratelimit-limit-requests"),
        Some("3"),
        "headers pass through"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = status_json(&project, "openai", "gpt-4o");
        if status["stated_limits"]["requests_per_minute"] == 3 || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status["stated_limits"]["requests_per_minute"], 3,
        "{status}"
    );
    assert_eq!(
        status["effective_rpm_limit"], 3,
        "the provider's 3 beats the profile's 100"
    );
    assert_eq!(status["effective_tpm_limit"], 40_000);
}

#[test]
fn a_spent_quota_holds_the_model_and_is_answered_in_the_providers_shape() {
    let project = project(100, 4);
    let upstream = FakeUpstream::start(|_: &Seen| {
        Reply::json(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        )
    });
    let proxy = start(&project, &upstream, &["--quiet"]);
    let passed = post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY);
    assert_eq!(passed.status, 429);
    assert_eq!(
        passed.json()["error"]["code"],
        "insufficient_quota",
        "the provider's answer, unchanged"
    );
    assert_eq!(
        upstream.seen().len(),
        1,
        "retrying cannot help a spent quota"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let held = loop {
        let held = post(&proxy.address, "/openai/v1/chat/completions", OPENAI_BODY);
        if held.status != 429 || held.header("retry-after").is_some() || Instant::now() > deadline {
            break held;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(held.status, 429, "{}", held.text());
    assert_eq!(held.json()["error"]["type"], "insufficient_quota");
    let retry_after: u64 = held.header("retry-after").unwrap().parse().unwrap();
    assert!(
        retry_after > 3_600,
        "held for the default day: {retry_after}"
    );
    assert_eq!(
        upstream.seen().len(),
        1,
        "the hold keeps calls from the provider"
    );
}

#[test]
fn routes_from_the_setting_file_are_paced_under_their_provider_and_flags_override_them() {
    let project = project(100, 4);
    let file_upstream = FakeUpstream::start(provider_like);
    let flag_upstream = FakeUpstream::start(provider_like);
    let base = file_upstream.url();
    project.write(
        ".specsmith/proxy-upstreams.json",
        &format!(
            r#"{{"azure": {{"url": "{base}/openai", "provider": "openai"}},
                "claude-eu": {{"url": "{base}", "provider": "anthropic"}},
                "openai": {{"url": "{base}/from-the-file"}}}}"#
        ),
    );
    let route = format!("openai={}", flag_upstream.url());
    let proxy = Proxy::start(&project, &["--upstream", &route]);
    for path in ["/azure/v1/chat/completions", "/openai/v1/chat/completions"] {
        let answer = post(&proxy.address, path, OPENAI_BODY);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
    let anthropic_body =
        r#"{"model":"claude-sonnet-4","max_tokens":10,"stream":true,"messages":[]}"#;
    let streamed = post(&proxy.address, "/claude-eu/v1/messages", anthropic_body);
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    assert!(streamed.text().contains("message_delta"));

    let targets: Vec<String> = file_upstream
        .seen()
        .into_iter()
        .map(|seen| seen.target)
        .collect();
    assert_eq!(targets, ["/openai/v1/chat/completions", "/v1/messages"]);
    let overridden: Vec<String> = flag_upstream
        .seen()
        .into_iter()
        .map(|seen| seen.target)
        .collect();
    assert_eq!(
        overridden,
        ["/v1/chat/completions"],
        "the flag replaced the file's `openai`"
    );
    // Both OpenAI-shaped routes count against the one `openai` budget.
    let openai = settled_status(&project, "openai", "gpt-4o");
    assert_eq!(openai["rolling_request_count"], 2, "{openai}");
    assert_eq!(openai["rolling_token_count"], 24, "{openai}");
    let anthropic = settled_status(&project, "anthropic", "claude-sonnet-4");
    assert_eq!(anthropic["rolling_token_count"], 40, "{anthropic}");
    assert!(proxy.log().contains("/azure -> "), "{}", proxy.log());
}

#[test]
fn a_bad_upstreams_file_is_refused_naming_it_and_the_field() {
    let project = project(100, 4);
    for (text, field) in [
        (
            r#"{"x": {"url": "http://api.example.com/v1"}}"#,
            "field `url`",
        ),
        (
            r#"{"x": {"url": "https://api.example.com", "dialect": "cohere"}}"#,
            "field `dialect`",
        ),
        (
            r#"{"metrics": {"url": "https://api.example.com"}}"#,
            "field `name`",
        ),
        (
            r#"{"x": {"url": "https://api.example.com", "key": "sk-1"}}"#,
            "unknown field `key`",
        ),
    ] {
        project.write(".specsmith/proxy-upstreams.json", text);
        project
            .cmd(&["credits", "limits", "proxy", "--listen", "127.0.0.1:0"])
            .timeout(Duration::from_secs(20))
            .assert()
            .failure()
            .stdout("")
            .stderr(
                predicate::str::contains("proxy-upstreams.json")
                    .and(predicate::str::contains(field))
                    .and(predicate::str::contains("panicked").not()),
            );
    }
}
