//! `ledger bench engine`: the application layer's writer driven in-process by
//! concurrent clients, each sending one command and waiting for its answer (as the
//! sessions of a gateway would), on the workload of [`workload`](super::workload);
//! and, in a binary built with the `baseline` feature, the same commands through the
//! stock cqrs-es stack in the same run, with the ratio of the two.
//!
//! The clock runs from the first client's first command to the last answer; a
//! command's latency from its sending to its answer, which comes only after its
//! batch's commit. The requests are built before the clock starts, for the ledger as
//! for the baseline, so neither figure includes reading a command's text.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ledger_app::writer::{self, BatchObserver, WriteFailure, WriterOptions, DEFAULT_QUEUE_COMMANDS};
use ledger_app::{CommandRequest, MarketRules, RequestOutcome, Status};

use super::setup::{latency_histogram, percentiles_ms, record_latency_us};
use super::workload::{self, Workload, MAX_ACCOUNTS, MAX_CLIENTS, MAX_COMMANDS, SET_UP_COMMANDS};

/// Why `--baseline-db` is refused by a binary built without the baseline.
const NO_BASELINE: &str = "--baseline-db needs the baseline, which this binary was built without: \
                           build it with `cargo build --release --features baseline`";

/// Who the bench's commands are recorded as.
const ACTOR: &str = "bench";

#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// Accounts; each is opened and given one deposit, then buys and fills.
    #[arg(long, default_value_t = 910, value_parser = clap::value_parser!(u64).range(1..=MAX_ACCOUNTS))]
    pub accounts: u64,
    /// Commands sent with the clock running (the openings and deposits included; the
    /// 2 set-up commands before it are not). A buy comes with its fill, so an odd count
    /// sends one fewer; the figures count what was sent.
    #[arg(long, default_value_t = 20_020, value_parser = clap::value_parser!(u64).range(2..=MAX_COMMANDS))]
    pub commands: u64,
    /// Concurrent clients, each waiting for its answer before it sends its next command.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=MAX_CLIENTS))]
    pub clients: u64,
    /// Also run the workload through the stock cqrs-es `CqrsFramework` over postgres-es
    /// on this PostgreSQL database (tables of its own, dropped after), and print the
    /// ratio. Needs a binary built with `--features baseline`.
    #[arg(long, value_name = "POSTGRES_URL")]
    pub baseline_db: Option<String>,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The writer's batches: how many, how large, how long each took to decide and commit.
struct Batches {
    count: u64,
    commands: u64,
    /// Microseconds from a batch's decision starting to its commit.
    decide_and_commit_us: Histogram<u64>,
}

impl Batches {
    fn new() -> anyhow::Result<Batches> {
        Ok(Batches {
            count: 0,
            commands: 0,
            decide_and_commit_us: latency_histogram()?,
        })
    }
}

/// Records every batch the writer commits.
struct BatchRecorder(std::sync::Mutex<Batches>);

impl BatchObserver for BatchRecorder {
    fn committed(&self, requests: &[CommandRequest], _outcomes: &[RequestOutcome], took: Duration) {
        // A poisoned lock means a bench thread panicked: the run is lost anyway.
        if let Ok(mut batches) = self.0.lock() {
            batches.count += 1;
            batches.commands += requests.len() as u64;
            let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            record_latency_us(&mut batches.decide_and_commit_us, took_us);
        }
    }

    fn failed(&self, _commands: usize, _failure: &WriteFailure) {}
}

/// What one side of the comparison measured.
struct Measured {
    commands: u64,
    elapsed: Duration,
    latencies: Histogram<u64>,
    /// Answers by status (the ledger's `accepted`, `rejected`, ...; the baseline's `accepted`, `refused`).
    endings: std::collections::BTreeMap<String, u64>,
    /// The ledger's group commits (the baseline has none).
    batches: Option<Batches>,
}

