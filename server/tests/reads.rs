//! The read routes over real sockets, on every backend: a client reads its own writes
//! with `min_position`; every route answers what the log holds, personal data masked
//! by role; a token limited to accounts reads only those; bad queries are problems.

#![allow(clippy::too_many_lines)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{account, deposit, setup_lines, start, Answer, Running, INSTRUMENT, LIMITED_ACCOUNT, TRADE_DATE};
use ledger_app::access::{mask_id_number, mask_name, Role};
use ledger_server::ServerOptions;
use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;

use Role::{Auditor, Compliance, Operations};

/// Writes read back at once, each through `min_position`.
const ROUNDS: usize = 30;

async fn setup(server: &Running, accounts: usize) {
    for answer in server.batch(&setup_lines(accounts)).await {
        assert_eq!(answer["status"], "accepted", "{answer}");
    }
}

fn order(account: &str, order_id: &str) -> String {
    format!(
        r#"{{"type":"place_order","account_id":"{account}","order_id":"{order_id}","instrument":"{INSTRUMENT}","side":"buy","quantity":100,"price":"5.29","trade_date":"{TRADE_DATE}"}}"#
    )
}

fn fill(account: &str, order_id: &str, exec_id: &str) -> String {
    format!(
        r#"{{"type":"fill","account_id":"{account}","order_id":"{order_id}","exec_id":"{exec_id}","quantity":100,"price":"5.29"}}"#
    )
}

/// Sends a command that must be accepted; its last position.
async fn accepted(server: &Running, body: &str, key: &str) -> u64 {
    let answer = server.command(body, Some(key)).await;
    assert_eq!(
        (answer.status, answer.str("status")),
        (200, "accepted"),
        "{:?}",
        answer.body
    );
    answer.body["last_position"].as_u64().unwrap()
}

async fn read_your_writes_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    setup(&server, 2).await;
    // A second runner beside the server's (as `ledger balances` on the same database
    // would be): the two race for batches, and neither fails.
    let beside = ledger_app::open_store(&db.url).await.unwrap();
    let racing = Arc::new(AtomicBool::new(true));
    let still = Arc::clone(&racing);
    let other_runner = tokio::spawn(async move {
        let mut passes = 0_u64;
        while still.load(Ordering::SeqCst) {
            ledger_app::catch_up_read_models(beside.as_ref(), |_| {}).await.unwrap();
            passes += 1;
        }
        passes
    });
    let a = account(0);
    for round in 1..=ROUNDS {
        let body = deposit(&a, "100.00", &format!("RYW{round}"));
        let position = accepted(&server, &body, &format!("ryw-{round}")).await;
        let path = format!("/v1/accounts/{a}/balance?min_position={position}");
        let balance = server.get(Operations, &path).await;
        assert_eq!(balance.status, 200, "{:?}", balance.body);
        assert_eq!(
            balance.str("available"),
            format!("{}.00", 100 * round),
            "round {round} reads its own deposit"
        );
    }
    // An account opened a moment ago is there to read, not 404.
    let open = r#"{"type":"open_account","account_id":"H0007","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#;
    let position = accepted(&server, open, "ryw-open").await;
    let balance = server
        .get(
            Operations,
            &format!("/v1/accounts/H0007/balance?min_position={position}"),
        )
        .await;
    assert_eq!(
        (balance.status, balance.str("available")),
        (200, "0.00"),
        "{:?}",
        balance.body
    );

    racing.store(false, Ordering::SeqCst);
    assert!(other_runner.await.unwrap() > 0);

    let health = Answer::of(server.anonymous.get(server.url("/v1/health")).send().await.unwrap()).await;
    let reached = health.body["read_models_position"].as_u64().unwrap();
    let head = health.body["head_position"].as_u64().unwrap();
    assert!(reached >= position && reached <= head, "{:?}", health.body);
    assert_eq!(health.body["read_models_lag_events"].as_u64(), Some(head - reached));
    // A graceful stop applies the last commit to the read models before it returns.
    let last = accepted(&server, &deposit(&a, "1.00", "RYW-LAST"), "ryw-last").await;
    let store = Arc::clone(&server.store);
    server.stop().await;
    assert_eq!(ledger_app::read_models_checkpoint(store.as_ref()).await.unwrap(), last);
}

