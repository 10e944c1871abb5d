//! The `EventStore` contract, one suite run on every backend: each test body
//! takes a fresh store and is called once per backend by `on_every_backend!`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ledger_eventstore::chain::GENESIS_HASH;
use ledger_eventstore::{
    connect, CommandRecord, EventMetadata, EventStore, NewEvent, OutcomeStatus, StoreError, StreamAppend, StreamId,
    MAX_READ_EVENTS,
};
use ledger_testkit::{Backend, TestDatabase};
use serde_json::json;

macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::run(ledger_testkit::Backend::Sqlite, super::$name).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::run(ledger_testkit::Backend::Postgres, super::$name).await; })*
        }
    };
}

on_every_backend!(
    appends_and_reads_back,
    a_stale_expected_sequence_writes_nothing,
    a_known_command_id_writes_nothing,
    refusals_are_remembered_without_events,
    outcomes_are_found_in_bulk,
    a_batch_longer_than_one_lookup_sees_every_known_id_and_head,
    reads_are_bounded,
    the_log_survives_a_reopen,
    events_cannot_be_updated_or_deleted,
    a_failed_append_releases_the_append_lock,
    a_held_append_lock_holds_off_every_other_append,
    a_released_append_lock_writes_nothing,
);

async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<dyn EventStore>, TestDatabase) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let db = TestDatabase::fresh(backend).await;
    let store = connect(&db.url).await.unwrap();
    assert_eq!(
        store.backend(),
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    body(store, db).await;
}

/// Reads as a tailing reader that knows the head: events held back behind another test's
/// open transaction on the same server are waited for, not missed.
async fn read(
    store: &dyn EventStore,
    after: u64,
    limit: usize,
) -> Result<Vec<ledger_eventstore::RecordedEvent>, StoreError> {
    let head = store.head_position().await?;
    ledger_eventstore::read_towards(store, after, head, limit).await
}

fn at() -> DateTime<Utc> {
    "2024-03-04T01:30:00.123456Z".parse().unwrap()
}

fn business_date() -> chrono::NaiveDate {
    "2024-03-04".parse().unwrap()
}

fn record(id: &str, appends: Vec<StreamAppend>) -> CommandRecord {
    CommandRecord {
        metadata: EventMetadata {
            command_id: id.into(),
            correlation_id: format!("corr-{id}"),
            causation_id: format!("cause-{id}"),
            actor: "tester".into(),
            recorded_at: at(),
            business_date: Some(business_date()),
        },
        status: OutcomeStatus::Accepted,
        code: None,
        message: None,
        account_id: None,
        appends,
        request_sha256: None,
    }
}

fn append(stream: &str, expected_sequence: u64, count: usize) -> StreamAppend {
    StreamAppend {
        stream: StreamId::new("Account", stream),
        expected_sequence,
        events: (0..count)
            .map(|i| NewEvent {
                event_type: "CashDeposited".into(),
                event_version: 1,
                payload: json!({"amount_cny": format!("{i}.00"), "bank_ref": format!("{stream}-{i}")}),
            })
            .collect(),
    }
}

