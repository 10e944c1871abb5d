//! One sample of every event variant, for the tests that hold the documents to the
//! code (tests/events_documented.rs: docs/events.md; tests/asyncapi_documented.rs:
//! docs/asyncapi.yaml). A new variant fails both until it has a sample here.

use ledger_domain::account::{AccountEvent, CashDirection};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::ids::InstrumentCode;
use ledger_domain::{Board, ClearingDayEvent, InstrumentEvent, InstrumentInfo, Side};
use rust_decimal_macros::dec;

use super::*;

pub fn account_samples() -> Vec<AccountEvent> {
    let order = || oid("O1");
    vec![
        opened(),
        deposited(dec!(100.00), "DEP-1"),
        withdrawal_requested(dec!(10.00), "W-1"),
        AccountEvent::WithdrawalConfirmed {
            amount_cny: dec!(10.00),
            bank_ref: bref("W-1"),
        },
        AccountEvent::WithdrawalFailed {
            amount_cny: dec!(10.00),
            bank_ref: bref("W-2"),
        },
        AccountEvent::LargeCashMovementFlagged {
            direction: CashDirection::Deposit,
            amount_cny: dec!(500000.00),
            threshold_cny: dec!(500000.00),
            bank_ref: bref("DEP-2"),
        },
        placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06)),
        AccountEvent::OrderRejected {
            order_id: order(),
            reason: "exchange says no".into(),
            released_cny: dec!(0),
            released_shares: 0,
        },
        buy_filled(
            "O1",
            "E1",
            100,
            dec!(10.00),
            dec!(1000.00),
            FeeBreakdown::default(),
            dec!(1000.00),
        ),
        completed("O1", dec!(0)),
        AccountEvent::CancelRequested { order_id: order() },
        AccountEvent::OrderCanceled {
            order_id: order(),
            released_cny: dec!(0),
            released_shares: 0,
        },
        AccountEvent::OrderExpired {
            order_id: order(),
            trade_date: today(),
            released_cny: dec!(0),
            released_shares: 0,
        },
        settled(today(), dec!(0)),
        frozen(),
        AccountEvent::AccountUnfrozen { reason: "done".into() },
    ]
}

pub fn instrument_samples() -> Vec<InstrumentEvent> {
    let info = InstrumentInfo {
        code: InstrumentCode::parse("600000.SH").unwrap(),
        name: "Pudong Bank".into(),
        board: Board::Main,
        risk_level: 2,
    };
    vec![
        InstrumentEvent::InstrumentListed(info.clone()),
        InstrumentEvent::InstrumentUpdated(info),
        InstrumentEvent::PrevCloseSet {
            trade_date: today(),
            price: dec!(10.00),
        },
    ]
}

pub fn clearing_day_samples() -> Vec<ClearingDayEvent> {
    let trade_date = today();
    vec![
        ClearingDayEvent::DayClosed { trade_date },
        ClearingDayEvent::DayCleared { trade_date },
        ClearingDayEvent::DaySettled { trade_date },
    ]
}