async fn behind_on(backend: ledger_testkit::Backend) {
    use ledger_testkit::faults::{Fault, FaultyStore, StoreCall};

    let db = TestDatabase::fresh(backend).await;
    let inner = ledger_app::open_store(&db.url).await.unwrap();
    // While `stalled`, the log cannot be read after a position: the runner cannot catch up.
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stalled);
    let plan = Box::new(move |call: StoreCall| {
        if call == StoreCall::ReadAfter && flag.load(Ordering::SeqCst) {
            Fault::BeforeCommit
        } else {
            Fault::Pass
        }
    });
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&inner), plan));
    let server = common::start_on(faulty, ServerOptions::default()).await;
    setup(&server, 1).await;
    stalled.store(true, Ordering::SeqCst);
    // Another process writes a deposit the server's runner cannot read yet.
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    let mut other = ledger_app::Ledger::new(Arc::clone(&inner), Arc::clone(&rules));
    let line = deposit(&account(0), "7.00", "BEHIND");
    let line = format!(r#"{{"command_id":"behind",{}"#, &line[1..]);
    let request = ledger_app::read_command_line(line.as_bytes(), 1, "other", &rules).unwrap();
    ledger_app::submit_requests(&mut other, &[request]).await.unwrap();
    let head = inner.head_position().await.unwrap();

    let started = Instant::now();
    let path = format!("/v1/accounts/{}/balance?min_position={head}", account(0));
    let behind = server.get(Operations, &path).await;
    behind.assert_problem(503, "read_models_behind");
    assert_eq!(behind.retry_after.as_deref(), Some("1"));
    assert!(started.elapsed() >= Duration::from_millis(ledger_server::MAX_MIN_POSITION_WAIT_MS));
    assert!(
        behind.str("detail").contains(&format!("not yet {head}")),
        "{:?}",
        behind.body
    );
    let health = Answer::of(server.anonymous.get(server.url("/v1/health")).send().await.unwrap()).await;
    assert!(
        health.body["read_models_lag_events"].as_u64().unwrap() >= 1,
        "{:?}",
        health.body
    );

    // Readable again: the runner's next poll catches up, and the same read answers.
    stalled.store(false, Ordering::SeqCst);
    let balance = server.get(Operations, &path).await;
    assert_eq!(
        (balance.status, balance.str("available")),
        (200, "7.00"),
        "{:?}",
        balance.body
    );
    server.stop().await;
}

#[tokio::test]
async fn a_read_past_the_wait_says_the_read_models_are_behind() {
    for backend in BACKENDS {
        behind_on(backend).await;
    }
}

#[tokio::test]
async fn a_client_reads_its_own_writes_with_min_position() {
    for backend in BACKENDS {
        read_your_writes_on(backend).await;
    }
}

/// The rows of a page, and its `next_after`.
fn rows(answer: &Answer) -> (Vec<Value>, Value) {
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    (
        answer.body["rows"].as_array().unwrap().clone(),
        answer.body["next_after"].clone(),
    )
}

