//! Two "machines" (two project folders) sharing one Redis through the CLI:
//! their processes race `acquire --timeout 0` and exactly the shared budget
//! is admitted, never the sum of two per-machine budgets.

use std::process::{Child, Stdio};

use serde_json::Value;

use crate::fixture::{acquire_args, Project};
use crate::harness::specsmith;
use crate::redis_server::{require_redis, RedisServer};

/// Starts `count` acquires at once, alternating between the two projects,
/// and returns how many were admitted (the rest must exit 75).
fn race(projects: &[Project; 2], store: &str, count: usize) -> usize {
    let owner = std::process::id().to_string();
    let children: Vec<Child> = (0..count)
        .map(|index| {
            specsmith(
                &projects[index % 2],
                &acquire_args(&[
                    "--timeout",
                    "0",
                    "--store",
                    store,
                    "--on-store-error",
                    "closed",
                    "--owner-pid",
                    &owner,
                ]),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut admitted = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        match output.status.code() {
            Some(0) => admitted += 1,
            Some(75) => {}
            other => panic!(
                "acquire exited {other:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
    admitted
}

fn machines(rpm: u64, tpm: u64, cap: u32) -> [Project; 2] {
    [
        Project::with_profile("acme", "m", rpm, tpm, cap),
        Project::with_profile("acme", "m", rpm, tpm, cap),
    ]
}

fn status(project: &Project, store: &str) -> Value {
    crate::harness::status_json_with(project, "acme", "m", &["--store", store])
}

#[test]
fn forty_processes_on_two_machines_get_exactly_the_shared_rpm() {
    let Some(()) = require_redis("forty_processes_on_two_machines_get_exactly_the_shared_rpm")
    else {
        return;
    };
    let server = RedisServer::start();
    let store = server.url();
    let projects = machines(15, 1_000_000, 100);
    assert_eq!(race(&projects, &store, 40), 15);
    // Both machines see the one shared window, and neither wrote a state file.
    for project in &projects {
        assert_eq!(status(project, &store)["rolling_request_count"], 15);
        assert!(!project.exists(".specsmith/model-rate-limit-state.json"));
    }
}

#[test]
fn the_shared_concurrency_cap_and_tpm_hold_across_machines() {
    let Some(()) = require_redis("the_shared_concurrency_cap_and_tpm_hold_across_machines") else {
        return;
    };
    let server = RedisServer::start();
    let store = server.url();
    // A cap of 3, nothing released: 3 in flight in all, not 3 per machine.
    let projects = machines(1_000, 1_000_000, 3);
    assert_eq!(race(&projects, &store, 40), 3);
    assert_eq!(status(&projects[1], &store)["in_flight"], 3);
    // 150 tokens each against TPM 1,000: six fit the window, in all.
    let server = RedisServer::start();
    let store = server.url();
    let projects = machines(1_000, 1_000, 100);
    assert_eq!(race(&projects, &store, 40), 6);
    let tokens = status(&projects[0], &store)["rolling_token_count"]
        .as_u64()
        .unwrap();
    assert!(tokens <= 1_000, "{tokens} tokens in one window");
}
