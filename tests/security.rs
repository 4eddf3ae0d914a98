//! What an outside attack found, each as it was found: against `hotdesk serve` on loopback,
//! driven from outside by a hand-made SIP and RTP peer (an attacker crafts its own packets, so
//! the peer here does too: [`Phone`]), the HTTP API over plain TCP, and the webhook receiver
//! of `common::http`.
//!
//! Other loopback hosts (127.0.0.2 …) play third parties and other sources: Linux answers for
//! the whole of 127.0.0.0/8, so a socket bound there is another address on the wire.
//!
//! The tests need the peers of `.ci/run` only for the CLI (`hotdesk users`); no sipp here.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{Api, WebhookReceiver};
use common::peers::{self, ChildGuard, Hotdesk, Ports, ServerOptions};
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::rtp::packet;
use hotdesk_qa::dtmf_stream::{self, DtmfMode, DtmfStreamSpec};
use serde_json::Value;

const PEPPER: &str = "8f1c2a3b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
const SECRET: &str = "security-test-webhook-secret";
/// Ann's PIN: nine digits none of which is in her extension 1001, so any of them in a log
/// field shows.
const PIN: &str = "739684736";

// ---------------------------------------------------------------------------------------------
// The server

struct Server {
    dir: tempfile::TempDir,
    hotdesk: Hotdesk,
    hooks: WebhookReceiver,
    api: Api,
}

impl Server {
    /// A server with user 1001 (PIN [`PIN`]), a webhook receiver, and `extra` TOML tables.
    fn start(name: &str, extra: &str, rust_log: &str) -> Server {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hotdesk-security-{name}-"))
            .tempdir()
            .unwrap();
        let ports = Ports::alloc();
        let hooks = WebhookReceiver::start(ports.at(7), SECRET.as_bytes());
        let opts = ServerOptions {
            features: vec![
                "login_code = \"*88\"".into(),
                "release_code = \"*89\"".into(),
                "device_range = \"5400-5499\"".into(),
            ],
            extra_toml: format!(
                "[report]\nwebhook_url = \"{}\"\nsecret_env = \"HOTDESK_WEBHOOK_SECRET\"\n\n{extra}",
                hooks.url()
            ),
            env: vec![
                ("HOTDESK_PIN_PEPPER".into(), PEPPER.into()),
                ("HOTDESK_WEBHOOK_SECRET".into(), SECRET.into()),
            ],
            rust_log: Some(rust_log.into()),
            ..Default::default()
        };
        let config = Hotdesk::write_config(dir.path(), &ports, &opts);
        cli(
            dir.path(),
            &config,
            &["users", "add", "1001", "--name", "Ann"],
            "",
        );
        cli(
            dir.path(),
            &config,
            &["users", "set-pin", "1001"],
            &format!("{PIN}\n"),
        );
        let hotdesk = Hotdesk::start_with_config(dir.path(), &ports, &opts, &config);
        let api = Api {
            addr: SocketAddr::from(([127, 0, 0, 1], ports.hotdesk_api())),
            token: None,
        };
        api.wait_healthy(Duration::from_secs(10)).unwrap();
        Server {
            dir,
            hotdesk,
            hooks,
            api,
        }
    }

    fn sip(&self) -> SocketAddr {
        self.hotdesk.sip
    }

    /// A phone on `host` (a loopback address) calling this server.
    fn phone(&self, host: &str) -> Phone {
        Phone::new(host, self.sip())
    }

    fn context(&self) -> String {
        format!(
            "dir {}\nreports:\n{}\nhotdesk log:\n{}",
            self.dir.path().display(),
            self.hooks.describe(),
            self.hotdesk.log_text()
        )
    }
}

