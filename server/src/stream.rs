//! `GET /v1/events/stream`: the log as Server-Sent Events, from any position, then
//! live. Each consumer has a feed (`ledger_app::stream::Feed`) read by a task of its
//! own into a bounded buffer of frames the client drains; the buffer, one read of the
//! log and the kernel's socket buffer are all the memory a consumer holds.
//!
//! Frames: each event as a `message` (`id:` its position, `data:` its envelope);
//! `checkpoint` (`id:` the last position examined, matched or not) after a read whose
//! last events the filter skipped and every [`StreamOptions::heartbeat_ms`] at the head,
//! so a filtered consumer resumes past what it was not sent; and a last `end` before
//! the server closes the stream (`too_slow`, `shutting_down`, `log_unreadable`), naming
//! where to resume.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use ledger_app::access::{Principal, Role};
use ledger_app::stream::{envelope_for, EventFilter, Feed, LogHead};
use ledger_app::RecordedEvent;
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::problem::Problem;
use crate::reads::{app_problem, invalid_query};
use crate::AppState;

/// Frames a consumer's buffer holds: formatted, waiting for the client to take them.
pub const STREAM_BUFFER_FRAMES: usize = 256;
/// Events a consumer's task examines per read of the log.
pub const STREAM_READ_EVENTS: usize = 256;
/// Longest a frame waits for room in a full buffer before the consumer is too slow.
pub const SLOW_CONSUMER_MS: u64 = 10_000;
/// Longest a consumer at the head goes without a frame (a `checkpoint`).
pub const HEARTBEAT_MS: u64 = 15_000;
/// Streams open at once; one more is answered 503 `too_many_streams`.
pub const MAX_STREAM_CONSUMERS: usize = 256;

/// The limits of the streams, [`StreamOptions::default`] the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    pub buffer_frames: usize,
    pub slow_consumer_ms: u64,
    pub heartbeat_ms: u64,
    pub max_consumers: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            buffer_frames: STREAM_BUFFER_FRAMES,
            slow_consumer_ms: SLOW_CONSUMER_MS,
            heartbeat_ms: HEARTBEAT_MS,
            max_consumers: MAX_STREAM_CONSUMERS,
        }
    }
}

/// What the streams of a server share: the head of the log, the limits, the count of
/// open streams, and word of the server's shutdown.
#[derive(Clone)]
pub struct Streams {
    head: LogHead,
    options: StreamOptions,
    open: Arc<Semaphore>,
    stopping: watch::Receiver<bool>,
}

impl Streams {
    pub fn new(head: LogHead, options: StreamOptions, stopping: watch::Receiver<bool>) -> Self {
        assert!(options.buffer_frames > 0 && options.max_consumers > 0);
        Self {
            head,
            options,
            open: Arc::new(Semaphore::new(options.max_consumers)),
            stopping,
        }
    }
}

/// One frame of the stream, as the OpenAPI document describes it (the schema of each
/// event of a `text/event-stream` body).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // A description of what the SSE writer sends, never built.
pub struct SseFrame {
    /// Absent (the default, `message`) for an event of the log; `checkpoint` or `end`.
    event: Option<String>,
    /// The position: an event's own, or the last examined (`checkpoint`), or the last sent (`end`).
    id: Option<String>,
    /// One line of JSON: the envelope of docs/events.md, `{"position","head"}` or `{"reason","resume_from"}`.
    data: String,
}

/// Where a consumer starts and what it wants, from the query and `Last-Event-ID`.
struct Request {
    from: u64,
    types: Vec<String>,
    accounts: Vec<String>,
}

