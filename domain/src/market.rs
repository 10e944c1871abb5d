//! The market's shared vocabulary: order sides and types, boards and daily price limits.
//!
//! Every other module depends on this one and it depends on none of them but
//! `money`, so rules, fees, orders, instruments and accounts form no cycle.
//! The strings of `Side`, `OrderType` and `Board` are part of the stored events (and
//! `Side` and `Board` of the answers): strum and serde derive them from the same
//! `snake_case` rule.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::round_to_fen;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// The side's name in events and answers (`buy`, `sell`); kept for callers outside the crate.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How an order is priced: `order_type` in `OrderPlaced` (version 2), `limit` today.
///
/// Every order placed is a limit order: the command file has no order type. This is the
/// groundwork for market orders (市价委托): one would carry its protection price (保护限价,
/// the worst price it may fill at) in `limit_price`, so that the order's reserve, fees and
/// price checks keep reading that one field.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OrderType {
    /// Fills at `limit_price` or better.
    Limit,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Board {
    /// SSE / SZSE main board.
    Main,
    /// SZSE ChiNext (创业板).
    Chinext,
    /// SSE STAR Market (科创板).
    Star,
    /// Special treatment (ST, *ST) stocks.
    St,
}

impl Board {
    /// The board's name in events, rules files and command files; kept for callers outside the crate.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The board named `text` exactly as `as_str` writes it; kept for callers outside the crate.
    pub fn parse(text: &str) -> Option<Board> {
        text.parse().ok()
    }
}

/// `round(prev_close × (1 ± rate), 2)`: the lowest and highest price of the day.
pub fn price_limits(prev_close: Decimal, limit_rate: Decimal) -> (Decimal, Decimal) {
    (
        round_to_fen(prev_close * (Decimal::ONE - limit_rate)),
        round_to_fen(prev_close * (Decimal::ONE + limit_rate)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn strum_and_serde_write_the_same_strings() {
        for side in Side::iter() {
            assert_eq!(serde_json::to_string(&side).unwrap(), format!("\"{}\"", side.as_str()));
            assert_eq!(side.to_string(), side.as_str());
            assert_eq!(side.as_str().parse::<Side>(), Ok(side));
        }
        for board in Board::iter() {
            assert_eq!(
                serde_json::to_string(&board).unwrap(),
                format!("\"{}\"", board.as_str())
            );
            assert_eq!(board.to_string(), board.as_str());
            assert_eq!(Board::parse(board.as_str()), Some(board));
        }
        for order_type in OrderType::iter() {
            assert_eq!(serde_json::to_string(&order_type).unwrap(), format!("\"{order_type}\""));
            assert_eq!(order_type.to_string().parse::<OrderType>(), Ok(order_type));
        }
    }

    #[test]
    fn the_strings_are_the_stored_ones() {
        let sides: Vec<&str> = Side::iter().map(Side::as_str).collect();
        assert_eq!(sides, ["buy", "sell"]);
        let boards: Vec<&str> = Board::iter().map(Board::as_str).collect();
        assert_eq!(boards, ["main", "chinext", "star", "st"]);
        // The upcaster of a version 1 OrderPlaced writes this string (ledger-eventstore's versions.rs).
        let order_types: Vec<&str> = OrderType::iter().map(<&str>::from).collect();
        assert_eq!(order_types, ["limit"]);
        assert_eq!(Board::parse("Main"), None);
        assert_eq!(Board::parse("stx"), None);
    }
}
