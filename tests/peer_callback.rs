//! Outbound calls (the portal's *Activate Phone* callback) from the running server to a sipp
//! UAS standing in for the desk phone: answered, busy, and not answered (CANCEL).
//!
//! The server runs in-process (the library's [`hotdesk::server`]) so the test can place calls
//! through its [`ServerHandle`]; sipp is the independent peer.

mod common;

use std::path::Path;
use std::time::Duration;

use common::peers::{Ports, Sipp, SippRun};
use hotdesk::config::Config;
use hotdesk::server::{CallControl, CallUpdate, Originate, ServerHandle};
use hotdesk_core::call::EndReason;
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::media::DigitSource;
use hotdesk_qa::dtmf_stream::{DtmfMode, DtmfStreamSpec, write_dtmf_pcap};
use tokio::sync::oneshot;

/// A server on this test's ports whose outbound proxy is the sipp UAS.
async fn start_server(ports: &Ports) -> (ServerHandle, oneshot::Sender<()>) {
    let text = format!(
        r#"
[sip]
listen = "127.0.0.1:{sip}"
domain = "127.0.0.1"
outbound_proxy = "sip:127.0.0.1:{phone}"
[rtp]
port_range = "{rtp}"
[prompts]
dir = "{root}/prompts"
"#,
        sip = ports.hotdesk_sip(),
        phone = ports.peer_sip(0),
        rtp = ports.hotdesk_rtp_range(),
        root = env!("CARGO_MANIFEST_DIR"),
    );
    let config = Config::parse(&text, "test config", |_| None).expect("valid config");
    let (server, handle) = hotdesk::server::bind(config, Default::default())
        .await
        .expect("server binds");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (handle, stop)
}

/// sipp as the desk phone, playing `scenario` as `configure` sets it up; returns once its SIP
/// port is bound.
fn phone(
    ports: &Ports,
    dir: &Path,
    scenario: &str,
    configure: impl FnOnce(Sipp) -> Sipp,
) -> SippRun {
    let sipp = Sipp::new(
        "phone",
        dir,
        scenario,
        ports.peer_sip(0),
        ports.peer_media(0),
    );
    let run = configure(sipp).spawn(None);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::UdpSocket::bind(("127.0.0.1", ports.peer_sip(0))).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "sipp did not bind its SIP port"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run
}

