//! The engine: runs batches of commands against the aggregates and commits
//! each batch to the event store in one transaction (group commit).
//!
//! A batch is decided in order, one command after the other, on aggregates
//! taken out of a bounded in-memory cache; its events and outcomes are then
//! appended atomically. An answer is given only after its batch is durable.
//! If the append fails, the batch's aggregates are dropped (never returned to
//! the cache) and the trade dates are read again (a failed append may have
//! committed all the same).
//!
//! Other writers (another `ledger exec`, the server) may append to the same
//! streams: before each batch the engine follows the log, applying what they
//! appended to its cached aggregates. A batch can still conflict, when another
//! writer commits while it is being decided (the append's optimistic check per
//! stream and per command id catches it, and nothing is written); it is then
//! decided once more holding the store's append lock, taken before following
//! the log and kept until the commit, so nobody can move anything under it and
//! the retry cannot lose again. The lock is held for that one batch only; the
//! first try of every batch takes it only to append, as always.
//!
//! - [`results`]: a submission in, its result out;
//! - `repository`: the cache and working set of each aggregate type;
//! - `batch`: deciding a batch, duplicates included, and committing it;
//! - `follow`: bringing the cache up to what other writers appended;
//! - `route`: which aggregate decides each command, and how.

mod batch;
mod follow;
mod repository;
pub mod results;
mod route;

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use ledger_domain::ids::AccountId;
use ledger_domain::{Account, ClearingDay, Instrument, MarketRules, TradeDates};
use ledger_eventstore::codec::{DecodeError, EncodeError};
use ledger_eventstore::{EventStore, StoreError};

pub use follow::MAX_FOLLOWED_EVENTS;
use repository::Repository;
pub use results::{CommandResult, Status, Submission, KEY_REUSED_CODE};

/// Most commands decided and committed together.
pub const MAX_BATCH_COMMANDS: usize = 1_000;
/// Aggregates of each type kept in memory between batches.
pub const DEFAULT_CACHE_AGGREGATES: usize = 100_000;
/// The most aggregates of each type a cache may be asked to hold: a bound on what a
/// configuration can make the process keep (a cached account holds its whole history's ids).
pub const MAX_CACHE_AGGREGATES: usize = 10_000_000;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("a batch holds {0} commands; the limit is {MAX_BATCH_COMMANDS}")]
    BatchTooLarge(usize),
    /// The batch conflicted even when decided under the append lock: only a writer that
    /// bypasses the lock (not the ledger) can cause this.
    #[error("the batch conflicted with a writer that does not take the append lock: {0}")]
    Contention(StoreError),
}

