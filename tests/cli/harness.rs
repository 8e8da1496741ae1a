//! Shared pieces of the fault suite: plain std commands of the binary (to run
//! many at once and kill them), seeds that are printed so a failure can be
//! replayed, and a few figures.

use std::process::Command as StdCommand;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::Project;

/// `specsmith-rs --project-dir <root> ARGS…` as a std command (spawnable,
/// killable), with the fixture's isolated environment.
pub fn specsmith(project: &Project, args: &[&str]) -> StdCommand {
    let mut command = StdCommand::new(assert_cmd::cargo::cargo_bin("specsmith-rs"));
    command
        .current_dir(project.root())
        .env("HOME", project.config_dir())
        .env("XDG_CONFIG_HOME", project.config_dir().join("xdg"))
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .env("NO_COLOR", "1")
        .env_remove("SPECSMITH_STORE")
        .env_remove("SPECSMITH_STORE_ON_ERROR")
        .env_remove("RUST_BACKTRACE")
        .arg("--project-dir")
        .arg(project.root())
        .args(args);
    command
}

/// The seed of a randomised test: `SPECSMITH_TEST_SEED` when set (to replay a
/// failure), else a fresh one. Printed either way; cargo shows it on failure.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("SPECSMITH_TEST_SEED") {
        Ok(text) => text.parse().expect("SPECSMITH_TEST_SEED is a whole number"),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("{test}: seed {seed} (replay with SPECSMITH_TEST_SEED={seed})");
    seed
}

/// `status --provider P --model M --json`, which must succeed.
pub fn status_json(project: &Project, provider: &str, model: &str) -> Value {
    status_json_with(project, provider, model, &[])
}

/// `status --json` of one model with `extra` flags (`--store URL`).
pub fn status_json_with(project: &Project, provider: &str, model: &str, extra: &[&str]) -> Value {
    let mut args = status_args(provider, model);
    args.push("--json");
    args.extend_from_slice(extra);
    serde_json::from_slice(&succeeding_stdout(project, &args)).unwrap()
}

/// The text of `status --provider P --model M`, which must succeed.
pub fn status_text(project: &Project, provider: &str, model: &str) -> String {
    let args = status_args(provider, model);
    String::from_utf8(succeeding_stdout(project, &args)).unwrap()
}

/// `credits limits status --provider P --model M`.
fn status_args<'a>(provider: &'a str, model: &'a str) -> Vec<&'a str> {
    vec![
        "credits",
        "limits",
        "status",
        "--provider",
        provider,
        "--model",
        model,
    ]
}

/// The standard output of `specsmith-rs ARGS…`, which must succeed.
fn succeeding_stdout(project: &Project, args: &[&str]) -> Vec<u8> {
    let output = specsmith(project, args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The median of `values` (which must not be empty).
pub fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
