//! What the binary says to people and scripts: help texts that name the formats, date
//! errors that name the format, money with two decimals, the `head hash` line, and
//! each cause of an error printed once.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::ledger_in;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn help_of(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut with_help = args.to_vec();
    with_help.push("--help");
    let out = ledger_in(dir.path(), &with_help);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The fixture's old log in a scratch directory, since read-outs write their read models.
fn fixture_copy(dir: &Path) -> String {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two-days.sqlite3");
    std::fs::copy(fixture, dir.join("ledger.db")).unwrap();
    "ledger.db".to_owned()
}

#[test]
fn help_says_what_each_flag_means() {
    let top = help_of(&[]);
    for needed in [
        "postgres://",
        "LEDGER_DATABASE_URL",
        "sqlite://",
        "LEDGER_RULES",
        "TOML",
    ] {
        assert!(top.contains(needed), "`ledger --help` names {needed}: {top}");
    }
    for command in [
        &["eod"][..],
        &["settle"],
        &["reconcile"],
        &["statement"],
        &["orders"],
        &["trades"],
    ] {
        let help = help_of(command);
        assert!(
            help.contains("YYYY-MM-DD"),
            "`ledger {command:?} --help` names the date format: {help}"
        );
    }
    for command in [
        "eod",
        "settle",
        "reconcile",
        "verify",
        "balances",
        "positions",
        "orders",
        "trades",
    ] {
        let help = help_of(&[command]);
        let json_line = help
            .lines()
            .find(|line| line.contains("--json"))
            .unwrap_or_default()
            .to_owned();
        let described = help.split("--json").nth(1).unwrap_or_default();
        assert!(
            described.contains("JSON"),
            "`ledger {command} --help` says what --json prints: {json_line}"
        );
    }
    for command in ["orders", "trades", "events"] {
        let help = help_of(&[command]);
        assert!(help.contains("--limit"), "{help}");
        assert!(
            help.split("--limit").nth(1).unwrap_or_default().contains("Most"),
            "{help}"
        );
    }
}

#[test]
fn help_never_shows_the_database_url_it_read_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .current_dir(dir.path())
        .env("LEDGER_DATABASE_URL", "postgres://clerk:hunter2secret@dbhost/ledger")
        .args(["balances", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("LEDGER_DATABASE_URL"), "{help}");
    assert!(
        !help.contains("hunter2secret"),
        "clap shows an env variable's value unless told not to: {help}"
    );
}

#[test]
fn a_date_that_does_not_parse_names_the_format() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["eod", "--date", "2024-13-01"][..],
        &["settle", "--date", "04/03/2024"],
        &["orders", "--date", "20240304"],
        &[
            "statement",
            "--account",
            "A0001",
            "--from",
            "2024-03-04",
            "--to",
            "yesterday",
        ],
    ] {
        let out = ledger_in(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let error = text(&out.stderr);
        assert!(
            error.contains("YYYY-MM-DD"),
            "{args:?}: the error names the format: {error}"
        );
    }
}

#[test]
fn each_cause_of_an_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledger_in(dir.path(), &["--db", "mysql://someone@dbhost/ledgerdb", "balances"]);
    assert_eq!(out.status.code(), Some(2));
    let error = text(&out.stderr);
    assert_eq!(
        error.matches("dbhost/ledgerdb").count(),
        1,
        "the URL is shown once: {error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
}

#[test]
fn verify_prints_its_head_hash_as_one_line_a_script_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_copy(dir.path());
    let out = ledger_in(dir.path(), &["--db", &db, "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    // What a script does: the one line starting `head hash `, its last word.
    let lines: Vec<&str> = printed.lines().filter(|line| line.starts_with("head hash ")).collect();
    assert_eq!(lines.len(), 1, "{printed}");
    let words: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(words.len(), 3, "`head hash <64 hex digits>`: {}", lines[0]);
    let head = words[2];
    assert_eq!(head.len(), 64, "{head}");
    assert!(
        head.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{head}"
    );
    let events =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two-days.events.jsonl"))
            .unwrap();
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(
        head,
        last["hash"].as_str().unwrap(),
        "the head hash is the last event's hash"
    );
}

/// Every `*_cny` amount of a JSON value (prices excepted) has exactly two decimals.
fn assert_amounts_have_two_decimals(value: &Value, path: &str) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let at = format!("{path}.{key}");
                if key.ends_with("_cny") && !key.contains("price") {
                    let amount = field.as_str().unwrap_or_else(|| panic!("{at} is a string: {field}"));
                    let decimals = amount.split('.').nth(1).map(str::len);
                    assert_eq!(decimals, Some(2), "{at} = {amount} has two decimals");
                } else {
                    assert_amounts_have_two_decimals(field, &at);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                assert_amounts_have_two_decimals(item, &format!("{path}[{index}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn amounts_of_money_have_two_decimals_in_every_json_read_out() {
    let dir = tempfile::tempdir().unwrap();
    // The worked example up to, not including, its first end of day: `eod` then writes it.
    let commands =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two-days.commands.jsonl"))
            .unwrap();
    let first_day: Vec<&str> = commands
        .lines()
        .take_while(|line| !line.contains("\"end_of_day\""))
        .collect();
    std::fs::write(dir.path().join("day.jsonl"), first_day.join("\n") + "\n").unwrap();
    let db = "day.db";
    let exec = ledger_in(
        dir.path(),
        &["--db", db, "exec", "day.jsonl", "--recorded-at", "2024-03-04T01:30:00Z"],
    );
    assert!(exec.status.success(), "{}", text(&exec.stderr));
    for args in [
        &["eod", "--date", "2024-03-04", "--json"][..],
        &["clearing-report", "--date", "2024-03-04", "--json"],
        &["balances", "--json"],
        &["trades", "--json"],
        &["orders", "--json"],
    ] {
        let mut with_db = vec!["--db", db];
        with_db.extend_from_slice(args);
        let out = ledger_in(dir.path(), &with_db);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let value: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_amounts_have_two_decimals(&value, &format!("{args:?}"));
    }
}
