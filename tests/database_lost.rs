//! PostgreSQL going away under a running `ledger exec`, as an operator's
//! `pg_terminate_backend` or a server restart does it: the run stops with one
//! sentence, said once, with a stable code; it names the lines that are
//! committed and says a rerun is safe; and the rerun ends where a clean run ends.
//! Only this test's own sessions are ended (found by their `application_name`),
//! never the server or another test's.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ledger_testkit::{Backend, TestDatabase};
use serde_json::Value;

mod common;
use common::{ledger_command, ledger_ok, stderr};

const ACCOUNTS: usize = 100;
/// Enough lines that the run is still going when its sessions are ended.
const DEPOSITS: usize = 20_000;
/// Every event stamped alike, so a clean run and an interrupted one can be compared by head hash.
const RECORDED_AT: &str = "2024-03-04T01:30:00Z";
/// How often the test's sessions are ended while the run goes on: an idle pooled
/// session is replaced unseen, so they are ended until one dies mid-statement.
const END_EVERY_MS: u64 = 20;
const RUN_TIMEOUT_S: u64 = 120;

fn write_commands(path: &Path) {
    let mut lines = Vec::with_capacity(ACCOUNTS + DEPOSITS);
    for i in 0..ACCOUNTS {
        lines.push(format!(
            r#"{{"type":"open_account","command_id":"open-{i}","account_id":"L{i:04}","customer_name":"Customer {i}","id_number":"11010519491231{i:04}","risk_level":3}}"#
        ));
    }
    for k in 0..DEPOSITS {
        lines.push(format!(
            r#"{{"type":"deposit","command_id":"dep-{k}","account_id":"L{:04}","amount":"{}.00","bank_ref":"dep-{k}"}}"#,
            k % ACCOUNTS,
            k % 7 + 1
        ));
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn exec_args(file: &str) -> [&str; 4] {
    ["exec", file, "--recorded-at", RECORDED_AT]
}

/// The head hash, the event count and the balances: what a clean run and a rerun must agree on.
fn final_state(dir: &Path, url: &str) -> (Value, Value, String) {
    let verified = ledger_ok(dir, url, &["verify", "--json"]);
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["problem_count"], 0, "{report}");
    let balances = ledger_ok(dir, url, &["balances", "--json"]);
    (
        report["head_hash"].clone(),
        report["events"].clone(),
        String::from_utf8_lossy(&balances.stdout).into_owned(),
    )
}

/// Runs `ledger exec` on `url` and ends the test's sessions from the first answer on,
/// until the run stops. Returns the last line answered and what the run said on stderr.
async fn exec_with_sessions_ended(dir: &Path, db: &TestDatabase, file: &str) -> (u64, String, bool) {
    let url = db.url_with_session_name();
    let mut child = ledger_command(dir)
        .args(["--db", url.as_str()])
        .args(exec_args(file))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (answered_tx, answered_rx) = mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // "line   1000  dep-899  accepted (1 events)"
            let number = line.split_whitespace().nth(1).and_then(|n| n.parse().ok());
            if let (Some("line"), Some(number)) = (line.split_whitespace().next(), number) {
                let _ = answered_tx.send(number);
            }
        }
    });
    let mut last_answered = answered_rx.recv_timeout(Duration::from_secs(RUN_TIMEOUT_S)).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(RUN_TIMEOUT_S),
            "the run did not stop"
        );
        db.end_sessions().await;
        tokio::time::sleep(Duration::from_millis(END_EVERY_MS)).await;
    };
    reader.join().unwrap();
    last_answered = answered_rx.try_iter().last().unwrap_or(last_answered);
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    (last_answered, said, status.success())
}

#[tokio::test]
async fn postgres_going_away_mid_run_is_said_once_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    write_commands(&dir.path().join("commands.jsonl"));

    let clean = TestDatabase::fresh(Backend::Postgres).await;
    ledger_ok(dir.path(), &clean.url, &exec_args("commands.jsonl"));
    let expected = final_state(dir.path(), &clean.url);

    let db = TestDatabase::fresh(Backend::Postgres).await;
    let (answered, said, succeeded) = exec_with_sessions_ended(dir.path(), &db, "commands.jsonl").await;
    assert!(!succeeded, "the run went on to the end: {said}");
    assert!(answered < (ACCOUNTS + DEPOSITS) as u64, "{said}");

    // One sentence, once, with its code first.
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.starts_with("error: database_lost: the connection to the database was lost ("),
        "{said}"
    );
    assert!(said.matches("terminating connection").count() <= 1, "{said}");
    // PostgreSQL's message keeps its code, not the server's source line.
    let source_line = said
        .split(" at line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next());
    assert!(
        source_line.is_none_or(str::is_empty),
        "a server source line is shown: {said}"
    );
    assert!(
        said.contains(&format!("lines 1 to {answered} were answered and are committed")),
        "{said}"
    );
    assert!(said.contains("rerunning the same file is safe"), "{said}");

    // The rerun answers what was committed as `duplicate`, runs the rest, and ends as a clean run.
    let rerun = ledger_ok(dir.path(), &db.url, &exec_args("commands.jsonl"));
    let summary = String::from_utf8_lossy(&rerun.stdout);
    assert!(summary.contains("duplicate"), "{summary}");
    assert!(stderr(&rerun).is_empty(), "{}", stderr(&rerun));
    assert_eq!(final_state(dir.path(), &db.url), expected);
}

#[test]
fn the_start_hint_names_no_cluster_it_cannot_know() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1, and no local cluster is configured there.
    let out = ledger_command(dir.path())
        .args(["--db", "postgres://postgres@127.0.0.1:1/test", "balances"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(said.contains("pg_ctlcluster VERSION CLUSTER start"), "{said}");
    assert!(!said.contains(" main "), "a cluster named without knowing it: {said}");
}
