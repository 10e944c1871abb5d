//! Deterministic simulation, in the spirit of TigerBeetle's VOPR: from a seed, a
//! client's traffic (orders, partial fills, cancels, duplicate and reordered
//! exchange messages, repeated command ids, malformed values, end of day,
//! settlement) runs through the real engine on SQLite behind a store that fails
//! on purpose (an append that fails before its commit, or whose acknowledgement
//! is lost after it), the client resubmitting each failed batch. Every step is
//! checked against a fault-free reference run of the same commands (driver.rs
//! says what must hold and why).
//!
//! CI runs `CI_SEEDS` seeds. A failing seed prints itself and replays exactly:
//! `LEDGER_SIM_SEED=<seed> cargo test -p ledger-app --test simulation`. Long runs:
//! `LEDGER_SIM_SEEDS=<count>` (from `LEDGER_SIM_FIRST_SEED`, default 0), and
//! `LEDGER_SIM_STEPS=<batches>` per seed (docs/operations.md, "Testing beyond CI").

mod driver;
mod generator;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use driver::{run_seed, Options, SeedReport};

/// Seeds CI runs: about 45 s in a debug build on two busy cores (the time goes to
/// SQLite's fsyncs: two or three commits per step).
const CI_SEEDS: u64 = 12;
/// Batches per seed after the set-up.
const STEPS_PER_SEED: usize = 60;

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    match text.trim().parse() {
        Ok(number) => Some(number),
        Err(_) => panic!("{name} must be a whole number, got {text:?}"),
    }
}

/// The seeds to run: one to replay, a long run, or CI's.
fn seeds() -> (Vec<u64>, bool) {
    if let Some(seed) = env_number("LEDGER_SIM_SEED") {
        return (vec![seed], false);
    }
    let first = env_number("LEDGER_SIM_FIRST_SEED").unwrap_or(0);
    match env_number("LEDGER_SIM_SEEDS") {
        Some(count) => ((first..first.saturating_add(count)).collect(), false),
        None => ((first..first + CI_SEEDS).collect(), true),
    }
}

fn options() -> Options {
    let steps = env_number("LEDGER_SIM_STEPS").map_or(STEPS_PER_SEED, |n| usize::try_from(n).unwrap_or(usize::MAX));
    Options {
        steps,
        resubmit: true,
        append_fault_pct: None,
    }
}

/// Runs one seed on a runtime of its own; a panic is a failure of the seed like any other.
fn run_one(seed: u64, options: &Options) -> Result<SeedReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    match std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(run_seed(seed, options)))) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(format!("panicked: {message}"))
        }
    }
}

fn failed(seed: u64, why: &str) -> String {
    format!(
        "SIMULATION FAILED: seed={seed}; replay with LEDGER_SIM_SEED={seed} cargo test -p ledger-app --test simulation\n{why}"
    )
}

/// What all seeds did together.
#[derive(Default)]
struct Totals {
    seeds: u64,
    lines: u64,
    events: u64,
    restarts: u64,
    resubmissions: u64,
    faults: BTreeMap<String, u64>,
    answers: BTreeMap<String, u64>,
    coverage: BTreeMap<&'static str, u64>,
}

impl Totals {
    fn add(&mut self, report: SeedReport) {
        self.seeds += 1;
        self.lines += report.lines;
        self.events += report.events;
        self.restarts += report.restarts;
        self.resubmissions += report.resubmissions;
        let sum = |into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>| {
            for (key, count) in from {
                *into.entry(key).or_default() += count;
            }
        };
        sum(&mut self.faults, report.faults);
        sum(&mut self.answers, report.answers);
        for (kind, count) in report.coverage.by_kind {
            *self.coverage.entry(kind).or_default() += count;
        }
    }

    fn answered(&self, key: &str) -> u64 {
        self.answers.get(key).copied().unwrap_or(0)
    }
}

#[test]
fn clients_resubmitting_through_store_failures_end_where_a_fault_free_run_ends() {
    let (seeds, is_ci) = seeds();
    let options = options();
    let started = Instant::now();
    let mut totals = Totals::default();
    for (done, seed) in seeds.iter().enumerate() {
        match run_one(*seed, &options) {
            Ok(report) => totals.add(report),
            Err(why) => panic!("{}", failed(*seed, &why)),
        }
        if (done + 1) % 100 == 0 {
            eprintln!("{} seeds passed in {:.0} s", done + 1, started.elapsed().as_secs_f64());
        }
    }
    eprintln!(
        "{} seeds, {} lines, {} events in {:.1} s; {} resubmissions, {} engine restarts\nfaults injected: {:?}\nanswers: {:?}\ngenerated: {:?}",
        totals.seeds,
        totals.lines,
        totals.events,
        started.elapsed().as_secs_f64(),
        totals.resubmissions,
        totals.restarts,
        totals.faults,
        totals.answers,
        totals.coverage
    );
    if is_ci {
        assert_exercised(&totals);
    }
}

/// CI's seeds must exercise what the simulation is for, or it proves nothing.
fn assert_exercised(totals: &Totals) {
    for fault in [
        "Append BeforeCommit",
        "Append AfterCommit",
        "LoadStream BeforeCommit",
        "FindOutcomes AfterCommit",
    ] {
        assert!(
            totals.faults.get(fault).copied().unwrap_or(0) >= 5,
            "too few faults {fault}: {:?}",
            totals.faults
        );
    }
    assert!(totals.restarts >= 5, "too few engine restarts");
    for answer in [
        "accepted",
        "duplicate",
        "duplicate duplicate_exec",
        "rejected unknown_order",
        "rejected order_closed",
        "rejected fill_exceeds_order",
        "rejected fill_price",
        "rejected day_closed",
        "rejected not_open_trade_date",
        "rejected malformed",
        "rejected insufficient_position",
        "rejected price_limit",
        "rejected lot_size",
        "rejected duplicate_bank_ref",
        "rejected account_exists",
        "rejected unknown_instrument",
    ] {
        assert!(
            totals.answered(answer) >= 3,
            "too few answers {answer:?}: {:?}",
            totals.answers
        );
    }
    let fills_after_their_order = totals.coverage.get("fill_after_its_order").copied().unwrap_or(0);
    assert!(
        fills_after_their_order >= 3,
        "too few fills delivered before their order"
    );
}

/// A client that drops a batch after a failure loses commands: the checks must see it.
#[test]
fn a_client_that_does_not_resubmit_is_caught() {
    let options = Options {
        steps: 30,
        resubmit: false,
        append_fault_pct: Some(30),
    };
    let why = run_one(7, &options).expect_err("commands lost before their commit are noticed");
    assert!(
        why.contains("events after position"),
        "the step's log is short of the reference's: {why}"
    );
}

/// A seed is a replayable run: the same commands, faults and log every time.
#[test]
fn a_seed_replays_exactly() {
    let options = Options {
        steps: 20,
        resubmit: true,
        append_fault_pct: Some(30),
    };
    let first = run_one(11, &options).unwrap_or_else(|why| panic!("{}", failed(11, &why)));
    let again = run_one(11, &options).unwrap_or_else(|why| panic!("{}", failed(11, &why)));
    assert!(first.resubmissions > 0, "the seed met faults");
    assert_eq!(
        (
            &first.head_hash,
            first.events,
            &first.faults,
            first.restarts,
            &first.answers
        ),
        (
            &again.head_hash,
            again.events,
            &again.faults,
            again.restarts,
            &again.answers
        )
    );
}
