//! Caps, deadlines and what a loop says when they fire.

use std::collections::{HashMap, HashSet};

use super::patterns::{CALL_NAME, EXIT_CALL, MESSAGE_CALL, RAISE_WITH_MESSAGE, TEST_ASSERTION};
use super::statements::{
    defined_name, first_keyword, header_body, if_chain, simple_statements, COMPOUND,
};
use super::{has_top_level_comma, mentions, Context, STATEMENTS_AFTER_LOOP};
use crate::validate::loops::text::Guard;

impl Context<'_> {
    /// Counters advanced on every path through the loop body: statements
    /// directly in it (or in its `try` / `except` / `finally` / `with` blocks),
    /// never reset to a constant inside the loop; the loop's own variable for a `for`.
    pub(super) fn counters(&self, root: usize, body: &[(usize, usize)]) -> HashSet<String> {
        let statements = self.statements;
        let mut counters: HashSet<String> = HashSet::new();
        let mut pending: Vec<usize> = statements[root].children.clone();
        while let Some(index) = pending.pop() {
            let statement = &statements[index];
            counters.extend(statement.counters.iter().cloned());
            if matches!(
                statement.keyword.as_str(),
                "try" | "except" | "finally" | "with"
            ) {
                pending.extend(statement.children.iter().copied());
            }
        }
        counters.extend(self.stepped_before_every_continue(root, body));
        for &(index, _) in body {
            for (name, value) in &statements[index].assignments {
                if value.trim().parse::<f64>().is_ok() {
                    counters.remove(name);
                }
            }
        }
        if statements[root].keyword == "for" {
            let header = header_body(&statements[root]);
            if let Some((targets, _)) = header.split_once(" in ") {
                counters.extend(
                    targets
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .filter(|name| !name.is_empty())
                        .map(str::to_string),
                );
            }
        }
        counters
    }

    /// Counters of a `while` whose body cannot fall through to the next pass (its
    /// last statement is a plain `break`, `return` or `raise`), so that it goes round
    /// again only by `continue`, and that step the counter before every such
    /// `continue` in the same block (`if tries < limit: tries += 1; continue`).
    fn stepped_before_every_continue(&self, root: usize, body: &[(usize, usize)]) -> Vec<String> {
        let statements = self.statements;
        let ends_the_pass = statements[root].keyword == "while"
            && statements[root].children.last().is_some_and(|&last| {
                let statement = &statements[last];
                statement.children.is_empty()
                    && !COMPOUND.contains(&statement.keyword.as_str())
                    && simple_statements(&statement.code).any(|simple| self.exit_of(simple).leaves)
            });
        if !ends_the_pass {
            return Vec::new();
        }
        let continues: Vec<usize> = body
            .iter()
            .filter(|&&(index, inner_loops)| {
                inner_loops == 0
                    && simple_statements(&statements[index].code)
                        .any(|simple| first_keyword(simple) == "continue")
            })
            .map(|&(index, _)| index)
            .collect();
        let Some(&first) = continues.first() else {
            return Vec::new();
        };
        // The counters stepped in the block of `at` up to and including `at`.
        let stepped_up_to = |at: usize| -> Vec<&String> {
            let Some(parent) = statements[at].parent else {
                return Vec::new();
            };
            statements[parent].children[..=statements[at].sibling]
                .iter()
                .flat_map(|&sibling| statements[sibling].counters.iter())
                .collect()
        };
        let mut names: Vec<String> = stepped_up_to(first).into_iter().cloned().collect();
        names.retain(|name| {
            continues
                .iter()
                .all(|&at| stepped_up_to(at).contains(&name))
        });
        names
    }

    /// Looks for a time check or an iteration cap in the body that leaves the loop.
    pub(super) fn find_guard(
        &self,
        body: &[(usize, usize)],
        is_guard_condition: &dyn Fn(&str) -> bool,
        mentions_guard: &dyn Fn(&str) -> bool,
    ) -> BodyGuard {
        let statements = self.statements;
        let mut result = BodyGuard {
            guard: Guard::None,
            completes_only: true,
            other_exit: false,
            other_break: false,
            clauses: HashSet::new(),
        };
        for &(index, inner_loops) in body {
            let statement = &statements[index];
            match statement.keyword.as_str() {
                "assert" if is_guard_condition(&statement.code) => {
                    result.guard = result.guard.max(if has_top_level_comma(&statement.code) {
                        Guard::Loud
                    } else {
                        Guard::Silent
                    });
                    // A failed `assert` raises: never a normal end.
                    result.completes_only = false;
                }
                _ if TEST_ASSERTION.is_match(&statement.code)
                    && mentions_guard(&statement.code) =>
                {
                    result.guard = Guard::Loud;
                    result.completes_only = false;
                }
                "if" => {
                    let chain = if_chain(statements, index);
                    let guarded = chain.iter().any(|&clause| {
                        statements[clause].keyword != "else"
                            && is_guard_condition(header_body(&statements[clause]))
                    });
                    if !guarded {
                        continue;
                    }
                    for &clause in &chain {
                        let Some(exit) = self.clause_exit(clause, inner_loops) else {
                            continue;
                        };
                        if exit.leaves {
                            result.clauses.insert(clause);
                            result.completes_only &= !exit.fails;
                        }
                        result.guard = result.guard.max(exit.guard());
                    }
                }
                _ => {}
            }
        }
        if result.guard == Guard::None {
            result.completes_only = false;
        }
        // Any other way out (a success `break`, a `return`) makes the cap a give-up.
        for &(index, inner_loops) in body {
            for simple in simple_statements(&statements[index].code) {
                let exit = self.exit_of(simple);
                if exit.leaves
                    && (inner_loops == 0 || !exit.is_break)
                    && !self.under_clause(index, &result.clauses)
                {
                    result.other_exit = true;
                    result.other_break |= exit.is_break;
                }
            }
        }
        result
    }

    /// Whether the loop body says something on the give-up pass before its guard
    /// leaves: a message at the top of the body after every other way out and before
    /// the guard's `if` (`if ok: return 0` / `print("try failed")` / `if n == max: return 1`).
    /// With no guard clause in the body (a `for` over a range of tries), the cap is
    /// reached at the end of the body, so a message anywhere after the last way out counts.
    pub(super) fn speaks_before_guard(&self, index: usize, body_guard: &BodyGuard) -> bool {
        let mut spoke = false;
        for &child in &self.statements[index].children {
            let statement = &self.statements[child];
            if statement.keyword == "if"
                && if_chain(self.statements, child)
                    .iter()
                    .any(|clause| body_guard.clauses.contains(clause))
            {
                return spoke;
            }
            let Some(inside) = self.descendants(child) else {
                return false;
            };
            let leaves = std::iter::once((child, 0))
                .chain(inside)
                .any(|(inner, inner_loops)| {
                    simple_statements(&self.statements[inner].code).any(|simple| {
                        let exit = self.exit_of(simple);
                        exit.leaves && (inner_loops == 0 || !exit.is_break)
                    })
                });
            if leaves {
                spoke = false;
            } else if statement.children.is_empty() && self.statement_speaks(child) {
                spoke = true;
            }
        }
        body_guard.clauses.is_empty() && spoke
    }

    /// Whether statement `index` lies in one of `clauses`.
    pub(super) fn under_clause(&self, index: usize, clauses: &HashSet<usize>) -> bool {
        let mut current = Some(index);
        while let Some(at) = current {
            if clauses.contains(&at) {
                return true;
            }
            if !self.budget.spend(1) {
                return false;
            }
            current = self.statements[at].parent;
        }
        false
    }

    /// Whether the function holding the loop hands its give-up to callers that all
    /// report it: every call in the file is asserted with a message, tested by an
    /// `if` that speaks, or assigned to a name that such an assertion or `if`
    /// checks within the next few statements (`msgs = wait_for(topic)` /
    /// `assert msgs, "nothing arrived"`).
    pub(super) fn callers_report(&self, index: usize) -> bool {
        let mut current = self.statements[index].parent;
        let function = loop {
            let Some(parent) = current else {
                return false;
            };
            match self.statements[parent].keyword.as_str() {
                "def" => break parent,
                "class" => return false,
                _ => current = self.statements[parent].parent,
            }
        };
        let name = defined_name(&self.statements[function]);
        if name.is_empty() {
            return false;
        }
        let mut calls = 0;
        for (at, statement) in self.statements.iter().enumerate() {
            if at == function
                || !CALL_NAME
                    .captures_iter(&statement.code)
                    .any(|captures| captures[1] == *name)
            {
                continue;
            }
            if !self.budget.spend(1) {
                return false;
            }
            calls += 1;
            if !self.checks_loudly(at) {
                return false;
            }
        }
        calls > 0
    }

    /// Whether the call in statement `index` has its result checked with a message.
    pub(super) fn checks_loudly(&self, index: usize) -> bool {
        let statement = &self.statements[index];
        let asserted = |code: &str| {
            (first_keyword(code) == "assert" && has_top_level_comma(code))
                || TEST_ASSERTION.is_match(code)
        };
        if asserted(&statement.code) {
            return true;
        }
        if matches!(statement.keyword.as_str(), "if" | "elif") {
            return if_chain(self.statements, index)
                .iter()
                .any(|&clause| self.block_speaks(clause));
        }
        let Some((targets, _)) = statement.code.split_once('=') else {
            return false;
        };
        let targets: Vec<&str> = targets
            .split(',')
            .map(str::trim)
            .filter(|target| !target.is_empty())
            .collect();
        let checks = |code: &str| targets.iter().any(|target| mentions(code, target));
        for &next in self
            .siblings_after(index)
            .iter()
            .take(STATEMENTS_AFTER_LOOP + 1)
        {
            let following = &self.statements[next];
            if asserted(&following.code) && checks(&following.code) {
                return true;
            }
            if following.keyword == "if" {
                return checks(header_body(following))
                    && if_chain(self.statements, next)
                        .iter()
                        .any(|&clause| self.block_speaks(clause));
            }
            if !following.children.is_empty() || COMPOUND.contains(&following.keyword.as_str()) {
                return false;
            }
        }
        false
    }

    /// Whether the code right after the loop says why when the give-up path reaches it:
    /// a loop `else:` or an `if` right after that speaks, or (when every way out of the
    /// loop other than its guard returns or raises) a message right after it.
    pub(super) fn says_after_loop(&self, index: usize, body_guard: &BodyGuard) -> bool {
        let after = self.siblings_after(index);
        let mut rest = after.iter().copied();
        let mut next = rest.next();
        if let Some(clause) = next.filter(|&clause| self.statements[clause].keyword == "else") {
            if self.block_speaks(clause) {
                return true;
            }
            next = rest.next();
        }
        let Some(mut next) = next else {
            return false;
        };
        // Plain statements (`watch.stop()`) may come before the `if` that retests.
        for _ in 0..STATEMENTS_AFTER_LOOP {
            let statement = &self.statements[next];
            // An assertion retests what the loop waited for: it is never skipped.
            let plain = statement.children.is_empty()
                && !COMPOUND.contains(&statement.keyword.as_str())
                && statement.keyword != "assert"
                && !TEST_ASSERTION.is_match(&statement.code)
                && !self.statement_speaks(next)
                && simple_statements(&statement.code).all(|simple| !self.exit_of(simple).leaves);
            match rest.next() {
                Some(following) if plain => next = following,
                _ => break,
            }
        }
        if self.statements[next].keyword == "if" {
            return if_chain(self.statements, next)
                .iter()
                .any(|&clause| self.block_speaks(clause));
        }
        // An assertion on what the loop waited for fails, with a message, only on the give-up path.
        let code = &self.statements[next].code;
        if TEST_ASSERTION.is_match(code)
            || (self.statements[next].keyword == "assert" && has_top_level_comma(code))
        {
            return true;
        }
        !body_guard.other_break && self.statement_speaks(next)
    }

    /// Whether a clause block (or anything under it) says something.
    pub(super) fn block_speaks(&self, clause: usize) -> bool {
        self.descendants(clause).is_some_and(|inside| {
            inside
                .iter()
                .any(|&(inner, _)| self.statement_speaks(inner))
        })
    }

    pub(super) fn statement_speaks(&self, index: usize) -> bool {
        simple_statements(&self.statements[index].code).any(|simple| self.exit_of(simple).speaks)
    }

    /// Whether the clause leaves the loop (a `break` counts only with no inner loop
    /// in between), and whether it says why; `None` when the budget is spent.
    pub(super) fn clause_exit(&self, clause: usize, inner_loops: usize) -> Option<Exit> {
        let mut result = Exit::default();
        for (index, nested_loops) in self.descendants(clause)? {
            for simple in simple_statements(&self.statements[index].code) {
                let exit = self.exit_of(simple);
                result.speaks |= exit.speaks;
                if exit.leaves && (!exit.is_break || inner_loops + nested_loops == 0) {
                    result.leaves = true;
                    result.fails |= !exit.is_break && !exit.is_return;
                }
            }
        }
        Some(result)
    }

    /// What one simple statement does to the loop around it.
    pub(super) fn exit_of(&self, simple: &str) -> Exit {
        let mut exit = Exit {
            speaks: MESSAGE_CALL.is_match(simple),
            ..Exit::default()
        };
        match first_keyword(simple).as_str() {
            "break" => {
                exit.leaves = true;
                exit.is_break = true;
            }
            "return" => {
                exit.leaves = true;
                exit.is_return = true;
            }
            "raise" => {
                exit.leaves = true;
                // A bare `raise` or `raise error` passes on an exception that carries its message.
                let raised = simple.trim_start_matches("raise").trim();
                exit.speaks |= raised.is_empty()
                    || raised.starts_with(|c: char| c.is_lowercase())
                    || RAISE_WITH_MESSAGE.is_match(simple);
            }
            word => {
                if let Some(captures) = EXIT_CALL.captures(simple) {
                    exit.leaves = true;
                    let argument = captures.get(1).map_or("", |found| found.as_str());
                    exit.speaks |= argument.starts_with(['"', '\''])
                        || argument.starts_with(|c: char| c.is_alphabetic());
                } else if let Some(&(leaves, speaks)) = self.helpers.get(word) {
                    let called = simple.trim_start()[word.len()..]
                        .trim_start()
                        .starts_with('(');
                    exit.leaves |= called && leaves;
                    exit.speaks |= called && speaks;
                }
            }
        }
        exit
    }
}

