//! `GET /metrics` over real sockets, on every backend: commands counted by type and
//! outcome, request latency by route template (never a path with its ids), group-commit
//! batches, the queue and read-model gauges, open connections; the roles that may read
//! it; and the `--metrics-listen` address that serves it without a token.
//!
//! The recorder is global to the process and shared by every server the tests start, so
//! each test holds [`SERIAL`] and asserts differences between two scrapes.

#![allow(clippy::too_many_lines)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{account, bearer, deposit, start, Running, INSTRUMENT, TRADE_DATE};
use ledger_app::access::Role;
use ledger_server::ServerOptions;
use ledger_testkit::{TestDatabase, BACKENDS};

/// One test at a time: they read the same process-wide series.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One sample line: its name, its labels, its value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The sample lines of a Prometheus text page (label values here hold no quote or
/// backslash, but may hold braces: `/v1/accounts/{account_id}/balance`).
fn samples(text: &str) -> Vec<Sample> {
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("a sample line: {line}"));
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inside) = rest.strip_prefix('{') {
            rest = inside;
            loop {
                if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let rest_after_comma = rest.strip_prefix(',').unwrap_or(rest);
                let (key, value_start) = rest_after_comma.split_once("=\"").unwrap();
                let value_end = value_start.find('"').unwrap();
                labels.insert(key.to_owned(), value_start[..value_end].to_owned());
                rest = &value_start[value_end + 1..];
            }
        }
        let value = rest.trim().parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        found.push(Sample { name, labels, value });
    }
    found
}

/// The sum of the samples named `name` whose labels include `labels` (0 when none).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text)
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn has(text: &str, name: &str) -> bool {
    samples(text).iter().any(|s| s.name == name)
}

