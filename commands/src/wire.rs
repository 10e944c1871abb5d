//! The command-file contract (DESIGN.md): one JSON object per line.
//!
//! Parsing is strict: a field the contract does not name, a number where a
//! decimal string is due, a third decimal of money, an absurd magnitude, all are
//! `malformed` with a sentence naming the field. What parses is a typed
//! [`LedgerCommand`]; business rules are the domain's, not this module's.

use std::str::FromStr;

use chrono::NaiveDate;
use ledger_domain::ids::{AccountId, BankRef, ExecId, IdError, InstrumentCode, OrderId};
use ledger_domain::{Board, InstrumentInfo, Side};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Longest command line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest free text (names, reasons), in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Most digits before the decimal point of any decimal field.
const MAX_INTEGER_DIGITS: usize = 15;
/// Most digits after the decimal point of a price (the tick check is the domain's).
const MAX_PRICE_DECIMALS: usize = 8;
/// Most digits after the decimal point of an amount of money: the fen.
const MAX_AMOUNT_DECIMALS: usize = 2;

/// A line that is not a valid command. `command_id` is kept when it could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Malformed {
    pub command_id: Option<String>,
    pub message: String,
}

/// A parsed command with its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandLine {
    pub command_id: String,
    pub command: LedgerCommand,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LedgerCommand {
    ListInstrument(InstrumentInfo),
    SetPrevClose {
        instrument: InstrumentCode,
        trade_date: NaiveDate,
        price: Decimal,
    },
    OpenAccount {
        account_id: AccountId,
        customer_name: String,
        id_number: String,
        risk_level: u8,
    },
    Deposit {
        account_id: AccountId,
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    Withdraw {
        account_id: AccountId,
        amount_cny: Decimal,
        bank_ref: BankRef,
    },
    ConfirmWithdrawal {
        account_id: AccountId,
        bank_ref: BankRef,
    },
    FailWithdrawal {
        account_id: AccountId,
        bank_ref: BankRef,
    },
    PlaceOrder {
        account_id: AccountId,
        order_id: OrderId,
        instrument: InstrumentCode,
        side: Side,
        quantity: u64,
        price: Decimal,
        trade_date: NaiveDate,
    },
    RejectOrder {
        account_id: AccountId,
        order_id: OrderId,
        reason: String,
    },
    Fill {
        account_id: AccountId,
        order_id: OrderId,
        exec_id: ExecId,
        quantity: u64,
        price: Decimal,
    },
    CancelOrder {
        account_id: AccountId,
        order_id: OrderId,
    },
    ConfirmCancel {
        account_id: AccountId,
        order_id: OrderId,
    },
    EndOfDay {
        trade_date: NaiveDate,
    },
    Settle {
        trade_date: NaiveDate,
    },
    FreezeAccount {
        account_id: AccountId,
        reason: String,
    },
    UnfreezeAccount {
        account_id: AccountId,
        reason: String,
    },
}

impl LedgerCommand {
    /// The account the command is about, if it names one.
    pub fn account_id(&self) -> Option<&AccountId> {
        match self {
            LedgerCommand::OpenAccount { account_id, .. }
            | LedgerCommand::Deposit { account_id, .. }
            | LedgerCommand::Withdraw { account_id, .. }
            | LedgerCommand::ConfirmWithdrawal { account_id, .. }
            | LedgerCommand::FailWithdrawal { account_id, .. }
            | LedgerCommand::PlaceOrder { account_id, .. }
            | LedgerCommand::RejectOrder { account_id, .. }
            | LedgerCommand::Fill { account_id, .. }
            | LedgerCommand::CancelOrder { account_id, .. }
            | LedgerCommand::ConfirmCancel { account_id, .. }
            | LedgerCommand::FreezeAccount { account_id, .. }
            | LedgerCommand::UnfreezeAccount { account_id, .. } => Some(account_id),
            LedgerCommand::ListInstrument(_)
            | LedgerCommand::SetPrevClose { .. }
            | LedgerCommand::EndOfDay { .. }
            | LedgerCommand::Settle { .. } => None,
        }
    }

    /// The contract's name of the command type.
    pub fn type_name(&self) -> &'static str {
        match self {
            LedgerCommand::ListInstrument(_) => "list_instrument",
            LedgerCommand::SetPrevClose { .. } => "set_prev_close",
            LedgerCommand::OpenAccount { .. } => "open_account",
            LedgerCommand::Deposit { .. } => "deposit",
            LedgerCommand::Withdraw { .. } => "withdraw",
            LedgerCommand::ConfirmWithdrawal { .. } => "confirm_withdrawal",
            LedgerCommand::FailWithdrawal { .. } => "fail_withdrawal",
            LedgerCommand::PlaceOrder { .. } => "place_order",
            LedgerCommand::RejectOrder { .. } => "reject_order",
            LedgerCommand::Fill { .. } => "fill",
            LedgerCommand::CancelOrder { .. } => "cancel_order",
            LedgerCommand::ConfirmCancel { .. } => "confirm_cancel",
            LedgerCommand::EndOfDay { .. } => "end_of_day",
            LedgerCommand::Settle { .. } => "settle",
            LedgerCommand::FreezeAccount { .. } => "freeze_account",
            LedgerCommand::UnfreezeAccount { .. } => "unfreeze_account",
        }
    }
}

