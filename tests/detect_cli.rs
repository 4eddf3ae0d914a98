//! The command-line contract (`contract.md` §1) of `hotdesk detect` and `hotdesk qa`, run
//! through the real binary: output formats, ordering, stderr lines and exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hotdesk_core::dsp::tone::{Burst, Signal};
use serde_json::Value;

fn hotdesk() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotdesk"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    // The defaults are what is tested; a developer's RUST_LOG must not change stderr.
    cmd.env_remove("RUST_LOG");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running hotdesk")
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One DTMF burst in a synthesised file: key, tone start and length, ms.
struct Key {
    digit: char,
    start_ms: f64,
    on_ms: f64,
}

/// Writes a 16-bit mono WAV at `rate` holding `keys` at -10 dBm0 per tone and `len_ms` long.
fn write_keys(path: &Path, rate: u32, keys: &[Key], len_ms: f64) {
    let mut s = Signal::new(rate, 7);
    for key in keys {
        let gap = s.ms(key.start_ms) - s.len();
        s.silence(gap);
        let on = s.ms(key.on_ms);
        s.burst(&Burst::new(key.digit, on, -10.0));
    }
    let tail = s.ms(len_ms) - s.len();
    s.silence(tail);
    hound_write(path, rate, &s.to_i16());
}

/// `digits` as 100 ms on / 100 ms off after 200 ms, 8 kHz.
fn write_digits(path: &Path, digits: &str) {
    let keys: Vec<Key> = digits
        .chars()
        .enumerate()
        .map(|(i, digit)| Key {
            digit,
            start_ms: 200.0 + 200.0 * i as f64,
            on_ms: 100.0,
        })
        .collect();
    write_keys(path, 8000, &keys, 200.0 * digits.len() as f64 + 400.0);
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn detect_prints_one_text_line_per_file_in_argument_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.wav");
    let b = dir.path().join("b.wav");
    write_digits(&a, "159");
    write_digits(&b, "#0*D");

    for order in [[&a, &b], [&b, &a]] {
        let out = run(hotdesk().arg("detect").args(order));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let expected: Vec<String> = order
            .iter()
            .map(|p| {
                let digits = if *p == &a { "159" } else { "#0*D" };
                format!("{}: {digits}", display(p))
            })
            .collect();
        assert_eq!(stdout_lines(&out), expected);
        assert!(out.stderr.is_empty(), "stderr: {:?}", stderr_lines(&out));
    }
}

#[test]
fn file_without_dtmf_prints_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let silence = dir.path().join("silence.wav");
    write_keys(&silence, 8000, &[], 1000.0);
    // A lone 1 kHz test tone and noise: audio, but no key.
    let tone = dir.path().join("tone.wav");
    let mut s = Signal::new(16000, 3);
    s.tones(&[(1000.0, -10.0, 0.0)], 16000).add_noise(-40.0);
    hound_write(&tone, 16000, &s.to_i16());

    let out = run(hotdesk().arg("detect").arg(&silence).arg(&tone));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout_lines(&out),
        [
            format!("{}: -", display(&silence)),
            format!("{}: -", display(&tone))
        ]
    );

    let out = run(hotdesk().args(["detect", "--json"]).arg(&silence));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_str(&stdout_lines(&out)[0]).unwrap();
    assert_eq!(v["file"], display(&silence));
    assert_eq!(v["digits"], "");
    assert_eq!(v["events"], Value::Array(vec![]));
}

fn hound_write(path: &Path, rate: u32, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &v in samples {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

fn number(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

/// `--json` at 8 kHz and at 44.1 kHz (through the resampler): fields, types and times.
#[test]
fn detect_json_reports_events_at_the_right_times() {
    let dir = tempfile::tempdir().unwrap();
    // Irregular timing so that nothing lines up with the detector's 5 ms hop by accident.
    let keys = [
        Key {
            digit: '1',
            start_ms: 253.0,
            on_ms: 61.0,
        },
        Key {
            digit: 'A',
            start_ms: 401.7,
            on_ms: 120.0,
        },
        Key {
            digit: '#',
            start_ms: 611.3,
            on_ms: 45.5,
        },
        Key {
            digit: '0',
            start_ms: 733.0,
            on_ms: 300.0,
        },
    ];
    let files: Vec<PathBuf> = [8000, 44100]
        .into_iter()
        .map(|rate| {
            let path = dir.path().join(format!("keys_{rate}.wav"));
            write_keys(&path, rate, &keys, 1400.0);
            path
        })
        .collect();

    let out = run(hotdesk().args(["detect", "--json"]).args(&files));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), files.len(), "{lines:?}");
    for (line, file) in lines.iter().zip(&files) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object(), "{line}");
        assert_eq!(v["file"], display(file), "{line}");
        assert_eq!(v["digits"], "1A#0", "{line}");
        let events = v["events"].as_array().expect("events is an array");
        assert_eq!(events.len(), keys.len(), "{line}");
        for (event, key) in events.iter().zip(&keys) {
            assert_eq!(event["digit"], key.digit.to_string(), "{event}");
            let (start, end) = (number(event, "start_ms"), number(event, "end_ms"));
            let detected = number(event, "detected_ms");
            let end_truth = key.start_ms + key.on_ms;
            assert!(
                (start - key.start_ms).abs() <= 2.0 && (end - end_truth).abs() <= 2.0,
                "{}: '{}' reported {start}-{end} ms, sent {}-{end_truth} ms",
                display(file),
                key.digit,
                key.start_ms
            );
            assert!(
                start < detected && detected <= end,
                "detected_ms {detected} outside {start}-{end}"
            );
            // -10 dBm0 per tone; the pair together is 3 dB more.
            for (field, level) in [
                ("low_dbm0", -10.0),
                ("high_dbm0", -10.0),
                ("level_dbm0", -10.0 + 10.0 * 2f64.log10()),
            ] {
                let got = number(event, field);
                assert!((got - level).abs() < 0.5, "{field} {got}, sent {level:.2}");
            }
        }
    }
}

