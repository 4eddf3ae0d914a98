//! End to end, against the product's external contract (`contract.md` §1-§5): the hot-desk
//! login service as the PBX, the portal and the call-control layer see it.
//!
//! Each test writes a config into a temporary dir, creates its users with the `hotdesk users`
//! commands on that same config (the PIN on stdin, never argv), starts `hotdesk serve`, and
//! then drives it only from outside: sipp dials `*88`/`*89` as a desk phone and plays the keys
//! (RFC 4733 and/or in-band, pcaps from the project's own writer), sipp answers the callbacks
//! of `POST /v1/activations`, the HTTP API is read and written over plain HTTP, and a webhook
//! receiver (`common::http`) takes the reports and checks every signature.
//!
//! The latency of a login is measured from the send time of the final `#` (sipp's ACK time
//! from its message trace, plus where the key sits in the pcap) to the report's arrival at the
//! receiver, and printed as `e2e latency: …` lines.
//!
//! The peers are installed by `.ci/run` (sip-tester); the tests need root (sipp's raw socket).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::http::{Api, Hook, WebhookReceiver};
use common::peers::{self, ChildGuard, Hotdesk, Ports, ServerOptions, Sipp, SippResult, SippRun};
use hotdesk_core::dsp::g711::{self, Law};
use hotdesk_qa::dtmf_stream::{self, DtmfMode, DtmfStreamSpec, write_dtmf_pcap};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The PIN pepper (hex, 32 bytes) given to the CLI and the server.
const PEPPER: &str = "8f1c2e3d4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
/// The webhook's HMAC secret.
const SECRET: &str = "e2e-webhook-secret-5f2b9c";
/// Ann's PIN; Bob's.
const PIN_1001: &str = "482913";
const PIN_1002: &str = "660417";
/// A PIN that is nobody's.
const WRONG_PIN: &str = "505050";

/// Silence before the first key of a caller's pcap.
const LEAD: Duration = Duration::from_millis(1000);
/// Key press and gap (the writer's defaults).
const TONE: Duration = Duration::from_millis(100);
const GAP: Duration = Duration::from_millis(100);
/// How long sipp holds a call before hanging up itself: hotdesk must hang up first.
const HOLD_MS: u64 = 22_000;
/// A whole sipp call, bounded.
const SIPP_TIMEOUT: Duration = Duration::from_secs(35);
/// How long a report may take once the key that causes it is sent.
const REPORT_LIMIT: Duration = Duration::from_secs(1);
/// How long the tests wait for a report before failing (the limit is asserted separately).
const REPORT_WAIT: Duration = Duration::from_secs(10);
/// How long "no report" is watched for.
const QUIET: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------------------------------------
// The world of one test

/// A user created before the server starts.
struct User {
    ext: &'static str,
    name: &'static str,
    pin: &'static str,
}

const ANN: User = User {
    ext: "1001",
    name: "Ann",
    pin: PIN_1001,
};
const BOB: User = User {
    ext: "1002",
    name: "Bob",
    pin: PIN_1002,
};

/// One test's server, webhook receiver, API client and temporary dir.
struct World {
    name: String,
    dir: TempDir,
    ports: Ports,
    opts: ServerOptions,
    config: PathBuf,
    hooks: WebhookReceiver,
    server: Hotdesk,
    api: Api,
    /// Output of every CLI command run (for the PIN checks).
    cli_output: Vec<String>,
}

/// A caller's call: sipp's result and when the keys were sent.
struct CallRun {
    sipp: SippResult,
    call_id: String,
    /// Send time of the last key (the final `#`), from sipp's ACK time and the pcap layout.
    last_key_at: Option<SystemTime>,
}

