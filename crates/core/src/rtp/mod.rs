//! RTP for the media server: packets (RFC 3550 §5.1), RFC 4733 telephone-events (receiver and
//! sender), the sans-IO media session (pacing, reordering, loss accounting) and which source
//! a call's RTP is taken from (strict RTP).
//!
//! Everything here is sans-IO: datagrams and arrival instants go in, packets, digits and the next
//! wake-up instant come out. No sockets, no clock reads.

pub mod packet;
pub mod session;
pub mod source;
pub mod telephone_event;

pub use packet::{Packet, PacketError};
pub use telephone_event::{
    EventDigit, EventEnd, ReceiverOutput, TelephoneEvent, TelephoneEventError,
    TelephoneEventReceiver, TelephoneEventSender,
};
