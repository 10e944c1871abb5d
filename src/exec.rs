//! `ledger exec FILE`: every line answered, the run goes on after refusals.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use ledger_commands::{Ledger, LineAnswer, LineRunner, Status};
use ledger_domain::MarketRules;
use ledger_eventstore::EventStore;

pub async fn run(
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    file: &Path,
    json: bool,
    recorded_at: Option<DateTime<Utc>>,
) -> anyhow::Result<ExitCode> {
    let reader = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open command file {}", file.display()))?,
    );
    let mut ledger = Ledger::new(store, rules);
    if let Some(at) = recorded_at {
        ledger.set_clock(move || at);
    }
    let mut runner = LineRunner::new(&mut ledger, "cli:exec");
    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    // Drawn on stderr only when it is a terminal, so piped answers stay clean.
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} lines answered ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index as u64 + 1;
        let text = line.with_context(|| format!("{}: line {line_no} cannot be read as UTF-8 text", file.display()))?;
        let answers = runner.push(line_no, &text).await?;
        progress.inc(answers.len() as u64);
        print_answers(&mut out, &answers, json, &mut tally)?;
    }
    let answers = runner.flush().await?;
    progress.finish_and_clear();
    print_answers(&mut out, &answers, json, &mut tally)?;
    if !json {
        let total: u64 = tally.values().sum();
        let parts: Vec<String> = tally.iter().map(|(status, n)| format!("{n} {status}")).collect();
        writeln!(out, "{total} commands: {}", parts.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_answers(
    out: &mut impl Write,
    answers: &[LineAnswer],
    json: bool,
    tally: &mut BTreeMap<&'static str, u64>,
) -> anyhow::Result<()> {
    for answer in answers {
        *tally.entry(answer.status.as_str()).or_default() += 1;
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
