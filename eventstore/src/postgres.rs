//! PostgreSQL backend.
//!
//! Appends take one transaction-scoped advisory lock: one appender at a time
//! across every process, so positions are assigned (last + 1) and committed in
//! order and each append chains onto the last hash. Readers additionally take
//! only events written by transactions older than the oldest one still in
//! flight (`pg_snapshot_xmin`), so even a writer that bypassed the lock could
//! not make a reader skip an event that commits late. What is here is SQL; the
//! append algorithm around it is `append`'s.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, QueryBuilder, Row, Transaction};

use crate::append::{
    append_batch, hold_appends, AppendSql, EventRow, LookedUp, OutcomeRow, EVENT_INSERT_COLUMNS, OUTCOME_INSERT_COLUMNS,
};
use crate::appended::{AppendWatch, ListenWatch, APPENDED_CHANNEL};
use crate::connect::OpenMode;
use crate::database::{open_postgres_pool, Database};
use crate::records::{
    CommandRecord, OutcomeTotals, RawEvent, RecordedEvent, StoreError, StoredOutcome, StreamId, UnreadableEvent,
};
use crate::rows::{
    all_decoded, all_readable, decoded_stream, head_position_of, outcome_from_row, outcome_totals_of,
    raw_event_from_row, to_i64, to_u64, PayloadForm,
};
use crate::store::{
    check_limit, AppendLock, Atomicity, EventStore, MAX_APPEND_COMMANDS, MAX_APPEND_LOCK_WAIT_MS, MAX_OUTCOME_LOOKUPS,
    MAX_READ_EVENTS, MAX_REFUSAL_READS,
};

/// Key of the advisory lock that serialises appends ("LEDGERAP" in ASCII).
pub const APPEND_LOCK_KEY: i64 = 0x4C45_4447_4552_4150;
/// PostgreSQL's most bound parameters in one statement.
const MAX_BIND_PARAMETERS: usize = 65_535;
/// Rows per INSERT ... SELECT FROM UNNEST statement.
const ROWS_PER_INSERT: usize = 5_000;

// A lookup binds one array per key column, an insert one array per column, whatever
// the number of rows: the parameters per statement are the columns.
const _: () = assert!(EVENT_INSERT_COLUMNS.len() <= MAX_BIND_PARAMETERS);
const _: () = assert!(OUTCOME_INSERT_COLUMNS.len() <= MAX_BIND_PARAMETERS);

/// Columns of `events` as read back: the payload and the hashes as bytes, `recorded_at`
/// as canonical text. The payload is the server's text of its JSONB value
/// (`payload::text` also reads a column someone altered to text), which
/// `raw_event_from_row` puts in canonical form again for `verify`.
const EVENT_COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, event_type, \
     CAST(event_version AS BIGINT) AS event_version, convert_to(payload::text, 'UTF8') AS payload, \
     command_id, correlation_id, causation_id, actor, \
     to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at, \
     convert_to(prev_hash, 'UTF8') AS prev_hash, convert_to(hash, 'UTF8') AS hash, \
     to_char(business_date, 'YYYY-MM-DD') AS business_date";

/// Columns of `command_outcomes` as read back, with `recorded_at` as canonical text.
const OUTCOME_COLUMNS: &str = "command_id, status, code, message, account_id, event_count, first_position, \
     last_position, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at, \
     request_sha256";

/// Suitability-style refusals: refused outcomes with a code, naming an account.
const REFUSALS_NAMING_ACCOUNT: &str =
    "FROM command_outcomes WHERE status = 'rejected' AND account_id IS NOT NULL AND code = ";

pub struct PostgresEventStore {
    pool: PgPool,
}

