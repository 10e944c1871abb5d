//! One seed of the simulation: the generator's batches run, in lockstep, on a
//! fault-free reference ledger and on a ledger whose store fails on purpose,
//! resubmitted (same lines, same command ids) until they are answered, with the
//! checks after every step and at the end.
//!
//! What must hold, and why the logs must be equal byte for byte: a batch's
//! commands are decided in order and committed in one transaction, so an append
//! that fails before its commit wrote nothing, and one that fails after wrote
//! exactly what the reference wrote for that batch; the resubmission then
//! decides the same lines on the same state (or answers them `duplicate`). The
//! clock gives every decided command the time of its step and its place in the
//! batch, the same on every attempt, so events, outcomes and the hash chain are
//! the reference's, position for position. Only what the client sees of a
//! batch committed behind a failure differs: `duplicate` with the first outcome,
//! where the reference answered that outcome itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use chrono::DateTime;
use ledger_app::queries;
use ledger_commands::{EngineError, Ledger, LineAnswer, LineRunner, Status};
use ledger_domain::ids::AccountId;
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore, RecordedEvent, MAX_OUTCOME_LOOKUPS, MAX_READ_EVENTS};
use ledger_projections::tables::{OrderFilter, OrderRecord};
use ledger_projections::AccountsView;
use ledger_testkit::faults::{Fault, FaultPlan, FaultyStore, StoreCall};
use ledger_testkit::TestDatabase;
use rand::rngs::ChaCha8Rng;
use rand::RngExt;

use crate::generator::{stream, Batch, Coverage, Generator, Stream};

/// Most times the client sends one batch before the simulation gives up on it.
const MAX_ATTEMPTS: u32 = 20;
/// Most faults the plan injects in a row, so that every batch is answered in the end.
const MAX_FAULTS_IN_A_ROW: u32 = 4;
/// Steps with faults a failure report recounts, the latest last.
const MAX_FAULT_HISTORY: usize = 8;
/// The simulated time of the first step (2024-03-04 09:15 Beijing time), and the
/// time between two steps and between two commands decided in one step.
const FIRST_STEP_MICROS: i64 = 1_709_514_900_000_000;
const MICROS_PER_STEP: i64 = 1_000_000;
const MICROS_PER_COMMAND: i64 = 1_000;
/// Who the simulated client is, in every event's metadata.
const ACTOR: &str = "simulation";
/// Aggregates the reference engine caches (the default, so it never evicts).
const REFERENCE_CACHE: usize = ledger_commands::engine::DEFAULT_CACHE_AGGREGATES;

/// How one seed is run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Batches after the set-up.
    pub steps: usize,
    /// Whether the client resubmits a batch that failed (a client that gives up is caught).
    pub resubmit: bool,
    /// Percent of appends that fail, instead of the seed's own choice.
    pub append_fault_pct: Option<u32>,
}

/// What one seed did, for the summary and the coverage checks.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub steps: usize,
    pub lines: u64,
    pub events: u64,
    pub head_hash: String,
    pub faults: BTreeMap<String, u64>,
    pub restarts: u64,
    pub resubmissions: u64,
    /// The reference's answers by status and code.
    pub answers: BTreeMap<String, u64>,
    pub coverage: Coverage,
}

/// Gives every command decided in a step the step's time plus its place in the
/// batch: the same on every attempt, so a resubmitted batch writes the same bytes.
#[derive(Clone, Default)]
struct Clock {
    step_micros: Arc<AtomicI64>,
    decided: Arc<AtomicI64>,
}

impl Clock {
    fn install(&self, ledger: &mut Ledger) {
        let (step, decided) = (Arc::clone(&self.step_micros), Arc::clone(&self.decided));
        ledger.set_clock(move || {
            let micros = step.load(Ordering::SeqCst) + decided.fetch_add(1, Ordering::SeqCst) * MICROS_PER_COMMAND;
            DateTime::from_timestamp_micros(micros).unwrap_or_default()
        });
    }

