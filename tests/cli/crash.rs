//! Crash safety: writers killed with SIGKILL at random moments never leave a
//! torn or lost file, never leave a temporary behind once the next write has
//! run, and never keep a dead process's slot.
//!
//! Each batch starts [`WRITERS_PER_BATCH`] writers at once (`set`,
//! `defaults --install`, `acquire`, `record`, `release`, `run`), kills each at
//! a random moment within 4 × the time a writer alone takes on this machine
//! (measured first, so kills land before, during and after the write however
//! loaded the machine is), then checks the
//! project. Batches go on for [`TIME_BUDGET`]; the seed is printed
//! (`SPECSMITH_TEST_SEED` replays the choices; kill moments are real time).

#![cfg(unix)]

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixture::{Project, PROFILES, STATE};
use crate::harness::{seed, specsmith, status_json};

const TIME_BUDGET: Duration = Duration::from_secs(30);
const MAX_BATCHES: usize = 400;
const WRITERS_PER_BATCH: usize = 8;
/// The model `acquire`, `record` and `release` writers use.
const PACED: &str = "paced";
/// The model `run` writers use; its cap is [`RUN_CAP`].
const RUN_MODEL: &str = "wrapped";
const RUN_CAP: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Writer {
    Set,
    DefaultsInstall,
    Acquire,
    Record,
    Release,
    Run,
}

const WRITERS: [Writer; 6] = [
    Writer::Set,
    Writer::DefaultsInstall,
    Writer::Acquire,
    Writer::Record,
    Writer::Release,
    Writer::Run,
];

/// Figures of one harness run.
#[derive(Debug, Default)]
struct Figures {
    batches: usize,
    started: usize,
    /// Writers that died of their SIGKILL (still running when it arrived).
    killed: usize,
    /// Writers that finished with success before it.
    succeeded: usize,
    /// Temporary files found after a batch and one clean write, with the
    /// batch that first saw each.
    leftovers: std::collections::BTreeMap<String, usize>,
}

