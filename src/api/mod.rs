//! The HTTP API (`contract.md` §4), axum: the portal's *Activate Phone*, who is logged in
//! where, releasing a desk, unlocking an account, the report log, and health, readiness and
//! Prometheus metrics.
//!
//! `/v1/*` needs `Authorization: Bearer TOKEN` when a token is configured (it must be when the
//! API listens off loopback; the configuration refuses to start otherwise), compared in
//! constant time. Errors are `{"error": …, "detail": …}`; a body that is not JSON or lacks a
//! field gets 400/422 naming it; bodies over 64 KiB are refused with 413.

mod activations;
mod serve;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

pub use activations::{Activation, ActivationState, Activations};
pub use serve::{ServeLimits, serve};

use crate::config::Validated;
use crate::metrics::Metrics;
use crate::server::ServerHandle;
use hotdesk_core::identity::{Extension, SourceKey};
use hotdesk_store::directory::Via;
use hotdesk_store::{Outbox, Store};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Users, logins, lockouts, reports.
    pub directory: Arc<dyn Store>,
    /// The reports waiting for the webhook (the queue-depth gauge).
    pub outbox: Arc<dyn Outbox>,
    /// The media server (places callback calls, tells whether it drains).
    pub server: ServerHandle,
    /// Callback activations in progress and done.
    pub activations: Activations,
    /// Counters and gauges.
    pub metrics: Arc<Metrics>,
    /// The bearer token, when one is configured.
    pub token: Option<Arc<SecretString>>,
    /// The configuration (device range, flow settings).
    pub config: Arc<Validated>,
}

/// An API error: status, a short error and the detail naming what was wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "detail": self.detail });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<hotdesk_store::directory::DirectoryError> for ApiError {
    fn from(e: hotdesk_store::directory::DirectoryError) -> ApiError {
        if e.is_bad_input() {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
        } else {
            tracing::error!("directory: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable",
                "the directory cannot be reached; try again",
            )
        }
    }
}

/// A JSON body that failed to parse: 400 for broken JSON, 422 for a missing or mistyped field
/// (serde's message names it), 415 without a JSON content type, 413 when too large.
fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid body", detail)
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            "send Content-Type: application/json",
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large",
            format!("at most {BODY_LIMIT} bytes"),
        ),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid JSON", detail),
    }
}

/// The router with every route of contract §4.
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/v1/activations", post(activations::create))
        .route("/v1/activations/{id}", get(activations::get))
        .route("/v1/devices", get(devices))
        .route("/v1/devices/{device}/login", delete(release))
        .route("/v1/lockouts", get(lockouts))
        .route("/v1/lockouts/{subject}", delete(unlock))
        .route("/v1/events", get(events))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .merge(v1)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn authorize(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = token.expose_secret().as_bytes();
    if bool::from(given.as_bytes().ct_eq(expected)) {
        next.run(request).await
    } else {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer TOKEN",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("literal"));
        response
    }
}

async fn ready(State(state): State<ApiState>) -> Response {
    let reason = if state.server.is_draining() {
        Some("draining".to_owned())
    } else {
        state.server.unavailable()
    };
    match reason {
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "reason": reason})),
        )
            .into_response(),
        None => axum::Json(json!({"ready": true})).into_response(),
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    match state.outbox.queue_depth().await {
        Ok(depth) => {
            state.metrics.report_queue.set(depth as i64);
        }
        Err(e) => tracing::warn!("report queue depth: {e}"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn devices(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let logins = state.directory.logins().await?;
    Ok(axum::Json(logins).into_response())
}

/// A path segment. axum's own rejection (a segment that is not UTF-8 once percent-decoded) is
/// plain text; the contract promises JSON errors (found by the `api_body` fuzzer).
pub(crate) struct Segment(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Segment, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(segment)| Segment(segment))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid path", e.body_text()))
    }
}

/// An extension in a path or body, canonical ([`Extension`]): one desk or account is one
/// spelling everywhere, so that no limit can be dodged by writing `05401`.
fn extension(name: &'static str, value: &str) -> Result<(), ApiError> {
    Extension::parse(value).map(drop).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{name} {e}"),
        )
    })
}

async fn release(
    State(state): State<ApiState>,
    Segment(device): Segment,
) -> Result<Response, ApiError> {
    extension("device", &device)?;
    match state.directory.release(&device, Via::Api, None).await? {
        Some(user) => {
            tracing::info!(device, user, "released by the API");
            state.metrics.releases.inc();
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not logged in",
            format!("nobody is logged in at {device}"),
        )),
    }
}

/// Every lock in force: accounts, desks and blocked sources, with when each ends.
async fn lockouts(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let locks = state
        .directory
        .lockouts_at(hotdesk_store::directory::now())
        .await?;
    Ok(axum::Json(locks).into_response())
}

/// Clears the lock of an account or desk (an extension), or the block of a source (an IP
/// address, or an IPv6 /64).
async fn unlock(
    State(state): State<ApiState>,
    Segment(subject): Segment,
) -> Result<Response, ApiError> {
    if Extension::parse(&subject).is_err() && SourceKey::parse(&subject).is_err() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{subject:?} is neither an extension nor an IP address or IPv6 /64"),
        ));
    }
    if state.directory.unlock(&subject).await? {
        tracing::info!(subject, "unlocked by the API");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not locked",
            format!("{subject} is not locked out"),
        ))
    }
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<String>,
    limit: Option<u32>,
}

async fn events(
    State(state): State<ApiState>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid query", e.body_text()))?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let reports = state
        .directory
        .events_after(query.after.as_deref(), limit)
        .await?;
    Ok(axum::Json(reports).into_response())
}
