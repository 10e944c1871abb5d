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

/// `bench engine` on each backend: every command of the workload is answered
/// `accepted`, and the ledger it wrote holds exactly the workload's events and verifies.
/// With the `baseline` feature (CI builds with every feature), the stock cqrs-es stack
/// runs the same commands on PostgreSQL in the same run; without it, asking for the
/// baseline is refused with how to build it, before anything is written.
#[tokio::test]
async fn bench_engine_answers_every_command_and_writes_a_ledger_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = ledger_testkit::TestDatabase::fresh(ledger_testkit::Backend::Postgres).await;
    for backend in ledger_testkit::BACKENDS {
        let db = ledger_testkit::TestDatabase::fresh(backend).await;
        let args = [
            "bench",
            "engine",
            "--accounts",
            "12",
            "--commands",
            "150",
            "--clients",
            "5",
            "--json",
            "--baseline-db",
            &baseline.url,
        ];
        let ran = ledger_on(dir.path(), &db.url, &args);
        if !cfg!(feature = "baseline") {
            assert!(!ran.status.success());
            assert!(stderr(&ran).contains("--features baseline"), "{}", stderr(&ran));
            // An empty PostgreSQL schema lists no event; a SQLite file was not even created.
            let events = ledger_on(dir.path(), &db.url, &["events", "--json"]);
            assert_eq!(stdout(&events).trim(), "", "{backend:?}: nothing written");
            continue;
        }
        assert!(ran.status.success(), "{backend:?}: {}", stderr(&ran));
        let result: Value = serde_json::from_str(stdout(&ran).trim()).unwrap();
        for side in ["ledger", "baseline"] {
            assert_eq!(result[side]["commands"], 150, "{side}: {result}");
            assert_eq!(
                result[side]["endings"]["accepted"], 150,
                "{side}: every command accepted: {result}"
            );
            let latency = &result[side]["latency_ms"];
            assert!(
                latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap(),
                "{side}"
            );
        }
        assert!(result["ratio"].as_f64().unwrap() > 0.0);
        // 2 set-up commands, 12 openings and deposits, 63 buys and their fills: each
        // opening, deposit and buy is one event; a full fill is two (the fill, the order completed).
        let verified = ledger_ok(dir.path(), &db.url, &["verify", "--json"]);
        let report: Value = serde_json::from_str(stdout(&verified).trim()).unwrap();
        assert_eq!(report["problems"].as_array().map(Vec::len), Some(0), "{report}");
        assert_eq!(report["events"], 2 + 12 * 2 + 63 + 63 * 2, "{report}");
        assert_eq!(report["accounts"], 12, "{report}");
    }
}

#[test]
fn bench_engine_refuses_a_workload_it_cannot_build() {
    let dir = tempfile::tempdir().unwrap();
    let ran = common::ledger_in(dir.path(), &["bench", "engine", "--accounts", "10", "--commands", "19"]);
    assert!(!ran.status.success());
    assert!(stderr(&ran).contains("cannot open 10 accounts"), "{}", stderr(&ran));
}
