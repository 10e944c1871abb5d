//! The Account aggregate, given/when/then with cqrs-es's TestFramework: one
//! test per rule and per refusal code, with the figures computed by hand.
//!
//! Fees of the default rules on a trade value v: commission 0.025 % (at least
//! 5.00), stamp duty 0.05 % on sells, transfer 0.001 %, handling 0.00341 %,
//! regulatory 0.002 %, each rounded half away from zero to 0.01.

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;
use ledger_domain::account::{AccountCommand, AccountEvent, CashDirection, MarketSnapshot, PlaceOrder};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::{Account, Board, InstrumentInfo, MarketRules, RejectCode, Rejection, Side};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

type Framework = TestFramework<Account>;

fn framework() -> Framework {
    TestFramework::with(MarketRules::china_a_share().unwrap())
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

fn oid(id: &str) -> OrderId {
    OrderId::parse(id).unwrap()
}

fn eid(id: &str) -> ExecId {
    ExecId::parse(id).unwrap()
}

fn bref(id: &str) -> BankRef {
    BankRef::parse(id).unwrap()
}

fn code(text: &str) -> InstrumentCode {
    InstrumentCode::parse(text).unwrap()
}

fn opened(risk_level: u8) -> AccountEvent {
    AccountEvent::AccountOpened {
        account_id: AccountId::parse("A1").unwrap(),
        customer_name: "Li Lei".into(),
        id_number: "110101199001011234".into(),
        risk_level,
    }
}

fn deposited(amount_cny: Decimal) -> AccountEvent {
    AccountEvent::CashDeposited {
        amount_cny,
        bank_ref: bref("D1"),
    }
}

fn funded(amount_cny: Decimal) -> Vec<AccountEvent> {
    vec![opened(3), deposited(amount_cny)]
}

fn market(board: Board, risk_level: u8, prev_close: Option<Decimal>) -> MarketSnapshot {
    MarketSnapshot {
        instrument: Some(InstrumentInfo {
            code: code("600000.SH"),
            name: "Test".into(),
            board,
            risk_level,
        }),
        prev_close,
        day_closed: false,
    }
}

fn order(id: &str, side: Side, quantity: u64, price: Decimal, trade_date: NaiveDate) -> PlaceOrder {
    PlaceOrder {
        order_id: oid(id),
        instrument: code("600000.SH"),
        side,
        quantity,
        price,
        trade_date,
        market: market(Board::Main, 1, Some(dec!(10.00))),
    }
}

fn buy(id: &str, quantity: u64, price: Decimal) -> AccountCommand {
    AccountCommand::PlaceOrder(order(id, Side::Buy, quantity, price, day(4)))
}

fn placed(
    id: &str,
    side: Side,
    quantity: u64,
    limit_price: Decimal,
    trade_date: NaiveDate,
    reserved_cny: Decimal,
) -> AccountEvent {
    AccountEvent::OrderPlaced {
        order_id: oid(id),
        instrument: code("600000.SH"),
        board: Board::Main,
        side,
        quantity,
        limit_price,
        trade_date,
        reserved_cny,
    }
}

fn fill(order_id: &str, exec_id: &str, quantity: u64, price: Decimal) -> AccountCommand {
    AccountCommand::BookFill {
        order_id: oid(order_id),
        exec_id: eid(exec_id),
        quantity,
        price,
    }
}

fn fees(
    commission: Decimal,
    stamp: Decimal,
    transfer: Decimal,
    handling: Decimal,
    regulatory: Decimal,
) -> FeeBreakdown {
    FeeBreakdown {
        commission_cny: commission,
        stamp_duty_cny: stamp,
        transfer_fee_cny: transfer,
        handling_fee_cny: handling,
        regulatory_fee_cny: regulatory,
    }
}

/// The rejection's code, or a panic naming what came instead.
fn refusal(framework: Framework, given: Vec<AccountEvent>, command: AccountCommand) -> (RejectCode, String) {
    match framework.given(given).when(command).inspect_result() {
        Err(Rejection { code, message }) => {
            assert!(message.len() > 10, "a refusal says why: {message:?}");
            (code, message)
        }
        Ok(events) => panic!("expected a refusal, got {events:?}"),
    }
}

fn events_of(given: Vec<AccountEvent>, command: AccountCommand) -> Vec<AccountEvent> {
    framework().given(given).when(command).inspect_result().unwrap()
}

/// The state after the events, for checks of balances.
fn state(events: Vec<AccountEvent>) -> Account {
    let mut account = Account::default();
    for event in events {
        cqrs_es::Aggregate::apply(&mut account, event);
    }
    account
}

// --- opening and cash --------------------------------------------------------

#[test]
fn an_account_opens_once() {
    framework()
        .given_no_previous_events()
        .when(AccountCommand::Open {
            account_id: AccountId::parse("A1").unwrap(),
            customer_name: "Li Lei".into(),
            id_number: "110101199001011234".into(),
            risk_level: 3,
        })
        .then_expect_events(vec![opened(3)]);
    let again = AccountCommand::Open {
        account_id: AccountId::parse("A1").unwrap(),
        customer_name: "Han Meimei".into(),
        id_number: "110101199202021234".into(),
        risk_level: 5,
    };
    assert_eq!(
        refusal(framework(), vec![opened(3)], again).0,
        RejectCode::AccountExists
    );
}

#[test]
fn every_command_but_open_needs_an_opened_account() {
    let commands = vec![
        AccountCommand::Deposit {
            amount_cny: dec!(1.00),
            bank_ref: bref("D1"),
        },
        AccountCommand::Withdraw {
            amount_cny: dec!(1.00),
            bank_ref: bref("W1"),
        },
        buy("O1", 100, dec!(10.00)),
        fill("O1", "E1", 100, dec!(10.00)),
        AccountCommand::RequestCancel { order_id: oid("O1") },
        AccountCommand::Freeze {
            reason: "review".into(),
        },
    ];
    for command in commands {
        assert_eq!(refusal(framework(), vec![], command).0, RejectCode::UnknownAccount);
    }
}

#[test]
fn a_deposit_raises_available_cash() {
    framework()
        .given(vec![opened(3)])
        .when(AccountCommand::Deposit {
            amount_cny: dec!(1500.00),
            bank_ref: bref("D1"),
        })
        .then_expect_events(vec![deposited(dec!(1500.00))]);
}

#[test]
fn large_cash_movements_are_flagged_not_refused() {
    // 500,000.00 is the threshold: at it, flagged; one fen below, not.
    framework()
        .given(vec![opened(3)])
        .when(AccountCommand::Deposit {
            amount_cny: dec!(500000.00),
            bank_ref: bref("D1"),
        })
        .then_expect_events(vec![
            deposited(dec!(500000.00)),
            AccountEvent::LargeCashMovementFlagged {
                direction: CashDirection::Deposit,
                amount_cny: dec!(500000.00),
                threshold_cny: dec!(500000.00),
                bank_ref: bref("D1"),
            },
        ]);
    framework()
        .given(vec![opened(3)])
        .when(AccountCommand::Deposit {
            amount_cny: dec!(499999.99),
            bank_ref: bref("D1"),
        })
        .then_expect_events(vec![AccountEvent::CashDeposited {
            amount_cny: dec!(499999.99),
            bank_ref: bref("D1"),
        }]);
    let events = events_of(
        funded(dec!(600000.00)),
        AccountCommand::Withdraw {
            amount_cny: dec!(550000.00),
            bank_ref: bref("W1"),
        },
    );
    assert!(matches!(
        events.as_slice(),
        [
            AccountEvent::WithdrawalRequested { .. },
            AccountEvent::LargeCashMovementFlagged {
                direction: CashDirection::Withdrawal,
                ..
            }
        ]
    ));
}

#[test]
fn bad_amounts_are_malformed() {
    for amount in [dec!(0), dec!(-5.00), dec!(1.001), dec!(100000000000.01)] {
        let deposit = AccountCommand::Deposit {
            amount_cny: amount,
            bank_ref: bref("D9"),
        };
        assert_eq!(
            refusal(framework(), vec![opened(3)], deposit).0,
            RejectCode::Malformed,
            "{amount}"
        );
    }
}

#[test]
fn a_bank_reference_is_used_once() {
    let again = AccountCommand::Deposit {
        amount_cny: dec!(10.00),
        bank_ref: bref("D1"),
    };
    assert_eq!(
        refusal(framework(), funded(dec!(100.00)), again).0,
        RejectCode::DuplicateBankRef
    );
}

#[test]
fn a_withdrawal_freezes_until_the_bank_answers() {
    let request = AccountCommand::Withdraw {
        amount_cny: dec!(40.00),
        bank_ref: bref("W1"),
    };
    let requested = AccountEvent::WithdrawalRequested {
        amount_cny: dec!(40.00),
        bank_ref: bref("W1"),
    };
    framework()
        .given(funded(dec!(100.00)))
        .when(request)
        .then_expect_events(vec![requested.clone()]);
    let mut given = funded(dec!(100.00));
    given.push(requested.clone());
    let cash = state(given.clone()).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(60.00), dec!(40.00)));

    framework()
        .given(given.clone())
        .when(AccountCommand::ConfirmWithdrawal { bank_ref: bref("W1") })
        .then_expect_events(vec![AccountEvent::WithdrawalConfirmed {
            amount_cny: dec!(40.00),
            bank_ref: bref("W1"),
        }]);
    let failed = events_of(given.clone(), AccountCommand::FailWithdrawal { bank_ref: bref("W1") });
    given.extend(failed);
    let cash = state(given).cash();
    assert_eq!(
        (cash.available_cny, cash.frozen_cny),
        (dec!(100.00), dec!(0)),
        "a failed withdrawal gives the cash back"
    );
}

