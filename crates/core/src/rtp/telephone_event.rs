//! RFC 4733 telephone-events: the payload (§2.3), a per-stream receiver (§2.5.2) that turns event
//! packets into exactly one digit per key press, and a sender (§2.5.1) for digit strings.
//!
//! What real senders do that the receiver must absorb (hotdesk `dtmf-conformance.md` §6):
//!
//! - **E1** the first packet carries the marker bit, every packet of one event shares its RTP
//!   timestamp, the duration grows, the last packet has the E bit and is sent three times;
//! - **E2** the start packets or all end packets are lost: a digit starts from whichever packet
//!   arrives first, and an event that stops updating is closed by
//!   [`TelephoneEventReceiver::handle_timeout`]; a late end packet for it is recognised by its
//!   timestamp and ignored;
//! - **E3** duplicates and reordering (Asterisk's `broken_dtmf.pcap` sends the end packet before
//!   the last update): the duration only grows, and nothing after the E bit reopens the event;
//! - **E4** the same key twice is two events because the timestamp changes;
//! - **E5** presses longer than the 16-bit duration are sent as segments (§2.5.1.3): a new
//!   timestamp, no marker and no E bit in between; the receiver joins them into one digit;
//! - **E6** the event clock is the negotiated `telephone-event/<rate>`: durations are scaled by it;
//! - **E7** senders that update irregularly (updates at 160 and 320 ms, then nothing until the end
//!   at 1.7 s): the inactivity timeout is long (2 s by default; Asterisk's `dtmftimeout` is 3 s)
//!   because the digit is reported on its first packet, so the timeout only decides when the key
//!   is considered released, and must not split a press.
//!
//! Sans-IO: arrival times are passed in, [`TelephoneEventReceiver::poll_timeout`] says when to be
//! woken, and the [`TelephoneEventSender`] is driven the same way.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::packet::{self, Packet, ts_after};

/// Size of one event report (§2.3).
pub const PAYLOAD_LEN: usize = 4;
/// Largest duration one segment can carry (§2.5.1.3).
pub const MAX_SEGMENT: u16 = 0xFFFF;

/// Shortest previous segment that a new timestamp can continue (§2.5.1.3). A sender only
/// starts a new segment when the duration field is about to overflow, so the gap to the next
/// segment is close to [`MAX_SEGMENT`]; half of it leaves room for senders that split early.
/// Without this floor, a second press of the same key whose first packets were lost (no
/// marker seen) would pass for the continuation of the first.
const MIN_CONTINUED_SEGMENT: u64 = 0x8000;

/// Why a payload is not a telephone-event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TelephoneEventError {
    /// Fewer than the 4 bytes of an event report.
    #[error("telephone-event payload of {len} bytes, need 4")]
    TooShort {
        /// Payload length.
        len: usize,
    },
    /// Clock rate zero (a broken `a=rtpmap`).
    #[error("telephone-event clock rate {rate} Hz is not usable")]
    ClockRate {
        /// The rate.
        rate: u32,
    },
    /// A character that has no RFC 4733 DTMF event code.
    #[error("{digit:?} is not a DTMF key")]
    Digit {
        /// The character.
        digit: char,
    },
}

/// One event report (RFC 4733 §2.3).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     event     |E|R| volume    |          duration             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-9, 10 `*`, 11 `#`, 12-15 A-D for DTMF, RFC 4733 §3.2).
    pub event: u8,
    /// The E bit: this is (a retransmission of) the final report of the event.
    pub end: bool,
    /// Power level, -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far in event-clock units (from the packet's RTP timestamp).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Decodes a payload; extra bytes (a second report some gateways append) are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, TelephoneEventError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(TelephoneEventError::TooShort { len: payload.len() });
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// Encodes the 4-byte report (the R bit is sent as zero, §2.3).
    pub fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }

    /// The DTMF key of this event, if it is one (events 0-15).
    pub fn digit(&self) -> Option<char> {
        event_digit(self.event)
    }
}

/// The key of a DTMF event code (RFC 4733 §3.2, table 7).
pub fn event_digit(event: u8) -> Option<char> {
    const KEYS: &[u8; 16] = b"0123456789*#ABCD";
    KEYS.get(usize::from(event)).map(|&b| char::from(b))
}

/// The event code of a DTMF key (`a`-`d` accepted as `A`-`D`).
pub fn digit_event(digit: char) -> Result<u8, TelephoneEventError> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Ok(d as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        d @ 'A'..='D' => Ok(d as u8 - b'A' + 12),
        _ => Err(TelephoneEventError::Digit { digit }),
    }
}

/// Converts event-clock units to time.
fn units_to_time(units: u64, clock_rate: u32) -> Duration {
    Duration::from_nanos(units.saturating_mul(1_000_000_000) / u64::from(clock_rate.max(1)))
}

