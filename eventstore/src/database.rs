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
/// The `application_name` of the ledger's PostgreSQL sessions, unless the URL
/// (`?application_name=…`) or `PGAPPNAME` names another: how an operator finds them
/// in `pg_stat_activity`.
const POSTGRES_APPLICATION_NAME: &str = "ledger";
/// PostgreSQL's setting for reusing a prepared statement's plan (PostgreSQL 12 and later).
const PLAN_CACHE_MODE: &str = "plan_cache_mode";
/// Where Debian's PostgreSQL packages keep each cluster's configuration, as `VERSION/CLUSTER/`.
const DEBIAN_CLUSTERS_DIR: &str = "/etc/postgresql";
/// PostgreSQL's port when a cluster's configuration names none.
const POSTGRES_DEFAULT_PORT: u16 = 5432;

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
    let mut options = PgConnectOptions::from_str(url)?;
    if options.get_application_name().is_none() {
        options = options.application_name(POSTGRES_APPLICATION_NAME);
    }
    options = with_custom_plans(options);
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

/// Plans every statement for the values it runs with, unless the URL's `options` set
/// `plan_cache_mode` themselves. sqlx keeps each statement prepared, and PostgreSQL may
/// settle on a generic plan after five runs: one made while `command_outcomes` was
/// nearly empty scans the whole table, and stays cached as the table grows (until an
/// ANALYZE). `bench engine` on an empty database ran 2,037–2,594 commands/s that way, and
/// 6,245–6,371 with custom plans (docs/performance.md); the ledger's statements are
/// short, so planning each costs less than one such scan.
fn with_custom_plans(options: PgConnectOptions) -> PgConnectOptions {
    if options.get_options().is_some_and(|set| set.contains(PLAN_CACHE_MODE)) {
        return options;
    }
    options.options([(PLAN_CACHE_MODE, "force_custom_plan")])
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
                 listens. Check the host and port in --db, or start the server ({})",
                start_hint(options.get_host(), options.get_port())
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

/// How to start the server at `host:port`: the command for the one local Debian cluster
/// configured on that port when there is exactly one, else examples (never a cluster
/// name the ledger cannot know).
fn start_hint(host: &str, port: u16) -> String {
    let local = matches!(host, "localhost" | "127.0.0.1" | "::1") || host.starts_with('/');
    let clusters = if local { clusters_on_port(port) } else { Vec::new() };
    match clusters.as_slice() {
        [(version, cluster)] => {
            format!("`pg_ctlcluster {version} {cluster} start`, the cluster configured on port {port}")
        }
        _ => "for example `pg_ctlcluster VERSION CLUSTER start` or `systemctl start postgresql`".to_owned(),
    }
}

/// The Debian clusters (version, name) whose `postgresql.conf` sets this port (or none, for 5432).
fn clusters_on_port(port: u16) -> Vec<(String, String)> {
    let subdirectories = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    for version in subdirectories(std::path::Path::new(DEBIAN_CLUSTERS_DIR)) {
        for cluster in subdirectories(&version) {
            let Ok(conf) = std::fs::read_to_string(cluster.join("postgresql.conf")) else {
                continue;
            };
            if configured_port(&conf) == port {
                let name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
                if let (Some(version), Some(cluster)) = (name(&version), name(&cluster)) {
                    found.push((version, cluster));
                }
            }
        }
    }
    found
}

/// The `port = N` a `postgresql.conf` sets (its last, as PostgreSQL reads it), or the default.
fn configured_port(conf: &str) -> u16 {
    conf.lines()
        .filter_map(|line| {
            let setting = line.split('#').next()?.trim();
            let (key, value) = setting.split_once('=')?;
            (key.trim() == "port").then(|| value.trim().trim_matches('\'').parse().ok())?
        })
        .next_back()
        .unwrap_or(POSTGRES_DEFAULT_PORT)
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

#[cfg(test)]
mod tests {
    use super::configured_port;

    #[test]
    fn the_port_a_cluster_is_configured_on() {
        assert_eq!(configured_port("port = 5433\t\t# (change requires restart)\n"), 5433);
        assert_eq!(configured_port("#port = 5433\nlisten_addresses = '*'\n"), 5432);
        assert_eq!(configured_port("port = 5433\nport = '5434'\n"), 5434);
        assert_eq!(configured_port("portal = 1\n"), 5432);
    }
}
