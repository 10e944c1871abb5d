//! How far the ledger has got: the last business date its log names, which a
//! statement's period is clamped to. Kept in this one function so that, once every
//! event carries its business date, it becomes the last event's date and nothing else changes.

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use ledger_domain::account::{Account, AccountEvent};
use ledger_domain::{ClearingDay, ClearingDayEvent, Instrument, InstrumentEvent};
use ledger_eventstore::codec::decode;
use ledger_eventstore::{read_towards, EventStore, RecordedEvent, MAX_READ_EVENTS};

use crate::ProjectionError;

/// The latest trade date the log names: a closed day, or the trade date of any order,
/// fill or previous close. None for a log that names no trade date yet.
pub async fn ledger_reached_date(store: &dyn EventStore) -> Result<Option<NaiveDate>, ProjectionError> {
    let head = store.head_position().await?;
    let mut reached = None;
    let mut after = 0;
    loop {
        // Towards the head seen now: an event held back by an older open transaction is waited for, not skipped.
        let page = read_towards(store, after, head, MAX_READ_EVENTS).await?;
        let Some(last) = page.last().filter(|_| after < head) else {
            return Ok(reached);
        };
        after = last.global_position;
        for recorded in &page {
            reached = reached.max(trade_date_named(recorded)?);
        }
    }
}

fn trade_date_named(recorded: &RecordedEvent) -> Result<Option<NaiveDate>, ProjectionError> {
    let aggregate_type = recorded.stream.aggregate_type.as_str();
    Ok(if aggregate_type == Account::TYPE {
        match decode(recorded)? {
            AccountEvent::OrderPlaced { trade_date, .. } | AccountEvent::FillBooked { trade_date, .. } => {
                Some(trade_date)
            }
            _ => None,
        }
    } else if aggregate_type == Instrument::TYPE {
        match decode(recorded)? {
            InstrumentEvent::PrevCloseSet { trade_date, .. } => Some(trade_date),
            _ => None,
        }
    } else if aggregate_type == ClearingDay::TYPE {
        match decode(recorded)? {
            ClearingDayEvent::DayClosed { trade_date } => Some(trade_date),
            _ => None,
        }
    } else {
        None
    })
}
