//! Property tests of the `Account` aggregate: thousands of random, state-steered
//! command sequences, with the invariants of DESIGN.md checked after every step.
//!
//! Every command goes through `Account::decide` + `Aggregate::apply` (and, on a
//! clone, through `Aggregate::handle`, which must agree). Next to the aggregate runs
//! a small model written from DESIGN.md alone: it predicts each command's outcome
//! (the exact events, or the refusal codes that may answer it) and keeps its own
//! cash, orders and positions. After every step the test checks:
//!
//! * the refused command left the state untouched (compared with a clone);
//! * invariant 1: no negative available, frozen or unsettled cash, no sellable
//!   quantity below zero, a position's frozen shares never above its quantity;
//! * invariant 2: frozen cash = open order reserves + pending withdrawals, frozen
//!   shares = open sell remainders, per instrument;
//! * invariant 3: cash (available + frozen) = deposits − confirmed withdrawals −
//!   buys − fees + sells, and quantity = bought − sold, summed here from the
//!   accepted events (and by `invariants::check_account` too);
//! * the cumulative fee rule: the fee increments of an order's fills add up to the
//!   fee on its whole filled value, no increment is negative, and every order's
//!   reserve is released exactly once when it ends;
//! * the aggregate equals the model (cash, open orders, positions, T+1 sellable);
//! * the account restored from its `AccountSnapshot` equals it and decides the
//!   command exactly as it does;
//! * the account rebuilt from the events as stored (each one written as JSON and
//!   read back, as after a restart) is the account kept in memory, to the spelling
//!   of every amount (their snapshots' JSON are the same bytes), so the events it
//!   decides next are the same bytes too.

// The model mirrors the aggregate command by command: its long matches read best whole.
#![allow(clippy::too_many_lines)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use ledger_domain::account::{AccountCommand, AccountEvent, CashDirection, MarketSnapshot, PlaceOrder};
use ledger_domain::fees::{cumulative_fees, FeeBreakdown};
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::invariants::{check_account, EventTotals};
use ledger_domain::rules::FeeRule;
use ledger_domain::{Account, Board, InstrumentInfo, MarketRules, OrderType, RejectCode, Rejection, Side};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use strum::{EnumCount, IntoEnumIterator};

/// Sequences run by the main property, and commands in each at most.
const CASES: u32 = 2_000;
const MAX_STEPS: usize = 60;
/// The customer's risk tolerance: instruments above it are refused (suitability).
const CUSTOMER_RISK: u8 = 4;
/// Previous close of each trade date (cycling through `DAYS` factors), in basis points
/// of the instrument's base price; `end_of_day` moves trading to the next date.
const DAYS: usize = 8;
const DAY_FACTORS_BP: [i64; DAYS] = [10_000, 10_300, 9_800, 10_500, 9_600, 10_100, 9_900, 10_200];

const TICK: Decimal = dec!(0.01);

// ---------------------------------------------------------------------------
// The market
// ---------------------------------------------------------------------------

struct Listing {
    code: &'static str,
    board: Board,
    risk_level: u8,
    /// Previous close of the first trade date, in fen.
    base_fen: i64,
    /// `false`: the snapshot says "not listed" (unknown_instrument).
    listed: bool,
    /// Trade dates (indexes) with no previous close set (no_reference_price).
    no_close_on: &'static [usize],
}

/// A realistic market: one instrument per board, two cheap ones whose single share is
/// worth less than the minimum commission (so small sell fills need the fee cover),
/// one above the customer's risk level, one with missing closes, one not listed.
const MARKET: [Listing; 8] = [
    Listing {
        code: "600036.SH",
        board: Board::Main,
        risk_level: 2,
        base_fen: 3_512,
        listed: true,
        no_close_on: &[],
    },
    Listing {
        code: "300750.SZ",
        board: Board::Chinext,
        risk_level: 3,
        base_fen: 18_766,
        listed: true,
        no_close_on: &[],
    },
    Listing {
        code: "688981.SH",
        board: Board::Star,
        risk_level: 3,
        base_fen: 4_893,
        listed: true,
        no_close_on: &[],
    },
    Listing {
        code: "600654.SH",
        board: Board::St,
        risk_level: 3,
        base_fen: 187,
        listed: true,
        no_close_on: &[],
    },
    Listing {
        code: "601988.SH",
        board: Board::Main,
        risk_level: 1,
        base_fen: 362,
        listed: true,
        no_close_on: &[],
    },
    Listing {
        code: "688256.SH",
        board: Board::Star,
        risk_level: 5,
        base_fen: 52_000,
        listed: true,
        no_close_on: &[],
    },
    Listing {
        code: "601088.SH",
        board: Board::Main,
        risk_level: 2,
        base_fen: 2_850,
        listed: true,
        no_close_on: &[1, 4],
    },
    Listing {
        code: "000999.SZ",
        board: Board::Main,
        risk_level: 2,
        base_fen: 1_500,
        listed: false,
        no_close_on: &[],
    },
];

/// Stocks at the lowest possible price, one fen: a one-share fill is worth 0.01.
const PENNY_MARKET: [Listing; 2] = [
    Listing {
        code: "600001.SH",
        board: Board::Main,
        risk_level: 1,
        base_fen: 1,
        listed: true,
        no_close_on: &[],
    },
    Listing {
        code: "688001.SH",
        board: Board::Star,
        risk_level: 1,
        base_fen: 1,
        listed: true,
        no_close_on: &[],
    },
];

fn trade_date(index: usize) -> NaiveDate {
    // Weekdays from Monday 2024-03-04.
    let offset = index + 2 * (index / 5);
    NaiveDate::from_ymd_opt(2024, 3, 4).unwrap() + chrono::Days::new(offset as u64)
}

fn to_fen(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn cny(fen: i64) -> Decimal {
    Decimal::new(fen, 2)
}

/// `round(prev × (1 ± rate), 2)`, written here from DESIGN.md.
fn limits(prev_close: Decimal, rate: Decimal) -> (Decimal, Decimal) {
    (
        to_fen(prev_close * (Decimal::ONE - rate)),
        to_fen(prev_close * (Decimal::ONE + rate)),
    )
}

/// The model's fee schedule, written from DESIGN.md over the rules' rates: each fee
/// is `round(rate × v)` (commission: at least its minimum), on the sides it applies to.
fn fees_on(rules: &MarketRules, side: Side, value: Decimal) -> FeeBreakdown {
    let fee = |rule: &FeeRule| {
        let applies = match side {
            Side::Buy => rule.on_buy,
            Side::Sell => rule.on_sell,
        };
        if !applies || value.is_zero() {
            return Decimal::ZERO;
        }
        let rounded = to_fen(rule.rate * value);
        if rounded < rule.minimum_cny {
            rule.minimum_cny
        } else {
            rounded
        }
    };
    FeeBreakdown {
        commission_cny: fee(&rules.fees.commission),
        stamp_duty_cny: fee(&rules.fees.stamp_duty),
        transfer_fee_cny: fee(&rules.fees.transfer_fee),
        handling_fee_cny: fee(&rules.fees.handling_fee),
        regulatory_fee_cny: fee(&rules.fees.regulatory_fee),
    }
}

fn fee_fields(fees: &FeeBreakdown) -> [Decimal; 5] {
    [
        fees.commission_cny,
        fees.stamp_duty_cny,
        fees.transfer_fee_cny,
        fees.handling_fee_cny,
        fees.regulatory_fee_cny,
    ]
}

fn is_valid_lot(rules: &MarketRules, board: Board, quantity: u64) -> bool {
    let b = rules.board(board);
    quantity >= b.min_quantity && (quantity - b.min_quantity).is_multiple_of(b.step_quantity)
}

/// Rounds a wanted quantity down to a valid lot (at least the minimum lot).
fn lot_down(rules: &MarketRules, board: Board, wanted: u64) -> u64 {
    let b = rules.board(board);
    if wanted <= b.min_quantity {
        return b.min_quantity;
    }
    b.min_quantity + (wanted - b.min_quantity) / b.step_quantity * b.step_quantity
}

// ---------------------------------------------------------------------------
// Actions: what the generator draws. Turned into commands against the current state.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum DepositKind {
    Amount(i64),
    Aml(i64),
    Zero,
    Negative,
    SubFen,
    TooLarge,
    DupRef(usize),
}

#[derive(Debug, Clone)]
enum WithdrawKind {
    All,
    Part(u8),
    TooMuch(i64),
    SubFen,
    DupRef(usize),
}

#[derive(Debug, Clone)]
enum Size {
    /// The biggest lot that a share of available cash buys.
    Budget(u8),
    /// The biggest lot whose reserve fits all available cash ("buy with all my money").
    Drain,
    Lots(u64),
    OffLot(u64, u64),
    Zero,
    Huge,
}

#[derive(Debug, Clone)]
enum SellSize {
    AllSellable,
    Pct(u8),
    OffLot(u64),
    MoreThanSellable(u64),
}

#[derive(Debug, Clone)]
enum PriceKind {
    /// Percent of the half band around the previous close (-100..=100: inside the limits).
    Band(i64),
    Upper,
    Lower,
    AboveUpper(i64),
    BelowLower(i64),
    OffTick,
    NonPositive,
}

#[derive(Debug, Clone)]
enum DateKind {
    Today,
    ClosedDay(usize),
}

#[derive(Debug, Clone)]
enum Target {
    Open(usize),
    OpenSell(usize),
    Closed(usize),
    Unknown,
}

#[derive(Debug, Clone)]
enum FillQty {
    All,
    Pct(u8),
    One,
    Over(u64),
    Zero,
    /// Up to the share before the next one-share step whose fee increments exceed its value.
    BeforeCostlyStep,
}

#[derive(Debug, Clone)]
enum FillPrice {
    Limit,
    Better(i64),
    Beyond(i64),
    OffTick,
}

#[derive(Debug, Clone)]
enum ExecKind {
    Fresh,
    /// Resend a booked fill exactly (the exchange repeats itself).
    RepeatSame(usize),
    /// A booked execution id on another fill.
    RepeatOther(usize),
}

