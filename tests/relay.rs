//! `ledger relay nats` against a NATS server of the test's own (`nats-server -js` on a free
//! port, its store in a temporary directory, never the machine's shared one), on both
//! backends: killed with SIGKILL at random moments while commands are appended, restarted
//! each time, the stream finally holds positions 1..N once each, in order, each message
//! the event as `ledger events --json` prints it with personal data masked; and a restart
//! of NATS under a running relay is ridden out by the relay alone.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use ledger_app::access::{payload_for, Role};
use ledger_testkit::{Backend, TestDatabase};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

mod common;
use common::nats::Nats;
use common::{ledger_command, ledger_ok, stdout, stop_with};

/// The seed of the kill moments; `LEDGER_RELAY_SEED` sets another.
const DEFAULT_SEED: u64 = 20_261_201;
/// Relay runs killed with SIGKILL before the last one.
const KILLS: usize = 6;
/// Longest a relay may take to bring the stream up to the head.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(90);

fn relay(dir: &Path, db: &str, nats: &Nats, stream: &str) -> Child {
    ledger_command(dir)
        .args([
            "--db",
            db,
            "relay",
            "nats",
            "--url",
            &nats.url(),
            "--stream",
            stream,
            "--subject-prefix",
            "t",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A relay that has said it runs (and so stops cleanly on SIGTERM); its log is drained.
fn started_relay(dir: &Path, db: &str, nats: &Nats, stream: &str) -> Child {
    use std::io::BufRead;
    let mut child = relay(dir, db, nats, stream);
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("the relay says it runs").unwrap();
    assert!(first.starts_with("ledger relay: events to stream"), "{first}");
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// Appends files of 20 deposits, one `ledger exec` after another, until `stop` is set
/// and at least `min_files` were written.
fn writer(dir: &Path, db: &str, min_files: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (dir, db) = (dir.to_owned(), db.to_owned());
    std::thread::spawn(move || {
        let open = dir.join("open.jsonl");
        std::fs::write(
            &open,
            r#"{"type":"open_account","command_id":"open","account_id":"R0001","customer_name":"客户","id_number":"R000000000000001","risk_level":3}"#,
        )
        .unwrap();
        ledger_ok(&dir, &db, &["exec", open.to_str().unwrap()]);
        let mut f = 0;
        while f < min_files || !stop.load(Ordering::SeqCst) {
            let lines: Vec<String> = (0..20)
                .map(|n| format!(r#"{{"type":"deposit","command_id":"D{f}-{n}","account_id":"R0001","amount":"1.00","bank_ref":"B{f}-{n}"}}"#))
                .collect();
            let file = dir.join(format!("deposits-{f}.jsonl"));
            std::fs::write(&file, lines.join("\n")).unwrap();
            ledger_ok(&dir, &db, &["exec", file.to_str().unwrap()]);
            std::thread::sleep(Duration::from_millis(50));
            f += 1;
        }
    })
}

/// Every message of the stream, in stream order: (sequence, Nats-Msg-Id, subject, body).
async fn stream_messages(url: &str, stream: &str) -> Vec<(u64, String, String, Value)> {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut messages = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let body = serde_json::from_slice(&message.payload).unwrap();
        messages.push((sequence, id, message.subject.to_string(), body));
    }
    messages
}

async fn stream_last_sequence(url: &str, stream: &str) -> u64 {
    let Ok(client) = async_nats::connect(url).await else {
        return 0;
    };
    let js = jetstream::new(client);
    match js.get_stream(stream).await {
        Ok(mut stream) => stream.info().await.map_or(0, |info| info.state.last_sequence),
        Err(_) => 0,
    }
}

/// Waits until the stream holds `head` messages.
async fn wait_for_stream(url: &str, stream: &str, head: u64) {
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    loop {
        let last = stream_last_sequence(url, stream).await;
        if last >= head {
            return;
        }
        assert!(Instant::now() < deadline, "the stream holds {last} of {head} messages");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stream holds the log: message i is position i, as `events --json` prints it with
/// personal data masked as for a subscriber.
fn assert_stream_is_the_log(dir: &Path, db: &str, messages: &[(u64, String, String, Value)], what: &str) {
    let log: Vec<Value> = stdout(&ledger_ok(dir, db, &["events", "--json"]))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(messages.len(), log.len(), "{what}: one message per event");
    for ((sequence, id, subject, body), event) in messages.iter().zip(&log) {
        assert_eq!(
            id,
            &sequence.to_string(),
            "{what}: message {sequence} is position {sequence}"
        );
        let mut shown = event.clone();
        shown["data"] = payload_for(Role::Subscriber, &event["data"]).into_owned();
        assert_eq!(
            body, &shown,
            "{what}: message {sequence} is the event as a subscriber sees it"
        );
        let expected_subject = format!(
            "t.{}.{}.{}",
            event["aggregatetype"].as_str().unwrap().to_lowercase(),
            event["subject"].as_str().unwrap().replace('.', "_"),
            event["type"].as_str().unwrap().split('.').nth(2).unwrap()
        );
        assert_eq!(subject, &expected_subject, "{what}");
    }
}

fn kill_9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn interrupt(mut child: Child) {
    let status = stop_with(&mut child, "-TERM");
    assert!(status.success(), "the relay stops cleanly on SIGTERM: {status:?}");
}

async fn kill_9_at_random_moments_on(backend: Backend) {
    let seed = std::env::var("LEDGER_RELAY_SEED").map_or(DEFAULT_SEED, |s| s.parse().unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ backend as u64);
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::fresh(backend).await;
    ledger_ok(dir.path(), &db.url, &["init"]);
    let nats = Nats::start(&dir.path().join("nats"));
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writing = writer(dir.path(), &db.url, 10, Arc::clone(&stop_writing));
    let mut after_kills = Vec::new();
    for _ in 0..KILLS {
        let running = relay(dir.path(), &db.url, &nats, "RELAYKILL");
        std::thread::sleep(Duration::from_millis(rng.random_range(150..1_500)));
        kill_9(running);
        after_kills.push(stream_last_sequence(&nats.url(), "RELAYKILL").await);
    }
    stop_writing.store(true, Ordering::SeqCst);
    writing.join().unwrap();
    // The kills came while the relays were relaying, not before they began or after the end.
    let grew = after_kills.windows(2).filter(|pair| pair[1] > pair[0]).count();
    assert!(grew >= 2, "{backend:?}: the stream grew between kills: {after_kills:?}");
    let head: u64 = stdout(&ledger_ok(dir.path(), &db.url, &["events", "--json"]))
        .lines()
        .count() as u64;
    let last = started_relay(dir.path(), &db.url, &nats, "RELAYKILL");
    wait_for_stream(&nats.url(), "RELAYKILL", head).await;
    interrupt(last);
    let messages = stream_messages(&nats.url(), "RELAYKILL").await;
    assert_stream_is_the_log(dir.path(), &db.url, &messages, &format!("{backend:?}, seed {seed}"));
    let status = stdout(&ledger_ok(
        dir.path(),
        &db.url,
        &["relay", "status", "--stream", "RELAYKILL", "--json"],
    ));
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["checkpoint"], head,
        "{backend:?}: the checkpoint follows the acknowledgements"
    );
    assert_eq!(status["lag_events"], 0);
}

#[tokio::test]
async fn a_relay_killed_at_random_moments_leaves_every_position_once_in_order_on_sqlite() {
    kill_9_at_random_moments_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_relay_killed_at_random_moments_leaves_every_position_once_in_order_on_postgres() {
    kill_9_at_random_moments_on(Backend::Postgres).await;
}

#[tokio::test]
async fn the_relay_rides_out_a_restart_of_nats() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::fresh(backend).await;
        ledger_ok(dir.path(), &db.url, &["init"]);
        let mut nats = Nats::start(&dir.path().join("nats"));
        let running = started_relay(dir.path(), &db.url, &nats, "RELAYRESTART");
        let stop_writing = Arc::new(AtomicBool::new(false));
        let writing = writer(dir.path(), &db.url, 10, Arc::clone(&stop_writing));
        wait_for_stream(&nats.url(), "RELAYRESTART", 100).await;
        nats = nats.restart(Duration::from_secs(2));
        // Appends go on while NATS is down and after it is back.
        std::thread::sleep(Duration::from_secs(2));
        stop_writing.store(true, Ordering::SeqCst);
        writing.join().unwrap();
        let head: u64 = stdout(&ledger_ok(dir.path(), &db.url, &["events", "--json"]))
            .lines()
            .count() as u64;
        wait_for_stream(&nats.url(), "RELAYRESTART", head).await;
        interrupt(running);
        let messages = stream_messages(&nats.url(), "RELAYRESTART").await;
        assert_stream_is_the_log(
            dir.path(),
            &db.url,
            &messages,
            &format!("{backend:?} across a NATS restart"),
        );
    }
}

#[test]
fn a_stream_of_another_prefix_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("refuse.sqlite3").display());
    ledger_ok(dir.path(), &db, &["init"]);
    let nats = Nats::start(&dir.path().join("nats"));
    let first = started_relay(dir.path(), &db, &nats, "SHARED");
    std::thread::sleep(Duration::from_millis(1_500));
    interrupt(first);
    let out = ledger_command(dir.path())
        .args([
            "--db",
            &db,
            "relay",
            "nats",
            "--url",
            &nats.url(),
            "--stream",
            "SHARED",
            "--subject-prefix",
            "other",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("stream SHARED takes the subjects [\"t.>\"], not \"other.>\""),
        "{said}"
    );
    // Told to stop the moment it runs, it still finds the stream is not its own.
    let mut stopped = ledger_command(dir.path())
        .args(["--db", &db, "relay", "nats", "--url", &nats.url()])
        .args(["--stream", "SHARED", "--subject-prefix", "other"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stopped.stderr.take().unwrap()));
    assert!(lines
        .next()
        .unwrap()
        .unwrap()
        .starts_with("ledger relay: events to stream"));
    // It may have ended already, refused: then the signal finds no process, as intended.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &stopped.id().to_string()])
        .status();
    let status = stopped.wait().unwrap();
    let said: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(2), "{said:?}");
    assert!(said.iter().any(|line| line.contains("takes the subjects")), "{said:?}");
}

#[test]
fn a_nats_restored_from_a_backup_gets_again_what_it_lost_and_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("restore.db").display());
    ledger_ok(dir.path(), &db, &["init"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut nats = Nats::start(&dir.path().join("nats"));
    let write = |name: &str, from: usize| {
        let lines: Vec<String> = (from..from + 40)
            .map(|n| format!(r#"{{"type":"list_instrument","command_id":"L{n}","instrument":"{n:06}.SZ","name":"I{n}","board":"main","risk_level":1}}"#))
            .collect();
        let file = dir.path().join(name);
        std::fs::write(&file, lines.join("\n")).unwrap();
        ledger_ok(dir.path(), &db, &["exec", file.to_str().unwrap()]);
    };
    let relay_until = |nats: &Nats, head: u64| {
        let running = started_relay(dir.path(), &db, nats, "RESTORED");
        runtime.block_on(wait_for_stream(&nats.url(), "RESTORED", head));
        interrupt(running);
    };
    write("first.jsonl", 0);
    relay_until(&nats, 40);
    nats = nats.back_up(&dir.path().join("backup"));
    write("second.jsonl", 40);
    relay_until(&nats, 80);
    let status: Value = serde_json::from_str(&stdout(&ledger_ok(
        dir.path(),
        &db,
        &["relay", "status", "--stream", "RESTORED", "--json"],
    )))
    .unwrap();
    assert_eq!(status["checkpoint"], 80);
    // NATS comes back from the backup: positions 41..80, acknowledged once, are gone.
    nats = nats.restore(&dir.path().join("backup"));
    assert_eq!(runtime.block_on(stream_last_sequence(&nats.url(), "RESTORED")), 40);
    relay_until(&nats, 80);
    let messages = runtime.block_on(stream_messages(&nats.url(), "RESTORED"));
    assert_stream_is_the_log(dir.path(), &db, &messages, "after a restore from a backup");
}

/// A copy of the ledger taken before its relay ran has the events but a checkpoint at 0;
/// relayed from that copy, the stream already ends at the head. Stopped the moment it
/// says it runs, the relay still learns where the stream ends and stores it.
#[test]
fn a_relay_stopped_as_it_starts_leaves_its_checkpoint_at_the_streams_end() {
    let dir = tempfile::tempdir().unwrap();
    let (path, copy) = (dir.path().join("stop.db"), dir.path().join("copy.db"));
    let db = format!("sqlite://{}", path.display());
    let copy_db = format!("sqlite://{}", copy.display());
    ledger_ok(dir.path(), &db, &["init"]);
    let lines: Vec<String> = (0..30)
        .map(|n| format!(r#"{{"type":"list_instrument","command_id":"L{n}","instrument":"{n:06}.SZ","name":"I{n}","board":"main","risk_level":1}}"#))
        .collect();
    let file = dir.path().join("list.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    ledger_ok(dir.path(), &db, &["exec", file.to_str().unwrap()]);
    std::fs::copy(&path, &copy).unwrap();
    for suffix in ["-wal", "-shm"] {
        let (from, to) = (
            format!("{}{suffix}", path.display()),
            format!("{}{suffix}", copy.display()),
        );
        if Path::new(&from).exists() {
            std::fs::copy(from, to).unwrap();
        }
    }
    let head: u64 = stdout(&ledger_ok(dir.path(), &db, &["events", "--json"]))
        .lines()
        .count() as u64;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nats = Nats::start(&dir.path().join("nats"));
    let first = started_relay(dir.path(), &db, &nats, "STOPSTART");
    runtime.block_on(wait_for_stream(&nats.url(), "STOPSTART", head));
    interrupt(first);
    interrupt(started_relay(dir.path(), &copy_db, &nats, "STOPSTART"));
    let status: Value = serde_json::from_str(&stdout(&ledger_ok(
        dir.path(),
        &copy_db,
        &["relay", "status", "--stream", "STOPSTART", "--json"],
    )))
    .unwrap();
    assert_eq!(status["checkpoint"], head, "the stream's end is stored");
    assert_eq!(status["lag_events"], 0);
    assert_eq!(runtime.block_on(stream_last_sequence(&nats.url(), "STOPSTART")), head);
}
