//! `ledger relay nats`: every event of the log, in position order, to a NATS JetStream
//! stream, resuming after any crash with no gap and no duplicate.
//!
//! How it stays exact. Each message carries `Nats-Msg-Id` = its position (JetStream
//! drops a repeat within its window) and `Nats-Expected-Last-Sequence` = the stream
//! sequence it must follow: JetStream refuses a message that would land after a gap or
//! twice, so the stream holds positions 1, 2, 3, … in order whatever fails. The stream's
//! last message is where the relay resumes (read back at every start and after every
//! error); the relay's checkpoint in the ledger's database (`relay:nats:<stream>`, beside
//! the projections' checkpoints) is stored only after the acknowledgement, at most every
//! [`CHECKPOINT_EVERY_MS`], and is what `ledger relay status` reports the lag from.
//!
//! - [`subject`]: the subject of each event;
//! - [`jetstream`]: the stream, made or checked, and where it ends.

pub mod jetstream;
pub mod subject;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use ledger_app::access::Role;
use ledger_app::stream::{envelope_for, watch_log_head, EventFilter, Feed, LogHead};
use ledger_app::{AppError, EventStore, RecordedEvent};

use crate::jetstream::{ensure_stream, stream_end};
use crate::subject::subject_of;

/// Events read from the log and published before their acknowledgements are awaited:
/// the most publishes in flight at once.
pub const MAX_IN_FLIGHT: usize = 256;
/// Longest the relay waits at the head before it looks again.
pub const IDLE_WAIT_MS: u64 = 1_000;
/// How often the checkpoint is stored, at most (and at the latest one idle wait after
/// it is due), in the background: each store is a write to the ledger's database, which
/// on SQLite queues behind the writers; the stream's last message, not the checkpoint,
/// is where the relay resumes, so the checkpoint only has to be recent.
pub const CHECKPOINT_EVERY_MS: u64 = 1_000;
/// First and longest pause before a failed session is tried again (doubling between).
pub const RETRY_FIRST_MS: u64 = 200;
pub const RETRY_MAX_MS: u64 = 5_000;
/// Longest a stop waits for a session that is starting (a few JetStream requests and a
/// few statements, to learn where the stream ends and bring the checkpoint there):
/// ample on a healthy NATS and database. Past it the relay stops with the checkpoint
/// where it was, and its next start brings it to the stream's end.
pub const START_ON_STOP_MS: u64 = 5_000;
/// The content type of each message: a CloudEvent in structured mode.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("NATS: {what}: {cause}")]
    Nats { what: &'static str, cause: String },
    #[error(
        "stream {stream} takes the subjects {subjects:?}, not {wanted:?}: give the relay a stream of its own (--stream) or the prefix the stream was made for (--subject-prefix)"
    )]
    StreamMismatch {
        stream: String,
        subjects: Vec<String>,
        wanted: String,
    },
    #[error(
        "the stream's last message (sequence {sequence}, subject {subject}) has no position in Nats-Msg-Id: the stream holds messages of another publisher; give the relay a stream of its own"
    )]
    ForeignMessage { sequence: u64, subject: String },
    #[error("JetStream answered message {position} out of step (sequence {got}, expected {expected}, duplicate: {duplicate})")]
    OutOfStep {
        position: u64,
        got: u64,
        expected: u64,
        duplicate: bool,
    },
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Ledger(#[from] AppError),
}

impl RelayError {
    fn nats(what: &'static str, cause: &dyn std::fmt::Display) -> Self {
        RelayError::Nats {
            what,
            cause: cause.to_string(),
        }
    }

    /// Whether trying again can help (NATS down, the database briefly unreachable), or
    /// the operator must act first (a stream of another's, a bad prefix).
    pub fn is_transient(&self) -> bool {
        match self {
            RelayError::Nats { .. } | RelayError::OutOfStep { .. } => true,
            RelayError::Ledger(error) => {
                matches!(error.code(), "database_lost" | "database_unreachable" | "contention")
            }
            RelayError::StreamMismatch { .. } | RelayError::ForeignMessage { .. } | RelayError::InvalidInput(_) => {
                false
            }
        }
    }
}

