//! Windows batch loop scanner (`.cmd`, `.bat`).
//!
//! Batch has no loop keyword: a loop is a label reached again by a `goto`
//! further down. Each line is split into commands, with `REM` / `::` comments
//! dropped, `echo` text and quoted text kept as data, and every command
//! remembers the `if` / `else` / `for` blocks it runs under. A backward `goto`
//! under no condition makes a loop that only a guard inside it can end.

use std::collections::{HashMap, HashSet};

use super::text::{
    bare_sleep_message, finding, silent_message, snippet, unscanned_message, Budget,
};
use super::LoopFinding;
use crate::validate::diagnostic::{FindingKind, Rule};

/// Scans one file's text; see [`super::scan`].
pub fn scan(source: &str) -> Vec<LoopFinding> {
    // Callers remove a byte-order mark; one left over is still not text.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut parser = Parser::default();
    for_each_logical_line(source, |logical| {
        parser.segments = logical.segments;
        parser.parse_line(logical.line, &logical.chars);
    });
    let too_deep = parser.too_deep;
    let script = Script::new(parser);
    let mut findings = Vec::new();
    if let Some((line, column)) = too_deep {
        findings.push(finding(
            Rule::H11,
            FindingKind::Unscanned,
            line,
            column,
            unscanned_message(&format!(
                "blocks nest deeper than {MAX_NESTING} levels, more than the scanner follows"
            )),
        ));
    }
    script.check_goto_loops(&mut findings);
    script.check_for_loops(&mut findings);
    script.check_bare_sleeps(&mut findings);
    findings
}

/// One or more physical lines joined by `^` continuations.
struct LogicalLine {
    /// 1-based number of its first physical line.
    line: usize,
    chars: Vec<char>,
    /// `(offset in chars, 1-based line)` where each physical line starts.
    segments: Vec<(usize, usize)>,
}

/// Calls `visit` on each run of physical lines joined where a line ends in a
/// `^` continuation, one at a time, so only one line's characters are held.
fn for_each_logical_line(source: &str, mut visit: impl FnMut(LogicalLine)) {
    let mut pending: Option<LogicalLine> = None;
    for (index, raw) in source.split('\n').enumerate() {
        let mut text: Vec<char> = raw
            .chars()
            .map(|c| if c == '\r' { ' ' } else { c })
            .collect();
        while text.last().is_some_and(|c| *c == ' ') && raw.ends_with('\r') {
            text.pop();
        }
        let carets = text.iter().rev().take_while(|&&c| c == '^').count();
        let mut logical = pending.take().unwrap_or(LogicalLine {
            line: index + 1,
            chars: Vec::new(),
            segments: Vec::new(),
        });
        logical.segments.push((logical.chars.len(), index + 1));
        if carets % 2 == 1 {
            text.pop();
            logical.chars.extend(text);
            pending = Some(logical);
        } else {
            logical.chars.extend(text);
            visit(logical);
        }
    }
    if let Some(rest) = pending {
        visit(rest);
    }
}

/// What a command does, as far as loops care.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Label(String),
    /// `goto name` (lower-cased, without `:`); `goto :eof` is [`Action::Exit`].
    Goto(String),
    Exit,
    /// `echo`, and whether it prints text (not `echo off`, not a blank line).
    Echo(bool),
    /// `set /a expression`.
    Arithmetic(String),
    /// `set name=value`.
    Assign(String, String),
    /// A fixed wait: `timeout /t N` or `ping -n N 127.0.0.1`.
    Sleep,
    /// `shift`: the next argument moves into `%1`.
    Shift,
    Other,
}

#[derive(Debug, Clone)]
struct Command {
    line: usize,
    column: usize,
    /// Source text of the command, for messages.
    text: String,
    action: Action,
    /// Frames the command runs under, outermost first.
    frames: Vec<usize>,
    /// After `&&` or `||`: runs only when the previous command failed or succeeded.
    chained: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    If,
    Else,
    For,
    /// A bare `( … )` group.
    Group,
}

#[derive(Debug, Clone)]
struct Frame {
    kind: FrameKind,
    /// The `if` condition (the `if`'s for an `else`), or the `for` set, lower-cased.
    condition: String,
    /// The frame of the `if` this clause belongs to (itself for an `if`).
    if_frame: usize,
    /// Whether the condition always holds (`if 1==1`).
    always: bool,
    /// Index of the command that opened it (the `for` command for a `for`).
    opened_by: usize,
}

/// How long a frame stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Until the matching `)`.
    Parenthesis,
    /// Until the end of the line it was opened on.
    Line(usize),
}

