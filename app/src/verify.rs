//! The auditor's proof that the log is intact: hash chain, positions, sequences,
//! replay, invariants, and the read models when they are caught up.

use ledger_eventstore::EventStore;
use ledger_replay::VerifyReport;

use crate::queries::Progress;
use crate::AppError;

/// Verifies the whole log. It never catches the read models up itself: a report with
/// `projections_checked: false` says they are behind and were not compared.
pub async fn verify(store: &dyn EventStore, mut on_progress: impl FnMut(Progress)) -> Result<VerifyReport, AppError> {
    let total = store.head_position().await?;
    Ok(ledger_replay::verify(store, |done| on_progress(Progress { done, total })).await?)
}
