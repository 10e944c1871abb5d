//! The account's state: its customer, cash, positions and open orders, and the
//! ids it has used. Only `apply` (apply.rs) changes it; `decide` reads it.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use crate::money::round_to_fen;
use crate::order::Order;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub account_id: AccountId,
    pub customer_name: String,
    pub id_number: String,
    pub risk_level: u8,
}

/// Cash in CNY. `available` is buying power; `frozen` is held by open orders and
/// pending withdrawals; `unsettled` is the part of `available` from sells not yet
/// settled: usable for buying, not for withdrawing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cash {
    pub available_cny: Decimal,
    pub frozen_cny: Decimal,
    pub unsettled_cny: Decimal,
}

impl Cash {
    /// The whole of the customer's cash, `available + frozen`: what the bank holds
    /// for them in custody, and what a statement shows as their cash.
    pub fn total_cny(&self) -> Decimal {
        self.available_cny + self.frozen_cny
    }

    /// `max(0, available - unsettled)`.
    pub fn withdrawable_cny(&self) -> Decimal {
        (self.available_cny - self.unsettled_cny).max(Decimal::ZERO)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub quantity: u64,
    /// Held by open sell orders.
    pub frozen: u64,
    /// Shares bought per trade date, kept until that date is settled: not sellable
    /// on their own trade date (T+1).
    pub bought_by_date: BTreeMap<NaiveDate, u64>,
    /// Cost basis including buy fees, reduced pro rata by sells.
    pub cost_cny: Decimal,
}

/// The part of a holding's cost (`cost_cny` for `held` shares) that `sold` shares take:
/// pro rata, rounded to the fen; the last shares take all that is left, so an emptied
/// holding costs exactly nothing.
pub fn cost_of_sold(cost_cny: Decimal, held: u64, sold: u64) -> Decimal {
    if sold >= held {
        cost_cny
    } else {
        round_to_fen(cost_cny * Decimal::from(sold) / Decimal::from(held))
    }
}

impl Position {
    /// Shares a sell order of `trade_date` may take.
    pub fn sellable_on(&self, trade_date: NaiveDate) -> u64 {
        let locked_by_t1: u64 = self.bought_by_date.range(trade_date..).map(|(_, qty)| *qty).sum();
        self.quantity.saturating_sub(self.frozen).saturating_sub(locked_by_t1)
    }

    /// Shares sellable now, counting every unsettled buy as bought today.
    pub fn sellable(&self) -> u64 {
        let unsettled_buys: u64 = self.bought_by_date.values().sum();
        self.quantity.saturating_sub(self.frozen).saturating_sub(unsettled_buys)
    }

    /// Average cost per share including fees, or zero for an empty position.
    pub fn avg_cost(&self) -> Decimal {
        if self.quantity == 0 {
            return Decimal::ZERO;
        }
        (self.cost_cny / Decimal::from(self.quantity)).round_dp(4)
    }

    /// A sell order holds `shares` until it fills, ends or is canceled.
    pub fn freeze(&mut self, shares: u64) {
        self.frozen += shares;
    }

    /// A sell order that ended gives back the `shares` it still held.
    pub fn unfreeze(&mut self, shares: u64) {
        debug_assert!(shares <= self.frozen, "an order releases no more shares than it froze");
        self.frozen -= shares;
    }

    /// A buy fill of `trade_date`: the shares arrive, locked until that date settles (T+1),
    /// and their cost including fees joins the basis.
    pub fn add_bought(&mut self, trade_date: NaiveDate, quantity: u64, cost_cny: Decimal) {
        self.quantity += quantity;
        *self.bought_by_date.entry(trade_date).or_default() += quantity;
        self.cost_cny += cost_cny;
    }

    /// A sell fill takes `quantity` frozen shares and their pro rata part of the
    /// cost, rounded to the fen; the last shares take all that is left of it.
    pub fn remove_sold(&mut self, quantity: u64) {
        let cost_removed_cny = cost_of_sold(self.cost_cny, self.quantity, quantity);
        self.cost_cny -= cost_removed_cny;
        self.quantity -= quantity;
        self.frozen -= quantity;
    }

    /// Settlement of `trade_date` and every earlier date unlocks what was bought then.
    pub fn settle_through(&mut self, trade_date: NaiveDate) {
        self.bought_by_date.retain(|date, _| *date > trade_date);
    }

    /// Holds shares, or some are frozen: a settled position is kept while this is true.
    pub fn holds_shares(&self) -> bool {
        self.quantity > 0 || self.frozen > 0
    }

    /// Nothing held, frozen or waiting for settlement: an order's end may drop it.
    pub fn is_empty(&self) -> bool {
        self.quantity == 0 && self.frozen == 0 && self.bought_by_date.is_empty()
    }
}

/// The aggregate. Its fields are the module's own (`decide` reads them, `apply`
/// writes them); outside the module the accessors and `AccountSnapshot` show them.
///
/// Serde is derived because cqrs-es's `Aggregate` requires it; nothing stores
/// this form. What is stored is `AccountSnapshot`, which has a version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub(super) customer: Option<Customer>,
    pub(super) frozen_reason: Option<String>,
    pub(super) cash: Cash,
    pub(super) unsettled_by_date: BTreeMap<NaiveDate, Decimal>,
    pub(super) positions: BTreeMap<InstrumentCode, Position>,
    pub(super) open_orders: BTreeMap<OrderId, Order>,
    /// Every order id the account ever used: ids are never reused.
    pub(super) used_order_ids: HashSet<OrderId>,
    /// Every execution id booked: a repeated fill is a no-op.
    pub(super) booked_exec_ids: HashSet<ExecId>,
    pub(super) pending_withdrawals: BTreeMap<BankRef, Decimal>,
    pub(super) used_bank_refs: HashSet<BankRef>,
}

impl Account {
    pub fn customer(&self) -> Option<&Customer> {
        self.customer.as_ref()
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen_reason.is_some()
    }

    pub fn cash(&self) -> Cash {
        self.cash
    }

    pub fn positions(&self) -> &BTreeMap<InstrumentCode, Position> {
        &self.positions
    }

    pub fn open_orders(&self) -> &BTreeMap<OrderId, Order> {
        &self.open_orders
    }

    pub fn pending_withdrawals(&self) -> &BTreeMap<BankRef, Decimal> {
        &self.pending_withdrawals
    }

    pub fn unsettled_by_date(&self) -> &BTreeMap<NaiveDate, Decimal> {
        &self.unsettled_by_date
    }
}
