//! `ledger statement`: a customer's statement for a period, as HTML or CSV.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use ledger_eventstore::EventStore;
use ledger_projections::statement::{build_statement, render_csv, render_html};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Html,
    Csv,
}

/// Writes the statement to `out`, or prints it when `out` is None. Returns false when the account is unknown.
pub async fn write_statement(
    store: &dyn EventStore,
    account: &str,
    from: NaiveDate,
    to: NaiveDate,
    format: Format,
    out: Option<&Path>,
) -> anyhow::Result<bool> {
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    let Some(statement) = build_statement(store, account, from, to).await? else {
        return Ok(false);
    };
    let text = match format {
        Format::Html => render_html(&statement),
        Format::Csv => render_csv(&statement),
    };
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(true)
}

pub async fn run(
    store: &dyn EventStore,
    account: &str,
    from: NaiveDate,
    to: NaiveDate,
    format: Format,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if !write_statement(store, account, from, to, format, out).await? {
        eprintln!("unknown_account: no account {account} has been opened");
        return Ok(ExitCode::from(1));
    }
    if let Some(path) = out {
        eprintln!(
            "statement of {account} for {from} to {to} written to {}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
