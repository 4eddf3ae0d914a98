//! The directory (`src/directory`): PIN policy and hashing, login semantics, lockouts on
//! injected time, reports in the outbox, durability across reopen, CSV import, and that no PIN
//! leaks into a report or an error.

use std::time::Duration;

use hotdesk::report::{Event, Report};
use hotdesk_store::Store;
use hotdesk_store::directory::{
    Directory, DirectoryError, LockoutPolicy, LoginAttempt, LoginOutcome, Pepper, Via, hash_pin,
    verify_pin,
};
use secrecy::SecretString;
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-22 10:00:00 UTC);

fn pepper() -> Pepper {
    Pepper::parse(&"ab".repeat(32)).unwrap()
}

fn policy() -> LockoutPolicy {
    LockoutPolicy {
        failures: 3,
        window: Duration::from_secs(60),
        lock: Duration::from_secs(300),
        device_failures: 5,
        source_failures: 8,
        source_window: Duration::from_secs(60),
        source_block: Duration::from_secs(300),
    }
}

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("hotdesk.db").display())
}

async fn open(dir: &tempfile::TempDir) -> Directory {
    Directory::open(&url(dir), pepper(), policy())
        .await
        .unwrap()
}

fn pin(s: &str) -> SecretString {
    SecretString::from(s)
}

/// A directory with users 1001 (PIN 2468), 1002 (PIN 1357) and 1003 (no PIN).
async fn populated(dir: &tempfile::TempDir) -> Directory {
    let d = open(dir).await;
    d.add_user("1001", Some("Alice"), Some("en")).await.unwrap();
    d.add_user("1002", Some("Bob"), None).await.unwrap();
    d.add_user("1003", None, None).await.unwrap();
    d.set_pin("1001", &pin("2468")).await.unwrap();
    d.set_pin("1002", &pin("1357")).await.unwrap();
    d
}

async fn login(
    d: &Directory,
    device: &str,
    account: &str,
    p: &str,
    at: OffsetDateTime,
) -> LoginOutcome {
    d.login_at(&attempt(device, account, p, None), at)
        .await
        .unwrap()
}

/// A login attempt on a feature-code call from `source`.
fn attempt(device: &str, account: &str, p: &str, source: Option<&str>) -> LoginAttempt {
    LoginAttempt {
        device: device.into(),
        account: account.into(),
        pin: pin(p),
        via: Via::FeatureCode,
        call_id: Some("call-1".into()),
        source: source.map(|s| s.parse().unwrap()),
    }
}

fn accepted(user: &str, previous: Option<&str>, released: Option<&str>) -> LoginOutcome {
    LoginOutcome::Accepted {
        user: user.into(),
        previous_user: previous.map(Into::into),
        released_from: released.map(Into::into),
    }
}

fn secs(s: i64) -> time::Duration {
    time::Duration::seconds(s)
}

async fn events(d: &Directory) -> Vec<Report> {
    d.events_after(None, 1000).await.unwrap()
}

fn summary(reports: &[Report]) -> Vec<(Event, String, Option<String>, Option<String>)> {
    reports
        .iter()
        .map(|r| {
            (
                r.event,
                r.device.clone(),
                r.user.clone(),
                r.previous_user.clone(),
            )
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.into())
}

#[tokio::test]
async fn pin_policy_refuses_short_long_and_non_digits() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    for (bad, why) in [
        ("123", "too short"),
        ("12345678901", "too long"),
        ("12a4", "only the digits"),
        ("", "too short"),
        ("1234 ", "only the digits"),
    ] {
        let err = d.set_pin("1001", &pin(bad)).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, DirectoryError::Invalid { field: "pin", .. }),
            "{text}"
        );
        assert!(text.contains(why), "{bad:?}: {text}");
        assert!(err.is_bad_input());
    }
    // Weak PINs are refused with the reason, never the PIN (pin_refuse_weak, on by default).
    for (weak, why) in [
        ("0000", "one digit repeated"),
        ("0123456789", "a run of digits"),
        ("9876", "a run of digits"),
        ("7890", "a run of digits"),
        ("2109", "a run of digits"),
        ("1001", "the extension itself"),
    ] {
        let err = d.set_pin("1001", &pin(weak)).await.unwrap_err().to_string();
        assert!(err.contains(why) && !err.contains(weak), "{weak:?}: {err}");
    }
    d.set_pin("1001", &pin("0518")).await.unwrap();
    d.set_pin("1001", &pin("5820374619")).await.unwrap();
    let err = d.set_pin("4444", &pin("1234")).await.unwrap_err();
    assert!(matches!(err, DirectoryError::UnknownUser(_)), "{err}");
}

