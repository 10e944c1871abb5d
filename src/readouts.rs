//! `ledger balances`, `ledger positions`, `ledger projections`: the read-outs.

use std::process::ExitCode;

use std::time::Instant;

use comfy_table::{presets::UTF8_BORDERS_ONLY, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressStyle};
use ledger_app::{BalanceRow, EventStore, PositionRow, Progress};

use crate::cli::ProjectionsAction;

/// A bar on stderr (drawn only on a terminal) that follows the catch-up of the read models.
fn projecting_bar() -> ProgressBar {
    ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} projecting [{bar:40}] {pos}/{len} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    )
}

fn follow(bar: &ProgressBar) -> impl FnMut(Progress) + '_ {
    |progress: Progress| {
        bar.set_length(progress.total);
        bar.set_position(progress.done);
    }
}

pub async fn projections(store: &dyn EventStore, action: ProjectionsAction) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let bar = projecting_bar();
    let caught_up = match &action {
        ProjectionsAction::Run { .. } => ledger_app::catch_up_read_models(store, follow(&bar)).await?,
        ProjectionsAction::Rebuild { name } => {
            ledger_app::rebuild_read_models(store, name.as_deref(), follow(&bar)).await?
        }
    };
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "projection {}: {} events applied in {seconds:.2} s ({:.0} events/s), checkpoint {}",
        caught_up.projection,
        caught_up.applied_events,
        caught_up.applied_events as f64 / seconds.max(f64::EPSILON),
        caught_up.checkpoint
    );
    if let ProjectionsAction::Run { follow: true, poll_ms } = action {
        follow_log(store, poll_ms).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Live mode: apply new events as they are committed, until Ctrl-C.
async fn follow_log(store: &dyn EventStore, poll_ms: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        (10..=60_000).contains(&poll_ms),
        "--poll-ms must be 10 to 60000, got {poll_ms}"
    );
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => {
                eprintln!("stopped at checkpoint {}", ledger_app::read_models_checkpoint(store).await?);
                return Ok(());
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(poll_ms)) => {
                let caught_up = ledger_app::catch_up_read_models(store, |_| {}).await?;
                if caught_up.applied_events > 0 {
                    eprintln!("applied {} events, checkpoint {}", caught_up.applied_events, caught_up.checkpoint);
                }
            }
        }
    }
}

pub async fn balances(store: &dyn EventStore, json: bool) -> anyhow::Result<ExitCode> {
    let bar = projecting_bar();
    let rows = ledger_app::balances(store, follow(&bar)).await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", balance_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn positions(store: &dyn EventStore, json: bool) -> anyhow::Result<ExitCode> {
    let bar = projecting_bar();
    let rows = ledger_app::positions(store, follow(&bar)).await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", position_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn balance_table(rows: &[BalanceRow]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([
        "account",
        "currency",
        "available",
        "frozen",
        "unsettled",
        "withdrawable",
    ]);
    for row in rows {
        table.add_row([
            row.account_id.as_str(),
            row.currency.as_str(),
            row.available.as_str(),
            row.frozen.as_str(),
            row.unsettled.as_str(),
            row.withdrawable.as_str(),
        ]);
    }
    align_numbers(&mut table, 2..6);
    table
}

pub fn position_table(rows: &[PositionRow]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["account", "instrument", "quantity", "frozen", "sellable", "avg cost"]);
    for row in rows {
        table.add_row([
            row.account_id.clone(),
            row.instrument.clone(),
            row.quantity.to_string(),
            row.frozen.to_string(),
            row.sellable.to_string(),
            row.avg_cost.clone(),
        ]);
    }
    align_numbers(&mut table, 2..6);
    table
}

pub fn align_numbers(table: &mut Table, columns: std::ops::Range<usize>) {
    for index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}
