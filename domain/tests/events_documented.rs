//! docs/events.md and the event types in step: every event the code can write is
//! documented under its aggregate, at the version the code writes and at every older
//! version the store still reads (1 to it), and the page documents no event the code
//! no longer has. The version the code writes is the current one of the store's table
//! (ledger-eventstore's versions.rs), which lists no event the code lacks.
//!
//! The variant lists come from strum's `VariantNames`, so a new variant fails
//! here until it has a sample (tests/common/samples.rs) and a row in docs/events.md.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::{Aggregate, DomainEvent};
use ledger_domain::account::AccountEvent;
use ledger_domain::{ClearingDay, ClearingDayEvent, Instrument, InstrumentEvent};
use ledger_eventstore::versions::{current_version, CURRENT_VERSIONS};
use strum::VariantNames;

mod common;
use common::samples::{account_samples, clearing_day_samples, instrument_samples};

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
        let current = current_version(&event_type)
            .unwrap_or_else(|| panic!("`{event_type}` is not in the store's table of versions"));
        assert_eq!(
            version,
            current.to_string(),
            "`{event_type}`: the code writes version {version}, the store's table says {current}"
        );
        let readable: BTreeSet<String> = (1..=current).map(|v| v.to_string()).collect();
        assert_eq!(
            versions, &readable,
            "docs/events.md documents `{event_type}` at versions {versions:?}; the store reads 1 to {current}, each needs its row"
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
fn the_store_knows_exactly_the_events_the_code_writes() {
    let written: BTreeSet<&str> = AccountEvent::VARIANTS
        .iter()
        .chain(InstrumentEvent::VARIANTS)
        .chain(ClearingDayEvent::VARIANTS)
        .copied()
        .collect();
    let known: BTreeSet<&str> = CURRENT_VERSIONS.iter().map(|(event_type, _)| *event_type).collect();
    assert_eq!(
        known, written,
        "ledger-eventstore's CURRENT_VERSIONS and the event enums"
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
