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
        /// The project folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The project path exists but is not a folder.
    #[error("the project path `{path}` is not a folder")]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// An `--exclude` pattern is not a valid glob.
    #[error("invalid --exclude glob `{glob}`: {reason}")]
    Exclude {
        /// The glob as given.
        glob: String,
        /// Why it is not valid.
        reason: String,
    },
}
