//! The project's own RTP/DTMF writer, which makes the pcaps the sipp tests replay: the pcap
//! writer round-trips through our reader with valid IPv4/UDP headers, and every stream mode
//! decodes back to exactly its digits through our RFC 4733 receiver, our in-band detector after
//! G.711 decoding, and the merge of the two; tshark (an independent reader) reads the same packets.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{MergeTimeline, sample_time};
use hotdesk_core::dsp::dtmf::{self, DtmfDetector, DtmfParams};
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::media::{DigitSource, MergedDigit};
use hotdesk_core::rtp::packet;
use hotdesk_core::rtp::telephone_event::{EventDigit, EventEnd, TelephoneEvent};
use hotdesk_qa::capture::capture_digits;
use hotdesk_qa::dtmf_stream::{
    self, DtmfMode, DtmfStream, DtmfStreamError, DtmfStreamSpec, PTIME, SAMPLES_PER_FRAME,
    audio_payload_type, write_dtmf_pcap,
};
use hotdesk_qa::pcap::{self, CapturedRtp, MAX_UDP_PAYLOAD, PcapWriteError, PcapWriter};

const MS: fn(u64) -> Duration = Duration::from_millis;
const ALL_KEYS: &str = "123A456B789C*0#D";

// ---------------------------------------------------------------------------------------------
// The pcap writer.

/// RFC 1071 sum over `bytes` (odd length padded with a zero octet); 0 when a checksum inside
/// them is right.
fn ones_complement_sum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        for w in part.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Walks a classic little-endian microsecond Ethernet pcap by hand and checks every frame's
/// IPv4 header (lengths, checksum, no fragment) and UDP header (length, checksum). Returns the
/// number of frames.
fn check_frames(bytes: &[u8]) -> usize {
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(le32(0), 0xA1B2_C3D4, "microsecond magic");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 2, "version major");
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 4, "version minor");
    assert_eq!(le32(20), 1, "LINKTYPE_ETHERNET");
    let snaplen = le32(16) as usize;
    let mut at = 24;
    let mut n = 0;
    while at < bytes.len() {
        assert!(le32(at + 4) < 1_000_000, "microseconds below one second");
        let incl = le32(at + 8) as usize;
        assert_eq!(incl, le32(at + 12) as usize, "frames are written whole");
        assert!(incl <= snaplen);
        let f = &bytes[at + 16..at + 16 + incl];
        assert_eq!(&f[12..14], &[0x08, 0x00], "IPv4 ethertype");
        let ip = &f[14..];
        assert_eq!(ip[0], 0x45, "IPv4 without options");
        assert_eq!(
            usize::from(u16::from_be_bytes([ip[2], ip[3]])),
            ip.len(),
            "IPv4 total length"
        );
        assert_eq!(
            u16::from_be_bytes([ip[6], ip[7]]) & 0x3FFF,
            0,
            "not a fragment"
        );
        assert_eq!(ip[9], 17, "UDP");
        assert_eq!(ones_complement_sum(&[&ip[..20]]), 0, "IPv4 header checksum");
        let udp = &ip[20..];
        assert_eq!(
            usize::from(u16::from_be_bytes([udp[4], udp[5]])),
            udp.len(),
            "UDP length"
        );
        assert_ne!(&udp[6..8], &[0, 0], "UDP checksum present");
        let mut pseudo = [0u8; 12];
        pseudo[0..8].copy_from_slice(&ip[12..20]);
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
        assert_eq!(ones_complement_sum(&[&pseudo, udp]), 0, "UDP checksum");
        at += 16 + incl;
        n += 1;
    }
    assert_eq!(at, bytes.len());
    n
}

