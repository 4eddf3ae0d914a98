//! A store as the flows see it ([`FlowServices`]): a store error becomes [`Unavailable`],
//! logged here with the desk, so the caller hears "try again later".

use std::sync::Arc;

use hotdesk_core::ivr::executor::{BoxFuture, FlowServices};
use hotdesk_core::model::{LoginAttempt, LoginOutcome, Release, Unavailable};

use crate::Store;

/// Any [`Store`] answering the flows' questions.
#[derive(Debug, Clone)]
pub struct StoreFlows(pub Arc<dyn Store>);

impl FlowServices for StoreFlows {
    fn login(&self, a: LoginAttempt) -> BoxFuture<'_, Result<LoginOutcome, Unavailable>> {
        Box::pin(async move {
            self.0.login(&a).await.map_err(|e| {
                tracing::error!(device = a.device, "login not verified: {e}");
                Unavailable
            })
        })
    }

    fn release(&self, r: Release) -> BoxFuture<'_, Result<Option<String>, Unavailable>> {
        Box::pin(async move {
            self.0
                .release(&r.device, r.via, r.call_id.as_deref())
                .await
                .map_err(|e| {
                    tracing::error!(device = r.device, "release failed: {e}");
                    Unavailable
                })
        })
    }
}
