//! The Instrument and ClearingDay aggregates, given/when/then.

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;
use ledger_domain::ids::InstrumentCode;
use ledger_domain::{
    Board, ClearingDay, ClearingDayCommand, ClearingDayEvent, Instrument, InstrumentCommand, InstrumentEvent,
    InstrumentInfo, MarketRules, RejectCode,
};
use rust_decimal_macros::dec;

fn info(board: Board, name: &str) -> InstrumentInfo {
    InstrumentInfo {
        code: InstrumentCode::parse("600654.SH").unwrap(),
        name: name.into(),
        board,
        risk_level: 4,
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

fn instruments() -> TestFramework<Instrument> {
    TestFramework::with(MarketRules::china_a_share().unwrap())
}

fn days() -> TestFramework<ClearingDay> {
    TestFramework::with(MarketRules::china_a_share().unwrap())
}

#[test]
fn listing_then_a_move_to_the_st_board_is_an_update() {
    let listed = InstrumentEvent::InstrumentListed(info(Board::Main, "Zhongan"));
    instruments()
        .given_no_previous_events()
        .when(InstrumentCommand::List(info(Board::Main, "Zhongan")))
        .then_expect_events(vec![listed.clone()]);
    instruments()
        .given(vec![listed.clone()])
        .when(InstrumentCommand::List(info(Board::St, "*ST Zhongan")))
        .then_expect_events(vec![InstrumentEvent::InstrumentUpdated(info(Board::St, "*ST Zhongan"))]);
    // The same data again writes nothing.
    instruments()
        .given(vec![listed])
        .when(InstrumentCommand::List(info(Board::Main, "Zhongan")))
        .then_expect_events(vec![]);
}

#[test]
fn a_listing_needs_a_risk_level_and_a_name() {
    let mut bad = info(Board::Main, "X");
    bad.risk_level = 6;
    let result = instruments()
        .given_no_previous_events()
        .when(InstrumentCommand::List(bad))
        .inspect_result();
    assert_eq!(result.unwrap_err().code, RejectCode::Malformed);
    let result = instruments()
        .given_no_previous_events()
        .when(InstrumentCommand::List(info(Board::Main, "  ")))
        .inspect_result();
    assert_eq!(result.unwrap_err().code, RejectCode::Malformed);
}

#[test]
fn previous_closes_are_set_per_trade_date() {
    let listed = InstrumentEvent::InstrumentListed(info(Board::Main, "Zhongan"));
    let set = |price, day_closed| InstrumentCommand::SetPrevClose {
        trade_date: day(4),
        price,
        day_closed,
    };
    instruments()
        .given(vec![listed.clone()])
        .when(set(dec!(2.47), false))
        .then_expect_events(vec![InstrumentEvent::PrevCloseSet {
            trade_date: day(4),
            price: dec!(2.47),
        }]);
    let refused = |given: Vec<InstrumentEvent>, command| {
        instruments()
            .given(given)
            .when(command)
            .inspect_result()
            .unwrap_err()
            .code
    };
    assert_eq!(refused(vec![], set(dec!(2.47), false)), RejectCode::UnknownInstrument);
    assert_eq!(
        refused(vec![listed.clone()], set(dec!(2.475), false)),
        RejectCode::PriceTick
    );
    assert_eq!(
        refused(vec![listed.clone()], set(dec!(0), false)),
        RejectCode::Malformed
    );
    assert_eq!(refused(vec![listed], set(dec!(2.47), true)), RejectCode::DayClosed);
}

#[test]
fn a_clearing_day_closes_then_settles_once() {
    let close = ClearingDayCommand::Close { trade_date: day(4) };
    let settle = ClearingDayCommand::Settle { trade_date: day(4) };
    let closed = ClearingDayEvent::DayClosed { trade_date: day(4) };
    let settled = ClearingDayEvent::DaySettled { trade_date: day(4) };
    days()
        .given_no_previous_events()
        .when(close.clone())
        .then_expect_events(vec![closed.clone()]);
    days()
        .given(vec![closed.clone()])
        .when(settle.clone())
        .then_expect_events(vec![settled.clone()]);
    let refused =
        |given: Vec<ClearingDayEvent>, command| days().given(given).when(command).inspect_result().unwrap_err();
    // Settling a day still trading, closing twice, settling twice: all day_closed, each with its reason.
    let early = refused(vec![], settle.clone());
    assert_eq!(early.code, RejectCode::DayClosed);
    assert!(
        early.message.contains("run end_of_day before settle"),
        "{}",
        early.message
    );
    assert_eq!(refused(vec![closed.clone()], close.clone()).code, RejectCode::DayClosed);
    assert!(refused(vec![closed.clone(), settled.clone()], settle)
        .message
        .contains("already settled"));
    assert_eq!(refused(vec![closed, settled], close).code, RejectCode::DayClosed);
}