impl World {
    /// Config, users (CLI), webhook receiver, server; `tweak` adjusts the server options.
    fn new(name: &str, users: &[&User], tweak: impl FnOnce(&mut ServerOptions)) -> World {
        let dir = work_dir(name);
        let ports = Ports::alloc();
        let hooks = WebhookReceiver::start(ports.at(7), SECRET.as_bytes());
        let mut opts = ServerOptions {
            domain: Some("127.0.0.1".into()),
            outbound_proxy: Some(format!("sip:127.0.0.1:{}", ports.peer_sip(1))),
            features: vec![
                "login_code = \"*88\"".into(),
                "release_code = \"*89\"".into(),
                "device_range = \"5400-5499\"".into(),
            ],
            extra_toml: format!(
                "[ivr]\nfirst_digit_timeout_ms = 5000\ninter_digit_timeout_ms = 3000\n\
                 terminator = \"#\"\nmax_attempts = 3\n\n\
                 [security]\nlockout_failures = 5\nlockout_window_s = 900\nlockout_s = 900\n\n\
                 [report]\nwebhook_url = \"{}\"\nsecret_env = \"HOTDESK_WEBHOOK_SECRET\"\n",
                hooks.url()
            ),
            env: vec![
                ("HOTDESK_PIN_PEPPER".into(), PEPPER.into()),
                ("HOTDESK_WEBHOOK_SECRET".into(), SECRET.into()),
            ],
            ..Default::default()
        };
        tweak(&mut opts);
        let config = Hotdesk::write_config(dir.path(), &ports, &opts);
        let mut cli_output = Vec::new();
        for u in users {
            let add = run_cli(
                dir.path(),
                &opts,
                &[
                    "users",
                    "add",
                    u.ext,
                    "--name",
                    u.name,
                    "--config",
                    &config.display().to_string(),
                ],
                None,
            );
            add.assert_ok(&format!("hotdesk users add {}", u.ext));
            cli_output.push(add.all());
            let pin = run_cli(
                dir.path(),
                &opts,
                &[
                    "users",
                    "set-pin",
                    u.ext,
                    "--config",
                    &config.display().to_string(),
                ],
                Some(&format!("{}\n", u.pin)),
            );
            pin.assert_ok(&format!("hotdesk users set-pin {} (PIN on stdin)", u.ext));
            cli_output.push(pin.all());
        }
        let server = Hotdesk::start_with_config(dir.path(), &ports, &opts, &config);
        let token = opts
            .api_token_env
            .as_ref()
            .and_then(|name| opts.env.iter().find(|(k, _)| k == name))
            .map(|(_, v)| v.clone());
        let api = Api {
            addr: SocketAddr::from(([127, 0, 0, 1], ports.hotdesk_api())),
            token,
        };
        if let Err(e) = api.wait_healthy(Duration::from_secs(10)) {
            panic!("{e}\nhotdesk log:\n{}", server.log_text());
        }
        World {
            name: name.into(),
            dir,
            ports,
            opts,
            config,
            hooks,
            server,
            api,
            cli_output,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the server again (after a SIGKILL) on the same dir, config and ports.
    fn restart(&mut self) {
        let server = Hotdesk::start_with_config(self.path(), &self.ports, &self.opts, &self.config);
        self.server = server;
        if let Err(e) = self.api.wait_healthy(Duration::from_secs(10)) {
            panic!(
                "after the restart: {e}\nhotdesk log:\n{}",
                self.server.log_text()
            );
        }
    }

    /// Everything a failure message needs.
    fn context(&self) -> String {
        format!(
            "--- webhook requests\n{}\n--- hotdesk log ({})\n{}",
            self.hooks.describe(),
            self.name,
            self.server.log_text()
        )
    }

    /// sipp (`uac_pcap.xml`) on peer ports `peer`, set up as desk phone `caller` dialling
    /// `service` and keying `keys` on `mode` from [`LEAD`] after the ACK.
    fn phone_calling(
        &self,
        label: &str,
        peer: u16,
        service: &str,
        caller: &str,
        keys: &str,
        mode: DtmfMode,
    ) -> Sipp {
        let pcap = self.path().join(format!("{label}.pcap"));
        write_dtmf_pcap(
            &pcap,
            &DtmfStreamSpec {
                digits: keys.into(),
                mode,
                law: Law::Ulaw,
                lead: LEAD,
                tone: TONE,
                gap: GAP,
                tail: Duration::from_millis(500),
                ..Default::default()
            },
        )
        .expect("writing the caller's pcap");
        Sipp::new(
            label,
            self.path(),
            "uac_pcap.xml",
            self.ports.peer_sip(peer),
            self.ports.peer_media(peer),
        )
        .args([
            "-s",
            service,
            "-key",
            "pcap",
            &pcap.display().to_string(),
            "-d",
            &HOLD_MS.to_string(),
        ])
        .set("caller", caller)
        .set("fmts", "0 101")
    }

    /// sipp (`uac_pcap.xml`) as desk phone `caller` dials `service`, keying `keys` on `mode`
    /// from [`LEAD`] after the ACK; runs the call to its end.
    fn dial(
        &self,
        label: &str,
        service: &str,
        caller: &str,
        keys: &str,
        mode: DtmfMode,
    ) -> CallRun {
        let reference = SystemTime::now();
        let sipp = self
            .phone_calling(label, 0, service, caller, keys, mode)
            .run(Some(self.server.sip), SIPP_TIMEOUT);
        let call_id = peers::connected_call_id(&sipp.log).unwrap_or_else(|| {
            panic!(
                "{label}: sipp logged no CONNECTED line\n{}\n{}",
                sipp.describe(),
                self.context()
            )
        });
        let ack = peers::sipp_message_time(&sipp.messages, true, "ACK ", reference);
        CallRun {
            last_key_at: ack.map(|t| t + last_key_offset(keys)),
            sipp,
            call_id,
        }
    }

    /// A call that hotdesk must end itself (sipp exits 0 after hotdesk's BYE).
    fn dial_ended_by_hotdesk(
        &self,
        label: &str,
        service: &str,
        caller: &str,
        keys: &str,
        mode: DtmfMode,
    ) -> CallRun {
        let call = self.dial(label, service, caller, keys, mode);
        call.sipp.assert_ok(label);
        assert!(
            call.sipp.log.contains("REMOTE_BYE"),
            "{label}: hotdesk should have hung up the call itself (sipp would only after {HOLD_MS} ms)\n{}\n{}",
            call.sipp.describe(),
            self.context()
        );
        call
    }

    /// sipp as the desk phone answering hotdesk's callbacks (peer 1, the outbound proxy);
    /// returns once its SIP port is bound.
    fn phone(&self, label: &str, scenario: &str, configure: impl FnOnce(Sipp) -> Sipp) -> SippRun {
        let sipp = Sipp::new(
            label,
            self.path(),
            scenario,
            self.ports.peer_sip(1),
            self.ports.peer_media(1),
        );
        let mut run = configure(sipp).spawn(None);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::UdpSocket::bind(("127.0.0.1", self.ports.peer_sip(1))).is_ok() {
            if let Some(status) = run.process.try_status() {
                panic!("{label}: sipp exited ({status}) before binding its SIP port");
            }
            assert!(
                Instant::now() < deadline,
                "{label}: sipp did not bind its SIP port within 5 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        run
    }

    /// Waits for a report from the receiver's request number `from` on that matches; fails the
    /// test with everything seen if none comes within [`REPORT_WAIT`].
    fn expect_report(&self, from: usize, what: &str, pred: impl Fn(&Hook) -> bool) -> Hook {
        self.hooks
            .wait_report(from, REPORT_WAIT, pred)
            .unwrap_or_else(|| {
                panic!(
                    "no {what} report within {REPORT_WAIT:?}\n{}",
                    self.context()
                )
            })
    }

    /// [`World::expect_report`] of the report `e` describes, checked with [`check_report`].
    fn expect_checked(
        &self,
        from: usize,
        what: &str,
        e: &Expect,
        ctx: &dyn Fn() -> String,
    ) -> Hook {
        let hook = self.expect_report(from, what, |h| h.event() == e.event);
        check_report(&hook, e, ctx);
        hook
    }

    /// Asserts no webhook request arrives for [`QUIET`] after request number `from`.
    fn expect_no_report(&self, from: usize, why: &str) {
        let hooks = self.hooks.wait_until(QUIET, |h| h.len() > from);
        assert_eq!(
            hooks.len(),
            from,
            "{why}: no report expected, got {:?}\n{}",
            hooks[from..].iter().map(Hook::summary).collect::<Vec<_>>(),
            self.context()
        );
    }

    /// `GET /v1/devices`, as a map device → entry.
    fn devices(&self) -> BTreeMap<String, Value> {
        let r = self.api.get("/v1/devices");
        assert_eq!(r.status, 200, "GET /v1/devices\n{}", r.describe());
        let list = r.json();
        let list = list
            .as_array()
            .unwrap_or_else(|| panic!("GET /v1/devices is not a JSON array: {list}"));
        list.iter()
            .map(|e| {
                let device = e["device"]
                    .as_str()
                    .unwrap_or_else(|| panic!("entry without a device string: {e}"));
                (device.to_string(), e.clone())
            })
            .collect()
    }
}

/// A temporary dir for one test; kept (and its path printed) when `HOTDESK_KEEP_PEER_DIRS` is
/// set.
fn work_dir(name: &str) -> TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("hotdesk-e2e-{name}-"))
        .tempdir()
        .unwrap();
    if std::env::var_os("HOTDESK_KEEP_PEER_DIRS").is_some() {
        println!("{name}: work dir {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    dir
}

/// Where the last key of `keys` starts, from the start of the pcap (the ACK).
fn last_key_offset(keys: &str) -> Duration {
    let n = keys.chars().count().max(1) as u32;
    LEAD + (TONE + GAP) * (n - 1)
}

/// What a CLI run printed and how it ended.
struct CliRun {
    command: String,
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

impl CliRun {
    fn assert_ok(&self, what: &str) {
        assert!(
            self.status.is_some_and(|s| s.success()),
            "{what}: `hotdesk {}` failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
    }

    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `hotdesk ARGS` in `dir` with the server's environment, `stdin` fed in; at most 60 s.
fn run_cli(dir: &Path, opts: &ServerOptions, args: &[&str], stdin: Option<&str>) -> CliRun {
    run_cli_in(dir, dir, opts, args, stdin)
}

/// The same in the working directory `cwd` (outputs still kept in `dir`).
fn run_cli_in(
    dir: &Path,
    cwd: &Path,
    opts: &ServerOptions,
    args: &[&str],
    stdin: Option<&str>,
) -> CliRun {
    use std::io::Write;
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let out_path = dir.join(format!("cli-{n}.stdout"));
    let err_path = dir.join(format!("cli-{n}.stderr"));
    let mut child = ChildGuard::spawn(
        "hotdesk (CLI)",
        Command::new(env!("CARGO_BIN_EXE_hotdesk"))
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", opts.rust_log.as_deref().unwrap_or("info"))
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    {
        let mut input = child.child_mut().stdin.take().unwrap();
        if let Some(text) = stdin {
            let _ = input.write_all(text.as_bytes());
        }
    }
    let status = child.wait_timeout(Duration::from_secs(60));
    if status.is_none() {
        child.kill();
    }
    CliRun {
        command: args.join(" "),
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// What a report must say.
struct Expect<'a> {
    event: &'a str,
    device: &'a str,
    user: Option<&'a str>,
    previous_user: Option<&'a str>,
    via: &'a str,
    /// `Some(id)`: that Call-ID; `None`: null.
    call_id: Option<&'a str>,
}

/// Checks one webhook request against contract §5: POST, JSON body with exactly the eight
/// fields, `X-Hotdesk-Event-Id` = id, a valid signature, and the expected values.
fn check_report(hook: &Hook, e: &Expect, context: &dyn Fn() -> String) {
    let body = hook
        .json
        .as_ref()
        .unwrap_or_else(|| panic!("report body is not JSON: {}\n{}", hook.summary(), context()));
    let m = &hook.message;
    assert!(
        m.start_line.starts_with("POST /hook "),
        "webhook request line {:?}\n{}",
        m.start_line,
        context()
    );
    assert!(
        m.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "Content-Type {:?}\n{}",
        m.header("content-type"),
        context()
    );
    assert!(
        hook.signature_ok,
        "X-Hotdesk-Signature {:?}: {:?}\nbody: {}\n{}",
        m.header("x-hotdesk-signature"),
        common::http::verify_v1(
            SECRET.as_bytes(),
            m.header("x-hotdesk-signature").unwrap_or_default(),
            &m.body,
            common::http::unix_now()
        ),
        hook.summary(),
        context()
    );
    let keys: HashSet<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let want: HashSet<&str> = [
        "id",
        "event",
        "device",
        "user",
        "previous_user",
        "via",
        "call_id",
        "at",
    ]
    .into_iter()
    .collect();
    assert_eq!(
        keys,
        want,
        "report fields: {}\n{}",
        hook.summary(),
        context()
    );
    let id = body["id"].as_str().unwrap_or("");
    assert!(!id.is_empty(), "report without an id: {}", hook.summary());
    assert_eq!(
        m.header("x-hotdesk-event-id"),
        Some(id),
        "X-Hotdesk-Event-Id must be the report id\n{}",
        hook.summary()
    );
    let nullable = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.into()));
    let got = json!({
        "event": body["event"], "device": body["device"], "user": body["user"],
        "previous_user": body["previous_user"], "via": body["via"], "call_id": body["call_id"],
    });
    let expected = json!({
        "event": e.event, "device": e.device, "user": nullable(e.user),
        "previous_user": nullable(e.previous_user), "via": e.via, "call_id": nullable(e.call_id),
    });
    assert_eq!(got, expected, "report {}\n{}", hook.summary(), context());
    let at = body["at"].as_str().unwrap_or("");
    let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|err| panic!("`at` {at:?} is not RFC 3339 ({err}): {}", hook.summary()));
    let now = time::OffsetDateTime::now_utc();
    assert!(
        (now - at).abs() < time::Duration::minutes(2),
        "`at` {at} is not about now ({now}): {}",
        hook.summary()
    );
}

/// The time from the final `#` to the report's arrival; asserts it is under [`REPORT_LIMIT`]
/// and prints it.
fn check_latency(
    label: &str,
    key_at: Option<SystemTime>,
    hook: &Hook,
    context: &dyn Fn() -> String,
) {
    let key_at = key_at.unwrap_or_else(|| {
        panic!(
            "{label}: no ACK time in sipp's message trace, cannot time the report\n{}",
            context()
        )
    });
    let latency = hook.received.duration_since(key_at).unwrap_or_else(|e| {
        panic!(
            "{label}: the report arrived {:?} before the final # was sent\n{}",
            e.duration(),
            context()
        )
    });
    println!(
        "e2e latency: final # -> {} report: {:.1} ms ({label})",
        hook.event(),
        latency.as_secs_f64() * 1000.0
    );
    assert!(
        latency < REPORT_LIMIT,
        "{label}: the report came {latency:?} after the final #, over {REPORT_LIMIT:?}\n{}",
        context()
    );
}

/// The `/v1/events` body as a list of reports (a JSON array, or `{"events": [...]}`).
fn event_list(r: &common::http::Response) -> Vec<Value> {
    assert_eq!(r.status, 200, "GET /v1/events\n{}", r.describe());
    let v = r.json();
    match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("events") {
            Some(Value::Array(a)) => a,
            _ => panic!("GET /v1/events: no list of events in {}", r.describe()),
        },
        other => panic!("GET /v1/events: not a list: {other}"),
    }
}

/// Asserts an API error response: `status` and `{"error": …}`.
fn check_error(r: &common::http::Response, status: &[u16], what: &str) -> Value {
    assert!(
        status.contains(&r.status),
        "{what}: expected {status:?}\n{}",
        r.describe()
    );
    let body = r.json();
    assert!(
        body["error"].is_string(),
        "{what}: error body without \"error\"\n{}",
        r.describe()
    );
    body
}

// ---------------------------------------------------------------------------------------------
// Tests

/// `*88` with the keys as RFC 4733 and then in-band, the portal's release, `*89`: each one
/// reported at the webhook (signed, the contract's body, the call's Call-ID) and reflected in
/// `GET /v1/devices`; the report log at `GET /v1/events` holds the same bodies in order.
#[test]
fn feature_code_login_and_release() {
    let w = World::new("login", &[&ANN], |_| {});
    let ctx = || w.context();
    let keys = format!("1001#{PIN_1001}#");

    // 1. *88, keys as RFC 4733.
    let from = w.hooks.count();
    let call = w.dial_ended_by_hotdesk("login_rfc4733", "*88", "5401", &keys, DtmfMode::Rfc4733);
    let login = w.expect_checked(
        from,
        "login",
        &Expect {
            event: "login",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "feature_code",
            call_id: Some(&call.call_id),
        },
        &ctx,
    );
    check_latency("*88 rfc4733", call.last_key_at, &login, &ctx);
    let devices = w.devices();
    let entry = devices
        .get("5401")
        .unwrap_or_else(|| panic!("GET /v1/devices does not list 5401: {devices:?}"));
    assert_eq!(entry["user"], "1001", "{entry}");
    assert_eq!(entry["via"], "feature_code", "{entry}");
    assert!(
        entry["since"].as_str().is_some_and(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        }),
        "`since` is not an RFC 3339 time: {entry}"
    );

    // 2. The portal's X: DELETE /v1/devices/5401/login.
    let from = w.hooks.count();
    let r = w.api.call("DELETE", "/v1/devices/5401/login", None);
    assert_eq!(
        r.status,
        204,
        "DELETE /v1/devices/5401/login\n{}",
        r.describe()
    );
    w.expect_checked(
        from,
        "release (api)",
        &Expect {
            event: "release",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "api",
            call_id: None,
        },
        &ctx,
    );
    assert!(
        !w.devices().contains_key("5401"),
        "5401 still listed after DELETE"
    );

    // 3. *88 again, keys in-band only.
    let from = w.hooks.count();
    let call = w.dial_ended_by_hotdesk("login_inband", "*88", "5401", &keys, DtmfMode::Inband);
    let login = w.expect_checked(
        from,
        "login (in-band)",
        &Expect {
            event: "login",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "feature_code",
            call_id: Some(&call.call_id),
        },
        &ctx,
    );
    check_latency("*88 inband", call.last_key_at, &login, &ctx);
    assert_eq!(w.devices()["5401"]["user"], "1001");

    // 4. *89 from the desk.
    let from = w.hooks.count();
    let call = w.dial_ended_by_hotdesk("release", "*89", "5401", "", DtmfMode::Rfc4733);
    w.expect_checked(
        from,
        "release (*89)",
        &Expect {
            event: "release",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "feature_code",
            call_id: Some(&call.call_id),
        },
        &ctx,
    );
    assert!(
        !w.devices().contains_key("5401"),
        "5401 still listed after *89"
    );

    // 5. Nobody logged in: 404.
    let r = w.api.call("DELETE", "/v1/devices/5401/login", None);
    check_error(
        &r,
        &[404],
        "DELETE /v1/devices/5401/login with nobody logged in",
    );

    // 6. The report log: the same bodies as the webhook, in order; `after` pages.
    let delivered = w.hooks.reports();
    assert_eq!(delivered.len(), 4, "{}", w.hooks.describe());
    let events = event_list(&w.api.get("/v1/events"));
    let bodies: Vec<Value> = delivered.iter().map(|h| h.json.clone().unwrap()).collect();
    assert_eq!(events, bodies, "GET /v1/events vs the webhook bodies");
    let first = bodies[0]["id"].as_str().unwrap();
    let rest = event_list(&w.api.get(&format!("/v1/events?after={first}")));
    assert_eq!(rest, bodies[1..].to_vec(), "GET /v1/events?after={first}");
    for h in w.hooks.hooks() {
        assert!(h.signature_ok, "bad signature on {}", h.summary());
    }
}

/// A phone outside the device range cannot log in; three wrong PINs in one call end it with
/// three `login_failed`; two more (five in all, across calls) lock the account (`locked_out`)
/// and the right PIN is refused; `DELETE /v1/lockouts/1001` lets it in again.
#[test]
fn wrong_pins_lock_the_account_until_the_api_unlocks_it() {
    let w = World::new("lockout", &[&ANN], |_| {});
    let ctx = || w.context();
    let right = format!("1001#{PIN_1001}#");
    let wrong = format!("1001#{WRONG_PIN}#");

    // A phone outside 5400-5499: "not a hot-desk phone", hang up, nothing reported.
    let from = w.hooks.count();
    w.dial_ended_by_hotdesk("not_a_desk", "*88", "1234", &right, DtmfMode::Rfc4733);
    w.expect_no_report(from, "*88 from 1234 (outside the device range)");
    assert!(w.devices().is_empty(), "{:?}", w.devices());

    let failed = |h: &Hook| h.event() == "login_failed";
    let expect_failed = |h: &Hook, call_id: &str| {
        check_report(
            h,
            &Expect {
                event: "login_failed",
                device: "5401",
                user: Some("1001"),
                previous_user: None,
                via: "feature_code",
                call_id: Some(call_id),
            },
            &ctx,
        )
    };

    // Three wrong PINs in one call (typed ahead): three login_failed, hotdesk ends the call.
    let from = w.hooks.count();
    let call = w.dial_ended_by_hotdesk(
        "three_wrong",
        "*88",
        "5401",
        &wrong.repeat(3),
        DtmfMode::Rfc4733,
    );
    let hooks = w.hooks.wait_until(REPORT_WAIT, |h| {
        h[from..].iter().filter(|h| failed(h)).count() >= 3
    });
    let got: Vec<&Hook> = hooks[from..].iter().collect();
    assert_eq!(
        got.iter().map(|h| h.event()).collect::<Vec<_>>(),
        vec!["login_failed"; 3],
        "three wrong PINs\n{}",
        ctx()
    );
    for h in &got {
        expect_failed(h, &call.call_id);
    }
    assert!(!w.devices().contains_key("5401"));

    // Two more in a second call: the fifth failure locks the account.
    let from = w.hooks.count();
    let call = w.dial_ended_by_hotdesk(
        "two_wrong",
        "*88",
        "5401",
        &wrong.repeat(2),
        DtmfMode::Rfc4733,
    );
    let hooks = w.hooks.wait_until(REPORT_WAIT, |h| {
        h[from..].iter().any(|h| h.event() == "locked_out")
            && h[from..].iter().filter(|h| failed(h)).count() >= 2
    });
    let got: Vec<&Hook> = hooks[from..].iter().collect();
    let events: Vec<&str> = got.iter().map(|h| h.event()).collect();
    assert_eq!(
        events,
        vec!["login_failed", "login_failed", "locked_out"],
        "the 4th and 5th failures\n{}",
        ctx()
    );
    expect_failed(got[0], &call.call_id);
    expect_failed(got[1], &call.call_id);
    check_report(
        got[2],
        &Expect {
            event: "locked_out",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "feature_code",
            call_id: Some(&call.call_id),
        },
        &ctx,
    );

    // Locked: the right PIN is refused, nothing is logged in, no login report.
    let from = w.hooks.count();
    w.dial_ended_by_hotdesk("locked_right_pin", "*88", "5401", &right, DtmfMode::Rfc4733);
    let hooks = w.hooks.wait_until(QUIET, |h| h.len() > from);
    assert!(
        hooks[from..].iter().all(|h| h.event() != "login"),
        "a locked account logged in\n{}",
        ctx()
    );
    assert!(
        !w.devices().contains_key("5401"),
        "a locked account logged in: {:?}",
        w.devices()
    );

    // Unlock through the API; the right PIN works again.
    let r = w.api.call("DELETE", "/v1/lockouts/1001", None);
    assert_eq!(r.status, 204, "DELETE /v1/lockouts/1001\n{}", r.describe());
    let from = w.hooks.count();
    let call = w.dial_ended_by_hotdesk("unlocked", "*88", "5401", &right, DtmfMode::Rfc4733);
    let login = w.expect_checked(
        from,
        "login after unlock",
        &Expect {
            event: "login",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "feature_code",
            call_id: Some(&call.call_id),
        },
        &ctx,
    );
    check_latency("*88 after unlock", call.last_key_at, &login, &ctx);
    assert_eq!(w.devices()["5401"]["user"], "1001");
}

/// Polls `GET /v1/activations/{id}` until a final state (at most `timeout`); returns every
/// distinct state seen, in order, starting with the `calling` of the POST's answer, and the
/// last body.
fn follow_activation(w: &World, id: &str, timeout: Duration) -> (Vec<String>, Value) {
    let end = Instant::now() + timeout;
    let mut states: Vec<String> = vec!["calling".into()];
    loop {
        let r = w.api.get(&format!("/v1/activations/{id}"));
        assert_eq!(r.status, 200, "GET /v1/activations/{id}\n{}", r.describe());
        let body = r.json();
        let state = body["state"]
            .as_str()
            .unwrap_or_else(|| panic!("activation without a state: {body}"))
            .to_string();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if matches!(
            state.as_str(),
            "verified" | "failed" | "busy" | "no_answer" | "error"
        ) {
            return (states, body);
        }
        assert!(
            Instant::now() < end,
            "activation {id} still {state} after {timeout:?} (states {states:?})\n{}",
            w.context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `POST /v1/activations` for 5401 as 1001: 202 `calling`, and the activation's id.
fn activate(w: &World) -> String {
    let r = w.api.call(
        "POST",
        "/v1/activations",
        Some(&json!({"device": "5401", "user": "1001"})),
    );
    assert_eq!(r.status, 202, "POST /v1/activations\n{}", r.describe());
    let body = r.json();
    assert_eq!(body["state"], "calling", "{body}");
    body["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("activation without an id: {body}"))
        .to_string()
}

/// The portal's *Activate Phone*: hotdesk calls the desk (sipp answering), the PIN keyed there
/// logs it in (`verified`, a `login` report `via: callback`); bad requests are refused.
#[test]
fn activation_answered_logs_the_desk_in_by_callback() {
    let w = World::new("activation", &[&ANN], |_| {});
    let ctx = || w.context();

    // Bad requests first: they must not call anyone.
    let r = w
        .api
        .call("POST", "/v1/activations", Some(&json!({"user": "1001"})));
    let body = check_error(&r, &[400, 422], "POST /v1/activations without a device");
    assert!(
        body.to_string().contains("device"),
        "the error should name the missing field `device`: {body}"
    );
    let r = w.api.raw("POST", "/v1/activations", Some(b"{not json"));
    check_error(
        &r,
        &[400],
        "POST /v1/activations with a body that is not JSON",
    );
    let r = w.api.get("/v1/activations/no-such-activation");
    check_error(&r, &[404], "GET /v1/activations/<unknown id>");

    let keys = format!("{PIN_1001}#");
    let pcap = w.path().join("callback.pcap");
    write_dtmf_pcap(
        &pcap,
        &DtmfStreamSpec {
            digits: keys.clone(),
            mode: DtmfMode::Rfc4733,
            law: Law::Ulaw,
            lead: LEAD,
            tone: TONE,
            gap: GAP,
            tail: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .unwrap();
    let reference = SystemTime::now();
    let phone = w.phone("phone", "uas_answer.xml", |s| {
        s.set("fmts", "0 101").set("ring_ms", "1000").args([
            "-key",
            "pcap",
            &pcap.display().to_string(),
        ])
    });
    let from = w.hooks.count();
    let id = activate(&w);
    let (states, last) = follow_activation(&w, &id, Duration::from_secs(30));
    println!("activation {id}: states {states:?}");
    // The phone rings for a second before it answers: every state of contract §4 shows.
    assert_eq!(
        states,
        ["calling", "ringing", "answered", "verified"],
        "activation states (last {last})\n{}",
        ctx()
    );
    let login = w.expect_report(from, "login (callback)", |h| h.event() == "login");
    let result = phone.wait(Duration::from_secs(30));
    result.assert_ok("the desk phone answered and got hotdesk's BYE");
    let call_id = peers::connected_call_id(&result.log)
        .unwrap_or_else(|| panic!("the phone logged no CONNECTED\n{}", result.describe()));
    check_report(
        &login,
        &Expect {
            event: "login",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "callback",
            call_id: Some(&call_id),
        },
        &ctx,
    );
    let ack = peers::sipp_message_time(&result.messages, false, "ACK ", reference);
    check_latency(
        "callback",
        ack.map(|t| t + last_key_offset(&keys)),
        &login,
        &ctx,
    );
    let devices = w.devices();
    assert_eq!(devices["5401"]["user"], "1001", "{devices:?}");
    assert_eq!(devices["5401"]["via"], "callback", "{devices:?}");
}

/// A busy desk phone: the activation ends `busy`, nothing is reported.
#[test]
fn activation_of_a_busy_phone_is_busy() {
    let w = World::new("activation-busy", &[&ANN], |_| {});
    let phone = w.phone("phone", "uas_busy.xml", |s| s.set("ring_ms", "1000"));
    let from = w.hooks.count();
    let id = activate(&w);
    let (states, last) = follow_activation(&w, &id, Duration::from_secs(20));
    assert_eq!(
        states,
        ["calling", "ringing", "busy"],
        "activation states (last {last})\n{}",
        w.context()
    );
    println!("activation {id}: states {states:?}");
    phone
        .wait(Duration::from_secs(10))
        .assert_ok("the busy phone saw its 486 ACKed");
    w.expect_no_report(from, "a busy activation");
    assert!(w.devices().is_empty());
}

/// A desk phone nobody answers: hotdesk gives up after its ring timeout (`ivr.ring_timeout_s`,
/// 3 s here), CANCELs, and the activation ends `no_answer`.
#[test]
fn activation_of_an_unanswered_phone_is_no_answer() {
    let w = World::new("activation-ring", &[&ANN], |o| {
        o.extra_toml = o
            .extra_toml
            .replace("[ivr]\n", "[ivr]\nring_timeout_s = 3\n");
    });
    let phone = w.phone("phone", "uas_ring.xml", |s| s.args(["-timeout", "70s"]));
    let started = Instant::now();
    let id = activate(&w);
    let (states, last) = follow_activation(&w, &id, Duration::from_secs(60));
    let rang_for = started.elapsed();
    assert_eq!(
        states,
        ["calling", "ringing", "no_answer"],
        "activation states (last {last})\n{}",
        w.context()
    );
    println!("activation {id}: states {states:?}, no_answer after {rang_for:?}");
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(10)).contains(&rang_for),
        "no_answer after {rang_for:?}, want the 3 s ring timeout"
    );
    let result = phone.wait(Duration::from_secs(15));
    result.assert_ok("the phone got CANCEL, answered 200 and 487, and got the ACK");
    assert!(
        result.messages.contains("CANCEL sip:5401@127.0.0.1"),
        "{}",
        result.describe()
    );
    assert!(w.devices().is_empty());
}

/// Reports written while the receiver is down survive a SIGKILL of the server: after the
/// restart every one is delivered, in order per device, and each id at least once.
#[test]
fn reports_survive_a_receiver_outage_and_a_server_kill() {
    let mut w = World::new("outage", &[&ANN, &BOB], |_| {});
    let ann = format!("1001#{PIN_1001}#");
    let bob = format!("1002#{PIN_1002}#");

    // Delivered normally first.
    w.dial_ended_by_hotdesk("ann_5401", "*88", "5401", &ann, DtmfMode::Rfc4733);
    w.expect_report(0, "login 5401", |h| h.event() == "login");

    // The receiver goes down; four reports are written meanwhile:
    //   Ann at 5402 releases 5401 (release 5401, login 5402), the portal releases 5402
    //   (release 5402), Bob logs in at 5401 (login 5401).
    w.hooks.stop();
    let delivered_before = w.hooks.count();
    w.dial_ended_by_hotdesk("ann_5402", "*88", "5402", &ann, DtmfMode::Rfc4733);
    let r = w.api.call("DELETE", "/v1/devices/5402/login", None);
    assert_eq!(
        r.status,
        204,
        "DELETE /v1/devices/5402/login\n{}",
        r.describe()
    );
    w.dial_ended_by_hotdesk("bob_5401", "*88", "5401", &bob, DtmfMode::Rfc4733);
    let logged: BTreeMap<String, String> = w
        .devices()
        .into_iter()
        .map(|(d, e)| (d, e["user"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        logged,
        BTreeMap::from([("5401".to_string(), "1002".to_string())]),
        "desks before the kill"
    );
    let outbox = event_list(&w.api.get("/v1/events"));
    assert_eq!(
        outbox.len(),
        5,
        "the report log before the kill: {outbox:#?}\n{}",
        w.context()
    );

    // SIGKILL with the four reports pending; the receiver comes back while the server is
    // down; the server starts again.
    w.server.process.kill();
    assert_eq!(
        w.hooks.count(),
        delivered_before,
        "nothing can have been delivered while the receiver was down"
    );
    w.hooks.start_again();
    let back = Instant::now();
    w.restart();

    let ids: Vec<String> = outbox
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    // Retries back off up to a minute (the backoff is kept in the store across the restart),
    // so a report may wait that long after the receiver is back.
    let hooks = w.hooks.wait_until(Duration::from_secs(75), |h| {
        let got: HashSet<&str> = h.iter().map(Hook::id).collect();
        ids.iter().all(|id| got.contains(id.as_str()))
    });
    let last_arrival = hooks
        .iter()
        .map(|h| h.instant.saturating_duration_since(back))
        .max()
        .unwrap_or_default();
    println!("outage: every report delivered {last_arrival:?} after the restart began");
    let got: HashSet<&str> = hooks.iter().map(Hook::id).collect();
    let missing: Vec<&Value> = outbox
        .iter()
        .filter(|e| !got.contains(e["id"].as_str().unwrap()))
        .collect();
    assert!(
        missing.is_empty(),
        "reports never delivered after the restart: {missing:#?}\n{}",
        w.context()
    );
    for h in &hooks {
        assert!(h.signature_ok, "bad signature: {}", h.summary());
    }
    // Each delivered body is the logged one, and per device the first arrivals come in the
    // order the reports were written.
    let reports = w.hooks.reports();
    for h in &reports {
        let logged = outbox
            .iter()
            .find(|e| e["id"].as_str() == Some(h.id()))
            .unwrap_or_else(|| panic!("delivered a report the log does not have: {}", h.summary()));
        assert_eq!(
            h.json.as_ref(),
            Some(logged),
            "delivered body vs the report log"
        );
    }
    let per_device = |list: &mut dyn Iterator<Item = &Value>| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in list {
            m.entry(e["device"].as_str().unwrap_or("").into())
                .or_default()
                .push(format!("{} {}", e["event"].as_str().unwrap_or(""), e["id"]));
        }
        m
    };
    let written = per_device(&mut outbox.iter());
    let arrived = per_device(&mut reports.iter().filter_map(|h| h.json.as_ref()));
    assert_eq!(
        arrived,
        written,
        "delivery order per device\n{}",
        w.context()
    );
    let events: Vec<(String, String)> = outbox
        .iter()
        .map(|e| {
            (
                e["device"].as_str().unwrap_or("").to_string(),
                e["event"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        events,
        pairs(&[
            ("5401", "login"),
            ("5401", "release"),
            ("5402", "login"),
            ("5402", "release"),
            ("5401", "login"),
        ]),
        "the report log"
    );
    println!(
        "outage: {} webhook requests for {} reports ({} duplicates)",
        hooks.len(),
        reports.len(),
        hooks.len() - reports.len()
    );
}

/// At trace level, a whole login (keys on RFC 4733 and in-band at once): the PIN appears in no
/// log line of the server or the CLI, no report, no API response, and not in the database.
#[test]
fn the_pin_is_never_logged_even_at_trace_level() {
    // Nine digits (ten would complete the entry without the `#`: the PIN's maximum length),
    // none of them in the account "1001": a PIN key in any log field shows.
    const PIN: &str = "739684736";
    const TRACE_USER: User = User {
        ext: "1001",
        name: "Ann",
        pin: PIN,
    };
    let mut w = World::new("trace", &[&TRACE_USER], |o| {
        o.rust_log = Some("trace".into());
        o.api_token_env = Some("HOTDESK_API_TOKEN".into());
        o.env
            .push(("HOTDESK_API_TOKEN".into(), "e2e-api-token-93a1".into()));
    });
    let ctx = || w.context();

    // The token is required when configured.
    let no_token = Api {
        addr: w.api.addr,
        token: None,
    };
    let r = no_token.get("/v1/devices");
    check_error(&r, &[401], "GET /v1/devices without the bearer token");

    let from = w.hooks.count();
    let call = w.dial_ended_by_hotdesk(
        "login_both",
        "*88",
        "5401",
        &format!("1001#{PIN}#"),
        DtmfMode::Both,
    );
    let login = w.expect_checked(
        from,
        "login",
        &Expect {
            event: "login",
            device: "5401",
            user: Some("1001"),
            previous_user: None,
            via: "feature_code",
            call_id: Some(&call.call_id),
        },
        &ctx,
    );
    check_latency("*88 both, trace", call.last_key_at, &login, &ctx);

    let mut api_text = Vec::new();
    for path in [
        "/v1/devices",
        "/v1/events",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        let r = w.api.get(path);
        assert_eq!(r.status, 200, "GET {path}\n{}", r.describe());
        api_text.push((path.to_string(), r.describe()));
    }
    // Stop the server so that its log is complete.
    w.server.sigterm();
    let status = w.server.process.wait_timeout(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "hotdesk did not exit 0 within 40 s of SIGTERM ({status:?})"
    );
    w.server.log.wait_for(Duration::from_millis(500), |_| false);

    let log = w.server.log.all();
    assert!(
        log.iter().any(|l| l.contains("\"TRACE\"")),
        "no TRACE record: the server did not run at trace level"
    );
    let leaks: Vec<&String> = log.iter().filter(|l| l.contains(PIN)).collect();
    assert!(
        leaks.is_empty(),
        "the PIN is in the server log:\n{leaks:#?}"
    );
    // A single PIN key as a string field value of one of hotdesk's own records (the account
    // and # use none of its digits).
    let mut key_leaks = Vec::new();
    for line in &log {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if !v["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("hotdesk"))
        {
            continue;
        }
        let mut stack = vec![&v];
        while let Some(x) = stack.pop() {
            match x {
                Value::Object(o) => stack.extend(o.values()),
                Value::Array(a) => stack.extend(a.iter()),
                Value::String(s) if s.len() == 1 && PIN.contains(s.as_str()) => {
                    key_leaks.push(line.clone());
                    break;
                }
                _ => {}
            }
        }
    }
    assert!(
        key_leaks.is_empty(),
        "PIN keys are logged one by one ({} records), e.g.:\n{:#?}",
        key_leaks.len(),
        key_leaks.iter().take(5).collect::<Vec<_>>()
    );
    for out in &w.cli_output {
        assert!(!out.contains(PIN), "the PIN is in the CLI's output:\n{out}");
    }
    for h in w.hooks.hooks() {
        let text = format!("{:?}\n{}", h.message.headers, h.message.text());
        assert!(!text.contains(PIN), "the PIN is in a report:\n{text}");
    }
    for (path, text) in &api_text {
        assert!(!text.contains(PIN), "the PIN is in GET {path}:\n{text}");
    }
    for entry in std::fs::read_dir(w.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("hotdesk.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(PIN.len()).any(|w| w == PIN.as_bytes()),
                "the PIN is in plain text in {name}"
            );
        }
    }
}

/// Writes `keys` as in-band tones (µ-law through the channel, as a phone would send them) into
/// an 8 kHz 16-bit WAV.
fn write_keys_wav(path: &Path, keys: &str) {
    let stream = dtmf_stream::build(&DtmfStreamSpec {
        digits: keys.into(),
        mode: DtmfMode::Inband,
        law: Law::Ulaw,
        lead: LEAD,
        tone: TONE,
        gap: GAP,
        tail: Duration::from_millis(1000),
        ..Default::default()
    })
    .unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for p in &stream.packets {
        for &b in p.packet.payload.iter() {
            w.write_sample(g711::ulaw_to_linear(b)).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// `hotdesk replay` on the test's database reproduces a login from a WAV with in-band keys and
/// from an RFC 4733 pcap: outcome `verified`, in under a second, the PIN masked.
#[test]
fn replay_reproduces_a_login_from_a_recording() {
    let dir = work_dir("replay");
    let ports = Ports::alloc();
    let opts = ServerOptions {
        env: vec![("HOTDESK_PIN_PEPPER".into(), PEPPER.into())],
        ..Default::default()
    };
    let config = Hotdesk::write_config(dir.path(), &ports, &opts);
    let cfg = config.display().to_string();
    run_cli(
        dir.path(),
        &opts,
        &["users", "add", "1001", "--name", "Ann", "--config", &cfg],
        None,
    )
    .assert_ok("users add");
    run_cli(
        dir.path(),
        &opts,
        &["users", "set-pin", "1001", "--config", &cfg],
        Some(&format!("{PIN_1001}\n")),
    )
    .assert_ok("users set-pin");
    let db = dir.path().join("hotdesk.db");
    assert!(db.is_file(), "users add did not create {}", db.display());

    let keys = format!("1001#{PIN_1001}#");
    let wav = dir.path().join("caller.wav");
    write_keys_wav(&wav, &keys);
    let pcap = dir.path().join("caller.pcap");
    write_dtmf_pcap(
        &pcap,
        &DtmfStreamSpec {
            digits: keys,
            mode: DtmfMode::Rfc4733,
            lead: LEAD,
            ..Default::default()
        },
    )
    .unwrap();
    let db_arg = db.display().to_string();
    for (file, json) in [(&wav, true), (&pcap, true), (&wav, false)] {
        let file_arg = file.display().to_string();
        let mut args = vec!["replay"];
        if json {
            args.push("--json");
        }
        args.extend([
            "--flow", "login", "--device", "5401", "--db", &db_arg, &file_arg,
        ]);
        // As an operator runs it: in a checkout, where the default `prompts/` dir is.
        let started = Instant::now();
        let run = run_cli_in(
            dir.path(),
            Path::new(env!("CARGO_MANIFEST_DIR")),
            &opts,
            &args,
            None,
        );
        let took = started.elapsed();
        run.assert_ok("replay");
        let out = run.all();
        println!(
            "replay {} ({}): {took:?}",
            file.display(),
            if json { "json" } else { "text" }
        );
        assert!(
            !out.contains(PIN_1001),
            "the PIN is in replay's output:\n{out}"
        );
        if json {
            let outcomes: Vec<Value> = run
                .stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .chain(serde_json::from_str::<Value>(&run.stdout).ok())
                .filter_map(|v| v.get("outcome").cloned())
                .collect();
            assert!(
                outcomes.iter().any(|o| o == "verified"),
                "replay --json of {} did not give outcome verified:\n{out}",
                file.display()
            );
            // No key in clear: every key of a login call is masked, the account's too.
            let v: Value = serde_json::from_str(run.stdout.trim()).unwrap_or(Value::Null);
            let mut clear = String::new();
            let mut stack = vec![&v];
            while let Some(x) = stack.pop() {
                match x {
                    Value::Object(o) => {
                        if let Some(d) = o.get("digit").and_then(Value::as_str) {
                            clear.extend(d.chars().filter(char::is_ascii_digit));
                        }
                        stack.extend(o.values().rev());
                    }
                    Value::Array(a) => stack.extend(a.iter().rev()),
                    _ => {}
                }
            }
            assert_eq!(clear, "", "digits in clear in the transcript:\n{out}");
        } else {
            assert!(
                out.contains("verified"),
                "replay of {} does not say verified:\n{out}",
                file.display()
            );
        }
        assert!(
            took < Duration::from_secs(1),
            "replay of {} took {took:?} (should be under a second)",
            file.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Faults: a flood of malformed datagrams while calls run.

/// Sends malformed datagrams from another loopback host (127.0.0.2: the per-source SIP rate
/// limit would otherwise hold back the callers' own INVITEs, which share 127.0.0.1) to hotdesk's SIP port and to random ports of its
/// RTP range, about `per_second` of them, until `stop` is set; returns how many were sent.
/// RTP-shaped ones carry the negotiated payload types (PCMU noise, RFC 4733 keys), so that
/// they reach the DTMF paths unless the source is checked.
fn flood(w: &World, stop: &AtomicBool, per_second: u32) -> u64 {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4475);
    let socket = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let sip = w.server.sip;
    let (low, high) = w.ports.hotdesk_rtp();
    let invite = "INVITE sip:*88@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKf\r\n\
        From: <sip:5499@127.0.0.1>;tag=f\r\nTo: <sip:*88@127.0.0.1>\r\nCall-ID: flood\r\n\
        CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 5000\r\n\r\nv=0\r\n";
    let mut sent = 0u64;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let (to, datagram): (SocketAddr, Vec<u8>) = match rng.random_range(0..6) {
            // Random bytes, a cut INVITE (no end of headers), an INVITE whose body is short.
            0 => (
                sip,
                (0..rng.random_range(1..1400))
                    .map(|_| rng.random())
                    .collect(),
            ),
            1 => (
                sip,
                invite.as_bytes()[..rng.random_range(1..invite.len() - 60)].to_vec(),
            ),
            2 => (sip, invite.as_bytes().to_vec()),
            kind => {
                let port = rng.random_range(low..=high);
                let mut rtp = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                rng.fill(&mut rtp[2..12]);
                match kind {
                    3 => rtp.extend((0..160).map(|_| rng.random::<u8>())),
                    4 => {
                        rtp[1] = 101;
                        rtp.extend([rng.random_range(0..16), 0x8a, 0x03, 0x20]);
                    }
                    _ => {
                        rtp = (0..rng.random_range(1..200))
                            .map(|_| rng.random())
                            .collect()
                    }
                }
                (SocketAddr::from(([127, 0, 0, 1], port)), rtp)
            }
        };
        let _ = socket.send_to(&datagram, to);
        sent += 1;
        // Paced to the rate, not bursty: the flood is bounded in rate as well as in time.
        let due = started + Duration::from_secs_f64(sent as f64 / f64::from(per_second));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    sent
}

/// `(digits, secret digits)` hotdesk logged for the call `call_id`.
fn keys_logged(server: &Hotdesk, call_id: &str) -> (String, usize) {
    let of_call = |m: &str| {
        server
            .messages(m)
            .into_iter()
            .filter(|v| peers::call_id_of(v).as_deref() == Some(call_id))
            .collect::<Vec<_>>()
    };
    let digits = of_call("digit")
        .iter()
        .map(|v| v["fields"]["digit"].as_str().unwrap_or("?").to_string())
        .collect();
    (digits, of_call("secret digit").len())
}

#[test]
fn a_flood_of_malformed_datagrams_leaves_the_calls_unaffected() {
    let w = World::new("flood", &[&ANN, &BOB], |_| {});
    let stop = AtomicBool::new(false);
    let (sent, calls) = std::thread::scope(|s| {
        let flooder = s.spawn(|| flood(&w, &stop, 2000));
        let calls = [
            ("rfc4733", "5401", &ANN, DtmfMode::Rfc4733),
            ("inband", "5402", &BOB, DtmfMode::Inband),
        ]
        .map(|(label, desk, user, mode)| {
            let keys = format!("{}#{}#", user.ext, user.pin);
            (
                w.dial_ended_by_hotdesk(label, "*88", desk, &keys, mode),
                user,
            )
        });
        stop.store(true, Ordering::Relaxed);
        (flooder.join().unwrap(), calls)
    });
    println!("flood: {sent} malformed datagrams during the two calls");
    assert!(sent > 5000, "the flood sent only {sent}");
    for (call, user) in &calls {
        // Every key of a login call is logged as a secret digit, the account's too.
        let (digits, secret) = keys_logged(&w.server, &call.call_id);
        assert_eq!(digits, "", "{}", w.context());
        assert_eq!(
            secret,
            user.ext.len() + 1 + user.pin.len() + 1,
            "account, PIN and both #\n{}",
            w.context()
        );
    }
    for (from, (call, user)) in calls.iter().enumerate() {
        let hook = w.expect_report(from, "login during the flood", |h| {
            h.field("call_id") == Some(call.call_id.as_str())
        });
        assert_eq!(
            (hook.event(), hook.field("user")),
            ("login", Some(user.ext))
        );
    }
    assert_eq!(w.hooks.reports().len(), 2, "{}", w.hooks.describe());
    // The flood reached the calls' own RTP ports, and was dropped there.
    for over in w.server.messages("call over") {
        let stats = over["fields"]["stats"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let foreign = stats
            .split("foreign: ")
            .nth(1)
            .and_then(|t| t.split([',', ' ']).next())
            .and_then(|n| n.parse::<u64>().ok());
        assert!(foreign.is_some_and(|n| n > 0), "{stats}");
    }
    assert!(w.api.get("/healthz").status == 200);
}

// ---------------------------------------------------------------------------------------------
// Faults: the store's file system full or read-only. The server runs in a mount namespace of
// its own (root, as CI runs), so that its file system can fail without touching the machine's.

/// Runs the server with its work dir on an 8 MB tmpfs holding a copy of what the CLI left
/// there (config, store, pepper); `nsenter -t PID -m` reaches that file system.
const ON_SMALL_TMPFS: &str = r#"set -e
d=$PWD
seed=$(mktemp -d)
cp -a "$d"/. "$seed"/
mount -t tmpfs -o size=8m hotdesk-test "$d"
cp -a "$seed"/. "$d"/
rm -rf "$seed"
cd "$d"
exec "$0" "$@""#;

/// Runs the server with its work dir bind-mounted read-only.
const ON_READ_ONLY_DIR: &str = r#"set -e
mount --bind "$PWD" "$PWD"
mount -o remount,bind,ro "$PWD"
cd "$PWD"
exec "$0" "$@""#;

fn in_namespace_of(script: &'static str) -> Vec<String> {
    [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
    ]
    .map(String::from)
    .to_vec()
}

/// Runs `script` in the server's mount namespace.
fn in_server_namespace(server: &Hotdesk, script: &str) {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &server.process.id().to_string(),
            "-m",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("nsenter (util-linux)");
    assert!(
        out.status.success(),
        "nsenter {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `GET /readyz` until `pred(status, body)` holds; returns the last answer.
fn wait_ready(w: &World, timeout: Duration, pred: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        let r = w.api.get("/readyz");
        let body = r.json();
        if pred(r.status, &body) || Instant::now() > deadline {
            return (r.status, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_disk_refuses_calls_cleanly_and_they_resume_when_space_is_back() {
    let w = World::new("full_disk", &[&ANN], |o| {
        o.wrapper = in_namespace_of(ON_SMALL_TMPFS)
    });
    let dir = w.path().display().to_string();
    let keys = format!("1001#{}#", ANN.pin);
    // The disk fills while a login call is under way, before its keys (from 1 s) are in.
    let during = std::thread::scope(|s| {
        let call = s.spawn(|| w.dial("during", "*88", "5401", &keys, DtmfMode::Rfc4733));
        let answered = w.server.wait_message("answered", Duration::from_secs(10));
        assert!(
            answered.is_some(),
            "the call was not answered\n{}",
            w.context()
        );
        in_server_namespace(
            &w.server,
            &format!("dd if=/dev/zero of={dir}/fill bs=64k 2>/dev/null || true"),
        );
        call.join().unwrap()
    });
    during.sipp.assert_ok("call during the fault");
    assert!(
        during.sipp.log.contains("REMOTE_BYE"),
        "hotdesk should have said 'try later' and hung up\n{}\n{}",
        during.sipp.describe(),
        w.context()
    );
    let records = w.server.records();
    let refused = records.iter().find(|r| {
        r["level"] == "ERROR"
            && r["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("login not verified") && m.contains("full"))
    });
    assert!(
        refused.is_some(),
        "no error naming the full disk\n{}",
        w.context()
    );
    // Nothing half-done: no login, no report.
    assert!(w.devices().is_empty(), "{:?}", w.devices());
    w.expect_no_report(0, "a login the store could not record");

    // New calls are refused with 503 + Retry-After, and /readyz says why.
    let (status, body) = wait_ready(&w, Duration::from_secs(5), |s, _| s == 503);
    assert_eq!(status, 503, "{body}\n{}", w.context());
    assert!(
        body["reason"].as_str().is_some_and(|r| r.contains("full")),
        "{body}"
    );
    let refused = Sipp::new(
        "refused",
        w.path(),
        "uac_refused.xml",
        w.ports.peer_sip(1),
        w.ports.peer_media(1),
    )
    .args(["-s", "*88"])
    .set("caller", "5402")
    .set("fmts", "0 101")
    .run(Some(w.server.sip), Duration::from_secs(10));
    refused.assert_ok("INVITE while the disk is full");
    assert!(
        refused.log.contains("REFUSED 503 "),
        "{}",
        refused.describe()
    );
    assert!(
        refused
            .messages
            .to_ascii_lowercase()
            .contains("retry-after:"),
        "{}",
        refused.messages
    );

    // Space back: ready again, and a login goes through and is reported.
    in_server_namespace(&w.server, &format!("rm {dir}/fill"));
    let (status, body) = wait_ready(&w, Duration::from_secs(5), |s, _| s == 200);
    assert_eq!(status, 200, "{body}\n{}", w.context());
    w.dial_ended_by_hotdesk("after", "*88", "5401", &keys, DtmfMode::Rfc4733);
    let hook = w.expect_report(0, "login after recovery", |h| h.event() == "login");
    assert_eq!(hook.field("device"), Some("5401"));
    let logged = |m: &str| records_with(&w.server, m);
    assert_eq!(
        logged("store unavailable"),
        1,
        "one error per change\n{}",
        w.context()
    );
    assert_eq!(logged("store available again"), 1, "{}", w.context());
}

/// Log records whose message starts with `prefix`.
fn records_with(server: &Hotdesk, prefix: &str) -> usize {
    server
        .records()
        .iter()
        .filter(|r| {
            r["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(prefix))
        })
        .count()
}

#[test]
fn a_read_only_store_stops_the_start_with_a_clear_error() {
    let dir = work_dir("read_only");
    let ports = Ports::alloc();
    let opts = ServerOptions {
        env: vec![("HOTDESK_PIN_PEPPER".into(), PEPPER.into())],
        ..Default::default()
    };
    let config = Hotdesk::write_config(dir.path(), &ports, &opts);
    let config = config.display().to_string();
    run_cli(
        dir.path(),
        &opts,
        &["users", "add", "1001", "--config", &config],
        None,
    )
    .assert_ok("users add");
    let mut command = Command::new("unshare");
    command
        .args(in_namespace_of(ON_READ_ONLY_DIR).iter().skip(1))
        .arg(env!("CARGO_BIN_EXE_hotdesk"))
        .args(["serve", "--config", &config])
        .current_dir(dir.path())
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = ChildGuard::spawn("hotdesk serve (read-only store)", &mut command);
    let status = server.wait_timeout(Duration::from_secs(15));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.child_mut().stderr.take().unwrap(), &mut stderr)
        .unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot open") && stderr.contains("read-only"),
        "the error should say the store is on a read-only file system:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Faults: SIGKILL while calls are logging in.

#[test]
fn a_kill_during_logins_loses_no_report_and_leaves_the_desks_consistent() {
    let mut w = World::new("kill_under_load", &[&ANN, &BOB], |_| {});
    // Four desks log in at once (Ann twice: her second desk releases the first).
    let calls: Vec<_> = [
        ("5401", &ANN),
        ("5402", &BOB),
        ("5403", &ANN),
        ("5404", &BOB),
    ]
    .iter()
    .enumerate()
    .map(|(peer, (desk, user))| {
        let keys = format!("{}#{}#", user.ext, user.pin);
        let label = format!("desk{desk}");
        let sipp = w.phone_calling(&label, peer as u16, "*88", desk, &keys, DtmfMode::Rfc4733);
        std::thread::sleep(Duration::from_millis(150 * peer as u64));
        sipp.spawn(Some(w.server.sip))
    })
    .collect();
    // Killed once the first logins are reported and others are still in flight.
    let first = w
        .hooks
        .wait_until(Duration::from_secs(15), |h| h.len() >= 2);
    assert!(
        first.len() >= 2,
        "no logins before the kill\n{}",
        w.context()
    );
    w.server.process.kill();
    drop(calls);
    let delivered_before = w.hooks.count();
    w.restart();

    // Every report the store holds reaches the receiver, in order per device.
    let log = event_list(&w.api.get("/v1/events"));
    assert!(log.len() >= 2, "{log:?}");
    let ids: HashSet<String> = log
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let hooks = w.hooks.wait_until(REPORT_WAIT, |h| {
        ids.iter().all(|id| h.iter().any(|hook| hook.id() == id))
    });
    for id in &ids {
        assert!(
            hooks.iter().any(|h| h.id() == id),
            "report {id} lost\n{}",
            w.context()
        );
    }
    println!(
        "kill under load: {} reports in the store, {delivered_before} delivered before the kill, {} requests in all",
        ids.len(),
        hooks.len()
    );
    // The desks are what the report log says: each device's last event decides it.
    let mut expected: BTreeMap<String, Option<String>> = BTreeMap::new();
    for e in &log {
        let device = e["device"].as_str().unwrap().to_string();
        let user = match e["event"].as_str() {
            Some("login") => e["user"].as_str().map(str::to_string),
            Some("release") => None,
            _ => continue,
        };
        expected.insert(device, user);
    }
    let devices = w.devices();
    for (device, user) in &expected {
        assert_eq!(
            devices.get(device).and_then(|d| d["user"].as_str()),
            user.as_deref(),
            "{device}: the desks disagree with the report log\n{log:#?}\n{devices:#?}"
        );
    }
    assert!(
        devices.keys().all(|d| expected.contains_key(d)),
        "{devices:#?}"
    );
}
