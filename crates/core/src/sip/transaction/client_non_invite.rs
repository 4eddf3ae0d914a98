//! The non-INVITE client transaction (RFC 3261 §17.1.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Outbox, Timers, TransactionEvent, earliest};
use crate::sip::message::{Request, Response};

/// States of [`ClientNonInvite`], named as in RFC 3261 Figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent; retransmitted on timer E (doubling to T2).
    Trying,
    /// A provisional arrived; retransmitted every T2.
    Proceeding,
    /// A final response arrived; its retransmissions are absorbed until timer K.
    Completed,
    /// Done.
    Terminated,
}

/// The non-INVITE client transaction over an unreliable transport.
///
/// RFC 3261 Figure 6:
///
/// ```text
///                                    |Request from TU
///                                    |send request
///                Timer E             V
///                send request  +-----------+
///                    +---------|           |-------------------+
///                    |         |  Trying   |  Timer F          |
///                    +-------->|           |  or Transport Err.|
///                              +-----------+  inform TU        |
///                 200-699         |  |                         |
///                 resp. to TU     |  |1xx                      |
///                 +---------------+  |resp. to TU              |
///                 |                  |                         |
///                 |   Timer E        V       Timer F           |
///                 |   send req +-----------+ or Transport Err. |
///                 |  +---------|           | inform TU         |
///                 |  |         |Proceeding |------------------>|
///                 |  +-------->|           |-----+             |
///                 |            +-----------+     |1xx          |
///                 |              |      ^        |resp to TU   |
///                 | 200-699      |      +--------+             |
///                 | resp. to TU  |                             |
///                 |              |                             |
///                 |              V                             |
///                 |            +-----------+                   |
///                 |            |           |                   |
///                 |            | Completed |                   |
///                 |            |           |                   |
///                 |            +-----------+                   |
///                 |              ^   |                         |
///                 |              |   | Timer K                 |
///                 +--------------+   | -                       |
///                                    |                         |
///                                    V                         |
///              NOTE:           +-----------+                   |
///                              |           |                   |
///          transitions         | Terminated|<------------------+
///          labeled with        |           |
///          the event           +-----------+
///          over the action
///          to take
/// ```
///
/// Timer E starts at T1 and doubles up to T2 in Trying (retransmissions at 0.5, 1.5, 3.5, 7.5,
/// 11.5, … s); once Proceeding, each firing re-arms it at T2. Timer F (64·T1) times out in
/// either state; timer K (T4) bounds Completed.
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    timers: Timers,
    request: Request,
    request_bytes: Bytes,
    timer_e: Option<Instant>,
    e_interval: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    outbox: Outbox,
}

impl ClientNonInvite {
    /// Starts the transaction: the request is queued for sending at once.
    pub fn new(now: Instant, request: Request, timers: Timers) -> ClientNonInvite {
        let request_bytes = request.to_bytes();
        ClientNonInvite {
            state: ClientNonInviteState::Trying,
            timers,
            request,
            request_bytes: request_bytes.clone(),
            timer_e: Some(now + timers.t1),
            e_interval: timers.t1,
            timer_f: Some(now + timers.t1 * 64),
            timer_k: None,
            outbox: Outbox::sending(request_bytes),
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// The request this transaction carries.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A response matched to this transaction (§17.1.3) arrived.
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        use ClientNonInviteState::*;
        match (self.state, response.code) {
            (Trying | Proceeding, 100..=199) => {
                // The pending timer E keeps its deadline; from its next firing on it is T2.
                self.state = Proceeding;
                self.outbox
                    .event(TransactionEvent::Response(response.clone()));
            }
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.timer_k = Some(now + self.timers.t4);
                self.outbox
                    .event(TransactionEvent::Response(response.clone()));
            }
            // Completed absorbs retransmitted finals; nothing reaches a terminated transaction.
            _ => {}
        }
    }

    /// Fires every timer due at or before `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.poll_timeout().filter(|&due| due <= now) {
            if self.timer_f == Some(due) {
                self.outbox.event(TransactionEvent::Timeout);
                self.terminate();
            } else if self.timer_e == Some(due) {
                self.outbox.transmit(self.request_bytes.clone());
                self.e_interval = match self.state {
                    ClientNonInviteState::Trying => (self.e_interval * 2).min(self.timers.t2),
                    _ => self.timers.t2,
                };
                self.timer_e = Some(due + self.e_interval);
            } else if self.timer_k == Some(due) {
                self.terminate();
            }
        }
    }

    /// When [`ClientNonInvite::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest([self.timer_e, self.timer_f, self.timer_k])
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        [self.timer_e, self.timer_f, self.timer_k] = [None; 3];
        self.outbox.event(TransactionEvent::Terminated);
    }
}

common_verbs!(ClientNonInvite, ClientNonInviteState);
