//! The ledger's event log.
//!
//! The store knows the envelope (stream, sequence, global position, type,
//! version, metadata) and nothing of brokerage rules: payloads are JSON.
//! Backends implement [`EventStore`]; the embedded default is SQLite.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Decode, Row, Type};

pub mod chain;
pub mod codec;
mod postgres;
mod sqlite;

/// Key of PostgreSQL's advisory lock that serialises appends: who holds it shows in `pg_locks`.
pub use postgres::APPEND_LOCK_KEY as POSTGRES_APPEND_LOCK_KEY;
pub use postgres::{redact as redact_url, PostgresEventStore};
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
    /// The account the command named, if any: kept with the outcome, since a refusal
    /// writes no event and compliance still asks who was refused.
    pub account_id: Option<String>,
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
    pub account_id: Option<String>,
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
    #[error(
        "events from position {position} are committed but held back for {waited_ms} ms behind an older \
         transaction still open on the database server (see pg_stat_activity); close it and retry"
    )]
    HeldBack { position: u64, waited_ms: u64 },
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

    /// Appends decided commands in one transaction. Each stream append is checked
    /// against its expected sequence and each command id must be new. With
    /// `AllOrNothing`, one refusal writes nothing and is the error; with
    /// `EachCommand`, a refused command is answered with its error and the others
    /// are written. Returns each command's outcome with its events' positions.
    async fn append_batch(
        &self,
        commands: &[CommandRecord],
        atomicity: Atomicity,
    ) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError>;

    /// All or nothing: the engine's sequential batches.
    async fn append(&self, commands: &[CommandRecord]) -> Result<Vec<StoredOutcome>, StoreError> {
        self.append_batch(commands, Atomicity::AllOrNothing)
            .await?
            .into_iter()
            .collect()
    }

    /// Each command on its own: a conflict or a duplicate fails only that command.
    async fn append_each(
        &self,
        commands: &[CommandRecord],
    ) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
        self.append_batch(commands, Atomicity::EachCommand).await
    }

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

    /// What the idempotency records claim about the log, for `verify`.
    async fn outcome_totals(&self) -> Result<OutcomeTotals, StoreError>;

    /// The database behind the log, for the read models that live beside it.
    fn database(&self) -> Database;
}

/// A connection pool to the ledger's database, whichever backend it is.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Sums over `command_outcomes`: every accepted command's events must be in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutcomeTotals {
    pub commands: u64,
    pub events_claimed: u64,
    pub highest_position: u64,
}

/// Longest a reader waits for committed events held back behind an older open transaction.
pub const MAX_HELD_BACK_MS: u64 = 30_000;
const HELD_BACK_POLL_MS: u64 = 5;

