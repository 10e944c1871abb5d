//! PostgreSQL backend.
//!
//! Appends take one transaction-scoped advisory lock: one appender at a time
//! across every process, so positions are assigned (last + 1) and committed in
//! order and each append chains onto the last hash. Readers additionally take
//! only events written by transactions older than the oldest one still in
//! flight (`pg_snapshot_xmin`), so even a writer that bypassed the lock could
//! not make a reader skip an event that commits late.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::chain::{format_recorded_at, GENESIS_HASH};
use crate::{
    chain_plan, check_limit, event_from_row, outcome_from_row, outcomes_of, plan_append, stored_metadata, to_i64,
    to_u64, Atomicity, CommandRecord, EventStore, RecordedEvent, StoreError, StoredOutcome, StreamId,
    MAX_APPEND_COMMANDS, MAX_OUTCOME_LOOKUPS, MAX_READ_EVENTS,
};
use crate::{commit_or_roll_back, OutcomeTotals};

/// Key of the advisory lock that serialises appends ("LEDGERAP" in ASCII).
pub const APPEND_LOCK_KEY: i64 = 0x4C45_4447_4552_4150;
const MAX_CONNECTIONS: u32 = 8;
const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Rows per INSERT ... SELECT FROM UNNEST statement.
const ROWS_PER_INSERT: usize = 5_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Columns of `events` as read back, with `recorded_at` as canonical text.
const EVENT_COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, event_type, \
     CAST(event_version AS BIGINT) AS event_version, \
     payload::text AS payload, command_id, correlation_id, causation_id, actor, \
     to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at, prev_hash, hash";

pub struct PostgresEventStore {
    pool: PgPool,
}

impl PostgresEventStore {
    /// Connects and migrates. The schema is the connection's `search_path`
    /// (`?options=-c%20search_path%3Dname` in the URL selects another one).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unreachable {
                url: redact(url),
                reason: e.to_string(),
            })?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[async_trait]
impl EventStore for PostgresEventStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn append_batch(
        &self,
        commands: &[CommandRecord],
        atomicity: Atomicity,
    ) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
        check_limit("commands in one append", commands.len(), MAX_APPEND_COMMANDS)?;
        let mut tx = self.pool.begin().await?;
        let written = write_batch(&mut tx, commands, atomicity).await;
        commit_or_roll_back(tx, written, StoreError::from).await
    }

    async fn load_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
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
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE global_position > $1 \
             AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY global_position LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(after_position)?)
            .bind(to_i64(limit as u64)?)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn find_outcomes(&self, command_ids: &[String]) -> Result<HashMap<String, StoredOutcome>, StoreError> {
        check_limit("command ids in one lookup", command_ids.len(), MAX_OUTCOME_LOOKUPS)?;
        let rows = sqlx::query(
            "SELECT command_id, status, code, message, account_id, event_count, first_position, last_position, \
             to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at \
             FROM command_outcomes WHERE command_id = ANY($1)",
        )
        .bind(command_ids)
        .fetch_all(&self.pool)
        .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let outcome = outcome_from_row(row)?;
            found.insert(outcome.command_id.clone(), outcome);
        }
        Ok(found)
    }

    async fn stream_ids(&self, aggregate_type: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND sequence = 1 ORDER BY aggregate_id COLLATE \"C\"",
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
        crate::Database::Postgres(self.pool.clone())
    }

    async fn outcome_totals(&self) -> Result<OutcomeTotals, StoreError> {
        crate::outcome_totals_of(&self.pool).await
    }
}

