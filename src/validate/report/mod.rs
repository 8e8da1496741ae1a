//! Output formats: each one a renderer over the same [`Report`], writing to
//! any [`Write`]. None of them decides anything; they only format.

mod github;
mod json;
mod sarif;
mod text;

use std::io::{self, Write};

use super::Report;

/// An output format for a validate report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `path:line:col: H11 message` lines, then a summary of every check.
    Text,
    /// A superset of Python specsmith's `validate --json`.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// GitHub Actions workflow commands (`::error file=…::…`).
    Github,
}

/// Writes `report` to `out` in `format`.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::render(report, out),
        Format::Json => json::render(report, out),
        Format::Sarif => sarif::render(report, out),
        Format::Github => github::render(report, out),
    }
}

#[cfg(test)]
pub(crate) mod sample {
    //! A hand-built report shared by the renderer tests.

    use crate::validate::{CheckResult, Finding, FindingKind, Note, NoteKind, Report, Rule};

    pub fn report() -> Report {
        Report {
            results: vec![
                CheckResult {
                    name: "scaffold-yml".to_owned(),
                    passed: true,
                    message: "scaffold.yml valid: project=demo, type=cli".to_owned(),
                    file: None,
                },
                CheckResult {
                    name: "req-unique".to_owned(),
                    passed: false,
                    message: "Duplicate requirement IDs: REQ-A-1(×2)".to_owned(),
                    file: Some("docs/REQUIREMENTS.md".to_owned()),
                },
                CheckResult {
                    name: "blocking-loops".to_owned(),
                    passed: false,
                    message: "1 H11 finding(s) in 3 script file(s) checked, 1 suppressed"
                        .to_owned(),
                    file: None,
                },
            ],
            findings: vec![
                Finding {
                    rule: Rule::H11,
                    path: "scripts/poll.sh".to_owned(),
                    line: 3,
                    column: 1,
                    kind: FindingKind::Unbounded,
                    message: "`while true` never ends: add a deadline, 50% sure, a,b:c".to_owned(),
                    suppressed: false,
                },
                Finding {
                    rule: Rule::H11,
                    path: "scripts/wait.ps1".to_owned(),
                    line: 7,
                    column: 5,
                    kind: FindingKind::SilentFallback,
                    message: "the loop leaves silently\nsay why".to_owned(),
                    suppressed: true,
                },
                Finding {
                    rule: Rule::H23,
                    path: "scripts/wait.ps1".to_owned(),
                    line: 9,
                    column: 1,
                    kind: FindingKind::BareSleep,
                    message: "bare `Start-Sleep`: poll instead".to_owned(),
                    suppressed: false,
                },
            ],
            notes: vec![
                Note {
                    path: "bin/tool.sh".to_owned(),
                    kind: NoteKind::Binary,
                    message: "skipped: binary file (a NUL byte in its first KiB)".to_owned(),
                },
                Note {
                    path: "secret.sh".to_owned(),
                    kind: NoteKind::Unreadable,
                    message: "cannot read: Permission denied (os error 13)".to_owned(),
                },
            ],
            scripts_checked: 3,
        }
    }

    pub fn render(format: super::Format, report: &Report) -> String {
        let mut out = Vec::new();
        super::render(report, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
}
