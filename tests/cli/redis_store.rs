//! The store URL and connection layer against real local `redis-server`s
//! (tests/support/redis_server.rs): ping, credentials, refusals, timeouts, TLS
//! to a plain server, and the three-node cluster harness. Skipped with a
//! message when redis-server is missing, except under `CI=true`.

use std::time::{Duration, Instant};

use specsmith::rate_limits::store_url::{
    Phase, StoreConnectError, StoreConnection, StoreUrl, Timeouts,
};

use crate::redis_server::{closed_port, require_redis, RedisCluster, RedisOptions, RedisServer};

fn url(text: &str) -> StoreUrl {
    StoreUrl::parse(text).unwrap_or_else(|error| panic!("{error}"))
}

fn open(text: &str, timeouts: Timeouts) -> (Result<StoreConnection, StoreConnectError>, Duration) {
    let started = Instant::now();
    let result = StoreConnection::open(&url(text), timeouts);
    (result, started.elapsed())
}

fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(500),
        command: Duration::from_millis(300),
    }
}

#[test]
fn a_connection_opens_and_pings_a_fresh_server() {
    let Some(()) = require_redis("a_connection_opens_and_pings_a_fresh_server") else {
        return;
    };
    let server = RedisServer::start();
    assert_ne!(server.port(), 6379);
    let (connection, _) = open(&server.url(), Timeouts::default());
    let mut connection = connection.expect("open");
    connection.ping().expect("ping");
    let answer: String = connection
        .query(redis::cmd("ECHO").arg("round trip"))
        .expect("echo");
    assert_eq!(answer, "round trip");
}

#[test]
fn the_database_number_in_the_url_is_selected() {
    let Some(()) = require_redis("the_database_number_in_the_url_is_selected") else {
        return;
    };
    let server = RedisServer::start();
    let text = format!("redis://127.0.0.1:{}/3", server.port());
    let mut connection = open(&text, Timeouts::default()).0.expect("open");
    let _: () = connection
        .query(redis::cmd("SET").arg("marker").arg("in-three"))
        .expect("set");
    assert_eq!(server.command(&["GET", "marker"]).expect("db 0"), "(nil)");
    let keys: Vec<String> = connection.query(redis::cmd("KEYS").arg("*")).expect("keys");
    assert_eq!(keys, vec![String::from("marker")]);
}

