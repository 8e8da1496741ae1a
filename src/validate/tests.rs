//! Whole-run tests: the walk, language detection, prefilter, suppression and
//! sorting together, driven by a fake scanner so they do not depend on the
//! real per-language scanners.

use std::path::Path;

use super::loops::{Language, LoopFinding};
use super::{run_with, FindingKind, NoteKind, Options, Report, Rule};

/// Flags every line holding `LOOP` (H11) or `NAP` (H23), at the word's column,
/// and names the language it was called for in the message.
fn fake_scanner(
    language: Language,
    text: &str,
    _resolve: &dyn Fn(&str) -> Option<String>,
) -> Vec<LoopFinding> {
    let mut findings = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        for (word, rule, kind) in [
            ("LOOP", Rule::H11, FindingKind::Unbounded),
            ("NAP", Rule::H23, FindingKind::BareSleep),
        ] {
            if let Some(byte) = line.find(word) {
                findings.push(LoopFinding {
                    rule,
                    kind,
                    line: index + 1,
                    column: line[..byte].chars().count() + 1,
                    message: format!("{language:?}"),
                });
            }
        }
    }
    findings
}

/// Lines the fake scanner flags also hold `while` or `sleep`, so the
/// prefilter lets their files through.
const LOOP_LINE: &str = "while LOOP";
const NAP_LINE: &str = "sleep NAP";

fn write(root: &Path, relative: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn validate(root: &Path, excludes: &[&str]) -> Report {
    let mut options = Options::new(root);
    options.excludes = excludes.iter().map(|glob| glob.to_string()).collect();
    options.max_file_size = 4096;
    run_with(&options, fake_scanner).unwrap()
}

fn located(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|finding| {
            format!(
                "{}:{}:{} {:?} {}{}",
                finding.path,
                finding.line,
                finding.column,
                finding.rule,
                finding.message,
                if finding.suppressed {
                    " suppressed"
                } else {
                    ""
                }
            )
        })
        .collect()
}

#[test]
fn scans_every_script_language_and_sorts_findings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "z.sh", format!("echo\n{LOOP_LINE}\n"));
    write(
        root,
        "a/deploy.BAT",
        format!("{NAP_LINE}\r\n{LOOP_LINE}\r\n"),
    );
    write(root, "a/run.ps1", format!("  {LOOP_LINE}\n"));
    write(root, "a/mod.psm1", format!("{NAP_LINE}\n"));
    write(root, "b.bash", format!("{LOOP_LINE}  {NAP_LINE}\n"));
    write(
        root,
        "bin/deploy",
        format!("#!/usr/bin/env bash\n{LOOP_LINE}\n"),
    );
    write(
        root,
        "bin/tool",
        format!("#!/usr/bin/env python3\n{LOOP_LINE}\n"),
    );
    write(root, "tools/scripts/poll.py", format!("{LOOP_LINE}\n"));
    write(root, "app/main.py", format!("{LOOP_LINE}\n"));
    write(root, "README.md", format!("{LOOP_LINE}\n"));
    let report = validate(root, &[]);
    assert_eq!(
        located(&report),
        [
            "a/deploy.BAT:1:7 H23 Batch",
            "a/deploy.BAT:2:7 H11 Batch",
            "a/mod.psm1:1:7 H23 PowerShell",
            "a/run.ps1:1:9 H11 PowerShell",
            "b.bash:1:7 H11 Shell",
            "b.bash:1:19 H23 Shell",
            "bin/deploy:2:7 H11 Shell",
            "tools/scripts/poll.py:1:7 H11 Python",
            "z.sh:2:7 H11 Shell",
        ]
    );
    assert_eq!(report.scripts_checked, 7);
    assert!(report.notes.is_empty());
    assert!(!report.ok());
}

#[test]
fn bom_and_crlf_do_not_shift_lines_or_columns() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "win.ps1",
        format!("\u{FEFF}# header\r\n\r\n{LOOP_LINE}\r\n"),
    );
    let report = validate(dir.path(), &[]);
    assert_eq!(located(&report), ["win.ps1:3:7 H11 PowerShell"]);
}

#[test]
fn files_without_loop_words_are_not_scanned() {
    let dir = tempfile::tempdir().unwrap();
    // LOOP alone would be flagged by the fake scanner; no loop word, no scan.
    write(dir.path(), "quiet.sh", "echo LOOP\n");
    let report = validate(dir.path(), &[]);
    assert!(report.findings.is_empty());
    assert_eq!(report.scripts_checked, 1);
    assert!(report.ok());
}

#[test]
fn allow_comments_suppress_but_keep_the_finding() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.sh",
        format!("# specsmith: allow H11\n{LOOP_LINE}\n{LOOP_LINE}  # specsmith: allow H23\n"),
    );
    let report = validate(dir.path(), &[]);
    assert_eq!(
        located(&report),
        ["s.sh:2:7 H11 Shell suppressed", "s.sh:3:7 H11 Shell"]
    );
    let loops = report
        .results
        .iter()
        .find(|result| result.name == "blocking-loops")
        .unwrap();
    assert!(!loops.passed);
    assert_eq!(report.active_findings().count(), 1);
}

