//! `ledger balances`, `ledger positions`, `ledger events`: the read-outs.

use std::io::Write;
use std::process::ExitCode;

use comfy_table::{presets::UTF8_BORDERS_ONLY, CellAlignment, Table};
use ledger_eventstore::{read_towards, EventStore, MAX_READ_EVENTS};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ledger_projections::tables::{self, RunOptions};
use ledger_projections::{AccountsView, BalanceRow, PositionRow};

use crate::cli::ProjectionsAction;

pub async fn accounts_view(store: &dyn EventStore) -> anyhow::Result<AccountsView> {
    let mut view = AccountsView::default();
    view.catch_up(store, |_| {}).await?;
    Ok(view)
}

/// Brings the accounts tables up to the log's head, with a progress bar on a terminal.
async fn catch_up_tables(store: &dyn EventStore, rebuild: bool) -> anyhow::Result<u64> {
    let head = store.head_position().await?;
    let progress = ProgressBar::new(head).with_style(
        ProgressStyle::with_template("{spinner} projecting [{bar:40}] {pos}/{len} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_position(tables::accounts_checkpoint(store).await?);
    let update = |position: u64| progress.set_position(position);
    let applied = if rebuild {
        tables::rebuild_accounts(store, RunOptions::default(), update).await?
    } else {
        tables::run_accounts(store, RunOptions::default(), update).await?
    };
    progress.finish_and_clear();
    Ok(applied)
}

pub async fn projections(store: &dyn EventStore, action: ProjectionsAction) -> anyhow::Result<ExitCode> {
    let (rebuild, follow, poll_ms) = match action {
        ProjectionsAction::Run { follow, poll_ms } => (false, follow, poll_ms),
        ProjectionsAction::Rebuild { name: None } => (true, false, 0),
        ProjectionsAction::Rebuild { name: Some(name) } if name == tables::ACCOUNTS_PROJECTION => (true, false, 0),
        ProjectionsAction::Rebuild { name: Some(name) } => {
            anyhow::bail!(
                "unknown projection {name:?}; the projections are: {}",
                tables::ACCOUNTS_PROJECTION
            )
        }
    };
    let started = Instant::now();
    let applied = catch_up_tables(store, rebuild).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "projection {}: {applied} events applied in {seconds:.2} s ({:.0} events/s), checkpoint {}",
        tables::ACCOUNTS_PROJECTION,
        applied as f64 / seconds.max(f64::EPSILON),
        tables::accounts_checkpoint(store).await?
    );
    if follow {
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
                eprintln!("stopped at checkpoint {}", tables::accounts_checkpoint(store).await?);
                return Ok(());
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(poll_ms)) => {
                let applied = tables::run_accounts(store, RunOptions::default(), |_| {}).await?;
                if applied > 0 {
                    eprintln!("applied {applied} events, checkpoint {}", tables::accounts_checkpoint(store).await?);
                }
            }
        }
    }
}

pub async fn balances(store: &dyn EventStore, json: bool) -> anyhow::Result<ExitCode> {
    catch_up_tables(store, false).await?;
    let rows = tables::read_balances(store).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", balance_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn positions(store: &dyn EventStore, json: bool) -> anyhow::Result<ExitCode> {
    catch_up_tables(store, false).await?;
    let rows = tables::read_positions(store).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", position_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn events(store: &dyn EventStore, from: u64, limit: Option<u64>, json: bool) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let head = store.head_position().await?;
    let mut after = from.saturating_sub(1);
    let mut left = limit.unwrap_or(u64::MAX);
    while left > 0 {
        let page = usize::try_from(left).unwrap_or(usize::MAX).min(MAX_READ_EVENTS);
        let events = read_towards(store, after, head, page).await?;
        let Some(last) = events.last() else { break };
        after = last.global_position;
        left -= events.len() as u64;
        for event in &events {
            if json {
                writeln!(out, "{}", serde_json::to_string(event)?)?;
            } else {
                writeln!(
                    out,
                    "{:>8}  {:<28} #{:<4} {:<26} {:<14} {}",
                    event.global_position,
                    event.stream.to_string(),
                    event.sequence,
                    event.event_type,
                    event.metadata.command_id,
                    event.payload
                )?;
            }
        }
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
