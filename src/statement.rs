//! `ledger statement`: a customer's statement for a period, as HTML or CSV.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use ledger_app::{AppError, EventStore, MarketRules, StatementFormat};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Html,
    Csv,
}

impl From<Format> for StatementFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Html => StatementFormat::Html,
            Format::Csv => StatementFormat::Csv,
        }
    }
}

/// Writes the statement to `out`, or prints it when `out` is None.
pub async fn write_statement(
    (store, rules): (&dyn EventStore, &MarketRules),
    account: &str,
    (from, to): (NaiveDate, NaiveDate),
    format: StatementFormat,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let text = ledger_app::statement(store, rules, account, from, to, format).await?;
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

pub async fn run(
    (store, rules): (&dyn EventStore, &MarketRules),
    account: &str,
    (from, to): (NaiveDate, NaiveDate),
    format: Format,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if let Err(e) = write_statement((store, rules), account, (from, to), format.into(), out).await {
        // An unknown account is the caller's mistake, answered with its code and exit code 1.
        if let Some(unknown @ AppError::UnknownAccount(_)) = e.downcast_ref::<AppError>() {
            eprintln!("{}: {unknown}", unknown.code());
            return Ok(ExitCode::from(1));
        }
        return Err(e);
    }
    if let Some(path) = out {
        eprintln!(
            "statement of {account} for {from} to {to} written to {}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