impl Measured {
    fn commands_per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn to_json(&self) -> serde_json::Value {
        let [p50, p99, p999, max] = percentiles_ms(&self.latencies);
        let batches = self.batches.as_ref().map(|batches| {
            let [p50, p99, p999, max] = percentiles_ms(&batches.decide_and_commit_us);
            serde_json::json!({
                "count": batches.count,
                "mean_commands": batches.commands as f64 / batches.count.max(1) as f64,
                "decide_and_commit_ms": {"p50": p50, "p99": p99, "p99_9": p999, "max": max},
            })
        });
        serde_json::json!({
            "commands": self.commands,
            "seconds": self.elapsed.as_secs_f64(),
            "commands_per_second": self.commands_per_second(),
            "endings": self.endings,
            "latency_ms": {"p50": p50, "p99": p99, "p99_9": p999, "max": max},
            "batches": batches,
        })
    }
}

pub async fn run(
    args: EngineArgs,
    db: Option<&str>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
) -> anyhow::Result<ExitCode> {
    if args.baseline_db.is_some() && !cfg!(feature = "baseline") {
        anyhow::bail!(NO_BASELINE);
    }
    let workload = workload::simple(args.accounts, args.commands, args.clients)?;
    // `_scratch` keeps a temporary database until the run's end.
    let super::setup::EmptyLedger {
        store,
        scratch: _scratch,
        ..
    } = super::setup::EmptyLedger::open(db).await?;
    let ledger = run_ledger(Arc::clone(&store), Arc::clone(&rules), cache_aggregates, &workload).await?;
    let peak_rss_bytes = peak_rss_bytes();
    let baseline = match &args.baseline_db {
        Some(baseline_url) => Some(run_baseline(baseline_url, &rules, &workload).await?),
        None => None,
    };
    print_result(&args, store.backend(), &ledger, baseline.as_ref(), peak_rss_bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// The set-up first, then every client at once through the writer's queue.
async fn run_ledger(
    store: Arc<dyn ledger_app::EventStore>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let (set_up, plans) = requests_of(workload, &rules)?;
    let recorder = Arc::new(BatchRecorder(std::sync::Mutex::new(Batches::new()?)));
    let options = WriterOptions {
        limit_commands: DEFAULT_QUEUE_COMMANDS.max(plans.len()),
        cache_aggregates,
        observer: Arc::clone(&recorder) as Arc<dyn BatchObserver>,
    };
    let (queue, _commits, writer_task) = writer::start(store, Arc::clone(&rules), options);
    let set_up_outcomes = send_one_by_one(queue.clone(), set_up).await?;
    let refused = set_up_outcomes
        .iter()
        .filter(|(ending, _)| ending != "accepted")
        .count();
    anyhow::ensure!(
        refused == 0,
        "the set-up's {SET_UP_COMMANDS} commands were not all accepted"
    );

    // The set-up's batches came before the clock: counted out.
    *recorder
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("a bench thread panicked"))? = Batches::new()?;
    let started = Instant::now();
    let clients: Vec<_> = plans
        .into_iter()
        .map(|plan| tokio::spawn(send_one_by_one(queue.clone(), plan)))
        .collect();
    let mut measured = Measured {
        commands: workload.commands,
        elapsed: Duration::ZERO,
        latencies: latency_histogram()?,
        endings: Default::default(),
        batches: None,
    };
    for client in clients {
        for (ending, latency_us) in client.await?? {
            *measured.endings.entry(ending).or_default() += 1;
            record_latency_us(&mut measured.latencies, latency_us);
        }
    }
    measured.elapsed = started.elapsed();
    drop(queue);
    writer_task.await?;
    let mut batches = recorder
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("a bench thread panicked"))?;
    measured.batches = Some(std::mem::replace(&mut *batches, Batches::new()?));
    Ok(measured)
}

