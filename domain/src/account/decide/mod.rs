//! What each command decides: the checks, then the events, one small function
//! per command. `decide` takes `&self`: a refused command cannot have changed anything.

mod cash;
mod fill;
mod place_order;

pub use place_order::sell_fee_cover;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::commands::AccountCommand;
use super::events::AccountEvent;
use super::state::Account;
use crate::error::{reject, RejectCode, Rejection};
use crate::ids::OrderId;
use crate::money::MoneyFields;
use crate::order::Order;
use crate::rules::MarketRules;
use crate::well_formed::order_size as check_order_size;

impl Account {
    /// Decides the events of a command. Refusals change nothing. Every amount and
    /// price is spelled canonically (`money::canonical_fen`), so the state an event
    /// builds is the same whether the event was just decided or read back from the log.
    pub fn decide(&self, command: AccountCommand, rules: &MarketRules) -> Result<Vec<AccountEvent>, Rejection> {
        let events = self.decide_events(command, rules)?;
        Ok(events.into_iter().map(MoneyFields::with_canonical_money).collect())
    }

    fn decide_events(&self, command: AccountCommand, rules: &MarketRules) -> Result<Vec<AccountEvent>, Rejection> {
        if let AccountCommand::Open {
            account_id,
            customer_name,
            id_number,
            risk_level,
        } = command
        {
            return self.decide_open(account_id, customer_name, id_number, risk_level);
        }
        if self.customer.is_none() {
            return reject(RejectCode::UnknownAccount, "no account with this id has been opened");
        }
        match command {
            AccountCommand::Open { .. } => unreachable!("handled above"),
            AccountCommand::Deposit { amount_cny, bank_ref } => self.decide_deposit(amount_cny, bank_ref, rules),
            AccountCommand::Withdraw { amount_cny, bank_ref } => self.decide_withdraw(amount_cny, bank_ref, rules),
            AccountCommand::ConfirmWithdrawal { bank_ref } => self.decide_confirm_withdrawal(bank_ref),
            AccountCommand::FailWithdrawal { bank_ref } => self.decide_fail_withdrawal(bank_ref),
            AccountCommand::PlaceOrder(order) => self.decide_place_order(order, rules),
            AccountCommand::RejectOrder { order_id, reason } => self.decide_reject_order(order_id, reason),
            AccountCommand::BookFill {
                order_id,
                exec_id,
                quantity,
                price,
            } => self.decide_fill(order_id, exec_id, quantity, price, rules),
            AccountCommand::RequestCancel { order_id } => self.decide_request_cancel(order_id),
            AccountCommand::ConfirmCancel { order_id } => self.decide_confirm_cancel(order_id),
            AccountCommand::ExpireOrders { trade_date } => Ok(self.decide_expire(trade_date)),
            AccountCommand::SettleTrades { trade_date } => Ok(self.decide_settle(trade_date)),
            AccountCommand::Freeze { reason } => Ok(self.decide_freeze(reason)),
            AccountCommand::Unfreeze { reason } => Ok(self.decide_unfreeze(reason)),
        }
    }

    fn decide_reject_order(&self, order_id: OrderId, reason: String) -> Result<Vec<AccountEvent>, Rejection> {
        let order = self.open_order(&order_id)?;
        Ok(vec![AccountEvent::OrderRejected {
            order_id,
            reason,
            released_cny: order.reserved_cny,
            released_shares: order.frozen_shares(),
        }])
    }

    fn decide_request_cancel(&self, order_id: OrderId) -> Result<Vec<AccountEvent>, Rejection> {
        let order = self.open_order(&order_id)?;
        if order.cancel_requested {
            return Ok(vec![]);
        }
        Ok(vec![AccountEvent::CancelRequested { order_id }])
    }

    fn decide_confirm_cancel(&self, order_id: OrderId) -> Result<Vec<AccountEvent>, Rejection> {
        let order = self.open_order(&order_id)?;
        Ok(vec![AccountEvent::OrderCanceled {
            order_id,
            released_cny: order.reserved_cny,
            released_shares: order.frozen_shares(),
        }])
    }

    fn decide_expire(&self, trade_date: NaiveDate) -> Vec<AccountEvent> {
        self.open_orders
            .values()
            .filter(|order| order.trade_date <= trade_date)
            .map(|order| AccountEvent::OrderExpired {
                order_id: order.order_id.clone(),
                trade_date: order.trade_date,
                released_cny: order.reserved_cny,
                released_shares: order.frozen_shares(),
            })
            .collect()
    }

    fn decide_settle(&self, trade_date: NaiveDate) -> Vec<AccountEvent> {
        let settled_cny: Decimal = self
            .unsettled_by_date
            .range(..=trade_date)
            .map(|(_, amount)| *amount)
            .sum();
        let has_unsettled_buys = self
            .positions
            .values()
            .any(|p| p.bought_by_date.range(..=trade_date).next().is_some());
        let has_unsettled_sells = self.unsettled_by_date.range(..=trade_date).next().is_some();
        if !has_unsettled_buys && !has_unsettled_sells {
            return vec![];
        }
        vec![AccountEvent::TradesSettled {
            trade_date,
            settled_cny,
        }]
    }

    fn decide_freeze(&self, reason: String) -> Vec<AccountEvent> {
        if self.is_frozen() {
            return vec![];
        }
        vec![AccountEvent::AccountFrozen { reason }]
    }

    fn decide_unfreeze(&self, reason: String) -> Vec<AccountEvent> {
        if !self.is_frozen() {
            return vec![];
        }
        vec![AccountEvent::AccountUnfrozen { reason }]
    }

    fn check_not_frozen(&self) -> Result<(), Rejection> {
        match &self.frozen_reason {
            Some(reason) => reject(
                RejectCode::AccountFrozen,
                format!("the account is frozen by compliance ({reason})"),
            ),
            None => Ok(()),
        }
    }

    fn open_order(&self, order_id: &OrderId) -> Result<&Order, Rejection> {
        if let Some(order) = self.open_orders.get(order_id) {
            return Ok(order);
        }
        if self.used_order_ids.contains(order_id) {
            return reject(RejectCode::OrderClosed, format!("order {order_id} is no longer open"));
        }
        reject(
            RejectCode::UnknownOrder,
            format!("this account has no order {order_id}"),
        )
    }
}

fn overflow(what: &str) -> Rejection {
    Rejection::new(
        RejectCode::NumericRange,
        format!("{what} would exceed the ledger's numeric range"),
    )
}
