//! `ledger serve`: the ledger over HTTP, a thin layer over `ledger_app`.
//!
//! - `engine`: the application layer's writer (`ledger_app::writer`: the bounded queue
//!   and the one task that commits queued commands in groups) with the server's metrics,
//!   and its failures as problems;
//! - `runner`: the live projection runner, catching the read models up after each
//!   commit, and the bounded wait of `?min_position=P`;
//! - `routes`: the handlers (`POST /v1/commands`, `POST /v1/commands/batch`,
//!   `GET /v1/access-log`, `GET /v1/health`, `GET /v1/openapi.json`);
//! - `reads`, `documents`, `jobs`: the read routes (balances, positions, orders,
//!   trades, clearing, alerts; events, statements; `verify` as a job), with
//!   `schemas` describing their answers for the OpenAPI document;
//! - [`access`]: bearer tokens and roles on every route but health and the OpenAPI
//!   document, and the access log of every request;
//! - [`problem`]: errors of a request as `application/problem+json` (RFC 9457);
//! - [`metrics`]: the Prometheus series of `GET /metrics`, the counted listener, and the
//!   optional `--metrics-listen` address that serves them without a token.
//!
//! A guarded route's handler gets the caller's `Principal` (ledger_app::access); its
//! name is recorded as the actor of the events the request's commands write.

pub mod access;
mod connections;
mod day_reads;
mod documents;
mod engine;
mod jobs;
pub mod metrics;
pub mod problem;
mod reads;
mod routes;
mod runner;
mod schemas;
pub mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use access::{AccessRecorder, Need};
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use ledger_app::access::{Read, Tokens};
use ledger_app::{Config, EventStore, MarketRules};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use access::{ACCESS_LOG_BATCH_ENTRIES, ACCESS_LOG_CHANNEL_ENTRIES, ACCESS_LOG_WAIT_MS};
pub use connections::{BODY_READ_TIMEOUT_MS, HEADER_READ_TIMEOUT_MS, MAX_OPEN_CONNECTIONS};
pub use documents::{MAX_EVENTS_PAGE, MAX_RECONCILIATION_BODY_BYTES};
pub use engine::DEFAULT_QUEUE_COMMANDS;
pub use jobs::{MAX_KEPT_VERIFY_JOBS, MAX_RUNNING_VERIFY_JOBS};
pub use metrics::METRICS_UPKEEP_MS;
pub use problem::{Problem, LEDGER_FAILED_TITLE, PROBLEM_TITLES, RETRY_AFTER_SECONDS};
pub use reads::DEFAULT_READ_PAGE;
pub use routes::{Health, DEFAULT_ACCESS_LOG_PAGE};
pub use runner::{MAX_MIN_POSITION_WAIT_MS, READ_MODELS_POLL_MS};

/// Largest body of `POST /v1/commands`: one command line.
pub const MAX_COMMAND_BODY_BYTES: usize = ledger_app::batch::MAX_LINE_BYTES;
/// Most lines of `POST /v1/commands/batch`: one engine batch.
pub const MAX_BATCH_REQUEST_LINES: usize = ledger_app::batch::MAX_SUBMISSIONS;
/// Largest body of `POST /v1/commands/batch`: a full batch of ordinary commands
/// (a few hundred bytes each) fits many times over, a batch of longest lines does not.
pub const MAX_BATCH_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    queue: engine::Queue,
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    tokens: Arc<Tokens>,
    access: AccessRecorder,
    /// The broker and statement settings of ledger.toml (statements).
    config: Arc<Config>,
    read_models: runner::ReadModels,
    verify_jobs: jobs::VerifyJobs,
    metrics: metrics::Metrics,
    /// Connections open now (`/v1/health`).
    connections: connections::OpenConnections,
    body_read_timeout_ms: u64,
    /// The event streams' shared head of the log, limits and count.
    streams: stream::Streams,
}

/// The server's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// The queue's limit in commands ([`DEFAULT_QUEUE_COMMANDS`]).
    pub queue_commands: usize,
    /// Aggregates of each kind the engine keeps in memory (`--cache-aggregates`).
    pub cache_aggregates: usize,
    /// Longest a client may take to send a request's headers ([`HEADER_READ_TIMEOUT_MS`]).
    pub header_read_timeout_ms: u64,
    /// Longest a client may take to send a request's body ([`BODY_READ_TIMEOUT_MS`]).
    pub body_read_timeout_ms: u64,
    /// The event streams' limits ([`stream::StreamOptions`]).
    pub streams: stream::StreamOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            queue_commands: DEFAULT_QUEUE_COMMANDS,
            cache_aggregates: ledger_app::DEFAULT_CACHE_AGGREGATES,
            header_read_timeout_ms: HEADER_READ_TIMEOUT_MS,
            body_read_timeout_ms: BODY_READ_TIMEOUT_MS,
            streams: stream::StreamOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {cause}")]
    Bind { address: String, cause: std::io::Error },
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
    #[error("the engine task failed: {0}")]
    Engine(String),
    #[error("{0}")]
    Metrics(String),
}