#[test]
fn an_unknown_withdrawal_is_refused() {
    let confirm = AccountCommand::ConfirmWithdrawal { bank_ref: bref("W9") };
    assert_eq!(
        refusal(framework(), funded(dec!(100.00)), confirm).0,
        RejectCode::UnknownWithdrawal
    );
}

#[test]
fn a_withdrawal_beyond_withdrawable_is_refused() {
    let request = AccountCommand::Withdraw {
        amount_cny: dec!(100.01),
        bank_ref: bref("W1"),
    };
    assert_eq!(
        refusal(framework(), funded(dec!(100.00)), request).0,
        RejectCode::InsufficientFunds
    );
}

// --- compliance freeze ---------------------------------------------------------

#[test]
fn a_frozen_account_may_not_order_or_withdraw_but_receives_cash_and_fills() {
    let mut given = funded(dec!(20000.00));
    given.push(placed("O1", Side::Buy, 100, dec!(10.00), day(4), dec!(1005.06)));
    given.push(AccountEvent::AccountFrozen {
        reason: "review".into(),
    });
    assert_eq!(
        refusal(framework(), given.clone(), buy("O2", 100, dec!(10.00))).0,
        RejectCode::AccountFrozen
    );
    let withdraw = AccountCommand::Withdraw {
        amount_cny: dec!(1.00),
        bank_ref: bref("W1"),
    };
    assert_eq!(
        refusal(framework(), given.clone(), withdraw).0,
        RejectCode::AccountFrozen
    );
    assert_eq!(
        events_of(
            given.clone(),
            AccountCommand::Deposit {
                amount_cny: dec!(5.00),
                bank_ref: bref("D2")
            }
        )
        .len(),
        1
    );
    assert!(matches!(
        events_of(given.clone(), fill("O1", "E1", 100, dec!(10.00)))[0],
        AccountEvent::FillBooked { .. }
    ));
    framework()
        .given(given)
        .when(AccountCommand::Unfreeze {
            reason: "closed".into(),
        })
        .then_expect_events(vec![AccountEvent::AccountUnfrozen {
            reason: "closed".into(),
        }]);
}

