//! The checkpointed runner of the accounts projection. It reads the log from its
//! checkpoint and applies each batch of events, the rows it changes and the new
//! checkpoint in ONE transaction: a crash at any point neither loses nor doubles an
//! effect, and a rerun resumes. Faults can be injected to test exactly that.

use std::collections::BTreeMap;

use futures_util::future::join;
use ledger_domain::account::Account;
use ledger_eventstore::{commit_or_roll_back, read_encoded_towards, EventStore, MAX_READ_EVENTS};
use sqlx::Pool;

use super::backend::{connection, on_store, Backend, Operation};
use super::balances::{self, AccountBalance, AsOf};
use super::changes::{Changes, RowWrites};
use super::checkpoints::{self, ACCOUNTS_PROJECTION, ACCOUNT_STATES, REFUSAL_ALERTS};
use super::compliance::{self, AlertRefusals};
use super::journal;
use super::obligations;
use super::positions::{self, HeldPosition};
use super::state_cache::{store_alone, Recover, StateCache};
use super::trades;
use crate::ProjectionError;

/// Events applied per transaction when catching up. A transaction holds SQLite's write
/// lock while it runs, and the engine's appends wait for it (at most
/// `MAX_APPEND_LOCK_WAIT_MS`): 10,000 events keep that wait to a few seconds.
pub const DEFAULT_BATCH_EVENTS: usize = 10_000;
/// Events applied per transaction by a rebuild from the first event, which the runbook runs
/// before the writers start again. Each commit writes every page the batch touched (to
/// SQLite's WAL and again at its checkpoint), and the more events a batch holds, the more of
/// them share an account's pages: on a 10,000,000-event log the fills went from about 3,000
/// to 5,000 events/s (docs/performance.md).
pub const REBUILD_BATCH_EVENTS: usize = 100_000;
/// Most events one transaction applies: they are held in memory with their rows, and the
/// transaction holds the store's write lock (SQLite) for as long as it runs.
pub const MAX_BATCH_EVENTS: usize = 200_000;
/// Most account states a run keeps in memory between stores (see `state_cache`): every
/// account of the 10,000,000-event log of docs/performance.md (180,000), so a rebuild
/// stores each state about once. An account that has traded for a while takes a few
/// kilobytes.
pub const DEFAULT_MAX_CACHED_STATES: usize = 250_000;

/// How a run goes. `fault` makes it fail on purpose, to test crash safety.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub batch_events: usize,
    /// The run stores the states it holds once they are more than this many.
    pub max_cached_states: usize,
    pub fault: Option<Fault>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch_events: DEFAULT_BATCH_EVENTS,
            max_cached_states: DEFAULT_MAX_CACHED_STATES,
            fault: None,
        }
    }
}

/// A failure injected into a run, as a crash would happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Stop with an error after this many batches were committed.
    AfterBatches(u32),
    /// Fail inside this batch (0-based), after its rows were written, before its commit.
    MidBatch(u32),
}

/// Catches the projection up with the log's head as of the call. Returns the events applied.
pub async fn run_accounts(
    store: &dyn EventStore,
    options: RunOptions,
    on_batch: impl FnMut(u64),
) -> Result<u64, ProjectionError> {
    assert!(options.batch_events > 0 && options.batch_events <= MAX_BATCH_EVENTS);
    assert!(options.max_cached_states > 0);
    let head = store.head_position().await?;
    on_store(
        store,
        Run {
            store,
            head,
            options,
            on_batch,
        },
    )
    .await
}

/// Empties the accounts projection and its checkpoint (one transaction), then runs it from
/// zero (callers pass [`REBUILD_BATCH_EVENTS`] unless they have a reason not to).
pub async fn rebuild_accounts(
    store: &dyn EventStore,
    options: RunOptions,
    on_batch: impl FnMut(u64),
) -> Result<u64, ProjectionError> {
    on_store(store, Reset).await?;
    run_accounts(store, options, on_batch).await
}

/// The position the accounts projection has reached.
pub async fn accounts_checkpoint(store: &dyn EventStore) -> Result<u64, ProjectionError> {
    on_store(store, ReadCheckpoint(ACCOUNTS_PROJECTION)).await
}

/// The position of one checkpoint.
pub(crate) struct ReadCheckpoint(pub &'static str);

impl Operation for ReadCheckpoint {
    type Output = u64;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<u64, ProjectionError> {
        checkpoints::read::<DB>(&mut *connection(pool).await?, self.0, false).await
    }
}

/// A run up to `head`.
struct Run<'a, F> {
    store: &'a dyn EventStore,
    head: u64,
    options: RunOptions,
    on_batch: F,
}

