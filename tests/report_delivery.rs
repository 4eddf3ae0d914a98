//! Webhook delivery (`src/report`): the signature, and delivery to a local receiver that checks
//! every signature and records what it accepted: in order per device, through 500s, through a
//! closed port, and across a restart of the task and the store.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hotdesk::report::{Delivery, Report, SignatureScheme, sign, sign_v1};
use hotdesk_store::directory::{Directory, LockoutPolicy, LoginAttempt, Pepper, Via};

mod common;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SECRET: &str = "hotdesk-test-secret";

#[test]
fn signature_matches_openssl() {
    // RFC 4231 test case 2; also what `printf 'what do ya want for nothing?' |
    // openssl dgst -sha256 -hmac Jefe` prints.
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // A contract §5 body, made with:
    //   printf '%s' '{"id":"01JDESK0000000000000000000",…,"at":"2026-11-22T10:00:00.123Z"}' \
    //     | openssl dgst -sha256 -hmac 'hotdesk-test-secret'
    let body = r#"{"id":"01JDESK0000000000000000000","event":"login","device":"5401","user":"1001","previous_user":null,"via":"feature_code","call_id":"a84b4c76e66710","at":"2026-11-22T10:00:00.123Z"}"#;
    assert_eq!(
        sign(SECRET.as_bytes(), body.as_bytes()),
        "sha256=d71918a48dff95c9e3df3b2ab8291db8b7a68b2aade29c26698e1250910b0e59"
    );
    // The body a Report serialises to is byte for byte that one.
    let report: Report = serde_json::from_str(body).unwrap();
    assert_eq!(report.body(), body.as_bytes());
    // v1 signs the time and the body:
    //   printf '%s' '1764756000.{"id":…}' | openssl dgst -sha256 -hmac 'hotdesk-test-secret'
    assert_eq!(
        sign_v1(SECRET.as_bytes(), body.as_bytes(), 1_764_756_000),
        "t=1764756000,v1=d1f468ee560a5e84d56b53ad168156b1d8f575ad15fa7e1740d04bbef65bb0b8"
    );
    // `report.signature = "legacy"` keeps the old header for receivers not yet moved over.
    assert_eq!(
        SignatureScheme::Legacy.sign(SECRET.as_bytes(), body.as_bytes(), 1_764_756_000),
        sign(SECRET.as_bytes(), body.as_bytes())
    );
}

#[test]
fn a_v1_signature_holds_only_within_the_time_window() {
    let body = br#"{"id":"x"}"#;
    let now = common::http::unix_now();
    let fresh = sign_v1(SECRET.as_bytes(), body, now);
    common::http::verify_v1(SECRET.as_bytes(), &fresh, body, now).unwrap();
    // A captured request sent again ten minutes later is refused by the receiver.
    let replayed = common::http::verify_v1(SECRET.as_bytes(), &fresh, body, now + 600);
    assert!(replayed.unwrap_err().contains("600s"));
    // The time cannot be changed without the secret.
    let moved = fresh.replace(&format!("t={now}"), &format!("t={}", now + 600));
    assert!(common::http::verify_v1(SECRET.as_bytes(), &moved, body, now + 600).is_err());
    // Nor the body.
    assert!(common::http::verify_v1(SECRET.as_bytes(), &fresh, br#"{"id":"y"}"#, now).is_err());
}

/// What the receiver saw.
#[derive(Default)]
struct Inbox {
    /// Reports answered with a 2xx, in arrival order (duplicates kept).
    accepted: Vec<Report>,
    /// Every well-formed request, whatever the answer.
    requests: u32,
    /// Requests with a bad signature, header or body.
    bad: Vec<String>,
}

type Decide = Arc<dyn Fn(&Report, u32) -> u16 + Send + Sync>;

#[derive(Clone)]
struct Receiver {
    inbox: Arc<Mutex<Inbox>>,
    decide: Decide,
    /// How long the receiver takes before it answers, in ms (a slow receiver).
    delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    fn accepted(&self) -> Vec<Report> {
        self.inbox.lock().unwrap().accepted.clone()
    }
    fn requests(&self) -> u32 {
        self.inbox.lock().unwrap().requests
    }
    fn bad(&self) -> Vec<String> {
        self.inbox.lock().unwrap().bad.clone()
    }
}

async fn handle(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = rx.delay_ms.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut inbox = rx.inbox.lock().unwrap();
    let report: Report = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            inbox.bad.push(format!("body: {e}"));
            return StatusCode::BAD_REQUEST;
        }
    };
    let signed = common::http::verify_v1(
        SECRET.as_bytes(),
        &header("x-hotdesk-signature"),
        &body,
        common::http::unix_now(),
    );
    if signed.is_err() {
        inbox.bad.push(format!("{}: signature", report.id));
        return StatusCode::UNAUTHORIZED;
    }
    if header("x-hotdesk-event-id") != report.id || header("content-type") != "application/json" {
        inbox.bad.push(format!("{}: headers", report.id));
        return StatusCode::BAD_REQUEST;
    }
    let n = inbox.requests;
    inbox.requests += 1;
    let status = (rx.decide)(&report, n);
    if (200..300).contains(&status) {
        inbox.accepted.push(report);
    }
    StatusCode::from_u16(status).unwrap()
}

