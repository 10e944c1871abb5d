//! The service's metrics in the Prometheus text format (docs/operations.md, "Metrics").
//!
//! Each series is recorded through the `metrics` facade where the thing happens: the
//! engine counts commands by type and outcome and times its group commits, the request
//! layer times every request by route template, the accept loop counts connections (read at the scrape),
//! the projection runner publishes its position. `metrics-exporter-prometheus` keeps
//! them and [`get_metrics`] writes them for `GET /metrics`: the exporter runs no listener of
//! its own. Gauges that are a reading of the server's state (the queue's depth, the
//! log's head, the read models' lag) are read when a scrape asks, so they are never stale.
//!
//! The recorder is global to the process: the first server installs it ([`install`])
//! and every later one (tests start many in one process) shares it and its series.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger_app::{CommandRequest, RequestOutcome, Status};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Commands decided by the engine, by `command` (its type) and `outcome`.
pub const COMMANDS_TOTAL: &str = "ledger_commands_total";
/// Requests answered, by `method`, `route` (the template) and `status`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "ledger_http_request_duration_seconds";
/// Connections of the API's listener open now.
pub const HTTP_OPEN_CONNECTIONS: &str = "ledger_http_open_connections";
/// Connections the API's listener has accepted.
pub const HTTP_CONNECTIONS_ACCEPTED_TOTAL: &str = "ledger_http_connections_accepted_total";
/// Commands per committed group commit.
pub const GROUP_COMMIT_BATCH_COMMANDS: &str = "ledger_group_commit_batch_commands";
/// From the start of a group commit's decisions to its durable commit.
pub const GROUP_COMMIT_DURATION_SECONDS: &str = "ledger_group_commit_duration_seconds";
/// Group commits that failed (every request of the batch answered with the failure).
pub const GROUP_COMMIT_FAILURES_TOTAL: &str = "ledger_group_commit_failures_total";
/// Commands waiting in the engine's queue.
pub const QUEUE_DEPTH_COMMANDS: &str = "ledger_queue_depth_commands";
/// The queue's limit (`--queue-commands`).
pub const QUEUE_LIMIT_COMMANDS: &str = "ledger_queue_limit_commands";
/// The log's last global position.
pub const LOG_HEAD_POSITION: &str = "ledger_log_head_position";
/// The position the read models have reached.
pub const READ_MODELS_POSITION: &str = "ledger_read_models_position";
/// Events in the log and not yet in the read models.
pub const READ_MODELS_LAG_EVENTS: &str = "ledger_read_models_lag_events";
/// Catch-ups of the projection runner that failed (retried within `READ_MODELS_POLL_MS`).
pub const READ_MODELS_CATCH_UP_FAILURES_TOTAL: &str = "ledger_read_models_catch_up_failures_total";
/// Access-log entries lost (the same count as `/v1/health`'s `access_log_dropped_entries`).
pub const ACCESS_LOG_DROPPED_ENTRIES_TOTAL: &str = "ledger_access_log_dropped_entries_total";

/// Event streams (SSE) open now.
pub const EVENT_STREAMS_OPEN: &str = "ledger_event_streams_open";
/// Event streams the server ended because their client did not take frames in time.
pub const EVENT_STREAMS_TOO_SLOW_TOTAL: &str = "ledger_event_streams_too_slow_total";

/// How often histogram samples are folded into their buckets when no scrape does it,
/// so memory stays bounded without a scraper.
pub const METRICS_UPKEEP_MS: u64 = 5_000;

/// Request and commit latencies, in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Commands per group commit: powers of two up to one engine batch (`MAX_SUBMISSIONS`, 1,000).
const BATCH_BUCKETS_COMMANDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1_000.0];
/// The methods a request's `method` label may take; any other is `other`, so a client
/// cannot make series without bound.
const METHOD_LABELS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// The `route` label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `command` label of a malformed command whose type cannot be read.
pub const UNKNOWN_COMMAND: &str = "unknown";

