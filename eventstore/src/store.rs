//! The log's interface, [`EventStore`], which every backend implements and passes
//! the same tests with, its `MAX_*` limits, and readers built on it.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::appended::AppendWatch;
use crate::chain::GENESIS_HASH;
use crate::database::Database;
use crate::records::{
    CommandRecord, OutcomeTotals, RawEvent, RecordedEvent, StoreError, StoredOutcome, StreamId, UnreadableEvent,
};

/// Most commands one `append` call takes: bounds a transaction's size.
pub const MAX_APPEND_COMMANDS: usize = 10_000;
/// Most events one `read_after` call returns.
pub const MAX_READ_EVENTS: usize = 10_000;
/// Most command ids one `find_outcomes` call looks up.
pub const MAX_OUTCOME_LOOKUPS: usize = 10_000;
/// Most outcomes one `refusals_naming_account` call returns.
pub const MAX_REFUSAL_READS: usize = 10_000;
/// Longest a reader waits for committed events held back behind an older open transaction.
pub const MAX_HELD_BACK_MS: u64 = 30_000;
const HELD_BACK_POLL_MS: u64 = 5;
/// Longest an append waits for the database's write lock (SQLite's busy timeout,
/// PostgreSQL's `lock_timeout` on the append lock) before failing with `LockTimeout`.
/// A writer holds it for one batch at most, never for a run.
pub const MAX_APPEND_LOCK_WAIT_MS: u64 = 30_000;

/// Fails with `LimitExceeded` when a call asks for more than its `MAX_*` allows.
pub(crate) fn check_limit(what: &'static str, count: usize, limit: usize) -> Result<(), StoreError> {
    if count > limit {
        return Err(StoreError::LimitExceeded { what, limit });
    }
    Ok(())
}

/// What an append does when one command of the batch cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// Nothing of the batch is written (the engine's sequential batches, where a
    /// later command may depend on an earlier one).
    AllOrNothing,
    /// That command alone is refused; the others are written (group commit of
    /// independent commands).
    EachCommand,
}

/// The log. Every backend passes the same tests.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Appends decided commands in one transaction. Each stream append is checked
    /// against its expected sequence and each command id must be new. With
    /// `AllOrNothing`, one refusal writes nothing and is the error; with
    /// `EachCommand`, a refused command is answered with its error and the others
    /// are written. Returns each command's outcome with its events' positions.
    async fn append_batch(
        &self,
        commands: &[CommandRecord],
        atomicity: Atomicity,
    ) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError>;

    /// All or nothing: the engine's sequential batches.
    async fn append(&self, commands: &[CommandRecord]) -> Result<Vec<StoredOutcome>, StoreError> {
        self.append_batch(commands, Atomicity::AllOrNothing)
            .await?
            .into_iter()
            .collect()
    }

    /// Each command on its own: a conflict or a duplicate fails only that command.
    async fn append_each(
        &self,
        commands: &[CommandRecord],
    ) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
        self.append_batch(commands, Atomicity::EachCommand).await
    }

    /// Takes the append lock now, waiting up to `MAX_APPEND_LOCK_WAIT_MS`, and holds it
    /// until the returned lock appends or is released: meanwhile no other writer, in this
    /// process or another, appends. For a writer whose append conflicted, to decide its
    /// batch again on state nobody can change under it; reads go on through the store.
    async fn lock_appends(&self) -> Result<Box<dyn AppendLock>, StoreError>;

    /// All events of one stream, by sequence.
    async fn load_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events with a global position above `after_position`, in order.
    async fn read_after(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// `read_after` for `verify`: each event as stored, its payload as the bytes the hash
    /// covers, or the row's problem when a column does not read, so that one broken
    /// row is reported at its position instead of failing the read. Backends read their
    /// rows themselves; this default, for a store that keeps events decoded, gives them
    /// back in canonical form.
    async fn read_raw_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
        let events = self.read_after(after_position, limit).await?;
        Ok(events.into_iter().map(|event| Ok(RawEvent::from(event))).collect())
    }

    /// `read_after` for a reader that decodes the events it reads, each into its type
    /// with [`crate::codec::decode_raw`] (a replay, a rebuild): the payload left as the
    /// JSON bytes the backend holds, so that no `serde_json::Value` is built on the way.
    /// A row that does not read fails the read, as in `read_after`; a payload that is not
    /// JSON fails when it is decoded. This default, for a store that keeps events
    /// decoded, gives them in canonical form.
    async fn read_encoded_after(&self, after_position: u64, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        let events = self.read_after(after_position, limit).await?;
        Ok(events.into_iter().map(RawEvent::from).collect())
    }

    /// The stored outcomes of those command ids that have one.
    async fn find_outcomes(&self, command_ids: &[String]) -> Result<HashMap<String, StoredOutcome>, StoreError>;

    /// Up to `limit` (at most `MAX_REFUSAL_READS`) refused outcomes with refusal `code`
    /// that name an account, ordered by command id in byte order, starting after
    /// `after_command_id` (from the first with `None`). Refusals write no event, so this
    /// is how a read model learns of them; page with the last command id returned.
    async fn refusals_naming_account(
        &self,
        code: &str,
        after_command_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredOutcome>, StoreError>;

    /// How many refused outcomes with refusal `code` name an account.
    async fn count_refusals_naming_account(&self, code: &str) -> Result<u64, StoreError>;

    /// Ids of every stream of an aggregate type, sorted.
    async fn stream_ids(&self, aggregate_type: &str) -> Result<Vec<String>, StoreError>;

    /// The highest global position written (0 for an empty log).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// What the idempotency records claim about the log, for `verify`.
    async fn outcome_totals(&self) -> Result<OutcomeTotals, StoreError>;

    /// The database behind the log, for the read models that live beside it.
    fn database(&self) -> Database;

    /// A watch that wakes a follower when the log may have grown ([`crate::appended`]).
    async fn watch_appends(&self) -> Result<Box<dyn AppendWatch>, StoreError>;

    /// Writes events recorded elsewhere, each with its position, time and hash, and the
    /// outcomes of their commands, in one transaction: refused whole (`Corrupt`, naming
    /// the position) unless they continue the chain's head ([`crate::import`]).
    async fn import(&self, events: &[RecordedEvent], outcomes: &[StoredOutcome]) -> Result<(), StoreError>;
}

