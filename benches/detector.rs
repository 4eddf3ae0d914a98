//! Detector and G.711 throughput, per core.
//!
//! The detector runs over a realistic minute: 20 s of silence, 20 s of speech (the espeak
//! fixture, looped) and 20 s of keyed digits in -40 dBm0 noise, pushed in 160-sample (20 ms)
//! chunks as RTP delivers them. Besides criterion's report, a summary line gives samples/s
//! per core and real-time 8 kHz channels per core next to spandsp 0.0.6's `dtmf_rx` measured
//! in the same run on the same minute (`benches/spandsp/dtmf_spandsp.c --core`, compiled here
//! with `cc -lspandsp`; when that is not possible the line says so and compares with the
//! 153.7 M samples/s spandsp reached on this machine kind).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group};
use hotdesk_core::dsp::dtmf::{DtmfDetector, DtmfParams};
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::dsp::tone::{Burst, Signal};

const SPANDSP_SAMPLES_PER_S: f64 = 153.7e6;

/// spandsp's `dtmf_rx` on the same audio, samples/s per core (median of 9 runs), measured by
/// the C harness; or why it could not be.
fn spandsp_core(audio: &[i16]) -> Result<f64, String> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let harness = dir.join("dtmf_spandsp");
    let built = std::process::Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&harness)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/spandsp/dtmf_spandsp.c"
        ))
        .args(["-lspandsp", "-lm"])
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if !built.success() {
        return Err("cannot build the spandsp harness (libspandsp-dev missing?)".into());
    }
    let raw = dir.join("minute.raw");
    let bytes: Vec<u8> = audio.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(&harness)
        .arg("--core")
        .arg(&raw)
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "the spandsp harness printed no rate".into())
}

fn realistic_minute() -> Vec<i16> {
    let mut audio = vec![0i16; 160_000];
    let speech =
        hotdesk_core::audio::load(Path::new("fixtures/talkoff/proxy/espeak_en-us_m_p50.flac"))
            .expect("speech fixture")
            .samples;
    audio.extend(speech.iter().cycle().take(160_000));
    let mut keys = Signal::new(8000, 1);
    while keys.len() < 160_000 {
        for k in "*881001#1234#".chars() {
            keys.burst(&Burst::new(k, 640, -12.0)).silence(640);
        }
    }
    keys.add_noise(-40.0);
    audio.extend(&keys.to_i16()[..160_000]);
    audio
}

fn run_detector(audio: &[i16]) -> usize {
    let mut d = DtmfDetector::new(DtmfParams::default());
    for chunk in audio.chunks(160) {
        d.push(chunk);
    }
    d.finish();
    std::iter::from_fn(|| d.poll_event()).count()
}

fn benches(c: &mut Criterion) {
    let audio = realistic_minute();
    let mut group = c.benchmark_group("dtmf");
    group.throughput(Throughput::Elements(audio.len() as u64));
    group.sample_size(20);
    group.bench_function("detector_realistic_minute", |b| {
        b.iter(|| run_detector(black_box(&audio)))
    });
    group.finish();

    let mut encoded = Vec::new();
    Law::Ulaw.encode_into(&audio, &mut encoded);
    let mut group = c.benchmark_group("g711");
    group.throughput(Throughput::Elements(encoded.len() as u64));
    group.bench_function("ulaw_decode", |b| {
        let mut out = Vec::with_capacity(encoded.len());
        b.iter(|| {
            out.clear();
            Law::Ulaw.decode_into(black_box(&encoded), &mut out);
            out.len()
        })
    });
    group.bench_function("alaw_encode", |b| {
        let mut out = Vec::with_capacity(audio.len());
        b.iter(|| {
            out.clear();
            Law::Alaw.encode_into(black_box(&audio), &mut out);
            out.len()
        })
    });
    group.finish();
}

/// Median of repeated timed runs: the per-core figure for the README.
fn summary() {
    let audio = realistic_minute();
    let mut rates: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            black_box(run_detector(black_box(&audio)));
            audio.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let (spandsp, how) = match spandsp_core(&audio) {
        Ok(rate) => (rate, "measured in this run".to_string()),
        Err(why) => (
            SPANDSP_SAMPLES_PER_S,
            format!("the anchor's figure; not measured here: {why}"),
        ),
    };
    println!(
        "summary: detector {:.1} M samples/s per core = {:.0} real-time 8 kHz channels per core; \
         spandsp 0.0.6 dtmf_rx {:.1} M ({how}); ratio {:.2}x; runs {:.1}-{:.1} M",
        median / 1e6,
        median / 8000.0,
        spandsp / 1e6,
        median / spandsp,
        rates[0] / 1e6,
        rates[rates.len() - 1] / 1e6
    );
}

// No HTML plots: plotters in this build renders text through fonts registered by the
// program (ab_glyph, for `detect --plot`), and criterion registers none.
criterion_group! {
    name = group;
    config = Criterion::default().without_plots();
    targets = benches
}

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
