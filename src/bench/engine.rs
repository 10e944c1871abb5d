//! `ledger bench engine`: the application layer's writer driven in-process by
//! concurrent clients, each sending one command and waiting for its answer (as the
//! sessions of a gateway would), on the workload of [`workload`](super::workload)
//! (`--workload shape`) or on the demo's days ([`demo_days`](super::demo_days),
//! `--workload demo`); and, in a binary built with the `baseline` feature, the shape's
//! commands through the stock cqrs-es stack in the same run, with the ratio of the two.
//!
//! The clock runs from the first client's first command to the last answer; a
//! command's latency from its sending to its answer, which comes only after its
//! batch's commit. The shape's clients read each command from its text just before
//! sending it, as a gateway would: that is inside the clock but outside the latency,
//! and no run holds its workload whole (a million accounts' run measures the ledger's
//! memory, not the bench's). The baseline's commands are built before its clock.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use ledger_app::writer::DEFAULT_QUEUE_COMMANDS;
use ledger_app::{CommandRequest, MarketRules};

use super::demo_days::run_demo_days;
use super::measured::{ending_of, send_and_keep, send_one_by_one, Measured, RecordedWriter};
use super::setup::{percentiles_ms, record_latency_us};
use super::workload::{self, Workload, MAX_ACCOUNTS, MAX_CLIENTS, MAX_COMMANDS, SET_UP_COMMANDS};

/// Why `--baseline-db` is refused by a binary built without the baseline.
const NO_BASELINE: &str = "--baseline-db needs the baseline, which this binary was built without: \
                           build it with `cargo build --release --features baseline`";

/// Who the bench's commands are recorded as.
pub(super) const ACTOR: &str = "bench";

