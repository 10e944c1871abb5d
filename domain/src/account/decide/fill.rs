//! Booking a fill: its checks, its fees, and how its cash moves between the
//! order's reserve, available and unsettled cash.

use rust_decimal::Decimal;

use super::super::events::AccountEvent;
use super::super::state::Account;
use super::{check_order_size, overflow};
use crate::error::{reject, RejectCode, Rejection};
use crate::fees::cumulative_fees;
use crate::ids::{ExecId, OrderId};
use crate::market::Side;
use crate::money::{is_on_tick, trade_value};
use crate::order::Order;
use crate::rules::MarketRules;

/// How one fill moves cash, as `FillBooked` carries it.
struct FillCash {
    reserve_used_cny: Decimal,
    available_change_cny: Decimal,
    unsettled_change_cny: Decimal,
}

impl Account {
    pub(super) fn decide_fill(
        &self,
        order_id: OrderId,
        exec_id: ExecId,
        quantity: u64,
        price: Decimal,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        let order = self.check_fill(&order_id, &exec_id, quantity, price, rules)?;
        let value_cny = trade_value(price, quantity).ok_or_else(|| overflow("fill value"))?;
        let cumulative_value_cny = order.filled_value_cny + value_cny;
        let fees = cumulative_fees(&rules.fees, order.side, cumulative_value_cny).minus(&order.fees_paid);
        assert!(fees.is_non_negative(), "cumulative fees never decrease as value grows");
        let fee_total_cny = fees.total_cny();
        self.check_fill_fits(order, quantity, value_cny - fee_total_cny)?;
        let cash = fill_cash_changes(order, value_cny, fee_total_cny);
        let mut events = vec![AccountEvent::FillBooked {
            order_id: order_id.clone(),
            exec_id,
            instrument: order.instrument.clone(),
            side: order.side,
            trade_date: order.trade_date,
            quantity,
            price,
            value_cny,
            fees,
            reserve_used_cny: cash.reserve_used_cny,
            available_change_cny: cash.available_change_cny,
            unsettled_change_cny: cash.unsettled_change_cny,
        }];
        if quantity == order.remaining_quantity() {
            events.push(AccountEvent::OrderCompleted {
                order_id,
                released_cny: order.reserved_cny - cash.reserve_used_cny,
            });
        }
        Ok(events)
    }

    /// A new execution of an open order, within what is left of it and at its limit or better.
    fn check_fill(
        &self,
        order_id: &OrderId,
        exec_id: &ExecId,
        quantity: u64,
        price: Decimal,
        rules: &MarketRules,
    ) -> Result<&Order, Rejection> {
        check_order_size("fill", quantity, price, rules)?;
        if self.booked_exec_ids.contains(exec_id) {
            return reject(
                RejectCode::DuplicateExec,
                format!("execution {exec_id} is already booked; nothing changed"),
            );
        }
        let order = self.open_order(order_id)?;
        if quantity > order.remaining_quantity() {
            return reject(
                RejectCode::FillExceedsOrder,
                format!(
                    "fill of {quantity} exceeds the {} shares left of order {order_id}",
                    order.remaining_quantity()
                ),
            );
        }
        let price_beyond_limit = match order.side {
            Side::Buy => price > order.limit_price,
            Side::Sell => price < order.limit_price,
        };
        if price_beyond_limit || !is_on_tick(price, rules.price_tick) {
            return reject(
                RejectCode::FillPrice,
                format!(
                    "fill price {price} is not allowed for a {} order limited at {}",
                    order.side.as_str(),
                    order.limit_price
                ),
            );
        }
        Ok(order)
    }

    /// The fill's shares or proceeds fit the ledger's numbers.
    fn check_fill_fits(&self, order: &Order, quantity: u64, proceeds_cny: Decimal) -> Result<(), Rejection> {
        match order.side {
            Side::Buy => {
                let held = self.positions.get(&order.instrument).map_or(0, |p| p.quantity);
                held.checked_add(quantity)
                    .ok_or_else(|| overflow("the position's quantity"))?;
            }
            Side::Sell => {
                self.cash
                    .available_cny
                    .checked_add(proceeds_cny)
                    .ok_or_else(|| overflow("available cash"))?;
                self.cash
                    .unsettled_cny
                    .checked_add(proceeds_cny)
                    .ok_or_else(|| overflow("unsettled cash"))?;
            }
        }
        Ok(())
    }
}

/// A buy pays value and fees from its reserve. A sell's proceeds refill its fee
/// cover first (a later fill may cost more than its value again), then raise
/// available and unsettled cash; fees beyond a small fill's value come from the cover.
fn fill_cash_changes(order: &Order, value_cny: Decimal, fee_total_cny: Decimal) -> FillCash {
    let (reserve_used_cny, available_change_cny, unsettled_change_cny) = match order.side {
        Side::Buy => {
            let cost = value_cny + fee_total_cny;
            // Fill price ≤ limit and fees are monotone in value, so the reserve covers every fill.
            assert!(
                cost <= order.reserved_cny,
                "buy reserve {} must cover fill cost {cost}",
                order.reserved_cny
            );
            (cost, Decimal::ZERO, Decimal::ZERO)
        }
        Side::Sell => {
            let net = value_cny - fee_total_cny;
            if net >= Decimal::ZERO {
                let refill = (order.cover_cny - order.reserved_cny).min(net);
                (-refill, net - refill, net - refill)
            } else {
                // `sell_fee_cover` bounds every run of fills whose fees exceed their value.
                assert!(
                    -net <= order.reserved_cny,
                    "sell cover {} must pay fees {fee_total_cny} beyond fill value {value_cny}",
                    order.reserved_cny
                );
                (-net, Decimal::ZERO, Decimal::ZERO)
            }
        }
    };
    FillCash {
        reserve_used_cny,
        available_change_cny,
        unsettled_change_cny,
    }
}
