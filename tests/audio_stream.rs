//! `audio::stream` hands over exactly the samples `audio::load` returns, whatever the format
//! (the direct path for 8 kHz PCM16 and G.711 WAV, the decoder with on-the-fly resampling for
//! everything else), and fails the way `load` does on bad files.

use std::path::{Path, PathBuf};

use hotdesk_core::audio::{self, AudioError};

fn streamed(path: &Path) -> Result<(Vec<i16>, audio::StreamInfo), AudioError> {
    let mut samples = Vec::new();
    let mut blocks = 0;
    let info = audio::stream(path, &mut |block| {
        samples.extend_from_slice(block);
        blocks += 1;
    })?;
    assert!(blocks > 0 || samples.is_empty());
    Ok((samples, info))
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_format_streams_the_samples_load_returns() {
    let mut all = files("fixtures/formats");
    all.extend(files("fixtures/dtmf/real"));
    all.extend(files("fixtures/dtmf/synthetic"));
    assert!(all.len() > 30);
    for path in all {
        let loaded = audio::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let (samples, info) = streamed(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(samples.len(), loaded.samples.len(), "{}", path.display());
        assert!(
            samples == loaded.samples,
            "{}: samples differ",
            path.display()
        );
        assert_eq!(info.samples as usize, samples.len());
        assert_eq!(info.source_rate, loaded.source_rate, "{}", path.display());
        assert_eq!(
            info.source_channels,
            loaded.source_channels,
            "{}",
            path.display()
        );
    }
}

#[test]
fn a_long_telephone_wav_comes_in_bounded_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..800_000i64 {
        w.write_sample(((i * 7919) % 20_000 - 10_000) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    let mut largest = 0;
    let mut total = 0;
    let mut expected = 0i64;
    let mut same = true;
    audio::stream(&path, &mut |block| {
        largest = largest.max(block.len());
        for &v in block {
            same &= v as i64 == (expected * 7919) % 20_000 - 10_000;
            expected += 1;
        }
        total += block.len();
    })
    .unwrap();
    assert_eq!(total, 800_000);
    assert!(same, "samples changed on the direct path");
    assert!(largest <= 32 * 1024, "a block of {largest} samples");
}

#[test]
fn bad_files_fail_as_load_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.wav");
    std::fs::write(&text, "hello").unwrap();
    assert!(matches!(streamed(&text), Err(AudioError::NotAudio { .. })));
    assert!(matches!(
        streamed(&dir.path().join("missing.wav")),
        Err(AudioError::Open { .. })
    ));
    assert!(matches!(streamed(dir.path()), Err(AudioError::Open { .. })));
    // A PCM16 8 kHz WAV whose data chunk is cut: the direct path leaves it to the decoder,
    // which reports the shortfall.
    let full = dir.path().join("full.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&full, spec).unwrap();
    for i in 0..16_000 {
        w.write_sample((i % 100) as i16).unwrap();
    }
    w.finalize().unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..44 + 16_000]).unwrap();
    let e = streamed(&cut).unwrap_err();
    assert!(matches!(e, AudioError::Truncated { .. }), "{e:?}");
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, &bytes[..44]).unwrap();
    // hound wrote the data length at finalize: an empty copy keeps the 32000-byte claim, so
    // rewrite it as a true empty file.
    let mut w = hound::WavWriter::create(&empty, spec).unwrap();
    w.flush().unwrap();
    w.finalize().unwrap();
    assert!(matches!(streamed(&empty), Err(AudioError::Empty { .. })));
}