#[test]
fn pcap_writer_round_trips_through_the_reader() {
    let src = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
    let dst = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 5004);
    let payloads: Vec<Vec<u8>> = [0usize, 1, 4, 13, 172, 1400, MAX_UDP_PAYLOAD]
        .iter()
        .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
        .collect();
    let base = Duration::from_secs(1_700_000_000);
    // Sub-microsecond parts are dropped by the microsecond format.
    let times: Vec<Duration> = (0..payloads.len() as u64)
        .map(|i| base + MS(20 * i) + Duration::from_nanos(123_456 * i + 789))
        .collect();
    let bytes = pcap::write_udp_capture(
        src,
        dst,
        times
            .iter()
            .copied()
            .zip(payloads.iter().map(Vec::as_slice)),
    )
    .unwrap();
    assert_eq!(check_frames(&bytes), payloads.len());

    let cap = pcap::read(&bytes).unwrap();
    assert!(!cap.truncated);
    assert_eq!(cap.skipped, 0);
    assert_eq!(cap.datagrams.len(), payloads.len());
    for ((d, payload), time) in cap.datagrams.iter().zip(&payloads).zip(&times) {
        assert_eq!(d.payload, *payload);
        assert_eq!(d.src, SocketAddr::V4(src));
        assert_eq!(d.dst, SocketAddr::V4(dst));
        assert_eq!(d.time, Duration::from_micros(time.as_micros() as u64));
    }
}

