//! One batch, decided and committed: each submission in order, a command id
//! seen before (in the store or earlier in the batch) answered as a duplicate
//! with the first outcome and its positions, a malformed one answered at once,
//! then every record appended in one transaction.
//!
//! A malformed command (a value outside the market rules' bounds, which
//! `LedgerCommand::check_well_formed` finds before the command id is looked up,
//! or an aggregate finds) is answered but not recorded, as the parser's malformed
//! lines are never recorded: nothing was understood, so its command id stays
//! free, for a later batch or a later command of this one, and the same line
//! sent again is answered `malformed` again, never `duplicate`.
//!
//! A command that came as a request body (the HTTP API) carries that body's
//! digest, recorded with its outcome in the batch's transaction. A command id
//! recorded for another body (in the store, or earlier in the batch) is answered
//! `idempotency_key_reused` and not recorded. The lookup is the duplicates' own
//! (`find_outcomes`), so a batch decided again under the append lock, after
//! another writer recorded the same id, checks the body again.

use std::collections::HashMap;

use chrono::NaiveDate;
use ledger_domain::RejectCode;
use ledger_eventstore::{AppendLock, CommandRecord, EventMetadata, OutcomeStatus, StoredOutcome};

use crate::wire::LedgerCommand;

use super::repository::Decision;
use super::{CommandResult, EngineError, Ledger, Submission};

/// How a submission of the batch is answered.
enum Answer {
    /// Decided in this batch: its stored outcome follows in order.
    Decided,
    /// Seen before, in the store.
    Duplicate(StoredOutcome),
    /// Decided earlier in this batch, as its record number `.0`: answered with that
    /// record's stored outcome, positions included, as if it came in a later batch.
    DuplicateInBatch(usize),
    /// Malformed, or its command id names another request body: answered now, never recorded.
    Unrecorded(CommandResult),
}

impl Ledger {
    /// Decides the batch and appends it, under `lock` when one is held (and then lets it
    /// go). Whatever fails leaves the cache as it was before the batch.
    pub(super) async fn try_execute(
        &mut self,
        batch: &[Submission],
        lock: Option<Box<dyn AppendLock>>,
    ) -> Result<Vec<CommandResult>, EngineError> {
        let decided = match self.follow_log(lock.is_some()).await {
            Ok(()) => self.decide_all(batch).await,
            Err(e) => Err(e),
        };
        let (records, answers) = match decided {
            Ok(decided) => decided,
            Err(e) => {
                self.drop_working_sets();
                if let Some(lock) = lock {
                    lock.release().await;
                }
                return Err(e);
            }
        };
        let appended = match lock {
            Some(lock) => lock.append(&records).await,
            None => self.store.append(&records).await,
        };
        let stored = match appended {
            Ok(stored) => stored,
            Err(e) => {
                // The batch may be committed all the same (a connection lost after the
                // commit): what the engine knew of the trade dates is read again from
                // the log, as the aggregates the batch touched are.
                self.drop_working_sets();
                self.dates = None;
                return Err(e.into());
            }
        };
        self.commit_working_sets();
        assert_eq!(stored.len(), records.len(), "one stored outcome per decided command");
        let first_position = stored.iter().filter_map(|o| o.first_position).min();
        self.appended(first_position, stored.iter().filter_map(|o| o.last_position).max());
        let mut decided = stored.iter();
        let results = answers
            .into_iter()
            .map(|answer| match answer {
                Answer::Decided => {
                    let outcome = decided.next().expect("one stored outcome per decided command");
                    CommandResult::from_stored(outcome)
                }
                Answer::Duplicate(first) => CommandResult::duplicate_of(&first),
                Answer::DuplicateInBatch(record) => CommandResult::duplicate_of(&stored[record]),
                Answer::Unrecorded(result) => result,
            })
            .collect();
        assert!(decided.next().is_none(), "every stored outcome was answered");
        Ok(results)
    }

    /// The batch's command ids looked up, then the batch decided.
    async fn decide_all(&mut self, batch: &[Submission]) -> Result<(Vec<CommandRecord>, Vec<Answer>), EngineError> {
        let ids: Vec<String> = batch.iter().map(|s| s.command_id.clone()).collect();
        let seen_before = self.store.find_outcomes(&ids).await?;
        self.batch_new_accounts.clear();
        self.decide_batch(batch, &seen_before).await
    }

