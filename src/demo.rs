//! `ledger demo`: its arguments, the files it writes, and its report. The
//! generated trading days themselves are `ledger_app::demo`'s.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressStyle};
use ledger_app::demo::{DemoProgress, DemoRun, DemoSummary};
use ledger_app::{AppError, EventStore, Ledger, MarketRules, StatementFormat};

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
    let started = Instant::now();
    let run = run_days(&args, Arc::clone(&store), rules).await.map_err(|e| match e {
        AppError::DatabaseNotEmpty { events } => anyhow::anyhow!(
            "the demo needs an empty database, but {} already holds {events} events",
            ledger_app::redact_url(&url)
        ),
        _ => e.into(),
    })?;
    let wall = started.elapsed();
    if let Some(path) = &args.commands_out {
        let mut text = run.lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let projecting = Instant::now();
    let projected = ledger_app::catch_up_read_models(store.as_ref(), |_| {})
        .await?
        .applied_events;
    let projection_time = projecting.elapsed();

    // The files the bank and the depository would send, reconciled against the ledger.
    let (bank_file, depository_file) = (Path::new(DEMO_BANK_FILE), Path::new(DEMO_DEPOSITORY_FILE));
    crate::reconcile::write_agreeing_files(store.as_ref(), bank_file, depository_file).await?;
    let last_day = ledger_app::demo::last_day();
    let breaks = crate::reconcile::reconcile_files(store.as_ref(), last_day, bank_file, depository_file).await?;
    let summary = ledger_app::demo::summarize(store.as_ref(), &run).await?;
    print_report(&summary, &run, wall, (projected, projection_time));
    print_closing(&url, args.commands_out.as_deref());
    println!(
        "Reconciliation of {last_day} against {DEMO_BANK_FILE} (bank) and {DEMO_DEPOSITORY_FILE} (depository): {} breaks.",
        breaks.len()
    );
    let first_day = ledger_app::demo::first_day();
    let sample_account = ledger_app::demo::account_id(0);
    crate::statement::write_statement(
        store.as_ref(),
        &sample_account,
        (first_day, last_day),
        StatementFormat::Html,
        Some(Path::new(DEMO_STATEMENT_FILE)),
    )
    .await?;
    println!("The statement (对账单) of {sample_account} for {first_day} to {last_day} is in {DEMO_STATEMENT_FILE}.");
    let holds = summary.invariant_violations.is_empty() && breaks.is_empty();
    Ok(if holds { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Runs the generated days with a progress bar on stderr (drawn only on a terminal).
async fn run_days(args: &DemoArgs, store: Arc<dyn EventStore>, rules: Arc<MarketRules>) -> Result<DemoRun, AppError> {
    let mut ledger = Ledger::new(store, rules);
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:40}] {pos}/{len} commands ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let run = ledger_app::demo::run(&mut ledger, args.seed, args.accounts, |step| match step {
        DemoProgress::Phase { name, commands } => {
            progress.set_message(name.to_owned());
            progress.inc_length(commands);
        }
        DemoProgress::Answered(commands) => progress.inc(commands),
    })
    .await?;
    progress.finish_and_clear();
    Ok(run)
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

fn print_report(summary: &DemoSummary, run: &DemoRun, wall: Duration, (projected, projection_time): (u64, Duration)) {
    let engine_secs = run.engine_seconds.max(f64::EPSILON);
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["ledger demo", ""]);
    table.add_row(["accounts".to_owned(), summary.accounts.to_string()]);
    table.add_row(["commands".to_owned(), summary.commands.to_string()]);
    for (status, count) in &summary.by_status {
        table.add_row([format!("  {status}"), count.to_string()]);
    }
    table.add_row(["events written".to_owned(), summary.events.to_string()]);
    table.add_row(["time in the ledger".to_owned(), format!("{:.2} s", run.engine_seconds)]);
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
        format!("{:.2} s", wall.as_secs_f64()),
    ]);
    table.add_row([
        "read models (every table)".to_owned(),
        format!(
            "{projected} events in {:.2} s ({:.0} events/s)",
            projection_time.as_secs_f64(),
            projected as f64 / projection_time.as_secs_f64().max(f64::EPSILON)
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
