//! The one append algorithm, written once and generic over [`AppendSql`], the SQL
//! primitives a backend gives it: begin and lock, look up command ids, stream heads
//! and the chain head, insert a chunk of events and a chunk of outcomes. The
//! decisions in between are `plan`'s; the transaction ends in `commit_or_roll_back`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::marker::PhantomData;

use async_trait::async_trait;
use sqlx::Transaction;

use crate::chain::{format_recorded_at, GENESIS_HASH};
use crate::database::commit_or_roll_back;
use crate::plan::{chain_plan, outcomes_of, plan_append, stored_metadata, ChainedRow, PlannedEvent};
use crate::records::{CommandRecord, EventMetadata, StoreError, StoredOutcome, StreamId};
use crate::rows::to_i64;
use crate::store::{check_limit, AppendLock, Atomicity, MAX_APPEND_COMMANDS};

/// The columns of `events` an append writes, in the order `EventRow` binds them.
pub(crate) const EVENT_INSERT_COLUMNS: [&str; 15] = [
    "global_position",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "event_version",
    "payload",
    "command_id",
    "correlation_id",
    "causation_id",
    "actor",
    "recorded_at",
    "prev_hash",
    "hash",
    "business_date",
];

/// The columns of `command_outcomes` an append writes, in the order `OutcomeRow` binds them.
pub(crate) const OUTCOME_INSERT_COLUMNS: [&str; 10] = [
    "command_id",
    "status",
    "code",
    "message",
    "account_id",
    "event_count",
    "first_position",
    "last_position",
    "recorded_at",
    "request_sha256",
];

/// Bind parameters one stream takes in a stream-head lookup (type and id).
pub(crate) const STREAM_KEY_PARAMETERS: usize = 2;

/// What an append finds in the store before it writes ([`AppendSql::look_up`]).
#[derive(Debug, Default)]
pub(crate) struct LookedUp {
    /// Command ids that already have an outcome.
    pub existing: HashSet<String>,
    /// Each stream's last sequence, for the streams that have events.
    pub heads: HashMap<StreamId, u64>,
    /// The log's last position and hash.
    pub chain_head: Option<(u64, String)>,
}

/// One `events` row, converted and ready to bind.
pub(crate) struct EventRow<'a> {
    pub global_position: i64,
    pub stream: &'a StreamId,
    pub sequence: i64,
    pub event_type: &'a str,
    /// Left as it is: each backend has its own integer width for it.
    pub event_version: u32,
    /// `chain::canonical_json` of the payload: the bytes its hash covers.
    pub payload: String,
    pub metadata: &'a EventMetadata,
    /// Canonical text (`chain::format_recorded_at`).
    pub recorded_at: &'a str,
    pub prev_hash: String,
    pub hash: String,
    /// `YYYY-MM-DD`, or NULL.
    pub business_date: Option<String>,
}

/// One `command_outcomes` row, converted and ready to bind.
pub(crate) struct OutcomeRow<'a> {
    pub command_id: &'a str,
    pub status: &'static str,
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub event_count: i64,
    pub first_position: Option<i64>,
    pub last_position: Option<i64>,
    /// Canonical text (`chain::format_recorded_at`).
    pub recorded_at: String,
    pub request_sha256: Option<&'a str>,
}

/// The SQL an append needs from a backend. Each primitive runs inside the append's
/// transaction and does one statement's work; the chunk sizes keep every statement
/// under the backend's bind-parameter limit (each backend asserts so at compile time).
#[async_trait]
pub(crate) trait AppendSql: Sync {
    type Db: sqlx::Database;
    /// Command ids, or streams, looked up per statement.
    const KEYS_PER_LOOKUP: usize;
    const EVENT_ROWS_PER_INSERT: usize;
    const OUTCOME_ROWS_PER_INSERT: usize;

    /// Opens the append's transaction.
    async fn begin_append(&self) -> Result<Transaction<'static, Self::Db>, StoreError>;

