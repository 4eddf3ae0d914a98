//! What the flows, the store and the reports share: how a login or release came about
//! ([`Via`]), a login attempt and its outcome, what a flow asks of the directory and what it
//! is told, and the report a change writes (contract §5). Plain data, no I/O.

use std::net::IpAddr;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What triggered a login or release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// `*88` / `*89` dialled on the desk phone.
    FeatureCode,
    /// The portal's *Activate Phone*: we called the desk.
    Callback,
    /// The HTTP API or the command line, without a call.
    Api,
}

impl Via {
    /// The wire name (`feature_code`, `callback`, `api`).
    pub fn as_str(self) -> &'static str {
        match self {
            Via::FeatureCode => "feature_code",
            Via::Callback => "callback",
            Via::Api => "api",
        }
    }

    /// The value of a wire name.
    pub fn parse(s: &str) -> Option<Via> {
        [Via::FeatureCode, Via::Callback, Via::Api]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

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

    /// The value of a wire name.
    pub fn parse(s: &str) -> Option<Event> {
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

/// One login attempt: a desk, the account and PIN keyed, and where it came from. The one
/// attempt type from the flow that asks to the store that answers.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    /// The desk phone's extension.
    pub device: String,
    /// What the caller keyed as the account; kept nowhere unless it is a user's extension.
    pub account: String,
    /// The PIN keyed.
    pub pin: SecretString,
    /// How the attempt was made.
    pub via: Via,
    /// The SIP Call-ID it was made in, if any.
    pub call_id: Option<String>,
    /// Where it came from, when per-source limits apply to it; `None` for attempts no outside
    /// address made (a callback we placed) or whose address is exempt
    /// (`security.source_exempt`, e.g. the proxy every call comes through).
    pub source: Option<IpAddr>,
}

/// What the store says to a [`LoginAttempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in.
    Accepted {
        /// The account now logged in.
        user: String,
        /// Who held this desk before and was replaced.
        previous_user: Option<String>,
        /// The other desk the user was logged in at, released by this login.
        released_from: Option<String>,
    },
    /// Wrong account or wrong PIN (deliberately not told apart).
    Incorrect,
    /// The account, the desk or the source is locked (perhaps by this very attempt) until then.
    LockedOut {
        /// When the lock ends.
        until: OffsetDateTime,
    },
}

/// A desk to give back to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The desk.
    pub device: String,
    /// How the release came about.
    pub via: Via,
    /// The SIP Call-ID it came in, if any.
    pub call_id: Option<String>,
}

/// What a call's flow needs the directory to do.
#[derive(Debug)]
pub enum Query {
    /// Verify a PIN and log the desk in if it matches.
    Login(LoginAttempt),
    /// Give a desk back to its owner.
    Release(Release),
}

/// The directory could not answer (the store is down); the caller hears "try again later".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the directory is unavailable")]
pub struct Unavailable;

/// The directory's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// To [`Query::Login`].
    Login(Result<LoginOutcome, Unavailable>),
    /// To [`Query::Release`]: who was logged in there, if anyone.
    Released(Result<Option<String>, Unavailable>),
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
