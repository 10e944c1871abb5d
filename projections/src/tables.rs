//! The accounts read models as SQL tables, kept by a checkpointed runner.
//!
//! `account_balances` and `positions` live in the ledger's own database. The
//! runner reads the log from its checkpoint and applies each batch of events,
//! the rows it changes and the new checkpoint in ONE transaction: a crash at
//! any point neither loses nor doubles an effect, and a rerun resumes. The
//! rows are derived by the domain's own `Account::apply` from each account's
//! state, kept as JSON in `projection_account_state`, so the read model can
//! never disagree with the aggregate about a rule.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use cqrs_es::Aggregate;
use futures_util::TryStreamExt;
use ledger_domain::account::{Account, AccountEvent, CashDirection};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::ids::OrderId;
use ledger_domain::journal::postings;
use ledger_domain::money::format_cny;
use ledger_domain::Side;
use ledger_eventstore::chain::format_recorded_at;
use ledger_eventstore::codec::decode;
use ledger_eventstore::{commit_or_roll_back, read_towards, Database, EventStore, RecordedEvent};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::{BalanceRow, PositionRow, ProjectionError};

/// The name of the accounts projection's checkpoint.
pub const ACCOUNTS_PROJECTION: &str = "accounts";
/// The checkpoint of the refused-suitability alerts. Refusals write no event, so its
/// position is not a log position: it counts the refusals covered by the last pass.
pub const REFUSAL_ALERTS: &str = "refusal_alerts";
/// Refusals that raise an alert: suitability, with the account the command named.
const SUITABILITY_REFUSALS: &str = "FROM command_outcomes WHERE code = 'suitability' AND account_id IS NOT NULL";
/// Events applied per transaction by default.
pub const DEFAULT_BATCH_EVENTS: usize = 1_000;

/// How a run goes. `fault` makes it fail on purpose, to test crash safety.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub batch_events: usize,
    pub fault: Option<Fault>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch_events: DEFAULT_BATCH_EVENTS,
            fault: None,
        }
    }
}

/// A failure injected into a run, as a crash would happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Stop with an error after this many batches were committed.
    AfterBatches(u32),
    /// Fail inside this batch (0-based), after its rows were written, before its commit.
    MidBatch(u32),
}

/// Catches the projection up with the log's head as of the call. Returns the events applied.
pub async fn run_accounts(
    store: &dyn EventStore,
    options: RunOptions,
    mut on_batch: impl FnMut(u64),
) -> Result<u64, ProjectionError> {
    assert!(options.batch_events > 0 && options.batch_events <= ledger_eventstore::MAX_READ_EVENTS);
    let head = store.head_position().await?;
    let database = store.database();
    let mut applied = 0;
    let mut batch_index = 0u32;
    loop {
        let checkpoint = match &database {
            Database::Sqlite(pool) => sqlite::checkpoint(pool, ACCOUNTS_PROJECTION).await?,
            Database::Postgres(pool) => postgres::checkpoint(pool, ACCOUNTS_PROJECTION).await?,
        };
        let events = read_towards(store, checkpoint, head, options.batch_events).await?;
        let Some(last) = events.last() else {
            match &database {
                Database::Sqlite(pool) => sqlite::alert_refusals(pool).await?,
                Database::Postgres(pool) => postgres::alert_refusals(pool).await?,
            };
            return Ok(applied);
        };
        let last_position = last.global_position;
        let fail_mid_batch = options.fault == Some(Fault::MidBatch(batch_index));
        let changes = Changes::of(&events)?;
        match &database {
            Database::Sqlite(pool) => sqlite::apply(pool, checkpoint, last_position, changes, fail_mid_batch).await?,
            Database::Postgres(pool) => {
                postgres::apply(pool, checkpoint, last_position, changes, fail_mid_batch).await?
            }
        }
        applied += events.len() as u64;
        batch_index += 1;
        on_batch(last_position);
        if options.fault == Some(Fault::AfterBatches(batch_index)) {
            return Err(ProjectionError::Injected(format!(
                "stopped after {batch_index} committed batches"
            )));
        }
    }
}

/// Empties the accounts projection and its checkpoint (one transaction), then runs it from zero.
pub async fn rebuild_accounts(
    store: &dyn EventStore,
    options: RunOptions,
    on_batch: impl FnMut(u64),
) -> Result<u64, ProjectionError> {
    match store.database() {
        Database::Sqlite(pool) => sqlite::reset(&pool).await?,
        Database::Postgres(pool) => postgres::reset(&pool).await?,
    }
    run_accounts(store, options, on_batch).await
}

/// The position the accounts projection has reached.
pub async fn accounts_checkpoint(store: &dyn EventStore) -> Result<u64, ProjectionError> {
    match store.database() {
        Database::Sqlite(pool) => sqlite::checkpoint(&pool, ACCOUNTS_PROJECTION).await,
        Database::Postgres(pool) => postgres::checkpoint(&pool, ACCOUNTS_PROJECTION).await,
    }
}

/// Whether the last pass of the refusal alerts saw every suitability refusal the store
/// holds now; if not, a refusal may simply not be alerted yet.
pub async fn refusal_alerts_caught_up(store: &dyn EventStore) -> Result<bool, ProjectionError> {
    let query = format!("SELECT COUNT(*) {SUITABILITY_REFUSALS}");
    let (covered, refusals) = match store.database() {
        Database::Sqlite(pool) => (
            sqlite::checkpoint(&pool, REFUSAL_ALERTS).await?,
            sqlite::count(&pool, &query).await?,
        ),
        Database::Postgres(pool) => (
            postgres::checkpoint(&pool, REFUSAL_ALERTS).await?,
            postgres::count(&pool, &query).await?,
        ),
    };
    Ok(i64::try_from(covered).is_ok_and(|covered| covered == refusals))
}

/// `account_balances`, ordered by account.
pub async fn read_balances(store: &dyn EventStore) -> Result<Vec<BalanceRow>, ProjectionError> {
    match store.database() {
        Database::Sqlite(pool) => sqlite::balances(&pool).await,
        Database::Postgres(pool) => postgres::balances(&pool).await,
    }
}

/// `positions`, ordered by account and instrument.
pub async fn read_positions(store: &dyn EventStore) -> Result<Vec<PositionRow>, ProjectionError> {
    match store.database() {
        Database::Sqlite(pool) => sqlite::positions(&pool).await,
        Database::Postgres(pool) => postgres::positions(&pool).await,
    }
}

/// The `trades` of one trade date, in log order.
pub async fn read_trades_of(store: &dyn EventStore, trade_date: NaiveDate) -> Result<Vec<Trade>, ProjectionError> {
    match store.database() {
        Database::Sqlite(pool) => sqlite::trades_of(&pool, trade_date).await,
        Database::Postgres(pool) => postgres::trades_of(&pool, trade_date).await,
    }
}

