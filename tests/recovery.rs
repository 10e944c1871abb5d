//! The recovery runbook of docs/operations.md, run as the drill operators run
//! (`scripts/recovery-drill.sh`): back up a ledger the demo wrote, restore it
//! elsewhere, verify it while every read model is rebuilt, verify again. On each backend, on a
//! log of about 100,000 events (`LEDGER_DRILL_ACCOUNTS` changes the size).

mod common;

use std::path::Path;
use std::process::Command;

use common::{ledger_ok, stdout};
use ledger_testkit::{Backend, TestDatabase};

/// The demo's accounts: about 56 events each, so about 100,000 events.
const DRILL_ACCOUNTS: u64 = 1_780;

fn drill_accounts() -> String {
    std::env::var("LEDGER_DRILL_ACCOUNTS").unwrap_or_else(|_| DRILL_ACCOUNTS.to_string())
}

fn run_drill(dir: &Path, source: &str, target: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/recovery-drill.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(["--ledger", env!("CARGO_BIN_EXE_ledger")])
        .args(["--source", source, "--target", target])
        .arg("--work")
        .arg(dir.join("backup"))
        .env_remove("LEDGER_DATABASE_URL")
        .env_remove("LEDGER_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("bash runs the recovery drill: {e}"));
    let printed = stdout(&output);
    assert!(
        output.status.success(),
        "the recovery drill failed:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

/// The read-outs an operator compares after a restore.
fn read_outs(dir: &Path, db: &str) -> Vec<String> {
    [["balances", "--json"], ["positions", "--json"], ["orders", "--json"]]
        .iter()
        .map(|args| stdout(&ledger_ok(dir, db, args)))
        .collect()
}

async fn drill_on(backend: Backend) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = TestDatabase::fresh(backend).await;
    ledger_ok(dir.path(), &source.url, &["demo", "--accounts", &drill_accounts()]);
    let head = stdout(&ledger_ok(dir.path(), &source.url, &["verify", "--json"]));

    // A SQLite test database is a file not created yet, as the drill wants its target.
    let target = match backend {
        Backend::Sqlite => ledger_testkit::sqlite(),
        Backend::Postgres => {
            let schema = source
                .postgres_schema()
                .expect("a PostgreSQL test database has a schema");
            ledger_testkit::postgres_database(schema).await
        }
    };
    let printed = run_drill(dir.path(), &source.url, &target.url);

    let summary = printed.lines().last().unwrap_or_default();
    assert!(summary.starts_with("recovery drill passed: "), "{printed}");
    let head: serde_json::Value = serde_json::from_str(&head).expect("verify --json is JSON");
    let head_hash = head["head_hash"].as_str().expect("a head hash");
    assert!(summary.contains(&format!("head hash {head_hash}")), "{printed}");
    let events = head["events"].as_u64().expect("an event count");
    assert!(events > 1_000, "the demo wrote a log to drill on: {events} events");
    assert_eq!(read_outs(dir.path(), &target.url), read_outs(dir.path(), &source.url));
}

#[tokio::test]
async fn the_recovery_drill_restores_sqlite() {
    drill_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_recovery_drill_restores_postgres() {
    drill_on(Backend::Postgres).await;
}
