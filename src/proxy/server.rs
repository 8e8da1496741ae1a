//! The HTTP server: accepts clients, paces each request through the shared
//! budget, forwards it to its upstream and streams the answer back.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::errors::{error_body, retry_after_seconds, Refusal};
use super::estimate::{estimate, Estimate};
use super::metrics::Metrics;
use super::pacing::{self, Budget, Outcome};
use super::routes::{Dialect, RouteError, Upstream};
use super::usage::UsageTracker;
use super::{Hooks, LogSink, ProxyConfig, ProxyError, CLIENT_TOKEN_HEADER};
use crate::rate_limits::clock::{Clock as _, SystemClock};
use crate::rate_limits::owner::Owner;
use crate::rate_limits::pacing::{PaceRequest, PacingError};
use crate::rate_limits::retry::{classify, ErrorKind, ProviderResponse};
use crate::rate_limits::scheduler::SchedulerError;
use crate::rate_limits::secrets;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every answer the proxy gives.
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Longest upstream error body read to classify a 429/503/529, in bytes.
const MAX_ERROR_BODY_BYTES: usize = 256 * 1024;
/// Longest model name kept (for the budget key, the log and metrics).
const MAX_MODEL_CHARS: usize = 128;
/// Headers never forwarded in either direction (hop-by-hop, or ours).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

struct State {
    config: ProxyConfig,
    budget: Arc<dyn Budget>,
    client: HttpsClient,
    metrics: Metrics,
    log: Option<LogSink>,
    owner: Owner,
    pending: pacing::PendingRecords,
}

impl State {
    fn log(&self, line: &str) {
        if let Some(log) = &self.log {
            log(&secrets::for_message(line));
        }
    }
}

/// Serves until `stop` turns true or a signal arrives, then drains.
pub(super) async fn serve(
    config: ProxyConfig,
    budget: Arc<dyn Budget>,
    hooks: Hooks,
    stop: Arc<AtomicBool>,
) -> Result<(), ProxyError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ProxyError::Bind {
            address: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ProxyError::Bind {
        address: config.listen,
        source,
    })?;
    (hooks.on_ready)(bound);

    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(&config.extra_roots)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .build(https);
    let grace = config.grace;
    let state = Arc::new(State {
        config,
        budget,
        client,
        metrics: Metrics::default(),
        log: hooks.log,
        owner: Owner::current(),
        pending: pacing::PendingRecords::default(),
    });

    let (drain_sender, drain) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let signal = shutdown_signal(Arc::clone(&stop));
    tokio::pin!(signal);
    // Ends when a signal arrives or `stop` is set; each pass accepts one client.
    loop {
        tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or a reset before accept: pause briefly, go on.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(Arc::clone(&state), stream, drain.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    stop.store(true, Ordering::SeqCst);
    drop(listener);
    let _ = drain_sender.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        state.log(&format!(
            "proxy: grace period of {:.0} s over, {} connection(s) cut",
            grace.as_secs_f64(),
            connections.len()
        ));
        connections.abort_all();
        // Let the aborted connections drop their bodies, which start their records.
        tokio::task::yield_now().await;
    }
    // Records run on the blocking pool, which drops queued work at shutdown.
    if !state.pending.settle(grace).await {
        state.log(&format!(
            "proxy: {} call(s) not recorded before exit",
            state.pending.count()
        ));
    }
    Ok(())
}