async fn appends_and_reads_back(store: Arc<dyn EventStore>, _db: TestDatabase) {
    let outcomes = store
        .append(&[
            record("c1", vec![append("A1", 0, 2), append("A2", 0, 1)]),
            record("c2", vec![append("A1", 2, 1)]),
        ])
        .await
        .unwrap();
    assert_eq!(
        (
            outcomes[0].first_position,
            outcomes[0].last_position,
            outcomes[0].event_count
        ),
        (Some(1), Some(3), 3)
    );
    assert_eq!(
        (outcomes[1].first_position, outcomes[1].last_position),
        (Some(4), Some(4))
    );

    let a1 = store.load_stream(&StreamId::new("Account", "A1")).await.unwrap();
    assert_eq!(
        a1.iter().map(|e| (e.sequence, e.global_position)).collect::<Vec<_>>(),
        vec![(1, 1), (2, 2), (3, 4)]
    );
    let first = &a1[0];
    assert_eq!(first.metadata.command_id, "c1");
    assert_eq!(first.metadata.correlation_id, "corr-c1");
    assert_eq!(first.metadata.causation_id, "cause-c1");
    assert_eq!(first.metadata.actor, "tester");
    assert_eq!(
        first.metadata.recorded_at,
        at(),
        "recorded_at round-trips at microsecond precision"
    );
    assert_eq!(
        first.metadata.business_date,
        Some(business_date()),
        "the business date round-trips"
    );
    assert_eq!(first.payload, json!({"amount_cny": "0.00", "bank_ref": "A1-0"}));
    assert_eq!(first.prev_hash, GENESIS_HASH);

    let all = read(&*store, 0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "each event chains onto the one before");
    }
    assert_eq!(read(&*store, 2, 1).await.unwrap()[0].global_position, 3);
    assert!(read(&*store, 4, 10).await.unwrap().is_empty());
    assert_eq!(store.head_position().await.unwrap(), 4);
    assert_eq!(
        store.stream_ids("Account").await.unwrap(),
        vec!["A1".to_owned(), "A2".to_owned()]
    );
    assert!(store.stream_ids("Instrument").await.unwrap().is_empty());
    assert!(store
        .load_stream(&StreamId::new("Account", "nobody"))
        .await
        .unwrap()
        .is_empty());
}

async fn a_stale_expected_sequence_writes_nothing(store: Arc<dyn EventStore>, _db: TestDatabase) {
    store.append(&[record("c1", vec![append("A1", 0, 2)])]).await.unwrap();
    let error = store
        .append(&[
            record("c2", vec![append("A2", 0, 1)]),
            record("c3", vec![append("A1", 1, 1)]),
        ])
        .await
        .unwrap_err();
    match error {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => {
            assert_eq!((stream.aggregate_id.as_str(), expected, actual), ("A1", 1, 2));
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        store.head_position().await.unwrap(),
        2,
        "neither command of the batch was written"
    );
    assert!(store
        .find_outcomes(&["c2".into(), "c3".into()])
        .await
        .unwrap()
        .is_empty());
}

async fn a_known_command_id_writes_nothing(store: Arc<dyn EventStore>, _db: TestDatabase) {
    store.append(&[record("c1", vec![append("A1", 0, 1)])]).await.unwrap();
    let error = store
        .append(&[record("c1", vec![append("A2", 0, 1)])])
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::DuplicateCommand(ref id) if id == "c1"),
        "{error}"
    );
    let twice = store
        .append(&[record("c9", vec![append("A3", 0, 1)]), record("c9", vec![])])
        .await
        .unwrap_err();
    assert!(matches!(twice, StoreError::DuplicateCommand(_)), "{twice}");
    assert_eq!(store.head_position().await.unwrap(), 1);
}

async fn refusals_are_remembered_without_events(store: Arc<dyn EventStore>, _db: TestDatabase) {
    let mut refused = record("r1", vec![]);
    refused.status = OutcomeStatus::Rejected;
    refused.code = Some("insufficient_funds".into());
    refused.message = Some("buying needs 1005.06 with fees but only 10.00 is available".into());
    refused.account_id = Some("A1".into());
    let outcome = store.append(&[refused]).await.unwrap().remove(0);
    assert_eq!((outcome.event_count, outcome.first_position), (0, None));
    let found = store.find_outcomes(&["r1".into()]).await.unwrap();
    let stored = &found["r1"];
    assert_eq!(stored.status, OutcomeStatus::Rejected);
    assert_eq!(stored.code.as_deref(), Some("insufficient_funds"));
    assert_eq!(stored.account_id.as_deref(), Some("A1"), "who was refused is kept");
    assert_eq!(stored.recorded_at, at());
    assert_eq!(store.head_position().await.unwrap(), 0);
}

