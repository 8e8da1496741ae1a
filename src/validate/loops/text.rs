//! Small text helpers shared by the PowerShell, batch and Python scanners.

use super::LoopFinding;
use crate::validate::diagnostic::{FindingKind, Rule};

/// Longest code excerpt quoted in a message, in characters.
const SNIPPET_LIMIT: usize = 60;

/// Most tokens (or commands) one file's guard searches may visit. Nested loops
/// make each search revisit inner code, so a hostile file could otherwise take
/// minutes; ordinary scripts use a tiny fraction of this. Once it is spent, each
/// remaining loop is reported as `unscanned` (fail closed).
pub(crate) const GUARD_SEARCH_BUDGET: usize = 2_000_000;

/// A countdown of guard-search work for one file.
#[derive(Debug)]
pub(crate) struct Budget(std::cell::Cell<usize>);

impl Budget {
    pub(crate) fn new() -> Self {
        Budget(std::cell::Cell::new(GUARD_SEARCH_BUDGET))
    }

    /// Takes `steps` from the budget; `false` when not enough is left.
    pub(crate) fn spend(&self, steps: usize) -> bool {
        let left = self.0.get();
        self.0.set(left.saturating_sub(steps));
        left >= steps
    }
}

/// What stops a loop besides its own condition, as the PowerShell and Python
/// scanners judge it: nothing, a way out that says nothing, or one that says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Guard {
    None,
    Silent,
    Loud,
}

impl Guard {
    /// The guard a block gives that may leave the loop and may say why.
    pub(crate) fn of(leaves: bool, speaks: bool) -> Self {
        match (leaves, speaks) {
            (false, _) => Guard::None,
            (true, false) => Guard::Silent,
            (true, true) => Guard::Loud,
        }
    }
}