    fn start_step(&self, step: usize) {
        let step = i64::try_from(step).unwrap_or(i64::MAX / MICROS_PER_STEP);
        self.step_micros
            .store(FIRST_STEP_MICROS + step * MICROS_PER_STEP, Ordering::SeqCst);
    }

    fn start_attempt(&self) {
        self.decided.store(0, Ordering::SeqCst);
    }
}

/// The seed's choices of how hostile the store is.
struct Hostility {
    append_fault_pct: u32,
    read_fault_pct: u32,
    restart_pct: u32,
    cache_aggregates: usize,
}

impl Hostility {
    fn of(seed: u64, options: &Options) -> Self {
        let mut rng = stream(seed, Stream::Hostility);
        let pick = |rng: &mut ChaCha8Rng, from: &[u32]| from[rng.random_range(0..from.len())];
        Self {
            append_fault_pct: options.append_fault_pct.unwrap_or_else(|| pick(&mut rng, &[5, 15, 30])),
            read_fault_pct: pick(&mut rng, &[0, 2, 5]),
            restart_pct: pick(&mut rng, &[0, 30, 100]),
            cache_aggregates: [1, 3, 16, REFERENCE_CACHE][rng.random_range(0..4)],
        }
    }

    /// The store's fault schedule: its own random stream, so the commands do not depend on it.
    fn plan(&self, seed: u64, paused: Arc<AtomicBool>) -> FaultPlan {
        let mut rng = stream(seed, Stream::Faults);
        let (append_pct, read_pct) = (self.append_fault_pct, self.read_fault_pct);
        let mut in_a_row = 0;
        Box::new(move |call| {
            if paused.load(Ordering::SeqCst) {
                return Fault::Pass;
            }
            let pct = if call == StoreCall::Append {
                append_pct
            } else {
                read_pct
            };
            if in_a_row >= MAX_FAULTS_IN_A_ROW || rng.random_range(0..100) >= pct {
                in_a_row = 0;
                return Fault::Pass;
            }
            in_a_row += 1;
            if rng.random_bool(0.5) {
                Fault::BeforeCommit
            } else {
                Fault::AfterCommit
            }
        })
    }
}

/// One ledger of the pair: its database, engine and the fold of its log.
struct Side {
    _db: TestDatabase,
    /// The store without faults, for the checks.
    store: Arc<dyn EventStore>,
    ledger: Ledger,
    clock: Clock,
    view: AccountsView,
}

struct Simulation {
    seed: u64,
    options: Options,
    rules: Arc<MarketRules>,
    hostility: Hostility,
    restart_rng: ChaCha8Rng,
    generator: Generator,
    reference: Side,
    faulty: Side,
    faulty_store: Arc<FaultyStore>,
    paused: Arc<AtomicBool>,
    step: usize,
    lines: u64,
    /// The highest position both logs were compared to.
    compared_to: u64,
    command_ids: BTreeSet<String>,
    /// The latest steps that met faults, for the failure report.
    fault_history: Vec<String>,
    report: SeedReport,
}

/// Runs one seed; the error says what broke, and where.
pub async fn run_seed(seed: u64, options: &Options) -> Result<SeedReport, String> {
    let mut simulation = Simulation::new(seed, options).await?;
    let setup = simulation.generator.setup();
    simulation.run_step(&setup).await?;
    for _ in 0..options.steps {
        let batch = simulation.generator.next_batch();
        simulation.run_step(&batch).await?;
    }
    simulation.finish().await
}

fn engine(store: Arc<dyn EventStore>, rules: &Arc<MarketRules>, cache: usize, clock: &Clock) -> Ledger {
    let mut ledger = Ledger::with_cache(store, Arc::clone(rules), cache);
    clock.install(&mut ledger);
    ledger
}

