//! The sans-IO RTP session: absolute-schedule pacing on virtual time, reordering and loss
//! accounting, and packet parsing that refuses malformed input without panicking.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hotdesk_core::rtp::packet::{self, PacketError};
use hotdesk_core::rtp::session::{ReceiverConfig, RtpReceiver, RtpSender, SenderConfig};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn sixty_seconds_is_exactly_3000_contiguous_packets_without_drift() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut tx = RtpSender::new(SenderConfig::default(), t0, &mut rng);
    let frame = Bytes::from_static(&[0xFF; 160]);
    let mut sent = Vec::new();
    // Wake-ups are late by a varying amount, as a loaded runtime would be.
    let mut k = 0u64;
    while let Some(due) = tx.poll_timeout() {
        if due >= t0 + Duration::from_secs(60) {
            break;
        }
        let late = Duration::from_micros((k * 7919) % 15_000);
        k += 1;
        let now = due + late;
        tx.handle_timeout(now, |_| Some(frame.clone()));
        while let Some((slot, p)) = tx.poll_transmit() {
            assert_eq!(slot, due, "each packet names the slot it was due in");
            sent.push((slot, p));
        }
    }
    assert_eq!(sent.len(), 3000);
    let first = &sent[0].1.header;
    assert!(first.marker, "talkspurt start");
    for (i, (due, p)) in sent.iter().enumerate() {
        let h = &p.header;
        assert_eq!(
            *due,
            t0 + MS(20) * i as u32,
            "frame {i} due on the absolute grid"
        );
        assert_eq!(
            h.sequence_number,
            first.sequence_number.wrapping_add(i as u16)
        );
        assert_eq!(h.timestamp, first.timestamp.wrapping_add(160 * i as u32));
        assert_eq!(h.ssrc, tx.ssrc());
        assert_eq!(h.marker, i == 0);
        assert_eq!(h.payload_type, 0);
    }
    // The next frame is due exactly at 60 s.
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(60)));
}

#[test]
fn a_late_wake_up_sends_the_missed_frames_and_keeps_the_grid() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tx = RtpSender::new(SenderConfig::default(), t0, &mut rng);
    tx.handle_timeout(t0 + MS(95), |n| Some(Bytes::from(vec![n as u8; 160])));
    let burst: Vec<_> = std::iter::from_fn(|| tx.poll_transmit()).collect();
    assert_eq!(burst.len(), 5, "frames 0-4 were due by 95 ms");
    let slots: Vec<Instant> = burst.iter().map(|(due, _)| *due).collect();
    let grid: Vec<Instant> = (0..5).map(|i| t0 + MS(20 * i)).collect();
    assert_eq!(slots, grid, "each missed frame keeps its own slot");
    assert_eq!(tx.poll_timeout(), Some(t0 + MS(100)));
}

#[test]
fn identifiers_are_random() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let a = RtpSender::new(SenderConfig::default(), t0, &mut rng);
    let b = RtpSender::new(SenderConfig::default(), t0, &mut rng);
    assert_ne!(a.ssrc(), b.ssrc());
    assert_ne!(a.next_sequence(), b.next_sequence());
    assert_ne!(a.timestamp_of(0), b.timestamp_of(0));
}

#[test]
fn silence_skips_packets_not_timestamps_and_marks_the_next_talkspurt() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut tx = RtpSender::new(SenderConfig::default(), t0, &mut rng);
    // Frames 3-5 are silence.
    tx.handle_timeout(t0 + MS(180), |n| {
        (!(3..=5).contains(&n)).then(|| Bytes::from_static(&[0; 160]))
    });
    let p: Vec<_> = std::iter::from_fn(|| tx.poll_transmit().map(|(_, p)| p)).collect();
    assert_eq!(p.len(), 7);
    let markers: Vec<bool> = p.iter().map(|p| p.header.marker).collect();
    assert_eq!(markers, [true, false, false, true, false, false, false]);
    assert_eq!(
        p[3].header.timestamp.wrapping_sub(p[2].header.timestamp),
        4 * 160
    );
    assert_eq!(
        p[3].header.sequence_number,
        p[2].header.sequence_number.wrapping_add(1)
    );
}

