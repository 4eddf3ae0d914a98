//! `hotdesk users …` and `hotdesk devices …` (contract §1), run as the binary in a temporary
//! working directory on the embedded defaults (`sqlite://hotdesk.db`) or a `--config` file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use hotdesk_store::directory::{Directory, LockoutPolicy, LoginAttempt, Pepper, Via};
use secrecy::SecretString;

/// Runs the binary in `dir` with `stdin` as standard input.
fn run(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotdesk"))
        .args(args)
        .current_dir(dir)
        .env_remove("HOTDESK_PIN_PEPPER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = run(dir, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command expected to fail with `code`; returns stderr.
fn fails(dir: &Path, args: &[&str], stdin: &str, code: i32) -> String {
    let out = run(dir, args, stdin);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.trim().is_empty(), "{args:?}: no message");
    stderr
}

/// The directory the binary uses in `dir`, opened by the library (same file, same pepper).
async fn library(dir: &Path) -> Directory {
    let url = format!("sqlite://{}", dir.join("hotdesk.db").display());
    let pepper = Pepper::resolve(&url, None).unwrap();
    Directory::open(&url, pepper, LockoutPolicy::default())
        .await
        .unwrap()
}

async fn login(d: &Directory, device: &str, account: &str, pin: &str) {
    let pin = SecretString::from(pin);
    d.login(&LoginAttempt {
        device: device.into(),
        account: account.into(),
        pin,
        via: Via::FeatureCode,
        call_id: Some("cli-test".into()),
        source: None,
    })
    .await
    .unwrap();
}

#[test]
fn users_add_set_pin_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        ok(
            d,
            &[
                "users",
                "add",
                "1001",
                "--name",
                "Alice",
                "--language",
                "en"
            ],
            ""
        ),
        "added 1001\n"
    );
    ok(d, &["users", "add", "1002"], "");
    assert!(d.join("hotdesk.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("hotdesk.db.pepper"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = fails(d, &["users", "add", "1001"], "", 2);
    assert!(
        err.contains("1001") && err.contains("already exists"),
        "{err}"
    );
    let err = fails(d, &["users", "add", "10a1"], "", 2);
    assert!(err.contains("extension"), "{err}");
    let err = fails(d, &["users", "add", "1003", "--language", "English"], "", 2);
    assert!(err.contains("language"), "{err}");

    assert_eq!(
        ok(d, &["users", "set-pin", "1001"], "24680\n"),
        "PIN set for 1001\n"
    );
    // Bad PINs: refused with the reason, never echoed.
    for (pin, why) in [
        ("987\n", "too short"),
        ("98a76\n", "digits"),
        ("7777\n", "one digit repeated"),
        ("4321\n", "a run of digits"),
        ("", "no PIN"),
    ] {
        let err = fails(d, &["users", "set-pin", "1002"], pin, 2);
        assert!(err.contains(why), "{err}");
        if !pin.is_empty() {
            assert!(!err.contains(pin.trim()), "{err}");
        }
    }
    let err = fails(d, &["users", "set-pin", "4040"], "1739\n", 2);
    assert!(err.contains("no such user"), "{err}");
    // Never from argv: clap refuses the extra argument.
    fails(d, &["users", "set-pin", "1002", "1234"], "", 2);

    assert_eq!(
        ok(d, &["users", "list"], ""),
        "EXTENSION\tPIN\tLANGUAGE\tNAME\n1001\tset\ten\tAlice\n1002\tnone\t-\t\n"
    );
    let json = ok(d, &["users", "list", "--json"], "");
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["extension"], "1001");
    assert_eq!(first["has_pin"], true);
    assert!(!json.contains("24680") && !json.contains("argon2"));

    assert_eq!(ok(d, &["users", "remove", "1002"], ""), "removed 1002\n");
    let err = fails(d, &["users", "remove", "1002"], "", 2);
    assert!(err.contains("no such user"), "{err}");
}

