//! `clearing_obligations`: per trade date, account and instrument, what is owed to or by
//! the depository: the net shares, the net cash and the fees of the day's trades.

use std::collections::{BTreeMap, BTreeSet};

use ledger_domain::Side;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::QueryBuilder;

use super::backend::{insert_rows, push_list, Backend, MAX_ROWS_PER_STATEMENT};
use super::columns::{Cell, Column, Money, OnConflict, Table};
use super::trades::TradeRow;
use crate::ProjectionError;

/// (trade date, account, instrument): the key of an obligation.
pub(crate) type ObligationKey = (NaiveDate, String, String);

/// What trades add up to under one key.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObligationSums {
    pub net_quantity: i64,
    pub net_amount_cny: Decimal,
    pub fees_cny: Decimal,
}

impl ObligationSums {
    pub(crate) fn add_trade(&mut self, trade: &TradeRow) {
        let quantity = i64::try_from(trade.quantity).unwrap_or(i64::MAX);
        self.net_quantity += if trade.side == Side::Buy { quantity } else { -quantity };
        self.net_amount_cny += trade.net_cash_cny;
        self.fees_cny += trade.fees.total_cny();
    }

    pub(crate) fn add(&mut self, other: &ObligationSums) {
        self.net_quantity += other.net_quantity;
        self.net_amount_cny += other.net_amount_cny;
        self.fees_cny += other.fees_cny;
    }
}

/// A row of `clearing_obligations`.
pub(crate) struct ObligationRow {
    pub key: ObligationKey,
    pub sums: ObligationSums,
}

pub(crate) const OBLIGATIONS: Table<ObligationRow> = Table {
    name: "clearing_obligations",
    on_conflict: OnConflict::Update,
    filter: None,
    columns: &[
        Column::key("trade_date", |o| Cell::Date(o.key.0)),
        Column::key("account_id", |o| Cell::Text(&o.key.1)),
        Column::key("instrument", |o| Cell::Text(&o.key.2)),
        Column::data("net_quantity", |o| Cell::Int(o.sums.net_quantity)),
        Column::data("net_amount", |o| Cell::Money(Money::cny(o.sums.net_amount_cny))),
        Column::data("fees", |o| Cell::Money(Money::cny(o.sums.fees_cny))),
    ],
};

/// Adds the batch's sums to the obligations already there. Amounts are added here, in
/// decimals, not in SQL: SQLite would add the texts as floats.
pub(crate) async fn add<DB: Backend>(
    conn: &mut DB::Connection,
    sums: &BTreeMap<ObligationKey, ObligationSums>,
) -> Result<(), ProjectionError> {
    let keys: Vec<&ObligationKey> = sums.keys().collect();
    for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
        let mut stored = read::<DB>(conn, chunk).await?;
        let totals: Vec<ObligationRow> = chunk
            .iter()
            .map(|key| {
                let mut total = stored.remove(*key).unwrap_or_default();
                if let Some(add) = sums.get(*key) {
                    total.add(add);
                }
                ObligationRow {
                    key: (*key).clone(),
                    sums: total,
                }
            })
            .collect();
        insert_rows::<DB, _>(conn, &OBLIGATIONS, &totals).await?;
    }
    Ok(())
}

/// The stored obligations of these keys. Looked up by the table's key prefix (trade date,
/// account), so each lookup is an index search: a row-value `IN (VALUES …)` made SQLite scan
/// the whole table once per statement, which grows with every trade date (docs/performance.md).
async fn read<DB: Backend>(
    conn: &mut DB::Connection,
    keys: &[&ObligationKey],
) -> Result<BTreeMap<ObligationKey, ObligationSums>, ProjectionError> {
    let mut accounts_by_date: BTreeMap<NaiveDate, Vec<&String>> = BTreeMap::new();
    for (trade_date, account_id, _) in keys {
        accounts_by_date.entry(*trade_date).or_default().push(account_id);
    }
    let mut stored = BTreeMap::new();
    for (trade_date, mut account_ids) in accounts_by_date {
        account_ids.dedup();
        for chunk in account_ids.chunks(MAX_ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<DB>::new(OBLIGATIONS.select());
            query.push(" WHERE trade_date = ");
            DB::bind_cell(&mut query, Cell::Date(trade_date))?;
            query.push(" AND account_id IN ");
            let ids: Vec<Cell<'_>> = chunk.iter().map(|id| Cell::Text(id)).collect();
            push_list(&mut query, &ids)?;
            read_rows::<DB>(conn, &mut query, &mut stored).await?;
        }
    }
    // The accounts' other instruments came along with the wanted keys.
    let wanted: BTreeSet<&ObligationKey> = keys.iter().copied().collect();
    stored.retain(|key, _| wanted.contains(key));
    Ok(stored)
}

/// Adds the rows `query` selects to `stored`.
async fn read_rows<DB: Backend>(
    conn: &mut DB::Connection,
    query: &mut QueryBuilder<DB>,
    stored: &mut BTreeMap<ObligationKey, ObligationSums>,
) -> Result<(), ProjectionError> {
    for row in DB::fetch_all(conn, query).await? {
        let key = (
            DB::date(&row, "trade_date")?,
            DB::text(&row, "account_id")?,
            DB::text(&row, "instrument")?,
        );
        let sums = ObligationSums {
            net_quantity: DB::int(&row, "net_quantity")?,
            net_amount_cny: DB::money(&row, "net_amount")?,
            fees_cny: DB::money(&row, "fees")?,
        };
        stored.insert(key, sums);
    }
    Ok(())
}
