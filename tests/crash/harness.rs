//! Running `ledger exec` and `ledger projections` as child processes and killing them
//! with SIGKILL at seeded moments: the settings (seed, kills, file size), the command
//! file, the answers as the binary prints them, and the series of killed runs.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::common::{ledger_command, ledger_ok};

/// The instant every event is recorded at, so that two runs of one file give one chain.
pub const RECORDED_AT: &str = "2024-03-04T01:30:00Z";
/// Kills of `ledger exec` per backend when `LEDGER_CRASH_KILLS` is not set (CI).
pub const DEFAULT_KILLS: usize = 10;
/// Accounts of the demo's command file when `LEDGER_CRASH_ACCOUNTS` is not set: about
/// 4,900 lines and 5,600 events, an `exec` of a few seconds in a debug build.
pub const DEFAULT_ACCOUNTS: usize = 100;
/// Commands the engine decides and commits together; its answers come a batch at a time.
pub const BATCH_COMMANDS: usize = ledger_app::batch::MAX_SUBMISSIONS;
/// Kills aim at most this many batches before the end of the file, so that the run is
/// still working when the kill comes (a kill waits up to one batch's time).
const KILL_MARGIN_BATCHES: usize = 2;
/// Oldest command file left in the target folder by an earlier run before it is removed.
const STALE_COMMAND_FILE_S: u64 = 24 * 3600;
pub const SIGKILL: i32 = 9;

/// What a crash run does: its seed (random unless given) and its size.
#[derive(Debug)]
pub struct Settings {
    pub seed: u64,
    pub kills: usize,
    pub accounts: usize,
}

/// The settings of this test process, read once from the environment.
pub fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings {
        seed: env_number("LEDGER_CRASH_SEED").unwrap_or_else(random_seed),
        kills: env_number("LEDGER_CRASH_KILLS").map_or(DEFAULT_KILLS, |n| n as usize),
        accounts: env_number("LEDGER_CRASH_ACCOUNTS").map_or(DEFAULT_ACCOUNTS, |n| n as usize),
    })
}

impl Settings {
    /// The environment that replays this run (kill moments also depend on the machine's speed).
    pub fn replay(&self) -> String {
        format!(
            "replay with LEDGER_CRASH_SEED={} LEDGER_CRASH_KILLS={} LEDGER_CRASH_ACCOUNTS={}",
            self.seed, self.kills, self.accounts
        )
    }

    /// The random numbers of one test, from the seed and the test's own salt.
    pub fn rng(&self, salt: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
    )
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// The demo's command file for the settings, generated once per test process.
pub fn commands_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let settings = settings();
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_command_files(target);
        let file = target.join(format!("crash-commands-{}-{}.jsonl", settings.accounts, settings.seed));
        let work = tempfile::tempdir().expect("a temporary directory");
        let db = format!("sqlite://{}", work.path().join("demo.db").display());
        let (accounts, seed) = (settings.accounts.to_string(), settings.seed.to_string());
        let out = file.to_str().expect("the target folder is UTF-8");
        let started = Instant::now();
        ledger_ok(
            work.path(),
            &db,
            &["demo", "--accounts", &accounts, "--seed", &seed, "--commands-out", out],
        );
        eprintln!(
            "crash: demo command file made in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        file
    })
}

fn remove_stale_command_files(target: &Path) {
    let Ok(entries) = std::fs::read_dir(target) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .is_some_and(|modified| modified.elapsed().unwrap_or_default() > Duration::from_secs(STALE_COMMAND_FILE_S));
        if stale && entry.file_name().to_string_lossy().starts_with("crash-commands-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// One line of `ledger exec --json`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub line: u64,
    pub status: String,
    pub code: Option<String>,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    pub first_status: Option<String>,
    pub first_code: Option<String>,
    pub text: String,
}

/// A command's outcome as the store keeps it (`command_outcomes`), which every later
/// submission of its command id is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub status: String,
    pub code: Option<String>,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
}

