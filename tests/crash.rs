//! Crash tests: `ledger exec` killed with SIGKILL at seeded moments while it writes,
//! restarted on the same database again and again, then let finish, must end exactly
//! where one uninterrupted run of the same file ends: every answered command present
//! once with the outcome it was answered with, the same events and head hash, verify
//! passing, the same read models (caught up, and rebuilt). A second test kills
//! `ledger projections` mid-rebuild. The seed is random unless `LEDGER_CRASH_SEED`
//! gives it; docs/operations.md ("Crash tests") says how to run longer.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use ledger_testkit::{Backend, TestDatabase};
use rand::RngExt;

mod common;
use common::ledger_ok;
// The crash tests' own helpers, beside this file.
#[path = "crash/checks.rs"]
mod checks;
#[path = "crash/harness.rs"]
mod harness;
use checks::{check_kills, compare_answers, compare_logs, compare_read_models, log, read_models, verify, Problems};
use harness::{commands_file, exec, kill_plan, killed_series, settings, spawn, wait, BATCH_COMMANDS, SIGKILL};

#[tokio::test]
async fn exec_killed_again_and_again_ends_as_one_uninterrupted_run_on_sqlite() {
    exec_killed_again_and_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn exec_killed_again_and_again_ends_as_one_uninterrupted_run_on_postgres() {
    exec_killed_again_and_again(Backend::Postgres).await;
}

#[tokio::test]
async fn projections_killed_mid_rebuild_end_equal_to_the_replay_on_sqlite() {
    projections_killed_mid_rebuild(Backend::Sqlite).await;
}

#[tokio::test]
async fn projections_killed_mid_rebuild_end_equal_to_the_replay_on_postgres() {
    projections_killed_mid_rebuild(Backend::Postgres).await;
}

/// The PostgreSQL tests of this file one at a time: a reader there waits for every older
/// transaction of the whole server (`pg_snapshot_xmin`), so two of them slow each other.
static POSTGRES_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn turn(backend: Backend) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    match backend {
        Backend::Postgres => Some(POSTGRES_TURN.lock().await),
        Backend::Sqlite => None,
    }
}

/// Says on standard error how far a test has come and when, for slow runs and failures.
struct Progress {
    name: String,
    started: Instant,
}

impl Progress {
    fn new(name: String) -> Progress {
        eprintln!("{name}: {}", settings().replay());
        Progress {
            name,
            started: Instant::now(),
        }
    }

    fn say(&self, what: &str) {
        eprintln!("{}: {what} at {:.1} s", self.name, self.started.elapsed().as_secs_f64());
    }
}

async fn exec_killed_again_and_again(backend: Backend) {
    let settings = settings();
    let _turn = turn(backend).await;
    let progress = Progress::new(format!("crash ({backend:?})"));
    let mut rng = settings.rng(backend as u64);
    let file = commands_file();
    let dir = tempfile::tempdir().unwrap();

    let reference_db = TestDatabase::fresh(backend).await;
    let reference = exec(dir.path(), &reference_db.url, file, None);
    assert!(reference.status.success(), "{}", reference.describe());
    let lines = reference.answers.len();
    let batches = lines.div_ceil(BATCH_COMMANDS) as u32;
    let batch_ms = (reference.elapsed / batches).as_millis() as u64;
    progress.say(&format!("uninterrupted run of {lines} lines done"));

    let plan = kill_plan(&mut rng, settings.kills, lines, batch_ms);
    let crash_db = TestDatabase::fresh(backend).await;
    let runs = killed_series(dir.path(), &crash_db.url, (file, lines), &plan, |k, run| {
        progress.say(&format!("run {k}: {}", run.describe()));
    });
    let mut problems = Problems::default();
    check_kills(&mut problems, &runs, settings.kills);
    let rerun = exec(dir.path(), &crash_db.url, file, None);
    compare_answers(&mut problems, &runs, &rerun, &reference);
    progress.say("answers compared");

    let expected = read_models(dir.path(), &reference_db.url);
    compare_read_models(
        &mut problems,
        "caught up",
        &expected,
        &read_models(dir.path(), &crash_db.url),
    );
    // After the read-outs, so that verify compares the caught-up read models with its replay too.
    let head = verify(&mut problems, dir.path(), &crash_db.url);
    let reference_log = log(dir.path(), &reference_db.url);
    compare_logs(
        &mut problems,
        &runs,
        &reference_log,
        &log(dir.path(), &crash_db.url),
        &head,
    );
    progress.say("read models, verify and logs compared");
    ledger_ok(dir.path(), &crash_db.url, &["projections", "rebuild"]);
    compare_read_models(
        &mut problems,
        "rebuilt",
        &expected,
        &read_models(dir.path(), &crash_db.url),
    );
    progress.say("rebuilt read models compared");
    assert!(
        problems.is_empty(),
        "{backend:?}, {}, after {} runs:{}",
        settings.replay(),
        runs.len(),
        problems.report()
    );
}

