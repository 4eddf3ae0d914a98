//! End to end: real SIP peers nobody on the project wrote (sipp, baresip) call the `*97` DTMF
//! test code of a running `hotdesk serve` on loopback. Each key must be logged exactly once with
//! the path that carried it; the prompt audio must come back paced at 50 packets/s; either side
//! may hang up; SIGTERM drains.
//!
//! sipp plays pcaps made by the project's own RTP/DTMF writer (`rtp::dtmf_stream`) from the
//! ACK on, through the scenarios in `tests/sipp/`. tshark on `lo` sees what hotdesk sends back.
//! Every test starts its own server on ports of its own, so the tests run in parallel. The
//! peers are installed by `.ci/run` (sip-tester, baresip-core, tshark); the tests need root
//! (sipp's raw socket, tshark on `lo`), as CI has.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::peers::{
    self, Baresip, Capture, Hotdesk, LoggedDigit, Ports, ServerOptions, Sipp, SippResult,
};
use hotdesk_core::dsp::g711::Law;
use hotdesk_qa::dtmf_stream::{DtmfMode, DtmfStreamSpec, audio_payload_type, write_dtmf_pcap};
use tempfile::TempDir;

/// How long a whole sipp run may take (the scenarios hold the call a few seconds).
const SIPP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long hotdesk gets to log the end of a call once the peer is done.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// One test's temporary work dir (config, pcaps, sipp traces, captures), and its place in the
/// gate that lets the timing test run alone.
struct Work {
    dir: TempDir,
    _gate: Gate,
}

