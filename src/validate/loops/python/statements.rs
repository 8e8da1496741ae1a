//! The statement tree: a small lexer blanks comments and string contents and
//! groups physical lines into logical lines; indentation then gives each
//! statement its parent.

use super::patterns::{ASSIGNMENT, AUGMENTED};

/// One logical line (or one inline suite after a compound header's colon).
#[derive(Debug)]
pub(super) struct Statement {
    /// 1-based line of the first code character.
    pub(super) line: usize,
    /// 1-based column of the first code character.
    pub(super) column: usize,
    /// Indentation width (tabs to multiples of 8); inline suites get their header's plus one.
    pub(super) indent: usize,
    /// Offset of the first code character in the source, in characters.
    pub(super) start: usize,
    /// Masked code: comments and string contents are spaces; same length as the source range.
    pub(super) code: String,
    /// The statement's first word (`async` skipped).
    pub(super) keyword: String,
    /// Index of the enclosing statement.
    pub(super) parent: Option<usize>,
    /// Indices of the statements in its block, in order.
    pub(super) children: Vec<usize>,
    /// Its position among the statements of its block (or of the file's top level).
    pub(super) sibling: usize,
    /// Variables this statement counts with (`n += 1`).
    pub(super) counters: Vec<String>,
    /// `(name, value)` of each assignment in this statement.
    pub(super) assignments: Vec<(String, String)>,
}

/// A logical line before inline suites are split off.
pub(super) struct RawLine {
    line: usize,
    column: usize,
    indent: usize,
    start: usize,
    code: Vec<char>,
}

/// Groups the source into logical lines with comments and string contents blanked.
pub(super) fn logical_lines(chars: &[char]) -> Vec<RawLine> {
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
pub(super) fn blank_string(
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
pub(super) const COMPOUND: &[&str] = &[
    "while", "for", "if", "elif", "else", "try", "except", "finally", "with", "def", "class",
    "match", "case",
];

/// Splits inline suites (`if x: break`) off their headers and names each statement.
pub(super) fn split_statements(lines: Vec<RawLine>) -> Vec<Statement> {
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
        // A line without an inline suite is its own header: reuse its text
        // rather than collecting the same chars a second time.
        let header = match suite {
            Some(end) => raw.code[..end].iter().collect(),
            None => code,
        };
        statements.push(Statement {
            line: raw.line,
            column: raw.column,
            indent: raw.indent,
            start: raw.start,
            code: header,
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
pub(super) fn position_of(
    code: &[char],
    line: usize,
    column: usize,
    offset: usize,
) -> (usize, usize) {
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
pub(super) fn first_keyword(code: &str) -> String {
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
pub(super) fn header_colon(code: &[char]) -> Option<usize> {
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
pub(super) fn build_tree(mut statements: Vec<Statement>) -> Vec<Statement> {
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

pub(super) fn is_loop(statement: &Statement) -> bool {
    matches!(statement.keyword.as_str(), "while" | "for")
}

pub(super) fn is_scope(statement: &Statement) -> bool {
    matches!(statement.keyword.as_str(), "def" | "class")
}

/// For each statement, whether some loop holds it; parents come before their children.
pub(super) fn loop_ancestry(statements: &[Statement]) -> Vec<bool> {
    let mut inside = vec![false; statements.len()];
    for index in 0..statements.len() {
        if let Some(parent) = statements[index].parent {
            inside[index] = inside[parent] || is_loop(&statements[parent]);
        }
    }
    inside
}

/// The text between a loop keyword and its colon, trimmed.
/// The name a `def` statement defines (`wait_for` of `def wait_for(url):`).
pub(super) fn defined_name(statement: &Statement) -> String {
    header_body(statement)
        .chars()
        .take_while(|&c| c.is_alphanumeric() || c == '_')
        .collect()
}

pub(super) fn header_body(statement: &Statement) -> &str {
    let code = statement.code.trim_end();
    let code = code.strip_suffix(':').unwrap_or(code);
    let code = code.trim_start();
    let code = code.strip_prefix("async").map_or(code, str::trim_start);
    code.strip_prefix(statement.keyword.as_str())
        .unwrap_or(code)
        .trim()
}

/// Simple statements of a logical line, split on `;`.
pub(super) fn simple_statements(code: &str) -> impl Iterator<Item = &str> {
    code.split(';').map(str::trim)
}

/// `if` at `index` and the `elif` / `else` clauses that follow it.
pub(super) fn if_chain(statements: &[Statement], index: usize) -> Vec<usize> {
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
pub(super) fn counter_name(simple: &str) -> Option<String> {
    if let Some(captures) = AUGMENTED.captures(simple) {
        return Some(captures[1].to_string());
    }
    let captures = ASSIGNMENT.captures(simple)?;
    let name = &captures[1];
    let value = captures[2].trim_start();
    let rest = value.strip_prefix(name)?.trim_start();
    rest.starts_with(['+', '-']).then(|| name.to_string())
}
