//! Real `redis-server` processes for tests and benchmarks, on loopback only.
//!
//! - [`RedisServer::start`]: one server on a free `127.0.0.1` port (never
//!   6379), persistence off (`--save ''`, `--appendonly no`), its own temp
//!   directory, TLS off (the default), an optional `--requirepass`. It is ready when it
//!   answers `INFO server` with its own process id within [`READY_DEADLINE`].
//! - [`RedisServer::kill`] / [`RedisServer::restart`]: SIGKILL it, bring it back
//!   on the same port (empty: nothing is persisted).
//! - [`RedisCluster::start`]: three cluster-enabled servers on free ports
//!   ≤ 55535 (the cluster bus is port + 10000), joined with
//!   `redis-cli --cluster create … --cluster-yes`, ready when every node
//!   reports `cluster_state:ok` within [`CLUSTER_DEADLINE`].
//! - [`require_redis`]: whether the binaries exist. When missing, a test skips
//!   with a message on stderr, except under `CI=true`, where it fails.
//!
//! Every wait has a deadline; dropping a server kills and reaps it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING`.
pub const READY_DEADLINE: Duration = Duration::from_secs(5);
/// How long a cluster may take to form and report `cluster_state:ok`.
pub const CLUSTER_DEADLINE: Duration = Duration::from_secs(20);
/// How long a killed process may take to be reaped.
const REAP_DEADLINE: Duration = Duration::from_secs(5);
/// Socket timeouts of the harness's own raw commands.
const RAW_TIMEOUT: Duration = Duration::from_secs(2);
/// Highest port a cluster node may use: its bus port (+10000) must exist.
pub const MAX_CLUSTER_PORT: u16 = 55535;
/// How many times a start is retried when another process grabbed the port.
const START_ATTEMPTS: usize = 3;

/// `Some(())` when `redis-server` and `redis-cli` run. When they do not: under
/// `CI=true` this panics (CI must install them, see `.ci/run`); otherwise it
/// prints why `test` is skipped (uncaptured, so it shows) and returns `None`.
pub fn require_redis(test: &str) -> Option<()> {
    let missing: Vec<&str> = ["redis-server", "redis-cli"]
        .into_iter()
        .filter(|binary| {
            !Command::new(binary)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    let what = missing.join(" and ");
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{test}: {what} not found on PATH; CI must install them (.ci/run installs redis-server)");
    }
    // Straight to the stream: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} not found on PATH (apt-get install redis-server)"
    );
    None
}

/// Options for one server.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// `--requirepass` when set.
    pub password: Option<String>,
    /// Start as a cluster node (`--cluster-enabled yes`).
    pub cluster: bool,
}

/// One `redis-server` child process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    options: RedisOptions,
    directory: tempfile::TempDir,
}

impl RedisServer {
    /// A server without a password on a free port.
    pub fn start() -> Self {
        Self::start_with(RedisOptions::default())
    }

    /// A server with `options` on a free port (retried on another port if the
    /// chosen one was taken between choosing and binding).
    pub fn start_with(options: RedisOptions) -> Self {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = if options.cluster {
                free_cluster_port()
            } else {
                free_port()
            };
            match Self::start_on(port, options.clone()) {
                Ok(server) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("redis-server did not start in {START_ATTEMPTS} attempts: {last_error}");
    }

    fn start_on(port: u16, options: RedisOptions) -> Result<Self, String> {
        assert_ne!(port, 6379, "tests never use the default Redis port");
        let directory = tempfile::tempdir().map_err(|error| format!("temp dir: {error}"))?;
        let mut server = Self {
            child: None,
            port,
            options,
            directory,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let directory = self.directory.path();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(directory)
            .arg("--logfile")
            .arg(self.log_path());
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password]);
        }
        if self.options.cluster {
            command
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "2000"]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|error| format!("spawn redis-server: {error}"))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "redis-server on port {} exited ({status}): {}",
                        self.port,
                        self.log_tail()
                    ));
                }
            }
            // Ready means *our* process answers: another test's server could
            // hold the port for a moment before ours fails to bind and exits.
            let pid = self.child.as_ref().map(Child::id).unwrap_or_default();
            match self.command(&["INFO", "server"]) {
                Ok(info)
                    if info
                        .lines()
                        .any(|line| line.trim_end() == format!("process_id:{pid}")) =>
                {
                    return Ok(());
                }
                Ok(info) if info.contains("process_id:") => {
                    self.stop();
                    return Err(format!(
                        "port {} is served by another redis-server",
                        self.port
                    ));
                }
                _ if Instant::now() >= deadline => {
                    self.stop();
                    return Err(format!(
                        "redis-server on port {} not answering INFO within {READY_DEADLINE:?}: {}",
                        self.port,
                        self.log_tail()
                    ));
                }
                _ => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`, with `:password@` when the server has one.
    pub fn url(&self) -> String {
        match &self.options.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Runs one command over a fresh raw connection (authenticating when the
    /// server has a password) and returns the reply's first line, or a bulk
    /// string's body.
    pub fn command(&self, args: &[&str]) -> Result<String, String> {
        raw_command(self.port, self.options.password.as_deref(), args)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().is_ok_and(|status| status.is_none()))
    }

    /// SIGKILLs the server and reaps it (a crash: nothing is saved).
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Starts the server again on the same port, empty, after [`Self::kill`]
    /// (kills it first if it still runs).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(error) if Instant::now() >= deadline => {
                    panic!("restart on port {}: {error}", self.port)
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let deadline = Instant::now() + REAP_DEADLINE;
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                thread::sleep(Duration::from_millis(5));
            }
            eprintln!(
                "redis-server pid {} not reaped within {REAP_DEADLINE:?}",
                child.id()
            );
        }
    }

    fn log_path(&self) -> PathBuf {
        self.directory.path().join("redis.log")
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A three-node Redis Cluster (masters only, all 16384 slots covered).
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes, joins them and waits for `cluster_state:ok` on each.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(RedisOptions {
                    cluster: true,
                    ..RedisOptions::default()
                })
            })
            .collect();
        let deadline = Instant::now() + CLUSTER_DEADLINE;
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let mut create = Command::new("redis-cli");
        create
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = create.spawn().expect("spawn redis-cli --cluster create");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-cli --cluster create did not finish within {CLUSTER_DEADLINE:?}");
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(error) => panic!("waiting for redis-cli: {error}"),
            }
        };
        if !status.success() {
            let mut output = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                let _ = stdout.read_to_string(&mut output);
            }
            panic!("redis-cli --cluster create failed ({status}): {output}");
        }
        let cluster = Self { nodes };
        loop {
            let states: Vec<String> = cluster
                .nodes
                .iter()
                .map(|node| {
                    node.command(&["CLUSTER", "INFO"])
                        .unwrap_or_else(|error| error)
                })
                .collect();
            if states.iter().all(|info| info.contains("cluster_state:ok")) {
                return cluster;
            }
            if Instant::now() >= deadline {
                panic!("cluster not ok on every node within {CLUSTER_DEADLINE:?}: {states:?}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The nodes, in creation order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, mutable (to kill or restart one).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// `redis://127.0.0.1:PORT/0` of every node (seed URLs for a cluster client).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// A port the kernel just handed out on 127.0.0.1 (free at that moment).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if port != 6379 {
            return port;
        }
    }
    panic!("no free loopback port in 100 tries");
}

