//! Migration 0012 moves the HTTP API's request digests from `command_requests` into
//! the outcomes: a digest whose command id has an outcome is carried over, one
//! without (a binding whose batch never committed) goes, and so does the table.

use std::path::Path;

use ledger_eventstore::connect;
use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use sqlx::migrate::Migrator;
use sqlx::{Executor, Row};

/// The last migration before the digests moved.
const BEFORE: i64 = 11;

/// A temporary folder with the backend's migrations up to [`BEFORE`], byte for byte,
/// so the store's own migrator takes them as applied and runs only the later ones.
fn migrations_before(backend: Backend) -> tempfile::TempDir {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(name);
    let folder = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: i64 = file[..4].parse().unwrap();
        if version <= BEFORE {
            std::fs::copy(&path, folder.path().join(&file)).unwrap();
        }
    }
    folder
}

const OLD_ROWS: &str = "INSERT INTO command_outcomes (command_id, status, event_count, recorded_at) \
     VALUES ('K1', 'accepted', 0, '2026-12-01T09:30:00.000000Z'), ('F1', 'accepted', 0, '2026-12-01T09:30:00.000000Z'); \
     INSERT INTO command_requests (command_id, body_sha256) VALUES ('K1', 'aaa'), ('ORPHAN', 'bbb')";

#[tokio::test]
async fn digests_with_an_outcome_move_into_it_and_the_table_goes() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let folder = migrations_before(backend);
        let migrator = Migrator::new(folder.path()).await.unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", db.url.trim_start_matches("sqlite://"));
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                migrator.run(&pool).await.unwrap();
                pool.execute(OLD_ROWS).await.unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                migrator.run(&pool).await.unwrap();
                pool.execute(OLD_ROWS).await.unwrap();
                pool.close().await;
            }
        }

        let store = connect(&db.url).await.unwrap();
        let ids = ["K1", "F1", "ORPHAN"].map(str::to_owned);
        let outcomes = store.find_outcomes(&ids).await.unwrap();
        assert_eq!(
            outcomes.len(),
            2,
            "{backend:?}: the orphan binding was never an outcome"
        );
        assert_eq!(outcomes["K1"].request_sha256.as_deref(), Some("aaa"), "{backend:?}");
        assert_eq!(
            outcomes["F1"].request_sha256, None,
            "{backend:?}: a command-file line has no body"
        );

        let tables = match store.database() {
            ledger_eventstore::Database::Sqlite(pool) => {
                sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'command_requests'")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get::<i64, _>(0)
            }
            ledger_eventstore::Database::Postgres(pool) => sqlx::query(
                "SELECT COUNT(*) FROM (SELECT to_regclass('command_requests') AS t) found WHERE t IS NOT NULL",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .get::<i64, _>(0),
        };
        assert_eq!(tables, 0, "{backend:?}: command_requests is dropped");
    }
}
