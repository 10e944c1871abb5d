//! Who may use the server, and the record of every request.
//!
//! - [`log_requests`] wraps every route (health, the OpenAPI document and unknown routes
//!   included): it finds the principal of the `Authorization: Bearer` header, if any,
//!   lets the request through, and sends one [`AccessEntry`] per request to a bounded
//!   channel ([`ACCESS_LOG_CHANNEL_ENTRIES`]);
//! - one writer task takes the entries in batches ([`ACCESS_LOG_BATCH_ENTRIES`]) and
//!   appends them with [`AccessLog::record_batch`]; it drains the channel when the
//!   server stops, so a graceful shutdown loses no entry;
//! - [`require`] guards a route: no valid token → 401 `unauthenticated` with
//!   `WWW-Authenticate: Bearer`, a role the route is not for → 403 `forbidden`.
//!
//! The rules are `ledger_app::access` ([`may`], [`Principal::authorize`]); nothing is
//! decided here that the matrix does not say.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ledger_app::access::{
    authenticate, bearer_token, may, AccessEntry, AccessError, AccessLog, Action, CommandType, Principal, Read, Role,
};
use ledger_app::EventStore;
use strum::IntoEnumIterator;
use tokio::sync::mpsc;

use crate::problem::Problem;
use crate::AppState;

/// Entries waiting to be written. A request whose entry does not fit waits for room at
/// most [`ACCESS_LOG_WAIT_MS`]: an audit trail should not lose rows to a burst, and a
/// request must not wait unboundedly on it either.
pub const ACCESS_LOG_CHANNEL_ENTRIES: usize = 10_000;
/// Longest a request waits for room in the channel before its entry is dropped (counted
/// in `access_log_dropped_entries` of `/v1/health` and in `/metrics`, with a warning in
/// the service's log).
pub const ACCESS_LOG_WAIT_MS: u64 = 1_000;
/// Most entries the writer appends in one transaction.
pub const ACCESS_LOG_BATCH_ENTRIES: usize = 1_000;

/// The sending side of the access log, shared by every request.
#[derive(Clone)]
pub struct AccessRecorder {
    entries: mpsc::Sender<AccessEntry>,
    dropped: Arc<AtomicU64>,
}

impl AccessRecorder {
    /// Entries lost so far: not sent within [`ACCESS_LOG_WAIT_MS`], or not written.
    pub fn dropped_entries(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    async fn record(&self, entry: AccessEntry) {
        let wait = Duration::from_millis(ACCESS_LOG_WAIT_MS);
        if self.entries.send_timeout(entry, wait).await.is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            crate::metrics::record_dropped_entries(1);
            tracing::warn!(dropped, "access log: an entry was dropped (the writer is behind)");
        }
    }
}

/// Starts the writer task; it ends once every [`AccessRecorder`] is gone and the
/// channel is drained.
pub fn start(store: &dyn EventStore) -> (AccessRecorder, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(ACCESS_LOG_CHANNEL_ENTRIES);
    let dropped = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_entries(AccessLog::new(store), receiver, Arc::clone(&dropped)));
    let recorder = AccessRecorder {
        entries: sender,
        dropped,
    };
    (recorder, writer)
}

async fn write_entries(log: AccessLog, mut receiver: mpsc::Receiver<AccessEntry>, dropped: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(ACCESS_LOG_BATCH_ENTRIES);
    while receiver.recv_many(&mut batch, ACCESS_LOG_BATCH_ENTRIES).await > 0 {
        if let Err(error) = log.record_batch(&batch).await {
            let lost = batch.len() as u64;
            let total = dropped.fetch_add(lost, Ordering::Relaxed) + lost;
            crate::metrics::record_dropped_entries(lost);
            tracing::warn!(
                lost,
                dropped = total,
                code = error.code(),
                %error,
                "access log: entries could not be written"
            );
        }
        batch.clear();
    }
}

/// What a handler tells the access log about its answer (a response extension).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The answer's code: `accepted`, a refusal code, a problem's code.
    pub code: Option<String>,
    /// The command's type, when the request was one command.
    pub command: Option<CommandType>,
    /// The account the request named.
    pub account: Option<String>,
}

