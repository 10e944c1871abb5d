//! The replay of the log: the chain, positions and sequences checked event by event,
//! every aggregate rebuilt, and the problems found, counted and listed.

use std::collections::{BTreeMap, HashMap, HashSet};

use cqrs_es::Aggregate;
use ledger_domain::account::AccountEvent;
use ledger_domain::journal::postings;
use ledger_domain::{ClearingDay, ClearingDayEvent, Instrument, InstrumentEvent};
use ledger_eventstore::chain::GENESIS_HASH;
use ledger_eventstore::codec::decode_raw;
use ledger_eventstore::{RawEvent, UnreadableEvent};
use ledger_projections::tables::ExpectedRows;
use ledger_projections::AccountsView;
use rust_decimal::Decimal;

use crate::{Problem, ProblemKind, VerifyReport, MAX_REPORTED_PROBLEMS};

/// Everything the replay has seen so far.
pub(crate) struct Verifier {
    pub(crate) previous_position: u64,
    pub(crate) previous_hash: String,
    pub(crate) sequences: HashMap<(String, String), u64>,
    /// Streams with a broken event: none of their events from there on is replayed.
    /// `apply` trusts every event it is given, so an edited one must never reach it.
    broken_streams: HashSet<(String, String)>,
    /// Set by a row that does not read: its stream is unknown, so nothing is replayed after it.
    replay_stopped: bool,
    pub(crate) accounts: AccountsView,
    /// The rows the read model tables should hold; `None` once an event was not replayed,
    /// since the tables then cannot be derived.
    pub(crate) expected_rows: Option<ExpectedRows>,
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
            broken_streams: HashSet::new(),
            replay_stopped: false,
            accounts: AccountsView::default(),
            expected_rows: Some(ExpectedRows::default()),
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

    /// Checks one row as stored: its place in the log and the chain over its stored
    /// bytes first, then its stream, then, if nothing of it or of its stream so far is
    /// broken, its replay, decoded from those bytes. What stopped a replay is reported
    /// here, and the tables are then not derived.
    pub(crate) fn check(&mut self, row: Result<RawEvent, UnreadableEvent>) {
        let raw = match row {
            Ok(raw) => raw,
            Err(unreadable) => {
                self.check_place(unreadable.global_position);
                self.problem(
                    ProblemKind::Unreadable,
                    Some(unreadable.global_position),
                    format!("the row does not read: {}", unreadable.reason),
                );
                self.previous_hash = unreadable.hash;
                self.replay_stopped = true;
                self.expected_rows = None;
                return;
            }
        };
        let problems_before = self.problem_count;
        let position = raw.global_position;
        self.check_place(position);
        self.check_links(&raw);
        self.check_sequence(&raw);
        let stream = (raw.stream.aggregate_type.clone(), raw.stream.aggregate_id.clone());
        let intact = self.problem_count == problems_before && !self.broken_streams.contains(&stream);
        let replayed = if intact && !self.replay_stopped {
            self.replay(&raw)
        } else {
            // Not replayed, but still said whether it decodes as its type.
            if let Err(reason) = decodes(&raw) {
                self.problem(ProblemKind::Undecodable, Some(position), reason);
            }
            false
        };
        self.previous_hash = raw.hash;
        if !replayed {
            self.broken_streams.insert(stream);
            self.expected_rows = None;
        }
    }

    /// The position follows the previous one.
    fn check_place(&mut self, position: u64) {
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
        self.previous_position = position;
    }

    /// `prev_hash` is the previous event's hash, and the stored bytes hash to `hash`.
    fn check_links(&mut self, raw: &RawEvent) {
        let position = raw.global_position;
        if raw.prev_hash != self.previous_hash {
            self.problem(
                ProblemKind::ChainBroken,
                Some(position),
                format!(
                    "prev_hash {} is not the previous event's hash {}",
                    raw.prev_hash, self.previous_hash
                ),
            );
        }
        let recomputed = raw.chained_fields().hash();
        if recomputed != raw.hash {
            self.problem(
                ProblemKind::HashMismatch,
                Some(position),
                format!(
                    "stored hash {} but the content hashes to {recomputed}: the event was edited",
                    raw.hash
                ),
            );
        }
    }

    /// The stream's sequence goes on from its last event.
    fn check_sequence(&mut self, event: &RawEvent) {
        let key = (event.stream.aggregate_type.clone(), event.stream.aggregate_id.clone());
        let last_sequence = self.sequences.get(&key).copied().unwrap_or(0);
        if event.sequence != last_sequence + 1 {
            self.problem(
                ProblemKind::SequenceGap,
                Some(event.global_position),
                format!("{} has sequence {} after {last_sequence}", event.stream, event.sequence),
            );
        }
        self.sequences.insert(key, event.sequence);
    }

    /// Applies the event to its aggregate; `false` (reported) when it does not decode as one.
    fn replay(&mut self, raw: &RawEvent) -> bool {
        let id = raw.stream.aggregate_id.clone();
        let decoded = match raw.stream.aggregate_type.as_str() {
            ledger_domain::Account::TYPE => self.replay_account_event(raw),
            Instrument::TYPE => decode_raw(raw)
                .map(|e| self.instruments.entry(id).or_default().apply(e))
                .map_err(|e| e.to_string()),
            ClearingDay::TYPE => decode_raw(raw)
                .map(|e| self.days.entry(id).or_default().apply(e))
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown aggregate type {other:?}")),
        };
        match decoded {
            Ok(()) => true,
            Err(reason) => {
                self.problem(ProblemKind::Undecodable, Some(raw.global_position), reason);
                false
            }
        }
    }

    /// An account's event, decoded once: its postings, the rows it adds to the tables,
    /// then its account's state.
    fn replay_account_event(&mut self, raw: &RawEvent) -> Result<(), String> {
        let account_id = &raw.stream.aggregate_id;
        let event: AccountEvent = decode_raw(raw).map_err(|e| e.to_string())?;
        for posting in postings(account_id, &event) {
            *self.trial_balance.entry(posting.account).or_default() += posting.amount_cny;
        }
        if let Some(rows) = self.expected_rows.as_mut() {
            rows.add_event(raw, &event);
        }
        // `check` replays an event only at the position after the last one, so it follows
        // every event the view applied.
        self.accounts
            .apply_account_event(raw.global_position, &raw.event_type, account_id, event)
            .map_err(|e| e.to_string())
    }
}

/// Whether the event decodes as an event of its aggregate type, without applying it.
fn decodes(raw: &RawEvent) -> Result<(), String> {
    let decoded = match raw.stream.aggregate_type.as_str() {
        ledger_domain::Account::TYPE => decode_raw::<AccountEvent>(raw).map(drop),
        Instrument::TYPE => decode_raw::<InstrumentEvent>(raw).map(drop),
        ClearingDay::TYPE => decode_raw::<ClearingDayEvent>(raw).map(drop),
        other => return Err(format!("unknown aggregate type {other:?}")),
    };
    decoded.map_err(|e| e.to_string())
}
