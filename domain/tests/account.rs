//! The `Account` aggregate, given/when/then with cqrs-es's `TestFramework`:
//! one test (or a few) per rule and per refusal code of DESIGN.md.
//!
//! Every figure is computed by hand in a comment next to it. The default fees
//! on a trade value v: commission 0.025 % (at least 5.00 per order), stamp duty
//! 0.05 % on sells only, transfer 0.001 %, handling 0.00341 %, regulatory
//! 0.002 %, each rounded half away from zero to 0.01, cumulatively per order.
//!
//! Unless a test says otherwise: the customer's risk level is 3, the instrument
//! is `600000.SH` on the main board with risk level 2, its previous close is
//! 10.00 (limits 9.00 to 11.00), and orders are for `today()`.

use cqrs_es::Aggregate;
use ledger_domain::account::{sell_fee_cover, AccountCommand, AccountEvent, CashDirection, PlaceOrder};
use ledger_domain::fees::cumulative_fees;
use ledger_domain::{Board, RejectCode, Side};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Opening an account
// ---------------------------------------------------------------------------

#[test]
fn open_account_records_the_customer() {
    expect(vec![], open(3, "Wang Fang"), vec![opened()]);
}

#[test]
fn opening_an_open_account_is_refused_with_account_exists() {
    refused(vec![opened()], open(3, "Wang Fang"), RejectCode::AccountExists);
    // Even with other data: the account id is taken.
    refused(funded(dec!(10.00)), open(5, "Someone Else"), RejectCode::AccountExists);
}

#[test]
fn open_account_needs_a_risk_level_of_1_to_5_and_a_name() {
    refused(vec![], open(0, "Wang Fang"), RejectCode::Malformed);
    refused(vec![], open(6, "Wang Fang"), RejectCode::Malformed);
    refused(vec![], open(3, "   "), RejectCode::Malformed);
    assert_eq!(accepted(vec![], open(1, "Wang Fang")).len(), 1);
    assert_eq!(accepted(vec![], open(5, "Wang Fang")).len(), 1);
}

#[test]
fn every_command_but_open_needs_an_opened_account() {
    refused(vec![], deposit(dec!(100.00), "DEP-1"), RejectCode::UnknownAccount);
    refused(vec![], withdraw(dec!(100.00), "W-1"), RejectCode::UnknownAccount);
    refused(vec![], buy("O1", 100, dec!(10.00)), RejectCode::UnknownAccount);
    refused(vec![], fill("O1", "E1", 100, dec!(10.00)), RejectCode::UnknownAccount);
    refused(vec![], request_cancel("O1"), RejectCode::UnknownAccount);
    refused(
        vec![],
        AccountCommand::SettleTrades { trade_date: today() },
        RejectCode::UnknownAccount,
    );
    refused(
        vec![],
        AccountCommand::Freeze { reason: "x".into() },
        RejectCode::UnknownAccount,
    );
}

// ---------------------------------------------------------------------------
// Deposits, withdrawals and AML
// ---------------------------------------------------------------------------

#[test]
fn a_deposit_is_booked() {
    expect(
        vec![opened()],
        deposit(dec!(1500.00), "DEP-1"),
        vec![deposited(dec!(1500.00), "DEP-1")],
    );
}

#[test]
fn a_deposit_raises_withdrawable_cash() {
    // 1000.00 + 500.00 = 1500.00 is withdrawable, 1500.01 is not.
    let given = with(funded(dec!(1000.00)), [deposited(dec!(500.00), "DEP-2")]);
    refused(
        given.clone(),
        withdraw(dec!(1500.01), "W-1"),
        RejectCode::InsufficientFunds,
    );
    expect(
        given,
        withdraw(dec!(1500.00), "W-1"),
        vec![withdrawal_requested(dec!(1500.00), "W-1")],
    );
}

#[test]
fn bad_amounts_are_malformed() {
    refused(vec![opened()], deposit(dec!(0), "DEP-1"), RejectCode::Malformed);
    refused(vec![opened()], deposit(dec!(-1.00), "DEP-1"), RejectCode::Malformed);
    refused(vec![opened()], deposit(dec!(1.001), "DEP-1"), RejectCode::Malformed);
    refused(funded(dec!(100.00)), withdraw(dec!(0), "W-1"), RejectCode::Malformed);
    refused(
        funded(dec!(100.00)),
        withdraw(dec!(0.005), "W-1"),
        RejectCode::Malformed,
    );
}

#[test]
fn cash_beyond_the_ledger_s_numeric_range_is_refused_but_not_malformed() {
    // Not a malformed value: the same deposit fits an account holding less.
    refused(
        funded(Decimal::MAX),
        deposit(dec!(1.00), "DEP-2"),
        RejectCode::NumericRange,
    );
    assert_eq!(accepted(funded(dec!(1.00)), deposit(dec!(1.00), "DEP-2")).len(), 1);
}

#[test]
fn a_deposit_of_500_000_or_more_is_flagged_not_refused() {
    expect(
        vec![opened()],
        deposit(dec!(500000.00), "DEP-1"),
        vec![
            deposited(dec!(500000.00), "DEP-1"),
            AccountEvent::LargeCashMovementFlagged {
                direction: CashDirection::Deposit,
                amount_cny: dec!(500000.00),
                threshold_cny: dec!(500000.00),
                bank_ref: bref("DEP-1"),
            },
        ],
    );
    expect(
        vec![opened()],
        deposit(dec!(750000.00), "DEP-1"),
        vec![
            deposited(dec!(750000.00), "DEP-1"),
            AccountEvent::LargeCashMovementFlagged {
                direction: CashDirection::Deposit,
                amount_cny: dec!(750000.00),
                threshold_cny: dec!(500000.00),
                bank_ref: bref("DEP-1"),
            },
        ],
    );
}

#[test]
fn a_deposit_just_below_500_000_is_not_flagged() {
    expect(
        vec![opened()],
        deposit(dec!(499999.99), "DEP-1"),
        vec![deposited(dec!(499999.99), "DEP-1")],
    );
}

#[test]
fn a_withdrawal_of_500_000_or_more_is_flagged_not_refused() {
    expect(
        funded(dec!(600000.00)),
        withdraw(dec!(500000.00), "W-1"),
        vec![
            withdrawal_requested(dec!(500000.00), "W-1"),
            AccountEvent::LargeCashMovementFlagged {
                direction: CashDirection::Withdrawal,
                amount_cny: dec!(500000.00),
                threshold_cny: dec!(500000.00),
                bank_ref: bref("W-1"),
            },
        ],
    );
}

#[test]
fn a_withdrawal_just_below_500_000_is_not_flagged() {
    expect(
        funded(dec!(600000.00)),
        withdraw(dec!(499999.99), "W-1"),
        vec![withdrawal_requested(dec!(499999.99), "W-1")],
    );
}

#[test]
fn a_withdrawal_freezes_its_amount_until_the_bank_answers() {
    expect(
        funded(dec!(1000.00)),
        withdraw(dec!(600.00), "W-1"),
        vec![withdrawal_requested(dec!(600.00), "W-1")],
    );
    // 600.00 of 1000.00 is frozen: 1000.00 - 600.00 = 400.00 is left to withdraw or buy with.
    let pending = with(funded(dec!(1000.00)), [withdrawal_requested(dec!(600.00), "W-1")]);
    refused(
        pending.clone(),
        withdraw(dec!(400.01), "W-2"),
        RejectCode::InsufficientFunds,
    );
    // A buy of 100 × 10.00 needs 1005.06 (see `a_buy_freezes_value_and_fees_at_the_limit`).
    refused(
        pending.clone(),
        buy("O1", 100, dec!(10.00)),
        RejectCode::InsufficientFunds,
    );
    expect(
        pending.clone(),
        withdraw(dec!(400.00), "W-2"),
        vec![withdrawal_requested(dec!(400.00), "W-2")],
    );
    let cash = state(pending).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(400.00), dec!(600.00)));
}

#[test]
fn a_confirmed_withdrawal_leaves_the_account() {
    let pending = with(funded(dec!(1000.00)), [withdrawal_requested(dec!(600.00), "W-1")]);
    let confirmed = AccountEvent::WithdrawalConfirmed {
        amount_cny: dec!(600.00),
        bank_ref: bref("W-1"),
    };
    expect(
        pending.clone(),
        AccountCommand::ConfirmWithdrawal { bank_ref: bref("W-1") },
        vec![confirmed.clone()],
    );
    // After it, 1000.00 - 600.00 = 400.00 is all there is.
    let after = with(pending, [confirmed]);
    refused(
        after.clone(),
        withdraw(dec!(400.01), "W-2"),
        RejectCode::InsufficientFunds,
    );
    let cash = state(after).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(400.00), dec!(0)));
}

#[test]
fn a_failed_withdrawal_gives_the_amount_back() {
    let pending = with(funded(dec!(1000.00)), [withdrawal_requested(dec!(600.00), "W-1")]);
    let failed = AccountEvent::WithdrawalFailed {
        amount_cny: dec!(600.00),
        bank_ref: bref("W-1"),
    };
    expect(
        pending.clone(),
        AccountCommand::FailWithdrawal { bank_ref: bref("W-1") },
        vec![failed.clone()],
    );
    // The whole 1000.00 is withdrawable again.
    expect(
        with(pending, [failed]),
        withdraw(dec!(1000.00), "W-2"),
        vec![withdrawal_requested(dec!(1000.00), "W-2")],
    );
}

