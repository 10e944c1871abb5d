//! Append planning, backend-independent: which commands of a batch can be written
//! (command ids new, stream heads as expected), the sequences and positions their
//! events get, how those are chained, and each command's outcome.

use std::collections::{HashMap, HashSet};

use crate::chain;
use crate::records::{CommandRecord, EventMetadata, NewEvent, OutcomeStatus, StoreError, StoredOutcome, StreamId};
use crate::store::Atomicity;

/// One event of an append, with the sequence it will get.
pub(crate) struct PlannedEvent<'a> {
    /// Index of its command in the append call.
    pub command: usize,
    pub stream: &'a StreamId,
    pub sequence: u64,
    pub event: &'a NewEvent,
}

/// The events to write, in order, and why each refused command was refused.
pub(crate) struct AppendPlan<'a> {
    pub events: Vec<PlannedEvent<'a>>,
    /// One entry per command: `Some` when it cannot be written.
    pub refusals: Vec<Option<StoreError>>,
}

/// Checks every command against the command ids already stored and every stream
/// append against the stream heads (and the commands before it in the batch),
/// and lays the events out in order. Backend-independent.
pub(crate) fn plan_append<'a>(
    commands: &'a [CommandRecord],
    mut heads: HashMap<StreamId, u64>,
    existing_ids: &HashSet<String>,
    atomicity: Atomicity,
) -> Result<AppendPlan<'a>, StoreError> {
    let mut written_ids: HashSet<&str> = HashSet::with_capacity(commands.len());
    let mut plan = AppendPlan {
        events: Vec::new(),
        refusals: Vec::with_capacity(commands.len()),
    };
    for (index, command) in commands.iter().enumerate() {
        assert!(
            command.status == OutcomeStatus::Accepted || command.appends.iter().all(|a| a.events.is_empty()),
            "a rejected command carries no events"
        );
        let command_id = command.metadata.command_id.as_str();
        let mut refusal = None;
        if existing_ids.contains(command_id) || written_ids.contains(command_id) {
            refusal = Some(StoreError::DuplicateCommand(command_id.to_owned()));
        }
        let mut tentative_heads: HashMap<&StreamId, u64> = HashMap::new();
        let mut events = Vec::new();
        for append in &command.appends {
            if refusal.is_some() {
                break;
            }
            let head = tentative_heads
                .get(&append.stream)
                .or_else(|| heads.get(&append.stream))
                .copied()
                .unwrap_or(0);
            if head != append.expected_sequence {
                refusal = Some(StoreError::Conflict {
                    stream: append.stream.clone(),
                    expected: append.expected_sequence,
                    actual: head,
                });
                break;
            }
            let mut sequence = head;
            for event in &append.events {
                sequence += 1;
                events.push(PlannedEvent {
                    command: index,
                    stream: &append.stream,
                    sequence,
                    event,
                });
            }
            tentative_heads.insert(&append.stream, sequence);
        }
        match refusal {
            Some(refusal) if atomicity == Atomicity::AllOrNothing => return Err(refusal),
            Some(refusal) => plan.refusals.push(Some(refusal)),
            None => {
                for (stream, sequence) in tentative_heads {
                    heads.insert(stream.clone(), sequence);
                }
                written_ids.insert(command_id);
                plan.events.extend(events);
                plan.refusals.push(None);
            }
        }
    }
    Ok(plan)
}

/// Each command's outcome, given the positions its planned events got (same
/// order as the plan), or why it was refused.
pub(crate) fn outcomes_of(
    commands: &[CommandRecord],
    metadata: &[EventMetadata],
    plan: AppendPlan<'_>,
    positions: &[u64],
) -> Vec<Result<StoredOutcome, StoreError>> {
    assert_eq!(plan.events.len(), positions.len(), "one position per planned event");
    assert_eq!(plan.refusals.len(), commands.len(), "one verdict per command");
    let mut outcomes: Vec<Result<StoredOutcome, StoreError>> = commands
        .iter()
        .zip(metadata)
        .zip(plan.refusals)
        .map(|((command, metadata), refusal)| match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(StoredOutcome {
                command_id: command.metadata.command_id.clone(),
                status: command.status,
                code: command.code.clone(),
                message: command.message.clone(),
                account_id: command.account_id.clone(),
                event_count: 0,
                first_position: None,
                last_position: None,
                recorded_at: metadata.recorded_at,
                request_sha256: command.request_sha256.clone(),
            }),
        })
        .collect();
    for (planned, position) in plan.events.iter().zip(positions) {
        if let Ok(outcome) = &mut outcomes[planned.command] {
            outcome.event_count += 1;
            outcome.first_position.get_or_insert(*position);
            outcome.last_position = Some(*position);
        }
    }
    outcomes
}

/// Where an event lands in the log and how it is chained.
pub(crate) struct ChainedRow {
    pub global_position: u64,
    /// The payload as stored: the very bytes the hash covers.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Gives the planned events consecutive positions after `last_position` and
/// chains their hashes from `last_hash`. `metadata` is per command, already at
/// stored precision.
pub(crate) fn chain_plan(
    plan: &[PlannedEvent<'_>],
    metadata: &[EventMetadata],
    last_position: u64,
    last_hash: &str,
) -> Vec<ChainedRow> {
    let mut rows = Vec::with_capacity(plan.len());
    let mut prev_hash = last_hash.to_owned();
    for (offset, planned) in plan.iter().enumerate() {
        let global_position = last_position + offset as u64 + 1;
        let payload = chain::canonical_json(&planned.event.payload);
        let hash = chain::ChainedFields::of_new(
            global_position,
            planned.stream,
            planned.sequence,
            planned.event,
            &payload,
            &metadata[planned.command],
            &prev_hash,
        )
        .hash();
        rows.push(ChainedRow {
            global_position,
            payload,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        });
    }
    rows
}

/// Each command's metadata with `recorded_at` at the precision the backends keep,
/// so that the hash computed now is the hash recomputed from what is stored.
pub(crate) fn stored_metadata(commands: &[CommandRecord]) -> Vec<EventMetadata> {
    commands
        .iter()
        .map(|c| EventMetadata {
            recorded_at: chain::to_stored_precision(c.metadata.recorded_at),
            ..c.metadata.clone()
        })
        .collect()
}