impl Answer {
    pub fn parse(text: &str) -> Answer {
        let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("an answer is JSON ({e}): {text}"));
        let string = |key: &str| value[key].as_str().map(str::to_owned);
        Answer {
            line: value["line"]
                .as_u64()
                .unwrap_or_else(|| panic!("an answer names its line: {text}")),
            status: string("status").unwrap_or_else(|| panic!("an answer has a status: {text}")),
            code: string("code"),
            first_position: value["first_position"].as_u64(),
            last_position: value["last_position"].as_u64(),
            first_status: string("first_status"),
            first_code: string("first_code"),
            text: text.to_owned(),
        }
    }

    /// The outcome this answer stands for, as stored; None for a malformed line, which
    /// is never recorded.
    pub fn recorded(&self) -> Option<Recorded> {
        let code = self.code.as_deref();
        if self.status == "rejected" && code == Some("malformed") {
            return None;
        }
        let (status, code) = match (&self.first_status, code) {
            (Some(first), _) => (first.clone(), self.first_code.clone()),
            // A repeated execution id is answered `duplicate` but stored as a refusal:
            // a later submission of the same command id answers `first_status: rejected`.
            (None, Some("duplicate_exec")) => ("rejected".to_owned(), self.code.clone()),
            (None, _) => (self.status.clone(), self.code.clone()),
        };
        Some(Recorded {
            status,
            code,
            first_position: self.first_position,
            last_position: self.last_position,
        })
    }
}

impl Recorded {
    /// Whether `stored`, what the log holds now, is this outcome. A repeated command id
    /// answered in the batch that decided its first submission names no positions (the
    /// events are not written yet), so they are compared only where this names them.
    pub fn is_stored_as(&self, stored: &Recorded) -> bool {
        let positions_named = self.first_position.is_some() || self.last_position.is_some();
        self.status == stored.status
            && self.code == stored.code
            && (!positions_named
                || (self.first_position == stored.first_position && self.last_position == stored.last_position))
    }
}

/// When to kill a run: once it has answered `after_answers` lines, `delay_ms` later.
#[derive(Debug, Clone, Copy)]
pub struct KillPoint {
    pub after_answers: usize,
    pub delay_ms: u64,
}

/// One run of `ledger exec` on the command file, killed or not.
#[derive(Debug)]
pub struct ExecRun {
    pub kill: Option<KillPoint>,
    /// Every answer the run printed whole before it ended.
    pub answers: Vec<Answer>,
    pub status: ExitStatus,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ExecRun {
    pub fn killed(&self) -> bool {
        self.status.signal() == Some(SIGKILL)
    }

    /// When the run was to be killed.
    pub fn describe_kill(&self) -> String {
        self.kill.map_or("run to the end".to_owned(), |k| {
            format!("kill after {} answers + {} ms", k.after_answers, k.delay_ms)
        })
    }

    /// The run's one-line description for a failure message.
    pub fn describe(&self) -> String {
        let stderr = self.stderr.trim();
        format!(
            "{}: {} answers seen, {} in {:.2} s{}",
            self.describe_kill(),
            self.answers.len(),
            self.status,
            self.elapsed.as_secs_f64(),
            if stderr.is_empty() {
                String::new()
            } else {
                format!(", stderr: {stderr}")
            }
        )
    }
}

/// Runs `ledger exec --json --recorded-at RECORDED_AT FILE` on `db`, reading its answers
/// as they come, and kills it with SIGKILL at `kill` when given. The answers are read
/// by a thread of their own all along, so the run never waits on a full pipe.
pub fn exec(dir: &Path, db: &str, file: &Path, kill: Option<KillPoint>) -> ExecRun {
    let started = Instant::now();
    let file = file.to_str().expect("the command file's path is UTF-8");
    let args = ["--db", db, "exec", "--json", "--recorded-at", RECORDED_AT, file];
    let mut child = spawn(dir, &args);
    let out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let (answered, counts) = mpsc::channel();
    let reader = std::thread::spawn(move || read_answers(out, &answered));
    if let Some(kill) = kill {
        // Ends when enough answers came, or when the reader stops (the run ended first).
        while counts.recv().is_ok_and(|count| count < kill.after_answers) {}
        std::thread::sleep(Duration::from_millis(kill.delay_ms));
        // An error here only means the run had already ended; its status says so.
        let _ = child.kill();
    }
    let answers = reader.join().expect("the answer reader does not panic");
    let (status, stderr) = wait(child);
    ExecRun {
        kill,
        answers,
        status,
        stderr,
        elapsed: started.elapsed(),
    }
}

/// Runs `ledger ARGS` with its output piped (standard error read when it ends).
pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    ledger_command(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ledger binary starts")
}

/// Waits for a child and reads its standard error, which is short (no terminal, no progress bar).
pub fn wait(mut child: Child) -> (ExitStatus, String) {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait().expect("the ledger child can be waited for");
    (status, stderr)
}

/// Reads whole answer lines until the output ends, saying how many it has after each;
/// a line cut short by the kill is not an answer.
fn read_answers(mut out: impl BufRead, answered: &mpsc::Sender<usize>) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match out.read_line(&mut line) {
            Ok(0) | Err(_) => return answers,
            Ok(_) if !line.ends_with('\n') => return answers,
            Ok(_) => answers.push(Answer::parse(line.trim_end())),
        }
        // Nobody listens once the kill is decided, or for a run to the end.
        let _ = answered.send(answers.len());
    }
}

