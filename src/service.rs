//! `hotdesk serve` put together: the directory (store), webhook delivery of its reports, the
//! media server and the HTTP API, in one process with one shutdown.
//!
//! Order matters at both ends. Start: the store first (a server that cannot verify PINs must
//! not answer `*88`), then delivery, then the API and the SIP socket; "ready" is logged once
//! all of them listen. Stop (SIGTERM): the media server drains first (new calls 503, running
//! calls finish within `sip.drain_timeout_s`), then the API and delivery stop; reports not yet
//! delivered stay in the outbox for the next start.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::watch;

use crate::api::{self, Activations, ApiState};
use crate::config::Validated;
use crate::metrics::Metrics;
use crate::report::delivery::{self, DeliveryError};
use crate::server::{self, ServerError, ServerHandle, Services};
use hotdesk_core::identity::SourceKey;
use hotdesk_core::ivr::executor::{BoxFuture, FlowServices};
use hotdesk_core::model::{LoginAttempt, LoginOutcome, Release, Unavailable};
use hotdesk_store::directory::DirectoryError;
use hotdesk_store::{Outbox, Store, StoreFlows};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The store could not be opened.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// Webhook delivery could not be set up.
    #[error("report.webhook_url: {0}")]
    Delivery(#[from] DeliveryError),
    /// The media server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The API could not listen.
    #[error("cannot listen for the API on {addr}: {reason}")]
    Api {
        /// `api.listen`.
        addr: SocketAddr,
        /// Why (not a `source`: the message already says it).
        reason: std::io::Error,
    },
}

/// The directory as the flows see it, counting outcomes for `/metrics`.
pub struct FlowDirectory {
    directory: StoreFlows,
    metrics: Arc<Metrics>,
}

impl FlowDirectory {
    /// `store` for the flows, counting into `metrics`.
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> FlowDirectory {
        FlowDirectory {
            directory: StoreFlows(store),
            metrics,
        }
    }
}

impl FlowServices for FlowDirectory {
    fn login(&self, a: LoginAttempt) -> BoxFuture<'_, Result<LoginOutcome, Unavailable>> {
        Box::pin(async move {
            let outcome = FlowServices::login(&self.directory, a).await;
            match &outcome {
                Ok(LoginOutcome::Accepted { .. }) => self.metrics.logins.inc(),
                Ok(LoginOutcome::LockedOut { .. }) => self.metrics.lockouts.inc(),
                Ok(LoginOutcome::Incorrect) => self.metrics.login_failures.inc(),
                Err(_) => 0,
            };
            outcome
        })
    }

    fn release(&self, r: Release) -> BoxFuture<'_, Result<Option<String>, Unavailable>> {
        Box::pin(async move {
            let released = FlowServices::release(&self.directory, r).await;
            if matches!(released, Ok(Some(_))) {
                self.metrics.releases.inc();
            }
            released
        })
    }
}

/// How often the store is probed with a write.
const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How often delivered reports past `report.retention_days` are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Probes the store with a write every [`STORE_PROBE_INTERVAL`]; while it fails (read-only,
/// disk full, file gone), new calls get 503 + Retry-After and `/readyz` says why, instead of
/// callers keying an account and PIN that cannot be recorded. Logs each change once. Each
/// round also hands the media server the sources blocked now (by this instance, another one
/// or none: an API unlock ends a block here within one round), and once an hour the store is
/// pruned.
async fn watch_store(
    directory: Arc<dyn Store>,
    server: ServerHandle,
    retention: Option<Duration>,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut fault: Option<String> = None;
    let mut next_prune = tokio::time::Instant::now();
    loop {
        match directory
            .blocked_sources_at(hotdesk_store::directory::now())
            .await
        {
            Ok(blocked) => server.set_blocked(
                blocked
                    .into_iter()
                    .filter_map(|(key, until)| Some((SourceKey::parse(&key).ok()?, until)))
                    .collect(),
            ),
            Err(e) => tracing::warn!("blocked sources: {e}"),
        }
        if tokio::time::Instant::now() >= next_prune {
            next_prune += PRUNE_INTERVAL;
            match directory
                .prune_at(hotdesk_store::directory::now(), retention)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(reports = n, "pruned delivered reports past retention"),
                Err(e) => tracing::warn!("pruning the store: {e}"),
            }
        }
        let now = directory
            .probe()
            .await
            .err()
            .map(|e| format!("store unavailable: {e}"));
        if now != fault {
            match &now {
                Some(reason) => tracing::error!("{reason}; new calls are refused with 503"),
                None => tracing::info!("store available again; taking calls"),
            }
            server.set_unavailable(now.clone());
            fault = now;
        }
        tokio::select! {
            () = tokio::time::sleep(STORE_PROBE_INTERVAL) => {}
            () = &mut stop => return,
        }
    }
}

