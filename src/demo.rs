//! `ledger demo`: its arguments, where its files go, and the printing of its
//! report. The run and the report itself (read models, reconciliation, statement,
//! verdict) are `ledger_app::demo::run_with_report`'s.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressStyle};
use ledger_app::demo::{DemoFiles, DemoProgress, DemoReport, DemoSummary};
use ledger_app::{AppError, EventStore, Ledger, MarketRules};

use crate::readouts::{align_numbers, balance_table, position_table};

/// Fresh database the demo writes when no `--db` is given; replaced at each run.
pub const DEMO_DATABASE_FILE: &str = "ledger-demo.db";
/// The bank's custody file and the depository's holdings file the demo writes and reconciles.
pub const DEMO_BANK_FILE: &str = "ledger-demo-bank.csv";
pub const DEMO_DEPOSITORY_FILE: &str = "ledger-demo-depository.csv";
/// One customer's statement the demo writes.
pub const DEMO_STATEMENT_FILE: &str = "ledger-demo-statement.html";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Customer accounts to open.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// Seed of the generator: the same seed gives the same commands.
    #[arg(long, default_value_t = 20_240_304)]
    pub seed: u64,
    /// Also write the generated commands to this file (JSON lines, the `ledger exec` format).
    #[arg(long)]
    pub commands_out: Option<PathBuf>,
}

pub async fn run(args: DemoArgs, db: Option<String>, rules: Arc<MarketRules>) -> anyhow::Result<ExitCode> {
    ledger_app::demo::check_accounts(args.accounts)?;
    let url = match db {
        Some(url) => url,
        None => {
            remove_demo_database()?;
            format!("sqlite://{DEMO_DATABASE_FILE}")
        }
    };
    let store = crate::cli::open_store(&url).await?;
    let files = DemoFiles {
        bank: PathBuf::from(DEMO_BANK_FILE),
        depository: PathBuf::from(DEMO_DEPOSITORY_FILE),
        statement: PathBuf::from(DEMO_STATEMENT_FILE),
        commands: args.commands_out.clone(),
    };
    let report = run_with_progress_bar(&args, store, rules, files)
        .await
        .map_err(|e| match e {
            AppError::DatabaseNotEmpty { events } => anyhow::anyhow!(
                "the demo needs an empty database, but {} already holds {events} events",
                ledger_app::redact_url(&url)
            ),
            _ => e.into(),
        })?;
    print_report(&report);
    print_closing(&url, report.files.commands.as_deref());
    print_files(&report);
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the demo with a progress bar on stderr (drawn only on a terminal).
async fn run_with_progress_bar(
    args: &DemoArgs,
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    files: DemoFiles,
) -> Result<DemoReport, AppError> {
    let mut ledger = Ledger::new(store, rules);
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:40}] {pos}/{len} commands ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let report = ledger_app::demo::run_with_report(&mut ledger, args.seed, args.accounts, files, |step| match step {
        DemoProgress::Phase { name, commands } => {
            progress.set_message(name.to_owned());
            progress.inc_length(commands);
        }
        DemoProgress::Answered(commands) => progress.inc(commands),
    })
    .await;
    progress.finish_and_clear();
    report
}

fn remove_demo_database() -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{DEMO_DATABASE_FILE}{suffix}");
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove the previous demo database {path}")),
        }
    }
    Ok(())
}

fn print_report(report: &DemoReport) {
    let (summary, timings) = (&report.summary, &report.timings);
    let engine_secs = timings.engine_seconds.max(f64::EPSILON);
    let projected = report.read_models.applied_events;
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["ledger demo", ""]);
    table.add_row(["accounts".to_owned(), summary.accounts.to_string()]);
    table.add_row(["commands".to_owned(), summary.commands.to_string()]);
    for (status, count) in &summary.by_status {
        table.add_row([format!("  {status}"), count.to_string()]);
    }
    table.add_row(["events written".to_owned(), summary.events.to_string()]);
    table.add_row([
        "time in the ledger".to_owned(),
        format!("{:.2} s", timings.engine_seconds),
    ]);
    table.add_row([
        "throughput".to_owned(),
        format!(
            "{:.0} commands/s, {:.0} events/s",
            summary.commands as f64 / engine_secs,
            summary.events as f64 / engine_secs
        ),
    ]);
    table.add_row([
        "wall time (with generation)".to_owned(),
        format!("{:.2} s", timings.wall_seconds),
    ]);
    table.add_row([
        "read models (every table)".to_owned(),
        format!(
            "{projected} events in {:.2} s ({:.0} events/s)",
            timings.read_models_seconds,
            projected as f64 / timings.read_models_seconds.max(f64::EPSILON)
        ),
    ]);
    align_numbers(&mut table, 1..2);
    println!("{table}\n");
    println!("{}\n", count_table("event type", "events", &summary.events_by_type));
    println!("{}\n", count_table("refusal code", "commands", &summary.by_code));
    println!(
        "Balances of {} accounts\n{}\n",
        summary.sample_accounts,
        balance_table(&summary.sample_balances)
    );
    println!("Their positions\n{}\n", position_table(&summary.sample_positions));
    print_invariants(summary);
}

fn count_table(what: &str, counted: &str, counts: &std::collections::BTreeMap<String, u64>) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([what, counted]);
    for (name, count) in counts {
        table.add_row([name.clone(), count.to_string()]);
    }
    align_numbers(&mut table, 1..2);
    table
}

fn print_invariants(summary: &DemoSummary) {
    let violations = &summary.invariant_violations;
    if violations.is_empty() {
        println!(
            "Invariants hold for all {} accounts: no negative cash or position, frozen = open reserves + pending withdrawals, frozen shares = open sells, cash and positions = sum of events.",
            summary.accounts
        );
    } else {
        println!("INVARIANTS BROKEN in {} accounts:", violations.len());
        for (account, why) in violations.iter().take(20) {
            println!("  {account}: {why}");
        }
    }
}

fn print_closing(url: &str, commands_out: Option<&Path>) {
    let shown = ledger_app::redact_url(url);
    println!("\nThe log is in {shown}. Try: ledger --db {shown} balances");
    if let Some(path) = commands_out {
        println!(
            "The commands are in {} (replay them with: ledger --db NEW.db exec {})",
            path.display(),
            path.display()
        );
    }
}

/// The reconciliation's verdict and where the sample statement is.
fn print_files(report: &DemoReport) {
    let (reconciliation, files) = (&report.reconciliation, &report.files);
    println!(
        "Reconciliation of {} against {} (bank) and {} (depository): {} breaks.",
        reconciliation.trade_date,
        files.bank.display(),
        files.depository.display(),
        reconciliation.breaks.len()
    );
    let statement = &report.statement;
    println!(
        "The statement (对账单) of {} for {} to {} is in {}.",
        statement.account_id,
        statement.from,
        statement.to,
        files.statement.display()
    );
}
