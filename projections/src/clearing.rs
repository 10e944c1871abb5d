//! The end-of-day clearing report: per instrument and in total, what was
//! bought and sold, each fee, and the net cash to settle with the depository.
//!
//! Net cash to the depository (CSDC) is what the broker pays for its customers'
//! buys, less what it receives for their sells, plus the fees it collects on
//! the exchange's and the state's behalf (stamp duty, transfer, handling and
//! regulatory fees). Commission is the broker's own and is not settled there.
//! Positive: the broker pays; negative: it receives.

use std::collections::BTreeMap;

use ledger_domain::fees::FeeBreakdown;
use ledger_domain::Side;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::tables::Trade;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClearingLine {
    pub instrument: String,
    pub trades: u64,
    pub bought_quantity: u64,
    pub bought_cny: Decimal,
    pub sold_quantity: u64,
    pub sold_cny: Decimal,
    pub fees: FeeBreakdown,
    pub net_to_depository_cny: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClearingReport {
    pub lines: Vec<ClearingLine>,
    pub total: ClearingLine,
}

impl ClearingLine {
    fn add(&mut self, trade: &Trade) {
        self.trades += 1;
        // The trades table keeps the side as the domain names it.
        if trade.side == Side::Buy.as_str() {
            self.bought_quantity += trade.quantity;
            self.bought_cny += trade.value_cny;
        } else {
            self.sold_quantity += trade.quantity;
            self.sold_cny += trade.value_cny;
        }
        self.fees = self.fees.plus(&trade.fees);
        self.net_to_depository_cny = self.bought_cny - self.sold_cny + self.fees.total_cny() - self.fees.commission_cny;
    }
}

/// The report of one trade date's trades.
pub fn clearing_report(trades: &[Trade]) -> ClearingReport {
    let mut by_instrument: BTreeMap<&str, ClearingLine> = BTreeMap::new();
    let mut total = ClearingLine {
        instrument: "total".to_owned(),
        ..ClearingLine::default()
    };
    for trade in trades {
        let line = by_instrument
            .entry(trade.instrument.as_str())
            .or_insert_with(|| ClearingLine {
                instrument: trade.instrument.clone(),
                ..ClearingLine::default()
            });
        line.add(trade);
        total.add(trade);
    }
    let lines: Vec<ClearingLine> = by_instrument.into_values().collect();
    debug_assert_eq!(lines.iter().map(|l| l.trades).sum::<u64>(), total.trades);
    ClearingReport { lines, total }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn trade(instrument: &str, side: &str, quantity: u64, value_cny: Decimal, fees: FeeBreakdown) -> Trade {
        Trade {
            global_position: 1,
            account_id: "A1".into(),
            instrument: instrument.into(),
            side: side.into(),
            quantity,
            value_cny,
            fees,
        }
    }

    #[test]
    fn nets_buys_sells_and_the_fees_the_depository_collects() {
        let buy_fees = FeeBreakdown {
            commission_cny: dec!(5.00),
            stamp_duty_cny: dec!(0),
            transfer_fee_cny: dec!(0.01),
            handling_fee_cny: dec!(0.03),
            regulatory_fee_cny: dec!(0.02),
        };
        let sell_fees = FeeBreakdown {
            commission_cny: dec!(5.00),
            stamp_duty_cny: dec!(0.60),
            transfer_fee_cny: dec!(0.01),
            handling_fee_cny: dec!(0.04),
            regulatory_fee_cny: dec!(0.02),
        };
        let report = clearing_report(&[
            trade("600000.SH", "buy", 100, dec!(1000.00), buy_fees),
            trade("600000.SH", "sell", 100, dec!(1200.00), sell_fees),
            trade("000001.SZ", "buy", 200, dec!(2000.00), buy_fees),
        ]);
        assert_eq!(report.lines.len(), 2);
        assert_eq!(
            report.lines[0].instrument, "000001.SZ",
            "lines are sorted by instrument"
        );
        let line = &report.lines[1];
        // 1000.00 - 1200.00 + (0.06 + 0.67 non-commission fees) = -199.27: the broker receives.
        assert_eq!(line.net_to_depository_cny, dec!(-199.27));
        assert_eq!((line.bought_quantity, line.sold_quantity), (100, 100));
        assert_eq!(report.total.trades, 3);
        assert_eq!(report.total.fees.commission_cny, dec!(15.00));
        // -199.27 + 2000.00 + 0.06 = 1800.79.
        assert_eq!(report.total.net_to_depository_cny, dec!(1800.79));
    }
}
