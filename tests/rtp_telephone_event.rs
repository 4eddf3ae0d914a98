//! RFC 4733 receiver and sender: the cases E1-E7 of `dtmf-conformance.md` §6 on virtual time,
//! the payload codec, the sender driving the receiver, and the real captures in `fixtures/rtp`.

use std::path::Path;
use std::time::{Duration, Instant};

use hotdesk_core::rtp::telephone_event::{
    EventDigit, EventEnd, ReceiverConfig, ReceiverOutput, SenderConfig, TelephoneEvent,
    TelephoneEventError, TelephoneEventReceiver, TelephoneEventSender, digit_event, event_digit,
};
use hotdesk_qa::pcap;
use proptest::prelude::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A receiver on a virtual clock.
struct Rig {
    t0: Instant,
    rx: TelephoneEventReceiver,
    downs: Vec<char>,
    ups: Vec<EventDigit>,
}

impl Rig {
    fn new(clock_rate: u32) -> Self {
        Rig {
            t0: Instant::now(),
            rx: TelephoneEventReceiver::new(clock_rate).unwrap(),
            downs: Vec::new(),
            ups: Vec::new(),
        }
    }

    /// One packet at `ms`: timestamp, marker, event, E bit, duration.
    fn pkt(&mut self, ms: u64, ts: u32, marker: bool, event: u8, end: bool, duration: u16) {
        let ev = TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        };
        self.rx.handle_event(self.t0 + MS(ms), ts, marker, ev);
        self.drain();
    }

    fn tick(&mut self, ms: u64) {
        self.rx.handle_timeout(self.t0 + MS(ms));
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(o) = self.rx.poll_output() {
            match o {
                ReceiverOutput::KeyDown { digit, .. } => self.downs.push(digit),
                ReceiverOutput::KeyUp(d) => self.ups.push(d),
            }
        }
    }

    fn digits(&self) -> String {
        self.ups.iter().map(|d| d.digit).collect()
    }

    /// A standard press: marker start, updates every 20 ms (160 units), 3 end packets.
    fn press(&mut self, at_ms: u64, ts: u32, event: u8, units: u16) {
        let mut d = 0u16;
        let mut t = at_ms;
        let mut first = true;
        while d < units {
            self.pkt(t, ts, first, event, false, d);
            first = false;
            d = d.saturating_add(160).min(units);
            t += 20;
        }
        for i in 0..3 {
            self.pkt(t + i, ts, false, event, true, units);
        }
    }
}

#[test]
fn payload_round_trip_and_errors() {
    let ev = TelephoneEvent {
        event: 11,
        end: true,
        volume: 10,
        duration: 0xABCD,
    };
    assert_eq!(ev.encode(), [11, 0x8A, 0xAB, 0xCD]);
    assert_eq!(TelephoneEvent::decode(&ev.encode()), Ok(ev));
    assert_eq!(ev.digit(), Some('#'));
    // The R bit is ignored on receipt, extra bytes too.
    let r = TelephoneEvent::decode(&[3, 0x4A, 0, 160, 9, 9]).unwrap();
    assert_eq!((r.event, r.end, r.volume, r.duration), (3, false, 10, 160));
    assert_eq!(
        TelephoneEvent::decode(&[1, 2, 3]),
        Err(TelephoneEventError::TooShort { len: 3 })
    );
    for (i, c) in "0123456789*#ABCD".chars().enumerate() {
        assert_eq!(event_digit(i as u8), Some(c));
        assert_eq!(digit_event(c), Ok(i as u8));
    }
    assert_eq!(event_digit(16), None);
    assert_eq!(digit_event('a'), Ok(12));
    assert!(matches!(
        digit_event('x'),
        Err(TelephoneEventError::Digit { digit: 'x' })
    ));
    assert!(TelephoneEventReceiver::new(0).is_err());
}

#[test]
fn e1_basic_event_is_one_digit_with_last_duration() {
    let mut r = Rig::new(8000);
    r.press(0, 1000, 5, 800);
    assert_eq!(r.downs, vec!['5']);
    assert_eq!(r.digits(), "5");
    let d = r.ups[0];
    assert_eq!(d.duration, MS(100));
    assert_eq!(d.end, EventEnd::EndBit);
    assert_eq!(d.start, r.t0);
    assert_eq!(d.timestamp, 1000);
    // Nothing left open: no timeout pending.
    assert_eq!(r.rx.poll_timeout(), None);
}

