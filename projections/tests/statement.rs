//! Statement rendering pinned byte for byte: the HTML and CSV of a fixed
//! statement must equal the text the hand-written renderers produced before
//! the templates and the csv writer replaced them, and every text field is
//! HTML-escaped whatever it holds.

use chrono::NaiveDate;
use ledger_domain::fees::FeeBreakdown;
use ledger_projections::statement::{render_csv, render_html, HeldPosition, Movement, Statement};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, day).expect("a valid March date")
}

fn fees(commission_cny: Decimal, stamp_duty_cny: Decimal) -> FeeBreakdown {
    FeeBreakdown {
        commission_cny,
        stamp_duty_cny,
        transfer_fee_cny: dec!(0.01),
        handling_fee_cny: dec!(0.034),
        regulatory_fee_cny: dec!(0.02),
    }
}

fn movement(day: u32, global_position: u64, kind: &str, amount_cny: Decimal, cash_after_cny: Decimal) -> Movement {
    Movement {
        date: date(day),
        global_position,
        kind: kind.to_owned(),
        instrument: String::new(),
        quantity: 0,
        price: String::new(),
        amount_cny,
        fees: FeeBreakdown::default(),
        cash_after_cny,
    }
}

fn fill(day: u32, global_position: u64, kind: &str, instrument: &str, quantity: u64, price: &str) -> Movement {
    Movement {
        instrument: instrument.to_owned(),
        quantity,
        price: price.to_owned(),
        fees: fees(dec!(5.00), if kind.contains("Sell") { dec!(0.6) } else { dec!(0) }),
        ..movement(day, global_position, kind, dec!(-1000.06), dec!(98999.94))
    }
}

fn position(instrument: &str, price: Option<Decimal>, price_source: &'static str) -> HeldPosition {
    HeldPosition {
        instrument: instrument.to_owned(),
        quantity: 300,
        cost_cny: dec!(3000.1),
        avg_cost: dec!(10.000333333),
        price,
        price_source,
        market_value_cny: price.map(|p| p * dec!(300)),
    }
}

/// Every kind of movement and every price source, and a customer name that
/// needs quoting in CSV and escaping in HTML.
fn fixed_statement() -> Statement {
    let movements = vec![
        movement(4, 3, "银证转入 Deposit", dec!(100000), dec!(100000.00)),
        fill(4, 7, "买入 Buy", "600000.SH", 100, "10.00"),
        fill(5, 12, "卖出 Sell", "600000.SH", 100, "12.5"),
        movement(6, 15, "银证转出 Withdrawal", dec!(-500.005), dec!(99699.2)),
    ];
    Statement {
        account_id: "D0000001".to_owned(),
        customer_name: "张三, \"Zhang\" <b>&'".to_owned(),
        from: date(4),
        to: date(6),
        opening_cash_cny: dec!(0),
        movements,
        closing_cash_cny: dec!(99699.2),
        total_fees: fees(dec!(10.00), dec!(0.6)),
        positions: vec![
            position("000001.SZ", Some(dec!(11.20)), "收盘价 close"),
            position("600000.SH", Some(dec!(12.5)), "最新成交价 last fill"),
            position("688981.SH", None, "无 none"),
        ],
    }
}

