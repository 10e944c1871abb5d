//! The read side: read models built from the event log in global-position order.
//!
//! [`AccountsView`] folds the log into every account's state in memory and serves the
//! contract's read-outs (`balances`, `positions`), event counts and the invariant
//! check. It keeps its checkpoint, so it can catch up incrementally. [`tables`] keeps
//! the same read models, and more, as SQL tables; `statement`, `clearing` and
//! `reconcile` build the reports on them.

use std::collections::BTreeMap;

pub mod business_date;
pub mod clearing;
pub mod reconcile;
pub mod statement;
pub mod tables;

use cqrs_es::Aggregate;
use ledger_domain::account::{Account, AccountEvent};
use ledger_domain::invariants::{check_account, EventTotals};
use ledger_eventstore::codec::{decode_raw, DecodeError};
use ledger_eventstore::{read_encoded_towards, DbFailure, EventStore, RawEvent, StoreError, MAX_READ_EVENTS};
use serde::Serialize;
use tables::balances::AccountBalance;
use tables::positions::HeldPosition;

/// Events read from the store per round trip while catching up.
pub const CATCH_UP_BATCH_EVENTS: usize = MAX_READ_EVENTS;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("event at position {position} arrived after checkpoint {checkpoint}: out of order")]
    OutOfOrder { position: u64, checkpoint: u64 },
    #[error("read model database error: {0}")]
    Database(DbFailure),
    #[error("read model data is corrupt: {0}")]
    Corrupt(String),
    #[error("the checkpoint moved from {expected} to {found} under this runner: another runner is at work")]
    Moved { expected: u64, found: u64 },
    #[error("injected fault: {0}")]
    Injected(String),
}

impl ProjectionError {
    /// A lost connection or a lock wait that ran out is the store's error, whoever met it.
    fn database(error: sqlx::Error) -> Self {
        match StoreError::from(error) {
            StoreError::Database(failure) => ProjectionError::Database(failure),
            other => ProjectionError::Store(other),
        }
    }
}

/// `ledger balances --json`: one row per account and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceRow {
    pub account_id: String,
    pub currency: String,
    pub available: String,
    pub frozen: String,
    pub unsettled: String,
    pub withdrawable: String,
}

/// `ledger positions --json`: one row per account and instrument held or frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionRow {
    pub account_id: String,
    pub instrument: String,
    pub quantity: u64,
    pub frozen: u64,
    pub sellable: u64,
    pub avg_cost: String,
}

#[derive(Default)]
pub struct AccountsView {
    accounts: BTreeMap<String, Account>,
    totals: BTreeMap<String, EventTotals>,
    event_counts: BTreeMap<String, u64>,
    checkpoint: u64,
}

impl AccountsView {
    /// The position of the last event applied.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Reads the log from the checkpoint to the head it has when called.
    pub async fn catch_up(&mut self, store: &dyn EventStore) -> Result<u64, ProjectionError> {
        let head = store.head_position().await?;
        self.catch_up_to(store, head).await
    }

    /// Reads the log from the checkpoint up to and including `position` (a position
    /// already committed), in pages of at most [`CATCH_UP_BATCH_EVENTS`], and not one
    /// event further: the state as it was at that point of the log.
    pub async fn catch_up_to(&mut self, store: &dyn EventStore, position: u64) -> Result<u64, ProjectionError> {
        let mut applied = 0;
        while self.checkpoint < position {
            // Positions are contiguous, so a page never reaches past `position`.
            let limit = usize::try_from(position - self.checkpoint)
                .unwrap_or(CATCH_UP_BATCH_EVENTS)
                .min(CATCH_UP_BATCH_EVENTS);
            let events = read_encoded_towards(store, self.checkpoint, position, limit).await?;
            let before = applied;
            for event in events.iter().take_while(|e| e.global_position <= position) {
                self.apply_raw(event)?;
                applied += 1;
            }
            if applied == before {
                break;
            }
        }
        Ok(applied)
    }

    /// Applies the next event of the log, read as stored (an account's event is decoded
    /// straight from its bytes).
    pub fn apply_raw(&mut self, raw: &RawEvent) -> Result<(), ProjectionError> {
        self.check_follows(raw.global_position)?;
        if raw.stream.aggregate_type == Account::TYPE {
            let event: AccountEvent = decode_raw(raw)?;
            self.apply_account_event(raw.global_position, &raw.event_type, &raw.stream.aggregate_id, event)
        } else {
            *self.event_counts.entry(raw.event_type.clone()).or_default() += 1;
            self.checkpoint = raw.global_position;
            Ok(())
        }
    }

    /// Applies an account's event, already decoded, at `position` of the log.
    pub fn apply_account_event(
        &mut self,
        position: u64,
        event_type: &str,
        account_id: &str,
        event: AccountEvent,
    ) -> Result<(), ProjectionError> {
        self.check_follows(position)?;
        *self.event_counts.entry(event_type.to_owned()).or_default() += 1;
        self.totals.entry(account_id.to_owned()).or_default().add(&event);
        self.accounts.entry(account_id.to_owned()).or_default().apply(event);
        self.checkpoint = position;
        Ok(())
    }

    /// An event must come after every event applied.
    fn check_follows(&self, position: u64) -> Result<(), ProjectionError> {
        if position <= self.checkpoint {
            return Err(ProjectionError::OutOfOrder {
                position,
                checkpoint: self.checkpoint,
            });
        }
        Ok(())
    }

    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.accounts.get(account_id)
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Events seen per event type.
    pub fn event_counts(&self) -> &BTreeMap<String, u64> {
        &self.event_counts
    }

    /// One row per account, by the derivation the `account_balances` table is written with.
    pub fn balances(&self) -> Vec<BalanceRow> {
        self.accounts
            .iter()
            .map(|(account_id, account)| AccountBalance::of(account_id, account).to_row())
            .collect()
    }

    /// One row per position held or frozen, by the derivation the `positions` table is written with.
    pub fn positions(&self) -> Vec<PositionRow> {
        self.accounts
            .iter()
            .flat_map(|(account_id, account)| HeldPosition::all_of(account_id, account))
            .map(|position| position.to_row())
            .collect()
    }

    /// The orders still open (`open` or `cancel_requested`), one row each as
    /// `ledger orders --json` shows them, by account and order id.
    pub fn open_orders(&self) -> Vec<tables::OrderRecord> {
        self.accounts
            .iter()
            .flat_map(|(account_id, account)| {
                account.open_orders().values().map(move |order| tables::OrderRecord {
                    account_id: account_id.clone(),
                    order_id: order.order_id.to_string(),
                    trade_date: order.trade_date,
                    instrument: order.instrument.to_string(),
                    side: order.side.as_str().to_owned(),
                    quantity: order.quantity,
                    limit_price_cny: order.limit_price,
                    filled_quantity: order.filled_quantity,
                    status: tables::OPEN_ORDER_STATUSES[usize::from(order.cancel_requested)].to_owned(),
                })
            })
            .collect()
    }

    /// Every account whose state breaks an invariant, with the sentence saying how.
    pub fn invariant_violations(&self) -> Vec<(String, String)> {
        let empty = EventTotals::default();
        self.accounts
            .iter()
            .filter_map(|(id, account)| {
                let totals = self.totals.get(id).unwrap_or(&empty);
                check_account(account, totals).err().map(|why| (id.clone(), why))
            })
            .collect()
    }
}
