//! Per-call media: the pieces between the RTP session and the IVR. For now the merge of the
//! three DTMF paths (RFC 4733 events, SIP INFO, in-band tones) into one digit stream
//! (hotdesk `dtmf-conformance.md` §6 D1-D3).

pub mod dtmf;

pub use dtmf::{DigitSource, DtmfMerger, MergeConfig, MergedDigit};
