//! A cheap first look at a file: could it hold any H11 or H23 finding at all?
//!
//! Most scripts hold no loop and no sleep. Before a scanner parses a file, one
//! case-insensitive search for the words every finding needs lets the walk drop
//! those files. The search looks at the raw text, strings and comments
//! included, so code run from a string (`sh -c '…'`) is still seen.
//!
//! The word lists must stay a superset of what the scanners key on: a word
//! missing here hides a finding. `tests/cli/validate_fixtures.rs` checks every
//! fixture that expects findings against this filter.

use std::sync::LazyLock;

use regex::bytes::Regex;

use super::Language;

/// Words whose presence means a shell script may hold a finding.
///
/// `do` and `done` always come with `while`, `until`, `for` or `select`.
const SHELL_WORDS: &[&str] = &[
    "while",
    "until",
    "for",
    "select",
    "sleep",
    "usleep",
    "tail",
    "watch",
    "wait",
    "follow",
    "inotifywait",
    "timeout",
    "yes",
];

/// Words whose presence means a PowerShell script may hold a finding.
const POWERSHELL_WORDS: &[&str] = &[
    "while", "until", "for", "foreach", "sleep", "wait", "timeout", "tail", "watch", "loop",
];

/// Words whose presence means a batch file may hold a finding.
const BATCH_WORDS: &[&str] = &[
    "goto", "for", "timeout", "ping", "sleep", "choice", "waitfor", "wait", "pause", "call",
];

/// Words whose presence means a Python script may hold a finding.
const PYTHON_WORDS: &[&str] = &[
    "while",
    "for",
    "sleep",
    "wait",
    "forever",
    "serve_forever",
    "pause",
    "count",
    "cycle",
    "repeat",
    "tail",
    "follow",
    "poll",
    "select",
    "join",
    "timeout",
];

/// One regex per language: any listed word, ASCII case-insensitive, as a whole
/// word (`for` matches `for i in` but not `format`; `foreach` is listed apart).
fn build(words: &[&str]) -> Regex {
    let pattern = format!(r"(?i-u)\b(?:{})\b", words.join("|"));
    Regex::new(&pattern).expect("the prefilter word lists are valid regexes")
}

static SHELL: LazyLock<Regex> = LazyLock::new(|| build(SHELL_WORDS));
static POWERSHELL: LazyLock<Regex> = LazyLock::new(|| build(POWERSHELL_WORDS));
static BATCH: LazyLock<Regex> = LazyLock::new(|| build(BATCH_WORDS));
static PYTHON: LazyLock<Regex> = LazyLock::new(|| build(PYTHON_WORDS));

/// False only when `text`, written in `language`, certainly holds no H11 or
/// H23 finding, so the scanner can be skipped.
pub fn may_have_findings(language: Language, text: &[u8]) -> bool {
    let regex = match language {
        Language::Shell => &SHELL,
        Language::PowerShell => &POWERSHELL,
        Language::Batch => &BATCH,
        Language::Python => &PYTHON,
    };
    regex.is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_loop_and_sleep_words_in_any_case() {
        assert!(may_have_findings(
            Language::Shell,
            b"WHILE true; do x; done"
        ));
        assert!(may_have_findings(
            Language::Shell,
            b"until false\ndo :\ndone"
        ));
        assert!(may_have_findings(
            Language::Shell,
            b"for ((;;)); do :; done"
        ));
        assert!(may_have_findings(Language::Shell, b"tail -f log | grep x"));
        assert!(may_have_findings(
            Language::Shell,
            b"sh -c 'while :; do :; done'"
        ));
        assert!(may_have_findings(Language::Shell, b"sleep 5\n"));
        assert!(may_have_findings(
            Language::PowerShell,
            b"Start-Sleep -Seconds 5"
        ));
        assert!(may_have_findings(
            Language::PowerShell,
            b"do { x } While ($true)"
        ));
        assert!(may_have_findings(
            Language::PowerShell,
            b"Get-Content a -Wait"
        ));
        assert!(may_have_findings(Language::PowerShell, b"for (;;) {}"));
        assert!(may_have_findings(Language::Batch, b":top\r\nGOTO top\r\n"));
        assert!(may_have_findings(Language::Batch, b"timeout /t 5 /nobreak"));
        assert!(may_have_findings(
            Language::Batch,
            b"ping -n 6 127.0.0.1 >nul"
        ));
        assert!(may_have_findings(
            Language::Python,
            b"while True:\n    pass\n"
        ));
        assert!(may_have_findings(Language::Python, b"time.sleep(1)\n"));
    }

    #[test]
    fn skips_files_without_those_words() {
        assert!(!may_have_findings(
            Language::Shell,
            b"#!/bin/sh\nset -eu\necho \"formatting $1\"\ncp -r src dst\n"
        ));
        assert!(!may_have_findings(
            Language::PowerShell,
            b"Write-Host 'Information'\nCopy-Item a b -Force\n"
        ));
        assert!(!may_have_findings(
            Language::Batch,
            b"@echo off\r\nset X=1\r\necho done\r\n"
        ));
        assert!(!may_have_findings(
            Language::Python,
            b"import os\nprint(os.getcwd())\n"
        ));
    }

    #[test]
    fn matches_whole_words_only() {
        assert!(!may_have_findings(Language::Shell, b"echo format before\n"));
        assert!(may_have_findings(
            Language::Shell,
            b"for\tx in a; do :; done"
        ));
        assert!(may_have_findings(Language::Shell, b"while:"));
    }
}
