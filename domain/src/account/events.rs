//! The account's events: the stored contract of the `Account` stream.
//!
//! Every change to these types is a new event version, documented in
//! docs/events.md (tests/events_documented.rs holds the two in step): the log
//! keeps every event ever written, and readers must go on reading them. So a new
//! version also gets its number in ledger-eventstore's table of versions and an
//! upcaster there that reads the previous version's payload as the new one; these
//! types describe the current version only.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::fees::FeeBreakdown;
use crate::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use crate::market::{Board, OrderType, Side};
use crate::money::MoneyFields;

/// Which way a large cash movement went; `deposit` / `withdrawal` in the event.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CashDirection {
    Deposit,
    Withdrawal,
}

/// The events of one account. The variant names are the stored `event_type`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
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
    /// Version 2: version 1 had no `order_type` (every order was a limit order); it is
    /// read as this one by the store's upcaster (ledger-eventstore's versions.rs).
    OrderPlaced {
        order_id: OrderId,
        instrument: InstrumentCode,
        board: Board,
        side: Side,
        order_type: OrderType,
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

impl MoneyFields for AccountEvent {
    fn money_fields_mut(&mut self) -> Vec<(&'static str, &mut Decimal)> {
        match self {
            AccountEvent::AccountOpened { .. }
            | AccountEvent::CancelRequested { .. }
            | AccountEvent::AccountFrozen { .. }
            | AccountEvent::AccountUnfrozen { .. } => vec![],
            AccountEvent::CashDeposited { amount_cny, .. }
            | AccountEvent::WithdrawalRequested { amount_cny, .. }
            | AccountEvent::WithdrawalConfirmed { amount_cny, .. }
            | AccountEvent::WithdrawalFailed { amount_cny, .. } => vec![("amount_cny", amount_cny)],
            AccountEvent::LargeCashMovementFlagged {
                amount_cny,
                threshold_cny,
                ..
            } => vec![("amount_cny", amount_cny), ("threshold_cny", threshold_cny)],
            AccountEvent::OrderPlaced {
                limit_price,
                reserved_cny,
                ..
            } => vec![("limit_price", limit_price), ("reserved_cny", reserved_cny)],
            AccountEvent::OrderRejected { released_cny, .. }
            | AccountEvent::OrderCompleted { released_cny, .. }
            | AccountEvent::OrderCanceled { released_cny, .. }
            | AccountEvent::OrderExpired { released_cny, .. } => vec![("released_cny", released_cny)],
            AccountEvent::FillBooked {
                price,
                value_cny,
                fees,
                reserve_used_cny,
                available_change_cny,
                unsettled_change_cny,
                ..
            } => {
                let mut fields = vec![
                    ("price", price),
                    ("value_cny", value_cny),
                    ("reserve_used_cny", reserve_used_cny),
                    ("available_change_cny", available_change_cny),
                    ("unsettled_change_cny", unsettled_change_cny),
                ];
                fields.extend(fees.fields_mut());
                fields
            }
            AccountEvent::TradesSettled { settled_cny, .. } => vec![("settled_cny", settled_cny)],
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        <&'static str>::from(self).to_owned()
    }

    /// The version each event is written at: the one of ledger-eventstore's `CURRENT_VERSIONS`,
    /// whose codec refuses to encode any other (docs/events.md, "Versioning").
    fn event_version(&self) -> String {
        match self {
            AccountEvent::OrderPlaced { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn directions_are_written_as_serde_writes_them() {
        for direction in CashDirection::iter() {
            assert_eq!(serde_json::to_string(&direction).unwrap(), format!("\"{direction}\""));
        }
        assert_eq!(<&str>::from(CashDirection::Deposit), "deposit");
        assert_eq!(<&str>::from(CashDirection::Withdrawal), "withdrawal");
    }
}