/// Converts time to event-clock units (rounded down).
fn time_to_units(t: Duration, clock_rate: u32) -> u64 {
    (t.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u64
}

/// How an event was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventEnd {
    /// A packet with the E bit arrived.
    EndBit,
    /// No packet for the inactivity timeout (all end packets lost, or a sender that never sets
    /// the E bit).
    Timeout,
    /// A new event started on the stream before this one ended.
    Superseded,
}

/// A finished key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDigit {
    /// The key.
    pub digit: char,
    /// When the key went down: arrival of the first packet seen, less the duration it reported.
    pub start: Instant,
    /// The duration the sender reported (all segments), scaled by the event clock.
    pub duration: Duration,
    /// RTP timestamp of the event's first segment.
    pub timestamp: u32,
    /// How it was closed.
    pub end: EventEnd,
}

/// What the receiver reports. Every press gives one `KeyDown` and then one `KeyUp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverOutput {
    /// A new key press, reported on its first packet (so the IVR can react within a packet).
    KeyDown {
        /// The key.
        digit: char,
        /// Estimated key-down time (see [`EventDigit::start`]).
        start: Instant,
        /// RTP timestamp of the event.
        timestamp: u32,
    },
    /// The press is over.
    KeyUp(EventDigit),
}

/// Receiver tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Event clock, Hz (the `telephone-event/<rate>` of the SDP).
    pub clock_rate: u32,
    /// An event with no packet for this long is closed ([`EventEnd::Timeout`]).
    pub inactivity_timeout: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            clock_rate: 8000,
            inactivity_timeout: Duration::from_secs(2),
        }
    }
}

/// The event being received.
#[derive(Debug, Clone, Copy)]
struct Active {
    event: u8,
    /// Timestamp of the first segment.
    first_timestamp: u32,
    /// Timestamp of the current segment (§2.5.1.3).
    segment_timestamp: u32,
    /// Units covered by the segments before the current one.
    earlier_units: u64,
    /// Largest duration seen in the current segment.
    segment_units: u16,
    start: Instant,
    last_packet: Instant,
}

impl Active {
    fn total_units(&self) -> u64 {
        self.earlier_units + u64::from(self.segment_units)
    }
}

/// A wide backwards jump of the timestamp is a sender restart, not a late packet: past this many
/// seconds of event clock the receiver starts afresh instead of ignoring the stream.
const RESYNC_SECONDS: u64 = 30;

fn is_restart(clock_rate: u32, timestamp: u32, reference: u32) -> bool {
    u64::from(reference.wrapping_sub(timestamp)) > RESYNC_SECONDS * u64::from(clock_rate)
}

/// RFC 4733 receiver for one RTP stream (one SSRC, one payload type).
///
/// States per stream: *Idle* → (first packet of a new timestamp) → *Active* → (E bit, timeout, or
/// a newer event) → *Ended*, which keeps the event's timestamp so that its retransmitted or late
/// packets are recognised and dropped.
#[derive(Debug)]
pub struct TelephoneEventReceiver {
    config: ReceiverConfig,
    current: Option<Active>,
    /// Timestamp of the last segment of the last closed event: anything at or before it is old.
    floor: Option<u32>,
    out: VecDeque<ReceiverOutput>,
}

impl TelephoneEventReceiver {
    /// A receiver for an event clock of `clock_rate` Hz and default timeouts.
    pub fn new(clock_rate: u32) -> Result<Self, TelephoneEventError> {
        Self::with_config(ReceiverConfig {
            clock_rate,
            ..ReceiverConfig::default()
        })
    }

    /// A receiver with explicit tuning.
    pub fn with_config(config: ReceiverConfig) -> Result<Self, TelephoneEventError> {
        if config.clock_rate == 0 {
            return Err(TelephoneEventError::ClockRate {
                rate: config.clock_rate,
            });
        }
        Ok(TelephoneEventReceiver {
            config,
            current: None,
            floor: None,
            out: VecDeque::new(),
        })
    }

