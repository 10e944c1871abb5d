//! What `verify` compares: the rows the event-fed tables should hold, derived from the
//! log alone by the runner's own derivation (`Changes`), as order-independent digests,
//! against the same digests of the tables. Both sides come from each table's one
//! column list.

use std::collections::BTreeMap;

use ledger_eventstore::{EventStore, RecordedEvent};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, on_store, Backend, Operation};
use super::changes::{Changes, RowChange};
use super::columns::Table;
use super::compliance::LARGE_CASH_ALERTS;
use super::journal::JOURNAL;
use super::obligations::{ObligationKey, ObligationRow, ObligationSums, OBLIGATIONS};
use super::orders::{OrderRow, ORDERS};
use super::trades::TRADES;
use crate::ProjectionError;

/// The tables besides balances and positions that `verify` compares with a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComparedTable {
    Trades,
    Orders,
    ClearingObligations,
    LargeCashAlerts,
    JournalEntries,
}

impl ComparedTable {
    pub const ALL: [ComparedTable; 5] = [
        ComparedTable::Trades,
        ComparedTable::Orders,
        ComparedTable::ClearingObligations,
        ComparedTable::LargeCashAlerts,
        ComparedTable::JournalEntries,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ComparedTable::Trades => "trades",
            ComparedTable::Orders => "orders",
            ComparedTable::ClearingObligations => "clearing_obligations",
            ComparedTable::LargeCashAlerts => "compliance_alerts (large_cash_movement)",
            ComparedTable::JournalEntries => "journal_entries",
        }
    }

    /// Every compared column of the table, as text.
    fn query(self) -> String {
        match self {
            ComparedTable::Trades => TRADES.select_compared_text(),
            ComparedTable::Orders => ORDERS.select_compared_text(),
            ComparedTable::ClearingObligations => OBLIGATIONS.select_compared_text(),
            ComparedTable::LargeCashAlerts => LARGE_CASH_ALERTS.select_compared_text(),
            ComparedTable::JournalEntries => JOURNAL.select_compared_text(),
        }
    }
}

/// An order-independent digest of a multiset of rows: the row count and the wrapping sum
/// of each row's SHA-256 (first 128 bits). Equal tables give equal digests whatever order
/// the database returns them in, and neither side has to hold the rows in memory.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowsDigest {
    pub rows: u64,
    sum: u128,
}

impl RowsDigest {
    pub(crate) fn add(&mut self, row: &[String]) {
        let mut hasher = Sha256::new();
        for field in row {
            hasher.update(canonical_field(field).as_bytes());
            // A separator no field holds, so ("ab","c") and ("a","bc") differ.
            hasher.update([0x1f]);
        }
        let hash = hasher.finalize();
        let mut first_128_bits = [0u8; 16];
        first_128_bits.copy_from_slice(&hash[..16]);
        self.rows += 1;
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first_128_bits));
    }

    fn add_row<R>(&mut self, table: &Table<R>, row: &R) {
        self.add(&table.compared_fields(row));
    }
}

/// Numbers compared by value, not by how a backend prints them (`5.2900` = `5.29`).
fn canonical_field(field: &str) -> String {
    match field.parse::<Decimal>() {
        Ok(number) => number.normalize().to_string(),
        Err(_) => field.to_owned(),
    }
}

/// What the event-fed tables should hold, derived from the log alone by the same rules as
/// the runner: `verify` compares it with the tables. Rows that later events never change
/// (trades, alerts, journal lines) go straight into a digest; orders and obligations,
/// which later events update, are kept until the end.
#[derive(Default)]
pub struct ExpectedRows {
    trades: RowsDigest,
    orders: BTreeMap<(String, String), OrderRow>,
    obligations: BTreeMap<ObligationKey, ObligationSums>,
    alerts: RowsDigest,
    journal: RowsDigest,
}

impl ExpectedRows {
    /// Adds the rows of these events, which follow the ones given before.
    pub fn apply(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let changes = Changes::of(events)?;
        for (key, add) in changes.obligations() {
            self.obligations.entry(key).or_default().add(&add);
        }
        for row in changes.rows {
            self.apply_row(row);
        }
        Ok(())
    }

    fn apply_row(&mut self, row: RowChange) {
        match row {
            RowChange::Trade(trade) => self.trades.add_row(&TRADES, &trade),
            RowChange::OrderPlaced(order) => {
                self.orders
                    .insert((order.account_id.clone(), order.order_id.clone()), order);
            }
            RowChange::Order(change) => {
                let (account_id, order_id) = change.key();
                if let Some(order) = self.orders.get_mut(&(account_id.to_owned(), order_id.to_owned())) {
                    order.apply(&change);
                }
            }
            RowChange::Alert(alert) => self.alerts.add_row(&LARGE_CASH_ALERTS, &alert),
            RowChange::Journal(line) => self.journal.add_row(&JOURNAL, &line),
        }
    }

    fn digest(&self, table: ComparedTable) -> RowsDigest {
        match table {
            ComparedTable::Trades => self.trades,
            ComparedTable::LargeCashAlerts => self.alerts,
            ComparedTable::JournalEntries => self.journal,
            ComparedTable::Orders => {
                let mut digest = RowsDigest::default();
                for order in self.orders.values() {
                    digest.add_row(&ORDERS, order);
                }
                digest
            }
            ComparedTable::ClearingObligations => {
                let mut digest = RowsDigest::default();
                for (key, sums) in &self.obligations {
                    let row = ObligationRow {
                        key: key.clone(),
                        sums: *sums,
                    };
                    digest.add_row(&OBLIGATIONS, &row);
                }
                digest
            }
        }
    }
}

/// A table whose rows are not the ones a replay of the log gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDifference {
    pub table: ComparedTable,
    pub rows: u64,
    pub expected_rows: u64,
}

/// Every compared table whose rows differ from `expected`. The tables must be caught up
/// to exactly the events `expected` saw.
pub async fn table_differences(
    store: &dyn EventStore,
    expected: &ExpectedRows,
) -> Result<Vec<TableDifference>, ProjectionError> {
    on_store(store, TableDifferences(expected)).await
}

struct TableDifferences<'a>(&'a ExpectedRows);

impl Operation for TableDifferences<'_> {
    type Output = Vec<TableDifference>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<TableDifference>, ProjectionError> {
        let mut conn = connection(pool).await?;
        let mut differences = Vec::new();
        for table in ComparedTable::ALL {
            let actual = DB::digest(&mut conn, &mut QueryBuilder::new(table.query())).await?;
            let wanted = self.0.digest(table);
            if actual != wanted {
                differences.push(TableDifference {
                    table,
                    rows: actual.rows,
                    expected_rows: wanted.rows,
                });
            }
        }
        Ok(differences)
    }
}
