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
//! The flow never touches the directory: it asks for a verification or a release with a
//! [`FlowAction::Ask`] and is told the answer through [`Flow::handle_answer`]. A wrong
//! account and a wrong PIN get the same answer
//! (no oracle). The PIN lives in a [`SecretString`] from the moment its entry ends; the call
//! keeps every key of these flows out of its logs (`call::FlowKind`), since callers type the
//! PIN where the account is asked for too.

use std::collections::VecDeque;
use std::time::Instant;

use secrecy::SecretString;

use super::collect::{Action, Collector, Outcome, Spec};
use super::flow::{Ask, Decision, Flow, FlowAction, FlowContext, FlowSettings, FlowSpec};
use crate::model::{Answer, LoginOutcome, Via};
use crate::prompts::{digit_id, ids};

/// `*88`: the desk calls, the user keys account and PIN.
pub const LOGIN: FlowSpec = FlowSpec {
    name: "login",
    via: Via::FeatureCode,
    secret_keys: true,
    start: |now, ctx| Box::new(HotdeskFlow::start(now, HotdeskKind::Login, ctx)),
};

/// `*89`: the desk calls to be released.
pub const RELEASE: FlowSpec = FlowSpec {
    name: "release",
    via: Via::FeatureCode,
    secret_keys: true,
    start: |now, ctx| Box::new(HotdeskFlow::start(now, HotdeskKind::Release, ctx)),
};

/// The portal's *Activate Phone*: we called the desk; with a named user only the PIN is asked.
pub const CALLBACK: FlowSpec = FlowSpec {
    name: "callback",
    via: Via::Callback,
    secret_keys: true,
    start: |now, ctx| {
        let kind = HotdeskKind::Callback {
            user: ctx.user.clone(),
        };
        Box::new(HotdeskFlow::start(now, kind, ctx))
    },
};

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
    decision: Option<Decision>,
}

impl HotdeskFlow {
    /// Starts the flow on an answered call from (or to) the context's desk.
    pub fn start(now: Instant, kind: HotdeskKind, ctx: &FlowContext) -> HotdeskFlow {
        let mut flow = HotdeskFlow {
            kind,
            device: ctx.device.clone(),
            settings: ctx.settings.clone(),
            state: State::Waiting,
            attempts: 0,
            type_ahead: VecDeque::new(),
            actions: VecDeque::new(),
            decision: None,
        };
        if !ctx.is_desk {
            flow.close(Decision::NotADesk, vec![ids::NOT_HOTDESK_PHONE.into()]);
        } else if flow.kind == HotdeskKind::Release {
            flow.actions.push_back(FlowAction::Ask(Ask::Release));
        } else {
            flow.ask_identity(now, Vec::new());
        }
        flow
    }

    /// The calling or called desk.
    pub fn device(&self) -> &str {
        &self.device
    }
}

impl Flow for HotdeskFlow {
    fn handle_digit(&mut self, now: Instant, key: char) {
        match &mut self.state {
            State::Account(c) | State::Pin { collector: c, .. } => c.handle_digit(now, key),
            State::Waiting => self.type_ahead.push_back(key),
            State::Closing | State::Done => {}
        }
        self.advance(now);
    }

    fn handle_prompt_finished(&mut self, now: Instant) {
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

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Account(c) | State::Pin { collector: c, .. } => c.poll_timeout(),
            _ => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let State::Account(c) | State::Pin { collector: c, .. } = &mut self.state {
            c.handle_timeout(now);
        }
        self.advance(now);
    }

    fn handle_answer(&mut self, now: Instant, answer: Answer) {
        match answer {
            Answer::Login(result) => self.handle_login(now, result),
            Answer::Released(result) => self.handle_released(result),
        }
    }

    fn poll_action(&mut self) -> Option<FlowAction> {
        self.actions.pop_front()
    }
}

impl HotdeskFlow {
    /// The directory's answer to the last [`Ask::Login`].
    fn handle_login(
        &mut self,
        now: Instant,
        answer: Result<LoginOutcome, crate::model::Unavailable>,
    ) {
        if !matches!(self.state, State::Waiting) {
            return;
        }
        match answer {
            Ok(LoginOutcome::Accepted { user, .. }) => {
                let mut prompts = vec![ids::LOGIN_ACCEPTED_PREFIX.to_owned()];
                prompts.extend(spoken(&self.device));
                prompts.push(ids::LOGIN_ACCEPTED_MIDDLE.into());
                prompts.extend(spoken(&user));
                self.close(Decision::Verified { user }, prompts);
            }
            Ok(LoginOutcome::Incorrect) => {
                self.attempts += 1;
                if self.attempts >= self.settings.max_attempts {
                    self.close(Decision::Failed, vec![ids::LOGIN_INCORRECT.into()]);
                } else {
                    // Keys typed while we verified are a new attempt already under way.
                    self.ask_identity(now, vec![ids::LOGIN_INCORRECT.into()]);
                }
            }
            Ok(LoginOutcome::LockedOut { .. }) => {
                self.close(Decision::LockedOut, vec![ids::TOO_MANY_ATTEMPTS.into()])
            }
            Err(crate::model::Unavailable) => {
                self.close(Decision::Error, vec![ids::SERVICE_UNAVAILABLE.into()])
            }
        }
    }

    /// The directory released the desk (`user`: who was logged in), or failed.
    fn handle_released(&mut self, result: Result<Option<String>, crate::model::Unavailable>) {
        if self.decision.is_some() {
            return;
        }
        match result {
            Ok(user) => self.close(
                Decision::Released { user },
                vec![ids::PHONE_RELEASED.into()],
            ),
            Err(_) => self.close(Decision::Error, vec![ids::SERVICE_UNAVAILABLE.into()]),
        }
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
                    self.actions.push_back(FlowAction::Ask(Ask::Login {
                        account,
                        pin: SecretString::from(pin),
                    }));
                    return;
                }
            }
        }
    }

    /// Says `prompts` then goodbye, and hangs up when they end.
    fn close(&mut self, decision: Decision, mut prompts: Vec<String>) {
        self.decision = Some(decision.clone());
        self.actions.push_back(FlowAction::Decided(decision));
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
