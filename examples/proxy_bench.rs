//! Measures the latency `credits limits proxy` adds, against a local fake
//! upstream (loopback only): closed-loop clients, each on its own keep-alive
//! connection, send OpenAI-style chat requests for a fixed time, three ways:
//!
//! - `direct`: straight to the fake upstream (the floor);
//! - `pacing off`: through the proxy on a route with no profile, so nothing
//!   is paced (the cost of the HTTP hop alone);
//! - `pacing on, memory` / `pacing on, file`: through the proxy on a paced
//!   route (a profile with limits far above the load, so nothing waits: the
//!   cost of pacing), with `--store memory` and with the shared state file;
//! - `pacing on, redis`: the same with `--store` set to the Redis URL in
//!   `SPECSMITH_BENCH_REDIS`, when it is set (`scripts/bench/proxy.sh` starts
//!   a throwaway server and sets it when `redis-server` is installed).
//!
//! Then the resident memory the proxy adds per idle client connection and
//! per streaming connection (500 slow streams held at once), unless
//! `SPECSMITH_BENCH_NO_MEMORY=1`.
//!
//! Usage: `cargo run --release --example proxy_bench -- BIN [SECONDS] [LEVELS]`
//! where BIN is a built `specsmith-rs` and LEVELS is a comma-separated list of
//! `N` (N closed-loop clients, each sending as soon as its answer is in) or
//! `N@RATE` (N clients sending RATE requests/s in all, on a fixed schedule);
//! default `1,64,256,64@1000`. Run by `scripts/bench/proxy.sh`.

use std::convert::Infallible;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}"#;
const REQUEST: &str =
    r#"{"model":"MODEL","max_tokens":16,"messages":[{"role":"user","content":"Say ok."}]}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: proxy_bench BIN [SECONDS] [CONCURRENCY,…]");
    let seconds: f64 = args
        .next()
        .map_or(5.0, |text| text.parse().expect("SECONDS is a number"));
    let levels = Level::parse_list(&args.next().unwrap_or_else(|| "1,64,256,64@1000".to_owned()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(binary, Duration::from_secs_f64(seconds), levels));
}

/// A load: `clients` connections, closed-loop, or sending `rate` requests/s in all.
#[derive(Debug, Clone, Copy)]
struct Level {
    clients: usize,
    rate: Option<f64>,
}

impl Level {
    /// `N` (closed loop) or `N@RATE`, comma-separated.
    fn parse_list(text: &str) -> Vec<Level> {
        text.split(',')
            .map(|level| {
                let (clients, rate) = match level.split_once('@') {
                    Some((clients, rate)) => (clients, Some(rate.parse().expect("a rate"))),
                    None => (level, None),
                };
                Level {
                    clients: clients.parse().expect("a number of clients"),
                    rate,
                }
            })
            .collect()
    }

    fn name(&self) -> String {
        match self.rate {
            Some(rate) => format!("{}@{rate}", self.clients),
            None => self.clients.to_string(),
        }
    }
}

