//! Whole hot-desk calls replayed on virtual time (`hotdesk_qa::replay`), with a directory double
//! that knows one user; the real directory has its own tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotdesk_core::dsp::g711::{Law, ulaw_to_linear};
use hotdesk_core::ivr::executor::{BoxFuture, FlowServices};
use hotdesk_core::ivr::{FlowContext, FlowSettings, FlowSpec, hotdesk as flows};
use hotdesk_core::model::{LoginAttempt, LoginOutcome, Release, Unavailable};
use hotdesk_core::prompts::loader::PromptCache;
use hotdesk_qa::dtmf_stream::{self, DtmfMode, DtmfStreamSpec};
use hotdesk_qa::pcap::CapturedRtp;
use hotdesk_qa::replay::{self, CallerMedia, Entry, ReplaySpec};
use secrecy::ExposeSecret;

/// User 1001 with PIN 4321; remembers what it was asked (never the PIN itself).
#[derive(Default)]
struct OneUser {
    asked: Mutex<Vec<String>>,
}

impl FlowServices for OneUser {
    fn login(&self, a: LoginAttempt) -> BoxFuture<'_, Result<LoginOutcome, Unavailable>> {
        let ok = a.account == "1001" && a.pin.expose_secret() == "4321";
        self.asked.lock().unwrap().push(format!(
            "login {} at {} via {:?}",
            a.account, a.device, a.via
        ));
        Box::pin(async move {
            Ok(if ok {
                LoginOutcome::Accepted {
                    user: "1001".into(),
                    previous_user: None,
                    released_from: None,
                }
            } else {
                LoginOutcome::Incorrect
            })
        })
    }

    fn release(&self, r: Release) -> BoxFuture<'_, Result<Option<String>, Unavailable>> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("release {} via {:?}", r.device, r.via));
        Box::pin(async { Ok(Some("1001".to_string())) })
    }
}

fn prompts() -> Arc<PromptCache> {
    Arc::new(
        PromptCache::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"))
            .unwrap(),
    )
}

fn spec(flow: &'static FlowSpec, user: Option<&str>) -> ReplaySpec {
    ReplaySpec {
        flow,
        ctx: FlowContext {
            device: "5401".into(),
            is_desk: true,
            user: user.map(Into::into),
            settings: FlowSettings {
                first_digit_timeout: Duration::from_secs(5),
                inter_digit_timeout: Duration::from_secs(3),
                terminator: '#',
                max_attempts: 3,
            },
        },
        language: "en".into(),
        max_call: Duration::from_secs(120),
    }
}

fn stream(digits: &str, mode: DtmfMode) -> dtmf_stream::DtmfStream {
    dtmf_stream::build(&DtmfStreamSpec {
        digits: digits.into(),
        mode,
        law: Law::Ulaw,
        lead: Duration::from_millis(1500),
        tone: Duration::from_millis(100),
        gap: Duration::from_millis(160),
        tail: Duration::from_millis(500),
        ..Default::default()
    })
    .unwrap()
}

fn as_capture(s: &dtmf_stream::DtmfStream) -> Vec<CapturedRtp> {
    let src: SocketAddr = s.src.into();
    let dst: SocketAddr = s.dst.into();
    s.packets
        .iter()
        .map(|p| CapturedRtp {
            time: s.start + p.time,
            src,
            dst,
            packet: p.packet.clone(),
        })
        .collect()
}

