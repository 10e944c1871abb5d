//! The demo end to end, as `ledger demo` reports it: the generated days run, the
//! read models caught up, the files the bank and the depository would send written
//! (with a few planted breaks) and reconciled, a sample customer's statement
//! written, and the verdict, every phase timed. The caller picks where the files go
//! and prints the [`DemoReport`] as it likes, so the CLI, `ledger bench` and the
//! HTTP server share one flow.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use ledger_commands::Ledger;
use ledger_domain::MarketRules;
use ledger_eventstore::EventStore;
use ledger_projections::reconcile::Break;
use serde::Serialize;

use super::planted::plant_breaks;
use super::{account_id, first_day, last_day, run, summarize, DemoProgress, DemoRun, DemoSummary};
use crate::config::Config;
use crate::queries::{catch_up_read_models, CatchUp};
use crate::reconcile::{ledger_at_close, read_bank_file, read_depository_file, reconcile_with, write_agreeing_files};
use crate::statement::{statement, StatementFormat, StatementRequest};
use crate::AppError;

/// The report's own phases, announced (and timed) after the run's, in this order.
pub const READ_MODELS_PHASE: &str = "read models";
pub const RECONCILIATION_PHASE: &str = "reconciliation";
pub const FILES_PHASE: &str = "summary, statement and commands file";
pub const REPORT_PHASES: [&str; 3] = [READ_MODELS_PHASE, RECONCILIATION_PHASE, FILES_PHASE];

/// Where the demo writes its files: the caller decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoFiles {
    /// The bank's custody balances (`account,balance`): the ledger's, with planted breaks.
    pub bank: PathBuf,
    /// The depository's holdings (`account,instrument,quantity`): the ledger's, with a planted break.
    pub depository: PathBuf,
    /// The sample customer's statement, as HTML.
    pub statement: PathBuf,
    /// The generated commands (JSON lines, the `ledger exec` format), when wanted.
    pub commands: Option<PathBuf>,
}

/// How long one phase took: the commands answered, or a step of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseTiming {
    pub name: String,
    /// Commands sent in the phase; 0 for the report's own phases.
    pub commands: u64,
    pub seconds: f64,
}

/// How long the demo took, measured with [`Instant`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoTimings {
    /// The whole run, from the start to the last file written: every phase, and the
    /// generation of the commands between them.
    pub total_seconds: f64,
    /// From the start to the last command answered, generation included.
    pub commands_seconds: f64,
    /// Time spent in the ledger (parsing, deciding, committing), generation left out.
    pub engine_seconds: f64,
    /// Catching up every read model table after the run.
    pub read_models_seconds: f64,
    /// Every phase in the order it ran, the run's then the report's ([`REPORT_PHASES`]).
    pub phases: Vec<PhaseTiming>,
}

/// The reconciliation of the demo's last day against the files it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoReconciliation {
    pub trade_date: NaiveDate,
    /// The ledger's side is the log up to this position: the close of the date.
    pub as_of_position: u64,
    /// The differences planted in the files (see [`super::UNKNOWN_ACCOUNT`]), sorted.
    pub planted: Vec<Break>,
    /// Differences found (and stored), sorted: the demo passes when they are exactly the planted ones.
    pub breaks: Vec<Break>,
}

impl DemoReconciliation {
    /// Whether reconciliation found exactly the planted breaks, no more, no fewer.
    pub fn found_exactly_the_planted(&self) -> bool {
        self.breaks == self.planted
    }
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
    /// The demo passes when every invariant holds and the reconciliation finds exactly the planted breaks.
    pub passed: bool,
}

/// What the report's phases built.
struct Built {
    summary: DemoSummary,
    read_models: CatchUp,
    read_models_seconds: f64,
    reconciliation: DemoReconciliation,
    statement: DemoStatement,
}

/// Runs the demo's days on an empty ledger (see [`run`]), then builds its report,
/// writing the files named in `files`. The progress callback hears every phase
/// start and finish, the run's then [`REPORT_PHASES`].
pub async fn run_with_report(
    ledger: &mut Ledger,
    seed: u64,
    accounts: usize,
    files: DemoFiles,
    mut on_progress: impl FnMut(DemoProgress<'_>),
) -> Result<DemoReport, AppError> {
    let started = Instant::now();
    let mut phases = Vec::new();
    let mut hear = |step: DemoProgress<'_>| {
        if let DemoProgress::PhaseDone {
            name,
            commands,
            seconds,
        } = step
        {
            phases.push(PhaseTiming {
                name: name.to_owned(),
                commands,
                seconds,
            });
        }
        on_progress(step);
    };
    let demo = run(ledger, seed, accounts, &mut hear).await?;
    let commands_seconds = started.elapsed().as_secs_f64();
    let built = build_report((ledger.store().as_ref(), ledger.rules()), &demo, &files, &mut hear).await?;
    let total_seconds = started.elapsed().as_secs_f64();
    let passed = built.summary.invariant_violations.is_empty() && built.reconciliation.found_exactly_the_planted();
    Ok(DemoReport {
        seed,
        summary: built.summary,
        timings: DemoTimings {
            total_seconds,
            commands_seconds,
            engine_seconds: demo.engine_seconds,
            read_models_seconds: built.read_models_seconds,
            phases,
        },
        read_models: built.read_models,
        reconciliation: built.reconciliation,
        statement: built.statement,
        files,
        passed,
    })
}

