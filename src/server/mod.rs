//! The tokio shell of `hotdesk serve`: it only moves bytes and timers.
//!
//! One task owns the SIP socket and the sans-IO [`Endpoint`]; each call runs in a task of its
//! own with its RTP socket and its sans-IO objects ([`Outbound`] while a callback rings,
//! [`Call`] once a call is up). They talk over channels keyed by Call-ID: the endpoint task
//! hands a call what the endpoint routed to it, the call task hands back the responses and
//! requests its call wants sent. Everything protocol-shaped happens in the sans-IO objects;
//! nothing here decides what to answer.
//!
//! [`bind`] gives the [`Server`] to run and a [`ServerHandle`] through which the rest of the
//! program (the HTTP API) places calls.

mod call_task;
mod ports;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use secrecy::ExposeSecret;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use call_task::TaskLinks;
pub use call_task::{CallControl, CallUpdate};
pub use ports::RtpPorts;

use crate::config::Validated;
use crate::metrics::Metrics;
use call_task::CallTask;
use hotdesk_core::call::{AcceptError, Call, CallSettings, FlowStart};
use hotdesk_core::identity::SourceKey;
use hotdesk_core::ivr::executor::{FlowServices, NoDirectory};
use hotdesk_core::ivr::{FlowContext, FlowSpec};
use hotdesk_core::media::session::MediaSettings;
use hotdesk_core::model::Answer;
use hotdesk_core::prompts::PromptError;
use hotdesk_core::prompts::loader::PromptCache;
use hotdesk_core::sip::endpoint::{
    CapacityError, Endpoint, EndpointEvent, EndpointSettings, EndpointStats,
};
use hotdesk_core::sip::message::{Request, Response, new_tag, response_to};
use hotdesk_core::sip::transaction::{Timers, TransactionEvent, TransactionKey};
use hotdesk_core::sip::uac::{Credentials, Outbound, OutboundSettings, SettingsError};

/// The product name and version, for `Server` and `User-Agent` headers.
pub const AGENT: &str = concat!("hotdesk/", env!("CARGO_PKG_VERSION"));

/// Datagrams read from the SIP socket at once before what they caused is sent.
const RECEIVE_BATCH: usize = 64;

/// The SIP socket's receive buffer: a few seconds of a flood's worth, so a call's ACK is not
/// the datagram the kernel drops while the endpoint catches up.
const SIP_RECEIVE_BUFFER: usize = 4 << 20;

/// Payload type we offer `telephone-event` at on outbound calls (the common convention).
const EVENT_PAYLOAD_TYPE: u8 = 101;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The SIP socket could not be bound.
    #[error("cannot listen for SIP on {addr}: {reason}")]
    Bind {
        /// `sip.listen`.
        addr: SocketAddr,
        /// Why (not a `source`: the message already says it).
        reason: std::io::Error,
    },
    /// The prompts could not be loaded.
    #[error(transparent)]
    Prompts(#[from] PromptError),
    /// The SIP socket failed.
    #[error("SIP socket: {0}")]
    Socket(std::io::Error),
}

/// Why an outbound call could not be placed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OriginateError {
    /// `sip.outbound_proxy` is not set, so there is nowhere to send the INVITE.
    #[error("sip.outbound_proxy is not configured")]
    NoProxy,
    /// The proxy's host name did not resolve.
    #[error("cannot resolve the outbound proxy {proxy}: {reason}")]
    Resolve {
        /// The configured URI.
        proxy: String,
        /// Why.
        reason: String,
    },
    /// No call slot (over `sip.max_calls`, or draining).
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    /// No RTP port.
    #[error("no RTP port: {0}")]
    Rtp(std::io::Error),
    /// The INVITE could not be built.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The server has stopped.
    #[error("the server has stopped")]
    Stopped,
}

