//! JSON: Python specsmith's `validate --json` keys first, then ours.

use std::io::{self, Write};

use serde::Serialize;

use crate::validate::{CheckResult, Finding, Note, Report};

#[derive(Serialize)]
struct JsonReport<'a> {
    std_passed: usize,
    std_failed: usize,
    ok: bool,
    std_results: &'a [CheckResult],
    /// False when some file could not be read.
    complete: bool,
    scripts_checked: usize,
    findings: &'a [Finding],
    notes: &'a [Note],
}

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let json = JsonReport {
        std_passed: report.passed(),
        std_failed: report.failed(),
        ok: report.ok(),
        std_results: &report.results,
        complete: !report.has_errors(),
        scripts_checked: report.scripts_checked,
        findings: &report.findings,
        notes: &report.notes,
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::validate::report::{sample, Format};

    #[test]
    fn holds_the_python_keys_and_every_finding() {
        let text = sample::render(Format::Json, &sample::report());
        let value: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "std_passed",
                "std_failed",
                "ok",
                "std_results",
                "complete",
                "scripts_checked",
                "findings",
                "notes"
            ]
        );
        assert_eq!(value["ok"], false);
        assert_eq!(value["std_passed"], 1);
        assert_eq!(value["std_failed"], 2);
        assert_eq!(value["complete"], false);
        assert_eq!(
            value["std_results"][1],
            json!({"name": "req-unique", "passed": false, "message": "Duplicate requirement IDs: REQ-A-1(×2)"})
        );
        assert_eq!(
            value["findings"][1],
            json!({
                "rule": "H11",
                "path": "scripts/wait.ps1",
                "line": 7,
                "column": 5,
                "kind": "silent-fallback",
                "message": "the loop leaves silently\nsay why",
                "suppressed": true
            })
        );
        assert_eq!(value["findings"][2]["kind"], "bare-sleep");
        assert_eq!(value["findings"].as_array().unwrap().len(), 3);
        assert_eq!(
            value["notes"][0],
            json!({"path": "bin/tool.sh", "kind": "binary", "message": "skipped: binary file (a NUL byte in its first KiB)"})
        );
        assert!(text.ends_with("}\n"));
    }
}
