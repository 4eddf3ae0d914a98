//! Inputs the fuzzers (`fuzz/`) found to break an invariant, kept in `fixtures/fuzz/` and
//! replayed here with the same check the fuzz target makes. (The SIP and API findings are
//! regression tests beside their subjects: `sip_messages.rs`, `api.rs`.)

use std::path::PathBuf;

use hotdesk_core::dsp::dtmf::{DtmfDetector, DtmfEvent, DtmfParams};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `dtmf_detector` target's input: a chunk size, then 16-bit little-endian samples.
fn samples(data: &[u8]) -> Vec<i16> {
    data[2..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// A key made of two partly covered hops and no full one was reported with NaN levels.
#[test]
fn a_key_without_a_fully_covered_hop_has_finite_levels() {
    let audio = samples(&fixture("dtmf_detector_key_without_full_hop.bin"));
    let mut detector = DtmfDetector::new(DtmfParams::default());
    detector.push(&audio);
    detector.finish();
    let events: Vec<DtmfEvent> = std::iter::from_fn(|| detector.poll_event()).collect();
    assert!(!events.is_empty(), "the input should still hold a key");
    for event in &events {
        let (low, high) = match *event {
            DtmfEvent::KeyDown {
                low_dbm0,
                high_dbm0,
                ..
            }
            | DtmfEvent::KeyUp {
                low_dbm0,
                high_dbm0,
                ..
            } => (low_dbm0, high_dbm0),
        };
        assert!(low.is_finite() && high.is_finite(), "{event:?}");
        assert!(
            (-60.0..=4.0).contains(&low) && (-60.0..=4.0).contains(&high),
            "{event:?}"
        );
    }
}

/// A 16 KB A-law WAV whose header claims 2,550,136,833 Hz took 40 s and over 2 GB to
/// resample to 8 kHz; such a rate is now refused at once, naming it.
#[test]
fn an_absurd_sample_rate_is_refused_not_resampled() {
    let data = fixture("audio_load_wav_at_2_5_ghz.bin");
    // The target's first byte picks the format hint; 0 is WAV.
    assert_eq!(data[0], 0);
    let started = std::time::Instant::now();
    let result =
        hotdesk_core::audio::load_bytes(std::path::Path::new("in.wav"), data[1..].to_vec());
    let error = result
        .expect_err("a 2.5 GHz file is not audio we take")
        .to_string();
    assert!(
        error.contains("sample rate 2550136833 Hz is outside"),
        "{error}"
    );
    // A refusal, not a 40 s resample (generous for a debug build on a busy machine).
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