impl PostgresEventStore {
    /// Connects and migrates. The schema is the connection's `search_path`
    /// (`?options=-c%20search_path%3Dname` in the URL selects another one).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, OpenMode::Create).await
    }

    /// Connects; with [`OpenMode::Existing`] refuses a schema that holds no ledger, else migrates.
    pub async fn open_with(url: &str, mode: OpenMode) -> Result<Self, StoreError> {
        Ok(Self {
            pool: open_postgres_pool(url, mode).await?,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl PostgresEventStore {
    /// Up to `limit` events after `after_position`, below the oldest transaction in flight.
    async fn rows_after(
        &self,
        after_position: u64,
        limit: usize,
        form: PayloadForm,
    ) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
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
        rows.iter().map(|row| raw_event_from_row(row, form)).collect()
    }
}

/// One column of the rows, for binding as an array.
fn column<'r, R, T>(rows: &'r [R], field: impl Fn(&'r R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

#[async_trait]
impl AppendSql for PostgresEventStore {
    type Db = Postgres;
    /// One statement: the keys go in one array.
    const KEYS_PER_LOOKUP: usize = MAX_APPEND_COMMANDS;
    const EVENT_ROWS_PER_INSERT: usize = ROWS_PER_INSERT;
    const OUTCOME_ROWS_PER_INSERT: usize = ROWS_PER_INSERT;

    async fn begin_append(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn lock_appends(tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
        // One round trip; `lock_timeout` bounds the wait and ends with the transaction.
        let lock = format!(
            "SET LOCAL lock_timeout = {MAX_APPEND_LOCK_WAIT_MS}; SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(lock)).execute(&mut **tx).await?;
        Ok(())
    }

    async fn look_up(
        tx: &mut Transaction<'static, Postgres>,
        command_ids: &[&str],
        streams: &[&StreamId],
    ) -> Result<LookedUp, StoreError> {
        // Rows tagged by what they answer: 'h' the chain's head (hash, position), 'c' a
        // command id with an outcome, 's' a stream and its last sequence. Per stream its
        // last index entry: a join grouped by stream would read every event of each
        // stream, a cost that grows with the account's history.
        let rows = sqlx::query(
            "SELECT 'h', hash, NULL::text, global_position FROM \
             (SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1) AS last \
             UNION ALL SELECT 'c', command_id, NULL, NULL FROM command_outcomes WHERE command_id = ANY($1) \
             UNION ALL SELECT 's', s.t, s.i, h.head FROM UNNEST($2::text[], $3::text[]) AS s(t, i) \
             CROSS JOIN LATERAL (SELECT MAX(e.sequence) AS head FROM events e \
             WHERE e.aggregate_type = s.t AND e.aggregate_id = s.i) AS h WHERE h.head IS NOT NULL",
        )
        .bind(command_ids)
        .bind(column(streams, |s| s.aggregate_type.as_str()))
        .bind(column(streams, |s| s.aggregate_id.as_str()))
        .fetch_all(&mut **tx)
        .await?;
        let mut looked_up = LookedUp::default();
        for row in &rows {
            let number = |what| to_u64(row.try_get::<i64, _>(3)?, what);
            match row.try_get::<&str, _>(0)? {
                "h" => looked_up.chain_head = Some((number("global_position")?, row.try_get(1)?)),
                "c" => {
                    looked_up.existing.insert(row.try_get(1)?);
                }
                _ => {
                    let stream = StreamId::new(row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?);
                    looked_up.heads.insert(stream, number("sequence")?);
                }
            }
        }
        Ok(looked_up)
    }

    async fn insert_events(tx: &mut Transaction<'static, Postgres>, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
        let versions = rows
            .iter()
            .map(|row| {
                i32::try_from(row.event_version).map_err(|_| StoreError::LimitExceeded {
                    what: "event_version",
                    limit: i32::MAX as usize,
                })
            })
            .collect::<Result<Vec<i32>, _>>()?;
        sqlx::query(
            "INSERT INTO events (global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, command_id, correlation_id, causation_id, actor, recorded_at, prev_hash, hash, business_date) \
             SELECT p, t, i, s, e, v, pl::jsonb, c, co, ca, a, r::timestamptz, ph, h, b::date FROM UNNEST(\
             $1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::text[], \
             $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[]) \
             AS x(p, t, i, s, e, v, pl, c, co, ca, a, r, ph, h, b)",
        )
        .bind(column(rows, |r| r.global_position))
        .bind(column(rows, |r| r.stream.aggregate_type.as_str()))
        .bind(column(rows, |r| r.stream.aggregate_id.as_str()))
        .bind(column(rows, |r| r.sequence))
        .bind(column(rows, |r| r.event_type))
        .bind(versions)
        .bind(column(rows, |r| r.payload.as_str()))
        .bind(column(rows, |r| r.metadata.command_id.as_str()))
        .bind(column(rows, |r| r.metadata.correlation_id.as_str()))
        .bind(column(rows, |r| r.metadata.causation_id.as_str()))
        .bind(column(rows, |r| r.metadata.actor.as_str()))
        .bind(column(rows, |r| r.recorded_at))
        .bind(column(rows, |r| r.prev_hash.as_str()))
        .bind(column(rows, |r| r.hash.as_str()))
        .bind(column(rows, |r| r.business_date.as_deref()))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert_outcomes(
        tx: &mut Transaction<'static, Postgres>,
        rows: &[OutcomeRow<'_>],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO command_outcomes (command_id, status, code, message, account_id, event_count, \
             first_position, last_position, recorded_at, request_sha256) \
             SELECT c, s, co, m, ac, n, f, l, r::timestamptz, q FROM UNNEST(\
             $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], \
             $9::text[], $10::text[]) AS x(c, s, co, m, ac, n, f, l, r, q)",
        )
        .bind(column(rows, |r| r.command_id))
        .bind(column(rows, |r| r.status))
        .bind(column(rows, |r| r.code))
        .bind(column(rows, |r| r.message))
        .bind(column(rows, |r| r.account_id))
        .bind(column(rows, |r| r.event_count))
        .bind(column(rows, |r| r.first_position))
        .bind(column(rows, |r| r.last_position))
        .bind(column(rows, |r| r.recorded_at.as_str()))
        .bind(column(rows, |r| r.request_sha256))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn announce_append(tx: &mut Transaction<'static, Postgres>, last_position: u64) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(APPENDED_CHANNEL)
            .bind(last_position.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(())
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
        append_batch(self, commands, atomicity).await
    }

    async fn lock_appends(&self) -> Result<Box<dyn AppendLock>, StoreError> {
        hold_appends(self).await
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
        decoded_stream(
            stream,
            rows.iter().map(|row| raw_event_from_row(row, PayloadForm::AsStored)),
        )
    }

    async fn read_after(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        // Decoded straight from the server's text: no need to spell it canonically first.
        all_decoded(self.rows_after(after_position, limit, PayloadForm::AsStored).await?)
    }

    async fn read_raw_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
        self.rows_after(after_position, limit, PayloadForm::Respelled).await
    }

    async fn read_encoded_after(&self, after_position: u64, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        // The server's text of the JSONB, decoded as it is: no canonical spelling needed.
        all_readable(self.rows_after(after_position, limit, PayloadForm::AsStored).await?)
    }

    async fn find_outcomes(&self, command_ids: &[String]) -> Result<HashMap<String, StoredOutcome>, StoreError> {
        check_limit("command ids in one lookup", command_ids.len(), MAX_OUTCOME_LOOKUPS)?;
        let sql = format!("SELECT {OUTCOME_COLUMNS} FROM command_outcomes WHERE command_id = ANY($1)");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
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

    async fn refusals_naming_account(
        &self,
        code: &str,
        after_command_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredOutcome>, StoreError> {
        check_limit("refusals in one read", limit, MAX_REFUSAL_READS)?;
        let mut query = QueryBuilder::new(format!("SELECT {OUTCOME_COLUMNS} {REFUSALS_NAMING_ACCOUNT}"));
        query.push_bind(code);
        // Byte order, as SQLite's: a cursor means the same on both backends.
        if let Some(after) = after_command_id {
            query.push(" AND command_id COLLATE \"C\" > ").push_bind(after);
        }
        query
            .push(" ORDER BY command_id COLLATE \"C\" LIMIT ")
            .push_bind(to_i64(limit as u64)?);
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(outcome_from_row).collect()
    }

    async fn count_refusals_naming_account(&self, code: &str) -> Result<u64, StoreError> {
        let mut query = QueryBuilder::new(format!("SELECT COUNT(*) {REFUSALS_NAMING_ACCOUNT}"));
        query.push_bind(code);
        let row = query.build().fetch_one(&self.pool).await?;
        to_u64(row.try_get(0)?, "count")
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
        head_position_of(&self.pool).await
    }

    async fn outcome_totals(&self) -> Result<OutcomeTotals, StoreError> {
        outcome_totals_of(&self.pool).await
    }

    fn database(&self) -> Database {
        Database::Postgres(self.pool.clone())
    }

    async fn watch_appends(&self) -> Result<Box<dyn AppendWatch>, StoreError> {
        Ok(Box::new(ListenWatch::start(&self.pool).await?))
    }

    async fn import(&self, events: &[RecordedEvent], outcomes: &[StoredOutcome]) -> Result<(), StoreError> {
        crate::import::import(self, events, outcomes).await
    }
}
