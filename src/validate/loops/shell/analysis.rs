//! Loop-by-loop reasoning over a parsed script.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};

use super::syntax::{
    AndOr, Command, Connector, List, Loop, LoopKind, Pipeline, Redirect, Simple, Word,
};
use super::words::{assignment, basename, identifiers, literal, unquote};
use crate::validate::diagnostic::{FindingKind, Rule};

/// What surrounds the code being analysed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Context {
    /// Runs under `timeout N …`, so every loop in it has a deadline.
    pub under_deadline: bool,
    /// Inside a loop's condition or body, so a `sleep` there is a poll, not a guess.
    pub in_loop: bool,
}

/// A finding at a byte offset of the analysed text.
#[derive(Debug)]
pub(super) struct LocalFinding {
    pub offset: usize,
    pub rule: Rule,
    pub kind: FindingKind,
    pub message: String,
}

/// Code a script runs from a string (`sh -c '…'`), to be scanned in turn.
#[derive(Debug)]
pub(super) struct EmbeddedScript {
    /// The script, quotes removed.
    pub text: String,
    /// For each byte of `text`, its offset in the analysed text.
    pub origins: Vec<usize>,
    pub context: Context,
}

/// What a guard function does when its test fires.
#[derive(Clone, Copy)]
struct FunctionGuard {
    /// It prints why.
    announced: bool,
    /// It ends the script (`exit`, `die`), not just itself.
    exits: bool,
}

/// A function's index, the loop counters it was judged with, and the verdict.
type FunctionAnswer = ((usize, String), Option<FunctionGuard>);

/// What a pipeline feeds into a loop's standard input.
#[derive(Default)]
struct Feed {
    /// The loop follows a `|`.
    piped: bool,
    /// An endless source upstream (`tail -f`), by name.
    stream: Option<String>,
}

/// Why a loop cannot end by itself.
enum Endless {
    /// Its condition is constant: `while true`, `until false`, `for ((;;))`.
    Condition,
    /// It reads a stream that never closes, named here (`tail -f`).
    Stream(String),
}

/// A jump out of the normal flow of a loop body.
#[derive(Clone, Copy)]
enum Jump {
    /// `break` reaching the loop, `exit`, `return`, or a `die`-style helper.
    Leave,
    /// `continue` reaching the loop.
    Continue,
}

/// Whether a loop has something that stops it.
#[derive(Default)]
struct Guards {
    /// A guarded exit was found.
    found: bool,
    /// At least one guarded exit says why it leaves.
    announced: bool,
}

impl Guards {
    fn record(&mut self, announced: bool) {
        self.found = true;
        self.announced |= announced;
    }
}

/// Walks one parsed text and collects findings and embedded scripts.
pub(super) struct Analyzer<'t> {
    text: &'t str,
    program: &'t List,
    /// Variables that hold a time: assigned from `$SECONDS`, `date +%s` or
    /// another such variable. Found on first need, as most files never ask.
    time_variables: OnceCell<Vec<&'t str>>,
    /// Every function definition, by name, in order.
    functions: OnceCell<Vec<(&'t str, &'t Command)>>,
    /// Set while a function body is examined, so calls made from it (and
    /// recursion) are not followed.
    examining_function: Cell<bool>,
    /// Set while looking only for exits that end the script (`exit`, `die`).
    exits_only: Cell<bool>,
    /// What each function was found to do, by its index and the loop counters asked with.
    function_answers: RefCell<Vec<FunctionAnswer>>,
    pub findings: Vec<LocalFinding>,
    pub embedded: Vec<EmbeddedScript>,
}

const MESSAGE_FIX: &str = "add a deadline (e.g. `(( SECONDS > deadline ))`) or an iteration cap \
    that breaks out, with a message when it fires,";

impl<'t> Analyzer<'t> {
    pub(super) fn new(text: &'t str, program: &'t List) -> Self {
        Analyzer {
            text,
            program,
            time_variables: OnceCell::new(),
            functions: OnceCell::new(),
            examining_function: Cell::new(false),
            exits_only: Cell::new(false),
            function_answers: RefCell::new(Vec::new()),
            findings: Vec::new(),
            embedded: Vec::new(),
        }
    }

    fn time_variables(&self) -> &[&'t str] {
        self.time_variables.get_or_init(|| {
            let mut assignments = Vec::new();
            self.collect_assignments(self.program, &mut assignments);
            let mut variables = Vec::new();
            // A variable derived from a time variable is a time too; rounds
            // cover `start=$(date +%s)`, `deadline=$((start + 60))`.
            for _ in 0..3 {
                let before = variables.len();
                for &(name, value) in &assignments {
                    if !variables.contains(&name) && mentions_time(value, &variables) {
                        variables.push(name);
                    }
                }
                if variables.len() == before {
                    break;
                }
            }
            variables
        })
    }

