//! The PowerShell scanner's tokens: words, variables, strings and brackets,
//! with the line and column of each, and the pairing of brackets.

use crate::validate::loops::text::slice;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A bare word: command, keyword, `-parameter` or `-operator`, member name.
    Word,
    /// `$name`, without the `$` and any scope prefix.
    Variable,
    Number,
    /// Any string or here-string; its contents are data.
    Text,
    Open(char),
    Close(char),
    Semicolon,
    Newline,
    Pipe,
    /// `:name` before a loop.
    Label,
    /// Any other operator or punctuation.
    Operator,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Kind,
    /// Lower-cased text (for strings, what lies between the quotes).
    pub(super) text: String,
    /// Offset of the first character in the source, in characters.
    pub(super) start: usize,
    /// Offset just past the last character.
    pub(super) end: usize,
    pub(super) line: usize,
    pub(super) column: usize,
}

const SINGLE_QUOTES: &[char] = &['\'', '\u{2018}', '\u{2019}', '\u{201a}', '\u{201b}'];
pub(super) const DOUBLE_QUOTES: &[char] = &['"', '\u{201c}', '\u{201d}', '\u{201e}'];

struct Lexer<'a> {
    chars: &'a [char],
    position: usize,
    line: usize,
    line_start: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.position + ahead).copied()
    }

    /// Moves one character on, keeping line numbers right.
    fn advance(&mut self) {
        if self.peek(0) == Some('\n') {
            self.line += 1;
            self.line_start = self.position + 1;
        }
        self.position += 1;
    }

    fn push(&mut self, kind: Kind, start: usize, line: usize, column: usize) {
        // A string keeps its lower-cased text between the quotes, to read
        // settings like `$ErrorActionPreference = 'Stop'`; it never counts as code.
        let text = if kind == Kind::Text {
            let inner = slice(self.chars, start + 1, self.position.saturating_sub(1));
            inner.trim_matches(['\'', '"']).to_lowercase()
        } else {
            slice(self.chars, start, self.position).to_lowercase()
        };
        self.tokens.push(Token {
            kind,
            text,
            start,
            end: self.position,
            line,
            column,
        });
    }

    /// Whether the word starting at `start` is a member: right after a `.` that
    /// itself follows a variable, a member or a closing bracket with no space between.
    fn follows_member_dot(&self, start: usize) -> bool {
        let [.., before, dot] = self.tokens.as_slice() else {
            return false;
        };
        dot.text == "."
            && dot.end == start
            && before.end == dot.start
            && matches!(
                before.kind,
                Kind::Variable | Kind::Word | Kind::Close(')' | ']')
            )
    }

    fn at_command_position(&self) -> bool {
        self.tokens.last().is_none_or(|token| {
            matches!(
                token.kind,
                Kind::Newline | Kind::Semicolon | Kind::Open('{') | Kind::Close('}') | Kind::Pipe
            )
        })
    }

    /// Whether only spaces remain on the current line.
    fn rest_of_line_is_blank(&self, from: usize) -> bool {
        self.chars[from.min(self.chars.len())..]
            .iter()
            .take_while(|&&character| character != '\n')
            .all(|character| character.is_whitespace())
    }

    fn skip_line_comment(&mut self) {
        while self.peek(0).is_some_and(|character| character != '\n') {
            self.advance();
        }
    }

    fn skip_block_comment(&mut self) {
        self.position += 2;
        while let Some(character) = self.peek(0) {
            if character == '#' && self.peek(1) == Some('>') {
                self.position += 2;
                return;
            }
            self.advance();
        }
    }

    /// A here-string: from `@"` to a line starting with `"@`.
    fn skip_here_string(&mut self, quote: char) {
        self.position += 2;
        while let Some(character) = self.peek(0) {
            let at_line_start = self.position == self.line_start;
            if at_line_start && character == quote && self.peek(1) == Some('@') {
                self.position += 2;
                return;
            }
            self.advance();
        }
    }

    fn skip_quoted(&mut self, double: bool) {
        let quotes = if double { DOUBLE_QUOTES } else { SINGLE_QUOTES };
        self.position += 1;
        while let Some(character) = self.peek(0) {
            if double && character == '`' {
                self.advance();
                if self.peek(0).is_some() {
                    self.advance();
                }
                continue;
            }
            if quotes.contains(&character) {
                // A doubled quote is an escaped quote.
                if self.peek(1).is_some_and(|next| quotes.contains(&next)) {
                    self.position += 2;
                    continue;
                }
                self.position += 1;
                return;
            }
            self.advance();
        }
    }

    fn skip_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek(0).is_some_and(&keep) {
            self.position += 1;
        }
    }

    fn run(mut self) -> Vec<Token> {
        while let Some(character) = self.peek(0) {
            let start = self.position;
            let line = self.line;
            let column = self.position - self.line_start + 1;
            match character {
                '\n' => {
                    self.advance();
                    self.push(Kind::Newline, start, line, column);
                }
                '#' => self.skip_line_comment(),
                '<' if self.peek(1) == Some('#') => self.skip_block_comment(),
                '`' => {
                    // An escaped character; before a line end it continues the line.
                    self.position += 1;
                    if self.peek(0) == Some('\r') {
                        self.position += 1;
                    }
                    if self.peek(0).is_some() {
                        self.advance();
                    }
                }
                '@' if matches!(self.peek(1), Some('"' | '\''))
                    && self.rest_of_line_is_blank(self.position + 2) =>
                {
                    let quote = self.peek(1).unwrap_or('"');
                    self.skip_here_string(quote);
                    self.push(Kind::Text, start, line, column);
                }
                quote if SINGLE_QUOTES.contains(&quote) || DOUBLE_QUOTES.contains(&quote) => {
                    self.skip_quoted(DOUBLE_QUOTES.contains(&quote));
                    self.push(Kind::Text, start, line, column);
                }
                '$' => self.variable(start, line, column),
                ':' if self.at_command_position()
                    && self
                        .peek(1)
                        .is_some_and(|next| next.is_alphabetic() || next == '_') =>
                {
                    self.position += 1;
                    self.skip_while(|next| next.is_alphanumeric() || next == '_');
                    self.push(Kind::Label, start, line, column);
                }
                '-' if self.peek(1).is_some_and(char::is_alphabetic) => {
                    self.position += 1;
                    self.skip_while(is_word_character);
                    self.push(Kind::Word, start, line, column);
                }
                digit if digit.is_ascii_digit() => {
                    self.skip_while(|next| next.is_alphanumeric() || next == '.');
                    self.push(Kind::Number, start, line, column);
                }
                letter if letter.is_alphabetic() || letter == '_' => {
                    if self.follows_member_dot(start) {
                        // `$task.AsyncWaitHandle.WaitOne(300)`: one member per word, so
                        // each member of a chain is seen as such.
                        self.skip_while(|next| next.is_alphanumeric() || next == '_');
                    } else {
                        self.skip_while(is_word_character);
                    }
                    self.push(Kind::Word, start, line, column);
                }
                '(' | '{' | '[' => {
                    self.position += 1;
                    self.push(Kind::Open(character), start, line, column);
                }
                ')' | '}' | ']' => {
                    self.position += 1;
                    self.push(Kind::Close(character), start, line, column);
                }
                ';' => {
                    self.position += 1;
                    self.push(Kind::Semicolon, start, line, column);
                }
                '|' if self.peek(1) != Some('|') => {
                    self.position += 1;
                    self.push(Kind::Pipe, start, line, column);
                }
                '+' | '-' | '|' | '&' | ':'
                    if self.peek(1) == Some(character) || self.peek(1) == Some('=') =>
                {
                    self.position += 2;
                    self.push(Kind::Operator, start, line, column);
                }
                whitespace if whitespace.is_whitespace() || whitespace == '\u{feff}' => {
                    self.position += 1;
                }
                _ => {
                    self.position += 1;
                    self.push(Kind::Operator, start, line, column);
                }
            }
        }
        self.tokens
    }

    fn variable(&mut self, start: usize, line: usize, column: usize) {
        self.position += 1;
        match self.peek(0) {
            Some('{') => {
                while let Some(character) = self.peek(0) {
                    self.advance();
                    if character == '}' {
                        break;
                    }
                }
            }
            Some('$' | '?' | '^') => self.position += 1,
            Some(next) if next.is_alphanumeric() || next == '_' => {
                self.skip_while(|character| {
                    character.is_alphanumeric() || character == '_' || character == ':'
                });
            }
            _ => {
                self.push(Kind::Operator, start, line, column);
                return;
            }
        }
        let name = slice(self.chars, start + 1, self.position).to_lowercase();
        let name = name.trim_start_matches('{').trim_end_matches('}');
        let name = name.trim_end_matches(':');
        let name = ["script:", "global:", "local:", "private:"]
            .iter()
            .find_map(|scope| name.strip_prefix(scope))
            .unwrap_or(name)
            .to_string();
        self.tokens.push(Token {
            kind: Kind::Variable,
            text: name,
            start,
            end: self.position,
            line,
            column,
        });
    }
}