/// What the relay is told.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
    /// The envelopes' `source` (`[events] source` of ledger.toml).
    pub source: String,
}

/// Where the relay is: when a session starts, then after each acknowledged batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The last position relayed: found at the stream's end when the session started
    /// (the stored checkpoint, for a stream that holds nothing), or acknowledged since.
    pub relayed_through: u64,
    /// The log's head as last seen.
    pub head: u64,
}

/// The name of a NATS relay's checkpoint among the ledger's checkpoints.
pub fn checkpoint_name(stream: &str) -> String {
    format!("relay:nats:{stream}")
}

/// Relays until `stop` completes. Failures that trying again can mend (NATS restarting,
/// a lost database connection) are logged and retried with a growing pause; the others
/// end the relay with their error. A stop lets the batch in flight be acknowledged
/// first (at most [`MAX_IN_FLIGHT`] events, or the publish timeout), and a session that
/// is starting learn where the stream ends (within [`START_ON_STOP_MS`]), so that the
/// checkpoint stored on the way out covers every message the stream took.
pub async fn run(
    store: Arc<dyn EventStore>,
    options: &RelayOptions,
    stop: impl Future<Output = ()>,
    mut on_progress: impl FnMut(Progress),
) -> Result<(), RelayError> {
    subject::check_prefix(&options.subject_prefix).map_err(RelayError::InvalidInput)?;
    subject::check_stream_name(&options.stream).map_err(RelayError::InvalidInput)?;
    let client = async_nats::ConnectOptions::new()
        .name("ledger-relay")
        .retry_on_initial_connect()
        .connect(options.url.as_str())
        .await
        .map_err(|e| RelayError::nats("cannot connect", &e))?;
    let js = async_nats::jetstream::new(client);
    let (head, _head_task) = watch_log_head(Arc::clone(&store), None);
    tokio::pin!(stop);
    // The last position the session reported, stored as the checkpoint when the relay
    // stops. Cleared as each session begins: one that fails while starting (after
    // setting the checkpoint back to a stream that lost messages, say) must not leave
    // an earlier session's position to be stored.
    let relayed = std::sync::atomic::AtomicU64::new(0);
    let mut report = |progress: Progress| {
        relayed.store(progress.relayed_through, std::sync::atomic::Ordering::Relaxed);
        on_progress(progress);
    };
    let mut pause_ms = RETRY_FIRST_MS;
    loop {
        relayed.store(0, std::sync::atomic::Ordering::Relaxed);
        let session = Session {
            js: &js,
            store: &store,
            head: head.clone(),
            options,
        };
        match session.run(stop.as_mut(), &mut report, &mut pause_ms).await {
            Ok(Stopped) => break,
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, retry_ms = pause_ms, "the relay stopped; it resumes from the stream's last message");
            }
            Err(error) => return Err(error),
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(Duration::from_millis(pause_ms)) => {}
        }
        pause_ms = (pause_ms * 2).min(RETRY_MAX_MS);
    }
    let position = relayed.load(std::sync::atomic::Ordering::Relaxed);
    if position > 0 {
        let name = checkpoint_name(&options.stream);
        ledger_app::stream::advance_named_checkpoint(store.as_ref(), &name, position).await?;
    }
    Ok(())
}

/// One run of the relay from where the stream ends, until something fails.
struct Session<'a> {
    js: &'a Context,
    store: &'a Arc<dyn EventStore>,
    head: LogHead,
    options: &'a RelayOptions,
}

/// A session ended because the relay was told to stop.
struct Stopped;

