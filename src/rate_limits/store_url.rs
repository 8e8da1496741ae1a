//! Store URLs for the shared pacing store: `redis://[user:pass@]host[:port][/db]`
//! and `rediss://…` for TLS; [`ClusterUrl`] for a Redis Cluster,
//! `redis+cluster://[user:pass@]host:port,host:port…`.
//!
//! - [`StoreUrl::parse`] validates a URL; every refusal is a
//!   [`StoreUrlError`] that shows the URL with its password masked.
//! - A `StoreUrl` prints (`Display` and `Debug`) as `redis://user:***@host:6379/0`:
//!   the password never reaches a message, a file or a log through it.
//! - [`StoreConnection::open`] connects with bounded timeouts
//!   ([`Timeouts`]: connect [`DEFAULT_CONNECT_TIMEOUT`], every command
//!   [`DEFAULT_COMMAND_TIMEOUT`]) and checks the server with `PING`. Failures are
//!   a [`StoreConnectError`] that names the store (masked) and never the password.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

/// The port a URL without one uses (Redis's own default).
pub const DEFAULT_PORT: u16 = 6379;
/// How long opening a connection may take: TCP connect, TLS handshake, `AUTH`,
/// `SELECT` and the first `PING`, each within this budget. One second covers a
/// loaded server on a LAN; a store farther away than that is a misconfiguration
/// for a pacer that sits on every request's hot path.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one command (write and its reply) may take once connected. A
/// pacing operation is one short script; two seconds means the server is stuck.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest store URL accepted (a pasted blob is a mistake, not a URL).
pub const MAX_URL_LENGTH: usize = 2048;

const PASSWORD_MASK: &str = "***";

/// A refused store URL. `url` is the input with any password masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store URL `{url}`: {reason}")]
pub struct StoreUrlError {
    /// The URL as given, password masked ([`mask_url_text`]).
    pub url: String,
    /// What is wrong, and what is accepted instead.
    pub reason: String,
}

/// A validated store URL. Its `Display` and `Debug` mask the password.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl {
    tls: bool,
    host: String,
    port: u16,
    database: u32,
    username: Option<String>,
    password: Option<String>,
}

impl StoreUrl {
    /// Parses and validates `text`.
    ///
    /// Accepted: scheme `redis` or `rediss` (TLS); optional `user:password@`
    /// or `:password@` (percent-encoding decoded); a host name, IPv4 address or
    /// bracketed IPv6 address; an optional port (default [`DEFAULT_PORT`]); an
    /// optional database number path (`/0`, default 0). Query strings and
    /// fragments are refused, so no option can silently turn off a check.
    pub fn parse(text: &str) -> Result<Self, StoreUrlError> {
        let refuse = |reason: &str| StoreUrlError {
            url: mask_url_text(text),
            reason: reason.to_owned(),
        };
        if text.len() > MAX_URL_LENGTH {
            return Err(StoreUrlError {
                url: format!("{}…", mask_url_text(&truncate(text, 64))),
                reason: format!("longer than {MAX_URL_LENGTH} bytes"),
            });
        }
        if text
            .chars()
            .any(|character| character.is_control() || character == ' ')
        {
            return Err(refuse("contains spaces or control characters"));
        }
        let (tls, rest) = if let Some(rest) = text.strip_prefix("redis://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("rediss://") {
            (true, rest)
        } else {
            return Err(refuse(
                "unsupported scheme; expected redis://[user:password@]host[:port][/db], rediss://… for TLS, or redis+cluster://host:port,host:port… for a cluster",
            ));
        };
        if rest.contains('?') || rest.contains('#') {
            return Err(refuse("query strings and fragments are not supported"));
        }
        let (userinfo, host_and_path) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let Some((user, password)) = userinfo.split_once(':') else {
                    return Err(refuse(
                        "credentials need a password: write user:password@ or :password@",
                    ));
                };
                let user =
                    percent_decode(user).ok_or_else(|| refuse("bad %-escape in the user name"))?;
                let password = percent_decode(password)
                    .ok_or_else(|| refuse("bad %-escape in the password"))?;
                if password.is_empty() {
                    return Err(refuse("the password after `:` is empty"));
                }
                ((!user.is_empty()).then_some(user), Some(password))
            }
        };
        let (authority, path) = match host_and_path.find('/') {
            Some(slash) => (&host_and_path[..slash], &host_and_path[slash + 1..]),
            None => (host_and_path, ""),
        };
        let (host, port_text) = split_host_port(authority).map_err(&refuse)?;
        let port = match port_text {
            None => DEFAULT_PORT,
            Some(port_text) => match port_text.parse::<u16>() {
                Ok(port) if port > 0 && port_text.bytes().all(|byte| byte.is_ascii_digit()) => port,
                _ => return Err(refuse("the port must be a number from 1 to 65535")),
            },
        };
        let database = if path.is_empty() {
            0
        } else {
            match path.parse::<u32>() {
                Ok(database) if path.bytes().all(|byte| byte.is_ascii_digit()) => database,
                _ => return Err(refuse("the path must be a database number such as /0")),
            }
        };
        Ok(Self {
            tls,
            host,
            port,
            database,
            username,
            password,
        })
    }

    /// Whether the URL asks for TLS (`rediss://`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database number (`SELECT`).
    pub fn database(&self) -> u32 {
        self.database
    }

    /// The ACL user name, if the URL has one.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether the URL carries a password (the password itself is not exposed
    /// outside this module).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The URL as shown in messages: password replaced by `***`, port and
    /// database always written out.
    pub fn masked(&self) -> String {
        self.to_string()
    }

    /// Replaces the password wherever it appears in `text` (for messages from
    /// the client library or the server that might echo it).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(password) => text.replace(password.as_str(), PASSWORD_MASK),
            None => text.to_owned(),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        write!(formatter, "{scheme}://")?;
        match (&self.username, &self.password) {
            (Some(user), Some(_)) => {
                write!(formatter, "{}:{PASSWORD_MASK}@", percent_encode(user))?
            }
            (None, Some(_)) => write!(formatter, ":{PASSWORD_MASK}@")?,
            _ => {}
        }
        if self.host.contains(':') {
            write!(formatter, "[{}]", self.host)?;
        } else {
            write!(formatter, "{}", self.host)?;
        }
        write!(formatter, ":{}/{}", self.port, self.database)
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "StoreUrl({self})")
    }
}

