//! Python loop scanner (files under a `scripts` folder).
//!
//! A small lexer blanks comments and string contents (triple-quoted strings and
//! f-strings included) and groups physical lines into logical lines, following
//! brackets and backslash continuations. Indentation then gives each statement
//! its parent, so a loop's body is exactly its indented block and a guard is
//! looked for only where it can stop that loop.

mod guards;
mod patterns;
mod shapes;
mod statements;

use std::collections::{HashMap, HashSet};

use super::text::{
    bare_sleep_message, contains_word, finding, silent_message, slice, snippet, unscanned_message,
    Budget, Guard,
};
use super::LoopFinding;
use crate::validate::diagnostic::{FindingKind, Rule};
use guards::find_helpers;
use patterns::{COMPARISON, PROBE, SLEEP_CALL, TIME_CALL, WAIT_CALL};
use shapes::{always_true, endless_for, find_input_readers};
use statements::{
    build_tree, header_body, if_chain, is_loop, is_scope, logical_lines, loop_ancestry,
    position_of, split_statements, Statement,
};

/// Scans one file's text; see [`super::scan`].
pub fn scan(source: &str) -> Vec<LoopFinding> {
    // Callers remove a byte-order mark; one left over is still not text.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let chars: Vec<char> = source.chars().collect();
    let statements = build_tree(split_statements(logical_lines(&chars)));
    let imports_itertools = statements
        .iter()
        .any(|statement| statement.code.starts_with("from itertools import"));
    let roots = (0..statements.len())
        .filter(|&index| statements[index].parent.is_none())
        .collect();
    let mut context = Context {
        statements: &statements,
        chars: &chars,
        imports_itertools,
        helpers: HashMap::new(),
        readers: HashSet::new(),
        roots,
        budget: Budget::new(),
    };
    context.helpers = find_helpers(&context);
    context.readers = find_input_readers(&context);
    let in_loop = loop_ancestry(&statements);
    let mut findings = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        if is_loop(statement) {
            context.check_loop(index, &mut findings);
        } else if !in_loop[index] {
            check_bare_sleep(statement, &chars, &mut findings);
        }
    }
    findings
}

/// How many plain statements after a loop may come before the `if` that retests it.
const STATEMENTS_AFTER_LOOP: usize = 4;

/// What one file's loop checks share.
struct Context<'a> {
    statements: &'a [Statement],
    chars: &'a [char],
    imports_itertools: bool,
    /// Functions defined in the file: name → (always leaves the program, says why).
    helpers: HashMap<String, (bool, bool)>,
    /// Functions defined in the file that read a line from the user.
    readers: HashSet<String>,
    /// Statements at the top of the file (no parent), in order.
    roots: Vec<usize>,
    budget: Budget,
}

/// Why a loop might not end.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `while True`, `itertools.count()`: nothing in the header ever ends it.
    Endless,
    /// A `while` whose condition waits on the outside world; names what it waits for.
    Wait(String),
    /// A `for` over a finite range whose body sleeps between tries and leaves on success.
    Retry,
}

