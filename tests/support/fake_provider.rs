//! A small local stand-in for an OpenAI-compatible provider, for tests and
//! benchmarks that must see real 429s without reaching any network.
//!
//! - Listens on `127.0.0.1` on an ephemeral port; one thread accepts, one
//!   thread serves each connection, at most [`FakeProviderConfig::max_connections`]
//!   at once (more are answered 503 at once, never queued).
//! - `POST /v1/chat/completions` is counted against a rolling window
//!   ([`FakeProviderConfig::window`], 60 s by default) of requests (RPM) and
//!   tokens (TPM), stamped when the request *arrives*, as providers do.
//! - Within budget: `200` with an OpenAI chat completion body and `usage`.
//!   Over budget: `429` with OpenAI's error body (`type` `requests` or
//!   `tokens`, `code` `rate_limit_exceeded`), `retry-after` and the
//!   `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers.
//! - Every request is logged ([`FakeProvider::log`]) with its arrival time,
//!   status and the `x-fake-client` header, so a test can measure waits and
//!   count 429s.
//!
//! With [`FakeProviderConfig::input_tpm`], `output_tpm` or `daily_requests`
//! set it also meters input and output tokens apart (Anthropic's ITPM and
//! OTPM) and requests per day, says so in Anthropic's
//! `anthropic-ratelimit-{requests,input-tokens,output-tokens}-*` headers and
//! the IETF `RateLimit-Policy: "daily";q=…;w=86400` / `RateLimit` fields, and
//! answers `429` when one is spent. With [`FakeProviderConfig::time_scale`]
//! above 1 its clock runs that many times faster for what it *says* (resets,
//! waits, RFC 3339 instants from [`FakeProviderConfig::virtual_epoch_ms`]),
//! so a test can pace minutes in seconds with a clock scaled the same way.
//!
//! Everything is bounded: header and body sizes, read and write timeouts,
//! connections, the log, and shutdown (dropping the provider stops the accept
//! loop and joins it).
//!
//! Tokens: a request costs `prompt_tokens + completion_tokens`, the numbers its
//! answer reports in `usage` (prompt: one token per 4 bytes of message
//! content, rounded up, plus 3 per message; completion:
//! `min(max_tokens, config.completion_tokens)`), so a pacer that records the
//! reported usage and the provider agree on every token.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest request head (request line and headers) accepted, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted, in bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Read and write timeout of each connection.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most requests kept in the log; later ones are counted but not kept.
const MAX_LOG_ENTRIES: usize = 100_000;

/// What the fake provider enforces and answers.
#[derive(Debug, Clone)]
pub struct FakeProviderConfig {
    /// The model named in answers and 429 messages.
    pub model: String,
    /// Requests allowed in any rolling window.
    pub rpm: u64,
    /// Tokens allowed in any rolling window.
    pub tpm: u64,
    /// The rolling window (60 s for a real provider; shorter only in tests
    /// that say so).
    pub window: Duration,
    /// Completion tokens each answer reports, at most the request's `max_tokens`.
    pub completion_tokens: u64,
    /// How long the provider "thinks" before answering a request it admitted.
    pub latency: Duration,
    /// Connections served at once; further ones get a 503 at once.
    pub max_connections: usize,
    /// Input (prompt) tokens allowed in any window, apart from output; `None`: unmetered.
    pub input_tpm: Option<u64>,
    /// Output (completion) tokens allowed in any window; `None`: unmetered.
    pub output_tpm: Option<u64>,
    /// Requests allowed in the provider's day (from its start); `None`: unmetered.
    pub daily_requests: Option<u64>,
    /// How many times faster than real time the provider's clock runs in
    /// what it says: `window` is real, every reset and wait it reports is
    /// multiplied by this (1: real time).
    pub time_scale: u32,
    /// The provider's clock at its start (Unix-epoch ms) for RFC 3339 resets,
    /// when `time_scale` is above 1 (real time otherwise).
    pub virtual_epoch_ms: u64,
}

