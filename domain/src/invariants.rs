//! The invariants of DESIGN.md, checked on an account's state and against an
//! independent sum of its events. Used by the property tests and by the read
//! model's `AccountsView::invariant_violations`, which `ledger verify` and
//! `ledger demo` run.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::account::{Account, AccountEvent};
use crate::ids::InstrumentCode;
use crate::market::Side;

/// What the accepted events of one account add up to, summed without the aggregate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTotals {
    pub deposited_cny: Decimal,
    pub withdrawn_cny: Decimal,
    pub bought_cny: Decimal,
    pub sold_cny: Decimal,
    pub fees_cny: Decimal,
    pub quantity_by_instrument: BTreeMap<InstrumentCode, i128>,
}

impl EventTotals {
    pub fn add(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::CashDeposited { amount_cny, .. } => self.deposited_cny += amount_cny,
            AccountEvent::WithdrawalConfirmed { amount_cny, .. } => self.withdrawn_cny += amount_cny,
            AccountEvent::FillBooked {
                side,
                value_cny,
                fees,
                instrument,
                quantity,
                ..
            } => {
                self.fees_cny += fees.total_cny();
                let held = self.quantity_by_instrument.entry(instrument.clone()).or_default();
                match side {
                    Side::Buy => {
                        self.bought_cny += value_cny;
                        *held += i128::from(*quantity);
                    }
                    Side::Sell => {
                        self.sold_cny += value_cny;
                        *held -= i128::from(*quantity);
                    }
                }
            }
            _ => {}
        }
    }

    /// Cash = deposits - withdrawals - buys + sells - fees.
    pub fn cash_cny(&self) -> Decimal {
        self.deposited_cny - self.withdrawn_cny - self.bought_cny + self.sold_cny - self.fees_cny
    }
}

/// Checks invariants 1 to 3 of DESIGN.md on one account. `totals` are the
/// sums of the same account's events. Returns a sentence naming what broke.
pub fn check_account(account: &Account, totals: &EventTotals) -> Result<(), String> {
    check_cash(account, totals)?;
    check_frozen_shares(account)?;
    check_quantities(account, totals)
}

/// No negative cash; frozen = open reserves + pending withdrawals; unsettled = its
/// dates' sum; cash = what the events add up to.
fn check_cash(account: &Account, totals: &EventTotals) -> Result<(), String> {
    let cash = account.cash();
    let zero = Decimal::ZERO;
    if cash.available_cny < zero || cash.frozen_cny < zero || cash.unsettled_cny < zero {
        return Err(format!("negative cash: {cash:?}"));
    }
    let reserved: Decimal = account.open_orders().values().map(|o| o.reserved_cny).sum();
    let pending: Decimal = account.pending_withdrawals().values().copied().sum();
    if cash.frozen_cny != reserved + pending {
        return Err(format!(
            "frozen cash {} != open order reserves {reserved} + pending withdrawals {pending}",
            cash.frozen_cny
        ));
    }
    let unsettled_by_date: Decimal = account.unsettled_by_date().values().copied().sum();
    if cash.unsettled_cny != unsettled_by_date {
        return Err(format!(
            "unsettled {} != sum per trade date {unsettled_by_date}",
            cash.unsettled_cny
        ));
    }
    if cash.total_cny() != totals.cash_cny() {
        return Err(format!(
            "cash {} (available + frozen) != deposits - withdrawals - buys + sells - fees = {}",
            cash.total_cny(),
            totals.cash_cny()
        ));
    }
    Ok(())
}

/// No order filled past its quantity; frozen shares = open sell remainders, within the position.
fn check_frozen_shares(account: &Account) -> Result<(), String> {
    let mut open_sells: BTreeMap<&InstrumentCode, u64> = BTreeMap::new();
    for order in account.open_orders().values() {
        *open_sells.entry(&order.instrument).or_default() += order.frozen_shares();
        if order.filled_quantity > order.quantity {
            return Err(format!(
                "order {} filled {} of {}",
                order.order_id, order.filled_quantity, order.quantity
            ));
        }
    }
    for (instrument, position) in account.positions() {
        let expected_frozen = open_sells.get(instrument).copied().unwrap_or(0);
        if position.frozen != expected_frozen {
            return Err(format!(
                "{instrument}: frozen {} != open sell remainders {expected_frozen}",
                position.frozen
            ));
        }
        if position.frozen > position.quantity {
            return Err(format!(
                "{instrument}: frozen {} above quantity {}",
                position.frozen, position.quantity
            ));
        }
    }
    Ok(())
}

/// Each position's quantity = bought - sold, and no shares without a fill behind them.
fn check_quantities(account: &Account, totals: &EventTotals) -> Result<(), String> {
    for (instrument, expected) in &totals.quantity_by_instrument {
        let held = account
            .positions()
            .get(instrument)
            .map_or(0, |p| i128::from(p.quantity));
        if held != *expected {
            return Err(format!("{instrument}: quantity {held} != bought - sold {expected}"));
        }
    }
    for (instrument, position) in account.positions() {
        if position.quantity > 0 && !totals.quantity_by_instrument.contains_key(instrument) {
            return Err(format!(
                "{instrument}: quantity {} with no fill behind it",
                position.quantity
            ));
        }
    }
    Ok(())
}
