//! What a database holds after a crash run, and its comparison with the database of
//! an uninterrupted run: the answers, the log (event by event, then the head hash),
//! verify's verdict and the read models.

use std::path::Path;

use serde_json::Value;

use crate::common::{ledger_ok, ledger_on, stdout};
use crate::harness::{ExecRun, RECORDED_AT};

/// The read-outs of the read models compared, each printed with `--json`.
pub const READ_OUTS: [&str; 4] = ["balances", "positions", "orders", "trades"];
/// Most problems of one kind written out in a failure message; the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = 12;

/// Everything that went wrong, by kind, so that one failure shows all of them.
#[derive(Default)]
pub struct Problems {
    found: Vec<(String, Vec<String>)>,
}

impl Problems {
    pub fn add(&mut self, kind: &str, problem: String) {
        match self.found.iter_mut().find(|(k, _)| k == kind) {
            Some((_, list)) => list.push(problem),
            None => self.found.push((kind.to_owned(), vec![problem])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub fn report(&self) -> String {
        let mut text = String::new();
        for (kind, list) in &self.found {
            text.push_str(&format!("\n== {kind}: {} problem(s)\n", list.len()));
            for problem in list.iter().take(MAX_PROBLEMS_SHOWN) {
                text.push_str(&format!("  - {problem}\n"));
            }
            if list.len() > MAX_PROBLEMS_SHOWN {
                text.push_str(&format!("  … and {} more\n", list.len() - MAX_PROBLEMS_SHOWN));
            }
        }
        text
    }
}

/// Every planned kill landed while its run was working, and the last run finished.
pub fn check_kills(problems: &mut Problems, runs: &[ExecRun], planned: usize) {
    let (last, killed) = runs.split_last().expect("a series has a run");
    if killed.len() != planned || killed.iter().any(|run| !run.killed()) || !last.status.success() {
        let described: Vec<String> = runs.iter().map(ExecRun::describe).collect();
        problems.add(
            "kills",
            format!("{planned} kills planned; the runs were: {}", described.join("; ")),
        );
    }
}

/// The read-outs, as printed (each catches the read models up first).
pub fn read_models(dir: &Path, db: &str) -> Vec<(&'static str, String)> {
    READ_OUTS
        .iter()
        .map(|name| (*name, stdout(&ledger_ok(dir, db, &[name, "--json"]))))
        .collect()
}

pub fn compare_read_models(
    problems: &mut Problems,
    when: &str,
    expected: &[(&str, String)],
    actual: &[(&str, String)],
) {
    for ((name, want), (_, got)) in expected.iter().zip(actual) {
        if want != got {
            let (line, want_line, got_line) = first_different_line(want, got);
            problems.add(
                "read models",
                format!("`{name} --json` {when}, line {line}: expected {want_line:?}, got {got_line:?}"),
            );
        }
    }
}

fn first_different_line<'a>(want: &'a str, got: &'a str) -> (usize, &'a str, &'a str) {
    let (mut want_lines, mut got_lines) = (want.lines(), got.lines());
    for line in 1.. {
        let (w, g) = (want_lines.next(), got_lines.next());
        if w != g {
            return (line, w.unwrap_or("<end>"), g.unwrap_or("<end>"));
        }
    }
    unreachable!("two different texts differ in some line")
}

/// Every answer a run printed stands for what the log now holds for its command id (a
/// rerun answers `duplicate` with the first outcome), and so does every answer of the
/// uninterrupted run: the same outcome for every command, whichever run decided it.
pub fn compare_answers(problems: &mut Problems, runs: &[ExecRun], rerun: &ExecRun, reference: &ExecRun) {
    let lines = reference.answers.len();
    if rerun.answers.len() != lines || !rerun.status.success() {
        problems.add(
            "answers",
            format!(
                "the rerun answered {} of {lines} lines: {}",
                rerun.answers.len(),
                rerun.describe()
            ),
        );
        return;
    }
    const SEEN: &str = "commands answered by the killed runs";
    const SAME: &str = "outcomes of the uninterrupted run";
    let seen = runs
        .iter()
        .enumerate()
        .flat_map(|(k, run)| run.answers.iter().map(move |answer| (SEEN, format!("run {k}"), answer)));
    let uninterrupted = reference
        .answers
        .iter()
        .map(|answer| (SAME, "the uninterrupted run".to_owned(), answer));
    for (kind, who, answer) in seen.chain(uninterrupted) {
        let now = &rerun.answers[answer.line as usize - 1];
        let stored_so = match (answer.recorded(), now.recorded()) {
            (Some(answered), Some(stored)) => answered.is_stored_as(&stored),
            (answered, stored) => answered == stored,
        };
        if !stored_so {
            problems.add(
                kind,
                format!("{who} answered {}; the rerun answers {}", answer.text, now.text),
            );
        }
    }
}

/// One event of `ledger events --json`.
pub struct LoggedEvent {
    pub position: u64,
    /// Stream, sequence, type and command id: where the event is and what wrote it.
    pub identity: String,
    pub payload: String,
    pub hash: String,
}

pub fn log(dir: &Path, db: &str) -> Vec<LoggedEvent> {
    stdout(&ledger_ok(dir, db, &["events", "--json"]))
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("an event is JSON ({e}): {line}"));
            assert_eq!(event["time"].as_str().map(|t| &t[..19]), Some(&RECORDED_AT[..19]));
            LoggedEvent {
                position: event["position"].as_u64().expect("an event has a position"),
                identity: format!(
                    "{}/{} #{} {} of {}",
                    event["aggregatetype"].as_str().unwrap_or("?"),
                    event["subject"].as_str().unwrap_or("?"),
                    event["sequence"],
                    event["type"].as_str().unwrap_or("?"),
                    event["commandid"].as_str().unwrap_or("?"),
                ),
                payload: event["data"].to_string(),
                hash: event["hash"].as_str().unwrap_or("?").to_owned(),
            }
        })
        .collect()
}