impl Default for FakeProviderConfig {
    fn default() -> Self {
        Self {
            model: "gpt-4o".to_owned(),
            rpm: 30,
            tpm: 30_000,
            window: Duration::from_secs(60),
            completion_tokens: 20,
            latency: Duration::from_millis(20),
            max_connections: 64,
            input_tpm: None,
            output_tpm: None,
            daily_requests: None,
            time_scale: 1,
            virtual_epoch_ms: 0,
        }
    }
}

/// One request as the provider saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// When it arrived (after its head and body were read).
    pub arrived: Instant,
    /// The status answered.
    pub status: u16,
    /// The budget that was exhausted, for a 429: `"requests"` or `"tokens"`.
    pub exhausted: Option<&'static str>,
    /// Tokens it cost (0 when refused).
    pub tokens: u64,
    /// The `x-fake-client` request header, if any: lets a test tie requests to its workers.
    pub client: Option<String>,
}

/// A running fake provider; dropping it shuts it down.
pub struct FakeProvider {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// Admitted requests' (arrival, input, output) in the window, and the day's count.
type Split = (VecDeque<(Instant, u64, u64)>, u64);

struct Shared {
    config: FakeProviderConfig,
    started: Instant,
    stopping: AtomicBool,
    connections: AtomicUsize,
    window: Mutex<VecDeque<(Instant, u64)>>,
    /// Admitted requests' (arrival, input, output) for the split budgets,
    /// and the requests of the day; locked around the whole admission.
    split: Mutex<Split>,
    log: Mutex<Vec<LoggedRequest>>,
}

impl FakeProvider {
    /// Starts a provider on `127.0.0.1:0`.
    pub fn start(config: FakeProviderConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            window: Mutex::new(VecDeque::new()),
            split: Mutex::new((VecDeque::new(), 0)),
            log: Mutex::new(Vec::new()),
        });
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("fake-provider-accept".to_owned())
            .spawn(move || accept_loop(&listener, &acceptor_shared))?;
        Ok(Self {
            address,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The chat completions endpoint.
    pub fn chat_url(&self) -> String {
        format!("{}/v1/chat/completions", self.base_url())
    }

    /// The socket address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// When the provider started: the zero of every logged time.
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    /// A copy of every request logged so far.
    pub fn log(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    /// How many requests were answered with `status`.
    pub fn count_status(&self, status: u16) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|request| request.status == status)
            .count()
    }

    /// The largest number of admitted requests and tokens seen in any window,
    /// computed from the log (a check that the provider itself held its limits).
    pub fn busiest_window(&self) -> (u64, u64) {
        let log = lock(&self.shared.log);
        let mut admitted: Vec<_> = log.iter().filter(|request| request.status == 200).collect();
        admitted.sort_by_key(|request| request.arrived);
        let window = self.shared.config.window;
        let mut busiest = (0, 0);
        for (index, first) in admitted.iter().enumerate() {
            let inside = admitted[index..]
                .iter()
                .take_while(|request| request.arrived.duration_since(first.arrived) < window);
            let (requests, tokens) = inside.fold((0, 0), |(requests, tokens), request| {
                (requests + 1, tokens + request.tokens)
            });
            busiest = (busiest.0.max(requests), busiest.1.max(tokens));
        }
        busiest
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept with one last connection of our own.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= shared.config.max_connections {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = write_response(
                &mut stream,
                503,
                &[],
                &error_body("too many connections", "server_error", "overloaded"),
            );
            continue;
        }
        let connection_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("fake-provider-conn".to_owned())
            .spawn(move || {
                let _ = serve(stream, &connection_shared);
                connection_shared.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream.take((MAX_HEAD_BYTES + MAX_BODY_BYTES) as u64));
    let request = match read_request(&mut reader, &mut writer) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(error) => {
            let body = error_body(
                &format!("bad request: {error}"),
                "invalid_request_error",
                "bad_request",
            );
            return write_response(&mut writer, 400, &[], &body);
        }
    };
    if request.method != "POST" || request.path.split('?').next() != Some("/v1/chat/completions") {
        let body = error_body(
            &format!("Unknown request URL: {} {}", request.method, request.path),
            "invalid_request_error",
            "unknown_url",
        );
        return write_response(&mut writer, 404, &[], &body);
    }
    let Ok(chat) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
        let body = error_body(
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            "invalid_json",
        );
        return write_response(&mut writer, 400, &[], &body);
    };
    let (prompt_tokens, completion_tokens) = usage_of(&chat, shared.config.completion_tokens);
    let cost = prompt_tokens + completion_tokens;
    let client = request.header("x-fake-client").map(str::to_owned);
    let arrived = Instant::now();
    let mut split = lock(&shared.split);
    let outcome = match refuse_split(
        shared,
        &mut split,
        arrived,
        prompt_tokens,
        completion_tokens,
    ) {
        Some((exhausted, wait)) => Admission::Refused {
            limits: peek(shared, arrived),
            exhausted,
            wait,
        },
        None => {
            let outcome = admit(shared, arrived, cost);
            if matches!(outcome, Admission::Granted(_)) {
                split
                    .0
                    .push_back((arrived, prompt_tokens, completion_tokens));
                split.1 += 1;
            }
            outcome
        }
    };
    let extra_headers = split_headers(shared, &mut split, arrived);
    drop(split);
    let outcome = scaled(outcome, shared.config.time_scale);
    let mut log_entry = LoggedRequest {
        arrived,
        status: 200,
        exhausted: None,
        tokens: cost,
        client,
    };
    let result = match outcome {
        Admission::Granted(limits) => {
            lock_log_push(shared, log_entry);
            std::thread::sleep(shared.config.latency);
            let body = success_body(
                &shared.config.model,
                shared.started.elapsed(),
                prompt_tokens,
                completion_tokens,
            );
            let mut headers = limits.headers();
            headers.extend(extra_headers);
            write_response(&mut writer, 200, &headers, &body)
        }
        Admission::Refused {
            limits,
            exhausted,
            wait,
        } => {
            log_entry.status = 429;
            log_entry.exhausted = Some(exhausted);
            log_entry.tokens = 0;
            lock_log_push(shared, log_entry);
            let (limit, used, requested, short) = match exhausted {
                "requests" => (limits.rpm, limits.rpm - limits.remaining_requests, 1, "RPM"),
                "input_tokens" | "output_tokens" | "daily_requests" => (0, 0, 0, exhausted),
                _ => (
                    limits.tpm,
                    limits.tpm - limits.remaining_tokens,
                    cost,
                    "TPM",
                ),
            };
            let unit = if exhausted == "requests" {
                "requests"
            } else {
                "tokens"
            };
            let message = if short == exhausted {
                format!(
                    "This request would exceed your organization's rate limit of {exhausted} for {model}. \
                     Please try again in {wait}.",
                    model = shared.config.model,
                    wait = format_reset(wait),
                )
            } else {
                format!(
                "Rate limit reached for {model} in organization org-fakeprovider on {unit} per min ({short}): \
                 Limit {limit}, Used {used}, Requested {requested}. Please try again in {wait}. \
                 Visit https://platform.openai.com/account/rate-limits to learn more.",
                model = shared.config.model,
                wait = format_reset(wait),
            )
            };
            let body = error_body(&message, exhausted, "rate_limit_exceeded");
            let mut headers = limits.headers();
            headers.extend(extra_headers);
            headers.push((
                "retry-after".to_owned(),
                wait.as_secs_f64().ceil().max(1.0).to_string(),
            ));
            write_response(&mut writer, 429, &headers, &body)
        }
    };
    let _ = writer.shutdown(Shutdown::Write);
    result
}

fn lock_log_push(shared: &Shared, entry: LoggedRequest) {
    let mut log = lock(&shared.log);
    if log.len() < MAX_LOG_ENTRIES {
        log.push(entry);
    }
}

/// Reads one HTTP/1.1 request; `None` when the peer connected and closed
/// without sending anything (the shutdown wake-up).
fn read_request(reader: &mut impl BufRead, writer: &mut TcpStream) -> io::Result<Option<Request>> {
    let mut head_bytes = 0;
    let mut line = String::new();
    let read = reader.read_line(&mut line)?;
    if read == 0 {
        return Ok(None);
    }
    head_bytes += read;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed request line",
        ));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        head_bytes += read;
        if read == 0 || head_bytes > MAX_HEAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large or cut short",
            ));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .header("expect")
        .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let length: usize = match request.header("content-length") {
        Some(value) => value
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?,
        None => 0,
    };
    if length > MAX_BODY_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request { body, ..request }))
}

