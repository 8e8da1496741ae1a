//! A forgiving sh/bash parser: enough structure to reason about loops.
//!
//! It knows words, quotes (`'…'`, `"…"`, `$'…'`), escapes, comments, heredocs
//! (bodies are skipped as data), `$(…)`, backticks, `<(…)`, arithmetic, the
//! list operators and every compound command. It never fails: malformed input
//! yields a best-effort tree, and every loop below consumes at least one byte
//! per turn or stops, so the work is bounded by the input length.
//!
//! Positions are byte offsets into the text being parsed.

use std::cell::Cell;

/// Deeper nesting than this is skimmed without building a tree, so hostile
/// input cannot exhaust the stack.
const MAX_DEPTH: usize = 48;

/// A word as written, with the code of any `$(…)`, backtick or `<(…)` inside it.
#[derive(Debug, Default)]
pub(super) struct Word {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
    /// Parsed command substitutions and process substitutions inside the word.
    pub substitutions: Vec<List>,
}

/// A redirection such as `>&2`, `< file` or `<<EOF`.
#[derive(Debug)]
pub(super) struct Redirect {
    /// The operator, e.g. `>&` or `<<-`.
    pub operator: &'static str,
    /// The file descriptor written before the operator, if any (`2` in `2>`).
    pub descriptor: Option<Word>,
    /// The target word (for a heredoc, its delimiter).
    pub target: Word,
}

/// A simple command: words and redirections.
#[derive(Debug, Default)]
pub(super) struct Simple {
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    /// Index of the command name: the first word that is not an assignment.
    pub command: Option<usize>,
    /// Span of the command name's last path component, when written plainly
    /// (`tail` in `/usr/bin/tail`); the analysis asks for it often.
    pub name: Option<(usize, usize)>,
}

/// The loop statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopKind {
    While,
    Until,
    /// `for name [in words]`.
    For,
    /// `for ((init; condition; step))`.
    ForArithmetic,
    Select,
}

/// A loop and its parts.
#[derive(Debug)]
pub(super) struct Loop {
    pub kind: LoopKind,
    /// Byte offset of the keyword.
    pub keyword: usize,
    /// Byte offset where the header ends (where `do` starts, when present).
    pub header_end: usize,
    /// `while`/`until` condition list.
    pub condition: List,
    /// `for`/`select` words after `in`.
    pub words: Vec<Word>,
    /// `for ((…))`: spans of the init, condition and step expressions.
    pub arithmetic: Option<[(usize, usize); 3]>,
    pub body: List,
    /// Redirections after `done`, such as `< <(tail -f log)`.
    pub redirects: Vec<Redirect>,
    /// Byte offset just past the loop (after `done` and its redirections).
    pub end: usize,
}

/// `if` with its `elif` branches and optional `else`.
#[derive(Debug)]
pub(super) struct If {
    /// Each `if`/`elif` condition with its `then` body.
    pub branches: Vec<(List, List)>,
    pub otherwise: Option<List>,
}

impl If {
    /// Every `then` body, then the `else` body if there is one.
    pub fn bodies(&self) -> impl Iterator<Item = &List> {
        self.branches
            .iter()
            .map(|(_, body)| body)
            .chain(self.otherwise.as_ref())
    }

    /// Whether `holds` is true of the body on every path through the chain:
    /// it has an `else`, and every body satisfies `holds`.
    pub fn on_every_path(&self, holds: impl FnMut(&List) -> bool) -> bool {
        self.otherwise.is_some() && self.bodies().all(holds)
    }
}

/// `case subject in patterns) body ;; … esac`.
#[derive(Debug)]
pub(super) struct Case {
    pub subject: Word,
    /// The patterns of each arm, in order.
    pub patterns: Vec<Vec<Word>>,
    /// The body of each arm, in the same order.
    pub arms: Vec<List>,
}

/// `name() body` or `function name body`.
#[derive(Debug)]
pub(super) struct Function {
    pub name: Word,
    pub body: Command,
}

/// One command in a pipeline.
#[derive(Debug)]
pub(super) enum Command {
    Simple(Simple),
    Loop(Box<Loop>),
    If(Box<If>),
    Case(Box<Case>),
    /// `{ …; }` or `( … )`.
    Group(List),
    /// `(( … ))`: the span of the expression.
    Arithmetic(usize, usize),
    /// A function definition: its body runs only when called.
    Function(Box<Function>),
}

impl Command {
    /// The lists an `if`, a `case` or a group runs in its own place: each
    /// condition and body, the `else`, each arm. Nothing for other commands
    /// (a loop's lists sit one loop deeper; a function body runs only when called).
    pub(super) fn branch_lists(&self) -> impl Iterator<Item = &List> + '_ {
        let (chain, arms, group) = match self {
            Command::If(chain) => (Some(chain.as_ref()), None, None),
            Command::Case(case) => (None, Some(&case.arms), None),
            Command::Group(body) => (None, None, Some(body)),
            _ => (None, None, None),
        };
        let chain = chain.into_iter().flat_map(|chain| {
            chain
                .branches
                .iter()
                .flat_map(|(condition, body)| [condition, body])
                .chain(chain.otherwise.as_ref())
        });
        chain.chain(arms.into_iter().flatten()).chain(group)
    }
}

/// Commands joined by `|`.
#[derive(Debug)]
pub(super) struct Pipeline {
    /// Written with a leading `!`.
    pub negated: bool,
    pub commands: Seq<Command>,
}

