//! Statement rendering pinned byte for byte: the HTML and CSV of a fixed
//! statement must equal the pinned text (a change to either is deliberate), every
//! text field is HTML-escaped whatever it holds, and what a customer needs is on
//! the page: broker, masked id, names, totals, notes, "none" for an empty section,
//! the clamp; the CSV starts with a byte-order mark; the PDF carries the same text.

use chrono::{DateTime, NaiveDate};
use ledger_domain::fees::FeeBreakdown;
use ledger_projections::statement::{
    mask_id_number, render_csv, render_html, render_pdf, Broker, HeldPosition, Movement, PdfFont, PeriodClamp,
    Statement, StatementContext, CSV_BOM,
};
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
        instrument_name: String::new(),
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
        instrument_name: format!("Name of {instrument}"),
        quantity,
        price: price.to_owned(),
        fees: fees(dec!(5.00), if kind.contains("Sell") { dec!(0.6) } else { dec!(0) }),
        ..movement(day, global_position, kind, dec!(-1000.06), dec!(98999.94))
    }
}

fn position(instrument: &str, price: Option<Decimal>, price_source: &'static str) -> HeldPosition {
    HeldPosition {
        instrument: instrument.to_owned(),
        instrument_name: format!("Name of {instrument}"),
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
        id_number_masked: "1101**********1234".to_owned(),
        from: date(4),
        to: date(6),
        context: StatementContext {
            broker: Broker {
                name: "测试证券 Test Securities".to_owned(),
                address: "北京市 1 Test Road, Beijing".to_owned(),
                phone: Some("95500".to_owned()),
            },
            generated_at: DateTime::parse_from_rfc3339("2024-03-07T01:30:00Z").unwrap().to_utc(),
            discrepancy_days: 7,
            clamp: None,
        },
        opening_cash_cny: dec!(0),
        movements,
        closing_cash_cny: dec!(99699.2),
        total_fees: fees(dec!(10.00), dec!(0.6)),
        positions: vec![
            position("000001.SZ", Some(dec!(11.20)), "收盘价 close"),
            position("600000.SH", Some(dec!(12.5)), "最新成交价 last fill"),
            position("688981.SH", None, "无 none"),
        ],
        total_market_value_cny: dec!(7110.00),
        total_assets_cny: dec!(106809.20),
    }
}

