//! The HTTP API (contract §4) over real HTTP on loopback: auth, errors that name the field,
//! body limits, devices, release, unlock, the report log, health, readiness and metrics.

use std::sync::Arc;

use hotdesk::api::{self, Activations, ApiState};
use hotdesk::config::{Config, Validated};
use hotdesk::metrics::Metrics;
use hotdesk_store::directory::{Directory, LockoutPolicy, LoginAttempt, Pepper, Via};
use secrecy::SecretString;
use serde_json::{Value, json};

const TOKEN: &str = "t0ken-for-tests";

struct Api {
    base: String,
    client: reqwest::Client,
    directory: Directory,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(token: Option<&str>) -> Api {
        // reqwest is built without a crypto provider; the binary installs ring, so do we.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hotdesk.db").display());
        let policy = LockoutPolicy::default();
        let directory = Directory::open(&url, Pepper::random(), policy)
            .await
            .unwrap();
        directory.add_user("1001", Some("Ann"), None).await.unwrap();
        directory
            .set_pin("1001", &SecretString::from("4829"))
            .await
            .unwrap();
        let config = config();
        let (media, handle) = hotdesk::server::bind(config.clone(), Default::default())
            .await
            .unwrap();
        tokio::spawn(media.run(std::future::pending()));
        let state = ApiState {
            directory: Arc::new(directory.clone()),
            outbox: Arc::new(directory.clone()),
            server: handle,
            activations: Activations::default(),
            metrics: Arc::new(Metrics::default()),
            token: token.map(|t| Arc::new(SecretString::from(t))),
            config: Arc::new(config),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let limits = api::ServeLimits {
            max_connections: 64,
            max_per_source: 64,
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
        };
        tokio::spawn(api::serve(
            listener,
            api::router(state),
            limits,
            std::future::pending(),
        ));
        Api {
            base,
            client: reqwest::Client::new(),
            directory,
            _dir: dir,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    async fn login(&self, device: &str, pin: &str) {
        let pin = SecretString::from(pin);
        self.directory
            .login(&LoginAttempt {
                device: device.into(),
                account: "1001".into(),
                pin,
                via: Via::FeatureCode,
                call_id: Some("call-1".into()),
                source: None,
            })
            .await
            .unwrap();
    }
}

fn config() -> Validated {
    let text = format!(
        "[sip]\nlisten = \"127.0.0.1:0\"\n[prompts]\ndir = \"{}/prompts\"\n",
        env!("CARGO_MANIFEST_DIR")
    );
    Config::parse(&text, "test", |_| None).unwrap()
}

async fn body(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn v1_needs_the_bearer_token_health_does_not() {
    let api = Api::start(Some(TOKEN)).await;
    let url = format!("{}/v1/devices", api.base);
    let (status, error) = body(api.client.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"], "unauthorized");
    let wrong = api.client.get(&url).bearer_auth("t0ken-for-test").send();
    assert_eq!(wrong.await.unwrap().status(), 401);
    let right = api.req(reqwest::Method::GET, "/v1/devices").send().await;
    assert_eq!(right.unwrap().status(), 200);
    let health = api.client.get(format!("{}/healthz", api.base)).send().await;
    assert_eq!(health.unwrap().status(), 200);
    let (status, ready) = body(
        api.client
            .get(format!("{}/readyz", api.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, ready), (200, json!({"ready": true})));
}

#[tokio::test]
async fn activation_bodies_are_checked_field_by_field() {
    let api = Api::start(None).await;
    let post = |body: &'static str| {
        api.req(reqwest::Method::POST, "/v1/activations")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let (status, e) = body(post("{not json").await.unwrap()).await;
    assert_eq!(status, 400, "{e}");
    let (status, e) = body(post("{}").await.unwrap()).await;
    assert_eq!(status, 422, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("device"), "{e}");
    let (status, e) = body(post(r#"{"device": 5401}"#).await.unwrap()).await;
    assert_eq!(status, 422, "{e}");
    let (status, e) = body(post(r#"{"device": "54a1"}"#).await.unwrap()).await;
    assert_eq!(status, 422, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("device"), "{e}");
    let (status, e) = body(post(r#"{"device": "1234"}"#).await.unwrap()).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (422, Some("not a hot-desk phone"))
    );
    let (status, e) = body(post(r#"{"device": "5401", "user": "7777"}"#).await.unwrap()).await;
    assert_eq!((status, e["error"].as_str()), (422, Some("unknown user")));
    let (status, e) = body(post(r#"{"device": "5401", "extra": 1}"#).await.unwrap()).await;
    assert_eq!(status, 422, "{e}");
    // No outbound proxy is configured: the call cannot be placed, and says why.
    let (status, e) = body(post(r#"{"device": "5401"}"#).await.unwrap()).await;
    assert_eq!(status, 503, "{e}");
    assert!(
        e["detail"].as_str().unwrap().contains("outbound_proxy"),
        "{e}"
    );
    let (status, _) = body(
        api.req(reqwest::Method::GET, "/v1/activations/01NOPE")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn huge_and_deeply_nested_bodies_are_refused() {
    let api = Api::start(None).await;
    let huge = format!(r#"{{"device":"5401","user":"{}"}}"#, "1".repeat(10 << 20));
    let r = api
        .req(reqwest::Method::POST, "/v1/activations")
        .header("Content-Type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, e) = body(
        api.req(reqwest::Method::POST, "/v1/activations")
            .header("Content-Type", "application/json")
            .body(nested)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status == 400 || status == 413, "{status} {e}");
    // The server is still there.
    let ok = api.req(reqwest::Method::GET, "/v1/devices").send().await;
    assert_eq!(ok.unwrap().status(), 200);
}

#[tokio::test]
async fn nesting_within_the_size_limit_is_refused_by_depth() {
    let api = Api::start(None).await;
    // 60 KB: under the 64 KiB limit, so it is not the size that refuses these. The typed
    // body stops at the first value of the wrong type; serde_json's depth limit (128) stands
    // behind it for anything that would recurse.
    for nested in [
        format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
        format!(
            r#"{{"device":{}{}}}"#,
            "{\"a\":".repeat(10_000),
            "}".repeat(10_000)
        ),
    ] {
        let (status, e) = body(
            api.req(reqwest::Method::POST, "/v1/activations")
                .header("Content-Type", "application/json")
                .body(nested)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, e["error"].as_str()),
            (422, Some("invalid body")),
            "{e}"
        );
    }
}

/// Found by the `api_body` fuzzer: axum's own rejections were plain text, not the contract's
/// JSON errors: a path segment that is not UTF-8 once decoded, and a route with the wrong
/// method.
#[tokio::test]
async fn every_refusal_is_a_json_error() {
    let api = Api::start(Some(TOKEN)).await;
    for path in [
        "/v1/devices/%FF/login",
        "/v1/lockouts/%C3%28",
        "/v1/activations/%FE",
    ] {
        let method = if path.starts_with("/v1/activations") {
            reqwest::Method::GET
        } else {
            reqwest::Method::DELETE
        };
        let (status, e) = body(api.req(method, path).send().await.unwrap()).await;
        assert_eq!(status, 400, "{path}: {e}");
        assert_eq!(e["error"], "invalid path", "{path}: {e}");
        assert!(
            e["detail"].as_str().unwrap().contains("UTF-8"),
            "{path}: {e}"
        );
    }
    let (status, e) = body(
        api.req(reqwest::Method::GET, "/v1/activations")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (405, Some("method not allowed"))
    );
}

#[tokio::test]
async fn devices_release_unlock_and_the_report_log() {
    let api = Api::start(None).await;
    api.login("5401", "4829").await;
    let (status, devices) = body(
        api.req(reqwest::Method::GET, "/v1/devices")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(devices[0]["device"], "5401");
    assert_eq!(devices[0]["user"], "1001");
    assert_eq!(devices[0]["via"], "feature_code");
    assert!(devices[0]["since"].as_str().unwrap().ends_with('Z'));

    let release = || {
        api.req(reqwest::Method::DELETE, "/v1/devices/5401/login")
            .send()
    };
    assert_eq!(release().await.unwrap().status(), 204);
    assert_eq!(release().await.unwrap().status(), 404);

    let unlock = || api.req(reqwest::Method::DELETE, "/v1/lockouts/1001").send();
    assert_eq!(unlock().await.unwrap().status(), 404);
    for _ in 0..5 {
        api.login("5402", "0000").await;
    }
    let (status, locks) = body(
        api.req(reqwest::Method::GET, "/v1/lockouts")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(locks[0]["kind"], "account", "{locks}");
    assert_eq!(locks[0]["subject"], "1001", "{locks}");
    assert!(locks[0]["until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(unlock().await.unwrap().status(), 204);

    let (_, events) = body(
        api.req(reqwest::Method::GET, "/v1/events")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "login",
            "release",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "locked_out"
        ]
    );
    assert_eq!(events[1]["via"], "api");
    let first = events[0]["id"].as_str().unwrap();
    let (_, after) = body(
        api.req(reqwest::Method::GET, &format!("/v1/events?after={first}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after.as_array().unwrap().len(), kinds.len() - 1);
    assert!(!events.to_string().contains("4829"));
    assert!(!events.to_string().contains("0000"));
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let api = Api::start(None).await;
    let r = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE hotdesk_report_queue_depth gauge"),
        "{text}"
    );
    assert!(text.contains("hotdesk_logins_total 0"), "{text}");
}

/// One desk or account is one spelling: other spellings are refused with the reason, and a
/// lock is cleared by extension or by source address.
#[tokio::test]
async fn identifiers_are_canonical_and_sources_can_be_unlocked() {
    let api = Api::start(None).await;
    for path in [
        "/v1/devices/05401/login",
        "/v1/devices/+5401/login",
        "/v1/devices/%205401/login",
        "/v1/lockouts/01001",
    ] {
        let (status, error) =
            body(api.req(reqwest::Method::DELETE, path).send().await.unwrap()).await;
        assert_eq!(status, 422, "{path}: {error}");
        assert_eq!(error["error"], "invalid", "{path}: {error}");
    }
    let (status, error) = body(
        api.req(reqwest::Method::POST, "/v1/activations")
            .header("content-type", "application/json")
            .body(r#"{"device":"05401"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("must not start with 0"),
        "{error}"
    );
    // A source address (any spelling) or an IPv6 /64 is a lock subject: not locked, so 404.
    for subject in [
        "192.0.2.7",
        "::ffff:192.0.2.7",
        "2001:db8::1",
        "2001:db8::%2F64",
    ] {
        let path = format!("/v1/lockouts/{subject}");
        let status = api
            .req(reqwest::Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{path}");
    }
}