    /// The tuning in force.
    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// Handles one RTP packet of the telephone-event payload type that arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, pkt: &Packet) -> Result<(), TelephoneEventError> {
        let ev = TelephoneEvent::decode(&pkt.payload)?;
        self.handle_event(now, pkt.header.timestamp, pkt.header.marker, ev);
        Ok(())
    }

    /// Handles one decoded event report with its packet's RTP timestamp and marker bit.
    pub fn handle_event(&mut self, now: Instant, timestamp: u32, marker: bool, ev: TelephoneEvent) {
        let Some(digit) = ev.digit() else {
            // Flash, tones and other events (RFC 4733 §3) are not keys: they neither start nor
            // end a digit.
            return;
        };
        self.handle_timeout(now);
        if let Some(floor) = self.floor
            && !ts_after(timestamp, floor)
            && !self.is_restart(timestamp, floor)
        {
            // A retransmitted end packet or a late packet of an event already closed (E2, E3).
            return;
        }
        let clock_rate = self.config.clock_rate;
        if let Some(cur) = self.current.as_mut() {
            if timestamp == cur.segment_timestamp {
                if ev.event != cur.event {
                    return;
                }
                cur.last_packet = now;
                cur.segment_units = cur.segment_units.max(ev.duration);
                if ev.end {
                    self.close(EventEnd::EndBit);
                }
                return;
            }
            if !ts_after(timestamp, cur.segment_timestamp)
                && !is_restart(clock_rate, timestamp, cur.segment_timestamp)
            {
                // Late packet of an earlier segment or an earlier event (reordering, E3).
                return;
            }
            let gap = u64::from(timestamp.wrapping_sub(cur.segment_timestamp));
            let continues = ev.event == cur.event
                && !marker
                && gap <= u64::from(MAX_SEGMENT)
                && gap >= u64::from(cur.segment_units).max(MIN_CONTINUED_SEGMENT);
            if continues {
                // §2.5.1.3: the next segment of a long press; the gap is the previous segment.
                cur.earlier_units += gap;
                cur.segment_timestamp = timestamp;
                cur.segment_units = ev.duration;
                cur.last_packet = now;
                if ev.end {
                    self.close(EventEnd::EndBit);
                }
                return;
            }
            self.close(EventEnd::Superseded);
        }
        let start = now
            .checked_sub(units_to_time(
                u64::from(ev.duration),
                self.config.clock_rate,
            ))
            .unwrap_or(now);
        self.current = Some(Active {
            event: ev.event,
            first_timestamp: timestamp,
            segment_timestamp: timestamp,
            earlier_units: 0,
            segment_units: ev.duration,
            start,
            last_packet: now,
        });
        self.out.push_back(ReceiverOutput::KeyDown {
            digit,
            start,
            timestamp,
        });
        if ev.end {
            self.close(EventEnd::EndBit);
        }
    }

    /// A jump backwards wider than [`RESYNC_SECONDS`] of event clock.
    fn is_restart(&self, timestamp: u32, reference: u32) -> bool {
        is_restart(self.config.clock_rate, timestamp, reference)
    }

    /// Emits the key-up of the current event and remembers its timestamp as the floor.
    fn close(&mut self, how: EventEnd) {
        let Some(cur) = self.current.take() else {
            return;
        };
        self.floor = Some(cur.segment_timestamp);
        let digit = event_digit(cur.event).unwrap_or('?');
        self.out.push_back(ReceiverOutput::KeyUp(EventDigit {
            digit,
            start: cur.start,
            duration: units_to_time(cur.total_units(), self.config.clock_rate),
            timestamp: cur.first_timestamp,
            end: how,
        }));
    }

    /// Whether a key is down on this stream (for the in-band de-duplication).
    pub fn active_digit(&self) -> Option<char> {
        self.current.and_then(|c| event_digit(c.event))
    }

    /// When the current event times out, if one is open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current
            .map(|c| c.last_packet + self.config.inactivity_timeout)
    }

    /// Closes the current event if it has been silent for the inactivity timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.close(EventEnd::Timeout);
        }
    }

    /// Closes whatever is open, as at the end of a capture or a call.
    pub fn finish(&mut self) {
        self.close(EventEnd::Timeout);
    }

    /// The next key-down or key-up.
    pub fn poll_output(&mut self) -> Option<ReceiverOutput> {
        self.out.pop_front()
    }
}

/// Sender tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Event clock, Hz.
    pub clock_rate: u32,
    /// Negotiated telephone-event payload type.
    pub payload_type: u8,
    /// Stream SSRC.
    pub ssrc: u32,
    /// First sequence number.
    pub first_sequence: u16,
    /// RTP timestamp at `epoch` (the media clock of the stream).
    pub first_timestamp: u32,
    /// Tone length of each digit.
    pub digit: Duration,
    /// Pause between digits.
    pub gap: Duration,
    /// Interval between updates of one event (§2.5.1.2 suggests 50 ms).
    pub update: Duration,
    /// Spacing of the three end packets (§2.5.1.4).
    pub end_spacing: Duration,
    /// Volume, -dBm0.
    pub volume: u8,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            clock_rate: 8000,
            payload_type: 101,
            ssrc: 0,
            first_sequence: 0,
            first_timestamp: 0,
            digit: Duration::from_millis(100),
            gap: Duration::from_millis(100),
            update: Duration::from_millis(50),
            end_spacing: Duration::from_millis(20),
            volume: 10,
        }
    }
}

