//! The server over real sockets, on every backend: 64 clients at once, idempotency
//! keys, and bad input answered with a problem document and nothing written.

#![allow(clippy::too_many_lines)]

mod common;

use std::sync::Arc;

use common::{account, assert_verifies, deposit, events_by_command, start, Answer, Running, INSTRUMENT, TRADE_DATE};
use ledger_server::ServerOptions;
use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;

/// Clients sending at once, each its own account.
const CLIENTS: usize = 64;
/// Orders (each with its fill) per client.
const ORDERS_PER_CLIENT: usize = 4;

/// One client's requests, in order: a deposit, then orders each followed by its fill,
/// an order the ledger refuses (too dear), and one request sent twice.
async fn client_run(server: Arc<Running>, client: usize) -> Vec<(String, Answer)> {
    let account = account(client);
    let mut sent = Vec::new();
    let send = |key: String, body: String| {
        let server = Arc::clone(&server);
        async move {
            let answer = server.command(&body, Some(&key)).await;
            (key, answer)
        }
    };
    sent.push(
        send(
            format!("dep-{client}"),
            deposit(&account, "100000.00", &format!("B{client}")),
        )
        .await,
    );
    for k in 0..ORDERS_PER_CLIENT {
        let order = format!(
            r#"{{"type":"place_order","account_id":"{account}","order_id":"O{client}-{k}","instrument":"{INSTRUMENT}","side":"buy","quantity":100,"price":"5.29","trade_date":"{TRADE_DATE}"}}"#
        );
        sent.push(send(format!("ord-{client}-{k}"), order).await);
        let fill = format!(
            r#"{{"type":"fill","account_id":"{account}","order_id":"O{client}-{k}","exec_id":"E{client}-{k}","quantity":100,"price":"5.29"}}"#
        );
        sent.push(send(format!("fill-{client}-{k}"), fill).await);
    }
    let too_dear = format!(
        r#"{{"type":"place_order","account_id":"{account}","order_id":"OX{client}","instrument":"{INSTRUMENT}","side":"buy","quantity":100000,"price":"5.29","trade_date":"{TRADE_DATE}"}}"#
    );
    sent.push(send(format!("dear-{client}"), too_dear).await);
    let again = deposit(&account, "100000.00", &format!("B{client}"));
    sent.push(send(format!("dep-{client}"), again).await);
    sent
}

