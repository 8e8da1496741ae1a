//! Plain text, like a compiler: one line per finding, then every check.

use std::io::{self, Write};

use crate::validate::Report;

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for finding in report.active_findings() {
        writeln!(
            out,
            "{}:{}:{}: {} {}",
            finding.path,
            finding.line,
            finding.column,
            finding.rule.code(),
            one_line(&finding.message)
        )?;
    }
    for note in &report.notes {
        let label = if note.is_error() { "error" } else { "note" };
        writeln!(out, "{label}: {}: {}", note.path, note.message)?;
    }
    if report.active_findings().next().is_some() || !report.notes.is_empty() {
        writeln!(out)?;
    }
    for result in &report.results {
        let mark = if result.passed {
            '\u{2713}'
        } else {
            '\u{2717}'
        };
        writeln!(out, "  {mark} {}", result.message)?;
    }
    writeln!(out)?;
    if report.ok() {
        writeln!(out, "Valid. {} checks passed.", report.passed())?;
    } else {
        writeln!(
            out,
            "{} issue(s) found. {} checks passed.",
            report.failed(),
            report.passed()
        )?;
    }
    let unreadable = report.notes.iter().filter(|note| note.is_error()).count();
    if unreadable > 0 {
        writeln!(out, "Incomplete: {unreadable} file(s) could not be read.")?;
    }
    Ok(())
}

/// A message on one line, whatever a scanner put in it.
fn one_line(message: &str) -> std::borrow::Cow<'_, str> {
    // Two byte searches: far cheaper than matching a set of chars one char
    // at a time, on a report that can hold tens of thousands of findings.
    if message.contains('\n') || message.contains('\r') {
        message.replace(['\r', '\n'], " ").into()
    } else {
        message.into()
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::report::{sample, Format};
    use crate::validate::Report;

    #[test]
    fn findings_then_notes_then_every_check() {
        let text = sample::render(Format::Text, &sample::report());
        let expected = [
            "scripts/poll.sh:3:1: H11 `while true` never ends: add a deadline, 50% sure, a,b:c",
            "scripts/wait.ps1:9:1: H23 bare `Start-Sleep`: poll instead",
            "note: bin/tool.sh: skipped: binary file (a NUL byte in its first KiB)",
            "error: secret.sh: cannot read: Permission denied (os error 13)",
            "",
            "  \u{2713} scaffold.yml valid: project=demo, type=cli",
            "  \u{2717} Duplicate requirement IDs: REQ-A-1(×2)",
            "  \u{2717} 1 H11 finding(s) in 3 script file(s) checked, 1 suppressed",
            "",
            "2 issue(s) found. 1 checks passed.",
            "Incomplete: 1 file(s) could not be read.",
        ];
        assert_eq!(text, expected.map(|line| format!("{line}\n")).concat());
    }

    #[test]
    fn a_multi_line_message_stays_on_one_line() {
        let mut report = sample::report();
        report.findings[0].message = "first\r\nsecond".to_owned();
        let text = sample::render(Format::Text, &report);
        assert!(
            text.starts_with("scripts/poll.sh:3:1: H11 first  second\n"),
            "{text}"
        );
    }

    #[test]
    fn a_clean_report_says_valid() {
        let mut report = sample::report();
        report.findings.clear();
        report.notes.clear();
        report.results.retain(|result| result.passed);
        let text = sample::render(Format::Text, &report);
        assert_eq!(
            text,
            "  \u{2713} scaffold.yml valid: project=demo, type=cli\n\nValid. 1 checks passed.\n"
        );
        assert_eq!(
            sample::render(Format::Text, &Report::default()),
            "\nValid. 0 checks passed.\n"
        );
    }
}
