//! The SIP endpoint: every datagram of the SIP socket goes through here, sans-IO.
//!
//! It owns the [`TransactionLayer`] and decides, before any call exists, what the server says
//! to a request (`contract.md` §3): 403 for an untrusted source, 503 + Retry-After over
//! capacity or while draining, 404 for a number nobody answers, 481 for a dialog we do not
//! know, 200/503 to OPTIONS, 200 + 487 for a CANCEL, 405/501 for methods we do not serve, 416
//! for a Request-URI scheme we cannot route, 420 for a Require we lack, 415/406 for an INVITE
//! whose offer is not SDP or whose caller does not accept SDP, and a 400 (505 for another SIP
//! version) with the reason for what does not parse. What belongs to a call (a new INVITE to
//! answer, in-dialog requests, ACKs, responses to the call's own requests) comes out as an
//! [`EndpointEvent`] tagged with the Call-ID; the runtime hands it to that call's task and
//! brings the call's answer back through [`Endpoint::respond`] / [`Endpoint::send_request`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipnet::IpNet;

use crate::identity::SourceKey;

use super::limit::Limiter;
use super::message::{
    self, Method, Request, Response, SipMessage, new_tag, response_to, split_header_list,
};
use super::transaction::{
    Incoming, ResponseMatch, Side, Timers, TransactionEvent, TransactionKey, TransactionLayer,
};

/// Methods the server implements, for `Allow` headers.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";

/// How the endpoint answers before a call exists.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    /// `Server` / `User-Agent` value.
    pub agent: String,
    /// Who may send INVITEs (`sip.trusted_sources`).
    pub trusted: Vec<IpNet>,
    /// Calls at once, inbound and outbound; more get 503.
    pub max_calls: usize,
    /// Request-URI users that reach a service, e.g. `*97`; anything else is 404.
    pub services: Vec<String>,
    /// Retry-After of a 503.
    pub retry_after: Duration,
    /// RFC 3261 timer values.
    pub timers: Timers,
    /// Datagrams a second taken from one source, but for those of its own calls.
    pub max_requests_per_source_s: u32,
    /// New INVITEs a second taken from one source.
    pub max_invites_per_source_s: u32,
    /// Sources the per-source rate limits do not apply to (`security.source_exempt`: the
    /// proxy every call comes through, whose address stands for every phone behind it).
    pub rate_exempt: Vec<IpNet>,
}

/// What the endpoint refused or dropped, by reason (counters since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams over their source's rate, dropped before parsing.
    pub dropped_rate: u64,
    /// INVITEs over their source's INVITE rate, dropped unanswered.
    pub dropped_invites: u64,
    /// INVITEs refused (403) because their source is blocked after failed logins.
    pub refused_blocked: u64,
    /// Requests naming a call that came from elsewhere than the call's peer (403 or dropped).
    pub refused_not_peer: u64,
}

/// What the runtime must do for a call.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointEvent {
    /// A new INVITE to one of the services. 100 Trying is already out; the runtime sets up the
    /// call and answers through [`Endpoint::respond`] on `key`.
    Incoming {
        /// The INVITE server transaction.
        key: TransactionKey,
        /// The INVITE.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
        /// Which service (`*97` …) its Request-URI names.
        service: String,
    },
    /// A request inside a known call (BYE, INFO, re-INVITE …): the call answers it through
    /// [`Endpoint::respond`] on `key`.
    InDialog {
        /// The call.
        call_id: String,
        /// Its server transaction.
        key: TransactionKey,
        /// The request.
        request: Request,
    },
    /// The ACK for a call's 2xx (no transaction owns it, §17.2.1).
    Ack {
        /// The call.
        call_id: String,
        /// The ACK.
        request: Request,
    },
    /// The caller cancelled before we answered: 487 is sent, the call must not start.
    Cancelled {
        /// The call.
        call_id: String,
    },
    /// A response to one of the call's own requests, or a 2xx retransmission (re-ACK it).
    Response {
        /// The call.
        call_id: String,
        /// The response.
        response: Response,
    },
    /// One of the call's client transactions failed: `event` is
    /// [`TransactionEvent::Timeout`] (timer B/F) or [`TransactionEvent::TransportError`].
    RequestFailed {
        /// The call.
        call_id: String,
        /// The transaction (its method, and its branch to tell an old INVITE from the
        /// current one).
        key: TransactionKey,
        /// What happened.
        event: TransactionEvent,
    },
}