#[derive(Debug, Clone)]
enum Act {
    Deposit(DepositKind),
    Withdraw(WithdrawKind),
    BankAnswer {
        pick: usize,
        confirm: bool,
        stale: bool,
    },
    Buy {
        instrument: usize,
        size: Size,
        price: PriceKind,
        date: DateKind,
        reuse_id: bool,
    },
    Sell {
        pick: usize,
        size: SellSize,
        price: PriceKind,
        date: DateKind,
    },
    Fill {
        target: Target,
        qty: FillQty,
        price: FillPrice,
        exec: ExecKind,
    },
    Cancel(Target),
    ConfirmCancel(Target),
    Reject(Target),
    EndOfDay,
    Settle(usize),
    Freeze,
    Unfreeze,
    Reopen,
}

fn deposit_kind() -> impl Strategy<Value = DepositKind> {
    prop_oneof![
        6 => (100i64..=20_000_000).prop_map(DepositKind::Amount),
        1 => (0i64..=10_000_000).prop_map(DepositKind::Aml),
        1 => Just(DepositKind::Zero),
        1 => Just(DepositKind::Negative),
        1 => Just(DepositKind::SubFen),
        1 => Just(DepositKind::TooLarge),
        1 => any::<usize>().prop_map(DepositKind::DupRef),
    ]
}

fn withdraw_kind() -> impl Strategy<Value = WithdrawKind> {
    prop_oneof![
        2 => Just(WithdrawKind::All),
        4 => (1u8..=100).prop_map(WithdrawKind::Part),
        2 => (1i64..=100_000).prop_map(WithdrawKind::TooMuch),
        1 => Just(WithdrawKind::SubFen),
        1 => any::<usize>().prop_map(WithdrawKind::DupRef),
    ]
}

fn price_kind() -> impl Strategy<Value = PriceKind> {
    prop_oneof![
        14 => (-100i64..=100).prop_map(PriceKind::Band),
        2 => Just(PriceKind::Upper),
        2 => Just(PriceKind::Lower),
        1 => (1i64..=3).prop_map(PriceKind::AboveUpper),
        1 => (1i64..=3).prop_map(PriceKind::BelowLower),
        1 => Just(PriceKind::OffTick),
        1 => Just(PriceKind::NonPositive),
    ]
}

fn date_kind() -> impl Strategy<Value = DateKind> {
    prop_oneof![
        20 => Just(DateKind::Today),
        1 => any::<usize>().prop_map(DateKind::ClosedDay),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        16 => any::<usize>().prop_map(Target::Open),
        4 => any::<usize>().prop_map(Target::OpenSell),
        2 => any::<usize>().prop_map(Target::Closed),
        1 => Just(Target::Unknown),
    ]
}

fn fill_qty() -> impl Strategy<Value = FillQty> {
    prop_oneof![
        6 => Just(FillQty::All),
        6 => (1u8..=99).prop_map(FillQty::Pct),
        5 => Just(FillQty::One),
        1 => (1u64..=300).prop_map(FillQty::Over),
        1 => Just(FillQty::Zero),
    ]
}

fn fill_price() -> impl Strategy<Value = FillPrice> {
    prop_oneof![
        8 => Just(FillPrice::Limit),
        6 => (1i64..=20).prop_map(FillPrice::Better),
        2 => (1i64..=5).prop_map(FillPrice::Beyond),
        1 => Just(FillPrice::OffTick),
    ]
}

fn exec_kind() -> impl Strategy<Value = ExecKind> {
    prop_oneof![
        20 => Just(ExecKind::Fresh),
        2 => any::<usize>().prop_map(ExecKind::RepeatSame),
        1 => any::<usize>().prop_map(ExecKind::RepeatOther),
    ]
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![
        10 => (1u8..=100).prop_map(Size::Budget),
        2 => Just(Size::Drain),
        4 => (1u64..=30).prop_map(Size::Lots),
        2 => (1u64..=10, any::<u64>()).prop_map(|(lots, extra)| Size::OffLot(lots, extra)),
        1 => Just(Size::Zero),
        1 => Just(Size::Huge),
    ]
}

fn sell_size() -> impl Strategy<Value = SellSize> {
    prop_oneof![
        5 => Just(SellSize::AllSellable),
        6 => (1u8..=100).prop_map(SellSize::Pct),
        1 => any::<u64>().prop_map(SellSize::OffLot),
        1 => (1u64..=5).prop_map(SellSize::MoreThanSellable),
    ]
}

/// The action mix of the main property.
fn action() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => deposit_kind().prop_map(Act::Deposit),
        2 => withdraw_kind().prop_map(Act::Withdraw),
        2 => (any::<usize>(), any::<bool>(), prop::bool::weighted(0.15))
            .prop_map(|(pick, confirm, stale)| Act::BankAnswer { pick, confirm, stale }),
        12 => (prop_oneof![12 => 0usize..5, 1 => 5usize..8], size(), price_kind(), date_kind(), prop::bool::weighted(0.03))
            .prop_map(|(instrument, size, price, date, reuse_id)| Act::Buy { instrument, size, price, date, reuse_id }),
        9 => (any::<usize>(), sell_size(), price_kind(), date_kind())
            .prop_map(|(pick, size, price, date)| Act::Sell { pick, size, price, date }),
        22 => (target(), fill_qty(), fill_price(), exec_kind())
            .prop_map(|(target, qty, price, exec)| Act::Fill { target, qty, price, exec }),
        2 => target().prop_map(Act::Cancel),
        2 => target().prop_map(Act::ConfirmCancel),
        1 => target().prop_map(Act::Reject),
        6 => Just(Act::EndOfDay),
        4 => any::<usize>().prop_map(Act::Settle),
        1 => Just(Act::Freeze),
        10 => Just(Act::Unfreeze),
        1 => Just(Act::Reopen),
    ]
}

// ---------------------------------------------------------------------------
// The model: DESIGN.md's rules, kept apart from the aggregate.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ModelOrder {
    instrument: InstrumentCode,
    side: Side,
    quantity: u64,
    limit: Decimal,
    date: NaiveDate,
    filled: u64,
    value: Decimal,
    fees: FeeBreakdown,
    reserve: Decimal,
    /// A sell's fee cover as placed; zero for a buy.
    cover: Decimal,
    cancel_requested: bool,
    open: bool,
}

#[derive(Debug, Clone, Default)]
struct Model {
    opened: bool,
    risk_level: u8,
    frozen: bool,
    /// available + frozen.
    cash: Decimal,
    pending: BTreeMap<BankRef, Decimal>,
    used_refs: HashSet<BankRef>,
    orders: BTreeMap<OrderId, ModelOrder>,
    execs: HashSet<ExecId>,
    held: BTreeMap<InstrumentCode, u64>,
    /// Shares bought per instrument and trade date (T+1: not sellable on that date).
    bought: BTreeMap<InstrumentCode, BTreeMap<NaiveDate, u64>>,
    unsettled_buy_dates: BTreeSet<NaiveDate>,
    unsettled: BTreeMap<NaiveDate, Decimal>,
}

/// What the model expects of an accepted command. `may_be_empty`: the aggregate
/// may also answer with no event (a settlement with nothing left to move).
struct Expected {
    events: Vec<AccountEvent>,
    may_be_empty: bool,
}

impl Model {
    fn frozen_cash(&self) -> Decimal {
        self.open_orders().map(|(_, o)| o.reserve).sum::<Decimal>() + self.pending.values().sum::<Decimal>()
    }

    fn available(&self) -> Decimal {
        self.cash - self.frozen_cash()
    }

    fn unsettled_total(&self) -> Decimal {
        self.unsettled.values().sum()
    }

    fn withdrawable(&self) -> Decimal {
        (self.available() - self.unsettled_total()).max(Decimal::ZERO)
    }

    fn open_orders(&self) -> impl Iterator<Item = (&OrderId, &ModelOrder)> {
        self.orders.iter().filter(|(_, o)| o.open)
    }

    fn frozen_shares(&self, instrument: &InstrumentCode) -> u64 {
        self.open_orders()
            .filter(|(_, o)| o.side == Side::Sell && &o.instrument == instrument)
            .map(|(_, o)| o.quantity - o.filled)
            .sum()
    }

    fn held(&self, instrument: &InstrumentCode) -> u64 {
        self.held.get(instrument).copied().unwrap_or(0)
    }

    /// Shares bought on `date` or later: not sellable on `date`.
    fn locked(&self, instrument: &InstrumentCode, date: NaiveDate) -> u64 {
        self.bought
            .get(instrument)
            .map_or(0, |by_date| by_date.range(date..).map(|(_, q)| *q).sum())
    }

    fn sellable(&self, instrument: &InstrumentCode, date: NaiveDate) -> i128 {
        i128::from(self.held(instrument))
            - i128::from(self.frozen_shares(instrument))
            - i128::from(self.locked(instrument, date))
    }

    fn order_state(&self, order_id: &OrderId) -> Result<&ModelOrder, RejectCode> {
        match self.orders.get(order_id) {
            Some(order) if order.open => Ok(order),
            Some(_) => Err(RejectCode::OrderClosed),
            None => Err(RejectCode::UnknownOrder),
        }
    }

    fn cash_amount_codes(amount: Decimal, rules: &MarketRules) -> Vec<RejectCode> {
        let bad = amount <= Decimal::ZERO || amount != to_fen(amount) || amount > rules.max_cash_amount_cny;
        if bad {
            vec![RejectCode::Malformed]
        } else {
            vec![]
        }
    }

