//! The binary on both backends: `ledger exec` and `ledger demo` give the same
//! balances, positions and hash chain on PostgreSQL as on SQLite.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::path::Path;
use std::process::{Command, Output};

use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use serde_json::Value;

mod common;
use common::ledger_ok;

fn hashes(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["hash"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn exec_gives_the_same_read_outs_and_chain_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    let mut results = Vec::new();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        ledger_ok(
            dir.path(),
            &db.url,
            &["exec", file.to_str().unwrap(), "--recorded-at", "2024-03-04T01:30:00Z"],
        );
        let balances = ledger_ok(dir.path(), &db.url, &["balances", "--json"]).stdout;
        let positions = ledger_ok(dir.path(), &db.url, &["positions", "--json"]).stdout;
        let chain = hashes(&ledger_ok(dir.path(), &db.url, &["events", "--json"]));
        let verified = ledger_ok(dir.path(), &db.url, &["verify"]);
        assert!(String::from_utf8_lossy(&verified.stdout).contains("OK:"), "{backend:?}");
        results.push((balances, positions, chain));
    }
    assert_eq!(results[0].0, results[1].0, "balances");
    assert_eq!(results[0].1, results[1].1, "positions");
    assert_eq!(results[0].2.len(), 169);
    assert_eq!(results[0].2, results[1].2, "hash chain");
}

#[tokio::test]
async fn the_demo_writes_the_same_log_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut heads = Vec::new();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let out = ledger_ok(dir.path(), &db.url, &["demo", "--accounts", "40", "--seed", "11"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("Invariants hold for all 40 accounts"));
        let verified = ledger_ok(dir.path(), &db.url, &["verify", "--json"]);
        let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
        assert_eq!(report["problem_count"], 0, "{backend:?}: {report}");
        let balances = ledger_ok(dir.path(), &db.url, &["balances", "--json"]).stdout;
        heads.push((report["head_hash"].clone(), report["events"].clone(), balances));
        if backend == Backend::Postgres {
            assert!(db.url.starts_with("postgres://"));
        }
    }
    assert_eq!(heads[0], heads[1], "same seed, same log, same head hash");
}

#[test]
fn an_unreachable_postgres_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .current_dir(dir.path())
        .args(["--db", "postgres://postgres:secret@127.0.0.1:1/none", "balances"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("cannot reach the database") && message.contains("pg_ctlcluster"),
        "{message}"
    );
    assert!(
        !message.contains("secret"),
        "the password stays out of messages: {message}"
    );
}

#[tokio::test]
async fn reconciliation_finds_exactly_the_planted_breaks() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::fresh(backend).await;
        let out = ledger_ok(dir.path(), &db.url, &["demo", "--accounts", "25", "--seed", "3"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("planted 3 breaks, found exactly those 3"),
            "{backend:?}"
        );
        let (bank_lines, holding_lines) = undo_the_demos_planted_breaks(dir.path(), &db.url);
        std::fs::write(dir.path().join("agreeing-bank.csv"), bank_lines.join("\n")).unwrap();
        std::fs::write(dir.path().join("agreeing-depository.csv"), holding_lines.join("\n")).unwrap();

        // Plant three breaks: a wrong bank balance, a missing holding, an account we do not know.
        let mut bank_lines = bank_lines;
        let first_account = bank_lines[1].split(',').next().unwrap().to_owned();
        bank_lines[1] = format!("{first_account},0.01");
        bank_lines.push("Z9999999,100.00".to_owned());
        std::fs::write(dir.path().join("bank.csv"), bank_lines.join("\n")).unwrap();
        let mut holding_lines = holding_lines;
        let removed = holding_lines.remove(1);
        std::fs::write(dir.path().join("depository.csv"), holding_lines.join("\n")).unwrap();

        let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .current_dir(dir.path())
            .args([
                "--db",
                &db.url,
                "reconcile",
                "--date",
                "2024-03-05",
                "--bank",
                "bank.csv",
            ])
            .args(["--depository", "depository.csv", "--json"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "breaks exit 1: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(answer["trade_date"], "2024-03-05", "{backend:?}");
        assert!(answer["as_of_position"].as_u64().unwrap() > 0, "{backend:?}: {answer}");
        let found: Vec<(String, String, String)> = answer["breaks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["kind"].as_str().unwrap().to_owned(),
                    b["account_id"].as_str().unwrap().to_owned(),
                    b["theirs"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let removed_account = removed.split(',').next().unwrap().to_owned();
        assert_eq!(
            found,
            vec![
                ("cash_differs".to_owned(), first_account.clone(), "0.01".to_owned()),
                (
                    "cash_unknown_to_ledger".to_owned(),
                    "Z9999999".to_owned(),
                    "100.00".to_owned()
                ),
                (
                    "position_missing_at_depository".to_owned(),
                    removed_account,
                    String::new()
                ),
            ],
            "{backend:?}"
        );
        // Files that agree reconcile to zero: the stored breaks of the date are replaced.
        let clean = ledger_ok(
            dir.path(),
            &db.url,
            &[
                "reconcile",
                "--date",
                "2024-03-05",
                "--bank",
                "agreeing-bank.csv",
                "--depository",
                "agreeing-depository.csv",
            ],
        );
        assert!(String::from_utf8_lossy(&clean.stdout).contains("0 breaks"));
    }
}

/// The lines of the demo's bank and depository files with the breaks the demo
/// planted in them undone (learnt by reconciling them): files that agree with the ledger.
fn undo_the_demos_planted_breaks(dir: &Path, db: &str) -> (Vec<String>, Vec<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .current_dir(dir)
        .args(["--db", db, "reconcile", "--date", "2024-03-05"])
        .args([
            "--bank",
            "ledger-demo-bank.csv",
            "--depository",
            "ledger-demo-depository.csv",
            "--json",
        ])
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let planted = &answer["breaks"];
    assert_eq!(
        planted.as_array().unwrap().len(),
        3,
        "the demo plants three breaks: {planted}"
    );
    let read = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (mut bank, mut holdings) = (read("ledger-demo-bank.csv"), read("ledger-demo-depository.csv"));
    for each in planted.as_array().unwrap() {
        let field = |name: &str| each[name].as_str().unwrap().to_owned();
        let (account, ours) = (field("account_id"), field("ours"));
        let of_account = |line: &String| line.starts_with(&format!("{account},"));
        match field("kind").as_str() {
            "cash_differs" => bank
                .iter_mut()
                .filter(|l| of_account(l))
                .for_each(|l| *l = format!("{account},{ours}")),
            "cash_unknown_to_ledger" => bank.retain(|l| !of_account(l)),
            "position_missing_at_depository" => holdings.push(format!("{account},{},{ours}", field("instrument"))),
            other => panic!("the demo plants no {other}"),
        }
    }
    (bank, holdings)
}
