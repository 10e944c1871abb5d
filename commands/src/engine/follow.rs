//! Following the log: before each batch the engine reads what other writers
//! appended since it last looked and brings its cached aggregates up to it, so
//! that a batch is decided on current state whoever else writes (another
//! `ledger exec`, the server), instead of conflicting on stale state.

use std::sync::Arc;

use cqrs_es::Aggregate;
use ledger_domain::{Account, ClearingDay, Instrument};
use ledger_eventstore::{RecordedEvent, MAX_READ_EVENTS};

use super::{EngineError, Ledger};

/// Most events of other writers followed before one batch; past this the cache is
/// dropped instead (loading the few aggregates a batch needs is then cheaper).
pub const MAX_FOLLOWED_EVENTS: usize = 10 * MAX_READ_EVENTS;

impl Ledger {
    /// Applies to the cached aggregates every event after the log position they are
    /// known to reflect. With `exact` (the append lock held, so nobody can append), it
    /// reaches the head or drops the cache: a PostgreSQL reader can be held back behind
    /// another transaction still open, and a batch decided under the lock must not be stale.
    pub(super) async fn follow_log(&mut self, exact: bool) -> Result<(), EngineError> {
        let store = Arc::clone(&self.store);
        let Some(mut position) = self.log_position else {
            return self.forget_cache().await;
        };
        let mut followed = 0;
        loop {
            let events = store.read_after(position, MAX_READ_EVENTS).await?;
            let Some(last) = events.last() else {
                break;
            };
            followed += events.len();
            if followed > MAX_FOLLOWED_EVENTS {
                return self.forget_cache().await;
            }
            for recorded in &events {
                self.follow_event(recorded)?;
            }
            position = last.global_position;
            self.log_position = Some(position);
        }
        if exact && position < store.head_position().await? {
            return self.forget_cache().await;
        }
        Ok(())
    }

    /// Empties the cache, which then reflects (trivially) the log up to its head now.
    async fn forget_cache(&mut self) -> Result<(), EngineError> {
        self.clear_cache();
        self.log_position = Some(self.store.head_position().await?);
        Ok(())
    }

    fn follow_event(&mut self, recorded: &RecordedEvent) -> Result<(), EngineError> {
        match recorded.stream.aggregate_type.as_str() {
            Account::TYPE => self.accounts.follow(recorded),
            // The trade dates come from instruments' previous closes and the clearing
            // days' streams: read afresh when next needed.
            Instrument::TYPE => {
                self.dates = None;
                self.instruments.follow(recorded)
            }
            ClearingDay::TYPE => {
                self.dates = None;
                self.days.follow(recorded)
            }
            _ => Ok(()),
        }
    }

    /// After this engine's own append: when its events follow right after the position
    /// the cache reflects, nobody wrote in between and the cache reflects them too.
    pub(super) fn appended(&mut self, first_position: Option<u64>, last_position: Option<u64>) {
        if let (Some(known), Some(first), Some(last)) = (self.log_position, first_position, last_position) {
            if first == known + 1 {
                self.log_position = Some(last);
            }
        }
    }
}