/// What to call.
#[derive(Debug, Clone)]
pub struct Originate {
    /// The extension to ring (`sip:DEVICE@domain`, sent to the outbound proxy).
    pub device: String,
    /// What runs on the call once it is answered.
    pub flow: FlowStart,
    /// How long it may ring before we CANCEL.
    pub ring_timeout: Duration,
}

/// Places calls through a running [`Server`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    commands: mpsc::UnboundedSender<Command>,
    sip: SocketAddr,
    draining: Arc<AtomicBool>,
    /// Why new calls are refused, while they are (see [`ServerHandle::set_unavailable`]).
    unavailable: Arc<Mutex<Option<String>>>,
    /// `sip.outbound_proxy`.
    outbound_proxy: Option<String>,
}

impl ServerHandle {
    /// The address the SIP socket is bound to.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// Whether the server is shutting down (`/readyz` says not ready).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Refuse new calls (503 + Retry-After) because of `reason`, e.g. the store cannot be
    /// written; `None` takes them again. Calls in progress go on.
    pub fn set_unavailable(&self, reason: Option<String>) {
        *self.unavailable.lock().unwrap_or_else(|e| e.into_inner()) = reason.clone();
        let _ = self.commands.send(Command::Unavailable(reason));
    }

    /// Refuse new calls (403) from these sources until the time given with each (blocked
    /// after failed logins); replaces the previous set.
    pub fn set_blocked(&self, blocked: Vec<(SourceKey, time::OffsetDateTime)>) {
        let wall = time::OffsetDateTime::now_utc();
        let now = Instant::now();
        let blocked = blocked
            .into_iter()
            .map(|(key, until)| {
                let left = (until - wall).try_into().unwrap_or(Duration::ZERO);
                (key, now + left)
            })
            .collect();
        let _ = self.commands.send(Command::Blocked(blocked));
    }

    /// Why new calls are refused, if they are.
    pub fn unavailable(&self) -> Option<String> {
        self.unavailable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rings `what.device` and runs `what.flow` there when answered; progress comes through
    /// the returned [`CallControl`].
    pub async fn originate(&self, what: Originate) -> Result<CallControl, OriginateError> {
        // DNS is resolved here, in the caller's task: the endpoint task serves every call's
        // SIP and must not wait on a resolver.
        let uri = self
            .outbound_proxy
            .as_deref()
            .ok_or(OriginateError::NoProxy)?;
        let proxy = resolve_proxy(uri).await?;
        let (reply, result) = oneshot::channel();
        self.commands
            .send(Command::Originate { what, proxy, reply })
            .map_err(|_| OriginateError::Stopped)?;
        result.await.map_err(|_| OriginateError::Stopped)?
    }
}

#[derive(Debug)]
enum Command {
    Originate {
        what: Originate,
        /// The outbound proxy, resolved.
        proxy: SocketAddr,
        reply: oneshot::Sender<Result<CallControl, OriginateError>>,
    },
    /// See [`ServerHandle::set_unavailable`].
    Unavailable(Option<String>),
    /// See [`ServerHandle::set_blocked`].
    Blocked(HashMap<SourceKey, Instant>),
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
    /// One of the call's client transactions failed.
    Failed {
        key: TransactionKey,
        event: TransactionEvent,
    },
    /// Hang up (or cancel) at this time unless the call ends first.
    Drain(Instant),
    /// Whoever placed the call wants it over.
    HangUp,
    /// The directory's answer to the flow's request.
    Answer(Answer),
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
    directory: Arc<dyn FlowServices>,
    metrics: Arc<Metrics>,
    draining: Arc<AtomicBool>,
    prompts: Arc<PromptCache>,
    ports: RtpPorts,
    /// The port the SIP socket is bound to (for Via and Contact).
    sip_port: u16,
}

impl Shared {
    /// What a call running `flow` needs to know about its endpoint, advertising `local_ip`.
    fn call_settings(&self, local_ip: IpAddr, rtp_port: u16, flow: &FlowStart) -> CallSettings {
        let config = &self.config.config;
        let sip = SocketAddr::new(local_ip, self.sip_port);
        let max_call_s = self.config.max_call_s(flow.spec);
        CallSettings {
            media: MediaSettings {
                dtmf: config.rtp.dtmf,
                rtp_timeout: (config.rtp.timeout_s > 0)
                    .then(|| Duration::from_secs(config.rtp.timeout_s)),
            },
            media_networks: self.config.media_sources.clone().into(),
            ack_timeout: Duration::from_secs(config.sip.ack_timeout_s),
            max_duration: Duration::from_secs(max_call_s),
            codecs: config.rtp.codecs.clone(),
            language: config.ivr.language.clone(),
            rtp: SocketAddr::new(local_ip, rtp_port),
            sent_by: sip.to_string(),
            contact: format!("sip:hotdesk@{sip}"),
            t1: Timers::default().t1,
            t2: Timers::default().t2,
            agent: AGENT.into(),
        }
    }

