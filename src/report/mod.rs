//! Reports to the call-control layer (contract §5): the report body, its HMAC-SHA256
//! signature, and the webhook delivery task ([`delivery`]).
//!
//! Reports are not sent from where they happen. The directory writes each one to its outbox
//! table in the same transaction as the state change it reports, and the delivery task posts
//! the outbox in order per device until the receiver answers 2xx. So a report exists if and
//! only if the change does, survives a crash or restart, and is delivered at least once; the
//! `id` (a ULID) lets the receiver drop a duplicate. A report never carries a PIN: there is no
//! field for one.

pub mod delivery;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::directory::Via;
pub use delivery::{Delivery, DeliveryError, install_crypto_provider, spawn};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A user logged in at a desk (`previous_user`: whom they replaced there).
    Login,
    /// A desk went back to its owner (`*89`, the portal, or the user logging in elsewhere).
    Release,
    /// A wrong account or PIN (`user`: the account keyed, which may not exist).
    LoginFailed,
    /// An account (`user` set) or a desk (`user` null) was locked after too many failures.
    LockedOut,
    /// A source address was blocked after too many failures from it (`source` says which;
    /// `device` is the desk of the attempt that tripped it).
    SourceBlocked,
}

impl Event {
    /// The wire name (`login`, `release`, `login_failed`, `locked_out`).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Login => "login",
            Event::Release => "release",
            Event::LoginFailed => "login_failed",
            Event::LockedOut => "locked_out",
            Event::SourceBlocked => "source_blocked",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Event> {
        [
            Event::Login,
            Event::Release,
            Event::LoginFailed,
            Event::LockedOut,
            Event::SourceBlocked,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// One report: exactly the webhook body of contract §5, field for field and in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// ULID: unique, and what a receiver de-duplicates on.
    pub id: String,
    /// What happened.
    pub event: Event,
    /// The desk phone's extension.
    pub device: String,
    /// The user (account) concerned; null for a desk lockout.
    pub user: Option<String>,
    /// For `login`: the user this login replaced at the desk.
    pub previous_user: Option<String>,
    /// What triggered it.
    pub via: Via,
    /// The SIP Call-ID of the call it happened in; null for API actions.
    pub call_id: Option<String>,
    /// When, RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.123Z`).
    #[serde(with = "rfc3339_millis")]
    pub at: OffsetDateTime,
    /// For `source_blocked` only (absent from every other report): the blocked source, an
    /// IPv4 address or an IPv6 /64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Report {
    /// The JSON body, exactly the bytes that are signed and sent.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a report always serialises")
    }
}

/// How reports are signed (`report.signature`).
///
/// `v1` is the scheme Stripe and Slack use: the signed text starts with the time of sending,
/// so a receiver that refuses a time more than a few minutes off its clock cannot be fed a
/// captured request again later. `legacy` signs the body alone, which can be replayed for ever;
/// it is kept for one release so receivers can move over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureScheme {
    /// `t=UNIX,v1=HEX` with HEX = HMAC-SHA256(secret, `UNIX` `.` body).
    #[default]
    V1,
    /// `sha256=HEX` with HEX = HMAC-SHA256(secret, body).
    Legacy,
}

impl SignatureScheme {
    /// The `X-Hotdesk-Signature` value for `body`, sent at `unix_time` (seconds).
    pub fn sign(self, secret: &[u8], body: &[u8], unix_time: i64) -> String {
        match self {
            SignatureScheme::V1 => sign_v1(secret, body, unix_time),
            SignatureScheme::Legacy => sign(secret, body),
        }
    }
}

fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`: the legacy `X-Hotdesk-Signature`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, &[body]))
}

/// `t=<unix_time>,v1=<lowercase hex HMAC-SHA256(secret, "<unix_time>." body)>`.
pub fn sign_v1(secret: &[u8], body: &[u8], unix_time: i64) -> String {
    let t = unix_time.to_string();
    let mac = hmac_hex(secret, &[t.as_bytes(), b".", body]);
    format!("t={t},v1={mac}")
}

/// Formats a time as the reports and the API show it: RFC 3339, UTC, milliseconds, `Z`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(rfc3339_millis::FORMAT)
        .expect("every UTC time in years 0-9999 formats")
}

/// Serde for [`format_time`]'s format (parsing accepts any RFC 3339 time).
pub mod rfc3339_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::BorrowedFormatItem;
    use time::macros::format_description;

    pub(crate) const FORMAT: &[BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

    /// Serialises as `2026-11-22T10:00:00.123Z`.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    /// Parses any RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map_err(serde::de::Error::custom)
    }
}
