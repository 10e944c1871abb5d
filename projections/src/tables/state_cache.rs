//! The account states a run keeps in memory between batches, so that a batch neither
//! reads its accounts' states back from `projection_account_state` nor writes them
//! there: a state row holds an account's whole state (kilobytes of JSON once it has
//! traded), and writing it after every batch was most of a rebuild's time
//! (docs/performance.md).
//!
//! The stored states may therefore lag the accounts checkpoint. Their own checkpoint,
//! `account_states`, says which position they reflect, and the rule that keeps them
//! exact is: **an account with an event after that position has its state in the
//! cache**. A run writes the cached states (and moves that checkpoint) in the batch
//! that reaches the head, or when the cache holds more than its limit. A run that
//! starts, or whose cache can no longer be trusted (its batch failed, another runner
//! moved the checkpoint), rebuilds the cache from the log between the two
//! checkpoints: a crash between those writes loses nothing.

use std::collections::BTreeMap;

use ledger_domain::account::Account;
use ledger_eventstore::{commit_or_roll_back, read_encoded_towards, EventStore, MAX_READ_EVENTS};
use sqlx::Pool;

use super::backend::{Backend, Operation};
use super::changes::{account_events_of, apply_account_events};
use super::checkpoints::{self, ACCOUNTS_PROJECTION, ACCOUNT_STATES};
use super::state;
use crate::ProjectionError;

/// The states a run has changed since they were last stored.
pub(crate) struct StateCache {
    /// The position the stored states reflect; no account outside `accounts` has an
    /// event after it.
    pub stored_position: u64,
    /// The position every cached state reflects.
    pub position: u64,
    pub accounts: BTreeMap<String, Account>,
}

impl StateCache {
    /// Takes into the cache the stored states of those of `account_ids` it lacks.
    pub(crate) async fn load_missing<DB: Backend>(
        &mut self,
        conn: &mut DB::Connection,
        account_ids: &[&String],
    ) -> Result<(), ProjectionError> {
        let missing: Vec<&String> = account_ids
            .iter()
            .copied()
            .filter(|id| !self.accounts.contains_key(*id))
            .collect();
        let stored = state::read::<DB>(conn, &missing).await?;
        self.accounts.extend(stored);
        Ok(())
    }

    /// Writes every cached state and moves the states' checkpoint to the cache's position,
    /// inside the caller's transaction, which holds the accounts checkpoint's lock; the
    /// caller empties the cache once the transaction commits.
    pub(crate) async fn store_in<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<(), ProjectionError> {
        assert!(self.stored_position <= self.position);
        state::write::<DB>(conn, &self.accounts).await?;
        checkpoints::set::<DB>(conn, ACCOUNT_STATES, self.position).await
    }

    /// Fails with `Moved` unless the stored states are still at `stored_position`: another
    /// runner has stored its own states since this cache was built.
    pub(crate) async fn ensure_stored_position<DB: Backend>(
        &self,
        conn: &mut DB::Connection,
        accounts_checkpoint: u64,
    ) -> Result<(), ProjectionError> {
        let found = stored_position::<DB>(conn, accounts_checkpoint).await?;
        if found != self.stored_position {
            return Err(ProjectionError::Moved {
                expected: self.stored_position,
                found,
            });
        }
        Ok(())
    }

    /// Marks the cache as stored at its position, once `store_in`'s transaction committed.
    pub(crate) fn stored(&mut self) {
        self.stored_position = self.position;
        self.accounts.clear();
    }
}

/// The position the stored states reflect. A database written before the states had a
/// checkpoint of their own stored them with every batch: there they are at the accounts
/// checkpoint.
async fn stored_position<DB: Backend>(
    conn: &mut DB::Connection,
    accounts_checkpoint: u64,
) -> Result<u64, ProjectionError> {
    let stored = checkpoints::read_optional::<DB>(conn, ACCOUNT_STATES).await?;
    let stored = stored.unwrap_or(accounts_checkpoint);
    if stored > accounts_checkpoint {
        return Err(ProjectionError::Corrupt(format!(
            "the account states are at position {stored}, past the accounts checkpoint {accounts_checkpoint}"
        )));
    }
    Ok(stored)
}

/// Brings the cache to `accounts_checkpoint`: from `start` (a cache this run held, at or
/// behind it) or else from the stored states, every account event up to
/// `accounts_checkpoint` applied to the states it touches, `page_events` at a time.
/// Stores the cache whenever it holds more than `max_states`. Fails with `Moved` when
/// another runner stored its own states meanwhile: `start` is then of no use.
pub(crate) struct Recover<'a> {
    pub store: &'a dyn EventStore,
    pub accounts_checkpoint: u64,
    pub start: Option<StateCache>,
    pub page_events: usize,
    pub max_states: usize,
}

