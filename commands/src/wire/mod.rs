//! The command-file contract (docs/api.md): one JSON object per line.
//!
//! [`LedgerCommand`] is the contract's vocabulary, spelled out once: one variant
//! per command type, one field per contract field. serde reads a line into it:
//! the `type` names the variant, `deny_unknown_fields` refuses a field the
//! contract does not name, and every value goes through a newtype of
//! [`values`] that checks itself (a decimal string with at most two decimals
//! for money, a real date, ids by the domain's rules, …). `reader` feeds
//! serde the fields and keeps the answers' wording: a sentence naming the
//! field, the same problem reported first when a line has several.
//! What parses is a typed command; business rules are the domain's.

mod reader;
pub mod values;

use chrono::NaiveDate;
use ledger_domain::ids::{AccountId, BankRef, CommandId, ExecId, InstrumentCode, OrderId};
use ledger_domain::{well_formed, Board, MarketRules, Rejection, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use values::{checked, Amount, Id, Price, RiskLevel, Text, TradeDate};
pub use values::{ValueError, MAX_TEXT_CHARS};

/// Longest command line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

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
    pub command_id: CommandId,
    pub command: LedgerCommand,
}

/// The commands of the contract. The fields are declared in the contract's
/// order, which is also the order their problems are reported in. [`CommandType`]
/// names each variant without its fields (what roles are granted, what the access
/// log records), derived here so the two lists cannot drift apart.
#[derive(Debug, Clone, PartialEq, Deserialize, strum::IntoStaticStr, strum::VariantNames, strum::EnumDiscriminants)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[strum(serialize_all = "snake_case")]
#[strum_discriminants(
    name(CommandType),
    derive(
        Hash,
        PartialOrd,
        Ord,
        Serialize,
        strum::Display,
        strum::EnumString,
        strum::IntoStaticStr,
        strum::EnumIter,
        strum::VariantNames
    ),
    serde(rename_all = "snake_case"),
    strum(serialize_all = "snake_case")
)]
pub enum LedgerCommand {
    ListInstrument {
        #[serde(deserialize_with = "checked::<Id<InstrumentCode>, _>")]
        instrument: InstrumentCode,
        #[serde(deserialize_with = "checked::<Text, _>")]
        name: String,
        board: Board,
        #[serde(deserialize_with = "checked::<RiskLevel, _>")]
        risk_level: u8,
    },
    SetPrevClose {
        #[serde(deserialize_with = "checked::<Id<InstrumentCode>, _>")]
        instrument: InstrumentCode,
        #[serde(deserialize_with = "checked::<TradeDate, _>")]
        trade_date: NaiveDate,
        #[serde(deserialize_with = "checked::<Price, _>")]
        price: Decimal,
    },
    OpenAccount {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Text, _>")]
        customer_name: String,
        #[serde(deserialize_with = "checked::<Text, _>")]
        id_number: String,
        #[serde(deserialize_with = "checked::<RiskLevel, _>")]
        risk_level: u8,
    },
    Deposit {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(rename = "amount", deserialize_with = "checked::<Amount, _>")]
        amount_cny: Decimal,
        #[serde(deserialize_with = "checked::<Id<BankRef>, _>")]
        bank_ref: BankRef,
    },
    Withdraw {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(rename = "amount", deserialize_with = "checked::<Amount, _>")]
        amount_cny: Decimal,
        #[serde(deserialize_with = "checked::<Id<BankRef>, _>")]
        bank_ref: BankRef,
    },
    ConfirmWithdrawal {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Id<BankRef>, _>")]
        bank_ref: BankRef,
    },
    FailWithdrawal {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Id<BankRef>, _>")]
        bank_ref: BankRef,
    },
    PlaceOrder {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Id<OrderId>, _>")]
        order_id: OrderId,
        #[serde(deserialize_with = "checked::<Id<InstrumentCode>, _>")]
        instrument: InstrumentCode,
        side: Side,
        quantity: u64,
        #[serde(deserialize_with = "checked::<Price, _>")]
        price: Decimal,
        #[serde(deserialize_with = "checked::<TradeDate, _>")]
        trade_date: NaiveDate,
    },
    RejectOrder {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Id<OrderId>, _>")]
        order_id: OrderId,
        #[serde(deserialize_with = "checked::<Text, _>")]
        reason: String,
    },
    Fill {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Id<OrderId>, _>")]
        order_id: OrderId,
        #[serde(deserialize_with = "checked::<Id<ExecId>, _>")]
        exec_id: ExecId,
        quantity: u64,
        #[serde(deserialize_with = "checked::<Price, _>")]
        price: Decimal,
    },
    CancelOrder {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Id<OrderId>, _>")]
        order_id: OrderId,
    },
    ConfirmCancel {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Id<OrderId>, _>")]
        order_id: OrderId,
    },
    EndOfDay {
        #[serde(deserialize_with = "checked::<TradeDate, _>")]
        trade_date: NaiveDate,
        /// Close a date the trading calendar does not name as the open trade
        /// date (an unscheduled closure, a year not in the calendar yet).
        #[serde(default)]
        off_calendar: bool,
    },
    Settle {
        #[serde(deserialize_with = "checked::<TradeDate, _>")]
        trade_date: NaiveDate,
    },
    FreezeAccount {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Text, _>")]
        reason: String,
    },
    UnfreezeAccount {
        #[serde(deserialize_with = "checked::<Id<AccountId>, _>")]
        account_id: AccountId,
        #[serde(deserialize_with = "checked::<Text, _>")]
        reason: String,
    },
}

