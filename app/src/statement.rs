//! A customer's statement (对账单) for a period of trade dates: built, then rendered.

use chrono::NaiveDate;
use ledger_domain::MarketRules;
use ledger_eventstore::EventStore;
use ledger_projections::statement::{build_statement, render_csv, render_html};
use serde::{Deserialize, Serialize};

use crate::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementFormat {
    /// A page to read or print (to PDF from a browser).
    Html,
    Csv,
}

/// The statement of `account_id` for trade dates `from..=to`, rendered.
pub async fn statement(
    store: &dyn EventStore,
    rules: &MarketRules,
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    format: StatementFormat,
) -> Result<String, AppError> {
    if from > to {
        return Err(AppError::InvalidInput(format!(
            "the period starts on {from}, after its end on {to}"
        )));
    }
    let Some(statement) = build_statement(store, &rules.calendar, account_id, (from, to)).await? else {
        return Err(AppError::UnknownAccount(account_id.to_owned()));
    };
    Ok(match format {
        StatementFormat::Html => render_html(&statement),
        StatementFormat::Csv => render_csv(&statement),
    })
}