/// The next events after `after`, for a reader that wants everything up to
/// `head` (a position it saw committed). `read_after` holds back events while
/// an older transaction is still open (so none is ever skipped); this waits
/// for them, up to `MAX_HELD_BACK_MS`, instead of returning nothing.
pub async fn read_towards(
    store: &dyn EventStore,
    after: u64,
    head: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut waited_ms = 0;
    loop {
        let events = store.read_after(after, limit).await?;
        if !events.is_empty() || after >= head {
            return Ok(events);
        }
        if waited_ms >= MAX_HELD_BACK_MS {
            return Err(StoreError::HeldBack {
                position: after + 1,
                waited_ms,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(HELD_BACK_POLL_MS)).await;
        waited_ms += HELD_BACK_POLL_MS;
    }
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

/// Ends a transaction by its body's result: commits it after `Ok`, rolls it back at once
/// after `Err`. Every transaction of the ledger ends here, because a dropped transaction is
/// only rolled back when its connection is next used, and until then it holds its locks
/// (the append lock, a checkpoint row). If the rollback fails too, the connection is gone,
/// and with it the transaction; the body's error is the one to report.
pub async fn commit_or_roll_back<DB, T, E>(
    tx: sqlx::Transaction<'_, DB>,
    result: Result<T, E>,
    commit_error: impl FnOnce(sqlx::Error) -> E,
) -> Result<T, E>
where
    DB: sqlx::Database,
{
    match result {
        Ok(value) => {
            tx.commit().await.map_err(commit_error)?;
            Ok(value)
        }
        Err(error) => {
            let _ = tx.rollback().await;
            Err(error)
        }
    }
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

/// What an append does when one command of the batch cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// Nothing of the batch is written (the engine's sequential batches, where a
    /// later command may depend on an earlier one).
    AllOrNothing,
    /// That command alone is refused; the others are written (group commit of
    /// independent commands).
    EachCommand,
}

/// The events to write, in order, and why each refused command was refused.
pub(crate) struct AppendPlan<'a> {
    pub events: Vec<PlannedEvent<'a>>,
    /// One entry per command: `Some` when it cannot be written.
    pub refusals: Vec<Option<StoreError>>,
}

/// Checks every command against the command ids already stored and every stream
/// append against the stream heads (and the commands before it in the batch),
/// and lays the events out in order. Backend-independent.
pub(crate) fn plan_append<'a>(
    commands: &'a [CommandRecord],
    mut heads: HashMap<StreamId, u64>,
    existing_ids: &HashSet<String>,
    atomicity: Atomicity,
) -> Result<AppendPlan<'a>, StoreError> {
    let mut written_ids: HashSet<&str> = HashSet::with_capacity(commands.len());
    let mut plan = AppendPlan {
        events: Vec::new(),
        refusals: Vec::with_capacity(commands.len()),
    };
    for (index, command) in commands.iter().enumerate() {
        assert!(
            command.status == OutcomeStatus::Accepted || command.appends.iter().all(|a| a.events.is_empty()),
            "a rejected command carries no events"
        );
        let command_id = command.metadata.command_id.as_str();
        let mut refusal = None;
        if existing_ids.contains(command_id) || written_ids.contains(command_id) {
            refusal = Some(StoreError::DuplicateCommand(command_id.to_owned()));
        }
        let mut tentative_heads: HashMap<&StreamId, u64> = HashMap::new();
        let mut events = Vec::new();
        for append in &command.appends {
            if refusal.is_some() {
                break;
            }
            let head = tentative_heads
                .get(&append.stream)
                .or_else(|| heads.get(&append.stream))
                .copied()
                .unwrap_or(0);
            if head != append.expected_sequence {
                refusal = Some(StoreError::Conflict {
                    stream: append.stream.clone(),
                    expected: append.expected_sequence,
                    actual: head,
                });
                break;
            }
            let mut sequence = head;
            for event in &append.events {
                sequence += 1;
                events.push(PlannedEvent {
                    command: index,
                    stream: &append.stream,
                    sequence,
                    event,
                });
            }
            tentative_heads.insert(&append.stream, sequence);
        }
        match refusal {
            Some(refusal) if atomicity == Atomicity::AllOrNothing => return Err(refusal),
            Some(refusal) => plan.refusals.push(Some(refusal)),
            None => {
                for (stream, sequence) in tentative_heads {
                    heads.insert(stream.clone(), sequence);
                }
                written_ids.insert(command_id);
                plan.events.extend(events);
                plan.refusals.push(None);
            }
        }
    }
    Ok(plan)
}