/// Kills of `ledger projections` per backend: a rebuild, then a catch-up, in turn.
const PROJECTION_KILLS: usize = 4;
/// Most kills per backend: past `PROJECTION_KILLS`, more rounds are run only while no
/// kill has landed yet (a run can end before its kill comes, and a faster rebuild
/// than the one timed makes that likelier).
const MAX_PROJECTION_KILLS: usize = 12;

async fn projections_killed_mid_rebuild(backend: Backend) {
    let settings = settings();
    let _turn = turn(backend).await;
    let progress = Progress::new(format!("crash projections ({backend:?})"));
    let mut rng = settings.rng(0x5052_4f4a ^ backend as u64);
    let dir = tempfile::tempdir().unwrap();
    // The first half of the file: a smaller log, the same kinds of events.
    let text = std::fs::read_to_string(commands_file()).unwrap();
    let half: Vec<&str> = text.lines().take(text.lines().count() / 2).collect();
    let file = dir.path().join("first-half.jsonl");
    std::fs::write(&file, half.join("\n") + "\n").unwrap();

    let db = TestDatabase::fresh(backend).await;
    assert!(exec(dir.path(), &db.url, &file, None).status.success());
    ledger_ok(dir.path(), &db.url, &["projections", "run"]);
    let expected = read_models(dir.path(), &db.url);
    let rebuilding = Instant::now();
    ledger_ok(dir.path(), &db.url, &["projections", "rebuild"]);
    let rebuild_ms = rebuilding.elapsed().as_millis() as u64;
    progress.say(&format!(
        "{} lines run and projected, rebuilt in {rebuild_ms} ms",
        half.len()
    ));

    // `ledger projections` prints nothing until it is done, so the kills come after
    // seeded delays within the time a rebuild takes; one of them at least must land.
    let mut runs: Vec<(String, ExitStatus)> = Vec::new();
    let landed = |runs: &[(String, ExitStatus)]| runs.iter().any(|(_, status)| status.signal() == Some(SIGKILL));
    for k in 0..MAX_PROJECTION_KILLS {
        if k >= PROJECTION_KILLS && landed(&runs) {
            break;
        }
        let action = if k % 2 == 0 { "rebuild" } else { "run" };
        let delay_ms = rng.random_range(0..rebuild_ms.max(1));
        let mut child = spawn(dir.path(), &["--db", &db.url, "projections", action]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let (status, stderr) = wait(child);
        assert!(
            status.signal() == Some(SIGKILL) || status.success(),
            "projections {action}: {status} {stderr}"
        );
        runs.push((format!("projections {action}, kill at {delay_ms} ms: {status}"), status));
    }
    let described: Vec<&str> = runs.iter().map(|(text, _)| text.as_str()).collect();
    progress.say(&described.join("; "));
    assert!(
        landed(&runs),
        "{}: no kill landed before `ledger projections` was done: {}",
        settings.replay(),
        described.join("; ")
    );
    ledger_ok(dir.path(), &db.url, &["projections", "run"]);
    let mut problems = Problems::default();
    compare_read_models(
        &mut problems,
        "after the kills",
        &expected,
        &read_models(dir.path(), &db.url),
    );
    verify(&mut problems, dir.path(), &db.url);
    progress.say("read models and verify checked");
    assert!(
        problems.is_empty(),
        "{backend:?}, {}, {}:{}",
        settings.replay(),
        described.join("; "),
        problems.report()
    );
}
