//! Exits: `break`, `continue`, `exit`, `return`, and the script's own functions
//! (or a sourced file's) that always end it.

use std::borrow::Cow;

use super::messages::conventional_name;
use super::{body_size, Analyzer, Jump};
use crate::validate::loops::shell::syntax::{
    commands_in, commands_of, AndOr, Command, Connector, Pipeline, Simple,
};
use crate::validate::loops::shell::words::literal;

impl<'t> Analyzer<'t> {
    /// Is `and_or` a plain `return N` with a failing status?
    pub(super) fn returns_failure(&self, and_or: &AndOr) -> bool {
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

    /// Does `list` hold a `break` that reaches the loop `depth` levels up?
    pub(super) fn list_breaks(&self, list: &[AndOr], depth: usize) -> bool {
        commands_of(list).any(|command| match command {
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

    /// Does `list` hold an `exit`/`return` with a failing (or unknown) status,
    /// or a helper that ends the script?
    pub(super) fn list_fails(&self, list: &[AndOr]) -> bool {
        commands_of(list).any(|command| match command {
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
    pub(super) fn has_other_exit(&self, list: &[AndOr], depth: usize, counters: &[&str]) -> bool {
        list.iter().any(|and_or| {
            let pipelines = &and_or.pipelines;
            // `probe || die "gone"` fails loudly on its own: a failure, not the
            // early success a retry leaves by.
            let chained = (1..pipelines.len()).any(|index| {
                self.pipeline_leaves(&pipelines[index], depth)
                    && !(and_or.connectors[index - 1] == Connector::Or
                        && self.pipeline_announces(&pipelines[index]))
                    && !pipelines[..index]
                        .iter()
                        .any(|pipeline| self.pipeline_is_guard_test(pipeline, counters))
            });
            chained
                || commands_in(pipelines).any(|command| match command {
                    Command::Simple(simple) => {
                        pipelines.len() == 1
                            && self.command_jumps(command, depth, Jump::Leave)
                            && self
                                .command_name(simple)
                                .is_none_or(|name| self.helper_exits(&name) != Some(true))
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

    /// Does calling `name` always end the script? `Some(whether it prints why)`.
    pub(super) fn helper_exits(&self, name: &str) -> Option<bool> {
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
    pub(super) fn function_exits(&self, name: &str) -> Option<bool> {
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
            Command::If(chain) => chain.on_every_path(|body| self.list_always_exits(body)),
            Command::Group(list) => self.list_always_exits(list),
            _ => false,
        }
    }

    /// `exec prog …` replaces the shell and never comes back; `exec >log`
    /// or `exec 9>"$lock"` only redirects.
    fn execs_a_program(&self, simple: &Simple) -> bool {
        !self.arguments(simple).is_empty()
    }

    pub(super) fn functions(&self) -> &[(&'t str, &'t Command)] {
        self.functions.get_or_init(|| {
            let mut functions = Vec::new();
            self.collect_functions(self.program, &mut functions);
            functions
        })
    }

    /// The last definition of the function `name` in this file, with its index.
    pub(super) fn function_named(&self, name: &str) -> Option<(usize, &'t Command)> {
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
        for command in commands_of(list) {
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

    /// Does this leave the checked loop, from `depth` loops below it?
    pub(super) fn pipeline_leaves(&self, pipeline: &Pipeline, depth: usize) -> bool {
        pipeline
            .commands
            .iter()
            .any(|command| self.command_jumps(command, depth, Jump::Leave))
    }

    pub(super) fn list_leaves(&self, list: &[AndOr], depth: usize) -> bool {
        self.list_jumps(list, depth, Jump::Leave)
    }

    pub(super) fn list_jumps(&self, list: &[AndOr], depth: usize, jump: Jump) -> bool {
        commands_of(list).any(|command| self.command_jumps(command, depth, jump))
    }

    /// Does `command`, `depth` loops below the checked loop, leave it
    /// (`break N` reaching it, `exit`, `return`, `die`) or restart it (`continue N`)?
    pub(super) fn command_jumps(&self, command: &Command, depth: usize, jump: Jump) -> bool {
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
}

/// Helpers that by convention print a message and exit.
fn is_fatal_command(name: &str) -> bool {
    matches!(
        &*conventional_name(name),
        "die" | "fail" | "fatal" | "abort" | "bail" | "panic"
    )
}

/// Helpers not defined in sight whose names say they end the script:
/// `error_exit`, `build_fail`, `json_throw`, `die_with`, `fail-now`.
fn is_fatal_by_name(name: &str) -> bool {
    let name = &*conventional_name(name);
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
        || ["die_", "fatal_", "abort_", "fail_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
}
