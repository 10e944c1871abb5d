//! End of day and settlement of a trade date, each answered with the date's clearing report,
//! and the report itself read without running anything.
//!
//! One rule for a step already done: whichever way the date was closed (this module, a
//! command file's `end_of_day` line under another command id, another process), running the
//! step again answers `duplicate` ("already closed; nothing changed") with the report. The
//! day's state is read before submitting, so a step refused because the day is not ready
//! (settling an open date) is never submitted and never takes the step's command id.

use std::sync::Arc;

use chrono::NaiveDate;
use ledger_commands::{CommandResult, Ledger, LedgerCommand, Status, Submission};
use ledger_domain::{DayStatus, RejectCode};
use ledger_eventstore::{EventStore, StoreError, StreamId};
use ledger_projections::clearing::{clearing_report as report_of, ClearingReport};
use serde::Serialize;

use crate::AppError;

/// The step of a trade date's clearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearingStep {
    /// Close the date: expire its open orders in every account; the date checked
    /// against the trading calendar or not.
    EndOfDay(CalendarCheck),
    /// Settle the closed date (T+1) in every account.
    Settle,
}

impl ClearingStep {
    /// The one command id of this step for a date: running it again is a duplicate,
    /// never a second end of day or a second settlement.
    pub fn command_id(self, trade_date: NaiveDate) -> String {
        match self {
            ClearingStep::EndOfDay(_) => format!("eod:{trade_date}"),
            ClearingStep::Settle => format!("settle:{trade_date}"),
        }
    }

    fn command(self, trade_date: NaiveDate) -> LedgerCommand {
        match self {
            ClearingStep::EndOfDay(calendar) => LedgerCommand::EndOfDay {
                trade_date,
                off_calendar: calendar == CalendarCheck::Off,
            },
            ClearingStep::Settle => LedgerCommand::Settle { trade_date },
        }
    }
}

/// Whether end of day checks its date against the trading calendar (the next
/// trading day after the last closed one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarCheck {
    /// Close only the open trade date of the calendar.
    On,
    /// Close the date given, whatever the calendar says (an unscheduled closure,
    /// a year whose holidays are not in the calendar yet).
    Off,
}

/// A trade date's clearing report as the log stands, with how far the date has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayClearing {
    pub trade_date: NaiveDate,
    /// `trading` (not closed yet), `closed`, `cleared` (end of day done) or `settled`.
    pub day_status: DayStatus,
    pub report: ClearingReport,
}

/// The clearing report of a trade date, read only: catches the read models up with the
/// log and reads; it writes no event (the same report `eod` and `settle` print).
pub async fn clearing_report(store: &dyn EventStore, trade_date: NaiveDate) -> Result<DayClearing, AppError> {
    crate::queries::apply_new_events(store, false, |_| {}).await?;
    crate::live::clearing_report(store, trade_date).await
}

/// The state of a trade date's clearing day, from the last event of its stream.
pub async fn day_status(store: &dyn EventStore, trade_date: NaiveDate) -> Result<DayStatus, AppError> {
    let stream = StreamId::new(CLEARING_DAY_STREAM, trade_date.to_string());
    let events = store.load_stream(&stream).await?;
    Ok(match events.last().map(|e| e.event_type.as_str()) {
        None => DayStatus::Trading,
        Some("DayClosed") => DayStatus::Closed,
        Some("DayCleared") => DayStatus::Cleared,
        Some(_) => DayStatus::Settled,
    })
}

/// Where the close of a trade date ends in the log: the ledger's state at the close is
/// the log up to and including [`CloseCut::position`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CloseCut {
    pub trade_date: NaiveDate,
    /// The last global position of the cut.
    pub position: u64,
    /// Whether the date's settlement is inside the cut (run right after its end of day).
    pub settlement_included: bool,
}

/// The cut of the log at the close of `trade_date`, or `None` while the date is not
/// closed. The rule, from the log alone (so the same cut is found any day later):
///
/// - the close is the command that closed the date: the one that wrote the date's
///   `DayClosed` (`eod:{date}` from [`end_of_day`], or an `end_of_day` line of a
///   command file under its own id); the cut ends at that command's last event;
/// - if the date's settlement (`settle:{date}`, `settle:{date}:after-refusal`, or a
///   `settle` line) wrote the very next events after it, nothing else came between
///   the two, and the cut extends to the settlement's last event;
/// - anything written between the end of day and a later settlement (a deposit after
///   the close, the next date's orders) is after the cut, and so is that settlement.
pub async fn close_cut(store: &dyn EventStore, trade_date: NaiveDate) -> Result<Option<CloseCut>, AppError> {
    let stream = StreamId::new(CLEARING_DAY_STREAM, trade_date.to_string());
    let events = store.load_stream(&stream).await?;
    let command_of = |event_type: &str| {
        events
            .iter()
            .find(|e| e.event_type == event_type)
            .map(|e| e.metadata.command_id.clone())
    };
    let Some(closing) = command_of("DayClosed") else {
        return Ok(None);
    };
    let settling = command_of("DaySettled");
    let ids: Vec<String> = std::iter::once(closing.clone()).chain(settling.clone()).collect();
    let outcomes = store.find_outcomes(&ids).await?;
    let span = |id: &str| {
        outcomes
            .get(id)
            .and_then(|o| o.first_position.zip(o.last_position))
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "command {id} wrote the clearing day {trade_date} but has no outcome with its positions"
                ))
            })
    };
    let (_, closed_at) = span(&closing)?;
    let settled = settling.map(|id| span(&id)).transpose()?;
    Ok(Some(match settled {
        Some((first, last)) if first == closed_at + 1 => CloseCut {
            trade_date,
            position: last,
            settlement_included: true,
        },
        _ => CloseCut {
            trade_date,
            position: closed_at,
            settlement_included: false,
        },
    }))
}

