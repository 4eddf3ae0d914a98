//! The detector's output must not depend on how the stream is cut into chunks.

use hotdesk_core::dsp::dtmf::{DtmfDetector, DtmfEvent, DtmfParams};
use hotdesk_core::dsp::tone::{Burst, Signal};
use proptest::prelude::*;

fn material() -> Vec<i16> {
    let mut s = Signal::new(8000, 77);
    s.silence(333);
    for (i, key) in "*881001#1234#5".chars().enumerate() {
        let mut b = Burst::new(key, 280 + 61 * i, -6.0 - i as f64);
        b.high_dbm0 = b.low_dbm0 + 2.0 - (i % 4) as f64;
        // A 10 ms interruption inside one key, a 40 ms pause between two others.
        if i == 5 {
            s.burst(&b).silence(80).burst(&b).silence(520);
        } else if i == 8 {
            s.burst(&b).silence(320);
        } else {
            s.burst(&b).silence(300 + 37 * i);
        }
    }
    s.silence(1000).add_noise(-30.0);
    s.to_i16()
}

fn events(audio: &[i16], chunks: &[usize]) -> Vec<DtmfEvent> {
    let mut d = DtmfDetector::new(DtmfParams::default());
    let mut rest = audio;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        d.push(&rest[..n]);
        rest = &rest[n..];
    }
    d.finish();
    std::iter::from_fn(|| d.poll_event()).collect()
}

#[test]
fn material_decodes() {
    let reference = events(&material(), &[usize::MAX]);
    let downs: String = reference
        .iter()
        .filter(|e| matches!(e, DtmfEvent::KeyDown { .. }))
        .map(|e| e.digit())
        .collect();
    assert_eq!(downs, "*881001#1234#5");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_chunking_gives_identical_events(chunks in prop::collection::vec(1usize..2000, 1..12)) {
        let audio = material();
        let whole = events(&audio, &[audio.len()]);
        prop_assert_eq!(events(&audio, &chunks), whole);
    }
}

#[test]
fn sample_by_sample_matches_one_push() {
    let audio = material();
    assert_eq!(events(&audio, &[1]), events(&audio, &[audio.len()]));
}
