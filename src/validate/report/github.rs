//! GitHub Actions workflow commands: each finding, failed check and skipped
//! file becomes an annotation on the run and, where it has a file, on the diff.

use std::io::{self, Write};

use crate::validate::Report;

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for finding in report.active_findings() {
        writeln!(
            out,
            "::error file={},line={},col={},title={}::{}",
            escape_property(&finding.path),
            finding.line,
            finding.column,
            escape_property(&format!(
                "{} {}",
                finding.rule.code(),
                finding.rule.info().name
            )),
            escape_data(&finding.message)
        )?;
    }
    for result in report.results.iter().filter(|result| !result.passed) {
        let file = result
            .file
            .as_deref()
            .map(|file| format!("file={},", escape_property(file)))
            .unwrap_or_default();
        writeln!(
            out,
            "::error {file}title={}::{}",
            escape_property(&result.name),
            escape_data(&result.message)
        )?;
    }
    for note in &report.notes {
        let level = if note.is_error() { "error" } else { "warning" };
        let file = if note.path.is_empty() {
            String::new()
        } else {
            format!("file={},", escape_property(&note.path))
        };
        writeln!(
            out,
            "::{level} {file}title=specsmith-rs::{}",
            escape_data(&note.message)
        )?;
    }
    Ok(())
}

/// A command's message: `%`, CR and LF escaped, as the workflow-command
/// format requires (`actions/toolkit: packages/core/src/command.ts`).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value: also `:` and `,`, which separate properties.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::{escape_data, escape_property};
    use crate::validate::report::{sample, Format};

    #[test]
    fn annotates_findings_failures_and_notes() {
        let text = sample::render(Format::Github, &sample::report());
        assert_eq!(
            text,
            "::error file=scripts/poll.sh,line=3,col=1,title=H11 unbounded-loop::`while true` never ends: add a deadline, 50%25 sure, a,b:c\n\
             ::error file=scripts/wait.ps1,line=9,col=1,title=H23 bare-sleep::bare `Start-Sleep`: poll instead\n\
             ::error file=docs/REQUIREMENTS.md,title=req-unique::Duplicate requirement IDs: REQ-A-1(×2)\n\
             ::error title=blocking-loops::1 H11 finding(s) in 3 script file(s) checked, 1 suppressed\n\
             ::warning file=bin/tool.sh,title=specsmith-rs::skipped: binary file (a NUL byte in its first KiB)\n\
             ::error file=secret.sh,title=specsmith-rs::cannot read: Permission denied (os error 13)\n"
        );
    }

    #[test]
    fn escapes_as_the_workflow_command_spec_requires() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(escape_property("dir,x/a:b%c\nd"), "dir%2Cx/a%3Ab%25c%0Ad");
    }
}
