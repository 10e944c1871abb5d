//! Fuzzing the canonical encoding (issue 11): arbitrary events, with their money in
//! any spelling the arithmetic or a command file could give it (`-0`, `0`, `5`,
//! `10.500`, …), through the domain's one spelling (`MoneyFields`), the codec and
//! the chain's canonical JSON:
//!
//! * every amount and price of the payload is written with two decimals, never `-0`;
//! * the payload reads back to the same event, from its value and in one pass from its
//!   bytes (the canonical ones and PostgreSQL's spelling), and that event writes the same bytes;
//! * the engine's check (`non_canonical_money`) names a field exactly when the event
//!   as given would have written other bytes than its canonical spelling;
//! * a backend's own spelling of a payload (PostgreSQL's JSONB text) hashes as the
//!   canonical bytes, and any JSON value's canonical text is a fixpoint.
//!
//! Proptest on the stable toolchain: `cargo test -p ledger-eventstore --test
//! fuzz_encoding` runs `DEFAULT_CASES` cases, a few seconds; `LEDGER_FUZZ_CASES=N`
//! runs N (docs/operations.md, "Fuzzing"). A failing case is shrunk, printed, and
//! saved in `fuzz_encoding.proptest-regressions` beside this file, which is
//! committed and replayed first on every run; `corpus/money-spellings.txt` holds the
//! spellings that once reached the log.

use std::path::Path;

use chrono::NaiveDate;
use ledger_domain::account::{AccountEvent, CashDirection};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::money::{is_canonical_fen, MoneyFields};
use ledger_domain::{Board, InstrumentEvent, InstrumentInfo, OrderType, Side};
use ledger_eventstore::chain::{canonical_json, payload_bytes_of_text, ChainedFields, GENESIS_HASH};
use ledger_eventstore::codec::{decode, decode_raw, encode};
use ledger_eventstore::{EventMetadata, RawEvent, RecordedEvent, StreamId};
use ledger_testkit::fuzz_config;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Cases per property when `LEDGER_FUZZ_CASES` is not set: a few seconds in CI.
const DEFAULT_CASES: u32 = 2_000;
/// Largest amount generated, in fen (10^12 CNY): beyond any the rules let through, and
/// still an `i64` at six decimals.
const MAX_FEN: i64 = 100_000_000_000_000;

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// A whole number of fen at a scale of 0 to 6 (`5`, `5.0`, `5.00`, `5.000000`), its
/// zero signed either way.
fn money() -> impl Strategy<Value = Decimal> {
    (-MAX_FEN..=MAX_FEN, 0u32..=6, any::<bool>()).prop_map(|(fen, scale, negative_zero)| {
        let mut amount = if scale >= 2 {
            Decimal::new(fen * 10i64.pow(scale - 2), scale)
        } else {
            let step = 10i64.pow(2 - scale);
            Decimal::new(fen / step, scale)
        };
        if amount.is_zero() && negative_zero {
            amount.set_sign_negative(true);
        }
        amount
    })
}

fn id<T>(prefix: &'static str, parse: fn(&str) -> Result<T, ledger_domain::ids::IdError>) -> impl Strategy<Value = T>
where
    T: std::fmt::Debug,
{
    "[A-Z0-9_.:/-]{0,12}".prop_map(move |rest| parse(&format!("{prefix}{rest}")).unwrap())
}

fn instrument() -> impl Strategy<Value = InstrumentCode> {
    ("[0-9]{6}", prop::sample::select(vec!["SH", "SZ", "BJ"]))
        .prop_map(|(digits, exchange)| InstrumentCode::parse(&format!("{digits}.{exchange}")).unwrap())
}

/// Free text as customers and operators write it: quotes, backslashes, line breaks and
/// Chinese included, so that string escaping is fuzzed too.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 \"\\\\\n\t\u{e9}\u{4e00}-\u{4e20}]{0,16}"
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (0i64..3_000).prop_map(|days| NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Duration::days(days))
}

fn side() -> impl Strategy<Value = Side> {
    prop::sample::select(vec![Side::Buy, Side::Sell])
}