fn run_ok(project: &Project, args: &[&str]) -> String {
    let output = specsmith(project, args).output().unwrap();
    assert!(
        output.status.success(),
        "`{}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn set_profile(model: &str, rpm: u64, tpm: u64, concurrency: u32) -> Vec<String> {
    let (rpm, tpm, concurrency) = (rpm.to_string(), tpm.to_string(), concurrency.to_string());
    [
        "credits",
        "limits",
        "set",
        "--provider",
        "acme",
        "--model",
        model,
        "--rpm",
        &rpm,
        "--tpm",
        &tpm,
        "--target",
        "1",
        "--concurrency",
        &concurrency,
    ]
    .iter()
    .map(|text| (*text).to_owned())
    .collect()
}

fn acquire_args(model: &str, owner: u32) -> Vec<String> {
    let owner = owner.to_string();
    [
        "credits",
        "limits",
        "acquire",
        "--provider",
        "acme",
        "--model",
        model,
        "--input-tokens",
        "10",
        "--max-output-tokens",
        "10",
        "--timeout",
        "0",
        "--owner-pid",
        &owner,
    ]
    .iter()
    .map(|text| (*text).to_owned())
    .collect()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every `provider/model` in the project profile file, read straight from disk.
fn profiles_on_disk(project: &Project) -> BTreeSet<String> {
    let text = project.read(PROFILES);
    let profiles: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("the profile file is torn ({error}):\n{text}"));
    profiles
        .as_array()
        .expect("the profile file is an array")
        .iter()
        .map(|profile| {
            format!(
                "{}/{}",
                profile["provider"].as_str().unwrap(),
                profile["model"].as_str().unwrap()
            )
        })
        .collect()
}

/// The event logs the state file names (state format 4), by file name.
fn named_logs(state: &Value) -> Vec<String> {
    state["models"]
        .as_object()
        .map(|models| {
            models
                .values()
                .filter_map(|model| model["events"]["log"].as_str())
                .map(|log| format!("model-rate-limit-state.json.events-{log}"))
                .collect()
        })
        .unwrap_or_default()
}

/// Names in `.specsmith/` that are neither a data file, its lock, nor an
/// event log the state file names.
fn strays(project: &Project) -> Vec<String> {
    let mut known: Vec<String> = [
        "model-rate-limits.json",
        "model-rate-limits.json.lock",
        "model-rate-limit-state.json",
        "model-rate-limit-state.json.lock",
    ]
    .map(str::to_owned)
    .to_vec();
    known.extend(named_logs(
        &serde_json::from_str(&project.read(STATE)).unwrap(),
    ));
    let mut found: Vec<String> = std::fs::read_dir(project.root().join(".specsmith"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !known.contains(name))
        .collect();
    found.sort();
    found
}

/// Gives the paced model `events` settled events at the time of one
/// recorded event, so that its window lives in an event log and the writers below
/// change its slots: written as a window in the state file, which the next
/// write moves into a log.
fn prefill_window(project: &Project, events: usize) {
    let id = run_ok(project, &as_strs(&acquire_args(PACED, std::process::id())))
        .trim()
        .to_owned();
    run_ok(
        project,
        &[
            "credits",
            "limits",
            "record",
            &id,
            "--input-tokens",
            "10",
            "--output-tokens",
            "10",
        ],
    );
    let mut state: Value = serde_json::from_str(&project.read(STATE)).unwrap();
    let model = &mut state["models"]["acme::paced"];
    assert_eq!(model["in_flight"], serde_json::json!([]), "{model}");
    let at = model["events"]["at"].as_str().unwrap().to_owned();
    let mut gaps = vec!["0"; events];
    gaps[0] = &at;
    model["events"] = serde_json::json!({
        "first": 0,
        "at": gaps.join(" "),
        "tokens": vec!["20"; events].join(" "),
        "released": [],
    });
    model["next_sequence"] = events.into();
    project.write(STATE, &state.to_string());
    let id = run_ok(project, &as_strs(&acquire_args(PACED, std::process::id())))
        .trim()
        .to_owned();
    run_ok(project, &["credits", "limits", "release", &id]);
    let state: Value = serde_json::from_str(&project.read(STATE)).unwrap();
    assert_eq!(named_logs(&state).len(), 1, "{state}");
}

fn builtin_profiles(project: &Project) -> BTreeSet<String> {
    let listed: Value = serde_json::from_str(&run_ok(
        project,
        &["credits", "limits", "defaults", "--json"],
    ))
    .unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|profile| {
            format!(
                "{}/{}",
                profile["provider"].as_str().unwrap(),
                profile["model"].as_str().unwrap()
            )
        })
        .collect()
}

fn spawn_quiet(mut command: StdCommand) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn one_batch(
    kill_window_micros: u64,
    project: &Project,
    random: &mut fastrand::Rng,
    batch: usize,
    expected: &mut BTreeSet<String>,
    builtins: &BTreeSet<String>,
    figures: &mut Figures,
) {
    // The owner of every reservation this batch makes; it dies with the batch.
    let mut owner = spawn_quiet({
        let mut sleeper = StdCommand::new("sleep");
        sleeper.arg("60");
        sleeper
    });
    let kinds: Vec<Writer> = (0..WRITERS_PER_BATCH)
        .map(|_| WRITERS[random.usize(..WRITERS.len())])
        .collect();
    // Arguments first (record and release need a live reservation each), so
    // that every writer is spawned in one quick burst.
    let mut planned: Vec<(Writer, Option<String>, Vec<String>)> = Vec::new();
    for kind in kinds {
        let (args, profile) = match kind {
            Writer::Set => {
                let model = format!("set-{}", random.u32(0..6));
                let args = set_profile(
                    &model,
                    random.u64(1..10_000),
                    random.u64(1..1_000_000),
                    random.u32(1..9),
                );
                (args, Some(format!("acme/{model}")))
            }
            Writer::DefaultsInstall => (
                vec![
                    "credits".into(),
                    "limits".into(),
                    "defaults".into(),
                    "--install".into(),
                ],
                None,
            ),
            Writer::Acquire => (acquire_args(PACED, owner.id()), None),
            Writer::Record | Writer::Release => {
                let id = run_ok(project, &as_strs(&acquire_args(PACED, owner.id())))
                    .trim()
                    .to_owned();
                let mut args: Vec<String> = vec!["credits".into(), "limits".into()];
                if kind == Writer::Record {
                    args.extend([
                        "record".into(),
                        id,
                        "--input-tokens".into(),
                        "7".into(),
                        "--output-tokens".into(),
                        "3".into(),
                    ]);
                } else {
                    args.extend(["release".into(), id]);
                }
                (args, None)
            }
            Writer::Run => {
                let args = [
                    "credits",
                    "limits",
                    "run",
                    "--provider",
                    "acme",
                    "--model",
                    RUN_MODEL,
                    "--input-tokens",
                    "1",
                    "--max-output-tokens",
                    "1",
                    "--deadline",
                    "20",
                    "--",
                    "true",
                ];
                (args.iter().map(|text| (*text).to_owned()).collect(), None)
            }
        };
        planned.push((kind, profile, args));
    }
    let mut writers: Vec<(Writer, Option<String>, Child, Instant)> = planned
        .into_iter()
        .map(|(kind, profile, args)| {
            let kill_at = Instant::now() + Duration::from_micros(random.u64(0..kill_window_micros));
            (
                kind,
                profile,
                spawn_quiet(specsmith(project, &as_strs(&args))),
                kill_at,
            )
        })
        .collect();
    writers.sort_by_key(|(_, _, _, kill_at)| *kill_at);
    for (_, _, child, kill_at) in &mut writers {
        std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
        }
    }
    for (kind, profile, mut child, _) in writers {
        let status = child.wait().unwrap();
        if status.signal() == Some(libc::SIGKILL) {
            figures.killed += 1;
        }
        if status.success() {
            figures.succeeded += 1;
            match kind {
                Writer::Set => {
                    expected.insert(profile.unwrap());
                }
                Writer::DefaultsInstall => expected.extend(builtins.iter().cloned()),
                _ => {}
            }
        }
    }
    figures.started += WRITERS_PER_BATCH;
    owner.kill().unwrap();
    owner.wait().unwrap();

    // Both files parse, and every command still reads them.
    let on_disk = profiles_on_disk(project);
    let state_text = project.read(STATE);
    let state: Value = serde_json::from_str(&state_text).unwrap_or_else(|error| {
        panic!("batch {batch}: the state file is torn ({error}):\n{state_text}")
    });
    assert!(state["version"].is_u64(), "batch {batch}: {state}");
    // The paced model's window is long enough to live in an event log.
    assert!(
        state["models"]["acme::paced"]["events"]["log"].is_string(),
        "batch {batch}: the window is not in an event log: {state}"
    );
    run_ok(project, &["credits", "limits", "list", "--json"]);

    // No profile that was there, or whose `set` or `defaults --install` succeeded, is lost.
    let lost: Vec<_> = expected.difference(&on_disk).collect();
    assert!(lost.is_empty(), "batch {batch}: profiles lost: {lost:?}");
    expected.extend(on_disk);

    // Every owner is dead now, so every slot comes back: to `status`, and to
    // acquirers up to the cap.
    assert_eq!(
        status_json(project, "acme", PACED)["in_flight"],
        0,
        "batch {batch}: a dead owner's slot is held"
    );
    // A killed `run`'s command (`true`) is reaped by init a moment later; once
    // it is gone, so is any claim on the slot. Bounded: 5 s.
    let reaped_by = Instant::now() + Duration::from_secs(5);
    while status_json(project, "acme", RUN_MODEL)["in_flight"] != 0 && Instant::now() < reaped_by {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        status_json(project, "acme", RUN_MODEL)["in_flight"],
        0,
        "batch {batch}: a killed run's slot is held"
    );
    let me = std::process::id();
    let ids: Vec<String> = (0..RUN_CAP)
        .map(|_| {
            run_ok(project, &as_strs(&acquire_args(RUN_MODEL, me)))
                .trim()
                .to_owned()
        })
        .collect();
    let over = specsmith(project, &as_strs(&acquire_args(RUN_MODEL, me)))
        .output()
        .unwrap();
    assert_eq!(
        over.status.code(),
        Some(75),
        "batch {batch}: the cap of {RUN_CAP} let one more through"
    );
    for id in &ids {
        run_ok(project, &["credits", "limits", "release", id]);
    }

    // After one clean write of each file, no temporary of a killed writer is left.
    run_ok(project, &as_strs(&set_profile("sentinel", 10, 1000, 1)));
    expected.insert("acme/sentinel".to_owned());
    for stray in strays(project) {
        figures.leftovers.entry(stray).or_insert(batch);
    }
}

