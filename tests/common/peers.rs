//! Drivers for the end-to-end peer tests: `hotdesk serve` as a child process with a temporary
//! config, and the third-party peers that call it (sipp, baresip), plus tshark on `lo` to see
//! what hotdesk sends back. Every wait is bounded, and every child process is killed when its
//! guard drops, so a failing test leaves nothing running.
//!
//! The peers are system tools that `.ci/run` installs (`sip-tester`, `baresip-core`, `tshark`);
//! a missing one is a test failure that says so, never a skip. sipp plays pcaps from a raw socket
//! and tshark captures on `lo`, so the tests run as root (as CI does).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Finds `tool` on `PATH`, or fails the test naming the Debian package `.ci/run` installs.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{tool}` is not installed: the peer tests need it (Debian package `{package}`; \
         `.ci/run` installs it, or run `apt-get install --no-install-recommends {package}`)"
    );
}

// ---------------------------------------------------------------------------------------------
// Ports

/// Ports in one block, all free (UDP and TCP) when the block was handed out.
pub const BLOCK: u16 = 48;

/// A block of [`BLOCK`] consecutive loopback ports for one test, so that tests running in
/// parallel threads (and other programs on the machine) never share a port.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    base: u16,
}

impl Ports {
    /// A fresh block: not handed out before in this process, and bindable right now.
    pub fn alloc() -> Ports {
        static TAKEN: OnceLock<Mutex<(u16, HashSet<u16>)>> = OnceLock::new();
        let state = TAKEN.get_or_init(|| {
            // Start somewhere that depends on the process, so two test binaries running at
            // once tend to look in different places.
            let start = 21_000 + (std::process::id() % 700) as u16 * BLOCK;
            Mutex::new((start, HashSet::new()))
        });
        let mut state = state.lock().unwrap();
        for _ in 0..2000 {
            let base = state.0;
            state.0 = if base + 2 * BLOCK >= 60_000 {
                21_000
            } else {
                base + BLOCK
            };
            if state.1.contains(&base) {
                continue;
            }
            if (base..base + BLOCK).all(port_is_free) {
                state.1.insert(base);
                return Ports { base };
            }
        }
        panic!("no block of {BLOCK} free loopback ports found");
    }

    /// Port `offset` of the block.
    pub fn at(&self, offset: u16) -> u16 {
        assert!(offset < BLOCK, "port offset {offset} outside the block");
        self.base + offset
    }

    /// hotdesk's SIP port.
    pub fn hotdesk_sip(&self) -> u16 {
        self.at(0)
    }

    /// hotdesk's HTTP API port.
    pub fn hotdesk_api(&self) -> u16 {
        self.at(1)
    }

    /// hotdesk's RTP range (16 ports, even start): `"LOW-HIGH"`.
    pub fn hotdesk_rtp_range(&self) -> String {
        let (low, high) = self.hotdesk_rtp();
        format!("{low}-{high}")
    }

    /// hotdesk's RTP range, first and last port.
    pub fn hotdesk_rtp(&self) -> (u16, u16) {
        (self.at(32), self.at(47))
    }

    /// SIP port of peer number `n` (0..4).
    pub fn peer_sip(&self, n: u16) -> u16 {
        assert!(n < 4);
        self.at(2 + n)
    }

    /// RTP port of peer number `n` (0..4); sipp also binds it + 2, so they are 4 apart.
    pub fn peer_media(&self, n: u16) -> u16 {
        assert!(n < 4);
        self.at(8 + 4 * n)
    }

    /// A spare port for a TCP control socket (baresip's ctrl_tcp).
    pub fn ctrl(&self) -> u16 {
        self.at(6)
    }

    /// An RTP range for baresip: `"LOW-HIGH"` (8 ports).
    pub fn baresip_rtp_range(&self) -> String {
        format!("{}-{}", self.at(24), self.at(31))
    }
}

fn port_is_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process that is stopped (SIGTERM, then SIGKILL) and reaped when the guard drops.
pub struct ChildGuard {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Starts `cmd`, failing the test if it cannot.
    pub fn spawn(name: &str, cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        ChildGuard {
            name: name.into(),
            child,
            status: None,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and its status if so).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`"TERM"`, `"INT"`, …) through the shell's `kill` builtin.
    pub fn signal(&mut self, signal: &str) {
        if self.try_status().is_some() {
            return;
        }
        let status = Command::new("sh")
            .args([
                "-c",
                "kill -s \"$1\" \"$2\"",
                "sh",
                signal,
                &self.id().to_string(),
            ])
            .status()
            .expect("running sh to send a signal");
        assert!(status.success(), "kill -s {signal} {} failed", self.name);
    }