#[tokio::test]
async fn hash_is_argon2id_with_the_pepper() {
    let p = pepper();
    let hash = hash_pin(&p, &pin("2468")).unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(verify_pin(&p, &pin("2468"), &hash).unwrap());
    assert!(!verify_pin(&p, &pin("2469"), &hash).unwrap());
    let other = Pepper::parse(&"cd".repeat(32)).unwrap();
    assert!(!verify_pin(&other, &pin("2468"), &hash).unwrap());
    // Salted: the same PIN hashes differently each time.
    assert_ne!(hash, hash_pin(&p, &pin("2468")).unwrap());
}

#[tokio::test]
async fn pepper_forms_and_lengths() {
    assert!(Pepper::parse(&"00".repeat(32)).is_ok());
    // 32 bytes of base64, padded and URL-safe.
    assert!(Pepper::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_ok());
    assert!(Pepper::parse("-_-_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw").is_ok());
    let err = Pepper::parse(&"00".repeat(31)).unwrap_err();
    assert!(err.to_string().contains("at least 32"), "{err}");
    assert!(Pepper::parse("not a pepper!").is_err());
    assert!(!format!("{:?}", pepper()).contains("ab"));
}

#[tokio::test]
async fn pepper_file_is_created_private_and_a_public_one_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir);
    let path = dir.path().join("hotdesk.db.pepper");
    let first = Pepper::resolve(&url, None).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let d = Directory::open(&url, first, policy()).await.unwrap();
    d.add_user("1001", None, None).await.unwrap();
    d.set_pin("1001", &pin("2468")).await.unwrap();
    d.close().await;
    // Loaded again, it is the same pepper: the hash verifies.
    let again = Pepper::resolve(&url, None).unwrap();
    let d = Directory::open(&url, again, policy()).await.unwrap();
    assert_eq!(
        login(&d, "5401", "1001", "2468", T0).await,
        accepted("1001", None, None)
    );
    d.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Pepper::resolve(&url, None).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    // The environment wins over the file.
    assert!(Pepper::resolve(&url, Some(&"ef".repeat(32))).is_ok());
}

#[tokio::test]
async fn another_pepper_is_refused_once_hashes_exist() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    d.close().await;
    let other = Pepper::parse(&"cd".repeat(32)).unwrap();
    let err = Directory::open(&url(&dir), other, policy())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DirectoryError::PepperMismatch { .. }),
        "{err}"
    );
    // A store with no hashes yet takes any pepper.
    let empty = tempfile::tempdir().unwrap();
    open(&empty).await.close().await;
    let other = Pepper::parse(&"cd".repeat(32)).unwrap();
    Directory::open(&url(&empty), other, policy())
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_pin_unknown_account_and_no_pin_are_all_incorrect() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    assert_eq!(
        login(&d, "5401", "1001", "9999", T0).await,
        LoginOutcome::Incorrect
    );
    assert_eq!(
        login(&d, "5402", "7777", "2468", T0).await,
        LoginOutcome::Incorrect
    );
    assert_eq!(
        login(&d, "5403", "1003", "1234", T0).await,
        LoginOutcome::Incorrect
    );
    // A PIN outside the policy is just wrong, not an error.
    assert_eq!(
        login(&d, "5404", "1001", "12", T0).await,
        LoginOutcome::Incorrect
    );
    let reports = events(&d).await;
    assert_eq!(
        summary(&reports),
        vec![
            (Event::LoginFailed, "5401".into(), s("1001"), None),
            // 7777 is no user: what was keyed is not kept (it may be a PIN typed early).
            (Event::LoginFailed, "5402".into(), None, None),
            (Event::LoginFailed, "5403".into(), s("1003"), None),
            (Event::LoginFailed, "5404".into(), s("1001"), None),
        ]
    );
    assert!(d.logins().await.unwrap().is_empty());
}