impl<F: FnMut(u64)> Operation for Run<'_, F> {
    type Output = u64;

    async fn run<DB: Backend>(mut self, pool: &Pool<DB>) -> Result<u64, ProjectionError> {
        let mut applied = 0;
        let mut batch_index = 0u32;
        // The states this run holds; `None` when they must be rebuilt from the stored ones.
        let mut cache: Option<StateCache> = None;
        loop {
            let checkpoint = checkpoints::read::<DB>(&mut *connection(pool).await?, ACCOUNTS_PROJECTION, false).await?;
            // The cache goes on from where it is, if the stored states are still where it
            // found them (another runner may have applied batches, but not stored states).
            let recovered = Recover {
                store: self.store,
                accounts_checkpoint: checkpoint,
                start: cache.take().filter(|states| states.position <= checkpoint),
                page_events: self.options.batch_events.min(MAX_READ_EVENTS),
                max_states: self.options.max_cached_states,
            }
            .run(pool)
            .await;
            let mut states = match recovered {
                // Another runner stored its states meanwhile: build the cache again from them.
                Err(ProjectionError::Moved { .. }) => continue,
                other => other?,
            };
            let read = read_batch(self.store, checkpoint, self.head, self.options.batch_events).await?;
            let Some(read) = read else {
                if states.stored_position < checkpoint {
                    match store_alone(pool, &mut states, checkpoint).await {
                        Err(ProjectionError::Moved { .. }) => continue,
                        other => other?,
                    }
                }
                AlertRefusals { store: self.store }.run(pool).await?;
                return Ok(applied);
            };
            let last_position = read.last_position;
            let event_count = read.event_count;
            let batch = Batch {
                expected_checkpoint: checkpoint,
                last_position,
                store_states_at: self.head,
                max_cached_states: self.options.max_cached_states,
                changes: read.changes,
                fail_mid_batch: self.options.fault == Some(Fault::MidBatch(batch_index)),
            };
            match batch.apply(pool, &mut states).await {
                // Another runner (a read-out beside `projections run --follow`) applied these
                // events first, and nothing of this batch was written: go on from where it
                // got. `Moved` comes before the batch changes the cache, so it is kept.
                Err(ProjectionError::Moved { .. }) => {
                    cache = Some(states);
                    continue;
                }
                other => other?,
            }
            cache = Some(states);
            applied += event_count;
            batch_index += 1;
            (self.on_batch)(last_position);
            if self.options.fault == Some(Fault::AfterBatches(batch_index)) {
                return Err(ProjectionError::Injected(format!(
                    "stopped after {batch_index} committed batches"
                )));
            }
        }
    }
}

/// What the events of one batch change, read from the log.
struct ReadBatch {
    changes: Changes,
    event_count: u64,
    last_position: u64,
}

/// The changes of the events after `checkpoint` towards `head`, at most `batch_events`,
/// read a page at a time and decoded as each page comes: the batch holds its rows, never
/// all its events. The next page is read while this one is decoded. `None` when there is
/// no event to read.
async fn read_batch(
    store: &dyn EventStore,
    checkpoint: u64,
    head: u64,
    batch_events: usize,
) -> Result<Option<ReadBatch>, ProjectionError> {
    let page_events = |read: usize| (batch_events - read).min(MAX_READ_EVENTS);
    let mut changes = Changes::default();
    let mut event_count = 0;
    let mut page = read_encoded_towards(store, checkpoint, head, page_events(0)).await?;
    while let Some(last) = page.last() {
        let after = last.global_position;
        event_count += page.len();
        assert!(event_count <= batch_events);
        let next_page = async {
            if event_count == batch_events || after >= head {
                return Ok(Vec::new());
            }
            read_encoded_towards(store, after, head, page_events(event_count)).await
        };
        let decode_page = async { page.iter().try_for_each(|event| changes.add_encoded(event)) };
        let (next, decoded) = join(next_page, decode_page).await;
        decoded?;
        page = next?;
        if page.is_empty() {
            return Ok(Some(ReadBatch {
                changes,
                event_count: event_count as u64,
                last_position: after,
            }));
        }
    }
    Ok(None)
}

/// Empties every table of the accounts projection and both its checkpoints.
struct Reset;

impl Operation for Reset {
    type Output = ();

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<(), ProjectionError> {
        let mut tx = pool
            .begin_with(DB::BEGIN_WRITE)
            .await
            .map_err(ProjectionError::database)?;
        let emptied = reset_in::<DB>(&mut tx).await;
        commit_or_roll_back(tx, emptied, ProjectionError::database).await
    }
}

async fn reset_in<DB: Backend>(conn: &mut DB::Connection) -> Result<(), ProjectionError> {
    // Lock the checkpoint first, as every batch and every store of states does: a run
    // beside the reset waits for it instead of deadlocking or inserting rows it misses.
    checkpoints::lock::<DB>(conn, ACCOUNTS_PROJECTION).await?;
    for table in [
        "account_balances",
        "positions",
        "projection_account_state",
        "trades",
        "orders",
        "clearing_obligations",
        "compliance_alerts",
        "journal_entries",
    ] {
        DB::execute(conn, &mut sqlx::QueryBuilder::new(format!("DELETE FROM {table}"))).await?;
    }
    checkpoints::remove::<DB>(conn, &[ACCOUNTS_PROJECTION, ACCOUNT_STATES, REFUSAL_ALERTS]).await
}

