//! The trading calendar: which dates the exchanges are open, as data.
//!
//! A calendar is the `[calendar]` section of a market's rules file: the years
//! it covers and the weekdays on which the exchanges are closed for a holiday.
//! Saturdays and Sundays are always closed. A date outside the covered years
//! is not guessed at: asking about it is an error, so that a ledger running
//! into a year whose holidays nobody entered stops and says so instead of
//! trading on a holiday.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};

use crate::error::{RejectCode, Rejection};
use crate::instrument::Instrument;
use serde::{Deserialize, Serialize};

/// Most days [`TradingCalendar::next_trading_day_after`] looks ahead: the
/// longest closure of the exchanges (Spring Festival) is nine days.
const MAX_DAYS_CLOSED_IN_A_ROW: u32 = 31;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "the trading calendar covers {first_year} to {last_year}, not {date}: add that year's holidays to the \
         calendar of the market rules, or close the day off the calendar"
    )]
    NotCovered {
        date: NaiveDate,
        first_year: i32,
        last_year: i32,
    },
    #[error("the trading calendar is inconsistent: {0}")]
    Invalid(String),
}

/// Open and closed days of one market's exchanges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradingCalendar {
    /// First and last year whose holidays are listed.
    pub first_year: i32,
    pub last_year: i32,
    /// Weekdays on which the exchanges are closed, in `YYYY-MM-DD`.
    pub holidays: BTreeSet<NaiveDate>,
}

impl TradingCalendar {
    pub fn validate(&self) -> Result<(), CalendarError> {
        if self.first_year > self.last_year {
            return Err(CalendarError::Invalid(format!(
                "first_year {} is after last_year {}",
                self.first_year, self.last_year
            )));
        }
        for holiday in &self.holidays {
            if !(self.first_year..=self.last_year).contains(&holiday.year()) {
                return Err(CalendarError::Invalid(format!(
                    "holiday {holiday} is outside the years {}..={}",
                    self.first_year, self.last_year
                )));
            }
            if is_weekend(*holiday) {
                return Err(CalendarError::Invalid(format!(
                    "holiday {holiday} is a Saturday or a Sunday: weekends are closed anyway, list only weekdays"
                )));
            }
        }
        Ok(())
    }

    /// Whether the exchanges are open on `date`.
    pub fn is_trading_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        if !(self.first_year..=self.last_year).contains(&date.year()) {
            return Err(CalendarError::NotCovered {
                date,
                first_year: self.first_year,
                last_year: self.last_year,
            });
        }
        Ok(!is_weekend(date) && !self.holidays.contains(&date))
    }

    /// The first trading day after `date`.
    pub fn next_trading_day_after(&self, date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let mut day = date;
        for _ in 0..MAX_DAYS_CLOSED_IN_A_ROW {
            day = day
                .succ_opt()
                .ok_or_else(|| CalendarError::Invalid(format!("no day follows {date}")))?;
            if self.is_trading_day(day)? {
                return Ok(day);
            }
        }
        Err(CalendarError::Invalid(format!(
            "no trading day in the {MAX_DAYS_CLOSED_IN_A_ROW} days after {date}"
        )))
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

// ---------------------------------------------------------------------------
// The ledger's open trade date, and what may happen on which date
// ---------------------------------------------------------------------------
//
// The rule (docs/events.md, "Business dates"): a command that names a trade
// date (an order, a previous close, an end of day, a settlement) belongs to
// it; every other command belongs to the open trade date. That is the next
// trading day of the calendar after the last closed day, or, before the first
// end of day, the earliest trade date with a previous close. Before the
// ledger names any trade date, a command has no business date; readers then
// date it by the rule for events without one. The wall clock plays no part.

/// What decides the open trade date: the log's closed days and previous closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradeDates {
    /// The latest trade date whose end of day has run.
    pub last_closed: Option<NaiveDate>,
    /// The earliest trade date any instrument has a previous close for.
    pub earliest_priced: Option<NaiveDate>,
}

