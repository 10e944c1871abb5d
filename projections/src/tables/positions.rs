//! `positions`: each account's holding of each instrument it holds or has frozen,
//! derived from the account's state by the one derivation `AccountsView` also shows.

use ledger_domain::account::Account;
use rust_decimal::Decimal;
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, insert_rows, push_list, Backend, Operation, MAX_ROWS_PER_STATEMENT};
use super::balances::{AccountRows, AsOf};
use super::columns::{Cell, Column, Money, OnConflict, Table};
use crate::{PositionRow, ProjectionError};

/// A holding as the account's state shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldPosition {
    pub account_id: String,
    pub instrument: String,
    pub quantity: u64,
    pub frozen: u64,
    pub sellable: u64,
    pub cost_cny: Decimal,
    pub avg_cost_cny: Decimal,
}

impl HeldPosition {
    /// The account's positions with shares held or frozen, by instrument.
    pub(crate) fn all_of(account_id: &str, account: &Account) -> Vec<Self> {
        account
            .positions()
            .iter()
            .filter(|(_, p)| p.quantity > 0 || p.frozen > 0)
            .map(|(instrument, p)| HeldPosition {
                account_id: account_id.to_owned(),
                instrument: instrument.to_string(),
                quantity: p.quantity,
                frozen: p.frozen,
                sellable: p.sellable(),
                cost_cny: p.cost_cny,
                avg_cost_cny: p.avg_cost(),
            })
            .collect()
    }

    /// The read-out row.
    pub(crate) fn to_row(&self) -> PositionRow {
        PositionRow {
            account_id: self.account_id.clone(),
            instrument: self.instrument.clone(),
            quantity: self.quantity,
            frozen: self.frozen,
            sellable: self.sellable,
            avg_cost: Money::avg_cost(self.avg_cost_cny).0.to_string(),
        }
    }
}

pub(crate) const POSITIONS: Table<AsOf<HeldPosition>> = Table {
    name: "positions",
    on_conflict: OnConflict::Fail,
    filter: None,
    columns: &[
        Column::key("account_id", |p| Cell::Text(&p.row.account_id)),
        Column::key("instrument", |p| Cell::Text(&p.row.instrument)),
        Column::data("quantity", |p| Cell::Count(p.row.quantity)),
        Column::data("frozen", |p| Cell::Count(p.row.frozen)),
        Column::data("sellable", |p| Cell::Count(p.row.sellable)),
        Column::data("cost", |p| Cell::Money(Money::cny(p.row.cost_cny))),
        Column::data("avg_cost", |p| Cell::Money(Money::avg_cost(p.row.avg_cost_cny))),
        // Where the runner's batch ended, which the log does not determine.
        Column::not_compared("as_of_position", |p| Cell::Count(p.position)),
    ],
};

/// Replaces every position row of these accounts with `positions`.
pub(crate) async fn replace<DB: Backend>(
    conn: &mut DB::Connection,
    account_ids: &[&String],
    positions: &[AsOf<HeldPosition>],
) -> Result<(), ProjectionError> {
    for chunk in account_ids.chunks(MAX_ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<DB>::new("DELETE FROM positions WHERE account_id IN ");
        let ids: Vec<Cell<'_>> = chunk.iter().map(|id| Cell::Text(id)).collect();
        push_list(&mut query, &ids)?;
        DB::execute(conn, &mut query).await?;
    }
    insert_rows::<DB, _>(conn, &POSITIONS, positions).await
}

/// `positions` as `rows` selects them, ordered by account and instrument.
pub(crate) struct ReadPositions<'a>(pub AccountRows<'a>);

impl Operation for ReadPositions<'_> {
    type Output = Vec<PositionRow>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<PositionRow>, ProjectionError> {
        let mut query = QueryBuilder::<DB>::new(POSITIONS.select());
        self.0.push(&mut query, "account_id, instrument")?;
        let rows = DB::fetch_all(&mut *connection(pool).await?, &mut query).await?;
        rows.iter()
            .map(|row| {
                Ok(PositionRow {
                    account_id: DB::text(row, "account_id")?,
                    instrument: DB::text(row, "instrument")?,
                    quantity: DB::count(row, "quantity")?,
                    frozen: DB::count(row, "frozen")?,
                    sellable: DB::count(row, "sellable")?,
                    avg_cost: Money::avg_cost(DB::money(row, "avg_cost")?).0.to_string(),
                })
            })
            .collect()
    }
}
