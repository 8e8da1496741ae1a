//! Python loop scanner (files under a `scripts` folder).
//!
//! A small lexer blanks comments and string contents (triple-quoted strings and
//! f-strings included) and groups physical lines into logical lines, following
//! brackets and backslash continuations. Indentation then gives each statement
//! its parent, so a loop's body is exactly its indented block and a guard is
//! looked for only where it can stop that loop.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::text::{bare_sleep_message, contains_word, finding, silent_message, slice, snippet};
use super::LoopFinding;
use crate::validate::diagnostic::{FindingKind, Rule};

/// Calls that read a clock.
static TIME_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:(?:time\.)?(?:monotonic|perf_counter)(?:_ns)?|time\.time(?:_ns)?|(?:datetime\.)+(?:now|utcnow)|loop\.time)\s*\(",
    )
    .expect("valid regex")
});
/// A comparison operator (after blanking strings).
static COMPARISON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<=|>=|==|!=|<|>").expect("valid regex"));
/// `name += …` / `name -= …`.
static AUGMENTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z_][\w.]*)\s*[+-]=").expect("valid regex"));
/// `name = …` (also annotated), capturing the name and the right side.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z_][\w.]*)\s*(?::[^=]*)?=([^=].*)$").expect("valid regex")
});
/// Endless iterators from itertools.
static ENDLESS_ITERATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(itertools\.)?(count|cycle)\s*\(|^(itertools\.)?repeat\s*\(\s*[^,()]*(\([^()]*\))?[^,()]*\)\s*$")
        .expect("valid regex")
});
/// Statements that tell a person what happened.
static MESSAGE_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:print|(?:\w+\.)*(?:\w*log\w*|warnings|click|typer|console|rich)\.\w+|sys\.std(?:err|out)\.write)\s*\(",
    )
    .expect("valid regex")
});
/// `raise X(<something>)`.
static RAISE_WITH_MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^raise\s+[\w.]+\s*\(\s*[^)\s]").expect("valid regex"));
/// Calls that end the process.
static EXIT_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:sys\.exit|exit|quit|os\._exit)\s*\(\s*(.?)").expect("valid regex")
});
/// A sleep call.
static SLEEP_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\b(?:time|asyncio|trio|anyio)\.)?\bsleep\s*\(").expect("valid regex")
});

/// Scans one file's text; see [`super::scan`].
pub fn scan(source: &str) -> Vec<LoopFinding> {
    // Callers remove a byte-order mark; one left over is still not text.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let chars: Vec<char> = source.chars().collect();
    let statements = build_tree(split_statements(logical_lines(&chars)));
    let imports_itertools = statements
        .iter()
        .any(|statement| statement.code.starts_with("from itertools import"));
    let mut findings = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        if is_loop(statement) {
            check_loop(&statements, &chars, index, imports_itertools, &mut findings);
        } else if !has_loop_ancestor(&statements, index) {
            check_bare_sleep(statement, &chars, &mut findings);
        }
    }
    findings
}

/// One logical line (or one inline suite after a compound header's colon).
#[derive(Debug)]
struct Statement {
    /// 1-based line of the first code character.
    line: usize,
    /// 1-based column of the first code character.
    column: usize,
    /// Indentation width (tabs to multiples of 8); inline suites get their header's plus one.
    indent: usize,
    /// Offset of the first code character in the source, in characters.
    start: usize,
    /// Masked code: comments and string contents are spaces; same length as the source range.
    code: String,
    /// The statement's first word (`async` skipped).
    keyword: String,
    /// Index of the enclosing statement.
    parent: Option<usize>,
    /// Indices of the statements in its block, in order.
    children: Vec<usize>,
    /// Variables this statement counts with (`n += 1`).
    counters: Vec<String>,
    /// `(name, value)` of each assignment in this statement.
    assignments: Vec<(String, String)>,
}

/// A logical line before inline suites are split off.
struct RawLine {
    line: usize,
    column: usize,
    indent: usize,
    start: usize,
    code: Vec<char>,
}

