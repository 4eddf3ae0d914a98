//! The IVR: digit collection (play-and-get-digits) and the call flows built on it. Sans-IO:
//! keys and prompt events in, with the time they happened; actions out.
//!
//! - [`flow`]: the [`flow::Flow`] trait every flow implements and the table of flows;
//! - [`executor`]: carries out a flow's questions for the directory, for every driver alike;
//! - [`collect`], play-and-get-digits;
//! - [`hotdesk`]: `*88`, `*89` and the callback login; [`dtmf_test`]: `*97`.

pub mod collect;
pub mod dtmf_test;
pub mod executor;
pub mod flow;
pub mod hotdesk;

pub use flow::{Ask, Decision, Flow, FlowAction, FlowContext, FlowSettings, FlowSpec};
