//! PowerShell loop scanner (`.ps1`, `.psm1`).
//!
//! A lexer turns the text into tokens, dropping `#` and `<# … #>` comments and
//! keeping every string (quoted or here-string) as one opaque token, so words
//! in data never count. Brackets are then paired, which gives each loop its
//! condition and body; guards are searched for only inside the body of the
//! loop they must stop.

use std::collections::{HashMap, HashSet};

use super::text::{
    bare_sleep_message, finding, promises_another_try, silent_message, slice, snippet,
    unscanned_message, Budget, Guard,
};
use super::LoopFinding;
use crate::validate::diagnostic::{FindingKind, Rule};

mod guards;
mod lexer;

use lexer::{enclosing_brackets, pair_brackets, tokenize, Kind, Token, DOUBLE_QUOTES};

/// How many dot-sourced files one script may take helpers from.
const MAX_SOURCED_FILES: usize = 8;

/// Scans one file's text; see [`super::scan`]. Files it dot-sources are not read.
pub fn scan(source: &str) -> Vec<LoopFinding> {
    scan_with(source, &|_| None)
}

/// Scans one file's text, as [`scan`] does, reading the files it dot-sources
/// by a literal path (`. "$PSScriptRoot/lib/common.ps1"`, `. .\helpers.ps1`,
/// `. (Join-Path $PSScriptRoot 'logging.ps1')`): functions defined there that
/// always leave or that say why count as they do for functions of the file.
/// `resolve` gets the path relative to the script's folder, with `/`
/// separators, and returns the file's text or `None`.
pub fn scan_with(source: &str, resolve: &dyn Fn(&str) -> Option<String>) -> Vec<LoopFinding> {
    // Callers remove a byte-order mark; one left over is still not text.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let chars: Vec<char> = source.chars().collect();
    let tokens = tokenize(&chars);
    let mut sourced = HashMap::new();
    for path in dot_sourced_paths(&chars, &tokens)
        .into_iter()
        .take(MAX_SOURCED_FILES)
    {
        let Some(text) = resolve(&path) else {
            continue;
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let library: Vec<char> = text.chars().collect();
        let library_tokens = tokenize(&library);
        sourced.extend(Script::new(&library, library_tokens, HashMap::new()).helpers);
    }
    let script = Script::new(&chars, tokens, sourced);
    let mut findings = Vec::new();
    script.check_loops(&mut findings);
    script.check_endless_reads(&mut findings);
    script.check_bare_sleeps(&mut findings);
    findings
}

/// How a loop decides whether to go round again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopShape {
    While,
    DoWhile,
    DoUntil,
    For,
    Foreach,
    /// A `ForEach-Object` / `Where-Object` script block run per pipeline item.
    Pipeline,
    /// Not a loop, but `break` inside it leaves only the `switch`.
    Switch,
}

#[derive(Debug)]
struct Loop {
    shape: LoopShape,
    /// Token where the loop starts (its keyword).
    keyword: usize,
    /// Open and close parenthesis of the condition, when it has one.
    condition: Option<(usize, usize)>,
    /// Open and close brace of the body.
    body: (usize, usize),
    /// `:label` written before the loop.
    label: Option<String>,
    /// Token ending the text quoted in messages.
    header_end: usize,
}

struct Script<'a> {
    chars: &'a [char],
    tokens: Vec<Token>,
    /// Index of the matching bracket, for each bracket token.
    pairs: Vec<Option<usize>>,
    loops: Vec<Loop>,
    /// For each token, how many function bodies hold it; a function's `return` and guards are its own.
    function_depth: Vec<u32>,
    /// For each token, the innermost loop whose body holds it.
    innermost_loop: Vec<Option<usize>>,
    /// For each loop, the loop whose body holds it.
    parent_loop: Vec<Option<usize>>,
    /// Tokens a guard is made of, in order: `if` keywords and variables being stepped or assigned.
    guard_parts: Vec<usize>,
    /// Work left for guard searches in this file.
    budget: Budget,
    /// Token where the script first sets `$ErrorActionPreference = 'Stop'`.
    stop_preference: Option<usize>,
    /// For each token, the innermost bracket holding it.
    enclosing: Vec<Option<usize>>,
    /// Opening parentheses of loop conditions.
    loop_conditions: HashSet<usize>,
    /// For each token, whether it lies in a script block that is only parsed (`{ … }.Ast`).
    parsed_only: Vec<bool>,
    /// Functions of the file: name → (always leaves the script, says why).
    helpers: HashMap<String, (bool, bool)>,
    /// Variables assigned from a clock anywhere in the file.
    clocks: HashSet<String>,
    /// `(name, body)` of each function, for `helpers`.
    functions: Vec<(String, (usize, usize))>,
    /// Functions of the file whose answer comes from the outside world: they probe,
    /// sleep, or catch a failing command and report it by what they return.
    probing: HashSet<String>,
}

impl<'a> Script<'a> {
    /// `sourced`: helpers of the files the script dot-sources, as `helpers` holds them.
    fn new(chars: &'a [char], tokens: Vec<Token>, sourced: HashMap<String, (bool, bool)>) -> Self {
        let pairs = pair_brackets(&tokens);
        let mut script = Script {
            chars,
            tokens,
            pairs,
            loops: Vec::new(),
            function_depth: Vec::new(),
            innermost_loop: Vec::new(),
            parent_loop: Vec::new(),
            guard_parts: Vec::new(),
            budget: Budget::new(),
            stop_preference: None,
            enclosing: Vec::new(),
            loop_conditions: HashSet::new(),
            parsed_only: Vec::new(),
            helpers: HashMap::new(),
            clocks: HashSet::new(),
            functions: Vec::new(),
            probing: HashSet::new(),
        };
        script.enclosing = enclosing_brackets(&script.tokens, &script.pairs);
        script.parsed_only = script.parsed_only_blocks();
        script.stop_preference = (0..script.tokens.len()).find(|&setting| {
            let token = &script.tokens[setting];
            let is = |offset: usize, kind: Kind, text: &str| {
                script
                    .tokens
                    .get(setting + offset)
                    .is_some_and(|next| next.kind == kind && next.text == text)
            };
            token.kind == Kind::Variable
                && token.text == "erroractionpreference"
                && is(1, Kind::Operator, "=")
                && is(2, Kind::Text, "stop")
        });
        script.find_structure();
        script.nest_loops();
        script.guard_parts = (0..script.tokens.len())
            .filter(|&index| {
                let token = &script.tokens[index];
                let before = index.checked_sub(1).map(|before| &script.tokens[before]);
                let after = script.tokens.get(index + 1);
                let is_operator = |token: Option<&Token>, texts: &[&str]| {
                    token.is_some_and(|token| {
                        token.kind == Kind::Operator && texts.contains(&token.text.as_str())
                    })
                };
                (token.kind == Kind::Word
                    && token.text == "if"
                    && script.at_command_position(index))
                    || (token.kind == Kind::Variable
                        && (is_operator(after, &["=", "++", "--", "+=", "-="])
                            || is_operator(before, &["++", "--"])))
            })
            .collect();
        script.loop_conditions = script
            .loops
            .iter()
            .filter_map(|candidate| candidate.condition.map(|(open, _)| open))
            .collect();
        let all_parts = script.guard_parts.clone();
        script.clocks = script.clock_variables(&all_parts);
        script.helpers = script.find_helpers(&sourced);
        script.probing = script.find_probing_helpers();
        script
    }

