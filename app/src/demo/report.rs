//! The demo end to end, as `ledger demo` reports it: the generated days run, the
//! read models caught up, the files the bank and the depository would send written
//! and reconciled, a sample customer's statement written, and the verdict. The
//! caller picks where the files go and prints the [`DemoReport`] as it likes, so the
//! CLI, `ledger bench` and the HTTP server share one flow.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use ledger_commands::Ledger;
use ledger_projections::reconcile::Break;
use serde::Serialize;

use super::{account_id, first_day, last_day, run, summarize, DemoProgress, DemoRun, DemoSummary};
use crate::queries::{catch_up_read_models, CatchUp};
use crate::reconcile::{reconcile, write_agreeing_files};
use crate::statement::{statement, StatementFormat};
use crate::AppError;

/// The phase the demo announces once its commands are answered, while it builds its report.
pub const REPORT_PHASE: &str = "read models and files";

/// Where the demo writes its files: the caller decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoFiles {
    /// The bank's custody balances (`account,balance`), agreeing with the ledger.
    pub bank: PathBuf,
    /// The depository's holdings (`account,instrument,quantity`), agreeing with the ledger.
    pub depository: PathBuf,
    /// The sample customer's statement, as HTML.
    pub statement: PathBuf,
    /// The generated commands (JSON lines, the `ledger exec` format), when wanted.
    pub commands: Option<PathBuf>,
}

/// How long the demo's steps took, measured with [`Instant`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DemoTimings {
    /// From the start to the last command answered, generation included.
    pub wall_seconds: f64,
    /// Time spent in the ledger (parsing, deciding, committing), generation left out.
    pub engine_seconds: f64,
    /// Catching up every read model table after the run.
    pub read_models_seconds: f64,
}

/// The reconciliation of the demo's last day against the files it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoReconciliation {
    pub trade_date: NaiveDate,
    /// Differences found (and stored); the agreeing files give none.
    pub breaks: Vec<Break>,
}

/// Whose statement the demo wrote, for which trade dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoStatement {
    pub account_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Everything `ledger demo` reports.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// The generator's seed: the same seed gives the same commands.
    pub seed: u64,
    /// What the run left in the ledger, with the invariants' violations.
    pub summary: DemoSummary,
    pub timings: DemoTimings,
    /// What catching up the read models after the run did.
    pub read_models: CatchUp,
    pub reconciliation: DemoReconciliation,
    pub statement: DemoStatement,
    pub files: DemoFiles,
    /// The demo passes when every invariant holds and the reconciliation finds no break.
    pub passed: bool,
}

/// Runs the demo's days on an empty ledger (see [`run`]), then builds its report,
/// writing the files named in `files`. The progress callback hears the run's phases,
/// then [`REPORT_PHASE`].
pub async fn run_with_report(
    ledger: &mut Ledger,
    seed: u64,
    accounts: usize,
    files: DemoFiles,
    mut on_progress: impl FnMut(DemoProgress<'_>),
) -> Result<DemoReport, AppError> {
    let started = Instant::now();
    let demo = run(ledger, seed, accounts, &mut on_progress).await?;
    let wall_seconds = started.elapsed().as_secs_f64();
    on_progress(DemoProgress::Phase {
        name: REPORT_PHASE,
        commands: 0,
    });
    if let Some(path) = &files.commands {
        write_commands(path, &demo)?;
    }
    let store = ledger.store().as_ref();
    let projecting = Instant::now();
    let read_models = catch_up_read_models(store, |_| {}).await?;
    let read_models_seconds = projecting.elapsed().as_secs_f64();

    let reconciliation = reconcile_agreeing_files(store, &files).await?;
    let summary = summarize(store, &demo).await?;
    let statement = write_sample_statement(store, &files.statement).await?;
    let passed = summary.invariant_violations.is_empty() && reconciliation.breaks.is_empty();
    Ok(DemoReport {
        seed,
        summary,
        timings: DemoTimings {
            wall_seconds,
            engine_seconds: demo.engine_seconds,
            read_models_seconds,
        },
        read_models,
        reconciliation,
        statement,
        files,
        passed,
    })
}

/// The commands, one a line, so that `ledger exec` replays them into the same ledger.
fn write_commands(path: &Path, demo: &DemoRun) -> Result<(), AppError> {
    let mut text = demo.lines.join("\n");
    text.push('\n');
    write_file(path, "the demo's commands", text.as_bytes())
}

/// Writes the files the bank and the depository would send, then reconciles the
/// last day against exactly those bytes.
async fn reconcile_agreeing_files(
    store: &dyn ledger_eventstore::EventStore,
    files: &DemoFiles,
) -> Result<DemoReconciliation, AppError> {
    let (mut bank, mut depository) = (Vec::new(), Vec::new());
    write_agreeing_files(store, &mut bank, &mut depository).await?;
    write_file(&files.bank, "the demo's bank file", &bank)?;
    write_file(&files.depository, "the demo's depository file", &depository)?;
    let trade_date = last_day();
    let breaks = reconcile(store, trade_date, bank.as_slice(), depository.as_slice()).await?;
    Ok(DemoReconciliation { trade_date, breaks })
}

/// The statement of the demo's first account over both days, as HTML.
async fn write_sample_statement(
    store: &dyn ledger_eventstore::EventStore,
    path: &Path,
) -> Result<DemoStatement, AppError> {
    let sample = DemoStatement {
        account_id: account_id(0),
        from: first_day(),
        to: last_day(),
    };
    let html = statement(store, &sample.account_id, sample.from, sample.to, StatementFormat::Html).await?;
    write_file(path, "the demo's statement", html.as_bytes())?;
    Ok(sample)
}

/// Writes a whole file; the error names it, as `Output` names only what was written.
fn write_file(path: &Path, what: &'static str, bytes: &[u8]) -> Result<(), AppError> {
    std::fs::write(path, bytes).map_err(|e| AppError::Output {
        what,
        cause: std::io::Error::new(e.kind(), format!("{}: {e}", path.display())),
    })
}
