//! The media half of an RTP session (RFC 3550 §5-§6 without RTCP), sans-IO.
//!
//! - [`RtpSender`] paces frames on an absolute schedule: frame `n` is due at `start + n * ptime`
//!   and carries timestamp `ts0 + n * samples_per_frame`, so a late wake-up never shifts the
//!   frames after it (60 s at 20 ms is exactly 3000 packets). SSRC, first sequence number and
//!   first timestamp are random (RFC 3550 §5.1, §8). Silence suppression skips packets but not
//!   timestamps, and the first packet of each talkspurt carries the marker bit (RFC 3551 §4.1).
//! - [`RtpReceiver`] puts packets back in sequence per SSRC with a small jitter window, and counts
//!   duplicates, reordering, losses and late packets, using the extended-sequence arithmetic of
//!   RFC 3550 Appendix A.1 (wrap-around, and a resync on a jump beyond `MAX_DROPOUT`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use super::packet::{self, Packet};

/// Sender tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Payload type of the audio codec (0 PCMU, 8 PCMA).
    pub payload_type: u8,
    /// RTP clock rate of the codec.
    pub clock_rate: u32,
    /// Packet interval (`a=ptime`).
    pub ptime: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            payload_type: 0,
            clock_rate: 8000,
            ptime: Duration::from_millis(20),
        }
    }
}

/// Paces audio frames onto the wire.
#[derive(Debug)]
pub struct RtpSender {
    config: SenderConfig,
    start: Instant,
    samples_per_frame: u32,
    /// Index of the next frame due.
    next_frame: u64,
    ssrc: u32,
    sequence: u16,
    first_timestamp: u32,
    /// The previous frame was silence (or there was none): the next packet starts a talkspurt.
    talkspurt: bool,
    /// Packets with the time each was due.
    out: VecDeque<(Instant, Packet)>,
}

impl RtpSender {
    /// A sender whose frame 0 is due at `start`, with random SSRC, sequence and timestamp.
    pub fn new<R: Rng + ?Sized>(config: SenderConfig, start: Instant, rng: &mut R) -> Self {
        let samples_per_frame =
            (config.ptime.as_nanos() * u128::from(config.clock_rate) / 1_000_000_000) as u32;
        RtpSender {
            config,
            start,
            samples_per_frame,
            next_frame: 0,
            ssrc: rng.random(),
            sequence: rng.random(),
            first_timestamp: rng.random(),
            talkspurt: true,
            out: VecDeque::new(),
        }
    }

    /// Moves frame 0 to `start`: the stream begins later than the sender was made (a call's
    /// RTP starts at the ACK). Only before the first frame was produced.
    pub fn delay_start(&mut self, start: Instant) {
        if self.next_frame == 0 {
            self.start = start;
        }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.sequence
    }

    /// RTP timestamp of frame `n`.
    pub fn timestamp_of(&self, frame: u64) -> u32 {
        self.first_timestamp
            .wrapping_add((frame as u32).wrapping_mul(self.samples_per_frame))
    }

    /// When the next frame is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.frame_due(self.next_frame))
    }

    fn frame_due(&self, n: u64) -> Instant {
        // Multiplying (rather than adding ptime each time) keeps rounding from accumulating.
        self.start + Duration::from_nanos((self.config.ptime.as_nanos() as u64).saturating_mul(n))
    }

    /// Sends every frame due by `now`. `frame` gives the payload of frame `n`, or `None` for
    /// silence (no packet, the timestamp still advances).
    pub fn handle_timeout(&mut self, now: Instant, mut frame: impl FnMut(u64) -> Option<Bytes>) {
        while self.frame_due(self.next_frame) <= now {
            let n = self.next_frame;
            let due = self.frame_due(n);
            self.next_frame += 1;
            match frame(n) {
                Some(payload) => {
                    let pkt = packet::build(
                        self.config.payload_type,
                        self.talkspurt,
                        self.sequence,
                        self.timestamp_of(n),
                        self.ssrc,
                        payload,
                    );
                    self.sequence = self.sequence.wrapping_add(1);
                    self.talkspurt = false;
                    self.out.push_back((due, pkt));
                }
                None => self.talkspurt = true,
            }
        }
    }

    /// The next packet to send, with its slot on the schedule: how late it really goes out is
    /// the runtime's to measure (the send jitter), since only the runtime knows the time.
    pub fn poll_transmit(&mut self) -> Option<(Instant, Packet)> {
        self.out.pop_front()
    }
}

/// Receiver tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Packets held waiting for a missing one before it is declared lost.
    pub window: usize,
    /// Longest a packet is held waiting for a missing one.
    pub max_delay: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            window: 3,
            max_delay: Duration::from_millis(60),
        }
    }
}