/// Prompt tokens (one per 4 bytes of content, rounded up, plus 3 per message)
/// and completion tokens (`min(max_tokens, configured)`).
pub fn usage_of(chat: &serde_json::Value, configured_completion: u64) -> (u64, u64) {
    let messages = chat["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let prompt = messages
        .iter()
        .map(|message| {
            let content = message["content"].as_str().unwrap_or_default();
            (content.len() as u64).div_ceil(4) + 3
        })
        .sum();
    let max_tokens = chat["max_tokens"]
        .as_u64()
        .or_else(|| chat["max_completion_tokens"].as_u64())
        .unwrap_or(u64::MAX);
    (prompt, configured_completion.min(max_tokens))
}

struct Limits {
    rpm: u64,
    tpm: u64,
    remaining_requests: u64,
    remaining_tokens: u64,
    reset_requests: Duration,
    reset_tokens: Duration,
}

impl Limits {
    fn headers(&self) -> Vec<(String, String)> {
        vec![
            (
                "x-ratelimit-limit-requests".to_owned(),
                self.rpm.to_string(),
            ),
            ("x-ratelimit-limit-tokens".to_owned(), self.tpm.to_string()),
            (
                "x-ratelimit-remaining-requests".to_owned(),
                self.remaining_requests.to_string(),
            ),
            (
                "x-ratelimit-remaining-tokens".to_owned(),
                self.remaining_tokens.to_string(),
            ),
            (
                "x-ratelimit-reset-requests".to_owned(),
                format_reset(self.reset_requests),
            ),
            (
                "x-ratelimit-reset-tokens".to_owned(),
                format_reset(self.reset_tokens),
            ),
        ]
    }
}

enum Admission {
    Granted(Limits),
    Refused {
        limits: Limits,
        exhausted: &'static str,
        wait: Duration,
    },
}

fn admit(shared: &Shared, now: Instant, cost: u64) -> Admission {
    let config = &shared.config;
    let mut window = lock(&shared.window);
    while window
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) >= config.window)
    {
        window.pop_front();
    }
    let requests = window.len() as u64;
    let tokens: u64 = window.iter().map(|(_, tokens)| tokens).sum();
    let frees_at = |index: usize| {
        window.get(index).map_or(Duration::ZERO, |(at, _)| {
            (*at + config.window).saturating_duration_since(now)
        })
    };
    // When enough of the oldest tokens will have left for `needed` more to fit.
    let tokens_wait = |needed: u64| {
        let mut left = tokens;
        for (index, (_, cost)) in window.iter().enumerate() {
            if left + needed <= config.tpm {
                break;
            }
            left -= cost;
            if left + needed <= config.tpm {
                return frees_at(index);
            }
        }
        Duration::ZERO
    };
    let requests_fit = requests < config.rpm;
    let tokens_fit = tokens + cost <= config.tpm;
    if requests_fit && tokens_fit {
        let reset = if window.is_empty() {
            config.window
        } else {
            frees_at(0)
        };
        let limits = Limits {
            rpm: config.rpm,
            tpm: config.tpm,
            remaining_requests: config.rpm - requests - 1,
            remaining_tokens: config.tpm - tokens - cost,
            reset_requests: reset,
            reset_tokens: reset,
        };
        window.push_back((now, cost));
        return Admission::Granted(limits);
    }
    let limits = Limits {
        rpm: config.rpm,
        tpm: config.tpm,
        remaining_requests: config.rpm.saturating_sub(requests),
        remaining_tokens: config.tpm.saturating_sub(tokens),
        reset_requests: frees_at(0),
        reset_tokens: tokens_wait(cost.min(config.tpm)),
    };
    if requests_fit {
        let wait = limits.reset_tokens;
        Admission::Refused {
            limits,
            exhausted: "tokens",
            wait,
        }
    } else {
        let wait = frees_at((requests + 1 - config.rpm) as usize - 1);
        Admission::Refused {
            limits,
            exhausted: "requests",
            wait,
        }
    }
}