/// Quotes `code` for a message: whitespace runs collapsed to one space, long text cut with `…`.
pub(crate) fn snippet(code: &str) -> String {
    let mut collapsed = String::new();
    for word in code.split_whitespace() {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    if collapsed.chars().count() > SNIPPET_LIMIT {
        let mut cut: String = collapsed.chars().take(SNIPPET_LIMIT - 1).collect();
        cut.push('…');
        cut
    } else {
        collapsed
    }
}

/// Text of `chars[start..end]`, clamped to the slice.
pub(crate) fn slice(chars: &[char], start: usize, end: usize) -> String {
    let end = end.min(chars.len());
    let start = start.min(end);
    chars[start..end].iter().collect()
}

/// Builds a finding.
pub(crate) fn finding(
    rule: Rule,
    kind: FindingKind,
    line: usize,
    column: usize,
    message: String,
) -> LoopFinding {
    LoopFinding {
        rule,
        kind,
        line,
        column,
        message,
    }
}

/// The message shared by every language when a guarded loop leaves silently.
pub(crate) fn silent_message(loop_code: &str, how_to_say: &str) -> String {
    format!(
        "`{}` loop stops on its deadline without saying so: write why before leaving ({how_to_say})",
        snippet(loop_code)
    )
}

/// The message shared by every language for code a scanner could not follow.
pub(crate) fn unscanned_message(reason: &str) -> String {
    format!("loop not checked for H11: {reason}; simplify the code here or split the file")
}

/// The message shared by every language for a fixed sleep outside any loop.
pub(crate) fn bare_sleep_message(sleep_code: &str) -> String {
    format!(
        "`{}` outside any loop: wait for the condition you need, with a deadline, instead of a fixed sleep",
        snippet(sleep_code)
    )
}

/// Whether `character` can be part of an identifier in the scanned languages.
pub(crate) fn is_word_char(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

/// Whether `text` holds `word` as a whole word (neighbours are not word characters or dots).
pub(crate) fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find(word) {
        let start = search_from + found;
        let end = start + word.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let boundary = |neighbour: Option<char>| {
            neighbour.is_none_or(|character| !is_word_char(character) && character != '.')
        };
        if boundary(before) && boundary(after) {
            return true;
        }
        search_from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Whether a message printed on a failing pass promises another try
/// ("still waiting", "retrying in 5 s", "will try again"): printed on the last
/// pass too, it tells the reader the wait goes on, so it is no diagnostic of
/// the give-up (docs/validate.md, "diagnostic").
pub(crate) fn promises_another_try(message: &str) -> bool {
    const PROMISES: [&str; 5] = ["waiting", "retrying", "still", "again", "trying"];
    message
        .split(|character: char| !character.is_alphanumeric())
        .any(|word| {
            PROMISES
                .iter()
                .any(|promise| word.eq_ignore_ascii_case(promise))
        })
}

/// What the language scanners' unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::validate::diagnostic::{FindingKind, Rule};
    use crate::validate::loops::LoopFinding;

    /// A language scanner.
    pub(crate) type Scanner = fn(&str) -> Vec<LoopFinding>;
    /// `(rule, kind, line, column)` of a finding.
    pub(crate) type Located = (Rule, FindingKind, usize, usize);

    /// `(rule, kind, line, column)` of every finding `scan` reports in `source`.
    pub(crate) fn summary(scan: Scanner, source: &str) -> Vec<Located> {
        scan(source)
            .into_iter()
            .map(|finding| (finding.rule, finding.kind, finding.line, finding.column))
            .collect()
    }

    /// An H11 `unbounded` finding at `line`, `column`.
    pub(crate) fn unbounded(line: usize, column: usize) -> Located {
        (Rule::H11, FindingKind::Unbounded, line, column)
    }

    /// An H11 `silent-fallback` finding at `line`, `column`.
    pub(crate) fn silent(line: usize, column: usize) -> Located {
        (Rule::H11, FindingKind::SilentFallback, line, column)
    }

    /// An H11 `unscanned` finding at `line`, `column`.
    pub(crate) fn unscanned(line: usize, column: usize) -> Located {
        (Rule::H11, FindingKind::Unscanned, line, column)
    }

    /// An H23 `bare-sleep` finding at `line`, `column`.
    pub(crate) fn bare_sleep(line: usize, column: usize) -> Located {
        (Rule::H23, FindingKind::BareSleep, line, column)
    }

    /// The robustness check every scanner's tests share: random texts glued from
    /// `fragments`, random strings over `alphabet`, and each of `truncated` never
    /// make `scan` panic, and every finding points inside a real line.
    pub(crate) fn assert_survives_garbage(
        scan: Scanner,
        fragments: &[&str],
        alphabet: &str,
        truncated: &[&str],
        seed: u64,
    ) {
        let in_a_line = |source: &str, finding: &LoopFinding| {
            let line = source.split('\n').nth(finding.line.wrapping_sub(1));
            finding.column >= 1 && line.is_some_and(|line| finding.column <= line.chars().count())
        };
        for source in random_sources(fragments, seed, 1500) {
            for finding in scan(&source) {
                assert!(in_a_line(&source, &finding), "{finding:?} in {source:?}");
            }
        }
        let alphabet: Vec<char> = alphabet.chars().collect();
        let mut random = fastrand::Rng::with_seed(seed.wrapping_add(1));
        for _ in 0..2000 {
            let length = random.usize(0..200);
            let source: String = (0..length)
                .map(|_| alphabet[random.usize(0..alphabet.len())])
                .collect();
            for finding in scan(&source) {
                assert!(
                    finding.line >= 1 && finding.column >= 1,
                    "{finding:?} in {source:?}"
                );
            }
        }
        for source in truncated {
            let _ = scan(source);
        }
    }

    /// Random texts glued from `fragments`, for no-panic tests.
    pub(crate) fn random_sources(fragments: &[&str], seed: u64, count: usize) -> Vec<String> {
        let mut random = fastrand::Rng::with_seed(seed);
        (0..count)
            .map(|_| {
                let pieces = random.usize(0..60);
                (0..pieces)
                    .map(|_| fragments[random.usize(0..fragments.len())])
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_collapses_and_cuts() {
        assert_eq!(snippet("while  (\n $true )"), "while ( $true )");
        let long = "x".repeat(100);
        assert_eq!(snippet(&long).chars().count(), SNIPPET_LIMIT);
        assert!(snippet(&long).ends_with('…'));
    }

    #[test]
    fn contains_word_needs_boundaries() {
        assert!(contains_word("if n > 3", "n"));
        assert!(!contains_word("if nn > 3", "n"));
        assert!(!contains_word("if self.n > 3", "n"));
        assert!(contains_word("if self.n > 3", "self.n"));
        assert!(!contains_word("", "n"));
        assert!(contains_word("é n", "n"));
    }

    #[test]
    fn budget_runs_out() {
        let budget = Budget::new();
        assert!(budget.spend(GUARD_SEARCH_BUDGET - 1));
        assert!(budget.spend(1));
        assert!(!budget.spend(1));
    }

    #[test]
    fn slice_clamps() {
        let chars: Vec<char> = "abc".chars().collect();
        assert_eq!(slice(&chars, 1, 10), "bc");
        assert_eq!(slice(&chars, 5, 2), "");
    }
}