/// `GET /v1/events/stream?from=P&type=T&account=A` (`type` and `account` repeatable).
#[utoipa::path(get, path = "/v1/events/stream", tag = "streams",
    params(
        ("from" = Option<u64>, Query, description = "First position to examine, included (0 or left out: the first event); `Last-Event-ID` wins over it"),
        ("type" = Option<Vec<String>>, Query, description = "Only events of this type (`FillBooked`, …); repeat for several", explode = true),
        ("account" = Option<Vec<String>>, Query, description = "Only the events of this account; repeat for several", explode = true),
        ("Last-Event-ID" = Option<u64>, Header, description = "The last `id` received: the stream resumes after it"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: events (`id:` position, `data:` the CloudEvents envelope of docs/events.md), `checkpoint` and `end` frames (docs/api.md, \"Event streams\"); the schema is that of each frame", content_type = "text/event-stream", body = SseFrame),
        (status = 400, description = "invalid_query: an unknown parameter or event type, a position that is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: not a subscriber or auditor, or an account the token is not limited to", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "too_many_streams", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn events_stream(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request = match read_request(query.as_deref(), &headers) {
        Ok(request) => request,
        Err(problem) => return problem.into_response(),
    };
    let filter = match EventFilter::new(&request.types, &request.accounts).and_then(|f| f.limited_to(&principal)) {
        Ok(filter) => filter,
        Err(error) => return app_problem(&error).into_response(),
    };
    let streams = &state.streams;
    let Ok(permit) = Arc::clone(&streams.open).try_acquire_owned() else {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open, the most this server keeps",
                streams.options.max_consumers
            ),
        )
        .into_response();
    };
    let feed = Feed::starting_at(Arc::clone(&state.store), streams.head.clone(), filter, request.from);
    let (frames, received) = mpsc::channel(streams.options.buffer_frames);
    let (end, ended) = oneshot::channel();
    let consumer = Consumer {
        feed,
        frames,
        end: Some(end),
        role: principal.role,
        source: state.config.events.source.clone(),
        options: streams.options,
        stopping: streams.stopping.clone(),
    };
    tokio::spawn(consumer.run());
    crate::metrics::record_stream_opened();
    // The stream's slot is held by its body, not by its task: a client that stops reading
    // keeps its slot (and its buffered frames) until its connection goes, so at most
    // `max_consumers` streams hold memory, whatever their clients do.
    let body = futures_util::stream::unfold(
        (received, Some(ended), permit),
        |(mut received, ended, permit): (_, _, OwnedSemaphorePermit)| async move {
            if let Some(frame) = received.recv().await {
                return Some((Ok::<Event, std::convert::Infallible>(frame), (received, ended, permit)));
            }
            // The task has stopped and everything it queued is sent: its last word, if any.
            let last = ended?.await.ok()?;
            Some((Ok(last), (received, None, permit)))
        },
    );
    // No keep-alive comments of axum's: the checkpoints are the heartbeat.
    Sse::new(body).into_response()
}

/// The query's `from`, `type`s and `account`s, and `Last-Event-ID`, which wins over `from`.
fn read_request(query: Option<&str>, headers: &HeaderMap) -> Result<Request, Problem> {
    let mut request = Request {
        from: 0,
        types: Vec::new(),
        accounts: Vec::new(),
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "from" => request.from = position(&value, "from")?,
            "type" => request.types.push(value.into_owned()),
            "account" => request.accounts.push(value.into_owned()),
            other => {
                return Err(invalid_query(format!(
                    "unknown query parameter {other:?}; the stream takes from, type and account"
                )))
            }
        }
    }
    if let Some(last) = headers.get("last-event-id") {
        let last = last.to_str().map_err(|_| invalid_query("Last-Event-ID is not text"))?;
        request.from = position(last.trim(), "Last-Event-ID")?.saturating_add(1);
    }
    Ok(request)
}

fn position(text: &str, what: &str) -> Result<u64, Problem> {
    text.parse()
        .map_err(|_| invalid_query(format!("{what} must be a position (a whole number), not {text:?}")))
}

/// Why a stream ends before its client goes.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum EndReason {
    TooSlow,
    ShuttingDown,
    LogUnreadable,
}

