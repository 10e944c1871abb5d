//! An order while it is open inside its account.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::fees::FeeBreakdown;
use crate::ids::{ExecId, InstrumentCode, OrderId};

/// Kept here for the old path `ledger_domain::order::Side`; it lives in `market`.
pub use crate::market::Side;

/// An open order. It leaves the account's open orders when it is filled,
/// rejected, canceled or expired, and each of those releases what it still holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: OrderId,
    pub instrument: InstrumentCode,
    pub side: Side,
    pub quantity: u64,
    pub limit_price: Decimal,
    pub trade_date: NaiveDate,
    pub filled_quantity: u64,
    pub filled_value_cny: Decimal,
    pub fees_paid: FeeBreakdown,
    /// Cash still frozen for this order: for a buy, the rest of `value + fees` at the
    /// limit price; for a sell, the rest of the cover for fees that exceed a small fill's value.
    pub reserved_cny: Decimal,
    /// For a sell, the fee cover frozen when it was placed, which its proceeds refill;
    /// zero for a buy.
    #[serde(default)]
    pub cover_cny: Decimal,
    pub cancel_requested: bool,
    pub exec_ids: Vec<ExecId>,
}

impl Order {
    /// The order as `OrderPlaced` opens it: nothing filled, `reserved_cny` frozen.
    /// A sell's reserve is its fee cover, which its proceeds refill.
    pub fn placed(
        order_id: OrderId,
        instrument: InstrumentCode,
        side: Side,
        quantity: u64,
        limit_price: Decimal,
        trade_date: NaiveDate,
        reserved_cny: Decimal,
    ) -> Order {
        Order {
            order_id,
            instrument,
            side,
            quantity,
            limit_price,
            trade_date,
            filled_quantity: 0,
            filled_value_cny: Decimal::ZERO,
            fees_paid: FeeBreakdown::default(),
            reserved_cny,
            cover_cny: match side {
                Side::Buy => Decimal::ZERO,
                Side::Sell => reserved_cny,
            },
            cancel_requested: false,
            exec_ids: Vec::new(),
        }
    }

    /// Adds a booked fill: its shares, value and fees, and what it took from the reserve.
    pub fn record_fill(
        &mut self,
        exec_id: ExecId,
        quantity: u64,
        value_cny: Decimal,
        fees: &FeeBreakdown,
        reserve_used_cny: Decimal,
    ) {
        self.filled_quantity += quantity;
        self.filled_value_cny += value_cny;
        self.fees_paid = self.fees_paid.plus(fees);
        self.reserved_cny -= reserve_used_cny;
        self.exec_ids.push(exec_id);
    }

    pub fn remaining_quantity(&self) -> u64 {
        debug_assert!(self.filled_quantity <= self.quantity);
        self.quantity - self.filled_quantity
    }

    /// Shares this order keeps frozen: a sell's unfilled remainder.
    pub fn frozen_shares(&self) -> u64 {
        match self.side {
            Side::Buy => 0,
            Side::Sell => self.remaining_quantity(),
        }
    }
}
