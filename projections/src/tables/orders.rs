//! `orders`: every order as placed, with its status and the quantity filled so far; and
//! the blotter's reader of it ([`ReadOrders`]), filtered and paged in key order.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{Pool, QueryBuilder};

use super::backend::{
    connection, insert_rows, push_blotter_filter, push_list, Backend, Operation, MAX_ROWS_PER_STATEMENT,
};
use super::columns::{Cell, Column, Money, OnConflict, Table};
use super::trades::shown_price;
use crate::ProjectionError;

/// Most orders one read returns: a caller pages on with [`OrderFilter::after`].
pub const MAX_ORDER_ROWS: usize = 1_000;

/// The statuses of an order that can still be filled: placed (perhaps partly filled),
/// or asked to cancel and not yet confirmed. Every other status is final.
pub const OPEN_ORDER_STATUSES: [&str; 2] = ["open", "cancel_requested"];

/// Every status an order can have, as the `orders` table holds it.
pub const ORDER_STATUSES: [&str; 6] = ["open", "cancel_requested", "filled", "canceled", "rejected", "expired"];

/// Where a page of orders ends: the key of its last row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct OrderKey {
    pub account_id: String,
    pub order_id: String,
}

/// Which orders to read: each `Some` (and `open_only`) narrows the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFilter {
    pub account_id: Option<String>,
    pub trade_date: Option<NaiveDate>,
    /// Only orders in one of [`OPEN_ORDER_STATUSES`].
    pub open_only: bool,
    /// Only orders in this status (one of [`ORDER_STATUSES`]).
    pub status: Option<&'static str>,
    /// Only orders after this key: the last row of the previous page.
    pub after: Option<OrderKey>,
    /// Most rows to return; more than [`MAX_ORDER_ROWS`] reads [`MAX_ORDER_ROWS`].
    pub limit: usize,
}

impl Default for OrderFilter {
    fn default() -> Self {
        OrderFilter {
            account_id: None,
            trade_date: None,
            open_only: false,
            status: None,
            after: None,
            limit: MAX_ORDER_ROWS,
        }
    }
}

/// A row of `orders` as the blotter shows it: the limit price with at least two decimals
/// (so both backends print it alike).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderRecord {
    pub account_id: String,
    pub order_id: String,
    pub trade_date: NaiveDate,
    pub instrument: String,
    pub side: String,
    pub quantity: u64,
    pub limit_price_cny: Decimal,
    pub filled_quantity: u64,
    /// `open`, `cancel_requested`, `filled`, `canceled`, `rejected` or `expired`.
    pub status: String,
}

impl OrderRecord {
    /// The key a next page starts after.
    pub fn key(&self) -> OrderKey {
        OrderKey {
            account_id: self.account_id.clone(),
            order_id: self.order_id.clone(),
        }
    }
}

/// A row of `orders`.
#[derive(Debug, Clone)]
pub(crate) struct OrderRow {
    pub account_id: String,
    pub order_id: String,
    pub instrument: String,
    pub side: &'static str,
    pub quantity: u64,
    pub limit_price: Decimal,
    pub trade_date: NaiveDate,
    pub status: &'static str,
    pub filled_quantity: u64,
    pub as_of_position: u64,
}

pub(crate) const ORDERS: Table<OrderRow> = Table {
    name: "orders",
    on_conflict: OnConflict::Fail,
    filter: None,
    columns: &[
        Column::key("account_id", |o| Cell::Text(&o.account_id)),
        Column::key("order_id", |o| Cell::Text(&o.order_id)),
        Column::data("instrument", |o| Cell::Text(&o.instrument)),
        Column::data("side", |o| Cell::Text(o.side)),
        Column::data("quantity", |o| Cell::Count(o.quantity)),
        Column::data("limit_price", |o| Cell::Money(Money(o.limit_price))),
        Column::data("trade_date", |o| Cell::Date(o.trade_date)),
        Column::data("status", |o| Cell::Text(o.status)),
        Column::data("filled_quantity", |o| Cell::Count(o.filled_quantity)),
        Column::data("as_of_position", |o| Cell::Count(o.as_of_position)),
    ],
};

/// What a later event does to an order.
pub(crate) enum OrderChange {
    Filled {
        account_id: String,
        order_id: String,
        quantity: u64,
        position: u64,
    },
    Status {
        account_id: String,
        order_id: String,
        status: &'static str,
        position: u64,
    },
}

impl OrderChange {
    pub(crate) fn key(&self) -> (&str, &str) {
        match self {
            OrderChange::Filled {
                account_id, order_id, ..
            }
            | OrderChange::Status {
                account_id, order_id, ..
            } => (account_id, order_id),
        }
    }
}

impl OrderRow {
    pub(crate) fn apply(&mut self, change: &OrderChange) {
        match change {
            OrderChange::Filled { quantity, position, .. } => {
                self.filled_quantity += quantity;
                self.as_of_position = *position;
            }
            OrderChange::Status { status, position, .. } => {
                self.status = status;
                self.as_of_position = *position;
            }
        }
    }
}

/// What a batch did to an order placed before it.
pub(crate) struct OrderUpdate {
    pub account_id: String,
    pub order_id: String,
    pub filled_quantity_added: u64,
    /// The last status the batch gave it; `None` keeps the stored one.
    pub status: Option<&'static str>,
    pub position: u64,
}

