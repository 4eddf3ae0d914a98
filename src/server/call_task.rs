//! One call's task: its RTP socket, its sans-IO objects and its timers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{ToCall, ToEndpoint, sleep_until};
use crate::metrics::Metrics;
use hotdesk_core::call::{Call, CallEvent, CallSettings, EndReason, FlowStart, SipOut};
use hotdesk_core::ivr::Decision;
use hotdesk_core::ivr::executor::{self, FlowServices};
use hotdesk_core::media::DigitSource;
use hotdesk_core::model::Query;
use hotdesk_core::prompts::loader::PromptCache;
use hotdesk_core::sip::message::Method;
use hotdesk_core::sip::uac::{Answered, Outbound, OutboundEvent};

/// Progress of a call placed with [`super::ServerHandle::originate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallUpdate {
    /// The proxy has the INVITE (100).
    Trying,
    /// The phone rings (180/183).
    Ringing {
        /// The status code.
        code: u16,
    },
    /// Answered: the flow runs.
    Answered,
    /// 486, 600 or 603.
    Busy {
        /// The status code.
        code: u16,
    },
    /// Nobody answered within the ring timeout; the INVITE was cancelled.
    NoAnswer,
    /// [`CallControl::hang_up`] before the answer.
    Cancelled,
    /// Any other failure (status code, or 408/503 for no response / a transport error).
    Failed {
        /// The status code.
        code: u16,
        /// The reason phrase, or what was wrong.
        reason: String,
    },
    /// A key of a PIN: only its path and time are told.
    SecretDigit {
        /// The path that carried it.
        source: DigitSource,
        /// Since the answer.
        after: Duration,
    },
    /// The hot-desk flow's decision.
    Decision(Decision),
    /// A key heard on the answered call.
    Digit {
        /// The key.
        digit: char,
        /// The path that carried it.
        source: DigitSource,
        /// Since the answer.
        after: Duration,
    },
    /// The answered call is over.
    Ended(EndReason),
}

/// The caller's side of an outbound call: its updates, and a way to end it.
#[derive(Debug)]
pub struct CallControl {
    /// The call's Call-ID.
    pub call_id: String,
    /// Progress, ending with a final outcome (or [`CallUpdate::Ended`] after an answer).
    pub updates: mpsc::UnboundedReceiver<CallUpdate>,
    to_call: mpsc::UnboundedSender<ToCall>,
}

impl CallControl {
    pub(super) fn new(
        call_id: String,
        updates: mpsc::UnboundedReceiver<CallUpdate>,
        to_call: mpsc::UnboundedSender<ToCall>,
    ) -> CallControl {
        CallControl {
            call_id,
            updates,
            to_call,
        }
    }

    /// Cancels the call if it still rings, hangs it up (BYE) if answered.
    pub fn hang_up(&self) {
        let _ = self.to_call.send(ToCall::HangUp);
    }
}

/// An outbound call becomes a [`Call`] when answered; the [`Outbound`] stays to re-ACK
/// retransmitted 2xx responses.
// One per call task, moved between variants once: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Phase {
    Dialing {
        outbound: Outbound,
        /// Where the INVITE went: in-dialog requests follow it.
        proxy: SocketAddr,
        flow: FlowStart,
        settings: CallSettings,
        prompts: Arc<PromptCache>,
    },
    Up {
        call: Box<Call>,
        outbound: Option<Outbound>,
    },
    Over,
}

pub(super) struct CallTask {
    phase: Phase,
    call_id: String,
    rtp: UdpSocket,
    rx: mpsc::UnboundedReceiver<ToCall>,
    tx: mpsc::UnboundedSender<ToEndpoint>,
    updates: Option<mpsc::UnboundedSender<CallUpdate>>,
    drain_at: Option<Instant>,
    /// Where directory answers come back (this task's own inbox).
    to_self: mpsc::UnboundedSender<ToCall>,
    directory: Arc<dyn FlowServices>,
    metrics: Arc<Metrics>,
}

/// What a call task needs besides its call: its channels and the directory.
pub(super) struct TaskLinks {
    pub rx: mpsc::UnboundedReceiver<ToCall>,
    pub to_self: mpsc::UnboundedSender<ToCall>,
    pub tx: mpsc::UnboundedSender<ToEndpoint>,
    pub directory: Arc<dyn FlowServices>,
    pub metrics: Arc<Metrics>,
}

