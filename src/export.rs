//! `ledger export`: the log as JSON lines, or the journal for hledger or Beancount
//! (docs/export.md), to standard output or a file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use ledger_app::export::{ExportFormat, ExportRequest, ExportSummary};
use ledger_app::{AppError, EventStore, MarketRules};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// The log, one CloudEvents envelope a line with its hashes (what `ledger import` reads).
    Jsonl,
    /// An hledger journal: `hledger -f FILE balance -B`.
    Hledger,
    /// A Beancount file: `bean-check FILE`.
    Beancount,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[arg(long, value_enum)]
    format: Format,
    /// First business date included, YYYY-MM-DD (the journals open with the balances before it).
    #[arg(long, value_parser = crate::cli::parse_date, value_name = "YYYY-MM-DD")]
    from: Option<NaiveDate>,
    /// Last business date included, YYYY-MM-DD.
    #[arg(long, value_parser = crate::cli::parse_date, value_name = "YYYY-MM-DD")]
    to: Option<NaiveDate>,
    /// Only this customer's account; repeat for several.
    #[arg(long = "account", value_name = "ACCOUNT")]
    accounts: Vec<String>,
    /// Write to this file (replaced only once the export is whole) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// The errors that are the caller's to fix, answered with their code and exit code 1.
const CALLER_CODES: [&str; 2] = ["unknown_account", "invalid_input"];

pub async fn run(
    (store, rules): (&dyn EventStore, &MarketRules),
    source: &str,
    args: ExportArgs,
) -> anyhow::Result<ExitCode> {
    let request = ExportRequest {
        format: match args.format {
            Format::Jsonl => ExportFormat::Jsonl,
            Format::Hledger => ExportFormat::Hledger,
            Format::Beancount => ExportFormat::Beancount,
        },
        from: args.from,
        to: args.to,
        accounts: args.accounts,
    };
    let exported = match &args.out {
        Some(path) => export_to_file(store, rules, source, &request, path).await,
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let exported = ledger_app::export::export(store, rules, source, &request, &mut out).await;
            out.flush().context("cannot write the export")?;
            exported
        }
    };
    let summary = match exported {
        Ok(summary) => summary,
        Err(error) if CALLER_CODES.contains(&error.code()) => {
            eprintln!("{}: {error}", error.code());
            return Ok(ExitCode::from(1));
        }
        Err(error) => return Err(error.into()),
    };
    let what = match request.format {
        ExportFormat::Jsonl => "events",
        ExportFormat::Hledger | ExportFormat::Beancount => "transactions",
    };
    eprintln!(
        "exported {} {what} as {} from the log through position {}, head hash {}{}",
        summary.written,
        request.format,
        summary.head_position,
        summary.head_hash,
        args.out
            .as_deref()
            .map(|path| format!(", to {}", path.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes beside `path` and renames over it once whole: a failed export leaves any
/// earlier file as it was and no half-written one.
async fn export_to_file(
    store: &dyn EventStore,
    rules: &MarketRules,
    source: &str,
    request: &ExportRequest,
    path: &Path,
) -> Result<ExportSummary, AppError> {
    let output = |cause| AppError::Output {
        what: "the export file",
        cause,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::File::create(&partial).map_err(output)?;
    let mut out = BufWriter::new(file);
    let written = async {
        let summary = ledger_app::export::export(store, rules, source, request, &mut out).await?;
        let file = out.into_inner().map_err(|e| output(e.into_error()))?;
        file.sync_all().map_err(output)?;
        std::fs::rename(&partial, path).map_err(output)?;
        Ok(summary)
    }
    .await;
    if written.is_err() {
        // Nothing of a failed export is left behind; the error says what failed.
        let _ = std::fs::remove_file(&partial);
    }
    written
}
