//! RTP for the media server: packets (RFC 3550 §5.1, over the `rtp` crate), RFC 4733
//! telephone-events (receiver and sender), the sans-IO media session (pacing, reordering, loss
//! accounting), which source a call's RTP is taken from (strict RTP) and reading RTP out of
//! packet captures.
//!
//! Everything here is sans-IO: datagrams and arrival instants go in, packets, digits and the next
//! wake-up instant come out. No sockets, no clock reads.

pub mod dtmf_stream;
pub mod packet;
pub mod pcap;
pub mod session;
pub mod source;
pub mod telephone_event;

pub use packet::{Packet, PacketError};
pub use telephone_event::{
    EventDigit, EventEnd, ReceiverOutput, TelephoneEvent, TelephoneEventError,
    TelephoneEventReceiver, TelephoneEventSender,
};

use std::time::{Duration, Instant};

/// The RFC 4733 digits of a capture: every RTP packet of `payload_type` (or, when `None`, of
/// any dynamic payload type 96-127 that decodes as an event report), one receiver per SSRC,
/// arrival times from the capture mapped onto a virtual clock whose first packet is at `base`.
/// Used by `hotdesk qa` and `hotdesk replay`.
pub fn capture_digits(
    base: Instant,
    packets: &[pcap::CapturedRtp],
    payload_type: Option<u8>,
    clock_rate: u32,
) -> Result<Vec<EventDigit>, TelephoneEventError> {
    let Some(first) = packets.first() else {
        return Ok(Vec::new());
    };
    let at = |t: Duration| base + t.saturating_sub(first.time);
    let mut receivers: std::collections::HashMap<u32, TelephoneEventReceiver> =
        std::collections::HashMap::new();
    let mut digits = Vec::new();
    let drain = |rx: &mut TelephoneEventReceiver, digits: &mut Vec<EventDigit>| {
        while let Some(out) = rx.poll_output() {
            if let ReceiverOutput::KeyUp(d) = out {
                digits.push(d);
            }
        }
    };
    for p in packets {
        let pt = p.packet.header.payload_type;
        let wanted = match payload_type {
            Some(want) => pt == want,
            None => {
                (96..=127).contains(&pt) && p.packet.payload.len() >= telephone_event::PAYLOAD_LEN
            }
        };
        if !wanted {
            continue;
        }
        let rx = match receivers.entry(p.packet.header.ssrc) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(TelephoneEventReceiver::new(clock_rate)?)
            }
        };
        // A malformed report is skipped like a lost packet.
        let _ = rx.handle_packet(at(p.time), &p.packet);
        drain(rx, &mut digits);
    }
    for rx in receivers.values_mut() {
        rx.finish();
        drain(rx, &mut digits);
    }
    digits.sort_by_key(|d| d.start);
    Ok(digits)
}
