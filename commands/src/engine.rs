//! The engine: runs batches of commands against the aggregates and commits
//! each batch to the event store in one transaction (group commit).
//!
//! A batch is decided in order, one command after the other, on aggregates
//! taken out of a bounded in-memory cache; its events and outcomes are then
//! appended atomically. An answer is given only after its batch is durable.
//! If the append fails, the batch's aggregates are dropped (never returned to
//! the cache), and on a concurrency conflict the whole batch is decided again
//! against fresh state.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use ledger_domain::account::{AccountCommand, MarketSnapshot, PlaceOrder};
use ledger_domain::ids::AccountId;
use ledger_domain::{
    Account, ClearingDay, ClearingDayCommand, Instrument, InstrumentCommand, MarketRules, RejectCode, Rejection,
};
use ledger_eventstore::codec::{decode, encode, DecodeError, EncodeError};
use ledger_eventstore::{
    CommandRecord, EventMetadata, EventStore, OutcomeStatus, StoreError, StoredOutcome, StreamAppend, StreamId,
};
use lru::LruCache;
use serde::Serialize;

use crate::wire::{CommandLine, LedgerCommand};

/// Most commands decided and committed together.
pub const MAX_BATCH_COMMANDS: usize = 1_000;
/// Aggregates of each type kept in memory between batches.
pub const DEFAULT_CACHE_AGGREGATES: usize = 100_000;
/// How often a batch is decided again after another writer changed its streams.
const MAX_CONFLICT_RETRIES: usize = 3;

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
    #[error("the batch still conflicted with another writer after {MAX_CONFLICT_RETRIES} tries: {0}")]
    Contention(StoreError),
}

/// A command with who sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub command_id: String,
    pub command: LedgerCommand,
    /// Groups related commands; defaults to the command id.
    pub correlation_id: Option<String>,
    pub actor: String,
}

impl Submission {
    pub fn new(line: CommandLine, actor: &str) -> Self {
        Self {
            command_id: line.command_id.into(),
            command: line.command,
            correlation_id: None,
            actor: actor.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Accepted,
    Rejected,
    /// Nothing was written: the command id was seen before, or (code
    /// `duplicate_exec`) the fill's execution id was already booked.
    Duplicate,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Duplicate => "duplicate",
        }
    }
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandResult {
    pub command_id: String,
    pub status: Status,
    pub code: Option<String>,
    pub message: Option<String>,
    /// Events this command wrote (0 unless accepted).
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// For a duplicate command id: the first outcome's status and code.
    pub first_status: Option<String>,
    pub first_code: Option<String>,
}

impl CommandResult {
    fn from_stored(outcome: &StoredOutcome) -> Self {
        let duplicate_exec = outcome.code.as_deref() == Some(RejectCode::DuplicateExec.as_str());
        Self {
            command_id: outcome.command_id.clone(),
            status: match outcome.status {
                OutcomeStatus::Accepted => Status::Accepted,
                OutcomeStatus::Rejected if duplicate_exec => Status::Duplicate,
                OutcomeStatus::Rejected => Status::Rejected,
            },
            code: outcome.code.clone(),
            message: outcome.message.clone(),
            events: outcome.event_count,
            first_position: outcome.first_position,
            last_position: outcome.last_position,
            first_status: None,
            first_code: None,
        }
    }

    fn duplicate_of(outcome: &StoredOutcome) -> Self {
        Self {
            command_id: outcome.command_id.clone(),
            status: Status::Duplicate,
            code: None,
            message: Some(format!(
                "command id {} was already {} at {}; nothing changed",
                outcome.command_id,
                outcome.status.as_str(),
                outcome.recorded_at.format("%Y-%m-%d %H:%M:%S UTC")
            )),
            events: 0,
            first_position: outcome.first_position,
            last_position: outcome.last_position,
            first_status: Some(outcome.status.as_str().to_owned()),
            first_code: outcome.code.clone(),
        }
    }
}

/// An aggregate with the sequence of its last event.
struct Loaded<A> {
    state: A,
    sequence: u64,
}

/// The aggregates of one type: a bounded cache between batches and the
/// working set of the batch being decided (taken out of the cache, so a failed
/// batch can simply drop them).
struct Repository<A: Aggregate> {
    cache: LruCache<String, Loaded<A>>,
    working: HashMap<String, Loaded<A>>,
}

impl<A: Aggregate> Repository<A> {
    fn new(capacity: NonZeroUsize) -> Self {
        Self {
            cache: LruCache::new(capacity),
            working: HashMap::new(),
        }
    }

