//! The hot-desk flows on virtual time: prompts, type-ahead, verdicts, attempts, release.

use std::time::{Duration, Instant};

use std::collections::VecDeque;

use hotdesk_core::ivr::hotdesk::{HotdeskFlow, HotdeskKind};
use hotdesk_core::ivr::{Ask, Decision, Flow, FlowAction, FlowContext, FlowSettings};
use hotdesk_core::model::{Answer, LoginOutcome, Unavailable};
use secrecy::ExposeSecret;

/// What the flow asks the call to do, comparable (its questions for the directory hold the
/// PIN and are taken aside by [`Run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Act {
    Play(Vec<String>),
    StopPrompt,
    Hangup,
}

/// The directory's answers as the tests write them.
enum Verdict {
    Accepted { user: String },
    Incorrect,
    LockedOut,
    Unavailable,
}

impl Verdict {
    fn answer(self) -> Answer {
        Answer::Login(match self {
            Verdict::Accepted { user } => Ok(LoginOutcome::Accepted {
                user,
                previous_user: None,
                released_from: None,
            }),
            Verdict::Incorrect => Ok(LoginOutcome::Incorrect),
            Verdict::LockedOut => Ok(LoginOutcome::LockedOut {
                until: time::OffsetDateTime::UNIX_EPOCH,
            }),
            Verdict::Unavailable => Err(Unavailable),
        })
    }
}