/// The append lock, held (see [`EventStore::lock_appends`]): one append, or a release.
#[async_trait]
pub trait AppendLock: Send {
    /// Appends all or nothing under the lock, then lets it go.
    async fn append(self: Box<Self>, commands: &[CommandRecord]) -> Result<Vec<StoredOutcome>, StoreError>;

    /// Lets the lock go without appending.
    async fn release(self: Box<Self>);
}

/// The next events after `after`, for a reader that wants everything up to
/// `head` (a position it saw committed). `read_after` holds back events while
/// an older transaction is still open (so none is ever skipped); this waits
/// for them, up to `MAX_HELD_BACK_MS`, instead of returning nothing.
pub async fn read_towards(
    store: &dyn EventStore,
    after: u64,
    head: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    wait_towards(after, head, || store.read_after(after, limit)).await
}

/// The event at `position`, for a reader that saw the log reach `head`; `None` when
/// the log does not hold that position (0, or past `head`).
pub async fn event_at(store: &dyn EventStore, position: u64, head: u64) -> Result<Option<RecordedEvent>, StoreError> {
    if position == 0 || position > head {
        return Ok(None);
    }
    let read = read_towards(store, position - 1, head, 1).await?;
    Ok(read
        .into_iter()
        .next()
        .filter(|event| event.global_position == position))
}

/// The hash the chain holds at `position`, for a reader that saw the log reach `head`:
/// the genesis hash at 0 (before the first event), `None` when the log does not hold
/// that position.
pub async fn hash_at(store: &dyn EventStore, position: u64, head: u64) -> Result<Option<String>, StoreError> {
    if position == 0 {
        return Ok(Some(GENESIS_HASH.to_owned()));
    }
    Ok(event_at(store, position, head).await?.map(|event| event.hash))
}

/// [`read_towards`] with `read_encoded_after`: what replays and rebuilds read.
pub async fn read_encoded_towards(
    store: &dyn EventStore,
    after: u64,
    head: u64,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    wait_towards(after, head, || store.read_encoded_after(after, limit)).await
}

/// [`read_towards`] with `read_raw_after`: what `verify` reads.
pub async fn read_raw_towards(
    store: &dyn EventStore,
    after: u64,
    head: u64,
    limit: usize,
) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
    wait_towards(after, head, || store.read_raw_after(after, limit)).await
}

/// Reads with `read` until it gives something or `after` reaches `head`, waiting for
/// events held back, up to `MAX_HELD_BACK_MS`.
async fn wait_towards<T, F, R>(after: u64, head: u64, mut read: R) -> Result<Vec<T>, StoreError>
where
    R: FnMut() -> F,
    F: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut waited_ms = 0;
    loop {
        let events = read().await?;
        if !events.is_empty() || after >= head {
            return Ok(events);
        }
        if waited_ms >= MAX_HELD_BACK_MS {
            return Err(StoreError::HeldBack {
                position: after + 1,
                waited_ms,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(HELD_BACK_POLL_MS)).await;
        waited_ms += HELD_BACK_POLL_MS;
    }
}
