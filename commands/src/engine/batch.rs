//! One batch, decided and committed: each submission in order, a command id
//! seen before (in the store or earlier in the batch) answered as a duplicate,
//! then every record appended in one transaction.

use std::collections::HashMap;

use chrono::NaiveDate;
use ledger_eventstore::{AppendLock, CommandRecord, EventMetadata, OutcomeStatus, StoredOutcome};

use crate::wire::LedgerCommand;

use super::repository::Decision;
use super::{CommandResult, EngineError, Ledger, Submission};

/// How a submission of the batch is answered.
enum Answer {
    /// Decided in this batch: its stored outcome follows in order.
    Decided,
    /// Seen before, in the store or earlier in the batch.
    Duplicate(StoredOutcome),
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
                self.drop_working_sets();
                return Err(e.into());
            }
        };
        self.commit_working_sets();
        let first_position = stored.iter().filter_map(|o| o.first_position).min();
        self.appended(first_position, stored.iter().filter_map(|o| o.last_position).max());
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
        let mut decided_in_batch: HashMap<&str, StoredOutcome> = HashMap::new();
        for submission in batch {
            let command_id = submission.command_id.as_str();
            if let Some(first) = seen_before.get(command_id).or_else(|| decided_in_batch.get(command_id)) {
                answers.push(Answer::Duplicate(first.clone()));
                continue;
            }
            let business_date = match submission.command.named_trade_date() {
                Some(trade_date) => Some(trade_date),
                None => self.open_trade_date().await?,
            };
            let metadata = self.metadata(submission, business_date);
            let mut appends = Vec::new();
            let decision = self.decide(&submission.command, &mut appends).await?;
            if decision.is_ok() {
                self.record_dates_of(&submission.command).await?;
            }
            let record = record_of(submission, metadata, decision, appends);
            decided_in_batch.insert(command_id, pending_outcome(&record));
            records.push(record);
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
    }
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
