//! `ledger verify`: the auditor's proof that the log is intact.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ledger_app::{EventStore, Progress, VerifyReport};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Print the report as one JSON object instead of text (the text's `head hash` line
    /// is the one scripts read).
    #[arg(long)]
    json: bool,
    /// Accept an empty log (a fresh ledger) instead of failing on it: by default an empty
    /// log fails, since where a ledger was expected it is most often the wrong database.
    #[arg(long)]
    allow_empty: bool,
    /// Also check the signed checkpoints of this file (`ledger checkpoint`): each must be
    /// signed by --pubkey and name the hash the log still has at its position.
    #[arg(long, value_name = "FILE", requires = "pubkey")]
    checkpoints: Option<PathBuf>,
    /// The public key trusted for --checkpoints (FILE.pub of `ledger checkpoint keygen`).
    #[arg(long, value_name = "FILE", requires = "checkpoints")]
    pubkey: Option<PathBuf>,
}

pub async fn run(store: &dyn EventStore, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let VerifyArgs {
        json,
        allow_empty,
        checkpoints,
        pubkey,
    } = args;
    let checked = match (&checkpoints, &pubkey) {
        (Some(file), Some(key)) => Some(crate::checkpoint::check_file(store, file, key).await?),
        _ => None,
    };
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} verifying [{bar:40}] {pos}/{len} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let report = ledger_app::verify(store, |done: Progress| {
        progress.set_length(done.total);
        progress.set_position(done.done);
    })
    .await?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let events_per_second = report.events as f64 / seconds.max(f64::EPSILON);
    let refused_as_empty = report.events == 0 && !allow_empty;
    if json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(checked) = &checked {
            value["checkpoints"] = serde_json::to_value(checked)?;
        }
        value["empty"] = serde_json::json!(report.events == 0);
        value["seconds"] = serde_json::json!(seconds);
        value["events_per_second"] = serde_json::json!(events_per_second.round());
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if !refused_as_empty {
        print_report(&report, seconds, events_per_second, store.backend());
    }
    let checkpoints_hold = match &checked {
        Some(checked) if json => checked.findings.is_empty(),
        Some(checked) => crate::checkpoint::print_report(checked),
        None => true,
    };
    if refused_as_empty {
        eprintln!(
            "the log is empty: there is nothing to verify. If this is the database you meant (a fresh \
             ledger), pass --allow-empty; otherwise check --db"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if report.is_ok() && checkpoints_hold {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(report: &VerifyReport, seconds: f64, events_per_second: f64, backend: &str) {
    println!(
        "{} events in {} streams, {} accounts, verified in {seconds:.2} s ({events_per_second:.0} events/s) on {backend}",
        report.events, report.streams, report.accounts,
    );
    println!("head hash {}", report.head_hash);
    if !report.projections_checked {
        println!("note: the read models are behind the log and were not compared; run `ledger projections run` first");
    }
    match report.first_broken_position {
        None if report.is_ok() && report.projections_checked => {
            println!("OK: the hash chain, positions, sequences, replay, invariants and read models all hold")
        }
        None if report.is_ok() => {
            println!("OK: the hash chain, positions, sequences, replay and invariants all hold")
        }
        None => println!("BROKEN: {} problems", report.problem_count),
        Some(position) => println!("BROKEN at position {position}: {} problems", report.problem_count),
    }
    for problem in &report.problems {
        let at = problem.position.map_or("-".to_owned(), |p| p.to_string());
        // The kind as the JSON names it (`hash_mismatch`), not Rust's debug form.
        let kind = serde_json::to_value(problem.kind)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        println!("  {at:>8}  {kind}: {}", problem.detail);
    }
}
