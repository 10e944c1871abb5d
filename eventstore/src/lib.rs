//! The ledger's event log.
//!
//! The store knows the envelope (stream, sequence, global position, type,
//! version, metadata) and nothing of brokerage rules: payloads are JSON.
//! Backends implement [`EventStore`]; the embedded default is SQLite.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod chain;
pub mod codec;
mod postgres;
mod sqlite;

pub use postgres::PostgresEventStore;
pub use sqlite::SqliteEventStore;

/// Most commands one `append` call takes: bounds a transaction's size.
pub const MAX_APPEND_COMMANDS: usize = 10_000;
/// Most events one `read_after` call returns.
pub const MAX_READ_EVENTS: usize = 10_000;
/// Most command ids one `find_outcomes` call looks up.
pub const MAX_OUTCOME_LOOKUPS: usize = 10_000;

/// One aggregate's stream of events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    pub aggregate_type: String,
    pub aggregate_id: String,
}

impl StreamId {
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.aggregate_type, self.aggregate_id)
    }
}

/// Who asked for a command and why; shared by every event the command wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The idempotency key of the command that wrote the event.
    pub command_id: String,
    /// Groups the commands of one business flow (a file, a session).
    pub correlation_id: String,
    /// What caused the command: the command itself, or the command whose process sent it.
    pub causation_id: String,
    /// Who sent it: `cli:exec`, `demo`, a user or a system.
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
}

/// An event to append; the store assigns its sequence and global position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_type: String,
    pub event_version: u32,
    pub payload: serde_json::Value,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub global_position: u64,
    pub stream: StreamId,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: u32,
    pub payload: serde_json::Value,
    pub metadata: EventMetadata,
    /// Hash of the event before this one in global order (see `chain`).
    pub prev_hash: String,
    /// SHA-256 of this event's canonical bytes, lower-case hex.
    pub hash: String,
}

/// Events for one stream, valid only if the stream is still at `expected_sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    pub stream: StreamId,
    /// The sequence of the stream's last event when the command was decided (0: new stream).
    pub expected_sequence: u64,
    pub events: Vec<NewEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Accepted,
    Rejected,
}

impl OutcomeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Accepted => "accepted",
            OutcomeStatus::Rejected => "rejected",
        }
    }
}

/// A decided command: its outcome and, if accepted, its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub metadata: EventMetadata,
    pub status: OutcomeStatus,
    /// The refusal code, for a rejected command.
    pub code: Option<String>,
    pub message: Option<String>,
    /// In order; a stream may appear more than once (a later append expects the earlier one's end).
    pub appends: Vec<StreamAppend>,
}

/// The first outcome of a command id, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutcome {
    pub command_id: String,
    pub status: OutcomeStatus,
    pub code: Option<String>,
    pub message: Option<String>,
    pub event_count: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream} is at sequence {actual}, expected {expected}: another writer got there first")]
    Conflict {
        stream: StreamId,
        expected: u64,
        actual: u64,
    },
    #[error("command id {0} already has an outcome")]
    DuplicateCommand(String),
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded { what: &'static str, limit: usize },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database URL {url:?} is not supported: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[error("cannot reach the database at {url}: {reason}. Is PostgreSQL running? Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")]
    Unreachable { url: String, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// The log. Every backend passes the same tests.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Appends decided commands in one transaction: all or nothing. Each stream
    /// append is checked against its expected sequence and each command id must
    /// be new; otherwise nothing is written and the error names the cause.
    /// Returns each command's outcome with the positions of its events.
    async fn append(&self, commands: &[CommandRecord]) -> Result<Vec<StoredOutcome>, StoreError>;

    /// All events of one stream, by sequence.
    async fn load_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events with a global position above `after_position`, in order.
    async fn read_after(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The stored outcomes of those command ids that have one.
    async fn find_outcomes(&self, command_ids: &[String]) -> Result<HashMap<String, StoredOutcome>, StoreError>;

    /// Ids of every stream of an aggregate type, sorted.
    async fn stream_ids(&self, aggregate_type: &str) -> Result<Vec<String>, StoreError>;

    /// The highest global position written (0 for an empty log).
    async fn head_position(&self) -> Result<u64, StoreError>;
}

/// Default database: `ledger.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ledger.db";

/// Opens the store a URL names, creating and migrating it on first use.
/// `postgres://…` selects PostgreSQL; `sqlite://PATH`, `sqlite::memory:` or a plain file path select SQLite.
pub async fn connect(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresEventStore::open(url).await?));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme != "sqlite" {
            return Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
                reason: format!("unknown scheme {scheme:?}; use postgres://…, sqlite://PATH or a file path"),
            });
        }
    }
    Ok(Arc::new(SqliteEventStore::open(url).await?))
}

pub(crate) fn check_limit(what: &'static str, count: usize, limit: usize) -> Result<(), StoreError> {
    if count > limit {
        return Err(StoreError::LimitExceeded { what, limit });
    }
    Ok(())
}