/// Why [`Endpoint::register_outbound`] refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// `max_calls` calls are up.
    #[error("at capacity ({0} calls)")]
    Full(usize),
    /// The server is shutting down.
    #[error("draining")]
    Draining,
    /// Something every call needs is down (the store): no call could finish.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A call with this Call-ID exists.
    #[error("duplicate Call-ID {0}")]
    Duplicate(String),
}

#[derive(Debug)]
struct CallEntry {
    /// The INVITE server transaction until its final response is sent.
    pending_invite: Option<TransactionKey>,
    /// The host the call's requests come from: the INVITE's source, or the proxy an outbound
    /// call went to. In-dialog requests from anywhere else are refused, since the Call-ID and
    /// tags that identify a dialog are no secret to whoever saw one message of it.
    peer: IpAddr,
}

/// The SIP side of the server. Feed it datagrams, time and the calls' answers; drain
/// [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`] after each input.
#[derive(Debug)]
pub struct Endpoint {
    settings: EndpointSettings,
    layer: TransactionLayer,
    calls: HashMap<String, CallEntry>,
    /// Client transactions and the call that sent them.
    owners: HashMap<TransactionKey, String>,
    draining: bool,
    /// Why new calls are refused for now (see [`Endpoint::set_unavailable`]).
    unavailable: Option<String>,
    /// Datagrams per source (calls' own excepted).
    requests: Limiter,
    /// New INVITEs per source.
    invites: Limiter,
    /// Sources whose new calls are refused, until when (see [`Endpoint::set_blocked`]).
    blocked: HashMap<SourceKey, Instant>,
    stats: EndpointStats,
    transmits: VecDeque<(SocketAddr, Bytes)>,
    events: VecDeque<EndpointEvent>,
}

