//! The HTTP API's request bodies, paths and queries, through the real axum router with a real
//! directory (SQLite in a temporary directory) and media server: every answer is a JSON body,
//! and nothing a client sends gets a 500 or takes the process down.
//!
//! Input: the first byte picks the route; the rest is the body (POST) or the path segment /
//! query string (percent-encoded, so every byte sequence makes a valid URI).
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hotdesk::api::{self, Activations, ApiState};
use hotdesk::config::Config;
use hotdesk_store::directory::{Directory, LockoutPolicy, Pepper};
use hotdesk::metrics::Metrics;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token";

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let router = runtime.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("hotdesk.db").display());
        let directory = Directory::open(&url, Pepper::random(), LockoutPolicy::default())
            .await
            .unwrap();
        directory.add_user("1001", Some("Ann"), None).await.unwrap();
        directory
            .set_pin("1001", &SecretString::from("4829"))
            .await
            .unwrap();
        let text = format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\n[prompts]\ndir = \"{}/../prompts\"\n",
            env!("CARGO_MANIFEST_DIR")
        );
        let config = Config::parse(&text, "fuzz", |_| None).unwrap();
        let (media, handle) = hotdesk::server::bind(config.clone(), Default::default())
            .await
            .unwrap();
        tokio::spawn(media.run(std::future::pending()));
        api::router(ApiState {
            directory: Arc::new(directory.clone()),
            outbox: Arc::new(directory),
            server: handle,
            activations: Activations::default(),
            metrics: Arc::new(Metrics::default()),
            token: Some(Arc::new(SecretString::from(TOKEN))),
            config: Arc::new(config),
        })
    });
    Harness {
        runtime,
        router,
        _dir: dir,
    }
});

fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A query string as a client library would send it: `=` and `&` kept, the rest escaped.
fn query(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'=' | b'&' | b'-' | b'.' | b'_' | b':' => char::from(b).to_string(),
            _ if b.is_ascii_alphanumeric() => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn request(route: u8, rest: &[u8]) -> Request<Body> {
    let builder = Request::builder().header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let segment = percent_encode(rest);
    let (method, uri, body) = match route % 6 {
        0 | 1 => ("POST", "/v1/activations".to_owned(), rest.to_vec()),
        2 => ("GET", format!("/v1/activations/{segment}"), Vec::new()),
        3 => ("DELETE", format!("/v1/devices/{segment}/login"), Vec::new()),
        4 => ("DELETE", format!("/v1/lockouts/{segment}"), Vec::new()),
        _ => ("GET", format!("/v1/events?{}", query(rest)), Vec::new()),
    };
    builder
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let harness = &*HARNESS;
    let request = request(route, rest);
    let (status, body) = harness.runtime.block_on(async {
        let response = harness.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let json: Result<serde_json::Value, _> = serde_json::from_slice(&body);
    assert!(
        json.is_ok(),
        "{status}: not JSON: {}",
        String::from_utf8_lossy(&body)
    );
});