/// The window's standing as a refusal reports it, nothing admitted.
fn peek(shared: &Shared, now: Instant) -> Limits {
    let config = &shared.config;
    let window = lock(&shared.window);
    let live: Vec<&(Instant, u64)> = window
        .iter()
        .filter(|(at, _)| now.duration_since(*at) < config.window)
        .collect();
    let tokens: u64 = live.iter().map(|(_, tokens)| tokens).sum();
    let reset = live.first().map_or(Duration::ZERO, |(at, _)| {
        (*at + config.window).saturating_duration_since(now)
    });
    Limits {
        rpm: config.rpm,
        tpm: config.tpm,
        remaining_requests: config.rpm.saturating_sub(live.len() as u64),
        remaining_tokens: config.tpm.saturating_sub(tokens),
        reset_requests: reset,
        reset_tokens: reset,
    }
}

/// The split budget (input, output tokens per window, requests per day) a
/// request of `input` + `output` tokens would overrun, with the wait, if any.
fn refuse_split(
    shared: &Shared,
    split: &mut Split,
    now: Instant,
    input: u64,
    output: u64,
) -> Option<(&'static str, Duration)> {
    let config = &shared.config;
    while split
        .0
        .front()
        .is_some_and(|(at, _, _)| now.duration_since(*at) >= config.window)
    {
        split.0.pop_front();
    }
    if config.daily_requests.is_some_and(|daily| split.1 >= daily) {
        let day = Duration::from_secs(86_400) / config.time_scale.max(1);
        return Some(("daily_requests", day.saturating_sub(now - shared.started)));
    }
    for (limit, amount, column, name) in [
        (config.input_tpm, input, 0, "input_tokens"),
        (config.output_tpm, output, 1, "output_tokens"),
    ] {
        let Some(limit) = limit else { continue };
        let used: u64 = split
            .0
            .iter()
            .map(|entry| if column == 0 { entry.1 } else { entry.2 })
            .sum();
        if used + amount > limit {
            let mut left = used;
            let mut wait = config.window;
            for (at, entry_input, entry_output) in &split.0 {
                left -= if column == 0 {
                    *entry_input
                } else {
                    *entry_output
                };
                if left + amount <= limit {
                    wait = (*at + config.window).saturating_duration_since(now);
                    break;
                }
            }
            return Some((name, wait));
        }
    }
    None
}

