//! `AccountSnapshot`: the account's state as versioned plain data.
//!
//! Accounts built by real command sequences survive the round trip through JSON
//! unchanged, and the restored account decides every next command exactly as
//! the original does, refusals included. A snapshot of another version, or of a
//! state no events can reach, is refused. (The property tests also round-trip
//! the account before every one of their random commands.)

use cqrs_es::Aggregate;
use ledger_domain::account::{AccountCommand, SnapshotError, ACCOUNT_SNAPSHOT_VERSION};
use ledger_domain::ids::{BankRef, ExecId};
use ledger_domain::{Account, AccountSnapshot, Board, Side};
use rust_decimal_macros::dec;

mod common;
use common::*;

/// The account after `commands`, each of which must be accepted.
fn run(commands: &[AccountCommand]) -> Account {
    let mut account = Account::default();
    for command in commands {
        let events = account
            .decide(command.clone(), &rules())
            .unwrap_or_else(|rejection| panic!("{command:?} was refused: {rejection}"));
        for event in events {
            account.apply(event);
        }
    }
    account
}

/// The account read back from its snapshot written as JSON.
fn restored(account: &Account) -> Account {
    let json = serde_json::to_string(&account.to_snapshot()).unwrap();
    let snapshot: AccountSnapshot = serde_json::from_str(&json).unwrap();
    Account::from_snapshot(snapshot).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

/// Both accounts decide each command alike; the accepted ones are applied to
/// both, so later commands meet the state the earlier ones left.
fn assert_decide_alike(mut original: Account, mut copy: Account, next: &[AccountCommand]) {
    for command in next {
        let expected = original.decide(command.clone(), &rules());
        assert_eq!(copy.decide(command.clone(), &rules()), expected, "after {command:?}");
        for event in expected.unwrap_or_default() {
            original.apply(event.clone());
            copy.apply(event);
        }
        assert_eq!(copy, original, "after {command:?}");
    }
}

/// Every prefix of `commands` round-trips, and its restored account decides `next` as the original.
fn assert_every_step_round_trips(commands: &[AccountCommand], next: &[AccountCommand]) {
    for steps in 0..=commands.len() {
        let original = run(&commands[..steps]);
        let copy = restored(&original);
        assert_eq!(copy, original, "after {steps} command(s)");
        assert_decide_alike(original, copy, next);
    }
}

/// A trading day after a buy yesterday: a partly filled buy with a cancel
/// requested, a partly filled sell, and a withdrawal pending.
fn trading_day() -> Vec<AccountCommand> {
    vec![
        open(3, "Wang Fang"),
        deposit(dec!(100000.00), "DEP-1"),
        place(on_day(order("B0", Side::Buy, 200, dec!(10.00)), prev_day())),
        fill("B0", "E-B0", 200, dec!(10.00)),
        buy("O1", 300, dec!(10.00)),
        fill("O1", "E1", 100, dec!(10.00)),
        withdraw(dec!(1000.00), "W-1"),
        request_cancel("O1"),
        sell("S0", 100, dec!(10.00)),
        fill("S0", "E-S0", 40, dec!(10.01)),
    ]
}

/// Shares bought at 1.00 yesterday and settled, then a sell whose first one-share
/// fill costs more in fees than it brings (its fee cover pays), and a freeze.
fn cheap_sell_with_cover() -> Vec<AccountCommand> {
    let yesterday = |order| on_day(on_board(order, Board::Main, dec!(1.00)), prev_day());
    let today_at_1 = |order| on_board(order, Board::Main, dec!(1.00));
    vec![
        open(3, "Li Lei"),
        deposit(dec!(5000.00), "DEP-1"),
        place(yesterday(order("B1", Side::Buy, 1000, dec!(1.00)))),
        fill("B1", "E-B1", 1000, dec!(1.00)),
        AccountCommand::SettleTrades { trade_date: prev_day() },
        place(today_at_1(order("S1", Side::Sell, 1000, dec!(1.00)))),
        fill("S1", "E-S1a", 1, dec!(1.00)),
        fill("S1", "E-S1b", 500, dec!(1.00)),
        AccountCommand::Freeze {
            reason: "AML review".into(),
        },
    ]
}

#[test]
fn a_trading_day_round_trips_and_decides_alike_at_every_step() {
    let next = vec![
        fill("O1", "E1", 100, dec!(10.00)),
        buy("O1", 100, dec!(10.00)),
        withdraw(dec!(10.00), "W-1"),
        sell("S1", 100, dec!(10.00)),
        fill("O1", "E2", 150, dec!(9.99)),
        confirm_cancel("O1"),
        confirm_cancel("O1"),
        AccountCommand::ConfirmWithdrawal { bank_ref: bref("W-1") },
        AccountCommand::FailWithdrawal { bank_ref: bref("W-X") },
        AccountCommand::ExpireOrders { trade_date: today() },
        AccountCommand::SettleTrades { trade_date: today() },
        withdraw(dec!(98000.00), "W-2"),
        AccountCommand::Freeze { reason: "check".into() },
        buy("O2", 100, dec!(10.00)),
    ];
    assert_every_step_round_trips(&trading_day(), &next);
}

#[test]
fn a_sell_with_its_fee_cover_round_trips_and_decides_alike_at_every_step() {
    let next = vec![
        fill("S1", "E-S1a", 1, dec!(1.00)),
        withdraw(dec!(10.00), "W-1"),
        AccountCommand::Unfreeze {
            reason: "cleared".into(),
        },
        fill("S1", "E-S1c", 1, dec!(1.00)),
        fill("S1", "E-S1d", 498, dec!(1.00)),
        sell("S2", 100, dec!(10.00)),
        AccountCommand::SettleTrades { trade_date: today() },
        withdraw(dec!(4900.00), "W-1"),
    ];
    assert_every_step_round_trips(&cheap_sell_with_cover(), &next);
}

#[test]
fn the_snapshot_is_versioned_plain_data_with_sorted_sets() {
    let account = run(&trading_day());
    let snapshot = account.to_snapshot();
    assert_eq!(snapshot.version, ACCOUNT_SNAPSHOT_VERSION);
    assert_eq!(ACCOUNT_SNAPSHOT_VERSION, 1);
    let json: serde_json::Value = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["version"], 1);
    // O1 reserved 3000.00 + fees 5.19 and its first 100 shares used 1000.00 + 5.06:
    // 2000.13 still frozen for it, and 1000.00 for the pending withdrawal.
    assert_eq!(json["cash"]["frozen_cny"], "3000.13");
    assert_eq!(json["used_bank_refs"], serde_json::json!(["DEP-1", "W-1"]));
    assert_eq!(json["used_order_ids"], serde_json::json!(["B0", "O1", "S0"]));
    // Sets are written sorted, whatever order the account's hash sets hold them in.
    assert_eq!(json["booked_exec_ids"], serde_json::json!(["E-B0", "E-S0", "E1"]));
    assert_eq!(restored(&account).to_snapshot(), snapshot);
}

