//! The Redis store when the server fails: killed and restarted, scripts
//! flushed, data flushed, paused past the command timeout, a wrong password,
//! TLS to a plain server, nothing listening. Each answer is
//! `PacingError::Unavailable` naming the store with its password masked,
//! within a bounded time, or (once the server is back) a working store.
//! Also: time from the server's clock, and the clamp of a clock stepped back.

use std::time::{Duration, Instant};

use specsmith::rate_limits::backend::{Attempt, AttemptSpec, Backend, Context};
use specsmith::rate_limits::clock::SystemClock;
use specsmith::rate_limits::owner::Owner;
use specsmith::rate_limits::pacing::{PaceRequest, PacingError, SharedPacer};
use specsmith::rate_limits::redis_store::RedisStore;
use specsmith::rate_limits::scheduler::{
    AcquireRequest, SchedulerError, WaitReason, DEFAULT_LEASE,
};
use specsmith::rate_limits::store_url::{StoreUrl, Timeouts};
use specsmith::rate_limits::{Catalog, Layer, Profile};

use crate::redis_server::{closed_port, require_redis, RedisOptions, RedisServer};

fn short() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(500),
        command: Duration::from_millis(300),
    }
}

fn catalog(rpm: u64) -> Catalog {
    let mut catalog = Catalog::default();
    catalog.add_layer(
        Layer::Project,
        vec![Profile::new("acme", "*", rpm, 100_000, 1.0, 10).unwrap()],
    );
    catalog
}

fn request() -> PaceRequest {
    PaceRequest {
        provider: "acme".into(),
        model: "m".into(),
        estimated_input_tokens: 10,
        max_output_tokens: 10,
        owner: Owner::current(),
        lease: DEFAULT_LEASE,
        bucket: None,
    }
}

fn open(text: &str, timeouts: Timeouts) -> Result<RedisStore, PacingError> {
    RedisStore::open(&StoreUrl::parse(text).unwrap(), timeouts)
}

fn pacer(server: &RedisServer, rpm: u64) -> SharedPacer<RedisStore> {
    SharedPacer::new(
        catalog(rpm),
        open(&server.url(), short()).unwrap(),
        SystemClock,
    )
}

fn unavailable(error: PacingError) -> (String, String) {
    match error {
        PacingError::Unavailable { store, reason } => (store, reason),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn a_killed_server_is_unavailable_and_a_restarted_one_is_an_empty_budget() {
    let test = "a_killed_server_is_unavailable_and_a_restarted_one_is_an_empty_budget";
    let Some(()) = require_redis(test) else {
        return;
    };
    let mut server = RedisServer::start();
    let pacer = pacer(&server, 1);
    let held = pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap();
    server.kill();
    let started = Instant::now();
    let error = pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (store, reason) = unavailable(error);
    assert_eq!(store, format!("redis://127.0.0.1:{}/0", server.port()));
    assert!(reason.contains("connection refused"), "{reason}");
    server.restart();
    // The scripts are gone with the server (NOSCRIPT, loaded again), and so
    // is the state: the budget starts over, the old reservation is unknown.
    pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap();
    let error = pacer
        .record_success(&held.reservation.id, 1, 1)
        .unwrap_err();
    assert!(
        matches!(
            error,
            PacingError::Scheduler(SchedulerError::UnknownReservation { .. })
        ),
        "{error}"
    );
    assert_eq!(
        pacer
            .status("acme", "m")
            .unwrap()
            .snapshot
            .rolling_request_count,
        1
    );
}

#[test]
fn a_script_flush_is_recovered_and_keeps_the_state() {
    let Some(()) = require_redis("a_script_flush_is_recovered_and_keeps_the_state") else {
        return;
    };
    let server = RedisServer::start();
    let pacer = pacer(&server, 100);
    let first = pacer.acquire(&request(), None, &mut |_| {}).unwrap();
    assert_eq!(server.command(&["SCRIPT", "FLUSH"]).unwrap(), "+OK");
    pacer.acquire(&request(), None, &mut |_| {}).unwrap();
    assert_eq!(server.command(&["SCRIPT", "FLUSH"]).unwrap(), "+OK");
    pacer.record_success(&first.reservation.id, 3, 4).unwrap();
    let status = pacer.status("acme", "m").unwrap();
    assert_eq!(status.snapshot.rolling_request_count, 2);
    assert_eq!(status.snapshot.rolling_token_count, 27);
}

#[test]
fn flushall_is_a_budget_reset() {
    let Some(()) = require_redis("flushall_is_a_budget_reset") else {
        return;
    };
    let server = RedisServer::start();
    let pacer = pacer(&server, 1);
    let held = pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap();
    assert!(pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .is_err());
    assert_eq!(server.command(&["FLUSHALL"]).unwrap(), "+OK");
    assert!(pacer.status_all(&[]).unwrap().is_empty());
    pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap();
    let error = pacer.release(&held.reservation.id).unwrap_err();
    assert!(
        error.to_string().starts_with("unknown reservation `rsv-"),
        "{error}"
    );
}

#[test]
fn a_paused_server_is_unavailable_within_the_command_timeout() {
    let Some(()) = require_redis("a_paused_server_is_unavailable_within_the_command_timeout")
    else {
        return;
    };
    let server = RedisServer::start();
    let pacer = pacer(&server, 100);
    pacer.acquire(&request(), None, &mut |_| {}).unwrap();
    assert_eq!(
        server.command(&["CLIENT", "PAUSE", "2000", "ALL"]).unwrap(),
        "+OK"
    );
    let started = Instant::now();
    let error = pacer.acquire(&request(), None, &mut |_| {}).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= short().command && elapsed < Duration::from_secs(1),
        "{elapsed:?}"
    );
    let (_, reason) = unavailable(error);
    assert_eq!(reason, "no answer within 300 ms while a command");
    // Once the pause ends the store answers again, on a new connection.
    std::thread::sleep(Duration::from_millis(2_000).saturating_sub(started.elapsed()));
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        match pacer.status("acme", "m") {
            Ok(status) => break status,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => panic!("still unavailable: {error}"),
        }
    };
    assert!(status.snapshot.rolling_request_count >= 1);
}