#[derive(Default)]
struct Parser {
    /// Where blocks first nest deeper than [`MAX_NESTING`]: `(line, column)`.
    too_deep: Option<(usize, usize)>,
    commands: Vec<Command>,
    frames: Vec<Frame>,
    open: Vec<(usize, Scope)>,
    /// Where the physical lines of the line being parsed start.
    segments: Vec<(usize, usize)>,
}

const COMPARISONS: &[&str] = &["equ", "neq", "lss", "leq", "gtr", "geq"];

/// Deepest nesting of `if` / `for` / `( … )` blocks the scanner follows; code
/// below it is reported as `unscanned` instead of being judged on partial frames.
const MAX_NESTING: usize = 64;

impl Parser {
    fn frame_ids(&self) -> Vec<usize> {
        self.open
            .iter()
            .take(MAX_NESTING + 1)
            .map(|&(frame, _)| frame)
            .collect()
    }

    fn in_parenthesis(&self) -> bool {
        self.open
            .iter()
            .any(|&(_, scope)| scope == Scope::Parenthesis)
    }

    fn open_frame(&mut self, kind: FrameKind, condition: String, if_frame: Option<usize>) -> usize {
        let id = self.frames.len();
        let always = kind == FrameKind::If && always_true(&condition);
        self.frames.push(Frame {
            kind,
            condition,
            if_frame: if_frame.unwrap_or(id),
            always,
            opened_by: self.commands.len(),
        });
        id
    }

    /// Closes the innermost parenthesis and any one-line frames it held open.
    fn close_parenthesis(&mut self, line: usize) -> Option<usize> {
        let position = self
            .open
            .iter()
            .rposition(|&(_, scope)| scope == Scope::Parenthesis)?;
        let (frame, _) = self.open[position];
        self.open.truncate(position);
        while let Some(&(_, Scope::Line(opened))) = self.open.last() {
            if opened == line {
                break;
            }
            self.open.pop();
        }
        Some(frame)
    }

    /// Records the command starting at `position` of the line being parsed.
    fn push_command(&mut self, position: usize, text: String, action: Action, chained: bool) {
        let segment = self
            .segments
            .iter()
            .rev()
            .find(|&&(offset, _)| offset <= position)
            .copied()
            .unwrap_or((0, 1));
        let line = segment.1;
        let column = position - segment.0 + 1;
        let mut frames = self.frame_ids();
        if frames.len() > MAX_NESTING {
            self.too_deep.get_or_insert((line, column));
            frames.truncate(MAX_NESTING);
        }
        self.commands.push(Command {
            line,
            column,
            text,
            action,
            frames,
            chained,
        });
    }

    fn parse_line(&mut self, line: usize, chars: &[char]) {
        let mut position = 0;
        let mut chained = false;
        let mut first = true;
        while position < chars.len() {
            while chars
                .get(position)
                .is_some_and(|&c| c.is_whitespace() || c == '@' || c == ';' || c == ',')
            {
                position += 1;
            }
            let Some(&character) = chars.get(position) else {
                break;
            };
            match character {
                ')' => {
                    position += 1;
                    let closed = self.close_parenthesis(line);
                    let rest = skip_spaces(chars, position);
                    if word_at(chars, rest).eq_ignore_ascii_case("else") {
                        if let Some(closed) =
                            closed.filter(|&id| self.frames[id].kind == FrameKind::If)
                        {
                            let condition = self.frames[closed].condition.clone();
                            let frame = self.open_frame(FrameKind::Else, condition, Some(closed));
                            position = skip_spaces(chars, rest + 4);
                            if chars.get(position) == Some(&'(') {
                                position += 1;
                                self.open.push((frame, Scope::Parenthesis));
                            } else {
                                self.open.push((frame, Scope::Line(line)));
                            }
                        } else {
                            position = rest + 4;
                        }
                    }
                    continue;
                }
                '(' => {
                    let frame = self.open_frame(FrameKind::Group, String::new(), None);
                    self.open.push((frame, Scope::Parenthesis));
                    position += 1;
                    continue;
                }
                '&' | '|' => {
                    chained = chars.get(position + 1) == Some(&character);
                    position += if chained { 2 } else { 1 };
                    continue;
                }
                _ => {}
            }
            if first && character == ':' {
                if chars.get(position + 1) != Some(&':') {
                    let name: String = chars[position + 1..]
                        .iter()
                        .take_while(|c| !c.is_whitespace() && !matches!(c, ':' | '+' | ';' | ','))
                        .collect();
                    let text: String = chars[position..].iter().collect();
                    self.push_command(position, text, Action::Label(name.to_lowercase()), false);
                }
                break;
            }
            first = false;
            position = skip_redirections(chars, position);
            let word = word_at(chars, position).to_lowercase();
            if word == "rem" || word.starts_with("rem.") || word.starts_with("::") {
                break;
            }
            let start = position;
            match word.as_str() {
                "if" => {
                    position = self.parse_if(chars, position + 2, line);
                    continue;
                }
                "for" => {
                    position = self.parse_for(chars, position, line);
                    continue;
                }
                _ => {}
            }
            let end = command_end(chars, position, self.in_parenthesis());
            let text: String = chars[start..end].iter().collect();
            let action = classify(&text);
            self.push_command(start, text.trim_end().to_string(), action, chained);
            position = end;
        }
        // One-line frames end with their line.
        while let Some(&(_, Scope::Line(_))) = self.open.last() {
            self.open.pop();
        }
    }

