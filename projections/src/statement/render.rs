//! The statement as text: the HTML page (the askama template `templates/statement.html`)
//! and the CSV (the csv crate, quoting only the fields that need it), and the
//! sentences every format prints the same way (the clamp, the notes, the disclaimer).

use std::fmt;

use askama::Template;
use chrono::{DateTime, FixedOffset, Utc};
use ledger_domain::money::format_cny;

use super::{HeldPosition, Movement, Statement};

/// Beijing time, UTC+8: a statement says when it was generated in the customer's time too.
const BEIJING_OFFSET_SECONDS: i64 = 8 * 3600;

/// Starts the CSV, so that Excel reads it as UTF-8 (without it, Chinese text is garbled).
pub const CSV_BOM: &str = "\u{feff}";

/// The sentence saying the period was cut short, when it was.
pub(super) fn clamp_sentence(statement: &Statement) -> Option<String> {
    statement.context.clamp.map(|clamp| {
        format!(
            "所请求期间截至 {requested}，账本记录截至 {reached}。Period requested to {requested}, ledger has reached {reached}.",
            requested = clamp.requested_to,
            reached = clamp.reached
        )
    })
}

/// The notes at the foot of every statement: how fees and values are found, when it was
/// generated, and where to report a discrepancy.
pub(super) fn notes(statement: &Statement) -> Vec<String> {
    let broker = &statement.context.broker;
    let contact = match &broker.phone {
        Some(phone) => format!("{}, {}, {phone}", broker.name, broker.address),
        None => format!("{}, {}", broker.name, broker.address),
    };
    let days = statement.context.discrepancy_days;
    vec![
        "佣金按委托计收，每笔委托设最低佣金：委托的首笔成交至少收取最低佣金，同一委托的后续成交只收取累计佣金超出已收部分，故可能为 0.00 或较小金额。\
         Commission is charged per order, with a minimum per order: the first fill of an order pays at least the minimum, \
         so later fills of the same order may show 0.00 or a small increment."
            .to_owned(),
        "市值按期末收盘价计算；尚无收盘价时按本账户最近成交价（见价格来源）；无价格的持仓不计入市值。总资产 = 期末资金 + 证券市值。\
         Market value is at the period's closing price; where none is known yet, at this account's last fill price (see price source); \
         a position without a price counts nothing. Total assets = closing cash + market value."
            .to_owned(),
        "证件号码仅显示前4位与后4位。The id number shows only its first 4 and last 4 characters.".to_owned(),
        generated_sentence(statement.context.generated_at),
        format!(
            "本对账单根据本公司账务记录生成。如有不符，请于 {days} 日内联系：{contact}。\
             This statement is generated from the ledger's records; report any discrepancy within {days} days to {contact}."
        ),
    ]
}

fn generated_sentence(generated_at: DateTime<Utc>) -> String {
    let beijing =
        FixedOffset::east_opt(BEIJING_OFFSET_SECONDS as i32).map(|offset| generated_at.with_timezone(&offset));
    let beijing = beijing.map_or_else(String::new, |at| at.format("%Y-%m-%d %H:%M:%S").to_string());
    format!(
        "生成时间 Generated: {} UTC（北京时间 Beijing time {beijing}）",
        generated_at.format("%Y-%m-%d %H:%M:%S")
    )
}

/// The statement's HTML escaper: `&`, `<`, `>` and `"` become `&amp;`, `&lt;`,
/// `&gt;` and `&quot;`, as the page has always had them (askama's own escaper
/// writes numeric entities and escapes `'` too, which would change its bytes).
/// Named in templates/askama.toml for the `html` templates of this crate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NamedEntities;

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
    clamp: Option<String>,
    notes: Vec<String>,
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
        Ok(format_cny(super::other_fees_cny(fees)))
    }
}

pub(super) fn other_fees_cny(fees: &ledger_domain::fees::FeeBreakdown) -> rust_decimal::Decimal {
    fees.transfer_fee_cny + fees.handling_fee_cny + fees.regulatory_fee_cny
}

/// A self-contained HTML page.
pub fn render_html(statement: &Statement) -> String {
    StatementPage {
        statement,
        clamp: clamp_sentence(statement),
        notes: notes(statement),
    }
    .render()
    .expect("the statement page's filters and escaper never fail")
}

/// CSV: a byte-order mark, then one line per movement, then one per position, each
/// section with its header line (a section with nothing in it is its header alone).
pub fn render_csv(statement: &Statement) -> String {
    // Sections differ in width, hence flexible. A field is quoted only when it holds `,`, `"`, `\n` or `\r`
    // (the hand-written writer before it left a lone `\r` unquoted, which CSV readers take for a line end).
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(CSV_BOM.as_bytes().to_vec());
    write_csv_records(&mut writer, statement).expect("writing CSV into memory never fails");
    let bytes = writer.into_inner().expect("flushing CSV into memory never fails");
    String::from_utf8(bytes).expect("CSV written from UTF-8 fields is UTF-8")
}

/// The first field of every CSV line names its section; each section starts with its header line.
const CSV_SUMMARY_HEADER: [&str; 14] = [
    "section",
    "broker",
    "account",
    "customer",
    "id_number",
    "from",
    "to",
    "requested_to",
    "opening_cash",
    "closing_cash",
    "market_value",
    "total_assets",
    "generated_at_utc",
    "report_within_days",
];
const CSV_MOVEMENT_HEADER: [&str; 15] = [
    "section",
    "date",
    "global_position",
    "type",
    "instrument",
    "instrument_name",
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
const CSV_POSITION_HEADER: [&str; 9] = [
    "section",
    "instrument",
    "instrument_name",
    "quantity",
    "cost",
    "avg_cost",
    "price",
    "price_source",
    "market_value",
];

fn summary_csv_record(s: &Statement) -> [String; CSV_SUMMARY_HEADER.len()] {
    [
        "summary".to_owned(),
        s.context.broker.name.clone(),
        s.account_id.clone(),
        s.customer_name.clone(),
        s.id_number_masked.clone(),
        s.from.to_string(),
        s.to.to_string(),
        s.context.clamp.map_or(s.to, |clamp| clamp.requested_to).to_string(),
        format_cny(s.opening_cash_cny),
        format_cny(s.closing_cash_cny),
        format_cny(s.total_market_value_cny),
        format_cny(s.total_assets_cny),
        s.context.generated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        s.context.discrepancy_days.to_string(),
    ]
}

fn write_csv_records(writer: &mut csv::Writer<Vec<u8>>, statement: &Statement) -> csv::Result<()> {
    writer.write_record(CSV_SUMMARY_HEADER)?;
    writer.write_record(summary_csv_record(statement))?;
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
        m.instrument_name.clone(),
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
        p.instrument_name.clone(),
        p.quantity.to_string(),
        format_cny(p.cost_cny),
        format!("{:.4}", p.avg_cost),
        p.price.map(|v| v.to_string()).unwrap_or_default(),
        p.price_source.to_owned(),
        p.market_value_cny.map(format_cny).unwrap_or_default(),
    ]
}