impl TradeDates {
    /// The trade date now open, if the ledger names any.
    pub fn open_trade_date(&self, calendar: &TradingCalendar) -> Option<NaiveDate> {
        match self.last_closed {
            Some(closed) => Some(next_trading_day_after(calendar, closed)),
            None => self.earliest_priced,
        }
    }

    pub fn record_close(&mut self, trade_date: NaiveDate) {
        self.last_closed = self.last_closed.max(Some(trade_date));
    }

    pub fn record_prev_close(&mut self, trade_date: NaiveDate) {
        self.earliest_priced = Some(self.earliest_priced.map_or(trade_date, |d| d.min(trade_date)));
    }

    pub fn record_instrument(&mut self, instrument: &Instrument) {
        if let Some(first) = instrument.first_priced_date() {
            self.record_prev_close(first);
        }
    }
}

/// The next trading day after `date`; past the calendar's last year, the next
/// weekday (end of day refuses such a date until its year's holidays are added).
fn next_trading_day_after(calendar: &TradingCalendar, date: NaiveDate) -> NaiveDate {
    calendar
        .next_trading_day_after(date)
        .unwrap_or_else(|_| next_weekday_after(date))
}

fn next_weekday_after(date: NaiveDate) -> NaiveDate {
    let mut day = date;
    // A date this late is refused by the wire long before; stay on it rather than panic.
    while let Some(next) = day.succ_opt() {
        day = next;
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            break;
        }
    }
    day
}

/// Whether `end_of_day` may close `trade_date`: it must be a trading day of the
/// calendar and the open trade date (any trading day before the ledger names one).
pub fn check_close_date(
    trade_date: NaiveDate,
    open: Option<NaiveDate>,
    calendar: &TradingCalendar,
) -> Result<(), Rejection> {
    let refuse = |message: String| {
        Err(Rejection {
            code: RejectCode::NotOpenTradeDate,
            message,
        })
    };
    match calendar.is_trading_day(trade_date) {
        Err(not_covered) => return refuse(not_covered.to_string()),
        Ok(false) => {
            return refuse(format!(
                "{trade_date} is not a trading day in the calendar (a weekend or an exchange holiday); \
                 set off_calendar to close it anyway"
            ))
        }
        Ok(true) => {}
    }
    match open {
        Some(open) if open != trade_date => refuse(format!(
            "the open trade date is {open}, not {trade_date}: end of day closes the open trade date, \
             the next trading day after the last one closed; set off_calendar to close another date"
        )),
        _ => Ok(()),
    }
}