/// Everything an append writes, inside the caller's transaction: outcomes of known
/// command ids, the planned events chained onto the head, and the new outcomes.
async fn write_batch(
    tx: &mut Transaction<'_, Postgres>,
    commands: &[CommandRecord],
    atomicity: Atomicity,
) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK_KEY)
        .execute(&mut **tx)
        .await?;
    let command_ids: Vec<String> = commands.iter().map(|c| c.metadata.command_id.clone()).collect();
    let existing: HashSet<String> = sqlx::query("SELECT command_id FROM command_outcomes WHERE command_id = ANY($1)")
        .bind(&command_ids)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let plan = plan_append(commands, stream_heads(tx, commands).await?, &existing, atomicity)?;
    let metadata = stored_metadata(commands);
    let (last_position, last_hash) = chain_head(tx).await?;
    let rows = chain_plan(&plan.events, &metadata, last_position, &last_hash);
    for (planned, chained) in plan.events.chunks(ROWS_PER_INSERT).zip(rows.chunks(ROWS_PER_INSERT)) {
        let mut columns = EventColumns::default();
        for (row, chained) in planned.iter().zip(chained) {
            let meta = &metadata[row.command];
            columns.global_position.push(to_i64(chained.global_position)?);
            columns.aggregate_type.push(row.stream.aggregate_type.clone());
            columns.aggregate_id.push(row.stream.aggregate_id.clone());
            columns.sequence.push(to_i64(row.sequence)?);
            columns.event_type.push(row.event.event_type.clone());
            columns
                .event_version
                .push(
                    i32::try_from(row.event.event_version).map_err(|_| StoreError::LimitExceeded {
                        what: "event_version",
                        limit: i32::MAX as usize,
                    })?,
                );
            columns.payload.push(row.event.payload.to_string());
            columns.command_id.push(meta.command_id.clone());
            columns.correlation_id.push(meta.correlation_id.clone());
            columns.causation_id.push(meta.causation_id.clone());
            columns.actor.push(meta.actor.clone());
            columns.recorded_at.push(format_recorded_at(&meta.recorded_at));
            columns.prev_hash.push(chained.prev_hash.clone());
            columns.hash.push(chained.hash.clone());
        }
        sqlx::query(
            "INSERT INTO events (global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, command_id, correlation_id, causation_id, actor, recorded_at, prev_hash, hash) \
             SELECT p, t, i, s, e, v, pl::jsonb, c, co, ca, a, r::timestamptz, ph, h FROM UNNEST(\
             $1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::text[], \
             $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[]) \
             AS x(p, t, i, s, e, v, pl, c, co, ca, a, r, ph, h)",
        )
        .bind(columns.global_position)
        .bind(columns.aggregate_type)
        .bind(columns.aggregate_id)
        .bind(columns.sequence)
        .bind(columns.event_type)
        .bind(columns.event_version)
        .bind(columns.payload)
        .bind(columns.command_id)
        .bind(columns.correlation_id)
        .bind(columns.causation_id)
        .bind(columns.actor)
        .bind(columns.recorded_at)
        .bind(columns.prev_hash)
        .bind(columns.hash)
        .execute(&mut **tx)
        .await?;
    }
    let positions: Vec<u64> = rows.iter().map(|r| r.global_position).collect();
    let outcomes = outcomes_of(commands, &metadata, plan, &positions);
    let written: Vec<&StoredOutcome> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    for chunk in written.chunks(ROWS_PER_INSERT) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut statuses = Vec::with_capacity(chunk.len());
        let mut codes: Vec<Option<String>> = Vec::with_capacity(chunk.len());
        let mut messages: Vec<Option<String>> = Vec::with_capacity(chunk.len());
        let mut accounts: Vec<Option<String>> = Vec::with_capacity(chunk.len());
        let mut counts = Vec::with_capacity(chunk.len());
        let mut firsts: Vec<Option<i64>> = Vec::with_capacity(chunk.len());
        let mut lasts: Vec<Option<i64>> = Vec::with_capacity(chunk.len());
        let mut times = Vec::with_capacity(chunk.len());
        for outcome in chunk {
            ids.push(outcome.command_id.clone());
            statuses.push(outcome.status.as_str().to_owned());
            codes.push(outcome.code.clone());
            messages.push(outcome.message.clone());
            accounts.push(outcome.account_id.clone());
            counts.push(to_i64(outcome.event_count)?);
            firsts.push(outcome.first_position.map(to_i64).transpose()?);
            lasts.push(outcome.last_position.map(to_i64).transpose()?);
            times.push(format_recorded_at(&outcome.recorded_at));
        }
        sqlx::query(
            "INSERT INTO command_outcomes (command_id, status, code, message, account_id, event_count, \
             first_position, last_position, recorded_at) SELECT c, s, co, m, ac, n, f, l, r::timestamptz FROM UNNEST(\
             $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], \
             $9::text[]) AS x(c, s, co, m, ac, n, f, l, r)",
        )
        .bind(ids)
        .bind(statuses)
        .bind(codes)
        .bind(messages)
        .bind(accounts)
        .bind(counts)
        .bind(firsts)
        .bind(lasts)
        .bind(times)
        .execute(&mut **tx)
        .await?;
    }
    Ok(outcomes)
}

#[derive(Default)]
struct EventColumns {
    global_position: Vec<i64>,
    aggregate_type: Vec<String>,
    aggregate_id: Vec<String>,
    sequence: Vec<i64>,
    event_type: Vec<String>,
    event_version: Vec<i32>,
    payload: Vec<String>,
    command_id: Vec<String>,
    correlation_id: Vec<String>,
    causation_id: Vec<String>,
    actor: Vec<String>,
    recorded_at: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

async fn stream_heads(
    tx: &mut Transaction<'_, Postgres>,
    commands: &[CommandRecord],
) -> Result<HashMap<StreamId, u64>, StoreError> {
    let streams: BTreeSet<&StreamId> = commands
        .iter()
        .flat_map(|c| c.appends.iter().map(|a| &a.stream))
        .collect();
    let types: Vec<String> = streams.iter().map(|s| s.aggregate_type.clone()).collect();
    let ids: Vec<String> = streams.iter().map(|s| s.aggregate_id.clone()).collect();
    let rows = sqlx::query(
        "SELECT e.aggregate_type, e.aggregate_id, MAX(e.sequence) FROM events e \
         JOIN UNNEST($1::text[], $2::text[]) AS s(t, i) ON e.aggregate_type = s.t AND e.aggregate_id = s.i \
         GROUP BY e.aggregate_type, e.aggregate_id",
    )
    .bind(types)
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut heads = HashMap::with_capacity(rows.len());
    for row in rows {
        let stream = StreamId::new(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?);
        heads.insert(stream, to_u64(row.try_get::<i64, _>(2)?, "sequence")?);
    }
    Ok(heads)
}

async fn chain_head(tx: &mut Transaction<'_, Postgres>) -> Result<(u64, String), StoreError> {
    let row = sqlx::query("SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok((to_u64(row.try_get(0)?, "global_position")?, row.try_get(1)?)),
        None => Ok((0, GENESIS_HASH.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
