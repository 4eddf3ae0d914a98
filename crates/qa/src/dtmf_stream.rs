//! One outgoing RTP stream carrying a digit string, for the pcaps the sipp tests replay
//! (`play_pcap_audio`): G.711 audio every 20 ms, and the digits as RFC 4733 telephone-events,
//! as in-band tones in the audio, or both.
//!
//! The stream is laid out on a 20 ms frame grid counted from its start: frame `n` is captured at
//! `n × 20 ms` and its audio carries RTP timestamp `first_timestamp + 160 n`. One SSRC and one
//! sequence space cover audio and events, numbered in capture order. Digit `i` keys down at
//! `lead + i × (tone + gap)`; the stream lasts `lead + Σ tone + Σ gap + tail`, so every duration
//! must be a whole number of frames (see [`DtmfStreamError::NotFrameAligned`]).
//!
//! - [`DtmfMode::Rfc4733`]: the events come from [`TelephoneEventSender`] with an update every
//!   frame and the three end packets one frame apart (RFC 4733 §2.5.1.2, §2.5.1.4), so an event
//!   packet lands on every frame from key-down to 40 ms after key-up (so gaps and the tail must
//!   be at least [`END_PACKETS_SPAN`]). Those frames carry no audio, as gateways that convert
//!   tones to events (Asterisk) send it: exactly one packet per frame, the audio G.711 silence.
//! - [`DtmfMode::Inband`]: the tones synthesised by [`hotdesk_core::dsp::tone`] at the given level per
//!   tone, with start phases from the seed, G.711-encoded; no events.
//! - [`DtmfMode::Both`]: every frame carries audio with the tones, and the events ride alongside
//!   (a phone whose tones leak into the audio, `dtmf-conformance.md` §6 D1).
//!
//! Pure: the spec in, packets with capture times out; [`write_dtmf_pcap`] is the only I/O.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::pcap::{PcapWriteError, PcapWriter};
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::dsp::tone::{Burst, Signal};
use hotdesk_core::rtp::packet::{self, Packet, PacketError};
use hotdesk_core::rtp::telephone_event::{
    self, SenderConfig, TelephoneEventError, TelephoneEventSender,
};

/// Packet interval: sipp replays at the capture times, and 20 ms is the G.711 default
/// (RFC 3551 §4.5).
pub const PTIME: Duration = Duration::from_millis(20);
/// RTP clock of G.711 and of the telephone-events sent with it.
pub const CLOCK_RATE: u32 = 8000;
/// Samples (and RTP timestamp units) per frame.
pub const SAMPLES_PER_FRAME: usize = 160;
/// The RFC 4733 end packet is sent three times, in the frame where the tone ends and the two
/// after it, so an event holds three frames past its tone; the next digit or the end of the
/// stream must not come sooner, or a frame would carry two packets.
pub const END_PACKETS_SPAN: Duration = Duration::from_millis(60);
/// Loudest level per tone: two tones at -3 dBm0 just fit the 16-bit range without clipping.
pub const MAX_LEVEL_DBM0: f64 = -3.0;
/// Quietest level per tone: the RFC 4733 volume field stops at 63 (-63 dBm0, §2.3).
pub const MIN_LEVEL_DBM0: f64 = -63.0;

