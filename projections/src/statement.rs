//! Customer statements (对账单): opening cash, every movement with its fees,
//! closing cash, and the positions at the close with cost and valuation, for a
//! period of trade dates, in Chinese and English, as HTML or CSV.
//!
//! Built from the log alone: the account's events are replayed up to the end
//! of the period. An event's date is its business date (`business_date`, one
//! rule for every reader): fixed when it was decided, so a statement of a
//! past period never changes. Movements from before the ledger named any
//! trade date count in the opening balance of every period.
//!
//! The HTML page is the askama template `templates/statement.html`, compiled
//! in; the CSV is written by the csv crate, quoting only the fields that need it.

use std::fmt;

use askama::Template;
use chrono::NaiveDate;
use cqrs_es::Aggregate;
use ledger_domain::account::{Account, AccountEvent};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::money::{format_cny, round_to_fen};
use ledger_domain::{Instrument, Side, TradingCalendar};
use ledger_eventstore::codec::decode;
use ledger_eventstore::{EventStore, RecordedEvent, StreamId};
use rust_decimal::Decimal;
use serde::Serialize;
use strum::IntoStaticStr;

use crate::business_date::BusinessDates;
use crate::ProjectionError;

/// The movements a statement lists, by their bilingual labels ([`Movement::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr)]
enum MovementKind {
    #[strum(serialize = "银证转入 Deposit")]
    Deposit,
    #[strum(serialize = "银证转出 Withdrawal")]
    Withdrawal,
    #[strum(serialize = "买入 Buy")]
    Buy,
    #[strum(serialize = "卖出 Sell")]
    Sell,
}