fn pkt(ssrc: u32, seq: u16) -> packet::Packet {
    packet::build(
        0,
        false,
        seq,
        u32::from(seq) * 160,
        ssrc,
        Bytes::from_static(&[0; 4]),
    )
}

fn delivered(rx: &mut RtpReceiver) -> Vec<u16> {
    std::iter::from_fn(|| rx.poll_packet())
        .map(|p| p.header.sequence_number)
        .collect()
}

#[test]
fn receiver_reorders_within_the_window_and_counts_duplicates() {
    let t0 = Instant::now();
    let mut rx = RtpReceiver::new(ReceiverConfig::default());
    let order = [65533u16, 65535, 65534, 0, 0, 2, 1, 3];
    for (i, s) in order.iter().enumerate() {
        rx.handle_packet(t0 + MS(20 * i as u64), pkt(9, *s));
    }
    assert_eq!(delivered(&mut rx), vec![65533, 65534, 65535, 0, 1, 2, 3]);
    let st = rx.stats(9).unwrap();
    assert_eq!(st.duplicates, 1);
    assert_eq!(st.reordered, 2);
    assert_eq!(st.lost, 0);
    assert_eq!(st.received, 7);
    assert_eq!(st.delivered, 7);
}

#[test]
fn receiver_declares_loss_by_window_or_by_time_and_drops_late_packets() {
    let t0 = Instant::now();
    let mut rx = RtpReceiver::new(ReceiverConfig::default());
    rx.handle_packet(t0, pkt(1, 10));
    rx.handle_packet(t0 + MS(40), pkt(1, 12)); // 11 missing
    assert_eq!(delivered(&mut rx), vec![10]);
    assert_eq!(rx.poll_timeout(), Some(t0 + MS(100)));
    rx.handle_timeout(t0 + MS(99));
    assert_eq!(delivered(&mut rx), Vec::<u16>::new());
    rx.handle_timeout(t0 + MS(100));
    assert_eq!(delivered(&mut rx), vec![12]);
    rx.handle_packet(t0 + MS(120), pkt(1, 11)); // too late now
    // Window overflow: 14 missing; 13 arrives late but within the window; the fourth packet
    // held behind the gap gives 14 up.
    for s in [15, 16, 17, 13] {
        rx.handle_packet(t0 + MS(140), pkt(1, s));
    }
    assert_eq!(delivered(&mut rx), vec![13]);
    rx.handle_packet(t0 + MS(140), pkt(1, 18));
    assert_eq!(delivered(&mut rx), vec![15, 16, 17, 18]);
    let st = rx.stats(1).unwrap();
    assert_eq!((st.lost, st.late), (2, 1));
    // Streams are separate.
    rx.handle_packet(t0 + MS(150), pkt(2, 500));
    assert_eq!(delivered(&mut rx), vec![500]);
    assert_eq!(rx.ssrcs(), vec![1, 2]);
}

#[test]
fn receiver_resyncs_on_a_sender_restart() {
    let t0 = Instant::now();
    let mut rx = RtpReceiver::new(ReceiverConfig::default());
    rx.handle_packet(t0, pkt(1, 100));
    rx.handle_packet(t0 + MS(20), pkt(1, 30_000));
    rx.handle_packet(t0 + MS(40), pkt(1, 30_001));
    assert_eq!(delivered(&mut rx), vec![100, 30_000, 30_001]);
    let st = rx.stats(1).unwrap();
    assert_eq!((st.resyncs, st.lost), (1, 0));
}

