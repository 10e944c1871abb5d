//! How the tables hold money, dates and instants on each backend: NUMERIC, DATE and
//! TIMESTAMPTZ on PostgreSQL; on SQLite, exact text in the forms the tables had before
//! they were written through typed binds (`1005.06`, `12.3400`, `2024-03-04`).

use std::path::Path;
use std::sync::Arc;

use ledger_commands::{Ledger, LineRunner};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_projections::tables::{read_balances, run_accounts, RunOptions};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};

async fn exec(store: Arc<dyn EventStore>, lines: &[String]) {
    let mut ledger = Ledger::new(store, Arc::new(MarketRules::china_a_share().unwrap()));
    let mut runner = LineRunner::new(&mut ledger, "test");
    for (index, line) in lines.iter().enumerate() {
        runner.push(index as u64 + 1, line).await.unwrap();
    }
    runner.flush().await.unwrap();
}

fn example() -> Vec<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/two-days.jsonl");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The first row of a query whose columns are all text.
async fn first_row(db: &TestDatabase, query: String) -> Vec<String> {
    use sqlx::{Connection, Row};
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            let row = sqlx::query(sqlx::AssertSqlSafe(query.clone()))
                .fetch_one(&mut conn)
                .await
                .unwrap();
            (0..row.len()).map(|i| row.get::<String, _>(i)).collect()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let row = sqlx::query(sqlx::AssertSqlSafe(query.clone()))
                .fetch_one(&mut conn)
                .await
                .unwrap();
            (0..row.len()).map(|i| row.get::<String, _>(i)).collect()
        }
    }
}

#[tokio::test]
async fn money_dates_and_instants_keep_their_column_types_and_forms() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = connect(&db.url).await.unwrap();
        exec(Arc::clone(&store), &example()).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let type_of = match backend {
            Backend::Sqlite => "typeof",
            Backend::Postgres => "pg_typeof",
        };
        let trade = first_row(
            &db,
            format!(
                "SELECT CAST({type_of}(value) AS TEXT), CAST(value AS TEXT), CAST({type_of}(trade_date) AS TEXT), \
                 CAST(trade_date AS TEXT) FROM trades ORDER BY global_position"
            ),
        )
        .await;
        let position = first_row(
            &db,
            format!(
                "SELECT CAST({type_of}(avg_cost) AS TEXT), CAST(avg_cost AS TEXT) FROM positions \
                 ORDER BY account_id, instrument"
            ),
        )
        .await;
        let (money, date) = match backend {
            Backend::Sqlite => ("text", "text"),
            Backend::Postgres => ("numeric", "date"),
        };
        assert_eq!(trade[0], money, "{backend:?}");
        assert_eq!(trade[2], date, "{backend:?}");
        assert_eq!(position[0], money, "{backend:?}");
        let decimals = |text: &str| text.split_once('.').map(|(_, fraction)| fraction.len());
        assert_eq!(decimals(&trade[1]), Some(2), "{backend:?}: {}", trade[1]);
        assert_eq!(decimals(&position[1]), Some(4), "{backend:?}: {}", position[1]);
        assert_eq!(trade[3].len(), "2024-03-04".len(), "{backend:?}: {}", trade[3]);
        let balances = read_balances(store.as_ref()).await.unwrap();
        assert!(
            balances.iter().all(|b| decimals(&b.available) == Some(2)),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn the_public_reads_and_runs_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let store = connect(&db.url).await.unwrap();
    let run = run_accounts(store.as_ref(), RunOptions::default(), |_| {});
    assert_send(&run);
    let read = read_balances(store.as_ref());
    assert_send(&read);
    let verify_side = ledger_projections::tables::read_trial_balance(store.as_ref());
    assert_send(&verify_side);
}