impl Operation for Recover<'_> {
    type Output = StateCache;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<StateCache, ProjectionError> {
        assert!(self.page_events > 0 && self.page_events <= MAX_READ_EVENTS);
        let expected_stored = self.start.as_ref().map(|cache| cache.stored_position);
        let (stored_position, _) = read_stored(pool, expected_stored, &[]).await?;
        let mut cache = self.start.unwrap_or(StateCache {
            stored_position,
            position: stored_position,
            accounts: BTreeMap::new(),
        });
        while cache.position < self.accounts_checkpoint {
            let mut page =
                read_encoded_towards(self.store, cache.position, self.accounts_checkpoint, self.page_events).await?;
            // The runner (or another) may have appended past the checkpoint: those are the next batch's.
            page.retain(|event| event.global_position <= self.accounts_checkpoint);
            let Some(last) = page.last() else {
                return Err(ProjectionError::Corrupt(format!(
                    "the log ends at {} before the accounts checkpoint {}",
                    cache.position, self.accounts_checkpoint
                )));
            };
            let last_position = last.global_position;
            let events_by_account = account_events_of(&page)?;
            let missing: Vec<&String> = events_by_account
                .keys()
                .filter(|id| !cache.accounts.contains_key(*id))
                .collect();
            let (_, stored) = read_stored(pool, Some(cache.stored_position), &missing).await?;
            cache.accounts.extend(stored);
            apply_account_events(events_by_account, &mut cache.accounts);
            cache.position = last_position;
            if cache.accounts.len() > self.max_states {
                store_alone(pool, &mut cache, self.accounts_checkpoint).await?;
            }
        }
        Ok(cache)
    }
}

/// The stored states' position and the stored states of `account_ids`, read together in
/// one transaction in which no runner can store states (states read at another position
/// would have events applied twice). Fails with `Moved` if the stored states are no
/// longer at `expected_stored`.
async fn read_stored<DB: Backend>(
    pool: &Pool<DB>,
    expected_stored: Option<u64>,
    account_ids: &[&String],
) -> Result<(u64, BTreeMap<String, Account>), ProjectionError> {
    let mut tx = pool.begin().await.map_err(ProjectionError::database)?;
    let read = read_stored_in::<DB>(&mut tx, expected_stored, account_ids).await;
    commit_or_roll_back(tx, read, ProjectionError::database).await
}

async fn read_stored_in<DB: Backend>(
    conn: &mut DB::Connection,
    expected_stored: Option<u64>,
    account_ids: &[&String],
) -> Result<(u64, BTreeMap<String, Account>), ProjectionError> {
    // Every store of states holds the accounts checkpoint's row locked: sharing it keeps
    // them out until this transaction ends.
    let (stored_position, states) = match checkpoints::read_shared::<DB>(conn, ACCOUNTS_PROJECTION).await? {
        Some(accounts_checkpoint) => {
            let stored_position = stored_position::<DB>(conn, accounts_checkpoint).await?;
            (stored_position, state::read::<DB>(conn, account_ids).await?)
        }
        // No batch has committed since the projection was created or reset, so nothing is
        // stored; a state another runner commits now is not locked out (there is no row to
        // share), and is not this snapshot's.
        None => (0, BTreeMap::new()),
    };
    if let Some(expected) = expected_stored.filter(|expected| *expected != stored_position) {
        return Err(ProjectionError::Moved {
            expected,
            found: stored_position,
        });
    }
    Ok((stored_position, states))
}

/// Stores the cache in a transaction of its own, if the accounts checkpoint is still
/// `accounts_checkpoint` and the stored states where the cache found them.
pub(crate) async fn store_alone<DB: Backend>(
    pool: &Pool<DB>,
    cache: &mut StateCache,
    accounts_checkpoint: u64,
) -> Result<(), ProjectionError> {
    let mut tx = pool
        .begin_with(DB::BEGIN_WRITE)
        .await
        .map_err(ProjectionError::database)?;
    let stored = store_alone_in::<DB>(&mut tx, cache, accounts_checkpoint).await;
    commit_or_roll_back(tx, stored, ProjectionError::database).await?;
    cache.stored();
    Ok(())
}

async fn store_alone_in<DB: Backend>(
    conn: &mut DB::Connection,
    cache: &StateCache,
    accounts_checkpoint: u64,
) -> Result<(), ProjectionError> {
    let found = checkpoints::lock::<DB>(conn, ACCOUNTS_PROJECTION).await?;
    if found != accounts_checkpoint {
        return Err(ProjectionError::Moved {
            expected: accounts_checkpoint,
            found,
        });
    }
    cache.ensure_stored_position::<DB>(conn, accounts_checkpoint).await?;
    cache.store_in::<DB>(conn).await
}