#[test]
fn only_suppressed_findings_pass() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.sh",
        format!("{LOOP_LINE} # specsmith: allow H11\n"),
    );
    let report = validate(dir.path(), &[]);
    assert_eq!(report.findings.len(), 1);
    assert!(report.ok());
    let loops = report
        .results
        .iter()
        .find(|result| result.name == "blocking-loops")
        .unwrap();
    assert_eq!(
        loops.message,
        "1 script file(s) checked \u{2014} no unbounded loops found, 1 suppressed"
    );
}

#[test]
fn gitignore_and_excludes_are_honoured_and_hidden_folders_walked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", "ignored/\n*.gen.sh\n");
    write(root, "ignored/a.sh", LOOP_LINE);
    write(root, "b.gen.sh", LOOP_LINE);
    write(root, ".git/hooks/pre-push.sh", LOOP_LINE);
    write(root, ".hidden/c.sh", LOOP_LINE);
    write(root, "vendor/d.sh", LOOP_LINE);
    write(root, "e.sh", LOOP_LINE);
    write(root, "f.cmd", LOOP_LINE);
    let report = validate(root, &["vendor", "*.cmd"]);
    assert_eq!(
        located(&report),
        [".hidden/c.sh:1:7 H11 Shell", "e.sh:1:7 H11 Shell"]
    );
}

#[test]
fn an_invalid_exclude_glob_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path());
    options.excludes = vec!["a[".to_owned()];
    let error = run_with(&options, fake_scanner).unwrap_err();
    assert!(
        error.to_string().contains("invalid --exclude glob `a[`"),
        "{error}"
    );
    options.excludes = vec!["  ".to_owned()];
    assert!(run_with(&options, fake_scanner).is_err());
}

#[test]
fn binary_files_are_notes_and_oversized_or_badly_encoded_scripts_never_pass() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "bin.sh", b"while LOOP\0\n");
    write(root, "latin1.sh", b"# caf\xE9\nwhile LOOP\n");
    write(root, "big.sh", format!("{LOOP_LINE}\n{}", "#".repeat(5000)));
    write(
        root,
        "big-allowed.sh",
        format!("# specsmith: allow H11\n{}", "#".repeat(5000)),
    );
    write(root, "ok.sh", LOOP_LINE);
    let report = validate(root, &[]);
    let kinds: Vec<(String, FindingKind, bool)> = report
        .findings
        .iter()
        .map(|finding| {
            let place = format!("{}:{}:{}", finding.path, finding.line, finding.column);
            (place, finding.kind, finding.suppressed)
        })
        .collect();
    let kind = |place: &str, kind, suppressed| (place.to_owned(), kind, suppressed);
    assert_eq!(
        kinds,
        [
            kind("big-allowed.sh:1:1", FindingKind::Unscanned, true),
            kind("big.sh:1:1", FindingKind::Unscanned, false),
            // The Latin-1 byte on line 1 no longer hides the loop on line 2.
            kind("latin1.sh:2:7", FindingKind::Unbounded, false),
            kind("ok.sh:1:7", FindingKind::Unbounded, false),
        ]
    );
    assert!(report.findings[1]
        .message
        .starts_with("not scanned: this shell script is larger than 4096 bytes"));
    let notes: Vec<(String, NoteKind)> = report
        .notes
        .iter()
        .map(|note| (note.path.clone(), note.kind))
        .collect();
    assert_eq!(notes, [("bin.sh".to_owned(), NoteKind::Binary)]);
    assert!(!report.has_errors());
}

#[cfg(unix)]
#[test]
fn symlinks_are_not_followed_out_of_the_root() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "far/away.sh", LOOP_LINE);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::os::unix::fs::symlink(outside.path().join("far"), root.join("link-dir")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("far/away.sh"), root.join("link.sh")).unwrap();
    let report = validate(root, &[]);
    assert!(report.findings.is_empty(), "{:?}", located(&report));
    assert_eq!(report.scripts_checked, 0);
}

#[test]
fn a_missing_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(dir.path().join("nope"));
    assert!(run_with(&options, fake_scanner).is_err());
    write(dir.path(), "file", "");
    let options = Options::new(dir.path().join("file"));
    assert!(run_with(&options, fake_scanner)
        .unwrap_err()
        .to_string()
        .contains("is not a folder"));
}

#[test]
fn every_check_has_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let report = validate(dir.path(), &[]);
    let names: Vec<&str> = report.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "scaffold-yml",
            "agents-refs",
            "req-unique",
            "arch-req-refs",
            "blocking-loops",
            "bare-sleep"
        ]
    );
    assert!(report.ok());
}

#[test]
fn the_parallel_walk_collects_every_finding_once() {
    let dir = tempfile::tempdir().unwrap();
    for index in 0..300 {
        write(
            dir.path(),
            &format!("group{}/s{index:03}.sh", index % 7),
            format!("{LOOP_LINE}\n"),
        );
    }
    let report = validate(dir.path(), &[]);
    assert_eq!(report.scripts_checked, 300);
    assert_eq!(report.findings.len(), 300);
    let paths: Vec<&str> = report.findings.iter().map(|f| f.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(paths, sorted, "sorted by path, each file once");
}

#[cfg(unix)]
#[test]
fn a_fifo_named_like_a_script_is_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe.sh"))
        .status()
        .unwrap();
    assert!(status.success());
    // Opening a FIFO for reading blocks until a writer appears: reaching the
    // assertions at all shows the walk left it alone.
    let report = validate(dir.path(), &[]);
    assert_eq!(report.scripts_checked, 0);
    assert!(report.notes.is_empty());
}
