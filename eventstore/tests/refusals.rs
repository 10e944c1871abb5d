//! Refused outcomes that name an account, read through the store's API (the
//! suitability alerts are raised from them): filtered, in byte order of command id,
//! paged after a cursor, bounded, and counted. Run on every backend.

use chrono::{DateTime, Utc};
use ledger_eventstore::{
    connect, CommandRecord, EventMetadata, EventStore, NewEvent, OutcomeStatus, StoreError, StreamAppend, StreamId,
    MAX_REFUSAL_READS,
};
use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::json;

fn at() -> DateTime<Utc> {
    "2024-03-04T01:30:00.123456Z".parse().unwrap()
}

fn command(id: &str, code: Option<&str>, account_id: Option<&str>) -> CommandRecord {
    let accepted = code.is_none();
    CommandRecord {
        metadata: EventMetadata {
            command_id: id.into(),
            correlation_id: id.into(),
            causation_id: id.into(),
            actor: "test".into(),
            recorded_at: at(),
            business_date: None,
        },
        status: if accepted {
            OutcomeStatus::Accepted
        } else {
            OutcomeStatus::Rejected
        },
        code: code.map(str::to_owned),
        message: code.map(|code| format!("refused: {code}")),
        account_id: account_id.map(str::to_owned),
        appends: if accepted {
            vec![StreamAppend {
                stream: StreamId::new("Account", id),
                expected_sequence: 0,
                events: vec![NewEvent {
                    event_type: "Opened".into(),
                    event_version: 1,
                    payload: json!({}),
                }],
            }]
        } else {
            vec![]
        },
        request_sha256: None,
    }
}

/// Four suitability refusals naming an account (ids chosen so that byte order differs
/// from a case-insensitive order), and outcomes that must not be returned.
async fn store_with_refusals(db: &TestDatabase) -> std::sync::Arc<dyn EventStore> {
    let store = connect(&db.url).await.unwrap();
    store
        .append(&[
            command("a-2", Some("suitability"), Some("A1")),
            command("B-1", Some("suitability"), Some("A2")),
            command("a-10", Some("suitability"), Some("A1")),
            command("anonymous", Some("suitability"), None),
            command("funds", Some("insufficient_funds"), Some("A1")),
            command("opened", None, Some("A3")),
            command("Z-9", Some("suitability"), Some("A3")),
        ])
        .await
        .unwrap();
    store
}

fn ids(outcomes: &[ledger_eventstore::StoredOutcome]) -> Vec<&str> {
    outcomes.iter().map(|o| o.command_id.as_str()).collect()
}

#[tokio::test]
async fn refusals_naming_an_account_are_counted_and_paged_in_byte_order() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = store_with_refusals(&db).await;
        assert_eq!(store.count_refusals_naming_account("suitability").await.unwrap(), 4);
        assert_eq!(
            store.count_refusals_naming_account("insufficient_funds").await.unwrap(),
            1
        );
        assert_eq!(store.count_refusals_naming_account("no_such_code").await.unwrap(), 0);

        let first = store.refusals_naming_account("suitability", None, 2).await.unwrap();
        assert_eq!(ids(&first), ["B-1", "Z-9"], "{backend:?}: byte order, upper case first");
        let rest = store
            .refusals_naming_account("suitability", Some("Z-9"), 10)
            .await
            .unwrap();
        assert_eq!(ids(&rest), ["a-10", "a-2"], "{backend:?}");
        let past_the_end = store
            .refusals_naming_account("suitability", Some("a-2"), 10)
            .await
            .unwrap();
        assert!(past_the_end.is_empty(), "{backend:?}");
    }
}

#[tokio::test]
async fn a_refusal_reads_back_as_stored() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = store_with_refusals(&db).await;
        let read = store
            .refusals_naming_account("suitability", Some("B-1"), 1)
            .await
            .unwrap();
        let found = store.find_outcomes(&["Z-9".into()]).await.unwrap();
        assert_eq!(read, [found["Z-9"].clone()], "{backend:?}");
        let refusal = &read[0];
        assert_eq!(refusal.status, OutcomeStatus::Rejected);
        assert_eq!(refusal.account_id.as_deref(), Some("A3"));
        assert_eq!(refusal.message.as_deref(), Some("refused: suitability"));
        assert_eq!((refusal.event_count, refusal.first_position), (0, None));
        assert_eq!(refusal.recorded_at, at());
    }
}

#[tokio::test]
async fn refusal_reads_are_bounded() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = connect(&db.url).await.unwrap();
        let error = store
            .refusals_naming_account("suitability", None, MAX_REFUSAL_READS + 1)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::LimitExceeded { .. }),
            "{backend:?}: {error}"
        );
        let all = store
            .refusals_naming_account("suitability", None, MAX_REFUSAL_READS)
            .await
            .unwrap();
        assert!(all.is_empty());
    }
}