/// Parses one line of a command file.
pub fn parse_line(line: &str) -> Result<CommandLine, Malformed> {
    if line.len() > MAX_LINE_BYTES {
        return Err(Malformed {
            command_id: None,
            message: format!("line is longer than {MAX_LINE_BYTES} bytes"),
        });
    }
    let value: Value = serde_json::from_str(line).map_err(|e| Malformed {
        command_id: None,
        message: format!("not valid JSON: {e}"),
    })?;
    let Value::Object(mut fields) = value else {
        return Err(Malformed {
            command_id: None,
            message: "a command must be a JSON object".into(),
        });
    };
    let command_id = match fields.remove("command_id") {
        Some(Value::String(id)) => id,
        Some(_) => {
            return Err(Malformed {
                command_id: None,
                message: "command_id must be a string".into(),
            })
        }
        None => {
            return Err(Malformed {
                command_id: None,
                message: "missing field `command_id`".into(),
            })
        }
    };
    let malformed = |message: String| Malformed {
        command_id: Some(command_id.clone()),
        message,
    };
    if let Err(e) = ledger_domain::ids::OrderId::parse(&command_id) {
        return Err(Malformed {
            command_id: None,
            message: format!("command_id {}", e.reason),
        });
    }
    let type_name = match fields.remove("type") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(malformed("type must be a string".into())),
        None => return Err(malformed("missing field `type`".into())),
    };
    let command = parse_fields(&type_name, fields).map_err(malformed)?;
    Ok(CommandLine { command_id, command })
}

