//! The log's per-event work, each measured alone (`cargo bench -p ledger-eventstore`):
//! a domain event encoded to its stored payload, and that payload written canonically
//! and hashed into the chain.

use std::hint::black_box;

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::ids::{ExecId, InstrumentCode, OrderId};
use ledger_domain::{AccountEvent, Side};
use ledger_eventstore::chain::{canonical_json, ChainedFields};
use ledger_eventstore::codec::encode;
use ledger_eventstore::{EventMetadata, StreamId};
use rust_decimal_macros::dec;

/// A full fill's `FillBooked`: the values an account decides for a buy of 100 @ 10.00
/// on the main board under the built-in fee schedule (`ledger exec` writes the same).
fn fill() -> AccountEvent {
    AccountEvent::FillBooked {
        order_id: OrderId::parse("O-1").expect("an id"),
        exec_id: ExecId::parse("E-1").expect("an id"),
        instrument: InstrumentCode::parse("601398.SH").expect("an id"),
        side: Side::Buy,
        trade_date: NaiveDate::from_ymd_opt(2024, 3, 4).expect("a date"),
        quantity: 100,
        price: dec!(10.00),
        value_cny: dec!(1000.00),
        fees: FeeBreakdown {
            commission_cny: dec!(5.00),
            stamp_duty_cny: dec!(0.00),
            transfer_fee_cny: dec!(0.01),
            handling_fee_cny: dec!(0.03),
            regulatory_fee_cny: dec!(0.02),
        },
        reserve_used_cny: dec!(1005.06),
        available_change_cny: dec!(0.00),
        unsettled_change_cny: dec!(0.00),
    }
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
