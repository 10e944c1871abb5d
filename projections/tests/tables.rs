//! The accounts read models in SQL, on both backends: equal to a fresh replay,
//! crash-safe between batches and mid-batch, rebuildable, incremental.

use std::path::Path;
use std::sync::Arc;

use ledger_commands::{Ledger, LineRunner};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_projections::tables::{
    accounts_checkpoint, read_balances, read_positions, read_trial_balance, rebuild_accounts, run_accounts, Fault,
    RunOptions, DEFAULT_MAX_CACHED_STATES,
};
use ledger_projections::{AccountsView, ProjectionError};
use ledger_testkit::{TestDatabase, BACKENDS};
use rust_decimal::Decimal;

async fn exec(store: Arc<dyn EventStore>, lines: &[String]) {
    let mut ledger = Ledger::new(store, Arc::new(MarketRules::china_a_share().unwrap()));
    let mut runner = LineRunner::new(&mut ledger, "test");
    for (index, line) in lines.iter().enumerate() {
        runner.push(index as u64 + 1, line).await.unwrap();
    }
    runner.flush().await.unwrap();
}

/// A fresh database of `backend` on which `lines` of the command file were run.
async fn with_lines(backend: ledger_testkit::Backend, lines: &[String]) -> (TestDatabase, Arc<dyn EventStore>) {
    let db = TestDatabase::fresh(backend).await;
    let store = connect(&db.url).await.unwrap();
    exec(Arc::clone(&store), lines).await;
    (db, store)
}

fn example() -> Vec<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/two-days.jsonl");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The tables' rows, as text, to compare runs.
async fn tables(store: &dyn EventStore) -> String {
    format!(
        "{:?}\n{:?}",
        read_balances(store).await.unwrap(),
        read_positions(store).await.unwrap()
    )
}

/// Every row of the other read models, as text, in key order.
async fn other_tables(db: &TestDatabase) -> String {
    let queries = [
        "SELECT CAST(global_position AS TEXT), account_id, order_id, exec_id, instrument, side, CAST(trade_date AS TEXT), \
         CAST(quantity AS TEXT), CAST(price AS TEXT), CAST(value AS TEXT), CAST(fees AS TEXT), CAST(net_cash AS TEXT) \
         FROM trades ORDER BY global_position",
        "SELECT account_id, order_id, status, CAST(filled_quantity AS TEXT), CAST(limit_price AS TEXT) FROM orders \
         ORDER BY account_id, order_id",
        "SELECT CAST(trade_date AS TEXT), account_id, instrument, CAST(net_quantity AS TEXT), CAST(net_amount AS TEXT), \
         CAST(fees AS TEXT) FROM clearing_obligations ORDER BY 1, 2, 3",
        "SELECT CAST(global_position AS TEXT), account_id, direction, CAST(amount AS TEXT) FROM compliance_alerts ORDER BY 1",
    ];
    let mut out = String::new();
    for query in queries {
        out.push_str(&format!("{:?}\n", rows(db, query).await));
    }
    out
}

/// The rows of `query`, every column cast to text.
async fn rows(db: &TestDatabase, query: &'static str) -> Vec<Vec<String>> {
    use sqlx::{Connection, Row};
    match db.backend {
        ledger_testkit::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query(query).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.get::<String, _>(i)).collect())
                .collect()
        }
        ledger_testkit::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query(query).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.get::<String, _>(i)).collect())
                .collect()
        }
    }
}

/// The position the stored account states reflect, `None` if it has no row.
async fn states_checkpoint(db: &TestDatabase) -> Option<String> {
    let query = "SELECT CAST(position AS TEXT) FROM projection_checkpoints WHERE name = 'account_states'";
    rows(db, query).await.first().map(|row| row[0].clone())
}

async fn replayed(store: &dyn EventStore) -> String {
    let mut view = AccountsView::default();
    view.catch_up(store).await.unwrap();
    format!("{:?}\n{:?}", view.balances(), view.positions())
}