/// One scheduled packet of the sender.
#[derive(Debug, Clone, Copy)]
struct Planned {
    at: Instant,
    timestamp: u32,
    marker: bool,
    event: TelephoneEvent,
}

/// RFC 4733 sender for digit strings: per digit, a start packet with the marker bit, an update
/// every `update`, long presses split into segments (§2.5.1.3), and three end packets.
#[derive(Debug)]
pub struct TelephoneEventSender {
    config: SenderConfig,
    epoch: Instant,
    sequence: u16,
    /// Packets not yet due, in time order.
    plan: VecDeque<Planned>,
    /// When the next digit may start.
    free_at: Instant,
    due: VecDeque<Packet>,
}

impl TelephoneEventSender {
    /// A sender whose RTP timestamp is `config.first_timestamp` at `epoch`.
    pub fn new(config: SenderConfig, epoch: Instant) -> Result<Self, TelephoneEventError> {
        if config.clock_rate == 0 {
            return Err(TelephoneEventError::ClockRate {
                rate: config.clock_rate,
            });
        }
        Ok(TelephoneEventSender {
            config,
            epoch,
            sequence: config.first_sequence,
            plan: VecDeque::new(),
            free_at: epoch,
            due: VecDeque::new(),
        })
    }

    /// RTP timestamp of an instant.
    fn timestamp_at(&self, t: Instant) -> u32 {
        let units = time_to_units(
            t.saturating_duration_since(self.epoch),
            self.config.clock_rate,
        );
        self.config.first_timestamp.wrapping_add(units as u32)
    }

    /// Queues `digits` to start at `now` (or after the digits already queued).
    pub fn send_digits(&mut self, now: Instant, digits: &str) -> Result<(), TelephoneEventError> {
        let codes = digits
            .chars()
            .map(digit_event)
            .collect::<Result<Vec<u8>, _>>()?;
        for code in codes {
            self.send_event(now, code, self.config.digit)?;
        }
        Ok(())
    }

    /// Queues one event of any length (segments past 65 535 units).
    pub fn send_event(
        &mut self,
        now: Instant,
        event: u8,
        length: Duration,
    ) -> Result<(), TelephoneEventError> {
        let c = self.config;
        let start = self.free_at.max(now);
        let total = time_to_units(length, c.clock_rate).max(1);
        let report = |duration: u64, end: bool| TelephoneEvent {
            event,
            end,
            volume: c.volume,
            duration: duration as u16,
        };
        let mut segment_start_units = 0u64;
        let mut segment_ts = self.timestamp_at(start);
        let mut t = start;
        let mut first = true;
        let update_units = time_to_units(c.update, c.clock_rate).max(1);
        loop {
            let elapsed = time_to_units(t - start, c.clock_rate).min(total);
            let mut in_segment = elapsed - segment_start_units;
            if in_segment > u64::from(MAX_SEGMENT) {
                // Close the segment at its maximum and start the next one where it ends.
                self.plan.push_back(Planned {
                    at: start
                        + units_to_time(segment_start_units + u64::from(MAX_SEGMENT), c.clock_rate),
                    timestamp: segment_ts,
                    marker: false,
                    event: report(u64::from(MAX_SEGMENT), false),
                });
                segment_start_units += u64::from(MAX_SEGMENT);
                segment_ts = segment_ts.wrapping_add(u32::from(MAX_SEGMENT));
                in_segment = elapsed - segment_start_units;
            }
            if elapsed >= total {
                for i in 0..3u32 {
                    self.plan.push_back(Planned {
                        at: start + length + c.end_spacing * i,
                        timestamp: segment_ts,
                        marker: false,
                        event: report(in_segment, true),
                    });
                }
                break;
            }
            self.plan.push_back(Planned {
                at: t,
                timestamp: segment_ts,
                marker: first,
                event: report(in_segment, false),
            });
            first = false;
            t += units_to_time(update_units, c.clock_rate);
        }
        self.free_at = start + length + c.end_spacing * 2 + c.gap;
        Ok(())
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.plan.front().map(|p| p.at)
    }

    /// Moves every packet due at `now` to the transmit queue.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(p) = self.plan.front().copied() {
            if p.at > now {
                break;
            }
            self.plan.pop_front();
            let pkt = packet::build(
                self.config.payload_type,
                p.marker,
                self.sequence,
                p.timestamp,
                self.config.ssrc,
                Bytes::copy_from_slice(&p.event.encode()),
            );
            self.sequence = self.sequence.wrapping_add(1);
            self.due.push_back(pkt);
        }
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        self.due.pop_front()
    }

    /// Whether everything queued has been sent.
    pub fn is_idle(&self) -> bool {
        self.plan.is_empty() && self.due.is_empty()
    }
}
