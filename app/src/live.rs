//! Reads of the read models as they stand, for a front end that keeps them live itself
//! (`ledger serve` runs one projection runner that catches them up after each commit).
//!
//! These never catch up: the catch-up is the runner's one job, so reads never take the
//! tables' write lock, never race the runner or each other for a batch, and answer in
//! the time of one query. A caller that needs its own writes first waits until
//! [`read_models_checkpoint`](crate::read_models_checkpoint) reaches their position.
//! The catching-up reads of [`queries`](crate::queries) (the CLI's) are these, after a
//! catch-up: one implementation of each read.

use chrono::NaiveDate;
use ledger_eventstore::EventStore;
use ledger_projections::tables::{
    self, AccountRows, AlertFilter, AlertRecord, OrderFilter, OrderRecord, TradeFilter, TradeRecord, MAX_ALERT_ROWS,
    MAX_ORDER_ROWS, MAX_TRADE_ROWS,
};
use ledger_projections::{BalanceRow, PositionRow};

use ledger_projections::clearing::clearing_report as report_of;

use crate::clearing::{day_status, DayClearing};
use crate::AppError;

/// Most rows of a page of balances or positions.
pub const MAX_ACCOUNT_ROWS: usize = 1_000;

/// The cash balance of one account; `unknown_account` when the read models hold none
/// (never opened, or opened after the position they have reached).
pub async fn account_balance(store: &dyn EventStore, account_id: &str) -> Result<BalanceRow, AppError> {
    let rows = AccountRows {
        account_id: Some(account_id),
        ..AccountRows::default()
    };
    tables::read_balance_rows(store, rows)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::UnknownAccount(account_id.to_owned()))
}

/// The positions of one account (none: `[]`), by instrument; `unknown_account` as
/// [`account_balance`] (every opened account has a balance row).
pub async fn account_positions(store: &dyn EventStore, account_id: &str) -> Result<Vec<PositionRow>, AppError> {
    account_balance(store, account_id).await?;
    let rows = AccountRows {
        account_id: Some(account_id),
        ..AccountRows::default()
    };
    Ok(tables::read_position_rows(store, rows).await?)
}

/// A page of balances in account order: at most `limit` (1 to [`MAX_ACCOUNT_ROWS`])
/// accounts after `after`.
pub async fn balances_page(
    store: &dyn EventStore,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<BalanceRow>, AppError> {
    check_limit(limit, MAX_ACCOUNT_ROWS)?;
    let rows = AccountRows {
        account_id: None,
        after: after.map(|account| (account, None)),
        limit: Some(limit),
    };
    Ok(tables::read_balance_rows(store, rows).await?)
}

/// A page of positions in account and instrument order: at most `limit` (1 to
/// [`MAX_ACCOUNT_ROWS`]) rows after the row of `after` (account, instrument).
pub async fn positions_page(
    store: &dyn EventStore,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<PositionRow>, AppError> {
    check_limit(limit, MAX_ACCOUNT_ROWS)?;
    let rows = AccountRows {
        account_id: None,
        after: after.map(|(account, instrument)| (account, Some(instrument))),
        limit: Some(limit),
    };
    Ok(tables::read_position_rows(store, rows).await?)
}

/// The blotter's orders (see [`crate::orders`]), as the read models stand.
pub async fn orders(store: &dyn EventStore, filter: &OrderFilter) -> Result<Vec<OrderRecord>, AppError> {
    check_limit(filter.limit, MAX_ORDER_ROWS)?;
    Ok(tables::read_orders(store, filter).await?)
}

/// The blotter's trades (see [`crate::trades`]), as the read models stand.
pub async fn trades(store: &dyn EventStore, filter: &TradeFilter) -> Result<Vec<TradeRecord>, AppError> {
    check_limit(filter.limit, MAX_TRADE_ROWS)?;
    Ok(tables::read_trades(store, filter).await?)
}

/// The clearing report of a trade date (see [`crate::clearing_report`]), as the read
/// models stand.
pub async fn clearing_report(store: &dyn EventStore, trade_date: NaiveDate) -> Result<DayClearing, AppError> {
    let day_status = day_status(store, trade_date).await?;
    let trades = tables::read_trades_of(store, trade_date).await?;
    Ok(DayClearing {
        trade_date,
        day_status,
        report: report_of(&trades),
    })
}

/// Compliance alerts (large cash movements, refused suitability checks) that `filter`
/// keeps, in alert id order, at most `filter.limit` (1 to [`MAX_ALERT_ROWS`]); the next
/// page starts after the last row's `alert_id`.
pub async fn compliance_alerts(store: &dyn EventStore, filter: &AlertFilter) -> Result<Vec<AlertRecord>, AppError> {
    check_limit(filter.limit, MAX_ALERT_ROWS)?;
    Ok(tables::read_alerts(store, filter).await?)
}

/// The reconciliation breaks stored for a trade date by its last reconciliation
/// (`ledger reconcile`, `POST /v1/reconciliation`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredBreaks {
    pub trade_date: NaiveDate,
    /// Sorted as a reconciliation sorts them; empty when the date's last reconciliation
    /// found none, or when it was never reconciled.
    pub breaks: Vec<ledger_projections::reconcile::Break>,
}

/// The breaks stored for `trade_date` (the read of `reconciliation_breaks`).
pub async fn stored_breaks(store: &dyn EventStore, trade_date: NaiveDate) -> Result<StoredBreaks, AppError> {
    let breaks = tables::read_breaks(store, trade_date).await?;
    Ok(StoredBreaks { trade_date, breaks })
}

/// A page is bounded: a caller asks for at least one row and at most `max`.
pub(crate) fn check_limit(limit: usize, max: usize) -> Result<(), AppError> {
    if (1..=max).contains(&limit) {
        Ok(())
    } else {
        Err(AppError::InvalidInput(format!("limit must be 1 to {max}, got {limit}")))
    }
}