fn fees() -> impl Strategy<Value = FeeBreakdown> {
    (money(), money(), money(), money(), money()).prop_map(|(commission, stamp, transfer, handling, regulatory)| {
        FeeBreakdown {
            commission_cny: commission,
            stamp_duty_cny: stamp,
            transfer_fee_cny: transfer,
            handling_fee_cny: handling,
            regulatory_fee_cny: regulatory,
        }
    })
}

fn cash_event() -> impl Strategy<Value = AccountEvent> {
    (money(), money(), id("B", BankRef::parse), 0..6usize).prop_map(|(amount_cny, threshold_cny, bank_ref, which)| {
        match which {
            0 => AccountEvent::CashDeposited { amount_cny, bank_ref },
            1 => AccountEvent::WithdrawalRequested { amount_cny, bank_ref },
            2 => AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref },
            3 => AccountEvent::WithdrawalFailed { amount_cny, bank_ref },
            _ => AccountEvent::LargeCashMovementFlagged {
                direction: if which == 4 {
                    CashDirection::Deposit
                } else {
                    CashDirection::Withdrawal
                },
                amount_cny,
                threshold_cny,
                bank_ref,
            },
        }
    })
}

fn order_event() -> impl Strategy<Value = AccountEvent> {
    let placed = (
        id("O", OrderId::parse),
        instrument(),
        prop::sample::select(vec![Board::Main, Board::Chinext, Board::Star, Board::St]),
        side(),
        any::<u64>(),
        (money(), date(), money()),
    )
        .prop_map(
            |(order_id, instrument, board, side, quantity, (limit_price, trade_date, reserved_cny))| {
                AccountEvent::OrderPlaced {
                    order_id,
                    instrument,
                    board,
                    side,
                    order_type: OrderType::Limit,
                    quantity,
                    limit_price,
                    trade_date,
                    reserved_cny,
                }
            },
        );
    let ended = (
        id("O", OrderId::parse),
        text(),
        money(),
        any::<u64>(),
        date(),
        0..5usize,
    )
        .prop_map(
            |(order_id, reason, released_cny, released_shares, trade_date, which)| match which {
                0 => AccountEvent::OrderRejected {
                    order_id,
                    reason,
                    released_cny,
                    released_shares,
                },
                1 => AccountEvent::OrderCompleted { order_id, released_cny },
                2 => AccountEvent::OrderCanceled {
                    order_id,
                    released_cny,
                    released_shares,
                },
                3 => AccountEvent::OrderExpired {
                    order_id,
                    trade_date,
                    released_cny,
                    released_shares,
                },
                _ => AccountEvent::CancelRequested { order_id },
            },
        );
    prop_oneof![placed, ended]
}

fn fill_event() -> impl Strategy<Value = AccountEvent> {
    (
        (
            id("O", OrderId::parse),
            id("E", ExecId::parse),
            instrument(),
            side(),
            date(),
        ),
        (any::<u64>(), money(), money(), fees()),
        (money(), money(), money()),
    )
        .prop_map(
            |(
                (order_id, exec_id, instrument, side, trade_date),
                (quantity, price, value_cny, fees),
                (reserve_used_cny, available_change_cny, unsettled_change_cny),
            )| AccountEvent::FillBooked {
                order_id,
                exec_id,
                instrument,
                side,
                trade_date,
                quantity,
                price,
                value_cny,
                fees,
                reserve_used_cny,
                available_change_cny,
                unsettled_change_cny,
            },
        )
}

fn other_account_event() -> impl Strategy<Value = AccountEvent> {
    (
        id("A", AccountId::parse),
        text(),
        "[0-9X]{18}",
        1u8..=5,
        date(),
        money(),
        0..4usize,
    )
        .prop_map(
            |(account_id, words, id_number, risk_level, trade_date, settled_cny, which)| match which {
                0 => AccountEvent::AccountOpened {
                    account_id,
                    customer_name: words,
                    id_number,
                    risk_level,
                },
                1 => AccountEvent::TradesSettled {
                    trade_date,
                    settled_cny,
                },
                2 => AccountEvent::AccountFrozen { reason: words },
                _ => AccountEvent::AccountUnfrozen { reason: words },
            },
        )
}

