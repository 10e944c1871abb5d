//! `ledger demo`: generates two realistic trading days for N accounts, runs
//! them through the same path as `ledger exec` (JSON lines -> parser -> engine
//! -> event store), then prints what happened and checks the invariants.
//!
//! Generation is deterministic for a seed. It runs in phases, each planned
//! from the answers to the previous ones (an order is filled only if it was
//! accepted), like a gateway reacting to the ledger.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, NaiveDate};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressStyle};
use ledger_commands::{Ledger, LineAnswer, LineRunner, Status};
use ledger_domain::account::price_limits;
use ledger_domain::money::round_to_fen;
use ledger_domain::{Board, MarketRules};
use ledger_eventstore::EventStore;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::readouts::{accounts_view, align_numbers, balance_table, position_table};

/// Fresh database the demo writes when no `--db` is given; replaced at each run.
pub const DEMO_DATABASE_FILE: &str = "ledger-demo.db";
/// Most accounts a demo generates (its plans live in memory).
const MAX_DEMO_ACCOUNTS: usize = 1_000_000;
/// The bank's custody file and the depository's holdings file the demo writes and reconciles.
pub const DEMO_BANK_FILE: &str = "ledger-demo-bank.csv";
pub const DEMO_DEPOSITORY_FILE: &str = "ledger-demo-depository.csv";
/// One customer's statement the demo writes.
pub const DEMO_STATEMENT_FILE: &str = "ledger-demo-statement.html";
/// Simulated time between two commands (09:15 Beijing time is 01:15 UTC).
const SIMULATED_MICROS_PER_COMMAND: i64 = 1_000;
/// Accounts whose balances and positions the demo prints.
const SAMPLE_ACCOUNTS: usize = 3;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Customer accounts to open.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// Seed of the generator: the same seed gives the same commands.
    #[arg(long, default_value_t = 20_240_304)]
    pub seed: u64,
    /// Also write the generated commands to this file (JSON lines, the `ledger exec` format).
    #[arg(long)]
    pub commands_out: Option<PathBuf>,
}

pub async fn run(args: DemoArgs, db: Option<String>, rules: Arc<MarketRules>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=MAX_DEMO_ACCOUNTS).contains(&args.accounts),
        "--accounts must be 1 to {MAX_DEMO_ACCOUNTS}, got {}",
        args.accounts
    );
    let url = match db {
        Some(url) => url,
        None => {
            remove_demo_database()?;
            format!("sqlite://{DEMO_DATABASE_FILE}")
        }
    };
    let store = crate::cli::open_store(&url).await?;
    let head = store.head_position().await?;
    anyhow::ensure!(
        head == 0,
        "the demo needs an empty database, but {} already holds {head} events",
        ledger_eventstore::redact_url(&url)
    );

    let mut demo = Demo::new(args.seed, args.accounts, Arc::clone(&rules));
    let mut ledger = Ledger::new(Arc::clone(&store), rules);
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:40}] {pos}/{len} commands ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    demo.run_all(&mut ledger, &progress).await?;
    progress.finish_and_clear();
    let wall = started.elapsed();

    if let Some(path) = &args.commands_out {
        let mut text = demo.lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let projecting = Instant::now();
    let projected = ledger_projections::tables::run_accounts(
        store.as_ref(),
        ledger_projections::tables::RunOptions::default(),
        |_| {},
    )
    .await?;
    let projection_time = projecting.elapsed();

    // The files the bank and the depository would send, reconciled against the ledger.
    let bank_file = PathBuf::from(DEMO_BANK_FILE);
    let depository_file = PathBuf::from(DEMO_DEPOSITORY_FILE);
    crate::reconcile::write_own_files(store.as_ref(), &bank_file, &depository_file).await?;
    let last_day = NaiveDate::from_ymd_opt(2024, 3, 5).context("calendar")?;
    let breaks = crate::reconcile::reconcile_files(store.as_ref(), last_day, &bank_file, &depository_file).await?;
    let exit = report(
        &demo,
        store.as_ref(),
        &url,
        wall,
        args.commands_out.as_ref(),
        (projected, projection_time),
    )
    .await?;
    println!(
        "Reconciliation of {last_day} against {DEMO_BANK_FILE} (bank) and {DEMO_DEPOSITORY_FILE} (depository): {} breaks.",
        breaks.len()
    );
    let first_day = NaiveDate::from_ymd_opt(2024, 3, 4).context("calendar")?;
    let sample_account = Demo::account_id(0);
    let statement_file = PathBuf::from(DEMO_STATEMENT_FILE);
    crate::statement::write_statement(
        store.as_ref(),
        &sample_account,
        first_day,
        last_day,
        crate::statement::Format::Html,
        Some(&statement_file),
    )
    .await?;
    println!("The statement (对账单) of {sample_account} for {first_day} to {last_day} is in {DEMO_STATEMENT_FILE}.");
    Ok(if breaks.is_empty() { exit } else { ExitCode::from(1) })
}

