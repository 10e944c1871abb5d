//! Customer statements (对账单): the broker, the customer (id number masked),
//! opening cash, every movement with its fees, closing cash, the positions at the
//! close with cost and market value, total assets, and the notes a customer needs,
//! for a period of trade dates, in Chinese and English, as HTML, CSV or PDF.
//!
//! Built from the log alone: the account's events are replayed up to the end
//! of the period. An event's date is its business date (`business_date`, one
//! rule for every reader), fixed when it was decided, so a statement of a past
//! period never changes. Movements from before the ledger named any trade date
//! count in every period's opening balance.
//!
//! `render` holds the HTML page (the askama template `templates/statement.html`,
//! compiled in) and the CSV (the csv crate); `pdf` the PDF (krilla).

mod layout;
mod pdf;
mod render;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use ledger_domain::account::{Account, AccountEvent};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::money::round_to_fen;
use ledger_domain::{Instrument, Side};
use ledger_eventstore::codec::decode;
use ledger_eventstore::{EventStore, RecordedEvent, StreamId};
use rust_decimal::Decimal;
use serde::Serialize;
use strum::IntoStaticStr;

use crate::business_date::BusinessDates;
use crate::ProjectionError;

pub use pdf::{render_pdf, PdfError, PdfFont};
pub use render::{render_csv, render_html, CSV_BOM};

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
pub enum PriceSource {
    /// The closing price of the period's last day: the previous close set for the next trade date.
    #[strum(serialize = "收盘价 close")]
    Close,
    /// No close is known yet: the account's last fill price of the instrument up to the period's end.
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
    /// The instrument's name from its listing (empty for cash movements).
    pub instrument_name: String,
    pub quantity: u64,
    pub price: String,
    /// Change of the customer's cash (available + frozen), signed.
    pub amount_cny: Decimal,
    /// What this fill was charged: the increment of its order's cumulative fees.
    pub fees: FeeBreakdown,
    pub cash_after_cny: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldPosition {
    pub instrument: String,
    /// The instrument's name from its listing.
    pub instrument_name: String,
    pub quantity: u64,
    pub cost_cny: Decimal,
    pub avg_cost: Decimal,
    /// Price used, and where it comes from.
    pub price: Option<Decimal>,
    pub price_source: &'static str,
    pub market_value_cny: Option<Decimal>,
}

/// The brokerage a statement comes from, as its configuration names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broker {
    pub name: String,
    pub address: String,
    pub phone: Option<String>,
}

/// A period whose end was after the last business date the ledger has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PeriodClamp {
    pub requested_to: NaiveDate,
    pub reached: NaiveDate,
}

/// What a statement says beyond the account's events: who issues it, when, and on what terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementContext {
    pub broker: Broker,
    pub generated_at: DateTime<Utc>,
    /// Days the customer has to report a discrepancy.
    pub discrepancy_days: u32,
    pub clamp: Option<PeriodClamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub account_id: String,
    pub customer_name: String,
    /// The customer's id number with all but its first 4 and last 4 characters masked ([`mask_id_number`]).
    pub id_number_masked: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub context: StatementContext,
    pub opening_cash_cny: Decimal,
    pub movements: Vec<Movement>,
    pub closing_cash_cny: Decimal,
    pub total_fees: FeeBreakdown,
    pub positions: Vec<HeldPosition>,
    /// Sum of the positions' market values (positions without a price count nothing).
    pub total_market_value_cny: Decimal,
    /// 总资产: closing cash plus total market value.
    pub total_assets_cny: Decimal,
}

/// An id number as a statement shows it: the first 4 and last 4 characters kept, every
/// other one `*`. One of 8 characters or fewer is masked whole, as keeping 8 would show it all.
pub fn mask_id_number(id_number: &str) -> String {
    let chars: Vec<char> = id_number.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - 8;
    chars[..4]
        .iter()
        .chain(std::iter::repeat_n(&'*', hidden))
        .chain(&chars[chars.len() - 4..])
        .collect()
}

/// The account replayed up to the period's end: what the statement is made of.
struct Replayed {
    account: Account,
    opening_cash_cny: Option<Decimal>,
    movements: Vec<Movement>,
    total_fees: FeeBreakdown,
    /// The account's last fill price per instrument, up to the period's end.
    last_fill_price: BTreeMap<String, Decimal>,
}