fn parse_fields(type_name: &str, fields: Map<String, Value>) -> Result<LedgerCommand, String> {
    Ok(match type_name {
        "list_instrument" => {
            let raw: RawListInstrument = fields_into(fields)?;
            let board = Board::parse(&raw.board)
                .ok_or_else(|| format!("board: {:?} is not one of main, chinext, star, st", raw.board))?;
            LedgerCommand::ListInstrument(InstrumentInfo {
                code: id(InstrumentCode::parse(&raw.instrument))?,
                name: text("name", raw.name)?,
                board,
                risk_level: risk_level(raw.risk_level)?,
            })
        }
        "set_prev_close" => {
            let raw: RawSetPrevClose = fields_into(fields)?;
            LedgerCommand::SetPrevClose {
                instrument: id(InstrumentCode::parse(&raw.instrument))?,
                trade_date: date("trade_date", &raw.trade_date)?,
                price: price("price", &raw.price)?,
            }
        }
        "open_account" => {
            let raw: RawOpenAccount = fields_into(fields)?;
            LedgerCommand::OpenAccount {
                account_id: id(AccountId::parse(&raw.account_id))?,
                customer_name: text("customer_name", raw.customer_name)?,
                id_number: text("id_number", raw.id_number)?,
                risk_level: risk_level(raw.risk_level)?,
            }
        }
        "deposit" | "withdraw" => {
            let raw: RawCashMovement = fields_into(fields)?;
            let account_id = id(AccountId::parse(&raw.account_id))?;
            let amount_cny = amount("amount", &raw.amount)?;
            let bank_ref = id(BankRef::parse(&raw.bank_ref))?;
            if type_name == "deposit" {
                LedgerCommand::Deposit {
                    account_id,
                    amount_cny,
                    bank_ref,
                }
            } else {
                LedgerCommand::Withdraw {
                    account_id,
                    amount_cny,
                    bank_ref,
                }
            }
        }
        "confirm_withdrawal" | "fail_withdrawal" => {
            let raw: RawBankAnswer = fields_into(fields)?;
            let account_id = id(AccountId::parse(&raw.account_id))?;
            let bank_ref = id(BankRef::parse(&raw.bank_ref))?;
            if type_name == "confirm_withdrawal" {
                LedgerCommand::ConfirmWithdrawal { account_id, bank_ref }
            } else {
                LedgerCommand::FailWithdrawal { account_id, bank_ref }
            }
        }
        "place_order" => {
            let raw: RawPlaceOrder = fields_into(fields)?;
            let side = match raw.side.as_str() {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                other => return Err(format!("side: {other:?} is neither buy nor sell")),
            };
            LedgerCommand::PlaceOrder {
                account_id: id(AccountId::parse(&raw.account_id))?,
                order_id: id(OrderId::parse(&raw.order_id))?,
                instrument: id(InstrumentCode::parse(&raw.instrument))?,
                side,
                quantity: raw.quantity,
                price: price("price", &raw.price)?,
                trade_date: date("trade_date", &raw.trade_date)?,
            }
        }
        "reject_order" => {
            let raw: RawRejectOrder = fields_into(fields)?;
            LedgerCommand::RejectOrder {
                account_id: id(AccountId::parse(&raw.account_id))?,
                order_id: id(OrderId::parse(&raw.order_id))?,
                reason: text("reason", raw.reason)?,
            }
        }
        "fill" => {
            let raw: RawFill = fields_into(fields)?;
            LedgerCommand::Fill {
                account_id: id(AccountId::parse(&raw.account_id))?,
                order_id: id(OrderId::parse(&raw.order_id))?,
                exec_id: id(ExecId::parse(&raw.exec_id))?,
                quantity: raw.quantity,
                price: price("price", &raw.price)?,
            }
        }
        "cancel_order" | "confirm_cancel" => {
            let raw: RawOrderRef = fields_into(fields)?;
            let account_id = id(AccountId::parse(&raw.account_id))?;
            let order_id = id(OrderId::parse(&raw.order_id))?;
            if type_name == "cancel_order" {
                LedgerCommand::CancelOrder { account_id, order_id }
            } else {
                LedgerCommand::ConfirmCancel { account_id, order_id }
            }
        }
        "end_of_day" | "settle" => {
            let raw: RawTradeDate = fields_into(fields)?;
            let trade_date = date("trade_date", &raw.trade_date)?;
            if type_name == "end_of_day" {
                LedgerCommand::EndOfDay { trade_date }
            } else {
                LedgerCommand::Settle { trade_date }
            }
        }
        "freeze_account" | "unfreeze_account" => {
            let raw: RawCompliance = fields_into(fields)?;
            let account_id = id(AccountId::parse(&raw.account_id))?;
            let reason = text("reason", raw.reason)?;
            if type_name == "freeze_account" {
                LedgerCommand::FreezeAccount { account_id, reason }
            } else {
                LedgerCommand::UnfreezeAccount { account_id, reason }
            }
        }
        other => return Err(format!("unknown command type {other:?}")),
    })
}

fn fields_into<T: DeserializeOwned>(fields: Map<String, Value>) -> Result<T, String> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

fn id<T>(parsed: Result<T, IdError>) -> Result<T, String> {
    parsed.map_err(|e| e.to_string())
}

fn text(field: &str, value: String) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("{field} is longer than {MAX_TEXT_CHARS} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(value)
}

fn risk_level(level: u8) -> Result<u8, String> {
    if !ledger_domain::instrument::RISK_LEVELS.contains(&level) {
        return Err(format!("risk_level must be 1 to 5, got {level}"));
    }
    Ok(level)
}

fn date(field: &str, value: &str) -> Result<NaiveDate, String> {
    if value.len() != 10 {
        return Err(format!("{field}: {value:?} is not a date like 2024-03-04"));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("{field}: {value:?} is not a date like 2024-03-04"))
}

/// An amount of money: a positive decimal string with at most two decimals.
fn amount(field: &str, value: &str) -> Result<Decimal, String> {
    decimal(field, value, MAX_AMOUNT_DECIMALS)
}

/// A price: a positive decimal string; whether it is on the tick is the market's rule.
fn price(field: &str, value: &str) -> Result<Decimal, String> {
    decimal(field, value, MAX_PRICE_DECIMALS)
}