#[test]
fn e2_lost_start_reports_from_first_update_with_estimated_onset() {
    let mut r = Rig::new(8000);
    // Start and first two updates lost: the first packet seen says 480 units (60 ms) so far.
    r.pkt(60, 500, false, 7, false, 480);
    assert_eq!(r.downs, vec!['7']);
    r.pkt(80, 500, false, 7, false, 640);
    r.pkt(100, 500, false, 7, true, 800);
    assert_eq!(r.digits(), "7");
    assert_eq!(
        r.ups[0].start, r.t0,
        "onset is arrival less the reported duration"
    );
    assert_eq!(r.ups[0].duration, MS(100));
}

#[test]
fn e2_lost_ends_close_by_timeout_and_late_end_makes_no_second_digit() {
    let mut r = Rig::new(8000);
    r.pkt(0, 9000, true, 2, false, 0);
    r.pkt(20, 9000, false, 2, false, 160);
    r.pkt(40, 9000, false, 2, false, 320);
    let deadline = r.rx.poll_timeout().expect("open event has a timeout");
    assert_eq!(
        deadline,
        r.t0 + MS(40) + ReceiverConfig::default().inactivity_timeout
    );
    r.tick(1000);
    assert!(r.ups.is_empty(), "not closed before the timeout");
    r.tick(2040);
    assert_eq!(r.digits(), "2");
    assert_eq!(r.ups[0].end, EventEnd::Timeout);
    assert_eq!(r.ups[0].duration, MS(40));
    // The end packets turn up late: same timestamp, nothing new.
    for i in 0..3 {
        r.pkt(2100 + i, 9000, false, 2, true, 400);
    }
    assert_eq!(r.digits(), "2");
    assert_eq!(r.downs.len(), 1);
}

#[test]
fn e3_duplicates_and_reordering_are_one_digit() {
    let mut r = Rig::new(8000);
    r.pkt(0, 100, true, 1, false, 0);
    r.pkt(0, 100, true, 1, false, 0); // duplicate start
    r.pkt(40, 100, false, 1, false, 320); // overtakes the 160 update
    r.pkt(41, 100, false, 1, false, 160);
    // Asterisk's broken_dtmf.pcap: the end packet before the last update.
    r.pkt(60, 100, false, 1, true, 720);
    r.pkt(60, 100, false, 1, false, 720);
    r.pkt(70, 100, false, 1, true, 720);
    r.pkt(80, 100, false, 1, true, 720);
    r.pkt(300, 100, false, 1, true, 720); // a very late retransmission
    assert_eq!(r.digits(), "1");
    assert_eq!(r.downs.len(), 1);
    assert_eq!(r.ups[0].duration, MS(90));
    // An update of the previous event arriving after the next event started is ignored too.
    r.press(500, 5000, 1, 800);
    r.pkt(560, 100, false, 1, false, 480);
    assert_eq!(r.digits(), "11");
}

#[test]
fn e4_same_key_twice_is_two_digits() {
    let mut r = Rig::new(8000);
    r.press(0, 1000, 9, 800);
    r.press(200, 1000 + 1600, 9, 800);
    assert_eq!(r.digits(), "99");
    // Also when the first press lost all its end packets: the marker of the new timestamp
    // starts a new press and closes the old one.
    let mut r = Rig::new(8000);
    r.pkt(0, 1000, true, 9, false, 0);
    r.pkt(50, 1000, false, 9, false, 400);
    r.pkt(200, 2600, true, 9, false, 0);
    r.pkt(250, 2600, false, 9, true, 400);
    assert_eq!(r.digits(), "99");
    assert_eq!(r.ups[0].end, EventEnd::Superseded);
}

