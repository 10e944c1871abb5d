//! `ledger reconcile`: the ledger at the close of a date against the bank's custody
//! file and the depository's holdings file; every difference is stored and printed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use ledger_app::{Break, EventStore, Reconciliation};

/// Reconciles the two files and stores the date's breaks; a bad line is an error naming the file and the line.
pub async fn reconcile_files(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    bank: &Path,
    depository: &Path,
) -> anyhow::Result<Reconciliation> {
    let bank_file = open(bank, "bank")?;
    let depository_file = open(depository, "depository")?;
    ledger_app::reconcile(store, trade_date, bank_file, depository_file)
        .await
        .map_err(|e| match &e {
            ledger_app::AppError::MalformedFileLine { file, .. } => {
                let path = if *file == ledger_app::ReconcileFile::Bank {
                    bank
                } else {
                    depository
                };
                anyhow::Error::new(e).context(path.display().to_string())
            }
            _ => e.into(),
        })
}

/// The file unbuffered: the CSV reader buffers it.
fn open(path: &Path, what: &str) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("cannot read {what} file {}", path.display()))
}

pub async fn run(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    bank: &Path,
    depository: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let found = reconcile_files(store, trade_date, bank, depository).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        println!(
            "reconciliation of {trade_date}: {} breaks (stored in reconciliation_breaks); ledger as of position {}, the close of {trade_date}",
            found.breaks.len(),
            found.as_of_position
        );
        if !found.breaks.is_empty() {
            println!("{}", break_table(&found.breaks));
        }
    }
    // Breaks are for people to resolve: a non-zero exit lets a scheduler raise it.
    Ok(if found.breaks.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn break_table(breaks: &[Break]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["kind", "account", "instrument", "ours", "theirs"]);
    for found in breaks {
        table.add_row([
            found.kind.as_str(),
            &found.account_id,
            &found.instrument,
            &found.ours,
            &found.theirs,
        ]);
    }
    table
}
