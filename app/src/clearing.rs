//! End of day and settlement of a trade date, each answered with the date's clearing report.

use chrono::NaiveDate;
use ledger_commands::{Ledger, LedgerCommand, Status, Submission};
use ledger_projections::clearing::{clearing_report, ClearingReport};
use serde::Serialize;

use crate::AppError;

/// The step of a trade date's clearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearingStep {
    /// Close the date: expire its open orders in every account.
    EndOfDay,
    /// Settle the closed date (T+1) in every account.
    Settle,
}

impl ClearingStep {
    /// The one command id of this step for a date: running it again is a duplicate,
    /// never a second end of day or a second settlement.
    pub fn command_id(self, trade_date: NaiveDate) -> String {
        match self {
            ClearingStep::EndOfDay => format!("eod:{trade_date}"),
            ClearingStep::Settle => format!("settle:{trade_date}"),
        }
    }

    fn command(self, trade_date: NaiveDate) -> LedgerCommand {
        match self {
            ClearingStep::EndOfDay => LedgerCommand::EndOfDay { trade_date },
            ClearingStep::Settle => LedgerCommand::Settle { trade_date },
        }
    }
}

/// What a clearing step did, and the date's clearing report after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClearingOutcome {
    pub trade_date: NaiveDate,
    /// `accepted`, or `duplicate` when the step was already done (nothing changed).
    pub status: Status,
    pub events: u64,
    pub report: ClearingReport,
}

/// Closes a trade date. A second call for the same date answers `duplicate`.
pub async fn end_of_day(ledger: &mut Ledger, actor: &str, trade_date: NaiveDate) -> Result<ClearingOutcome, AppError> {
    run_step(ledger, actor, ClearingStep::EndOfDay, trade_date).await
}

/// Settles a closed trade date. A second call for the same date answers `duplicate`.
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
    let submission = Submission {
        command_id: step.command_id(trade_date),
        command: step.command(trade_date),
        correlation_id: None,
        actor: actor.to_owned(),
    };
    let result = ledger
        .execute(&[submission])
        .await?
        .pop()
        .expect("the engine answers every submission");
    if result.status == Status::Rejected {
        return Err(AppError::Refused {
            reject_code: result.code.unwrap_or_else(|| "-".to_owned()),
            message: result.message.unwrap_or_default(),
        });
    }
    let trades = crate::queries::trades_of(ledger.store().as_ref(), trade_date).await?;
    Ok(ClearingOutcome {
        trade_date,
        status: result.status,
        events: result.events,
        report: clearing_report(&trades),
    })
}
