//! The auditors' tools.
//!
//! [`verify`] reads the whole log in global order and proves, or names the
//! first place where it fails, that:
//! - positions run 1, 2, 3, … with nothing missing or moved;
//! - every event's `prev_hash` is its predecessor's hash and its `hash` is the
//!   SHA-256 of its canonical bytes (nothing edited, deleted, inserted, reordered);
//! - every stream's sequences run 1, 2, 3, …;
//! - every event decodes and every aggregate replays, and every account holds
//!   the invariants of DESIGN.md;
//! - the idempotency records agree with the log (no accepted command's events missing);
//! - the read model tables equal a fresh replay (when they are caught up to the head).

use std::collections::{BTreeMap, HashMap};

use cqrs_es::Aggregate;
use ledger_domain::account::AccountEvent;
use ledger_domain::journal::postings;
use ledger_domain::{ClearingDay, Instrument};
use ledger_eventstore::chain::{ChainedFields, GENESIS_HASH};
use ledger_eventstore::codec::decode;
use ledger_eventstore::{read_towards, EventStore, RecordedEvent, StoreError, MAX_READ_EVENTS};
use ledger_projections::{tables, AccountsView, ProjectionError};
use rust_decimal::Decimal;
use serde::Serialize;

/// Events read per round trip.
pub const VERIFY_BATCH_EVENTS: usize = MAX_READ_EVENTS;
/// Problems listed in a report; counting goes on past it.
pub const MAX_REPORTED_PROBLEMS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A position is missing or out of order: an event was deleted or moved.
    PositionGap,
    /// `prev_hash` is not the predecessor's hash: the chain was cut or rewired.
    ChainBroken,
    /// The event's content does not hash to its stored hash: it was edited.
    HashMismatch,
    /// A stream's sequence is not its previous one plus one.
    SequenceGap,
    /// The payload does not decode as its event type and version.
    Undecodable,
    /// An account's state breaks an invariant of DESIGN.md.
    InvariantBroken,
    /// The idempotency records claim events the log does not hold.
    OutcomesDisagree,
    /// A read model table differs from a fresh replay of the log.
    ProjectionDiffers,
    /// The journal's postings do not sum to zero (invariant 4).
    JournalUnbalanced,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The global position where it shows, when there is one.
    pub position: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub streams: u64,
    pub accounts: u64,
    /// Hash of the last event: record it elsewhere to anchor the chain.
    pub head_hash: String,
    pub problem_count: u64,
    /// Whether the read model tables were compared with the replay (they are when
    /// their checkpoint is the verified head and every suitability refusal has had its
    /// alert pass; run `ledger projections run` first).
    pub projections_checked: bool,
    /// The first position where anything breaks.
    pub first_broken_position: Option<u64>,
    /// Up to `MAX_REPORTED_PROBLEMS`, in log order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem_count == 0
    }
}

struct Verifier {
    previous_position: u64,
    previous_hash: String,
    sequences: HashMap<(String, String), u64>,
    accounts: AccountsView,
    instruments: HashMap<String, Instrument>,
    days: HashMap<String, ClearingDay>,
    /// Per ledger account, the sum of the postings the replayed events make.
    trial_balance: BTreeMap<String, Decimal>,
    events: u64,
    report_problems: Vec<Problem>,
    problem_count: u64,
    first_broken_position: Option<u64>,
}

impl Verifier {
    fn problem(&mut self, kind: ProblemKind, position: Option<u64>, detail: String) {
        self.problem_count += 1;
        if let Some(position) = position {
            self.first_broken_position = Some(self.first_broken_position.map_or(position, |p| p.min(position)));
        }
        if self.report_problems.len() < MAX_REPORTED_PROBLEMS {
            self.report_problems.push(Problem { kind, position, detail });
        }
    }

    fn check(&mut self, event: &RecordedEvent) {
        let position = event.global_position;
        self.events += 1;
        if position != self.previous_position + 1 {
            self.problem(
                ProblemKind::PositionGap,
                Some(position),
                format!(
                    "position {position} follows {}: the log is not contiguous",
                    self.previous_position
                ),
            );
        }
        if event.prev_hash != self.previous_hash {
            self.problem(
                ProblemKind::ChainBroken,
                Some(position),
                format!(
                    "prev_hash {} is not the previous event's hash {}",
                    event.prev_hash, self.previous_hash
                ),
            );
        }
        let recomputed = ChainedFields {
            global_position: position,
            stream: &event.stream,
            sequence: event.sequence,
            event_type: &event.event_type,
            event_version: event.event_version,
            payload: &event.payload,
            metadata: &event.metadata,
            prev_hash: &event.prev_hash,
        }
        .hash();
        if recomputed != event.hash {
            self.problem(
                ProblemKind::HashMismatch,
                Some(position),
                format!(
                    "stored hash {} but the content hashes to {recomputed}: the event was edited",
                    event.hash
                ),
            );
        }
        let key = (event.stream.aggregate_type.clone(), event.stream.aggregate_id.clone());
        let last_sequence = self.sequences.get(&key).copied().unwrap_or(0);
        if event.sequence != last_sequence + 1 {
            self.problem(
                ProblemKind::SequenceGap,
                Some(position),
                format!("{} has sequence {} after {last_sequence}", event.stream, event.sequence),
            );
        }
        self.sequences.insert(key, event.sequence);
        self.previous_position = position;
        self.previous_hash = event.hash.clone();
        self.replay(event);
    }