fn account_event() -> impl Strategy<Value = AccountEvent> {
    prop_oneof![cash_event(), order_event(), fill_event(), other_account_event()]
}

fn instrument_event() -> impl Strategy<Value = InstrumentEvent> {
    (instrument(), text(), date(), money(), 0..3usize).prop_map(|(code, name, trade_date, price, which)| {
        let info = InstrumentInfo {
            code,
            name,
            board: Board::Main,
            risk_level: 3,
        };
        match which {
            0 => InstrumentEvent::InstrumentListed(info),
            1 => InstrumentEvent::InstrumentUpdated(info),
            _ => InstrumentEvent::PrevCloseSet { trade_date, price },
        }
    })
}

/// Any JSON a payload could hold: no floats (payload numbers are whole quantities).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

/// PostgreSQL's spelling of a JSONB value: a space after `,` and `:`, shorter keys first.
fn respelled(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
            let fields: Vec<String> = keys
                .into_iter()
                .map(|key| format!("{}: {}", Value::String(key.clone()), respelled(&map[key.as_str()])))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(respelled).collect::<Vec<_>>().join(", ")),
        scalar => scalar.to_string(),
    }
}

/// The value at a dotted path of a payload (`fees.stamp_duty_cny`).
fn at<'v>(payload: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(payload, |value, key| value.get(key))
}

/// Every string of the payload that reads as a decimal with a point or a sign: money,
/// listed as such or not. Ids and id numbers here are never spelled so.
fn signed_or_pointed_decimals(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.values().for_each(|inner| signed_or_pointed_decimals(inner, found)),
        Value::Array(items) => items.iter().for_each(|inner| signed_or_pointed_decimals(inner, found)),
        Value::String(text) if (text.contains('.') || text.starts_with('-')) && text.parse::<Decimal>().is_ok() => {
            found.push(text.clone());
        }
        _ => {}
    }
}

fn recorded(stream: &StreamId, event_type: &str, event_version: u32, payload: Value) -> RecordedEvent {
    let metadata = EventMetadata {
        command_id: "C1".into(),
        correlation_id: "C1".into(),
        causation_id: "C1".into(),
        actor: "fuzz".into(),
        recorded_at: "2024-03-04T01:30:00Z".parse().unwrap(),
        business_date: None,
    };
    RecordedEvent {
        global_position: 1,
        stream: stream.clone(),
        sequence: 1,
        event_type: event_type.to_owned(),
        event_version,
        payload,
        metadata,
        prev_hash: GENESIS_HASH.to_owned(),
        hash: String::new(),
    }
}

/// The hash of an event at position 1 whose payload is these bytes.
fn hash_of(event: &RecordedEvent, payload: &[u8]) -> String {
    ChainedFields {
        global_position: event.global_position,
        stream: &event.stream,
        sequence: event.sequence,
        event_type: &event.event_type,
        event_version: event.event_version,
        payload,
        metadata: &event.metadata,
        prev_hash: &event.prev_hash,
    }
    .hash()
}