    /// Reads an `if` condition from `position` and opens its frame; returns where its command starts.
    fn parse_if(&mut self, chars: &[char], mut position: usize, line: usize) -> usize {
        let mut parts: Vec<String> = Vec::new();
        let read = |position: &mut usize| -> String {
            *position = skip_spaces(chars, *position);
            let (token, next) = condition_token(chars, *position);
            *position = next;
            token.to_lowercase()
        };
        let mut first = read(&mut position);
        if first == "/i" {
            first = read(&mut position);
        }
        if first == "not" {
            parts.push(first);
            first = read(&mut position);
        }
        parts.push(first.clone());
        if matches!(
            first.as_str(),
            "exist" | "defined" | "errorlevel" | "cmdextversion"
        ) {
            parts.push(read(&mut position));
        } else if first.contains("==") {
            if first.ends_with("==") {
                parts.push(read(&mut position));
            }
        } else {
            let operator = read(&mut position);
            let needs_right = operator == "==" || COMPARISONS.contains(&operator.as_str());
            parts.push(operator);
            if needs_right {
                parts.push(read(&mut position));
            }
        }
        let condition = parts.join(" ");
        let frame = self.open_frame(FrameKind::If, condition, None);
        position = skip_spaces(chars, position);
        if chars.get(position) == Some(&'(') {
            self.open.push((frame, Scope::Parenthesis));
            position + 1
        } else {
            self.open.push((frame, Scope::Line(line)));
            position
        }
    }

    /// Reads `for … do` and opens its frame; returns where its body starts.
    fn parse_for(&mut self, chars: &[char], start: usize, line: usize) -> usize {
        let mut position = start + 3;
        let mut depth: usize = 0;
        let mut quoted = false;
        while let Some(&character) = chars.get(position) {
            match character {
                '"' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth = depth.saturating_sub(1),
                _ if !quoted
                    && depth == 0
                    && character.is_whitespace()
                    && word_at(chars, position + 1).eq_ignore_ascii_case("do") =>
                {
                    break;
                }
                _ => {}
            }
            position += 1;
        }
        let specification: String = chars[(start + 3).min(position)..position].iter().collect();
        self.push_command(start, format!("for{specification}"), Action::Other, false);
        let frame = self.open_frame(FrameKind::For, specification.trim().to_lowercase(), None);
        self.frames[frame].opened_by = self.commands.len() - 1;
        position = skip_spaces(chars, (position + 3).min(chars.len()));
        if chars.get(position) == Some(&'(') {
            self.open.push((frame, Scope::Parenthesis));
            position + 1
        } else {
            self.open.push((frame, Scope::Line(line)));
            position
        }
    }
}

fn skip_spaces(chars: &[char], mut position: usize) -> usize {
    while chars.get(position).is_some_and(|c| c.is_whitespace()) {
        position += 1;
    }
    position
}

/// Skips leading redirections such as `>&2` or `2>nul`.
fn skip_redirections(chars: &[char], mut position: usize) -> usize {
    loop {
        let at = |offset: usize| chars.get(position + offset).copied();
        let redirect = matches!(at(0), Some('<' | '>'))
            || (at(0).is_some_and(|c| c.is_ascii_digit()) && matches!(at(1), Some('<' | '>')));
        if !redirect {
            return position;
        }
        while chars
            .get(position)
            .is_some_and(|&c| c.is_ascii_digit() || matches!(c, '<' | '>' | '&'))
        {
            position += 1;
        }
        // `>&2` ends at the digit; `>nul` names a file.
        if !chars.get(position - 1).is_some_and(|c| c.is_ascii_digit()) {
            while chars.get(position).is_some_and(|c| !c.is_whitespace()) {
                position += 1;
            }
        }
        position = skip_spaces(chars, position);
    }
}

/// The command word at `position`: letters and digits, so `echo.` and `goto:x` give `echo` and `goto`.
fn word_at(chars: &[char], position: usize) -> String {
    chars
        .get(position..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '\\'))
        .collect()
}

