//! `ledger export`: the journal for hledger and Beancount, checked by the real tools
//! (Debian's `hledger` and `beancount`, which .ci/run installs): it balances, its
//! customers' cash is what `ledger balances` says, its shares what `ledger positions`
//! says, every assertion holds, and a wrong one is caught; a part of the log opens
//! with the balances before it; `jsonl` is the log itself and imports back. Bad
//! requests answer a code and write nothing.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ledger_testkit::{TestDatabase, BACKENDS};
use rust_decimal::Decimal;
use serde_json::Value;

mod common;
use common::{ledger_ok, ledger_on, stderr, stdout};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl")
}

/// Runs a tool the tests need, saying how to install it when it is missing (never skipped).
fn tool(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): install it with `apt-get install hledger beancount` (.ci/run does)")
    })
}

fn export(dir: &Path, db: &str, format: &str, more: &[&str]) -> PathBuf {
    let file = dir.join(format!("books-{}.{format}", more.join("_").replace(['-', '/'], "")));
    let mut args = vec!["export", "--format", format, "--out", file.to_str().unwrap()];
    args.extend_from_slice(more);
    let out = ledger_ok(dir, db, &args);
    assert!(stderr(&out).contains("head hash"), "{}", stderr(&out));
    file
}

/// `hledger balance` as CSV: account → its cell ("-495.00 CNY", or several amounts).
fn hledger_balances(file: &Path, more: &[&str]) -> BTreeMap<String, String> {
    let mut args = vec!["-f", file.to_str().unwrap(), "balance", "--flat", "-O", "csv"];
    args.extend_from_slice(more);
    let out = tool("hledger", &args);
    assert!(
        out.status.success(),
        "hledger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let (account, cell) = line.split_once("\",\"").expect("two CSV fields");
            // CSV doubles the quotes of `"600000.SH"` within the quoted cell.
            let cell = cell.strip_suffix('"').expect("a quoted cell").replace("\"\"", "\"");
            (account.trim_start_matches('"').to_owned(), cell)
        })
        .collect()
}

fn cny(cell: &str) -> Decimal {
    let number = cell.strip_suffix(" CNY").unwrap_or(cell);
    number
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("{cell:?}: {e}"))
}

/// Every customer's available + frozen cash, from `ledger balances --json`.
fn ledger_cash(dir: &Path, db: &str) -> BTreeMap<String, Decimal> {
    ledger_ok(dir, db, &["projections", "run"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&ledger_ok(dir, db, &["balances", "--json"]))).unwrap();
    rows.iter()
        .map(|row| {
            let amount = |field: &str| row[field].as_str().unwrap().parse::<Decimal>().unwrap();
            (
                row["account_id"].as_str().unwrap().to_owned(),
                amount("available") + amount("frozen"),
            )
        })
        .collect()
}

/// The journal's customer cash accounts, negated back to what the customer has.
fn journal_cash(balances: &BTreeMap<String, String>) -> BTreeMap<String, Decimal> {
    balances
        .iter()
        .filter_map(|(account, cell)| {
            let id = account.strip_prefix("liabilities:customers:")?.strip_suffix(":cash")?;
            Some((id.to_owned(), -cny(cell)))
        })
        .collect()
}

fn bean_check(file: &Path) -> std::process::Output {
    tool("bean-check", &[file.to_str().unwrap()])
}

