//! docs/api.md is the public contract of the command file, so it is checked
//! against the binary: every example line it shows is run, in order, on a fresh
//! ledger and answered as the doc says beside it; every command type has an
//! example; every refusal code and every field of the answers and read-outs is
//! documented. Also `ledger exec -` (standard input) and a leading byte-order mark.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use ledger_app::LedgerCommand;
use ledger_domain::RejectCode;
use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;
use strum::{IntoEnumIterator, VariantNames};

mod common;
use common::{ledger_command, ledger_ok};

/// What the doc says a line is answered: a status, and for a refusal its code.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: String,
    code: Option<String>,
}

#[derive(Debug)]
struct Example {
    /// The line of docs/api.md the example is on, to point at it when it fails.
    doc_line: usize,
    text: String,
    answer: Answer,
}

fn api_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The words in backticks on a line: "Answer: `rejected` `lot_size`" → ["rejected", "lot_size"].
fn backticked(line: &str) -> Vec<String> {
    line.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// Every example of the doc: a ```jsonl block of one command line, followed by
/// the line `Answer: ...` naming its status (and code).
fn examples(doc: &str) -> Vec<Example> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```jsonl" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = start
            + lines[start..]
                .iter()
                .position(|l| l.trim() == "```")
                .unwrap_or_else(|| panic!("docs/api.md line {}: the block is not closed", i + 1));
        let block: Vec<&str> = lines[start..end]
            .iter()
            .filter(|l| !l.trim().is_empty())
            .copied()
            .collect();
        assert_eq!(
            block.len(),
            1,
            "docs/api.md line {}: an example block holds one line",
            i + 1
        );
        let answer_line = lines[end + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("docs/api.md line {}: no `Answer:` after the example", start + 1));
        assert!(
            answer_line.starts_with("Answer:"),
            "docs/api.md line {}: the example is followed by `Answer: ...`, not {answer_line:?}",
            start + 1
        );
        let words = backticked(answer_line);
        assert!(
            (1..=2).contains(&words.len()),
            "docs/api.md line {}: {answer_line:?}",
            start + 1
        );
        found.push(Example {
            doc_line: start + 1,
            text: block[0].to_owned(),
            answer: Answer {
                status: words[0].clone(),
                code: words.get(1).cloned(),
            },
        });
        i = end + 1;
    }
    found
}

/// The text of the doc's section `## title`, up to the next `## ` heading.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let heading = format!("\n## {title}\n");
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/api.md has no section `## {title}`"))
        + heading.len();
    let end = doc[start..].find("\n## ").map_or(doc.len(), |n| start + n);
    &doc[start..end]
}

