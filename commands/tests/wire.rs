//! The command-file contract as the parser reads it: what parses, and the exact
//! sentence (and kept command id) of every kind of malformed line.

use ledger_commands::wire::values::{Amount, Price, RiskLevel, Text, TradeDate};
use ledger_commands::{parse_line, parse_line_bytes, LedgerCommand};
use rust_decimal::Decimal;
use serde_json::Value;

fn message(line: &str) -> String {
    parse_line(line).unwrap_err().message
}

#[test]
fn parses_a_deposit() {
    let parsed =
        parse_line(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"1500.00","bank_ref":"B1"}"#)
            .unwrap();
    assert_eq!(parsed.command_id.as_str(), "C1");
    assert!(
        matches!(parsed.command, LedgerCommand::Deposit { amount_cny, .. } if amount_cny == Decimal::new(150000, 2))
    );
    assert_eq!(parsed.command.type_name(), "deposit");
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
    let negative = message(r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"-5","bank_ref":"B"}"#);
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
fn reports_a_problem_of_shape_before_a_refused_value_and_refused_values_in_field_order() {
    // The refused side is read after the bad quantity type, yet the type is reported first.
    let both = message(
        r#"{"type":"place_order","command_id":"C1","account_id":"A1","order_id":"O1","instrument":"601398.SH","side":"up","quantity":"many","price":"1.00","trade_date":"2024-03-04"}"#,
    );
    assert_eq!(both, "quantity: invalid type: string \"many\", expected u64");
    // A missing field beats a refused value read before it was missed.
    let missing = message(r#"{"type":"deposit","command_id":"C1","account_id":"A 1","amount":"1.001"}"#);
    assert_eq!(missing, "missing field `bank_ref`");
    // Both values refused: the side (a word outside its list) first, then the fields in order.
    let refused = message(
        r#"{"type":"place_order","command_id":"C1","account_id":"A 1","order_id":"O1","instrument":"601398.SH","side":"up","quantity":1,"price":"1.00","trade_date":"2024-03-04"}"#,
    );
    assert_eq!(refused, "side: \"up\" is neither buy nor sell");
    let dates = message(
        r#"{"type":"set_prev_close","command_id":"C1","instrument":"601398.SH","trade_date":"4 March","price":"-1"}"#,
    );
    assert_eq!(dates, "trade_date: \"4 March\" is not a date like 2024-03-04");
}

#[test]
fn keeps_the_command_id_of_a_malformed_line() {
    let err = parse_line(r#"{"type":"deposit","command_id":"C9","account_id":"A1"}"#).unwrap_err();
    assert_eq!(err.command_id.as_deref(), Some("C9"));
    let err = parse_line(r#"{"type":"deposit","command_id":"C 9","account_id":"A1"}"#).unwrap_err();
    assert_eq!(err.command_id, None, "an invalid id is not kept");
    assert_eq!(
        err.message,
        "command_id \"C 9\" may only hold ASCII letters, digits and - _ . : /"
    );
}

#[test]
fn refuses_a_line_over_the_limit() {
    let line = format!(
        r#"{{"type":"settle","command_id":"C1","trade_date":"{}"}}"#,
        "x".repeat(70_000)
    );
    assert_eq!(message(&line), "line is longer than 65536 bytes");
}

#[test]
fn a_line_that_is_not_utf8_says_where_its_text_breaks() {
    let bytes = |line: &[u8]| parse_line_bytes(line).unwrap_err();
    let broken = bytes(b"{\"type\":\"settle\",\"command_id\":\"C\xff1\"}");
    assert_eq!(
        broken.message,
        "the line is not UTF-8 text: the byte 0xFF at byte offset 32 cannot stand there"
    );
    assert_eq!(broken.command_id, None, "nothing of the line is read");
    assert_eq!(
        bytes(b"{\"type\":\"settle\xe4\xb8").message,
        "the line is not UTF-8 text: it ends inside a character that starts at byte offset 15"
    );
    // Too long comes first: a line cut at the limit may end inside a character.
    let mut overlong = vec![b'x'; 70_000];
    overlong.push(0xe4);
    assert_eq!(bytes(&overlong).message, "line is longer than 65536 bytes");
    let text = r#"{"type":"settle","command_id":"C1","trade_date":"2024-03-04"}"#;
    assert_eq!(parse_line_bytes(text.as_bytes()), parse_line(text));
}

/// One valid line of every command type of the contract.
const EVERY_TYPE: [&str; 16] = [
    r#"{"type":"list_instrument","command_id":"C1","instrument":"601398.SH","name":"ICBC","board":"main","risk_level":1}"#,
    r#"{"type":"set_prev_close","command_id":"C1","instrument":"601398.SH","trade_date":"2024-03-04","price":"5.12"}"#,
    r#"{"type":"open_account","command_id":"C1","account_id":"A1","customer_name":"Li Lei","id_number":"110101","risk_level":3}"#,
    r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"1500.00","bank_ref":"B1"}"#,
    r#"{"type":"withdraw","command_id":"C1","account_id":"A1","amount":"1500.00","bank_ref":"B1"}"#,
    r#"{"type":"confirm_withdrawal","command_id":"C1","account_id":"A1","bank_ref":"B1"}"#,
    r#"{"type":"fail_withdrawal","command_id":"C1","account_id":"A1","bank_ref":"B1"}"#,
    r#"{"type":"place_order","command_id":"C1","account_id":"A1","order_id":"O1","instrument":"601398.SH","side":"buy","quantity":100,"price":"5.10","trade_date":"2024-03-04"}"#,
    r#"{"type":"reject_order","command_id":"C1","account_id":"A1","order_id":"O1","reason":"no"}"#,
    r#"{"type":"fill","command_id":"C1","account_id":"A1","order_id":"O1","exec_id":"E1","quantity":100,"price":"5.10"}"#,
    r#"{"type":"cancel_order","command_id":"C1","account_id":"A1","order_id":"O1"}"#,
    r#"{"type":"confirm_cancel","command_id":"C1","account_id":"A1","order_id":"O1"}"#,
    r#"{"type":"end_of_day","command_id":"C1","trade_date":"2024-03-04"}"#,
    r#"{"type":"settle","command_id":"C1","trade_date":"2024-03-04"}"#,
    r#"{"type":"freeze_account","command_id":"C1","account_id":"A1","reason":"aml"}"#,
    r#"{"type":"unfreeze_account","command_id":"C1","account_id":"A1","reason":"ok"}"#,
];

#[test]
fn every_command_type_parses_and_names_itself_as_the_contract_does() {
    for line in EVERY_TYPE {
        let parsed = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let type_name = serde_json::from_str::<Value>(line).unwrap()["type"].clone();
        assert_eq!(parsed.command.type_name(), type_name, "strum and serde name it alike");
    }
}

/// Every kind of problem the parser reports, pinned byte for byte (with the command id it keeps).
#[test]
fn every_pinned_line_gets_its_pinned_answer() {
    let fixture = include_str!("fixtures/wire-messages.jsonl");
    let mut checked = 0;
    for case in fixture.lines() {
        let case: Value = serde_json::from_str(case).unwrap();
        let input = case["input"].as_str().unwrap();
        let got = parse_line(input);
        match case["message"].as_str() {
            None => {
                let parsed = got.unwrap_or_else(|e| panic!("{input}: {e}"));
                let type_name = serde_json::from_str::<Value>(input).unwrap()["type"].clone();
                assert_eq!(parsed.command.type_name(), type_name, "strum and serde name it alike");
            }
            Some(message) => {
                let err = got.unwrap_err();
                assert_eq!(err.message, message, "{input}");
                assert_eq!(err.command_id.as_deref(), case["command_id"].as_str(), "{input}");
            }
        }
        checked += 1;
    }
    assert!(checked > 500, "the fixture holds the pinned lines");
}

#[test]
fn the_newtypes_check_themselves_when_deserialized() {
    let amount = |text: &str| serde_json::from_value::<Amount>(Value::String(text.into()));
    assert!(amount("1500.00").is_ok());
    assert!(amount("1.001").is_err());
    assert!(amount("1e5").is_err(), "no exponent");
    assert!(amount("+5").is_err(), "no sign");
    assert!(serde_json::from_value::<Price>(Value::String("5.12345678".into())).is_ok());
    assert!(serde_json::from_value::<Price>(Value::String("5.123456789".into())).is_err());
    assert!(serde_json::from_value::<TradeDate>(Value::String("2024-03-04".into())).is_ok());
    assert!(serde_json::from_value::<TradeDate>(Value::String("2024-3-4".into())).is_err());
    assert!(serde_json::from_value::<Text>(Value::String("Li Lei".into())).is_ok());
    assert!(serde_json::from_value::<Text>(Value::String("a\u{1}b".into())).is_err());
    assert!(serde_json::from_value::<RiskLevel>(Value::from(5)).is_ok());
    assert!(serde_json::from_value::<RiskLevel>(Value::from(6)).is_err());
}
