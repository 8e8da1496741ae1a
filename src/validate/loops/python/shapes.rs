//! Why a loop might not end, and the shapes that end by themselves after all:
//! drains, pages, walks, reads that stop with their input.

use std::collections::HashSet;

use super::patterns::{
    AUGMENTED, CALL_NAME, CATCHES_END_OF_INPUT, COMPARISON, CONNECTION_CLOSED, ENDLESS_ITERATOR,
    END_OF_INPUT, HAS_PENDING, INPUT_CALL, NAME_CONDITION, READ_CALL, SHRINKING, TIMEOUT_SCOPE,
    TIME_CALL,
};
use super::statements::{defined_name, header_body, is_loop, is_scope, simple_statements};
use super::{dotted_names, mentions, passed_to_call, Context};
use crate::validate::loops::text::contains_word;

/// Whether a `while` condition is always true.
pub(super) fn always_true(condition: &str) -> bool {
    let mut condition = condition.trim();
    while let Some(inner) = condition
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
    {
        condition = inner.trim();
    }
    if condition == "True" {
        return true;
    }
    if let Some(negated) = condition.strip_prefix("not ") {
        return matches!(negated.trim(), "False" | "0" | "None" | "(False)");
    }
    !condition.is_empty()
        && condition
            .chars()
            .all(|character| character.is_ascii_digit())
        && condition.chars().any(|character| character != '0')
}

/// Whether a `for` header iterates over an endless iterator.
pub(super) fn endless_for(header: &str, imports_itertools: bool) -> bool {
    let Some(in_position) = header.find(" in ") else {
        return false;
    };
    let iterable = header[in_position + 4..].trim();
    match ENDLESS_ITERATOR.captures(iterable) {
        Some(captures) => {
            captures.get(1).is_some() || captures.get(3).is_some() || imports_itertools
        }
        None => false,
    }
}

/// Functions of the file with a call that reads a line from the user anywhere in
/// their body (nested functions and classes aside).
pub(super) fn find_input_readers(context: &Context<'_>) -> HashSet<String> {
    let mut readers = HashSet::new();
    for (index, statement) in context.statements.iter().enumerate() {
        if statement.keyword != "def" {
            continue;
        }
        let name = defined_name(statement);
        let reads = context.descendants(index).is_some_and(|body| {
            body.iter()
                .any(|&(inner, _)| INPUT_CALL.is_match(&context.statements[inner].code))
        });
        if reads && !name.is_empty() {
            readers.insert(name);
        }
    }
    readers
}

