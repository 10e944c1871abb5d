//! docs/events.md and the event types in step: every event the code can write is
//! documented under its aggregate, at the version the code writes, and the page
//! documents no event the code no longer has.
//!
//! The variant lists come from strum's `VariantNames`, so a new variant fails
//! here until it has a sample below and a row in docs/events.md.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::{Aggregate, DomainEvent};
use ledger_domain::account::{AccountEvent, CashDirection};
use ledger_domain::fees::FeeBreakdown;
use ledger_domain::ids::InstrumentCode;
use ledger_domain::{Board, ClearingDay, ClearingDayEvent, Instrument, InstrumentEvent, InstrumentInfo, Side};
use rust_decimal_macros::dec;
use strum::VariantNames;

mod common;
use common::*;

/// Event name -> the versions documented for it, per aggregate type.
type Documented = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn events_md() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Reads the tables of the page: a section `## Name (`aggregate_type` = `Name`, …)`,
/// a header `| event (vN) | …`, then one row `| `EventName` | …` per event.
fn documented(page: &str) -> Documented {
    let mut documented = Documented::new();
    let mut aggregate: Option<String> = None;
    let mut version: Option<String> = None;
    for line in page.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            aggregate = heading
                .split_once("(`aggregate_type` = `")
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(name, _)| name.to_owned());
            version = None;
        } else if let Some(header) = line.strip_prefix("| event (v") {
            version = header.split_once(')').map(|(v, _)| v.to_owned());
        } else if let (Some(aggregate), Some(version), Some(row)) = (&aggregate, &version, line.strip_prefix("| `")) {
            let name = row.split_once('`').map(|(name, _)| name).unwrap_or_default();
            documented
                .entry(aggregate.clone())
                .or_default()
                .entry(name.to_owned())
                .or_default()
                .insert(version.clone());
        }
    }
    documented
}

fn account_samples() -> Vec<AccountEvent> {
    let order = || oid("O1");
    vec![
        opened(),
        deposited(dec!(100.00), "DEP-1"),
        withdrawal_requested(dec!(10.00), "W-1"),
        AccountEvent::WithdrawalConfirmed {
            amount_cny: dec!(10.00),
            bank_ref: bref("W-1"),
        },
        AccountEvent::WithdrawalFailed {
            amount_cny: dec!(10.00),
            bank_ref: bref("W-2"),
        },
        AccountEvent::LargeCashMovementFlagged {
            direction: CashDirection::Deposit,
            amount_cny: dec!(500000.00),
            threshold_cny: dec!(500000.00),
            bank_ref: bref("DEP-2"),
        },
        placed("O1", Side::Buy, 100, dec!(10.00), dec!(1005.06)),
        AccountEvent::OrderRejected {
            order_id: order(),
            reason: "exchange says no".into(),
            released_cny: dec!(0),
            released_shares: 0,
        },
        buy_filled(
            "O1",
            "E1",
            100,
            dec!(10.00),
            dec!(1000.00),
            FeeBreakdown::default(),
            dec!(1000.00),
        ),
        completed("O1", dec!(0)),
        AccountEvent::CancelRequested { order_id: order() },
        AccountEvent::OrderCanceled {
            order_id: order(),
            released_cny: dec!(0),
            released_shares: 0,
        },
        AccountEvent::OrderExpired {
            order_id: order(),
            trade_date: today(),
            released_cny: dec!(0),
            released_shares: 0,
        },
        settled(today(), dec!(0)),
        frozen(),
        AccountEvent::AccountUnfrozen { reason: "done".into() },
    ]
}

fn instrument_samples() -> Vec<InstrumentEvent> {
    let info = InstrumentInfo {
        code: InstrumentCode::parse("600000.SH").unwrap(),
        name: "Pudong Bank".into(),
        board: Board::Main,
        risk_level: 2,
    };
    vec![
        InstrumentEvent::InstrumentListed(info.clone()),
        InstrumentEvent::InstrumentUpdated(info),
        InstrumentEvent::PrevCloseSet {
            trade_date: today(),
            price: dec!(10.00),
        },
    ]
}

fn clearing_day_samples() -> Vec<ClearingDayEvent> {
    let trade_date = today();
    vec![
        ClearingDayEvent::DayClosed { trade_date },
        ClearingDayEvent::DayCleared { trade_date },
        ClearingDayEvent::DaySettled { trade_date },
    ]
}

/// Every variant has a sample; each sample's type is documented under `aggregate_type`
/// at the version it is written with; the page has no event beyond the variants.
fn check<E: DomainEvent>(documented: &Documented, aggregate_type: &str, variants: &[&str], samples: &[E]) {
    let sampled: BTreeSet<String> = samples.iter().map(DomainEvent::event_type).collect();
    let variants: BTreeSet<String> = variants.iter().map(|v| (*v).to_owned()).collect();
    assert_eq!(
        sampled, variants,
        "{aggregate_type}: every event variant needs one sample here"
    );
    let Some(section) = documented.get(aggregate_type) else {
        panic!("docs/events.md has no section for aggregate_type `{aggregate_type}`");
    };
    for sample in samples {
        let (event_type, version) = (sample.event_type(), sample.event_version());
        let Some(versions) = section.get(&event_type) else {
            panic!("docs/events.md does not document {aggregate_type} event `{event_type}`");
        };
        assert!(
            versions.contains(&version),
            "docs/events.md documents `{event_type}` as version {versions:?}, the code writes version {version}"
        );
    }
    let stale: Vec<&String> = section.keys().filter(|name| !variants.contains(*name)).collect();
    assert!(
        stale.is_empty(),
        "docs/events.md documents {aggregate_type} events the code lacks: {stale:?}"
    );
}

#[test]
fn every_event_is_documented_at_its_version() {
    let documented = documented(&events_md());
    check(
        &documented,
        ledger_domain::Account::TYPE,
        AccountEvent::VARIANTS,
        &account_samples(),
    );
    check(
        &documented,
        Instrument::TYPE,
        InstrumentEvent::VARIANTS,
        &instrument_samples(),
    );
    check(
        &documented,
        ClearingDay::TYPE,
        ClearingDayEvent::VARIANTS,
        &clearing_day_samples(),
    );
}

#[test]
fn the_reader_finds_the_tables_and_their_versions() {
    let page = "## Account (`aggregate_type` = `Account`, id = x)\n\n| event (v1) | fields |\n|---|---|\n\
                | `AccountOpened` | `account_id` |\n\n## Versioning\n\n| `NotAnEvent` | x |\n";
    let documented = documented(page);
    assert_eq!(documented.len(), 1);
    assert_eq!(documented["Account"]["AccountOpened"], BTreeSet::from(["1".to_owned()]));
    assert_eq!(documented["Account"].len(), 1);
}