/// The process's recorder, installed once.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The handle `GET /metrics` renders.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// Installs the process's recorder the first time; later calls share it.
pub fn install() -> Result<Metrics, String> {
    let installed = RECORDER.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(HTTP_REQUEST_DURATION_SECONDS.to_owned()),
                LATENCY_BUCKETS_SECONDS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(GROUP_COMMIT_DURATION_SECONDS.to_owned()),
                    LATENCY_BUCKETS_SECONDS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(GROUP_COMMIT_BATCH_COMMANDS.to_owned()),
                    BATCH_BUCKETS_COMMANDS,
                )
            })
            .and_then(PrometheusBuilder::install_recorder)
            .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
        describe();
        Ok(handle)
    });
    installed.clone().map(|handle| Metrics { handle })
}

/// The HELP and unit of every series, and the counters that should show 0 before
/// anything happened.
fn describe() {
    describe_counter!(COMMANDS_TOTAL, "Commands decided, by type and outcome");
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Requests from arrival to answer, by method, route template and status"
    );
    describe_gauge!(HTTP_OPEN_CONNECTIONS, "Connections of the API's listener open now");
    describe_counter!(
        HTTP_CONNECTIONS_ACCEPTED_TOTAL,
        "Connections the API's listener accepted"
    );
    describe_histogram!(GROUP_COMMIT_BATCH_COMMANDS, "Commands per committed group commit");
    describe_histogram!(
        GROUP_COMMIT_DURATION_SECONDS,
        Unit::Seconds,
        "Group commits from decision to durable commit"
    );
    describe_counter!(GROUP_COMMIT_FAILURES_TOTAL, "Group commits that failed");
    describe_gauge!(QUEUE_DEPTH_COMMANDS, "Commands waiting in the engine's queue");
    describe_gauge!(QUEUE_LIMIT_COMMANDS, "The engine queue's limit in commands");
    describe_gauge!(LOG_HEAD_POSITION, "The log's last global position");
    describe_gauge!(READ_MODELS_POSITION, "The position the read models have reached");
    describe_gauge!(READ_MODELS_LAG_EVENTS, "Events in the log not yet in the read models");
    describe_counter!(
        READ_MODELS_CATCH_UP_FAILURES_TOTAL,
        "Failed catch-ups of the read models"
    );
    describe_counter!(ACCESS_LOG_DROPPED_ENTRIES_TOTAL, "Access-log entries lost");
    describe_gauge!(EVENT_STREAMS_OPEN, "Event streams (SSE) open now");
    describe_counter!(
        EVENT_STREAMS_TOO_SLOW_TOTAL,
        "Event streams ended because their client did not take frames in time"
    );
    for zero in [
        GROUP_COMMIT_FAILURES_TOTAL,
        READ_MODELS_CATCH_UP_FAILURES_TOTAL,
        ACCESS_LOG_DROPPED_ENTRIES_TOTAL,
        HTTP_CONNECTIONS_ACCEPTED_TOTAL,
    ] {
        counter!(zero).increment(0);
    }
}

impl Metrics {
    /// Folds histogram samples into their buckets every [`METRICS_UPKEEP_MS`] until aborted.
    pub fn start_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(METRICS_UPKEEP_MS));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        })
    }
}

