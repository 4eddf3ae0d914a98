//! Every fixture suite under `fixtures/` passes: labelled real and generated DTMF decodes to
//! its label, and no talk-off material (about 24 minutes of speech, spoken digits, music and
//! call-progress tones) produces a single digit.

use std::path::Path;

use hotdesk_core::dsp::dtmf::DtmfParams;
use hotdesk_qa::qa::{self, FixtureKind};

#[test]
fn every_fixture_suite_passes() {
    let results = qa::run(Path::new("fixtures"), &DtmfParams::default()).expect("suites");
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "{}/{}: {:?} {:?}",
                r.suite, r.fixture.file, r.decoded, r.error
            )
        })
        .collect();
    assert!(failed.is_empty(), "failed fixtures:\n{}", failed.join("\n"));
    let suites: std::collections::BTreeSet<&str> =
        results.iter().map(|r| r.suite.as_str()).collect();
    for suite in ["dtmf", "edge", "formats", "rtp", "talkoff"] {
        assert!(suites.contains(suite), "suite {suite} not run");
    }
}

#[test]
fn talk_off_material_gives_no_digit() {
    let results = qa::run(Path::new("fixtures/talkoff"), &DtmfParams::default()).expect("suite");
    let (false_digits, seconds) = qa::talkoff_totals(&results);
    assert!(
        seconds > 20.0 * 60.0,
        "only {seconds} s of talk-off material"
    );
    assert_eq!(false_digits, 0);
    assert!(
        results
            .iter()
            .all(|r| r.fixture.kind == FixtureKind::Talkoff)
    );
}

#[test]
fn fixtures_survive_g711() {
    // The labelled DTMF decodes the same after a µ-law or A-law round trip.
    use hotdesk_core::dsp::dtmf::{detect, digits};
    use hotdesk_core::dsp::g711::Law;
    let suite = Path::new("fixtures/dtmf");
    for fixture in qa::read_manifest(suite).expect("manifest") {
        if fixture.max_missing > 0 {
            continue;
        }
        let audio = hotdesk_core::audio::load(&suite.join(&fixture.file)).expect("audio");
        for law in [Law::Ulaw, Law::Alaw] {
            let decoded = digits(&detect(
                &law.round_trip(&audio.samples),
                &DtmfParams::default(),
            ));
            assert_eq!(decoded, fixture.expect, "{} through {law:?}", fixture.file);
        }
    }
}