fn is_word_character(character: char) -> bool {
    character.is_alphanumeric() || matches!(character, '_' | '-' | '.' | '\\' | '/')
}

pub(super) fn tokenize(chars: &[char]) -> Vec<Token> {
    Lexer {
        chars,
        position: 0,
        line: 1,
        line_start: 0,
        tokens: Vec::new(),
    }
    .run()
}

/// For each token, the innermost matched bracket holding it.
pub(super) fn enclosing_brackets(tokens: &[Token], pairs: &[Option<usize>]) -> Vec<Option<usize>> {
    let mut enclosing = vec![None; tokens.len()];
    let mut open: Vec<usize> = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        match (token.kind, pairs[index]) {
            (Kind::Open(_), Some(_)) => {
                enclosing[index] = open.last().copied();
                open.push(index);
            }
            (Kind::Close(_), Some(opener)) => {
                while let Some(top) = open.pop() {
                    if top == opener {
                        break;
                    }
                }
                enclosing[index] = open.last().copied();
            }
            _ => enclosing[index] = open.last().copied(),
        }
    }
    enclosing
}

/// Pairs each bracket with its partner; an unmatched closer is ignored.
pub(super) fn pair_brackets(tokens: &[Token]) -> Vec<Option<usize>> {
    let mut pairs = vec![None; tokens.len()];
    let mut open: Vec<(usize, char)> = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        match token.kind {
            Kind::Open(bracket) => open.push((index, bracket)),
            Kind::Close(bracket) => {
                let expected = match bracket {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if let Some(depth) = open.iter().rposition(|&(_, kind)| kind == expected) {
                    let (opener, _) = open[depth];
                    open.truncate(depth);
                    pairs[opener] = Some(index);
                    pairs[index] = Some(opener);
                }
            }
            _ => {}
        }
    }
    pairs
}