/// `hotdesk ARGS --config CONFIG` with the PIN pepper, `stdin` fed in; must exit 0.
fn cli(dir: &Path, config: &Path, args: &[&str], stdin: &str) {
    let mut child = ChildGuard::spawn(
        "hotdesk (CLI)",
        Command::new(env!("CARGO_BIN_EXE_hotdesk"))
            .args(args)
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .env("HOTDESK_PIN_PEPPER", PEPPER)
            .env("HOTDESK_WEBHOOK_SECRET", SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let _ = child
        .child_mut()
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes());
    let status = child.wait_timeout(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "hotdesk {args:?}: {status:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A hand-made SIP phone

/// One call from a loopback host, written by hand: the INVITE's offer may name any media
/// address, requests may come from any socket, keys go as RFC 4733 or INFO.
struct Phone {
    sip: UdpSocket,
    media: UdpSocket,
    server: SocketAddr,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
    caller: String,
    service: String,
    /// hotdesk's RTP address from its answer.
    server_rtp: Option<SocketAddr>,
    /// The INVITE as sent (for amplification figures).
    invite_len: usize,
}

impl Phone {
    fn new(host: &str, server: SocketAddr) -> Phone {
        let sip = UdpSocket::bind((host, 0)).unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let media = UdpSocket::bind((host, 0)).unwrap();
        media
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let n: u64 = rand::random();
        Phone {
            sip,
            media,
            server,
            call_id: format!("sec-{n:016x}"),
            from_tag: format!("t{n:x}"),
            to_tag: None,
            cseq: 1,
            caller: String::new(),
            service: String::new(),
            server_rtp: None,
            invite_len: 0,
        }
    }

    fn local(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    fn media_addr(&self) -> SocketAddr {
        self.media.local_addr().unwrap()
    }

    fn sdp(media: SocketAddr) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n",
            ip = media.ip(),
            port = media.port()
        )
    }

    fn request(&self, method: &str, cseq: u32, body: Option<&str>) -> String {
        let local = self.local();
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let (kind, body) = match body {
            Some(b) if b.starts_with("v=") => ("application/sdp", b),
            Some(b) => ("application/dtmf-relay", b),
            None => ("", ""),
        };
        let content_type = if kind.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {kind}\r\n")
        };
        let cseq_method = if method == "ACK" { "ACK" } else { method };
        format!(
            "{method} sip:{service}@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch:x}\r\n\
             From: <sip:{caller}@{ip}>;tag={from_tag}\r\n\
             To: <sip:{service}@{server}>{to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {cseq_method}\r\n\
             Contact: <sip:{caller}@{local}>\r\nMax-Forwards: 70\r\n{content_type}\
             Content-Length: {len}\r\n\r\n{body}",
            service = self.service,
            server = self.server,
            branch = rand::random::<u64>(),
            caller = self.caller,
            ip = local.ip(),
            from_tag = self.from_tag,
            call_id = self.call_id,
            len = body.len(),
        )
    }

    /// Sends an INVITE from `caller` to `service` whose offer names `media`.
    fn invite(&mut self, caller: &str, service: &str, media: SocketAddr) {
        self.caller = caller.into();
        self.service = service.into();
        let invite = self.request("INVITE", 1, Some(&Phone::sdp(media)));
        self.invite_len = invite.len();
        self.sip.send_to(invite.as_bytes(), self.server).unwrap();
    }

    /// Waits for a final response to the INVITE; learns the To tag and hotdesk's RTP address.
    fn final_response(&mut self, timeout: Duration) -> Option<u16> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let Some(text) = self.recv_sip() else {
                continue;
            };
            let Some(code) = status_code(&text) else {
                continue;
            };
            if code < 200 || !text.contains("INVITE") {
                continue;
            }
            self.to_tag = header(&text, "To").and_then(|to| {
                to.split(";tag=")
                    .nth(1)
                    .map(|t| t.split(';').next().unwrap_or(t).to_owned())
            });
            self.server_rtp = sdp_address(&text);
            return Some(code);
        }
        None
    }

    fn recv_sip(&self) -> Option<String> {
        let mut buf = [0u8; 65_536];
        let (n, _) = self.sip.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Answers hotdesk's requests (its BYE) with 200 and returns the first response to a
    /// request of ours with `method`, within `timeout`.
    fn response_to(&self, method: &str, timeout: Duration) -> Option<u16> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let Some(text) = self.recv_sip() else {
                continue;
            };
            if let Some(code) = status_code(&text) {
                if code >= 200 && header(&text, "CSeq").is_some_and(|c| c.ends_with(method)) {
                    return Some(code);
                }
            } else {
                self.answer(&text);
            }
        }
        None
    }

    /// 200 to a request hotdesk sent (a BYE).
    fn answer(&self, request: &str) {
        let mut response = String::from("SIP/2.0 200 OK\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for line in request.lines().filter(|l| {
                l.split(':')
                    .next()
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
            }) {
                response.push_str(line);
                response.push_str("\r\n");
            }
        }
        response.push_str("Content-Length: 0\r\n\r\n");
        let _ = self.sip.send_to(response.as_bytes(), self.server);
    }

    /// Waits for hotdesk's BYE (answering it); returns when it came.
    fn wait_bye(&self, timeout: Duration) -> Option<Instant> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let Some(text) = self.recv_sip() else {
                continue;
            };
            if text.starts_with("BYE ") {
                self.answer(&text);
                return Some(Instant::now());
            }
        }
        None
    }

    fn ack(&self) {
        let ack = self.request("ACK", 1, None);
        self.sip.send_to(ack.as_bytes(), self.server).unwrap();
    }

    /// Sends an in-dialog request (`body` for INFO or a re-INVITE) from `from` (another
    /// socket, or this phone's own when `None`).
    fn in_dialog(&mut self, method: &str, body: Option<&str>, from: Option<&UdpSocket>) {
        self.cseq += 1;
        let request = self.request(method, self.cseq, body);
        from.unwrap_or(&self.sip)
            .send_to(request.as_bytes(), self.server)
            .unwrap();
    }

    /// Sends `keys` as SIP INFO (`application/dtmf-relay`), each acknowledged.
    fn info_keys(&mut self, keys: &str) {
        for key in keys.chars() {
            self.in_dialog(
                "INFO",
                Some(&format!("Signal={key}\r\nDuration=100\r\n")),
                None,
            );
            assert_eq!(
                self.response_to("INFO", Duration::from_secs(2)),
                Some(200),
                "INFO {key}"
            );
        }
    }

    /// Sends `keys` as RFC 4733 events to hotdesk's RTP address, paced as a phone would.
    fn rfc4733_keys(&self, keys: &str) {
        let to = self
            .server_rtp
            .expect("hotdesk's answer named its RTP address");
        let stream = dtmf_stream::build(&DtmfStreamSpec {
            digits: keys.into(),
            mode: DtmfMode::Rfc4733,
            law: Law::Ulaw,
            lead: Duration::from_millis(20),
            tone: Duration::from_millis(80),
            gap: Duration::from_millis(80),
            ..Default::default()
        })
        .unwrap();
        let start = Instant::now();
        for p in &stream.packets {
            if let Some(wait) = (start + p.time).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            self.media
                .send_to(&packet::serialize(&p.packet).unwrap(), to)
                .unwrap();
        }
    }

    /// Sends `n` PCMU silence packets in sequence (what a phone sends all the time).
    fn audio(&self, n: u16) {
        let to = self.server_rtp.expect("hotdesk's RTP address");
        for seq in 0..n {
            let pkt = packet::build(
                0,
                seq == 0,
                seq,
                u32::from(seq) * 160,
                0x5ec0,
                Bytes::from(vec![0xffu8; 160]),
            );
            self.media
                .send_to(&packet::serialize(&pkt).unwrap(), to)
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// RTP datagrams (and their bytes) arriving at this phone's media socket within `window`.
    fn rtp_received(&self, window: Duration) -> (usize, usize) {
        count_datagrams(&self.media, window)
    }
}

/// Throws away what `socket` has queued (what arrived while nobody read).
fn drain(socket: &UdpSocket) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    while socket.recv_from(&mut buf).is_ok() {}
    socket.set_nonblocking(false).unwrap();
}