/// One token of an `if` condition: a run of non-spaces with quoted parts kept whole.
/// An operand written in parentheses (`if (%1) == () goto done`) is one token too:
/// cmd compares the text with its parentheses, it opens no block there.
fn condition_token(chars: &[char], mut position: usize) -> (String, usize) {
    let start = position;
    if chars.get(position) == Some(&'(') {
        let close = chars[position..]
            .iter()
            .position(|&c| c == ')' || c == '\n')
            .map(|offset| position + offset);
        if let Some(close) = close.filter(|&close| chars[close] == ')') {
            position = close + 1;
        }
    }
    let mut quoted = false;
    while let Some(&character) = chars.get(position) {
        match character {
            '"' => quoted = !quoted,
            '(' | ')' | '&' | '|' if !quoted => break,
            c if c.is_whitespace() && !quoted => break,
            _ => {}
        }
        position += 1;
    }
    (chars[start..position].iter().collect(), position)
}

/// Where the command starting at `position` ends: `&`, `|`, or `)` inside a block, outside quotes.
fn command_end(chars: &[char], mut position: usize, in_parenthesis: bool) -> usize {
    let mut quoted = false;
    while let Some(&character) = chars.get(position) {
        match character {
            '"' => quoted = !quoted,
            '^' if !quoted => position += 1,
            '&' | '|' if !quoted => return position,
            ')' if !quoted && in_parenthesis => return position,
            _ => {}
        }
        position += 1;
    }
    chars.len()
}

fn classify(text: &str) -> Action {
    let lower = text.trim().to_lowercase();
    let word: String = lower
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let rest = lower[word.len()..]
        .trim_start_matches([':', ' ', '\t'])
        .trim();
    match word.as_str() {
        "goto" => {
            let target = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_start_matches(':');
            if target == "eof" {
                Action::Exit
            } else {
                Action::Goto(target.to_string())
            }
        }
        "exit" => Action::Exit,
        "shift" => Action::Shift,
        "echo" => {
            let after = &lower[word.len()..];
            let separator = after.chars().next();
            let content = after.get(1..).unwrap_or_default();
            let content = content.split(['>', '<']).next().unwrap_or_default().trim();
            let speaks = match separator {
                Some(' ' | '\t') => !content.is_empty() && content != "off" && content != "on",
                Some(_) => !content.is_empty(),
                None => false,
            };
            Action::Echo(speaks)
        }
        "set" => {
            let arguments = lower[word.len()..].trim();
            if let Some(expression) = arguments.strip_prefix("/a") {
                Action::Arithmetic(expression.replace('"', ""))
            } else if arguments.starts_with('/') {
                Action::Other
            } else {
                let unquoted = arguments.trim_matches('"');
                match unquoted.split_once('=') {
                    Some((name, value)) => {
                        Action::Assign(name.trim().to_string(), value.to_string())
                    }
                    None => Action::Other,
                }
            }
        }
        "timeout" => {
            let waits = rest.split_whitespace().any(|part| {
                part.trim_start_matches('-')
                    .parse::<i64>()
                    .is_ok_and(|n| n > 0)
            });
            if waits {
                Action::Sleep
            } else {
                Action::Other
            }
        }
        "ping" => {
            let local = ["127.0.0.1", "localhost", "::1", "127.1"]
                .iter()
                .any(|host| rest.split_whitespace().any(|part| part == *host));
            let counted = rest.contains("-n ") || rest.contains("/n ");
            if local && counted {
                Action::Sleep
            } else {
                Action::Other
            }
        }
        _ => Action::Other,
    }
}

/// Whether an `if` condition reads a script argument (`%1`, `%~1`, `%~dp2`).
fn mentions_argument(condition: &str) -> bool {
    let characters: Vec<char> = condition.chars().collect();
    characters.iter().enumerate().any(|(position, &character)| {
        character == '%' && {
            let rest = &characters[position + 1..];
            let modifiers = rest
                .iter()
                .take_while(|c| **c == '~' || c.is_ascii_alphabetic())
                .count();
            rest.get(modifiers).is_some_and(char::is_ascii_digit)
                && rest
                    .first()
                    .is_some_and(|c| *c == '~' || c.is_ascii_digit())
        }
    })
}

/// `if 1==1`, `if "a"=="a"`: a comparison of two equal literals.
fn always_true(condition: &str) -> bool {
    let Some((left, right)) = condition.split_once("==") else {
        return false;
    };
    let left = left.trim();
    let right = right.trim();
    !left.is_empty() && left == right && !left.contains(['%', '!'])
}

/// Names in an expression: `%n%`, `!n!` and bare words all give `n`.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| {
            word.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
}

