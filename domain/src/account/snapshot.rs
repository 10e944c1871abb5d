//! The account's state as versioned plain data, for read models that keep it
//! between runs instead of replaying every event.
//!
//! The snapshot is a stored format of its own: its `version` says which shape
//! it has, and a change of shape (of it or of the `Customer`, `Cash`, `Position`
//! and `Order` it holds) is a new `ACCOUNT_SNAPSHOT_VERSION`. Sets are ordered
//! so the same state always writes the same JSON.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::state::{Account, Cash, Customer, Position};
use crate::ids::{BankRef, ExecId, InstrumentCode, OrderId};
use crate::instrument::RISK_LEVELS;
use crate::market::Side;
use crate::order::Order;

/// The shape of `AccountSnapshot` this build writes and reads.
pub const ACCOUNT_SNAPSHOT_VERSION: u32 = 1;

/// Everything an account knows, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSnapshot {
    /// `ACCOUNT_SNAPSHOT_VERSION` when written.
    pub version: u32,
    pub customer: Option<Customer>,
    pub frozen_reason: Option<String>,
    pub cash: Cash,
    pub unsettled_by_date: BTreeMap<NaiveDate, Decimal>,
    pub positions: BTreeMap<InstrumentCode, Position>,
    pub open_orders: BTreeMap<OrderId, Order>,
    pub used_order_ids: BTreeSet<OrderId>,
    pub booked_exec_ids: BTreeSet<ExecId>,
    pub pending_withdrawals: BTreeMap<BankRef, Decimal>,
    pub used_bank_refs: BTreeSet<BankRef>,
}

/// An account's snapshot borrowed from the account, to write it without copying every
/// order and id first: it serializes to exactly what `AccountSnapshot` does (a test
/// holds them equal), and a read-model batch writes tens of thousands of them.
#[derive(Serialize)]
pub struct AccountSnapshotView<'a> {
    version: u32,
    customer: &'a Option<Customer>,
    frozen_reason: &'a Option<String>,
    cash: &'a Cash,
    unsettled_by_date: &'a BTreeMap<NaiveDate, Decimal>,
    positions: &'a BTreeMap<InstrumentCode, Position>,
    open_orders: &'a BTreeMap<OrderId, Order>,
    used_order_ids: Vec<&'a OrderId>,
    booked_exec_ids: Vec<&'a ExecId>,
    pending_withdrawals: &'a BTreeMap<BankRef, Decimal>,
    used_bank_refs: Vec<&'a BankRef>,
}

/// A set's members in order, as `BTreeSet` would serialize them.
fn sorted<'a, T: Ord>(set: impl Iterator<Item = &'a T>) -> Vec<&'a T> {
    let mut members: Vec<&T> = set.collect();
    members.sort_unstable();
    members
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("account snapshot version {found} is not the version {supported} this build reads")]
    UnknownVersion { found: u32, supported: u32 },
    #[error("account snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

impl Account {
    /// The snapshot as a borrowed view, for writing it.
    pub fn snapshot_view(&self) -> AccountSnapshotView<'_> {
        AccountSnapshotView {
            version: ACCOUNT_SNAPSHOT_VERSION,
            customer: &self.customer,
            frozen_reason: &self.frozen_reason,
            cash: &self.cash,
            unsettled_by_date: &self.unsettled_by_date,
            positions: &self.positions,
            open_orders: &self.open_orders,
            used_order_ids: sorted(self.used_order_ids.iter()),
            booked_exec_ids: sorted(self.booked_exec_ids.iter()),
            pending_withdrawals: &self.pending_withdrawals,
            used_bank_refs: sorted(self.used_bank_refs.iter()),
        }
    }

    pub fn to_snapshot(&self) -> AccountSnapshot {
        AccountSnapshot {
            version: ACCOUNT_SNAPSHOT_VERSION,
            customer: self.customer.clone(),
            frozen_reason: self.frozen_reason.clone(),
            cash: self.cash,
            unsettled_by_date: self.unsettled_by_date.clone(),
            positions: self.positions.clone(),
            open_orders: self.open_orders.clone(),
            used_order_ids: self.used_order_ids.iter().cloned().collect(),
            booked_exec_ids: self.booked_exec_ids.iter().cloned().collect(),
            pending_withdrawals: self.pending_withdrawals.clone(),
            used_bank_refs: self.used_bank_refs.iter().cloned().collect(),
        }
    }

    /// The account a snapshot describes. Refuses another version, and a state that
    /// no sequence of events can reach, rather than decide on a broken one.
    pub fn from_snapshot(snapshot: AccountSnapshot) -> Result<Account, SnapshotError> {
        if snapshot.version != ACCOUNT_SNAPSHOT_VERSION {
            return Err(SnapshotError::UnknownVersion {
                found: snapshot.version,
                supported: ACCOUNT_SNAPSHOT_VERSION,
            });
        }
        check_customer(&snapshot)?;
        check_cash(&snapshot)?;
        check_orders(&snapshot)?;
        check_positions(&snapshot)?;
        Ok(Account {
            customer: snapshot.customer,
            frozen_reason: snapshot.frozen_reason,
            cash: snapshot.cash,
            unsettled_by_date: snapshot.unsettled_by_date,
            positions: snapshot.positions,
            open_orders: snapshot.open_orders,
            used_order_ids: snapshot.used_order_ids.into_iter().collect(),
            booked_exec_ids: snapshot.booked_exec_ids.into_iter().collect(),
            pending_withdrawals: snapshot.pending_withdrawals,
            used_bank_refs: snapshot.used_bank_refs.into_iter().collect(),
        })
    }
}