impl Endpoint {
    /// An endpoint with no calls.
    pub fn new(settings: EndpointSettings) -> Endpoint {
        let requests = Limiter::new(settings.max_requests_per_source_s);
        let invites = Limiter::new(settings.max_invites_per_source_s);
        Endpoint {
            layer: TransactionLayer::new(settings.timers),
            settings,
            calls: HashMap::new(),
            owners: HashMap::new(),
            draining: false,
            unavailable: None,
            requests,
            invites,
            blocked: HashMap::new(),
            stats: EndpointStats::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Calls up or being set up.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Stop taking calls (SIGTERM): INVITEs and OPTIONS get 503 from now on.
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    /// Whether [`Endpoint::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Refuse new calls with 503 + Retry-After (and OPTIONS with 503) while `reason` is set,
    /// e.g. the store cannot be written, so that a caller is not led through prompts that
    /// cannot end in a login; `None` takes calls again. Calls already up are not touched.
    pub fn set_unavailable(&mut self, reason: Option<String>) {
        self.unavailable = reason;
    }

    /// Refuse new calls from these sources (after too many failed logins) until the time
    /// given with each; replaces the previous set.
    pub fn set_blocked(&mut self, blocked: HashMap<SourceKey, Instant>) {
        self.blocked = blocked;
    }

    /// What was refused or dropped so far.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// A datagram arrived on the SIP socket.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        // Before any parsing: a datagram of one of the source's own calls always gets through
        // (the ACK, BYE and INFO of a login under a flood); anything else within its rate.
        let own_call = message::peek_call_id(datagram)
            .and_then(|id| self.calls.get(id))
            .is_some_and(|c| c.peer == source.ip().to_canonical());
        if !own_call && !self.rate_exempt(source.ip()) && !self.requests.allow(now, source.ip()) {
            self.stats.dropped_rate += 1;
            return;
        }
        match message::parse(datagram) {
            // RFC 5626 §3.5.1 CRLF pings and the empty packets some phones send.
            Ok(SipMessage::KeepAlive) => {}
            Ok(SipMessage::Request(request)) => self.handle_request(now, source, request),
            Ok(SipMessage::Response(response)) => self.handle_response(now, response),
            Err(error) => {
                tracing::warn!(%source, %error, "unparsable SIP datagram");
                if let Some(reply) = message::bad_request(datagram, &error, &self.settings.agent) {
                    self.transmits.push_back((source, reply.to_bytes()));
                }
            }
        }
        self.drain_layer();
    }

    /// A call answers one of its server transactions (the INVITE's final response, or the
    /// response to an in-dialog request).
    pub fn respond(&mut self, now: Instant, key: &TransactionKey, response: &Response) {
        if let Err(e) = self.layer.respond(now, key, response) {
            // The transaction may have ended meanwhile (a CANCEL won the race): nothing to send.
            tracing::debug!(code = response.code, "response not sent: {e}");
        }
        if response.code >= 200 && key.method == Method::Invite {
            let call_id = response.call_id().unwrap_or_default();
            if let Some(entry) = self.calls.get_mut(call_id)
                && entry.pending_invite.as_ref() == Some(key)
            {
                entry.pending_invite = None;
                if response.code >= 300 {
                    self.calls.remove(call_id);
                }
            }
        }
        self.drain_layer();
    }

    /// A call sends a request (BYE, an outbound INVITE, CANCEL …) through a new client
    /// transaction; its responses come back as [`EndpointEvent::Response`].
    pub fn send_request(
        &mut self,
        now: Instant,
        call_id: &str,
        destination: SocketAddr,
        request: Request,
    ) {
        let fallback_key = TransactionKey::client(&request);
        match self.layer.send_request(now, destination, request) {
            Ok(key) => {
                self.owners.insert(key, call_id.to_owned());
            }
            Err(e) => {
                tracing::warn!(call_id, "request not sent: {e}");
                if let Some(key) = fallback_key {
                    self.events.push_back(EndpointEvent::RequestFailed {
                        call_id: call_id.to_owned(),
                        key,
                        event: TransactionEvent::TransportError,
                    });
                }
            }
        }
        self.drain_layer();
    }

    /// Bytes no transaction owns (2xx retransmissions, ACKs for 2xx).
    pub fn send_raw(&mut self, destination: SocketAddr, bytes: Bytes) {
        self.transmits.push_back((destination, bytes));
    }

    /// Takes a slot for an outbound call with `call_id`, whose requests come from `peer`
    /// (the outbound proxy).
    pub fn register_outbound(&mut self, call_id: &str, peer: IpAddr) -> Result<(), CapacityError> {
        self.admit(call_id)?;
        let entry = CallEntry {
            pending_invite: None,
            peer: peer.to_canonical(),
        };
        self.calls.insert(call_id.to_owned(), entry);
        Ok(())
    }

    /// The call is over and its task gone: its slot is free, its requests are stray.
    pub fn call_ended(&mut self, call_id: &str) {
        self.calls.remove(call_id);
    }

    /// When [`Endpoint::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.layer.poll_timeout()
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.drain_layer();
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        self.transmits.pop_front()
    }

