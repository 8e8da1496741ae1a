//! `validate`: governance checks and the H11/H23 loop scan, for CI.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::exit::ExitStatus;
use crate::validate::report::{self, Format};
use crate::validate::{self as library, Options};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// Leave out files and folders matching GLOB (gitignore syntax, relative
    /// to the project folder); may be repeated.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    /// Compiler-style finding lines, then every check.
    Text,
    /// Python specsmith's `validate --json`, plus findings and notes.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// GitHub Actions annotations.
    Github,
}

impl From<OutputFormat> for Format {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
            OutputFormat::Sarif => Format::Sarif,
            OutputFormat::Github => Format::Github,
        }
    }
}

/// Runs every check on the project at `root` and prints the report.
///
/// Exit 0 when every check passes, 1 when one fails, 2 when a file could not
/// be read (after printing everything else).
pub fn run(root: &Path, args: ValidateArgs) -> anyhow::Result<ExitStatus> {
    let options = Options {
        excludes: args.exclude,
        ..Options::new(root)
    };
    let report = library::run(&options)?;
    // Streamed through a buffer rather than rendered whole first: a report of
    // tens of thousands of findings would otherwise be held twice in memory.
    let mut stdout = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    report::render(&report, args.format.into(), &mut stdout).context("cannot render the report")?;
    stdout.flush()?;
    Ok(if report.has_errors() {
        ExitStatus::Error
    } else if report.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Findings
    })
}