#[tokio::test]
async fn the_demos_journal_balances_in_hledger_and_beancount_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        ledger_ok(dir.path(), &db.url, &["demo", "--accounts", "30", "--seed", "7"]);
        let cash = ledger_cash(dir.path(), &db.url);
        assert_eq!(cash.len(), 30, "{backend:?}");

        let journal = export(dir.path(), &db.url, "hledger", &[]);
        let at_cost = hledger_balances(&journal, &["-B"]);
        assert_eq!(
            at_cost.get("total").map(String::as_str),
            Some("0"),
            "{backend:?}: {at_cost:?}"
        );
        assert_eq!(
            journal_cash(&at_cost),
            cash,
            "{backend:?}: hledger's customer cash is `ledger balances`"
        );
        let strict = tool("hledger", &["-f", journal.to_str().unwrap(), "check", "--strict"]);
        assert!(strict.status.success(), "{}", String::from_utf8_lossy(&strict.stderr));
        let text = std::fs::read_to_string(&journal).unwrap();
        let asserted = text.lines().filter(|l| l.contains("  0 CNY = ")).count();
        assert!(
            asserted >= 30,
            "every customer's cash is asserted at least at the end: {asserted}"
        );
        assert!(text.contains("position:"), "transactions carry their position");

        // The shares: per customer and instrument, the units `ledger positions` holds.
        let units = hledger_balances(&journal, &["liabilities:customers:.*:securities"]);
        let positions: Vec<Value> =
            serde_json::from_str(&stdout(&ledger_ok(dir.path(), &db.url, &["positions", "--json"]))).unwrap();
        let held: u64 = positions.iter().map(|p| p["quantity"].as_u64().unwrap()).sum();
        assert!(held > 0, "the demo holds shares");
        for position in &positions {
            let account = format!(
                "liabilities:customers:{}:securities",
                position["account_id"].as_str().unwrap()
            );
            let wanted = format!(
                "-{} \"{}\"",
                position["quantity"],
                position["instrument"].as_str().unwrap()
            );
            let cell = units.get(&account).map(String::as_str).unwrap_or_default();
            assert!(
                position["quantity"] == 0 || cell.split(", ").any(|amount| amount == wanted),
                "{backend:?}: {account} shows {cell:?}, `ledger positions` {wanted}"
            );
        }

        let beancount = export(dir.path(), &db.url, "beancount", &[]);
        let checked = bean_check(&beancount);
        assert!(
            checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
            "{backend:?}: bean-check: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
        let text = std::fs::read_to_string(&beancount).unwrap();
        assert!(
            text.lines()
                .filter(|l| l.contains(" balance Liabilities:Customers:"))
                .count()
                >= 30
        );
    }
}

/// An assertion that does not hold is caught by both tools: the files' assertions are
/// checked, not decoration.
#[test]
fn a_wrong_assertion_fails_in_both_tools() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("l.db").display());
    ledger_ok(dir.path(), &db, &["exec", example().to_str().unwrap()]);
    let journal = export(dir.path(), &db, "hledger", &[]);
    let text = std::fs::read_to_string(&journal).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("  0 CNY = -"))
        .expect("an assertion of a customer with cash");
    std::fs::write(&journal, text.replacen(line, &line.replacen("= -", "= -1", 1), 1)).unwrap();
    let out = tool("hledger", &["-f", journal.to_str().unwrap(), "balance"]);
    assert!(!out.status.success(), "hledger accepted a wrong assertion");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("balance assertion"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let beancount = export(dir.path(), &db, "beancount", &[]);
    assert!(bean_check(&beancount).status.success());
    let text = std::fs::read_to_string(&beancount).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(" balance ") && l.contains("  -"))
        .unwrap();
    std::fs::write(&beancount, text.replacen(line, &line.replacen("  -", "  -1", 1), 1)).unwrap();
    let out = bean_check(&beancount);
    assert!(!out.status.success(), "bean-check accepted a wrong assertion");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Balance failed"));
}

