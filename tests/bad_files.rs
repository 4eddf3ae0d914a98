//! Bad input to `audio::load`: never a panic, always an `AudioError` whose message names the file
//! and says what is wrong with it.
//!
//! The variants asserted here are what the loader (symphonia 0.6 underneath) returns today.
//! Where that is less precise than it could be, the test says so in a comment.

use std::path::{Path, PathBuf};

use hotdesk_core::audio::{self, AudioError};
use hotdesk_core::dsp::dtmf::{DtmfParams, detect, digits};

/// A deterministic byte stream (xorshift64), so every run sees the same "random" files.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Loads a file that must not load, checks the message names it and gives `reason`.
fn load_err(path: &Path, reason: &str) -> AudioError {
    let e = match audio::load(path) {
        Ok(a) => panic!(
            "{} loaded ({} samples at 8 kHz) but should have failed",
            path.display(),
            a.samples.len()
        ),
        Err(e) => e,
    };
    let message = e.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "message does not start with the path: {message}"
    );
    assert!(
        message.contains(reason),
        "message does not say {reason:?}: {message}"
    );
    e
}

/// An 8 kHz integer WAV of `samples` frames of a tone, `channels` wide, `bits` deep.
fn write_tone_wav(path: &Path, samples: usize, channels: u16, bits: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: 8000,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let scale = f64::from(1u32 << (bits - 2));
    for i in 0..samples * usize::from(channels) {
        w.write_sample(((i as f64 * 0.8).sin() * scale) as i32)
            .unwrap();
    }
    w.finalize().unwrap();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/formats")
        .join(name)
}

#[test]
fn empty_file_is_not_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wav");
    std::fs::write(&path, b"").unwrap();
    // Zero bytes has no header for the prober to recognise, so NotAudio rather than Empty
    // (Empty is for a well-formed file that holds no samples).
    let e = load_err(&path, "not a recognised audio file");
    assert!(matches!(e, AudioError::NotAudio { .. }), "{e:?}");
}

#[test]
fn text_file_named_wav_is_not_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wav");
    std::fs::write(&path, "extension,name,pin\n5401,Desk 1,1234\n".repeat(50)).unwrap();
    let e = load_err(&path, "not a recognised audio file");
    assert!(matches!(e, AudioError::NotAudio { .. }), "{e:?}");
}

#[test]
fn random_bytes_are_not_audio_whatever_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Bytes(0x1234_5678_9abc_def0);
    for name in [
        "random.wav",
        "random.mp3",
        "random.flac",
        "random.ogg",
        "random",
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes.take(20_000)).unwrap();
        let e = load_err(&path, "not a recognised audio file");
        assert!(matches!(e, AudioError::NotAudio { .. }), "{name}: {e:?}");
    }
}

#[test]
fn wav_with_data_chunk_cut_in_half_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.wav");
    write_tone_wav(&full, 16_000, 1, 16);
    let bytes = std::fs::read(&full).unwrap();
    assert_eq!(bytes.len(), 44 + 32_000, "hound wrote an unexpected header");
    assert_eq!(audio::load(&full).unwrap().samples.len(), 16_000);

    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..44 + 16_000]).unwrap();
    // The header promises 16000 samples; the loader reports the shortfall instead of quietly
    // returning the 8000 that survive.
    let e = load_err(&cut, "truncated: stream ends after 8000 samples");
    assert!(matches!(e, AudioError::Truncated { .. }), "{e:?}");
}

/// Wherever the data chunk is cut, as long as at least one whole frame is missing (mid-sample,
/// mid-frame, one frame short), the result is Truncated, never a quiet partial decode; a cut
/// inside the header is not audio at all.
#[test]
fn wav_cut_anywhere_never_decodes_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.wav");
    // 24-bit stereo: a frame is 6 bytes, so most cuts land inside a frame.
    const FRAME: usize = 6;
    write_tone_wav(&full, 4000, 2, 24);
    let bytes = std::fs::read(&full).unwrap();
    let data_start = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    assert_eq!(bytes.len() - data_start, 4000 * FRAME);
    let cut = dir.path().join("cut.wav");
    let mut cuts: Vec<usize> = (data_start..bytes.len() - FRAME).step_by(997).collect();
    cuts.extend([data_start + 1, bytes.len() - FRAME - 1, bytes.len() - FRAME]);
    for at in cuts {
        std::fs::write(&cut, &bytes[..at]).unwrap();
        let e = load_err(&cut, "truncated: stream ends after");
        assert!(
            matches!(e, AudioError::Truncated { .. }),
            "cut at {at}: {e:?}"
        );
    }
    for at in [4, 12, 30, data_start - 4] {
        std::fs::write(&cut, &bytes[..at]).unwrap();
        // A header cut short is reported by the prober: NotAudio ("unexpected end of file"
        // or "no suitable format reader"), not Truncated.
        let e = load_err(&cut, "not a recognised audio file");
        assert!(
            matches!(e, AudioError::NotAudio { .. }),
            "cut at {at}: {e:?}"
        );
    }
}

