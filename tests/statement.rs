//! `ledger statement` end to end: the configuration file (named, found, missing,
//! invalid), the PDF's text, a period the ledger has not reached.

use std::path::Path;

mod common;
use common::{ledger_ok, ledger_on, stderr, stdout};

const BROKER: &str = "[broker]\nname = \"测试证券 Test Securities\"\naddress = \"北京 Beijing\"\nphone = \"95500\"\n";

/// The worked example's two days, in a fresh ledger in `dir`.
fn worked_example(dir: &Path) -> String {
    let db = dir.join("ledger.db").display().to_string();
    let commands = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    let commands = commands.display().to_string();
    ledger_ok(dir, &db, &["exec", &commands, "--recorded-at", "2024-03-04T01:30:00Z"]);
    db
}

const STATEMENT: [&str; 7] = [
    "statement",
    "--account",
    "A0001",
    "--from",
    "2024-03-01",
    "--to",
    "2024-03-31",
];

fn args<'a>(before: &[&'a str], after: &[&'a str]) -> Vec<&'a str> {
    before.iter().chain(&STATEMENT).chain(after).copied().collect()
}

#[test]
fn the_pdf_names_the_configured_broker_the_customer_and_the_closing_cash() {
    let dir = tempfile::tempdir().unwrap();
    let db = worked_example(dir.path());
    std::fs::write(dir.path().join("mine.toml"), BROKER).unwrap();
    let csv = stdout(&ledger_ok(
        dir.path(),
        &db,
        &args(&["--config", "mine.toml"], &["--format", "csv"]),
    ));
    let summary: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let closing_cash = summary[9];
    ledger_ok(
        dir.path(),
        &db,
        &args(&["--config", "mine.toml"], &["--format", "pdf", "--out", "a.pdf"]),
    );
    let pdf = std::fs::read(dir.path().join("a.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let text = std::process::Command::new("pdftotext")
        .args([dir.path().join("a.pdf").to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext runs (apt-get install poppler-utils)");
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "测试证券 Test Securities",
        "Customer 1",
        closing_cash,
        "ledger has reached 2024-03-05",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
}

#[test]
fn a_ledger_toml_in_the_working_directory_is_read_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = worked_example(dir.path());
    let html = stdout(&ledger_ok(dir.path(), &db, &args(&[], &[])));
    assert!(
        html.contains("示例证券 Example Securities (set [broker] in ledger.toml)"),
        "{html}"
    );
    std::fs::write(dir.path().join("ledger.toml"), BROKER).unwrap();
    let html = stdout(&ledger_ok(dir.path(), &db, &args(&[], &[])));
    assert!(html.contains("<b>测试证券 Test Securities</b>"), "{html}");
}

#[test]
fn a_missing_or_invalid_configuration_file_is_an_error_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = worked_example(dir.path());
    let missing = ledger_on(dir.path(), &db, &args(&["--config", "nowhere.toml"], &[]));
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("config_unreadable: cannot read configuration file nowhere.toml"),
        "{}",
        stderr(&missing)
    );
    std::fs::write(dir.path().join("bad.toml"), format!("{BROKER}colour = \"red\"\n")).unwrap();
    let bad = ledger_on(dir.path(), &db, &args(&["--config", "bad.toml"], &[]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("invalid_config: configuration file bad.toml") && stderr(&bad).contains("colour"),
        "{}",
        stderr(&bad)
    );
    assert!(stdout(&bad).is_empty());
}

#[test]
fn a_period_after_what_the_ledger_has_reached_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = worked_example(dir.path());
    let out = ledger_on(
        dir.path(),
        &db,
        &[
            "statement",
            "--account",
            "A0001",
            "--from",
            "2024-04-01",
            "--to",
            "2024-04-30",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("period_not_reached: the period starts on 2024-04-01, after 2024-03-05"),
        "{}",
        stderr(&out)
    );
}
