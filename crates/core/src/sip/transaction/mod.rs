//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted states), sans-IO, over UDP.
//!
//! Owns the four transaction machines ([`ClientInvite`] §17.1.1, [`ClientNonInvite`] §17.1.2,
//! [`ServerInvite`] §17.2.1, [`ServerNonInvite`] §17.2.2), their timers A-M on injected time
//! (§17.1.1.2, Table 4), and the [`TransactionLayer`] that matches requests and responses to
//! transactions (§17.1.3, §17.2.3) and finds the INVITE a CANCEL targets (§9.2).
//!
//! Every machine has the same verbs: `handle_*(now, input)`, `poll_transmit()`, `poll_event()`,
//! `poll_timeout()` and `handle_timeout(now)`. Nothing here reads a clock or touches a socket:
//! time is whatever `Instant` the caller passes, which is what makes the timer tests exact.
//!
//! What is not here: ACK for 2xx and 2xx retransmission belong to the TU/dialog (§13.3.1.4,
//! §17.2.1); the layer reports ACKs and responses it cannot match instead of dropping them.

/// The verbs that are the same in every machine, given its type and state enum: the output
/// side (`poll_transmit`, `poll_event`, which drain its `outbox`: an [`Outbox`]) and the
/// transport error, which every figure of §17 handles alike: inform the TU, go to Terminated
/// (through the machine's own `terminate`, which knows its timers).
macro_rules! common_verbs {
    ($machine:ty, $state:ident) => {
        impl $machine {
            /// The transport could not send (e.g. ICMP unreachable): inform the TU and stop.
            pub fn handle_transport_error(&mut self, _now: ::std::time::Instant) {
                if self.state != $state::Terminated {
                    self.outbox
                        .event($crate::sip::transaction::TransactionEvent::TransportError);
                    self.terminate();
                }
            }

            /// Next datagram to send to the transaction's peer.
            pub fn poll_transmit(&mut self) -> Option<::bytes::Bytes> {
                self.outbox.poll_transmit()
            }

            /// Next event for the TU.
            pub fn poll_event(&mut self) -> Option<$crate::sip::transaction::TransactionEvent> {
                self.outbox.poll_event()
            }
        }
    };
}

mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};

use crate::sip::message::{MAGIC_COOKIE, Method, Request, Response};

/// What a sans-IO machine has produced and not yet handed out: datagrams to send and events
/// for the TU, each in order. A machine's is `Outbox<Bytes, TransactionEvent>`; the
/// [`TransactionLayer`] keeps one of addressed datagrams and keyed events for all its machines.
#[derive(Debug)]
struct Outbox<T = Bytes, E = TransactionEvent> {
    transmits: VecDeque<T>,
    events: VecDeque<E>,
}

impl<T, E> Default for Outbox<T, E> {
    fn default() -> Self {
        Outbox {
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }
}

impl<T, E> Outbox<T, E> {
    /// An outbox with `first` already queued for sending.
    fn sending(first: T) -> Self {
        let mut outbox = Outbox::default();
        outbox.transmit(first);
        outbox
    }

    fn transmit(&mut self, datagram: T) {
        self.transmits.push_back(datagram);
    }

    fn event(&mut self, event: E) {
        self.events.push_back(event);
    }

    fn poll_transmit(&mut self) -> Option<T> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<E> {
        self.events.pop_front()
    }
}

/// The earliest of a machine's armed timers: what its `poll_timeout` reports.
fn earliest<const N: usize>(timers: [Option<Instant>; N]) -> Option<Instant> {
    timers.into_iter().flatten().min()
}

/// Timer base values (RFC 3261 §17.1.1.1 and Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate: first retransmission interval; 64·T1 is timers B, F, H, J, L, M.
    pub t1: Duration,
    /// Cap of the non-INVITE and final-response retransmission interval.
    pub t2: Duration,
    /// Longest time a message stays in the network: timers I and K.
    pub t4: Duration,
    /// Timer D: how long a client INVITE transaction re-ACKs final responses (≥ 32 s on UDP).
    pub timer_d: Duration,
}