#[tokio::test]
async fn account_locks_after_n_failures_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    assert_eq!(
        login(&d, "5401", "1001", "0000", T0).await,
        LoginOutcome::Incorrect
    );
    assert_eq!(
        login(&d, "5402", "1001", "0000", T0 + secs(20)).await,
        LoginOutcome::Incorrect
    );
    let until = T0 + secs(40) + secs(300);
    assert_eq!(
        login(&d, "5401", "1001", "0000", T0 + secs(40)).await,
        LoginOutcome::LockedOut { until }
    );
    // The right PIN is not even verified while locked, and is not counted or reported.
    let before = events(&d).await.len();
    assert_eq!(
        login(&d, "5403", "1001", "2468", T0 + secs(50)).await,
        LoginOutcome::LockedOut { until }
    );
    assert_eq!(events(&d).await.len(), before);
    assert_eq!(
        d.locked_until_at("1001", T0 + secs(60)).await.unwrap(),
        Some(until)
    );
    // Other accounts are not affected.
    assert_eq!(
        login(&d, "5403", "1002", "1357", T0 + secs(50)).await,
        accepted("1002", None, None)
    );
    let last: Vec<_> = events(&d).await;
    let locked = last.iter().find(|r| r.event == Event::LockedOut).unwrap();
    assert_eq!(locked.user.as_deref(), Some("1001"));
    assert_eq!(locked.device, "5401");
}

#[tokio::test]
async fn failures_outside_the_window_do_not_lock() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    login(&d, "5401", "1001", "0000", T0).await;
    login(&d, "5401", "1001", "0000", T0 + secs(30)).await;
    // 61 s after the first: only two failures inside the window.
    assert_eq!(
        login(&d, "5401", "1001", "0000", T0 + secs(61)).await,
        LoginOutcome::Incorrect
    );
    assert_eq!(
        login(&d, "5401", "1001", "2468", T0 + secs(62)).await,
        accepted("1001", None, None)
    );
}

#[tokio::test]
async fn a_successful_login_clears_the_account_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    login(&d, "5401", "1001", "0000", T0).await;
    login(&d, "5401", "1001", "0000", T0 + secs(1)).await;
    login(&d, "5401", "1001", "2468", T0 + secs(2)).await;
    login(&d, "5401", "1001", "0000", T0 + secs(3)).await;
    assert_eq!(
        login(&d, "5401", "1001", "0000", T0 + secs(4)).await,
        LoginOutcome::Incorrect
    );
}

#[tokio::test]
async fn lockout_expires_with_a_fresh_allowance() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    for i in 0..3 {
        login(&d, "5401", "1001", "0000", T0 + secs(i)).await;
    }
    let until = T0 + secs(2) + secs(300);
    assert!(matches!(
        login(&d, "5401", "1001", "2468", until - secs(1)).await,
        LoginOutcome::LockedOut { .. }
    ));
    assert_eq!(d.locked_until_at("1001", until).await.unwrap(), None);
    // After the lock: one wrong PIN does not re-lock, the right one works.
    assert_eq!(
        login(&d, "5401", "1001", "0000", until).await,
        LoginOutcome::Incorrect
    );
    assert_eq!(
        login(&d, "5401", "1001", "2468", until + secs(1)).await,
        accepted("1001", None, None)
    );
}

#[tokio::test]
async fn unlock_clears_the_lock_and_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    // Real time here: unlock works on the current time.
    let now = hotdesk_store::directory::now();
    for i in 0..3 {
        login(&d, "5401", "1001", "0000", now + secs(i)).await;
    }
    assert!(d.is_locked("1001").await.unwrap());
    assert!(d.unlock("1001").await.unwrap());
    assert!(!d.is_locked("1001").await.unwrap());
    assert!(!d.unlock("1001").await.unwrap());
    assert_eq!(
        login(&d, "5401", "1001", "0000", now + secs(5)).await,
        LoginOutcome::Incorrect
    );
    assert_eq!(
        login(&d, "5401", "1001", "2468", now + secs(6)).await,
        accepted("1001", None, None)
    );
}