    /// The events the command must produce, or every refusal code that may answer it.
    fn predict(&self, command: &AccountCommand, rules: &MarketRules) -> Result<Expected, Vec<RejectCode>> {
        let exact = |events: Vec<AccountEvent>| {
            Ok(Expected {
                events,
                may_be_empty: false,
            })
        };
        if let AccountCommand::Open {
            account_id,
            customer_name,
            id_number,
            risk_level,
        } = command
        {
            if self.opened {
                return Err(vec![RejectCode::AccountExists]);
            }
            return exact(vec![AccountEvent::AccountOpened {
                account_id: account_id.clone(),
                customer_name: customer_name.clone(),
                id_number: id_number.clone(),
                risk_level: *risk_level,
            }]);
        }
        if !self.opened {
            return Err(vec![RejectCode::UnknownAccount]);
        }
        let aml_flag = |direction, amount_cny: Decimal, bank_ref: &BankRef| {
            (amount_cny >= rules.aml_threshold_cny).then(|| AccountEvent::LargeCashMovementFlagged {
                direction,
                amount_cny,
                threshold_cny: rules.aml_threshold_cny,
                bank_ref: bank_ref.clone(),
            })
        };
        match command {
            AccountCommand::Open { .. } => unreachable!(),
            AccountCommand::Deposit { amount_cny, bank_ref } => {
                let mut codes = Self::cash_amount_codes(*amount_cny, rules);
                if self.used_refs.contains(bank_ref) {
                    codes.push(RejectCode::DuplicateBankRef);
                }
                if !codes.is_empty() {
                    return Err(codes);
                }
                let mut events = vec![AccountEvent::CashDeposited {
                    amount_cny: *amount_cny,
                    bank_ref: bank_ref.clone(),
                }];
                events.extend(aml_flag(CashDirection::Deposit, *amount_cny, bank_ref));
                exact(events)
            }
            AccountCommand::Withdraw { amount_cny, bank_ref } => {
                let mut codes = Self::cash_amount_codes(*amount_cny, rules);
                if self.frozen {
                    codes.push(RejectCode::AccountFrozen);
                }
                if self.used_refs.contains(bank_ref) {
                    codes.push(RejectCode::DuplicateBankRef);
                }
                if *amount_cny > self.withdrawable() {
                    codes.push(RejectCode::InsufficientFunds);
                }
                if !codes.is_empty() {
                    return Err(codes);
                }
                let mut events = vec![AccountEvent::WithdrawalRequested {
                    amount_cny: *amount_cny,
                    bank_ref: bank_ref.clone(),
                }];
                events.extend(aml_flag(CashDirection::Withdrawal, *amount_cny, bank_ref));
                exact(events)
            }
            AccountCommand::ConfirmWithdrawal { bank_ref } | AccountCommand::FailWithdrawal { bank_ref } => {
                let Some(amount_cny) = self.pending.get(bank_ref).copied() else {
                    return Err(vec![RejectCode::UnknownWithdrawal]);
                };
                let bank_ref = bank_ref.clone();
                exact(vec![if matches!(command, AccountCommand::ConfirmWithdrawal { .. }) {
                    AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref }
                } else {
                    AccountEvent::WithdrawalFailed { amount_cny, bank_ref }
                }])
            }
            AccountCommand::PlaceOrder(order) => self.predict_place(order, rules).map(|events| Expected {
                events,
                may_be_empty: false,
            }),
            AccountCommand::BookFill {
                order_id,
                exec_id,
                quantity,
                price,
            } => self
                .predict_fill(order_id, exec_id, *quantity, *price, rules)
                .map(|events| Expected {
                    events,
                    may_be_empty: false,
                }),
            AccountCommand::RejectOrder { order_id, reason } => {
                let order = self.order_state(order_id).map_err(|code| vec![code])?;
                exact(vec![AccountEvent::OrderRejected {
                    order_id: order_id.clone(),
                    reason: reason.clone(),
                    released_cny: order.reserve,
                    released_shares: sell_remainder(order),
                }])
            }
            AccountCommand::RequestCancel { order_id } => {
                let order = self.order_state(order_id).map_err(|code| vec![code])?;
                if order.cancel_requested {
                    return exact(vec![]);
                }
                exact(vec![AccountEvent::CancelRequested {
                    order_id: order_id.clone(),
                }])
            }
            AccountCommand::ConfirmCancel { order_id } => {
                let order = self.order_state(order_id).map_err(|code| vec![code])?;
                exact(vec![AccountEvent::OrderCanceled {
                    order_id: order_id.clone(),
                    released_cny: order.reserve,
                    released_shares: sell_remainder(order),
                }])
            }
            AccountCommand::ExpireOrders { trade_date } => exact(
                self.open_orders()
                    .filter(|(_, o)| o.date <= *trade_date)
                    .map(|(order_id, o)| AccountEvent::OrderExpired {
                        order_id: order_id.clone(),
                        trade_date: o.date,
                        released_cny: o.reserve,
                        released_shares: sell_remainder(o),
                    })
                    .collect(),
            ),
            AccountCommand::SettleTrades { trade_date } => {
                let sells_due = self.unsettled.range(..=*trade_date).next().is_some();
                let buys_due = self.unsettled_buy_dates.range(..=*trade_date).next().is_some();
                if !sells_due && !buys_due {
                    return exact(vec![]);
                }
                let settled_cny = self.unsettled.range(..=*trade_date).map(|(_, a)| *a).sum();
                Ok(Expected {
                    events: vec![AccountEvent::TradesSettled {
                        trade_date: *trade_date,
                        settled_cny,
                    }],
                    // Buys whose shares were all sold again leave nothing to settle in cash.
                    may_be_empty: !sells_due,
                })
            }
            AccountCommand::Freeze { reason } => exact(if self.frozen {
                vec![]
            } else {
                vec![AccountEvent::AccountFrozen { reason: reason.clone() }]
            }),
            AccountCommand::Unfreeze { reason } => exact(if self.frozen {
                vec![AccountEvent::AccountUnfrozen { reason: reason.clone() }]
            } else {
                vec![]
            }),
        }
    }

    fn predict_place(&self, order: &PlaceOrder, rules: &MarketRules) -> Result<Vec<AccountEvent>, Vec<RejectCode>> {
        let PlaceOrder {
            order_id,
            instrument,
            side,
            quantity,
            price,
            trade_date,
            market,
        } = order;
        let (quantity, price, side) = (*quantity, *price, *side);
        let mut codes = Vec::new();
        if quantity == 0 || quantity > rules.max_order_quantity || price <= Decimal::ZERO || price > rules.max_price {
            codes.push(RejectCode::Malformed);
        }
        let Some(info) = &market.instrument else {
            codes.push(RejectCode::UnknownInstrument);
            return Err(codes);
        };
        if self.orders.contains_key(order_id) {
            codes.push(RejectCode::DuplicateOrder);
        }
        if self.frozen {
            codes.push(RejectCode::AccountFrozen);
        }
        if market.day_closed {
            codes.push(RejectCode::DayClosed);
        }
        if info.risk_level > self.risk_level {
            codes.push(RejectCode::Suitability);
        }
        let sellable = self.sellable(instrument, *trade_date);
        // An odd lot may only be sold to empty the (sellable) position.
        let empties = side == Side::Sell && i128::from(quantity) == sellable;
        if !is_valid_lot(rules, info.board, quantity) && !empties {
            codes.push(RejectCode::LotSize);
        }
        if price % TICK != Decimal::ZERO {
            codes.push(RejectCode::PriceTick);
        }
        let reserve = match market.prev_close {
            None => {
                codes.push(RejectCode::NoReferencePrice);
                None
            }
            Some(prev_close) => {
                let (lower, upper) = limits(prev_close, rules.board(info.board).price_limit_rate);
                if price < lower || price > upper {
                    codes.push(RejectCode::PriceLimit);
                }
                let available = self.available();
                match side {
                    Side::Buy => {
                        // v + fees(v) at the limit price.
                        let value = price * Decimal::from(quantity);
                        let reserve = value + fees_on(rules, Side::Buy, value).total_cny();
                        if reserve > available {
                            codes.push(RejectCode::InsufficientFunds);
                        }
                        Some(reserve)
                    }
                    Side::Sell => {
                        if i128::from(quantity) > sellable {
                            codes.push(RejectCode::InsufficientPosition);
                        }
                        // The fee cover (docs/api.md): what one share's fees may exceed its value
                        // by, plus what a later fill's fees may exceed its value by: one fen of
                        // rounding per sell fee, less one share's value after the rates, rounded up.
                        let first = (fees_on(rules, Side::Sell, price).total_cny() - price).max(Decimal::ZERO);
                        let sell_fees: Vec<&FeeRule> = rules
                            .fees
                            .named()
                            .into_iter()
                            .map(|(_, r)| r)
                            .filter(|r| r.on_sell)
                            .collect();
                        let rates: Decimal = sell_fees.iter().map(|r| r.rate).sum();
                        let later = (TICK * Decimal::from(sell_fees.len()) - (Decimal::ONE - rates) * price)
                            .max(Decimal::ZERO)
                            .round_dp_with_strategy(2, RoundingStrategy::AwayFromZero);
                        let cover = first + later;
                        if cover > available {
                            codes.push(RejectCode::InsufficientFunds);
                        }
                        Some(cover)
                    }
                }
            }
        };
        if !codes.is_empty() {
            return Err(codes);
        }
        Ok(vec![AccountEvent::OrderPlaced {
            order_id: order_id.clone(),
            instrument: instrument.clone(),
            board: info.board,
            side,
            order_type: OrderType::Limit,
            quantity,
            limit_price: price,
            trade_date: *trade_date,
            reserved_cny: reserve.expect("a reference price was given"),
        }])
    }

    fn predict_fill(
        &self,
        order_id: &OrderId,
        exec_id: &ExecId,
        quantity: u64,
        price: Decimal,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Vec<RejectCode>> {
        let mut codes = Vec::new();
        if quantity == 0 || quantity > rules.max_order_quantity || price <= Decimal::ZERO || price > rules.max_price {
            codes.push(RejectCode::Malformed);
        }
        if self.execs.contains(exec_id) {
            codes.push(RejectCode::DuplicateExec);
        }
        let order = match self.order_state(order_id) {
            Ok(order) => order,
            Err(code) => {
                codes.push(code);
                return Err(codes);
            }
        };
        let remaining = order.quantity - order.filled;
        if quantity > remaining {
            codes.push(RejectCode::FillExceedsOrder);
        }
        let beyond = match order.side {
            Side::Buy => price > order.limit,
            Side::Sell => price < order.limit,
        };
        if beyond || price % TICK != Decimal::ZERO {
            codes.push(RejectCode::FillPrice);
        }
        if !codes.is_empty() {
            return Err(codes);
        }
        let value = price * Decimal::from(quantity);
        let total_fees = fees_on(rules, order.side, order.value + value);
        let fees = total_fees.minus(&order.fees);
        let fee = fees.total_cny();
        let (reserve_used, available_change, unsettled_change) = match order.side {
            // A buy pays value and fees from its reserve.
            Side::Buy => (value + fee, Decimal::ZERO, Decimal::ZERO),
            // A sell's proceeds first refill the order's cover, then raise available and
            // unsettled; fees beyond the value come from the cover, never from available cash.
            Side::Sell => {
                let net = value - fee;
                if net >= Decimal::ZERO {
                    let refill = (order.cover - order.reserve).min(net);
                    (-refill, net - refill, net - refill)
                } else {
                    (-net, Decimal::ZERO, Decimal::ZERO)
                }
            }
        };
        let mut events = vec![AccountEvent::FillBooked {
            order_id: order_id.clone(),
            exec_id: exec_id.clone(),
            instrument: order.instrument.clone(),
            side: order.side,
            trade_date: order.date,
            quantity,
            price,
            value_cny: value,
            fees,
            reserve_used_cny: reserve_used,
            available_change_cny: available_change,
            unsettled_change_cny: unsettled_change,
        }];
        if quantity == remaining {
            events.push(AccountEvent::OrderCompleted {
                order_id: order_id.clone(),
                released_cny: order.reserve - reserve_used,
            });
        }
        Ok(events)
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountOpened { risk_level, .. } => {
                self.opened = true;
                self.risk_level = *risk_level;
            }
            AccountEvent::CashDeposited { amount_cny, bank_ref } => {
                self.cash += amount_cny;
                self.used_refs.insert(bank_ref.clone());
            }
            AccountEvent::WithdrawalRequested { amount_cny, bank_ref } => {
                self.used_refs.insert(bank_ref.clone());
                self.pending.insert(bank_ref.clone(), *amount_cny);
            }
            AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref } => {
                self.pending.remove(bank_ref);
                self.cash -= amount_cny;
            }
            AccountEvent::WithdrawalFailed { bank_ref, .. } => {
                self.pending.remove(bank_ref);
            }
            AccountEvent::LargeCashMovementFlagged { .. } => {}
            AccountEvent::OrderPlaced {
                order_id,
                instrument,
                side,
                quantity,
                limit_price,
                trade_date,
                reserved_cny,
                ..
            } => {
                self.orders.insert(
                    order_id.clone(),
                    ModelOrder {
                        instrument: instrument.clone(),
                        side: *side,
                        quantity: *quantity,
                        limit: *limit_price,
                        date: *trade_date,
                        filled: 0,
                        value: Decimal::ZERO,
                        fees: FeeBreakdown::default(),
                        reserve: *reserved_cny,
                        cover: match side {
                            Side::Buy => Decimal::ZERO,
                            Side::Sell => *reserved_cny,
                        },
                        cancel_requested: false,
                        open: true,
                    },
                );
            }
            AccountEvent::FillBooked {
                order_id,
                exec_id,
                quantity,
                value_cny,
                fees,
                reserve_used_cny,
                unsettled_change_cny,
                ..
            } => {
                self.execs.insert(exec_id.clone());
                let order = self.orders.get_mut(order_id).expect("fills name known orders");
                order.filled += quantity;
                order.value += value_cny;
                order.fees = order.fees.plus(fees);
                order.reserve -= reserve_used_cny;
                let (instrument, side, date) = (order.instrument.clone(), order.side, order.date);
                let held = self.held.entry(instrument.clone()).or_default();
                match side {
                    Side::Buy => {
                        *held += quantity;
                        *self.bought.entry(instrument).or_default().entry(date).or_default() += quantity;
                        self.unsettled_buy_dates.insert(date);
                        self.cash -= value_cny + fees.total_cny();
                    }
                    Side::Sell => {
                        *held -= quantity;
                        *self.unsettled.entry(date).or_default() += unsettled_change_cny;
                        self.cash += value_cny - fees.total_cny();
                    }
                }
            }
            AccountEvent::CancelRequested { order_id } => {
                self.orders.get_mut(order_id).expect("known order").cancel_requested = true;
            }
            AccountEvent::OrderCompleted { order_id, .. }
            | AccountEvent::OrderRejected { order_id, .. }
            | AccountEvent::OrderCanceled { order_id, .. }
            | AccountEvent::OrderExpired { order_id, .. } => {
                let order = self.orders.get_mut(order_id).expect("known order");
                order.open = false;
                order.reserve = Decimal::ZERO;
            }
            AccountEvent::TradesSettled { trade_date, .. } => {
                self.unsettled.retain(|date, _| date > trade_date);
                self.unsettled_buy_dates.retain(|date| date > trade_date);
            }
            AccountEvent::AccountFrozen { .. } => self.frozen = true,
            AccountEvent::AccountUnfrozen { .. } => self.frozen = false,
        }
    }
}

