//! The hot-desk flows, sans-IO: `*88` login, `*89` release, and the portal's callback login.
//!
//! ```text
//! login:    [not a desk] ─► "cannot be used for hot desking", goodbye, hang up
//!           account ─► PIN ─► Verify ─┬─ Accepted  ─► "desk D is now extension U", goodbye
//!             ▲                       ├─ Incorrect ─► "login incorrect" ─┐ (max_attempts: goodbye)
//!             └───────────────────────┼──────────────────────────────────┘
//!                                     └─ LockedOut ─► "too many attempts", goodbye
//! callback: as login; with a named user the account step is skipped (PIN only)
//! release:  Release ─► "phone released", goodbye
//! ```
//!
//! The flow never touches the directory: it asks for a verification or a release through
//! [`HotdeskFlow::poll_request`] and is told the verdict with [`HotdeskFlow::handle_verdict`]
//! or [`HotdeskFlow::handle_released`]. A wrong account and a wrong PIN get the same answer
//! (no oracle). The PIN lives in a [`SecretString`] from the moment its entry ends; the call
//! keeps every key of these flows out of its logs (`call::FlowKind`), since callers type the
//! PIN where the account is asked for too.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::FlowAction;
use super::collect::{Action, Collector, Outcome, Spec};
use crate::prompts::{digit_id, ids};

/// Which hot-desk flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HotdeskKind {
    /// `*88` dialled from the desk.
    Login,
    /// `*89` dialled from the desk.
    Release,
    /// The portal's *Activate Phone*: the desk was called; `user` when the portal named one.
    Callback {
        /// The user the activation is for (then only the PIN is asked).
        user: Option<String>,
    },
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

/// What the flow needs from the directory.
#[derive(Debug)]
pub enum DirectoryRequest {
    /// Verify `pin` for `account` and log the desk in if it matches.
    Login {
        /// The extension entered (or named by the activation).
        account: String,
        /// The PIN entered.
        pin: SecretString,
    },
    /// Give the desk back to its owner.
    Release,
}

/// The directory's answer to [`DirectoryRequest::Login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The desk is now `user`'s.
    Accepted {
        /// The extension now logged in at the desk.
        user: String,
    },
    /// Wrong account or wrong PIN (indistinguishable by design).
    Incorrect,
    /// The account or the desk is locked out.
    LockedOut,
    /// The directory failed: the caller hears goodbye, nothing changed.
    Unavailable,
}

/// How a flow ended, for the call's report and the QA transcript.
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

#[derive(Debug)]
enum State {
    Account(Collector),
    Pin {
        account: String,
        collector: Collector,
    },
    Waiting,
    /// Saying the result; hang up when the prompt ends.
    Closing,
    Done,
}

/// One hot-desk flow on one call.
#[derive(Debug)]
pub struct HotdeskFlow {
    kind: HotdeskKind,
    device: String,
    settings: FlowSettings,
    state: State,
    attempts: u32,
    /// Keys that arrived while no collector was listening (during verification).
    type_ahead: VecDeque<char>,
    actions: VecDeque<FlowAction>,
    request: Option<DirectoryRequest>,
    decision: Option<Decision>,
}

impl HotdeskFlow {
    /// Starts the flow on an answered call from (or to) `device`; `is_desk` says whether the
    /// device is in the hot-desk range.
    pub fn start(
        now: Instant,
        kind: HotdeskKind,
        device: &str,
        is_desk: bool,
        settings: FlowSettings,
    ) -> HotdeskFlow {
        let mut flow = HotdeskFlow {
            kind,
            device: device.to_owned(),
            settings,
            state: State::Waiting,
            attempts: 0,
            type_ahead: VecDeque::new(),
            actions: VecDeque::new(),
            request: None,
            decision: None,
        };
        if !is_desk {
            flow.close(Decision::NotADesk, vec![ids::NOT_HOTDESK_PHONE.into()]);
        } else if flow.kind == HotdeskKind::Release {
            flow.request = Some(DirectoryRequest::Release);
        } else {
            flow.ask_identity(now, Vec::new());
        }
        flow
    }

    /// The calling or called desk.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// A key from any DTMF path.
    pub fn handle_digit(&mut self, now: Instant, key: char) {
        match &mut self.state {
            State::Account(c) | State::Pin { collector: c, .. } => c.handle_digit(now, key),
            State::Waiting => self.type_ahead.push_back(key),
            State::Closing | State::Done => {}
        }
        self.advance(now);
    }

    /// The prompt that was playing ended.
    pub fn handle_prompt_finished(&mut self, now: Instant) {
        match &mut self.state {
            State::Account(c) | State::Pin { collector: c, .. } => c.handle_prompt_finished(now),
            State::Closing => {
                self.state = State::Done;
                self.actions.push_back(FlowAction::Hangup);
            }
            State::Waiting | State::Done => {}
        }
        self.advance(now);
    }

