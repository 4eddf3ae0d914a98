//! The hot-desk flows on virtual time: prompts, type-ahead, verdicts, attempts, release.

use std::time::{Duration, Instant};

use hotdesk::ivr::FlowAction;
use hotdesk::ivr::hotdesk::{
    Decision, DirectoryRequest, FlowSettings, HotdeskFlow, HotdeskKind, Verdict,
};
use secrecy::ExposeSecret;

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
}

impl Run {
    fn start(kind: HotdeskKind, is_desk: bool) -> Run {
        let t0 = Instant::now();
        Run {
            flow: HotdeskFlow::start(t0, kind, "5401", is_desk, settings()),
            t0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn actions(&mut self) -> Vec<FlowAction> {
        std::iter::from_fn(|| self.flow.poll_action()).collect()
    }

    fn keys(&mut self, ms: u64, keys: &str) {
        for (i, k) in keys.chars().enumerate() {
            let at = self.at(ms + 100 * i as u64);
            self.flow.handle_digit(at, k);
        }
    }

    /// The login request the flow made: (account, pin).
    fn login_request(&mut self) -> (String, String) {
        match self.flow.poll_request() {
            Some(DirectoryRequest::Login { account, pin }) => {
                (account, pin.expose_secret().to_owned())
            }
            other => panic!("expected a login request, got {other:?}"),
        }
    }
}

#[test]
fn type_ahead_answers_both_questions_in_one_go() {
    let mut r = Run::start(HotdeskKind::Login, true);
    assert_eq!(r.actions(), vec![FlowAction::Play(ids(&["enter_account"]))]);
    r.keys(500, "1001#1234#");
    // Each prompt is cut by the next key: the caller never waits for a prompt to end.
    assert_eq!(
        r.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["enter_pin"])),
            FlowAction::StopPrompt
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
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["enter_pin"]))
        ]
    );
    assert!(r.flow.poll_request().is_none());
    r.flow.handle_prompt_finished(r.at(2500));
    r.keys(3000, "4321#");
    assert_eq!(r.login_request(), ("1001".into(), "4321".into()));
    r.flow.handle_verdict(
        r.at(4000),
        Verdict::Accepted {
            user: "1001".into(),
        },
    );
    assert_eq!(
        r.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&[
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
    assert!(r.flow.poll_request().is_none());
    r.flow.handle_prompt_finished(r.at(8000));
    assert_eq!(r.actions(), vec![FlowAction::Hangup]);
    assert_eq!(
        r.flow.decision(),
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
        r.flow
            .handle_verdict(r.at(attempt * 10_000 + 2000), Verdict::Incorrect);
        let actions = r.actions();
        if attempt < 3 {
            assert_eq!(
                actions,
                vec![FlowAction::Play(ids(&["login_incorrect", "enter_account"]))],
                "attempt {attempt}"
            );
        } else {
            assert_eq!(
                actions,
                vec![
                    FlowAction::StopPrompt,
                    FlowAction::Play(ids(&["login_incorrect", "goodbye"]))
                ]
            );
        }
    }
    assert_eq!(r.flow.decision(), Some(&Decision::Failed));
    // Nothing typed after the last attempt reaches the directory.
    r.keys(50_000, "1001#1234#");
    assert!(r.flow.poll_request().is_none());
}

#[test]
fn keys_typed_during_verification_start_the_next_attempt() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#9999#");
    r.login_request();
    r.keys(2000, "1001#1234#");
    r.flow.handle_verdict(r.at(4000), Verdict::Incorrect);
    assert_eq!(r.login_request(), ("1001".into(), "1234".into()));
}

#[test]
fn locked_out_says_so_and_hangs_up() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#1234#");
    r.login_request();
    r.actions();
    r.flow.handle_verdict(r.at(3000), Verdict::LockedOut);
    assert_eq!(
        r.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["too_many_attempts", "goodbye"]))
        ]
    );
    assert_eq!(r.flow.decision(), Some(&Decision::LockedOut));
}

#[test]
fn a_store_failure_says_try_later_and_hangs_up() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#1234#");
    r.login_request();
    r.actions();
    r.flow.handle_verdict(r.at(3000), Verdict::Unavailable);
    assert_eq!(
        r.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["service_unavailable", "goodbye"]))
        ]
    );
    assert_eq!(r.flow.decision(), Some(&Decision::Error));
    let mut release = Run::start(HotdeskKind::Release, true);
    assert!(release.flow.poll_request().is_some());
    release.flow.handle_released(Err(()));
    assert_eq!(
        release.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["service_unavailable", "goodbye"]))
        ]
    );
}

#[test]
fn a_phone_outside_the_range_is_refused_without_asking_anything() {
    let mut r = Run::start(HotdeskKind::Login, false);
    assert_eq!(
        r.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["not_hotdesk_phone", "goodbye"]))
        ]
    );
    r.keys(500, "1001#1234#");
    assert!(r.flow.poll_request().is_none());
    r.flow.handle_prompt_finished(r.at(4000));
    assert_eq!(r.actions(), vec![FlowAction::Hangup]);
    assert_eq!(r.flow.decision(), Some(&Decision::NotADesk));
}

#[test]
fn release_asks_the_directory_then_says_phone_released() {
    let mut r = Run::start(HotdeskKind::Release, true);
    assert!(matches!(
        r.flow.poll_request(),
        Some(DirectoryRequest::Release)
    ));
    assert!(r.actions().is_empty());
    r.flow.handle_released(Ok(Some("1001".into())));
    assert_eq!(
        r.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["phone_released", "goodbye"]))
        ]
    );
    assert_eq!(
        r.flow.decision(),
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
    assert_eq!(r.actions(), vec![FlowAction::Play(ids(&["enter_pin"]))]);
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
            FlowAction::Play(ids(&["enter_account"])),
            FlowAction::Play(ids(&["enter_account"])),
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["goodbye"])),
        ]
    );
    assert_eq!(r.flow.decision(), Some(&Decision::NoInput));
}

#[test]
fn star_clears_the_entry_and_replays_the_prompt() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "10*");
    assert_eq!(
        r.actions(),
        vec![
            FlowAction::StopPrompt,
            FlowAction::Play(ids(&["enter_account"]))
        ]
    );
    r.keys(3000, "1002#5555#");
    assert_eq!(r.login_request(), ("1002".into(), "5555".into()));
}

#[test]
fn a_pin_shorter_than_four_digits_is_asked_again() {
    let mut r = Run::start(HotdeskKind::Login, true);
    r.actions();
    r.keys(500, "1001#12#");
    assert!(r.flow.poll_request().is_none());
    let actions = r.actions();
    assert_eq!(
        actions.last(),
        Some(&FlowAction::Play(ids(&["enter_pin"]))),
        "{actions:?}"
    );
}