fn settings() -> FlowSettings {
    FlowSettings {
        first_digit_timeout: Duration::from_secs(5),
        inter_digit_timeout: Duration::from_secs(3),
        terminator: '#',
        max_attempts: 3,
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

struct Run {
    flow: HotdeskFlow,
    t0: Instant,
    /// Prompts and hang-ups not looked at yet.
    acts: Vec<Act>,
    /// Questions for the directory, as the flow asked them.
    asked: VecDeque<Ask>,
    decision: Option<Decision>,
}

impl Run {
    fn start(kind: HotdeskKind, is_desk: bool) -> Run {
        let t0 = Instant::now();
        let ctx = FlowContext {
            device: "5401".into(),
            is_desk,
            user: None,
            settings: settings(),
        };
        Run {
            flow: HotdeskFlow::start(t0, kind, &ctx),
            t0,
            acts: Vec::new(),
            asked: VecDeque::new(),
            decision: None,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Moves the flow's actions out: prompts and hang-ups into `acts`, questions into
    /// `asked`, the decision aside.
    fn pump(&mut self) {
        while let Some(action) = self.flow.poll_action() {
            match action {
                FlowAction::Play(ids) => self.acts.push(Act::Play(ids)),
                FlowAction::StopPrompt => self.acts.push(Act::StopPrompt),
                FlowAction::Hangup => self.acts.push(Act::Hangup),
                FlowAction::Ask(ask) => self.asked.push_back(ask),
                FlowAction::Decided(d) => {
                    assert!(self.decision.is_none(), "decided twice: {d:?}");
                    self.decision = Some(d);
                }
            }
        }
    }

    /// The prompts and hang-ups asked for since the last look.
    fn actions(&mut self) -> Vec<Act> {
        self.pump();
        std::mem::take(&mut self.acts)
    }

    fn keys(&mut self, ms: u64, keys: &str) {
        for (i, k) in keys.chars().enumerate() {
            let at = self.at(ms + 100 * i as u64);
            self.flow.handle_digit(at, k);
        }
    }

    /// The next question the flow asked, if any.
    fn poll_request(&mut self) -> Option<Ask> {
        self.pump();
        self.asked.pop_front()
    }

    /// The login request the flow made: (account, pin).
    fn login_request(&mut self) -> (String, String) {
        match self.poll_request() {
            Some(Ask::Login { account, pin }) => (account, pin.expose_secret().to_owned()),
            other => panic!("expected a login request, got {other:?}"),
        }
    }

    fn verdict(&mut self, ms: u64, verdict: Verdict) {
        let at = self.at(ms);
        self.flow.handle_answer(at, verdict.answer());
    }

    fn released(&mut self, ms: u64, result: Result<Option<String>, Unavailable>) {
        let at = self.at(ms);
        self.flow.handle_answer(at, Answer::Released(result));
    }

    fn decision(&mut self) -> Option<&Decision> {
        self.pump();
        self.decision.as_ref()
    }
}

#[test]
fn type_ahead_answers_both_questions_in_one_go() {
    let mut r = Run::start(HotdeskKind::Login, true);
    assert_eq!(r.actions(), vec![Act::Play(ids(&["enter_account"]))]);
    r.keys(500, "1001#1234#");
    // Each prompt is cut by the next key: the caller never waits for a prompt to end.
    assert_eq!(
        r.actions(),
        vec![
            Act::StopPrompt,
            Act::Play(ids(&["enter_pin"])),
            Act::StopPrompt
        ]
    );
    assert_eq!(r.login_request(), ("1001".into(), "1234".into()));
}

#[test]
fn accepted_login_reads_back_desk_and_extension_then_hangs_up() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#");
    assert_eq!(
        r.actions(),
        vec![Act::StopPrompt, Act::Play(ids(&["enter_pin"]))]
    );
    assert!(r.poll_request().is_none());
    r.flow.handle_prompt_finished(r.at(2500));
    r.keys(3000, "4321#");
    assert_eq!(r.login_request(), ("1001".into(), "4321".into()));
    r.verdict(
        4000,
        Verdict::Accepted {
            user: "1001".into(),
        },
    );
    assert_eq!(
        r.actions(),
        vec![
            Act::StopPrompt,
            Act::Play(ids(&[
                "login_accepted_prefix",
                "digit_5",
                "digit_4",
                "digit_0",
                "digit_1",
                "login_accepted_middle",
                "digit_1",
                "digit_0",
                "digit_0",
                "digit_1",
                "goodbye"
            ]))
        ]
    );
    // Keys after the decision are ignored.
    r.keys(7000, "9#");
    assert!(r.poll_request().is_none());
    r.flow.handle_prompt_finished(r.at(8000));
    assert_eq!(r.actions(), vec![Act::Hangup]);
    assert_eq!(
        r.decision(),
        Some(&Decision::Verified {
            user: "1001".into()
        })
    );
}

#[test]
fn wrong_logins_retry_with_the_same_message_until_max_attempts() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    for attempt in 1..=3u64 {
        r.keys(attempt * 10_000, "1001#9999#");
        assert_eq!(r.login_request(), ("1001".into(), "9999".into()));
        r.actions();
        r.verdict(attempt * 10_000 + 2000, Verdict::Incorrect);
        let actions = r.actions();
        if attempt < 3 {
            assert_eq!(
                actions,
                vec![Act::Play(ids(&["login_incorrect", "enter_account"]))],
                "attempt {attempt}"
            );
        } else {
            assert_eq!(
                actions,
                vec![
                    Act::StopPrompt,
                    Act::Play(ids(&["login_incorrect", "goodbye"]))
                ]
            );
        }
    }
    assert_eq!(r.decision(), Some(&Decision::Failed));
    // Nothing typed after the last attempt reaches the directory.
    r.keys(50_000, "1001#1234#");
    assert!(r.poll_request().is_none());
}

#[test]
fn keys_typed_during_verification_start_the_next_attempt() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#9999#");
    r.login_request();
    r.keys(2000, "1001#1234#");
    r.verdict(4000, Verdict::Incorrect);
    assert_eq!(r.login_request(), ("1001".into(), "1234".into()));
}

#[test]
fn locked_out_says_so_and_hangs_up() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#1234#");
    r.login_request();
    r.actions();
    r.verdict(3000, Verdict::LockedOut);
    assert_eq!(
        r.actions(),
        vec![
            Act::StopPrompt,
            Act::Play(ids(&["too_many_attempts", "goodbye"]))
        ]
    );
    assert_eq!(r.decision(), Some(&Decision::LockedOut));
}

