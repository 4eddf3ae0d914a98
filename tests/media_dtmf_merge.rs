//! The merge of RFC 4733, SIP INFO and in-band DTMF into one digit stream
//! (`dtmf-conformance.md` §6 D1-D3), on virtual time, and on the real Asterisk captures whose
//! PCMU audio leaks in-band tone around every RFC 4733 event.

use std::time::{Duration, Instant};

mod common;
use common::{MergeTimeline, sample_time};
use hotdesk_core::dsp::dtmf::{DtmfDetector, DtmfEvent, DtmfParams};
use hotdesk_core::dsp::g711::ulaw_to_linear;
use hotdesk_core::media::{DigitSource, DtmfMerger, MergeConfig, MergedDigit};
use hotdesk_qa::pcap;

const MS: fn(u64) -> Duration = Duration::from_millis;

struct Rig {
    t0: Instant,
    m: DtmfMerger,
    out: Vec<MergedDigit>,
}

impl Rig {
    fn new(telephone_event: bool) -> Self {
        Rig {
            t0: Instant::now(),
            m: DtmfMerger::new(MergeConfig {
                telephone_event,
                ..MergeConfig::default()
            }),
            out: Vec::new(),
        }
    }
    fn t(&self, ms: u64) -> Instant {
        self.t0 + MS(ms)
    }
    fn drain(&mut self) {
        while let Some(d) = self.m.poll_digit() {
            self.out.push(d);
        }
    }
    fn rfc_down(&mut self, now: u64, digit: char, start: u64) {
        let (n, s) = (self.t(now), self.t(start));
        self.m.handle_rfc4733_down(n, digit, s);
        self.drain();
    }
    fn rfc_up(&mut self, now: u64, digit: char, end: u64) {
        let (n, e) = (self.t(now), self.t(end));
        self.m.handle_rfc4733_up(n, digit, e);
        self.drain();
    }
    fn inband_down(&mut self, now: u64, digit: char, onset: u64) {
        let (n, o) = (self.t(now), self.t(onset));
        self.m.handle_inband_down(n, digit, o);
        self.drain();
    }
    fn inband_up(&mut self, now: u64, digit: char, end: u64) {
        let (n, e) = (self.t(now), self.t(end));
        self.m.handle_inband_up(n, digit, e);
        self.drain();
    }
    fn info(&mut self, now: u64, digit: char) {
        let n = self.t(now);
        self.m.handle_info(n, digit, Some(MS(100)));
        self.drain();
    }
    /// Runs timers up to `ms`.
    fn run_until(&mut self, ms: u64) {
        let end = self.t(ms);
        while let Some(t) = self.m.poll_timeout() {
            if t > end {
                break;
            }
            self.m.handle_timeout(t);
            self.drain();
        }
    }
    fn got(&self) -> Vec<(char, DigitSource)> {
        self.out.iter().map(|d| (d.digit, d.source)).collect()
    }
}

use DigitSource::{Inband, Info, Rfc4733};

#[test]
fn d1_both_paths_give_one_digit_from_rfc4733() {
    let mut r = Rig::new(true);
    r.rfc_down(20, '5', 0);
    r.inband_down(45, '5', 5);
    r.rfc_up(100, '5', 100);
    r.inband_up(110, '5', 105);
    // A tail of tone just after the event ended (within the 100 ms guard).
    r.inband_down(190, '5', 150);
    r.run_until(1000);
    assert_eq!(r.got(), vec![('5', Rfc4733)]);
    assert_eq!(r.out[0].at, r.t(0));
}

#[test]
fn d1_guard_ends_after_100_ms() {
    // Past the guard, the same key in-band is a new press (here: with telephone-event
    // negotiated, released after the hold because no event came).
    let mut r = Rig::new(true);
    r.rfc_down(20, '5', 0);
    r.rfc_up(100, '5', 100);
    r.inband_down(260, '5', 220);
    r.run_until(1000);
    assert_eq!(r.got(), vec![('5', Rfc4733), ('5', Inband)]);
    assert_eq!(r.out[1].at, r.t(220));
}

