//! The SQLite directory behind the [`Store`] and [`Outbox`] traits: each method is the
//! directory's own.

use std::time::Duration;

use hotdesk_core::model::{LoginAttempt, LoginOutcome, Report, Via};
use secrecy::SecretString;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::Directory;
use crate::error::DirectoryError;
use crate::lockout::LockoutPolicy;
use crate::records::{ImportReport, Lock, Login, Pending, User};
use crate::store::{Outbox, Store};

#[async_trait::async_trait]
impl Store for Directory {
    async fn login_at(
        &self,
        attempt: &LoginAttempt,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, DirectoryError> {
        Directory::login_at(self, attempt, now).await
    }
    async fn release(
        &self,
        device: &str,
        via: Via,
        call_id: Option<&str>,
    ) -> Result<Option<String>, DirectoryError> {
        Directory::release(self, device, via, call_id).await
    }
    async fn logins(&self) -> Result<Vec<Login>, DirectoryError> {
        Directory::logins(self).await
    }
    async fn unlock(&self, subject: &str) -> Result<bool, DirectoryError> {
        Directory::unlock(self, subject).await
    }
    async fn lockouts_at(&self, now: OffsetDateTime) -> Result<Vec<Lock>, DirectoryError> {
        Directory::lockouts_at(self, now).await
    }
    async fn events_after(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Report>, DirectoryError> {
        Directory::events_after(self, after, limit).await
    }
    async fn add_user(
        &self,
        extension: &str,
        name: Option<&str>,
        language: Option<&str>,
    ) -> Result<User, DirectoryError> {
        Directory::add_user(self, extension, name, language).await
    }
    async fn set_pin(&self, extension: &str, pin: &SecretString) -> Result<(), DirectoryError> {
        Directory::set_pin(self, extension, pin).await
    }
    async fn remove_user(&self, extension: &str) -> Result<bool, DirectoryError> {
        Directory::remove_user(self, extension).await
    }
    async fn list_users(&self) -> Result<Vec<User>, DirectoryError> {
        Directory::list_users(self).await
    }
    async fn user(&self, extension: &str) -> Result<Option<User>, DirectoryError> {
        Directory::user(self, extension).await
    }
    async fn import_csv(&self, csv: &[u8]) -> Result<ImportReport, DirectoryError> {
        Directory::import_csv(self, csv).await
    }
    async fn probe(&self) -> Result<(), DirectoryError> {
        Directory::probe(self).await
    }
    async fn prune_at(
        &self,
        now: OffsetDateTime,
        retention: Option<Duration>,
    ) -> Result<u64, DirectoryError> {
        Directory::prune_at(self, now, retention).await
    }
    fn policy(&self) -> LockoutPolicy {
        Directory::policy(self)
    }
    async fn close(&self) {
        Directory::close(self).await;
    }
}

#[async_trait::async_trait]
impl Outbox for Directory {
    async fn heads(&self) -> Result<Vec<Pending>, DirectoryError> {
        self.outbox_heads().await
    }
    async fn mark_delivered(&self, seq: i64, at_ms: i64) -> Result<(), DirectoryError> {
        Directory::mark_delivered(self, seq, at_ms).await
    }
    async fn mark_failed(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), DirectoryError> {
        Directory::mark_failed(self, seq, attempts, next_attempt_ms, error).await
    }
    async fn queue_depth(&self) -> Result<u64, DirectoryError> {
        Directory::queue_depth(self).await
    }
    fn written(&self) -> &Notify {
        self.outbox_notify()
    }
}