#[test]
fn e5_long_press_over_16_bit_duration_is_one_digit() {
    // 20 s at 8 kHz = 160 000 units: three segments (§2.5.1.3), made by our own sender.
    let t0 = Instant::now();
    let mut tx = TelephoneEventSender::new(
        SenderConfig {
            first_timestamp: 0xFFFF_0000, // wraps during the press too
            ..SenderConfig::default()
        },
        t0,
    )
    .unwrap();
    tx.send_event(t0, 0, Duration::from_secs(20)).unwrap();
    let mut rx = TelephoneEventReceiver::new(8000).unwrap();
    let mut outputs = Vec::new();
    let mut timestamps = std::collections::BTreeSet::new();
    while let Some(at) = tx.poll_timeout() {
        tx.handle_timeout(at);
        while let Some(p) = tx.poll_transmit() {
            timestamps.insert(p.header.timestamp);
            rx.handle_packet(at, &p).unwrap();
        }
        rx.handle_timeout(at);
        outputs.extend(std::iter::from_fn(|| rx.poll_output()));
    }
    assert_eq!(timestamps.len(), 3, "three segments");
    let ups: Vec<EventDigit> = outputs
        .iter()
        .filter_map(|o| match o {
            ReceiverOutput::KeyUp(d) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(ups.len(), 1, "{outputs:?}");
    assert_eq!(ups[0].digit, '0');
    assert_eq!(ups[0].duration, Duration::from_secs(20));
    assert_eq!(ups[0].end, EventEnd::EndBit);
}

#[test]
fn e6_event_clock_scales_durations() {
    for rate in [8000u32, 16000, 48000] {
        let mut r = Rig::new(rate);
        let units = (rate / 10) as u16; // 100 ms
        r.pkt(0, 10, true, 4, false, 0);
        r.pkt(50, 10, false, 4, false, units / 2);
        r.pkt(100, 10, false, 4, true, units);
        assert_eq!(r.digits(), "4");
        assert_eq!(r.ups[0].duration, MS(100), "{rate} Hz");
    }
    // At 48 kHz, 1.5 s is beyond 16 bits already: segments, one digit of 1.5 s.
    let t0 = Instant::now();
    let cfg = SenderConfig {
        clock_rate: 48000,
        ..SenderConfig::default()
    };
    let mut tx = TelephoneEventSender::new(cfg, t0).unwrap();
    tx.send_event(t0, 11, MS(1500)).unwrap();
    let mut rx = TelephoneEventReceiver::new(48000).unwrap();
    let mut ups = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        tx.handle_timeout(at);
        while let Some(p) = tx.poll_transmit() {
            rx.handle_packet(at, &p).unwrap();
        }
        while let Some(o) = rx.poll_output() {
            if let ReceiverOutput::KeyUp(d) = o {
                ups.push(d);
            }
        }
    }
    assert_eq!(ups.len(), 1);
    assert_eq!((ups[0].digit, ups[0].duration), ('#', MS(1500)));
}

#[test]
fn e7_irregular_sender_is_one_digit() {
    // asterisk-unimrcp #44: start, updates at 160 and 320 ms, silence, end at ~1.7 s.
    let mut r = Rig::new(8000);
    r.pkt(0, 4000, true, 6, false, 0);
    r.pkt(160, 4000, false, 6, false, 1280);
    r.pkt(320, 4000, false, 6, false, 2560);
    for ms in (340..1700).step_by(20) {
        r.tick(ms);
    }
    for i in 0..3 {
        r.pkt(1700 + i * 20, 4000, false, 6, true, 13600);
    }
    r.tick(6000);
    assert_eq!(r.digits(), "6");
    assert_eq!(r.downs.len(), 1);
    assert_eq!(r.ups[0].duration, MS(1700));
    assert_eq!(r.ups[0].end, EventEnd::EndBit);
}

#[test]
fn non_dtmf_events_are_ignored() {
    let mut r = Rig::new(8000);
    r.pkt(0, 10, true, 16, false, 0); // flash
    r.pkt(50, 10, false, 16, true, 400);
    r.pkt(100, 500, true, 3, false, 0);
    r.pkt(150, 500, false, 3, true, 400);
    assert_eq!(r.digits(), "3");
}

/// Runs a sender for `digits` into a receiver; returns the digits and their durations.
fn loopback(cfg: SenderConfig, digits: &str) -> Vec<EventDigit> {
    let t0 = Instant::now();
    let mut tx = TelephoneEventSender::new(cfg, t0).unwrap();
    tx.send_digits(t0, digits).unwrap();
    let mut rx = TelephoneEventReceiver::new(cfg.clock_rate).unwrap();
    let mut ups = Vec::new();
    let mut markers = 0;
    let mut ends = 0;
    while let Some(at) = tx.poll_timeout() {
        tx.handle_timeout(at);
        while let Some(p) = tx.poll_transmit() {
            assert_eq!(p.header.payload_type, cfg.payload_type);
            markers += usize::from(p.header.marker);
            ends += usize::from(TelephoneEvent::decode(&p.payload).unwrap().end);
            rx.handle_packet(at, &p).unwrap();
        }
        while let Some(o) = rx.poll_output() {
            if let ReceiverOutput::KeyUp(d) = o {
                ups.push(d);
            }
        }
    }
    assert!(tx.is_idle());
    assert_eq!(markers, digits.len(), "one marker per digit");
    assert_eq!(ends, 3 * digits.len(), "three end packets per digit");
    ups
}

#[test]
fn sender_round_trips_digit_strings() {
    let ups = loopback(SenderConfig::default(), "5401#*AD00");
    let got: String = ups.iter().map(|d| d.digit).collect();
    assert_eq!(got, "5401#*AD00");
    assert!(ups.iter().all(|d| d.duration == MS(100)));
    assert!(ups.iter().all(|d| d.end == EventEnd::EndBit));
    // Starts are 100 ms tone + 40 ms of end packets + 100 ms gap apart.
    for w in ups.windows(2) {
        assert_eq!(w[1].start - w[0].start, MS(240));
    }
    let t0 = Instant::now();
    let mut tx = TelephoneEventSender::new(SenderConfig::default(), t0).unwrap();
    assert!(tx.send_digits(t0, "12x").is_err());
}

#[test]
fn sender_updates_every_50_ms_with_growing_duration() {
    let t0 = Instant::now();
    let mut tx = TelephoneEventSender::new(
        SenderConfig {
            digit: MS(200),
            first_timestamp: 1234,
            ssrc: 0xCAFE,
            first_sequence: 65534,
            ..SenderConfig::default()
        },
        t0,
    )
    .unwrap();
    tx.send_digits(t0, "8").unwrap();
    let mut seen = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        tx.handle_timeout(at);
        while let Some(p) = tx.poll_transmit() {
            let ev = TelephoneEvent::decode(&p.payload).unwrap();
            seen.push((
                at - t0,
                p.header.sequence_number,
                p.header.timestamp,
                p.header.marker,
                ev.end,
                ev.duration,
            ));
        }
    }
    let expect = vec![
        (MS(0), 65534, 1234, true, false, 0),
        (MS(50), 65535, 1234, false, false, 400),
        (MS(100), 0, 1234, false, false, 800),
        (MS(150), 1, 1234, false, false, 1200),
        (MS(200), 2, 1234, false, true, 1600),
        (MS(220), 3, 1234, false, true, 1600),
        (MS(240), 4, 1234, false, true, 1600),
    ];
    assert_eq!(seen, expect);
}