// --- placing orders --------------------------------------------------------------

#[test]
fn a_buy_freezes_its_value_and_fees_at_the_limit() {
    // 100 × 10.00 = 1000.00; commission max(0.25, 5.00) = 5.00; transfer 0.01;
    // handling 0.0341 -> 0.03; regulatory 0.02: reserve 1005.06.
    framework()
        .given(funded(dec!(2000.00)))
        .when(buy("O1", 100, dec!(10.00)))
        .then_expect_events(vec![placed("O1", Side::Buy, 100, dec!(10.00), day(4), dec!(1005.06))]);
    let mut events = funded(dec!(2000.00));
    events.push(placed("O1", Side::Buy, 100, dec!(10.00), day(4), dec!(1005.06)));
    let cash = state(events).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(994.94), dec!(1005.06)));
}

#[test]
fn a_buy_beyond_available_cash_is_refused() {
    // The reserve of 100 × 10.00 is 1005.06: 1005.05 is one fen short.
    assert_eq!(
        refusal(framework(), funded(dec!(1005.05)), buy("O1", 100, dec!(10.00))).0,
        RejectCode::InsufficientFunds
    );
    assert_eq!(events_of(funded(dec!(1005.06)), buy("O1", 100, dec!(10.00))).len(), 1);
}

#[test]
fn an_order_id_is_used_once() {
    let mut given = funded(dec!(5000.00));
    given.push(placed("O1", Side::Buy, 100, dec!(10.00), day(4), dec!(1005.06)));
    given.push(AccountEvent::OrderCanceled {
        order_id: oid("O1"),
        released_cny: dec!(1005.06),
        released_shares: 0,
    });
    assert_eq!(
        refusal(framework(), given, buy("O1", 100, dec!(10.00))).0,
        RejectCode::DuplicateOrder
    );
}

