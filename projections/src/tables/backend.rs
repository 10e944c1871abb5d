//! What the read models need of a database, written once for SQLite and PostgreSQL.
//!
//! The code over the tables is generic over [`Backend`]; sqlx's `QueryBuilder` writes
//! each backend's placeholders, and the typed binds of [`Cell`] its column types. Only
//! how a transaction begins and how a row is locked differ ([`Dialect`]). A public
//! function is an [`Operation`], run by [`on_store`], the one place that looks at which
//! database the store has.

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use ledger_eventstore::{Database, EventStore};
use rust_decimal::Decimal;
use sqlx::query_builder::Separated;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Postgres, QueryBuilder, Row, Sqlite, Type};

use super::audit::RowsDigest;
use super::columns::{Cell, Money, RecordedAt, Table};
use crate::ProjectionError;

/// Most rows one multi-row statement carries: 17 columns × 500 rows stays well under
/// SQLite's 32,766 and PostgreSQL's 65,535 bind parameters.
pub(crate) const MAX_ROWS_PER_STATEMENT: usize = 500;

/// Where a bound value goes: the end of a query, or the next place of a VALUES tuple.
pub(crate) trait Binder<DB: sqlx::Database> {
    fn bind<'t, T: Encode<'t, DB> + Type<DB>>(&mut self, value: T);
}

impl<DB: sqlx::Database> Binder<DB> for QueryBuilder<DB> {
    fn bind<'t, T: Encode<'t, DB> + Type<DB>>(&mut self, value: T) {
        self.push_bind(value);
    }
}

impl<DB: sqlx::Database> Binder<DB> for Separated<'_, DB, &'static str> {
    fn bind<'t, T: Encode<'t, DB> + Type<DB>>(&mut self, value: T) {
        self.push_bind(value);
    }
}

/// The few statements whose text differs between the backends.
pub(crate) trait Dialect: sqlx::Database {
    /// Begins a transaction that writes: SQLite takes its one write lock at once, so
    /// two writers queue instead of failing on a lock upgrade.
    const BEGIN_WRITE: &'static str;
    /// Appended to a SELECT to lock its rows until the commit (SQLite's write lock is
    /// already the whole database's).
    const LOCK_ROWS: &'static str;
    /// Appended to a SELECT to keep its rows from changing until the commit, while others
    /// may read them (SQLite: a read transaction already sees one snapshot).
    const SHARE_ROWS: &'static str;
}

impl Dialect for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_ROWS: &'static str = "";
    const SHARE_ROWS: &'static str = "";
}

impl Dialect for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    const LOCK_ROWS: &'static str = " FOR UPDATE";
    const SHARE_ROWS: &'static str = " FOR SHARE";
}

/// A database the read models can live in. Implemented once, for every sqlx database
/// that has the column types the tables use; generic code calls these methods, so the
/// bounds are written here only.
pub(crate) trait Backend: Dialect {
    /// Binds one value as the next placeholder, typed as its column is.
    fn bind_cell(binder: &mut impl Binder<Self>, cell: Cell<'_>) -> Result<(), ProjectionError>;
    async fn execute(conn: &mut Self::Connection, query: &mut QueryBuilder<Self>) -> Result<(), ProjectionError>;
    async fn fetch_all(
        conn: &mut Self::Connection,
        query: &mut QueryBuilder<Self>,
    ) -> Result<Vec<Self::Row>, ProjectionError>;
    /// The digest of every row of a query whose columns are all text (NULL as an empty
    /// string), streamed so the table never sits in memory whole.
    async fn digest(conn: &mut Self::Connection, query: &mut QueryBuilder<Self>)
        -> Result<RowsDigest, ProjectionError>;
    fn int(row: &Self::Row, column: &str) -> Result<i64, ProjectionError>;
    fn text(row: &Self::Row, column: &str) -> Result<String, ProjectionError>;
    fn money(row: &Self::Row, column: &str) -> Result<Decimal, ProjectionError>;
    fn date(row: &Self::Row, column: &str) -> Result<NaiveDate, ProjectionError>;
    fn recorded_at(row: &Self::Row, column: &str) -> Result<DateTime<Utc>, ProjectionError>;
    /// A column that may be NULL, read as text.
    fn optional_text(row: &Self::Row, column: &str) -> Result<Option<String>, ProjectionError>;
    fn optional_money(row: &Self::Row, column: &str) -> Result<Option<Decimal>, ProjectionError>;
    fn optional_int(row: &Self::Row, column: &str) -> Result<Option<i64>, ProjectionError>;

    /// A BIGINT that holds a count or a position.
    fn count(row: &Self::Row, column: &str) -> Result<u64, ProjectionError> {
        to_u64(Self::int(row, column)?)
    }
}

impl<DB> Backend for DB
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB> + Decode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Money: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> RecordedAt: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn bind_cell(binder: &mut impl Binder<Self>, cell: Cell<'_>) -> Result<(), ProjectionError> {
        match cell {
            Cell::Count(value) => binder.bind(to_i64(value)?),
            Cell::Int(value) => binder.bind(value),
            Cell::Text(text) => binder.bind(text),
            Cell::OptionalText(text) => binder.bind(text),
            Cell::Money(money) => binder.bind(money),
            Cell::Date(date) => binder.bind(date),
            Cell::RecordedAt(at) => binder.bind(at),
        }
        Ok(())
    }

    async fn execute(conn: &mut Self::Connection, query: &mut QueryBuilder<Self>) -> Result<(), ProjectionError> {
        query.build().execute(conn).await.map_err(ProjectionError::database)?;
        Ok(())
    }