    fn raw(&self, word: &Word) -> &'t str {
        self.text.get(word.start..word.end).unwrap_or("")
    }

    fn span(&self, start: usize, end: usize) -> &'t str {
        self.text.get(start..end).unwrap_or("")
    }

    /// The command-name index of a simple command: the first word that is not an assignment.
    fn command_index(&self, simple: &Simple) -> Option<usize> {
        simple.command
    }

    fn command_name(&self, simple: &Simple) -> Option<Cow<'t, str>> {
        if let Some((start, end)) = simple.name {
            return Some(Cow::Borrowed(self.span(start, end)));
        }
        let index = self.command_index(simple)?;
        let name = literal(self.raw(&simple.words[index]));
        Some(match name {
            Cow::Borrowed(name) => Cow::Borrowed(basename(name)),
            Cow::Owned(name) => Cow::Owned(basename(&name).to_owned()),
        })
    }

    fn arguments<'s>(&self, simple: &'s Simple) -> &'s [Word] {
        match self.command_index(simple) {
            Some(index) => &simple.words[index + 1..],
            None => &[],
        }
    }

    // ---- walking -------------------------------------------------------

    pub(super) fn walk_list(&mut self, list: &[AndOr], context: Context) {
        for (position, and_or) in list.iter().enumerate() {
            for pipeline in &and_or.pipelines {
                self.walk_pipeline(pipeline, context, &list[position + 1..]);
            }
        }
    }

    /// `after`: what runs next once a loop in this pipeline ends.
    fn walk_pipeline(&mut self, pipeline: &Pipeline, context: Context, after: &[AndOr]) {
        for (index, command) in pipeline.commands.iter().enumerate() {
            match command {
                Command::Loop(lp) => {
                    let feed = Feed {
                        piped: index > 0,
                        stream: self.endless_stream(&pipeline.commands[..index]),
                    };
                    self.walk_loop(lp, context, feed, after);
                }
                _ => self.walk_command(command, context),
            }
        }
    }

    fn walk_command(&mut self, command: &Command, context: Context) {
        match command {
            Command::Simple(simple) => self.walk_simple(simple, context),
            Command::Loop(lp) => self.walk_loop(lp, context, Feed::default(), &[]),
            Command::If(_) | Command::Case(_) | Command::Group(_) => {
                for list in command.branch_lists() {
                    self.walk_list(list, context);
                }
            }
            Command::Function(function) => self.walk_command(&function.body, context),
            Command::Arithmetic(..) => {}
        }
    }

    fn walk_words(&mut self, words: &[Word], context: Context) {
        for word in words {
            for substitution in &word.substitutions {
                self.walk_list(substitution, context);
            }
        }
    }

    fn walk_redirects(&mut self, redirects: &[Redirect], context: Context) {
        for redirect in redirects {
            for substitution in &redirect.target.substitutions {
                self.walk_list(substitution, context);
            }
        }
    }

    fn walk_simple(&mut self, simple: &Simple, context: Context) {
        self.walk_words(&simple.words, context);
        self.walk_redirects(&simple.redirects, context);
        let Some(name) = self.command_name(simple) else {
            return;
        };
        if name == "sleep" && !context.in_loop {
            let arguments = self.arguments(simple);
            if !arguments.is_empty() {
                let shown: Vec<Cow<str>> = arguments
                    .iter()
                    .map(|word| literal(self.raw(word)))
                    .collect();
                let index = self.command_index(simple).unwrap_or(0);
                self.findings.push(LocalFinding {
                    offset: simple.words[index].start,
                    rule: Rule::H23,
                    kind: FindingKind::BareSleep,
                    message: format!(
                        "`sleep {}` outside any loop: wait for the condition you need, with a deadline, \
                         instead of a fixed sleep",
                        shorten(&shown.join(" "), 40)
                    ),
                });
            }
        }
        if !is_message_command(&name) {
            self.find_embedded_scripts(simple, &name, context);
        }
    }

    /// `sh -c '…'`, `bash -lc "…"`, `eval '…'`: the string is code.
    fn find_embedded_scripts(&mut self, simple: &Simple, name: &str, context: Context) {
        let words = &simple.words;
        let start = self.command_index(simple).unwrap_or(words.len());
        if name == "eval" && words.len() == start + 2 {
            self.embed(&words[start + 1], context);
            return;
        }
        for index in start..words.len() {
            let raw = self.raw(&words[index]);
            // Every shell name ends in `h`; skip the rest before removing quotes.
            if !raw.ends_with(['h', '"', '\'']) {
                continue;
            }
            let word = literal(raw);
            if !matches!(
                basename(&word),
                "sh" | "bash" | "dash" | "ksh" | "zsh" | "ash" | "mksh"
            ) {
                continue;
            }
            let mut next = index + 1;
            let mut has_command_option = false;
            while next < words.len() {
                let option = literal(self.raw(&words[next]));
                if !(option.starts_with('-') || option.starts_with('+')) || option.len() < 2 {
                    break;
                }
                next += 1;
                if option == "--" {
                    break;
                }
                if option.starts_with("--") {
                    if option == "--rcfile" || option == "--init-file" {
                        next += 1;
                    }
                } else if matches!(&*option, "-o" | "+o" | "-O" | "+O") {
                    next += 1;
                } else if option.contains('c') {
                    has_command_option = true;
                    break;
                }
            }
            if has_command_option && next < words.len() {
                let under_deadline = context.under_deadline
                    || words[start..index]
                        .iter()
                        .any(|word| basename(&literal(self.raw(word))) == "timeout");
                let inner = Context {
                    under_deadline,
                    ..context
                };
                self.embed(&words[next], inner);
                return;
            }
        }
    }

    fn embed(&mut self, word: &Word, context: Context) {
        let origins: Vec<usize> = (word.start..word.end).collect();
        let (text, origins) = unquote(self.raw(word), Some(&origins));
        if text.trim().is_empty() {
            return;
        }
        self.embedded.push(EmbeddedScript {
            text,
            origins,
            context,
        });
    }

    fn walk_loop(&mut self, lp: &Loop, context: Context, feed: Feed, after: &[AndOr]) {
        if !context.under_deadline {
            self.check_loop(lp, feed, after);
        }
        let inner = Context {
            in_loop: true,
            ..context
        };
        self.walk_words(&lp.words, inner);
        self.walk_list(&lp.condition, inner);
        self.walk_list(&lp.body, inner);
        self.walk_redirects(&lp.redirects, context);
    }

    // ---- one loop ------------------------------------------------------

    fn check_loop(&mut self, lp: &Loop, feed: Feed, after: &[AndOr]) {
        let Some(endless) = self.endless(lp, feed) else {
            return;
        };
        if self.runs_at_most_once(&lp.body) || self.consumes_arguments(&lp.body) {
            return;
        }
        let header = self.header(lp);
        let mut guards = Guards::default();
        let incremented = self.incremented(lp);
        if matches!(endless, Endless::Stream(_))
            && self.list_has_guard_test(&lp.condition, &incremented)
        {
            // `while read -r line && (( SECONDS < deadline ))`: the loop ends by its
            // condition, and what follows the loop is out of sight.
            return;
        }
        self.search_guards(&lp.body, 0, &incremented, &mut guards);
        if guards.found && !guards.announced && self.explains_after(after, &incremented) {
            // `… && break; done; if (( SECONDS > deadline )); then echo late >&2; …`
            guards.announced = true;
        }
        let message = match (&endless, guards.found, guards.announced) {
            (_, true, true) => return,
            (_, true, false) => (
                FindingKind::SilentFallback,
                format!(
                    "`{header}` loop stops on its deadline or cap without saying so: print why before \
                     leaving (e.g. `echo \"timed out after ${{SECONDS}}s\" >&2`)"
                ),
            ),
            (Endless::Condition, false, _) => (
                FindingKind::Unbounded,
                format!("`{header}` loop never ends by itself: {MESSAGE_FIX} or run it under `timeout`"),
            ),
            (Endless::Stream(source), false, _) => (
                FindingKind::Unbounded,
                format!(
                    "`{header}` loop reads an endless stream (`{source}`) and never ends by itself: \
                     {MESSAGE_FIX} or run the stream under `timeout`"
                ),
            ),
        };
        self.findings.push(LocalFinding {
            offset: lp.keyword,
            rule: Rule::H11,
            kind: message.0,
            message: message.1,
        });
    }

    /// The loop's first line as written, for messages: `while true`.
    fn header(&self, lp: &Loop) -> String {
        let raw = self.span(lp.keyword, lp.header_end);
        let collapsed: Vec<&str> = raw.split_whitespace().collect();
        let joined = collapsed.join(" ");
        shorten(joined.trim_end_matches(';').trim_end(), 40)
    }

    fn endless(&self, lp: &Loop, feed: Feed) -> Option<Endless> {
        match lp.kind {
            LoopKind::While | LoopKind::Until => {
                let wanted = lp.kind == LoopKind::While;
                let constant = self.list_truth(&lp.condition) == Some(wanted);
                // `while true; do read -r line || break; …; done < file` ends
                // with its input, like `while read`. Input left to the
                // terminal is not counted: `read -t 5` there is a per-call timeout.
                let explicit_input = feed.piped
                    || lp.redirects.iter().any(|redirect| {
                        matches!(redirect.operator, "<" | "<<" | "<<-" | "<<<" | "<>")
                    });
                let reads_until_end = explicit_input && self.body_reads_until_end(&lp.body);
                if constant && !reads_until_end {
                    return Some(Endless::Condition);
                }
                if !constant && !self.list_reads_input(&lp.condition) {
                    return None;
                }
                let redirected = lp.redirects.iter().find_map(|redirect| {
                    let raw = self.raw(&redirect.target);
                    if redirect.operator != "<" || !raw.starts_with("<(") {
                        return None;
                    }
                    redirect
                        .target
                        .substitutions
                        .iter()
                        .flatten()
                        .flat_map(|and_or| &and_or.pipelines)
                        .find_map(|pipeline| self.endless_stream(&pipeline.commands))
                });
                feed.stream.or(redirected).map(Endless::Stream)
            }
            LoopKind::ForArithmetic => {
                let [_, (start, end), _] = lp.arithmetic?;
                let condition = self.span(start, end).trim();
                let constant_true = condition.is_empty()
                    || condition
                        .parse::<i64>()
                        .map(|value| value != 0)
                        .unwrap_or(false);
                constant_true.then_some(Endless::Condition)
            }
            LoopKind::For | LoopKind::Select => None,
        }
    }

    /// `read … || break` (or `exit`, `return`) at the top level of a body.
    fn body_reads_until_end(&self, body: &[AndOr]) -> bool {
        body.iter().any(|and_or| {
            let reads = and_or.pipelines.first().is_some_and(|pipeline| {
                !pipeline.negated
                    && matches!(pipeline.commands.as_ref(), [Command::Simple(simple)]
                        if self.command_name(simple).as_deref() == Some("read"))
            });
            reads
                && and_or.connectors.first() == Some(&Connector::Or)
                && self.pipeline_leaves(&and_or.pipelines[1], 0)
        })
    }

    /// A body whose top level holds a plain `break`, `exit` or `return`, and
    /// no `continue` that could skip it, runs once.
    fn runs_at_most_once(&self, body: &List) -> bool {
        let plain_exit = body.iter().any(|and_or| {
            and_or.pipelines.len() == 1
                && and_or.pipelines[0].commands.len() == 1
                && matches!(&and_or.pipelines[0].commands[0], Command::Simple(simple)
                    if matches!(self.command_name(simple).as_deref(), Some("break" | "exit" | "return")))
        });
        plain_exit && !self.list_jumps(body, 0, Jump::Continue)
    }

    /// `while :; do case $1 in -v) …; shift ;; *) break ;; esac; done`: each
    /// turn consumes an argument or leaves, and the arm that an exhausted
    /// argument list reaches (`*`, `""`) leaves, so the arguments bound it.
    fn consumes_arguments(&self, body: &[AndOr]) -> bool {
        let commands = || {
            body.iter()
                .flat_map(|and_or| &and_or.pipelines)
                .flat_map(|pipeline| &pipeline.commands)
        };
        let shifts = |command: &Command| {
            matches!(command, Command::Simple(simple)
                if self.command_name(simple).as_deref() == Some("shift"))
        };
        let shifts_every_turn = commands().any(shifts);
        commands().any(|command| {
            let Command::Case(case) = command else {
                return false;
            };
            if !matches!(&*literal(self.raw(&case.subject)), "$1" | "${1}") {
                return false;
            }
            let mut exhausted_arm_leaves = None;
            for (patterns, arm) in case.patterns.iter().zip(&case.arms) {
                let leaves = self.list_leaves(arm, 0);
                let arm_shifts = self.list_runs(arm, "shift");
                if !(leaves || arm_shifts || shifts_every_turn) {
                    return false;
                }
                let matches_nothing = patterns.iter().any(|pattern| {
                    let pattern = literal(self.raw(pattern));
                    pattern.is_empty() || pattern.bytes().all(|byte| byte == b'*')
                });
                if matches_nothing && exhausted_arm_leaves.is_none() {
                    exhausted_arm_leaves = Some(leaves);
                }
            }
            exhausted_arm_leaves == Some(true)
        })
    }

    /// Does `list` run the command `name`, outside nested loops and functions?
    fn list_runs(&self, list: &[AndOr], name: &str) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| match command {
                Command::Simple(simple) => self.command_name(simple).as_deref() == Some(name),
                Command::If(_) | Command::Case(_) | Command::Group(_) => command
                    .branch_lists()
                    .any(|list| self.list_runs(list, name)),
                Command::Loop(_) | Command::Arithmetic(..) | Command::Function(_) => false,
            })
    }

    // ---- constant conditions -------------------------------------------

    fn list_truth(&self, list: &[AndOr]) -> Option<bool> {
        self.and_or_truth(list.last()?)
    }

    fn and_or_truth(&self, and_or: &AndOr) -> Option<bool> {
        let mut value = self.pipeline_truth(and_or.pipelines.first()?);
        for (connector, pipeline) in and_or.connectors.iter().zip(&and_or.pipelines[1..]) {
            let next = self.pipeline_truth(pipeline);
            value = match (connector, value) {
                (Connector::And, Some(false)) => Some(false),
                (Connector::And, Some(true)) => next,
                (Connector::And, None) => (next == Some(false)).then_some(false),
                (Connector::Or, Some(true)) => Some(true),
                (Connector::Or, Some(false)) => next,
                (Connector::Or, None) => (next == Some(true)).then_some(true),
            };
        }
        value
    }

    fn pipeline_truth(&self, pipeline: &Pipeline) -> Option<bool> {
        let value = match pipeline.commands.last()? {
            Command::Simple(simple) => self.simple_truth(simple),
            Command::Arithmetic(start, end) => {
                let expression = self.span(*start, *end).trim();
                expression.parse::<i64>().ok().map(|value| value != 0)
            }
            Command::Group(list) => self.list_truth(list),
            _ => None,
        }?;
        Some(value != pipeline.negated)
    }

    fn simple_truth(&self, simple: &Simple) -> Option<bool> {
        let name = self.command_name(simple)?;
        let arguments = self.arguments(simple);
        match &*name {
            "true" | ":" => Some(true),
            "false" => Some(false),
            // `while sleep 5` never fails: the classic endless poll.
            "sleep" if !arguments.is_empty() => Some(true),
            "[" | "[[" => {
                let closing = if &*name == "[" { "]" } else { "]]" };
                let (last, operands) = arguments.split_last()?;
                (self.raw(last) == closing).then(|| self.test_truth(operands))?
            }
            "test" => self.test_truth(arguments),
            _ => None,
        }
    }

    /// Evaluates `[ … ]` whose operands are all constants.
    fn test_truth(&self, operands: &[Word]) -> Option<bool> {
        let constants: Option<Vec<Cow<str>>> = operands
            .iter()
            .map(|word| {
                let raw = self.raw(word);
                (!raw.contains(['$', '`'])).then(|| literal(raw))
            })
            .collect();
        let constants = constants?;
        let values: Vec<&str> = constants.iter().map(|value| &**value).collect();
        match values.as_slice() {
            [] => Some(false),
            [value] => Some(!value.is_empty()),
            ["!", value] => Some(value.is_empty()),
            ["-n", value] => Some(!value.is_empty()),
            ["-z", value] => Some(value.is_empty()),
            [left, operator, right] => match *operator {
                "=" | "==" => Some(left == right),
                "!=" => Some(left != right),
                "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" => {
                    let left: i64 = left.parse().ok()?;
                    let right: i64 = right.parse().ok()?;
                    Some(match *operator {
                        "-eq" => left == right,
                        "-ne" => left != right,
                        "-lt" => left < right,
                        "-le" => left <= right,
                        "-gt" => left > right,
                        _ => left >= right,
                    })
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn list_reads_input(&self, list: &[AndOr]) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| {
                matches!(command, Command::Simple(simple)
                    if matches!(self.command_name(simple).as_deref(), Some("read" | "readarray" | "mapfile")))
            })
    }

    // ---- endless streams -----------------------------------------------

    /// The endless source feeding whatever follows `commands` in a pipeline,
    /// unless a later stage (`head`, `grep -m`, `timeout …`) cuts it off.
    fn endless_stream(&self, commands: &[Command]) -> Option<String> {
        let mut source = None;
        for command in commands {
            match command {
                Command::Simple(simple) => {
                    if let Some(found) = self.endless_source(simple) {
                        source = Some(found);
                    } else if source.is_some() && self.cuts_stream(simple) {
                        source = None;
                    }
                }
                Command::Group(list) => {
                    let inner = list
                        .iter()
                        .flat_map(|and_or| &and_or.pipelines)
                        .find_map(|pipeline| self.endless_stream(&pipeline.commands));
                    if inner.is_some() {
                        source = inner;
                    }
                }
                _ => {}
            }
        }
        source
    }

    /// Skips wrappers such as `stdbuf -oL` or `sudo`; `timeout` bounds the command.
    fn unwrapped<'s>(&self, simple: &'s Simple) -> Option<(Cow<'t, str>, &'s [Word])> {
        let mut index = self.command_index(simple)?;
        loop {
            let name = literal(self.raw(&simple.words[index]));
            let name = basename(&name).to_owned();
            if !matches!(
                &*name,
                "stdbuf" | "nohup" | "sudo" | "exec" | "command" | "env" | "nice" | "unbuffer"
            ) {
                return Some((Cow::Owned(name), &simple.words[index + 1..]));
            }
            index += 1;
            while index < simple.words.len() {
                let word = self.raw(&simple.words[index]);
                if word.starts_with('-') || assignment(word).is_some() {
                    index += 1;
                } else {
                    break;
                }
            }
            if index >= simple.words.len() {
                return None;
            }
        }
    }

    fn endless_source(&self, simple: &Simple) -> Option<String> {
        let (name, arguments) = self.unwrapped(simple)?;
        let arguments: Vec<Cow<str>> = arguments
            .iter()
            .map(|word| literal(self.raw(word)))
            .collect();
        let has = |long: &str, short: char| {
            arguments.iter().any(|argument| {
                argument == long
                    || (long.len() > 2 && argument.starts_with(&format!("{long}=")))
                    || is_short_cluster_with(argument, short)
            })
        };
        let subcommand = |wanted: &str| arguments.iter().any(|argument| argument == wanted);
        let found = match &*name {
            "timeout" => return None,
            "tail" if has("--follow", 'f') || has("--follow", 'F') => "tail -f".to_owned(),
            "journalctl" if has("--follow", 'f') => "journalctl -f".to_owned(),
            "dmesg" if has("--follow", 'w') || has("--follow", 'W') => "dmesg -w".to_owned(),
            "inotifywait" if has("--monitor", 'm') => "inotifywait -m".to_owned(),
            "fswatch" | "stern" | "yes" => name.to_string(),
            "docker" | "podman" | "kubectl" | "oc" | "nerdctl"
                if subcommand("logs") && has("--follow", 'f') =>
            {
                format!("{name} logs -f")
            }
            "docker" | "podman" if subcommand("events") => format!("{name} events"),
            "kubectl" | "oc" if has("--watch", 'w') => format!("{name} --watch"),
            _ if arguments
                .iter()
                .any(|argument| argument == "--watch" || argument == "--watch=true") =>
            {
                format!("{name} --watch")
            }
            _ => return None,
        };
        Some(found)
    }

    fn cuts_stream(&self, simple: &Simple) -> bool {
        let Some((name, arguments)) = self.unwrapped(simple) else {
            return false;
        };
        match &*name {
            "head" | "timeout" => true,
            "grep" | "egrep" | "fgrep" | "rg" => arguments.iter().any(|word| {
                let argument = literal(self.raw(word));
                argument.starts_with("--max-count")
                    || argument == "--quiet"
                    || is_short_cluster_with(&argument, 'm')
                    || is_short_cluster_with(&argument, 'q')
            }),
            _ => false,
        }
    }

    // ---- guards --------------------------------------------------------

    /// Names incremented or decremented anywhere in the loop: its counters.
    fn incremented(&self, lp: &Loop) -> Vec<&'t str> {
        let mut names = Vec::new();
        if let Some(parts) = lp.arithmetic {
            for (start, end) in [parts[0], parts[2]] {
                arithmetic_updates(self.span(start, end), &mut names);
            }
        }
        self.list_increments(&lp.condition, &mut names);
        self.list_increments(&lp.body, &mut names);
        names
    }

    fn list_increments(&self, list: &[AndOr], names: &mut Vec<&'t str>) {
        for command in list
            .iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
        {
            match command {
                Command::Simple(simple) => self.simple_increments(simple, names),
                Command::Arithmetic(start, end) => {
                    arithmetic_updates(self.span(*start, *end), names)
                }
                Command::Loop(lp) => {
                    if let Some(parts) = lp.arithmetic {
                        for (start, end) in [parts[0], parts[2]] {
                            arithmetic_updates(self.span(start, end), names);
                        }
                    }
                    self.list_increments(&lp.condition, names);
                    self.list_increments(&lp.body, names);
                }
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    for list in command.branch_lists() {
                        self.list_increments(list, names);
                    }
                }
                Command::Function(_) => {}
            }
        }
    }

    fn simple_increments(&self, simple: &Simple, names: &mut Vec<&'t str>) {
        let index = self.command_index(simple).unwrap_or(simple.words.len());
        let name = self.command_name(simple);
        let declares = matches!(
            name.as_deref(),
            Some("local" | "declare" | "typeset" | "export" | "readonly")
        );
        for (position, word) in simple.words.iter().enumerate() {
            let raw = self.raw(word);
            if position < index || (declares && position > index) {
                if let Some((variable, value)) = assignment(raw) {
                    let appends = raw.as_bytes().get(variable.len()) == Some(&b'+');
                    if appends || references(value, variable) {
                        names.push(variable);
                    }
                }
            }
            let is_let_argument = name.as_deref() == Some("let") && position > index;
            if is_let_argument || raw.contains("$((") {
                arithmetic_updates(raw, names);
            }
        }
    }

    fn list_has_guard_test(&self, list: &[AndOr], incremented: &[&str]) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .any(|pipeline| self.pipeline_is_guard_test(pipeline, incremented))
    }

    fn pipeline_is_guard_test(&self, pipeline: &Pipeline, incremented: &[&str]) -> bool {
        pipeline.commands.iter().any(|command| match command {
            Command::Group(list) => self.list_has_guard_test(list, incremented),
            _ => self.is_guard_test(command, incremented),
        })
    }

    /// A test comparing elapsed time or a counter against a bound.
    fn is_guard_test(&self, command: &Command, incremented: &[&str]) -> bool {
        let (text, arithmetic) = match command {
            Command::Arithmetic(start, end) => (self.span(*start, *end), true),
            Command::Simple(simple) => {
                let name = self.command_name(simple);
                let arithmetic = match name.as_deref() {
                    Some("[" | "[[" | "test") => false,
                    Some("let") => true,
                    _ => return self.function_guard(simple, incremented).is_some(),
                };
                let first = self
                    .command_index(simple)
                    .map_or(0, |index| simple.words[index].start);
                let last = simple.words.last().map_or(first, |word| word.end);
                (self.span(first, last), arithmetic)
            }
            _ => return false,
        };
        let compares = if arithmetic {
            text.contains(['<', '>']) || text.contains("==") || text.contains("!=")
        } else {
            ["-gt", "-ge", "-lt", "-le", "-eq", "-ne", "=", "<", ">"]
                .iter()
                .any(|operator| text.contains(operator))
        };
        if !compares {
            return false;
        }
        if self.mentions_time(text) {
            return true;
        }
        if identifiers(text).any(|(_, name)| incremented.contains(&name)) {
            return true;
        }
        // `(( ++attempts > 5 ))` counts as it tests.
        let mut updated = Vec::new();
        if arithmetic {
            arithmetic_updates(text, &mut updated);
        }
        !updated.is_empty()
    }

    fn mentions_time(&self, text: &str) -> bool {
        mentions_time(text, self.time_variables())
    }

    /// Looks for exits that a guard test controls, in `list` at `depth`
    /// loops below the loop being checked.
    fn search_guards(
        &self,
        list: &[AndOr],
        depth: usize,
        incremented: &[&str],
        guards: &mut Guards,
    ) {
        for (position, and_or) in list.iter().enumerate() {
            // `if (( SECONDS < deadline )); then sleep 1; continue; fi; echo late; exit 1`:
            // the guard keeps the loop going, and falling through leaves it.
            if self.guard_continues(and_or, depth, incremented) {
                let rest = &list[position + 1..];
                if self.list_leaves(rest, depth) {
                    guards.record(self.list_announces(rest));
                }
            }
            // `guard && break`, `guard || { echo …; exit 1; }`
            let pipelines = &and_or.pipelines;
            if let Some(test) = pipelines
                .iter()
                .position(|pipeline| self.pipeline_is_guard_test(pipeline, incremented))
            {
                if let Some(exit) = (test + 1..pipelines.len())
                    .find(|&index| self.pipeline_leaves(&pipelines[index], depth))
                {
                    let announced = pipelines[test + 1..=exit]
                        .iter()
                        .any(|pipeline| self.pipeline_announces(pipeline))
                        || self.guard_function_announces(&pipelines[test..=test], incremented);
                    guards.record(announced);
                }
            }
            for command in pipelines.iter().flat_map(|pipeline| &pipeline.commands) {
                match command {
                    Command::If(branches) => {
                        let mut guarded = false;
                        for (condition, body) in &branches.branches {
                            let tests = self.list_has_guard_test(condition, incremented);
                            guarded |= tests;
                            if tests && self.list_leaves(body, depth) {
                                let announced = self.list_announces(body)
                                    || condition.iter().any(|and_or| {
                                        self.guard_function_announces(
                                            &and_or.pipelines,
                                            incremented,
                                        )
                                    });
                                guards.record(announced);
                            }
                            self.search_guards(condition, depth, incremented, guards);
                            self.search_guards(body, depth, incremented, guards);
                        }
                        if let Some(otherwise) = &branches.otherwise {
                            if guarded && self.list_leaves(otherwise, depth) {
                                guards.record(self.list_announces(otherwise));
                            }
                            self.search_guards(otherwise, depth, incremented, guards);
                        }
                    }
                    Command::Loop(lp) => {
                        self.search_guards(&lp.condition, depth + 1, incremented, guards);
                        self.search_guards(&lp.body, depth + 1, incremented, guards);
                    }
                    Command::Case(case) => {
                        for arm in &case.arms {
                            self.search_guards(arm, depth, incremented, guards);
                        }
                    }
                    Command::Group(body) => self.search_guards(body, depth, incremented, guards),
                    // `check_deadline`, a function that exits when time is up.
                    Command::Simple(simple) => {
                        if let Some(function) = self.function_guard(simple, incremented) {
                            if function.exits {
                                guards.record(function.announced);
                            }
                        }
                    }
                    Command::Arithmetic(..) | Command::Function(_) => {}
                }
            }
        }
    }

    /// Does a guard function called in `pipelines` print a message itself?
    fn guard_function_announces(&self, pipelines: &[Pipeline], incremented: &[&str]) -> bool {
        pipelines
            .iter()
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| match command {
                Command::Simple(simple) => self
                    .function_guard(simple, incremented)
                    .is_some_and(|function| function.announced),
                _ => false,
            })
    }

    /// When `simple` calls a function of this script whose body leaves
    /// (`return 1`, `exit`) on a guard test, what that exit does.
    fn function_guard(&self, simple: &Simple, incremented: &[&str]) -> Option<FunctionGuard> {
        if self.examining_function.get() {
            return None;
        }
        let name = self.command_name(simple)?;
        let functions = self.functions();
        let index = functions
            .iter()
            .rposition(|(defined, _)| *defined == name)?;
        let Command::Group(list) = functions[index].1 else {
            return None;
        };
        // Many calls of one function from the same loop, or from loops with
        // the same counters, are judged once.
        let key = (index, incremented.join(" "));
        if let Some((_, answer)) = self
            .function_answers
            .borrow()
            .iter()
            .find(|(known, _)| *known == key)
        {
            return *answer;
        }
        let answer = self.judge_function(list, incremented);
        self.function_answers.borrow_mut().push((key, answer));
        answer
    }

    fn judge_function(&self, list: &[AndOr], incremented: &[&str]) -> Option<FunctionGuard> {
        self.examining_function.set(true);
        let mut own = Vec::new();
        self.list_increments(list, &mut own);
        let counters: Vec<&str> = incremented.iter().copied().chain(own).collect();
        let mut guards = Guards::default();
        self.search_guards(list, 0, &counters, &mut guards);
        let mut exits = false;
        if guards.found {
            self.exits_only.set(true);
            let mut leaving = Guards::default();
            self.search_guards(list, 0, &counters, &mut leaving);
            self.exits_only.set(false);
            exits = leaving.found;
        }
        // A predicate: its status is the test (`too_many() { [ "$n" -ge 5 ]; }`).
        let predicate = list.last().is_some_and(|and_or| {
            and_or.pipelines.len() == 1
                && self.pipeline_is_guard_test(&and_or.pipelines[0], &counters)
        });
        self.examining_function.set(false);
        (guards.found || predicate).then_some(FunctionGuard {
            announced: guards.announced,
            exits,
        })
    }

    fn functions(&self) -> &[(&'t str, &'t Command)] {
        self.functions.get_or_init(|| {
            let mut functions = Vec::new();
            self.collect_functions(self.program, &mut functions);
            functions
        })
    }

    fn collect_functions(&self, list: &'t [AndOr], functions: &mut Vec<(&'t str, &'t Command)>) {
        for command in list
            .iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
        {
            match command {
                Command::Function(function) => {
                    let name = literal(self.raw(&function.name));
                    if let Cow::Borrowed(name) = name {
                        functions.push((name, &function.body));
                    }
                    if let Command::Group(body) = &function.body {
                        self.collect_functions(body, functions);
                    }
                }
                Command::Loop(lp) => {
                    self.collect_functions(&lp.condition, functions);
                    self.collect_functions(&lp.body, functions);
                }
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    for list in command.branch_lists() {
                        self.collect_functions(list, functions);
                    }
                }
                Command::Simple(_) | Command::Arithmetic(..) => {}
            }
        }
    }

    /// Right after the loop, does the same kind of test lead to a message?
    /// (`done; if (( SECONDS >= deadline )); then echo "timed out" >&2; exit 1; fi`)
    fn explains_after(&self, after: &[AndOr], incremented: &[&str]) -> bool {
        after.iter().take(2).any(|and_or| {
            let pipelines = &and_or.pipelines;
            let chained = pipelines
                .iter()
                .position(|pipeline| self.pipeline_is_guard_test(pipeline, incremented))
                .is_some_and(|test| {
                    pipelines[test + 1..]
                        .iter()
                        .any(|pipeline| self.pipeline_announces(pipeline))
                });
            let branched = pipelines
                .iter()
                .flat_map(|pipeline| &pipeline.commands)
                .any(|command| match command {
                    Command::If(branches) => branches.branches.iter().any(|(condition, body)| {
                        self.list_has_guard_test(condition, incremented)
                            && self.list_announces(body)
                    }),
                    _ => false,
                });
            chained || branched
        })
    }

    /// `guard && continue`, or an `if guard` branch that continues.
    fn guard_continues(&self, and_or: &AndOr, depth: usize, incremented: &[&str]) -> bool {
        let pipelines = &and_or.pipelines;
        let chained = pipelines
            .iter()
            .position(|pipeline| self.pipeline_is_guard_test(pipeline, incremented))
            .is_some_and(|test| {
                pipelines[test + 1..].iter().any(|pipeline| {
                    pipeline
                        .commands
                        .iter()
                        .any(|command| self.command_jumps(command, depth, Jump::Continue))
                })
            });
        let branched = pipelines
            .iter()
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| match command {
                Command::If(branches) => branches.branches.iter().any(|(condition, body)| {
                    self.list_has_guard_test(condition, incremented)
                        && self.list_jumps(body, depth, Jump::Continue)
                }),
                _ => false,
            });
        chained || branched
    }

    /// Does this leave the checked loop, from `depth` loops below it?
    fn pipeline_leaves(&self, pipeline: &Pipeline, depth: usize) -> bool {
        pipeline
            .commands
            .iter()
            .any(|command| self.command_jumps(command, depth, Jump::Leave))
    }

    fn list_leaves(&self, list: &[AndOr], depth: usize) -> bool {
        self.list_jumps(list, depth, Jump::Leave)
    }

    fn list_jumps(&self, list: &[AndOr], depth: usize, jump: Jump) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| self.command_jumps(command, depth, jump))
    }

    /// Does `command`, `depth` loops below the checked loop, leave it
    /// (`break N` reaching it, `exit`, `return`, `die`) or restart it (`continue N`)?
    fn command_jumps(&self, command: &Command, depth: usize, jump: Jump) -> bool {
        match command {
            Command::Simple(simple) => {
                let name = self.command_name(simple);
                let levels = || {
                    self.arguments(simple)
                        .first()
                        .and_then(|word| literal(self.raw(word)).parse::<usize>().ok())
                        .unwrap_or(1)
                };
                let exits_only = self.exits_only.get();
                match (jump, name.as_deref()) {
                    (Jump::Leave, Some("break" | "return")) if exits_only => false,
                    (Jump::Leave, Some("break")) | (Jump::Continue, Some("continue")) => {
                        levels() > depth
                    }
                    (Jump::Leave, Some("exit" | "return")) => true,
                    (Jump::Leave, Some(name)) => is_fatal_command(name),
                    _ => false,
                }
            }
            Command::Loop(lp) => {
                self.list_jumps(&lp.condition, depth + 1, jump)
                    || self.list_jumps(&lp.body, depth + 1, jump)
            }
            Command::If(_) | Command::Case(_) | Command::Group(_) => command
                .branch_lists()
                .any(|list| self.list_jumps(list, depth, jump)),
            Command::Arithmetic(..) | Command::Function(_) => false,
        }
    }

    /// Does this print something: `echo`, `printf`, `logger`, a `die`-style
    /// helper, or anything sent to standard error?
    fn pipeline_announces(&self, pipeline: &Pipeline) -> bool {
        pipeline
            .commands
            .iter()
            .any(|command| self.command_announces(command))
    }

    fn list_announces(&self, list: &[AndOr]) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .any(|pipeline| self.pipeline_announces(pipeline))
    }

    fn command_announces(&self, command: &Command) -> bool {
        match command {
            Command::Simple(simple) => {
                let to_stderr = simple
                    .redirects
                    .iter()
                    .any(|redirect| self.redirect_is_stderr(redirect));
                let to_nowhere = simple.redirects.iter().any(|redirect| {
                    redirect.descriptor.is_none()
                        && matches!(redirect.operator, ">" | ">>" | "&>")
                        && self.raw(&redirect.target) == "/dev/null"
                });
                to_stderr
                    || (!to_nowhere
                        && self.command_name(simple).is_some_and(|name| {
                            is_message_command(&name) || is_fatal_command(&name)
                        }))
            }
            Command::Loop(lp) => self.list_announces(&lp.body),
            Command::If(_) | Command::Case(_) | Command::Group(_) => {
                command.branch_lists().any(|list| self.list_announces(list))
            }
            Command::Arithmetic(..) | Command::Function(_) => false,
        }
    }

    fn redirect_is_stderr(&self, redirect: &Redirect) -> bool {
        let target = self.raw(&redirect.target);
        let descriptor = redirect.descriptor.as_ref().map(|word| self.raw(word));
        match redirect.operator {
            ">&" => target == "2" && matches!(descriptor, None | Some("1")),
            ">" | ">>" | "&>" | "&>>" => target == "/dev/stderr",
            _ => false,
        }
    }

    // ---- time variables --------------------------------------------------

    fn collect_assignments(&self, list: &[AndOr], assignments: &mut Vec<(&'t str, &'t str)>) {
        for command in list
            .iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
        {
            match command {
                Command::Simple(simple) => {
                    let index = self.command_index(simple).unwrap_or(simple.words.len());
                    let declares = matches!(
                        self.command_name(simple).as_deref(),
                        Some("local" | "declare" | "typeset" | "export" | "readonly")
                    );
                    for (position, word) in simple.words.iter().enumerate() {
                        if position < index || (declares && position > index) {
                            if let Some(pair) = assignment(self.raw(word)) {
                                assignments.push(pair);
                            }
                        }
                    }
                }
                Command::Arithmetic(start, end) => {
                    // `(( deadline = SECONDS + 60 ))`
                    let text = self.span(*start, *end);
                    if let Some(equals) = text.find('=') {
                        if !text[equals + 1..].starts_with('=') {
                            if let Some((_, name)) = identifiers(&text[..equals]).last() {
                                assignments.push((name, &text[equals + 1..]));
                            }
                        }
                    }
                }
                Command::Loop(lp) => {
                    self.collect_assignments(&lp.condition, assignments);
                    self.collect_assignments(&lp.body, assignments);
                }
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    for list in command.branch_lists() {
                        self.collect_assignments(list, assignments);
                    }
                }
                Command::Function(function) => {
                    if let Command::Group(list) = &function.body {
                        self.collect_assignments(list, assignments);
                    }
                }
            }
        }
    }
}

