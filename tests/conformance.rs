//! Conformance with the command-file contract: the worked example of
//! `shared/examples` (copied into tests/conformance/) run through the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(name)
}

fn ledger(db: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("the ledger binary runs");
    assert!(
        output.status.success(),
        "ledger {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json_lines(output: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every output line is JSON"))
        .collect()
}

fn json(output: &[u8]) -> Value {
    serde_json::from_slice(output).expect("the read-out is JSON")
}

#[test]
fn the_copy_matches_shared_examples_when_present() {
    // CI clones the project with shared/ beside it; the copy here must not drift from it.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/examples");
    if !shared.exists() {
        return;
    }
    for name in ["two-days.jsonl", "two-days.expected.json"] {
        let ours = std::fs::read(fixture(name)).unwrap();
        let theirs = std::fs::read(shared.join(name)).unwrap();
        assert!(
            ours == theirs,
            "tests/conformance/{name} differs from shared/examples/{name}: copy it again"
        );
    }
}

#[test]
fn two_days_example_gives_the_expected_answers_and_read_outs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("conformance.db");
    let expected = json(&std::fs::read(fixture("two-days.expected.json")).unwrap());

    let answers = json_lines(&ledger(&db, &["exec", fixture("two-days.jsonl").to_str().unwrap(), "--json"]).stdout);
    let expected_results = expected["results"].as_array().unwrap();
    assert_eq!(answers.len(), expected_results.len(), "one answer per line");
    for (answer, want) in answers.iter().zip(expected_results) {
        for field in ["line", "command_id", "status", "code"] {
            assert_eq!(
                answer[field], want[field],
                "line {}: {field} differs; answer {answer}",
                want["line"]
            );
        }
        if answer["status"] == "rejected" {
            let message = answer["message"].as_str().unwrap_or("");
            assert!(
                message.len() > 10,
                "line {}: a refusal says why: {answer}",
                want["line"]
            );
        }
    }

    let balances = json(&ledger(&db, &["balances", "--json"]).stdout);
    assert_eq!(balances, expected["balances"], "balances differ");

    let positions = json(&ledger(&db, &["positions", "--json"]).stdout);
    let positions: Vec<Value> = positions
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut row = row.clone();
            row.as_object_mut().unwrap().remove("avg_cost");
            row
        })
        .collect();
    assert_eq!(Value::Array(positions), expected["positions"], "positions differ");
}

#[test]
fn running_the_same_file_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twice.db");
    let file = fixture("two-days.jsonl");
    ledger(&db, &["exec", file.to_str().unwrap(), "--json"]);
    let events_before = ledger(&db, &["events", "--json"]).stdout;
    let balances_before = ledger(&db, &["balances", "--json"]).stdout;

    let second = json_lines(&ledger(&db, &["exec", file.to_str().unwrap(), "--json"]).stdout);
    for answer in &second {
        let malformed = answer["code"] == "malformed";
        assert!(
            answer["status"] == "duplicate" || malformed,
            "the second run answers duplicate (malformed lines are never recorded): {answer}"
        );
        assert_eq!(answer["events"], 0);
    }
    assert_eq!(
        ledger(&db, &["events", "--json"]).stdout,
        events_before,
        "no event was written"
    );
    assert_eq!(ledger(&db, &["balances", "--json"]).stdout, balances_before);
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, checked section by section
fn the_statement_of_the_worked_example_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("statement.db");
    ledger(&db, &["exec", fixture("two-days.jsonl").to_str().unwrap()]);
    let csv = String::from_utf8(
        ledger(
            &db,
            &[
                "statement",
                "--account",
                "A0001",
                "--from",
                "2024-03-04",
                "--to",
                "2024-03-05",
                "--format",
                "csv",
            ],
        )
        .stdout,
    )
    .unwrap();
    // Opening 0.00, closing the expected balance 47364.50 (no position left after selling all 8,088 shares).
    assert!(
        csv.contains(
            ",A0001,Customer 1,4552**********8983,2024-03-04,2024-03-05,2024-03-05,0.00,47364.50,0.00,47364.50,"
        ),
        "{csv}"
    );
    let movements: Vec<&str> = csv.lines().filter(|l| l.starts_with("movement,")).collect();
    assert_eq!(movements.len(), 9, "a deposit, six buys, a sell, a withdrawal");
    // The sell: 8088 x 5.85 = 47314.80 less fees 38.52 (commission 11.83, stamp duty 23.66, 0.47, 1.61, 0.95).
    assert!(
        movements[7].contains("卖出 Sell,601398.SH,ICBC,8088,5.85,11.83,23.66,0.47,1.61,0.95,47276.28"),
        "{}",
        movements[7]
    );
    assert!(movements.last().unwrap().ends_with("-449.06,47364.50"));
    // The second day alone opens with the first day's closing cash.
    let day_two = String::from_utf8(
        ledger(
            &db,
            &[
                "statement",
                "--account",
                "A0001",
                "--from",
                "2024-03-05",
                "--to",
                "2024-03-05",
                "--format",
                "csv",
            ],
        )
        .stdout,
    )
    .unwrap();
    assert!(
        day_two.contains(",2024-03-05,2024-03-05,2024-03-05,537.28,47364.50"),
        "{day_two}"
    );
    let html = String::from_utf8(
        ledger(
            &db,
            &[
                "statement",
                "--account",
                "A0002",
                "--from",
                "2024-03-04",
                "--to",
                "2024-03-05",
            ],
        )
        .stdout,
    )
    .unwrap();
    assert!(html.contains("对账单 Statement of account A0002") && html.contains("20751.48"));
}
