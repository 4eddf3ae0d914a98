//! The tokio shell of `hotdesk serve`: it only moves bytes and timers.
//!
//! One task owns the SIP socket and the sans-IO [`Endpoint`]; each call runs in a task of its
//! own with its RTP socket and its sans-IO [`Call`]. They talk over channels keyed by Call-ID:
//! the endpoint task hands a call what the endpoint routed to it, the call task hands back the
//! responses and requests its call wants sent. Everything protocol-shaped happens in the
//! sans-IO objects; nothing here decides what to answer.

mod ports;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::Instrument;

pub use ports::RtpPorts;

use crate::call::{AcceptError, Call, CallEvent, CallSettings, EndReason, FlowKind, SipOut};
use crate::config::Validated;
use crate::prompts::PromptError;
use crate::prompts::loader::PromptCache;
use crate::sip::endpoint::{Endpoint, EndpointEvent, EndpointSettings};
use crate::sip::message::{Request, Response};
use crate::sip::transaction::{Timers, TransactionKey};

/// The product name and version, for `Server` and `User-Agent` headers.
pub const AGENT: &str = concat!("hotdesk/", env!("CARGO_PKG_VERSION"));

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The SIP socket could not be bound.
    #[error("cannot listen for SIP on {addr}: {source}")]
    Bind {
        /// `sip.listen`.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The prompts could not be loaded.
    #[error(transparent)]
    Prompts(#[from] PromptError),
    /// The SIP socket failed.
    #[error("SIP socket: {0}")]
    Socket(std::io::Error),
}

/// What a call task gets from the endpoint task.
#[derive(Debug)]
enum ToCall {
    InDialog {
        key: TransactionKey,
        request: Request,
    },
    Ack(Request),
    Response(Response),
    /// Hang up at this time unless the call ends first.
    Drain(Instant),
}

/// What the endpoint task gets from call tasks.
#[derive(Debug)]
enum ToEndpoint {
    Respond {
        key: TransactionKey,
        response: Response,
    },
    Request {
        call_id: String,
        to: SocketAddr,
        request: Request,
    },
    Raw {
        to: SocketAddr,
        bytes: Bytes,
    },
    Ended {
        call_id: String,
    },
}

/// Everything a call task needs that every call shares.
struct Shared {
    config: Validated,
    prompts: Arc<PromptCache>,
    ports: RtpPorts,
    /// The port the SIP socket is bound to (for Via and Contact).
    sip_port: u16,
}

/// Runs the server until `shutdown` resolves, then drains: new calls are refused, running
/// calls get `sip.drain_timeout_s` to finish before they are hung up, and the function
/// returns once none is left.
pub async fn serve(
    config: Validated,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let prompts = Arc::new(PromptCache::load_dir(&config.config.prompts.dir)?);
    let listen = config.config.sip.listen;
    let socket = UdpSocket::bind(listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: listen,
            source,
        })?;
    let bound = socket.local_addr().map_err(ServerError::Socket)?;
    let shared = Arc::new(Shared {
        ports: RtpPorts::new(config.rtp_ports.clone()),
        sip_port: bound.port(),
        prompts,
        config,
    });
    tracing::info!(sip = %bound, prompts = shared.prompts.clips().len(), "ready");
    EndpointTask::new(socket, shared).run(shutdown).await
}

fn endpoint_settings(config: &Validated) -> EndpointSettings {
    let features = &config.config.features;
    EndpointSettings {
        agent: AGENT.into(),
        trusted: config.trusted.clone(),
        max_calls: config.config.sip.max_calls,
        services: vec![features.dtmf_test_code.clone()],
        retry_after: Duration::from_secs(5),
        timers: Timers::default(),
    }
}

fn flow_for(config: &Validated, service: &str) -> Option<FlowKind> {
    (service == config.config.features.dtmf_test_code).then_some(FlowKind::DtmfTest)
}

struct EndpointTask {
    socket: UdpSocket,
    shared: Arc<Shared>,
    endpoint: Endpoint,
    calls: HashMap<String, mpsc::UnboundedSender<ToCall>>,
    to_endpoint: mpsc::UnboundedSender<ToEndpoint>,
    from_calls: mpsc::UnboundedReceiver<ToEndpoint>,
}

impl EndpointTask {
    fn new(socket: UdpSocket, shared: Arc<Shared>) -> EndpointTask {
        let (to_endpoint, from_calls) = mpsc::unbounded_channel();
        EndpointTask {
            endpoint: Endpoint::new(endpoint_settings(&shared.config)),
            socket,
            shared,
            calls: HashMap::new(),
            to_endpoint,
            from_calls,
        }
    }

