//! Malformed lines through the binary, on both backends: a malformed line is
//! answered with its line number and never recorded, wherever it was found (the
//! parser, or the rules' bounds in the domain), so its corrected resubmission
//! under the same command id is applied; a line that is not UTF-8 is one
//! malformed answer, and the file goes on.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::path::Path;

use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;

mod common;
use common::{ledger_ok, ledger_on, stderr};

const SETUP: &[&str] = &[
    r#"{"type":"list_instrument","command_id":"S1","instrument":"600519.SH","name":"Kweichow Moutai","board":"main","risk_level":2}"#,
    r#"{"type":"set_prev_close","command_id":"S2","instrument":"600519.SH","trade_date":"2024-03-04","price":"1688.00"}"#,
    r#"{"type":"open_account","command_id":"S3","account_id":"A1","customer_name":"Wang Fang","id_number":"110101199003071234","risk_level":3}"#,
    r#"{"type":"deposit","command_id":"S4","account_id":"A1","amount":"400000.00","bank_ref":"B1"}"#,
];

fn order(command_id: &str, order_id: &str, quantity: u64, price: &str) -> String {
    format!(
        r#"{{"type":"place_order","command_id":"{command_id}","account_id":"A1","order_id":"{order_id}","instrument":"600519.SH","side":"buy","quantity":{quantity},"price":"{price}","trade_date":"2024-03-04"}}"#
    )
}

/// Runs `exec FILE --json` (the file holds `bytes`) and returns every answer.
fn exec(dir: &Path, db: &str, name: &str, bytes: &[u8]) -> Vec<Value> {
    std::fs::write(dir.join(name), bytes).unwrap();
    let out = ledger_on(dir, db, &["exec", name, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn lines_of(lines: &[String]) -> Vec<u8> {
    lines.join("\n").into_bytes()
}

fn setup_and(more: &[String]) -> Vec<String> {
    SETUP
        .iter()
        .map(|l| (*l).to_owned())
        .chain(more.iter().cloned())
        .collect()
}

/// `(line, status, code)` of each answer.
fn summary(answers: &[Value]) -> Vec<(u64, String, String)> {
    answers
        .iter()
        .map(|a| {
            (
                a["line"].as_u64().unwrap(),
                a["status"].as_str().unwrap().to_owned(),
                a["code"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

fn answer(line: u64, status: &str, code: &str) -> (u64, String, String) {
    (line, status.to_owned(), code.to_owned())
}

fn message(answer: &Value) -> &str {
    answer["message"].as_str().unwrap_or("")
}

/// `(order_id, quantity)` of every order in the blotter.
fn orders(dir: &Path, db: &str) -> Vec<(String, u64)> {
    let out = ledger_ok(dir, db, &["orders", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["order_id"].as_str().unwrap().to_owned(),
                r["quantity"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_corrected_line_after_a_malformed_one_in_the_same_file_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let file = lines_of(&setup_and(&[
            order("R-ORD-1", "O1", 0, "1690.00"),
            order("R-ORD-1", "O1", 100, "1690.00"),
            // Above max_price (1,000,000.00) of the rules file.
            order("R-ORD-2", "O2", 100, "2000000.00"),
            order("R-ORD-2", "O2", 100, "1690.00"),
        ]));
        let answers = exec(dir.path(), &db.url, "orders.jsonl", &file);
        assert_eq!(
            summary(&answers)[4..],
            [
                answer(5, "rejected", "malformed"),
                answer(6, "accepted", "-"),
                answer(7, "rejected", "malformed"),
                answer(8, "accepted", "-"),
            ],
            "{backend:?}: {answers:?}"
        );
        assert!(
            message(&answers[4]).starts_with("line 5: ") && message(&answers[4]).contains("quantity"),
            "{}",
            message(&answers[4])
        );
        assert!(
            message(&answers[6]).starts_with("line 7: ") && message(&answers[6]).contains("price"),
            "{}",
            message(&answers[6])
        );
        assert_eq!(answers[4]["command_id"], "R-ORD-1");
        assert_eq!(
            orders(dir.path(), &db.url),
            [("O1".to_owned(), 100), ("O2".to_owned(), 100)],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_corrected_line_in_a_later_run_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let first = exec(
            dir.path(),
            &db.url,
            "first.jsonl",
            &lines_of(&setup_and(&[order("R-ORD-1", "O1", 0, "1690.00")])),
        );
        assert_eq!(summary(&first)[4], answer(5, "rejected", "malformed"), "{backend:?}");
        let second = exec(
            dir.path(),
            &db.url,
            "second.jsonl",
            order("R-ORD-1", "O1", 100, "1690.00").as_bytes(),
        );
        assert_eq!(
            summary(&second),
            [answer(1, "accepted", "-")],
            "{backend:?}: {second:?}"
        );
        assert_eq!(orders(dir.path(), &db.url), [("O1".to_owned(), 100)], "{backend:?}");
        let verified = ledger_ok(dir.path(), &db.url, &["verify"]);
        assert!(String::from_utf8_lossy(&verified.stdout).contains("OK:"), "{backend:?}");
    }
}

#[tokio::test]
async fn a_line_that_is_not_utf8_is_answered_malformed_and_the_file_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let deposit = |id: &str, bank_ref: &str| {
            format!(
                r#"{{"type":"deposit","command_id":"{id}","account_id":"A1","amount":"1.00","bank_ref":"{bank_ref}"}}"#
            )
        };
        // A byte-order mark first (skipped), then valid lines around two that are not UTF-8.
        let mut file = b"\xEF\xBB\xBF".to_vec();
        file.extend(lines_of(&setup_and(&[deposit("C5", "B5")])));
        file.extend(b"\n{\"type\":\"deposit\",\"command_id\":\"C6\",\"account_id\":\"A1\",\"amount\":\"1.00\",\"bank_ref\":\"B\xff\"}\n");
        file.extend(deposit("C7", "B7").as_bytes());
        // The second one ends inside a character.
        file.extend(b"\n\xe4\xb8\n");
        file.extend(deposit("C8", "B8").as_bytes());
        file.push(b'\n');
        let answers = exec(dir.path(), &db.url, "bytes.jsonl", &file);
        assert_eq!(
            summary(&answers),
            [
                answer(1, "accepted", "-"),
                answer(2, "accepted", "-"),
                answer(3, "accepted", "-"),
                answer(4, "accepted", "-"),
                answer(5, "accepted", "-"),
                answer(6, "rejected", "malformed"),
                answer(7, "accepted", "-"),
                answer(8, "rejected", "malformed"),
                answer(9, "accepted", "-"),
            ],
            "{backend:?}: {answers:?}"
        );
        assert!(
            message(&answers[5]).starts_with("line 6: the line is not UTF-8 text"),
            "{}",
            message(&answers[5])
        );
        assert!(
            message(&answers[5]).contains("byte offset 83"),
            "{}",
            message(&answers[5])
        );
        assert!(
            message(&answers[7]).starts_with("line 8: the line is not UTF-8 text"),
            "{}",
            message(&answers[7])
        );
        assert_eq!(answers[5]["command_id"], Value::Null);
        let out = ledger_ok(dir.path(), &db.url, &["balances", "--json"]);
        let balances: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            balances[0]["available"], "400003.00",
            "{backend:?}: every valid line committed"
        );
    }
}
