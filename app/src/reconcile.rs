//! Reconciliation: our read models against the bank's custody balances and the
//! depository's holdings. The files come as any `Read` (a file, an upload); a bad
//! line is an error naming its line, found before anything is changed.

use std::collections::HashMap;
use std::io::{Read, Write};

use chrono::NaiveDate;
use ledger_eventstore::EventStore;
use ledger_projections::reconcile::{reconcile as compare, BankBalance, Break, Holding};
use ledger_projections::tables;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::error::ReconcileFile;
use crate::queries::apply_new_events;
use crate::AppError;

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

/// Reads the bank's file: a header line, then `account,balance` lines.
pub fn read_bank_file(file: impl Read) -> Result<Vec<BankBalance>, AppError> {
    let mut reader = csv::Reader::from_reader(file);
    let mut lines = Vec::new();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    for (index, line) in reader.deserialize::<BankLine>().enumerate() {
        // Line 1 is the header.
        let line_no = index as u64 + 2;
        let bad = |reason: String| AppError::MalformedFileLine {
            file: ReconcileFile::Bank,
            line: line_no,
            reason,
        };
        let line = line.map_err(|e| bad(format!("is not `account,balance`: {e}")))?;
        let balance_cny: Decimal = line
            .balance
            .parse()
            .map_err(|e| bad(format!("has a balance {:?} that is not a decimal: {e}", line.balance)))?;
        // A second line for one account would silently win over the first: refuse it.
        if let Some(first) = first_line_of.insert(line.account.clone(), line_no) {
            return Err(bad(format!(
                "lists account {} again (first on line {first})",
                line.account
            )));
        }
        lines.push(BankBalance {
            account_id: line.account,
            balance_cny,
        });
    }
    Ok(lines)
}

/// Reads the depository's file: a header line, then `account,instrument,quantity` lines.
pub fn read_depository_file(file: impl Read) -> Result<Vec<Holding>, AppError> {
    let mut reader = csv::Reader::from_reader(file);
    let mut lines = Vec::new();
    let mut first_line_of: HashMap<(String, String), u64> = HashMap::new();
    for (index, line) in reader.deserialize::<HoldingLine>().enumerate() {
        let line_no = index as u64 + 2;
        let bad = |reason: String| AppError::MalformedFileLine {
            file: ReconcileFile::Depository,
            line: line_no,
            reason,
        };
        let line = line.map_err(|e| bad(format!("is not `account,instrument,quantity`: {e}")))?;
        let key = (line.account.clone(), line.instrument.clone());
        if let Some(first) = first_line_of.insert(key, line_no) {
            return Err(bad(format!(
                "lists {} of account {} again (first on line {first})",
                line.instrument, line.account
            )));
        }
        lines.push(Holding {
            account_id: line.account,
            instrument: line.instrument,
            quantity: line.quantity,
        });
    }
    Ok(lines)
}

/// Compares the read models (caught up first) with both files and stores the
/// date's breaks, replacing any stored before for it. Returns the breaks, sorted.
pub async fn reconcile(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    bank: impl Read,
    depository: impl Read,
) -> Result<Vec<Break>, AppError> {
    let bank = read_bank_file(bank)?;
    let depository = read_depository_file(depository)?;
    apply_new_events(store, false, |_| {}).await?;
    let balances = tables::read_balances(store).await?;
    let positions = tables::read_positions(store).await?;
    let breaks = compare(&balances, &positions, &bank, &depository).map_err(AppError::CorruptReadModel)?;
    tables::replace_breaks(store, trade_date, &breaks).await?;
    Ok(breaks)
}

/// Writes the files the bank and the depository would send if they agreed with
/// the ledger (the demo reconciles against them).
pub async fn write_agreeing_files(
    store: &dyn EventStore,
    bank: impl Write,
    depository: impl Write,
) -> Result<(), AppError> {
    apply_new_events(store, false, |_| {}).await?;
    let write_error = |e: csv::Error| AppError::Output {
        what: "a reconciliation file",
        cause: e.into(),
    };
    let mut writer = csv::Writer::from_writer(bank);
    writer.write_record(["account", "balance"]).map_err(write_error)?;
    for row in tables::read_balances(store).await? {
        let total = parse_cny(&row.available)? + parse_cny(&row.frozen)?;
        writer
            .write_record([row.account_id, ledger_domain::money::format_cny(total)])
            .map_err(write_error)?;
    }
    writer.flush().map_err(|e| write_error(e.into()))?;
    let mut writer = csv::Writer::from_writer(depository);
    writer
        .write_record(["account", "instrument", "quantity"])
        .map_err(write_error)?;
    for row in tables::read_positions(store).await? {
        writer
            .write_record([row.account_id, row.instrument, row.quantity.to_string()])
            .map_err(write_error)?;
    }
    writer.flush().map_err(|e| write_error(e.into()))?;
    Ok(())
}

fn parse_cny(text: &str) -> Result<Decimal, AppError> {
    text.parse()
        .map_err(|_| AppError::CorruptReadModel(format!("balance {text:?} is not a decimal")))
}