#[test]
fn d2_run_in_tone_before_the_event_is_withdrawn() {
    let mut r = Rig::new(true);
    // 60 ms of tone before the gateway switches to events: detected at 1000, onset 940.
    r.inband_down(1000, '8', 940);
    assert!(r.out.is_empty(), "held while an event may follow");
    assert_eq!(
        r.m.poll_timeout(),
        Some(r.t(1000) + MergeConfig::default().hold)
    );
    r.rfc_down(1030, '8', 1000);
    r.rfc_up(1100, '8', 1100);
    r.run_until(2000);
    assert_eq!(r.got(), vec![('8', Rfc4733)]);
    assert_eq!(r.m.poll_timeout(), None);
}

#[test]
fn d2_tone_well_before_the_event_is_a_separate_press_in_order() {
    let mut r = Rig::new(true);
    r.inband_down(40, '8', 0);
    r.inband_up(100, '8', 100);
    // The same key by RFC 4733 300 ms after the tone began: not a run-in.
    r.rfc_down(320, '8', 300);
    r.rfc_up(400, '8', 400);
    r.run_until(2000);
    assert_eq!(r.got(), vec![('8', Inband), ('8', Rfc4733)]);
}

#[test]
fn d3_without_telephone_event_inband_is_immediate() {
    let mut r = Rig::new(false);
    r.inband_down(40, '3', 0);
    assert_eq!(r.got(), vec![('3', Inband)], "no decision delay");
    assert_eq!(r.m.poll_timeout(), None);
    r.inband_up(100, '3', 100);
    r.inband_down(240, '3', 200);
    assert_eq!(r.got(), vec![('3', Inband), ('3', Inband)]);
}

#[test]
fn inband_only_caller_with_telephone_event_negotiated_still_gets_digits() {
    let mut r = Rig::new(true);
    r.inband_down(40, '1', 0);
    r.inband_up(100, '1', 100);
    r.run_until(159);
    assert!(r.out.is_empty());
    r.run_until(160);
    assert_eq!(r.got(), vec![('1', Inband)]);
    r.inband_down(240, '2', 200);
    assert_eq!(r.got(), vec![('1', Inband)]);
    r.run_until(1000);
    assert_eq!(r.got(), vec![('1', Inband), ('2', Inband)]);
    assert_eq!(r.out[0].at, r.t(0));
}

#[test]
fn late_event_after_an_immediate_inband_digit_is_not_counted_again() {
    // Telephone-event not negotiated but the peer sends events anyway.
    let mut r = Rig::new(false);
    r.inband_down(40, '7', 0);
    r.rfc_down(60, '7', 30);
    r.rfc_up(130, '7', 130);
    assert_eq!(r.got(), vec![('7', Inband)]);
}

#[test]
fn same_digit_twice_quickly_on_both_paths_is_two_digits() {
    // Two presses of 100 ms with a 100 ms pause, each carried by RFC 4733 and in-band, with the
    // two paths in every relative order the network can produce.
    for (skew_rfc, skew_inband) in [(20u64, 40u64), (60, 40), (20, 90), (80, 10)] {
        let mut r = Rig::new(true);
        let mut events: Vec<(u64, u8, u64)> = Vec::new(); // (now, kind, press start)
        for start in [1000u64, 1200] {
            events.push((start + skew_rfc, 0, start));
            events.push((start + 100 + skew_rfc.min(30), 1, start));
            events.push((start + skew_inband, 2, start));
            events.push((start + 100 + 20, 3, start));
        }
        events.sort();
        for (now, kind, start) in events {
            match kind {
                0 => r.rfc_down(now, '4', start),
                1 => r.rfc_up(now, '4', start + 100),
                2 => r.inband_down(now, '4', start + 5),
                _ => r.inband_up(now, '4', start + 100),
            }
        }
        r.run_until(3000);
        assert_eq!(
            r.got(),
            vec![('4', Rfc4733), ('4', Rfc4733)],
            "rfc +{skew_rfc} ms, in-band +{skew_inband} ms"
        );
    }
}

#[test]
fn info_and_inband_count_once_and_info_and_rfc4733_count_once() {
    let mut r = Rig::new(true);
    r.inband_down(40, '9', 0);
    r.info(90, '9');
    r.run_until(1000);
    assert_eq!(r.got(), vec![('9', Info)]);

    // A phone that sends both INFO and RFC 4733 for each key.
    let mut r = Rig::new(true);
    r.rfc_down(20, '6', 0);
    r.info(70, '6');
    r.rfc_up(100, '6', 100);
    r.inband_down(45, '6', 5);
    r.inband_up(110, '6', 105);
    r.rfc_down(420, '6', 400);
    r.rfc_up(500, '6', 500);
    r.info(430, '6');
    r.run_until(2000);
    assert_eq!(r.got(), vec![('6', Rfc4733), ('6', Rfc4733)]);
}