#[test]
fn unknown_instruments_and_missing_references_are_refused() {
    let mut unknown = order("O1", Side::Buy, 100, dec!(10.00), day(4));
    unknown.market.instrument = None;
    let command = AccountCommand::PlaceOrder(unknown);
    assert_eq!(
        refusal(framework(), funded(dec!(5000.00)), command).0,
        RejectCode::UnknownInstrument
    );
    let mut no_close = order("O1", Side::Buy, 100, dec!(10.00), day(4));
    no_close.market.prev_close = None;
    let command = AccountCommand::PlaceOrder(no_close);
    assert_eq!(
        refusal(framework(), funded(dec!(5000.00)), command).0,
        RejectCode::NoReferencePrice
    );
}

#[test]
fn orders_for_a_closed_day_are_refused() {
    let mut late = order("O1", Side::Buy, 100, dec!(10.00), day(4));
    late.market.day_closed = true;
    let command = AccountCommand::PlaceOrder(late);
    assert_eq!(
        refusal(framework(), funded(dec!(5000.00)), command).0,
        RejectCode::DayClosed
    );
}

#[test]
fn suitability_compares_product_and_customer_risk() {
    // The customer accepts level 3: a level-4 product is refused, a level-3 one is not.
    let mut risky = order("O1", Side::Buy, 100, dec!(10.00), day(4));
    risky.market = market(Board::Main, 4, Some(dec!(10.00)));
    let command = AccountCommand::PlaceOrder(risky.clone());
    assert_eq!(
        refusal(framework(), funded(dec!(5000.00)), command).0,
        RejectCode::Suitability
    );
    risky.market = market(Board::Main, 3, Some(dec!(10.00)));
    assert_eq!(
        events_of(funded(dec!(5000.00)), AccountCommand::PlaceOrder(risky)).len(),
        1
    );
}

#[test]
fn lots_per_board() {
    let with_board = |board: Board, quantity: u64| {
        let mut o = order("O1", Side::Buy, quantity, dec!(10.00), day(4));
        o.market = market(board, 1, Some(dec!(10.00)));
        AccountCommand::PlaceOrder(o)
    };
    for (board, quantity, ok) in [
        (Board::Main, 100, true),
        (Board::Main, 4500, true),
        (Board::Main, 4506, false),
        (Board::Main, 50, false),
        (Board::Chinext, 150, false),
        (Board::Star, 200, true),
        (Board::Star, 201, true),
        (Board::Star, 199, false),
        (Board::St, 300, true),
    ] {
        let result = framework()
            .given(funded(dec!(100000.00)))
            .when(with_board(board, quantity))
            .inspect_result();
        match (ok, result) {
            (true, Ok(events)) => assert_eq!(events.len(), 1),
            (false, Err(rejection)) => assert_eq!(rejection.code, RejectCode::LotSize, "{board:?} {quantity}"),
            (ok, other) => panic!("{board:?} {quantity}: expected ok={ok}, got {other:?}"),
        }
    }
}

#[test]
fn prices_keep_to_the_tick() {
    assert_eq!(
        refusal(framework(), funded(dec!(5000.00)), buy("O1", 100, dec!(10.005))).0,
        RejectCode::PriceTick
    );
}

