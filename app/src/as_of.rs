//! The accounts as they stood at a past point of the log, folded from the log alone
//! (never from the read models): after a position, at a time, or at the close of a
//! trade date. What an auditor asks: "what did this account hold at 15:00 on the 4th?"

use chrono::{DateTime, NaiveDate, Utc};
use ledger_eventstore::{read_towards, EventStore, MAX_READ_EVENTS};
use ledger_projections::tables::OrderRecord;
use ledger_projections::{AccountsView, BalanceRow, PositionRow};
use serde::Serialize;

use crate::clearing::close_cut;
use crate::AppError;

/// The point of the log a state is asked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// After the event at this global position (0: before the first event).
    Position(u64),
    /// After the last event (in log order) the engine decided at or before this instant.
    Time(DateTime<Utc>),
    /// At the close of this trade date (the cut `ledger reconcile` compares with).
    Close(NaiveDate),
}

/// The accounts at a point: `ledger replay --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateAsOf {
    /// The last position the state includes.
    pub position: u64,
    pub balances: Vec<BalanceRow>,
    pub positions: Vec<PositionRow>,
    /// The orders open at that point.
    pub orders: Vec<OrderRecord>,
}

/// The state of `accounts` (every account when empty) at `as_of`.
pub async fn state_as_of(store: &dyn EventStore, as_of: AsOf, accounts: &[String]) -> Result<StateAsOf, AppError> {
    let head = store.head_position().await?;
    let position = match as_of {
        AsOf::Position(position) if position > head => {
            return Err(AppError::InvalidInput(format!(
                "position {position} is past the last event of the log ({head})"
            )))
        }
        AsOf::Position(position) => position,
        AsOf::Time(instant) => last_position_at(store, instant, head).await?,
        AsOf::Close(trade_date) => {
            close_cut(store, trade_date)
                .await?
                .ok_or(AppError::DayNotClosed(trade_date))?
                .position
        }
    };
    let mut view = AccountsView::default();
    view.catch_up_to(store, position).await?;
    if let Some(unknown) = accounts.iter().find(|a| view.account(a).is_none()) {
        return Err(AppError::UnknownAccount(format!("{unknown} (at position {position})")));
    }
    let wanted = |id: &str| accounts.is_empty() || accounts.iter().any(|a| a == id);
    Ok(StateAsOf {
        position,
        balances: view.balances().into_iter().filter(|r| wanted(&r.account_id)).collect(),
        positions: view.positions().into_iter().filter(|r| wanted(&r.account_id)).collect(),
        orders: view
            .open_orders()
            .into_iter()
            .filter(|r| wanted(&r.account_id))
            .collect(),
    })
}

/// The position of the last event decided at or before `instant`, 0 when none was.
/// The engines stamp events with their wall clock, so with several writers the times
/// need not rise with the positions: the whole log up to the head is looked at.
async fn last_position_at(store: &dyn EventStore, instant: DateTime<Utc>, head: u64) -> Result<u64, AppError> {
    let (mut after, mut last) = (0, 0);
    while after < head {
        let events = read_towards(store, after, head, MAX_READ_EVENTS).await?;
        let Some(end) = events.last() else { break };
        after = end.global_position;
        if let Some(event) = events.iter().rev().find(|e| e.metadata.recorded_at <= instant) {
            last = last.max(event.global_position);
        }
    }
    Ok(last)
}
