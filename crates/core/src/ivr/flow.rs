//! What every IVR flow is to the call that runs it, and the table of flows a call can run.
//!
//! A flow is a sans-IO machine like the others: keys, prompt ends, time and the directory's
//! answers go in; prompts to play, "hang up", questions for the directory ([`Ask`]) and its
//! [`Decision`] come out as [`FlowAction`]s. The call turns an [`Ask`] into a
//! [`crate::model::Query`] (adding the desk, the Call-ID, the source, how the call came
//! about), and whoever drives the call (the server's call task, `replay`, the tests) has it
//! carried out by [`crate::ivr::executor::execute`] and hands the [`Answer`] back. So a flow
//! never knows how users are stored, and one executor serves every driver.
//!
//! A new flow is one file with a [`FlowSpec`], plus its line in [`super::FLOWS`].

use std::fmt::Debug;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::model::{Answer, Via};

/// What a flow asks the call to do.
#[derive(Debug)]
pub enum FlowAction {
    /// Play these prompts, in order, from the start.
    Play(Vec<String>),
    /// Stop the prompt now.
    StopPrompt,
    /// End the call (BYE).
    Hangup,
    /// Ask the directory; the answer comes back through [`Flow::handle_answer`].
    Ask(Ask),
    /// The flow reached its decision (once).
    Decided(Decision),
}

/// A question for the directory, as the flow knows it (the call adds the rest).
#[derive(Debug)]
pub enum Ask {
    /// Verify `pin` for `account` and log the desk in if it matches.
    Login {
        /// What was keyed as the account (or the user an activation named).
        account: String,
        /// The PIN keyed.
        pin: SecretString,
    },
    /// Give the desk back to its owner.
    Release,
}

/// How a flow ended, for the call's report, the activation's state and the QA transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Logged in.
    Verified {
        /// Who.
        user: String,
    },
    /// Every attempt was wrong.
    Failed,
    /// Locked out.
    LockedOut,
    /// The desk was released (`user`: who was logged in, if anyone).
    Released {
        /// The user released.
        user: Option<String>,
    },
    /// The caller keyed nothing usable.
    NoInput,
    /// The calling phone is not a hot-desk phone.
    NotADesk,
    /// The directory failed.
    Error,
}

impl Decision {
    /// The short name (the activation state words of contract §4).
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Verified { .. } => "verified",
            Decision::Failed => "failed",
            Decision::LockedOut => "locked_out",
            Decision::Released { .. } => "released",
            Decision::NoInput => "no_input",
            Decision::NotADesk => "not_a_desk",
            Decision::Error => "error",
        }
    }
}

/// One running flow.
pub trait Flow: Debug + Send {
    /// A key from any DTMF path.
    fn handle_digit(&mut self, now: Instant, key: char);
    /// The prompt that was playing ended.
    fn handle_prompt_finished(&mut self, now: Instant);
    /// When [`Flow::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The directory's answer to the flow's last [`Ask`].
    fn handle_answer(&mut self, now: Instant, answer: Answer);
    /// Next action for the call.
    fn poll_action(&mut self) -> Option<FlowAction>;
}

/// The `[ivr]` settings the flows use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSettings {
    /// Wait for the first key after a prompt.
    pub first_digit_timeout: Duration,
    /// Wait between keys.
    pub inter_digit_timeout: Duration,
    /// Ends an entry (`#`).
    pub terminator: char,
    /// Wrong logins per call before goodbye.
    pub max_attempts: u32,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(3),
            terminator: '#',
            max_attempts: 3,
        }
    }
}

/// What a flow is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowContext {
    /// The desk: the caller for feature codes, the called phone for a callback.
    pub device: String,
    /// Whether `device` is in the hot-desk range.
    pub is_desk: bool,
    /// The user an activation named (then only the PIN is asked).
    pub user: Option<String>,
    /// Timeouts, terminator, attempts.
    pub settings: FlowSettings,
}

/// A flow as the server, `replay` and the tests find it: by name.
#[derive(Debug)]
pub struct FlowSpec {
    /// The name configuration and the API use (`login`, `release`, `callback`, `dtmf_test`).
    pub name: &'static str,
    /// How logins and releases of this flow are reported.
    pub via: Via,
    /// Whether any key of a call running it may be part of a secret, so that no key is
    /// logged or told as itself. For the login flows every key counts, not just those typed
    /// while the PIN is asked for: callers type ahead (`10014321#4321#` is one account entry
    /// with the PIN in it), keys arrive before the flow starts (RFC 4733 right after the
    /// 200 OK), and a PIN spread over one log line per key is as readable as in one line.
    pub secret_keys: bool,
    /// Starts the flow on an answered call.
    pub start: fn(Instant, &FlowContext) -> Box<dyn Flow>,
}