#[test]
fn a_withdrawal_beyond_available_cash_is_refused() {
    refused(
        funded(dec!(1000.00)),
        withdraw(dec!(1000.01), "W-1"),
        RejectCode::InsufficientFunds,
    );
    refused(
        vec![opened()],
        withdraw(dec!(0.01), "W-1"),
        RejectCode::InsufficientFunds,
    );
}

#[test]
fn unsettled_sale_proceeds_are_not_withdrawable() {
    // Available 99983.72, of which 9989.36 unsettled: withdrawable 89994.36 (see `sold_1000_today`).
    refused(
        sold_1000_today(),
        withdraw(dec!(89994.37), "W-1"),
        RejectCode::InsufficientFunds,
    );
    expect(
        sold_1000_today(),
        withdraw(dec!(89994.36), "W-1"),
        vec![withdrawal_requested(dec!(89994.36), "W-1")],
    );
    let cash = state(sold_1000_today()).cash();
    assert_eq!(cash.available_cny, dec!(99983.72));
    assert_eq!(cash.unsettled_cny, dec!(9989.36));
    assert_eq!(cash.withdrawable_cny(), dec!(89994.36));
}

#[test]
fn unsettled_sale_proceeds_are_usable_for_buying() {
    // Buy 9900 × 10.00 = 99000.00; commission 24.75; transfer 0.99; handling 3.3759 -> 3.38;
    // regulatory 1.98; reserve 99031.10: more than the withdrawable 89994.36,
    // within the available 99983.72.
    expect(
        sold_1000_today(),
        buy("O2", 9900, dec!(10.00)),
        vec![placed("O2", Side::Buy, 9900, dec!(10.00), dec!(99031.10))],
    );
}

#[test]
fn a_bank_reference_is_used_once() {
    refused(
        funded(dec!(1000.00)),
        deposit(dec!(5.00), "DEP-1"),
        RejectCode::DuplicateBankRef,
    );
    refused(
        funded(dec!(1000.00)),
        withdraw(dec!(5.00), "DEP-1"),
        RejectCode::DuplicateBankRef,
    );
    let pending = with(funded(dec!(1000.00)), [withdrawal_requested(dec!(600.00), "W-1")]);
    refused(
        pending.clone(),
        deposit(dec!(5.00), "W-1"),
        RejectCode::DuplicateBankRef,
    );
    refused(pending, withdraw(dec!(5.00), "W-1"), RejectCode::DuplicateBankRef);
}

#[test]
fn confirming_or_failing_an_unknown_withdrawal_is_refused() {
    let pending = with(funded(dec!(1000.00)), [withdrawal_requested(dec!(600.00), "W-1")]);
    let confirm = |r: &str| AccountCommand::ConfirmWithdrawal { bank_ref: bref(r) };
    let fail = |r: &str| AccountCommand::FailWithdrawal { bank_ref: bref(r) };
    refused(pending.clone(), confirm("W-9"), RejectCode::UnknownWithdrawal);
    refused(pending.clone(), fail("W-9"), RejectCode::UnknownWithdrawal);
    // A deposit's reference is not a withdrawal.
    refused(pending.clone(), confirm("DEP-1"), RejectCode::UnknownWithdrawal);
    // A withdrawal is answered once.
    let answered = with(
        pending.clone(),
        [AccountEvent::WithdrawalConfirmed {
            amount_cny: dec!(600.00),
            bank_ref: bref("W-1"),
        }],
    );
    refused(answered.clone(), confirm("W-1"), RejectCode::UnknownWithdrawal);
    refused(answered, fail("W-1"), RejectCode::UnknownWithdrawal);
    let failed = with(
        pending,
        [AccountEvent::WithdrawalFailed {
            amount_cny: dec!(600.00),
            bank_ref: bref("W-1"),
        }],
    );
    refused(failed, confirm("W-1"), RejectCode::UnknownWithdrawal);
}

// ---------------------------------------------------------------------------
// Compliance freeze
// ---------------------------------------------------------------------------

#[test]
fn freeze_and_unfreeze_are_recorded_once() {
    expect(
        funded(dec!(1000.00)),
        AccountCommand::Freeze {
            reason: "AML review".into(),
        },
        vec![frozen()],
    );
    let is_frozen = with(funded(dec!(1000.00)), [frozen()]);
    expect(
        is_frozen.clone(),
        AccountCommand::Freeze { reason: "again".into() },
        vec![],
    );
    expect(
        is_frozen,
        AccountCommand::Unfreeze {
            reason: "cleared".into(),
        },
        vec![AccountEvent::AccountUnfrozen {
            reason: "cleared".into(),
        }],
    );
    expect(
        funded(dec!(1000.00)),
        AccountCommand::Unfreeze {
            reason: "not frozen".into(),
        },
        vec![],
    );
}

#[test]
fn a_frozen_account_may_not_place_orders() {
    let given = with(funded(dec!(100000.00)), [frozen()]);
    refused(given.clone(), buy("O1", 100, dec!(10.00)), RejectCode::AccountFrozen);
    refused(
        with(holding_1000(), [frozen()]),
        sell("S1", 100, dec!(10.00)),
        RejectCode::AccountFrozen,
    );
    // Unfrozen, the same order is accepted.
    expect(
        with(given, [AccountEvent::AccountUnfrozen { reason: "ok".into() }]),
        buy("O1", 100, dec!(10.00)),
        vec![placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
    );
}

#[test]
fn a_frozen_account_may_not_withdraw() {
    refused(
        with(funded(dec!(1000.00)), [frozen()]),
        withdraw(dec!(100.00), "W-1"),
        RejectCode::AccountFrozen,
    );
}

#[test]
fn a_frozen_account_still_receives_deposits() {
    expect(
        with(funded(dec!(1000.00)), [frozen()]),
        deposit(dec!(100.00), "DEP-2"),
        vec![deposited(dec!(100.00), "DEP-2")],
    );
}

#[test]
fn a_frozen_account_still_books_fills_of_its_open_orders() {
    // The order was placed before the freeze; the exchange has executed it.
    // 100 × 10.00 = 1000.00; fees 5.06 (5.00 + 0.01 + 0.03 + 0.02); reserve 1005.06, all used.
    let given = with(
        funded(dec!(100000.00)),
        [placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06)), frozen()],
    );
    expect(
        given,
        fill("O1", "E1", 100, dec!(10.00)),
        vec![
            buy_filled(
                "O1",
                "E1",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(1005.06),
            ),
            completed("O1", dec!(0)),
        ],
    );
}

// ---------------------------------------------------------------------------
// Placing orders: reserves and pre-trade checks
// ---------------------------------------------------------------------------

#[test]
fn a_buy_freezes_value_and_fees_at_the_limit() {
    // buy 100 × 10.00 = 1000.00; commission max(0.25, 5.00) = 5.00; transfer 0.01;
    // handling 0.0341 -> 0.03; regulatory 0.02; no stamp duty on buys; total reserve 1005.06.
    let given = funded(dec!(100000.00));
    expect(
        given.clone(),
        buy("O1", 100, dec!(10.00)),
        vec![placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
    );
    let cash = state(with(given, [placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))])).cash();
    // 100000.00 - 1005.06 = 98994.94.
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(98994.94), dec!(1005.06)));
}