/// The same events in the same places (no command lost or applied twice), then the
/// same bytes: the same head hash (`head`, as verify gives it), and where the chains
/// part if they do.
pub fn compare_logs(
    problems: &mut Problems,
    runs: &[ExecRun],
    expected: &[LoggedEvent],
    actual: &[LoggedEvent],
    head: &str,
) {
    if expected.len() != actual.len() {
        problems.add(
            "events",
            format!(
                "{} events, the uninterrupted run wrote {}",
                actual.len(),
                expected.len()
            ),
        );
    }
    if let Some((want, got)) = expected.iter().zip(actual).find(|(w, g)| w.identity != g.identity) {
        problems.add(
            "events",
            format!(
                "at position {}: {}, the uninterrupted run has {}",
                got.position, got.identity, want.identity
            ),
        );
    }
    let Some(expected_head) = expected.last().map(|e| e.hash.as_str()) else {
        return problems.add("events", "the uninterrupted run wrote no event".to_owned());
    };
    if head == expected_head {
        return;
    }
    let parted = expected.iter().zip(actual).filter(|(w, g)| w.payload != g.payload);
    let mut payloads = 0;
    for (want, got) in parted {
        payloads += 1;
        if payloads <= 3 {
            problems.add(
                "head hash (same file, same --recorded-at, same chain)",
                format!(
                    "position {} ({}), written by {}: payload {} where the uninterrupted run wrote {}",
                    got.position,
                    got.identity,
                    writer_of(runs, got.position),
                    got.payload,
                    want.payload
                ),
            );
        }
    }
    problems.add(
        "head hash (same file, same --recorded-at, same chain)",
        format!("head hash {head} but the uninterrupted run's is {expected_head}; {payloads} payloads differ"),
    );
}

/// Which run of the series wrote a position: the run that answered its command first.
fn writer_of(runs: &[ExecRun], position: u64) -> String {
    let first_answer = runs.iter().enumerate().find_map(|(k, run)| {
        run.answers.iter().find_map(|a| {
            let written_here = a.status != "duplicate"
                && a.first_position.is_some_and(|first| first <= position)
                && a.last_position.is_some_and(|last| position <= last);
            written_here.then(|| format!("run {k} ({}), line {}", run.describe_kill(), a.line))
        })
    });
    first_answer.unwrap_or_else(|| "a batch committed just before a kill, its answers never printed".to_owned())
}

/// `ledger verify --json` passes and has compared the read models with the replay;
/// returns the head hash it names.
pub fn verify(problems: &mut Problems, dir: &Path, db: &str) -> String {
    let out = ledger_on(dir, db, &["verify", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if !out.status.success() || report["problem_count"] != 0 {
        let text = format!("{} {}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        problems.add("verify", format!("verify failed ({}): {text}", out.status));
    }
    if report["projections_checked"] != true {
        problems.add("verify", format!("verify did not compare the read models: {report}"));
    }
    report["head_hash"].as_str().unwrap_or_default().to_owned()
}
