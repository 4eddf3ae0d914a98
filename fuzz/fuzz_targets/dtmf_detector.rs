//! The DTMF detector on arbitrary 16-bit samples: no panic, well-formed events (every key-up
//! follows its key-down, positions move forward, levels are finite), and the same events
//! however the stream is cut into chunks (the first two bytes pick a chunk size).
#![no_main]

use hotdesk_core::dsp::dtmf::{DtmfDetector, DtmfEvent, DtmfParams};
use libfuzzer_sys::fuzz_target;

fn events(samples: &[i16], chunk: usize) -> Vec<DtmfEvent> {
    let mut detector = DtmfDetector::new(DtmfParams::default());
    for part in samples.chunks(chunk) {
        detector.push(part);
    }
    detector.finish();
    std::iter::from_fn(|| detector.poll_event()).collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let chunk = 1 + usize::from(u16::from_le_bytes([data[0], data[1]])) % 400;
    let samples: Vec<i16> = data[2..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let whole = events(&samples, samples.len().max(1));
    let mut down: Option<(char, u64)> = None;
    for event in &whole {
        match *event {
            DtmfEvent::KeyDown {
                digit,
                start,
                at,
                low_dbm0,
                high_dbm0,
            } => {
                assert!(down.is_none(), "two keys down at once: {whole:?}");
                assert!(start <= at && at <= samples.len() as u64, "{event:?}");
                assert!(low_dbm0.is_finite() && high_dbm0.is_finite(), "{event:?}");
                down = Some((digit, start));
            }
            DtmfEvent::KeyUp {
                digit, start, end, ..
            } => {
                assert_eq!(
                    down.take(),
                    Some((digit, start)),
                    "key-up without its key-down"
                );
                assert!(start < end && end <= samples.len() as u64, "{event:?}");
            }
        }
    }
    assert_eq!(
        events(&samples, chunk),
        whole,
        "chunk size {chunk} changed the events"
    );
});