async fn concurrent_clients_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = Arc::new(start(&db, ServerOptions::default()).await);
    let setup = server.batch(&common::setup_lines(CLIENTS)).await;
    assert!(setup.iter().all(|a| a["status"] == "accepted"), "{setup:?}");

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client_run(Arc::clone(&server), c)))
        .collect();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }

    let logged = events_by_command(server.store.as_ref()).await;
    let mut accepted = 0;
    for (key, answer) in &answers {
        assert_eq!(answer.content_type, "application/json", "{key}: {:?}", answer.body);
        assert_eq!(answer.body["command_id"], key.as_str());
        match answer.str("status") {
            "accepted" => {
                assert_eq!(answer.status, 200, "{key}");
                let events = answer.body["events"].as_u64().unwrap();
                assert!(events > 0);
                assert_eq!(logged.get(key), Some(&events), "{key}: its events are in the log once");
                accepted += 1;
            }
            "duplicate" => {
                assert_eq!(answer.status, 200, "{key}");
                assert!(key.starts_with("dep-"), "only the resent deposit is a duplicate: {key}");
                assert_eq!(answer.body["first_status"], "accepted");
            }
            "rejected" => {
                assert_eq!(answer.status, 422, "{key}");
                assert!(
                    key.starts_with("dear-"),
                    "only the dear order is refused: {key} {:?}",
                    answer.body
                );
                assert!(!logged.contains_key(key), "a refusal writes no event");
            }
            other => panic!("{key}: unexpected status {other}"),
        }
    }
    assert_eq!(
        accepted,
        CLIENTS * (1 + 2 * ORDERS_PER_CLIENT),
        "every deposit, order and fill accepted"
    );
    // Nothing in the log that no answer acknowledged: setup and acknowledged commands only.
    let setup_ids = 2 + CLIENTS;
    assert_eq!(
        logged.len(),
        setup_ids + accepted,
        "every logged command is an acknowledged one"
    );
    let outcomes = server
        .store
        .find_outcomes(&answers.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>())
        .await
        .unwrap();
    for (key, answer) in &answers {
        let outcome = &outcomes[key];
        let first = if answer.str("status") == "duplicate" {
            answer.body["first_status"].clone()
        } else {
            answer.body["status"].clone()
        };
        assert_eq!(
            Value::from(outcome.status.as_str()),
            first,
            "{key}: the recorded outcome is the answered one"
        );
    }
    assert_verifies(server.store.as_ref()).await;
    let health: Value = server
        .client
        .get(server.url("/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["head_position"], server.head().await);
    assert_eq!(health["queue_depth_commands"], 0);
    Arc::into_inner(server).expect("every client is done").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_at_once_every_acknowledged_command_logged_once() {
    for backend in BACKENDS {
        concurrent_clients_on(backend).await;
    }
}

async fn idempotency_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    server.batch(&common::setup_lines(1)).await;
    let account = account(0);

    let first = server.command(&deposit(&account, "500.00", "R1"), Some("key-1")).await;
    assert_eq!(
        (first.status, first.str("status")),
        (200, "accepted"),
        "{:?}",
        first.body
    );
    assert_eq!(first.body["line"], 1);
    let head = server.head().await;

    // The same body, keys reordered, spaced differently, command_id in the body too.
    let same = format!(
        r#"{{ "bank_ref": "R1", "amount": "500.00", "command_id": "key-1", "account_id": "{account}", "type": "deposit" }}"#
    );
    for key in [Some("key-1"), None] {
        let again = server.command(&same, key).await;
        assert_eq!(
            (again.status, again.str("status")),
            (200, "duplicate"),
            "{:?}",
            again.body
        );
        assert_eq!(again.body["first_status"], "accepted");
        assert_eq!(again.body["first_position"], first.body["first_position"]);
    }

    let other = server.command(&deposit(&account, "900.00", "R1"), Some("key-1")).await;
    other.assert_problem(409, "idempotency_key_reused");

    let body_key = r#"{"type":"deposit","command_id":"key-3","account_id":"H0000","amount":"1.00","bank_ref":"R3"}"#;
    server
        .command(body_key, Some("key-2"))
        .await
        .assert_problem(400, "idempotency_key_mismatch");
    server
        .command(&deposit(&account, "1.00", "R4"), None)
        .await
        .assert_problem(400, "missing_idempotency_key");

    // A refusal is an outcome: 422, and the same request again is its duplicate.
    let refused = server
        .command(
            r#"{"type":"withdraw","account_id":"H0000","amount":"99999.00","bank_ref":"W1"}"#,
            Some("key-w"),
        )
        .await;
    assert_eq!(
        (refused.status, refused.str("status")),
        (422, "rejected"),
        "{:?}",
        refused.body
    );
    assert!(!refused.str("code").is_empty());
    let refused_again = server
        .command(
            r#"{"type":"withdraw","account_id":"H0000","amount":"99999.00","bank_ref":"W1"}"#,
            Some("key-w"),
        )
        .await;
    assert_eq!((refused_again.status, refused_again.str("status")), (200, "duplicate"));
    assert_eq!(refused_again.body["first_status"], "rejected");

    // A malformed command is answered, never recorded: its key stays free.
    let malformed = server
        .command(
            r#"{"type":"deposit","account_id":"H0000","amount":"1.00","bank_ref":"R5","extra":1}"#,
            Some("key-5"),
        )
        .await;
    assert_eq!(
        (malformed.status, malformed.str("code")),
        (400, "malformed"),
        "{:?}",
        malformed.body
    );
    assert_eq!(malformed.content_type, "application/json");
    let corrected = server.command(&deposit(&account, "1.00", "R5"), Some("key-5")).await;
    assert_eq!(
        (corrected.status, corrected.str("status")),
        (200, "accepted"),
        "{:?}",
        corrected.body
    );

    // The binding of key and body outlives the server.
    let head_before_restart = server.head().await;
    assert_eq!(
        head_before_restart,
        head + 1,
        "only the corrected deposit was written since"
    );
    server.stop().await;
    let server = start(&db, ServerOptions::default()).await;
    server
        .command(&deposit(&account, "900.00", "R1"), Some("key-1"))
        .await
        .assert_problem(409, "idempotency_key_reused");
    let replay = server.command(&deposit(&account, "500.00", "R1"), Some("key-1")).await;
    assert_eq!((replay.status, replay.str("status")), (200, "duplicate"));

    // In a batch, a reused key is that line's answer.
    let answers = server
        .batch(&[
            r#"{"type":"deposit","command_id":"key-1","account_id":"H0000","amount":"7.00","bank_ref":"R1"}"#
                .to_owned(),
            r#"{"type":"deposit","command_id":"key-6","account_id":"H0000","amount":"7.00","bank_ref":"R6"}"#
                .to_owned(),
            "not json".to_owned(),
        ])
        .await;
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["code"], "idempotency_key_reused");
    assert_eq!(answers[1]["status"], "accepted");
    assert_eq!(
        (answers[2]["line"].clone(), answers[2]["code"].clone()),
        (Value::from(3), Value::from("malformed"))
    );
    assert_eq!(server.head().await, head_before_restart + 1);
    assert_verifies(server.store.as_ref()).await;
    server.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_names_one_body_across_restarts() {
    for backend in BACKENDS {
        idempotency_on(backend).await;
    }
}

#[tokio::test]
async fn bad_requests_are_problems_and_write_nothing() {
    let db = TestDatabase::fresh(ledger_testkit::Backend::Sqlite).await;
    let server = start(&db, ServerOptions::default()).await;
    server.batch(&common::setup_lines(1)).await;
    let head = server.head().await;
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        server
            .client
            .post(server.url(path))
            .header("content-type", content_type.to_owned())
            .header("idempotency-key", "bad-1")
            .body(body)
    };
    let problem = |request: reqwest::RequestBuilder| async move { Answer::of(request.send().await.unwrap()).await };

    problem(post(
        "/v1/commands",
        "application/json",
        b"{\"type\": \"deposit\",".to_vec(),
    ))
    .await
    .assert_problem(400, "invalid_json");
    // A number no JSON reader holds (not even as a float) makes the body unreadable.
    let huge = r#"{"type":"place_order","account_id":"H0000","order_id":"O1","instrument":"601398.SH","side":"buy","quantity":1e400,"price":"5.29","trade_date":"2024-03-04"}"#;
    problem(post("/v1/commands", "application/json", huge.as_bytes().to_vec()))
        .await
        .assert_problem(400, "invalid_json");
    problem(post(
        "/v1/commands",
        "application/json",
        vec![b' '; ledger_server::MAX_COMMAND_BODY_BYTES + 1],
    ))
    .await
    .assert_problem(413, "too_large");
    problem(post(
        "/v1/commands",
        "text/plain",
        deposit("H0000", "1.00", "X").into_bytes(),
    ))
    .await
    .assert_problem(415, "unsupported_media_type");
    problem(post("/v1/commands/batch", "application/json", b"{}".to_vec()))
        .await
        .assert_problem(415, "unsupported_media_type");
    let too_many = vec!["{}"; ledger_server::MAX_BATCH_REQUEST_LINES + 1].join("\n") + "\n";
    let batch = server
        .client
        .post(server.url("/v1/commands/batch"))
        .header("content-type", "application/x-ndjson")
        .body(too_many);
    problem(batch).await.assert_problem(413, "too_large");
    // A full batch ending in a newline is not one line too many: every line is answered.
    let full = vec!["{}"; ledger_server::MAX_BATCH_REQUEST_LINES].join("\n") + "\n";
    let answers = server
        .client
        .post(server.url("/v1/commands/batch"))
        .header("content-type", "application/x-ndjson")
        .body(full)
        .send()
        .await
        .unwrap();
    assert_eq!(answers.status(), 200);
    assert_eq!(
        answers.text().await.unwrap().lines().count(),
        ledger_server::MAX_BATCH_REQUEST_LINES
    );
    problem(post("/v1/commands/batch", "application/x-ndjson", b"{}".to_vec()))
        .await
        .assert_problem(400, "idempotency_key_not_allowed");
    problem(server.client.get(server.url("/v1/nothing-here")))
        .await
        .assert_problem(404, "not_found");
    problem(server.client.get(server.url("/v1/commands")))
        .await
        .assert_problem(405, "method_not_allowed");

    // JSON, but not a command: the answer object of a malformed line, 400.
    for body in [
        r#"{"type":"deposit","account_id":"H0000","amount":"1.00","bank_ref":"X","surprise":true}"#.to_owned(),
        r#"{"type":"place_order","account_id":"H0000","order_id":"O1","instrument":"601398.SH","side":"buy","quantity":184467440737095516160000,"price":"5.29","trade_date":"2024-03-04"}"#.to_owned(),
        deposit("H0000", "99999999999999999999999999999.00", "X"),
        r#"[1, 2]"#.to_owned(),
        r#"{"type":"teleport","account_id":"H0000"}"#.to_owned(),
    ] {
        let answer = problem(post("/v1/commands", "application/json", body.clone().into_bytes())).await;
        assert_eq!((answer.status, answer.str("code")), (400, "malformed"), "{body}: {:?}", answer.body);
        assert_eq!(answer.body["status"], "rejected");
    }
    assert_eq!(server.head().await, head, "nothing was written");
    // Nothing bound the key either: a good command under it is accepted.
    let good = server.command(&deposit("H0000", "1.00", "X"), Some("bad-1")).await;
    assert_eq!((good.status, good.str("status")), (200, "accepted"), "{:?}", good.body);

    let served = server.client.get(server.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "application/json");
    assert_eq!(served.text().await.unwrap(), ledger_server::openapi_json());
    server.stop().await;
}
