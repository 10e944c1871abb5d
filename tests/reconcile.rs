//! `ledger reconcile` through the binary: yesterday's files, reconciled after today's
//! trading, agree with yesterday's close (no false break), and a date not closed yet is
//! refused.

use std::path::Path;

use rust_decimal::Decimal;
use serde_json::Value;

mod common;
use common::{ledger_in, stderr, stdout};

const DAY1: &str = "2024-03-04";
const DAY2: &str = "2024-03-05";

fn ok(dir: &Path, args: &[&str]) -> String {
    let output = ledger_in(dir, args);
    assert!(output.status.success(), "ledger {args:?}: {}", stderr(&output));
    stdout(&output)
}

/// Runs these lines of the worked example through `ledger exec`.
fn exec(dir: &Path, lines: &[&str]) {
    std::fs::write(dir.join("lines.jsonl"), lines.join("\n")).unwrap();
    ok(dir, &["exec", "lines.jsonl"]);
}

/// Writes `bank.csv` and `depository.csv` as the bank and the depository would send them
/// now, from today's read-outs: available + frozen per account, quantity per position.
fn write_files_of_now(dir: &Path) {
    let balances: Value = serde_json::from_str(&ok(dir, &["balances", "--json"])).unwrap();
    let mut bank = String::from("account,balance\n");
    for row in balances.as_array().unwrap() {
        let amount = |field: &str| row[field].as_str().unwrap().parse::<Decimal>().unwrap();
        let cash = amount("available") + amount("frozen");
        bank.push_str(&format!("{},{cash}\n", row["account_id"].as_str().unwrap()));
    }
    let positions: Value = serde_json::from_str(&ok(dir, &["positions", "--json"])).unwrap();
    let mut depository = String::from("account,instrument,quantity\n");
    for row in positions.as_array().unwrap() {
        depository.push_str(&format!(
            "{},{},{}\n",
            row["account_id"].as_str().unwrap(),
            row["instrument"].as_str().unwrap(),
            row["quantity"]
        ));
    }
    std::fs::write(dir.join("bank.csv"), bank).unwrap();
    std::fs::write(dir.join("depository.csv"), depository).unwrap();
}

fn reconcile_json(dir: &Path, date: &str) -> (Option<i32>, Value) {
    let output = ledger_in(
        dir,
        &[
            "reconcile",
            "--date",
            date,
            "--bank",
            "bank.csv",
            "--depository",
            "depository.csv",
            "--json",
        ],
    );
    let answer = serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&output)));
    (output.status.code(), answer)
}

#[test]
fn yesterdays_files_reconciled_after_todays_trading_show_no_false_break() {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl"))
            .unwrap();
    let lines: Vec<&str> = example.lines().collect();
    let close = lines.iter().position(|l| l.contains(r#""end_of_day""#)).unwrap();
    let clearing = |l: &&&str| l.contains(r#""end_of_day""#) || l.contains(r#""settle""#);
    let day2: Vec<&str> = lines[close..].iter().filter(|l| !clearing(l)).copied().collect();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    exec(dir, &lines[..close]);
    // Not closed yet: refused with a sentence saying what to run, exit 2, nothing printed.
    write_files_of_now(dir);
    let early_on_files = ledger_in(
        dir,
        &[
            "reconcile",
            "--date",
            DAY1,
            "--bank",
            "bank.csv",
            "--depository",
            "depository.csv",
        ],
    );
    assert_eq!(early_on_files.status.code(), Some(2));
    assert!(
        stderr(&early_on_files).contains("run `ledger eod --date 2024-03-04` first"),
        "{}",
        stderr(&early_on_files)
    );
    assert_eq!(stdout(&early_on_files), "");

    ok(dir, &["eod", "--date", DAY1]);
    ok(dir, &["settle", "--date", DAY1]);
    write_files_of_now(dir);
    let close_of_day1: Value = serde_json::from_str(&ok(dir, &["verify", "--json"])).unwrap();
    let close_of_day1 = close_of_day1["events"].as_u64().unwrap();

    // Today's trading, closed; yesterday's files still agree with yesterday's close.
    exec(dir, &day2);
    ok(dir, &["eod", "--date", DAY2]);
    let (code, answer) = reconcile_json(dir, DAY1);
    assert_eq!(code, Some(0), "{answer}");
    assert_eq!(answer["breaks"], serde_json::json!([]), "{answer}");
    assert_eq!(answer["trade_date"], DAY1);
    assert_eq!(answer["as_of_position"].as_u64(), Some(close_of_day1), "{answer}");
    let text = ok(
        dir,
        &[
            "reconcile",
            "--date",
            DAY1,
            "--bank",
            "bank.csv",
            "--depository",
            "depository.csv",
        ],
    );
    assert!(
        text.contains(&format!(
            "0 breaks (stored in reconciliation_breaks); ledger as of position {close_of_day1}, the close of {DAY1}"
        )),
        "{text}"
    );

    // The same files are not today's close.
    let (code, answer) = reconcile_json(dir, DAY2);
    assert_eq!(code, Some(1), "{answer}");
    assert!(!answer["breaks"].as_array().unwrap().is_empty(), "{answer}");
    assert!(answer["as_of_position"].as_u64().unwrap() > close_of_day1);

    // Rerun later: the same answer.
    let (_, first) = reconcile_json(dir, DAY1);
    ok(dir, &["settle", "--date", DAY2]);
    assert_eq!(reconcile_json(dir, DAY1).1, first);
}
