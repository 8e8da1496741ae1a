//! `credits limits proxy`: a local HTTP proxy that paces every request of
//! any SDK or agent through the shared budget, with no change to the client
//! beyond its base URL.
//!
//! - [`routes`]: which path prefix reaches which upstream, and the checks
//!   that make it no open proxy;
//! - [`upstream_file`]: further routes from `.specsmith/proxy-upstreams.json`;
//! - [`estimate`]: the fast local token estimate a request is admitted on;
//! - [`usage`]: the usage read from answers and streams as they pass;
//! - [`errors`]: the proxy's own answers in each provider's error shape;
//! - [`metrics`]: counters for `/metrics`;
//! - [`memory`]: the budget in the proxy's own memory (`--store memory`);
//! - [`pacing`]: the only contact with the shared pacer;
//! - `server`: the tokio/hyper server tying them together.

pub mod errors;
pub mod estimate;
pub mod memory;
pub mod metrics;
pub mod pacing;
pub mod routes;
mod server;
pub mod upstream_file;
pub mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub use pacing::Budget;
pub use routes::{RouteTable, Upstream};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

/// The header a client sends its token in when the proxy requires one.
pub const CLIENT_TOKEN_HEADER: &str = "x-specsmith-proxy-token";

/// How the proxy listens, routes, holds and times out.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where to listen (port 0: any free port, reported to `on_ready`).
    pub listen: SocketAddr,
    /// The upstreams by route name.
    pub routes: RouteTable,
    /// Longest hold for budget before answering 429.
    pub max_wait: Duration,
    /// The token clients must send in [`CLIENT_TOKEN_HEADER`], when set.
    pub client_token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest request head (line and headers) accepted, in bytes.
    pub max_header_bytes: usize,
    /// Longest wait for a client's request head.
    pub header_timeout: Duration,
    /// Longest wait for a request body, and for an upstream error body.
    pub body_timeout: Duration,
    /// Longest wait for a TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// Longest wait for an upstream's answer head (connection and TLS included).
    pub response_timeout: Duration,
    /// Longest silence inside an upstream's answer body.
    pub idle_timeout: Duration,
    /// Retries of an upstream rate limit or overload, after the first attempt.
    pub retry_attempts: u32,
    /// Longest provider-prescribed wait the proxy retries after itself; a
    /// longer one is passed back to the client.
    pub retry_max_wait: Duration,
    /// How long in-flight calls may run on after shutdown begins.
    pub grace: Duration,
    /// The lease of each reservation.
    pub lease: Duration,
    /// Certificates trusted for upstream TLS besides the bundled web PKI
    /// roots (a local server's own certificate or a private CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl ProxyConfig {
    /// The defaults, listening on `listen`, with `routes`.
    pub fn new(listen: SocketAddr, routes: RouteTable) -> Self {
        Self {
            listen,
            routes,
            max_wait: Duration::from_secs(30),
            client_token: None,
            max_body_bytes: 32 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(300),
            retry_attempts: 2,
            retry_max_wait: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            lease: crate::rate_limits::scheduler::DEFAULT_LEASE,
            extra_roots: Vec::new(),
        }
    }
}

/// Receives one access-log line.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The caller's side of the server: told the bound address once, and (when
/// set) handed one access-log line per request, credentials already masked.
pub struct Hooks {
    /// Called once with the address actually bound.
    pub on_ready: Box<dyn FnOnce(SocketAddr) + Send>,
    /// Receives each log line.
    pub log: Option<LogSink>,
}

/// Errors that stop the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listen address could not be bound.
    #[error("cannot listen on `{address}`")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate file could not be read or holds no usable certificate.
    #[error("cannot use the certificates in `{}`: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The TLS client could not be set up with the trusted certificates.
    #[error("cannot set up TLS to upstreams: {0}")]
    Tls(String),
    /// The async runtime could not start.
    #[error("cannot start the proxy's runtime")]
    Runtime(#[source] std::io::Error),
}

/// The certificates of the PEM file at `path`, to trust for upstream TLS.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ProxyError> {
    let refuse = |reason: String| ProxyError::Certificate {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| refuse(error.to_string()))?
        .take(1_000)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| refuse(error.to_string()))?;
    if certificates.is_empty() {
        return Err(refuse("no `BEGIN CERTIFICATE` block".to_owned()));
    }
    Ok(certificates)
}

/// Runs the proxy until Ctrl-C, SIGTERM or `stop` turning true, then stops
/// accepting and lets in-flight calls finish within [`ProxyConfig::grace`].
/// Build the pacer behind `budget` with a stop test reading `stop`, so
/// requests held for budget end at shutdown too.
pub fn run(
    config: ProxyConfig,
    budget: Arc<dyn Budget>,
    hooks: Hooks,
    stop: Arc<AtomicBool>,
) -> Result<(), ProxyError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("specsmith-proxy")
        .build()
        .map_err(ProxyError::Runtime)?;
    let grace = config.grace;
    let result = runtime.block_on(server::serve(config, budget, hooks, stop));
    // Records still running on the blocking pool finish within the grace.
    runtime.shutdown_timeout(grace);
    result
}
