//! Digit collection with play-and-get-digits semantics, sans-IO.
//!
//! What a caller expects from a production PBX (FreeSWITCH `play_and_get_digits`, Asterisk
//! `Read()`):
//! - the prompt plays until the first key, which stops it (barge-in);
//! - keys pressed before or during an earlier step are kept (type-ahead), so `1001#1234#` keyed
//!   in one go answers two questions;
//! - `#` ends an entry; reaching the maximum length ends it too; so does the inter-digit timeout
//!   once the minimum length is there;
//! - `*` clears what was typed and plays the prompt again;
//! - silence after the prompt (first-digit timeout) or a too-short entry replays the prompt, up
//!   to a number of tries, then the step reports no input.
//!
//! Inputs are keys and "prompt finished" with the time they happened; outputs are actions to
//! perform and, at the end, an [`Outcome`]. Time is only ever passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What one step asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Prompt ids to play (and replay).
    pub prompt: Vec<String>,
    /// Fewest keys that make an entry.
    pub min_len: usize,
    /// Most keys; the entry ends by itself when reached.
    pub max_len: usize,
    /// Key that ends an entry.
    pub terminator: char,
    /// Key that clears the entry and replays the prompt (`None`: an ordinary key).
    pub clear: Option<char>,
    /// Wait for the first key after the prompt ends.
    pub first_digit_timeout: Duration,
    /// Wait between keys.
    pub inter_digit_timeout: Duration,
    /// Times the prompt is played before the step gives up (no input / too short).
    pub tries: u32,
}

/// What the caller of the collector must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play these prompts (from the start).
    Play(Vec<String>),
    /// Stop the prompt now (barge-in).
    StopPrompt,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The caller entered these keys (terminator not included).
    Entered(String),
    /// Every try ended in silence or a too-short entry.
    NoInput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The prompt is playing; no timer runs.
    Prompting,
    /// Waiting for a key until the deadline.
    Waiting(Instant),
    Done,
}

/// One play-and-get-digits step.
#[derive(Debug, Clone)]
pub struct Collector {
    spec: Spec,
    state: State,
    entry: String,
    tries_used: u32,
    actions: VecDeque<Action>,
    outcome: Option<Outcome>,
    /// Keys that arrived after the entry was complete: the next step's type-ahead.
    leftover: VecDeque<char>,
}

impl Collector {
    /// Starts a step. `type_ahead` holds keys already pressed; if they complete the entry the
    /// prompt is never played.
    pub fn start(spec: Spec, now: Instant, type_ahead: impl IntoIterator<Item = char>) -> Self {
        let mut c = Collector {
            spec,
            state: State::Prompting,
            entry: String::new(),
            tries_used: 1,
            actions: VecDeque::new(),
            outcome: None,
            leftover: VecDeque::new(),
        };
        let pending: Vec<char> = type_ahead.into_iter().collect();
        for &key in &pending {
            c.key(now, key, false);
        }
        if c.outcome.is_none() {
            if c.entry.is_empty() {
                c.actions.push_back(Action::Play(c.spec.prompt.clone()));
                c.state = State::Prompting;
            } else {
                // The caller is mid-entry already: no prompt, just wait for the rest.
                c.state = State::Waiting(now + c.spec.inter_digit_timeout);
            }
        }
        c
    }

    /// A key from any DTMF path.
    pub fn handle_digit(&mut self, now: Instant, key: char) {
        if self.outcome.is_some() {
            self.leftover.push_back(key);
            return;
        }
        let barge_in = self.state == State::Prompting;
        self.key(now, key, barge_in);
    }

    fn key(&mut self, now: Instant, key: char, barge_in: bool) {
        if self.outcome.is_some() {
            self.leftover.push_back(key);
            return;
        }
        if barge_in {
            self.actions.push_back(Action::StopPrompt);
        }
        if Some(key) == self.spec.clear {
            self.entry.clear();
            if !barge_in && self.state == State::Prompting {
                self.actions.push_back(Action::StopPrompt);
            }
            self.replay();
            return;
        }
        if key == self.spec.terminator {
            if self.entry.len() >= self.spec.min_len && !self.entry.is_empty() {
                self.finish_entry();
            } else {
                self.retry(now);
            }
            return;
        }
        self.entry.push(key);
        if self.entry.len() >= self.spec.max_len {
            self.finish_entry();
        } else {
            self.state = State::Waiting(now + self.spec.inter_digit_timeout);
        }
    }

    /// The prompt reached its end: the first-digit timer starts.
    pub fn handle_prompt_finished(&mut self, now: Instant) {
        if self.state == State::Prompting {
            self.state = State::Waiting(now + self.spec.first_digit_timeout);
        }
    }

