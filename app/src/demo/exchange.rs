//! The exchange's side of the demo: fills, cancels and rejects of accepted orders,
//! the mistakes a real gateway makes, the day's close and resubmitted lines.

use chrono::NaiveDate;
use ledger_domain::money::round_to_fen;
use rand::RngExt;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::generator::{Generator, Intent};

impl Generator {
    /// One round of the exchange's answers to today's accepted orders, shuffled across accounts:
    /// fills in up to three parts, cancels, rejects, and some deliberate mistakes.
    pub(super) fn plan_executions(&mut self, round: usize) -> Vec<(Intent, String)> {
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

    pub(super) fn fill(&mut self, order: usize, account_id: &str, quantity: u64) -> (Intent, String) {
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
    pub(super) fn plan_mistakes(&mut self, round: usize) -> Vec<(Intent, String)> {
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

    pub(super) fn plan_close(&mut self, day: NaiveDate, first_day: bool) -> Vec<(Intent, String)> {
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
    pub(super) fn plan_resubmissions(&mut self) -> Vec<(Intent, String)> {
        let count = (self.lines.len() / 100).max(1);
        (0..count)
            .map(|_| {
                let index = self.rng.random_range(0..self.lines.len());
                (Intent::Other, self.lines[index].clone())
            })
            .collect()
    }

    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
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