impl Default for Timers {
    /// T1 = 500 ms, T2 = 4 s, T4 = 5 s, D = 32 s.
    fn default() -> Timers {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

/// What a transaction tells its TU.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionEvent {
    /// Client: a response to pass up (provisionals, the final response, and in Accepted every
    /// 2xx retransmission, which the TU must ACK again).
    Response(Response),
    /// Server INVITE in Accepted: an ACK that matched the transaction (RFC 6026 §7.1).
    Ack(Request),
    /// Timer B or F (no final response) or H (no ACK for our final response).
    Timeout,
    /// The transport reported a failure.
    TransportError,
    /// The transaction is over and can be forgotten.
    Terminated,
}

/// Refused transaction-layer operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The request has no top Via branch, so no transaction can be keyed on it.
    #[error("request has no Via branch")]
    NoBranch,
    /// ACK is never a client transaction of its own (§17.1.1.3, §13.2.2.4).
    #[error("ACK does not start a transaction")]
    AckIsNotATransaction,
    /// A transaction with this key exists already.
    #[error("transaction {branch} {method} already exists")]
    Duplicate {
        /// Its branch.
        branch: String,
        /// Its method.
        method: String,
    },
    /// No transaction with this key (terminated, or never existed).
    #[error("no transaction {branch} {method}")]
    Unknown {
        /// The branch asked for.
        branch: String,
        /// The method asked for.
        method: String,
    },
    /// The response cannot be sent in the transaction's state (e.g. a second final).
    #[error("cannot send {code} in state {state}")]
    WrongState {
        /// The response code.
        code: u16,
        /// The transaction's state.
        state: String,
    },
}

/// Which side of a transaction we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// We sent the request.
    Client,
    /// We received it.
    Server,
}

/// Identifies a transaction: top-Via branch plus method (ACK counts as INVITE), and on the
/// server side the top Via's sent-by too (§17.2.3: two clients may pick the same branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Client or server.
    pub side: Side,
    /// The branch (or, for an RFC 2543 peer without the magic cookie, a stand-in built from
    /// Call-ID, From tag, CSeq number and sent-by).
    pub branch: String,
    /// The method; ACK is folded into INVITE so a non-2xx ACK finds its INVITE.
    pub method: Method,
    /// Server side: the top Via's sent-by, lower-cased. Client side: `None`.
    pub sent_by: Option<String>,
}

fn key_method(method: &Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        other => other.clone(),
    }
}

impl TransactionKey {
    /// The server transaction a received request belongs to (§17.2.3).
    pub fn server(request: &Request) -> Option<TransactionKey> {
        let via = request.top_via()?;
        let sent_by = via.sent_by.to_ascii_lowercase();
        let branch = match via.branch {
            // A bare cookie promises a unique branch but holds none (RFC 4475 §3.2.1): keyed
            // on it, every such request from one sent-by would look like a retransmission of
            // the first.
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => b,
            // RFC 2543 peers (and the bare cookie): the fields §17.2.3 falls back to, minus the
            // To tag (which the ACK for a non-2xx carries and the INVITE did not).
            _ => {
                let cseq = request.cseq()?;
                format!(
                    "rfc2543;{};{};{};{}",
                    request.call_id()?,
                    request.from_tag().unwrap_or_default(),
                    cseq.seq,
                    sent_by
                )
            }
        };
        Some(TransactionKey {
            side: Side::Server,
            branch,
            method: key_method(&request.method),
            sent_by: Some(sent_by),
        })
    }

    /// The client transaction a request we send belongs to.
    pub fn client(request: &Request) -> Option<TransactionKey> {
        Some(TransactionKey {
            side: Side::Client,
            branch: request.branch()?,
            method: key_method(&request.method),
            sent_by: None,
        })
    }

