//! The log the replay tests verify: the contract's worked example, run through the
//! engine with a fixed clock so that every backend writes the same log.
//!
//! Each file of replay/tests is a crate of its own that uses some of these helpers only.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ledger_commands::{Ledger, LineRunner};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_testkit::{Backend, TestDatabase};

/// Events the worked example writes.
pub const EXAMPLE_EVENTS: u64 = 169;

/// Runs the worked example into `store`.
pub async fn load_example(store: Arc<dyn EventStore>) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/two-days.jsonl");
    let text = std::fs::read_to_string(file).unwrap();
    run_lines(store, text.lines()).await;
}

/// Runs command-file lines into `store` at a fixed clock.
pub async fn run_lines<'a>(store: Arc<dyn EventStore>, lines: impl Iterator<Item = &'a str>) {
    let mut ledger = Ledger::new(store, Arc::new(MarketRules::china_a_share().unwrap()));
    let at: DateTime<Utc> = "2024-03-04T01:30:00Z".parse().unwrap();
    ledger.set_clock(move || at);
    let mut runner = LineRunner::new(&mut ledger, "test");
    for (index, line) in lines.enumerate() {
        runner.push(index as u64 + 1, line).await.unwrap();
    }
    runner.flush().await.unwrap();
}

/// A fresh database of `backend` holding the worked example.
pub async fn loaded(backend: Backend) -> (TestDatabase, Arc<dyn EventStore>) {
    let db = TestDatabase::fresh(backend).await;
    let store = connect(&db.url).await.unwrap();
    load_example(Arc::clone(&store)).await;
    (db, store)
}