/// Replaces the reconciliation breaks of a trade date, in one transaction.
pub async fn replace_breaks(
    store: &dyn EventStore,
    trade_date: NaiveDate,
    breaks: &[crate::reconcile::Break],
) -> Result<(), ProjectionError> {
    match store.database() {
        Database::Sqlite(pool) => sqlite::replace_breaks(&pool, trade_date, breaks).await,
        Database::Postgres(pool) => postgres::replace_breaks(&pool, trade_date, breaks).await,
    }
}

/// The trial balance of `journal_entries`: per ledger account, the sum of its postings.
pub async fn read_trial_balance(store: &dyn EventStore) -> Result<BTreeMap<String, Decimal>, ProjectionError> {
    let rows = match store.database() {
        Database::Sqlite(pool) => sqlite::journal_amounts(&pool).await?,
        Database::Postgres(pool) => postgres::journal_amounts(&pool).await?,
    };
    let mut balance: BTreeMap<String, Decimal> = BTreeMap::new();
    for (account, amount) in rows {
        *balance.entry(account).or_default() += parse_money(&amount)?;
    }
    Ok(balance)
}

/// A row of `trades`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trade {
    pub global_position: u64,
    pub account_id: String,
    pub instrument: String,
    pub side: String,
    pub quantity: u64,
    pub value_cny: Decimal,
    pub fees: FeeBreakdown,
}

/// Which accounts a batch touches, and their events in order.
struct Changes {
    events_by_account: BTreeMap<String, Vec<AccountEvent>>,
    rows: Vec<RowChange>,
}

/// A row an event adds or changes beside the balances and positions.
enum RowChange {
    Trade(TradeRow),
    OrderPlaced {
        account_id: String,
        order_id: String,
        instrument: String,
        side: &'static str,
        quantity: u64,
        limit_price: String,
        trade_date: String,
        position: u64,
    },
    OrderFilled {
        account_id: String,
        order_id: String,
        quantity: u64,
        position: u64,
    },
    OrderStatus {
        account_id: String,
        order_id: String,
        status: &'static str,
        position: u64,
    },
    Alert {
        position: u64,
        account_id: String,
        direction: &'static str,
        amount: String,
        threshold: String,
        bank_ref: String,
        recorded_at: String,
    },
    Journal {
        position: u64,
        line: u64,
        account_id: String,
        event_type: String,
        ledger_account: String,
        amount: String,
    },
}

/// Most rows one multi-row statement carries: 17 columns × 500 rows stays well under
/// SQLite's 32,766 and PostgreSQL's 65,535 bind parameters.
const MAX_ROWS_PER_STATEMENT: usize = 500;

/// A batch's row changes grouped by the statement that writes them.
struct RowsByTable<'a> {
    trades: Vec<&'a TradeRow>,
    new_orders: Vec<NewOrder<'a>>,
    order_updates: Vec<OrderUpdate<'a>>,
    alerts: Vec<AlertRow<'a>>,
    journal: Vec<JournalRow<'a>>,
}

/// An order placed in the batch, with what the rest of the batch did to it.
struct NewOrder<'a> {
    account_id: &'a str,
    order_id: &'a str,
    instrument: &'a str,
    side: &'static str,
    quantity: u64,
    limit_price: &'a str,
    trade_date: &'a str,
    status: &'static str,
    filled_quantity: u64,
    position: u64,
}

/// What the batch did to an order placed before it.
struct OrderUpdate<'a> {
    account_id: &'a str,
    order_id: &'a str,
    filled_quantity_added: u64,
    /// The last status the batch gave it; `None` keeps the stored one.
    status: Option<&'static str>,
    position: u64,
}

struct AlertRow<'a> {
    position: u64,
    account_id: &'a str,
    direction: &'static str,
    amount: &'a str,
    threshold: &'a str,
    bank_ref: &'a str,
    recorded_at: &'a str,
}

struct JournalRow<'a> {
    position: u64,
    line: u64,
    account_id: &'a str,
    event_type: &'a str,
    ledger_account: &'a str,
    amount: &'a str,
}

impl<'a> RowsByTable<'a> {
    /// Groups the rows, folding every order's changes into one insert or one update
    /// (at most one row per order per statement, as PostgreSQL's upserts require).
    fn of(rows: &'a [RowChange]) -> Self {
        let mut grouped = RowsByTable {
            trades: Vec::new(),
            new_orders: Vec::new(),
            order_updates: Vec::new(),
            alerts: Vec::new(),
            journal: Vec::new(),
        };
        let mut new_order_index: BTreeMap<(&'a str, &'a str), usize> = BTreeMap::new();
        let mut update_index: BTreeMap<(&'a str, &'a str), usize> = BTreeMap::new();
        for row in rows {
            match row {
                RowChange::Trade(trade) => grouped.trades.push(trade),
                RowChange::OrderPlaced {
                    account_id,
                    order_id,
                    instrument,
                    side,
                    quantity,
                    limit_price,
                    trade_date,
                    position,
                } => {
                    new_order_index.insert((account_id, order_id), grouped.new_orders.len());
                    grouped.new_orders.push(NewOrder {
                        account_id,
                        order_id,
                        instrument,
                        side,
                        quantity: *quantity,
                        limit_price,
                        trade_date,
                        status: "open",
                        filled_quantity: 0,
                        position: *position,
                    });
                }
                RowChange::OrderFilled {
                    account_id,
                    order_id,
                    quantity,
                    position,
                } => {
                    let key = (account_id.as_str(), order_id.as_str());
                    if let Some(&index) = new_order_index.get(&key) {
                        grouped.new_orders[index].filled_quantity += quantity;
                        grouped.new_orders[index].position = *position;
                    } else {
                        let update = grouped.order_update(&mut update_index, key);
                        update.filled_quantity_added += quantity;
                        update.position = *position;
                    }
                }
                RowChange::OrderStatus {
                    account_id,
                    order_id,
                    status,
                    position,
                } => {
                    let key = (account_id.as_str(), order_id.as_str());
                    if let Some(&index) = new_order_index.get(&key) {
                        grouped.new_orders[index].status = status;
                        grouped.new_orders[index].position = *position;
                    } else {
                        let update = grouped.order_update(&mut update_index, key);
                        update.status = Some(status);
                        update.position = *position;
                    }
                }
                RowChange::Alert {
                    position,
                    account_id,
                    direction,
                    amount,
                    threshold,
                    bank_ref,
                    recorded_at,
                } => grouped.alerts.push(AlertRow {
                    position: *position,
                    account_id,
                    direction,
                    amount,
                    threshold,
                    bank_ref,
                    recorded_at,
                }),
                RowChange::Journal {
                    position,
                    line,
                    account_id,
                    event_type,
                    ledger_account,
                    amount,
                } => grouped.journal.push(JournalRow {
                    position: *position,
                    line: *line,
                    account_id,
                    event_type,
                    ledger_account,
                    amount,
                }),
            }
        }
        grouped
    }

