//! A temporary project folder and a command builder that never touches the
//! real home directory: `HOME`, the config folder and `SPECSMITH_CONFIG_DIR`
//! all point inside the fixture.

use std::path::PathBuf;

use assert_cmd::Command;
use tempfile::TempDir;

/// The project's profile file, relative to the project folder.
pub const PROFILES: &str = ".specsmith/model-rate-limits.json";
/// The project's pacing state file, relative to the project folder.
pub const STATE: &str = ".specsmith/model-rate-limit-state.json";

/// `credits limits set` for `provider`/`model` at `rpm`, TPM 1000, target 1.
pub fn set_args<'a>(provider: &'a str, model: &'a str, rpm: &'a str) -> Vec<&'a str> {
    vec![
        "credits",
        "limits",
        "set",
        "--provider",
        provider,
        "--model",
        model,
        "--rpm",
        rpm,
        "--tpm",
        "1000",
        "--target",
        "1",
    ]
}

/// `credits limits acquire` of 100 + 50 tokens for `acme`/`m`, then `extra`.
pub fn acquire_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    args
}

/// `acquire_args(extra)` run in `project`, which must succeed: the reservation id.
pub fn acquire(project: &Project, extra: &[&str]) -> String {
    let output = project.cmd(&acquire_args(extra)).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub struct Project {
    dir: TempDir,
}

impl Project {
    /// An empty project folder with an empty, private user config folder.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("project")).unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        Self { dir }
    }

    /// A project with one profile at target 1, so effective limits are the given ones.
    pub fn with_profile(provider: &str, model: &str, rpm: u64, tpm: u64, concurrency: u32) -> Self {
        let project = Self::new();
        let (rpm, tpm, concurrency) = (rpm.to_string(), tpm.to_string(), concurrency.to_string());
        project
            .cmd(&[
                "credits",
                "limits",
                "set",
                "--provider",
                provider,
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
            ])
            .assert()
            .success();
        project
    }

    /// The project folder.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    /// The user-level config folder (`SPECSMITH_CONFIG_DIR`).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Writes `text` to `relative` below the project folder, creating folders.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Reads `relative` below the project folder.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.root().join(relative)).unwrap()
    }

    /// True when `relative` exists below the project folder.
    pub fn exists(&self, relative: &str) -> bool {
        self.root().join(relative).exists()
    }

    /// `specsmith-rs --project-dir <root> ARGS…`, isolated from the real home.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut command = self.bare_cmd();
        command.arg("--project-dir").arg(self.root()).args(args);
        command
    }

    /// `specsmith-rs` with the isolated environment but no arguments.
    pub fn bare_cmd(&self) -> Command {
        let mut command = Command::cargo_bin("specsmith-rs").unwrap();
        command
            .current_dir(self.root())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("SPECSMITH_CONFIG_DIR", self.config_dir())
            .env("NO_COLOR", "1")
            .env_remove("SPECSMITH_STORE")
            .env_remove("SPECSMITH_STORE_ON_ERROR")
            .env_remove("RUST_BACKTRACE");
        command
    }

    /// Replaces the project path in `text` by `[ROOT]`, for whole-output comparisons.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.root().display().to_string(), "[ROOT]")
    }
}
