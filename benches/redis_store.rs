//! Acquire + record pairs against a real local `redis-server`: one hot
//! model with at least 10,000 events in its window, 1, 16 and 64 clients at
//! once, each with its own connection (as separate processes would have).
//! Prints pairs per second, operations per second (two per pair), the
//! p50 / p99 latency of a pair and of each operation (acquire, record), and
//! the server's own figures for the level from `INFO commandstats` (reset
//! before each level): server microseconds per script and server commands
//! per script.
//!
//! Run: `scripts/bench/redis.sh` (starts a throwaway server and sets
//! `SPECSMITH_BENCH_REDIS`), or `cargo bench --bench redis_store` with
//! `SPECSMITH_BENCH_REDIS=redis://127.0.0.1:PORT/0` pointing at a server
//! you started (its keys under `bench:` are deleted first and last).
//! `SPECSMITH_BENCH_SECONDS` sets the time per level (default 5),
//! `SPECSMITH_BENCH_CLIENTS` the levels (default `1,16,64`).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use specsmith::rate_limits::backend::Backend;
use specsmith::rate_limits::clock::SystemClock;
use specsmith::rate_limits::owner::Owner;
use specsmith::rate_limits::pacing::{PaceRequest, SharedPacer};
use specsmith::rate_limits::redis_store::RedisStore;
use specsmith::rate_limits::scheduler::DEFAULT_LEASE;
use specsmith::rate_limits::store_url::{StoreUrl, Timeouts};
use specsmith::rate_limits::{Catalog, Layer, Profile};

const PREFIX: &str = "bench:";
const WINDOW_EVENTS: usize = 10_000;
const CLIENTS: [usize; 3] = [1, 16, 64];

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    // Limits far above what the bench admits: every acquire is granted at once.
    catalog.add_layer(
        Layer::Project,
        vec![Profile::new(
            "bench",
            "hot",
            1_000_000_000,
            1_000_000_000_000,
            1.0,
            100_000,
        )
        .unwrap()],
    );
    catalog
}

fn request() -> PaceRequest {
    PaceRequest {
        provider: "bench".into(),
        model: "hot".into(),
        estimated_input_tokens: 500,
        max_output_tokens: 500,
        owner: Owner::current(),
        lease: DEFAULT_LEASE,
        bucket: None,
    }
}

fn pacer(url: &StoreUrl) -> SharedPacer<RedisStore> {
    let store = RedisStore::open(url, Timeouts::default())
        .expect("open the bench store")
        .with_prefix(PREFIX)
        .expect("prefix");
    SharedPacer::new(catalog(), store, SystemClock)
}

/// One acquire + record pair; the time of each operation.
fn pair(pacer: &SharedPacer<RedisStore>, request: &PaceRequest) -> (Duration, Duration) {
    let began = Instant::now();
    let admitted = pacer
        .acquire(request, Some(Duration::from_secs(5)), &mut |_| {})
        .expect("acquire");
    let acquired = Instant::now();
    pacer
        .record_success(&admitted.reservation.id, 400, 300)
        .expect("record");
    (acquired - began, acquired.elapsed())
}

/// The server's figures since the last `CONFIG RESETSTAT`: scripts run,
/// microseconds of server time per script, other commands per script (those
/// the scripts call plus the pipelined index-key commands).
fn server_figures(connection: &mut redis::Connection) -> (u64, f64, f64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(connection)
        .expect("INFO commandstats");
    let (mut scripts, mut script_usec, mut others) = (0u64, 0.0f64, 0u64);
    for line in info.lines() {
        let Some(rest) = line.strip_prefix("cmdstat_") else {
            continue;
        };
        let Some((name, fields)) = rest.split_once(':') else {
            continue;
        };
        let field = |key: &str| {
            fields
                .split(',')
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
                .and_then(|value| value.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        match name {
            "evalsha" | "eval" => {
                scripts += field("calls") as u64;
                script_usec += field("usec");
            }
            "info" | "config" | "script" => {}
            _ => others += field("calls") as u64,
        }
    }
    let per_script = |value: f64| value / scripts.max(1) as f64;
    (scripts, per_script(script_usec), per_script(others as f64))
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // and must not need a server.
    if !std::env::args().any(|argument| argument == "--bench") {
        return;
    }
    let Ok(text) = std::env::var("SPECSMITH_BENCH_REDIS") else {
        eprintln!(
            "redis_store bench skipped: set SPECSMITH_BENCH_REDIS or run scripts/bench/redis.sh"
        );
        return;
    };
    let url = StoreUrl::parse(&text).expect("SPECSMITH_BENCH_REDIS");
    let seconds: u64 = std::env::var("SPECSMITH_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5);
    let setup = pacer(&url);
    setup.reset().expect("reset");
    let request = request();
    let mut admin = redis::Client::open(text.as_str())
        .and_then(|client| client.get_connection())
        .expect("an admin connection for INFO");
    let started = Instant::now();
    for _ in 0..WINDOW_EVENTS {
        pair(&setup, &request);
    }
    println!(
        "window filled with {WINDOW_EVENTS} events in {:.2} s (one client)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "clients  pairs/s  ops/s   p50 pair  p99 pair  p50 acq   p99 acq   p50 rec   p99 rec   \
         µs/script  cmds/script  window after"
    );
    // `SPECSMITH_BENCH_CLIENTS=1,16` runs only those levels.
    let levels: Vec<usize> = std::env::var("SPECSMITH_BENCH_CLIENTS")
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|one| one.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| CLIENTS.to_vec());
    for clients in levels {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query::<()>(&mut admin)
            .expect("CONFIG RESETSTAT");
        let barrier = Arc::new(Barrier::new(clients));
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let url = url.clone();
                let barrier = Arc::clone(&barrier);
                let request = request.clone();
                std::thread::spawn(move || {
                    let pacer = pacer(&url);
                    let mut latencies = Vec::with_capacity(100_000);
                    barrier.wait();
                    let end = Instant::now() + Duration::from_secs(seconds);
                    while Instant::now() < end {
                        latencies.push(pair(&pacer, &request));
                    }
                    latencies
                })
            })
            .collect();
        let operations: Vec<(Duration, Duration)> = workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("worker"))
            .collect();
        let (_, script_usec, commands) = server_figures(&mut admin);
        let sorted = |pick: fn(&(Duration, Duration)) -> Duration| {
            let mut list: Vec<Duration> = operations.iter().map(pick).collect();
            list.sort();
            list
        };
        let latencies = sorted(|(acquire, record)| *acquire + *record);
        let acquires = sorted(|(acquire, _)| *acquire);
        let records = sorted(|(_, record)| *record);
        let pairs = latencies.len() as f64 / seconds as f64;
        let window = setup
            .status("bench", "hot")
            .expect("status")
            .snapshot
            .rolling_request_count;
        println!(
            "{clients:>7}  {pairs:>7.0}  {:>6.0}  {:>6.2} ms  {:>6.2} ms  {:>5.2} ms  {:>5.2} ms  \
             {:>5.2} ms  {:>5.2} ms  {script_usec:>9.1}  {commands:>11.1}  {window}",
            pairs * 2.0,
            milliseconds(percentile(&latencies, 0.50)),
            milliseconds(percentile(&latencies, 0.99)),
            milliseconds(percentile(&acquires, 0.50)),
            milliseconds(percentile(&acquires, 0.99)),
            milliseconds(percentile(&records, 0.50)),
            milliseconds(percentile(&records, 0.99)),
        );
    }
    setup.reset().expect("reset");
    let _ = setup.backend().describe();
}