    /// The address to advertise to `peer`: `sip.public_addr` when set, else the listen
    /// address, else (listening on every interface) the local address routed towards `peer`.
    fn local_ip_towards(&self, peer: SocketAddr) -> IpAddr {
        let ip = self.config.public_ip();
        if !ip.is_unspecified() {
            return ip;
        }
        let probe = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
            .and_then(|s| s.connect(peer).and_then(|()| s.local_addr()));
        probe.map(|a| a.ip()).unwrap_or(ip)
    }

    /// A UDP socket on the next free port of `rtp.port_range`.
    fn bind_rtp(&self) -> std::io::Result<UdpSocket> {
        let socket = self.ports.bind(self.config.config.sip.listen.ip())?;
        socket.set_nonblocking(true)?;
        UdpSocket::from_std(socket)
    }
}

/// A bound, not yet running server.
pub struct Server {
    socket: UdpSocket,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
}

/// What the server uses besides its configuration.
#[derive(Clone, Default)]
pub struct Services {
    /// Users, PINs and logins. Without one the hot-desk flows run but every verification
    /// fails as unavailable (the DTMF test code needs none).
    pub directory: Option<Arc<dyn FlowServices>>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// Loads the prompts and binds the SIP socket.
pub async fn bind(
    config: Validated,
    services: Services,
) -> Result<(Server, ServerHandle), ServerError> {
    let prompts = Arc::new(PromptCache::load_dir(&config.config.prompts.dir)?);
    let listen = config.config.sip.listen;
    let socket = bind_sip(listen).map_err(|reason| ServerError::Bind {
        addr: listen,
        reason,
    })?;
    let bound = socket.local_addr().map_err(ServerError::Socket)?;
    let shared = Arc::new(Shared {
        ports: RtpPorts::new(config.rtp_ports.clone()),
        sip_port: bound.port(),
        prompts,
        config,
        directory: services.directory.unwrap_or_else(|| Arc::new(NoDirectory)),
        metrics: services.metrics,
        draining: Arc::new(AtomicBool::new(false)),
    });
    let (tx, commands) = mpsc::unbounded_channel();
    let handle = ServerHandle {
        commands: tx,
        sip: bound,
        draining: shared.draining.clone(),
        unavailable: Arc::default(),
        outbound_proxy: shared.config.config.sip.outbound_proxy.clone(),
    };
    Ok((
        Server {
            socket,
            shared,
            commands,
        },
        handle,
    ))
}

impl Server {
    /// Runs until `shutdown` resolves, then drains: new calls are refused, running calls get
    /// `sip.drain_timeout_s` to finish before they are hung up, and `run` returns once none
    /// is left.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let bound = self.socket.local_addr().map_err(ServerError::Socket)?;
        tracing::info!(sip = %bound, prompts = self.shared.prompts.clips().len(), "ready");
        EndpointTask::new(self).run(shutdown).await
    }
}

/// [`bind`] and [`Server::run`].
pub async fn serve(
    config: Validated,
    services: Services,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let (server, _handle) = bind(config, services).await?;
    server.run(shutdown).await
}

fn endpoint_settings(config: &Validated) -> EndpointSettings {
    EndpointSettings {
        agent: AGENT.into(),
        trusted: config.trusted.clone(),
        max_calls: config.config.sip.max_calls,
        services: config.codes.keys().cloned().collect(),
        retry_after: Duration::from_secs(5),
        timers: Timers::default(),
        max_requests_per_source_s: config.config.sip.max_requests_per_source_s,
        max_invites_per_source_s: config.config.sip.max_invites_per_source_s,
        rate_exempt: config.source_exempt.clone(),
    }
}

/// The flow a service number runs for `invite`'s caller, counting its logins against
/// `source` when per-source limits apply.
fn flow_for(
    config: &Validated,
    service: &str,
    invite: &Request,
    source: IpAddr,
) -> Option<FlowStart> {
    let spec: &'static FlowSpec = config.codes.get(service)?;
    let device = invite.caller_user().unwrap_or_default();
    Some(FlowStart {
        spec,
        ctx: FlowContext {
            is_desk: config.is_device(&device),
            device,
            user: None,
            settings: config.flow_settings(),
        },
        source: config.limited_source(source),
    })
}

/// `sip:host[:port][;params]` → a socket address (port 5060 when absent).
async fn resolve_proxy(uri: &str) -> Result<SocketAddr, OriginateError> {
    let failed = |reason: String| OriginateError::Resolve {
        proxy: uri.into(),
        reason,
    };
    let hostport = uri
        .strip_prefix("sip:")
        .map(|rest| rest.split([';', '?']).next().unwrap_or(rest))
        .map(|hp| hp.rsplit_once('@').map_or(hp, |(_, h)| h))
        .ok_or_else(|| failed("not a sip: URI".into()))?;
    let with_port = if hostport.starts_with('[') {
        if hostport.contains("]:") {
            hostport.to_owned()
        } else {
            format!("{hostport}:5060")
        }
    } else if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5060")
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| failed(e.to_string()))?
        .next()
        .ok_or_else(|| failed("no address".into()))
}

