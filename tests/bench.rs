//! `ledger bench http`: a short run answers every request it sends and prints its
//! figures; it never writes into a ledger that already holds events.

mod common;

use common::{ledger_ok, ledger_on, stderr, stdout};
use serde_json::Value;

/// A run short enough for CI: the figures are not asserted, only that every request
/// of the schedule was sent, answered and accounted for.
#[test]
fn a_short_run_sends_answers_and_counts_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let ran = common::ledger_in(
        dir.path(),
        &[
            "bench",
            "http",
            "--rate",
            "100",
            "--duration",
            "2",
            "--accounts",
            "7",
            "--json",
        ],
    );
    assert!(ran.status.success(), "{}", stderr(&ran));
    let result: Value = serde_json::from_str(stdout(&ran).trim()).unwrap();
    assert_eq!(result["offered"], 200);
    assert_eq!(result["not_sent"], 0);
    assert_eq!(result["answered"], 200);
    let endings = result["endings"].as_object().unwrap();
    let counted: u64 = endings.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(counted, 200, "every answer has one ending: {endings:?}");
    assert!(
        endings["accepted"].as_u64().unwrap() > 100,
        "orders are accepted: {endings:?}"
    );
    let orders = result["orders_ms"]["count"].as_u64().unwrap();
    let fills = result["fills_ms"]["count"].as_u64().unwrap();
    assert_eq!(orders + fills, 200);
    assert!(fills > 0, "fills follow orders");
    assert!(result["orders_ms"]["p50"].as_f64().unwrap() <= result["orders_ms"]["p99"].as_f64().unwrap());
    assert!(
        !dir.path().join("ledger.db").exists(),
        "a run without --db leaves no database behind"
    );
}

#[test]
fn it_refuses_a_ledger_that_holds_events_and_writes_nothing_there() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(
        &file,
        r#"{"type":"list_instrument","command_id":"c1","instrument":"601398.SH","name":"ICBC","board":"main","risk_level":1}"#,
    )
    .unwrap();
    ledger_ok(dir.path(), "held.db", &["exec", file.to_str().unwrap()]);
    let ran = ledger_on(
        dir.path(),
        "held.db",
        &["bench", "http", "--rate", "10", "--duration", "1"],
    );
    assert!(!ran.status.success());
    assert!(stderr(&ran).contains("needs an empty ledger"), "{}", stderr(&ran));
    let events = ledger_ok(dir.path(), "held.db", &["events", "--json"]);
    assert_eq!(stdout(&events).lines().count(), 1, "nothing written");
}

#[test]
fn a_rate_of_zero_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ran = common::ledger_in(dir.path(), &["bench", "http", "--rate", "0", "--duration", "1"]);
    assert_eq!(ran.status.code(), Some(2));
    assert!(stderr(&ran).contains("--rate"), "{}", stderr(&ran));
    assert!(!dir.path().join("ledger.db").exists());
}

#[test]
fn bench_stream_measures_both_consumers_on_a_nats_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let nats = common::nats::Nats::start(&dir.path().join("nats"));
    let args = [
        "bench",
        "stream",
        "--events",
        "300",
        "--rate",
        "20",
        "--duration",
        "1",
        "--json",
    ];
    let ran = common::ledger_command(dir.path())
        .args(args)
        .args(["--nats-url", &nats.url()])
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", stderr(&ran));
    let result: serde_json::Value = serde_json::from_str(stdout(&ran).trim()).unwrap();
    assert_eq!(result["events"], 300);
    assert_eq!(result["live_events"], 20, "one event per live deposit");
    for consumer in ["sse_latency_ms", "nats_latency_ms"] {
        assert_eq!(
            result[consumer]["count"], 20,
            "{consumer}: every live event received once: {result}"
        );
        assert!(result[consumer]["p50"].as_f64().unwrap() > 0.0, "{consumer}");
    }
    for rate in ["sse_catch_up_events_per_second", "relay_catch_up_events_per_second"] {
        assert!(result[rate].as_f64().unwrap() > 0.0, "{rate}");
    }
}
