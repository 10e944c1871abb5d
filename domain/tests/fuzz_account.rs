//! Fuzzing the account aggregate's `decide` and `apply` with arbitrary command
//! sequences: not the state-steered, realistic sequences of properties.rs, but
//! any value the types allow (zero, negative and huge decimals, every scale,
//! any quantity up to `u64::MAX`, any risk level, ids that collide, commands in
//! any order; only the market snapshot holds what the engine can give it). For
//! every step:
//!
//! * `decide` never panics: it answers events or a refusal;
//! * a refusal has a code and a sentence, and leaves the account as it was;
//! * applying the decided events never panics, and the invariants of DESIGN.md
//!   hold afterwards (`invariants::check_account` against the sums of the
//!   accepted events).
//!
//! CI runs `CASES` sequences from a fixed seed; `LEDGER_FUZZ_CASES=<n>` runs more,
//! `PROPTEST_RNG_SEED=<u64>` others (docs/operations.md, "Testing beyond CI").
//! A failure prints its shrunk sequence: add it to this file as a test of its own.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use ledger_domain::account::{AccountCommand, AccountEvent, MarketSnapshot, PlaceOrder};
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::invariants::{check_account, EventTotals};
use ledger_domain::{Account, Board, InstrumentInfo, MarketRules, Side};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;

/// Sequences CI runs (about 15 s in a debug build), and commands in each at most.
const CASES: u32 = 2_000;
const MAX_STEPS: usize = 40;

/// A runner driven by hand has no source file to save failures beside: a failure is
/// printed, shrunk, to be added to the corpus.
fn runner() -> TestRunner {
    TestRunner::new(Config {
        failure_persistence: None,
        ..ledger_testkit::fuzz_config(CASES)
    })
}

// ---------------------------------------------------------------------------
// Values: any the types allow, the ordinary ones more often
// ---------------------------------------------------------------------------

fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        6 => (1i64..=100_000_000).prop_map(|fen| Decimal::new(fen, 2)),
        1 => Just(Decimal::ZERO),
        1 => Just(-Decimal::ZERO),
        1 => (-100_000_000i64..0).prop_map(|fen| Decimal::new(fen, 2)),
        2 => (any::<i64>(), 0u32..=28).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale)),
        1 => (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), 0u32..=28)
            .prop_map(|(lo, mid, hi, negative, scale)| Decimal::from_parts(lo, mid, hi, negative, scale)),
        1 => Just(Decimal::MAX),
        1 => Just(Decimal::MIN),
    ]
}

/// Prices a few orders, fills and previous closes share, so that orders meet their
/// limits and fills their orders; any decimal now and then.
fn price() -> impl Strategy<Value = Decimal> {
    let grid = pick(vec![100i64, 512, 1_000, 4_893, 16_880]).prop_map(|fen| Decimal::new(fen, 2));
    prop_oneof![6 => grid, 2 => decimal()]
}

fn quantity() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => (1u64..=50).prop_map(|lots| lots * 100),
        2 => 0u64..=1_000,
        1 => any::<u64>(),
        1 => Just(u64::MAX),
    ]
}

fn pick<T: Clone + std::fmt::Debug + 'static>(from: Vec<T>) -> impl Strategy<Value = T> {
    proptest::sample::select(from)
}

fn account_id() -> impl Strategy<Value = AccountId> {
    pick(vec!["F1", "F2"]).prop_map(|id| AccountId::parse(id).expect("a valid id"))
}

fn order_id() -> impl Strategy<Value = OrderId> {
    pick(vec!["O1", "O2", "O3", "O4"]).prop_map(|id| OrderId::parse(id).expect("a valid id"))
}

fn exec_id() -> impl Strategy<Value = ExecId> {
    pick(vec!["E1", "E2", "E3", "E4", "E5", "E6"]).prop_map(|id| ExecId::parse(id).expect("a valid id"))
}

fn bank_ref() -> impl Strategy<Value = BankRef> {
    pick(vec!["B1", "B2", "B3"]).prop_map(|id| BankRef::parse(id).expect("a valid id"))
}

fn instrument() -> impl Strategy<Value = InstrumentCode> {
    pick(vec!["600000.SH", "688981.SH", "300750.SZ", "600234.SH"])
        .prop_map(|code| InstrumentCode::parse(code).expect("a valid code"))
}

fn trade_date() -> impl Strategy<Value = NaiveDate> {
    (0u64..10).prop_map(|days| NaiveDate::from_ymd_opt(2024, 3, 4).expect("a date") + chrono::Days::new(days))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("Li Lei".to_owned()),
        1 => Just(String::new()),
        1 => Just("   ".to_owned()),
        1 => ".{0,40}",
    ]
}

fn board() -> impl Strategy<Value = Board> {
    pick(vec![Board::Main, Board::Chinext, Board::Star, Board::St])
}

