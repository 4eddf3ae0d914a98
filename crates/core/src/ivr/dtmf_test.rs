//! The DTMF test code (`*97`): answers, says "DTMF test", then speaks back every key it hears
//! until the caller hangs up or stays silent for a while. The field tool for "my phone's keys
//! don't work"; which path carried each key (RFC 4733, INFO, in-band) is logged by the call.

use std::time::{Duration, Instant};

use super::flow::{Flow, FlowAction, FlowSpec};
use crate::model::{Answer, Via};

/// `*97`: speaks back every key, which is the point, so its keys are not secret.
pub const FLOW: FlowSpec = FlowSpec {
    name: "dtmf_test",
    via: Via::FeatureCode,
    secret_keys: false,
    start: |now, _| Box::new(DtmfTest::start(now)),
};

/// Silence after which the test says goodbye and hangs up.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Prompt id that speaks a key.
pub fn key_prompt(key: char) -> Option<String> {
    match key {
        '0'..='9' => Some(format!("digit_{key}")),
        '*' => Some("star".into()),
        '#' => Some("pound".into()),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Listening { idle_until: Instant },
    SayingGoodbye,
    Done,
}

/// The `*97` flow.
#[derive(Debug)]
pub struct DtmfTest {
    state: State,
    actions: std::collections::VecDeque<FlowAction>,
    heard: usize,
}

impl DtmfTest {
    /// Starts the flow on an answered call.
    pub fn start(now: Instant) -> Self {
        let mut t = DtmfTest {
            state: State::Listening {
                idle_until: now + IDLE_TIMEOUT,
            },
            actions: Default::default(),
            heard: 0,
        };
        t.actions
            .push_back(FlowAction::Play(vec!["dtmf_test".into()]));
        t
    }

    /// A key from any path: stop whatever is playing and say the key.
    pub fn handle_digit(&mut self, now: Instant, key: char) {
        let State::Listening { .. } = self.state else {
            return;
        };
        self.heard += 1;
        self.state = State::Listening {
            idle_until: now + IDLE_TIMEOUT,
        };
        self.actions.push_back(FlowAction::StopPrompt);
        if let Some(id) = key_prompt(key) {
            self.actions.push_back(FlowAction::Play(vec![id]));
        }
    }

    /// The current prompt ended.
    pub fn handle_prompt_finished(&mut self, _now: Instant) {
        if self.state == State::SayingGoodbye {
            self.state = State::Done;
            self.actions.push_back(FlowAction::Hangup);
        }
    }

    /// When to call [`DtmfTest::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Listening { idle_until } => Some(idle_until),
            _ => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Listening { idle_until } = self.state
            && now >= idle_until
        {
            self.state = State::SayingGoodbye;
            self.actions.push_back(FlowAction::StopPrompt);
            self.actions
                .push_back(FlowAction::Play(vec!["goodbye".into()]));
        }
    }

    /// Next action.
    pub fn poll_action(&mut self) -> Option<FlowAction> {
        self.actions.pop_front()
    }

    /// Keys heard so far.
    pub fn heard(&self) -> usize {
        self.heard
    }
}

impl Flow for DtmfTest {
    fn handle_digit(&mut self, now: Instant, key: char) {
        DtmfTest::handle_digit(self, now, key);
    }

    fn handle_prompt_finished(&mut self, now: Instant) {
        DtmfTest::handle_prompt_finished(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        DtmfTest::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        DtmfTest::handle_timeout(self, now);
    }

    /// The test asks the directory nothing.
    fn handle_answer(&mut self, _: Instant, _: Answer) {}

    fn poll_action(&mut self) -> Option<FlowAction> {
        DtmfTest::poll_action(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an action says, comparable (a flow's [`Ask`](super::super::flow::Ask) holds a PIN
    /// and has no equality; this flow never asks).
    fn said(action: Option<FlowAction>) -> Option<String> {
        action.map(|a| match a {
            FlowAction::Play(ids) => format!("play {}", ids.join(" ")),
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn says_each_key_then_goodbye_after_silence() {
        let t0 = Instant::now();
        let mut t = DtmfTest::start(t0);
        assert_eq!(said(t.poll_action()).as_deref(), Some("play dtmf_test"));
        t.handle_digit(t0 + Duration::from_secs(2), '5');
        t.handle_digit(t0 + Duration::from_secs(3), '#');
        let actions: Vec<_> = std::iter::from_fn(|| said(t.poll_action())).collect();
        assert_eq!(
            actions,
            ["StopPrompt", "play digit_5", "StopPrompt", "play pound"]
        );
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(33)));
        t.handle_timeout(t0 + Duration::from_secs(33));
        assert_eq!(said(t.poll_action()).as_deref(), Some("StopPrompt"));
        assert_eq!(said(t.poll_action()).as_deref(), Some("play goodbye"));
        t.handle_digit(t0 + Duration::from_secs(34), '1');
        assert!(t.poll_action().is_none(), "keys during goodbye are ignored");
        t.handle_prompt_finished(t0 + Duration::from_secs(35));
        assert_eq!(said(t.poll_action()).as_deref(), Some("Hangup"));
        assert_eq!(t.heard(), 2);
    }

    #[test]
    fn every_key_has_a_prompt() {
        for k in "0123456789*#".chars() {
            assert!(key_prompt(k).is_some(), "{k}");
        }
        assert_eq!(key_prompt('A'), None);
    }
}
