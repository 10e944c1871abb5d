//! The account's pure work, each measured alone (`cargo bench -p ledger-domain`):
//! the pre-trade check of an order (a buy, and a sell against a held position),
//! the fee computation of a fill, and applying a fill's events to the state.
//!
//! The seed's risk-check budget is 50 ms; the goal here is a p99 of 50 µs for the
//! check itself, so that the check is never what a command waits for.

use std::hint::black_box;

use cqrs_es::Aggregate;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ledger_domain::fees::cumulative_fees;
use ledger_domain::{Account, AccountCommand, MarketRules, Side};
use rust_decimal_macros::dec;

// The account tests' commands and reference data: the orders are on the main board
// for their trade date, previous close 10.00.
#[path = "../tests/common/mod.rs"]
mod common;

use common::{buy, deposit, fill, open, rules, sell, today};

/// `account` after each command, every one of which must be accepted.
fn after(mut account: Account, commands: Vec<AccountCommand>, rules: &MarketRules) -> Account {
    for command in commands {
        for event in account.decide(command, rules).expect("the set-up is accepted") {
            account.apply(event);
        }
    }
    account
}

/// An opened account with cash and 100 shares, bought and settled (T+1), so that they
/// may be sold.
fn holding(rules: &MarketRules) -> Account {
    let commands = vec![
        open(3, "Bench"),
        deposit(dec!(400000.00), "B1"),
        buy("O-HELD", 100, dec!(10.00)),
        fill("O-HELD", "E-HELD", 100, dec!(10.00)),
        AccountCommand::SettleTrades { trade_date: today() },
    ];
    after(Account::default(), commands, rules)
}

fn pre_trade_check(c: &mut Criterion) {
    let rules = rules();
    let account = holding(&rules);
    let buy = buy("O-BUY", 100, dec!(10.00));
    let sell = sell("O-SELL", 100, dec!(10.00));
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
    let rules = rules();
    let value_cny = dec!(123456.78);
    c.bench_function("fees/cumulative_sell", |b| {
        b.iter(|| black_box(cumulative_fees(&rules.fees, Side::Sell, black_box(value_cny))))
    });
}

fn apply(c: &mut Criterion) {
    let rules = rules();
    let placed = after(holding(&rules), vec![buy("O-FILL", 100, dec!(10.00))], &rules);
    let events = placed
        .decide(fill("O-FILL", "E-FILL", 100, dec!(10.00)), &rules)
        .expect("the fill is accepted");
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