#[test]
fn a_store_failure_says_try_later_and_hangs_up() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#1234#");
    r.login_request();
    r.actions();
    r.verdict(3000, Verdict::Unavailable);
    assert_eq!(
        r.actions(),
        vec![
            Act::StopPrompt,
            Act::Play(ids(&["service_unavailable", "goodbye"]))
        ]
    );
    assert_eq!(r.decision(), Some(&Decision::Error));
    let mut release = Run::start(HotdeskKind::Release, true);
    assert!(release.poll_request().is_some());
    release.released(1000, Err(Unavailable));
    assert_eq!(
        release.actions(),
        vec![
            Act::StopPrompt,
            Act::Play(ids(&["service_unavailable", "goodbye"]))
        ]
    );
}

#[test]
fn a_phone_outside_the_range_is_refused_without_asking_anything() {
    let mut r = Run::start(HotdeskKind::Login, false);
    assert_eq!(
        r.actions(),
        vec![
            Act::StopPrompt,
            Act::Play(ids(&["not_hotdesk_phone", "goodbye"]))
        ]
    );
    r.keys(500, "1001#1234#");
    assert!(r.poll_request().is_none());
    r.flow.handle_prompt_finished(r.at(4000));
    assert_eq!(r.actions(), vec![Act::Hangup]);
    assert_eq!(r.decision(), Some(&Decision::NotADesk));
}

#[test]
fn release_asks_the_directory_then_says_phone_released() {
    let mut r = Run::start(HotdeskKind::Release, true);
    assert!(matches!(r.poll_request(), Some(Ask::Release)));
    assert!(r.actions().is_empty());
    r.released(1000, Ok(Some("1001".into())));
    assert_eq!(
        r.actions(),
        vec![
            Act::StopPrompt,
            Act::Play(ids(&["phone_released", "goodbye"]))
        ]
    );
    assert_eq!(
        r.decision(),
        Some(&Decision::Released {
            user: Some("1001".into())
        })
    );
}

#[test]
fn callback_naming_the_user_asks_only_for_the_pin() {
    let mut r = Run::start(
        HotdeskKind::Callback {
            user: Some("1001".into()),
        },
        true,
    );
    assert_eq!(r.actions(), vec![Act::Play(ids(&["enter_pin"]))]);
    r.keys(500, "2468#");
    assert_eq!(r.login_request(), ("1001".into(), "2468".into()));
}

#[test]
fn silence_replays_the_prompt_then_says_goodbye() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    let mut now = r.at(2000);
    for _ in 0..3 {
        r.flow.handle_prompt_finished(now);
        let due = r.flow.poll_timeout().expect("first-digit timer");
        assert_eq!(due, now + Duration::from_secs(5));
        r.flow.handle_timeout(due);
        now = due + Duration::from_secs(2);
    }
    let actions = r.actions();
    assert_eq!(
        actions,
        vec![
            Act::Play(ids(&["enter_account"])),
            Act::Play(ids(&["enter_account"])),
            Act::StopPrompt,
            Act::Play(ids(&["goodbye"])),
        ]
    );
    assert_eq!(r.decision(), Some(&Decision::NoInput));
}

#[test]
fn star_clears_the_entry_and_replays_the_prompt() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "10*");
    assert_eq!(
        r.actions(),
        vec![Act::StopPrompt, Act::Play(ids(&["enter_account"]))]
    );
    r.keys(3000, "1002#5555#");
    assert_eq!(r.login_request(), ("1002".into(), "5555".into()));
}

#[test]
fn a_pin_shorter_than_four_digits_is_asked_again() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#12#");
    assert!(r.poll_request().is_none());
    let actions = r.actions();
    assert_eq!(
        actions.last(),
        Some(&Act::Play(ids(&["enter_pin"]))),
        "{actions:?}"
    );
}
