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

/// Every flow a call can run: a new flow is its file above and its line here.
pub const FLOWS: &[&FlowSpec] = &[
    &hotdesk::LOGIN,
    &hotdesk::RELEASE,
    &hotdesk::CALLBACK,
    &dtmf_test::FLOW,
];

/// The flow named `name`.
pub fn find(name: &str) -> Option<&'static FlowSpec> {
    FLOWS.iter().copied().find(|f| f.name == name)
}