/// `GET /metrics`: every series in the Prometheus text format (version 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "The metrics in the Prometheus text format (docs/operations.md, \"Metrics\")",
            body = String, content_type = "text/plain"),
        (status = 401, description = "unauthenticated: no valid bearer token", body = crate::Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "forbidden: only the operations and auditor roles read the metrics", body = crate::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_metrics(State(state): State<AppState>) -> Response {
    gauge!(QUEUE_DEPTH_COMMANDS).set(state.queue.depth() as f64);
    gauge!(QUEUE_LIMIT_COMMANDS).set(state.queue.limit_commands() as f64);
    let reached = state.read_models.position();
    gauge!(READ_MODELS_POSITION).set(reached as f64);
    gauge!(HTTP_OPEN_CONNECTIONS).set(state.connections.count() as f64);
    counter!(HTTP_CONNECTIONS_ACCEPTED_TOTAL).absolute(state.connections.accepted());
    // A database that does not answer leaves the head and the lag as last read: the
    // scrape still answers, and `/v1/health` says what is wrong.
    if let Ok(head) = ledger_app::head_position(state.store.as_ref()).await {
        gauge!(LOG_HEAD_POSITION).set(head as f64);
        gauge!(READ_MODELS_LAG_EVENTS).set(head.saturating_sub(reached) as f64);
    }
    let mut response = (StatusCode::OK, state.metrics.handle.render()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Counts the outcome of each request of a committed batch, and the batch.
pub fn record_batch(requests: &[CommandRequest], outcomes: &[RequestOutcome], took: Duration) {
    for (request, outcome) in requests.iter().zip(outcomes) {
        let command: &'static str = (&request.submission.command).into();
        let outcome = match outcome {
            RequestOutcome::Answered(result) => match result.status {
                Status::Accepted => "accepted",
                Status::Duplicate => "duplicate",
                Status::Rejected if result.is_malformed() => "malformed",
                Status::Rejected => "rejected",
            },
            RequestOutcome::KeyReused(_) => "key_reused",
        };
        counter!(COMMANDS_TOTAL, "command" => command, "outcome" => outcome).increment(1);
    }
    histogram!(GROUP_COMMIT_BATCH_COMMANDS).record(requests.len() as f64);
    histogram!(GROUP_COMMIT_DURATION_SECONDS).record(took.as_secs_f64());
}

/// A failed group commit.
pub fn record_failed_batch() {
    counter!(GROUP_COMMIT_FAILURES_TOTAL).increment(1);
}

/// A command answered `malformed` before the engine (the wire's checks): counted with
/// the type its body names, when it names one of the contract's.
pub fn record_malformed(body: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let command = serde_json::from_slice::<Typed>(body)
        .ok()
        .and_then(|typed| typed.kind)
        .and_then(|kind| kind.parse::<ledger_app::access::CommandType>().ok())
        .map_or(UNKNOWN_COMMAND, <&'static str>::from);
    counter!(COMMANDS_TOTAL, "command" => command, "outcome" => "malformed").increment(1);
}

/// One answered request: its latency under its route template (never the path itself,
/// which holds ids).
pub fn record_request(method: &Method, route: Option<&str>, status: StatusCode, took: Duration) {
    let method = METHOD_LABELS
        .iter()
        .find(|known| **known == method.as_str())
        .copied()
        .unwrap_or("other");
    let route = route.unwrap_or(UNMATCHED_ROUTE).to_owned();
    let status = status.as_u16().to_string();
    histogram!(HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route, "status" => status)
        .record(took.as_secs_f64());
}

/// Access-log entries lost.
pub fn record_dropped_entries(count: u64) {
    counter!(ACCESS_LOG_DROPPED_ENTRIES_TOTAL).increment(count);
}

/// The read models reached `position`.
pub fn record_read_models_position(position: u64) {
    gauge!(READ_MODELS_POSITION).set(position as f64);
}

/// A catch-up of the read models failed.
pub fn record_catch_up_failure() {
    counter!(READ_MODELS_CATCH_UP_FAILURES_TOTAL).increment(1);
}

/// An event stream opened.
pub fn record_stream_opened() {
    gauge!(EVENT_STREAMS_OPEN).increment(1.0);
}

/// An event stream closed, for whatever reason.
pub fn record_stream_closed() {
    gauge!(EVENT_STREAMS_OPEN).decrement(1.0);
}

/// An event stream ended as too slow.
pub fn record_slow_consumer() {
    counter!(EVENT_STREAMS_TOO_SLOW_TOTAL).increment(1);
}