/// Does `text` read the clock: `SECONDS`, `date +%s`, or one of `variables`?
fn mentions_time(text: &str, variables: &[&str]) -> bool {
    let mut saw_date = false;
    for (_, name) in identifiers(text) {
        match name {
            "SECONDS" | "EPOCHSECONDS" | "EPOCHREALTIME" => return true,
            "date" => saw_date = true,
            _ if variables.contains(&name) => return true,
            _ => {}
        }
    }
    saw_date && text.contains("%s")
}

/// Commands that print a message.
fn is_message_command(name: &str) -> bool {
    matches!(
        name,
        "echo"
            | "printf"
            | "print"
            | "logger"
            | "warn"
            | "warning"
            | "error"
            | "err"
            | "log"
            | "msg"
            | "info"
            | "notify"
            | "say"
    ) || name.starts_with("log_")
        || name.starts_with("warn_")
        || name.starts_with("error_")
        || name.ends_with("_log")
        || name.ends_with("_error")
        || name.ends_with("_warn")
}

/// Helpers that by convention print a message and exit.
fn is_fatal_command(name: &str) -> bool {
    matches!(name, "die" | "fail" | "fatal" | "abort" | "bail" | "panic")
}

/// `-f`, `-F`, `-fn0`: a cluster of short options that includes `letter`.
fn is_short_cluster_with(argument: &str, letter: char) -> bool {
    argument.len() >= 2
        && argument.starts_with('-')
        && !argument.starts_with("--")
        && argument[1..]
            .chars()
            .all(|character| character.is_ascii_alphanumeric())
        && argument[1..].contains(letter)
}

