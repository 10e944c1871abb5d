//! `ledger reconcile`: our read models against the bank's custody file and the
//! depository's holdings file; every difference is stored and printed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use ledger_eventstore::EventStore;
use ledger_projections::reconcile::{reconcile, BankBalance, Break, Holding};
use ledger_projections::tables::{self, RunOptions};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Deserialize)]
struct BankLine {
    account: String,
    balance: String,
}

#[derive(Deserialize)]
struct HoldingLine {
    account: String,
    instrument: String,
    quantity: u64,
}

/// Reads `account,balance` lines; a bad line is an error naming its line number.
pub fn read_bank_file(path: &Path) -> anyhow::Result<Vec<BankBalance>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read bank file {}", path.display()))?;
    let mut lines = Vec::new();
    for (index, line) in reader.deserialize::<BankLine>().enumerate() {
        let line = line.with_context(|| format!("{}: line {} is not `account,balance`", path.display(), index + 2))?;
        let balance_cny: Decimal = line.balance.parse().with_context(|| {
            format!(
                "{}: line {}: balance {:?} is not a decimal",
                path.display(),
                index + 2,
                line.balance
            )
        })?;
        lines.push(BankBalance {
            account_id: line.account,
            balance_cny,
        });
    }
    Ok(lines)
}

/// Reads `account,instrument,quantity` lines.
pub fn read_depository_file(path: &Path) -> anyhow::Result<Vec<Holding>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read depository file {}", path.display()))?;
    let mut lines = Vec::new();
    for (index, line) in reader.deserialize::<HoldingLine>().enumerate() {
        let line = line.with_context(|| {
            format!(
                "{}: line {} is not `account,instrument,quantity`",
                path.display(),
                index + 2
            )
        })?;
        lines.push(Holding {
            account_id: line.account,
            instrument: line.instrument,
            quantity: line.quantity,
        });
    }
    Ok(lines)
}

/// Reconciles and stores the breaks of the date; returns them.
pub async fn reconcile_files(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    bank: &Path,
    depository: &Path,
) -> anyhow::Result<Vec<Break>> {
    let bank = read_bank_file(bank)?;
    let depository = read_depository_file(depository)?;
    tables::run_accounts(store, RunOptions::default(), |_| {}).await?;
    let balances = tables::read_balances(store).await?;
    let positions = tables::read_positions(store).await?;
    let breaks = reconcile(&balances, &positions, &bank, &depository).map_err(anyhow::Error::msg)?;
    tables::replace_breaks(store, trade_date, &breaks).await?;
    Ok(breaks)
}

pub async fn run(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    bank: &Path,
    depository: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let breaks = reconcile_files(store, trade_date, bank, depository).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&breaks)?);
    } else {
        println!(
            "reconciliation of {trade_date}: {} breaks (stored in reconciliation_breaks)",
            breaks.len()
        );
        if !breaks.is_empty() {
            let mut table = Table::new();
            table.load_style(UTF8_BORDERS_ONLY);
            table.set_header(["kind", "account", "instrument", "ours", "theirs"]);
            for found in &breaks {
                table.add_row([
                    found.kind.as_str(),
                    &found.account_id,
                    &found.instrument,
                    &found.ours,
                    &found.theirs,
                ]);
            }
            println!("{table}");
        }
    }
    // Breaks are for people to resolve: a non-zero exit lets a scheduler raise it.
    Ok(if breaks.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes the files the bank and the depository would send if they agreed with us.
pub async fn write_own_files(store: &dyn EventStore, bank: &Path, depository: &Path) -> anyhow::Result<()> {
    tables::run_accounts(store, RunOptions::default(), |_| {}).await?;
    let mut writer = csv::Writer::from_path(bank).with_context(|| format!("cannot write {}", bank.display()))?;
    writer.write_record(["account", "balance"])?;
    for row in tables::read_balances(store).await? {
        let total = row.available.parse::<Decimal>()? + row.frozen.parse::<Decimal>()?;
        writer.write_record([row.account_id, ledger_domain::money::format_cny(total)])?;
    }
    writer.flush()?;
    let mut writer =
        csv::Writer::from_path(depository).with_context(|| format!("cannot write {}", depository.display()))?;
    writer.write_record(["account", "instrument", "quantity"])?;
    for row in tables::read_positions(store).await? {
        writer.write_record([row.account_id, row.instrument, row.quantity.to_string()])?;
    }
    writer.flush()?;
    Ok(())
}
