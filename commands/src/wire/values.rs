//! The contract's values as newtypes that check themselves when deserialized:
//! amounts, prices, trade dates, free text, risk levels and identifiers.
//!
//! A refused value says why in a [`ValueError`], worded to follow the field's
//! name, so that the same newtype serves every field of its kind.

use std::str::FromStr;

use chrono::NaiveDate;
use ledger_domain::ids::{AccountId, BankRef, ExecId, IdError, InstrumentCode, OrderId};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// Longest free text (names, reasons), in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Most digits before the decimal point of any decimal field.
const MAX_INTEGER_DIGITS: usize = 15;
/// Most digits after the decimal point of a price (the tick check is the domain's).
const MAX_PRICE_DECIMALS: usize = 8;
/// Most digits after the decimal point of an amount of money: the fen.
const MAX_AMOUNT_DECIMALS: usize = 2;
/// The one way the contract writes a date, and its length: `2024-03-04`.
const DATE_FORMAT: &str = "%Y-%m-%d";
const DATE_CHARS: usize = 10;

/// Why a value is refused. Its text follows the field's name: `amount` then
/// ` must be positive, got "-5"`, or `trade_date` then `: "2024-3-4" is not a date like 2024-03-04`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value breaks a rule of the contract.
    #[error(" {0}")]
    BreaksRule(String),
    /// The value is not written the way the contract writes it.
    #[error(": {0}")]
    BadForm(String),
}

/// A wire newtype that checked itself, and the domain value it hands over.
pub trait Checked {
    type Value;
    fn into_value(self) -> Self::Value;
}

/// Deserializes a field through the newtype `C`, which checks it, and keeps the domain value.
pub(crate) fn checked<'de, C, D>(deserializer: D) -> Result<C::Value, D::Error>
where
    C: Checked + Deserialize<'de>,
    D: Deserializer<'de>,
{
    C::deserialize(deserializer).map(C::into_value)
}

macro_rules! checked_newtype {
    ($(#[$doc:meta])* $name:ident($value:ty), from $wire:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
        #[serde(try_from = $wire)]
        pub struct $name($value);

        impl Checked for $name {
            type Value = $value;
            fn into_value(self) -> $value {
                self.0
            }
        }
    };
}

checked_newtype!(
    /// An amount of money: a positive decimal string with at most two decimals.
    Amount(Decimal), from "String"
);
checked_newtype!(
    /// A price: a positive decimal string; whether it is on the tick is the market's rule.
    Price(Decimal), from "String"
);
checked_newtype!(
    /// A trade date, written `YYYY-MM-DD` and nothing else.
    TradeDate(NaiveDate), from "String"
);
checked_newtype!(
    /// Free text (a name, a reason): not blank, not too long, no control characters.
    Text(String), from "String"
);
checked_newtype!(
    /// The risk level of a customer or a product, 1 to 5.
    RiskLevel(u8), from "u8"
);

impl TryFrom<String> for Amount {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        decimal(&text, MAX_AMOUNT_DECIMALS).map(Self)
    }
}

impl TryFrom<String> for Price {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        decimal(&text, MAX_PRICE_DECIMALS).map(Self)
    }
}

impl TryFrom<String> for TradeDate {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        let not_a_date = || ValueError::BadForm(format!("{text:?} is not a date like 2024-03-04"));
        // chrono alone would also take `2024-3-4`.
        if text.len() != DATE_CHARS {
            return Err(not_a_date());
        }
        NaiveDate::parse_from_str(&text, DATE_FORMAT)
            .map(Self)
            .map_err(|_| not_a_date())
    }
}

impl TryFrom<String> for Text {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        if text.trim().is_empty() {
            return Err(ValueError::BreaksRule("must not be empty".into()));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(ValueError::BreaksRule(format!(
                "is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(ValueError::BreaksRule("must not contain control characters".into()));
        }
        Ok(Self(text))
    }
}

impl TryFrom<u8> for RiskLevel {
    type Error = ValueError;
    fn try_from(level: u8) -> Result<Self, ValueError> {
        if !ledger_domain::instrument::RISK_LEVELS.contains(&level) {
            return Err(ValueError::BreaksRule(format!("must be 1 to 5, got {level}")));
        }
        Ok(Self(level))
    }
}

/// A decimal string, strictly: digits, at most one point, no sign, no exponent.
/// `Decimal::from_str` alone would take `1e5`, `+5` and `.5`.
fn decimal(text: &str, max_decimals: usize) -> Result<Decimal, ValueError> {
    let (integer, fraction) = match text.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let not_positive = || ValueError::BreaksRule(format!("must be positive, got {text:?}"));
    if text.starts_with('-') {
        return Err(not_positive());
    }
    if !all_digits(integer) || fraction.is_some_and(|f| !all_digits(f)) {
        return Err(ValueError::BadForm(format!(
            "{text:?} is not a decimal string like \"1500.00\""
        )));
    }
    if integer.len() > MAX_INTEGER_DIGITS {
        return Err(ValueError::BadForm(format!("{text:?} is too large")));
    }
    if fraction.is_some_and(|f| f.len() > max_decimals) {
        return Err(ValueError::BadForm(format!(
            "{text:?} has more than {max_decimals} decimal places"
        )));
    }
    let parsed = Decimal::from_str(text).map_err(|e| ValueError::BadForm(format!("{text:?}: {e}")))?;
    if parsed <= Decimal::ZERO {
        return Err(not_positive());
    }
    Ok(parsed)
}

/// An identifier of the domain, read from the wire by its own rule.
pub trait WireId: Sized {
    fn parse_id(text: &str) -> Result<Self, IdError>;
}

macro_rules! wire_id {
    ($($id:ty),*) => {
        $(impl WireId for $id {
            fn parse_id(text: &str) -> Result<Self, IdError> {
                <$id>::parse(text)
            }
        })*
    };
}

wire_id!(AccountId, OrderId, ExecId, BankRef, InstrumentCode);

/// A domain identifier that checks itself when deserialized (the domain's own
/// `Deserialize` trusts what it reads back from the event store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id<T>(T);

impl<T> Checked for Id<T> {
    type Value = T;
    fn into_value(self) -> T {
        self.0
    }
}

impl<'de, T: WireId> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        T::parse_id(&text)
            .map(Id)
            .map_err(|e| D::Error::custom(ValueError::BreaksRule(e.reason)))
    }
}
