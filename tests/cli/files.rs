//! Files and permissions: modes, symbolic links, read-only files and
//! folders, commands that fail without creating anything, and the
//! temporaries of killed writers (issue 9, items 12 to 16).
//!
//! Tests run as root in CI containers, and root ignores permission bits. So
//! the read-only tests never rely on the system refusing a write: they check
//! that nothing was written at all (bytes, modes and the folder listing are
//! the same afterwards), which holds for root and for anyone else, or they
//! use a file with no write bit for anyone, which specsmith itself refuses.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use predicates::prelude::*;

use crate::fixture::{set_args, Project, PROFILES, STATE};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every entry below `dir` with its mode and content, to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let metadata = path.symlink_metadata().unwrap();
            let bytes = if metadata.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            if metadata.is_dir() {
                pending.push(path.clone());
            }
            entries.push((path, metadata.permissions().mode(), bytes));
        }
    }
    entries.sort();
    entries
}

/// Runs the binary under `umask` (set by a shell, since std cannot).
fn under_umask(project: &Project, umask: &str, args: &[&str]) -> std::process::Output {
    let binary = assert_cmd::cargo::cargo_bin("specsmith-rs");
    StdCommand::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(binary)
        .arg("--project-dir")
        .arg(project.root())
        .args(args)
        .env("HOME", project.config_dir())
        .env("SPECSMITH_CONFIG_DIR", project.config_dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn a_new_file_follows_the_umask_and_an_existing_one_keeps_its_mode() {
    for (umask, expected) in [("027", 0o640), ("002", 0o664), ("077", 0o600)] {
        let project = Project::new();
        let output = under_umask(&project, umask, &set_args("acme", "m", "10"));
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            mode(&project.root().join(PROFILES)),
            expected,
            "umask {umask}"
        );
    }
    // A shared project: the file was made group-writable on purpose.
    let project = Project::new();
    project.cmd(&set_args("acme", "m", "10")).assert().success();
    let profiles = project.root().join(PROFILES);
    chmod(&profiles, 0o664);
    let output = under_umask(&project, "077", &set_args("acme", "n", "10"));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(mode(&profiles), 0o664);
    assert!(project.read(PROFILES).contains("\"n\""));
}

#[test]
fn a_symlinked_profile_file_is_written_through_to_its_target() {
    let project = Project::new();
    let shared = project.config_dir().join("team");
    std::fs::create_dir(&shared).unwrap();
    let target = shared.join("profiles.json");
    std::fs::write(&target, "[]\n").unwrap();
    std::fs::create_dir(project.root().join(".specsmith")).unwrap();
    let link = project.root().join(PROFILES);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    project.cmd(&set_args("acme", "m", "10")).assert().success();
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(written.contains("\"acme\""), "{written}");
    let leftovers: Vec<_> = std::fs::read_dir(&shared)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_read_only_profile_file_is_refused_with_its_name_and_left_alone() {
    let project = Project::new();
    project.cmd(&set_args("acme", "m", "10")).assert().success();
    let profiles = project.root().join(PROFILES);
    // No write bit for anyone: refused by specsmith itself, root included.
    chmod(&profiles, 0o444);
    let before = std::fs::read(&profiles).unwrap();
    for args in [
        set_args("acme", "n", "10"),
        vec![
            "credits",
            "limits",
            "remove",
            "--provider",
            "acme",
            "--model",
            "m",
        ],
        vec!["credits", "limits", "defaults", "--install"],
    ] {
        let assert = project.cmd(&args).assert().code(2);
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert_eq!(
            project.redact(&stderr).lines().count(),
            1,
            "{args:?}: {stderr}"
        );
        assert!(
            project
                .redact(&stderr)
                .contains("`[ROOT]/.specsmith/model-rate-limits.json` is read-only"),
            "{args:?}: {stderr}"
        );
        assert_eq!(std::fs::read(&profiles).unwrap(), before);
        assert_eq!(mode(&profiles), 0o444);
    }
}

/// A project whose only profile is user-level, so `.specsmith/` does not exist.
fn project_without_folder() -> Project {
    let project = Project::new();
    std::fs::write(
        project.config_dir().join("model-rate-limits.json"),
        r#"[{"provider":"acme","model":"m","rpm_limit":10,"tpm_limit":1000,"utilization_target":1.0,"concurrency_cap":1}]"#,
    )
    .unwrap();
    project
}

#[test]
fn a_failing_command_creates_nothing() {
    let project = project_without_folder();
    let failing: [&[&str]; 5] = [
        &[
            "credits",
            "limits",
            "record",
            "rsv-feedfeedfeedfeed",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
        ],
        &[
            "credits",
            "limits",
            "record",
            "rsv-feedfeedfeedfeed",
            "--rate-limited",
        ],
        &["credits", "limits", "release", "rsv-feedfeedfeedfeed"],
        // Estimate 2,000 > effective TPM 1,000: can never fit.
        &[
            "credits",
            "limits",
            "acquire",
            "--provider",
            "acme",
            "--model",
            "m",
            "--input-tokens",
            "1000",
            "--max-output-tokens",
            "1000",
        ],
        &[
            "credits",
            "limits",
            "remove",
            "--provider",
            "acme",
            "--model",
            "m",
        ],
    ];
    for args in failing {
        project.cmd(args).assert().code(2).stdout("");
        assert!(
            !project.exists(".specsmith"),
            "{args:?} created `.specsmith/`"
        );
    }
    // Reading commands create nothing either.
    for args in [
        &["credits", "limits", "status"][..],
        &["credits", "limits", "list", "--all"][..],
        &[
            "credits",
            "limits",
            "status",
            "--provider",
            "acme",
            "--model",
            "m",
        ][..],
    ] {
        project.cmd(args).assert().success();
        assert!(!project.exists(".specsmith"), "{args:?}");
    }
    // A command that succeeds still creates what it needs.
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
            "1",
        ])
        .assert()
        .success();
    assert!(project.exists(STATE));
}

