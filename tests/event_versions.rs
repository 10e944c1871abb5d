//! Event versions end to end (docs/events.md, "Versioning"). The old log of
//! tests/fixtures, every event at version 1, still replays and verifies with this build:
//! its `OrderPlaced` events stay stored at version 1 with the hashes they were written
//! with, are read as version 2 limit orders, and reach a consumer as stored. A fresh log,
//! and new orders on the old one, store `OrderPlaced` at version 2.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::path::Path;

use ledger_app::stream::envelope::recorded_from_json;
use ledger_domain::{AccountEvent, OrderType};
use ledger_eventstore::codec::decode;
use ledger_eventstore::{open, read_towards, OpenMode, RecordedEvent, MAX_READ_EVENTS};
use serde_json::Value;

mod common;
use common::{ledger_ok, stdout};

/// The old log's head hash, as tests/fixtures/README.md names it: reading the log with a
/// newer build never changes it.
const OLD_LOG_HEAD: &str = "a065c12ed5bece4d359052fa09e5663546efee5f374aeaf3a2de3933bcf78291";
/// How many `OrderPlaced` events the old log holds (tests/fixtures/two-days.events.jsonl).
const OLD_LOG_ORDERS: usize = 31;

fn repo_path(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The whole log as the store holds it, read with the store's own API (not the CLI).
async fn stored_log(db: &str) -> Vec<RecordedEvent> {
    let store = open(db, OpenMode::Existing).await.unwrap();
    let head = store.head_position().await.unwrap();
    let mut log: Vec<RecordedEvent> = Vec::new();
    while (log.len() as u64) < head {
        let after = log.last().map_or(0, |e| e.global_position);
        log.extend(
            read_towards(store.as_ref(), after, head, MAX_READ_EVENTS)
                .await
                .unwrap(),
        );
    }
    log
}

fn order_placed(log: &[RecordedEvent]) -> Vec<&RecordedEvent> {
    log.iter().filter(|e| e.event_type == "OrderPlaced").collect()
}

/// `ledger events --json`, one envelope a line.
fn envelopes(dir: &Path, db: &str) -> Vec<Value> {
    stdout(&ledger_ok(dir, db, &["events", "--json"]))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `ledger verify` passes and names this head hash.
fn verified_head(dir: &Path, db: &str) -> String {
    let out = stdout(&ledger_ok(dir, db, &["verify"]));
    assert!(out.contains("OK:"), "{out}");
    out.lines()
        .find_map(|line| line.strip_prefix("head hash "))
        .unwrap_or_else(|| panic!("verify names the head hash: {out}"))
        .to_owned()
}

/// Decodes as the ledger reads it: an `OrderPlaced` limit order, whatever version it is stored at.
fn assert_read_as_a_limit_order(event: &RecordedEvent) {
    match decode::<AccountEvent>(event) {
        Ok(AccountEvent::OrderPlaced { order_type, .. }) => assert_eq!(order_type, OrderType::Limit),
        other => panic!("position {}: read as {other:?}", event.global_position),
    }
}

#[tokio::test]
async fn the_old_log_keeps_its_version_1_orders_reads_them_as_version_2_and_verifies_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("two-days.sqlite3");
    std::fs::copy(repo_path("tests/fixtures/two-days.sqlite3"), &db_path).unwrap();
    let db = format!("sqlite://{}", db_path.display());
    let readme = std::fs::read_to_string(repo_path("tests/fixtures/README.md")).unwrap();
    assert!(
        readme.contains(OLD_LOG_HEAD),
        "the fixtures' README names the old log's head"
    );

    // Stored at version 1, without `order_type`; read as version 2 limit orders.
    let log = stored_log(&db).await;
    let orders = order_placed(&log);
    assert_eq!(orders.len(), OLD_LOG_ORDERS);
    for event in &orders {
        assert_eq!(event.event_version, 1, "position {}", event.global_position);
        assert!(event.payload.get("order_type").is_none(), "{:?}", event.payload);
        assert_read_as_a_limit_order(event);
    }
    assert!(
        log.iter().all(|e| e.event_version == 1),
        "every event of the old log is at version 1"
    );

    // `verify` replays every event through the upcaster and ends on the same head hash.
    assert_eq!(verified_head(dir.path(), &db), OLD_LOG_HEAD);

    // The as-of replay reads the old orders: the first is open right after it was placed.
    let first = orders[0];
    let state: Value = serde_json::from_str(&stdout(&ledger_ok(
        dir.path(),
        &db,
        &[
            "replay",
            "--as-of-position",
            &first.global_position.to_string(),
            "--json",
        ],
    )))
    .unwrap();
    let open_orders = state["orders"].as_array().unwrap();
    assert!(
        open_orders
            .iter()
            .any(|o| o["order_id"] == first.payload["order_id"] && o["status"] == "open"),
        "{state}"
    );

    // A consumer gets each order as stored: `.v1`, its stored payload, its stored hash.
    let read_out = envelopes(dir.path(), &db);
    for event in &orders {
        let envelope = &read_out[usize::try_from(event.global_position).unwrap() - 1];
        assert_eq!(envelope["type"], "ledger.account.OrderPlaced.v1");
        assert_eq!(envelope["data"], event.payload);
        assert_eq!(envelope["hash"], event.hash.as_str());
        let line = serde_json::to_string(envelope).unwrap();
        assert_eq!(&recorded_from_json(&line).unwrap(), *event);
    }

    // New orders on the old log are stored at version 2, after the old ones, unchanged.
    let more = dir.path().join("more.jsonl");
    std::fs::write(
        &more,
        [
            r#"{"type": "set_prev_close", "command_id": "N1", "instrument": "601398.SH", "trade_date": "2024-03-06", "price": "5.00"}"#,
            r#"{"type": "place_order", "command_id": "N2", "account_id": "A0001", "order_id": "ON1", "instrument": "601398.SH", "side": "buy", "quantity": 100, "price": "5.00", "trade_date": "2024-03-06"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let answers = stdout(&ledger_ok(dir.path(), &db, &["exec", more.to_str().unwrap(), "--json"]));
    assert_eq!(answers.matches("\"accepted\"").count(), 2, "{answers}");
    let after = stored_log(&db).await;
    assert_eq!(&after[..log.len()], &log[..], "the old events are stored as they were");
    let new_orders = order_placed(&after[log.len()..]);
    assert_eq!(new_orders.len(), 1);
    assert_eq!(new_orders[0].event_version, 2);
    assert_eq!(new_orders[0].payload["order_type"], "limit");
    assert_read_as_a_limit_order(new_orders[0]);
    let read_out = envelopes(dir.path(), &db);
    assert_eq!(
        read_out[usize::try_from(new_orders[0].global_position).unwrap() - 1]["type"],
        "ledger.account.OrderPlaced.v2"
    );
    // Both versions verify together, each against the hash it was written with.
    let head = verified_head(dir.path(), &db);
    assert_eq!(head, after.last().unwrap().hash);
    assert_eq!(after[log.len() - 1].hash, OLD_LOG_HEAD);
}

#[tokio::test]
async fn a_fresh_log_stores_every_order_placed_at_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let example = repo_path("tests/conformance/two-days.jsonl");
    ledger_ok(
        dir.path(),
        &db,
        &[
            "exec",
            example.to_str().unwrap(),
            "--recorded-at",
            "2024-03-04T01:30:00Z",
        ],
    );
    let log = stored_log(&db).await;
    let orders = order_placed(&log);
    assert_eq!(orders.len(), OLD_LOG_ORDERS, "the worked example, as in the old log");
    for event in &orders {
        assert_eq!(event.event_version, 2, "position {}", event.global_position);
        assert_eq!(event.payload["order_type"], "limit");
        assert_read_as_a_limit_order(event);
    }
    assert!(
        log.iter()
            .filter(|e| e.event_type != "OrderPlaced")
            .all(|e| e.event_version == 1),
        "every other event type is at version 1"
    );
    assert_eq!(verified_head(dir.path(), &db), log.last().unwrap().hash);
}
