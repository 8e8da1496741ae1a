//! The command line: clap types, one handler per command family, and all
//! printing. Handlers turn arguments into library calls and library results
//! into text; they decide nothing themselves.

mod credits;
mod learn;
mod output;
mod pacing;
#[cfg(feature = "proxy")]
mod proxy;
mod retry;
mod run;
mod status_text;
mod validate;
mod values;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{CommandFactory, FromArgMatches as _, Parser, Subcommand};

use crate::exit::ExitStatus;
use crate::paths::ProjectPaths;
use crate::rate_limits::secrets;

/// Rate-limit pacing and governance checks for teams running LLM agents.
#[derive(Debug, Parser)]
#[command(name = "specsmith-rs", version, about, propagate_version = true)]
pub struct Cli {
    /// The project folder (holds `.specsmith/`); it must exist.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    project_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// AI credit tooling: rate-limit profiles and pacing.
    Credits(credits::CreditsArgs),
    /// Governance checks and the H11/H23 loop scan; exit 1 when one fails.
    Validate(validate::ValidateArgs),
    /// Print shell completions for SHELL to stdout.
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(error) => return report_usage_error(&error),
    };
    match run(cli) {
        Ok(status) => status.into(),
        Err(error) if output::is_broken_pipe(&error) => ExitStatus::Success.into(),
        Err(error) => {
            output::print_error(&error);
            exit_status_of(&error).into()
        }
    }
}

/// The command line as [`Cli`], or clap's error (help and `--version`
/// included).
fn parse_command_line() -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    // The tree of every command's arguments is left for the process's exit
    // to free: dropping it piece by piece cost 0.13 to 0.16 M instructions,
    // a sixth of a bare start (see docs/performance.md, fourth round).
    std::mem::forget(command);
    parsed
}

/// Parses nothing and prints nothing: dispatches an already parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Credits(args) => credits::run(&project(&cli.project_dir)?, args),
        Command::Validate(args) => validate::run(project(&cli.project_dir)?.root(), args),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut command, "specsmith-rs", &mut buffer);
            output::write_stdout(&buffer)?;
            Ok(ExitStatus::Success)
        }
    }
}

/// Checks `--project-dir` and returns its paths.
fn project(dir: &Path) -> anyhow::Result<ProjectPaths> {
    match std::fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => Ok(ProjectPaths::new(dir)),
        Ok(_) => bail!("--project-dir `{}` is not a directory", output::shown(dir)),
        Err(error) => Err(error).with_context(|| format!("--project-dir `{}`", output::shown(dir))),
    }
}

/// clap's own help and version output go to stdout with exit 0; a usage error
/// is reported as clap's first paragraph, one line in the common cases.
fn report_usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::from(error.exit_code() as u8);
    }
    // A refused value: said in clap's words, from the raw value, so that
    // what the user typed is escaped rather than stripped or passed through.
    if error.kind() == ErrorKind::ValueValidation {
        use clap::error::{ContextKind, ContextValue};
        if let (Some(ContextValue::String(flag)), Some(ContextValue::String(value))) = (
            error.get(ContextKind::InvalidArg),
            error.get(ContextKind::InvalidValue),
        ) {
            let reason = std::error::Error::source(error)
                .map(ToString::to_string)
                .unwrap_or_default();
            eprintln!(
                "error: invalid value '{}' for '{flag}': {}",
                secrets::for_message(value),
                secrets::for_message(&reason)
            );
            return ExitStatus::Error.into();
        }
    }
    let mut rendered = error.render().to_string();
    // clap quotes the offending value as typed: escape it before the text is
    // cut at its first blank line, so a value cannot fake lines of its own.
    for argument in std::env::args_os().skip(1) {
        let argument = argument.to_string_lossy();
        if argument.chars().any(char::is_control) {
            rendered = rendered.replace(argument.as_ref(), &secrets::escape_controls(&argument));
        }
    }
    let first_paragraph = rendered.split("\n\n").next().unwrap_or_default();
    let lines: Vec<String> = first_paragraph
        .trim_end()
        .lines()
        .map(secrets::for_message)
        .collect();
    eprintln!("{}", lines.join("\n"));
    ExitStatus::Error.into()
}

/// Errors that mean something more specific than "specsmith failed" carry
/// their own exit code; everything else is 2.
fn exit_status_of(error: &anyhow::Error) -> ExitStatus {
    for cause in error.chain() {
        if let Some(status) = cause.downcast_ref::<StatusError>() {
            return status.status;
        }
    }
    ExitStatus::Error
}

/// An error with advice printed on a line of its own after it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HintedError {
    message: String,
    hint: String,
}

impl HintedError {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The advice, without the `hint: ` label.
    pub(crate) fn hint(&self) -> &str {
        &self.hint
    }
}

/// An error that ends the process with a particular exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct StatusError {
    status: ExitStatus,
    message: String,
}

impl StatusError {
    pub(crate) fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