/// A reservation held by a process that then died: `status` must show it
/// as reclaimed without writing that into the file.
fn state_with_a_dead_owner(project: &Project) {
    let mut holder = StdCommand::new("sleep").arg("30").spawn().unwrap();
    let pid = holder.id().to_string();
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
            "100",
            "--max-output-tokens",
            "50",
            "--owner-pid",
            &pid,
        ])
        .assert()
        .success();
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
fn reading_commands_work_on_a_read_only_project_and_write_nothing() {
    let project = Project::with_profile("acme", "m", 10, 1000, 2);
    state_with_a_dead_owner(&project);
    let folder = project.root().join(".specsmith");
    for file in std::fs::read_dir(&folder).unwrap() {
        chmod(&file.unwrap().path(), 0o444);
    }
    chmod(&folder, 0o555);
    let before = snapshot(&project.root());
    let status = project
        .cmd(&[
            "credits",
            "limits",
            "status",
            "--provider",
            "acme",
            "--model",
            "m",
            "--json",
        ])
        .assert()
        .success();
    let status: serde_json::Value = serde_json::from_slice(&status.get_output().stdout).unwrap();
    assert_eq!(status["rolling_request_count"], 1);
    assert_eq!(status["rolling_token_count"], 0, "and its unused estimate");
    assert_eq!(
        status["in_flight"], 0,
        "the dead owner's slot shows as free"
    );
    project
        .cmd(&["credits", "limits", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            " acme       m           1/10   0/1,000           0   2/2\n",
        ));
    project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("acme"));
    project
        .cmd(&["credits", "limits", "list", "--all", "--json"])
        .assert()
        .success();
    assert_eq!(snapshot(&project.root()), before, "a reading command wrote");
    chmod(&folder, 0o755);
}

/// A temporary named as a writer on this host would name it.
fn temporary_of(project: &Project, pid: u32) -> PathBuf {
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = project
        .root()
        .join(format!(".specsmith/.specsmith-{host}-{pid}-0-Xy12Zw.tmp"));
    std::fs::write(&path, "half a file").unwrap();
    path
}

#[cfg(target_os = "linux")]
#[test]
fn the_next_write_removes_killed_writers_temporaries_but_not_a_live_ones() {
    let project = Project::new();
    project.cmd(&set_args("acme", "m", "10")).assert().success();
    let mut dead = StdCommand::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let mut live = StdCommand::new("sleep").arg("30").spawn().unwrap();
    let killed = temporary_of(&project, dead_pid);
    let in_progress = temporary_of(&project, live.id());
    project.cmd(&set_args("acme", "n", "10")).assert().success();
    assert!(!killed.exists(), "a dead writer's temporary stays");
    assert!(
        in_progress.exists(),
        "a live writer's temporary was removed"
    );
    live.kill().unwrap();
    live.wait().unwrap();
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
            "1",
        ])
        .assert()
        .success();
    assert!(
        !in_progress.exists(),
        "the state write cleans the shared folder too"
    );
}
