//! `trades`: one row per fill, with each fee, as the clearing staff read it; and the
//! blotter's reader of it ([`ReadTrades`]), filtered and paged in log order.

use chrono::NaiveDate;
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::money::FEN_DECIMAL_PLACES;
use ledger_domain::Side;
use rust_decimal::Decimal;
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, insert_rows, push_blotter_filter, Backend, Operation};
use super::columns::{Cell, Column, Money, OnConflict, Table};
use super::obligations::ObligationKey;
use crate::ProjectionError;

/// A row of `trades`, as the readers see it.
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

/// Most trades one read returns: a caller pages on with [`TradeFilter::after`].
pub const MAX_TRADE_ROWS: usize = 1_000;

/// Which trades to read: each `Some` narrows the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeFilter {
    pub account_id: Option<String>,
    pub trade_date: Option<NaiveDate>,
    /// Only trades after this global position: the last row of the previous page.
    pub after: Option<u64>,
    /// Most rows to return; more than [`MAX_TRADE_ROWS`] reads [`MAX_TRADE_ROWS`].
    pub limit: usize,
}

impl Default for TradeFilter {
    fn default() -> Self {
        TradeFilter {
            account_id: None,
            trade_date: None,
            after: None,
            limit: MAX_TRADE_ROWS,
        }
    }
}

/// A row of `trades` as the blotter shows it: amounts with exactly two decimals, the
/// price with at least two (so both backends print it alike).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TradeRecord {
    pub global_position: u64,
    pub trade_date: NaiveDate,
    pub account_id: String,
    pub order_id: String,
    pub exec_id: String,
    pub instrument: String,
    pub side: String,
    pub quantity: u64,
    pub price_cny: Decimal,
    pub value_cny: Decimal,
    #[serde(flatten)]
    pub fees: FeeBreakdown,
    pub fees_cny: Decimal,
    pub net_cash_cny: Decimal,
}

/// A row of `trades` as a fill writes it.
#[derive(Debug, Clone)]
pub(crate) struct TradeRow {
    pub position: u64,
    pub account_id: String,
    pub order_id: String,
    pub exec_id: String,
    pub instrument: String,
    pub side: Side,
    pub trade_date: NaiveDate,
    pub quantity: u64,
    pub price: Decimal,
    pub value_cny: Decimal,
    pub fees: FeeBreakdown,
    /// The customer's cash movement: -(value + fees) for a buy, value - fees for a sell.
    pub net_cash_cny: Decimal,
}

impl TradeRow {
    pub(crate) fn obligation_key(&self) -> ObligationKey {
        (self.trade_date, self.account_id.clone(), self.instrument.clone())
    }
}

pub(crate) const TRADES: Table<TradeRow> = Table {
    name: "trades",
    on_conflict: OnConflict::Fail,
    filter: None,
    columns: &[
        Column::key("global_position", |t| Cell::Count(t.position)),
        Column::data("account_id", |t| Cell::Text(&t.account_id)),
        Column::data("order_id", |t| Cell::Text(&t.order_id)),
        Column::data("exec_id", |t| Cell::Text(&t.exec_id)),
        Column::data("instrument", |t| Cell::Text(&t.instrument)),
        Column::data("side", |t| Cell::Text(t.side.as_str())),
        Column::data("trade_date", |t| Cell::Date(t.trade_date)),
        Column::data("quantity", |t| Cell::Count(t.quantity)),
        Column::data("price", |t| Cell::Money(Money(t.price))),
        Column::data("value", |t| Cell::Money(Money::cny(t.value_cny))),
        Column::data("commission", |t| Cell::Money(Money::cny(t.fees.commission_cny))),
        Column::data("stamp_duty", |t| Cell::Money(Money::cny(t.fees.stamp_duty_cny))),
        Column::data("transfer_fee", |t| Cell::Money(Money::cny(t.fees.transfer_fee_cny))),
        Column::data("handling_fee", |t| Cell::Money(Money::cny(t.fees.handling_fee_cny))),
        Column::data("regulatory_fee", |t| Cell::Money(Money::cny(t.fees.regulatory_fee_cny))),
        Column::data("fees", |t| Cell::Money(Money::cny(t.fees.total_cny()))),
        Column::data("net_cash", |t| Cell::Money(Money::cny(t.net_cash_cny))),
    ],
};

