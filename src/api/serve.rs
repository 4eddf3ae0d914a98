//! The API's HTTP/1.1 server: axum's router behind an accept loop that bounds what a client
//! can hold.
//!
//! `axum::serve` has no header-read timeout, idle timeout or connection cap. An outside test
//! kept a slow-header connection open for 45 s and opened 1,100 idle connections without a
//! token; the process ran out of file descriptors, INVITEs got 503 "Too many open files" and
//! `/healthz` timed out. Here:
//! - a client has `header_timeout` to send a request's headers, and hyper starts that timer
//!   again whenever a kept-alive connection waits for its next request, so an idle connection
//!   is closed after the same time;
//! - a request (its body included) must be answered within `request_timeout`, or gets 408;
//! - at most `max_connections` connections are open, and at most `max_per_source` from one
//!   address, so one client cannot take every slot; past the cap new connections wait in the
//!   kernel's backlog, past the per-source cap they are closed at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::ApiError;

/// How the server bounds its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_per_source: usize,
    /// Time to send a request's headers, and the longest wait for the next request.
    pub header_timeout: Duration,
    /// Time for a whole request to be answered (a trickled body included).
    pub request_timeout: Duration,
}

/// Open connections per source address.
#[derive(Default)]
struct PerSource(Mutex<HashMap<IpAddr, usize>>);

impl PerSource {
    fn enter(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<SourceSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(SourceSlot(self.clone(), ip))
    }
}

/// One connection counted against its source; released when dropped.
struct SourceSlot(Arc<PerSource>, IpAddr);

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes; connections in progress then
/// finish their current request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_source = Arc::new(PerSource::default());
    let (stop_all, stopped) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!("API accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(source_slot) = per_source.enter(peer.ip().to_canonical(), limits.max_per_source)
        else {
            tracing::debug!(%peer, "API connection refused: too many from this address");
            continue;
        };
        let router = router.clone();
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            let _held = (permit, source_slot);
            let service = hyper::service::service_fn(move |request| {
                let router = router.clone();
                async move {
                    let request = request.map(axum::body::Body::new);
                    let answer =
                        tokio::time::timeout(limits.request_timeout, router.oneshot(request));
                    Ok::<_, std::convert::Infallible>(match answer.await {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(_) => ApiError::new(
                            StatusCode::REQUEST_TIMEOUT,
                            "request timeout",
                            "the request was not complete in time",
                        )
                        .into_response(),
                    })
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "API connection: {e}");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop_all.send(true);
}