/// A route that needs a bearer token and a role meeting `need`.
fn guarded(need: Need, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(from_fn_with_state(need, access::require))
}

/// A route that takes a body of at most `limit_bytes`: read whole, within the body
/// deadline, before its handler runs (and only once the caller is let in), so what a
/// request can make the server hold is its own route's limit.
fn with_body(limit_bytes: usize, timeout_ms: u64, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route
        .layer(DefaultBodyLimit::max(limit_bytes))
        .layer(from_fn_with_state(
            (timeout_ms, limit_bytes),
            connections::read_body_within_deadline,
        ))
}

/// The routes: every one but health and the OpenAPI document needs a bearer token
/// (and a role the route is for); every request, whatever its route, is logged.
pub fn router(state: AppState) -> Router {
    let timeout_ms = state.body_read_timeout_ms;
    Router::new()
        .route("/v1/health", get(routes::health))
        .route("/v1/openapi.json", get(routes::openapi))
        .route(
            "/v1/commands",
            guarded(
                Need::SubmitAny,
                with_body(MAX_COMMAND_BODY_BYTES, timeout_ms, post(routes::post_command)),
            ),
        )
        .route(
            "/v1/commands/batch",
            guarded(
                Need::SubmitAny,
                with_body(MAX_BATCH_BODY_BYTES, timeout_ms, post(routes::post_batch)),
            ),
        )
        .route(
            "/v1/access-log",
            guarded(Need::Read(Read::AccessLog), get(routes::get_access_log)),
        )
        .route(
            "/metrics",
            guarded(Need::Read(Read::Metrics), get(metrics::get_metrics)),
        )
        .merge(read_routes(timeout_ms))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), access::log_requests))
        .with_state(state)
}

/// The routes of the `--metrics-listen` address: `GET /metrics` with no token (for a
/// scraper on a private interface), every request logged as on the API's address.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::get_metrics))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), access::log_requests))
        .with_state(state)
}

/// The read routes, each for the roles of its `Read` capability.
fn read_routes(timeout_ms: u64) -> Router<AppState> {
    let read = |what: Read, route: MethodRouter<AppState>| guarded(Need::Read(what), route);
    Router::new()
        .route(
            "/v1/accounts/{account_id}/balance",
            read(Read::Balances, get(reads::account_balance)),
        )
        .route(
            "/v1/accounts/{account_id}/positions",
            read(Read::Positions, get(reads::account_positions)),
        )
        .route(
            "/v1/accounts/{account_id}/statement",
            read(Read::Statements, get(documents::statement)),
        )
        .route("/v1/balances", read(Read::Balances, get(reads::balances)))
        .route("/v1/positions", read(Read::Positions, get(reads::positions)))
        .route("/v1/orders", read(Read::Orders, get(reads::orders)))
        .route("/v1/trades", read(Read::Trades, get(reads::trades)))
        .route(
            "/v1/clearing/{date}",
            read(Read::ClearingReport, get(day_reads::clearing_report)),
        )
        .route(
            "/v1/compliance/alerts",
            read(Read::ComplianceAlerts, get(reads::compliance_alerts)),
        )
        .route("/v1/events", read(Read::Events, get(documents::events)))
        .route("/v1/events/stream", read(Read::EventStream, get(stream::events_stream)))
        .route(
            "/v1/reconciliation",
            read(
                Read::ReconciliationBreaks,
                with_body(
                    MAX_RECONCILIATION_BODY_BYTES,
                    timeout_ms,
                    post(documents::reconciliation),
                ),
            ),
        )
        .route(
            "/v1/reconciliation/{date}",
            read(Read::ReconciliationBreaks, get(day_reads::reconciliation_breaks)),
        )
        .route("/v1/verify", read(Read::Verify, post(documents::start_verify)))
        .route("/v1/verify/{job_id}", read(Read::Verify, get(documents::get_verify)))
}

/// A server bound to its address, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    /// The `--metrics-listen` address, when one is bound ([`Server::listen_metrics`]).
    metrics_listener: Option<tokio::net::TcpListener>,
    state: AppState,
    engine: tokio::task::JoinHandle<()>,
    runner: tokio::task::JoinHandle<()>,
    access_writer: tokio::task::JoinHandle<()>,
    header_read_timeout_ms: u64,
    /// Tells the event streams that the server is stopping, so they end and let it.
    stop_streams: tokio::sync::watch::Sender<bool>,
}

async fn bind_tcp(address: &str) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|cause| ServerError::Bind {
            address: address.to_owned(),
            cause,
        })
}