    /// Kills it now (if still running) and reaps it.
    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// The child's stdin/stdout/stderr handles.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ChildGuard {
    /// SIGTERM first, so that a child with children of its own (tshark runs dumpcap) takes
    /// them down; SIGKILL if it is still there after a second.
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = Command::new("sh")
                .args(["-c", "kill -s TERM \"$1\"", "sh", &self.id().to_string()])
                .status();
            self.wait_timeout(Duration::from_secs(1));
        }
        self.kill();
    }
}

/// The lines so far, and whether the stream has ended.
type LinesState = Mutex<(Vec<String>, bool)>;

/// Lines collected from a child's output, with a way to wait for one.
#[derive(Clone, Default)]
pub struct Lines {
    inner: Arc<(LinesState, Condvar)>,
}

impl Lines {
    /// Collects the lines of `r` (and marks the end of stream) from now on.
    pub fn collect(r: impl Read + Send + 'static) -> Lines {
        Lines::collect_into(r, None)
    }

    /// The same, also writing every line to `copy` as it comes.
    pub fn collect_into(r: impl Read + Send + 'static, copy: Option<&Path>) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        let eof = lines.clone();
        let mut copy = copy.map(|p| std::fs::File::create(p).expect("creating a log copy"));
        thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Some(f) = &mut copy {
                            let _ = f.write_all(&line);
                        }
                        sink.push(String::from_utf8_lossy(&line).trim_end().to_string())
                    }
                }
            }
            let (m, cv) = &*eof.inner;
            m.lock().unwrap().1 = true;
            cv.notify_all();
        });
        lines
    }

    fn push(&self, line: String) {
        let (m, cv) = &*self.inner;
        m.lock().unwrap().0.push(line);
        cv.notify_all();
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.inner.0.lock().unwrap().0.clone()
    }

    /// Waits up to `timeout` for a line satisfying `pred`; returns it.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + timeout;
        let (m, cv) = &*self.inner;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(l) = g.0.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if g.1 || now >= end {
                return None;
            }
            g = cv.wait_timeout(g, end - now).unwrap().0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// hotdesk serve

/// What differs between the servers the tests start.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `sip.trusted_sources`.
    pub trusted_sources: Vec<String>,
    /// `sip.max_calls`, when set.
    pub max_calls: Option<usize>,
    /// `sip.drain_timeout_s`, when set.
    pub drain_timeout_s: Option<u64>,
    /// `rtp.codecs`.
    pub codecs: Vec<String>,
    /// `sip.domain`, when set.
    pub domain: Option<String>,
    /// `sip.outbound_proxy`, when set (where callback INVITEs go).
    pub outbound_proxy: Option<String>,
    /// More `[features]` lines (TOML), after `dtmf_test_code`.
    pub features: Vec<String>,
    /// `api.token_env`, when set.
    pub api_token_env: Option<String>,
    /// Whole tables the harness does not write itself (`[ivr]`, `[security]`, `[report]`),
    /// appended to the config as they are.
    pub extra_toml: String,
    /// Environment variables of the server process (secrets: the PIN pepper, the webhook
    /// secret, the API token).
    pub env: Vec<(String, String)>,
    /// `RUST_LOG` of the server (`info` when not set).
    pub rust_log: Option<String>,
    /// A command the server is started through (`unshare … sh -c '…; exec "$0" "$@"'`): the
    /// hotdesk executable and its arguments follow it. Empty: started directly.
    pub wrapper: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            trusted_sources: vec!["127.0.0.0/8".into()],
            max_calls: None,
            drain_timeout_s: None,
            codecs: vec!["PCMU".into(), "PCMA".into()],
            domain: None,
            outbound_proxy: None,
            features: Vec::new(),
            api_token_env: None,
            extra_toml: String::new(),
            env: Vec::new(),
            rust_log: None,
            wrapper: Vec::new(),
        }
    }
}

