//! Profile files shared with the real Python specsmith 0.11.7, both ways:
//! what it writes loads in ours with the same limits, what we write it reads
//! without error and with the same limits, and the fields its later releases
//! add survive our rewrites. Skipped with a message when Python specsmith is
//! missing, except under `CI=true` (tests/support/python_specsmith.rs).

use std::path::PathBuf;

use serde_json::Value;

use crate::fixture::{Project, PROFILES};
use crate::python_specsmith::{require_python_specsmith, PythonSpecsmith};

/// One profile's limits as both implementations see them.
#[derive(Debug, Clone, PartialEq)]
struct Limits {
    rpm: u64,
    tpm: u64,
    target: String,
    concurrency: u64,
}

fn home(project: &Project) -> PathBuf {
    project.root().parent().unwrap().to_owned()
}

fn python(project: &Project, specsmith: &PythonSpecsmith, args: &[&str]) -> String {
    let root = project.root();
    let mut full = args.to_vec();
    full.extend(["--project-dir", root.to_str().unwrap()]);
    let output = specsmith.cmd(&home(project), &full).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python specsmith {args:?} failed: {stdout}{stderr}"
    );
    assert!(
        !stderr.contains("Traceback"),
        "python specsmith {args:?}: {stderr}"
    );
    stdout
}

fn ours(project: &Project, args: &[&str]) -> String {
    let output = project.cmd(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `provider/model` → limits, from Python's `credits limits list` lines
/// (`  openai/gpt-4o RPM=500 TPM=30000 target=0.80 concurrency=4`).
fn python_list(project: &Project, specsmith: &PythonSpecsmith) -> Vec<(String, Limits)> {
    let mut list: Vec<(String, Limits)> =
        python(project, specsmith, &["credits", "limits", "list"])
            .lines()
            .filter(|line| line.contains("RPM="))
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let field = |name: &str| {
                    words
                        .iter()
                        .find_map(|word| word.strip_prefix(name))
                        .unwrap_or_else(|| panic!("no {name} in `{line}`"))
                        .to_owned()
                };
                (
                    words[0].to_owned(),
                    Limits {
                        rpm: field("RPM=").parse().unwrap(),
                        tpm: field("TPM=").parse().unwrap(),
                        target: field("target="),
                        concurrency: field("concurrency=").parse().unwrap(),
                    },
                )
            })
            .collect();
    sort(&mut list);
    list
}

/// Our `list --json`, with targets written as Python prints them (`0.70`).
fn our_list(project: &Project) -> Vec<(String, Limits)> {
    let rows: Value =
        serde_json::from_str(&ours(project, &["credits", "limits", "list", "--json"])).unwrap();
    let mut list: Vec<(String, Limits)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                format!(
                    "{}/{}",
                    row["provider"].as_str().unwrap(),
                    row["model"].as_str().unwrap()
                ),
                Limits {
                    rpm: row["rpm_limit"].as_u64().unwrap(),
                    tpm: row["tpm_limit"].as_u64().unwrap(),
                    target: format!("{:.2}", row["utilization_target"].as_f64().unwrap()),
                    concurrency: row["concurrency_cap"].as_u64().unwrap(),
                },
            )
        })
        .collect();
    sort(&mut list);
    list
}

/// By (provider, model), as Python's `list` orders them.
fn sort(list: &mut [(String, Limits)]) {
    list.sort_by(|a, b| a.0.split_once('/').cmp(&b.0.split_once('/')));
}

/// The effective (RPM, TPM) Python's `status` shows:
/// `  RPM: 0 / 400 (limit 500, target 400)` and `  TPM: 0 / 24,000 (limit 30,000)`.
fn python_effective(project: &Project, specsmith: &PythonSpecsmith, label: &str) -> (u64, u64) {
    let (provider, model) = label.split_once('/').unwrap();
    let text = python(
        project,
        specsmith,
        &[
            "credits",
            "limits",
            "status",
            "--provider",
            provider,
            "--model",
            model,
        ],
    );
    let after_slash = |prefix: &str| -> u64 {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {text}"));
        let value = line.split(" / ").nth(1).unwrap().split(' ').next().unwrap();
        value.replace(',', "").parse().unwrap()
    };
    (after_slash("RPM:"), after_slash("TPM:"))
}

/// The effective (RPM, TPM) our `status --json` shows.
fn our_effective(project: &Project, label: &str) -> (u64, u64) {
    let (provider, model) = label.split_once('/').unwrap();
    let status: Value = serde_json::from_str(&ours(
        project,
        &[
            "credits",
            "limits",
            "status",
            "--provider",
            provider,
            "--model",
            model,
            "--json",
        ],
    ))
    .unwrap();
    (
        status["effective_rpm_limit"].as_u64().unwrap(),
        status["effective_tpm_limit"].as_u64().unwrap(),
    )
}

