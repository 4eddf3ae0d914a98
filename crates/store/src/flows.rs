//! The directory as the flows see it ([`FlowServices`]): a store error becomes
//! [`Unavailable`], logged here with the desk, so the caller hears "try again later".

use hotdesk_core::ivr::executor::{BoxFuture, FlowServices};
use hotdesk_core::model::{LoginAttempt, LoginOutcome, Release, Unavailable};

use crate::Directory;

impl FlowServices for Directory {
    fn login(&self, a: LoginAttempt) -> BoxFuture<'_, Result<LoginOutcome, Unavailable>> {
        Box::pin(async move {
            self.login(&a).await.map_err(|e| {
                tracing::error!(device = a.device, "login not verified: {e}");
                Unavailable
            })
        })
    }

    fn release(&self, r: Release) -> BoxFuture<'_, Result<Option<String>, Unavailable>> {
        Box::pin(async move {
            self.release(&r.device, r.via, r.call_id.as_deref())
                .await
                .map_err(|e| {
                    tracing::error!(device = r.device, "release failed: {e}");
                    Unavailable
                })
        })
    }
}
