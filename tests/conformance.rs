//! The DTMF conformance battery (`docs/dtmf.md` §1) on linear input and after µ-law and
//! A-law round trips, with two independent seeds: every standard and robustness case must pass
//! and the info measurements must be at least as good as spandsp's.

use std::path::Path;

use hotdesk_core::dsp::dtmf::{DtmfParams, detect};
use hotdesk_core::dsp::tone::{ALL_KEYS, Burst, Signal};
use hotdesk_qa::conformance::{Channel, Kind, Material, Outcome, run};

fn speech() -> Vec<i16> {
    hotdesk_core::audio::load(Path::new("fixtures/talkoff/proxy/espeak_en-us_m_p50.flac"))
        .expect("speech fixture")
        .samples
}

fn case<'a>(outcomes: &'a [Outcome], name: &str) -> &'a Outcome {
    outcomes
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("case {name} missing"))
}

fn metric(outcomes: &[Outcome], name: &str, metric: &str) -> f64 {
    case(outcomes, name)
        .metric(metric)
        .unwrap_or_else(|| panic!("{name} has no {metric}"))
}

fn check_battery(channel: Channel, seed: u64) {
    let speech = speech();
    let outcomes = run(
        &DtmfParams::default(),
        channel,
        seed,
        Some(&Material { speech: &speech }),
    );
    let judged: Vec<&Outcome> = outcomes.iter().filter(|o| o.kind != Kind::Info).collect();
    assert_eq!(judged.len(), 16, "the battery has 16 pass/fail cases");
    for o in &judged {
        assert_eq!(
            o.passed,
            Some(true),
            "{channel:?} seed {seed}: {} failed: {}",
            o.name,
            o.detail
        );
    }
    let ctx = format!("{channel:?} seed {seed}");
    // Frequency: every accept edge inside [1.5 %, 3.5 %).
    let (lo, hi) = (
        metric(&outcomes, "freq_sweep", "min_edge_pct"),
        metric(&outcomes, "freq_sweep", "max_edge_pct"),
    );
    assert!(lo >= 1.5 && hi < 3.5, "{ctx}: frequency edges {lo}..{hi} %");
    // CEPT-style +2 Hz still accepted (spandsp: 22/64).
    assert_eq!(
        metric(&outcomes, "freq_accept_1.5pct+2Hz", "missing"),
        0.0,
        "{ctx}"
    );
    // Twist: 8 dB normal / 4 dB reverse accepted, nothing beyond limit + 1 dB.
    let normal = metric(&outcomes, "twist_sweep", "normal_min_db");
    let reverse = metric(&outcomes, "twist_sweep", "reverse_min_db");
    assert!(
        normal >= 8.0 && reverse >= 4.0,
        "{ctx}: twist {normal}/{reverse} dB"
    );
    assert!(
        metric(&outcomes, "twist_sweep", "normal_max_db") <= 9.0,
        "{ctx}"
    );
    assert!(
        metric(&outcomes, "twist_sweep", "reverse_max_db") <= 5.0,
        "{ctx}"
    );
    // Timing: 23 ms never, 40 ms always (the standard cases), and the sweep agrees.
    assert!(
        metric(&outcomes, "guard_time_sweep", "never_ms") >= 24.0,
        "{ctx}"
    );
    assert!(
        metric(&outcomes, "guard_time_sweep", "always_ms") <= 36.0,
        "{ctx}"
    );
    // Noise: clean to 8 dB S/N or better (spandsp: 8 dB).
    assert!(
        metric(&outcomes, "snr_sweep", "clean_snr_db") <= 8.0,
        "{ctx}"
    );
    // Dynamic range at least spandsp's 46 dB.
    assert!(
        metric(&outcomes, "dynamic_range", "responses") >= 46.0,
        "{ctx}"
    );
    // Fast dialer, NTT frequency rejection, phase-jump interruption: no worse than spandsp.
    assert_eq!(
        metric(&outcomes, "velocity_80ms_fastdialer", "extra"),
        0.0,
        "{ctx}"
    );
    assert_eq!(
        metric(&outcomes, "velocity_80ms_fastdialer", "missing"),
        0.0,
        "{ctx}"
    );
    assert!(
        metric(&outcomes, "freq_reject_3.0pct_ntt", "detections") <= 21.0,
        "{ctx}"
    );
    assert!(
        metric(&outcomes, "interruption_10ms_phasejump", "extra") <= 10.0,
        "{ctx}"
    );
}

