//! Loop-by-loop reasoning over a parsed script.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;

use super::syntax::{
    AndOr, Command, Connector, HeredocBody, If, List, Loop, LoopKind, Pipeline, Redirect, Simple,
    Word,
};
use super::words::{assignment, basename, heredoc_text, identifiers, literal, unquote};
use crate::validate::diagnostic::{FindingKind, Rule};

/// What surrounds the code being analysed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Context {
    /// Runs under `timeout N …`, so every loop in it has a deadline.
    pub under_deadline: bool,
    /// That deadline's expiry is reported by nobody: the caller neither
    /// tests the wrapped command's failure with a message nor dies on it.
    pub silent_deadline: bool,
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

/// Where a pipeline being walked sits, to tell whether its failure is reported.
#[derive(Clone, Copy)]
struct Site<'t> {
    list: &'t [AndOr],
    position: usize,
    pipeline: usize,
    container: Container<'t>,
}

/// What holds a list, as far as its last command's status goes on to matter.
#[derive(Clone, Copy)]
enum Container<'t> {
    /// A script, a body or a branch: the status is only seen by what follows.
    Plain,
    /// `{ …; }` or `( … )`: the group's status is its last command's.
    Group,
    /// The condition of branch `n` of an `if`.
    Condition(&'t If, usize),
}

/// What a guard function does when its test fires.
#[derive(Clone, Copy)]
struct FunctionGuard {
    /// It prints why.
    announced: bool,
    /// It ends the script (`exit`, `die`), not just itself.
    exits: bool,
}

/// What a pipeline feeds into a loop's standard input.
#[derive(Default)]
struct Feed {
    /// An endless source upstream (`tail -f`), by name.
    stream: Option<String>,
}

/// Why a loop cannot end by itself.
enum Endless {
    /// Its condition is constant: `while true`, `until false`, `for ((;;))`.
    Condition,
    /// It reads a stream that never closes, named here (`tail -f`).
    Stream(String),
    /// Its condition waits on the outside world: a command's success, a
    /// file, a port. What it waits for, ready to quote (`` `curl` ``).
    Wait(String),
}

/// What a loop's body changes, for telling a wait from a walk over data.
struct WaitScope<'t> {
    /// Variables the body assigns, with their values.
    assigned: Vec<(&'t str, &'t str)>,
    /// Whether the body sleeps on its own passes (not only inside an inner wait).
    paced: bool,
    /// Variables assigned by functions of the script the body calls, with the function.
    helpers: Vec<(&'t str, String)>,
}

/// Helpers of another file (one the script sources) that always end the
/// script, each with whether it prints why.
pub(super) type ExitingHelpers = Vec<(String, bool)>;

