//! The business date of any event of the log, by one rule for every reader
//! (statements, reconciliation, exports): docs/events.md, "Business dates".
//!
//! An event stored with a business date has it. An event stored without one
//! (a log written before business dates were stored, or a command decided
//! before the ledger named any trade date) is dated by the rule the ledger
//! then followed: its payload's own `trade_date` if it has one; otherwise the
//! trade date that was open when it was written, which is the first day
//! closed after it in the log or, after the last close, the ledger's open
//! trade date. The wall clock plays no part.

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use ledger_domain::{ClearingDay, ClearingDayEvent, Instrument, TradeDates, TradingCalendar};
use ledger_eventstore::codec::decode;
use ledger_eventstore::versions::upcast;
use ledger_eventstore::{read_towards, EventStore, RecordedEvent, StreamId};

use crate::ProjectionError;

/// What dates the events of one log: where each closed day ends, and the open date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessDates {
    /// (position of the `DayClosed` event, its trade date), by position.
    day_ends: Vec<(u64, NaiveDate)>,
    /// The trade date open after the last close (or before any close).
    open: Option<NaiveDate>,
}

impl BusinessDates {
    /// Reads the clearing days of the log (and, before any close, the instruments'
    /// previous closes) once; then [`Self::date_of`] dates any event of it.
    pub async fn of_log(store: &dyn EventStore, calendar: &TradingCalendar) -> Result<Self, ProjectionError> {
        let mut day_ends = Vec::new();
        for id in store.stream_ids(ClearingDay::TYPE).await? {
            for recorded in store.load_stream(&StreamId::new(ClearingDay::TYPE, id)).await? {
                if let ClearingDayEvent::DayClosed { trade_date } = decode(&recorded)? {
                    day_ends.push((recorded.global_position, trade_date));
                }
            }
        }
        day_ends.sort();
        let mut dates = TradeDates::default();
        for (_, trade_date) in &day_ends {
            dates.record_close(*trade_date);
        }
        if day_ends.is_empty() {
            for code in store.stream_ids(Instrument::TYPE).await? {
                let mut instrument = Instrument::default();
                for recorded in store.load_stream(&StreamId::new(Instrument::TYPE, code)).await? {
                    instrument.apply(decode(&recorded)?);
                }
                dates.record_instrument(&instrument);
            }
        }
        Ok(Self {
            day_ends,
            open: dates.open_trade_date(calendar),
        })
    }

    /// The business date of an event of this log; `None` only while the ledger
    /// names no trade date at all.
    pub fn date_of(&self, recorded: &RecordedEvent) -> Option<NaiveDate> {
        if let Some(date) = recorded.metadata.business_date {
            return Some(date);
        }
        if let Some(date) = payload_trade_date(recorded) {
            return Some(date);
        }
        let ends_after = self
            .day_ends
            .partition_point(|(position, _)| *position <= recorded.global_position);
        match self.day_ends.get(ends_after) {
            Some((_, closed)) => Some(*closed),
            None => self.open,
        }
    }

    /// The trade date open now.
    pub fn open_trade_date(&self) -> Option<NaiveDate> {
        self.open
    }

    /// The last business date the ledger has reached: the date of the last event
    /// of the log (a statement's period is clamped to it). `None` for a log that
    /// names no trade date yet.
    pub async fn latest(&self, store: &dyn EventStore) -> Result<Option<NaiveDate>, ProjectionError> {
        let head = store.head_position().await?;
        if head == 0 {
            return Ok(None);
        }
        // Towards the head seen now: an event held back by an older open transaction is waited for.
        let last = read_towards(store, head - 1, head, 1).await?;
        Ok(last.last().and_then(|event| self.date_of(event)))
    }
}

/// The `trade_date` an event's payload names (orders, fills, expiries, settlements, days),
/// read from the current version of its type (an older payload upcast on a copy, as
/// `decode` reads it), so the field is read by today's name whatever version stored it.
/// An event that does not upcast names none here; every reader that decodes it refuses it.
fn payload_trade_date(recorded: &RecordedEvent) -> Option<NaiveDate> {
    let payload = upcast(&recorded.event_type, recorded.event_version, recorded.payload.clone()).ok()?;
    payload.get("trade_date")?.as_str()?.parse().ok()
}