async fn outcomes_are_found_in_bulk(store: Arc<dyn EventStore>, _db: TestDatabase) {
    let records: Vec<CommandRecord> = (0..700)
        .map(|i| record(&format!("k{i}"), vec![append(&format!("S{i}"), 0, 1)]))
        .collect();
    store.append(&records).await.unwrap();
    let mut asked: Vec<String> = (0..700).map(|i| format!("k{i}")).collect();
    asked.extend((0..300).map(|i| format!("unknown{i}")));
    let found = store.find_outcomes(&asked).await.unwrap();
    assert_eq!(
        found.len(),
        700,
        "more ids than one lookup chunk, known and unknown mixed"
    );
    assert_eq!(found["k699"].first_position, Some(700));
    let totals = store.outcome_totals().await.unwrap();
    assert_eq!(
        (totals.commands, totals.events_claimed, totals.highest_position),
        (700, 700, 700)
    );
}

/// On SQLite an append looks its command ids and streams up 500 at a time: the known
/// ids and the heads past the first 500 are found as well as the rest.
async fn a_batch_longer_than_one_lookup_sees_every_known_id_and_head(store: Arc<dyn EventStore>, _db: TestDatabase) {
    let first: Vec<CommandRecord> = (0..700)
        .map(|i| record(&format!("k{i}"), vec![append(&format!("S{i}"), 0, 1)]))
        .collect();
    store.append(&first).await.unwrap();
    let mut second: Vec<CommandRecord> = (0..700)
        .map(|i| record(&format!("n{i}"), vec![append(&format!("S{i}"), 1, 1)]))
        .collect();
    second.push(record("k699", vec![append("T", 0, 1)]));
    second.push(record("stale", vec![append("S650", 1, 1)]));
    let results = store.append_each(&second).await.unwrap();
    for (i, result) in results.iter().take(700).enumerate() {
        let outcome = result.as_ref().unwrap();
        assert_eq!(
            outcome.first_position,
            Some(701 + i as u64),
            "n{i} follows its stream's head"
        );
    }
    assert!(
        matches!(&results[700], Err(StoreError::DuplicateCommand(id)) if id == "k699"),
        "{:?}",
        results[700]
    );
    assert!(
        matches!(
            &results[701],
            Err(StoreError::Conflict {
                expected: 1,
                actual: 2,
                ..
            })
        ),
        "{:?}",
        results[701]
    );
    assert_eq!(store.head_position().await.unwrap(), 1400);
}

async fn reads_are_bounded(store: Arc<dyn EventStore>, _db: TestDatabase) {
    let error = store.read_after(0, MAX_READ_EVENTS + 1).await.unwrap_err();
    assert!(matches!(error, StoreError::LimitExceeded { .. }), "{error}");
}

async fn the_log_survives_a_reopen(store: Arc<dyn EventStore>, db: TestDatabase) {
    store.append(&[record("c1", vec![append("A1", 0, 3)])]).await.unwrap();
    let before = read(&*store, 0, 10).await.unwrap();
    drop(store);
    let reopened = connect(&db.url).await.unwrap();
    assert_eq!(read(&*reopened, 0, 10).await.unwrap(), before);
    assert_eq!(reopened.find_outcomes(&["c1".into()]).await.unwrap().len(), 1);
    reopened
        .append(&[record("c2", vec![append("A1", 3, 1)])])
        .await
        .unwrap();
    assert_eq!(reopened.head_position().await.unwrap(), 4);
}

async fn events_cannot_be_updated_or_deleted(store: Arc<dyn EventStore>, db: TestDatabase) {
    use sqlx::Connection;
    store.append(&[record("c1", vec![append("A1", 0, 1)])]).await.unwrap();
    let statements = ["UPDATE events SET event_type = 'Edited'", "DELETE FROM events"];
    for statement in statements {
        let refused = match db.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                sqlx::raw_sql(statement).execute(&mut conn).await.err()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::raw_sql(statement).execute(&mut conn).await.err()
            }
        };
        let message = refused.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("events are immutable"), "{statement}: {message:?}");
    }
    assert_eq!(read(&*store, 0, 10).await.unwrap()[0].event_type, "CashDeposited");
}