/// Groups the source into logical lines with comments and string contents blanked.
fn logical_lines(chars: &[char]) -> Vec<RawLine> {
    let mut lines = Vec::new();
    let mut position = 0;
    let mut line = 1;
    while position < chars.len() {
        // Indentation of a new logical line.
        let line_start = position;
        let mut indent = 0;
        while let Some(&character) = chars.get(position) {
            match character {
                ' ' | '\r' | '\x0c' => indent += 1,
                '\t' => indent = (indent / 8 + 1) * 8,
                _ => break,
            }
            position += 1;
        }
        let column = position - line_start + 1;
        match chars.get(position) {
            None => break,
            Some('\n') => {
                position += 1;
                line += 1;
                continue;
            }
            Some('#') => {
                while chars
                    .get(position)
                    .is_some_and(|&character| character != '\n')
                {
                    position += 1;
                }
                continue;
            }
            Some(_) => {}
        }
        let first_line = line;
        let start = position;
        let mut code = Vec::new();
        let mut depth: usize = 0;
        while let Some(&character) = chars.get(position) {
            match character {
                '\n' if depth == 0 => break,
                '\n' => {
                    code.push('\n');
                    line += 1;
                    position += 1;
                }
                '#' => {
                    while chars
                        .get(position)
                        .is_some_and(|&character| character != '\n')
                    {
                        code.push(' ');
                        position += 1;
                    }
                }
                '\\' if chars.get(position + 1) == Some(&'\n') => {
                    code.push(' ');
                    code.push('\n');
                    line += 1;
                    position += 2;
                }
                '\\' if chars.get(position + 1) == Some(&'\r')
                    && chars.get(position + 2) == Some(&'\n') =>
                {
                    code.extend([' ', ' ', '\n']);
                    line += 1;
                    position += 3;
                }
                '\'' | '"' => {
                    position = blank_string(chars, position, &mut code, &mut line);
                }
                '(' | '[' | '{' => {
                    depth += 1;
                    code.push(character);
                    position += 1;
                }
                ')' | ']' | '}' => {
                    depth = depth.saturating_sub(1);
                    code.push(character);
                    position += 1;
                }
                '\r' => {
                    code.push(' ');
                    position += 1;
                }
                _ => {
                    code.push(character);
                    position += 1;
                }
            }
        }
        lines.push(RawLine {
            line: first_line,
            column,
            indent,
            start,
            code,
        });
    }
    lines
}

/// Copies the string starting at `position` into `code` as its quotes around
/// blanks (newlines kept), and returns the position after it.
fn blank_string(
    chars: &[char],
    mut position: usize,
    code: &mut Vec<char>,
    line: &mut usize,
) -> usize {
    let quote = chars[position];
    let triple = chars.get(position + 1) == Some(&quote) && chars.get(position + 2) == Some(&quote);
    let quote_length = if triple { 3 } else { 1 };
    code.extend(std::iter::repeat_n(quote, quote_length));
    position += quote_length;
    while let Some(&character) = chars.get(position) {
        if character == '\\' {
            // An escaped character never ends the string, even in a raw string.
            code.push(' ');
            position += 1;
            match chars.get(position) {
                Some('\n') => {
                    code.push('\n');
                    *line += 1;
                    position += 1;
                }
                Some(_) => {
                    code.push(' ');
                    position += 1;
                }
                None => {}
            }
            continue;
        }
        if character == '\n' {
            if !triple {
                // Unterminated single-line string: it ends with the line.
                return position;
            }
            code.push('\n');
            *line += 1;
            position += 1;
            continue;
        }
        if character == quote
            && (!triple
                || (chars.get(position + 1) == Some(&quote)
                    && chars.get(position + 2) == Some(&quote)))
        {
            code.extend(std::iter::repeat_n(quote, quote_length));
            return position + quote_length;
        }
        code.push(' ');
        position += 1;
    }
    position
}

/// Compound statements whose header ends in a colon.
const COMPOUND: &[&str] = &[
    "while", "for", "if", "elif", "else", "try", "except", "finally", "with", "def", "class",
    "match", "case",
];

/// Splits inline suites (`if x: break`) off their headers and names each statement.
fn split_statements(lines: Vec<RawLine>) -> Vec<Statement> {
    let mut statements = Vec::new();
    for raw in lines {
        let code: String = raw.code.iter().collect();
        let keyword = first_keyword(&code);
        let suite = if COMPOUND.contains(&keyword.as_str()) {
            header_colon(&raw.code).and_then(|colon| {
                let rest = &raw.code[colon + 1..];
                let skipped = rest.iter().take_while(|c| c.is_whitespace()).count();
                (skipped < rest.len()).then_some(colon + 1 + skipped)
            })
        } else {
            None
        };
        let header_end = suite.unwrap_or(raw.code.len());
        statements.push(Statement {
            line: raw.line,
            column: raw.column,
            indent: raw.indent,
            start: raw.start,
            code: raw.code[..header_end].iter().collect(),
            keyword,
            parent: None,
            children: Vec::new(),
            counters: Vec::new(),
            assignments: Vec::new(),
        });
        if let Some(offset) = suite {
            let (line, column) = position_of(&raw.code, raw.line, raw.column, offset);
            let suite_code: String = raw.code[offset..].iter().collect();
            statements.push(Statement {
                line,
                column,
                indent: raw.indent + 1,
                start: raw.start + offset,
                keyword: first_keyword(&suite_code),
                code: suite_code,
                parent: None,
                children: Vec::new(),
                counters: Vec::new(),
                assignments: Vec::new(),
            });
        }
    }
    for statement in &mut statements {
        if COMPOUND.contains(&statement.keyword.as_str()) {
            continue;
        }
        for simple in simple_statements(&statement.code) {
            statement.counters.extend(counter_name(simple));
            if let Some(captures) = ASSIGNMENT.captures(simple) {
                statement
                    .assignments
                    .push((captures[1].to_string(), captures[2].to_string()));
            }
        }
    }
    statements
}