impl std::str::FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// The most seed nodes a cluster URL may name.
pub const MAX_CLUSTER_SEEDS: usize = 64;

/// A Redis Cluster named by some of its nodes:
/// `redis+cluster://[user:password@]host:port,host:port…` (`rediss+cluster://`
/// for TLS). One URL rather than a list of `redis://` URLs, so it fits where
/// a store URL goes (`--store`, `SPECSMITH_STORE`, the setting file) and the
/// credentials are written once. Its `Display` and `Debug` mask the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    seeds: Vec<StoreUrl>,
}

impl ClusterUrl {
    /// Whether `text` names a cluster (its scheme is `redis+cluster` or
    /// `rediss+cluster`), so a caller knows which parser to use.
    pub fn is_cluster_text(text: &str) -> bool {
        text.starts_with("redis+cluster://") || text.starts_with("rediss+cluster://")
    }

    /// Parses and validates `text`: one or more comma-separated
    /// `host[:port]` seeds (each as [`StoreUrl::parse`] accepts it), the
    /// optional credentials before them applying to every node, and no
    /// database path other than `/0` (a cluster has only database 0).
    pub fn parse(text: &str) -> Result<Self, StoreUrlError> {
        let refuse = |reason: &str| StoreUrlError {
            url: mask_url_text(text),
            reason: reason.to_owned(),
        };
        if text.len() > MAX_URL_LENGTH {
            return Err(StoreUrlError {
                url: format!("{}…", mask_url_text(&truncate(text, 64))),
                reason: format!("longer than {MAX_URL_LENGTH} bytes"),
            });
        }
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("redis+cluster://") {
            ("redis", rest)
        } else if let Some(rest) = text.strip_prefix("rediss+cluster://") {
            ("rediss", rest)
        } else {
            return Err(refuse(
                "expected redis+cluster://[user:password@]host:port,host:port… or rediss+cluster://…",
            ));
        };
        let (userinfo, hosts_and_path) = match rest.rfind('@') {
            Some(at) => (&rest[..=at], &rest[at + 1..]),
            None => ("", rest),
        };
        let (hosts, path) = match hosts_and_path.find('/') {
            Some(slash) => (&hosts_and_path[..slash], &hosts_and_path[slash + 1..]),
            None => (hosts_and_path, ""),
        };
        if !path.is_empty() && path != "0" {
            return Err(refuse(
                "a cluster has only database 0: drop the path or write /0",
            ));
        }
        let mut seeds = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err(refuse("an empty node between commas"));
            }
            if seeds.len() == MAX_CLUSTER_SEEDS {
                return Err(refuse(&format!("more than {MAX_CLUSTER_SEEDS} nodes")));
            }
            let seed =
                StoreUrl::parse(&format!("{scheme}://{userinfo}{host}")).map_err(|error| {
                    StoreUrlError {
                        url: mask_url_text(text),
                        reason: format!("node `{host}`: {}", error.reason),
                    }
                })?;
            seeds.push(seed);
        }
        Ok(Self { seeds })
    }

    /// The seed nodes, in the order given (credentials and TLS on each).
    pub fn seeds(&self) -> &[StoreUrl] {
        &self.seeds
    }

    /// The URL as shown in messages: password replaced by `***`.
    pub fn masked(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = &self.seeds[0];
        let scheme = if first.tls { "rediss" } else { "redis" };
        write!(formatter, "{scheme}+cluster://")?;
        match (&first.username, &first.password) {
            (Some(user), Some(_)) => {
                write!(formatter, "{}:{PASSWORD_MASK}@", percent_encode(user))?
            }
            (None, Some(_)) => write!(formatter, ":{PASSWORD_MASK}@")?,
            _ => {}
        }
        for (index, seed) in self.seeds.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            if seed.host.contains(':') {
                write!(formatter, "[{}]:{}", seed.host, seed.port)?;
            } else {
                write!(formatter, "{}:{}", seed.host, seed.port)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ClusterUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ClusterUrl({self})")
    }
}