/// How two pipelines of an and-or list are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Connector {
    And,
    Or,
}

/// Pipelines joined by `&&` and `||`.
#[derive(Debug)]
pub(super) struct AndOr {
    pub pipelines: Seq<Pipeline>,
    /// `connectors[i]` joins `pipelines[i]` and `pipelines[i + 1]`.
    pub connectors: Vec<Connector>,
}

/// A sequence that holds one item without allocating: most pipelines are one
/// command, and most and-or lists one pipeline. Reads as a slice.
#[derive(Debug)]
pub(super) enum Seq<T> {
    Empty,
    One([T; 1]),
    Many(Vec<T>),
}

impl<T> Seq<T> {
    fn push(&mut self, item: T) {
        *self = match std::mem::replace(self, Seq::Empty) {
            Seq::Empty => Seq::One([item]),
            Seq::One([first]) => Seq::Many(vec![first, item]),
            Seq::Many(mut items) => {
                items.push(item);
                Seq::Many(items)
            }
        };
    }
}

impl<T> std::ops::Deref for Seq<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Seq::Empty => &[],
            Seq::One(item) => item,
            Seq::Many(items) => items,
        }
    }
}

impl<'s, T> IntoIterator for &'s Seq<T> {
    type Item = &'s T;
    type IntoIter = std::slice::Iter<'s, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A sequence of and-or lists separated by `;`, `&` or newlines.
pub(super) type List = Vec<AndOr>;

/// Every pipeline of `list`'s and-or lists, in order.
pub(super) fn pipelines_of(list: &[AndOr]) -> impl Iterator<Item = &Pipeline> {
    list.iter().flat_map(|and_or| &and_or.pipelines)
}

/// Every command of `list`'s pipelines, in order: the top level only, not
/// the commands nested in a compound one.
pub(super) fn commands_of(list: &[AndOr]) -> impl Iterator<Item = &Command> {
    list.iter()
        .flat_map(|and_or| commands_in(&and_or.pipelines))
}

/// Every command of `pipelines`, in order (one and-or list's, or part of one).
pub(super) fn commands_in(pipelines: &[Pipeline]) -> impl Iterator<Item = &Command> {
    pipelines.iter().flat_map(|pipeline| &pipeline.commands)
}

/// A heredoc whose body starts after the next newline.
struct PendingHeredoc {
    delimiter: String,
    strip_tabs: bool,
    /// Where its delimiter word starts (the redirect's target).
    target: usize,
    /// The delimiter is quoted (`<<'EOF'`), so the body is taken as written.
    quoted: bool,
}

/// Where a heredoc's body lies, found when the parser skips it.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeredocBody {
    /// Start of the redirect's delimiter word, which names the heredoc.
    pub target: usize,
    /// Byte offset of the body's first byte.
    pub start: usize,
    /// Byte offset where the delimiter line starts (or the text ends).
    pub end: usize,
    /// The delimiter was quoted: the outer shell expands nothing in the body.
    pub quoted: bool,
}

/// Parses `text[start..end]`.
pub(super) struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    end: usize,
    depth: usize,
    heredocs: Vec<PendingHeredoc>,
    /// Every heredoc body skipped so far, nested substitutions' included.
    pub(super) heredoc_bodies: Vec<HeredocBody>,
    /// The last [`Parser::peek_plain_word`] answer and where it was asked:
    /// the same position is asked several times per command.
    peeked: Cell<Option<(usize, &'t str)>>,
    /// And-or lists of the lists being parsed, innermost last; each list
    /// takes its own off the top when it ends, so it is allocated once at its
    /// final size.
    list_stack: Vec<AndOr>,
    /// Words of the simple commands being parsed, the same way.
    word_stack: Vec<Word>,
    /// Where nesting first went deeper than [`MAX_DEPTH`]: code from there
    /// on is skimmed, not parsed, and the caller must say so.
    pub(super) too_deep: Option<usize>,
}

fn is_meta(byte: u8) -> bool {
    BYTE_CLASS[byte as usize] == META
}

/// An ordinary word byte.
const PLAIN: u8 = 0;
/// Ends a word: blanks and operators.
const META: u8 = 1;
/// Needs a closer look inside a word: quotes, escapes, expansions.
const SPECIAL: u8 = 2;

/// The class of every byte, so a word's ordinary run is skipped with one load per byte.
static BYTE_CLASS: [u8; 256] = {
    let mut classes = [PLAIN; 256];
    let metas = b" \t\r\n;&|<>()";
    let mut index = 0;
    while index < metas.len() {
        classes[metas[index] as usize] = META;
        index += 1;
    }
    let specials = b"'\"\\`$";
    let mut index = 0;
    while index < specials.len() {
        classes[specials[index] as usize] = SPECIAL;
        index += 1;
    }
    classes
};

impl<'t> Parser<'t> {
    /// A parser over the whole of `text`.
    /// A stray byte-order mark is skipped (callers normally remove it).
    pub(super) fn new(text: &'t str) -> Self {
        let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Self::over(text, start, text.len(), 0)
    }