/// Updates until one matches `last` (or the timeout, which fails the test).
async fn updates_until(
    control: &mut CallControl,
    timeout: Duration,
    last: impl Fn(&CallUpdate) -> bool,
) -> Vec<CallUpdate> {
    let mut seen = Vec::new();
    let result = tokio::time::timeout(timeout, async {
        while let Some(u) = control.updates.recv().await {
            let done = last(&u);
            seen.push(u);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(result.is_ok(), "timed out; updates so far: {seen:?}");
    seen
}

/// Provisional updates dropped: what the test asserts on is the outcome and what follows.
fn outcome(updates: &[CallUpdate]) -> Vec<CallUpdate> {
    updates
        .iter()
        .filter(|u| !matches!(u, CallUpdate::Trying | CallUpdate::Ringing { .. }))
        .cloned()
        .collect()
}

fn rang(updates: &[CallUpdate]) -> bool {
    updates.contains(&CallUpdate::Ringing { code: 180 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_callback_runs_the_flow_hears_the_keys_and_hangs_up() {
    let ports = Ports::alloc();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("keys.pcap");
    write_dtmf_pcap(
        &pcap,
        &DtmfStreamSpec {
            digits: "1#".into(),
            mode: DtmfMode::Rfc4733,
            law: Law::Ulaw,
            lead: Duration::from_millis(800),
            tail: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .unwrap();
    let (server, _stop) = start_server(&ports).await;
    let uas = phone(&ports, dir.path(), "uas_answer.xml", |s| {
        s.set("fmts", "0 101").set("ring_ms", "300").args([
            "-key",
            "pcap",
            &pcap.display().to_string(),
        ])
    });
    let mut call = server
        .originate(Originate {
            device: "5401".into(),
            flow: common::dtmf_test_flow(),
            ring_timeout: Duration::from_secs(10),
        })
        .await
        .expect("call placed");
    let updates = updates_until(&mut call, Duration::from_secs(15), |u| {
        matches!(u, CallUpdate::Digit { digit: '#', .. })
    })
    .await;
    assert!(rang(&updates), "{updates:?}");
    let keys: Vec<(char, DigitSource)> = outcome(&updates)
        .iter()
        .filter_map(|u| match u {
            CallUpdate::Digit { digit, source, .. } => Some((*digit, *source)),
            _ => None,
        })
        .collect();
    assert_eq!(outcome(&updates)[0], CallUpdate::Answered);
    assert_eq!(
        keys,
        vec![('1', DigitSource::Rfc4733), ('#', DigitSource::Rfc4733)]
    );
    call.hang_up();
    let end = updates_until(&mut call, Duration::from_secs(5), |u| {
        matches!(u, CallUpdate::Ended(_))
    })
    .await;
    assert_eq!(end.last(), Some(&CallUpdate::Ended(EndReason::LocalBye)));
    let result = tokio::task::spawn_blocking(move || uas.wait(Duration::from_secs(10)))
        .await
        .unwrap();
    result.assert_ok("the phone answered and got our BYE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_phone_gives_busy() {
    let ports = Ports::alloc();
    let dir = tempfile::tempdir().unwrap();
    let (server, _stop) = start_server(&ports).await;
    let uas = phone(&ports, dir.path(), "uas_busy.xml", |s| {
        s.set("ring_ms", "300")
    });
    let mut call = server
        .originate(Originate {
            device: "5401".into(),
            flow: common::dtmf_test_flow(),
            ring_timeout: Duration::from_secs(10),
        })
        .await
        .expect("call placed");
    let updates = updates_until(&mut call, Duration::from_secs(10), |u| {
        matches!(u, CallUpdate::Busy { .. } | CallUpdate::Failed { .. })
    })
    .await;
    assert!(rang(&updates), "{updates:?}");
    assert_eq!(outcome(&updates), vec![CallUpdate::Busy { code: 486 }]);
    // The call's task is gone: no more updates, the channel closes.
    let rest = tokio::time::timeout(Duration::from_secs(5), call.updates.recv()).await;
    assert_eq!(rest.ok(), Some(None));
    let result = tokio::task::spawn_blocking(move || uas.wait(Duration::from_secs(10)))
        .await
        .unwrap();
    result.assert_ok("the busy phone saw its 486 ACKed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_phone_is_cancelled_after_the_ring_timeout() {
    let ports = Ports::alloc();
    let dir = tempfile::tempdir().unwrap();
    let (server, _stop) = start_server(&ports).await;
    let uas = phone(&ports, dir.path(), "uas_ring.xml", |s| s);
    let started = std::time::Instant::now();
    let mut call = server
        .originate(Originate {
            device: "5401".into(),
            flow: common::dtmf_test_flow(),
            ring_timeout: Duration::from_secs(2),
        })
        .await
        .expect("call placed");
    let updates = updates_until(&mut call, Duration::from_secs(10), |u| {
        !matches!(u, CallUpdate::Trying | CallUpdate::Ringing { .. })
    })
    .await;
    let rang_for = started.elapsed();
    assert!(rang(&updates), "{updates:?}");
    assert_eq!(outcome(&updates), vec![CallUpdate::NoAnswer]);
    assert!(
        rang_for >= Duration::from_secs(2),
        "gave up after {rang_for:?}, before the 2 s ring timeout"
    );
    let result = tokio::task::spawn_blocking(move || uas.wait(Duration::from_secs(10)))
        .await
        .unwrap();
    result.assert_ok("the phone got CANCEL, answered 200 and 487, and got the ACK");
    assert!(
        result.messages.contains("CANCEL sip:5401@127.0.0.1"),
        "{}",
        result.describe()
    );
}
