//! Embedded SQLite backend: one file, WAL journal, synchronous=FULL.
//!
//! SQLite has one writer at a time and every append runs in a `BEGIN IMMEDIATE`
//! transaction, so global positions are handed out in commit order and a reader
//! of "positions after P" can never miss an event that commits later.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::chain::{format_recorded_at, GENESIS_HASH};
use crate::{
    chain_plan, check_limit, event_from_row, outcome_from_row, outcomes_of, plan_append, stored_metadata, to_i64,
    to_u64, Atomicity, CommandRecord, EventStore, RecordedEvent, StoreError, StoredOutcome, StreamId,
    MAX_APPEND_COMMANDS, MAX_OUTCOME_LOOKUPS, MAX_READ_EVENTS,
};
use crate::{commit_or_roll_back, OutcomeTotals};

/// How long a writer waits for another process's write lock before failing.
const BUSY_TIMEOUT_MS: u64 = 10_000;
/// Connections of the pool: one writer at a time, the rest for readers.
const MAX_CONNECTIONS: u32 = 4;
/// Bound parameters per `IN (...)` lookup, below SQLite's limit.
const LOOKUP_CHUNK: usize = 500;
/// Events per multi-row INSERT (11 parameters each, below SQLite's 32,766).
const EVENT_ROWS_PER_INSERT: usize = 500;
/// Outcomes per multi-row INSERT (8 parameters each).
const OUTCOME_ROWS_PER_INSERT: usize = 500;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteEventStore {
    pool: SqlitePool,
}

impl SqliteEventStore {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://PATH`, `sqlite::memory:` or a plain path).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let in_memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .foreign_keys(true);
        // An in-memory database lives in one connection; sharing it needs a pool of one.
        let max_connections = if in_memory { 1 } else { MAX_CONNECTIONS };
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append_batch(
        &self,
        commands: &[CommandRecord],
        atomicity: Atomicity,
    ) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
        check_limit("commands in one append", commands.len(), MAX_APPEND_COMMANDS)?;
        // IMMEDIATE takes the write lock up front: one appender at a time, so positions
        // are handed out in commit order and each append chains onto the last hash.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let written = write_batch(&mut tx, commands, atomicity).await;
        commit_or_roll_back(tx, written, StoreError::from).await
    }

    async fn load_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM events WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence")
            .bind(&stream.aggregate_type)
            .bind(&stream.aggregate_id)
            .fetch_all(&self.pool)
            .await?;
        let events = rows.iter().map(event_from_row).collect::<Result<Vec<_>, _>>()?;
        crate::check_stream_sequences(stream, &events)?;
        Ok(events)
    }

    async fn read_after(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        check_limit("events in one read", limit, MAX_READ_EVENTS)?;
        let rows = sqlx::query("SELECT * FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?")
            .bind(to_i64(after_position)?)
            .bind(to_i64(limit as u64)?)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn find_outcomes(&self, command_ids: &[String]) -> Result<HashMap<String, StoredOutcome>, StoreError> {
        check_limit("command ids in one lookup", command_ids.len(), MAX_OUTCOME_LOOKUPS)?;
        let mut found = HashMap::new();
        for chunk in command_ids.chunks(LOOKUP_CHUNK) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql = format!("SELECT * FROM command_outcomes WHERE command_id IN ({placeholders})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                let outcome = outcome_from_row(&row)?;
                found.insert(outcome.command_id.clone(), outcome);
            }
        }
        Ok(found)
    }

    async fn stream_ids(&self, aggregate_type: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT aggregate_id FROM events WHERE aggregate_type = ? AND sequence = 1 ORDER BY aggregate_id",
        )
        .bind(aggregate_type)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(row.try_get::<String, _>(0)?)).collect()
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        crate::head_position_of(&self.pool).await
    }

    fn database(&self) -> crate::Database {
        crate::Database::Sqlite(self.pool.clone())
    }

    async fn outcome_totals(&self) -> Result<OutcomeTotals, StoreError> {
        crate::outcome_totals_of(&self.pool).await
    }
}