/// One DTMF key hotdesk logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedDigit {
    /// The key.
    pub digit: String,
    /// `rfc4733`, `info` or `inband`.
    pub source: String,
    /// Milliseconds from the answer.
    pub after_ms: Option<u64>,
    /// The call it belongs to (from the call's span).
    pub call_id: Option<String>,
}

/// `hotdesk serve --log-format json` on loopback ports of its own, its JSON log collected.
pub struct Hotdesk {
    /// The process.
    pub process: ChildGuard,
    /// Its stderr, one JSON object per line (other lines kept as strings).
    pub log: Lines,
    /// Where it takes calls.
    pub sip: SocketAddr,
    /// The config file.
    pub config: PathBuf,
}

impl Hotdesk {
    /// Writes a config into `dir` and starts hotdesk there; returns once it has logged "ready".
    pub fn start(dir: &Path, ports: &Ports, opts: &ServerOptions) -> Hotdesk {
        let config = Hotdesk::write_config(dir, ports, opts);
        Hotdesk::start_with_config(dir, ports, opts, &config)
    }

    /// Writes the config of a server on `ports` into `dir/hotdesk.toml` and returns its path
    /// (so that the `users` commands can use the same file before the server starts).
    pub fn write_config(dir: &Path, ports: &Ports, opts: &ServerOptions) -> PathBuf {
        let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let quoted = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut toml = String::new();
        writeln!(toml, "[sip]").unwrap();
        writeln!(toml, "listen = \"127.0.0.1:{}\"", ports.hotdesk_sip()).unwrap();
        writeln!(
            toml,
            "trusted_sources = [{}]",
            quoted(&opts.trusted_sources)
        )
        .unwrap();
        if let Some(n) = opts.max_calls {
            writeln!(toml, "max_calls = {n}").unwrap();
        }
        if let Some(s) = opts.drain_timeout_s {
            writeln!(toml, "drain_timeout_s = {s}").unwrap();
        }
        if let Some(d) = &opts.domain {
            writeln!(toml, "domain = {d:?}").unwrap();
        }
        if let Some(p) = &opts.outbound_proxy {
            writeln!(toml, "outbound_proxy = {p:?}").unwrap();
        }
        writeln!(toml, "\n[rtp]").unwrap();
        writeln!(toml, "port_range = \"{}\"", ports.hotdesk_rtp_range()).unwrap();
        writeln!(toml, "codecs = [{}]", quoted(&opts.codecs)).unwrap();
        writeln!(toml, "\n[features]\ndtmf_test_code = \"*97\"").unwrap();
        for line in &opts.features {
            writeln!(toml, "{line}").unwrap();
        }
        writeln!(
            toml,
            "\n[api]\nlisten = \"127.0.0.1:{}\"",
            ports.hotdesk_api()
        )
        .unwrap();
        if let Some(t) = &opts.api_token_env {
            writeln!(toml, "token_env = {t:?}").unwrap();
        }
        writeln!(
            toml,
            "\n[store]\nurl = \"sqlite://{}\"",
            dir.join("hotdesk.db").display()
        )
        .unwrap();
        writeln!(
            toml,
            "\n[prompts]\ndir = {:?}",
            prompts.display().to_string()
        )
        .unwrap();
        if !opts.extra_toml.is_empty() {
            writeln!(toml, "\n{}", opts.extra_toml).unwrap();
        }
        let config = dir.join("hotdesk.toml");
        std::fs::write(&config, &toml).unwrap();
        config
    }