async fn replay_account(
    (store, dates): (&dyn EventStore, &BusinessDates),
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Replayed, ProjectionError> {
    let recorded = store.load_stream(&StreamId::new(Account::TYPE, account_id)).await?;
    let mut replayed = Replayed {
        account: Account::default(),
        opening_cash_cny: None,
        movements: Vec::new(),
        total_fees: FeeBreakdown::default(),
        last_fill_price: BTreeMap::new(),
    };
    for event in &recorded {
        let decoded: AccountEvent = decode(event)?;
        // Before the ledger named any trade date: counted in every period's opening balance.
        let date = dates.date_of(event).unwrap_or(NaiveDate::MIN);
        if date > to {
            // After the period (an order for a later trade date); a later event may still be in it.
            continue;
        }
        if date >= from && replayed.opening_cash_cny.is_none() {
            replayed.opening_cash_cny = Some(cash(&replayed.account));
        }
        if let AccountEvent::FillBooked { instrument, price, .. } = &decoded {
            replayed.last_fill_price.insert(instrument.to_string(), *price);
        }
        let movement = movement_of(event, &decoded, date);
        replayed.account.apply(decoded);
        if let (Some(mut movement), true) = (movement, date >= from) {
            movement.cash_after_cny = cash(&replayed.account);
            replayed.total_fees = replayed.total_fees.plus(&movement.fees);
            replayed.movements.push(movement);
        }
    }
    Ok(replayed)
}

/// Builds the statement of `account_id` for trade dates `from..=to` (`to` already clamped
/// to what the ledger has reached, see [`BusinessDates::latest`]); None when no such account was opened.
pub async fn build_statement(
    (store, dates): (&dyn EventStore, &BusinessDates),
    account_id: &str,
    (from, to): (NaiveDate, NaiveDate),
    context: StatementContext,
) -> Result<Option<Statement>, ProjectionError> {
    let mut replayed = replay_account((store, dates), account_id, from, to).await?;
    let Some(customer) = replayed.account.customer().cloned() else {
        return Ok(None);
    };
    let instruments = instruments_named(store, &replayed).await?;
    for movement in &mut replayed.movements {
        movement.instrument_name = instrument_name(&instruments, &movement.instrument);
    }
    let positions = held_positions(&replayed, &instruments, to);
    let closing_cash_cny = cash(&replayed.account);
    let total_market_value_cny: Decimal = positions.iter().filter_map(|p| p.market_value_cny).sum();
    Ok(Some(Statement {
        account_id: account_id.to_owned(),
        customer_name: customer.customer_name,
        id_number_masked: mask_id_number(&customer.id_number),
        from,
        to,
        context,
        opening_cash_cny: replayed.opening_cash_cny.unwrap_or(closing_cash_cny),
        movements: replayed.movements,
        closing_cash_cny,
        total_fees: replayed.total_fees,
        positions,
        total_market_value_cny,
        total_assets_cny: closing_cash_cny + total_market_value_cny,
    }))
}

/// Every instrument the statement names (in its movements or its positions), replayed from its stream.
async fn instruments_named(
    store: &dyn EventStore,
    replayed: &Replayed,
) -> Result<BTreeMap<String, Instrument>, ProjectionError> {
    let codes = replayed
        .movements
        .iter()
        .map(|m| m.instrument.clone())
        .chain(replayed.account.positions().keys().map(ToString::to_string))
        .filter(|code| !code.is_empty());
    let mut instruments = BTreeMap::new();
    for code in codes {
        if instruments.contains_key(&code) {
            continue;
        }
        let mut instrument = Instrument::default();
        for event in store
            .load_stream(&StreamId::new(Instrument::TYPE, code.as_str()))
            .await?
        {
            instrument.apply(decode(&event)?);
        }
        instruments.insert(code, instrument);
    }
    Ok(instruments)
}

fn instrument_name(instruments: &BTreeMap<String, Instrument>, code: &str) -> String {
    instruments
        .get(code)
        .and_then(Instrument::info)
        .map(|info| info.name.clone())
        .unwrap_or_default()
}

/// The account's non-empty positions at the close of `to`, valued at that day's close (the
/// previous close set for a later trade date), else at the account's last fill price, else not at all.
fn held_positions(replayed: &Replayed, instruments: &BTreeMap<String, Instrument>, to: NaiveDate) -> Vec<HeldPosition> {
    let mut positions = Vec::new();
    for (code, position) in replayed.account.positions() {
        if position.quantity == 0 {
            continue;
        }
        let close = instruments.get(code.as_str()).and_then(|i| i.close_of(to));
        let (price, price_source) = match (close, replayed.last_fill_price.get(code.as_str())) {
            (Some(close), _) => (Some(close), PriceSource::Close),
            (None, Some(fill)) => (Some(*fill), PriceSource::LastFill),
            (None, None) => (None, PriceSource::None),
        };
        positions.push(HeldPosition {
            instrument: code.to_string(),
            instrument_name: instrument_name(instruments, code.as_str()),
            quantity: position.quantity,
            cost_cny: position.cost_cny,
            avg_cost: position.avg_cost(),
            price,
            price_source: price_source.into(),
            market_value_cny: price.map(|p| round_to_fen(p * Decimal::from(position.quantity))),
        });
    }
    positions
}

fn cash(account: &Account) -> Decimal {
    account.cash().total_cny()
}

fn movement_of(recorded: &RecordedEvent, event: &AccountEvent, date: NaiveDate) -> Option<Movement> {
    let base = |kind: MovementKind, amount_cny: Decimal| Movement {
        date,
        global_position: recorded.global_position,
        kind: <&str>::from(kind).to_owned(),
        instrument: String::new(),
        instrument_name: String::new(),
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