async fn side(rules: &Arc<MarketRules>) -> Result<Side, String> {
    let db = ledger_testkit::sqlite();
    let store = connect(&db.url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", db.url))?;
    let clock = Clock::default();
    Ok(Side {
        ledger: engine(Arc::clone(&store), rules, REFERENCE_CACHE, &clock),
        _db: db,
        store,
        clock,
        view: AccountsView::default(),
    })
}

/// Runs lines through the engine as `ledger exec` does: one answer per line, in order.
async fn run_lines(ledger: &mut Ledger, first_line: u64, lines: &[String]) -> Result<Vec<LineAnswer>, EngineError> {
    let mut runner = LineRunner::new(ledger, ACTOR);
    let mut answers = Vec::with_capacity(lines.len());
    for (offset, line) in lines.iter().enumerate() {
        answers.extend(runner.push(first_line + offset as u64, line).await?);
    }
    answers.extend(runner.flush().await?);
    Ok(answers)
}

impl Simulation {
    async fn new(seed: u64, options: &Options) -> Result<Self, String> {
        let rules = Arc::new(MarketRules::china_a_share().map_err(|e| e.to_string())?);
        let hostility = Hostility::of(seed, options);
        let reference = side(&rules).await?;
        let mut faulty = side(&rules).await?;
        let paused = Arc::new(AtomicBool::new(false));
        let faulty_store = Arc::new(FaultyStore::new(
            Arc::clone(&faulty.store),
            hostility.plan(seed, Arc::clone(&paused)),
        ));
        let as_store: Arc<dyn EventStore> = faulty_store.clone();
        faulty.ledger = engine(as_store, &rules, hostility.cache_aggregates, &faulty.clock);
        let restart_rng = stream(seed, Stream::Restarts);
        Ok(Self {
            seed,
            options: options.clone(),
            generator: Generator::new(seed, (*rules).clone()),
            rules,
            hostility,
            restart_rng,
            reference,
            faulty,
            faulty_store,
            paused,
            step: 0,
            lines: 0,
            compared_to: 0,
            command_ids: BTreeSet::new(),
            fault_history: Vec::new(),
            report: SeedReport::default(),
        })
    }

    /// One step: the batch on the reference, then on the failing store until answered, then the checks.
    async fn run_step(&mut self, batch: &Batch) -> Result<(), String> {
        self.step += 1;
        self.reference.clock.start_step(self.step);
        self.faulty.clock.start_step(self.step);
        let first_line = self.lines + 1;
        self.reference.clock.start_attempt();
        let expected = run_lines(&mut self.reference.ledger, first_line, &batch.lines)
            .await
            .map_err(|e| self.failed(batch, format!("the fault-free reference failed: {e}")))?;
        let before = self.faulty_store.injected();
        let restarts = self.report.restarts;
        let answered = self.run_faulty(batch, first_line).await?;
        let met = self.faults_since(&before);
        let committed_behind_a_failure = met.contains_key(&(StoreCall::Append, Fault::AfterCommit));
        if !met.is_empty() {
            let restarts = self.report.restarts - restarts;
            self.fault_history
                .push(format!("step {}: {met:?}, {restarts} engine restarts", self.step));
            let excess = self.fault_history.len().saturating_sub(MAX_FAULT_HISTORY);
            self.fault_history.drain(..excess);
        }
        if let Some(answers) = answered {
            self.compare_answers(batch, &expected, &answers, committed_behind_a_failure)?;
        }
        self.lines += batch.lines.len() as u64;
        self.command_ids
            .extend(expected.iter().filter_map(|a| a.command_id.clone()));
        for answer in &expected {
            let key = match &answer.code {
                Some(code) => format!("{} {code}", answer.status.as_str()),
                None => answer.status.as_str().to_owned(),
            };
            *self.report.answers.entry(key).or_default() += 1;
        }
        self.generator.learn(batch, &expected);
        self.check_step(batch, &expected).await
    }

    /// The faults injected since `before`, by call and kind.
    fn faults_since(&self, before: &HashMap<(StoreCall, Fault), u64>) -> BTreeMap<(StoreCall, Fault), u64> {
        self.faulty_store
            .injected()
            .into_iter()
            .map(|(key, count)| (key, count - before.get(&key).copied().unwrap_or(0)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// Sends the batch until it is answered, as a client does after an error: the same
    /// lines again, sometimes to a restarted engine. `None`: the client gave up on it.
    async fn run_faulty(&mut self, batch: &Batch, first_line: u64) -> Result<Option<Vec<LineAnswer>>, String> {
        for attempt in 1..=MAX_ATTEMPTS {
            self.faulty.clock.start_attempt();
            match run_lines(&mut self.faulty.ledger, first_line, &batch.lines).await {
                Ok(answers) => return Ok(Some(answers)),
                Err(EngineError::Store(error)) if FaultyStore::is_injected(&error) => {}
                Err(other) => {
                    let why = format!("attempt {attempt} failed with an error that was not injected: {other}");
                    return Err(self.failed(batch, why));
                }
            }
            if !self.options.resubmit {
                return Ok(None);
            }
            self.report.resubmissions += 1;
            if self.restart_rng.random_range(0..100) < self.hostility.restart_pct {
                self.report.restarts += 1;
                let store: Arc<dyn EventStore> = self.faulty_store.clone();
                self.faulty.ledger = engine(store, &self.rules, self.hostility.cache_aggregates, &self.faulty.clock);
            }
        }
        Err(self.failed(batch, format!("no answer after {MAX_ATTEMPTS} attempts")))
    }

    /// The failing run's answers against the reference's: the same outcome for every line;
    /// the very same answers unless a commit's acknowledgement was lost (then the client
    /// sees `duplicate` with the outcome the reference answered).
    fn compare_answers(
        &self,
        batch: &Batch,
        expected: &[LineAnswer],
        got: &[LineAnswer],
        committed_behind_a_failure: bool,
    ) -> Result<(), String> {
        if expected.len() != got.len() {
            return Err(self.failed(
                batch,
                format!("{} answers, the reference gave {}", got.len(), expected.len()),
            ));
        }
        for (want, have) in expected.iter().zip(got) {
            let same = if committed_behind_a_failure {
                outcome(want, have)
            } else {
                want == have
            };
            if !same {
                return Err(self.failed(
                    batch,
                    format!(
                        "line {} was answered\n  {have:?}\nwhere the reference answered\n  {want:?}",
                        want.line
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn check_step(&mut self, batch: &Batch, expected: &[LineAnswer]) -> Result<(), String> {
        self.compare_logs(batch).await?;
        let mut broken = None;
        for (name, side) in [("reference", &mut self.reference), ("failing run", &mut self.faulty)] {
            side.view
                .catch_up(side.store.as_ref())
                .await
                .map_err(|e| format!("cannot fold the {name}'s log: {e}"))?;
            if let Some((account, why)) = side.view.invariant_violations().into_iter().next() {
                broken = Some(format!("the {name}'s account {account} breaks an invariant: {why}"));
                break;
            }
        }
        if let Some(why) = broken {
            return Err(self.failed(batch, why));
        }
        self.check_engine_cache(batch).await?;
        self.check_malformed_not_recorded(batch, expected).await
    }

    /// The events the step wrote: the same in both logs, position for position.
    async fn compare_logs(&mut self, batch: &Batch) -> Result<(), String> {
        let want = read_all_after(self.reference.store.as_ref(), self.compared_to).await?;
        let have = read_all_after(self.faulty.store.as_ref(), self.compared_to).await?;
        if want.len() != have.len() {
            let why = format!(
                "the log holds {} events after position {}, the reference's {}",
                have.len(),
                self.compared_to,
                want.len()
            );
            return Err(self.failed(batch, why));
        }
        for (want, have) in want.iter().zip(&have) {
            self.compare_event(want, have).map_err(|why| self.failed(batch, why))?;
        }
        if let Some(last) = want.last() {
            self.compared_to = last.global_position;
        }
        Ok(())
    }

    fn compare_event(&mut self, want: &RecordedEvent, have: &RecordedEvent) -> Result<(), String> {
        let position = want.global_position;
        let envelope = |e: &RecordedEvent| {
            (
                e.global_position,
                e.stream.clone(),
                e.sequence,
                e.event_type.clone(),
                e.event_version,
                e.metadata.clone(),
            )
        };
        if envelope(want) != envelope(have) {
            return Err(format!(
                "event {position} differs:\n  {have:?}\nthe reference's:\n  {want:?}"
            ));
        }
        if want.payload != have.payload {
            return Err(format!(
                "event {position}'s payload differs:\n  {}\nthe reference's:\n  {}",
                have.payload, want.payload
            ));
        }
        if want.hash != have.hash || want.prev_hash != have.prev_hash {
            return Err(format!(
                "event {position} has the same content but another hash: {} (the reference's {})",
                have.hash, want.hash
            ));
        }
        Ok(())
    }

    /// The engine's cached accounts (kept across failed batches and evictions) are
    /// what the log says they are.
    async fn check_engine_cache(&mut self, batch: &Batch) -> Result<(), String> {
        self.paused.store(true, Ordering::SeqCst);
        let mut mismatch = None;
        for id in self.generator.account_ids() {
            let account_id = AccountId::parse(&id).map_err(|e| e.to_string())?;
            let cached = self.faulty.ledger.account(&account_id).await;
            let folded = self.faulty.view.account(&id).filter(|a| a.customer().is_some());
            match cached {
                Ok(cached) if cached.as_ref() == folded => {}
                Ok(cached) => {
                    mismatch = Some(format!(
                        "the engine holds account {id} as\n  {cached:?}\nits log folds to\n  {folded:?}"
                    ));
                    break;
                }
                Err(e) => {
                    mismatch = Some(format!("cannot read account {id} from the engine: {e}"));
                    break;
                }
            }
        }
        self.paused.store(false, Ordering::SeqCst);
        mismatch.map_or(Ok(()), |why| Err(self.failed(batch, why)))
    }

    /// docs/api.md: "a malformed line is not recorded".
    async fn check_malformed_not_recorded(&mut self, batch: &Batch, expected: &[LineAnswer]) -> Result<(), String> {
        let malformed: Vec<String> = expected
            .iter()
            .filter(|a| a.code.as_deref() == Some("malformed"))
            .filter_map(|a| a.command_id.clone())
            .collect();
        let recorded = self
            .faulty
            .store
            .find_outcomes(&malformed)
            .await
            .map_err(|e| e.to_string())?;
        let recorded_malformed = recorded
            .values()
            .filter(|o| o.code.as_deref() == Some("malformed"))
            .count() as u64;
        if recorded_malformed > 0 {
            return Err(self.failed(
                batch,
                format!(
                    "{recorded_malformed} malformed commands were recorded in command_outcomes, though a \
                     malformed command is never recorded (docs/api.md)"
                ),
            ));
        }
        Ok(())
    }

    /// The end: the same outcome for every command id, the same read models, and verify passes.
    async fn finish(mut self) -> Result<SeedReport, String> {
        let ids: Vec<String> = self.command_ids.iter().cloned().collect();
        let want = outcomes(self.reference.store.as_ref(), &ids).await?;
        let have = outcomes(self.faulty.store.as_ref(), &ids).await?;
        if let Some(id) = ids.iter().find(|id| want.get(*id) != have.get(*id)) {
            return Err(self.failed_at_end(format!(
                "command id {id} has the outcome\n  {:?}\nthe reference's:\n  {:?}",
                have.get(id),
                want.get(id)
            )));
        }
        let want = read_models(self.reference.store.as_ref()).await?;
        let have = read_models(self.faulty.store.as_ref()).await?;
        if want != have {
            return Err(self.failed_at_end(format!(
                "the read models differ:\n  {have:?}\nthe reference's:\n  {want:?}"
            )));
        }
        let reference = ledger_replay::verify(self.reference.store.as_ref(), |_| {})
            .await
            .map_err(|e| e.to_string())?;
        let report = ledger_replay::verify(self.faulty.store.as_ref(), |_| {})
            .await
            .map_err(|e| e.to_string())?;
        if !report.is_ok() || !reference.is_ok() || !report.projections_checked {
            return Err(self.failed_at_end(format!("verify: {report:?}\nthe reference's: {reference:?}")));
        }
        if report.head_hash != reference.head_hash {
            return Err(self.failed_at_end(format!(
                "head hash {} (the reference's {})",
                report.head_hash, reference.head_hash
            )));
        }
        self.report.steps = self.step;
        self.report.lines = self.lines;
        self.report.events = report.events;
        self.report.head_hash = report.head_hash;
        self.report.coverage = self.generator.coverage.clone();
        for ((call, fault), count) in self.faulty_store.injected() {
            *self.report.faults.entry(format!("{call:?} {fault:?}")).or_default() += count;
        }
        Ok(self.report)
    }

    fn failed(&self, batch: &Batch, why: String) -> String {
        let lines: Vec<String> = batch
            .lines
            .iter()
            .enumerate()
            .map(|(offset, line)| format!("  {}: {line}", self.lines + 1 + offset as u64))
            .collect();
        format!(
            "step {} ({}): {why}\nthe step's lines:\n{}\nthe latest faults:\n  {}",
            self.step,
            self.hostility_summary(),
            lines.join("\n"),
            self.fault_history.join("\n  ")
        )
    }

    fn failed_at_end(&self, why: String) -> String {
        format!(
            "after step {} ({}): {why}\nthe latest faults:\n  {}",
            self.step,
            self.hostility_summary(),
            self.fault_history.join("\n  ")
        )
    }

    fn hostility_summary(&self) -> String {
        let h = &self.hostility;
        format!(
            "seed {}: {}% of appends and {}% of reads fail, {}% of failures restart the engine, {} cached aggregates",
            self.seed, h.append_fault_pct, h.read_fault_pct, h.restart_pct, h.cache_aggregates
        )
    }
}

/// Whether two answers to a line tell the client the same: the outcome its command id
/// has, from the line's own answer or, for a duplicate command id, from the first
/// outcome it names, with the positions of that outcome's events (a duplicate of a
/// command decided earlier in the same batch names them too: where batches are cut
/// does not change an answer; seed 8 found it did).
fn outcome(want: &LineAnswer, have: &LineAnswer) -> bool {
    let of = |answer: &LineAnswer| match (&answer.first_status, answer.status) {
        (Some(_), Status::Duplicate) if answer.first_code.as_deref() == Some("duplicate_exec") => {
            ("duplicate".to_owned(), answer.first_code.clone())
        }
        (Some(first), Status::Duplicate) => (first.clone(), answer.first_code.clone()),
        _ => (answer.status.as_str().to_owned(), answer.code.clone()),
    };
    let positions = |answer: &LineAnswer| (answer.first_position, answer.last_position);
    (want.line, &want.command_id, of(want)) == (have.line, &have.command_id, of(have))
        && positions(want) == positions(have)
}

async fn read_all_after(store: &dyn EventStore, after: u64) -> Result<Vec<RecordedEvent>, String> {
    let mut events = Vec::new();
    let mut position = after;
    loop {
        let page = store
            .read_after(position, MAX_READ_EVENTS)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { return Ok(events) };
        position = last.global_position;
        events.extend(page);
    }
}

async fn outcomes(
    store: &dyn EventStore,
    ids: &[String],
) -> Result<HashMap<String, ledger_eventstore::StoredOutcome>, String> {
    let mut all = HashMap::new();
    for chunk in ids.chunks(MAX_OUTCOME_LOOKUPS) {
        all.extend(store.find_outcomes(chunk).await.map_err(|e| e.to_string())?);
    }
    Ok(all)
}

/// The read-outs a customer sees: balances, positions and every order, from the read models.
async fn read_models(
    store: &dyn EventStore,
) -> Result<
    (
        Vec<ledger_projections::BalanceRow>,
        Vec<ledger_projections::PositionRow>,
        Vec<OrderRecord>,
    ),
    String,
> {
    let balances = queries::balances(store, |_| {}).await.map_err(|e| e.to_string())?;
    let positions = queries::positions(store, |_| {}).await.map_err(|e| e.to_string())?;
    let mut orders: Vec<OrderRecord> = Vec::new();
    loop {
        let filter = OrderFilter {
            after: orders.last().map(OrderRecord::key),
            ..OrderFilter::default()
        };
        let page = queries::orders(store, &filter).await.map_err(|e| e.to_string())?;
        if page.is_empty() {
            return Ok((balances, positions, orders));
        }
        orders.extend(page);
    }
}
