//! Writing events that were recorded elsewhere (`ledger import`, `ledger migrate-store`):
//! each keeps its position, its recorded time and its hash. Nothing is trusted: under
//! the append lock the batch must start right after the chain's head, link to it, and
//! every event's hash must be the hash of its own fields, recomputed here; else nothing
//! of the batch is written and the error names the position.

use sqlx::Transaction;

use crate::append::{outcome_row, AppendSql, EventRow};
use crate::chain::{canonical_json, format_recorded_at, GENESIS_HASH};
use crate::database::commit_or_roll_back;
use crate::records::{RecordedEvent, StoreError, StoredOutcome};
use crate::rows::to_i64;
use crate::store::check_limit;
use crate::versions::check_readable;

/// Most events one import call writes.
pub const MAX_IMPORT_EVENTS: usize = 10_000;

/// Why events cannot be imported where they were asked to go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportRefusal {
    #[error("position {position} does not follow position {last} of the log")]
    NotNext { position: u64, last: u64 },
    #[error("position {position}: its prev_hash is not the hash of the event before it")]
    BrokenLink { position: u64 },
    #[error("position {position}: its hash is not the hash of its fields (the event was changed)")]
    WrongHash { position: u64 },
    #[error("position {position}: this build cannot read it: {reason}")]
    Unreadable { position: u64, reason: String },
}

/// Checks that `events` continue a chain that ends at `last` with `last_hash`: positions
/// one after another, each linked to the one before, each hash its own fields', each of
/// a type and version this build reads (docs/events.md, "Versioning").
pub fn check_chain(events: &[RecordedEvent], last: u64, last_hash: &str) -> Result<(), ImportRefusal> {
    let mut previous = (last, last_hash.to_owned());
    for event in events {
        let position = event.global_position;
        if position != previous.0 + 1 {
            return Err(ImportRefusal::NotNext {
                position,
                last: previous.0,
            });
        }
        if event.prev_hash != previous.1 {
            return Err(ImportRefusal::BrokenLink { position });
        }
        if event.hash_of_fields() != event.hash {
            return Err(ImportRefusal::WrongHash { position });
        }
        check_readable(&event.event_type, event.event_version).map_err(|e| ImportRefusal::Unreadable {
            position,
            reason: e.to_string(),
        })?;
        previous = (position, event.hash.clone());
    }
    Ok(())
}

/// `EventStore::import`, for every backend: one transaction under the append lock.
pub(crate) async fn import<B: AppendSql>(
    backend: &B,
    events: &[RecordedEvent],
    outcomes: &[StoredOutcome],
) -> Result<(), StoreError> {
    check_limit("events in one import", events.len(), MAX_IMPORT_EVENTS)?;
    check_limit("outcomes in one import", outcomes.len(), MAX_IMPORT_EVENTS)?;
    let mut tx = backend.begin_append().await?;
    let written = write_import::<B>(&mut tx, events, outcomes).await;
    commit_or_roll_back(tx, written, StoreError::from).await
}

async fn write_import<B: AppendSql>(
    tx: &mut Transaction<'static, B::Db>,
    events: &[RecordedEvent],
    outcomes: &[StoredOutcome],
) -> Result<(), StoreError> {
    B::lock_appends(tx).await?;
    let (last, last_hash) = B::look_up(tx, &[], &[])
        .await?
        .chain_head
        .unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    check_chain(events, last, &last_hash).map_err(|refusal| StoreError::Corrupt(refusal.to_string()))?;
    let recorded_at: Vec<String> = events
        .iter()
        .map(|e| format_recorded_at(&e.metadata.recorded_at))
        .collect();
    let rows = events
        .iter()
        .zip(&recorded_at)
        .map(|(event, recorded_at)| {
            Ok(EventRow {
                global_position: to_i64(event.global_position)?,
                stream: &event.stream,
                sequence: to_i64(event.sequence)?,
                event_type: &event.event_type,
                event_version: event.event_version,
                payload: canonical_json(&event.payload),
                metadata: &event.metadata,
                recorded_at,
                prev_hash: event.prev_hash.clone(),
                hash: event.hash.clone(),
                business_date: event.metadata.business_date.map(|d| d.to_string()),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    for chunk in rows.chunks(B::EVENT_ROWS_PER_INSERT) {
        B::insert_events(tx, chunk).await?;
    }
    let outcome_rows = outcomes
        .iter()
        .map(outcome_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
    for chunk in outcome_rows.chunks(B::OUTCOME_ROWS_PER_INSERT) {
        B::insert_outcomes(tx, chunk).await?;
    }
    if let Some(last) = events.last() {
        B::announce_append(tx, last.global_position).await?;
    }
    Ok(())
}
