//! Embedded SQLite backend: one file, WAL journal, synchronous=FULL.
//!
//! SQLite has one writer at a time and every append runs in a `BEGIN IMMEDIATE`
//! transaction, so global positions are handed out in commit order and a reader
//! of "positions after P" can never miss an event that commits later. What is
//! here is SQL; the append algorithm around it is `append`'s.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use crate::append::{
    append_batch, hold_appends, AppendSql, EventRow, LookedUp, OutcomeRow, EVENT_INSERT_COLUMNS,
    OUTCOME_INSERT_COLUMNS, STREAM_KEY_PARAMETERS,
};
use crate::appended::{AppendWatch, PollWatch};
use crate::connect::OpenMode;
use crate::database::{open_sqlite_pool, Database};
use crate::records::{
    CommandRecord, OutcomeTotals, RawEvent, RecordedEvent, StoreError, StoredOutcome, StreamId, UnreadableEvent,
};
use crate::rows::{
    all_decoded, all_readable, decoded_stream, head_position_of, outcome_from_row, outcome_totals_of,
    raw_event_from_row, to_i64, to_u64, PayloadForm,
};
use crate::sqlite_reader::LogReader;
use crate::store::{
    check_limit, AppendLock, Atomicity, EventStore, MAX_APPEND_LOCK_WAIT_MS, MAX_OUTCOME_LOOKUPS, MAX_READ_EVENTS,
    MAX_REFUSAL_READS,
};

/// How long a writer waits for another connection's write lock before failing.
const BUSY_TIMEOUT_MS: u64 = MAX_APPEND_LOCK_WAIT_MS;
/// SQLite's page cache per connection, in KiB (SQLite's default is 2,000 KiB). A read-model
/// batch touches index pages all over tables of millions of rows; with the default cache
/// they were evicted and re-read within the same transaction (measured in
/// docs/performance.md). Memory is taken only as pages are used.
const PAGE_CACHE_KIB: u32 = 65_536;
/// SQLite's most bound parameters in one statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_BIND_PARAMETERS: usize = 32_766;
/// Command ids, and streams, per lookup.
const KEYS_PER_LOOKUP: usize = 500;
const EVENT_ROWS_PER_INSERT: usize = 500;
const OUTCOME_ROWS_PER_INSERT: usize = 500;

// A lookup binds as many command ids and as many streams.
const _: () = assert!(KEYS_PER_LOOKUP * (1 + STREAM_KEY_PARAMETERS) <= MAX_BIND_PARAMETERS);
const _: () = assert!(EVENT_ROWS_PER_INSERT * EVENT_INSERT_COLUMNS.len() <= MAX_BIND_PARAMETERS);
const _: () = assert!(OUTCOME_ROWS_PER_INSERT * OUTCOME_INSERT_COLUMNS.len() <= MAX_BIND_PARAMETERS);

/// Columns of `events` as read back: the payload and the hashes as the bytes stored,
/// whatever they hold (`CAST … AS BLOB` reads any value, UTF-8 or not).
const EVENT_COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, CAST(payload AS BLOB) AS payload, command_id, correlation_id, causation_id, actor, \
     recorded_at, CAST(prev_hash AS BLOB) AS prev_hash, CAST(hash AS BLOB) AS hash, business_date";

/// Suitability-style refusals: refused outcomes with a code, naming an account.
const REFUSALS_NAMING_ACCOUNT: &str =
    "FROM command_outcomes WHERE status = 'rejected' AND account_id IS NOT NULL AND code = ";

#[derive(Clone)]
pub struct SqliteEventStore {
    pool: SqlitePool,
    /// An in-memory database lives in the pool's one connection (so in one process).
    in_memory: bool,
    /// Reads the log in pages on connections of its own; `None` in memory.
    reader: Option<Arc<LogReader>>,
}

impl SqliteEventStore {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://PATH`, `sqlite::memory:` or a plain path).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, OpenMode::Create).await
    }

    /// Opens; with [`OpenMode::Existing`] refuses a missing file or one that holds no ledger.
    pub async fn open_with(url: &str, mode: OpenMode) -> Result<Self, StoreError> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(mode == OpenMode::Create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .foreign_keys(true)
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"));
        let in_memory = url.contains(":memory:");
        let reader = has_own_readers(&url).then(|| Arc::new(LogReader::new(options.get_filename())));
        let pool = open_sqlite_pool(options, in_memory, mode).await?;
        Ok(Self {
            pool,
            in_memory,
            reader,
        })
    }
}

/// Whether the log of the database `url` names can be read on connections of the
/// store's own ([`LogReader`]): a plain file. Not an in-memory database (sqlx's one
/// connection holds it), nor a file opened with its own VFS or as immutable, which the
/// two drivers would lock differently.
fn has_own_readers(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let special = query.split('&').any(|parameter| {
        parameter == "mode=memory" || parameter.starts_with("vfs=") || parameter.starts_with("immutable=")
    });
    !url.contains(":memory:") && !special
}