/// One event of an append, with the sequence it will get.
pub(crate) struct PlannedEvent<'a> {
    /// Index of its command in the append call.
    pub command: usize,
    pub stream: &'a StreamId,
    pub sequence: u64,
    pub event: &'a NewEvent,
}

/// Checks every stream append against the stream heads (and the appends before
/// it in the same call) and lays the events out in order. Backend-independent.
pub(crate) fn plan_append(
    commands: &[CommandRecord],
    mut heads: HashMap<StreamId, u64>,
) -> Result<Vec<PlannedEvent<'_>>, StoreError> {
    let mut ids = std::collections::HashSet::with_capacity(commands.len());
    let mut plan = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        if !ids.insert(command.metadata.command_id.as_str()) {
            return Err(StoreError::DuplicateCommand(command.metadata.command_id.clone()));
        }
        assert!(
            command.status == OutcomeStatus::Accepted || command.appends.iter().all(|a| a.events.is_empty()),
            "a rejected command carries no events"
        );
        for append in &command.appends {
            let head = heads.get(&append.stream).copied().unwrap_or(0);
            if head != append.expected_sequence {
                return Err(StoreError::Conflict {
                    stream: append.stream.clone(),
                    expected: append.expected_sequence,
                    actual: head,
                });
            }
            let mut sequence = head;
            for event in &append.events {
                sequence += 1;
                plan.push(PlannedEvent {
                    command: index,
                    stream: &append.stream,
                    sequence,
                    event,
                });
            }
            heads.insert(append.stream.clone(), sequence);
        }
    }
    Ok(plan)
}

/// Each command's outcome, given the positions its planned events got (same order as the plan).
pub(crate) fn outcomes_of(
    commands: &[CommandRecord],
    metadata: &[EventMetadata],
    plan: &[PlannedEvent<'_>],
    positions: &[u64],
) -> Vec<StoredOutcome> {
    assert_eq!(plan.len(), positions.len(), "one position per planned event");
    let mut outcomes: Vec<StoredOutcome> = commands
        .iter()
        .zip(metadata)
        .map(|(command, metadata)| StoredOutcome {
            command_id: command.metadata.command_id.clone(),
            status: command.status,
            code: command.code.clone(),
            message: command.message.clone(),
            event_count: 0,
            first_position: None,
            last_position: None,
            recorded_at: metadata.recorded_at,
        })
        .collect();
    for (planned, position) in plan.iter().zip(positions) {
        let outcome = &mut outcomes[planned.command];
        outcome.event_count += 1;
        outcome.first_position.get_or_insert(*position);
        outcome.last_position = Some(*position);
    }
    outcomes
}

/// Where an event lands in the log and how it is chained.
pub(crate) struct ChainedRow {
    pub global_position: u64,
    pub prev_hash: String,
    pub hash: String,
}

/// Gives the planned events consecutive positions after `last_position` and
/// chains their hashes from `last_hash`. `metadata` is per command, already at
/// stored precision.
pub(crate) fn chain_plan(
    plan: &[PlannedEvent<'_>],
    metadata: &[EventMetadata],
    last_position: u64,
    last_hash: &str,
) -> Vec<ChainedRow> {
    let mut rows = Vec::with_capacity(plan.len());
    let mut prev_hash = last_hash.to_owned();
    for (offset, planned) in plan.iter().enumerate() {
        let global_position = last_position + offset as u64 + 1;
        let hash = chain::ChainedFields::of_new(
            global_position,
            planned.stream,
            planned.sequence,
            planned.event,
            &metadata[planned.command],
            &prev_hash,
        )
        .hash();
        rows.push(ChainedRow {
            global_position,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        });
    }
    rows
}

/// Each command's metadata with `recorded_at` at the precision the backends keep,
/// so that the hash computed now is the hash recomputed from what is stored.
pub(crate) fn stored_metadata(commands: &[CommandRecord]) -> Vec<EventMetadata> {
    commands
        .iter()
        .map(|c| EventMetadata {
            recorded_at: chain::to_stored_precision(c.metadata.recorded_at),
            ..c.metadata.clone()
        })
        .collect()
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

pub(crate) fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::LimitExceeded {
        what: "a position or sequence",
        limit: i64::MAX as usize,
    })
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("recorded_at {text:?}: {e}")))
}

/// A stream read back must be 1, 2, 3, … with no hole.
pub(crate) fn check_stream_sequences(stream: &StreamId, events: &[RecordedEvent]) -> Result<(), StoreError> {
    for (index, event) in events.iter().enumerate() {
        if event.sequence != index as u64 + 1 {
            return Err(StoreError::Corrupt(format!(
                "stream {stream} has sequence {} at index {index}: a gap",
                event.sequence
            )));
        }
    }
    Ok(())
}