/// Line and column of `offset` within a statement's code that starts at `line`, `column`.
fn position_of(code: &[char], line: usize, column: usize, offset: usize) -> (usize, usize) {
    let before = &code[..offset.min(code.len())];
    match before.iter().rposition(|&character| character == '\n') {
        Some(newline) => (
            line + before.iter().filter(|&&c| c == '\n').count(),
            offset - newline,
        ),
        None => (line, column + offset),
    }
}

/// The first word of a statement, skipping `async`.
fn first_keyword(code: &str) -> String {
    let mut words = code
        .split(|character: char| !(character.is_alphanumeric() || character == '_'))
        .filter(|word| !word.is_empty());
    let first = words.next().unwrap_or_default();
    let starts_with_word = code.trim_start().starts_with(first);
    if !starts_with_word {
        return String::new();
    }
    if first == "async" {
        return words.next().unwrap_or_default().to_string();
    }
    first.to_string()
}

/// Offset of the colon that ends a compound header (bracket depth 0, not `:=`).
fn header_colon(code: &[char]) -> Option<usize> {
    let mut depth: usize = 0;
    for (index, &character) in code.iter().enumerate() {
        match character {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ':' if depth == 0 && code.get(index + 1) != Some(&'=') => return Some(index),
            _ => {}
        }
    }
    None
}

/// Links each statement to the one whose block holds it, by indentation.
fn build_tree(mut statements: Vec<Statement>) -> Vec<Statement> {
    let mut open: Vec<usize> = Vec::new();
    for index in 0..statements.len() {
        let indent = statements[index].indent;
        while open
            .last()
            .is_some_and(|&top| statements[top].indent >= indent)
        {
            open.pop();
        }
        if let Some(&parent) = open.last() {
            statements[index].parent = Some(parent);
            statements[parent].children.push(index);
        }
        open.push(index);
    }
    statements
}

fn is_loop(statement: &Statement) -> bool {
    matches!(statement.keyword.as_str(), "while" | "for")
}

fn is_scope(statement: &Statement) -> bool {
    matches!(statement.keyword.as_str(), "def" | "class")
}

fn has_loop_ancestor(statements: &[Statement], index: usize) -> bool {
    let mut current = statements[index].parent;
    while let Some(parent) = current {
        if is_loop(&statements[parent]) {
            return true;
        }
        current = statements[parent].parent;
    }
    false
}

/// The text between a loop keyword and its colon, trimmed.
fn header_body(statement: &Statement) -> &str {
    let code = statement.code.trim_end();
    let code = code.strip_suffix(':').unwrap_or(code);
    let code = code.trim_start();
    let code = code.strip_prefix("async").map_or(code, str::trim_start);
    code.strip_prefix(statement.keyword.as_str())
        .unwrap_or(code)
        .trim()
}

/// Whether a `while` condition is always true.
fn always_true(condition: &str) -> bool {
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
fn endless_for(header: &str, imports_itertools: bool) -> bool {
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

fn check_loop(
    statements: &[Statement],
    chars: &[char],
    index: usize,
    imports_itertools: bool,
    findings: &mut Vec<LoopFinding>,
) {
    let statement = &statements[index];
    let header = header_body(statement);
    let unbounded = match statement.keyword.as_str() {
        "while" => always_true(header),
        _ => endless_for(header, imports_itertools),
    };
    if !unbounded {
        return;
    }
    let original = slice(
        chars,
        statement.start,
        statement.start + statement.code.len(),
    );
    let original = original.trim_end();
    match find_guard(statements, index) {
        Guard::Loud => {}
        Guard::Silent => findings.push(finding(
            Rule::H11,
            FindingKind::SilentFallback,
            statement.line,
            statement.column,
            silent_message(
                original,
                "`print(...)`, `logging.error(...)` or `raise TimeoutError(\"...\")`",
            ),
        )),
        Guard::None => findings.push(finding(
            Rule::H11,
            FindingKind::Unbounded,
            statement.line,
            statement.column,
            format!(
                "`{}` loop never ends by itself: add a deadline (`if time.monotonic() > deadline: raise TimeoutError(\"timed out\")`) or an iteration cap",
                snippet(original)
            ),
        )),
    }
}

/// What stops a loop that its own condition does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Guard {
    None,
    Silent,
    Loud,
}

/// Descendants of `root` in source order, with how many loops lie between
/// `root` and each, skipping function and class bodies.
fn descendants(statements: &[Statement], root: usize) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut pending: Vec<(usize, usize)> = statements[root]
        .children
        .iter()
        .rev()
        .map(|&child| (child, 0))
        .collect();
    while let Some((index, inner_loops)) = pending.pop() {
        let statement = &statements[index];
        if is_scope(statement) {
            continue;
        }
        found.push((index, inner_loops));
        let below = inner_loops + usize::from(is_loop(statement));
        pending.extend(statement.children.iter().rev().map(|&child| (child, below)));
    }
    found
}

