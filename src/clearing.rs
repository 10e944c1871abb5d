//! `ledger eod --date D` and `ledger settle --date D`: run the day's end or its
//! settlement, then print the clearing report of that trade date.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use ledger_commands::{Ledger, LedgerCommand, Status, Submission};
use ledger_domain::money::format_cny;
use ledger_domain::MarketRules;
use ledger_eventstore::EventStore;
use ledger_projections::clearing::{clearing_report, ClearingLine};
use ledger_projections::tables::{self, RunOptions};

use crate::readouts::align_numbers;

#[derive(Debug, Clone, Copy)]
pub enum Step {
    EndOfDay,
    Settle,
}

pub async fn run(
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    step: Step,
    trade_date: NaiveDate,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // One command id per date and step: running it again is a duplicate, never a second end of day.
    let (command_id, command) = match step {
        Step::EndOfDay => (format!("eod:{trade_date}"), LedgerCommand::EndOfDay { trade_date }),
        Step::Settle => (format!("settle:{trade_date}"), LedgerCommand::Settle { trade_date }),
    };
    let mut ledger = Ledger::new(Arc::clone(&store), rules);
    let submission = Submission {
        command_id,
        command,
        correlation_id: None,
        actor: "cli:clearing".to_owned(),
    };
    let result = ledger.execute(&[submission]).await?.remove(0);
    if result.status == Status::Rejected {
        eprintln!(
            "refused ({}): {}",
            result.code.as_deref().unwrap_or("-"),
            result.message.as_deref().unwrap_or("")
        );
        return Ok(ExitCode::from(1));
    }
    tables::run_accounts(store.as_ref(), RunOptions::default(), |_| {}).await?;
    let report = clearing_report(&tables::read_trades_of(store.as_ref(), trade_date).await?);
    if json {
        let value = serde_json::json!({
            "trade_date": trade_date.to_string(),
            "status": result.status.as_str(),
            "events": result.events,
            "report": report,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let what = match step {
        Step::EndOfDay => "end of day",
        Step::Settle => "settlement",
    };
    match result.status {
        Status::Duplicate => println!("{what} of {trade_date} was already done; nothing changed"),
        _ => println!("{what} of {trade_date}: {} events written", result.events),
    }
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
    println!("Clearing report of {trade_date} (net to CSDC: positive = the broker pays)\n{table}");
    Ok(ExitCode::SUCCESS)
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