/// One batch of events and what it changes.
struct Batch {
    expected_checkpoint: u64,
    last_position: u64,
    /// The batch that reaches this position stores the states.
    store_states_at: u64,
    max_cached_states: usize,
    changes: Changes,
    fail_mid_batch: bool,
}

impl Batch {
    /// Applies the batch in one transaction. After `Moved` the states are unchanged; after
    /// any other error the caller drops them, since they may hold changes not committed.
    async fn apply<DB: Backend>(self, pool: &Pool<DB>, states: &mut StateCache) -> Result<(), ProjectionError> {
        let mut tx = pool
            .begin_with(DB::BEGIN_WRITE)
            .await
            .map_err(ProjectionError::database)?;
        let last_position = self.last_position;
        let applied = self.apply_in::<DB>(&mut tx, states).await;
        let stores_states = matches!(applied, Ok(true));
        commit_or_roll_back(tx, applied, ProjectionError::database).await?;
        states.position = last_position;
        if stores_states {
            states.stored();
        }
        Ok(())
    }

    /// The batch's rows and the new checkpoint, inside the caller's transaction. Returns
    /// whether it stored the states.
    async fn apply_in<DB: Backend>(
        mut self,
        conn: &mut DB::Connection,
        states: &mut StateCache,
    ) -> Result<bool, ProjectionError> {
        // Another runner may have moved the checkpoint since we read it: then this batch is not ours.
        let current = checkpoints::lock::<DB>(conn, ACCOUNTS_PROJECTION).await?;
        if current != self.expected_checkpoint {
            return Err(ProjectionError::Moved {
                expected: self.expected_checkpoint,
                found: current,
            });
        }
        assert_eq!(states.position, current, "the cached states are at the checkpoint");
        states.ensure_stored_position::<DB>(conn, current).await?;
        let account_ids: Vec<&String> = self.changes.events_by_account.keys().collect();
        states.load_missing::<DB>(conn, &account_ids).await?;
        let touched = self.changes.apply_to(&mut states.accounts);
        write_balances_and_positions::<DB>(conn, &states.accounts, &touched, self.last_position).await?;
        write_rows::<DB>(conn, self.changes.rows).await?;
        if self.fail_mid_batch {
            // The caller rolls every row of this batch back.
            return Err(ProjectionError::Injected("failed in the middle of a batch".into()));
        }
        let store_states = self.last_position >= self.store_states_at || states.accounts.len() > self.max_cached_states;
        if store_states {
            states.position = self.last_position;
            states.store_in::<DB>(conn).await?;
        } else {
            // A database from before the states' checkpoint has no row: write where they are.
            checkpoints::set::<DB>(conn, ACCOUNT_STATES, states.stored_position).await?;
        }
        checkpoints::set::<DB>(conn, ACCOUNTS_PROJECTION, self.last_position).await?;
        Ok(store_states)
    }
}

/// Replaces the balance and every position row of these accounts.
async fn write_balances_and_positions<DB: Backend>(
    conn: &mut DB::Connection,
    accounts: &BTreeMap<String, Account>,
    touched: &[String],
    as_of: u64,
) -> Result<(), ProjectionError> {
    let mut balances = Vec::with_capacity(touched.len());
    let mut held = Vec::new();
    for account_id in touched {
        let Some(account) = accounts.get(account_id) else {
            unreachable!("a touched account has a state");
        };
        balances.push(AsOf {
            row: AccountBalance::of(account_id, account),
            position: as_of,
        });
        held.extend(
            HeldPosition::all_of(account_id, account)
                .into_iter()
                .map(|row| AsOf { row, position: as_of }),
        );
    }
    balances::upsert::<DB>(conn, &balances).await?;
    let account_ids: Vec<&String> = touched.iter().collect();
    positions::replace::<DB>(conn, &account_ids, &held).await
}

/// Trades, orders, alerts, journal lines and obligations of one batch, many rows per
/// statement, in the batch's event order.
async fn write_rows<DB: Backend>(conn: &mut DB::Connection, rows: RowWrites) -> Result<(), ProjectionError> {
    trades::insert::<DB>(conn, &rows.trades).await?;
    rows.orders.write::<DB>(conn).await?;
    compliance::insert_large_cash::<DB>(conn, &rows.alerts).await?;
    journal::insert::<DB>(conn, &rows.journal).await?;
    obligations::add::<DB>(conn, &rows.obligations()).await
}