/// Held for its drop only.
#[allow(dead_code)]
enum Gate {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

/// Tests run in parallel, except the one that measures packet timing: it runs alone, so that
/// the other tests' servers, sipps and tsharks do not compete with it for the two cores.
static GATE: RwLock<()> = RwLock::new(());

impl Work {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A work dir for a test that may run alongside others. Kept, and its path printed, when
/// `HOTDESK_KEEP_PEER_DIRS` is set.
fn workdir(name: &str) -> Work {
    let gate = Gate::Shared(GATE.read().unwrap_or_else(|e| e.into_inner()));
    make_workdir(name, gate)
}

/// A work dir for a test that must run alone.
fn workdir_alone(name: &str) -> Work {
    let gate = Gate::Alone(GATE.write().unwrap_or_else(|e| e.into_inner()));
    make_workdir(name, gate)
}

fn make_workdir(name: &str, gate: Gate) -> Work {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("hotdesk-peer-{name}-"))
        .tempdir()
        .unwrap();
    if std::env::var_os("HOTDESK_KEEP_PEER_DIRS").is_some() {
        println!("{name}: work dir {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    Work { dir, _gate: gate }
}

/// A pcap for sipp: `digits` on `mode` in `law`, keys from `lead_ms` after the ACK.
fn dtmf_pcap(dir: &Path, digits: &str, mode: DtmfMode, law: Law, lead_ms: u64) -> String {
    let path = dir.join("dtmf.pcap");
    write_dtmf_pcap(
        &path,
        &DtmfStreamSpec {
            digits: digits.into(),
            mode,
            law,
            lead: Duration::from_millis(lead_ms),
            ..Default::default()
        },
    )
    .expect("writing the DTMF pcap");
    path.display().to_string()
}

/// sipp (`uac_pcap.xml`) calls `*97` as peer 0 of `ports`, offering `fmts`, plays `pcap` and
/// hangs up `hold_ms` after the ACK.
fn pcap_call(dir: &Path, ports: &Ports, pcap: &str, fmts: &str, hold_ms: u64) -> Sipp {
    Sipp::new(
        "uac",
        dir,
        "uac_pcap.xml",
        ports.peer_sip(0),
        ports.peer_media(0),
    )
    .args([
        "-s",
        "*97",
        "-key",
        "pcap",
        pcap,
        "-d",
        &hold_ms.to_string(),
    ])
    .set("caller", "5401")
    .set("fmts", fmts)
}

/// The keys hotdesk logged as one string, and their sources.
fn keys(digits: &[LoggedDigit]) -> (String, Vec<String>) {
    (
        digits.iter().map(|d| d.digit.as_str()).collect(),
        digits.iter().map(|d| d.source.clone()).collect(),
    )
}

/// Asserts hotdesk logged exactly `expected`, one record per key, each from `source`, all on
/// the call sipp made; and that the call ended with `reason`.
fn assert_call(
    server: &Hotdesk,
    sipp: &SippResult,
    expected: &str,
    source: &str,
    reason: &str,
) -> Vec<LoggedDigit> {
    let call_id = peers::connected_call_id(&sipp.log)
        .unwrap_or_else(|| panic!("sipp logged no CONNECTED line\n{}", sipp.describe()));
    let ends = server.wait_call_ends(1, LOG_TIMEOUT);
    let digits = server.digits();
    let context = || {
        format!(
            "digits logged: {digits:?}\ncall ends: {ends:?}\nhotdesk log:\n{}\n{}",
            server.log_text(),
            sipp.describe()
        )
    };
    let (got, sources) = keys(&digits);
    assert_eq!(got, expected, "keys logged by hotdesk\n{}", context());
    assert!(
        sources.iter().all(|s| s == source),
        "every key should come from {source}, got {sources:?}\n{}",
        context()
    );
    for d in &digits {
        assert_eq!(
            d.call_id.as_deref(),
            Some(call_id.as_str()),
            "digit record without the call's span\n{}",
            context()
        );
        assert!(
            d.after_ms.is_some(),
            "digit record without after_ms\n{}",
            context()
        );
    }
    assert_eq!(
        ends.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        vec![reason],
        "call end\n{}",
        context()
    );
    assert_eq!(
        ends[0].1.as_deref(),
        Some(call_id.as_str()),
        "\"call ended\" without the call's span\n{}",
        context()
    );
    digits
}

/// Runs one `*97` call from sipp playing `digits` on `mode`/`law`, hanging up after 3.5 s,
/// and checks the server heard each key once from `source`, and answered in `law`.
fn dtmf_call(name: &str, digits: &str, mode: DtmfMode, law: Law, fmts: &str, source: &str) {
    let dir = workdir(name);
    let ports = Ports::alloc();
    let server = Hotdesk::start(dir.path(), &ports, &ServerOptions::default());
    let media = ports.peer_media(0);
    let capture = Capture::start(dir.path(), "rtp", &format!("udp and dst port {media}"));
    let pcap = dtmf_pcap(dir.path(), digits, mode, law, 600);
    let sipp = pcap_call(dir.path(), &ports, &pcap, fmts, 3500).run(Some(server.sip), SIPP_TIMEOUT);
    let file = capture.stop();
    sipp.assert_ok(name);
    assert!(
        sipp.log.contains("LOCAL_BYE"),
        "sipp should have hung up itself\n{}",
        sipp.describe()
    );
    let logged = assert_call(&server, &sipp, digits, source, "RemoteBye");
    println!("{name}: {logged:?}");

    // The prompts come back in the codec of the offer's first payload type.
    let pt = audio_payload_type(law);
    let packets = peers::rtp_packets(&file, media);
    assert!(
        packets.len() > 100,
        "{name}: only {} RTP packets from hotdesk in a 3.5 s call",
        packets.len()
    );
    let pts: BTreeSet<u8> = packets.iter().map(|p| p.payload_type).collect();
    assert_eq!(
        pts,
        BTreeSet::from([pt]),
        "{name}: payload types hotdesk sent"
    );
}

#[test]
fn rfc4733_pcmu_each_key_once() {
    dtmf_call(
        "rfc4733",
        "1234#",
        DtmfMode::Rfc4733,
        Law::Ulaw,
        "0 101",
        "rfc4733",
    );
}

#[test]
fn inband_pcmu_each_key_once() {
    dtmf_call(
        "inband-pcmu",
        "1234#",
        DtmfMode::Inband,
        Law::Ulaw,
        "0 101",
        "inband",
    );
}

#[test]
fn inband_pcma_each_key_once() {
    // PCMA first in the offer, so hotdesk answers PCMA; the tones are A-law.
    dtmf_call(
        "inband-pcma",
        "1234#",
        DtmfMode::Inband,
        Law::Alaw,
        "8 101",
        "inband",
    );
}

#[test]
fn rfc4733_and_inband_together_each_key_once() {
    // The tones leak into the audio while the events are sent (D1): one key press is one digit,
    // and the event path, which starts first and is authoritative, names it.
    dtmf_call(
        "both",
        "1234#",
        DtmfMode::Both,
        Law::Ulaw,
        "0 101",
        "rfc4733",
    );
}

#[test]
fn sip_info_each_key_once() {
    let dir = workdir("info");
    let ports = Ports::alloc();
    let server = Hotdesk::start(dir.path(), &ports, &ServerOptions::default());
    // k1, k2 as application/dtmf-relay, k3 as application/dtmf; 1.5 s after the ACK, 400 ms
    // apart; BYE 1 s after the last.
    let sipp = Sipp::new(
        "uac",
        dir.path(),
        "uac_info.xml",
        ports.peer_sip(0),
        ports.peer_media(0),
    )
    .args(["-s", "*97", "-d", "1000"])
    .set("caller", "5401")
    .set("fmts", "0 101")
    .set("k1", "7")
    .set("k2", "*")
    .set("k3", "9")
    .run(Some(server.sip), SIPP_TIMEOUT);
    sipp.assert_ok("INFO");
    let logged = assert_call(&server, &sipp, "7*9", "info", "RemoteBye");
    println!("info: {logged:?}");
}

/// Prompt audio (the "dtmf_test" prompt, then silence, then the spoken key) reaches sipp's RTP
/// port as one paced stream: 50 packets/s, 20 ms apart, contiguous sequence numbers, timestamps
/// 160 apart.
#[test]
fn prompt_audio_is_paced_at_50_pps() {
    let dir = workdir_alone("pacing");
    let ports = Ports::alloc();
    let server = Hotdesk::start(dir.path(), &ports, &ServerOptions::default());
    let media = ports.peer_media(0);
    let capture = Capture::start(dir.path(), "rtp", &format!("udp and dst port {media}"));
    // One key at 3 s, after the 2.4 s prompt, so the stream goes prompt → silence → the
    // spoken key (0.65 s).
    let pcap = dtmf_pcap(dir.path(), "5", DtmfMode::Rfc4733, Law::Ulaw, 3000);
    let sipp =
        pcap_call(dir.path(), &ports, &pcap, "0 101", 4500).run(Some(server.sip), SIPP_TIMEOUT);
    let file = capture.stop();
    sipp.assert_ok("pacing call");
    assert_call(&server, &sipp, "5", "rfc4733", "RemoteBye");

    let packets = peers::rtp_packets(&file, media);
    assert!(
        packets.len() > 150,
        "only {} RTP packets reached sipp's port {media} in a 4.5 s call",
        packets.len()
    );
    let ssrcs: BTreeSet<u32> = packets.iter().map(|p| p.ssrc).collect();
    assert_eq!(ssrcs.len(), 1, "one stream expected, SSRCs {ssrcs:x?}");
    assert!(
        packets.iter().all(|p| p.payload_type == 0),
        "PCMU (PT 0) expected throughout, got {:?}",
        packets
            .iter()
            .map(|p| p.payload_type)
            .collect::<BTreeSet<_>>()
    );
    for w in packets.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence numbers not contiguous: {:?} then {:?}",
            w[0],
            w[1]
        );
        assert_eq!(
            w[1].timestamp,
            w[0].timestamp.wrapping_add(160),
            "timestamps do not step by 160: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    let span = packets.last().unwrap().time - packets[0].time;
    let pps = (packets.len() - 1) as f64 / span;
    let intervals: Vec<f64> = packets
        .windows(2)
        .map(|w| (w[1].time - w[0].time) * 1000.0)
        .collect();
    let deviation: Vec<f64> = intervals.iter().map(|i| (i - 20.0).abs()).collect();
    let (p50, p99) = (
        peers::percentile(&intervals, 50.0),
        peers::percentile(&intervals, 99.0),
    );
    let p1 = peers::percentile(&intervals, 1.0);
    let max = intervals.iter().cloned().fold(0.0, f64::max);
    let dev99 = peers::percentile(&deviation, 99.0);
    println!(
        "pacing: {} packets over {span:.3} s = {pps:.2} pps; interval p1 {p1:.2} ms, p50 {p50:.2} ms, \
         p99 {p99:.2} ms, max {max:.2} ms; |interval - 20 ms| p99 {dev99:.2} ms",
        packets.len()
    );
    assert!(
        (pps - 50.0).abs() <= 1.0,
        "{pps:.2} packets/s, expected 50 ± 1"
    );
    assert!(
        dev99 <= 10.0,
        "p99 of |interval - 20 ms| is {dev99:.2} ms (p1 {p1:.2}, p50 {p50:.2}, p99 {p99:.2}, max {max:.2})"
    );

    // From hotdesk's RTP range (symmetric RTP: the port it answered with).
    let (low, high) = ports.hotdesk_rtp();
    let sources: BTreeSet<u16> = packets.iter().map(|p| p.src_port).collect();
    assert!(
        sources.len() == 1 && sources.iter().all(|p| (low..=high).contains(p)),
        "RTP should come from one port in {low}-{high}, came from {sources:?}"
    );

    // What it carries: the prompt from the start, silence after it, the spoken key after the
    // key (at 3 s). Active: a 20 ms frame above -50 dBm0.
    let t0 = packets[0].time;
    let active = |from: f64, to: f64| {
        let frames: Vec<bool> = packets
            .iter()
            .filter(|p| (from..to).contains(&(p.time - t0)))
            .map(|p| frame_dbm0(&p.payload) > -50.0)
            .collect();
        (frames.iter().filter(|a| **a).count(), frames.len())
    };
    let (prompt, prompt_n) = active(0.0, 2.2);
    let (gap, gap_n) = active(2.6, 2.95);
    let (key, key_n) = active(3.0, 4.0);
    let profile: String = packets
        .chunks(10)
        .map(|c| {
            if c.iter().any(|p| frame_dbm0(&p.payload) > -50.0) {
                '#'
            } else {
                '.'
            }
        })
        .collect();
    println!(
        "pacing: active frames: prompt 0-2.2 s {prompt}/{prompt_n}, 2.6-2.95 s {gap}/{gap_n}, \
         key 3-4 s {key}/{key_n}; per 200 ms: {profile}"
    );
    assert!(
        prompt >= prompt_n / 3,
        "the dtmf_test prompt should be heard in the first 2.2 s: {prompt}/{prompt_n} active frames ({profile})"
    );
    assert_eq!(gap, 0, "silence expected before the key ({profile})");
    assert!(
        key >= 5,
        "the key should be spoken back after 3 s: {key}/{key_n} active frames ({profile})"
    );
}

/// Level of one µ-law frame, dBm0.
fn frame_dbm0(payload: &[u8]) -> f64 {
    let mut samples = Vec::new();
    Law::Ulaw.decode_into(payload, &mut samples);
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    let rms = (energy / samples.len().max(1) as f64).sqrt();
    Law::Ulaw.rms_to_dbm0(rms.max(1e-9))
}

/// SIGTERM with a call up: a new INVITE and an OPTIONS get 503 (OPTIONS got 200 before), the
/// call gets hotdesk's BYE after `drain_timeout_s` (sipp answers it and succeeds), and hotdesk
/// exits 0.
#[test]
fn sigterm_drains_then_byes_the_call() {
    let dir = workdir("drain");
    let ports = Ports::alloc();
    let drain = 2;
    let mut server = Hotdesk::start(
        dir.path(),
        &ports,
        &ServerOptions {
            drain_timeout_s: Some(drain),
            ..Default::default()
        },
    );
    // The key at 0.5 s proves the call is up; sipp would hang up only after 15 s.
    let pcap = dtmf_pcap(dir.path(), "5", DtmfMode::Rfc4733, Law::Ulaw, 500);
    let call = pcap_call(dir.path(), &ports, &pcap, "0 101", 15_000).spawn(Some(server.sip));
    let heard = server.wait_message("digit", Duration::from_secs(5));
    assert!(
        heard.is_some(),
        "the call never got going (no digit logged)\n{}",
        server.log_text()
    );
    let options_before = options(dir.path(), "options-before", &ports, 2, server.sip);

    let sigterm_at = Instant::now();
    server.sigterm();
    // hotdesk logs "draining" once it has taken the signal; INVITEs get 503 from then on.
    let draining = server.wait_message("draining", Duration::from_secs(5));
    assert!(
        draining.is_some(),
        "no \"draining\" log within 5 s of SIGTERM\n{}",
        server.log_text()
    );
    let probe = Sipp::new(
        "probe",
        dir.path(),
        "uac_refused.xml",
        ports.peer_sip(1),
        ports.peer_media(1),
    )
    .args(["-s", "*97"])
    .set("caller", "5402")
    .set("fmts", "0 101")
    .run(Some(server.sip), Duration::from_secs(10));
    let probe_done = sigterm_at.elapsed();
    let options_during = options(dir.path(), "options-during", &ports, 3, server.sip);

    let call = call.wait(Duration::from_secs(drain + 8));
    let bye_after = sigterm_at.elapsed();
    let status = server.process.wait_timeout(Duration::from_secs(drain + 8));
    let exited_after = sigterm_at.elapsed();
    println!(
        "drain: INVITE probe answered {probe_done:?} after SIGTERM ({:?}); OPTIONS {:?} before, \
         {:?} during; the call's sipp done {bye_after:?} after SIGTERM, hotdesk exited \
         {exited_after:?} after SIGTERM ({status:?})",
        probe.received_status_lines(),
        options_before.received_status_lines(),
        options_during.received_status_lines(),
    );

    for (what, result, code) in [
        ("OPTIONS before SIGTERM", &options_before, "200"),
        ("OPTIONS while draining", &options_during, "503"),
    ] {
        result.assert_ok(what);
        assert!(
            result.log.contains(&format!("OPTIONS {code} ")),
            "{what}: expected {code}\n{}",
            result.describe()
        );
    }
    probe.assert_ok("INVITE while draining");
    assert!(
        probe.log.contains("REFUSED 503"),
        "an INVITE while draining should get 503\n{}",
        probe.describe()
    );
    call.assert_ok("call drained by hotdesk");
    assert!(
        call.log.contains("REMOTE_BYE") && !call.log.contains("LOCAL_BYE"),
        "hotdesk should have sent the BYE\n{}",
        call.describe()
    );
    assert!(
        bye_after >= Duration::from_millis(drain * 1000 - 200),
        "hotdesk hung up {bye_after:?} after SIGTERM, before drain_timeout_s = {drain}"
    );
    let ends = server.call_ends();
    assert_eq!(
        ends.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        vec!["Drained"],
        "call end reason\n{}",
        server.log_text()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "hotdesk should exit 0 after draining, got {status:?}\n{}",
        server.log_text()
    );
}

/// One OPTIONS from sipp (`options.xml`) as peer `n` of `ports`.
fn options(dir: &Path, name: &str, ports: &Ports, n: u16, target: SocketAddr) -> SippResult {
    Sipp::new(
        name,
        dir,
        "options.xml",
        ports.peer_sip(n),
        ports.peer_media(n),
    )
    .args(["-s", "*97"])
    .run(Some(target), Duration::from_secs(10))
}

/// Over `max_calls`, an INVITE gets 503 with Retry-After while the call in progress goes on.
#[test]
fn over_max_calls_gets_503_with_retry_after() {
    let dir = workdir("max-calls");
    let ports = Ports::alloc();
    let server = Hotdesk::start(
        dir.path(),
        &ports,
        &ServerOptions {
            max_calls: Some(1),
            ..Default::default()
        },
    );
    let pcap = dtmf_pcap(dir.path(), "1", DtmfMode::Rfc4733, Law::Ulaw, 300);
    let call = pcap_call(dir.path(), &ports, &pcap, "0 101", 2500).spawn(Some(server.sip));
    let heard = server.wait_message("digit", Duration::from_secs(5));
    assert!(
        heard.is_some(),
        "the first call never got going\n{}",
        server.log_text()
    );
    let second = Sipp::new(
        "second",
        dir.path(),
        "uac_refused.xml",
        ports.peer_sip(1),
        ports.peer_media(1),
    )
    .args(["-s", "*97"])
    .set("caller", "5402")
    .set("fmts", "0 101")
    .run(Some(server.sip), Duration::from_secs(10));
    let call = call.wait(SIPP_TIMEOUT);
    second.assert_ok("INVITE over max_calls");
    assert!(
        second.log.contains("REFUSED 503 "),
        "expected 503\n{}",
        second.describe()
    );
    let retry_after = second
        .messages
        .lines()
        .find(|l| {
            l.trim_start()
                .to_ascii_lowercase()
                .starts_with("retry-after:")
        })
        .map(|l| l.trim().to_string());
    println!(
        "max_calls: second INVITE got {:?}, {retry_after:?}",
        second.received_status_lines()
    );
    assert!(
        retry_after.is_some(),
        "the 503 should carry Retry-After\n{}",
        second.describe()
    );
    call.assert_ok("the call in progress");
    assert_call(&server, &call, "1", "rfc4733", "RemoteBye");
}

/// baresip, a real softphone, dials `*97` and keys `123` (RFC 4733) once the call is up.
#[test]
fn baresip_keys_each_once() {
    let dir = workdir("baresip");
    let ports = Ports::alloc();
    let server = Hotdesk::start(dir.path(), &ports, &ServerOptions::default());
    let sip_capture = Capture::start(
        dir.path(),
        "sip",
        &format!("udp and port {}", ports.hotdesk_sip()),
    );
    let mut phone = Baresip::start(
        dir.path(),
        ports.peer_sip(0),
        ports.ctrl(),
        &ports.baresip_rtp_range(),
    );
    let target = format!("sip:*97@{}", server.sip);
    let r = phone.command("dial", &target);
    assert_eq!(r["ok"], true, "dial refused: {r}\n{}", phone.output());
    phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
    let r = phone.command("sndcode", "123");
    assert_eq!(r["ok"], true, "sndcode refused: {r}\n{}", phone.output());
    // About 240 ms a key; wait for the third (or time out and report what there is).
    let end = Instant::now() + Duration::from_secs(5);
    while server.digits().len() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Any doubles would arrive within the merger's windows; give them time to show.
    std::thread::sleep(Duration::from_millis(500));
    let r = phone.command("hangup", "");
    assert_eq!(r["ok"], true, "hangup refused: {r}");
    phone.wait_event("CALL_CLOSED", Duration::from_secs(5));
    let events: Vec<String> = phone
        .events
        .iter()
        .map(|e| format!("{} {}", e["type"], e["param"]))
        .collect();
    phone.quit();
    let file = sip_capture.stop();
    let sip_trace = sip_summary(&file, ports.hotdesk_sip());
    println!("baresip events: {events:?}\nSIP seen by tshark:\n{sip_trace}");

    let ends = server.wait_call_ends(1, LOG_TIMEOUT);
    let digits = server.digits();
    let (got, sources) = keys(&digits);
    let context = format!(
        "digits {digits:?}\nends {ends:?}\nbaresip events {events:?}\nSIP:\n{sip_trace}\nhotdesk log:\n{}",
        server.log_text()
    );
    assert_eq!(got, "123", "keys logged by hotdesk\n{context}");
    assert!(
        sources.iter().all(|s| s == "rfc4733"),
        "sources {sources:?}\n{context}"
    );
    assert_eq!(
        ends.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        vec!["RemoteBye"],
        "{context}"
    );
    // baresip offers 0 8 101: the answer is the first common codec of rtp.codecs (PCMU) and
    // telephone-event at the offer's payload type.
    let answer = sip_trace
        .lines()
        .find(|l| l.contains("SIP/2.0 200 OK") && l.contains("RTP/AVP"))
        .unwrap_or_else(|| panic!("no 200 OK with SDP seen\n{context}"));
    let media = answer.split('|').nth(4).unwrap_or_default();
    assert!(
        media.starts_with("audio ") && media.ends_with(" RTP/AVP 0 101"),
        "answer m= line {media:?}\n{context}"
    );
}

/// The SIP messages on `port` in a capture: request/status line and SDP media lines.
fn sip_summary(file: &Path, port: u16) -> String {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-d", &format!("udp.port=={port},sip"), "-Y", "sip"])
        .args(["-T", "fields", "-E", "separator=|", "-E", "aggregator=,"])
        .args([
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "sip.Request-Line",
            "-e",
            "sip.Status-Line",
            "-e",
            "sdp.media",
            "-e",
            "sdp.media_attr",
        ])
        .output()
        .expect("running tshark -r");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(
    name: &str,
    opts: &ServerOptions,
    service: &str,
    expected: &str,
) -> (Hotdesk, SippResult) {
    let dir = workdir(name);
    let ports = Ports::alloc();
    let server = Hotdesk::start(dir.path(), &ports, opts);
    let sipp = Sipp::new(
        "uac",
        dir.path(),
        "uac_refused.xml",
        ports.peer_sip(0),
        ports.peer_media(0),
    )
    .args(["-s", service])
    .set("caller", "5401")
    .set("fmts", "0 101")
    .run(Some(server.sip), Duration::from_secs(10));
    sipp.assert_ok(name);
    assert!(
        sipp.log.contains(&format!("REFUSED {expected} ")),
        "{name}: expected {expected}\n{}\nhotdesk log:\n{}",
        sipp.describe(),
        server.log_text()
    );
    (server, sipp)
}

#[test]
fn untrusted_source_gets_403() {
    refused(
        "untrusted",
        &ServerOptions {
            trusted_sources: vec!["10.0.0.0/8".into()],
            ..Default::default()
        },
        "*97",
        "403",
    );
}

#[test]
fn unknown_number_gets_404() {
    refused("unknown", &ServerOptions::default(), "9999", "404");
}

// ---------------------------------------------------------------------------------------------
// The harness itself, without hotdesk: sipp's built-in UAS takes the call.

/// Our pcap, played by sipp through `uac_pcap.xml` to sipp's own UAS, arrives intact (tshark
/// decodes the telephone-events as the digits, one contiguous stream), and the refusal scenario
/// reads a non-2xx answer.
#[test]
fn harness_sipp_plays_the_pcap_to_sipp_uas() {
    let dir = workdir("harness");
    let ports = Ports::alloc();
    let uas_media = ports.peer_media(1);
    let uas = Sipp::new("uas", dir.path(), "uas", ports.peer_sip(1), uas_media).spawn(None);
    let capture = Capture::start(dir.path(), "rtp", &format!("udp and dst port {uas_media}"));
    let pcap = dtmf_pcap(dir.path(), "1234#", DtmfMode::Rfc4733, Law::Ulaw, 200);
    let target = SocketAddr::from(([127, 0, 0, 1], ports.peer_sip(1)));
    let uac = pcap_call(dir.path(), &ports, &pcap, "0 101", 1800).run(Some(target), SIPP_TIMEOUT);
    let file = capture.stop();
    let uas = uas.wait(Duration::from_secs(5));
    uac.assert_ok("uac_pcap.xml against sipp -sn uas");
    uas.assert_ok("sipp -sn uas");
    assert!(uac.log.contains("LOCAL_BYE"), "{}", uac.describe());

    let packets = peers::rtp_packets(&file, uas_media);
    // Each event ends with three end packets carrying its start timestamp.
    let mut ends: Vec<(u32, u8)> = packets
        .iter()
        .filter(|p| p.payload_type == 101 && p.event_end)
        .map(|p| (p.timestamp, p.event.expect("event code")))
        .collect();
    ends.dedup();
    let digits: String = ends
        .iter()
        .map(|&(_, e)| match e {
            10 => '*',
            11 => '#',
            d => char::from(b'0' + d),
        })
        .collect();
    assert_eq!(digits, "1234#", "events tshark decoded: {packets:?}");
    for w in packets.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{:?} {:?}", w[0], w[1]);
    }
    println!(
        "harness: {} packets from the pcap reached sipp's UAS",
        packets.len()
    );
}

/// `uac_refused.xml` against a sipp UAS that answers 486: it logs the code and ACKs the final
/// response on the INVITE's transaction (the UAS's scenario waits for that ACK).
#[test]
fn harness_refusal_scenario_logs_the_code_and_acks() {
    let dir = workdir("harness-refused");
    let ports = Ports::alloc();
    let uas = Sipp::new(
        "uas",
        dir.path(),
        "uas_busy.xml",
        ports.peer_sip(1),
        ports.peer_media(1),
    )
    .set("ring_ms", "100")
    .spawn(None);
    let target = SocketAddr::from(([127, 0, 0, 1], ports.peer_sip(1)));
    let uac = Sipp::new(
        "uac",
        dir.path(),
        "uac_refused.xml",
        ports.peer_sip(0),
        ports.peer_media(0),
    )
    .args(["-s", "5401"])
    .set("caller", "hotdesk")
    .set("fmts", "0 101")
    .run(Some(target), Duration::from_secs(10));
    let uas = uas.wait(Duration::from_secs(10));
    uac.assert_ok("uac_refused.xml against uas_busy.xml");
    uas.assert_ok("uas_busy.xml (waits for the ACK)");
    assert!(uac.log.contains("REFUSED 486 "), "{}", uac.describe());
    assert_eq!(
        uac.received_status_lines(),
        vec!["SIP/2.0 180 Ringing", "SIP/2.0 486 Busy Here"],
        "{}",
        uac.describe()
    );
}

/// The baresip driver against sipp's `uas_answer.xml` (PCMU + telephone-event 101): baresip
/// dials, reports the call up, sends `sndcode 123` as RFC 4733 (tshark decodes the events at the
/// UAS's port) and hangs up with a BYE the UAS takes.
#[test]
fn harness_baresip_dials_and_keys_to_sipp_uas() {
    let dir = workdir("harness-baresip");
    let ports = Ports::alloc();
    let uas_media = ports.peer_media(1);
    let silence = dtmf_pcap(dir.path(), "", DtmfMode::Rfc4733, Law::Ulaw, 200);
    let uas = Sipp::new(
        "uas",
        dir.path(),
        "uas_answer.xml",
        ports.peer_sip(1),
        uas_media,
    )
    .args(["-key", "pcap", &silence])
    .set("fmts", "0 101")
    .set("ring_ms", "100")
    .spawn(None);
    let capture = Capture::start(dir.path(), "rtp", &format!("udp and dst port {uas_media}"));
    let mut phone = Baresip::start(
        dir.path(),
        ports.peer_sip(0),
        ports.ctrl(),
        &ports.baresip_rtp_range(),
    );
    let r = phone.command("dial", &format!("sip:5401@127.0.0.1:{}", ports.peer_sip(1)));
    assert_eq!(r["ok"], true, "dial: {r}\n{}", phone.output());
    phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
    let r = phone.command("sndcode", "123");
    assert_eq!(r["ok"], true, "sndcode: {r}\n{}", phone.output());
    std::thread::sleep(Duration::from_millis(1500));
    let r = phone.command("hangup", "");
    assert_eq!(r["ok"], true, "hangup: {r}");
    phone.wait_event("CALL_CLOSED", Duration::from_secs(5));
    let events: Vec<String> = phone
        .events
        .iter()
        .map(|e| format!("{} {}", e["type"], e["param"]))
        .collect();
    phone.quit();
    let file = capture.stop();
    let uas = uas.wait(Duration::from_secs(10));
    uas.assert_ok("uas_answer.xml answering baresip");
    assert!(uas.log.contains("REMOTE_BYE"), "{}", uas.describe());

    let packets = peers::rtp_packets(&file, uas_media);
    let mut ends: Vec<(u32, u8)> = packets
        .iter()
        .filter(|p| p.payload_type == 101 && p.event_end)
        .map(|p| (p.timestamp, p.event.expect("event code")))
        .collect();
    ends.dedup();
    let digits: String = ends.iter().map(|&(_, e)| char::from(b'0' + e)).collect();
    println!(
        "harness baresip: events {events:?}; {} RTP packets, PTs {:?}, RFC 4733 digits {digits:?}",
        packets.len(),
        packets
            .iter()
            .map(|p| p.payload_type)
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(digits, "123", "{events:?}");
}
