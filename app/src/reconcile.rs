//! Reconciliation of a trade date: the bank's custody balances and the depository's
//! holdings against the ledger at the close of that date, replayed from the log (never
//! the read models, which hold only the present), so it gives the same answer any day
//! later. The files come as any `Read` (a file, an upload); a bad line is an error
//! naming its line, found before anything is changed.

use std::collections::HashMap;
use std::io::{Read, Write};

use chrono::NaiveDate;
use ledger_eventstore::EventStore;
use ledger_projections::reconcile::{reconcile as compare, BankBalance, Break, Holding, LedgerSide};
use ledger_projections::{tables, AccountsView};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clearing::{close_cut, CloseCut};
use crate::error::ReconcileFile;
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

/// The ledger's side of a reconciliation: the accounts at the close of a trade date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAtClose {
    pub cut: CloseCut,
    pub side: LedgerSide,
}

/// The accounts as they stood at the close of `trade_date` ([`close_cut`]), folded from
/// the log in one pass up to the cut. A date not closed yet is [`AppError::DayNotClosed`].
pub async fn ledger_at_close(store: &dyn EventStore, trade_date: NaiveDate) -> Result<LedgerAtClose, AppError> {
    let cut = close_cut(store, trade_date)
        .await?
        .ok_or(AppError::DayNotClosed(trade_date))?;
    let mut view = AccountsView::default();
    view.catch_up_to(store, cut.position).await?;
    Ok(LedgerAtClose {
        cut,
        side: LedgerSide::of(&view),
    })
}

/// What a reconciliation found, and where in the log the ledger's side was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    pub trade_date: NaiveDate,
    /// The last position of the log the ledger's side includes: the close of the date.
    pub as_of_position: u64,
    /// Differences found (and stored for the date), sorted.
    pub breaks: Vec<Break>,
}

/// Compares both files with the ledger at the close of the date and stores the date's
/// breaks, replacing any stored before for it. A bad line, or a date not closed yet, is
/// an error and stores nothing.
pub async fn reconcile(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    bank: impl Read,
    depository: impl Read,
) -> Result<Reconciliation, AppError> {
    let bank = read_bank_file(bank)?;
    let depository = read_depository_file(depository)?;
    let ours = ledger_at_close(store, trade_date).await?;
    reconcile_with(store, &ours, &bank, &depository).await
}

/// [`reconcile`] against a ledger side already folded (the demo folds it once for both
/// writing its files and reconciling them).
pub async fn reconcile_with(
    store: &dyn EventStore,
    ours: &LedgerAtClose,
    bank: &[BankBalance],
    depository: &[Holding],
) -> Result<Reconciliation, AppError> {
    let breaks = compare(&ours.side, bank, depository);
    tables::replace_breaks(store, ours.cut.trade_date, &breaks).await?;
    Ok(Reconciliation {
        trade_date: ours.cut.trade_date,
        as_of_position: ours.cut.position,
        breaks,
    })
}

/// Writes the files the bank and the depository would send if they agreed with the
/// ledger at the close (the demo reconciles against them).
pub fn write_agreeing_files(ours: &LedgerAtClose, bank: impl Write, depository: impl Write) -> Result<(), AppError> {
    let write_error = |e: csv::Error| AppError::Output {
        what: "a reconciliation file",
        cause: e.into(),
    };
    let mut writer = csv::Writer::from_writer(bank);
    writer.write_record(["account", "balance"]).map_err(write_error)?;
    for line in ours.side.agreeing_bank() {
        writer
            .write_record([line.account_id, ledger_domain::money::format_cny(line.balance_cny)])
            .map_err(write_error)?;
    }
    writer.flush().map_err(|e| write_error(e.into()))?;
    let mut writer = csv::Writer::from_writer(depository);
    writer
        .write_record(["account", "instrument", "quantity"])
        .map_err(write_error)?;
    for line in ours.side.agreeing_depository() {
        writer
            .write_record([line.account_id, line.instrument, line.quantity.to_string()])
            .map_err(write_error)?;
    }
    writer.flush().map_err(|e| write_error(e.into()))?;
    Ok(())
}
