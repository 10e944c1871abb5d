//! Moving a ledger's log: `ledger import FILE` (the envelopes of `ledger events --json`)
//! and `ledger migrate-store --from URL --to URL`. The target must be empty; every event
//! keeps its position, its recorded time and its hash, so the head hash is the same on
//! both sides, which is the proof. The idempotency records of the accepted commands are
//! rebuilt from their events (a command's events are contiguous in the log), so a
//! command sent again after the move is a duplicate, as before it.

use std::io::BufRead;
use std::path::Path;

use ledger_eventstore::import::{check_chain, MAX_IMPORT_EVENTS};
use ledger_eventstore::{
    chain::GENESIS_HASH, read_towards, EventStore, OutcomeStatus, RecordedEvent, StoredOutcome, MAX_READ_EVENTS,
};
use serde::Serialize;

use crate::stream::envelope::recorded_from_json;
use crate::AppError;

/// What a move wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub events: u64,
    pub commands: u64,
    /// The hash of the last event, the same in the source and the target.
    pub head_hash: String,
}

/// Imports the envelopes of `path` (one a line) into the empty `store`. The whole file is
/// checked first (positions from 1 with no gap, each linked to the one before, each hash
/// its own fields'), so a broken file writes nothing and is named at its line; then it
/// is read again and written a page at a time.
pub async fn import_file(store: &dyn EventStore, path: &Path) -> Result<Moved, AppError> {
    refuse_unless_empty(store).await?;
    let mut last = (0, GENESIS_HASH.to_owned());
    for read in events_of(path)? {
        let (line, event) = read?;
        check_chain(std::slice::from_ref(&event), last.0, &last.1)
            .map_err(|refusal| AppError::InvalidInput(format!("line {line}: {refusal}; nothing was imported")))?;
        last = (event.global_position, event.hash);
    }
    let mut writer = Writer::default();
    let mut page = Vec::with_capacity(MAX_IMPORT_EVENTS);
    for read in events_of(path)? {
        page.push(read?.1);
        if page.len() == MAX_IMPORT_EVENTS {
            writer.write(store, std::mem::take(&mut page)).await?;
        }
    }
    writer.write(store, page).await?;
    writer.finish(store).await
}

/// Copies the log of `source` (up to its head when the move starts) into the empty
/// `target`, a page at a time.
pub async fn migrate_store(source: &dyn EventStore, target: &dyn EventStore) -> Result<Moved, AppError> {
    refuse_unless_empty(target).await?;
    let head = source.head_position().await?;
    let mut writer = Writer::default();
    let mut after = 0;
    while after < head {
        let page = read_towards(source, after, head, MAX_READ_EVENTS.min(MAX_IMPORT_EVENTS)).await?;
        let Some(last) = page.last() else { break };
        after = last.global_position;
        writer.write(target, page).await?;
    }
    writer.finish(target).await
}

async fn refuse_unless_empty(store: &dyn EventStore) -> Result<(), AppError> {
    match store.head_position().await? {
        0 => Ok(()),
        events => Err(AppError::DatabaseNotEmpty { events }),
    }
}

fn unreadable(path: &Path, cause: std::io::Error) -> AppError {
    AppError::InvalidInput(format!("cannot read {}: {cause}", path.display()))
}

/// The events of the file with their line numbers, read as they are asked for.
fn events_of(path: &Path) -> Result<impl Iterator<Item = Result<(usize, RecordedEvent), AppError>> + '_, AppError> {
    let file = std::fs::File::open(path).map_err(|cause| unreadable(path, cause))?;
    let lines = std::io::BufReader::new(file).lines().enumerate();
    Ok(lines.filter_map(move |(index, line)| {
        let line = match line {
            Ok(line) if line.trim().is_empty() => return None,
            Ok(line) => line,
            Err(cause) => return Some(Err(unreadable(path, cause))),
        };
        Some(
            recorded_from_json(&line)
                .map(|event| (index + 1, event))
                .map_err(|reason| {
                    AppError::InvalidInput(format!("line {}: {reason}; nothing was imported", index + 1))
                }),
        )
    }))
}

/// Writes pages of events with the outcomes of the commands that end in them; the
/// command open at a page's end is carried to the next.
#[derive(Default)]
struct Writer {
    open: Option<StoredOutcome>,
    events: u64,
    commands: u64,
    head_hash: Option<String>,
}

impl Writer {
    async fn write(&mut self, store: &dyn EventStore, page: Vec<RecordedEvent>) -> Result<(), AppError> {
        let mut closed = Vec::new();
        for event in &page {
            self.take_event(event, &mut closed);
        }
        store.import(&page, &closed).await?;
        self.events += page.len() as u64;
        self.commands += closed.len() as u64;
        if let Some(last) = page.last() {
            self.head_hash = Some(last.hash.clone());
        }
        Ok(())
    }

    fn take_event(&mut self, event: &RecordedEvent, closed: &mut Vec<StoredOutcome>) {
        let position = event.global_position;
        match &mut self.open {
            Some(open) if open.command_id == event.metadata.command_id => {
                open.event_count += 1;
                open.last_position = Some(position);
                if open.account_id.is_none() && event.stream.aggregate_type == crate::stream::filter::ACCOUNT_STREAM {
                    open.account_id = Some(event.stream.aggregate_id.clone());
                }
            }
            _ => {
                closed.extend(self.open.take());
                let account = (event.stream.aggregate_type == crate::stream::filter::ACCOUNT_STREAM)
                    .then(|| event.stream.aggregate_id.clone());
                self.open = Some(StoredOutcome {
                    command_id: event.metadata.command_id.clone(),
                    status: OutcomeStatus::Accepted,
                    code: None,
                    message: None,
                    account_id: account,
                    event_count: 1,
                    first_position: Some(position),
                    last_position: Some(position),
                    recorded_at: event.metadata.recorded_at,
                    request_sha256: None,
                });
            }
        }
    }

    /// Writes the last command's outcome; what was moved.
    async fn finish(mut self, store: &dyn EventStore) -> Result<Moved, AppError> {
        let last: Vec<StoredOutcome> = self.open.take().into_iter().collect();
        if !last.is_empty() {
            store.import(&[], &last).await?;
            self.commands += 1;
        }
        Ok(Moved {
            events: self.events,
            commands: self.commands,
            head_hash: self.head_hash.unwrap_or_else(|| GENESIS_HASH.to_owned()),
        })
    }
}
