//! Python loop scanner (files under a `scripts` folder).
//!
//! A small lexer blanks comments and string contents (triple-quoted strings and
//! f-strings included) and groups physical lines into logical lines, following
//! brackets and backslash continuations. Indentation then gives each statement
//! its parent, so a loop's body is exactly its indented block and a guard is
//! looked for only where it can stop that loop.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::text::{
    bare_sleep_message, contains_word, finding, silent_message, slice, snippet, unscanned_message,
    Budget, Guard,
};
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
/// `name = …` (also annotated), capturing the name and the right side, which
/// may span the lines of a bracketed call.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)^([A-Za-z_][\w.]*)\s*(?::[^=]*)?=([^=].*)$").expect("valid regex")
});
/// `name >>= …` / `name //= …`: a number shrinking toward zero.
static SHRINKING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z_][\w.]*)\s*(?:>>|//)=").expect("valid regex"));
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
/// A unittest assertion (`self.assertLess(…)`): fails with a message naming the values.
static TEST_ASSERTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:self\.)?assert[A-Z]\w*\s*\(").expect("valid regex"));
/// A condition that holds while a pipe or queue has something waiting:
/// `conn.poll()`, `not jobs.empty()`, `jobs.qsize()`. Group 1 is what is drained.
static HAS_PENDING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:([\w.\[\]]+)\.(?:poll|qsize)\s*\(\s*\)|not\s+([\w.\[\]]+)\.empty\s*\(\s*\))\s*$",
    )
    .expect("valid regex")
});
/// Blocking on a condition or an event until it is signalled, with a timeout or
/// none (`cond.wait(timeout=5)`, `ready.wait(1)`, `cond.wait()`); not a call over
/// several futures (`futures.wait(pending, return_when=…)`), which returns when one is done.
static WAIT_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.wait\s*\(\s*(?:\)|timeout\s*=|[^,()]*\))").expect("valid regex")
});
/// A condition that is one name, maybe negated: `flag`, `not self.stop`.
static NAME_CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\(?\s*(?:not\s+)?([A-Za-z_][\w.]*)\s*\)?$").expect("valid regex")
});
/// A sleep call.
static SLEEP_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\b(?:time|asyncio|trio|anyio)\.)?\bsleep\s*\(").expect("valid regex")
});