fn decimal(field: &str, value: &str, max_decimals: usize) -> Result<Decimal, String> {
    let (integer, fraction) = match value.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (value, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if value.starts_with('-') {
        return Err(format!("{field} must be positive, got {value:?}"));
    }
    if !all_digits(integer) || fraction.is_some_and(|f| !all_digits(f)) {
        return Err(format!("{field}: {value:?} is not a decimal string like \"1500.00\""));
    }
    if integer.len() > MAX_INTEGER_DIGITS {
        return Err(format!("{field}: {value:?} is too large"));
    }
    if let Some(fraction) = fraction {
        if fraction.len() > max_decimals {
            return Err(format!(
                "{field}: {value:?} has more than {max_decimals} decimal places"
            ));
        }
    }
    let parsed = Decimal::from_str(value).map_err(|e| format!("{field}: {value:?}: {e}"))?;
    if parsed <= Decimal::ZERO {
        return Err(format!("{field} must be positive, got {value:?}"));
    }
    Ok(parsed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListInstrument {
    instrument: String,
    name: String,
    board: String,
    risk_level: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetPrevClose {
    instrument: String,
    trade_date: String,
    price: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpenAccount {
    account_id: String,
    customer_name: String,
    id_number: String,
    risk_level: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCashMovement {
    account_id: String,
    amount: String,
    bank_ref: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBankAnswer {
    account_id: String,
    bank_ref: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaceOrder {
    account_id: String,
    order_id: String,
    instrument: String,
    side: String,
    quantity: u64,
    price: String,
    trade_date: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRejectOrder {
    account_id: String,
    order_id: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFill {
    account_id: String,
    order_id: String,
    exec_id: String,
    quantity: u64,
    price: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrderRef {
    account_id: String,
    order_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTradeDate {
    trade_date: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompliance {
    account_id: String,
    reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(line: &str) -> String {
        parse_line(line).unwrap_err().message
    }

    #[test]
    fn parses_a_deposit() {
        let parsed =
            parse_line(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"1500.00","bank_ref":"B1"}"#)
                .unwrap();
        assert_eq!(parsed.command_id, "C1");
        assert!(
            matches!(parsed.command, LedgerCommand::Deposit { amount_cny, .. } if amount_cny == Decimal::new(150000, 2))
        );
    }

    #[test]
    fn names_what_is_wrong() {
        assert!(message("{not json").starts_with("not valid JSON"));
        assert_eq!(message("[1]"), "a command must be a JSON object");
        assert_eq!(message(r#"{"type":"deposit"}"#), "missing field `command_id`");
        assert_eq!(
            message(r#"{"type":"teleport","command_id":"C1"}"#),
            "unknown command type \"teleport\""
        );
        let missing = message(r#"{"type":"deposit","command_id":"C1","account_id":"A1","bank_ref":"B"}"#);
        assert_eq!(missing, "missing field `amount`");
        let number = message(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":15.5,"bank_ref":"B"}"#);
        assert!(number.starts_with("amount: invalid type"), "{number}");
        let fen = message(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"1.001","bank_ref":"B"}"#);
        assert_eq!(fen, "amount: \"1.001\" has more than 2 decimal places");
        let negative =
            message(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"-5","bank_ref":"B"}"#);
        assert_eq!(negative, "amount must be positive, got \"-5\"");
        let zero = message(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"0.00","bank_ref":"B"}"#);
        assert_eq!(zero, "amount must be positive, got \"0.00\"");
        let words = message(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"lots","bank_ref":"B"}"#);
        assert_eq!(words, "amount: \"lots\" is not a decimal string like \"1500.00\"");
        let huge = message(
            r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"99999999999999999999999","bank_ref":"B"}"#,
        );
        assert_eq!(huge, "amount: \"99999999999999999999999\" is too large");
        let extra = message(r#"{"type":"settle","command_id":"C1","trade_date":"2024-03-04","when":"now"}"#);
        assert!(extra.contains("unknown field `when`, expected `trade_date`"), "{extra}");
        let qty = message(
            r#"{"type":"fill","command_id":"C1","account_id":"A","order_id":"O","exec_id":"E","quantity":1e30,"price":"1.00"}"#,
        );
        assert!(qty.starts_with("quantity: invalid type"), "{qty}");
        let negative_qty = message(
            r#"{"type":"fill","command_id":"C1","account_id":"A","order_id":"O","exec_id":"E","quantity":-100,"price":"1.00"}"#,
        );
        assert!(negative_qty.starts_with("quantity: invalid value"), "{negative_qty}");
        assert_eq!(
            message(r#"{"type":"settle","command_id":"C1","trade_date":"2024-3-4"}"#),
            "trade_date: \"2024-3-4\" is not a date like 2024-03-04"
        );
        assert_eq!(
            message(r#"{"type":"settle","command_id":"C1","trade_date":"2024-02-30"}"#),
            "trade_date: \"2024-02-30\" is not a date like 2024-03-04"
        );
    }

    #[test]
    fn keeps_the_command_id_of_a_malformed_line() {
        let err = parse_line(r#"{"type":"deposit","command_id":"C9","account_id":"A1"}"#).unwrap_err();
        assert_eq!(err.command_id.as_deref(), Some("C9"));
    }
}