/// Each command's outcome, given the positions its planned events got (same
/// order as the plan), or why it was refused.
pub(crate) fn outcomes_of(
    commands: &[CommandRecord],
    metadata: &[EventMetadata],
    plan: AppendPlan<'_>,
    positions: &[u64],
) -> Vec<Result<StoredOutcome, StoreError>> {
    assert_eq!(plan.events.len(), positions.len(), "one position per planned event");
    assert_eq!(plan.refusals.len(), commands.len(), "one verdict per command");
    let mut outcomes: Vec<Result<StoredOutcome, StoreError>> = commands
        .iter()
        .zip(metadata)
        .zip(plan.refusals)
        .map(|((command, metadata), refusal)| match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(StoredOutcome {
                command_id: command.metadata.command_id.clone(),
                status: command.status,
                code: command.code.clone(),
                message: command.message.clone(),
                account_id: command.account_id.clone(),
                event_count: 0,
                first_position: None,
                last_position: None,
                recorded_at: metadata.recorded_at,
            }),
        })
        .collect();
    for (planned, position) in plan.events.iter().zip(positions) {
        if let Ok(outcome) = &mut outcomes[planned.command] {
            outcome.event_count += 1;
            outcome.first_position.get_or_insert(*position);
            outcome.last_position = Some(*position);
        }
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

/// An `events` row as read by either backend (`recorded_at` as canonical text).
pub(crate) fn event_from_row<R>(row: &R) -> Result<RecordedEvent, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let payload_text: String = row.try_get("payload")?;
    let payload =
        serde_json::from_str(&payload_text).map_err(|e| StoreError::Corrupt(format!("payload is not JSON: {e}")))?;
    let version: i64 = row.try_get("event_version")?;
    Ok(RecordedEvent {
        global_position: to_u64(row.try_get("global_position")?, "global_position")?,
        stream: StreamId::new(
            row.try_get::<String, _>("aggregate_type")?,
            row.try_get::<String, _>("aggregate_id")?,
        ),
        sequence: to_u64(row.try_get("sequence")?, "sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("event_version {version}")))?,
        payload,
        metadata: EventMetadata {
            command_id: row.try_get("command_id")?,
            correlation_id: row.try_get("correlation_id")?,
            causation_id: row.try_get("causation_id")?,
            actor: row.try_get("actor")?,
            recorded_at: parse_time(&row.try_get::<String, _>("recorded_at")?)?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// A `command_outcomes` row as read by either backend (`recorded_at` as canonical text).
pub(crate) fn outcome_from_row<R>(row: &R) -> Result<StoredOutcome, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "accepted" => OutcomeStatus::Accepted,
        "rejected" => OutcomeStatus::Rejected,
        other => return Err(StoreError::Corrupt(format!("outcome status {other:?}"))),
    };
    let position = |name: &str| -> Result<Option<u64>, StoreError> {
        row.try_get::<Option<i64>, _>(name)?
            .map(|p| to_u64(p, "position"))
            .transpose()
    };
    Ok(StoredOutcome {
        command_id: row.try_get("command_id")?,
        status,
        code: row.try_get("code")?,
        message: row.try_get("message")?,
        account_id: row.try_get("account_id")?,
        event_count: to_u64(row.try_get("event_count")?, "event_count")?,
        first_position: position("first_position")?,
        last_position: position("last_position")?,
        recorded_at: parse_time(&row.try_get::<String, _>("recorded_at")?)?,
    })
}

/// The highest position written; the same SQL on every backend.
pub(crate) async fn head_position_of<DB>(pool: &sqlx::Pool<DB>) -> Result<u64, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let row = sqlx::query("SELECT COALESCE(MAX(global_position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    to_u64(row.try_get::<i64, _>(0)?, "global_position")
}

/// Sums over the idempotency records; the same SQL on every backend.
pub(crate) async fn outcome_totals_of<DB>(pool: &sqlx::Pool<DB>) -> Result<OutcomeTotals, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let row = sqlx::query(
        "SELECT COUNT(*), CAST(COALESCE(SUM(event_count), 0) AS BIGINT), \
         CAST(COALESCE(MAX(last_position), 0) AS BIGINT) FROM command_outcomes",
    )
    .fetch_one(pool)
    .await?;
    Ok(OutcomeTotals {
        commands: to_u64(row.try_get::<i64, _>(0)?, "count")?,
        events_claimed: to_u64(row.try_get::<i64, _>(1)?, "event_count")?,
        highest_position: to_u64(row.try_get::<i64, _>(2)?, "last_position")?,
    })
}