#[test]
fn good_and_bad_files_mixed_report_each_bad_one_once_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good1 = dir.path().join("good1.wav");
    let good2 = dir.path().join("good2.wav");
    let good3 = dir.path().join("good3.wav");
    write_digits(&good1, "12");
    write_digits(&good2, "*");
    write_digits(&good3, "99");
    let missing = dir.path().join("missing.wav");
    let cut = dir.path().join("cut.wav");
    let bytes = std::fs::read(&good1).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();

    let files = [&good1, &missing, &good2, &cut, &good3];
    for json in [false, true] {
        let mut cmd = hotdesk();
        cmd.arg("detect");
        if json {
            cmd.arg("--json");
        }
        let out = run(cmd.args(files));
        assert_eq!(out.status.code(), Some(2), "json={json}: {out:?}");

        let stdout = stdout_lines(&out);
        if json {
            let got: Vec<(String, String)> = stdout
                .iter()
                .map(|l| {
                    let v: Value = serde_json::from_str(l).unwrap();
                    (
                        v["file"].as_str().unwrap().to_owned(),
                        v["digits"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                [
                    (display(&good1), "12".to_owned()),
                    (display(&good2), "*".to_owned()),
                    (display(&good3), "99".to_owned())
                ]
            );
        } else {
            assert_eq!(
                stdout,
                [
                    format!("{}: 12", display(&good1)),
                    format!("{}: *", display(&good2)),
                    format!("{}: 99", display(&good3))
                ]
            );
        }

        let stderr = stderr_lines(&out);
        assert_eq!(
            stderr.len(),
            2,
            "json={json}: one line per bad file: {stderr:#?}"
        );
        assert!(
            stderr[0].contains(&display(&missing)) && stderr[0].contains("cannot open"),
            "{}",
            stderr[0]
        );
        assert!(
            stderr[1].contains(&display(&cut)) && stderr[1].contains("truncated"),
            "{}",
            stderr[1]
        );
    }
}

/// Files that are not audio at all (random bytes, a text file, a zero-byte file, a
/// directory) are bad files like any other: exactly one stderr line each, naming it.
#[test]
fn files_that_are_not_audio_get_exactly_one_stderr_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wav");
    write_digits(&good, "5");
    let random = dir.path().join("random.mp3");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let text = dir.path().join("text.wav");
    std::fs::write(&text, "not audio\n").unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let folder = dir.path().join("folder.wav");
    std::fs::create_dir(&folder).unwrap();

    let bad = [&random, &text, &empty, &folder];
    let out = run(hotdesk().arg("detect").args(bad).arg(&good));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(stdout_lines(&out), [format!("{}: 5", display(&good))]);
    let stderr = stderr_lines(&out);
    assert_eq!(
        stderr.len(),
        bad.len(),
        "expected one stderr line per bad file, got:\n{}",
        stderr.join("\n")
    );
    for (line, path) in stderr.iter().zip(bad) {
        assert!(line.contains(&display(path)), "{line}");
    }
}

#[test]
fn detect_without_a_file_is_a_usage_error() {
    let out = run(hotdesk().arg("detect"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("required") && stderr.contains("Usage"),
        "{stderr}"
    );
}

#[test]
fn qa_on_the_shipped_fixtures_passes() {
    let out = run(hotdesk().args(["qa", "fixtures"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{out:?}");
    let tail: Vec<&str> = stdout.lines().rev().take(3).collect();
    assert!(
        tail.iter().any(|l| l.contains("passed, 0 failed")),
        "last lines: {tail:?}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn qa_with_a_broken_manifest_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest.toml"),
        "[[fixture]]\nfile = \"a.wav\nexpect = \"1\"\n",
    )
    .unwrap();
    let out = run(hotdesk().arg("qa").arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&display(&dir.path().join("manifest.toml"))),
        "{stderr}"
    );
    assert!(stderr.contains("line 2"), "no line number: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn qa_with_a_missing_fixture_file_shows_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    write_digits(&dir.path().join("present.wav"), "42");
    std::fs::write(
        dir.path().join("manifest.toml"),
        r#"
[[fixture]]
file = "present.wav"
expect = "42"
kind = "dtmf"
source = "test"
licence = "MIT"

[[fixture]]
file = "absent.wav"
expect = "7"
kind = "dtmf"
source = "test"
licence = "MIT"
"#,
    )
    .unwrap();
    let out = run(hotdesk().arg("qa").arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = |file: &str| {
        stdout
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("no row for {file}:\n{stdout}"))
            .to_owned()
    };
    assert!(row("present.wav").ends_with("PASS"), "{stdout}");
    let absent = row("absent.wav");
    assert!(absent.ends_with("FAIL"), "{absent}");
    assert!(absent.contains("cannot open"), "{absent}");
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

#[test]
fn detect_plot_draws_the_recording_and_prints_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("keys.wav");
    write_digits(&wav, "159#");
    let png = dir.path().join("keys.png");
    let out = run(hotdesk().args(["detect", "--plot"]).arg(&png).arg(&wav));
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    assert_eq!(stdout_lines(&out), [format!("{}: 159#", display(&wav))]);
    let bytes = std::fs::read(&png).expect("the picture was written");
    assert_eq!(png_size(&bytes), (1600, 720));
    // A picture of a recording is more than a blank canvas: tens of kilobytes of detail.
    assert!(bytes.len() > 20_000, "{} bytes", bytes.len());
}

#[test]
fn detect_plot_takes_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    write_digits(&a, "1");
    write_digits(&b, "2");
    let png = dir.path().join("x.png");
    let out = run(hotdesk()
        .args(["detect", "--plot"])
        .arg(&png)
        .arg(&a)
        .arg(&b));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_lines(&out)[0].contains("--plot draws one file; 2 given"),
        "{:?}",
        stderr_lines(&out)
    );
    assert!(!png.exists());
}

#[test]
fn detect_plot_of_an_unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wav");
    std::fs::write(&bad, b"not audio at all").unwrap();
    let png = dir.path().join("bad.png");
    let out = run(hotdesk().args(["detect", "--plot"]).arg(&png).arg(&bad));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_lines(&out)[0].contains("bad.wav"));
}