    async fn decide_batch(
        &mut self,
        batch: &[Submission],
        seen_before: &HashMap<String, StoredOutcome>,
    ) -> Result<(Vec<CommandRecord>, Vec<Answer>), EngineError> {
        let mut records: Vec<CommandRecord> = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        let mut decided_in_batch: HashMap<&str, usize> = HashMap::new();
        for submission in batch {
            let command_id = submission.command_id.as_str();
            if let Err(rejection) = submission.command.check_well_formed(&self.rules) {
                answers.push(Answer::Unrecorded(CommandResult::malformed(
                    command_id,
                    &rejection.message,
                )));
                continue;
            }
            if let Some(first) = seen_before.get(command_id) {
                let recorded_sha256 = first.request_sha256.as_deref();
                answers.push(seen_again(submission, recorded_sha256, || {
                    Answer::Duplicate(first.clone())
                }));
                continue;
            }
            if let Some(&record) = decided_in_batch.get(command_id) {
                let recorded_sha256 = records[record].request_sha256.as_deref();
                answers.push(seen_again(submission, recorded_sha256, || {
                    Answer::DuplicateInBatch(record)
                }));
                continue;
            }
            let business_date = match submission.command.named_trade_date() {
                Some(trade_date) => Some(trade_date),
                None => self.open_trade_date().await?,
            };
            let metadata = self.metadata(submission, business_date);
            let mut appends = Vec::new();
            let decision = self.decide(&submission.command, &mut appends).await?;
            match &decision {
                Ok(()) => self.record_dates_of(&submission.command).await?,
                Err(rejection) if rejection.code == RejectCode::Malformed => {
                    assert!(
                        appends.iter().all(|append| append.events.is_empty()),
                        "a refused command stages no event"
                    );
                    let result = CommandResult::malformed(command_id, &rejection.message);
                    answers.push(Answer::Unrecorded(result));
                    continue;
                }
                Err(_) => {}
            }
            decided_in_batch.insert(command_id, records.len());
            records.push(record_of(submission, metadata, decision, appends));
            answers.push(Answer::Decided);
        }
        Ok((records, answers))
    }

    /// Keeps the batch's trade dates in step with a command just accepted.
    async fn record_dates_of(&mut self, command: &LedgerCommand) -> Result<(), EngineError> {
        match command {
            LedgerCommand::EndOfDay { trade_date, .. } => self.batch_dates().await?.record_close(*trade_date),
            LedgerCommand::SetPrevClose { trade_date, .. } => self.batch_dates().await?.record_prev_close(*trade_date),
            _ => {}
        }
        Ok(())
    }

    fn metadata(&self, submission: &Submission, business_date: Option<NaiveDate>) -> EventMetadata {
        let command_id = submission.command_id.clone();
        EventMetadata {
            correlation_id: submission.correlation_id.clone().unwrap_or_else(|| command_id.clone()),
            causation_id: command_id.clone(),
            command_id,
            actor: submission.actor.clone(),
            recorded_at: (self.clock)(),
            business_date,
        }
    }
}

/// The answer to a command id recorded before (in the store, or earlier in the batch):
/// its `duplicate`, unless the submission carries another request body than the one
/// the id was recorded for.
fn seen_again(submission: &Submission, recorded_sha256: Option<&str>, duplicate: impl FnOnce() -> Answer) -> Answer {
    if names_other_body(submission, recorded_sha256) {
        Answer::Unrecorded(CommandResult::key_reused(&submission.command_id))
    } else {
        duplicate()
    }
}

/// Whether a submission carries a request body other than the one its command id was
/// first recorded for. A command-file line has no body, and a command id recorded from
/// one keeps none: either way there is nothing to compare, and it is a duplicate.
fn names_other_body(submission: &Submission, recorded_sha256: Option<&str>) -> bool {
    match (submission.request_sha256.as_deref(), recorded_sha256) {
        (Some(sent), Some(recorded)) => sent != recorded,
        _ => false,
    }
}

/// The record of a decided command: accepted with its events, or refused with none.
fn record_of(
    submission: &Submission,
    metadata: EventMetadata,
    decision: Decision,
    appends: Vec<ledger_eventstore::StreamAppend>,
) -> CommandRecord {
    let account_id = submission.command.account_id().map(|id| id.as_str().to_owned());
    let (status, code, message) = match decision {
        Ok(()) => (OutcomeStatus::Accepted, None, None),
        Err(rejection) => {
            assert!(
                appends.iter().all(|append| append.events.is_empty()),
                "a refused command stages no event"
            );
            (
                OutcomeStatus::Rejected,
                Some(rejection.code.as_str().to_owned()),
                Some(rejection.message),
            )
        }
    };
    CommandRecord {
        metadata,
        status,
        code,
        message,
        account_id,
        appends,
        request_sha256: submission.request_sha256.clone(),
    }
}