#[test]
fn a_wrong_password_names_the_store_and_never_the_password() {
    let Some(()) = require_redis("a_wrong_password_names_the_store_and_never_the_password") else {
        return;
    };
    let server = RedisServer::start_with(RedisOptions {
        password: Some("right-pass-7".into()),
        ..RedisOptions::default()
    });
    let started = Instant::now();
    let error = open(
        &format!("redis://:wrong-pass-9@127.0.0.1:{}/0", server.port()),
        short(),
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "the pacing store redis://:***@127.0.0.1:{}/0 is unavailable: the server refused the user name or password",
            server.port()
        )
    );
    assert!(!format!("{error:?}").contains("wrong-pass-9"));
    open(&server.url(), short()).expect("the right password");
}

#[test]
fn tls_to_a_plain_server_and_a_closed_port_fail_cleanly_and_fast() {
    let Some(()) = require_redis("tls_to_a_plain_server_and_a_closed_port_fail_cleanly_and_fast")
    else {
        return;
    };
    let server = RedisServer::start();
    let started = Instant::now();
    let error = open(
        &format!("rediss://:tls-pw@127.0.0.1:{}/0", server.port()),
        short(),
    )
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (store, reason) = unavailable(error);
    assert_eq!(
        store,
        format!("rediss://:***@127.0.0.1:{}/0", server.port())
    );
    assert!(reason.starts_with("TLS failed"), "{reason}");
    let port = closed_port();
    let started = Instant::now();
    let error = open(&format!("redis://127.0.0.1:{port}/0"), short()).unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(
        error.to_string(),
        format!("the pacing store redis://127.0.0.1:{port}/0 is unavailable: connection refused (is redis-server running on that port?)")
    );
}

