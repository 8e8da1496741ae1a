//! sh/bash scanner for H11 (loops with no deadline) and H23 (bare sleeps).
//!
//! The script is parsed into commands (`syntax`), then each loop is judged
//! on its own (`analysis`):
//!
//! - A loop is *endless* when its condition can never end it: `while true`,
//!   `while :`, `while [ 1 ]`, `while (( 1 ))`, `while sleep 5`, `until false`,
//!   `for ((;;))`, or a `while read` fed by a stream that never closes
//!   (`tail -f … |`, `--watch`, `inotifywait -m`, `done < <(tail -f …)`).
//!   A stream cut by `timeout N`, `head` or `grep -m` ends. A command
//!   condition (`until curl …`) or a `for` over words can end, and so can a
//!   body that always leaves (a plain `break` with no `continue`), an
//!   argument loop (`case $1` whose arms all `shift` or leave, and whose `*`
//!   arm leaves), and `read … || break` on redirected or piped input.
//! - An endless loop is *guarded* by a test comparing elapsed time (`$SECONDS`,
//!   `date +%s`, a variable set from them) or a counter the loop changes
//!   against a bound, in the loop's condition or body, that leads to `break`
//!   (reaching this loop: `break 2` from an inner loop), `exit`, `return` or a
//!   `die`-style helper, through `&&`/`||` or an `if` branch, or by a call
//!   to a function of the script that does such a test (`check_deadline`
//!   that exits, `in_time || break`). A loop inside `timeout N sh -c '…'`
//!   (or a heredoc fed to `timeout N bash`) has a deadline already; its
//!   diagnostic is the caller's report of the wrapped command's failure,
//!   and without one a loop that would wait for ever is `silent-fallback`.
//! - No guard: kind `unbounded`. A guard whose exit prints nothing (no
//!   `echo`/`printf`/`logger`/`>&2` in the branch that leaves, nor in a
//!   test of the same deadline or counter right after the loop): kind
//!   `silent-fallback`.
//! - A `sleep` with an argument outside every loop: H23 `bare-sleep`.
//!
//! Findings point at the loop keyword (`while`, `until`, `for`, `select`),
//! even when a stream such as `tail -f` feeds the loop from an earlier line,
//! and at the `sleep` word for H23. Code inside `sh -c '…'`, `bash -c "…"`,
//! `eval '…'` and heredocs fed to a shell (`bash <<'EOF'`, `ssh host bash -s
//! <<EOF`) is scanned too, with positions mapped back into the file.

mod analysis;
mod syntax;
mod words;

use analysis::{Analyzer, Context, LocalFinding};
use syntax::Parser;

use super::LoopFinding;

/// How deep `sh -c "bash -c '…'"` nesting is followed.
const MAX_EMBEDDING_LEVEL: usize = 4;
/// How many embedded scripts one file may contribute.
const MAX_EMBEDDED_SCRIPTS: usize = 256;

/// Scans one file's text; see [`super::scan`]. Files it sources are not read.
pub fn scan(source: &str) -> Vec<LoopFinding> {
    scan_with(source, &|_| None)
}

/// How many sourced files one script may contribute helpers from.
const MAX_SOURCED_FILES: usize = 8;

/// Scans one file's text, as [`scan`] does, reading the files it sources.
///
/// `resolve` gets each path the script sources literally (`. ./lib.sh`,
/// `source common/util.sh`), as written, and returns that file's text, or
/// `None` when it cannot be read. The caller decides what the path is
/// relative to (the script's folder) and must not leave the project. Helpers
/// defined there that always end the script (`usage`, `error_exit`) then
/// count as exits of the loops that call them.
pub fn scan_with(source: &str, resolve: &dyn Fn(&str) -> Option<String>) -> Vec<LoopFinding> {
    scan_with_budget(source, resolve, None)
}

