//! Identifiers, validated once at the edge and then carried as types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest identifier the ledger accepts (account, order, execution, bank reference).
pub const MAX_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct IdError {
    pub field: &'static str,
    pub reason: String,
}

fn check_plain_id(field: &'static str, text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError {
            field,
            reason: "must not be empty".into(),
        });
    }
    if text.len() > MAX_ID_LEN {
        return Err(IdError {
            field,
            reason: format!("is longer than {MAX_ID_LEN} characters"),
        });
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
    {
        return Err(IdError {
            field,
            reason: format!("{text:?} may only hold ASCII letters, digits and - _ . : /"),
        });
    }
    Ok(())
}

macro_rules! plain_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, IdError> {
                check_plain_id($field, text)?;
                Ok(Self(text.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

plain_id!(
    /// A customer capital account (资金账户).
    AccountId, "account_id"
);
plain_id!(
    /// The broker's order id, unique within an account.
    OrderId, "order_id"
);
plain_id!(
    /// The exchange's execution id of a fill.
    ExecId, "exec_id"
);
plain_id!(
    /// The bank's reference of a bank-to-securities transfer.
    BankRef, "bank_ref"
);

/// The sender's idempotency key of a command. It follows the rule of the other
/// plain ids; unlike them it checks itself when deserialized, since it only ever
/// comes from outside.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandId(String);

impl CommandId {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        check_plain_id("command_id", text)?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CommandId {
    type Error = IdError;

    fn try_from(text: String) -> Result<Self, IdError> {
        check_plain_id("command_id", &text)?;
        Ok(Self(text))
    }
}

impl From<CommandId> for String {
    fn from(id: CommandId) -> String {
        id.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A listed security: six digits and the exchange, e.g. `600519.SH`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstrumentCode(String);

impl InstrumentCode {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let bad = || IdError {
            field: "instrument",
            reason: format!("{text:?} is not a code like 600519.SH (six digits, then .SH, .SZ or .BJ)"),
        };
        let (digits, exchange) = text.split_once('.').ok_or_else(bad)?;
        if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        if !matches!(exchange, "SH" | "SZ" | "BJ") {
            return Err(bad());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstrumentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(AccountId::parse("A0001").is_ok());
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse("A 1").is_err());
        assert!(AccountId::parse(&"x".repeat(65)).is_err());
        assert!(InstrumentCode::parse("600519.SH").is_ok());
        assert!(InstrumentCode::parse("60051.SH").is_err());
        assert!(InstrumentCode::parse("600519.HK").is_err());
        assert!(InstrumentCode::parse("600519").is_err());
    }

    #[test]
    fn a_command_id_checks_itself_when_deserialized() {
        let id: CommandId = serde_json::from_str(r#""C-1""#).unwrap();
        assert_eq!(id.as_str(), "C-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""C-1""#);
        let refused = serde_json::from_str::<CommandId>(r#""C 1""#).unwrap_err().to_string();
        assert!(refused.starts_with("command_id \"C 1\" may only hold"), "{refused}");
        assert_eq!(
            CommandId::parse("").unwrap_err().to_string(),
            "command_id must not be empty"
        );
    }
}