impl LedgerCommand {
    /// Refuses (`malformed`) a value outside the market rules' bounds. It looks at the
    /// command alone, so the engine runs it before looking up the command id: a
    /// malformed command is answered the same every time, and never recorded.
    pub fn check_well_formed(&self, rules: &MarketRules) -> Result<(), Rejection> {
        match self {
            LedgerCommand::ListInstrument { name, risk_level, .. } => well_formed::listing(name, *risk_level),
            LedgerCommand::SetPrevClose { price, .. } => well_formed::price_in_bounds("price", *price, rules),
            LedgerCommand::OpenAccount {
                customer_name,
                id_number,
                risk_level,
                ..
            } => well_formed::customer(customer_name, id_number, *risk_level),
            LedgerCommand::Deposit { amount_cny, .. } | LedgerCommand::Withdraw { amount_cny, .. } => {
                well_formed::cash_amount(*amount_cny, rules)
            }
            LedgerCommand::PlaceOrder { quantity, price, .. } => {
                well_formed::order_size("order", *quantity, *price, rules)
            }
            LedgerCommand::Fill { quantity, price, .. } => well_formed::order_size("fill", *quantity, *price, rules),
            _ => Ok(()),
        }
    }

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
            LedgerCommand::ListInstrument { .. }
            | LedgerCommand::SetPrevClose { .. }
            | LedgerCommand::EndOfDay { .. }
            | LedgerCommand::Settle { .. } => None,
        }
    }

    /// The trade date the command names, if it names one: it is the business
    /// date of the command's events.
    pub fn named_trade_date(&self) -> Option<NaiveDate> {
        match self {
            LedgerCommand::SetPrevClose { trade_date, .. }
            | LedgerCommand::PlaceOrder { trade_date, .. }
            | LedgerCommand::EndOfDay { trade_date, .. }
            | LedgerCommand::Settle { trade_date } => Some(*trade_date),
            LedgerCommand::ListInstrument { .. }
            | LedgerCommand::OpenAccount { .. }
            | LedgerCommand::Deposit { .. }
            | LedgerCommand::Withdraw { .. }
            | LedgerCommand::ConfirmWithdrawal { .. }
            | LedgerCommand::FailWithdrawal { .. }
            | LedgerCommand::RejectOrder { .. }
            | LedgerCommand::Fill { .. }
            | LedgerCommand::CancelOrder { .. }
            | LedgerCommand::ConfirmCancel { .. }
            | LedgerCommand::FreezeAccount { .. }
            | LedgerCommand::UnfreezeAccount { .. } => None,
        }
    }

    /// The contract's name of the command type.
    pub fn type_name(&self) -> &'static str {
        self.into()
    }
}

/// Parses one line of a command file given as text.
pub fn parse_line(line: &str) -> Result<CommandLine, Malformed> {
    parse_line_bytes(line.as_bytes())
}

/// Parses one line of a command file as it was read: its length first, then
/// whether it is UTF-8 text, then the `command_id` and the `type` (a line
/// without a valid id is not kept under any id), then serde reads the rest
/// into the variant the type names.
pub fn parse_line_bytes(line: &[u8]) -> Result<CommandLine, Malformed> {
    let anonymous = |message: String| Malformed {
        command_id: None,
        message,
    };
    if line.len() > MAX_LINE_BYTES {
        return Err(anonymous(format!("line is longer than {MAX_LINE_BYTES} bytes")));
    }
    let text = std::str::from_utf8(line).map_err(|e| anonymous(not_utf8(line, e)))?;
    let value: Value = serde_json::from_str(text).map_err(|e| anonymous(format!("not valid JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(anonymous("a command must be a JSON object".into()));
    };
    let command_id = match fields.remove("command_id") {
        Some(Value::String(id)) => CommandId::parse(&id).map_err(|e| anonymous(e.to_string()))?,
        Some(_) => return Err(anonymous("command_id must be a string".into())),
        None => return Err(anonymous("missing field `command_id`".into())),
    };
    let malformed = |message: String| Malformed {
        command_id: Some(command_id.to_string()),
        message,
    };
    let type_name = match fields.remove("type") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(malformed("type must be a string".into())),
        None => return Err(malformed("missing field `type`".into())),
    };
    let command = reader::read_command(&type_name, &fields).map_err(malformed)?;
    Ok(CommandLine { command_id, command })
}

/// Where a line stops being UTF-8, counted in bytes from the start of the line.
fn not_utf8(line: &[u8], error: std::str::Utf8Error) -> String {
    let offset = error.valid_up_to();
    match (error.error_len(), line.get(offset)) {
        (Some(_), Some(byte)) => {
            format!("the line is not UTF-8 text: the byte 0x{byte:02X} at byte offset {offset} cannot stand there")
        }
        _ => format!("the line is not UTF-8 text: it ends inside a character that starts at byte offset {offset}"),
    }
}