fn remove_demo_database() -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{DEMO_DATABASE_FILE}{suffix}");
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove the previous demo database {path}")),
        }
    }
    Ok(())
}

struct DemoInstrument {
    code: &'static str,
    name: &'static str,
    board: Board,
    risk_level: u8,
    /// `None`: a new listing with no previous close (orders on it are refused).
    prev_close: Option<Decimal>,
}

fn instruments() -> Vec<DemoInstrument> {
    let stock = |code, name, board, risk_level, cents: i64| DemoInstrument {
        code,
        name,
        board,
        risk_level,
        prev_close: Some(Decimal::new(cents, 2)),
    };
    vec![
        stock("601398.SH", "ICBC", Board::Main, 1, 512),
        stock("600519.SH", "Kweichow Moutai", Board::Main, 2, 168_800),
        stock("601318.SH", "Ping An Insurance", Board::Main, 2, 4_437),
        stock("000001.SZ", "Ping An Bank", Board::Main, 2, 1_052),
        stock("000858.SZ", "Wuliangye", Board::Main, 3, 14_820),
        stock("600036.SH", "China Merchants Bank", Board::Main, 2, 3_250),
        stock("600900.SH", "China Yangtze Power", Board::Main, 1, 2_410),
        stock("000333.SZ", "Midea Group", Board::Main, 2, 6_035),
        stock("601012.SH", "LONGi Green Energy", Board::Main, 3, 2_215),
        stock("002594.SZ", "BYD", Board::Main, 3, 19_860),
        stock("300750.SZ", "CATL", Board::Chinext, 3, 18_766),
        stock("300059.SZ", "East Money", Board::Chinext, 3, 1_391),
        stock("300760.SZ", "Mindray", Board::Chinext, 3, 28_540),
        stock("688981.SH", "SMIC", Board::Star, 4, 4_893),
        stock("688111.SH", "Kingsoft Office", Board::Star, 4, 27_640),
        stock("688599.SH", "Trina Solar", Board::Star, 4, 2_876),
        stock("600654.SH", "*ST Zhongan", Board::St, 5, 247),
        stock("000972.SZ", "*ST Zhongji", Board::St, 5, 185),
        DemoInstrument {
            code: "301999.SZ",
            name: "New Listing Tech",
            board: Board::Chinext,
            risk_level: 3,
            prev_close: None,
        },
    ]
}

/// An order the demo placed, as the demo's gateway sees it.
#[derive(Clone)]
struct PlacedOrder {
    account: usize,
    order_id: String,
    instrument: usize,
    side: &'static str,
    quantity: u64,
    limit: Decimal,
    accepted: bool,
}

/// What a line of the plan was, so that its answer can update the gateway's view.
#[derive(Clone)]
enum Intent {
    Other,
    Order(usize),
    Fill { order: usize, quantity: u64 },
}

struct Demo {
    rng: ChaCha8Rng,
    rules: Arc<MarketRules>,
    instruments: Vec<DemoInstrument>,
    account_risk: Vec<u8>,
    /// What each account deposited on the first day, to size its orders.
    account_deposit_cny: Vec<Decimal>,
    /// Previous close per instrument for the trade date being generated.
    prev_close: Vec<Option<Decimal>>,
    orders: Vec<PlacedOrder>,
    /// Shares each account holds per instrument, from accepted fills.
    holdings: Vec<BTreeMap<usize, u64>>,
    next_command: u64,
    next_order: u64,
    next_exec: u64,
    next_bank_ref: u64,
    /// Every line sent, in order (for `--commands-out` and for resubmissions).
    lines: Vec<String>,
    answers: Vec<LineAnswer>,
    engine_time: Duration,
}

