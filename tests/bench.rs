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
        // Memory when the clock started (the set-up committed) is at most the peak.
        let at_clock = result["ledger_rss_at_clock_bytes"].as_u64().unwrap();
        assert!(
            at_clock > 0 && at_clock <= result["ledger_peak_rss_bytes"].as_u64().unwrap(),
            "{result}"
        );
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

/// `bench engine --workload demo` sends the demo's days, dealt to concurrent clients by
/// account: each command is decided as `ledger demo` decides it. The demo's own command
/// file, run in order by `ledger exec`, gives the same answers, line for line counted by
/// status, and a log of as many events; the bench's ledger verifies, on both backends.
#[tokio::test]
async fn bench_engine_sends_the_demo_days_and_every_answer_is_the_demos() {
    let dir = tempfile::tempdir().unwrap();
    let ran = ledger_on(
        dir.path(),
        "demo.db",
        &[
            "demo",
            "--accounts",
            "24",
            "--seed",
            "7",
            "--commands-out",
            "demo.jsonl",
        ],
    );
    assert!(ran.status.success(), "{}", stderr(&ran));
    let executed = ledger_on(dir.path(), "in-order.db", &["exec", "--json", "demo.jsonl"]);
    assert!(executed.status.success(), "{}", stderr(&executed));
    let mut expected_endings = serde_json::Map::new();
    for line in stdout(&executed).lines() {
        let answer: Value = serde_json::from_str(line).unwrap();
        let status = answer["status"].as_str().unwrap().to_owned();
        let count = expected_endings.entry(status).or_insert(Value::from(0));
        *count = Value::from(count.as_u64().unwrap() + 1);
    }
    let lines = stdout(&executed).lines().count() as u64;
    assert!(
        expected_endings.contains_key("rejected") && expected_endings.contains_key("duplicate"),
        "the demo's days hold refusals and resubmissions: {expected_endings:?}"
    );
    let in_order = ledger_ok(dir.path(), "in-order.db", &["verify", "--json"]);
    let in_order: Value = serde_json::from_str(stdout(&in_order).trim()).unwrap();

    for backend in ledger_testkit::BACKENDS {
        let db = ledger_testkit::TestDatabase::fresh(backend).await;
        let args = [
            "bench",
            "engine",
            "--workload",
            "demo",
            "--accounts",
            "24",
            "--seed",
            "7",
            "--clients",
            "5",
            "--json",
        ];
        let ran = ledger_on(dir.path(), &db.url, &args);
        assert!(ran.status.success(), "{backend:?}: {}", stderr(&ran));
        let result: Value = serde_json::from_str(stdout(&ran).trim()).unwrap();
        assert_eq!(result["workload"], "demo", "{result}");
        assert_eq!(result["ledger"]["commands"], lines, "{backend:?}: {result}");
        assert_eq!(
            result["ledger"]["endings"],
            Value::Object(expected_endings.clone()),
            "{backend:?}: each command answered as in order"
        );
        let verified = ledger_ok(dir.path(), &db.url, &["verify", "--json"]);
        let report: Value = serde_json::from_str(stdout(&verified).trim()).unwrap();
        assert_eq!(report["problems"].as_array().map(Vec::len), Some(0), "{report}");
        assert_eq!(report["events"], in_order["events"], "{backend:?}: {report}");
        assert_eq!(report["accounts"], in_order["accounts"], "{backend:?}: {report}");
    }
}

#[test]
fn bench_engine_refuses_what_the_demo_workload_does_not_take() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["--commands", "100"][..], "--commands is the shape workload's"),
        (
            &["--baseline-db", "postgres://postgres@127.0.0.1:5432/test"][..],
            "--workload shape only",
        ),
        (&["--accounts", "0"][..], "--accounts"),
    ] {
        let mut all = vec!["bench", "engine", "--workload", "demo"];
        all.extend_from_slice(args);
        let ran = common::ledger_in(dir.path(), &all);
        assert!(!ran.status.success(), "{args:?}");
        assert!(stderr(&ran).contains(says), "{args:?}: {}", stderr(&ran));
        assert!(!dir.path().join("ledger.db").exists(), "{args:?}: nothing written");
    }
}
