//! The INVITE server transaction (RFC 3261 §17.2.1, with the Accepted state of RFC 6026 §7.1).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Outbox, Timers, TransactionError, TransactionEvent, earliest};
use crate::sip::message::{Method, Request, Response, response_to};

/// States of [`ServerInvite`], named as in RFC 3261 Figure 7 and RFC 6026 Figure 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE received, 100 Trying sent; INVITE retransmissions get the last provisional.
    Proceeding,
    /// A 300-699 was sent; retransmitted on timer G until the ACK or timer H.
    Completed,
    /// The ACK arrived; further ACKs are absorbed until timer I.
    Confirmed,
    /// A 2xx was sent (RFC 6026): the TU retransmits it; INVITE retransmissions are absorbed,
    /// ACKs that match go to the TU, until timer L.
    Accepted,
    /// Done.
    Terminated,
}

/// The INVITE server transaction over an unreliable transport.
///
/// RFC 3261 Figure 7 as amended by RFC 6026 Figure 5 (2xx → Accepted instead of Terminated):
///
/// ```text
///                                |INVITE
///                                |pass INV to TU
///             INVITE             V send 100 if TU won't in 200ms
///             send response+-----------+
///                 +--------|           |--------+101-199 from TU
///                 |        | Proceeding|        |send response
///                 +------->|           |<-------+
///                          |           |          Transport Err.
///                          |           |          Inform TU
///                          |           |--------------->+
///                          +-----------+                |
///             300-699 from TU |     |2xx from TU        |
///             send response   |     |send response      |
///                             |     +------------------>+-------------+
///                             |                         |  Accepted   | INVITE: absorb
///           INVITE            V          Timer G fires  |             | ACK: to TU
///           send response+-----------+ send response    |             | 2xx from TU:
///                +-------|           |--------+         +-------------+  send response
///                |       | Completed |        |                |
///                +------>|           |<-------+                | Timer L fires
///                        +-----------+                         |
///                         |     ^                              |
///                         |     |                              |
///                         |     +------------------>+          |
///                 ACK     |      Timer H fires      |          |
///                 -       |      or Transport Err.  |          |
///                         V      Inform TU          |          |
///                        +-----------+              |          |
///                        |           |              |          |
///                        | Confirmed |              |          |
///                        |           |              |          |
///                        +-----------+              |          |
///                              |                    |          |
///                              |Timer I fires       |          |
///                              |-                   |          |
///                              |                    |          |
///                              V                    |          |
///                        +-----------+              |          |
///                        |           |              |          |
///                        | Terminated|<-------------+<---------+
///                        |           |
///                        +-----------+
/// ```
///
/// The 100 Trying is sent as soon as the transaction is created (the TU cannot promise to
/// answer within 200 ms). Timer G starts at T1 and doubles up to T2 (the final response goes
/// out again at 0.5, 1.5, 3.5, 7.5, 11.5, … s after the first send), timer H (64·T1) gives up
/// waiting for the ACK, timer I (T4) absorbs ACK retransmissions, timer L (64·T1) bounds
/// Accepted.
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    timers: Timers,
    request: Request,
    last_response: Bytes,
    timer_g: Option<Instant>,
    g_interval: Duration,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
    outbox: Outbox,
}

impl ServerInvite {
    /// Creates the transaction for a new INVITE (the TU gets the request from the layer) and
    /// queues a 100 Trying.
    pub fn new(_now: Instant, request: Request, timers: Timers) -> ServerInvite {
        let trying = response_to(&request, 100, "Trying").to_bytes();
        ServerInvite {
            state: ServerInviteState::Proceeding,
            timers,
            request,
            last_response: trying.clone(),
            timer_g: None,
            g_interval: timers.t1,
            timer_h: None,
            timer_i: None,
            timer_l: None,
            outbox: Outbox::sending(trying),
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The INVITE this transaction answers.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A request matched to this transaction (§17.2.3) arrived: an INVITE retransmission or
    /// the ACK for a non-2xx final response.
    pub fn handle_request(&mut self, now: Instant, request: &Request) {
        use ServerInviteState::*;
        let is_ack = request.method == Method::Ack;
        match (self.state, is_ack) {
            // The response was lost: send the last one again (a provisional in Proceeding).
            (Proceeding | Completed, false) => {
                self.outbox.transmit(self.last_response.clone());
            }
            (Completed, true) => {
                self.state = Confirmed;
                self.timer_g = None;
                self.timer_h = None;
                self.timer_i = Some(now + self.timers.t4);
            }
            (Accepted, true) => {
                self.outbox.event(TransactionEvent::Ack(request.clone()));
            }
            // Confirmed absorbs ACKs; Accepted absorbs INVITEs (the TU resends its 2xx itself);
            // an ACK before any final response means nothing.
            _ => {}
        }
    }

    /// The TU's response. 1xx keep Proceeding, 2xx move to Accepted, 300-699 to Completed.
    pub fn send_response(
        &mut self,
        now: Instant,
        response: &Response,
    ) -> Result<(), TransactionError> {
        use ServerInviteState::*;
        let bytes = response.to_bytes();
        match (self.state, response.code) {
            (Proceeding, 100..=199) => {}
            (Proceeding, 200..=299) => {
                self.state = Accepted;
                self.timer_l = Some(now + self.timers.t1 * 64);
            }
            // RFC 6026 §7.1: the TU's own 2xx retransmissions pass through Accepted.
            (Accepted, 200..=299) => {}
            (Proceeding, 300..=699) => {
                self.state = Completed;
                self.g_interval = self.timers.t1;
                self.timer_g = Some(now + self.timers.t1);
                self.timer_h = Some(now + self.timers.t1 * 64);
            }
            (state, code) => {
                return Err(TransactionError::WrongState {
                    code,
                    state: format!("{state:?}"),
                });
            }
        }
        self.last_response = bytes.clone();
        self.outbox.transmit(bytes);
        Ok(())
    }

    /// Fires every timer due at or before `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.poll_timeout().filter(|&due| due <= now) {
            if self.timer_h == Some(due) {
                // The ACK never came.
                self.outbox.event(TransactionEvent::Timeout);
                self.terminate();
            } else if self.timer_g == Some(due) {
                self.outbox.transmit(self.last_response.clone());
                self.g_interval = (self.g_interval * 2).min(self.timers.t2);
                self.timer_g = Some(due + self.g_interval);
            } else if self.timer_i == Some(due) || self.timer_l == Some(due) {
                self.terminate();
            }
        }
    }

    /// When [`ServerInvite::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest([self.timer_g, self.timer_h, self.timer_i, self.timer_l])
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        [self.timer_g, self.timer_h, self.timer_i, self.timer_l] = [None; 4];
        self.outbox.event(TransactionEvent::Terminated);
    }
}

common_verbs!(ServerInvite, ServerInviteState);
