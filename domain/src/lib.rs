//! The brokerage ledger's business rules: pure and deterministic.
//!
//! No I/O, no clock, no database: trade dates and reference data come in with
//! the commands, so replaying the same events always gives the same state.

pub mod account;
pub mod calendar;
pub mod clearing_day;
pub mod error;
pub mod fees;
pub mod ids;
pub mod instrument;
pub mod invariants;
pub mod journal;
pub mod market;
pub mod money;
pub mod order;
pub mod rules;
pub mod well_formed;

pub use account::{Account, AccountCommand, AccountEvent, AccountSnapshot, MarketSnapshot, PlaceOrder};
pub use calendar::{CalendarError, TradeDates, TradingCalendar};
pub use clearing_day::{ClearingDay, ClearingDayCommand, ClearingDayEvent, DayStatus};
pub use error::{RejectCode, Rejection};
pub use instrument::{Instrument, InstrumentCommand, InstrumentEvent, InstrumentInfo};
pub use market::{Board, OrderType, Side};
pub use rules::MarketRules;
