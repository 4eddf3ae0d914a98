//! The outbound INVITE client (RFC 3261 §8.1, §9.1, §13.2, §22) for the callback call: the web
//! portal asks hotdesk to ring a desk phone, and when it is answered an IVR runs there.
//!
//! [`Outbound`] is the transaction user (TU) of one outgoing INVITE, sans-IO like the rest of
//! the SIP core: it never owns a socket, a clock or the [`TransactionLayer`]. The endpoint owns
//! those and moves messages between them:
//!
//! - [`Outbound::poll_request`]: INVITE (the first, and one per answered challenge), CANCEL and
//!   BYE, each to send through a **new** client transaction
//!   ([`TransactionLayer::send_request`]);
//! - [`Outbound::poll_raw`]: the ACKs for 2xx responses, which are not transactions of their own
//!   (§13.2.2.4, §17.1.1.3) and go straight to the socket;
//! - [`Outbound::handle_transaction_event`]: what the transaction layer reports for this call's
//!   transactions (responses, timer B, transport errors);
//! - [`Outbound::handle_response`]: responses that matched no transaction (2xx retransmissions
//!   after the transaction ended, §13.2.2.4) — the endpoint routes those by Call-ID;
//! - [`Outbound::poll_timeout`] / [`Outbound::handle_timeout`]: the ring timeout (our "timer C"),
//!   the §9.1 wait for the 487 after a CANCEL, and how long 2xx retransmissions are re-ACKed;
//! - [`Outbound::poll_event`]: what happened, ending with exactly one final outcome.
//!
//! ```text
//!            start: INVITE ──► 1xx: Trying / Ringing ──► 2xx: ACK ─────────► Answered
//!              │    │                  │                 3xx-6xx ────────► Busy / Failed
//!              │    │ 401/407          │ ring timeout or cancel()
//!              │    ▼                  ▼
//!              │  INVITE with       CANCEL (only once a provisional arrived, §9.1)
//!              │  credentials          │ 487 (or no final in 64·T1) ────► NoAnswer / Cancelled
//!              │  (CSeq+1)             │ 2xx that crossed it: ACK + BYE ► NoAnswer / Cancelled
//!              ▼
//!   timer B / transport error ────────────────────────────────────────► Failed 408 / 503
//! ```
//!
//! Every request goes to the outbound proxy address the shell resolved (the PBX the desk phones
//! register with): the INVITE, and also the in-dialog ACK and BYE, whose Request-URI is the
//! dialog's remote target. hotdesk has no DNS of its own in the core, and the PBX is where the
//! phone's Contact is reachable from.
//!
//! Digest authentication (RFC 3261 §22, RFC 2617, RFC 7616 MD5 and SHA-256, `qop=auth`) is
//! computed by the `digest_auth` crate; this module chooses which challenge to answer, bounds
//! the retries and guards the crate against input it would mishandle (see [`authorization`]).
//!
//! [`TransactionLayer`]: crate::sip::transaction::TransactionLayer
//! [`TransactionLayer::send_request`]: crate::sip::transaction::TransactionLayer::send_request

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use digest_auth::{AuthContext, HttpMethod, Qop, WwwAuthenticateHeader};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sip::dialog::Dialog;
use crate::sip::message::{
    self, Method, ParseError, Request, Response, cancel_for, new_branch, new_tag,
};
use crate::sip::sdp::{self, Codec, Local, Negotiated};
use crate::sip::transaction::{TransactionEvent, TransactionKey};

/// Max-Forwards of the INVITE (RFC 3261 §8.1.1.6 recommends 70).
const MAX_FORWARDS: &str = "70";

/// Packet time we offer, ms: what every G.711 desk phone does by default.
const PTIME: u32 = 20;

/// Methods we accept in the dialog the call creates (the UAS [`crate::call::Call`] serves them).
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";

