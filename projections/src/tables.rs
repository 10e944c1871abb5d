//! The accounts read models as SQL tables, kept by a checkpointed runner.
//!
//! The tables live in the ledger's own database: `account_balances`, `positions`,
//! `trades`, `orders`, `clearing_obligations`, `compliance_alerts` and `journal_entries`
//! are fed by the account events; `reconciliation_breaks` by `ledger reconcile`. The
//! runner ([`run_accounts`]) applies each batch of events, the rows it changes and the
//! new checkpoint in one transaction. Balances and positions are derived by the
//! domain's own `Account::apply` from each account's state, kept in
//! `projection_account_state` (and in memory during a run, see `state_cache`), so the
//! read model can never disagree with the aggregate about a rule.
//!
//! Each table has its module, which names its columns once; the code is generic over
//! the backend (see `backend`), and this module re-exports what other crates use.

mod audit;
mod backend;
pub(crate) mod balances;
mod breaks;
mod changes;
mod checkpoints;
mod columns;
mod compliance;
mod journal;
mod obligations;
mod orders;
pub(crate) mod positions;
mod runner;
mod state;
mod state_cache;
mod trades;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ledger_eventstore::EventStore;
use rust_decimal::Decimal;

use crate::{BalanceRow, PositionRow, ProjectionError};
use backend::on_store;

pub use audit::{table_differences, ComparedTable, ExpectedRows, RowsDigest, TableDifference};
pub use balances::AccountRows;
pub use checkpoints::{ACCOUNTS_PROJECTION, REFUSAL_ALERTS};
pub use compliance::{AlertFilter, AlertRecord, MAX_ALERT_ROWS};
pub use orders::{OrderFilter, OrderKey, OrderRecord, MAX_ORDER_ROWS, OPEN_ORDER_STATUSES, ORDER_STATUSES};
pub use runner::{
    accounts_checkpoint, rebuild_accounts, run_accounts, Fault, RunOptions, DEFAULT_BATCH_EVENTS,
    DEFAULT_MAX_CACHED_STATES, MAX_BATCH_EVENTS, REBUILD_BATCH_EVENTS,
};
pub use trades::{Trade, TradeFilter, TradeRecord, MAX_TRADE_ROWS};

/// The checkpoint `name` of a reader outside the read models (a relay), 0 if never set.
pub async fn read_named_checkpoint(store: &dyn EventStore, name: &str) -> Result<u64, ProjectionError> {
    on_store(store, checkpoints::ReadNamed(name)).await
}

/// Moves the checkpoint `name` of a reader outside the read models to `position`, or
/// leaves it where it is if it is already further.
pub async fn advance_named_checkpoint(
    store: &dyn EventStore,
    name: &str,
    position: u64,
) -> Result<(), ProjectionError> {
    on_store(
        store,
        checkpoints::SetNamed {
            name,
            position,
            backwards: false,
        },
    )
    .await
}

/// Sets the checkpoint `name` to `position`, backwards too: for a reader whose target
/// lost what it had acknowledged, so the checkpoint says what the target holds.
pub async fn reset_named_checkpoint(store: &dyn EventStore, name: &str, position: u64) -> Result<(), ProjectionError> {
    on_store(
        store,
        checkpoints::SetNamed {
            name,
            position,
            backwards: true,
        },
    )
    .await
}

/// Whether the last pass of the refusal alerts saw every suitability refusal the store
/// holds now; if not, a refusal may simply not be alerted yet.
pub async fn refusal_alerts_caught_up(store: &dyn EventStore) -> Result<bool, ProjectionError> {
    on_store(store, compliance::RefusalAlertsCaughtUp { store }).await
}

/// Suitability refusals the store kept that have no alert, plus refusal alerts with no
/// suitability refusal behind them. Refusals recorded before commands carried their
/// account (migration 0006) cannot be alerted and are not counted.
pub async fn unmatched_refusal_alerts(store: &dyn EventStore) -> Result<u64, ProjectionError> {
    on_store(store, compliance::UnmatchedRefusalAlerts { store }).await
}

/// `account_balances`, ordered by account.
pub async fn read_balances(store: &dyn EventStore) -> Result<Vec<BalanceRow>, ProjectionError> {
    on_store(store, balances::ReadBalances(AccountRows::default())).await
}

/// `positions`, ordered by account and instrument.
pub async fn read_positions(store: &dyn EventStore) -> Result<Vec<PositionRow>, ProjectionError> {
    on_store(store, positions::ReadPositions(AccountRows::default())).await
}

/// The rows of `account_balances` that `rows` selects, ordered by account.
pub async fn read_balance_rows(
    store: &dyn EventStore,
    rows: AccountRows<'_>,
) -> Result<Vec<BalanceRow>, ProjectionError> {
    on_store(store, balances::ReadBalances(rows)).await
}

/// The rows of `positions` that `rows` selects, ordered by account and instrument.
pub async fn read_position_rows(
    store: &dyn EventStore,
    rows: AccountRows<'_>,
) -> Result<Vec<PositionRow>, ProjectionError> {
    on_store(store, positions::ReadPositions(rows)).await
}

/// The `trades` of one trade date, in log order.
pub async fn read_trades_of(store: &dyn EventStore, trade_date: NaiveDate) -> Result<Vec<Trade>, ProjectionError> {
    on_store(store, trades::TradesOf(trade_date)).await
}

/// The `orders` that `filter` keeps, ordered by account and order id, at most
/// [`MAX_ORDER_ROWS`]; the next page starts after the last row's [`OrderRecord::key`].
pub async fn read_orders(store: &dyn EventStore, filter: &OrderFilter) -> Result<Vec<OrderRecord>, ProjectionError> {
    on_store(store, orders::ReadOrders(filter)).await
}

/// The `trades` that `filter` keeps, in log order, at most [`MAX_TRADE_ROWS`]; the next
/// page starts after the last row's global position.
pub async fn read_trades(store: &dyn EventStore, filter: &TradeFilter) -> Result<Vec<TradeRecord>, ProjectionError> {
    on_store(store, trades::ReadTrades(filter)).await
}

/// The `compliance_alerts` that `filter` keeps, in alert id order, at most [`MAX_ALERT_ROWS`];
/// the next page starts after the last row's `alert_id`.
pub async fn read_alerts(store: &dyn EventStore, filter: &AlertFilter) -> Result<Vec<AlertRecord>, ProjectionError> {
    on_store(store, compliance::ReadAlerts(filter)).await
}

/// Replaces the reconciliation breaks of a trade date, in one transaction.
pub async fn replace_breaks(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    breaks: &[crate::reconcile::Break],
) -> Result<(), ProjectionError> {
    on_store(store, breaks::ReplaceBreaks { trade_date, breaks }).await
}

/// The reconciliation breaks stored for a trade date (none: reconciled without a break,
/// or not reconciled).
pub async fn read_breaks(
    store: &dyn EventStore,
    trade_date: NaiveDate,
) -> Result<Vec<crate::reconcile::Break>, ProjectionError> {
    on_store(store, breaks::ReadBreaks { trade_date }).await
}

/// The trial balance of `journal_entries`: per ledger account, the sum of its postings.
pub async fn read_trial_balance(store: &dyn EventStore) -> Result<BTreeMap<String, Decimal>, ProjectionError> {
    on_store(store, journal::TrialBalance).await
}
