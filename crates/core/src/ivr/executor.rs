//! Carries out what a flow asks of the directory, for every driver of a call alike: the
//! server's call task, `replay` and the tests hand [`execute`] the call's
//! [`Query`] and give the [`Answer`] back to the call.
//!
//! The directory is behind [`FlowServices`], so this crate needs no store: the store crate
//! implements it, and a driver can wrap it (the server counts outcomes for its metrics).

use std::future::Future;
use std::pin::Pin;

use crate::model::{Answer, LoginAttempt, LoginOutcome, Query, Release, Unavailable};

/// A boxed future (the trait is used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the flows need from the directory.
pub trait FlowServices: Send + Sync {
    /// Verifies the attempt and, when it is right, logs the desk in (with its reports).
    fn login(&self, attempt: LoginAttempt) -> BoxFuture<'_, Result<LoginOutcome, Unavailable>>;
    /// Releases a desk to its owner; `Ok(user)` names who was logged in.
    fn release(&self, release: Release) -> BoxFuture<'_, Result<Option<String>, Unavailable>>;
}

/// Asks `services` what `request` asks and returns the call's answer.
pub async fn execute(services: &dyn FlowServices, request: Query) -> Answer {
    match request {
        Query::Login(attempt) => Answer::Login(services.login(attempt).await),
        Query::Release(release) => Answer::Released(services.release(release).await),
    }
}

/// No directory at all: every question is answered "unavailable" (a server run without a
/// store still answers `*97`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDirectory;

impl FlowServices for NoDirectory {
    fn login(&self, _: LoginAttempt) -> BoxFuture<'_, Result<LoginOutcome, Unavailable>> {
        Box::pin(async { Err(Unavailable) })
    }

    fn release(&self, _: Release) -> BoxFuture<'_, Result<Option<String>, Unavailable>> {
        Box::pin(async { Err(Unavailable) })
    }
}
