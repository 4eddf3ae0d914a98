//! One `*97` call as the sans-IO `Call` object, from sipp's real INVITE, on virtual time:
//! answer, ACK, keys on every path each heard once and spoken back, BYE either way, and the
//! §13.3.1.4 rules for a 2xx that is never acknowledged.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotdesk::config::DtmfMode;
use hotdesk_core::call::{Call, CallEvent, CallSettings, EndReason, SipOut};
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::media::DigitSource;
use hotdesk_core::media::session::MediaSettings;
use hotdesk_core::prompts::loader::PromptCache;
use hotdesk_core::rtp::packet;
use hotdesk_core::sim::{self, CallDrive};
use hotdesk_core::sip::message::{self, Method, Request, SipMessage};
use hotdesk_core::sip::sdp::Codec;
use hotdesk_qa::dtmf_stream::{self, DtmfMode as StreamMode, DtmfStreamSpec};
use rand::SeedableRng;

static CACHE: LazyLock<Arc<PromptCache>> = LazyLock::new(|| {
    Arc::new(PromptCache::load_dir(std::path::Path::new("prompts")).expect("prompt set"))
});

const CALLER: &str = "127.0.0.1:15970";
const CALLER_RTP: &str = "127.0.0.1:16400";

fn invite() -> Request {
    let raw = std::fs::read("fixtures/sip/valid/sipp_uac_invite.txt").unwrap();
    match message::parse(&raw).unwrap() {
        SipMessage::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

fn settings() -> CallSettings {
    CallSettings {
        media: MediaSettings {
            dtmf: DtmfMode::Auto,
            rtp_timeout: None,
        },
        media_networks: Arc::from(Vec::new()),
        ack_timeout: Duration::from_secs(32),
        max_duration: Duration::from_secs(120),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        language: "en".into(),
        rtp: "127.0.0.1:20000".parse().unwrap(),
        sent_by: "127.0.0.1:5060".into(),
        contact: "sip:hotdesk@127.0.0.1:5060".into(),
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        agent: "hotdesk-test".into(),
    }
}

fn answer(t0: Instant) -> (Call, message::Response) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    Call::accept(
        t0,
        &invite(),
        CALLER.parse().unwrap(),
        common::dtmf_test_flow(),
        settings(),
        CACHE.clone(),
        &mut rng,
    )
    .unwrap()
}

fn in_dialog(ok: &message::Response, method: &str, cseq: u32, extra: &str, body: &str) -> Request {
    let to_tag = ok.to_tag().unwrap();
    let text = format!(
        "{method} sip:hotdesk@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-t-{method}-{cseq}\r\n\
         From: <sip:5401@127.0.0.1:15970>;tag=16193SIPpTag001\r\n\
         To: <sip:*88@127.0.0.1:15960>;tag={to_tag}\r\n\
         Call-ID: 1-16193@127.0.0.1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    match message::parse(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

/// What a stretch of the call sent and told.
struct Run {
    events: Vec<CallEvent>,
    sip: Vec<(Instant, SipOut)>,
    rtp_out: Vec<(Instant, SocketAddr, Bytes)>,
}

/// Drives the call from `t0` to `end` with the caller's RTP at its times, on the shared
/// virtual-time harness; the `*97` flow asks the directory nothing.
fn run(call: &mut Call, t0: Instant, rtp_in: &[(Duration, Bytes)], end: Duration) -> Run {
    let script = sim::rtp_script(CALLER_RTP.parse().unwrap(), rtp_in.iter().cloned());
    let mut drive = CallDrive::new(call, t0, script, end);
    drive.run_to_end(|q| panic!("*97 asked the directory: {q:?}"));
    let record = drive.record;
    Run {
        events: record.events.into_iter().map(|(_, e)| e).collect(),
        sip: record.sip,
        rtp_out: record.rtp,
    }
}

fn digits(events: &[CallEvent]) -> Vec<(char, DigitSource)> {
    events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Digit { digit, source, .. } => Some((*digit, *source)),
            _ => None,
        })
        .collect()
}

#[test]
fn answers_with_sdp_and_a_tag() {
    let (call, ok) = answer(Instant::now());
    assert_eq!(ok.code, 200);
    assert!(ok.to_tag().is_some());
    let body = String::from_utf8_lossy(&ok.body);
    assert!(body.contains("m=audio 20000 RTP/AVP 0 101"), "{body}");
    // RFC 3261 §12.1.1: one Contact, the dialog's.
    assert_eq!(ok.headers.get_all("Contact").count(), 1);
    assert_eq!(call.negotiated().remote, CALLER_RTP.parse().unwrap());
}

#[test]
fn keys_on_both_paths_are_heard_once_and_spoken_back() {
    let t0 = Instant::now();
    let (mut call, ok) = answer(t0);
    call.handle_ack(
        t0 + Duration::from_millis(30),
        &in_dialog(&ok, "ACK", 1, "", ""),
    );
    let spec = DtmfStreamSpec {
        digits: "5401#".into(),
        mode: StreamMode::Both,
        law: Law::Ulaw,
        lead: Duration::from_millis(1500),
        tone: Duration::from_millis(100),
        gap: Duration::from_millis(300),
        ..Default::default()
    };
    let stream = dtmf_stream::build(&spec).unwrap();
    let rtp: Vec<(Duration, Bytes)> = stream
        .packets
        .iter()
        .map(|p| (p.time, packet::serialize(&p.packet).unwrap()))
        .collect();
    let r = run(&mut call, t0, &rtp, Duration::from_secs(5));
    assert_eq!(
        digits(&r.events),
        "5401#"
            .chars()
            .map(|d| (d, DigitSource::Rfc4733))
            .collect::<Vec<_>>()
    );
    // Prompt audio at 50 packets/s to the caller's RTP address, on the 20 ms grid.
    let sent: Vec<_> = r
        .rtp_out
        .iter()
        .filter(|(t, _, _)| *t <= t0 + Duration::from_secs(5))
        .collect();
    // From the ACK at 30 ms: nothing is sent before it.
    assert_eq!(sent.len(), 249);
    assert!(
        r.rtp_out
            .iter()
            .all(|(t, _, _)| *t >= t0 + Duration::from_millis(30))
    );
    assert!(
        sent.iter()
            .all(|(_, to, _)| *to == CALLER_RTP.parse::<SocketAddr>().unwrap())
    );
    // The keys are spoken back: speech frames after the intro prompt ended (~1.3 s).
    let speech_after = |from: Duration| {
        r.rtp_out
            .iter()
            .filter(|(t, _, _)| *t >= t0 + from)
            .filter(|(_, _, b)| {
                packet::parse(b)
                    .unwrap()
                    .payload
                    .iter()
                    .any(|&c| c != 0xFF && c != 0x7F)
            })
            .count()
    };
    assert!(
        speech_after(Duration::from_millis(1700)) > 50,
        "read-back of the keys"
    );
    // 2xx retransmissions stopped at the ACK.
    assert!(
        r.sip.iter().all(|(_, o)| !matches!(o, SipOut::Raw { .. })),
        "{:?}",
        r.sip
    );
}

#[test]
fn info_keys_and_the_callers_bye() {
    let t0 = Instant::now();
    let (mut call, ok) = answer(t0);
    call.handle_ack(t0, &in_dialog(&ok, "ACK", 1, "", ""));
    let relay = in_dialog(
        &ok,
        "INFO",
        2,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=7\r\nDuration=160\r\n",
    );
    let resp = call.handle_request(t0 + Duration::from_secs(1), &relay);
    assert_eq!(resp.code, 200);
    let plain = in_dialog(&ok, "INFO", 3, "Content-Type: application/dtmf\r\n", "#");
    assert_eq!(
        call.handle_request(t0 + Duration::from_millis(1500), &plain)
            .code,
        200
    );
    let odd = in_dialog(&ok, "INFO", 4, "Content-Type: text/plain\r\n", "hello");
    assert_eq!(
        call.handle_request(t0 + Duration::from_millis(1600), &odd)
            .code,
        415
    );
    let r = run(
        &mut call,
        t0 + Duration::from_millis(1600),
        &[],
        Duration::from_secs(1),
    );
    let mut events = r.events;
    let bye = call.handle_request(
        t0 + Duration::from_secs(3),
        &in_dialog(&ok, "BYE", 5, "", ""),
    );
    assert_eq!(bye.code, 200);
    while let Some(e) = call.poll_event() {
        events.push(e);
    }
    assert_eq!(
        digits(&events),
        vec![('7', DigitSource::Info), ('#', DigitSource::Info)]
    );
    assert_eq!(events.last(), Some(&CallEvent::Ended(EndReason::RemoteBye)));
    assert!(call.is_ended());
    // A request after the BYE belongs to no dialog: 481.
    let late = call.handle_request(
        t0 + Duration::from_secs(4),
        &in_dialog(&ok, "INFO", 6, "", ""),
    );
    assert_eq!(late.code, 481);
}

#[test]
fn an_unacknowledged_2xx_is_resent_then_the_call_is_dropped() {
    let t0 = Instant::now();
    let (mut call, _ok) = answer(t0);
    let r = run(&mut call, t0, &[], Duration::from_secs(40));
    let resends: Vec<Duration> = r
        .sip
        .iter()
        .filter(|(_, o)| matches!(o, SipOut::Raw { .. }))
        .map(|(t, _)| *t - t0)
        .collect();
    let expect: Vec<Duration> = [
        500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(Duration::from_millis)
    .collect();
    assert_eq!(resends, expect);
    let bye = r.sip.iter().find_map(|(t, o)| match o {
        SipOut::Request { request, to } => Some((*t - t0, request.method.clone(), *to)),
        _ => None,
    });
    assert_eq!(
        bye,
        Some((
            Duration::from_secs(32),
            Method::Bye,
            CALLER.parse().unwrap()
        ))
    );
    assert!(r.events.contains(&CallEvent::Ended(EndReason::NoAck)));
    // Not one RTP packet went out for an INVITE that was never acknowledged: whoever the
    // offer named receives nothing from a forged INVITE.
    assert!(r.rtp_out.is_empty(), "{} packets", r.rtp_out.len());
}

#[test]
fn silence_ends_the_test_call_with_goodbye_and_our_bye() {
    let t0 = Instant::now();
    let (mut call, ok) = answer(t0);
    call.handle_ack(t0, &in_dialog(&ok, "ACK", 1, "", ""));
    let r = run(&mut call, t0, &[], Duration::from_secs(40));
    let bye = r.sip.iter().find_map(|(t, o)| match o {
        SipOut::Request { request, .. } if request.method == Method::Bye => Some(*t - t0),
        _ => None,
    });
    let at = bye.expect("a BYE");
    // 30 s of silence, then "goodbye" (under 2 s) is played to its end, then BYE.
    assert!(
        at > Duration::from_secs(30) && at < Duration::from_secs(33),
        "{at:?}"
    );
    assert!(r.events.contains(&CallEvent::Ended(EndReason::LocalBye)));
}
