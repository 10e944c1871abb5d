//! `reconciliation_breaks`: the differences `ledger reconcile` found, per trade date;
//! a new run for a date replaces its rows.

use chrono::NaiveDate;
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, insert_rows, Backend, Operation};
use super::columns::{Cell, Column, OnConflict, Table};
use crate::reconcile::{Break, BreakKind};
use crate::ProjectionError;

/// A row of `reconciliation_breaks`.
struct BreakRow {
    trade_date: NaiveDate,
    found: Break,
}

const BREAKS: Table<BreakRow> = Table {
    name: "reconciliation_breaks",
    on_conflict: OnConflict::Fail,
    filter: None,
    columns: &[
        Column::key("trade_date", |b| Cell::Date(b.trade_date)),
        Column::key("kind", |b| Cell::Text(b.found.kind.as_str())),
        Column::key("account_id", |b| Cell::Text(&b.found.account_id)),
        Column::key("instrument", |b| Cell::Text(&b.found.instrument)),
        Column::data("ours", |b| Cell::Text(&b.found.ours)),
        Column::data("theirs", |b| Cell::Text(&b.found.theirs)),
    ],
};

/// Replaces the breaks of a trade date, in one transaction.
pub(crate) struct ReplaceBreaks<'a> {
    pub trade_date: NaiveDate,
    pub breaks: &'a [Break],
}

impl Operation for ReplaceBreaks<'_> {
    type Output = ();

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<(), ProjectionError> {
        let mut tx = pool
            .begin_with(DB::BEGIN_WRITE)
            .await
            .map_err(ProjectionError::database)?;
        let replaced = self.replace_in::<DB>(&mut tx).await;
        ledger_eventstore::commit_or_roll_back(tx, replaced, ProjectionError::database).await
    }
}

impl ReplaceBreaks<'_> {
    async fn replace_in<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<(), ProjectionError> {
        let mut query = QueryBuilder::<DB>::new("DELETE FROM reconciliation_breaks WHERE trade_date = ");
        DB::bind_cell(&mut query, Cell::Date(self.trade_date))?;
        DB::execute(conn, &mut query).await?;
        let rows: Vec<BreakRow> = self
            .breaks
            .iter()
            .map(|found| BreakRow {
                trade_date: self.trade_date,
                found: found.clone(),
            })
            .collect();
        insert_rows::<DB, _>(conn, &BREAKS, &rows).await
    }
}

/// The breaks stored for a trade date, in the order a reconciliation sorts them.
pub(crate) struct ReadBreaks {
    pub trade_date: NaiveDate,
}

impl Operation for ReadBreaks {
    type Output = Vec<Break>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<Break>, ProjectionError> {
        let mut query = QueryBuilder::<DB>::new(
            "SELECT kind, account_id, instrument, ours, theirs FROM reconciliation_breaks WHERE trade_date = ",
        );
        DB::bind_cell(&mut query, Cell::Date(self.trade_date))?;
        let rows = DB::fetch_all(&mut *connection(pool).await?, &mut query).await?;
        let mut breaks = rows.iter().map(break_of::<DB>).collect::<Result<Vec<_>, _>>()?;
        // The kinds sort by their declaration, not their text: sorted here, as `reconcile` sorts.
        breaks.sort();
        Ok(breaks)
    }
}

fn break_of<DB: Backend>(row: &DB::Row) -> Result<Break, ProjectionError> {
    let kind = DB::text(row, "kind")?;
    let kind = kind
        .parse::<BreakKind>()
        .map_err(|_| ProjectionError::Corrupt(format!("reconciliation_breaks holds an unknown kind {kind:?}")))?;
    Ok(Break {
        kind,
        account_id: DB::text(row, "account_id")?,
        instrument: DB::text(row, "instrument")?,
        ours: DB::text(row, "ours")?,
        theirs: DB::text(row, "theirs")?,
    })
}