#[test]
fn price_limits_per_board_include_their_bounds() {
    // prev close 10.00: main ±10 % -> 9.00..11.00; chinext and star ±20 % -> 8.00..12.00; st ±5 % -> 9.50..10.50.
    for (board, inside, outside) in [
        (Board::Main, [dec!(9.00), dec!(11.00)], [dec!(8.99), dec!(11.01)]),
        (Board::Chinext, [dec!(8.00), dec!(12.00)], [dec!(7.99), dec!(12.01)]),
        (Board::Star, [dec!(8.00), dec!(12.00)], [dec!(7.99), dec!(12.01)]),
        (Board::St, [dec!(9.50), dec!(10.50)], [dec!(9.49), dec!(10.51)]),
    ] {
        let lot = if board == Board::Star { 200 } else { 100 };
        let at = |price: Decimal| {
            let mut o = order("O1", Side::Buy, lot, price, day(4));
            o.market = market(board, 1, Some(dec!(10.00)));
            AccountCommand::PlaceOrder(o)
        };
        for price in inside {
            assert_eq!(
                events_of(funded(dec!(100000.00)), at(price)).len(),
                1,
                "{board:?} {price}"
            );
        }
        for price in outside {
            assert_eq!(
                refusal(framework(), funded(dec!(100000.00)), at(price)).0,
                RejectCode::PriceLimit,
                "{board:?} {price}"
            );
        }
    }
    // The limit is rounded to the fen: 5.12 × 1.1 = 5.632 -> 5.63.
    let mut o = order("O1", Side::Buy, 100, dec!(5.64), day(4));
    o.market = market(Board::Main, 1, Some(dec!(5.12)));
    assert_eq!(
        refusal(
            framework(),
            funded(dec!(5000.00)),
            AccountCommand::PlaceOrder(o.clone())
        )
        .0,
        RejectCode::PriceLimit
    );
    o.price = dec!(5.63);
    assert_eq!(events_of(funded(dec!(5000.00)), AccountCommand::PlaceOrder(o)).len(), 1);
}

// --- fills, fees and the reserve ----------------------------------------------------

/// A funded account with an open buy of 1,200 at 5.29: v = 6348.00; commission 1.587 -> 5.00 (minimum);
/// transfer 0.06348 -> 0.06; handling 0.2164668 -> 0.22; regulatory 0.12696 -> 0.13. Reserve 6353.41.
fn with_open_buy() -> Vec<AccountEvent> {
    let mut given = funded(dec!(10000.00));
    given.push(placed("O1", Side::Buy, 1200, dec!(5.29), day(4), dec!(6353.41)));
    given
}

#[test]
fn the_reserve_of_a_buy_is_its_value_and_fees() {
    let mut o = order("O1", Side::Buy, 1200, dec!(5.29), day(4));
    o.market = market(Board::Main, 1, Some(dec!(5.12)));
    let events = events_of(funded(dec!(10000.00)), AccountCommand::PlaceOrder(o));
    assert_eq!(
        events,
        vec![placed("O1", Side::Buy, 1200, dec!(5.29), day(4), dec!(6353.41))]
    );
}

#[test]
fn fees_are_charged_cumulatively_per_order() {
    // Fill 1: 876 × 5.25 = 4599.00: commission 1.14975 -> 5.00 (min); transfer 0.04599 -> 0.05;
    //   handling 0.1568259 -> 0.16; regulatory 0.09198 -> 0.09. Cost 4599.00 + 5.30 = 4604.30.
    let first = events_of(with_open_buy(), fill("O1", "E1", 876, dec!(5.25)));
    assert_eq!(
        first,
        vec![AccountEvent::FillBooked {
            order_id: oid("O1"),
            exec_id: eid("E1"),
            instrument: code("600000.SH"),
            side: Side::Buy,
            trade_date: day(4),
            quantity: 876,
            price: dec!(5.25),
            value_cny: dec!(4599.00),
            fees: fees(dec!(5.00), dec!(0), dec!(0.05), dec!(0.16), dec!(0.09)),
            reserve_used_cny: dec!(4604.30),
            available_change_cny: dec!(0),
            unsettled_change_cny: dec!(0),
        }]
    );
    // Fill 2: 312 × 5.29 = 1650.48; cumulative 6249.48: commission 1.56237 -> still 5.00, so 0.00 more;
    //   transfer 0.0624948 -> 0.06 (0.01 more); handling 0.21310727 -> 0.21 (0.05 more);
    //   regulatory 0.1249896 -> 0.12 (0.03 more). Cost 1650.48 + 0.09 = 1650.57.
    let mut given = with_open_buy();
    given.extend(first);
    let second = events_of(given.clone(), fill("O1", "E2", 312, dec!(5.29)));
    match &second[0] {
        AccountEvent::FillBooked {
            fees: f,
            reserve_used_cny,
            ..
        } => {
            assert_eq!(*f, fees(dec!(0.00), dec!(0), dec!(0.01), dec!(0.05), dec!(0.03)));
            assert_eq!(*reserve_used_cny, dec!(1650.57));
        }
        other => panic!("{other:?}"),
    }
    given.extend(second);
    // 12 shares left; a cancel releases the rest of the reserve: 6353.41 - 4604.30 - 1650.57 = 98.54.
    framework()
        .given(given.clone())
        .when(AccountCommand::ConfirmCancel { order_id: oid("O1") })
        .then_expect_events(vec![AccountEvent::OrderCanceled {
            order_id: oid("O1"),
            released_cny: dec!(98.54),
            released_shares: 0,
        }]);
    given.extend(events_of(
        given.clone(),
        AccountCommand::ConfirmCancel { order_id: oid("O1") },
    ));
    let account = state(given);
    // 10000.00 - 4604.30 - 1650.57 = 3745.13 available, nothing frozen, 1188 shares.
    assert_eq!(
        (account.cash().available_cny, account.cash().frozen_cny),
        (dec!(3745.13), dec!(0))
    );
    assert_eq!(account.positions()[&code("600000.SH")].quantity, 1188);
}