/// A window of business dates opens with the balances the log gives before it, and ends
/// with the same balances as the whole export; one account's export holds its cash only.
#[test]
fn a_part_of_the_log_opens_with_the_balances_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("l.db").display());
    ledger_ok(dir.path(), &db, &["exec", example().to_str().unwrap()]);
    let whole = hledger_balances(&export(dir.path(), &db, "hledger", &[]), &["-B"]);
    let events: Vec<Value> = stdout(&ledger_ok(dir.path(), &db, &["events", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut dates: Vec<&str> = events.iter().filter_map(|e| e["businessdate"].as_str()).collect();
    dates.dedup();
    assert!(dates.len() >= 2, "the example spans two business dates: {dates:?}");
    let second = dates[1];

    let part = export(dir.path(), &db, "hledger", &["--from", second]);
    let text = std::fs::read_to_string(&part).unwrap();
    assert!(text.contains(&format!("{second} * opening balances")), "{text}");
    assert!(
        !text.contains(&format!("{} *", dates[0])),
        "nothing dated before --from"
    );
    assert_eq!(
        hledger_balances(&part, &["-B"]),
        whole,
        "opening + the rest = the whole"
    );
    let beancount = export(dir.path(), &db, "beancount", &["--from", second]);
    assert!(
        bean_check(&beancount).status.success(),
        "{}",
        String::from_utf8_lossy(&bean_check(&beancount).stderr)
    );

    // Up to the first date: its closing cash is the opening cash of the second.
    let first_day = hledger_balances(&export(dir.path(), &db, "hledger", &["--to", dates[0]]), &["-B"]);
    let opening = hledger_balances(&part, &["-B", "desc:opening balances"]);
    assert_eq!(journal_cash(&first_day), journal_cash(&opening));

    let account = journal_cash(&whole).into_keys().next().unwrap();
    let one = hledger_balances(&export(dir.path(), &db, "hledger", &["--account", &account]), &["-B"]);
    assert_eq!(
        journal_cash(&one).into_keys().collect::<Vec<_>>(),
        vec![account.clone()]
    );
    assert_eq!(one.get("total").map(String::as_str), Some("0"));
    let beancount = export(dir.path(), &db, "beancount", &["--account", &account]);
    assert!(bean_check(&beancount).status.success());
}

/// `jsonl` is `events --json`, and a whole export imports back with the same head hash.
#[test]
fn the_jsonl_export_is_the_log_and_imports_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("l.db").display());
    ledger_ok(dir.path(), &db, &["exec", example().to_str().unwrap()]);
    let log = stdout(&ledger_ok(dir.path(), &db, &["events", "--json"]));
    let file = export(dir.path(), &db, "jsonl", &[]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), log);
    let copy = format!("sqlite://{}", dir.path().join("copy.db").display());
    ledger_ok(dir.path(), &copy, &["import", file.to_str().unwrap()]);
    let head = |db: &str| {
        stdout(&ledger_ok(dir.path(), db, &["verify"]))
            .lines()
            .find(|l| l.starts_with("head hash"))
            .map(str::to_owned)
    };
    assert_eq!(head(&copy), head(&db));

    let first: Value = serde_json::from_str(log.lines().find(|l| l.contains("\"ledger.account.")).unwrap()).unwrap();
    let account = first["subject"].as_str().unwrap().to_owned();
    let part = std::fs::read_to_string(export(dir.path(), &db, "jsonl", &["--account", &account])).unwrap();
    assert!(!part.is_empty());
    for line in part.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["subject"], account.as_str(), "{line}");
    }
}

/// The old log of tests/fixtures (every event at version 1, no business dates) exports
/// and both tools accept it.
#[test]
fn the_old_log_exports() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("old.sqlite3");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two-days.sqlite3"),
        &copy,
    )
    .unwrap();
    let db = format!("sqlite://{}", copy.display());
    let journal = export(dir.path(), &db, "hledger", &[]);
    let at_cost = hledger_balances(&journal, &["-B"]);
    assert_eq!(at_cost.get("total").map(String::as_str), Some("0"));
    assert_eq!(journal_cash(&at_cost), ledger_cash(dir.path(), &db));
    assert!(bean_check(&export(dir.path(), &db, "beancount", &[])).status.success());
}

#[test]
fn a_bad_request_answers_a_code_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("l.db").display());
    ledger_ok(dir.path(), &db, &["exec", example().to_str().unwrap()]);
    let file = dir.path().join("kept.journal");
    std::fs::write(&file, "an earlier export\n").unwrap();
    let out_arg = file.to_str().unwrap();
    for (args, code) in [
        (vec!["--from", "2024-03-05", "--to", "2024-03-04"], "invalid_input"),
        (vec!["--account", "NOBODY"], "unknown_account"),
    ] {
        let mut all = vec!["export", "--format", "hledger", "--out", out_arg];
        all.extend_from_slice(&args);
        let out = ledger_on(dir.path(), &db, &all);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with(&format!("{code}: ")), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "an earlier export\n");
        assert!(!dir.path().join("kept.journal.partial").exists());
    }
    let out = ledger_on(dir.path(), &db, &["export", "--format", "ledger-cli"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown format");
}