    /// When [`HotdeskFlow::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Account(c) | State::Pin { collector: c, .. } => c.poll_timeout(),
            _ => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Account(c) | State::Pin { collector: c, .. } = &mut self.state {
            c.handle_timeout(now);
        }
        self.advance(now);
    }

    /// The directory's verdict on the last [`DirectoryRequest::Login`].
    pub fn handle_verdict(&mut self, now: Instant, verdict: Verdict) {
        if !matches!(self.state, State::Waiting) {
            return;
        }
        match verdict {
            Verdict::Accepted { user } => {
                let mut prompts = vec![ids::LOGIN_ACCEPTED_PREFIX.to_owned()];
                prompts.extend(spoken(&self.device));
                prompts.push(ids::LOGIN_ACCEPTED_MIDDLE.into());
                prompts.extend(spoken(&user));
                self.close(Decision::Verified { user }, prompts);
            }
            Verdict::Incorrect => {
                self.attempts += 1;
                if self.attempts >= self.settings.max_attempts {
                    self.close(Decision::Failed, vec![ids::LOGIN_INCORRECT.into()]);
                } else {
                    // Keys typed while we verified are a new attempt already under way.
                    self.ask_identity(now, vec![ids::LOGIN_INCORRECT.into()]);
                }
            }
            Verdict::LockedOut => {
                self.close(Decision::LockedOut, vec![ids::TOO_MANY_ATTEMPTS.into()])
            }
            Verdict::Unavailable => {
                self.close(Decision::Error, vec![ids::SERVICE_UNAVAILABLE.into()])
            }
        }
    }

    /// The directory released the desk (`user`: who was logged in), or failed (`Err`).
    pub fn handle_released(&mut self, result: Result<Option<String>, ()>) {
        match result {
            Ok(user) => self.close(
                Decision::Released { user },
                vec![ids::PHONE_RELEASED.into()],
            ),
            Err(()) => self.close(Decision::Error, vec![ids::SERVICE_UNAVAILABLE.into()]),
        }
    }

    /// What the directory must do next.
    pub fn poll_request(&mut self) -> Option<DirectoryRequest> {
        self.request.take()
    }

    /// Next action for the call.
    pub fn poll_action(&mut self) -> Option<FlowAction> {
        self.actions.pop_front()
    }

    /// How the flow ended, once it has.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    fn spec(&self, prompt: Vec<String>, min_len: usize, max_len: usize) -> Spec {
        Spec {
            prompt,
            min_len,
            max_len,
            terminator: self.settings.terminator,
            clear: Some('*'),
            first_digit_timeout: self.settings.first_digit_timeout,
            inter_digit_timeout: self.settings.inter_digit_timeout,
            tries: 3,
        }
    }

    /// Asks for the account (or, for a callback naming its user, the PIN), after `before`.
    fn ask_identity(&mut self, now: Instant, mut before: Vec<String>) {
        let type_ahead: Vec<char> = self.type_ahead.drain(..).collect();
        if let HotdeskKind::Callback { user: Some(user) } = &self.kind {
            let account = user.clone();
            before.push(ids::ENTER_PIN.into());
            let collector = Collector::start(self.spec(before, 4, 10), now, type_ahead);
            self.state = State::Pin { account, collector };
        } else {
            before.push(ids::ENTER_ACCOUNT.into());
            let collector = Collector::start(self.spec(before, 1, 10), now, type_ahead);
            self.state = State::Account(collector);
        }
        self.advance(now);
    }

    /// Moves collector actions out and steps on when an entry is complete.
    fn advance(&mut self, now: Instant) {
        loop {
            let (collector, is_pin) = match &mut self.state {
                State::Account(c) => (c, false),
                State::Pin { collector, .. } => (collector, true),
                _ => return,
            };
            while let Some(action) = collector.poll_action() {
                self.actions.push_back(match action {
                    Action::Play(ids) => FlowAction::Play(ids),
                    Action::StopPrompt => FlowAction::StopPrompt,
                });
            }
            let Some(outcome) = collector.outcome().cloned() else {
                return;
            };
            let leftover = collector.take_leftover();
            match (outcome, is_pin) {
                (Outcome::NoInput, _) => {
                    self.close(Decision::NoInput, Vec::new());
                    return;
                }
                (Outcome::Entered(account), false) => {
                    let spec = self.spec(vec![ids::ENTER_PIN.into()], 4, 10);
                    let collector = Collector::start(spec, now, leftover);
                    self.state = State::Pin { account, collector };
                }
                (Outcome::Entered(pin), true) => {
                    let State::Pin { account, .. } =
                        std::mem::replace(&mut self.state, State::Waiting)
                    else {
                        return;
                    };
                    self.type_ahead.extend(leftover);
                    self.request = Some(DirectoryRequest::Login {
                        account,
                        pin: SecretString::from(pin),
                    });
                    return;
                }
            }
        }
    }

    /// Says `prompts` then goodbye, and hangs up when they end.
    fn close(&mut self, decision: Decision, mut prompts: Vec<String>) {
        self.decision = Some(decision);
        prompts.push(ids::GOODBYE.into());
        self.actions.push_back(FlowAction::StopPrompt);
        self.actions.push_back(FlowAction::Play(prompts));
        self.state = State::Closing;
    }
}

/// Prompt ids speaking `digits` one by one (non-digits are skipped).
fn spoken(digits: &str) -> impl Iterator<Item = String> + '_ {
    digits.chars().filter_map(digit_id).map(str::to_owned)
}