#[test]
fn the_last_fill_completes_the_order_and_releases_the_rest() {
    // 1200 × 5.20 = 6240.00: commission 1.56 -> 5.00; transfer 0.0624 -> 0.06; handling 0.212784 -> 0.21;
    // regulatory 0.1248 -> 0.12. Cost 6245.39; released 6353.41 - 6245.39 = 108.02.
    let events = events_of(with_open_buy(), fill("O1", "E1", 1200, dec!(5.20)));
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        AccountEvent::OrderCompleted {
            order_id: oid("O1"),
            released_cny: dec!(108.02)
        }
    );
}

#[test]
fn fills_are_checked() {
    assert_eq!(
        refusal(framework(), with_open_buy(), fill("O1", "E1", 1201, dec!(5.29))).0,
        RejectCode::FillExceedsOrder
    );
    assert_eq!(
        refusal(framework(), with_open_buy(), fill("O1", "E1", 100, dec!(5.30))).0,
        RejectCode::FillPrice
    );
    assert_eq!(
        refusal(framework(), with_open_buy(), fill("O9", "E1", 100, dec!(5.29))).0,
        RejectCode::UnknownOrder
    );
    assert_eq!(
        refusal(framework(), with_open_buy(), fill("O1", "E1", 0, dec!(5.29))).0,
        RejectCode::Malformed
    );
}

#[test]
fn a_repeated_execution_is_a_no_op() {
    let mut given = with_open_buy();
    given.extend(events_of(with_open_buy(), fill("O1", "E1", 100, dec!(5.29))));
    let (code, message) = refusal(framework(), given.clone(), fill("O1", "E1", 100, dec!(5.29)));
    assert_eq!(code, RejectCode::DuplicateExec);
    assert!(message.contains("E1"));
    // Also after the order ended.
    given.extend(events_of(
        given.clone(),
        AccountCommand::ConfirmCancel { order_id: oid("O1") },
    ));
    assert_eq!(
        refusal(framework(), given, fill("O1", "E1", 100, dec!(5.29))).0,
        RejectCode::DuplicateExec
    );
}

#[test]
fn closed_orders_take_no_fill_and_no_cancel() {
    let mut given = with_open_buy();
    given.extend(events_of(
        with_open_buy(),
        AccountCommand::RejectOrder {
            order_id: oid("O1"),
            reason: "exchange".into(),
        },
    ));
    assert_eq!(
        refusal(framework(), given.clone(), fill("O1", "E1", 100, dec!(5.29))).0,
        RejectCode::OrderClosed
    );
    assert_eq!(
        refusal(
            framework(),
            given.clone(),
            AccountCommand::RequestCancel { order_id: oid("O1") }
        )
        .0,
        RejectCode::OrderClosed
    );
    assert_eq!(
        refusal(
            framework(),
            given,
            AccountCommand::ConfirmCancel { order_id: oid("O1") }
        )
        .0,
        RejectCode::OrderClosed
    );
}

#[test]
fn a_reject_releases_the_whole_reserve() {
    framework()
        .given(with_open_buy())
        .when(AccountCommand::RejectOrder {
            order_id: oid("O1"),
            reason: "invalid order".into(),
        })
        .then_expect_events(vec![AccountEvent::OrderRejected {
            order_id: oid("O1"),
            reason: "invalid order".into(),
            released_cny: dec!(6353.41),
            released_shares: 0,
        }]);
}

