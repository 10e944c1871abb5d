//! Batched appends answer per command: a conflict or a duplicate in one command
//! of the batch fails that command only (`append_each`), or the whole batch (`append`).

use std::sync::Arc;

use ledger_eventstore::{connect, CommandRecord, EventStore, StoreError, StreamId};
use ledger_testkit::{TestDatabase, BACKENDS};

fn command(id: &str, stream: &str, expected_sequence: u64, events: usize) -> CommandRecord {
    ledger_testkit::tick_command(id, stream, expected_sequence, events)
}

async fn store_with_a_and_b(db: &TestDatabase) -> Arc<dyn EventStore> {
    let store = connect(&db.url).await.unwrap();
    store
        .append(&[command("c1", "a", 0, 2), command("c2", "b", 0, 1)])
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn a_conflict_fails_only_its_command_with_append_each() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = store_with_a_and_b(&db).await;
        let results = store
            .append_each(&[
                command("c3", "a", 2, 1), // right: a is at 2
                command("c4", "b", 0, 1), // stale: b is at 1
                command("c5", "c", 0, 2), // new stream
                command("c1", "d", 0, 1), // command id already stored
                command("c6", "a", 3, 1), // expects c3's event, earlier in the batch
                command("c6", "e", 0, 1), // same command id twice in the batch
            ])
            .await
            .unwrap();
        let verdicts: Vec<&str> = results
            .iter()
            .map(|r| match r {
                Ok(_) => "ok",
                Err(StoreError::Conflict { .. }) => "conflict",
                Err(StoreError::DuplicateCommand(_)) => "duplicate",
                Err(_) => "other",
            })
            .collect();
        assert_eq!(
            verdicts,
            vec!["ok", "conflict", "ok", "duplicate", "ok", "duplicate"],
            "{backend:?}"
        );
        match &results[1] {
            Err(StoreError::Conflict { expected, actual, .. }) => assert_eq!((*expected, *actual), (0, 1)),
            other => panic!("{other:?}"),
        }
        // Written: 3 events before, then c3 (1), c5 (2), c6 (1), at consecutive positions.
        assert_eq!(store.head_position().await.unwrap(), 7);
        let positions: Vec<(Option<u64>, Option<u64>)> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|o| (o.first_position, o.last_position))
            .collect();
        assert_eq!(
            positions,
            vec![(Some(4), Some(4)), (Some(5), Some(6)), (Some(7), Some(7))]
        );
        let a: Vec<u64> = store
            .load_stream(&StreamId::new("Test", "a"))
            .await
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(a, vec![1, 2, 3, 4]);
        assert!(store.load_stream(&StreamId::new("Test", "d")).await.unwrap().is_empty());
        let totals = store.outcome_totals().await.unwrap();
        assert_eq!(
            (totals.commands, totals.events_claimed, totals.highest_position),
            (5, 7, 7)
        );
    }
}

#[tokio::test]
async fn a_conflict_fails_the_whole_batch_with_append() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = store_with_a_and_b(&db).await;
        let error = store
            .append(&[command("c3", "a", 2, 1), command("c4", "b", 0, 1)])
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Conflict { .. }), "{backend:?}: {error}");
        assert_eq!(
            store.head_position().await.unwrap(),
            3,
            "nothing of the batch was written"
        );
        assert!(store.find_outcomes(&["c3".into()]).await.unwrap().is_empty());
    }
}