/// Simple statements of a logical line, split on `;`.
fn simple_statements(code: &str) -> impl Iterator<Item = &str> {
    code.split(';').map(str::trim)
}

/// Looks for a time check or an iteration cap that leaves the loop at `root`.
fn find_guard(statements: &[Statement], root: usize) -> Guard {
    let body = descendants(statements, root);
    let mut counters: HashSet<&str> = body
        .iter()
        .flat_map(|&(index, _)| statements[index].counters.iter().map(String::as_str))
        .collect();
    // `for n in itertools.count()`: the loop's own variable counts its rounds.
    if statements[root].keyword == "for" {
        let header = header_body(&statements[root]);
        if let Some((targets, _)) = header.split_once(" in ") {
            counters.extend(
                targets
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|name| !name.is_empty()),
            );
        }
    }
    let clocks = clock_variables(statements, &body);
    let is_guard_condition = |condition: &str| {
        COMPARISON.is_match(condition)
            && (TIME_CALL.is_match(condition)
                || clocks.iter().any(|name| contains_word(condition, name))
                || counters.iter().any(|name| contains_word(condition, name)))
    };
    let mut best = Guard::None;
    for &(index, inner_loops) in &body {
        let statement = &statements[index];
        match statement.keyword.as_str() {
            "assert" if is_guard_condition(&statement.code) => {
                best = best.max(if has_top_level_comma(&statement.code) {
                    Guard::Loud
                } else {
                    Guard::Silent
                });
            }
            "if" => {
                let chain = if_chain(statements, index);
                let guarded = chain.iter().any(|&clause| {
                    statements[clause].keyword != "else"
                        && is_guard_condition(header_body(&statements[clause]))
                });
                if guarded {
                    for &clause in &chain {
                        best = best.max(clause_exit(statements, clause, inner_loops));
                    }
                }
            }
            _ => {}
        }
    }
    best
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

/// `if` at `index` and the `elif` / `else` clauses that follow it.
fn if_chain(statements: &[Statement], index: usize) -> Vec<usize> {
    let mut chain = vec![index];
    let siblings: &[usize] = match statements[index].parent {
        Some(parent) => &statements[parent].children,
        None => &[],
    };
    if let Some(position) = siblings.iter().position(|&sibling| sibling == index) {
        for &sibling in &siblings[position + 1..] {
            match statements[sibling].keyword.as_str() {
                "elif" | "else" => chain.push(sibling),
                _ => break,
            }
        }
    }
    chain
}

/// Whether the clause leaves the loop (a `break` counts only with no inner loop
/// in between), and whether it says why.
fn clause_exit(statements: &[Statement], clause: usize, inner_loops: usize) -> Guard {
    let mut leaves = false;
    let mut speaks = false;
    for (index, nested_loops) in descendants(statements, clause) {
        for simple in simple_statements(&statements[index].code) {
            if MESSAGE_CALL.is_match(simple) {
                speaks = true;
            }
            let word = first_keyword(simple);
            match word.as_str() {
                "break" if inner_loops + nested_loops == 0 => leaves = true,
                "return" => leaves = true,
                "raise" => {
                    leaves = true;
                    speaks |= RAISE_WITH_MESSAGE.is_match(simple);
                }
                _ => {
                    if let Some(captures) = EXIT_CALL.captures(simple) {
                        leaves = true;
                        let argument = captures.get(1).map_or("", |found| found.as_str());
                        speaks |= argument.starts_with(['"', '\''])
                            || argument.starts_with(|c: char| c.is_alphabetic());
                    }
                }
            }
        }
    }
    match (leaves, speaks) {
        (false, _) => Guard::None,
        (true, false) => Guard::Silent,
        (true, true) => Guard::Loud,
    }
}

/// The variable a statement counts with (`n += 1`, `n = n + 1`).
fn counter_name(simple: &str) -> Option<String> {
    if let Some(captures) = AUGMENTED.captures(simple) {
        return Some(captures[1].to_string());
    }
    let captures = ASSIGNMENT.captures(simple)?;
    let name = &captures[1];
    let value = captures[2].trim_start();
    let rest = value.strip_prefix(name)?.trim_start();
    rest.starts_with(['+', '-']).then(|| name.to_string())
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