#[test]
fn a_buy_beyond_available_cash_is_refused_with_insufficient_funds() {
    // The reserve of 100 × 10.00 is 1005.06: 1005.05 is one fen short.
    refused(
        funded(dec!(1005.05)),
        buy("O1", 100, dec!(10.00)),
        RejectCode::InsufficientFunds,
    );
    expect(
        funded(dec!(1005.06)),
        buy("O1", 100, dec!(10.00)),
        vec![placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
    );
    // Cash frozen by another open order is not available.
    refused(
        with(
            funded(dec!(2000.00)),
            [placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
        ),
        buy("O2", 100, dec!(10.00)),
        RejectCode::InsufficientFunds,
    );
}

#[test]
fn an_order_id_is_used_once() {
    let given = with(
        funded(dec!(100000.00)),
        [placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
    );
    refused(given.clone(), buy("O1", 100, dec!(10.00)), RejectCode::DuplicateOrder);
    // Not even once the first order is over.
    let rejected = with(
        given,
        [AccountEvent::OrderRejected {
            order_id: oid("O1"),
            reason: "no".into(),
            released_cny: dec!(1005.06),
            released_shares: 0,
        }],
    );
    refused(rejected, buy("O1", 100, dec!(10.00)), RejectCode::DuplicateOrder);
}

#[test]
fn malformed_orders_are_refused() {
    let given = funded(dec!(100000.00));
    refused(given.clone(), buy("O1", 0, dec!(10.00)), RejectCode::Malformed);
    refused(given.clone(), buy("O1", 100, dec!(0)), RejectCode::Malformed);
    refused(given, buy("O1", 100, dec!(-10.00)), RejectCode::Malformed);
}

#[test]
fn an_unlisted_instrument_is_refused() {
    let mut o = order("O1", Side::Buy, 100, dec!(10.00));
    o.market.instrument = None;
    refused(funded(dec!(100000.00)), place(o), RejectCode::UnknownInstrument);
}

#[test]
fn an_order_without_a_previous_close_is_refused() {
    let mut o = order("O1", Side::Buy, 100, dec!(10.00));
    o.market.prev_close = None;
    refused(funded(dec!(100000.00)), place(o), RejectCode::NoReferencePrice);
}

#[test]
fn an_order_for_a_closed_day_is_refused() {
    let mut o = order("O1", Side::Buy, 100, dec!(10.00));
    o.market.day_closed = true;
    refused(funded(dec!(100000.00)), place(o), RejectCode::DayClosed);
}

fn with_product_risk(mut order: PlaceOrder, risk_level: u8) -> PlaceOrder {
    if let Some(info) = order.market.instrument.as_mut() {
        info.risk_level = risk_level;
    }
    order
}

#[test]
fn a_product_riskier_than_the_customer_is_refused() {
    // The customer's tolerance is 3.
    let o = with_product_risk(order("O1", Side::Buy, 100, dec!(10.00)), 4);
    refused(funded(dec!(100000.00)), place(o), RejectCode::Suitability);
    let o = with_product_risk(order("O1", Side::Buy, 100, dec!(10.00)), 5);
    refused(funded(dec!(100000.00)), place(o), RejectCode::Suitability);
    // Equal risk is suitable.
    let o = with_product_risk(order("O1", Side::Buy, 100, dec!(10.00)), 3);
    expect(
        funded(dec!(100000.00)),
        place(o),
        vec![placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
    );
}

#[test]
fn main_board_buys_come_in_lots_of_100() {
    let given = funded(dec!(100000.00));
    refused(given.clone(), buy("O1", 50, dec!(10.00)), RejectCode::LotSize);
    refused(given.clone(), buy("O1", 150, dec!(10.00)), RejectCode::LotSize);
    refused(given.clone(), buy("O1", 1001, dec!(10.00)), RejectCode::LotSize);
    // 200 × 10.00 = 2000.00; commission 0.50 -> 5.00; transfer 0.02; handling 0.0682 -> 0.07;
    // regulatory 0.04; reserve 2005.13.
    expect(
        given,
        buy("O1", 200, dec!(10.00)),
        vec![placed("O1", Side::Buy, 200, dec!(10.00), dec!(2005.13))],
    );
}

#[test]
fn other_boards_lots() {
    let given = funded(dec!(100000.00));
    let on = |board: Board, quantity: u64| {
        place(on_board(
            order("O1", Side::Buy, quantity, dec!(10.00)),
            board,
            dec!(10.00),
        ))
    };
    refused(given.clone(), on(Board::Chinext, 150), RejectCode::LotSize);
    refused(given.clone(), on(Board::St, 50), RejectCode::LotSize);
    // STAR: at least 200 ...
    refused(given.clone(), on(Board::Star, 100), RejectCode::LotSize);
    refused(given.clone(), on(Board::Star, 199), RejectCode::LotSize);
    // ... then steps of 1.
    // 200 × 10.00 = 2000.00; reserve 2005.13 as on the main board.
    expect(
        given.clone(),
        on(Board::Star, 200),
        vec![placed_at(
            Board::Star,
            today(),
            "O1",
            Side::Buy,
            200,
            dec!(10.00),
            dec!(2005.13),
        )],
    );
    // 201 × 10.00 = 2010.00; commission 0.5025 -> 5.00; transfer 0.0201 -> 0.02;
    // handling 0.068541 -> 0.07; regulatory 0.0402 -> 0.04; reserve 2015.13.
    expect(
        given,
        on(Board::Star, 201),
        vec![placed_at(
            Board::Star,
            today(),
            "O1",
            Side::Buy,
            201,
            dec!(10.00),
            dec!(2015.13),
        )],
    );
}

#[test]
fn prices_keep_to_the_tick() {
    let given = funded(dec!(100000.00));
    refused(given.clone(), buy("O1", 100, dec!(10.005)), RejectCode::PriceTick);
    refused(given.clone(), buy("O1", 100, dec!(9.999)), RejectCode::PriceTick);
    // 100 × 10.01 = 1001.00; commission 5.00; transfer 0.01001 -> 0.01; handling 0.0341341 -> 0.03;
    // regulatory 0.02002 -> 0.02; reserve 1006.06.
    expect(
        given,
        buy("O1", 100, dec!(10.01)),
        vec![placed("O1", Side::Buy, 100, dec!(10.01), dec!(1006.06))],
    );
}

/// A buy on `board` whose previous close is `prev_close`.
fn limit_check(board: Board, prev_close: Decimal, quantity: u64, price: Decimal) -> AccountCommand {
    place(on_board(order("O1", Side::Buy, quantity, price), board, prev_close))
}

#[test]
fn main_board_price_limit_is_10_percent_and_includes_its_bounds() {
    // 10.00 × 0.90 = 9.00 to 10.00 × 1.10 = 11.00.
    let given = funded(dec!(100000.00));
    refused(
        given.clone(),
        limit_check(Board::Main, dec!(10.00), 100, dec!(11.01)),
        RejectCode::PriceLimit,
    );
    refused(
        given.clone(),
        limit_check(Board::Main, dec!(10.00), 100, dec!(8.99)),
        RejectCode::PriceLimit,
    );
    // 100 × 11.00 = 1100.00; commission 5.00; transfer 0.011 -> 0.01; handling 0.03751 -> 0.04;
    // regulatory 0.022 -> 0.02; reserve 1105.07.
    expect(
        given.clone(),
        limit_check(Board::Main, dec!(10.00), 100, dec!(11.00)),
        vec![placed("O1", Side::Buy, 100, dec!(11.00), dec!(1105.07))],
    );
    // 100 × 9.00 = 900.00; commission 5.00; transfer 0.009 -> 0.01; handling 0.03069 -> 0.03;
    // regulatory 0.018 -> 0.02; reserve 905.06.
    expect(
        given,
        limit_check(Board::Main, dec!(10.00), 100, dec!(9.00)),
        vec![placed("O1", Side::Buy, 100, dec!(9.00), dec!(905.06))],
    );
}

#[test]
fn price_limits_round_half_away_from_zero() {
    // 10.05 × 0.90 = 9.045 -> 9.05 (half away from zero; half to even would give 9.04);
    // 10.05 × 1.10 = 11.055 -> 11.06.
    let given = funded(dec!(100000.00));
    refused(
        given.clone(),
        limit_check(Board::Main, dec!(10.05), 100, dec!(9.04)),
        RejectCode::PriceLimit,
    );
    refused(
        given.clone(),
        limit_check(Board::Main, dec!(10.05), 100, dec!(11.07)),
        RejectCode::PriceLimit,
    );
    // 100 × 9.05 = 905.00; commission 5.00; transfer 0.00905 -> 0.01; handling 0.0308605 -> 0.03;
    // regulatory 0.0181 -> 0.02; reserve 910.06.
    expect(
        given.clone(),
        limit_check(Board::Main, dec!(10.05), 100, dec!(9.05)),
        vec![placed("O1", Side::Buy, 100, dec!(9.05), dec!(910.06))],
    );
    // 100 × 11.06 = 1106.00; commission 5.00; transfer 0.01106 -> 0.01; handling 0.0377146 -> 0.04;
    // regulatory 0.02212 -> 0.02; reserve 1111.07.
    expect(
        given,
        limit_check(Board::Main, dec!(10.05), 100, dec!(11.06)),
        vec![placed("O1", Side::Buy, 100, dec!(11.06), dec!(1111.07))],
    );
}

#[test]
fn chinext_price_limit_is_20_percent_and_includes_its_bounds() {
    // 10.00 × 0.80 = 8.00 to 10.00 × 1.20 = 12.00.
    let given = funded(dec!(100000.00));
    refused(
        given.clone(),
        limit_check(Board::Chinext, dec!(10.00), 100, dec!(12.01)),
        RejectCode::PriceLimit,
    );
    refused(
        given.clone(),
        limit_check(Board::Chinext, dec!(10.00), 100, dec!(7.99)),
        RejectCode::PriceLimit,
    );
    // 100 × 12.00 = 1200.00; commission 5.00; transfer 0.012 -> 0.01; handling 0.04092 -> 0.04;
    // regulatory 0.024 -> 0.02; reserve 1205.07.
    expect(
        given.clone(),
        limit_check(Board::Chinext, dec!(10.00), 100, dec!(12.00)),
        vec![placed_at(
            Board::Chinext,
            today(),
            "O1",
            Side::Buy,
            100,
            dec!(12.00),
            dec!(1205.07),
        )],
    );
    // 100 × 8.00 = 800.00; commission 5.00; transfer 0.008 -> 0.01; handling 0.02728 -> 0.03;
    // regulatory 0.016 -> 0.02; reserve 805.06.
    expect(
        given,
        limit_check(Board::Chinext, dec!(10.00), 100, dec!(8.00)),
        vec![placed_at(
            Board::Chinext,
            today(),
            "O1",
            Side::Buy,
            100,
            dec!(8.00),
            dec!(805.06),
        )],
    );
}

#[test]
fn star_price_limit_is_20_percent_and_includes_its_bounds() {
    let given = funded(dec!(100000.00));
    refused(
        given.clone(),
        limit_check(Board::Star, dec!(10.00), 200, dec!(12.01)),
        RejectCode::PriceLimit,
    );
    refused(
        given.clone(),
        limit_check(Board::Star, dec!(10.00), 200, dec!(7.99)),
        RejectCode::PriceLimit,
    );
    // 200 × 12.00 = 2400.00; commission 0.60 -> 5.00; transfer 0.024 -> 0.02; handling 0.08184 -> 0.08;
    // regulatory 0.048 -> 0.05; reserve 2405.15.
    expect(
        given.clone(),
        limit_check(Board::Star, dec!(10.00), 200, dec!(12.00)),
        vec![placed_at(
            Board::Star,
            today(),
            "O1",
            Side::Buy,
            200,
            dec!(12.00),
            dec!(2405.15),
        )],
    );
    // 200 × 8.00 = 1600.00; commission 5.00; transfer 0.016 -> 0.02; handling 0.05456 -> 0.05;
    // regulatory 0.032 -> 0.03; reserve 1605.10.
    expect(
        given,
        limit_check(Board::Star, dec!(10.00), 200, dec!(8.00)),
        vec![placed_at(
            Board::Star,
            today(),
            "O1",
            Side::Buy,
            200,
            dec!(8.00),
            dec!(1605.10),
        )],
    );
}

#[test]
fn st_price_limit_is_5_percent_and_includes_its_bounds() {
    // 10.00 × 0.95 = 9.50 to 10.00 × 1.05 = 10.50.
    let given = funded(dec!(100000.00));
    refused(
        given.clone(),
        limit_check(Board::St, dec!(10.00), 100, dec!(10.51)),
        RejectCode::PriceLimit,
    );
    refused(
        given.clone(),
        limit_check(Board::St, dec!(10.00), 100, dec!(9.49)),
        RejectCode::PriceLimit,
    );
    // 100 × 10.50 = 1050.00; commission 5.00; transfer 0.0105 -> 0.01; handling 0.035805 -> 0.04;
    // regulatory 0.021 -> 0.02; reserve 1055.07.
    expect(
        given.clone(),
        limit_check(Board::St, dec!(10.00), 100, dec!(10.50)),
        vec![placed_at(
            Board::St,
            today(),
            "O1",
            Side::Buy,
            100,
            dec!(10.50),
            dec!(1055.07),
        )],
    );
    // 100 × 9.50 = 950.00; commission 5.00; transfer 0.0095 -> 0.01; handling 0.032395 -> 0.03;
    // regulatory 0.019 -> 0.02; reserve 955.06.
    expect(
        given,
        limit_check(Board::St, dec!(10.00), 100, dec!(9.50)),
        vec![placed_at(
            Board::St,
            today(),
            "O1",
            Side::Buy,
            100,
            dec!(9.50),
            dec!(955.06),
        )],
    );
}

#[test]
fn sells_are_held_to_the_price_limits_too() {
    refused(holding_1000(), sell("S1", 100, dec!(8.99)), RejectCode::PriceLimit);
    refused(holding_1000(), sell("S1", 100, dec!(11.01)), RejectCode::PriceLimit);
    expect(
        holding_1000(),
        sell("S1", 100, dec!(9.00)),
        vec![placed("S1", Side::Sell, 100, dec!(9.00), dec!(0))],
    );
}

// ---------------------------------------------------------------------------
// Sells: positions, T+1, odd lots, the fee cover
// ---------------------------------------------------------------------------

#[test]
fn a_sell_freezes_its_shares() {
    // At 10.00 one share's value exceeds its fees (cover 0, see `sell_fee_cover_*`), so no cash is frozen.
    let placed_sell = placed("S1", Side::Sell, 300, dec!(10.00), dec!(0));
    expect(holding_1000(), sell("S1", 300, dec!(10.00)), vec![placed_sell.clone()]);
    let after = with(holding_1000(), [placed_sell]);
    let position = state(after.clone()).positions()[&code(Board::Main)].clone();
    assert_eq!((position.quantity, position.frozen), (1000, 300));
    // 1000 - 300 = 700 are left to sell.
    refused(
        after.clone(),
        sell("S2", 800, dec!(10.00)),
        RejectCode::InsufficientPosition,
    );
    expect(
        after,
        sell("S2", 700, dec!(10.00)),
        vec![placed("S2", Side::Sell, 700, dec!(10.00), dec!(0))],
    );
}

#[test]
fn a_sell_beyond_the_position_is_refused_with_insufficient_position() {
    refused(
        funded(dec!(100000.00)),
        sell("S1", 100, dec!(10.00)),
        RejectCode::InsufficientPosition,
    );
    refused(
        holding_1000(),
        sell("S1", 1100, dec!(10.00)),
        RejectCode::InsufficientPosition,
    );
    // Another instrument's shares do not count.
    refused(
        holding_1000(),
        place(on_board(
            order("S1", Side::Sell, 100, dec!(10.00)),
            Board::Chinext,
            dec!(10.00),
        )),
        RejectCode::InsufficientPosition,
    );
}

#[test]
fn shares_bought_today_are_sellable_from_the_next_trade_date() {
    // 1000 bought today at 10.00: fees 5.64 as in `holding_1000`.
    let given = with(
        funded(dec!(100000.00)),
        bought(
            "B1",
            Board::Main,
            1000,
            dec!(10.00),
            today(),
            fees(dec!(5.00), dec!(0), dec!(0.10), dec!(0.34), dec!(0.20)),
        ),
    );
    refused(
        given.clone(),
        sell("S1", 1000, dec!(10.00)),
        RejectCode::InsufficientPosition,
    );
    refused(
        given.clone(),
        sell("S1", 100, dec!(10.00)),
        RejectCode::InsufficientPosition,
    );
    expect(
        given.clone(),
        place(on_day(order("S1", Side::Sell, 1000, dec!(10.00)), next_day())),
        vec![placed_at(
            Board::Main,
            next_day(),
            "S1",
            Side::Sell,
            1000,
            dec!(10.00),
            dec!(0),
        )],
    );
    // Settled, they are sellable from the next date as well.
    let settled_given = with(given, [settled(today(), dec!(0))]);
    expect(
        settled_given,
        place(on_day(order("S1", Side::Sell, 1000, dec!(10.00)), next_day())),
        vec![placed_at(
            Board::Main,
            next_day(),
            "S1",
            Side::Sell,
            1000,
            dec!(10.00),
            dec!(0),
        )],
    );
}

#[test]
fn only_todays_buys_are_locked_by_t_plus_1() {
    // 1000 held from the previous day, 500 more bought today:
    // 500 × 10.00 = 5000.00; commission 1.25 -> 5.00; transfer 0.05; handling 0.1705 -> 0.17; regulatory 0.10.
    let given = with(
        holding_1000(),
        bought(
            "B1",
            Board::Main,
            500,
            dec!(10.00),
            today(),
            fees(dec!(5.00), dec!(0), dec!(0.05), dec!(0.17), dec!(0.10)),
        ),
    );
    refused(
        given.clone(),
        sell("S1", 1100, dec!(10.00)),
        RejectCode::InsufficientPosition,
    );
    expect(
        given,
        sell("S1", 1000, dec!(10.00)),
        vec![placed("S1", Side::Sell, 1000, dec!(10.00), dec!(0))],
    );
}

/// 1050 shares held (an odd lot of 50 on top of 10 lots, e.g. from a bonus issue).
/// 1050 × 10.00 = 10500.00; commission 2.625 -> 5.00; transfer 0.105 -> 0.11;
/// handling 0.35805 -> 0.36; regulatory 0.21.
fn holding_1050() -> Vec<AccountEvent> {
    with(
        funded(dec!(100000.00)),
        bought(
            "B0",
            Board::Main,
            1050,
            dec!(10.00),
            prev_day(),
            fees(dec!(5.00), dec!(0), dec!(0.11), dec!(0.36), dec!(0.21)),
        ),
    )
}

#[test]
fn an_odd_lot_sells_only_to_empty_the_position() {
    refused(holding_1050(), sell("S1", 50, dec!(10.00)), RejectCode::LotSize);
    refused(holding_1050(), sell("S1", 1049, dec!(10.00)), RejectCode::LotSize);
    expect(
        holding_1050(),
        sell("S1", 1050, dec!(10.00)),
        vec![placed("S1", Side::Sell, 1050, dec!(10.00), dec!(0))],
    );
    // Whole lots of it may go.
    expect(
        holding_1050(),
        sell("S1", 1000, dec!(10.00)),
        vec![placed("S1", Side::Sell, 1000, dec!(10.00), dec!(0))],
    );
}

#[test]
fn an_odd_lot_sell_may_empty_what_is_left_sellable() {
    // 1000 of the 1050 are frozen by an open sell: the 50 left may go, as an odd lot.
    let given = with(holding_1050(), [placed("S1", Side::Sell, 1000, dec!(10.00), dec!(0))]);
    expect(
        given.clone(),
        sell("S2", 50, dec!(10.00)),
        vec![placed("S2", Side::Sell, 50, dec!(10.00), dec!(0))],
    );
    refused(given, sell("S2", 30, dec!(10.00)), RejectCode::LotSize);
}

#[test]
fn star_sells_below_200_only_to_empty_the_position() {
    // 250 STAR shares: 250 × 10.00 = 2500.00; commission 0.625 -> 5.00; transfer 0.025 -> 0.03;
    // handling 0.08525 -> 0.09; regulatory 0.05.
    let given = with(
        funded(dec!(100000.00)),
        bought(
            "B0",
            Board::Star,
            250,
            dec!(10.00),
            prev_day(),
            fees(dec!(5.00), dec!(0), dec!(0.03), dec!(0.09), dec!(0.05)),
        ),
    );
    let star_sell = |id: &str, quantity: u64| {
        place(on_board(
            order(id, Side::Sell, quantity, dec!(10.00)),
            Board::Star,
            dec!(10.00),
        ))
    };
    refused(given.clone(), star_sell("S1", 150), RejectCode::LotSize);
    expect(
        given.clone(),
        star_sell("S1", 201),
        vec![placed_at(
            Board::Star,
            today(),
            "S1",
            Side::Sell,
            201,
            dec!(10.00),
            dec!(0),
        )],
    );
    expect(
        given.clone(),
        star_sell("S1", 250),
        vec![placed_at(
            Board::Star,
            today(),
            "S1",
            Side::Sell,
            250,
            dec!(10.00),
            dec!(0),
        )],
    );
    // With 100 frozen, the 150 left may go all at once.
    let part_frozen = with(
        given,
        [placed_at(
            Board::Star,
            today(),
            "S1",
            Side::Sell,
            100,
            dec!(10.00),
            dec!(0),
        )],
    );
    expect(
        part_frozen,
        star_sell("S2", 150),
        vec![placed_at(
            Board::Star,
            today(),
            "S2",
            Side::Sell,
            150,
            dec!(10.00),
            dec!(0),
        )],
    );
}

#[test]
fn a_sell_fill_pays_stamp_duty_and_its_proceeds_are_unsettled() {
    // 1000 × 10.00 = 10000.00; fees 10.64 (see `sell_1000_fees`); proceeds 9989.36.
    let given = with(holding_1000(), [placed("S1", Side::Sell, 1000, dec!(10.00), dec!(0))]);
    expect(
        given,
        fill("S1", "E-S1", 1000, dec!(10.00)),
        vec![
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
    );
    let after = state(sold_1000_today());
    assert_eq!(after.positions().get(&code(Board::Main)).map_or(0, |p| p.quantity), 0);
    assert_eq!(after.cash().unsettled_cny, dec!(9989.36));
}

#[test]
fn sell_fees_round_half_away_from_zero() {
    // Sell limit 10.00 filled higher at 10.10: 100 × 10.10 = 1010.00; commission 0.2525 -> 5.00;
    // stamp 0.505 -> 0.51 (half away from zero); transfer 0.0101 -> 0.01; handling 0.034441 -> 0.03;
    // regulatory 0.0202 -> 0.02; fees 5.57; proceeds 1010.00 - 5.57 = 1004.43.
    let given = with(holding_1000(), [placed("S1", Side::Sell, 100, dec!(10.00), dec!(0))]);
    expect(
        given,
        fill("S1", "E1", 100, dec!(10.10)),
        vec![
            sell_filled(
                "S1",
                "E1",
                100,
                dec!(10.10),
                dec!(1010.00),
                fees(dec!(5.00), dec!(0.51), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(1004.43),
            ),
            completed("S1", dec!(0)),
        ],
    );
}

#[test]
fn sell_fee_cover_is_what_one_share_s_fees_exceed_its_value() {
    let rules = rules();
    // One share at 1.00: commission 5.00 (minimum); stamp 0.0005 -> 0.00; others 0.00; 5.00 - 1.00 = 4.00.
    assert_eq!(sell_fee_cover(dec!(1.00), &rules), dec!(4.00));
    // One share at 0.50: 5.00 - 0.50 = 4.50.
    assert_eq!(sell_fee_cover(dec!(0.50), &rules), dec!(4.50));
    // One share at 4.99: 5.00 + stamp 0.002495 -> 0.00 = 5.00; 5.00 - 4.99 = 0.01.
    assert_eq!(sell_fee_cover(dec!(4.99), &rules), dec!(0.01));
    // One share at 10.00: 5.00 + stamp 0.005 -> 0.01 = 5.01 < 10.00: no cover.
    assert_eq!(sell_fee_cover(dec!(10.00), &rules), dec!(0));
}

/// 100 shares of the main-board stock bought at 1.00 on the previous day, after a deposit.
/// 100 × 1.00 = 100.00; commission 0.025 -> 5.00; transfer 0.001 -> 0.00; handling 0.00341 -> 0.00;
/// regulatory 0.002 -> 0.00; cost 105.00. Cash left: deposit - 105.00.
fn holding_100_at_1(deposit_cny: Decimal) -> Vec<AccountEvent> {
    with(
        funded(deposit_cny),
        bought(
            "B0",
            Board::Main,
            100,
            dec!(1.00),
            prev_day(),
            fees(dec!(5.00), dec!(0), dec!(0), dec!(0), dec!(0)),
        ),
    )
}

fn cheap_sell(id: &str, quantity: u64) -> AccountCommand {
    place(on_board(
        order(id, Side::Sell, quantity, dec!(1.00)),
        Board::Main,
        dec!(1.00),
    ))
}

#[test]
fn a_cheap_sell_freezes_the_fee_cover() {
    // sell_fee_cover(1.00) = 4.00.
    expect(
        holding_100_at_1(dec!(1000.00)),
        cheap_sell("S1", 100),
        vec![placed("S1", Side::Sell, 100, dec!(1.00), dec!(4.00))],
    );
    // Cash left 109.00 - 105.00 = 4.00 covers it; 108.99 - 105.00 = 3.99 does not.
    expect(
        holding_100_at_1(dec!(109.00)),
        cheap_sell("S1", 100),
        vec![placed("S1", Side::Sell, 100, dec!(1.00), dec!(4.00))],
    );
    refused(
        holding_100_at_1(dec!(108.99)),
        cheap_sell("S1", 100),
        RejectCode::InsufficientFunds,
    );
}

#[test]
fn a_small_first_sell_fill_takes_its_excess_fees_from_the_cover() {
    let given = with(
        holding_100_at_1(dec!(109.00)),
        [placed("S1", Side::Sell, 100, dec!(1.00), dec!(4.00))],
    );
    // Fill 1 × 1.00 = 1.00; commission 5.00 (minimum); stamp 0.0005 -> 0.00; others 0.00.
    // Net 1.00 - 5.00 = -4.00, all taken from the 4.00 cover: available and unsettled unchanged.
    let first = AccountEvent::FillBooked {
        order_id: oid("S1"),
        exec_id: eid("E1"),
        instrument: code(Board::Main),
        side: Side::Sell,
        trade_date: today(),
        quantity: 1,
        price: dec!(1.00),
        value_cny: dec!(1.00),
        fees: fees(dec!(5.00), dec!(0), dec!(0), dec!(0), dec!(0)),
        reserve_used_cny: dec!(4.00),
        available_change_cny: dec!(0),
        unsettled_change_cny: dec!(0),
    };
    expect(given.clone(), fill("S1", "E1", 1, dec!(1.00)), vec![first.clone()]);
    let cash = state(with(given.clone(), [first.clone()])).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(0), dec!(0)));
    // Then 99 × 1.00 = 99.00, cumulative 100.00: commission still 5.00 (+0.00); stamp 0.05 (+0.05);
    // transfer 0.001 -> 0.00; handling 0.00341 -> 0.00; regulatory 0.002 -> 0.00.
    // Proceeds 99.00 - 0.05 = 98.95 refill the cover's 4.00 first (a later fill could need it);
    // 94.95 reach available cash, and the whole order being filled, the 4.00 come back too.
    let second = AccountEvent::FillBooked {
        order_id: oid("S1"),
        exec_id: eid("E2"),
        instrument: code(Board::Main),
        side: Side::Sell,
        trade_date: today(),
        quantity: 99,
        price: dec!(1.00),
        value_cny: dec!(99.00),
        fees: fees(dec!(0), dec!(0.05), dec!(0), dec!(0), dec!(0)),
        reserve_used_cny: dec!(-4.00),
        available_change_cny: dec!(94.95),
        unsettled_change_cny: dec!(94.95),
    };
    expect(
        with(given.clone(), [first.clone()]),
        fill("S1", "E2", 99, dec!(1.00)),
        vec![second.clone(), completed("S1", dec!(4.00))],
    );
    let cash = state(with(given, [first, second, completed("S1", dec!(4.00))])).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(98.95), dec!(0)));
}

#[test]
fn an_unused_fee_cover_is_released_when_the_sell_completes() {
    // 100 × 1.00 = 100.00 in one fill: commission 5.00; stamp 0.05; fees 5.05; proceeds 94.95.
    // The cover of 4.00 was not needed and goes back.
    let given = with(
        holding_100_at_1(dec!(109.00)),
        [placed("S1", Side::Sell, 100, dec!(1.00), dec!(4.00))],
    );
    expect(
        given,
        fill("S1", "E1", 100, dec!(1.00)),
        vec![
            sell_filled(
                "S1",
                "E1",
                100,
                dec!(1.00),
                dec!(100.00),
                fees(dec!(5.00), dec!(0.05), dec!(0), dec!(0), dec!(0)),
                dec!(94.95),
            ),
            completed("S1", dec!(4.00)),
        ],
    );
}

#[test]
fn a_canceled_cheap_sell_releases_its_cover_and_shares() {
    let given = with(
        holding_100_at_1(dec!(109.00)),
        [placed("S1", Side::Sell, 100, dec!(1.00), dec!(4.00))],
    );
    expect(
        given,
        confirm_cancel("S1"),
        vec![AccountEvent::OrderCanceled {
            order_id: oid("S1"),
            released_cny: dec!(4.00),
            released_shares: 100,
        }],
    );
}

// ---------------------------------------------------------------------------
// Fills
// ---------------------------------------------------------------------------

fn open_buy_100() -> Vec<AccountEvent> {
    with(
        funded(dec!(100000.00)),
        [placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
    )
}

#[test]
fn a_whole_buy_fill_completes_the_order() {
    let fill_event = buy_filled(
        "O1",
        "E1",
        100,
        dec!(10.00),
        dec!(1000.00),
        fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
        dec!(1005.06),
    );
    expect(
        open_buy_100(),
        fill("O1", "E1", 100, dec!(10.00)),
        vec![fill_event.clone(), completed("O1", dec!(0))],
    );
    let after = state(with(open_buy_100(), [fill_event, completed("O1", dec!(0))]));
    // 100000.00 - 1005.06 = 98994.94 available, nothing frozen, 100 shares held.
    assert_eq!(after.cash().available_cny, dec!(98994.94));
    assert_eq!(after.cash().frozen_cny, dec!(0));
    assert_eq!(after.positions()[&code(Board::Main)].quantity, 100);
    assert!(after.open_orders().is_empty());
}

#[test]
fn a_buy_filled_below_its_limit_releases_the_rest_of_its_reserve() {
    // 100 × 9.90 = 990.00; commission 0.2475 -> 5.00; transfer 0.0099 -> 0.01;
    // handling 0.033759 -> 0.03; regulatory 0.0198 -> 0.02; fees 5.06; cost 995.06.
    // Released 1005.06 - 995.06 = 10.00.
    expect(
        open_buy_100(),
        fill("O1", "E1", 100, dec!(9.90)),
        vec![
            buy_filled(
                "O1",
                "E1",
                100,
                dec!(9.90),
                dec!(990.00),
                fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(995.06),
            ),
            completed("O1", dec!(10.00)),
        ],
    );
}

#[test]
fn the_commission_minimum_is_charged_once_per_order() {
    // Buy 300 × 10.00 = 3000.00; commission 0.75 -> 5.00; transfer 0.03; handling 0.1023 -> 0.10;
    // regulatory 0.06; fees 5.19; reserve 3005.19. Filled in three fills of 100 at 10.00.
    let o = placed("O1", Side::Buy, 300, dec!(10.00), dec!(3005.19));
    let given = with(funded(dec!(100000.00)), [o]);
    // Fill 1, cumulative 1000.00: commission 0.25 -> 5.00; transfer 0.01; handling 0.0341 -> 0.03;
    // regulatory 0.02; fees 5.06.
    let f1 = buy_filled(
        "O1",
        "E1",
        100,
        dec!(10.00),
        dec!(1000.00),
        fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
        dec!(1005.06),
    );
    expect(given.clone(), fill("O1", "E1", 100, dec!(10.00)), vec![f1.clone()]);
    // Fill 2, cumulative 2000.00: commission 0.50 -> 5.00, already paid (+0.00); transfer 0.02 (+0.01);
    // handling 0.0682 -> 0.07 (+0.04); regulatory 0.04 (+0.02); fees 0.07.
    let f2 = buy_filled(
        "O1",
        "E2",
        100,
        dec!(10.00),
        dec!(1000.00),
        fees(dec!(0), dec!(0), dec!(0.01), dec!(0.04), dec!(0.02)),
        dec!(1000.07),
    );
    let given = with(given, [f1]);
    expect(given.clone(), fill("O1", "E2", 100, dec!(10.00)), vec![f2.clone()]);
    // Fill 3, cumulative 3000.00: commission 0.75 -> 5.00 (+0.00); transfer 0.03 (+0.01);
    // handling 0.1023 -> 0.10 (+0.03); regulatory 0.06 (+0.02); fees 0.06.
    // Fees 5.06 + 0.07 + 0.06 = 5.19 = the fees on the whole 3000.00 (not 3 × 5.06 = 15.18).
    // Reserve used 1005.06 + 1000.07 + 1000.06 = 3005.19: nothing left to release.
    let given = with(given, [f2]);
    expect(
        given,
        fill("O1", "E3", 100, dec!(10.00)),
        vec![
            buy_filled(
                "O1",
                "E3",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(0), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(1000.06),
            ),
            completed("O1", dec!(0)),
        ],
    );
}

#[test]
fn fees_are_cumulative_per_order_across_the_commission_minimum() {
    // Buy 10000 × 10.00 = 100000.00; commission 25.00; transfer 1.00; handling 3.41; regulatory 2.00;
    // fees 31.41; reserve 100031.41. Filled 1000, 2000, then 7000 at 10.00.
    let given = with(
        funded(dec!(200000.00)),
        [placed("O1", Side::Buy, 10000, dec!(10.00), dec!(100031.41))],
    );
    // Fill 1, cumulative 10000.00: commission 2.50 -> 5.00; transfer 0.10; handling 0.341 -> 0.34;
    // regulatory 0.20; fees 5.64.
    let f1 = buy_filled(
        "O1",
        "E1",
        1000,
        dec!(10.00),
        dec!(10000.00),
        fees(dec!(5.00), dec!(0), dec!(0.10), dec!(0.34), dec!(0.20)),
        dec!(10005.64),
    );
    expect(given.clone(), fill("O1", "E1", 1000, dec!(10.00)), vec![f1.clone()]);
    // Fill 2, cumulative 30000.00: commission 7.50 (+2.50); transfer 0.30 (+0.20);
    // handling 1.023 -> 1.02 (+0.68); regulatory 0.60 (+0.40); fees 3.78.
    let f2 = buy_filled(
        "O1",
        "E2",
        2000,
        dec!(10.00),
        dec!(20000.00),
        fees(dec!(2.50), dec!(0), dec!(0.20), dec!(0.68), dec!(0.40)),
        dec!(20003.78),
    );
    let given = with(given, [f1]);
    expect(given.clone(), fill("O1", "E2", 2000, dec!(10.00)), vec![f2.clone()]);
    // Fill 3, cumulative 100000.00: commission 25.00 (+17.50); transfer 1.00 (+0.70);
    // handling 3.41 (+2.39); regulatory 2.00 (+1.40); fees 21.99.
    // Commission 5.00 + 2.50 + 17.50 = 25.00; all fees 5.64 + 3.78 + 21.99 = 31.41, the fees on the whole.
    // Reserve used 10005.64 + 20003.78 + 70021.99 = 100031.41: nothing to release.
    let given = with(given, [f2]);
    expect(
        given,
        fill("O1", "E3", 7000, dec!(10.00)),
        vec![
            buy_filled(
                "O1",
                "E3",
                7000,
                dec!(10.00),
                dec!(70000.00),
                fees(dec!(17.50), dec!(0), dec!(0.70), dec!(2.39), dec!(1.40)),
                dec!(70021.99),
            ),
            completed("O1", dec!(0)),
        ],
    );
}

#[test]
fn a_fill_beyond_the_order_s_remainder_is_refused() {
    refused(
        open_buy_100(),
        fill("O1", "E1", 101, dec!(10.00)),
        RejectCode::FillExceedsOrder,
    );
    // After 40 of 100 (40 × 10.00 = 400.00; commission 5.00; transfer 0.004 -> 0.00;
    // handling 0.01364 -> 0.01; regulatory 0.008 -> 0.01; fees 5.02), 60 are left.
    let partly = with(
        open_buy_100(),
        [buy_filled(
            "O1",
            "E1",
            40,
            dec!(10.00),
            dec!(400.00),
            fees(dec!(5.00), dec!(0), dec!(0), dec!(0.01), dec!(0.01)),
            dec!(405.02),
        )],
    );
    refused(
        partly.clone(),
        fill("O1", "E2", 61, dec!(10.00)),
        RejectCode::FillExceedsOrder,
    );
    // The 60: cumulative 1000.00, fees 5.06, so +0.00, +0.01, +0.02, +0.01 = 0.04; cost 600.04;
    // released 1005.06 - 405.02 - 600.04 = 0.00.
    expect(
        partly,
        fill("O1", "E2", 60, dec!(10.00)),
        vec![
            buy_filled(
                "O1",
                "E2",
                60,
                dec!(10.00),
                dec!(600.00),
                fees(dec!(0), dec!(0), dec!(0.01), dec!(0.02), dec!(0.01)),
                dec!(600.04),
            ),
            completed("O1", dec!(0)),
        ],
    );
}

#[test]
fn a_buy_fill_above_its_limit_is_refused() {
    refused(
        open_buy_100(),
        fill("O1", "E1", 100, dec!(10.01)),
        RejectCode::FillPrice,
    );
}

#[test]
fn a_sell_fill_below_its_limit_is_refused() {
    let given = with(holding_1000(), [placed("S1", Side::Sell, 100, dec!(10.00), dec!(0))]);
    refused(given, fill("S1", "E1", 100, dec!(9.99)), RejectCode::FillPrice);
}

#[test]
fn a_fill_price_off_the_tick_is_refused() {
    refused(
        open_buy_100(),
        fill("O1", "E1", 100, dec!(9.995)),
        RejectCode::FillPrice,
    );
}

#[test]
fn malformed_fills_are_refused() {
    refused(open_buy_100(), fill("O1", "E1", 0, dec!(10.00)), RejectCode::Malformed);
    refused(open_buy_100(), fill("O1", "E1", 100, dec!(0)), RejectCode::Malformed);
}

#[test]
fn a_repeated_execution_id_is_refused_as_duplicate_exec() {
    // Buy 200 × 10.00: reserve 2005.13 (see `main_board_buys_come_in_lots_of_100`); E1 filled 100 of it.
    let given = with(
        funded(dec!(100000.00)),
        [
            placed("O1", Side::Buy, 200, dec!(10.00), dec!(2005.13)),
            buy_filled(
                "O1",
                "E1",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(1005.06),
            ),
            placed("O2", Side::Buy, 100, dec!(10.00), dec!(1005.06)),
        ],
    );
    refused(
        given.clone(),
        fill("O1", "E1", 100, dec!(10.00)),
        RejectCode::DuplicateExec,
    );
    // The execution id is the exchange's: it is not reused for another order either.
    refused(
        given.clone(),
        fill("O2", "E1", 100, dec!(10.00)),
        RejectCode::DuplicateExec,
    );
    // A new execution id books: cumulative 2000.00 -> +0.00, +0.01, +0.04, +0.02 = 0.07 (as in
    // `the_commission_minimum_is_charged_once_per_order`); released 2005.13 - 1005.06 - 1000.07 = 0.00.
    expect(
        given,
        fill("O1", "E2", 100, dec!(10.00)),
        vec![
            buy_filled(
                "O1",
                "E2",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(0), dec!(0), dec!(0.01), dec!(0.04), dec!(0.02)),
                dec!(1000.07),
            ),
            completed("O1", dec!(0)),
        ],
    );
}

#[test]
fn a_repeated_execution_id_of_a_completed_order_is_still_a_duplicate() {
    let done = with(
        open_buy_100(),
        [
            buy_filled(
                "O1",
                "E1",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(1005.06),
            ),
            completed("O1", dec!(0)),
        ],
    );
    refused(done, fill("O1", "E1", 100, dec!(10.00)), RejectCode::DuplicateExec);
}

// ---------------------------------------------------------------------------
// Order lifecycle: unknown and closed orders, reject, cancel, expiry
// ---------------------------------------------------------------------------

#[test]
fn commands_for_an_unknown_order_are_refused() {
    refused(
        open_buy_100(),
        fill("O9", "E1", 100, dec!(10.00)),
        RejectCode::UnknownOrder,
    );
    refused(open_buy_100(), request_cancel("O9"), RejectCode::UnknownOrder);
    refused(open_buy_100(), confirm_cancel("O9"), RejectCode::UnknownOrder);
    refused(open_buy_100(), reject_order("O9"), RejectCode::UnknownOrder);
}

fn closed_orders() -> Vec<(&'static str, Vec<AccountEvent>)> {
    let completed_order = with(
        open_buy_100(),
        [
            buy_filled(
                "O1",
                "E1",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(1005.06),
            ),
            completed("O1", dec!(0)),
        ],
    );
    let canceled = with(
        open_buy_100(),
        [AccountEvent::OrderCanceled {
            order_id: oid("O1"),
            released_cny: dec!(1005.06),
            released_shares: 0,
        }],
    );
    let expired = with(
        open_buy_100(),
        [AccountEvent::OrderExpired {
            order_id: oid("O1"),
            trade_date: today(),
            released_cny: dec!(1005.06),
            released_shares: 0,
        }],
    );
    let rejected = with(
        open_buy_100(),
        [AccountEvent::OrderRejected {
            order_id: oid("O1"),
            reason: "no".into(),
            released_cny: dec!(1005.06),
            released_shares: 0,
        }],
    );
    vec![
        ("completed", completed_order),
        ("canceled", canceled),
        ("expired", expired),
        ("rejected", rejected),
    ]
}

#[test]
fn a_closed_order_takes_no_fill() {
    for (how, given) in closed_orders() {
        println!("order {how}");
        refused(given, fill("O1", "E9", 10, dec!(10.00)), RejectCode::OrderClosed);
    }
}

#[test]
fn a_closed_order_takes_no_cancel_and_no_reject() {
    for (how, given) in closed_orders() {
        println!("order {how}");
        refused(given.clone(), request_cancel("O1"), RejectCode::OrderClosed);
        refused(given.clone(), confirm_cancel("O1"), RejectCode::OrderClosed);
        refused(given, reject_order("O1"), RejectCode::OrderClosed);
    }
}

#[test]
fn a_rejected_buy_releases_its_whole_reserve() {
    let rejected = AccountEvent::OrderRejected {
        order_id: oid("O1"),
        reason: "exchange says no".into(),
        released_cny: dec!(1005.06),
        released_shares: 0,
    };
    expect(open_buy_100(), reject_order("O1"), vec![rejected.clone()]);
    let cash = state(with(open_buy_100(), [rejected])).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(100000.00), dec!(0)));
}