async fn bench(binary: String, duration: Duration, levels: Vec<Level>) {
    let upstream = start_upstream().await;
    let project = tempfile::tempdir().unwrap();
    let command = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command
            .arg("--project-dir")
            .arg(project.path())
            .args(args)
            .env("HOME", project.path())
            .env("XDG_CONFIG_HOME", project.path().join("xdg"))
            .env("SPECSMITH_CONFIG_DIR", project.path().join("config"));
        command
    };
    let run = |args: &[&str]| {
        let status = command(args).stdout(Stdio::null()).status().unwrap();
        assert!(status.success(), "{args:?} failed");
    };
    run(&[
        "credits",
        "limits",
        "set",
        "--provider",
        "openai",
        "--model",
        "*",
        "--rpm",
        "100000000",
        "--tpm",
        "100000000000",
        "--target",
        "1",
        "--concurrency",
        "100000",
    ]);
    let openai = format!("openai=http://{upstream}");
    let bench = format!("bench=http://{upstream}");
    let start_proxy = |store: &str| {
        let mut proxy = command(&[
            "credits",
            "limits",
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--quiet",
            "--max-wait",
            "60",
            "--store",
            store,
            "--upstream",
            &openai,
            "--upstream",
            &bench,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(proxy.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address: SocketAddr = line
            .trim()
            .trim_start_matches("listening on http://")
            .parse()
            .expect("the proxy's address line");
        (proxy, address)
    };
    let (memory_proxy, memory) = start_proxy("memory");
    let (file_proxy, file) = start_proxy("file");
    let redis_url = std::env::var("SPECSMITH_BENCH_REDIS").ok();
    let mut redis_proxy = redis_url.as_deref().map(&start_proxy);

    println!(
        "{:>9} {:<18} {:>9} {:>9} {:>9} {:>9} | added p50 / p95 / p99 (ms)",
        "clients", "mode", "req/s", "p50 ms", "p95 ms", "p99 ms"
    );
    for &level in &levels {
        let (clients, rate) = (level.clients, level.rate);
        // Each mode first runs a tenth of the time, discarded, so connection
        // pools (the client's and the proxy's) are warm when measured.
        let measure = |address, path: &'static str, model: String| async move {
            load(address, path, &model, clients, duration / 10, rate).await;
            load(address, path, &model, clients, duration, rate).await
        };
        // A fresh model per level, so each starts with an empty window.
        let model = format!("gpt-4o-{}", level.name());
        let paced = "/openai/v1/chat/completions";
        let direct = measure(upstream, "/v1/chat/completions", "gpt-4o".to_owned()).await;
        let off = measure(memory, "/bench/v1/chat/completions", "gpt-4o".to_owned()).await;
        let on_memory = measure(memory, paced, model.clone()).await;
        run(&["credits", "limits", "reset-state"]);
        let on_file = measure(file, paced, model.clone()).await;
        let mut modes = vec![
            ("direct", direct),
            ("pacing off", off),
            ("pacing on, memory", on_memory),
            ("pacing on, file", on_file),
        ];
        if let Some((_, address)) = &redis_proxy {
            modes.push(("pacing on, redis", measure(*address, paced, model).await));
        }
        let direct = &modes[0].1;
        for (mode, figures) in &modes {
            let added = if *mode == "direct" {
                String::new()
            } else {
                format!(
                    "{:.3} / {:.3} / {:.3}",
                    figures.p50 - direct.p50,
                    figures.p95 - direct.p95,
                    figures.p99 - direct.p99
                )
            };
            let errors = if figures.errors > 0 {
                format!("  ({} errors)", figures.errors)
            } else {
                String::new()
            };
            println!(
                "{:>9} {mode:<18} {:>9.0} {:>9.3} {:>9.3} {:>9.3} | {added}{errors}",
                level.name(),
                figures.rate,
                figures.p50,
                figures.p95,
                figures.p99
            );
        }
    }
    let mut proxies = vec![memory_proxy, file_proxy];
    if std::env::var("SPECSMITH_BENCH_NO_MEMORY").as_deref() != Ok("1") {
        let idle = memory_per_idle_connection(memory, proxies[0].id()).await;
        println!("proxy memory (--store memory): {idle}");
        // A fresh proxy, so the idle connections' freed memory is not reused.
        let (stream_proxy, streaming) = start_proxy("memory");
        let held = memory_per_streaming_connection(streaming, stream_proxy.id()).await;
        println!("proxy memory (--store memory): {held}");
        proxies.push(stream_proxy);
    }
    proxies.extend(redis_proxy.take().map(|(proxy, _)| proxy));
    for proxy in &mut proxies {
        let _ = proxy.kill();
        let _ = proxy.wait();
    }
}

struct Figures {
    rate: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    errors: usize,
}

/// `clients` closed-loop clients for `duration`; latencies in milliseconds.
async fn load(
    address: SocketAddr,
    path: &str,
    model: &str,
    clients: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Figures {
    let body = Bytes::from(REQUEST.replace("MODEL", model));
    let path = Arc::new(path.to_owned());
    let started = Instant::now();
    let end = started + duration;
    let mut tasks = Vec::new();
    // With a `rate`, client k sends its i-th request at start + (i + k / clients)
    // × clients / rate, and latency counts from that planned moment, so a
    // slow answer that delays the next send is not hidden.
    let interval = rate.map(|rate| Duration::from_secs_f64(clients as f64 / rate));
    for client in 0..clients {
        let (body, path) = (body.clone(), Arc::clone(&path));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let stream = TcpStream::connect(address).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            // Ends at the deadline; each pass is one request with a 30 s bound.
            let offset = interval.map(|interval| interval.mul_f64(client as f64 / clients as f64));
            let mut sends: u32 = 0;
            while Instant::now() < end {
                let planned = match (interval, offset) {
                    (Some(interval), Some(offset)) => {
                        let at = started + offset + interval * sends;
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    _ => Instant::now(),
                };
                sends += 1;
                let request = Request::post(path.as_str())
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .header("authorization", "Bearer sk-bench-not-a-key")
                    .body(Full::new(body.clone()))
                    .unwrap();
                let sent = planned;
                let answer = tokio::time::timeout(Duration::from_secs(30), async {
                    let response = sender.send_request(request).await.ok()?;
                    let ok = response.status().is_success();
                    response.into_body().collect().await.ok()?;
                    Some(ok)
                })
                .await;
                match answer {
                    Ok(Some(true)) => latencies.push(sent.elapsed().as_secs_f64() * 1000.0),
                    _ => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut some, failed) = task.await.unwrap();
        latencies.append(&mut some);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |share: f64| {
        latencies
            .get(((latencies.len() as f64 * share) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Figures {
        rate: latencies.len() as f64 / elapsed,
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        errors,
    }
}

/// Resident memory of `pid`, in KiB (Linux).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Opens 1,000 idle client connections and reports the resident memory they add.
async fn memory_per_idle_connection(address: SocketAddr, pid: u32) -> String {
    const CONNECTIONS: usize = 1_000;
    let Some(before) = resident_kib(pid) else {
        return "not measured (no /proc)".into();
    };
    let mut open = Vec::new();
    for _ in 0..CONNECTIONS {
        if let Ok(stream) = TcpStream::connect(address).await {
            open.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = resident_kib(pid).unwrap_or(before);
    format!(
        "{before} KiB resident after the runs; {} idle connections add {} KiB ({:.1} KiB each)",
        open.len(),
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / open.len().max(1) as f64
    )
}

/// How many streams `memory_per_streaming_connection` holds open at once.
const STREAMS: usize = 500;
/// A slow stream's chunks: one every `CHUNK_EVERY`, then usage and `[DONE]`.
const CHUNKS: u32 = 150;
const CHUNK_EVERY: Duration = Duration::from_millis(200);
const CHUNK: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok \"}}]}\n\n";
const LAST: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":150,\"total_tokens\":162}}\n\ndata: [DONE]\n\n";

/// Holds `STREAMS` slow streaming chat requests open through the proxy at
/// once (each past its first chunk, so admitted, forwarded and streaming)
/// and reports the resident memory they add.
async fn memory_per_streaming_connection(address: SocketAddr, pid: u32) -> String {
    let open_stream = || async move {
        let stream = TcpStream::connect(address).await.ok()?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(connection);
        let body = REQUEST
            .replace("MODEL", "gpt-4o-streams")
            .replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
        let request = Request::post("/openai/v1/chat/completions")
            .header("host", "bench")
            .header("content-type", "application/json")
            .header("authorization", "Bearer sk-bench-not-a-key")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let mut response =
            tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
                .await
                .ok()?
                .ok()?;
        if !response.status().is_success() {
            return None;
        }
        tokio::time::timeout(Duration::from_secs(30), response.body_mut().frame())
            .await
            .ok()??
            .ok()?;
        Some((sender, response))
    };
    // Warm up: the proxy's pools, buffers and series exist before the measure.
    let warm: Vec<_> = futures_join((0..16).map(|_| open_stream())).await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Some(before) = resident_kib(pid) else {
        return "not measured (no /proc)".into();
    };
    let held: Vec<_> = futures_join((0..STREAMS).map(|_| open_stream()))
        .await
        .into_iter()
        .flatten()
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = resident_kib(pid).unwrap_or(before);
    let count = held.len();
    drop(held);
    format!(
        "{before} KiB resident before; {count} concurrent streaming connections add {} KiB ({:.1} KiB each)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / count.max(1) as f64
    )
}

/// Runs `futures` concurrently, each as its own task, and returns their results.
async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// A streamed answer: `CHUNKS` chunks `CHUNK_EVERY` apart, then the usage.
struct SlowStream {
    sent: u32,
    tick: tokio::time::Interval,
}

impl hyper::body::Body for SlowStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        use std::task::Poll;
        if self.sent > CHUNKS {
            return Poll::Ready(None);
        }
        if self.sent > 0 && self.tick.poll_tick(context).is_pending() {
            return Poll::Pending;
        }
        self.sent += 1;
        let text = if self.sent > CHUNKS { LAST } else { CHUNK };
        Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(
            text.as_bytes(),
        )))))
    }
}

/// A fake OpenAI upstream: every request gets the same small chat completion,
/// or, when it asks to stream, a slow event stream (`SlowStream`).
async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Runs until the benchmark exits; each pass accepts one connection.
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|body| body.to_bytes())
                            .unwrap_or_default();
                        let streams = body.windows(13).any(|window| window == b"\"stream\":true");
                        let answer = if streams {
                            let mut tick = tokio::time::interval(CHUNK_EVERY);
                            tick.reset();
                            Response::builder()
                                .header("content-type", "text/event-stream")
                                .body(http_body_util::Either::Left(SlowStream { sent: 0, tick }))
                        } else {
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(http_body_util::Either::Right(Full::new(
                                    Bytes::from_static(ANSWER.as_bytes()),
                                )))
                        };
                        Ok::<_, Infallible>(answer.unwrap())
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}
