//! Load scenarios against the local fake provider (loopback only): 16 workers
//! paced by a correct profile get no 429, and no call waits more than one
//! window longer than the median call.
//!
//! These take real time (the provider's window is 60 s). The CI versions run
//! 64 calls at RPM 24, so the third window is reached (about 2 minutes; the
//! two run in parallel). `scripts/bench/load.sh` runs the longer variant.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fake_provider::{chat_body, post_json, FakeProvider, FakeProviderConfig};
use crate::fixture::Project;
use crate::harness::{median, specsmith};

const PROVIDER: &str = "fake";
const MODEL: &str = "gpt-4o";
/// Prompt tokens each call costs at the provider; the workers' estimate.
const PROMPT_TOKENS: u64 = 40;
/// `max_tokens` of each call; the provider answers 20 completion tokens.
const MAX_TOKENS: u64 = 30;
const WINDOW: Duration = Duration::from_secs(60);
/// Allowed on top of one window in the fairness check: the pacer's window-edge
/// safety margin (issue 9 item 11) and process start-up on a loaded machine.
/// A starved call misses a whole window, so it still shows (about 120 s).
const FAIRNESS_SLACK: Duration = Duration::from_secs(5);

/// `assert!` for a worker: the failure becomes the worker's problem, reported
/// with all the others once the scenario ends.
macro_rules! check {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

/// One load run's shape.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Concurrent workers.
    pub workers: usize,
    /// Calls each worker makes, one after the other.
    pub calls_per_worker: usize,
    /// The provider's real RPM, which the profile states exactly (target 1).
    pub rpm: u64,
    /// The provider's real TPM, which the profile states exactly.
    pub tpm: u64,
}

impl Scenario {
    /// 16 workers × 4 calls at RPM 24: three windows, about 2 minutes.
    const CI: Self = Self {
        workers: 16,
        calls_per_worker: 4,
        rpm: 24,
        tpm: 100_000,
    };

    /// The longer variant: sizes from `SPECSMITH_LOAD_WORKERS`,
    /// `SPECSMITH_LOAD_CALLS`, `SPECSMITH_LOAD_RPM`, `SPECSMITH_LOAD_TPM`.
    fn from_environment() -> Self {
        let read = |name: &str, default: u64| -> u64 {
            std::env::var(name).map_or(default, |text| {
                text.parse()
                    .unwrap_or_else(|_| panic!("{name}: not a number"))
            })
        };
        Self {
            workers: read("SPECSMITH_LOAD_WORKERS", 16) as usize,
            calls_per_worker: read("SPECSMITH_LOAD_CALLS", 12) as usize,
            rpm: read("SPECSMITH_LOAD_RPM", 30),
            tpm: read("SPECSMITH_LOAD_TPM", 100_000),
        }
    }

    /// The longest a worker's call may wait before the test calls it stuck:
    /// all the calls at the given RPM, plus two windows.
    fn acquire_timeout(&self) -> Duration {
        let total = (self.workers * self.calls_per_worker) as u64;
        WINDOW * (total.div_ceil(self.rpm) as u32 + 2)
    }
}

/// How the workers reach the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pacing {
    /// `acquire`, the call (in the worker), then `record` (or `record --rate-limited` and a retry).
    AcquireRecord,
    /// `run -- <client>`: curl when the machine has it, else `tests/support/fake_client.py`.
    Run,
}

