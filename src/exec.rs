//! `ledger exec FILE` (or `-` for standard input): every line answered and printed as its batch is done.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use ledger_app::{AppError, CommandLines, Ledger, LineAnswer, LineBatches, Status};

/// The actor recorded with the events of `ledger exec`.
const EXEC_ACTOR: &str = "cli:exec";

/// `--recorded-at`: an RFC 3339 instant.
pub fn parse_instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("--recorded-at {text:?} is not an RFC 3339 instant like 2024-03-04T09:30:00Z"))
}

pub async fn run(
    mut ledger: Ledger,
    file: &Path,
    json: bool,
    recorded_at: Option<DateTime<Utc>>,
) -> anyhow::Result<ExitCode> {
    let mut lines = CommandLines::new(open_commands(file)?);
    if let Some(at) = recorded_at {
        ledger.set_clock(move || at);
    }
    let mut batches = LineBatches::new(&mut ledger, EXEC_ACTOR);
    // Drawn on stderr only when it is a terminal, so piped answers stay clean.
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} lines answered ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A line that cannot be read is reported with where it came from.
    let source = if file == Path::new("-") {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    // The last line answered: an error that stops the run says up to where it is committed.
    let mut answered_through = 0;
    while let Some((line_no, text)) = lines.next_line().with_context(|| source.clone())? {
        let answers = batches
            .push(line_no, text)
            .await
            .map_err(|e| stopped(e, answered_through))?;
        progress.inc(answers.len() as u64);
        print_answers(&mut out, &answers, json)?;
        answered_through = answers.last().map_or(answered_through, |answer| answer.line);
    }
    let answers = batches.finish().await.map_err(|e| stopped(e, answered_through))?;
    progress.finish_and_clear();
    print_answers(&mut out, &answers, json)?;
    if !json {
        let tally = batches.tally();
        let parts: Vec<String> = tally
            .by_status
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        writeln!(out, "{} commands: {}", tally.total(), parts.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// An error that stopped the run after line `answered_through`: one sentence saying what
/// is committed and that a rerun is safe (printed with its stable code first, as every
/// error of the application layer is).
fn stopped(error: AppError, answered_through: u64) -> anyhow::Error {
    AppError::interrupted(error, answered_through).into()
}

/// The command file, or standard input for `-` (a file piped from another program).
fn open_commands(file: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if file == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let opened = std::fs::File::open(file).with_context(|| format!("cannot open command file {}", file.display()))?;
    Ok(Box::new(BufReader::new(opened)))
}

fn print_answers(out: &mut impl Write, answers: &[LineAnswer], json: bool) -> anyhow::Result<()> {
    for answer in answers {
        if json {
            writeln!(out, "{}", serde_json::to_string(answer)?)?;
            continue;
        }
        let id = answer.command_id.as_deref().unwrap_or("-");
        match answer.status {
            Status::Accepted => writeln!(
                out,
                "line {:>6}  {id:<16} accepted ({} events)",
                answer.line, answer.events
            )?,
            _ => writeln!(
                out,
                "line {:>6}  {id:<16} {} {}: {}",
                answer.line,
                answer.status.as_str(),
                answer.code.as_deref().unwrap_or(""),
                answer.message.as_deref().unwrap_or("")
            )?,
        }
    }
    Ok(())
}
