//! `account_balances`: each account's cash, one row per account and currency, derived
//! from the account's state by the one derivation `AccountsView` also shows.

use ledger_domain::account::Account;
use ledger_domain::money::format_cny;
use rust_decimal::Decimal;
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, insert_rows, Backend, Operation};
use super::columns::{Cell, Column, Money, OnConflict, Table};
use crate::{BalanceRow, ProjectionError};

/// The one currency accounts hold.
const CURRENCY: &str = "CNY";

/// An account's cash as its state shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountBalance {
    pub account_id: String,
    pub available_cny: Decimal,
    pub frozen_cny: Decimal,
    pub unsettled_cny: Decimal,
    pub withdrawable_cny: Decimal,
}

impl AccountBalance {
    pub(crate) fn of(account_id: &str, account: &Account) -> Self {
        let cash = account.cash();
        AccountBalance {
            account_id: account_id.to_owned(),
            available_cny: cash.available_cny,
            frozen_cny: cash.frozen_cny,
            unsettled_cny: cash.unsettled_cny,
            withdrawable_cny: cash.withdrawable_cny(),
        }
    }

    /// The read-out row.
    pub(crate) fn to_row(&self) -> BalanceRow {
        BalanceRow {
            account_id: self.account_id.clone(),
            currency: CURRENCY.to_owned(),
            available: format_cny(self.available_cny),
            frozen: format_cny(self.frozen_cny),
            unsettled: format_cny(self.unsettled_cny),
            withdrawable: format_cny(self.withdrawable_cny),
        }
    }
}

/// A row with the log position it is as of.
pub(crate) struct AsOf<R> {
    pub row: R,
    pub position: u64,
}

pub(crate) const BALANCES: Table<AsOf<AccountBalance>> = Table {
    name: "account_balances",
    on_conflict: OnConflict::Update,
    filter: None,
    columns: &[
        Column::key("account_id", |b| Cell::Text(&b.row.account_id)),
        Column::key("currency", |_| Cell::Text(CURRENCY)),
        Column::data("available", |b| Cell::Money(Money::cny(b.row.available_cny))),
        Column::data("frozen", |b| Cell::Money(Money::cny(b.row.frozen_cny))),
        Column::data("unsettled", |b| Cell::Money(Money::cny(b.row.unsettled_cny))),
        Column::data("withdrawable", |b| Cell::Money(Money::cny(b.row.withdrawable_cny))),
        // Where the runner's batch ended, which the log does not determine.
        Column::not_compared("as_of_position", |b| Cell::Count(b.position)),
    ],
};

/// Inserts or replaces these accounts' balances.
pub(crate) async fn upsert<DB: Backend>(
    conn: &mut DB::Connection,
    balances: &[AsOf<AccountBalance>],
) -> Result<(), ProjectionError> {
    insert_rows::<DB, _>(conn, &BALANCES, balances).await
}

/// Rows of `account_balances` or `positions`: every row, one account's, or a page in
/// key order after a key (account id; account id and instrument for positions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountRows<'a> {
    /// Only this account's rows.
    pub account_id: Option<&'a str>,
    /// Only rows after this account id (and, for positions, after this instrument of it).
    pub after: Option<(&'a str, Option<&'a str>)>,
    /// At most this many rows; `None`: every row.
    pub limit: Option<usize>,
}

impl AccountRows<'_> {
    /// ` WHERE …` for the account and the key, then `ORDER BY` and `LIMIT`.
    pub(crate) fn push<DB: Backend>(&self, query: &mut QueryBuilder<DB>, order: &str) -> Result<(), ProjectionError> {
        query.push(" WHERE 1 = 1");
        if let Some(account_id) = self.account_id {
            query.push(" AND account_id = ");
            DB::bind_cell(query, Cell::Text(account_id))?;
        }
        match self.after {
            Some((account_id, None)) => {
                query.push(" AND account_id > ");
                DB::bind_cell(query, Cell::Text(account_id))?;
            }
            Some((account_id, Some(instrument))) => {
                query.push(" AND (account_id > ");
                DB::bind_cell(query, Cell::Text(account_id))?;
                query.push(" OR (account_id = ");
                DB::bind_cell(query, Cell::Text(account_id))?;
                query.push(" AND instrument > ");
                DB::bind_cell(query, Cell::Text(instrument))?;
                query.push("))");
            }
            None => {}
        }
        query.push(" ORDER BY ");
        query.push(order);
        if let Some(limit) = self.limit {
            query.push(" LIMIT ");
            DB::bind_cell(query, Cell::Count(limit as u64))?;
        }
        Ok(())
    }
}

/// `account_balances` as `rows` selects them, ordered by account.
pub(crate) struct ReadBalances<'a>(pub AccountRows<'a>);

impl Operation for ReadBalances<'_> {
    type Output = Vec<BalanceRow>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<BalanceRow>, ProjectionError> {
        let mut query = QueryBuilder::<DB>::new(BALANCES.select());
        self.0.push(&mut query, "account_id, currency")?;
        let rows = DB::fetch_all(&mut *connection(pool).await?, &mut query).await?;
        rows.iter()
            .map(|row| {
                Ok(BalanceRow {
                    account_id: DB::text(row, "account_id")?,
                    currency: DB::text(row, "currency")?,
                    available: format_cny(DB::money(row, "available")?),
                    frozen: format_cny(DB::money(row, "frozen")?),
                    unsettled: format_cny(DB::money(row, "unsettled")?),
                    withdrawable: format_cny(DB::money(row, "withdrawable")?),
                })
            })
            .collect()
    }
}