impl Session<'_> {
    /// Relays until `stop` completes (between batches: a batch published is awaited, a
    /// start under way is finished, within [`START_ON_STOP_MS`]) or something fails.
    async fn run(
        self,
        mut stop: Pin<&mut impl Future<Output = ()>>,
        on_progress: &mut impl FnMut(Progress),
        pause_ms: &mut u64,
    ) -> Result<Stopped, RelayError> {
        let started = {
            let start = self.start(on_progress);
            tokio::pin!(start);
            tokio::select! {
                started = &mut start => Some(started?),
                () = stop.as_mut() => {
                    finish_start_on_stop(start).await?;
                    None
                }
            }
        };
        let Some((mut feed, mut last_sequence, mut checkpoint)) = started else {
            return Ok(Stopped);
        };
        loop {
            let examined = tokio::select! {
                () = stop.as_mut() => return Ok(Stopped),
                examined = feed.next(MAX_IN_FLIGHT, Duration::from_millis(IDLE_WAIT_MS)) => examined?,
            };
            checkpoint.store_if_due().await?;
            let Some(last) = examined.events.last().map(|e| e.global_position) else {
                continue;
            };
            last_sequence = self.publish(&examined.events, last_sequence).await?;
            checkpoint.acknowledged = last;
            *pause_ms = RETRY_FIRST_MS;
            on_progress(Progress {
                relayed_through: last,
                head: feed.head(),
            });
        }
    }

    /// Where the session starts: the stream made or checked, the position after its
    /// last message (the checkpoint brought there, and reported), and the stream's last
    /// sequence.
    async fn start(&self, on_progress: &mut impl FnMut(Progress)) -> Result<(Feed, u64, Checkpointer), RelayError> {
        let mut stream = ensure_stream(self.js, &self.options.stream, &self.options.subject_prefix).await?;
        let end = stream_end(&mut stream).await?;
        let name = checkpoint_name(&self.options.stream);
        let checkpoint = ledger_app::stream::named_checkpoint(self.store.as_ref(), &name).await?;
        // The stream is the truth of what was relayed: a stream that ends before the
        // checkpoint lost acknowledged messages (restored from a backup, say), and the
        // relay publishes them again rather than leave a gap.
        let after = match end.last_position {
            Some(position) if position < checkpoint => {
                tracing::warn!(
                    checkpoint,
                    stream_last = position,
                    "the stream ends before the relay's checkpoint: it lost messages; publishing them again"
                );
                ledger_app::stream::reset_named_checkpoint(self.store.as_ref(), &name, position).await?;
                position
            }
            Some(position) => position,
            None => {
                if checkpoint > 0 {
                    tracing::warn!(
                        checkpoint,
                        "the stream holds no message (purged or made anew): going on after the checkpoint"
                    );
                }
                checkpoint
            }
        };
        let log_head = ledger_app::head_position(self.store.as_ref()).await?;
        if after > log_head {
            return Err(RelayError::InvalidInput(format!(
                "stream {} holds position {after}, past this ledger's last event ({log_head}): it is another ledger's stream; give this ledger a stream and prefix of its own",
                self.options.stream
            )));
        }
        ledger_app::stream::advance_named_checkpoint(self.store.as_ref(), &name, after).await?;
        let filter = EventFilter::default();
        let feed = Feed::starting_at(Arc::clone(self.store), self.head.clone(), filter, after + 1);
        on_progress(Progress {
            relayed_through: after,
            // The feed's watch of the head may not have looked yet.
            head: log_head.max(feed.head()),
        });
        Ok((
            feed,
            end.last_sequence,
            Checkpointer::new(Arc::clone(self.store), name, after),
        ))
    }

    /// Publishes the events in order, each expecting the one before it as the stream's
    /// last, and awaits every acknowledgement; the stream's last sequence after them.
    async fn publish(&self, events: &[RecordedEvent], mut last_sequence: u64) -> Result<u64, RelayError> {
        let mut acks: Vec<(u64, PublishAckFuture)> = Vec::with_capacity(events.len());
        for (offset, event) in (0_u64..).zip(events) {
            // Its readers are other systems: personal data masked as for a subscriber.
            let envelope = envelope_for(event, &self.options.source, Some(Role::Subscriber));
            let body = serde_json::to_vec(&envelope).map_err(|e| RelayError::InvalidInput(e.to_string()))?;
            let message = PublishMessage::build()
                .payload(body.into())
                .message_id(event.global_position.to_string())
                .expected_last_sequence(last_sequence + offset)
                .header("Content-Type", CONTENT_TYPE);
            let subject = subject_of(&self.options.subject_prefix, event);
            let ack = self
                .js
                .send_publish(subject, message)
                .await
                .map_err(|e| RelayError::nats("cannot publish", &e))?;
            acks.push((event.global_position, ack));
        }
        for (position, ack) in acks {
            let ack = ack
                .await
                .map_err(|e| RelayError::nats("a publish was not acknowledged", &e))?;
            let expected = last_sequence + 1;
            if ack.duplicate || ack.sequence != expected {
                return Err(RelayError::OutOfStep {
                    position,
                    got: ack.sequence,
                    expected,
                    duplicate: ack.duplicate,
                });
            }
            last_sequence = ack.sequence;
        }
        Ok(last_sequence)
    }
}