/// Masks the credentials of something that looks like a URL, even one that
/// does not parse: everything between `scheme://` and the last `@` becomes
/// `user:***` (or `***` when there is no `:`). Text without `://…@` is returned
/// unchanged.
pub fn mask_url_text(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &text[rest_start..];
    let Some(at) = rest.rfind('@') else {
        return text.to_owned();
    };
    let userinfo = &rest[..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{PASSWORD_MASK}"),
        None => PASSWORD_MASK.to_owned(),
    };
    format!("{}{masked}{}", &text[..rest_start], &rest[at..])
}

fn truncate(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

fn split_host_port(authority: &str) -> Result<(String, Option<&str>), &'static str> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err("an IPv6 address needs a closing `]`");
        };
        if address.parse::<Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address");
        }
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or("expected `:port` after `]`")?,
            ),
        };
        return Ok((address.to_owned(), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err("the host is missing");
    }
    if !host
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'))
    {
        return Err("the host may hold only letters, digits, `.`, `-` and `_` (IPv6 in brackets)");
    }
    Ok((host.to_owned(), port))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Connect and command timeouts for a store connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Budget for opening the connection (TCP, TLS, `AUTH`, `SELECT`, `PING`).
    pub connect: Duration,
    /// Budget for each command's write and each reply's read.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT_TIMEOUT,
            command: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

/// Which step of talking to the store ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the connection.
    Connect,
    /// A command after the connection was open.
    Command,
}

impl fmt::Display for Phase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Connect => "connecting",
            Self::Command => "a command",
        })
    }
}

/// Talking to the store failed. `store` is the masked URL; no variant holds
/// the password (details from the client library are scrubbed of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreConnectError {
    /// The server refused the credentials (`WRONGPASS`, or `AUTH` refused).
    #[error("store {store}: the server refused the user name or password")]
    WrongPassword {
        /// The masked store URL.
        store: String,
    },
    /// The server wants a password and the URL has none (`NOAUTH`).
    #[error("store {store}: the server requires a password and the URL has none")]
    PasswordRequired {
        /// The masked store URL.
        store: String,
    },
    /// Nothing listens at the address.
    #[error("store {store}: connection refused (is redis-server running on that port?)")]
    Refused {
        /// The masked store URL.
        store: String,
    },
    /// No answer within the timeout.
    #[error("store {store}: no answer within {} ms while {phase}", timeout.as_millis())]
    Timeout {
        /// The masked store URL.
        store: String,
        /// Connecting or a command.
        phase: Phase,
        /// The budget that ran out.
        timeout: Duration,
    },
    /// The TLS handshake failed: for example `rediss://` to a plain server,
    /// or a certificate that does not verify.
    #[error("store {store}: TLS failed (does the server speak TLS on that port?): {detail}")]
    Tls {
        /// The masked store URL.
        store: String,
        /// What the TLS layer said.
        detail: String,
    },
    /// This build has no Redis client (built without the `redis` feature).
    #[error("store {store}: this build of specsmith has no Redis support (cargo feature `redis`)")]
    NotBuilt {
        /// The masked store URL.
        store: String,
    },
    /// Any other failure: the server's or the client library's message.
    #[error("store {store}: {detail}")]
    Other {
        /// The masked store URL.
        store: String,
        /// What went wrong, password scrubbed.
        detail: String,
    },
}

