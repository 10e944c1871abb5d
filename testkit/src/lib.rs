//! Test support: every backend's test database, fresh per test.
//!
//! PostgreSQL tests use `postgres://postgres@127.0.0.1:5432/test`, or
//! `LEDGER_TEST_PG_URL`, each in its own schema so tests run in parallel.
//! They never skip: an unreachable server fails the test with a sentence
//! saying how to start it.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

pub const DEFAULT_TEST_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Every backend, for suites that run each test body on all of them.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A database that exists for one test and is removed after it.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    /// The base URL and schema of a PostgreSQL test database, dropped at the end.
    postgres_schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn fresh(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => sqlite(),
            Backend::Postgres => postgres().await,
        }
    }
}

pub fn postgres_base_url() -> String {
    std::env::var("LEDGER_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_TEST_PG_URL.to_owned())
}

/// A new SQLite file in a temporary directory.
pub fn sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    TestDatabase {
        backend: Backend::Sqlite,
        url,
        postgres_schema: None,
        _dir: Some(dir),
    }
}

/// A new, empty schema in the PostgreSQL test database.
pub async fn postgres() -> TestDatabase {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = postgres_base_url();
    let schema = format!(
        "t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL tests need a server at {base} (override with LEDGER_TEST_PG_URL), but connecting failed: {e}.\n\
             Start it (for example `pg_ctlcluster VERSION CLUSTER start`, with a VERSION and CLUSTER that \
             `pg_lsclusters` lists, or `systemctl start postgresql`)."
        ),
    };
    let create = format!("CREATE SCHEMA {schema}");
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut conn).await {
        panic!("cannot create test schema {schema} in {base}: {e}");
    }
    let _ = conn.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    TestDatabase {
        backend: Backend::Postgres,
        url,
        postgres_schema: Some((base, schema)),
        _dir: None,
    }
}

impl TestDatabase {
    /// The URL with this test's own `application_name` (PostgreSQL: its schema's name), so
    /// that the sessions opened with it, and only those, can be ended by [`Self::end_sessions`].
    pub fn url_with_session_name(&self) -> String {
        match &self.postgres_schema {
            Some((_, schema)) => format!("{}&application_name={schema}", self.url),
            None => self.url.clone(),
        }
    }

    /// Ends every PostgreSQL session opened with [`Self::url_with_session_name`], as an
    /// operator's `pg_terminate_backend` or a server restart would, and no other test's.
    /// Returns how many it ended (0 on SQLite, which has no sessions).
    pub async fn end_sessions(&self) -> u64 {
        let Some((base, schema)) = &self.postgres_schema else {
            return 0;
        };
        let mut conn = sqlx::PgConnection::connect(base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {base} to end the test's sessions: {e}"));
        // In the select list, so that it runs only on the rows the filter keeps.
        let ended: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(schema)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot end the sessions of {schema}: {e}"));
        let _ = conn.close().await;
        u64::try_from(ended).unwrap_or(0)
    }
}

/// How long dropping a test schema waits for locks held by other connections.
const DROP_LOCK_TIMEOUT_S: u32 = 30;

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.postgres_schema.take() else {
            return;
        };
        // Drop may run inside a runtime; the schema is removed from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                // A transaction still open on the schema (a leaked one is a bug under test) must
                // not hang the suite: give up after a while and say which schema is left.
                let drop =
                    format!("SET lock_timeout = '{DROP_LOCK_TIMEOUT_S}s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
                if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await {
                    eprintln!("test schema {schema} was left in place: {e}");
                }
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}
