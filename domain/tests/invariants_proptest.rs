//! Property test: thousands of random command sequences on one account, with
//! the invariants of DESIGN.md checked after every step.
//!
//! The sequences are steered by the account's state (fills name open orders,
//! sells name held shares) so that most of them do something; many commands
//! are still refused, which checks that a refusal changes nothing. Cash and
//! positions are also summed here from the events, independently of the code
//! under test.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use ledger_domain::account::{AccountCommand, AccountEvent, MarketSnapshot, PlaceOrder};
use ledger_domain::fees::{cumulative_fees, FeeBreakdown};
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::invariants::{check_account, EventTotals};
use ledger_domain::money::round_to_fen;
use ledger_domain::{Account, Board, InstrumentInfo, MarketRules, Side};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;

/// Sequences run, and commands in each at most.
const CASES: u32 = 2_000;
const MAX_STEPS: usize = 60;

#[derive(Debug, Clone)]
enum Action {
    Deposit {
        fen: i64,
    },
    Withdraw {
        fen: i64,
    },
    BankAnswer {
        pick: usize,
        confirm: bool,
    },
    Buy {
        instrument: usize,
        lots: u64,
        offset_bp: i64,
        odd: bool,
    },
    Sell {
        instrument: usize,
        percent: u64,
        offset_bp: i64,
        whole: bool,
    },
    Fill {
        pick: usize,
        percent: u64,
        ticks: i64,
        tiny: bool,
        repeat: bool,
    },
    Cancel {
        pick: usize,
    },
    ConfirmCancel {
        pick: usize,
    },
    Reject {
        pick: usize,
    },
    EndOfDay,
    Freeze,
    Unfreeze,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (1i64..=50_000_000).prop_map(|fen| Action::Deposit { fen }),
        1 => (1i64..=20_000_000).prop_map(|fen| Action::Withdraw { fen }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, confirm)| Action::BankAnswer { pick, confirm }),
        5 => (0usize..4, 1u64..=30, -1_100i64..=1_100, prop::bool::weighted(0.1))
            .prop_map(|(instrument, lots, offset_bp, odd)| Action::Buy { instrument, lots, offset_bp, odd }),
        3 => (0usize..4, 1u64..=100, -1_100i64..=1_100, any::<bool>())
            .prop_map(|(instrument, percent, offset_bp, whole)| Action::Sell { instrument, percent, offset_bp, whole }),
        12 => (any::<usize>(), 1u64..=110, -2i64..=8, prop::bool::weighted(0.15), prop::bool::weighted(0.05))
            .prop_map(|(pick, percent, ticks, tiny, repeat)| Action::Fill { pick, percent, ticks, tiny, repeat }),
        1 => any::<usize>().prop_map(|pick| Action::Cancel { pick }),
        1 => any::<usize>().prop_map(|pick| Action::ConfirmCancel { pick }),
        1 => any::<usize>().prop_map(|pick| Action::Reject { pick }),
        1 => Just(Action::EndOfDay),
        1 => prop::bool::weighted(0.3).prop_map(|f| if f { Action::Freeze } else { Action::Unfreeze }),
    ]
}

struct Instrument {
    code: InstrumentCode,
    board: Board,
    prev_close: Decimal,
}

fn instruments() -> Vec<Instrument> {
    let one = |code: &str, board, cents| Instrument {
        code: InstrumentCode::parse(code).unwrap(),
        board,
        prev_close: Decimal::new(cents, 2),
    };
    // The ST one trades below 5.00: one share is worth less than the minimum commission.
    vec![
        one("601398.SH", Board::Main, 512),
        one("300750.SZ", Board::Chinext, 18_766),
        one("688981.SH", Board::Star, 4_893),
        one("600654.SH", Board::St, 247),
    ]
}

/// The simulation around one account: which day it is, what was said, what the events add up to.
struct World {
    rules: MarketRules,
    instruments: Vec<Instrument>,
    account: Account,
    day: NaiveDate,
    closed_days: Vec<NaiveDate>,
    next_id: u64,
    bank_refs: Vec<BankRef>,
    exec_ids: Vec<(OrderId, ExecId)>,
    events: Vec<AccountEvent>,
    fills_booked: u64,
}