#[test]
fn a_rejected_buy_makes_its_cash_available_again() {
    // With exactly 1005.06, the rejected order's cash is what the next order needs.
    let given = with(
        funded(dec!(1005.06)),
        [
            placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06)),
            AccountEvent::OrderRejected {
                order_id: oid("O1"),
                reason: "no".into(),
                released_cny: dec!(1005.06),
                released_shares: 0,
            },
        ],
    );
    expect(
        given,
        buy("O2", 100, dec!(10.00)),
        vec![placed("O2", Side::Buy, 100, dec!(10.00), dec!(1005.06))],
    );
}

#[test]
fn a_cancel_request_waits_for_the_exchange() {
    let requested = AccountEvent::CancelRequested { order_id: oid("O1") };
    expect(open_buy_100(), request_cancel("O1"), vec![requested.clone()]);
    // Asked again: nothing new.
    expect(with(open_buy_100(), [requested.clone()]), request_cancel("O1"), vec![]);
    // Until the exchange confirms, the order still fills.
    let fills = accepted(with(open_buy_100(), [requested]), fill("O1", "E1", 100, dec!(10.00)));
    assert!(matches!(
        fills.as_slice(),
        [AccountEvent::FillBooked { .. }, AccountEvent::OrderCompleted { .. }]
    ));
}