/// One consumer's task: reads its feed, queues frames, ends the stream when it must.
struct Consumer {
    feed: Feed,
    frames: mpsc::Sender<Event>,
    end: Option<oneshot::Sender<Event>>,
    role: Role,
    source: String,
    options: StreamOptions,
    stopping: watch::Receiver<bool>,
}

/// What became of a frame offered to the buffer.
enum Queued {
    Yes,
    /// The buffer stayed full for `slow_consumer_ms`.
    TooSlow,
    /// The client has gone.
    Gone,
}

impl Consumer {
    async fn run(mut self) {
        // The position of the last frame queued: a client that has it all resumes after it.
        let mut queued_through = self.feed.examined_through();
        let mut last_frame_at = Instant::now();
        let reason = loop {
            let heartbeat = Duration::from_millis(self.options.heartbeat_ms);
            let step = tokio::select! {
                step = self.feed.next(STREAM_READ_EVENTS, heartbeat) => step,
                () = self.frames.closed() => break None,
                _ = self.stopping.wait_for(|stop| *stop) => break Some(EndReason::ShuttingDown),
            };
            let examined = match step {
                Ok(examined) => examined,
                Err(error) => {
                    tracing::warn!(code = error.code(), %error, "an event stream cannot read the log");
                    break Some(EndReason::LogUnreadable);
                }
            };
            let idle = examined.events.is_empty() && last_frame_at.elapsed() >= heartbeat;
            let before = queued_through;
            match self
                .queue(&examined.events, examined.through, idle, &mut queued_through)
                .await
            {
                Queued::Yes if queued_through > before || idle => last_frame_at = Instant::now(),
                Queued::Yes => {}
                Queued::TooSlow => break Some(EndReason::TooSlow),
                Queued::Gone => break None,
            }
        };
        if let (Some(reason), Some(end)) = (reason, self.end.take()) {
            if matches!(reason, EndReason::TooSlow) {
                crate::metrics::record_slow_consumer();
            }
            let _ = end.send(end_frame(reason, queued_through));
        }
        crate::metrics::record_stream_closed();
    }

    /// Queues the events, then a checkpoint when the last events examined were not sent,
    /// or when the consumer is `idle` at the head (the heartbeat).
    async fn queue(&mut self, events: &[RecordedEvent], through: u64, idle: bool, queued_through: &mut u64) -> Queued {
        for event in events {
            let frame = event_frame(event, &self.source, self.role);
            match self.offer(frame).await {
                Queued::Yes => *queued_through = event.global_position,
                other => return other,
            }
        }
        if *queued_through < through || idle {
            let checkpoint = checkpoint_frame(through, self.feed.head());
            match self.offer(checkpoint).await {
                Queued::Yes => *queued_through = through,
                other => return other,
            }
        }
        Queued::Yes
    }

    async fn offer(&self, frame: Event) -> Queued {
        let wait = Duration::from_millis(self.options.slow_consumer_ms);
        match self.frames.send_timeout(frame, wait).await {
            Ok(()) => Queued::Yes,
            Err(SendTimeoutError::Timeout(_)) => Queued::TooSlow,
            Err(SendTimeoutError::Closed(_)) => Queued::Gone,
        }
    }
}

fn event_frame(event: &RecordedEvent, source: &str, role: Role) -> Event {
    let envelope = envelope_for(event, source, Some(role));
    let data = serde_json::to_string(&envelope).unwrap_or_default();
    Event::default().id(event.global_position.to_string()).data(data)
}

fn checkpoint_frame(through: u64, head: u64) -> Event {
    Event::default()
        .event("checkpoint")
        .id(through.to_string())
        .data(serde_json::json!({ "position": through, "head": head }).to_string())
}

fn end_frame(reason: EndReason, queued_through: u64) -> Event {
    let data = serde_json::json!({ "reason": reason, "resume_from": queued_through + 1 });
    Event::default()
        .event("end")
        .id(queued_through.to_string())
        .data(data.to_string())
}
