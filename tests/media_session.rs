//! One call's media on virtual time: prompt pacing on the absolute 20 ms schedule, symmetric
//! RTP, and keys arriving as RFC 4733 events, as in-band tones, as SIP INFO, and on two paths
//! at once, each reported exactly once with its source.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotdesk::config::DtmfMode;
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::dsp::tone::{Burst, Signal};
use hotdesk_core::media::DigitSource;
use hotdesk_core::media::session::{MediaEvent, MediaSession, MediaSettings};
use hotdesk_core::prompts::loader::PromptCache;
use hotdesk_core::rtp::packet;
use hotdesk_core::rtp::source::MediaScope;
use hotdesk_core::rtp::telephone_event::TelephoneEvent;
use hotdesk_core::sim::{self, Drive, Input};
use hotdesk_core::sip::sdp::{self, Codec};
use rand::SeedableRng;

static CACHE: LazyLock<Arc<PromptCache>> = LazyLock::new(|| {
    Arc::new(PromptCache::load_dir(std::path::Path::new("prompts")).expect("prompt set"))
});

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn session(t0: Instant, mode: DtmfMode, prefs: &[Codec]) -> MediaSession {
    let offer = sdp::parse(OFFER).unwrap();
    let negotiated = sdp::negotiate(&offer.audio, prefs).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let settings = MediaSettings {
        dtmf: mode,
        rtp_timeout: None,
    };
    let mut m = MediaSession::new(
        &negotiated,
        &settings,
        MediaScope::anywhere(),
        "en",
        CACHE.clone(),
        t0,
        &mut rng,
    )
    .unwrap();
    m.start_sending(t0);
    m
}