#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// What the clients send: `shape`, the plain cqrs-es benchmark's (per account an
    /// opening, one deposit, then buys of 100 @ 10.00 each with its fill); or `demo`, the
    /// two trading days of `ledger demo` (orders, partial fills, cancels, rejects, sells,
    /// withdrawals, closes and settlements), phase by phase.
    #[arg(long, value_enum, default_value_t = WorkloadKind::Shape)]
    pub workload: WorkloadKind,
    /// Accounts [default: 910 for `shape`, 1,000 for `demo`]. For `shape`, each is opened
    /// and given one deposit, then buys and fills.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_ACCOUNTS))]
    pub accounts: Option<u64>,
    /// `shape` only: commands sent with the clock running (the openings and deposits
    /// included; the 2 set-up commands before it are not). A buy comes with its fill, so
    /// an odd count sends one fewer; the figures count what was sent [default: 20,020].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=MAX_COMMANDS))]
    pub commands: Option<u64>,
    /// `demo` only: the generator's seed, as `ledger demo --seed`.
    #[arg(long, default_value_t = DEMO_SEED)]
    pub seed: u64,
    /// Concurrent clients, each waiting for its answer before it sends its next command.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=MAX_CLIENTS))]
    pub clients: u64,
    /// Also run the workload through the stock cqrs-es `CqrsFramework` over postgres-es
    /// on this PostgreSQL database (tables of its own, dropped after), and print the
    /// ratio. `shape` only; needs a binary built with `--features baseline`.
    #[arg(long, value_name = "POSTGRES_URL")]
    pub baseline_db: Option<String>,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The workloads of `bench engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadKind {
    Shape,
    Demo,
}

impl WorkloadKind {
    fn name(self) -> &'static str {
        match self {
            WorkloadKind::Shape => "shape",
            WorkloadKind::Demo => "demo",
        }
    }
}

/// The `shape` workload's defaults.
const SHAPE_ACCOUNTS: u64 = 910;
const SHAPE_COMMANDS: u64 = 20_020;
/// The `demo` workload's defaults: `ledger demo`'s.
const DEMO_ACCOUNTS: u64 = 1_000;
const DEMO_SEED: u64 = 20_240_304;
/// Why the baseline does not run the demo's days.
const NO_DEMO_BASELINE: &str = "--baseline-db runs with --workload shape only: the stock aggregate of the baseline \
                                knows openings, deposits, buys and fills, not the demo's sells, cancels, closes and settlements";
/// Why `--commands` is refused with the demo's days.
const NO_DEMO_COMMANDS: &str =
    "--commands is the shape workload's: the demo's days decide how many commands they send \
                                (give --accounts and --seed)";

pub async fn run(
    args: EngineArgs,
    db: Option<&str>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
) -> anyhow::Result<ExitCode> {
    if args.workload == WorkloadKind::Demo {
        anyhow::ensure!(args.baseline_db.is_none(), NO_DEMO_BASELINE);
        anyhow::ensure!(args.commands.is_none(), NO_DEMO_COMMANDS);
    }
    if args.baseline_db.is_some() && !cfg!(feature = "baseline") {
        anyhow::bail!(NO_BASELINE);
    }
    let accounts = args.accounts.unwrap_or(match args.workload {
        WorkloadKind::Shape => SHAPE_ACCOUNTS,
        WorkloadKind::Demo => DEMO_ACCOUNTS,
    });
    let workload = match args.workload {
        WorkloadKind::Shape => Some(workload::simple(
            accounts,
            args.commands.unwrap_or(SHAPE_COMMANDS),
            args.clients,
        )?),
        WorkloadKind::Demo => {
            ledger_app::demo::check_accounts(usize::try_from(accounts)?)?;
            None
        }
    };
    // `_scratch` keeps a temporary database until the run's end.
    let super::setup::EmptyLedger {
        store,
        scratch: _scratch,
        ..
    } = super::setup::EmptyLedger::open(db).await?;
    let ledger = match &workload {
        Some(workload) => run_ledger(Arc::clone(&store), Arc::clone(&rules), cache_aggregates, workload).await?,
        None => {
            let demo = (usize::try_from(accounts)?, args.seed);
            let clients = usize::try_from(args.clients)?;
            run_demo_days(Arc::clone(&store), Arc::clone(&rules), cache_aggregates, demo, clients).await?
        }
    };
    let peak_rss_bytes = process_memory_bytes("VmHWM");
    let baseline = match (&args.baseline_db, &workload) {
        (Some(baseline_url), Some(workload)) => Some(run_baseline(baseline_url, &rules, workload).await?),
        _ => None,
    };
    let run = RunShown {
        args: &args,
        accounts,
        backend: store.backend(),
    };
    print_result(&run, &ledger, baseline.as_ref(), peak_rss_bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// The set-up first, then every client at once through the writer's queue.
async fn run_ledger(
    store: Arc<dyn ledger_app::EventStore>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let set_up = workload::set_up_lines()
        .iter()
        .map(|line| request_of(line, &rules))
        .collect::<anyhow::Result<_>>()?;
    let limit_commands = DEFAULT_QUEUE_COMMANDS.max(usize::try_from(workload.clients)?);
    let writer = RecordedWriter::start(store, Arc::clone(&rules), cache_aggregates, limit_commands)?;
    let set_up_outcomes = send_and_keep(writer.queue.clone(), set_up).await?;
    let refused = set_up_outcomes
        .iter()
        .filter(|(outcome, _)| ending_of(outcome) != "accepted")
        .count();
    anyhow::ensure!(
        refused == 0,
        "the set-up's {SET_UP_COMMANDS} commands were not all accepted"
    );

    // The set-up's batches came before the clock: counted out.
    writer.recorder.take()?;
    let rss_at_clock_bytes = process_memory_bytes("VmRSS");
    // The answers are counted as they come, not kept: a run of millions of commands
    // would otherwise hold every answer until the end, and its memory figure with them.
    let counted = Arc::new(std::sync::Mutex::new(Measured::new()?));
    let started = Instant::now();
    let clients: Vec<_> = (0..workload.clients)
        .map(|client| {
            let counted = Arc::clone(&counted);
            let rules = Arc::clone(&rules);
            let requests = workload
                .steps_of(client)
                .map(move |step| request_of(&workload::wire_line(step), &rules));
            tokio::spawn(send_one_by_one(
                writer.queue.clone(),
                requests,
                move |outcome, latency_us| {
                    // A poisoned lock means a client panicked, which its task's join reports.
                    if let Ok(mut counted) = counted.lock() {
                        *counted.endings.entry(ending_of(&outcome).to_owned()).or_default() += 1;
                        record_latency_us(&mut counted.latencies, latency_us);
                    }
                },
            ))
        })
        .collect();
    for client in clients {
        client.await??;
    }
    let elapsed = started.elapsed();
    let mut measured = Arc::into_inner(counted)
        .ok_or_else(|| anyhow::anyhow!("a client still holds the counts"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a client panicked while counting"))?;
    measured.elapsed = elapsed;
    measured.commands = workload.commands;
    measured.rss_at_clock_bytes = rss_at_clock_bytes;
    measured.batches = Some(writer.finish().await?);
    Ok(measured)
}

/// One of the bench's own command lines, read as the server reads a request.
fn request_of(line: &str, rules: &MarketRules) -> anyhow::Result<CommandRequest> {
    ledger_app::read_command_request(line.as_bytes(), None, ACTOR, rules)
        .map_err(|refusal| anyhow::anyhow!("the bench's own command {line} was refused: {refusal}"))
}

#[cfg(feature = "baseline")]
async fn run_baseline(url: &str, rules: &Arc<MarketRules>, workload: &Workload) -> anyhow::Result<Measured> {
    let clients = (0..workload.clients)
        .map(|client| workload.steps_of(client).map(workload::baseline_step).collect())
        .collect::<anyhow::Result<Vec<Vec<_>>>>()?;
    let run = ledger_bench_baseline::run(url, rules.as_ref().clone(), clients).await?;
    let mut measured = Measured::new()?;
    for &latency_us in &run.latencies_us {
        record_latency_us(&mut measured.latencies, latency_us);
    }
    let answered = run.latencies_us.len() as u64;
    measured.commands = answered;
    measured.elapsed = run.elapsed;
    measured.endings = [
        ("accepted".to_owned(), answered - run.refused),
        ("refused".to_owned(), run.refused),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .collect();
    Ok(measured)
}

#[cfg(not(feature = "baseline"))]
async fn run_baseline(_url: &str, _rules: &Arc<MarketRules>, _workload: &Workload) -> anyhow::Result<Measured> {
    anyhow::bail!(NO_BASELINE)
}

/// A figure of the process's memory from Linux's `/proc/self/status` (`VmHWM` the peak
/// resident memory, `VmRSS` the resident memory now), if the system tells it.
fn process_memory_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let value = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// What the printed result says of the run itself.
struct RunShown<'a> {
    args: &'a EngineArgs,
    accounts: u64,
    backend: &'static str,
}

fn print_result(
    run: &RunShown<'_>,
    ledger: &Measured,
    baseline: Option<&Measured>,
    peak_rss_bytes: Option<u64>,
) -> anyhow::Result<()> {
    let (args, backend) = (run.args, run.backend);
    let ratio = baseline.map(|baseline| ledger.commands_per_second() / baseline.commands_per_second());
    if args.json {
        let document = serde_json::json!({
            "backend": backend,
            "workload": args.workload.name(),
            "accounts": run.accounts,
            "clients": args.clients,
            "ledger": ledger.to_json(),
            "ledger_peak_rss_bytes": peak_rss_bytes,
            "ledger_rss_at_clock_bytes": ledger.rss_at_clock_bytes,
            "baseline": baseline.map(Measured::to_json),
            "ratio": ratio,
        });
        println!("{}", serde_json::to_string(&document)?);
        return Ok(());
    }
    let before_the_clock = match args.workload {
        WorkloadKind::Shape => format!("{SET_UP_COMMANDS} set-up commands before the clock"),
        WorkloadKind::Demo => format!("the demo's days, seed {}, the clock stopped between phases", args.seed),
    };
    println!(
        "bench engine ({}): {} commands over {} accounts, {} clients each waiting for its answer ({before_the_clock})",
        args.workload.name(),
        ledger.commands,
        run.accounts,
        args.clients
    );
    print_side(&format!("ledger ({backend})"), ledger);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    match (peak_rss_bytes, ledger.rss_at_clock_bytes) {
        (Some(peak), Some(at_clock)) => println!(
            "  peak RSS after the ledger's run: {:.1} MiB; {:.1} MiB when the clock started (the set-up committed)",
            mib(peak),
            mib(at_clock)
        ),
        (Some(peak), None) => println!("  peak RSS after the ledger's run: {:.1} MiB", mib(peak)),
        (None, _) => {}
    }
    if let (Some(baseline), Some(ratio)) = (baseline, ratio) {
        print_side(
            "baseline (cqrs-es 0.5 CqrsFramework + postgres-es 0.5, PostgreSQL)",
            baseline,
        );
        println!("ledger ({backend}) / baseline (postgres): {ratio:.2}x the commands per second");
    }
    Ok(())
}

fn print_side(name: &str, measured: &Measured) {
    let [p50, p99, p999, max] = percentiles_ms(&measured.latencies);
    println!(
        "{name}: {:.0} commands/s ({} in {:.2} s); endings {:?}",
        measured.commands_per_second(),
        measured.commands,
        measured.elapsed.as_secs_f64(),
        measured.endings
    );
    println!("  latency ms: p50 {p50:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}");
    if let Some(batches) = &measured.batches {
        let [p50, p99, _, max] = percentiles_ms(&batches.decide_and_commit_us);
        println!(
            "  group commits: {} of {:.1} commands on average; decide and commit ms p50 {p50:.2}  p99 {p99:.2}  max {max:.2}",
            batches.count,
            batches.commands as f64 / batches.count.max(1) as f64
        );
    }
}