#[tokio::test]
async fn a_desk_locks_after_failures_across_many_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    for (i, account) in ["2001", "2002", "2003", "2004"].iter().enumerate() {
        assert_eq!(
            login(&d, "5410", account, "1111", T0 + secs(i as i64)).await,
            LoginOutcome::Incorrect
        );
    }
    let until = T0 + secs(4) + secs(300);
    assert_eq!(
        login(&d, "5410", "2005", "1111", T0 + secs(4)).await,
        LoginOutcome::LockedOut { until }
    );
    // The desk refuses even a good login; another desk takes it.
    assert_eq!(
        login(&d, "5410", "1001", "2468", T0 + secs(5)).await,
        LoginOutcome::LockedOut { until }
    );
    assert_eq!(
        login(&d, "5411", "1001", "2468", T0 + secs(5)).await,
        accepted("1001", None, None)
    );
    let reports = events(&d).await;
    let lock = reports
        .iter()
        .find(|r| r.event == Event::LockedOut)
        .unwrap();
    assert_eq!((lock.device.as_str(), lock.user.as_deref()), ("5410", None));
    d.unlock("5410").await.unwrap();
    assert_eq!(d.locked_until_at("5410", T0 + secs(6)).await.unwrap(), None);
}

#[tokio::test]
async fn a_second_desk_releases_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    assert_eq!(
        login(&d, "5401", "1001", "2468", T0).await,
        accepted("1001", None, None)
    );
    assert_eq!(
        login(&d, "5402", "1001", "2468", T0 + secs(60)).await,
        accepted("1001", None, Some("5401"))
    );
    let logins = d.logins().await.unwrap();
    assert_eq!(logins.len(), 1);
    assert_eq!(
        (logins[0].device.as_str(), logins[0].user.as_str()),
        ("5402", "1001")
    );
    assert_eq!(logins[0].since, T0 + secs(60));
    assert_eq!(
        summary(&events(&d).await),
        vec![
            (Event::Login, "5401".into(), s("1001"), None),
            (Event::Release, "5401".into(), s("1001"), None),
            (Event::Login, "5402".into(), s("1001"), None),
        ]
    );
}

#[tokio::test]
async fn a_takeover_names_the_previous_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    login(&d, "5401", "1001", "2468", T0).await;
    assert_eq!(
        login(&d, "5401", "1002", "1357", T0 + secs(1)).await,
        accepted("1002", Some("1001"), None)
    );
    // The same user again at the same desk: refreshed, nobody replaced.
    assert_eq!(
        login(&d, "5401", "1002", "1357", T0 + secs(2)).await,
        accepted("1002", None, None)
    );
    assert_eq!(
        summary(&events(&d).await),
        vec![
            (Event::Login, "5401".into(), s("1001"), None),
            (Event::Login, "5401".into(), s("1002"), s("1001")),
            (Event::Login, "5401".into(), s("1002"), None),
        ]
    );
    assert_eq!(d.logins().await.unwrap().len(), 1);
}

#[tokio::test]
async fn release_reports_the_user_and_nobody_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    assert_eq!(
        d.release_at("5401", Via::FeatureCode, Some("c9"), T0)
            .await
            .unwrap(),
        None
    );
    assert!(events(&d).await.is_empty());
    login(&d, "5401", "1001", "2468", T0).await;
    assert_eq!(
        d.release_at("5401", Via::Api, None, T0 + secs(1))
            .await
            .unwrap(),
        s("1001")
    );
    assert!(d.logins().await.unwrap().is_empty());
    let reports = events(&d).await;
    let release = &reports[1];
    assert_eq!(release.event, Event::Release);
    assert_eq!(release.via, Via::Api);
    assert_eq!(release.call_id, None);
}

