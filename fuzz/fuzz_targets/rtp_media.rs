//! RTP and RFC 4733 payloads through one call's media session (packet parsing, symmetric RTP,
//! loss concealment, G.711 into the detector, the telephone-event receiver and the merger):
//! nothing panics, time moves on, and each key reported is a DTMF key.
//!
//! Input: datagrams separated by the 4-byte marker `RTP!`; a datagram's length picks how far
//! the clock moves before it arrives (0-39 ms), so both bursts and gaps happen.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use hotdesk::config::DtmfMode;
use hotdesk_core::media::session::{MediaEvent, MediaSession, MediaSettings};
use hotdesk_core::rtp::source::MediaScope;
use hotdesk_core::prompts::{PromptCache, ids};
use hotdesk_core::sip::sdp::{self, Codec};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

static CACHE: LazyLock<Arc<PromptCache>> = LazyLock::new(|| {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts");
    Arc::new(PromptCache::load_dir(std::path::Path::new(dir)).expect("bundled prompts"))
});

fn split<'a>(data: &'a [u8], marker: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest?;
        match data.windows(marker.len()).position(|w| w == marker) {
            Some(at) => {
                rest = Some(&data[at + marker.len()..]);
                Some(&data[..at])
            }
            None => {
                rest = None;
                Some(data)
            }
        }
    })
}

fn run(session: &mut MediaSession, now: Instant) {
    while let Some(due) = session.poll_timeout().filter(|&t| t <= now) {
        session.handle_timeout(due);
    }
    while session.poll_transmit().is_some() {}
    while let Some(event) = session.poll_event() {
        if let MediaEvent::Digit(d) = event {
            assert!("0123456789*#ABCD".contains(d.digit), "not a key: {d:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let offer = sdp::parse(OFFER).unwrap();
    let codec = if data.first().is_some_and(|b| b & 1 == 1) {
        Codec::Pcma
    } else {
        Codec::Pcmu
    };
    let Ok(negotiated) = sdp::negotiate(&offer.audio, &[codec, Codec::Pcmu]) else {
        return;
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut now = Instant::now();
    let settings = MediaSettings {
        dtmf: DtmfMode::Auto,
        rtp_timeout: Some(Duration::from_secs(10)),
    };
    let Ok(mut session) = MediaSession::new(
        &negotiated,
        &settings,
        MediaScope::anywhere(),
        "en",
        CACHE.clone(),
        now,
        &mut rng,
    ) else {
        return;
    };
    // A prompt plays, as on a real call, so barge-in and the paced sender run too.
    session.start_sending(now);
    session
        .play(&[ids::ENTER_ACCOUNT.to_owned()])
        .expect("a bundled prompt");
    let source = negotiated.remote;
    for datagram in split(data, b"RTP!") {
        now += Duration::from_millis(datagram.len() as u64 % 40);
        run(&mut session, now);
        session.handle_datagram(now, source, datagram);
    }
    // Let every key in progress end (RFC 4733 end timeouts, the detector's release).
    run(&mut session, now + Duration::from_secs(2));
});
