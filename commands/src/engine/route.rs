//! Routing: each command of the contract becomes a [`Target`], the aggregate
//! that decides it with the domain command it decides, and a small function
//! per kind of target does the work.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use ledger_domain::account::{AccountCommand, MarketSnapshot, PlaceOrder};
use ledger_domain::calendar::{check_close_date, is_open_for_orders};
use ledger_domain::ids::{AccountId, InstrumentCode, OrderId};
use ledger_domain::{Account, ClearingDayCommand, DayStatus, InstrumentCommand, InstrumentInfo, Side};
use ledger_eventstore::StreamAppend;
use rust_decimal::Decimal;

use super::repository::{decide_and_stage, Decision};
use super::{EngineError, Ledger};
use crate::wire::LedgerCommand;

/// Where a command is decided, and what is asked there.
enum Target {
    /// One account decides.
    Account {
        account_id: AccountId,
        command: AccountCommand,
    },
    /// One account decides a new order, on a snapshot of its instrument and trade date.
    NewOrder { account_id: AccountId, order: NewOrder },
    /// One instrument decides.
    Instrument {
        code: InstrumentCode,
        command: InstrumentCommand,
    },
    /// One instrument sets a previous close, knowing whether that trade date is closed.
    PrevClose {
        code: InstrumentCode,
        trade_date: NaiveDate,
        price: Decimal,
    },
    /// A clearing day changes state, then every account does its part.
    Day {
        trade_date: NaiveDate,
        /// Skip the trading calendar's check of the date (end of day only).
        off_calendar: bool,
        day_command: ClearingDayCommand,
        account_command: AccountCommand,
    },
}

/// A change of a clearing day's state, with every account's part of it.
struct DayWork {
    trade_date: NaiveDate,
    off_calendar: bool,
    day_command: ClearingDayCommand,
    account_command: AccountCommand,
}

/// An order as sent, before the market snapshot it is checked against.
struct NewOrder {
    order_id: OrderId,
    instrument: InstrumentCode,
    side: Side,
    quantity: u64,
    price: Decimal,
    trade_date: NaiveDate,
}

impl NewOrder {
    fn on(self, market: MarketSnapshot) -> PlaceOrder {
        PlaceOrder {
            order_id: self.order_id,
            instrument: self.instrument,
            side: self.side,
            quantity: self.quantity,
            price: self.price,
            trade_date: self.trade_date,
            market,
        }
    }
}

impl From<LedgerCommand> for Target {
    fn from(command: LedgerCommand) -> Self {
        use LedgerCommand as L;
        match command {
            L::ListInstrument {
                instrument,
                name,
                board,
                risk_level,
            } => Target::Instrument {
                code: instrument.clone(),
                command: InstrumentCommand::List(InstrumentInfo {
                    code: instrument,
                    name,
                    board,
                    risk_level,
                }),
            },
            L::SetPrevClose {
                instrument,
                trade_date,
                price,
            } => Target::PrevClose {
                code: instrument,
                trade_date,
                price,
            },
            L::PlaceOrder {
                account_id,
                order_id,
                instrument,
                side,
                quantity,
                price,
                trade_date,
            } => Target::NewOrder {
                account_id,
                order: NewOrder {
                    order_id,
                    instrument,
                    side,
                    quantity,
                    price,
                    trade_date,
                },
            },
            L::EndOfDay {
                trade_date,
                off_calendar,
            } => Target::Day {
                trade_date,
                off_calendar,
                day_command: ClearingDayCommand::Close { trade_date },
                account_command: AccountCommand::ExpireOrders { trade_date },
            },
            L::Settle { trade_date } => Target::Day {
                trade_date,
                off_calendar: false,
                day_command: ClearingDayCommand::Settle { trade_date },
                account_command: AccountCommand::SettleTrades { trade_date },
            },
            account_command => {
                let (account_id, command) = account_and_command(account_command);
                Target::Account { account_id, command }
            }
        }
    }
}