/// The one quiet case: a cut inside the last frame (1 to 5 bytes of 6 missing) drops that
/// frame without an error. symphonia's WAV reader ends the stream at the last whole frame.
/// One sample lost is harmless for DTMF, but it is not reported.
#[test]
fn wav_missing_part_of_its_last_frame_drops_it_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.wav");
    write_tone_wav(&full, 4000, 2, 24);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.wav");
    for missing in 1..6 {
        std::fs::write(&cut, &bytes[..bytes.len() - missing]).unwrap();
        let audio = audio::load(&cut).unwrap_or_else(|e| panic!("{missing} bytes short: {e}"));
        assert_eq!(audio.samples.len(), 3999, "{missing} bytes short");
    }
}

#[test]
fn wav_header_with_zero_samples_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.wav");
    write_tone_wav(&path, 0, 1, 16);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 44);
    let e = load_err(&path, "no audio samples");
    assert!(matches!(e, AudioError::Empty { .. }), "{e:?}");
}

#[test]
fn nonexistent_path_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/file.wav");
    let e = load_err(&path, "cannot open: No such file or directory");
    match e {
        AudioError::Open { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("expected Open, got {other:?}"),
    }
}

#[test]
fn directory_is_reported_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recordings.wav");
    std::fs::create_dir(&path).unwrap();
    // On Linux File::open succeeds on a directory and symphonia's prober would swallow the
    // EISDIR from the reads; the loader checks first, so the reason is precise.
    let e = load_err(&path, "cannot open: is a directory");
    assert!(matches!(e, AudioError::Open { .. }), "{e:?}");
}

/// Cutting the real encoded fixtures in half: what each container does.
#[test]
fn other_containers_cut_in_half() {
    let dir = tempfile::tempdir().unwrap();
    let half = |name: &str| {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        path
    };

    for name in ["dtmf_159_16k.flac", "dtmf_159_44k1_stereo.flac"] {
        let e = load_err(&half(name), "truncated: stream ends after");
        assert!(matches!(e, AudioError::Truncated { .. }), "{name}: {e:?}");
    }
    for name in ["dtmf_159_16k.ogg", "dtmf_159_48k.ogg"] {
        // symphonia's Ogg reader reads to the end of the stream while probing, so a cut Ogg
        // fails in the prober with "unexpected end of file" and comes back as NotAudio
        // rather than Truncated. Imprecise but it names the file and the EOF.
        let e = load_err(
            &half(name),
            "not a recognised audio file (unexpected end of file)",
        );
        assert!(matches!(e, AudioError::NotAudio { .. }), "{name}: {e:?}");
    }
    for name in ["dtmf_159_22k05.mp3", "dtmf_159_44k1.mp3"] {
        // A raw MP3 stream has no length to compare with: the surviving frames decode and
        // the loader cannot tell a cut file from a short one. Only the digits sent in the
        // first half come back.
        let audio = audio::load(&half(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = digits(&detect(&audio.samples, &DtmfParams::default()));
        assert!(
            !got.is_empty() && got.len() < 6 && "159#*0".starts_with(&got),
            "{name}: decoded {got:?}"
        );
    }
}

/// Overwrites bytes (and sometimes cuts) every real fixture many times: the decoders must
/// never panic (the loader would catch it and say "the decoder failed on this stream"), and
/// every error must name the file.
#[test]
fn corrupted_fixtures_never_panic_a_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Bytes(0x0bad_f11e_5eed_0001);
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "toml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "fixtures/formats/ has {} files",
        names.len()
    );
    let mut errors = 0;
    for original in &names {
        let bytes = std::fs::read(original).unwrap();
        let name = original.file_name().unwrap().to_string_lossy();
        for trial in 0..24 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.next() % 20 {
                let i = rng.next() as usize % b.len();
                b[i] = rng.next() as u8;
            }
            if trial % 4 == 0 {
                b.truncate(rng.next() as usize % b.len());
            }
            let path = dir.path().join(format!("{trial}_{name}"));
            std::fs::write(&path, &b).unwrap();
            if let Err(e) = audio::load(&path) {
                errors += 1;
                let message = e.to_string();
                assert!(
                    message.starts_with(&path.display().to_string()),
                    "{message}"
                );
                assert!(
                    !message.contains("the decoder failed on this stream"),
                    "a decoder panicked on {name} trial {trial}: {message}"
                );
            }
        }
    }
    // The corruption is heavy enough to break a good share of the files.
    assert!(errors > names.len() * 24 / 10, "only {errors} files failed");
}
