//! The replay of the log: the chain, positions and sequences checked event by event,
//! every aggregate rebuilt, and the problems found, counted and listed.

use std::collections::{BTreeMap, HashMap};

use cqrs_es::Aggregate;
use ledger_domain::account::AccountEvent;
use ledger_domain::journal::postings;
use ledger_domain::{ClearingDay, Instrument};
use ledger_eventstore::chain::{ChainedFields, GENESIS_HASH};
use ledger_eventstore::codec::decode;
use ledger_eventstore::RecordedEvent;
use ledger_projections::{AccountsView, ProjectionError};
use rust_decimal::Decimal;

use crate::{Problem, ProblemKind, VerifyReport, MAX_REPORTED_PROBLEMS};

/// Everything the replay has seen so far.
pub(crate) struct Verifier {
    pub(crate) previous_position: u64,
    pub(crate) previous_hash: String,
    pub(crate) sequences: HashMap<(String, String), u64>,
    pub(crate) accounts: AccountsView,
    instruments: HashMap<String, Instrument>,
    days: HashMap<String, ClearingDay>,
    /// Per ledger account, the sum of the postings the replayed events make.
    pub(crate) trial_balance: BTreeMap<String, Decimal>,
    pub(crate) events: u64,
    report_problems: Vec<Problem>,
    problem_count: u64,
    first_broken_position: Option<u64>,
}

impl Verifier {
    pub(crate) fn new() -> Self {
        Verifier {
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
        }
    }

    /// The report of everything checked, the read models compared or not.
    pub(crate) fn into_report(self, projections_checked: bool) -> VerifyReport {
        VerifyReport {
            projections_checked,
            events: self.events,
            streams: self.sequences.len() as u64,
            accounts: self.accounts.account_count() as u64,
            head_hash: self.previous_hash,
            problem_count: self.problem_count,
            first_broken_position: self.first_broken_position,
            problems: self.report_problems,
        }
    }

    /// How many problems are counted so far: a mark for [`Self::forget_problems_since`].
    pub(crate) fn problems_so_far(&self) -> u64 {
        self.problem_count
    }

    /// Forgets the problems found after `mark`, none of which named a position.
    pub(crate) fn forget_problems_since(&mut self, mark: u64) {
        let kept = usize::try_from(mark).unwrap_or(usize::MAX);
        debug_assert!(self.report_problems.iter().skip(kept).all(|p| p.position.is_none()));
        self.problem_count = mark.min(self.problem_count);
        self.report_problems.truncate(kept);
    }

    pub(crate) fn problem(&mut self, kind: ProblemKind, position: Option<u64>, detail: String) {
        self.problem_count += 1;
        if let Some(position) = position {
            self.first_broken_position = Some(self.first_broken_position.map_or(position, |p| p.min(position)));
        }
        if self.report_problems.len() < MAX_REPORTED_PROBLEMS {
            self.report_problems.push(Problem { kind, position, detail });
        }
    }

    pub(crate) fn check(&mut self, event: &RecordedEvent) {
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