/// ` IN (?, ?, …)` over these keys, pushed onto the query.
fn push_in_list<'k>(query: &mut QueryBuilder<Sqlite>, keys: impl IntoIterator<Item = &'k str>) {
    query.push(" IN (");
    let mut list = query.separated(", ");
    for key in keys {
        list.push_bind(key);
    }
    list.push_unseparated(")");
}

/// `INSERT INTO {table} ({columns}) VALUES (?, …), …` for `rows` rows. Written out rather
/// than built with `QueryBuilder::push_values`, which formats every placeholder on its own:
/// that cost about 1 µs per event, 7% of a bulk append's CPU time.
fn insert_sql(table: &str, columns: &[&str], rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        vec![row.as_str(); rows].join(", ")
    )
}

#[async_trait]
impl AppendSql for SqliteEventStore {
    type Db = Sqlite;
    const KEYS_PER_LOOKUP: usize = KEYS_PER_LOOKUP;
    const EVENT_ROWS_PER_INSERT: usize = EVENT_ROWS_PER_INSERT;
    const OUTCOME_ROWS_PER_INSERT: usize = OUTCOME_ROWS_PER_INSERT;

    async fn begin_append(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        // IMMEDIATE takes the write lock up front, which is the append lock.
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn lock_appends(_tx: &mut Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        // Taken already: `BEGIN IMMEDIATE` holds SQLite's one write lock.
        Ok(())
    }

    async fn look_up(
        tx: &mut Transaction<'static, Sqlite>,
        command_ids: &[&str],
        streams: &[&StreamId],
    ) -> Result<LookedUp, StoreError> {
        // Rows tagged by what they answer: 'h' the chain's head (hash, position), 'c' a
        // command id with an outcome, 's' a stream and its last sequence.
        let mut query = QueryBuilder::new("");
        if !streams.is_empty() {
            query.push("WITH keys (aggregate_type, aggregate_id) AS (");
            query.push_values(streams, |mut key, stream| {
                key.push_bind(stream.aggregate_type.as_str())
                    .push_bind(stream.aggregate_id.as_str());
            });
            query.push(") ");
        }
        query.push(
            "SELECT 'h', hash, NULL, global_position FROM \
             (SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1)",
        );
        if !command_ids.is_empty() {
            query.push(" UNION ALL SELECT 'c', command_id, NULL, NULL FROM command_outcomes WHERE command_id");
            push_in_list(&mut query, command_ids.iter().copied());
        }
        if !streams.is_empty() {
            // One index search per stream (its last entry): a row-value `IN` over
            // `events` with `GROUP BY` scans the whole index instead, a cost that grows
            // with the log. A stream without events has no head (NULL), skipped below:
            // filtering it in SQL would make SQLite run the subquery twice per stream.
            query.push(
                " UNION ALL SELECT 's', k.aggregate_type, k.aggregate_id, (SELECT MAX(e.sequence) FROM events e \
                 WHERE e.aggregate_type = k.aggregate_type AND e.aggregate_id = k.aggregate_id) FROM keys k",
            );
        }
        let rows = query.build().fetch_all(&mut **tx).await?;
        let mut looked_up = LookedUp::default();
        for row in &rows {
            match row.try_get::<&str, _>(0)? {
                "h" => {
                    let position = to_u64(row.try_get(3)?, "global_position")?;
                    looked_up.chain_head = Some((position, row.try_get(1)?));
                }
                "c" => {
                    looked_up.existing.insert(row.try_get(1)?);
                }
                _ => {
                    if let Some(head) = row.try_get::<Option<i64>, _>(3)? {
                        let stream = StreamId::new(row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?);
                        looked_up.heads.insert(stream, to_u64(head, "sequence")?);
                    }
                }
            }
        }
        Ok(looked_up)
    }

    async fn insert_events(tx: &mut Transaction<'static, Sqlite>, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(insert_sql(
            "events",
            &EVENT_INSERT_COLUMNS,
            rows.len(),
        )));
        for row in rows {
            insert = insert
                .bind(row.global_position)
                .bind(row.stream.aggregate_type.as_str())
                .bind(row.stream.aggregate_id.as_str())
                .bind(row.sequence)
                .bind(row.event_type)
                .bind(i64::from(row.event_version))
                .bind(row.payload.as_str())
                .bind(row.metadata.command_id.as_str())
                .bind(row.metadata.correlation_id.as_str())
                .bind(row.metadata.causation_id.as_str())
                .bind(row.metadata.actor.as_str())
                .bind(row.recorded_at)
                .bind(row.prev_hash.as_str())
                .bind(row.hash.as_str())
                .bind(row.business_date.as_deref());
        }
        insert.execute(&mut **tx).await?;
        Ok(())
    }

    async fn insert_outcomes(tx: &mut Transaction<'static, Sqlite>, rows: &[OutcomeRow<'_>]) -> Result<(), StoreError> {
        let sql = insert_sql("command_outcomes", &OUTCOME_INSERT_COLUMNS, rows.len());
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in rows {
            insert = insert
                .bind(row.command_id)
                .bind(row.status)
                .bind(row.code)
                .bind(row.message)
                .bind(row.account_id)
                .bind(row.event_count)
                .bind(row.first_position)
                .bind(row.last_position)
                .bind(row.recorded_at.as_str())
                .bind(row.request_sha256);
        }
        insert.execute(&mut **tx).await?;
        Ok(())
    }

    /// SQLite cannot tell another process; its followers poll ([`PollWatch`]).
    async fn announce_append(_tx: &mut Transaction<'static, Sqlite>, _last_position: u64) -> Result<(), StoreError> {
        Ok(())
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
        append_batch(self, commands, atomicity).await
    }

    async fn lock_appends(&self) -> Result<Box<dyn AppendLock>, StoreError> {
        if self.in_memory {
            // Holding the one connection would leave none for the reads the lock is taken
            // for; that connection already serialises every append.
            return Ok(Box::new(UnheldAppend(self.clone())));
        }
        hold_appends(self).await
    }

    async fn load_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence"
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
        all_decoded(self.read_raw_after(after_position, limit).await?)
    }

    async fn read_raw_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
        check_limit("events in one read", limit, MAX_READ_EVENTS)?;
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?");
        if let Some(reader) = &self.reader {
            return reader.read_after(sql, after_position, limit).await;
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(after_position)?)
            .bind(to_i64(limit as u64)?)
            .fetch_all(&self.pool)
            .await?;
        // The bytes stored are the bytes hashed.
        rows.iter()
            .map(|row| raw_event_from_row(row, PayloadForm::AsStored))
            .collect()
    }

    async fn read_encoded_after(&self, after_position: u64, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        all_readable(self.read_raw_after(after_position, limit).await?)
    }

    async fn find_outcomes(&self, command_ids: &[String]) -> Result<HashMap<String, StoredOutcome>, StoreError> {
        check_limit("command ids in one lookup", command_ids.len(), MAX_OUTCOME_LOOKUPS)?;
        let mut found = HashMap::new();
        for chunk in command_ids.chunks(KEYS_PER_LOOKUP) {
            let mut query = QueryBuilder::new("SELECT * FROM command_outcomes WHERE command_id");
            push_in_list(&mut query, chunk.iter().map(String::as_str));
            for row in query.build().fetch_all(&self.pool).await? {
                let outcome = outcome_from_row(&row)?;
                found.insert(outcome.command_id.clone(), outcome);
            }
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
        let mut query = QueryBuilder::new(format!("SELECT * {REFUSALS_NAMING_ACCOUNT}"));
        query.push_bind(code);
        if let Some(after) = after_command_id {
            query.push(" AND command_id > ").push_bind(after);
        }
        query
            .push(" ORDER BY command_id LIMIT ")
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
            "SELECT aggregate_id FROM events WHERE aggregate_type = ? AND sequence = 1 ORDER BY aggregate_id",
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
        Database::Sqlite(self.pool.clone())
    }

    async fn watch_appends(&self) -> Result<Box<dyn AppendWatch>, StoreError> {
        Ok(Box::new(PollWatch))
    }

    async fn import(&self, events: &[RecordedEvent], outcomes: &[StoredOutcome]) -> Result<(), StoreError> {
        crate::import::import(self, events, outcomes).await
    }
}

/// The append lock of an in-memory database: its one connection takes one statement at a
/// time, so the append simply runs when asked.
struct UnheldAppend(SqliteEventStore);

#[async_trait]
impl AppendLock for UnheldAppend {
    async fn append(self: Box<Self>, commands: &[CommandRecord]) -> Result<Vec<StoredOutcome>, StoreError> {
        self.0.append(commands).await
    }

    async fn release(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::has_own_readers;

    #[test]
    fn only_a_plain_file_is_read_on_connections_of_the_stores_own() {
        assert!(has_own_readers("sqlite:///var/lib/ledger/ledger.db"));
        assert!(has_own_readers("sqlite://ledger.db?mode=rwc"));
        assert!(has_own_readers("ledger.db"));
        assert!(!has_own_readers("sqlite::memory:"));
        assert!(!has_own_readers("sqlite://ledger.db?mode=memory&cache=shared"));
        assert!(!has_own_readers("sqlite://ledger.db?vfs=unix-dotfile"));
        assert!(!has_own_readers("sqlite://ledger.db?mode=ro&immutable=1"));
    }
}