/// The caller's side: 20 ms audio frames of `audio` (8 kHz) plus RFC 4733 events for `keys`
/// `(digit, start_ms, len_ms)`, as datagrams with their send times.
fn caller(audio: &[i16], law: Law, pt: u8, keys: &[(char, u64, u64)]) -> Vec<(Duration, Bytes)> {
    let mut out = Vec::new();
    for (n, frame) in audio.chunks(160).enumerate() {
        let mut payload = Vec::new();
        law.encode_into(frame, &mut payload);
        let pkt = packet::build(
            pt,
            n == 0,
            1000 + n as u16,
            5000 + 160 * n as u32,
            0xCA11,
            Bytes::from(payload),
        );
        out.push((
            Duration::from_millis(20 * n as u64),
            packet::serialize(&pkt).unwrap(),
        ));
    }
    let mut seq = 30_000u16;
    for &(digit, start_ms, len_ms) in keys {
        let ts = 5000 + 8 * start_ms as u32;
        let event = hotdesk_core::rtp::telephone_event::digit_event(digit).unwrap();
        let mut t = 0;
        while t <= len_ms {
            let end = t + 50 > len_ms;
            let repeats = if end { 3 } else { 1 };
            for _ in 0..repeats {
                let ev = TelephoneEvent {
                    event,
                    end,
                    volume: 10,
                    duration: (8 * t.max(10)) as u16,
                };
                let pkt = packet::build(
                    101,
                    t == 0,
                    seq,
                    ts,
                    0xCA12,
                    Bytes::copy_from_slice(&ev.encode()),
                );
                seq = seq.wrapping_add(1);
                out.push((
                    Duration::from_millis(start_ms + t),
                    packet::serialize(&pkt).unwrap(),
                ));
            }
            t += 50;
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out
}

fn keyed(keys: &[(char, u64, u64)], total_ms: u64) -> Vec<i16> {
    let mut s = Signal::new(8000, 3);
    for &(digit, start_ms, len_ms) in keys {
        let gap = s.ms(start_ms as f64) - s.len();
        let on = s.ms(len_ms as f64);
        s.silence(gap).burst(&Burst::new(digit, on, -10.0));
    }
    let tail = s.ms(total_ms as f64) - s.len();
    s.silence(tail);
    s.to_i16()
}

/// Digits heard, datagrams sent (with time and destination), prompts finished.
type Outcome = (
    Vec<(char, DigitSource)>,
    Vec<(Instant, SocketAddr, Bytes)>,
    usize,
);

/// Runs the session until `end` on the shared virtual-time harness, delivering `incoming`
/// (RTP) and `info` (keys by SIP INFO) at their times; returns digits and what was sent.
fn run(
    m: &mut MediaSession,
    t0: Instant,
    incoming: &[(Duration, Bytes)],
    info: &[(Duration, char)],
    end: Duration,
) -> Outcome {
    let from: SocketAddr = "198.51.100.5:41000".parse().unwrap();
    let mut script = sim::rtp_script(from, incoming.iter().cloned());
    script.extend(info.iter().map(|(t, k)| (*t, Input::Info(*k))));
    let mut drive = Drive::new(m, t0, script, end);
    let (mut digits, mut sent, mut finished) = (Vec::new(), Vec::new(), 0);
    loop {
        let now = drive.now();
        while let Some((to, bytes, _)) = drive.machine.poll_transmit() {
            sent.push((now, to, bytes));
        }
        while let Some(e) = drive.machine.poll_event() {
            match e {
                MediaEvent::Digit(d) => digits.push((d.digit, d.source)),
                MediaEvent::PromptFinished => finished += 1,
            }
        }
        if !drive.step() {
            break;
        }
    }
    (digits, sent, finished)
}

#[test]
fn prompt_frames_are_paced_at_50_per_second_and_finish() {
    let t0 = Instant::now();
    let mut m = session(t0, DtmfMode::Auto, &[Codec::Pcma, Codec::Pcmu]);
    m.play(&["dtmf_test".to_string()]).unwrap();
    let (_, sent, finished) = run(&mut m, t0, &[], &[], Duration::from_secs(10));
    // Frame n is due at exactly t0 + 20n ms, for n = 0..=500.
    assert_eq!(sent.len(), 501);
    for (n, (at, to, bytes)) in sent.iter().enumerate() {
        assert_eq!(*at, t0 + Duration::from_millis(20 * n as u64));
        assert_eq!(
            *to,
            "192.0.2.9:40000".parse().unwrap(),
            "before any RTP: the SDP address"
        );
        let pkt = packet::parse(bytes).unwrap();
        assert_eq!(pkt.header.payload_type, 8, "PCMA was our first preference");
        assert_eq!(pkt.payload.len(), 160);
        if n > 0 {
            let prev = packet::parse(&sent[n - 1].2).unwrap();
            assert_eq!(
                pkt.header.sequence_number,
                prev.header.sequence_number.wrapping_add(1)
            );
            assert_eq!(
                pkt.header.timestamp,
                prev.header.timestamp.wrapping_add(160)
            );
        }
    }
    assert_eq!(finished, 1, "one PromptFinished for one sequence");
    assert_eq!(m.stats().sent, 501);
}

#[test]
fn rfc4733_keys_arrive_once_even_with_the_tone_in_the_audio() {
    let t0 = Instant::now();
    let keys = [('1', 1000, 120), ('5', 1400, 120), ('#', 1800, 120)];
    // Both paths: events and the same tones in PCMU audio (dtmf-conformance D1).
    let mut m = session(t0, DtmfMode::Auto, &[Codec::Pcmu]);
    let both = caller(&keyed(&keys, 3000), Law::Ulaw, 0, &keys);
    let (digits, sent, _) = run(&mut m, t0, &both, &[], Duration::from_secs(4));
    assert_eq!(
        digits,
        vec![
            ('1', DigitSource::Rfc4733),
            ('5', DigitSource::Rfc4733),
            ('#', DigitSource::Rfc4733)
        ]
    );
    // Symmetric RTP: once the caller's audio arrived, ours goes back to its source.
    assert_eq!(
        sent.last().unwrap().1,
        "198.51.100.5:41000".parse().unwrap()
    );
}

#[test]
fn inband_keys_alone_are_heard_in_pcmu_and_pcma() {
    let keys = [('*', 500, 100), ('8', 800, 100), ('0', 1100, 60)];
    for (codec, law, pt) in [(Codec::Pcmu, Law::Ulaw, 0), (Codec::Pcma, Law::Alaw, 8)] {
        let t0 = Instant::now();
        let mut m = session(t0, DtmfMode::Auto, &[codec]);
        let audio = caller(&keyed(&keys, 2000), law, pt, &[]);
        let (digits, _, _) = run(&mut m, t0, &audio, &[], Duration::from_secs(3));
        assert_eq!(
            digits,
            vec![
                ('*', DigitSource::Inband),
                ('8', DigitSource::Inband),
                ('0', DigitSource::Inband)
            ],
            "{codec:?}"
        );
    }
}

#[test]
fn lost_audio_packets_do_not_shift_or_split_keys() {
    let t0 = Instant::now();
    let keys = [('4', 600, 200), ('4', 1000, 200)];
    let mut m = session(t0, DtmfMode::Inband, &[Codec::Pcmu]);
    let mut audio = caller(&keyed(&keys, 2000), Law::Ulaw, 0, &[]);
    // Lose every 7th packet (a 20 ms hole inside each key at some point).
    audio = audio
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 3)
        .map(|(_, p)| p)
        .collect();
    let (digits, _, _) = run(&mut m, t0, &audio, &[], Duration::from_secs(3));
    assert_eq!(
        digits,
        vec![('4', DigitSource::Inband), ('4', DigitSource::Inband)]
    );
}

#[test]
fn info_keys_and_mode_filters() {
    let t0 = Instant::now();
    let mut m = session(t0, DtmfMode::Auto, &[Codec::Pcmu]);
    let info = [
        (Duration::from_millis(500), '7'),
        (Duration::from_millis(900), '3'),
    ];
    let (digits, _, _) = run(&mut m, t0, &[], &info, Duration::from_secs(2));
    assert_eq!(
        digits,
        vec![('7', DigitSource::Info), ('3', DigitSource::Info)]
    );
    // dtmf = "rfc4733": in-band tones are not listened to.
    let keys = [('9', 500, 100)];
    let mut m = session(t0, DtmfMode::Rfc4733, &[Codec::Pcmu]);
    let audio = caller(&keyed(&keys, 1500), Law::Ulaw, 0, &[]);
    let (digits, _, _) = run(&mut m, t0, &audio, &[], Duration::from_secs(2));
    assert!(digits.is_empty(), "{digits:?}");
}

#[test]
fn barge_in_stops_the_prompt_at_the_next_frame() {
    let t0 = Instant::now();
    let mut m = session(t0, DtmfMode::Auto, &[Codec::Pcmu]);
    m.play(&["enter_account".to_string()]).unwrap();
    let (_, sent, _) = run(&mut m, t0, &[], &[], Duration::from_millis(200));
    let speech = |b: &Bytes| {
        packet::parse(b)
            .unwrap()
            .payload
            .iter()
            .any(|&c| c != 0xFF && c != 0x7F)
    };
    assert!(
        sent.iter().any(|(_, _, b)| speech(b)),
        "the prompt is playing"
    );
    m.stop();
    let later = t0 + Duration::from_millis(220);
    m.handle_timeout(later);
    let (_, _, frame) = (later, (), m.poll_transmit().unwrap().1);
    assert!(!speech(&frame), "the frame after stop() is silence");
    assert_eq!(
        m.poll_event(),
        None,
        "a stopped prompt does not report PromptFinished"
    );
}

#[test]
fn garbage_and_foreign_payload_types_are_counted_not_fatal() {
    let t0 = Instant::now();
    let mut m = session(t0, DtmfMode::Auto, &[Codec::Pcmu]);
    let from: SocketAddr = "198.51.100.5:41000".parse().unwrap();
    m.handle_datagram(t0, from, b"not rtp");
    let foreign = packet::build(18, false, 1, 1, 1, Bytes::from_static(&[0; 20]));
    m.handle_datagram(t0, from, &packet::serialize(&foreign).unwrap());
    assert_eq!(m.stats().rejected, 2);
    assert_eq!(
        m.remote(),
        Some("192.0.2.9:40000".parse().unwrap()),
        "rejected packets do not move RTP"
    );
}