/// A free port ≤ [`MAX_CLUSTER_PORT`] whose bus port (+10000) is free too.
pub fn free_cluster_port() -> u16 {
    for _ in 0..500 {
        let port = fastrand::u16(20000..=MAX_CLUSTER_PORT);
        let bound = TcpListener::bind(("127.0.0.1", port));
        let bus = TcpListener::bind(("127.0.0.1", port + 10000));
        if bound.is_ok() && bus.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair (p, p+10000) with p <= {MAX_CLUSTER_PORT} in 500 tries");
}

/// A loopback port on which nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    free_port()
}

/// Sends one RESP command to 127.0.0.1:`port` (after `AUTH` when `password` is
/// given) and returns the reply: `+…`/`-…`/`:…` lines as they are, a bulk
/// string's body without its header. Bounded by socket timeouts.
pub fn raw_command(port: u16, password: Option<&str>, args: &[&str]) -> Result<String, String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, RAW_TIMEOUT).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(RAW_TIMEOUT))
        .map_err(|error| error.to_string())?;
    stream
        .set_write_timeout(Some(RAW_TIMEOUT))
        .map_err(|error| error.to_string())?;
    if let Some(password) = password {
        let reply = exchange(&mut stream, &["AUTH", password])?;
        if reply != "+OK" {
            return Err(format!("AUTH: {reply}"));
        }
    }
    exchange(&mut stream, args)
}

/// Writes one command without reading its reply (for commands that block the
/// server, such as `DEBUG SLEEP` or `CLIENT PAUSE`). The returned stream keeps
/// the connection open until dropped.
pub fn send_without_reply(port: u16, args: &[&str]) -> TcpStream {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, RAW_TIMEOUT).expect("connect");
    stream
        .set_write_timeout(Some(RAW_TIMEOUT))
        .expect("write timeout");
    stream.write_all(&encode(args)).expect("write command");
    stream
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request
}

fn exchange(stream: &mut TcpStream, args: &[&str]) -> Result<String, String> {
    stream
        .write_all(&encode(args))
        .map_err(|error| error.to_string())?;
    let mut reply = Vec::new();
    let mut buffer = [0_u8; 4096];
    // A reply is complete when its first line is, plus a bulk body if announced.
    for _ in 0..10_000 {
        if let Some(line_end) = reply.windows(2).position(|pair| pair == b"\r\n") {
            let line = String::from_utf8_lossy(&reply[..line_end]).into_owned();
            let Some(length) = line.strip_prefix('$') else {
                return Ok(line);
            };
            let length: i64 = length
                .parse()
                .map_err(|_| format!("bad bulk header {line}"))?;
            if length < 0 {
                return Ok(String::from("(nil)"));
            }
            let body_start = line_end + 2;
            let body_end = body_start + length as usize;
            if reply.len() >= body_end + 2 {
                return Ok(String::from_utf8_lossy(&reply[body_start..body_end]).into_owned());
            }
        }
        let read = stream
            .read(&mut buffer)
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err(String::from("connection closed before a full reply"));
        }
        reply.extend_from_slice(&buffer[..read]);
    }
    Err(String::from("reply too long for the harness"))
}