/// The aggregate type of the clearing day streams, one stream per date (`Aggregate::TYPE`
/// of `ClearingDay`, a stored name that never changes).
const CLEARING_DAY_STREAM: &str = "ClearingDay";

/// What a clearing step did, and the date's clearing report after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClearingOutcome {
    pub trade_date: NaiveDate,
    /// `accepted`, or `duplicate` when the step was already done (nothing changed).
    pub status: Status,
    pub events: u64,
    pub report: ClearingReport,
}

/// Closes a trade date. On a date already closed, however it was closed, answers `duplicate`.
pub async fn end_of_day(ledger: &mut Ledger, actor: &str, trade_date: NaiveDate) -> Result<ClearingOutcome, AppError> {
    run_step(ledger, actor, ClearingStep::EndOfDay(CalendarCheck::On), trade_date).await
}

/// Settles a closed trade date. On a date already settled answers `duplicate`; on a date not
/// closed yet is refused, and settling it after its end of day still works.
pub async fn settle(ledger: &mut Ledger, actor: &str, trade_date: NaiveDate) -> Result<ClearingOutcome, AppError> {
    run_step(ledger, actor, ClearingStep::Settle, trade_date).await
}

/// Runs one step; a refusal (settling an open date, say) is [`AppError::Refused`].
pub async fn run_step(
    ledger: &mut Ledger,
    actor: &str,
    step: ClearingStep,
    trade_date: NaiveDate,
) -> Result<ClearingOutcome, AppError> {
    let (status, events) = match step_state(step, day_status(ledger.store().as_ref(), trade_date).await?) {
        StepState::Done => (Status::Duplicate, 0),
        StepState::NotReady => return Err(not_closed(trade_date)),
        StepState::Ready => submit(ledger, actor, step, trade_date).await?,
    };
    let trades = crate::queries::trades_of(ledger.store().as_ref(), trade_date).await?;
    Ok(ClearingOutcome {
        trade_date,
        status,
        events,
        report: report_of(&trades),
    })
}

/// Where a step stands on a date in a given state.
enum StepState {
    Ready,
    Done,
    NotReady,
}

fn step_state(step: ClearingStep, day: DayStatus) -> StepState {
    match (step, day) {
        (ClearingStep::EndOfDay(_), DayStatus::Trading) | (ClearingStep::Settle, DayStatus::Cleared) => {
            StepState::Ready
        }
        (ClearingStep::EndOfDay(_), _) | (ClearingStep::Settle, DayStatus::Settled) => StepState::Done,
        (ClearingStep::Settle, DayStatus::Trading | DayStatus::Closed) => StepState::NotReady,
    }
}

/// The refusal the domain gives to settling a date not closed yet, given without submitting.
fn not_closed(trade_date: NaiveDate) -> AppError {
    AppError::Refused {
        reject_code: RejectCode::DayClosed.to_string(),
        message: format!("trade date {trade_date} is still trading: run end_of_day before settle"),
    }
}

/// Submits the step under its one command id; if another process did the step between
/// the check and the submission, the answer is still "already done".
async fn submit(
    ledger: &mut Ledger,
    actor: &str,
    step: ClearingStep,
    trade_date: NaiveDate,
) -> Result<(Status, u64), AppError> {
    let command_id = step.command_id(trade_date);
    let command = step.command(trade_date);
    let mut result = submit_once(ledger, actor, command.clone(), &command_id).await?;
    let store = Arc::clone(ledger.store());
    let state_now = || async { Ok::<_, AppError>(step_state(step, day_status(store.as_ref(), trade_date).await?)) };
    if result.status == Status::Duplicate && matches!(state_now().await?, StepState::Ready) {
        // A log written before the day's state was checked first may hold a refusal (settle
        // before end of day) under the step's id: the step is still to do, under a new id.
        result = submit_once(ledger, actor, command, &format!("{command_id}:after-refusal")).await?;
    }
    if result.status != Status::Rejected {
        return Ok((result.status, result.events));
    }
    if matches!(state_now().await?, StepState::Done) {
        return Ok((Status::Duplicate, 0));
    }
    Err(AppError::Refused {
        reject_code: result.code.unwrap_or_else(|| "-".to_owned()),
        message: result.message.unwrap_or_default(),
    })
}

async fn submit_once(
    ledger: &mut Ledger,
    actor: &str,
    command: LedgerCommand,
    command_id: &str,
) -> Result<CommandResult, AppError> {
    let submission = Submission {
        command_id: command_id.to_owned(),
        command,
        correlation_id: None,
        actor: actor.to_owned(),
        request_sha256: None,
    };
    Ok(ledger
        .execute(&[submission])
        .await?
        .pop()
        .expect("the engine answers every submission"))
}