    /// The client transaction a received response belongs to (§17.1.3: branch + CSeq method).
    pub fn for_response(response: &Response) -> Option<TransactionKey> {
        Some(TransactionKey {
            side: Side::Client,
            branch: response.branch()?,
            method: key_method(&response.cseq()?.method),
            sent_by: None,
        })
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transaction it belongs to.
    pub key: TransactionKey,
    /// Where to send it: the request's source for server transactions (symmetric response
    /// routing, RFC 3581 style), the destination given for client transactions.
    pub destination: SocketAddr,
    /// The bytes.
    pub payload: Bytes,
}

/// What [`TransactionLayer::handle_request`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A new server transaction was created; the TU must answer it through
    /// [`TransactionLayer::respond`].
    New {
        /// The transaction.
        key: TransactionKey,
        /// The request.
        request: Request,
    },
    /// A retransmission or non-2xx ACK, absorbed by its transaction (it may have resent a
    /// response, or emitted an [`TransactionEvent::Ack`]).
    Absorbed {
        /// The transaction.
        key: TransactionKey,
    },
    /// An ACK matching no transaction: the ACK for a 2xx, which is the dialog's (§17.2.1).
    Ack(Request),
}

/// What [`TransactionLayer::handle_response`] did with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseMatch {
    /// Given to its client transaction (events follow through `poll_event`).
    Matched(TransactionKey),
    /// No transaction: e.g. a 2xx retransmission after timer M, which the TU ACKs (§13.2.2.4).
    Unmatched(Response),
}

// The variants are the RFC's four machines, whose names all happen to end in "Invite".
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

macro_rules! each {
    ($m:expr, $x:ident => $e:expr) => {
        match $m {
            Machine::ClientInvite($x) => $e,
            Machine::ClientNonInvite($x) => $e,
            Machine::ServerInvite($x) => $e,
            Machine::ServerNonInvite($x) => $e,
        }
    };
}

#[derive(Debug)]
struct Entry {
    peer: SocketAddr,
    machine: Machine,
    terminated: bool,
}

/// All live transactions of an endpoint, keyed and matched per §17.1.3 / §17.2.3.
///
/// Sans-IO like the machines: feed it parsed messages with the time and source, drain
/// [`TransactionLayer::poll_transmit`] and [`TransactionLayer::poll_event`] after each input,
/// and call [`TransactionLayer::handle_timeout`] at [`TransactionLayer::poll_timeout`].
/// Terminated transactions are dropped once their `Terminated` event is queued.
#[derive(Debug, Default)]
pub struct TransactionLayer {
    timers: Timers,
    entries: HashMap<TransactionKey, Entry>,
    outbox: Outbox<Transmit, (TransactionKey, TransactionEvent)>,
}

impl TransactionLayer {
    /// An empty layer with the given timer values.
    pub fn new(timers: Timers) -> TransactionLayer {
        TransactionLayer {
            timers,
            ..TransactionLayer::default()
        }
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is live.
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.entries.contains_key(key)
    }