/// Most INVITEs with credentials we send for one call. Each needs a challenge with a new
/// nonce, so this only bounds a server that keeps answering `stale=true`.
const MAX_AUTH_ROUNDS: u32 = 4;

/// The user name and password hotdesk authenticates with when the PBX challenges the INVITE.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Digest user name.
    pub user: String,
    /// Digest password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    /// The password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything the outbound call needs to know, resolved by the shell.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Whom to ring: Request-URI and To URI, e.g. `sip:5401@pbx.example.com`.
    pub target_uri: String,
    /// Our identity: the From URI, e.g. `sip:hotdesk@pbx.example.com`.
    pub from_uri: String,
    /// Our Contact URI, e.g. `sip:hotdesk@192.0.2.10:5060`: where the phone sends BYE.
    pub contact: String,
    /// Our Via sent-by (`host:port`).
    pub sent_by: String,
    /// Where every request of the call goes: the outbound proxy / PBX, already resolved.
    pub proxy: SocketAddr,
    /// Answer 401/407 challenges with these; without, a challenge ends the call.
    pub credentials: Option<Credentials>,
    /// How long the phone may ring (from [`Outbound::start`]) before we CANCEL.
    pub ring_timeout: Duration,
    /// Codecs we offer, in preference order; must not be empty.
    pub codecs: Vec<Codec>,
    /// Payload type of `telephone-event` in our offer (101 by convention).
    pub event_payload_type: u8,
    /// Our RTP address as advertised in the SDP offer.
    pub local_rtp: SocketAddr,
    /// User-Agent header value.
    pub agent: String,
    /// Call-ID to use (the portal may want to correlate); a random one when `None`.
    pub call_id: Option<String>,
    /// RFC 3261 T1: after a CANCEL we wait 64·T1 for the INVITE's final response (§9.1), and
    /// 2xx retransmissions are re-ACKed for 64·T1 (RFC 6026 timer M).
    pub t1: Duration,
}

/// Why [`Outbound::start`] refused the settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// An offer without a voice codec cannot be answered.
    #[error("no codec to offer")]
    NoCodecs,
    /// The INVITE built from the settings does not pass our own parser (a bad URI, a
    /// sent-by with spaces, …): a peer would refuse it too.
    #[error("the INVITE would be invalid: {0}")]
    InvalidInvite(#[from] ParseError),
}

/// Why a challenge could not be answered. The text goes into logs and the `Failed` reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Another scheme than Digest (e.g. Basic, which SIP forbids, RFC 3261 §22.1).
    #[error("not a Digest challenge")]
    NotDigest,
    /// `digest_auth` indexes its input by characters as if they were bytes, so anything but
    /// ASCII could make it panic; challenge parameters are ASCII in practice (RFC 7616 §3.3).
    #[error("challenge is not ASCII")]
    NotAscii,
    /// Unparseable, or a required parameter (realm, nonce) is missing, or an unknown algorithm.
    #[error("bad challenge: {0}")]
    Malformed(String),
    /// `qop` is offered but not `auth` (only `auth-int`): we do not sign bodies.
    #[error("challenge offers no qop=auth")]
    NoQopAuth,
}

/// What the callback has come to. The last event is always exactly one of `Answered`, `Busy`,
/// `NoAnswer`, `Cancelled` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundEvent {
    /// `100 Trying` (reported once): the PBX has the INVITE.
    Trying,
    /// 180 Ringing or 183 Session Progress (each time one arrives).
    Ringing {
        /// 180, 181, 182 or 183.
        code: u16,
    },
    /// The phone answered and the 2xx is ACKed: the dialog is confirmed and media can flow.
    Answered(Box<Answered>),
    /// 486 Busy Here, 600 Busy Everywhere or 603 Decline: the person is there but not free.
    Busy {
        /// The status code.
        code: u16,
    },
    /// Nobody answered within the ring timeout: the INVITE was cancelled (a 2xx that crossed
    /// the CANCEL was ACKed and hung up with BYE).
    NoAnswer,
    /// [`Outbound::cancel`] ended the attempt before an answer.
    Cancelled,
    /// Any other end: the final status code and reason phrase, 408 for timer B (no response
    /// at all, §8.1.3.1), 503 for a transport error (§8.1.3.1), 488 for a 2xx whose SDP answer
    /// is unusable (we ACK and BYE it), 502 for a 2xx from which no dialog can be built.
    Failed {
        /// The status code.
        code: u16,
        /// The reason phrase, or what was wrong.
        reason: String,
    },
}