/// Conditions that ask the outside world: files, processes, services, the network.
static PROBE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\bos\.path\.(?:exists|isfile|isdir|lexists|getsize)|\.(?:exists|is_file|is_dir|poll|is_alive|connect_ex|ping|is_ready|is_running|status|get_status|returncode|status_code|wait_for)|\b(?:requests|httpx|urllib\.request|subprocess|socket|psutil|docker|kubectl|boto3)\.[\w.]+|\b(?:urlopen|check_output|check_call|pid_exists|getstatusoutput|system)|\bos\.(?:system|popen|kill|waitpid))\b\s*\(?",
    )
    .expect("valid regex")
});
/// Reading a line from the user: end of input raises (`EOFError` from `input`,
/// prompt_toolkit's `prompt`; `click.prompt` aborts).
static INPUT_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\w.])(?:(?:raw_)?input|(?:click\.|typer\.)?prompt)\s*\(")
        .expect("valid regex")
});
/// A call by name (`name(`, `self.name(`); group 1 is the name.
static CALL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Za-z_]\w*)\s*\(").expect("valid regex"));
/// A handler for the end of input or of an iterator.
static END_OF_INPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:EOFError|StopIteration)\b").expect("valid regex"));
/// The other side of a connection going away, as an exception a read raises.
static CONNECTION_CLOSED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:\w*Disconnect\w*|\w*ConnectionClosed\w*|ConnectionResetError|BrokenPipeError|IncompleteReadError|EOFError)\b")
        .expect("valid regex")
});
/// Reading the next piece of a stream or collection that ends.
static READ_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.(?:read|readline|readlines|recv|recvfrom|receive(?:_\w+)?|pop|popleft|get_nowait|next_token|peek)\s*\(|\b(?:next|peek|islice)\s*\(|(?:^|[^\w])(?:read|recv)_\w+\s*\(")
        .expect("valid regex")
});

/// A `with` scope that cancels its body at a deadline. Group 1 is set for the
/// scopes that end quietly (`move_on_after`); the others raise a timeout error.
static TIMEOUT_SCOPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:(?:anyio|trio)\.(move_on_(?:after|at))|(?:anyio|trio)\.fail_(?:after|at)|asyncio\.timeout(?:_at)?|async_timeout\.timeout)\s*\(",
    )
    .expect("valid regex")
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
    /// Its position among the statements of its block (or of the file's top level).
    sibling: usize,
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
            sibling: 0,
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
                sibling: 0,
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
    let mut roots = 0;
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
            statements[index].sibling = statements[parent].children.len();
            statements[parent].children.push(index);
        } else {
            statements[index].sibling = roots;
            roots += 1;
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

/// For each statement, whether some loop holds it; parents come before their children.
fn loop_ancestry(statements: &[Statement]) -> Vec<bool> {
    let mut inside = vec![false; statements.len()];
    for index in 0..statements.len() {
        if let Some(parent) = statements[index].parent {
            inside[index] = inside[parent] || is_loop(&statements[parent]);
        }
    }
    inside
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
            _ if sleeps && self.leaves_early(&body) => Shape::Retry,
            _ => return,
        };
        if shape == Shape::Endless
            && !sleeps
            && (self.ends_with_its_input(&body) || self.read_until_closed(index, &body))
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

    /// Whether a `while` over "something is waiting" takes it each pass
    /// (`while conn.poll(): msg = conn.recv()`): it ends when the pipe or queue is
    /// empty, it never waits for more.
    fn drains(&self, header: &str, body: &[(usize, usize)]) -> bool {
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
    fn timeout_scope(&self, index: usize) -> Option<(usize, bool)> {
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
    fn read_until_closed(&self, index: usize, body: &[(usize, usize)]) -> bool {
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
    fn drains_with_item_deadlines(
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
    fn never_changed(&self, header: &str, body: &[(usize, usize)]) -> bool {
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
    fn follows_a_cursor(&self, header: &str, body: &[(usize, usize)]) -> bool {
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

    /// Whether some statement of the body leaves the loop (`break`, `return`, `raise`, an exit).
    fn leaves_early(&self, body: &[(usize, usize)]) -> bool {
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
    fn ends_with_its_input(&self, body: &[(usize, usize)]) -> bool {
        let statements = self.statements;
        let mut assigned: Vec<(&str, &str)> = Vec::new();
        for &(index, _) in body {
            let statement = &statements[index];
            if INPUT_CALL.is_match(&statement.code) || self.calls_reader(&statement.code) {
                return true;
            }
            if statement.keyword == "except" && END_OF_INPUT.is_match(&statement.code) {
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

    /// Whether `code` calls a function of the file that reads from the user
    /// (`operation = select_operation(service)`), whose end of input ends the loop too.
    fn calls_reader(&self, code: &str) -> bool {
        !self.readers.is_empty()
            && CALL_NAME
                .captures_iter(code)
                .any(|captures| self.readers.contains(&captures[1]))
    }

    /// Counters advanced on every path through the loop body: statements
    /// directly in it (or in its `try` / `except` / `finally` / `with` blocks),
    /// never reset to a constant inside the loop; the loop's own variable for a `for`.
    fn counters(&self, root: usize, body: &[(usize, usize)]) -> HashSet<String> {
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

    /// Looks for a time check or an iteration cap in the body that leaves the loop.
    fn find_guard(
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
    fn speaks_before_guard(&self, index: usize, body_guard: &BodyGuard) -> bool {
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
    fn under_clause(&self, index: usize, clauses: &HashSet<usize>) -> bool {
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
    fn callers_report(&self, index: usize) -> bool {
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
        let name: String = header_body(&self.statements[function])
            .chars()
            .take_while(|&c| c.is_alphanumeric() || c == '_')
            .collect();
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
    fn checks_loudly(&self, index: usize) -> bool {
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
    fn says_after_loop(&self, index: usize, body_guard: &BodyGuard) -> bool {
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
    fn block_speaks(&self, clause: usize) -> bool {
        self.descendants(clause).is_some_and(|inside| {
            inside
                .iter()
                .any(|&(inner, _)| self.statement_speaks(inner))
        })
    }

    fn statement_speaks(&self, index: usize) -> bool {
        simple_statements(&self.statements[index].code).any(|simple| self.exit_of(simple).speaks)
    }

    /// Whether the clause leaves the loop (a `break` counts only with no inner loop
    /// in between), and whether it says why; `None` when the budget is spent.
    fn clause_exit(&self, clause: usize, inner_loops: usize) -> Option<Exit> {
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
    fn exit_of(&self, simple: &str) -> Exit {
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
struct Exit {
    leaves: bool,
    speaks: bool,
    is_break: bool,
    is_return: bool,
    /// Leaves by `raise` or by ending the program: a failure, never a normal end.
    fails: bool,
}

impl Exit {
    fn guard(self) -> Guard {
        Guard::of(self.leaves, self.speaks)
    }
}

/// What a loop body's guards give.
struct BodyGuard {
    guard: Guard,
    /// Every guard that leaves does so with `break` or `return`, as the end of a
    /// countdown or of a time budget does; none raises or ends the program.
    completes_only: bool,
    /// The loop has a way out that is not a guard.
    other_exit: bool,
    /// One of those ways out is a `break`, which lands right after the loop.
    other_break: bool,
    /// Guard clauses that leave the loop.
    clauses: HashSet<usize>,
}

/// Functions of the file that end the program (`sys.exit`, `raise`, `os._exit`
/// directly in their body), and whether they say why first.
fn find_helpers(context: &Context<'_>) -> HashMap<String, (bool, bool)> {
    let mut helpers = HashMap::new();
    for statement in context.statements {
        if statement.keyword != "def" {
            continue;
        }
        let name: String = header_body(statement)
            .chars()
            .take_while(|&c| c.is_alphanumeric() || c == '_')
            .collect();
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

/// Functions of the file with a call that reads a line from the user anywhere in
/// their body (nested functions and classes aside).
fn find_input_readers(context: &Context<'_>) -> HashSet<String> {
    let mut readers = HashSet::new();
    for (index, statement) in context.statements.iter().enumerate() {
        if statement.keyword != "def" {
            continue;
        }
        let name: String = header_body(statement)
            .chars()
            .take_while(|&c| c.is_alphanumeric() || c == '_')
            .collect();
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

/// Simple statements of a logical line, split on `;`.
fn simple_statements(code: &str) -> impl Iterator<Item = &str> {
    code.split(';').map(str::trim)
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
    let position = statements[index].sibling;
    for &sibling in siblings.get(position + 1..).unwrap_or_default() {
        match statements[sibling].keyword.as_str() {
            "elif" | "else" => chain.push(sibling),
            _ => break,
        }
    }
    chain
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
