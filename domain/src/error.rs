//! Refusals: a stable code and a human sentence. A refused command writes no event.

use serde::{Deserialize, Serialize};

/// The stable refusal codes of the command-file contract (docs/api.md), plus the
/// ledger's own extensions at the end. Codes are never renamed.
/// strum and serde derive the same `snake_case` strings.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
    strum::EnumCount,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RejectCode {
    /// The command is not well formed: a field missing or of the wrong form, or a
    /// value outside the contract's or the market rules' bounds. It depends on the
    /// command and the rules alone, never on the ledger's state, so the engine
    /// answers it without recording it: the command id stays free for the
    /// corrected command.
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
    /// `end_of_day` for a date that is not the ledger's open trade date in the
    /// trading calendar (a typo, a weekend, a holiday, a year the calendar does
    /// not cover), without `off_calendar`.
    NotOpenTradeDate,
    /// The command would take one of the account's figures (cash, a position's
    /// quantity) beyond what the ledger's numbers can hold. Valid input that this
    /// state cannot take, so it is recorded like every business refusal.
    NumericRange,
}

impl RejectCode {
    /// The code as answers and outcomes carry it (`insufficient_funds`); kept for callers outside the crate.
    pub fn as_str(self) -> &'static str {
        self.into()
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
    use strum::IntoEnumIterator;

    #[test]
    fn codes_round_trip_through_text_and_serde() {
        for code in RejectCode::iter() {
            assert_eq!(code.as_str().parse::<RejectCode>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn the_codes_are_the_contract_s() {
        let codes: Vec<&str> = RejectCode::iter().map(RejectCode::as_str).collect();
        assert_eq!(
            codes,
            [
                "malformed",
                "unknown_account",
                "unknown_instrument",
                "unknown_order",
                "account_exists",
                "account_frozen",
                "duplicate_order",
                "insufficient_funds",
                "insufficient_position",
                "lot_size",
                "price_tick",
                "price_limit",
                "no_reference_price",
                "suitability",
                "fill_exceeds_order",
                "fill_price",
                "order_closed",
                "day_closed",
                "duplicate_bank_ref",
                "unknown_withdrawal",
                "duplicate_exec",
                "not_open_trade_date",
                "numeric_range",
            ]
        );
    }
}
