//! The hash chain is pinned: the same input must keep giving the same events,
//! byte for byte, across refactorings of the code that writes them.
//!
//! A change that alters an event's bytes on purpose (a new field, a new
//! version) updates the pinned hashes here in the same commit and says why;
//! any other change must leave them as they are.

use std::path::Path;

mod common;
use common::ledger_ok;

// Changed on purpose three times. First, every event carried its business date in the
// hashed bytes (docs/events.md, "Business dates"); before that the heads were
// 19e05208…e3d9 and a065c12e…8291 (the latter is still the old log of tests/fixtures,
// which is never rewritten). Then every amount and price of a new event got its one
// spelling, two decimals and no negative zero (docs/events.md, "Amounts and prices"),
// so that a file run in parts gives the chain of one run; before that the heads were
// 5f0cad4d…5d95 and 9ff1f9ec…2029. Then `OrderPlaced` went to version 2
// (docs/events.md, "Versioning"): a new order is stored with `event_version` 2 and
// `order_type: "limit"`, both hashed; before that the heads were b6b49c4a…8ad4 and
// 70d48e15…78c0, which the new logs still give when their `OrderPlaced` events are
// written back as version 1 without `order_type` (nothing else changed).
/// Head hash of `ledger demo --accounts 100 --seed 7`.
const DEMO_100_SEED_7_HEAD: &str = "bb1f84be7ca7c9953a00a9d52e0bc37d9a3f215d04796204188884d75ed258f5";
/// Head hash of the worked example run with `--recorded-at 2024-03-04T01:30:00Z`.
const TWO_DAYS_HEAD: &str = "7b2a5e1688480e08b5b5a0f15a077566fb9d9fe309625bb77cdb74e6bc4a1610";

fn head_hash(dir: &Path, db: &str) -> String {
    let verified = ledger_ok(dir, db, &["verify"]);
    let text = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert!(text.contains("OK:"), "{text}");
    text.lines()
        .find_map(|line| line.strip_prefix("head hash "))
        .unwrap_or_else(|| panic!("verify names the head hash: {text}"))
        .to_owned()
}

#[test]
fn the_demo_with_a_fixed_seed_ends_on_the_pinned_head_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    ledger_ok(dir.path(), &db, &["demo", "--accounts", "100", "--seed", "7"]);
    assert_eq!(head_hash(dir.path(), &db), DEMO_100_SEED_7_HEAD);
}

#[test]
fn the_worked_example_ends_on_the_pinned_head_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("two-days.db").display());
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    let file = file.to_str().expect("the repository path is UTF-8");
    ledger_ok(
        dir.path(),
        &db,
        &["exec", file, "--recorded-at", "2024-03-04T01:30:00Z"],
    );
    assert_eq!(head_hash(dir.path(), &db), TWO_DAYS_HEAD);
}