impl Demo {
    fn new(seed: u64, accounts: usize, rules: Arc<MarketRules>) -> Self {
        let instruments = instruments();
        let prev_close = instruments.iter().map(|i| i.prev_close).collect();
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            rules,
            instruments,
            account_risk: Vec::with_capacity(accounts),
            account_deposit_cny: vec![Decimal::ZERO; accounts],
            prev_close,
            orders: Vec::new(),
            holdings: vec![BTreeMap::new(); accounts],
            next_command: 0,
            next_order: 0,
            next_exec: 0,
            next_bank_ref: 0,
            lines: Vec::new(),
            answers: Vec::new(),
            engine_time: Duration::ZERO,
        }
    }

    fn accounts(&self) -> usize {
        self.holdings.len()
    }

    fn account_id(index: usize) -> String {
        format!("D{:07}", index + 1)
    }

    fn command(&mut self, kind: &str, mut fields: Value) -> String {
        self.next_command += 1;
        fields["type"] = json!(kind);
        fields["command_id"] = json!(format!("DEMO{:08}", self.next_command));
        fields.to_string()
    }

    async fn run_all(&mut self, ledger: &mut Ledger, progress: &ProgressBar) -> anyhow::Result<()> {
        let day1 = NaiveDate::from_ymd_opt(2024, 3, 4).context("calendar")?;
        let day2 = NaiveDate::from_ymd_opt(2024, 3, 5).context("calendar")?;

        // A simulated clock, so that the same seed gives the same log and hash chain on every backend.
        let clock_micros = Arc::new(AtomicI64::new(0));
        let clock = Arc::clone(&clock_micros);
        ledger.set_clock(move || {
            let micros = clock.fetch_add(SIMULATED_MICROS_PER_COMMAND, Ordering::Relaxed);
            DateTime::from_timestamp_micros(micros).unwrap_or_default()
        });
        let open_of = |day: NaiveDate| day.and_hms_opt(1, 15, 0).map_or(0, |t| t.and_utc().timestamp_micros());

        clock_micros.store(open_of(day1), Ordering::Relaxed);
        let plan = self.plan_setup(day1);
        self.run_phase(ledger, progress, "listings and accounts", plan).await?;
        for (day, first_day) in [(day1, true), (day2, false)] {
            clock_micros.fetch_max(open_of(day), Ordering::Relaxed);
            let plan = self.plan_cash_movements(first_day);
            self.run_phase(ledger, progress, "deposits and withdrawals", plan)
                .await?;
            let plan = self.plan_orders(day, first_day);
            self.run_phase(ledger, progress, &format!("orders {day}"), plan).await?;
            for round in 0..3 {
                let plan = self.plan_executions(round);
                self.run_phase(ledger, progress, &format!("executions {day} ({})", round + 1), plan)
                    .await?;
            }
            let plan = self.plan_close(day, first_day);
            self.run_phase(ledger, progress, &format!("end of day {day}"), plan)
                .await?;
            if first_day {
                let plan = self.plan_next_day_prev_closes(day2);
                self.run_phase(ledger, progress, "previous closes", plan).await?;
            }
        }
        let plan = self.plan_resubmissions();
        self.run_phase(ledger, progress, "resubmitted commands", plan).await?;
        Ok(())
    }

    /// Sends a phase's lines through the same runner as `ledger exec` and learns from the answers.
    async fn run_phase(
        &mut self,
        ledger: &mut Ledger,
        progress: &ProgressBar,
        name: &str,
        plan: Vec<(Intent, String)>,
    ) -> anyhow::Result<()> {
        progress.set_message(name.to_owned());
        progress.inc_length(plan.len() as u64);
        let started = Instant::now();
        let mut runner = LineRunner::new(ledger, "demo");
        let mut answers = Vec::with_capacity(plan.len());
        let first_line = self.lines.len() as u64 + 1;
        for (offset, (_, line)) in plan.iter().enumerate() {
            let batch = runner.push(first_line + offset as u64, line).await?;
            progress.inc(batch.len() as u64);
            answers.extend(batch);
        }
        let batch = runner.flush().await?;
        progress.inc(batch.len() as u64);
        answers.extend(batch);
        self.engine_time += started.elapsed();
        anyhow::ensure!(
            answers.len() == plan.len(),
            "every line of the phase {name} was answered"
        );
        for ((intent, line), answer) in plan.into_iter().zip(&answers) {
            self.learn(&intent, answer);
            self.lines.push(line);
        }
        self.answers.extend(answers);
        Ok(())
    }

    fn learn(&mut self, intent: &Intent, answer: &LineAnswer) {
        if answer.status != Status::Accepted {
            return;
        }
        match *intent {
            Intent::Other => {}
            Intent::Order(index) => self.orders[index].accepted = true,
            Intent::Fill { order, quantity } => {
                let placed = &self.orders[order];
                let held = self.holdings[placed.account].entry(placed.instrument).or_default();
                // Sells were taken off when planned.
                if placed.side == "buy" {
                    *held += quantity;
                }
            }
        }
    }

    fn plan_setup(&mut self, day1: NaiveDate) -> Vec<(Intent, String)> {
        let mut plan = Vec::new();
        let listings: Vec<Value> = self
            .instruments
            .iter()
            .map(|i| json!({"instrument": i.code, "name": i.name, "board": i.board.as_str(), "risk_level": i.risk_level}))
            .collect();
        for listing in listings {
            let line = self.command("list_instrument", listing);
            plan.push((Intent::Other, line));
        }
        plan.extend(self.plan_prev_closes(day1));
        for index in 0..self.accounts() {
            // Most customers are conservative; few accept the riskiest boards.
            let risk_level = match self.rng.random_range(0..100) {
                0..=14 => 1,
                15..=44 => 2,
                45..=74 => 3,
                75..=92 => 4,
                _ => 5,
            };
            self.account_risk.push(risk_level);
            let id_number = format!(
                "{:018}",
                self.rng
                    .random_range(100_000_000_000_000_000u64..999_999_999_999_999_999)
            );
            let line = self.command(
                "open_account",
                json!({"account_id": Self::account_id(index), "customer_name": format!("Customer {}", index + 1),
                       "id_number": id_number, "risk_level": risk_level}),
            );
            plan.push((Intent::Other, line));
        }
        // Deliberate refusals: an account opened twice, a deposit to nobody.
        let line = self.command(
            "open_account",
            json!({"account_id": Self::account_id(0), "customer_name": "Someone Else", "id_number": "110101199001011234", "risk_level": 3}),
        );
        plan.push((Intent::Other, line));
        let line = self.command(
            "deposit",
            json!({"account_id": "X0000000", "amount": "100.00", "bank_ref": "BX0"}),
        );
        plan.push((Intent::Other, line));
        plan
    }

    fn plan_prev_closes(&mut self, day: NaiveDate) -> Vec<(Intent, String)> {
        let mut plan = Vec::new();
        for index in 0..self.instruments.len() {
            let Some(price) = self.prev_close[index] else { continue };
            let code = self.instruments[index].code;
            let line = self.command(
                "set_prev_close",
                json!({"instrument": code, "trade_date": day.to_string(), "price": price.to_string()}),
            );
            plan.push((Intent::Other, line));
        }
        plan
    }

    /// The next day's previous closes: a random walk of up to ±3 % from today's.
    fn plan_next_day_prev_closes(&mut self, day: NaiveDate) -> Vec<(Intent, String)> {
        for index in 0..self.instruments.len() {
            if let Some(price) = self.prev_close[index] {
                let move_bp: i64 = self.rng.random_range(-300..=300);
                let next = round_to_fen(price * (Decimal::ONE + Decimal::new(move_bp, 4)));
                self.prev_close[index] = Some(next.max(Decimal::new(1, 2)));
            }
        }
        self.plan_prev_closes(day)
    }

    fn plan_cash_movements(&mut self, first_day: bool) -> Vec<(Intent, String)> {
        let mut plan = Vec::new();
        for account in 0..self.accounts() {
            let account_id = Self::account_id(account);
            if first_day {
                // Mostly retail sums; about 3 % at or above the AML threshold.
                let amount_cny = if self.rng.random_bool(0.03) {
                    Decimal::new(self.rng.random_range(50_000_000..300_000_000), 2)
                } else {
                    Decimal::new(self.rng.random_range(2_000_000..40_000_000), 2)
                };
                self.account_deposit_cny[account] = amount_cny;
                let bank_ref = self.bank_ref();
                let line = self.command(
                    "deposit",
                    json!({"account_id": account_id, "amount": amount_cny.to_string(), "bank_ref": bank_ref}),
                );
                plan.push((Intent::Other, line));
            } else if self.rng.random_bool(0.08) {
                let amount_cny = Decimal::new(self.rng.random_range(10_000..2_000_000), 2);
                let bank_ref = self.bank_ref();
                let line = self.command(
                    "withdraw",
                    json!({"account_id": account_id, "amount": amount_cny.to_string(), "bank_ref": bank_ref}),
                );
                plan.push((Intent::Other, line));
                let answer = if self.rng.random_bool(0.85) {
                    "confirm_withdrawal"
                } else {
                    "fail_withdrawal"
                };
                let line = self.command(answer, json!({"account_id": account_id, "bank_ref": bank_ref}));
                plan.push((Intent::Other, line));
            }
        }
        // Malformed lines the parser must refuse: three decimals, a missing field.
        let line = self.command(
            "deposit",
            json!({"account_id": Self::account_id(0), "amount": "10.001", "bank_ref": "BZ1"}),
        );
        plan.push((Intent::Other, line));
        let line = self.command(
            "withdraw",
            json!({"account_id": Self::account_id(0), "bank_ref": "BZ2"}),
        );
        plan.push((Intent::Other, line));
        plan
    }

    fn bank_ref(&mut self) -> String {
        self.next_bank_ref += 1;
        format!("B{:09}", self.next_bank_ref)
    }

    fn plan_orders(&mut self, day: NaiveDate, first_day: bool) -> Vec<(Intent, String)> {
        let mut plan = Vec::new();
        let mut frozen_accounts = Vec::new();
        if !first_day {
            for account in 0..self.accounts() {
                if self.rng.random_bool(0.005) {
                    let line = self.command(
                        "freeze_account",
                        json!({"account_id": Self::account_id(account), "reason": "compliance review"}),
                    );
                    plan.push((Intent::Other, line));
                    frozen_accounts.push(account);
                }
            }
        }
        for account in 0..self.accounts() {
            let count = self.rng.random_range(3..=12);
            for _ in 0..count {
                let sell_from = self.holdings[account]
                    .iter()
                    .filter(|(_, qty)| **qty > 0)
                    .map(|(i, q)| (*i, *q))
                    .collect::<Vec<_>>();
                let sell = !first_day && !sell_from.is_empty() && self.rng.random_bool(0.45);
                let (instrument, side, quantity) = if sell {
                    let (instrument, held) = sell_from[self.rng.random_range(0..sell_from.len())];
                    let quantity = self.sell_quantity(instrument, held);
                    // Held shares are spoken for once a sell is planned, accepted or not.
                    if let Some(left) = self.holdings[account].get_mut(&instrument) {
                        *left -= quantity;
                    }
                    (instrument, "sell", quantity)
                } else {
                    let instrument = self.pick_instrument_for(account);
                    (instrument, "buy", self.buy_quantity(account, instrument))
                };
                plan.push(self.place_order(account, instrument, side, quantity, day));
            }
        }
        // Deliberate refusals: an unknown instrument, a duplicate order id.
        let line = self.command(
            "place_order",
            json!({"account_id": Self::account_id(0), "order_id": "ZZ-UNKNOWN", "instrument": "601999.SH", "side": "buy",
                   "quantity": 100, "price": "10.00", "trade_date": day.to_string()}),
        );
        plan.push((Intent::Other, line));
        if let Some(first) = self.orders.first().cloned() {
            let line = self.command(
                "place_order",
                json!({"account_id": Self::account_id(first.account), "order_id": first.order_id, "instrument": self.instruments[first.instrument].code,
                       "side": first.side, "quantity": first.quantity, "price": first.limit.to_string(), "trade_date": day.to_string()}),
            );
            plan.push((Intent::Other, line));
        }
        for account in frozen_accounts {
            let line = self.command(
                "unfreeze_account",
                json!({"account_id": Self::account_id(account), "reason": "review closed"}),
            );
            plan.push((Intent::Other, line));
        }
        plan
    }

    /// Mostly an instrument the customer is suitable for; now and then one above
    /// their risk tolerance, which the ledger must refuse.
    fn pick_instrument_for(&mut self, account: usize) -> usize {
        let tolerance = self.account_risk[account];
        let suitable: Vec<usize> = (0..self.instruments.len())
            .filter(|i| self.instruments[*i].risk_level <= tolerance && self.instruments[*i].prev_close.is_some())
            .collect();
        if suitable.is_empty() || self.rng.random_bool(0.04) {
            return self.rng.random_range(0..self.instruments.len());
        }
        suitable[self.rng.random_range(0..suitable.len())]
    }

    fn buy_quantity(&mut self, account: usize, instrument: usize) -> u64 {
        let board = self.rules.board(self.instruments[instrument].board).clone();
        if self.rng.random_bool(0.02) {
            return board.min_quantity + board.step_quantity.max(2) / 2 + 1; // an odd lot: refused
        }
        let price = self.instruments[instrument].prev_close.unwrap_or(Decimal::TEN);
        // Each order spends 1 % to 12 % of what the customer deposited.
        let share_pct = Decimal::from(self.rng.random_range(1u64..=12));
        let budget_cny = self.account_deposit_cny[account] * share_pct / Decimal::ONE_HUNDRED;
        let shares = (budget_cny / price).trunc().try_into().unwrap_or(0u64);
        let steps = shares.saturating_sub(board.min_quantity) / board.step_quantity;
        board.min_quantity + steps * board.step_quantity
    }

    fn sell_quantity(&mut self, instrument: usize, held: u64) -> u64 {
        let board = self.rules.board(self.instruments[instrument].board).clone();
        if held <= board.min_quantity || self.rng.random_bool(0.4) {
            return held; // the whole position, odd lot included
        }
        let steps = (held - board.min_quantity) / board.step_quantity;
        board.min_quantity + self.rng.random_range(0..=steps) * board.step_quantity
    }

    fn place_order(
        &mut self,
        account: usize,
        instrument: usize,
        side: &'static str,
        quantity: u64,
        day: NaiveDate,
    ) -> (Intent, String) {
        let info = &self.instruments[instrument];
        let board = self.rules.board(info.board).clone();
        let reference = self.prev_close[instrument].unwrap_or(Decimal::TEN);
        let (lower, upper) = price_limits(reference, board.price_limit_rate);
        // Mostly near the previous close; 3 % beyond the daily limit, to be refused.
        let limit = if self.rng.random_bool(0.03) {
            upper + Decimal::new(1, 2)
        } else {
            let offset_bp: i64 = self.rng.random_range(-250..=250);
            round_to_fen(reference * (Decimal::ONE + Decimal::new(offset_bp, 4))).clamp(lower, upper)
        };
        self.next_order += 1;
        let order_id = format!("O{:09}", self.next_order);
        let code = info.code;
        self.orders.push(PlacedOrder {
            account,
            order_id: order_id.clone(),
            instrument,
            side,
            quantity,
            limit,
            accepted: false,
        });
        let line = self.command(
            "place_order",
            json!({"account_id": Self::account_id(account), "order_id": order_id, "instrument": code, "side": side,
                   "quantity": quantity, "price": limit.to_string(), "trade_date": day.to_string()}),
        );
        (Intent::Order(self.orders.len() - 1), line)
    }

    /// One round of the exchange's answers to today's accepted orders, shuffled across accounts:
    /// fills in up to three parts, cancels, rejects, and some deliberate mistakes.
    fn plan_executions(&mut self, round: usize) -> Vec<(Intent, String)> {
        let mut plan = Vec::new();
        let today: Vec<usize> = (0..self.orders.len()).filter(|i| self.orders[*i].accepted).collect();
        for index in today {
            let order = self.orders[index].clone();
            // Each order's fate is drawn from its id so every round agrees on it.
            let fate = fate_of(&order.order_id);
            let account_id = Self::account_id(order.account);
            let third = (order.quantity / 3).max(1);
            let part = match (fate, round) {
                (0..=54, 0) => Some(if order.quantity > 2 { third } else { order.quantity }),
                (0..=54, 1) if order.quantity > 2 => Some(third),
                (0..=54, 2) if order.quantity > 2 => Some(order.quantity - 2 * third),
                (55..=74, 0) => Some(third.min(order.quantity)),
                _ => None,
            };
            if let Some(quantity) = part {
                plan.push(self.fill(index, &account_id, quantity));
                continue;
            }
            let line = match (fate, round) {
                (55..=84, 1) => self.command(
                    "cancel_order",
                    json!({"account_id": account_id, "order_id": order.order_id}),
                ),
                (55..=84, 2) => self.command(
                    "confirm_cancel",
                    json!({"account_id": account_id, "order_id": order.order_id}),
                ),
                (85..=89, 0) => self.command(
                    "reject_order",
                    json!({"account_id": account_id, "order_id": order.order_id, "reason": "exchange refused"}),
                ),
                _ => continue,
            };
            plan.push((Intent::Other, line));
        }
        self.shuffle(&mut plan);
        plan.extend(self.plan_mistakes(round));
        // Orders of this trade date are done with after the last round.
        if round == 2 {
            for order in &mut self.orders {
                order.accepted = false;
            }
        }
        plan
    }

    fn fill(&mut self, order: usize, account_id: &str, quantity: u64) -> (Intent, String) {
        self.next_exec += 1;
        let placed = &self.orders[order];
        // Buys fill at or below the limit, sells at or above, by up to 0.5 %.
        let improvement_bp: i64 = self.rng.random_range(0..=50);
        let improvement = round_to_fen(placed.limit * Decimal::new(improvement_bp, 4));
        let price = match placed.side {
            "buy" => (placed.limit - improvement).max(Decimal::new(1, 2)),
            _ => placed.limit + improvement,
        };
        let line = self.command(
            "fill",
            json!({"account_id": account_id, "order_id": placed.order_id, "exec_id": format!("E{:09}", self.next_exec),
                   "quantity": quantity, "price": price.to_string()}),
        );
        (Intent::Fill { order, quantity }, line)
    }

    /// Mistakes a real gateway makes: a fill replayed with its exec id, a fill too large, an unknown order.
    fn plan_mistakes(&mut self, round: usize) -> Vec<(Intent, String)> {
        let mut plan = Vec::new();
        let fills: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, line)| line.contains("\"type\":\"fill\""))
            .map(|(i, _)| i)
            .collect();
        for _ in 0..(self.accounts() / 100).max(1) {
            if let Some(&line_index) = fills.get(self.rng.random_range(0..fills.len().max(1))) {
                // The same fill again under a new command id: a no-op by its exec id.
                if let Ok(mut value) = serde_json::from_str::<Value>(&self.lines[line_index]) {
                    self.next_command += 1;
                    value["command_id"] = json!(format!("DEMO{:08}", self.next_command));
                    plan.push((Intent::Other, value.to_string()));
                }
            }
        }
        if let Some(order) = self.orders.iter().rev().find(|o| o.accepted).cloned() {
            let line = self.command(
                "fill",
                json!({"account_id": Self::account_id(order.account), "order_id": order.order_id,
                       "exec_id": format!("EX{round}-{}", self.next_command), "quantity": order.quantity + 1, "price": order.limit.to_string()}),
            );
            plan.push((Intent::Other, line));
        }
        let line = self.command(
            "confirm_cancel",
            json!({"account_id": Self::account_id(0), "order_id": format!("NOSUCH{round}")}),
        );
        plan.push((Intent::Other, line));
        plan
    }

    fn plan_close(&mut self, day: NaiveDate, first_day: bool) -> Vec<(Intent, String)> {
        let mut plan = Vec::new();
        let line = self.command("end_of_day", json!({"trade_date": day.to_string()}));
        plan.push((Intent::Other, line));
        if first_day {
            // An order for a day already closed, refused with day_closed.
            let line = self.command(
                "place_order",
                json!({"account_id": Self::account_id(0), "order_id": "LATE-1", "instrument": "601398.SH", "side": "buy",
                       "quantity": 100, "price": "5.12", "trade_date": day.to_string()}),
            );
            plan.push((Intent::Other, line));
        }
        let line = self.command("settle", json!({"trade_date": day.to_string()}));
        plan.push((Intent::Other, line));
        plan
    }

    /// Lines sent again unchanged, as after a lost acknowledgement: each must answer `duplicate`.
    fn plan_resubmissions(&mut self) -> Vec<(Intent, String)> {
        let count = (self.lines.len() / 100).max(1);
        (0..count)
            .map(|_| {
                let index = self.rng.random_range(0..self.lines.len());
                (Intent::Other, self.lines[index].clone())
            })
            .collect()
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.rng.random_range(0..=i);
            items.swap(i, j);
        }
    }
}