/// TLS to upstreams: rustls on ring, the bundled web PKI roots plus `extra`.
fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig, ProxyError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for certificate in extra {
        roots
            .add(certificate.clone())
            .map_err(|error| ProxyError::Tls(error.to_string()))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| ProxyError::Tls(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Resolves on Ctrl-C, SIGTERM, or `stop` turning true (polled every 50 ms).
async fn shutdown_signal(stop: Arc<AtomicBool>) {
    let polled = async {
        // Ends once `stop` is set; each pass waits 50 ms.
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
        () = polled => {}
    }
}

async fn serve_connection(
    state: Arc<State>,
    stream: tokio::net::TcpStream,
    mut drain: watch::Receiver<bool>,
) {
    let service_state = Arc::clone(&state);
    let service = hyper::service::service_fn(move |request| {
        let state = Arc::clone(&service_state);
        async move { Ok::<_, std::convert::Infallible>(handle(state, request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout)
        .max_buf_size(state.config.max_header_bytes.max(8192))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = drain.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The proxy's own answer for `refusal`, in `dialect`'s shape.
fn refuse(dialect: Dialect, refusal: Refusal, message: &str) -> Response<ProxyBody> {
    let body = error_body(dialect, refusal, message).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// The request's path and query as they may be logged: credentials masked.
fn loggable_target(request_target: &hyper::Uri) -> String {
    let text = request_target
        .path_and_query()
        .map_or("/", |target| target.as_str());
    secrets::for_message(&text.chars().take(512).collect::<String>())
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let target = loggable_target(request.uri());
    let response = route(&state, request, started).await;
    match response {
        Routed::Done(response, note) => {
            state.log(&format!(
                "proxy: {method} {target} {} {:.3}s{note}",
                response.status().as_u16(),
                started.elapsed().as_secs_f64()
            ));
            response
        }
        // Streams log when they end (see `RecordingBody`).
        Routed::Streaming(response) => response,
    }
}

enum Routed {
    /// A finished answer and a note for the log line.
    Done(Response<ProxyBody>, String),
    /// An answer whose body is still flowing; it logs itself at its end.
    Streaming(Response<ProxyBody>),
}

/// What a paced request is about.
struct Call {
    upstream: Upstream,
    model: String,
    estimate: Estimate,
}

async fn route(state: &Arc<State>, request: Request<Incoming>, started: Instant) -> Routed {
    let done = |response| Routed::Done(response, String::new());
    let uri = request.uri().clone();
    if uri.scheme().is_some() || uri.authority().is_some() {
        return done(refuse(
            Dialect::OpenAi,
            Refusal::BadRequest,
            "absolute request targets are refused: this is not an open proxy",
        ));
    }
    match (request.method(), uri.path()) {
        (&Method::GET, "/healthz") => return done(Response::new(full("ok\n"))),
        (&Method::GET, "/metrics") => {
            let mut response = Response::new(full(state.metrics.render()));
            response.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return done(response);
        }
        _ => {}
    }
    let upstream = match state.config.routes.resolve(uri.path()) {
        Ok(resolved) => (resolved.upstream.clone(), resolved.rest),
        Err(error @ RouteError::UnknownRoute { .. }) => {
            return done(refuse(
                Dialect::OpenAi,
                Refusal::NotFound,
                &error.to_string(),
            ))
        }
        Err(error) => {
            return done(refuse(
                Dialect::OpenAi,
                Refusal::BadRequest,
                &error.to_string(),
            ))
        }
    };
    let (upstream, rest) = upstream;
    let dialect = upstream.dialect;
    if let Some(token) = &state.config.client_token {
        let given = request
            .headers()
            .get(CLIENT_TOKEN_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !same_secret(given, token.as_bytes()) {
            return done(refuse(
                dialect,
                Refusal::Unauthorized,
                &format!("missing or wrong `{CLIENT_TOKEN_HEADER}` header"),
            ));
        }
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(state, &parts.headers, body).await {
        Ok(body) => body,
        Err(refusal) => {
            let message = match refusal {
                Refusal::BodyTooLarge => format!(
                    "request body over the proxy's limit of {} bytes",
                    state.config.max_body_bytes
                ),
                _ => "the request body did not arrive in time".to_owned(),
            };
            return done(refuse(dialect, refusal, &message));
        }
    };
    let url = upstream.target(&rest, uri.query());
    let call = paced_call(&upstream, &rest, &body);
    forward(state, parts, body, url, upstream, call, started).await
}

/// Compares secrets without stopping at the first difference.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

async fn read_body(state: &State, headers: &HeaderMap, body: Incoming) -> Result<Bytes, Refusal> {
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Refusal::BodyTooLarge);
    }
    match tokio::time::timeout(
        state.config.body_timeout,
        Limited::new(body, limit).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Refusal::BodyTooLarge)
        }
        Ok(Err(_)) | Err(_) => Err(Refusal::BadRequest),
    }
}

/// The model and estimate of a request the budget should pace; `None` for
/// requests that name no model (listing models, fetching a file…).
fn paced_call(upstream: &Upstream, rest: &str, body: &[u8]) -> Option<Call> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let model = match upstream.dialect {
        Dialect::Gemini => gemini_model(rest),
        Dialect::OpenAi | Dialect::Anthropic => json
            .as_ref()
            .and_then(|json| json.get("model"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }?;
    let model: String = model.chars().take(MAX_MODEL_CHARS).collect();
    let estimate = estimate(upstream.dialect, json.as_ref().unwrap_or(&Value::Null));
    Some(Call {
        upstream: upstream.clone(),
        model,
        estimate,
    })
}

/// The model of a Gemini path `…/models/NAME:method`.
fn gemini_model(rest: &str) -> Option<String> {
    let after = rest.split_once("/models/")?.1;
    let name = after.split([':', '/']).next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

fn upstream_request(
    parts: &hyper::http::request::Parts,
    body: &Bytes,
    url: &str,
) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let mut builder = Request::builder().method(parts.method.clone()).uri(url);
    if let Some(headers) = builder.headers_mut() {
        for (name, value) in &parts.headers {
            let skip = HOP_BY_HOP.contains(&name.as_str())
                || name == "host"
                || name == "content-length"
                || name == "accept-encoding"
                || name == "expect"
                || name == CLIENT_TOKEN_HEADER;
            if !skip {
                headers.append(name.clone(), value.clone());
            }
        }
        // Identity encoding, so the usage in the answer can be read on the way.
        headers.insert("accept-encoding", HeaderValue::from_static("identity"));
    }
    builder.body(Full::new(body.clone()))
}

fn client_headers(from: &HeaderMap, into: &mut HeaderMap) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            into.append(name.clone(), value.clone());
        }
    }
}

fn pacing_refusal(state: &State, call: &Call, error: &PacingError) -> Response<ProxyBody> {
    let dialect = call.upstream.dialect;
    match error {
        PacingError::Scheduler(SchedulerError::DeadlineExceeded { needed, .. }) => {
            state.metrics.sent_429(&call.upstream.provider, &call.model);
            let seconds = retry_after_seconds(*needed);
            let message = format!(
                "{} (the proxy held the request for its budget; retry after {seconds} s)",
                error
            );
            let mut response = refuse(dialect, Refusal::RateLimited, &message);
            let headers = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from(seconds));
            headers.insert(
                "retry-after-ms",
                HeaderValue::from(u64::try_from(needed.as_millis()).unwrap_or(u64::MAX)),
            );
            response
        }
        PacingError::Scheduler(
            SchedulerError::TooLarge { .. } | SchedulerError::TokensOutOfRange { .. },
        ) => refuse(dialect, Refusal::TooLarge, &error.to_string()),
        PacingError::Scheduler(
            SchedulerError::Held { until, .. } | SchedulerError::ProviderHeld { until, .. },
        ) => {
            let wait = Duration::from_millis(until.saturating_sub(SystemClock.now()));
            let mut response = refuse(dialect, Refusal::QuotaHeld, &error.to_string());
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after_seconds(wait)));
            response
        }
        PacingError::Stopped => refuse(dialect, Refusal::Unavailable, "the proxy is shutting down"),
        _ => refuse(
            dialect,
            Refusal::Unavailable,
            &format!("pacing state unusable: {error}"),
        ),
    }
}

async fn forward(
    state: &Arc<State>,
    parts: hyper::http::request::Parts,
    body: Bytes,
    url: String,
    upstream: Upstream,
    call: Option<Call>,
    started: Instant,
) -> Routed {
    let dialect = upstream.dialect;
    let method = parts.method.clone();
    let target = loggable_target(&parts.uri);
    let mut attempt: u32 = 1;
    let mut queued = Duration::ZERO;
    let label = call.as_ref().map_or_else(
        || format!("{}/-", upstream.provider),
        |call| format!("{}/{}", call.upstream.provider, call.model),
    );
    // Each pass is one attempt; attempts are bounded by `retry_attempts`.
    loop {
        let mut reservation: Option<String> = None;
        if let Some(call) = &call {
            let held_for = started.elapsed();
            let deadline = state.config.max_wait.saturating_sub(held_for);
            let request = PaceRequest {
                provider: call.upstream.provider.clone(),
                model: call.model.clone(),
                estimated_input_tokens: call.estimate.input_tokens,
                max_output_tokens: call.estimate.max_output_tokens,
                owner: state.owner.clone(),
                lease: state.config.lease,
                bucket: None,
            };
            match pacing::acquire(&state.budget, request, deadline).await {
                Ok(admitted) => {
                    queued += admitted.waited;
                    reservation = Some(admitted.reservation.id);
                }
                Err(PacingError::Scheduler(SchedulerError::NoProfile { .. })) => {}
                Err(error) => {
                    state
                        .metrics
                        .request(&call.upstream.provider, &call.model, started.elapsed());
                    return Routed::Done(
                        pacing_refusal(state, call, &error),
                        format!(" {label} refused by pacing"),
                    );
                }
            }
        }
        let request = match upstream_request(&parts, &body, &url) {
            Ok(request) => request,
            Err(_) => {
                release(state, reservation).await;
                return Routed::Done(
                    refuse(
                        dialect,
                        Refusal::BadRequest,
                        "request headers cannot be forwarded",
                    ),
                    String::new(),
                );
            }
        };
        let sent =
            tokio::time::timeout(state.config.response_timeout, state.client.request(request))
                .await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let never_sent = error.is_connect();
                if never_sent {
                    release(state, reservation).await;
                } else if let (Some(id), Some(call)) = (reservation, &call) {
                    let _ =
                        pacing::record_failure(&state.budget, id, call.estimate.input_tokens).await;
                }
                let message = format!(
                    "upstream `{}` failed: {}",
                    upstream.name,
                    secrets::for_message(&error_chain(&error))
                );
                return Routed::Done(
                    refuse(dialect, Refusal::Upstream { timed_out: false }, &message),
                    format!(" {label}"),
                );
            }
            Err(_) => {
                if let (Some(id), Some(call)) = (reservation, &call) {
                    let _ =
                        pacing::record_failure(&state.budget, id, call.estimate.input_tokens).await;
                }
                let message = format!(
                    "upstream `{}` sent no answer within {:.0} s",
                    upstream.name,
                    state.config.response_timeout.as_secs_f64()
                );
                return Routed::Done(
                    refuse(dialect, Refusal::Upstream { timed_out: true }, &message),
                    format!(" {label}"),
                );
            }
        };
        let status = response.status().as_u16();
        if let Some(call) = &call {
            if attempt == 1 {
                state
                    .metrics
                    .request(&call.upstream.provider, &call.model, queued);
            }
            learn_from_headers(state, call, response.headers());
        }
        if matches!(status, 429 | 503 | 529) {
            let (head, incoming) = response.into_parts();
            let error_body = match tokio::time::timeout(
                state.config.body_timeout,
                Limited::new(incoming, MAX_ERROR_BODY_BYTES).collect(),
            )
            .await
            {
                Ok(Ok(collected)) => collected.to_bytes(),
                _ => Bytes::new(),
            };
            let provider_response = ProviderResponse {
                status: Some(status),
                headers: head
                    .headers
                    .iter()
                    .filter_map(|(name, value)| {
                        Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                    })
                    .collect(),
                body: String::from_utf8_lossy(&error_body).into_owned(),
            };
            let classification = classify(
                &provider_response,
                UNIX_EPOCH + Duration::from_millis(SystemClock.now()),
            );
            let provider = &upstream.provider;
            let model = call.as_ref().map_or("-", |call| call.model.as_str());
            if status == 429 {
                state.metrics.received_429(provider, model);
            }
            let mut delay = None;
            if let Some(id) = reservation {
                let limited = matches!(
                    classification.kind,
                    ErrorKind::RateLimit | ErrorKind::Overloaded
                );
                if limited {
                    delay = pacing::record_rate_limit(
                        &state.budget,
                        id,
                        classification.clone(),
                        attempt,
                    )
                    .await
                    .ok();
                } else {
                    let tokens = call.as_ref().map_or(0, |call| call.estimate.input_tokens);
                    let _ =
                        pacing::record_refusal(&state.budget, id, tokens, classification.clone())
                            .await;
                }
            }
            let wait = delay
                .or(classification.retry_after_seconds)
                .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok());
            let in_time = wait.is_some_and(|wait| wait <= state.config.retry_max_wait);
            if classification.retryable
                && attempt <= state.config.retry_attempts
                && in_time
                && call.is_some()
            {
                if let Some(wait) = wait {
                    state.log(&format!(
                        "proxy: {method} {target} {status} {label} attempt {attempt}: {}; retrying in {:.3}s",
                        classification.kind,
                        wait.as_secs_f64()
                    ));
                    tokio::time::sleep(wait).await;
                }
                attempt += 1;
                continue;
            }
            let mut answer = Response::new(full(error_body));
            *answer.status_mut() = head.status;
            client_headers(&head.headers, answer.headers_mut());
            answer.headers_mut().remove("content-length");
            return Routed::Done(
                answer,
                format!(" {label} passed through ({})", classification.kind),
            );
        }
        let streaming = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let (head, incoming) = response.into_parts();
        let finish = Finish {
            state: Arc::clone(state),
            reservation,
            provider: upstream.provider.clone(),
            model: call.as_ref().map(|call| call.model.clone()),
            estimate: call.as_ref().map(|call| call.estimate),
            success: (200..300).contains(&status),
            line: format!("proxy: {method} {target} {status}"),
            label: label.clone(),
            started,
            queued,
            attempt,
        };
        let body = RecordingBody {
            inner: incoming,
            idle: Box::pin(tokio::time::sleep(state.config.idle_timeout)),
            idle_timeout: state.config.idle_timeout,
            tracker: UsageTracker::new(streaming),
            finish: Some(finish),
        };
        let mut answer = Response::new(body.boxed_unsync());
        *answer.status_mut() = head.status;
        client_headers(&head.headers, answer.headers_mut());
        return Routed::Streaming(answer);
    }
}