fn sell_remainder(order: &ModelOrder) -> u64 {
    match order.side {
        Side::Buy => 0,
        Side::Sell => order.quantity - order.filled,
    }
}

// ---------------------------------------------------------------------------
// Independent sums of the accepted events
// ---------------------------------------------------------------------------

/// One order as its events tell it.
#[derive(Debug, Clone)]
struct OrderBook {
    side: Side,
    placed_reserve: Decimal,
    value: Decimal,
    fees: FeeBreakdown,
    reserve_used: Decimal,
    released: Decimal,
    ends: u32,
}

#[derive(Debug, Default)]
struct EventSums {
    cash: Decimal,
    quantity: BTreeMap<InstrumentCode, i128>,
    orders: BTreeMap<OrderId, OrderBook>,
}

// ---------------------------------------------------------------------------
// Counters: what the generator really exercised
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    cases: AtomicU64,
    steps: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    fills: AtomicU64,
    sell_fills: AtomicU64,
    partial_fills: AtomicU64,
    one_share_fills: AtomicU64,
    cover_used: AtomicU64,
    orders_placed: AtomicU64,
    completed: AtomicU64,
    canceled: AtomicU64,
    rejected: AtomicU64,
    expired: AtomicU64,
    settlements_with_cash: AtomicU64,
    withdrawals_confirmed: AtomicU64,
    withdrawals_failed: AtomicU64,
    aml_flags: AtomicU64,
    codes: [AtomicU64; RejectCode::COUNT],
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn code(&self, code: RejectCode) -> u64 {
        let index = RejectCode::iter().position(|c| c == code).unwrap();
        Self::get(&self.codes[index])
    }

    fn report(&self, name: &str, elapsed: std::time::Duration) -> String {
        let g = Self::get;
        let mut codes: Vec<String> = RejectCode::iter()
            .map(|code| (code, self.code(code)))
            .filter(|(_, n)| *n > 0)
            .map(|(code, n)| format!("{code}={n}"))
            .collect();
        codes.sort();
        format!(
            "{name}: {} sequences, {} steps in {:.1?}: {} accepted, {} refused\n  \
             orders placed {}, fills booked {} (sells {}, partial {}, one-share {}, sell fee cover used {}), \
             completed {}, canceled {}, rejected {}, expired {}\n  \
             settlements moving cash {}, withdrawals confirmed {} / failed {}, AML flags {}\n  \
             refusals: {}",
            g(&self.cases),
            g(&self.steps),
            elapsed,
            g(&self.accepted),
            g(&self.refused),
            g(&self.orders_placed),
            g(&self.fills),
            g(&self.sell_fills),
            g(&self.partial_fills),
            g(&self.one_share_fills),
            g(&self.cover_used),
            g(&self.completed),
            g(&self.canceled),
            g(&self.rejected),
            g(&self.expired),
            g(&self.settlements_with_cash),
            g(&self.withdrawals_confirmed),
            g(&self.withdrawals_failed),
            g(&self.aml_flags),
            codes.join(" "),
        )
    }
}

// ---------------------------------------------------------------------------
// `Aggregate::handle` without a runtime: the account's handler never waits.
// ---------------------------------------------------------------------------

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("Account::handle did not complete without a runtime");
}

fn handle(account: &mut Account, command: AccountCommand, rules: &MarketRules) -> Result<Vec<AccountEvent>, Rejection> {
    let sink = EventSink::default();
    block_on(account.handle(command, rules, &sink))?;
    Ok(block_on(sink.collect()))
}

// ---------------------------------------------------------------------------
// The world around one account
// ---------------------------------------------------------------------------

struct World<'a> {
    rules: &'a MarketRules,
    stats: &'a Stats,
    market: &'static [Listing],
    codes: Vec<InstrumentCode>,
    account: Account,
    /// The account rebuilt from the accepted events read back from their JSON.
    rebuilt: Account,
    model: Model,
    day: usize,
    closed: BTreeSet<usize>,
    next_id: u64,
    deposit_refs: Vec<BankRef>,
    withdrawal_refs: Vec<BankRef>,
    order_ids: Vec<OrderId>,
    booked: Vec<(OrderId, ExecId, u64, Decimal)>,
    totals: EventTotals,
    sums: EventSums,
    log: Vec<String>,
}

impl<'a> World<'a> {
    fn new(rules: &'a MarketRules, stats: &'a Stats, market: &'static [Listing]) -> Self {
        World {
            rules,
            stats,
            market,
            codes: market.iter().map(|l| InstrumentCode::parse(l.code).unwrap()).collect(),
            account: Account::default(),
            rebuilt: Account::default(),
            model: Model::default(),
            day: 0,
            closed: BTreeSet::new(),
            next_id: 0,
            deposit_refs: Vec::new(),
            withdrawal_refs: Vec::new(),
            order_ids: Vec::new(),
            booked: Vec::new(),
            totals: EventTotals::default(),
            sums: EventSums::default(),
            log: Vec::new(),
        }
    }

    /// A command to the account not yet opened, the opening, and a first deposit.
    fn open(&mut self, initial_fen: i64) -> Result<(), TestCaseError> {
        let early = AccountCommand::Deposit {
            amount_cny: cny(100),
            bank_ref: BankRef::parse("EARLY").unwrap(),
        };
        self.execute(early)?;
        self.execute(AccountCommand::Open {
            account_id: AccountId::parse("P0001").unwrap(),
            customer_name: "Property Test".into(),
            id_number: "110101199001011234".into(),
            risk_level: CUSTOMER_RISK,
        })?;
        self.act(&Act::Deposit(DepositKind::Amount(initial_fen)))
    }

    /// Buys and fills each (instrument, percent of available cash), then closes the day.
    fn buy_portfolio(&mut self, portfolio: &[(usize, u8)]) -> Result<(), TestCaseError> {
        for (instrument, percent) in portfolio {
            self.act(&Act::Buy {
                instrument: *instrument,
                size: Size::Budget(*percent),
                price: PriceKind::Band(0),
                date: DateKind::Today,
                reuse_id: false,
            })?;
            self.act(&Act::Fill {
                target: Target::Open(0),
                qty: FillQty::All,
                price: FillPrice::Limit,
                exec: ExecKind::Fresh,
            })?;
        }
        if !portfolio.is_empty() {
            self.act(&Act::EndOfDay)?;
        }
        Ok(())
    }

