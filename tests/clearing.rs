//! A trade date's clearing through the binary: `clearing-report` reads without running
//! anything, `eod` and `settle` give one answer for a day already done however it was
//! done, and orders for a closed date are refused.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{ledger_in, stderr, stdout};

const DAY: &str = "2024-03-04";
/// How many lines of the worked example come before its first end_of_day line.
fn day_one_lines(example: &str) -> usize {
    example.lines().position(|l| l.contains(r#""end_of_day""#)).unwrap()
}

/// A ledger holding the worked example's first day, with its end_of_day line or without.
fn example_ledger(with_end_of_day: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl"))
            .unwrap();
    let count = day_one_lines(&example) + usize::from(with_end_of_day);
    let lines: Vec<&str> = example.lines().take(count).collect();
    std::fs::write(dir.path().join("lines.jsonl"), lines.join("\n")).unwrap();
    let run = ledger_in(dir.path(), &["exec", "lines.jsonl"]);
    assert!(run.status.success(), "{}", stderr(&run));
    dir
}

#[test]
fn eod_of_a_day_closed_by_exec_answers_already_closed_every_time() {
    // The first day with its end_of_day line, run through `exec`.
    let dir = example_ledger(true);
    for _ in 0..2 {
        let eod = ledger_in(dir.path(), &["eod", "--date", DAY]);
        assert_eq!(eod.status.code(), Some(0), "{}", stderr(&eod));
        let text = stdout(&eod);
        assert!(text.contains("already closed; nothing changed"), "{text}");
        assert!(text.contains("Clearing report of 2024-03-04"), "{text}");
    }
}

#[test]
fn settle_refused_before_eod_settles_after_it_then_answers_already_settled() {
    let dir = example_ledger(false);
    let early = ledger_in(dir.path(), &["settle", "--date", DAY]);
    assert_eq!(early.status.code(), Some(1));
    assert!(
        stderr(&early).contains("run end_of_day before settle"),
        "{}",
        stderr(&early)
    );

    assert!(ledger_in(dir.path(), &["eod", "--date", DAY]).status.success());
    let settled = ledger_in(dir.path(), &["settle", "--date", DAY, "--json"]);
    assert!(settled.status.success(), "{}", stderr(&settled));
    let answer: Value = serde_json::from_str(&stdout(&settled)).unwrap();
    assert_eq!(answer["status"], "accepted", "{answer}");

    let again = ledger_in(dir.path(), &["settle", "--date", DAY]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        stdout(&again).contains("already settled; nothing changed"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn clearing_report_prints_the_eod_report_and_writes_nothing() {
    let dir = example_ledger(false);
    let eod = ledger_in(dir.path(), &["eod", "--date", DAY, "--json"]);
    assert!(eod.status.success(), "{}", stderr(&eod));
    let eod: Value = serde_json::from_str(&stdout(&eod)).unwrap();
    let head = |dir: &Path| stdout(&ledger_in(dir, &["events", "--json"])).lines().count();
    let before = head(dir.path());

    let read = ledger_in(dir.path(), &["clearing-report", "--date", DAY, "--json"]);
    assert!(read.status.success(), "{}", stderr(&read));
    let read: Value = serde_json::from_str(&stdout(&read)).unwrap();
    assert_eq!(read["report"], eod["report"]);
    assert_eq!(read["trade_date"], DAY);
    assert_eq!(read["day_status"], "cleared");
    let text = stdout(&ledger_in(dir.path(), &["clearing-report", "--date", DAY]));
    assert!(text.contains("Clearing report of 2024-03-04"), "{text}");
    assert!(text.contains("net to CSDC"), "{text}");
    assert_eq!(head(dir.path()), before, "reading the report wrote no event");
}

#[test]
fn clearing_report_refuses_a_database_without_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let read = ledger_in(dir.path(), &["--db", "typo.db", "clearing-report", "--date", DAY]);
    assert_eq!(read.status.code(), Some(2), "{}", stdout(&read));
    assert!(!dir.path().join("typo.db").exists(), "no ledger was created");
}

#[test]
fn an_order_for_a_closed_date_is_refused_with_day_closed() {
    let dir = example_ledger(true);
    let order = r#"{"type": "place_order", "command_id": "LATE1", "account_id": "A0001", "order_id": "O900001", "instrument": "601398.SH", "side": "buy", "quantity": 100, "price": "4.96", "trade_date": "2024-03-04"}"#;
    std::fs::write(dir.path().join("late.jsonl"), order).unwrap();
    let run = ledger_in(dir.path(), &["exec", "late.jsonl", "--json"]);
    let answer: Value = serde_json::from_str(stdout(&run).lines().next().unwrap_or("null")).unwrap();
    assert_eq!(answer["status"], "rejected", "{answer}");
    assert_eq!(answer["code"], "day_closed", "{answer}");
}
