//! Event versions through the codec, with the domain's events: an `OrderPlaced` stored
//! at version 1 (as the builds before versions wrote it) decodes as version 2, a limit
//! order, and the stored event is left as it is; the domain writes version 2; a version
//! this build does not know is refused, naming the event's position, type and version.
//! (The upcasters themselves are unit-tested in src/versions.rs.)

use chrono::NaiveDate;
use ledger_domain::account::AccountEvent;
use ledger_domain::ids::{BankRef, InstrumentCode, OrderId};
use ledger_domain::{Board, OrderType, Side};
use ledger_eventstore::codec::{decode, decode_raw, encode};
use ledger_eventstore::{EventMetadata, RawEvent, RecordedEvent, StreamId};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// The first order of the old log of tests/fixtures, at position 34, as it is stored there.
fn order_placed_v1() -> Value {
    json!({
        "board": "main", "instrument": "601398.SH", "limit_price": "5.29", "order_id": "O000001",
        "quantity": 1200, "reserved_cny": "6353.41", "side": "buy", "trade_date": "2024-03-04"
    })
}

fn stored(event_type: &str, event_version: u32, payload: Value) -> RecordedEvent {
    RecordedEvent {
        global_position: 34,
        stream: StreamId::new("Account", "A0001"),
        sequence: 3,
        event_type: event_type.to_owned(),
        event_version,
        payload,
        metadata: EventMetadata {
            command_id: "C000036".into(),
            correlation_id: "C000036".into(),
            causation_id: "C000036".into(),
            actor: "cli:exec".into(),
            recorded_at: "2024-03-04T01:30:00Z".parse().unwrap(),
            business_date: None,
        },
        prev_hash: "3bad0a018381da9494f505582d24dc654475205b39e6bdc9d9a1d63d777f9559".into(),
        hash: "1594551644e417aa20d7a0eb1240bc64a5e95dace28a019a073974bb08a19403".into(),
    }
}