/// The properties of the module doc, for one event as decided (`given`).
fn check_event<E>(aggregate_type: &str, given: E) -> Result<(), TestCaseError>
where
    E: MoneyFields + cqrs_es::DomainEvent + DeserializeOwned,
{
    let canonical = given.clone().with_canonical_money();
    prop_assert!(canonical == given, "canonical spelling changed a value: {canonical:?}");
    prop_assert_eq!(canonical.non_canonical_money(), None);
    let encoded = encode(&canonical).unwrap();
    let text = canonical_json(&encoded.payload);
    let payload: Value = serde_json::from_str(&text).unwrap();
    let mut listed = canonical.clone();
    for (field, amount) in listed.money_fields_mut() {
        prop_assert!(is_canonical_fen(*amount));
        let stored = at(&payload, field).and_then(Value::as_str).map(str::to_owned);
        prop_assert_eq!(stored, Some(amount.to_string()), "{} in {}", field, text);
    }
    let mut decimals = Vec::new();
    signed_or_pointed_decimals(&payload, &mut decimals);
    for spelled in &decimals {
        let fraction = spelled.split_once('.').map_or("", |(_, f)| f);
        prop_assert!(
            fraction.len() == 2 && spelled != "-0.00",
            "{} is not canonical in {}",
            spelled,
            text
        );
    }
    let stream = StreamId::new(aggregate_type, "X1");
    let stored = recorded(&stream, &encoded.event_type, encoded.event_version, payload);
    let read_back: E = decode(&stored).unwrap();
    prop_assert!(read_back == canonical, "read back as {read_back:?}");
    // Read in one pass from the stored bytes, and from PostgreSQL's spelling of them.
    let raw = RawEvent::from(stored.clone());
    let read_raw: E = decode_raw(&raw).unwrap();
    prop_assert!(read_raw == canonical, "read from the bytes as {read_raw:?}");
    let server_spelled = RawEvent {
        payload: respelled(&stored.payload).into_bytes(),
        ..raw
    };
    let read_spelled: E = decode_raw(&server_spelled).unwrap();
    prop_assert!(
        read_spelled == canonical,
        "read from the server's text as {read_spelled:?}"
    );
    prop_assert_eq!(
        &canonical_json(&encode(&read_back).unwrap().payload),
        &text,
        "written again otherwise"
    );
    let given_text = canonical_json(&encode(&given).unwrap().payload);
    prop_assert_eq!(
        given.non_canonical_money().is_none(),
        given_text == text,
        "the engine's check and the bytes disagree: {} against {}",
        given_text,
        text
    );
    let respelled_bytes = payload_bytes_of_text(&respelled(&stored.payload));
    prop_assert_eq!(hash_of(&stored, &respelled_bytes), hash_of(&stored, text.as_bytes()));
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_config(DEFAULT_CASES))]

    #[test]
    fn account_events_encode_canonically_and_round_trip(event in account_event()) {
        check_event("Account", event)?;
    }

    #[test]
    fn instrument_events_encode_canonically_and_round_trip(event in instrument_event()) {
        check_event("Instrument", event)?;
    }

    #[test]
    fn canonical_json_is_a_fixpoint_whatever_the_spelling(value in json_value()) {
        let text = canonical_json(&value);
        let again = canonical_json(&serde_json::from_str::<Value>(&text).unwrap());
        prop_assert_eq!(&again, &text);
        prop_assert_eq!(payload_bytes_of_text(&respelled(&value)), text.as_bytes().to_vec());
        prop_assert_eq!(payload_bytes_of_text(&serde_json::to_string_pretty(&value).unwrap()), text.as_bytes().to_vec());
    }
}

/// The spellings of `corpus/money-spellings.txt`, in every money field of a fill.
#[test]
fn the_corpus_of_money_spellings_encodes_canonically() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/money-spellings.txt");
    let corpus = std::fs::read_to_string(&corpus).unwrap();
    let spellings: Vec<&str> = corpus
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    assert!(
        spellings.contains(&"-0") && spellings.contains(&"0"),
        "what once reached the log: {spellings:?}"
    );
    for spelling in spellings {
        let mut amount: Decimal = spelling.parse().unwrap();
        // `"-0".parse()` drops the sign: the arithmetic's negative zero keeps it.
        amount.set_sign_negative(spelling.starts_with('-'));
        let fees = FeeBreakdown {
            commission_cny: amount,
            stamp_duty_cny: amount,
            transfer_fee_cny: amount,
            handling_fee_cny: amount,
            regulatory_fee_cny: amount,
        };
        let fill = AccountEvent::FillBooked {
            order_id: OrderId::parse("O1").unwrap(),
            exec_id: ExecId::parse("E1").unwrap(),
            instrument: InstrumentCode::parse("600036.SH").unwrap(),
            side: Side::Sell,
            trade_date: NaiveDate::from_ymd_opt(2024, 3, 5).unwrap(),
            quantity: 100,
            price: amount,
            value_cny: amount,
            fees,
            reserve_used_cny: amount,
            available_change_cny: amount,
            unsettled_change_cny: amount,
        };
        if let Err(failure) = check_event("Account", fill) {
            panic!("the corpus spelling {spelling:?}: {failure}");
        }
    }
}