pub struct Ledger {
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    accounts: Repository<Account>,
    instruments: Repository<Instrument>,
    days: Repository<ClearingDay>,
    /// Accounts opened by the batch being decided, not yet in the store.
    batch_new_accounts: BTreeSet<String>,
    /// The trade dates as committed (`None`: not read from the store yet).
    dates: Option<TradeDates>,
    /// The trade dates as the batch being decided has them.
    batch_dates: Option<TradeDates>,
    /// The log position the cached aggregates reflect: every event up to it is applied
    /// to the cached aggregate of its stream (`None`: not read from the store yet).
    log_position: Option<u64>,
    clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl Ledger {
    pub fn new(store: Arc<dyn EventStore>, rules: Arc<MarketRules>) -> Self {
        Self::with_cache(store, rules, DEFAULT_CACHE_AGGREGATES)
    }

    pub fn with_cache(store: Arc<dyn EventStore>, rules: Arc<MarketRules>, cache_aggregates: usize) -> Self {
        assert!(
            cache_aggregates <= MAX_CACHE_AGGREGATES,
            "cache of {cache_aggregates} aggregates"
        );
        let capacity = NonZeroUsize::new(cache_aggregates.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            store,
            rules,
            accounts: Repository::new(capacity),
            instruments: Repository::new(capacity),
            days: Repository::new(capacity),
            batch_new_accounts: BTreeSet::new(),
            dates: None,
            batch_dates: None,
            log_position: None,
            clock: Box::new(Utc::now),
        }
    }

    /// Replaces the wall clock that stamps `recorded_at` (tests).
    pub fn set_clock(&mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) {
        self.clock = Box::new(clock);
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn rules(&self) -> &MarketRules {
        &self.rules
    }

    /// Runs a batch in order and commits it in one transaction. Every
    /// submission gets exactly one result, in the same order.
    pub async fn execute(&mut self, batch: &[Submission]) -> Result<Vec<CommandResult>, EngineError> {
        if batch.len() > MAX_BATCH_COMMANDS {
            return Err(EngineError::BatchTooLarge(batch.len()));
        }
        match self.try_execute(batch, None).await {
            Err(EngineError::Store(StoreError::Conflict { .. } | StoreError::DuplicateCommand(_))) => {}
            other => return other,
        }
        // Deciding again optimistically can lose the same race again, and against a writer
        // as busy as this one it did, try after try: decide on the log's state with the lock
        // held (waiting for it at most `MAX_APPEND_LOCK_WAIT_MS`, a `LockTimeout` after that).
        let lock = self.store.lock_appends().await?;
        match self.try_execute(batch, Some(lock)).await {
            Err(EngineError::Store(conflict @ (StoreError::Conflict { .. } | StoreError::DuplicateCommand(_)))) => {
                self.clear_cache();
                self.log_position = None;
                Err(EngineError::Contention(conflict))
            }
            other => other,
        }
    }

    /// The current state of an account, from cache or store.
    pub async fn account(&mut self, account_id: &AccountId) -> Result<Option<Account>, EngineError> {
        let store = Arc::clone(&self.store);
        let loaded = self.accounts.load(store.as_ref(), account_id.as_str()).await?;
        let state = loaded.state.customer().is_some().then(|| loaded.state.clone());
        self.accounts.commit_working_set();
        Ok(state)
    }

    /// The trade date open now, as the batch being decided leaves it.
    async fn open_trade_date(&mut self) -> Result<Option<NaiveDate>, EngineError> {
        let rules = Arc::clone(&self.rules);
        Ok(self.batch_dates().await?.open_trade_date(&rules.calendar))
    }

    /// The batch's view of the trade dates, read from the store on first use.
    async fn batch_dates(&mut self) -> Result<&mut TradeDates, EngineError> {
        if self.batch_dates.is_none() {
            let dates = match self.dates {
                Some(dates) => dates,
                None => self.read_dates().await?,
            };
            self.batch_dates = Some(dates);
        }
        Ok(self.batch_dates.get_or_insert_with(TradeDates::default))
    }

    /// The trade dates from the store: a clearing day's stream starts with its
    /// end of day, so the latest stream is the last closed day; before any,
    /// the earliest previous close of any instrument.
    async fn read_dates(&mut self) -> Result<TradeDates, EngineError> {
        let store = Arc::clone(&self.store);
        let mut dates = TradeDates::default();
        for id in store.stream_ids(ClearingDay::TYPE).await? {
            let trade_date = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("clearing day stream {id:?} is not a date")))?;
            dates.record_close(trade_date);
        }
        if dates.last_closed.is_none() {
            for code in store.stream_ids(Instrument::TYPE).await? {
                let loaded = self.instruments.load(store.as_ref(), &code).await?;
                dates.record_instrument(&loaded.state);
            }
        }
        Ok(dates)
    }

    fn clear_cache(&mut self) {
        self.dates = None;
        self.accounts.clear_cache();
        self.instruments.clear_cache();
        self.days.clear_cache();
    }

    fn commit_working_sets(&mut self) {
        if let Some(dates) = self.batch_dates.take() {
            self.dates = Some(dates);
        }
        self.accounts.commit_working_set();
        self.instruments.commit_working_set();
        self.days.commit_working_set();
    }

    fn drop_working_sets(&mut self) {
        self.batch_dates = None;
        self.accounts.drop_working_set();
        self.instruments.drop_working_set();
        self.days.drop_working_set();
    }
}