/// What stops a loop that its own condition does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Guard {
    /// The work budget ran out before a verdict.
    Unscanned,
    None,
    Silent,
    Loud,
}

/// Adds the H11 finding a loop starting at `start` deserves, given its guard:
/// none when a guard leaves loudly, `silent-fallback` when it leaves silently,
/// `unbounded` (with `unbounded_message`) when nothing leaves.
fn report(
    findings: &mut Vec<LoopFinding>,
    guard: Guard,
    start: &Command,
    header: &str,
    unbounded_message: impl FnOnce() -> String,
) {
    let (kind, message) = match guard {
        Guard::Loud => return,
        Guard::Unscanned => (
            FindingKind::Unscanned,
            unscanned_message("the file needs more work than the scanner's per-file budget"),
        ),
        Guard::Silent => (
            FindingKind::SilentFallback,
            silent_message(header, "`echo timed out waiting for …` before `exit /b 1`"),
        ),
        Guard::None => (FindingKind::Unbounded, unbounded_message()),
    };
    findings.push(finding(Rule::H11, kind, start.line, start.column, message));
}

struct Script {
    commands: Vec<Command>,
    frames: Vec<Frame>,
    /// Variables that hold a time of day or something computed from one.
    clocks: HashSet<String>,
    /// `(label command, goto command, unconditional)` for every backward goto.
    back_jumps: Vec<(usize, usize, bool)>,
    /// Command indices of each label, in order.
    labels: HashMap<String, Vec<usize>>,
    /// For each command, whether some backward `goto` makes it run again.
    in_goto_loop: Vec<bool>,
    /// Work left for guard searches in this file.
    budget: Budget,
}

impl Script {
    fn new(parser: Parser) -> Self {
        let Parser {
            commands, frames, ..
        } = parser;
        let mut script = Script {
            commands,
            frames,
            clocks: HashSet::new(),
            back_jumps: Vec::new(),
            in_goto_loop: Vec::new(),
            budget: Budget::new(),
            labels: HashMap::new(),
        };
        let label_count = script
            .commands
            .iter()
            .filter(|command| matches!(command.action, Action::Label(_)))
            .count();
        script.labels.reserve(label_count);
        for (index, command) in script.commands.iter().enumerate() {
            if let Action::Label(name) = &command.action {
                script.labels.entry(name.clone()).or_default().push(index);
            }
        }
        script.clocks = script.find_clocks();
        script.back_jumps = script.find_back_jumps();
        // Running sum: +1 after each loop label, -1 at its goto.
        let mut steps = vec![0_i64; script.commands.len() + 1];
        for &(label, goto, _) in &script.back_jumps {
            steps[label + 1] += 1;
            steps[goto] -= 1;
        }
        let mut depth = 0;
        script.in_goto_loop = steps[..script.commands.len()]
            .iter()
            .map(|step| {
                depth += step;
                depth > 0
            })
            .collect();
        script
    }

