//! The SDP offers of real user agents (fixtures/sdp): each negotiates the codec of our
//! preference order and telephone-event at the offer's own payload type and clock rate, or
//! is refused with a precise reason.

use std::net::SocketAddr;
use std::path::Path;

use hotdesk_core::sip::sdp::{self, Codec, Direction, Local, SdpError};

fn offer(name: &str) -> sdp::Offer {
    let text = std::fs::read_to_string(Path::new("fixtures/sdp").join(name)).expect("fixture");
    sdp::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Case {
    file: &'static str,
    remote: &'static str,
    codec: Codec,
    event: Option<(u8, u32)>,
    hold: bool,
}

const PREFS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

#[test]
fn every_phone_offer_negotiates() {
    let cases = [
        Case {
            file: "sipp_default_uac.sdp",
            remote: "127.0.0.1:6000",
            codec: Codec::Pcmu,
            event: None,
            hold: false,
        },
        Case {
            file: "baresip.sdp",
            remote: "127.0.0.1:17000",
            codec: Codec::Pcmu,
            event: Some((101, 8000)),
            hold: false,
        },
        Case {
            file: "linphone.sdp",
            remote: "192.0.2.41:7078",
            codec: Codec::Pcmu,
            event: Some((100, 8000)),
            hold: false,
        },
        Case {
            file: "asterisk_pjsip.sdp",
            remote: "198.51.100.20:10062",
            codec: Codec::Pcmu,
            event: Some((101, 8000)),
            hold: false,
        },
        Case {
            file: "cisco_cp8845.sdp",
            remote: "192.0.2.15:27264",
            codec: Codec::Pcmu,
            event: Some((101, 8000)),
            hold: false,
        },
        Case {
            file: "polycom_vvx.sdp",
            remote: "192.0.2.52:2226",
            codec: Codec::Pcmu,
            event: Some((127, 8000)),
            hold: false,
        },
        Case {
            file: "yealink_t46_lf_only.sdp",
            remote: "192.0.2.63:11796",
            codec: Codec::Pcmu,
            event: Some((101, 8000)),
            hold: false,
        },
        Case {
            file: "grandstream_hold_no_s_t.sdp",
            remote: "0.0.0.0:50004",
            codec: Codec::Pcmu,
            event: Some((101, 8000)),
            hold: true,
        },
        Case {
            file: "hold_sendonly.sdp",
            remote: "192.0.2.63:11796",
            codec: Codec::Pcmu,
            event: Some((101, 8000)),
            hold: true,
        },
    ];
    for c in cases {
        let o = offer(c.file);
        let n = sdp::negotiate(&o.audio, &PREFS).unwrap_or_else(|e| panic!("{}: {e}", c.file));
        assert_eq!(
            n.remote,
            c.remote.parse::<SocketAddr>().unwrap(),
            "{}",
            c.file
        );
        assert_eq!(n.codec, c.codec, "{}", c.file);
        assert_eq!(
            n.telephone_event.map(|e| (e.payload_type, e.clock_rate)),
            c.event,
            "{}",
            c.file
        );
        assert_eq!(o.audio.is_hold(), c.hold, "{}", c.file);
    }
}

#[test]
fn our_preference_order_wins_over_theirs() {
    // Yealink lists PCMA first; a PCMU-first server still answers PCMU, a PCMA-first one PCMA.
    let o = offer("yealink_t46_lf_only.sdp");
    assert_eq!(
        sdp::negotiate(&o.audio, &[Codec::Pcmu, Codec::Pcma])
            .unwrap()
            .codec,
        Codec::Pcmu
    );
    assert_eq!(
        sdp::negotiate(&o.audio, &[Codec::Pcma]).unwrap().codec,
        Codec::Pcma
    );
    // sipp's default offer has PCMU only: an A-law-only server has nothing in common.
    let o = offer("sipp_default_uac.sdp");
    assert!(matches!(
        sdp::negotiate(&o.audio, &[Codec::Pcma]),
        Err(SdpError::NoCommonCodec { .. })
    ));
}

#[test]
fn answers_keep_every_m_line_and_refuse_video() {
    let o = offer("cisco_cp8845.sdp");
    let n = sdp::negotiate(&o.audio, &PREFS).unwrap();
    let local = Local {
        rtp: "203.0.113.7:20000".parse().unwrap(),
        session_id: 9,
        session_version: 1,
    };
    let text = sdp::answer(&o, &n, &local);
    let m_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m_lines.len(), 2, "{text}");
    assert!(
        m_lines[0].starts_with("m=audio 20000 RTP/AVP 0 101"),
        "{text}"
    );
    assert!(m_lines[1].starts_with("m=video 0 "), "{text}");
    assert!(text.contains("c=IN IP4 203.0.113.7"), "{text}");
    assert!(text.contains("a=rtpmap:101 telephone-event/8000"), "{text}");
}

#[test]
fn hold_is_answered_recvonly_and_inactive_stays_inactive() {
    let o = offer("hold_sendonly.sdp");
    assert_eq!(
        sdp::negotiate(&o.audio, &PREFS).unwrap().direction,
        Direction::RecvOnly
    );
    let inactive = std::fs::read_to_string("fixtures/sdp/hold_sendonly.sdp")
        .unwrap()
        .replace("a=sendonly", "a=inactive");
    let o = sdp::parse(&inactive).unwrap();
    assert_eq!(
        sdp::negotiate(&o.audio, &PREFS).unwrap().direction,
        Direction::Inactive
    );
}

#[test]
fn unusable_offers_are_refused_with_a_reason() {
    let e = sdp::negotiate(&offer("g729_only.sdp").audio, &PREFS).unwrap_err();
    assert!(matches!(e, SdpError::NoCommonCodec { .. }), "{e}");
    assert!(e.to_string().contains("18=G729/8000"), "{e}");
    let e = sdp::negotiate(&offer("srtp_sdes.sdp").audio, &PREFS).unwrap_err();
    assert!(e.to_string().contains("RTP/SAVP"), "{e}");
}

#[test]
fn outbound_offer_is_understood_by_our_own_parser() {
    let local = Local {
        rtp: "127.0.0.1:20010".parse().unwrap(),
        session_id: 1,
        session_version: 1,
    };
    let text = sdp::offer(&[Codec::Pcma, Codec::Pcmu], 101, 20, &local);
    let o = sdp::parse(&text).unwrap();
    let n = sdp::negotiate(&o.audio, &[Codec::Pcmu, Codec::Pcma]).unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
    assert_eq!(n.remote, local.rtp);
    assert_eq!(n.telephone_event.map(|e| e.payload_type), Some(101));
}

mod never_panics {
    use proptest::prelude::*;

    fn seeds() -> Vec<String> {
        std::fs::read_dir("fixtures/sdp")
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sdp"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_text(text in ".{0,400}") {
            let _ = hotdesk_core::sip::sdp::parse(&text);
        }

        #[test]
        fn mutated_offers(pick in 0usize..64, cut in 0usize..2000, insert in "[ -~\\r\\n]{0,12}") {
            let seeds = seeds();
            let mut text = seeds[pick % seeds.len()].clone();
            let at = (cut % (text.len() + 1)).min(text.len());
            let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.insert_str(at, &insert);
            if let Ok(offer) = hotdesk_core::sip::sdp::parse(&text) {
                let _ = hotdesk_core::sip::sdp::negotiate(&offer.audio, &[hotdesk_core::sip::sdp::Codec::Pcmu]);
            }
        }
    }
}