struct EndpointTask {
    socket: UdpSocket,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    endpoint: Endpoint,
    calls: HashMap<String, mpsc::UnboundedSender<ToCall>>,
    to_endpoint: mpsc::UnboundedSender<ToEndpoint>,
    from_calls: mpsc::UnboundedReceiver<ToEndpoint>,
    /// The endpoint's counters as last copied into the metrics.
    exported: EndpointStats,
}

impl EndpointTask {
    fn new(server: Server) -> EndpointTask {
        let (to_endpoint, from_calls) = mpsc::unbounded_channel();
        EndpointTask {
            endpoint: Endpoint::new(endpoint_settings(&server.shared.config)),
            socket: server.socket,
            shared: server.shared,
            commands: server.commands,
            calls: HashMap::new(),
            to_endpoint,
            from_calls,
            exported: EndpointStats::default(),
        }
    }

    /// Takes what else is already queued on the socket (up to a batch) before sending
    /// anything: under a flood the datagrams that will be dropped cost a lookup each, and the
    /// queue drains before it overflows onto a call's ACK.
    fn receive_queued(&mut self, now: Instant, buf: &mut [u8]) {
        for _ in 0..RECEIVE_BATCH {
            match self.socket.try_recv_from(buf) {
                Ok((n, source)) => self.endpoint.handle_datagram(now, source, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => tracing::debug!("SIP receive: {e}"),
            }
        }
    }

    /// Copies what the endpoint refused since the last call into the metrics.
    fn export_stats(&mut self) {
        let now = self.endpoint.stats();
        let was = std::mem::replace(&mut self.exported, now);
        let metrics = &self.shared.metrics;
        metrics.sip_refused("rate", now.dropped_rate - was.dropped_rate);
        metrics.sip_refused("invite_rate", now.dropped_invites - was.dropped_invites);
        metrics.sip_refused("blocked", now.refused_blocked - was.refused_blocked);
        metrics.sip_refused("not_peer", now.refused_not_peer - was.refused_not_peer);
    }

    async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let mut buf = vec![0u8; 65_536];
        tokio::pin!(shutdown);
        loop {
            let deadline = self.endpoint.poll_timeout();
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => {
                        let now = Instant::now();
                        self.endpoint.handle_datagram(now, source, &buf[..n]);
                        self.receive_queued(now, &mut buf);
                    }
                    // ICMP port unreachable from an earlier send shows up here on Linux.
                    Err(e) => tracing::debug!("SIP receive: {e}"),
                },
                Some(message) = self.from_calls.recv() => self.handle_call_message(message),
                Some(command) = self.commands.recv() => self.handle_command(command),
                () = sleep_until(deadline) => self.endpoint.handle_timeout(Instant::now()),
                () = &mut shutdown, if !self.endpoint.is_draining() => self.drain(),
            }
            self.flush().await;
            self.export_stats();
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
        self.shared.draining.store(true, Ordering::Relaxed);
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

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Originate { what, proxy, reply } => {
                let _ = reply.send(self.originate(what, proxy));
            }
            Command::Unavailable(reason) => self.endpoint.set_unavailable(reason),
            Command::Blocked(blocked) => self.endpoint.set_blocked(blocked),
        }
    }

    /// Starts a callback: a call slot, an RTP port, the INVITE, and the call's task.
    fn originate(
        &mut self,
        what: Originate,
        proxy: SocketAddr,
    ) -> Result<CallControl, OriginateError> {
        let sip = &self.shared.config.config.sip;
        let rtp = self.shared.bind_rtp().map_err(OriginateError::Rtp)?;
        let rtp_port = rtp.local_addr().map_err(OriginateError::Rtp)?.port();
        let local_ip = self.shared.local_ip_towards(proxy);
        let call = self.shared.call_settings(local_ip, rtp_port, &what.flow);
        let credentials = match (&sip.auth_user, &self.shared.config.sip_password) {
            (Some(user), Some(password)) => Some(Credentials {
                user: user.clone(),
                password: password.expose_secret().to_owned(),
            }),
            _ => None,
        };
        let settings = OutboundSettings {
            target_uri: format!("sip:{}@{}", what.device, sip.domain),
            from_uri: format!("sip:hotdesk@{}", sip.domain),
            contact: call.contact.clone(),
            sent_by: call.sent_by.clone(),
            proxy,
            credentials,
            ring_timeout: what.ring_timeout,
            codecs: call.codecs.clone(),
            event_payload_type: EVENT_PAYLOAD_TYPE,
            local_rtp: call.rtp,
            agent: AGENT.into(),
            call_id: None,
            t1: call.t1,
        };
        let outbound = Outbound::start(Instant::now(), settings, &mut rand::rng())?;
        let call_id = outbound.call_id().to_owned();
        self.endpoint.register_outbound(&call_id, proxy.ip())?;
        let span = tracing::info_span!("call", call_id = %call_id, device = %what.device, direction = "out");
        span.in_scope(|| tracing::info!(%proxy, "calling"));
        let (links, tx) = self.links();
        let (updates_tx, updates) = mpsc::unbounded_channel();
        self.calls.insert(call_id.clone(), tx.clone());
        let task = CallTask::outbound(
            outbound,
            proxy,
            what.flow,
            call,
            self.shared.prompts.clone(),
            rtp,
            links,
            updates_tx,
        );
        tokio::spawn(task.run().instrument(span));
        Ok(CallControl::new(call_id, updates, tx))
    }

    /// A new call task's channels, and the sender the endpoint task keeps for it.
    fn links(&self) -> (TaskLinks, mpsc::UnboundedSender<ToCall>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let links = TaskLinks {
            rx,
            to_self: tx.clone(),
            tx: self.to_endpoint.clone(),
            directory: self.shared.directory.clone(),
            metrics: self.shared.metrics.clone(),
        };
        (links, tx)
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
            EndpointEvent::RequestFailed {
                call_id,
                key,
                event,
            } => (call_id, ToCall::Failed { key, event }),
            EndpointEvent::Cancelled { call_id } => {
                tracing::info!(call_id, "cancelled by the caller");
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
        let span =
            tracing::info_span!("call", call_id = %call_id, service, %source, direction = "in");
        let _entered = span.enter();
        let Some(flow) = flow_for(&self.shared.config, service, &invite, source.ip()) else {
            return;
        };
        let refuse = |code: u16, reason: &str| {
            let mut r = response_to(&invite, code, reason).with_to_tag(&new_tag());
            if code == 503 {
                r = r.with_header("Retry-After", "5");
            }
            r.with_header("Server", AGENT)
        };
        let rtp = match self.shared.bind_rtp() {
            Ok(socket) => socket,
            Err(e) => {
                tracing::error!("no RTP port: {e}");
                self.endpoint
                    .respond(now, &key, &refuse(503, "Service Unavailable"));
                return;
            }
        };
        let rtp_port = rtp.local_addr().map(|a| a.port()).unwrap_or_default();
        let settings =
            self.shared
                .call_settings(self.shared.local_ip_towards(source), rtp_port, &flow);
        let accepted = Call::accept(
            now,
            &invite,
            source,
            flow,
            settings,
            self.shared.prompts.clone(),
            &mut rand::rng(),
        );
        let response = match accepted {
            Ok((call, ok)) => {
                tracing::info!(codec = ?call.negotiated().codec, rtp = rtp_port, "answered");
                let (links, tx) = self.links();
                self.calls.insert(call_id, tx);
                let task = CallTask::inbound(call, rtp, links);
                tokio::spawn(task.run().instrument(span.clone()));
                ok
            }
            Err(AcceptError::Sdp { error, response }) => {
                tracing::info!(code = response.code, "offer refused: {error}");
                *response
            }
            Err(AcceptError::Dialog { reason, response }) => {
                tracing::info!(code = response.code, "INVITE refused: {reason}");
                *response
            }
            Err(e) => {
                tracing::error!("cannot set up the call: {e}");
                refuse(500, "Server Internal Error")
            }
        };
        self.endpoint.respond(now, &key, &response);
    }
}