pub(crate) async fn insert<DB: Backend>(conn: &mut DB::Connection, trades: &[TradeRow]) -> Result<(), ProjectionError> {
    insert_rows::<DB, _>(conn, &TRADES, trades).await
}

/// The trades of one trade date, in log order.
pub(crate) struct TradesOf(pub NaiveDate);

impl Operation for TradesOf {
    type Output = Vec<Trade>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<Trade>, ProjectionError> {
        let mut query = QueryBuilder::<DB>::new(TRADES.select());
        query.push(" WHERE trade_date = ");
        DB::bind_cell(&mut query, Cell::Date(self.0))?;
        query.push(" ORDER BY global_position");
        let rows = DB::fetch_all(&mut *connection(pool).await?, &mut query).await?;
        rows.iter().map(trade_of::<DB>).collect()
    }
}

fn trade_of<DB: Backend>(row: &DB::Row) -> Result<Trade, ProjectionError> {
    Ok(Trade {
        global_position: DB::count(row, "global_position")?,
        account_id: DB::text(row, "account_id")?,
        instrument: DB::text(row, "instrument")?,
        side: DB::text(row, "side")?,
        quantity: DB::count(row, "quantity")?,
        value_cny: DB::money(row, "value")?,
        fees: FeeBreakdown {
            commission_cny: DB::money(row, "commission")?,
            stamp_duty_cny: DB::money(row, "stamp_duty")?,
            transfer_fee_cny: DB::money(row, "transfer_fee")?,
            handling_fee_cny: DB::money(row, "handling_fee")?,
            regulatory_fee_cny: DB::money(row, "regulatory_fee")?,
        },
    })
}

/// The blotter's trades: those `filter` keeps, in log order (global position), at most
/// [`MAX_TRADE_ROWS`].
pub(crate) struct ReadTrades<'a>(pub &'a TradeFilter);

impl Operation for ReadTrades<'_> {
    type Output = Vec<TradeRecord>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<TradeRecord>, ProjectionError> {
        let filter = self.0;
        let mut query = QueryBuilder::<DB>::new(TRADES.select());
        push_blotter_filter(&mut query, filter.account_id.as_deref(), filter.trade_date)?;
        if let Some(after) = filter.after {
            query.push(" AND global_position > ");
            // Positions are stored as BIGINT: a key past the largest one is past them all.
            DB::bind_cell(&mut query, Cell::Count(after.min(i64::MAX as u64)))?;
        }
        query.push(" ORDER BY global_position LIMIT ");
        DB::bind_cell(&mut query, Cell::Count(filter.limit.min(MAX_TRADE_ROWS) as u64))?;
        let rows = DB::fetch_all(&mut *connection(pool).await?, &mut query).await?;
        rows.iter().map(trade_record_of::<DB>).collect()
    }
}

fn trade_record_of<DB: Backend>(row: &DB::Row) -> Result<TradeRecord, ProjectionError> {
    let amount = |column: &str| DB::money(row, column).map(|value| Money::cny(value).0);
    Ok(TradeRecord {
        global_position: DB::count(row, "global_position")?,
        trade_date: DB::date(row, "trade_date")?,
        account_id: DB::text(row, "account_id")?,
        order_id: DB::text(row, "order_id")?,
        exec_id: DB::text(row, "exec_id")?,
        instrument: DB::text(row, "instrument")?,
        side: DB::text(row, "side")?,
        quantity: DB::count(row, "quantity")?,
        price_cny: shown_price(DB::money(row, "price")?),
        value_cny: amount("value")?,
        fees: FeeBreakdown {
            commission_cny: amount("commission")?,
            stamp_duty_cny: amount("stamp_duty")?,
            transfer_fee_cny: amount("transfer_fee")?,
            handling_fee_cny: amount("handling_fee")?,
            regulatory_fee_cny: amount("regulatory_fee")?,
        },
        fees_cny: amount("fees")?,
        net_cash_cny: amount("net_cash")?,
    })
}

/// A price as the read-outs show it: without the trailing zeros PostgreSQL's NUMERIC(22, 4)
/// adds and SQLite's text does not, but with at least the fen's two decimals.
pub(crate) fn shown_price(price_cny: Decimal) -> Decimal {
    let mut shown = price_cny.normalize();
    if shown.scale() < FEN_DECIMAL_PLACES {
        shown.rescale(FEN_DECIMAL_PLACES);
    }
    shown
}
