//! One fixture of a suite's manifest (`fixtures/<suite>/manifest.toml`): the file, what it
//! must decode to, and where it comes from.

use serde::{Deserialize, Serialize};

/// One `[[fixture]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Path relative to the suite folder.
    pub file: String,
    /// The digits the file must decode to ("" for talk-off).
    pub expect: String,
    /// For material beyond the standards: how many expected digits may be missed (in order,
    /// never an extra digit). Zero unless stated.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_missing: usize,
    /// What kind of material it is.
    pub kind: FixtureKind,
    /// `flow` fixtures: which flow (`login`, `release`, `callback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// `flow` fixtures: the desk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `flow` fixtures: the user a callback names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `flow` fixtures: the outcome (`verified`, `failed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Where it comes from.
    pub source: String,
    /// Its licence.
    pub licence: String,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// Kinds of fixture this runner understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixtureKind {
    /// In-band DTMF audio with a digit label.
    Dtmf,
    /// Speech, music or tones that must not produce a digit.
    Talkoff,
    /// A packet capture whose RFC 4733 telephone-events must decode to exactly `expect`.
    Rtp,
    /// A whole call's caller side, replayed through the IVR against the suite's `users.csv`:
    /// the keys taken (PIN masked) must be `expect` and the decision `outcome`.
    Flow,
}