    /// Makes this append the only one until its transaction ends: positions are then
    /// handed out in commit order and each append chains onto the last hash. Waits at
    /// most `MAX_APPEND_LOCK_WAIT_MS`; taking it again in the same transaction is harmless.
    async fn lock_appends(tx: &mut Transaction<'static, Self::Db>) -> Result<(), StoreError>;

    /// What an append reads before it writes, in one statement: those of these command
    /// ids that already have an outcome, the sequence of the last event of each of these
    /// streams that has one, and the position and hash of the log's last event (`None`
    /// for an empty log). Either list may be empty; neither is longer than
    /// `KEYS_PER_LOOKUP`.
    async fn look_up(
        tx: &mut Transaction<'static, Self::Db>,
        command_ids: &[&str],
        streams: &[&StreamId],
    ) -> Result<LookedUp, StoreError>;

    /// Inserts up to `EVENT_ROWS_PER_INSERT` events in one statement.
    async fn insert_events(tx: &mut Transaction<'static, Self::Db>, rows: &[EventRow<'_>]) -> Result<(), StoreError>;

    /// Inserts up to `OUTCOME_ROWS_PER_INSERT` outcomes in one statement.
    async fn insert_outcomes(
        tx: &mut Transaction<'static, Self::Db>,
        rows: &[OutcomeRow<'_>],
    ) -> Result<(), StoreError>;

    /// Tells followers, at commit, that the log has grown to `last_position`
    /// ([`crate::appended`]); nothing where the backend has no way to.
    async fn announce_append(tx: &mut Transaction<'static, Self::Db>, last_position: u64) -> Result<(), StoreError>;
}

/// `EventStore::append_batch`, for every backend: one transaction, ended by
/// `commit_or_roll_back`.
pub(crate) async fn append_batch<B: AppendSql>(
    backend: &B,
    commands: &[CommandRecord],
    atomicity: Atomicity,
) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
    check_limit("commands in one append", commands.len(), MAX_APPEND_COMMANDS)?;
    let mut tx = backend.begin_append().await?;
    let written = write_batch::<B>(&mut tx, commands, atomicity).await;
    commit_or_roll_back(tx, written, StoreError::from).await
}

/// `EventStore::lock_appends`, for every backend: the append's transaction, begun and
/// locked now, kept until [`AppendLock::append`] or [`AppendLock::release`].
pub(crate) async fn hold_appends<B: AppendSql + 'static>(backend: &B) -> Result<Box<dyn AppendLock>, StoreError> {
    let mut tx = backend.begin_append().await?;
    if let Err(error) = B::lock_appends(&mut tx).await {
        let _ = tx.rollback().await;
        return Err(error);
    }
    Ok(Box::new(HeldAppend::<B> {
        tx,
        backend: PhantomData,
    }))
}

/// The append lock held in an open transaction, which only an append or a release ends.
struct HeldAppend<B: AppendSql> {
    tx: Transaction<'static, B::Db>,
    backend: PhantomData<fn() -> B>,
}

#[async_trait]
impl<B: AppendSql + 'static> AppendLock for HeldAppend<B> {
    async fn append(self: Box<Self>, commands: &[CommandRecord]) -> Result<Vec<StoredOutcome>, StoreError> {
        let mut tx = self.tx;
        let written = match check_limit("commands in one append", commands.len(), MAX_APPEND_COMMANDS) {
            Ok(()) => write_batch::<B>(&mut tx, commands, Atomicity::AllOrNothing).await,
            Err(error) => Err(error),
        };
        commit_or_roll_back(tx, written, StoreError::from)
            .await?
            .into_iter()
            .collect()
    }

    async fn release(self: Box<Self>) {
        // A failed rollback means the connection is gone, and the lock with it.
        let _ = self.tx.rollback().await;
    }
}

/// Everything an append writes, inside the caller's transaction: outcomes of known
/// command ids, the planned events chained onto the head, and the new outcomes.
async fn write_batch<B: AppendSql>(
    tx: &mut Transaction<'static, B::Db>,
    commands: &[CommandRecord],
    atomicity: Atomicity,
) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
    B::lock_appends(tx).await?;
    let LookedUp {
        existing,
        heads,
        chain_head,
    } = look_up::<B>(tx, commands).await?;
    let plan = plan_append(commands, heads, &existing, atomicity)?;
    let metadata = stored_metadata(commands);
    let recorded_at: Vec<String> = metadata.iter().map(|m| format_recorded_at(&m.recorded_at)).collect();
    let (last_position, last_hash) = chain_head.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    let chained = chain_plan(&plan.events, &metadata, last_position, &last_hash);
    let positions: Vec<u64> = chained.iter().map(|row| row.global_position).collect();
    // Many rows per statement: each statement is a round trip (to SQLite's worker
    // thread, to the PostgreSQL server), which costs more than the insert itself.
    let events = event_rows(&plan.events, chained, &metadata, &recorded_at)?;
    for chunk in events.chunks(B::EVENT_ROWS_PER_INSERT) {
        B::insert_events(tx, chunk).await?;
    }
    let outcomes = outcomes_of(commands, &metadata, plan, &positions);
    let written = outcome_rows(&outcomes)?;
    for chunk in written.chunks(B::OUTCOME_ROWS_PER_INSERT) {
        B::insert_outcomes(tx, chunk).await?;
    }
    if let Some(last_position) = positions.last() {
        B::announce_append(tx, *last_position).await?;
    }
    Ok(outcomes)
}