/// The page of [`fixed_statement`]: pinned byte for byte, so a change to it is deliberate.
const EXPECTED_HTML: &str = r##"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>对账单 Statement D0000001</title>
<style>
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Noto Sans", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.2em; } table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #bbb; padding: 4px 8px; font-size: 0.9em; } th { background: #eef; }
td { white-space: nowrap; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.broker { border-bottom: 2px solid #335; padding-bottom: .4em; } .broker b { font-size: 1.2em; }
p.none { color: #555; } p.clamp { color: #a40; font-weight: bold; } .notes { font-size: .85em; color: #333; }
</style></head><body>
<div class=broker><b>测试证券 Test Securities</b><br>北京市 1 Test Road, Beijing &nbsp; 客服电话 Service phone: 95500</div>
<h1>对账单 Statement of account D0000001</h1>
<p>客户 Customer: 张三, &quot;Zhang&quot; &lt;b&gt;&amp;' &nbsp; 证件号码 ID number: 1101**********1234</p>
<p>期间 Period: 2024-03-04 — 2024-03-06 &nbsp; 币种 Currency: CNY</p>
<table><tr><th>期初资金 Opening cash</th><th>期末资金 Closing cash</th><th>证券市值 Market value</th><th>总资产 Total assets</th><th>佣金 Commission</th><th>印花税 Stamp duty</th><th>其他费用 Other fees</th></tr>
<tr><td class=n>0.00</td><td class=n>99699.20</td><td class=n>7110.00</td><td class=n>106809.20</td><td class=n>10.00</td><td class=n>0.60</td><td class=n>0.06</td></tr></table>
<h2>资金流水 Movements</h2>
<table><tr><th>日期 Date</th><th>业务 Type</th><th>证券代码 Code</th><th>证券名称 Name</th><th>数量 Quantity</th><th>价格 Price</th><th>佣金 Commission</th><th>印花税 Stamp duty</th><th>其他费用 Other fees</th><th>发生金额 Amount</th><th>资金余额 Cash after</th></tr>
<tr><td>2024-03-04</td><td>银证转入 Deposit</td><td></td><td></td><td class=n></td><td class=n></td><td class=n>0.00</td><td class=n>0.00</td><td class=n>0.00</td><td class=n>100000.00</td><td class=n>100000.00</td></tr>
<tr><td>2024-03-04</td><td>买入 Buy</td><td>600000.SH</td><td>Name of 600000.SH</td><td class=n>100</td><td class=n>10.00</td><td class=n>5.00</td><td class=n>0.00</td><td class=n>0.06</td><td class=n>-1000.06</td><td class=n>98999.94</td></tr>
<tr><td>2024-03-05</td><td>卖出 Sell</td><td>600000.SH</td><td>Name of 600000.SH</td><td class=n>100</td><td class=n>12.5</td><td class=n>5.00</td><td class=n>0.60</td><td class=n>0.06</td><td class=n>-1000.06</td><td class=n>98999.94</td></tr>
<tr><td>2024-03-06</td><td>银证转出 Withdrawal</td><td></td><td></td><td class=n></td><td class=n></td><td class=n>0.00</td><td class=n>0.00</td><td class=n>0.00</td><td class=n>-500.01</td><td class=n>99699.20</td></tr>
</table>
<h2>持仓 Positions at the close of 2024-03-06</h2>
<table><tr><th>证券代码 Code</th><th>证券名称 Name</th><th>数量 Quantity</th><th>成本 Cost</th><th>成本价 Avg cost</th><th>价格 Price</th><th>价格来源 Price source</th><th>市值 Market value</th></tr>
<tr><td>000001.SZ</td><td>Name of 000001.SZ</td><td class=n>300</td><td class=n>3000.10</td><td class=n>10.0003</td><td class=n>11.20</td><td>收盘价 close</td><td class=n>3360.00</td></tr>
<tr><td>600000.SH</td><td>Name of 600000.SH</td><td class=n>300</td><td class=n>3000.10</td><td class=n>10.0003</td><td class=n>12.5</td><td>最新成交价 last fill</td><td class=n>3750.00</td></tr>
<tr><td>688981.SH</td><td>Name of 688981.SH</td><td class=n>300</td><td class=n>3000.10</td><td class=n>10.0003</td><td class=n></td><td>无 none</td><td class=n></td></tr>
</table>
<h2>说明 Notes</h2>
<div class=notes><p>佣金按委托计收，每笔委托设最低佣金：委托的首笔成交至少收取最低佣金，同一委托的后续成交只收取累计佣金超出已收部分，故可能为 0.00 或较小金额。Commission is charged per order, with a minimum per order: the first fill of an order pays at least the minimum, so later fills of the same order may show 0.00 or a small increment.</p>
<p>市值按期末收盘价计算；尚无收盘价时按本账户最近成交价（见价格来源）；无价格的持仓不计入市值。总资产 = 期末资金 + 证券市值。Market value is at the period's closing price; where none is known yet, at this account's last fill price (see price source); a position without a price counts nothing. Total assets = closing cash + market value.</p>
<p>证件号码仅显示前4位与后4位。The id number shows only its first 4 and last 4 characters.</p>
<p>生成时间 Generated: 2024-03-07 01:30:00 UTC（北京时间 Beijing time 2024-03-07 09:30:00）</p>
<p>本对账单根据本公司账务记录生成。如有不符，请于 7 日内联系：测试证券 Test Securities, 北京市 1 Test Road, Beijing, 95500。This statement is generated from the ledger's records; report any discrepancy within 7 days to 测试证券 Test Securities, 北京市 1 Test Road, Beijing, 95500.</p>
</div>
</body></html>
"##;

/// The CSV of [`fixed_statement`] after its byte-order mark, pinned byte for byte.
const EXPECTED_CSV: &str = r##"section,broker,account,customer,id_number,from,to,requested_to,opening_cash,closing_cash,market_value,total_assets,generated_at_utc,report_within_days
summary,测试证券 Test Securities,D0000001,"张三, ""Zhang"" <b>&'",1101**********1234,2024-03-04,2024-03-06,2024-03-06,0.00,99699.20,7110.00,106809.20,2024-03-07T01:30:00Z,7
section,date,global_position,type,instrument,instrument_name,quantity,price,commission,stamp_duty,transfer_fee,handling_fee,regulatory_fee,amount,cash_after
movement,2024-03-04,3,银证转入 Deposit,,,0,,0.00,0.00,0.00,0.00,0.00,100000.00,100000.00
movement,2024-03-04,7,买入 Buy,600000.SH,Name of 600000.SH,100,10.00,5.00,0.00,0.01,0.03,0.02,-1000.06,98999.94
movement,2024-03-05,12,卖出 Sell,600000.SH,Name of 600000.SH,100,12.5,5.00,0.60,0.01,0.03,0.02,-1000.06,98999.94
movement,2024-03-06,15,银证转出 Withdrawal,,,0,,0.00,0.00,0.00,0.00,0.00,-500.01,99699.20
section,instrument,instrument_name,quantity,cost,avg_cost,price,price_source,market_value
position,000001.SZ,Name of 000001.SZ,300,3000.10,10.0003,11.20,收盘价 close,3360.00
position,600000.SH,Name of 600000.SH,300,3000.10,10.0003,12.5,最新成交价 last fill,3750.00
position,688981.SH,Name of 688981.SH,300,3000.10,10.0003,,无 none,
"##;

#[test]
fn the_html_of_a_fixed_statement_is_unchanged_byte_for_byte() {
    assert_eq!(render_html(&fixed_statement()), EXPECTED_HTML);
}

#[test]
fn the_csv_of_a_fixed_statement_is_unchanged_byte_for_byte() {
    assert_eq!(render_csv(&fixed_statement()), format!("{CSV_BOM}{EXPECTED_CSV}"));
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
    assert!(html.contains(&format!("<tr><td>{escaped}</td><td>Name of 000001.SZ</td>")));
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
        assert_eq!(
            csv_line(&csv, "summary,"),
            format!("summary,测试证券 Test Securities,D0000001,{written},1101**********1234")
        );
    }
}

#[test]
fn an_id_number_keeps_its_first_and_last_four_characters() {
    assert_eq!(mask_id_number("110101199003071234"), "1101**********1234");
    assert_eq!(mask_id_number("G1234567X"), "G123*567X");
    // Nothing would be hidden by keeping 8 of 8: a short one is masked whole.
    assert_eq!(mask_id_number("12345678"), "********");
    assert_eq!(mask_id_number(""), "");
    let html = render_html(&fixed_statement());
    assert!(html.contains("证件号码 ID number: 1101**********1234"), "{html}");
}

#[test]
fn the_page_names_the_broker_the_instruments_and_the_totals() {
    let html = render_html(&fixed_statement());
    for expected in [
        "<b>测试证券 Test Securities</b><br>北京市 1 Test Road, Beijing",
        "客服电话 Service phone: 95500",
        "<td>600000.SH</td><td>Name of 600000.SH</td>",
        "<td class=n>7110.00</td><td class=n>106809.20</td>",
        "请于 7 日内联系",
        "report any discrepancy within 7 days to 测试证券 Test Securities",
        "later fills of the same order may show 0.00",
    ] {
        assert!(html.contains(expected), "{expected:?} missing from\n{html}");
    }
}

#[test]
fn the_time_a_statement_was_generated_is_on_it_in_utc_and_beijing_time() {
    let html = render_html(&fixed_statement());
    assert!(
        html.contains("生成时间 Generated: 2024-03-07 01:30:00 UTC（北京时间 Beijing time 2024-03-07 09:30:00）"),
        "{html}"
    );
    let csv = render_csv(&fixed_statement());
    assert!(csv.contains(",2024-03-07T01:30:00Z,7\n"), "{csv}");
}

#[test]
fn an_empty_section_says_none_instead_of_an_empty_table() {
    let mut statement = fixed_statement();
    statement.movements.clear();
    statement.positions.clear();
    let html = render_html(&statement);
    assert!(
        html.contains("<h2>资金流水 Movements</h2>\n<p class=none>无 none</p>"),
        "{html}"
    );
    assert!(html.contains("2024-03-06</h2>\n<p class=none>无 none</p>"), "{html}");
    assert!(
        !html.contains("<th>日期 Date</th>") && !html.contains("<th>成本 Cost</th>"),
        "{html}"
    );
}

#[test]
fn a_clamped_period_says_so() {
    let mut statement = fixed_statement();
    assert!(!render_html(&statement).contains("ledger has reached"));
    statement.context.clamp = Some(PeriodClamp {
        requested_to: date(31),
        reached: date(6),
    });
    let html = render_html(&statement);
    assert!(
        html.contains("Period requested to 2024-03-31, ledger has reached 2024-03-06."),
        "{html}"
    );
    assert!(render_csv(&statement).contains(",2024-03-04,2024-03-06,2024-03-31,"));
}

#[test]
fn the_csv_starts_with_a_byte_order_mark_for_excel() {
    let csv = render_csv(&fixed_statement());
    assert_eq!(&csv.as_bytes()[..3], [0xEF, 0xBB, 0xBF]);
    assert!(csv[3..].starts_with("section,broker,account"));
}

/// The statement font of Debian's fonts-wqy-microhei, which .ci/run installs.
const TEST_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

fn test_font() -> PdfFont {
    let bytes = std::fs::read(TEST_FONT)
        .unwrap_or_else(|e| panic!("{TEST_FONT}: {e}; install it: apt-get install fonts-wqy-microhei"));
    PdfFont::new(bytes, 0).unwrap()
}

/// The text of a PDF, by pdftotext (poppler-utils, which .ci/run installs).
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statement.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| panic!("pdftotext: {e}; install it: apt-get install poppler-utils"));
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_pdf_carries_the_customer_the_broker_and_the_closing_cash() {
    let mut statement = fixed_statement();
    statement.customer_name = "张三 Zhang San".to_owned();
    let pdf = render_pdf(&statement, &test_font()).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let text = pdf_text(&pdf);
    for expected in [
        "张三 Zhang San",
        "测试证券 Test Securities",
        "99699.20",
        "106809.20",
        "1101**********1234",
        "Name of 600000.SH",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the PDF's text:\n{text}"
        );
    }
}

#[test]
fn a_long_statement_breaks_across_pages_and_an_empty_one_says_none() {
    let mut statement = fixed_statement();
    let row = statement.movements[1].clone();
    statement.movements = vec![row; 120];
    let text = pdf_text(&render_pdf(&statement, &test_font()).unwrap());
    assert!(text.contains("Page 1 of 5") && text.contains("Page 5 of 5"), "{text}");
    assert_eq!(text.matches("Name of 600000.SH").count(), 120 + 1);

    statement.movements.clear();
    statement.positions.clear();
    let text = pdf_text(&render_pdf(&statement, &test_font()).unwrap());
    assert_eq!(text.matches("无 none").count(), 2, "{text}");
}

#[test]
fn a_file_that_is_not_a_font_is_refused() {
    let error = PdfFont::new(b"not a font".to_vec(), 0).unwrap_err();
    assert!(error.to_string().contains("not a TrueType or OpenType font"), "{error}");
}
