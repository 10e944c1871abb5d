//! The accept loop: HTTP/1.1 connections with bounded time to send a request, and a
//! bounded number of them open at once.
//!
//! axum's own `serve` gives hyper no timer, so hyper's header timeout never runs and a
//! client that sends its headers a byte at a time (slowloris) holds a connection and a
//! task for ever. Here each connection gets [`HEADER_READ_TIMEOUT_MS`] to send its
//! request line and headers, [`read_body_within_deadline`] (on each route that takes a
//! body, up to that route's limit) gives it [`BODY_READ_TIMEOUT_MS`] to send its body,
//! and at most [`MAX_OPEN_CONNECTIONS`] are
//! served at once (the next waits in the kernel's backlog until one closes).
//!
//! A graceful stop stops accepting, lets every open connection finish the request it
//! is in (hyper closes idle keep-alive connections at once), then returns.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::problem::Problem;

/// Longest a client may take to send a request's line and headers, from the first byte
/// of the request (or, on a new connection, from the connection); past it the
/// connection is closed without an answer.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Longest a client may take to send a request's body once its headers are in; past it
/// the answer is 408 `request_timeout` and nothing of the request is done.
pub const BODY_READ_TIMEOUT_MS: u64 = 10_000;
/// Most connections served at once.
pub const MAX_OPEN_CONNECTIONS: usize = 4_096;
/// Longest a graceful stop waits for open connections to finish their requests; past it
/// the ones left (a client that stopped reading an event stream) are dropped.
pub const SHUTDOWN_DRAIN_MS: u64 = 30_000;
/// Pause after a failed accept (out of file descriptors): the loop must not spin.
const ACCEPT_RETRY_MS: u64 = 50;

/// Connections of one listener: open now, and accepted since the start (`/v1/health`
/// and the metrics read them).
#[derive(Clone, Default)]
pub struct OpenConnections {
    open: Arc<AtomicUsize>,
    accepted: Arc<AtomicU64>,
}

impl OpenConnections {
    pub fn count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// One open connection: counted from accept until dropped.
struct Counted(OpenConnections);

impl Counted {
    fn new(connections: &OpenConnections) -> Self {
        connections.open.fetch_add(1, Ordering::Relaxed);
        connections.accepted.fetch_add(1, Ordering::Relaxed);
        Counted(connections.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains the open
/// connections as the module says; `header_read_timeout_ms` is
/// [`HEADER_READ_TIMEOUT_MS`] but for tests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    (open, header_read_timeout_ms): (OpenConnections, u64),
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_OPEN_CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(header_read_timeout_ms));
    tokio::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!("cannot accept a connection ({error}); retrying in {ACCEPT_RETRY_MS} ms");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        // Answers are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let counted = Counted::new(&open);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        // Finished connections are reaped as new ones come, so the set holds the open ones.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            // A connection closed by the client, or by the header timeout, is no error
            // of the server's.
            let _ = connection.await;
            drop(counted);
            drop(slot);
        });
    }
    drop(listener);
    let drain = Duration::from_millis(SHUTDOWN_DRAIN_MS);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            left = connections.len(),
            drain_ms = SHUTDOWN_DRAIN_MS,
            "connections still open after the drain are dropped"
        );
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Reads a request's whole body, at most `limit_bytes` (its route's limit), within
/// `timeout_ms` ([`BODY_READ_TIMEOUT_MS`] but for tests) before the route sees it: a
/// client trickling its body gets 408 `request_timeout`, one sending more than the
/// route takes 413 `too_large` as soon as it has, and the command never reaches the queue.
pub async fn read_body_within_deadline(
    State((timeout_ms, limit_bytes)): State<(u64, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let deadline = Duration::from_millis(timeout_ms);
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return unread_body(error, limit_bytes),
        Err(_elapsed) => {
            let detail =
                format!("the body was not received within {timeout_ms} ms; nothing was done, send the request again");
            return Problem::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", detail).into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The answer to a body that could not be read: over every limit, or cut off.
fn unread_body(error: axum::Error, limit_bytes: usize) -> Response {
    let over_limit = error
        .into_inner()
        .downcast_ref::<http_body_util::LengthLimitError>()
        .is_some();
    if over_limit {
        let detail = format!("the body is over {limit_bytes} bytes, the most this route takes");
        return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", detail).into_response();
    }
    let detail = "the connection broke while the body was being sent; nothing was done";
    Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", detail).into_response()
}
