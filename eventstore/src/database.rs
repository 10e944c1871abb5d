//! The ledger's database, whichever backend it is: connection pools, the schema's
//! migrations (`migrations/sqlite`, `migrations/postgres`), and the one way every
//! transaction ends, [`commit_or_roll_back`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::connect::redact_url;
use crate::records::StoreError;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Connections of a SQLite pool: one writer at a time, the rest for readers.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const POSTGRES_MAX_CONNECTIONS: u32 = 8;
/// How long opening waits for PostgreSQL before telling the user it is unreachable.
const POSTGRES_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// A connection pool to the ledger's database, whichever backend it is.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A pool on the SQLite database `options` name, migrated.
pub(crate) async fn open_sqlite_pool(options: SqliteConnectOptions, in_memory: bool) -> Result<SqlitePool, StoreError> {
    // An in-memory database lives in one connection; sharing it needs a pool of one.
    let max_connections = if in_memory { 1 } else { SQLITE_MAX_CONNECTIONS };
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await?;
    SQLITE_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A pool on the PostgreSQL database at `url`, migrated. The schema is the connection's
/// `search_path` (`?options=-c%20search_path%3Dname` in the URL selects another one).
pub(crate) async fn open_postgres_pool(url: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_millis(POSTGRES_CONNECT_TIMEOUT_MS))
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Unreachable {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
    POSTGRES_MIGRATOR.run(&pool).await?;
    Ok(pool)
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