    /// Starts hotdesk in `dir` with the config file `config` (from [`Hotdesk::write_config`]);
    /// returns once it has logged "ready". The log is copied to `dir/hotdesk.log`, or
    /// `hotdesk-N.log` when the server is started again in the same dir.
    pub fn start_with_config(
        dir: &Path,
        ports: &Ports,
        opts: &ServerOptions,
        config: &Path,
    ) -> Hotdesk {
        let toml = std::fs::read_to_string(config).unwrap_or_default();
        let exe = env!("CARGO_BIN_EXE_hotdesk");
        let mut command = match opts.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command
            .args(["serve", "--config"])
            .arg(config)
            .args(["--log-format", "json"])
            .current_dir(dir)
            .env("RUST_LOG", opts.rust_log.as_deref().unwrap_or("info"))
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut process = ChildGuard::spawn("hotdesk serve", &mut command);
        let log_file = (1..)
            .map(|n| match n {
                1 => dir.join("hotdesk.log"),
                n => dir.join(format!("hotdesk-{n}.log")),
            })
            .find(|p| !p.exists())
            .unwrap();
        let stderr = process.child_mut().stderr.take().unwrap();
        let log = Lines::collect_into(stderr, Some(&log_file));
        let config = config.to_path_buf();
        let sip = SocketAddr::from(([127, 0, 0, 1], ports.hotdesk_sip()));
        let mut server = Hotdesk {
            process,
            log,
            sip,
            config,
        };
        let ready = server.wait_message("ready", Duration::from_secs(15));
        assert!(
            ready.is_some(),
            "hotdesk did not log \"ready\" within 15 s (exit status {:?}); config:\n{toml}\nlog:\n{}",
            server.process.try_status(),
            server.log_text()
        );
        let bound = ready.unwrap()["fields"]["sip"].clone();
        assert_eq!(
            bound.as_str(),
            Some(sip.to_string().as_str()),
            "\"ready\" names another SIP address than the configured one"
        );
        server
    }

