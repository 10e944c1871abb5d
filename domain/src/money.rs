//! Money and quantities.
//!
//! Cash is `rust_decimal::Decimal` in yuan (CNY), never a float. Every amount
//! that is booked is rounded to the fen (0.01) with one rule: half away from
//! zero (`RoundingStrategy::MidpointAwayFromZero`), as exchanges and CSDC do.
//! Share quantities are whole shares (`u64`).

use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places of a booked cash amount: the fen.
pub const FEN_DECIMAL_PLACES: u32 = 2;

/// Rounds to the fen, half away from zero. The one rounding rule of the ledger.
pub fn round_to_fen(amount_cny: Decimal) -> Decimal {
    amount_cny.round_dp_with_strategy(FEN_DECIMAL_PLACES, RoundingStrategy::MidpointAwayFromZero)
}

/// The smallest amount of money: one fen, 0.01 CNY.
pub const ONE_FEN_CNY: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// Rounds up to the next whole fen (`0.041` to `0.05`), for bounds that must not fall short.
pub fn ceil_to_fen(amount_cny: Decimal) -> Decimal {
    amount_cny.round_dp_with_strategy(FEN_DECIMAL_PLACES, RoundingStrategy::AwayFromZero)
}

/// True when the amount has no digits below the fen (`10.10` yes, `10.101` no).
pub fn is_whole_fen(amount_cny: Decimal) -> bool {
    amount_cny.normalize().scale() <= FEN_DECIMAL_PLACES
}

/// True when `price` is a whole multiple of `tick`.
pub fn is_on_tick(price: Decimal, tick: Decimal) -> bool {
    debug_assert!(tick > Decimal::ZERO, "tick must be positive");
    (price % tick).is_zero()
}

/// Trade value `price × quantity`, `None` if it would overflow.
pub fn trade_value(price: Decimal, quantity_shares: u64) -> Option<Decimal> {
    price.checked_mul(Decimal::from(quantity_shares))
}

/// Formats an amount with exactly two decimals, as the read-outs show it.
pub fn format_cny(amount_cny: Decimal) -> String {
    let mut rounded = round_to_fen(amount_cny);
    rounded.rescale(FEN_DECIMAL_PLACES);
    rounded.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round_to_fen(dec!(0.005)), dec!(0.01));
        assert_eq!(round_to_fen(dec!(0.0049)), dec!(0.00));
        assert_eq!(round_to_fen(dec!(-0.005)), dec!(-0.01));
        assert_eq!(round_to_fen(dec!(2.675)), dec!(2.68));
    }

    #[test]
    fn whole_fen_and_tick() {
        assert!(is_whole_fen(dec!(10.10)));
        assert!(is_whole_fen(dec!(10.1000)));
        assert!(!is_whole_fen(dec!(10.101)));
        assert!(is_on_tick(dec!(5.29), dec!(0.01)));
        assert!(!is_on_tick(dec!(5.295), dec!(0.01)));
    }

    #[test]
    fn formats_two_decimals() {
        assert_eq!(format_cny(dec!(5)), "5.00");
        assert_eq!(format_cny(dec!(1005.06)), "1005.06");
        assert_eq!(format_cny(dec!(0.1)), "0.10");
    }
}
