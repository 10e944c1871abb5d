//! Customer statements (对账单): opening cash, every movement with its fees,
//! closing cash, and the positions at the close with cost and valuation, for a
//! period of trade dates, in Chinese and English, as HTML or CSV.
//!
//! Built from the log alone: the account's events are replayed up to the end
//! of the period. An event's date is its trade date when it has one (orders,
//! fills, expiries, settlements); otherwise (deposits, withdrawals, opening)
//! it is the trading day during which it was written: the first day whose
//! end of day comes after it in the log, or, after the last end of day, the
//! Beijing date it was recorded.

use chrono::{NaiveDate, TimeDelta};
use cqrs_es::Aggregate;
use ledger_domain::account::{Account, AccountEvent};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::money::{format_cny, round_to_fen};
use ledger_domain::{ClearingDay, ClearingDayEvent, Instrument, Side};
use ledger_eventstore::codec::decode;
use ledger_eventstore::{EventStore, RecordedEvent, StreamId};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::ProjectionError;

/// Beijing time, UTC+8, in which the brokerage's calendar days run.
const BEIJING_OFFSET_SECONDS: i64 = 8 * 3600;

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

/// Where each closed trading day ends in the log: (position of DayClosed, date), sorted.
async fn day_ends(store: &dyn EventStore) -> Result<Vec<(u64, NaiveDate)>, ProjectionError> {
    let mut ends = Vec::new();
    for id in store.stream_ids(ClearingDay::TYPE).await? {
        for recorded in store.load_stream(&StreamId::new(ClearingDay::TYPE, id)).await? {
            if let ClearingDayEvent::DayClosed { trade_date } = decode(&recorded)? {
                ends.push((recorded.global_position, trade_date));
            }
        }
    }
    ends.sort();
    Ok(ends)
}

fn business_date(recorded: &RecordedEvent, event: &AccountEvent, day_ends: &[(u64, NaiveDate)]) -> NaiveDate {
    let day_in_progress = day_ends
        .iter()
        .find(|(position, _)| *position > recorded.global_position)
        .map(|(_, date)| *date);
    match event {
        AccountEvent::OrderPlaced { trade_date, .. }
        | AccountEvent::FillBooked { trade_date, .. }
        | AccountEvent::OrderExpired { trade_date, .. }
        | AccountEvent::TradesSettled { trade_date, .. } => *trade_date,
        _ => day_in_progress.unwrap_or_else(|| {
            (recorded.metadata.recorded_at + TimeDelta::seconds(BEIJING_OFFSET_SECONDS)).date_naive()
        }),
    }
}

