//! Clients that send slowly (slowloris): a connection that takes too long over its
//! headers is closed, one that takes too long over its body is answered 408
//! `request_timeout` with nothing written, and neither stops others being served; on
//! each backend.

mod common;

use std::time::{Duration, Instant};

use common::{bearer, start, Running};
use ledger_app::access::Role;
use ledger_server::ServerOptions;
use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The timeouts the test gives the server: short, so the test is quick.
const HEADER_READ_TIMEOUT_MS: u64 = 400;
const BODY_READ_TIMEOUT_MS: u64 = 400;
/// How long a slow client waits between two bytes.
const TRICKLE_MS: u64 = 100;
/// Longest the test waits for the server to act on a slow client.
const PATIENCE_MS: u64 = 5_000;

async fn slow_server(db: &TestDatabase) -> Running {
    let options = ServerOptions {
        header_read_timeout_ms: HEADER_READ_TIMEOUT_MS,
        body_read_timeout_ms: BODY_READ_TIMEOUT_MS,
        ..ServerOptions::default()
    };
    start(db, options).await
}

fn address(server: &Running) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or PATIENCE_MS pass); what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let began = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    while began.elapsed() < Duration::from_millis(PATIENCE_MS) {
        match tokio::time::timeout(Duration::from_millis(TRICKLE_MS), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_still_open) => {}
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), began.elapsed())
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_get_the_connection_closed() {
    for backend in BACKENDS {
        headers_sent_a_byte_at_a_time_get_the_connection_closed_on(backend).await;
    }
}

async fn headers_sent_a_byte_at_a_time_get_the_connection_closed_on(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = slow_server(&db).await;
    let mut slow = TcpStream::connect(address(&server)).await.unwrap();
    let trickle = async {
        for byte in b"GET /v1/health HTTP/1.1\r\nHost: ledger\r\nX-Slow: abcdefghijklmnopqrstuvwxyz" {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(TRICKLE_MS)).await;
        }
    };
    // While the slow client trickles, others are served.
    let (_, health) = tokio::join!(trickle, server.anonymous.get(server.url("/v1/health")).send());
    assert_eq!(health.unwrap().status(), 200);
    let (answer, waited) = read_until_closed(&mut slow).await;
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "a request whose headers never end is not answered as if whole: {answer}"
    );
    assert!(
        waited < Duration::from_millis(PATIENCE_MS),
        "the server closed the slow connection"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408_and_writes_nothing() {
    for backend in BACKENDS {
        a_body_that_does_not_arrive_in_time_is_a_408_and_writes_nothing_on(backend).await;
    }
}

async fn a_body_that_does_not_arrive_in_time_is_a_408_and_writes_nothing_on(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = slow_server(&db).await;
    let head_before = server.head().await;
    let body = r#"{"type":"deposit","command_id":"slow-1","account_id":"H0000","amount":"1.00","bank_ref":"S1"}"#;
    let mut slow = TcpStream::connect(address(&server)).await.unwrap();
    let headers = format!(
        "POST /v1/commands HTTP/1.1\r\nHost: ledger\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        bearer(server.token(Role::Operations)),
        body.len()
    );
    slow.write_all(headers.as_bytes()).await.unwrap();
    slow.write_all(&body.as_bytes()[..10]).await.unwrap();
    let (answer, _) = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert_eq!(server.head().await, head_before, "nothing written");
    server.stop().await;
}

#[tokio::test]
async fn health_counts_the_open_connections() {
    for backend in BACKENDS {
        health_counts_the_open_connections_on(backend).await;
    }
}

async fn health_counts_the_open_connections_on(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = slow_server(&db).await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(address(&server)).await.unwrap());
    }
    // The accept loop takes the connections in its own time.
    let began = Instant::now();
    let mut open = 0;
    while began.elapsed() < Duration::from_millis(PATIENCE_MS) {
        let health: serde_json::Value = server
            .anonymous
            .get(server.url("/v1/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        open = health["open_connections"].as_u64().unwrap();
        if open >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(open >= 6, "five idle connections and this one: {open}");
    drop(idle);
    server.stop().await;
}

/// A body announced far over its route's limit is refused 413 as soon as the limit is
/// passed: the server holds at most the route's own limit, never the whole announced
/// body, and does not wait for the rest to arrive.
#[tokio::test]
async fn a_body_over_its_routes_limit_is_refused_once_the_limit_is_passed() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let server = start(&db, ServerOptions::default()).await;
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    let head = format!(
        "POST /v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        bearer(server.token(Role::Operations))
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let past_the_limit = vec![b' '; ledger_server::MAX_COMMAND_BODY_BYTES + 4_096];
    stream.write_all(&past_the_limit).await.unwrap();
    let began = Instant::now();
    let mut answer = vec![0_u8; 4_096];
    let read = tokio::time::timeout(Duration::from_millis(PATIENCE_MS), stream.read(&mut answer))
        .await
        .expect("an answer without the rest of the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");
    assert!(began.elapsed() < Duration::from_millis(PATIENCE_MS));
    assert_eq!(server.head().await, 0, "nothing written");
    server.stop().await;
}