/// An answered callback: everything the media session and the IVR need.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    /// The confirmed dialog; BYE and in-dialog requests are built from it.
    pub dialog: Dialog,
    /// The codec, telephone-event and remote RTP address agreed.
    pub negotiated: Negotiated,
    /// The 2xx itself (its SDP answer, Server header, …).
    pub answer: Response,
    /// Our side of the session as offered (a re-INVITE's answer keeps its o= session id).
    pub local: Local,
    /// Our offer: the session description we keep answering with.
    pub offer: String,
}

/// Why the CANCEL is wanted: decides between `NoAnswer` and `Cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelCause {
    RingTimeout,
    Caller,
}

impl CancelCause {
    fn outcome(self) -> OutboundEvent {
        match self {
            CancelCause::RingTimeout => OutboundEvent::NoAnswer,
            CancelCause::Caller => OutboundEvent::Cancelled,
        }
    }
}

/// A challenge we answer: which header carries the answer, and the parsed challenge (whose
/// `nc` the crate counts up each time we answer it).
#[derive(Debug, Clone)]
struct AuthEntry {
    /// `Authorization` (for WWW-Authenticate) or `Proxy-Authorization`.
    header: &'static str,
    challenge: WwwAuthenticateHeader,
}

/// One outgoing INVITE and its outcome, sans-IO. See the module documentation for the flow.
#[derive(Debug)]
pub struct Outbound {
    settings: OutboundSettings,
    call_id: String,
    from_tag: String,
    /// CSeq number of the current INVITE.
    cseq: u32,
    /// The INVITE last sent: the one responses, CANCEL and the 2xx dialog refer to.
    invite: Request,
    offer: Bytes,
    /// Our RTP address and o= numbers, as in the offer.
    local: Local,
    /// For cnonces: seeded from the caller's RNG, so tests are reproducible.
    rng: ChaCha8Rng,
    /// Challenges answered on every INVITE from now on, one per (header, realm).
    auth: Vec<AuthEntry>,
    /// (header, realm, nonce) already answered: answering one again would loop.
    answered_nonces: HashSet<(&'static str, String, String)>,
    auth_rounds: u32,
    /// The current INVITE's transaction has seen a provisional: CANCEL is allowed (§9.1).
    provisional: bool,
    trying_reported: bool,
    cancel: Option<CancelCause>,
    cancel_sent: bool,
    ring_deadline: Option<Instant>,
    /// §9.1: no final response 64·T1 after the CANCEL → consider the INVITE cancelled.
    cancel_deadline: Option<Instant>,
    /// ACK per To tag for every 2xx we accepted, resent for each retransmission.
    acks: Vec<(String, Bytes)>,
    /// Until when 2xx retransmissions are expected (64·T1 after the last new 2xx).
    linger_until: Option<Instant>,
    /// The final outcome has been reported.
    finished: bool,
    requests: VecDeque<(SocketAddr, Request)>,
    raw: VecDeque<(SocketAddr, Bytes)>,
    events: VecDeque<OutboundEvent>,
}

impl Outbound {
    /// Builds the first INVITE (with our SDP offer) and queues it; arms the ring timeout.
    pub fn start<R: Rng + ?Sized>(
        now: Instant,
        settings: OutboundSettings,
        rng: &mut R,
    ) -> Result<Outbound, SettingsError> {
        if settings.codecs.is_empty() {
            return Err(SettingsError::NoCodecs);
        }
        let call_id = settings
            .call_id
            .clone()
            .unwrap_or_else(|| format!("{:032x}", rng.random::<u128>()));
        let local = Local {
            rtp: settings.local_rtp,
            session_id: u64::from(rng.random::<u32>()),
            session_version: 1,
        };
        let offer = Bytes::from(sdp::offer(
            &settings.codecs,
            settings.event_payload_type,
            PTIME,
            &local,
        ));
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut outbound = Outbound {
            call_id,
            from_tag: new_tag(),
            cseq: 1,
            invite: Request::new(Method::Invite, &settings.target_uri),
            offer,
            local,
            rng: ChaCha8Rng::from_seed(seed),
            auth: Vec::new(),
            answered_nonces: HashSet::new(),
            auth_rounds: 0,
            provisional: false,
            trying_reported: false,
            cancel: None,
            cancel_sent: false,
            ring_deadline: Some(now + settings.ring_timeout),
            cancel_deadline: None,
            acks: Vec::new(),
            linger_until: None,
            finished: false,
            requests: VecDeque::new(),
            raw: VecDeque::new(),
            events: VecDeque::new(),
            settings,
        };
        let invite = outbound.base_invite();
        // What we send must pass our own parser: a peer would refuse it otherwise.
        message::parse(&invite.to_bytes())?;
        outbound.send_invite(invite);
        Ok(outbound)
    }