/// The report's phases, each announced and timed.
async fn build_report(
    (store, rules): (&dyn EventStore, &MarketRules),
    demo: &DemoRun,
    files: &DemoFiles,
    hear: &mut impl FnMut(DemoProgress<'_>),
) -> Result<Built, AppError> {
    let step = start_phase(hear, READ_MODELS_PHASE);
    let read_models = catch_up_read_models(store, |_| {}).await?;
    let read_models_seconds = finish_phase(hear, READ_MODELS_PHASE, step);

    let step = start_phase(hear, RECONCILIATION_PHASE);
    let reconciliation = reconcile_planted_files(store, files).await?;
    finish_phase(hear, RECONCILIATION_PHASE, step);

    let step = start_phase(hear, FILES_PHASE);
    let summary = summarize(store, demo).await?;
    let statement = write_sample_statement(store, rules, &files.statement).await?;
    if let Some(path) = &files.commands {
        write_commands(path, demo)?;
    }
    finish_phase(hear, FILES_PHASE, step);
    Ok(Built {
        summary,
        read_models,
        read_models_seconds,
        reconciliation,
        statement,
    })
}

fn start_phase(hear: &mut impl FnMut(DemoProgress<'_>), name: &str) -> Instant {
    hear(DemoProgress::Phase { name, commands: 0 });
    Instant::now()
}

/// Tells the phase is done; returns its seconds.
fn finish_phase(hear: &mut impl FnMut(DemoProgress<'_>), name: &str, started: Instant) -> f64 {
    let seconds = started.elapsed().as_secs_f64();
    hear(DemoProgress::PhaseDone {
        name,
        commands: 0,
        seconds,
    });
    seconds
}

/// The commands, one a line, so that `ledger exec` replays them into the same ledger.
fn write_commands(path: &Path, demo: &DemoRun) -> Result<(), AppError> {
    let mut text = demo.lines.join("\n");
    text.push('\n');
    write_file(path, "the demo's commands", text.as_bytes())
}

/// Writes the files the bank and the depository would send, agreeing with the
/// ledger at the close of the last day but for the planted breaks, then reconciles
/// that day against exactly those bytes. The log is folded to the close once, for both.
async fn reconcile_planted_files(store: &dyn EventStore, files: &DemoFiles) -> Result<DemoReconciliation, AppError> {
    let ours = ledger_at_close(store, last_day()).await?;
    let (mut bank, mut depository) = (Vec::new(), Vec::new());
    write_agreeing_files(&ours, &mut bank, &mut depository)?;
    let planted = plant_breaks(
        read_bank_file(bank.as_slice())?,
        read_depository_file(depository.as_slice())?,
    );
    let (bank, depository) = (planted.bank_csv()?, planted.depository_csv()?);
    write_file(&files.bank, "the demo's bank file", &bank)?;
    write_file(&files.depository, "the demo's depository file", &depository)?;
    let found = reconcile_with(
        store,
        &ours,
        &read_bank_file(bank.as_slice())?,
        &read_depository_file(depository.as_slice())?,
    )
    .await?;
    Ok(DemoReconciliation {
        trade_date: found.trade_date,
        as_of_position: found.as_of_position,
        planted: planted.breaks,
        breaks: found.breaks,
    })
}

/// The statement of the demo's first account over both days, as HTML.
async fn write_sample_statement(
    store: &dyn EventStore,
    rules: &MarketRules,
    path: &Path,
) -> Result<DemoStatement, AppError> {
    let sample = DemoStatement {
        account_id: account_id(0),
        from: first_day(),
        to: last_day(),
    };
    let request = StatementRequest {
        account_id: &sample.account_id,
        from: sample.from,
        to: sample.to,
        format: StatementFormat::Html,
        shown_to: None,
    };
    // The built-in configuration: the demo's broker is the placeholder, and says so.
    let html = statement(store, rules, &Config::default(), request).await?;
    write_file(path, "the demo's statement", &html)?;
    Ok(sample)
}

/// Writes a whole file; the error names it, as `Output` names only what was written.
fn write_file(path: &Path, what: &'static str, bytes: &[u8]) -> Result<(), AppError> {
    std::fs::write(path, bytes).map_err(|e| AppError::Output {
        what,
        cause: std::io::Error::new(e.kind(), format!("{}: {e}", path.display())),
    })
}