/// Lets a session that was starting when the relay was told to stop finish (it brings
/// the checkpoint to the stream's end), within [`START_ON_STOP_MS`]. A failure the
/// operator must act on (a stream of another's) still ends the relay with its error.
async fn finish_start_on_stop<T>(start: impl Future<Output = Result<T, RelayError>>) -> Result<(), RelayError> {
    match tokio::time::timeout(Duration::from_millis(START_ON_STOP_MS), start).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) if !error.is_transient() => return Err(error),
        Ok(Err(error)) => tracing::warn!(%error, "the relay stopped while starting"),
        Err(_) => tracing::warn!(
            wait_ms = START_ON_STOP_MS,
            "the relay stopped before it learned where the stream ends"
        ),
    }
    Ok(())
}

/// Stores the relay's checkpoint in the background, at most every [`CHECKPOINT_EVERY_MS`]
/// and one store at a time, so publishing never waits for the ledger's database (on
/// SQLite a write queues behind the writers, for seconds when they are busy).
struct Checkpointer {
    store: Arc<dyn EventStore>,
    name: Arc<str>,
    /// The last position JetStream acknowledged.
    acknowledged: u64,
    stored: u64,
    due_at: Instant,
    storing: Option<tokio::task::JoinHandle<Result<u64, AppError>>>,
}

impl Checkpointer {
    fn new(store: Arc<dyn EventStore>, name: String, stored: u64) -> Self {
        Self {
            store,
            name: name.into(),
            acknowledged: stored,
            stored,
            due_at: Instant::now(),
            storing: None,
        }
    }

    /// Starts a store of the acknowledged position when one is due and none is running;
    /// a store that failed fails the session (which retries).
    async fn store_if_due(&mut self) -> Result<(), RelayError> {
        if let Some(storing) = self.storing.take_if(|task| task.is_finished()) {
            self.stored = storing
                .await
                .map_err(|e| RelayError::InvalidInput(format!("the checkpoint's task failed: {e}")))??;
        }
        if self.storing.is_some() || self.acknowledged <= self.stored || Instant::now() < self.due_at {
            return Ok(());
        }
        let (store, name, position) = (Arc::clone(&self.store), Arc::clone(&self.name), self.acknowledged);
        self.storing = Some(tokio::spawn(async move {
            ledger_app::stream::advance_named_checkpoint(store.as_ref(), &name, position).await?;
            Ok(position)
        }));
        self.due_at = Instant::now() + Duration::from_millis(CHECKPOINT_EVERY_MS);
        Ok(())
    }
}