#[test]
fn a_password_protected_server_accepts_the_right_password_and_masks_a_wrong_one() {
    let test = "a_password_protected_server_accepts_the_right_password_and_masks_a_wrong_one";
    let Some(()) = require_redis(test) else {
        return;
    };
    let server = RedisServer::start_with(RedisOptions {
        password: Some(String::from("right-horse-battery")),
        ..RedisOptions::default()
    });
    open(&server.url(), Timeouts::default())
        .0
        .expect("right password")
        .ping()
        .expect("ping");

    let wrong = format!("redis://:wrong-staple-9@127.0.0.1:{}/0", server.port());
    let (result, elapsed) = open(&wrong, Timeouts::default());
    let error = result.expect_err("wrong password");
    assert!(
        matches!(error, StoreConnectError::WrongPassword { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(!message.contains("wrong-staple-9"), "{message}");
    assert!(
        message.contains(&format!("redis://:***@127.0.0.1:{}/0", server.port())),
        "{message}"
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");

    let named_user = format!(
        "redis://default:wrong-staple-9@127.0.0.1:{}/0",
        server.port()
    );
    let error = open(&named_user, Timeouts::default())
        .0
        .expect_err("wrong password for a user");
    assert!(
        matches!(error, StoreConnectError::WrongPassword { .. }),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains("wrong-staple-9"));

    let none = format!("redis://127.0.0.1:{}/0", server.port());
    let error = open(&none, Timeouts::default()).0.expect_err("no password");
    assert!(
        matches!(error, StoreConnectError::PasswordRequired { .. }),
        "{error:?}"
    );
}

#[test]
fn a_closed_port_is_refused_at_once() {
    let Some(()) = require_redis("a_closed_port_is_refused_at_once") else {
        return;
    };
    let text = format!("redis://:pw-closed@127.0.0.1:{}/0", closed_port());
    let (result, elapsed) = open(&text, Timeouts::default());
    let error = result.expect_err("closed port");
    assert!(
        matches!(error, StoreConnectError::Refused { .. }),
        "{error:?}"
    );
    assert!(
        elapsed < Duration::from_millis(300),
        "refused took {elapsed:?}"
    );
    assert!(!error.to_string().contains("pw-closed"));
}

#[test]
fn a_killed_server_is_refused_and_answers_again_after_a_restart() {
    let Some(()) = require_redis("a_killed_server_is_refused_and_answers_again_after_a_restart")
    else {
        return;
    };
    let mut server = RedisServer::start();
    server.command(&["SET", "before", "1"]).expect("set");
    server.kill();
    assert!(!server.is_running());
    let error = open(&server.url(), short_timeouts()).0.expect_err("killed");
    assert!(
        matches!(error, StoreConnectError::Refused { .. }),
        "{error:?}"
    );
    server.restart();
    open(&server.url(), short_timeouts())
        .0
        .expect("after restart")
        .ping()
        .expect("ping");
    assert_eq!(
        server.command(&["GET", "before"]).expect("get"),
        "(nil)",
        "persistence is off"
    );
}

#[test]
fn a_paused_server_hits_the_command_and_connect_timeouts_in_bounded_time() {
    let test = "a_paused_server_hits_the_command_and_connect_timeouts_in_bounded_time";
    let Some(()) = require_redis(test) else {
        return;
    };
    let server = RedisServer::start();
    let timeouts = short_timeouts();
    let mut connection = open(&server.url(), timeouts).0.expect("open");
    assert_eq!(
        server
            .command(&["CLIENT", "PAUSE", "3000", "ALL"])
            .expect("pause"),
        "+OK"
    );

    let started = Instant::now();
    let error = connection.ping().expect_err("paused");
    let elapsed = started.elapsed();
    match &error {
        StoreConnectError::Timeout { phase, timeout, .. } => {
            assert_eq!((*phase, *timeout), (Phase::Command, timeouts.command));
        }
        other => panic!("expected a command timeout, got {other:?}"),
    }
    assert!(
        elapsed >= timeouts.command && elapsed < timeouts.command * 3,
        "{elapsed:?}"
    );
    assert!(
        error
            .to_string()
            .contains("no answer within 300 ms while a command"),
        "{error}"
    );

    let (result, elapsed) = open(&server.url(), timeouts);
    let error = result.expect_err("connect while paused");
    assert!(
        matches!(
            error,
            StoreConnectError::Timeout {
                phase: Phase::Connect,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(elapsed < timeouts.connect * 3, "{elapsed:?}");
}

#[test]
fn rediss_to_a_plain_server_fails_cleanly_within_the_timeout() {
    let Some(()) = require_redis("rediss_to_a_plain_server_fails_cleanly_within_the_timeout")
    else {
        return;
    };
    let server = RedisServer::start();
    let text = format!("rediss://:tls-secret@127.0.0.1:{}/0", server.port());
    let timeouts = short_timeouts();
    let (result, elapsed) = open(&text, timeouts);
    let error = result.expect_err("TLS to plain");
    assert!(matches!(error, StoreConnectError::Tls { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("TLS failed"), "{message}");
    assert!(message.contains("rediss://:***@127.0.0.1"), "{message}");
    assert!(!message.contains("tls-secret"), "{message}");
    assert!(
        elapsed < timeouts.connect + timeouts.command + Duration::from_millis(500),
        "{elapsed:?}"
    );
    // The plain server is unharmed.
    assert_eq!(server.command(&["PING"]).expect("ping"), "+PONG");
}

#[test]
fn the_cluster_harness_forms_three_nodes_that_report_ok() {
    let Some(()) = require_redis("the_cluster_harness_forms_three_nodes_that_report_ok") else {
        return;
    };
    let cluster = RedisCluster::start();
    assert_eq!(cluster.nodes().len(), 3);
    for node in cluster.nodes() {
        assert!(node.port() <= crate::redis_server::MAX_CLUSTER_PORT);
        let mut connection = open(&node.url(), Timeouts::default()).0.expect("open node");
        let info: String = connection
            .query(redis::cmd("CLUSTER").arg("INFO"))
            .expect("cluster info");
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_the_harness_leaves_no_redis_process_behind() {
    let Some(()) = require_redis("dropping_the_harness_leaves_no_redis_process_behind") else {
        return;
    };
    let server = RedisServer::start();
    let pid = server.pid().expect("running");
    let proc_entry = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_entry.exists());
    drop(server);
    assert!(
        !proc_entry.exists(),
        "redis-server {pid} outlived its harness"
    );
}