/// Those of the commands' ids that already have an outcome, the sequence of the last
/// event of every stream they append to (absent: 0), and the chain's head: one
/// statement for a batch whose ids and streams fit in one lookup, as nearly all do:
/// each statement is a round trip (to SQLite's worker thread, to the PostgreSQL server).
async fn look_up<B: AppendSql>(
    tx: &mut Transaction<'static, B::Db>,
    commands: &[CommandRecord],
) -> Result<LookedUp, StoreError> {
    let command_ids: Vec<&str> = commands.iter().map(|c| c.metadata.command_id.as_str()).collect();
    let streams: BTreeSet<&StreamId> = commands
        .iter()
        .flat_map(|c| c.appends.iter().map(|a| &a.stream))
        .collect();
    let streams: Vec<&StreamId> = streams.into_iter().collect();
    let rounds = command_ids.len().max(streams.len()).div_ceil(B::KEYS_PER_LOOKUP).max(1);
    let mut looked_up = LookedUp::default();
    for round in 0..rounds {
        let ids = chunk(&command_ids, round, B::KEYS_PER_LOOKUP);
        let found = B::look_up(tx, ids, chunk(&streams, round, B::KEYS_PER_LOOKUP)).await?;
        looked_up.existing.extend(found.existing);
        looked_up.heads.extend(found.heads);
        if round == 0 {
            looked_up.chain_head = found.chain_head;
        } else {
            assert_eq!(
                found.chain_head, looked_up.chain_head,
                "the append lock holds the chain's head still"
            );
        }
    }
    Ok(looked_up)
}

/// The `round`th run of `size` keys, empty past the end.
fn chunk<T>(keys: &[T], round: usize, size: usize) -> &[T] {
    let start = (round * size).min(keys.len());
    &keys[start..(start + size).min(keys.len())]
}

/// The planned events as rows, with the positions and hashes `chain_plan` gave them.
/// `metadata` and `recorded_at` are per command.
fn event_rows<'a>(
    planned: &[PlannedEvent<'a>],
    chained: Vec<ChainedRow>,
    metadata: &'a [EventMetadata],
    recorded_at: &'a [String],
) -> Result<Vec<EventRow<'a>>, StoreError> {
    assert_eq!(planned.len(), chained.len(), "one chained row per planned event");
    planned
        .iter()
        .zip(chained)
        .map(|(planned, chained)| {
            Ok(EventRow {
                global_position: to_i64(chained.global_position)?,
                stream: planned.stream,
                sequence: to_i64(planned.sequence)?,
                event_type: &planned.event.event_type,
                event_version: planned.event.event_version,
                payload: chained.payload,
                metadata: &metadata[planned.command],
                recorded_at: &recorded_at[planned.command],
                prev_hash: chained.prev_hash,
                hash: chained.hash,
                business_date: metadata[planned.command].business_date.map(|d| d.to_string()),
            })
        })
        .collect()
}

/// The outcomes of the commands written, as rows; refused commands write none.
fn outcome_rows(outcomes: &[Result<StoredOutcome, StoreError>]) -> Result<Vec<OutcomeRow<'_>>, StoreError> {
    outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .map(outcome_row)
        .collect()
}

/// One outcome as its row.
pub(crate) fn outcome_row(outcome: &StoredOutcome) -> Result<OutcomeRow<'_>, StoreError> {
    Ok(OutcomeRow {
        command_id: &outcome.command_id,
        status: outcome.status.as_str(),
        code: outcome.code.as_deref(),
        message: outcome.message.as_deref(),
        account_id: outcome.account_id.as_deref(),
        event_count: to_i64(outcome.event_count)?,
        first_position: outcome.first_position.map(to_i64).transpose()?,
        last_position: outcome.last_position.map(to_i64).transpose()?,
        recorded_at: format_recorded_at(&outcome.recorded_at),
        request_sha256: outcome.request_sha256.as_deref(),
    })
}
