//! SDP offers: parsing never panics, and whatever we negotiate from an accepted offer gives an
//! answer that our own parser accepts with the codec we chose.
#![no_main]

use hotdesk_core::sip::sdp::{self, Codec, Local};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = sdp::parse(text) else { return };
    for preferences in [&[Codec::Pcmu, Codec::Pcma][..], &[Codec::Pcma][..]] {
        let Ok(negotiated) = sdp::negotiate(&offer.audio, preferences) else {
            continue;
        };
        let local = Local {
            rtp: "127.0.0.1:20000".parse().unwrap(),
            session_id: 1,
            session_version: 1,
        };
        let answer = sdp::answer(&offer, &negotiated, &local);
        let back = sdp::parse(&answer)
            .unwrap_or_else(|e| panic!("our answer does not parse ({e}):\n{answer}"));
        let again = sdp::negotiate(&back.audio, &[negotiated.codec]);
        assert!(
            again.is_ok(),
            "our answer does not carry {:?}:\n{answer}",
            negotiated.codec
        );
    }
});