    fn today(&self) -> NaiveDate {
        trade_date(self.day)
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn listing_index(&self, code: &InstrumentCode) -> Option<usize> {
        self.codes.iter().position(|c| c == code)
    }

    /// The reference price of an instrument on a date, and whether the snapshot has it.
    fn prev_close(&self, index: usize, day: usize) -> (Decimal, bool) {
        let listing = &self.market[index];
        let price = to_fen(cny(listing.base_fen) * Decimal::new(DAY_FACTORS_BP[day % DAYS], 4)).max(TICK);
        (price, listing.listed && !listing.no_close_on.contains(&day))
    }

    fn snapshot(&self, index: usize, day: usize) -> MarketSnapshot {
        let listing = &self.market[index];
        let (price, known) = self.prev_close(index, day);
        MarketSnapshot {
            instrument: listing.listed.then(|| InstrumentInfo {
                code: self.codes[index].clone(),
                name: format!("Stock {}", listing.code),
                board: listing.board,
                risk_level: listing.risk_level,
            }),
            prev_close: known.then_some(price),
            day_closed: self.closed.contains(&day),
        }
    }

    fn pick_day(&self, kind: &DateKind) -> usize {
        match kind {
            DateKind::Today => self.day,
            DateKind::ClosedDay(pick) => {
                let closed: Vec<usize> = self.closed.iter().copied().collect();
                if closed.is_empty() {
                    self.day
                } else {
                    closed[pick % closed.len()]
                }
            }
        }
    }

    fn order_price(&self, kind: &PriceKind, index: usize, day: usize) -> Decimal {
        let (reference, _) = self.prev_close(index, day);
        let rate = self.rules.board(self.market[index].board).price_limit_rate;
        let (lower, upper) = limits(reference, rate);
        match kind {
            PriceKind::Band(percent) => {
                let offset = to_fen(reference * rate * Decimal::from(*percent) / dec!(100));
                (reference + offset).clamp(lower, upper).max(TICK)
            }
            PriceKind::Upper => upper,
            PriceKind::Lower => lower.max(TICK),
            PriceKind::AboveUpper(ticks) => upper + TICK * Decimal::from(*ticks),
            PriceKind::BelowLower(ticks) => (lower - TICK * Decimal::from(*ticks)).max(TICK),
            PriceKind::OffTick => reference + dec!(0.005),
            PriceKind::NonPositive => Decimal::ZERO,
        }
    }

    fn buy_reserve(&self, price: Decimal, quantity: u64) -> Decimal {
        let value = price * Decimal::from(quantity);
        value + fees_on(self.rules, Side::Buy, value).total_cny()
    }

    fn buy_quantity(&self, size: &Size, index: usize, price: Decimal) -> u64 {
        let board = self.market[index].board;
        let b = self.rules.board(board);
        let available = self.account.cash().available_cny;
        let affordable = |budget: Decimal| -> u64 {
            let per_share = price.max(TICK) * dec!(1.0006);
            ((budget - dec!(5.50)).max(Decimal::ZERO) / per_share)
                .floor()
                .to_u64()
                .unwrap_or(0)
                .min(self.rules.max_order_quantity)
        };
        match size {
            Size::Budget(percent) => lot_down(
                self.rules,
                board,
                affordable(available * Decimal::from(*percent) / dec!(100)),
            ),
            Size::Drain => {
                // The largest lot whose reserve fits (the reserve grows with the quantity).
                let lot = |steps: u64| b.min_quantity + steps * b.step_quantity;
                let most = (available / price.max(TICK)).floor().to_u64().unwrap_or(0);
                let (mut fits, mut too_many) = (0, most.saturating_sub(b.min_quantity) / b.step_quantity + 1);
                if self.buy_reserve(price, lot(0)) > available {
                    return lot(0);
                }
                while too_many - fits > 1 {
                    let middle = (fits + too_many) / 2;
                    if self.buy_reserve(price, lot(middle)) <= available {
                        fits = middle;
                    } else {
                        too_many = middle;
                    }
                }
                lot(fits)
            }
            Size::Lots(lots) => b.min_quantity + (lots - 1) * b.step_quantity,
            Size::OffLot(lots, extra) => {
                if b.step_quantity == 1 {
                    1 + extra % (b.min_quantity - 1)
                } else {
                    b.min_quantity + (lots - 1) * b.step_quantity + 1 + extra % (b.step_quantity - 1)
                }
            }
            Size::Zero => 0,
            Size::Huge => self.rules.max_order_quantity + 1,
        }
    }

    fn pick_order(&self, target: &Target) -> OrderId {
        let open: Vec<&OrderId> = match target {
            Target::Open(_) => self.account.open_orders().keys().collect(),
            Target::OpenSell(_) => self
                .account
                .open_orders()
                .iter()
                .filter(|(_, o)| o.side == Side::Sell)
                .map(|(id, _)| id)
                .collect(),
            _ => Vec::new(),
        };
        match target {
            Target::Open(pick) | Target::OpenSell(pick) if !open.is_empty() => open[pick % open.len()].clone(),
            Target::OpenSell(pick) if !self.account.open_orders().is_empty() => {
                let any: Vec<&OrderId> = self.account.open_orders().keys().collect();
                any[pick % any.len()].clone()
            }
            Target::Closed(pick) => {
                let closed: Vec<&OrderId> = self
                    .order_ids
                    .iter()
                    .filter(|id| !self.account.open_orders().contains_key(*id))
                    .collect();
                if closed.is_empty() {
                    OrderId::parse("UNKNOWN").unwrap()
                } else {
                    closed[pick % closed.len()].clone()
                }
            }
            _ => OrderId::parse("UNKNOWN").unwrap(),
        }
    }

    /// The number of shares (at `price`) up to the share before the next one-share step
    /// whose fee increments exceed its value, or the order's remainder if none comes.
    /// The first share of an order (which pays the minimum commission) does not count.
    /// Fees only change where some fee's rounded amount steps up, so only those
    /// thresholds are visited.
    fn before_costly_step(&self, order: &ledger_domain::order::Order, price: Decimal) -> u64 {
        let remaining = order.quantity - order.filled_quantity;
        let side = order.side;
        let (mut value, mut shares) = if order.filled_value_cny.is_zero() {
            (price, 1)
        } else {
            (order.filled_value_cny, 0)
        };
        for _ in 0..10_000 {
            let current = fees_on(self.rules, side, value);
            // The smallest value at which a fee's rounded amount goes up: rate × v ≥ fee + 0.005.
            let Some(threshold) = self
                .rules
                .fees
                .named()
                .iter()
                .zip(fee_fields(&current))
                .filter(|((_, rule), _)| {
                    rule.rate > Decimal::ZERO && if side == Side::Buy { rule.on_buy } else { rule.on_sell }
                })
                .map(|((_, rule), fee)| (fee.max(rule.minimum_cny) + dec!(0.005)) / rule.rate)
                .min()
            else {
                return remaining;
            };
            let steps = ((threshold - value) / price)
                .ceil()
                .max(Decimal::ONE)
                .to_u64()
                .unwrap_or(u64::MAX);
            if steps > remaining.saturating_sub(shares) {
                return remaining;
            }
            let before = value + price * Decimal::from(steps - 1);
            let after = before + price;
            let increment =
                fees_on(self.rules, side, after).total_cny() - fees_on(self.rules, side, before).total_cny();
            if increment > price {
                return (shares + steps - 1).max(1);
            }
            shares += steps;
            value = after;
        }
        remaining
    }

    /// Turns an action into a command against the current state.
    fn command(&mut self, act: &Act) -> AccountCommand {
        match act {
            Act::Deposit(kind) => {
                let (amount_cny, bank_ref) = match kind {
                    DepositKind::DupRef(pick) if !self.deposit_refs.is_empty() => {
                        (cny(10_000), self.deposit_refs[pick % self.deposit_refs.len()].clone())
                    }
                    _ => {
                        let amount = match kind {
                            DepositKind::Amount(fen) => cny(*fen),
                            DepositKind::Aml(fen) => self.rules.aml_threshold_cny + cny(*fen),
                            DepositKind::Zero => Decimal::ZERO,
                            DepositKind::Negative => cny(-10_000),
                            DepositKind::SubFen => dec!(100.001),
                            DepositKind::TooLarge => self.rules.max_cash_amount_cny + TICK,
                            DepositKind::DupRef(_) => cny(10_000),
                        };
                        (amount, BankRef::parse(&self.fresh("D")).unwrap())
                    }
                };
                self.deposit_refs.push(bank_ref.clone());
                AccountCommand::Deposit { amount_cny, bank_ref }
            }
            Act::Withdraw(kind) => {
                // With nothing withdrawable, ask for a little (insufficient funds, not malformed).
                let withdrawable = self.account.cash().withdrawable_cny().max(cny(100));
                let mut bank_ref = BankRef::parse(&self.fresh("W")).unwrap();
                let amount_cny = match kind {
                    WithdrawKind::All => withdrawable,
                    WithdrawKind::Part(percent) => to_fen(withdrawable * Decimal::from(*percent) / dec!(100)),
                    WithdrawKind::TooMuch(fen) => withdrawable + cny(*fen),
                    WithdrawKind::SubFen => dec!(10.005),
                    WithdrawKind::DupRef(pick) => {
                        let used: Vec<&BankRef> = self.deposit_refs.iter().chain(&self.withdrawal_refs).collect();
                        if !used.is_empty() {
                            bank_ref = used[pick % used.len()].clone();
                        }
                        to_fen(withdrawable / dec!(2))
                    }
                };
                self.withdrawal_refs.push(bank_ref.clone());
                AccountCommand::Withdraw { amount_cny, bank_ref }
            }
            Act::BankAnswer { pick, confirm, stale } => {
                let bank_ref = if *stale || self.withdrawal_refs.is_empty() {
                    if self.deposit_refs.is_empty() || pick % 2 == 0 {
                        BankRef::parse("NO-SUCH-REF").unwrap()
                    } else {
                        self.deposit_refs[pick % self.deposit_refs.len()].clone()
                    }
                } else {
                    // Mostly the ones still pending.
                    let pending: Vec<&BankRef> = self.account.pending_withdrawals().keys().collect();
                    if !pending.is_empty() && pick % 4 != 0 {
                        pending[pick % pending.len()].clone()
                    } else {
                        self.withdrawal_refs[pick % self.withdrawal_refs.len()].clone()
                    }
                };
                if *confirm {
                    AccountCommand::ConfirmWithdrawal { bank_ref }
                } else {
                    AccountCommand::FailWithdrawal { bank_ref }
                }
            }
            Act::Buy {
                instrument,
                size,
                price,
                date,
                reuse_id,
            } => {
                let index = instrument % self.market.len();
                let day = self.pick_day(date);
                let price = self.order_price(price, index, day);
                let quantity = self.buy_quantity(size, index, price);
                let order_id = if *reuse_id && !self.order_ids.is_empty() {
                    self.order_ids[self.next_id as usize % self.order_ids.len()].clone()
                } else {
                    OrderId::parse(&self.fresh("B")).unwrap()
                };
                AccountCommand::PlaceOrder(PlaceOrder {
                    order_id,
                    instrument: self.codes[index].clone(),
                    side: Side::Buy,
                    quantity,
                    price,
                    trade_date: trade_date(day),
                    market: self.snapshot(index, day),
                })
            }
            Act::Sell {
                pick,
                size,
                price,
                date,
            } => {
                // Mostly what can be sold today; else what is held at all.
                let day = self.pick_day(date);
                let held_where = |enough: &dyn Fn(&ledger_domain::account::Position) -> bool| -> Vec<usize> {
                    self.account
                        .positions()
                        .iter()
                        .filter(|(_, p)| enough(p))
                        .filter_map(|(code, _)| self.listing_index(code))
                        .collect()
                };
                let mut held = held_where(&|p| p.sellable_on(trade_date(day)) > 0);
                if held.is_empty() || pick % 8 == 0 {
                    held = held_where(&|p| p.quantity > 0);
                }
                let index = if held.is_empty() {
                    pick % self.market.len()
                } else {
                    held[pick % held.len()]
                };
                let board = self.market[index].board;
                let b = self.rules.board(board);
                let sellable = self
                    .account
                    .positions()
                    .get(&self.codes[index])
                    .map_or(0, |p| p.sellable_on(trade_date(day)));
                let quantity = match size {
                    // Nothing sellable: ask for a lot anyway (insufficient position).
                    SellSize::AllSellable if sellable == 0 => b.min_quantity,
                    SellSize::AllSellable => sellable,
                    SellSize::Pct(percent) => lot_down(self.rules, board, sellable * u64::from(*percent) / 100),
                    SellSize::OffLot(extra) => {
                        if b.step_quantity == 1 {
                            1 + extra % (b.min_quantity - 1)
                        } else {
                            b.min_quantity + 1 + extra % (b.step_quantity - 1)
                        }
                    }
                    SellSize::MoreThanSellable(lots) => sellable + lots * b.step_quantity,
                };
                let price = self.order_price(price, index, day);
                AccountCommand::PlaceOrder(PlaceOrder {
                    order_id: OrderId::parse(&self.fresh("S")).unwrap(),
                    instrument: self.codes[index].clone(),
                    side: Side::Sell,
                    quantity,
                    price,
                    trade_date: trade_date(day),
                    market: self.snapshot(index, day),
                })
            }
            Act::Fill {
                target,
                qty,
                price,
                exec,
            } => {
                if let ExecKind::RepeatSame(pick) = exec {
                    if !self.booked.is_empty() {
                        let (order_id, exec_id, quantity, price) = self.booked[pick % self.booked.len()].clone();
                        return AccountCommand::BookFill {
                            order_id,
                            exec_id,
                            quantity,
                            price,
                        };
                    }
                }
                let targets_open = matches!(target, Target::Open(_) | Target::OpenSell(_));
                if targets_open && self.account.open_orders().is_empty() {
                    // Nothing for the exchange to fill: the customer trades instead.
                    let instrument = self.next_id as usize % 5;
                    return self.command(&Act::Buy {
                        instrument,
                        size: Size::Budget(40),
                        price: PriceKind::Band(0),
                        date: DateKind::Today,
                        reuse_id: false,
                    });
                }
                let order_id = self.pick_order(target);
                let exec_id = match exec {
                    ExecKind::RepeatOther(pick) if !self.booked.is_empty() => {
                        self.booked[pick % self.booked.len()].1.clone()
                    }
                    _ => ExecId::parse(&self.fresh("E")).unwrap(),
                };
                let Some(order) = self.account.open_orders().get(&order_id).cloned() else {
                    return AccountCommand::BookFill {
                        order_id,
                        exec_id,
                        quantity: 100,
                        price: dec!(10.00),
                    };
                };
                let toward_customer = |ticks: i64| match order.side {
                    Side::Buy => order.limit_price - TICK * Decimal::from(ticks),
                    Side::Sell => order.limit_price + TICK * Decimal::from(ticks),
                };
                let price = match price {
                    FillPrice::Limit => order.limit_price,
                    FillPrice::Better(ticks) => toward_customer(*ticks).max(TICK),
                    FillPrice::Beyond(ticks) => toward_customer(-ticks).max(Decimal::ZERO),
                    FillPrice::OffTick => toward_customer(1).max(TICK) - dec!(0.005),
                };
                let remaining = order.quantity - order.filled_quantity;
                let quantity = match qty {
                    FillQty::All => remaining,
                    FillQty::Pct(percent) => (remaining * u64::from(*percent) / 100).max(1),
                    FillQty::One => 1,
                    FillQty::Over(extra) => remaining + extra,
                    FillQty::Zero => 0,
                    FillQty::BeforeCostlyStep => self.before_costly_step(&order, price),
                };
                AccountCommand::BookFill {
                    order_id,
                    exec_id,
                    quantity,
                    price,
                }
            }
            Act::Cancel(target) => AccountCommand::RequestCancel {
                order_id: self.pick_order(target),
            },
            Act::ConfirmCancel(target) => AccountCommand::ConfirmCancel {
                order_id: self.pick_order(target),
            },
            Act::Reject(target) => AccountCommand::RejectOrder {
                order_id: self.pick_order(target),
                reason: "exchange: price outside the band".into(),
            },
            Act::EndOfDay => AccountCommand::ExpireOrders {
                trade_date: self.today(),
            },
            Act::Settle(pick) => {
                let closed: Vec<usize> = self.closed.iter().copied().collect();
                let trade_date = if closed.is_empty() {
                    trade_date(0).pred_opt().unwrap()
                } else if pick % 3 != 0 {
                    // Mostly the latest closed day: the normal T+1 run.
                    trade_date(*closed.last().unwrap())
                } else {
                    trade_date(closed[pick % closed.len()])
                };
                AccountCommand::SettleTrades { trade_date }
            }
            Act::Freeze => AccountCommand::Freeze {
                reason: "compliance review".into(),
            },
            Act::Unfreeze => AccountCommand::Unfreeze {
                reason: "review closed".into(),
            },
            Act::Reopen => AccountCommand::Open {
                account_id: AccountId::parse("P0001").unwrap(),
                customer_name: "Property Test".into(),
                id_number: "110101199001011234".into(),
                risk_level: CUSTOMER_RISK,
            },
        }
    }

    fn act(&mut self, act: &Act) -> Result<(), TestCaseError> {
        let command = self.command(act);
        let end_of_day = matches!(act, Act::EndOfDay);
        self.execute(command)?;
        if end_of_day {
            // The day is closed: no more orders for it; trading moves to the next date.
            self.closed.insert(self.day);
            self.day += 1;
        }
        Ok(())
    }

    /// Runs one command through the aggregate and the model, then checks everything.
    fn execute(&mut self, command: AccountCommand) -> Result<(), TestCaseError> {
        let step = self.log.len();
        let before = self.account.clone();
        let predicted = self.model.predict(&command, self.rules);
        let decided = self.account.decide(command.clone(), self.rules);
        let mut via_handle = before.clone();
        let handled = handle(&mut via_handle, command.clone(), self.rules);
        let outcome = match &decided {
            Ok(events) => format!("accepted, {} event(s)", events.len()),
            Err(rejection) => format!("refused: {rejection}"),
        };
        self.log.push(format!("#{step:<3} {} => {outcome}", describe(&command)));
        let fail = |world: &World, why: String| -> TestCaseError {
            TestCaseError::fail(format!(
                "\nstep #{step} broke a property: {why}\n  command: {command:?}\n  result: {decided:?}\n  \
                 cash before: {:?}\n  cash after: {:?}\nsequence so far:\n{}\n",
                before.cash(),
                world.account.cash(),
                world.log.join("\n")
            ))
        };
        Stats::bump(&self.stats.steps);
        let restored = Account::from_snapshot(before.to_snapshot());
        let restored_decides_alike = restored
            .as_ref()
            .is_ok_and(|copy| *copy == before && copy.decide(command.clone(), self.rules) == decided);
        if !restored_decides_alike {
            return Err(fail(
                self,
                format!("the account restored from its snapshot differs or decides otherwise: {restored:?}"),
            ));
        }
        match (predicted, decided.clone()) {
            (Ok(expected), Ok(events)) => {
                let matches = events == expected.events || (expected.may_be_empty && events.is_empty());
                if !matches {
                    return Err(fail(
                        self,
                        format!("the model expected the events {:?}", expected.events),
                    ));
                }
                if handled.as_ref() != Ok(&events) {
                    return Err(fail(self, format!("Aggregate::handle answered {handled:?}")));
                }
                for event in &events {
                    self.account.apply(event.clone());
                    self.rebuilt.apply(read_back(event));
                    if let Err(why) = self.record(event) {
                        return Err(fail(self, why));
                    }
                }
                let spelled = |account: &Account| serde_json::to_string(&account.to_snapshot()).unwrap();
                if spelled(&self.rebuilt) != spelled(&self.account) {
                    return Err(fail(
                        self,
                        format!(
                            "the account rebuilt from the stored events is spelled otherwise than the one in memory:\n  \
                             rebuilt:   {}\n  in memory: {}",
                            spelled(&self.rebuilt),
                            spelled(&self.account)
                        ),
                    ));
                }
                let viewed = serde_json::to_string(&self.account.snapshot_view()).unwrap();
                if viewed != spelled(&self.account) {
                    return Err(fail(
                        self,
                        format!(
                            "the borrowed snapshot view is spelled otherwise than the snapshot:\n  \
                             view:     {viewed}\n  snapshot: {}",
                            spelled(&self.account)
                        ),
                    ));
                }
                for event in &expected.events {
                    self.model.apply(event);
                }
                if via_handle != self.account {
                    return Err(fail(
                        self,
                        "Aggregate::handle left another state than decide + apply".into(),
                    ));
                }
                Stats::bump(&self.stats.accepted);
                let filled = events.iter().any(|e| matches!(e, AccountEvent::FillBooked { .. }));
                let completed = events.iter().any(|e| matches!(e, AccountEvent::OrderCompleted { .. }));
                if filled && !completed {
                    Stats::bump(&self.stats.partial_fills);
                }
            }
            (Err(codes), Err(rejection)) => {
                if !codes.contains(&rejection.code) {
                    return Err(fail(
                        self,
                        format!("the model expected a refusal with one of {codes:?}"),
                    ));
                }
                if self.account != before {
                    return Err(fail(self, "the refused command changed the state".into()));
                }
                if via_handle != before || handled.as_ref() != Err(&rejection) {
                    return Err(fail(
                        self,
                        format!("Aggregate::handle answered {handled:?} or changed the state on a refusal"),
                    ));
                }
                Stats::bump(&self.stats.refused);
                let index = RejectCode::iter().position(|c| c == rejection.code).unwrap();
                Stats::bump(&self.stats.codes[index]);
            }
            (Ok(expected), Err(_)) => {
                return Err(fail(
                    self,
                    format!("the model expected acceptance with {:?}", expected.events),
                ))
            }
            (Err(codes), Ok(_)) => return Err(fail(self, format!("the model expected a refusal with {codes:?}"))),
        }
        self.check().map_err(|why| fail(self, why))
    }

    /// Sums an accepted event, independently of the aggregate.
    fn record(&mut self, event: &AccountEvent) -> Result<(), String> {
        self.totals.add(event);
        let stats = self.stats;
        match event {
            AccountEvent::CashDeposited { amount_cny, .. } => self.sums.cash += amount_cny,
            AccountEvent::WithdrawalConfirmed { amount_cny, .. } => {
                self.sums.cash -= amount_cny;
                Stats::bump(&stats.withdrawals_confirmed);
            }
            AccountEvent::WithdrawalFailed { .. } => Stats::bump(&stats.withdrawals_failed),
            AccountEvent::LargeCashMovementFlagged { .. } => Stats::bump(&stats.aml_flags),
            AccountEvent::OrderPlaced {
                order_id,
                side,
                reserved_cny,
                ..
            } => {
                Stats::bump(&stats.orders_placed);
                self.order_ids.push(order_id.clone());
                let previous = self.sums.orders.insert(
                    order_id.clone(),
                    OrderBook {
                        side: *side,
                        placed_reserve: *reserved_cny,
                        value: Decimal::ZERO,
                        fees: FeeBreakdown::default(),
                        reserve_used: Decimal::ZERO,
                        released: Decimal::ZERO,
                        ends: 0,
                    },
                );
                if previous.is_some() {
                    return Err(format!("order id {order_id} was placed twice"));
                }
            }
            AccountEvent::FillBooked {
                order_id,
                exec_id,
                instrument,
                side,
                quantity,
                price,
                value_cny,
                fees,
                reserve_used_cny,
                ..
            } => {
                Stats::bump(&stats.fills);
                if *side == Side::Sell {
                    Stats::bump(&stats.sell_fills);
                    if *reserve_used_cny > Decimal::ZERO {
                        Stats::bump(&stats.cover_used);
                    }
                }
                if *quantity == 1 {
                    Stats::bump(&stats.one_share_fills);
                }
                self.booked.push((order_id.clone(), exec_id.clone(), *quantity, *price));
                if let Some(negative) = fee_fields(fees).iter().find(|fee| **fee < Decimal::ZERO) {
                    return Err(format!(
                        "fill {exec_id} charged a negative fee increment {negative} ({fees:?})"
                    ));
                }
                if *value_cny != *price * Decimal::from(*quantity) {
                    return Err(format!("fill {exec_id}: value {value_cny} != {price} × {quantity}"));
                }
                let held = self.sums.quantity.entry(instrument.clone()).or_default();
                match side {
                    Side::Buy => {
                        self.sums.cash -= value_cny + fees.total_cny();
                        *held += i128::from(*quantity);
                    }
                    Side::Sell => {
                        self.sums.cash += value_cny - fees.total_cny();
                        *held -= i128::from(*quantity);
                    }
                }
                let Some(book) = self.sums.orders.get_mut(order_id) else {
                    return Err(format!("fill of order {order_id} that was never placed"));
                };
                if book.ends > 0 {
                    return Err(format!("fill of order {order_id} after it ended"));
                }
                book.value += value_cny;
                book.fees = book.fees.plus(fees);
                book.reserve_used += reserve_used_cny;
            }
            AccountEvent::OrderCompleted { order_id, released_cny }
            | AccountEvent::OrderRejected {
                order_id, released_cny, ..
            }
            | AccountEvent::OrderCanceled {
                order_id, released_cny, ..
            }
            | AccountEvent::OrderExpired {
                order_id, released_cny, ..
            } => {
                let counter = match event {
                    AccountEvent::OrderCompleted { .. } => &stats.completed,
                    AccountEvent::OrderRejected { .. } => &stats.rejected,
                    AccountEvent::OrderCanceled { .. } => &stats.canceled,
                    _ => &stats.expired,
                };
                Stats::bump(counter);
                let Some(book) = self.sums.orders.get_mut(order_id) else {
                    return Err(format!("order {order_id} ended without being placed"));
                };
                book.ends += 1;
                book.released += released_cny;
            }
            AccountEvent::TradesSettled { settled_cny, .. } if !settled_cny.is_zero() => {
                Stats::bump(&stats.settlements_with_cash);
            }
            _ => {}
        }
        if !self.sums.orders.values().all(|book| book.ends <= 1) {
            return Err("an order ended twice (its freeze released more than once)".into());
        }
        Ok(())
    }

    /// The invariants after a step.
    fn check(&self) -> Result<(), String> {
        let account = &self.account;
        let cash = account.cash();
        let today = self.today();
        let zero = Decimal::ZERO;

        // 1. Nothing below zero.
        if cash.available_cny < zero || cash.frozen_cny < zero || cash.unsettled_cny < zero {
            return Err(format!("invariant 1: negative cash {cash:?}"));
        }
        for (instrument, position) in account.positions() {
            let locked: u64 = position.bought_by_date.range(today..).map(|(_, q)| *q).sum();
            let sellable = i128::from(position.quantity) - i128::from(position.frozen) - i128::from(locked);
            if sellable < 0 || position.frozen > position.quantity {
                return Err(format!(
                    "invariant 1: {instrument} quantity {} frozen {} locked by T+1 {locked}: sellable {sellable}",
                    position.quantity, position.frozen
                ));
            }
        }

        // 2. Every freeze is backed by an open order or a pending withdrawal.
        let reserves: Decimal = account.open_orders().values().map(|o| o.reserved_cny).sum();
        let pending: Decimal = account.pending_withdrawals().values().sum();
        if cash.frozen_cny != reserves + pending {
            return Err(format!(
                "invariant 2: frozen cash {} != order reserves {reserves} + pending withdrawals {pending}",
                cash.frozen_cny
            ));
        }
        let mut open_sells: BTreeMap<&InstrumentCode, u64> = BTreeMap::new();
        for order in account.open_orders().values() {
            if order.filled_quantity >= order.quantity {
                return Err(format!(
                    "order {} is still open with {} of {} filled",
                    order.order_id, order.filled_quantity, order.quantity
                ));
            }
            if order.side == Side::Sell {
                *open_sells.entry(&order.instrument).or_default() += order.quantity - order.filled_quantity;
            }
        }
        for (instrument, position) in account.positions() {
            let expected = open_sells.get(instrument).copied().unwrap_or(0);
            if position.frozen != expected {
                return Err(format!(
                    "invariant 2: {instrument} frozen {} != open sell remainders {expected}",
                    position.frozen
                ));
            }
        }
        for (instrument, remainder) in &open_sells {
            if !account.positions().contains_key(*instrument) {
                return Err(format!(
                    "invariant 2: {remainder} shares of {instrument} sold without a position"
                ));
            }
        }

        // 3. Cash and positions are what the events add up to.
        if cash.available_cny + cash.frozen_cny != self.sums.cash {
            return Err(format!(
                "invariant 3: available + frozen = {} but deposits - withdrawals - buys - fees + sells = {}",
                cash.available_cny + cash.frozen_cny,
                self.sums.cash
            ));
        }
        for (instrument, quantity) in &self.sums.quantity {
            let held = account
                .positions()
                .get(instrument)
                .map_or(0, |p| i128::from(p.quantity));
            if held != *quantity {
                return Err(format!(
                    "invariant 3: {instrument} quantity {held} != bought - sold {quantity}"
                ));
            }
        }
        for (instrument, position) in account.positions() {
            if position.quantity > 0 && !self.sums.quantity.contains_key(instrument) {
                return Err(format!("invariant 3: {instrument} held without a fill"));
            }
        }
        check_account(account, &self.totals).map_err(|why| format!("invariants::check_account: {why}"))?;

        // The cumulative fee rule, and each reserve released exactly once.
        for (order_id, book) in &self.sums.orders {
            let whole = cumulative_fees(&self.rules.fees, book.side, book.value);
            if book.fees != whole {
                return Err(format!(
                    "fee rule: order {order_id} (ended: {}) paid {:?} over its fills, but the fee on its \
                     whole value {} is {:?}",
                    book.ends > 0,
                    book.fees,
                    book.value,
                    whole
                ));
            }
            let still_held = account.open_orders().get(order_id).map(|o| o.reserved_cny);
            let left = book.placed_reserve - book.reserve_used - book.released;
            match still_held {
                Some(reserved) if book.ends == 0 && reserved == left => {}
                None if book.ends == 1 && left.is_zero() => {}
                _ => {
                    return Err(format!(
                        "order {order_id}: reserved {} - used {} - released {} = {left}, ended {} time(s), \
                         the account holds {still_held:?}",
                        book.placed_reserve, book.reserve_used, book.released, book.ends
                    ))
                }
            }
        }

        self.compare_with_model()
    }

    /// The aggregate's state equals the model's.
    fn compare_with_model(&self) -> Result<(), String> {
        let account = &self.account;
        let model = &self.model;
        let cash = account.cash();
        let expected = (model.available(), model.frozen_cash(), model.unsettled_total());
        if (cash.available_cny, cash.frozen_cny, cash.unsettled_cny) != expected {
            return Err(format!(
                "model: cash {cash:?}, the model has (available, frozen, unsettled) = {expected:?}"
            ));
        }
        if account.is_frozen() != model.frozen {
            return Err(format!(
                "model: account frozen {} != {}",
                account.is_frozen(),
                model.frozen
            ));
        }
        let pending: BTreeMap<BankRef, Decimal> = model.pending.clone();
        if account.pending_withdrawals() != &pending {
            return Err(format!(
                "model: pending withdrawals {:?} != {pending:?}",
                account.pending_withdrawals()
            ));
        }
        let open: Vec<&OrderId> = model.open_orders().map(|(id, _)| id).collect();
        let actual: Vec<&OrderId> = account.open_orders().keys().collect();
        if open != actual {
            return Err(format!("model: open orders {actual:?} != {open:?}"));
        }
        for (order_id, order) in account.open_orders() {
            let m = &model.orders[order_id];
            let same = order.instrument == m.instrument
                && order.side == m.side
                && order.quantity == m.quantity
                && order.limit_price == m.limit
                && order.trade_date == m.date
                && order.filled_quantity == m.filled
                && order.filled_value_cny == m.value
                && order.fees_paid == m.fees
                && order.reserved_cny == m.reserve
                && order.cancel_requested == m.cancel_requested;
            if !same {
                return Err(format!("model: order {order:?} != {m:?}"));
            }
        }
        let today = self.today();
        let instruments: BTreeSet<&InstrumentCode> = account.positions().keys().chain(model.held.keys()).collect();
        for instrument in instruments {
            let position = account.positions().get(instrument).cloned().unwrap_or_default();
            let expected = (
                model.held(instrument),
                model.frozen_shares(instrument),
                model.sellable(instrument, today),
            );
            let actual = (
                position.quantity,
                position.frozen,
                i128::from(position.sellable_on(today)),
            );
            if actual != expected {
                return Err(format!(
                    "model: {instrument} (quantity, frozen, sellable today) {actual:?} != {expected:?}"
                ));
            }
        }
        Ok(())
    }
}

/// One line per command, for the failure report.
/// An event as the log gives it back: written as JSON, read from that text.
fn read_back(event: &AccountEvent) -> AccountEvent {
    serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap()
}

fn describe(command: &AccountCommand) -> String {
    match command {
        AccountCommand::PlaceOrder(o) => format!(
            "place {} {} {} x {} @ {} on {} (prev close {:?}, day closed {}, listed {})",
            o.order_id,
            o.side.as_str(),
            o.instrument,
            o.quantity,
            o.price,
            o.trade_date,
            o.market.prev_close,
            o.market.day_closed,
            o.market.instrument.is_some()
        ),
        AccountCommand::BookFill {
            order_id,
            exec_id,
            quantity,
            price,
        } => format!("fill {order_id} exec {exec_id}: {quantity} @ {price}"),
        other => format!("{other:?}"),
    }
}

/// The seed of every run unless `PROPTEST_RNG_SEED` names another: CI runs the same
/// sequences each time, and a failure seen anywhere is replayed with its seed.
const DEFAULT_SEED: u64 = 20_240_304;

fn runner(cases: u32) -> TestRunner {
    let defaults = Config::default();
    let rng_seed = match defaults.rng_seed {
        RngSeed::Random => RngSeed::Fixed(DEFAULT_SEED),
        chosen => chosen,
    };
    eprintln!("seed: {rng_seed:?} (set PROPTEST_RNG_SEED=<u64> to explore others)");
    TestRunner::new(Config {
        cases,
        rng_seed,
        // A failure prints its minimal sequence; nothing is written next to the sources.
        failure_persistence: None,
        max_shrink_iters: 4_096,
        ..defaults
    })
}

/// The main property: random, state-steered sequences on a realistic market.
#[test]
fn invariants_hold_after_every_step_of_random_command_sequences() {
    let rules = MarketRules::china_a_share().unwrap();
    let stats = Stats::default();
    let started = Instant::now();
    // Often a little money (cash runs out, the fee cover matters), often a lot.
    let initial_fen = prop_oneof![1 => 500i64..=50_000, 3 => 50_000i64..=200_000_000];
    // Mostly a portfolio bought the day before (instrument, percent of cash), so that sells happen.
    let portfolio = prop::collection::vec((0usize..5, 5u8..=45), 0..=3);
    let strategy = (initial_fen, portfolio, prop::collection::vec(action(), 1..=MAX_STEPS));
    let result = runner(CASES).run(&strategy, |(initial_fen, portfolio, actions)| {
        Stats::bump(&stats.cases);
        let mut world = World::new(&rules, &stats, &MARKET);
        world.open(initial_fen)?;
        world.buy_portfolio(&portfolio)?;
        for act in &actions {
            world.act(act)?;
        }
        Ok(())
    });
    let report = stats.report("account properties", started.elapsed());
    eprintln!("{report}");
    if let Err(error) = result {
        panic!("{error}");
    }
    // The generator must really trade, not only be refused.
    let cases = u64::from(CASES);
    let g = Stats::get;
    assert!(g(&stats.fills) >= 3 * cases, "too few fills booked\n{report}");
    assert!(g(&stats.sell_fills) >= cases / 2, "too few sell fills\n{report}");
    assert!(g(&stats.partial_fills) >= cases, "too few partial fills\n{report}");
    assert!(
        g(&stats.one_share_fills) >= cases / 2,
        "too few one-share fills\n{report}"
    );
    for counter in [
        &stats.cover_used,
        &stats.completed,
        &stats.canceled,
        &stats.rejected,
        &stats.expired,
        &stats.settlements_with_cash,
        &stats.withdrawals_confirmed,
        &stats.withdrawals_failed,
        &stats.aml_flags,
    ] {
        assert!(
            g(counter) >= cases / 40,
            "a kind of event is rarely exercised\n{report}"
        );
    }
    assert!(
        g(&stats.accepted) >= g(&stats.refused),
        "fewer commands accepted than refused\n{report}"
    );
    // The calendar's refusal of an end of day is the clearing day's, never an account's;
    // figures beyond the numeric range need balances near `Decimal::MAX`, which bounded
    // commands never reach (domain/tests/account.rs plants one).
    let unreachable = [RejectCode::NotOpenTradeDate, RejectCode::NumericRange];
    for code in RejectCode::iter().filter(|code| !unreachable.contains(code)) {
        assert!(stats.code(code) > 0, "refusal {code} never exercised\n{report}");
    }
}

// ---------------------------------------------------------------------------
// The sell fee cover at the lowest price, one fen a share
// ---------------------------------------------------------------------------

/// What a failure of the one-fen properties means.
const PENNY_BROKEN: &str = "at 0.01 a share, a sell fill whose fee increments (stamp duty and regulatory fee \
     both rounding up) exceed its 0.01 value must take the excess from the order's fee cover, never from \
     available cash";

/// Fills of a sell order at one fen a share: single shares, runs up to the next share
/// whose fee increments exceed its value, and slices of the remainder.
fn penny_fill() -> impl Strategy<Value = FillQty> {
    prop_oneof![
        3 => Just(FillQty::One),
        3 => Just(FillQty::BeforeCostlyStep),
        1 => (1u8..=99).prop_map(FillQty::Pct),
    ]
}

/// Holds `lots` × 100 shares of a one-fen stock bought the day before, then sells them
/// all at 0.01 in fills of `plan`; before a fill, `true` spends all available cash on a
/// one-fen STAR stock (whose lots of 1 share let the reserve match the cash exactly).
fn run_penny_case(
    rules: &MarketRules,
    stats: &Stats,
    lots: u64,
    plan: &[(FillQty, bool)],
) -> Result<(), TestCaseError> {
    let mut world = World::new(rules, stats, &PENNY_MARKET);
    world.open(200_000)?;
    world.buy_portfolio(&[])?;
    world.act(&Act::Buy {
        instrument: 0,
        size: Size::Lots(lots),
        price: PriceKind::Band(0),
        date: DateKind::Today,
        reuse_id: false,
    })?;
    world.act(&Act::Fill {
        target: Target::Open(0),
        qty: FillQty::All,
        price: FillPrice::Limit,
        exec: ExecKind::Fresh,
    })?;
    world.act(&Act::EndOfDay)?;
    world.act(&Act::Sell {
        pick: 0,
        size: SellSize::AllSellable,
        price: PriceKind::Band(0),
        date: DateKind::Today,
    })?;
    for (qty, drain) in plan {
        if *drain {
            world.act(&Act::Buy {
                instrument: 1,
                size: Size::Drain,
                price: PriceKind::Band(0),
                date: DateKind::Today,
                reuse_id: false,
            })?;
        }
        world.act(&Act::Fill {
            target: Target::OpenSell(0),
            qty: qty.clone(),
            price: FillPrice::Limit,
            exec: ExecKind::Fresh,
        })?;
    }
    Ok(())
}

/// The invariants (above all: available cash never below zero) on sells at one fen a share.
#[test]
fn sell_fee_cover_keeps_available_cash_non_negative_at_one_fen() {
    let rules = MarketRules::china_a_share().unwrap();
    let stats = Stats::default();
    let started = Instant::now();
    let strategy = (
        250u64..=1_500,
        prop::collection::vec((penny_fill(), prop::bool::weighted(0.4)), 1..=8),
    );
    let result = runner(500).run(&strategy, |(lots, plan)| {
        Stats::bump(&stats.cases);
        run_penny_case(&rules, &stats, lots, &plan)
    });
    eprintln!("{}", stats.report("one-fen sells", started.elapsed()));
    if let Err(error) = result {
        panic!("{PENNY_BROKEN}\n{error}");
    }
}

/// The shortest sequence that drove available cash negative before the cover was
/// refilled by proceeds: 25,000 shares at 0.01; the first fill of one share spends the
/// first-fill part of the cover (5.00 commission - 0.01 value); a fill of 24,998 shares
/// brings the order's value to 249.99; all available cash is spent on a buy; the last
/// share (value 0.01) crosses 250.00, where stamp duty (0.124995 -> 0.13) and the
/// regulatory fee (0.0049998 -> 0.01) both round up: 0.02 of fees on 0.01 of value,
/// which the cover, refilled by the 24,998 shares' proceeds, pays.
#[test]
fn one_fen_sell_fill_after_the_cover_is_spent_keeps_available_cash_non_negative() {
    let rules = MarketRules::china_a_share().unwrap();
    let stats = Stats::default();
    let plan = [
        (FillQty::One, false),
        (FillQty::BeforeCostlyStep, false),
        (FillQty::One, true),
    ];
    if let Err(error) = run_penny_case(&rules, &stats, 250, &plan) {
        panic!("{PENNY_BROKEN}\n{error}");
    }
}
