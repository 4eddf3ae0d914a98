//! The IVR: digit collection (play-and-get-digits) and the call flows built on it. Sans-IO:
//! keys and prompt events in, with the time they happened; actions out.

pub mod collect;
pub mod dtmf_test;
pub mod hotdesk;

/// What a flow asks the call to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowAction {
    /// Play these prompts, in order, from the start.
    Play(Vec<String>),
    /// Stop the prompt now.
    StopPrompt,
    /// End the call (BYE).
    Hangup,
}