#[test]
fn pcap_writer_refuses_what_a_classic_pcap_cannot_hold() {
    let a = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let big = vec![0u8; MAX_UDP_PAYLOAD + 1];
    assert!(matches!(
        w.write_udp(Duration::ZERO, a, a, &big),
        Err(PcapWriteError::PayloadTooLarge { len }) if len == MAX_UDP_PAYLOAD + 1
    ));
    let past_2106 = Duration::from_secs(u64::from(u32::MAX) + 1);
    assert!(matches!(
        w.write_udp(past_2106, a, a, b"x"),
        Err(PcapWriteError::Time { .. })
    ));
    // Nothing was written for the refused datagrams: the file is a valid empty capture.
    let bytes = w.finish().unwrap();
    assert_eq!(bytes.len(), 24);
    assert!(pcap::read(&bytes).unwrap().datagrams.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The DTMF stream.

fn spec(digits: &str, mode: DtmfMode, law: Law) -> DtmfStreamSpec {
    DtmfStreamSpec {
        digits: digits.into(),
        mode,
        law,
        ..DtmfStreamSpec::default()
    }
}

/// A stream written to a file with `write_dtmf_pcap` and read back with our reader.
struct Written {
    spec: DtmfStreamSpec,
    stream: DtmfStream,
    bytes: Vec<u8>,
    packets: Vec<CapturedRtp>,
}

impl Written {
    fn new(spec: DtmfStreamSpec) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dtmf.pcap");
        let stream = write_dtmf_pcap(&path, &spec).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(check_frames(&bytes), stream.packets.len());
        let cap = pcap::read(&bytes).unwrap();
        assert!(!cap.truncated);
        assert_eq!(cap.skipped, 0);
        let packets = cap.rtp();
        assert_eq!(packets.len(), cap.datagrams.len(), "every datagram is RTP");
        assert_eq!(packets.len(), stream.packets.len());
        Written {
            spec,
            stream,
            bytes,
            packets,
        }
    }

    fn audio_pt(&self) -> u8 {
        audio_payload_type(self.spec.law)
    }

    fn audio(&self) -> Vec<&CapturedRtp> {
        let pt = self.audio_pt();
        self.packets
            .iter()
            .filter(|p| p.packet.header.payload_type == pt)
            .collect()
    }

    fn events(&self) -> Vec<&CapturedRtp> {
        let pt = self.spec.event_payload_type;
        self.packets
            .iter()
            .filter(|p| p.packet.header.payload_type == pt)
            .collect()
    }

    /// Frame index of a packet from its capture time; asserts it is on the 20 ms grid.
    fn frame_of(&self, p: &CapturedRtp) -> u64 {
        let since = p.time - self.spec.start;
        assert_eq!(
            since.as_nanos() % PTIME.as_nanos(),
            0,
            "{since:?} off the grid"
        );
        (since.as_nanos() / PTIME.as_nanos()) as u64
    }

    /// The decoded audio, each packet placed by its RTP timestamp, frames without audio silent.
    fn decoded_audio(&self) -> Vec<i16> {
        let mut audio = vec![0i16; self.stream.frames as usize * SAMPLES_PER_FRAME];
        for p in self.audio() {
            let at = p
                .packet
                .header
                .timestamp
                .wrapping_sub(self.spec.first_timestamp) as usize;
            let mut decoded = Vec::new();
            self.spec.law.decode_into(&p.packet.payload, &mut decoded);
            audio[at..at + decoded.len()].copy_from_slice(&decoded);
        }
        audio
    }

    fn inband_digits(&self) -> String {
        dtmf::digits(&dtmf::detect(&self.decoded_audio(), &DtmfParams::default()))
    }

    /// The RFC 4733 digits through the receiver, on a clock whose zero is the first frame.
    fn event_digits(&self, t0: Instant) -> Vec<EventDigit> {
        capture_digits(t0, &self.packets, Some(self.spec.event_payload_type), 8000).unwrap()
    }

    /// Both paths into the merger, on one clock: events at their capture times, in-band keys at
    /// the detector's decision sample.
    fn merged(&self) -> Vec<MergedDigit> {
        let t0 = Instant::now();
        let mut timeline = MergeTimeline::default();
        for d in self.event_digits(t0) {
            // The first event packet reports duration 0: its arrival is the key-down.
            timeline.rfc4733(d.digit, d.start, d.start, d.start + d.duration);
        }
        let mut det = DtmfDetector::new(DtmfParams::default());
        det.push(&self.decoded_audio());
        det.finish();
        timeline.inband(std::iter::from_fn(|| det.poll_event()), |s| {
            sample_time(t0, s)
        });
        timeline.run(t0 + self.stream.duration() + Duration::from_secs(5))
    }

    /// What every mode guarantees: one stream, contiguous sequence numbers, packets on the
    /// frame grid with audio timestamps from their frame, the frame count from the spec, and
    /// event markers exactly on each event's first packet.
    fn check_layout(&self) {
        let s = &self.spec;
        let n = s.digits.chars().count() as u32;
        let expected = s.lead + s.tone * n + s.gap * n.saturating_sub(1) + s.tail;
        assert_eq!(self.stream.duration(), expected);
        assert_eq!(
            u128::from(self.stream.frames),
            expected.as_nanos() / PTIME.as_nanos()
        );
        let mut last_frame = 0;
        for (i, p) in self.packets.iter().enumerate() {
            let h = &p.packet.header;
            assert_eq!(h.ssrc, s.ssrc);
            assert_eq!(h.sequence_number, s.first_sequence.wrapping_add(i as u16));
            assert_eq!(p.src, SocketAddr::V4(s.src));
            assert_eq!(p.dst, SocketAddr::V4(s.dst));
            let frame = self.frame_of(p);
            assert!(frame >= last_frame, "capture times never go back");
            assert!(frame < self.stream.frames);
            last_frame = frame;
        }
        let audio = self.audio();
        for (i, p) in audio.iter().enumerate() {
            let frame = self.frame_of(p);
            assert_eq!(
                p.packet.header.timestamp,
                s.first_timestamp
                    .wrapping_add((frame * SAMPLES_PER_FRAME as u64) as u32),
                "audio timestamp follows the frame"
            );
            assert_eq!(p.packet.payload.len(), SAMPLES_PER_FRAME);
            assert_eq!(
                p.packet.header.marker,
                i == 0,
                "marker on the first audio only"
            );
        }
        let events = self.events();
        assert_eq!(audio.len() + events.len(), self.packets.len());
        let mut previous: Option<u32> = None;
        let mut starts = 0;
        for p in &events {
            let ts = p.packet.header.timestamp;
            let first_of_event = previous != Some(ts);
            assert_eq!(p.packet.header.marker, first_of_event, "marker at {ts}");
            if first_of_event {
                starts += 1;
                // The event's timestamp is that of the audio frame it starts in.
                let frame = self.frame_of(p);
                assert_eq!(
                    ts,
                    s.first_timestamp
                        .wrapping_add((frame * SAMPLES_PER_FRAME as u64) as u32)
                );
            }
            let ev = TelephoneEvent::decode(&p.packet.payload).unwrap();
            assert_eq!(u32::from(ev.volume), (-s.level_dbm0).round() as u32);
            previous = Some(ts);
        }
        if s.mode.sends_events() {
            assert_eq!(starts, n, "one marker per event");
            // Per event: an update every frame of the tone, then three end packets.
            let per_event = (s.tone.as_nanos() / PTIME.as_nanos()) as usize + 3;
            assert_eq!(events.len(), n as usize * per_event);
        } else {
            assert!(events.is_empty());
        }
        let frames = self.stream.frames as usize;
        match s.mode {
            // Exactly one packet per frame: audio, or the event that replaces it.
            DtmfMode::Rfc4733 => {
                assert_eq!(self.packets.len(), frames);
                let mut seen = vec![false; frames];
                for p in &self.packets {
                    seen[self.frame_of(p) as usize] = true;
                }
                assert!(seen.iter().all(|&s| s), "every frame has its packet");
            }
            DtmfMode::Inband | DtmfMode::Both => {
                assert_eq!(audio.len(), frames, "audio in every frame");
                for (i, p) in audio.iter().enumerate() {
                    assert_eq!(self.frame_of(p), i as u64);
                }
            }
        }
    }

    fn check_events_decode(&self) {
        let t0 = Instant::now();
        let got = self.event_digits(t0);
        let digits: String = got.iter().map(|d| d.digit).collect();
        assert_eq!(digits, self.spec.digits.to_uppercase());
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d.end, EventEnd::EndBit, "closed by its end packet");
            assert_eq!(d.duration, self.spec.tone, "reported length");
            let key_down = self.spec.lead + (self.spec.tone + self.spec.gap) * i as u32;
            assert_eq!(d.start, t0 + key_down, "key-down on the tones' timeline");
        }
    }
}

