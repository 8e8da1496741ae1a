//! Diagnostics: whether the path that gives up says why (an `echo`, `printf`,
//! `logger` or `>&2` on it, or a test of the same counter right after the loop).

use std::borrow::Cow;

use super::{body_size, references, Analyzer};
use crate::validate::loops::shell::syntax::{
    commands_in, commands_of, pipelines_of, AndOr, Command, Connector, Pipeline, Redirect, Simple,
};
use crate::validate::loops::shell::words::{basename, literal};

impl<'t> Analyzer<'t> {
    /// When success leaves the function or the script, the statements after
    /// the loop run only on give-up: does one of them print before the path
    /// leaves (`local msg; msg="limit of $n polls exceeded"; warn "$msg"`)?
    pub(super) fn give_up_path_announces(&self, after: &[AndOr]) -> bool {
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
    pub(super) fn announces_every_failing_pass(&self, body: &[AndOr], counters: &[&str]) -> bool {
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

    /// Is `name` called somewhere in the file, and does every call print
    /// when it fails: `name || echo FAIL`, `name; [ $? = 0 ] && echo OK ||
    /// echo FAIL`, `if ! name; then echo …`, `if name; then …; else echo …`?
    /// Then a helper whose wait gives up with a bare `return 1` is reported
    /// by its callers.
    pub(super) fn every_call_reports_failure(&self, name: &str) -> bool {
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
            for command in commands_in(pipelines) {
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

    /// Does the body print on a test of its counter or deadline, even one
    /// that does not leave (`if [ $n -eq 0 ]; then echo "did not stop in time"; fi`
    /// on the last pass of a countdown)?
    pub(super) fn announces_on_a_test(&self, list: &[AndOr], counters: &[&str]) -> bool {
        commands_of(list).any(|command| match command {
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

    /// Does calling `name`, a function of this file, print something?
    pub(super) fn function_announces(&self, name: &str) -> bool {
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

    /// Does a guard function called in `pipelines` print a message itself?
    pub(super) fn guard_function_announces(
        &self,
        pipelines: &[Pipeline],
        incremented: &[&str],
    ) -> bool {
        commands_in(pipelines).any(|command| match command {
            Command::Simple(simple) => self
                .function_guard(simple, incremented)
                .is_some_and(|function| function.announced),
            _ => false,
        })
    }

    /// Right after the loop, does the same kind of test (or, after a wait,
    /// a retest of what it waited for) lead to a message?
    /// (`done; if (( SECONDS >= deadline )); then echo "timed out" >&2; exit 1; fi`,
    /// `done; curl -sf "$url" || { echo "never came up" >&2; exit 1; }`)
    pub(super) fn explains_after(
        &self,
        after: &[AndOr],
        counters: &[&str],
        waited: Option<&str>,
    ) -> bool {
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
        let list_tests = |list: &[AndOr]| pipelines_of(list).any(&is_test);
        after.iter().take(2).any(|and_or| {
            let pipelines = &and_or.pipelines;
            let chained = pipelines.iter().position(is_test).is_some_and(|test| {
                pipelines[test + 1..]
                    .iter()
                    .any(|pipeline| self.pipeline_announces(pipeline))
            });
            let branched = commands_in(pipelines).any(|command| match command {
                Command::If(chain) => {
                    let tested = chain
                        .branches
                        .iter()
                        .any(|(condition, _)| list_tests(condition));
                    tested && chain.bodies().any(|body| self.list_announces(body))
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

    /// Does this print something: `echo`, `printf`, `logger`, a `die`-style
    /// helper, or anything sent to standard error?
    pub(super) fn pipeline_announces(&self, pipeline: &Pipeline) -> bool {
        pipeline
            .commands
            .iter()
            .any(|command| self.command_announces(command))
    }

    pub(super) fn list_announces(&self, list: &[AndOr]) -> bool {
        pipelines_of(list).any(|pipeline| self.pipeline_announces(pipeline))
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
                                || self.runs_message_script(simple, &name)
                        }))
            }
            Command::Loop(lp) => self.list_announces(&lp.body),
            Command::If(_) | Command::Case(_) | Command::Group(_) => {
                command.branch_lists().any(|list| self.list_announces(list))
            }
            Command::Arithmetic(..) | Command::Function(_) => false,
        }
    }

    /// `bash /notify.sh "ClamAV did not start"`: a shell running a script
    /// whose name says it reports, like a helper of that name.
    fn runs_message_script(&self, simple: &Simple, name: &str) -> bool {
        matches!(name, "sh" | "bash" | "dash" | "ksh" | "zsh")
            && self
                .arguments(simple)
                .iter()
                .map(|word| literal(self.raw(word)))
                .find(|argument| !argument.starts_with('-'))
                .is_some_and(|script| {
                    basename(&script)
                        .strip_suffix(".sh")
                        .is_some_and(is_message_command)
                })
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
}

/// Commands that print a message. Hyphens count as underscores: bash
/// function names may hold them (`log-warn`, `log_warn`).
pub(super) fn is_message_command(name: &str) -> bool {
    let name = &*conventional_name(name);
    // Debug, verbose and trace output is off in normal runs: it tells nobody.
    if ["debug", "verbose", "trace"]
        .iter()
        .any(|level| name.contains(level))
    {
        return false;
    }
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

/// A helper's name as the naming conventions read it: `fail-now` is
/// `fail_now`, `log-info` is `log_info`.
pub(super) fn conventional_name(name: &str) -> Cow<'_, str> {
    if name.contains('-') {
        Cow::Owned(name.replace('-', "_"))
    } else {
        Cow::Borrowed(name)
    }
}

/// `text`, cut to `limit` characters with an ellipsis.
pub(super) fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