#[test]
fn a_cancel_request_waits_for_the_exchange() {
    let request = AccountCommand::RequestCancel { order_id: oid("O1") };
    framework()
        .given(with_open_buy())
        .when(request.clone())
        .then_expect_events(vec![AccountEvent::CancelRequested { order_id: oid("O1") }]);
    let mut given = with_open_buy();
    given.push(AccountEvent::CancelRequested { order_id: oid("O1") });
    framework()
        .given(given.clone())
        .when(request)
        .then_expect_events(vec![]);
    // A fill can still arrive before the exchange confirms the cancel.
    assert!(matches!(
        events_of(given, fill("O1", "E1", 100, dec!(5.29)))[0],
        AccountEvent::FillBooked { .. }
    ));
}

// --- sells, T+1 and settlement ------------------------------------------------------

/// 1,000 shares bought on the 4th at 10.00: v = 10000.00; commission 2.50 -> 5.00; transfer 0.10;
/// handling 0.341 -> 0.34; regulatory 0.20; reserve 10005.64.
fn holding_bought_on_the_4th() -> Vec<AccountEvent> {
    let mut given = funded(dec!(20000.00));
    given.push(placed("B1", Side::Buy, 1000, dec!(10.00), day(4), dec!(10005.64)));
    given.extend(events_of(given.clone(), fill("B1", "X1", 1000, dec!(10.00))));
    given
}

fn sell(id: &str, quantity: u64, price: Decimal, trade_date: NaiveDate) -> AccountCommand {
    AccountCommand::PlaceOrder(order(id, Side::Sell, quantity, price, trade_date))
}

#[test]
fn shares_bought_today_are_sellable_from_the_next_trade_date() {
    let given = holding_bought_on_the_4th();
    assert_eq!(
        refusal(framework(), given.clone(), sell("S1", 100, dec!(10.00), day(4))).0,
        RejectCode::InsufficientPosition
    );
    framework()
        .given(given)
        .when(sell("S1", 100, dec!(10.00), day(5)))
        .then_expect_events(vec![placed("S1", Side::Sell, 100, dec!(10.00), day(5), dec!(0))]);
}

#[test]
fn a_sell_freezes_shares_and_its_proceeds_are_unsettled_until_settlement() {
    let mut given = holding_bought_on_the_4th();
    given.extend(events_of(given.clone(), sell("S1", 1000, dec!(10.50), day(5))));
    assert_eq!(state(given.clone()).positions()[&code("600000.SH")].frozen, 1000);
    assert_eq!(
        refusal(framework(), given.clone(), sell("S2", 100, dec!(10.50), day(5))).0,
        RejectCode::InsufficientPosition
    );
    // 1000 × 10.50 = 10500.00: commission 2.625 -> 5.00; stamp 5.25; transfer 0.105 -> 0.11;
    // handling 0.35805 -> 0.36; regulatory 0.21. Fees 10.93; proceeds 10489.07.
    let filled = events_of(given.clone(), fill("S1", "X2", 1000, dec!(10.50)));
    match &filled[0] {
        AccountEvent::FillBooked {
            fees: f,
            available_change_cny,
            unsettled_change_cny,
            ..
        } => {
            assert_eq!(*f, fees(dec!(5.00), dec!(5.25), dec!(0.11), dec!(0.36), dec!(0.21)));
            assert_eq!(
                (*available_change_cny, *unsettled_change_cny),
                (dec!(10489.07), dec!(10489.07))
            );
        }
        other => panic!("{other:?}"),
    }
    given.extend(filled);
    let account = state(given.clone());
    assert_eq!(account.cash().unsettled_cny, dec!(10489.07));
    assert_eq!(
        account.cash().withdrawable_cny(),
        account.cash().available_cny - dec!(10489.07)
    );
    // Unsettled proceeds buy, but do not withdraw.
    let too_much = AccountCommand::Withdraw {
        amount_cny: account.cash().available_cny,
        bank_ref: bref("W1"),
    };
    assert_eq!(
        refusal(framework(), given.clone(), too_much).0,
        RejectCode::InsufficientFunds
    );
    assert_eq!(
        events_of(
            given.clone(),
            AccountCommand::PlaceOrder(order("B2", Side::Buy, 1500, dec!(10.00), day(5)))
        )
        .len(),
        1
    );
    // Settling the 5th clears them.
    framework()
        .given(given.clone())
        .when(AccountCommand::SettleTrades { trade_date: day(5) })
        .then_expect_events(vec![AccountEvent::TradesSettled {
            trade_date: day(5),
            settled_cny: dec!(10489.07),
        }]);
    given.extend(events_of(
        given.clone(),
        AccountCommand::SettleTrades { trade_date: day(5) },
    ));
    assert_eq!(state(given).cash().unsettled_cny, dec!(0));
}