impl Context<'_> {
    /// The statements after `index` in the same block.
    fn siblings_after(&self, index: usize) -> &[usize] {
        let siblings: &[usize] = match self.statements[index].parent {
            Some(parent) => &self.statements[parent].children,
            None => &self.roots,
        };
        let position = self.statements[index].sibling;
        siblings.get(position + 1..).unwrap_or_default()
    }

    /// Descendants of `root` in source order, with how many loops lie between
    /// `root` and each, skipping function and class bodies; `None` when the
    /// file's work budget is spent.
    fn descendants(&self, root: usize) -> Option<Vec<(usize, usize)>> {
        let statements = self.statements;
        let mut found = Vec::new();
        let mut pending: Vec<(usize, usize)> = statements[root]
            .children
            .iter()
            .rev()
            .map(|&child| (child, 0))
            .collect();
        while let Some((index, inner_loops)) = pending.pop() {
            if !self.budget.spend(1) {
                return None;
            }
            let statement = &statements[index];
            if is_scope(statement) {
                continue;
            }
            found.push((index, inner_loops));
            let below = inner_loops + usize::from(is_loop(statement));
            pending.extend(statement.children.iter().rev().map(|&child| (child, below)));
        }
        Some(found)
    }

    fn check_loop(&self, index: usize, findings: &mut Vec<LoopFinding>) {
        let statement = &self.statements[index];
        let header = header_body(statement);
        let Some(body) = self.descendants(index) else {
            findings.push(unscanned(statement));
            return;
        };
        // A `while` that blocks on a condition or event with a timeout
        // (`ready.wait(timeout=left)`) pauses between tests as a sleep does.
        let sleeps = body.iter().any(|&(inner, _)| {
            let code = &self.statements[inner].code;
            has_sleep_call(code) || (statement.keyword == "while" && WAIT_CALL.is_match(code))
        });
        // A `for` whose only sleep is in an inner loop walks items; the inner loop
        // is a wait of its own and is checked on its own.
        let sleeps_itself = body.iter().any(|&(inner, inner_loops)| {
            inner_loops == 0 && has_sleep_call(&self.statements[inner].code)
        });
        if statement.keyword == "while" && self.drains(header, &body) {
            return;
        }
        let shape = match statement.keyword.as_str() {
            "while" if always_true(header) || self.never_changed(header, &body) => Shape::Endless,
            "while" => match PROBE.find(header) {
                Some(probe) => Shape::Wait(probe.as_str().trim_end_matches([' ', '(']).to_string()),
                None if sleeps && !self.follows_a_cursor(header, &body) => {
                    Shape::Wait(header.to_string())
                }
                None => return,
            },
            _ if endless_for(header, self.imports_itertools) => Shape::Endless,
            _ if sleeps_itself && self.leaves_early(&body) => Shape::Retry,
            _ => return,
        };
        if shape == Shape::Endless
            && !sleeps
            && (self.ends_with_its_input(index, &body) || self.read_until_closed(index, &body))
        {
            return;
        }
        if let Some((scope, quiet)) = self.timeout_scope(index) {
            // The deadline is the scope's; a failing scope raises `TimeoutError` itself.
            // A quiet scope lands after the `with` on both paths: only a test there
            // (`if scope.cancelled_caught: print(…)`) can tell the give-up apart.
            let announced = !quiet
                || self.siblings_after(scope).first().is_some_and(|&next| {
                    self.statements[next].keyword == "if"
                        && if_chain(self.statements, next)
                            .iter()
                            .any(|&clause| self.block_speaks(clause))
                });
            if !announced {
                let original = slice(
                    self.chars,
                    statement.start,
                    statement.start + statement.code.chars().count(),
                );
                findings.push(finding(
                    Rule::H11,
                    FindingKind::SilentFallback,
                    statement.line,
                    statement.column,
                    silent_message(
                        original.trim_end(),
                        "test the scope's `cancelled_caught` after it and `print(...)` why, or use `fail_after`",
                    ),
                ));
            }
            return;
        }
        let counters = self.counters(index, &body);
        if shape == Shape::Endless && self.pages_by_counter(&body, &counters) {
            return;
        }
        // `while os.path.exists(f"log{n}"): n += 1` tries a new name each pass: a search.
        if matches!(shape, Shape::Wait(_))
            && !sleeps
            && !COMPARISON.is_match(header)
            && counters.iter().any(|name| contains_word(header, name))
        {
            return;
        }
        let clocks = clock_variables(self.statements, &body);
        if matches!(shape, Shape::Wait(_))
            && self.drains_with_item_deadlines(header, &body, &clocks)
        {
            return;
        }
        let is_guard_condition = |condition: &str| {
            COMPARISON.is_match(condition)
                && (TIME_CALL.is_match(condition)
                    || clocks.iter().any(|name| contains_word(condition, name))
                    || counters.iter().any(|name| contains_word(condition, name)))
        };
        // A unittest assertion compares by itself: `self.assertLess(time.monotonic(), deadline)`.
        let mentions_guard = |code: &str| {
            TIME_CALL.is_match(code)
                || clocks.iter().any(|name| contains_word(code, name))
                || counters.iter().any(|name| contains_word(code, name))
        };
        let header_guard = match &shape {
            Shape::Endless => false,
            Shape::Wait(_) => is_guard_condition(header),
            Shape::Retry => true,
        };
        // `while sent < 300: …; time.sleep(1)` counts rounds and waits for nothing.
        let counted = matches!(shape, Shape::Wait(_))
            && header_guard
            && PROBE.find(header).is_none()
            && !contains_word(header, "and")
            && !contains_word(header, "or")
            && !self.leaves_early(&body);
        if counted {
            return;
        }
        let mut body_guard = self.find_guard(&body, &is_guard_condition, &mentions_guard);
        if body_guard.guard == Guard::Silent && self.speaks_before_guard(index, &body_guard) {
            body_guard.guard = Guard::Loud;
        }
        let original = slice(
            self.chars,
            statement.start,
            statement.start + statement.code.chars().count(),
        );
        let original = original.trim_end();
        if !header_guard && body_guard.guard == Guard::None {
            let message = match &shape {
                Shape::Wait(probe) => format!(
                    "`{}` loop waits for `{}` with no deadline: add one (`if time.monotonic() > deadline: raise TimeoutError(\"…\")`) or an iteration cap",
                    snippet(original),
                    snippet(probe)
                ),
                _ => format!(
                    "`{}` loop never ends by itself: add a deadline (`if time.monotonic() > deadline: raise TimeoutError(\"timed out\")`) or an iteration cap",
                    snippet(original)
                ),
            };
            findings.push(finding(
                Rule::H11,
                FindingKind::Unbounded,
                statement.line,
                statement.column,
                message,
            ));
            return;
        }
        if body_guard.guard == Guard::Loud {
            return;
        }
        // A `for` over items whose only way out early is an item cap (`if done >= limit:
        // break`) ends normally there; its sleep paces the work, it waits for nothing.
        if shape == Shape::Retry
            && body_guard.guard != Guard::None
            && body_guard.completes_only
            && !body_guard.other_exit
        {
            return;
        }
        // A retry whose cap is its own range: a message on every failing pass, after
        // the body's ways out, is also said on the last one.
        if shape == Shape::Retry
            && body_guard.guard == Guard::None
            && self.speaks_before_guard(index, &body_guard)
        {
            return;
        }
        // A loop that waits for nothing (no sleep, no other way out) and whose only
        // exit is its own cap or deadline, by `break` or `return`, ends normally there:
        // that is a countdown or a time budget.
        let countdown = shape == Shape::Endless
            && !header_guard
            && !sleeps
            && body_guard.completes_only
            && !body_guard.other_exit;
        if countdown || self.says_after_loop(index, &body_guard) || self.callers_report(index) {
            return;
        }
        findings.push(finding(
            Rule::H11,
            FindingKind::SilentFallback,
            statement.line,
            statement.column,
            silent_message(
                original,
                "`print(...)`, `logging.error(...)` or `raise TimeoutError(\"...\")`",
            ),
        ));
    }
}