async fn receiver_on(listener: TcpListener, decide: Decide) -> Receiver {
    let rx = Receiver {
        inbox: Arc::default(),
        decide,
        delay_ms: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/hotdesk", axum::routing::post(handle))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    rx
}

async fn receiver(decide: Decide) -> (Receiver, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hotdesk", listener.local_addr().unwrap());
    (receiver_on(listener, decide).await, url)
}

fn always(status: u16) -> Decide {
    Arc::new(move |_, _| status)
}

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("hotdesk.db").display())
}

async fn open(dir: &tempfile::TempDir) -> Directory {
    Directory::open(
        &url(dir),
        Pepper::parse(&"ab".repeat(32)).unwrap(),
        LockoutPolicy::default(),
    )
    .await
    .unwrap()
}

async fn populated(dir: &tempfile::TempDir) -> Directory {
    let d = open(dir).await;
    for (ext, pin) in [("1001", "1151"), ("1002", "2262"), ("1003", "3373")] {
        d.add_user(ext, None, None).await.unwrap();
        d.set_pin(ext, &SecretString::from(pin)).await.unwrap();
    }
    d
}

async fn login(d: &Directory, device: &str, account: &str, pin: &str) {
    let pin = SecretString::from(pin);
    d.login(&LoginAttempt {
        device: device.into(),
        account: account.into(),
        pin,
        via: Via::FeatureCode,
        call_id: Some("c1".into()),
        source: None,
    })
    .await
    .unwrap();
}

/// Reports on three desks, with a release caused by a second-desk login and a failure.
async fn make_events(d: &Directory) {
    login(d, "5401", "1001", "1151").await;
    login(d, "5402", "1002", "2262").await;
    login(d, "5403", "1001", "1151").await;
    d.release("5402", Via::FeatureCode, Some("c2"))
        .await
        .unwrap();
    login(d, "5401", "1003", "0000").await;
    login(d, "5401", "1002", "2262").await;
    login(d, "5402", "1003", "3373").await;
}

/// Report ids per device, in order, first occurrence only (at-least-once: drop duplicates).
fn by_device(reports: &[Report]) -> BTreeMap<String, Vec<String>> {
    let mut seen = HashSet::new();
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in reports {
        if seen.insert(r.id.clone()) {
            map.entry(r.device.clone()).or_default().push(r.id.clone());
        }
    }
    map
}