fn snapshot() -> impl Strategy<Value = MarketSnapshot> {
    let risk_level = prop_oneof![6 => 1u8..=5, 1 => any::<u8>()];
    let info = (instrument(), text(), board(), risk_level).prop_map(|(code, name, board, risk_level)| InstrumentInfo {
        code,
        name,
        board,
        risk_level,
    });
    // A previous close is what the instrument aggregate accepted (above 0, at most
    // `max_price`, on the tick): the engine reads the snapshot from instruments,
    // it is not the client's input.
    let prev_close = prop_oneof![
        4 => pick(vec![100i64, 512, 1_000, 4_893, 16_880]).prop_map(|fen| Decimal::new(fen, 2)),
        1 => (1i64..=100_000_000).prop_map(|fen| Decimal::new(fen, 2)),
    ];
    (
        proptest::option::weighted(0.9, info),
        proptest::option::weighted(0.9, prev_close),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(instrument, prev_close, day_closed)| MarketSnapshot {
            instrument,
            prev_close,
            day_closed,
        })
}

fn place_order() -> impl Strategy<Value = AccountCommand> {
    (
        order_id(),
        instrument(),
        pick(vec![Side::Buy, Side::Sell]),
        quantity(),
        prop_oneof![3 => Just(None), 1 => price().prop_map(Some)],
        trade_date(),
        snapshot(),
    )
        .prop_map(
            |(order_id, instrument, side, quantity, price, trade_date, mut market)| {
                // The engine looks the snapshot up by the order's instrument.
                if let Some(info) = &mut market.instrument {
                    info.code = instrument.clone();
                }
                // Mostly at the previous close, so that the order passes the price checks.
                let price = price.or(market.prev_close).unwrap_or(Decimal::TEN);
                AccountCommand::PlaceOrder(PlaceOrder {
                    order_id,
                    instrument,
                    side,
                    quantity,
                    price,
                    trade_date,
                    market,
                })
            },
        )
}

fn command() -> impl Strategy<Value = AccountCommand> {
    prop_oneof![
        1 => (account_id(), text(), text(), any::<u8>()).prop_map(|(account_id, customer_name, id_number, risk_level)| {
            AccountCommand::Open { account_id, customer_name, id_number, risk_level }
        }),
        3 => (decimal(), bank_ref()).prop_map(|(amount_cny, bank_ref)| AccountCommand::Deposit { amount_cny, bank_ref }),
        2 => (decimal(), bank_ref()).prop_map(|(amount_cny, bank_ref)| AccountCommand::Withdraw { amount_cny, bank_ref }),
        1 => bank_ref().prop_map(|bank_ref| AccountCommand::ConfirmWithdrawal { bank_ref }),
        1 => bank_ref().prop_map(|bank_ref| AccountCommand::FailWithdrawal { bank_ref }),
        5 => place_order(),
        1 => (order_id(), text()).prop_map(|(order_id, reason)| AccountCommand::RejectOrder { order_id, reason }),
        5 => (order_id(), exec_id(), quantity(), price()).prop_map(|(order_id, exec_id, quantity, price)| {
            AccountCommand::BookFill { order_id, exec_id, quantity, price }
        }),
        1 => order_id().prop_map(|order_id| AccountCommand::RequestCancel { order_id }),
        1 => order_id().prop_map(|order_id| AccountCommand::ConfirmCancel { order_id }),
        1 => trade_date().prop_map(|trade_date| AccountCommand::ExpireOrders { trade_date }),
        1 => trade_date().prop_map(|trade_date| AccountCommand::SettleTrades { trade_date }),
        1 => text().prop_map(|reason| AccountCommand::Freeze { reason }),
        1 => text().prop_map(|reason| AccountCommand::Unfreeze { reason }),
    ]
}

/// 1,000 shares of 600000.SH bought the trading day before the sequence's dates, so
/// that sells can fill.
fn portfolio() -> Vec<AccountCommand> {
    let id = |text: &str| OrderId::parse(text).expect("a valid id");
    let close = Decimal::new(512, 2);
    let instrument = InstrumentCode::parse("600000.SH").expect("a valid code");
    vec![
        AccountCommand::PlaceOrder(PlaceOrder {
            order_id: id("O0"),
            instrument: instrument.clone(),
            side: Side::Buy,
            quantity: 1_000,
            price: close,
            trade_date: NaiveDate::from_ymd_opt(2024, 3, 1).expect("a date"),
            market: MarketSnapshot {
                instrument: Some(InstrumentInfo {
                    code: instrument,
                    name: "Main board stock".into(),
                    board: Board::Main,
                    risk_level: 1,
                }),
                prev_close: Some(close),
                day_closed: false,
            },
        }),
        AccountCommand::BookFill {
            order_id: id("O0"),
            exec_id: ExecId::parse("E0").expect("a valid id"),
            quantity: 1_000,
            price: close,
        },
    ]
}

