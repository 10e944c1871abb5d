//! Helpers shared by the account tests: ids, dates, reference data, commands,
//! the events they give, and given/when/then expectations on `TestFramework`.
//!
//! Each test file uses a part of them; `samples` has one event of every variant.
#![allow(dead_code)]

pub mod samples;

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use ledger_domain::account::{AccountCommand, AccountEvent, MarketSnapshot, PlaceOrder};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::{Account, Board, InstrumentInfo, MarketRules, OrderType, RejectCode, Side};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

// ---------------------------------------------------------------------------
// Helpers: ids, dates, reference data
// ---------------------------------------------------------------------------

pub fn rules() -> MarketRules {
    MarketRules::china_a_share().unwrap()
}

pub fn account() -> TestFramework<Account> {
    TestFramework::with(rules())
}

/// The trade date before `today()` (a Friday).
pub fn prev_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()
}

/// The trade date of the orders under test (a Monday).
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 4).unwrap()
}

pub fn next_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()
}

pub fn oid(id: &str) -> OrderId {
    OrderId::parse(id).unwrap()
}

pub fn eid(id: &str) -> ExecId {
    ExecId::parse(id).unwrap()
}

pub fn bref(id: &str) -> BankRef {
    BankRef::parse(id).unwrap()
}

/// One instrument per board.
pub fn code(board: Board) -> InstrumentCode {
    let text = match board {
        Board::Main => "600000.SH",
        Board::Chinext => "300750.SZ",
        Board::Star => "688981.SH",
        Board::St => "600234.SH",
    };
    InstrumentCode::parse(text).unwrap()
}

pub fn snapshot(board: Board, prev_close: Decimal) -> MarketSnapshot {
    MarketSnapshot {
        instrument: Some(InstrumentInfo {
            code: code(board),
            name: format!("{} board stock", board.as_str()),
            board,
            risk_level: 2,
        }),
        prev_close: Some(prev_close),
        day_closed: false,
    }
}

