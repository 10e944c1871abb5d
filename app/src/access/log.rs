//! The access log: one row per request, who asked what and how it was answered, in the
//! table `access_log` beside the ledger (migration 0009 on both backends).
//!
//! The database keeps it append-only: triggers refuse every UPDATE and DELETE (and, on
//! PostgreSQL, TRUNCATE), so no role of the ledger, operations included, can edit it.
//! Rows are written in batches, many per statement ([`MAX_ROWS_PER_INSERT`]): the server
//! buffers entries and writes them together. Read back in pages of at most
//! [`MAX_ACCESS_LOG_PAGE`] rows, in `id` order.

use chrono::{DateTime, Utc};
use ledger_eventstore::{commit_or_roll_back, Database, EventStore, StoreError};
use serde::Serialize;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row, Type};

use super::roles::Role;
use crate::AppError;

/// Most rows one INSERT carries: 8 columns × 500 rows stays far under both backends' bind limits.
pub const MAX_ROWS_PER_INSERT: usize = 500;
/// Most rows one page of [`read_access_log`] returns.
pub const MAX_ACCESS_LOG_PAGE: usize = 1000;
/// Longest text kept in a column (principal, action, account, code), in characters: a
/// longer one is cut there, so an odd request is still logged rather than refused.
pub const MAX_LOGGED_TEXT_CHARS: usize = 256;

const _: () = assert!(MAX_ROWS_PER_INSERT * 8 < 32_766, "SQLite's bind parameter limit");

/// Whom a request came from: the name and role of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// One request, as the server records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessEntry {
    /// When the request arrived.
    pub at: DateTime<Utc>,
    /// The token's name and role; `None` when the request had no valid token.
    pub principal: Option<Caller>,
    /// What was asked: `POST /v1/commands place_order`, `GET /v1/balances`, …
    pub action: String,
    /// The account the request was about, when it names one.
    pub account: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The answer's code (`accepted`, `lot_size`, `forbidden`, `unauthenticated`, …).
    pub code: String,
    /// From arrival to answer, in microseconds.
    pub latency_us: u64,
}

/// A row of the log: an entry with its id (increasing in the order rows were written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRecord {
    pub id: u64,
    #[serde(flatten)]
    pub entry: AccessEntry,
}

/// Writes to the access log of the store's database.
#[derive(Debug, Clone)]
pub struct AccessLog {
    database: Database,
}

impl AccessLog {
    /// The access log beside `store`'s ledger (the table is made by the store's migrations).
    pub fn new(store: &dyn EventStore) -> AccessLog {
        AccessLog {
            database: store.database(),
        }
    }

    /// Appends `entries` in one transaction, at most [`MAX_ROWS_PER_INSERT`] rows per statement.
    pub async fn record_batch(&self, entries: &[AccessEntry]) -> Result<(), AppError> {
        if entries.is_empty() {
            return Ok(());
        }
        match &self.database {
            Database::Sqlite(pool) => insert(pool, entries, "BEGIN IMMEDIATE").await,
            Database::Postgres(pool) => insert(pool, entries, "BEGIN").await,
        }
    }
}

/// The rows after id `after_id` (0: from the first), at most `limit` of them, in id order.
/// A `limit` of 0 or over [`MAX_ACCESS_LOG_PAGE`] is refused.
pub async fn read_access_log(
    store: &dyn EventStore,
    after_id: u64,
    limit: usize,
) -> Result<Vec<AccessRecord>, AppError> {
    if limit == 0 || limit > MAX_ACCESS_LOG_PAGE {
        return Err(AppError::InvalidInput(format!(
            "a page of the access log holds 1 to {MAX_ACCESS_LOG_PAGE} rows, not {limit}"
        )));
    }
    let after = i64::try_from(after_id).unwrap_or(i64::MAX);
    match store.database() {
        Database::Sqlite(pool) => select(&pool, after, limit).await,
        Database::Postgres(pool) => select(&pool, after, limit).await,
    }
}

fn database_error(error: sqlx::Error) -> AppError {
    AppError::Store(StoreError::from(error))
}

/// Text as stored: at most [`MAX_LOGGED_TEXT_CHARS`] characters.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_LOGGED_TEXT_CHARS).collect()
}

async fn insert<DB>(pool: &Pool<DB>, entries: &[AccessEntry], begin: &'static str) -> Result<(), AppError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let mut tx = pool.begin_with(begin).await.map_err(database_error)?;
    let mut written = Ok(());
    for chunk in entries.chunks(MAX_ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<DB>::new(
            "INSERT INTO access_log (recorded_at, principal, role, action, account, status, code, latency_us) ",
        );
        query.push_values(chunk, |mut row, entry| {
            row.push_bind(entry.at)
                .push_bind(entry.principal.as_ref().map(|caller| bounded(&caller.name)))
                .push_bind(entry.principal.as_ref().map(|caller| caller.role.to_string()))
                .push_bind(bounded(&entry.action))
                .push_bind(entry.account.as_deref().map(bounded))
                .push_bind(i64::from(entry.status))
                .push_bind(bounded(&entry.code))
                .push_bind(i64::try_from(entry.latency_us).unwrap_or(i64::MAX));
        });
        if let Err(error) = query.build().execute(&mut *tx).await {
            written = Err(database_error(error));
            break;
        }
    }
    commit_or_roll_back(tx, written, database_error).await
}

async fn select<DB>(pool: &Pool<DB>, after: i64, limit: usize) -> Result<Vec<AccessRecord>, AppError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: ColumnIndex<DB::Row>,
{
    let mut query = QueryBuilder::<DB>::new(
        "SELECT id, recorded_at, principal, role, action, account, status, code, latency_us \
         FROM access_log WHERE id > ",
    );
    query.push_bind(after).push(" ORDER BY id LIMIT ");
    query.push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = query.build().fetch_all(pool).await.map_err(database_error)?;
    rows.iter().map(record::<DB>).collect()
}

fn record<DB>(row: &DB::Row) -> Result<AccessRecord, AppError>
where
    DB: sqlx::Database,
    for<'q> i64: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: ColumnIndex<DB::Row>,
{
    let corrupt = |what: &str| AppError::CorruptReadModel(format!("access_log: {what}"));
    let int = |column: &str| row.try_get::<i64, _>(column).map_err(database_error);
    let principal = match (
        row.try_get::<Option<String>, _>("principal").map_err(database_error)?,
        row.try_get::<Option<String>, _>("role").map_err(database_error)?,
    ) {
        (Some(name), Some(role)) => Some(Caller {
            name,
            role: role.parse().map_err(|_| corrupt("unknown role"))?,
        }),
        (None, None) => None,
        _ => return Err(corrupt("a principal without a role")),
    };
    Ok(AccessRecord {
        id: u64::try_from(int("id")?).map_err(|_| corrupt("negative id"))?,
        entry: AccessEntry {
            at: row.try_get("recorded_at").map_err(database_error)?,
            principal,
            action: row.try_get("action").map_err(database_error)?,
            account: row.try_get("account").map_err(database_error)?,
            status: u16::try_from(int("status")?).map_err(|_| corrupt("status out of range"))?,
            code: row.try_get("code").map_err(database_error)?,
            latency_us: u64::try_from(int("latency_us")?).map_err(|_| corrupt("negative latency"))?,
        },
    })
}
