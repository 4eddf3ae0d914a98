//! The seam between hotdesk and where its directory lives: [`Store`] for users, logins,
//! lockouts and the report log, [`Outbox`] for webhook delivery. The API, the command line,
//! delivery and `replay` hold these traits, never a database type; SQLite
//! ([`crate::Directory`]) implements both today, and a second back end is a second
//! implementation with the same semantics (the directory's tests state them).

use async_trait::async_trait;
use hotdesk_core::model::{LoginAttempt, LoginOutcome, Report, Via};
use secrecy::SecretString;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::error::DirectoryError;
use crate::lockout::LockoutPolicy;
use crate::records::{ImportReport, Lock, Login, Pending, User};

/// Users, PINs, logins, lockouts and the report log.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// A login attempt at `now` (see the directory's semantics).
    async fn login_at(
        &self,
        attempt: &LoginAttempt,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, DirectoryError>;
    /// A login attempt now.
    async fn login(&self, attempt: &LoginAttempt) -> Result<LoginOutcome, DirectoryError> {
        self.login_at(attempt, crate::directory::now()).await
    }
    /// Releases a desk; who was logged in there, if anyone.
    async fn release(
        &self,
        device: &str,
        via: Via,
        call_id: Option<&str>,
    ) -> Result<Option<String>, DirectoryError>;
    /// Every current login, by desk.
    async fn logins(&self) -> Result<Vec<Login>, DirectoryError>;
    /// Clears the lock of an account, a desk or a source; true when one was in force.
    async fn unlock(&self, subject: &str) -> Result<bool, DirectoryError>;
    /// Every lock in force at `now`.
    async fn lockouts_at(&self, now: OffsetDateTime) -> Result<Vec<Lock>, DirectoryError>;
    /// The source keys blocked at `now`, with when each block ends.
    async fn blocked_sources_at(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime)>, DirectoryError> {
        Ok(self
            .lockouts_at(now)
            .await?
            .into_iter()
            .filter(|l| l.kind == crate::lockout::LockKind::Source.as_str())
            .map(|l| (l.subject, l.until))
            .collect())
    }
    /// The report log after the report `after`, oldest first, at most `limit`.
    async fn events_after(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Report>, DirectoryError>;
    /// Adds a user without a PIN.
    async fn add_user(
        &self,
        extension: &str,
        name: Option<&str>,
        language: Option<&str>,
    ) -> Result<User, DirectoryError>;
    /// Sets a user's PIN (the PIN policy applies).
    async fn set_pin(&self, extension: &str, pin: &SecretString) -> Result<(), DirectoryError>;
    /// Removes a user (releasing their desk); false when there was none.
    async fn remove_user(&self, extension: &str) -> Result<bool, DirectoryError>;
    /// Every user, by extension.
    async fn list_users(&self) -> Result<Vec<User>, DirectoryError>;
    /// One user.
    async fn user(&self, extension: &str) -> Result<Option<User>, DirectoryError>;
    /// Adds or updates users from CSV text (`extension,name,pin[,language]`).
    async fn import_csv(&self, csv: &[u8]) -> Result<ImportReport, DirectoryError>;
    /// Writes one row: `Err` when the store cannot take a login now.
    async fn probe(&self) -> Result<(), DirectoryError>;
    /// Deletes what nobody needs any more at `now`; the reports deleted.
    async fn prune_at(
        &self,
        now: OffsetDateTime,
        retention: Option<std::time::Duration>,
    ) -> Result<u64, DirectoryError>;
    /// The lockout policy in force.
    fn policy(&self) -> LockoutPolicy;
    /// Closes the store (waits for its connections).
    async fn close(&self);
}

/// The reports waiting for the webhook, for the delivery task.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// The oldest undelivered report of every desk, oldest first.
    async fn heads(&self) -> Result<Vec<Pending>, DirectoryError>;
    /// A report was acknowledged with a 2xx.
    async fn mark_delivered(&self, seq: i64, at_ms: i64) -> Result<(), DirectoryError>;
    /// A delivery attempt failed; when to try again.
    async fn mark_failed(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), DirectoryError>;
    /// Reports not yet delivered.
    async fn queue_depth(&self) -> Result<u64, DirectoryError>;
    /// Woken whenever a report is written.
    fn written(&self) -> &Notify;
}
