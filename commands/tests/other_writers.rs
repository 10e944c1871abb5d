//! An engine beside other writers on the same database, on every backend: it
//! decides on what they appended, not on the state it cached before.

use std::sync::Arc;

use ledger_commands::{parse_line, Ledger, Status, Submission};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_testkit::{TestDatabase, BACKENDS};

fn submit(line: &str) -> Submission {
    Submission::new(parse_line(line).unwrap(), "test")
}

async fn engine(url: &str) -> (Arc<dyn EventStore>, Ledger) {
    let store = connect(url).await.unwrap();
    let rules = Arc::new(MarketRules::china_a_share().unwrap());
    (Arc::clone(&store), Ledger::new(store, rules))
}

async fn run(ledger: &mut Ledger, lines: &[&str]) -> Vec<(Status, Option<String>)> {
    let batch: Vec<Submission> = lines.iter().map(|l| submit(l)).collect();
    let results = ledger.execute(&batch).await.unwrap();
    results.into_iter().map(|r| (r.status, r.code)).collect()
}

#[tokio::test]
async fn an_engine_decides_on_what_another_engine_appended() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (_store, mut mine) = engine(&db.url).await;
        let (store, mut theirs) = engine(&db.url).await;
        let opened = run(
            &mut mine,
            &[
                r#"{"type":"open_account","command_id":"C1","account_id":"A1","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#,
                r#"{"type":"deposit","command_id":"C2","account_id":"A1","amount":"100.00","bank_ref":"B1"}"#,
            ],
        )
        .await;
        assert!(
            opened.iter().all(|(s, _)| *s == Status::Accepted),
            "{backend:?}: {opened:?}"
        );

        // The other engine moves A1 on, which `mine` holds in its cache at 100.00.
        let deposited = run(
            &mut theirs,
            &[r#"{"type":"deposit","command_id":"C3","account_id":"A1","amount":"900.00","bank_ref":"B2"}"#],
        )
        .await;
        assert_eq!(deposited, vec![(Status::Accepted, None)], "{backend:?}");

        // 1,000.00 is there only with the other engine's deposit.
        let withdrawn = run(
            &mut mine,
            &[r#"{"type":"withdraw","command_id":"C4","account_id":"A1","amount":"1000.00","bank_ref":"W1"}"#],
        )
        .await;
        assert_eq!(withdrawn, vec![(Status::Accepted, None)], "{backend:?}");
        // And the other engine, in turn, sees that nothing is left.
        let refused = run(
            &mut theirs,
            &[r#"{"type":"withdraw","command_id":"C5","account_id":"A1","amount":"0.01","bank_ref":"W2"}"#],
        )
        .await;
        assert_eq!(
            refused,
            vec![(Status::Rejected, Some("insufficient_funds".to_owned()))],
            "{backend:?}"
        );
        assert_eq!(store.head_position().await.unwrap(), 4, "{backend:?}");
    }
}

/// An in-memory database has one connection: the append lock must leave it to the reads.
#[tokio::test]
async fn an_in_memory_database_reads_while_its_append_lock_is_held() {
    let store = connect("sqlite::memory:").await.unwrap();
    let lock = store.lock_appends().await.unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), store.head_position()).await;
    assert_eq!(
        read.ok().and_then(Result::ok),
        Some(0),
        "a read waited for the lock's connection"
    );
    lock.release().await;
    let (_store, mut ledger) = (
        Arc::clone(&store),
        Ledger::new(store, Arc::new(MarketRules::china_a_share().unwrap())),
    );
    let open = r#"{"type":"open_account","command_id":"C1","account_id":"A1","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#;
    assert_eq!(run(&mut ledger, &[open]).await, vec![(Status::Accepted, None)]);
}