/// [`scan_with`], with the work budget replaced by `budget` units when given.
fn scan_with_budget(
    source: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
    budget: Option<usize>,
) -> Vec<LoopFinding> {
    // Every finding needs one of these words, in the file or in a string it runs.
    if !["while", "until", "for", "select", "sleep"]
        .iter()
        .any(|word| source.contains(word))
    {
        return Vec::new();
    }
    let mut findings: Vec<(usize, LocalFinding)> = Vec::new();
    let mut pending = vec![(String::new(), Vec::new(), Context::default(), 0usize)];
    let mut embedded_count = 0usize;
    let mut sourced_exits = Vec::new();
    while let Some((text, origins, context, level)) = pending.pop() {
        let text = if level == 0 { source } else { text.as_str() };
        let mut parser = Parser::new(text);
        let program = parser.parse_program();
        let to_file = |offset: usize| -> usize {
            if level == 0 {
                offset
            } else {
                origins.get(offset).or(origins.last()).copied().unwrap_or(0)
            }
        };
        if let Some(offset) = parser.too_deep {
            findings.push((to_file(offset), unscanned(UNSCANNED_DEPTH)));
        }
        let analyzer =
            Analyzer::new(text, &program).with_heredocs(std::mem::take(&mut parser.heredoc_bodies));
        if level == 0 {
            sourced_exits = sourced_helpers(&analyzer, resolve);
        }
        let mut analyzer = analyzer.with_sourced_exits(sourced_exits.clone());
        if let Some(budget) = budget {
            analyzer = analyzer.with_budget(budget);
        }
        analyzer.walk_list(&program, context);
        for finding in analyzer.findings {
            findings.push((to_file(finding.offset), finding));
        }
        let embedded = analyzer.embedded;
        if level >= MAX_EMBEDDING_LEVEL {
            if let Some(script) = embedded.first() {
                let offset = script.origins.first().copied().unwrap_or(0);
                findings.push((to_file(offset), unscanned(UNSCANNED_EMBEDDING)));
            }
            continue;
        }
        for script in embedded {
            if embedded_count >= MAX_EMBEDDED_SCRIPTS {
                let offset = script.origins.first().copied().unwrap_or(0);
                findings.push((to_file(offset), unscanned(UNSCANNED_COUNT)));
                break;
            }
            embedded_count += 1;
            let origins = script
                .origins
                .iter()
                .map(|&offset| to_file(offset))
                .collect();
            pending.push((script.text, origins, script.context, level + 1));
        }
    }
    findings.sort_by_key(|(offset, finding)| (*offset, finding.rule, finding.kind));
    findings.dedup_by_key(|(offset, finding)| (*offset, finding.rule));
    if findings.is_empty() {
        return Vec::new();
    }
    let mut cursor = Cursor::default();
    findings
        .into_iter()
        .map(|(offset, finding)| {
            let (line, column) = cursor.advance_to(source, offset);
            LoopFinding {
                rule: finding.rule,
                kind: finding.kind,
                line,
                column,
                message: finding.message,
            }
        })
        .collect()
}

const UNSCANNED_DEPTH: &str = "nesting deeper than the scanner follows (48 levels of `{ … }`, \
    `( … )`, `$( … )`, `if` or loops) starts here: loops inside it were not checked; flatten the code";
const UNSCANNED_EMBEDDING: &str = "code run from a string nested more than 4 levels deep \
    (`sh -c \"bash -c '…'\"`) starts here: it was not checked";
const UNSCANNED_COUNT: &str = "more than 256 embedded scripts (`sh -c '…'`, `eval`) in one file: \
    from here on they were not checked";

fn unscanned(message: &str) -> LocalFinding {
    LocalFinding {
        offset: 0,
        rule: crate::validate::diagnostic::Rule::H11,
        kind: crate::validate::diagnostic::FindingKind::Unscanned,
        message: message.to_owned(),
    }
}

/// Helpers that always end the script, from the files `analyzer`'s script sources.
fn sourced_helpers(
    analyzer: &Analyzer<'_>,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> analysis::ExitingHelpers {
    let mut helpers = Vec::new();
    for path in analyzer.sourced_paths().into_iter().take(MAX_SOURCED_FILES) {
        let Some(text) = resolve(&path) else {
            continue;
        };
        let program = Parser::new(&text).parse_program();
        helpers.extend(Analyzer::new(&text, &program).exiting_functions());
    }
    helpers
}

/// Turns increasing byte offsets into 1-based lines and character columns
/// in one pass over the text, however many findings a long line holds.
#[derive(Default)]
struct Cursor {
    offset: usize,
    /// Newlines before `offset`.
    newlines: usize,
    /// Characters between the last newline and `offset`.
    characters: usize,
}

impl Cursor {
    fn advance_to(&mut self, source: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(source.len());
        for &byte in source
            .as_bytes()
            .get(self.offset..offset)
            .unwrap_or_default()
        {
            if byte == b'\n' {
                self.newlines += 1;
                self.characters = 0;
            } else if byte & 0xC0 != 0x80 {
                // Count characters by their first bytes, so an offset inside
                // a character can never split it.
                self.characters += 1;
            }
        }
        self.offset = self.offset.max(offset);
        (self.newlines + 1, self.characters + 1)
    }
}

#[cfg(test)]
mod tests;
