//! An order while it is open inside its account.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::fees::FeeBreakdown;
use crate::ids::{ExecId, InstrumentCode, OrderId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

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
