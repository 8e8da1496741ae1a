//! A failover by hand: a primary with an asynchronous replica, the primary
//! killed, the replica promoted (`REPLICAOF NO ONE`) and the store pointed at
//! it. What the pacer does meanwhile (its fail mode) and after (it goes on
//! with what the replica received), and what the replica lost (the writes it
//! had not received when the primary died).

use std::process::Command;
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

use crate::fixture::{acquire, acquire_args, Project};
use crate::redis_server::{require_redis, RedisOptions, RedisServer};

/// Sends `signal` (`STOP` or `CONT`) to `server`'s process.
fn signal(server: &RedisServer, signal: &str) {
    let pid = server.pid().expect("the server runs").to_string();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits (at most 10 s) until `replica` reports its link to the primary up.
fn wait_for_link(replica: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = replica
            .command(&["INFO", "replication"])
            .unwrap_or_default();
        if info.contains("master_link_status:up") {
            return;
        }
        assert!(Instant::now() < deadline, "replica link not up: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(project: &Project, store: &str) -> Value {
    crate::harness::status_json_with(project, "acme", "m", &["--store", store])
}

fn record(project: &Project, id: &str, store: &str) -> std::process::Output {
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            id,
            "--input-tokens",
            "5",
            "--output-tokens",
            "5",
            "--store",
            store,
            "--on-store-error",
            "closed",
        ])
        .output()
        .unwrap()
}

#[test]
fn a_promoted_replica_carries_on_with_what_it_received_and_the_rest_is_lost() {
    let test = "a_promoted_replica_carries_on_with_what_it_received_and_the_rest_is_lost";
    let Some(()) = require_redis(test) else {
        return;
    };
    // The primary has a password the replica must give: once the primary is
    // killed, another test's server may take its port, and the replica must
    // not resynchronise from that one.
    let mut primary = RedisServer::start_with(RedisOptions {
        password: Some("failover-pw-9".into()),
        ..RedisOptions::default()
    });
    let replica = RedisServer::start();
    let port = primary.port().to_string();
    assert_eq!(
        replica
            .command(&["CONFIG", "SET", "masterauth", "failover-pw-9"])
            .unwrap(),
        "+OK"
    );
    assert_eq!(
        replica.command(&["REPLICAOF", "127.0.0.1", &port]).unwrap(),
        "+OK"
    );
    wait_for_link(&replica);
    let (on_primary, on_replica) = (primary.url(), replica.url());
    // RPM 4 and a cap of 10: the window, not the cap, decides below.
    let project = Project::with_profile("acme", "m", 4, 100_000, 10);
    let first = acquire(&project, &["--timeout", "0", "--store", &on_primary]);
    let second = acquire(&project, &["--timeout", "0", "--store", &on_primary]);
    // Both reached the replica.
    assert_eq!(primary.command(&["WAIT", "1", "5000"]).unwrap(), ":1");
    // Before promotion the replica is read-only: a store pointed at it is
    // unavailable (a write refused), so fail-closed exits 69.
    project
        .cmd(&acquire_args(&[
            "--timeout",
            "0",
            "--store",
            &on_replica,
            "--on-store-error",
            "closed",
        ]))
        .assert()
        .code(69)
        .stderr(predicate::str::contains("is unavailable"));
    // A third admission the replica never receives: its link is cut (and
    // the replica frozen so it cannot reconnect) before the write, and the
    // primary dies right after it.
    signal(&replica, "STOP");
    primary
        .command(&["CLIENT", "KILL", "TYPE", "replica"])
        .unwrap();
    let lost = acquire(&project, &["--timeout", "0", "--store", &on_primary]);
    primary.kill();
    signal(&replica, "CONT");
    // The primary is gone: fail-open goes ahead unpaced with one warning,
    // fail-closed exits 69; neither hangs.
    let started = Instant::now();
    let output = project
        .cmd(&acquire_args(&["--timeout", "0", "--store", &on_primary]))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("rsv-unpaced-"));
    let warning = String::from_utf8(output.stderr).unwrap();
    assert!(warning.contains("going ahead unpaced"), "{warning}");
    assert!(!warning.contains("failover-pw-9"), "{warning}");
    project
        .cmd(&acquire_args(&[
            "--timeout",
            "0",
            "--store",
            &on_primary,
            "--on-store-error",
            "closed",
        ]))
        .assert()
        .code(69);
    assert!(started.elapsed() < Duration::from_secs(10));
    // Promote the replica and point the store at it.
    assert_eq!(replica.command(&["REPLICAOF", "NO", "ONE"]).unwrap(), "+OK");
    let before = status(&project, &on_replica);
    // What the replica received: the first two admissions, still in flight.
    // What it lost: the third, admitted on the primary after the link broke.
    assert_eq!(before["rolling_request_count"], 2, "{before}");
    assert_eq!(before["in_flight"], 2, "{before}");
    // The budget goes on from there: two more this minute (RPM 4), then a wait.
    acquire(&project, &["--timeout", "0", "--store", &on_replica]);
    acquire(&project, &["--timeout", "0", "--store", &on_replica]);
    project
        .cmd(&acquire_args(&["--timeout", "0", "--store", &on_replica]))
        .assert()
        .code(75);
    // A reservation the replica received records; the lost one is unknown.
    for id in [&first, &second] {
        let output = record(&project, id, &on_replica);
        assert!(output.status.success(), "{id}: {output:?}");
    }
    let output = record(&project, &lost, &on_replica);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("unknown reservation `{lost}`")),
        "{stderr}"
    );
    let after = status(&project, &on_replica);
    assert_eq!(after["rolling_request_count"], 4, "{after}");
    assert_eq!(after["in_flight"], 2, "{after}");
}
