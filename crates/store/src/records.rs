//! What the store keeps and hands out, as plain records: users, logins, locks, the reports
//! waiting for delivery, and what a CSV import did.

use std::fmt;

use hotdesk_core::model::{Report, Via};
use serde::Serialize;
use time::OffsetDateTime;

/// A user as the IVR and the admin see it (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The extension, which is also the account number keyed at a desk.
    pub extension: String,
    /// Display name (may be empty).
    pub name: String,
    /// Prompt language (`en`, `fr`, `pt-BR` …); `None`: the server default.
    pub language: Option<String>,
    /// False until a PIN is set: such a user cannot log in.
    pub has_pin: bool,
    /// When the user was added.
    #[serde(with = "hotdesk_core::model::rfc3339_millis")]
    pub created: OffsetDateTime,
}

/// What [`Directory::import_csv`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// New users.
    pub added: u32,
    /// Existing users updated.
    pub updated: u32,
    /// Lines refused, in file order; the other lines were imported.
    pub errors: Vec<ImportLineError>,
}

/// One refused CSV line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportLineError {
    /// 1-based line number in the file.
    pub line: u64,
    /// What was wrong (the field and why; never the PIN).
    pub message: String,
}

impl fmt::Display for ImportLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Who is logged in at a desk (`GET /v1/devices` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    /// The desk.
    pub device: String,
    /// The user logged in there.
    pub user: String,
    /// Since when (RFC 3339 UTC millis).
    #[serde(with = "hotdesk_core::model::rfc3339_millis")]
    pub since: OffsetDateTime,
    /// How they logged in.
    pub via: Via,
    /// The call they logged in with (not part of the API body).
    #[serde(skip)]
    pub call_id: Option<String>,
}

/// A lock in force (`GET /v1/lockouts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// `account`, `device` or `source`.
    pub kind: &'static str,
    /// The extension, or the source key.
    pub subject: String,
    /// When it ends.
    #[serde(with = "hotdesk_core::model::rfc3339_millis")]
    pub until: OffsetDateTime,
}

/// An undelivered report at the head of its device's queue, for the delivery task.
#[derive(Debug, Clone)]
pub struct Pending {
    pub seq: i64,
    pub report: Report,
    pub attempts: u32,
    pub next_attempt_ms: i64,
}