    /// A request arrived from `source`.
    pub fn handle_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        request: Request,
    ) -> Result<Incoming, TransactionError> {
        let key = TransactionKey::server(&request).ok_or(TransactionError::NoBranch)?;
        if let Some(entry) = self.entries.get_mut(&key) {
            match &mut entry.machine {
                Machine::ServerInvite(m) => m.handle_request(now, &request),
                Machine::ServerNonInvite(m) => m.handle_request(now, &request),
                // Server keys never map to client machines.
                _ => {}
            }
            self.drain(&key);
            return Ok(Incoming::Absorbed { key });
        }
        let machine = match request.method {
            Method::Ack => return Ok(Incoming::Ack(request)),
            Method::Invite => {
                Machine::ServerInvite(ServerInvite::new(now, request.clone(), self.timers))
            }
            _ => Machine::ServerNonInvite(ServerNonInvite::new(now, request.clone(), self.timers)),
        };
        self.entries.insert(
            key.clone(),
            Entry {
                peer: source,
                machine,
                terminated: false,
            },
        );
        self.drain(&key);
        Ok(Incoming::New { key, request })
    }

    /// The INVITE server transaction a received CANCEL targets (§9.2: same branch and sent-by,
    /// method INVITE), if it is still live.
    pub fn cancel_target(&self, cancel: &Request) -> Option<TransactionKey> {
        let mut key = TransactionKey::server(cancel)?;
        key.method = Method::Invite;
        self.entries.contains_key(&key).then_some(key)
    }

    /// The TU answers a server transaction.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: &Response,
    ) -> Result<(), TransactionError> {
        let entry = self.entries.get_mut(key).ok_or_else(|| unknown(key))?;
        match &mut entry.machine {
            Machine::ServerInvite(m) => m.send_response(now, response)?,
            Machine::ServerNonInvite(m) => m.send_response(now, response)?,
            _ => return Err(unknown(key)),
        }
        self.drain(key);
        Ok(())
    }

    /// The TU sends a request to `destination` through a new client transaction.
    pub fn send_request(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        request: Request,
    ) -> Result<TransactionKey, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::AckIsNotATransaction);
        }
        let key = TransactionKey::client(&request).ok_or(TransactionError::NoBranch)?;
        if self.entries.contains_key(&key) {
            return Err(TransactionError::Duplicate {
                branch: key.branch,
                method: key.method.to_string(),
            });
        }
        let machine = if request.method == Method::Invite {
            Machine::ClientInvite(ClientInvite::new(now, request, self.timers))
        } else {
            Machine::ClientNonInvite(ClientNonInvite::new(now, request, self.timers))
        };
        self.entries.insert(
            key.clone(),
            Entry {
                peer: destination,
                machine,
                terminated: false,
            },
        );
        self.drain(&key);
        Ok(key)
    }

    /// A response arrived.
    pub fn handle_response(&mut self, now: Instant, response: Response) -> ResponseMatch {
        let Some(key) = TransactionKey::for_response(&response) else {
            return ResponseMatch::Unmatched(response);
        };
        match self.entries.get_mut(&key).map(|e| &mut e.machine) {
            Some(Machine::ClientInvite(m)) => m.handle_response(now, &response),
            Some(Machine::ClientNonInvite(m)) => m.handle_response(now, &response),
            _ => return ResponseMatch::Unmatched(response),
        }
        self.drain(&key);
        ResponseMatch::Matched(key)
    }

    /// The transport failed to deliver a datagram of `key`.
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) {
        if let Some(entry) = self.entries.get_mut(key) {
            each!(&mut entry.machine, m => m.handle_transport_error(now));
            self.drain(key);
        }
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TransactionKey> = self
            .entries
            .iter()
            .filter(|(_, e)| each!(&e.machine, m => m.poll_timeout()).is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(entry) = self.entries.get_mut(&key) {
                each!(&mut entry.machine, m => m.handle_timeout(now));
                self.drain(&key);
            }
        }
    }

    /// The earliest timer of all transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| each!(&e.machine, m => m.poll_timeout()))
            .min()
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.poll_transmit()
    }

    /// Next event for the TU.
    pub fn poll_event(&mut self) -> Option<(TransactionKey, TransactionEvent)> {
        self.outbox.poll_event()
    }

    /// Moves a machine's output into the layer's queues and forgets it once terminated.
    fn drain(&mut self, key: &TransactionKey) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        while let Some(payload) = each!(&mut entry.machine, m => m.poll_transmit()) {
            self.outbox.transmit(Transmit {
                key: key.clone(),
                destination: entry.peer,
                payload,
            });
        }
        while let Some(event) = each!(&mut entry.machine, m => m.poll_event()) {
            entry.terminated |= event == TransactionEvent::Terminated;
            self.outbox.event((key.clone(), event));
        }
        if entry.terminated {
            self.entries.remove(key);
        }
    }
}

fn unknown(key: &TransactionKey) -> TransactionError {
    TransactionError::Unknown {
        branch: key.branch.clone(),
        method: key.method.to_string(),
    }
}
