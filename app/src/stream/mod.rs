//! Following the log: every reader of the log as a stream (`ledger events --follow`,
//! the server's SSE endpoint, the NATS relay) is built of these parts, so they deliver
//! the same events in the same envelope.
//!
//! - [`envelope`]: the CloudEvents envelope of an event, personal data masked by role;
//! - [`filter`]: which events a follower wants, within what its token may see;
//! - [`head`]: the head of the log, kept by one task per process for all its followers;
//! - [`feed`]: one follower's place: examine the events after it, gap-free, then wait.

pub mod envelope;
pub mod feed;
pub mod filter;
pub mod head;

use std::borrow::Cow;

pub use envelope::{CloudEvent, DEFAULT_SOURCE};
pub use feed::{Examined, Feed};
pub use filter::{event_types, EventFilter, ACCOUNT_STREAM};
pub use head::{watch_log_head, LogHead};

use ledger_eventstore::{EventStore, RecordedEvent};
use ledger_projections::tables;

use crate::access::{payload_for, Role};
use crate::AppError;

/// The envelope of `event` for a reader of `role`, or with every field as stored for a
/// reader of the database itself (`None`: the CLI on a database it may open).
pub fn envelope_for<'a>(event: &'a RecordedEvent, source: &'a str, role: Option<Role>) -> CloudEvent<'a> {
    match role {
        Some(role) => CloudEvent::with_data(event, source, payload_for(role, &event.payload)),
        None => CloudEvent::with_data(event, source, Cow::Borrowed(&event.payload)),
    }
}

/// The checkpoint `name` of a follower that keeps one in the ledger's database (a relay),
/// beside the projections' checkpoints; 0 when it has none yet.
pub async fn named_checkpoint(store: &dyn EventStore, name: &str) -> Result<u64, AppError> {
    Ok(tables::read_named_checkpoint(store, name).await?)
}

/// Moves the checkpoint `name` to `position`; never backwards.
pub async fn advance_named_checkpoint(store: &dyn EventStore, name: &str, position: u64) -> Result<(), AppError> {
    Ok(tables::advance_named_checkpoint(store, name, position).await?)
}

/// Sets the checkpoint `name` to `position`, backwards too (a relay whose target lost
/// messages it had acknowledged).
pub async fn reset_named_checkpoint(store: &dyn EventStore, name: &str, position: u64) -> Result<(), AppError> {
    Ok(tables::reset_named_checkpoint(store, name, position).await?)
}