/// floor(limit × target) in exact decimal arithmetic, at least 1, and
/// whether the product is whole (where Python's binary floor may come out
/// one lower: 90,000 × 0.7 gives it 62,999).
fn exact_effective(limit: u64, target: &str) -> (u64, bool) {
    let (whole, fraction) = target.split_once('.').unwrap_or((target, ""));
    let fraction = fraction.trim_end_matches('0');
    let denominator = 10u128.pow(fraction.len() as u32);
    let numerator: u128 = format!("{whole}{fraction}").parse().unwrap();
    let product = u128::from(limit) * numerator;
    let floored = (product / denominator).max(1).min(u128::from(limit));
    (floored as u64, product.is_multiple_of(denominator))
}

/// Ours is the exact figure; Python's is too, or one lower where its binary
/// floor loses a whole product (docs/cli.md says so).
fn assert_same_effective(
    project: &Project,
    specsmith: &PythonSpecsmith,
    label: &str,
    target: &str,
) {
    let file: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    let (provider, model) = label.split_once('/').unwrap();
    let entry = file
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|entry| entry["provider"] == provider && entry["model"] == model)
        .unwrap_or_else(|| panic!("{label} not in the file"));
    let ours = our_effective(project, label);
    let theirs = python_effective(project, specsmith, label);
    for (what, limit, our_value, their_value) in [
        (
            "RPM",
            entry["rpm_limit"].as_u64().unwrap(),
            ours.0,
            theirs.0,
        ),
        (
            "TPM",
            entry["tpm_limit"].as_u64().unwrap(),
            ours.1,
            theirs.1,
        ),
    ] {
        let (exact, whole) = exact_effective(limit, target);
        assert_eq!(our_value, exact, "{label} {what}: ours");
        assert!(
            their_value == exact || (whole && their_value + 1 == exact),
            "{label} {what}: Python says {their_value}, exact is {exact}"
        );
    }
}

#[test]
fn exact_effective_is_decimal_floor() {
    assert_eq!(exact_effective(90_000, "0.7"), (63_000, true));
    assert_eq!(exact_effective(360, "0.7"), (252, true));
    assert_eq!(exact_effective(5, "0.7"), (3, false));
    assert_eq!(exact_effective(1, "0.5"), (1, false));
    assert_eq!(exact_effective(500, "1.0"), (500, true));
}

#[test]
fn a_file_python_writes_loads_in_ours_with_the_same_limits() {
    let Some(specsmith) =
        require_python_specsmith("a_file_python_writes_loads_in_ours_with_the_same_limits")
    else {
        return;
    };
    let project = Project::new();
    python(
        &project,
        &specsmith,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "OpenAI",
            "--model",
            "gpt-4o",
            "--rpm",
            "500",
            "--tpm",
            "30000",
            "--target",
            "0.8",
            "--concurrency",
            "4",
        ],
    );
    python(
        &project,
        &specsmith,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "openai",
            "--model",
            "gpt-3.5-turbo",
            "--rpm",
            "360",
            "--tpm",
            "90000",
        ],
    );
    python(
        &project,
        &specsmith,
        &["credits", "limits", "defaults", "--install"],
    );
    let listed = our_list(&project);
    assert_eq!(listed, python_list(&project, &specsmith));
    assert_eq!(listed.len(), 21, "{listed:?}");
    // Python writes its later fields with their defaults; we keep and show them.
    let rows: Value =
        serde_json::from_str(&ours(&project, &["credits", "limits", "list", "--json"])).unwrap();
    let gpt4o = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["model"] == "gpt-4o")
        .unwrap();
    assert_eq!(gpt4o["concurrency_by_bucket"], serde_json::json!({}));
    assert_eq!(gpt4o["tpm_thinking_budget"], 0);
    for (label, limits) in &listed {
        assert_same_effective(&project, &specsmith, label, &limits.target);
    }
}

#[test]
fn files_we_write_are_read_by_python_with_the_same_limits() {
    let Some(specsmith) =
        require_python_specsmith("files_we_write_are_read_by_python_with_the_same_limits")
    else {
        return;
    };
    let project = Project::new();
    ours(&project, &["credits", "limits", "defaults", "--install"]);
    ours(
        &project,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "acme",
            "--model",
            "big",
            "--rpm",
            "120",
            "--tpm",
            "45000",
            "--target",
            "0.85",
            "--concurrency",
            "3",
        ],
    );
    ours(
        &project,
        &[
            "credits",
            "limits",
            "learn",
            "--provider",
            "acme",
            "--model",
            "big",
            "--header",
            "x-ratelimit-limit-requests: 90",
            "--header",
            "x-ratelimit-limit-tokens: 40000",
        ],
    );
    let theirs = python_list(&project, &specsmith);
    let listed = our_list(&project);
    assert_eq!(theirs, listed);
    assert_eq!(listed.len(), 22);
    assert!(listed.iter().any(|(label, limits)| label == "acme/big"
        && (limits.rpm, limits.tpm, limits.concurrency) == (90, 40_000, 3)));
    for (label, limits) in &listed {
        assert_same_effective(&project, &specsmith, label, &limits.target);
    }
}