    /// The Call-ID (the endpoint routes this call's responses by it).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The INVITE last sent (CSeq 1, or one more per answered challenge).
    pub fn invite(&self) -> &Request {
        &self.invite
    }

    /// Whether the final outcome was reported and no 2xx retransmission needs an ACK any more:
    /// the endpoint can forget the call's routing entry.
    pub fn is_done(&self) -> bool {
        self.finished && self.linger_until.is_none()
    }

    /// Next request to send through a new client transaction, and where.
    pub fn poll_request(&mut self) -> Option<(SocketAddr, Request)> {
        self.requests.pop_front()
    }

    /// Next datagram to send as is (ACK for a 2xx), and where.
    pub fn poll_raw(&mut self) -> Option<(SocketAddr, Bytes)> {
        self.raw.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<OutboundEvent> {
        self.events.pop_front()
    }

    /// When [`Outbound::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.ring_deadline, self.cancel_deadline, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires whatever is due at `now`: the ring timeout (CANCEL), the end of the wait for the
    /// cancelled INVITE's final response, the end of 2xx re-ACKing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ring_deadline.is_some_and(|t| t <= now) {
            self.ring_deadline = None;
            self.request_cancel(now, CancelCause::RingTimeout);
        }
        if self.cancel_deadline.is_some_and(|t| t <= now) {
            self.cancel_deadline = None;
            // §9.1: "If there is no final response for the original request in 64*T1
            // seconds, the client SHOULD then consider the original transaction cancelled".
            if let Some(cause) = self.cancel {
                self.finish(cause.outcome());
            }
        }
        if self.linger_until.is_some_and(|t| t <= now) {
            self.linger_until = None;
            self.acks.clear();
        }
    }

    /// The caller gives up (portal request withdrawn, server draining): CANCEL the INVITE,
    /// once a provisional has arrived (§9.1), and report `Cancelled`. No effect once the call
    /// is answered (the dialog is then the caller's to BYE) or over.
    pub fn cancel(&mut self, now: Instant) {
        self.request_cancel(now, CancelCause::Caller);
    }

