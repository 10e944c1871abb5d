//! The read side's use cases. The rule lives here, once: every query of a read
//! model first catches the read models up with the log, so it sees every command
//! answered before it, with no explicit catch-up by its caller. (A server that keeps
//! the read models live with its own runner reads them as they stand: [`crate::live`].)

use chrono::NaiveDate;
use ledger_eventstore::{read_towards, EventStore, RecordedEvent, MAX_READ_EVENTS};
use ledger_projections::tables::{
    self, OrderFilter, OrderRecord, RunOptions, Trade, TradeFilter, TradeRecord, MAX_ORDER_ROWS, MAX_TRADE_ROWS,
};
use ledger_projections::{BalanceRow, PositionRow};
use serde::Serialize;

use crate::live::check_limit;
use crate::AppError;

/// Most events one call of [`events_after`] returns.
pub const MAX_EVENTS_PER_PAGE: usize = MAX_READ_EVENTS;

/// How far a long task has come: `done` of `total` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// What a catch-up or a rebuild of the read models did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatchUp {
    pub projection: &'static str,
    pub applied_events: u64,
    /// The log position the read models have reached.
    pub checkpoint: u64,
}

/// Cash balances of every account.
pub async fn balances(store: &dyn EventStore, on_progress: impl FnMut(Progress)) -> Result<Vec<BalanceRow>, AppError> {
    apply_new_events(store, false, on_progress).await?;
    Ok(tables::read_balances(store).await?)
}

/// Securities positions of every account.
pub async fn positions(
    store: &dyn EventStore,
    on_progress: impl FnMut(Progress),
) -> Result<Vec<PositionRow>, AppError> {
    apply_new_events(store, false, on_progress).await?;
    Ok(tables::read_positions(store).await?)
}

/// Every trade (fill) of a trade date.
pub async fn trades_of(store: &dyn EventStore, trade_date: NaiveDate) -> Result<Vec<Trade>, AppError> {
    apply_new_events(store, false, |_| {}).await?;
    Ok(tables::read_trades_of(store, trade_date).await?)
}

/// The blotter's orders: those `filter` keeps, ordered by account and order id, at most
/// `filter.limit` (1 to [`MAX_ORDER_ROWS`], else `invalid_input`). The next page starts
/// after the last row's key ([`OrderRecord::key`]).
pub async fn orders(store: &dyn EventStore, filter: &OrderFilter) -> Result<Vec<OrderRecord>, AppError> {
    check_limit(filter.limit, MAX_ORDER_ROWS)?;
    apply_new_events(store, false, |_| {}).await?;
    crate::live::orders(store, filter).await
}

/// The blotter's trades: those `filter` keeps, in log order, at most `filter.limit`
/// (1 to [`MAX_TRADE_ROWS`], else `invalid_input`). The next page starts after the last
/// row's global position.
pub async fn trades(store: &dyn EventStore, filter: &TradeFilter) -> Result<Vec<TradeRecord>, AppError> {
    check_limit(filter.limit, MAX_TRADE_ROWS)?;
    apply_new_events(store, false, |_| {}).await?;
    crate::live::trades(store, filter).await
}

/// The highest log position written (0 for an empty log).
pub async fn head_position(store: &dyn EventStore) -> Result<u64, AppError> {
    Ok(store.head_position().await?)
}

/// Up to `limit` events (at most [`MAX_EVENTS_PER_PAGE`]) after position `after`, in log
/// order. `head` is a position the caller saw committed: events up to it are waited for
/// when an older transaction still holds them back, so none is skipped.
pub async fn events_after(
    store: &dyn EventStore,
    after: u64,
    head: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, AppError> {
    // Nothing lies past the head; a position past what the store can hold is no error.
    if after >= head {
        return Ok(Vec::new());
    }
    Ok(read_towards(store, after, head, limit.min(MAX_EVENTS_PER_PAGE)).await?)
}

/// The position the read models have reached.
pub async fn read_models_checkpoint(store: &dyn EventStore) -> Result<u64, AppError> {
    Ok(tables::accounts_checkpoint(store).await?)
}

/// Applies the events written since the read models' checkpoint.
pub async fn catch_up_read_models(
    store: &dyn EventStore,
    on_progress: impl FnMut(Progress),
) -> Result<CatchUp, AppError> {
    let applied_events = apply_new_events(store, false, on_progress).await?;
    caught_up(store, applied_events).await
}

/// Empties a projection (all of them when `name` is None) and rebuilds it from the first event.
pub async fn rebuild_read_models(
    store: &dyn EventStore,
    name: Option<&str>,
    on_progress: impl FnMut(Progress),
) -> Result<CatchUp, AppError> {
    if let Some(name) = name.filter(|name| *name != tables::ACCOUNTS_PROJECTION) {
        return Err(AppError::UnknownProjection {
            name: name.to_owned(),
            known: tables::ACCOUNTS_PROJECTION,
        });
    }
    let applied_events = apply_new_events(store, true, on_progress).await?;
    caught_up(store, applied_events).await
}

/// Catches up (or rebuilds) the read models; returns the events applied. Every read of a
/// read model in this crate comes after a call of this (the one place the rule lives).
pub(crate) async fn apply_new_events(
    store: &dyn EventStore,
    rebuild: bool,
    mut on_progress: impl FnMut(Progress),
) -> Result<u64, AppError> {
    let total = store.head_position().await?;
    on_progress(Progress {
        done: tables::accounts_checkpoint(store).await?,
        total,
    });
    let update = |done: u64| on_progress(Progress { done, total });
    Ok(if rebuild {
        let options = RunOptions {
            batch_events: tables::REBUILD_BATCH_EVENTS,
            ..RunOptions::default()
        };
        tables::rebuild_accounts(store, options, update).await?
    } else {
        tables::run_accounts(store, RunOptions::default(), update).await?
    })
}

async fn caught_up(store: &dyn EventStore, applied_events: u64) -> Result<CatchUp, AppError> {
    Ok(CatchUp {
        projection: tables::ACCOUNTS_PROJECTION,
        applied_events,
        checkpoint: tables::accounts_checkpoint(store).await?,
    })
}