fn as_audio(s: &dtmf_stream::DtmfStream) -> Vec<i16> {
    s.packets
        .iter()
        .filter(|p| p.packet.header.payload_type == 0)
        .flat_map(|p| {
            p.packet
                .payload
                .iter()
                .map(|&c| ulaw_to_linear(c))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn run(flow: &'static FlowSpec, media: &CallerMedia, dir: &OneUser) -> replay::Transcript {
    run_for(flow, None, media, dir)
}

fn run_for(
    flow: &'static FlowSpec,
    user: Option<&str>,
    media: &CallerMedia,
    dir: &OneUser,
) -> replay::Transcript {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(replay::run(&spec(flow, user), media, prompts(), dir))
        .unwrap()
}

#[test]
fn login_from_rfc4733_capture_is_verified_with_the_pin_masked() {
    let dir = OneUser::default();
    let media = CallerMedia::Rtp(as_capture(&stream("1001#4321#", DtmfMode::Rfc4733)));
    let started = Instant::now();
    let t = run(&flows::LOGIN, &media, &dir);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "replay is not virtual-time"
    );
    assert_eq!(t.outcome, "verified", "{t:#?}");
    // Every key of a login call is masked, the account's too: callers type the PIN where the
    // account is asked for. The decision names the account once it is a known user's.
    assert_eq!(t.digits(), "••••••••••");
    assert!(t.entries.iter().all(|e| match e {
        Entry::Digit { source, .. } => source == "rfc4733",
        _ => true,
    }));
    assert_eq!(
        *dir.asked.lock().unwrap(),
        vec!["login 1001 at 5401 via FeatureCode".to_string()]
    );
    let json = serde_json::to_string(&t).unwrap();
    assert!(!json.contains("4321"), "{json}");
    // The read-back then goodbye, and hotdesk hangs up.
    assert!(matches!(t.entries.last(), Some(Entry::Hangup { by, .. }) if by == "hotdesk"));
    assert!(
        t.entries
            .iter()
            .any(|e| matches!(e, Entry::Prompt { ids, .. }
        if ids.first().map(String::as_str) == Some("login_accepted_prefix")))
    );
}

#[test]
fn login_from_inband_audio_is_verified() {
    let dir = OneUser::default();
    let media = CallerMedia::Audio(as_audio(&stream("1001#4321#", DtmfMode::Inband)));
    let t = run(&flows::LOGIN, &media, &dir);
    assert_eq!(t.outcome, "verified", "{t:#?}");
    assert_eq!(t.digits(), "••••••••••");
}

#[test]
fn three_wrong_pins_fail_the_call() {
    let dir = OneUser::default();
    let keys = "1001#1111#1001#2222#1001#3333#";
    let media = CallerMedia::Rtp(as_capture(&stream(keys, DtmfMode::Rfc4733)));
    let t = run(&flows::LOGIN, &media, &dir);
    assert_eq!(t.outcome, "failed", "{t:#?}");
    assert_eq!(dir.asked.lock().unwrap().len(), 3);
}

#[test]
fn release_needs_no_keys() {
    let dir = OneUser::default();
    let media = CallerMedia::Audio(vec![0; 8000]);
    let t = run(&flows::RELEASE, &media, &dir);
    assert_eq!(t.outcome, "released", "{t:#?}");
    assert_eq!(
        *dir.asked.lock().unwrap(),
        vec!["release 5401 via FeatureCode".to_string()]
    );
}

#[test]
fn callback_for_a_named_user_takes_only_the_pin() {
    let dir = OneUser::default();
    let media = CallerMedia::Rtp(as_capture(&stream("4321#", DtmfMode::Rfc4733)));
    let t = run_for(&flows::CALLBACK, Some("1001"), &media, &dir);
    assert_eq!(t.outcome, "verified", "{t:#?}");
    assert_eq!(
        *dir.asked.lock().unwrap(),
        vec!["login 1001 at 5401 via Callback".to_string()]
    );
}

#[test]
fn silence_ends_with_no_input_after_the_retries() {
    let dir = OneUser::default();
    let media = CallerMedia::Audio(vec![0; 8000]);
    let t = run(&flows::LOGIN, &media, &dir);
    assert_eq!(t.outcome, "no_input", "{t:#?}");
    assert!(dir.asked.lock().unwrap().is_empty());
    let prompts = t
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::Prompt { ids, .. } if ids == &["enter_account"]))
        .count();
    assert_eq!(prompts, 3);
}