#[test]
fn a_confirmed_cancel_releases_the_unfilled_part_of_a_buy() {
    // Buy 300 × 10.00: reserve 3005.19. 100 filled at 10.00 cost 1005.06.
    // Released 3005.19 - 1005.06 = 2000.13.
    let given = with(
        funded(dec!(100000.00)),
        [
            placed("O1", Side::Buy, 300, dec!(10.00), dec!(3005.19)),
            buy_filled(
                "O1",
                "E1",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(5.00), dec!(0), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(1005.06),
            ),
            AccountEvent::CancelRequested { order_id: oid("O1") },
        ],
    );
    let canceled = AccountEvent::OrderCanceled {
        order_id: oid("O1"),
        released_cny: dec!(2000.13),
        released_shares: 0,
    };
    expect(given.clone(), confirm_cancel("O1"), vec![canceled.clone()]);
    let cash = state(with(given, [canceled])).cash();
    // 100000.00 - 1005.06 = 98994.94.
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(98994.94), dec!(0)));
}

/// `holding_1000()` with an open sell of 300 at 10.00, 100 of them filled:
/// 100 × 10.00 = 1000.00; commission 5.00; stamp 0.50; transfer 0.01; handling 0.0341 -> 0.03;
/// regulatory 0.02; fees 5.56; proceeds 994.44.
fn sell_300_partly_filled() -> Vec<AccountEvent> {
    with(
        holding_1000(),
        [
            placed("S1", Side::Sell, 300, dec!(10.00), dec!(0)),
            sell_filled(
                "S1",
                "E1",
                100,
                dec!(10.00),
                dec!(1000.00),
                fees(dec!(5.00), dec!(0.50), dec!(0.01), dec!(0.03), dec!(0.02)),
                dec!(994.44),
            ),
        ],
    )
}