fn inconsistent<T>(what: String) -> Result<T, SnapshotError> {
    Err(SnapshotError::Inconsistent(what))
}

/// An account that was never opened has nothing else; an open one has a valid risk level.
fn check_customer(snapshot: &AccountSnapshot) -> Result<(), SnapshotError> {
    match &snapshot.customer {
        None => {
            let unopened = AccountSnapshot {
                version: snapshot.version,
                customer: None,
                ..Account::default().to_snapshot()
            };
            if *snapshot != unopened {
                return inconsistent("an account with no customer holds state".into());
            }
        }
        Some(customer) if !RISK_LEVELS.contains(&customer.risk_level) => {
            return inconsistent(format!("customer risk level {} is not 1 to 5", customer.risk_level));
        }
        Some(_) => {}
    }
    Ok(())
}

/// No cash figure is negative; frozen is what open orders and pending withdrawals
/// hold; unsettled is the sum per trade date.
fn check_cash(snapshot: &AccountSnapshot) -> Result<(), SnapshotError> {
    let cash = snapshot.cash;
    let zero = Decimal::ZERO;
    if cash.available_cny < zero || cash.frozen_cny < zero || cash.unsettled_cny < zero {
        return inconsistent(format!("negative cash: {cash:?}"));
    }
    let reserved_cny: Decimal = snapshot.open_orders.values().map(|o| o.reserved_cny).sum();
    let pending_cny: Decimal = snapshot.pending_withdrawals.values().copied().sum();
    if cash.frozen_cny != reserved_cny + pending_cny {
        return inconsistent(format!(
            "frozen cash {} != open order reserves {reserved_cny} + pending withdrawals {pending_cny}",
            cash.frozen_cny
        ));
    }
    if let Some((bank_ref, amount)) = snapshot
        .pending_withdrawals
        .iter()
        .find(|(bank_ref, amount)| **amount <= zero || !snapshot.used_bank_refs.contains(*bank_ref))
    {
        return inconsistent(format!("pending withdrawal {bank_ref} of {amount}"));
    }
    if snapshot.unsettled_by_date.values().any(|amount| *amount < zero) {
        return inconsistent("negative unsettled cash of a trade date".into());
    }
    let unsettled_cny: Decimal = snapshot.unsettled_by_date.values().copied().sum();
    if cash.unsettled_cny != unsettled_cny {
        return inconsistent(format!(
            "unsettled {} != sum per trade date {unsettled_cny}",
            cash.unsettled_cny
        ));
    }
    Ok(())
}

/// Each open order is filed under its own id, which is used; its fills are booked,
/// within its quantity; its reserve is within its cover.
fn check_orders(snapshot: &AccountSnapshot) -> Result<(), SnapshotError> {
    for (order_id, order) in &snapshot.open_orders {
        if *order_id != order.order_id || !snapshot.used_order_ids.contains(order_id) {
            return inconsistent(format!("open order {order_id} is not filed under its own used id"));
        }
        // Fully filled is allowed: a snapshot may be taken between a command's
        // events, after the last fill and before the order's completion.
        if order.quantity == 0 || order.filled_quantity > order.quantity {
            return inconsistent(format!(
                "open order {order_id} filled {} of {}",
                order.filled_quantity, order.quantity
            ));
        }
        if let Some(exec_id) = order.exec_ids.iter().find(|e| !snapshot.booked_exec_ids.contains(*e)) {
            return inconsistent(format!("order {order_id} has execution {exec_id} that is not booked"));
        }
        let cover_holds = match order.side {
            Side::Buy => order.cover_cny.is_zero(),
            Side::Sell => order.reserved_cny <= order.cover_cny,
        };
        if order.reserved_cny < Decimal::ZERO || !cover_holds {
            return inconsistent(format!(
                "order {order_id} reserves {} with a cover of {}",
                order.reserved_cny, order.cover_cny
            ));
        }
    }
    Ok(())
}

/// Frozen shares are the open sells' remainders, and never more than are held.
fn check_positions(snapshot: &AccountSnapshot) -> Result<(), SnapshotError> {
    let mut open_sells: BTreeMap<&InstrumentCode, u64> = BTreeMap::new();
    for order in snapshot.open_orders.values() {
        *open_sells.entry(&order.instrument).or_default() += order.frozen_shares();
    }
    for (instrument, shares) in &open_sells {
        let frozen = snapshot.positions.get(*instrument).map_or(0, |p| p.frozen);
        if frozen != *shares {
            return inconsistent(format!(
                "{instrument}: frozen {frozen} != open sell remainders {shares}"
            ));
        }
    }
    for (instrument, position) in &snapshot.positions {
        if position.frozen > position.quantity {
            return inconsistent(format!(
                "{instrument}: frozen {} above quantity {}",
                position.frozen, position.quantity
            ));
        }
        if position.frozen > 0 && !open_sells.contains_key(instrument) {
            return inconsistent(format!(
                "{instrument}: {} shares frozen by no open sell",
                position.frozen
            ));
        }
    }
    Ok(())
}