/// Kill points spread over the file before its last batches, with delays of up to one
/// batch's time (`batch_ms`) so that kills fall while a batch is decided, committed or
/// answered. Drawn in full before the first run, so the seed alone decides them.
pub fn kill_plan(rng: &mut ChaCha8Rng, kills: usize, lines: usize, batch_ms: u64) -> Vec<KillPoint> {
    let last = lines.saturating_sub(KILL_MARGIN_BATCHES * BATCH_COMMANDS);
    assert!(
        last >= kills,
        "a file of {lines} lines is too small for {kills} kills: raise LEDGER_CRASH_ACCOUNTS"
    );
    let mut points: Vec<KillPoint> = (0..kills)
        .map(|_| KillPoint {
            after_answers: rng.random_range(0..last),
            delay_ms: rng.random_range(0..batch_ms.max(1)),
        })
        .collect();
    points.sort_by_key(|p| p.after_answers);
    points
}

/// `ledger exec` killed at each point in turn, on one database, then run to its end. A
/// run is killed no earlier than the answer of the last line an earlier run answered,
/// so that every kill falls in work not done before. Stops early if a run ends unkilled.
/// `lines` is the file's; `on_run` hears of each run as it ends.
pub fn killed_series(
    dir: &Path,
    db: &str,
    (file, lines): (&Path, usize),
    plan: &[KillPoint],
    mut on_run: impl FnMut(usize, &ExecRun),
) -> Vec<ExecRun> {
    let mut runs: Vec<ExecRun> = Vec::new();
    let mut answered = 0;
    let margin = KILL_MARGIN_BATCHES * BATCH_COMMANDS;
    for point in plan {
        let after_answers = point.after_answers.max(answered);
        // An earlier run may have gone past the margin: with less work left than that,
        // the delay shrinks in step so that the kill still comes before the end.
        let left = lines.saturating_sub(after_answers).min(margin);
        let kill = KillPoint {
            after_answers,
            delay_ms: point.delay_ms * left as u64 / margin as u64,
        };
        let run = exec(dir, db, file, Some(kill));
        on_run(runs.len(), &run);
        answered = answered.max(run.answers.len());
        let killed = run.killed();
        runs.push(run);
        if !killed {
            return runs;
        }
    }
    let last = exec(dir, db, file, None);
    on_run(runs.len(), &last);
    runs.push(last);
    runs
}
