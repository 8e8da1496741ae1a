//! Code a script runs from a string or a heredoc (`sh -c '…'`, `bash <<EOF`), and
//! whether the deadline of a `timeout N` wrapper around it is reported.

use super::messages::is_message_command;
use super::{Analyzer, Container, Context, EmbeddedScript};
use crate::validate::loops::shell::syntax::{
    commands_of, AndOr, Command, Connector, HeredocBody, Pipeline, Simple, Word,
};
use crate::validate::loops::shell::words::{assignment, basename, heredoc_text, literal, unquote};

impl<'t> Analyzer<'t> {
    /// `sh -c '…'`, `bash -lc "…"`, `eval '…'`: the string is code.
    pub(super) fn find_embedded_scripts(&mut self, simple: &Simple, name: &str, context: Context) {
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
        self.push_embedded(text, origins, context);
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
        commands_of(self.program).any(|command| {
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
        self.push_embedded(text, origins, context);
    }

    /// Keeps code run from a string or a heredoc for scanning, unless it is blank.
    fn push_embedded(&mut self, text: String, origins: Vec<usize>, context: Context) {
        if text.trim().is_empty() {
            return;
        }
        self.embedded.push(EmbeddedScript {
            text,
            origins,
            context,
        });
    }
}
