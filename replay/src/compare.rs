//! The read model tables against the replay: every table by digest on every column the
//! log determines (balances and positions naming the first account that differs), the
//! refusal alerts one for one, and the journal's trial balance.

use std::collections::BTreeMap;

use ledger_eventstore::EventStore;
use ledger_projections::tables::{self, ExpectedRows, TableDifference};
use rust_decimal::Decimal;

use crate::verifier::Verifier;
use crate::{ProblemKind, VerifyError};

/// Whether the tables can be compared: tables behind the log, or refusals not alerted
/// yet, are late, not wrong.
async fn tables_caught_up(store: &dyn EventStore, verified_head: u64) -> Result<bool, VerifyError> {
    Ok(tables::accounts_checkpoint(store).await? == verified_head && tables::refusal_alerts_caught_up(store).await?)
}

/// Compares the tables when they are caught up with the verified head, and keeps what it
/// found only if they still are afterwards: a runner beside verify (a read-out,
/// `projections run --follow`) may commit while the tables are read, and tables read
/// partly before and partly after its commit are moving, not wrong. Whether they were compared.
pub(crate) async fn compare_if_caught_up(
    store: &dyn EventStore,
    verifier: &mut Verifier,
    expected: Option<&ExpectedRows>,
) -> Result<bool, VerifyError> {
    let head = verifier.previous_position;
    if !tables_caught_up(store, head).await? {
        return Ok(false);
    }
    let mark = verifier.problems_so_far();
    compare_tables(store, verifier, expected).await?;
    if tables_caught_up(store, head).await? {
        return Ok(true);
    }
    verifier.forget_problems_since(mark);
    Ok(false)
}

/// Every difference between the tables and the replay, as problems. `expected` is
/// `None` when the log could not be derived into rows.
async fn compare_tables(
    store: &dyn EventStore,
    verifier: &mut Verifier,
    expected: Option<&ExpectedRows>,
) -> Result<(), VerifyError> {
    compare_account_tables(store, verifier).await?;
    if let Some(expected) = expected {
        compare_event_tables(store, verifier, expected).await?;
    }
    compare_refusal_alerts(store, verifier).await?;
    compare_journal(store, verifier).await
}

async fn compare_account_tables(store: &dyn EventStore, verifier: &mut Verifier) -> Result<(), VerifyError> {
    for difference in TableDifference::in_account_tables(store, &verifier.accounts).await? {
        let first = match &difference.first_account {
            Some(account_id) => format!("first at account {account_id}"),
            None => "rows of accounts the log does not hold".to_owned(),
        };
        report_difference(verifier, &difference, &format!("; {first}"));
    }
    Ok(())
}

async fn compare_event_tables(
    store: &dyn EventStore,
    verifier: &mut Verifier,
    expected: &ExpectedRows,
) -> Result<(), VerifyError> {
    for difference in tables::table_differences(store, expected).await? {
        report_difference(verifier, &difference, "");
    }
    Ok(())
}

fn report_difference(verifier: &mut Verifier, difference: &TableDifference, more: &str) {
    verifier.problem(
        ProblemKind::ProjectionDiffers,
        None,
        format!(
            "{} differs from the replay ({} rows, {} expected{more}): rebuild it with `ledger projections rebuild`",
            difference.table.name(),
            difference.rows,
            difference.expected_rows
        ),
    );
}

async fn compare_refusal_alerts(store: &dyn EventStore, verifier: &mut Verifier) -> Result<(), VerifyError> {
    let unmatched = tables::unmatched_refusal_alerts(store).await?;
    if unmatched > 0 {
        verifier.problem(
            ProblemKind::ProjectionDiffers,
            None,
            format!(
                "refused-suitability alerts do not match the recorded refusals one for one ({unmatched} unmatched)"
            ),
        );
    }
    Ok(())
}

/// The journal must sum to zero (invariant 4) and hold the replay's postings.
async fn compare_journal(store: &dyn EventStore, verifier: &mut Verifier) -> Result<(), VerifyError> {
    let journal = tables::read_trial_balance(store).await?;
    let total: Decimal = journal.values().copied().sum();
    if !total.is_zero() {
        verifier.problem(
            ProblemKind::JournalUnbalanced,
            None,
            format!("journal_entries sum to {total}, not zero"),
        );
    }
    let replayed: BTreeMap<String, Decimal> = verifier
        .trial_balance
        .iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let table: BTreeMap<String, Decimal> = journal.into_iter().filter(|(_, v)| !v.is_zero()).collect();
    if table != replayed {
        verifier.problem(
            ProblemKind::ProjectionDiffers,
            None,
            "journal_entries differs from the replay".into(),
        );
    }
    Ok(())
}