/// Datagrams and bytes arriving on `socket` within `window`.
fn count_datagrams(socket: &UdpSocket, window: Duration) -> (usize, usize) {
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let end = Instant::now() + window;
    let (mut n, mut bytes) = (0, 0);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            n += 1;
            bytes += len;
        }
    }
    (n, bytes)
}

fn status_code(text: &str) -> Option<u16> {
    text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `c=` address and `m=audio` port of a message's SDP.
fn sdp_address(text: &str) -> Option<SocketAddr> {
    let ip = text
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The JSON records of one call, in order.
fn call_records(server: &Hotdesk, call_id: &str) -> Vec<Value> {
    server
        .records()
        .into_iter()
        .filter(|v| peers::call_id_of(v).as_deref() == Some(call_id))
        .collect()
}

/// Every string value of `v`, depth first, in document order.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Whether `needle`'s characters appear in `hay` in order (not necessarily together).
fn is_subsequence(needle: &str, hay: &str) -> bool {
    let mut want = needle.chars().peekable();
    for c in hay.chars() {
        if want.peek() == Some(&c) {
            want.next();
        }
    }
    want.peek().is_none()
}

/// The leak check of one call: across its log records, in order, the keys logged one per
/// value (a string field that is one DTMF key) must not spell the PIN, not even spread over
/// many lines with other keys between; and no record may hold the PIN whole.
fn assert_no_pin_in_call_log(server: &Hotdesk, call_id: &str, pin: &str) {
    let records = call_records(server, call_id);
    assert!(!records.is_empty(), "no log records for call {call_id}");
    let mut keys = String::new();
    for record in &records {
        let text = record.to_string();
        assert!(!text.contains(pin), "the PIN is in a log record:\n{text}");
        let mut values = Vec::new();
        strings(record, &mut values);
        for value in values {
            let mut chars = value.chars();
            if let (Some(c), None) = (chars.next(), chars.next())
                && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
            {
                keys.push(c);
            }
        }
    }
    assert!(
        !is_subsequence(pin, &keys),
        "the PIN's keys appear in order across the call's log records: {keys:?}"
    );
}

#[test]
fn the_leak_check_finds_a_pin_spread_over_lines() {
    // The check itself: the outside test's log, one key per line with others in between.
    assert!(is_subsequence("4321", "1001#4x3y2z1#"));
    assert!(!is_subsequence("4321", "1001#"));
}

// ---------------------------------------------------------------------------------------------
// 1. PIN digits in the log, the reports and the store

/// Keys before the ACK (RFC 4733 right after the 200 OK) and an account typed with the PIN
/// run into it (the first `#` missed): at trace level, no record of either call spells the
/// PIN, not even one key per line; the run-together account reaches no report, no API answer
/// and not the database; and the early keys still log the desk in.
#[test]
fn keys_before_the_ack_and_a_missed_hash_leak_no_pin() {
    let s = Server::start("leak", "", "trace");
    let ctx = || s.context();

    // Call 1: the whole login keyed before the ACK.
    let mut early = s.phone("127.0.0.1");
    early.invite("5401", "*88", early.media_addr());
    assert_eq!(
        early.final_response(Duration::from_secs(5)),
        Some(200),
        "{}",
        ctx()
    );
    early.rfc4733_keys(&format!("1001#{PIN}#"));
    early.ack();
    let login = s
        .hooks
        .wait_report(0, Duration::from_secs(10), |h| h.event() == "login");
    assert!(
        login.is_some(),
        "the keys typed before the ACK did not log in\n{}",
        ctx()
    );
    early.wait_bye(Duration::from_secs(20));

    // Call 2: account and PIN run together, then the PIN again.
    let mut missed = s.phone("127.0.0.1");
    missed.invite("5402", "*88", missed.media_addr());
    assert_eq!(missed.final_response(Duration::from_secs(5)), Some(200));
    missed.ack();
    missed.info_keys(&format!("1001{PIN}#{PIN}#"));
    let failed = s
        .hooks
        .wait_report(1, Duration::from_secs(10), |h| h.event() == "login_failed");
    let failed = failed.unwrap_or_else(|| panic!("no login_failed\n{}", ctx()));
    assert_eq!(
        failed.field("user"),
        None,
        "an account entry that is no user was reported"
    );
    missed.in_dialog("BYE", None, None);
    missed.response_to("BYE", Duration::from_secs(2));

    std::thread::sleep(Duration::from_millis(500));
    for call in [&early.call_id, &missed.call_id] {
        assert_no_pin_in_call_log(&s.hotdesk, call, PIN);
    }
    let run_together = format!("1001{}", &PIN[..6]);
    for h in s.hooks.hooks() {
        let text = h.message.text();
        assert!(
            !text.contains(PIN) && !text.contains(&run_together),
            "report: {text}"
        );
    }
    let events = s.api.get("/v1/events").describe();
    assert!(
        !events.contains(PIN) && !events.contains(&run_together),
        "{events}"
    );
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("hotdesk.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            for needle in [PIN, run_together.as_str()] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} is in {}",
                    path.display()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The per-desk limits bypassed by spelling

/// `05401` and `+5401` are no desks: the caller hears so, and no login is recorded for any
/// spelling, even with the right account and PIN.
#[test]
fn a_desk_spelt_another_way_is_not_a_desk() {
    let s = Server::start("spelling", "", "info");
    for spelling in ["05401", "+5401", "005401"] {
        let mut phone = s.phone("127.0.0.1");
        phone.invite(spelling, "*88", phone.media_addr());
        assert_eq!(phone.final_response(Duration::from_secs(5)), Some(200));
        phone.ack();
        phone.info_keys(&format!("1001#{PIN}#"));
        assert!(
            phone.wait_bye(Duration::from_secs(15)).is_some(),
            "{spelling}: hotdesk should say 'cannot be used' and hang up\n{}",
            s.context()
        );
    }
    let devices = s.api.get("/v1/devices");
    assert_eq!(devices.json(), serde_json::json!([]), "{}", s.context());
    assert!(s.hooks.reports().is_empty(), "{}", s.hooks.describe());
}

// ---------------------------------------------------------------------------------------------
// 3. Guessing across accounts from one source

/// Failures from one address across desks and made-up accounts block the address: a
/// `source_blocked` report naming it, 403 for its next INVITE, the block listed by the API;
/// the API clears it and calls are taken again.
#[test]
fn a_source_guessing_across_accounts_is_blocked_until_cleared() {
    let s = Server::start(
        "source",
        "[security]\nsource_failures = 6\nsource_window_s = 600\nsource_block_s = 600\n",
        "info",
    );
    let guesser = "127.0.0.3";
    let started = Instant::now();
    for (desk, accounts) in [
        ("5410", ["2001", "2002", "2003"]),
        ("5411", ["2004", "2005", "2006"]),
    ] {
        let mut phone = s.phone(guesser);
        phone.invite(desk, "*88", phone.media_addr());
        assert_eq!(
            phone.final_response(Duration::from_secs(5)),
            Some(200),
            "{}",
            s.context()
        );
        phone.ack();
        let keys: String = accounts.iter().map(|a| format!("{a}#1111#")).collect();
        phone.info_keys(&keys);
        phone.wait_bye(Duration::from_secs(30));
    }
    let blocked = s
        .hooks
        .wait_report(0, Duration::from_secs(10), |h| {
            h.event() == "source_blocked"
        })
        .unwrap_or_else(|| panic!("no source_blocked report\n{}", s.context()));
    println!(
        "source block: 6 wrong guesses from one address in {:.1} s, then blocked",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(blocked.field("source"), Some(guesser));
    let locks = s.api.get("/v1/lockouts").json();
    assert!(
        locks
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "source" && l["subject"] == guesser),
        "{locks}"
    );
    // Within the store probe's round (2 s) new calls from there get 403; others do not.
    std::thread::sleep(Duration::from_millis(2500));
    let mut refused = s.phone(guesser);
    refused.invite("5412", "*88", refused.media_addr());
    assert_eq!(
        refused.final_response(Duration::from_secs(5)),
        Some(403),
        "{}",
        s.context()
    );
    let mut other = s.phone("127.0.0.1");
    other.invite("5412", "*88", other.media_addr());
    assert_eq!(other.final_response(Duration::from_secs(5)), Some(200));
    other.ack();
    other.in_dialog("BYE", None, None);
    // Cleared by the API: taken again.
    let cleared = common::http::request(
        s.api.addr,
        "DELETE",
        &format!("/v1/lockouts/{guesser}"),
        None,
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(cleared.status, 204, "{}", cleared.describe());
    std::thread::sleep(Duration::from_millis(2500));
    let mut again = s.phone(guesser);
    again.invite("5412", "*88", again.media_addr());
    assert_eq!(
        again.final_response(Duration::from_secs(5)),
        Some(200),
        "{}",
        s.context()
    );
    again.ack();
    again.in_dialog("BYE", None, None);
    let metrics = s.api.get("/metrics").describe();
    assert!(
        metrics.contains("hotdesk_sip_refused_total{reason=\"blocked\"} 1"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Media aimed at a third party

/// An offer naming a third party's address draws nothing towards it: not before the ACK
/// (a forged INVITE), not after, not through a re-INVITE (488). The caller's own RTP gets the
/// prompts, and when it falls silent for `rtp.timeout_s` they stop.
#[test]
fn media_goes_to_the_caller_only() {
    let s = Server::start("media", "", "info");
    let victim = UdpSocket::bind("127.0.0.9:0").unwrap();
    let victim_addr = victim.local_addr().unwrap();

    // Never ACKed: the INVITE's whole ACK timeout (8 s by default) is watched.
    let mut forged = s.phone("127.0.0.1");
    forged.invite("5401", "*97", victim_addr);
    assert_eq!(forged.final_response(Duration::from_secs(5)), Some(200));
    let (n, bytes) = count_datagrams(&victim, Duration::from_secs(9));
    println!(
        "amplification, INVITE never ACKed: {bytes} bytes of RTP for a {}-byte INVITE",
        forged.invite_len
    );
    assert_eq!(
        (n, bytes),
        (0, 0),
        "RTP reached the third party before any ACK"
    );

    // ACKed, still naming the third party: nothing goes there; the caller's own RTP is
    // answered.
    let mut call = s.phone("127.0.0.1");
    call.invite("5401", "*97", victim_addr);
    assert_eq!(call.final_response(Duration::from_secs(5)), Some(200));
    call.ack();
    assert_eq!(count_datagrams(&victim, Duration::from_secs(2)), (0, 0));
    call.audio(10);
    let (to_caller, _) = call.rtp_received(Duration::from_secs(1));
    assert!(
        to_caller >= 40,
        "the caller got {to_caller} packets in 1 s after its own RTP"
    );
    assert_eq!(count_datagrams(&victim, Duration::from_millis(500)), (0, 0));

    // A re-INVITE moving the media to the third party is refused.
    let offer = Phone::sdp(victim_addr);
    call.in_dialog("INVITE", Some(&offer), None);
    assert_eq!(
        call.response_to("INVITE", Duration::from_secs(3)),
        Some(488)
    );
    call.ack();
    assert_eq!(count_datagrams(&victim, Duration::from_secs(1)), (0, 0));

    // The caller falls silent: within rtp.timeout_s (10 s) and a second, hotdesk stops.
    std::thread::sleep(Duration::from_secs(11));
    drain(&call.media);
    let (late, _) = call.rtp_received(Duration::from_secs(1));
    assert_eq!(late, 0, "RTP still sent to a caller silent for 11 s");
    call.in_dialog("BYE", None, None);
    let log = s.hotdesk.log_text();
    assert!(
        log.contains("rtp.media_sources"),
        "the refused media address is logged"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. In-dialog requests from anywhere

/// Knowing a call's Call-ID and tags is not enough: INFO, re-INVITE and BYE from another host
/// get 403 and change nothing; the real peer's BYE ends the call.
#[test]
fn in_dialog_requests_from_another_host_are_refused() {
    let s = Server::start("dialog", "", "info");
    let mut call = s.phone("127.0.0.1");
    call.invite("5401", "*97", call.media_addr());
    assert_eq!(call.final_response(Duration::from_secs(5)), Some(200));
    call.ack();
    let outsider = UdpSocket::bind("127.0.0.2:0").unwrap();
    outsider
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let sink = UdpSocket::bind("127.0.0.2:0").unwrap();
    for (method, body) in [
        ("INFO", Some("Signal=5\r\nDuration=100\r\n".to_owned())),
        ("INVITE", Some(Phone::sdp(sink.local_addr().unwrap()))),
        ("BYE", None),
    ] {
        call.in_dialog(method, body.as_deref(), Some(&outsider));
        let mut buf = [0u8; 4096];
        let text = loop {
            let (n, _) = outsider.recv_from(&mut buf).unwrap_or_else(|_| {
                panic!(
                    "no final answer to the outsider's {method}\n{}",
                    s.context()
                )
            });
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if status_code(&text).is_some_and(|c| c >= 200) {
                break text;
            }
        };
        assert_eq!(status_code(&text), Some(403), "{method}: {text}");
    }
    assert_eq!(count_datagrams(&sink, Duration::from_secs(1)), (0, 0));
    assert!(
        s.hotdesk.digits().is_empty(),
        "the outsider's INFO key was taken"
    );
    // The call is still up: the real peer's BYE is answered 200.
    call.in_dialog("BYE", None, None);
    assert_eq!(call.response_to("BYE", Duration::from_secs(2)), Some(200));
    let metrics = s.api.get("/metrics").describe();
    assert!(
        metrics.contains("hotdesk_sip_refused_total{reason=\"not_peer\"} 3"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. No maximum call length

/// A `*97` call kept alive with a key every few seconds, and a `*88` call kept alive with `*`,
/// end at their limits: "call limit reached", goodbye, BYE.
#[test]
fn calls_end_at_their_time_limit() {
    let s = Server::start(
        "limit",
        "[ivr]\nmax_call_s = 12\ndtmf_test_max_call_s = 10\n",
        "info",
    );
    for (service, key, limit) in [("*97", '5', 10), ("*88", '*', 12)] {
        let mut call = s.phone("127.0.0.1");
        call.invite("5401", service, call.media_addr());
        assert_eq!(call.final_response(Duration::from_secs(5)), Some(200));
        let answered = Instant::now();
        call.ack();
        let mut bye = None;
        while bye.is_none() && answered.elapsed() < Duration::from_secs(40) {
            call.in_dialog(
                "INFO",
                Some(&format!("Signal={key}\r\nDuration=100\r\n")),
                None,
            );
            // Waiting for the INFO's answer also answers hotdesk's BYE.
            bye = call.wait_bye(Duration::from_secs(2));
        }
        let at = bye.map(|t| t - answered);
        println!("{service}: hotdesk hung up after {at:?} (limit {limit} s)");
        let at = at.unwrap_or_else(|| panic!("{service}: no BYE within 40 s\n{}", s.context()));
        assert!(
            at >= Duration::from_secs(limit) && at < Duration::from_secs(limit + 8),
            "{service}: BYE after {at:?}"
        );
    }
    assert_eq!(
        s.hotdesk.messages("the call reached its time limit").len(),
        2
    );
    let ends = s.hotdesk.call_ends();
    assert!(
        ends.iter().all(|(reason, _)| reason == "TimeLimit"),
        "{ends:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7 and 8. Port exhaustion and floods

/// 300 INVITEs in a burst from one host, never ACKed, with 16 RTP ports: the burst is cut to
/// the per-source INVITE rate, the calls it got are dropped at the ACK timeout, and a caller
/// from another host is taken right after.
#[test]
fn unacked_invites_free_their_ports_and_bursts_are_cut() {
    let s = Server::start("ports", "", "info");
    let attacker = UdpSocket::bind("127.0.0.4:0").unwrap();
    attacker
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    for i in 0..300 {
        let mut p = Phone::new("127.0.0.4", s.sip());
        p.caller = "5401".into();
        p.service = "*97".into();
        p.call_id = format!("burst-{i}");
        let invite = p.request("INVITE", 1, Some(&Phone::sdp(p.media_addr())));
        attacker.send_to(invite.as_bytes(), s.sip()).unwrap();
    }
    let burst = started.elapsed();
    // Final answers by Call-ID (hotdesk resends them until an ACK that never comes).
    let mut finals = std::collections::BTreeMap::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        if let Ok((n, _)) = attacker.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if let (Some(code), Some(call_id)) = (status_code(&text), header(&text, "Call-ID"))
                && code >= 200
            {
                finals.insert(call_id.to_owned(), code);
            }
        }
    }
    let mut answered = std::collections::BTreeMap::new();
    for code in finals.values() {
        *answered.entry(*code).or_insert(0u32) += 1;
    }
    println!("burst: 300 INVITEs in {burst:?}; final answers {answered:?}");
    let total: u32 = answered.values().sum();
    assert!(
        total <= 110,
        "the per-source INVITE rate let {total} through: {answered:?}"
    );
    // The ports come back at the ACK timeout (8 s): a call from elsewhere is taken then.
    std::thread::sleep(Duration::from_secs(8));
    let mut caller = s.phone("127.0.0.1");
    caller.invite("5401", "*97", caller.media_addr());
    assert_eq!(
        caller.final_response(Duration::from_secs(5)),
        Some(200),
        "{}",
        s.context()
    );
    caller.ack();
    caller.in_dialog("BYE", None, None);
    let metrics = s.api.get("/metrics").describe();
    assert!(metrics.contains("reason=\"invite_rate\""), "{metrics}");
}

/// About 20,000 OPTIONS a second from one host while a login runs from another: the login
/// completes, the flood is counted as dropped, and memory stays flat.
#[test]
fn a_login_completes_beside_an_options_flood() {
    let s = Server::start("flood", "", "info");
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", s.hotdesk.process.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = rss();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sip = s.sip();
    let (sent, elapsed) = std::thread::scope(|scope| {
        let flooder = scope.spawn(|| {
            let socket = UdpSocket::bind("127.0.0.5:0").unwrap();
            let started = Instant::now();
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let options = format!(
                    "OPTIONS sip:hotdesk@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:9;branch=z9hG4bKfl{sent}\r\n\
                     From: <sip:f@127.0.0.5>;tag=f\r\nTo: <sip:hotdesk@{sip}>\r\nCall-ID: flood-{sent}\r\n\
                     CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = socket.send_to(options.as_bytes(), sip);
                sent += 1;
                let due = started + Duration::from_secs_f64(sent as f64 / 20_000.0);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            (sent, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        let mut phone = s.phone("127.0.0.1");
        phone.invite("5401", "*88", phone.media_addr());
        assert_eq!(
            phone.final_response(Duration::from_secs(10)),
            Some(200),
            "{}",
            s.context()
        );
        phone.ack();
        phone.rfc4733_keys(&format!("1001#{PIN}#"));
        let login = s
            .hooks
            .wait_report(0, Duration::from_secs(15), |h| h.event() == "login");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let result = flooder.join().unwrap();
        assert!(
            login.is_some(),
            "no login beside the flood\n{}",
            s.context()
        );
        result
    });
    let after = rss();
    let rate = sent as f64 / elapsed.as_secs_f64();
    println!(
        "flood: {sent} OPTIONS in {elapsed:.1?} ({rate:.0}/s) beside a login; RSS {before} → {after} KiB"
    );
    assert!(rate > 5_000.0, "the flood reached only {rate:.0}/s");
    assert!(
        after < before + 30 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    let metrics = s.api.get("/metrics").describe();
    assert!(
        metrics.contains("hotdesk_sip_refused_total{reason=\"rate\"}"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. The HTTP API holding connections

/// A client that never finishes its headers is cut off at `api.header_timeout_s`; 300 idle
/// connections from one host do not keep `/healthz` from answering others; the open-files
/// limit is raised and logged.
#[test]
fn the_api_bounds_slow_and_idle_clients() {
    let s = Server::start("api", "", "info");
    let limit = s.hotdesk.messages("open files limit");
    assert_eq!(limit.len(), 1, "{}", s.context());
    assert!(
        limit[0]["fields"]["limit"].as_u64().unwrap_or(0) > 1024,
        "{limit:?}"
    );

    // Slow headers: closed at the 10 s header timeout.
    let mut slow = TcpStream::connect(s.api.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let held = started.elapsed();
    println!("slow-header connection closed after {held:?}");
    assert!(held < Duration::from_secs(15), "held {held:?}");

    // Idle connections from one host take at most its share of the slots.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
            socket
                .bind(&SocketAddr::from(([127, 0, 0, 6], 0)).into())
                .ok()?;
            socket.connect(&s.api.addr.into()).ok()?;
            Some(socket.into())
        })
        .collect();
    assert!(idle.len() >= 250, "only {} connections opened", idle.len());
    let t = Instant::now();
    let health = s.api.get("/healthz");
    assert_eq!(health.status, 200, "{}", health.describe());
    println!(
        "/healthz beside {} idle connections: {:?}",
        idle.len(),
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}
