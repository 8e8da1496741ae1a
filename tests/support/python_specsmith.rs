//! The real Python specsmith 0.11.7, for the compatibility tests.
//!
//! `.ci/run` installs it into a venv (`target/ci-venv`) and exports its path
//! as `SPECSMITH_PY`; without the variable, that venv is looked for where
//! `.ci/run` puts it. [`require_python_specsmith`] checks it runs and is
//! 0.11.7: when it is not, a test skips with a `SKIPPED …` message on
//! stderr, except under `CI=true`, where it fails.
//!
//! Every run is bounded ([`RUN_TIMEOUT`]), has its home in the test's temp
//! folder, its update checks off, and its proxies pointed at a closed
//! loopback port, so nothing it tries reaches beyond the machine.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

/// The release the compatibility promise is about.
pub const VERSION: &str = "0.11.7";
/// Longest one Python specsmith command may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A Python specsmith executable that answered `--version` with [`VERSION`].
pub struct PythonSpecsmith {
    executable: PathBuf,
}

impl PythonSpecsmith {
    /// `specsmith ARGS…` with `home` as its home and working folder.
    pub fn cmd(&self, home: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.executable);
        command
            .args(args)
            .current_dir(home)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("xdg"))
            // The release refuses to run outside pipx unless told this is a test.
            .env("SPECSMITH_ALLOW_NON_PIPX", "1")
            .env("SPECSMITH_NO_UPDATE_CHECK", "1")
            .env("SPECSMITH_NO_AUTO_UPDATE", "1")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .env_remove("NO_PROXY")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .timeout(RUN_TIMEOUT);
        command
    }
}

/// The Python specsmith to test against, or `None` (after saying why) when
/// it is missing locally. Under `CI=true` a missing or wrong one panics.
pub fn require_python_specsmith(test: &str) -> Option<PythonSpecsmith> {
    let executable = std::env::var_os("SPECSMITH_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv/bin/specsmith")
        });
    let candidate = PythonSpecsmith { executable };
    let home = tempfile::tempdir().expect("temp dir");
    let problem = match candidate.cmd(home.path(), &["--version"]).output() {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout);
            if text.trim_end().ends_with(&format!("version {VERSION}")) {
                return Some(candidate);
            }
            format!(
                "`{}` is not {VERSION}: {}",
                candidate.executable.display(),
                text.trim()
            )
        }
        Ok(output) => format!(
            "`{} --version` failed: {}",
            candidate.executable.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => format!("`{}` does not run: {error}", candidate.executable.display()),
    };
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{test}: {problem}; CI must install Python specsmith {VERSION} (.ci/run sets SPECSMITH_PY)");
    }
    // Straight to the stream: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {problem} (run .ci/run, or set SPECSMITH_PY to a specsmith {VERSION})"
    );
    None
}