#[test]
fn the_borrowed_view_is_spelled_exactly_as_the_snapshot() {
    for account in [Account::default(), run(&trading_day())] {
        assert_eq!(
            serde_json::to_string(&account.snapshot_view()).unwrap(),
            serde_json::to_string(&account.to_snapshot()).unwrap()
        );
    }
}

#[test]
fn an_unopened_account_round_trips() {
    let account = Account::default();
    assert_eq!(restored(&account), account);
}

#[test]
fn another_version_is_refused() {
    let mut snapshot = run(&trading_day()).to_snapshot();
    snapshot.version = 2;
    assert_eq!(
        Account::from_snapshot(snapshot),
        Err(SnapshotError::UnknownVersion { found: 2, supported: 1 })
    );
}

#[test]
fn an_unknown_field_is_refused() {
    let mut json = serde_json::to_value(run(&trading_day()).to_snapshot()).unwrap();
    json["margin_cny"] = serde_json::json!("0");
    assert!(serde_json::from_value::<AccountSnapshot>(json).is_err());
}

fn assert_inconsistent(change: impl FnOnce(&mut AccountSnapshot)) {
    let mut snapshot = run(&trading_day()).to_snapshot();
    change(&mut snapshot);
    match Account::from_snapshot(snapshot) {
        Err(SnapshotError::Inconsistent(why)) => assert!(!why.is_empty()),
        other => panic!("expected an inconsistent snapshot, got {other:?}"),
    }
}

#[test]
fn states_no_events_can_reach_are_refused() {
    assert_inconsistent(|s| s.cash.frozen_cny += dec!(0.01));
    assert_inconsistent(|s| s.cash.available_cny = dec!(-1.00));
    assert_inconsistent(|s| s.cash.unsettled_cny += dec!(1.00));
    assert_inconsistent(|s| s.customer.as_mut().unwrap().risk_level = 9);
    assert_inconsistent(|s| s.customer = None);
    assert_inconsistent(|s| {
        s.used_bank_refs.remove(&BankRef::parse("W-1").unwrap());
    });
    assert_inconsistent(|s| {
        s.booked_exec_ids.remove(&ExecId::parse("E1").unwrap());
    });
    assert_inconsistent(|s| {
        s.used_order_ids.remove(&oid("O1"));
    });
    assert_inconsistent(|s| s.open_orders.get_mut(&oid("O1")).unwrap().order_id = oid("O9"));
    assert_inconsistent(|s| {
        let order = s.open_orders.get_mut(&oid("O1")).unwrap();
        order.filled_quantity = order.quantity + 100;
    });
    assert_inconsistent(|s| s.open_orders.get_mut(&oid("S0")).unwrap().cover_cny = dec!(-1.00));
    assert_inconsistent(|s| s.positions.get_mut(&code(Board::Main)).unwrap().frozen += 1);
}

/// A read model saves an account between any two events, also between the events
/// of one command (a fill's `FillBooked`, then its `OrderCompleted`): every such
/// state must restore.
#[test]
fn a_state_between_the_events_of_one_command_restores() {
    let mut account = Account::default();
    let mut checked = 0;
    for command in trading_day() {
        let events = account
            .decide(command.clone(), &rules())
            .unwrap_or_else(|rejection| panic!("{command:?} was refused: {rejection}"));
        for event in events {
            account.apply(event);
            assert_eq!(restored(&account), account);
            checked += 1;
        }
    }
    assert!(checked > 10, "the trading day wrote events ({checked})");
}