fn price(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[test]
fn a_version_1_order_placed_decodes_as_a_version_2_limit_order_and_stays_stored_as_it_was() {
    let recorded = stored("OrderPlaced", 1, order_placed_v1());
    let before = recorded.clone();
    let event: AccountEvent = decode(&recorded).unwrap();
    assert_eq!(
        event,
        AccountEvent::OrderPlaced {
            order_id: OrderId::parse("O000001").unwrap(),
            instrument: InstrumentCode::parse("601398.SH").unwrap(),
            board: Board::Main,
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: 1200,
            limit_price: price("5.29"),
            trade_date: NaiveDate::from_ymd_opt(2024, 3, 4).unwrap(),
            reserved_cny: price("6353.41"),
        }
    );
    assert_eq!(recorded, before, "decoding leaves the stored event as it is");

    // Written again it would be version 2: the version 1 fields and `order_type`, nothing else.
    let written = encode(&event).unwrap();
    assert_eq!(written.event_version, 2);
    let mut expected = order_placed_v1();
    expected["order_type"] = json!("limit");
    assert_eq!(written.payload, expected);
    // And read back at version 2 it is the same event, untouched by any upcaster.
    assert_eq!(
        decode::<AccountEvent>(&stored("OrderPlaced", 2, written.payload)).unwrap(),
        event
    );
}

#[test]
fn the_domain_writes_order_placed_at_version_2_and_the_others_at_version_1() {
    let placed = AccountEvent::OrderPlaced {
        order_id: OrderId::parse("O1").unwrap(),
        instrument: InstrumentCode::parse("600000.SH").unwrap(),
        board: Board::Main,
        side: Side::Sell,
        order_type: OrderType::Limit,
        quantity: 100,
        limit_price: price("10.00"),
        trade_date: NaiveDate::from_ymd_opt(2024, 3, 4).unwrap(),
        reserved_cny: price("0.00"),
    };
    let written = encode(&placed).unwrap();
    assert_eq!((written.event_type.as_str(), written.event_version), ("OrderPlaced", 2));
    assert_eq!(written.payload["order_type"], "limit");
    let deposit = AccountEvent::CashDeposited {
        amount_cny: price("1.00"),
        bank_ref: BankRef::parse("B1").unwrap(),
    };
    assert_eq!(encode(&deposit).unwrap().event_version, 1);
}

#[test]
fn a_version_this_build_does_not_know_is_refused_naming_the_event() {
    let newer = decode::<AccountEvent>(&stored("OrderPlaced", 3, order_placed_v1())).unwrap_err();
    assert_eq!(
        (newer.position, newer.event_type.as_str(), newer.version),
        (34, "OrderPlaced", 3)
    );
    assert!(
        newer.reason.contains("newer than this build reads (version 2)"),
        "{newer}"
    );
    assert!(
        newer
            .to_string()
            .starts_with("event at position 34 (OrderPlaced v3) cannot be read: "),
        "{newer}"
    );

    let zero = decode::<AccountEvent>(&stored("OrderPlaced", 0, order_placed_v1())).unwrap_err();
    assert!(zero.reason.contains("has no version 0"), "{zero}");

    let deposit = json!({"amount_cny": "1.00", "bank_ref": "B1"});
    let newer_deposit = decode::<AccountEvent>(&stored("CashDeposited", 2, deposit)).unwrap_err();
    assert!(
        newer_deposit.reason.contains("newer than this build reads (version 1)"),
        "{newer_deposit}"
    );

    let unknown = decode::<AccountEvent>(&stored("OrderAmended", 1, json!({}))).unwrap_err();
    assert_eq!(unknown.event_type, "OrderAmended");
    assert!(
        unknown.reason.contains("not an event type this build knows"),
        "{unknown}"
    );
}

#[test]
fn a_version_1_order_that_names_an_order_type_is_refused_rather_than_overwritten() {
    let mut named = order_placed_v1();
    named["order_type"] = json!("market");
    let refused = decode::<AccountEvent>(&stored("OrderPlaced", 1, named)).unwrap_err();
    assert!(refused.reason.contains("has no order_type"), "{refused}");
}

/// `ledger import` refuses, before writing anything, an event whose hash is right but whose
/// version this build cannot read (written by a newer build): naming its position.
#[test]
fn an_import_refuses_a_version_this_build_cannot_read() {
    use ledger_eventstore::import::{check_chain, ImportRefusal};
    let mut newer = stored("OrderPlaced", 3, order_placed_v1());
    newer.hash = newer.hash_of_fields();
    let refusal = check_chain(std::slice::from_ref(&newer), 33, &newer.prev_hash).unwrap_err();
    assert!(
        matches!(&refusal, ImportRefusal::Unreadable { position: 34, reason } if reason.contains("newer")),
        "{refusal}"
    );
    let mut known = stored("OrderPlaced", 1, order_placed_v1());
    known.hash = known.hash_of_fields();
    assert_eq!(check_chain(std::slice::from_ref(&known), 33, &known.prev_hash), Ok(()));
}

/// The stored row of `stored(...)`, its payload as the bytes `text`.
fn stored_bytes(event_type: &str, event_version: u32, text: &str) -> RawEvent {
    RawEvent {
        payload: text.as_bytes().to_vec(),
        ..RawEvent::from(stored(event_type, event_version, json!({})))
    }
}

#[test]
fn read_in_one_pass_from_the_bytes_an_event_is_what_its_value_decodes_to() {
    let v1 = order_placed_v1().to_string();
    let from_value: AccountEvent = decode(&stored("OrderPlaced", 1, order_placed_v1())).unwrap();
    let from_bytes: AccountEvent = decode_raw(&stored_bytes("OrderPlaced", 1, &v1)).unwrap();
    assert_eq!(from_bytes, from_value, "an older version goes through its upcaster");
    let v2 = encode(&from_value).unwrap().payload.to_string();
    let current: AccountEvent = decode_raw(&stored_bytes("OrderPlaced", 2, &v2)).unwrap();
    assert_eq!(current, from_value);

    let newer = decode_raw::<AccountEvent>(&stored_bytes("OrderPlaced", 3, &v1)).unwrap_err();
    assert!(
        newer.reason.contains("newer than this build reads (version 2)"),
        "{newer}"
    );
    let unknown = decode_raw::<AccountEvent>(&stored_bytes("OrderAmended", 1, "{}")).unwrap_err();
    assert!(
        unknown.reason.contains("not an event type this build knows"),
        "{unknown}"
    );
}

#[test]
fn bytes_that_are_not_the_event_are_refused_and_say_why() {
    let whole: AccountEvent = decode(&stored("OrderPlaced", 1, order_placed_v1())).unwrap();
    let trailing = format!("{} {{}}", encode(&whole).unwrap().payload);
    for (version, text) in [(2, "not json"), (2, ""), (1, "{\"board\":"), (2, trailing.as_str())] {
        let refused = decode_raw::<AccountEvent>(&stored_bytes("OrderPlaced", version, text)).unwrap_err();
        assert!(
            refused.reason.starts_with("payload is not JSON: "),
            "{text:?} v{version}: {refused}"
        );
        assert_eq!((refused.position, refused.version), (34, version));
    }
    let wrong_fields =
        decode_raw::<AccountEvent>(&stored_bytes("CashDeposited", 1, "{\"amount_cny\":\"1.00\"}")).unwrap_err();
    assert!(
        wrong_fields.reason.contains("missing field `bank_ref`"),
        "{wrong_fields}"
    );
}