#[tokio::test]
async fn report_bodies_are_exactly_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    let at = datetime!(2026-11-22 10:00:00.123 UTC);
    login(&d, "5401", "1001", "2468", at).await;
    let reports = events(&d).await;
    let body: serde_json::Value = serde_json::from_slice(&reports[0].body()).unwrap();
    let id = reports[0].id.clone();
    assert_eq!(id.len(), 26, "ULID");
    assert_eq!(
        body,
        serde_json::json!({
            "id": id, "event": "login", "device": "5401", "user": "1001",
            "previous_user": null, "via": "feature_code", "call_id": "call-1",
            "at": "2026-11-22T10:00:00.123Z"
        })
    );
    // Key order as in contract §5.
    let text = String::from_utf8(reports[0].body()).unwrap();
    let keys = [
        "\"id\"",
        "\"event\"",
        "\"device\"",
        "\"user\"",
        "\"previous_user\"",
        "\"via\"",
        "\"call_id\"",
        "\"at\"",
    ];
    let positions: Vec<_> = keys.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[tokio::test]
async fn events_after_pages_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    for i in 0..5 {
        login(&d, &format!("54{i:02}"), "1001", "2468", T0 + secs(i)).await;
    }
    let all = events(&d).await;
    assert_eq!(all.len(), 9); // 5 logins, 4 releases
    let first = d.events_after(None, 4).await.unwrap();
    let rest = d.events_after(Some(&first[3].id), 100).await.unwrap();
    assert_eq!([first, rest].concat(), all);
    let mut ids: Vec<_> = all.iter().map(|r| r.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 9);
    let err = d.events_after(Some("01NOPE"), 10).await.unwrap_err();
    assert!(matches!(err, DirectoryError::UnknownEvent(_)), "{err}");
    assert_eq!(d.queue_depth().await.unwrap(), 9);
}

#[tokio::test]
async fn reopening_the_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    login(&d, "5401", "1001", "2468", T0).await;
    for i in 0..3 {
        login(&d, "5402", "1002", "0000", T0 + secs(i)).await;
    }
    let users = d.list_users().await.unwrap();
    let logins = d.logins().await.unwrap();
    let reports = events(&d).await;
    d.close().await;
    drop(d);

    let d = open(&dir).await;
    assert_eq!(d.list_users().await.unwrap(), users);
    assert_eq!(d.logins().await.unwrap(), logins);
    assert_eq!(events(&d).await, reports);
    assert!(
        d.locked_until_at("1002", T0 + secs(10))
            .await
            .unwrap()
            .is_some()
    );
    let alice = d.user("1001").await.unwrap().unwrap();
    assert_eq!(
        (
            alice.name.as_str(),
            alice.language.as_deref(),
            alice.has_pin
        ),
        ("Alice", Some("en"), true)
    );
    assert_eq!(
        login(&d, "5403", "1001", "2468", T0 + secs(20)).await,
        accepted("1001", None, Some("5401"))
    );
}

#[tokio::test]
async fn users_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    let err = d.add_user("1001", None, None).await.unwrap_err();
    assert!(matches!(err, DirectoryError::UserExists(_)), "{err}");
    for (ext, name, lang, field) in [
        ("10a1", None, None, "extension"),
        ("", None, None, "extension"),
        ("123456789012345678901", None, None, "extension"),
        ("1009", Some("bad\nname"), None, "name"),
        ("1009", None, Some("EN"), "language"),
        ("1009", None, Some("english"), "language"),
    ] {
        let err = d.add_user(ext, name, lang).await.unwrap_err();
        assert!(
            matches!(err, DirectoryError::Invalid { field: f, .. } if f == field),
            "{ext:?}: {err}"
        );
    }
    d.add_user("999", None, Some("pt-BR")).await.unwrap();
    let list: Vec<_> = d
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.extension, u.has_pin))
        .collect();
    assert_eq!(
        list,
        vec![
            ("999".into(), false),
            ("1001".into(), true),
            ("1002".into(), true),
            ("1003".into(), false)
        ]
    );
    // Removing a logged-in user releases their desk.
    login(&d, "5401", "1001", "2468", T0).await;
    assert!(d.remove_user("1001").await.unwrap());
    assert!(!d.remove_user("1001").await.unwrap());
    assert!(d.logins().await.unwrap().is_empty());
    let last = events(&d).await.pop().unwrap();
    assert_eq!(
        (last.event, last.device.as_str(), last.via),
        (Event::Release, "5401", Via::Api)
    );
    assert_eq!(d.user("1001").await.unwrap(), None);
}

