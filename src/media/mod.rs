//! Per-call media: the pieces between the RTP session and the IVR. `dtmf` merges the three
//! DTMF paths (RFC 4733 events, SIP INFO, in-band tones) into one digit stream
//! (`dtmf-conformance.md` §6 D1-D3); `session` is one call's RTP in and out around it.

pub mod dtmf;
pub mod session;

pub use dtmf::{DigitSource, DtmfMerger, MergeConfig, MergedDigit};
