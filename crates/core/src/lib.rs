//! hotdesk's sans-IO core: everything a call is, with no sockets, no clock and no async
//! runtime in it or in its dependency tree.
//!
//! Every machine has the same verbs (the str0m and quinn-proto shape): `handle_*(now, input)`
//! for a datagram, samples, a key or a command; `poll_*` for what to send and what happened;
//! `poll_timeout` / `handle_timeout` for time, which only ever comes in as a parameter. That
//! is what lets `replay` run a call from a recording in milliseconds and keeps the tests exact.
//!
//! - [`dsp`]: G.711, the DTMF detector, the tone generator; [`audio`]: decoding audio files
//!   to 8 kHz for the detector and the prompts.
//! - [`rtp`]: packets, RFC 4733 events, the paced sender and reordering receiver, strict RTP.
//! - [`sip`]: messages, RFC 3261 transactions and dialogs, SDP offer/answer, the endpoint
//!   that answers before a call exists, the outbound INVITE client, per-source rate limits.
//! - [`media`]: one call's media (RTP in and out, every DTMF path merged into one).
//! - [`prompts`]: the prompt catalog and the decoded clips a call plays.
//! - [`ivr`]: digit collection, the flows (`*88`, `*89`, callback, `*97`) behind one trait,
//!   and the executor that answers their questions for every driver.
//! - [`call`]: one call, sans-IO: dialog + media + flow.
//! - [`model`]: what the flows, the store and the reports share; [`identity`]: extensions
//!   and source addresses in one spelling.
//! - `sim` (feature `test-util`): the virtual-time harness `replay` and the tests drive calls
//!   with.

pub mod audio;
pub mod call;
pub mod dsp;
pub mod identity;
pub mod ivr;
pub mod media;
pub mod model;
pub mod prompts;
pub mod rtp;
#[cfg(feature = "test-util")]
pub mod sim;
pub mod sip;