    /// An event of one of this call's client transactions, as the transaction layer reports
    /// it with its key. Responses are handled as [`Outbound::handle_response`] does; timer B
    /// or a transport error on the current INVITE ends the call (§8.1.3.1: 408 and 503).
    /// Events of other transactions (the CANCEL's, the BYE's, an earlier INVITE's) change
    /// nothing: the INVITE's own outcome or the §9.1 deadline decides.
    pub fn handle_transaction_event(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        event: TransactionEvent,
    ) {
        let current_invite =
            key.method == Method::Invite && self.invite.branch().as_deref() == Some(&key.branch);
        match event {
            TransactionEvent::Response(response) => self.handle_response(now, &response),
            TransactionEvent::Timeout if current_invite => {
                self.give_up(408, "Request Timeout");
            }
            TransactionEvent::TransportError if current_invite => {
                self.give_up(503, "Service Unavailable (transport error)");
            }
            _ => {}
        }
    }

    /// A response for this call: from its INVITE transactions, or a 2xx retransmission that
    /// matched no transaction any more (§13.2.2.4: the TU ACKs every one).
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        if response.call_id() != Some(self.call_id.as_str()) {
            return;
        }
        let Some(cseq) = response.cseq() else {
            return;
        };
        // Responses to CANCEL and BYE carry nothing to act on: the INVITE's 487 (or the §9.1
        // deadline) ends a cancelled call, and a BYE is ours to forget.
        if cseq.method != Method::Invite {
            return;
        }
        let code = response.code;
        if (200..300).contains(&code) {
            self.handle_2xx(now, response, cseq.seq);
            return;
        }
        // Anything for an earlier INVITE (answered with credentials since) or after the end.
        if cseq.seq != self.cseq || self.finished {
            return;
        }
        match code {
            100..=199 => self.handle_provisional(now, code),
            401 | 407 if self.cancel.is_none() => self.handle_challenge(response),
            _ => {
                // The transaction has ACKed it already (§17.1.1.3).
                let event = match (self.cancel, code) {
                    (Some(cause), _) if self.cancel_sent || code == 487 => cause.outcome(),
                    // A challenge while a CANCEL waits for a provisional: stop here.
                    (Some(cause), 401 | 407) => cause.outcome(),
                    (_, 486 | 600 | 603) => OutboundEvent::Busy { code },
                    _ => OutboundEvent::Failed {
                        code,
                        reason: response.reason.clone(),
                    },
                };
                self.finish(event);
            }
        }
    }

    fn handle_provisional(&mut self, now: Instant, code: u16) {
        self.provisional = true;
        if code == 100 {
            if !self.trying_reported {
                self.trying_reported = true;
                self.events.push_back(OutboundEvent::Trying);
            }
        } else {
            self.events.push_back(OutboundEvent::Ringing { code });
        }
        // §9.1: the CANCEL waited for this.
        if self.cancel.is_some() && !self.cancel_sent {
            self.send_cancel(now);
        }
    }

    fn handle_2xx(&mut self, now: Instant, response: &Response, seq: u32) {
        let tag = response.to_tag().unwrap_or_default();
        if let Some((_, ack)) = self.acks.iter().find(|(t, _)| *t == tag) {
            // A retransmission: our ACK was lost (§13.2.2.4: ACK every 2xx).
            self.raw.push_back((self.settings.proxy, ack.clone()));
            return;
        }
        if seq != self.cseq {
            // A challenged INVITE never gets a 2xx; without its request there is no dialog
            // to ACK from.
            tracing::warn!(call_id = %self.call_id, seq, "2xx for an INVITE we replaced");
            return;
        }
        let mut dialog = match Dialog::uac(&self.invite, response) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, "unusable 2xx: {e}");
                if !self.finished {
                    self.finish(OutboundEvent::Failed {
                        code: 502,
                        reason: format!("unusable 2xx: {e}"),
                    });
                }
                return;
            }
        };
        let mut ack = match dialog.request(Method::Ack, &self.settings.sent_by, None) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, "cannot build ACK: {e}");
                return;
            }
        };
        // §13.2.2.4: "The ACK MUST contain the same credentials as the INVITE."
        for name in ["Authorization", "Proxy-Authorization"] {
            for value in self.invite.headers.get_all(name) {
                ack.headers.push(name, value);
            }
        }
        let bytes = ack.to_bytes();
        self.raw.push_back((self.settings.proxy, bytes.clone()));
        self.acks.push((tag, bytes));
        self.linger_until = Some(now + self.settings.t1 * 64);

        if self.finished {
            // Another fork answered too, or the call already ended: hang this one up.
            self.bye(&mut dialog);
            return;
        }
        if let Some(cause) = self.cancel {
            // The 2xx crossed our CANCEL (or beat the provisional it waited for).
            self.bye(&mut dialog);
            self.finish(cause.outcome());
            return;
        }
        match negotiate_answer(response, &self.settings.codecs) {
            Ok(negotiated) => self.finish(OutboundEvent::Answered(Box::new(Answered {
                dialog,
                negotiated,
                answer: response.clone(),
                local: self.local,
                offer: String::from_utf8_lossy(&self.offer).into_owned(),
            }))),
            Err(reason) => {
                self.bye(&mut dialog);
                self.finish(OutboundEvent::Failed { code: 488, reason });
            }
        }
    }

    /// 401/407 (§22.2, §22.3): answer each realm's challenge once; a new nonce for a realm we
    /// answered is only accepted with `stale=true` (our password was right, the nonce old);
    /// otherwise the credentials were refused and asking again would loop.
    fn handle_challenge(&mut self, response: &Response) {
        let code = response.code;
        let refuse = |this: &mut Outbound, why: &str| {
            tracing::warn!(call_id = %this.call_id, code, "authentication failed: {why}");
            this.finish(OutboundEvent::Failed {
                code,
                reason: response.reason.clone(),
            });
        };
        if self.settings.credentials.is_none() {
            refuse(self, "challenged, and no credentials are configured");
            return;
        }
        let mut fresh: Vec<AuthEntry> = Vec::new();
        let mut last_error = None;
        for (challenge_header, answer_header) in [
            ("WWW-Authenticate", "Authorization"),
            ("Proxy-Authenticate", "Proxy-Authorization"),
        ] {
            for value in response.headers.get_all(challenge_header) {
                match parse_challenge(value) {
                    // RFC 8760 §2.4: of several challenges for one realm, use the topmost we
                    // support (the server lists them in its order of preference).
                    Ok(challenge) => {
                        if !fresh.iter().any(|e| {
                            e.header == answer_header && e.challenge.realm == challenge.realm
                        }) {
                            fresh.push(AuthEntry {
                                header: answer_header,
                                challenge,
                            });
                        }
                    }
                    Err(e) => last_error = Some(e),
                }
            }
        }
        if fresh.is_empty() {
            let why = last_error.map_or_else(|| "no challenge".to_owned(), |e| e.to_string());
            refuse(self, &why);
            return;
        }
        for entry in &fresh {
            let realm = &entry.challenge.realm;
            let key = (entry.header, realm.clone(), entry.challenge.nonce.clone());
            if self.answered_nonces.contains(&key) {
                refuse(self, &format!("nonce for realm {realm} challenged again"));
                return;
            }
            let answered_realm = self
                .auth
                .iter()
                .any(|e| e.header == entry.header && e.challenge.realm == *realm);
            if answered_realm && !entry.challenge.stale {
                refuse(self, &format!("credentials refused for realm {realm}"));
                return;
            }
        }
        if self.auth_rounds >= MAX_AUTH_ROUNDS {
            refuse(self, "too many challenges");
            return;
        }
        self.auth_rounds += 1;
        for entry in fresh {
            self.answered_nonces.insert((
                entry.header,
                entry.challenge.realm.clone(),
                entry.challenge.nonce.clone(),
            ));
            match self
                .auth
                .iter_mut()
                .find(|e| e.header == entry.header && e.challenge.realm == entry.challenge.realm)
            {
                Some(old) => *old = entry,
                None => self.auth.push(entry),
            }
        }
        // §22.2: same Call-ID, From tag and To; CSeq one more; a new branch (new transaction).
        self.cseq += 1;
        match self.build_invite() {
            Ok(invite) => self.send_invite(invite),
            Err(e) => refuse(self, &e.to_string()),
        }
    }

    /// The INVITE for the current CSeq with a new branch, without credentials.
    fn base_invite(&self) -> Request {
        let s = &self.settings;
        Request::new(Method::Invite, &s.target_uri)
            .with_header(
                "Via",
                &format!("SIP/2.0/UDP {};branch={};rport", s.sent_by, new_branch()),
            )
            .with_header("Max-Forwards", MAX_FORWARDS)
            .with_header("From", &format!("<{}>;tag={}", s.from_uri, self.from_tag))
            .with_header("To", &format!("<{}>", s.target_uri))
            .with_header("Call-ID", &self.call_id)
            .with_header("CSeq", &format!("{} INVITE", self.cseq))
            .with_header("Contact", &format!("<{}>", s.contact))
            .with_header("Allow", ALLOW)
            .with_header("User-Agent", &s.agent)
            .with_body("application/sdp", self.offer.clone())
    }

    /// The INVITE for the current CSeq, with credentials for every challenge answered.
    fn build_invite(&mut self) -> Result<Request, AuthError> {
        let mut invite = self.base_invite();
        let s = &self.settings;
        if let Some(credentials) = &s.credentials {
            for entry in &mut self.auth {
                let cnonce = format!("{:016x}", self.rng.random::<u64>());
                let value = answer_challenge(
                    &mut entry.challenge,
                    &Method::Invite,
                    &s.target_uri,
                    credentials,
                    &cnonce,
                )?;
                invite.headers.push(entry.header, &value);
            }
        }
        Ok(invite)
    }

    fn send_invite(&mut self, invite: Request) {
        self.provisional = false;
        self.invite = invite.clone();
        self.requests.push_back((self.settings.proxy, invite));
    }

    fn request_cancel(&mut self, now: Instant, cause: CancelCause) {
        if self.finished || self.cancel.is_some() {
            return;
        }
        self.cancel = Some(cause);
        self.ring_deadline = None;
        // §9.1: "If no provisional response has been received, the CANCEL request MUST NOT
        // be sent; rather, the client MUST wait for the arrival of a provisional response".
        // Timer B (no response at all) bounds that wait.
        if self.provisional {
            self.send_cancel(now);
        }
    }

    fn send_cancel(&mut self, now: Instant) {
        self.cancel_sent = true;
        self.cancel_deadline = Some(now + self.settings.t1 * 64);
        let cancel = cancel_for(&self.invite);
        self.requests.push_back((self.settings.proxy, cancel));
    }

    fn bye(&mut self, dialog: &mut Dialog) {
        match dialog.request(Method::Bye, &self.settings.sent_by, None) {
            Ok(bye) => self.requests.push_back((self.settings.proxy, bye)),
            Err(e) => tracing::warn!(call_id = %self.call_id, "cannot build BYE: {e}"),
        }
    }

    /// Timer B or a transport error on the INVITE: the caller's own cancel still reads as
    /// `Cancelled`; anything else is a failure (a ring timeout that waited for a provisional
    /// which never came means the phone was never reached).
    fn give_up(&mut self, code: u16, reason: &str) {
        if self.finished {
            return;
        }
        let event = match self.cancel {
            Some(CancelCause::Caller) => OutboundEvent::Cancelled,
            _ => OutboundEvent::Failed {
                code,
                reason: reason.to_owned(),
            },
        };
        self.finish(event);
    }

    fn finish(&mut self, event: OutboundEvent) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.ring_deadline = None;
        self.cancel_deadline = None;
        tracing::info!(call_id = %self.call_id, ?event, "outbound call ended");
        self.events.push_back(event);
    }
}

