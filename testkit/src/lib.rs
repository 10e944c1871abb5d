//! Test support: every backend's test database, fresh per test.
//!
//! PostgreSQL tests use `postgres://postgres@127.0.0.1:5432/test`, or
//! `LEDGER_TEST_PG_URL`, each in its own schema so tests run in parallel.
//! They never skip: an unreachable server fails the test with a sentence
//! saying how to start it.
//!
//! [`faults`]: a store that fails on purpose, for the deterministic simulation.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

pub mod faults;

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
    /// The server URL and name of a whole PostgreSQL database made for the test, dropped at the end.
    postgres_database: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn fresh(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => sqlite(),
            Backend::Postgres => postgres().await,
        }
    }

    /// The schema the URL's `search_path` names, for a PostgreSQL test database.
    pub fn postgres_schema(&self) -> Option<&str> {
        self.postgres_schema.as_ref().map(|(_, schema)| schema.as_str())
    }
}

impl TestDatabase {
    /// Runs SQL on the database directly, with the log's immutability triggers out of
    /// the way, as someone with write access to the database file or server could: the
    /// tampering that `verify` must catch. Panics on a statement that fails.
    pub async fn tamper(&self, statements: &[&str]) {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = connect::<sqlx::SqliteConnection>(&self.url).await;
                for statement in [
                    "DROP TRIGGER IF EXISTS events_are_immutable_update",
                    "DROP TRIGGER IF EXISTS events_are_immutable_delete",
                ]
                .iter()
                .chain(statements)
                {
                    run(&mut conn, statement).await;
                }
            }
            Backend::Postgres => {
                let mut conn = connect::<sqlx::PgConnection>(&self.url).await;
                for statement in ["ALTER TABLE events DISABLE TRIGGER USER"].iter().chain(statements) {
                    run(&mut conn, statement).await;
                }
            }
        }
    }
}

async fn connect<C: Connection>(url: &str) -> C {
    C::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database {url}: {e}"))
}

async fn run<C>(conn: &mut C, statement: &str)
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut *conn)
        .await
    {
        panic!("tampering statement {statement:?} failed: {e}");
    }
}

/// The variable that sets how many cases each fuzz target runs (docs/operations.md, "Fuzzing").
pub const FUZZ_CASES_VAR: &str = "LEDGER_FUZZ_CASES";

/// The seed every fuzz target runs from unless `PROPTEST_RNG_SEED` names another, so
/// that CI sees the same cases every time.
pub const FUZZ_DEFAULT_SEED: u64 = 20_240_311;

/// A permission table of the docs: the markdown table whose header line starts with
/// `header` (its first cell names the rows, the others are columns such as roles), read
/// to its end. Returns the column names and, per row, its first cell and the names of the
/// columns marked `yes`; a cell that is neither `yes` nor empty, or a row of another
/// width, fails the test.
pub fn yes_table(doc: &str, header: &str) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let mut lines = doc.lines().skip_while(|line| !line.starts_with(header));
    let columns = markdown_cells(lines.next().unwrap_or_else(|| panic!("no table headed {header:?}"))).split_off(1);
    let rows = lines
        .skip(1) // the |---| line
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells = markdown_cells(line);
            assert_eq!(cells.len(), columns.len() + 1, "{line}");
            let marked = columns
                .iter()
                .zip(&cells[1..])
                .filter(|(_, cell)| match cell.as_str() {
                    "yes" => true,
                    "" => false,
                    other => panic!("a cell is `yes` or empty, not {other:?}: {line}"),
                })
                .map(|(column, _)| column.clone())
                .collect();
            (cells[0].clone(), marked)
        })
        .collect();
    (columns, rows)
}

fn markdown_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|cell| cell.trim().to_owned()).collect()
}

/// A fuzz target's proptest configuration: `LEDGER_FUZZ_CASES` cases, or
/// `default_cases` (a CI run of seconds), from [`FUZZ_DEFAULT_SEED`] or
/// `PROPTEST_RNG_SEED`; a failing case is saved beside the test in
/// `<test>.proptest-regressions` (targets run by the `proptest!` macro), to be
/// committed and replayed first on every run.
pub fn fuzz_config(default_cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
    let cases = match std::env::var(FUZZ_CASES_VAR) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{FUZZ_CASES_VAR} must be a whole number, got {text:?}")),
        Err(_) => default_cases,
    };
    let defaults = Config::default();
    let rng_seed = match defaults.rng_seed {
        RngSeed::Random => RngSeed::Fixed(FUZZ_DEFAULT_SEED),
        chosen => chosen,
    };
    eprintln!("{cases} cases, seed {rng_seed:?} ({FUZZ_CASES_VAR} and PROPTEST_RNG_SEED choose others)");
    Config {
        cases,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..defaults
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
        postgres_database: None,
        _dir: Some(dir),
    }
}

