//! One follower's place in the log: it examines the events after the last one it
//! examined, in order and with no gap, hands on those its filter matches, and waits at
//! the head for more. The same feed serves `ledger events --follow` and each SSE
//! consumer of a server; the NATS relay reads the same way.

use std::sync::Arc;
use std::time::Duration;

use ledger_eventstore::{EventStore, RecordedEvent, StoreError, MAX_READ_EVENTS};

use super::filter::EventFilter;
use super::head::LogHead;
use crate::AppError;

/// First and longest pause before reading again when the head is past the follower but
/// nothing reads yet (PostgreSQL holds events back while any older transaction of the
/// server is still open): doubling between, so a long transaction elsewhere does not
/// make every follower query the database hundreds of times a second.
pub const HELD_BACK_FIRST_RETRY_MS: u64 = 5;
pub const HELD_BACK_MAX_RETRY_MS: u64 = 250;

/// What one step of a feed examined.
#[derive(Debug, Default)]
pub struct Examined {
    /// The events examined that the filter matches, in log order.
    pub events: Vec<RecordedEvent>,
    /// The position of the last event examined, matched or not: where to resume after.
    pub through: u64,
}

/// A follower's place and what it wants.
pub struct Feed {
    store: Arc<dyn EventStore>,
    head: LogHead,
    filter: EventFilter,
    examined_through: u64,
    /// The pause before the next read while events are held back.
    held_back_ms: u64,
}

impl Feed {
    /// A feed whose first event examined is at position `from` (0 and 1 both mean the first event).
    pub fn starting_at(store: Arc<dyn EventStore>, head: LogHead, filter: EventFilter, from: u64) -> Self {
        Self {
            store,
            head,
            filter,
            examined_through: from.saturating_sub(1),
            held_back_ms: HELD_BACK_FIRST_RETRY_MS,
        }
    }

    /// The position of the last event examined (0: none yet).
    pub fn examined_through(&self) -> u64 {
        self.examined_through
    }

    /// The head of the log as last seen.
    pub fn head(&self) -> u64 {
        self.head.position()
    }

    /// Examines up to `max_events` events after the last one examined. At the head it
    /// waits for new ones, at most `max_wait`, and examines nothing if none came.
    pub async fn next(&mut self, max_events: usize, max_wait: Duration) -> Result<Examined, AppError> {
        assert!(max_events > 0, "a feed step examines at least one event");
        let after = self.examined_through;
        if self.head.position() <= after && self.head.wait_past(after, max_wait).await <= after {
            return Ok(Examined {
                events: Vec::new(),
                through: after,
            });
        }
        let read = self.store.read_after(after, max_events.min(MAX_READ_EVENTS)).await?;
        let Some(last) = read.last() else {
            tokio::time::sleep(Duration::from_millis(self.held_back_ms)).await;
            self.held_back_ms = (self.held_back_ms * 2).min(HELD_BACK_MAX_RETRY_MS);
            return Ok(Examined {
                events: Vec::new(),
                through: after,
            });
        };
        self.held_back_ms = HELD_BACK_FIRST_RETRY_MS;
        check_contiguous(after, &read)?;
        self.examined_through = last.global_position;
        Ok(Examined {
            through: self.examined_through,
            events: read.into_iter().filter(|event| self.filter.matches(event)).collect(),
        })
    }
}

/// The store reads with no gap; a follower that skipped an event would deliver a lie,
/// so a gap stops it instead (`verify` names what is missing).
fn check_contiguous(after: u64, read: &[RecordedEvent]) -> Result<(), AppError> {
    for (expected, event) in (after + 1..).zip(read) {
        if event.global_position != expected {
            return Err(StoreError::Corrupt(format!(
                "the log read after position {after} jumps from {} to {}: run `ledger verify`",
                expected - 1,
                event.global_position
            ))
            .into());
        }
    }
    Ok(())
}
