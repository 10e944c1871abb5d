//! The queue's limit and the graceful shutdown, on every backend. The engine is held
//! at its commit by another writer holding the store's append lock (as a second
//! `ledger exec` would), so requests stay queued as long as the test needs.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{account, deposit, events_by_command, start, Answer};
use ledger_server::ServerOptions;
use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;

/// The queue's limit for the test: small, so it fills.
const QUEUE_COMMANDS: usize = 4;
/// Requests sent at once while the engine is held.
const REQUESTS: usize = 24;
/// How long the test waits for the queue to fill, at most.
const FILL_WAIT_MS: u64 = 20_000;

async fn overload_then_shutdown_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let mut server = start(
        &db,
        ServerOptions {
            queue_commands: QUEUE_COMMANDS,
            ..ServerOptions::default()
        },
    )
    .await;
    server.batch(&common::setup_lines(1)).await;

    let other_writer = ledger_app::open_store(&db.url).await.unwrap();
    let lock = other_writer.lock_appends().await.unwrap();
    let client = server.client.clone();
    let url = server.url("/v1/commands");
    let sent: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let request = client
                .post(&url)
                .header("content-type", "application/json")
                .header("idempotency-key", format!("q-{i}"))
                .body(deposit(&account(0), "10.00", &format!("Q{i}")));
            tokio::spawn(async move {
                match request.send().await {
                    Ok(response) => Some(Answer::of(response).await),
                    Err(_) => None,
                }
            })
        })
        .collect();

    // The engine holds one batch at its commit; the queue fills behind it, and every
    // request that does not fit is answered at once, while the engine is still held.
    let waited = std::time::Instant::now();
    loop {
        let health: Value = client
            .get(server.url("/v1/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let waiting = sent.iter().filter(|handle| !handle.is_finished()).count();
        if health["queue_depth_commands"] == QUEUE_COMMANDS && waiting <= 2 * QUEUE_COMMANDS {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_millis(FILL_WAIT_MS),
            "the queue never filled: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Stop while requests are queued, then let the engine commit: each is answered.
    server.signal_stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.release().await;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut overloaded = 0;
    for (i, handle) in sent.into_iter().enumerate() {
        let key = format!("q-{i}");
        match handle.await.unwrap() {
            Some(answer) if answer.status == 503 => {
                answer.assert_problem(503, "overloaded");
                assert_eq!(answer.retry_after.as_deref(), Some("1"));
                overloaded += 1;
                refused.push(key);
            }
            Some(answer) => {
                assert_eq!(
                    (answer.status, answer.str("status")),
                    (200, "accepted"),
                    "{:?}",
                    answer.body
                );
                accepted.push(key);
            }
            // Sent after the server stopped listening: never received.
            None => refused.push(key),
        }
    }
    assert!(
        accepted.len() > QUEUE_COMMANDS,
        "the batch in flight and the full queue were answered: {accepted:?}"
    );
    assert!(
        refused.len() >= REQUESTS - 2 * QUEUE_COMMANDS,
        "what did not fit was refused"
    );
    let store = Arc::clone(&server.store);
    server.stop().await;

    let logged = events_by_command(store.as_ref()).await;
    for key in &accepted {
        assert_eq!(logged.get(key), Some(&1), "{key} answered 200 and logged once");
    }
    for key in &refused {
        assert!(!logged.contains_key(key), "{key} was refused and wrote nothing");
    }
    common::assert_verifies(store.as_ref()).await;

    // Each answer, 503s included, is a row of the access log, written before the stop ended.
    let rows = ledger_app::access::read_access_log(store.as_ref(), 0, 1000)
        .await
        .unwrap();
    let count = |status: u16, code: &str| {
        rows.iter()
            .filter(|r| r.entry.action == "POST /v1/commands deposit")
            .filter(|r| (r.entry.status, r.entry.code.as_str()) == (status, code))
            .filter(|r| r.entry.principal.as_ref().is_some_and(|c| c.name == "operations"))
            .count()
    };
    assert_eq!(count(503, "overloaded"), overloaded);
    assert_eq!(count(200, "accepted"), accepted.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_503_at_once_and_shutdown_answers_what_is_queued() {
    for backend in BACKENDS {
        overload_then_shutdown_on(backend).await;
    }
}

/// A commit whose answer is lost (the connection dropped after the commit): that batch is
/// answered 503 `database_lost` with Retry-After, the server goes on with a fresh engine,
/// and the same request resent is the first outcome, `duplicate`.
#[tokio::test]
async fn a_lost_database_is_a_503_and_the_server_goes_on() {
    use std::sync::atomic::{AtomicBool, Ordering};

    use ledger_testkit::faults::{Fault, FaultyStore, StoreCall};

    let db = TestDatabase::fresh(ledger_testkit::Backend::Sqlite).await;
    let fail_next_append = Arc::new(AtomicBool::new(false));
    let plan_flag = Arc::clone(&fail_next_append);
    let plan = Box::new(move |call: StoreCall| {
        if call == StoreCall::Append && plan_flag.swap(false, Ordering::SeqCst) {
            Fault::AfterCommit
        } else {
            Fault::Pass
        }
    });
    let inner = ledger_app::open_store(&db.url).await.unwrap();
    let server = common::start_on(Arc::new(FaultyStore::new(inner, plan)), ServerOptions::default()).await;
    server.batch(&common::setup_lines(1)).await;

    fail_next_append.store(true, Ordering::SeqCst);
    let lost = server
        .command(&deposit(&account(0), "5.00", "L1"), Some("lost-1"))
        .await;
    lost.assert_problem(503, "database_lost");
    assert_eq!(lost.retry_after.as_deref(), Some("1"));

    let resent = server
        .command(&deposit(&account(0), "5.00", "L1"), Some("lost-1"))
        .await;
    assert_eq!(
        (resent.status, resent.str("status")),
        (200, "duplicate"),
        "{:?}",
        resent.body
    );
    assert_eq!(resent.body["first_status"], "accepted");
    let next = server
        .command(&deposit(&account(0), "6.00", "L2"), Some("lost-2"))
        .await;
    assert_eq!((next.status, next.str("status")), (200, "accepted"), "{:?}", next.body);
    let logged = events_by_command(server.store.as_ref()).await;
    assert_eq!((logged.get("lost-1"), logged.get("lost-2")), (Some(&1), Some(&1)));
    common::assert_verifies(server.store.as_ref()).await;
    server.stop().await;
}