/// An open connection to the store, with read and write timeouts set.
///
/// After a [`StoreConnectError::Timeout`] on a command the reply may still
/// arrive later, so drop the connection and open a new one rather than reuse it.
pub struct StoreConnection {
    url: StoreUrl,
    timeouts: Timeouts,
    #[cfg(feature = "redis")]
    connection: redis::Connection,
}

impl fmt::Debug for StoreConnection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StoreConnection")
            .field("url", &self.url)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl StoreConnection {
    /// The URL this connection was opened with (masked when printed).
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }
}

#[cfg(not(feature = "redis"))]
impl StoreConnection {
    /// Always fails: this build has no Redis client.
    pub fn open(url: &StoreUrl, _timeouts: Timeouts) -> Result<Self, StoreConnectError> {
        Err(StoreConnectError::NotBuilt {
            store: url.masked(),
        })
    }

    /// Unreachable without the `redis` feature (no connection can be opened).
    pub fn ping(&mut self) -> Result<(), StoreConnectError> {
        Err(StoreConnectError::NotBuilt {
            store: self.url.masked(),
        })
    }
}

#[cfg(feature = "redis")]
impl StoreConnection {
    /// Opens a connection within `timeouts.connect` (TCP, TLS, `AUTH`,
    /// `SELECT`), sets `timeouts.command` as the read and write timeout, and
    /// checks the server answers `PING`.
    pub fn open(url: &StoreUrl, timeouts: Timeouts) -> Result<Self, StoreConnectError> {
        if url.tls {
            install_crypto_provider();
        }
        let address = if url.tls {
            redis::ConnectionAddr::TcpTls {
                host: url.host.clone(),
                port: url.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(url.host.clone(), url.port)
        };
        let mut settings = redis::RedisConnectionInfo::default().set_db(i64::from(url.database));
        if let Some(username) = &url.username {
            settings = settings.set_username(username.clone());
        }
        if let Some(password) = &url.password {
            settings = settings.set_password(password.clone());
        }
        let info = address
            .into_connection_info()
            .map_err(|error| classify(url, &error, Phase::Connect, timeouts.connect))?
            .set_redis_settings(settings)
            .set_tcp_settings(tcp_settings());
        let client = redis::Client::open(info)
            .map_err(|error| classify(url, &error, Phase::Connect, timeouts.connect))?;
        let started = std::time::Instant::now();
        let connection = client
            .get_connection_with_timeout(timeouts.connect)
            .map_err(|error| classify(url, &error, Phase::Connect, timeouts.connect))?;
        // The first PING is part of opening: it gets what is left of the connect budget.
        let remaining = timeouts
            .connect
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let mut opened = Self {
            url: url.clone(),
            timeouts,
            connection,
        };
        opened.set_socket_timeouts(remaining, Phase::Connect)?;
        opened.expect_pong(Phase::Connect, timeouts.connect)?;
        opened.set_socket_timeouts(timeouts.command, Phase::Connect)?;
        Ok(opened)
    }

    /// Sends `PING` and expects `PONG` within the command timeout.
    pub fn ping(&mut self) -> Result<(), StoreConnectError> {
        self.expect_pong(Phase::Command, self.timeouts.command)
    }

    fn expect_pong(&mut self, phase: Phase, budget: Duration) -> Result<(), StoreConnectError> {
        let answer: String = redis::cmd("PING")
            .query(&mut self.connection)
            .map_err(|error| classify(&self.url, &error, phase, budget))?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(StoreConnectError::Other {
                store: self.url.masked(),
                detail: format!("PING answered {:?}, not PONG", self.url.scrub(&answer)),
            })
        }
    }

