//! `orders`: every order as placed, with its status and the quantity filled so far.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::QueryBuilder;

use super::backend::{insert_rows, Backend, MAX_ROWS_PER_STATEMENT};
use super::columns::{Cell, Column, Money, OnConflict, Table};
use crate::ProjectionError;

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