pub fn fees(
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

// ---------------------------------------------------------------------------
// Helpers: commands
// ---------------------------------------------------------------------------

pub fn open(risk_level: u8, customer_name: &str) -> AccountCommand {
    AccountCommand::Open {
        account_id: AccountId::parse("A-0001").unwrap(),
        customer_name: customer_name.into(),
        id_number: "110101199003071234".into(),
        risk_level,
    }
}

/// An order on the main board for today, previous close 10.00.
pub fn order(id: &str, side: Side, quantity: u64, price: Decimal) -> PlaceOrder {
    PlaceOrder {
        order_id: oid(id),
        instrument: code(Board::Main),
        side,
        quantity,
        price,
        trade_date: today(),
        market: snapshot(Board::Main, dec!(10.00)),
    }
}

pub fn on_board(mut order: PlaceOrder, board: Board, prev_close: Decimal) -> PlaceOrder {
    order.instrument = code(board);
    order.market = snapshot(board, prev_close);
    order
}

pub fn on_day(mut order: PlaceOrder, trade_date: NaiveDate) -> PlaceOrder {
    order.trade_date = trade_date;
    order
}

pub fn place(order: PlaceOrder) -> AccountCommand {
    AccountCommand::PlaceOrder(order)
}

pub fn buy(id: &str, quantity: u64, price: Decimal) -> AccountCommand {
    place(order(id, Side::Buy, quantity, price))
}

pub fn sell(id: &str, quantity: u64, price: Decimal) -> AccountCommand {
    place(order(id, Side::Sell, quantity, price))
}

pub fn fill(order_id: &str, exec_id: &str, quantity: u64, price: Decimal) -> AccountCommand {
    AccountCommand::BookFill {
        order_id: oid(order_id),
        exec_id: eid(exec_id),
        quantity,
        price,
    }
}

pub fn deposit(amount_cny: Decimal, bank_ref: &str) -> AccountCommand {
    AccountCommand::Deposit {
        amount_cny,
        bank_ref: bref(bank_ref),
    }
}

pub fn withdraw(amount_cny: Decimal, bank_ref: &str) -> AccountCommand {
    AccountCommand::Withdraw {
        amount_cny,
        bank_ref: bref(bank_ref),
    }
}

pub fn request_cancel(order_id: &str) -> AccountCommand {
    AccountCommand::RequestCancel {
        order_id: oid(order_id),
    }
}

pub fn confirm_cancel(order_id: &str) -> AccountCommand {
    AccountCommand::ConfirmCancel {
        order_id: oid(order_id),
    }
}

pub fn reject_order(order_id: &str) -> AccountCommand {
    AccountCommand::RejectOrder {
        order_id: oid(order_id),
        reason: "exchange says no".into(),
    }
}

// ---------------------------------------------------------------------------
// Helpers: events and given histories
// ---------------------------------------------------------------------------

pub fn opened() -> AccountEvent {
    AccountEvent::AccountOpened {
        account_id: AccountId::parse("A-0001").unwrap(),
        customer_name: "Wang Fang".into(),
        id_number: "110101199003071234".into(),
        risk_level: 3,
    }
}

pub fn deposited(amount_cny: Decimal, bank_ref: &str) -> AccountEvent {
    AccountEvent::CashDeposited {
        amount_cny,
        bank_ref: bref(bank_ref),
    }
}

pub fn withdrawal_requested(amount_cny: Decimal, bank_ref: &str) -> AccountEvent {
    AccountEvent::WithdrawalRequested {
        amount_cny,
        bank_ref: bref(bank_ref),
    }
}

/// An opened account with one deposit (bank reference `DEP-1`).
pub fn funded(amount_cny: Decimal) -> Vec<AccountEvent> {
    vec![opened(), deposited(amount_cny, "DEP-1")]
}

pub fn with(mut events: Vec<AccountEvent>, more: impl IntoIterator<Item = AccountEvent>) -> Vec<AccountEvent> {
    events.extend(more);
    events
}

pub fn placed_at(
    board: Board,
    trade_date: NaiveDate,
    order_id: &str,
    side: Side,
    quantity: u64,
    limit_price: Decimal,
    reserved_cny: Decimal,
) -> AccountEvent {
    AccountEvent::OrderPlaced {
        order_id: oid(order_id),
        instrument: code(board),
        board,
        side,
        order_type: OrderType::Limit,
        quantity,
        limit_price,
        trade_date,
        reserved_cny,
    }
}

/// An order placed on the main board for today.
pub fn placed(order_id: &str, side: Side, quantity: u64, limit_price: Decimal, reserved_cny: Decimal) -> AccountEvent {
    placed_at(
        Board::Main,
        today(),
        order_id,
        side,
        quantity,
        limit_price,
        reserved_cny,
    )
}

/// A buy fill on the main board today: the reserve pays value and fees.
pub fn buy_filled(
    order_id: &str,
    exec_id: &str,
    quantity: u64,
    price: Decimal,
    value_cny: Decimal,
    fees: FeeBreakdown,
    reserve_used_cny: Decimal,
) -> AccountEvent {
    AccountEvent::FillBooked {
        order_id: oid(order_id),
        exec_id: eid(exec_id),
        instrument: code(Board::Main),
        side: Side::Buy,
        trade_date: today(),
        quantity,
        price,
        value_cny,
        fees,
        reserve_used_cny,
        available_change_cny: dec!(0),
        unsettled_change_cny: dec!(0),
    }
}

/// A sell fill on the main board today whose proceeds are positive: they raise
/// available and unsettled cash alike, and the order's fee cover is untouched.
pub fn sell_filled(
    order_id: &str,
    exec_id: &str,
    quantity: u64,
    price: Decimal,
    value_cny: Decimal,
    fees: FeeBreakdown,
    proceeds_cny: Decimal,
) -> AccountEvent {
    AccountEvent::FillBooked {
        order_id: oid(order_id),
        exec_id: eid(exec_id),
        instrument: code(Board::Main),
        side: Side::Sell,
        trade_date: today(),
        quantity,
        price,
        value_cny,
        fees,
        reserve_used_cny: dec!(0),
        available_change_cny: proceeds_cny,
        unsettled_change_cny: proceeds_cny,
    }
}

pub fn completed(order_id: &str, released_cny: Decimal) -> AccountEvent {
    AccountEvent::OrderCompleted {
        order_id: oid(order_id),
        released_cny,
    }
}

pub fn settled(trade_date: NaiveDate, settled_cny: Decimal) -> AccountEvent {
    AccountEvent::TradesSettled {
        trade_date,
        settled_cny,
    }
}

pub fn frozen() -> AccountEvent {
    AccountEvent::AccountFrozen {
        reason: "AML review".into(),
    }
}

/// A whole buy order, placed and filled at once at its limit price: the events
/// that put `quantity` shares into the account (given data, not under test).
pub fn bought(
    order_id: &str,
    board: Board,
    quantity: u64,
    price: Decimal,
    trade_date: NaiveDate,
    fees: FeeBreakdown,
) -> Vec<AccountEvent> {
    let value_cny = price * Decimal::from(quantity);
    let reserve = value_cny + fees.total_cny();
    vec![
        placed_at(board, trade_date, order_id, Side::Buy, quantity, price, reserve),
        AccountEvent::FillBooked {
            order_id: oid(order_id),
            exec_id: eid(&format!("X-{order_id}")),
            instrument: code(board),
            side: Side::Buy,
            trade_date,
            quantity,
            price,
            value_cny,
            fees,
            reserve_used_cny: reserve,
            available_change_cny: dec!(0),
            unsettled_change_cny: dec!(0),
        },
        completed(order_id, dec!(0)),
    ]
}

/// 1000 shares of the main-board stock bought at 10.00 on the previous trade date.
/// v = 1000 × 10.00 = 10000.00; commission 2.50 -> minimum 5.00; transfer 0.10;
/// handling 0.341 -> 0.34; regulatory 0.20; fees 5.64; cost 10005.64.
/// Cash left: 100000.00 - 10005.64 = 89994.36.
pub fn holding_1000() -> Vec<AccountEvent> {
    let mut events = funded(dec!(100000.00));
    events.extend(bought(
        "B0",
        Board::Main,
        1000,
        dec!(10.00),
        prev_day(),
        fees(dec!(5.00), dec!(0), dec!(0.10), dec!(0.34), dec!(0.20)),
    ));
    events
}

/// The fees of selling 1000 × 10.00 = 10000.00: commission 2.50 -> 5.00;
/// stamp 5.00; transfer 0.10; handling 0.341 -> 0.34; regulatory 0.20; total 10.64.
pub fn sell_1000_fees() -> FeeBreakdown {
    fees(dec!(5.00), dec!(5.00), dec!(0.10), dec!(0.34), dec!(0.20))
}

/// `holding_1000()`, then the 1000 shares sold today at 10.00: proceeds
/// 10000.00 - 10.64 = 9989.36, available and unsettled.
/// Available 89994.36 + 9989.36 = 99983.72; unsettled 9989.36;
/// withdrawable 99983.72 - 9989.36 = 89994.36.
pub fn sold_1000_today() -> Vec<AccountEvent> {
    with(
        holding_1000(),
        [
            placed("S1", Side::Sell, 1000, dec!(10.00), dec!(0)),
            sell_filled(
                "S1",
                "E-S1",
                1000,
                dec!(10.00),
                dec!(10000.00),
                sell_1000_fees(),
                dec!(9989.36),
            ),
            completed("S1", dec!(0)),
        ],
    )
}

// ---------------------------------------------------------------------------
// Helpers: expectations
// ---------------------------------------------------------------------------

pub fn expect(given: Vec<AccountEvent>, command: AccountCommand, events: Vec<AccountEvent>) {
    account().given(given).when(command).then_expect_events(events);
}

/// The command is refused with `code`, and so writes no event.
pub fn refused(given: Vec<AccountEvent>, command: AccountCommand, code: RejectCode) {
    match account().given(given).when(command).inspect_result() {
        Err(rejection) => {
            assert_eq!(rejection.code, code, "refused for another reason: {rejection}");
            assert!(!rejection.message.is_empty(), "a refusal carries a human message");
        }
        Ok(events) => panic!("expected a refusal with {code}, got the events {events:?}"),
    }
}

/// The command is accepted; its events are returned for inspection.
pub fn accepted(given: Vec<AccountEvent>, command: AccountCommand) -> Vec<AccountEvent> {
    account()
        .given(given)
        .when(command)
        .inspect_result()
        .unwrap_or_else(|rejection| panic!("expected acceptance, got {rejection}"))
}

/// The state after a history, for the few facts that events alone do not show.
pub fn state(events: Vec<AccountEvent>) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event);
    }
    account
}