    fn set_socket_timeouts(
        &self,
        timeout: Duration,
        phase: Phase,
    ) -> Result<(), StoreConnectError> {
        self.connection
            .set_read_timeout(Some(timeout))
            .and_then(|()| self.connection.set_write_timeout(Some(timeout)))
            .map_err(|error| classify(&self.url, &error, phase, timeout))
    }

    /// The client library's connection, read and write timeouts set (for
    /// scripts and pipelines); map its errors with [`StoreConnection::error`].
    pub fn raw(&mut self) -> &mut redis::Connection {
        &mut self.connection
    }

    /// A command's failure as a [`StoreConnectError`], password scrubbed.
    pub fn error(&self, error: &redis::RedisError) -> StoreConnectError {
        classify(&self.url, error, Phase::Command, self.timeouts.command)
    }

    /// Runs one command within the command timeout and converts its reply.
    pub fn query<T: redis::FromRedisValue>(
        &mut self,
        command: &redis::Cmd,
    ) -> Result<T, StoreConnectError> {
        command
            .query(&mut self.connection)
            .map_err(|error| classify(&self.url, &error, Phase::Command, self.timeouts.command))
    }
}

/// A command's failure on a connection to `url` (single node or cluster) as
/// a [`StoreConnectError`], password scrubbed; `timeout` is the command budget.
#[cfg(feature = "redis")]
pub fn command_error(
    url: &StoreUrl,
    error: &redis::RedisError,
    timeout: Duration,
) -> StoreConnectError {
    classify(url, error, Phase::Command, timeout)
}

/// A failure to open a connection to `url` as a [`StoreConnectError`].
#[cfg(feature = "redis")]
pub fn connect_error(
    url: &StoreUrl,
    error: &redis::RedisError,
    timeout: Duration,
) -> StoreConnectError {
    classify(url, error, Phase::Connect, timeout)
}

/// The client library's view of `url` (address, TLS, credentials, database).
#[cfg(feature = "redis")]
pub fn connection_info(url: &StoreUrl) -> redis::RedisResult<redis::ConnectionInfo> {
    if url.tls {
        install_crypto_provider();
    }
    let address = if url.tls {
        redis::ConnectionAddr::TcpTls {
            host: url.host.clone(),
            port: url.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        redis::ConnectionAddr::Tcp(url.host.clone(), url.port)
    };
    let mut settings = redis::RedisConnectionInfo::default().set_db(i64::from(url.database));
    if let Some(username) = &url.username {
        settings = settings.set_username(username.clone());
    }
    if let Some(password) = &url.password {
        settings = settings.set_password(password.clone());
    }
    Ok(address
        .into_connection_info()?
        .set_redis_settings(settings)
        .set_tcp_settings(tcp_settings()))
}

#[cfg(feature = "redis")]
use redis::IntoConnectionInfo as _;

/// `TCP_NODELAY`: a pacing call is a small request waiting for its reply;
/// Nagle's algorithm would only hold it back.
#[cfg(feature = "redis")]
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

#[cfg(feature = "redis")]
fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(feature = "redis")]
fn classify(
    url: &StoreUrl,
    error: &redis::RedisError,
    phase: Phase,
    timeout: Duration,
) -> StoreConnectError {
    let store = url.masked();
    let code = error.code().unwrap_or_default();
    if matches!(code, "WRONGPASS") || error.kind() == redis::ErrorKind::AuthenticationFailed {
        return StoreConnectError::WrongPassword { store };
    }
    if code == "NOAUTH" {
        return StoreConnectError::PasswordRequired { store };
    }
    // Only TCP addresses are built here, so "refused" is never a missing socket file.
    if error.is_connection_refusal() {
        return StoreConnectError::Refused { store };
    }
    if error.is_timeout() {
        // A plain server never answers a TLS hello (it waits for a line end),
        // so over TLS a silent connect is most likely the wrong kind of port.
        if url.tls && phase == Phase::Connect {
            return StoreConnectError::Tls {
                store,
                detail: format!("no TLS answer within {} ms", timeout.as_millis()),
            };
        }
        return StoreConnectError::Timeout {
            store,
            phase,
            timeout,
        };
    }
    let detail = url.scrub(&error.to_string());
    if url.tls && is_tls_failure(error, phase) {
        return StoreConnectError::Tls { store, detail };
    }
    StoreConnectError::Other { store, detail }
}

