//! A command that came as a request body carries the body's digest, recorded with its
//! outcome in the batch's transaction: the same command id with the same body is a
//! duplicate, with another body `idempotency_key_reused` (nothing decided), in the same
//! batch, in a later one, after a restart and from another writer, on both backends.

use std::sync::Arc;

use ledger_commands::{parse_line, Ledger, LedgerCommand, Status, Submission, KEY_REUSED_CODE};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use rust_decimal::Decimal;

const SETUP: &[&str] = &[
    r#"{"type":"open_account","command_id":"S1","account_id":"A1","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#,
];

fn rules() -> Arc<MarketRules> {
    Arc::new(MarketRules::china_a_share().unwrap())
}

/// A deposit sent as a request whose body has digest `body` (`None`: a command-file line).
fn deposit(command_id: &str, amount: &str, body: Option<&str>) -> Submission {
    let line = format!(
        r#"{{"type":"deposit","command_id":"{command_id}","account_id":"A1","amount":"{amount}","bank_ref":"R-{command_id}-{amount}"}}"#
    );
    let mut submission = Submission::new(parse_line(&line).unwrap(), "test");
    submission.request_sha256 = body.map(str::to_owned);
    submission
}

async fn fresh(backend: Backend) -> (TestDatabase, Arc<dyn EventStore>, Ledger) {
    let db = TestDatabase::fresh(backend).await;
    let store = connect(&db.url).await.unwrap();
    let mut ledger = Ledger::new(Arc::clone(&store), rules());
    let setup: Vec<Submission> = SETUP
        .iter()
        .map(|l| Submission::new(parse_line(l).unwrap(), "test"))
        .collect();
    let results = ledger.execute(&setup).await.unwrap();
    assert!(results.iter().all(|r| r.status == Status::Accepted), "{results:?}");
    (db, store, ledger)
}

fn statuses(results: &[ledger_commands::CommandResult]) -> Vec<(Status, Option<&str>)> {
    results.iter().map(|r| (r.status, r.code.as_deref())).collect()
}

#[tokio::test]
async fn the_same_id_with_another_body_is_refused_in_a_batch_across_batches_and_restarts() {
    for backend in BACKENDS {
        let (db, store, mut ledger) = fresh(backend).await;
        let results = ledger
            .execute(&[
                deposit("K1", "5.00", Some("aaa")),
                deposit("K1", "6.00", Some("bbb")),
                deposit("K1", "5.00", Some("aaa")),
            ])
            .await
            .unwrap();
        assert_eq!(
            statuses(&results),
            vec![
                (Status::Accepted, None),
                (Status::Rejected, Some(KEY_REUSED_CODE)),
                (Status::Duplicate, None)
            ],
            "{backend:?}"
        );
        assert!(results[1].is_key_reused() && results[1].events == 0);
        let head = store.head_position().await.unwrap();
        let stored = store.find_outcomes(&["K1".to_owned()]).await.unwrap();
        assert_eq!(stored["K1"].request_sha256.as_deref(), Some("aaa"), "{backend:?}");

        // A later batch, then another engine on the same log (a restart, another writer).
        let again = ledger
            .execute(&[deposit("K1", "6.00", Some("bbb")), deposit("K1", "5.00", Some("aaa"))])
            .await
            .unwrap();
        assert_eq!(
            statuses(&again),
            vec![(Status::Rejected, Some(KEY_REUSED_CODE)), (Status::Duplicate, None)]
        );
        let mut restarted = Ledger::new(Arc::clone(&store), rules());
        let after_restart = restarted.execute(&[deposit("K1", "6.00", Some("bbb"))]).await.unwrap();
        assert!(after_restart[0].is_key_reused(), "{backend:?}: {after_restart:?}");
        assert_eq!(store.head_position().await.unwrap(), head, "nothing was written since");
        drop(db);
    }
}

#[tokio::test]
async fn a_command_without_a_body_has_nothing_to_compare_and_a_malformed_one_binds_nothing() {
    for backend in BACKENDS {
        let (_db, store, mut ledger) = fresh(backend).await;
        // Recorded from a command file (no body): any request with the id is its duplicate.
        let file = ledger.execute(&[deposit("F1", "5.00", None)]).await.unwrap();
        assert_eq!(file[0].status, Status::Accepted);
        let later = ledger
            .execute(&[deposit("F1", "9.00", Some("ccc")), deposit("F1", "5.00", Some("ddd"))])
            .await
            .unwrap();
        assert_eq!(
            statuses(&later),
            vec![(Status::Duplicate, None), (Status::Duplicate, None)]
        );
        // Recorded from a request: a command-file line with the id is its duplicate too.
        ledger.execute(&[deposit("R1", "5.00", Some("eee"))]).await.unwrap();
        let line = ledger.execute(&[deposit("R1", "7.00", None)]).await.unwrap();
        assert_eq!(line[0].status, Status::Duplicate, "{backend:?}");

        // A malformed command is not recorded: its id stays free for another body.
        let head = store.head_position().await.unwrap();
        let mut sub_cent = deposit("M1", "1.00", Some("fff"));
        // A typed command skips the wire's checks: the domain refuses it `malformed`.
        if let LedgerCommand::Deposit { amount_cny, .. } = &mut sub_cent.command {
            *amount_cny = Decimal::new(1, 3);
        }
        let malformed = ledger.execute(&[sub_cent]).await.unwrap();
        assert!(malformed[0].is_malformed(), "{malformed:?}");
        assert_eq!(store.head_position().await.unwrap(), head);
        let corrected = ledger.execute(&[deposit("M1", "1.00", Some("ggg"))]).await.unwrap();
        assert_eq!(corrected[0].status, Status::Accepted, "{backend:?}: {corrected:?}");
    }
}
