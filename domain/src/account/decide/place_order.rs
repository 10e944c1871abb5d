//! The pre-trade checks of a new order and the cash or shares it freezes.

use rust_decimal::Decimal;

use super::super::commands::PlaceOrder;
use super::super::events::AccountEvent;
use super::super::state::Account;
use super::{check_order_size, overflow};
use crate::error::{reject, RejectCode, Rejection};
use crate::fees::cumulative_fees;
use crate::instrument::InstrumentInfo;
use crate::market::{price_limits, OrderType, Side};
use crate::money::{ceil_to_fen, is_on_tick, trade_value, ONE_FEN_CNY};
use crate::rules::{BoardRules, MarketRules};

impl Account {
    /// The checks run in the contract's order: the first that fails is the refusal's code.
    pub(super) fn decide_place_order(
        &self,
        order: PlaceOrder,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        check_order_size("order", order.quantity, order.price, rules)?;
        let info = self.check_order_admissible(&order)?;
        let board = info.board;
        let board_rules = rules.board(board);
        let sellable = self
            .positions
            .get(&order.instrument)
            .map_or(0, |p| p.sellable_on(order.trade_date));
        check_lot(&order, info, board_rules, sellable)?;
        check_price(&order, board_rules, rules)?;
        let reserved_cny = self.order_reserve(&order, sellable, rules)?;
        Ok(vec![AccountEvent::OrderPlaced {
            order_id: order.order_id,
            instrument: order.instrument,
            board,
            side: order.side,
            // The command file names no order type: every order placed is a limit order.
            order_type: OrderType::Limit,
            quantity: order.quantity,
            limit_price: order.price,
            trade_date: order.trade_date,
            reserved_cny,
        }])
    }

    /// The instrument is listed, the id is new, the account and the day are open and
    /// the customer may buy this product.
    fn check_order_admissible<'a>(&self, order: &'a PlaceOrder) -> Result<&'a InstrumentInfo, Rejection> {
        let PlaceOrder {
            order_id,
            instrument,
            trade_date,
            market,
            ..
        } = order;
        let Some(info) = &market.instrument else {
            return reject(
                RejectCode::UnknownInstrument,
                format!("instrument {instrument} is not listed"),
            );
        };
        if self.used_order_ids.contains(order_id) {
            return reject(
                RejectCode::DuplicateOrder,
                format!("order id {order_id} was already used by this account"),
            );
        }
        self.check_not_frozen()?;
        if market.day_closed {
            return reject(
                RejectCode::DayClosed,
                format!("trade date {trade_date} is not open for orders: closed, already over, or not a trading day"),
            );
        }
        let customer_risk = self.customer.as_ref().map_or(0, |c| c.risk_level);
        if info.risk_level > customer_risk {
            return reject(
                RejectCode::Suitability,
                format!(
                    "{instrument} has risk level {} above the customer's tolerance {customer_risk}",
                    info.risk_level
                ),
            );
        }
        Ok(info)
    }

    /// Cash the order freezes: a buy's value and fees at the limit, a sell's fee cover.
    fn order_reserve(&self, order: &PlaceOrder, sellable: u64, rules: &MarketRules) -> Result<Decimal, Rejection> {
        let PlaceOrder {
            instrument,
            side,
            quantity,
            price,
            trade_date,
            ..
        } = order;
        let available_cny = self.cash.available_cny;
        // quantity ≤ max_order_quantity and price ≤ max_price bound the value far below Decimal's range.
        let value_cny = trade_value(*price, *quantity).ok_or_else(|| overflow("trade value"))?;
        match side {
            Side::Buy => {
                let reserve = value_cny + cumulative_fees(&rules.fees, Side::Buy, value_cny).total_cny();
                if reserve > available_cny {
                    return reject(
                        RejectCode::InsufficientFunds,
                        format!("buying needs {reserve} with fees but only {available_cny} is available"),
                    );
                }
                Ok(reserve)
            }
            Side::Sell => {
                if *quantity > sellable {
                    return reject(
                        RejectCode::InsufficientPosition,
                        format!("selling {quantity} shares of {instrument} but only {sellable} are sellable on {trade_date}"),
                    );
                }
                let cover = sell_fee_cover(*price, rules);
                if cover > available_cny {
                    return reject(
                        RejectCode::InsufficientFunds,
                        format!(
                            "a first small fill may cost {cover} in fees beyond its value, but only {available_cny} is available"
                        ),
                    );
                }
                Ok(cover)
            }
        }
    }
}

