//! SIP over UDP (RFC 3261): messages, transactions and SDP offer/answer.
//!
//! - [`message`]: framing, parsing and building messages (§7, §8, §18.3, §20); the only rsip user.
//! - [`transaction`]: the four §17 transaction machines and the layer that matches messages to
//!   them (§17.1.3, §17.2.3), sans-IO on injected time.
//! - [`sdp`]: RFC 3264 offer/answer.
//! - [`dialog`]: RFC 3261 §12 dialogs.
//! - [`uac`]: the outbound INVITE client (callback calls): auth, CANCEL on ring timeout.
//! - [`limit`]: per-source rate limits taken before a datagram is parsed.

pub mod dialog;
pub mod endpoint;
pub mod limit;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod uac;