#[test]
fn time_comes_from_the_server_and_never_steps_back() {
    let Some(()) = require_redis("time_comes_from_the_server_and_never_steps_back") else {
        return;
    };
    let server = RedisServer::start();
    // The server's clock: a second request inside the minute waits out the
    // first one's 61 s, whatever the caller's clock says.
    let pacer = pacer(&server, 1);
    pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap();
    match pacer.acquire(&request(), Some(Duration::ZERO), &mut |_| {}) {
        Err(PacingError::Scheduler(SchedulerError::DeadlineExceeded {
            reason, needed, ..
        })) => {
            assert_eq!(reason, WaitReason::Requests);
            assert!(
                needed > Duration::from_secs(60) && needed <= Duration::from_secs(61),
                "{needed:?}"
            );
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    // A clock stepped back (client time, as tests set it) is clamped to the
    // latest time seen: the wait is measured from there, not stretched.
    let store = open(&server.url(), short())
        .unwrap()
        .with_prefix("clamp:")
        .unwrap()
        .with_client_time();
    let catalog = catalog(1);
    let profile = catalog.resolve("acme", "m").unwrap().profile.clone();
    let times = [100_000_000u64, 40_000_000];
    let mut attempts = Vec::new();
    for (index, time) in times.into_iter().enumerate() {
        let now = move || time;
        let never = |_: &Owner| false;
        let cx = Context {
            catalog: &catalog,
            now: &now,
            is_dead: &never,
            window_margin_millis: 1_000,
        };
        let acquire = AcquireRequest {
            estimated_input_tokens: 1,
            max_output_tokens: 1,
            owner: Owner::current(),
            lease: DEFAULT_LEASE,
            bucket: None,
        };
        let id = format!("rsv-{index:016x}");
        let spec = AttemptSpec {
            key: "acme::m",
            provider: "acme",
            model: "m",
            profile: &profile,
            request: &acquire,
            reservation_id: &id,
            ticket: None,
            waiter: &acquire.owner,
            remaining: Some(Duration::ZERO),
            poll_interval: Duration::from_millis(100),
            ticket_grace: Duration::from_secs(2),
        };
        attempts.push(store.attempt(&cx, &spec).unwrap());
    }
    assert!(
        matches!(attempts[0], Attempt::Granted(_)),
        "{:?}",
        attempts[0]
    );
    assert_eq!(
        attempts[1],
        Attempt::GiveUp {
            reason: WaitReason::Requests,
            needed: Duration::from_secs(61)
        },
        "a clock 60,000 s back must not stretch the wait to 60,061 s"
    );
}

#[test]
fn every_key_of_the_store_has_a_ttl_and_finished_work_leaves_only_the_window() {
    let Some(()) =
        require_redis("every_key_of_the_store_has_a_ttl_and_finished_work_leaves_only_the_window")
    else {
        return;
    };
    let server = RedisServer::start();
    let pacer = pacer(&server, 100);
    let without_ttl = || {
        server
            .command(&[
                "EVAL",
                "local n = 0 for _, key in ipairs(redis.call('KEYS', 'specsmith:*')) do \
                 if redis.call('PTTL', key) < 0 then n = n + 1 end end return n",
                "0",
            ])
            .unwrap()
    };
    let keys = || {
        server
            .command(&["EVAL", "return #redis.call('KEYS', 'specsmith:*')", "0"])
            .unwrap()
    };
    let first = pacer.acquire(&request(), None, &mut |_| {}).unwrap();
    assert_eq!(without_ttl(), ":0");
    pacer.record_success(&first.reservation.id, 1, 1).unwrap();
    // The reservation set emptied and came back: it gets a TTL again.
    let second = pacer.acquire(&request(), None, &mut |_| {}).unwrap();
    assert_eq!(without_ttl(), ":0");
    // Model hash, events, reservations, lease ends, and the second's index key.
    assert_eq!(keys(), ":5");
    let ttl: u64 = server
        .command(&["PTTL", "specsmith:{acme::m}:r"])
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    // The window (61 s) + the lease (600 s) + the slack (60 s), give or take the run.
    assert!((700_000..=721_000).contains(&ttl), "{ttl}");
    pacer.release(&second.reservation.id).unwrap();
    pacer.release(&first.reservation.id).unwrap_err();
    // Nothing in flight: the reservations, lease ends and index keys are
    // gone; the window still counts the recorded call.
    assert_eq!(keys(), ":2");
    assert_eq!(without_ttl(), ":0");
    assert_eq!(
        server
            .command(&["EXISTS", "specsmith:{acme::m}:m", "specsmith:{acme::m}:e"])
            .unwrap(),
        ":2"
    );
}

fn pttl(server: &RedisServer, key: &str) -> u64 {
    server
        .command(&["PTTL", key])
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap()
}

#[test]
fn a_renewed_lease_and_the_writes_after_it_keep_every_key_past_its_end() {
    let test = "a_renewed_lease_and_the_writes_after_it_keep_every_key_past_its_end";
    let Some(()) = require_redis(test) else {
        return;
    };
    let server = RedisServer::start();
    let pacer = pacer(&server, 100);
    let held = pacer.acquire(&request(), None, &mut |_| {}).unwrap();
    // The window (61 s) + the default lease (600 s) + the slack (60 s).
    assert!(pttl(&server, "specsmith:{acme::m}:m") > 700_000);
    pacer
        .renew(&held.reservation.id, Duration::from_secs(3_600), None)
        .unwrap();
    // Later writes that add no lease of their own must not shorten the TTL
    // the renewal set: a record of another reservation, a status.
    let other = pacer.acquire(&request(), None, &mut |_| {}).unwrap();
    pacer.record_success(&other.reservation.id, 1, 1).unwrap();
    pacer.status("acme", "m").unwrap();
    for part in ["m", "e", "r", "l"] {
        let ttl = pttl(&server, &format!("specsmith:{{acme::m}}:{part}"));
        // The renewed lease (3,600 s) + the window + the slack, give or take the run.
        assert!((3_700_000..=3_721_000).contains(&ttl), "{part}: {ttl}");
    }
}

#[test]
fn a_model_hash_left_by_an_earlier_build_is_dropped_as_a_budget_reset() {
    let test = "a_model_hash_left_by_an_earlier_build_is_dropped_as_a_budget_reset";
    let Some(()) = require_redis(test) else {
        return;
    };
    let server = RedisServer::start();
    let pacer = pacer(&server, 1);
    pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap();
    // The meta as earlier builds wrote it: a hash of fields.
    server.command(&["DEL", "specsmith:{acme::m}:m"]).unwrap();
    server
        .command(&[
            "HSET",
            "specsmith:{acme::m}:m",
            "provider",
            "acme",
            "model",
            "m",
            "reqs",
            "1",
        ])
        .unwrap();
    let admitted = pacer
        .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
        .unwrap();
    let status = pacer.status("acme", "m").unwrap();
    assert_eq!(status.snapshot.rolling_request_count, 1);
    assert_eq!(status.reservations, vec![admitted.reservation]);
    assert_eq!(
        server.command(&["TYPE", "specsmith:{acme::m}:m"]).unwrap(),
        "+string"
    );
}

#[test]
fn a_store_shared_by_threads_opens_at_most_its_connections_and_counts_every_call() {
    let test = "a_store_shared_by_threads_opens_at_most_its_connections_and_counts_every_call";
    let Some(()) = require_redis(test) else {
        return;
    };
    let server = RedisServer::start();
    let store = open(&server.url(), short()).unwrap().with_connections(3);
    let pacer = std::sync::Arc::new(SharedPacer::new(catalog(10_000), store, SystemClock));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let pacer = std::sync::Arc::clone(&pacer);
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..25 {
                    let admitted = pacer.acquire(&request(), None, &mut |_| {}).unwrap();
                    pacer
                        .record_success(&admitted.reservation.id, 1, 1)
                        .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let status = pacer.status("acme", "m").unwrap();
    assert_eq!(status.snapshot.rolling_request_count, 200);
    assert_eq!(status.snapshot.in_flight, 0);
    // The store's connections plus the one this command opens.
    let clients = server.command(&["INFO", "clients"]).unwrap();
    let connected: usize = clients
        .lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap();
    assert!((2..=4).contains(&connected), "{clients}");
}

/// Forty clients, each with its own connection (as forty processes on
/// several machines would have), race `acquire` with no wait.
fn race(server: &RedisServer, rpm: u64, cap: u32, hold: Duration) -> (usize, usize) {
    let url = StoreUrl::parse(&server.url()).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(40));
    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..40)
        .map(|_| {
            let url = url.clone();
            let barrier = std::sync::Arc::clone(&barrier);
            let in_flight = std::sync::Arc::clone(&in_flight);
            let most = std::sync::Arc::clone(&most);
            std::thread::spawn(move || {
                let mut catalog = Catalog::default();
                catalog.add_layer(
                    Layer::Project,
                    vec![Profile::new("acme", "*", rpm, 1_000_000, 1.0, cap).unwrap()],
                );
                let pacer = SharedPacer::new(
                    catalog,
                    RedisStore::open(&url, short()).unwrap(),
                    SystemClock,
                );
                barrier.wait();
                let Ok(admitted) = pacer.acquire(&request(), Some(Duration::ZERO), &mut |_| {})
                else {
                    return false;
                };
                let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(hold);
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                pacer
                    .record_success(&admitted.reservation.id, 5, 5)
                    .unwrap();
                true
            })
        })
        .collect();
    let admitted = workers
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .filter(|admitted| *admitted)
        .count();
    (admitted, most.load(std::sync::atomic::Ordering::SeqCst))
}

#[test]
fn forty_racing_clients_get_exactly_the_rpm_and_never_more_than_the_cap() {
    let test = "forty_racing_clients_get_exactly_the_rpm_and_never_more_than_the_cap";
    let Some(()) = require_redis(test) else {
        return;
    };
    let server = RedisServer::start();
    let (admitted, _) = race(&server, 15, 100, Duration::ZERO);
    assert_eq!(admitted, 15, "an effective RPM of 15 admits exactly 15");
    let server = RedisServer::start();
    let (admitted, most) = race(&server, 1_000, 3, Duration::from_millis(300));
    assert!(most <= 3, "{most} held at once with a cap of 3");
    assert!(admitted >= 3, "only {admitted} admitted");
}
