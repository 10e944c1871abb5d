//! How each event changes the account: one small function per event.
//!
//! `apply` trusts the event: every figure an event carries was decided,
//! checked and rounded by `decide`, so nothing here can refuse or recompute.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::events::AccountEvent;
use super::state::{Account, Customer};
use crate::ids::{AccountId, BankRef, OrderId};
use crate::market::Side;
use crate::order::Order;

impl Account {
    pub(super) fn apply_event(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountOpened {
                account_id,
                customer_name,
                id_number,
                risk_level,
            } => self.apply_opened(account_id, customer_name, id_number, risk_level),
            AccountEvent::CashDeposited { amount_cny, bank_ref } => self.apply_deposited(amount_cny, bank_ref),
            AccountEvent::WithdrawalRequested { amount_cny, bank_ref } => {
                self.apply_withdrawal_requested(amount_cny, bank_ref);
            }
            AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref } => {
                self.apply_withdrawal_confirmed(amount_cny, &bank_ref);
            }
            AccountEvent::WithdrawalFailed { amount_cny, bank_ref } => {
                self.apply_withdrawal_failed(amount_cny, &bank_ref)
            }
            AccountEvent::LargeCashMovementFlagged { .. } => {}
            AccountEvent::OrderPlaced {
                order_id,
                instrument,
                side,
                quantity,
                limit_price,
                trade_date,
                reserved_cny,
                ..
            } => self.apply_order_placed(Order::placed(
                order_id,
                instrument,
                side,
                quantity,
                limit_price,
                trade_date,
                reserved_cny,
            )),
            fill @ AccountEvent::FillBooked { .. } => self.apply_fill(fill),
            AccountEvent::OrderCompleted { order_id, released_cny } => self.release_order(&order_id, released_cny, 0),
            AccountEvent::CancelRequested { order_id } => self.apply_cancel_requested(&order_id),
            AccountEvent::OrderRejected {
                order_id,
                released_cny,
                released_shares,
                ..
            }
            | AccountEvent::OrderCanceled {
                order_id,
                released_cny,
                released_shares,
            }
            | AccountEvent::OrderExpired {
                order_id,
                released_cny,
                released_shares,
                ..
            } => self.release_order(&order_id, released_cny, released_shares),
            AccountEvent::TradesSettled {
                trade_date,
                settled_cny,
            } => self.apply_trades_settled(trade_date, settled_cny),
            AccountEvent::AccountFrozen { reason } => self.frozen_reason = Some(reason),
            AccountEvent::AccountUnfrozen { .. } => self.frozen_reason = None,
        }
    }

    fn apply_opened(&mut self, account_id: AccountId, customer_name: String, id_number: String, risk_level: u8) {
        self.customer = Some(Customer {
            account_id,
            customer_name,
            id_number,
            risk_level,
        });
    }

    fn apply_deposited(&mut self, amount_cny: Decimal, bank_ref: BankRef) {
        self.cash.available_cny += amount_cny;
        self.used_bank_refs.insert(bank_ref);
    }

    fn apply_withdrawal_requested(&mut self, amount_cny: Decimal, bank_ref: BankRef) {
        self.cash.available_cny -= amount_cny;
        self.cash.frozen_cny += amount_cny;
        self.used_bank_refs.insert(bank_ref.clone());
        self.pending_withdrawals.insert(bank_ref, amount_cny);
    }

    fn apply_withdrawal_confirmed(&mut self, amount_cny: Decimal, bank_ref: &BankRef) {
        self.cash.frozen_cny -= amount_cny;
        self.pending_withdrawals.remove(bank_ref);
    }

    fn apply_withdrawal_failed(&mut self, amount_cny: Decimal, bank_ref: &BankRef) {
        self.cash.frozen_cny -= amount_cny;
        self.cash.available_cny += amount_cny;
        self.pending_withdrawals.remove(bank_ref);
    }

    fn apply_order_placed(&mut self, order: Order) {
        self.cash.available_cny -= order.reserved_cny;
        self.cash.frozen_cny += order.reserved_cny;
        if order.side == Side::Sell {
            self.positions
                .entry(order.instrument.clone())
                .or_default()
                .freeze(order.quantity);
        }
        self.used_order_ids.insert(order.order_id.clone());
        self.open_orders.insert(order.order_id.clone(), order);
    }

    /// Moves the fill's cash, shares and cost, and adds it to its order.
    fn apply_fill(&mut self, fill: AccountEvent) {
        let AccountEvent::FillBooked {
            order_id,
            exec_id,
            instrument,
            side,
            trade_date,
            quantity,
            value_cny,
            fees,
            reserve_used_cny,
            available_change_cny,
            unsettled_change_cny,
            ..
        } = fill
        else {
            unreachable!("apply_event hands only FillBooked to apply_fill");
        };
        self.cash.frozen_cny -= reserve_used_cny;
        self.cash.available_cny += available_change_cny;
        self.cash.unsettled_cny += unsettled_change_cny;
        let position = self.positions.entry(instrument).or_default();
        match side {
            Side::Buy => position.add_bought(trade_date, quantity, value_cny + fees.total_cny()),
            Side::Sell => {
                position.remove_sold(quantity);
                *self.unsettled_by_date.entry(trade_date).or_default() += unsettled_change_cny;
            }
        }
        if let Some(order) = self.open_orders.get_mut(&order_id) {
            order.record_fill(exec_id.clone(), quantity, value_cny, &fees, reserve_used_cny);
        }
        self.booked_exec_ids.insert(exec_id);
    }

    fn apply_cancel_requested(&mut self, order_id: &OrderId) {
        if let Some(order) = self.open_orders.get_mut(order_id) {
            order.cancel_requested = true;
        }
    }

    fn apply_trades_settled(&mut self, trade_date: NaiveDate, settled_cny: Decimal) {
        self.cash.unsettled_cny -= settled_cny;
        self.unsettled_by_date.retain(|date, _| *date > trade_date);
        for position in self.positions.values_mut() {
            position.settle_through(trade_date);
        }
        self.positions.retain(|_, position| position.holds_shares());
    }

    /// Closes an open order and gives back what it held.
    fn release_order(&mut self, order_id: &OrderId, released_cny: Decimal, released_shares: u64) {
        let Some(order) = self.open_orders.remove(order_id) else {
            return;
        };
        debug_assert_eq!(
            order.reserved_cny, released_cny,
            "an order releases exactly what it holds"
        );
        self.cash.frozen_cny -= released_cny;
        self.cash.available_cny += released_cny;
        if released_shares > 0 {
            if let Some(position) = self.positions.get_mut(&order.instrument) {
                position.unfreeze(released_shares);
            }
        }
        if self.positions.get(&order.instrument).is_some_and(|p| p.is_empty()) {
            self.positions.remove(&order.instrument);
        }
    }
}