async fn routes_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    setup(&server, 3).await;
    let (a0, a1) = (account(0), account(1));
    accepted(&server, &deposit(&a0, "600000.00", "BIG"), "big").await;
    accepted(&server, &deposit(&a1, "100000.00", "B1"), "b1").await;
    accepted(&server, &order(&a1, "O1"), "o1").await;
    accepted(&server, &fill(&a1, "O1", "E1"), "e1").await;
    let head = accepted(&server, &order(&a1, "O2"), "o2").await;
    let at = |path: &str| {
        let joiner = if path.contains('?') { '&' } else { '?' };
        format!("{path}{joiner}min_position={head}")
    };

    let positions = server
        .get(Compliance, &at(&format!("/v1/accounts/{a1}/positions")))
        .await;
    assert_eq!(positions.status, 200, "{:?}", positions.body);
    assert_eq!(positions.body[0]["instrument"], INSTRUMENT);
    assert_eq!(positions.body[0]["quantity"], 100);
    let none = server.get(Compliance, &format!("/v1/accounts/{a0}/positions")).await;
    assert_eq!(none.body, serde_json::json!([]));

    // Balances, two pages and an empty one.
    let (page, next) = rows(&server.get(Auditor, &at("/v1/balances?limit=2")).await);
    assert_eq!(page.len(), 2);
    assert_eq!(
        (page[0]["account_id"].as_str(), next.as_str()),
        (Some("H0000"), Some("H0001"))
    );
    let (page, next) = rows(&server.get(Auditor, "/v1/balances?after=H0001&limit=2").await);
    assert_eq!((page.len(), next.as_str()), (1, Some("H0002")));
    let (page, next) = rows(&server.get(Auditor, "/v1/balances?after=H0002").await);
    assert!(page.is_empty() && next.is_null());

    let (page, next) = rows(&server.get(Operations, &at("/v1/positions?limit=1")).await);
    assert_eq!(page.len(), 1);
    let key = format!("{a1},{INSTRUMENT}");
    assert_eq!(next.as_str(), Some(key.as_str()));
    let (page, _) = rows(&server.get(Operations, &format!("/v1/positions?after={key}")).await);
    assert!(page.is_empty());

    // The blotter's filters.
    let (page, next) = rows(
        &server
            .get(Operations, &at(&format!("/v1/orders?account={a1}&status=open")))
            .await,
    );
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!(
        (page[0]["order_id"].as_str(), page[0]["status"].as_str()),
        (Some("O2"), Some("open"))
    );
    assert_eq!(next.as_str(), Some("H0001,O2"));
    let (page, _) = rows(&server.get(Operations, "/v1/orders?status=filled").await);
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!(
        (page[0]["order_id"].as_str(), page[0]["status"].as_str()),
        (Some("O1"), Some("filled"))
    );
    let (page, _) = rows(&server.get(Operations, "/v1/orders?status=canceled").await);
    assert!(page.is_empty());
    let (page, _) = rows(
        &server
            .get(Operations, &format!("/v1/orders?date={TRADE_DATE}&limit=1"))
            .await,
    );
    assert_eq!(page[0]["order_id"], "O1");
    let (page, _) = rows(&server.get(Operations, "/v1/orders?after=H0001,O1").await);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["order_id"], "O2");
    let (page, next) = rows(
        &server
            .get(Compliance, &at(&format!("/v1/trades?account={a1}&date={TRADE_DATE}")))
            .await,
    );
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["exec_id"], "E1");
    let after = next.as_str().unwrap().to_owned();
    let (page, _) = rows(&server.get(Compliance, &format!("/v1/trades?after={after}")).await);
    assert!(page.is_empty());

    let clearing = server.get(Operations, &at(&format!("/v1/clearing/{TRADE_DATE}"))).await;
    assert_eq!(clearing.status, 200, "{:?}", clearing.body);
    assert_eq!(clearing.body["day_status"], "trading");
    assert_eq!(clearing.body["report"]["total"]["trades"], 1);

    let (alerts, _) = rows(&server.get(Compliance, &at("/v1/compliance/alerts")).await);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "large_cash_movement");
    assert_eq!(alerts[0]["account_id"], a0.as_str());
    assert_eq!(alerts[0]["amount_cny"], "600000.00");

    events_are_masked(&server).await;
    statements(&server).await;
    verify_job(&server).await;
    server.stop().await;
}