/// Counters of one SSRC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Packets accepted (not counting duplicates).
    pub received: u64,
    /// Packets delivered in order.
    pub delivered: u64,
    /// Copies of a packet already received.
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// Sequence numbers skipped because they had not arrived within the window.
    pub lost: u64,
    /// Packets that arrived after their sequence number had been skipped (dropped).
    pub late: u64,
    /// Sequence jumps beyond `MAX_DROPOUT` (sender restarts).
    pub resyncs: u64,
}

/// RFC 3550 A.1: a jump larger than this is a restart, not loss.
const MAX_DROPOUT: i64 = 3000;
/// Sequence numbers remembered for duplicate detection after delivery.
const HISTORY: usize = 256;

#[derive(Debug, Default)]
struct Stream {
    /// Extended sequence number expected next for delivery.
    next: u64,
    /// Highest extended sequence number received.
    highest: u64,
    buffer: BTreeMap<u64, (Instant, Packet)>,
    /// Recently delivered or skipped sequence numbers, and whether each was received.
    history: BTreeSet<u64>,
    stats: StreamStats,
}

impl Stream {
    fn extend(&self, seq: u16) -> u64 {
        let delta = i64::from(seq.wrapping_sub(self.highest as u16) as i16);
        (self.highest as i64 + delta).max(0) as u64
    }

    fn remember(&mut self, ext: u64) {
        self.history.insert(ext);
        while self.history.len() > HISTORY {
            self.history.pop_first();
        }
    }
}

/// Reorders and accounts incoming packets per SSRC.
#[derive(Debug, Default)]
pub struct RtpReceiver {
    config: ReceiverConfig,
    streams: HashMap<u32, Stream>,
    out: VecDeque<Packet>,
}

impl RtpReceiver {
    /// A receiver with the given jitter window.
    pub fn new(config: ReceiverConfig) -> Self {
        RtpReceiver {
            config,
            streams: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Handles one packet that arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, pkt: Packet) {
        let ssrc = pkt.header.ssrc;
        let seq = pkt.header.sequence_number;
        // Extended numbers start at 2^16 so that a packet slightly older than the first one
        // still has a place below it.
        let stream = self.streams.entry(ssrc).or_insert_with(|| Stream {
            next: 1 << 16 | u64::from(seq),
            highest: 1 << 16 | u64::from(seq),
            ..Stream::default()
        });
        let mut ext = stream.extend(seq);
        if (ext as i64 - stream.highest as i64).abs() > MAX_DROPOUT {
            // A restart: deliver what is held and begin again at this packet.
            stream.stats.resyncs += 1;
            let held: Vec<Packet> = std::mem::take(&mut stream.buffer)
                .into_values()
                .map(|(_, p)| p)
                .collect();
            stream.stats.delivered += held.len() as u64;
            self.out.extend(held);
            stream.history.clear();
            // A fresh 2^16 cycle above everything seen, low bits = this sequence number.
            ext = (((stream.highest >> 16) + 2) << 16) | u64::from(seq);
            stream.next = ext;
            stream.highest = ext;
        }
        if stream.buffer.contains_key(&ext) || stream.history.contains(&ext) {
            stream.stats.duplicates += 1;
            return;
        }
        if ext < stream.next {
            stream.stats.late += 1;
            return;
        }
        stream.stats.received += 1;
        if ext < stream.highest {
            stream.stats.reordered += 1;
        }
        stream.highest = stream.highest.max(ext);
        stream.buffer.insert(ext, (now, pkt));
        Self::drain(stream, &mut self.out, self.config, now);
    }

    fn drain(
        stream: &mut Stream,
        out: &mut VecDeque<Packet>,
        config: ReceiverConfig,
        now: Instant,
    ) {
        loop {
            if let Some((_, pkt)) = stream.buffer.remove(&stream.next) {
                let n = stream.next;
                stream.remember(n);
                stream.next += 1;
                stream.stats.delivered += 1;
                out.push_back(pkt);
                continue;
            }
            let Some((&first, &(arrived, _))) = stream.buffer.iter().next() else {
                break;
            };
            if stream.buffer.len() > config.window || now >= arrived + config.max_delay {
                stream.stats.lost += first - stream.next;
                stream.next = first;
                continue;
            }
            break;
        }
    }

    /// The earliest instant a held packet must be released.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|s| {
                s.buffer
                    .values()
                    .next()
                    .map(|(t, _)| *t + self.config.max_delay)
            })
            .min()
    }

    /// Releases packets that have waited `max_delay` for a missing one.
    pub fn handle_timeout(&mut self, now: Instant) {
        for stream in self.streams.values_mut() {
            Self::drain(stream, &mut self.out, self.config, now);
        }
    }

    /// The next packet in sequence order.
    pub fn poll_packet(&mut self) -> Option<Packet> {
        self.out.pop_front()
    }

    /// Counters of one SSRC.
    pub fn stats(&self, ssrc: u32) -> Option<StreamStats> {
        self.streams.get(&ssrc).map(|s| s.stats)
    }

    /// The SSRCs seen.
    pub fn ssrcs(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.streams.keys().copied().collect();
        v.sort_unstable();
        v
    }
}