    async fn load(&mut self, store: &dyn EventStore, id: &str) -> Result<&mut Loaded<A>, EngineError> {
        match self.working.entry(id.to_owned()) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let loaded = match self.cache.pop(id) {
                    Some(loaded) => loaded,
                    None => load_from_store::<A>(store, id).await?,
                };
                Ok(entry.insert(loaded))
            }
        }
    }

    fn commit_working_set(&mut self) {
        for (id, loaded) in self.working.drain() {
            self.cache.put(id, loaded);
        }
    }

    fn drop_working_set(&mut self) {
        self.working.clear();
    }
}

async fn load_from_store<A: Aggregate>(store: &dyn EventStore, id: &str) -> Result<Loaded<A>, EngineError> {
    let mut state = A::default();
    let mut sequence = 0;
    for recorded in store.load_stream(&StreamId::new(A::TYPE, id)).await? {
        state.apply(decode::<A::Event>(&recorded)?);
        sequence = recorded.sequence;
    }
    Ok(Loaded { state, sequence })
}

/// Decides a command on a loaded aggregate: on success the events are applied
/// and staged for the stream; a refusal leaves the aggregate as it was.
fn decide_and_stage<A: Aggregate>(
    loaded: &mut Loaded<A>,
    id: &str,
    decide: impl FnOnce(&A) -> Result<Vec<A::Event>, Rejection>,
    appends: &mut Vec<StreamAppend>,
) -> Result<Result<(), Rejection>, EngineError> {
    let events = match decide(&loaded.state) {
        Ok(events) => events,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if events.is_empty() {
        return Ok(Ok(()));
    }
    let encoded = events.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
    appends.push(StreamAppend {
        stream: StreamId::new(A::TYPE, id),
        expected_sequence: loaded.sequence,
        events: encoded,
    });
    loaded.sequence += events.len() as u64;
    for event in events {
        loaded.state.apply(event);
    }
    Ok(Ok(()))
}

pub struct Ledger {
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    accounts: Repository<Account>,
    instruments: Repository<Instrument>,
    days: Repository<ClearingDay>,
    /// Accounts opened by the batch being decided, not yet in the store.
    batch_new_accounts: BTreeSet<String>,
    clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl Ledger {
    pub fn new(store: Arc<dyn EventStore>, rules: Arc<MarketRules>) -> Self {
        Self::with_cache(store, rules, DEFAULT_CACHE_AGGREGATES)
    }

    pub fn with_cache(store: Arc<dyn EventStore>, rules: Arc<MarketRules>, cache_aggregates: usize) -> Self {
        let capacity = NonZeroUsize::new(cache_aggregates.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            store,
            rules,
            accounts: Repository::new(capacity),
            instruments: Repository::new(capacity),
            days: Repository::new(capacity),
            batch_new_accounts: BTreeSet::new(),
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_execute(batch).await {
                Err(EngineError::Store(conflict @ (StoreError::Conflict { .. } | StoreError::DuplicateCommand(_)))) => {
                    // Another writer moved our streams or answered one of our command ids:
                    // forget all cached state and decide the batch again.
                    self.clear_cache();
                    if attempt > MAX_CONFLICT_RETRIES {
                        return Err(EngineError::Contention(conflict));
                    }
                }
                other => return other,
            }
        }
    }

    fn clear_cache(&mut self) {
        self.accounts.cache.clear();
        self.instruments.cache.clear();
        self.days.cache.clear();
    }

    async fn try_execute(&mut self, batch: &[Submission]) -> Result<Vec<CommandResult>, EngineError> {
        let ids: Vec<String> = batch.iter().map(|s| s.command_id.clone()).collect();
        let seen_before = self.store.find_outcomes(&ids).await?;
        self.batch_new_accounts.clear();
        let decided = self.decide_batch(batch, &seen_before).await;
        let (records, answers) = match decided {
            Ok(decided) => decided,
            Err(e) => {
                self.drop_working_sets();
                return Err(e);
            }
        };
        let stored = match self.store.append(&records).await {
            Ok(stored) => stored,
            Err(e) => {
                self.drop_working_sets();
                return Err(e.into());
            }
        };
        self.accounts.commit_working_set();
        self.instruments.commit_working_set();
        self.days.commit_working_set();
        let mut stored = stored.into_iter();
        let results = answers
            .into_iter()
            .map(|answer| match answer {
                Answer::Decided => {
                    let outcome = stored.next().expect("one stored outcome per decided command");
                    CommandResult::from_stored(&outcome)
                }
                Answer::Duplicate(first) => CommandResult::duplicate_of(&first),
            })
            .collect();
        assert!(stored.next().is_none(), "every stored outcome was answered");
        Ok(results)
    }

    fn drop_working_sets(&mut self) {
        self.accounts.drop_working_set();
        self.instruments.drop_working_set();
        self.days.drop_working_set();
    }

    async fn decide_batch(
        &mut self,
        batch: &[Submission],
        seen_before: &HashMap<String, StoredOutcome>,
    ) -> Result<(Vec<CommandRecord>, Vec<Answer>), EngineError> {
        let mut records: Vec<CommandRecord> = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        let mut decided_in_batch: HashMap<&str, StoredOutcome> = HashMap::new();
        for submission in batch {
            let command_id = submission.command_id.as_str();
            if let Some(first) = seen_before.get(command_id).or_else(|| decided_in_batch.get(command_id)) {
                answers.push(Answer::Duplicate(first.clone()));
                continue;
            }
            let metadata = EventMetadata {
                command_id: command_id.to_owned(),
                correlation_id: submission
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| command_id.to_owned()),
                causation_id: command_id.to_owned(),
                actor: submission.actor.clone(),
                recorded_at: (self.clock)(),
            };
            let account_id = submission.command.account_id().map(|id| id.as_str().to_owned());
            let mut appends = Vec::new();
            let decision = self.decide(&submission.command, &mut appends).await?;
            let record = match decision {
                Ok(()) => CommandRecord {
                    metadata,
                    status: OutcomeStatus::Accepted,
                    code: None,
                    message: None,
                    account_id,
                    appends,
                },
                Err(rejection) => {
                    assert!(appends.is_empty(), "a refused command stages no event");
                    CommandRecord {
                        metadata,
                        status: OutcomeStatus::Rejected,
                        code: Some(rejection.code.as_str().to_owned()),
                        message: Some(rejection.message),
                        account_id,
                        appends,
                    }
                }
            };
            decided_in_batch.insert(command_id, pending_outcome(&record));
            records.push(record);
            answers.push(Answer::Decided);
        }
        Ok((records, answers))
    }

    /// Routes one command to its aggregate(s). The outer error is a failure of
    /// the machinery; the inner one is the business answer.
    async fn decide(
        &mut self,
        command: &LedgerCommand,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Result<(), Rejection>, EngineError> {
        let rules = Arc::clone(&self.rules);
        let store = Arc::clone(&self.store);
        let store = store.as_ref();
        match command.clone() {
            LedgerCommand::ListInstrument {
                instrument,
                name,
                board,
                risk_level,
            } => {
                let info = ledger_domain::InstrumentInfo {
                    code: instrument,
                    name,
                    board,
                    risk_level,
                };
                let id = info.code.to_string();
                let loaded = self.instruments.load(store, &id).await?;
                decide_and_stage(
                    loaded,
                    &id,
                    |i| i.decide(InstrumentCommand::List(info), &rules),
                    appends,
                )
            }
            LedgerCommand::SetPrevClose {
                instrument,
                trade_date,
                price,
            } => {
                let day_closed = self.day_is_closed(trade_date).await?;
                let id = instrument.to_string();
                let loaded = self.instruments.load(store, &id).await?;
                let command = InstrumentCommand::SetPrevClose {
                    trade_date,
                    price,
                    day_closed,
                };
                decide_and_stage(loaded, &id, |i| i.decide(command, &rules), appends)
            }
            LedgerCommand::OpenAccount {
                account_id,
                customer_name,
                id_number,
                risk_level,
            } => {
                let id = account_id.to_string();
                let command = AccountCommand::Open {
                    account_id,
                    customer_name,
                    id_number,
                    risk_level,
                };
                let decision = self.decide_account(&id, command, appends).await?;
                if decision.is_ok() {
                    self.batch_new_accounts.insert(id);
                }
                Ok(decision)
            }
            LedgerCommand::Deposit {
                account_id,
                amount_cny,
                bank_ref,
            } => {
                self.decide_account(
                    account_id.as_str(),
                    AccountCommand::Deposit { amount_cny, bank_ref },
                    appends,
                )
                .await
            }
            LedgerCommand::Withdraw {
                account_id,
                amount_cny,
                bank_ref,
            } => {
                self.decide_account(
                    account_id.as_str(),
                    AccountCommand::Withdraw { amount_cny, bank_ref },
                    appends,
                )
                .await
            }
            LedgerCommand::ConfirmWithdrawal { account_id, bank_ref } => {
                self.decide_account(
                    account_id.as_str(),
                    AccountCommand::ConfirmWithdrawal { bank_ref },
                    appends,
                )
                .await
            }
            LedgerCommand::FailWithdrawal { account_id, bank_ref } => {
                self.decide_account(
                    account_id.as_str(),
                    AccountCommand::FailWithdrawal { bank_ref },
                    appends,
                )
                .await
            }
            LedgerCommand::PlaceOrder {
                account_id,
                order_id,
                instrument,
                side,
                quantity,
                price,
                trade_date,
            } => {
                let market = self.market_snapshot(&instrument, trade_date).await?;
                let order = PlaceOrder {
                    order_id,
                    instrument,
                    side,
                    quantity,
                    price,
                    trade_date,
                    market,
                };
                self.decide_account(account_id.as_str(), AccountCommand::PlaceOrder(order), appends)
                    .await
            }
            LedgerCommand::RejectOrder {
                account_id,
                order_id,
                reason,
            } => {
                self.decide_account(
                    account_id.as_str(),
                    AccountCommand::RejectOrder { order_id, reason },
                    appends,
                )
                .await
            }
            LedgerCommand::Fill {
                account_id,
                order_id,
                exec_id,
                quantity,
                price,
            } => {
                let command = AccountCommand::BookFill {
                    order_id,
                    exec_id,
                    quantity,
                    price,
                };
                self.decide_account(account_id.as_str(), command, appends).await
            }
            LedgerCommand::CancelOrder { account_id, order_id } => {
                self.decide_account(account_id.as_str(), AccountCommand::RequestCancel { order_id }, appends)
                    .await
            }
            LedgerCommand::ConfirmCancel { account_id, order_id } => {
                self.decide_account(account_id.as_str(), AccountCommand::ConfirmCancel { order_id }, appends)
                    .await
            }
            LedgerCommand::FreezeAccount { account_id, reason } => {
                self.decide_account(account_id.as_str(), AccountCommand::Freeze { reason }, appends)
                    .await
            }
            LedgerCommand::UnfreezeAccount { account_id, reason } => {
                self.decide_account(account_id.as_str(), AccountCommand::Unfreeze { reason }, appends)
                    .await
            }
            LedgerCommand::EndOfDay { trade_date } => {
                let day = ClearingDayCommand::Close { trade_date };
                self.decide_day_then_accounts(trade_date, day, AccountCommand::ExpireOrders { trade_date }, appends)
                    .await
            }
            LedgerCommand::Settle { trade_date } => {
                let day = ClearingDayCommand::Settle { trade_date };
                self.decide_day_then_accounts(trade_date, day, AccountCommand::SettleTrades { trade_date }, appends)
                    .await
            }
        }
    }

    async fn decide_account(
        &mut self,
        account_id: &str,
        command: AccountCommand,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Result<(), Rejection>, EngineError> {
        let rules = Arc::clone(&self.rules);
        let store = Arc::clone(&self.store);
        let loaded = self.accounts.load(store.as_ref(), account_id).await?;
        decide_and_stage(loaded, account_id, |a| a.decide(command, &rules), appends)
    }

    /// The end-of-day process: the clearing day changes state, then every
    /// account does its part. All of it is one command, committed atomically.
    async fn decide_day_then_accounts(
        &mut self,
        trade_date: NaiveDate,
        day_command: ClearingDayCommand,
        account_command: AccountCommand,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Result<(), Rejection>, EngineError> {
        let store = Arc::clone(&self.store);
        let id = trade_date.to_string();
        let closing = matches!(day_command, ClearingDayCommand::Close { .. });
        let day = self.days.load(store.as_ref(), &id).await?;
        if let Err(rejection) = decide_and_stage(day, &id, |d| d.decide(day_command), appends)? {
            return Ok(Err(rejection));
        }
        let mut account_ids: BTreeSet<String> = store.stream_ids(Account::TYPE).await?.into_iter().collect();
        account_ids.extend(self.batch_new_accounts.iter().cloned());
        for account_id in account_ids {
            let decision = self
                .decide_account(&account_id, account_command.clone(), appends)
                .await?;
            // Expiring and settling are never refused for an open account; a refusal here is a bug.
            assert!(
                decision.is_ok(),
                "end-of-day work refused for {account_id}: {decision:?}"
            );
        }
        if closing {
            // Every order of the day has now expired in every account: the day is cleared.
            let day = self.days.load(store.as_ref(), &id).await?;
            let cleared = decide_and_stage(
                day,
                &id,
                |d| d.decide(ClearingDayCommand::Clear { trade_date }),
                appends,
            )?;
            assert!(cleared.is_ok(), "a day just closed can be cleared: {cleared:?}");
        }
        Ok(Ok(()))
    }

    async fn day_is_closed(&mut self, trade_date: NaiveDate) -> Result<bool, EngineError> {
        let store = Arc::clone(&self.store);
        let day = self.days.load(store.as_ref(), &trade_date.to_string()).await?;
        Ok(day.state.is_closed())
    }

    async fn market_snapshot(
        &mut self,
        instrument: &ledger_domain::ids::InstrumentCode,
        trade_date: NaiveDate,
    ) -> Result<MarketSnapshot, EngineError> {
        let day_closed = self.day_is_closed(trade_date).await?;
        let store = Arc::clone(&self.store);
        let loaded = self.instruments.load(store.as_ref(), instrument.as_str()).await?;
        Ok(MarketSnapshot {
            instrument: loaded.state.info().cloned(),
            prev_close: loaded.state.prev_close(trade_date),
            day_closed,
        })
    }

    /// The current state of an account, from cache or store.
    pub async fn account(&mut self, account_id: &AccountId) -> Result<Option<Account>, EngineError> {
        let store = Arc::clone(&self.store);
        let loaded = self.accounts.load(store.as_ref(), account_id.as_str()).await?;
        let state = loaded.state.customer().is_some().then(|| loaded.state.clone());
        self.accounts.commit_working_set();
        Ok(state)
    }
}

enum Answer {
    /// Decided in this batch: its stored outcome follows in order.
    Decided,
    /// Seen before, in the store or earlier in the batch.
    Duplicate(StoredOutcome),
}

/// The outcome a later duplicate in the same batch sees, before positions are known.
fn pending_outcome(record: &CommandRecord) -> StoredOutcome {
    StoredOutcome {
        command_id: record.metadata.command_id.clone(),
        status: record.status,
        code: record.code.clone(),
        message: record.message.clone(),
        account_id: record.account_id.clone(),
        event_count: record.appends.iter().map(|a| a.events.len() as u64).sum(),
        first_position: None,
        last_position: None,
        recorded_at: record.metadata.recorded_at,
    }
}