#[test]
fn different_keys_on_different_paths_stay_in_time_order() {
    let mut r = Rig::new(true);
    r.inband_down(40, '1', 0);
    r.rfc_down(70, '2', 50);
    r.rfc_up(150, '2', 150);
    r.run_until(1000);
    assert_eq!(r.got(), vec![('1', Inband), ('2', Rfc4733)]);
}

#[test]
fn dropping_telephone_event_releases_held_keys() {
    let mut r = Rig::new(true);
    r.inband_down(40, '0', 0);
    assert!(r.out.is_empty());
    let now = r.t(50);
    r.m.set_telephone_event(now, false);
    r.drain();
    assert_eq!(r.got(), vec![('0', Inband)]);
}

/// Decodes a real Asterisk capture: the RFC 4733 events and the PCMU audio (placed by RTP
/// timestamp) both run into the merger on the media clock.
fn merge_real_capture(file: &str) -> (Vec<MergedDigit>, String, Instant) {
    let bytes = std::fs::read(format!("fixtures/rtp/{file}")).unwrap();
    let packets = pcap::read(&bytes).unwrap().rtp();
    let first_ts = packets
        .iter()
        .find(|p| p.packet.header.payload_type == 0)
        .unwrap()
        .packet
        .header
        .timestamp;
    let mut audio = Vec::new();
    for p in packets.iter().filter(|p| p.packet.header.payload_type == 0) {
        let at = p.packet.header.timestamp.wrapping_sub(first_ts) as usize;
        if audio.len() < at {
            audio.resize(at, 0);
        }
        audio.truncate(at);
        audio.extend(p.packet.payload.iter().map(|&c| ulaw_to_linear(c)));
    }
    let mut det = DtmfDetector::new(DtmfParams::default());
    det.push(&audio);
    det.finish();
    let inband: Vec<DtmfEvent> = std::iter::from_fn(|| det.poll_event()).collect();
    let inband_digits: String = inband
        .iter()
        .filter_map(|e| match e {
            DtmfEvent::KeyDown { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();

    let t0 = Instant::now();
    let sample = |s: u64| sample_time(t0, s);
    let digits = hotdesk_qa::capture::capture_digits(t0, &packets, Some(101), 8000).unwrap();
    // RFC 4733 down one frame after its onset, up at its end.
    let mut timeline = MergeTimeline::default();
    for d in digits {
        let start = sample(u64::from(d.timestamp.wrapping_sub(first_ts)));
        timeline.rfc4733(d.digit, start + MS(20), start, start + d.duration);
    }
    timeline.inband(inband, sample);
    let out = timeline.run(sample(audio.len() as u64) + Duration::from_secs(1));
    (out, inband_digits, t0)
}

#[test]
fn real_capture_with_leaking_tones_reports_each_key_once() {
    let (out, inband, _) = merge_real_capture("asterisk_pjsip_pcmu_rfc4733_2013785496.pcap");
    let got: String = out.iter().map(|d| d.digit).collect();
    assert!(!inband.is_empty(), "the audio does leak tone");
    assert_eq!(got, "2013785496", "in-band alone heard {inband:?}");
    assert!(out.iter().all(|d| d.source == Rfc4733));
}

#[test]
fn real_capture_with_extra_inband_tones_after_the_events() {
    // After the last event the audio carries further keys with no events: those are real
    // in-band digits and come through as such, after the ten RFC 4733 ones.
    let (out, inband, _) = merge_real_capture("asterisk_pjsip_pcmu_rfc4733_3125894607.pcap");
    let rfc: String = out
        .iter()
        .filter(|d| d.source == Rfc4733)
        .map(|d| d.digit)
        .collect();
    assert_eq!(rfc, "3125894607", "in-band alone heard {inband:?}");
    let first_inband = out.iter().position(|d| d.source == Inband);
    if let Some(i) = first_inband {
        assert!(i >= 10, "an in-band digit among the events: {out:?}");
    }
    // The detector hears "25" of the trailing "3125..." tones (the rest are too short or weak).
    let tail: String = out[10..].iter().map(|d| d.digit).collect();
    assert!(!tail.is_empty(), "the trailing in-band keys are reported");
    assert!(
        out[10..]
            .iter()
            .all(|d| d.source == Inband && d.at > out[9].at)
    );
}