const LAWS: [Law; 2] = [Law::Ulaw, Law::Alaw];

#[test]
fn rfc4733_stream_gives_exactly_the_digits_through_the_receiver() {
    for law in LAWS {
        let w = Written::new(spec(ALL_KEYS, DtmfMode::Rfc4733, law));
        w.check_layout();
        w.check_events_decode();
        // The audio is G.711 silence, and no tone is heard in it.
        let mut silence = Vec::new();
        law.encode_into(&[0], &mut silence);
        let silence = silence[0];
        for p in w.audio() {
            assert!(p.packet.payload.iter().all(|&c| c == silence), "{law:?}");
        }
        assert_eq!(w.inband_digits(), "");
    }
}

#[test]
fn inband_stream_gives_exactly_the_digits_through_the_detector() {
    for law in LAWS {
        let w = Written::new(spec(ALL_KEYS, DtmfMode::Inband, law));
        w.check_layout();
        assert_eq!(w.inband_digits(), ALL_KEYS, "{law:?}");
        assert!(w.event_digits(Instant::now()).is_empty());
        // The tones are where the spec puts them (the detector finds onsets to a few samples).
        let presses = dtmf::detect(&w.decoded_audio(), &DtmfParams::default());
        for (i, p) in presses.iter().enumerate() {
            let onset = (w.spec.lead + (w.spec.tone + w.spec.gap) * i as u32).as_micros() / 125;
            let onset = onset as i64;
            assert!((p.start as i64 - onset).abs() <= 8, "{p:?} vs {onset}");
            let level = f64::from(p.low_dbm0.min(p.high_dbm0));
            assert!((level - w.spec.level_dbm0).abs() < 1.0, "{p:?}");
        }
    }
}