    fn over(text: &'t str, start: usize, end: usize, depth: usize) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: start,
            end: end.min(text.len()),
            depth,
            heredocs: Vec::new(),
            heredoc_bodies: Vec::new(),
            peeked: Cell::new(None),
            list_stack: Vec::new(),
            word_stack: Vec::new(),
            too_deep: None,
        }
    }

    /// Notes that nesting went too deep at the current position.
    fn mark_too_deep(&mut self) {
        self.too_deep.get_or_insert(self.pos);
    }

    /// Parses everything, skipping tokens that fit nowhere.
    pub(super) fn parse_program(&mut self) -> List {
        let mut program = List::new();
        while self.pos < self.end {
            let list = self.parse_list();
            // Usually the whole file is one list: take it as it is rather
            // than copy it (a file of one-line loops makes it megabytes).
            if program.is_empty() {
                program = list;
            } else {
                program.extend(list);
            }
            if self.pos >= self.end {
                break;
            }
            self.skip_stray();
        }
        program
    }

    fn peek(&self) -> u8 {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> u8 {
        let index = self.pos + offset;
        if index < self.end {
            self.bytes[index]
        } else {
            0
        }
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.bytes[self.pos.min(self.end)..self.end].starts_with(prefix.as_bytes())
    }

    fn slice(&self, start: usize, end: usize) -> &'t str {
        self.text.get(start..end).unwrap_or("")
    }

    /// Skips a token that no rule accepts: a whole word, or one character.
    fn skip_stray(&mut self) {
        let word = self.peek_plain_word();
        if word.is_empty() {
            self.pos += 1;
            while self.pos < self.end && !self.text.is_char_boundary(self.pos) {
                self.pos += 1;
            }
        } else {
            self.pos += word.len();
        }
    }

    /// Skips blanks, line continuations and comments (a `#` here starts a word).
    fn skip_blanks(&mut self) {
        while self.pos < self.end {
            match self.bytes[self.pos] {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\\' if self.peek_at(1) == b'\n' => self.pos += 2,
                b'\\' if self.peek_at(1) == b'\r' && self.peek_at(2) == b'\n' => self.pos += 3,
                b'#' => {
                    while self.pos < self.end && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// Consumes a newline token, then the bodies of heredocs started on its line.
    fn consume_newline(&mut self) {
        self.pos += 1;
        if self.heredocs.is_empty() {
            return;
        }
        for heredoc in std::mem::take(&mut self.heredocs) {
            self.skip_heredoc_body(&heredoc);
        }
    }

    fn skip_heredoc_body(&mut self, heredoc: &PendingHeredoc) {
        let start = self.pos;
        let mut end = self.end;
        while self.pos < self.end {
            let line_end = self.bytes[self.pos..self.end]
                .iter()
                .position(|&byte| byte == b'\n')
                .map_or(self.end, |offset| self.pos + offset);
            let mut line = self.slice(self.pos, line_end);
            if heredoc.strip_tabs {
                line = line.trim_start_matches('\t');
            }
            let line = line.trim_end_matches('\r');
            let line_start = self.pos;
            self.pos = (line_end + 1).min(self.end);
            if line == heredoc.delimiter {
                end = line_start;
                break;
            }
        }
        self.heredoc_bodies.push(HeredocBody {
            target: heredoc.target,
            start,
            end,
            quoted: heredoc.quoted,
        });
    }

    fn skip_blank_lines(&mut self) {
        loop {
            self.skip_blanks();
            if self.peek() == b'\n' {
                self.consume_newline();
            } else {
                break;
            }
        }
    }

    /// The next word when it could be a reserved word (short, no quoting or
    /// expansion), else "". Bounded, as it runs several times per command.
    fn peek_plain_word(&self) -> &'t str {
        if let Some((position, word)) = self.peeked.get() {
            if position == self.pos {
                return word;
            }
        }
        let word = self.scan_plain_word();
        self.peeked.set(Some((self.pos, word)));
        word
    }

    fn scan_plain_word(&self) -> &'t str {
        const LONGEST: usize = 8; // `function`
        let start = self.pos.min(self.end);
        match self.bytes.get(start) {
            Some(byte)
                if byte.is_ascii_lowercase()
                    || matches!(byte, b'{' | b'}' | b'[' | b']' | b'!' | b'-') => {}
            _ => return "",
        }
        let mut index = start;
        while index < self.end {
            let byte = self.bytes[index];
            if is_meta(byte) {
                break;
            }
            if !(byte.is_ascii_alphanumeric()
                || matches!(byte, b'{' | b'}' | b'[' | b']' | b'!' | b'-'))
                || index - start >= LONGEST
            {
                return "";
            }
            index += 1;
        }
        self.slice(start, index)
    }

    fn at_list_terminator(&self) -> bool {
        match self.peek() {
            0 | b')' => true,
            b';' => matches!(self.peek_at(1), b';' | b'&'),
            _ => matches!(
                self.peek_plain_word(),
                "do" | "done" | "then" | "elif" | "else" | "fi" | "esac" | "}"
            ),
        }
    }

    /// Parses and-or lists until a terminator: end, `)`, `;;` or a closing keyword.
    fn parse_list(&mut self) -> List {
        let start = self.list_stack.len();
        loop {
            self.skip_blank_lines();
            if self.pos >= self.end || self.at_list_terminator() {
                break;
            }
            let before = self.pos;
            if let Some(and_or) = self.parse_and_or() {
                self.list_stack.push(and_or);
            }
            self.skip_blanks();
            match self.peek() {
                b';' if !matches!(self.peek_at(1), b';' | b'&') => self.pos += 1,
                b'&' => self.pos += 1,
                b'\n' => self.consume_newline(),
                _ => break,
            }
            if self.pos == before {
                break;
            }
        }
        // Most lists hold one or two and-or lists, and a file of one-line
        // loops keeps all of them alive at once: one allocation of the exact
        // size, not growth then a shrink. The outermost list, often the whole
        // file, takes the stack itself rather than a copy of it.
        if start == 0 {
            let mut list = std::mem::take(&mut self.list_stack);
            list.shrink_to_fit();
            return list;
        }
        self.list_stack.drain(start..).collect()
    }

    fn parse_and_or(&mut self) -> Option<AndOr> {
        let first = self.parse_pipeline()?;
        let mut and_or = AndOr {
            pipelines: Seq::One([first]),
            connectors: Vec::new(),
        };
        loop {
            self.skip_blanks();
            let connector = if self.starts_with("&&") {
                Connector::And
            } else if self.starts_with("||") {
                Connector::Or
            } else {
                break;
            };
            self.pos += 2;
            self.skip_blank_lines();
            let Some(pipeline) = self.parse_pipeline() else {
                break;
            };
            and_or.connectors.push(connector);
            and_or.pipelines.push(pipeline);
        }
        Some(and_or)
    }

    fn parse_pipeline(&mut self) -> Option<Pipeline> {
        self.skip_blanks();
        let mut negated = false;
        if self.peek_plain_word() == "!" {
            negated = true;
            self.pos += 1;
            self.skip_blanks();
        }
        if self.peek_plain_word() == "time" {
            self.pos += 4;
            self.skip_blanks();
            if self.peek_plain_word() == "-p" {
                self.pos += 2;
            }
        }
        let mut commands = Seq::Empty;
        while let Some(command) = self.parse_command() {
            commands.push(command);
            self.skip_blanks();
            if self.peek() == b'|' && self.peek_at(1) != b'|' {
                self.pos += if self.peek_at(1) == b'&' { 2 } else { 1 };
                self.skip_blank_lines();
            } else {
                break;
            }
        }
        if commands.is_empty() && !negated {
            None
        } else {
            Some(Pipeline { negated, commands })
        }
    }

    fn parse_command(&mut self) -> Option<Command> {
        self.skip_blanks();
        if self.pos >= self.end || self.at_list_terminator() {
            return None;
        }
        if self.depth >= MAX_DEPTH {
            self.mark_too_deep();
            return self.parse_simple().map(Command::Simple);
        }
        if self.peek() == b'(' {
            self.depth += 1;
            let command = if self.peek_at(1) == b'(' {
                self.pos += 2;
                let start = self.pos;
                let end = self.skip_arithmetic();
                Command::Arithmetic(start, end)
            } else {
                self.pos += 1;
                let body = self.parse_list();
                if self.peek() == b')' {
                    self.pos += 1;
                }
                self.parse_redirects();
                Command::Group(body)
            };
            self.depth -= 1;
            return Some(command);
        }
        let keyword = self.peek_plain_word();
        let parsed = match keyword {
            "while" | "until" | "for" | "select" | "if" | "case" | "{" | "function" => {
                self.depth += 1;
                let command = match keyword {
                    "while" => self.parse_while(LoopKind::While, 5),
                    "until" => self.parse_while(LoopKind::Until, 5),
                    "for" => self.parse_for(LoopKind::For, 3),
                    "select" => self.parse_for(LoopKind::Select, 6),
                    "if" => self.parse_if(),
                    "case" => self.parse_case(),
                    "{" => {
                        self.pos += 1;
                        let body = self.parse_list();
                        if self.peek_plain_word() == "}" {
                            self.pos += 1;
                        }
                        self.parse_redirects();
                        Command::Group(body)
                    }
                    _ => self.parse_function_keyword(),
                };
                self.depth -= 1;
                Some(command)
            }
            "[[" => Some(Command::Simple(self.parse_double_bracket())),
            _ => self
                .parse_simple()
                .map(|simple| self.maybe_function(simple)),
        };
        parsed
    }

    /// `name() body`: the simple command read so far was a function name.
    fn maybe_function(&mut self, simple: Simple) -> Command {
        if simple.words.len() != 1 || !simple.redirects.is_empty() || self.peek() != b'(' {
            return Command::Simple(simple);
        }
        let saved = self.pos;
        self.pos += 1;
        self.skip_blanks();
        if self.depth >= MAX_DEPTH {
            self.mark_too_deep();
        }
        if self.peek() != b')' || self.depth >= MAX_DEPTH {
            self.pos = saved;
            return Command::Simple(simple);
        }
        self.pos += 1;
        self.skip_blank_lines();
        self.depth += 1;
        let body = self.parse_command();
        self.depth -= 1;
        let name = simple.words.into_iter().next().unwrap_or_default();
        Command::Function(Box::new(Function {
            name,
            body: body.unwrap_or(Command::Group(List::new())),
        }))
    }

    fn parse_function_keyword(&mut self) -> Command {
        self.pos += "function".len();
        self.skip_blanks();
        let name = if self.pos < self.end && !is_meta(self.peek()) {
            self.read_word()
        } else {
            Word::default()
        };
        self.skip_blanks();
        if self.peek() == b'(' {
            self.pos += 1;
            self.skip_blanks();
            if self.peek() == b')' {
                self.pos += 1;
            }
        }
        self.skip_blank_lines();
        let body = self.parse_command();
        Command::Function(Box::new(Function {
            name,
            body: body.unwrap_or(Command::Group(List::new())),
        }))
    }

    fn parse_while(&mut self, kind: LoopKind, keyword_length: usize) -> Command {
        let keyword = self.pos;
        self.pos += keyword_length;
        let condition = self.parse_list();
        let header_end = self.pos;
        let body = self.parse_loop_body();
        let redirects = self.parse_redirects();
        Command::Loop(Box::new(Loop {
            kind,
            keyword,
            header_end,
            condition,
            words: Vec::new(),
            arithmetic: None,
            body,
            redirects,
            end: self.pos,
        }))
    }

    /// `do … done`, or the rarer `{ … }` body.
    fn parse_loop_body(&mut self) -> List {
        self.skip_blank_lines();
        match self.peek_plain_word() {
            "do" => {
                self.pos += 2;
                let body = self.parse_list();
                if self.peek_plain_word() == "done" {
                    self.pos += 4;
                }
                body
            }
            "{" => {
                self.pos += 1;
                let body = self.parse_list();
                if self.peek_plain_word() == "}" {
                    self.pos += 1;
                }
                body
            }
            _ => List::new(),
        }
    }

    fn parse_for(&mut self, kind: LoopKind, keyword_length: usize) -> Command {
        let keyword = self.pos;
        self.pos += keyword_length;
        self.skip_blanks();
        let mut words = Vec::new();
        let mut arithmetic = None;
        let mut kind = kind;
        if self.starts_with("((") {
            kind = LoopKind::ForArithmetic;
            self.pos += 2;
            let start = self.pos;
            let end = self.skip_arithmetic();
            arithmetic = Some(split_arithmetic_header(self.bytes, start, end));
            self.skip_blanks();
            if self.peek() == b';' {
                self.pos += 1;
            }
        } else {
            if self.pos < self.end && !is_meta(self.peek()) {
                self.read_word();
            }
            self.skip_blanks();
            if self.peek() == b';' {
                self.pos += 1;
            }
            self.skip_blank_lines();
            if self.peek_plain_word() == "in" {
                self.pos += 2;
                loop {
                    self.skip_blanks();
                    if self.pos >= self.end || is_meta(self.peek()) {
                        break;
                    }
                    words.push(self.read_word());
                }
                if self.peek() == b';' {
                    self.pos += 1;
                }
            }
        }
        let header_end = self.pos;
        let body = self.parse_loop_body();
        let redirects = self.parse_redirects();
        Command::Loop(Box::new(Loop {
            kind,
            keyword,
            header_end,
            condition: List::new(),
            words,
            arithmetic,
            body,
            redirects,
            end: self.pos,
        }))
    }

    fn parse_if(&mut self) -> Command {
        self.pos += 2;
        let mut branches = Vec::new();
        let mut otherwise = None;
        loop {
            let condition = self.parse_list();
            if self.peek_plain_word() != "then" {
                branches.push((condition, List::new()));
                break;
            }
            self.pos += 4;
            let body = self.parse_list();
            branches.push((condition, body));
            match self.peek_plain_word() {
                "elif" => self.pos += 4,
                "else" => {
                    self.pos += 4;
                    otherwise = Some(self.parse_list());
                    if self.peek_plain_word() == "fi" {
                        self.pos += 2;
                    }
                    break;
                }
                "fi" => {
                    self.pos += 2;
                    break;
                }
                _ => break,
            }
        }
        self.parse_redirects();
        Command::If(Box::new(If {
            branches,
            otherwise,
        }))
    }

    fn parse_case(&mut self) -> Command {
        self.pos += 4;
        self.skip_blanks();
        let subject = if self.pos < self.end && !is_meta(self.peek()) {
            self.read_word()
        } else {
            Word::default()
        };
        self.skip_blank_lines();
        if self.peek_plain_word() == "in" {
            self.pos += 2;
        }
        let mut arms = Vec::new();
        let mut patterns = Vec::new();
        loop {
            self.skip_blank_lines();
            if self.pos >= self.end {
                break;
            }
            if self.peek_plain_word() == "esac" {
                self.pos += 4;
                break;
            }
            let before = self.pos;
            if self.peek() == b'(' {
                self.pos += 1;
            }
            // Patterns: words joined by `|`, closed by `)`.
            let mut arm_patterns = Vec::new();
            loop {
                self.skip_blanks();
                match self.peek() {
                    b')' => {
                        self.pos += 1;
                        break;
                    }
                    b'|' => self.pos += 1,
                    byte if self.pos >= self.end || is_meta(byte) => break,
                    _ => arm_patterns.push(self.read_word()),
                }
            }
            patterns.push(arm_patterns);
            arms.push(self.parse_list());
            self.skip_blanks();
            if self.starts_with(";;&") {
                self.pos += 3;
            } else if self.starts_with(";;") || self.starts_with(";&") {
                self.pos += 2;
            }
            if self.pos == before {
                break;
            }
        }
        self.parse_redirects();
        Command::Case(Box::new(Case {
            subject,
            patterns,
            arms,
        }))
    }

    /// `[[ … ]]`, where `<`, `>`, `(`, `)`, `&&` and `||` are operands, not syntax.
    fn parse_double_bracket(&mut self) -> Simple {
        let mut simple = Simple::default();
        simple.words.push(Word {
            start: self.pos,
            end: self.pos + 2,
            substitutions: Vec::new(),
        });
        self.pos += 2;
        loop {
            self.skip_blanks();
            if self.pos >= self.end {
                break;
            }
            if self.peek_plain_word() == "]]" {
                simple.words.push(Word {
                    start: self.pos,
                    end: self.pos + 2,
                    substitutions: Vec::new(),
                });
                self.pos += 2;
                break;
            }
            match self.peek() {
                b'\n' | b';' => break,
                b'<' | b'>' | b'(' | b')' | b'&' | b'|' => {
                    let start = self.pos;
                    while self.pos < self.end
                        && matches!(
                            self.bytes[self.pos],
                            b'<' | b'>' | b'(' | b')' | b'&' | b'|'
                        )
                    {
                        self.pos += 1;
                    }
                    simple.words.push(Word {
                        start,
                        end: self.pos,
                        substitutions: Vec::new(),
                    });
                }
                _ => simple.words.push(self.read_word()),
            }
        }
        simple.redirects = self.parse_redirects();
        simple.command = Some(0);
        simple.name = simple.words.first().map(|word| (word.start, word.end));
        simple
    }

    fn parse_simple(&mut self) -> Option<Simple> {
        let mut simple = Simple::default();
        let start = self.word_stack.len();
        loop {
            self.skip_blanks();
            if self.pos >= self.end {
                break;
            }
            let byte = self.peek();
            let next = self.peek_at(1);
            if (byte == b'<' || byte == b'>') && next == b'(' {
                let word = self.read_word();
                self.word_stack.push(word);
            } else if byte == b'<' || byte == b'>' || (byte == b'&' && next == b'>') {
                let redirect = self.parse_redirect(None);
                simple.redirects.push(redirect);
            } else if is_meta(byte) {
                break;
            } else {
                let word = self.read_word();
                let descriptor = self.slice(word.start, word.end);
                let is_descriptor = !descriptor.is_empty()
                    && (descriptor.bytes().all(|byte| byte.is_ascii_digit())
                        || (descriptor.starts_with('{') && descriptor.ends_with('}')));
                if is_descriptor && matches!(self.peek(), b'<' | b'>') && self.peek_at(1) != b'(' {
                    let redirect = self.parse_redirect(Some(word));
                    simple.redirects.push(redirect);
                } else {
                    self.word_stack.push(word);
                }
            }
        }
        if self.word_stack.len() == start && simple.redirects.is_empty() {
            return None;
        }
        // One allocation of the exact size, as for lists.
        simple.words = self.word_stack.drain(start..).collect();
        simple.command = simple
            .words
            .iter()
            .position(|word| super::words::assignment(self.slice(word.start, word.end)).is_none());
        if let Some(word) = simple.command.map(|index| &simple.words[index]) {
            let raw = &self.bytes[word.start..word.end];
            if !raw.iter().any(|&byte| BYTE_CLASS[byte as usize] == SPECIAL) {
                let start = raw
                    .iter()
                    .rposition(|&byte| byte == b'/')
                    .map_or(word.start, |slash| word.start + slash + 1);
                simple.name = Some((start, word.end));
            }
        }
        Some(simple)
    }

    /// Redirections after a compound command (`done < file`, `} >&2`).
    fn parse_redirects(&mut self) -> Vec<Redirect> {
        let mut redirects = Vec::new();
        loop {
            self.skip_blanks();
            let byte = self.peek();
            let next = self.peek_at(1);
            if (byte == b'<' || byte == b'>') && next != b'(' || (byte == b'&' && next == b'>') {
                redirects.push(self.parse_redirect(None));
                continue;
            }
            // A descriptor such as `2>`.
            let digits = self.bytes[self.pos.min(self.end)..self.end]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            if digits > 0 && matches!(self.peek_at(digits), b'<' | b'>') {
                let descriptor = Word {
                    start: self.pos,
                    end: self.pos + digits,
                    substitutions: Vec::new(),
                };
                self.pos += digits;
                redirects.push(self.parse_redirect(Some(descriptor)));
                continue;
            }
            break;
        }
        redirects
    }

    fn parse_redirect(&mut self, descriptor: Option<Word>) -> Redirect {
        const OPERATORS: [&str; 12] = [
            "&>>", "<<<", "<<-", "&>", "<<", "<>", "<&", ">>", ">&", ">|", "<", ">",
        ];
        let operator = OPERATORS
            .iter()
            .find(|operator| self.starts_with(operator))
            .copied()
            .unwrap_or(">");
        self.pos += operator.len();
        self.skip_blanks();
        let target = if self.pos < self.end && (!is_meta(self.peek()) || self.peek_at(1) == b'(') {
            self.read_word()
        } else {
            Word {
                start: self.pos,
                end: self.pos,
                substitutions: Vec::new(),
            }
        };
        if operator == "<<" || operator == "<<-" {
            let raw = self.slice(target.start, target.end);
            self.heredocs.push(PendingHeredoc {
                delimiter: super::words::literal(raw).into_owned(),
                strip_tabs: operator == "<<-",
                target: target.start,
                quoted: raw.contains(['\'', '"', '\\']),
            });
        }
        Redirect {
            operator,
            descriptor,
            target,
        }
    }

    /// Reads one word; the caller has checked that one starts here.
    fn read_word(&mut self) -> Word {
        let start = self.pos;
        let mut substitutions = Vec::new();
        if matches!(self.peek(), b'<' | b'>') && self.peek_at(1) == b'(' {
            self.pos += 2;
            substitutions.push(self.nested_list());
        }
        while self.pos < self.end {
            let byte = self.bytes[self.pos];
            if BYTE_CLASS[byte as usize] == PLAIN {
                self.pos += 1;
                continue;
            }
            match byte {
                b'(' if self.pos > start
                    && matches!(
                        self.bytes[self.pos - 1],
                        b'=' | b'@' | b'!' | b'+' | b'*' | b'?'
                    ) =>
                {
                    // An array assignment `name=(…)` or an extended glob `@(…)`.
                    self.pos += 1;
                    self.skip_balanced(1);
                }
                _ if is_meta(byte) => break,
                b'\'' => self.skip_single_quoted(),
                b'"' => self.skip_double_quoted(&mut substitutions),
                b'\\' => self.pos = (self.pos + 2).min(self.end),
                b'`' => self.read_backticks(&mut substitutions),
                b'$' => self.read_dollar(&mut substitutions),
                _ => self.pos += 1,
            }
        }
        if self.pos == start {
            // Never return an empty word: callers rely on progress.
            self.pos += 1;
            while self.pos < self.end && !self.text.is_char_boundary(self.pos) {
                self.pos += 1;
            }
        }
        Word {
            start,
            end: self.pos,
            substitutions,
        }
    }

    fn skip_single_quoted(&mut self) {
        self.pos += 1;
        while self.pos < self.end && self.bytes[self.pos] != b'\'' {
            self.pos += 1;
        }
        self.pos = (self.pos + 1).min(self.end);
    }

    fn skip_double_quoted(&mut self, substitutions: &mut Vec<List>) {
        self.pos += 1;
        while self.pos < self.end {
            match self.bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return;
                }
                b'\\' => self.pos = (self.pos + 2).min(self.end),
                b'`' => self.read_backticks(substitutions),
                b'$' => self.read_dollar(substitutions),
                _ => self.pos += 1,
            }
        }
    }

    /// `$'…'`, `$((…))`, `$(…)`, `${…}` or a plain `$`.
    fn read_dollar(&mut self, substitutions: &mut Vec<List>) {
        match self.peek_at(1) {
            b'\'' => {
                self.pos += 2;
                while self.pos < self.end {
                    match self.bytes[self.pos] {
                        b'\\' => self.pos += 2,
                        b'\'' => {
                            self.pos += 1;
                            break;
                        }
                        _ => self.pos += 1,
                    }
                }
                self.pos = self.pos.min(self.end);
            }
            b'(' if self.peek_at(2) == b'(' => {
                self.pos += 3;
                self.skip_arithmetic();
            }
            b'(' => {
                self.pos += 2;
                substitutions.push(self.nested_list());
            }
            b'{' => {
                self.pos += 2;
                let mut level = 1usize;
                while self.pos < self.end && level > 0 {
                    match self.bytes[self.pos] {
                        b'{' => level += 1,
                        b'}' => level -= 1,
                        b'\\' => self.pos += 1,
                        b'\'' => {
                            self.skip_single_quoted();
                            continue;
                        }
                        b'"' => {
                            self.skip_double_quoted(substitutions);
                            continue;
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
                self.pos = self.pos.min(self.end);
            }
            _ => self.pos += 1,
        }
    }

    /// The code of a `$(…)` or `<(…)` whose opening has been consumed.
    fn nested_list(&mut self) -> List {
        if self.depth >= MAX_DEPTH {
            self.mark_too_deep();
            self.skip_balanced(1);
            return List::new();
        }
        self.depth += 1;
        let list = self.parse_list();
        self.depth -= 1;
        if self.peek() == b')' {
            self.pos += 1;
        }
        list
    }

    fn read_backticks(&mut self, substitutions: &mut Vec<List>) {
        let open = self.pos;
        let mut close = open + 1;
        while close < self.end {
            match self.bytes[close] {
                b'\\' => close += 2,
                b'`' => break,
                _ => close += 1,
            }
        }
        let close = close.min(self.end);
        if self.depth < MAX_DEPTH {
            let mut inner = Parser::over(self.text, open + 1, close, self.depth + 1);
            substitutions.push(inner.parse_program());
            self.heredoc_bodies.append(&mut inner.heredoc_bodies);
            if let Some(offset) = inner.too_deep {
                self.too_deep.get_or_insert(offset);
            }
        } else {
            self.mark_too_deep();
        }
        self.pos = (close + 1).min(self.end);
    }

    /// Skips to just past the `)` that closes `level` open parentheses; quotes respected.
    fn skip_balanced(&mut self, mut level: usize) {
        while self.pos < self.end {
            match self.bytes[self.pos] {
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                b'\\' => self.pos += 1,
                b'\'' => {
                    self.skip_single_quoted();
                    continue;
                }
                b'"' => {
                    self.pos += 1;
                    while self.pos < self.end && self.bytes[self.pos] != b'"' {
                        if self.bytes[self.pos] == b'\\' {
                            self.pos += 1;
                        }
                        self.pos += 1;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.end);
    }

    /// Skips an arithmetic expression whose `((` has been consumed; returns
    /// the offset where the expression ends (before `))`).
    fn skip_arithmetic(&mut self) -> usize {
        let mut level = 0usize;
        while self.pos < self.end {
            match self.bytes[self.pos] {
                b'(' => level += 1,
                b')' if level == 0 => {
                    let end = self.pos;
                    self.pos += if self.peek_at(1) == b')' { 2 } else { 1 };
                    return end;
                }
                b')' => level -= 1,
                b'\'' => {
                    self.skip_single_quoted();
                    continue;
                }
                b'"' => {
                    self.skip_double_quoted(&mut Vec::new());
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.end);
        self.pos
    }
}

/// Splits `init; condition; step` at its top-level semicolons.
fn split_arithmetic_header(bytes: &[u8], start: usize, end: usize) -> [(usize, usize); 3] {
    let mut parts = [(end, end); 3];
    let mut part = 0;
    let mut part_start = start;
    let mut level = 0usize;
    for (index, &byte) in bytes.iter().enumerate().take(end).skip(start) {
        match byte {
            b'(' => level += 1,
            b')' => level = level.saturating_sub(1),
            b';' if level == 0 && part < 2 => {
                parts[part] = (part_start, index);
                part += 1;
                part_start = index + 1;
            }
            _ => {}
        }
    }
    parts[part] = (part_start, end);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> List {
        Parser::new(text).parse_program()
    }

    fn first_command(list: &List) -> &Command {
        &list[0].pipelines[0].commands[0]
    }

    #[test]
    fn while_loop_has_condition_and_body() {
        let list = parse("while true; do echo hi; done\n");
        let Command::Loop(lp) = first_command(&list) else {
            panic!("expected a loop, got {list:?}");
        };
        assert_eq!(lp.kind, LoopKind::While);
        assert_eq!(lp.keyword, 0);
        assert_eq!(lp.condition.len(), 1);
        assert_eq!(lp.body.len(), 1);
    }

    #[test]
    fn heredoc_body_is_data() {
        let list = parse("cat <<'EOF'\nwhile true; do :; done\nEOF\necho after\n");
        assert_eq!(list.len(), 2);
        assert!(matches!(first_command(&list), Command::Simple(_)));
    }

    #[test]
    fn case_arms_with_parenthesised_patterns() {
        let list =
            parse("case $x in\n (a|b) echo a ;;\n *) while :; do :; done ;;\nesac\necho z\n");
        assert_eq!(list.len(), 2);
        let Command::Case(case) = first_command(&list) else {
            panic!("expected case");
        };
        let arms = &case.arms;
        assert_eq!(case.patterns.len(), 2);
        assert_eq!(case.patterns[0].len(), 2);
        assert_eq!(arms.len(), 2);
        assert!(matches!(first_command(&arms[1]), Command::Loop(_)));
    }

    #[test]
    fn for_arithmetic_header_is_split() {
        let list = parse("for ((i=0; ; i++)); do :; done");
        let Command::Loop(lp) = first_command(&list) else {
            panic!("expected a loop");
        };
        assert_eq!(lp.kind, LoopKind::ForArithmetic);
        let [init, condition, step] = lp.arithmetic.unwrap();
        assert_eq!(&"for ((i=0; ; i++)); do :; done"[init.0..init.1], "i=0");
        assert_eq!(
            &"for ((i=0; ; i++)); do :; done"[condition.0..condition.1],
            " "
        );
        assert_eq!(&"for ((i=0; ; i++)); do :; done"[step.0..step.1], " i++");
    }

    #[test]
    fn command_substitution_is_parsed_as_code() {
        let list = parse("x=$(while true; do :; done)\n");
        let Command::Simple(simple) = first_command(&list) else {
            panic!("expected simple");
        };
        assert!(matches!(
            first_command(&simple.words[0].substitutions[0]),
            Command::Loop(_)
        ));
    }

    #[test]
    fn nesting_too_deep_to_follow_is_marked() {
        let text = "{ ".repeat(60) + "while true; do :; done" + &" }".repeat(60);
        let mut parser = Parser::new(&text);
        parser.parse_program();
        assert_eq!(parser.too_deep, Some(2 * 48));
        let mut shallow = Parser::new("{ { while true; do :; done; }; }");
        shallow.parse_program();
        assert_eq!(shallow.too_deep, None);
        let deep = "$(".repeat(60) + "x" + &")".repeat(60);
        let mut substitutions = Parser::new(&deep);
        substitutions.parse_program();
        assert!(substitutions.too_deep.is_some());
    }

    #[test]
    fn nested_lists_and_words_keep_their_own_items_at_their_exact_size() {
        let text = "a $(b x; c y z) w; while d; do e \"$(f; g)\" v; done\nh\n";
        let list = parse(text);
        let words = |simple: &Simple| -> Vec<String> {
            let raw = |word: &Word| text[word.start..word.end].to_owned();
            simple.words.iter().map(raw).collect()
        };
        assert_eq!(list.len(), 3);
        assert_eq!(list.capacity(), list.len());
        let Command::Simple(first) = first_command(&list) else {
            panic!("expected a simple command, got {list:?}");
        };
        assert_eq!(words(first), ["a", "$(b x; c y z)", "w"]);
        assert_eq!(first.words.capacity(), 3);
        let inner = &first.words[1].substitutions[0];
        assert_eq!(inner.len(), 2);
        assert_eq!(inner.capacity(), 2);
        let Command::Simple(second) = &inner[1].pipelines[0].commands[0] else {
            panic!("expected a simple command, got {inner:?}");
        };
        assert_eq!(words(second), ["c", "y", "z"]);
        let Command::Loop(lp) = &list[1].pipelines[0].commands[0] else {
            panic!("expected a loop, got {list:?}");
        };
        assert_eq!((lp.condition.capacity(), lp.body.capacity()), (1, 1));
        let Command::Simple(body) = first_command(&lp.body) else {
            panic!("expected a simple command, got {:?}", lp.body);
        };
        assert_eq!(words(body), ["e", "\"$(f; g)\"", "v"]);
        assert_eq!(body.words[1].substitutions[0].len(), 2);
        let Command::Simple(last) = &list[2].pipelines[0].commands[0] else {
            panic!("expected a simple command, got {list:?}");
        };
        assert_eq!(words(last), ["h"]);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let text = "$(".repeat(10_000) + &"{ ".repeat(10_000) + &"(".repeat(10_000);
        let _ = parse(&text);
    }
}
