//! The demo: two realistic trading days for N accounts, generated deterministically
//! for a seed and run through the same batch function as a command file (JSON
//! lines -> parser -> engine -> event store), then summed up for a report.
//!
//! Generation runs in phases, each planned from the answers to the previous ones
//! (an order is filled only if it was accepted), like a gateway reacting to the
//! ledger. [`run_with_report`] then builds the whole report of `ledger demo` (read
//! models, reconciliation, statement, verdict; see [`report`]), which the binary
//! only prints; `ledger bench` runs the same days.

mod exchange;
mod generator;
mod market;
mod planted;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate};
use ledger_commands::{Ledger, LineAnswer};
use ledger_domain::MarketRules;
use ledger_eventstore::EventStore;
use ledger_projections::{AccountsView, BalanceRow, PositionRow};
use serde::Serialize;

use self::generator::{Generator, Intent};
pub use self::planted::UNKNOWN_ACCOUNT;
pub use self::report::{
    run_with_report, DemoFiles, DemoReconciliation, DemoReport, DemoStatement, DemoTimings, PhaseTiming, FILES_PHASE,
    READ_MODELS_PHASE, RECONCILIATION_PHASE, REPORT_PHASES,
};
use crate::batch::run_lines;
use crate::AppError;

/// Most accounts a demo generates (its plans live in memory).
pub const MAX_DEMO_ACCOUNTS: usize = 1_000_000;
/// Simulated time between two commands (09:15 Beijing time is 01:15 UTC).
const SIMULATED_MICROS_PER_COMMAND: i64 = 1_000;
/// Accounts whose balances and positions the summary shows.
pub const SAMPLE_ACCOUNTS: usize = 3;
/// The actor recorded with every event of the demo.
pub const DEMO_ACTOR: &str = "demo";

/// The demo's first trade date.
pub fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 4).expect("2024-03-04 is a date")
}

/// The demo's last trade date: it is closed and settled too.
pub fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 5).expect("2024-03-05 is a date")
}

/// The id of the demo's account number `index` (0-based): D0000001, D0000002, …
pub fn account_id(index: usize) -> String {
    Generator::account_id(index)
}