    fn order_update(
        &mut self,
        index: &mut BTreeMap<(&'a str, &'a str), usize>,
        key: (&'a str, &'a str),
    ) -> &mut OrderUpdate<'a> {
        let at = *index.entry(key).or_insert_with(|| {
            self.order_updates.push(OrderUpdate {
                account_id: key.0,
                order_id: key.1,
                filled_quantity_added: 0,
                status: None,
                position: 0,
            });
            self.order_updates.len() - 1
        });
        &mut self.order_updates[at]
    }
}

/// One row of `trades`: a fill with each fee, as the clearing staff read it.
struct TradeRow {
    position: u64,
    account_id: String,
    order_id: String,
    exec_id: String,
    instrument: String,
    side: &'static str,
    trade_date: String,
    quantity: u64,
    price: String,
    value_cny: Decimal,
    fees: FeeBreakdown,
    net_cash_cny: Decimal,
}

fn row_changes(recorded: &RecordedEvent, event: &AccountEvent) -> Vec<RowChange> {
    let mut changes = event_row_changes(recorded, event);
    let account_id = &recorded.stream.aggregate_id;
    for (line, posting) in postings(account_id, event).into_iter().enumerate() {
        changes.push(RowChange::Journal {
            position: recorded.global_position,
            line: line as u64 + 1,
            account_id: account_id.clone(),
            event_type: recorded.event_type.clone(),
            ledger_account: posting.account,
            amount: format_cny(posting.amount_cny),
        });
    }
    changes
}