    /// Every JSON log record so far.
    pub fn records(&self) -> Vec<Value> {
        self.log
            .all()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The raw log, for failure messages.
    pub fn log_text(&self) -> String {
        self.log.all().join("\n")
    }

    /// Waits up to `timeout` for a record whose `fields.message` is `message`.
    pub fn wait_message(&self, message: &str, timeout: Duration) -> Option<Value> {
        self.wait_record(timeout, |v| v["fields"]["message"] == message)
    }

    /// Waits up to `timeout` for a record satisfying `pred`.
    pub fn wait_record(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.log
            .wait_for(timeout, |l| {
                serde_json::from_str::<Value>(l).is_ok_and(|v| pred(&v))
            })
            .map(|l| serde_json::from_str(&l).unwrap())
    }

    /// Records whose `fields.message` is `message`.
    pub fn messages(&self, message: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }

    /// Every key hotdesk logged ("digit" records), in order.
    pub fn digits(&self) -> Vec<LoggedDigit> {
        self.messages("digit")
            .iter()
            .map(|v| LoggedDigit {
                digit: field_str(v, "digit").unwrap_or_default(),
                source: field_str(v, "source").unwrap_or_default(),
                after_ms: v["fields"]["after_ms"].as_u64(),
                call_id: call_id_of(v),
            })
            .collect()
    }

    /// The "call ended" records' reasons, in order, with their call ids.
    pub fn call_ends(&self) -> Vec<(String, Option<String>)> {
        self.messages("call ended")
            .iter()
            .map(|v| (field_str(v, "reason").unwrap_or_default(), call_id_of(v)))
            .collect()
    }

    /// Waits up to `timeout` for `n` "call ended" records.
    pub fn wait_call_ends(&self, n: usize, timeout: Duration) -> Vec<(String, Option<String>)> {
        let end = Instant::now() + timeout;
        loop {
            let ends = self.call_ends();
            if ends.len() >= n || Instant::now() >= end {
                return ends;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: start draining.
    pub fn sigterm(&mut self) {
        self.process.signal("TERM");
    }
}

/// `fields.NAME` as a string (strings as they are, other JSON values as JSON text).
pub fn field_str(v: &Value, name: &str) -> Option<String> {
    match &v["fields"][name] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The call id of a record: its own field, or the current span's, or any enclosing span's.
pub fn call_id_of(v: &Value) -> Option<String> {
    let from = |x: &Value| x["call_id"].as_str().map(str::to_string);
    from(&v["fields"]).or_else(|| from(&v["span"])).or_else(|| {
        v["spans"]
            .as_array()
            .and_then(|spans| spans.iter().rev().find_map(from))
    })
}

// ---------------------------------------------------------------------------------------------
// sipp

/// The project's sipp scenarios.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// One sipp run: builds the command line (always on loopback, one call, traces into `dir`).
pub struct Sipp {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
}

impl Sipp {
    /// sipp playing the project scenario `file` (`tests/sipp/…`), or a built-in one with
    /// `-sn NAME` when `file` has no `.xml`, as a UAC from `sip_port`/`media_port` to `target`.
    /// Traces go to `dir/NAME_*.log`.
    pub fn new(name: &str, dir: &Path, file: &str, sip_port: u16, media_port: u16) -> Sipp {
        require_tool("sipp", "sip-tester");
        let mut args = Vec::new();
        if file.ends_with(".xml") {
            args.extend(["-sf".into(), scenario(file).display().to_string()]);
        } else {
            args.extend(["-sn".into(), file.into()]);
        }
        let trace = |kind: &str| dir.join(format!("{name}_{kind}.log")).display().to_string();
        for a in [
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-ci",
            "127.0.0.1",
            "-p",
            &sip_port.to_string(),
            "-mp",
            &media_port.to_string(),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "25s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            &trace("errors"),
            "-trace_logs",
            "-log_file",
            &trace("logs"),
            "-trace_msg",
            "-message_file",
            &trace("messages"),
        ] {
            args.push(a.to_string());
        }
        Sipp {
            name: name.into(),
            dir: dir.into(),
            args,
        }
    }

    /// Adds raw arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Sipp {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `-set NAME VALUE`.
    pub fn set(self, name: &str, value: &str) -> Sipp {
        self.args(["-set", name, value])
    }

    /// Starts it against `target` (the last argument; none for a UAS).
    pub fn spawn(mut self, target: Option<SocketAddr>) -> SippRun {
        if let Some(target) = target {
            self.args.push(target.to_string());
        }
        let stdout = std::fs::File::create(self.dir.join(format!("{}_stdout.txt", self.name)))
            .expect("sipp stdout file");
        let process = ChildGuard::spawn(
            &format!("sipp {}", self.name),
            Command::new("sipp")
                .args(&self.args)
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(Stdio::piped()),
        );
        let mut run = SippRun {
            name: self.name,
            dir: self.dir,
            args: self.args,
            process,
            stderr: Lines::default(),
        };
        let stderr = run.process.child_mut().stderr.take().unwrap();
        run.stderr = Lines::collect(stderr);
        run
    }

    /// Runs it to the end (at most `timeout`).
    pub fn run(self, target: Option<SocketAddr>, timeout: Duration) -> SippResult {
        self.spawn(target).wait(timeout)
    }
}

/// A running sipp.
pub struct SippRun {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    /// The process.
    pub process: ChildGuard,
    stderr: Lines,
}

/// How a sipp run ended.
#[derive(Debug)]
pub struct SippResult {
    /// Exit code (0: the call went as scripted; 1: it failed; 255: fatal or `-timeout`).
    pub code: Option<i32>,
    /// `-trace_logs` (`CONNECTED`, `LOCAL_BYE`, `REMOTE_BYE`, `REFUSED …`).
    pub log: String,
    /// `-trace_err`.
    pub errors: String,
    /// `-trace_msg`: every SIP message sent and received.
    pub messages: String,
    /// sipp's stderr.
    pub stderr: String,
    /// The command line.
    pub command: String,
}

impl SippResult {
    /// Everything, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "sipp {}\nexit code {:?}\n--- stderr\n{}\n--- log\n{}\n--- errors\n{}\n--- messages\n{}",
            self.command, self.code, self.stderr, self.log, self.errors, self.messages
        )
    }

    /// Fails the test unless sipp exited 0.
    pub fn assert_ok(&self, context: &str) {
        assert_eq!(
            self.code,
            Some(0),
            "{context}: sipp failed\n{}",
            self.describe()
        );
    }

    /// The SIP status lines sipp received (`"SIP/2.0 503 Service Unavailable"` …).
    pub fn received_status_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut received = false;
        for line in self.messages.lines() {
            if line.contains("message received") {
                received = true;
            } else if received && line.trim_start().starts_with("SIP/2.0 ") {
                out.push(line.trim().to_string());
                received = false;
            } else if !line.trim().is_empty() {
                received = false;
            }
        }
        out
    }
}

impl SippRun {
    /// Waits up to `timeout` for sipp to exit (killing it if it does not) and collects its
    /// traces.
    pub fn wait(mut self, timeout: Duration) -> SippResult {
        let status = self.process.wait_timeout(timeout);
        if status.is_none() {
            self.process.kill();
        }
        let read = |kind: &str| {
            std::fs::read_to_string(self.dir.join(format!("{}_{kind}.log", self.name)))
                .unwrap_or_default()
        };
        let mut result = SippResult {
            code: status.and_then(|s| s.code()),
            log: read("logs"),
            errors: read("errors"),
            messages: read("messages"),
            stderr: String::new(),
            command: self.args.join(" "),
        };
        // Give the reader thread a moment to see the end of stderr.
        self.stderr.wait_for(Duration::from_millis(200), |_| false);
        result.stderr = self.stderr.all().join("\n");
        if status.is_none() {
            result.stderr.push_str(&format!(
                "\n(sipp did not exit within {timeout:?} and was killed)"
            ));
        }
        result
    }
}

/// When sipp sent (`sent`) or received a SIP message whose first line starts with `start`
/// (`"ACK "`, `"SIP/2.0 200"` …), from the timestamps of its `-trace_msg` file: the first such
/// message. sipp writes local wall-clock time without a zone; `reference` (a time taken around
/// the run) fixes the zone, rounded to a quarter of an hour.
pub fn sipp_message_time(
    messages: &str,
    sent: bool,
    start: &str,
    reference: std::time::SystemTime,
) -> Option<std::time::SystemTime> {
    use time::macros::format_description;
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
    let direction = if sent {
        "message sent"
    } else {
        "message received"
    };
    let mut stamp: Option<&str> = None;
    let mut lines = messages.lines();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("-----") {
            stamp = t.rsplit_once("--").map(|(_, s)| s.trim());
            continue;
        }
        if !t.contains(direction) {
            continue;
        }
        let first = lines.by_ref().map(str::trim).find(|l| !l.is_empty())?;
        if !first.starts_with(start) {
            continue;
        }
        let local = time::PrimitiveDateTime::parse(stamp?, format).ok()?;
        let as_utc = local.assume_utc().unix_timestamp_nanos();
        let reference = reference
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos() as i128;
        let quarter: i128 = 900 * 1_000_000_000;
        let zone = ((as_utc - reference) as f64 / quarter as f64).round() as i128 * quarter;
        let nanos = u64::try_from(as_utc - zone).ok()?;
        return Some(std::time::UNIX_EPOCH + Duration::from_nanos(nanos));
    }
    None
}

/// sipp's `-trace_logs` line `CONNECTED <call-id>` → the call id.
pub fn connected_call_id(log: &str) -> Option<String> {
    log.lines()
        .find_map(|l| l.trim().strip_prefix("CONNECTED "))
        .map(|s| s.trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// tshark

/// tshark capturing on `lo` into a pcapng file.
pub struct Capture {
    process: ChildGuard,
    stderr: Lines,
    /// The capture file.
    pub file: PathBuf,
}

impl Capture {
    /// Starts capturing on `lo` with the BPF `filter`; returns once tshark says it captures.
    pub fn start(dir: &Path, name: &str, filter: &str) -> Capture {
        require_tool("tshark", "tshark");
        let file = dir.join(format!("{name}.pcapng"));
        let mut process = ChildGuard::spawn(
            "tshark",
            Command::new("tshark")
                .args(["-i", "lo", "-f", filter, "-q", "-w"])
                .arg(&file)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let stderr = Lines::collect(process.child_mut().stderr.take().unwrap());
        let started = stderr.wait_for(Duration::from_secs(15), |l| l.contains("Capturing on"));
        assert!(
            started.is_some(),
            "tshark did not start capturing on lo within 15 s (status {:?}); stderr:\n{}",
            process.try_status(),
            stderr.all().join("\n")
        );
        Capture {
            process,
            stderr,
            file,
        }
    }

    /// Stops the capture (SIGINT, so tshark flushes the file) and returns the file.
    pub fn stop(mut self) -> PathBuf {
        // Let packets already sent reach the capture before stopping it.
        thread::sleep(Duration::from_millis(300));
        self.process.signal("INT");
        let status = self.process.wait_timeout(Duration::from_secs(10));
        assert!(
            status.is_some(),
            "tshark did not stop within 10 s of SIGINT; stderr:\n{}",
            self.stderr.all().join("\n")
        );
        self.file.clone()
    }
}

/// One RTP packet as tshark decodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpPacket {
    /// Capture time, seconds since the epoch.
    pub time: f64,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Payload type.
    pub payload_type: u8,
    /// SSRC.
    pub ssrc: u32,
    /// Marker bit.
    pub marker: bool,
    /// RFC 4733 event code, for telephone-event packets.
    pub event: Option<u8>,
    /// RFC 4733 end bit.
    pub event_end: bool,
    /// The payload.
    pub payload: Vec<u8>,
}

/// The RTP packets to `dst_port` in a capture, decoded by tshark (telephone-events at PT 101).
pub fn rtp_packets(file: &Path, dst_port: u16) -> Vec<RtpPacket> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-d",
            &format!("udp.port=={dst_port},rtp"),
            "-o",
            "rtpevent.event_payload_type_value:101",
            "-Y",
            &format!("rtp && udp.dstport=={dst_port}"),
            "-T",
            "fields",
            "-E",
            "separator=;",
        ])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "rtp.seq",
            "-e",
            "rtp.timestamp",
            "-e",
            "rtp.p_type",
            "-e",
            "rtp.ssrc",
            "-e",
            "rtp.marker",
            "-e",
            "rtpevent.event_id",
            "-e",
            "rtpevent.end_of_event",
            "-e",
            "rtp.payload",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("running tshark -r");
    assert!(
        out.status.success(),
        "tshark -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_rtp_fields(l).unwrap_or_else(|| panic!("unexpected tshark line {l:?}")))
        .collect()
}

fn parse_rtp_fields(line: &str) -> Option<RtpPacket> {
    let f: Vec<&str> = line.split(';').collect();
    if f.len() < 11 {
        return None;
    }
    let int = |s: &str| -> Option<u64> {
        let s = s.trim();
        match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        }
    };
    let flag = |s: &str| matches!(s.trim(), "1" | "True" | "true");
    Some(RtpPacket {
        time: f[0].trim().parse().ok()?,
        src_port: int(f[1])? as u16,
        dst_port: int(f[2])? as u16,
        seq: int(f[3])? as u16,
        timestamp: int(f[4])? as u32,
        payload_type: int(f[5])? as u8,
        ssrc: int(f[6])? as u32,
        marker: flag(f[7]),
        event: int(f[8]).map(|e| e as u8),
        event_end: flag(f[9]),
        payload: hex_bytes(f[10])?,
    })
}