/// What the demo tells its caller while it runs.
#[derive(Debug, Clone, Copy)]
pub enum DemoProgress<'a> {
    /// A phase starts, with this many commands.
    Phase { name: &'a str, commands: u64 },
    /// This many more commands were answered.
    Answered(u64),
    /// The phase just announced is done: its commands answered (or its step of the report finished).
    PhaseDone { name: &'a str, commands: u64, seconds: f64 },
}

/// Every line the demo sent and every answer, in order.
#[derive(Debug, Clone, Serialize)]
pub struct DemoRun {
    /// The commands, in the `ledger exec` format: replaying them gives the same ledger.
    pub lines: Vec<String>,
    pub answers: Vec<LineAnswer>,
    /// Time spent in the ledger (parsing, deciding, committing), generation left out.
    pub engine_seconds: f64,
}

/// Refuses an account count the demo does not generate.
pub fn check_accounts(accounts: usize) -> Result<(), AppError> {
    if (1..=MAX_DEMO_ACCOUNTS).contains(&accounts) {
        return Ok(());
    }
    Err(AppError::InvalidInput(format!(
        "--accounts must be 1 to {MAX_DEMO_ACCOUNTS}, got {accounts}"
    )))
}

/// Generates and runs the demo's two days on an empty ledger. The same seed gives the
/// same commands, and (with the simulated clock it sets) the same hash chain on every backend.
pub async fn run(
    ledger: &mut Ledger,
    seed: u64,
    accounts: usize,
    mut on_progress: impl FnMut(DemoProgress<'_>),
) -> Result<DemoRun, AppError> {
    check_accounts(accounts)?;
    let events = ledger.store().head_position().await?;
    if events > 0 {
        return Err(AppError::DatabaseNotEmpty { events });
    }
    let rules: Arc<MarketRules> = Arc::new(ledger.rules().clone());
    let mut generator = Generator::new(seed, accounts, rules);
    run_days(&mut generator, ledger, &mut on_progress).await?;
    Ok(DemoRun {
        lines: generator.lines,
        answers: generator.answers,
        engine_seconds: generator.engine_time.as_secs_f64(),
    })
}

async fn run_days(
    demo: &mut Generator,
    ledger: &mut Ledger,
    progress: &mut impl FnMut(DemoProgress<'_>),
) -> Result<(), AppError> {
    // A simulated clock, so that the same seed gives the same log and hash chain on every backend.
    let clock_micros = Arc::new(AtomicI64::new(0));
    let clock = Arc::clone(&clock_micros);
    ledger.set_clock(move || {
        let micros = clock.fetch_add(SIMULATED_MICROS_PER_COMMAND, Ordering::Relaxed);
        DateTime::from_timestamp_micros(micros).unwrap_or_default()
    });
    let open_of = |day: NaiveDate| day.and_hms_opt(1, 15, 0).map_or(0, |t| t.and_utc().timestamp_micros());
    for phase in Phase::all() {
        if let Some(day) = phase.opens_day() {
            clock_micros.fetch_max(open_of(day), Ordering::Relaxed);
        }
        let plan = demo.plan(phase);
        run_phase(demo, ledger, progress, &phase.name(), plan).await?;
    }
    Ok(())
}

/// One phase of the demo's days: its commands are planned from the answers to the
/// phases before, and sent together.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// The listings, their previous closes and the accounts.
    Setup,
    CashMovements {
        day: NaiveDate,
        first_day: bool,
    },
    Orders {
        day: NaiveDate,
        first_day: bool,
    },
    /// One of the exchange's three rounds of answers to the day's orders.
    Executions {
        day: NaiveDate,
        round: usize,
    },
    Close {
        day: NaiveDate,
        first_day: bool,
    },
    /// The second day's previous closes, drawn from the first day's.
    PrevCloses {
        day: NaiveDate,
    },
    Resubmissions,
}

/// The exchange's rounds of answers a day.
const EXECUTION_ROUNDS: usize = 3;

impl Phase {
    /// Every phase, in the order the demo runs them.
    fn all() -> Vec<Phase> {
        let (day1, day2) = (first_day(), last_day());
        let mut phases = vec![Phase::Setup];
        for (day, first_day) in [(day1, true), (day2, false)] {
            phases.push(Phase::CashMovements { day, first_day });
            phases.push(Phase::Orders { day, first_day });
            phases.extend((0..EXECUTION_ROUNDS).map(|round| Phase::Executions { day, round }));
            phases.push(Phase::Close { day, first_day });
            if first_day {
                phases.push(Phase::PrevCloses { day: day2 });
            }
        }
        phases.push(Phase::Resubmissions);
        phases
    }

    fn name(self) -> String {
        match self {
            Phase::Setup => "listings and accounts".to_owned(),
            Phase::CashMovements { .. } => "deposits and withdrawals".to_owned(),
            Phase::Orders { day, .. } => format!("orders {day}"),
            Phase::Executions { day, round } => format!("executions {day} ({})", round + 1),
            Phase::Close { day, .. } => format!("end of day {day}"),
            Phase::PrevCloses { .. } => "previous closes".to_owned(),
            Phase::Resubmissions => "resubmitted commands".to_owned(),
        }
    }

    /// The trade date whose opening the simulated clock moves to before this phase.
    fn opens_day(self) -> Option<NaiveDate> {
        match self {
            Phase::Setup => Some(first_day()),
            Phase::CashMovements { day, .. } => Some(day),
            _ => None,
        }
    }
}

impl Generator {
    /// The commands of `phase`, each with what it means to the generator.
    fn plan(&mut self, phase: Phase) -> Vec<(Intent, String)> {
        match phase {
            Phase::Setup => self.plan_setup(first_day()),
            Phase::CashMovements { first_day, .. } => self.plan_cash_movements(first_day),
            Phase::Orders { day, first_day } => self.plan_orders(day, first_day),
            Phase::Executions { round, .. } => self.plan_executions(round),
            Phase::Close { day, first_day } => self.plan_close(day, first_day),
            Phase::PrevCloses { day } => self.plan_next_day_prev_closes(day),
            Phase::Resubmissions => self.plan_resubmissions(),
        }
    }

    /// Learns from a phase's answers, and keeps its lines and answers as the run's record.
    fn record(&mut self, plan: Vec<(Intent, String)>, answers: Vec<LineAnswer>) {
        assert_eq!(answers.len(), plan.len(), "every line of a phase is answered");
        for ((intent, line), answer) in plan.into_iter().zip(&answers) {
            self.learn(&intent, answer);
            self.lines.push(line);
        }
        self.answers.extend(answers);
    }
}

/// The demo's days as phases of command lines, for a driver of its own (`ledger bench
/// engine --workload demo`): the same commands as [`run`] for the same seed, each phase
/// planned from the answers to the ones before. The driver sets no clock: the log's
/// times are its own.
pub struct DemoScript {
    generator: Generator,
    phases: std::vec::IntoIter<Phase>,
    /// The phase given out and not yet answered.
    pending: Option<Vec<(Intent, String)>>,
}

/// One phase of a [`DemoScript`].
pub struct DemoPhase {
    pub name: String,
    /// The phase's commands, in the `ledger exec` format, in the order the demo sends them.
    pub lines: Vec<String>,
}

impl DemoScript {
    pub fn new(seed: u64, accounts: usize, rules: Arc<MarketRules>) -> Result<Self, AppError> {
        check_accounts(accounts)?;
        Ok(DemoScript {
            generator: Generator::new(seed, accounts, rules),
            phases: Phase::all().into_iter(),
            pending: None,
        })
    }

    /// The next phase, `None` after the last. The phase before must have been answered.
    pub fn next_phase(&mut self) -> Option<DemoPhase> {
        assert!(self.pending.is_none(), "the phase before was answered");
        let phase = self.phases.next()?;
        let plan = self.generator.plan(phase);
        let lines = plan.iter().map(|(_, line)| line.clone()).collect();
        self.pending = Some(plan);
        Some(DemoPhase {
            name: phase.name(),
            lines,
        })
    }

    /// The answers to the phase [`Self::next_phase`] gave, one per line, in its lines' order.
    pub fn answered(&mut self, answers: Vec<LineAnswer>) {
        let Some(plan) = self.pending.take() else {
            unreachable!("answers come after a phase was given");
        };
        self.generator.record(plan, answers);
    }
}

/// Sends a phase's lines through the batch function and learns from the answers.
async fn run_phase(
    demo: &mut Generator,
    ledger: &mut Ledger,
    progress: &mut impl FnMut(DemoProgress<'_>),
    name: &str,
    plan: Vec<(Intent, String)>,
) -> Result<(), AppError> {
    progress(DemoProgress::Phase {
        name,
        commands: plan.len() as u64,
    });
    let started = Instant::now();
    let first_line = demo.lines.len() as u64 + 1;
    let lines = plan.iter().map(|(_, line)| line.as_str());
    let answers = run_lines(ledger, DEMO_ACTOR, first_line, lines, |n| {
        progress(DemoProgress::Answered(n))
    })
    .await?;
    let took = started.elapsed();
    demo.engine_time += took;
    progress(DemoProgress::PhaseDone {
        name,
        commands: plan.len() as u64,
        seconds: took.as_secs_f64(),
    });
    demo.record(plan, answers);
    Ok(())
}

/// What the demo left in the ledger, summed up for its report.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub accounts: usize,
    pub commands: u64,
    pub by_status: BTreeMap<&'static str, u64>,
    /// Refusals by their code.
    pub by_code: BTreeMap<String, u64>,
    pub events: u64,
    pub events_by_type: BTreeMap<String, u64>,
    /// The first [`SAMPLE_ACCOUNTS`] accounts holding shares: their cash and positions.
    pub sample_balances: Vec<BalanceRow>,
    pub sample_positions: Vec<PositionRow>,
    pub sample_accounts: usize,
    /// Accounts whose state breaks an invariant, with why (empty when all hold).
    pub invariant_violations: Vec<(String, String)>,
}

/// Folds the whole log afresh (not the read model tables) to sum up what the demo did.
pub async fn summarize(store: &dyn EventStore, run: &DemoRun) -> Result<DemoSummary, AppError> {
    let mut view = AccountsView::default();
    view.catch_up(store).await?;
    let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for answer in &run.answers {
        *by_status.entry(answer.status.as_str()).or_default() += 1;
        if let Some(code) = &answer.code {
            *by_code.entry(code.clone()).or_default() += 1;
        }
    }
    let positions = view.positions();
    let sample: BTreeSet<String> = positions
        .iter()
        .map(|p| p.account_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(SAMPLE_ACCOUNTS)
        .collect();
    Ok(DemoSummary {
        accounts: view.account_count(),
        commands: run.answers.len() as u64,
        by_status,
        by_code,
        events: view.event_counts().values().sum(),
        events_by_type: view.event_counts().clone(),
        sample_balances: view
            .balances()
            .into_iter()
            .filter(|b| sample.contains(&b.account_id))
            .collect(),
        sample_accounts: sample.len(),
        sample_positions: positions
            .into_iter()
            .filter(|p| sample.contains(&p.account_id))
            .collect(),
        invariant_violations: view.invariant_violations(),
    })
}
