//! Findings are data: every scanner returns them, every report format renders them.

use serde::Serialize;

/// A governance rule with a stable public code. Never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Rule {
    /// Every loop or blocking wait in automation has a deadline or iteration
    /// cap, a fallback exit, and a diagnostic when that exit is taken.
    H11,
    /// A bare `sleep` with no loop or retry around it is a guess, not a wait.
    H23,
}

/// What exactly is wrong at a finding's location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A loop that never ends by its own condition and has no guard that stops it.
    Unbounded,
    /// A guarded loop whose fallback exit says nothing when it is taken.
    SilentFallback,
    /// A fixed sleep outside any loop or retry.
    BareSleep,
    /// Code the scanner could not follow (nesting deeper than it reads, its
    /// work budget spent, text it cannot decode), so no verdict was possible.
    /// `validate` fails closed: this is a finding, never a silent pass.
    Unscanned,
}

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// Path relative to the project folder, `/`-separated.
    pub path: String,
    /// 1-based line of the loop's (or sleep's) first line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub kind: FindingKind,
    /// What to add or change.
    pub message: String,
    /// Silenced by a `specsmith: allow <RULE>` comment on the line or the line above.
    pub suppressed: bool,
}