/// What the hand-written renderer produced for [`fixed_statement`], before askama.
const EXPECTED_HTML: &str = r##"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>对账单 Statement D0000001</title>
<style>
body { font-family: "Noto Sans CJK SC", "Noto Sans", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 4px 8px; font-size: 0.9em; } th { background: #eef; }
td { white-space: nowrap; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
</style></head><body>
<h1>对账单 Statement of account D0000001</h1>
<p>客户 Customer: 张三, &quot;Zhang&quot; &lt;b&gt;&amp;' &nbsp; 期间 Period: 2024-03-04 — 2024-03-06 &nbsp; 币种 Currency: CNY</p>
<table><tr><th>期初资金 Opening cash</th><th>期末资金 Closing cash</th><th>佣金 Commission</th><th>印花税 Stamp duty</th><th>其他费用 Other fees</th></tr>
<tr><td class=n>0.00</td><td class=n>99699.20</td><td class=n>10.00</td><td class=n>0.60</td><td class=n>0.06</td></tr></table>
<h2>资金流水 Movements</h2>
<table><tr><th>日期 Date</th><th>业务 Type</th><th>证券 Instrument</th><th>数量 Quantity</th><th>价格 Price</th><th>佣金 Commission</th><th>印花税 Stamp duty</th><th>其他费用 Other fees</th><th>发生金额 Amount</th><th>资金余额 Cash after</th></tr>
<tr><td>2024-03-04</td><td>银证转入 Deposit</td><td></td><td class=n></td><td class=n></td><td class=n>0.00</td><td class=n>0.00</td><td class=n>0.00</td><td class=n>100000.00</td><td class=n>100000.00</td></tr>
<tr><td>2024-03-04</td><td>买入 Buy</td><td>600000.SH</td><td class=n>100</td><td class=n>10.00</td><td class=n>5.00</td><td class=n>0.00</td><td class=n>0.06</td><td class=n>-1000.06</td><td class=n>98999.94</td></tr>
<tr><td>2024-03-05</td><td>卖出 Sell</td><td>600000.SH</td><td class=n>100</td><td class=n>12.5</td><td class=n>5.00</td><td class=n>0.60</td><td class=n>0.06</td><td class=n>-1000.06</td><td class=n>98999.94</td></tr>
<tr><td>2024-03-06</td><td>银证转出 Withdrawal</td><td></td><td class=n></td><td class=n></td><td class=n>0.00</td><td class=n>0.00</td><td class=n>0.00</td><td class=n>-500.01</td><td class=n>99699.20</td></tr>
</table>
<h2>持仓 Positions at the close of 2024-03-06</h2>
<table><tr><th>证券 Instrument</th><th>数量 Quantity</th><th>成本 Cost</th><th>成本价 Avg cost</th><th>价格 Price</th><th>价格来源 Price source</th><th>市值 Market value</th></tr>
<tr><td>000001.SZ</td><td class=n>300</td><td class=n>3000.10</td><td class=n>10.0003</td><td class=n>11.20</td><td>收盘价 close</td><td class=n>3360.00</td></tr>
<tr><td>600000.SH</td><td class=n>300</td><td class=n>3000.10</td><td class=n>10.0003</td><td class=n>12.5</td><td>最新成交价 last fill</td><td class=n>3750.00</td></tr>
<tr><td>688981.SH</td><td class=n>300</td><td class=n>3000.10</td><td class=n>10.0003</td><td class=n></td><td>无 none</td><td class=n></td></tr>
</table>
</body></html>
"##;

/// What the hand-written `csv_field` writer produced for [`fixed_statement`], before the csv crate.
const EXPECTED_CSV: &str = r##"section,account,customer,from,to,opening_cash,closing_cash
summary,D0000001,"张三, ""Zhang"" <b>&'",2024-03-04,2024-03-06,0.00,99699.20
section,date,global_position,type,instrument,quantity,price,commission,stamp_duty,transfer_fee,handling_fee,regulatory_fee,amount,cash_after
movement,2024-03-04,3,银证转入 Deposit,,0,,0.00,0.00,0.00,0.00,0.00,100000.00,100000.00
movement,2024-03-04,7,买入 Buy,600000.SH,100,10.00,5.00,0.00,0.01,0.03,0.02,-1000.06,98999.94
movement,2024-03-05,12,卖出 Sell,600000.SH,100,12.5,5.00,0.60,0.01,0.03,0.02,-1000.06,98999.94
movement,2024-03-06,15,银证转出 Withdrawal,,0,,0.00,0.00,0.00,0.00,0.00,-500.01,99699.20
section,instrument,quantity,cost,avg_cost,price,price_source,market_value
position,000001.SZ,300,3000.10,10.0003,11.20,收盘价 close,3360.00
position,600000.SH,300,3000.10,10.0003,12.5,最新成交价 last fill,3750.00
position,688981.SH,300,3000.10,10.0003,,无 none,
"##;

#[test]
fn the_html_of_a_fixed_statement_is_unchanged_byte_for_byte() {
    assert_eq!(render_html(&fixed_statement()), EXPECTED_HTML);
}

#[test]
fn the_csv_of_a_fixed_statement_is_unchanged_byte_for_byte() {
    assert_eq!(render_csv(&fixed_statement()), EXPECTED_CSV);
}

#[test]
fn every_text_field_of_the_html_is_escaped() {
    let hostile = "<script>&\"'";
    let mut statement = fixed_statement();
    statement.account_id = hostile.to_owned();
    statement.customer_name = hostile.to_owned();
    statement.movements[1].instrument = hostile.to_owned();
    statement.movements[1].kind = hostile.to_owned();
    statement.movements[1].price = hostile.to_owned();
    statement.positions[0].instrument = hostile.to_owned();
    let html = render_html(&statement);
    assert!(!html.contains("<script>"), "a raw tag reached the page:\n{html}");
    // Today's escaping: & < > " as entities, the apostrophe as it is.
    let escaped = "&lt;script&gt;&amp;&quot;'";
    // Title, heading, customer, and the movement's instrument, kind and price, and the position's instrument.
    assert_eq!(html.matches(escaped).count(), 7, "{html}");
    assert!(html.contains(&format!("<p>客户 Customer: {escaped} &nbsp;")));
    assert!(html.contains(&format!("<tr><td>{escaped}</td><td class=n>300</td>")));
}

/// The line of the CSV that starts with `prefix`.
fn csv_line<'a>(csv: &'a str, prefix: &str) -> &'a str {
    let start = csv.find(prefix).expect("the CSV has the line");
    let end = csv[start..]
        .find(",2024-03-04,")
        .expect("the summary line has its period");
    &csv[start..start + end]
}

#[test]
fn a_csv_field_is_quoted_only_when_it_needs_it() {
    let mut statement = fixed_statement();
    for (name, written) in [
        ("Zhang San", "Zhang San"),
        ("<b>&'", "<b>&'"),
        ("Zhang, San", "\"Zhang, San\""),
        ("Zhang \"San\"", "\"Zhang \"\"San\"\"\""),
        ("Zhang\nSan", "\"Zhang\nSan\""),
        // The one change from the hand-written writer, which left a lone carriage return unquoted.
        ("Zhang\rSan", "\"Zhang\rSan\""),
    ] {
        statement.customer_name = name.to_owned();
        let csv = render_csv(&statement);
        assert_eq!(csv_line(&csv, "summary,"), format!("summary,D0000001,{written}"));
    }
}
