//! Per-language loop scanners for H11 (unbounded loops) and H23 (bare sleeps).
//!
//! Each scanner reads one file's text and returns findings without a path.
//! Callers pass text with any byte-order mark removed and CRLF turned into LF,
//! so line and column numbers match what an editor shows.

pub mod cmd;
pub mod powershell;
pub mod prefilter;
pub mod python;
pub mod shell;
mod text;

use super::diagnostic::{FindingKind, Rule};

/// A language the scanners understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// sh and bash: `.sh`, `.bash`, and files whose shebang names sh or bash.
    Shell,
    /// PowerShell: `.ps1`, `.psm1`.
    PowerShell,
    /// Windows batch: `.cmd`, `.bat`.
    Batch,
    /// Python, under a folder named `scripts`.
    Python,
}

/// A finding within one file, before the caller gives it a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopFinding {
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong.
    pub kind: FindingKind,
    /// 1-based line where the loop (or sleep) starts.
    pub line: usize,
    /// 1-based column, in characters, where the loop keyword (or sleep) starts.
    pub column: usize,
    /// What to add or change.
    pub message: String,
}

/// Scans `source`, written in `language`, for H11 and H23 findings, in order of position.
pub fn scan(language: Language, source: &str) -> Vec<LoopFinding> {
    scan_with(language, source, &|_| None)
}

/// [`scan`], with `resolve` reading the files a shell or PowerShell script
/// sources by a literal path (`. ./lib.sh`, `. "$PSScriptRoot/lib.ps1"`), so
/// helpers defined there that always exit (or, in PowerShell, say why) count
/// as they would in the script. `resolve` gets the path relative to the
/// script's folder and returns the text, or `None`; batch and Python never
/// call it.
pub fn scan_with(
    language: Language,
    source: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Vec<LoopFinding> {
    let mut findings = match language {
        Language::Shell => shell::scan_with(source, resolve),
        Language::PowerShell => powershell::scan_with(source, resolve),
        Language::Batch => cmd::scan(source),
        Language::Python => python::scan(source),
    };
    findings.sort_by_key(|finding| (finding.line, finding.column, finding.rule));
    findings
}