#[tokio::test]
async fn csv_import_reports_bad_lines_by_number_and_keeps_the_good() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    let csv = "extension,name,pin,language\n\
               2001,Carol,1739,fr\n\
               2002,Dave,12,en\n\
               # a comment\n\
               20x3,Eve,5178\n\
               \n\
               2004,\"Frank, Jr.\",87154321\n\
               1002,Bob Renamed,,de\n\
               2005,Gina\n\
               2006,Hal,4931,ENGLISH\n\
               2007,Ivy,\n\
               2008,\"Unclosed,1739\n\
               2009,Jo,2292\r\n";
    let report = d.import_csv(csv.as_bytes()).await.unwrap();
    assert_eq!((report.added, report.updated), (4, 1), "{report:?}");
    let errors: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.line, e.message.split(':').next().unwrap().to_string()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, "pin".into()),
            (5, "extension".into()),
            (9, "line".into()),
            (10, "language".into()),
            (12, "line".into()),
        ]
    );
    assert_eq!(
        report.errors[0].to_string(),
        format!("line 3: {}", report.errors[0].message)
    );
    let carol = d.user("2001").await.unwrap().unwrap();
    assert_eq!(
        (
            carol.name.as_str(),
            carol.language.as_deref(),
            carol.has_pin
        ),
        ("Carol", Some("fr"), true)
    );
    assert_eq!(d.user("2004").await.unwrap().unwrap().name, "Frank, Jr.");
    assert!(!d.user("2007").await.unwrap().unwrap().has_pin);
    // The update kept Bob's PIN (empty field) and took the new name and language.
    let bob = d.user("1002").await.unwrap().unwrap();
    assert_eq!(
        (bob.name.as_str(), bob.language.as_deref(), bob.has_pin),
        ("Bob Renamed", Some("de"), true)
    );
    assert_eq!(
        login(&d, "5401", "1002", "1357", T0).await,
        accepted("1002", None, None)
    );
    assert_eq!(
        login(&d, "5402", "2001", "1739", T0).await,
        accepted("2001", None, None)
    );
    assert!(d.user("2002").await.unwrap().is_none());
    assert!(d.user("2009").await.unwrap().unwrap().has_pin);
}