/// Does `value` read the variable `name` (`$name`, `${name…}`, or bare inside
/// `$((…))`, `$[…]` or an `expr` call)?
fn references(value: &str, name: &str) -> bool {
    let arithmetic = value.contains("((") || value.contains("$[") || value.contains("expr");
    identifiers(value).any(|(start, identifier)| {
        identifier == name
            && (arithmetic || value[..start].ends_with('$') || value[..start].ends_with("${"))
    })
}

/// Names changed by `n++`, `++n`, `n--`, `n+=1`, `n-=1` or `n = n + 1` in arithmetic text.
fn arithmetic_updates<'a>(text: &'a str, names: &mut Vec<&'a str>) {
    for (start, name) in identifiers(text) {
        let before = text[..start].trim_end();
        let after = text[start + name.len()..].trim_start();
        let updated = after.starts_with("++")
            || after.starts_with("--")
            || after.starts_with("+=")
            || after.starts_with("-=")
            || before.ends_with("++")
            || before.ends_with("--")
            || (after.starts_with('=') && !after.starts_with("==") && {
                let expression = after[1..].split([',', ';']).next().unwrap_or("");
                identifiers(expression).any(|(_, other)| other == name)
            });
        if updated && !names.contains(&name) {
            names.push(name);
        }
    }
}

/// `text`, cut to `limit` characters with an ellipsis.
fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
