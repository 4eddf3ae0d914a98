//! Plain HTTP/1.1 on loopback for the end-to-end tests, with nothing but `std`: a client for
//! hotdesk's API (contract §4) and the webhook receiver that stands in for the call-control
//! layer (contract §5), checking every report's HMAC-SHA256 signature as it arrives.
//!
//! Both sides are deliberately small and strict: one request per connection on the client
//! (`Connection: close`), `Content-Length` or chunked bodies, bounded waits everywhere.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Messages

/// A parsed HTTP message head and body.
#[derive(Debug, Clone)]
pub struct Message {
    /// Request line or status line.
    pub start_line: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Message {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one message from `r`: `Ok(None)` on a clean end of stream before any byte.
fn read_message(r: &mut impl BufRead, has_body: bool) -> std::io::Result<Option<Message>> {
    let mut start_line = String::new();
    if r.read_line(&mut start_line)? == 0 {
        return Ok(None);
    }
    let start_line = start_line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("end of stream inside the head of {start_line:?}"),
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad header line {line:?}"),
            )
        })?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut msg = Message {
        start_line,
        headers,
        body: Vec::new(),
    };
    if !has_body {
        return Ok(Some(msg));
    }
    let chunked = msg
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk)?;
            msg.body.extend_from_slice(&chunk);
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(len) = msg.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        msg.body = vec![0; len];
        r.read_exact(&mut msg.body)?;
    } else if !msg.start_line.starts_with("HTTP/") {
        // A request without a length has no body.
    } else {
        r.read_to_end(&mut msg.body)?;
    }
    Ok(Some(msg))
}

// ---------------------------------------------------------------------------------------------
// Client

/// A response from hotdesk's API.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The whole message.
    pub message: Message,
}

impl Response {
    /// The body parsed as JSON (fails the test with the body if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.message.body).unwrap_or_else(|e| {
            panic!(
                "response {} is not JSON ({e}): {:?}",
                self.message.start_line,
                self.message.text()
            )
        })
    }

    /// Status line, headers and body, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = self.message.start_line.clone();
        for (n, v) in &self.message.headers {
            s.push_str(&format!("\n{n}: {v}"));
        }
        s.push_str("\n\n");
        s.push_str(&self.message.text());
        s
    }
}

/// One request to `addr` (`Connection: close`), JSON body when given, bearer `token` when given.
/// Every step is bounded by `timeout`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    } else if matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        stream.write_all(body)?;
    }
    let mut r = BufReader::new(stream);
    let message = read_message(&mut r, method != "HEAD")?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed without a response",
        )
    })?;
    let status = message
        .start_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line {:?}", message.start_line),
            )
        })?;
    Ok(Response { status, message })
}

/// hotdesk's HTTP API at one address, with an optional bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `Authorization: Bearer` token sent with every request.
    pub token: Option<String>,
}

