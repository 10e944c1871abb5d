//! A store that fails on purpose, for simulations: [`FaultyStore`] wraps any
//! [`EventStore`] and, whenever the test's plan says so, fails a call the way a
//! lost database connection does.
//!
//! An append can fail before its commit (nothing was written) or after it (the
//! batch is durable, but the caller only sees the error, as when the connection
//! drops while the commit's acknowledgement is on its way). A read fails without
//! effect. The caller cannot tell the two append faults apart, which is the
//! point: a client that resubmits the same command ids must end where a
//! fault-free run ends either way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ledger_eventstore::{
    AppendLock, Atomicity, CommandRecord, Database, EventStore, OutcomeTotals, RawEvent, RecordedEvent, StoreError,
    StoredOutcome, StreamId, UnreadableEvent,
};

/// The sentence of every injected error, so that a test can tell it from a real one.
pub const INJECTED_FAULT: &str = "injected fault: the connection to the database was lost";

/// Which call of the store the plan is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreCall {
    Append,
    FindOutcomes,
    LoadStream,
    StreamIds,
    HeadPosition,
    ReadAfter,
}

/// What the plan does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The call goes through.
    Pass,
    /// The call fails before it reaches the database: an append writes nothing.
    BeforeCommit,
    /// The call is carried out, then fails: an append is committed, yet the
    /// caller sees an error. On a read it is the same as `BeforeCommit`.
    AfterCommit,
}

/// Decides, call by call, which fault (if any) to inject. Called in the order
/// the store is called, so a deterministic caller gets a deterministic schedule.
pub type FaultPlan = Box<dyn FnMut(StoreCall) -> Fault + Send>;

/// The wrapped store and the plan that breaks it.
pub struct FaultyStore {
    inner: Arc<dyn EventStore>,
    plan: Mutex<FaultPlan>,
    injected: Mutex<HashMap<(StoreCall, Fault), u64>>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn EventStore>, plan: FaultPlan) -> Self {
        Self {
            inner,
            plan: Mutex::new(plan),
            injected: Mutex::new(HashMap::new()),
        }
    }

    /// The store without faults, for the checks that look at what was really written.
    pub fn inner(&self) -> &Arc<dyn EventStore> {
        &self.inner
    }

    /// How many faults of each kind were injected so far, by call.
    pub fn injected(&self) -> HashMap<(StoreCall, Fault), u64> {
        self.injected.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether `error` is one this store injected.
    pub fn is_injected(error: &StoreError) -> bool {
        matches!(error, StoreError::ConnectionLost(_)) && error.to_string().contains(INJECTED_FAULT)
    }

    fn plan(&self, call: StoreCall) -> Fault {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        (*plan)(call)
    }

    fn injection(&self, call: StoreCall, fault: Fault) -> StoreError {
        *self
            .injected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((call, fault))
            .or_default() += 1;
        let lost = std::io::Error::new(std::io::ErrorKind::ConnectionReset, INJECTED_FAULT);
        // Sorted by the store's own rule, as a real lost connection is.
        StoreError::from(sqlx::Error::Io(lost))
    }

    /// Runs a read under the plan: a fault of either kind fails it.
    async fn read<T>(
        &self,
        call: StoreCall,
        read: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.plan(call) {
            Fault::Pass => read.await,
            Fault::BeforeCommit => Err(self.injection(call, Fault::BeforeCommit)),
            Fault::AfterCommit => {
                read.await?;
                Err(self.injection(call, Fault::AfterCommit))
            }
        }
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn append_batch(
        &self,
        commands: &[CommandRecord],
        atomicity: Atomicity,
    ) -> Result<Vec<Result<StoredOutcome, StoreError>>, StoreError> {
        match self.plan(StoreCall::Append) {
            Fault::Pass => self.inner.append_batch(commands, atomicity).await,
            Fault::BeforeCommit => Err(self.injection(StoreCall::Append, Fault::BeforeCommit)),
            Fault::AfterCommit => {
                // A real failure of the append itself is returned as it is: nothing was injected.
                self.inner.append_batch(commands, atomicity).await?;
                Err(self.injection(StoreCall::Append, Fault::AfterCommit))
            }
        }
    }

    /// Passed through: the simulation has one writer, so its appends never conflict.
    async fn lock_appends(&self) -> Result<Box<dyn AppendLock>, StoreError> {
        self.inner.lock_appends().await
    }

    async fn load_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(StoreCall::LoadStream, self.inner.load_stream(stream)).await
    }

    async fn read_after(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(StoreCall::ReadAfter, self.inner.read_after(after_position, limit))
            .await
    }

    /// Passed through under the same plan as `read_after`, so verify sees the stored bytes.
    async fn read_raw_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
        self.read(StoreCall::ReadAfter, self.inner.read_raw_after(after_position, limit))
            .await
    }

    async fn find_outcomes(&self, command_ids: &[String]) -> Result<HashMap<String, StoredOutcome>, StoreError> {
        self.read(StoreCall::FindOutcomes, self.inner.find_outcomes(command_ids))
            .await
    }

    async fn refusals_naming_account(
        &self,
        code: &str,
        after_command_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredOutcome>, StoreError> {
        self.inner.refusals_naming_account(code, after_command_id, limit).await
    }

    async fn count_refusals_naming_account(&self, code: &str) -> Result<u64, StoreError> {
        self.inner.count_refusals_naming_account(code).await
    }

    async fn stream_ids(&self, aggregate_type: &str) -> Result<Vec<String>, StoreError> {
        self.read(StoreCall::StreamIds, self.inner.stream_ids(aggregate_type))
            .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.read(StoreCall::HeadPosition, self.inner.head_position()).await
    }

    async fn outcome_totals(&self) -> Result<OutcomeTotals, StoreError> {
        self.inner.outcome_totals().await
    }

    fn database(&self) -> Database {
        self.inner.database()
    }

    async fn watch_appends(&self) -> Result<Box<dyn ledger_eventstore::appended::AppendWatch>, StoreError> {
        self.inner.watch_appends().await
    }

    async fn import(
        &self,
        events: &[ledger_eventstore::RecordedEvent],
        outcomes: &[ledger_eventstore::StoredOutcome],
    ) -> Result<(), StoreError> {
        self.inner.import(events, outcomes).await
    }
}
