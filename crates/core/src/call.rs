//! One answered call as a single sans-IO object: the SIP dialog (RFC 3261 §12-15), the media
//! session and the IVR flow.
//!
//! The endpoint owns the transaction layer and the sockets; it hands the call what belongs to
//! it and sends what the call asks for:
//! - [`Call::accept`] answers an INVITE (the 200 goes out through the INVITE's server
//!   transaction; retransmitting it until the ACK is the call's job, §13.3.1.4);
//! - [`Call::handle_request`] answers in-dialog requests (BYE, INFO, re-INVITE, OPTIONS) with
//!   the response the endpoint sends through that request's server transaction;
//! - [`Call::handle_rtp`] takes datagrams from the call's RTP port;
//! - [`Call::poll_sip`] / [`Call::poll_rtp`] give what to send, [`Call::poll_event`] what
//!   happened, [`Call::poll_timeout`] / [`Call::handle_timeout`] drive time.

use std::collections::VecDeque;
use std::net::SocketAddr;

use ipnet::IpNet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use crate::ivr::{Ask, Decision, Flow, FlowAction, FlowContext, FlowSpec};
use crate::media::DigitSource;
use crate::media::session::{MediaError, MediaEvent, MediaSession, MediaSettings};
use crate::model::{Answer, LoginAttempt, Query, Release};
use crate::prompts::loader::PromptCache;
use crate::rtp::source::MediaScope;
use crate::sip::dialog::{Dialog, InDialog};
use crate::sip::message::{Method, Request, Response, new_tag, response_to};
use crate::sip::sdp::{self, Codec, Local, Negotiated, SdpError};
use crate::sip::uac::Answered;

/// What the call needs to know about its endpoint.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// DTMF paths and the RTP timeout.
    pub media: MediaSettings,
    /// Networks an SDP may name as the peer's media address besides the signalling peer's
    /// own (`rtp.media_sources`).
    pub media_networks: Arc<[IpNet]>,
    /// How long our 2xx waits for its ACK before the call is given up.
    pub ack_timeout: Duration,
    /// Longest the call may last once answered; then the caller hears that the time is up.
    pub max_duration: Duration,
    /// Codec preference.
    pub codecs: Vec<Codec>,
    /// Prompt language.
    pub language: String,
    /// Our RTP address as advertised in SDP (public address, the call's port).
    pub rtp: SocketAddr,
    /// Our Via sent-by (`host:port`).
    pub sent_by: String,
    /// Our Contact URI.
    pub contact: String,
    /// RFC 3261 T1 (2xx retransmission starts here and doubles to T2).
    pub t1: Duration,
    /// RFC 3261 T2.
    pub t2: Duration,
    /// Server header value.
    pub agent: String,
}

/// Which IVR flow answers the call, and what it starts with.
#[derive(Debug, Clone)]
pub struct FlowStart {
    /// The flow.
    pub spec: &'static FlowSpec,
    /// Its desk, settings and named user.
    pub ctx: FlowContext,
    /// The address per-source limits count this call's logins against (`None`: none apply,
    /// e.g. a callback we placed, or an exempt proxy).
    pub source: Option<std::net::IpAddr>,
}

/// Keys kept for the flow while it has not started (they arrived before the ACK).
const MAX_EARLY_KEYS: usize = 32;

/// What the caller hears when the call's time is up, then goodbye.
const TIME_UP_PROMPT: &str = crate::prompts::ids::CALL_TIME_LIMIT;

/// How long the time-up prompts may take before the call is ended anyway.
const TIME_UP_GRACE: Duration = Duration::from_secs(15);

/// What the call asks the endpoint to send on SIP.
#[derive(Debug, Clone, PartialEq)]
pub enum SipOut {
    /// Bytes straight to the socket (2xx retransmissions, which no transaction owns).
    Raw {
        /// Destination.
        to: SocketAddr,
        /// The datagram.
        bytes: Bytes,
    },
    /// A request to send through a new client transaction (BYE).
    Request {
        /// Destination.
        to: SocketAddr,
        /// The request.
        request: Request,
    },
}