impl Context<'_> {
    /// Whether a `while` over "something is waiting" takes it each pass
    /// (`while conn.poll(): msg = conn.recv()`): it ends when the pipe or queue is
    /// empty, it never waits for more.
    pub(super) fn drains(&self, header: &str, body: &[(usize, usize)]) -> bool {
        let Some(captures) = HAS_PENDING.captures(header.trim()) else {
            return false;
        };
        let Some(source) = captures.get(1).or(captures.get(2)) else {
            return false;
        };
        let takes = [
            "recv",
            "recv_bytes",
            "get",
            "get_nowait",
            "pop",
            "popleft",
            "read",
        ]
        .map(|method| format!("{}.{method}(", source.as_str()));
        body.iter().any(|&(index, _)| {
            let code: String = self.statements[index]
                .code
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            takes.iter().any(|take| code.contains(take.as_str()))
        })
    }

    /// The innermost `with` of the same function around loop `index` that cancels
    /// its body at a deadline (`with anyio.fail_after(60):`), and whether that
    /// scope ends quietly.
    pub(super) fn timeout_scope(&self, index: usize) -> Option<(usize, bool)> {
        let mut current = self.statements[index].parent;
        // Each step moves to a parent, so this ends within the statement count.
        while let Some(parent) = current {
            let statement = &self.statements[parent];
            if is_scope(statement) {
                return None;
            }
            if statement.keyword == "with" {
                if let Some(captures) = TIMEOUT_SCOPE.captures(&statement.code) {
                    return Some((parent, captures.get(1).is_some()));
                }
            }
            current = statement.parent;
        }
        None
    }

    /// Whether an endless loop reads a connection (`await ws.receive_text()`) inside a
    /// `try` of the same function that handles the connection closing: the read
    /// raises when the other side goes away, which ends the loop.
    pub(super) fn read_until_closed(&self, index: usize, body: &[(usize, usize)]) -> bool {
        let reads = body
            .iter()
            .any(|&(inner, _)| READ_CALL.is_match(&self.statements[inner].code));
        if !reads {
            return false;
        }
        let mut current = self.statements[index].parent;
        // Each step moves to a parent, so this ends within the statement count.
        while let Some(parent) = current {
            let statement = &self.statements[parent];
            if is_scope(statement) {
                return false;
            }
            if statement.keyword == "try" {
                let handled = self
                    .siblings_after(parent)
                    .iter()
                    .take_while(|&&clause| {
                        matches!(
                            self.statements[clause].keyword.as_str(),
                            "except" | "else" | "finally"
                        )
                    })
                    .any(|&clause| {
                        self.statements[clause].keyword == "except"
                            && CONNECTION_CLOSED.is_match(&self.statements[clause].code)
                    });
                if handled {
                    return true;
                }
            }
            current = statement.parent;
        }
        false
    }

    /// Whether a `while jobs:` takes finished jobs out of the collection it tests
    /// (`jobs.remove(job)`, `jobs = [j for j in jobs if …]`) and compares a clock in
    /// the body (`if time.monotonic() - job.started > limit: job.kill()`): every job
    /// leaves by finishing or by its own deadline, so the collection empties.
    pub(super) fn drains_with_item_deadlines(
        &self,
        header: &str,
        body: &[(usize, usize)],
        clocks: &[String],
    ) -> bool {
        let Some(captures) = NAME_CONDITION.captures(header.trim()) else {
            return false;
        };
        if header.trim_start().starts_with("not") {
            return false;
        }
        let jobs = &captures[1];
        let takes =
            [".remove(", ".pop(", ".discard(", ".popleft("].map(|method| format!("{jobs}{method}"));
        let delete = format!("del {jobs}[");
        let drained = body.iter().any(|&(index, _)| {
            let statement = &self.statements[index];
            let code: String = statement
                .code
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            takes.iter().any(|take| code.contains(take.as_str()))
                || statement.code.trim_start().starts_with(&delete)
                || statement
                    .assignments
                    .iter()
                    .any(|(name, value)| name == jobs && mentions(value, jobs))
        });
        let timed = body.iter().any(|&(index, _)| {
            let statement = &self.statements[index];
            matches!(statement.keyword.as_str(), "if" | "elif") && {
                let condition = header_body(statement);
                COMPARISON.is_match(condition)
                    && (TIME_CALL.is_match(condition)
                        || clocks.iter().any(|clock| contains_word(condition, clock)))
            }
        });
        drained && timed
    }

    /// Whether the condition is one name that the loop body never mentions
    /// (`flag = True` / `while flag:`): nothing in the loop changes it, so only
    /// a signal handler or another thread could end the loop.
    pub(super) fn never_changed(&self, header: &str, body: &[(usize, usize)]) -> bool {
        let Some(captures) = NAME_CONDITION.captures(header.trim()) else {
            return false;
        };
        let name = &captures[1];
        if matches!(name, "True" | "False" | "None") {
            return false;
        }
        !body
            .iter()
            .any(|&(index, _)| mentions(&self.statements[index].code, name))
    }

    /// Whether the condition tests a cursor the body passes to a call and takes back
    /// from its answer (`x = client.list(NextToken=token)` / `token = x.get("NextToken")`):
    /// the loop pages through a listing until it ends; a sleep there only paces it.
    pub(super) fn follows_a_cursor(&self, header: &str, body: &[(usize, usize)]) -> bool {
        let assignments: Vec<(&str, &str)> = body
            .iter()
            .flat_map(|&(index, _)| self.statements[index].assignments.iter())
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        dotted_names(header).any(|cursor| {
            if !assignments.iter().any(|&(name, _)| name == cursor) {
                return false;
            }
            // The names the cursor's next value is computed from, through the body's assignments.
            let mut sources: Vec<&str> = vec![cursor];
            // Each round adds a name or stops, so it ends within `assignments.len()` rounds.
            for _ in 0..=assignments.len() {
                let before = sources.len();
                for &(name, value) in &assignments {
                    if sources.contains(&name) {
                        for used in dotted_names(value) {
                            if !sources.contains(&used) {
                                sources.push(used);
                            }
                        }
                    }
                }
                if sources.len() == before {
                    break;
                }
            }
            assignments
                .iter()
                .any(|&(name, value)| sources.contains(&name) && passed_to_call(value, cursor))
        })
    }

    /// Whether an endless loop pages through a listing by a number it steps each pass:
    /// the counter (or a name it is stored in, `params["page"] = page`) goes into a
    /// call, and a test that the call's answer came back empty leaves the loop
    /// (`if not items: break`). Each pass asks for something new, and the listing ends.
    pub(super) fn pages_by_counter(
        &self,
        body: &[(usize, usize)],
        counters: &HashSet<String>,
    ) -> bool {
        let statements = self.statements;
        let simples: Vec<&str> = body
            .iter()
            .flat_map(|&(index, _)| simple_statements(&statements[index].code))
            .collect();
        // `target = value` with the target's base name: `params` of `params["pn"]`.
        let stores: Vec<(&str, &str)> = simples
            .iter()
            .filter_map(|simple| {
                let (target, value) = simple.split_once('=')?;
                if value.starts_with('=') || target.ends_with(['<', '>', '!', '=']) {
                    return None;
                }
                let base = target
                    .trim()
                    .split(['[', '.', ':'])
                    .next()
                    .unwrap_or_default()
                    .trim();
                (!base.is_empty() && base.chars().all(|c| c.is_alphanumeric() || c == '_'))
                    .then_some((base, value))
            })
            .collect();
        let grow = |names: &mut Vec<String>| {
            // Each round adds a name or stops, so it ends within `stores.len()` rounds.
            for _ in 0..=stores.len() {
                let before = names.len();
                for &(base, value) in &stores {
                    if !names.iter().any(|name| name == base)
                        && names.iter().any(|name| mentions(value, name))
                    {
                        names.push(base.to_string());
                    }
                }
                if names.len() == before {
                    break;
                }
            }
        };
        counters.iter().any(|counter| {
            let mut carriers = vec![counter.clone()];
            grow(&mut carriers);
            // The names the answer of a call that takes the counter flows into.
            let mut answers: Vec<String> = stores
                .iter()
                .filter(|&&(base, value)| {
                    base != counter.as_str()
                        && carriers
                            .iter()
                            .any(|carrier| passed_to_call(value, carrier))
                })
                .map(|&(base, _)| base.to_string())
                .collect();
            if answers.is_empty() {
                return false;
            }
            grow(&mut answers);
            body.iter().any(|&(index, inner_loops)| {
                let statement = &statements[index];
                matches!(statement.keyword.as_str(), "if" | "elif")
                    && split_top_level(header_body(statement), " or ")
                        .any(|part| answers.iter().any(|answer| tests_empty(part, answer)))
                    && self
                        .clause_exit(index, inner_loops)
                        .is_some_and(|exit| exit.leaves)
            })
        })
    }

    /// Whether some statement of the body leaves the loop (`break`, `return`, `raise`, an exit).
    pub(super) fn leaves_early(&self, body: &[(usize, usize)]) -> bool {
        body.iter().any(|&(index, inner_loops)| {
            simple_statements(&self.statements[index].code).any(|simple| {
                let exit = self.exit_of(simple);
                exit.leaves && (inner_loops == 0 || !exit.is_break)
            })
        })
    }

    /// Whether an endless loop in fact ends with the data it reads: `input()`
    /// (end of input raises `EOFError`), a handler for end of input that
    /// leaves, or a test on something the body reads or walks that leaves.
    pub(super) fn ends_with_its_input(&self, root: usize, body: &[(usize, usize)]) -> bool {
        let statements = self.statements;
        let mut assigned: Vec<(&str, &str)> = Vec::new();
        for &(index, inner_loops) in body {
            let statement = &statements[index];
            if (INPUT_CALL.is_match(&statement.code) || self.calls_reader(&statement.code))
                && !self.swallows_end_of_input(root, index)
            {
                return true;
            }
            // The handler ends the loop only if it leaves (`except EOFError: break`).
            if statement.keyword == "except"
                && END_OF_INPUT.is_match(&statement.code)
                && self
                    .clause_exit(index, inner_loops)
                    .is_some_and(|exit| exit.leaves)
            {
                return true;
            }
            assigned.extend(
                statement
                    .assignments
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            );
            // `key, op, value = queue.pop()`: each name takes part of the value.
            for simple in simple_statements(&statement.code) {
                let Some((targets, value)) = simple.split_once('=') else {
                    continue;
                };
                if !targets.contains(',') || value.starts_with('=') {
                    continue;
                }
                for target in targets.split(',') {
                    let target = target.trim();
                    if !target.is_empty() && target.chars().all(|c| c.is_alphanumeric() || c == '_')
                    {
                        assigned.push((target, value));
                    }
                }
            }
        }
        // Walked: read from a stream, or computed from what the loop itself assigns.
        let names: HashSet<&str> = assigned.iter().map(|&(name, _)| name).collect();
        let walked: Vec<&str> = assigned
            .iter()
            .filter(|(_, value)| {
                READ_CALL.is_match(value) || dotted_names(value).any(|name| names.contains(name))
            })
            .map(|&(name, _)| name)
            .collect();
        // A cursor the body steps (`self.pos += 1`) and tests against a length walks a sequence.
        let stepped: Vec<&str> = body
            .iter()
            .flat_map(|&(index, _)| simple_statements(&statements[index].code))
            .filter_map(|simple| AUGMENTED.captures(simple))
            .filter_map(|captures| captures.get(1).map(|name| name.as_str()))
            .collect();
        // A number the body shifts or divides down (`n >>= 7`) reaches zero.
        let shrinking: Vec<&str> = body
            .iter()
            .flat_map(|&(index, _)| simple_statements(&statements[index].code))
            .filter_map(|simple| SHRINKING.captures(simple))
            .filter_map(|captures| captures.get(1).map(|name| name.as_str()))
            .collect();
        body.iter().any(|&(index, inner_loops)| {
            let statement = &statements[index];
            if !matches!(statement.keyword.as_str(), "if" | "elif") {
                return false;
            }
            let condition = header_body(statement);
            let at_the_end = contains_word(condition, "len")
                && COMPARISON.is_match(condition)
                && stepped.iter().any(|name| contains_word(condition, name));
            (at_the_end
                || walked.iter().any(|name| contains_word(condition, name))
                || shrinking.iter().any(|name| contains_word(condition, name)))
                && self
                    .clause_exit(index, inner_loops)
                    .is_some_and(|exit| exit.leaves)
        })
    }

    /// Whether a `try` inside loop `root` around statement `index` catches the end of
    /// input (`except EOFError`, `except Exception`, a bare `except`) with a handler
    /// that stays in the loop: `input()` then raises at end of input and the loop goes
    /// round again, for ever.
    pub(super) fn swallows_end_of_input(&self, root: usize, index: usize) -> bool {
        let mut inner_loops = 0;
        let mut current = self.statements[index].parent;
        // Each step moves to a parent, so this ends within the statement count.
        while let Some(parent) = current.filter(|&parent| parent != root) {
            let statement = &self.statements[parent];
            if is_scope(statement) {
                return false;
            }
            if is_loop(statement) {
                inner_loops += 1;
            }
            if statement.keyword == "try" {
                let handler = self
                    .siblings_after(parent)
                    .iter()
                    .copied()
                    .take_while(|&clause| {
                        matches!(
                            self.statements[clause].keyword.as_str(),
                            "except" | "else" | "finally"
                        )
                    })
                    .find(|&clause| {
                        self.statements[clause].keyword == "except"
                            && CATCHES_END_OF_INPUT.is_match(header_body(&self.statements[clause]))
                    });
                if let Some(clause) = handler {
                    return self
                        .clause_exit(clause, inner_loops)
                        .is_some_and(|exit| !exit.leaves);
                }
            }
            current = statement.parent;
        }
        false
    }

    /// Whether `code` calls a function of the file that reads from the user
    /// (`operation = select_operation(service)`), whose end of input ends the loop too.
    pub(super) fn calls_reader(&self, code: &str) -> bool {
        !self.readers.is_empty()
            && CALL_NAME
                .captures_iter(code)
                .any(|captures| self.readers.contains(&captures[1]))
    }
}

