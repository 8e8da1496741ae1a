//! Where specsmith keeps its files: the project's `.specsmith/` folder and the
//! user-level configuration folder.

use std::path::{Path, PathBuf};

/// The project folder that holds specsmith's per-project files.
pub const STATE_DIR: &str = ".specsmith";
/// The profile file, in the format Python specsmith writes.
pub const PROFILES_FILE: &str = "model-rate-limits.json";
/// The runtime pacing state shared by every process of a project.
pub const STATE_FILE: &str = "model-rate-limit-state.json";
/// Environment variable that replaces the user-level configuration folder
/// (`<config dir>/specsmith`), so tests and sandboxes never touch a real home.
pub const CONFIG_DIR_ENV: &str = "SPECSMITH_CONFIG_DIR";

/// The files of one project.
#[derive(Debug, Clone)]
pub struct ProjectPaths {
    root: PathBuf,
}

impl ProjectPaths {
    /// Paths below the project folder `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The project folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.specsmith/` below the project folder.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    /// `.specsmith/model-rate-limits.json`.
    pub fn profiles_file(&self) -> PathBuf {
        self.state_dir().join(PROFILES_FILE)
    }

    /// `.specsmith/model-rate-limit-state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir().join(STATE_FILE)
    }
}

/// The user-level folder: `$SPECSMITH_CONFIG_DIR` when set and not empty, else
/// `<config dir>/specsmith` (for example `~/.config/specsmith` on Linux).
/// `None` when the platform has no configuration folder.
pub fn user_config_dir() -> Option<PathBuf> {
    match std::env::var_os(CONFIG_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::config_dir().map(|dir| dir.join("specsmith")),
    }
}

/// The user-level profile file, below [`user_config_dir`].
pub fn user_profiles_file() -> Option<PathBuf> {
    user_config_dir().map(|dir| dir.join(PROFILES_FILE))
}
