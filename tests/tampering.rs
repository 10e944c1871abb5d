//! `ledger verify` on a log edited inside the database, on both backends: it exits 1,
//! names the first broken position and still prints the head hash line of
//! docs/operations.md, whatever the edited bytes hold.

use std::path::Path;

use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use serde_json::Value;

mod common;
use common::{ledger_ok, ledger_on, stderr, stdout};

/// A `"` of position 18's payload (A0001's deposit) flipped to `#`: no longer JSON.
const FLIP_BREAKING_JSON: &str =
    "UPDATE events SET payload = REPLACE(payload, '\"amount_cny\"', '#amount_cny\"') WHERE global_position = 18";
/// A byte of a key flipped: still JSON, no longer the event that was hashed.
const FLIP_KEEPING_JSON: &str =
    "UPDATE events SET payload = REPLACE(payload, '\"amount_cny\"', '\"amount#cny\"') WHERE global_position = 18";

fn head_hash_line(text: &str) -> &str {
    text.lines().nth(1).unwrap_or_default()
}

#[tokio::test]
async fn verify_names_the_position_of_a_flipped_payload_byte_and_prints_the_head_hash() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    for backend in BACKENDS {
        for flip in [FLIP_BREAKING_JSON, FLIP_KEEPING_JSON] {
            let db = TestDatabase::fresh(backend).await;
            ledger_ok(
                dir.path(),
                &db.url,
                &["exec", file.to_str().unwrap(), "--recorded-at", "2024-03-04T01:30:00Z"],
            );
            let clean = stdout(&ledger_ok(dir.path(), &db.url, &["verify"]));
            // PostgreSQL's JSONB refuses bytes that are not JSON: the column is made text first,
            // as someone with the rights to alter the table could.
            let edits = match backend {
                Backend::Sqlite => vec![flip],
                Backend::Postgres => vec!["ALTER TABLE events ALTER COLUMN payload TYPE text", flip],
            };
            db.tamper(&edits).await;

            let out = ledger_on(dir.path(), &db.url, &["verify"]);
            let text = stdout(&out);
            assert_eq!(out.status.code(), Some(1), "{backend:?} {flip}: {text}{}", stderr(&out));
            assert!(head_hash_line(&clean).starts_with("head hash "), "{clean}");
            assert_eq!(
                head_hash_line(&text),
                head_hash_line(&clean),
                "{backend:?} {flip}: the head hash line is printed as it was"
            );
            assert!(
                text.contains("BROKEN at position 18: 2 problems"),
                "{backend:?} {flip}: {text}"
            );
            assert!(text.contains("      18  hash_mismatch: "), "{text}");
            assert!(text.contains("      18  undecodable: "), "{text}");

            let out = ledger_on(dir.path(), &db.url, &["verify", "--json"]);
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["first_broken_position"], 18, "{report}");
            assert_eq!(
                format!("head hash {}", report["head_hash"].as_str().unwrap()),
                head_hash_line(&clean)
            );
        }
    }
}