fn project_for(scenario: &Scenario) -> Project {
    let project = Project::new();
    let output = specsmith(
        &project,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            PROVIDER,
            "--model",
            MODEL,
            "--rpm",
            &scenario.rpm.to_string(),
            "--tpm",
            &scenario.tpm.to_string(),
            "--target",
            "1",
            "--concurrency",
            &scenario.workers.to_string(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    project
}

/// What a load run measured.
#[derive(Debug)]
struct Outcome {
    /// For each call: from the worker starting it to the provider admitting it.
    waits: Vec<Duration>,
    /// 429s the provider answered.
    rate_limited: usize,
    /// Requests and tokens of the provider's busiest window.
    busiest: (u64, u64),
    /// What went wrong in the workers' calls (a failed command, an answer that is not JSON).
    problems: Vec<String>,
}

fn run_scenario(scenario: Scenario, pacing: Pacing) -> Outcome {
    let provider = Arc::new(
        FakeProvider::start(FakeProviderConfig {
            model: MODEL.to_owned(),
            rpm: scenario.rpm,
            tpm: scenario.tpm,
            ..FakeProviderConfig::default()
        })
        .unwrap(),
    );
    let project = Arc::new(project_for(&scenario));
    let client = client_command();
    let started_at: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..scenario.workers)
            .map(|worker| {
                let (provider, project, client) =
                    (Arc::clone(&provider), Arc::clone(&project), client.clone());
                scope.spawn(move || {
                    (0..scenario.calls_per_worker)
                        .map(|call| {
                            let name = format!("w{worker}-c{call}");
                            let started = Instant::now();
                            let result = match pacing {
                                Pacing::AcquireRecord => {
                                    call_with_acquire_record(&project, &provider, &scenario, &name)
                                }
                                Pacing::Run => {
                                    call_with_run(&project, &provider, &scenario, &client, &name)
                                }
                            };
                            (name, started, result.err())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    let log = provider.log();
    let mut problems: Vec<String> = Vec::new();
    let mut waits = Vec::new();
    for (name, started, problem) in started_at {
        problems.extend(problem);
        match log
            .iter()
            .find(|request| request.status == 200 && request.client.as_deref() == Some(&name))
        {
            Some(admitted) => waits.push(admitted.arrived.saturating_duration_since(started)),
            None => problems.push(format!("{name}: the provider never admitted it")),
        }
    }
    Outcome {
        waits,
        problems,
        rate_limited: provider.count_status(429),
        busiest: provider.busiest_window(),
    }
}

fn call_with_acquire_record(
    project: &Project,
    provider: &FakeProvider,
    scenario: &Scenario,
    name: &str,
) -> Result<(), String> {
    let timeout = scenario.acquire_timeout().as_secs().to_string();
    let (prompt, max_tokens) = (PROMPT_TOKENS.to_string(), MAX_TOKENS.to_string());
    let body = chat_body(MODEL, PROMPT_TOKENS, MAX_TOKENS);
    for attempt in 1..=5 {
        let acquired = specsmith(
            project,
            &[
                "credits",
                "limits",
                "acquire",
                "--provider",
                PROVIDER,
                "--model",
                MODEL,
                "--input-tokens",
                &prompt,
                "--max-output-tokens",
                &max_tokens,
                "--timeout",
                &timeout,
            ],
        )
        .output()
        .unwrap();
        check!(
            acquired.status.success(),
            "{name}: acquire failed: {}",
            String::from_utf8_lossy(&acquired.stderr)
        );
        let id = String::from_utf8(acquired.stdout)
            .unwrap()
            .trim()
            .to_owned();
        let answer = post_json(
            provider.address(),
            "/v1/chat/completions",
            name,
            &body,
            Duration::from_secs(20),
        )
        .map_err(|error| format!("{name}: the call failed: {error}"))?;
        if answer.status == 200 {
            let usage: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            let input = usage["usage"]["prompt_tokens"].to_string();
            let output = usage["usage"]["completion_tokens"].to_string();
            let recorded = specsmith(
                project,
                &[
                    "credits",
                    "limits",
                    "record",
                    &id,
                    "--input-tokens",
                    &input,
                    "--output-tokens",
                    &output,
                ],
            )
            .output()
            .unwrap();
            check!(
                recorded.status.success(),
                "{name}: record failed: {}",
                String::from_utf8_lossy(&recorded.stderr)
            );
            return Ok(());
        }
        check!(
            answer.status == 429,
            "{name}: unexpected answer {}",
            answer.body
        );
        let mut record = specsmith(
            project,
            &[
                "credits",
                "limits",
                "record",
                &id,
                "--rate-limited",
                "--error-file",
                "-",
                "--status",
                "429",
                "--attempt",
                &attempt.to_string(),
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        record
            .stdin
            .take()
            .unwrap()
            .write_all(answer.body.as_bytes())
            .unwrap();
        let recorded = record.wait_with_output().unwrap();
        check!(
            recorded.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&recorded.stderr)
        );
        let delay: f64 = String::from_utf8(recorded.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(delay.min(60.0)));
    }
    Err(format!("{name}: still rate limited after 5 attempts"))
}

/// The command that makes one call for `run`: curl when the machine has it.
fn client_command() -> Vec<String> {
    let has_curl = std::process::Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if has_curl {
        vec![
            "curl".into(),
            "--silent".into(),
            "--show-error".into(),
            "--fail-with-body".into(),
            "--max-time".into(),
            "20".into(),
        ]
    } else {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_client.py");
        vec!["python3".into(), script.display().to_string()]
    }
}

fn call_with_run(
    project: &Project,
    provider: &FakeProvider,
    scenario: &Scenario,
    client: &[String],
    name: &str,
) -> Result<(), String> {
    let body = chat_body(MODEL, PROMPT_TOKENS, MAX_TOKENS);
    let deadline = scenario.acquire_timeout().as_secs().to_string();
    let (prompt, max_tokens) = (PROMPT_TOKENS.to_string(), MAX_TOKENS.to_string());
    let mut args: Vec<String> = [
        "credits",
        "limits",
        "run",
        "--provider",
        PROVIDER,
        "--model",
        MODEL,
        "--input-tokens",
        &prompt,
        "--max-output-tokens",
        &max_tokens,
        "--deadline",
        &deadline,
        "--",
    ]
    .iter()
    .map(|text| (*text).to_owned())
    .collect();
    args.extend(client.iter().cloned());
    if client[0] == "curl" {
        let header = format!("x-fake-client: {name}");
        args.extend([
            "-H".into(),
            "content-type: application/json".into(),
            "-H".into(),
            header,
            "-d".into(),
            body,
        ]);
        args.push(provider.chat_url());
    } else {
        args.extend([provider.chat_url(), name.to_owned(), body]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = specsmith(project, &args).output().unwrap();
    check!(
        output.status.success(),
        "{name}: run exited {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("{name}: stdout is not one JSON answer ({error})"))?;
    check!(answer["usage"]["total_tokens"].is_u64(), "{name}: {answer}");
    Ok(())
}

fn assert_paced(scenario: Scenario, pacing: Pacing) {
    let started = Instant::now();
    let outcome = run_scenario(scenario, pacing);
    let middle = if outcome.waits.is_empty() {
        Duration::ZERO
    } else {
        median(&outcome.waits)
    };
    let longest = outcome.waits.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{pacing:?} {scenario:?}: {} calls in {:.1} s, 429s {}, busiest window {:?}, wait median {:.1} s, max {:.1} s, problems {}",
        outcome.waits.len(),
        started.elapsed().as_secs_f64(),
        outcome.rate_limited,
        outcome.busiest,
        middle.as_secs_f64(),
        longest.as_secs_f64(),
        outcome.problems.len()
    );
    let mut failures = Vec::new();
    if outcome.busiest.0 > scenario.rpm {
        failures.push(format!(
            "the fake provider itself let {:?} through in one window",
            outcome.busiest
        ));
    }
    if outcome.rate_limited > 0 {
        failures.push(format!(
            "{} 429s with a correct profile (want 0)",
            outcome.rate_limited
        ));
    }
    if longest > middle + WINDOW + FAIRNESS_SLACK {
        failures.push(format!(
            "a call waited {:.1} s, more than one window (+{} s slack) over the median {:.1} s",
            longest.as_secs_f64(),
            FAIRNESS_SLACK.as_secs(),
            middle.as_secs_f64()
        ));
    }
    let shown = outcome.problems.len().min(5);
    if shown > 0 {
        failures.push(format!(
            "{} calls went wrong, first: {:?}",
            outcome.problems.len(),
            &outcome.problems[..shown]
        ));
    }
    assert!(failures.is_empty(), "{pacing:?}: {}", failures.join("; "));
}

#[test]
fn sixteen_workers_through_acquire_and_record_meet_no_429_and_no_starvation() {
    assert_paced(Scenario::CI, Pacing::AcquireRecord);
}

#[test]
fn sixteen_workers_through_run_meet_no_429_and_no_starvation() {
    assert_paced(Scenario::CI, Pacing::Run);
}

/// The longer variant (`scripts/bench/load.sh`); sizes from the environment.
#[test]
#[ignore = "minutes of real time: run by scripts/bench/load.sh"]
fn long_load_through_acquire_and_record() {
    assert_paced(Scenario::from_environment(), Pacing::AcquireRecord);
}

/// The longer variant of the `run` scenario (`scripts/bench/load.sh`).
#[test]
#[ignore = "minutes of real time: run by scripts/bench/load.sh"]
fn long_load_through_run() {
    assert_paced(Scenario::from_environment(), Pacing::Run);
}