fn unique(reports: &[Report]) -> usize {
    reports.iter().map(|r| &r.id).collect::<HashSet<_>>().len()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn fast(delivery: Delivery) -> Delivery {
    delivery.backoff(Duration::from_millis(20), Duration::from_millis(100))
}

fn delivery(d: &Directory, url: &str) -> Delivery {
    fast(Delivery::new(Arc::new(d.clone()), url, SecretString::from(SECRET)).unwrap())
}

/// The shutdown future and its trigger.
fn shutdown() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_signed_reports_in_order_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    let (rx, url) = receiver(always(204)).await;
    let (_stop, stopped) = shutdown();
    let task = delivery(&d, &url).spawn(stopped);
    // Written after the task started and is idle: it must be woken by the commits.
    make_events(&d).await;
    let expected = d.events_after(None, 100).await.unwrap();
    assert_eq!(expected.len(), 8);
    wait_for("all reports", || unique(&rx.accepted()) == expected.len()).await;
    assert_eq!(by_device(&rx.accepted()), by_device(&expected));
    assert!(rx.bad().is_empty(), "{:?}", rx.bad());
    assert_eq!(d.queue_depth().await.unwrap(), 0);
    // Delivered reports stay in the log for GET /v1/events.
    assert_eq!(d.events_after(None, 100).await.unwrap(), expected);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_everything_arrives_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    make_events(&d).await;
    let expected = d.events_after(None, 100).await.unwrap();
    // The first twelve requests fail, whatever they carry.
    let (rx, url) = receiver(Arc::new(|_, n| if n < 12 { 500 } else { 200 })).await;
    let (_stop, stopped) = shutdown();
    let task = delivery(&d, &url).spawn(stopped);
    wait_for("all reports", || unique(&rx.accepted()) == expected.len()).await;
    assert!(rx.requests() >= 12 + 8);
    assert_eq!(by_device(&rx.accepted()), by_device(&expected));
    assert!(rx.bad().is_empty(), "{:?}", rx.bad());
    assert_eq!(d.queue_depth().await.unwrap(), 0);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_lets_the_queue_grow_then_gets_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    let (rx, url) = receiver(always(204)).await;
    // Slower than the 5 s request timeout: every request times out on hotdesk's side.
    rx.delay_ms.store(6_000, Ordering::Relaxed);
    let (_stop, stopped) = shutdown();
    let task = delivery(&d, &url).spawn(stopped);
    make_events(&d).await;
    let expected = d.events_after(None, 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    // Nothing acknowledged yet: the whole log is queued.
    assert_eq!(d.queue_depth().await.unwrap(), expected.len() as u64);
    rx.delay_ms.store(0, Ordering::Relaxed);
    wait_for("all reports", || unique(&rx.accepted()) == expected.len()).await;
    // The timed-out request may have been taken by the receiver after hotdesk gave up on it
    // (at-least-once; the report id tells duplicates), but each device's order holds.
    assert_eq!(by_device(&rx.accepted()), by_device(&expected));
    assert!(rx.bad().is_empty(), "{:?}", rx.bad());
    // Acknowledged reports are marked delivered just after the receiver's answer.
    let mut depth = d.queue_depth().await.unwrap();
    for _ in 0..100 {
        if depth == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        depth = d.queue_depth().await.unwrap();
    }
    assert_eq!(depth, 0);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_device_holds_back_only_its_own_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    make_events(&d).await;
    let expected = d.events_after(None, 100).await.unwrap();
    let on_5401 = expected.iter().filter(|r| r.device == "5401").count();
    let open = Arc::new(AtomicBool::new(false));
    let gate = open.clone();
    let (rx, url) = receiver(Arc::new(move |r, _| {
        if r.device == "5401" && !gate.load(Ordering::SeqCst) {
            503
        } else {
            200
        }
    }))
    .await;
    let (_stop, stopped) = shutdown();
    let task = delivery(&d, &url).spawn(stopped);
    wait_for("the other desks", || {
        unique(&rx.accepted()) == expected.len() - on_5401
    })
    .await;
    // 5401's first report has been tried more than once; none of 5401's arrived.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.accepted().iter().all(|r| r.device != "5401"));
    assert_eq!(d.queue_depth().await.unwrap(), on_5401 as u64);
    open.store(true, Ordering::SeqCst);
    wait_for("5401", || unique(&rx.accepted()) == expected.len()).await;
    assert_eq!(by_device(&rx.accepted()), by_device(&expected));
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_then_a_receiver_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    // Reserve a port, then close it: connections are refused.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hotdesk");
    let (_stop, stopped) = shutdown();
    let task = delivery(&d, &url).spawn(stopped);
    make_events(&d).await;
    let expected = d.events_after(None, 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.queue_depth().await.unwrap(), expected.len() as u64);
    let listener = TcpListener::bind(addr).await.unwrap();
    let rx = receiver_on(listener, always(200)).await;
    wait_for("all reports", || unique(&rx.accepted()) == expected.len()).await;
    assert_eq!(by_device(&rx.accepted()), by_device(&expected));
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_reports_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    let open_gate = Arc::new(AtomicBool::new(false));
    let gate = open_gate.clone();
    let (rx, url) = receiver(Arc::new(move |_, _| {
        if gate.load(Ordering::SeqCst) {
            200
        } else {
            500
        }
    }))
    .await;
    let (stop, stopped) = shutdown();
    let task = delivery(&d, &url).spawn(stopped);
    make_events(&d).await;
    let expected = d.events_after(None, 100).await.unwrap();
    wait_for("some attempts", || rx.requests() >= 6).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the task stops on shutdown")
        .unwrap();
    d.close().await;
    drop(d);

    let d = open(&dir).await;
    assert_eq!(d.queue_depth().await.unwrap(), expected.len() as u64);
    open_gate.store(true, Ordering::SeqCst);
    let (_stop, stopped) = shutdown();
    let task = delivery(&d, &url).spawn(stopped);
    wait_for("all reports", || unique(&rx.accepted()) == expected.len()).await;
    let accepted = rx.accepted();
    assert_eq!(by_device(&accepted), by_device(&expected));
    let ids: HashSet<_> = accepted.iter().map(|r| r.id.clone()).collect();
    let want: HashSet<_> = expected.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, want);
    assert!(rx.bad().is_empty(), "{:?}", rx.bad());
    task.abort();
}

#[tokio::test]
async fn bad_webhook_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(&dir).await;
    for (url, secret) in [
        ("ftp://example.com/x", SECRET),
        ("not a url", SECRET),
        ("http://127.0.0.1:9/h", ""),
    ] {
        let err = Delivery::new(Arc::new(d.clone()), url, SecretString::from(secret)).unwrap_err();
        assert!(err.to_string().starts_with("report.webhook_url"), "{err}");
    }
}