impl Api {
    /// A request that must get a response (a connection or protocol error fails the test).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, bytes.as_deref())
    }

    /// The same with a raw body (for malformed JSON).
    pub fn raw(&self, method: &str, path: &str, body: Option<&[u8]>) -> Response {
        request(
            self.addr,
            method,
            path,
            self.token.as_deref(),
            body,
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{method} http://{}{path}: {e}", self.addr))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.call("GET", path, None)
    }

    /// Waits up to `timeout` for `GET /healthz` to answer 200.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            let last = match request(
                self.addr,
                "GET",
                "/healthz",
                self.token.as_deref(),
                None,
                Duration::from_secs(2),
            ) {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => r.describe(),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= end {
                return Err(format!(
                    "GET http://{}/healthz did not answer 200 within {timeout:?}; last: {last}",
                    self.addr
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Wall-clock arrival (the whole body read).
    pub received: SystemTime,
    /// Monotonic arrival.
    pub instant: Instant,
    /// The request.
    pub message: Message,
    /// The body as JSON, when it is.
    pub json: Option<Value>,
    /// Whether `X-Hotdesk-Signature` is `sha256=<hex HMAC-SHA256(secret, body)>`.
    pub signature_ok: bool,
}

impl Hook {
    /// `field` of the JSON body as a string (`None` for null, absent or not a string).
    pub fn field(&self, field: &str) -> Option<&str> {
        self.json.as_ref().and_then(|v| v[field].as_str())
    }

    /// The report id (`id` of the body).
    pub fn id(&self) -> &str {
        self.field("id").unwrap_or("")
    }

    /// The event name.
    pub fn event(&self) -> &str {
        self.field("event").unwrap_or("")
    }

    /// One line: event, device, user, via, id.
    pub fn summary(&self) -> String {
        match &self.json {
            Some(v) => v.to_string(),
            None => format!("(not JSON) {}", self.message.text()),
        }
    }
}

/// The receiver's state, shared with its threads.
struct Shared {
    hooks: Mutex<Vec<Hook>>,
    cv: Condvar,
    secret: Vec<u8>,
    /// Set to take the receiver down: the listener and every connection close.
    stop: AtomicBool,
}

/// An HTTP server on a loopback port taking the webhook's POSTs and answering 200.
/// [`WebhookReceiver::stop`] takes it off the network (connections refused) until
/// [`WebhookReceiver::start_again`].
pub struct WebhookReceiver {
    /// Its port.
    pub port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// `sha256=<hex>` of the body with `secret`: the legacy signature (`report.signature =
/// "legacy"`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How far a `v1` signature's time may be from the receiver's clock.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

/// Checks `X-Hotdesk-Signature: t=UNIX,v1=HEX` as the reference tells a receiver to: HEX is
/// HMAC-SHA256(secret, "UNIX." body), and UNIX within [`SIGNATURE_TOLERANCE_S`] of `now`.
/// Written from the reference, not from hotdesk's code.
pub fn verify_v1(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), String> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1.push(value.to_owned()),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| format!("no t= in {header:?}"))?;
    if (now - t).abs() > SIGNATURE_TOLERANCE_S {
        return Err(format!("t={t} is {}s from now", now - t));
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if v1.contains(&expected) {
        Ok(())
    } else {
        Err(format!("no v1= matches HMAC(secret, t.body) = {expected}"))
    }
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl WebhookReceiver {
    /// Starts receiving on `127.0.0.1:port`; signatures are checked with `secret`.
    pub fn start(port: u16, secret: &[u8]) -> WebhookReceiver {
        let shared = Arc::new(Shared {
            hooks: Mutex::new(Vec::new()),
            cv: Condvar::new(),
            secret: secret.to_vec(),
            stop: AtomicBool::new(false),
        });
        let mut r = WebhookReceiver {
            port,
            shared,
            accept: None,
        };
        r.start_again();
        r
    }

    /// The URL for `[report] webhook_url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Takes the receiver off the network: the listening socket and every open connection
    /// close, so hotdesk's deliveries are refused until [`WebhookReceiver::start_again`].
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            t.join().expect("the accept thread panicked");
        }
    }

    /// Listens again on the same port (after [`WebhookReceiver::stop`]).
    pub fn start_again(&mut self) {
        assert!(self.accept.is_none(), "the receiver is already running");
        self.shared.stop.store(false, Ordering::SeqCst);
        // A connection of the previous life may hold the port for a moment.
        let end = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("webhook receiver cannot bind 127.0.0.1:{}: {e}", self.port),
            }
        };
        listener.set_nonblocking(true).unwrap();
        let shared = self.shared.clone();
        self.accept = Some(thread::spawn(move || {
            let mut conns: Vec<(TcpStream, JoinHandle<()>)> = Vec::new();
            while !shared.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let keep = stream.try_clone().unwrap();
                        let shared = shared.clone();
                        let t = thread::spawn(move || serve_connection(stream, &shared));
                        conns.push((keep, t));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
                conns.retain(|(_, t)| !t.is_finished());
            }
            drop(listener);
            for (s, t) in conns {
                let _ = s.shutdown(Shutdown::Both);
                let _ = t.join();
            }
        }));
    }

    /// Every request so far, in arrival order.
    pub fn hooks(&self) -> Vec<Hook> {
        self.shared.hooks.lock().unwrap().clone()
    }

    /// The reports so far, duplicates (same id) dropped, first arrival kept.
    pub fn reports(&self) -> Vec<Hook> {
        let mut seen = HashSet::new();
        self.hooks()
            .into_iter()
            .filter(|h| seen.insert(h.id().to_string()))
            .collect()
    }

    /// Waits up to `timeout` for the hooks so far to satisfy `done`; returns them either way.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Hook]) -> bool) -> Vec<Hook> {
        let end = Instant::now() + timeout;
        let mut g = self.shared.hooks.lock().unwrap();
        loop {
            if done(&g) {
                return g.clone();
            }
            let now = Instant::now();
            if now >= end {
                return g.clone();
            }
            g = self.shared.cv.wait_timeout(g, end - now).unwrap().0;
        }
    }

    /// Waits up to `timeout` for a report matching `pred` among those from index `from` on.
    pub fn wait_report(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Hook) -> bool,
    ) -> Option<Hook> {
        let hooks = self.wait_until(timeout, |h| h.iter().skip(from).any(&pred));
        hooks.into_iter().skip(from).find(|h| pred(h))
    }

    /// Number of requests so far.
    pub fn count(&self) -> usize {
        self.shared.hooks.lock().unwrap().len()
    }

    /// Every request so far as lines, for failure messages.
    pub fn describe(&self) -> String {
        let hooks = self.hooks();
        if hooks.is_empty() {
            return "(no webhook request received)".into();
        }
        hooks
            .iter()
            .map(|h| {
                format!(
                    "{} sig_ok={} {}",
                    h.message.start_line,
                    h.signature_ok,
                    h.summary()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves one connection (keep-alive) until the peer closes it or the receiver stops.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let msg = match read_message(&mut r, true) {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => return,
        };
        if shared.stop.load(Ordering::SeqCst) {
            // Taken down while the request came in: hotdesk sees the connection drop.
            return;
        }
        let received = SystemTime::now();
        let instant = Instant::now();
        let json = serde_json::from_slice(&msg.body).ok();
        let signature_ok = msg
            .header("x-hotdesk-signature")
            .is_some_and(|h| verify_v1(&shared.secret, h, &msg.body, unix_now()).is_ok());
        let close = msg
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        {
            let mut hooks = shared.hooks.lock().unwrap();
            hooks.push(Hook {
                received,
                instant,
                message: msg,
                json,
                signature_ok,
            });
            shared.cv.notify_all();
        }
        let reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if writer.write_all(reply.as_bytes()).is_err() || close {
            return;
        }
    }
}