/// A refused append must end its transaction before it returns: left to drop, the
/// transaction keeps the append lock until the pool's background task next runs,
/// which a caller that blocks its thread (as dropping a `TestDatabase` does) never lets
/// happen, so every writer stalls.
async fn a_failed_append_releases_the_append_lock(store: Arc<dyn EventStore>, db: TestDatabase) {
    store.append(&[record("c1", vec![append("A1", 0, 2)])]).await.unwrap();
    let error = store
        .append(&[record("c2", vec![append("A1", 1, 1)])])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error}");
    // Checked from another thread while this one blocks: no await here lets the pool's
    // background tasks run. Other tests' appends may hold the PostgreSQL lock briefly.
    let (backend, url) = (db.backend, db.url.clone());
    let lock_is_free = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for _ in 0..LOCK_ATTEMPTS {
                if append_lock_is_free(backend, &url).await {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(LOCK_RETRY_MS)).await;
            }
            false
        })
    })
    .join()
    .unwrap();
    assert!(lock_is_free, "the failed append still holds the append lock");
}

/// How long another append is watched waiting while the lock is held.
const HELD_OFF_MS: u64 = 300;

async fn a_held_append_lock_holds_off_every_other_append(store: Arc<dyn EventStore>, db: TestDatabase) {
    let lock = store.lock_appends().await.unwrap();
    // Another writer, with connections of its own, as another process would be.
    let other = connect(&db.url).await.unwrap();
    let waiting = tokio::spawn(async move { other.append(&[record("other", vec![append("A2", 0, 1)])]).await });
    tokio::time::sleep(std::time::Duration::from_millis(HELD_OFF_MS)).await;
    assert!(!waiting.is_finished(), "an append went ahead while the lock was held");
    // Reads go on beside the lock.
    assert_eq!(store.head_position().await.unwrap(), 0);
    let mine = lock.append(&[record("mine", vec![append("A1", 0, 2)])]).await.unwrap();
    assert_eq!((mine[0].first_position, mine[0].last_position), (Some(1), Some(2)));
    let theirs = waiting.await.unwrap().unwrap();
    assert_eq!(
        theirs[0].first_position,
        Some(3),
        "the other append waited, then went after"
    );
}

async fn a_released_append_lock_writes_nothing(store: Arc<dyn EventStore>, _db: TestDatabase) {
    store.lock_appends().await.unwrap().release().await;
    assert_eq!(store.head_position().await.unwrap(), 0);
    let appended = store.append(&[record("c1", vec![append("A1", 0, 1)])]).await.unwrap();
    assert_eq!(appended[0].first_position, Some(1), "the lock is free again");
    // A lock whose append is refused writes nothing either, and lets go.
    let lock = store.lock_appends().await.unwrap();
    let error = lock
        .append(&[record("c2", vec![append("A1", 0, 1)])])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error}");
    assert_eq!(store.head_position().await.unwrap(), 1);
    store.append(&[record("c3", vec![append("A1", 1, 1)])]).await.unwrap();
}

const LOCK_ATTEMPTS: u32 = 100;
const LOCK_RETRY_MS: u64 = 20;

async fn append_lock_is_free(backend: Backend, url: &str) -> bool {
    use sqlx::Connection;
    use std::str::FromStr;
    match backend {
        Backend::Sqlite => {
            // No waiting: BEGIN IMMEDIATE fails at once while another transaction writes.
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .unwrap()
                .busy_timeout(std::time::Duration::ZERO);
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE; ROLLBACK")
                .execute(&mut conn)
                .await
                .is_ok()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_xact_lock($1)")
                .bind(ledger_eventstore::POSTGRES_APPEND_LOCK_KEY)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    }
}