fn small_batches(fault: Option<Fault>) -> RunOptions {
    RunOptions {
        batch_events: 7,
        fault,
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn the_tables_equal_a_fresh_replay() {
    for backend in BACKENDS {
        let (db, store) = with_lines(backend, &example()).await;
        let mut batches = 0;
        let applied = run_accounts(store.as_ref(), small_batches(None), |_| batches += 1)
            .await
            .unwrap();
        assert_eq!(applied, 169, "{backend:?}");
        assert_eq!(batches, 25, "169 events in batches of 7");
        assert_eq!(accounts_checkpoint(store.as_ref()).await.unwrap(), 169);
        assert_eq!(
            tables(store.as_ref()).await,
            replayed(store.as_ref()).await,
            "{backend:?}"
        );
        assert!(
            tables(store.as_ref()).await.contains("47364.50"),
            "A0001's balance of the worked example"
        );
        let others = other_tables(&db).await;
        // The worked example books 34 fills, so 34 trades; A0001's first fill 876 x 5.25 = 4599.00 cost 4604.30.
        assert_eq!(
            others.lines().next().unwrap().matches("\"E0").count(),
            34,
            "{backend:?}"
        );
        assert!(
            others.contains("\"4599.00\", \"5.30\", \"-4604.30\""),
            "{backend:?}: {others}"
        );
        // O000001: 1,188 of 1,200 filled, a cancel asked but never confirmed, so the rest expired.
        assert!(
            others.contains("\"O000001\", \"expired\", \"1188\""),
            "{backend:?}: {others}"
        );
        assert!(
            others.contains("\"O000039\", \"expired\", \"0\""),
            "{backend:?}: O000039 expired at end of day"
        );
        // The journal balances, and what it owes each customer is their available + frozen cash.
        let journal = read_trial_balance(store.as_ref()).await.unwrap();
        assert_eq!(journal.values().copied().sum::<Decimal>(), Decimal::ZERO, "{backend:?}");
        for balance in read_balances(store.as_ref()).await.unwrap() {
            let owed = journal
                .get(&format!("liabilities:customers:{}:cash", balance.account_id))
                .copied()
                .unwrap_or_default();
            let cash = balance.available.parse::<Decimal>().unwrap() + balance.frozen.parse::<Decimal>().unwrap();
            assert_eq!(-owed, cash, "{backend:?}: {}", balance.account_id);
        }
        assert!(
            journal["income:commission"] < Decimal::ZERO,
            "commission is income: a credit"
        );
        // Nothing new: a second run applies nothing.
        assert_eq!(
            run_accounts(store.as_ref(), RunOptions::default(), |_| {})
                .await
                .unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn a_crash_between_batches_loses_and_doubles_nothing() {
    for backend in BACKENDS {
        let (_db, store) = with_lines(backend, &example()).await;
        let crashed = run_accounts(store.as_ref(), small_batches(Some(Fault::AfterBatches(3))), |_| {}).await;
        assert!(matches!(crashed, Err(ProjectionError::Injected(_))));
        assert_eq!(
            accounts_checkpoint(store.as_ref()).await.unwrap(),
            21,
            "three batches of 7 committed"
        );
        run_accounts(store.as_ref(), small_batches(None), |_| {}).await.unwrap();
        assert_eq!(
            tables(store.as_ref()).await,
            replayed(store.as_ref()).await,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_crash_mid_batch_leaves_no_trace_of_that_batch() {
    for backend in BACKENDS {
        // The reference: the state after exactly two batches.
        let (_reference_db, reference) = with_lines(backend, &example()).await;
        let _ = run_accounts(reference.as_ref(), small_batches(Some(Fault::AfterBatches(2))), |_| {}).await;

        let (_db, store) = with_lines(backend, &example()).await;
        let crashed = run_accounts(store.as_ref(), small_batches(Some(Fault::MidBatch(2))), |_| {}).await;
        assert!(matches!(crashed, Err(ProjectionError::Injected(_))));
        assert_eq!(accounts_checkpoint(store.as_ref()).await.unwrap(), 14);
        assert_eq!(
            tables(store.as_ref()).await,
            tables(reference.as_ref()).await,
            "{backend:?}: batch 2 left rows behind"
        );

        run_accounts(store.as_ref(), small_batches(None), |_| {}).await.unwrap();
        assert_eq!(
            tables(store.as_ref()).await,
            replayed(store.as_ref()).await,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn rebuild_from_zero_and_incremental_runs_agree() {
    for backend in BACKENDS {
        let lines = example();
        let (first, second) = lines.split_at(90);
        let (db, store) = with_lines(backend, first).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        exec(Arc::clone(&store), second).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let incremental = tables(store.as_ref()).await;
        let incremental_others = other_tables(&db).await;
        assert_eq!(incremental, replayed(store.as_ref()).await, "{backend:?}");
        let rebuilt = rebuild_accounts(store.as_ref(), small_batches(None), |_| {})
            .await
            .unwrap();
        assert_eq!(rebuilt, 169);
        assert_eq!(tables(store.as_ref()).await, incremental, "{backend:?}");
        assert_eq!(other_tables(&db).await, incremental_others, "{backend:?}");
    }
}

#[tokio::test]
async fn a_run_stores_the_states_at_the_head_or_past_its_limit_and_a_crash_in_between_loses_nothing() {
    for backend in BACKENDS {
        let (reference_db, reference) = with_lines(backend, &example()).await;
        run_accounts(reference.as_ref(), small_batches(None), |_| {})
            .await
            .unwrap();
        assert_eq!(states_checkpoint(&reference_db).await.as_deref(), Some("169"));
        // (the limit of the crashed run, where it left the stored states, the limit of the
        // resumed run, which with 1 stores them in the middle of rebuilding its cache)
        let cases = [
            (DEFAULT_MAX_CACHED_STATES, "0", DEFAULT_MAX_CACHED_STATES),
            (DEFAULT_MAX_CACHED_STATES, "0", 1),
            (1, "21", DEFAULT_MAX_CACHED_STATES),
        ];
        for (crashed_limit, stored_at_crash, resumed_limit) in cases {
            let case = format!("{backend:?}, limits {crashed_limit} then {resumed_limit}");
            let lines = example();
            let (first, second) = lines.split_at(90);
            let (db, store) = with_lines(backend, first).await;
            let first_head = store.head_position().await.unwrap();
            let crashed = RunOptions {
                batch_events: 7,
                max_cached_states: crashed_limit,
                fault: Some(Fault::AfterBatches(3)),
            };
            let crash = run_accounts(store.as_ref(), crashed, |_| {}).await;
            assert!(matches!(crash, Err(ProjectionError::Injected(_))));
            assert_eq!(accounts_checkpoint(store.as_ref()).await.unwrap(), 21);
            assert_eq!(states_checkpoint(&db).await.as_deref(), Some(stored_at_crash), "{case}");
            // The resumed run rebuilds the states of positions 1 to 21 from the log, 7 events a page.
            let resumed = RunOptions {
                batch_events: 7,
                max_cached_states: resumed_limit,
                fault: None,
            };
            let applied = run_accounts(store.as_ref(), resumed, |_| {}).await.unwrap();
            assert_eq!(applied, first_head - 21, "{case}");
            assert_eq!(states_checkpoint(&db).await, Some(first_head.to_string()), "{case}");
            // The states it stored are exact: the next run goes on from them.
            exec(Arc::clone(&store), second).await;
            run_accounts(store.as_ref(), RunOptions::default(), |_| {})
                .await
                .unwrap();
            assert_eq!(tables(store.as_ref()).await, tables(reference.as_ref()).await, "{case}");
            assert_eq!(tables(store.as_ref()).await, replayed(store.as_ref()).await, "{case}");
            assert_eq!(other_tables(&db).await, other_tables(&reference_db).await, "{case}");
        }
    }
}

#[tokio::test]
async fn states_stored_before_they_had_a_checkpoint_are_taken_as_at_the_accounts_checkpoint() {
    for backend in BACKENDS {
        let lines = example();
        let (first, second) = lines.split_at(90);
        let (db, store) = with_lines(backend, first).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        // As a database written by a runner that stored the states with every batch holds them.
        rows(&db, "DELETE FROM projection_checkpoints WHERE name = 'account_states'").await;
        assert_eq!(states_checkpoint(&db).await, None);
        exec(Arc::clone(&store), second).await;
        run_accounts(store.as_ref(), small_batches(None), |_| {}).await.unwrap();
        assert_eq!(
            tables(store.as_ref()).await,
            replayed(store.as_ref()).await,
            "{backend:?}: no event applied twice"
        );
    }
}

#[tokio::test]
async fn two_runners_at_once_apply_each_event_once() {
    for backend in BACKENDS {
        let (db, store) = with_lines(backend, &example()).await;
        let other = RunOptions {
            batch_events: 5,
            max_cached_states: 2,
            fault: None,
        };
        let (one, two) = tokio::join!(
            run_accounts(store.as_ref(), small_batches(None), |_| {}),
            run_accounts(store.as_ref(), other, |_| {}),
        );
        assert_eq!(one.unwrap() + two.unwrap(), 169, "{backend:?}");
        assert_eq!(
            tables(store.as_ref()).await,
            replayed(store.as_ref()).await,
            "{backend:?}"
        );
        assert_eq!(states_checkpoint(&db).await.as_deref(), Some("169"), "{backend:?}");
    }
}

#[tokio::test]
async fn a_rebuild_beside_a_run_leaves_the_tables_equal_to_a_replay() {
    for backend in BACKENDS {
        let (db, store) = with_lines(backend, &example()).await;
        run_accounts(store.as_ref(), small_batches(None), |_| {}).await.unwrap();
        let other = RunOptions {
            batch_events: 5,
            max_cached_states: 2,
            fault: None,
        };
        let (rebuilt, ran) = tokio::join!(
            rebuild_accounts(store.as_ref(), small_batches(None), |_| {}),
            run_accounts(store.as_ref(), other, |_| {}),
        );
        let (rebuilt, ran) = (rebuilt.unwrap(), ran.unwrap());
        assert!(
            rebuilt + ran >= 169,
            "{backend:?}: the rebuild's events and the run's cover the log"
        );
        assert_eq!(accounts_checkpoint(store.as_ref()).await.unwrap(), 169);
        assert_eq!(
            tables(store.as_ref()).await,
            replayed(store.as_ref()).await,
            "{backend:?}"
        );
        assert_eq!(states_checkpoint(&db).await.as_deref(), Some("169"), "{backend:?}");
    }
}