    /// When to call [`Collector::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting(deadline) => Some(deadline),
            _ => None,
        }
    }

    /// Time passed: a timer may have expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let State::Waiting(deadline) = self.state else {
            return;
        };
        if now < deadline {
            return;
        }
        if !self.entry.is_empty() && self.entry.len() >= self.spec.min_len {
            // The inter-digit timeout ends a complete entry, as a terminator would.
            self.finish_entry();
        } else {
            self.retry(now);
        }
    }

    /// Next action to perform.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The result, once the step is over.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Keys pressed after the entry was complete, for the next step.
    pub fn take_leftover(&mut self) -> VecDeque<char> {
        std::mem::take(&mut self.leftover)
    }

    /// How many keys are typed so far: what logs may show of an entry (a PIN never is).
    pub fn typed(&self) -> usize {
        self.entry.len()
    }

    fn replay(&mut self) {
        self.actions
            .push_back(Action::Play(self.spec.prompt.clone()));
        self.state = State::Prompting;
    }

    fn retry(&mut self, _now: Instant) {
        self.entry.clear();
        if self.tries_used >= self.spec.tries {
            self.finish(Outcome::NoInput);
        } else {
            self.tries_used += 1;
            self.replay();
        }
    }

    fn finish_entry(&mut self) {
        let entry = std::mem::take(&mut self.entry);
        self.finish(Outcome::Entered(entry));
    }

    fn finish(&mut self, outcome: Outcome) {
        self.state = State::Done;
        self.outcome = Some(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            prompt: vec!["enter_account".into()],
            min_len: 3,
            max_len: 6,
            terminator: '#',
            clear: Some('*'),
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(3),
            tries: 3,
        }
    }

    fn drain(c: &mut Collector) -> Vec<Action> {
        std::iter::from_fn(|| c.poll_action()).collect()
    }

    #[test]
    fn prompt_then_keys_then_terminator() {
        let t0 = Instant::now();
        let mut c = Collector::start(spec(), t0, []);
        assert_eq!(
            drain(&mut c),
            vec![Action::Play(vec!["enter_account".into()])]
        );
        c.handle_prompt_finished(t0 + Duration::from_secs(2));
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(7)));
        for (i, k) in "1001#".chars().enumerate() {
            c.handle_digit(t0 + Duration::from_millis(2500 + 300 * i as u64), k);
        }
        assert_eq!(c.outcome(), Some(&Outcome::Entered("1001".into())));
        assert!(
            drain(&mut c).is_empty(),
            "no barge-in after the prompt ended"
        );
    }

    #[test]
    fn a_key_during_the_prompt_stops_it() {
        let t0 = Instant::now();
        let mut c = Collector::start(spec(), t0, []);
        drain(&mut c);
        c.handle_digit(t0 + Duration::from_millis(400), '1');
        assert_eq!(drain(&mut c), vec![Action::StopPrompt]);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_millis(3400)));
    }

    #[test]
    fn type_ahead_answers_without_a_prompt_and_keeps_the_rest() {
        let t0 = Instant::now();
        let mut c = Collector::start(spec(), t0, "1001#12".chars());
        assert!(drain(&mut c).is_empty());
        assert_eq!(c.outcome(), Some(&Outcome::Entered("1001".into())));
        c.handle_digit(t0, '3');
        assert_eq!(c.take_leftover().into_iter().collect::<String>(), "123");
        // A half-typed answer: no prompt, the inter-digit timer runs.
        let mut c = Collector::start(spec(), t0, "10".chars());
        assert!(drain(&mut c).is_empty());
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn star_clears_and_replays() {
        let t0 = Instant::now();
        let mut c = Collector::start(spec(), t0, []);
        drain(&mut c);
        c.handle_prompt_finished(t0);
        c.handle_digit(t0, '9');
        c.handle_digit(t0, '*');
        assert_eq!(
            drain(&mut c),
            vec![Action::Play(vec!["enter_account".into()])]
        );
        c.handle_digit(t0, '1');
        assert_eq!(drain(&mut c), vec![Action::StopPrompt]);
        for k in "23#".chars() {
            c.handle_digit(t0, k);
        }
        assert_eq!(c.outcome(), Some(&Outcome::Entered("123".into())));
    }

    #[test]
    fn silence_replays_then_gives_up() {
        let t0 = Instant::now();
        let mut c = Collector::start(spec(), t0, []);
        let mut plays = 0;
        let mut now = t0;
        while c.outcome().is_none() {
            plays += drain(&mut c)
                .iter()
                .filter(|a| matches!(a, Action::Play(_)))
                .count();
            c.handle_prompt_finished(now);
            now = c.poll_timeout().expect("timer");
            c.handle_timeout(now);
        }
        assert_eq!(plays, 3);
        assert_eq!(c.outcome(), Some(&Outcome::NoInput));
        assert_eq!(now, t0 + Duration::from_secs(15));
    }

    #[test]
    fn inter_digit_timeout_ends_a_complete_entry_but_not_a_short_one() {
        let t0 = Instant::now();
        let mut c = Collector::start(spec(), t0, []);
        c.handle_prompt_finished(t0);
        c.handle_digit(t0, '1');
        c.handle_digit(t0, '2');
        c.handle_timeout(t0 + Duration::from_secs(3));
        assert_eq!(c.outcome(), None, "2 keys < min 3: replay");
        drain(&mut c);
        c.handle_prompt_finished(t0 + Duration::from_secs(4));
        for k in "123".chars() {
            c.handle_digit(t0 + Duration::from_secs(5), k);
        }
        c.handle_timeout(t0 + Duration::from_millis(7999));
        assert_eq!(c.outcome(), None);
        c.handle_timeout(t0 + Duration::from_secs(8));
        assert_eq!(c.outcome(), Some(&Outcome::Entered("123".into())));
    }

    #[test]
    fn max_length_ends_the_entry() {
        let t0 = Instant::now();
        let mut c = Collector::start(spec(), t0, "1234567".chars());
        assert_eq!(c.outcome(), Some(&Outcome::Entered("123456".into())));
        assert_eq!(c.take_leftover().into_iter().collect::<String>(), "7");
    }
}
