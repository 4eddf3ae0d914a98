//! hotdesk: an IVR and DTMF voice-prompt engine for phone hot desking.
//!
//! The crate is a sans-IO core (`dsp`, and the protocol and flow machines that build on it)
//! with a thin command-line shell in `main.rs`. See the README for the commands.

pub mod api;
pub mod audio;
pub mod call;
pub mod config;
pub mod conformance;
pub mod directory;
pub mod dsp;
pub mod ivr;
pub mod media;
pub mod metrics;
pub mod plot;
pub mod prompts;
pub mod qa;
mod qa_flow;
pub mod realworld;
pub mod replay;
pub mod report;
pub mod rtp;
pub mod server;
pub mod service;
pub mod sip;