/// Raises the soft limit on open files to the hard one: every call holds an RTP socket and
/// every API client a connection, and the usual soft limit of 1024 was reached by 1,100 idle
/// API connections in an outside test (then INVITEs failed with "Too many open files").
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
}

/// Runs everything until `shutdown` resolves and the media server has drained.
pub async fn run(
    config: Validated,
    env: impl Fn(&str) -> Option<String>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    raise_fd_limit();
    let opened = config.open_directory(&env).await?;
    let outbox: Arc<dyn Outbox> = Arc::new(opened.clone());
    let directory: Arc<dyn Store> = Arc::new(opened);
    let metrics = Arc::new(Metrics::default());
    let (stop, stopped) = watch::channel(false);
    let wait_stop = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };

    let delivery = match &config.config.report.webhook_url {
        Some(url) => {
            // Validation already refused a webhook without its secret.
            let secret = env(&config.config.report.secret_env).unwrap_or_default();
            Some(
                delivery::Delivery::new(outbox.clone(), url, SecretString::from(secret))?
                    .metrics(metrics.clone())
                    .signature(config.config.report.signature)
                    .spawn(wait_stop()),
            )
        }
        None => {
            tracing::warn!("no report.webhook_url: reports are kept for GET /v1/events only");
            None
        }
    };

    let flows = Arc::new(FlowDirectory::new(directory.clone(), metrics.clone()));
    let services = Services {
        directory: Some(flows),
        metrics: metrics.clone(),
    };
    let (media, handle) = server::bind(config.clone(), services).await?;

    let addr = config.config.api.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|reason| ServiceError::Api { addr, reason })?;
    let token = env(&config.config.api.token_env)
        .filter(|t| !t.is_empty())
        .map(|t| Arc::new(SecretString::from(t)));
    let retention = match config.config.report.retention_days {
        0 => None,
        days => Some(Duration::from_secs(u64::from(days) * 86_400)),
    };
    let health = tokio::spawn(watch_store(
        directory.clone(),
        handle.clone(),
        retention,
        wait_stop(),
    ));
    let api = &config.config.api;
    let limits = api::ServeLimits {
        max_connections: api.max_connections,
        max_per_source: (api.max_connections / 4).max(1),
        header_timeout: Duration::from_secs(api.header_timeout_s),
        request_timeout: Duration::from_secs(api.header_timeout_s.max(30)),
    };
    let state = ApiState {
        directory: directory.clone(),
        outbox,
        server: handle,
        activations: Activations::default(),
        metrics,
        token,
        config: Arc::new(config),
    };
    let api_task = tokio::spawn(api::serve(
        listener,
        api::router(state),
        limits,
        wait_stop(),
    ));
    tracing::info!(api = %addr, "API listening");

    let result = media.run(shutdown).await;
    let _ = stop.send(true);
    let _ = health.await;
    if let Err(e) = api_task.await {
        tracing::warn!("API task: {e}");
    }
    if let Some(task) = delivery {
        let _ = task.await;
    }
    directory.close().await;
    result.map_err(ServiceError::from)
}
