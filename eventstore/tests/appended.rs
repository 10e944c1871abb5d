//! Word of appends: on PostgreSQL a follower waiting with `watch_appends` is woken by
//! another session's append (its notification), long before its wait would end by
//! itself; on SQLite the watch is a short sleep, bounded by the wait asked for.

use std::time::{Duration, Instant};

use ledger_eventstore::appended::SQLITE_FOLLOW_POLL_MS;
use ledger_eventstore::{connect, CommandRecord};
use ledger_testkit::{Backend, TestDatabase};

/// A wait far longer than any notification takes: woken before it, the watch heard the append.
const LONG_WAIT: Duration = Duration::from_secs(60);

fn one_event(id: &str) -> CommandRecord {
    ledger_testkit::tick_command(id, id, 0, 1)
}

#[tokio::test]
async fn a_postgres_follower_is_woken_by_another_sessions_append() {
    let db = TestDatabase::fresh(Backend::Postgres).await;
    let follower = connect(&db.url).await.unwrap();
    let writer = connect(&db.url).await.unwrap();
    let mut watch = follower.watch_appends().await.unwrap();
    let appending = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer.append(&[one_event("c1")]).await.unwrap();
    });
    let began = Instant::now();
    watch.wait(LONG_WAIT).await.unwrap();
    assert!(
        began.elapsed() < LONG_WAIT / 2,
        "woken by the notification, not the end of the wait"
    );
    appending.await.unwrap();
    assert_eq!(
        follower.head_position().await.unwrap(),
        1,
        "the append is visible once woken"
    );
}

#[tokio::test]
async fn a_sqlite_follower_polls_and_never_waits_longer_than_asked() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let store = connect(&db.url).await.unwrap();
    let mut watch = store.watch_appends().await.unwrap();
    let began = Instant::now();
    watch.wait(LONG_WAIT).await.unwrap();
    assert!(
        began.elapsed() < LONG_WAIT / 2,
        "a poll of {SQLITE_FOLLOW_POLL_MS} ms, not the whole wait"
    );
}