/// Why a stream cannot be built or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfStreamError {
    /// A character that is not a DTMF key.
    #[error("{digit:?} is not a DTMF key (0-9, *, #, A-D)")]
    Digit {
        /// The character.
        digit: char,
    },
    /// A duration that is not a whole number of 20 ms frames.
    #[error("{what} of {value:?} is not a whole number of 20 ms frames")]
    NotFrameAligned {
        /// Which duration (`lead`, `tone`, `gap`, `tail`).
        what: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A duration below what the mode needs.
    #[error("{what} of {value:?} is below the {min:?} this mode needs")]
    TooShort {
        /// Which duration.
        what: &'static str,
        /// Its value.
        value: Duration,
        /// The least allowed.
        min: Duration,
    },
    /// A telephone-event payload type that is not dynamic-capable, collides with the audio, or
    /// lies in 72-76 where a marked packet reads as RTCP (RFC 5761 §4).
    #[error("telephone-event payload type {payload_type} is not usable with audio type {audio}")]
    PayloadType {
        /// The event payload type asked for.
        payload_type: u8,
        /// The audio payload type.
        audio: u8,
    },
    /// A tone level outside [`MIN_LEVEL_DBM0`]..=[`MAX_LEVEL_DBM0`].
    #[error("tone level {dbm0} dBm0 is outside -63..=-3 dBm0")]
    Level {
        /// The level asked for.
        dbm0: f64,
    },
    /// The telephone-event sender refused the plan.
    #[error(transparent)]
    Event(TelephoneEventError),
    /// A packet could not be serialised.
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// The pcap could not be written.
    #[error(transparent)]
    Pcap(#[from] PcapWriteError),
    /// The output file could not be created.
    #[error("creating {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<TelephoneEventError> for DtmfStreamError {
    fn from(e: TelephoneEventError) -> Self {
        match e {
            TelephoneEventError::Digit { digit } => DtmfStreamError::Digit { digit },
            other => DtmfStreamError::Event(other),
        }
    }
}

/// Which paths carry the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfMode {
    /// RFC 4733 telephone-events; the audio is silence and left out where events are sent.
    Rfc4733,
    /// Tones in the audio only.
    Inband,
    /// Tones in the audio and telephone-events.
    Both,
}

impl DtmfMode {
    /// Whether telephone-events are sent.
    pub fn sends_events(self) -> bool {
        matches!(self, DtmfMode::Rfc4733 | DtmfMode::Both)
    }

    /// Whether the audio carries the tones.
    pub fn sends_tones(self) -> bool {
        matches!(self, DtmfMode::Inband | DtmfMode::Both)
    }
}

/// The static RTP payload type of a G.711 law (RFC 3551 §6: PCMU 0, PCMA 8).
pub fn audio_payload_type(law: Law) -> u8 {
    match law {
        Law::Ulaw => 0,
        Law::Alaw => 8,
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DtmfStreamSpec {
    /// The keys, `0`-`9`, `*`, `#`, `A`-`D` (`a`-`d` accepted).
    pub digits: String,
    /// Which paths carry them.
    pub mode: DtmfMode,
    /// Audio codec.
    pub law: Law,
    /// Telephone-event payload type (the `a=rtpmap:<pt> telephone-event/8000` of the SDP).
    pub event_payload_type: u8,
    /// Level of each of the two tones, dBm0; also sent as the events' volume.
    pub level_dbm0: f64,
    /// Silence before the first key.
    pub lead: Duration,
    /// Length of each key press.
    pub tone: Duration,
    /// Silence between key presses.
    pub gap: Duration,
    /// Silence after the last key.
    pub tail: Duration,
    /// Stream SSRC.
    pub ssrc: u32,
    /// Sequence number of the first packet.
    pub first_sequence: u16,
    /// RTP timestamp of the first frame.
    pub first_timestamp: u32,
    /// Seeds the tones' start phases: the same spec always gives the same bytes.
    pub seed: u64,
    /// Capture time of the first frame, since the Unix epoch.
    pub start: Duration,
    /// Source written in the capture (sipp replaces it).
    pub src: SocketAddrV4,
    /// Destination written in the capture (sipp replaces it).
    pub dst: SocketAddrV4,
}

impl Default for DtmfStreamSpec {
    /// No digits, RFC 4733 with PCMU, PT 101, -10 dBm0, 100 ms tones and gaps, 500 ms lead and
    /// tail: the defaults of the peers' generator, which the sipp scenarios' SDP matches.
    fn default() -> Self {
        DtmfStreamSpec {
            digits: String::new(),
            mode: DtmfMode::Rfc4733,
            law: Law::Ulaw,
            event_payload_type: 101,
            level_dbm0: -10.0,
            lead: Duration::from_millis(500),
            tone: Duration::from_millis(100),
            gap: Duration::from_millis(100),
            tail: Duration::from_millis(500),
            ssrc: 0x484F_5444,
            first_sequence: 1,
            first_timestamp: 0,
            seed: 0,
            // A plausible date rather than the epoch: some tools take a zero time as missing.
            start: Duration::from_secs(1_700_000_000),
            src: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000),
            dst: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50000),
        }
    }
}