impl OrderUpdate {
    fn apply(&mut self, change: &OrderChange) {
        match change {
            OrderChange::Filled { quantity, position, .. } => {
                self.filled_quantity_added += quantity;
                self.position = *position;
            }
            OrderChange::Status { status, position, .. } => {
                self.status = Some(status);
                self.position = *position;
            }
        }
    }
}

/// A batch's orders: those it placed, with what the rest of the batch did to them, and
/// one update per older order (at most one row per order per statement, as
/// PostgreSQL's upserts require).
#[derive(Default)]
pub(crate) struct OrderWrites {
    pub placed: Vec<OrderRow>,
    placed_index: BTreeMap<(String, String), usize>,
    pub updates: Vec<OrderUpdate>,
    update_index: BTreeMap<(String, String), usize>,
}

impl OrderWrites {
    pub(crate) fn place(&mut self, order: OrderRow) {
        let key = (order.account_id.clone(), order.order_id.clone());
        self.placed_index.insert(key, self.placed.len());
        self.placed.push(order);
    }

    pub(crate) fn change(&mut self, change: &OrderChange) {
        let (account_id, order_id) = change.key();
        let key = (account_id.to_owned(), order_id.to_owned());
        if let Some(&index) = self.placed_index.get(&key) {
            self.placed[index].apply(change);
            return;
        }
        let index = *self.update_index.entry(key).or_insert_with(|| {
            self.updates.push(OrderUpdate {
                account_id: account_id.to_owned(),
                order_id: order_id.to_owned(),
                filled_quantity_added: 0,
                status: None,
                position: 0,
            });
            self.updates.len() - 1
        });
        self.updates[index].apply(change);
    }

    /// Orders placed in the batch go in whole; older orders are updated.
    pub(crate) async fn write<DB: Backend>(&self, conn: &mut DB::Connection) -> Result<(), ProjectionError> {
        insert_rows::<DB, _>(conn, &ORDERS, &self.placed).await?;
        for chunk in self.updates.chunks(MAX_ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<DB>::new(
                "UPDATE orders SET filled_quantity = orders.filled_quantity + v.column3, \
                 status = COALESCE(v.column4, orders.status), as_of_position = v.column5 FROM (",
            );
            let mut bound = Ok(());
            query.push_values(chunk, |mut values, update| {
                let cells = [
                    Cell::Text(&update.account_id),
                    Cell::Text(&update.order_id),
                    Cell::Count(update.filled_quantity_added),
                    Cell::OptionalText(update.status),
                    Cell::Count(update.position),
                ];
                for cell in cells {
                    if let Err(error) = DB::bind_cell(&mut values, cell) {
                        bound = Err(error);
                    }
                }
            });
            bound?;
            query.push(") AS v WHERE orders.account_id = v.column1 AND orders.order_id = v.column2");
            DB::execute(conn, &mut query).await?;
        }
        Ok(())
    }
}

/// The blotter's orders: those `filter` keeps, ordered by account and order id (the
/// table's key, so paging is exact), at most [`MAX_ORDER_ROWS`].
pub(crate) struct ReadOrders<'a>(pub &'a OrderFilter);

impl Operation for ReadOrders<'_> {
    type Output = Vec<OrderRecord>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<OrderRecord>, ProjectionError> {
        let filter = self.0;
        let mut query = QueryBuilder::<DB>::new(ORDERS.select());
        push_blotter_filter(&mut query, filter.account_id.as_deref(), filter.trade_date)?;
        if filter.open_only {
            query.push(" AND status IN ");
            push_list(&mut query, &OPEN_ORDER_STATUSES.map(Cell::Text))?;
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ");
            DB::bind_cell(&mut query, Cell::Text(status))?;
        }
        if let Some(after) = &filter.after {
            query.push(" AND (account_id > ");
            DB::bind_cell(&mut query, Cell::Text(&after.account_id))?;
            query.push(" OR (account_id = ");
            DB::bind_cell(&mut query, Cell::Text(&after.account_id))?;
            query.push(" AND order_id > ");
            DB::bind_cell(&mut query, Cell::Text(&after.order_id))?;
            query.push("))");
        }
        query.push(" ORDER BY account_id, order_id LIMIT ");
        DB::bind_cell(&mut query, Cell::Count(filter.limit.min(MAX_ORDER_ROWS) as u64))?;
        let rows = DB::fetch_all(&mut *connection(pool).await?, &mut query).await?;
        rows.iter().map(order_record_of::<DB>).collect()
    }
}

fn order_record_of<DB: Backend>(row: &DB::Row) -> Result<OrderRecord, ProjectionError> {
    Ok(OrderRecord {
        account_id: DB::text(row, "account_id")?,
        order_id: DB::text(row, "order_id")?,
        trade_date: DB::date(row, "trade_date")?,
        instrument: DB::text(row, "instrument")?,
        side: DB::text(row, "side")?,
        quantity: DB::count(row, "quantity")?,
        limit_price_cny: shown_price(DB::money(row, "limit_price")?),
        filled_quantity: DB::count(row, "filled_quantity")?,
        status: DB::text(row, "status")?,
    })
}
