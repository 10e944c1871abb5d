//! The demo's generator: the customers, their cash and their orders, planned
//! phase by phase from the answers to the phases before (an order is filled only
//! if it was accepted), deterministic for a seed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use ledger_commands::{LineAnswer, Status};
use ledger_domain::account::price_limits;
use ledger_domain::money::round_to_fen;
use ledger_domain::MarketRules;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::market::{instruments, DemoInstrument};

/// An order the demo placed, as the demo's gateway sees it.
#[derive(Clone)]
pub(super) struct PlacedOrder {
    pub(super) account: usize,
    pub(super) order_id: String,
    pub(super) instrument: usize,
    pub(super) side: &'static str,
    pub(super) quantity: u64,
    pub(super) limit: Decimal,
    pub(super) accepted: bool,
}

/// What a line of the plan was, so that its answer can update the gateway's view.
#[derive(Clone)]
pub(super) enum Intent {
    Other,
    Order(usize),
    Fill { order: usize, quantity: u64 },
}

pub(super) struct Generator {
    pub(super) rng: ChaCha8Rng,
    pub(super) rules: Arc<MarketRules>,
    pub(super) instruments: Vec<DemoInstrument>,
    pub(super) account_risk: Vec<u8>,
    /// What each account deposited on the first day, to size its orders.
    pub(super) account_deposit_cny: Vec<Decimal>,
    /// Previous close per instrument for the trade date being generated.
    pub(super) prev_close: Vec<Option<Decimal>>,
    pub(super) orders: Vec<PlacedOrder>,
    /// Shares each account holds per instrument, from accepted fills.
    pub(super) holdings: Vec<BTreeMap<usize, u64>>,
    pub(super) next_command: u64,
    pub(super) next_order: u64,
    pub(super) next_exec: u64,
    pub(super) next_bank_ref: u64,
    /// Every line sent, in order: the run's record, and where resubmissions are drawn from.
    pub(super) lines: Vec<String>,
    pub(super) answers: Vec<LineAnswer>,
    pub(super) engine_time: Duration,
}

impl Generator {
    pub(super) fn new(seed: u64, accounts: usize, rules: Arc<MarketRules>) -> Self {
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

    pub(super) fn accounts(&self) -> usize {
        self.holdings.len()
    }

    pub(super) fn account_id(index: usize) -> String {
        format!("D{:07}", index + 1)
    }

    pub(super) fn command(&mut self, kind: &str, mut fields: Value) -> String {
        self.next_command += 1;
        fields["type"] = json!(kind);
        fields["command_id"] = json!(format!("DEMO{:08}", self.next_command));
        fields.to_string()
    }

    pub(super) fn learn(&mut self, intent: &Intent, answer: &LineAnswer) {
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

    pub(super) fn plan_setup(&mut self, day1: NaiveDate) -> Vec<(Intent, String)> {
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

    pub(super) fn plan_prev_closes(&mut self, day: NaiveDate) -> Vec<(Intent, String)> {
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
    pub(super) fn plan_next_day_prev_closes(&mut self, day: NaiveDate) -> Vec<(Intent, String)> {
        for index in 0..self.instruments.len() {
            if let Some(price) = self.prev_close[index] {
                let move_bp: i64 = self.rng.random_range(-300..=300);
                let next = round_to_fen(price * (Decimal::ONE + Decimal::new(move_bp, 4)));
                self.prev_close[index] = Some(next.max(Decimal::new(1, 2)));
            }
        }
        self.plan_prev_closes(day)
    }

    pub(super) fn plan_cash_movements(&mut self, first_day: bool) -> Vec<(Intent, String)> {
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

    pub(super) fn bank_ref(&mut self) -> String {
        self.next_bank_ref += 1;
        format!("B{:09}", self.next_bank_ref)
    }

    pub(super) fn plan_orders(&mut self, day: NaiveDate, first_day: bool) -> Vec<(Intent, String)> {
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
    pub(super) fn pick_instrument_for(&mut self, account: usize) -> usize {
        let tolerance = self.account_risk[account];
        let suitable: Vec<usize> = (0..self.instruments.len())
            .filter(|i| self.instruments[*i].risk_level <= tolerance && self.instruments[*i].prev_close.is_some())
            .collect();
        if suitable.is_empty() || self.rng.random_bool(0.04) {
            return self.rng.random_range(0..self.instruments.len());
        }
        suitable[self.rng.random_range(0..suitable.len())]
    }

    pub(super) fn buy_quantity(&mut self, account: usize, instrument: usize) -> u64 {
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

    pub(super) fn sell_quantity(&mut self, instrument: usize, held: u64) -> u64 {
        let board = self.rules.board(self.instruments[instrument].board).clone();
        if held <= board.min_quantity || self.rng.random_bool(0.4) {
            return held; // the whole position, odd lot included
        }
        let steps = (held - board.min_quantity) / board.step_quantity;
        board.min_quantity + self.rng.random_range(0..=steps) * board.step_quantity
    }

    pub(super) fn place_order(
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
}
