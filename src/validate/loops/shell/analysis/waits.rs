//! Waits on the outside world: a condition that depends on a command's success,
//! a file, a port or a process, told apart from a walk over data.

use super::messages::shorten;
use super::{body_size, first_command_of, is_broken_arithmetic, references, Analyzer, WaitScope};
use crate::validate::loops::shell::syntax::{
    commands_in, commands_of, AndOr, Command, Loop, Pipeline, Simple, Word,
};
use crate::validate::loops::shell::words::literal;

impl<'t> Analyzer<'t> {
    /// What a `while`/`until` condition waits for, when its result depends on
    /// the outside world (a command's success, a file, a port), quoted for a
    /// message. A condition over variables the body changes walks data instead.
    pub(super) fn condition_waits(&self, lp: &Loop) -> Option<String> {
        let (last, before) = lp.condition.split_last()?;
        let mut assigned = Vec::new();
        // `while port=$((RANDOM …)); port-used "$port"`: what the condition
        // sets before its test changes on every pass, like the body's own.
        self.collect_assignments(before, &mut assigned);
        self.collect_assignments(&lp.body, &mut assigned);
        let mut helpers = Vec::new();
        self.collect_called_assignments(&lp.body, &mut helpers);
        let mut scope = WaitScope {
            assigned,
            helpers,
            paced: self.list_sleeps(&lp.body),
            polled: Vec::new(),
        };
        if scope.paced {
            let mut polled = Vec::new();
            self.collect_polled(&lp.body, &scope, &mut polled);
            // A count stepped one way only is a cap, whichever test guards its
            // step (`if [ "$code" -ge 500 ]; then tries=$((tries + 1))`); a flag
            // or a tally that moves both ways is the polled state.
            let mut moved = Vec::new();
            self.list_resets(&lp.body, &mut moved);
            self.list_unsteady_steps(&lp.body, &mut moved);
            polled.retain(|(variable, _)| moved.contains(variable));
            scope.polled = polled;
        }
        last.pipelines
            .iter()
            .find_map(|pipeline| self.pipeline_waits(pipeline, &scope, 0))
    }

    /// The variables `list` sets only when a test of the outside world says
    /// so: `if [ -n "$(mysql -e …)" ]; then ready=yes; fi`, `probe &&
    /// errors=$((errors - 1))`. A loop over such a flag or tally waits for
    /// that test, however the flag is spelt.
    fn collect_polled(
        &self,
        list: &[AndOr],
        scope: &WaitScope<'t>,
        polled: &mut Vec<(&'t str, String)>,
    ) {
        if !self.spend(1 + body_size(list)) {
            return;
        }
        for and_or in list {
            let mut waits: Option<String> = None;
            for pipeline in &and_or.pipelines {
                if let Some(what) = &waits {
                    for command in &pipeline.commands {
                        self.for_each_assignment_in(command, false, &mut |found| {
                            polled.push((found.name, what.clone()));
                        });
                    }
                } else if and_or.pipelines.len() > 1 {
                    waits = self.pipeline_waits(pipeline, scope, 0);
                }
                for command in &pipeline.commands {
                    self.collect_polled_in(command, scope, polled);
                }
            }
        }
    }

    fn collect_polled_in(
        &self,
        command: &Command,
        scope: &WaitScope<'t>,
        polled: &mut Vec<(&'t str, String)>,
    ) {
        match command {
            Command::If(chain) => {
                let mut waits: Option<String> = None;
                for (condition, body) in &chain.branches {
                    if waits.is_none() {
                        waits = condition.last().and_then(|and_or| {
                            and_or
                                .pipelines
                                .iter()
                                .find_map(|pipeline| self.pipeline_waits(pipeline, scope, 0))
                        });
                    }
                    match &waits {
                        Some(what) => self.for_each_assignment(body, false, &mut |found| {
                            polled.push((found.name, what.clone()));
                        }),
                        None => self.collect_polled(body, scope, polled),
                    }
                }
                if let Some(otherwise) = &chain.otherwise {
                    match &waits {
                        Some(what) => self.for_each_assignment(otherwise, false, &mut |found| {
                            polled.push((found.name, what.clone()));
                        }),
                        None => self.collect_polled(otherwise, scope, polled),
                    }
                }
            }
            Command::Case(_) | Command::Group(_) => {
                for list in command.branch_lists() {
                    self.collect_polled(list, scope, polled);
                }
            }
            Command::Simple(_)
            | Command::Loop(_)
            | Command::Arithmetic(..)
            | Command::Function(_) => {}
        }
    }

    /// For each function of the script the body calls, the variables it assigns.
    fn collect_called_assignments(&self, list: &[AndOr], helpers: &mut Vec<(&'t str, String)>) {
        for command in commands_of(list) {
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
    pub(super) fn waited_command(&self, lp: &Loop) -> Option<String> {
        let last = lp.condition.last()?;
        commands_in(&last.pipelines).find_map(|command| match command {
            Command::Simple(simple) => self
                .command_key(simple)
                .filter(|key| !key.starts_with(['[', ' ']) && !key.starts_with("test ")),
            _ => None,
        })
    }

    /// A command's name and first argument, to recognise the same command
    /// again: `docker exec` is not `docker ps`.
    pub(super) fn command_key(&self, simple: &Simple) -> Option<String> {
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
                references(raw, variable)
                    && !self.assigned_value_waits(variable, value, scope)
                    && !scope.polled.iter().any(|(polled, _)| polled == variable)
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
                        // `if probe; then ready=yes; fi` in the body, `[ "$ready" != yes ]` here.
                        let raw = self.raw(word);
                        scope
                            .polled
                            .iter()
                            .find(|(variable, _)| references(raw, variable))
                            .map(|(_, what)| what.clone())
                    })
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
                // Asked about something new each pass (a helper of the script
                // too: `port_used "$port"` after `port=$((RANDOM …))`), it walks.
                if arguments.iter().any(changed_by_body) {
                    return None;
                }
                if let Some((_, Command::Group(body))) = self.function_named(&name) {
                    return body.last().and_then(|and_or| {
                        and_or
                            .pipelines
                            .iter()
                            .find_map(|pipeline| self.pipeline_waits(pipeline, scope, depth + 1))
                    });
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
        if value.contains("$?") || is_broken_arithmetic(value) {
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
