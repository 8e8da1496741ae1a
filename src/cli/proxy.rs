//! `credits limits proxy`: parses the flags, builds the project's pacer and
//! hands both to the library's proxy.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::pacing::{memory_pacer, pacer_with_connections, parse_seconds, StoreArgs};
use crate::exit::ExitStatus;
use crate::paths::ProjectPaths;
use crate::proxy::pacing::death_test;
use crate::proxy::routes::{parse_upstream, RouteError};
use crate::proxy::upstream_file::{read_upstreams, UPSTREAMS_FILE};
use crate::proxy::{
    Budget, Hooks, LogSink, ProxyConfig, RouteTable, Upstream, CLIENT_TOKEN_HEADER,
};
use crate::rate_limits::owner::Owner;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on; an address other than loopback needs
    /// `--allow-remote` and `--client-token`. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Add or replace a route: `/NAME/…` goes to URL (repeatable), such as
    /// `groq=https://api.groq.com/openai` or `openai=http://127.0.0.1:9000`;
    /// overrides a route of the same name in `.specsmith/proxy-upstreams.json`.
    #[arg(long, value_name = "NAME=URL", value_parser = parse_route)]
    upstream: Vec<Upstream>,
    /// Longest hold for budget, in seconds, before answering 429 with the real wait.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    max_wait: Duration,
    /// Retries of an upstream 429/503/529 whose prescribed wait is short.
    #[arg(long, value_name = "N", default_value_t = 2)]
    retries: u32,
    /// Longest upstream-prescribed wait, in seconds, the proxy retries after itself.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    retry_max_wait: Duration,
    /// A PEM file of certificates to trust for upstream HTTPS besides the
    /// bundled web PKI roots (a local server's self-signed certificate, a
    /// private CA); repeatable.
    #[arg(long, value_name = "FILE")]
    upstream_ca: Vec<PathBuf>,
    /// Largest request body accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_body_mib: u32,
    /// Seconds in-flight calls may run on after SIGTERM or Ctrl-C.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    grace: Duration,
    /// Listen on an address other than loopback (requires `--client-token`).
    #[arg(long)]
    allow_remote: bool,
    /// A token every client must send in the `x-specsmith-proxy-token` header.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SPECSMITH_PROXY_TOKEN",
        hide_env_values = true
    )]
    client_token: Option<String>,
    /// Where the budget's state lives: `memory`, this process only (far
    /// faster; right when every client goes through this one proxy), or a
    /// shared store as for `acquire`: `file` (the project's state file) or
    /// `redis://…` / `rediss://…` / `redis+cluster://…` [default: $SPECSMITH_STORE, then
    /// `.specsmith/pacing-store.json`, then `file`]
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// When a shared store cannot be reached: `open` forwards unpaced with a
    /// warning, `closed` answers 503 [default: $SPECSMITH_STORE_ON_ERROR, then
    /// the setting file, then `open`]
    #[arg(long, value_name = "MODE")]
    on_store_error: Option<String>,
    /// No access log on stderr.
    #[arg(long)]
    quiet: bool,
}

/// Connections the proxy keeps to a shared store, so concurrent requests'
/// operations do not take turns on one (each operation holds its connection
/// for one round trip).
const STORE_CONNECTIONS: usize = 8;

/// `--store` naming the proxy's own memory.
const MEMORY_STORE: &str = "memory";

fn parse_route(text: &str) -> Result<Upstream, String> {
    parse_upstream(text).map_err(|error: RouteError| error.to_string())
}

pub fn proxy(project: &ProjectPaths, args: ProxyArgs) -> anyhow::Result<ExitStatus> {
    if !args.listen.ip().is_loopback() {
        if !args.allow_remote {
            anyhow::bail!(
                "--listen: `{}` is not a loopback address; pass --allow-remote and --client-token to serve other hosts",
                args.listen
            );
        }
        if args.client_token.is_none() {
            anyhow::bail!(
                "--allow-remote: a --client-token is required when listening beyond loopback"
            );
        }
    }
    if args
        .client_token
        .as_deref()
        .is_some_and(|token| token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        anyhow::bail!(
            "--client-token: must be at least 16 printable ASCII characters without spaces"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let stop_test = move || stopped.load(Ordering::SeqCst);
    let is_dead = death_test(Owner::current());
    let budget: Arc<dyn Budget> = if args.store.as_deref() == Some(MEMORY_STORE) {
        Arc::new(
            memory_pacer(project)?
                .with_stop(stop_test)
                .with_death_test(is_dead),
        )
    } else {
        let store = StoreArgs::new(args.store, args.on_store_error);
        Arc::new(
            pacer_with_connections(project, &store, STORE_CONNECTIONS)?
                .with_stop(stop_test)
                .with_death_test(is_dead),
        )
    };
    let upstreams_file = project.state_dir().join(UPSTREAMS_FILE);
    let mut upstreams = read_upstreams(&upstreams_file)?;
    upstreams.extend(args.upstream);
    let mut config = ProxyConfig::new(args.listen, RouteTable::new(upstreams));
    config.max_wait = args.max_wait;
    config.retry_attempts = args.retries;
    config.retry_max_wait = args.retry_max_wait;
    config.max_body_bytes = args.max_body_mib as usize * 1024 * 1024;
    config.grace = args.grace;
    config.client_token = args.client_token;
    for path in &args.upstream_ca {
        config
            .extra_roots
            .extend(crate::proxy::load_certificates(path).context("--upstream-ca")?);
    }
    let routes: Vec<String> = config
        .routes
        .routes()
        .map(|route| format!("/{} -> {route}", route.name))
        .collect();
    let token_note = if config.client_token.is_some() {
        format!(" (clients send `{CLIENT_TOKEN_HEADER}`)")
    } else {
        String::new()
    };
    let quiet = args.quiet;
    let hooks = Hooks {
        on_ready: Box::new(move |address| {
            // The first stdout line is the address, for scripts and tests.
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "listening on http://{address}{token_note}");
            let _ = stdout.flush();
            if !quiet {
                for route in &routes {
                    eprintln!("proxy: route {route}");
                }
            }
        }),
        log: (!quiet).then(|| Arc::new(|line: &str| eprintln!("{line}")) as LogSink),
    };
    crate::proxy::run(config, budget, hooks, stop).context("credits limits proxy")?;
    Ok(ExitStatus::Success)
}