/// Mostly an account opened with money (and often shares) first, so that the rest is
/// not all `unknown_account`.
fn sequence() -> impl Strategy<Value = Vec<(AccountCommand, bool)>> {
    let opened = (1_000_000i64..=1_000_000_000, any::<bool>()).prop_map(|(fen, holds_shares)| {
        let mut start = vec![
            AccountCommand::Open {
                account_id: AccountId::parse("F1").expect("a valid id"),
                customer_name: "Li Lei".into(),
                id_number: "110101199001011234".into(),
                risk_level: 5,
            },
            AccountCommand::Deposit {
                amount_cny: Decimal::new(fen, 2),
                bank_ref: BankRef::parse("B0").expect("a valid id"),
            },
        ];
        if holds_shares {
            start.extend(portfolio());
        }
        start
    });
    let start = prop_oneof![4 => opened, 1 => Just(Vec::new())];
    let step = (command(), proptest::bool::weighted(0.5));
    (start, prop::collection::vec(step, 1..=MAX_STEPS))
        .prop_map(|(start, rest)| start.into_iter().map(|command| (command, false)).chain(rest).collect())
}

/// A command aimed at the account as it is now: a fill of an open order at its limit
/// and within its remainder (a new or an already booked execution id), a sell of
/// shares held. Arbitrary values rarely meet the
/// state; half the steps are aimed, so that sells fill and orders end filled.
fn aim(account: &Account, command: AccountCommand) -> AccountCommand {
    match command {
        AccountCommand::BookFill {
            order_id,
            exec_id,
            quantity,
            price,
        } => match account.open_orders().values().find(|o| o.remaining_quantity() > 0) {
            Some(order) => AccountCommand::BookFill {
                quantity: quantity.clamp(1, order.remaining_quantity()),
                price: order.limit_price,
                order_id: order.order_id.clone(),
                exec_id,
            },
            _ => AccountCommand::BookFill {
                order_id,
                exec_id,
                quantity,
                price,
            },
        },
        AccountCommand::PlaceOrder(mut order) if order.side == Side::Sell => {
            if let Some((instrument, position)) = account.positions().iter().find(|(_, p)| p.quantity > 0) {
                order.instrument = instrument.clone();
                order.quantity = order.quantity.clamp(1, position.quantity);
                if let Some(info) = &mut order.market.instrument {
                    info.code = instrument.clone();
                }
            }
            AccountCommand::PlaceOrder(order)
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------
// The target
// ---------------------------------------------------------------------------

/// Commands accepted with events, by kind: the target must reach deep states, not
/// only refusals.
#[derive(Default)]
struct Reached {
    orders: AtomicU64,
    sell_orders: AtomicU64,
    fills: AtomicU64,
    sell_fills: AtomicU64,
    withdrawals_confirmed: AtomicU64,
    settlements: AtomicU64,
}

impl Reached {
    fn count(&self, event: &AccountEvent) {
        let counter = match event {
            AccountEvent::OrderPlaced { side: Side::Sell, .. } => &self.sell_orders,
            AccountEvent::OrderPlaced { .. } => &self.orders,
            AccountEvent::FillBooked { side: Side::Sell, .. } => &self.sell_fills,
            AccountEvent::FillBooked { .. } => &self.fills,
            AccountEvent::WithdrawalConfirmed { .. } => &self.withdrawals_confirmed,
            AccountEvent::TradesSettled { .. } => &self.settlements,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn run_sequence(
    rules: &MarketRules,
    reached: &Reached,
    commands: Vec<(AccountCommand, bool)>,
) -> Result<(), TestCaseError> {
    let mut account = Account::default();
    let mut totals = EventTotals::default();
    for (step, (command, aimed)) in commands.into_iter().enumerate() {
        let command = if aimed { aim(&account, command) } else { command };
        let before = account.clone();
        let shown = format!("{command:?}");
        match account.decide(command, rules) {
            Ok(events) => {
                for event in events {
                    reached.count(&event);
                    totals.add(&event);
                    account.apply(event);
                }
                if let Err(why) = check_account(&account, &totals) {
                    return Err(TestCaseError::fail(format!("step {step}: {shown}: {why}")));
                }
            }
            Err(rejection) => {
                prop_assert!(!rejection.message.trim().is_empty(), "step {step}: a refusal says why");
                prop_assert_eq!(
                    &account,
                    &before,
                    "step {}: the refusal of {} changed the account",
                    step,
                    shown
                );
            }
        }
    }
    Ok(())
}

#[test]
fn decide_and_apply_hold_the_invariants_on_arbitrary_command_sequences() {
    let rules = MarketRules::china_a_share().expect("the built-in rules");
    let reached = Reached::default();
    let result = runner().run(&sequence(), |commands| run_sequence(&rules, &reached, commands));
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let reached = [
        ("buy orders placed", get(&reached.orders)),
        ("sell orders placed", get(&reached.sell_orders)),
        ("buy fills", get(&reached.fills)),
        ("sell fills", get(&reached.sell_fills)),
        ("withdrawals confirmed", get(&reached.withdrawals_confirmed)),
        ("settlements", get(&reached.settlements)),
    ];
    eprintln!("reached: {reached:?}");
    for (what, count) in reached {
        assert!(count >= 20, "too few {what}: {reached:?}");
    }
}