/// What a statement or clause does when it runs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Exit {
    pub(super) leaves: bool,
    pub(super) speaks: bool,
    pub(super) is_break: bool,
    pub(super) is_return: bool,
    /// Leaves by `raise` or by ending the program: a failure, never a normal end.
    pub(super) fails: bool,
}

impl Exit {
    pub(super) fn guard(self) -> Guard {
        Guard::of(self.leaves, self.speaks)
    }
}

/// What a loop body's guards give.
pub(super) struct BodyGuard {
    pub(super) guard: Guard,
    /// Every guard that leaves does so with `break` or `return`, as the end of a
    /// countdown or of a time budget does; none raises or ends the program.
    pub(super) completes_only: bool,
    /// The loop has a way out that is not a guard.
    pub(super) other_exit: bool,
    /// One of those ways out is a `break`, which lands right after the loop.
    pub(super) other_break: bool,
    /// Guard clauses that leave the loop.
    pub(super) clauses: HashSet<usize>,
}

/// Functions of the file that end the program (`sys.exit`, `raise`, `os._exit`
/// directly in their body), and whether they say why first.
pub(super) fn find_helpers(context: &Context<'_>) -> HashMap<String, (bool, bool)> {
    let mut helpers = HashMap::new();
    for statement in context.statements {
        if statement.keyword != "def" {
            continue;
        }
        let name = defined_name(statement);
        let mut leaves = false;
        let mut speaks = false;
        for &child in &statement.children {
            for simple in simple_statements(&context.statements[child].code) {
                let exit = context.exit_of(simple);
                let word = first_keyword(simple);
                leaves |= word == "raise" || EXIT_CALL.is_match(simple);
                speaks |= exit.speaks;
            }
        }
        if !name.is_empty() {
            helpers.insert(name, (leaves, speaks));
        }
    }
    helpers
}