/// A valid lot of the board, or a sell of everything sellable (an odd lot may only be sold whole).
fn check_lot(order: &PlaceOrder, info: &InstrumentInfo, board: &BoardRules, sellable: u64) -> Result<(), Rejection> {
    let quantity = order.quantity;
    let empties_position = order.side == Side::Sell && quantity == sellable;
    if !board.is_valid_lot(quantity) && !empties_position {
        return reject(
            RejectCode::LotSize,
            format!(
                "{quantity} shares is not a valid lot on the {} board (at least {}, then steps of {})",
                info.board.as_str(),
                board.min_quantity,
                board.step_quantity
            ),
        );
    }
    Ok(())
}

/// On the tick and within the day's price limits, which need a previous close.
fn check_price(order: &PlaceOrder, board: &BoardRules, rules: &MarketRules) -> Result<(), Rejection> {
    let PlaceOrder {
        instrument,
        price,
        trade_date,
        market,
        ..
    } = order;
    if !is_on_tick(*price, rules.price_tick) {
        return reject(
            RejectCode::PriceTick,
            format!("price {price} is not a multiple of the tick {}", rules.price_tick),
        );
    }
    let Some(prev_close) = market.prev_close else {
        return reject(
            RejectCode::NoReferencePrice,
            format!("no previous close of {instrument} is set for {trade_date}, so its price limits are unknown"),
        );
    };
    let (lower, upper) = price_limits(prev_close, board.price_limit_rate);
    if *price < lower || *price > upper {
        return reject(
            RejectCode::PriceLimit,
            format!("price {price} is outside today's limits {lower} to {upper} of {instrument}"),
        );
    }
    Ok(())
}

/// Cash a sell order at `limit_price` freezes so that no fill's fees ever take
/// available cash below zero.
///
/// A fill's fees can exceed its value only when shares are cheap. Two cases bound
/// the excess (`F(v)` is the order's cumulative fees at value `v`, `p` one share):
/// - a run of fills from the order's start costs at most `F(p) - p` plus the later-fill
///   term below: one share is the worst first fill, because each fee grows by at most
///   `rate × value + 0.01` (one fen of rounding) beyond it;
/// - a run of fills after proceeds refilled the cover costs at most
///   `0.01 × fee kinds - (1 - Σ rates) × p`, which is zero for any price above 0.05.
///
/// Fills whose proceeds exceed their fees refill the cover before anything reaches
/// available cash (see `fill_cash_changes`), so the cover is whole at the start of
/// every run and these bounds are all it needs.
pub fn sell_fee_cover(limit_price: Decimal, rules: &MarketRules) -> Decimal {
    let one_share_cny = limit_price;
    let first_fill_excess_cny =
        (cumulative_fees(&rules.fees, Side::Sell, one_share_cny).total_cny() - one_share_cny).max(Decimal::ZERO);
    let sell_rules = rules.fees.named().into_iter().filter(|(_, rule)| rule.on_sell);
    let (rounding_cny, rate_sum) = sell_rules.fold((Decimal::ZERO, Decimal::ZERO), |(rounding, rates), (_, rule)| {
        (rounding + ONE_FEN_CNY, rates + rule.rate)
    });
    let later_fill_excess_cny = (rounding_cny - (Decimal::ONE - rate_sum) * one_share_cny).max(Decimal::ZERO);
    first_fill_excess_cny + ceil_to_fen(later_fill_excess_cny)
}
