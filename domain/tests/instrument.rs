//! The `Instrument` aggregate, given/when/then with cqrs-es's `TestFramework`:
//! listing, updating, previous closes and their refusals.

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use ledger_domain::ids::InstrumentCode;
use ledger_domain::{Board, Instrument, InstrumentCommand, InstrumentEvent, InstrumentInfo, MarketRules, RejectCode};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use strum::IntoEnumIterator;

fn instrument() -> TestFramework<Instrument> {
    TestFramework::with(MarketRules::china_a_share().unwrap())
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

fn info(board: Board, name: &str, risk_level: u8) -> InstrumentInfo {
    InstrumentInfo {
        code: InstrumentCode::parse("600519.SH").unwrap(),
        name: name.into(),
        board,
        risk_level,
    }
}

fn moutai() -> InstrumentInfo {
    info(Board::Main, "Kweichow Moutai", 3)
}

fn listed() -> Vec<InstrumentEvent> {
    vec![InstrumentEvent::InstrumentListed(moutai())]
}

fn list(info: InstrumentInfo) -> InstrumentCommand {
    InstrumentCommand::List(info)
}

fn set_prev_close(trade_date: NaiveDate, price: Decimal) -> InstrumentCommand {
    InstrumentCommand::SetPrevClose {
        trade_date,
        price,
        day_closed: false,
    }
}

fn prev_close_set(trade_date: NaiveDate, price: Decimal) -> InstrumentEvent {
    InstrumentEvent::PrevCloseSet { trade_date, price }
}

fn refused(given: Vec<InstrumentEvent>, command: InstrumentCommand, code: RejectCode) {
    match instrument().given(given).when(command).inspect_result() {
        Err(rejection) => assert_eq!(rejection.code, code, "refused for another reason: {rejection}"),
        Ok(events) => panic!("expected a refusal with {code}, got the events {events:?}"),
    }
}

fn state(events: Vec<InstrumentEvent>) -> Instrument {
    let mut instrument = Instrument::default();
    for event in events {
        instrument.apply(event);
    }
    instrument
}

// ---------------------------------------------------------------------------
// list_instrument
// ---------------------------------------------------------------------------

#[test]
fn a_new_instrument_is_listed() {
    instrument()
        .given_no_previous_events()
        .when(list(moutai()))
        .then_expect_events(vec![InstrumentEvent::InstrumentListed(moutai())]);
    assert_eq!(state(listed()).info(), Some(&moutai()));
}

#[test]
fn every_board_can_be_listed() {
    for board in Board::iter() {
        instrument()
            .given_no_previous_events()
            .when(list(info(board, "Some stock", 2)))
            .then_expect_events(vec![InstrumentEvent::InstrumentListed(info(board, "Some stock", 2))]);
    }
}

#[test]
fn listing_the_same_data_again_writes_nothing() {
    instrument()
        .given(listed())
        .when(list(moutai()))
        .then_expect_events(vec![]);
}

#[test]
fn listing_changed_data_is_an_update() {
    // Moved to the ST board and renamed.
    let st = info(Board::St, "*ST Moutai", 3);
    instrument()
        .given(listed())
        .when(list(st.clone()))
        .then_expect_events(vec![InstrumentEvent::InstrumentUpdated(st.clone())]);
    // A new risk level alone is a change too.
    let riskier = info(Board::Main, "Kweichow Moutai", 4);
    instrument()
        .given(listed())
        .when(list(riskier.clone()))
        .then_expect_events(vec![InstrumentEvent::InstrumentUpdated(riskier)]);
    // The update is the instrument's data from then on.
    let after = vec![
        InstrumentEvent::InstrumentListed(moutai()),
        InstrumentEvent::InstrumentUpdated(st.clone()),
    ];
    assert_eq!(state(after.clone()).info(), Some(&st));
    instrument().given(after).when(list(st)).then_expect_events(vec![]);
}

#[test]
fn a_risk_level_is_1_to_5() {
    refused(vec![], list(info(Board::Main, "X", 0)), RejectCode::Malformed);
    refused(vec![], list(info(Board::Main, "X", 6)), RejectCode::Malformed);
    refused(
        listed(),
        list(info(Board::Main, "Kweichow Moutai", 6)),
        RejectCode::Malformed,
    );
    for risk_level in [1, 5] {
        instrument()
            .given_no_previous_events()
            .when(list(info(Board::Main, "X", risk_level)))
            .then_expect_events(vec![InstrumentEvent::InstrumentListed(info(
                Board::Main,
                "X",
                risk_level,
            ))]);
    }
}

#[test]
fn a_name_must_not_be_empty() {
    refused(vec![], list(info(Board::Main, "", 3)), RejectCode::Malformed);
    refused(vec![], list(info(Board::Main, "   ", 3)), RejectCode::Malformed);
    refused(listed(), list(info(Board::Main, "", 3)), RejectCode::Malformed);
}

// ---------------------------------------------------------------------------
// set_prev_close
// ---------------------------------------------------------------------------

#[test]
fn a_previous_close_is_set_per_trade_date() {
    instrument()
        .given(listed())
        .when(set_prev_close(day(4), dec!(1688.00)))
        .then_expect_events(vec![prev_close_set(day(4), dec!(1688.00))]);
    // Another date is its own previous close.
    instrument()
        .given(vec![
            InstrumentEvent::InstrumentListed(moutai()),
            prev_close_set(day(4), dec!(1688.00)),
        ])
        .when(set_prev_close(day(5), dec!(1701.50)))
        .then_expect_events(vec![prev_close_set(day(5), dec!(1701.50))]);
    let after = state(vec![
        InstrumentEvent::InstrumentListed(moutai()),
        prev_close_set(day(4), dec!(1688.00)),
        prev_close_set(day(5), dec!(1701.50)),
    ]);
    assert_eq!(after.prev_close(day(4)), Some(dec!(1688.00)));
    assert_eq!(after.prev_close(day(5)), Some(dec!(1701.50)));
    assert_eq!(after.prev_close(day(6)), None);
    // The close of the 4th is the previous close of the 5th.
    assert_eq!(after.close_of(day(4)), Some(dec!(1701.50)));
    assert_eq!(after.close_of(day(5)), None);
}

#[test]
fn the_same_previous_close_again_writes_nothing_and_a_correction_is_recorded() {
    let given = vec![
        InstrumentEvent::InstrumentListed(moutai()),
        prev_close_set(day(4), dec!(1688.00)),
    ];
    instrument()
        .given(given.clone())
        .when(set_prev_close(day(4), dec!(1688.00)))
        .then_expect_events(vec![]);
    // The same price written with another scale is the same price.
    instrument()
        .given(given.clone())
        .when(set_prev_close(day(4), dec!(1688.0)))
        .then_expect_events(vec![]);
    instrument()
        .given(given.clone())
        .when(set_prev_close(day(4), dec!(1688.01)))
        .then_expect_events(vec![prev_close_set(day(4), dec!(1688.01))]);
    let corrected = state(vec![
        InstrumentEvent::InstrumentListed(moutai()),
        prev_close_set(day(4), dec!(1688.00)),
        prev_close_set(day(4), dec!(1688.01)),
    ]);
    assert_eq!(corrected.prev_close(day(4)), Some(dec!(1688.01)));
}

#[test]
fn a_previous_close_of_an_unlisted_instrument_is_refused() {
    refused(
        vec![],
        set_prev_close(day(4), dec!(10.00)),
        RejectCode::UnknownInstrument,
    );
}

#[test]
fn a_previous_close_must_be_positive_and_at_most_the_max_price() {
    refused(listed(), set_prev_close(day(4), dec!(0)), RejectCode::Malformed);
    refused(listed(), set_prev_close(day(4), dec!(-1.00)), RejectCode::Malformed);
    // max_price is 1000000.00.
    refused(
        listed(),
        set_prev_close(day(4), dec!(1000000.01)),
        RejectCode::Malformed,
    );
    instrument()
        .given(listed())
        .when(set_prev_close(day(4), dec!(1000000.00)))
        .then_expect_events(vec![prev_close_set(day(4), dec!(1000000.00))]);
    instrument()
        .given(listed())
        .when(set_prev_close(day(4), dec!(0.01)))
        .then_expect_events(vec![prev_close_set(day(4), dec!(0.01))]);
}

#[test]
fn a_previous_close_keeps_to_the_tick() {
    refused(listed(), set_prev_close(day(4), dec!(10.005)), RejectCode::PriceTick);
    refused(listed(), set_prev_close(day(4), dec!(0.001)), RejectCode::PriceTick);
}

#[test]
fn a_previous_close_for_a_closed_day_is_refused() {
    let closed = InstrumentCommand::SetPrevClose {
        trade_date: day(4),
        price: dec!(10.00),
        day_closed: true,
    };
    refused(listed(), closed, RejectCode::DayClosed);
}