/// A new SQLite file in a temporary directory holding a copy of the database at
/// `template` (with its WAL, if one is left): many cases from one log built once.
pub fn sqlite_copy_of(template: &std::path::Path) -> TestDatabase {
    let db = sqlite();
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    for suffix in ["", "-wal"] {
        let from = format!("{}{suffix}", template.display());
        if std::path::Path::new(&from).exists() {
            if let Err(e) = std::fs::copy(&from, format!("{path}{suffix}")) {
                panic!("cannot copy the SQLite file {from}: {e}");
            }
        }
    }
    db
}

/// A new, empty schema in the PostgreSQL test database.
pub async fn postgres() -> TestDatabase {
    let base = postgres_base_url();
    let schema = unique_name("t");
    let mut conn = connect_or_say_how(&base).await;
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
        postgres_database: None,
        _dir: None,
    }
}

/// A new, empty PostgreSQL database of its own (for restoring a dump whose schema keeps its
/// name), on the test server; its URL picks `schema` as the search path.
pub async fn postgres_database(schema: &str) -> TestDatabase {
    let base = postgres_base_url();
    let name = unique_name("d");
    let mut conn = connect_or_say_how(&base).await;
    let create = format!("CREATE DATABASE {name}");
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut conn).await {
        panic!("cannot create test database {name} on {base}: {e}");
    }
    let _ = conn.close().await;
    let server = base.split('?').next().unwrap_or(&base);
    let server = server.rsplit_once('/').map_or(server, |(server, _database)| server);
    TestDatabase {
        backend: Backend::Postgres,
        url: format!("{server}/{name}?options=-c%20search_path%3D{schema}"),
        postgres_schema: None,
        postgres_database: Some((base, name)),
        _dir: None,
    }
}

/// A name no other test of any process uses: `{prefix}_{pid}_{counter}_{nanos}`.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

async fn connect_or_say_how(base: &str) -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(base).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL tests need a server at {base} (override with LEDGER_TEST_PG_URL), but connecting failed: {e}.\n\
             Start it (for example `pg_ctlcluster VERSION CLUSTER start`, with a VERSION and CLUSTER that \
             `pg_lsclusters` lists, or `systemctl start postgresql`)."
        ),
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
        // A transaction still open on the schema (a leaked one is a bug under test) must
        // not hang the suite: give up after a while and say what is left.
        let (base, drop) = if let Some((base, schema)) = self.postgres_schema.take() {
            let sql = format!("SET lock_timeout = '{DROP_LOCK_TIMEOUT_S}s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
            (base, sql)
        } else if let Some((base, name)) = self.postgres_database.take() {
            (base, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        } else {
            return;
        };
        // Drop may run inside a runtime; the statement runs on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop.clone()))
                    .execute(&mut conn)
                    .await
                {
                    eprintln!("the test database was left in place ({drop}): {e}");
                }
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// Every command id of the log with the number of events it wrote, read through the
/// store's gap-free reads: what a test compares with the answers its client saw.
pub async fn events_by_command(store: &dyn ledger_eventstore::EventStore) -> std::collections::HashMap<String, u64> {
    let head = store.head_position().await.unwrap();
    let mut counts = std::collections::HashMap::new();
    let mut after = 0;
    while after < head {
        let events = ledger_eventstore::read_towards(store, after, head, 1_000)
            .await
            .unwrap();
        assert!(!events.is_empty(), "events up to the head can be read");
        for event in &events {
            *counts.entry(event.metadata.command_id.clone()).or_default() += 1;
            after = event.global_position;
        }
    }
    counts
}

/// A decided command of the test aggregate type `Test`: `events` events `Tick` (payload
/// `{"i": n}`) on stream `stream`, expected at `expected_sequence`, accepted.
pub fn tick_command(id: &str, stream: &str, expected_sequence: u64, events: usize) -> ledger_eventstore::CommandRecord {
    use ledger_eventstore::{CommandRecord, EventMetadata, NewEvent, OutcomeStatus, StreamAppend, StreamId};
    CommandRecord {
        metadata: EventMetadata {
            command_id: id.into(),
            correlation_id: id.into(),
            causation_id: id.into(),
            actor: "test".into(),
            recorded_at: chrono::Utc::now(),
            business_date: None,
        },
        status: OutcomeStatus::Accepted,
        code: None,
        message: None,
        account_id: None,
        appends: vec![StreamAppend {
            stream: StreamId::new("Test", stream),
            expected_sequence,
            events: (0..events)
                .map(|i| NewEvent {
                    event_type: "Tick".into(),
                    event_version: 1,
                    payload: serde_json::json!({ "i": i }),
                })
                .collect(),
        }],
        request_sha256: None,
    }
}
