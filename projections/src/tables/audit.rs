//! What `verify` compares: the rows every table should hold, as order-independent
//! digests, against the same digests of the tables. The event-fed tables' rows are
//! derived from the log alone by the runner's own derivation (`Changes`); the rows of
//! `account_balances` and `positions` from the replayed accounts by the derivation the
//! runner writes them with. Both sides come from each table's one column list.

use std::collections::BTreeMap;

use ledger_domain::account::{Account, AccountEvent};
use ledger_eventstore::{EventStore, RawEvent};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, on_store, push_list, Backend, Operation, MAX_ROWS_PER_STATEMENT};
use super::balances::{AccountBalance, AsOf, BALANCES};
use super::changes::{row_changes, Placed, RowChange};
use super::columns::{Cell, Table};
use super::compliance::LARGE_CASH_ALERTS;
use super::journal::JOURNAL;
use super::obligations::{ObligationKey, ObligationRow, ObligationSums, OBLIGATIONS};
use super::orders::{OrderRow, ORDERS};
use super::positions::{HeldPosition, POSITIONS};
use super::trades::TRADES;
use crate::{AccountsView, ProjectionError};

/// Accounts one probe for the first differing account reads: one bind each.
const MAX_ACCOUNTS_PER_PROBE: usize = MAX_ROWS_PER_STATEMENT;

// The probes add their own `WHERE account_id IN (…)`.
const _: () = assert!(BALANCES.filter.is_none() && POSITIONS.filter.is_none());

/// The tables that `verify` compares with a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComparedTable {
    AccountBalances,
    Positions,
    Trades,
    Orders,
    ClearingObligations,
    LargeCashAlerts,
    JournalEntries,
}

impl ComparedTable {
    pub const ALL: [ComparedTable; 7] = [
        ComparedTable::AccountBalances,
        ComparedTable::Positions,
        ComparedTable::Trades,
        ComparedTable::Orders,
        ComparedTable::ClearingObligations,
        ComparedTable::LargeCashAlerts,
        ComparedTable::JournalEntries,
    ];

    /// The tables fed by the events' own rows, compared with [`ExpectedRows`].
    pub const EVENT_FED: [ComparedTable; 5] = [
        ComparedTable::Trades,
        ComparedTable::Orders,
        ComparedTable::ClearingObligations,
        ComparedTable::LargeCashAlerts,
        ComparedTable::JournalEntries,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ComparedTable::AccountBalances => "account_balances",
            ComparedTable::Positions => "positions",
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
            ComparedTable::AccountBalances => BALANCES.select_compared_text(),
            ComparedTable::Positions => POSITIONS.select_compared_text(),
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
    /// Adds the rows of one account event (`event`, decoded from `raw`), which follows
    /// the ones given before.
    pub fn add_event(&mut self, raw: &RawEvent, event: &AccountEvent) {
        for row in row_changes(&Placed::of_raw(raw), event) {
            self.apply_row(row);
        }
    }

    fn apply_row(&mut self, row: RowChange) {
        match row {
            RowChange::Trade(trade) => {
                self.obligations
                    .entry(trade.obligation_key())
                    .or_default()
                    .add_trade(&trade);
                self.trades.add_row(&TRADES, &trade);
            }
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

    /// The digest of an event-fed table; `None` for the tables kept per account, which
    /// [`TableDifference::in_account_tables`] compares.
    fn digest(&self, table: ComparedTable) -> Option<RowsDigest> {
        let digest = match table {
            ComparedTable::AccountBalances | ComparedTable::Positions => return None,
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
        };
        Some(digest)
    }
}

/// A table whose rows are not the ones a replay of the log gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDifference {
    pub table: ComparedTable,
    pub rows: u64,
    pub expected_rows: u64,
    /// For a table kept per account, the first account (by id) whose rows differ; `None`
    /// there means only rows of accounts the log does not hold differ.
    pub first_account: Option<String>,
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
        for table in ComparedTable::EVENT_FED {
            let Some(wanted) = self.0.digest(table) else {
                continue;
            };
            let actual = DB::digest(&mut conn, &mut QueryBuilder::new(table.query())).await?;
            if actual != wanted {
                differences.push(TableDifference {
                    table,
                    rows: actual.rows,
                    expected_rows: wanted.rows,
                    first_account: None,
                });
            }
        }
        Ok(differences)
    }
}

/// A table the runner derives from each account's state.
#[derive(Debug, Clone, Copy)]
enum AccountTable {
    Balances,
    Positions,
}

impl AccountTable {
    const ALL: [AccountTable; 2] = [AccountTable::Balances, AccountTable::Positions];

