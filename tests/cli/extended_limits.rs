//! The limits beyond RPM and TPM: `set --rpd --tpd --itpm --otpm
//! --daily-reset --daily-reset-zone`, the companion file, and how `acquire`
//! and `status` pace and show them.

use predicates::str::{contains, diff, is_empty};
use serde_json::{json, Value};

use crate::fixture::{acquire, acquire_args, Project, PROFILES};
use crate::harness::status_json;

/// The companion file, relative to the project folder.
const COMPANION: &str = ".specsmith/model-rate-limits-extended.json";

fn set(project: &Project, extra: &[&str]) -> assert_cmd::assert::Assert {
    let mut args = vec![
        "credits",
        "limits",
        "set",
        "--provider",
        "acme",
        "--model",
        "m",
        "--rpm",
        "100",
        "--tpm",
        "100000",
        "--target",
        "1",
        "--concurrency",
        "4",
    ];
    args.extend_from_slice(extra);
    project.cmd(&args).assert()
}

#[test]
fn new_limits_go_to_the_companion_file_and_leave_the_profile_file_as_before() {
    let plain = Project::new();
    set(&plain, &[]).success();
    assert!(!plain.exists(COMPANION), "no new limit, no companion file");

    let project = Project::new();
    set(
        &project,
        &[
            "--itpm",
            "30000",
            "--rpd",
            "1000",
            "--daily-reset",
            "00:00",
            "--daily-reset-zone",
            "America/Los_Angeles",
        ],
    )
    .success()
    .stdout(diff(format!(
        "Saved acme/m (RPM 100, TPM 100,000, target 1.00, concurrency 4; effective RPM 100, TPM 100,000; ITPM 30,000, RPD 1,000 (resets 00:00 America/Los_Angeles)) to `{}/.specsmith/model-rate-limits.json` and `model-rate-limits-extended.json`\n",
        project.root().display()
    )));
    assert_eq!(
        project.read(PROFILES),
        plain.read(PROFILES),
        "the profile file is byte for byte what it is without the new limits"
    );
    let companion: Value = serde_json::from_str(&project.read(COMPANION)).unwrap();
    assert_eq!(
        companion,
        json!([{"provider": "acme", "model": "m", "itpm_limit": 30000, "rpd_limit": 1000,
                "daily_reset": "00:00 America/Los_Angeles"}])
    );

    // A later `set` without the flags keeps them; 0 removes one.
    set(&project, &["--itpm", "0"]).success();
    let companion: Value = serde_json::from_str(&project.read(COMPANION)).unwrap();
    assert_eq!(companion[0].get("itpm_limit"), None);
    assert_eq!(companion[0]["rpd_limit"], 1000);
    let listed = project
        .cmd(&["credits", "limits", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["rpd_limit"], 1000);
    assert_eq!(listed[0]["daily_reset"], "00:00 America/Los_Angeles");

    // With no new limit left the companion file goes.
    set(&project, &["--rpd", "0"]).success();
    assert!(!project.exists(COMPANION));
    assert_eq!(project.read(PROFILES), plain.read(PROFILES));
}

#[test]
fn bad_daily_reset_flags_are_refused_naming_the_flag_and_write_nothing() {
    let project = Project::new();
    set(&project, &["--daily-reset", "25:00"])
        .code(2)
        .stdout(is_empty())
        .stderr(contains(
            "invalid value '25:00' for '--daily-reset <HH:MM|rolling>': must be `rolling` or a time of day HH:MM",
        ));
    set(
        &project,
        &[
            "--daily-reset",
            "00:00",
            "--daily-reset-zone",
            "Mars/Olympus",
        ],
    )
    .code(2)
    .stderr(contains(
        "for '--daily-reset-zone <ZONE>': must be an IANA time-zone name",
    ));
    set(
        &project,
        &["--rpd", "5", "--daily-reset", "rolling", "--daily-reset-zone", "UTC"],
    )
    .code(2)
    .stderr(diff(
        "error: --daily-reset-zone: a rolling daily window has no time zone (give --daily-reset HH:MM)\n",
    ));
    assert!(!project.exists(PROFILES) && !project.exists(COMPANION));
}

#[test]
fn a_broken_companion_file_is_an_error_naming_it() {
    let project = Project::new();
    set(&project, &["--otpm", "500"]).success();
    project.write(
        COMPANION,
        r#"[{"provider": "acme", "model": "m", "otpm_limit": 0}]"#,
    );
    project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .code(2)
        .stderr(contains(
            "model-rate-limits-extended.json`: profile `acme/m`: otpm_limit must be greater than 0",
        ));
}

#[test]
fn a_spent_daily_budget_refuses_at_once_with_the_reset_time_and_status_shows_it() {
    let project = Project::new();
    set(&project, &["--rpd", "1", "--otpm", "400"]).success();
    acquire(&project, &[]);
    let started = std::time::Instant::now();
    project
        .cmd(&acquire_args(&["--timeout", "30"]))
        .assert()
        .code(75)
        .stdout(is_empty())
        .stderr(contains(
            "waiting for the requests-per-day budget of `acme/m`: it frees in 23 h 59 min, at 20",
        ));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "refused at once, not after the 30 s timeout"
    );
    let status = status_json(&project, "acme", "m");
    let budgets = status["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), 2);
    assert_eq!(budgets[0]["budget"], "output_tokens_per_minute");
    assert_eq!(budgets[0]["used"], 50);
    assert_eq!(budgets[0]["effective_limit"], 400);
    assert_eq!(budgets[1]["budget"], "requests_per_day");
    assert_eq!(
        (budgets[1]["used"].as_u64(), budgets[1]["limit"].as_u64()),
        (Some(1), Some(1))
    );
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .success()
        .stdout(contains(
            "Budget: acme/m RPD 1 of 1 requests per day (profile limit 1; frees at 20",
        ));
    // An output estimate over the OTPM can never be admitted.
    project
        .cmd(&[
            "credits",
            "limits",
            "acquire",
            "--provider",
            "acme",
            "--model",
            "m",
            "--input-tokens",
            "1",
            "--max-output-tokens",
            "401",
        ])
        .assert()
        .code(2)
        .stderr(contains(
            "needs 401 of its output tokens per minute, more than the effective limit of 400",
        ));
}