/// `ledger exec -` with `input` on standard input.
fn exec_stdin(dir: &Path, db: &str, input: &[u8]) -> Output {
    let mut child = ledger_command(dir)
        .args(["--db", db, "exec", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ledger binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .expect("the ledger reads its input");
    child.wait_with_output().expect("the ledger binary ends")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

fn keys(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .flat_map(|o| o.as_object().expect("an object").keys().cloned())
        .collect()
}

fn answer_of(value: &Value) -> Answer {
    Answer {
        status: value["status"].as_str().unwrap_or_default().to_owned(),
        code: value["code"].as_str().map(str::to_owned),
    }
}

#[tokio::test]
async fn every_example_line_of_the_doc_is_answered_as_the_doc_says() {
    let doc = api_doc();
    let examples = examples(&doc);
    assert!(!examples.is_empty(), "docs/api.md shows no ```jsonl example");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("examples.jsonl");
    let text: String = examples.iter().map(|e| format!("{}\n", e.text)).collect();
    std::fs::write(&file, text).unwrap();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let answers = json_lines(&ledger_ok(
            dir.path(),
            &db.url,
            &["exec", file.to_str().unwrap(), "--json"],
        ));
        assert_eq!(answers.len(), examples.len(), "{backend:?}: one answer per example");
        for (example, answer) in examples.iter().zip(&answers) {
            assert_eq!(
                answer_of(answer),
                example.answer,
                "{backend:?}: docs/api.md line {}: {}\nanswered {answer}",
                example.doc_line,
                example.text
            );
        }
        // The answers' fields and every read-out's fields are the ones the doc names.
        let answer_fields = section(&doc, "Answers");
        for key in keys(&answers) {
            assert!(
                answer_fields.contains(&format!("`{key}`")),
                "the answer field `{key}` is not in docs/api.md's Answers"
            );
        }
        let read_outs = section(&doc, "Read-outs");
        for command in ["balances", "positions", "orders", "trades"] {
            let output = ledger_ok(dir.path(), &db.url, &[command, "--json"]);
            let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
            assert!(!rows.is_empty(), "{backend:?}: the examples leave some {command}");
            for key in keys(&rows) {
                assert!(
                    read_outs.contains(&format!("`{key}`")),
                    "`ledger {command} --json` gives `{key}`, which docs/api.md's Read-outs does not name"
                );
            }
        }
        let events = json_lines(&ledger_ok(dir.path(), &db.url, &["events", "--json"]));
        for key in keys(&events) {
            assert!(
                read_outs.contains(&format!("`{key}`")),
                "`ledger events --json` gives `{key}`, which docs/api.md's Read-outs does not name"
            );
        }
    }
}

#[test]
fn every_command_type_has_an_example_and_a_section() {
    let doc = api_doc();
    let shown: BTreeSet<String> = examples(&doc)
        .iter()
        .map(|e| {
            let line: Value = serde_json::from_str(&e.text)
                .unwrap_or_else(|err| panic!("docs/api.md line {}: not JSON: {err}", e.doc_line));
            line["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let types = section(&doc, "Command types");
    for &name in LedgerCommand::VARIANTS {
        assert!(shown.contains(name), "docs/api.md has no example line of `{name}`");
        assert!(
            types.contains(&format!("### `{name}`")),
            "docs/api.md's Command types has no heading for `{name}`"
        );
    }
}

#[test]
fn every_refusal_code_is_documented() {
    let doc = api_doc();
    let codes = section(&doc, "Refusal codes");
    for code in RejectCode::iter() {
        assert!(
            codes.contains(&format!("| `{}` |", code.as_str())),
            "the refusal code `{code}` has no row in docs/api.md's Refusal codes"
        );
    }
}

#[test]
fn the_doc_stands_alone() {
    let doc = api_doc();
    assert!(
        !doc.contains("DESIGN.md"),
        "docs/api.md points to DESIGN.md, which is not in the repository"
    );
}

const TWO_LINES: &str = concat!(
    r#"{"type": "open_account", "command_id": "c1", "account_id": "A1", "customer_name": "Li", "id_number": "110101199001011234", "risk_level": 3}"#,
    "\n",
    r#"{"type": "deposit", "command_id": "c2", "account_id": "A1", "amount": "100.00", "bank_ref": "B1"}"#,
    "\n",
);

fn assert_both_accepted(output: &Output) {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answers = json_lines(output);
    let statuses: Vec<Answer> = answers.iter().map(answer_of).collect();
    let accepted = Answer {
        status: "accepted".into(),
        code: None,
    };
    assert_eq!(statuses, vec![accepted.clone(), accepted], "{answers:?}");
}

#[tokio::test]
async fn exec_dash_reads_the_command_file_from_standard_input() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::fresh(backend).await;
        assert_both_accepted(&exec_stdin(dir.path(), &db.url, TWO_LINES.as_bytes()));
        let balances = ledger_ok(dir.path(), &db.url, &["balances", "--json"]);
        let rows: Vec<Value> = serde_json::from_slice(&balances.stdout).unwrap();
        assert_eq!(rows[0]["available"], "100.00", "{backend:?}");
    }
}

#[tokio::test]
async fn a_byte_order_mark_before_the_first_line_is_accepted() {
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), TWO_LINES.as_bytes()].concat();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.jsonl");
    std::fs::write(&file, &with_bom).unwrap();
    let db = TestDatabase::fresh(BACKENDS[0]).await;
    assert_both_accepted(&ledger_ok(
        dir.path(),
        &db.url,
        &["exec", file.to_str().unwrap(), "--json"],
    ));
    let db = TestDatabase::fresh(BACKENDS[0]).await;
    assert_both_accepted(&exec_stdin(dir.path(), &db.url, &with_bom));
}

#[tokio::test]
async fn a_byte_order_mark_after_the_start_is_still_malformed() {
    // Only the file's first bytes may be a mark; inside, it is not JSON.
    let late = r#"{"type": "settle", "command_id": "c3", "trade_date": "2024-03-04"}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("late-bom.jsonl");
    std::fs::write(&file, format!("{TWO_LINES}\u{FEFF}{late}\n")).unwrap();
    let db = TestDatabase::fresh(BACKENDS[0]).await;
    let answers = json_lines(&ledger_ok(
        dir.path(),
        &db.url,
        &["exec", file.to_str().unwrap(), "--json"],
    ));
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[2]["code"], "malformed", "{answers:?}");
}