/// Folds the limits an answer's headers state (`x-ratelimit-*`,
/// `anthropic-ratelimit-*`, `RateLimit`) into the shared state, without
/// holding up the answer.
fn learn_from_headers(state: &Arc<State>, call: &Call, headers: &HeaderMap) {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().contains("ratelimit"))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    let now_ms = SystemClock.now();
    let Some(advice) =
        crate::rate_limits::learn::advice_from_headers(&pairs, &call.upstream.provider, now_ms)
    else {
        return;
    };
    let logger = Arc::clone(state);
    pacing::advise_detached(
        &state.budget,
        &state.pending,
        call.upstream.provider.clone(),
        call.model.clone(),
        advice,
        move |error| logger.log(&format!("proxy: could not fold in stated limits: {error}")),
    );
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // The chain is finite; cap it anyway at 8 links.
    for _ in 0..8 {
        let Some(next) = source else { break };
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

async fn release(state: &Arc<State>, reservation: Option<String>) {
    if let Some(id) = reservation {
        let budget = Arc::clone(&state.budget);
        let _ = tokio::task::spawn_blocking(move || budget.release(&id)).await;
    }
}

/// What to record and log when an answer's body ends, fails or is dropped.
struct Finish {
    state: Arc<State>,
    reservation: Option<String>,
    provider: String,
    model: Option<String>,
    estimate: Option<Estimate>,
    success: bool,
    line: String,
    label: String,
    started: Instant,
    queued: Duration,
    attempt: u32,
}

impl Finish {
    /// `ended`: the whole body went through; false when the client left or
    /// the upstream failed midway.
    fn run(self, tracker: &mut UsageTracker, ended: bool) {
        let usage = tracker.finish();
        let estimate = self.estimate.unwrap_or(Estimate {
            input_tokens: 0,
            max_output_tokens: 0,
        });
        let (outcome, how) = match (usage, self.success && ended) {
            (Some(usage), true) => (
                Outcome::Success(usage.input_tokens, usage.output_tokens),
                "usage",
            ),
            (None, true) => (
                Outcome::Success(estimate.input_tokens, estimate.max_output_tokens),
                "estimate",
            ),
            (Some(usage), false) => (
                Outcome::Failure(
                    (usage.input_tokens + usage.output_tokens).max(estimate.input_tokens),
                ),
                "partial",
            ),
            (None, false) => (Outcome::Failure(estimate.input_tokens), "failed"),
        };
        let (input, output) = match outcome {
            Outcome::Success(input, output) => (input, output),
            Outcome::Failure(tokens) => (tokens, 0),
        };
        if let Some(model) = &self.model {
            self.state
                .metrics
                .tokens(&self.provider, model, input, output);
        }
        let paced = if self.reservation.is_some() {
            ""
        } else if self.model.is_some() {
            " unpaced (no profile)"
        } else {
            " unpaced"
        };
        let cut = if ended { "" } else { " cut short" };
        self.state.log(&format!(
            "{} {} queued={:.3}s total={:.3}s tokens={input}+{output} ({how}) attempts={}{paced}{cut}",
            self.line,
            self.label,
            self.queued.as_secs_f64(),
            self.started.elapsed().as_secs_f64(),
            self.attempt,
        ));
        if let Some(id) = self.reservation {
            let state = Arc::clone(&self.state);
            pacing::record_detached(
                &self.state.budget,
                &self.state.pending,
                id,
                outcome,
                move |error| {
                    state.log(&format!("proxy: could not record a call: {error}"));
                },
            );
        }
    }
}

/// The upstream's body, passed through frame by frame while its usage is
/// read; records the call when it ends, fails or is dropped (the client left).
struct RecordingBody {
    inner: Incoming,
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
    tracker: UsageTracker,
    finish: Option<Finish>,
}

impl RecordingBody {
    fn end(&mut self, ended: bool) {
        if let Some(finish) = self.finish.take() {
            finish.run(&mut self.tracker, ended);
        }
    }
}

impl Body for RecordingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.tracker.feed(data);
                }
                let next = tokio::time::Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.end(false);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.end(true);
                Poll::Ready(None)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.end(false);
                    Poll::Ready(Some(Err(
                        "upstream sent nothing within the idle timeout".into()
                    )))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RecordingBody {
    fn drop(&mut self) {
        let ended = self.inner.is_end_stream();
        self.end(ended);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gemini_model_from_the_path() {
        assert_eq!(
            gemini_model("/v1beta/models/gemini-2.0-flash:streamGenerateContent").as_deref(),
            Some("gemini-2.0-flash")
        );
        assert_eq!(
            gemini_model("/v1/models/gemini-1.5-pro/x").as_deref(),
            Some("gemini-1.5-pro")
        );
        assert_eq!(gemini_model("/v1beta/models/"), None);
        assert_eq!(gemini_model("/v1beta/files"), None);
    }

    #[test]
    fn compares_secrets_whole() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_secret(b"", b"0123456789abcdef"));
    }

    #[test]
    fn the_log_never_shows_a_key_in_the_query() {
        let uri: hyper::Uri = "/gemini/v1beta/models/m:generateContent?key=AIzaSyA-0123456789abcdefghijklmnopqrstu&alt=sse"
            .parse()
            .unwrap();
        let logged = loggable_target(&uri);
        assert!(!logged.contains("AIzaSy"), "{logged}");
        assert!(logged.starts_with("/gemini/v1beta/models/m:generateContent?key="));
    }
}