#[test]
fn a_partial_sell_fill_keeps_the_rest_frozen() {
    expect(
        with(holding_1000(), [placed("S1", Side::Sell, 300, dec!(10.00), dec!(0))]),
        fill("S1", "E1", 100, dec!(10.00)),
        vec![sell_filled(
            "S1",
            "E1",
            100,
            dec!(10.00),
            dec!(1000.00),
            fees(dec!(5.00), dec!(0.50), dec!(0.01), dec!(0.03), dec!(0.02)),
            dec!(994.44),
        )],
    );
    let position = state(sell_300_partly_filled()).positions()[&code(Board::Main)].clone();
    // 1000 - 100 = 900 held, 300 - 100 = 200 still frozen, so 700 sellable.
    assert_eq!((position.quantity, position.frozen), (900, 200));
    refused(
        sell_300_partly_filled(),
        sell("S2", 800, dec!(10.00)),
        RejectCode::InsufficientPosition,
    );
}

#[test]
fn a_confirmed_cancel_releases_the_unfilled_shares_of_a_sell() {
    let canceled = AccountEvent::OrderCanceled {
        order_id: oid("S1"),
        released_cny: dec!(0),
        released_shares: 200,
    };
    expect(sell_300_partly_filled(), confirm_cancel("S1"), vec![canceled.clone()]);
    // All 900 left are sellable again.
    expect(
        with(sell_300_partly_filled(), [canceled]),
        sell("S2", 900, dec!(10.00)),
        vec![placed("S2", Side::Sell, 900, dec!(10.00), dec!(0))],
    );
}