    /// Functions that ask the outside world (see `probing`); a function calling
    /// one does too, settled over a few rounds.
    fn find_probing_helpers(&self) -> HashSet<String> {
        let mut probing: HashSet<String> = HashSet::new();
        for _ in 0..3 {
            let mut grew = false;
            for (name, (open, close)) in &self.functions {
                if probing.contains(name) || !self.budget.spend(close.saturating_sub(*open)) {
                    continue;
                }
                let asks = (open + 1..(*close).min(self.tokens.len())).any(|index| {
                    self.is_probe(index)
                        || self.word(index).is_some_and(|word| {
                            self.at_command_position(index)
                                && (matches!(word, "start-sleep" | "sleep" | "catch")
                                    || probing.contains(word))
                        })
                });
                if asks {
                    probing.insert(name.clone());
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        probing
    }

    /// Tokens inside a `{ … }` whose `.Ast` is read: parsed, never run.
    fn parsed_only_blocks(&self) -> Vec<bool> {
        let mut steps = vec![0_i64; self.tokens.len() + 1];
        for (open, token) in self.tokens.iter().enumerate() {
            if token.kind != Kind::Open('{') {
                continue;
            }
            let Some(close) = self.pairs[open] else {
                continue;
            };
            let reads_ast = self
                .tokens
                .get(close + 1)
                .is_some_and(|dot| dot.text == ".")
                && self
                    .word(close + 2)
                    .is_some_and(|word| word.starts_with("ast"));
            if reads_ast {
                steps[open] += 1;
                steps[close] -= 1;
            }
        }
        let mut depth = 0;
        steps[..self.tokens.len()]
            .iter()
            .map(|step| {
                depth += step;
                depth > 0
            })
            .collect()
    }

    /// Whether each function of the file always ends the script (`exit`, `throw`)
    /// and whether it says why.
    fn find_helpers(
        &self,
        sourced: &HashMap<String, (bool, bool)>,
    ) -> HashMap<String, (bool, bool)> {
        let mut helpers = sourced.clone();
        // A helper may call another; a few rounds settle the chains scripts use.
        for _ in 0..3 {
            let known = helpers.clone();
            // A function of the file wins over a dot-sourced one of the same name.
            helpers = sourced.clone();
            helpers.extend(self.helper_round(&known));
        }
        helpers
    }

    fn helper_round(&self, known: &HashMap<String, (bool, bool)>) -> HashMap<String, (bool, bool)> {
        let mut helpers = HashMap::new();
        for (name, (open, close)) in &self.functions {
            if !self.budget.spend(close.saturating_sub(*open)) {
                break;
            }
            let mut leaves = false;
            let mut speaks = false;
            for index in open + 1..(*close).min(self.tokens.len()) {
                let Some(word) = self.word(index) else {
                    continue;
                };
                if !self.at_command_position(index) {
                    continue;
                }
                match word {
                    "exit" => leaves = true,
                    "throw" => {
                        leaves = true;
                        speaks |= self.argument(index).is_some();
                    }
                    _ if is_exception_helper(word) => {
                        leaves = true;
                        speaks |= self.argument(index).is_some();
                    }
                    "echo" | "write" => speaks = true,
                    _ => {
                        let (called_leaves, called_speaks) =
                            known.get(word).copied().unwrap_or_default();
                        leaves |= called_leaves;
                        speaks |= called_speaks
                            || word.starts_with("log-")
                            || word.ends_with("-log")
                            || (word.starts_with("write-")
                                && !matches!(
                                    word,
                                    "write-verbose" | "write-debug" | "write-progress"
                                ));
                    }
                }
            }
            helpers.insert(name.clone(), (leaves, speaks));
        }
        helpers
    }

    fn word(&self, index: usize) -> Option<&str> {
        self.tokens
            .get(index)
            .filter(|token| token.kind == Kind::Word)
            .map(|token| token.text.as_str())
    }

    fn kind(&self, index: usize) -> Option<Kind> {
        self.tokens.get(index).map(|token| token.kind)
    }

    /// The next token after `index` that is not a line end.
    fn next_significant(&self, index: usize) -> Option<usize> {
        (index + 1..self.tokens.len()).find(|&next| self.tokens[next].kind != Kind::Newline)
    }

    /// The closing partner of the bracket at `index`, or the last token when it is never closed.
    fn close_of(&self, index: usize) -> usize {
        self.pairs
            .get(index)
            .copied()
            .flatten()
            .unwrap_or(self.tokens.len().saturating_sub(1))
    }

    /// Whether the token at `index` starts a command.
    fn at_command_position(&self, index: usize) -> bool {
        index == 0
            || matches!(
                self.tokens[index - 1].kind,
                Kind::Newline
                    | Kind::Semicolon
                    | Kind::Open('{' | '(')
                    | Kind::Close('}')
                    | Kind::Pipe
                    | Kind::Label
            )
            || (self.tokens[index - 1].kind == Kind::Operator
                && matches!(
                    self.tokens[index - 1].text.as_str(),
                    "=" | "&" | "&&" | "||"
                ))
    }

    /// The bracket opening at the next significant token after `index`, if it is `open`.
    fn bracket_after(&self, index: usize, open: char) -> Option<(usize, usize)> {
        let next = self.next_significant(index)?;
        (self.kind(next) == Some(Kind::Open(open))).then(|| (next, self.close_of(next)))
    }

    fn find_structure(&mut self) {
        let mut consumed: HashSet<usize> = HashSet::new();
        let mut loops = Vec::new();
        let mut functions = Vec::new();
        let mut named = Vec::new();
        for index in 0..self.tokens.len() {
            let Some(word) = self.word(index) else {
                if self.kind(index) == Some(Kind::Operator)
                    && matches!(self.tokens[index].text.as_str(), "%" | "?")
                    && index > 0
                    && self.kind(index - 1) == Some(Kind::Pipe)
                {
                    loops.extend(self.pipeline_loop(index));
                }
                continue;
            };
            if consumed.contains(&index) || !self.at_command_position(index) {
                continue;
            }
            let label = (index > 0 && self.kind(index - 1) == Some(Kind::Label)).then(|| {
                self.tokens[index - 1]
                    .text
                    .trim_start_matches(':')
                    .to_string()
            });
            let after_pipe = index > 0 && self.kind(index - 1) == Some(Kind::Pipe);
            match word {
                "while" | "for" | "foreach" if !after_pipe => {
                    let Some(condition) = self.bracket_after(index, '(') else {
                        continue;
                    };
                    let Some(body) = self.bracket_after(condition.1, '{') else {
                        continue;
                    };
                    let shape = match word {
                        "while" => LoopShape::While,
                        "for" => LoopShape::For,
                        _ => LoopShape::Foreach,
                    };
                    loops.push(Loop {
                        shape,
                        keyword: index,
                        condition: Some(condition),
                        body,
                        label,
                        header_end: condition.1,
                    });
                }
                "do" => {
                    let Some(body) = self.bracket_after(index, '{') else {
                        continue;
                    };
                    let Some(tail) = self.next_significant(body.1) else {
                        continue;
                    };
                    let shape = match self.word(tail) {
                        Some("while") => LoopShape::DoWhile,
                        Some("until") => LoopShape::DoUntil,
                        _ => continue,
                    };
                    consumed.insert(tail);
                    let condition = self.bracket_after(tail, '(');
                    loops.push(Loop {
                        shape,
                        keyword: index,
                        condition,
                        body,
                        label,
                        header_end: condition.map_or(tail, |(_, close)| close),
                    });
                }
                "foreach-object" | "where-object" | "where" | "foreach" => {
                    loops.extend(self.pipeline_loop(index));
                }
                "switch" => {
                    if let Some(mut block) = self.pipeline_loop(index) {
                        block.shape = LoopShape::Switch;
                        loops.push(block);
                    }
                }
                "function" | "filter" | "workflow" => {
                    let mut next = self.next_significant(index);
                    // Skip the name and an optional parameter list.
                    while let Some(candidate) = next {
                        match self.kind(candidate) {
                            Some(Kind::Open('{')) => {
                                let body = (candidate, self.close_of(candidate));
                                functions.push(body);
                                if let Some(name) = self.word(index + 1) {
                                    named.push((name.to_string(), body));
                                }
                                break;
                            }
                            Some(Kind::Open('(')) => {
                                next = self.next_significant(self.close_of(candidate));
                            }
                            Some(Kind::Word) => next = self.next_significant(candidate),
                            _ => break,
                        }
                    }
                }
                _ => {}
            }
        }
        self.loops = loops;
        self.functions = named;
        // Nesting depth by a running sum of +1 after each opening brace and -1 at its close.
        let mut steps = vec![0_i64; self.tokens.len() + 1];
        for (open, close) in functions {
            steps[open + 1] += 1;
            steps[close.min(self.tokens.len())] -= 1;
        }
        let mut depth: i64 = 0;
        self.function_depth = steps[..self.tokens.len()]
            .iter()
            .map(|step| {
                depth += step;
                u32::try_from(depth.max(0)).unwrap_or(u32::MAX)
            })
            .collect();
    }

    /// Finds, in one sweep, each token's innermost loop and each loop's parent.
    /// Bodies are bracket pairs, so they nest and never partly overlap.
    fn nest_loops(&mut self) {
        let mut order: Vec<usize> = (0..self.loops.len()).collect();
        order.sort_by_key(|&position| {
            let (open, close) = self.loops[position].body;
            (open, std::cmp::Reverse(close))
        });
        let mut parents = vec![None; self.loops.len()];
        let mut innermost = vec![None; self.tokens.len()];
        let mut active: Vec<usize> = Vec::new();
        let mut next = 0;
        for (index, slot) in innermost.iter_mut().enumerate() {
            while let Some(&position) = order.get(next) {
                if self.loops[position].body.0 >= index {
                    break;
                }
                while active
                    .last()
                    .is_some_and(|&top| self.loops[top].body.1 <= self.loops[position].body.0)
                {
                    active.pop();
                }
                parents[position] = active.last().copied();
                active.push(position);
                next += 1;
            }
            while active
                .last()
                .is_some_and(|&top| self.loops[top].body.1 <= index)
            {
                active.pop();
            }
            *slot = active.last().copied();
        }
        self.innermost_loop = innermost;
        self.parent_loop = parents;
    }

    /// Loops holding token `index`, innermost first, stopping before loop `outer`.
    fn loops_around(&self, index: usize, outer: Option<usize>) -> Vec<usize> {
        let mut found = Vec::new();
        let mut current = self.innermost_loop.get(index).copied().flatten();
        while let Some(position) = current {
            if Some(position) == outer || found.len() > self.loops.len() {
                break;
            }
            found.push(position);
            current = self.parent_loop[position];
        }
        found
    }

    /// The script block of a `ForEach-Object` (or alias) at `index`.
    fn pipeline_loop(&self, index: usize) -> Option<Loop> {
        let mut first_open = None;
        let mut last_close = None;
        let mut cursor = index + 1;
        while let Some(token) = self.tokens.get(cursor) {
            match token.kind {
                Kind::Newline | Kind::Semicolon | Kind::Pipe | Kind::Close(_) => break,
                Kind::Open(open) => {
                    let close = self.close_of(cursor);
                    if open == '{' {
                        first_open.get_or_insert(cursor);
                        last_close = Some(close);
                    }
                    cursor = close + 1;
                }
                _ => cursor += 1,
            }
        }
        Some(Loop {
            shape: LoopShape::Pipeline,
            keyword: index,
            condition: None,
            body: (first_open?, last_close?),
            label: None,
            header_end: index,
        })
    }

    /// Whether token `index` lies in a function defined inside loop `position`.
    fn in_nested_function(&self, index: usize, position: usize) -> bool {
        let depth = |token: usize| self.function_depth.get(token).copied().unwrap_or(0);
        depth(index) > depth(self.loops[position].keyword)
    }

    /// Tokens strictly inside a bracket pair, line ends dropped.
    fn inside(&self, (open, close): (usize, usize)) -> Vec<usize> {
        (open + 1..close.min(self.tokens.len()))
            .filter(|&index| self.tokens[index].kind != Kind::Newline)
            .collect()
    }

    fn check_loops(&self, findings: &mut Vec<LoopFinding>) {
        for (position, candidate) in self.loops.iter().enumerate() {
            if self
                .parsed_only
                .get(candidate.keyword)
                .copied()
                .unwrap_or(false)
            {
                continue;
            }
            let Some(shape) = self.shape(position) else {
                continue;
            };
            if shape == Shape::Endless
                && !self.sleeps_in(position)
                && self.ends_with_its_input(position)
            {
                continue;
            }
            // A pipeline loop is reported where its endless source starts, like its message.
            let keyword = match candidate.shape {
                LoopShape::Pipeline => &self.tokens[self.statement_start(candidate.keyword)],
                _ => &self.tokens[candidate.keyword],
            };
            if matches!(shape, Shape::Wait(_)) && self.stops_what_runs_too_long(position) {
                // A job pool that stops each job past its deadline: every job ends.
                continue;
            }
            let header = self.header(candidate);
            let Some(guard) = self.find_guard(position) else {
                findings.push(finding(
                    Rule::H11,
                    FindingKind::Unscanned,
                    keyword.line,
                    keyword.column,
                    unscanned_message(
                        "the file needs more work than the scanner's per-file budget",
                    ),
                ));
                continue;
            };
            let header_guard = match &shape {
                Shape::Endless => false,
                Shape::Retry => true,
                Shape::Wait(_) => candidate.condition.is_some_and(|condition| {
                    self.is_guard_condition(condition, &guard.counters)
                        || self
                            .invoked_script_blocks(condition)
                            .into_iter()
                            .any(|block| self.is_guard_condition(block, &guard.counters))
                }),
            };
            // `while ($sent -lt 300) { …; Start-Sleep 1 }` counts rounds and waits for nothing.
            let counted = matches!(shape, Shape::Wait(_))
                && header_guard
                && candidate.condition.is_some_and(|condition| {
                    !self
                        .inside(condition)
                        .iter()
                        .any(|&index| matches!(self.word(index), Some("-and" | "-or" | "-xor")))
                        && self.probe_within(condition).is_none()
                        && self.probe_assigned_for(condition, candidate.body).is_none()
                })
                && !self.leaves_early(position);
            if counted {
                continue;
            }
            if header_guard && guard.guard_speaks && guard.guard != Guard::Loud {
                // The give-up pass runs through a guard branch that says why.
                continue;
            }
            if !header_guard && guard.guard == Guard::None {
                let message = match &shape {
                    Shape::Wait(probe) => format!(
                        "`{}` loop waits for `{}` with no deadline: add one (`if ((Get-Date) -gt $deadline) {{ Write-Error 'timed out'; break }}`) or an iteration cap",
                        snippet(&header),
                        snippet(probe)
                    ),
                    _ => format!(
                        "`{}` loop never ends by itself: add a deadline (`if ((Get-Date) -gt $deadline) {{ Write-Error 'timed out'; break }}`) or an iteration cap",
                        snippet(&header)
                    ),
                };
                findings.push(finding(
                    Rule::H11,
                    FindingKind::Unbounded,
                    keyword.line,
                    keyword.column,
                    message,
                ));
                continue;
            }
            if guard.guard == Guard::Loud {
                continue;
            }
            // A loop that waits for nothing (no sleep, no other way out) and whose only
            // exit is its own cap or deadline with `break` ends normally there.
            let countdown = shape == Shape::Endless
                && !header_guard
                && !self.sleeps_in(position)
                && guard.breaks_only
                && !guard.other_exit;
            if countdown
                || self.says_after_loop(position, &guard)
                || (header_guard && self.speaks_on_failing_pass(position) == Some(true))
                || self.callers_assert_what_it_waited_for(position)
            {
                continue;
            }
            findings.push(finding(
                Rule::H11,
                FindingKind::SilentFallback,
                keyword.line,
                keyword.column,
                silent_message(&header, "`Write-Error 'timed out'` or `throw 'timed out'`"),
            ));
        }
    }

    /// Why loop `position` might not end, or `None` when it ends by itself.
    fn shape(&self, position: usize) -> Option<Shape> {
        let candidate = &self.loops[position];
        let endless = match (candidate.shape, candidate.condition) {
            (LoopShape::While | LoopShape::DoWhile, Some(condition)) => {
                self.constant(&self.inside(condition)) == Some(true)
                    || self.condition_never_changes(condition, candidate.body) == Some(false)
            }
            (LoopShape::DoUntil, Some(condition)) => {
                self.constant(&self.inside(condition)) == Some(false)
                    || self.condition_never_changes(condition, candidate.body) == Some(false)
            }
            (LoopShape::For, Some(condition)) => self.endless_for(condition),
            (LoopShape::Foreach, Some(condition)) => {
                self.endless_read_within(condition.0, condition.1).is_some()
            }
            (LoopShape::Pipeline, _) => self.pipeline_source_is_endless(candidate.keyword),
            _ => false,
        };
        if endless {
            return Some(Shape::Endless);
        }
        let condition = candidate.condition?;
        let sleeps = self.sleeps_in(position);
        match candidate.shape {
            LoopShape::While | LoopShape::DoWhile | LoopShape::DoUntil => {
                if self.prompts_each_pass(position) {
                    // A person answers each pass, and an answer leaves: not a wait on the world.
                    return None;
                }
                if let Some(command) = self.status_tested(condition, candidate.body) {
                    // `do { Add-Computer … } until ($?)` goes round until a command succeeds.
                    return Some(Shape::Wait(command));
                }
                if !sleeps && self.condition_reassigned(condition, candidate.body) {
                    // A search: each pass tries a new value (`do { $name = New-Name } while (Test-Path $name)`).
                    return None;
                }
                if let Some(probe) = self.probe_within(condition) {
                    if !sleeps && self.asks_something_new(condition, candidate.body) {
                        return None;
                    }
                    return Some(Shape::Wait(probe));
                }
                if let Some(probe) = self.probe_assigned_for(condition, candidate.body) {
                    if !sleeps && self.asks_something_new(condition, candidate.body) {
                        // Paging, a walk up a tree, a fresh name: each pass asks anew.
                        return None;
                    }
                    return Some(Shape::Wait(probe));
                }
                // A property nothing in the loop sets can only change by itself (a job's
                // state, a session's availability): the loop waits for it.
                let watches_a_property =
                    self.condition_never_changes(condition, candidate.body) == Some(true);
                (sleeps || watches_a_property).then(|| {
                    Shape::Wait(
                        slice(
                            self.chars,
                            self.tokens[condition.0].end,
                            self.tokens[condition.1].start,
                        )
                        .trim()
                        .to_string(),
                    )
                })
            }
            LoopShape::For => (sleeps && self.leaves_early(position)).then_some(Shape::Retry),
            LoopShape::Foreach => {
                let over_range = self.inside(condition).windows(2).any(|pair| {
                    self.tokens[pair[0]].text == "." && self.tokens[pair[1]].text == "."
                });
                (over_range && sleeps && self.leaves_early(position)).then_some(Shape::Retry)
            }
            _ => None,
        }
    }

    /// Whether an endless loop ends with the data it reads: the body stores what a
    /// stream or queue hands out (`$n = $stream.Read($buffer, 0, 4096)`,
    /// `$line = $reader.ReadLine()`) and an `if` on that variable leaves the loop.
    fn ends_with_its_input(&self, position: usize) -> bool {
        let (open, close) = self.loops[position].body;
        let from = self.guard_parts.partition_point(|&index| index <= open);
        let to = self.guard_parts.partition_point(|&index| index < close);
        let parts = &self.guard_parts[from..to.max(from)];
        let mut read: HashSet<&str> = HashSet::new();
        for &index in parts {
            let token = &self.tokens[index];
            if token.kind != Kind::Variable
                || self
                    .tokens
                    .get(index + 1)
                    .is_none_or(|next| next.text != "=")
            {
                continue;
            }
            let mut cursor = index + 2;
            while let Some(value) = self.tokens.get(cursor) {
                if matches!(
                    value.kind,
                    Kind::Newline | Kind::Semicolon | Kind::Close('}')
                ) || !self.budget.spend(1)
                {
                    break;
                }
                let reads = self.tokens[cursor - 1].text == "."
                    && self.word(cursor).is_some_and(|word| {
                        matches!(
                            word,
                            "read"
                                | "readline"
                                | "readbyte"
                                | "readblock"
                                | "readchar"
                                | "dequeue"
                                | "pop"
                        )
                    });
                if reads {
                    read.insert(token.text.as_str());
                    break;
                }
                cursor += 1;
            }
        }
        // A walk: a variable stepped along a finite structure (`$node = $node.Parent`), or
        // looked up at an index the body steps (`$name = Get-Name $command $index`).
        let stepped: HashSet<&str> = parts
            .iter()
            .filter(|&&index| {
                let is_step = |token: Option<&Token>| {
                    token.is_some_and(|token| {
                        token.kind == Kind::Operator
                            && matches!(token.text.as_str(), "++" | "--" | "+=" | "-=")
                    })
                };
                self.kind(index) == Some(Kind::Variable)
                    && (is_step(self.tokens.get(index + 1))
                        || is_step(index.checked_sub(1).map(|before| &self.tokens[before])))
            })
            .map(|&index| self.tokens[index].text.as_str())
            .collect();
        if let Some(assignments) = self.assignments_in((open, close)) {
            for assignment in &assignments {
                let walks = !assignment.probes
                    && (assignment.member_of_itself
                        || assignment.reads.iter().any(|input| {
                            !assignment.targets.contains(input) && stepped.contains(input)
                        }));
                if walks {
                    read.extend(assignment.targets.iter().copied());
                }
            }
        }
        // `if (-not $members.MoveNext()) { break }` walks an enumerator to its end.
        let steps_enumerator = |inner: usize| {
            self.word(inner) == Some("movenext") && inner > 0 && self.tokens[inner - 1].text == "."
        };
        parts.iter().any(|&index| {
            if self.word(index) != Some("if") || self.in_nested_function(index, position) {
                return false;
            }
            self.if_clauses(index)
                .into_iter()
                .any(|(condition, block)| {
                    condition.is_some_and(|condition| {
                        self.inside(condition).iter().any(|&inner| {
                            (self.kind(inner) == Some(Kind::Variable)
                                && read.contains(self.tokens[inner].text.as_str()))
                                || steps_enumerator(inner)
                        })
                    }) && self
                        .block_exit(block, position)
                        .is_some_and(|exit| exit.leaves)
                })
        })
    }

    /// Whether the body of loop `position` sleeps (outside functions it defines).
    fn sleeps_in(&self, position: usize) -> bool {
        let (open, close) = self.loops[position].body;
        (open + 1..close.min(self.tokens.len())).any(|index| {
            let sleeps = match self.word(index) {
                Some("start-sleep" | "sleep") => self.at_command_position(index),
                Some(word) => {
                    word.starts_with("sleep") && index > 0 && self.tokens[index - 1].text == "::"
                }
                None => false,
            };
            sleeps
                && !self.in_nested_function(index, position)
                && !self.in_inner_wait(index, position)
        })
    }

    /// Whether token `index` lies in a `while` / `do` loop nested in loop `position`:
    /// that loop's sleep paces its own wait, reported on its own.
    fn in_inner_wait(&self, index: usize, position: usize) -> bool {
        let mut current = self.innermost_loop.get(index).copied().flatten();
        // Each step moves to an enclosing loop, so this ends within the loop count.
        while let Some(inner) = current.filter(|&inner| inner != position) {
            if matches!(
                self.loops[inner].shape,
                LoopShape::While | LoopShape::DoWhile | LoopShape::DoUntil
            ) {
                return true;
            }
            current = self.parent_loop[inner];
        }
        false
    }

    /// The first command or member between a bracket pair that asks the outside world.
    fn probe_within(&self, (open, close): (usize, usize)) -> Option<String> {
        (open + 1..close.min(self.tokens.len()))
            .find(|&index| self.is_probe(index))
            .map(|index| slice(self.chars, self.tokens[index].start, self.tokens[index].end))
    }

    fn is_probe(&self, index: usize) -> bool {
        let Some(word) = self.word(index) else {
            return false;
        };
        let member = index > 0 && self.tokens[index - 1].text == ".";
        if member {
            return matches!(
                word,
                "hasexited" | "connected" | "responding" | "waitforexit" | "waitone"
            );
        }
        PROBES.contains(&word)
            || word.starts_with("get-hns")
            || word.starts_with("test-")
            || (self.probing.contains(word) && self.at_command_position(index))
    }

    /// Whether the body of loop `position` stops what it waits for once that has run
    /// past a deadline: an `if` comparing the clock whose block runs `Stop-Job` or
    /// `Stop-Process` (`if (((Get-Date) - $job.PSBeginTime).TotalSeconds -ge $limit) { Stop-Job $job }`).
    fn stops_what_runs_too_long(&self, position: usize) -> bool {
        let (open, close) = self.loops[position].body;
        let end = close.min(self.tokens.len());
        if !self.budget.spend(end.saturating_sub(open)) {
            return false;
        }
        (open + 1..end).any(|index| {
            if self.word(index) != Some("if")
                || !self.at_command_position(index)
                || self.in_nested_function(index, position)
            {
                return false;
            }
            self.if_clauses(index)
                .into_iter()
                .any(|(condition, (block_open, block_close))| {
                    condition.is_some_and(|condition| {
                        self.is_guard_condition(condition, &HashSet::new())
                    }) && (block_open + 1..block_close.min(self.tokens.len())).any(|inner| {
                        matches!(self.word(inner), Some("stop-job" | "stop-process"))
                            && self.at_command_position(inner)
                    })
                })
        })
    }

    /// Whether loop `position` ends the function it is in, and every call of that
    /// function is followed, within a few statements, by a Pester `Should` on what the
    /// loop waited for (a statement that asks the same probe as the loop's condition):
    /// the caller then reports the give-up (`WaitForStatus …` / `(Get-Service x).Status | Should Be 'Running'`).
    fn callers_assert_what_it_waited_for(&self, position: usize) -> bool {
        let candidate = &self.loops[position];
        let Some(condition) = candidate.condition else {
            return false;
        };
        let asked: HashSet<&str> = self
            .inside(condition)
            .into_iter()
            .filter(|&index| self.is_probe(index))
            .filter_map(|index| self.word(index))
            .collect();
        if asked.is_empty() {
            return false;
        }
        let end = match candidate.shape {
            LoopShape::DoWhile | LoopShape::DoUntil => condition.1,
            _ => candidate.body.1,
        };
        let Some((name, (_, function_close))) = self
            .functions
            .iter()
            .filter(|(_, (open, close))| *open < candidate.keyword && end < *close)
            .min_by_key(|(_, (open, close))| close - open)
        else {
            return false;
        };
        if self.next_significant(end) != Some(*function_close) {
            return false;
        }
        let calls: Vec<usize> = (0..self.tokens.len())
            .filter(|&index| {
                self.word(index) == Some(name.as_str())
                    && self.at_command_position(index)
                    && self
                        .tokens
                        .get(index.wrapping_sub(1))
                        .is_none_or(|before| before.kind != Kind::Word || before.text != "function")
            })
            .collect();
        !calls.is_empty()
            && calls.iter().all(|&call| {
                let Some(next) = (call..self.tokens.len())
                    .find(|&index| {
                        matches!(self.tokens[index].kind, Kind::Newline | Kind::Semicolon)
                    })
                    .and_then(|line_end| self.next_significant(line_end))
                else {
                    return false;
                };
                self.asserts_soon_after_asking(next, &asked)
            })
    }

    /// Like [`Self::asserts_soon_after`], for a `Should` whose statement asks one of `asked`.
    fn asserts_soon_after_asking(&self, start: usize, asked: &HashSet<&str>) -> bool {
        let mut depth: usize = 0;
        let mut statements = 0;
        for index in start..self.tokens.len() {
            if !self.budget.spend(1) {
                return false;
            }
            match self.tokens[index].kind {
                Kind::Open(_) => depth += 1,
                Kind::Close(_) if depth == 0 => return false,
                Kind::Close(_) => depth -= 1,
                Kind::Newline | Kind::Semicolon if depth == 0 => {
                    statements += 1;
                    if statements > STATEMENTS_AFTER_LOOP {
                        return false;
                    }
                }
                _ => {
                    if self.word(index) == Some("should") && self.at_command_position(index) {
                        let statement = self.statement_start(index);
                        let asks = (statement..index)
                            .any(|part| self.word(part).is_some_and(|word| asked.contains(word)));
                        if asks {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    /// Whether every pass of loop `position` asks a person (`$answer = Read-Host …` at
    /// the body's own level) and an `if` or `switch` on that answer leaves the loop.
    fn prompts_each_pass(&self, position: usize) -> bool {
        let (open, close) = self.loops[position].body;
        let end = close.min(self.tokens.len());
        let answers: HashSet<&str> = (open + 1..end)
            .filter(|&index| {
                self.enclosing[index] == Some(open)
                    && self.kind(index) == Some(Kind::Variable)
                    && self
                        .tokens
                        .get(index + 1)
                        .is_some_and(|next| next.text == "=")
                    && self.word(index + 2) == Some("read-host")
            })
            .map(|index| self.tokens[index].text.as_str())
            .collect();
        if answers.is_empty() {
            return false;
        }
        (open + 1..end).any(|index| {
            if !matches!(self.word(index), Some("if" | "switch"))
                || !self.at_command_position(index)
            {
                return false;
            }
            let Some((test_open, test_close)) = self.bracket_after(index, '(') else {
                return false;
            };
            let tests_answer = self.inside((test_open, test_close)).iter().any(|&inner| {
                self.kind(inner) == Some(Kind::Variable)
                    && answers.contains(self.tokens[inner].text.as_str())
            });
            let Some(block) = self.bracket_after(test_close, '{') else {
                return false;
            };
            tests_answer
                && self
                    .span_exit(block, position)
                    .is_some_and(|exit| exit.leaves)
        })
    }

    /// When the condition tests how the last command ended (`$?`, `$LASTEXITCODE`),
    /// the command it waits for: the body's last one, or the variable itself.
    fn status_tested(&self, condition: (usize, usize), body: (usize, usize)) -> Option<String> {
        let status = self.inside(condition).into_iter().find(|&index| {
            self.kind(index) == Some(Kind::Variable)
                && matches!(self.tokens[index].text.as_str(), "?" | "lastexitcode")
        })?;
        let end = body.1.min(self.tokens.len());
        let last_token = (body.0 + 1..end).rev().find(|&index| {
            self.enclosing[index] == Some(body.0)
                && !matches!(self.tokens[index].kind, Kind::Newline | Kind::Semicolon)
        });
        let last_command = last_token.and_then(|last| {
            (self.statement_start(last)..=last)
                .find(|&index| self.word(index).is_some() && self.at_command_position(index))
        });
        let named = last_command.unwrap_or(status);
        Some(slice(
            self.chars,
            self.tokens[named].start,
            self.tokens[named].end,
        ))
    }

    /// Whether the body gives a variable the condition tests a new value
    /// computed without asking the outside world.
    fn condition_reassigned(&self, condition: (usize, usize), body: (usize, usize)) -> bool {
        let tested: HashSet<&str> = self
            .inside(condition)
            .into_iter()
            .filter(|&index| self.kind(index) == Some(Kind::Variable))
            .map(|index| self.tokens[index].text.as_str())
            .filter(|name| !matches!(*name, "true" | "false" | "null" | "_"))
            .collect();
        let from = self.guard_parts.partition_point(|&index| index <= body.0);
        let to = self.guard_parts.partition_point(|&index| index < body.1);
        self.guard_parts[from..to.max(from)].iter().any(|&index| {
            let token = &self.tokens[index];
            if token.kind != Kind::Variable
                || !tested.contains(token.text.as_str())
                || self
                    .tokens
                    .get(index + 1)
                    .is_none_or(|next| next.text != "=")
            {
                return false;
            }
            let mut cursor = index + 2;
            while let Some(value) = self.tokens.get(cursor) {
                if matches!(
                    value.kind,
                    Kind::Newline | Kind::Semicolon | Kind::Close('}')
                ) || !self.budget.spend(1)
                {
                    break;
                }
                if self.is_probe(cursor) {
                    return false;
                }
                cursor += 1;
            }
            true
        })
    }

    /// A probe whose result the body stores in a variable the condition tests.
    fn probe_assigned_for(
        &self,
        condition: (usize, usize),
        body: (usize, usize),
    ) -> Option<String> {
        let tested: HashSet<&str> = self
            .inside(condition)
            .into_iter()
            .filter(|&index| self.kind(index) == Some(Kind::Variable))
            .map(|index| self.tokens[index].text.as_str())
            .collect();
        if tested.is_empty() {
            return None;
        }
        let from = self.guard_parts.partition_point(|&index| index <= body.0);
        let to = self.guard_parts.partition_point(|&index| index < body.1);
        for &index in &self.guard_parts[from..to.max(from)] {
            let token = &self.tokens[index];
            if token.kind != Kind::Variable
                || !tested.contains(token.text.as_str())
                || self
                    .tokens
                    .get(index + 1)
                    .is_none_or(|next| next.text != "=")
            {
                continue;
            }
            let mut cursor = index + 2;
            while let Some(value) = self.tokens.get(cursor) {
                if matches!(
                    value.kind,
                    Kind::Newline | Kind::Semicolon | Kind::Close('}')
                ) {
                    break;
                }
                if !self.budget.spend(1) {
                    return None;
                }
                if self.is_probe(cursor) {
                    return Some(slice(self.chars, value.start, value.end));
                }
                cursor += 1;
            }
        }
        None
    }

    /// Whether each pass asks the outside world about something new, so the loop
    /// walks a finite space instead of waiting (only without a sleep): what the probe
    /// is handed is renewed every pass, from its own value (`$dir = Split-Path $dir`),
    /// from the previous answer (`$uri = $page.nextLink` after
    /// `$page = Invoke-RestMethod $uri`), or from a fresh name (`GetRandomFileName()`).
    fn asks_something_new(&self, condition: (usize, usize), body: (usize, usize)) -> bool {
        let Some(assignments) = self.assignments_in(body) else {
            return false;
        };
        let renewed = |input: &str, answer: Option<&str>| {
            assignments.iter().any(|assignment| {
                assignment.targets.contains(&input)
                    && (assignment.fresh
                        || assignment.reads.contains(&input)
                        || answer.is_some_and(|answer| {
                            answer != input && assignment.reads.contains(&answer)
                        }))
            })
        };
        let inside = self.inside(condition);
        // A probe in the condition itself: what its parentheses hand it.
        let direct = inside.iter().any(|&index| {
            self.is_probe(index)
                && self.enclosing[index].is_some_and(|open| {
                    self.inside((open, self.close_of(open)))
                        .into_iter()
                        .filter(|&input| self.kind(input) == Some(Kind::Variable))
                        .any(|input| renewed(self.tokens[input].text.as_str(), None))
                })
        });
        if direct {
            return true;
        }
        // A probe's answer stored in a variable the condition tests.
        let tested: HashSet<&str> = inside
            .iter()
            .filter(|&&index| self.kind(index) == Some(Kind::Variable))
            .map(|&index| self.tokens[index].text.as_str())
            .collect();
        assignments.iter().any(|assignment| {
            assignment.probes
                && assignment
                    .targets
                    .iter()
                    .any(|answer| tested.contains(answer))
                && (assignment.fresh
                    || assignment.reads.iter().any(|input| {
                        !assignment.targets.contains(input)
                            && assignment
                                .targets
                                .iter()
                                .any(|answer| renewed(input, Some(answer)))
                    }))
        })
    }

    /// Every assignment (`$a = …`, `$a, $b = …`) in a loop body, outside functions it
    /// defines; `None` when the budget is spent.
    fn assignments_in(&self, (open, close): (usize, usize)) -> Option<Vec<Assignment<'_>>> {
        let end = close.min(self.tokens.len());
        if !self.budget.spend(end.saturating_sub(open)) {
            return None;
        }
        let mut assignments = Vec::new();
        for equals in open + 1..end {
            let token = &self.tokens[equals];
            if token.kind != Kind::Operator || token.text != "=" {
                continue;
            }
            let start = self.statement_start(equals).max(open + 1);
            let targets: Vec<&str> = (start..equals)
                .filter(|&index| self.kind(index) == Some(Kind::Variable))
                .map(|index| self.tokens[index].text.as_str())
                .collect();
            if targets.is_empty() {
                continue;
            }
            let member_of_itself = self.tokens.get(equals + 1).is_some_and(|value| {
                value.kind == Kind::Variable && targets.contains(&value.text.as_str())
            }) && self
                .tokens
                .get(equals + 2)
                .is_some_and(|dot| dot.text == ".");
            let mut assignment = Assignment {
                targets,
                reads: Vec::new(),
                probes: false,
                fresh: false,
                member_of_itself,
            };
            for index in equals + 1..end {
                let value = &self.tokens[index];
                if matches!(value.kind, Kind::Newline | Kind::Semicolon)
                    && self.enclosing[index] == self.enclosing[equals]
                {
                    break;
                }
                if value.kind == Kind::Variable {
                    assignment.reads.push(value.text.as_str());
                }
                assignment.probes |= self.is_probe(index);
                assignment.fresh |= self.word(index).is_some_and(|word| FRESH_NAMES.contains(&word))
                    // `"$dir\$([IO.Path]::GetRandomFileName())"`: a subexpression is code.
                    || (value.kind == Kind::Text
                        && self
                            .chars
                            .get(value.start)
                            .is_some_and(|quote| DOUBLE_QUOTES.contains(quote))
                        && value.text.split("$(").skip(1).any(|code| {
                            FRESH_NAMES.iter().any(|name| code.contains(name))
                        }));
            }
            assignments.push(assignment);
        }
        Some(assignments)
    }

    /// Whether some statement of loop `position`'s body leaves it (`break`, `return`, `exit`, `throw`).
    fn leaves_early(&self, position: usize) -> bool {
        let body = self.loops[position].body;
        self.block_exit(body, position)
            .is_some_and(|exit| exit.leaves)
    }

    /// Whether the code right after loop `position` says why when the give-up path
    /// reaches it: an `if` right after it that speaks, or (when no other way out
    /// lands there) a message right after it.
    fn says_after_loop(&self, position: usize, guard: &BodyGuard) -> bool {
        let candidate = &self.loops[position];
        let end = match candidate.shape {
            LoopShape::DoWhile | LoopShape::DoUntil => candidate
                .condition
                .map_or(candidate.body.1, |(_, close)| close),
            _ => candidate.body.1,
        };
        let mut next = self.next_significant(end);
        while let Some(index) = next.filter(|&index| self.kind(index) == Some(Kind::Semicolon)) {
            next = self.next_significant(index);
        }
        let Some(mut next) = next else {
            return false;
        };
        // A loop that ends its `try` block lands after the whole `try … catch … finally`.
        for _ in 0..MAX_TRY_HOPS {
            let Some(open) = self
                .kind(next)
                .filter(|kind| *kind == Kind::Close('}'))
                .and(self.pairs[next])
            else {
                break;
            };
            if self.keyword_before(open).as_deref() != Some("try") {
                break;
            }
            let mut cursor = self.next_significant(next);
            while let Some(clause) =
                cursor.filter(|&clause| matches!(self.word(clause), Some("catch" | "finally")))
            {
                let Some(block) = (clause + 1..self.tokens.len())
                    .take_while(|&index| self.kind(index) != Some(Kind::Semicolon))
                    .find(|&index| self.kind(index) == Some(Kind::Open('{')))
                else {
                    return false;
                };
                let Some(block_close) = self.pairs[block] else {
                    return false;
                };
                cursor = self.next_significant(block_close);
            }
            match cursor {
                Some(after) => next = after,
                None => return false,
            }
        }
        // A Pester assertion on what the loop waited for (`$state | Should -Be 'Running'`),
        // also in the block of a statement right after it (`It { … }`), fails with a
        // message on the give-up path only.
        if self.word(next) != Some("if") && self.asserts_soon_after(next) {
            return true;
        }
        // Straight-line statements after the loop, up to the first that branches or leaves;
        // an `if` among them that speaks retests what the loop waited for.
        let mut statement = next;
        for _ in 0..STATEMENTS_AFTER_LOOP {
            if matches!(self.kind(statement), Some(Kind::Close(_)) | None) {
                return false;
            }
            if self.word(statement) == Some("if") {
                return self.if_clauses(statement).iter().any(|clause| {
                    self.block_exit(clause.1, position)
                        .is_some_and(|exit| exit.speaks)
                });
            }
            let line_end = (statement..self.tokens.len())
                .find(|&index| matches!(self.tokens[index].kind, Kind::Newline | Kind::Semicolon))
                .unwrap_or(self.tokens.len());
            let Some(exit) = self.span_exit((statement.saturating_sub(1), line_end), position)
            else {
                return false;
            };
            let branches = matches!(
                self.word(statement),
                Some("if" | "while" | "do" | "for" | "foreach" | "switch" | "function" | "try")
            );
            // A message there is heard on every way out; it explains the give-up only
            // when no success `break` lands there too.
            if exit.speaks && !guard.other_break {
                return true;
            }
            if exit.leaves || branches {
                return false;
            }
            match self.next_significant(line_end.saturating_sub(1)) {
                Some(following) if following > statement => statement = following,
                _ => return false,
            }
            while self.kind(statement) == Some(Kind::Semicolon) {
                match self.next_significant(statement) {
                    Some(following) => statement = following,
                    None => return false,
                }
            }
        }
        false
    }

    /// Whether a Pester `Should` runs among the few statements from `start`, blocks
    /// they open included, before the enclosing block closes.
    fn asserts_soon_after(&self, start: usize) -> bool {
        let mut depth: usize = 0;
        let mut statements = 0;
        for index in start..self.tokens.len() {
            if !self.budget.spend(1) {
                return false;
            }
            match self.tokens[index].kind {
                Kind::Open(_) => depth += 1,
                Kind::Close(_) if depth == 0 => return false,
                Kind::Close(_) => depth -= 1,
                Kind::Newline | Kind::Semicolon if depth == 0 => {
                    statements += 1;
                    if statements > STATEMENTS_AFTER_LOOP {
                        return false;
                    }
                }
                _ => {
                    if self.word(index) == Some("should") && self.at_command_position(index) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// The loop's first words as written, for messages.
    fn header(&self, candidate: &Loop) -> String {
        let start = self.tokens[candidate.keyword].start;
        let end = self.tokens[candidate.header_end.min(self.tokens.len() - 1)].end;
        match candidate.shape {
            LoopShape::DoWhile | LoopShape::DoUntil => {
                let tail = self
                    .next_significant(candidate.body.1)
                    .map_or(end, |tail| self.tokens[tail].start);
                format!("do {{ … }} {}", slice(self.chars, tail, end))
            }
            LoopShape::Pipeline => {
                let source = self.statement_start(candidate.keyword);
                format!(
                    "{} {{ … }}",
                    slice(self.chars, self.tokens[source].start, end)
                )
            }
            _ => slice(self.chars, start, end),
        }
    }

    /// `Some(value)` when the tokens are a constant truth value (`$true`, `1`, `-not $false`).
    fn constant(&self, indices: &[usize]) -> Option<bool> {
        let mut indices = indices;
        let mut negated = false;
        // Each round strips a token or two, so it ends within the condition's length.
        loop {
            match indices {
                [first, .., last]
                    if self.kind(*first) == Some(Kind::Open('('))
                        && self.pairs[*first] == Some(*last) =>
                {
                    indices = &indices[1..indices.len() - 1];
                }
                [negation, rest @ ..]
                    if matches!(self.tokens[*negation].text.as_str(), "-not" | "!") =>
                {
                    negated = !negated;
                    indices = rest;
                }
                _ => break,
            }
        }
        // `1 -eq 1`: two equal numbers compared.
        if let [left, operator, right] = indices {
            let number = |index: usize| {
                (self.kind(index) == Some(Kind::Number))
                    .then(|| self.tokens[index].text.parse::<i64>().ok())
                    .flatten()
            };
            if let (Some(left), Some(right)) = (number(*left), number(*right)) {
                let value = match self.tokens[*operator].text.as_str() {
                    "-eq" | "-ieq" | "-ceq" => left == right,
                    "-ne" | "-ine" | "-cne" => left != right,
                    _ => return None,
                };
                return Some(value != negated);
            }
        }
        let [single] = indices else {
            return None;
        };
        let token = &self.tokens[*single];
        let value = match (token.kind, token.text.as_str()) {
            (Kind::Variable, "true") => Some(true),
            (Kind::Variable, "false" | "null") => Some(false),
            (Kind::Number, number) => number.parse::<i64>().ok().map(|value| value != 0),
            _ => None,
        };
        value.map(|value| value != negated)
    }

    /// Whether nothing in the loop can change its condition: the condition reads
    /// only variables and their properties (no call, no command, no automatic
    /// variable), the body never names one of those variables and runs no
    /// command that could set them from outside. `Some(false)` when the
    /// condition reads plain variables only (`while ($running) { $pipe.Flush() }`):
    /// the loop goes round for ever once it goes round at all. `Some(true)` when
    /// it reads a property (`while ($job.State -eq 'Running')`): only the object
    /// itself can change it, so the loop waits for it. `None` otherwise.
    fn condition_never_changes(
        &self,
        condition: (usize, usize),
        body: (usize, usize),
    ) -> Option<bool> {
        const AUTOMATIC: [&str; 12] = [
            "?",
            "^",
            "$",
            "_",
            "psitem",
            "lastexitcode",
            "error",
            "matches",
            "input",
            "args",
            "this",
            "host",
        ];
        let inner = self.inside(condition);
        let mut names: HashSet<&str> = HashSet::new();
        for &index in &inner {
            let token = &self.tokens[index];
            match token.kind {
                Kind::Variable => {
                    if AUTOMATIC.contains(&token.text.as_str()) || token.text.contains(':') {
                        return None;
                    }
                    names.insert(token.text.as_str());
                }
                Kind::Word => {
                    let member = index > 0 && self.tokens[index - 1].text == ".";
                    let called = self.tokens.get(index + 1).is_some_and(|next| {
                        next.kind == Kind::Open('(') && next.start == token.end
                    });
                    let operator = token.text.starts_with('-');
                    if called || !(member || operator) {
                        return None;
                    }
                }
                Kind::Number | Kind::Text | Kind::Open('(') | Kind::Close(')') => {}
                Kind::Operator if matches!(token.text.as_str(), "." | "!") => {}
                _ => return None,
            }
        }
        if names.is_empty() {
            return None;
        }
        let reads_property = inner.iter().any(|&index| self.tokens[index].text == ".");
        let (open, close) = body;
        let end = close.min(self.tokens.len());
        if !self.budget.spend(end.saturating_sub(open)) {
            return None;
        }
        let unchanged = (open + 1..end).all(|index| {
            let token = &self.tokens[index];
            if token.kind == Kind::Variable {
                return !names.contains(token.text.as_str());
            }
            if !self.at_command_position(index) {
                return true;
            }
            self.word(index).is_none_or(|word| {
                matches!(
                    word,
                    "if" | "elseif"
                        | "else"
                        | "try"
                        | "catch"
                        | "finally"
                        | "start-sleep"
                        | "sleep"
                ) || word.starts_with("write-")
                    || word.starts_with("out-")
            })
        });
        unchanged.then_some(reads_property)
    }

    /// Whether `for (init; condition; step)` has an empty or always-true condition.
    fn endless_for(&self, (open, close): (usize, usize)) -> bool {
        let mut parts: Vec<Vec<usize>> = vec![Vec::new()];
        let mut cursor = open + 1;
        while cursor < close.min(self.tokens.len()) {
            match self.tokens[cursor].kind {
                Kind::Semicolon => parts.push(Vec::new()),
                Kind::Newline => {}
                Kind::Open(_) => {
                    let inner_close = self.close_of(cursor).min(close);
                    if let Some(part) = parts.last_mut() {
                        part.extend(cursor..=inner_close);
                    }
                    cursor = inner_close;
                }
                _ => {
                    if let Some(part) = parts.last_mut() {
                        part.push(cursor);
                    }
                }
            }
            cursor += 1;
        }
        parts.len() >= 3 && (parts[1].is_empty() || self.constant(&parts[1]) == Some(true))
    }

    /// `(Get-Content index, -Wait index)` of an endless read between two tokens.
    fn endless_read_within(&self, from: usize, to: usize) -> Option<(usize, usize)> {
        let mut index = from;
        while index < to.min(self.tokens.len()) {
            let after_in = index > 0 && self.word(index - 1) == Some("in");
            if matches!(
                self.word(index),
                Some("get-content" | "gc" | "cat" | "type")
            ) && (self.at_command_position(index) || after_in)
            {
                let mut cursor = index + 1;
                while cursor < to.min(self.tokens.len()) {
                    let token = &self.tokens[cursor];
                    if matches!(
                        token.kind,
                        Kind::Newline | Kind::Semicolon | Kind::Pipe | Kind::Close(_)
                    ) {
                        break;
                    }
                    if token.kind == Kind::Word && is_wait_switch(&token.text) {
                        return Some((index, cursor));
                    }
                    cursor += 1;
                }
            }
            index += 1;
        }
        None
    }

    /// First token of the statement holding `index` (walking back over pipes and brackets).
    fn statement_start(&self, index: usize) -> usize {
        let mut cursor = index;
        while cursor > 0 {
            let previous = &self.tokens[cursor - 1];
            match previous.kind {
                Kind::Newline | Kind::Semicolon | Kind::Open(_) | Kind::Label => break,
                Kind::Close(_) => match self.pairs[cursor - 1] {
                    Some(open) if open < cursor - 1 => cursor = open,
                    _ => break,
                },
                _ => cursor -= 1,
            }
        }
        cursor
    }

    /// Whether the pipeline feeding the script block at `keyword` reads forever.
    fn pipeline_source_is_endless(&self, keyword: usize) -> bool {
        let start = self.statement_start(keyword);
        self.endless_read_within(start, keyword).is_some() && !self.pipeline_takes_first(start)
    }

    /// Whether the pipeline starting at `start` stops itself with `Select-Object -First`.
    fn pipeline_takes_first(&self, start: usize) -> bool {
        let mut cursor = start;
        let mut selecting = false;
        while let Some(token) = self.tokens.get(cursor) {
            match token.kind {
                Kind::Newline | Kind::Semicolon | Kind::Close(_) => return false,
                Kind::Pipe => selecting = false,
                Kind::Open(_) => {
                    cursor = self.close_of(cursor);
                }
                Kind::Word if matches!(token.text.as_str(), "select-object" | "select") => {
                    selecting = true;
                }
                Kind::Word if selecting && token.text.starts_with("-f") => return true,
                _ => {}
            }
            cursor += 1;
        }
        false
    }

    /// `Get-Content -Wait` with no loop reading it, or read by something that is not a loop.
    fn check_endless_reads(&self, findings: &mut Vec<LoopFinding>) {
        // Where loops read: inside a `foreach` condition, or before a pipeline loop of the same statement.
        let mut in_foreach = vec![0_i64; self.tokens.len() + 1];
        let mut last_pipeline_loop: HashMap<usize, usize> = HashMap::new();
        for candidate in &self.loops {
            match (candidate.shape, candidate.condition) {
                (LoopShape::Foreach, Some((open, close))) => {
                    in_foreach[open + 1] += 1;
                    in_foreach[close.min(self.tokens.len())] -= 1;
                }
                (LoopShape::Pipeline, _) => {
                    let start = self.statement_start(candidate.keyword);
                    let last = last_pipeline_loop.entry(start).or_insert(candidate.keyword);
                    *last = (*last).max(candidate.keyword);
                }
                _ => {}
            }
        }
        let mut depth = 0;
        let in_foreach: Vec<bool> = in_foreach
            .iter()
            .map(|step| {
                depth += step;
                depth > 0
            })
            .collect();
        let mut index = 0;
        while let Some((read, wait)) = self.endless_read_within(index, self.tokens.len()) {
            index = wait + 1;
            let statement = self.statement_start(read);
            let read_by_loop = in_foreach[read]
                || last_pipeline_loop
                    .get(&statement)
                    .is_some_and(|&keyword| keyword > read);
            if read_by_loop || self.pipeline_takes_first(statement) {
                continue;
            }
            let token = &self.tokens[read];
            let code = slice(self.chars, token.start, self.tokens[wait].end);
            findings.push(finding(
                Rule::H11,
                FindingKind::Unbounded,
                token.line,
                token.column,
                format!(
                    "`{}` waits for new lines forever: read it in a loop with a deadline (`if ((Get-Date) -gt $deadline) {{ Write-Error 'timed out'; break }}`) or stop after N lines with `Select-Object -First N`",
                    snippet(&code)
                ),
            ));
        }
    }

    fn check_bare_sleeps(&self, findings: &mut Vec<LoopFinding>) {
        for (index, token) in self.tokens.iter().enumerate() {
            if token.kind != Kind::Word
                || !matches!(token.text.as_str(), "start-sleep" | "sleep")
                || !self.at_command_position(index)
                || self
                    .loops_around(index, None)
                    .iter()
                    .any(|&around| self.loops[around].shape != LoopShape::Switch)
            {
                continue;
            }
            let end = (index..self.tokens.len())
                .take_while(|&cursor| {
                    !matches!(
                        self.tokens[cursor].kind,
                        Kind::Newline | Kind::Semicolon | Kind::Pipe | Kind::Close(_)
                    )
                })
                .last()
                .unwrap_or(index);
            let code = slice(self.chars, token.start, self.tokens[end].end);
            findings.push(finding(
                Rule::H23,
                FindingKind::BareSleep,
                token.line,
                token.column,
                bare_sleep_message(&code),
            ));
        }
    }
}

/// The files a script dot-sources by a literal path, relative to its folder with
/// `/` separators: `. "$PSScriptRoot\lib.ps1"`, `. ./lib.ps1`,
/// `. (Join-Path $PSScriptRoot 'lib.ps1')`. Paths built from other variables are left out.
fn dot_sourced_paths(chars: &[char], tokens: &[Token]) -> Vec<String> {
    let mut paths = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let at_command = index == 0
            || matches!(
                tokens[index - 1].kind,
                Kind::Newline | Kind::Semicolon | Kind::Open('{') | Kind::Close('}')
            );
        let spaced = chars
            .get(token.end)
            .is_some_and(|next| *next == ' ' || *next == '\t');
        if token.kind != Kind::Operator || token.text != "." || !at_command || !spaced {
            continue;
        }
        let line_end = tokens[index..]
            .iter()
            .find(|next| matches!(next.kind, Kind::Newline | Kind::Semicolon))
            .map_or(chars.len(), |next| next.start);
        let written = slice(chars, token.end, line_end);
        if let Some(path) = literal_script_path(written.trim()) {
            paths.push(path);
        }
    }
    paths
}

/// The path a dot-source statement names, relative to the script's folder.
fn literal_script_path(written: &str) -> Option<String> {
    let unquote = |text: &str| text.trim().trim_matches(['"', '\'']).to_string();
    let path = match written
        .strip_prefix('(')
        .and_then(|inner| inner.strip_suffix(')'))
    {
        Some(inner) => {
            let mut words = inner.split_whitespace();
            if !words.next()?.eq_ignore_ascii_case("join-path") {
                return None;
            }
            let parts: Vec<String> = words
                .filter(|word| !word.starts_with('-'))
                .map(unquote)
                .collect();
            let (base, rest) = parts.split_first()?;
            if !is_script_root(base) || rest.is_empty() {
                return None;
            }
            rest.join("/")
        }
        None => {
            let path = unquote(written);
            let path = path.replace('\\', "/");
            let lower = path.to_lowercase();
            let root_end = ["$psscriptroot", "${psscriptroot}"]
                .iter()
                .find(|root| lower.starts_with(*root))
                .map(|root| root.len());
            match root_end {
                Some(end) => path[end..].trim_start_matches('/').to_string(),
                None => path.strip_prefix("./").unwrap_or(&path).to_string(),
            }
        }
    };
    let path = path.replace('\\', "/");
    let literal = !path.is_empty()
        && !path.contains(['$', '(', ')', '`', ' '])
        && path.to_lowercase().ends_with(".ps1");
    literal.then_some(path)
}

fn is_script_root(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "$psscriptroot" | "${psscriptroot}"
    )
}

/// `New-InvalidOperationException`, `New-ObjectNotFoundException`, …: the shared
/// helpers of DSC modules build an error record from what they are handed and throw it.
fn is_exception_helper(word: &str) -> bool {
    word.len() > "new-exception".len() && word.starts_with("new-") && word.ends_with("exception")
}

/// `-Wait` and its unambiguous abbreviations, with or without `:$true`.
fn is_wait_switch(text: &str) -> bool {
    let name = text.split(':').next().unwrap_or(text);
    matches!(name, "-w" | "-wa" | "-wai" | "-wait")
}

/// How many enclosing `try` blocks a give-up path is followed out of.
const MAX_TRY_HOPS: usize = 4;
/// How many straight-line statements after a loop may hold its give-up message.
const STATEMENTS_AFTER_LOOP: usize = 4;

/// Calls that make up a new name each time they run.
const FRESH_NAMES: &[&str] = &[
    "getrandomfilename",
    "gettempfilename",
    "newguid",
    "new-guid",
    "get-random",
];

/// Commands whose answer comes from the outside world: files, services,
/// processes, jobs, the network.
const PROBES: &[&str] = &[
    "test-path",
    "get-service",
    "get-process",
    "test-netconnection",
    "test-connection",
    "get-job",
    "receive-job",
    "invoke-webrequest",
    "invoke-restmethod",
    "iwr",
    "irm",
    "curl",
    "wget",
    "curl.exe",
    "get-wmiobject",
    "get-ciminstance",
    "get-item",
    "get-itemproperty",
    "resolve-dnsname",
    "get-vm",
    "get-netadapter",
    "get-scheduledtask",
    "get-website",
    "get-winevent",
    "test-wsman",
    "get-nettcpconnection",
    "get-clusterresource",
    "get-volume",
    "get-disk",
    "docker",
    "kubectl",
    "nslookup",
    "ping",
];

/// Why a loop might not end.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `while ($true)`, `for (;;)`, an endless read: nothing in the header ever ends it.
    Endless,
    /// A loop whose condition waits on the outside world; names what it waits for.
    Wait(String),
    /// A counted `for` (or `foreach` over a range) that sleeps between tries and leaves on success.
    Retry,
}

/// What a block of code does to the loop around it.
#[derive(Debug, Clone, Copy, Default)]
struct Exit {
    leaves: bool,
    speaks: bool,
    /// Leaves by something other than `break` (`exit`, `return`, `throw`).
    ends: bool,
}

impl Exit {
    fn guard(self) -> Guard {
        Guard::of(self.leaves, self.speaks)
    }
}

/// One assignment in a loop body.
struct Assignment<'a> {
    /// The variables assigned.
    targets: Vec<&'a str>,
    /// The variables its value reads.
    reads: Vec<&'a str>,
    /// Its value asks the outside world.
    probes: bool,
    /// Its value is a fresh name (`GetRandomFileName()`, `New-Guid`).
    fresh: bool,
    /// Its value is a member of what it assigns (`$node = $node.Parent`).
    member_of_itself: bool,
}

/// What a loop body's guards give.
struct BodyGuard {
    guard: Guard,
    /// Every guard that leaves does so with `break`, as a countdown's normal end does.
    breaks_only: bool,
    /// The loop has a way out that is not a guard.
    other_exit: bool,
    /// One of those ways out is a `break`, which lands right after the loop.
    other_break: bool,
    /// Counters advanced on every pass.
    counters: HashSet<String>,
    /// Guard clause blocks that leave the loop.
    blocks: Vec<(usize, usize)>,
    /// Some clause of a guard `if` says something, whether or not it leaves.
    guard_speaks: bool,
}

#[cfg(test)]
mod tests;