#[test]
fn both_gives_the_same_digits_on_both_paths_and_once_each_merged() {
    for law in LAWS {
        for digits in [ALL_KEYS, "5401#", "1111", "7"] {
            let w = Written::new(spec(digits, DtmfMode::Both, law));
            w.check_layout();
            w.check_events_decode();
            assert_eq!(w.inband_digits(), digits, "{law:?}");
            let merged = w.merged();
            let got: String = merged.iter().map(|d| d.digit).collect();
            assert_eq!(got, digits, "{law:?}: {merged:?}");
            assert!(
                merged.iter().all(|d| d.source == DigitSource::Rfc4733),
                "the events win every press: {merged:?}"
            );
        }
    }
}

#[test]
fn short_quiet_keys_and_custom_framing_still_decode() {
    // Q.24's must-operate corner: 40 ms tones, 40 ms pauses (60 when events are sent: the end
    // packets hold three frames), -25 dBm0 per tone, with an event payload type other than 101,
    // no lead, a wrapping sequence number and timestamp, and lower-case keys.
    for mode in [DtmfMode::Rfc4733, DtmfMode::Inband, DtmfMode::Both] {
        let pause = if mode.sends_events() { MS(60) } else { MS(40) };
        let w = Written::new(DtmfStreamSpec {
            digits: "19ad*#".into(),
            mode,
            law: Law::Alaw,
            event_payload_type: 96,
            level_dbm0: -25.0,
            lead: Duration::ZERO,
            tone: MS(40),
            gap: pause,
            tail: pause,
            ssrc: 0xDEAD_BEEF,
            first_sequence: 65_530,
            first_timestamp: u32::MAX - 400,
            seed: 9,
            src: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 16000),
            dst: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5060),
            ..DtmfStreamSpec::default()
        });
        w.check_layout();
        if mode.sends_events() {
            w.check_events_decode();
        }
        if mode.sends_tones() {
            assert_eq!(w.inband_digits(), "19AD*#", "{mode:?}");
        }
    }
}

#[test]
fn no_digits_is_silence_of_the_asked_length() {
    for mode in [DtmfMode::Rfc4733, DtmfMode::Inband, DtmfMode::Both] {
        let w = Written::new(DtmfStreamSpec {
            mode,
            lead: Duration::ZERO,
            tail: Duration::from_secs(5),
            ..DtmfStreamSpec::default()
        });
        w.check_layout();
        assert_eq!(w.packets.len(), 250);
        assert_eq!(w.inband_digits(), "");
    }
}

#[test]
fn same_spec_same_bytes_and_the_seed_only_moves_the_tone_phases() {
    let make = |mode, seed| {
        dtmf_stream::build(&DtmfStreamSpec {
            seed,
            ..spec("5401#", mode, Law::Ulaw)
        })
        .unwrap()
        .to_pcap()
        .unwrap()
    };
    assert_eq!(make(DtmfMode::Both, 1), make(DtmfMode::Both, 1));
    assert_ne!(make(DtmfMode::Inband, 1), make(DtmfMode::Inband, 2));
    // Events and silence involve no random choice.
    assert_eq!(make(DtmfMode::Rfc4733, 1), make(DtmfMode::Rfc4733, 2));
    // The file written is the in-memory capture.
    let w = Written::new(spec("5401#", DtmfMode::Both, Law::Ulaw));
    assert_eq!(w.bytes, w.stream.to_pcap().unwrap());
}

