//! The Python recipe of docs/events.md rechecks the hash chain from
//! `ledger events --json` alone, as an auditor would run it: the script is
//! taken from the doc as written there and run with python3 on real logs.
//!
//! Times whose microseconds end in 0 are the case that broke it once (the
//! read-out shortened `…00.120000Z` to `…00.12Z` while the hash covers the
//! six digits), so every log here holds some.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;

mod common;
use common::ledger_ok;

const RECIPE_HEADING: &str = "### Rechecking the chain yourself";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The first python code block after the recipe's heading, byte for byte.
fn recipe_from_docs() -> String {
    let doc = std::fs::read_to_string(repo_path("docs/events.md")).unwrap();
    let section = doc
        .split_once(RECIPE_HEADING)
        .unwrap_or_else(|| panic!("docs/events.md has the section {RECIPE_HEADING:?}"))
        .1;
    let block = section
        .split_once("```python\n")
        .expect("the section holds a python code block")
        .1;
    let script = block.split_once("\n```").expect("the code block is closed").0;
    format!("{script}\n")
}

/// Runs the doc's script on `events` as its standard input.
fn run_recipe(dir: &Path, events: &[u8]) -> Output {
    let script = dir.join("recheck_chain.py");
    std::fs::write(&script, recipe_from_docs()).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the recipe needs it)");
    child.stdin.take().unwrap().write_all(events).unwrap();
    child.wait_with_output().unwrap()
}

fn assert_recipe_passes(dir: &Path, events: &[u8], what: &str) -> String {
    let out = run_recipe(dir, events);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.starts_with("OK: "),
        "the docs' recipe fails on {what}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Commands with fresh ids, so a second run writes new events at the wall clock;
/// the first one's name needs escaping and UTF-8 in the canonical bytes.
fn wall_clock_commands(dir: &Path) -> PathBuf {
    let path = dir.join("wall-clock.jsonl");
    let open = r#"{"type": "open_account", "command_id": "W000000", "account_id": "A0900", "customer_name": "张三 \"Zhang\" \\ é/", "id_number": "110101199003074578", "risk_level": 3}"#;
    let deposits = (1..=30).map(|n| {
        format!(
            "{{\"type\": \"deposit\", \"command_id\": \"W{n:06}\", \"account_id\": \"A0001\", \
                 \"amount\": \"1.{n:02}\", \"bank_ref\": \"BW{n:06}\"}}"
        )
    });
    let lines: Vec<String> = std::iter::once(open.to_owned()).chain(deposits).collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// A log with a fixed time whose microseconds end in zeros, then 30 events at the wall clock.
fn real_log_events(dir: &Path, db: &str) -> Vec<u8> {
    let two_days = repo_path("tests/conformance/two-days.jsonl");
    ledger_ok(
        dir,
        db,
        &[
            "exec",
            two_days.to_str().unwrap(),
            "--recorded-at",
            "2024-03-04T01:15:00.120000Z",
        ],
    );
    let wall = wall_clock_commands(dir);
    ledger_ok(dir, db, &["exec", wall.to_str().unwrap()]);
    ledger_ok(dir, db, &["events", "--json"]).stdout
}

#[tokio::test]
async fn the_documented_recipe_rechecks_every_event_of_a_real_log() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::fresh(backend).await;
        let events = real_log_events(dir.path(), &db.url);
        let report = assert_recipe_passes(dir.path(), &events, &format!("{backend:?}"));
        let text = String::from_utf8_lossy(&events);
        assert!(
            text.contains("\"time\":\"2024-03-04T01:15:00.120000Z\""),
            "{backend:?}: the read-out shows the six digits that were hashed"
        );
        assert!(
            text.contains(r#""customer_name":"张三 \"Zhang\" \\ é/""#),
            "{backend:?}: the log holds a name that needs escaping"
        );
        let verify = String::from_utf8_lossy(&ledger_ok(dir.path(), &db.url, &["verify"]).stdout).into_owned();
        let head = verify
            .lines()
            .find_map(|line| line.strip_prefix("head hash "))
            .expect("verify prints its head hash");
        assert!(
            report.trim_end().ends_with(&format!("head hash {head}")),
            "{backend:?}: the recipe ends on verify's head hash: {report}"
        );
    }
}

#[tokio::test]
async fn the_documented_recipe_rechecks_every_event_of_the_demo() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::fresh(backend).await;
        ledger_ok(dir.path(), &db.url, &["demo", "--accounts", "5", "--seed", "1"]);
        let events = ledger_ok(dir.path(), &db.url, &["events", "--json"]).stdout;
        assert_recipe_passes(dir.path(), &events, &format!("the demo on {backend:?}"));
    }
}