#[test]
fn a_rejected_sell_releases_its_shares() {
    let given = with(holding_1000(), [placed("S1", Side::Sell, 300, dec!(10.00), dec!(0))]);
    let rejected = AccountEvent::OrderRejected {
        order_id: oid("S1"),
        reason: "exchange says no".into(),
        released_cny: dec!(0),
        released_shares: 300,
    };
    expect(given.clone(), reject_order("S1"), vec![rejected.clone()]);
    expect(
        with(given, [rejected]),
        sell("S2", 1000, dec!(10.00)),
        vec![placed("S2", Side::Sell, 1000, dec!(10.00), dec!(0))],
    );
}

#[test]
fn end_of_day_expires_the_day_s_open_orders_and_releases_them() {
    // Open: a buy for today (reserve 1005.06), a partly filled sell for today (200 left),
    // and a buy for the next day, which stays open.
    let given = with(
        sell_300_partly_filled(),
        [
            placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06)),
            placed_at(
                Board::Main,
                next_day(),
                "O2",
                Side::Buy,
                100,
                dec!(10.00),
                dec!(1005.06),
            ),
        ],
    );
    let expired = vec![
        AccountEvent::OrderExpired {
            order_id: oid("O1"),
            trade_date: today(),
            released_cny: dec!(1005.06),
            released_shares: 0,
        },
        AccountEvent::OrderExpired {
            order_id: oid("S1"),
            trade_date: today(),
            released_cny: dec!(0),
            released_shares: 200,
        },
    ];
    expect(
        given.clone(),
        AccountCommand::ExpireOrders { trade_date: today() },
        expired.clone(),
    );
    let after = state(with(given, expired));
    assert_eq!(after.open_orders().keys().collect::<Vec<_>>(), vec![&oid("O2")]);
    // Only O2's reserve is still frozen; no shares are.
    assert_eq!(after.cash().frozen_cny, dec!(1005.06));
    assert_eq!(after.positions()[&code(Board::Main)].frozen, 0);
}