/// One packet of the stream.
#[derive(Debug, Clone)]
pub struct TimedPacket {
    /// Capture time relative to the first frame (a multiple of [`PTIME`]).
    pub time: Duration,
    /// The packet.
    pub packet: Packet,
}

/// A built stream: its packets in capture order and how it is framed in a capture.
#[derive(Debug, Clone)]
pub struct DtmfStream {
    /// The packets, in capture (and sequence) order.
    pub packets: Vec<TimedPacket>,
    /// Number of 20 ms frames the stream spans.
    pub frames: u64,
    /// Capture time of the first frame, since the Unix epoch.
    pub start: Duration,
    /// Source address of every packet.
    pub src: SocketAddrV4,
    /// Destination address of every packet.
    pub dst: SocketAddrV4,
}

impl DtmfStream {
    /// How long the stream lasts: frames × 20 ms.
    pub fn duration(&self) -> Duration {
        PTIME * self.frames as u32
    }

    /// Writes the stream as a classic Ethernet/IPv4/UDP pcap and hands back the writer.
    pub fn write_pcap<W: Write>(&self, out: W) -> Result<W, DtmfStreamError> {
        let mut w = PcapWriter::new(out)?;
        for p in &self.packets {
            let datagram = packet::serialize(&p.packet)?;
            w.write_udp(self.start + p.time, self.src, self.dst, &datagram)?;
        }
        Ok(w.finish()?)
    }

    /// The pcap in memory.
    pub fn to_pcap(&self) -> Result<Vec<u8>, DtmfStreamError> {
        self.write_pcap(Vec::new())
    }
}

/// Checks that `value` is a whole number of frames and returns how many.
fn frames_of(what: &'static str, value: Duration) -> Result<u64, DtmfStreamError> {
    let ptime = PTIME.as_nanos();
    if !value.as_nanos().is_multiple_of(ptime) {
        return Err(DtmfStreamError::NotFrameAligned { what, value });
    }
    Ok((value.as_nanos() / ptime) as u64)
}

fn at_least(what: &'static str, value: Duration, min: Duration) -> Result<(), DtmfStreamError> {
    if value < min {
        return Err(DtmfStreamError::TooShort { what, value, min });
    }
    Ok(())
}

