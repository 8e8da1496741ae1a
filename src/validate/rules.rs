//! The rule table: one entry per rule code, reused by every output format and
//! the docs. Codes are public API: never renumber or reuse one.

use super::diagnostic::Rule;

/// What a rule checks and how to satisfy it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule this entry documents.
    pub rule: Rule,
    /// Stable code, such as `H11`.
    pub code: &'static str,
    /// Stable kebab-case name, such as `unbounded-loop`.
    pub name: &'static str,
    /// One sentence: what the rule asks for.
    pub summary: &'static str,
    /// What the rule checks, why it matters, and an example fix (markdown).
    pub explanation: &'static str,
}

/// Every rule, in code order; a rule's position here is its SARIF `ruleIndex`.
pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        rule: Rule::H11,
        code: "H11",
        name: "unbounded-loop",
        summary: "Every loop or blocking wait in automation has a deadline or iteration cap, \
                  a fallback exit, and a message when that exit is taken.",
        explanation: "\
**What it checks.** Loops in scripts (sh/bash, PowerShell, batch, Python under `scripts/`) \
that never end by their own condition: `while true`, `while :`, `until false`, `for ((;;))`, \
`while ($true)`, `do {} while ($true)`, `for (;;)`, a label reached again by `goto`, \
`while True:`, and loops over endless streams such as `tail -f`. Such a loop counts as \
guarded only when an elapsed-time check or an iteration counter compared with a bound \
leaves *that* loop, or when the loop runs under a deadline wrapper such as `timeout 60`. \
A guarded loop whose fallback exit prints nothing is reported too (`silent-fallback`).

**Why.** An agent or CI job stuck in a loop that waits for something that never happens \
burns time and credits until a human notices; a deadline turns the hang into a clear failure.

**Fix.** Add a deadline, leave the loop when it passes, and say so:

```sh
deadline=$((SECONDS + 300))
until curl -fsS http://localhost:8080/health; do
  if (( SECONDS >= deadline )); then
    echo \"service not healthy after 300 s\" >&2
    exit 1
  fi
  sleep 5
done
```",
    },
    RuleInfo {
        rule: Rule::H23,
        code: "H23",
        name: "bare-sleep",
        summary: "A fixed sleep with no loop or retry around it is a guess, not a wait: \
                  poll for the condition with a bounded retry loop instead.",
        explanation: "\
**What it checks.** A `sleep N`, `Start-Sleep`, `timeout /t N` or `time.sleep(N)` that is \
not inside a loop or retry: the script waits a fixed time and hopes the thing it waits \
for is ready.

**Why.** Too short and the next step fails at random; too long and every run wastes the \
difference. Polling the real condition with a bounded loop is both faster and reliable.

**Fix.** Replace the sleep with a bounded poll that fails loudly:

```sh
for attempt in $(seq 1 30); do
  pg_isready -q && break
  if [ \"$attempt\" -eq 30 ]; then echo \"database not ready after 30 tries\" >&2; exit 1; fi
  sleep 2
done
```",
    },
];

impl Rule {
    /// This rule's entry in [`RULES`].
    pub fn info(self) -> &'static RuleInfo {
        &RULES[self.index()]
    }

    /// This rule's position in [`RULES`] (its SARIF `ruleIndex`).
    pub fn index(self) -> usize {
        match self {
            Rule::H11 => 0,
            Rule::H23 => 1,
        }
    }

    /// The stable code, such as `H11`.
    pub fn code(self) -> &'static str {
        self.info().code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_sits_at_its_own_index() {
        for (index, info) in RULES.iter().enumerate() {
            assert_eq!(info.rule.index(), index, "{}", info.code);
            assert_eq!(info.rule.info().code, info.code);
            assert_eq!(format!("{:?}", info.rule), info.code);
        }
    }

    #[test]
    fn names_are_unique_kebab_case() {
        let mut names: Vec<&str> = RULES.iter().map(|info| info.name).collect();
        for name in &names {
            assert!(name
                .chars()
                .all(|character| character.is_ascii_lowercase() || character == '-'));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
    }
}