/// Where a held position's price comes from ([`HeldPosition::price_source`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr)]
enum PriceSource {
    #[strum(serialize = "收盘价 close")]
    Close,
    #[strum(serialize = "最新成交价 last fill")]
    LastFill,
    #[strum(serialize = "无 none")]
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Movement {
    pub date: NaiveDate,
    pub global_position: u64,
    /// Bilingual label, e.g. "买入 Buy".
    pub kind: String,
    pub instrument: String,
    pub quantity: u64,
    pub price: String,
    /// Change of the customer's cash (available + frozen), signed.
    pub amount_cny: Decimal,
    pub fees: FeeBreakdown,
    pub cash_after_cny: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldPosition {
    pub instrument: String,
    pub quantity: u64,
    pub cost_cny: Decimal,
    pub avg_cost: Decimal,
    /// Close price used, and where it comes from.
    pub price: Option<Decimal>,
    pub price_source: &'static str,
    pub market_value_cny: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub account_id: String,
    pub customer_name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub opening_cash_cny: Decimal,
    pub movements: Vec<Movement>,
    pub closing_cash_cny: Decimal,
    pub total_fees: FeeBreakdown,
    pub positions: Vec<HeldPosition>,
}

/// Builds the statement of `account_id` for trade dates `from..=to`.
pub async fn build_statement(
    store: &dyn EventStore,
    calendar: &TradingCalendar,
    account_id: &str,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Option<Statement>, ProjectionError> {
    let recorded = store.load_stream(&StreamId::new(Account::TYPE, account_id)).await?;
    let dates = BusinessDates::of_log(store, calendar).await?;
    let mut account = Account::default();
    let mut movements = Vec::new();
    let mut opening_cash_cny = None;
    let mut total_fees = FeeBreakdown::default();
    for event in &recorded {
        let decoded: AccountEvent = decode(event)?;
        let date = dates.date_of(event).unwrap_or(NaiveDate::MIN);
        if date > to {
            // Later orders may carry an earlier date only if their day was never closed; stop at the period's end.
            continue;
        }
        if date >= from && opening_cash_cny.is_none() {
            opening_cash_cny = Some(cash(&account));
        }
        let movement = movement_of(event, &decoded, date);
        account.apply(decoded);
        if let (Some(mut movement), true) = (movement, date >= from) {
            movement.cash_after_cny = cash(&account);
            total_fees = total_fees.plus(&movement.fees);
            movements.push(movement);
        }
    }
    let Some(customer) = account.customer().cloned() else {
        return Ok(None);
    };
    let opening_cash_cny = opening_cash_cny.unwrap_or_else(|| cash(&account));
    let closing_cash_cny = cash(&account);
    let positions = held_positions(store, &account, &movements, to).await?;
    Ok(Some(Statement {
        account_id: account_id.to_owned(),
        customer_name: customer.customer_name,
        from,
        to,
        opening_cash_cny,
        movements,
        closing_cash_cny,
        total_fees,
        positions,
    }))
}

/// The account's non-empty positions at the close of `to`, valued at that day's
/// close, else at the period's last fill price, else not at all.
async fn held_positions(
    store: &dyn EventStore,
    account: &Account,
    movements: &[Movement],
    to: NaiveDate,
) -> Result<Vec<HeldPosition>, ProjectionError> {
    let mut positions = Vec::new();
    for (code, position) in account.positions() {
        if position.quantity == 0 {
            continue;
        }
        let mut instrument = Instrument::default();
        for event in store
            .load_stream(&StreamId::new(Instrument::TYPE, code.as_str()))
            .await?
        {
            instrument.apply(decode(&event)?);
        }
        let last_fill = movements
            .iter()
            .rev()
            .find(|m| m.instrument == code.as_str() && !m.price.is_empty());
        let (price, price_source) = match (instrument.close_of(to), last_fill) {
            (Some(close), _) => (Some(close), PriceSource::Close),
            (None, Some(fill)) => (fill.price.parse().ok(), PriceSource::LastFill),
            (None, None) => (None, PriceSource::None),
        };
        positions.push(HeldPosition {
            instrument: code.to_string(),
            quantity: position.quantity,
            cost_cny: position.cost_cny,
            avg_cost: position.avg_cost(),
            price,
            price_source: price_source.into(),
            market_value_cny: price.map(|p| round_to_fen(p * Decimal::from(position.quantity))),
        });
    }
    Ok(positions)
}

fn cash(account: &Account) -> Decimal {
    account.cash().available_cny + account.cash().frozen_cny
}

fn movement_of(recorded: &RecordedEvent, event: &AccountEvent, date: NaiveDate) -> Option<Movement> {
    let base = |kind: MovementKind, amount_cny: Decimal| Movement {
        date,
        global_position: recorded.global_position,
        kind: <&str>::from(kind).to_owned(),
        instrument: String::new(),
        quantity: 0,
        price: String::new(),
        amount_cny,
        fees: FeeBreakdown::default(),
        cash_after_cny: Decimal::ZERO,
    };
    match event {
        AccountEvent::CashDeposited { amount_cny, .. } => Some(base(MovementKind::Deposit, *amount_cny)),
        AccountEvent::WithdrawalConfirmed { amount_cny, .. } => Some(base(MovementKind::Withdrawal, -*amount_cny)),
        AccountEvent::FillBooked {
            instrument,
            side,
            quantity,
            price,
            value_cny,
            fees,
            ..
        } => {
            let kind = match side {
                Side::Buy => MovementKind::Buy,
                Side::Sell => MovementKind::Sell,
            };
            let amount = fees.net_cash_cny(*side, *value_cny);
            Some(Movement {
                instrument: instrument.to_string(),
                quantity: *quantity,
                price: price.to_string(),
                fees: *fees,
                ..base(kind, amount)
            })
        }
        _ => None,
    }
}

/// The statement's HTML escaper: `&`, `<`, `>` and `"` become `&amp;`, `&lt;`,
/// `&gt;` and `&quot;`, as the page has always had them (askama's own escaper
/// writes numeric entities and escapes `'` too, which would change its bytes).
/// Named in templates/askama.toml for the `html` templates of this crate.
#[derive(Debug, Clone, Copy)]
struct NamedEntities;

impl askama::filters::Escaper for NamedEntities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        dest.write_str(&html_escape::encode_double_quoted_attribute(text))
    }
}

/// The statement page, `templates/statement.html`.
#[derive(Template)]
#[template(path = "statement.html", config = "templates/askama.toml")]
struct StatementPage<'a> {
    statement: &'a Statement,
}