fn event_row_changes(recorded: &RecordedEvent, event: &AccountEvent) -> Vec<RowChange> {
    let account_id = recorded.stream.aggregate_id.clone();
    let position = recorded.global_position;
    let status = |order_id: &OrderId, status| RowChange::OrderStatus {
        account_id: account_id.clone(),
        order_id: order_id.to_string(),
        status,
        position,
    };
    match event {
        AccountEvent::OrderPlaced {
            order_id,
            instrument,
            side,
            quantity,
            limit_price,
            trade_date,
            ..
        } => {
            vec![RowChange::OrderPlaced {
                account_id,
                order_id: order_id.to_string(),
                instrument: instrument.to_string(),
                side: side.as_str(),
                quantity: *quantity,
                limit_price: limit_price.to_string(),
                trade_date: trade_date.to_string(),
                position,
            }]
        }
        AccountEvent::FillBooked {
            order_id,
            exec_id,
            instrument,
            side,
            trade_date,
            quantity,
            price,
            value_cny,
            fees,
            ..
        } => {
            let net_cash_cny = match side {
                Side::Buy => -(value_cny + fees.total_cny()),
                Side::Sell => value_cny - fees.total_cny(),
            };
            vec![
                RowChange::OrderFilled {
                    account_id: account_id.clone(),
                    order_id: order_id.to_string(),
                    quantity: *quantity,
                    position,
                },
                RowChange::Trade(TradeRow {
                    position,
                    account_id,
                    order_id: order_id.to_string(),
                    exec_id: exec_id.to_string(),
                    instrument: instrument.to_string(),
                    side: side.as_str(),
                    trade_date: trade_date.to_string(),
                    quantity: *quantity,
                    price: price.to_string(),
                    value_cny: *value_cny,
                    fees: *fees,
                    net_cash_cny,
                }),
            ]
        }
        AccountEvent::CancelRequested { order_id } => vec![status(order_id, "cancel_requested")],
        AccountEvent::OrderCompleted { order_id, .. } => vec![status(order_id, "filled")],
        AccountEvent::OrderCanceled { order_id, .. } => vec![status(order_id, "canceled")],
        AccountEvent::OrderRejected { order_id, .. } => vec![status(order_id, "rejected")],
        AccountEvent::OrderExpired { order_id, .. } => vec![status(order_id, "expired")],
        AccountEvent::LargeCashMovementFlagged {
            direction,
            amount_cny,
            threshold_cny,
            bank_ref,
        } => vec![RowChange::Alert {
            position,
            account_id,
            direction: match direction {
                CashDirection::Deposit => "deposit",
                CashDirection::Withdrawal => "withdrawal",
            },
            amount: format_cny(*amount_cny),
            threshold: format_cny(*threshold_cny),
            bank_ref: bank_ref.to_string(),
            recorded_at: format_recorded_at(&recorded.metadata.recorded_at),
        }],
        _ => vec![],
    }
}

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

    /// Every column the replay determines, as text, in the order `ExpectedRows` builds them.
    fn query(self) -> &'static str {
        match self {
            ComparedTable::Trades => {
                "SELECT CAST(global_position AS TEXT), account_id, order_id, exec_id, instrument, side, \
                 CAST(trade_date AS TEXT), CAST(quantity AS TEXT), CAST(price AS TEXT), CAST(value AS TEXT), \
                 CAST(commission AS TEXT), CAST(stamp_duty AS TEXT), CAST(transfer_fee AS TEXT), \
                 CAST(handling_fee AS TEXT), CAST(regulatory_fee AS TEXT), CAST(fees AS TEXT), \
                 CAST(net_cash AS TEXT) FROM trades"
            }
            ComparedTable::Orders => {
                "SELECT account_id, order_id, instrument, side, CAST(quantity AS TEXT), \
                 CAST(limit_price AS TEXT), CAST(trade_date AS TEXT), status, CAST(filled_quantity AS TEXT), \
                 CAST(as_of_position AS TEXT) FROM orders"
            }
            ComparedTable::ClearingObligations => {
                "SELECT CAST(trade_date AS TEXT), account_id, instrument, CAST(net_quantity AS TEXT), \
                 CAST(net_amount AS TEXT), CAST(fees AS TEXT) FROM clearing_obligations"
            }
            ComparedTable::LargeCashAlerts => {
                "SELECT alert_id, CAST(global_position AS TEXT), account_id, direction, CAST(amount AS TEXT), \
                 CAST(threshold AS TEXT), bank_ref FROM compliance_alerts WHERE kind = 'large_cash_movement'"
            }
            ComparedTable::JournalEntries => {
                "SELECT CAST(global_position AS TEXT), CAST(line AS TEXT), account_id, event_type, \
                 ledger_account, CAST(amount AS TEXT) FROM journal_entries"
            }
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
    fn add(&mut self, row: &[String]) {
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
    orders: BTreeMap<(String, String), ExpectedOrder>,
    obligations: BTreeMap<(String, String, String), Obligation>,
    alerts: RowsDigest,
    journal: RowsDigest,
}

/// An order row as the replay builds it: the placed fields, then what fills and
/// status changes moved.
struct ExpectedOrder {
    fields: Vec<String>,
    status: &'static str,
    filled_quantity: u64,
    as_of_position: u64,
}

impl ExpectedRows {
    /// Adds the rows of these events, which follow the ones given before.
    pub fn apply(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let changes = Changes::of(events)?;
        for ((trade_date, account_id, instrument), add) in changes.obligations() {
            let sum = self
                .obligations
                .entry((trade_date, account_id, instrument))
                .or_default();
            sum.net_quantity += add.net_quantity;
            sum.net_amount_cny += add.net_amount_cny;
            sum.fees_cny += add.fees_cny;
        }
        for row in changes.rows {
            self.apply_row(row);
        }
        Ok(())
    }

    fn apply_row(&mut self, row: RowChange) {
        match row {
            RowChange::Trade(t) => self.trades.add(&[
                t.position.to_string(),
                t.account_id,
                t.order_id,
                t.exec_id,
                t.instrument,
                t.side.to_owned(),
                t.trade_date,
                t.quantity.to_string(),
                t.price,
                format_cny(t.value_cny),
                format_cny(t.fees.commission_cny),
                format_cny(t.fees.stamp_duty_cny),
                format_cny(t.fees.transfer_fee_cny),
                format_cny(t.fees.handling_fee_cny),
                format_cny(t.fees.regulatory_fee_cny),
                format_cny(t.fees.total_cny()),
                format_cny(t.net_cash_cny),
            ]),
            RowChange::OrderPlaced {
                account_id,
                order_id,
                instrument,
                side,
                quantity,
                limit_price,
                trade_date,
                position,
            } => {
                let fields = vec![
                    account_id.clone(),
                    order_id.clone(),
                    instrument,
                    side.to_owned(),
                    quantity.to_string(),
                    limit_price,
                    trade_date,
                ];
                let order = ExpectedOrder {
                    fields,
                    status: "open",
                    filled_quantity: 0,
                    as_of_position: position,
                };
                self.orders.insert((account_id, order_id), order);
            }
            RowChange::OrderFilled {
                account_id,
                order_id,
                quantity,
                position,
            } => {
                if let Some(order) = self.orders.get_mut(&(account_id, order_id)) {
                    order.filled_quantity += quantity;
                    order.as_of_position = position;
                }
            }
            RowChange::OrderStatus {
                account_id,
                order_id,
                status,
                position,
            } => {
                if let Some(order) = self.orders.get_mut(&(account_id, order_id)) {
                    order.status = status;
                    order.as_of_position = position;
                }
            }
            RowChange::Alert {
                position,
                account_id,
                direction,
                amount,
                threshold,
                bank_ref,
                ..
            } => self.alerts.add(&[
                format!("event:{position}"),
                position.to_string(),
                account_id,
                direction.to_owned(),
                amount,
                threshold,
                bank_ref,
            ]),
            RowChange::Journal {
                position,
                line,
                account_id,
                event_type,
                ledger_account,
                amount,
            } => self.journal.add(&[
                position.to_string(),
                line.to_string(),
                account_id,
                event_type,
                ledger_account,
                amount,
            ]),
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
                    let mut row = order.fields.clone();
                    row.push(order.status.to_owned());
                    row.push(order.filled_quantity.to_string());
                    row.push(order.as_of_position.to_string());
                    digest.add(&row);
                }
                digest
            }
            ComparedTable::ClearingObligations => {
                let mut digest = RowsDigest::default();
                for ((trade_date, account_id, instrument), sum) in &self.obligations {
                    digest.add(&[
                        trade_date.clone(),
                        account_id.clone(),
                        instrument.clone(),
                        sum.net_quantity.to_string(),
                        format_cny(sum.net_amount_cny),
                        format_cny(sum.fees_cny),
                    ]);
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
    let mut differences = Vec::new();
    for table in ComparedTable::ALL {
        let actual = match store.database() {
            Database::Sqlite(pool) => sqlite::rows_digest(&pool, table.query()).await?,
            Database::Postgres(pool) => postgres::rows_digest(&pool, table.query()).await?,
        };
        let wanted = expected.digest(table);
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

/// Suitability refusals the store kept that have no alert, plus refusal alerts with no
/// suitability refusal behind them. Refusals recorded before commands carried their
/// account (migration 0006) cannot be alerted and are not counted.
pub async fn unmatched_refusal_alerts(store: &dyn EventStore) -> Result<u64, ProjectionError> {
    let query = "SELECT \
         (SELECT COUNT(*) FROM command_outcomes o WHERE o.code = 'suitability' AND o.account_id IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM compliance_alerts a WHERE a.kind = 'suitability_refused' \
                           AND a.command_id = o.command_id AND a.account_id = o.account_id)) \
       + (SELECT COUNT(*) FROM compliance_alerts a WHERE a.kind = 'suitability_refused' \
           AND NOT EXISTS (SELECT 1 FROM command_outcomes o WHERE o.code = 'suitability' \
                           AND o.command_id = a.command_id AND o.account_id = a.account_id))";
    let count = match store.database() {
        Database::Sqlite(pool) => sqlite::count(&pool, query).await?,
        Database::Postgres(pool) => postgres::count(&pool, query).await?,
    };
    u64::try_from(count).map_err(|_| ProjectionError::Corrupt(format!("a negative count {count}")))
}

/// A clearing obligation: per trade date, account and instrument.
#[derive(Default, Clone)]
struct Obligation {
    net_quantity: i64,
    net_amount_cny: Decimal,
    fees_cny: Decimal,
}

impl Changes {
    fn of(events: &[RecordedEvent]) -> Result<Self, ProjectionError> {
        let mut events_by_account: BTreeMap<String, Vec<AccountEvent>> = BTreeMap::new();
        let mut rows = Vec::new();
        for recorded in events.iter().filter(|e| e.stream.aggregate_type == Account::TYPE) {
            let event: AccountEvent = decode(recorded)?;
            rows.extend(row_changes(recorded, &event));
            events_by_account
                .entry(recorded.stream.aggregate_id.clone())
                .or_default()
                .push(event);
        }
        Ok(Self {
            events_by_account,
            rows,
        })
    }

    /// The batch's trades summed per (trade date, account, instrument).
    fn obligations(&self) -> BTreeMap<(String, String, String), Obligation> {
        let mut sums: BTreeMap<(String, String, String), Obligation> = BTreeMap::new();
        for row in &self.rows {
            if let RowChange::Trade(trade) = row {
                let key = (
                    trade.trade_date.clone(),
                    trade.account_id.clone(),
                    trade.instrument.clone(),
                );
                let sum = sums.entry(key).or_default();
                let quantity = i64::try_from(trade.quantity).unwrap_or(i64::MAX);
                sum.net_quantity += if trade.side == "buy" { quantity } else { -quantity };
                sum.net_amount_cny += trade.net_cash_cny;
                sum.fees_cny += trade.fees.total_cny();
            }
        }
        sums
    }

    fn account_ids(&self) -> BTreeSet<&String> {
        self.events_by_account.keys().collect()
    }

    /// Applies the events to the loaded states (a missing one starts empty).
    fn apply(&mut self, mut states: BTreeMap<String, Account>) -> BTreeMap<String, Account> {
        for (account_id, events) in std::mem::take(&mut self.events_by_account) {
            let account = states.entry(account_id).or_default();
            for event in events {
                account.apply(event);
            }
        }
        states
    }
}

/// The rows an account's state shows.
fn rows_of(account_id: &str, account: &Account) -> (BalanceRow, Vec<PositionRow>) {
    let cash = account.cash();
    let balance = BalanceRow {
        account_id: account_id.to_owned(),
        currency: "CNY".to_owned(),
        available: format_cny(cash.available_cny),
        frozen: format_cny(cash.frozen_cny),
        unsettled: format_cny(cash.unsettled_cny),
        withdrawable: format_cny(cash.withdrawable_cny()),
    };
    let positions = account
        .positions()
        .iter()
        .filter(|(_, p)| p.quantity > 0 || p.frozen > 0)
        .map(|(instrument, p)| PositionRow {
            account_id: account_id.to_owned(),
            instrument: instrument.to_string(),
            quantity: p.quantity,
            frozen: p.frozen,
            sellable: p.sellable(),
            avg_cost: format!("{:.4}", p.avg_cost()),
        })
        .collect();
    (balance, positions)
}

fn cost_of(account: &Account, instrument: &str) -> String {
    account
        .positions()
        .iter()
        .find(|(code, _)| code.as_str() == instrument)
        .map_or_else(|| "0.00".to_owned(), |(_, p)| format_cny(p.cost_cny))
}

fn parse_money(text: &str) -> Result<Decimal, ProjectionError> {
    text.parse()
        .map_err(|_| ProjectionError::Corrupt(format!("{text:?} is not a decimal amount")))
}

fn to_i64(value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| ProjectionError::Corrupt(format!("{value} does not fit a BIGINT")))
}

fn to_u64(value: i64) -> Result<u64, ProjectionError> {
    u64::try_from(value).map_err(|_| ProjectionError::Corrupt(format!("negative value {value}")))
}

/// The same code for both backends; only the SQL dialect differs: placeholders,
/// and money written as exact text (SQLite) or cast to NUMERIC (PostgreSQL).
macro_rules! backend {
    ($module:ident, $db:ty, $begin:expr, $begin_snapshot:expr, $lock_checkpoint:expr, $money:expr, $money_out:expr, $dollar:expr) => {
        mod $module {
            use super::*;
            use sqlx::Row;

            fn sql(text: &str) -> String {
                let text = text
                    .replace("{money}", $money)
                    .replace("{money_out}", $money_out)
                    .replace("{date}", if $dollar { "CAST(? AS DATE)" } else { "?" })
                    .replace("{time}", if $dollar { "CAST(? AS TIMESTAMPTZ)" } else { "?" })
                    .replace("{end}", if $dollar { " AS TEXT)" } else { "" });
                if !$dollar {
                    return text;
                }
                let mut out = String::with_capacity(text.len() + 8);
                let mut n = 0;
                for c in text.chars() {
                    if c == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(c);
                    }
                }
                out
            }

            pub async fn checkpoint(pool: &sqlx::Pool<$db>, name: &str) -> Result<u64, ProjectionError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql("SELECT position FROM projection_checkpoints WHERE name = ?")))
                    .bind(name)
                    .fetch_optional(pool)
                    .await
                    .map_err(ProjectionError::database)?;
                match row {
                    Some(row) => to_u64(row.try_get::<i64, _>(0).map_err(ProjectionError::database)?),
                    None => Ok(0),
                }
            }

            pub async fn reset(pool: &sqlx::Pool<$db>) -> Result<(), ProjectionError> {
                let mut tx = pool.begin_with($begin).await.map_err(ProjectionError::database)?;
                let emptied = reset_in(&mut tx).await;
                commit_or_roll_back(tx, emptied, ProjectionError::database).await
            }

            async fn reset_in(tx: &mut sqlx::Transaction<'_, $db>) -> Result<(), ProjectionError> {
                for statement in [
                    "DELETE FROM account_balances",
                    "DELETE FROM positions",
                    "DELETE FROM projection_account_state",
                    "DELETE FROM trades",
                    "DELETE FROM orders",
                    "DELETE FROM clearing_obligations",
                    "DELETE FROM compliance_alerts",
                    "DELETE FROM journal_entries",
                ] {
                    sqlx::query(statement).execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                sqlx::query(sqlx::AssertSqlSafe(sql("DELETE FROM projection_checkpoints WHERE name IN (?, ?)")))
                    .bind(ACCOUNTS_PROJECTION)
                    .bind(REFUSAL_ALERTS)
                    .execute(&mut **tx)
                    .await
                    .map_err(ProjectionError::database)?;
                Ok(())
            }

            /// Raises an alert for every refused suitability check not yet alerted, and
            /// records how many refusals that covered. Refusals write no event, so these
            /// come from the outcomes the store keeps; the alert's key (the command id)
            /// makes a rerun or a crash mid-way add nothing twice. One snapshot serves both
            /// statements, so the count covers exactly the refusals alerted.
            pub async fn alert_refusals(pool: &sqlx::Pool<$db>) -> Result<u64, ProjectionError> {
                let mut tx = pool.begin_with($begin_snapshot).await.map_err(ProjectionError::database)?;
                let raised = alert_refusals_in(&mut tx).await;
                commit_or_roll_back(tx, raised, ProjectionError::database).await
            }

            async fn alert_refusals_in(tx: &mut sqlx::Transaction<'_, $db>) -> Result<u64, ProjectionError> {
                let done = sqlx::query(sqlx::AssertSqlSafe(sql(&format!(
                    "INSERT INTO compliance_alerts (alert_id, kind, account_id, command_id, message, recorded_at) \
                     SELECT 'command:' || command_id, 'suitability_refused', account_id, command_id, message, \
                     recorded_at {SUITABILITY_REFUSALS} ON CONFLICT (alert_id) DO NOTHING"
                ))))
                .execute(&mut **tx)
                .await
                .map_err(ProjectionError::database)?;
                sqlx::query(sqlx::AssertSqlSafe(sql(&format!(
                    "INSERT INTO projection_checkpoints (name, position) SELECT ?, COUNT(*) {SUITABILITY_REFUSALS} \
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position"
                ))))
                .bind(REFUSAL_ALERTS)
                .execute(&mut **tx)
                .await
                .map_err(ProjectionError::database)?;
                Ok(done.rows_affected())
            }

            pub async fn apply(
                pool: &sqlx::Pool<$db>,
                expected_checkpoint: u64,
                last_position: u64,
                mut changes: Changes,
                fail_mid_batch: bool,
            ) -> Result<(), ProjectionError> {
                let mut tx = pool.begin_with($begin).await.map_err(ProjectionError::database)?;
                let applied = apply_in(&mut tx, expected_checkpoint, last_position, &mut changes, fail_mid_batch).await;
                commit_or_roll_back(tx, applied, ProjectionError::database).await
            }

            /// One batch's rows and the new checkpoint, inside the caller's transaction.
            async fn apply_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                expected_checkpoint: u64,
                last_position: u64,
                changes: &mut Changes,
                fail_mid_batch: bool,
            ) -> Result<(), ProjectionError> {
                // Another runner may have moved the checkpoint since we read it: then this batch is not ours.
                sqlx::query(sqlx::AssertSqlSafe(sql(
                    "INSERT INTO projection_checkpoints (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                )))
                .bind(ACCOUNTS_PROJECTION)
                .execute(&mut **tx)
                .await
                .map_err(ProjectionError::database)?;
                let current: i64 = sqlx::query(sqlx::AssertSqlSafe(sql(&format!(
                    "SELECT position FROM projection_checkpoints WHERE name = ?{}",
                    $lock_checkpoint
                ))))
                .bind(ACCOUNTS_PROJECTION)
                .fetch_one(&mut **tx)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(ProjectionError::database)?;
                if to_u64(current)? != expected_checkpoint {
                    return Err(ProjectionError::Moved { expected: expected_checkpoint, found: to_u64(current)? });
                }
                let account_ids: Vec<String> = changes.account_ids().into_iter().cloned().collect();
                let states = read_states(tx, &account_ids).await?;
                let as_of = to_i64(last_position)?;
                let accounts = changes.apply(states);
                write_states(tx, &accounts).await?;
                write_balances_and_positions(tx, &accounts, as_of).await?;
                write_rows(tx, changes).await?;
                if fail_mid_batch {
                    // The caller rolls every row of this batch back.
                    return Err(ProjectionError::Injected("failed in the middle of a batch".into()));
                }
                sqlx::query(sqlx::AssertSqlSafe(sql("UPDATE projection_checkpoints SET position = ? WHERE name = ?")))
                    .bind(as_of)
                    .bind(ACCOUNTS_PROJECTION)
                    .execute(&mut **tx)
                    .await
                    .map_err(ProjectionError::database)?;
                Ok(())
            }

            /// `prefix`, then `rows` copies of `row` separated by commas, then `suffix`, in
            /// this backend's dialect: one statement for many rows, one round trip.
            fn multi_row_sql(prefix: &str, row: &str, rows: usize, suffix: &str) -> String {
                assert!(rows > 0 && rows <= MAX_ROWS_PER_STATEMENT, "{rows} rows in one statement");
                let mut text = String::with_capacity(prefix.len() + rows * (row.len() + 2) + suffix.len());
                text.push_str(prefix);
                for index in 0..rows {
                    if index > 0 {
                        text.push_str(", ");
                    }
                    text.push_str(row);
                }
                text.push_str(suffix);
                sql(&text)
            }

            /// The stored states of these accounts; an account never seen has none.
            async fn read_states(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_ids: &[String],
            ) -> Result<BTreeMap<String, Account>, ProjectionError> {
                let mut states = BTreeMap::new();
                for chunk in account_ids.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "SELECT account_id, state FROM projection_account_state WHERE account_id IN (",
                        "?",
                        chunk.len(),
                        ")",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for account_id in chunk {
                        query = query.bind(account_id.as_str());
                    }
                    for row in query.fetch_all(&mut **tx).await.map_err(ProjectionError::database)? {
                        let account_id: String = row.try_get(0).map_err(ProjectionError::database)?;
                        let text: String = row.try_get(1).map_err(ProjectionError::database)?;
                        let state: Account = serde_json::from_str(&text)
                            .map_err(|e| ProjectionError::Corrupt(format!("state of {account_id}: {e}")))?;
                        states.insert(account_id, state);
                    }
                }
                Ok(states)
            }

            async fn write_states(
                tx: &mut sqlx::Transaction<'_, $db>,
                accounts: &BTreeMap<String, Account>,
            ) -> Result<(), ProjectionError> {
                let states = accounts
                    .iter()
                    .map(|(account_id, account)| {
                        serde_json::to_string(account)
                            .map(|state| (account_id.as_str(), state))
                            .map_err(|e| ProjectionError::Corrupt(format!("state of {account_id}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                for chunk in states.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "INSERT INTO projection_account_state (account_id, state) VALUES ",
                        "(?, ?)",
                        chunk.len(),
                        " ON CONFLICT (account_id) DO UPDATE SET state = excluded.state",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for (account_id, state) in chunk {
                        query = query.bind(*account_id).bind(state.as_str());
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                Ok(())
            }

            /// Replaces the balance and every position row of these accounts.
            async fn write_balances_and_positions(
                tx: &mut sqlx::Transaction<'_, $db>,
                accounts: &BTreeMap<String, Account>,
                as_of: i64,
            ) -> Result<(), ProjectionError> {
                let mut balances = Vec::with_capacity(accounts.len());
                let mut positions = Vec::new();
                for (account_id, account) in accounts {
                    let (balance, rows) = rows_of(account_id, account);
                    balances.push(balance);
                    for row in rows {
                        let cost = cost_of(account, &row.instrument);
                        positions.push((row, cost));
                    }
                }
                for chunk in balances.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "INSERT INTO account_balances (account_id, currency, available, frozen, unsettled, withdrawable, \
                         as_of_position) VALUES ",
                        "(?, ?, {money}, {money}, {money}, {money}, ?)",
                        chunk.len(),
                        " ON CONFLICT (account_id, currency) DO UPDATE SET available = excluded.available, \
                         frozen = excluded.frozen, unsettled = excluded.unsettled, \
                         withdrawable = excluded.withdrawable, as_of_position = excluded.as_of_position",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for balance in chunk {
                        query = query
                            .bind(balance.account_id.as_str())
                            .bind(balance.currency.as_str())
                            .bind(balance.available.as_str())
                            .bind(balance.frozen.as_str())
                            .bind(balance.unsettled.as_str())
                            .bind(balance.withdrawable.as_str())
                            .bind(as_of);
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                let account_ids: Vec<&String> = accounts.keys().collect();
                for chunk in account_ids.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql("DELETE FROM positions WHERE account_id IN (", "?", chunk.len(), ")");
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for account_id in chunk {
                        query = query.bind(account_id.as_str());
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                for chunk in positions.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "INSERT INTO positions (account_id, instrument, quantity, frozen, sellable, cost, avg_cost, \
                         as_of_position) VALUES ",
                        "(?, ?, ?, ?, ?, {money}, {money}, ?)",
                        chunk.len(),
                        "",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for (position, cost) in chunk {
                        query = query
                            .bind(position.account_id.as_str())
                            .bind(position.instrument.as_str())
                            .bind(to_i64(position.quantity)?)
                            .bind(to_i64(position.frozen)?)
                            .bind(to_i64(position.sellable)?)
                            .bind(cost.as_str())
                            .bind(position.avg_cost.as_str())
                            .bind(as_of);
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                Ok(())
            }

            /// Trades, orders, alerts, journal lines and obligations of one batch, many rows
            /// per statement.
            async fn write_rows(tx: &mut sqlx::Transaction<'_, $db>, changes: &Changes) -> Result<(), ProjectionError> {
                let rows = RowsByTable::of(&changes.rows);
                for chunk in rows.trades.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "INSERT INTO trades (global_position, account_id, order_id, exec_id, instrument, side, trade_date, \
                         quantity, price, value, commission, stamp_duty, transfer_fee, handling_fee, regulatory_fee, fees, \
                         net_cash) VALUES ",
                        "(?, ?, ?, ?, ?, ?, {date}, ?, {money}, {money}, {money}, {money}, {money}, {money}, {money}, \
                         {money}, {money})",
                        chunk.len(),
                        "",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for t in chunk {
                        query = query
                            .bind(to_i64(t.position)?)
                            .bind(t.account_id.as_str())
                            .bind(t.order_id.as_str())
                            .bind(t.exec_id.as_str())
                            .bind(t.instrument.as_str())
                            .bind(t.side)
                            .bind(t.trade_date.as_str())
                            .bind(to_i64(t.quantity)?)
                            .bind(t.price.as_str())
                            .bind(format_cny(t.value_cny))
                            .bind(format_cny(t.fees.commission_cny))
                            .bind(format_cny(t.fees.stamp_duty_cny))
                            .bind(format_cny(t.fees.transfer_fee_cny))
                            .bind(format_cny(t.fees.handling_fee_cny))
                            .bind(format_cny(t.fees.regulatory_fee_cny))
                            .bind(format_cny(t.fees.total_cny()))
                            .bind(format_cny(t.net_cash_cny));
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                // Orders placed in this batch go in with what the batch did to them; older
                // orders are updated, all in the batch's event order.
                for chunk in rows.new_orders.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "INSERT INTO orders (account_id, order_id, instrument, side, quantity, limit_price, trade_date, \
                         status, filled_quantity, as_of_position) VALUES ",
                        "(?, ?, ?, ?, ?, {money}, {date}, ?, ?, ?)",
                        chunk.len(),
                        "",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for order in chunk {
                        query = query
                            .bind(order.account_id)
                            .bind(order.order_id)
                            .bind(order.instrument)
                            .bind(order.side)
                            .bind(to_i64(order.quantity)?)
                            .bind(order.limit_price)
                            .bind(order.trade_date)
                            .bind(order.status)
                            .bind(to_i64(order.filled_quantity)?)
                            .bind(to_i64(order.position)?);
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                for chunk in rows.order_updates.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "UPDATE orders SET filled_quantity = orders.filled_quantity + v.column3, \
                         status = COALESCE(v.column4, orders.status), as_of_position = v.column5 FROM (VALUES ",
                        "(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT))",
                        chunk.len(),
                        ") AS v WHERE orders.account_id = v.column1 AND orders.order_id = v.column2",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for update in chunk {
                        query = query
                            .bind(update.account_id)
                            .bind(update.order_id)
                            .bind(to_i64(update.filled_quantity_added)?)
                            .bind(update.status)
                            .bind(to_i64(update.position)?);
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                for chunk in rows.alerts.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "INSERT INTO compliance_alerts (alert_id, global_position, account_id, kind, direction, amount, \
                         threshold, bank_ref, recorded_at) VALUES ",
                        "(?, ?, ?, 'large_cash_movement', ?, {money}, {money}, ?, {time})",
                        chunk.len(),
                        "",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for alert in chunk {
                        query = query
                            .bind(format!("event:{}", alert.position))
                            .bind(to_i64(alert.position)?)
                            .bind(alert.account_id)
                            .bind(alert.direction)
                            .bind(alert.amount)
                            .bind(alert.threshold)
                            .bind(alert.bank_ref)
                            .bind(alert.recorded_at);
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                for chunk in rows.journal.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "INSERT INTO journal_entries (global_position, line, account_id, event_type, ledger_account, \
                         amount, currency) VALUES ",
                        "(?, ?, ?, ?, ?, {money}, 'CNY')",
                        chunk.len(),
                        "",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for line in chunk {
                        query = query
                            .bind(to_i64(line.position)?)
                            .bind(to_i64(line.line)?)
                            .bind(line.account_id)
                            .bind(line.event_type)
                            .bind(line.ledger_account)
                            .bind(line.amount);
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                write_obligations(tx, changes.obligations()).await
            }

            /// Adds the batch's sums to the obligations already there. Amounts are added
            /// here, in decimals, not in SQL: SQLite would add the texts as floats.
            async fn write_obligations(
                tx: &mut sqlx::Transaction<'_, $db>,
                sums: BTreeMap<(String, String, String), Obligation>,
            ) -> Result<(), ProjectionError> {
                let keys: Vec<(String, String, String)> = sums.keys().cloned().collect();
                for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
                    let text = multi_row_sql(
                        "SELECT CAST(trade_date AS TEXT), account_id, instrument, net_quantity, {money_out}net_amount{end}, \
                         {money_out}fees{end} FROM clearing_obligations WHERE (trade_date, account_id, instrument) IN (VALUES ",
                        "({date}, ?, ?)",
                        chunk.len(),
                        ")",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for (trade_date, account_id, instrument) in chunk {
                        query = query.bind(trade_date.as_str()).bind(account_id.as_str()).bind(instrument.as_str());
                    }
                    let mut totals: Vec<((String, String, String), Obligation)> = Vec::with_capacity(chunk.len());
                    let mut existing = BTreeMap::new();
                    for row in query.fetch_all(&mut **tx).await.map_err(ProjectionError::database)? {
                        let key: (String, String, String) = (
                            row.try_get(0).map_err(ProjectionError::database)?,
                            row.try_get(1).map_err(ProjectionError::database)?,
                            row.try_get(2).map_err(ProjectionError::database)?,
                        );
                        let stored = Obligation {
                            net_quantity: row.try_get(3).map_err(ProjectionError::database)?,
                            net_amount_cny: parse_money(&row.try_get::<String, _>(4).map_err(ProjectionError::database)?)?,
                            fees_cny: parse_money(&row.try_get::<String, _>(5).map_err(ProjectionError::database)?)?,
                        };
                        existing.insert(key, stored);
                    }
                    for key in chunk {
                        let mut total = existing.remove(key).unwrap_or_default();
                        if let Some(add) = sums.get(key) {
                            total.net_quantity += add.net_quantity;
                            total.net_amount_cny += add.net_amount_cny;
                            total.fees_cny += add.fees_cny;
                        }
                        totals.push((key.clone(), total));
                    }
                    let text = multi_row_sql(
                        "INSERT INTO clearing_obligations (trade_date, account_id, instrument, net_quantity, net_amount, fees) \
                         VALUES ",
                        "({date}, ?, ?, ?, {money}, {money})",
                        totals.len(),
                        " ON CONFLICT (trade_date, account_id, instrument) DO UPDATE SET \
                         net_quantity = excluded.net_quantity, net_amount = excluded.net_amount, fees = excluded.fees",
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for ((trade_date, account_id, instrument), total) in &totals {
                        query = query
                            .bind(trade_date.as_str())
                            .bind(account_id.as_str())
                            .bind(instrument.as_str())
                            .bind(total.net_quantity)
                            .bind(format_cny(total.net_amount_cny))
                            .bind(format_cny(total.fees_cny));
                    }
                    query.execute(&mut **tx).await.map_err(ProjectionError::database)?;
                }
                Ok(())
            }

            /// The digest of every row of a query whose columns are all text (NULL as an
            /// empty string), streamed so the table never sits in memory whole.
            pub async fn rows_digest(pool: &sqlx::Pool<$db>, query: &str) -> Result<RowsDigest, ProjectionError> {
                let mut digest = RowsDigest::default();
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(query.to_owned())).fetch(pool);
                while let Some(row) = rows.try_next().await.map_err(ProjectionError::database)? {
                    let fields = (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i).map(Option::unwrap_or_default))
                        .collect::<Result<Vec<String>, _>>()
                        .map_err(ProjectionError::database)?;
                    digest.add(&fields);
                }
                Ok(digest)
            }

            /// The one integer a counting query returns.
            pub async fn count(pool: &sqlx::Pool<$db>, query: &str) -> Result<i64, ProjectionError> {
                sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
                    .fetch_one(pool)
                    .await
                    .map_err(ProjectionError::database)
            }

            pub async fn balances(pool: &sqlx::Pool<$db>) -> Result<Vec<BalanceRow>, ProjectionError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql(
                    "SELECT account_id, currency, {money_out}available{end}, {money_out}frozen{end}, \
                     {money_out}unsettled{end}, {money_out}withdrawable{end} FROM account_balances \
                     ORDER BY account_id, currency",
                )
))
                .fetch_all(pool)
                .await
                .map_err(ProjectionError::database)?;
                rows.iter()
                    .map(|row| {
                        Ok(BalanceRow {
                            account_id: row.try_get(0)?,
                            currency: row.try_get(1)?,
                            available: row.try_get(2)?,
                            frozen: row.try_get(3)?,
                            unsettled: row.try_get(4)?,
                            withdrawable: row.try_get(5)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(ProjectionError::database)
            }

            pub async fn replace_breaks(
                pool: &sqlx::Pool<$db>,
                trade_date: NaiveDate,
                breaks: &[crate::reconcile::Break],
            ) -> Result<(), ProjectionError> {
                let mut tx = pool.begin_with($begin).await.map_err(ProjectionError::database)?;
                let replaced = replace_breaks_in(&mut tx, trade_date, breaks).await;
                commit_or_roll_back(tx, replaced, ProjectionError::database).await
            }

            async fn replace_breaks_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                trade_date: NaiveDate,
                breaks: &[crate::reconcile::Break],
            ) -> Result<(), ProjectionError> {
                sqlx::query(sqlx::AssertSqlSafe(sql("DELETE FROM reconciliation_breaks WHERE trade_date = {date}")))
                    .bind(trade_date.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(ProjectionError::database)?;
                for found in breaks {
                    sqlx::query(sqlx::AssertSqlSafe(sql(
                        "INSERT INTO reconciliation_breaks (trade_date, kind, account_id, instrument, ours, theirs) \
                         VALUES ({date}, ?, ?, ?, ?, ?)",
                    )))
                    .bind(trade_date.to_string())
                    .bind(found.kind.as_str())
                    .bind(found.account_id.clone())
                    .bind(found.instrument.clone())
                    .bind(found.ours.clone())
                    .bind(found.theirs.clone())
                    .execute(&mut **tx)
                    .await
                    .map_err(ProjectionError::database)?;
                }
                Ok(())
            }

            /// Every posting's ledger account and amount (as exact text); summed in Rust,
            /// since SQLite would sum decimal text as floats.
            pub async fn journal_amounts(pool: &sqlx::Pool<$db>) -> Result<Vec<(String, String)>, ProjectionError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql(
                    "SELECT ledger_account, {money_out}amount{end} FROM journal_entries ORDER BY global_position, line",
                )))
                .fetch_all(pool)
                .await
                .map_err(ProjectionError::database)?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(ProjectionError::database)
            }

            pub async fn trades_of(pool: &sqlx::Pool<$db>, trade_date: NaiveDate) -> Result<Vec<Trade>, ProjectionError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql(
                    "SELECT global_position, account_id, instrument, side, quantity, {money_out}value{end}, \
                     {money_out}commission{end}, {money_out}stamp_duty{end}, {money_out}transfer_fee{end}, \
                     {money_out}handling_fee{end}, {money_out}regulatory_fee{end} FROM trades \
                     WHERE trade_date = {date} ORDER BY global_position",
                )))
                .bind(trade_date.to_string())
                .fetch_all(pool)
                .await
                .map_err(ProjectionError::database)?;
                let mut trades = Vec::with_capacity(rows.len());
                for row in &rows {
                    let text = |i: usize| -> Result<String, ProjectionError> { row.try_get(i).map_err(ProjectionError::database) };
                    let number = |i: usize| -> Result<u64, ProjectionError> {
                        to_u64(row.try_get::<i64, _>(i).map_err(ProjectionError::database)?)
                    };
                    trades.push(Trade {
                        global_position: number(0)?,
                        account_id: text(1)?,
                        instrument: text(2)?,
                        side: text(3)?,
                        quantity: number(4)?,
                        value_cny: parse_money(&text(5)?)?,
                        fees: FeeBreakdown {
                            commission_cny: parse_money(&text(6)?)?,
                            stamp_duty_cny: parse_money(&text(7)?)?,
                            transfer_fee_cny: parse_money(&text(8)?)?,
                            handling_fee_cny: parse_money(&text(9)?)?,
                            regulatory_fee_cny: parse_money(&text(10)?)?,
                        },
                    });
                }
                Ok(trades)
            }

            pub async fn positions(pool: &sqlx::Pool<$db>) -> Result<Vec<PositionRow>, ProjectionError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql(
                    "SELECT account_id, instrument, quantity, frozen, sellable, {money_out}avg_cost{end} FROM positions \
                     ORDER BY account_id, instrument",
                )
))
                .fetch_all(pool)
                .await
                .map_err(ProjectionError::database)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let number = |i: usize| -> Result<u64, ProjectionError> {
                        to_u64(row.try_get::<i64, _>(i).map_err(ProjectionError::database)?)
                    };
                    out.push(PositionRow {
                        account_id: row.try_get(0).map_err(ProjectionError::database)?,
                        instrument: row.try_get(1).map_err(ProjectionError::database)?,
                        quantity: number(2)?,
                        frozen: number(3)?,
                        sellable: number(4)?,
                        avg_cost: row.try_get(5).map_err(ProjectionError::database)?,
                    });
                }
                Ok(out)
            }
        }
    };
}

backend!(
    sqlite,
    sqlx::Sqlite,
    "BEGIN IMMEDIATE",
    "BEGIN IMMEDIATE",
    "",
    "?",
    "",
    false
);
backend!(
    postgres,
    sqlx::Postgres,
    "BEGIN",
    "BEGIN ISOLATION LEVEL REPEATABLE READ",
    " FOR UPDATE",
    "CAST(? AS NUMERIC)",
    "CAST(",
    true
);