#[test]
fn specs_the_stream_cannot_honour_are_refused() {
    let build = |f: &dyn Fn(&mut DtmfStreamSpec)| {
        let mut s = spec("12", DtmfMode::Both, Law::Ulaw);
        f(&mut s);
        dtmf_stream::build(&s)
    };
    assert!(matches!(
        build(&|s| s.digits = "12x".into()),
        Err(DtmfStreamError::Digit { digit: 'x' })
    ));
    assert!(matches!(
        build(&|s| s.tone = MS(50)),
        Err(DtmfStreamError::NotFrameAligned { what: "tone", .. })
    ));
    assert!(matches!(
        build(&|s| s.lead = MS(510)),
        Err(DtmfStreamError::NotFrameAligned { what: "lead", .. })
    ));
    assert!(matches!(
        build(&|s| s.tone = Duration::ZERO),
        Err(DtmfStreamError::TooShort { what: "tone", .. })
    ));
    // The three end packets need 60 ms after each tone, but only when events are sent.
    assert!(matches!(
        build(&|s| s.gap = MS(40)),
        Err(DtmfStreamError::TooShort { what: "gap", .. })
    ));
    assert!(matches!(
        build(&|s| s.tail = MS(40)),
        Err(DtmfStreamError::TooShort { what: "tail", .. })
    ));
    assert!(
        build(&|s| {
            s.mode = DtmfMode::Inband;
            s.gap = MS(20);
            s.tail = Duration::ZERO;
        })
        .is_ok()
    );
    for pt in [0, 72, 76, 128] {
        assert!(
            matches!(
                build(&|s| s.event_payload_type = pt),
                Err(DtmfStreamError::PayloadType { .. })
            ),
            "pt {pt}"
        );
    }
    assert!(matches!(
        build(&|s| {
            s.law = Law::Alaw;
            s.event_payload_type = 8;
        }),
        Err(DtmfStreamError::PayloadType {
            payload_type: 8,
            audio: 8
        })
    ));
    for dbm0 in [0.0, -2.0, -64.0, f64::NAN] {
        assert!(
            matches!(
                build(&|s| s.level_dbm0 = dbm0),
                Err(DtmfStreamError::Level { .. })
            ),
            "{dbm0}"
        );
    }
    let err = write_dtmf_pcap(
        "/nonexistent-dir/x.pcap",
        &spec("1", DtmfMode::Rfc4733, Law::Ulaw),
    )
    .unwrap_err();
    assert!(matches!(err, DtmfStreamError::Create { .. }), "{err}");
}

#[test]
fn packets_serialise_as_the_reader_parses_them() {
    let stream = dtmf_stream::build(&spec("9#", DtmfMode::Both, Law::Ulaw)).unwrap();
    for p in &stream.packets {
        let bytes = packet::serialize(&p.packet).unwrap();
        let back = packet::parse(&bytes).unwrap();
        assert_eq!(back.header, p.packet.header);
        assert_eq!(back.payload, p.packet.payload);
    }
}

// ---------------------------------------------------------------------------------------------
// An independent reader.

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tshark_reads_the_stream_with_good_checksums() {
    // An independent peer reads our pcaps; .ci/run installs it (Debian `tshark`).
    assert!(
        tshark_available(),
        "tshark is not installed: apt-get install -y tshark (see .ci/run)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("both.pcap");
    let spec = DtmfStreamSpec {
        first_sequence: 65_500,
        ..spec("5401#", DtmfMode::Both, Law::Ulaw)
    };
    let stream = write_dtmf_pcap(&path, &spec).unwrap();
    let port = spec.dst.port();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-d", &format!("udp.port=={port},rtp")])
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ])
        .args(["-T", "fields", "-E", "separator=,"])
        .args(["-e", "rtp.seq", "-e", "rtp.p_type", "-e", "rtp.marker"])
        .args(["-e", "ip.checksum.status", "-e", "udp.checksum.status"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), stream.packets.len(), "{text}");
    for (row, p) in rows.iter().zip(&stream.packets) {
        let h = &p.packet.header;
        assert_eq!(row[0], h.sequence_number.to_string(), "{row:?}");
        assert_eq!(row[1], h.payload_type.to_string(), "{row:?}");
        let marker = matches!(row[2], "1" | "True");
        assert_eq!(marker, h.marker, "{row:?}");
        // 1 is "Good" in tshark's checksum status.
        assert_eq!(row[3], "1", "IPv4 checksum {row:?}");
        assert_eq!(row[4], "1", "UDP checksum {row:?}");
    }
}
