//! Fuzzing `parse_line`, the one door of the command file: arbitrary strings, and
//! lines mutated from the corpus (fields dropped, duplicated or given another
//! value: huge and negative numbers, deep nesting, long strings, control
//! characters, lone surrogates; bytes flipped, inserted, cut). For every line:
//!
//! * `parse_line` never panics: it answers a command or a `Malformed` with a
//!   sentence;
//! * a `Malformed` keeps a command id only if the line's `command_id` is a valid one,
//!   and then exactly it;
//! * a parsed line names the type and command id the line holds, and written back
//!   the way docs/api.md writes commands (decimals as strings, dates as
//!   `YYYY-MM-DD`), it parses to the same command: what parses round-trips;
//! * the order of a line's fields changes nothing, neither a command nor a message.
//!
//! The corpus runs first: `tests/corpus/parse_line/` (`valid.jsonl`, lines that must
//! parse; `regressions.jsonl`, lines that once broke something or easily could) and
//! every input of `tests/fixtures/wire-messages.jsonl`. A failure prints its shrunk
//! line: add it to `regressions.jsonl`.
//!
//! CI runs `CASES` lines from a fixed seed; `LEDGER_FUZZ_CASES=<n>` runs more,
//! `PROPTEST_RNG_SEED=<u64>` others (docs/operations.md, "Testing beyond CI").

// The contract's writer names every command's fields in one match: it reads best whole.
#![allow(clippy::too_many_lines)]

use ledger_commands::wire::MAX_LINE_BYTES;
use ledger_commands::{parse_line, CommandLine, LedgerCommand};
use ledger_domain::ids::CommandId;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};
use strum::VariantNames;

/// Lines CI runs in each property (together about 15 s in a debug build).
const CASES: u32 = 5_000;

const VALID: &str = include_str!("corpus/parse_line/valid.jsonl");
const REGRESSIONS: &str = include_str!("corpus/parse_line/regressions.jsonl");
const PINNED: &str = include_str!("fixtures/wire-messages.jsonl");

/// A runner driven by hand has no source file to save failures beside: a failure is
/// printed, shrunk, to be added to the corpus.
fn runner() -> TestRunner {
    TestRunner::new(Config {
        failure_persistence: None,
        ..ledger_testkit::fuzz_config(CASES)
    })
}

/// Every line of the corpus and every input the pinned fixture holds.
fn corpus() -> Vec<String> {
    let pinned = PINNED.lines().map(|case| {
        let case: Value = serde_json::from_str(case).expect("the fixture is JSON lines");
        case["input"].as_str().expect("each case has an input").to_owned()
    });
    VALID
        .lines()
        .chain(REGRESSIONS.lines())
        .map(str::to_owned)
        .chain(pinned)
        .collect()
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

fn check_line(line: &str) -> Result<(), TestCaseError> {
    let parsed = parse_line(line);
    let object = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(fields)) if line.len() <= MAX_LINE_BYTES => Some(fields),
        _ => None,
    };
    match &parsed {
        Ok(command) => check_parsed(line, command, object.as_ref())?,
        Err(malformed) => {
            prop_assert!(!malformed.message.trim().is_empty(), "a refusal says why: {line:?}");
            if let Some(id) = &malformed.command_id {
                prop_assert!(CommandId::parse(id).is_ok(), "kept an invalid command id {id:?}");
                let held = object
                    .as_ref()
                    .and_then(|f| f.get("command_id"))
                    .and_then(Value::as_str);
                prop_assert_eq!(held, Some(id.as_str()), "the kept command id is the line's: {:?}", line);
            }
        }
    }
    if let Some(fields) = object {
        // The same fields in one order and in the reverse (both written from the parsed
        // values, since serde_json may read a float's last digit differently from its text).
        let entries: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("{}:{value}", Value::String(key.clone())))
            .collect();
        let in_order = format!("{{{}}}", entries.join(","));
        let reversed: Vec<&str> = entries.iter().rev().map(String::as_str).collect();
        let reordered = format!("{{{}}}", reversed.join(","));
        if reordered.len() <= MAX_LINE_BYTES {
            prop_assert_eq!(
                parse_line(&reordered),
                parse_line(&in_order),
                "the order of the fields changed the answer to {:?}",
                line
            );
        }
    }
    Ok(())
}

fn check_parsed(line: &str, parsed: &CommandLine, fields: Option<&Map<String, Value>>) -> Result<(), TestCaseError> {
    let Some(fields) = fields else {
        return Err(TestCaseError::fail(format!(
            "parsed a line that is not a JSON object: {line:?}"
        )));
    };
    prop_assert_eq!(
        fields.get("type").and_then(Value::as_str),
        Some(parsed.command.type_name())
    );
    prop_assert_eq!(
        fields.get("command_id").and_then(Value::as_str),
        Some(parsed.command_id.as_str())
    );
    let written = to_line(parsed);
    match parse_line(&written) {
        Ok(again) => prop_assert_eq!(&again, parsed, "{} written back as {}", line, written),
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "{line} written back as {written} is refused: {e}"
            )))
        }
    }
    Ok(())
}

