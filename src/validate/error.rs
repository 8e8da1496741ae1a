//! What can stop `validate` from producing a report at all.
//!
//! A file that cannot be read is not one of these: it becomes a [`super::Note`]
//! and the run goes on, as ripgrep does.

use std::io;
use std::path::PathBuf;

/// A failure that prevents `validate` from running.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The project folder does not exist or cannot be read.
    #[error("cannot read the project folder `{path}`")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The project path exists but is not a folder.
    #[error("the project path `{path}` is not a folder")]
    NotAFolder { path: PathBuf },
    /// An `--exclude` pattern is not a valid glob.
    #[error("invalid --exclude glob `{glob}`: {reason}")]
    Exclude { glob: String, reason: String },
}
