//! Why a loop cannot end by itself: a constant condition, a stream that never
//! closes; and what ends one anyway (a body that always leaves, an argument
//! loop that shifts, input that ends).

use std::borrow::Cow;

use super::{references, Analyzer, Endless, Feed, Jump};
use crate::validate::loops::shell::syntax::{
    commands_in, commands_of, pipelines_of, AndOr, Command, Connector, List, Loop, LoopKind,
    Pipeline, Simple, Word,
};
use crate::validate::loops::shell::words::{assignment, basename, literal};

impl<'t> Analyzer<'t> {
    pub(super) fn endless(&self, lp: &Loop, feed: Feed) -> Option<Endless> {
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
                    if let Some(variable) = self.asks_again_on_empty_answer(lp) {
                        return Some(Endless::Wait(format!(
                            "an answer to `read {variable}` (end of input leaves it empty, so it \
                             asks again for ever)"
                        )));
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

    /// `while [ -z "$name" ]; do read -p "name: " name; done`: the body reads
    /// the variable the condition tests, and the empty value end of input
    /// leaves keeps the loop going, and nothing else in the body leaves, so
    /// without a person it asks for ever.
    /// The variable, when so.
    fn asks_again_on_empty_answer(&self, lp: &Loop) -> Option<&'t str> {
        let last = lp.condition.last()?;
        let [pipeline] = &*last.pipelines else {
            return None;
        };
        // A body that can leave some other way may leave on that empty answer.
        if lp.kind != LoopKind::While || self.has_other_exit(&lp.body, 0, &[]) {
            return None;
        }
        lp.body.iter().find_map(|and_or| {
            let [Command::Simple(simple)] = &*and_or.pipelines.first()?.commands else {
                return None;
            };
            let variable = self.read_variable(simple)?;
            let mentions = |word: &Word| references(self.raw(word), variable);
            self.empty_answer_passes(pipeline, variable, &mentions)
                .then_some(variable)
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
                || commands_in(pipelines).any(|command| match command {
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
    pub(super) fn errexit(&self) -> bool {
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
            commands_of(self.program).any(|command| {
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
                    || arguments
                        .windows(2)
                        .any(|pair| self.raw(&pair[0]) == "-o" && self.raw(&pair[1]) == "errexit")
            })
        })
    }

    /// A body whose top level holds a plain `break`, `exit` or `return`, and
    /// no `continue` that could skip it, runs once.
    pub(super) fn runs_at_most_once(&self, body: &List) -> bool {
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
    pub(super) fn consumes_arguments(&self, lp: &Loop) -> bool {
        let body = &lp.body;
        let mut subjects: Vec<Cow<str>> =
            vec![Cow::Borrowed("1"), Cow::Borrowed("#"), Cow::Borrowed("@")];
        for command in commands_of(body) {
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
                || commands_in(pipelines).any(|command| match command {
                    Command::If(chain) => chain.branches.iter().any(|(condition, branch)| {
                        pipelines_of(condition).any(tests_arguments) && self.list_leaves(branch, 0)
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
                Command::If(chain) => chain.on_every_path(|body| self.shifts_or_leaves(body)),
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
        commands_of(list)
            .any(|command| {
                matches!(command, Command::Simple(simple)
                    if matches!(self.command_name(simple).as_deref(), Some("read" | "readarray" | "mapfile")))
            })
    }

    /// The endless source feeding whatever follows `commands` in a pipeline,
    /// unless a later stage (`head`, `grep -m`, `timeout …`) cuts it off.
    pub(super) fn endless_stream(&self, commands: &[Command]) -> Option<String> {
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
                    let inner = pipelines_of(list)
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
    pub(super) fn unwrapped<'s>(&self, simple: &'s Simple) -> Option<(Cow<'t, str>, &'s [Word])> {
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

/// Does `text` hold `$subject` or `${subject` (a prefix of a longer name counts)?
fn expands(text: &str, subject: &str) -> bool {
    // Bytes, not chars: `$` is ASCII, and this runs for every word of every loop body.
    text.bytes().enumerate().any(|(dollar, byte)| {
        byte == b'$' && {
            let rest = &text[dollar + 1..];
            rest.strip_prefix('{').unwrap_or(rest).starts_with(subject)
        }
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