/// The page's own filters, found by askama in this module.
mod filters {
    use ledger_domain::fees::FeeBreakdown;
    use ledger_domain::money::format_cny;
    use rust_decimal::Decimal;

    /// An amount in yuan, to the fen.
    #[askama::filter_fn]
    pub fn cny(amount_cny: &Decimal, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(format_cny(*amount_cny))
    }

    /// The fees other than commission and stamp duty, which the page shows as one column.
    #[askama::filter_fn]
    pub fn other_fees_cny(fees: &FeeBreakdown, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(format_cny(
            fees.transfer_fee_cny + fees.handling_fee_cny + fees.regulatory_fee_cny,
        ))
    }
}

/// A self-contained HTML page.
pub fn render_html(statement: &Statement) -> String {
    StatementPage { statement }
        .render()
        .expect("the statement page's filters and escaper never fail")
}

/// CSV: one line per movement, then one per position, each section with its header.
pub fn render_csv(statement: &Statement) -> String {
    // Sections differ in width, hence flexible. A field is quoted only when it holds `,`, `"`, `\n` or `\r`
    // (the hand-written writer before it left a lone `\r` unquoted, which CSV readers take for a line end).
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    write_csv_records(&mut writer, statement).expect("writing CSV into memory never fails");
    let bytes = writer.into_inner().expect("flushing CSV into memory never fails");
    String::from_utf8(bytes).expect("CSV written from UTF-8 fields is UTF-8")
}

/// The first field of every CSV line names its section; each section starts with its header line.
const CSV_SUMMARY_HEADER: [&str; 7] = [
    "section",
    "account",
    "customer",
    "from",
    "to",
    "opening_cash",
    "closing_cash",
];
const CSV_MOVEMENT_HEADER: [&str; 14] = [
    "section",
    "date",
    "global_position",
    "type",
    "instrument",
    "quantity",
    "price",
    "commission",
    "stamp_duty",
    "transfer_fee",
    "handling_fee",
    "regulatory_fee",
    "amount",
    "cash_after",
];
const CSV_POSITION_HEADER: [&str; 8] = [
    "section",
    "instrument",
    "quantity",
    "cost",
    "avg_cost",
    "price",
    "price_source",
    "market_value",
];

fn write_csv_records(writer: &mut csv::Writer<Vec<u8>>, statement: &Statement) -> csv::Result<()> {
    writer.write_record(CSV_SUMMARY_HEADER)?;
    writer.write_record([
        "summary",
        &statement.account_id,
        &statement.customer_name,
        &statement.from.to_string(),
        &statement.to.to_string(),
        &format_cny(statement.opening_cash_cny),
        &format_cny(statement.closing_cash_cny),
    ])?;
    writer.write_record(CSV_MOVEMENT_HEADER)?;
    for m in &statement.movements {
        writer.write_record(movement_csv_record(m))?;
    }
    writer.write_record(CSV_POSITION_HEADER)?;
    for p in &statement.positions {
        writer.write_record(position_csv_record(p))?;
    }
    Ok(())
}

fn movement_csv_record(m: &Movement) -> [String; CSV_MOVEMENT_HEADER.len()] {
    [
        "movement".to_owned(),
        m.date.to_string(),
        m.global_position.to_string(),
        m.kind.clone(),
        m.instrument.clone(),
        m.quantity.to_string(),
        m.price.clone(),
        format_cny(m.fees.commission_cny),
        format_cny(m.fees.stamp_duty_cny),
        format_cny(m.fees.transfer_fee_cny),
        format_cny(m.fees.handling_fee_cny),
        format_cny(m.fees.regulatory_fee_cny),
        format_cny(m.amount_cny),
        format_cny(m.cash_after_cny),
    ]
}

fn position_csv_record(p: &HeldPosition) -> [String; CSV_POSITION_HEADER.len()] {
    [
        "position".to_owned(),
        p.instrument.clone(),
        p.quantity.to_string(),
        format_cny(p.cost_cny),
        format!("{:.4}", p.avg_cost),
        p.price.map(|v| v.to_string()).unwrap_or_default(),
        p.price_source.to_owned(),
        p.market_value_cny.map(format_cny).unwrap_or_default(),
    ]
}