    async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let mut buf = vec![0u8; 65_536];
        tokio::pin!(shutdown);
        loop {
            let deadline = self.endpoint.poll_timeout();
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => {
                        self.endpoint.handle_datagram(Instant::now(), source, &buf[..n]);
                    }
                    // ICMP port unreachable from an earlier send shows up here on Linux.
                    Err(e) => tracing::debug!("SIP receive: {e}"),
                },
                Some(message) = self.from_calls.recv() => self.handle_call_message(message),
                () = sleep_until(deadline) => self.endpoint.handle_timeout(Instant::now()),
                () = &mut shutdown, if !self.endpoint.is_draining() => self.drain(),
            }
            self.flush().await;
            if self.endpoint.is_draining() && self.calls.is_empty() {
                tracing::info!("drained");
                return Ok(());
            }
        }
    }

    fn drain(&mut self) {
        let grace = Duration::from_secs(self.shared.config.config.sip.drain_timeout_s);
        tracing::info!(
            calls = self.calls.len(),
            grace_s = grace.as_secs(),
            "draining"
        );
        self.endpoint.start_draining();
        let deadline = Instant::now() + grace;
        for tx in self.calls.values() {
            let _ = tx.send(ToCall::Drain(deadline));
        }
    }

    fn handle_call_message(&mut self, message: ToEndpoint) {
        let now = Instant::now();
        match message {
            ToEndpoint::Respond { key, response } => self.endpoint.respond(now, &key, &response),
            ToEndpoint::Request {
                call_id,
                to,
                request,
            } => self.endpoint.send_request(now, &call_id, to, request),
            ToEndpoint::Raw { to, bytes } => self.endpoint.send_raw(to, bytes),
            ToEndpoint::Ended { call_id } => {
                self.calls.remove(&call_id);
                self.endpoint.call_ended(&call_id);
            }
        }
    }

    /// Sends what the endpoint queued and hands its events to the calls.
    async fn flush(&mut self) {
        loop {
            while let Some((to, bytes)) = self.endpoint.poll_transmit() {
                if let Err(e) = self.socket.send_to(&bytes, to).await {
                    tracing::warn!(%to, "SIP send: {e}");
                }
            }
            let Some(event) = self.endpoint.poll_event() else {
                break;
            };
            self.dispatch(event);
        }
    }

    fn dispatch(&mut self, event: EndpointEvent) {
        let (call_id, message) = match event {
            EndpointEvent::Incoming {
                key,
                request,
                source,
                service,
            } => return self.start_call(key, request, source, &service),
            EndpointEvent::InDialog {
                call_id,
                key,
                request,
            } => (call_id, ToCall::InDialog { key, request }),
            EndpointEvent::Ack { call_id, request } => (call_id, ToCall::Ack(request)),
            EndpointEvent::Response { call_id, response } => (call_id, ToCall::Response(response)),
            EndpointEvent::Cancelled { call_id } => {
                tracing::info!(call_id, "cancelled by the caller");
                return;
            }
            EndpointEvent::RequestFailed { call_id, method } => {
                tracing::info!(call_id, %method, "request got no response");
                return;
            }
        };
        if let Some(tx) = self.calls.get(&call_id) {
            let _ = tx.send(message);
        }
    }

    /// Answers a new INVITE: binds the call's RTP port, builds the call and its 200, and
    /// starts its task. Any failure answers the INVITE instead.
    fn start_call(
        &mut self,
        key: TransactionKey,
        invite: Request,
        source: SocketAddr,
        service: &str,
    ) {
        let now = Instant::now();
        let call_id = invite.call_id().unwrap_or_default().to_owned();
        let span = tracing::info_span!("call", call_id = %call_id, service, %source);
        let _entered = span.enter();
        let Some(flow) = flow_for(&self.shared.config, service) else {
            return;
        };
        let local_ip = local_ip_towards(&self.shared.config, source);
        let rtp = match self
            .shared
            .ports
            .bind(self.shared.config.config.sip.listen.ip())
            .and_then(|s| {
                s.set_nonblocking(true)?;
                UdpSocket::from_std(s)
            }) {
            Ok(socket) => socket,
            Err(e) => {
                tracing::error!("no RTP port: {e}");
                let busy = crate::sip::message::response_to(&invite, 503, "Service Unavailable")
                    .with_to_tag(&crate::sip::message::new_tag())
                    .with_header("Retry-After", "5");
                self.endpoint.respond(now, &key, &busy);
                return;
            }
        };
        let rtp_port = rtp.local_addr().map(|a| a.port()).unwrap_or_default();
        let settings = CallSettings {
            dtmf: self.shared.config.config.rtp.dtmf,
            codecs: self.shared.config.config.rtp.codecs.clone(),
            language: self.shared.config.config.ivr.language.clone(),
            rtp: SocketAddr::new(local_ip, rtp_port),
            sent_by: format!("{}", SocketAddr::new(local_ip, self.shared.sip_port)),
            contact: format!(
                "sip:hotdesk@{}",
                SocketAddr::new(local_ip, self.shared.sip_port)
            ),
            t1: Timers::default().t1,
            t2: Timers::default().t2,
            agent: AGENT.into(),
        };
        let accepted = Call::accept(
            now,
            &invite,
            source,
            flow,
            settings,
            self.shared.prompts.clone(),
            &mut rand::rng(),
        );
        match accepted {
            Ok((call, ok)) => {
                tracing::info!(
                    codec = ?call.negotiated().codec,
                    rtp = rtp_port,
                    "answered"
                );
                self.endpoint.respond(now, &key, &ok);
                let (tx, rx) = mpsc::unbounded_channel();
                self.calls.insert(call_id, tx);
                let task = CallTask {
                    call,
                    rtp,
                    rx,
                    tx: self.to_endpoint.clone(),
                    drain_at: None,
                };
                tokio::spawn(task.run().instrument(span.clone()));
            }
            Err(AcceptError::Sdp { error, response }) => {
                tracing::info!(code = response.code, "offer refused: {error}");
                self.endpoint.respond(now, &key, &response);
            }
            Err(AcceptError::Dialog { reason, response }) => {
                tracing::info!(code = response.code, "INVITE refused: {reason}");
                self.endpoint.respond(now, &key, &response);
            }
            Err(e) => {
                tracing::error!("cannot set up the call: {e}");
                let failed =
                    crate::sip::message::response_to(&invite, 500, "Server Internal Error")
                        .with_to_tag(&crate::sip::message::new_tag());
                self.endpoint.respond(now, &key, &failed);
            }
        }
    }
}