/// Everything an append writes, inside the caller's transaction: outcomes of known
/// command ids, the planned events chained onto the head, and the new outcomes.
async fn write_batch(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    commands: &[CommandRecord],
    atomicity: Atomicity,
) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
    let command_ids: Vec<&str> = commands.iter().map(|c| c.metadata.command_id.as_str()).collect();
    let existing = existing_command_ids(tx, &command_ids).await?;
    let plan = plan_append(commands, stream_heads(tx, commands).await?, &existing, atomicity)?;
    let metadata = stored_metadata(commands);
    let (last_position, last_hash) = chain_head(tx).await?;
    let rows = chain_plan(&plan.events, &metadata, last_position, &last_hash);
    // Many rows per statement: each statement is a round trip to SQLite's worker
    // thread, which costs more than the insert itself.
    for (planned, chained) in plan
        .events
        .chunks(EVENT_ROWS_PER_INSERT)
        .zip(rows.chunks(EVENT_ROWS_PER_INSERT))
    {
        let sql = format!(
            "INSERT INTO events (global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, command_id, correlation_id, causation_id, actor, recorded_at, prev_hash, hash) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; planned.len()].join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (row, chained) in planned.iter().zip(chained) {
            let meta = &metadata[row.command];
            query = query
                .bind(to_i64(chained.global_position)?)
                .bind(&row.stream.aggregate_type)
                .bind(&row.stream.aggregate_id)
                .bind(to_i64(row.sequence)?)
                .bind(&row.event.event_type)
                .bind(i64::from(row.event.event_version))
                .bind(serde_json::to_string(&row.event.payload).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                .bind(&meta.command_id)
                .bind(&meta.correlation_id)
                .bind(&meta.causation_id)
                .bind(&meta.actor)
                .bind(format_recorded_at(&meta.recorded_at))
                .bind(&chained.prev_hash)
                .bind(&chained.hash);
        }
        query.execute(&mut **tx).await?;
    }
    let positions: Vec<u64> = rows.iter().map(|r| r.global_position).collect();
    let outcomes = outcomes_of(commands, &metadata, plan, &positions);
    let written: Vec<&StoredOutcome> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    for chunk in written.chunks(OUTCOME_ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO command_outcomes (command_id, status, code, message, account_id, event_count, \
             first_position, last_position, recorded_at) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for outcome in chunk {
            query = query
                .bind(&outcome.command_id)
                .bind(outcome.status.as_str())
                .bind(&outcome.code)
                .bind(&outcome.message)
                .bind(&outcome.account_id)
                .bind(to_i64(outcome.event_count)?)
                .bind(outcome.first_position.map(to_i64).transpose()?)
                .bind(outcome.last_position.map(to_i64).transpose()?)
                .bind(format_recorded_at(&outcome.recorded_at));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(outcomes)
}

/// The position and hash of the last event, or (0, genesis) for an empty log.
async fn chain_head(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(u64, String), StoreError> {
    let row = sqlx::query("SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok((to_u64(row.try_get(0)?, "global_position")?, row.try_get(1)?)),
        None => Ok((0, GENESIS_HASH.to_owned())),
    }
}

/// Those of these command ids that already have an outcome.
async fn existing_command_ids(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    command_ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut existing = HashSet::new();
    for chunk in command_ids.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT command_id FROM command_outcomes WHERE command_id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            existing.insert(row.try_get(0)?);
        }
    }
    Ok(existing)
}

/// The sequence of the last event of every stream the commands append to (absent: 0).
async fn stream_heads(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    commands: &[CommandRecord],
) -> Result<HashMap<StreamId, u64>, StoreError> {
    let streams: BTreeSet<&StreamId> = commands
        .iter()
        .flat_map(|c| c.appends.iter().map(|a| &a.stream))
        .collect();
    let streams: Vec<&StreamId> = streams.into_iter().collect();
    let mut heads = HashMap::with_capacity(streams.len());
    for chunk in streams.chunks(LOOKUP_CHUNK / 2) {
        let sql = format!(
            "SELECT aggregate_type, aggregate_id, MAX(sequence) FROM events              WHERE (aggregate_type, aggregate_id) IN (VALUES {}) GROUP BY aggregate_type, aggregate_id",
            vec!["(?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for stream in chunk {
            query = query.bind(&stream.aggregate_type).bind(&stream.aggregate_id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let stream = StreamId::new(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?);
            heads.insert(stream, to_u64(row.try_get::<i64, _>(2)?, "sequence")?);
        }
    }
    Ok(heads)
}