/// Builds the statement of `account_id` for trade dates `from..=to`.
pub async fn build_statement(
    store: &dyn EventStore,
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<Statement>, ProjectionError> {
    let recorded = store.load_stream(&StreamId::new(Account::TYPE, account_id)).await?;
    let day_ends = day_ends(store).await?;
    let mut account = Account::default();
    let mut movements = Vec::new();
    let mut opening_cash_cny = None;
    let mut total_fees = FeeBreakdown::default();
    for event in &recorded {
        let decoded: AccountEvent = decode(event)?;
        let date = business_date(event, &decoded, &day_ends);
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
            (Some(close), _) => (Some(close), "收盘价 close"),
            (None, Some(fill)) => (fill.price.parse().ok(), "最新成交价 last fill"),
            (None, None) => (None, "无 none"),
        };
        positions.push(HeldPosition {
            instrument: code.to_string(),
            quantity: position.quantity,
            cost_cny: position.cost_cny,
            avg_cost: position.avg_cost(),
            price,
            price_source,
            market_value_cny: price.map(|p| round_to_fen(p * Decimal::from(position.quantity))),
        });
    }
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

fn cash(account: &Account) -> Decimal {
    account.cash().available_cny + account.cash().frozen_cny
}

fn movement_of(recorded: &RecordedEvent, event: &AccountEvent, date: NaiveDate) -> Option<Movement> {
    let base = |kind: &str, amount_cny: Decimal| Movement {
        date,
        global_position: recorded.global_position,
        kind: kind.to_owned(),
        instrument: String::new(),
        quantity: 0,
        price: String::new(),
        amount_cny,
        fees: FeeBreakdown::default(),
        cash_after_cny: Decimal::ZERO,
    };
    match event {
        AccountEvent::CashDeposited { amount_cny, .. } => Some(base("银证转入 Deposit", *amount_cny)),
        AccountEvent::WithdrawalConfirmed { amount_cny, .. } => Some(base("银证转出 Withdrawal", -*amount_cny)),
        AccountEvent::FillBooked {
            instrument,
            side,
            quantity,
            price,
            value_cny,
            fees,
            ..
        } => {
            let (kind, amount) = match side {
                Side::Buy => ("买入 Buy", -(value_cny + fees.total_cny())),
                Side::Sell => ("卖出 Sell", value_cny - fees.total_cny()),
            };
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

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page.
pub fn render_html(statement: &Statement) -> String {
    let mut rows = String::new();
    for m in &statement.movements {
        let other_fees = m.fees.transfer_fee_cny + m.fees.handling_fee_cny + m.fees.regulatory_fee_cny;
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            m.date,
            html_escape(&m.kind),
            html_escape(&m.instrument),
            if m.quantity > 0 {
                m.quantity.to_string()
            } else {
                String::new()
            },
            html_escape(&m.price),
            format_cny(m.fees.commission_cny),
            format_cny(m.fees.stamp_duty_cny),
            format_cny(other_fees),
            format_cny(m.amount_cny),
            format_cny(m.cash_after_cny),
        ));
    }
    let mut holdings = String::new();
    for p in &statement.positions {
        holdings.push_str(&format!(
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.4}</td><td class=n>{}</td><td>{}</td><td class=n>{}</td></tr>\n",
            html_escape(&p.instrument),
            p.quantity,
            format_cny(p.cost_cny),
            p.avg_cost,
            p.price.map(|v| v.to_string()).unwrap_or_default(),
            p.price_source,
            p.market_value_cny.map(format_cny).unwrap_or_default(),
        ));
    }
    let fees = &statement.total_fees;
    format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>对账单 Statement {account}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Noto Sans", sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.4em; }} table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 4px 8px; font-size: 0.9em; }} th {{ background: #eef; }}
td {{ white-space: nowrap; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style></head><body>
<h1>对账单 Statement of account {account}</h1>
<p>客户 Customer: {customer} &nbsp; 期间 Period: {from} — {to} &nbsp; 币种 Currency: CNY</p>
<table><tr><th>期初资金 Opening cash</th><th>期末资金 Closing cash</th><th>佣金 Commission</th><th>印花税 Stamp duty</th><th>其他费用 Other fees</th></tr>
<tr><td class=n>{opening}</td><td class=n>{closing}</td><td class=n>{commission}</td><td class=n>{stamp}</td><td class=n>{other}</td></tr></table>
<h2>资金流水 Movements</h2>
<table><tr><th>日期 Date</th><th>业务 Type</th><th>证券 Instrument</th><th>数量 Quantity</th><th>价格 Price</th><th>佣金 Commission</th><th>印花税 Stamp duty</th><th>其他费用 Other fees</th><th>发生金额 Amount</th><th>资金余额 Cash after</th></tr>
{rows}</table>
<h2>持仓 Positions at the close of {to}</h2>
<table><tr><th>证券 Instrument</th><th>数量 Quantity</th><th>成本 Cost</th><th>成本价 Avg cost</th><th>价格 Price</th><th>价格来源 Price source</th><th>市值 Market value</th></tr>
{holdings}</table>
</body></html>
"#,
        account = html_escape(&statement.account_id),
        customer = html_escape(&statement.customer_name),
        from = statement.from,
        to = statement.to,
        opening = format_cny(statement.opening_cash_cny),
        closing = format_cny(statement.closing_cash_cny),
        commission = format_cny(fees.commission_cny),
        stamp = format_cny(fees.stamp_duty_cny),
        other = format_cny(fees.transfer_fee_cny + fees.handling_fee_cny + fees.regulatory_fee_cny),
    )
}

/// CSV: one line per movement, then one per position, each section with its header.
pub fn render_csv(statement: &Statement) -> String {
    let mut out = String::new();
    out.push_str("section,account,customer,from,to,opening_cash,closing_cash\n");
    out.push_str(&format!(
        "summary,{},{},{},{},{},{}\n",
        csv_field(&statement.account_id),
        csv_field(&statement.customer_name),
        statement.from,
        statement.to,
        format_cny(statement.opening_cash_cny),
        format_cny(statement.closing_cash_cny)
    ));
    out.push_str("section,date,global_position,type,instrument,quantity,price,commission,stamp_duty,transfer_fee,handling_fee,regulatory_fee,amount,cash_after\n");
    for m in &statement.movements {
        out.push_str(&format!(
            "movement,{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            m.date,
            m.global_position,
            csv_field(&m.kind),
            m.instrument,
            m.quantity,
            m.price,
            format_cny(m.fees.commission_cny),
            format_cny(m.fees.stamp_duty_cny),
            format_cny(m.fees.transfer_fee_cny),
            format_cny(m.fees.handling_fee_cny),
            format_cny(m.fees.regulatory_fee_cny),
            format_cny(m.amount_cny),
            format_cny(m.cash_after_cny)
        ));
    }
    out.push_str("section,instrument,quantity,cost,avg_cost,price,price_source,market_value\n");
    for p in &statement.positions {
        out.push_str(&format!(
            "position,{},{},{},{:.4},{},{},{}\n",
            p.instrument,
            p.quantity,
            format_cny(p.cost_cny),
            p.avg_cost,
            p.price.map(|v| v.to_string()).unwrap_or_default(),
            csv_field(p.price_source),
            p.market_value_cny.map(format_cny).unwrap_or_default()
        ));
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