#[test]
fn packet_round_trip_and_typed_errors() {
    let p = packet::build(
        101,
        true,
        7,
        0xDEAD_BEEF,
        0x1234,
        Bytes::from_static(&[1, 2, 3, 4]),
    );
    let bytes = packet::serialize(&p).unwrap();
    assert_eq!(bytes.len(), 16);
    assert_eq!(&bytes[..2], &[0x80, 0x80 | 101]);
    let q = packet::parse(&bytes).unwrap();
    assert_eq!(q.header, p.header);
    assert_eq!(q.payload, p.payload);

    assert_eq!(
        packet::parse(&bytes[..11]),
        Err(PacketError::TooShort { len: 11, need: 12 })
    );
    let mut v1 = bytes.to_vec();
    v1[0] = 0x40;
    assert_eq!(packet::parse(&v1), Err(PacketError::Version { version: 1 }));
    let mut csrc = bytes.to_vec();
    csrc[0] = 0x82; // two CSRCs announced, one word present
    assert_eq!(
        packet::parse(&csrc),
        Err(PacketError::TooShort { len: 16, need: 20 })
    );
    let mut pad = bytes.to_vec();
    pad[0] |= 0x20;
    pad[15] = 9; // padding longer than the payload
    assert_eq!(
        packet::parse(&pad),
        Err(PacketError::Padding {
            padding: 9,
            available: 4
        })
    );
    pad[15] = 2;
    assert_eq!(&packet::parse(&pad).unwrap().payload[..], &[1, 2]);
    // One-byte extension block whose element claims 16 bytes in a 4-byte block.
    let mut ext = vec![
        0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1, 0x1F, 0, 0, 0,
    ];
    assert!(matches!(
        packet::parse(&ext),
        Err(PacketError::ExtensionElement { offset: 16 })
    ));
    ext[16] = 0x12; // id 1, 3 bytes: fits
    assert!(packet::parse(&ext).is_ok());
    // Extension length past the end.
    ext[15] = 9;
    assert!(matches!(
        packet::parse(&ext),
        Err(PacketError::TooShort { .. })
    ));
    assert!(packet::seq_after(0, 65535));
    assert!(!packet::seq_after(65535, 0));
    assert!(packet::ts_after(5, u32::MAX - 5));
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = packet::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_v2_with_extensions(
        first in 0x80u8..0xC0,
        profile in prop::sample::select(vec![0xBEDEu16, 0x1000, 0x1003, 0x0001]),
        rest in prop::collection::vec(any::<u8>(), 0..60),
    ) {
        let mut bytes = vec![first | 0x10, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        bytes.extend(profile.to_be_bytes());
        bytes.extend(rest);
        if let Ok(p) = packet::parse(&bytes) {
            // Whatever parses serialises again.
            let _ = packet::serialize(&p);
        }
    }

    #[test]
    fn receiver_delivers_each_packet_once_in_order(
        swaps in prop::collection::vec(0usize..50, 0..30),
        dups in prop::collection::vec(0usize..50, 0..10),
        start in any::<u16>(),
    ) {
        let mut seqs: Vec<u16> = (0..50u16).map(|i| start.wrapping_add(i)).collect();
        // The first packet received anchors the stream (anything older is late), so it stays
        // first; swaps of neighbours that do not overlap keep every packet within the window.
        let mut swaps = swaps;
        swaps.sort_unstable();
        swaps.dedup();
        let mut last = None;
        for s in swaps {
            if s >= 1 && s + 1 < seqs.len() && last.is_none_or(|l| s > l + 1) {
                seqs.swap(s, s + 1);
                last = Some(s);
            }
        }
        for d in dups {
            let v = seqs[d];
            seqs.insert(d + 1, v);
        }
        let t0 = Instant::now();
        let mut rx = RtpReceiver::new(ReceiverConfig::default());
        for (i, s) in seqs.iter().enumerate() {
            rx.handle_packet(t0 + MS(i as u64), pkt(3, *s));
        }
        rx.handle_timeout(t0 + Duration::from_secs(5));
        let got = delivered(&mut rx);
        let want: Vec<u16> = (0..50u16).map(|i| start.wrapping_add(i)).collect();
        prop_assert_eq!(got, want);
    }
}
