//! The format matrix of `audio::load`: the DTMF string `159#*0` synthesised directly at every
//! common sample rate, written as every WAV sample format in mono and stereo, must decode to
//! exactly that string at the right times and levels; and every real encoded file under
//! `fixtures/formats/` (FLAC, Ogg Vorbis, MP3, G.711 WAV, ...) must decode through the same
//! loader, so these containers are covered by `cargo test` and not only by `hotdesk qa`.

use std::path::{Path, PathBuf};

use hotdesk_core::audio::{self, Audio, TELEPHONE_RATE};
use hotdesk_core::dsp::dtmf::{DtmfParams, KeyPress, detect, digits};
use hotdesk_core::dsp::tone::{Burst, Signal};
use hotdesk_qa::qa;

const DIGITS: &str = "159#*0";
const RATES: [u32; 6] = [8000, 11025, 16000, 22050, 44100, 48000];
const LEAD_MS: f64 = 200.0;
const ON_MS: f64 = 100.0;
const OFF_MS: f64 = 100.0;
const TAIL_MS: f64 = 300.0;
const LEVEL_DBM0: f64 = -10.0;
/// 200 ms lead, six 100 ms tones, five 100 ms pauses, 300 ms tail.
const TOTAL_MS: f64 = LEAD_MS + 6.0 * ON_MS + 5.0 * OFF_MS + TAIL_MS;
/// Allowed error of an event edge after resampling, ms.
const EDGE_TOLERANCE_MS: f64 = 2.0;
/// Allowed error of a measured tone level, dB (8-bit quantisation included).
const LEVEL_TOLERANCE_DB: f64 = 0.5;

/// `159#*0` at `rate`, as 16-bit-scale floats (not yet rounded to any sample format).
fn synthesise(rate: u32) -> Vec<f64> {
    let mut s = Signal::new(rate, u64::from(rate));
    let on = s.ms(ON_MS);
    let off = s.ms(OFF_MS);
    s.silence(s.ms(LEAD_MS));
    for (i, key) in DIGITS.chars().enumerate() {
        if i > 0 {
            s.silence(off);
        }
        s.burst(&Burst::new(key, on, LEVEL_DBM0));
    }
    s.silence(s.ms(TAIL_MS));
    s.samples().to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Int8,
    Int16,
    Int24,
    Int32,
    Float32,
}