impl Server {
    /// Binds `address` (port 0: any free port) and starts the engine, the projection
    /// runner and the access log's writer; `tokens` are the bearer tokens it lets in,
    /// `config` the broker and statement settings.
    pub async fn bind(
        address: &str,
        (store, rules): (Arc<dyn EventStore>, Arc<MarketRules>),
        tokens: Tokens,
        config: Arc<Config>,
        options: ServerOptions,
    ) -> Result<Server, ServerError> {
        let metrics = metrics::install().map_err(ServerError::Metrics)?;
        let listener = bind_tcp(address).await?;
        let (queue, commits, engine) = engine::start(
            Arc::clone(&store),
            Arc::clone(&rules),
            options.queue_commands,
            options.cache_aggregates,
        );
        let (log_head, _head_task) = ledger_app::stream::watch_log_head(Arc::clone(&store), Some(commits.clone()));
        let (read_models, runner) = runner::start(Arc::clone(&store), commits);
        let (stop_streams, streams_stopping) = tokio::sync::watch::channel(false);
        let (access, access_writer) = access::start(store.as_ref());
        Ok(Server {
            listener,
            metrics_listener: None,
            state: AppState {
                queue,
                store,
                rules,
                tokens: Arc::new(tokens),
                access,
                config,
                read_models,
                verify_jobs: jobs::VerifyJobs::default(),
                metrics,
                connections: connections::OpenConnections::default(),
                body_read_timeout_ms: options.body_read_timeout_ms,
                streams: stream::Streams::new(log_head, options.streams, streams_stopping),
            },
            header_read_timeout_ms: options.header_read_timeout_ms,
            stop_streams,
            engine,
            runner,
            access_writer,
        })
    }

    /// Also serves `GET /metrics`, without a token, on `address` (`--metrics-listen`):
    /// for a Prometheus scraper on a private interface. Where it listens.
    pub async fn listen_metrics(&mut self, address: &str) -> Result<SocketAddr, ServerError> {
        let listener = bind_tcp(address).await?;
        let bound = listener.local_addr().map_err(ServerError::Serve)?;
        self.metrics_listener = Some(listener);
        Ok(bound)
    }

    /// Where it listens.
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        self.listener.local_addr().map_err(ServerError::Serve)
    }

    /// Serves until `shutdown` completes; then accepts nothing more, answers every
    /// request already received (what is queued is decided and committed first), and
    /// returns once the engine has stopped and the access log is written.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
        let upkeep = self.state.metrics.start_upkeep();
        // Both addresses stop on the one signal.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let stop_streams = self.stop_streams;
        let signal = tokio::spawn(async move {
            shutdown.await;
            // The streams first: a graceful stop waits for every response to end.
            let _ = stop_streams.send(true);
            let _ = stop.send(true);
        });
        let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
            // A dropped sender (the signal task aborted) stops too.
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let timeout_ms = self.header_read_timeout_ms;
        let scrape = self.metrics_listener.map(|listener| {
            let app = metrics_router(self.state.clone());
            connections::serve(
                listener,
                app,
                (connections::OpenConnections::default(), timeout_ms),
                stopped(stopping.clone()),
            )
        });
        let open = self.state.connections.clone();
        let api = connections::serve(self.listener, router(self.state), (open, timeout_ms), stopped(stopping));
        let scrape = async move {
            if let Some(scrape) = scrape {
                scrape.await;
            }
        };
        tokio::join!(api, scrape);
        signal.abort();
        upkeep.abort();
        // Every handler (and with them every sender of the queue and of the access log)
        // is gone: the engine answers what it holds, the runner applies its last commit
        // and stops, the writer writes what it holds.
        let engine = self.engine.await.map_err(|e| ServerError::Engine(e.to_string()));
        let runner = self.runner.await.map_err(|e| ServerError::Engine(e.to_string()));
        let writer = self.access_writer.await.map_err(|e| ServerError::Engine(e.to_string()));
        engine.and(runner).and(writer)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ledger",
        description = "The ledger's HTTP API (docs/api.md, \"HTTP API\"): commands of the command-file contract, answered as `ledger exec --json` answers a line; errors of a request as RFC 9457 problem documents with a stable `code`."
    ),
    paths(
        routes::post_command,
        routes::post_batch,
        routes::get_access_log,
        reads::account_balance,
        reads::account_positions,
        documents::statement,
        reads::balances,
        reads::positions,
        reads::orders,
        reads::trades,
        day_reads::clearing_report,
        reads::compliance_alerts,
        documents::events,
        stream::events_stream,
        documents::reconciliation,
        day_reads::reconciliation_breaks,
        documents::start_verify,
        documents::get_verify,
        routes::health,
        routes::openapi,
        metrics::get_metrics
    ),
    components(schemas(
        routes::AnswerDoc,
        Problem,
        Health,
        routes::AccessLogPage,
        schemas::BalanceDoc,
        schemas::PositionDoc,
        schemas::OrderDoc,
        schemas::TradeDoc,
        schemas::AlertDoc,
        schemas::BalancePage,
        schemas::PositionPage,
        schemas::OrderPage,
        schemas::TradePage,
        schemas::AlertPage,
        jobs::JobView,
        jobs::JobError,
        documents::ReconciliationRequest,
        stream::SseFrame
    )),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// The `bearer` security scheme the guarded routes name (docs/api.md, "Authentication").
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "A token of `ledger token create` (`lgr_` and 64 hex digits), as `Authorization: Bearer lgr_…`".to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI 3.1 document of the routes, as served at `/v1/openapi.json` and
/// committed as docs/openapi.json.
pub fn openapi_json() -> String {
    let mut document = ApiDoc::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document.to_pretty_json().unwrap_or_default() + "\n"
}
