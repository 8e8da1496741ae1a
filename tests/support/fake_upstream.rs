//! A scriptable local upstream for the proxy's tests: it logs every request
//! it receives and answers with whatever the test's responder returns, as
//! one body or as chunks sent one by one (a server-sent event stream).
//!
//! Loopback only, one thread per connection, every read and write with a
//! timeout, sizes capped; dropping it stops the accept loop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD_LINES: usize = 200;
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `POST`, `GET`…
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Seen {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// An answer to send.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body in pieces; more than one piece is sent chunked, with `pause` between.
    pub chunks: Vec<Vec<u8>>,
    /// Pause before each chunk after the first.
    pub pause: Duration,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.as_bytes().to_vec()],
            pause: Duration::ZERO,
        }
    }

    /// A server-sent event stream of `events`, one chunk each.
    pub fn events(events: &[&str], pause: Duration) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: events
                .iter()
                .map(|event| event.as_bytes().to_vec())
                .collect(),
            pause,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Responder = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The running upstream.
pub struct FakeUpstream {
    address: SocketAddr,
    scheme: &'static str,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeUpstream {
    /// Starts on a free loopback port, answering with `responder`.
    pub fn start(responder: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(None, responder)
    }

    /// Starts an HTTPS upstream with a self-signed certificate for
    /// `127.0.0.1` and `localhost`, made here; returns it with the
    /// certificate's PEM, for the client to trust.
    pub fn start_tls(responder: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> (Self, String) {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
        (
            Self::start_with(Some(Arc::new(config)), responder),
            certified.cert.pem(),
        )
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        responder: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let responder: Arc<Responder> = Arc::new(responder);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accept = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Ends when the upstream is dropped; each pass accepts or naps 2 ms.
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (log, responder, tls) =
                                (Arc::clone(&log), Arc::clone(&responder), tls.clone());
                            std::thread::spawn(move || {
                                let _ = stream.set_nonblocking(false);
                                let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
                                let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
                                match tls {
                                    Some(config) => {
                                        let Ok(connection) = rustls::ServerConnection::new(config)
                                        else {
                                            return;
                                        };
                                        serve(
                                            rustls::StreamOwned::new(connection, stream),
                                            &log,
                                            responder.as_ref(),
                                        );
                                    }
                                    None => serve(stream, &log, responder.as_ref()),
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Self {
            address,
            scheme,
            log,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS upstream).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve<S: Read + Write>(stream: S, log: &Mutex<Vec<Seen>>, responder: &Responder) {
    let mut reader = BufReader::new(stream);
    // One request per pass; ends when the client closes or sends garbage.
    for _ in 0..10_000 {
        let Some(seen) = read_request(&mut reader) else {
            return;
        };
        log.lock().unwrap().push(seen.clone());
        let reply = responder(&seen);
        if write_reply(reader.get_mut(), &reply).is_err() {
            return;
        }
    }
}

fn read_request<S: Read>(reader: &mut BufReader<S>) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    for _ in 0..MAX_HEAD_LINES {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(MAX_BODY_BYTES)];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

fn write_reply(writer: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} Fake\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let chunked = reply.chunks.len() > 1;
    if chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
    } else {
        let length = reply.chunks.first().map_or(0, Vec::len);
        head.push_str(&format!("content-length: {length}\r\n\r\n"));
    }
    writer.write_all(head.as_bytes())?;
    for (index, chunk) in reply.chunks.iter().enumerate() {
        if chunked {
            if index > 0 {
                std::thread::sleep(reply.pause);
            }
            writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
            writer.write_all(chunk)?;
            writer.write_all(b"\r\n")?;
            writer.flush()?;
        } else {
            writer.write_all(chunk)?;
        }
    }
    if chunked {
        writer.write_all(b"0\r\n\r\n")?;
    }
    writer.flush()
}

/// The answer of a raw HTTP/1.1 exchange.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body` to `address` with `connection: close`, and reads the whole answer.
pub fn exchange(address: &str, head: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let request = format!(
        "{head}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_answer(&raw)
}

/// A `POST` of a JSON body to `path` at `address`.
pub fn post(address: &str, path: &str, body: &str) -> Answer {
    exchange(
        address,
        &format!("POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json"),
        body.as_bytes(),
    )
}

fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("an answer head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value == "chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    // Each pass takes one chunk off the front; ends at the last chunk or bad framing.
    while let Some(end) = raw.windows(2).position(|window| window == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < end + 2 + size {
            break;
        }
        body.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 4 + size).min(raw.len())..];
    }
    body
}
