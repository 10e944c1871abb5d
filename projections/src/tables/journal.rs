//! `journal_entries`: the double-entry postings of every event that moves money
//! (chart of accounts: docs/journal.md), debits positive, credits negative.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, insert_rows, Backend, Operation};
use super::columns::{Cell, Column, Money, OnConflict, Table};
use crate::ProjectionError;

/// A row of `journal_entries`.
#[derive(Debug, Clone)]
pub(crate) struct JournalLine {
    pub position: u64,
    /// 1, 2, … within the event.
    pub line: u64,
    pub account_id: String,
    pub event_type: String,
    pub ledger_account: String,
    pub amount_cny: Decimal,
}

pub(crate) const JOURNAL: Table<JournalLine> = Table {
    name: "journal_entries",
    on_conflict: OnConflict::Fail,
    filter: None,
    columns: &[
        Column::key("global_position", |l| Cell::Count(l.position)),
        Column::key("line", |l| Cell::Count(l.line)),
        Column::data("account_id", |l| Cell::Text(&l.account_id)),
        Column::data("event_type", |l| Cell::Text(&l.event_type)),
        Column::data("ledger_account", |l| Cell::Text(&l.ledger_account)),
        Column::data("amount", |l| Cell::Money(Money::cny(l.amount_cny))),
        Column::data("currency", |_| Cell::Text("CNY")),
    ],
};

pub(crate) async fn insert<DB: Backend>(
    conn: &mut DB::Connection,
    lines: &[JournalLine],
) -> Result<(), ProjectionError> {
    insert_rows::<DB, _>(conn, &JOURNAL, lines).await
}

/// The trial balance: per ledger account, the sum of its postings. Summed here, in
/// decimals: SQLite would sum decimal text as floats.
pub(crate) struct TrialBalance;

impl Operation for TrialBalance {
    type Output = BTreeMap<String, Decimal>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<BTreeMap<String, Decimal>, ProjectionError> {
        // Decimal sums are exact: the order the rows come in does not matter.
        let mut query = QueryBuilder::<DB>::new(JOURNAL.select_only(&["ledger_account", "amount"]));
        let mut balance: BTreeMap<String, Decimal> = BTreeMap::new();
        for row in DB::fetch_all(&mut *connection(pool).await?, &mut query).await? {
            *balance.entry(DB::text(&row, "ledger_account")?).or_default() += DB::money(&row, "amount")?;
        }
        Ok(balance)
    }
}
