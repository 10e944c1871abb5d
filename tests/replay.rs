//! `ledger replay`: the accounts at a past point, from the log alone. At several cut
//! points of the worked example, the state after position P equals a fresh ledger fed
//! only the commands up to that point (its balances, positions and open orders); a
//! time and a close find the same cut as the position they stand for; on both backends.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::path::{Path, PathBuf};

use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;

mod common;
use common::{ledger_ok, ledger_on, stderr, stdout};

/// The lines after which the state is compared (the file has 157).
const CUTS: [usize; 6] = [0, 9, 40, 88, 120, 157];
/// Each part of the file is executed at its own recorded time, so times find cuts.
const PART_TIMES: [&str; 3] = ["2024-03-04T01:30:00Z", "2024-03-04T05:00:00Z", "2024-03-05T02:00:00Z"];

fn example_lines() -> Vec<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(output)).unwrap()
}

/// What a fresh ledger fed `lines` shows: balances, positions and open orders.
fn fresh_state(dir: &Path, lines: &[String]) -> Value {
    let db = format!("sqlite://{}", dir.join(format!("fresh-{}.db", lines.len())).display());
    ledger_ok(dir, &db, &["init"]);
    if !lines.is_empty() {
        let file = write_lines(dir, &format!("first-{}.jsonl", lines.len()), lines);
        ledger_ok(dir, &db, &["exec", file.to_str().unwrap()]);
    }
    let orders = json(&ledger_ok(dir, &db, &["orders", "--open", "--json"]));
    serde_json::json!({
        "balances": json(&ledger_ok(dir, &db, &["balances", "--json"])),
        "positions": json(&ledger_ok(dir, &db, &["positions", "--json"])),
        "orders": orders,
    })
}

#[tokio::test]
async fn the_state_at_a_cut_equals_a_fresh_ledger_fed_the_commands_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let lines = example_lines();
    assert_eq!(lines.len(), *CUTS.last().unwrap());
    let parts = [&lines[..40], &lines[40..120], &lines[120..]];
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        // The last position written by each line, from the answers.
        let mut last_position_after_line = vec![0_u64];
        for (part, (commands, time)) in parts.iter().zip(PART_TIMES).enumerate() {
            let file = write_lines(dir.path(), &format!("part-{part}.jsonl"), commands);
            let answers = ledger_ok(
                dir.path(),
                &db.url,
                &["exec", file.to_str().unwrap(), "--json", "--recorded-at", time],
            );
            for answer in stdout(&answers).lines() {
                let answer: Value = serde_json::from_str(answer).unwrap();
                // A duplicate names the positions its first answer wrote; it writes none.
                let before = *last_position_after_line.last().unwrap();
                let wrote = answer["events"].as_u64().unwrap() > 0;
                last_position_after_line.push(if wrote {
                    answer["last_position"].as_u64().unwrap()
                } else {
                    before
                });
            }
        }
        for cut in CUTS {
            let position = last_position_after_line[cut];
            let replayed = json(&ledger_ok(
                dir.path(),
                &db.url,
                &["replay", "--as-of-position", &position.to_string(), "--json"],
            ));
            assert_eq!(replayed["position"], position);
            let mut expected = fresh_state(dir.path(), &lines[..cut]);
            expected["position"] = position.into();
            assert_eq!(
                replayed, expected,
                "{backend:?}: after line {cut} (position {position})"
            );
        }

        // A time finds the last event decided at or before it: the end of a part.
        let after_first_part = last_position_after_line[40];
        for time in [
            "2024-03-04T01:30:00Z",
            "2024-03-04T04:59:59.999999Z",
            "2024-03-04T12:59:59+08:00",
        ] {
            let by_time = json(&ledger_ok(dir.path(), &db.url, &["replay", "--as-of", time, "--json"]));
            assert_eq!(by_time["position"], after_first_part, "{backend:?}: --as-of {time}");
        }
        let before_all = json(&ledger_ok(
            dir.path(),
            &db.url,
            &["replay", "--as-of", "2024-03-04T01:29:59Z", "--json"],
        ));
        assert_eq!(before_all["position"], 0);
        assert_eq!(before_all["balances"], serde_json::json!([]));

        // The close of a date: the cut reconciliation compares with.
        let close = json(&ledger_ok(
            dir.path(),
            &db.url,
            &["replay", "--as-of-date", "2024-03-04", "--json"],
        ));
        let at_position = json(&ledger_ok(
            dir.path(),
            &db.url,
            &["replay", "--as-of-position", &close["position"].to_string(), "--json"],
        ));
        assert_eq!(close, at_position, "{backend:?}: a close is a position");
        assert!(
            close["orders"].as_array().unwrap().is_empty(),
            "the close expires every open order"
        );

        // One account's rows only.
        let one = json(&ledger_ok(
            dir.path(),
            &db.url,
            &["replay", "--as-of-date", "2024-03-04", "--account", "A0001", "--json"],
        ));
        assert!(one["balances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["account_id"] == "A0001"));
        assert_eq!(one["balances"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn bad_points_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bad.db").display());
    let file = write_lines(dir.path(), "few.jsonl", &example_lines()[..20]);
    ledger_ok(dir.path(), &db, &["exec", file.to_str().unwrap()]);
    let refused = |args: &[&str], says: &str| {
        let out = ledger_on(dir.path(), &db, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    };
    refused(&["replay", "--as-of-position", "999"], "past the last event of the log");
    refused(&["replay", "--as-of-date", "2024-03-04"], "is not closed yet");
    refused(&["replay", "--as-of-position", "5", "--account", "Z9999"], "Z9999");
    refused(&["replay", "--as-of", "2024-03-04 15:00"], "RFC 3339");
    refused(&["replay"], "--as-of");
    refused(
        &["replay", "--as-of-position", "1", "--as-of-date", "2024-03-04"],
        "cannot be used with",
    );
}