/// Found by the property below: the same key pressed twice, with every packet of the second
/// press lost but its last (no marker), must not pass for the continuation of the first.
#[test]
fn a_repeated_key_whose_start_was_lost_is_a_second_press() {
    let t0 = Instant::now();
    let mut tx = TelephoneEventSender::new(SenderConfig::default(), t0).unwrap();
    tx.send_digits(t0, "##").unwrap();
    let mut packets = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        tx.handle_timeout(at);
        while let Some(p) = tx.poll_transmit() {
            packets.push((at, p));
        }
    }
    let second = packets.last().unwrap().1.header.timestamp;
    let mut rx = TelephoneEventReceiver::new(8000).unwrap();
    // The whole first press, then only the final end packet of the second.
    for (at, p) in packets.iter().filter(|(_, p)| p.header.timestamp != second) {
        rx.handle_packet(*at, p).unwrap();
    }
    let (at, last) = packets.last().unwrap();
    rx.handle_packet(*at, last).unwrap();
    rx.finish();
    let keys: String = std::iter::from_fn(|| rx.poll_output())
        .filter_map(|o| match o {
            ReceiverOutput::KeyUp(d) => Some(d.digit),
            _ => None,
        })
        .collect();
    assert_eq!(keys, "##");
}

proptest! {
    /// Any loss pattern that keeps at least one packet of each press, and any duplication,
    /// gives each press exactly once.
    #[test]
    fn loss_and_duplication_never_split_or_double(
        keep in prop::collection::vec(0u8..4, 1..200),
        digits in "[0-9*#]{1,6}",
    ) {
        let t0 = Instant::now();
        let mut tx = TelephoneEventSender::new(SenderConfig::default(), t0).unwrap();
        tx.send_digits(t0, &digits).unwrap();
        let mut packets = Vec::new();
        while let Some(at) = tx.poll_timeout() {
            tx.handle_timeout(at);
            while let Some(p) = tx.poll_transmit() {
                packets.push((at, p));
            }
        }
        let mut rx = TelephoneEventReceiver::new(8000).unwrap();
        let mut got = String::new();
        let mut pressed = std::collections::BTreeSet::new();
        for (i, (at, p)) in packets.iter().enumerate() {
            // 0: lose, 1: once, 2-3: duplicate; the marker packet is always lost or kept like
            // any other, but at least one packet per press is kept below.
            let copies = keep[i % keep.len()];
            let ts = p.header.timestamp;
            let must_keep = !pressed.contains(&ts)
                && packets.get(i + 1).is_none_or(|(_, n)| n.header.timestamp != ts);
            let copies = if must_keep { copies.max(1) } else { copies };
            if copies > 0 {
                pressed.insert(ts);
            }
            for _ in 0..copies.min(2) {
                rx.handle_packet(*at, p).unwrap();
            }
        }
        rx.finish();
        while let Some(o) = rx.poll_output() {
            if let ReceiverOutput::KeyUp(d) = o {
                got.push(d.digit);
            }
        }
        prop_assert_eq!(got, digits);
    }
}

