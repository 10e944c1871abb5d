//! `compliance_alerts` on both backends: AML flags come from events, refused
//! suitability checks from the outcomes the store keeps (a refusal writes no
//! event). Each alert is raised once, whatever the reruns and rebuilds.

use std::sync::Arc;

use ledger_commands::{Ledger, LineRunner};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_projections::tables::{rebuild_accounts, run_accounts, RunOptions};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};

async fn exec(store: Arc<dyn EventStore>, lines: &[&str]) {
    let mut ledger = Ledger::new(store, Arc::new(MarketRules::china_a_share().unwrap()));
    let mut runner = LineRunner::new(&mut ledger, "test");
    for (index, line) in lines.iter().enumerate() {
        runner.push(index as u64 + 1, line).await.unwrap();
    }
    runner.flush().await.unwrap();
}

const SETUP: [&str; 5] = [
    r#"{"type": "list_instrument", "command_id": "C1", "instrument": "688981.SH", "name": "SMIC", "board": "star", "risk_level": 4}"#,
    r#"{"type": "set_prev_close", "command_id": "C2", "instrument": "688981.SH", "trade_date": "2024-03-04", "price": "40.00"}"#,
    r#"{"type": "open_account", "command_id": "C3", "account_id": "A1", "customer_name": "Customer 1", "id_number": "455200494606748983", "risk_level": 2}"#,
    r#"{"type": "deposit", "command_id": "C4", "account_id": "A1", "amount": "600000.00", "bank_ref": "BD1"}"#,
    r#"{"type": "place_order", "command_id": "C5", "account_id": "A1", "order_id": "O1", "instrument": "688981.SH", "side": "buy", "quantity": 200, "price": "40.00", "trade_date": "2024-03-04"}"#,
];

/// Refused again under a new command id, after the log's last event: nothing else
/// will be written after it, and its alert must still appear.
const LATER_REFUSAL: &str = r#"{"type": "place_order", "command_id": "C6", "account_id": "A1", "order_id": "O2", "instrument": "688981.SH", "side": "buy", "quantity": 200, "price": "40.00", "trade_date": "2024-03-04"}"#;

/// Every alert row as text, in key order.
async fn alerts(db: &TestDatabase) -> Vec<String> {
    use sqlx::{Connection, Row};
    let query = "SELECT alert_id, kind, account_id, COALESCE(command_id, '-'), \
                 COALESCE(CAST(global_position AS TEXT), '-'), COALESCE(CAST(amount AS TEXT), '-'), \
                 COALESCE(message, '-') FROM compliance_alerts ORDER BY alert_id";
    let rows: Vec<Vec<String>> = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query(query).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.get::<String, _>(i)).collect())
                .collect()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query(query).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.get::<String, _>(i)).collect())
                .collect()
        }
    };
    rows.into_iter().map(|row| row.join(" | ")).collect()
}

#[tokio::test]
async fn aml_flags_and_refused_suitability_are_alerted_once() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = connect(&db.url).await.unwrap();
        exec(Arc::clone(&store), &SETUP).await;
        // A resubmitted command id is a duplicate: no second refusal, no second alert.
        exec(Arc::clone(&store), &SETUP[4..]).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let first = alerts(&db).await;
        assert_eq!(first.len(), 2, "{backend:?}: {first:#?}");
        assert!(
            first[0].starts_with("command:C5 | suitability_refused | A1 | C5 | - | - | 688981.SH has risk level 4"),
            "{backend:?}: {}",
            first[0]
        );
        // List, close, open and the deposit are positions 1 to 4; the deposit's flag is 5.
        assert!(
            first[1].starts_with("event:5 | large_cash_movement | A1 | - | 5 | 600000.00"),
            "{backend:?}: {}",
            first[1]
        );

        exec(Arc::clone(&store), &[LATER_REFUSAL]).await;
        let applied = run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(applied, 0, "{backend:?}: a refusal writes no event");
        let second = alerts(&db).await;
        assert_eq!(second.len(), 3, "{backend:?}: {second:#?}");
        assert!(
            second[1].starts_with("command:C6 | suitability_refused | A1 | C6"),
            "{backend:?}"
        );

        // Reruns and a rebuild from zero raise nothing twice and lose nothing.
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(alerts(&db).await, second, "{backend:?}: rerun");
        rebuild_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(alerts(&db).await, second, "{backend:?}: rebuild");
    }
}

#[tokio::test]
async fn an_alert_is_recorded_at_its_source_in_the_store_s_own_form() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = connect(&db.url).await.unwrap();
        exec(Arc::clone(&store), &SETUP).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let query = "SELECT CAST(a.recorded_at AS TEXT), CAST(o.recorded_at AS TEXT), CAST(e.recorded_at AS TEXT) \
                     FROM compliance_alerts a, compliance_alerts f, command_outcomes o, events e \
                     WHERE a.alert_id = 'command:C5' AND o.command_id = 'C5' \
                     AND f.alert_id = 'event:5' AND e.global_position = 5 AND f.recorded_at = e.recorded_at";
        use sqlx::{Connection, Row};
        let row: Vec<String> = match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                let row = sqlx::query(query).fetch_one(&mut conn).await.unwrap();
                (0..3).map(|i| row.get::<String, _>(i)).collect()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                let row = sqlx::query(query).fetch_one(&mut conn).await.unwrap();
                (0..3).map(|i| row.get::<String, _>(i)).collect()
            }
        };
        assert_eq!(
            row[0], row[1],
            "{backend:?}: a refusal's alert is recorded when the refusal was"
        );
        if matches!(backend, Backend::Sqlite) {
            assert!(row[0].ends_with('Z') && row[2].ends_with('Z'), "{backend:?}: {row:?}");
        }
    }
}
