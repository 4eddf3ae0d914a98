//! Webhook delivery: one tokio task that posts the outbox to `report.webhook_url`.
//!
//! Each round takes the oldest undelivered report of every device whose retry time has come
//! and posts them concurrently; a report is marked delivered on a 2xx and nothing else. A
//! failure (non-2xx, redirect, timeout, refused connection) backs that report off
//! exponentially with jitter and, since only the head of each device's queue is ever sent,
//! holds back the later reports of the same device and no other. Attempt count, next attempt
//! time and last error live in the outbox row, so backoff and order survive a restart.
//!
//! The task wakes as soon as the directory commits a report, otherwise at the earliest retry
//! time (and at least every `cap`, so a wall-clock step cannot stall it). Delivery is at least
//! once: a crash between the receiver's 2xx and the row update sends that report again, and
//! the receiver drops it by `X-Hotdesk-Event-Id`.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tokio::task::{JoinHandle, JoinSet};

use hotdesk_store::Outbox;
use hotdesk_store::directory::{DirectoryError, Pending, now, to_ms};

use super::SignatureScheme;

/// How long one POST may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The first retry delay (before jitter).
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Devices posted to at once in one round.
const MAX_IN_FLIGHT: usize = 32;

/// Why the delivery task cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// `report.webhook_url` is not an http(s) URL.
    #[error("report.webhook_url: {reason}")]
    Url {
        /// Why.
        reason: String,
    },
    /// The HTTP client cannot be built.
    #[error("report.webhook_url: HTTP client: {0}")]
    Client(String),
}

