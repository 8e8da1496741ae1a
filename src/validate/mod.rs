//! `validate`: specsmith's governance checks and the H11/H23 loop scanners.
//!
//! [`run`] walks a project, runs every check and returns a [`Report`]: the
//! check results (as Python specsmith's `std_results`), the sorted findings,
//! and notes about files it skipped. Rendering is [`report`]'s business.

pub mod diagnostic;
pub mod error;
pub mod governance;
pub mod loops;
pub mod report;
pub mod rules;
mod suppression;
mod walk;

use std::path::PathBuf;

use serde::Serialize;

pub use diagnostic::{Finding, FindingKind, Rule};
pub use error::ValidateError;

/// Scripts bigger than this (1 MiB) are not scanned but reported as `unscanned`
/// findings: no hand-written script is that long, and a skipped file must not pass.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;

/// What to validate and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project folder.
    pub root: PathBuf,
    /// Gitignore-style globs, relative to `root`, of files and folders to leave out of the scan.
    pub excludes: Vec<String>,
    /// Scripts bigger than this many bytes are `unscanned` findings instead of being scanned.
    pub max_file_size: u64,
}

impl Options {
    /// Validates `root` with no excludes and the default size limit.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            excludes: Vec::new(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// The outcome of one check, as Python specsmith's `std_results` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Stable check name: `scaffold-yml`, `agents-refs` (or `agents-ref:<target>`
    /// per broken link), `req-unique`, `arch-req-refs`, `blocking-loops`, `bare-sleep`.
    pub name: String,
    /// Whether the check passed.
    pub passed: bool,
    /// What was found, in one line.
    pub message: String,
    /// The file the failure is about, relative and `/`-separated, when there is one.
    #[serde(skip)]
    pub file: Option<String>,
}

/// Why a file was not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteKind {
    /// It holds a NUL byte in its first KiB: not a script.
    Binary,
    /// It (or its folder) could not be read: the run is incomplete.
    Unreadable,
}

/// A file `validate` skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Path relative to the project folder, `/`-separated (empty when unknown).
    pub path: String,
    /// Why it was skipped.
    pub kind: NoteKind,
    /// The reason in words.
    pub message: String,
}

impl Note {
    /// True when the note means the run could not check everything.
    pub fn is_error(&self) -> bool {
        self.kind == NoteKind::Unreadable
    }
}

/// Everything one `validate` run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One result per check (more for `agents-ref:` failures), in check order.
    pub results: Vec<CheckResult>,
    /// Loop findings, sorted by path, line, column and rule; suppressed ones included.
    pub findings: Vec<Finding>,
    /// Skipped files, sorted by path.
    pub notes: Vec<Note>,
    /// Scripts recognised and checked.
    pub scripts_checked: usize,
}

impl Report {
    /// True when every check passed (suppressed findings do not count).
    pub fn ok(&self) -> bool {
        self.results.iter().all(|result| result.passed)
    }

    /// True when some file could not be read, so the run is incomplete.
    pub fn has_errors(&self) -> bool {
        self.notes.iter().any(Note::is_error)
    }

    /// Checks that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|result| result.passed).count()
    }

    /// Checks that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Findings not silenced by a `specsmith: allow` comment.
    pub fn active_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|finding| !finding.suppressed)
    }
}

/// Runs every check on the project at `options.root`.
///
/// Unreadable or undecodable files never stop the run: they become notes
/// ([`Report::has_errors`] tells whether any was unreadable).
pub fn run(options: &Options) -> Result<Report, ValidateError> {
    run_with(options, loops::scan_with)
}

/// [`run`] with the loop scanner passed in, so tests can drive the walk,
/// suppression and reporting with findings of their choosing.
pub(crate) fn run_with(options: &Options, scanner: walk::Scanner) -> Result<Report, ValidateError> {
    let root = &options.root;
    match std::fs::metadata(root) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Err(ValidateError::NotAFolder { path: root.clone() }),
        Err(source) => {
            return Err(ValidateError::Root {
                path: root.clone(),
                source,
            })
        }
    }
    let tree = walk::scan_tree(root, &options.excludes, options.max_file_size, scanner)?;
    let mut notes = tree.notes;
    let mut results = governance::check(root, &mut notes);

    let mut findings = tree.findings;
    findings.sort_by(|left, right| {
        (&left.path, left.line, left.column, left.rule).cmp(&(
            &right.path,
            right.line,
            right.column,
            right.rule,
        ))
    });
    results.push(loop_summary(Rule::H11, &findings, tree.scripts_checked));
    results.push(loop_summary(Rule::H23, &findings, tree.scripts_checked));
    notes.sort_by(|left, right| (&left.path, &left.message).cmp(&(&right.path, &right.message)));

    Ok(Report {
        results,
        findings,
        notes,
        scripts_checked: tree.scripts_checked,
    })
}

/// The `blocking-loops` (H11) or `bare-sleep` (H23) result: passed when no
/// unsuppressed finding of that rule remains.
fn loop_summary(rule: Rule, findings: &[Finding], scripts_checked: usize) -> CheckResult {
    let of_rule = findings.iter().filter(|finding| finding.rule == rule);
    let active = of_rule
        .clone()
        .filter(|finding| !finding.suppressed)
        .count();
    let suppressed = of_rule.count() - active;
    let (name, what) = match rule {
        Rule::H11 => ("blocking-loops", "unbounded loops"),
        Rule::H23 => ("bare-sleep", "bare sleep delays"),
    };
    let suppressed_text = if suppressed > 0 {
        format!(", {suppressed} suppressed")
    } else {
        String::new()
    };
    let message = if active == 0 {
        format!(
            "{scripts_checked} script file(s) checked \u{2014} no {what} found{suppressed_text}"
        )
    } else {
        format!(
            "{active} {rule:?} finding(s) in {scripts_checked} script file(s) checked{suppressed_text}: {}",
            rule.info().summary
        )
    };
    CheckResult {
        name: name.to_owned(),
        passed: active == 0,
        message,
        file: None,
    }
}

#[cfg(test)]
mod tests;
