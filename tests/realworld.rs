//! The real-world battery (`docs/dtmf.md`, `src/realworld.rs`) on linear input and after µ-law
//! and A-law round trips, one seed each: the conditions whose targets the detector meets are
//! asserted point by point (each at its target from the definitions, never at a measured
//! figure); the whole table is printed, so a run shows where the others stand.
//!
//! Not asserted, because the detector does not meet them yet (see `docs/dtmf.md`): noise at
//! 0 dB and below, talk-down, clicks, combined keys in noise, and the packet-loss and G.729
//! points (met on most seeds, not all).

use std::path::Path;

use hotdesk_core::dsp::dtmf::DtmfParams;
use hotdesk_qa::conformance::Channel;
use hotdesk_qa::realworld::{Material, PointResult, render, run};

/// Conditions whose every point must meet its target, and the noise points at +6 dB S/N and
/// better.
fn asserted(r: &PointResult) -> bool {
    match r.condition {
        "sag" | "fast" | "no-tone" => true,
        "combined" => r.point == "no noise",
        "noise" => ["+12dB", "+9dB", "+6dB"]
            .iter()
            .any(|s| r.point.ends_with(s)),
        _ => false,
    }
}

fn check(channel: Channel, seed: u64) {
    let material = Material::load(Path::new("fixtures")).expect("real-world material");
    let results = run(&DtmfParams::default(), channel, seed, &material);
    println!("{channel:?} seed {seed}\n{}", render(&results));
    assert_eq!(results.len(), 65, "every point of the battery ran");
    let checked: Vec<&PointResult> = results.iter().filter(|r| asserted(r)).collect();
    assert_eq!(checked.len(), 33, "asserted points");
    for r in checked {
        assert!(
            r.met,
            "{channel:?} seed {seed}: {} {} misses its target: {}",
            r.condition,
            r.point,
            r.row()
        );
    }
    // No digit at all in six minutes of noise, speech and clicks.
    let talkoff: usize = results
        .iter()
        .filter(|r| r.expected == 0)
        .map(|r| r.extra())
        .sum();
    assert_eq!(
        talkoff, 0,
        "{channel:?} seed {seed}: false digits on no-tone audio"
    );
}

#[test]
fn realworld_linear() {
    check(Channel::Linear, 1);
}

#[test]
fn realworld_ulaw() {
    check(Channel::Ulaw, 2);
}

#[test]
fn realworld_alaw() {
    check(Channel::Alaw, 3);
}