/// Anthropic's headers for requests and the split budgets, and the IETF
/// fields for the day, as they stand at `now`.
fn split_headers(shared: &Shared, split: &mut Split, now: Instant) -> Vec<(String, String)> {
    let config = &shared.config;
    let scale = u64::from(config.time_scale.max(1));
    let instant = |at: Instant| {
        let real = at.saturating_duration_since(shared.started).as_millis() as u64;
        let millis = if scale > 1 {
            config.virtual_epoch_ms + real * scale
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64)
                + at.saturating_duration_since(now).as_millis() as u64
        };
        jiff::Timestamp::from_millisecond(millis as i64)
            .map(|stamp| stamp.to_string())
            .unwrap_or_default()
    };
    let mut headers = Vec::new();
    if config.input_tpm.is_none() && config.output_tpm.is_none() && config.daily_requests.is_none()
    {
        return headers;
    }
    let reset = split
        .0
        .front()
        .map_or(now + config.window, |(at, _, _)| *at + config.window);
    let requests = lock(&shared.window)
        .iter()
        .filter(|(at, _)| now.duration_since(*at) < config.window)
        .count() as u64;
    let mut budget = |name: &str, limit: u64, used: u64| {
        headers.push((
            format!("anthropic-ratelimit-{name}-limit"),
            limit.to_string(),
        ));
        headers.push((
            format!("anthropic-ratelimit-{name}-remaining"),
            limit.saturating_sub(used).to_string(),
        ));
        headers.push((format!("anthropic-ratelimit-{name}-reset"), instant(reset)));
    };
    budget("requests", config.rpm, requests);
    if let Some(limit) = config.input_tpm {
        budget(
            "input-tokens",
            limit,
            split.0.iter().map(|entry| entry.1).sum(),
        );
    }
    if let Some(limit) = config.output_tpm {
        budget(
            "output-tokens",
            limit,
            split.0.iter().map(|entry| entry.2).sum(),
        );
    }
    if let Some(daily) = config.daily_requests {
        let day = Duration::from_secs(86_400) / config.time_scale.max(1);
        let left = day.saturating_sub(now - shared.started).as_secs_f64() * scale as f64;
        headers.push((
            "ratelimit-policy".to_owned(),
            format!("\"daily\";q={daily};w=86400"),
        ));
        headers.push((
            "ratelimit".to_owned(),
            format!(
                "\"daily\";r={};t={}",
                daily.saturating_sub(split.1),
                left.ceil() as u64
            ),
        ));
    }
    headers
}