/// The SDP answer in a 2xx, negotiated against our codecs; the error text is the reason of the
/// `Failed` event.
fn negotiate_answer(response: &Response, codecs: &[Codec]) -> Result<Negotiated, String> {
    let is_sdp = response
        .headers
        .get("Content-Type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/sdp"));
    if !is_sdp || response.body.is_empty() {
        return Err("2xx carries no SDP answer".into());
    }
    let text = std::str::from_utf8(&response.body).map_err(|_| "SDP answer is not UTF-8")?;
    let answer = sdp::parse(text).map_err(|e| format!("SDP answer: {e}"))?;
    sdp::negotiate(&answer.audio, codecs).map_err(|e| format!("SDP answer: {e}"))
}

/// Parses one WWW-Authenticate / Proxy-Authenticate value into a challenge we can answer.
///
/// Guards `digest_auth` 0.3: it slices its input at character counts used as byte offsets
/// (a panic on non-ASCII), only strips a literal `Digest` (the scheme is case-insensitive,
/// RFC 7235 §2.1), and with `qop="auth-int"` alone would silently answer `qop=auth`.
fn parse_challenge(value: &str) -> Result<WwwAuthenticateHeader, AuthError> {
    let value = value.trim();
    if !value.is_ascii() {
        return Err(AuthError::NotAscii);
    }
    let (scheme, params) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    let challenge = WwwAuthenticateHeader::parse(&tighten_equals(params))
        .map_err(|e| AuthError::Malformed(e.to_string()))?;
    if challenge
        .qop
        .as_ref()
        .is_some_and(|qops| !qops.contains(&Qop::AUTH))
    {
        return Err(AuthError::NoQopAuth);
    }
    Ok(challenge)
}