/// Whether orders may be placed for `trade_date`: not before the open trade
/// date, and not on a day the calendar closes (a year it does not cover is
/// left to end of day to refuse).
pub fn is_open_for_orders(trade_date: NaiveDate, open: Option<NaiveDate>, calendar: &TradingCalendar) -> bool {
    let over = open.is_some_and(|open| trade_date < open);
    !over && calendar.is_trading_day(trade_date) != Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::MarketRules;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn calendar() -> TradingCalendar {
        MarketRules::china_a_share().unwrap().calendar
    }

    #[test]
    fn weekends_and_holidays_are_closed() {
        let calendar = calendar();
        assert!(calendar.is_trading_day(date("2024-03-04")).unwrap());
        assert!(!calendar.is_trading_day(date("2024-03-09")).unwrap(), "a Saturday");
        assert!(!calendar.is_trading_day(date("2024-10-01")).unwrap(), "National Day");
        assert!(!calendar.is_trading_day(date("2025-01-29")).unwrap(), "Spring Festival");
    }

    #[test]
    fn the_next_trading_day_skips_weekends_and_holidays() {
        let calendar = calendar();
        assert_eq!(
            calendar.next_trading_day_after(date("2024-03-04")).unwrap(),
            date("2024-03-05")
        );
        assert_eq!(
            calendar.next_trading_day_after(date("2024-03-08")).unwrap(),
            date("2024-03-11")
        );
        // Spring Festival 2024: closed from Friday 9 February to Friday 16 February.
        assert_eq!(
            calendar.next_trading_day_after(date("2024-02-08")).unwrap(),
            date("2024-02-19")
        );
        // National Day 2024: closed 1 to 7 October.
        assert_eq!(
            calendar.next_trading_day_after(date("2024-09-30")).unwrap(),
            date("2024-10-08")
        );
    }

    #[test]
    fn a_year_without_holidays_is_an_error_not_a_guess() {
        let calendar = calendar();
        let error = calendar.is_trading_day(date("2042-03-04")).unwrap_err();
        assert!(matches!(error, CalendarError::NotCovered { .. }));
        assert!(error.to_string().contains("2042-03-04"), "{error}");
        let last_day = NaiveDate::from_ymd_opt(calendar.last_year, 12, 31).unwrap();
        assert!(calendar.next_trading_day_after(last_day).is_err());
    }

    #[test]
    fn holidays_on_weekends_or_outside_the_years_are_refused() {
        let mut calendar = calendar();
        calendar.holidays.insert(date("2024-03-09"));
        assert!(calendar.validate().unwrap_err().to_string().contains("2024-03-09"));
        let mut calendar = self::calendar();
        calendar.holidays.insert(date("2031-03-04"));
        assert!(calendar.validate().is_err());
    }

    #[test]
    fn the_open_date_follows_the_last_close_in_the_calendar() {
        let calendar = calendar();
        let mut dates = TradeDates::default();
        assert_eq!(dates.open_trade_date(&calendar), None);
        dates.record_prev_close(date("2024-03-05"));
        dates.record_prev_close(date("2024-03-04"));
        assert_eq!(dates.open_trade_date(&calendar), Some(date("2024-03-04")));
        dates.record_close(date("2024-03-08"));
        assert_eq!(
            dates.open_trade_date(&calendar),
            Some(date("2024-03-11")),
            "over the weekend"
        );
        dates.record_close(date("2024-03-04"));
        assert_eq!(
            dates.last_closed,
            Some(date("2024-03-08")),
            "a late close never moves it back"
        );
    }

    #[test]
    fn past_the_calendar_the_next_weekday_is_open() {
        let calendar = calendar();
        let last = NaiveDate::from_ymd_opt(calendar.last_year, 12, 31).unwrap();
        let dates = TradeDates {
            last_closed: Some(last),
            earliest_priced: None,
        };
        let open = dates.open_trade_date(&calendar).unwrap();
        assert!(open > last && !matches!(open.weekday(), Weekday::Sat | Weekday::Sun));
        assert_eq!(
            check_close_date(open, Some(open), &calendar).unwrap_err().code,
            RejectCode::NotOpenTradeDate
        );
    }

    #[test]
    fn end_of_day_closes_only_the_open_trading_day() {
        let calendar = calendar();
        let open = Some(date("2024-03-05"));
        assert!(check_close_date(date("2024-03-05"), open, &calendar).is_ok());
        for wrong in ["2024-03-06", "2042-03-05", "2024-03-09", "2024-10-01"] {
            let refusal = check_close_date(date(wrong), open, &calendar).unwrap_err();
            assert_eq!(refusal.code, RejectCode::NotOpenTradeDate, "{wrong}");
            assert!(refusal.message.contains(wrong), "{refusal}");
        }
        assert!(
            check_close_date(date("2024-03-06"), None, &calendar).is_ok(),
            "nothing named yet"
        );
    }

    #[test]
    fn orders_for_a_day_over_or_closed_by_the_calendar_are_refused() {
        let calendar = calendar();
        let open = Some(date("2024-03-05"));
        assert!(is_open_for_orders(date("2024-03-05"), open, &calendar));
        assert!(
            is_open_for_orders(date("2024-03-06"), open, &calendar),
            "an order ahead"
        );
        assert!(!is_open_for_orders(date("2024-03-04"), open, &calendar), "over");
        assert!(!is_open_for_orders(date("2024-03-09"), None, &calendar), "a Saturday");
    }
}
