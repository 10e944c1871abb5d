//! Gap-free reading by global position while writers commit concurrently.
//!
//! A reader that asks for "events after P" must never skip an event that
//! commits later with a smaller position. `concurrent_writers_and_a_tailing_reader`
//! runs on every backend; `a_late_commit_is_not_skipped` builds the hazard by hand
//! on PostgreSQL (two transactions committing out of position order) and shows
//! that the naive `global_position > P` query skips the event while the store's
//! `read_after` waits for it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ledger_eventstore::{
    connect, CommandRecord, EventMetadata, EventStore, NewEvent, OutcomeStatus, StreamAppend, StreamId,
};
use ledger_testkit::{Backend, TestDatabase};
use serde_json::json;
use sqlx::{Connection, Row};

const WRITERS: usize = 6;
const BATCHES_PER_WRITER: usize = 40;
const EVENTS_PER_BATCH: usize = 3;

fn command(writer: usize, batch: usize) -> CommandRecord {
    let stream = StreamId::new("Test", format!("w{writer}"));
    CommandRecord {
        metadata: EventMetadata {
            command_id: format!("w{writer}-b{batch}"),
            correlation_id: format!("w{writer}"),
            causation_id: format!("w{writer}-b{batch}"),
            actor: "test".into(),
            recorded_at: Utc::now(),
            business_date: None,
        },
        status: OutcomeStatus::Accepted,
        code: None,
        message: None,
        account_id: None,
        appends: vec![StreamAppend {
            stream,
            expected_sequence: (batch * EVENTS_PER_BATCH) as u64,
            events: (0..EVENTS_PER_BATCH)
                .map(|i| NewEvent {
                    event_type: "Tick".into(),
                    event_version: 1,
                    payload: json!({"i": i}),
                })
                .collect(),
        }],
        request_sha256: None,
    }
}

async fn concurrent_writers_and_a_tailing_reader(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let store: Arc<dyn EventStore> = connect(&db.url).await.unwrap();
    let total = (WRITERS * BATCHES_PER_WRITER * EVENTS_PER_BATCH) as u64;

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            for batch in 0..BATCHES_PER_WRITER {
                store.append(&[command(writer, batch)]).await.unwrap();
            }
        }));
    }
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut seen = Vec::with_capacity(total as usize);
            let mut previous_hash = ledger_eventstore::chain::GENESIS_HASH.to_owned();
            let mut after = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while (seen.len() as u64) < total {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the reader saw {} of {total} events",
                    seen.len()
                );
                let events = store.read_after(after, 7).await.unwrap();
                for event in &events {
                    // Every position exactly once and in order: the next one is always last + 1.
                    assert_eq!(
                        event.global_position,
                        after + 1,
                        "the reader skipped or repeated a position"
                    );
                    // And the chain links up as it is read, across every writer's batches.
                    assert_eq!(
                        event.prev_hash, previous_hash,
                        "chain broken at {}",
                        event.global_position
                    );
                    previous_hash = event.hash.clone();
                    after = event.global_position;
                    seen.push(event.global_position);
                }
                if events.is_empty() {
                    tokio::task::yield_now().await;
                }
            }
            seen
        })
    };
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    assert_eq!(store.head_position().await.unwrap(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_a_tailing_reader_sqlite() {
    concurrent_writers_and_a_tailing_reader(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_a_tailing_reader_postgres() {
    concurrent_writers_and_a_tailing_reader(Backend::Postgres).await;
}

/// Inserts one event row by hand, as a writer that bypasses the store's lock would.
async fn raw_insert(conn: &mut sqlx::PgConnection, position: i64) {
    sqlx::query(
        "INSERT INTO events (global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, command_id, correlation_id, causation_id, actor, recorded_at, prev_hash, hash) \
         VALUES ($1, 'Test', $2, 1, 'Tick', 1, '{}', $2, $2, $2, 'test', now(), '', '')",
    )
    .bind(position)
    .bind(format!("raw{position}"))
    .execute(conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_late_commit_is_not_skipped() {
    let db = TestDatabase::fresh(Backend::Postgres).await;
    let store = connect(&db.url).await.unwrap();

    // Transaction A takes position 1 and stays open; transaction B takes position 2 and commits.
    let mut a = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut b = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut a).await.unwrap();
    raw_insert(&mut a, 1).await;
    sqlx::query("BEGIN").execute(&mut b).await.unwrap();
    raw_insert(&mut b, 2).await;
    sqlx::query("COMMIT").execute(&mut b).await.unwrap();

    // The naive reader sees position 2 now; its checkpoint moves to 2 and position 1,
    // committed a moment later, is never read: this is the gap.
    let mut naive = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let visible: Vec<i64> = sqlx::query("SELECT global_position FROM events WHERE global_position > 0 ORDER BY 1")
        .fetch_all(&mut naive)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(visible, vec![2], "the naive query sees the later position first");

    // The store's reader holds position 2 back while the older transaction is in flight.
    let held_back = store.read_after(0, 100).await.unwrap();
    assert!(
        held_back.is_empty(),
        "read_after must not hand out position 2 before 1 is decided"
    );

    sqlx::query("COMMIT").execute(&mut a).await.unwrap();
    // Other tests' transactions on the same server may hold position 2 back a moment longer.
    let mut positions = Vec::new();
    while positions.len() < 2 {
        let after = positions.last().copied().unwrap_or(0);
        let events = ledger_eventstore::read_towards(store.as_ref(), after, 2, 100)
            .await
            .unwrap();
        positions.extend(events.iter().map(|e| e.global_position));
    }
    assert_eq!(positions, vec![1, 2], "once A commits, both come, in order");
}
