//! The log's per-event work, each measured alone (`cargo bench -p ledger-eventstore`):
//! a domain event encoded to its stored payload, and that payload written canonically
//! and hashed into the chain.

use std::hint::black_box;

use chrono::{NaiveDate, TimeZone, Utc};
use cqrs_es::Aggregate;
use criterion::{criterion_group, criterion_main, Criterion};
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::{
    Account, AccountCommand, AccountEvent, Board, InstrumentInfo, MarketRules, MarketSnapshot, PlaceOrder, Side,
};
use ledger_eventstore::chain::{canonical_json, ChainedFields};
use ledger_eventstore::codec::encode;
use ledger_eventstore::{EventMetadata, StreamId};
use rust_decimal_macros::dec;

/// A full fill's `FillBooked`, as the account decides it.
fn fill() -> AccountEvent {
    let rules = MarketRules::china_a_share().expect("the built-in rules");
    let code = InstrumentCode::parse("601398.SH").expect("an id");
    let commands = [
        AccountCommand::Open {
            account_id: AccountId::parse("A0001").expect("an id"),
            customer_name: "Bench".to_owned(),
            id_number: "110101199001011234".to_owned(),
            risk_level: 3,
        },
        AccountCommand::Deposit {
            amount_cny: dec!(400000.00),
            bank_ref: BankRef::parse("B1").expect("an id"),
        },
        AccountCommand::PlaceOrder(PlaceOrder {
            order_id: OrderId::parse("O-1").expect("an id"),
            instrument: code.clone(),
            side: Side::Buy,
            quantity: 100,
            price: dec!(10.00),
            trade_date: NaiveDate::from_ymd_opt(2024, 3, 4).expect("a date"),
            market: MarketSnapshot {
                instrument: Some(InstrumentInfo {
                    code,
                    name: "ICBC".to_owned(),
                    board: Board::Main,
                    risk_level: 1,
                }),
                prev_close: Some(dec!(10.00)),
                day_closed: false,
            },
        }),
    ];
    let mut account = Account::default();
    for command in commands {
        for event in account.decide(command, &rules).expect("accepted") {
            account.apply(event);
        }
    }
    let fill = AccountCommand::BookFill {
        order_id: OrderId::parse("O-1").expect("an id"),
        exec_id: ExecId::parse("E-1").expect("an id"),
        quantity: 100,
        price: dec!(10.00),
    };
    let events = account.decide(fill, &rules).expect("the fill is accepted");
    events
        .into_iter()
        .find(|event| matches!(event, AccountEvent::FillBooked { .. }))
        .expect("a fill books FillBooked")
}

fn metadata() -> EventMetadata {
    EventMetadata {
        command_id: "c-1".to_owned(),
        correlation_id: "file-1".to_owned(),
        causation_id: "c-1".to_owned(),
        actor: "bench".to_owned(),
        recorded_at: Utc.with_ymd_and_hms(2024, 3, 4, 1, 30, 0).single().expect("a time"),
        business_date: NaiveDate::from_ymd_opt(2024, 3, 4),
    }
}

fn encoding(c: &mut Criterion) {
    let event = fill();
    c.bench_function("codec/encode_fill", |b| b.iter(|| black_box(encode(black_box(&event)))));
}

fn hashing(c: &mut Criterion) {
    let encoded = encode(&fill()).expect("the fill encodes");
    let stream = StreamId::new("Account", "A0001");
    let metadata = metadata();
    let prev_hash = "0".repeat(64);
    c.bench_function("chain/canonical_payload_and_hash", |b| {
        b.iter(|| {
            let payload = canonical_json(black_box(&encoded.payload));
            let fields = ChainedFields::of_new(41, &stream, 7, &encoded, &payload, &metadata, &prev_hash);
            black_box(fields.hash())
        })
    });
}

criterion_group!(benches, encoding, hashing);
criterion_main!(benches);