/// The principal of a request's bearer token, when it has a valid one (a request extension).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Option<Principal>);

/// Authenticates, lets the request through, and records it.
pub async fn log_requests(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = chrono::Utc::now();
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    let principal = authenticate(&state.tokens, bearer).ok();
    let route = format!("{} {}", request.method(), request.uri().path());
    let method = request.method().clone();
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    request.extensions_mut().insert(Authenticated(principal.clone()));
    let response = next.run(request).await;
    let took = started.elapsed();
    crate::metrics::record_request(&method, template.as_deref(), response.status(), took);
    log_line(
        &method,
        template.as_deref(),
        response.status(),
        took,
        principal.as_ref(),
    );
    let outcome = response.extensions().get::<Outcome>().cloned().unwrap_or_default();
    let status = response.status();
    let action = match outcome.command {
        Some(command) => format!("{route} {command}"),
        None => route,
    };
    let code = outcome.code.unwrap_or_else(|| {
        if status.is_success() {
            "ok"
        } else {
            status.canonical_reason().unwrap_or("error")
        }
        .to_owned()
    });
    let entry = AccessEntry {
        at,
        principal: principal.as_ref().map(Principal::caller),
        action,
        account: outcome.account,
        status: status.as_u16(),
        code,
        latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
    };
    state.access.record(entry).await;
    response
}

/// The request's line of the service's log (docs/operations.md, "Logs"): its route
/// template, never its path (which holds ids), and the token's name, never the token.
fn log_line(method: &Method, route: Option<&str>, status: StatusCode, took: Duration, principal: Option<&Principal>) {
    tracing::info!(
        method = %method,
        // Display, not Debug: text lines without quotes, JSON strings all the same.
        route = %route.unwrap_or(crate::metrics::UNMATCHED_ROUTE),
        status = status.as_u16(),
        latency_ms = took.as_micros() as f64 / 1_000.0,
        role = %principal.map_or("-", |p| <&str>::from(p.role)),
        principal = %principal.map_or("-", |p| p.name.as_str()),
        "request"
    );
}

/// What a guarded route asks of its caller beyond a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A role that may submit at least one command type (each command is then checked
    /// by its type and account before it is queued).
    SubmitAny,
    /// A role that may read this.
    Read(Read),
}

impl Need {
    fn met_by(self, role: Role) -> bool {
        match self {
            Need::SubmitAny => CommandType::iter().any(|command| may(role, Action::Submit(command))),
            Need::Read(read) => may(role, Action::Read(read)),
        }
    }

    fn what(self) -> String {
        match self {
            Need::SubmitAny => "submit commands".to_owned(),
            Need::Read(read) => Action::Read(read).to_string(),
        }
    }
}

/// 401 without a valid token, 403 when the role does not meet `need`; else the route,
/// with the [`Principal`] in the request's extensions.
pub async fn require(State(need): State<Need>, mut request: Request, next: Next) -> Response {
    let principal = request
        .extensions()
        .get::<Authenticated>()
        .and_then(|authenticated| authenticated.0.clone());
    let Some(principal) = principal else {
        return unauthenticated();
    };
    if !need.met_by(principal.role) {
        let error = AccessError::Forbidden {
            principal: principal.name.clone(),
            role: principal.role,
            what: need.what(),
        };
        return forbidden(&error, Outcome::default());
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn unauthenticated() -> Response {
    let error = AccessError::Unauthenticated;
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, error.code(), error.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// 403 `forbidden` with the access error's sentence; `outcome` names the command.
pub fn forbidden(error: &AccessError, outcome: Outcome) -> Response {
    let problem = Problem::new(StatusCode::FORBIDDEN, error.code(), error.to_string());
    let mut response = problem.into_response();
    let code = response.extensions().get::<Outcome>().and_then(|o| o.code.clone());
    response.extensions_mut().insert(Outcome { code, ..outcome });
    response
}
