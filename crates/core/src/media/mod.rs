//! Per-call media: the pieces between the RTP session and the IVR. `dtmf` merges the three
//! DTMF paths (RFC 4733 events, SIP INFO, in-band tones) into one digit stream
//! (`dtmf-conformance.md` §6 D1-D3); `session` is one call's RTP in and out around it.

pub mod dtmf;
pub mod session;

pub use dtmf::{DigitSource, DtmfMerger, MergeConfig, MergedDigit};

/// Which DTMF paths a call listens to (`rtp.dtmf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMode {
    /// Every path at once, de-duplicated.
    Auto,
    /// RFC 4733 telephone-events only.
    Rfc4733,
    /// In-band tones only.
    Inband,
    /// SIP INFO only.
    Info,
}