    fn compared(self) -> ComparedTable {
        match self {
            AccountTable::Balances => ComparedTable::AccountBalances,
            AccountTable::Positions => ComparedTable::Positions,
        }
    }

    /// The digest of the rows these accounts should have in the table, by the runner's own
    /// derivation. `as_of_position` is not compared (which runner batch wrote a row is not
    /// the log's to say), so the rows carry none.
    fn expected<'a>(self, accounts: impl IntoIterator<Item = (&'a String, &'a Account)>) -> RowsDigest {
        let mut digest = RowsDigest::default();
        for (account_id, account) in accounts {
            match self {
                AccountTable::Balances => {
                    let row = AccountBalance::of(account_id, account);
                    digest.add_row(&BALANCES, &AsOf { row, position: 0 });
                }
                AccountTable::Positions => {
                    for row in HeldPosition::all_of(account_id, account) {
                        digest.add_row(&POSITIONS, &AsOf { row, position: 0 });
                    }
                }
            }
        }
        digest
    }

    /// The digest of the table's rows of these accounts only.
    async fn actual_of<DB: Backend>(
        self,
        conn: &mut DB::Connection,
        account_ids: &[&String],
    ) -> Result<RowsDigest, ProjectionError> {
        let mut query = QueryBuilder::<DB>::new(self.compared().query());
        query.push(" WHERE account_id IN ");
        let ids: Vec<Cell<'_>> = account_ids.iter().map(|id| Cell::Text(id)).collect();
        push_list(&mut query, &ids)?;
        DB::digest(conn, &mut query).await
    }

    /// The first account whose rows differ: a chunk of accounts at a time, then one by one
    /// inside the first chunk that differs. Run only once the whole table is known to differ.
    async fn first_differing_account<DB: Backend>(
        self,
        conn: &mut DB::Connection,
        view: &AccountsView,
    ) -> Result<Option<String>, ProjectionError> {
        let accounts: Vec<(&String, &Account)> = view.accounts.iter().collect();
        for chunk in accounts.chunks(MAX_ACCOUNTS_PER_PROBE) {
            let ids: Vec<&String> = chunk.iter().map(|(id, _)| *id).collect();
            if self.actual_of::<DB>(conn, &ids).await? == self.expected(chunk.iter().copied()) {
                continue;
            }
            for &(id, account) in chunk {
                if self.actual_of::<DB>(conn, &[id]).await? != self.expected([(id, account)]) {
                    return Ok(Some(id.clone()));
                }
            }
        }
        Ok(None)
    }
}

impl TableDifference {
    /// Whether `account_balances` and `positions` hold, on every compared column, the rows
    /// the replayed accounts give; each that does not, with the first account that
    /// differs. The tables must be caught up to exactly the events `accounts` saw.
    pub async fn in_account_tables(
        store: &dyn EventStore,
        accounts: &AccountsView,
    ) -> Result<Vec<TableDifference>, ProjectionError> {
        on_store(store, AccountTableDifferences(accounts)).await
    }
}

struct AccountTableDifferences<'a>(&'a AccountsView);

impl Operation for AccountTableDifferences<'_> {
    type Output = Vec<TableDifference>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<TableDifference>, ProjectionError> {
        let mut conn = connection(pool).await?;
        let mut differences = Vec::new();
        for table in AccountTable::ALL {
            let query = table.compared().query();
            let actual = DB::digest(&mut conn, &mut QueryBuilder::new(query)).await?;
            let wanted = table.expected(&self.0.accounts);
            if actual != wanted {
                differences.push(TableDifference {
                    table: table.compared(),
                    rows: actual.rows,
                    expected_rows: wanted.rows,
                    first_account: table.first_differing_account::<DB>(&mut conn, self.0).await?,
                });
            }
        }
        Ok(differences)
    }
}