/// A command one account decides alone, as the domain's account command.
fn account_and_command(command: LedgerCommand) -> (AccountId, AccountCommand) {
    use AccountCommand as A;
    use LedgerCommand as L;
    match command {
        L::OpenAccount {
            account_id,
            customer_name,
            id_number,
            risk_level,
        } => (
            account_id.clone(),
            A::Open {
                account_id,
                customer_name,
                id_number,
                risk_level,
            },
        ),
        L::Deposit {
            account_id,
            amount_cny,
            bank_ref,
        } => (account_id, A::Deposit { amount_cny, bank_ref }),
        L::Withdraw {
            account_id,
            amount_cny,
            bank_ref,
        } => (account_id, A::Withdraw { amount_cny, bank_ref }),
        L::ConfirmWithdrawal { account_id, bank_ref } => (account_id, A::ConfirmWithdrawal { bank_ref }),
        L::FailWithdrawal { account_id, bank_ref } => (account_id, A::FailWithdrawal { bank_ref }),
        L::RejectOrder {
            account_id,
            order_id,
            reason,
        } => (account_id, A::RejectOrder { order_id, reason }),
        L::Fill {
            account_id,
            order_id,
            exec_id,
            quantity,
            price,
        } => (
            account_id,
            A::BookFill {
                order_id,
                exec_id,
                quantity,
                price,
            },
        ),
        L::CancelOrder { account_id, order_id } => (account_id, A::RequestCancel { order_id }),
        L::ConfirmCancel { account_id, order_id } => (account_id, A::ConfirmCancel { order_id }),
        L::FreezeAccount { account_id, reason } => (account_id, A::Freeze { reason }),
        L::UnfreezeAccount { account_id, reason } => (account_id, A::Unfreeze { reason }),
        L::ListInstrument { .. }
        | L::SetPrevClose { .. }
        | L::PlaceOrder { .. }
        | L::EndOfDay { .. }
        | L::Settle { .. } => {
            unreachable!("Target::from routes the commands of instruments, new orders and days itself")
        }
    }
}