/// Drops the whitespace RFC 3261 §25.1 allows around `=` (`EQUAL = SWS "=" SWS`) outside
/// quoted strings: `digest_auth` would read `realm = "x"` as a parameter named `realm `.
fn tighten_equals(params: &str) -> String {
    let mut out = String::with_capacity(params.len());
    let (mut quoted, mut escaped, mut after_equals) = (false, false, false);
    for c in params.chars() {
        if quoted {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '=' => {
                out.truncate(out.trim_end().len());
                out.push(c);
                after_equals = true;
            }
            c if c.is_ascii_whitespace() && after_equals => {}
            c => {
                after_equals = false;
                quoted = c == '"';
                out.push(c);
            }
        }
    }
    out
}

/// Answers a parsed challenge: the Authorization / Proxy-Authorization value, with `qop=auth`
/// when the challenge offers qop (RFC 2617 §3.2.2), none otherwise (RFC 2069 compatibility,
/// which RFC 3261 §22.4 requires). Counts the challenge's `nc` up.
fn answer_challenge(
    challenge: &mut WwwAuthenticateHeader,
    method: &Method,
    uri: &str,
    credentials: &Credentials,
    cnonce: &str,
) -> Result<String, AuthError> {
    // No body in the context: `digest_auth` prefers auth-int when offered and falls back to
    // auth without one, which is what we want (we never sign bodies).
    let mut context = AuthContext::new_with_method(
        credentials.user.as_str(),
        credentials.password.as_str(),
        uri,
        Option::<&[u8]>::None,
        HttpMethod::from(method.as_str()),
    );
    context.set_custom_cnonce(cnonce);
    challenge
        .respond(&context)
        .map(|a| a.to_header_string())
        .map_err(|e| AuthError::Malformed(e.to_string()))
}

/// The credentials answering one challenge value (`Digest realm=…, nonce=…`) for a request
/// with `method` and Request-URI `uri`: what goes into an Authorization or
/// Proxy-Authorization header. `cnonce` is the client nonce (random per request in real use;
/// fixed here so the RFC examples can be checked).
pub fn authorization(
    challenge: &str,
    method: &Method,
    uri: &str,
    credentials: &Credentials,
    cnonce: &str,
) -> Result<String, AuthError> {
    let mut parsed = parse_challenge(challenge)?;
    answer_challenge(&mut parsed, method, uri, credentials, cnonce)
}