/// Builds the stream `spec` describes.
pub fn build(spec: &DtmfStreamSpec) -> Result<DtmfStream, DtmfStreamError> {
    let codes = spec
        .digits
        .chars()
        .map(telephone_event::digit_event)
        .collect::<Result<Vec<u8>, _>>()?;
    let lead = frames_of("lead", spec.lead)?;
    let tone = frames_of("tone", spec.tone)?;
    let gap = frames_of("gap", spec.gap)?;
    let tail = frames_of("tail", spec.tail)?;
    at_least("tone", spec.tone, PTIME)?;
    let audio_pt = audio_payload_type(spec.law);
    if spec.mode.sends_events() {
        // The end packets of a digit must be out before the next digit starts (the sender would
        // otherwise push it later, off the timeline the tones follow) and before the stream ends.
        if codes.len() > 1 {
            at_least("gap", spec.gap, END_PACKETS_SPAN)?;
        }
        if !codes.is_empty() {
            at_least("tail", spec.tail, END_PACKETS_SPAN)?;
        }
        let pt = spec.event_payload_type;
        if pt > 127 || pt == audio_pt || (72..=76).contains(&pt) {
            return Err(DtmfStreamError::PayloadType {
                payload_type: pt,
                audio: audio_pt,
            });
        }
    }
    if !(MIN_LEVEL_DBM0..=MAX_LEVEL_DBM0).contains(&spec.level_dbm0) {
        return Err(DtmfStreamError::Level {
            dbm0: spec.level_dbm0,
        });
    }

    let n = codes.len() as u64;
    let frames = lead + n * tone + n.saturating_sub(1) * gap + tail;
    let audio = audio_samples(spec, frames);

    // The sender works on Instants; any anchor will do, since only differences from it reach
    // the packets, so the output does not depend on when this runs.
    let epoch = Instant::now();
    let frame_at = |f: u64| PTIME * f as u32;
    let mut sender = if spec.mode.sends_events() {
        let mut s = TelephoneEventSender::new(
            SenderConfig {
                clock_rate: CLOCK_RATE,
                payload_type: spec.event_payload_type,
                ssrc: spec.ssrc,
                first_sequence: 0,
                first_timestamp: spec.first_timestamp,
                digit: spec.tone,
                // Digits are placed explicitly below, on the tones' timeline.
                gap: Duration::ZERO,
                update: PTIME,
                end_spacing: PTIME,
                volume: (-spec.level_dbm0).round() as u8,
            },
            epoch,
        )?;
        for (i, &code) in codes.iter().enumerate() {
            let key_down = epoch + frame_at(lead + i as u64 * (tone + gap));
            s.send_event(key_down, code, spec.tone)?;
        }
        Some(s)
    } else {
        None
    };

    let mut packets = Vec::new();
    let mut first_audio = true;
    for f in 0..frames {
        let time = frame_at(f);
        let mut events = Vec::new();
        if let Some(s) = sender.as_mut() {
            s.handle_timeout(epoch + time);
            events.extend(std::iter::from_fn(|| s.poll_transmit()));
        }
        if spec.mode.sends_tones() || events.is_empty() {
            let at = f as usize * SAMPLES_PER_FRAME;
            let samples = &audio[at..at + SAMPLES_PER_FRAME];
            let mut payload = Vec::with_capacity(SAMPLES_PER_FRAME);
            spec.law.encode_into(samples, &mut payload);
            let timestamp = spec
                .first_timestamp
                .wrapping_add((f as u32).wrapping_mul(SAMPLES_PER_FRAME as u32));
            // RFC 3551 §4.1: the marker opens a talkspurt; the audio is continuous, so only the
            // first packet is one.
            let packet = packet::build(
                audio_pt,
                first_audio,
                0,
                timestamp,
                spec.ssrc,
                Bytes::from(payload),
            );
            first_audio = false;
            packets.push(TimedPacket { time, packet });
        }
        packets.extend(
            events
                .into_iter()
                .map(|packet| TimedPacket { time, packet }),
        );
    }
    debug_assert!(
        sender.as_ref().is_none_or(|s| s.is_idle()),
        "every event packet falls inside the stream"
    );
    // One sequence space for audio and events, in the order the packets go out.
    for (i, p) in packets.iter_mut().enumerate() {
        p.packet.header.sequence_number = spec.first_sequence.wrapping_add(i as u16);
    }
    Ok(DtmfStream {
        packets,
        frames,
        start: spec.start,
        src: spec.src,
        dst: spec.dst,
    })
}

/// The linear audio of the whole stream: the tones when the mode sends them, else silence.
fn audio_samples(spec: &DtmfStreamSpec, frames: u64) -> Vec<i16> {
    let total = frames as usize * SAMPLES_PER_FRAME;
    if !spec.mode.sends_tones() {
        return vec![0; total];
    }
    let samples = |d: Duration| (d.as_nanos() * u128::from(CLOCK_RATE) / 1_000_000_000) as usize;
    let mut signal = Signal::new(CLOCK_RATE, spec.seed);
    signal.silence(samples(spec.lead));
    for (i, digit) in spec.digits.chars().enumerate() {
        if i > 0 {
            signal.silence(samples(spec.gap));
        }
        signal.burst(&Burst::new(digit, samples(spec.tone), spec.level_dbm0));
    }
    signal.silence(samples(spec.tail));
    let audio = signal.to_i16();
    debug_assert_eq!(audio.len(), total);
    audio
}

/// Builds the stream `spec` describes and writes it to `path` as a classic pcap that sipp's
/// `play_pcap_audio` replays. Returns the stream, so a test knows what it sent.
pub fn write_dtmf_pcap(
    path: impl AsRef<Path>,
    spec: &DtmfStreamSpec,
) -> Result<DtmfStream, DtmfStreamError> {
    let path = path.as_ref();
    let stream = build(spec)?;
    let file = std::fs::File::create(path).map_err(|source| DtmfStreamError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    stream.write_pcap(std::io::BufWriter::new(file))?;
    Ok(stream)
}
