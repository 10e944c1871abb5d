//! `ledger statement`: a customer's statement for a period, as HTML, CSV or PDF.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use ledger_app::{AppError, Config, EventStore, MarketRules, StatementFormat, StatementRequest};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Html,
    /// UTF-8 with a byte-order mark (Excel shows its Chinese text).
    Csv,
    /// Needs a font with Chinese glyphs: package fonts-wqy-microhei, or [statement] pdf_font.
    Pdf,
    /// One JSON object with the statement's fields (amounts as strings).
    Json,
}

impl From<Format> for StatementFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Html => StatementFormat::Html,
            Format::Csv => StatementFormat::Csv,
            Format::Pdf => StatementFormat::Pdf,
            Format::Json => StatementFormat::Json,
        }
    }
}

/// The errors that are the caller's to fix, answered with their code and exit code 1.
const CALLER_CODES: [&str; 4] = [
    "unknown_account",
    "period_not_reached",
    "pdf_font_missing",
    "invalid_input",
];

/// Writes the statement to `out`, or to standard output when `out` is None.
pub async fn run(
    (store, rules): (&dyn EventStore, &MarketRules),
    config: &Config,
    (account_id, from, to, format): (&str, NaiveDate, NaiveDate, Format),
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let request = StatementRequest {
        account_id,
        from,
        to,
        format: format.into(),
        // The customer's own copy: the name in full, the id number masked.
        shown_to: None,
    };
    let bytes = match ledger_app::statement(store, rules, config, request).await {
        Ok(bytes) => bytes,
        Err(error) if CALLER_CODES.contains(&error.code()) => {
            eprintln!("{}: {error}", error.code());
            return Ok(ExitCode::from(1));
        }
        Err(error) => return Err(AppError::into(error)),
    };
    match out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "statement of {} for {} to {} written to {}",
                request.account_id,
                request.from,
                request.to,
                path.display()
            );
        }
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .context("cannot write the statement")?,
    }
    Ok(ExitCode::SUCCESS)
}