    /// Next event for the runtime.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    fn admit(&self, call_id: &str) -> Result<(), CapacityError> {
        if self.draining {
            Err(CapacityError::Draining)
        } else if let Some(reason) = &self.unavailable {
            Err(CapacityError::Unavailable(reason.clone()))
        } else if self.calls.len() >= self.settings.max_calls {
            Err(CapacityError::Full(self.calls.len()))
        } else if self.calls.contains_key(call_id) {
            Err(CapacityError::Duplicate(call_id.to_owned()))
        } else {
            Ok(())
        }
    }

    fn handle_request(&mut self, now: Instant, source: SocketAddr, request: Request) {
        let incoming = match self.layer.handle_request(now, source, request) {
            Ok(incoming) => incoming,
            Err(e) => {
                tracing::warn!(%source, "request dropped: {e}");
                return;
            }
        };
        match incoming {
            Incoming::Absorbed { .. } => {}
            Incoming::Ack(ack) => {
                let call_id = ack.call_id().unwrap_or_default().to_owned();
                if self.comes_from_elsewhere(&call_id, source) {
                    self.stats.refused_not_peer += 1;
                    tracing::warn!(%source, call_id, "ACK from a host that is not the call's peer");
                } else if self.calls.contains_key(&call_id) {
                    self.events.push_back(EndpointEvent::Ack {
                        call_id,
                        request: ack,
                    });
                }
            }
            Incoming::New { key, request } => self.new_request(now, source, key, request),
        }
    }

    fn new_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        key: TransactionKey,
        request: Request,
    ) {
        let call_id = request.call_id().unwrap_or_default().to_owned();
        // The peer of an inbound call passed the trusted-sources check with its INVITE; the
        // peer of an outbound one is the proxy we sent it to.
        if self.comes_from_elsewhere(&call_id, source) {
            self.stats.refused_not_peer += 1;
            tracing::warn!(%source, call_id, method = %request.method, "request for a call from a host that is not its peer");
            let response = self.reply(&request, 403, "Forbidden").with_header(
                "Warning",
                &format!("399 {} \"not this call's peer\"", self.settings.agent),
            );
            self.respond(now, &key, &response);
            return;
        }
        if request.method == Method::Cancel {
            self.cancel(now, &key, &request);
            return;
        }
        if let Some(refusal) = self.inspect(&request, self.calls.contains_key(&call_id)) {
            self.respond(now, &key, &refusal);
            return;
        }
        let in_dialog = request.to_tag().is_some();
        match &request.method {
            Method::Options if !in_dialog => {
                let response = if self.draining || self.unavailable.is_some() {
                    self.reply(&request, 503, "Service Unavailable")
                        .with_header("Retry-After", &self.retry_after())
                } else {
                    self.reply(&request, 200, "OK")
                        .with_header("Allow", ALLOW)
                        .with_header("Accept", "application/sdp")
                };
                self.respond(now, &key, &response);
            }
            Method::Invite if !in_dialog => self.invite(now, source, key, request),
            _ if self.calls.contains_key(&call_id) => {
                self.events.push_back(EndpointEvent::InDialog {
                    call_id,
                    key,
                    request,
                });
            }
            // Only the methods `inspect` lets through outside a call get here.
            _ => {
                let response = self.reply(&request, 481, "Call/Transaction Does Not Exist");
                self.respond(now, &key, &response);
            }
        }
    }

    /// RFC 3261 §8.2.1 then §8.2.2, before anything acts on a request: a method nothing here
    /// serves (501 unknown, 405 known, both with Allow), a Request-URI scheme we cannot route
    /// (416, RFC 4475 §3.3.2 and §3.3.3), option tags in Require, all of which we lack (420
    /// listing them in Unsupported, RFC 4475 §3.3.5; Proxy-Require is for proxies). A call's
    /// own requests reach the call whatever their method.
    fn inspect(&self, request: &Request, in_call: bool) -> Option<Response> {
        let served = in_call
            || matches!(
                request.method,
                Method::Invite
                    | Method::Options
                    | Method::Bye
                    | Method::Info
                    | Method::Update
                    | Method::Prack
                    | Method::Notify
                    | Method::Refer
            );
        if !served {
            let (code, reason) = match request.method {
                Method::Extension(_) => (501, "Not Implemented"),
                _ => (405, "Method Not Allowed"),
            };
            return Some(
                self.reply(request, code, reason)
                    .with_header("Allow", ALLOW),
            );
        }
        let scheme = request.uri.split_once(':').map_or("", |(s, _)| s);
        if !["sip", "sips", "tel"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
        {
            return Some(self.reply(request, 416, "Unsupported URI Scheme"));
        }
        let required: Vec<&str> = request
            .headers
            .get_all("Require")
            .flat_map(split_header_list)
            .collect();
        if !required.is_empty() {
            return Some(
                self.reply(request, 420, "Bad Extension")
                    .with_header("Unsupported", &required.join(", ")),
            );
        }
        None
    }

    /// Whether `call_id` names a call whose peer is another host than `source`'s.
    fn comes_from_elsewhere(&self, call_id: &str, source: SocketAddr) -> bool {
        self.calls
            .get(call_id)
            .is_some_and(|c| c.peer != source.ip().to_canonical())
    }

    fn rate_exempt(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.settings.rate_exempt.iter().any(|n| n.contains(&ip))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.settings.trusted.iter().any(|n| n.contains(&ip))
    }

    /// When `ip`'s new calls are refused until, if they are now.
    fn blocked_until(&self, now: Instant, ip: IpAddr) -> Option<Instant> {
        if self.blocked.is_empty() {
            return None;
        }
        self.blocked
            .get(&SourceKey::of(ip))
            .copied()
            .filter(|until| *until > now)
    }

    fn invite(&mut self, now: Instant, source: SocketAddr, key: TransactionKey, request: Request) {
        let call_id = request.call_id().unwrap_or_default().to_owned();
        if !self.rate_exempt(source.ip()) && !self.invites.allow(now, source.ip()) {
            // Like pike: no answer, so a flood gets nothing back to amplify.
            self.stats.dropped_invites += 1;
            return;
        }
        let refusal = if !self.is_trusted(source.ip()) {
            tracing::warn!(%source, call_id, "INVITE from an untrusted source");
            Some(self.reply(&request, 403, "Forbidden"))
        } else if let Some(until) = self.blocked_until(now, source.ip()) {
            self.stats.refused_blocked += 1;
            tracing::warn!(%source, call_id, "INVITE from a source blocked after failed logins");
            let retry = until.saturating_duration_since(now).as_secs().max(1);
            let warning = format!(
                "399 {} \"too many failed logins from this address\"",
                self.settings.agent
            );
            Some(
                self.reply(&request, 403, "Forbidden")
                    .with_header("Warning", &warning)
                    .with_header("Retry-After", &retry.to_string()),
            )
        } else if let Err(e) = self.admit(&call_id) {
            tracing::warn!(%source, call_id, "INVITE refused: {e}");
            Some(match e {
                CapacityError::Duplicate(_) => self.reply(&request, 482, "Loop Detected"),
                _ => self
                    .reply(&request, 503, "Service Unavailable")
                    .with_header("Retry-After", &self.retry_after()),
            })
        } else {
            None
        };
        if let Some(response) = refusal {
            self.respond(now, &key, &response);
            return;
        }
        if let Some(refusal) = self.refuse_content(&request) {
            self.respond(now, &key, &refusal);
            return;
        }
        let service = request.request_user().unwrap_or_default();
        if !self.settings.services.contains(&service) {
            tracing::info!(call_id, service, "INVITE for an unknown number");
            let response = self.reply(&request, 404, "Not Found");
            self.respond(now, &key, &response);
            return;
        }
        self.calls.insert(
            call_id,
            CallEntry {
                pending_invite: Some(key.clone()),
                peer: source.ip().to_canonical(),
            },
        );
        self.events.push_back(EndpointEvent::Incoming {
            key,
            request,
            source,
            service,
        });
    }

    /// §8.2.3 and §21.4.7 for an INVITE that would start a call: the offer must be SDP (else
    /// 415 with Accept, RFC 4475 §3.3.6) and the caller must accept the SDP our answer carries
    /// (else 406 with a Warning, RFC 4475 §3.3.15).
    fn refuse_content(&self, invite: &Request) -> Option<Response> {
        let media = |value: &str| {
            let media = value.split(';').next().unwrap_or_default();
            media.trim().to_ascii_lowercase()
        };
        if !invite.body.is_empty()
            && invite
                .headers
                .get("Content-Type")
                .is_some_and(|ct| media(ct) != "application/sdp")
        {
            return Some(
                self.reply(invite, 415, "Unsupported Media Type")
                    .with_header("Accept", "application/sdp"),
            );
        }
        // No Accept means application/sdp (§20.1). An empty one would mean no body at all, but
        // no call can be answered without SDP, so it is read as no preference rather than
        // refusing every such caller.
        let accepted: Vec<&str> = invite
            .headers
            .get_all("Accept")
            .flat_map(split_header_list)
            .collect();
        let takes_sdp = |t: &&str| {
            matches!(
                media(t).as_str(),
                "application/sdp" | "application/*" | "*/*"
            )
        };
        if !accepted.is_empty() && !accepted.iter().any(takes_sdp) {
            let warning = format!(
                "399 {} \"the answer is application/sdp, which Accept leaves out\"",
                self.settings.agent
            );
            return Some(
                self.reply(invite, 406, "Not Acceptable")
                    .with_header("Warning", &warning),
            );
        }
        None
    }

    /// §9.2: 200 to the CANCEL; if the INVITE has no final response yet, 487 to it and the
    /// call is off. A CANCEL after our 200 changes nothing (the caller must BYE).
    fn cancel(&mut self, now: Instant, key: &TransactionKey, cancel: &Request) {
        let Some(invite_key) = self.layer.cancel_target(cancel) else {
            let response = self.reply(cancel, 481, "Call/Transaction Does Not Exist");
            self.respond(now, key, &response);
            return;
        };
        let ok = self.reply(cancel, 200, "OK");
        self.respond(now, key, &ok);
        let call_id = cancel.call_id().unwrap_or_default().to_owned();
        let pending = self
            .calls
            .get(&call_id)
            .is_some_and(|c| c.pending_invite.as_ref() == Some(&invite_key));
        if pending {
            // The 487 answers the INVITE, so it carries the INVITE's CSeq: rebuild it from the
            // CANCEL, which shares everything else (§9.1).
            let mut terminated = self.reply(cancel, 487, "Request Terminated");
            if let Some(cseq) = cancel.cseq() {
                terminated
                    .headers
                    .set("CSeq", &format!("{} INVITE", cseq.seq));
            }
            self.respond(now, &invite_key, &terminated);
            self.calls.remove(&call_id);
            self.events.push_back(EndpointEvent::Cancelled {
                call_id: call_id.clone(),
            });
        }
    }

    fn handle_response(&mut self, now: Instant, response: Response) {
        if let ResponseMatch::Unmatched(response) = self.layer.handle_response(now, response) {
            // A 2xx retransmission after the INVITE transaction ended: the call re-ACKs it.
            let call_id = response.call_id().unwrap_or_default().to_owned();
            let is_invite_2xx = response.cseq().is_some_and(|c| c.method == Method::Invite)
                && (200..300).contains(&response.code);
            if is_invite_2xx && self.calls.contains_key(&call_id) {
                self.events
                    .push_back(EndpointEvent::Response { call_id, response });
            }
        }
    }

    /// Moves the layer's datagrams out and turns client transaction events into call events.
    fn drain_layer(&mut self) {
        while let Some(t) = self.layer.poll_transmit() {
            self.transmits.push_back((t.destination, t.payload));
        }
        while let Some((key, event)) = self.layer.poll_event() {
            if key.side != Side::Client {
                continue;
            }
            let Some(call_id) = self.owners.get(&key).cloned() else {
                continue;
            };
            match event {
                TransactionEvent::Response(response) => {
                    self.events
                        .push_back(EndpointEvent::Response { call_id, response });
                }
                TransactionEvent::Timeout | TransactionEvent::TransportError => {
                    self.events.push_back(EndpointEvent::RequestFailed {
                        call_id,
                        key: key.clone(),
                        event,
                    });
                }
                TransactionEvent::Terminated => {
                    self.owners.remove(&key);
                }
                _ => {}
            }
        }
    }

    fn reply(&self, request: &Request, code: u16, reason: &str) -> Response {
        let mut response = response_to(request, code, reason);
        if request.to_tag().is_none() {
            response = response.with_to_tag(&new_tag());
        }
        response.with_header("Server", &self.settings.agent)
    }

    fn retry_after(&self) -> String {
        self.settings.retry_after.as_secs().max(1).to_string()
    }
}