/// The auditor reads the log with customers' names and id numbers masked.
async fn events_are_masked(server: &Running) {
    let page = server.get(Auditor, "/v1/events?after=0&limit=1000").await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let events = page.body["events"].as_array().unwrap();
    assert_eq!(page.body["next_after"], events.last().unwrap()["position"]);
    let opened: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "ledger.account.AccountOpened.v1")
        .collect();
    assert_eq!(opened.len(), 3);
    for (i, event) in opened.iter().enumerate() {
        let name = format!("Customer {i}");
        let id_number = format!("11010519491231{i:04}");
        assert_eq!(event["data"]["customer_name"], mask_name(&name));
        assert_eq!(event["data"]["id_number"], mask_id_number(&id_number));
        assert!(!page.body.to_string().contains(&id_number), "no id number in full");
    }
    // Each event's fields in the order of `ledger events --json`.
    let raw = server
        .anonymous
        .get(server.url("/v1/events?limit=1"))
        .header("authorization", common::bearer(server.token(Auditor)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        raw.starts_with(r#"{"events":[{"specversion":"1.0","id":"1","source":"/ledger","type":"#),
        "{raw}"
    );
    let (first, second) = (
        server.get(Auditor, "/v1/events?after=0&limit=1").await,
        server.get(Auditor, "/v1/events?after=1&limit=1").await,
    );
    assert_eq!(first.body["next_after"], 1);
    assert_eq!(second.body["events"][0]["position"], 2);
}

/// A statement in each format; the name in full for operations, masked for auditors.
async fn statements(server: &Running) {
    let a1 = account(1);
    for (format, content_type) in [("csv", "text/csv; charset=utf-8"), ("html", "text/html; charset=utf-8")] {
        for (role, name) in [
            (Operations, "Customer 1".to_owned()),
            (Auditor, mask_name("Customer 1")),
        ] {
            let path = format!("/v1/accounts/{a1}/statement?from={TRADE_DATE}&to={TRADE_DATE}&format={format}");
            let response = server
                .anonymous
                .get(server.url(&path))
                .header("authorization", common::bearer(server.token(role)))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], content_type);
            let text = response.text().await.unwrap();
            assert!(text.contains(&name), "{role} {format}: {name} in {text}");
            if role == Auditor {
                assert!(!text.contains("Customer 1"), "{role} {format}: the name is masked");
            }
            if format == "json" {
                let statement: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(statement["customer_name"], name.as_str());
                assert_eq!(statement["id_number_masked"], mask_id_number("110105194912310001"));
                assert_eq!(statement["account_id"], a1.as_str());
            }
        }
    }
}