/// `outcome` with every duration it reports in the provider's scaled time.
fn scaled(outcome: Admission, scale: u32) -> Admission {
    let scale = scale.max(1);
    let limits = |limits: Limits| Limits {
        reset_requests: limits.reset_requests * scale,
        reset_tokens: limits.reset_tokens * scale,
        ..limits
    };
    match outcome {
        Admission::Granted(granted) => Admission::Granted(limits(granted)),
        Admission::Refused {
            limits: refused,
            exhausted,
            wait,
        } => Admission::Refused {
            limits: limits(refused),
            exhausted,
            wait: wait * scale,
        },
    }
}

/// A duration as OpenAI writes its reset headers and waits: `120ms`, `2s`, `1.5s`, `6m0s`.
pub fn format_reset(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let minutes = millis / 60_000;
    let seconds = (millis % 60_000) as f64 / 1000.0;
    let seconds = format!("{seconds:.3}");
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

fn error_body(message: &str, error_type: &str, code: &str) -> String {
    serde_json::json!({
        "error": { "message": message, "type": error_type, "param": null, "code": code }
    })
    .to_string()
}

fn success_body(
    model: &str,
    since_start: Duration,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> String {
    serde_json::json!({
        "id": format!("chatcmpl-fake{}", since_start.as_nanos()),
        "object": "chat.completion",
        "created": 1_795_000_000 + since_start.as_secs(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "ok" },
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
    .to_string()
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Service Unavailable",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// A provider's answer as [`post_json`] returns it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A minimal HTTP/1.1 client for the fake provider: one `POST` of a JSON body
/// over a fresh connection, every step bounded by `timeout`.
pub fn post_json(
    address: SocketAddr,
    path: &str,
    client: &str,
    body: &str,
    timeout: Duration,
) -> io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\nx-fake-client: {client}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .take((MAX_HEAD_BYTES + MAX_BODY_BYTES) as u64)
        .read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "answer without a head"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "answer without a status"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A chat request whose prompt costs `prompt_tokens` at the fake provider
/// (`prompt_tokens` ≥ 4), with `max_tokens`.
pub fn chat_body(model: &str, prompt_tokens: u64, max_tokens: u64) -> String {
    let content = "x".repeat(((prompt_tokens.max(4) - 3) * 4) as usize);
    serde_json::json!({
        "model": model,
        "messages": [{ "role": "user", "content": content }],
        "max_tokens": max_tokens
    })
    .to_string()
}