fn capture(name: &str) -> Vec<pcap::CapturedRtp> {
    let bytes = std::fs::read(Path::new("fixtures/rtp").join(name)).unwrap();
    let cap = pcap::read(&bytes).unwrap();
    assert!(!cap.truncated);
    cap.rtp()
}

fn digits_of(packets: &[pcap::CapturedRtp]) -> Vec<EventDigit> {
    hotdesk_qa::capture::capture_digits(Instant::now(), packets, Some(101), 8000).unwrap()
}

#[test]
fn real_asterisk_captures_give_their_extensions_with_200_ms_presses() {
    for (file, expect) in [
        ("asterisk_pjsip_pcmu_rfc4733_2013785496.pcap", "2013785496"),
        ("asterisk_pjsip_pcmu_rfc4733_3125894607.pcap", "3125894607"),
    ] {
        let packets = capture(file);
        // PCMU and events on one SSRC.
        assert!(packets.iter().any(|p| p.packet.header.payload_type == 0));
        let digits = digits_of(&packets);
        let got: String = digits.iter().map(|d| d.digit).collect();
        assert_eq!(got, expect, "{file}");
        assert!(digits.iter().all(|d| d.duration == MS(200)), "{file}");
        assert!(digits.iter().all(|d| d.end == EventEnd::EndBit), "{file}");
    }
}

#[test]
fn asterisk_out_of_order_end_packets_give_1000() {
    let digits = digits_of(&capture("asterisk_rfc2833_out_of_order_1000.pcap"));
    let got: String = digits.iter().map(|d| d.digit).collect();
    assert_eq!(got, "1000");
    let ms: Vec<u128> = digits.iter().map(|d| d.duration.as_millis()).collect();
    assert_eq!(ms, vec![90, 100, 90, 100]);
}

#[test]
fn asterisk_events_without_end_bit_then_a_normal_one_give_1234() {
    // The Asterisk testsuite replays these four in one call and expects "1234".
    let mut packets = Vec::new();
    for f in [
        "asterisk_rfc2833_noend_1.pcap",
        "asterisk_rfc2833_noend_2.pcap",
        "asterisk_rfc2833_noend_3.pcap",
        "sipp_rfc2833_4.pcap",
    ] {
        packets.extend(capture(f));
    }
    packets.sort_by_key(|p| p.time);
    let digits = digits_of(&packets);
    let got: String = digits.iter().map(|d| d.digit).collect();
    assert_eq!(got, "1234");
    let ends: Vec<EventEnd> = digits.iter().map(|d| d.end).collect();
    assert_eq!(
        ends,
        vec![
            EventEnd::Superseded,
            EventEnd::Superseded,
            EventEnd::Superseded,
            EventEnd::EndBit
        ]
    );
}

