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
//!   has a deadline already.
//! - No guard: kind `unbounded`. A guard whose exit prints nothing (no
//!   `echo`/`printf`/`logger`/`>&2` in the branch that leaves, nor in a
//!   test of the same deadline or counter right after the loop): kind
//!   `silent-fallback`.
//! - A `sleep` with an argument outside every loop: H23 `bare-sleep`.
//!
//! Findings point at the loop keyword (`while`, `until`, `for`, `select`),
//! even when a stream such as `tail -f` feeds the loop from an earlier line,
//! and at the `sleep` word for H23. Code inside `sh -c '…'`, `bash -c "…"` and
//! `eval '…'` is scanned too, with positions mapped back into the file.

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

/// Scans one file's text; see [`super::scan`].
pub fn scan(source: &str) -> Vec<LoopFinding> {
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
    while let Some((text, origins, context, level)) = pending.pop() {
        let text = if level == 0 { source } else { text.as_str() };
        let program = Parser::new(text).parse_program();
        let mut analyzer = Analyzer::new(text, &program);
        analyzer.walk_list(&program, context);
        let to_file = |offset: usize| -> usize {
            if level == 0 {
                offset
            } else {
                origins.get(offset).or(origins.last()).copied().unwrap_or(0)
            }
        };
        for finding in analyzer.findings {
            findings.push((to_file(finding.offset), finding));
        }
        if level < MAX_EMBEDDING_LEVEL {
            for script in analyzer.embedded {
                if embedded_count >= MAX_EMBEDDED_SCRIPTS {
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
    }
    findings.sort_by_key(|(offset, finding)| (*offset, finding.rule));
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