#[test]
fn users_import_names_bad_lines_and_keeps_the_good() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("people.csv"),
        "extension,name,pin,language\n2001,Carol,1739,fr\n2002,Dave,12\n2003,Eve,5178\n",
    )
    .unwrap();
    let out = run(d, &["users", "import", "people.csv"], "");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("people.csv:3: pin:"), "{stderr}");
    assert!(
        !stderr.contains("12\n") && !stderr.contains(",12"),
        "{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("2 added, 0 updated, 1 lines refused"),
        "{stdout}"
    );
    let list = ok(d, &["users", "list"], "");
    assert!(list.contains("2001\tset\tfr\tCarol") && list.contains("2003\tset\t-\tEve"));
    assert!(!list.contains("2002"));
    let err = fails(d, &["users", "import", "missing.csv"], "", 2);
    assert!(err.contains("missing.csv"), "{err}");
}

#[tokio::test]
async fn devices_logins_release_and_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["users", "add", "1001", "--name", "Alice"], "");
    ok(d, &["users", "set-pin", "1001"], "2468\n");
    ok(d, &["users", "add", "1002"], "");
    ok(d, &["users", "set-pin", "1002"], "1357\n");

    let directory = library(d).await;
    login(&directory, "5401", "1001", "2468").await;
    // Five wrong PINs lock 1002 (the default policy).
    for _ in 0..5 {
        login(&directory, "5402", "1002", "0000").await;
    }
    assert!(directory.is_locked("1002").await.unwrap());
    directory.close().await;

    let logins = ok(d, &["devices", "logins"], "");
    let fields: Vec<_> = logins.trim_end().split('\t').collect();
    assert_eq!(
        (fields[0], fields[1], fields[3]),
        ("5401", "1001", "feature_code")
    );
    let json = ok(d, &["devices", "logins", "--json"], "");
    let login: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(login["device"], "5401");
    assert!(login["since"].as_str().unwrap().ends_with('Z'));

    // Every desk of the default range 5400-5499.
    let list = ok(d, &["devices", "list"], "");
    assert_eq!(list.lines().count(), 100);
    assert_eq!(list.lines().next().unwrap(), "5400\t-");
    assert!(list.lines().nth(1).unwrap().starts_with("5401\t1001\t"));

    assert_eq!(
        ok(d, &["devices", "release", "5401"], ""),
        "released 5401 (1001 was logged in)\n"
    );
    assert_eq!(
        ok(d, &["devices", "release", "5401"], ""),
        "5401: nobody was logged in\n"
    );
    assert_eq!(ok(d, &["devices", "logins"], ""), "");

    assert_eq!(ok(d, &["devices", "unlock", "1002"], ""), "unlocked 1002\n");
    assert_eq!(
        ok(d, &["devices", "unlock", "1002"], ""),
        "1002 was not locked\n"
    );

    let directory = library(d).await;
    assert!(!directory.is_locked("1002").await.unwrap());
    let last = directory
        .events_after(None, 100)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.event.as_str(), last.device.as_str(), last.via),
        ("release", "5401", Via::Api)
    );
    directory.close().await;
}

#[test]
fn config_file_chooses_the_store_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("hotdesk.toml"),
        "[store]\nurl = \"sqlite://other.db\"\n[features]\ndevice_range = \"5400-5402\"\n",
    )
    .unwrap();
    ok(d, &["users", "add", "1001", "--config", "hotdesk.toml"], "");
    assert!(d.join("other.db").exists() && !d.join("hotdesk.db").exists());
    assert_eq!(
        ok(d, &["devices", "--config", "hotdesk.toml", "list"], ""),
        "5400\t-\n5401\t-\n5402\t-\n"
    );
    std::fs::write(d.join("bad.toml"), "[store]\nurl = \"mysql://x\"\n").unwrap();
    let err = fails(d, &["users", "list", "--config", "bad.toml"], "", 2);
    assert!(
        err.contains("bad.toml") && err.contains("store.url"),
        "{err}"
    );
    let err = fails(d, &["users", "list", "--config", "absent.toml"], "", 2);
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn a_world_readable_pepper_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["users", "add", "1001"], "");
    let pepper = d.join("hotdesk.db.pepper");
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(d, &["users", "list"], "", 2);
    assert!(
        err.contains("hotdesk.db.pepper") && err.contains("chmod 600"),
        "{err}"
    );
}