impl Encoding {
    fn spec(self, rate: u32, channels: u16) -> hound::WavSpec {
        let (bits_per_sample, sample_format) = match self {
            Encoding::Int8 => (8, hound::SampleFormat::Int),
            Encoding::Int16 => (16, hound::SampleFormat::Int),
            Encoding::Int24 => (24, hound::SampleFormat::Int),
            Encoding::Int32 => (32, hound::SampleFormat::Int),
            Encoding::Float32 => (32, hound::SampleFormat::Float),
        };
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample,
            sample_format,
        }
    }

    /// Writes one sample given on the 16-bit scale, scaled to this format's full scale.
    fn write<W: std::io::Write + std::io::Seek>(
        self,
        writer: &mut hound::WavWriter<W>,
        v: f64,
    ) -> hound::Result<()> {
        let int = |scale: f64, lo: f64, hi: f64| (v * scale).round().clamp(lo, hi);
        match self {
            // hound stores 8-bit WAV as unsigned with the usual +128 offset.
            Encoding::Int8 => writer.write_sample(int(1.0 / 256.0, -128.0, 127.0) as i8),
            Encoding::Int16 => writer.write_sample(int(1.0, -32768.0, 32767.0) as i16),
            Encoding::Int24 => writer.write_sample(int(256.0, -8_388_608.0, 8_388_607.0) as i32),
            Encoding::Int32 => {
                writer.write_sample(int(65536.0, i32::MIN as f64, i32::MAX as f64) as i32)
            }
            Encoding::Float32 => writer.write_sample((v / 32768.0) as f32),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    Mono,
    /// The same signal in both channels.
    Stereo,
    /// The signal in the left channel, digital silence in the right.
    LeftOnly,
}

impl Layout {
    fn channels(self) -> u16 {
        match self {
            Layout::Mono => 1,
            Layout::Stereo | Layout::LeftOnly => 2,
        }
    }

    /// Level per tone after mixing to mono (the mix is the mean of the channels).
    fn mixed_level_dbm0(self) -> f64 {
        match self {
            Layout::Mono | Layout::Stereo => LEVEL_DBM0,
            Layout::LeftOnly => LEVEL_DBM0 + 20.0 * 0.5f64.log10(),
        }
    }
}

fn write_wav(path: &Path, rate: u32, encoding: Encoding, layout: Layout, signal: &[f64]) {
    let mut writer = hound::WavWriter::create(path, encoding.spec(rate, layout.channels()))
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    for &v in signal {
        encoding.write(&mut writer, v).unwrap();
        match layout {
            Layout::Mono => {}
            Layout::Stereo => encoding.write(&mut writer, v).unwrap(),
            Layout::LeftOnly => encoding.write(&mut writer, 0.0).unwrap(),
        }
    }
    writer.finalize().unwrap();
}

/// Where each synthesised tone starts and ends, ms.
fn true_edges_ms() -> Vec<(f64, f64)> {
    (0..DIGITS.len())
        .map(|i| {
            let start = LEAD_MS + i as f64 * (ON_MS + OFF_MS);
            (start, start + ON_MS)
        })
        .collect()
}

fn ms(samples: u64) -> f64 {
    samples as f64 * 1000.0 / f64::from(TELEPHONE_RATE)
}

/// Everything wrong with one decoded synthesised file (empty when it is right).
fn check_synthesised(audio: &Audio, rate: u32, layout: Layout) -> Vec<String> {
    let mut problems = Vec::new();
    if audio.source_rate != rate {
        problems.push(format!("source_rate {} != {rate}", audio.source_rate));
    }
    if audio.source_channels != usize::from(layout.channels()) {
        problems.push(format!(
            "source_channels {} != {}",
            audio.source_channels,
            layout.channels()
        ));
    }
    let expected_len = TOTAL_MS * f64::from(TELEPHONE_RATE) / 1000.0;
    let len = audio.samples.len() as f64;
    if (len - expected_len).abs() > 0.01 * expected_len {
        problems.push(format!(
            "{len} samples at 8 kHz, expected {expected_len} ±1 %"
        ));
    }
    let presses = detect(&audio.samples, &DtmfParams::default());
    let got = digits(&presses);
    if got != DIGITS {
        problems.push(format!("decoded {got:?}, expected {DIGITS:?}"));
        return problems;
    }
    let level = layout.mixed_level_dbm0();
    for (p, (start, end)) in presses.iter().zip(true_edges_ms()) {
        problems.extend(check_press(p, start, end, level));
    }
    problems
}

fn check_press(p: &KeyPress, start: f64, end: f64, level: f64) -> Vec<String> {
    let mut problems = Vec::new();
    let (got_start, got_end) = (ms(p.start), ms(p.end));
    if (got_start - start).abs() > EDGE_TOLERANCE_MS || (got_end - end).abs() > EDGE_TOLERANCE_MS {
        problems.push(format!(
            "'{}' at {got_start:.2}-{got_end:.2} ms, sent at {start}-{end} ms",
            p.digit
        ));
    }
    for (group, got) in [("low", p.low_dbm0), ("high", p.high_dbm0)] {
        if (f64::from(got) - level).abs() > LEVEL_TOLERANCE_DB {
            problems.push(format!(
                "'{}' {group} tone at {got:.2} dBm0, sent at {level:.2} dBm0",
                p.digit
            ));
        }
    }
    problems
}

/// Writes and decodes `159#*0` at every rate in `encoding` for each of `layouts`.
fn run_matrix(encoding: Encoding, layouts: &[Layout]) {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for rate in RATES {
        let signal = synthesise(rate);
        for &layout in layouts {
            let path = dir
                .path()
                .join(format!("dtmf_{rate}_{encoding:?}_{layout:?}.wav"));
            write_wav(&path, rate, encoding, layout, &signal);
            checked += 1;
            match audio::load(&path) {
                Ok(audio) => {
                    for p in check_synthesised(&audio, rate, layout) {
                        failures.push(format!("{rate} Hz {encoding:?} {layout:?}: {p}"));
                    }
                }
                Err(e) => failures.push(format!("{rate} Hz {encoding:?} {layout:?}: {e}")),
            }
        }
    }
    assert_eq!(checked, RATES.len() * layouts.len());
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wav_int8_mono_and_stereo_at_every_rate() {
    run_matrix(Encoding::Int8, &[Layout::Mono, Layout::Stereo]);
}

#[test]
fn wav_int16_mono_and_stereo_at_every_rate() {
    run_matrix(Encoding::Int16, &[Layout::Mono, Layout::Stereo]);
}

#[test]
fn wav_int24_mono_and_stereo_at_every_rate() {
    run_matrix(Encoding::Int24, &[Layout::Mono, Layout::Stereo]);
}

#[test]
fn wav_int32_mono_and_stereo_at_every_rate() {
    run_matrix(Encoding::Int32, &[Layout::Mono, Layout::Stereo]);
}

#[test]
fn wav_float32_mono_and_stereo_at_every_rate() {
    run_matrix(Encoding::Float32, &[Layout::Mono, Layout::Stereo]);
}

/// Signal in the left channel only: the mono mix is 6 dB down (-16 dBm0 per tone) and must
/// still decode, with the level reported 6 dB down.
#[test]
fn stereo_with_signal_in_left_channel_only_decodes_after_mixing() {
    run_matrix(Encoding::Int16, &[Layout::LeftOnly]);
    run_matrix(Encoding::Float32, &[Layout::LeftOnly]);
}

/// A sample that is not at the 16-bit scale would show up as a level error long before it
/// stopped the digits decoding; make sure the check above would catch it.
#[test]
fn level_check_detects_a_misscaled_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.wav");
    let signal: Vec<f64> = synthesise(16000).iter().map(|v| v / 2.0).collect();
    write_wav(&path, 16000, Encoding::Int16, Layout::Mono, &signal);
    let audio = audio::load(&path).unwrap();
    let problems = check_synthesised(&audio, 16000, Layout::Mono);
    assert!(
        problems.iter().any(|p| p.contains("dBm0")),
        "a file 6 dB too quiet passed the level check: {problems:?}"
    );
}

// ---- the real encoded fixtures ----------------------------------------------------------

fn formats_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats")
}