    fn replay(&mut self, event: &RecordedEvent) {
        let id = event.stream.aggregate_id.clone();
        let decoded = match event.stream.aggregate_type.as_str() {
            ledger_domain::Account::TYPE => match self.accounts.apply(event).and_then(|()| {
                let decoded: AccountEvent = decode(event)?;
                for posting in postings(&event.stream.aggregate_id, &decoded) {
                    *self.trial_balance.entry(posting.account).or_default() += posting.amount_cny;
                }
                Ok(())
            }) {
                Ok(()) => Ok(()),
                Err(ProjectionError::Decode(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Instrument::TYPE => decode(event)
                .map(|e| self.instruments.entry(id).or_default().apply(e))
                .map_err(|e| e.to_string()),
            ClearingDay::TYPE => decode(event)
                .map(|e| self.days.entry(id).or_default().apply(e))
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown aggregate type {other:?}")),
        };
        if let Err(reason) = decoded {
            self.problem(ProblemKind::Undecodable, Some(event.global_position), reason);
        }
    }
}

/// Verifies the whole log; `on_progress` is told how many events were read so far.
pub async fn verify(store: &dyn EventStore, mut on_progress: impl FnMut(u64)) -> Result<VerifyReport, VerifyError> {
    let mut verifier = Verifier {
        previous_position: 0,
        previous_hash: GENESIS_HASH.to_owned(),
        sequences: HashMap::new(),
        accounts: AccountsView::default(),
        instruments: HashMap::new(),
        days: HashMap::new(),
        trial_balance: BTreeMap::new(),
        events: 0,
        report_problems: Vec::new(),
        problem_count: 0,
        first_broken_position: None,
    };
    // The idempotency records first, the head second: every event they claim is then at
    // or below the head, even while commands are still being appended.
    let totals = store.outcome_totals().await?;
    let head = store.head_position().await?;
    let mut events_claimed_range = 0;
    let mut expected_rows = Some(tables::ExpectedRows::default());
    let mut after = 0;
    loop {
        let batch = read_towards(store, after, head, VERIFY_BATCH_EVENTS).await?;
        let Some(last) = batch.last() else { break };
        after = last.global_position;
        // An event that does not decode is reported by `check`; the tables then cannot be
        // derived, so they are not compared.
        if expected_rows.as_mut().is_some_and(|rows| rows.apply(&batch).is_err()) {
            expected_rows = None;
        }
        for event in &batch {
            verifier.check(event);
            if event.global_position <= totals.highest_position {
                events_claimed_range += 1;
            }
        }
        on_progress(verifier.events);
    }
    for (account, why) in verifier.accounts.invariant_violations() {
        verifier.problem(ProblemKind::InvariantBroken, None, format!("account {account}: {why}"));
    }
    if totals.events_claimed != events_claimed_range || totals.highest_position > verifier.previous_position {
        verifier.problem(
            ProblemKind::OutcomesDisagree,
            Some(verifier.previous_position + 1),
            format!(
                "accepted commands account for {} events up to position {}, the log holds {} up to there: events were removed",
                totals.events_claimed, totals.highest_position, events_claimed_range
            ),
        );
    }
    // Tables behind the log, or refusals not alerted yet, are late, not wrong: not compared.
    let projections_checked = tables::accounts_checkpoint(store).await? == verifier.previous_position
        && tables::refusal_alerts_caught_up(store).await?;
    if projections_checked {
        let tables = (
            tables::read_balances(store).await?,
            tables::read_positions(store).await?,
        );
        let replayed = (verifier.accounts.balances(), verifier.accounts.positions());
        if tables.0 != replayed.0 {
            let first = tables
                .0
                .iter()
                .zip(&replayed.0)
                .find(|(t, r)| t != r)
                .map(|(t, _)| t.account_id.clone());
            verifier.problem(
                ProblemKind::ProjectionDiffers,
                None,
                format!("account_balances differs from the replay (first at account {first:?})"),
            );
        }
        if tables.1 != replayed.1 {
            verifier.problem(
                ProblemKind::ProjectionDiffers,
                None,
                "positions differs from the replay".into(),
            );
        }
        let differences = match &expected_rows {
            Some(expected) => tables::table_differences(store, expected).await?,
            None => Vec::new(),
        };
        for difference in differences {
            verifier.problem(
                ProblemKind::ProjectionDiffers,
                None,
                format!(
                    "{} differs from the replay ({} rows, {} expected): rebuild it with `ledger projections rebuild`",
                    difference.table.name(),
                    difference.rows,
                    difference.expected_rows
                ),
            );
        }
        let unmatched = tables::unmatched_refusal_alerts(store).await?;
        if unmatched > 0 {
            verifier.problem(
                ProblemKind::ProjectionDiffers,
                None,
                format!(
                    "refused-suitability alerts do not match the recorded refusals one for one ({unmatched} unmatched)"
                ),
            );
        }
        let journal = tables::read_trial_balance(store).await?;
        let total: Decimal = journal.values().copied().sum();
        if !total.is_zero() {
            verifier.problem(
                ProblemKind::JournalUnbalanced,
                None,
                format!("journal_entries sum to {total}, not zero"),
            );
        }
        let replayed_journal: BTreeMap<String, Decimal> = verifier
            .trial_balance
            .iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let table_journal: BTreeMap<String, Decimal> = journal.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        if table_journal != replayed_journal {
            verifier.problem(
                ProblemKind::ProjectionDiffers,
                None,
                "journal_entries differs from the replay".into(),
            );
        }
    }
    Ok(VerifyReport {
        projections_checked,
        events: verifier.events,
        streams: verifier.sequences.len() as u64,
        accounts: verifier.accounts.account_count() as u64,
        head_hash: verifier.previous_hash,
        problem_count: verifier.problem_count,
        first_broken_position: verifier.first_broken_position,
        problems: verifier.report_problems,
    })
}