#[test]
fn fields_of_later_python_releases_survive_our_rewrites() {
    let Some(specsmith) =
        require_python_specsmith("fields_of_later_python_releases_survive_our_rewrites")
    else {
        return;
    };
    let project = Project::new();
    python(
        &project,
        &specsmith,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "google",
            "--model",
            "gemini-2.5-pro",
            "--rpm",
            "150",
            "--tpm",
            "2000000",
            "--concurrency",
            "6",
        ],
    );
    // Give the fields values, as a later release's user would.
    let mut file: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    file[0]["concurrency_by_bucket"] = serde_json::json!({"reasoning": 1, "background": 4});
    file[0]["tpm_thinking_budget"] = serde_json::json!(8192);
    project.write(PROFILES, &serde_json::to_string_pretty(&file).unwrap());

    ours(
        &project,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "google",
            "--model",
            "gemini-2.5-pro",
            "--rpm",
            "300",
            "--tpm",
            "4000000",
            "--concurrency",
            "6",
        ],
    );
    ours(
        &project,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "openai",
            "--model",
            "gpt-4o",
            "--rpm",
            "10",
            "--tpm",
            "1000",
        ],
    );
    ours(&project, &["credits", "limits", "defaults", "--install"]);
    let file: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    let gemini = &file[0];
    assert_eq!(gemini["model"], "gemini-2.5-pro");
    assert_eq!(gemini["rpm_limit"], 300);
    assert_eq!(
        gemini["concurrency_by_bucket"],
        serde_json::json!({"reasoning": 1, "background": 4})
    );
    assert_eq!(gemini["tpm_thinking_budget"], 8192);
    // Python reads the rewritten file, fields and all, with our numbers.
    let theirs = python_list(&project, &specsmith);
    let gemini = theirs
        .iter()
        .find(|(label, _)| label == "google/gemini-2.5-pro")
        .unwrap();
    assert_eq!(
        (gemini.1.rpm, gemini.1.tpm, gemini.1.concurrency),
        (300, 4_000_000, 6)
    );
    assert_eq!(theirs, our_list(&project));
    assert_same_effective(&project, &specsmith, "google/gemini-2.5-pro", "0.70");
}

#[test]
fn limits_python_does_not_know_stay_out_of_its_way_both_directions() {
    let Some(specsmith) =
        require_python_specsmith("limits_python_does_not_know_stay_out_of_its_way_both_directions")
    else {
        return;
    };
    let project = Project::new();
    let set = |rpm: &str, extra: &[&str]| {
        let mut args = vec![
            "credits",
            "limits",
            "set",
            "--provider",
            "acme",
            "--model",
            "big",
            "--rpm",
            rpm,
            "--tpm",
            "45000",
            "--concurrency",
            "2",
        ];
        args.extend_from_slice(extra);
        ours(&project, &args);
    };
    set(
        "120",
        &[
            "--itpm",
            "30000",
            "--otpm",
            "8000",
            "--rpd",
            "500",
            "--daily-reset",
            "00:00",
            "--daily-reset-zone",
            "America/Los_Angeles",
        ],
    );
    let file: Value = serde_json::from_str(&project.read(PROFILES)).unwrap();
    let known = [
        "provider",
        "model",
        "rpm_limit",
        "tpm_limit",
        "utilization_target",
        "concurrency_cap",
        "source",
    ];
    for key in file[0].as_object().unwrap().keys() {
        assert!(
            known.contains(&key.as_str()),
            "`{key}` would crash Python specsmith"
        );
    }
    // Python reads our files, new limits and all, with our numbers.
    assert_eq!(python_list(&project, &specsmith), our_list(&project));
    // Python rewrites the profile: the new limits stay joined to it.
    python(
        &project,
        &specsmith,
        &[
            "credits",
            "limits",
            "set",
            "--provider",
            "acme",
            "--model",
            "big",
            "--rpm",
            "200",
            "--tpm",
            "50000",
            "--concurrency",
            "3",
        ],
    );
    let listed: Value =
        serde_json::from_str(&ours(&project, &["credits", "limits", "list", "--json"])).unwrap();
    let big = &listed[0];
    assert_eq!(
        (big["rpm_limit"].as_u64(), big["tpm_limit"].as_u64()),
        (Some(200), Some(50_000))
    );
    assert_eq!(
        (big["itpm_limit"].as_u64(), big["otpm_limit"].as_u64()),
        (Some(30_000), Some(8_000))
    );
    assert_eq!(big["rpd_limit"], 500);
    assert_eq!(big["daily_reset"], "00:00 America/Los_Angeles");
    assert_eq!(python_list(&project, &specsmith), our_list(&project));
}