#[cfg(feature = "redis")]
fn is_tls_failure(error: &redis::RedisError, phase: Phase) -> bool {
    // A TLS client talking to a plain server sees garbage records (rustls:
    // InvalidMessage / corrupt message), or the server closing the socket.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    for _ in 0..8 {
        let Some(current) = source else { break };
        if current.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        let text = current.to_string();
        if text.contains("InvalidContentType")
            || text.contains("corrupt message")
            || text.contains("InvalidMessage")
        {
            return true;
        }
        source = current.source();
    }
    // The server hanging up on a hello it could not read.
    phase == Phase::Connect && error.is_io_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> StoreUrl {
        StoreUrl::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn refusal(text: &str) -> StoreUrlError {
        StoreUrl::parse(text).expect_err(text)
    }

    #[test]
    fn a_cluster_url_names_its_seeds_with_shared_credentials_masked() {
        let cluster =
            ClusterUrl::parse("rediss+cluster://ops:s3cret@a.internal:7000,[::1]:7001,b").unwrap();
        let seeds = cluster.seeds();
        assert_eq!(seeds.len(), 3);
        assert!(seeds.iter().all(|seed| seed.tls() && seed.has_password()));
        assert_eq!(seeds[0].username(), Some("ops"));
        assert_eq!((seeds[1].host(), seeds[1].port()), ("::1", 7001));
        assert_eq!((seeds[2].host(), seeds[2].port()), ("b", DEFAULT_PORT));
        let shown = cluster.to_string();
        assert_eq!(
            shown,
            "rediss+cluster://ops:***@a.internal:7000,[::1]:7001,b:6379"
        );
        assert_eq!(format!("{cluster:?}"), format!("ClusterUrl({shown})"));
        assert!(ClusterUrl::is_cluster_text("redis+cluster://h:1"));
        assert!(!ClusterUrl::is_cluster_text("redis://h:1"));
        assert_eq!(
            ClusterUrl::parse("redis+cluster://h:1/0")
                .unwrap()
                .to_string(),
            "redis+cluster://h:1"
        );
    }

    #[test]
    fn a_bad_cluster_url_is_refused_naming_what_is_wrong_and_never_the_password() {
        for (text, reason) in [
            (
                "redis+cluster://:pw@h:1,,h:2",
                "an empty node between commas",
            ),
            (
                "redis+cluster://:pw@h:1,h:0",
                "node `h:0`: the port must be a number",
            ),
            ("redis+cluster://:pw@h:1/3", "a cluster has only database 0"),
            ("redis+cluster://", "an empty node"),
            ("http+cluster://:pw@h:1", "expected redis+cluster://"),
        ] {
            let error = ClusterUrl::parse(text).expect_err(text);
            assert!(error.reason.starts_with(reason), "{text}: {}", error.reason);
            assert!(!error.to_string().contains("pw"), "{error}");
        }
        let many = format!("redis+cluster://{}", vec!["h:1"; 65].join(","));
        assert!(ClusterUrl::parse(&many)
            .unwrap_err()
            .reason
            .contains("more than 64"));
    }

    #[test]
    fn full_url_parses_into_its_parts() {
        let url = parse("redis://alice:s3cret@cache.internal:6380/2");
        assert!(!url.tls());
        assert_eq!(url.host(), "cache.internal");
        assert_eq!(url.port(), 6380);
        assert_eq!(url.database(), 2);
        assert_eq!(url.username(), Some("alice"));
        assert!(url.has_password());
    }

    #[test]
    fn defaults_fill_port_and_database() {
        let url = parse("redis://127.0.0.1");
        assert_eq!((url.port(), url.database()), (DEFAULT_PORT, 0));
        assert_eq!(url.to_string(), "redis://127.0.0.1:6379/0");
        assert_eq!(parse("redis://h/").database(), 0);
    }

    #[test]
    fn rediss_means_tls_and_ipv6_keeps_its_brackets_when_shown() {
        let url = parse("rediss://[::1]:7000/1");
        assert!(url.tls());
        assert_eq!(url.host(), "::1");
        assert_eq!(url.to_string(), "rediss://[::1]:7000/1");
    }

    #[test]
    fn display_and_debug_mask_the_password() {
        let url = parse("redis://user:hunter2@host:6379/0");
        assert_eq!(url.to_string(), "redis://user:***@host:6379/0");
        assert_eq!(url.masked(), "redis://user:***@host:6379/0");
        let debug = format!("{url:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(parse("redis://:pw@h").to_string(), "redis://:***@h:6379/0");
    }

    #[test]
    fn percent_escapes_in_credentials_are_decoded() {
        let url = parse("redis://us%40er:p%40ss%3Aword@h:1");
        assert_eq!(url.username(), Some("us@er"));
        assert_eq!(url.password.as_deref(), Some("p@ss:word"));
        assert_eq!(url.to_string(), "redis://us%40er:***@h:1/0");
    }

    #[test]
    fn a_raw_at_sign_in_the_password_splits_at_the_last_one() {
        let url = parse("redis://u:a@b@host:1");
        assert_eq!(url.host(), "host");
        assert_eq!(url.password.as_deref(), Some("a@b"));
    }

    #[test]
    fn refusals_name_the_url_with_the_password_masked() {
        let cases = [
            ("http://u:topsecret@h:1", "unsupported scheme"),
            ("redis://u:topsecret@h:0", "port"),
            ("redis://u:topsecret@h:70000", "port"),
            ("redis://u:topsecret@h:+1", "port"),
            ("redis://u:topsecret@h:1/x", "database number"),
            ("redis://u:topsecret@h:1/-1", "database number"),
            ("redis://u:topsecret@:1", "host is missing"),
            ("redis://u:topsecret@h%20x:1", "host may hold"),
            ("redis://u:topsecret@[::g]:1", "IPv6"),
            ("redis://u:topsecret@h:1?protocol=resp3", "query"),
            ("redis://u:topsecret@h:1#insecure", "fragments"),
            ("redis://u:topsecret%zz@h:1", "%-escape"),
            ("redis://u:@h:1", "password after `:` is empty"),
            ("redis://u@h:1", "need a password"),
            ("redis://u:topsecret @h:1", "spaces"),
        ];
        for (text, expected) in cases {
            let error = refusal(text);
            let message = error.to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(!message.contains("topsecret"), "{text}: {message}");
            assert!(message.contains("store URL `"), "{message}");
        }
        assert_eq!(refusal("http://u:topsecret@h:1").url, "http://u:***@h:1");
    }

    #[test]
    fn an_overlong_url_is_refused_and_shown_cut_and_masked() {
        let text = format!("redis://u:topsecret@{}", "h".repeat(MAX_URL_LENGTH));
        let error = refusal(&text);
        assert!(error.reason.contains("longer than"), "{error}");
        assert!(
            error.url.len() < 100 && !error.url.contains("topsecret"),
            "{error}"
        );
    }

    #[test]
    fn mask_url_text_masks_whatever_sits_before_the_last_at() {
        assert_eq!(mask_url_text("redis://u:p@h"), "redis://u:***@h");
        assert_eq!(mask_url_text("redis://justsecret@h"), "redis://***@h");
        assert_eq!(mask_url_text("redis://h:1"), "redis://h:1");
        assert_eq!(mask_url_text("no scheme u:p@h"), "no scheme u:p@h");
    }

    #[test]
    fn scrub_removes_the_password_from_library_text() {
        let url = parse("redis://u:pa55@h");
        assert_eq!(url.scrub("AUTH u pa55 failed"), "AUTH u *** failed");
    }

    #[test]
    fn default_timeouts_are_the_documented_ones() {
        let timeouts = Timeouts::default();
        assert_eq!(timeouts.connect, Duration::from_secs(1));
        assert_eq!(timeouts.command, Duration::from_secs(2));
    }

    #[test]
    fn error_messages_name_the_masked_store_and_the_budget() {
        let url = parse("redis://u:pw@h:1/0");
        let error = StoreConnectError::Timeout {
            store: url.masked(),
            phase: Phase::Command,
            timeout: Duration::from_millis(300),
        };
        assert_eq!(
            error.to_string(),
            "store redis://u:***@h:1/0: no answer within 300 ms while a command"
        );
    }
}
