//! A Redis Cluster named from the CLI (`redis+cluster://host:port,…`) in
//! `--store`, `SPECSMITH_STORE` and `.specsmith/pacing-store.json`, against
//! the local three-node cluster harness; its password masked as for
//! `redis://` when the cluster cannot be reached.

use std::net::TcpListener;

use predicates::prelude::*;

use crate::fixture::{acquire, acquire_args, Project, STATE};
use crate::harness::status_json;
use crate::redis_server::{require_redis, RedisCluster};

fn cluster_url(cluster: &RedisCluster) -> String {
    let nodes: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|node| format!("127.0.0.1:{}", node.port()))
        .collect();
    format!("redis+cluster://{}", nodes.join(","))
}

#[test]
fn the_cli_paces_on_a_cluster_named_by_flag_variable_or_setting_file() {
    let test = "the_cli_paces_on_a_cluster_named_by_flag_variable_or_setting_file";
    let Some(()) = require_redis(test) else {
        return;
    };
    let cluster = RedisCluster::start();
    let url = cluster_url(&cluster);
    // RPM 1: a second acquire in the same minute must wait, wherever it
    // names the cluster from.
    let project = Project::with_profile("acme", "m", 1, 100_000, 1);
    let id = acquire(&project, &["--timeout", "0", "--store", &url]);
    assert!(id.starts_with("rsv-"), "{id}");
    project
        .cmd(&acquire_args(&[
            "--timeout",
            "0",
            "--on-store-error",
            "closed",
        ]))
        .env("SPECSMITH_STORE", &url)
        .assert()
        .code(75);
    project.write(
        ".specsmith/pacing-store.json",
        &format!(r#"{{"store": "{url}", "on_error": "closed"}}"#),
    );
    // Another process records by id alone: it finds the model through the
    // reservation's index key, which lives in another slot.
    project
        .cmd(&[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "7",
            "--output-tokens",
            "3",
        ])
        .assert()
        .success();
    let output = project
        .cmd(&["credits", "limits", "status"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let setting = ".specsmith/pacing-store.json";
    assert!(
        stdout.contains(&format!("Store: {url} (from `")) && stdout.contains(setting),
        "{stdout}"
    );
    let text = status_json(&project, "acme", "m").to_string();
    assert!(text.contains("\"rolling_request_count\":1"), "{text}");
    assert!(text.contains("\"rolling_token_count\":10"), "{text}");
    // The state file was never written: the cluster holds the state.
    assert!(!project.exists(STATE));
    // A reset on the cluster clears every primary.
    project
        .cmd(&["credits", "limits", "reset-state"])
        .assert()
        .success()
        .stdout(format!("Removed pacing state in {url}\n"));
    acquire(&project, &["--timeout", "0"]);
}

#[test]
fn an_unreachable_cluster_warns_without_its_password_and_fails_as_chosen() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("redis+cluster://agent:s3cret-pw@127.0.0.1:{port},127.0.0.1:{port}");
    let project = Project::with_profile("acme", "m", 1, 100_000, 1);
    let output = project
        .cmd(&acquire_args(&["--store", &url, "--timeout", "0"]))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("warning: the pacing store cluster redis://agent:***@127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    project
        .cmd(&acquire_args(&[
            "--store",
            &url,
            "--timeout",
            "0",
            "--on-store-error",
            "closed",
        ]))
        .assert()
        .code(69)
        .stderr(predicate::str::contains("s3cret-pw").not());
    project
        .cmd(&["credits", "limits", "status"])
        .env(
            "SPECSMITH_STORE",
            "redis+cluster://agent:s3cret-pw@127.0.0.1:1,,x",
        )
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: SPECSMITH_STORE: "))
        .stderr(predicate::str::contains("an empty node between commas"))
        .stderr(predicate::str::contains("s3cret-pw").not());
    assert!(!project.exists(STATE));
}
