//! Scanner fixtures: every `tests/fixtures/loops/<lang>/<RULE>_<case>.<ext>`
//! is validated alone, as `scripts/<file>` in a fresh project, and the finding
//! lines of `validate --format text` must equal the sibling
//! `<RULE>_<case>.<ext>.expected` (paths shown relative to the language folder).
//! `SPECSMITH_BLESS=1 cargo test --test cli fixtures` rewrites the `.expected` files.

use std::path::{Path, PathBuf};

use specsmith::validate::loops::{prefilter, Language};

use crate::fixture::Project;

const LANGUAGES: &[(&str, Language)] = &[
    ("shell", Language::Shell),
    ("powershell", Language::PowerShell),
    ("cmd", Language::Batch),
    ("python", Language::Python),
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loops")
}

/// True for a `path:line:col: RULE message` line.
fn is_finding_line(line: &str) -> bool {
    let mut parts = line.splitn(4, ':');
    let (Some(path), Some(row), Some(column), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !path.is_empty()
        && !row.is_empty()
        && row.bytes().all(|byte| byte.is_ascii_digit())
        && !column.is_empty()
        && column.bytes().all(|byte| byte.is_ascii_digit())
        && rest.starts_with(" H")
}

/// The finding lines `validate` prints for `source` placed at `scripts/<name>`.
fn findings_for(name: &str, source: &[u8]) -> (String, Option<i32>) {
    let project = Project::new();
    std::fs::create_dir_all(project.root().join("scripts")).unwrap();
    std::fs::write(project.root().join("scripts").join(name), source).unwrap();
    let output = project
        .cmd(&["validate", "--format", "text"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: String = stdout
        .lines()
        .filter(|line| is_finding_line(line))
        .map(|line| format!("{}\n", line.strip_prefix("scripts/").unwrap_or(line)))
        .collect();
    (lines, output.status.code())
}

#[test]
fn fixtures_match_their_expected_findings() {
    let bless = std::env::var_os("SPECSMITH_BLESS").is_some_and(|value| value == "1");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (folder, language) in LANGUAGES {
        let Ok(entries) = std::fs::read_dir(fixtures_dir().join(folder)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".expected") {
                continue;
            }
            checked += 1;
            let source = std::fs::read(&path).unwrap();
            let (actual, code) = findings_for(&name, &source);
            let expected_path = path.with_file_name(format!("{name}.expected"));
            if bless {
                std::fs::write(&expected_path, &actual).unwrap();
            }
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
                panic!(
                    "{} has no .expected file; run with SPECSMITH_BLESS=1",
                    path.display()
                )
            });
            if actual != expected {
                failures.push(format!(
                    "{folder}/{name}\n--- expected\n{expected}--- actual\n{actual}"
                ));
            }
            let expected_code = if expected.is_empty() { 0 } else { 1 };
            if code != Some(expected_code) {
                failures.push(format!(
                    "{folder}/{name}: exit {code:?}, expected {expected_code}"
                ));
            }
            // The walk skips files the prefilter rejects: it must never
            // reject a file with findings.
            if !expected.is_empty() && !prefilter::may_have_findings(*language, &source) {
                failures.push(format!(
                    "{folder}/{name}: the prefilter would skip a file with findings; \
                     add its keyword to src/validate/loops/prefilter.rs"
                ));
            }
        }
    }
    assert!(
        checked > 0,
        "no fixtures under {}",
        fixtures_dir().display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn finding_lines_are_recognised() {
    assert!(is_finding_line("a.sh:3:1: H11 add a deadline"));
    assert!(is_finding_line("dir/a b.ps1:10:22: H23 poll"));
    assert!(!is_finding_line("  ✓ 1 script file(s) checked"));
    assert!(!is_finding_line("note: a.sh: skipped: binary file"));
    assert!(!is_finding_line("Valid. 6 checks passed."));
}
