//! Loop-by-loop reasoning over a parsed script: the walk over its commands
//! and the verdict on each loop. Why a loop cannot end by itself is in
//! `classify` and `waits`, what stops it in `guards` and `exits`, whether its
//! give-up says why in `messages`, and code run from strings in `embedded`.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;

use super::syntax::{
    commands_of, AndOr, Command, HeredocBody, If, List, Loop, LoopKind, Pipeline, Redirect, Simple,
    Word,
};
use super::words::{basename, identifiers, literal};
use crate::validate::diagnostic::{FindingKind, Rule};

mod classify;
mod embedded;
mod exits;
mod guards;
mod messages;
mod waits;

use messages::{is_message_command, shorten};

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
    /// Variables the body sets only as the outside world answers: inside an
    /// `if` (or after a `&&`/`||`) whose test waits, with what it waits for.
    polled: Vec<(&'t str, String)>,
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
        for command in commands_of(self.program) {
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
        paths
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

    /// Does `list` run `sleep` between its own passes: anywhere, in its `for`
    /// loops too, but not only inside an inner `while`/`until`, whose sleep
    /// paces that inner wait (an outer loop over items that waits on each is
    /// no retry)?
    fn list_sleeps(&self, list: &[AndOr]) -> bool {
        commands_of(list).any(|command| match command {
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

    /// The loop's first line as written, for messages: `while true`.
    fn header(&self, lp: &Loop) -> String {
        // Built in one string: this runs once per finding, and a file can hold
        // tens of thousands.
        let raw = self.span(lp.keyword, lp.header_end);
        let mut header = String::with_capacity(raw.len().min(48));
        for part in raw.split_whitespace() {
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str(part);
        }
        let kept = header.trim_end_matches(';').trim_end().len();
        header.truncate(kept);
        if let Some((cut, _)) = header.char_indices().nth(40) {
            header.truncate(cut);
            header.push('…');
        }
        header
    }
}

/// How many and-or lists `list` holds at its top level: the work of one pass over it.
fn body_size(list: &[AndOr]) -> usize {
    list.len()
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

/// Does `value` read the variable `name` (`$name`, `${name…}`, or bare inside
/// `$((…))`, `$[…]` or an `expr` call)?
fn references(value: &str, name: &str) -> bool {
    let arithmetic = value.contains("((") || value.contains("$[") || value.contains("expr");
    identifiers(value).any(|(start, identifier)| {
        identifier == name
            && (arithmetic || value[..start].ends_with('$') || value[..start].ends_with("${"))
    })
}