/// Whether `name` occurs in `code` as a whole name, alone or as the start of a
/// path (`stack` in `stack.pop()` and `stack[0]`, not in `backstack` or `a.stack`).
fn mentions(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(start, _)| {
        let before = code[..start].chars().next_back();
        let after = code[start + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.'))
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Whether `name` appears among the arguments of a call in `expression` (blanked code).
fn passed_to_call(expression: &str, name: &str) -> bool {
    let mut open: Vec<bool> = Vec::new();
    let mut previous = ' ';
    let mut word = String::new();
    for character in expression.chars().chain(std::iter::once(' ')) {
        if character.is_alphanumeric() || matches!(character, '_' | '.') {
            word.push(character);
            previous = character;
            continue;
        }
        if !word.is_empty() {
            if word == name && open.last() == Some(&true) {
                return true;
            }
            word.clear();
        }
        match character {
            // A parenthesis right after a name or a closing bracket is a call.
            '(' => open.push(previous.is_alphanumeric() || matches!(previous, '_' | ')' | ']')),
            '[' | '{' => open.push(false),
            ')' | ']' | '}' => {
                open.pop();
            }
            _ => {}
        }
        if !character.is_whitespace() {
            previous = character;
        }
    }
    false
}

/// Names in an expression, dotted paths whole (`self.pos`) and each prefix-free part.
fn dotted_names(expression: &str) -> impl Iterator<Item = &str> {
    expression
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .flat_map(|path| {
            let path = path.trim_matches('.');
            std::iter::once(path).chain(path.split('.'))
        })
        .filter(|name| !name.is_empty())
}

/// The finding for a loop the scanner ran out of work budget on.
fn unscanned(statement: &Statement) -> LoopFinding {
    finding(
        Rule::H11,
        FindingKind::Unscanned,
        statement.line,
        statement.column,
        unscanned_message("the file needs more work than the scanner's per-file budget"),
    )
}

fn has_sleep_call(code: &str) -> bool {
    SLEEP_CALL.find_iter(code).any(|found| {
        let before = code[..found.start()].chars().next_back();
        !before.is_some_and(|character| character.is_alphanumeric() || character == '_')
            || found.as_str().contains('.')
    })
}

fn has_top_level_comma(code: &str) -> bool {
    let mut depth: usize = 0;
    for character in code.chars() {
        match character {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Variables assigned from a clock (directly or through another such variable) in the loop.
fn clock_variables(statements: &[Statement], body: &[(usize, usize)]) -> Vec<String> {
    let assignments: Vec<&(String, String)> = body
        .iter()
        .flat_map(|&(index, _)| statements[index].assignments.iter())
        .collect();
    let mut clocks: Vec<String> = Vec::new();
    // Each round adds at least one name or stops, so it ends within `assignments.len()` rounds.
    for _ in 0..=assignments.len() {
        let before = clocks.len();
        for (name, value) in assignments.iter().copied() {
            if !clocks.contains(name)
                && (TIME_CALL.is_match(value)
                    || clocks.iter().any(|clock| contains_word(value, clock)))
            {
                clocks.push(name.clone());
            }
        }
        if clocks.len() == before {
            break;
        }
    }
    clocks
}

fn check_bare_sleep(statement: &Statement, chars: &[char], findings: &mut Vec<LoopFinding>) {
    for found in SLEEP_CALL.find_iter(&statement.code) {
        let before = statement.code[..found.start()].chars().next_back();
        if before.is_some_and(|character| {
            character == '.' || character.is_alphanumeric() || character == '_'
        }) {
            continue;
        }
        let code: Vec<char> = statement.code.chars().collect();
        let offset = statement.code[..found.start()].chars().count();
        let call_end = call_end(&code, offset + found.as_str().chars().count());
        let (line, column) = position_of(&code, statement.line, statement.column, offset);
        let original = slice(chars, statement.start + offset, statement.start + call_end);
        findings.push(finding(
            Rule::H23,
            FindingKind::BareSleep,
            line,
            column,
            bare_sleep_message(&original),
        ));
    }
}

/// Offset just past the parenthesis closing a call whose arguments start at `offset`.
fn call_end(code: &[char], offset: usize) -> usize {
    let mut depth: usize = 1;
    for (index, &character) in code.iter().enumerate().skip(offset) {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            '\n' => return index,
            _ => {}
        }
    }
    code.len()
}

#[cfg(test)]
mod tests;