/// The address to advertise to `peer`: `sip.public_addr` when set, else the listen address,
/// else (listening on every interface) the local address the kernel routes towards the peer.
fn local_ip_towards(config: &Validated, peer: SocketAddr) -> IpAddr {
    let ip = config.public_ip();
    if !ip.is_unspecified() {
        return ip;
    }
    let probe = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .and_then(|s| s.connect(peer).and_then(|()| s.local_addr()));
    match probe {
        Ok(addr) => addr.ip(),
        Err(_) => ip,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

struct CallTask {
    call: Call,
    rtp: UdpSocket,
    rx: mpsc::UnboundedReceiver<ToCall>,
    tx: mpsc::UnboundedSender<ToEndpoint>,
    drain_at: Option<Instant>,
}

impl CallTask {
    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        while !self.call.is_ended() {
            let deadline = self.call.poll_timeout();
            tokio::select! {
                received = self.rtp.recv_from(&mut buf) => {
                    if let Ok((n, source)) = received {
                        self.call.handle_rtp(Instant::now(), source, &buf[..n]);
                    }
                }
                message = self.rx.recv() => match message {
                    Some(m) => self.handle(m),
                    // The endpoint task is gone: nothing can be sent any more.
                    None => return,
                },
                () = sleep_until(deadline) => self.call.handle_timeout(Instant::now()),
                () = sleep_until(self.drain_at) => {
                    self.drain_at = None;
                    self.call.hang_up(EndReason::Drained);
                }
            }
            self.flush().await;
        }
        let _ = self.tx.send(ToEndpoint::Ended {
            call_id: self.call.call_id().to_owned(),
        });
    }

    fn handle(&mut self, message: ToCall) {
        let now = Instant::now();
        match message {
            ToCall::InDialog { key, request } => {
                let response = self.call.handle_request(now, &request);
                let _ = self.tx.send(ToEndpoint::Respond { key, response });
            }
            ToCall::Ack(ack) => self.call.handle_ack(now, &ack),
            // Our BYE's response: the call is over for us whatever it says.
            ToCall::Response(r) => tracing::debug!(code = r.code, "response to our request"),
            ToCall::Drain(at) => self.drain_at = Some(at),
        }
    }

    async fn flush(&mut self) {
        while let Some((to, bytes)) = self.call.poll_rtp() {
            if let Err(e) = self.rtp.send_to(&bytes, to).await {
                tracing::debug!(%to, "RTP send: {e}");
            }
        }
        while let Some(out) = self.call.poll_sip() {
            let message = match out {
                SipOut::Raw { to, bytes } => ToEndpoint::Raw { to, bytes },
                SipOut::Request { to, request } => ToEndpoint::Request {
                    call_id: self.call.call_id().to_owned(),
                    to,
                    request,
                },
            };
            let _ = self.tx.send(message);
        }
        while let Some(event) = self.call.poll_event() {
            if let CallEvent::Ended(reason) = event {
                let stats = self.call.media_stats();
                tracing::info!(?reason, ?stats, "call over");
            }
        }
    }
}
