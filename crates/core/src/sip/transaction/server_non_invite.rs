//! The non-INVITE server transaction (RFC 3261 §17.2.2).

use std::time::Instant;

use bytes::Bytes;

use super::{Outbox, Timers, TransactionError, TransactionEvent};
use crate::sip::message::{Request, Response};

/// States of [`ServerNonInvite`], named as in RFC 3261 Figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent yet; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; retransmissions get it again.
    Proceeding,
    /// A final response was sent; retransmissions get it again until timer J.
    Completed,
    /// Done.
    Terminated,
}

/// The non-INVITE server transaction over an unreliable transport.
///
/// RFC 3261 Figure 8:
///
/// ```text
///                                   |Request received
///                                   |pass to TU
///                                   V
///                             +-----------+
///                             |           |
///                             | Trying    |-------------+
///                             |           |             |
///                             +-----------+             |200-699 from TU
///                                   |                   |send response
///                                   |1xx from TU        |
///                                   |send response      |
///                                   |                   |
///                Request            V      1xx from TU  |
///                send response+-----------+send response|
///                    +--------|           |--------+    |
///                    |        | Proceeding|        |    |
///                    +------->|           |<-------+    |
///             +<--------------|           |             |
///             |Trnsprt Err    +-----------+             |
///             |Inform TU            |                   |
///             |                     |                   |
///             |                     |200-699 from TU    |
///             |                     |send response      |
///             |  Request            V                   |
///             |  send response+-----------+             |
///             |      +--------|           |             |
///             |      |        | Completed |<------------+
///             |      +------->|           |
///             +<--------------|           |
///             |Trnsprt Err    +-----------+
///             |Inform TU            |
///             |                     |Timer J fires
///             |                     |-
///             |                     |
///             |                     V
///             |               +-----------+
///             |               |           |
///             +-------------->| Terminated|
///                             |           |
///                             +-----------+
/// ```
///
/// Timer J (64·T1 = 32 s) keeps the final response around for request retransmissions.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    timers: Timers,
    request: Request,
    last_response: Option<Bytes>,
    timer_j: Option<Instant>,
    outbox: Outbox,
}

impl ServerNonInvite {
    /// Creates the transaction for a new request (the TU gets the request from the layer).
    pub fn new(_now: Instant, request: Request, timers: Timers) -> ServerNonInvite {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            timers,
            request,
            last_response: None,
            timer_j: None,
            outbox: Outbox::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The request this transaction answers.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A retransmission of the request arrived.
    pub fn handle_request(&mut self, _now: Instant, _request: &Request) {
        match self.state {
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => {
                if let Some(r) = &self.last_response {
                    self.outbox.transmit(r.clone());
                }
            }
            // Trying: the TU has not answered yet, nothing to repeat; Terminated: gone.
            ServerNonInviteState::Trying | ServerNonInviteState::Terminated => {}
        }
    }

    /// The TU's response: 1xx → Proceeding, 200-699 → Completed.
    pub fn send_response(
        &mut self,
        now: Instant,
        response: &Response,
    ) -> Result<(), TransactionError> {
        use ServerNonInviteState::*;
        match (self.state, response.code) {
            (Trying | Proceeding, 100..=199) => self.state = Proceeding,
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                self.timer_j = Some(now + self.timers.t1 * 64);
            }
            (state, code) => {
                return Err(TransactionError::WrongState {
                    code,
                    state: format!("{state:?}"),
                });
            }
        }
        let bytes = response.to_bytes();
        self.last_response = Some(bytes.clone());
        self.outbox.transmit(bytes);
        Ok(())
    }

    /// Fires timer J when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_j.is_some_and(|j| j <= now) {
            self.terminate();
        }
    }

    /// When [`ServerNonInvite::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_j
    }

    fn terminate(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.timer_j = None;
        self.outbox.event(TransactionEvent::Terminated);
    }
}

common_verbs!(ServerNonInvite, ServerNonInviteState);
