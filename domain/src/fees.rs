//! Fees charged on fills, cumulatively per order.
//!
//! After a fill, an order's total for each fee is `round(rate × cumulative value)`
//! (at least the fee's minimum once the order has any fill), and the fill is
//! charged the difference from what the order already paid. So the sum over the
//! fills equals the fee on the whole order and no fill is charged twice.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::market::Side;
use crate::money::round_to_fen;
use crate::rules::{FeeRule, FeeSchedule};

/// Each fee in its own field, in CNY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeeBreakdown {
    pub commission_cny: Decimal,
    pub stamp_duty_cny: Decimal,
    pub transfer_fee_cny: Decimal,
    pub handling_fee_cny: Decimal,
    pub regulatory_fee_cny: Decimal,
}

impl FeeBreakdown {
    pub fn total_cny(&self) -> Decimal {
        self.commission_cny
            + self.stamp_duty_cny
            + self.transfer_fee_cny
            + self.handling_fee_cny
            + self.regulatory_fee_cny
    }

    /// What a fill of `value_cny` with these fees does to the customer's cash: a buy
    /// pays its value and its fees, a sell receives its value less its fees.
    pub fn net_cash_cny(&self, side: Side, value_cny: Decimal) -> Decimal {
        match side {
            Side::Buy => -(value_cny + self.total_cny()),
            Side::Sell => value_cny - self.total_cny(),
        }
    }

    /// Field-wise `self - earlier`.
    pub fn minus(&self, earlier: &FeeBreakdown) -> FeeBreakdown {
        FeeBreakdown {
            commission_cny: self.commission_cny - earlier.commission_cny,
            stamp_duty_cny: self.stamp_duty_cny - earlier.stamp_duty_cny,
            transfer_fee_cny: self.transfer_fee_cny - earlier.transfer_fee_cny,
            handling_fee_cny: self.handling_fee_cny - earlier.handling_fee_cny,
            regulatory_fee_cny: self.regulatory_fee_cny - earlier.regulatory_fee_cny,
        }
    }

    /// Field-wise `self + increment`.
    pub fn plus(&self, increment: &FeeBreakdown) -> FeeBreakdown {
        FeeBreakdown {
            commission_cny: self.commission_cny + increment.commission_cny,
            stamp_duty_cny: self.stamp_duty_cny + increment.stamp_duty_cny,
            transfer_fee_cny: self.transfer_fee_cny + increment.transfer_fee_cny,
            handling_fee_cny: self.handling_fee_cny + increment.handling_fee_cny,
            regulatory_fee_cny: self.regulatory_fee_cny + increment.regulatory_fee_cny,
        }
    }

    /// Each fee by its field name in an event's payload, for `MoneyFields`.
    pub fn fields_mut(&mut self) -> [(&'static str, &mut Decimal); 5] {
        [
            ("fees.commission_cny", &mut self.commission_cny),
            ("fees.stamp_duty_cny", &mut self.stamp_duty_cny),
            ("fees.transfer_fee_cny", &mut self.transfer_fee_cny),
            ("fees.handling_fee_cny", &mut self.handling_fee_cny),
            ("fees.regulatory_fee_cny", &mut self.regulatory_fee_cny),
        ]
    }

    pub fn is_non_negative(&self) -> bool {
        [
            self.commission_cny,
            self.stamp_duty_cny,
            self.transfer_fee_cny,
            self.handling_fee_cny,
            self.regulatory_fee_cny,
        ]
        .iter()
        .all(|fee| *fee >= Decimal::ZERO)
    }
}

/// An order's total fees once its fills add up to `cumulative_value_cny`.
///
/// `cumulative_value_cny` is bounded by the rules' max price × max quantity, so the
/// products here cannot overflow a `Decimal`.
pub fn cumulative_fees(schedule: &FeeSchedule, side: Side, cumulative_value_cny: Decimal) -> FeeBreakdown {
    assert!(cumulative_value_cny >= Decimal::ZERO, "trade value is never negative");
    let fee = |rule: &FeeRule| -> Decimal {
        let applies = match side {
            Side::Buy => rule.on_buy,
            Side::Sell => rule.on_sell,
        };
        if !applies || cumulative_value_cny.is_zero() {
            return Decimal::ZERO;
        }
        round_to_fen(rule.rate * cumulative_value_cny).max(rule.minimum_cny)
    };
    FeeBreakdown {
        commission_cny: fee(&schedule.commission),
        stamp_duty_cny: fee(&schedule.stamp_duty),
        transfer_fee_cny: fee(&schedule.transfer_fee),
        handling_fee_cny: fee(&schedule.handling_fee),
        regulatory_fee_cny: fee(&schedule.regulatory_fee),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::MarketRules;
    use rust_decimal_macros::dec;

    fn schedule() -> FeeSchedule {
        MarketRules::china_a_share().unwrap().fees
    }

    #[test]
    fn buy_of_one_lot_at_ten_yuan() {
        // v = 100 × 10.00 = 1000.00
        // commission 0.025 % = 0.25 -> minimum 5.00; no stamp duty on buys;
        // transfer 0.001 % = 0.01; handling 0.00341 % = 0.0341 -> 0.03; regulatory 0.002 % = 0.02.
        let fees = cumulative_fees(&schedule(), Side::Buy, dec!(1000.00));
        assert_eq!(fees.commission_cny, dec!(5.00));
        assert_eq!(fees.stamp_duty_cny, dec!(0));
        assert_eq!(fees.transfer_fee_cny, dec!(0.01));
        assert_eq!(fees.handling_fee_cny, dec!(0.03));
        assert_eq!(fees.regulatory_fee_cny, dec!(0.02));
        assert_eq!(fees.total_cny(), dec!(5.06));
    }

    #[test]
    fn sell_pays_stamp_duty() {
        // v = 8088 × 5.85 = 47314.80
        // commission 11.8287 -> 11.83; stamp 23.6574 -> 23.66; transfer 0.473148 -> 0.47;
        // handling 1.61343468 -> 1.61; regulatory 0.946296 -> 0.95. Total 38.52.
        let fees = cumulative_fees(&schedule(), Side::Sell, dec!(47314.80));
        assert_eq!(fees.commission_cny, dec!(11.83));
        assert_eq!(fees.stamp_duty_cny, dec!(23.66));
        assert_eq!(fees.transfer_fee_cny, dec!(0.47));
        assert_eq!(fees.handling_fee_cny, dec!(1.61));
        assert_eq!(fees.regulatory_fee_cny, dec!(0.95));
        assert_eq!(fees.total_cny(), dec!(38.52));
    }

    #[test]
    fn zero_value_costs_nothing() {
        assert_eq!(cumulative_fees(&schedule(), Side::Sell, dec!(0)).total_cny(), dec!(0));
    }

    #[test]
    fn increments_add_up_to_the_whole() {
        let s = schedule();
        // Three fills of 876, 312 and 12 shares at 5.25 add up to the whole 1200 × 5.25 = 6300.00.
        let mut paid = FeeBreakdown::default();
        let mut value = dec!(0);
        for qty in [876u64, 312, 12] {
            value += dec!(5.25) * Decimal::from(qty);
            let total = cumulative_fees(&s, Side::Buy, value);
            let increment = total.minus(&paid);
            assert!(increment.is_non_negative());
            paid = paid.plus(&increment);
        }
        assert_eq!(paid, cumulative_fees(&s, Side::Buy, dec!(6300.00)));
    }
}
