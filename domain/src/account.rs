//! The `Account` aggregate: one customer capital account (资金账户) holding its
//! cash, its positions and its open orders together, so that every command
//! touches one aggregate and 100% funds/position consistency holds by construction.
//!
//! `decide` takes `&self`: a refused command cannot have changed anything.
//! `apply` is the only place state changes, and it trusts the event: every
//! figure an event carries was decided, checked and rounded by `decide`.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{reject, RejectCode, Rejection};
use crate::fees::{cumulative_fees, FeeBreakdown};
use crate::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use crate::instrument::{Board, InstrumentInfo, RISK_LEVELS};
use crate::money::{ceil_to_fen, is_on_tick, is_whole_fen, round_to_fen, trade_value, ONE_FEN_CNY};
use crate::order::{Order, Side};
use crate::rules::MarketRules;

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountCommand {
    Open {
        account_id: AccountId,
        customer_name: String,
        id_number: String,
        risk_level: u8,
    },
    /// A bank-to-securities transfer the bank has already confirmed.
    Deposit {
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    /// Freezes the amount until the bank answers.
    Withdraw {
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    ConfirmWithdrawal {
        bank_ref: BankRef,
    },
    FailWithdrawal {
        bank_ref: BankRef,
    },
    PlaceOrder(PlaceOrder),
    /// The exchange refused the order: release everything it holds.
    RejectOrder {
        order_id: OrderId,
        reason: String,
    },
    BookFill {
        order_id: OrderId,
        exec_id: ExecId,
        quantity: u64,
        price: Decimal,
    },
    /// The customer asks to cancel; the order stays open until the exchange confirms.
    RequestCancel {
        order_id: OrderId,
    },
    ConfirmCancel {
        order_id: OrderId,
    },
    /// End of day: expire every open order of this trade date or earlier.
    ExpireOrders {
        trade_date: NaiveDate,
    },
    /// T+1 settlement of this trade date (and any earlier one not yet settled).
    SettleTrades {
        trade_date: NaiveDate,
    },
    Freeze {
        reason: String,
    },
    Unfreeze {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub order_id: OrderId,
    pub instrument: InstrumentCode,
    pub side: Side,
    pub quantity: u64,
    pub price: Decimal,
    pub trade_date: NaiveDate,
    /// Reference data as of the command, looked up by the caller, so that the
    /// decision depends on the command alone.
    pub market: MarketSnapshot,
}

/// What the pre-trade checks need to know beyond the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketSnapshot {
    /// `None` when the instrument is not listed.
    pub instrument: Option<InstrumentInfo>,
    /// The previous close for the order's trade date, if one was set.
    pub prev_close: Option<Decimal>,
    /// Whether the order's trade date has already been closed by `end_of_day`.
    pub day_closed: bool,
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CashDirection {
    Deposit,
    Withdrawal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountOpened {
        account_id: AccountId,
        customer_name: String,
        id_number: String,
        risk_level: u8,
    },
    CashDeposited {
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    WithdrawalRequested {
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    WithdrawalConfirmed {
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    WithdrawalFailed {
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    /// AML: a cash movement at or above the threshold. It is flagged, not refused.
    LargeCashMovementFlagged {
        direction: CashDirection,
        amount_cny: Decimal,
        threshold_cny: Decimal,
        bank_ref: BankRef,
    },
    OrderPlaced {
        order_id: OrderId,
        instrument: InstrumentCode,
        board: Board,
        side: Side,
        quantity: u64,
        limit_price: Decimal,
        trade_date: NaiveDate,
        /// Cash frozen for the order (see `Order::reserved_cny`).
        reserved_cny: Decimal,
    },
    OrderRejected {
        order_id: OrderId,
        reason: String,
        released_cny: Decimal,
        released_shares: u64,
    },
    FillBooked {
        order_id: OrderId,
        exec_id: ExecId,
        instrument: InstrumentCode,
        side: Side,
        trade_date: NaiveDate,
        quantity: u64,
        price: Decimal,
        value_cny: Decimal,
        /// This fill's share of each fee: the order's new cumulative fee minus what it had paid.
        fees: FeeBreakdown,
        /// Taken from the order's frozen reserve; negative when a sell's proceeds
        /// refill its fee cover.
        reserve_used_cny: Decimal,
        /// Signed change of available cash.
        available_change_cny: Decimal,
        /// Change of unsettled cash (sell proceeds, not withdrawable before settlement).
        unsettled_change_cny: Decimal,
    },
    /// The last fill of an order: what is left of its reserve goes back to available.
    OrderCompleted {
        order_id: OrderId,
        released_cny: Decimal,
    },
    CancelRequested {
        order_id: OrderId,
    },
    OrderCanceled {
        order_id: OrderId,
        released_cny: Decimal,
        released_shares: u64,
    },
    OrderExpired {
        order_id: OrderId,
        trade_date: NaiveDate,
        released_cny: Decimal,
        released_shares: u64,
    },
    TradesSettled {
        trade_date: NaiveDate,
        settled_cny: Decimal,
    },
    AccountFrozen {
        reason: String,
    },
    AccountUnfrozen {
        reason: String,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::CashDeposited { .. } => "CashDeposited",
            AccountEvent::WithdrawalRequested { .. } => "WithdrawalRequested",
            AccountEvent::WithdrawalConfirmed { .. } => "WithdrawalConfirmed",
            AccountEvent::WithdrawalFailed { .. } => "WithdrawalFailed",
            AccountEvent::LargeCashMovementFlagged { .. } => "LargeCashMovementFlagged",
            AccountEvent::OrderPlaced { .. } => "OrderPlaced",
            AccountEvent::OrderRejected { .. } => "OrderRejected",
            AccountEvent::FillBooked { .. } => "FillBooked",
            AccountEvent::OrderCompleted { .. } => "OrderCompleted",
            AccountEvent::CancelRequested { .. } => "CancelRequested",
            AccountEvent::OrderCanceled { .. } => "OrderCanceled",
            AccountEvent::OrderExpired { .. } => "OrderExpired",
            AccountEvent::TradesSettled { .. } => "TradesSettled",
            AccountEvent::AccountFrozen { .. } => "AccountFrozen",
            AccountEvent::AccountUnfrozen { .. } => "AccountUnfrozen",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub account_id: AccountId,
    pub customer_name: String,
    pub id_number: String,
    pub risk_level: u8,
}

/// Cash in CNY. `available` is buying power; `frozen` is held by open orders and
/// pending withdrawals; `unsettled` is the part of `available` from sells not yet
/// settled: usable for buying, not for withdrawing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cash {
    pub available_cny: Decimal,
    pub frozen_cny: Decimal,
    pub unsettled_cny: Decimal,
}

impl Cash {
    /// `max(0, available - unsettled)`.
    pub fn withdrawable_cny(&self) -> Decimal {
        (self.available_cny - self.unsettled_cny).max(Decimal::ZERO)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub quantity: u64,
    /// Held by open sell orders.
    pub frozen: u64,
    /// Shares bought per trade date, kept until that date is settled: not sellable
    /// on their own trade date (T+1).
    pub bought_by_date: BTreeMap<NaiveDate, u64>,
    /// Cost basis including buy fees, reduced pro rata by sells.
    pub cost_cny: Decimal,
}

impl Position {
    /// Shares a sell order of `trade_date` may take.
    pub fn sellable_on(&self, trade_date: NaiveDate) -> u64 {
        let locked_by_t1: u64 = self.bought_by_date.range(trade_date..).map(|(_, qty)| *qty).sum();
        self.quantity.saturating_sub(self.frozen).saturating_sub(locked_by_t1)
    }

    /// Shares sellable now, counting every unsettled buy as bought today.
    pub fn sellable(&self) -> u64 {
        let unsettled_buys: u64 = self.bought_by_date.values().sum();
        self.quantity.saturating_sub(self.frozen).saturating_sub(unsettled_buys)
    }

    /// Average cost per share including fees, or zero for an empty position.
    pub fn avg_cost(&self) -> Decimal {
        if self.quantity == 0 {
            return Decimal::ZERO;
        }
        (self.cost_cny / Decimal::from(self.quantity)).round_dp(4)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    customer: Option<Customer>,
    frozen_reason: Option<String>,
    cash: Cash,
    unsettled_by_date: BTreeMap<NaiveDate, Decimal>,
    positions: BTreeMap<InstrumentCode, Position>,
    open_orders: BTreeMap<OrderId, Order>,
    /// Every order id the account ever used: ids are never reused.
    used_order_ids: HashSet<OrderId>,
    /// Every execution id booked: a repeated fill is a no-op.
    booked_exec_ids: HashSet<ExecId>,
    pending_withdrawals: BTreeMap<BankRef, Decimal>,
    used_bank_refs: HashSet<BankRef>,
}

impl Account {
    pub fn customer(&self) -> Option<&Customer> {
        self.customer.as_ref()
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen_reason.is_some()
    }

    pub fn cash(&self) -> Cash {
        self.cash
    }

    pub fn positions(&self) -> &BTreeMap<InstrumentCode, Position> {
        &self.positions
    }

    pub fn open_orders(&self) -> &BTreeMap<OrderId, Order> {
        &self.open_orders
    }

    pub fn pending_withdrawals(&self) -> &BTreeMap<BankRef, Decimal> {
        &self.pending_withdrawals
    }

    pub fn unsettled_by_date(&self) -> &BTreeMap<NaiveDate, Decimal> {
        &self.unsettled_by_date
    }

    /// Decides the events of a command. Refusals change nothing.
    pub fn decide(&self, command: AccountCommand, rules: &MarketRules) -> Result<Vec<AccountEvent>, Rejection> {
        if let AccountCommand::Open {
            account_id,
            customer_name,
            id_number,
            risk_level,
        } = command
        {
            return self.decide_open(account_id, customer_name, id_number, risk_level);
        }
        if self.customer.is_none() {
            return reject(RejectCode::UnknownAccount, "no account with this id has been opened");
        }
        match command {
            AccountCommand::Open { .. } => unreachable!("handled above"),
            AccountCommand::Deposit { amount_cny, bank_ref } => self.decide_deposit(amount_cny, bank_ref, rules),
            AccountCommand::Withdraw { amount_cny, bank_ref } => self.decide_withdraw(amount_cny, bank_ref, rules),
            AccountCommand::ConfirmWithdrawal { bank_ref } => {
                let amount_cny = self.pending_withdrawal(&bank_ref)?;
                Ok(vec![AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref }])
            }
            AccountCommand::FailWithdrawal { bank_ref } => {
                let amount_cny = self.pending_withdrawal(&bank_ref)?;
                Ok(vec![AccountEvent::WithdrawalFailed { amount_cny, bank_ref }])
            }
            AccountCommand::PlaceOrder(order) => self.decide_place_order(order, rules),
            AccountCommand::RejectOrder { order_id, reason } => {
                let order = self.open_order(&order_id)?;
                Ok(vec![AccountEvent::OrderRejected {
                    order_id,
                    reason,
                    released_cny: order.reserved_cny,
                    released_shares: order.frozen_shares(),
                }])
            }
            AccountCommand::BookFill {
                order_id,
                exec_id,
                quantity,
                price,
            } => self.decide_fill(order_id, exec_id, quantity, price, rules),
            AccountCommand::RequestCancel { order_id } => {
                let order = self.open_order(&order_id)?;
                if order.cancel_requested {
                    return Ok(vec![]);
                }
                Ok(vec![AccountEvent::CancelRequested { order_id }])
            }
            AccountCommand::ConfirmCancel { order_id } => {
                let order = self.open_order(&order_id)?;
                Ok(vec![AccountEvent::OrderCanceled {
                    order_id,
                    released_cny: order.reserved_cny,
                    released_shares: order.frozen_shares(),
                }])
            }
            AccountCommand::ExpireOrders { trade_date } => Ok(self.decide_expire(trade_date)),
            AccountCommand::SettleTrades { trade_date } => Ok(self.decide_settle(trade_date)),
            AccountCommand::Freeze { reason } => {
                if self.is_frozen() {
                    return Ok(vec![]);
                }
                Ok(vec![AccountEvent::AccountFrozen { reason }])
            }
            AccountCommand::Unfreeze { reason } => {
                if !self.is_frozen() {
                    return Ok(vec![]);
                }
                Ok(vec![AccountEvent::AccountUnfrozen { reason }])
            }
        }
    }

    fn decide_open(
        &self,
        account_id: AccountId,
        customer_name: String,
        id_number: String,
        risk_level: u8,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        if self.customer.is_some() {
            return reject(
                RejectCode::AccountExists,
                format!("account {account_id} is already open"),
            );
        }
        if !RISK_LEVELS.contains(&risk_level) {
            return reject(
                RejectCode::Malformed,
                format!("risk_level must be 1 to 5, got {risk_level}"),
            );
        }
        if customer_name.trim().is_empty() || id_number.trim().is_empty() {
            return reject(RejectCode::Malformed, "customer_name and id_number must not be empty");
        }
        Ok(vec![AccountEvent::AccountOpened {
            account_id,
            customer_name,
            id_number,
            risk_level,
        }])
    }

    fn decide_deposit(
        &self,
        amount_cny: Decimal,
        bank_ref: BankRef,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        check_cash_amount(amount_cny, rules)?;
        self.check_new_bank_ref(&bank_ref)?;
        self.cash
            .available_cny
            .checked_add(amount_cny)
            .ok_or_else(|| overflow("available cash"))?;
        let mut events = vec![AccountEvent::CashDeposited {
            amount_cny,
            bank_ref: bank_ref.clone(),
        }];
        if amount_cny >= rules.aml_threshold_cny {
            events.push(AccountEvent::LargeCashMovementFlagged {
                direction: CashDirection::Deposit,
                amount_cny,
                threshold_cny: rules.aml_threshold_cny,
                bank_ref,
            });
        }
        Ok(events)
    }

    fn decide_withdraw(
        &self,
        amount_cny: Decimal,
        bank_ref: BankRef,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        check_cash_amount(amount_cny, rules)?;
        self.check_not_frozen()?;
        self.check_new_bank_ref(&bank_ref)?;
        let withdrawable = self.cash.withdrawable_cny();
        if amount_cny > withdrawable {
            return reject(
                RejectCode::InsufficientFunds,
                format!("withdrawal of {amount_cny} exceeds the withdrawable {withdrawable}"),
            );
        }
        let mut events = vec![AccountEvent::WithdrawalRequested {
            amount_cny,
            bank_ref: bank_ref.clone(),
        }];
        if amount_cny >= rules.aml_threshold_cny {
            events.push(AccountEvent::LargeCashMovementFlagged {
                direction: CashDirection::Withdrawal,
                amount_cny,
                threshold_cny: rules.aml_threshold_cny,
                bank_ref,
            });
        }
        Ok(events)
    }

    fn decide_place_order(&self, order: PlaceOrder, rules: &MarketRules) -> Result<Vec<AccountEvent>, Rejection> {
        let PlaceOrder {
            order_id,
            instrument,
            side,
            quantity,
            price,
            trade_date,
            market,
        } = order;
        check_order_size("order", quantity, price, rules)?;
        let Some(info) = market.instrument else {
            return reject(
                RejectCode::UnknownInstrument,
                format!("instrument {instrument} is not listed"),
            );
        };
        if self.used_order_ids.contains(&order_id) {
            return reject(
                RejectCode::DuplicateOrder,
                format!("order id {order_id} was already used by this account"),
            );
        }
        self.check_not_frozen()?;
        if market.day_closed {
            return reject(
                RejectCode::DayClosed,
                format!("trade date {trade_date} is already closed"),
            );
        }
        let customer_risk = self.customer.as_ref().map_or(0, |c| c.risk_level);
        if info.risk_level > customer_risk {
            return reject(
                RejectCode::Suitability,
                format!(
                    "{instrument} has risk level {} above the customer's tolerance {customer_risk}",
                    info.risk_level
                ),
            );
        }
        let board = rules.board(info.board);
        let position = self.positions.get(&instrument);
        let sellable = position.map_or(0, |p| p.sellable_on(trade_date));
        let empties_position = side == Side::Sell && quantity == sellable;
        if !board.is_valid_lot(quantity) && !empties_position {
            return reject(
                RejectCode::LotSize,
                format!(
                    "{quantity} shares is not a valid lot on the {} board (at least {}, then steps of {})",
                    info.board.as_str(),
                    board.min_quantity,
                    board.step_quantity
                ),
            );
        }
        if !is_on_tick(price, rules.price_tick) {
            return reject(
                RejectCode::PriceTick,
                format!("price {price} is not a multiple of the tick {}", rules.price_tick),
            );
        }
        let Some(prev_close) = market.prev_close else {
            return reject(
                RejectCode::NoReferencePrice,
                format!("no previous close of {instrument} is set for {trade_date}, so its price limits are unknown"),
            );
        };
        let (lower, upper) = price_limits(prev_close, board.price_limit_rate);
        if price < lower || price > upper {
            return reject(
                RejectCode::PriceLimit,
                format!("price {price} is outside today's limits {lower} to {upper} of {instrument}"),
            );
        }
        // quantity ≤ max_order_quantity and price ≤ max_price bound the value far below Decimal's range.
        let value_cny = trade_value(price, quantity).ok_or_else(|| overflow("trade value"))?;
        let reserved_cny = match side {
            Side::Buy => {
                let reserve = value_cny + cumulative_fees(&rules.fees, Side::Buy, value_cny).total_cny();
                if reserve > self.cash.available_cny {
                    return reject(
                        RejectCode::InsufficientFunds,
                        format!(
                            "buying needs {reserve} with fees but only {} is available",
                            self.cash.available_cny
                        ),
                    );
                }
                reserve
            }
            Side::Sell => {
                if quantity > sellable {
                    return reject(
                        RejectCode::InsufficientPosition,
                        format!("selling {quantity} shares of {instrument} but only {sellable} are sellable on {trade_date}"),
                    );
                }
                let cover = sell_fee_cover(price, rules);
                if cover > self.cash.available_cny {
                    return reject(
                        RejectCode::InsufficientFunds,
                        format!(
                            "a first small fill may cost {cover} in fees beyond its value, but only {} is available",
                            self.cash.available_cny
                        ),
                    );
                }
                cover
            }
        };
        Ok(vec![AccountEvent::OrderPlaced {
            order_id,
            instrument,
            board: info.board,
            side,
            quantity,
            limit_price: price,
            trade_date,
            reserved_cny,
        }])
    }

    fn decide_fill(
        &self,
        order_id: OrderId,
        exec_id: ExecId,
        quantity: u64,
        price: Decimal,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        check_order_size("fill", quantity, price, rules)?;
        if self.booked_exec_ids.contains(&exec_id) {
            return reject(
                RejectCode::DuplicateExec,
                format!("execution {exec_id} is already booked; nothing changed"),
            );
        }
        let order = self.open_order(&order_id)?;
        if quantity > order.remaining_quantity() {
            return reject(
                RejectCode::FillExceedsOrder,
                format!(
                    "fill of {quantity} exceeds the {} shares left of order {order_id}",
                    order.remaining_quantity()
                ),
            );
        }
        let price_beyond_limit = match order.side {
            Side::Buy => price > order.limit_price,
            Side::Sell => price < order.limit_price,
        };
        if price_beyond_limit || !is_on_tick(price, rules.price_tick) {
            return reject(
                RejectCode::FillPrice,
                format!(
                    "fill price {price} is not allowed for a {} order limited at {}",
                    order.side.as_str(),
                    order.limit_price
                ),
            );
        }
        let value_cny = trade_value(price, quantity).ok_or_else(|| overflow("fill value"))?;
        let cumulative_value_cny = order.filled_value_cny + value_cny;
        let fees = cumulative_fees(&rules.fees, order.side, cumulative_value_cny).minus(&order.fees_paid);
        assert!(fees.is_non_negative(), "cumulative fees never decrease as value grows");
        let fee_total = fees.total_cny();
        let position = self.positions.get(&order.instrument);
        match order.side {
            Side::Buy => {
                let held = position.map_or(0, |p| p.quantity);
                held.checked_add(quantity)
                    .ok_or_else(|| overflow("the position's quantity"))?;
            }
            Side::Sell => {
                let proceeds = value_cny - fee_total;
                self.cash
                    .available_cny
                    .checked_add(proceeds)
                    .ok_or_else(|| overflow("available cash"))?;
                self.cash
                    .unsettled_cny
                    .checked_add(proceeds)
                    .ok_or_else(|| overflow("unsettled cash"))?;
            }
        }
        let (reserve_used_cny, available_change_cny, unsettled_change_cny) = match order.side {
            Side::Buy => {
                let cost = value_cny + fee_total;
                // Fill price ≤ limit and fees are monotone in value, so the reserve covers every fill.
                assert!(
                    cost <= order.reserved_cny,
                    "buy reserve {} must cover fill cost {cost}",
                    order.reserved_cny
                );
                (cost, Decimal::ZERO, Decimal::ZERO)
            }
            Side::Sell => {
                let net = value_cny - fee_total;
                if net >= Decimal::ZERO {
                    // Proceeds refill the cover first: a later fill may cost more than its value again.
                    let refill = (order.cover_cny - order.reserved_cny).min(net);
                    (-refill, net - refill, net - refill)
                } else {
                    // `sell_fee_cover` bounds every run of fills whose fees exceed their value.
                    assert!(
                        -net <= order.reserved_cny,
                        "sell cover {} must pay fees {fee_total} beyond fill value {value_cny}",
                        order.reserved_cny
                    );
                    (-net, Decimal::ZERO, Decimal::ZERO)
                }
            }
        };
        let mut events = vec![AccountEvent::FillBooked {
            order_id: order_id.clone(),
            exec_id,
            instrument: order.instrument.clone(),
            side: order.side,
            trade_date: order.trade_date,
            quantity,
            price,
            value_cny,
            fees,
            reserve_used_cny,
            available_change_cny,
            unsettled_change_cny,
        }];
        if quantity == order.remaining_quantity() {
            events.push(AccountEvent::OrderCompleted {
                order_id,
                released_cny: order.reserved_cny - reserve_used_cny,
            });
        }
        Ok(events)
    }

    fn decide_expire(&self, trade_date: NaiveDate) -> Vec<AccountEvent> {
        self.open_orders
            .values()
            .filter(|order| order.trade_date <= trade_date)
            .map(|order| AccountEvent::OrderExpired {
                order_id: order.order_id.clone(),
                trade_date: order.trade_date,
                released_cny: order.reserved_cny,
                released_shares: order.frozen_shares(),
            })
            .collect()
    }

    fn decide_settle(&self, trade_date: NaiveDate) -> Vec<AccountEvent> {
        let settled_cny: Decimal = self
            .unsettled_by_date
            .range(..=trade_date)
            .map(|(_, amount)| *amount)
            .sum();
        let has_unsettled_buys = self
            .positions
            .values()
            .any(|p| p.bought_by_date.range(..=trade_date).next().is_some());
        let has_unsettled_sells = self.unsettled_by_date.range(..=trade_date).next().is_some();
        if !has_unsettled_buys && !has_unsettled_sells {
            return vec![];
        }
        vec![AccountEvent::TradesSettled {
            trade_date,
            settled_cny,
        }]
    }

    fn check_not_frozen(&self) -> Result<(), Rejection> {
        match &self.frozen_reason {
            Some(reason) => reject(
                RejectCode::AccountFrozen,
                format!("the account is frozen by compliance ({reason})"),
            ),
            None => Ok(()),
        }
    }

    fn check_new_bank_ref(&self, bank_ref: &BankRef) -> Result<(), Rejection> {
        if self.used_bank_refs.contains(bank_ref) {
            return reject(
                RejectCode::DuplicateBankRef,
                format!("bank reference {bank_ref} was already used by this account"),
            );
        }
        Ok(())
    }

    fn pending_withdrawal(&self, bank_ref: &BankRef) -> Result<Decimal, Rejection> {
        match self.pending_withdrawals.get(bank_ref) {
            Some(amount) => Ok(*amount),
            None => reject(
                RejectCode::UnknownWithdrawal,
                format!("no pending withdrawal with bank reference {bank_ref}"),
            ),
        }
    }

    fn open_order(&self, order_id: &OrderId) -> Result<&Order, Rejection> {
        if let Some(order) = self.open_orders.get(order_id) {
            return Ok(order);
        }
        if self.used_order_ids.contains(order_id) {
            return reject(RejectCode::OrderClosed, format!("order {order_id} is no longer open"));
        }
        reject(
            RejectCode::UnknownOrder,
            format!("this account has no order {order_id}"),
        )
    }

    fn apply_event(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountOpened {
                account_id,
                customer_name,
                id_number,
                risk_level,
            } => {
                self.customer = Some(Customer {
                    account_id,
                    customer_name,
                    id_number,
                    risk_level,
                });
            }
            AccountEvent::CashDeposited { amount_cny, bank_ref } => {
                self.cash.available_cny += amount_cny;
                self.used_bank_refs.insert(bank_ref);
            }
            AccountEvent::WithdrawalRequested { amount_cny, bank_ref } => {
                self.cash.available_cny -= amount_cny;
                self.cash.frozen_cny += amount_cny;
                self.used_bank_refs.insert(bank_ref.clone());
                self.pending_withdrawals.insert(bank_ref, amount_cny);
            }
            AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref } => {
                self.cash.frozen_cny -= amount_cny;
                self.pending_withdrawals.remove(&bank_ref);
            }
            AccountEvent::WithdrawalFailed { amount_cny, bank_ref } => {
                self.cash.frozen_cny -= amount_cny;
                self.cash.available_cny += amount_cny;
                self.pending_withdrawals.remove(&bank_ref);
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
                self.cash.available_cny -= reserved_cny;
                self.cash.frozen_cny += reserved_cny;
                if side == Side::Sell {
                    self.positions.entry(instrument.clone()).or_default().frozen += quantity;
                }
                self.used_order_ids.insert(order_id.clone());
                self.open_orders.insert(
                    order_id.clone(),
                    Order {
                        order_id,
                        instrument,
                        side,
                        quantity,
                        limit_price,
                        trade_date,
                        filled_quantity: 0,
                        filled_value_cny: Decimal::ZERO,
                        fees_paid: FeeBreakdown::default(),
                        reserved_cny,
                        cover_cny: match side {
                            Side::Buy => Decimal::ZERO,
                            Side::Sell => reserved_cny,
                        },
                        cancel_requested: false,
                        exec_ids: Vec::new(),
                    },
                );
            }
            AccountEvent::FillBooked {
                order_id,
                exec_id,
                instrument,
                side,
                trade_date,
                quantity,
                value_cny,
                fees,
                reserve_used_cny,
                available_change_cny,
                unsettled_change_cny,
                ..
            } => {
                self.cash.frozen_cny -= reserve_used_cny;
                self.cash.available_cny += available_change_cny;
                self.cash.unsettled_cny += unsettled_change_cny;
                let position = self.positions.entry(instrument).or_default();
                match side {
                    Side::Buy => {
                        position.quantity += quantity;
                        *position.bought_by_date.entry(trade_date).or_default() += quantity;
                        position.cost_cny += value_cny + fees.total_cny();
                    }
                    Side::Sell => {
                        let cost_removed = if quantity >= position.quantity {
                            position.cost_cny
                        } else {
                            round_to_fen(position.cost_cny * Decimal::from(quantity) / Decimal::from(position.quantity))
                        };
                        position.cost_cny -= cost_removed;
                        position.quantity -= quantity;
                        position.frozen -= quantity;
                        *self.unsettled_by_date.entry(trade_date).or_default() += unsettled_change_cny;
                    }
                }
                if let Some(order) = self.open_orders.get_mut(&order_id) {
                    order.filled_quantity += quantity;
                    order.filled_value_cny += value_cny;
                    order.fees_paid = order.fees_paid.plus(&fees);
                    order.reserved_cny -= reserve_used_cny;
                    order.exec_ids.push(exec_id.clone());
                }
                self.booked_exec_ids.insert(exec_id);
            }
            AccountEvent::OrderCompleted { order_id, released_cny } => {
                self.release_order(&order_id, released_cny, 0);
            }
            AccountEvent::CancelRequested { order_id } => {
                if let Some(order) = self.open_orders.get_mut(&order_id) {
                    order.cancel_requested = true;
                }
            }
            AccountEvent::OrderRejected {
                order_id,
                released_cny,
                released_shares,
                ..
            }
            | AccountEvent::OrderCanceled {
                order_id,
                released_cny,
                released_shares,
            }
            | AccountEvent::OrderExpired {
                order_id,
                released_cny,
                released_shares,
                ..
            } => {
                self.release_order(&order_id, released_cny, released_shares);
            }
            AccountEvent::TradesSettled {
                trade_date,
                settled_cny,
            } => {
                self.cash.unsettled_cny -= settled_cny;
                self.unsettled_by_date.retain(|date, _| *date > trade_date);
                for position in self.positions.values_mut() {
                    position.bought_by_date.retain(|date, _| *date > trade_date);
                }
                self.positions.retain(|_, p| p.quantity > 0 || p.frozen > 0);
            }
            AccountEvent::AccountFrozen { reason } => self.frozen_reason = Some(reason),
            AccountEvent::AccountUnfrozen { .. } => self.frozen_reason = None,
        }
    }

    /// Closes an open order and gives back what it held.
    fn release_order(&mut self, order_id: &OrderId, released_cny: Decimal, released_shares: u64) {
        let Some(order) = self.open_orders.remove(order_id) else {
            return;
        };
        debug_assert_eq!(
            order.reserved_cny, released_cny,
            "an order releases exactly what it holds"
        );
        self.cash.frozen_cny -= released_cny;
        self.cash.available_cny += released_cny;
        if released_shares > 0 {
            if let Some(position) = self.positions.get_mut(&order.instrument) {
                position.frozen -= released_shares;
            }
        }
        if let Some(position) = self.positions.get(&order.instrument) {
            if position.quantity == 0 && position.frozen == 0 && position.bought_by_date.is_empty() {
                self.positions.remove(&order.instrument);
            }
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = Rejection;
    type Services = MarketRules;

    async fn handle(
        &mut self,
        command: Self::Command,
        rules: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, rules)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.apply_event(event);
    }
}

/// `round(prev_close × (1 ± rate), 2)`: the lowest and highest price of the day.
pub fn price_limits(prev_close: Decimal, limit_rate: Decimal) -> (Decimal, Decimal) {
    (
        round_to_fen(prev_close * (Decimal::ONE - limit_rate)),
        round_to_fen(prev_close * (Decimal::ONE + limit_rate)),
    )
}

/// Cash a sell order at `limit_price` freezes so that no fill's fees ever take
/// available cash below zero.
///
/// A fill's fees can exceed its value only when shares are cheap. Two cases bound
/// the excess (`F(v)` is the order's cumulative fees at value `v`, `p` one share):
/// - a run of fills from the order's start costs at most `F(p) - p` plus the later-fill
///   term below: one share is the worst first fill, because each fee grows by at most
///   `rate × value + 0.01` (one fen of rounding) beyond it;
/// - a run of fills after proceeds refilled the cover costs at most
///   `0.01 × fee kinds - (1 - Σ rates) × p`, which is zero for any price above 0.05.
///
/// Fills whose proceeds exceed their fees refill the cover before anything reaches
/// available cash (see `decide_fill`), so the cover is whole at the start of every
/// run and these bounds are all it needs.
pub fn sell_fee_cover(limit_price: Decimal, rules: &MarketRules) -> Decimal {
    let one_share_cny = limit_price;
    let first_fill_excess_cny =
        (cumulative_fees(&rules.fees, Side::Sell, one_share_cny).total_cny() - one_share_cny).max(Decimal::ZERO);
    let sell_rules = rules.fees.named().into_iter().filter(|(_, rule)| rule.on_sell);
    let (rounding_cny, rate_sum) = sell_rules.fold((Decimal::ZERO, Decimal::ZERO), |(rounding, rates), (_, rule)| {
        (rounding + ONE_FEN_CNY, rates + rule.rate)
    });
    let later_fill_excess_cny = (rounding_cny - (Decimal::ONE - rate_sum) * one_share_cny).max(Decimal::ZERO);
    first_fill_excess_cny + ceil_to_fen(later_fill_excess_cny)
}

/// Quantity and price of an order or a fill within the rules' bounds, which also
/// keep `price × quantity` far inside `Decimal`'s range.
fn check_order_size(what: &str, quantity: u64, price: Decimal, rules: &MarketRules) -> Result<(), Rejection> {
    if quantity == 0 || quantity > rules.max_order_quantity {
        return reject(
            RejectCode::Malformed,
            format!(
                "{what} quantity must be 1 to {} shares, got {quantity}",
                rules.max_order_quantity
            ),
        );
    }
    if price <= Decimal::ZERO || price > rules.max_price {
        return reject(
            RejectCode::Malformed,
            format!(
                "{what} price must be above 0 and at most {}, got {price}",
                rules.max_price
            ),
        );
    }
    Ok(())
}

fn check_cash_amount(amount_cny: Decimal, rules: &MarketRules) -> Result<(), Rejection> {
    if amount_cny <= Decimal::ZERO {
        return reject(
            RejectCode::Malformed,
            format!("amount must be positive, got {amount_cny}"),
        );
    }
    if !is_whole_fen(amount_cny) {
        return reject(
            RejectCode::Malformed,
            format!("amount {amount_cny} has more than 2 decimal places"),
        );
    }
    if amount_cny > rules.max_cash_amount_cny {
        return reject(
            RejectCode::Malformed,
            format!(
                "amount {amount_cny} is above the largest accepted movement {}",
                rules.max_cash_amount_cny
            ),
        );
    }
    Ok(())
}

fn overflow(what: &str) -> Rejection {
    Rejection::new(
        RejectCode::Malformed,
        format!("{what} would exceed the ledger's numeric range"),
    )
}