/// The set-up's requests, and each client's, built before the clock starts.
fn requests_of(
    workload: &Workload,
    rules: &MarketRules,
) -> anyhow::Result<(Vec<CommandRequest>, Vec<Vec<CommandRequest>>)> {
    let request_of = |line: &str| {
        ledger_app::read_command_request(line.as_bytes(), None, ACTOR, rules)
            .map_err(|refusal| anyhow::anyhow!("the bench's own command {line} was refused: {refusal}"))
    };
    let set_up = workload::set_up_lines()
        .iter()
        .map(|line| request_of(line))
        .collect::<Result<_, _>>()?;
    let plans = workload
        .clients
        .iter()
        .map(|plan| {
            plan.iter()
                .map(|&step| request_of(&workload::wire_line(step)))
                .collect()
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((set_up, plans))
}

/// Sends each request once the one before is answered; each one's ending and latency.
async fn send_one_by_one(queue: writer::Queue, requests: Vec<CommandRequest>) -> anyhow::Result<Vec<(String, u64)>> {
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let sent = Instant::now();
        let answer = queue
            .send(vec![request])
            .map_err(|refusal| anyhow::anyhow!("the writer's queue refused a command: {refusal:?}"))?;
        let outcomes = answer.await.map_err(|_| anyhow::anyhow!("the writer stopped"))??;
        let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let ending = match outcomes.as_slice() {
            [RequestOutcome::Answered(result)] => match result.status {
                Status::Accepted => "accepted",
                Status::Duplicate => "duplicate",
                Status::Rejected => "rejected",
            },
            [RequestOutcome::KeyReused(_)] => "key_reused",
            _ => anyhow::bail!("one request, {} outcomes", outcomes.len()),
        };
        answers.push((ending.to_owned(), latency_us));
    }
    Ok(answers)
}

#[cfg(feature = "baseline")]
async fn run_baseline(url: &str, rules: &Arc<MarketRules>, workload: &Workload) -> anyhow::Result<Measured> {
    let clients = workload
        .clients
        .iter()
        .map(|plan| plan.iter().map(|&step| workload::baseline_step(step)).collect())
        .collect::<anyhow::Result<Vec<Vec<_>>>>()?;
    let run = ledger_bench_baseline::run(url, rules.as_ref().clone(), clients).await?;
    let mut latencies = latency_histogram()?;
    for &latency_us in &run.latencies_us {
        record_latency_us(&mut latencies, latency_us);
    }
    let answered = run.latencies_us.len() as u64;
    let endings = [
        ("accepted".to_owned(), answered - run.refused),
        ("refused".to_owned(), run.refused),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .collect();
    Ok(Measured {
        commands: answered,
        elapsed: run.elapsed,
        latencies,
        endings,
        batches: None,
    })
}

#[cfg(not(feature = "baseline"))]
async fn run_baseline(_url: &str, _rules: &Arc<MarketRules>, _workload: &Workload) -> anyhow::Result<Measured> {
    anyhow::bail!(NO_BASELINE)
}

/// The process's peak resident memory (Linux's `VmHWM`), if the system tells it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn print_result(
    args: &EngineArgs,
    backend: &str,
    ledger: &Measured,
    baseline: Option<&Measured>,
    peak_rss_bytes: Option<u64>,
) -> anyhow::Result<()> {
    let ratio = baseline.map(|baseline| ledger.commands_per_second() / baseline.commands_per_second());
    if args.json {
        let document = serde_json::json!({
            "backend": backend,
            "accounts": args.accounts,
            "clients": args.clients,
            "ledger": ledger.to_json(),
            "ledger_peak_rss_bytes": peak_rss_bytes,
            "baseline": baseline.map(Measured::to_json),
            "ratio": ratio,
        });
        println!("{}", serde_json::to_string(&document)?);
        return Ok(());
    }
    println!(
        "bench engine: {} commands over {} accounts, {} clients each waiting for its answer ({SET_UP_COMMANDS} set-up commands before the clock)",
        ledger.commands, args.accounts, args.clients
    );
    print_side(&format!("ledger ({backend})"), ledger);
    if let Some(bytes) = peak_rss_bytes {
        println!(
            "  peak RSS after the ledger's run: {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        );
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
