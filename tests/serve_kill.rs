//! kill -9 of `ledger serve` while 64 clients write, on every backend: after a restart,
//! every command that got an answer is in the log exactly once, clients resending the
//! same Idempotency-Key and body get the first outcome, and the log verifies.

#![allow(clippy::too_many_lines)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{ledger_on, serve, stderr, stdout, token};
use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;

/// Clients writing at once, each on its own account.
const CLIENTS: usize = 64;
/// Requests each client means to send: orders, each followed by its fill.
const REQUESTS_PER_CLIENT: usize = 40;
/// Answers received before the server is killed: the kill falls mid-run.
const KILL_AFTER_ANSWERS: usize = 400;
const INSTRUMENT: &str = "601398.SH";
const TRADE_DATE: &str = "2024-03-04";

fn account(client: usize) -> String {
    format!("K{client:04}")
}

/// The instrument, its previous close, and each client's account with cash.
fn setup_lines() -> Vec<String> {
    let mut lines = vec![
        format!(
            r#"{{"type":"list_instrument","command_id":"setup-list","instrument":"{INSTRUMENT}","name":"ICBC","board":"main","risk_level":1}}"#
        ),
        format!(
            r#"{{"type":"set_prev_close","command_id":"setup-close","instrument":"{INSTRUMENT}","trade_date":"{TRADE_DATE}","price":"5.29"}}"#
        ),
    ];
    for c in 0..CLIENTS {
        let account = account(c);
        lines.push(format!(r#"{{"type":"open_account","command_id":"setup-open-{c}","account_id":"{account}","customer_name":"Client {c}","id_number":"K{c:017}","risk_level":3}}"#));
        lines.push(format!(r#"{{"type":"deposit","command_id":"setup-dep-{c}","account_id":"{account}","amount":"1000000.00","bank_ref":"KB{c}"}}"#));
    }
    lines
}

/// Request `k` of client `c`, as (Idempotency-Key, body): even ones place an order,
/// odd ones fill it; every tenth order is too dear and refused (an outcome too).
fn request(c: usize, k: usize) -> (String, String) {
    let account = account(c);
    let order = k / 2;
    let quantity = if order % 10 == 9 { 900_000 } else { 100 };
    let body = if k.is_multiple_of(2) {
        format!(
            r#"{{"type":"place_order","account_id":"{account}","order_id":"O{c}-{order}","instrument":"{INSTRUMENT}","side":"buy","quantity":{quantity},"price":"5.29","trade_date":"{TRADE_DATE}"}}"#
        )
    } else {
        format!(
            r#"{{"type":"fill","account_id":"{account}","order_id":"O{c}-{order}","exec_id":"E{c}-{order}","quantity":100,"price":"5.29"}}"#
        )
    };
    (format!("kill-{c}-{k}"), body)
}

/// An answer: the status code and the JSON body.
type Answer = (u16, Value);

async fn send(client: &reqwest::Client, base: &str, token: &str, key: &str, body: &str) -> Option<Answer> {
    let response = client
        .post(format!("{base}/v1/commands"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body = serde_json::from_str::<Value>(&response.text().await.ok()?).ok()?;
    Some((status, body))
}

/// Sends client `c`'s requests in order until one gets no answer (the server is gone).
async fn write_until_killed(base: String, token: String, c: usize, answered: Arc<AtomicUsize>) -> Vec<Option<Answer>> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for k in 0..REQUESTS_PER_CLIENT {
        let (key, body) = request(c, k);
        let answer = send(&client, &base, &token, &key, &body).await;
        let lost = answer.is_none();
        answers.push(answer);
        if lost {
            break;
        }
        answered.fetch_add(1, Ordering::Relaxed);
    }
    answers
}

/// Resends every request client `c` meant to send, in order, with the same keys.
async fn resend_all(base: String, token: String, c: usize) -> Vec<Answer> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for k in 0..REQUESTS_PER_CLIENT {
        let (key, body) = request(c, k);
        let answer = send(&client, &base, &token, &key, &body).await;
        answers.push(answer.expect("the restarted server answers"));
    }
    answers
}

/// The outcome a command ended with, whichever answer said it: `accepted` or `rejected`.
fn final_status(answer: &Answer) -> &str {
    let (_, body) = answer;
    match body["status"].as_str() {
        Some("duplicate") => body["first_status"].as_str().unwrap_or(""),
        Some(status) => status,
        None => "",
    }
}

async fn kill_mid_run_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (operations, gateway) = (token(dir.path(), "operations"), token(dir.path(), "gateway"));

    let mut first = serve(dir.path(), &db.url);
    let base = format!("http://{}", first.address);
    let setup = reqwest::Client::new()
        .post(format!("{base}/v1/commands/batch"))
        .bearer_auth(&operations)
        .header("content-type", "application/x-ndjson")
        .body(setup_lines().join("\n"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(setup.lines().all(|l| l.contains(r#""status":"accepted""#)), "{setup}");

    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(write_until_killed(
                base.clone(),
                gateway.clone(),
                c,
                Arc::clone(&answered),
            ))
        })
        .collect();
    while answered.load(Ordering::Relaxed) < KILL_AFTER_ANSWERS {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.child.kill().unwrap(); // SIGKILL: no graceful stop, no flush.
    first.child.wait().unwrap();
    let mut before = Vec::new();
    for client in clients {
        before.push(client.await.unwrap());
    }
    let lost = before
        .iter()
        .filter(|answers| answers.last().is_some_and(Option::is_none))
        .count();
    assert!(lost > 0, "the kill fell while clients were writing");

    let second = serve(dir.path(), &db.url);
    let base = format!("http://{}", second.address);
    let resenders: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(resend_all(base.clone(), gateway.clone(), c)))
        .collect();
    let mut outcomes = HashMap::new();
    for (c, resender) in resenders.into_iter().enumerate() {
        for (k, again) in resender.await.unwrap().into_iter().enumerate() {
            let key = request(c, k).0;
            match before[c].get(k).cloned().flatten() {
                Some(first) => {
                    assert_eq!(again.0, 200, "{key}: a resent command is a duplicate: {again:?}");
                    assert_eq!(again.1["status"], "duplicate", "{key}: {again:?}");
                    assert_eq!(final_status(&again), first.1["status"], "{key}: the first outcome");
                    assert_eq!(again.1["first_code"], first.1["code"], "{key}: the first code");
                }
                None => assert!(
                    matches!(final_status(&again), "accepted" | "rejected"),
                    "{key}: a command that got no answer is decided once on resending: {again:?}"
                ),
            }
            outcomes.insert(key, again);
        }
    }
    second.stop();

    let logged = ledger_testkit::events_by_command(ledger_app::open_store(&db.url).await.unwrap().as_ref()).await;
    let acknowledged: Vec<_> = before
        .iter()
        .enumerate()
        .flat_map(|(c, answers)| {
            answers
                .iter()
                .enumerate()
                .filter_map(move |(k, answer)| answer.clone().map(|a| (request(c, k).0, a)))
        })
        .collect();
    assert!(acknowledged.len() >= KILL_AFTER_ANSWERS);
    for (key, (status, body)) in &acknowledged {
        if *status == 200 && body["status"] == "accepted" {
            assert_eq!(
                logged.get(key),
                body["events"].as_u64().as_ref(),
                "{key}: in the log exactly once"
            );
        } else {
            assert_eq!(*status, 422, "{key}: {body}");
            assert!(!logged.contains_key(key), "{key}: a refusal writes nothing");
        }
    }
    let accepted = outcomes.values().filter(|a| final_status(a) == "accepted").count();
    let setup_ids = 2 + 2 * CLIENTS;
    assert_eq!(
        logged.len(),
        setup_ids + accepted,
        "the log holds the accepted commands and nothing else"
    );
    let verified = ledger_on(dir.path(), &db.url, &["verify"]);
    assert!(verified.status.success(), "{}{}", stdout(&verified), stderr(&verified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_while_64_clients_write_loses_and_repeats_nothing() {
    for backend in BACKENDS {
        kill_mid_run_on(backend).await;
    }
}
