//! Money and quantities.
//!
//! Cash is `rust_decimal::Decimal` in yuan (CNY), never a float. Every amount
//! that is booked is rounded to the fen (0.01) with one rule: half away from
//! zero (`RoundingStrategy::MidpointAwayFromZero`), as exchanges and CSDC do.
//! Share quantities are whole shares (`u64`).
//!
//! Every amount and price a new event carries has one spelling,
//! [`canonical_fen`]: exactly two decimals, never a negative zero. `Decimal`
//! keeps a scale and a sign of zero that its text shows (`5` and `5.00`, `-0`
//! and `0`) and that reading the text back may not restore (`"-0"` reads as
//! `0`), so without one spelling an account rebuilt from the log could write
//! other bytes than the same account kept in memory. Events say which of their
//! fields are money through [`MoneyFields`].

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

/// The one spelling of an amount or a price in a new event: exactly two decimals
/// (`5` is `5.00`, `10.500` is `10.50`), never a negative zero (`-0` is `0.00`).
/// Every amount the ledger books and every price on the tick (a whole number of fen,
/// `MarketRules`) is whole fen, so this never rounds: it asserts so.
pub fn canonical_fen(amount: Decimal) -> Decimal {
    assert!(
        is_whole_fen(amount),
        "{amount} is not a whole number of fen: every amount and price of an event is"
    );
    let mut canonical = amount;
    canonical.rescale(FEN_DECIMAL_PLACES);
    if canonical.is_zero() {
        canonical.set_sign_positive(true);
    }
    canonical
}

/// True when `amount` is spelled as [`canonical_fen`] spells it.
pub fn is_canonical_fen(amount: Decimal) -> bool {
    amount.scale() == FEN_DECIMAL_PLACES && !(amount.is_zero() && amount.is_sign_negative())
}

/// An event's amounts and prices, by field name: what [`canonical_fen`] spells.
/// Every `Decimal` an event carries must be listed, or it escapes the one spelling
/// (the property tests of each event type check that none does).
pub trait MoneyFields: Clone {
    /// Every amount and price of the event, by its field name in the payload
    /// (`fees.stamp_duty_cny` for a nested one).
    fn money_fields_mut(&mut self) -> Vec<(&'static str, &mut Decimal)>;

    /// The event with every amount and price spelled canonically.
    fn with_canonical_money(mut self) -> Self {
        for (_, amount) in self.money_fields_mut() {
            *amount = canonical_fen(*amount);
        }
        self
    }

    /// The first amount or price not spelled canonically, with its field name.
    fn non_canonical_money(&self) -> Option<(&'static str, Decimal)> {
        let mut event = self.clone();
        let fields = event.money_fields_mut();
        fields
            .into_iter()
            .find(|(_, amount)| !is_canonical_fen(**amount))
            .map(|(field, amount)| (field, *amount))
    }
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
    fn the_canonical_spelling_has_two_decimals_and_no_negative_zero() {
        let negative_zero = -dec!(0);
        assert_eq!(negative_zero.to_string(), "-0", "what once reached the log");
        for (amount, spelled) in [
            (negative_zero, "0.00"),
            (-dec!(0.00), "0.00"),
            (dec!(0), "0.00"),
            (dec!(5), "5.00"),
            (dec!(10.500), "10.50"),
            (dec!(-3.1), "-3.10"),
            (dec!(1005.06), "1005.06"),
        ] {
            let canonical = canonical_fen(amount);
            assert_eq!(canonical.to_string(), spelled);
            assert!(is_canonical_fen(canonical));
            let read_back: Decimal = spelled.parse().unwrap();
            assert_eq!(
                read_back.to_string(),
                spelled,
                "the text reads back to the same spelling"
            );
        }
        assert!(!is_canonical_fen(negative_zero));
        assert!(!is_canonical_fen(dec!(5)));
        assert!(!is_canonical_fen(dec!(5.000)));
        assert!(!is_canonical_fen(-dec!(0.00)));
    }

    #[test]
    #[should_panic(expected = "not a whole number of fen")]
    fn the_canonical_spelling_never_rounds() {
        canonical_fen(dec!(0.005));
    }

    #[test]
    fn formats_two_decimals() {
        assert_eq!(format_cny(dec!(5)), "5.00");
        assert_eq!(format_cny(dec!(1005.06)), "1005.06");
        assert_eq!(format_cny(dec!(0.1)), "0.10");
    }
}