/// A command written the way docs/api.md writes it.
fn to_line(line: &CommandLine) -> String {
    use LedgerCommand as L;
    let mut fields = match &line.command {
        L::ListInstrument {
            instrument,
            name,
            board,
            risk_level,
        } => {
            json!({"instrument": instrument.as_str(), "name": name, "board": board.as_str(), "risk_level": risk_level})
        }
        L::SetPrevClose {
            instrument,
            trade_date,
            price,
        } => {
            json!({"instrument": instrument.as_str(), "trade_date": trade_date.to_string(), "price": price.to_string()})
        }
        L::OpenAccount {
            account_id,
            customer_name,
            id_number,
            risk_level,
        } => {
            json!({"account_id": account_id.as_str(), "customer_name": customer_name, "id_number": id_number, "risk_level": risk_level})
        }
        L::Deposit {
            account_id,
            amount_cny,
            bank_ref,
        }
        | L::Withdraw {
            account_id,
            amount_cny,
            bank_ref,
        } => {
            json!({"account_id": account_id.as_str(), "amount": amount_cny.to_string(), "bank_ref": bank_ref.as_str()})
        }
        L::ConfirmWithdrawal { account_id, bank_ref } | L::FailWithdrawal { account_id, bank_ref } => {
            json!({"account_id": account_id.as_str(), "bank_ref": bank_ref.as_str()})
        }
        L::PlaceOrder {
            account_id,
            order_id,
            instrument,
            side,
            quantity,
            price,
            trade_date,
        } => {
            json!({"account_id": account_id.as_str(), "order_id": order_id.as_str(), "instrument": instrument.as_str(),
                    "side": side.as_str(), "quantity": quantity, "price": price.to_string(), "trade_date": trade_date.to_string()})
        }
        L::RejectOrder {
            account_id,
            order_id,
            reason,
        } => json!({"account_id": account_id.as_str(), "order_id": order_id.as_str(), "reason": reason}),
        L::Fill {
            account_id,
            order_id,
            exec_id,
            quantity,
            price,
        } => json!({"account_id": account_id.as_str(), "order_id": order_id.as_str(), "exec_id": exec_id.as_str(),
                    "quantity": quantity, "price": price.to_string()}),
        L::CancelOrder { account_id, order_id } | L::ConfirmCancel { account_id, order_id } => {
            json!({"account_id": account_id.as_str(), "order_id": order_id.as_str()})
        }
        L::EndOfDay {
            trade_date,
            off_calendar,
        } => json!({"trade_date": trade_date.to_string(), "off_calendar": off_calendar}),
        L::Settle { trade_date } => json!({"trade_date": trade_date.to_string()}),
        L::FreezeAccount { account_id, reason } | L::UnfreezeAccount { account_id, reason } => {
            json!({"account_id": account_id.as_str(), "reason": reason})
        }
    };
    fields["type"] = json!(line.command.type_name());
    fields["command_id"] = json!(line.command_id.as_str());
    fields.to_string()
}

// ---------------------------------------------------------------------------
// The inputs
// ---------------------------------------------------------------------------

/// A JSON value as text, from the ordinary to the hostile.
fn value_text() -> impl Strategy<Value = String> {
    let words = proptest::sample::select(vec![
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1",
        "-1",
        "100",
        "1.5",
        "1e5",
        "1e400",
        "-1e400",
        "100.0",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "\"\"",
        "\" \"",
        "\"0\"",
        "\"0.00\"",
        "\"-5\"",
        "\"5.12\"",
        "\"1500.00\"",
        "\"1.001\"",
        "\"5.123456789\"",
        "\"1e5\"",
        "\"+5\"",
        "\".5\"",
        "\"5.\"",
        "\"2024-03-04\"",
        "\"2024-3-4\"",
        "\"2024-02-30\"",
        "\"601398.SH\"",
        "\"buy\"",
        "\"sell\"",
        "\"main\"",
        "\"star\"",
        "\"A1\"",
        "\"O1\"",
        "\"a b\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\u00e9\"",
        "\"名\"",
        "[]",
        "{}",
        "[1,2]",
        "{\"a\":1}",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        6 => words,
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| Value::from(f).to_string()),
        1 => ".{0,30}".prop_map(|s| Value::String(s).to_string()),
        1 => (1usize..400).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        1 => (1usize..300).prop_map(|depth| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))),
        1 => (200usize..80_000).prop_map(|len| Value::String("x".repeat(len)).to_string()),
    ]
}

