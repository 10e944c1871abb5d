//! `ledger events --follow`: a follower that starts at the beginning while writers
//! append concurrently prints every event exactly once, in order, as `ledger events
//! --json` prints it; a filtered follower stopped and restarted from its last
//! position + 1 misses none of its events; `--from` includes its position.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ledger_testkit::{Backend, TestDatabase};
use serde_json::Value;

mod common;
use common::{ledger_command, ledger_ok, ledger_on, stderr, stdout, stop_with};

/// Longest a follower may take to print what was committed.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

/// A command file of `accounts` new accounts (ids `{prefix}0000`, …), each with `deposits` deposits.
fn account_file(dir: &Path, prefix: &str, accounts: usize, deposits: usize) -> PathBuf {
    let mut lines = Vec::new();
    for a in 0..accounts {
        let account = format!("{prefix}{a:04}");
        lines.push(format!(
            r#"{{"type":"open_account","command_id":"{account}-open","account_id":"{account}","customer_name":"客户 {a}","id_number":"{prefix}{a:016}","risk_level":3}}"#
        ));
        for d in 0..deposits {
            lines.push(format!(
                r#"{{"type":"deposit","command_id":"{account}-dep-{d}","account_id":"{account}","amount":"{}.00","bank_ref":"{account}-B{d}"}}"#,
                100 + d
            ));
        }
    }
    let path = dir.join(format!("{prefix}.jsonl"));
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// A running `ledger events --follow` and the lines it has printed, read as they come.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Follower {
    fn start(dir: &Path, db: &str, args: &[&str]) -> Follower {
        let mut child = ledger_command(dir)
            .args(["--db", db, "events", "--follow"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Follower {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Collects lines until `done` holds of them, within [`CATCH_UP_LIMIT`].
    fn wait_until(&mut self, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + CATCH_UP_LIMIT;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("the follower printed {} lines and then nothing", self.seen.len()),
            }
        }
    }

    /// Interrupts it as Ctrl-C would; it must end cleanly. Returns what it printed.
    fn interrupt(mut self) -> Vec<String> {
        let status = stop_with(&mut self.child, "-INT");
        assert!(status.success(), "Ctrl-C ends a follower with exit 0: {status:?}");
        self.seen.extend(self.lines.iter());
        self.seen
    }
}

fn log_lines(dir: &Path, db: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["events", "--json"];
    all.extend_from_slice(args);
    stdout(&ledger_ok(dir, db, &all)).lines().map(str::to_owned).collect()
}

fn position(line: &str) -> u64 {
    serde_json::from_str::<Value>(line).unwrap()["position"]
        .as_u64()
        .unwrap()
}

async fn concurrent_writers_on(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::fresh(backend).await;
    ledger_ok(dir.path(), &db.url, &["init"]);
    let mut follower = Follower::start(dir.path(), &db.url, &[]);
    let files = [
        account_file(dir.path(), "FA", 20, 15),
        account_file(dir.path(), "FB", 20, 15),
        account_file(dir.path(), "FC", 20, 15),
    ];
    // Three writers at once, each its own process and connection.
    let writers: Vec<Child> = files
        .iter()
        .map(|file| {
            ledger_command(dir.path())
                .args(["--db", &db.url, "exec", file.to_str().unwrap()])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success(), "{backend:?}: a writer failed");
    }
    let log = log_lines(dir.path(), &db.url, &[]);
    assert_eq!(log.len(), 3 * 20 * 16, "{backend:?}: every command wrote one event");
    follower.wait_until(|seen| seen.len() >= log.len());
    let printed = follower.interrupt();
    let positions: Vec<u64> = printed.iter().map(|line| position(line)).collect();
    assert_eq!(
        positions,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "{backend:?}: every position once, in order"
    );
    assert_eq!(
        printed, log,
        "{backend:?}: the follower prints what `events --json` prints"
    );
}

#[tokio::test]
async fn a_follower_from_the_start_sees_every_event_of_concurrent_writers_once_in_order_on_sqlite() {
    concurrent_writers_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_follower_from_the_start_sees_every_event_of_concurrent_writers_once_in_order_on_postgres() {
    concurrent_writers_on(Backend::Postgres).await;
}

async fn filtered_resume_on(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::fresh(backend).await;
    ledger_ok(dir.path(), &db.url, &["init"]);
    let wanted = |line: &String| {
        let event: Value = serde_json::from_str(line).unwrap();
        event["type"] == "ledger.account.CashDeposited.v1" && event["subject"] == "GB0001"
    };
    let filter = ["--type", "CashDeposited", "--account", "GB0001"];
    ledger_ok(
        dir.path(),
        &db.url,
        &["exec", account_file(dir.path(), "GA", 3, 4).to_str().unwrap()],
    );
    ledger_ok(
        dir.path(),
        &db.url,
        &["exec", account_file(dir.path(), "GB", 3, 4).to_str().unwrap()],
    );
    let mut first = Follower::start(dir.path(), &db.url, &filter);
    first.wait_until(|seen| seen.len() >= 4);
    let first = first.interrupt();
    assert_eq!(first.len(), 4, "{backend:?}: only GB0001's four deposits");
    let resume = (position(first.last().unwrap()) + 1).to_string();

    // While no one follows: more of every kind, GB0001's included.
    ledger_ok(
        dir.path(),
        &db.url,
        &["exec", account_file(dir.path(), "GC", 2, 2).to_str().unwrap()],
    );
    let more = dir.path().join("more.jsonl");
    std::fs::write(
        &more,
        (0..5)
            .map(|d| format!(r#"{{"type":"deposit","command_id":"more-{d}","account_id":"GB0001","amount":"1.00","bank_ref":"MB{d}"}}"#))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    ledger_ok(dir.path(), &db.url, &["exec", more.to_str().unwrap()]);
    let mut second = Follower::start(dir.path(), &db.url, &[&filter[..], &["--from", &resume]].concat());
    second.wait_until(|seen| seen.len() >= 5);
    let second = second.interrupt();

    let expected: Vec<String> = log_lines(dir.path(), &db.url, &[]).into_iter().filter(wanted).collect();
    assert_eq!(
        [first, second].concat(),
        expected,
        "{backend:?}: the two runs together are the filtered log"
    );
    assert_eq!(
        log_lines(dir.path(), &db.url, &filter),
        expected,
        "{backend:?}: `events` filters as `--follow` does"
    );
}

#[tokio::test]
async fn a_filtered_follower_resumes_after_its_last_event_and_misses_none_on_sqlite() {
    filtered_resume_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_filtered_follower_resumes_after_its_last_event_and_misses_none_on_postgres() {
    filtered_resume_on(Backend::Postgres).await;
}

#[test]
fn from_includes_its_position_and_zero_means_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("from.sqlite3").display());
    ledger_ok(
        dir.path(),
        &db,
        &["exec", account_file(dir.path(), "H", 2, 3).to_str().unwrap()],
    );
    let all = log_lines(dir.path(), &db, &[]);
    assert_eq!(all.len(), 8);
    assert_eq!(log_lines(dir.path(), &db, &["--from", "0"]), all);
    assert_eq!(log_lines(dir.path(), &db, &["--from", "1"]), all);
    assert_eq!(log_lines(dir.path(), &db, &["--from", "5"]), all[4..]);
    assert_eq!(log_lines(dir.path(), &db, &["--from", "9"]), Vec::<String>::new());
}

#[test]
fn an_unknown_event_type_is_refused_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("types.sqlite3").display());
    ledger_ok(dir.path(), &db, &["init"]);
    let out = ledger_on(dir.path(), &db, &["events", "--follow", "--type", "Fill"]);
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(
        said.contains("unknown event type \"Fill\"") && said.contains("FillBooked"),
        "{said}"
    );
    assert!(stdout(&out).is_empty());
}
