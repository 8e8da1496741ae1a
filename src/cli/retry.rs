//! `credits limits classify`: what a failed provider call's status, headers and
//! body say about retrying, as one JSON object.

use std::io::{IsTerminal as _, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use clap::Args;

use super::output;
use crate::rate_limits::clock::{Clock, SystemClock};
use crate::rate_limits::retry::{self, ProviderResponse};

/// Largest body read from a file or stdin, in bytes.
pub(super) const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// Largest headers file read, in bytes.
const MAX_HEADERS_BYTES: u64 = 1024 * 1024;

/// Arguments of `credits limits classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// HTTP status of the failed call (overrides a headers file's status line).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = super::values::parse_status)]
    status: Option<u16>,
    /// A response header, `Name: value`; repeat for more (wins over --headers-file).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<HeaderArg>,
    /// A file of `Name: value` lines, as `curl -D FILE` writes them; a leading
    /// status line gives the status.
    #[arg(long, value_name = "FILE")]
    headers_file: Option<PathBuf>,
    /// The error message or body text; a leading `HTTP/…` head (`curl -i`
    /// output) gives the status and headers [default: stdin when it is not a
    /// terminal].
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    message: Option<String>,
    /// A file holding the response body (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// The time HTTP-dates and reset timestamps are measured from [default: now].
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<SystemTime>,
}

/// One `--header` value, already split.
#[derive(Debug, Clone)]
pub(super) struct HeaderArg(pub(super) String, pub(super) String);

/// Classifies the failure described by the arguments and prints the verdict.
pub fn classify(args: ClassifyArgs) -> anyhow::Result<()> {
    let mut status = args.status;
    let mut headers = Vec::new();
    if let Some(path) = &args.headers_file {
        let text = read_bounded(path, MAX_HEADERS_BYTES)
            .with_context(|| format!("--headers-file `{}`", output::shown(path)))?;
        let file = retry::parse_headers_file(&text)
            .with_context(|| format!("--headers-file `{}`", output::shown(path)))?;
        status = status.or(file.status);
        headers = file.headers;
    }
    let mut body = match (args.message, args.body_file) {
        (Some(message), _) => message,
        (None, Some(path)) if path.as_os_str() == "-" => read_stdin()?,
        (None, Some(path)) => read_bounded(&path, MAX_BODY_BYTES)
            .with_context(|| format!("--body-file `{}`", output::shown(&path)))?,
        (None, None) if !std::io::stdin().is_terminal() => read_stdin()?,
        (None, None) => String::new(),
    };
    // `curl -i` output: the head travels with the body.
    if let Some((head, rest)) = retry::split_response(&body) {
        status = status.or(head.status);
        headers.extend(head.headers);
        body = rest.to_owned();
    }
    headers.extend(
        args.headers
            .into_iter()
            .map(|HeaderArg(name, value)| (name, value)),
    );
    let now = args
        .now
        .unwrap_or_else(|| UNIX_EPOCH + Duration::from_millis(SystemClock.now()));
    let verdict = retry::classify(
        &ProviderResponse {
            status,
            headers,
            body,
        },
        now,
    );
    output::print_json(&verdict)
}

/// Reads at most `limit` bytes of a file as text (invalid UTF-8 replaced).
pub(super) fn read_bounded(path: &Path, limit: u64) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)?;
    read_limited(file, limit)
}

pub(super) fn read_stdin() -> anyhow::Result<String> {
    read_limited(std::io::stdin().lock(), MAX_BODY_BYTES).context("stdin")
}

fn read_limited(reader: impl Read, limit: u64) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        bail!("larger than {} MiB", limit / (1024 * 1024));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub(super) fn parse_header(value: &str) -> Result<HeaderArg, String> {
    retry::parse_header_line(value)
        .map(|(name, value)| HeaderArg(name, value))
        .map_err(|_| "expected `Name: value`".to_owned())
}

fn parse_now(value: &str) -> Result<SystemTime, String> {
    retry::parse_rfc3339(value)
        .map_err(|_| "expected an RFC 3339 time such as `2026-01-01T00:00:00Z`".to_owned())
}
