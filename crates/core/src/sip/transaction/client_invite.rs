//! The INVITE client transaction (RFC 3261 §17.1.1, with the Accepted state of RFC 6026 §7.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Outbox, Timers, TransactionEvent, earliest};
use crate::sip::message::{Request, Response, ack_for};

/// States of [`ClientInvite`], named as in RFC 3261 Figure 5 and RFC 6026 Figure 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, retransmitted on timer A until a response or timer B.
    Calling,
    /// A provisional response arrived; no more retransmissions.
    Proceeding,
    /// A 300-699 arrived and was ACKed; retransmissions of it are re-ACKed until timer D.
    Completed,
    /// A 2xx arrived (RFC 6026): further 2xx go to the TU, which ACKs them, until timer M.
    Accepted,
    /// Done.
    Terminated,
}

/// The INVITE client transaction over an unreliable transport.
///
/// RFC 3261 Figure 5 as amended by RFC 6026 Figure 3 (2xx → Accepted instead of Terminated):
///
/// ```text
///                                |INVITE from TU
///              Timer A fires     |INVITE sent
///              Reset A,          V                      Timer B fires
///              INVITE sent +-----------+                or Transport Err.
///                +---------|           |---------------+inform TU
///                |         |  Calling  |               |
///                +-------->|           |-------------->|
///                          +-----------+ 2xx           |
///                             |  |       2xx to TU     |
///                             |  |1xx                  |
///     300-699 +---------------+  |1xx to TU            |
///    ACK sent |                  |                     |
/// resp. to TU |  1xx             V                     |
///             |  1xx to TU  -----------+               |
///             |  +---------|           |               |
///             |  |         |Proceeding |-------------->|
///             |  +-------->|           | 2xx           |
///             |            +-----------+ 2xx to TU     |
///             |       300-699    |                     |
///             |       ACK sent,  |                     |
///             |       resp. to TU|                     |
///             |                  |                     |
///             |                  V                     |
///             |            +-----------+               |
///             |            |           |               |
///             |            | Completed |               |
///             |            |           |               |
///             |            +-----------+               |
///             |              ^   |                     |
///             |              |   | Timer D fires       |
///             +--------------+   | -                   |
///              300-699           |                     |
///              ACK sent          |    +-----------+    |
///                                |    | Accepted  |<---+ (2xx, RFC 6026)
///                                |    +-----------+
///                                |     2xx to TU |  Timer M fires
///                                V               V
///                          +-----------+
///                          |           |
///                          | Terminated|
///                          |           |
///                          +-----------+
/// ```
///
/// Timer A starts at T1 and doubles on every retransmission (no cap for INVITE), so the INVITE
/// goes out at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s; timer B (64·T1 = 32 s) gives up in
/// Calling. Timer D (32 s) bounds Completed, timer M (64·T1) bounds Accepted.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    timers: Timers,
    request: Request,
    request_bytes: Bytes,
    ack_bytes: Option<Bytes>,
    timer_a: Option<Instant>,
    a_interval: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    outbox: Outbox,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE is queued for sending at once.
    pub fn new(now: Instant, request: Request, timers: Timers) -> ClientInvite {
        let request_bytes = request.to_bytes();
        ClientInvite {
            state: ClientInviteState::Calling,
            timers,
            request,
            request_bytes: request_bytes.clone(),
            ack_bytes: None,
            timer_a: Some(now + timers.t1),
            a_interval: timers.t1,
            timer_b: Some(now + timers.t1 * 64),
            timer_d: None,
            timer_m: None,
            outbox: Outbox::sending(request_bytes),
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction carries.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A response matched to this transaction (§17.1.3) arrived.
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        use ClientInviteState::*;
        let code = response.code;
        match (self.state, code) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.timer_a = None;
                // Timer B only guards Calling; Proceeding waits for the TU (timer C is its job).
                self.timer_b = None;
                self.outbox
                    .event(TransactionEvent::Response(response.clone()));
            }
            (Calling | Proceeding | Accepted, 200..=299) => {
                if self.state != Accepted {
                    self.state = Accepted;
                    self.timer_a = None;
                    self.timer_b = None;
                    self.timer_m = Some(now + self.timers.t1 * 64);
                }
                self.outbox
                    .event(TransactionEvent::Response(response.clone()));
            }
            (Calling | Proceeding, 300..=699) => {
                self.state = Completed;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_d = Some(now + self.timers.timer_d);
                let ack = ack_for(&self.request, response).to_bytes();
                self.outbox.transmit(ack.clone());
                self.ack_bytes = Some(ack);
                self.outbox
                    .event(TransactionEvent::Response(response.clone()));
            }
            (Completed, 300..=699) => {
                // A retransmission of the final response: our ACK was lost, send it again.
                if let Some(ack) = &self.ack_bytes {
                    self.outbox.transmit(ack.clone());
                }
            }
            // Late provisionals and anything after Terminated are absorbed.
            _ => {}
        }
    }

    /// Fires every timer due at or before `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.poll_timeout().filter(|&due| due <= now) {
            // On a tie the timeout wins over a retransmission nobody would answer.
            if self.timer_b == Some(due) {
                self.outbox.event(TransactionEvent::Timeout);
                self.terminate();
            } else if self.timer_a == Some(due) {
                self.outbox.transmit(self.request_bytes.clone());
                self.a_interval *= 2;
                self.timer_a = Some(due + self.a_interval);
            } else if self.timer_d == Some(due) || self.timer_m == Some(due) {
                self.terminate();
            }
        }
    }

    /// When [`ClientInvite::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest([self.timer_a, self.timer_b, self.timer_d, self.timer_m])
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        [self.timer_a, self.timer_b, self.timer_d, self.timer_m] = [None; 4];
        self.outbox.event(TransactionEvent::Terminated);
    }
}

common_verbs!(ClientInvite, ClientInviteState);
