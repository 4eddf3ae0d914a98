//! The core's RTP codec (`rtp::packet`) against the `rtp` crate's: the same bytes either way,
//! for any header the crate can express. The core writes its own (the crate pulls tokio into
//! the sans-IO core through `webrtc-util`); this holds the two to one wire format.

use bytes::Bytes;
use hotdesk_core::rtp::packet::{self, Extension, Header, Packet};
use proptest::prelude::*;
use webrtc_util::marshal::{Marshal, Unmarshal};

fn crate_packet(p: &Packet) -> rtp::packet::Packet {
    let mut header = rtp::header::Header {
        version: 2,
        marker: p.header.marker,
        payload_type: p.header.payload_type,
        sequence_number: p.header.sequence_number,
        timestamp: p.header.timestamp,
        ssrc: p.header.ssrc,
        csrc: p.header.csrc.clone(),
        ..Default::default()
    };
    if let Some(e) = &p.header.extension {
        header.extension = true;
        header.extension_profile = e.profile;
        // An opaque (RFC 3550 §5.3.1) profile: the crate keeps the block as one extension.
        header.extensions = vec![rtp::header::Extension {
            id: 0,
            payload: e.data.clone(),
        }];
    }
    rtp::packet::Packet {
        header,
        payload: p.payload.clone(),
    }
}

fn packets() -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u32>(), 0..4),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..4).prop_map(|w| {
            // Whole 32-bit words, under a profile the crate treats as opaque.
            let mut data = Vec::new();
            for b in w {
                data.extend([b, b ^ 0x5a, b.wrapping_add(1), 7]);
            }
            Extension {
                profile: 0x1234,
                data: Bytes::from(data),
            }
        })),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(marker, pt, seq, ts, ssrc, csrc, extension, payload)| Packet {
                header: Header {
                    marker,
                    payload_type: pt,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc,
                    csrc,
                    extension,
                },
                payload: Bytes::from(payload),
            },
        )
}

proptest! {
    #[test]
    fn both_codecs_write_the_same_bytes(p in packets()) {
        let ours = packet::serialize(&p).unwrap();
        let theirs = crate_packet(&p).marshal().unwrap();
        prop_assert_eq!(&ours[..], &theirs[..]);
    }

    #[test]
    fn each_reads_what_the_other_wrote(p in packets()) {
        let theirs = crate_packet(&p).marshal().unwrap();
        prop_assert_eq!(packet::parse(&theirs).unwrap(), p.clone());
        let ours = packet::serialize(&p).unwrap();
        let mut buf = &ours[..];
        let read = rtp::packet::Packet::unmarshal(&mut buf).unwrap();
        prop_assert_eq!(read, crate_packet(&p));
    }
}

#[test]
fn padding_is_removed_as_the_crate_removes_it() {
    // V=2, P=1, PT 0, four payload octets then three of padding (count 3).
    let datagram = [
        0xa0, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0, 0, 0, 9, 1, 2, 3, 4, 0, 0, 3,
    ];
    let ours = packet::parse(&datagram).unwrap();
    let mut buf = &datagram[..];
    let theirs = rtp::packet::Packet::unmarshal(&mut buf).unwrap();
    assert_eq!(&ours.payload[..], &[1, 2, 3, 4]);
    assert_eq!(ours.payload, theirs.payload);
}
