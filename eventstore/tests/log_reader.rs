//! The SQLite log read in pages on connections of the store's own (`sqlite_reader.rs`):
//! it must give exactly the rows the file holds, to any number of readers at once,
//! and stay whole when readers give up halfway.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use ledger_eventstore::{connect, Atomicity, EventStore, RawEvent, StoreError};
use ledger_testkit::{sqlite, tick_command};
use sqlx::Row;

const STREAMS: usize = 20;
const EVENTS_PER_COMMAND: usize = 5;
const COMMANDS_PER_STREAM: usize = 4;
const EVENTS: usize = STREAMS * EVENTS_PER_COMMAND * COMMANDS_PER_STREAM;
/// More readers than the store keeps connections for (8), so some wait for one.
const READERS: usize = 40;

async fn a_log_of_ticks(url: &str) -> Arc<dyn EventStore> {
    let store = connect(url).await.unwrap();
    for round in 0..COMMANDS_PER_STREAM {
        let commands: Vec<_> = (0..STREAMS)
            .map(|stream| {
                let expected = (round * EVENTS_PER_COMMAND) as u64;
                tick_command(
                    &format!("s{stream}-r{round}"),
                    &format!("s{stream}"),
                    expected,
                    EVENTS_PER_COMMAND,
                )
            })
            .collect();
        for outcome in store.append_batch(&commands, Atomicity::EachCommand).await.unwrap() {
            outcome.unwrap();
        }
    }
    store
}

async fn read_all(store: &dyn EventStore) -> Vec<RawEvent> {
    let rows = store.read_raw_after(0, EVENTS + 1).await.unwrap();
    rows.into_iter().map(|row| row.unwrap()).collect()
}

#[tokio::test]
async fn every_reader_at_once_reads_the_rows_the_file_holds() {
    let db = sqlite();
    let store = a_log_of_ticks(&db.url).await;
    let reads = join_all((0..READERS).map(|_| read_all(store.as_ref()))).await;

    // The file read by a plain sqlx connection, apart from the store.
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let rows = sqlx::query("SELECT global_position, aggregate_id, sequence, CAST(payload AS BLOB) AS payload, hash FROM events ORDER BY global_position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), EVENTS);
    for events in &reads {
        assert_eq!(events.len(), EVENTS, "every reader reads the whole log");
        for (event, row) in events.iter().zip(&rows) {
            assert_eq!(event.global_position as i64, row.get::<i64, _>("global_position"));
            assert_eq!(event.stream.aggregate_id, row.get::<String, _>("aggregate_id"));
            assert_eq!(event.sequence as i64, row.get::<i64, _>("sequence"));
            assert_eq!(event.payload, row.get::<Vec<u8>, _>("payload"));
            assert_eq!(event.hash, row.get::<String, _>("hash"));
        }
    }
    // A page after a position starts right after it and holds at most its limit.
    let page = store.read_raw_after(10, 7).await.unwrap();
    let positions: Vec<u64> = page.into_iter().map(|row| row.unwrap().global_position).collect();
    assert_eq!(positions, (11..=17).collect::<Vec<u64>>());
}

#[tokio::test]
async fn readers_that_give_up_halfway_leave_the_others_whole() {
    let db = sqlite();
    let store = a_log_of_ticks(&db.url).await;
    for _ in 0..3 {
        // Each of these stops waiting almost at once; its read goes on without it.
        let given_up = (0..READERS).map(|_| tokio::time::timeout(Duration::from_micros(50), read_all(store.as_ref())));
        join_all(given_up).await;
        let reads = join_all((0..READERS).map(|_| read_all(store.as_ref()))).await;
        for events in reads {
            assert_eq!(events.len(), EVENTS);
        }
    }
    assert_eq!(store.read_after(EVENTS as u64 - 1, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_read_that_sqlite_refuses_is_a_database_failure_with_sqlites_words() {
    let db = sqlite();
    let store = a_log_of_ticks(&db.url).await;
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("ALTER TABLE events RENAME TO events_elsewhere")
        .execute(&pool)
        .await
        .unwrap();
    let error = store.read_raw_after(0, 10).await.unwrap_err();
    // Not a lost connection (nothing to retry) and not corrupt data: SQLite's answer.
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    let said = error.to_string();
    assert!(said.contains("SQLite said: no such table: events"), "{said}");
    assert!(said.contains("code 1"), "{said}");
}