    fn find_clocks(&self) -> HashSet<String> {
        let assignments: Vec<(String, String)> = self
            .commands
            .iter()
            .flat_map(|command| match &command.action {
                Action::Assign(name, value) => vec![(name.clone(), value.clone())],
                Action::Arithmetic(expression) => expression
                    .split(',')
                    .filter_map(|part| {
                        let (name, value) = part.split_once('=')?;
                        let name = name.trim().trim_end_matches(['+', '-', '*', '/', '%']);
                        Some((name.trim().to_string(), value.to_string()))
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let mut clocks: HashSet<String> = HashSet::new();
        for _ in 0..=assignments.len() {
            let before = clocks.len();
            for (name, value) in &assignments {
                if identifiers(value).any(|word| word == "time" || clocks.contains(word)) {
                    clocks.insert(name.clone());
                }
            }
            if clocks.len() == before {
                break;
            }
        }
        clocks
    }

    /// The label a `goto` at `from` reaches: the next one below, else the first from the top.
    fn resolve(&self, from: usize, target: &str) -> Option<usize> {
        let positions = self.labels.get(target)?;
        let below = positions.partition_point(|&position| position <= from);
        positions.get(below).or_else(|| positions.first()).copied()
    }

    fn find_back_jumps(&self) -> Vec<(usize, usize, bool)> {
        let mut jumps = Vec::new();
        for (index, command) in self.commands.iter().enumerate() {
            let Action::Goto(target) = &command.action else {
                continue;
            };
            if let Some(label) = self.resolve(index, target).filter(|&label| label < index) {
                jumps.push((label, index, self.is_unconditional(index, target)));
            }
        }
        jumps
    }

    /// Whether the `goto` at `index` always runs when reached: no condition,
    /// an always-true one, or an `if` whose `else` jumps to the same place.
    fn is_unconditional(&self, index: usize, target: &str) -> bool {
        let command = &self.commands[index];
        if command.chained {
            return false;
        }
        let conditions: Vec<usize> = command
            .frames
            .iter()
            .copied()
            .filter(|&frame| {
                !(self.frames[frame].kind == FrameKind::Group || self.frames[frame].always)
            })
            .collect();
        match conditions.as_slice() {
            [] => true,
            [frame] if matches!(self.frames[*frame].kind, FrameKind::If | FrameKind::Else) => {
                let if_frame = self.frames[*frame].if_frame;
                let same_if = |other: &usize| {
                    self.commands[*other]
                        .frames
                        .iter()
                        .any(|&other_frame| self.frames[other_frame].if_frame == if_frame)
                };
                // The clauses of one `if` are neighbours, so look only while they last.
                let after = (index + 1..self.commands.len()).take_while(same_if);
                let before = (0..index).rev().take_while(same_if);
                after.chain(before).any(|other| {
                    let other = &self.commands[other];
                    other.action == Action::Goto(target.to_string())
                        && !other.chained
                        && other.frames.last().is_some_and(|&other_frame| {
                            other_frame != *frame
                                && self.frames[other_frame].if_frame == if_frame
                                && self.frames[other_frame].kind != FrameKind::For
                        })
                })
            }
            _ => false,
        }
    }

    fn is_guard_condition(&self, condition: &str, counters: &HashSet<&str>) -> bool {
        let compares = condition.contains("==")
            || condition
                .split_whitespace()
                .any(|word| COMPARISONS.contains(&word));
        compares
            && identifiers(condition)
                .any(|word| word == "time" || self.clocks.contains(word) || counters.contains(word))
    }

    /// Counters stepped by `set /a` on every pass through `commands` (under no
    /// `if`, `else` or `for` opened among them) and never reset to a number there.
    fn counters(&self, commands: &[usize]) -> HashSet<&str> {
        let mut counters = HashSet::new();
        let mut reset = HashSet::new();
        let first = commands.first().copied().unwrap_or(0);
        for &index in commands {
            let Action::Arithmetic(expression) = &self.commands[index].action else {
                continue;
            };
            for part in expression.split(',') {
                if let Some((name, value)) = part.split_once('=') {
                    let name = name.trim();
                    if !name.ends_with(['+', '-', '*', '/', '%'])
                        && value.trim().parse::<i64>().is_ok()
                    {
                        reset.insert(name);
                    }
                }
            }
            let conditional = self.commands[index].frames.iter().any(|&frame| {
                self.frames[frame].kind != FrameKind::Group && self.frames[frame].opened_by >= first
            });
            if conditional {
                continue;
            }
            for part in expression.split(',') {
                let part = part.trim();
                if let Some((name, value)) = part.split_once('=') {
                    let name = name.trim();
                    if let Some(stepped) = name.strip_suffix('+').or_else(|| name.strip_suffix('-'))
                    {
                        counters.insert(stepped.trim());
                    } else if identifiers(value).next() == Some(name) {
                        counters.insert(name);
                    }
                } else if let Some(name) =
                    part.strip_suffix("++").or_else(|| part.strip_prefix("++"))
                {
                    counters.insert(name.trim());
                }
            }
        }
        counters.retain(|name| !reset.contains(name));
        counters
    }

    /// Whether a guard among `body` leaves the loop: `leaves(command)` says
    /// whether a `goto` / `exit` command gets out. Only `if`s opened inside
    /// the body count, so an `if` wrapping the whole loop is no guard.
    fn find_guard(&self, body: &[usize], leaves: impl Fn(usize) -> bool) -> Guard {
        let Some(&first) = body.first() else {
            return Guard::None;
        };
        if !self.budget.spend(body.len()) {
            return Guard::Unscanned;
        }
        let counters = self.counters(body);
        let mut is_guard: HashMap<usize, bool> = HashMap::new();
        // Per clause frame: (leaves the loop, says why).
        let mut clauses: HashMap<usize, (bool, bool)> = HashMap::new();
        for &index in body {
            let command = &self.commands[index];
            if !self.budget.spend(command.frames.len()) {
                return Guard::Unscanned;
            }
            for &frame in &command.frames {
                let clause = &self.frames[frame];
                if !matches!(clause.kind, FrameKind::If | FrameKind::Else)
                    || self.frames[clause.if_frame].opened_by < first
                {
                    continue;
                }
                let guarded = *is_guard.entry(clause.if_frame).or_insert_with(|| {
                    self.is_guard_condition(&self.frames[clause.if_frame].condition, &counters)
                });
                if !guarded {
                    continue;
                }
                let entry = clauses.entry(frame).or_default();
                match &command.action {
                    Action::Echo(true) => entry.1 = true,
                    Action::Goto(_) | Action::Exit if leaves(index) => {
                        entry.0 = true;
                        entry.1 |= self.target_speaks(index);
                    }
                    _ => {}
                }
            }
        }
        clauses
            .into_values()
            .map(|clause| match clause {
                (false, _) => Guard::None,
                (true, false) => Guard::Silent,
                (true, true) => Guard::Loud,
            })
            .max()
            .unwrap_or(Guard::None)
    }

    /// Whether the code a `goto` lands on prints something before it stops or jumps again.
    fn target_speaks(&self, index: usize) -> bool {
        let Action::Goto(target) = &self.commands[index].action else {
            return false;
        };
        let Some(label) = self.resolve(index, target) else {
            return false;
        };
        for command in self.commands.iter().skip(label + 1) {
            if !self.budget.spend(1) {
                return false;
            }
            match command.action {
                Action::Echo(true) => return true,
                Action::Goto(_) | Action::Exit | Action::Label(_) => return false,
                _ => {}
            }
        }
        false
    }

    fn label_name(&self, index: usize) -> String {
        let text = &self.commands[index].text;
        text.trim_start_matches(':')
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    fn check_goto_loops(&self, findings: &mut Vec<LoopFinding>) {
        // label → (last backward goto, whether one of them always jumps, every
        // goto back to it), so each loop looks only at its own jumps: a file of
        // many loops stays linear.
        let mut loops: std::collections::BTreeMap<usize, (usize, bool, Vec<usize>)> =
            std::collections::BTreeMap::new();
        for &(label, goto, unconditional) in &self.back_jumps {
            let entry = loops
                .entry(label)
                .or_insert((goto, unconditional, Vec::new()));
            entry.0 = entry.0.max(goto);
            entry.1 |= unconditional;
            entry.2.push(goto);
        }
        for (label, (goto, unconditional, jumps)) in loops {
            // Named only for a finding: most loops need no message.
            let header = || {
                let name = self.label_name(label);
                format!(":{name} … goto {name}")
            };
            let start = &self.commands[label];
            if !self.budget.spend(goto - label) {
                report(findings, Guard::Unscanned, start, &header(), String::new);
                continue;
            }
            let body: Vec<usize> = (label + 1..goto).collect();
            let leaves = |index: usize| match &self.commands[index].action {
                Action::Exit => true,
                Action::Goto(target) => self
                    .resolve(index, target)
                    .is_none_or(|landing| landing < label || landing > goto),
                _ => false,
            };
            // The conditions under which the loop goes round again.
            let repeat_conditions: Vec<&str> = if unconditional {
                Vec::new()
            } else {
                jumps
                    .iter()
                    .flat_map(|&jump| self.commands[jump].frames.iter())
                    .filter(|&&frame| {
                        matches!(self.frames[frame].kind, FrameKind::If | FrameKind::Else)
                    })
                    .map(|&frame| self.frames[self.frames[frame].if_frame].condition.as_str())
                    .collect()
            };
            let shifts = body
                .iter()
                .any(|&index| self.commands[index].action == Action::Shift);
            let leaves_on_argument = body.iter().any(|&index| {
                leaves(index)
                    && self.commands[index].frames.iter().any(|&frame| {
                        matches!(self.frames[frame].kind, FrameKind::If | FrameKind::Else)
                            && mentions_argument(&self.frames[frame].condition)
                    })
            });
            // An argument loop ends when the arguments run out.
            if shifts
                && (leaves_on_argument || repeat_conditions.iter().any(|c| mentions_argument(c)))
            {
                continue;
            }
            let sleeps = body
                .iter()
                .any(|&index| self.commands[index].action == Action::Sleep);
            let opened_inside = |frame: usize| {
                self.frames[frame].kind != FrameKind::Group && self.frames[frame].opened_by > label
            };
            // A way out that always runs before the jump back: no cycle at all.
            let never_comes_back = body.iter().any(|&index| {
                leaves(index)
                    && !self.commands[index].chained
                    && !self.commands[index]
                        .frames
                        .iter()
                        .any(|&frame| opened_inside(frame))
            });
            // A way out on a value the loop itself changes (trimming a string, walking a list).
            let assigned: HashSet<&str> = body
                .iter()
                .filter_map(|&index| match &self.commands[index].action {
                    Action::Assign(name, _) => Some(name.as_str()),
                    _ => None,
                })
                .collect();
            let leaves_on_its_data = !sleeps
                && body.iter().any(|&index| {
                    leaves(index)
                        && self.commands[index].frames.iter().any(|&frame| {
                            matches!(self.frames[frame].kind, FrameKind::If | FrameKind::Else)
                                && identifiers(&self.frames[frame].condition)
                                    .any(|word| assigned.contains(word))
                        })
                });
            if never_comes_back || leaves_on_its_data {
                continue;
            }
            let counters = self.counters(&body);
            let header_guard = repeat_conditions
                .iter()
                .any(|condition| self.is_guard_condition(condition, &counters));
            // `command || goto retry` repeats on a command's failure, like `if errorlevel 1`.
            let retries_on_failure = jumps.iter().any(|&jump| self.commands[jump].chained);
            let asks_outside = retries_on_failure
                || repeat_conditions.iter().any(|condition| {
                    condition.contains("errorlevel") || condition.contains("exist")
                });
            if !unconditional && !sleeps && (header_guard || !asks_outside) {
                // A counted loop, or one over data the script holds.
                continue;
            }
            let guard = match self.find_guard(&body, leaves) {
                Guard::None | Guard::Silent if header_guard && self.speaks_from(goto + 1) => {
                    Guard::Loud
                }
                Guard::None if header_guard => Guard::Silent,
                other => other,
            };
            if guard == Guard::Loud {
                continue;
            }
            let header = header();
            report(findings, guard, start, &header, || {
                let kind = match repeat_conditions.first() {
                    Some(condition) => {
                        format!("waits for `if {}` with no deadline", snippet(condition))
                    }
                    None if retries_on_failure => {
                        "waits for a command to succeed with no deadline".to_string()
                    }
                    None => "never ends by itself".to_string(),
                };
                format!(
                    "`{}` loop (back from line {}) {kind}: add an iteration cap (`set /a tries+=1` then `if !tries! geq 10 (echo gave up after 10 tries & exit /b 1)`) or a deadline",
                    snippet(&header),
                    self.commands[goto].line
                )
            });
        }
    }

    /// Whether the commands from `index` on print something before they stop or jump.
    fn speaks_from(&self, index: usize) -> bool {
        for (position, command) in self.commands.iter().enumerate().skip(index) {
            if !self.budget.spend(1) {
                return false;
            }
            match command.action {
                Action::Echo(true) => return true,
                Action::Exit | Action::Label(_) => return false,
                Action::Goto(_) => return self.target_speaks(position),
                _ => {}
            }
        }
        false
    }

    fn check_for_loops(&self, findings: &mut Vec<LoopFinding>) {
        for (id, frame) in self.frames.iter().enumerate() {
            if frame.kind != FrameKind::For || !endless_counted_for(&frame.condition) {
                continue;
            }
            // A `for` body is the run of commands right after the `for` that carry its frame.
            let body: Vec<usize> = (frame.opened_by + 1..self.commands.len())
                .take_while(|&index| self.commands[index].frames.contains(&id))
                .collect();
            let leaves = |index: usize| {
                matches!(self.commands[index].action, Action::Exit | Action::Goto(_))
            };
            let start = &self.commands[frame.opened_by.min(self.commands.len() - 1)];
            let guard = self.find_guard(&body, leaves);
            report(findings, guard, start, &start.text, || {
                format!(
                    "`{}` loop never ends by itself: give it a real range such as `(1,1,10)`, or leave it on a deadline with `echo` and `exit /b 1`",
                    snippet(&start.text)
                )
            });
        }
    }

    fn in_loop(&self, index: usize) -> bool {
        let command = &self.commands[index];
        command
            .frames
            .iter()
            .any(|&frame| self.frames[frame].kind == FrameKind::For)
            || self.in_goto_loop.get(index).copied().unwrap_or(false)
    }

    fn check_bare_sleeps(&self, findings: &mut Vec<LoopFinding>) {
        for (index, command) in self.commands.iter().enumerate() {
            if command.action == Action::Sleep && !self.in_loop(index) {
                findings.push(finding(
                    Rule::H23,
                    FindingKind::BareSleep,
                    command.line,
                    command.column,
                    bare_sleep_message(&command.text),
                ));
            }
        }
    }
}

/// `for /l %%i in (start,step,end)` with a zero step and start ≤ end never ends.
fn endless_counted_for(specification: &str) -> bool {
    let mut words = specification.split_whitespace();
    if words.next() != Some("/l") {
        return false;
    }
    let Some(open) = specification.find('(') else {
        return false;
    };
    let inside = &specification[open + 1..];
    let inside = inside.split(')').next().unwrap_or_default();
    let numbers: Vec<i64> = inside
        .split([',', ' ', '\t', ';', '='])
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<i64>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    matches!(numbers.as_slice(), [start, 0, end] if start <= end)
}

#[cfg(test)]
mod tests;