#[tokio::test]
async fn the_documented_recipe_finds_one_changed_payload_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::fresh(BACKENDS[0]).await;
    let events = String::from_utf8(real_log_events(dir.path(), &db.url)).unwrap();
    let marker = "\"amount_cny\":\"40834.19\"";
    assert!(events.contains(marker), "the first deposit is in the log");
    let tampered = events.replacen(marker, "\"amount_cny\":\"40834.18\"", 1);
    let out = run_recipe(dir.path(), tampered.as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a changed payload fails the recipe: {stdout}"
    );
    assert!(stdout.contains("BROKEN at "), "{stdout}");
    assert!(
        stdout.contains("FAILED: 1 mismatches"),
        "only the changed event breaks: {stdout}"
    );
}

/// The old log's dump is `events --json` in the envelope of its day (before issue 13):
/// the recipe reads today's envelope, so it rechecks the old log from today's read-out
/// of the database beside the dump, and every value of the old dump is in the new
/// read-out under its CloudEvents name.
#[test]
fn the_recipe_rechecks_the_committed_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("two-days.sqlite3");
    std::fs::copy(repo_path("tests/fixtures/two-days.sqlite3"), &db_path).unwrap();
    let db = format!("sqlite://{}", db_path.display());
    let events = ledger_ok(dir.path(), &db, &["events", "--json"]).stdout;
    let report = assert_recipe_passes(dir.path(), &events, "the old log read out today");
    let readme = std::fs::read_to_string(repo_path("tests/fixtures/README.md")).unwrap();
    let head = report.trim_end().rsplit(' ').next().unwrap();
    assert!(
        readme.contains(head),
        "the fixtures' README names the old log's head hash {head}"
    );
    let verify = String::from_utf8_lossy(&ledger_ok(dir.path(), &db, &["verify"]).stdout).into_owned();
    assert!(verify.contains(&format!("head hash {head}")), "{verify}");

    let old_dump = std::fs::read_to_string(repo_path("tests/fixtures/two-days.events.jsonl")).unwrap();
    let new_lines: Vec<&str> = std::str::from_utf8(&events).unwrap().lines().collect();
    assert_eq!(old_dump.lines().count(), new_lines.len());
    for (old, new) in old_dump.lines().zip(new_lines) {
        let (old, new): (Value, Value) = (serde_json::from_str(old).unwrap(), serde_json::from_str(new).unwrap());
        let event_type = old["event_type"].as_str().unwrap();
        let aggregate_type = old["stream"]["aggregate_type"].as_str().unwrap();
        let expected = serde_json::json!({
            "specversion": "1.0",
            "id": old["global_position"].to_string(),
            "source": "/ledger",
            "type": format!("ledger.{}.{event_type}.v{}", aggregate_type.to_lowercase(), old["event_version"]),
            "subject": old["stream"]["aggregate_id"],
            "time": old["metadata"]["recorded_at"],
            "datacontenttype": "application/json",
            "data": old["payload"],
            "position": old["global_position"],
            "sequence": old["sequence"],
            "aggregatetype": aggregate_type,
            "hash": old["hash"],
            "prevhash": old["prev_hash"],
            "commandid": old["metadata"]["command_id"],
            "correlationid": old["metadata"]["correlation_id"],
            "causationid": old["metadata"]["causation_id"],
            "actor": old["metadata"]["actor"],
        });
        assert!(
            old["metadata"]["business_date"].is_null(),
            "the old log has no business dates"
        );
        assert_eq!(new, expected, "every value of the old envelope, under its new name");
    }
}