/// Work units one file may spend on judging loops, per byte of text, on top
/// of a fixed allowance: generous for real scripts, a wall for hostile ones.
const WORK_PER_BYTE: usize = 64;
const WORK_ALLOWANCE: usize = 1 << 20;

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
    /// Index into `functions` of the last definition of each name.
    function_index: OnceCell<HashMap<&'t str, usize>>,
    /// Set while a function body is examined, so calls made from it (and
    /// recursion) are not followed.
    examining_function: Cell<bool>,
    /// Set while looking only for exits that end the script (`exit`, `die`).
    exits_only: Cell<bool>,
    /// What each function was found to do, by its index and the loop counters asked with.
    function_answers: RefCell<HashMap<(usize, String), Option<FunctionGuard>>>,
    /// Functions of this file that always end the script, by name: `Some(announces)`,
    /// `None` while being judged (recursion), absent when not asked yet.
    exit_answers: RefCell<HashMap<&'t str, Option<Option<bool>>>>,
    /// Functions of this file that print something, by name (`None` while judged).
    announce_answers: RefCell<HashMap<&'t str, Option<bool>>>,
    /// Helpers from sourced files that always end the script.
    sourced_exits: ExitingHelpers,
    /// The script runs under `set -e`.
    errexit: OnceCell<bool>,
    /// Work left before the file counts as unscanned.
    work_left: Cell<usize>,
    /// Where the work budget ran out, once it has.
    pub budget_spent_at: Option<usize>,
    pub findings: Vec<LocalFinding>,
    pub embedded: Vec<EmbeddedScript>,
    /// What runs after each `if`, `case` or group being walked, innermost
    /// last; `None` where a loop body, a function or a substitution starts,
    /// past which nothing runs right after a loop in it.
    continuations: Vec<Option<&'t [AndOr]>>,
    /// Names of the functions whose bodies are being walked, innermost last.
    enclosing_functions: Vec<&'t str>,
    /// Where each pipeline being walked sits, innermost last; `None` where a
    /// function body starts, whose status its definition does not have.
    sites: Vec<Option<Site<'t>>>,
    /// Heredoc bodies of the text, by their delimiter word's offset.
    heredocs: Vec<HeredocBody>,
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
            function_index: OnceCell::new(),
            examining_function: Cell::new(false),
            exits_only: Cell::new(false),
            function_answers: RefCell::new(HashMap::new()),
            exit_answers: RefCell::new(HashMap::new()),
            announce_answers: RefCell::new(HashMap::new()),
            sourced_exits: Vec::new(),
            errexit: OnceCell::new(),
            work_left: Cell::new(
                WORK_ALLOWANCE.saturating_add(text.len().saturating_mul(WORK_PER_BYTE)),
            ),
            budget_spent_at: None,
            findings: Vec::new(),
            embedded: Vec::new(),
            continuations: Vec::new(),
            enclosing_functions: Vec::new(),
            sites: Vec::new(),
            heredocs: Vec::new(),
        }
    }

    /// Lets heredocs fed to a shell (`bash <<'EOF'`) be scanned as code.
    pub(super) fn with_heredocs(mut self, mut heredocs: Vec<HeredocBody>) -> Self {
        heredocs.sort_by_key(|body| body.target);
        self.heredocs = heredocs;
        self
    }

    /// Lets calls to `helpers` (defined in a sourced file) count as exits.
    pub(super) fn with_sourced_exits(mut self, helpers: ExitingHelpers) -> Self {
        self.sourced_exits = helpers;
        self
    }

    /// Replaces the work budget (tests use a small one).
    pub(super) fn with_budget(self, units: usize) -> Self {
        self.work_left.set(units);
        self
    }

    /// Takes `units` of work; false once the file's budget is spent.
    fn spend(&self, units: usize) -> bool {
        let left = self.work_left.get();
        self.work_left.set(left.saturating_sub(units));
        left >= units
    }

    /// Functions of this file that always end the script, with whether each prints why.
    pub(super) fn exiting_functions(&self) -> ExitingHelpers {
        let names: Vec<&'t str> = self.functions().iter().map(|(name, _)| *name).collect();
        names
            .into_iter()
            .filter_map(|name| {
                self.function_exits(name)
                    .map(|announces| (name.to_owned(), announces))
            })
            .collect()
    }

    /// Literal paths this script sources (`. ./lib.sh`, `source lib/common.sh`).
    pub(super) fn sourced_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        for and_or in self.program {
            for command in and_or
                .pipelines
                .iter()
                .flat_map(|pipeline| &pipeline.commands)
            {
                let Command::Simple(simple) = command else {
                    continue;
                };
                if !matches!(self.command_name(simple).as_deref(), Some("." | "source")) {
                    continue;
                }
                if let Some(word) = self.arguments(simple).first() {
                    let path = literal(self.raw(word));
                    if !path.is_empty() && !path.contains(['$', '`', '*', '?']) {
                        paths.push(path.into_owned());
                    }
                }
            }
        }
        paths
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

    pub(super) fn walk_list(&mut self, list: &'t [AndOr], context: Context) {
        self.walk_list_in(list, context, Container::Plain);
    }

    fn walk_list_in(&mut self, list: &'t [AndOr], context: Context, container: Container<'t>) {
        for (position, and_or) in list.iter().enumerate() {
            for (index, pipeline) in and_or.pipelines.iter().enumerate() {
                self.sites.push(Some(Site {
                    list,
                    position,
                    pipeline: index,
                    container,
                }));
                self.walk_pipeline(pipeline, context, &list[position + 1..]);
                self.sites.pop();
            }
        }
    }

    /// `after`: what runs next once a loop in this pipeline ends.
    fn walk_pipeline(&mut self, pipeline: &'t Pipeline, context: Context, after: &'t [AndOr]) {
        // Only a compound that runs alone is followed by `after` in the same shell.
        let alone = pipeline.commands.len() == 1;
        for (index, command) in pipeline.commands.iter().enumerate() {
            match command {
                Command::Loop(lp) => {
                    let feed = Feed {
                        stream: self.endless_stream(&pipeline.commands[..index]),
                    };
                    self.walk_loop(lp, context, feed, after);
                }
                _ => self.walk_command(command, context, alone.then_some(after)),
            }
        }
    }

    /// `after`: what runs once `command` ends, when that is known.
    fn walk_command(&mut self, command: &'t Command, context: Context, after: Option<&'t [AndOr]>) {
        match command {
            Command::Simple(simple) => self.walk_simple(simple, context),
            Command::Loop(lp) => self.walk_loop(lp, context, Feed::default(), &[]),
            Command::If(chain) => {
                self.continuations.push(after);
                for (branch, (condition, body)) in chain.branches.iter().enumerate() {
                    self.walk_list_in(condition, context, Container::Condition(chain, branch));
                    self.walk_list(body, context);
                }
                if let Some(otherwise) = &chain.otherwise {
                    self.walk_list(otherwise, context);
                }
                self.continuations.pop();
            }
            Command::Group(list) => {
                self.continuations.push(after);
                self.walk_list_in(list, context, Container::Group);
                self.continuations.pop();
            }
            Command::Case(_) => {
                self.continuations.push(after);
                for list in command.branch_lists() {
                    self.walk_list(list, context);
                }
                self.continuations.pop();
            }
            Command::Function(function) => {
                let name = match literal(self.raw(&function.name)) {
                    Cow::Borrowed(name) => name,
                    Cow::Owned(_) => "",
                };
                self.continuations.push(None);
                self.enclosing_functions.push(name);
                self.sites.push(None);
                self.walk_command(&function.body, context, None);
                self.sites.pop();
                self.enclosing_functions.pop();
                self.continuations.pop();
            }
            Command::Arithmetic(..) => {}
        }
    }

    /// What runs right after a loop whose own list ends with it: the
    /// statements after the innermost enclosing `if`, `case` or group that
    /// has any (`if [ -f "$pid" ]; then …; while …; done; fi; if [ "$status" … ]`).
    fn continuation(&self) -> &'t [AndOr] {
        for entry in self.continuations.iter().rev() {
            match entry {
                None => return &[],
                Some(list) if !list.is_empty() => return list,
                Some(_) => {}
            }
        }
        &[]
    }

    fn walk_words(&mut self, words: &'t [Word], context: Context) {
        for word in words {
            for substitution in &word.substitutions {
                self.continuations.push(None);
                self.walk_list(substitution, context);
                self.continuations.pop();
            }
        }
    }

    fn walk_redirects(&mut self, redirects: &'t [Redirect], context: Context) {
        for redirect in redirects {
            for substitution in &redirect.target.substitutions {
                self.continuations.push(None);
                self.walk_list(substitution, context);
                self.continuations.pop();
            }
        }
    }

    fn walk_simple(&mut self, simple: &'t Simple, context: Context) {
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
            let heredoc = if has_command_option {
                None
            } else {
                // `bash <<'EOF'`, `bash -s <<EOF`, `ssh host bash -s <<EOF`: the shell
                // reads its script from the heredoc, unless a script file is named.
                let script_named = next < words.len()
                    && !words[index + 1..next].iter().any(|word| {
                        let option = literal(self.raw(word));
                        !option.starts_with("--") && option.contains('s')
                    });
                if script_named {
                    None
                } else {
                    self.stdin_heredoc(simple)
                }
            };
            if !(has_command_option && next < words.len()) && heredoc.is_none() {
                continue;
            }
            let timed = words[start..index]
                .iter()
                .any(|word| basename(&literal(self.raw(word))) == "timeout");
            let inner = Context {
                under_deadline: context.under_deadline || timed,
                silent_deadline: if timed {
                    context.silent_deadline || !self.failure_reported()
                } else {
                    context.silent_deadline
                },
                ..context
            };
            match heredoc {
                Some(body) => self.embed_heredoc(body, inner),
                None => self.embed(&words[next], inner),
            }
            return;
        }
    }

    /// The heredoc `simple` reads on its standard input, if any.
    fn stdin_heredoc(&self, simple: &Simple) -> Option<HeredocBody> {
        let redirect = simple.redirects.iter().rev().find(|redirect| {
            matches!(redirect.operator, "<<" | "<<-")
                && redirect
                    .descriptor
                    .as_ref()
                    .is_none_or(|word| self.raw(word) == "0")
        })?;
        let found = self
            .heredocs
            .binary_search_by_key(&redirect.target.start, |body| body.target)
            .ok()?;
        Some(self.heredocs[found])
    }

    fn embed_heredoc(&mut self, body: HeredocBody, context: Context) {
        let (text, origins) =
            heredoc_text(self.span(body.start, body.end), body.start, body.quoted);
        if text.trim().is_empty() {
            return;
        }
        self.embedded.push(EmbeddedScript {
            text,
            origins,
            context,
        });
    }

    /// Is a failure of the pipeline being walked reported: handled by `||`
    /// with a message or a helper that dies, an `if !` (or `else`) branch that
    /// prints, a saved `$?` that a later test reports, or `set -e` with a trap
    /// that prints? A `(…)` or `{ …; }` passes its last command's status on.
    fn failure_reported(&self) -> bool {
        let mut negated = false;
        for entry in self.sites.iter().rev() {
            let Some(site) = entry else {
                return false;
            };
            let and_or = &site.list[site.position];
            negated ^= and_or.pipelines[site.pipeline].negated;
            let rest = &site.list[site.position + 1..];
            let on_failure = if negated {
                Connector::And
            } else {
                Connector::Or
            };
            // `timeout … || handler`, also past `&& next` steps the failure skips;
            // with no handler the whole and-or list fails, as the command did.
            let later = and_or.connectors.get(site.pipeline..).unwrap_or(&[]);
            if let Some(offset) = later.iter().position(|&connector| connector == on_failure) {
                return self.handler_reports(&and_or.pipelines[site.pipeline + offset + 1], rest);
            }
            if rest.is_empty() {
                match site.container {
                    Container::Group => continue,
                    Container::Condition(chain, branch) => {
                        return if negated {
                            self.list_announces(&chain.branches[branch].1)
                        } else {
                            branch + 1 == chain.branches.len()
                                && chain
                                    .otherwise
                                    .as_ref()
                                    .is_some_and(|otherwise| self.list_announces(otherwise))
                        };
                    }
                    Container::Plain => {}
                }
            }
            return self.status_reported(rest) || (self.errexit() && self.trap_announces());
        }
        false
    }

    /// `… || die "…"`, `… || { echo …; exit 1; }`, `… || rc=$?` with `rc` reported later.
    fn handler_reports(&self, handler: &Pipeline, rest: &[AndOr]) -> bool {
        if self.pipeline_announces(handler) {
            return true;
        }
        match &*handler.commands {
            [Command::Simple(simple)] => {
                self.saved_status(simple).is_some_and(|variable| {
                    self.explains_after(rest, &[variable], None) || self.returned_and_reported(rest)
                }) || (self.returns_failure_simple(simple) && self.callers_report())
            }
            _ => false,
        }
    }

    /// After the command: `rc=$?` and a test of `rc` that prints, or a
    /// `return` whose every caller in the file reports the failure.
    fn status_reported(&self, rest: &[AndOr]) -> bool {
        let saved = rest.first().and_then(|and_or| match &*and_or.pipelines {
            [pipeline] => match &*pipeline.commands {
                [Command::Simple(simple)] => self.saved_status(simple),
                _ => None,
            },
            _ => None,
        });
        match saved {
            Some(variable) => {
                self.explains_after(&rest[1..], &[variable], None)
                    || self.returned_and_reported(&rest[1..])
            }
            None => false,
        }
    }

    /// `rc=$?` (or `local rc=$?`): the variable that keeps the status.
    fn saved_status(&self, simple: &Simple) -> Option<&'t str> {
        let words = match self.command_index(simple) {
            Some(index) if matches!(self.raw(&simple.words[index]), "local" | "declare") => {
                &simple.words[index + 1..]
            }
            Some(_) => return None,
            None => &simple.words[..],
        };
        match words {
            [word] => {
                let (name, value) = assignment(self.raw(word))?;
                matches!(value, "$?" | "\"$?\"").then_some(name)
            }
            _ => None,
        }
    }

    /// A `return` among the next few statements, in a function whose every
    /// call in the file reports its failure.
    fn returned_and_reported(&self, rest: &[AndOr]) -> bool {
        rest.iter().take(4).any(|and_or| match &*and_or.pipelines {
            [pipeline] => matches!(&*pipeline.commands, [Command::Simple(simple)]
                if self.command_name(simple).as_deref() == Some("return")),
            _ => false,
        }) && self.callers_report()
    }

    fn returns_failure_simple(&self, simple: &Simple) -> bool {
        self.command_name(simple).as_deref() == Some("return")
            && self
                .arguments(simple)
                .first()
                .is_none_or(|word| self.raw(word) != "0")
    }

    fn callers_report(&self) -> bool {
        self.enclosing_functions
            .last()
            .is_some_and(|name| !name.is_empty() && self.every_call_reports_failure(name))
    }

    /// `trap '…' ERR` or `EXIT` whose handler prints (a message command, or
    /// a function of the file that does).
    fn trap_announces(&self) -> bool {
        self.program
            .iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| {
                let Command::Simple(simple) = command else {
                    return false;
                };
                if self.command_name(simple).as_deref() != Some("trap") {
                    return false;
                }
                let arguments = self.arguments(simple);
                let Some((handler, signals)) = arguments.split_first() else {
                    return false;
                };
                let on_failure = signals
                    .iter()
                    .any(|word| matches!(&*literal(self.raw(word)), "ERR" | "EXIT" | "0"));
                let handler = literal(self.raw(handler));
                on_failure
                    && handler
                        .split([';', '&', '|', ' '])
                        .any(|word| is_message_command(word) || self.function_announces(word))
            })
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

    fn walk_loop(&mut self, lp: &'t Loop, context: Context, feed: Feed, after: &'t [AndOr]) {
        if !context.under_deadline || context.silent_deadline {
            let after = if after.is_empty() {
                self.continuation()
            } else {
                after
            };
            self.check_loop(lp, feed, after, context.silent_deadline);
        }
        let inner = Context {
            in_loop: true,
            ..context
        };
        self.continuations.push(None);
        self.walk_words(&lp.words, inner);
        self.walk_list(&lp.condition, inner);
        self.walk_list(&lp.body, inner);
        self.continuations.pop();
        self.walk_redirects(&lp.redirects, context);
    }

    // ---- one loop ------------------------------------------------------

    /// `silent_deadline`: the loop runs under a `timeout` whose expiry nobody
    /// reports, so a loop that would wait for ever gives up silently instead.
    fn check_loop(&mut self, lp: &Loop, feed: Feed, after: &[AndOr], silent_deadline: bool) {
        if self.budget_spent_at.is_some() {
            return;
        }
        if !self.spend(1 + body_size(&lp.condition) + body_size(&lp.body)) {
            self.budget_spent_at = Some(lp.keyword);
            self.findings.push(LocalFinding {
                offset: lp.keyword,
                rule: Rule::H11,
                kind: FindingKind::Unscanned,
                message: "the scanner's work budget for this file ran out at this loop: it and \
                    the loops after it were not checked; split the file"
                    .to_owned(),
            });
            return;
        }
        let Some(endless) = self.endless(lp, feed) else {
            self.check_retry(lp, after);
            return;
        };
        if self.runs_at_most_once(&lp.body) || self.consumes_arguments(lp) {
            return;
        }
        let mut guards = Guards::default();
        let counters = self.counters(lp);
        let condition_guard = self.condition_has_guard(lp, &counters);
        if matches!(endless, Endless::Stream(_)) && condition_guard {
            // `while read -r line && (( SECONDS < deadline ))`: the loop ends by its
            // condition, and what follows the loop is out of sight.
            return;
        }
        if matches!(endless, Endless::Wait(_)) && condition_guard {
            // `until curl … || (( SECONDS > deadline ))`: giving up falls out of
            // the loop, so only what follows it can say why.
            guards.found = true;
        }
        self.search_guards(&lp.body, 0, &counters, &mut guards);
        let waited = match &endless {
            Endless::Wait(_) => self.waited_command(lp),
            _ => None,
        };
        if guards.found
            && !guards.announced
            && self.explains_after(
                after,
                &self.with_body_variables(lp, &counters),
                waited.as_deref(),
            )
        {
            // `… && break; done; if (( SECONDS > deadline )); then echo late >&2; …`
            guards.announced = true;
        }
        if guards.found
            && !guards.announced
            && matches!(endless, Endless::Condition)
            && self.is_countdown(lp, &counters)
        {
            // `while true; do …; n=$((n-1)); [ $n -eq 0 ] && break; done`: the
            // cap is the loop's normal end, not a give-up.
            return;
        }
        if guards.found && guards.announced {
            return;
        }
        // Built only for a finding: most loops need no message.
        let header = self.header(lp);
        if silent_deadline {
            self.findings.push(LocalFinding {
                offset: lp.keyword,
                rule: Rule::H11,
                kind: FindingKind::SilentFallback,
                message: format!(
                    "`{header}` loop runs under `timeout`, but nothing reports when the timeout \
                     fires: test the command's status and print why (e.g. `timeout 60 bash … || \
                     {{ echo \"gave up after 60s\" >&2; exit 1; }}`)"
                ),
            });
            return;
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
            (Endless::Wait(what), false, _) => (
                FindingKind::Unbounded,
                format!(
                    "`{header}` loop waits for {what} with no deadline or cap: {MESSAGE_FIX} or run \
                     the whole loop under `timeout` (a per-call timeout does not bound the loop)"
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

    /// A loop bounded by its own header (`for i in $(seq 1 5)`, `for ((…))`,
    /// `while [ $n -lt 5 ]`, `while (( SECONDS < end ))`) that retries
    /// something: it sleeps between passes and leaves early on success. Its
    /// last pass is a give-up, which must say so.
    fn check_retry(&mut self, lp: &Loop, after: &[AndOr]) {
        let mut counters = self.counters(lp);
        let counted = match lp.kind {
            LoopKind::For => {
                let counted_words = lp.words.iter().any(|word| {
                    let raw = self.raw(word);
                    raw.contains("$(seq")
                        || raw.contains("`seq")
                        || (raw.starts_with('{') && raw.contains(".."))
                }) || (lp.words.len() >= 2
                    && lp
                        .words
                        .iter()
                        .all(|word| self.raw(word).bytes().all(|byte| byte.is_ascii_digit())));
                if counted_words {
                    let header = self.span(lp.keyword, lp.header_end);
                    if let Some((_, variable)) = identifiers(header).nth(1) {
                        counters.push(variable);
                    }
                }
                counted_words
            }
            LoopKind::ForArithmetic => true,
            LoopKind::While | LoopKind::Until => self.condition_has_guard(lp, &counters),
            LoopKind::Select => false,
        };
        if !counted || !self.list_sleeps(&lp.body) || !self.has_other_exit(&lp.body, 0, &counters) {
            return;
        }
        let mut guards = Guards::default();
        self.search_guards(&lp.body, 0, &counters, &mut guards);
        let announced = if guards.found {
            guards.announced
                || self.announces_on_a_test(&lp.body, &counters)
                || self.explains_after(after, &self.with_body_variables(lp, &counters), None)
        } else if self.list_breaks(&lp.body, 0) {
            // Success and give-up both reach what follows: only a test there can tell them apart.
            self.announces_on_a_test(&lp.body, &counters)
                || self.announces_every_failing_pass(&lp.body, &counters)
                || self.explains_after(
                    after,
                    &self.with_body_variables(lp, &counters),
                    self.success_command(&lp.body).as_deref(),
                )
        } else {
            // Success leaves the function or the script: what follows runs only on give-up.
            self.announces_every_failing_pass(&lp.body, &counters)
                || self.give_up_path_announces(after)
                || (after
                    .first()
                    .is_some_and(|and_or| self.returns_failure(and_or))
                    && self
                        .enclosing_functions
                        .last()
                        .is_some_and(|name| self.every_call_reports_failure(name)))
        };
        if announced {
            return;
        }
        let header = self.header(lp);
        self.findings.push(LocalFinding {
            offset: lp.keyword,
            rule: Rule::H11,
            kind: FindingKind::SilentFallback,
            message: format!(
                "`{header}` loop gives up after its last try without saying so: print why on \
                 that path (e.g. `echo \"gave up after $attempts tries\" >&2`) before failing"
            ),
        });
    }

    /// When success leaves the function or the script, the statements after
    /// the loop run only on give-up: does one of them print before the path
    /// leaves (`local msg; msg="limit of $n polls exceeded"; warn "$msg"`)?
    fn give_up_path_announces(&self, after: &[AndOr]) -> bool {
        for and_or in after.iter().take(8) {
            if and_or
                .pipelines
                .iter()
                .any(|pipeline| self.pipeline_announces(pipeline))
            {
                return true;
            }
            if and_or
                .pipelines
                .iter()
                .any(|pipeline| self.pipeline_leaves(pipeline, 0))
            {
                return false;
            }
        }
        false
    }

    /// Does every pass that goes round again print on the failed try: in an
    /// `else` of the `if` that leaves on success, or as the statement right
    /// after the body's first way out (`if helm install …; then break; else
    /// echo "failed, retrying"; fi`, `deploy && break; echo "try $i failed"`)?
    /// The last failing pass then says why the loop ends.
    fn announces_every_failing_pass(&self, body: &[AndOr], counters: &[&str]) -> bool {
        let Some(exit) = body
            .iter()
            .position(|and_or| self.has_other_exit(std::slice::from_ref(and_or), 0, counters))
        else {
            return false;
        };
        // Every clause of that `if` that goes round again prints: the `else`
        // of a success test, or the `then` of a failure test (`if [ "$code" =
        // ERROR ]; then log "not found"; sleep 1; continue; else break; fi`).
        let in_else = match &*body[exit].pipelines {
            [pipeline] => match &*pipeline.commands {
                [Command::If(chain)] => {
                    let clauses = chain
                        .branches
                        .iter()
                        .map(|(_, branch)| Some(branch))
                        .chain([chain.otherwise.as_ref()]);
                    let mut staying = 0usize;
                    let mut all_announce = true;
                    for clause in clauses {
                        match clause {
                            Some(list) if self.has_other_exit(list, 0, counters) => {}
                            Some(list) => {
                                staying += 1;
                                all_announce &= self.list_announces(list);
                            }
                            None => {
                                staying += 1;
                                all_announce = false;
                            }
                        }
                    }
                    staying > 0 && all_announce
                }
                _ => false,
            },
            _ => false,
        };
        // Right after the way out, before anything else runs: the failed
        // try's own message, not a progress line of a later step.
        let after_exit = body
            .get(exit + 1)
            .is_some_and(|and_or| match &*and_or.pipelines {
                [pipeline] => {
                    matches!(&*pipeline.commands, [Command::Simple(_)])
                        && self.pipeline_announces(pipeline)
                }
                _ => false,
            });
        in_else || after_exit
    }

    /// Is `and_or` a plain `return N` with a failing status?
    fn returns_failure(&self, and_or: &AndOr) -> bool {
        match &*and_or.pipelines {
            [pipeline] => match &*pipeline.commands {
                [Command::Simple(simple)] => {
                    self.command_name(simple).as_deref() == Some("return")
                        && self
                            .arguments(simple)
                            .first()
                            .is_some_and(|word| !matches!(self.raw(word), "0" | "$?"))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Is `name` called somewhere in the file, and does every call print
    /// when it fails: `name || echo FAIL`, `name; [ $? = 0 ] && echo OK ||
    /// echo FAIL`, `if ! name; then echo …`, `if name; then …; else echo …`?
    /// Then a helper whose wait gives up with a bare `return 1` is reported
    /// by its callers.
    fn every_call_reports_failure(&self, name: &str) -> bool {
        let mut calls = 0usize;
        let mut reported = 0usize;
        self.count_reported_calls(self.program, name, &mut calls, &mut reported);
        calls > 0 && calls == reported
    }

    fn count_reported_calls(
        &self,
        list: &[AndOr],
        name: &str,
        calls: &mut usize,
        reported: &mut usize,
    ) {
        if !self.spend(1 + body_size(list)) {
            return;
        }
        let calls_it = |pipeline: &Pipeline| {
            pipeline.commands.iter().any(|command| {
                matches!(command, Command::Simple(simple)
                    if self.command_name(simple).as_deref() == Some(name))
            })
        };
        for (index, and_or) in list.iter().enumerate() {
            let pipelines = &and_or.pipelines;
            if let Some(call) = pipelines.iter().position(calls_it) {
                *calls += 1;
                let or_announces = |and_or: &AndOr, from: usize| {
                    (from + 1..and_or.pipelines.len()).any(|next| {
                        and_or.connectors[next - 1] == Connector::Or
                            && self.pipeline_announces(&and_or.pipelines[next])
                    })
                };
                let status_tested_next = pipelines.len() == 1
                    && list.get(index + 1).is_some_and(|next| {
                        next.pipelines
                            .first()
                            .is_some_and(|pipeline| self.pipeline_text(pipeline).contains("$?"))
                            && or_announces(next, 0)
                    });
                if or_announces(and_or, call) || status_tested_next {
                    *reported += 1;
                }
            }
            for command in pipelines.iter().flat_map(|pipeline| &pipeline.commands) {
                match command {
                    Command::If(chain) => {
                        for (number, (condition, body)) in chain.branches.iter().enumerate() {
                            let tested = condition.last().and_then(|last| {
                                last.pipelines.iter().find(|pipeline| calls_it(pipeline))
                            });
                            if let Some(pipeline) = tested {
                                *calls += 1;
                                let failing = if pipeline.negated {
                                    self.list_announces(body)
                                } else {
                                    chain.branches[number + 1..]
                                        .iter()
                                        .any(|(_, later)| self.list_announces(later))
                                        || chain
                                            .otherwise
                                            .as_ref()
                                            .is_some_and(|otherwise| self.list_announces(otherwise))
                                };
                                if failing {
                                    *reported += 1;
                                }
                                // The call itself is counted; look at the rest of the condition.
                                let rest = &condition[..condition.len() - 1];
                                self.count_reported_calls(rest, name, calls, reported);
                            } else {
                                self.count_reported_calls(condition, name, calls, reported);
                            }
                            self.count_reported_calls(body, name, calls, reported);
                        }
                        if let Some(otherwise) = &chain.otherwise {
                            self.count_reported_calls(otherwise, name, calls, reported);
                        }
                    }
                    Command::Case(_) | Command::Group(_) => {
                        for list in command.branch_lists() {
                            self.count_reported_calls(list, name, calls, reported);
                        }
                    }
                    Command::Loop(inner) => {
                        self.count_reported_calls(&inner.condition, name, calls, reported);
                        self.count_reported_calls(&inner.body, name, calls, reported);
                    }
                    Command::Function(function) => {
                        if let Command::Group(body) = &function.body {
                            self.count_reported_calls(body, name, calls, reported);
                        }
                    }
                    Command::Simple(_) | Command::Arithmetic(..) => {}
                }
            }
        }
    }

    /// The source text of `pipeline`, from its first word to its last.
    fn pipeline_text(&self, pipeline: &Pipeline) -> &'t str {
        let words = pipeline
            .commands
            .iter()
            .filter_map(|command| match command {
                Command::Simple(simple) => Some(&simple.words),
                _ => None,
            });
        let mut start = usize::MAX;
        let mut end = 0;
        for word in words.flatten() {
            start = start.min(word.start);
            end = end.max(word.end);
        }
        if start < end {
            self.span(start, end)
        } else {
            ""
        }
    }

    /// `counters` and every variable the loop's body assigns: after the loop,
    /// a test of any of them tells the give-up from success
    /// (`if [ "$state" != ready ]; then echo … >&2; exit 1; fi`).
    fn with_body_variables(&self, lp: &Loop, counters: &[&'t str]) -> Vec<&'t str> {
        let mut names = counters.to_vec();
        let mut assigned = Vec::new();
        self.collect_assignments(&lp.body, &mut assigned);
        names.extend(assigned.into_iter().map(|(name, _)| name));
        names
    }

    /// Does the body print on a test of its counter or deadline, even one
    /// that does not leave (`if [ $n -eq 0 ]; then echo "did not stop in time"; fi`
    /// on the last pass of a countdown)?
    fn announces_on_a_test(&self, list: &[AndOr], counters: &[&str]) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| match command {
                Command::If(chain) => chain.branches.iter().any(|(condition, body)| {
                    (self.list_has_guard_test(condition, counters) && self.list_announces(body))
                        || self.announces_on_a_test(body, counters)
                }),
                Command::Case(_) | Command::Group(_) => command
                    .branch_lists()
                    .any(|list| self.announces_on_a_test(list, counters)),
                _ => false,
            })
    }

    /// Does `list` run `sleep` between its own passes: anywhere, in its `for`
    /// loops too, but not only inside an inner `while`/`until`, whose sleep
    /// paces that inner wait (an outer loop over items that waits on each is
    /// no retry)?
    fn list_sleeps(&self, list: &[AndOr]) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| match command {
                Command::Simple(simple) => self.command_name(simple).as_deref() == Some("sleep"),
                Command::Loop(inner) => {
                    !matches!(inner.kind, LoopKind::While | LoopKind::Until)
                        && self.list_sleeps(&inner.body)
                }
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    command.branch_lists().any(|list| self.list_sleeps(list))
                }
                Command::Arithmetic(..) | Command::Function(_) => false,
            })
    }

    /// Does `list` hold a `break` that reaches the loop `depth` levels up?
    fn list_breaks(&self, list: &[AndOr], depth: usize) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| match command {
                Command::Simple(simple) => {
                    self.command_name(simple).as_deref() == Some("break")
                        && self
                            .arguments(simple)
                            .first()
                            .and_then(|word| self.raw(word).parse::<usize>().ok())
                            .unwrap_or(1)
                            > depth
                }
                Command::Loop(inner) => self.list_breaks(&inner.body, depth + 1),
                Command::If(_) | Command::Case(_) | Command::Group(_) => command
                    .branch_lists()
                    .any(|list| self.list_breaks(list, depth)),
                Command::Arithmetic(..) | Command::Function(_) => false,
            })
    }

    /// The command whose success ends a retry loop: `curl` in `curl … && break`.
    fn success_command(&self, body: &[AndOr]) -> Option<String> {
        body.iter().find_map(|and_or| {
            let pipelines = &and_or.pipelines;
            (pipelines.len() > 1
                && pipelines[1..]
                    .iter()
                    .any(|pipeline| self.pipeline_leaves(pipeline, 0)))
            .then(|| {
                pipelines[0]
                    .commands
                    .iter()
                    .find_map(|command| match command {
                        Command::Simple(simple) => self.command_key(simple),
                        _ => None,
                    })
            })
            .flatten()
        })
    }

    /// A `while true` loop whose only ways out are its counter's tests, each by
    /// `break` (or a successful exit): running out of turns is how it finishes.
    fn is_countdown(&self, lp: &Loop, counters: &[&str]) -> bool {
        !counters.is_empty()
            && !self.mentions_time(self.span(lp.header_end, lp.end))
            && !self.has_other_exit(&lp.body, 0, counters)
            && !self.list_fails(&lp.body)
    }

    /// Does `list` hold an `exit`/`return` with a failing (or unknown) status,
    /// or a helper that ends the script?
    fn list_fails(&self, list: &[AndOr]) -> bool {
        list.iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
            .any(|command| match command {
                Command::Simple(simple) => match self.command_name(simple).as_deref() {
                    Some("exit" | "return") => self
                        .arguments(simple)
                        .first()
                        .is_none_or(|word| self.raw(word) != "0"),
                    Some(name) => self.helper_exits(name).is_some(),
                    None => false,
                },
                Command::Loop(inner) => {
                    self.list_fails(&inner.condition) || self.list_fails(&inner.body)
                }
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    command.branch_lists().any(|list| self.list_fails(list))
                }
                Command::Arithmetic(..) | Command::Function(_) => false,
            })
    }

    /// Does `list` leave the loop (from `depth` loops below it) other than on a guard test?
    fn has_other_exit(&self, list: &[AndOr], depth: usize, counters: &[&str]) -> bool {
        list.iter().any(|and_or| {
            let pipelines = &and_or.pipelines;
            let chained = (1..pipelines.len()).any(|index| {
                self.pipeline_leaves(&pipelines[index], depth)
                    && !pipelines[..index]
                        .iter()
                        .any(|pipeline| self.pipeline_is_guard_test(pipeline, counters))
            });
            chained
                || pipelines
                    .iter()
                    .flat_map(|pipeline| &pipeline.commands)
                    .any(|command| match command {
                        Command::Simple(_) => {
                            pipelines.len() == 1 && self.command_jumps(command, depth, Jump::Leave)
                        }
                        Command::If(chain) => {
                            let mut guarded = false;
                            for (condition, body) in &chain.branches {
                                if self.list_has_guard_test(condition, counters) {
                                    guarded = true;
                                } else if self.has_other_exit(body, depth, counters) {
                                    return true;
                                }
                            }
                            !guarded
                                && chain.otherwise.as_ref().is_some_and(|otherwise| {
                                    self.has_other_exit(otherwise, depth, counters)
                                })
                        }
                        Command::Case(case) => case
                            .arms
                            .iter()
                            .any(|arm| self.has_other_exit(arm, depth, counters)),
                        Command::Group(body) => self.has_other_exit(body, depth, counters),
                        Command::Loop(inner) => {
                            self.has_other_exit(&inner.condition, depth + 1, counters)
                                || self.has_other_exit(&inner.body, depth + 1, counters)
                        }
                        Command::Arithmetic(..) | Command::Function(_) => false,
                    })
        })
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
                // `while true; do read -r line || break; …; done` ends with its input,
                // like `while read` (a `read -t 5` timeout ends it too).
                if constant && !self.body_reads_until_end(&lp.body) {
                    return Some(Endless::Condition);
                }
                if !constant && !self.list_reads_input(&lp.condition) {
                    // A wait that asks a person each pass, and leaves when the answer
                    // is empty as at end of input, is a prompt loop (`read -p "retry?"`).
                    if self.body_reads_until_end(&lp.body) {
                        return None;
                    }
                    return self.condition_waits(lp).map(Endless::Wait);
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

    /// Does the body end the loop when its input ends? `read … || break` (or
    /// `exit`, `return`) at its top level; a bare `read` under `set -e`; or a
    /// `read` of a variable whose empty value (what end of input leaves) leaves.
    fn body_reads_until_end(&self, body: &[AndOr]) -> bool {
        body.iter().enumerate().any(|(position, and_or)| {
            let Some(variable) =
                and_or
                    .pipelines
                    .first()
                    .and_then(|pipeline| match pipeline.commands.as_ref() {
                        [Command::Simple(simple)] if !pipeline.negated => {
                            self.read_variable(simple)
                        }
                        _ => None,
                    })
            else {
                return false;
            };
            if and_or.connectors.first() == Some(&Connector::Or) {
                return self.pipeline_leaves(&and_or.pipelines[1], 0);
            }
            (and_or.pipelines.len() == 1 && self.errexit())
                || self.empty_value_leaves(&body[position + 1..], variable)
        })
    }

    /// `read [options] [names]`: the variable it fills (`REPLY` by default).
    fn read_variable(&self, simple: &Simple) -> Option<&'t str> {
        if self.command_name(simple).as_deref() != Some("read") {
            return None;
        }
        let mut skip_next = false;
        let mut variable = "REPLY";
        for word in self.arguments(simple) {
            let raw = self.raw(word);
            if skip_next {
                skip_next = false;
            } else if raw.starts_with('-') {
                // Options that take a value: `-p prompt`, `-t 5`, `-u 3`, `-d ''`, `-n 1`.
                skip_next = matches!(
                    raw.chars().last(),
                    Some('p' | 't' | 'u' | 'd' | 'n' | 'N' | 'a' | 'i')
                );
            } else {
                variable = raw;
            }
        }
        Some(variable)
    }

    /// After `read answer`, does an empty `answer` leave the loop: a `case` arm
    /// that matches "" (or `*`) and leaves, or `[ -z "$answer" ] && break`?
    fn empty_value_leaves(&self, rest: &[AndOr], variable: &str) -> bool {
        let mentions = |word: &Word| references(self.raw(word), variable);
        rest.iter().any(|and_or| {
            let pipelines = &and_or.pipelines;
            let tested = pipelines
                .first()
                .is_some_and(|pipeline| self.empty_answer_passes(pipeline, variable, &mentions));
            (tested
                && pipelines[1..]
                    .iter()
                    .any(|pipeline| self.pipeline_leaves(pipeline, 0)))
                || pipelines
                    .iter()
                    .flat_map(|pipeline| &pipeline.commands)
                    .any(|command| match command {
                        Command::Case(case) if mentions(&case.subject) => {
                            case.patterns.iter().zip(&case.arms).any(|(patterns, arm)| {
                                patterns.iter().any(|pattern| {
                                    let pattern = literal(self.raw(pattern));
                                    pattern.is_empty() || pattern.bytes().all(|byte| byte == b'*')
                                }) && self.list_leaves(arm, 0)
                            })
                        }
                        Command::If(chain) => chain.branches.iter().any(|(condition, body)| {
                            let empty_enters = condition.last().is_some_and(|and_or| {
                                matches!(&*and_or.pipelines, [pipeline]
                                    if self.empty_answer_passes(pipeline, variable, &mentions))
                            });
                            (empty_enters || self.empty_value_leaves(condition, variable))
                                && self.list_leaves(body, 0)
                                || self.empty_value_leaves(body, variable)
                        }),
                        _ => false,
                    })
        })
    }

    /// Is this test true when `variable` is empty, as end of input leaves it:
    /// `[ -z "$answer" ]`, `[ "$answer" != y ]`, `! [[ $REPLY =~ ^[yY]$ ]]`?
    fn empty_answer_passes(
        &self,
        pipeline: &Pipeline,
        variable: &str,
        mentions: &dyn Fn(&Word) -> bool,
    ) -> bool {
        let [Command::Simple(simple)] = &*pipeline.commands else {
            return false;
        };
        let name = self.command_name(simple);
        let arguments = self.arguments(simple);
        let operands = match name.as_deref() {
            Some("[" | "[[") => match arguments.split_last() {
                Some((_, operands)) => operands,
                None => return false,
            },
            Some("test") => arguments,
            _ => return false,
        };
        if !operands.iter().any(mentions) {
            return false;
        }
        let values: Option<Vec<Cow<str>>> = operands
            .iter()
            .map(|word| {
                let raw = self.raw(word);
                let bare = raw.trim_matches('"');
                if bare == format!("${variable}") || bare == format!("${{{variable}}}") {
                    Some(Cow::Borrowed(""))
                } else {
                    // A `$` that ends the word is a regex anchor, not an expansion.
                    let expands = raw.trim_end_matches(['$', '"', '\'']).contains(['$', '`']);
                    (!expands).then(|| literal(raw))
                }
            })
            .collect();
        let Some(values) = values else {
            return false;
        };
        let values: Vec<&str> = values.iter().map(|value| &**value).collect();
        truth_of(&values).is_some_and(|truth| truth != pipeline.negated)
    }

    /// Does the script run under `set -e` (or `set -o errexit`, or `-e` on its shebang)?
    fn errexit(&self) -> bool {
        *self.errexit.get_or_init(|| {
            let shebang = self.text.lines().next().unwrap_or("");
            if shebang.starts_with("#!")
                && shebang
                    .split_whitespace()
                    .skip(1)
                    .any(|word| is_short_cluster_with(word, 'e'))
            {
                return true;
            }
            self.program
                .iter()
                .flat_map(|and_or| &and_or.pipelines)
                .flat_map(|pipeline| &pipeline.commands)
                .any(|command| {
                    let Command::Simple(simple) = command else {
                        return false;
                    };
                    if self.command_name(simple).as_deref() != Some("set") {
                        return false;
                    }
                    let arguments = self.arguments(simple);
                    arguments
                        .iter()
                        .any(|word| is_short_cluster_with(self.raw(word), 'e'))
                        || arguments.windows(2).any(|pair| {
                            self.raw(&pair[0]) == "-o" && self.raw(&pair[1]) == "errexit"
                        })
                })
        })
    }

    // ---- waits on the outside world ---------------------------------------

    /// What a `while`/`until` condition waits for, when its result depends on
    /// the outside world (a command's success, a file, a port), quoted for a
    /// message. A condition over variables the body changes walks data instead.
    fn condition_waits(&self, lp: &Loop) -> Option<String> {
        let mut assigned = Vec::new();
        self.collect_assignments(&lp.body, &mut assigned);
        let mut helpers = Vec::new();
        self.collect_called_assignments(&lp.body, &mut helpers);
        let scope = WaitScope {
            assigned,
            helpers,
            paced: self.list_sleeps(&lp.body),
        };
        let last = lp.condition.last()?;
        last.pipelines
            .iter()
            .find_map(|pipeline| self.pipeline_waits(pipeline, &scope, 0))
    }

    /// For each function of the script the body calls, the variables it assigns.
    fn collect_called_assignments(&self, list: &[AndOr], helpers: &mut Vec<(&'t str, String)>) {
        for command in list
            .iter()
            .flat_map(|and_or| &and_or.pipelines)
            .flat_map(|pipeline| &pipeline.commands)
        {
            match command {
                Command::Simple(simple) => {
                    let Some(name) = self.command_name(simple) else {
                        continue;
                    };
                    if let Some((_, Command::Group(body))) = self.function_named(&name) {
                        if !self.spend(1 + body_size(body)) {
                            return;
                        }
                        let mut assigned = Vec::new();
                        self.collect_assignments(body, &mut assigned);
                        helpers.extend(
                            assigned
                                .into_iter()
                                .map(|(variable, _)| (variable, name.to_string())),
                        );
                    }
                }
                Command::Loop(inner) => self.collect_called_assignments(&inner.body, helpers),
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    for list in command.branch_lists() {
                        self.collect_called_assignments(list, helpers);
                    }
                }
                Command::Arithmetic(..) | Command::Function(_) => {}
            }
        }
    }

    /// A test of a variable that the body changes only through a helper of
    /// the script (`testpid` re-reading a pid file): a wait on that helper.
    fn changed_by_helper(&self, words: &[Word], scope: &WaitScope<'t>) -> Option<String> {
        words.iter().find_map(|word| {
            let raw = self.raw(word);
            scope
                .helpers
                .iter()
                .find(|(variable, _)| {
                    references(raw, variable)
                        && !scope
                            .assigned
                            .iter()
                            .any(|(assigned, _)| assigned == variable)
                })
                .map(|(_, helper)| format!("`{helper}`"))
        })
    }

    /// The command a waiting loop runs in its condition, to recognise a retest after it.
    fn waited_command(&self, lp: &Loop) -> Option<String> {
        let last = lp.condition.last()?;
        last.pipelines
            .iter()
            .flat_map(|pipeline| &pipeline.commands)
            .find_map(|command| match command {
                Command::Simple(simple) => self
                    .command_key(simple)
                    .filter(|key| !key.starts_with(['[', ' ']) && !key.starts_with("test ")),
                _ => None,
            })
    }

    /// A command's name and first argument, to recognise the same command
    /// again: `docker exec` is not `docker ps`.
    fn command_key(&self, simple: &Simple) -> Option<String> {
        let (name, arguments) = self.unwrapped(simple)?;
        // The first two words that are not options: `docker exec "$cid"` is
        // not `docker exec -i "$other"`, `curl -sf "$url"` is `curl -s "$url"`.
        let mut key = name.into_owned();
        for word in arguments
            .iter()
            .map(|word| self.raw(word))
            .filter(|raw| !raw.starts_with('-'))
            .take(2)
        {
            key.push(' ');
            key.push_str(word);
        }
        Some(key)
    }

    fn pipeline_waits(
        &self,
        pipeline: &Pipeline,
        scope: &WaitScope<'t>,
        depth: usize,
    ) -> Option<String> {
        pipeline
            .commands
            .iter()
            .enumerate()
            .find_map(|(index, command)| match command {
                Command::Group(list) => list.last().and_then(|and_or| {
                    and_or
                        .pipelines
                        .iter()
                        .find_map(|pipeline| self.pipeline_waits(pipeline, scope, depth))
                }),
                Command::Simple(simple) => self.simple_waits(simple, index == 0, scope, depth),
                _ => None,
            })
    }

    fn simple_waits(
        &self,
        simple: &Simple,
        first_in_pipeline: bool,
        scope: &WaitScope<'t>,
        depth: usize,
    ) -> Option<String> {
        if depth > 4 {
            return None;
        }
        let assigned = &scope.assigned;
        if simple.redirects.iter().any(|redirect| {
            let target = literal(self.raw(&redirect.target));
            target.starts_with("/dev/tcp/") || target.starts_with("/dev/udp/")
        }) {
            return Some("a connection (`/dev/tcp/…`)".to_owned());
        }
        let (name, arguments) = self.unwrapped(simple)?;
        let name = name.into_owned();
        // A word that reads a variable the body changes (from data, not from
        // the outside world): the loop walks that data.
        let changed_by_body = |word: &Word| {
            let raw = self.raw(word);
            assigned.iter().any(|(variable, value)| {
                references(raw, variable) && !self.assigned_value_waits(variable, value, scope)
            })
        };
        let from_words = || {
            arguments.iter().find_map(|word| {
                word.substitutions
                    .iter()
                    .filter_map(|list| list.last())
                    .flat_map(|and_or| &and_or.pipelines)
                    .find_map(|pipeline| self.pipeline_waits(pipeline, scope, depth + 1))
                    .or_else(|| {
                        // `status=$(kubectl get …)` in the body, `[ "$status" != Ready ]` here.
                        let raw = self.raw(word);
                        assigned.iter().find_map(|(variable, value)| {
                            (references(raw, variable)
                                && self.assigned_value_waits(variable, value, scope))
                            .then(|| format!("`{}`", source_command(variable, value, assigned)))
                        })
                    })
            })
        };
        match name.as_str() {
            "true" | "false" | ":" | "read" | "readarray" | "mapfile" | "getopts" | "shift"
            | "let" | "sleep" | "wait" | "expr" | "eval" | "return" | "exit" | "break"
            | "continue" | "local" | "declare" | "set" | "unset" | "export" => None,
            "[" | "[[" | "test" => {
                let file_test = arguments.windows(2).find_map(|pair| {
                    let operator = self.raw(&pair[0]);
                    let is_file_test = matches!(
                        operator,
                        "-e" | "-f"
                            | "-d"
                            | "-s"
                            | "-S"
                            | "-p"
                            | "-r"
                            | "-w"
                            | "-x"
                            | "-L"
                            | "-h"
                            | "-b"
                            | "-c"
                            | "-O"
                            | "-G"
                            | "-N"
                    );
                    (is_file_test && !changed_by_body(&pair[1])).then(|| {
                        format!(
                            "a file (`{} {}`)",
                            operator,
                            shorten(&literal(self.raw(&pair[1])), 40)
                        )
                    })
                });
                file_test
                    .or_else(from_words)
                    .or_else(|| self.changed_by_helper(arguments, scope))
            }
            "echo" | "printf" | "grep" | "egrep" | "fgrep" | "awk" | "gawk" | "sed" | "cut"
            | "tr" | "wc" | "head" | "tail" | "sort" | "uniq" | "basename" | "dirname" | "date"
            | "seq" | "cat" | "realpath" | "readlink" | "jq" => {
                let reads_file = first_in_pipeline
                    && matches!(
                        name.as_str(),
                        "cat" | "grep" | "egrep" | "fgrep" | "tail" | "head" | "jq"
                    )
                    && arguments.iter().any(|word| {
                        let raw = self.raw(word);
                        raw.contains('/') && !raw.starts_with('-') && !changed_by_body(word)
                    });
                if reads_file {
                    Some(format!("`{name}` on a file"))
                } else {
                    from_words()
                }
            }
            _ => {
                if let Some((_, Command::Group(body))) = self.function_named(&name) {
                    return body.last().and_then(|and_or| {
                        and_or
                            .pipelines
                            .iter()
                            .find_map(|pipeline| self.pipeline_waits(pipeline, scope, depth + 1))
                    });
                }
                if arguments.iter().any(changed_by_body) {
                    return None;
                }
                Some(format!("`{name}`"))
            }
        }
    }

    /// Is `value` (an assignment's right side) the output of a command that
    /// depends on the outside world: `$(kubectl get …)`, `` `cat state` ``?
    /// Does the body's `variable=value` bring news from outside: a value that
    /// waits ([`Self::value_waits`]), or, in a loop that sleeps between
    /// passes, a command's output that never builds on the variable's old
    /// value (directly or through another variable the body sets)? Such a
    /// loop polls a state (`status=$(echo "$(request)" | parse)` until it is
    /// no longer `pending`); a walk computes the next value from the last one.
    fn assigned_value_waits(&self, variable: &str, value: &str, scope: &WaitScope<'_>) -> bool {
        if self.value_waits(value) {
            return true;
        }
        let runs_command = value.contains("$(") || value.contains('`');
        scope.paced
            && runs_command
            && !self.mentions_time(value)
            && !references(value, variable)
            && scope.assigned.iter().all(|(other, other_value)| {
                *other == variable
                    || !references(value, other)
                    || !references(other_value, variable)
            })
    }

    fn value_waits(&self, value: &str) -> bool {
        // `status=$?` after `wait "$pid"`, and `count=$($count+1)`, which runs a
        // command instead of counting: neither is data the loop advances.
        if value == "$?" || is_broken_arithmetic(value) {
            return true;
        }
        first_command_of(value).is_some_and(|name| {
            !matches!(
                name,
                "echo"
                    | "printf"
                    | "expr"
                    | "basename"
                    | "dirname"
                    | "date"
                    | "seq"
                    | "sed"
                    | "awk"
                    | "cut"
                    | "tr"
                    | "wc"
                    | "head"
                    | "sort"
                    | "uniq"
                    | "realpath"
                    | "readlink"
                    | "jq"
                    | "grep"
                    | "ls"
                    | "pwd"
            ) && self.function_named(name).is_none()
        })
    }

    // ---- helpers that end the script ---------------------------------------

    /// Does calling `name` always end the script? `Some(whether it prints why)`.
    fn helper_exits(&self, name: &str) -> Option<bool> {
        if is_fatal_command(name) {
            return Some(true);
        }
        if self.function_named(name).is_some() {
            return self.function_exits(name);
        }
        if let Some((_, announces)) = self.sourced_exits.iter().find(|(helper, _)| helper == name) {
            return Some(*announces);
        }
        is_fatal_by_name(name).then_some(true)
    }

    /// Does the function `name` of this file end the script on every path?
    fn function_exits(&self, name: &str) -> Option<bool> {
        let (index, body) = self.function_named(name)?;
        let key = self.functions()[index].0;
        if let Some(answer) = self.exit_answers.borrow().get(key) {
            // `None` while it is being judged: a recursive call proves nothing.
            return answer.flatten();
        }
        self.exit_answers.borrow_mut().insert(key, None);
        let answer = match body {
            Command::Group(list)
                if self.spend(1 + body_size(list)) && self.list_always_exits(list) =>
            {
                Some(self.list_announces(list))
            }
            _ => None,
        };
        self.exit_answers.borrow_mut().insert(key, Some(answer));
        answer
    }

    /// Does `list` reach an `exit` (or a helper that exits) on every path?
    fn list_always_exits(&self, list: &[AndOr]) -> bool {
        list.iter().any(|and_or| {
            and_or.connectors.is_empty()
                && matches!(and_or.pipelines.first(), Some(pipeline)
                    if pipeline.commands.len() == 1 && self.command_always_exits(&pipeline.commands[0]))
        })
    }

    fn command_always_exits(&self, command: &Command) -> bool {
        match command {
            Command::Simple(simple) => match self.command_name(simple).as_deref() {
                Some("exit") => true,
                Some("exec") => self.execs_a_program(simple),
                Some(name) => self.helper_exits(name).is_some(),
                None => false,
            },
            Command::If(chain) => {
                chain
                    .otherwise
                    .as_ref()
                    .is_some_and(|otherwise| self.list_always_exits(otherwise))
                    && chain
                        .branches
                        .iter()
                        .all(|(_, body)| self.list_always_exits(body))
            }
            Command::Group(list) => self.list_always_exits(list),
            _ => false,
        }
    }

    /// `exec prog …` replaces the shell and never comes back; `exec >log`
    /// or `exec 9>"$lock"` only redirects.
    fn execs_a_program(&self, simple: &Simple) -> bool {
        !self.arguments(simple).is_empty()
    }

    /// Does calling `name`, a function of this file, print something?
    fn function_announces(&self, name: &str) -> bool {
        let Some((index, body)) = self.function_named(name) else {
            return false;
        };
        let key = self.functions()[index].0;
        if let Some(answer) = self.announce_answers.borrow().get(key) {
            return answer.unwrap_or(false);
        }
        self.announce_answers.borrow_mut().insert(key, None);
        let answer = match body {
            Command::Group(list) => self.spend(1 + body_size(list)) && self.list_announces(list),
            _ => false,
        };
        self.announce_answers.borrow_mut().insert(key, Some(answer));
        answer
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

    /// An option loop: every turn consumes an argument (`shift`) or leaves, and
    /// the loop looks at the arguments (`$1`, `$#`, or a variable just taken
    /// from `$1`), so running out of them ends it: `while :; do case $1 in -v)
    /// …; shift ;; *) break ;; esac; done`, `flag=$1; shift; case $flag …`, or
    /// a `case` with no default arm and a `shift` after it.
    fn consumes_arguments(&self, lp: &Loop) -> bool {
        let body = &lp.body;
        let mut subjects: Vec<Cow<str>> =
            vec![Cow::Borrowed("1"), Cow::Borrowed("#"), Cow::Borrowed("@")];
        for and_or in body {
            for command in and_or
                .pipelines
                .iter()
                .flat_map(|pipeline| &pipeline.commands)
            {
                if let Command::Simple(simple) = command {
                    for word in simple.words.iter().chain(self.arguments(simple)) {
                        if let Some((name, value)) = assignment(self.raw(word)) {
                            if matches!(&*literal(value), "$1" | "${1}" | "${1:-}" | "${1-}") {
                                subjects.push(Cow::Borrowed(name));
                            }
                        }
                    }
                }
            }
        }
        let looks_at_arguments = |text: &str| subjects.iter().any(|subject| expands(text, subject));
        let header = self.span(lp.keyword, lp.header_end);
        (looks_at_arguments(header) || self.exhaustion_leaves(body, &looks_at_arguments))
            && self.shifts_or_leaves(body)
    }

    /// Once the arguments run out, does the body leave: a test of them that
    /// leaves, a `case` whose arm for an empty word leaves, `shift || break`,
    /// or a bare `shift` under `set -e`?
    fn exhaustion_leaves(&self, body: &[AndOr], looks_at_arguments: &dyn Fn(&str) -> bool) -> bool {
        let tests_arguments = |pipeline: &Pipeline| {
            pipeline.commands.iter().any(|command| match command {
                Command::Simple(simple) => simple
                    .words
                    .iter()
                    .any(|word| looks_at_arguments(self.raw(word))),
                Command::Arithmetic(start, end) => self.span(*start, *end).contains('#'),
                _ => false,
            })
        };
        body.iter().any(|and_or| {
            let pipelines = &and_or.pipelines;
            let shifts = |pipeline: &Pipeline| {
                matches!(pipeline.commands.as_ref(), [Command::Simple(simple)]
                    if self.command_name(simple).as_deref() == Some("shift"))
            };
            let chained = pipelines
                .first()
                .is_some_and(|first| tests_arguments(first) || shifts(first))
                && pipelines[1..]
                    .iter()
                    .any(|pipeline| self.pipeline_leaves(pipeline, 0));
            let strict_shift = pipelines.len() == 1 && shifts(&pipelines[0]) && self.errexit();
            chained
                || strict_shift
                || pipelines
                    .iter()
                    .flat_map(|pipeline| &pipeline.commands)
                    .any(|command| match command {
                        Command::If(chain) => chain.branches.iter().any(|(condition, branch)| {
                            condition
                                .iter()
                                .flat_map(|and_or| &and_or.pipelines)
                                .any(tests_arguments)
                                && self.list_leaves(branch, 0)
                        }),
                        Command::Case(case) if looks_at_arguments(self.raw(&case.subject)) => case
                            .patterns
                            .iter()
                            .zip(&case.arms)
                            .find(|(patterns, _)| {
                                patterns.iter().any(|pattern| {
                                    let pattern = literal(self.raw(pattern));
                                    pattern.is_empty() || pattern.bytes().all(|byte| byte == b'*')
                                })
                            })
                            .is_some_and(|(_, arm)| self.list_leaves(arm, 0)),
                        _ => false,
                    })
        })
    }

    /// Does every path through `list` run `shift` or leave the loop?
    fn shifts_or_leaves(&self, list: &[AndOr]) -> bool {
        list.iter().any(|and_or| {
            let Some(first) = and_or.pipelines.first() else {
                return false;
            };
            let [command] = first.commands.as_ref() else {
                return false;
            };
            let alone = and_or.pipelines.len() == 1;
            match command {
                Command::Simple(simple) => {
                    self.command_name(simple).as_deref() == Some("shift")
                        || (alone && self.command_jumps(command, 0, Jump::Leave))
                }
                Command::Group(body) => self.shifts_or_leaves(body),
                Command::If(chain) => {
                    chain
                        .otherwise
                        .as_ref()
                        .is_some_and(|otherwise| self.shifts_or_leaves(otherwise))
                        && chain
                            .branches
                            .iter()
                            .all(|(_, body)| self.shifts_or_leaves(body))
                }
                Command::Case(case) => {
                    // With no default arm, an argument that matches nothing
                    // falls through to what follows the `case`.
                    let has_default = case.patterns.iter().any(|patterns| {
                        patterns.iter().any(|pattern| {
                            literal(self.raw(pattern)).bytes().all(|byte| byte == b'*')
                        })
                    });
                    has_default && case.arms.iter().all(|arm| self.shifts_or_leaves(arm))
                }
                _ => false,
            }
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
        truth_of(&values)
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

    /// The loop's counters, judged by data flow: names its `for ((…))` step,
    /// its condition, or every path through its body advances, and that
    /// nothing in the body sets back (`n=0`). A counter advanced only on
    /// success, or only by an inner loop, stops nothing.
    fn counters(&self, lp: &Loop) -> Vec<&'t str> {
        let mut names = Vec::new();
        if let Some(parts) = lp.arithmetic {
            for (start, end) in [parts[0], parts[2]] {
                arithmetic_updates(self.span(start, end), &mut names);
            }
        }
        self.list_increments(&lp.condition, &mut names);
        self.every_path_increments(&lp.body, &mut names);
        let mut resets = Vec::new();
        self.list_resets(&lp.body, &mut resets);
        names.retain(|name| !resets.contains(name));
        names
    }

    /// Adds the names advanced on every path through `list` that stays in
    /// the loop; true when every path through it leaves the loop.
    fn every_path_increments(&self, list: &[AndOr], names: &mut Vec<&'t str>) -> bool {
        for and_or in list {
            let Some(first) = and_or.pipelines.first() else {
                continue;
            };
            let alone = and_or.pipelines.len() == 1;
            if let [command] = first.commands.as_ref() {
                match command {
                    Command::Simple(simple) => {
                        self.simple_increments(simple, names);
                        if alone && self.command_jumps(command, 0, Jump::Leave) {
                            return true;
                        }
                    }
                    Command::Arithmetic(start, end) => {
                        arithmetic_updates(self.span(*start, *end), names)
                    }
                    Command::Group(body) => {
                        if self.every_path_increments(body, names) && alone {
                            return true;
                        }
                    }
                    Command::If(chain) => {
                        if let Some((condition, _)) = chain.branches.first() {
                            self.every_path_increments(condition, names);
                        }
                        let bodies = chain
                            .branches
                            .iter()
                            .map(|(_, body)| Some(body))
                            .chain([chain.otherwise.as_ref()]);
                        if self.common_increments(bodies, names) && alone {
                            return true;
                        }
                    }
                    Command::Case(case) => {
                        let has_default = case.patterns.iter().any(|patterns| {
                            patterns.iter().any(|pattern| {
                                literal(self.raw(pattern)).bytes().all(|byte| byte == b'*')
                            })
                        });
                        let arms = case
                            .arms
                            .iter()
                            .map(Some)
                            .chain((!has_default).then_some(None));
                        if self.common_increments(arms, names) && alone {
                            return true;
                        }
                    }
                    Command::Loop(_) | Command::Function(_) => {}
                }
            }
            // After a `continue`, some turns skip the rest of the body.
            if and_or
                .pipelines
                .iter()
                .flat_map(|pipeline| &pipeline.commands)
                .any(|command| self.command_jumps(command, 0, Jump::Continue))
            {
                return false;
            }
        }
        false
    }

    /// Adds the names every branch that stays in the loop advances (a missing
    /// branch, `None`, advances nothing); true when every branch leaves.
    fn common_increments<'b>(
        &self,
        branches: impl Iterator<Item = Option<&'b List>>,
        names: &mut Vec<&'t str>,
    ) -> bool {
        let mut common: Option<Vec<&'t str>> = None;
        for branch in branches {
            let mut own = Vec::new();
            if let Some(branch) = branch {
                if self.every_path_increments(branch, &mut own) {
                    continue;
                }
            }
            common = Some(match common {
                None => own,
                Some(known) => known
                    .into_iter()
                    .filter(|name| own.contains(name))
                    .collect(),
            });
        }
        match common {
            None => true,
            Some(common) => {
                names.extend(common);
                false
            }
        }
    }

    /// Names the body sets to a value that does not build on their own (`n=0`).
    fn list_resets(&self, list: &[AndOr], names: &mut Vec<&'t str>) {
        self.for_each_assignment(list, false, &mut |assigned| {
            let reads_itself = if assigned.arithmetic {
                identifiers(assigned.value).any(|(_, other)| other == assigned.name)
            } else {
                references(assigned.value, assigned.name)
            };
            if !assigned.compound && !reads_itself {
                names.push(assigned.name);
            }
        });
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
                    // `count=$($count+1)` runs a command named `3+1`: it advances nothing.
                    if (appends || references(value, variable)) && !is_broken_arithmetic(value) {
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

    /// Does a test of a counter or the clock in the loop's condition end the
    /// loop by itself? The last and-or list decides: `while busy && [ $n -lt
    /// 9 ]` and `until ready || [ $n -ge 9 ]` end on the test, but `while
    /// busy || [ $n -lt 9 ]` goes on while `busy` holds, however far `n` runs.
    fn condition_has_guard(&self, lp: &Loop, counters: &[&str]) -> bool {
        let Some((last, before)) = lp.condition.split_last() else {
            return false;
        };
        if !last
            .pipelines
            .iter()
            .any(|pipeline| self.pipeline_is_guard_test(pipeline, counters))
        {
            return self.list_has_guard_test(before, counters);
        }
        let ending = if lp.kind == LoopKind::Until {
            Connector::Or
        } else {
            Connector::And
        };
        let joined = |connector: Connector| last.connectors.contains(&connector);
        // Mixed connectors are read as a guard, as before.
        joined(ending) || !joined(other_connector(ending))
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
        let (index, body) = self.function_named(&name)?;
        let Command::Group(list) = body else {
            return None;
        };
        // Many calls of one function from the same loop, or from loops with
        // the same counters, are judged once.
        let key = (index, incremented.join(" "));
        if let Some(answer) = self.function_answers.borrow().get(&key) {
            return *answer;
        }
        if !self.spend(1 + body_size(list)) {
            return None;
        }
        let answer = self.judge_function(list, incremented);
        self.function_answers.borrow_mut().insert(key, answer);
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

    /// The last definition of the function `name` in this file, with its index.
    fn function_named(&self, name: &str) -> Option<(usize, &'t Command)> {
        let index = *self
            .function_index
            .get_or_init(|| {
                self.functions()
                    .iter()
                    .enumerate()
                    .map(|(index, (name, _))| (*name, index))
                    .collect()
            })
            .get(name)?;
        Some((index, self.functions()[index].1))
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

    /// Right after the loop, does the same kind of test (or, after a wait,
    /// a retest of what it waited for) lead to a message?
    /// (`done; if (( SECONDS >= deadline )); then echo "timed out" >&2; exit 1; fi`,
    /// `done; curl -sf "$url" || { echo "never came up" >&2; exit 1; }`)
    fn explains_after(&self, after: &[AndOr], counters: &[&str], waited: Option<&str>) -> bool {
        let is_test = |pipeline: &Pipeline| {
            self.pipeline_is_guard_test(pipeline, counters)
                || self.pipeline_tests_flag(pipeline, counters)
                || waited.is_some_and(|name| {
                    pipeline.commands.iter().any(|command| {
                        matches!(command, Command::Simple(simple)
                            if self.command_key(simple).is_some_and(|found| found == name))
                    })
                })
        };
        let list_tests = |list: &[AndOr]| {
            list.iter()
                .flat_map(|and_or| &and_or.pipelines)
                .any(&is_test)
        };
        after.iter().take(2).any(|and_or| {
            let pipelines = &and_or.pipelines;
            let chained = pipelines.iter().position(is_test).is_some_and(|test| {
                pipelines[test + 1..]
                    .iter()
                    .any(|pipeline| self.pipeline_announces(pipeline))
            });
            let branched = pipelines
                .iter()
                .flat_map(|pipeline| &pipeline.commands)
                .any(|command| match command {
                    Command::If(chain) => {
                        let tested = chain
                            .branches
                            .iter()
                            .any(|(condition, _)| list_tests(condition));
                        tested
                            && (chain
                                .branches
                                .iter()
                                .any(|(_, body)| self.list_announces(body))
                                || chain
                                    .otherwise
                                    .as_ref()
                                    .is_some_and(|otherwise| self.list_announces(otherwise)))
                    }
                    _ => false,
                });
            chained || branched
        })
    }

    /// A test of a flag the loop sets: `$timed_out` run as a command (`true`
    /// or `false`), or `[ -n "$failed" ]`, `[[ $failed ]]`.
    fn pipeline_tests_flag(&self, pipeline: &Pipeline, names: &[&str]) -> bool {
        let [Command::Simple(simple)] = &*pipeline.commands else {
            return false;
        };
        let Some(index) = self.command_index(simple) else {
            return false;
        };
        let command = self.raw(&simple.words[index]);
        let bare = command.trim_matches('"');
        if let Some(name) = bare
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .or_else(|| bare.strip_prefix('$'))
        {
            return names.contains(&name);
        }
        matches!(command, "[" | "[[" | "test")
            && self
                .arguments(simple)
                .iter()
                .any(|word| names.iter().any(|name| references(self.raw(word), name)))
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
                    (Jump::Leave, Some("exec")) => self.execs_a_program(simple),
                    (Jump::Leave, Some(name)) => self.helper_exits(name).is_some(),
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
                            is_message_command(&name)
                                || self.helper_exits(&name) == Some(true)
                                || self.function_announces(&name)
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

    /// Every assignment in `list` and the functions it defines, as `(name, value)`.
    fn collect_assignments(&self, list: &[AndOr], assignments: &mut Vec<(&'t str, &'t str)>) {
        self.for_each_assignment(list, true, &mut |assigned| {
            assignments.push((assigned.name, assigned.value));
        });
    }

    /// Calls `visit` on every assignment `list` runs, in nested lists and
    /// loops too, and in the bodies of functions it defines when
    /// `into_functions`: `name=value` before a command or as an argument of
    /// `local`/`declare`/`typeset`/`export`/`readonly`, `name+=value`, and
    /// `(( name = value ))` or `(( name op= value ))`.
    fn for_each_assignment(
        &self,
        list: &[AndOr],
        into_functions: bool,
        visit: &mut dyn FnMut(Assignment<'t>),
    ) {
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
                            let raw = self.raw(word);
                            if let Some((name, value)) = assignment(raw) {
                                visit(Assignment {
                                    name,
                                    value,
                                    compound: raw.as_bytes().get(name.len()) == Some(&b'+'),
                                    arithmetic: false,
                                });
                            }
                        }
                    }
                }
                Command::Arithmetic(start, end) => {
                    // `(( deadline = SECONDS + 60 ))`, `(( n += 1 ))`
                    let text = self.span(*start, *end);
                    if let Some(equals) = text.find('=') {
                        let value = &text[equals + 1..];
                        let before = text[..equals].trim_end();
                        if !value.starts_with('=') {
                            if let Some((_, name)) = identifiers(before).last() {
                                visit(Assignment {
                                    name,
                                    value,
                                    compound: before.ends_with([
                                        '+', '-', '*', '/', '%', '<', '>', '!', '&', '|', '^',
                                    ]),
                                    arithmetic: true,
                                });
                            }
                        }
                    }
                }
                Command::Loop(inner) => {
                    self.for_each_assignment(&inner.condition, into_functions, visit);
                    self.for_each_assignment(&inner.body, into_functions, visit);
                }
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    for list in command.branch_lists() {
                        self.for_each_assignment(list, into_functions, visit);
                    }
                }
                Command::Function(function) => {
                    if let (true, Command::Group(list)) = (into_functions, &function.body) {
                        self.for_each_assignment(list, into_functions, visit);
                    }
                }
            }
        }
    }
}

/// One assignment the script makes, as [`Analyzer::for_each_assignment`] finds it.
struct Assignment<'t> {
    name: &'t str,
    /// The text after `=`, as written.
    value: &'t str,
    /// `name+=value` or `(( name op= value ))`: builds on the old value.
    compound: bool,
    /// Inside `(( … ))`, where names are read without `$`.
    arithmetic: bool,
}

/// How many and-or lists `list` holds at its top level: the work of one pass over it.
fn body_size(list: &[AndOr]) -> usize {
    list.len()
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

/// Helpers not defined in sight whose names say they end the script:
/// `error_exit`, `build_fail`, `json_throw`, `die_with`.
fn is_fatal_by_name(name: &str) -> bool {
    matches!(
        name,
        "error_exit"
            | "err_exit"
            | "exit_error"
            | "exit_with_error"
            | "fail_exit"
            | "usage_exit"
            | "bail_out"
    ) || ["_fail", "_throw", "_die", "_fatal", "_abort"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || ["die_", "fatal_", "abort_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// `$($count+1)`: a command substitution whose command is a variable, written
/// where arithmetic `$((…))` was meant.
fn is_broken_arithmetic(value: &str) -> bool {
    let value = value.trim_start_matches('"');
    value.starts_with("$(") && !value.starts_with("$((") && value[2..].trim_start().starts_with('$')
}

/// The command a `$(…)` or backtick value starts with: `kubectl` in `"$(kubectl get …)"`.
fn first_command_of(value: &str) -> Option<&str> {
    let trimmed = value.trim_start_matches('"');
    let inner = trimmed
        .strip_prefix("$(")
        .or_else(|| trimmed.strip_prefix('`'))?;
    if inner.starts_with('(') {
        return None;
    }
    let word = inner
        .trim_start()
        .split([' ', '\t', ')', '`', '|', ';', '"'])
        .next()?;
    let name = basename(word);
    (!name.is_empty()).then_some(name)
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

/// `&&` for `||` and the reverse.
fn other_connector(connector: Connector) -> Connector {
    match connector {
        Connector::And => Connector::Or,
        Connector::Or => Connector::And,
    }
}

/// The command to name for a wait on `variable`: the first one its value
/// runs, or, when that only passes data on (`echo "$result" | parse`), the
/// first one run by a variable of the body that the value reads.
fn source_command<'a>(
    variable: &'a str,
    value: &'a str,
    assigned: &[(&'a str, &'a str)],
) -> &'a str {
    let first = first_command_of(value);
    if matches!(first, None | Some("echo" | "printf")) {
        let upstream = assigned.iter().find_map(|(other, other_value)| {
            (*other != variable && references(value, other))
                .then(|| first_command_of(other_value))
                .flatten()
        });
        if let Some(name) = upstream {
            return name;
        }
    }
    first.unwrap_or(variable)
}

/// Does `text` hold `$subject` or `${subject` (a prefix of a longer name counts)?
fn expands(text: &str, subject: &str) -> bool {
    text.match_indices('$').any(|(dollar, _)| {
        let rest = &text[dollar + 1..];
        rest.strip_prefix('{').unwrap_or(rest).starts_with(subject)
    })
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

/// Evaluates the operands of `[ … ]` once they are all known values.
fn truth_of(values: &[&str]) -> Option<bool> {
    match values {
        [] => Some(false),
        [value] => Some(!value.is_empty()),
        ["!", value] => Some(value.is_empty()),
        ["-n", value] => Some(!value.is_empty()),
        ["-z", value] => Some(value.is_empty()),
        ["!", rest @ ..] if rest.len() == 3 => truth_of(rest).map(|truth| !truth),
        [left, operator, right] => match *operator {
            "=" | "==" => Some(left == right),
            "!=" => Some(left != right),
            "=~" if left.is_empty() => accepts_empty(right),
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

/// Does the regular expression match the empty string? Known only for
/// plain anchored patterns (`^[yY]$`, `^yes$`): `None` when it has
/// repetition or alternatives.
fn accepts_empty(pattern: &str) -> Option<bool> {
    let inner = pattern.strip_prefix('^').unwrap_or(pattern);
    let inner = inner.strip_suffix('$').unwrap_or(inner);
    if inner.is_empty() {
        return Some(true);
    }
    if inner.contains(['*', '?', '|', '(', '{']) {
        return None;
    }
    Some(false)
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
