//! The ledger's database, whichever backend it is: connection pools, the schema's
//! migrations (`migrations/sqlite`, `migrations/postgres`), and the one way every
//! transaction ends, [`commit_or_roll_back`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

use crate::connect::OpenMode;
use crate::records::{ConnectFailure, StoreError};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Connections of a SQLite pool: one writer at a time, the rest for readers.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const POSTGRES_MAX_CONNECTIONS: u32 = 8;
/// How long opening waits for PostgreSQL to answer before saying it does not.
const POSTGRES_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Whether the ledger's table is there: the first migration creates it, and nothing else does.
const SQLITE_HAS_LEDGER: &str = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'";
/// The same in the connection's `search_path`, where the migrations would put it.
const POSTGRES_HAS_LEDGER: &str = "SELECT COUNT(*) FROM (SELECT to_regclass('events') AS t) found WHERE t IS NOT NULL";

/// A pool to the ledger's database, whichever backend it is.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A pool on the SQLite database `options` name, migrated. With [`OpenMode::Existing`]
/// a database without the ledger's tables is refused before anything is written to it.
pub(crate) async fn open_sqlite_pool(
    options: SqliteConnectOptions,
    in_memory: bool,
    mode: OpenMode,
) -> Result<SqlitePool, StoreError> {
    // An in-memory database lives in one connection; sharing it needs a pool of one.
    let max_connections = if in_memory { 1 } else { SQLITE_MAX_CONNECTIONS };
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await?;
    if mode == OpenMode::Existing {
        let tables: i64 = sqlx::query_scalar(SQLITE_HAS_LEDGER).fetch_one(&pool).await?;
        if tables == 0 {
            pool.close().await;
            return Err(StoreError::NoLedger { place: String::new() });
        }
    }
    SQLITE_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A pool on the PostgreSQL database at `url`, migrated. The schema is the connection's
/// `search_path` (`?options=-c%20search_path%3Dname` in the URL selects another one).
pub(crate) async fn open_postgres_pool(url: &str, mode: OpenMode) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    // One connection first, without the pool's retries: a refused connection or a wrong
    // name is then said at once, instead of "pool timed out" after the acquire timeout.
    let timeout = Duration::from_millis(POSTGRES_CONNECT_TIMEOUT_MS);
    let mut probe = match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => return Err(connect_error(&options, error)),
        Err(_) => return Err(connect_error(&options, sqlx::Error::PoolTimedOut)),
    };
    if mode == OpenMode::Existing {
        let tables: i64 = sqlx::query_scalar(POSTGRES_HAS_LEDGER).fetch_one(&mut probe).await?;
        if tables == 0 {
            let _ = probe.close().await;
            return Err(StoreError::NoLedger {
                place: format!(" in database {:?}'s search_path", options.get_database().unwrap_or("")),
            });
        }
    }
    let _ = probe.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(timeout)
        .connect_with(options.clone())
        .await
        .map_err(|error| connect_error(&options, error))?;
    POSTGRES_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Connecting to the server failed: say what failed, where, and what to do, never showing a password.
fn connect_error(options: &PgConnectOptions, error: sqlx::Error) -> StoreError {
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("");
    let user = options.get_username();
    let (failure, reason) = match &error {
        sqlx::Error::Database(answer) => match answer.code().as_deref() {
            Some("3D000") => (
                ConnectFailure::NoSuchDatabase,
                format!(
                    "database {database:?} does not exist on the PostgreSQL server at {server}; \
                     check the name in --db, or create it (createdb -h HOST -p PORT {database})"
                ),
            ),
            Some("28000" | "28P01") => (
                ConnectFailure::Authentication,
                format!(
                    "the PostgreSQL server at {server} refused user {user:?}: {}; check the user name, \
                     and give the password in PGPASSWORD or ~/.pgpass",
                    answer.message()
                ),
            ),
            _ => (
                ConnectFailure::Other,
                format!("the PostgreSQL server at {server} refused the connection: {}", answer.message()),
            ),
        },
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => (
            ConnectFailure::Refused,
            format!(
                "cannot reach the database server: connection refused at {server}, where no PostgreSQL server \
                 listens. Check the host and port \
                 in --db, or start the server (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
            ),
        ),
        sqlx::Error::Io(io) => (
            ConnectFailure::Refused,
            format!("cannot reach the database server at {server}: {io}"),
        ),
        sqlx::Error::Tls(tls) => (
            ConnectFailure::Tls,
            format!("the TLS connection to the PostgreSQL server at {server} failed: {tls}; check sslmode in --db"),
        ),
        sqlx::Error::PoolTimedOut => (
            ConnectFailure::TimedOut,
            format!(
                "cannot reach the database server: no answer from {server} within {} s; check the host and port in --db \
                 and any firewall between",
                POSTGRES_CONNECT_TIMEOUT_MS / 1_000
            ),
        ),
        other => (
            ConnectFailure::Other,
            format!("cannot connect to the PostgreSQL server at {server}: {other}"),
        ),
    };
    StoreError::Unreachable { failure, reason }
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