/// Makes ring the process's rustls crypto provider (reqwest is built without one, so that
/// the binary has exactly one). Idempotent; a provider installed first is kept.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The delivery task's settings; [`Delivery::spawn`] starts it.
#[derive(Clone)]
pub struct Delivery {
    directory: std::sync::Arc<dyn Outbox>,
    url: reqwest::Url,
    secret: SecretString,
    client: reqwest::Client,
    base: Duration,
    cap: Duration,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    scheme: SignatureScheme,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("host", &self.url.host_str())
            .field("base", &self.base)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

/// What a round leaves to do.
enum Round {
    /// Something was sent: look again at once (the next report of a device may be waiting).
    Again,
    /// Nothing due: the earliest retry time, if anything is pending.
    Wait(Option<i64>),
}

impl Delivery {
    /// Delivery of `directory`'s outbox to `url`, signed with `secret`; backoff 1 s to 60 s,
    /// 5 s request timeout.
    pub fn new(
        directory: std::sync::Arc<dyn Outbox>,
        url: &str,
        secret: SecretString,
    ) -> Result<Delivery, DeliveryError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| DeliveryError::Url {
            reason: format!("not a URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(DeliveryError::Url {
                reason: "want http://HOST/… or https://HOST/…".into(),
            });
        }
        if secret.expose_secret().is_empty() {
            return Err(DeliveryError::Url {
                reason: "the signing secret is empty".into(),
            });
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A redirected POST may turn into a GET elsewhere: treat it as a failure to see.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hotdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeliveryError::Client(error_chain(&e)))?;
        Ok(Delivery {
            directory,
            url: parsed,
            secret,
            client,
            base: BACKOFF_BASE,
            cap: BACKOFF_CAP,
            metrics: None,
            scheme: SignatureScheme::default(),
        })
    }

    /// Another backoff: the first retry after about `base`, doubling up to `cap` (tests use
    /// milliseconds).
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Delivery {
        self.base = base.max(Duration::from_millis(1));
        self.cap = cap.max(self.base);
        self
    }

    /// Counts deliveries and their latency into `metrics`.
    pub fn metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Delivery {
        self.metrics = Some(metrics);
        self
    }

    /// Signs with `scheme` instead of the default (`v1`).
    pub fn signature(mut self, scheme: SignatureScheme) -> Delivery {
        self.scheme = scheme;
        self
    }

    /// Starts the task. It stops when `shutdown` completes (after the round in progress, which
    /// the request timeout bounds); what is undelivered then is sent by the next run.
    pub fn spawn(self, shutdown: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        tokio::pin!(shutdown);
        tracing::info!(host = ?self.url.host_str(), "webhook delivery started");
        // After a (re)start everything pending is tried at once: the receiver may have
        // recovered while we were down, and a backoff chosen before the restart says nothing.
        let mut fresh = true;
        loop {
            let round = self.round(fresh).await;
            fresh = false;
            let wait = match round {
                Ok(Round::Again) => continue,
                Ok(Round::Wait(next)) => {
                    let until = next.map_or(self.cap, |ms| {
                        Duration::from_millis(u64::try_from(ms - to_ms(now())).unwrap_or(0))
                    });
                    until.min(self.cap)
                }
                Err(e) => {
                    tracing::error!("webhook outbox: {e}");
                    self.base.max(Duration::from_millis(100))
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = self.directory.written().notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("webhook delivery stopped");
    }

    async fn round(&self, all_due: bool) -> Result<Round, DirectoryError> {
        let heads = self.directory.heads().await?;
        let now_ms = to_ms(now());
        let (due, later): (Vec<Pending>, Vec<Pending>) = heads
            .into_iter()
            .partition(|p| all_due || p.next_attempt_ms <= now_ms);
        if due.is_empty() {
            return Ok(Round::Wait(later.iter().map(|p| p.next_attempt_ms).min()));
        }
        let mut sends = JoinSet::new();
        for pending in due.into_iter().take(MAX_IN_FLIGHT) {
            let this = self.clone();
            sends.spawn(async move {
                let result = this.post(&pending).await;
                (pending, result)
            });
        }
        while let Some(joined) = sends.join_next().await {
            let Ok((pending, result)) = joined else {
                continue; // a panicked send: the row stays due and is retried
            };
            match result {
                Ok(()) => {
                    let delivered = now();
                    self.directory
                        .mark_delivered(pending.seq, to_ms(delivered))
                        .await?;
                    if let Some(metrics) = &self.metrics {
                        let waited = (delivered - pending.report.at).whole_milliseconds();
                        metrics.delivered(u64::try_from(waited).unwrap_or(0));
                    }
                }
                Err(error) => {
                    let attempts = pending.attempts.saturating_add(1);
                    let delay = self.delay(attempts);
                    tracing::warn!(
                        id = %pending.report.id,
                        device = %pending.report.device,
                        attempts,
                        retry_in_ms = delay.as_millis() as u64,
                        "webhook delivery failed: {error}"
                    );
                    let next = to_ms(now()).saturating_add(delay.as_millis() as i64);
                    self.directory
                        .mark_failed(pending.seq, attempts, next, &error)
                        .await?;
                }
            }
        }
        Ok(Round::Again)
    }

    /// One POST; the error text is for the outbox row and the log (never the body).
    async fn post(&self, pending: &Pending) -> Result<(), String> {
        let body = pending.report.body();
        let sent = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = self
            .scheme
            .sign(self.secret.expose_secret().as_bytes(), &body, sent);
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hotdesk-Event-Id", &pending.report.id)
            .header("X-Hotdesk-Signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| error_chain(&e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }

    /// Exponential backoff with "equal jitter": half the step fixed, half random, so retries
    /// of many reports spread out but none comes back sooner than half the step.
    fn delay(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let step = self.base.saturating_mul(1 << exponent).min(self.cap);
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// Starts delivery of `directory`'s outbox to `url` (see [`Delivery`]).
pub fn spawn(
    directory: std::sync::Arc<dyn Outbox>,
    url: &str,
    secret: SecretString,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, DeliveryError> {
    Ok(Delivery::new(directory, url, secret)?.spawn(shutdown))
}

/// An error and its causes on one line (reqwest's own text is only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