#[tokio::test]
async fn no_pin_in_reports_errors_or_debug() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    // Distinctive PINs that cannot appear by chance in ids, times or extensions.
    d.add_user("3001", None, None).await.unwrap();
    d.set_pin("3001", &pin("9176543")).await.unwrap();
    login(&d, "5401", "3001", "9176543", T0).await;
    login(&d, "5402", "3001", "8765432", T0 + secs(1)).await;
    login(&d, "5402", "4242", "8765432", T0 + secs(2)).await;
    for _ in 0..3 {
        login(&d, "5403", "3001", "7654321", T0 + secs(3)).await;
    }
    let mut texts: Vec<String> = events(&d)
        .await
        .iter()
        .map(|r| String::from_utf8(r.body()).unwrap())
        .collect();
    for bad in ["7654321x", "76543210987", "765"] {
        texts.push(d.set_pin("3001", &pin(bad)).await.unwrap_err().to_string());
    }
    let report = d
        .import_csv("3002,X,7654321a\n3003,Y,76543\n3004,Z,7654321,zz-!\n".as_bytes())
        .await
        .unwrap();
    texts.extend(report.errors.iter().map(|e| e.to_string()));
    let secret = pin("7654321");
    texts.push(format!("{secret:?}"));
    texts.push(format!(
        "{:?}",
        LoginAttempt {
            device: "5401".into(),
            account: "3001".into(),
            pin: secret.clone(),
            via: Via::Api,
            call_id: None,
            source: None,
        }
    ));
    texts.push(format!("{d:?}"));
    assert!(texts.len() > 10);
    for text in &texts {
        for p in ["9176543", "8765432", "7654321", "76543"] {
            assert!(!text.contains(p), "{p} in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_exceed_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..12 {
        let d = d.clone();
        guesses.spawn(async move {
            let device = format!("54{i:02}");
            login(&d, &device, "1001", &format!("{:04}", 9000 + i), T0).await
        });
    }
    let mut locked = 0;
    while let Some(outcome) = guesses.join_next().await {
        match outcome.unwrap() {
            LoginOutcome::Incorrect => {}
            LoginOutcome::LockedOut { .. } => locked += 1,
            other => panic!("{other:?}"),
        }
    }
    // Exactly `failures` attempts were verified; the third tripped the lock.
    let reports = events(&d).await;
    let failed = reports
        .iter()
        .filter(|r| r.event == Event::LoginFailed)
        .count();
    let lockouts = reports
        .iter()
        .filter(|r| r.event == Event::LockedOut)
        .count();
    assert_eq!((failed, lockouts, locked), (3, 1, 10));
}

/// [`login`] from a source address.
async fn login_from(
    d: &Directory,
    device: &str,
    account: &str,
    p: &str,
    source: &str,
    at: OffsetDateTime,
) -> LoginOutcome {
    d.login_at(&attempt(device, account, p, Some(source)), at)
        .await
        .unwrap()
}

/// One desk is one key: a desk spelt `05401` or `+5401` is refused, not counted apart
/// (found by an outside test: 60 guesses under 8 spellings locked nothing).
#[tokio::test]
async fn a_desk_spelt_another_way_is_refused_not_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    for spelling in ["05401", "005401", "+5401", " 5401", "5401 ", "５４０１"] {
        let err = d
            .login_at(&attempt(spelling, "1001", "9999", None), T0)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                DirectoryError::Invalid {
                    field: "device",
                    ..
                }
            ),
            "{spelling:?}: {err}"
        );
        assert!(
            d.release(spelling, Via::Api, None).await.is_err(),
            "{spelling:?}"
        );
    }
    // None of them wrote anything; the desk's own allowance is untouched.
    assert!(events(&d).await.is_empty());
    for _ in 0..4 {
        login(&d, "5401", "1002", "9999", T0).await;
    }
    assert_eq!(
        login(&d, "5401", "1001", "2468", T0).await,
        accepted("1001", None, None)
    );
}

/// What a caller keyed is kept only when it is a user's exact extension: a PIN typed where
/// the account is asked for (`10012468`, the first `#` missed) or an account spelt with a
/// leading zero leaves no trace of itself in the reports or the failure count.
#[tokio::test]
async fn an_account_entry_that_is_no_user_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    for keyed in ["10012468", "01001", "2468", "1001246824682468246824682468"] {
        assert_eq!(
            login(&d, "5401", keyed, "2468", T0).await,
            LoginOutcome::Incorrect
        );
    }
    let reports = events(&d).await;
    assert_eq!(reports.len(), 4);
    for r in &reports {
        assert_eq!((r.event, r.user.as_deref()), (Event::LoginFailed, None));
        assert!(!String::from_utf8(r.body()).unwrap().contains("2468"));
    }
    // The store holds no trace of the entries either.
    d.close().await;
    let raw = std::fs::read(dir.path().join("hotdesk.db")).unwrap();
    let wal = std::fs::read(dir.path().join("hotdesk.db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        assert!(
            !bytes.windows(8).any(|w| w == b"10012468"),
            "the keyed entry is in the store"
        );
    }
}

