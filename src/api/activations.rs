//! `POST /v1/activations` and `GET /v1/activations/{id}`: the portal's *Activate Phone*.
//!
//! An activation rings the desk through the outbound proxy and runs the callback login there
//! (PIN only when the portal names the user). Its state follows the call:
//! `calling` → `ringing` → `answered` → `verified` | `failed` | `busy` | `no_answer` | `error`,
//! with a reason for the last four.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, Segment, extension, json_rejection};
use crate::server::{CallControl, CallUpdate, Originate, OriginateError};
use hotdesk_core::call::FlowStart;
use hotdesk_core::ivr::{Decision, FlowContext, hotdesk};

/// Activations kept for `GET` (the oldest are forgotten past this).
const KEEP: usize = 10_000;

/// Where an activation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationState {
    /// The INVITE is out.
    Calling,
    /// The desk rings.
    Ringing,
    /// Answered: the prompts run.
    Answered,
    /// The person keyed the right PIN: the desk is theirs.
    Verified,
    /// Wrong PIN(s), locked out, no input, or hung up before the end.
    Failed,
    /// The desk was busy or declined.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// The call could not be made.
    Error,
}

impl ActivationState {
    fn is_final(self) -> bool {
        !matches!(
            self,
            ActivationState::Calling | ActivationState::Ringing | ActivationState::Answered
        )
    }
}

/// One activation as `GET /v1/activations/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Activation {
    /// Its id (a ULID).
    pub id: String,
    /// The desk called.
    pub device: String,
    /// The user named by the portal, if any.
    pub user: Option<String>,
    /// Where it is.
    pub state: ActivationState,
    /// Why it ended the way it did (final states other than `verified`).
    pub reason: Option<String>,
    /// The SIP Call-ID of the callback.
    pub call_id: Option<String>,
}

/// Activations by id, and their ids oldest first (to forget the oldest).
type Table = (HashMap<String, Activation>, VecDeque<String>);

/// All activations, shared by the handlers and the tasks that follow the calls.
#[derive(Debug, Clone, Default)]
pub struct Activations {
    inner: Arc<Mutex<Table>>,
}

impl Activations {
    /// The activation `id`.
    pub fn get(&self, id: &str) -> Option<Activation> {
        self.lock().0.get(id).cloned()
    }

    fn insert(&self, activation: Activation) {
        let mut guard = self.lock();
        let (map, order) = &mut *guard;
        order.push_back(activation.id.clone());
        map.insert(activation.id.clone(), activation);
        if order.len() > KEEP
            && let Some(old) = order.pop_front()
        {
            map.remove(&old);
        }
    }

    /// Moves `id` to `state` unless it is already final.
    fn set(&self, id: &str, state: ActivationState, reason: Option<String>) -> bool {
        let mut guard = self.lock();
        match guard.0.get_mut(id) {
            Some(a) if !a.state.is_final() => {
                a.state = state;
                a.reason = reason;
                true
            }
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A handler that panicked mid-update leaves consistent data (each update is one
        // assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The body of `POST /v1/activations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    device: String,
    #[serde(default)]
    user: Option<String>,
}

pub(super) async fn create(
    State(state): State<ApiState>,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    extension("device", &body.device)?;
    if let Some(user) = &body.user {
        extension("user", user)?;
        if state.directory.user(user).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown user",
                format!("user {user} is not in the directory"),
            ));
        }
    }
    if !state.config.is_device(&body.device) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a hot-desk phone",
            format!(
                "device {} is outside features.device_range {}",
                body.device, state.config.config.features.device_range
            ),
        ));
    }
    let flow = FlowStart {
        spec: &hotdesk::CALLBACK,
        ctx: FlowContext {
            device: body.device.clone(),
            is_desk: true,
            user: body.user.clone(),
            settings: state.config.flow_settings(),
        },
        // We place the call: no outside address asks for this login.
        source: None,
    };
    let control = state
        .server
        .originate(Originate {
            device: body.device.clone(),
            flow,
            ring_timeout: Duration::from_secs(state.config.config.ivr.ring_timeout_s),
        })
        .await
        .map_err(|e| match e {
            OriginateError::Capacity(_) | OriginateError::Stopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot call",
                other.to_string(),
            ),
        })?;
    let id = ulid::Ulid::new().to_string();
    let activation = Activation {
        id: id.clone(),
        device: body.device,
        user: body.user,
        state: ActivationState::Calling,
        reason: None,
        call_id: Some(control.call_id.clone()),
    };
    tracing::info!(
        id,
        device = activation.device,
        call_id = control.call_id,
        "activation"
    );
    state.activations.insert(activation);
    tokio::spawn(follow(state.clone(), id.clone(), control));
    let location = format!("/v1/activations/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(serde_json::json!({"id": id, "state": "calling"})),
    )
        .into_response())
}

pub(super) async fn get(
    State(state): State<ApiState>,
    Segment(id): Segment,
) -> Result<Response, ApiError> {
    state
        .activations
        .get(&id)
        .map(|a| Json(a).into_response())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not found",
                format!("no activation {id}"),
            )
        })
}

/// Follows the call's updates into the activation's state.
async fn follow(state: ApiState, id: String, mut control: CallControl) {
    while let Some(update) = control.updates.recv().await {
        let Some((next, reason)) = transition(&update) else {
            continue;
        };
        if state.activations.set(&id, next, reason) && next.is_final() {
            state
                .metrics
                .activation(&format!("{next:?}").to_lowercase());
            tracing::info!(id, state = ?next, "activation over");
        }
    }
    // The call task is gone: whatever was not decided failed.
    state.activations.set(
        &id,
        ActivationState::Failed,
        Some("the call ended before a decision".into()),
    );
}

fn transition(update: &CallUpdate) -> Option<(ActivationState, Option<String>)> {
    use ActivationState as S;
    Some(match update {
        CallUpdate::Ringing { .. } => (S::Ringing, None),
        CallUpdate::Answered => (S::Answered, None),
        CallUpdate::Busy { code } => (S::Busy, Some(format!("{code}"))),
        CallUpdate::NoAnswer => (S::NoAnswer, Some("no answer within the ring time".into())),
        CallUpdate::Cancelled => (S::Error, Some("cancelled".into())),
        CallUpdate::Failed { code, reason } => (S::Error, Some(format!("{code} {reason}"))),
        CallUpdate::Decision(decision) => match decision {
            Decision::Verified { .. } => (S::Verified, None),
            Decision::Failed => (S::Failed, Some("wrong account or PIN".into())),
            Decision::LockedOut => (S::Failed, Some("locked out".into())),
            Decision::NoInput => (S::Failed, Some("no input".into())),
            Decision::NotADesk => (S::Failed, Some("not a hot-desk phone".into())),
            Decision::Released { .. } => return None,
            Decision::Error => (S::Error, Some("directory unavailable".into())),
        },
        CallUpdate::Ended(_) => (S::Failed, Some("hung up before a decision".into())),
        _ => return None,
    })
}
