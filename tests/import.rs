//! Moving a log: `ledger import` of `ledger events --json` into an empty store, and
//! `ledger migrate-store` between the backends in both directions, keep every event's
//! position, time and hash (the head hashes are equal, the target verifies) and the
//! idempotency of the commands; a file with a changed or missing event, or a target
//! that is not empty, is refused and nothing is written.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::path::{Path, PathBuf};

use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use serde_json::Value;

mod common;
use common::{ledger_ok, ledger_on, stderr, stdout};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl")
}

fn head_hash(dir: &Path, db: &str) -> String {
    let verified = stdout(&ledger_ok(dir, db, &["verify"]));
    assert!(verified.contains("OK:"), "{verified}");
    verified
        .lines()
        .find_map(|l| l.strip_prefix("head hash "))
        .expect("verify prints the head hash")
        .to_owned()
}

fn balances(dir: &Path, db: &str) -> String {
    ledger_ok(dir, db, &["projections", "run"]);
    stdout(&ledger_ok(dir, db, &["balances", "--json"]))
}

#[tokio::test]
async fn an_imported_log_has_the_same_chain_balances_and_idempotency_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("source.db").display());
    ledger_ok(dir.path(), &source, &["exec", example().to_str().unwrap()]);
    let exported = dir.path().join("log.jsonl");
    std::fs::write(&exported, ledger_ok(dir.path(), &source, &["events", "--json"]).stdout).unwrap();
    let source_head = head_hash(dir.path(), &source);
    for backend in BACKENDS {
        let target = TestDatabase::fresh(backend).await;
        let out = ledger_ok(dir.path(), &target.url, &["import", exported.to_str().unwrap()]);
        assert!(
            stdout(&out).contains("imported 169 events of 130 commands"),
            "{}",
            stdout(&out)
        );
        assert_eq!(
            head_hash(dir.path(), &target.url),
            source_head,
            "{backend:?}: the same chain"
        );
        assert_eq!(
            stdout(&ledger_ok(dir.path(), &target.url, &["events", "--json"])),
            std::fs::read_to_string(&exported).unwrap(),
            "{backend:?}: every event as it was"
        );
        assert_eq!(
            balances(dir.path(), &target.url),
            balances(dir.path(), &source),
            "{backend:?}"
        );
        // The first line again: a duplicate, as on the source.
        let first = dir.path().join("first.jsonl");
        std::fs::write(
            &first,
            std::fs::read_to_string(example()).unwrap().lines().next().unwrap(),
        )
        .unwrap();
        let again = stdout(&ledger_ok(
            dir.path(),
            &target.url,
            &["exec", first.to_str().unwrap(), "--json"],
        ));
        assert!(again.contains(r#""status":"duplicate""#), "{backend:?}: {again}");
        // And a target that now holds a log refuses another import.
        let refused = ledger_on(dir.path(), &target.url, &["import", exported.to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(2));
        assert!(
            stderr(&refused).contains("already holds 169 events"),
            "{}",
            stderr(&refused)
        );
    }
}

#[test]
fn a_file_with_a_changed_or_missing_event_is_refused_at_its_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("source.db").display());
    ledger_ok(dir.path(), &source, &["exec", example().to_str().unwrap()]);
    let lines: Vec<String> = stdout(&ledger_ok(dir.path(), &source, &["events", "--json"]))
        .lines()
        .map(str::to_owned)
        .collect();
    let mut changed = lines.clone();
    let mut event: Value = serde_json::from_str(&changed[99]).unwrap();
    event["data"]["edited"] = true.into();
    changed[99] = event.to_string();
    let mut missing = lines.clone();
    missing.remove(49);
    for (name, file_lines, says) in [
        (
            "changed",
            &changed,
            "line 100: position 100: its hash is not the hash of its fields",
        ),
        ("missing", &missing, "line 50: position 51 does not follow position 49"),
    ] {
        let file = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&file, file_lines.join("\n")).unwrap();
        let target = format!("sqlite://{}", dir.path().join(format!("{name}.db")).display());
        let out = ledger_on(dir.path(), &target, &["import", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(stderr(&out).contains(says), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("nothing was imported"), "{name}");
        assert!(
            stdout(&ledger_ok(dir.path(), &target, &["events", "--json"])).is_empty(),
            "{name}: nothing written"
        );
    }
}

#[tokio::test]
async fn migrate_store_moves_a_ledger_between_the_backends_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("from.db").display());
    ledger_ok(dir.path(), &sqlite, &["demo", "--accounts", "8", "--seed", "3"]);
    let postgres = TestDatabase::fresh(Backend::Postgres).await;
    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    for (from, to) in [
        (sqlite.as_str(), postgres.url.as_str()),
        (postgres.url.as_str(), back.as_str()),
    ] {
        let out = ledger_ok(dir.path(), "unused", &["migrate-store", "--from", from, "--to", to]);
        let said = stdout(&out);
        assert!(said.contains("equal: the target holds the source's log"), "{said}");
        assert_eq!(head_hash(dir.path(), to), head_hash(dir.path(), from));
        assert_eq!(balances(dir.path(), to), balances(dir.path(), from));
    }
    let again = ledger_on(
        dir.path(),
        "unused",
        &["migrate-store", "--from", &sqlite, "--to", &back],
    );
    assert_eq!(again.status.code(), Some(2), "a target that is not empty is refused");
}
