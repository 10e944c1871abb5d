//! The `ClearingDay` aggregate, given/when/then with cqrs-es's `TestFramework`:
//! one per trade date, Trading -> Closed -> Cleared -> Settled, and `day_closed`
//! for every step asked in the wrong state.

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use ledger_domain::{ClearingDay, ClearingDayCommand, ClearingDayEvent, DayStatus, MarketRules, RejectCode};

fn clearing_day() -> TestFramework<ClearingDay> {
    TestFramework::with(MarketRules::china_a_share().unwrap())
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 4).unwrap()
}

fn close() -> ClearingDayCommand {
    ClearingDayCommand::Close { trade_date: date() }
}

fn clear() -> ClearingDayCommand {
    ClearingDayCommand::Clear { trade_date: date() }
}

fn settle() -> ClearingDayCommand {
    ClearingDayCommand::Settle { trade_date: date() }
}

fn closed() -> ClearingDayEvent {
    ClearingDayEvent::DayClosed { trade_date: date() }
}

fn cleared() -> ClearingDayEvent {
    ClearingDayEvent::DayCleared { trade_date: date() }
}

fn settled() -> ClearingDayEvent {
    ClearingDayEvent::DaySettled { trade_date: date() }
}

/// The history of a day that has reached `status`.
fn history(status: DayStatus) -> Vec<ClearingDayEvent> {
    match status {
        DayStatus::Trading => vec![],
        DayStatus::Closed => vec![closed()],
        DayStatus::Cleared => vec![closed(), cleared()],
        DayStatus::Settled => vec![closed(), cleared(), settled()],
    }
}

fn state(events: Vec<ClearingDayEvent>) -> ClearingDay {
    let mut day = ClearingDay::default();
    for event in events {
        day.apply(event);
    }
    day
}

fn refused(status: DayStatus, command: ClearingDayCommand) {
    match clearing_day()
        .given(history(status))
        .when(command.clone())
        .inspect_result()
    {
        Err(rejection) => assert_eq!(
            rejection.code,
            RejectCode::DayClosed,
            "{command:?} while {status:?}: {rejection}"
        ),
        Ok(events) => panic!("{command:?} while {status:?} should be refused, got {events:?}"),
    }
}

#[test]
fn a_new_day_is_trading() {
    let day = state(vec![]);
    assert_eq!(day.status(), DayStatus::Trading);
    assert!(!day.is_closed());
}

#[test]
fn a_trading_day_closes() {
    clearing_day()
        .given_no_previous_events()
        .when(close())
        .then_expect_events(vec![closed()]);
    let day = state(history(DayStatus::Closed));
    assert_eq!(day.status(), DayStatus::Closed);
    assert!(day.is_closed());
}

#[test]
fn a_closed_day_is_cleared() {
    clearing_day()
        .given(history(DayStatus::Closed))
        .when(clear())
        .then_expect_events(vec![cleared()]);
    let day = state(history(DayStatus::Cleared));
    assert_eq!(day.status(), DayStatus::Cleared);
    assert!(day.is_closed());
}

#[test]
fn a_cleared_day_is_settled() {
    clearing_day()
        .given(history(DayStatus::Cleared))
        .when(settle())
        .then_expect_events(vec![settled()]);
    let day = state(history(DayStatus::Settled));
    assert_eq!(day.status(), DayStatus::Settled);
    assert!(day.is_closed());
}

#[test]
fn a_day_closes_once() {
    refused(DayStatus::Closed, close());
    refused(DayStatus::Cleared, close());
    refused(DayStatus::Settled, close());
}

#[test]
fn only_a_closed_day_is_cleared() {
    refused(DayStatus::Trading, clear());
    refused(DayStatus::Cleared, clear());
    refused(DayStatus::Settled, clear());
}

#[test]
fn only_a_cleared_day_is_settled() {
    // Settling before end of day is refused ...
    refused(DayStatus::Trading, settle());
    refused(DayStatus::Closed, settle());
    // ... and so is settling twice.
    refused(DayStatus::Settled, settle());
}