impl CallTask {
    pub(super) fn inbound(call: Call, rtp: UdpSocket, links: TaskLinks) -> CallTask {
        CallTask {
            call_id: call.call_id().to_owned(),
            phase: Phase::Up {
                call: Box::new(call),
                outbound: None,
            },
            rtp,
            rx: links.rx,
            tx: links.tx,
            to_self: links.to_self,
            directory: links.directory,
            metrics: links.metrics,
            updates: None,
            drain_at: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn outbound(
        outbound: Outbound,
        proxy: SocketAddr,
        flow: FlowStart,
        settings: CallSettings,
        prompts: Arc<PromptCache>,
        rtp: UdpSocket,
        links: TaskLinks,
        updates: mpsc::UnboundedSender<CallUpdate>,
    ) -> CallTask {
        CallTask {
            call_id: outbound.call_id().to_owned(),
            phase: Phase::Dialing {
                outbound,
                proxy,
                flow,
                settings,
                prompts,
            },
            rtp,
            rx: links.rx,
            tx: links.tx,
            to_self: links.to_self,
            directory: links.directory,
            metrics: links.metrics,
            updates: Some(updates),
            drain_at: None,
        }
    }

    pub(super) async fn run(mut self) {
        let direction = if self.updates.is_some() { "out" } else { "in" };
        self.metrics.call(direction);
        self.metrics.active_calls.inc();
        self.serve().await;
        self.metrics.active_calls.dec();
    }

    async fn serve(&mut self) {
        let mut buf = vec![0u8; 2048];
        // Sends the first INVITE of an outbound call.
        self.flush().await;
        while !matches!(self.phase, Phase::Over) {
            let deadline = self.poll_timeout();
            tokio::select! {
                received = self.rtp.recv_from(&mut buf) => {
                    if let (Ok((n, source)), Phase::Up { call, .. }) = (received, &mut self.phase) {
                        call.handle_rtp(Instant::now(), source, &buf[..n]);
                    }
                }
                message = self.rx.recv() => match message {
                    Some(m) => self.handle(m),
                    // The endpoint task is gone: nothing can be sent any more.
                    None => return,
                },
                () = sleep_until(deadline) => self.handle_timeout(Instant::now()),
                () = sleep_until(self.drain_at) => {
                    self.drain_at = None;
                    self.end(EndReason::Drained);
                }
            }
            self.flush().await;
        }
        let _ = self.tx.send(ToEndpoint::Ended {
            call_id: self.call_id.clone(),
        });
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Dialing { outbound, .. } => outbound.poll_timeout(),
            Phase::Up { call, outbound } => [
                call.poll_timeout(),
                outbound.as_ref().and_then(Outbound::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .min(),
            Phase::Over => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Dialing { outbound, .. } => outbound.handle_timeout(now),
            Phase::Up { call, outbound } => {
                call.handle_timeout(now);
                if let Some(o) = outbound {
                    o.handle_timeout(now);
                }
            }
            Phase::Over => {}
        }
    }

    /// Hang up (answered) or cancel (ringing).
    fn end(&mut self, reason: EndReason) {
        let now = Instant::now();
        match &mut self.phase {
            Phase::Dialing { outbound, .. } => outbound.cancel(now),
            Phase::Up { call, .. } => call.hang_up(reason),
            Phase::Over => {}
        }
    }

    fn handle(&mut self, message: ToCall) {
        let now = Instant::now();
        match message {
            ToCall::InDialog { key, request } => {
                let response = match &mut self.phase {
                    Phase::Up { call, .. } => call.handle_request(now, &request),
                    // Nothing is established yet (or any more) for a request to belong to.
                    _ => hotdesk_core::sip::message::response_to(
                        &request,
                        481,
                        "Call/Transaction Does Not Exist",
                    ),
                };
                let _ = self.tx.send(ToEndpoint::Respond { key, response });
            }
            ToCall::Ack(ack) => {
                if let Phase::Up { call, .. } = &mut self.phase {
                    call.handle_ack(now, &ack);
                }
            }
            ToCall::Response(response) => match &mut self.phase {
                Phase::Dialing { outbound, .. }
                | Phase::Up {
                    outbound: Some(outbound),
                    ..
                } => outbound.handle_response(now, &response),
                // Our BYE's response: the call is over for us whatever it says.
                _ => tracing::debug!(code = response.code, "response to our request"),
            },
            ToCall::Failed { key, event } => match &mut self.phase {
                Phase::Dialing { outbound, .. }
                | Phase::Up {
                    outbound: Some(outbound),
                    ..
                } => outbound.handle_transaction_event(now, &key, event),
                _ => tracing::info!(method = %key.method, "request got no response"),
            },
            ToCall::Drain(at) => {
                if matches!(self.phase, Phase::Dialing { .. }) {
                    self.end(EndReason::Drained);
                } else {
                    self.drain_at = Some(at);
                }
            }
            ToCall::HangUp => self.end(EndReason::LocalBye),
            ToCall::Answer(answer) => {
                if let Phase::Up { call, .. } = &mut self.phase {
                    call.handle_answer(now, answer);
                }
            }
        }
    }

    /// Runs a directory request off the call's task (argon2 takes tens of milliseconds; the
    /// prompts must keep flowing) and delivers the answer back as a [`ToCall`] message.
    fn directory_work(&self, request: Query) {
        let directory = self.directory.clone();
        let back = self.to_self.clone();
        tokio::spawn(async move {
            let answer = executor::execute(directory.as_ref(), request).await;
            let _ = back.send(ToCall::Answer(answer));
        });
    }

    fn update(&self, update: CallUpdate) {
        if let Some(tx) = &self.updates {
            let _ = tx.send(update);
        }
    }

    /// Sends what the sans-IO objects queued and acts on their events.
    async fn flush(&mut self) {
        self.flush_outbound();
        if let Phase::Up { call, .. } = &mut self.phase {
            while let Some((to, bytes, due)) = call.poll_rtp() {
                if let Err(e) = self.rtp.send_to(&bytes, to).await {
                    tracing::debug!(%to, "RTP send: {e}");
                }
                // After the send: a slow send_to is lateness the caller hears too.
                let late = Instant::now().saturating_duration_since(due);
                self.metrics.rtp_send_lateness.observe(late.as_secs_f64());
            }
        }
        self.flush_call();
    }

    fn flush_outbound(&mut self) {
        let outbound = match &mut self.phase {
            Phase::Dialing { outbound, .. }
            | Phase::Up {
                outbound: Some(outbound),
                ..
            } => outbound,
            _ => return,
        };
        while let Some((to, request)) = outbound.poll_request() {
            let _ = self.tx.send(ToEndpoint::Request {
                call_id: self.call_id.clone(),
                to,
                request,
            });
        }
        while let Some((to, bytes)) = outbound.poll_raw() {
            let _ = self.tx.send(ToEndpoint::Raw { to, bytes });
        }
        let mut events = Vec::new();
        while let Some(event) = outbound.poll_event() {
            events.push(event);
        }
        let done = outbound.is_done();
        for event in events {
            self.outbound_event(event);
        }
        // An outbound call that never got up ends once its last retransmission is handled.
        if done && matches!(self.phase, Phase::Dialing { .. }) {
            self.phase = Phase::Over;
        }
    }

    fn outbound_event(&mut self, event: OutboundEvent) {
        let update = match event {
            OutboundEvent::Trying => CallUpdate::Trying,
            OutboundEvent::Ringing { code } => CallUpdate::Ringing { code },
            OutboundEvent::Answered(answered) => return self.answered(&answered),
            OutboundEvent::Busy { code } => CallUpdate::Busy { code },
            OutboundEvent::NoAnswer => CallUpdate::NoAnswer,
            OutboundEvent::Cancelled => CallUpdate::Cancelled,
            OutboundEvent::Failed { code, reason } => CallUpdate::Failed { code, reason },
        };
        tracing::info!(?update, "callback");
        self.update(update);
    }

    fn answered(&mut self, answered: &Answered) {
        let Phase::Dialing {
            outbound,
            flow,
            settings,
            prompts,
            proxy,
        } = std::mem::replace(&mut self.phase, Phase::Over)
        else {
            return;
        };
        let now = Instant::now();
        let sent_by = settings.sent_by.clone();
        match Call::outbound(
            now,
            answered,
            proxy,
            flow,
            settings,
            prompts,
            &mut rand::rng(),
        ) {
            Ok(call) => {
                tracing::info!(codec = ?call.negotiated().codec, "answered");
                self.phase = Phase::Up {
                    call: Box::new(call),
                    outbound: Some(outbound),
                };
                self.update(CallUpdate::Answered);
            }
            Err(e) => {
                // The dialog is up but we cannot play to it: end it rather than hold silence.
                tracing::error!("cannot set up the answered call: {e}");
                let mut dialog = answered.dialog.clone();
                if let Ok(bye) = dialog.request(Method::Bye, &sent_by, None) {
                    let _ = self.tx.send(ToEndpoint::Request {
                        call_id: self.call_id.clone(),
                        to: proxy,
                        request: bye,
                    });
                }
                self.update(CallUpdate::Failed {
                    code: 500,
                    reason: e.to_string(),
                });
            }
        }
    }

    fn flush_call(&mut self) {
        let Phase::Up { call, .. } = &mut self.phase else {
            return;
        };
        let mut messages = Vec::new();
        while let Some(out) = call.poll_sip() {
            messages.push(match out {
                SipOut::Raw { to, bytes } => ToEndpoint::Raw { to, bytes },
                SipOut::Request { to, request } => ToEndpoint::Request {
                    call_id: self.call_id.clone(),
                    to,
                    request,
                },
            });
        }
        let mut updates = Vec::new();
        let mut over = false;
        while let Some(event) = call.poll_event() {
            match event {
                CallEvent::Digit {
                    digit,
                    source,
                    after,
                } => {
                    self.metrics.digit(source.as_str());
                    updates.push(CallUpdate::Digit {
                        digit,
                        source,
                        after,
                    })
                }
                CallEvent::SecretDigit { source, after } => {
                    self.metrics.digit(source.as_str());
                    updates.push(CallUpdate::SecretDigit { source, after })
                }
                CallEvent::Decision(d) => updates.push(CallUpdate::Decision(d)),
                CallEvent::Prompt(_) => {}
                CallEvent::Ended(reason) => {
                    let stats = call.media_stats();
                    tracing::info!(?reason, ?stats, "call over");
                    self.metrics.detector_samples.inc_by(stats.detected_samples);
                    updates.push(CallUpdate::Ended(reason));
                    over = true;
                }
            }
        }
        let requests: Vec<Query> = std::iter::from_fn(|| call.poll_request()).collect();
        for request in requests {
            self.directory_work(request);
        }
        for m in messages {
            let _ = self.tx.send(m);
        }
        for u in updates {
            self.update(u);
        }
        if over {
            self.phase = Phase::Over;
        }
    }
}