impl Ledger {
    /// Decides one command on its target. The outer error is a failure of the
    /// machinery; the inner one is the business answer.
    pub(super) async fn decide(
        &mut self,
        command: &LedgerCommand,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Decision, EngineError> {
        match Target::from(command.clone()) {
            Target::Account { account_id, command } => self.decide_account(account_id.as_str(), command, appends).await,
            Target::NewOrder { account_id, order } => self.decide_new_order(&account_id, order, appends).await,
            Target::Instrument { code, command } => self.decide_instrument(&code, command, appends).await,
            Target::PrevClose {
                code,
                trade_date,
                price,
            } => {
                let day_closed = self.day_is_closed(trade_date).await?;
                let command = InstrumentCommand::SetPrevClose {
                    trade_date,
                    price,
                    day_closed,
                };
                self.decide_instrument(&code, command, appends).await
            }
            Target::Day {
                trade_date,
                off_calendar,
                day_command,
                account_command,
            } => {
                let day = DayWork {
                    trade_date,
                    off_calendar,
                    day_command,
                    account_command,
                };
                self.decide_day_then_accounts(day, appends).await
            }
        }
    }

    async fn decide_account(
        &mut self,
        account_id: &str,
        command: AccountCommand,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Decision, EngineError> {
        let rules = Arc::clone(&self.rules);
        let store = Arc::clone(&self.store);
        let opening = matches!(command, AccountCommand::Open { .. });
        let loaded = self.accounts.load(store.as_ref(), account_id).await?;
        let decision = decide_and_stage(loaded, account_id, |a| a.decide(command, &rules), appends)?;
        if opening && decision.is_ok() {
            // Not in the store yet, but an end of day later in the batch must reach it.
            self.batch_new_accounts.insert(account_id.to_owned());
        }
        Ok(decision)
    }

    async fn decide_new_order(
        &mut self,
        account_id: &AccountId,
        order: NewOrder,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Decision, EngineError> {
        let open = self.open_trade_date().await?;
        let mut market = self.market_snapshot(&order.instrument, order.trade_date).await?;
        // A date before the open one, or one the calendar closes, is as closed as a day whose
        // end of day ran; the account answers it in its order of checks.
        market.day_closed |= !is_open_for_orders(order.trade_date, open, &self.rules.calendar);
        let command = AccountCommand::PlaceOrder(order.on(market));
        self.decide_account(account_id.as_str(), command, appends).await
    }

    async fn decide_instrument(
        &mut self,
        code: &InstrumentCode,
        command: InstrumentCommand,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Decision, EngineError> {
        let rules = Arc::clone(&self.rules);
        let store = Arc::clone(&self.store);
        let loaded = self.instruments.load(store.as_ref(), code.as_str()).await?;
        decide_and_stage(loaded, code.as_str(), |i| i.decide(command, &rules), appends)
    }

    /// The end-of-day process: the clearing day changes state, then every
    /// account does its part. All of it is one command, committed atomically.
    async fn decide_day_then_accounts(
        &mut self,
        work: DayWork,
        appends: &mut Vec<StreamAppend>,
    ) -> Result<Decision, EngineError> {
        let DayWork {
            trade_date,
            off_calendar,
            day_command,
            account_command,
        } = work;
        let store = Arc::clone(&self.store);
        let id = trade_date.to_string();
        let closing = matches!(day_command, ClearingDayCommand::Close { .. });
        let trading = self.days.load(store.as_ref(), &id).await?.state.status() == DayStatus::Trading;
        if closing && trading && !off_calendar {
            // A day already closed is answered `day_closed` by the day itself, below.
            let open = self.open_trade_date().await?;
            if let Err(refusal) = check_close_date(trade_date, open, &self.rules.calendar) {
                return Ok(Err(refusal));
            }
        }
        let day = self.days.load(store.as_ref(), &id).await?;
        if let Err(rejection) = decide_and_stage(day, &id, |d| d.decide(day_command), appends)? {
            return Ok(Err(rejection));
        }
        let mut account_ids: BTreeSet<String> = store.stream_ids(Account::TYPE).await?.into_iter().collect();
        account_ids.extend(self.batch_new_accounts.iter().cloned());
        for account_id in account_ids {
            let decision = self
                .decide_account(&account_id, account_command.clone(), appends)
                .await?;
            // Expiring and settling are never refused for an open account; a refusal here is a bug.
            assert!(
                decision.is_ok(),
                "end-of-day work refused for {account_id}: {decision:?}"
            );
        }
        if closing {
            // Every order of the day has now expired in every account: the day is cleared.
            let day = self.days.load(store.as_ref(), &id).await?;
            let cleared = decide_and_stage(
                day,
                &id,
                |d| d.decide(ClearingDayCommand::Clear { trade_date }),
                appends,
            )?;
            assert!(cleared.is_ok(), "a day just closed can be cleared: {cleared:?}");
        }
        Ok(Ok(()))
    }

    async fn day_is_closed(&mut self, trade_date: NaiveDate) -> Result<bool, EngineError> {
        let store = Arc::clone(&self.store);
        let day = self.days.load(store.as_ref(), &trade_date.to_string()).await?;
        Ok(day.state.is_closed())
    }

    async fn market_snapshot(
        &mut self,
        instrument: &InstrumentCode,
        trade_date: NaiveDate,
    ) -> Result<MarketSnapshot, EngineError> {
        let day_closed = self.day_is_closed(trade_date).await?;
        let store = Arc::clone(&self.store);
        let loaded = self.instruments.load(store.as_ref(), instrument.as_str()).await?;
        Ok(MarketSnapshot {
            instrument: loaded.state.info().cloned(),
            prev_close: loaded.state.prev_close(trade_date),
            day_closed,
        })
    }
}