#[test]
fn battery_linear() {
    check_battery(Channel::Linear, 1);
    check_battery(Channel::Linear, 2);
}

#[test]
fn battery_ulaw() {
    check_battery(Channel::Ulaw, 3);
    check_battery(Channel::Ulaw, 4);
}

#[test]
fn battery_alaw() {
    check_battery(Channel::Alaw, 5);
    check_battery(Channel::Alaw, 6);
}

#[test]
fn every_key_is_reported_within_40ms_of_onset() {
    for (i, dbm0) in [-4.0, -15.0, -25.0].into_iter().enumerate() {
        let mut s = Signal::new(8000, 100 + i as u64);
        s.silence(1600);
        for (k, &key) in ALL_KEYS.iter().enumerate() {
            s.burst(&Burst::new(key, 480, dbm0)).silence(400 + 13 * k);
        }
        let presses = detect(&s.to_i16(), &DtmfParams::default());
        assert_eq!(presses.len(), 16, "{dbm0} dBm0: {presses:?}");
        for p in presses {
            let latency_ms = (p.detected_at - p.start) as f64 / 8.0;
            assert!(
                latency_ms <= 40.0,
                "{} at {dbm0} dBm0: {latency_ms} ms",
                p.digit
            );
        }
    }
}

#[test]
fn reported_times_and_levels_match_the_signal() {
    let mut s = Signal::new(8000, 9);
    let mut truth = Vec::new();
    s.silence(1234);
    for (k, &key) in ALL_KEYS.iter().enumerate() {
        let start = s.len();
        let on = 400 + 37 * k;
        let mut b = Burst::new(key, on, -12.0);
        b.high_dbm0 = -9.0;
        s.burst(&b).silence(500 + 11 * k);
        truth.push((key, start as u64, (start + on) as u64));
    }
    let presses = detect(&s.to_i16(), &DtmfParams::default());
    assert_eq!(presses.len(), truth.len());
    for (p, (key, start, end)) in presses.iter().zip(truth) {
        assert_eq!(p.digit, key);
        // Edges come from a per-hop least-squares fit: within 1 ms (8 samples).
        assert!(
            p.start.abs_diff(start) <= 8,
            "{key}: start {} vs {start}",
            p.start
        );
        assert!(p.end.abs_diff(end) <= 8, "{key}: end {} vs {end}", p.end);
        assert!((p.low_dbm0 + 12.0).abs() < 0.5, "{key}: low {}", p.low_dbm0);
        assert!(
            (p.high_dbm0 + 9.0).abs() < 0.5,
            "{key}: high {}",
            p.high_dbm0
        );
    }
}

#[test]
fn administration_profiles_apply_their_limits() {
    // 6 dB normal twist: accepted by AT&T (8 dB), refused by NTT (5 dB).
    let mut s = Signal::new(8000, 11);
    let mut b = Burst::new('5', 480, -10.0);
    b.high_dbm0 = -16.0;
    s.silence(800).burst(&b).silence(800);
    let audio = s.to_i16();
    assert_eq!(detect(&audio, &DtmfParams::default()).len(), 1);
    assert!(detect(&audio, &DtmfParams::ntt()).is_empty());
    // -31 dBm0 per tone: above the AT&T floor (-42.5), below NTT's (-29).
    let mut s = Signal::new(8000, 12);
    s.silence(800)
        .burst(&Burst::new('8', 480, -31.0))
        .silence(800);
    let audio = s.to_i16();
    assert_eq!(detect(&audio, &DtmfParams::default()).len(), 1);
    assert!(detect(&audio, &DtmfParams::ntt()).is_empty());
}