impl World {
    fn new(initial_fen: i64) -> Self {
        let rules = MarketRules::china_a_share().unwrap();
        let account = Account::default();
        let opened = account
            .decide(
                AccountCommand::Open {
                    account_id: AccountId::parse("P1").unwrap(),
                    customer_name: "Prop Test".into(),
                    id_number: "110101199001011234".into(),
                    risk_level: 5,
                },
                &rules,
            )
            .unwrap();
        let mut world = World {
            rules,
            instruments: instruments(),
            account,
            day: NaiveDate::from_ymd_opt(2024, 3, 4).unwrap(),
            closed_days: Vec::new(),
            next_id: 0,
            bank_refs: Vec::new(),
            exec_ids: Vec::new(),
            events: Vec::new(),
            fills_booked: 0,
        };
        world.record(opened);
        // Start with money, so that most sequences trade rather than only refuse; often
        // little of it, so that cash runs out and the edges of the rules are reached.
        let deposit = AccountCommand::Deposit {
            amount_cny: Decimal::new(initial_fen, 2),
            bank_ref: BankRef::parse("D0").unwrap(),
        };
        let deposited = world.account.decide(deposit, &world.rules).unwrap();
        world.record(deposited);
        world
    }

    fn record(&mut self, events: Vec<AccountEvent>) {
        for event in events {
            if matches!(event, AccountEvent::FillBooked { .. }) {
                self.fills_booked += 1;
            }
            self.account.apply(event.clone());
            self.events.push(event);
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn open_order(&self, pick: usize) -> Option<(OrderId, ledger_domain::order::Order)> {
        let orders = self.account.open_orders();
        if orders.is_empty() {
            return None;
        }
        orders
            .iter()
            .nth(pick % orders.len())
            .map(|(id, order)| (id.clone(), order.clone()))
    }

    fn snapshot(&self, instrument: &Instrument) -> MarketSnapshot {
        MarketSnapshot {
            instrument: Some(InstrumentInfo {
                code: instrument.code.clone(),
                name: "x".into(),
                board: instrument.board,
                risk_level: 3,
            }),
            prev_close: Some(instrument.prev_close),
            day_closed: self.closed_days.contains(&self.day),
        }
    }

    /// Turns an action into a command against the current state (None: nothing sensible to send).
    fn command(&mut self, action: &Action) -> Option<AccountCommand> {
        Some(match *action {
            Action::Deposit { fen } => {
                let bank_ref = BankRef::parse(&self.fresh("D")).unwrap();
                AccountCommand::Deposit {
                    amount_cny: Decimal::new(fen, 2),
                    bank_ref,
                }
            }
            Action::Withdraw { fen } => {
                let bank_ref = BankRef::parse(&self.fresh("W")).unwrap();
                self.bank_refs.push(bank_ref.clone());
                AccountCommand::Withdraw {
                    amount_cny: Decimal::new(fen, 2),
                    bank_ref,
                }
            }
            Action::BankAnswer { pick, confirm } => {
                let bank_ref = self.bank_refs.get(pick % self.bank_refs.len().max(1))?.clone();
                if confirm {
                    AccountCommand::ConfirmWithdrawal { bank_ref }
                } else {
                    AccountCommand::FailWithdrawal { bank_ref }
                }
            }
            Action::Buy {
                instrument,
                lots,
                offset_bp,
                odd,
            } => {
                let order_id = OrderId::parse(&self.fresh("B")).unwrap();
                let info = &self.instruments[instrument];
                let board = self.rules.board(info.board);
                let quantity = board.min_quantity + (lots - 1) * board.step_quantity + u64::from(odd) * 7;
                let price = round_to_fen(info.prev_close * (Decimal::ONE + Decimal::new(offset_bp, 4)));
                let order = PlaceOrder {
                    order_id,
                    instrument: info.code.clone(),
                    side: Side::Buy,
                    quantity,
                    price: price.max(Decimal::new(1, 2)),
                    trade_date: self.day,
                    market: self.snapshot(info),
                };
                AccountCommand::PlaceOrder(order)
            }
            Action::Sell {
                instrument,
                percent,
                offset_bp,
                whole,
            } => {
                let order_id = OrderId::parse(&self.fresh("S")).unwrap();
                let info = &self.instruments[instrument];
                let sellable = self
                    .account
                    .positions()
                    .get(&info.code)
                    .map_or(0, |p| p.sellable_on(self.day));
                let board = self.rules.board(info.board);
                let quantity = if whole {
                    sellable.max(1)
                } else {
                    let wanted = (sellable * percent / 100).max(board.min_quantity);
                    board.min_quantity + (wanted - board.min_quantity) / board.step_quantity * board.step_quantity
                };
                let price = round_to_fen(info.prev_close * (Decimal::ONE + Decimal::new(offset_bp, 4)));
                let order = PlaceOrder {
                    order_id,
                    instrument: info.code.clone(),
                    side: Side::Sell,
                    quantity,
                    price: price.max(Decimal::new(1, 2)),
                    trade_date: self.day,
                    market: self.snapshot(info),
                };
                AccountCommand::PlaceOrder(order)
            }
            Action::Fill {
                pick,
                percent,
                ticks,
                tiny,
                repeat,
            } => {
                if repeat {
                    let (order_id, exec_id) = self.exec_ids.get(pick % self.exec_ids.len().max(1))?.clone();
                    return Some(AccountCommand::BookFill {
                        order_id,
                        exec_id,
                        quantity: 1,
                        price: Decimal::ONE,
                    });
                }
                let (order_id, order) = self.open_order(pick)?;
                let remaining = order.quantity - order.filled_quantity;
                let quantity = if tiny { 1 } else { (remaining * percent / 100).max(1) };
                // Mostly at or better than the limit; a negative tick count crosses it and is refused.
                let improvement = Decimal::new(ticks, 2);
                let price = match order.side {
                    Side::Buy => order.limit_price - improvement,
                    Side::Sell => order.limit_price + improvement,
                };
                let exec_id = ExecId::parse(&self.fresh("E")).unwrap();
                self.exec_ids.push((order_id.clone(), exec_id.clone()));
                AccountCommand::BookFill {
                    order_id,
                    exec_id,
                    quantity,
                    price: price.max(Decimal::new(1, 2)),
                }
            }
            Action::Cancel { pick } => AccountCommand::RequestCancel {
                order_id: self.open_order(pick)?.0,
            },
            Action::ConfirmCancel { pick } => AccountCommand::ConfirmCancel {
                order_id: self.open_order(pick)?.0,
            },
            Action::Reject { pick } => AccountCommand::RejectOrder {
                order_id: self.open_order(pick)?.0,
                reason: "exchange".into(),
            },
            Action::EndOfDay => AccountCommand::ExpireOrders { trade_date: self.day },
            Action::Freeze => AccountCommand::Freeze {
                reason: "review".into(),
            },
            Action::Unfreeze => AccountCommand::Unfreeze { reason: "done".into() },
        })
    }

    fn step(&mut self, action: &Action) -> Result<(), TestCaseError> {
        let Some(command) = self.command(action) else {
            return Ok(());
        };
        let end_of_day = matches!(command, AccountCommand::ExpireOrders { .. });
        let before = self.account.clone();
        match self.account.decide(command.clone(), &self.rules) {
            Ok(events) => self.record(events),
            Err(rejection) => {
                prop_assert_eq!(
                    &self.account,
                    &before,
                    "refused {:?} ({}) changed the state",
                    command,
                    rejection
                );
            }
        }
        if end_of_day {
            // The day closes; the one before is settled; trading moves to the next date.
            self.closed_days.push(self.day);
            let settle = AccountCommand::SettleTrades {
                trade_date: self.day.pred_opt().unwrap(),
            };
            let settled = self
                .account
                .decide(settle, &self.rules)
                .map_err(|r| TestCaseError::fail(r.to_string()))?;
            self.record(settled);
            self.day = self.day.succ_opt().unwrap();
        }
        self.check()
            .map_err(|why| TestCaseError::fail(format!("after {command:?}: {why}")))
    }

    /// The invariants, with cash and positions summed here from the events.
    fn check(&self) -> Result<(), String> {
        let mut totals = EventTotals::default();
        let mut cash_cny = Decimal::ZERO;
        let mut held: BTreeMap<&InstrumentCode, i128> = BTreeMap::new();
        let mut per_order: BTreeMap<&OrderId, (Side, Decimal, FeeBreakdown)> = BTreeMap::new();
        for event in &self.events {
            totals.add(event);
            match event {
                AccountEvent::CashDeposited { amount_cny, .. } => cash_cny += amount_cny,
                AccountEvent::WithdrawalConfirmed { amount_cny, .. } => cash_cny -= amount_cny,
                AccountEvent::FillBooked {
                    order_id,
                    side,
                    instrument,
                    quantity,
                    value_cny,
                    fees,
                    ..
                } => {
                    if !fees.is_non_negative() {
                        return Err(format!("negative fee increment {fees:?}"));
                    }
                    let quantity = i128::from(*quantity);
                    match side {
                        Side::Buy => {
                            cash_cny -= value_cny + fees.total_cny();
                            *held.entry(instrument).or_default() += quantity;
                        }
                        Side::Sell => {
                            cash_cny += value_cny - fees.total_cny();
                            *held.entry(instrument).or_default() -= quantity;
                        }
                    }
                    let entry = per_order
                        .entry(order_id)
                        .or_insert((*side, Decimal::ZERO, FeeBreakdown::default()));
                    entry.1 += value_cny;
                    entry.2 = entry.2.plus(fees);
                }
                _ => {}
            }
        }
        let cash = self.account.cash();
        if cash.available_cny + cash.frozen_cny != cash_cny {
            return Err(format!("available + frozen {:?} != cash from events {cash_cny}", cash));
        }
        for (instrument, quantity) in held {
            let position = self
                .account
                .positions()
                .get(instrument)
                .map_or(0, |p| i128::from(p.quantity));
            if position != quantity {
                return Err(format!("{instrument}: position {position} != bought - sold {quantity}"));
            }
        }
        for (instrument, position) in self.account.positions() {
            if position.sellable_on(self.day) > position.quantity || position.frozen > position.quantity {
                return Err(format!("{instrument}: {position:?}"));
            }
        }
        // The cumulative rule: what an order's fills paid is the fee on its whole filled value.
        for (order_id, (side, value, paid)) in per_order {
            let expected = cumulative_fees(&self.rules.fees, side, value);
            if paid != expected {
                return Err(format!(
                    "order {order_id}: fills paid {paid:?}, the whole value {value} costs {expected:?}"
                ));
            }
        }
        check_account(&self.account, &totals)
    }
}

#[test]
fn invariants_hold_after_every_step_of_random_sequences() {
    static FILLS: AtomicU64 = AtomicU64::new(0);
    static STEPS: AtomicU64 = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let initial_fen = prop_oneof![1i64..=200_000, 200_000i64..=30_000_000];
    let result = runner.run(
        &(initial_fen, prop::collection::vec(action(), 1..=MAX_STEPS)),
        |(initial_fen, actions)| {
            let mut world = World::new(initial_fen);
            for action in &actions {
                world.step(action)?;
                STEPS.fetch_add(1, Ordering::Relaxed);
            }
            FILLS.fetch_add(world.fills_booked, Ordering::Relaxed);
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let fills = FILLS.load(Ordering::Relaxed);
    let steps = STEPS.load(Ordering::Relaxed);
    eprintln!("{fills} fills booked in {steps} steps over {CASES} sequences");
    // The generator must really exercise fills, not only refusals.
    assert!(
        fills > u64::from(CASES) * 2,
        "only {fills} fills booked in {steps} steps"
    );
}
