//! `ledger eod --date D` and `ledger settle --date D`: run the day's end or its
//! settlement, then print the clearing report of that trade date; `ledger clearing-report
//! --date D` prints the same report without running anything.

use std::process::ExitCode;

use chrono::NaiveDate;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use ledger_app::{
    format_cny, AppError, CalendarCheck, ClearingLine, ClearingReport, ClearingStep, DayStatus, EventStore, Ledger,
    Status,
};

use crate::readouts::align_numbers;

/// The actor recorded with the events of `ledger eod` and `ledger settle`.
const CLEARING_ACTOR: &str = "cli:clearing";

/// `ledger eod`, with or without `--off-calendar`.
pub fn end_of_day_step(off_calendar: bool) -> ClearingStep {
    ClearingStep::EndOfDay(if off_calendar {
        CalendarCheck::Off
    } else {
        CalendarCheck::On
    })
}

pub async fn run(
    mut ledger: Ledger,
    step: ClearingStep,
    trade_date: NaiveDate,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let outcome = match ledger_app::clearing::run_step(&mut ledger, CLEARING_ACTOR, step, trade_date).await {
        Ok(outcome) => outcome,
        Err(refused @ AppError::Refused { .. }) => {
            eprintln!("{refused}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        // Through a JSON value, whose keys are sorted, as the report has always been printed.
        let mut value = serde_json::to_value(&outcome)?;
        value["report"] = report_json(&outcome.report);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (what, done) = match step {
        ClearingStep::EndOfDay(_) => ("end of day", "closed"),
        ClearingStep::Settle => ("settlement", "settled"),
    };
    match outcome.status {
        Status::Duplicate => println!("trade date {trade_date} is already {done}; nothing changed"),
        _ => println!("{what} of {trade_date}: {} events written", outcome.events),
    }
    print_report(trade_date, &outcome.report);
    Ok(ExitCode::SUCCESS)
}

/// `ledger clearing-report --date D`: the report as the log stands, and how far the date has come.
pub async fn report(store: &dyn EventStore, trade_date: NaiveDate, json: bool) -> anyhow::Result<ExitCode> {
    let day = ledger_app::clearing_report(store, trade_date).await?;
    if json {
        // The report through report_json, as eod prints it: every amount with two decimals.
        let mut value = serde_json::to_value(&day)?;
        value["report"] = report_json(&day.report);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let state = match day.day_status {
        DayStatus::Trading => "not closed yet: the report can still change",
        DayStatus::Closed | DayStatus::Cleared => "closed, not settled",
        DayStatus::Settled => "closed and settled",
    };
    println!("trade date {trade_date}: {state}");
    print_report(trade_date, &day.report);
    Ok(ExitCode::SUCCESS)
}

fn print_report(trade_date: NaiveDate, report: &ClearingReport) {
    println!(
        "Clearing report of {trade_date} (net to CSDC: positive = the broker pays)\n{}",
        report_table(report)
    );
}

fn report_table(report: &ClearingReport) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([
        "instrument",
        "trades",
        "bought",
        "bought CNY",
        "sold",
        "sold CNY",
        "commission",
        "stamp duty",
        "transfer",
        "handling",
        "regulatory",
        "net to CSDC",
    ]);
    for line in report.lines.iter().chain(std::iter::once(&report.total)) {
        table.add_row(row_of(line));
    }
    align_numbers(&mut table, 1..12);
    table
}

/// The report with every amount in two decimals, as the table shows it: serialized as it is,
/// an amount summed from nothing is the decimal `0` and printed as "0".
pub fn report_json(report: &ClearingReport) -> serde_json::Value {
    serde_json::json!({
        "lines": report.lines.iter().map(line_json).collect::<Vec<_>>(),
        "total": line_json(&report.total),
    })
}

fn line_json(line: &ClearingLine) -> serde_json::Value {
    serde_json::json!({
        "instrument": line.instrument,
        "trades": line.trades,
        "bought_quantity": line.bought_quantity,
        "bought_cny": format_cny(line.bought_cny),
        "sold_quantity": line.sold_quantity,
        "sold_cny": format_cny(line.sold_cny),
        "fees": {
            "commission_cny": format_cny(line.fees.commission_cny),
            "stamp_duty_cny": format_cny(line.fees.stamp_duty_cny),
            "transfer_fee_cny": format_cny(line.fees.transfer_fee_cny),
            "handling_fee_cny": format_cny(line.fees.handling_fee_cny),
            "regulatory_fee_cny": format_cny(line.fees.regulatory_fee_cny),
        },
        "net_to_depository_cny": format_cny(line.net_to_depository_cny),
    })
}

fn row_of(line: &ClearingLine) -> Vec<String> {
    vec![
        line.instrument.clone(),
        line.trades.to_string(),
        line.bought_quantity.to_string(),
        format_cny(line.bought_cny),
        line.sold_quantity.to_string(),
        format_cny(line.sold_cny),
        format_cny(line.fees.commission_cny),
        format_cny(line.fees.stamp_duty_cny),
        format_cny(line.fees.transfer_fee_cny),
        format_cny(line.fees.handling_fee_cny),
        format_cny(line.fees.regulatory_fee_cny),
        format_cny(line.net_to_depository_cny),
    ]
}