#[test]
fn end_of_day_without_open_orders_writes_nothing() {
    expect(
        holding_1000(),
        AccountCommand::ExpireOrders { trade_date: today() },
        vec![],
    );
    // An order of a later date is not expired.
    expect(
        with(
            funded(dec!(100000.00)),
            [placed_at(
                Board::Main,
                next_day(),
                "O2",
                Side::Buy,
                100,
                dec!(10.00),
                dec!(1005.06),
            )],
        ),
        AccountCommand::ExpireOrders { trade_date: today() },
        vec![],
    );
}

// ---------------------------------------------------------------------------
// Settlement
// ---------------------------------------------------------------------------

#[test]
fn settlement_clears_the_day_s_unsettled_proceeds() {
    expect(
        sold_1000_today(),
        AccountCommand::SettleTrades { trade_date: today() },
        vec![settled(today(), dec!(9989.36))],
    );
    // Settled, all 99983.72 is withdrawable.
    let after = with(sold_1000_today(), [settled(today(), dec!(9989.36))]);
    assert_eq!(state(after.clone()).cash().unsettled_cny, dec!(0));
    refused(
        after.clone(),
        withdraw(dec!(99983.73), "W-1"),
        RejectCode::InsufficientFunds,
    );
    expect(
        after,
        withdraw(dec!(99983.72), "W-1"),
        vec![withdrawal_requested(dec!(99983.72), "W-1")],
    );
}

#[test]
fn settling_an_earlier_day_leaves_later_proceeds_unsettled() {
    // The previous day's buy is settled with no cash to clear; today's proceeds stay unsettled.
    let given = with(
        holding_1000(),
        [
            settled(prev_day(), dec!(0)),
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
    );
    expect(
        given.clone(),
        AccountCommand::SettleTrades { trade_date: prev_day() },
        vec![],
    );
    refused(given, withdraw(dec!(89994.37), "W-1"), RejectCode::InsufficientFunds);
}

#[test]
fn settling_a_day_of_buys_only_clears_no_cash() {
    expect(
        holding_1000(),
        AccountCommand::SettleTrades { trade_date: prev_day() },
        vec![settled(prev_day(), dec!(0))],
    );
}

#[test]
fn settlement_without_trades_writes_nothing() {
    expect(
        funded(dec!(1000.00)),
        AccountCommand::SettleTrades { trade_date: today() },
        vec![],
    );
}

// ---------------------------------------------------------------------------
// Invariant 1 at the fee cover's edge
// ---------------------------------------------------------------------------

/// Every cheap price, every costly step: a sell at 0.01 to 0.06 whose first fill is one
/// share and whose next fills stop just before each share whose fee increments exceed
/// its value, then fill that share alone.
/// The cover pays each such share; available cash never falls and frozen cash is
/// always the cover's rest.
#[test]
fn the_cover_pays_every_fill_costing_more_than_its_value_at_every_cheap_price() {
    let rules = rules();
    let shares = 30_000u64;
    for price_fen in 1..=6i64 {
        let price = Decimal::new(price_fen, 2);
        let one_share_fees = |filled: u64| {
            let before = cumulative_fees(&rules.fees, Side::Sell, price * Decimal::from(filled)).total_cny();
            cumulative_fees(&rules.fees, Side::Sell, price * Decimal::from(filled + 1)).total_cny() - before
        };
        // Shares after which one more share costs more in fees than its value.
        let costly: Vec<u64> = (1..shares).filter(|filled| one_share_fees(*filled) > price).collect();
        let buy_value = price * Decimal::from(shares);
        let buy_fees = cumulative_fees(&rules.fees, Side::Buy, buy_value);
        let mut account = state(with(
            funded(buy_value + buy_fees.total_cny() + dec!(100.00)),
            bought("B0", Board::Main, shares, price, prev_day(), buy_fees),
        ));
        let mut decide_and_apply = |command: AccountCommand| {
            let events = account
                .decide(command, &rules)
                .unwrap_or_else(|rejection| panic!("at {price}: {rejection}"));
            for event in events {
                account.apply(event);
            }
            account.cash()
        };
        let sell_all = on_board(order("S1", Side::Sell, shares, price), Board::Main, price);
        let cover = sell_fee_cover(price, &rules);
        let mut cash = decide_and_apply(place(sell_all));
        assert_eq!(cash.frozen_cny, cover);
        // A first fill of one share spends the first-fill part of the cover.
        cash = decide_and_apply(fill("S1", "E0", 1, price));
        assert!(cash.frozen_cny >= dec!(0), "at {price}: {cash:?}");
        let mut filled = 1u64;
        let mut fills = 0u32;
        for step in costly.iter().filter(|step| **step > 1).chain([&(shares - 1)]) {
            for quantity in [step - filled, 1] {
                fills += 1;
                let available_before = cash.available_cny;
                cash = decide_and_apply(fill("S1", &format!("E{fills}"), quantity, price));
                filled += quantity;
                assert!(
                    cash.available_cny >= available_before,
                    "at {price}, fill {fills}: {cash:?}"
                );
                assert!(
                    cash.frozen_cny >= dec!(0) && cash.frozen_cny <= cover,
                    "at {price}, fill {fills}: {cash:?}"
                );
            }
        }
        assert_eq!(filled, shares);
        assert!(account.open_orders().is_empty());
        // All told, the customer has the sale's value less its fees on the whole order.
        let sale = buy_value - cumulative_fees(&rules.fees, Side::Sell, buy_value).total_cny();
        assert_eq!(cash.available_cny, dec!(100.00) + sale, "at {price}");
        // The test reaches costly shares at one fen; above 0.05 the bound says there are none.
        if price_fen == 1 {
            assert!(!costly.is_empty(), "no costly share at {price}");
        }
        if price_fen > 5 {
            assert!(costly.is_empty(), "at {price}: costly shares {costly:?}");
        }
    }
}

#[test]
fn a_later_tiny_sell_fill_never_drives_available_cash_below_zero() {
    // 30000 shares at 0.01 (prev close 0.01, limits 0.009 -> 0.01 and 0.011 -> 0.01).
    // Bought: 30000 × 0.01 = 300.00; commission 0.075 -> 5.00; transfer 0.003 -> 0.00;
    // handling 0.01023 -> 0.01; regulatory 0.006 -> 0.01; cost 305.02. Deposit 365.18: 60.16 left.
    let mut given = with(
        funded(dec!(365.18)),
        bought(
            "B0",
            Board::Main,
            30000,
            dec!(0.01),
            prev_day(),
            fees(dec!(5.00), dec!(0), dec!(0), dec!(0.01), dec!(0.01)),
        ),
    );
    // Sell all at 0.01: one share's fees exceed its value by 5.00 - 0.01 = 4.99, and any later
    // fill may exceed its value by up to 5 fee kinds × 0.01 - 0.01 × (1 - Σ rates) -> 0.05.
    // Cover 5.04. Available 60.16 - 5.04 = 55.12.
    let sell_all = on_board(order("S1", Side::Sell, 30000, dec!(0.01)), Board::Main, dec!(0.01));
    let events = accepted(given.clone(), place(sell_all));
    assert_eq!(events, vec![placed("S1", Side::Sell, 30000, dec!(0.01), dec!(5.04))]);
    given.extend(events);
    // E1: 1 × 0.01; fees 5.00; net -4.99, all from the cover: 0.05 left of it.
    let events = accepted(given.clone(), fill("S1", "E1", 1, dec!(0.01)));
    given.extend(events);
    assert_eq!(state(given.clone()).cash().available_cny, dec!(55.12));
    // E2: 24998 × 0.01 = 249.98, cumulative 249.99: stamp 0.124995 -> 0.12; handling 0.0085247 -> 0.01;
    // others +0.00; fees 0.13; proceeds 249.85, of which 4.99 refill the cover to 5.04 and
    // 244.86 reach available cash: 55.12 + 244.86 = 299.98.
    let events = accepted(given.clone(), fill("S1", "E2", 24998, dec!(0.01)));
    assert!(matches!(
        events.as_slice(),
        [AccountEvent::FillBooked { reserve_used_cny, available_change_cny, .. }]
            if *reserve_used_cny == dec!(-4.99) && *available_change_cny == dec!(244.86)
    ));
    given.extend(events);
    assert_eq!(state(given.clone()).cash().available_cny, dec!(299.98));
    // E3: 1 × 0.01, cumulative 250.00: stamp 0.125 -> 0.13 (+0.01); regulatory 0.005 -> 0.01 (+0.01);
    // fees 0.02 on a value of 0.01: net -0.01, taken from the cover, not from available cash.
    let events = accepted(given.clone(), fill("S1", "E3", 1, dec!(0.01)));
    assert!(matches!(
        events.as_slice(),
        [AccountEvent::FillBooked { reserve_used_cny, available_change_cny, .. }]
            if *reserve_used_cny == dec!(0.01) && available_change_cny.is_zero()
    ));
    given.extend(events);
    let cash = state(given).cash();
    assert_eq!((cash.available_cny, cash.frozen_cny), (dec!(299.98), dec!(5.03)));
    assert!(cash.available_cny >= dec!(0), "available cash went negative: {cash:?}");
}