    async fn fetch_all(
        conn: &mut Self::Connection,
        query: &mut QueryBuilder<Self>,
    ) -> Result<Vec<Self::Row>, ProjectionError> {
        query.build().fetch_all(conn).await.map_err(ProjectionError::database)
    }

    async fn digest(
        conn: &mut Self::Connection,
        query: &mut QueryBuilder<Self>,
    ) -> Result<RowsDigest, ProjectionError> {
        let mut digest = RowsDigest::default();
        let mut rows = query.build().fetch(conn);
        while let Some(row) = rows.try_next().await.map_err(ProjectionError::database)? {
            let fields = (0..row.len())
                .map(|i| row.try_get::<Option<String>, _>(i).map(Option::unwrap_or_default))
                .collect::<Result<Vec<String>, _>>()
                .map_err(ProjectionError::database)?;
            digest.add(&fields);
        }
        Ok(digest)
    }

    fn int(row: &Self::Row, column: &str) -> Result<i64, ProjectionError> {
        row.try_get(column).map_err(ProjectionError::database)
    }

    fn text(row: &Self::Row, column: &str) -> Result<String, ProjectionError> {
        row.try_get(column).map_err(ProjectionError::database)
    }

    fn money(row: &Self::Row, column: &str) -> Result<Decimal, ProjectionError> {
        row.try_get::<Money, _>(column)
            .map(|money| money.0)
            .map_err(ProjectionError::database)
    }

    fn date(row: &Self::Row, column: &str) -> Result<NaiveDate, ProjectionError> {
        row.try_get(column).map_err(ProjectionError::database)
    }

    fn recorded_at(row: &Self::Row, column: &str) -> Result<DateTime<Utc>, ProjectionError> {
        row.try_get::<RecordedAt, _>(column)
            .map(|at| at.0)
            .map_err(ProjectionError::database)
    }

    fn optional_text(row: &Self::Row, column: &str) -> Result<Option<String>, ProjectionError> {
        row.try_get(column).map_err(ProjectionError::database)
    }

    fn optional_money(row: &Self::Row, column: &str) -> Result<Option<Decimal>, ProjectionError> {
        row.try_get::<Option<Money>, _>(column)
            .map(|money| money.map(|m| m.0))
            .map_err(ProjectionError::database)
    }

    fn optional_int(row: &Self::Row, column: &str) -> Result<Option<i64>, ProjectionError> {
        row.try_get(column).map_err(ProjectionError::database)
    }
}

/// Inserts `rows` into `table`, many rows per statement, with the table's upsert clause.
pub(crate) async fn insert_rows<DB: Backend, R>(
    conn: &mut DB::Connection,
    table: &Table<R>,
    rows: &[R],
) -> Result<(), ProjectionError> {
    let head = table.insert_head();
    let conflict = table.conflict_clause();
    for chunk in rows.chunks(MAX_ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<DB>::new(&head);
        let mut bound = Ok(());
        query.push_values(chunk, |mut values, row| {
            for column in table.columns {
                if let Err(error) = DB::bind_cell(&mut values, (column.value)(row)) {
                    bound = Err(error);
                }
            }
        });
        bound?;
        query.push(&conflict);
        DB::execute(conn, &mut query).await?;
    }
    Ok(())
}

/// Appends `(?, ?, …)`, one bind per value.
pub(crate) fn push_list<DB: Backend>(query: &mut QueryBuilder<DB>, values: &[Cell<'_>]) -> Result<(), ProjectionError> {
    query.push("(");
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            query.push(", ");
        }
        DB::bind_cell(query, *value)?;
    }
    query.push(")");
    Ok(())
}

/// Appends the blotter's common filter, ` WHERE 1 = 1` then ` AND account_id = ?` and
/// ` AND trade_date = ?` for those given; the caller adds its own conditions as ` AND …`.
pub(crate) fn push_blotter_filter<DB: Backend>(
    query: &mut QueryBuilder<DB>,
    account_id: Option<&str>,
    trade_date: Option<NaiveDate>,
) -> Result<(), ProjectionError> {
    query.push(" WHERE 1 = 1");
    if let Some(account_id) = account_id {
        query.push(" AND account_id = ");
        DB::bind_cell(query, Cell::Text(account_id))?;
    }
    if let Some(trade_date) = trade_date {
        query.push(" AND trade_date = ");
        DB::bind_cell(query, Cell::Date(trade_date))?;
    }
    Ok(())
}

/// An operation on the read model tables, written once for every backend.
pub(crate) trait Operation {
    type Output;
    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Self::Output, ProjectionError>;
}

/// Runs `operation` on the database of `store`: the one place that tells the backends apart.
pub(crate) async fn on_store<O: Operation>(store: &dyn EventStore, operation: O) -> Result<O::Output, ProjectionError> {
    match store.database() {
        Database::Sqlite(pool) => operation.run(&pool).await,
        Database::Postgres(pool) => operation.run(&pool).await,
    }
}

/// A connection of the pool, for reads outside a transaction.
pub(crate) async fn connection<DB: Backend>(
    pool: &Pool<DB>,
) -> Result<sqlx::pool::PoolConnection<DB>, ProjectionError> {
    pool.acquire().await.map_err(ProjectionError::database)
}

pub(crate) fn to_i64(value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| ProjectionError::Corrupt(format!("{value} does not fit a BIGINT")))
}

pub(crate) fn to_u64(value: i64) -> Result<u64, ProjectionError> {
    u64::try_from(value).map_err(|_| ProjectionError::Corrupt(format!("negative value {value}")))
}