/// The SIP socket, with a receive buffer of [`SIP_RECEIVE_BUFFER`] (the kernel may cap it at
/// `net.core.rmem_max`; what it gives is logged).
fn bind_sip(listen: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(listen),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if let Err(e) = socket.set_recv_buffer_size(SIP_RECEIVE_BUFFER) {
        tracing::warn!("SIP receive buffer: {e}");
    }
    socket.bind(&listen.into())?;
    socket.set_nonblocking(true)?;
    tracing::debug!(
        bytes = socket.recv_buffer_size().unwrap_or(0),
        "SIP receive buffer"
    );
    UdpSocket::from_std(socket.into())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn proxy_uris_resolve_with_the_default_port() {
        let cases = [
            ("sip:127.0.0.1", "127.0.0.1:5060"),
            ("sip:127.0.0.1:5080", "127.0.0.1:5080"),
            ("sip:pbx@127.0.0.1:5070;transport=udp", "127.0.0.1:5070"),
            ("sip:[::1]", "[::1]:5060"),
            ("sip:[::1]:5099", "[::1]:5099"),
        ];
        for (uri, want) in cases {
            assert_eq!(
                resolve_proxy(uri).await.unwrap(),
                want.parse::<SocketAddr>().unwrap(),
                "{uri}"
            );
        }
        assert!(matches!(
            resolve_proxy("http://x").await,
            Err(OriginateError::Resolve { .. })
        ));
    }
}