/// What happened in the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A key, once, with the path that carried it.
    Digit {
        /// The key.
        digit: char,
        /// `rfc4733`, `info` or `inband`.
        source: DigitSource,
        /// Time since the call was answered.
        after: Duration,
    },
    /// A key of a secret entry (a PIN): which path carried it and when, never which key.
    SecretDigit {
        /// `rfc4733`, `info` or `inband`.
        source: DigitSource,
        /// Time since the call was answered.
        after: Duration,
    },
    /// The flow started these prompts.
    Prompt(Vec<String>),
    /// The hot-desk flow reached its decision.
    Decision(Decision),
    /// The call is over.
    Ended(EndReason),
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteBye,
    /// The flow finished and we sent BYE.
    LocalBye,
    /// No ACK for our 2xx within 64·T1 (§13.3.1.4): we sent BYE.
    NoAck,
    /// The server is shutting down and the drain time ran out: we sent BYE.
    Drained,
    /// The call reached its longest allowed length (`ivr.max_call_s`): we said so and sent BYE.
    TimeLimit,
}

/// Why an INVITE could not be answered with a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The SDP offer was refused (488 or 400); the response is ready.
    #[error("SDP: {error}")]
    Sdp {
        /// What was wrong.
        error: SdpError,
        /// The response to send.
        response: Box<Response>,
    },
    /// The INVITE cannot start a dialog (no Contact, a To tag …).
    #[error("dialog: {reason}")]
    Dialog {
        /// What was wrong.
        reason: String,
        /// The response to send.
        response: Box<Response>,
    },
    /// The prompts or the telephone-event clock cannot be used.
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// What an answered dialog brings to a [`Call`].
struct Parts {
    call_id: String,
    /// Where the call's requests come from and go to.
    peer: SocketAddr,
    dialog: Dialog,
    local: Local,
    negotiated: Negotiated,
    answer_sdp: String,
}

#[derive(Debug)]
struct Retransmit {
    bytes: Bytes,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// One answered call.
#[derive(Debug)]
pub struct Call {
    settings: CallSettings,
    call_id: String,
    source: SocketAddr,
    answered: Instant,
    dialog: Dialog,
    local: Local,
    negotiated: Negotiated,
    answer_sdp: String,
    media: MediaSession,
    flow_start: FlowStart,
    /// Started by the ACK: nothing is played or timed before the dialog is confirmed.
    flow: Option<Box<dyn Flow>>,
    /// Keys that came before the flow started, handed to it when it does.
    early_keys: Vec<char>,
    /// When the call has lasted as long as it may.
    deadline: Instant,
    /// When the time-up prompts started, once they have.
    time_up: Option<Instant>,
    ok: Option<Retransmit>,
    sip_out: VecDeque<SipOut>,
    events: VecDeque<CallEvent>,
    /// Directory work the flow asked for, for the driver to carry out.
    requests: VecDeque<Query>,
    ended: bool,
}

impl Call {
    /// Answers `invite` (from `source`) with a 200 OK and an SDP answer; returns the call and
    /// the 200 to send through the INVITE's server transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn accept<R: Rng + ?Sized>(
        now: Instant,
        invite: &Request,
        source: SocketAddr,
        flow: FlowStart,
        settings: CallSettings,
        cache: Arc<PromptCache>,
        rng: &mut R,
    ) -> Result<(Call, Response), AcceptError> {
        let offer = sdp::parse(&String::from_utf8_lossy(&invite.body)).map_err(|error| {
            let code = if matches!(error, SdpError::Malformed(_)) {
                400
            } else {
                488
            };
            let response = Box::new(refusal(invite, code, &error.to_string(), &settings.agent));
            AcceptError::Sdp { error, response }
        })?;
        let negotiated = sdp::negotiate(&offer.audio, &settings.codecs).map_err(|error| {
            let response = Box::new(refusal(invite, 488, &error.to_string(), &settings.agent));
            AcceptError::Sdp { error, response }
        })?;
        let tag = new_tag();
        let mut dialog = Dialog::uas(invite, &tag, &settings.contact).map_err(|e| {
            let response = Box::new(refusal(invite, 400, &e.to_string(), &settings.agent));
            AcceptError::Dialog {
                reason: e.to_string(),
                response,
            }
        })?;
        let local = Local {
            rtp: settings.rtp,
            session_id: rng.random::<u32>() as u64,
            session_version: 1,
        };
        let answer_sdp = sdp::answer(&offer, &negotiated, &local);
        let scope = MediaScope::new(source.ip(), settings.media_networks.clone());
        let media = MediaSession::new(
            &negotiated,
            &settings.media,
            scope,
            &settings.language,
            cache,
            now,
            rng,
        )?;
        if media.remote().is_none() {
            tracing::info!(
                sdp = %negotiated.remote.ip(),
                "the offer's media address is neither the caller's nor in rtp.media_sources: \
                 nothing is sent until RTP comes from an allowed address"
            );
        }
        let ok = dialog
            .response(invite, 200, "OK")
            .with_header("Server", &settings.agent)
            .with_header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
            .with_body("application/sdp", Bytes::from(answer_sdp.clone()));
        let retransmit = Retransmit {
            bytes: ok.to_bytes(),
            next: now + settings.t1,
            interval: settings.t1,
            give_up: now + settings.ack_timeout,
        };
        let parts = Parts {
            call_id: invite.call_id().unwrap_or_default().to_owned(),
            peer: source,
            dialog,
            local,
            negotiated,
            answer_sdp,
        };
        let call = Call::assemble(now, parts, media, flow, settings, Some(retransmit));
        Ok((call, ok))
    }