/// `GET /metrics` with `token` (none: no header); the status, the content type, the text.
async fn scrape_as(server: &Running, token: Option<&str>) -> (u16, String, String) {
    let mut request = server.anonymous.get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.header("authorization", bearer(token));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

async fn scrape(server: &Running) -> String {
    let (status, content_type, text) = scrape_as(server, Some(server.token(Role::Auditor))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    text
}

fn order(account: &str, id: &str) -> String {
    format!(
        r#"{{"type":"place_order","command_id":"{id}","account_id":"{account}","order_id":"{id}","instrument":"{INSTRUMENT}","side":"buy","quantity":100,"price":"5.29","trade_date":"{TRADE_DATE}"}}"#
    )
}

async fn counted_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    let mut setup = common::setup_lines(2);
    setup.push(deposit(&account(0), "100000.00", "B-metrics").replace('{', r#"{"command_id":"dep-0","#));
    for answer in server.batch(&setup).await {
        assert_eq!(answer["status"], "accepted", "{answer}");
    }
    let before = scrape(&server).await;

    let funded = account(0);
    for id in ["M-1", "M-2", "M-3"] {
        let answer = server.command(&order(&funded, id), None).await;
        assert_eq!(
            (answer.status, answer.str("status")),
            (200, "accepted"),
            "{:?}",
            answer.body
        );
    }
    let refused = server.command(&order(&account(1), "M-4"), None).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    let again = server.command(&order(&funded, "M-1"), None).await;
    assert_eq!(again.str("status"), "duplicate");
    let malformed = order(&funded, "M-5").replace(r#""quantity":100"#, r#""quantity":"many""#);
    let malformed = server.command(&malformed, None).await;
    assert_eq!((malformed.status, malformed.str("code")), (400, "malformed"));
    let reused = order(&funded, "M-1").replace(r#""quantity":100"#, r#""quantity":200"#);
    let reused = server.command(&reused, None).await;
    reused.assert_problem(409, "idempotency_key_reused");
    let answers = server
        .batch(&[r#"{"type":"fill","command_id":"F-bad","account_id":"H0000"}"#.to_owned()])
        .await;
    assert_eq!(
        answers[0]["code"], "malformed",
        "a batch's malformed line is counted too"
    );
    // Read after the writes reached the read models.
    let head = server.head().await;
    let read = server
        .get(
            Role::Operations,
            &format!("/v1/accounts/{funded}/balance?min_position={head}"),
        )
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let nowhere = server.get(Role::Operations, "/v1/nothing/H0000").await;
    assert_eq!(nowhere.status, 404);
    let after = scrape(&server).await;

    let commands = |text: &str, outcome: &str| {
        value(
            text,
            "ledger_commands_total",
            &[("command", "place_order"), ("outcome", outcome)],
        )
    };
    for (outcome, count) in [
        ("accepted", 3.0),
        ("rejected", 1.0),
        ("duplicate", 1.0),
        ("malformed", 1.0),
        ("key_reused", 1.0),
    ] {
        assert_eq!(
            commands(&after, outcome) - commands(&before, outcome),
            count,
            "{backend:?} place_order {outcome}"
        );
    }
    let fills = |text: &str| {
        value(
            text,
            "ledger_commands_total",
            &[("command", "fill"), ("outcome", "malformed")],
        )
    };
    assert_eq!(fills(&after) - fills(&before), 1.0);
    // Every command that reached the engine went through a group commit (the reused key
    // too, refused there); the wire's malformed ones did not.
    let batch_commands = |text: &str| value(text, "ledger_group_commit_batch_commands_sum", &[]);
    assert_eq!(batch_commands(&after) - batch_commands(&before), 6.0, "{backend:?}");
    let commits = |text: &str| value(text, "ledger_group_commit_duration_seconds_count", &[]);
    assert!(commits(&after) - commits(&before) >= 1.0);
    assert!(has(&after, "ledger_group_commit_duration_seconds_bucket"));

    // Latency by route template and status, never by the path with its ids.
    let requests = |text: &str, route: &str, status: &str| {
        value(
            text,
            "ledger_http_request_duration_seconds_count",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(
        requests(&after, "/v1/commands", "200") - requests(&before, "/v1/commands", "200"),
        4.0,
        "3 accepted, 1 duplicate"
    );
    assert_eq!(
        requests(&after, "/v1/commands", "422") - requests(&before, "/v1/commands", "422"),
        1.0
    );
    let balance = "/v1/accounts/{account_id}/balance";
    assert_eq!(
        requests(&after, balance, "200") - requests(&before, balance, "200"),
        1.0
    );
    assert!(requests(&after, "unmatched", "404") >= 1.0);
    let bucket = value(
        &after,
        "ledger_http_request_duration_seconds_bucket",
        &[("method", "GET"), ("route", balance), ("status", "200"), ("le", "+Inf")],
    );
    assert!(bucket >= 1.0, "the histogram has its buckets");
    assert!(!after.contains("H0000"), "no account id in any label");

    // The gauges: read when scraped.
    let head = server.head().await as f64;
    assert_eq!(value(&after, "ledger_log_head_position", &[]), head);
    assert_eq!(value(&after, "ledger_queue_depth_commands", &[]), 0.0);
    assert_eq!(
        value(&after, "ledger_queue_limit_commands", &[]),
        ledger_server::DEFAULT_QUEUE_COMMANDS as f64
    );
    assert!(has(&after, "ledger_read_models_lag_events"));
    assert!(has(&after, "ledger_read_models_position"));
    let lag = value(&after, "ledger_read_models_lag_events", &[]);
    assert_eq!(lag, head - value(&after, "ledger_read_models_position", &[]));
    assert!(
        value(&after, "ledger_http_open_connections", &[]) >= 1.0,
        "the scrape's own"
    );
    assert_eq!(value(&after, "ledger_access_log_dropped_entries_total", &[]), 0.0);
    for described in [
        "# TYPE ledger_commands_total counter",
        "# TYPE ledger_http_request_duration_seconds histogram",
        "# TYPE ledger_group_commit_batch_commands histogram",
        "# TYPE ledger_queue_depth_commands gauge",
        "# TYPE ledger_read_models_lag_events gauge",
        "# TYPE ledger_http_open_connections gauge",
    ] {
        assert!(after.contains(described), "{described}");
    }
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_commands_and_requests_and_show_the_gauges() {
    let _serial = SERIAL.lock().await;
    for backend in BACKENDS {
        counted_on(backend).await;
    }
}

#[tokio::test]
async fn metrics_need_an_operations_or_auditor_token() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::fresh(ledger_testkit::Backend::Sqlite).await;
    let server = start(&db, ServerOptions::default()).await;
    let (status, content_type, _) = scrape_as(&server, None).await;
    assert_eq!((status, content_type.as_str()), (401, "application/problem+json"));
    assert_eq!(scrape_as(&server, Some("lgr_not-a-token")).await.0, 401);
    for (role, expected) in [
        (Role::Gateway, 403),
        (Role::Operations, 200),
        (Role::Compliance, 403),
        (Role::Auditor, 200),
        (Role::Subscriber, 403),
    ] {
        let (status, _, text) = scrape_as(&server, Some(server.token(role))).await;
        assert_eq!(status, expected, "{role}: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_metrics_address_serves_them_without_a_token_and_nothing_else() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::fresh(ledger_testkit::Backend::Sqlite).await;
    let server = common::start_with_metrics_address(&db).await;
    let base = server.metrics_base.clone().unwrap();
    assert_ne!(base, server.base);
    let response = server.anonymous.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(has(&text, "ledger_queue_depth_commands"), "{text}");
    let health = server.anonymous.get(format!("{base}/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 404, "only /metrics on that address");
    let guarded = scrape_as(&server, None).await;
    assert_eq!(guarded.0, 401, "the API's address still wants a token");
    server.stop().await;
}

/// Polls the open-connections gauge until `wanted` holds, for at most 10 s.
async fn wait_for_open(server: &Running, wanted: impl Fn(f64) -> bool) -> f64 {
    let started = Instant::now();
    loop {
        let open = value(&scrape(server).await, "ledger_http_open_connections", &[]);
        if wanted(open) {
            return open;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "open connections stuck at {open}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn open_connections_count_a_connection_until_it_closes() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::fresh(ledger_testkit::Backend::Sqlite).await;
    let server = start(&db, ServerOptions::default()).await;
    // The scraping client's pooled connection is open from here on.
    let open = wait_for_open(&server, |_| true).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    wait_for_open(&server, |now| now == open + 1.0).await;
    drop(idle);
    wait_for_open(&server, |now| now == open).await;
    server.stop().await;
}