#[test]
fn an_odd_lot_sells_only_to_empty_the_position() {
    let mut given = funded(dec!(20000.00));
    given.push(placed("B1", Side::Buy, 1000, dec!(10.00), day(4), dec!(10005.64)));
    given.extend(events_of(given.clone(), fill("B1", "X1", 150, dec!(10.00))));
    // 150 held: 50 is an odd lot that does not empty it; 150 does; 100 is a lot.
    assert_eq!(
        refusal(framework(), given.clone(), sell("S1", 50, dec!(10.00), day(5))).0,
        RejectCode::LotSize
    );
    assert_eq!(events_of(given.clone(), sell("S1", 150, dec!(10.00), day(5))).len(), 1);
    assert_eq!(events_of(given, sell("S1", 100, dec!(10.00), day(5))).len(), 1);
}

#[test]
fn a_sell_fill_below_its_limit_is_refused() {
    let mut given = holding_bought_on_the_4th();
    given.extend(events_of(given.clone(), sell("S1", 1000, dec!(10.50), day(5))));
    assert_eq!(
        refusal(framework(), given, fill("S1", "X2", 100, dec!(10.49))).0,
        RejectCode::FillPrice
    );
}

#[test]
fn a_cheap_sell_covers_the_fees_a_small_fill_may_exceed() {
    // Limit 4.79: a first fill of one share is worth 4.79 but costs 5.00 in fees (the commission minimum),
    // so the order freezes 5.00 - 4.79 = 0.21. At 10.00 one share covers the fees: nothing is frozen.
    let rules = MarketRules::china_a_share().unwrap();
    assert_eq!(ledger_domain::account::sell_fee_cover(dec!(4.79), &rules), dec!(0.21));
    assert_eq!(ledger_domain::account::sell_fee_cover(dec!(10.00), &rules), dec!(0));
    let mut given = vec![opened(3)];
    given.push(placed("B1", Side::Buy, 100, dec!(4.80), day(4), dec!(485.03)));
    given.insert(1, deposited(dec!(485.03)));
    given.extend(events_of(given.clone(), fill("B1", "X1", 100, dec!(4.80))));
    // All cash went into the buy: nothing is left to cover the fees of a small sell fill.
    assert_eq!(state(given.clone()).cash().available_cny, dec!(0.00));
    let mut cheap = order("S1", Side::Sell, 100, dec!(4.79), day(5));
    cheap.market = market(Board::Main, 1, Some(dec!(4.80)));
    assert_eq!(
        refusal(framework(), given.clone(), AccountCommand::PlaceOrder(cheap.clone())).0,
        RejectCode::InsufficientFunds
    );
    given.push(AccountEvent::CashDeposited {
        amount_cny: dec!(0.21),
        bank_ref: bref("D2"),
    });
    given.extend(events_of(given.clone(), AccountCommand::PlaceOrder(cheap)));
    // A one-share fill at 4.79: fees 5.00, net -0.21, paid from the cover; available never goes negative.
    given.extend(events_of(given.clone(), fill("S1", "X2", 1, dec!(4.79))));
    let account = state(given);
    assert_eq!(
        (account.cash().available_cny, account.cash().frozen_cny),
        (dec!(0.00), dec!(0.00))
    );
}

#[test]
fn end_of_day_expires_open_orders_of_that_date_and_before() {
    let mut given = with_open_buy();
    given.push(placed("O2", Side::Buy, 100, dec!(5.00), day(5), dec!(505.03)));
    framework()
        .given(given)
        .when(AccountCommand::ExpireOrders { trade_date: day(4) })
        .then_expect_events(vec![AccountEvent::OrderExpired {
            order_id: oid("O1"),
            trade_date: day(4),
            released_cny: dec!(6353.41),
            released_shares: 0,
        }]);
}

#[test]
fn settlement_without_trades_writes_nothing() {
    framework()
        .given(funded(dec!(100.00)))
        .when(AccountCommand::SettleTrades { trade_date: day(4) })
        .then_expect_events(vec![]);
}