    /// The call an answered callback becomes: the dialog is confirmed, so the flow starts
    /// now. In-dialog requests go to `peer` (the outbound proxy the INVITE went through).
    #[allow(clippy::too_many_arguments)]
    pub fn outbound<R: Rng + ?Sized>(
        now: Instant,
        answered: &Answered,
        peer: SocketAddr,
        flow: FlowStart,
        settings: CallSettings,
        cache: Arc<PromptCache>,
        rng: &mut R,
    ) -> Result<Call, MediaError> {
        let scope = MediaScope::new(peer.ip(), settings.media_networks.clone());
        let media = MediaSession::new(
            &answered.negotiated,
            &settings.media,
            scope,
            &settings.language,
            cache,
            now,
            rng,
        )?;
        let parts = Parts {
            call_id: answered.dialog.id().call_id.clone(),
            peer,
            dialog: answered.dialog.clone(),
            local: answered.local,
            negotiated: answered.negotiated.clone(),
            answer_sdp: answered.offer.clone(),
        };
        let mut call = Call::assemble(now, parts, media, flow, settings, None);
        call.confirmed(now);
        Ok(call)
    }

    /// A call from its negotiated parts, answered at `now`; `ok` resends our 2xx until the
    /// ACK (inbound calls only).
    fn assemble(
        now: Instant,
        parts: Parts,
        media: MediaSession,
        flow: FlowStart,
        settings: CallSettings,
        ok: Option<Retransmit>,
    ) -> Call {
        Call {
            call_id: parts.call_id,
            source: parts.peer,
            answered: now,
            dialog: parts.dialog,
            local: parts.local,
            negotiated: parts.negotiated,
            answer_sdp: parts.answer_sdp,
            media,
            flow_start: flow,
            flow: None,
            early_keys: Vec::new(),
            deadline: now + settings.max_duration,
            time_up: None,
            ok,
            sip_out: VecDeque::new(),
            events: VecDeque::new(),
            requests: VecDeque::new(),
            ended: false,
            settings,
        }
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// What was negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Whether the call is over (nothing more to drive once its queues are drained).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Media counters.
    pub fn media_stats(&self) -> crate::media::session::MediaStats {
        self.media.stats()
    }

    /// The ACK for our 2xx (it matches no transaction, §17.2.1).
    pub fn handle_ack(&mut self, now: Instant, ack: &Request) {
        if self.dialog.handle_request(ack).is_ok() {
            self.confirmed(now);
        }
    }

    /// The dialog is confirmed: stop resending the 2xx, start the media and the flow.
    fn confirmed(&mut self, now: Instant) {
        self.ok = None;
        if self.flow.is_none() && !self.ended {
            self.media.start_sending(now);
            let mut flow = (self.flow_start.spec.start)(now, &self.flow_start.ctx);
            for key in self.early_keys.drain(..) {
                flow.handle_digit(now, key);
            }
            self.flow = Some(flow);
        }
        self.run_flow(now);
    }

    /// An in-dialog request; returns the response to send through its server transaction.
    pub fn handle_request(&mut self, now: Instant, request: &Request) -> Response {
        let agent = self.settings.agent.clone();
        let kind = match self.dialog.handle_request(request) {
            Ok(kind) => kind,
            Err(e) => {
                let code = e.status_code().unwrap_or(400);
                return refusal(request, code, &e.to_string(), &agent);
            }
        };
        match kind {
            InDialog::Bye => {
                self.end(EndReason::RemoteBye);
                self.reply(request, 200, "OK")
            }
            InDialog::Info { content_type, body } => self.info(now, request, content_type, &body),
            InDialog::ReInvite { sdp } => self.reinvite(request, sdp),
            InDialog::Ack { .. } => {
                self.confirmed(now);
                self.reply(request, 200, "OK")
            }
            InDialog::Other(Method::Options) => self.reply(request, 200, "OK"),
            // UPDATE, REFER, NOTIFY … and whatever later RFCs add.
            _ => self.reply(request, 501, "Not Implemented"),
        }
    }

    /// A datagram on the call's RTP port.
    pub fn handle_rtp(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        self.media.handle_datagram(now, source, datagram);
        self.run_flow(now);
    }

    /// When [`Call::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let flow = self.flow.as_ref().and_then(|f| f.poll_timeout());
        let limit = self.time_up.map_or(self.deadline, |t| t + TIME_UP_GRACE);
        [
            self.media.poll_timeout(),
            flow,
            self.ok.as_ref().map(|r| r.next.min(r.give_up)),
            Some(limit),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        self.retransmit_ok(now);
        match self.time_up {
            None if now >= self.deadline => self.times_up(now),
            Some(t) if now >= t + TIME_UP_GRACE => self.hang_up(EndReason::TimeLimit),
            _ => {}
        }
        self.media.handle_timeout(now);
        if let Some(flow) = &mut self.flow {
            flow.handle_timeout(now);
        }
        self.run_flow(now);
    }

    /// The call has lasted as long as it may: the flow is dropped (a verdict still on its way
    /// changes nothing here), the caller hears why and goodbye, and the call ends when that
    /// prompt does.
    fn times_up(&mut self, now: Instant) {
        tracing::info!(call_id = %self.call_id, "the call reached its time limit");
        self.time_up = Some(now);
        self.flow = None;
        self.requests.clear();
        let prompts = [
            TIME_UP_PROMPT.to_owned(),
            crate::prompts::ids::GOODBYE.into(),
        ];
        // A prompt set without the time-up recording still says goodbye.
        let played = match self.media.play(&prompts) {
            Ok(()) => Ok(prompts.to_vec()),
            Err(_) => self
                .media
                .play(&prompts[1..])
                .map(|()| prompts[1..].to_vec()),
        };
        match played {
            Ok(said) => self.events.push_back(CallEvent::Prompt(said)),
            Err(e) => {
                tracing::error!(call_id = %self.call_id, "prompt: {e}");
                self.hang_up(EndReason::TimeLimit);
            }
        }
    }

    /// Next SIP datagram or request to send.
    pub fn poll_sip(&mut self) -> Option<SipOut> {
        self.sip_out.pop_front()
    }

    /// Next RTP datagram to send, with the time it was due on the packet schedule.
    pub fn poll_rtp(&mut self) -> Option<(SocketAddr, Bytes, Instant)> {
        self.media.poll_transmit()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// Next piece of directory work the flow needs: carry it out (e.g. with
    /// [`crate::ivr::executor::execute`]) and give the answer to [`Call::handle_answer`].
    pub fn poll_request(&mut self) -> Option<Query> {
        self.requests.pop_front()
    }

    /// The directory's answer to the last request.
    pub fn handle_answer(&mut self, now: Instant, answer: Answer) {
        if let Some(flow) = &mut self.flow {
            flow.handle_answer(now, answer);
        }
        self.flow_actions();
    }

    /// The desk this call's flow is about.
    pub fn device(&self) -> &str {
        &self.flow_start.ctx.device
    }

    /// The flow this call runs.
    pub fn flow(&self) -> &'static FlowSpec {
        self.flow_start.spec
    }

    fn reply(&mut self, request: &Request, code: u16, reason: &str) -> Response {
        self.dialog
            .response(request, code, reason)
            .with_header("Server", &self.settings.agent)
    }

    /// A key that came by SIP INFO, once its request has been accepted.
    pub fn handle_info_key(&mut self, now: Instant, key: char, duration: Option<Duration>) {
        self.media.handle_info(now, key, duration);
        self.run_flow(now);
    }

    fn info(
        &mut self,
        now: Instant,
        request: &Request,
        content_type: Option<String>,
        body: &[u8],
    ) -> Response {
        match parse_info(content_type.as_deref(), body) {
            Some((digit, duration)) => {
                self.handle_info_key(now, digit, duration);
                self.reply(request, 200, "OK")
            }
            // RFC 6086 §4.2: an INFO package we do not handle.
            None => self.reply(request, 415, "Unsupported Media Type"),
        }
    }

    fn reinvite(&mut self, request: &Request, offer: Option<Bytes>) -> Response {
        if let Some(body) = offer {
            match sdp::parse(&String::from_utf8_lossy(&body))
                .and_then(|o| sdp::negotiate(&o.audio, &[self.negotiated.codec]).map(|n| (o, n)))
            {
                Ok((_, negotiated))
                    if !negotiated.remote.ip().is_unspecified()
                        && !self.media.allows_remote(negotiated.remote) =>
                {
                    let reason = "the media address is neither the caller's nor in \
                                  rtp.media_sources";
                    return refusal(request, 488, reason, &self.settings.agent);
                }
                Ok((offer, negotiated)) => {
                    if !negotiated.remote.ip().is_unspecified() {
                        self.media.set_remote(negotiated.remote);
                    }
                    self.local.session_version += 1;
                    self.answer_sdp = sdp::answer(&offer, &negotiated, &self.local);
                }
                Err(e) => return refusal(request, 488, &e.to_string(), &self.settings.agent),
            }
        }
        let sdp = self.answer_sdp.clone();
        self.reply(request, 200, "OK")
            .with_body("application/sdp", Bytes::from(sdp))
    }

    fn retransmit_ok(&mut self, now: Instant) {
        let Some(r) = &mut self.ok else {
            return;
        };
        if now >= r.give_up {
            self.ok = None;
            self.hang_up(EndReason::NoAck);
            return;
        }
        while r.next <= now {
            self.sip_out.push_back(SipOut::Raw {
                to: self.source,
                bytes: r.bytes.clone(),
            });
            r.interval = (r.interval * 2).min(self.settings.t2);
            r.next += r.interval;
        }
    }

    /// Moves digits and prompt ends from the media into the flow, and the flow's actions back.
    fn run_flow(&mut self, now: Instant) {
        while let Some(event) = self.media.poll_event() {
            match event {
                MediaEvent::Digit(d) => self.digit(now, d.digit, d.source, d.at),
                MediaEvent::PromptFinished if self.time_up.is_some() => {
                    self.hang_up(EndReason::TimeLimit);
                }
                MediaEvent::PromptFinished => {
                    if let Some(flow) = &mut self.flow {
                        flow.handle_prompt_finished(now);
                    }
                }
            }
        }
        self.flow_actions();
    }

    /// A key, once, from whichever path: logged and reported (masked while a PIN is typed),
    /// then given to the flow.
    fn digit(&mut self, now: Instant, key: char, source: DigitSource, at: Instant) {
        let after = at.saturating_duration_since(self.answered);
        let after_ms = after.as_millis() as u64;
        let source_name = source.as_str();
        if self.flow_start.spec.secret_keys {
            tracing::info!(call_id = %self.call_id, source = source_name, after_ms, "secret digit");
            self.events
                .push_back(CallEvent::SecretDigit { source, after });
        } else {
            tracing::info!(call_id = %self.call_id, digit = %key, source = source_name, after_ms, "digit");
            self.events.push_back(CallEvent::Digit {
                digit: key,
                source,
                after,
            });
        }
        match &mut self.flow {
            Some(flow) => flow.handle_digit(now, key),
            None if self.early_keys.len() < MAX_EARLY_KEYS => self.early_keys.push(key),
            None => {}
        }
    }

    /// Carries out what the flow asks, and passes its directory requests on.
    fn flow_actions(&mut self) {
        while let Some(action) = self.flow.as_mut().and_then(|f| f.poll_action()) {
            match action {
                FlowAction::Play(ids) => {
                    self.events.push_back(CallEvent::Prompt(ids.clone()));
                    if let Err(e) = self.media.play(&ids) {
                        tracing::error!(call_id = %self.call_id, "prompt: {e}");
                    }
                }
                FlowAction::StopPrompt => self.media.stop(),
                FlowAction::Hangup => self.hang_up(EndReason::LocalBye),
                FlowAction::Ask(ask) => {
                    let request = self.request(ask);
                    self.requests.push_back(request);
                }
                FlowAction::Decided(decision) => {
                    tracing::info!(call_id = %self.call_id, ?decision, "decision");
                    self.events.push_back(CallEvent::Decision(decision));
                }
            }
        }
    }

    /// The flow's question with what the call knows: the desk, how the call came about, its
    /// Call-ID and source.
    fn request(&self, ask: Ask) -> Query {
        let start = &self.flow_start;
        match ask {
            Ask::Login { account, pin } => Query::Login(LoginAttempt {
                device: start.ctx.device.clone(),
                account,
                pin,
                via: start.spec.via,
                call_id: Some(self.call_id.clone()),
                source: start.source,
            }),
            Ask::Release => Query::Release(Release {
                device: start.ctx.device.clone(),
                via: start.spec.via,
                call_id: Some(self.call_id.clone()),
            }),
        }
    }

    /// Ends the call from our side: BYE (through [`Call::poll_sip`]) and the media stops.
    pub fn hang_up(&mut self, reason: EndReason) {
        if self.ended {
            return;
        }
        match self
            .dialog
            .request(Method::Bye, &self.settings.sent_by, None)
        {
            Ok(bye) => self.sip_out.push_back(SipOut::Request {
                to: self.source,
                request: bye,
            }),
            Err(e) => tracing::warn!(call_id = %self.call_id, "cannot build BYE: {e}"),
        }
        self.end(reason);
    }

    fn end(&mut self, reason: EndReason) {
        if !self.ended {
            self.ended = true;
            self.media.stop();
            tracing::info!(call_id = %self.call_id, ?reason, "call ended");
            self.events.push_back(CallEvent::Ended(reason));
        }
    }
}

fn refusal(request: &Request, code: u16, reason: &str, agent: &str) -> Response {
    let phrase = match code {
        400 => "Bad Request",
        415 => "Unsupported Media Type",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        _ => "Refused",
    };
    response_to(request, code, phrase)
        .with_to_tag(&new_tag())
        .with_header(
            "Warning",
            &format!("399 hotdesk \"{}\"", reason.replace('"', "'")),
        )
        .with_header("Server", agent)
}

/// A key from an INFO body: `application/dtmf-relay` (`Signal=5`, `Duration=160`) or
/// `application/dtmf` (just the key).
pub fn parse_info(content_type: Option<&str>, body: &[u8]) -> Option<(char, Option<Duration>)> {
    let text = std::str::from_utf8(body).ok()?;
    let content_type = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let key = |s: &str| {
        let c = s.trim().chars().next()?.to_ascii_uppercase();
        matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
    };
    match content_type.as_str() {
        "application/dtmf-relay" => {
            let mut digit = None;
            let mut duration = None;
            for line in text.lines() {
                let Some((name, value)) = line.split_once('=') else {
                    continue;
                };
                match name.trim().to_ascii_lowercase().as_str() {
                    "signal" => digit = key(value),
                    "duration" => {
                        duration = value.trim().parse::<u64>().ok().map(Duration::from_millis)
                    }
                    _ => {}
                }
            }
            digit.map(|d| (d, duration))
        }
        "application/dtmf" => key(text).map(|d| (d, None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_bodies() {
        assert_eq!(
            parse_info(
                Some("application/dtmf-relay"),
                b"Signal=5\r\nDuration=160\r\n"
            ),
            Some(('5', Some(Duration::from_millis(160))))
        );
        assert_eq!(
            parse_info(Some("application/dtmf-relay"), b"Signal= #\n"),
            Some(('#', None))
        );
        assert_eq!(
            parse_info(Some("application/dtmf"), b"*"),
            Some(('*', None))
        );
        assert_eq!(parse_info(Some("application/dtmf"), b"x"), None);
        assert_eq!(parse_info(Some("text/plain"), b"5"), None);
        assert_eq!(parse_info(None, b"Signal=5"), None);
    }
}