#[test]
fn speech_capture_has_no_events() {
    let packets = capture("sipp_g711a_speech.pcap");
    assert_eq!(packets.len(), 236, "30 ms PCMA frames, ~7 s");
    assert!(packets.iter().all(|p| p.packet.payload.len() == 240));
    assert!(packets.iter().all(|p| p.packet.header.payload_type == 8));
    assert!(digits_of(&packets).is_empty());
}

/// Rewrites a classic Ethernet pcap as pcapng (nanosecond resolution) and as a raw-IP,
/// big-endian, nanosecond classic pcap.
fn convert(classic: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut ng = Vec::new();
    let block = |ng: &mut Vec<u8>, ty: u32, body: &[u8]| {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = (body.len() + 12) as u32;
        ng.extend(ty.to_le_bytes());
        ng.extend(len.to_le_bytes());
        ng.extend(&body);
        ng.extend(len.to_le_bytes());
    };
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    block(&mut ng, 0x0A0D_0D0A, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend([0, 0]);
    idb.extend(65535u32.to_le_bytes());
    idb.extend(9u16.to_le_bytes()); // if_tsresol = 10^-9
    idb.extend(1u16.to_le_bytes());
    idb.extend([9, 0, 0, 0]);
    idb.extend([0, 0, 0, 0]); // opt_endofopt
    block(&mut ng, 1, &idb);
    let mut raw = vec![0xA1, 0xB2, 0x3C, 0x4D, 0, 2, 0, 4];
    raw.extend([0; 8]);
    raw.extend(65535u32.to_be_bytes());
    raw.extend(101u32.to_be_bytes());
    let mut at = 24;
    while at + 16 <= classic.len() {
        let (sec, usec, incl) = (
            le32(classic, at),
            le32(classic, at + 4),
            le32(classic, at + 8),
        );
        let frame = &classic[at + 16..at + 16 + incl as usize];
        let ns = u64::from(sec) * 1_000_000_000 + u64::from(usec) * 1000;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend(((ns >> 32) as u32).to_le_bytes());
        epb.extend((ns as u32).to_le_bytes());
        epb.extend(incl.to_le_bytes());
        epb.extend(incl.to_le_bytes());
        epb.extend(frame);
        block(&mut ng, 6, &epb);
        let ip = &frame[14..];
        raw.extend(sec.to_be_bytes());
        raw.extend((usec * 1000).to_be_bytes());
        raw.extend((ip.len() as u32).to_be_bytes());
        raw.extend((ip.len() as u32).to_be_bytes());
        raw.extend(ip);
        at += 16 + incl as usize;
    }
    (ng, raw)
}

#[test]
fn pcapng_and_raw_ip_captures_read_the_same() {
    let classic = std::fs::read("fixtures/rtp/asterisk_rfc2833_out_of_order_1000.pcap").unwrap();
    let a = pcap::read(&classic).unwrap();
    let (ng, raw) = convert(&classic);
    for other in [ng, raw] {
        let b = pcap::read(&other).unwrap();
        assert_eq!(a.datagrams, b.datagrams);
        assert!(!b.truncated);
    }
    // Cut short mid-record: the complete records are kept.
    let cut = pcap::read(&classic[..classic.len() - 5]).unwrap();
    assert!(cut.truncated);
    assert_eq!(cut.datagrams.len(), a.datagrams.len() - 1);
    assert!(matches!(
        pcap::read(b"RIFF....WAVEfmt "),
        Err(pcap::PcapError::Magic { .. })
    ));
}

proptest! {
    #[test]
    fn pcap_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), magic in 0usize..3) {
        let mut data = match magic {
            0 => vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0],
            1 => vec![0x0A, 0x0D, 0x0D, 0x0A],
            _ => Vec::new(),
        };
        data.extend(bytes);
        let _ = pcap::read(&data).map(|c| c.rtp());
    }

    #[test]
    fn corrupted_real_capture_never_panics(flips in prop::collection::vec((0usize..2152, any::<u8>()), 1..20)) {
        let mut data = std::fs::read("fixtures/rtp/asterisk_rfc2833_out_of_order_1000.pcap").unwrap();
        for (at, v) in flips {
            let n = data.len();
            data[at % n] = v;
        }
        if let Ok(cap) = pcap::read(&data) {
            let _ = hotdesk_qa::capture::capture_digits(Instant::now(), &cap.rtp(), None, 8000);
        }
    }
}