/// A stable number 0..100 per order id: its fate in every execution round.
fn fate_of(order_id: &str) -> u32 {
    let hash = order_id
        .bytes()
        .fold(2_166_136_261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
    hash % 100
}

async fn report(
    demo: &Demo,
    store: &dyn EventStore,
    url: &str,
    wall: Duration,
    commands_out: Option<&PathBuf>,
    (projected, projection_time): (u64, Duration),
) -> anyhow::Result<ExitCode> {
    let view = accounts_view(store).await?;
    let commands = demo.answers.len() as u64;
    let events: u64 = view.event_counts().values().sum();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for answer in &demo.answers {
        *by_status.entry(answer.status.as_str()).or_default() += 1;
        if let Some(code) = &answer.code {
            *by_code.entry(code.clone()).or_default() += 1;
        }
    }
    let engine_secs = demo.engine_time.as_secs_f64().max(f64::EPSILON);

    let mut summary = Table::new();
    summary.load_style(UTF8_BORDERS_ONLY);
    summary.set_header(["ledger demo", ""]);
    summary.add_row(["accounts".to_owned(), view.account_count().to_string()]);
    summary.add_row(["commands".to_owned(), commands.to_string()]);
    for (status, count) in &by_status {
        summary.add_row([format!("  {status}"), count.to_string()]);
    }
    summary.add_row(["events written".to_owned(), events.to_string()]);
    summary.add_row([
        "time in the ledger".to_owned(),
        format!("{:.2} s", demo.engine_time.as_secs_f64()),
    ]);
    summary.add_row([
        "throughput".to_owned(),
        format!(
            "{:.0} commands/s, {:.0} events/s",
            commands as f64 / engine_secs,
            events as f64 / engine_secs
        ),
    ]);
    summary.add_row([
        "wall time (with generation)".to_owned(),
        format!("{:.2} s", wall.as_secs_f64()),
    ]);
    summary.add_row([
        "read models (every table)".to_owned(),
        format!(
            "{projected} events in {:.2} s ({:.0} events/s)",
            projection_time.as_secs_f64(),
            projected as f64 / projection_time.as_secs_f64().max(f64::EPSILON)
        ),
    ]);
    align_numbers(&mut summary, 1..2);
    println!("{summary}\n");

    let mut per_type = Table::new();
    per_type.load_style(UTF8_BORDERS_ONLY);
    per_type.set_header(["event type", "events"]);
    for (event_type, count) in view.event_counts() {
        per_type.add_row([event_type.clone(), count.to_string()]);
    }
    align_numbers(&mut per_type, 1..2);
    println!("{per_type}\n");

    let mut refusals = Table::new();
    refusals.load_style(UTF8_BORDERS_ONLY);
    refusals.set_header(["refusal code", "commands"]);
    for (code, count) in &by_code {
        refusals.add_row([code.clone(), count.to_string()]);
    }
    align_numbers(&mut refusals, 1..2);
    println!("{refusals}\n");

    let sample: Vec<String> = view
        .positions()
        .iter()
        .map(|p| p.account_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(SAMPLE_ACCOUNTS)
        .collect();
    let balances: Vec<_> = view
        .balances()
        .into_iter()
        .filter(|b| sample.contains(&b.account_id))
        .collect();
    let positions: Vec<_> = view
        .positions()
        .into_iter()
        .filter(|p| sample.contains(&p.account_id))
        .collect();
    println!("Balances of {} accounts\n{}\n", sample.len(), balance_table(&balances));
    println!("Their positions\n{}\n", position_table(&positions));

    let violations = view.invariant_violations();
    if violations.is_empty() {
        println!(
            "Invariants hold for all {} accounts: no negative cash or position, frozen = open reserves + pending withdrawals, frozen shares = open sells, cash and positions = sum of events.",
            view.account_count()
        );
    } else {
        println!("INVARIANTS BROKEN in {} accounts:", violations.len());
        for (account, why) in violations.iter().take(20) {
            println!("  {account}: {why}");
        }
    }
    let shown = ledger_eventstore::redact_url(url);
    println!("\nThe log is in {shown}. Try: ledger --db {shown} balances");
    if let Some(path) = commands_out {
        println!(
            "The commands are in {} (replay them with: ledger --db NEW.db exec {})",
            path.display(),
            path.display()
        );
    }
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