/// `detect` decodes a long recording in 128 s pieces on several cores: keys across the joins,
/// a noise floor that changes, speech-like bursts, and the result must be the one-pass result
/// to the sample.
#[test]
fn detect_on_pieces_gives_the_one_pass_result() {
    const PIECE: usize = 1_024_000;
    let mut s = Signal::new(8000, 21);
    let mut keys = "0123456789*#ABCD".chars().cycle();
    while s.len() < 3 * PIECE + 100_000 {
        // Keys every 0.6-1 s, and one straddling each join.
        let next_join = (s.len() / PIECE + 1) * PIECE;
        if next_join - s.len() < 9000 && next_join > s.len() + 200 {
            let gap = next_join - s.len() - 200;
            s.silence(gap);
        } else {
            let gap = s.ms(500.0 + (s.len() % 400) as f64);
            s.silence(gap);
        }
        let on = s.ms(60.0 + (s.len() % 90) as f64);
        s.burst(&Burst::new(keys.next().unwrap(), on, -14.0));
    }
    s.add_noise(-40.0);
    let audio = s.to_i16();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("long.wav");
    hound_write(&wav, 8000, &audio);
    let out = run(hotdesk().args(["detect", "--json"]).arg(&wav));
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    let v: Value = serde_json::from_str(&stdout_lines(&out)[0]).unwrap();
    let one_pass =
        hotdesk_core::dsp::dtmf::detect(&audio, &hotdesk_core::dsp::dtmf::DtmfParams::default());
    assert!(one_pass.len() > 300, "{} keys", one_pass.len());
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), one_pass.len());
    for (e, p) in events.iter().zip(&one_pass) {
        assert_eq!(e["digit"], p.digit.to_string());
        assert_eq!(number(e, "start_ms"), p.start as f64 / 8.0);
        assert_eq!(number(e, "end_ms"), p.end as f64 / 8.0);
        assert_eq!(number(e, "detected_ms"), p.detected_at as f64 / 8.0);
    }
}
