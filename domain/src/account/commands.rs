//! What an account is asked to do. A command is a request: `decide` may refuse it.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use crate::instrument::InstrumentInfo;
use crate::market::Side;

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