#[test]
fn writers_killed_at_random_moments_leave_whole_files_no_temporaries_and_no_held_slots() {
    let mut random = fastrand::Rng::with_seed(seed("crash harness"));
    let project = Project::new();
    let setup = [
        set_profile(PACED, 1_000_000, 1_000_000_000, 64),
        set_profile(RUN_MODEL, 1_000_000, 1_000_000_000, RUN_CAP),
    ];
    for args in &setup {
        run_ok(&project, &as_strs(args));
    }
    let me = std::process::id();
    let id = run_ok(&project, &as_strs(&acquire_args(PACED, me)))
        .trim()
        .to_owned();
    run_ok(&project, &["credits", "limits", "release", &id]);
    prefill_window(&project, 300);
    let builtins = builtin_profiles(&project);
    let mut expected = profiles_on_disk(&project);
    // How long a writer takes here: the slowest of a few `set`s and `acquire`s.
    let writer_time = (0..3)
        .map(|_| {
            let started = Instant::now();
            run_ok(&project, &as_strs(&set_profile("calibrate", 10, 1000, 1)));
            let id = run_ok(&project, &as_strs(&acquire_args(PACED, me)))
                .trim()
                .to_owned();
            let took = started.elapsed() / 2;
            run_ok(&project, &["credits", "limits", "release", &id]);
            took
        })
        .max()
        .unwrap();
    // Eight writers at once on a few cores each take several times longer.
    let kill_window_micros = (writer_time.as_micros() as u64 * 4).max(5_000);
    eprintln!("crash harness: a writer takes about {writer_time:?}; kills land within {kill_window_micros} µs");
    let mut figures = Figures::default();
    let started = Instant::now();
    while started.elapsed() < TIME_BUDGET && figures.batches < MAX_BATCHES {
        one_batch(
            kill_window_micros,
            &project,
            &mut random,
            figures.batches,
            &mut expected,
            &builtins,
            &mut figures,
        );
        figures.batches += 1;
    }
    eprintln!(
        "crash harness: {} batches, {} writers started, {} killed while running, {} succeeded, {} temporaries left, {:.1} s",
        figures.batches,
        figures.started,
        figures.killed,
        figures.succeeded,
        figures.leftovers.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        figures.killed > 0,
        "no writer was killed while running: the harness proved nothing"
    );
    assert!(
        figures.succeeded > 0,
        "no writer finished: the kills all came before any write"
    );
    assert!(
        figures.leftovers.is_empty(),
        "{} temporaries of killed writers survived the next write (issue 9 item 16), first seen after batches: {:?}",
        figures.leftovers.len(),
        figures.leftovers.iter().take(5).collect::<Vec<_>>()
    );
}
