//! The account's pure work, each measured alone (`cargo bench -p ledger-domain`):
//! the pre-trade check of an order (a buy, and a sell against a held position),
//! the fee computation of a fill, and applying a fill's events to the state.
//!
//! The seed's risk-check budget is 50 ms; the goal here is a p99 of 50 µs for the
//! check itself, so that the check is never what a command waits for.

use std::hint::black_box;

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ledger_domain::fees::cumulative_fees;
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::{Account, AccountCommand, Board, InstrumentInfo, MarketRules, MarketSnapshot, PlaceOrder, Side};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn trade_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 4).expect("a date")
}

fn id<T>(parse: fn(&str) -> Result<T, ledger_domain::ids::IdError>, text: &str) -> T {
    parse(text).expect("a valid id")
}

fn order(order_id: &str, side: Side) -> AccountCommand {
    let code = id(InstrumentCode::parse, "601398.SH");
    AccountCommand::PlaceOrder(PlaceOrder {
        order_id: id(OrderId::parse, order_id),
        instrument: code.clone(),
        side,
        quantity: 100,
        price: dec!(10.00),
        trade_date: trade_date(),
        market: MarketSnapshot {
            instrument: Some(InstrumentInfo {
                code,
                name: "ICBC".to_owned(),
                board: Board::Main,
                risk_level: 1,
            }),
            prev_close: Some(dec!(10.00)),
            day_closed: false,
        },
    })
}

/// An opened account with cash and 100 shares, bought and settled (T+1), so that they
/// may be sold.
fn account(rules: &MarketRules) -> Account {
    let mut account = Account::default();
    let commands = [
        AccountCommand::Open {
            account_id: id(AccountId::parse, "A0001"),
            customer_name: "Bench".to_owned(),
            id_number: "110101199001011234".to_owned(),
            risk_level: 3,
        },
        AccountCommand::Deposit {
            amount_cny: dec!(400000.00),
            bank_ref: id(BankRef::parse, "B1"),
        },
        order("O-HELD", Side::Buy),
        AccountCommand::BookFill {
            order_id: id(OrderId::parse, "O-HELD"),
            exec_id: id(ExecId::parse, "E-HELD"),
            quantity: 100,
            price: dec!(10.00),
        },
        AccountCommand::SettleTrades {
            trade_date: trade_date(),
        },
    ];
    for command in commands {
        for event in account.decide(command, rules).expect("the set-up is accepted") {
            account.apply(event);
        }
    }
    account
}

fn pre_trade_check(c: &mut Criterion) {
    let rules = MarketRules::china_a_share().expect("the built-in rules");
    let account = account(&rules);
    let buy = order("O-BUY", Side::Buy);
    let sell = order("O-SELL", Side::Sell);
    // Timing a refusal would measure a shorter path than the check.
    for accepted in [&buy, &sell] {
        account
            .decide(accepted.clone(), &rules)
            .expect("the benched order is accepted");
    }
    c.bench_function("pre_trade_check/buy", |b| {
        b.iter(|| black_box(account.decide(black_box(buy.clone()), &rules)))
    });
    c.bench_function("pre_trade_check/sell_held", |b| {
        b.iter(|| black_box(account.decide(black_box(sell.clone()), &rules)))
    });
}

fn fees(c: &mut Criterion) {
    let rules = MarketRules::china_a_share().expect("the built-in rules");
    let value_cny: Decimal = dec!(123456.78);
    c.bench_function("fees/cumulative_sell", |b| {
        b.iter(|| black_box(cumulative_fees(&rules.fees, Side::Sell, black_box(value_cny))))
    });
}

fn apply(c: &mut Criterion) {
    let rules = MarketRules::china_a_share().expect("the built-in rules");
    let mut placed = account(&rules);
    for event in placed.decide(order("O-FILL", Side::Buy), &rules).expect("accepted") {
        placed.apply(event);
    }
    let fill = AccountCommand::BookFill {
        order_id: id(OrderId::parse, "O-FILL"),
        exec_id: id(ExecId::parse, "E-FILL"),
        quantity: 100,
        price: dec!(10.00),
    };
    let events = placed.decide(fill, &rules).expect("the fill is accepted");
    c.bench_function("apply/full_fill", |b| {
        b.iter_batched(
            || (placed.clone(), events.clone()),
            |(mut account, events)| {
                for event in events {
                    account.apply(event);
                }
                account
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, pre_trade_check, fees, apply);
criterion_main!(benches);
