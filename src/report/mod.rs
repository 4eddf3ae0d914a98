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
use serde::Deserialize;

pub use delivery::{Delivery, DeliveryError, install_crypto_provider, spawn};
pub use hotdesk_core::model::{Event, Report, Via, format_time, rfc3339_millis};

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
