//! Races between processes on one model: admission is exact every time.

use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fixture::Project;
use crate::harness::{seed, specsmith, status_json};

fn project_with(rpm: u64, tpm: u64, target: &str, concurrency: u32) -> Project {
    let project = Project::new();
    let (rpm, tpm, concurrency) = (rpm.to_string(), tpm.to_string(), concurrency.to_string());
    let output = specsmith(
        &project,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "acme",
            "--model",
            "m",
            "--rpm",
            &rpm,
            "--tpm",
            &tpm,
            "--target",
            target,
            "--concurrency",
            &concurrency,
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

fn acquire_args(input: u64, output: u64, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "credits",
        "limits",
        "acquire",
        "--provider",
        "acme",
        "--model",
        "m",
        "--input-tokens",
        &input.to_string(),
        "--max-output-tokens",
        &output.to_string(),
    ]
    .iter()
    .map(|text| (*text).to_owned())
    .collect();
    args.extend(extra.iter().map(|text| (*text).to_owned()));
    args
}

/// Starts every racer before waiting for any, so they really race.
fn race(project: &Project, racers: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<_> = racers
        .iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            specsmith(project, &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect()
}

fn admitted(output: &Output) -> bool {
    match output.status.code() {
        Some(0) => true,
        Some(75) => false,
        other => panic!(
            "a racer exited {other:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[test]
fn forty_racers_against_an_effective_rpm_of_15_admit_exactly_15() {
    // RPM 30 at target 0.5: effective 15.
    let project = project_with(30, 10_000_000, "0.5", 1000);
    for round in 0..3 {
        if round > 0 {
            let reset = specsmith(&project, &["credits", "limits", "reset-state"])
                .output()
                .unwrap();
            assert!(reset.status.success());
        }
        let racers = vec![acquire_args(10, 10, &["--timeout", "0"]); 40];
        let outputs = race(&project, &racers);
        let mut ids: Vec<String> = outputs
            .iter()
            .filter(|output| admitted(output))
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .collect();
        assert_eq!(ids.len(), 15, "round {round}: admitted {}", ids.len());
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 15, "round {round}: ids are unique");
        let status = status_json(&project, "acme", "m");
        assert_eq!(status["rolling_request_count"], 15, "round {round}");
        assert_eq!(status["in_flight"], 15, "round {round}");
    }
}

#[test]
fn twenty_holders_under_a_cap_of_3_never_hold_more_than_3() {
    let project = Arc::new(project_with(1_000_000, 1_000_000_000, "1", 3));
    // Each holder's interval runs from its acquire's exit to its release's
    // start: inside the time it really holds the slot.
    let intervals = Arc::new(Mutex::new(Vec::new()));
    let holding = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (project, done) = (Arc::clone(&project), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                samples.push(
                    status_json(&project, "acme", "m")["in_flight"]
                        .as_u64()
                        .unwrap(),
                );
            }
            samples
        })
    };
    let holders: Vec<_> = (0..20)
        .map(|_| {
            let (project, intervals, holding, peak) = (
                Arc::clone(&project),
                Arc::clone(&intervals),
                Arc::clone(&holding),
                Arc::clone(&peak),
            );
            std::thread::spawn(move || {
                let args = acquire_args(10, 10, &["--timeout", "90"]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let output = specsmith(&project, &args).output().unwrap();
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let start = Instant::now();
                let now_holding = holding.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now_holding, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
                holding.fetch_sub(1, Ordering::SeqCst);
                let end = Instant::now();
                let id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
                let release = specsmith(&project, &["credits", "limits", "release", &id])
                    .output()
                    .unwrap();
                assert!(
                    release.status.success(),
                    "{}",
                    String::from_utf8_lossy(&release.stderr)
                );
                intervals.lock().unwrap().push((start, end));
            })
        })
        .collect();
    for holder in holders {
        holder.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    eprintln!(
        "cap 3, 20 holders: peak held {}, status samples {} (max {:?})",
        peak.load(Ordering::SeqCst),
        samples.len(),
        samples.iter().max()
    );
    assert_eq!(
        intervals.lock().unwrap().len(),
        20,
        "every holder got through"
    );
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "{} held at once",
        peak.load(Ordering::SeqCst)
    );
    assert!(
        samples.iter().all(|&in_flight| in_flight <= 3),
        "status saw more than 3 in flight: {samples:?}"
    );
    assert_eq!(status_json(&project, "acme", "m")["in_flight"], 0);
}

#[test]
fn racers_with_mixed_estimates_never_put_more_than_the_tpm_in_a_window() {
    let mut random = fastrand::Rng::with_seed(seed("tpm race"));
    // TPM 4000 at target 0.5: effective 2000.
    let project = project_with(1_000_000, 4000, "0.5", 1000);
    for round in 0..3 {
        if round > 0 {
            let reset = specsmith(&project, &["credits", "limits", "reset-state"])
                .output()
                .unwrap();
            assert!(reset.status.success());
        }
        let estimates: Vec<(u64, u64)> = (0..40)
            .map(|_| (random.u64(1..300), random.u64(0..150)))
            .collect();
        let racers: Vec<_> = estimates
            .iter()
            .map(|&(input, output)| acquire_args(input, output, &["--timeout", "0"]))
            .collect();
        let outputs = race(&project, &racers);
        let mut total = 0;
        let mut refused = Vec::new();
        for (output, (input, max_output)) in outputs.iter().zip(&estimates) {
            if admitted(output) {
                total += input + max_output;
            } else {
                refused.push(input + max_output);
            }
        }
        assert!(
            total <= 2000,
            "round {round}: {total} tokens admitted in one window, effective TPM 2000"
        );
        // The window only fills during the race, so a refused racer must not fit even now.
        for estimate in &refused {
            assert!(
                total + estimate > 2000,
                "round {round}: an estimate of {estimate} was refused with {total} of 2000 used"
            );
        }
        let status = status_json(&project, "acme", "m");
        assert_eq!(status["rolling_token_count"], total, "round {round}");
        assert_eq!(
            status["in_flight"].as_u64().unwrap() as usize,
            40 - refused.len(),
            "round {round}"
        );
    }
}

#[test]
fn twenty_run_commands_under_a_cap_of_3_never_run_more_than_3_at_once() {
    let project = project_with(1_000_000, 1_000_000_000, "1", 3);
    let markers = project.root().join("running");
    std::fs::create_dir(&markers).unwrap();
    let counts = project.root().join("counts");
    // Each command marks itself running, counts the marks (its own included),
    // holds for 200 ms, then unmarks: a mark lives inside the reservation.
    let script = r#"touch "$0/$$"; ls "$0" | wc -l >> "$1"; sleep 0.2; rm "$0/$$""#;
    let (markers_text, counts_text) = (markers.display().to_string(), counts.display().to_string());
    let racer: Vec<String> = [
        "credits",
        "limits",
        "run",
        "--provider",
        "acme",
        "--model",
        "m",
        "--input-tokens",
        "1",
        "--max-output-tokens",
        "1",
        "--deadline",
        "90",
        "--",
        "sh",
        "-c",
        script,
        &markers_text,
        &counts_text,
    ]
    .iter()
    .map(|text| (*text).to_owned())
    .collect();
    let outputs = race(&project, &vec![racer; 20]);
    for output in &outputs {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let seen: Vec<u64> = std::fs::read_to_string(&counts)
        .unwrap()
        .lines()
        .map(|line| line.trim().parse().unwrap())
        .collect();
    assert_eq!(seen.len(), 20, "every command ran once");
    assert!(
        seen.iter().all(|&running| running <= 3),
        "more than 3 ran at once: {seen:?}"
    );
    assert_eq!(status_json(&project, "acme", "m")["in_flight"], 0);
}