/// The sample rate in a fixture name: `8k` → 8000, `11k025` → 11025, `44k1` → 44100.
fn rate_from_name(name: &str) -> Option<u32> {
    name.split(['_', '.']).find_map(|token| {
        let (whole, frac) = token.split_once('k')?;
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let khz: f64 = format!("{whole}.{frac}0").parse().ok()?;
        Some((khz * 1000.0).round() as u32)
    })
}

#[test]
fn fixture_names_give_their_rates() {
    assert_eq!(rate_from_name("dtmf_159_8k_s16.wav"), Some(8000));
    assert_eq!(rate_from_name("dtmf_159_11k025_s16.wav"), Some(11025));
    assert_eq!(rate_from_name("dtmf_159_22k05.mp3"), Some(22050));
    assert_eq!(rate_from_name("dtmf_159_44k1_stereo.flac"), Some(44100));
    assert_eq!(rate_from_name("dtmf_159_48k.ogg"), Some(48000));
}

#[test]
fn every_fixture_in_formats_decodes_through_audio_load() {
    let dir = formats_dir();
    let fixtures = qa::read_manifest(&dir).unwrap_or_else(|e| panic!("{e}"));

    // Every audio file in the folder is in the manifest (nothing escapes the test) and
    // every container the contract names is represented.
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.toml")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = fixtures.iter().map(|f| f.file.clone()).collect();
    listed.sort();
    assert_eq!(listed, on_disk, "manifest.toml and the folder disagree");
    for ext in ["wav", "flac", "ogg", "mp3"] {
        assert!(
            listed.iter().any(|f| f.ends_with(&format!(".{ext}"))),
            "no .{ext} fixture"
        );
    }

    let mut failures = Vec::new();
    for fixture in &fixtures {
        let name = &fixture.file;
        let audio = match audio::load(&dir.join(name)) {
            Ok(audio) => audio,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let got = digits(&detect(&audio.samples, &DtmfParams::default()));
        if got != fixture.expect {
            failures.push(format!(
                "{name}: decoded {got:?}, expected {:?}",
                fixture.expect
            ));
        }
        let rate = rate_from_name(name).unwrap_or_else(|| panic!("{name}: no rate in name"));
        if audio.source_rate != rate {
            failures.push(format!("{name}: source_rate {}", audio.source_rate));
        }
        let channels = if name.contains("stereo") { 2 } else { 1 };
        if audio.source_channels != channels {
            failures.push(format!("{name}: source_channels {}", audio.source_channels));
        }
        // MP3 carries encoder delay and padding (about 25 ms in front, up to a frame at the
        // end) that the loader does not trim; every other format is sample-exact.
        let expected = TOTAL_MS / 1000.0;
        let (lo, hi) = if name.ends_with(".mp3") {
            (expected, expected * 1.10)
        } else {
            (expected * 0.99, expected * 1.01)
        };
        let seconds = audio.seconds();
        if !(lo..=hi).contains(&seconds) {
            failures.push(format!(
                "{name}: {seconds:.4} s, expected {lo:.3}-{hi:.3} s"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
