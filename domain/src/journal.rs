//! Double-entry postings of the account events (chart of accounts: docs/journal.md).
//!
//! Amounts are signed: debits positive, credits negative. The postings of
//! every event sum to zero, per currency (all CNY today), so the trial balance
//! of the whole journal is zero too.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::account::AccountEvent;
use crate::market::Side;

/// The client money held at the custody bank (third-party custody, 第三方存管).
pub const BANK_CUSTODY: &str = "assets:bank:custody";
/// What CSDC owes the broker (positive) or the broker owes CSDC (negative) for trades not yet settled.
pub const CSDC_CLEARING: &str = "assets:clearing:csdc";
pub const COMMISSION_INCOME: &str = "income:commission";
pub const STAMP_DUTY_PAYABLE: &str = "liabilities:tax:stamp_duty";
pub const TRANSFER_FEE_PAYABLE: &str = "liabilities:fees:transfer";
pub const HANDLING_FEE_PAYABLE: &str = "liabilities:fees:handling";
pub const REGULATORY_FEE_PAYABLE: &str = "liabilities:fees:regulatory";

/// The shares held at CSDC for the customers (a memorandum account: the shares are the
/// customers', kept in custody), at cost. Only exports carry it; see docs/journal.md.
pub const CSDC_CUSTODY: &str = "assets:custody:csdc";

/// The customer's cash (available + frozen), which the broker owes the customer.
pub fn customer_cash(account_id: &str) -> String {
    format!("liabilities:customers:{account_id}:cash")
}

/// The customer's shares, held for them in custody, at cost (the memorandum
/// counterpart of [`CSDC_CUSTODY`]).
pub fn customer_securities(account_id: &str) -> String {
    format!("liabilities:customers:{account_id}:securities")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: String,
    /// Debit positive, credit negative.
    pub amount_cny: Decimal,
}

/// The postings of one event of `account_id`; empty for events that move no money
/// (a freeze, an order, a cancel: those are within the customer's own cash).
pub fn postings(account_id: &str, event: &AccountEvent) -> Vec<Posting> {
    let post = |account: &str, amount_cny: Decimal| Posting {
        account: account.to_owned(),
        amount_cny,
    };
    let customer = customer_cash(account_id);
    let postings: Vec<Posting> = match event {
        AccountEvent::CashDeposited { amount_cny, .. } => {
            vec![post(BANK_CUSTODY, *amount_cny), post(&customer, -*amount_cny)]
        }
        AccountEvent::WithdrawalConfirmed { amount_cny, .. } => {
            vec![post(&customer, *amount_cny), post(BANK_CUSTODY, -*amount_cny)]
        }
        AccountEvent::FillBooked {
            side, value_cny, fees, ..
        } => {
            // The customer's account is a liability: the cash they gain is a credit.
            let customer_change = -fees.net_cash_cny(*side, *value_cny);
            let clearing = match side {
                Side::Buy => -*value_cny,
                Side::Sell => *value_cny,
            };
            let mut lines = vec![post(&customer, customer_change), post(CSDC_CLEARING, clearing)];
            for (account, fee) in [
                (COMMISSION_INCOME, fees.commission_cny),
                (STAMP_DUTY_PAYABLE, fees.stamp_duty_cny),
                (TRANSFER_FEE_PAYABLE, fees.transfer_fee_cny),
                (HANDLING_FEE_PAYABLE, fees.handling_fee_cny),
                (REGULATORY_FEE_PAYABLE, fees.regulatory_fee_cny),
            ] {
                if !fee.is_zero() {
                    lines.push(post(account, -fee));
                }
            }
            lines
        }
        _ => Vec::new(),
    };
    assert!(
        postings.iter().map(|p| p.amount_cny).sum::<Decimal>().is_zero(),
        "the postings of {event:?} must balance"
    );
    postings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fees::FeeBreakdown;
    use crate::ids::{BankRef, ExecId, InstrumentCode, OrderId};
    use chrono::NaiveDate;
    use rust_decimal_macros::dec;

    #[test]
    fn a_sell_credits_the_customer_with_value_less_fees() {
        // 1000 x 10.50 = 10500.00, fees 10.93 of which commission 5.00 and stamp duty 5.25.
        let event = AccountEvent::FillBooked {
            order_id: OrderId::parse("S1").unwrap(),
            exec_id: ExecId::parse("X1").unwrap(),
            instrument: InstrumentCode::parse("600000.SH").unwrap(),
            side: Side::Sell,
            trade_date: NaiveDate::from_ymd_opt(2024, 3, 5).unwrap(),
            quantity: 1000,
            price: dec!(10.50),
            value_cny: dec!(10500.00),
            fees: FeeBreakdown {
                commission_cny: dec!(5.00),
                stamp_duty_cny: dec!(5.25),
                transfer_fee_cny: dec!(0.11),
                handling_fee_cny: dec!(0.36),
                regulatory_fee_cny: dec!(0.21),
            },
            reserve_used_cny: dec!(0),
            available_change_cny: dec!(10489.07),
            unsettled_change_cny: dec!(10489.07),
        };
        let lines = postings("A1", &event);
        assert_eq!(
            lines[0],
            Posting {
                account: customer_cash("A1"),
                amount_cny: dec!(-10489.07)
            }
        );
        assert_eq!(
            lines[1],
            Posting {
                account: CSDC_CLEARING.into(),
                amount_cny: dec!(10500.00)
            }
        );
        assert_eq!(lines.len(), 7);
        assert_eq!(lines.iter().map(|l| l.amount_cny).sum::<Decimal>(), dec!(0));
    }

    #[test]
    fn deposits_and_withdrawals_move_custody_cash() {
        let deposit = AccountEvent::CashDeposited {
            amount_cny: dec!(100.00),
            bank_ref: BankRef::parse("B").unwrap(),
        };
        assert_eq!(
            postings("A1", &deposit)[0],
            Posting {
                account: BANK_CUSTODY.into(),
                amount_cny: dec!(100.00)
            }
        );
        let freeze = AccountEvent::AccountFrozen { reason: "x".into() };
        assert!(postings("A1", &freeze).is_empty());
    }
}