/// `verify` runs as a job the auditor starts and reads.
async fn verify_job(server: &Running) {
    let response = server
        .anonymous
        .post(server.url("/v1/verify"))
        .header("authorization", common::bearer(server.token(Auditor)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let job = Answer::of(response).await;
    assert_eq!(location, format!("/v1/verify/{}", job.body["job_id"]));
    let started = Instant::now();
    loop {
        let job = server.get(Auditor, &location).await;
        assert_eq!(job.status, 200, "{:?}", job.body);
        match job.str("state") {
            "running" => {}
            "done" => {
                assert_eq!(job.body["report"]["problem_count"], 0, "{:?}", job.body);
                assert!(job.body["report"]["events"].as_u64().unwrap() > 0);
                break;
            }
            other => panic!("verify job {other}: {:?}", job.body),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "verify never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
        .get(Auditor, "/v1/verify/99")
        .await
        .assert_problem(404, "unknown_job");
}

#[tokio::test]
async fn every_read_route_answers_what_the_log_holds() {
    for backend in BACKENDS {
        routes_on(backend).await;
    }
}

async fn limited_and_bad_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    setup(&server, 2).await;
    let head = server.head().await;

    // A token limited to H0000 reads H0000, and nothing that spans other accounts.
    let limited = server.limited_auditor.clone();
    let own = server
        .get_as(
            &limited,
            &format!("/v1/accounts/{LIMITED_ACCOUNT}/balance?min_position={head}"),
        )
        .await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    let (page, _) = rows(
        &server
            .get_as(&limited, &format!("/v1/orders?account={LIMITED_ACCOUNT}"))
            .await,
    );
    assert!(page.is_empty());
    for path in [
        "/v1/accounts/H0001/balance".to_owned(),
        "/v1/accounts/H0001/positions".to_owned(),
        "/v1/orders?account=H0001".to_owned(),
        "/v1/balances".to_owned(),
        "/v1/orders".to_owned(),
        "/v1/trades".to_owned(),
        "/v1/events".to_owned(),
        format!("/v1/clearing/{TRADE_DATE}"),
    ] {
        server.get_as(&limited, &path).await.assert_problem(403, "forbidden");
    }

    // Bad queries are problems with a stable code; nothing is written.
    let bad = [
        ("/v1/clearing/2024-13-01", 400, "invalid_query"),
        ("/v1/clearing/yesterday", 400, "invalid_query"),
        ("/v1/balances?limit=0", 400, "invalid_query"),
        ("/v1/balances?limit=1001", 400, "invalid_query"),
        ("/v1/balances?limit=-1", 400, "invalid_query"),
        ("/v1/positions?after=H0001", 400, "invalid_query"),
        ("/v1/orders?status=done", 400, "invalid_query"),
        ("/v1/orders?date=2024-3-4", 400, "invalid_query"),
        ("/v1/trades?after=x", 400, "invalid_query"),
        ("/v1/events?limit=1001", 400, "invalid_query"),
        ("/v1/balances?min_position=x", 400, "invalid_query"),
        ("/v1/balances?min_position=99999999999999999999", 400, "invalid_query"),
        ("/v1/balances?min_position=1000000", 400, "min_position_beyond_head"),
        ("/v1/accounts/H0009/balance", 404, "unknown_account"),
        ("/v1/accounts/H0009/positions", 404, "unknown_account"),
        (
            "/v1/accounts/H0009/statement?from=2024-03-04&to=2024-03-04",
            404,
            "unknown_account",
        ),
        (
            "/v1/accounts/H0001/statement?from=2024-03-04&to=2024-03-04&format=doc",
            400,
            "invalid_query",
        ),
        (
            "/v1/accounts/H0001/statement?from=2024-03-05&to=2024-03-04",
            400,
            "invalid_query",
        ),
        ("/v1/accounts/H0001/statement?to=2024-03-04", 400, "invalid_query"),
        ("/v1/verify/x", 400, "invalid_query"),
    ];
    for (path, status, code) in bad {
        let role = if path.starts_with("/v1/events") || path.starts_with("/v1/verify") {
            Auditor
        } else {
            Operations
        };
        let answer = server.get(role, path).await;
        assert_eq!(
            (answer.status, answer.str("code")),
            (status, code),
            "{path}: {:?}",
            answer.body
        );
        answer.assert_problem(status, code);
    }
    // A key past every position the log can hold is an empty page, not a failure.
    for path in [
        "/v1/trades?after=9223372036854775808",
        "/v1/trades?after=18446744073709551615",
    ] {
        let answer = server.get(Operations, path).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        assert_eq!(answer.body["rows"], serde_json::json!([]), "{path}");
    }
    assert_eq!(server.head().await, head, "a read writes nothing");
    server.stop().await;
}

/// POSTs a reconciliation's JSON as `role`.
async fn reconcile(server: &Running, role: Role, body: &str) -> Answer {
    let response = server
        .anonymous
        .post(server.url("/v1/reconciliation"))
        .header("authorization", common::bearer(server.token(role)))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    Answer::of(response).await
}

fn files(trade_date: &str, bank: &str, depository: &str) -> String {
    serde_json::json!({"trade_date": trade_date, "bank_csv": bank, "depository_csv": depository}).to_string()
}

async fn reconciliation_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    setup(&server, 2).await;
    let a1 = account(1);
    accepted(&server, &deposit(&a1, "100000.00", "B1"), "b1").await;
    accepted(&server, &order(&a1, "O1"), "o1").await;
    accepted(&server, &fill(&a1, "O1", "E1"), "e1").await;
    let (header_bank, header_depository) = ("account,balance\n", "account,instrument,quantity\n");
    let not_closed = reconcile(&server, Operations, &files(TRADE_DATE, header_bank, header_depository)).await;
    not_closed.assert_problem(409, "day_not_closed");
    let eod = format!(r#"{{"type":"end_of_day","trade_date":"{TRADE_DATE}"}}"#);
    accepted(&server, &eod, "eod").await;

    // The files the bank and the depository send when they agree with the ledger.
    let ours = ledger_app::ledger_at_close(server.store.as_ref(), common::date(TRADE_DATE))
        .await
        .unwrap();
    let (mut bank, mut depository) = (Vec::new(), Vec::new());
    ledger_app::write_agreeing_files(&ours, &mut bank, &mut depository).unwrap();
    let (bank, depository) = (String::from_utf8(bank).unwrap(), String::from_utf8(depository).unwrap());
    let agreed = reconcile(&server, Auditor, &files(TRADE_DATE, &bank, &depository)).await;
    assert_eq!(agreed.status, 200, "{:?}", agreed.body);
    assert_eq!(agreed.body["breaks"], serde_json::json!([]));
    assert_eq!(agreed.body["as_of_position"], ours.cut.position);

    // A bank balance one yuan off is a break.
    let line = bank.lines().find(|l| l.starts_with(&a1)).unwrap().to_owned();
    let (_, balance) = line.split_once(',').unwrap();
    let off: rust_decimal::Decimal = balance.parse::<rust_decimal::Decimal>().unwrap() + rust_decimal::Decimal::ONE;
    let bank_off = bank.replace(&line, &format!("{a1},{off:.2}"));
    let broken = reconcile(&server, Operations, &files(TRADE_DATE, &bank_off, &depository)).await;
    assert_eq!(broken.status, 200, "{:?}", broken.body);
    let breaks = broken.body["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 1, "{breaks:?}");
    assert_eq!(
        (breaks[0]["kind"].as_str(), breaks[0]["account_id"].as_str()),
        (Some("cash_differs"), Some(a1.as_str()))
    );
    // The stored breaks read back as the run answered them; a date never reconciled has none.
    let stored = server.get(Auditor, &format!("/v1/reconciliation/{TRADE_DATE}")).await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    assert_eq!(stored.body["trade_date"], TRADE_DATE);
    assert_eq!(stored.body["breaks"], broken.body["breaks"]);
    let never = server.get(Operations, "/v1/reconciliation/2024-03-05").await;
    assert_eq!(never.body["breaks"], serde_json::json!([]), "{:?}", never.body);
    server
        .get(Operations, "/v1/reconciliation/2024-3-5")
        .await
        .assert_problem(400, "invalid_query");

    let head = server.head().await;
    let bad_line = reconcile(
        &server,
        Operations,
        &files(TRADE_DATE, "account,balance\nH0001,lots\n", &depository),
    )
    .await;
    bad_line.assert_problem(400, "invalid_input");
    let unknown_field = reconcile(
        &server,
        Operations,
        r#"{"trade_date":"2024-03-04","bank_csv":"","depository_csv":"","x":1}"#,
    )
    .await;
    unknown_field.assert_problem(400, "invalid_json");
    let bad_date = reconcile(&server, Operations, &files("2024-3-4", &bank, &depository)).await;
    bad_date.assert_problem(400, "invalid_query");
    reconcile(&server, Compliance, &files(TRADE_DATE, &bank, &depository))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(server.head().await, head, "a reconciliation writes no event");
    server.stop().await;
}

#[tokio::test]
async fn a_reconciliation_compares_the_files_with_the_close() {
    for backend in BACKENDS {
        reconciliation_on(backend).await;
    }
}

#[tokio::test]
async fn limited_tokens_and_bad_queries() {
    for backend in BACKENDS {
        limited_and_bad_on(backend).await;
    }
}