/// Whether `part` of a condition holds when `name` is empty: `not items`,
/// `not data["rows"]`, `len(items) == 0`, `items is None`.
fn tests_empty(part: &str, name: &str) -> bool {
    let part = part.trim();
    if let Some(rest) = part.strip_prefix("not ") {
        let rest = rest.trim();
        return rest.starts_with(name)
            && mentions(rest, name)
            && !COMPARISON.is_match(rest)
            && !contains_word(rest, "in")
            && !contains_word(rest, "and");
    }
    let compact: String = part.chars().filter(|c| !c.is_whitespace()).collect();
    compact == format!("len({name})==0")
        || compact == format!("{name}==[]")
        || part == format!("{name} is None")
}

/// The parts of `code` between top-level (bracket depth 0) occurrences of `separator`.
fn split_top_level<'a>(code: &'a str, separator: &'a str) -> impl Iterator<Item = &'a str> {
    let mut parts = Vec::new();
    let mut depth: usize = 0;
    let mut start = 0;
    for (offset, character) in code.char_indices() {
        match character {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 && code[offset..].starts_with(separator) && offset >= start => {
                parts.push(&code[start..offset]);
                start = offset + separator.len();
            }
            _ => {}
        }
    }
    parts.push(&code[start..]);
    parts.into_iter()
}