/// Guessing across many accounts and desks from one address blocks the address (fail2ban's
/// job over Asterisk's security events): `source_blocked` is reported with the source, later
/// attempts from it are refused without counting, the API can list and clear the block, and
/// an IPv6 source counts by its /64.
#[tokio::test]
async fn one_source_guessing_across_accounts_and_desks_is_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    // policy(): 8 failures from one source within 60 s; desks lock at 5, accounts at 3, so
    // spread the guesses over desks and made-up accounts.
    for i in 0..7 {
        let desk = format!("54{:02}", 10 + i);
        let account = format!("{}", 2000 + i);
        assert_eq!(
            login_from(&d, &desk, &account, "1111", "192.0.2.7", T0 + secs(i)).await,
            LoginOutcome::Incorrect
        );
    }
    let tripped = login_from(&d, "5420", "3000", "1111", "::ffff:192.0.2.7", T0 + secs(8)).await;
    assert!(
        matches!(tripped, LoginOutcome::LockedOut { .. }),
        "{tripped:?}"
    );
    let last = events(&d).await.pop().unwrap();
    assert_eq!(last.event, Event::SourceBlocked);
    assert_eq!(last.source.as_deref(), Some("192.0.2.7"));
    let body = String::from_utf8(last.body()).unwrap();
    assert!(
        body.contains(r#""event":"source_blocked""#) && body.contains(r#""source":"192.0.2.7""#),
        "{body}"
    );
    // Even the right PIN is refused from there now, and nothing more is counted or reported.
    let before = events(&d).await.len();
    let refused = login_from(&d, "5430", "1001", "2468", "192.0.2.7", T0 + secs(9)).await;
    assert!(matches!(refused, LoginOutcome::LockedOut { .. }));
    assert_eq!(events(&d).await.len(), before);
    // Another source is not affected.
    assert_eq!(
        login_from(&d, "5430", "1001", "2468", "192.0.2.8", T0 + secs(9)).await,
        accepted("1001", None, None)
    );
    // Listed, then cleared by address.
    let locks = d.lockouts_at(T0 + secs(10)).await.unwrap();
    assert!(
        locks
            .iter()
            .any(|l| l.kind == "source" && l.subject == "192.0.2.7"),
        "{locks:?}"
    );
    // (unlock says whether a lock is in force at the real time; these are on test time)
    d.unlock("192.0.2.7").await.unwrap();
    assert!(
        d.blocked_sources_at(T0 + secs(10))
            .await
            .unwrap()
            .is_empty()
    );
    // IPv6: eight addresses of one /64 are one source.
    for i in 0..8 {
        let desk = format!("54{:02}", 50 + i);
        let account = format!("{}", 2100 + i);
        login_from(
            &d,
            &desk,
            &account,
            "1111",
            &format!("2001:db8:1:2::{}", i + 1),
            T0 + secs(20),
        )
        .await;
    }
    let blocked = d.blocked_sources_at(T0 + secs(21)).await.unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].0, "2001:db8:1:2::/64");
    d.unlock("2001:db8:1:2::99").await.unwrap();
    assert!(
        d.blocked_sources_at(T0 + secs(21))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        d.unlock("not-an-address").await,
        Err(DirectoryError::Invalid { .. })
    ));
}

/// Delivered reports past the retention are deleted; undelivered ones never are.
#[tokio::test]
async fn pruning_keeps_what_is_undelivered() {
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    login(&d, "5401", "1001", "2468", T0).await;
    login(&d, "5402", "1002", "1357", T0).await;
    let pending = d.events_after(None, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    // Nothing is delivered: nothing goes, however old.
    let later = T0 + time::Duration::days(100);
    assert_eq!(
        d.prune_at(later, Some(Duration::from_secs(86_400)))
            .await
            .unwrap(),
        0
    );
    assert_eq!(events(&d).await.len(), 2);
    assert_eq!(d.prune_at(later, None).await.unwrap(), 0);
}

/// The store's files hold the PIN hashes: owner-only (0600), also when they were 0644.
#[tokio::test]
async fn the_store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = populated(&dir).await;
    login(&d, "5401", "1001", "2468", T0).await;
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for name in ["hotdesk.db", "hotdesk.db-wal", "hotdesk.db-shm"] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    d.close().await;
    drop(d);
    // A store made by an older version (0644) is made private when opened.
    for name in ["hotdesk.db", "hotdesk.db-wal", "hotdesk.db-shm"] {
        let path = dir.path().join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let _d = open(&dir).await;
    assert_eq!(mode("hotdesk.db"), 0o600);
}
