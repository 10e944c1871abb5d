//! Refusals: a stable code and a human sentence. A refused command writes no event.

use serde::{Deserialize, Serialize};

/// The stable refusal codes of the command-file contract (DESIGN.md), plus the
/// ledger's own extensions at the end. Codes are never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    Malformed,
    UnknownAccount,
    UnknownInstrument,
    UnknownOrder,
    AccountExists,
    AccountFrozen,
    DuplicateOrder,
    InsufficientFunds,
    InsufficientPosition,
    LotSize,
    PriceTick,
    PriceLimit,
    NoReferencePrice,
    Suitability,
    FillExceedsOrder,
    FillPrice,
    OrderClosed,
    DayClosed,
    // Extensions beyond the contract's list.
    /// A bank reference already used by another deposit or withdrawal of the account.
    DuplicateBankRef,
    /// `confirm_withdrawal` / `fail_withdrawal` for a bank reference with no pending withdrawal.
    UnknownWithdrawal,
    /// An execution id already booked: the fill is a no-op (answered as `duplicate`).
    DuplicateExec,
}

impl RejectCode {
    pub const ALL: [RejectCode; 21] = [
        RejectCode::Malformed,
        RejectCode::UnknownAccount,
        RejectCode::UnknownInstrument,
        RejectCode::UnknownOrder,
        RejectCode::AccountExists,
        RejectCode::AccountFrozen,
        RejectCode::DuplicateOrder,
        RejectCode::InsufficientFunds,
        RejectCode::InsufficientPosition,
        RejectCode::LotSize,
        RejectCode::PriceTick,
        RejectCode::PriceLimit,
        RejectCode::NoReferencePrice,
        RejectCode::Suitability,
        RejectCode::FillExceedsOrder,
        RejectCode::FillPrice,
        RejectCode::OrderClosed,
        RejectCode::DayClosed,
        RejectCode::DuplicateBankRef,
        RejectCode::UnknownWithdrawal,
        RejectCode::DuplicateExec,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Malformed => "malformed",
            RejectCode::UnknownAccount => "unknown_account",
            RejectCode::UnknownInstrument => "unknown_instrument",
            RejectCode::UnknownOrder => "unknown_order",
            RejectCode::AccountExists => "account_exists",
            RejectCode::AccountFrozen => "account_frozen",
            RejectCode::DuplicateOrder => "duplicate_order",
            RejectCode::InsufficientFunds => "insufficient_funds",
            RejectCode::InsufficientPosition => "insufficient_position",
            RejectCode::LotSize => "lot_size",
            RejectCode::PriceTick => "price_tick",
            RejectCode::PriceLimit => "price_limit",
            RejectCode::NoReferencePrice => "no_reference_price",
            RejectCode::Suitability => "suitability",
            RejectCode::FillExceedsOrder => "fill_exceeds_order",
            RejectCode::FillPrice => "fill_price",
            RejectCode::OrderClosed => "order_closed",
            RejectCode::DayClosed => "day_closed",
            RejectCode::DuplicateBankRef => "duplicate_bank_ref",
            RejectCode::UnknownWithdrawal => "unknown_withdrawal",
            RejectCode::DuplicateExec => "duplicate_exec",
        }
    }

    pub fn parse(text: &str) -> Option<RejectCode> {
        RejectCode::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a command was refused: the code for machines, the message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Shorthand for `Err(Rejection::new(code, message))`.
pub fn reject<T>(code: RejectCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text_and_serde() {
        for code in RejectCode::ALL {
            assert_eq!(RejectCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