/// What is done to a corpus line, in the order drawn.
#[derive(Debug, Clone)]
enum Mutation {
    DropField(usize),
    DuplicateField(usize),
    ReplaceValue(usize, String),
    AddField(String, String),
    RenameType(String),
    FlipByte(usize, u8),
    InsertText(usize, String),
    Cut(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<usize>();
    let key = proptest::sample::select(vec![
        "type",
        "command_id",
        "account_id",
        "amount",
        "price",
        "quantity",
        "trade_date",
        "side",
        "off_calendar",
        "x",
    ])
    .prop_map(str::to_owned);
    let type_name =
        proptest::sample::select(<LedgerCommand as VariantNames>::VARIANTS.to_vec()).prop_map(str::to_owned);
    prop_oneof![
        2 => index.prop_map(Mutation::DropField),
        1 => index.prop_map(Mutation::DuplicateField),
        4 => (index, value_text()).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        1 => (key, value_text()).prop_map(|(k, v)| Mutation::AddField(k, v)),
        1 => type_name.prop_map(Mutation::RenameType),
        2 => (index, any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        1 => (index, prop_oneof![".{0,4}", Just("\"".to_owned()), Just(",".to_owned()), Just("\\".to_owned())])
            .prop_map(|(i, s)| Mutation::InsertText(i, s)),
        1 => (index, 1usize..20).prop_map(|(i, n)| Mutation::Cut(i, n)),
    ]
}

/// A line as its fields' raw texts, so that values JSON cannot hold (1e400, duplicates) survive.
fn fields_of(line: &str) -> Option<Vec<(String, String)>> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(fields)) => Some(
            fields
                .into_iter()
                .map(|(key, value)| (Value::String(key).to_string(), value.to_string()))
                .collect(),
        ),
        _ => None,
    }
}

fn join(fields: &[(String, String)]) -> String {
    let entries: Vec<String> = fields.iter().map(|(key, value)| format!("{key}:{value}")).collect();
    format!("{{{}}}", entries.join(","))
}

fn mutate(seed: &str, mutations: &[Mutation]) -> String {
    let mut fields = fields_of(seed);
    let mut text = seed.to_owned();
    for mutation in mutations {
        if let Some(fields) = fields.as_mut().filter(|f| !f.is_empty()) {
            let count = fields.len();
            match mutation {
                Mutation::DropField(i) => {
                    fields.remove(i % count);
                }
                Mutation::DuplicateField(i) => {
                    let field = fields[i % count].clone();
                    fields.push(field);
                }
                Mutation::ReplaceValue(i, value) => fields[i % count].1 = value.clone(),
                Mutation::AddField(key, value) => fields.push((Value::String(key.clone()).to_string(), value.clone())),
                Mutation::RenameType(name) => {
                    fields.retain(|(key, _)| key != "\"type\"");
                    fields.push(("\"type\"".into(), Value::String(name.clone()).to_string()));
                }
                _ => {}
            }
            text = join(fields);
        }
        text = mutate_text(&text, mutation);
    }
    text
}

/// The byte-level mutations, on any line; the result is kept as UTF-8 text.
fn mutate_text(text: &str, mutation: &Mutation) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match mutation {
        Mutation::FlipByte(i, byte) if !bytes.is_empty() => {
            let i = at(*i, bytes.len());
            bytes[i] = *byte;
        }
        Mutation::InsertText(i, inserted) => {
            let i = at(*i, bytes.len() + 1);
            bytes.splice(i..i, inserted.bytes());
        }
        Mutation::Cut(i, n) if !bytes.is_empty() => {
            let i = at(*i, bytes.len());
            bytes.drain(i..(i + n).min(bytes.len()));
        }
        _ => return text.to_owned(),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------
// The targets
// ---------------------------------------------------------------------------

#[test]
fn the_corpus_holds_the_properties_and_its_valid_lines_parse() {
    for line in corpus() {
        if let Err(failure) = check_line(&line) {
            panic!("{line:?}: {failure}");
        }
    }
    for line in VALID.lines() {
        assert!(parse_line(line).is_ok(), "{line}: {:?}", parse_line(line));
    }
    assert!(corpus().len() > 600, "the corpus and the pinned fixture are read");
}

#[test]
fn mutated_corpus_lines_hold_the_properties() {
    let corpus = corpus();
    let strategy = (
        proptest::sample::select(corpus),
        prop::collection::vec(mutation(), 1..=4),
    )
        .prop_map(|(seed, mutations)| mutate(&seed, &mutations));
    if let Err(failure) = runner().run(&strategy, |line| check_line(&line)) {
        panic!("{failure}");
    }
}

#[test]
fn arbitrary_strings_hold_the_properties() {
    let strategy = prop_oneof![
        3 => any::<String>(),
        2 => "\\{(\"[a-z_]{1,12}\":(\"[^\"]{0,12}\"|[0-9.e+-]{1,8}|null|true),?){0,9}\\}",
    ];
    if let Err(failure) = runner().run(&strategy, |line| check_line(&line)) {
        panic!("{failure}");
    }
}
