//! The auditors' tools.
//!
//! [`verify`] reads the whole log in global order and proves, or names the
//! first place where it fails, that:
//! - positions run 1, 2, 3, … with nothing missing or moved;
//! - every event's `prev_hash` is its predecessor's hash and its `hash` is the
//!   SHA-256 of its canonical bytes (nothing edited, deleted, inserted, reordered);
//! - every stream's sequences run 1, 2, 3, …;
//!   The hash is checked over the payload's stored bytes before they are decoded, so
//!   bytes that are no longer JSON are a broken event at its position, not a failed read;
//! - every event decodes and every aggregate replays, and every account holds
//!   the invariants of DESIGN.md;
//! - the idempotency records agree with the log (no accepted command's events missing);
//! - the read model tables equal a fresh replay (when they are caught up to the head).
//!
//! [`checkpoints`] signs positions and hashes with a key kept apart from the log, and
//! checks them, which catches a history rewritten with a recomputed chain.

pub mod checkpoints;
mod compare;
mod verifier;

use futures_util::future::join;
use ledger_eventstore::{read_raw_towards, EventStore, OutcomeTotals, StoreError, MAX_READ_EVENTS};
use ledger_projections::ProjectionError;
use serde::Serialize;

use verifier::Verifier;

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
    /// The payload does not decode: not JSON, or not its event type and version.
    Undecodable,
    /// A column of the row does not read as its type (text that is not UTF-8, a time
    /// that is not a time): the row was written outside the ledger.
    Unreadable,
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

/// Verifies the whole log; `on_progress` is told how many events were read so far.
pub async fn verify(store: &dyn EventStore, on_progress: impl FnMut(u64)) -> Result<VerifyReport, VerifyError> {
    let mut verifier = Verifier::new();
    // The idempotency records first, the head second: every event they claim is then at
    // or below the head, even while commands are still being appended.
    let totals = store.outcome_totals().await?;
    let head = store.head_position().await?;
    let events_claimed = read_log(store, &mut verifier, &totals, head, on_progress).await?;
    for (account, why) in verifier.accounts.invariant_violations() {
        verifier.problem(ProblemKind::InvariantBroken, None, format!("account {account}: {why}"));
    }
    check_outcomes(&mut verifier, &totals, events_claimed);
    let expected_rows = verifier.expected_rows.take();
    let projections_checked = compare::compare_if_caught_up(store, &mut verifier, expected_rows.as_ref()).await?;
    Ok(verifier.into_report(projections_checked))
}

/// Reads the log up to `head`, checking and replaying every event; returns how many
/// events are at or below the highest position the accepted commands claim. The next
/// page is read while this one is checked: the database's reading and the replay's
/// hashing and decoding run side by side, on two cores where there are two.
async fn read_log(
    store: &dyn EventStore,
    verifier: &mut Verifier,
    totals: &OutcomeTotals,
    head: u64,
    mut on_progress: impl FnMut(u64),
) -> Result<u64, VerifyError> {
    let mut events_claimed = 0;
    let mut rows = read_raw_towards(store, 0, head, VERIFY_BATCH_EVENTS).await?;
    loop {
        let Some(last) = rows.last() else {
            return Ok(events_claimed);
        };
        let after = match last {
            Ok(event) => event.global_position,
            Err(unreadable) => unreadable.global_position,
        };
        let next_page = async {
            if after >= head {
                return Ok(Vec::new());
            }
            read_raw_towards(store, after, head, VERIFY_BATCH_EVENTS).await
        };
        let check_page = async {
            for row in rows {
                let position = row.as_ref().map_or_else(|u| u.global_position, |e| e.global_position);
                if position <= totals.highest_position {
                    events_claimed += 1;
                }
                verifier.check(row);
            }
        };
        let (next, ()) = join(next_page, check_page).await;
        on_progress(verifier.events);
        rows = next?;
    }
}

/// The idempotency records must not claim events the log does not hold.
fn check_outcomes(verifier: &mut Verifier, totals: &OutcomeTotals, events_claimed: u64) {
    if totals.events_claimed != events_claimed || totals.highest_position > verifier.previous_position {
        verifier.problem(
            ProblemKind::OutcomesDisagree,
            Some(verifier.previous_position + 1),
            format!(
                "accepted commands account for {} events up to position {}, the log holds {} up to there: events were removed",
                totals.events_claimed, totals.highest_position, events_claimed
            ),
        );
    }
}