/// tshark's rendering of a bytes field (`"ff:7f"` or `"ff7f"`).
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let hex: String = s.trim().chars().filter(|c| *c != ':').collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The `p`-th percentile (0..=100) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    assert!(!values.is_empty(), "percentile of nothing");
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// baresip

/// A headless baresip (g711, aubridge, aufile; ctrl_tcp) with a config of its own in `dir`.
pub struct Baresip {
    /// The process.
    pub process: ChildGuard,
    ctrl: TcpStream,
    buf: Vec<u8>,
    /// Every event received, in order.
    pub events: Vec<Value>,
    output: Lines,
    token: u32,
}

/// Where Debian's baresip-core keeps its modules.
pub const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";

impl Baresip {
    /// Writes the config (SIP on `sip_port`, RTP in `rtp_range`, ctrl_tcp on `ctrl_port`, the
    /// audio source a long silent WAV so that baresip does not hang up when it ends) and starts
    /// baresip; returns once its control socket accepts.
    pub fn start(dir: &Path, sip_port: u16, ctrl_port: u16, rtp_range: &str) -> Baresip {
        let exe = require_tool("baresip", "baresip-core");
        assert!(
            Path::new(BARESIP_MODULES).join("ctrl_tcp.so").is_file(),
            "baresip modules are not in {BARESIP_MODULES} (Debian `baresip-core`; .ci/run installs it)"
        );
        let conf = dir.join("baresip");
        std::fs::create_dir_all(&conf).unwrap();
        let wav = dir.join("silence.wav");
        write_silent_wav(&wav, Duration::from_secs(120));
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             net_interface 127.0.0.1\n\
             dns_server 127.0.0.1:53\n\
             call_local_timeout 30\n\
             audio_player aubridge,sink\n\
             audio_alert aubridge,sink\n\
             audio_source aufile,{wav}\n\
             rtp_ports {rtp_range}\n\
             module_path {BARESIP_MODULES}\n\
             module g711.so\n\
             module aubridge.so\n\
             module aufile.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
            wav = wav.display()
        );
        std::fs::write(conf.join("config"), config).unwrap();
        std::fs::write(
            conf.join("accounts"),
            "<sip:5401@127.0.0.1>;regint=0;audio_codecs=PCMU,PCMA\n",
        )
        .unwrap();
        std::fs::write(conf.join("contacts"), "").unwrap();
        let mut process = ChildGuard::spawn(
            "baresip",
            Command::new(exe)
                .arg("-f")
                .arg(&conf)
                // Quit on its own after a minute whatever happens.
                .args(["-t", "60"])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let output = Lines::collect_into(
            process.child_mut().stdout.take().unwrap(),
            Some(&dir.join("baresip.log")),
        );
        let end = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Some(status) = process.try_status() {
                        panic!(
                            "baresip exited ({status}) before its ctrl_tcp socket accepted; output:\n{}",
                            output.all().join("\n")
                        );
                    }
                    assert!(
                        Instant::now() < end,
                        "baresip's ctrl_tcp 127.0.0.1:{ctrl_port} did not accept within 10 s ({e}); output:\n{}",
                        output.all().join("\n")
                    );
                    thread::sleep(Duration::from_millis(50));
                }
            }
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Baresip {
            process,
            ctrl,
            buf: Vec::new(),
            events: Vec::new(),
            output,
            token: 0,
        }
    }

    /// baresip's console output so far.
    pub fn output(&self) -> String {
        self.output.all().join("\n")
    }

    /// Sends a ctrl_tcp command and waits (up to 5 s) for its response; returns it.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        self.token += 1;
        let token = self.token.to_string();
        let msg = serde_json::json!({"command": command, "params": params, "token": token});
        let body = msg.to_string();
        let frame = format!("{}:{},", body.len(), body);
        self.ctrl
            .write_all(frame.as_bytes())
            .unwrap_or_else(|e| panic!("writing to baresip's ctrl_tcp: {e}"));
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(v) = self.next_message(end) {
                if v["response"] == true && v["token"] == token.as_str() {
                    return v;
                }
                if v["event"] == true {
                    self.events.push(v);
                }
            } else {
                panic!(
                    "baresip did not answer {command} {params} within 5 s; output:\n{}",
                    self.output()
                );
            }
        }
    }

    /// Waits up to `timeout` for an event of type `kind` (e.g. `CALL_ESTABLISHED`), also
    /// looking at events already received; returns it.
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> Value {
        if let Some(e) = self.events.iter().find(|e| e["type"] == kind) {
            return e.clone();
        }
        let end = Instant::now() + timeout;
        loop {
            match self.next_message(end) {
                Some(v) if v["event"] == true => {
                    let hit = v["type"] == kind;
                    self.events.push(v.clone());
                    if hit {
                        return v;
                    }
                }
                Some(_) => {}
                None => panic!(
                    "baresip sent no {kind} event within {timeout:?}; events: {:?}\noutput:\n{}",
                    self.events,
                    self.output()
                ),
            }
        }
    }

    /// The next netstring from ctrl_tcp, parsed, or None at `end`.
    fn next_message(&mut self, end: Instant) -> Option<Value> {
        loop {
            if let Some(colon) = self.buf.iter().position(|&b| b == b':') {
                let len: usize = std::str::from_utf8(&self.buf[..colon])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "bad netstring from baresip: {:?}",
                            String::from_utf8_lossy(&self.buf)
                        )
                    });
                if self.buf.len() > colon + len + 1 {
                    let body = self.buf[colon + 1..colon + 1 + len].to_vec();
                    assert_eq!(self.buf[colon + 1 + len], b',', "netstring without ','");
                    self.buf.drain(..colon + len + 2);
                    return Some(
                        serde_json::from_slice(&body)
                            .unwrap_or_else(|e| panic!("baresip sent bad JSON ({e}): {body:?}")),
                    );
                }
            }
            if Instant::now() >= end {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.ctrl.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("reading baresip's ctrl_tcp: {e}"),
            }
        }
    }

    /// Asks baresip to quit and waits (up to 5 s) for it to exit; kills it otherwise.
    pub fn quit(mut self) {
        let _ = self.command("quit", "");
        if self.process.wait_timeout(Duration::from_secs(5)).is_none() {
            self.process.kill();
        }
    }
}

/// Writes `length` of silence as an 8 kHz mono 16-bit WAV.
pub fn write_silent_wav(path: &Path, length: Duration) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating the WAV");
    let samples = (length.as_millis() * 8) as usize;
    for _ in 0..samples {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
}
