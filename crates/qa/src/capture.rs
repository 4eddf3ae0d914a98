//! The RFC 4733 digits of a packet capture, for `hotdesk qa` and `hotdesk replay`.

use hotdesk_core::rtp::{EventDigit, ReceiverOutput, TelephoneEventError, TelephoneEventReceiver};
use std::time::{Duration, Instant};

/// The RFC 4733 digits of a capture: every RTP packet of `payload_type` (or, when `None`, of
/// any dynamic payload type 96-127 that decodes as an event report), one receiver per SSRC,
/// arrival times from the capture mapped onto a virtual clock whose first packet is at `base`.
/// Used by `hotdesk qa` and `hotdesk replay`.
pub fn capture_digits(
    base: Instant,
    packets: &[crate::pcap::CapturedRtp],
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
                (96..=127).contains(&pt)
                    && p.packet.payload.len() >= hotdesk_core::rtp::telephone_event::PAYLOAD_LEN
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
