//! `GET /v1/events/stream`, on both backends: a subscriber from the start while writers
//! append concurrently gets every position once and in order, equal to `GET
//! /v1/events`; a client that drops and resumes with `Last-Event-ID` misses nothing; a
//! filtered subscription resumes from its checkpoints; a token limited to an account
//! never gets another's events; a client that stops reading is ended `too_slow` with
//! where to resume; the roles of the matrix, and bad queries answered 400.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

mod common;

use std::time::Duration;

use common::{account, bearer, setup_lines, start, Running, LIMITED_ACCOUNT};
use ledger_app::access::Role;
use ledger_server::stream::StreamOptions;
use ledger_server::ServerOptions;
use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use serde_json::Value;

/// Longest a test waits for the next frame.
const FRAME_WAIT: Duration = Duration::from_secs(30);

/// One frame of the stream.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    event: String,
    id: Option<u64>,
    data: Value,
}

/// An open stream, read frame by frame.
struct Subscription {
    response: reqwest::Response,
    buffer: String,
}

impl Subscription {
    async fn open(server: &Running, token: &str, query: &str, last_event_id: Option<u64>) -> Subscription {
        let mut request = server
            .anonymous
            .get(server.url(&format!("/v1/events/stream{query}")))
            .header("authorization", bearer(token));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{query}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Subscription {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame; `None` when the server has ended the stream.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(frame) = parse(&block) {
                    return Some(frame);
                }
                continue;
            }
            let chunk = tokio::time::timeout(FRAME_WAIT, self.response.chunk())
                .await
                .expect("a frame within the wait")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Frames until `done` holds of the last one.
    async fn until(&mut self, done: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await.expect("the stream goes on");
            let stop = done(&frame);
            frames.push(frame);
            if stop {
                return frames;
            }
        }
    }
}

fn parse(block: &str) -> Option<Frame> {
    let (mut event, mut id, mut data) = ("message".to_owned(), None, String::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value.to_owned(),
            "id" => id = Some(value.parse().unwrap()),
            "data" => data.push_str(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| Frame {
        event,
        id,
        data: serde_json::from_str(&data).unwrap(),
    })
}

fn events(frames: &[Frame]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f.event == "message")
        .map(|f| f.data.clone())
        .collect()
}

/// Every event of the log as `GET /v1/events` shows it to `role`.
async fn log_as(server: &Running, role: Role) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = server.get(role, &format!("/v1/events?after={after}&limit=1000")).await;
        let events = page.body["events"].as_array().unwrap().clone();
        if events.is_empty() {
            return all;
        }
        after = page.body["next_after"].as_u64().unwrap();
        all.extend(events);
    }
}

fn deposits(prefix: &str, account: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            format!(
                r#"{{"type":"deposit","command_id":"{prefix}-{n}","account_id":"{account}","amount":"10.00","bank_ref":"{prefix}-B{n}"}}"#
            )
        })
        .collect()
}

async fn concurrent_writers_on(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    let mut subscription = Subscription::open(&server, server.token(Role::Subscriber), "", None).await;
    server.batch(&setup_lines(4)).await;
    let writers = (0..4).map(|w| {
        let lines = deposits(&format!("W{w}"), &account(w), 150);
        let server = &server;
        async move {
            for chunk in lines.chunks(10) {
                server.batch(chunk).await;
            }
        }
    });
    futures_util::future::join_all(writers).await;
    let head = server.head().await;
    assert_eq!(head, 2 + 4 + 4 * 150, "{backend:?}");
    let frames = subscription.until(|f| f.event == "message" && f.id == Some(head)).await;
    let received = events(&frames);
    let positions: Vec<u64> = received.iter().map(|e| e["position"].as_u64().unwrap()).collect();
    assert_eq!(
        positions,
        (1..=head).collect::<Vec<_>>(),
        "{backend:?}: each once, in order"
    );
    for frame in frames.iter().filter(|f| f.event == "message") {
        assert_eq!(frame.id, frame.data["position"].as_u64(), "id: is the position");
    }
    assert_eq!(
        received,
        log_as(&server, Role::Auditor).await,
        "{backend:?}: what /v1/events shows"
    );
    let opened = received
        .iter()
        .find(|e| e["type"] == "ledger.account.AccountOpened.v1")
        .unwrap();
    let masked = ledger_app::access::mask_name("Customer 0");
    assert_eq!(
        opened["data"]["customer_name"],
        masked.as_str(),
        "{backend:?}: masked for subscribers"
    );
    drop(subscription);
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_from_the_start_gets_every_event_of_concurrent_writers_once_in_order_on_sqlite() {
    concurrent_writers_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_subscriber_from_the_start_gets_every_event_of_concurrent_writers_once_in_order_on_postgres() {
    concurrent_writers_on(Backend::Postgres).await;
}

#[tokio::test]
async fn a_client_that_drops_and_resumes_with_last_event_id_misses_nothing() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let server = start(&db, ServerOptions::default()).await;
        server.batch(&setup_lines(2)).await;
        server.batch(&deposits("R", &account(0), 40)).await;
        let token = server.token(Role::Auditor);
        let mut first = Subscription::open(&server, token, "?from=3", None).await;
        let before = first.until(|f| f.id == Some(20)).await;
        drop(first);
        server.batch(&deposits("S", &account(1), 30)).await;
        let head = server.head().await;
        let mut second = Subscription::open(&server, token, "?from=3", Some(20)).await;
        let after = second.until(|f| f.event == "message" && f.id == Some(head)).await;
        let positions: Vec<u64> = events(&before)
            .iter()
            .chain(&events(&after))
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(
            positions,
            (3..=head).collect::<Vec<_>>(),
            "{backend:?}: `from` included, nothing missed"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_filtered_subscription_resumes_from_its_checkpoint_and_misses_none() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let server = start(&db, ServerOptions::default()).await;
        server.batch(&setup_lines(3)).await;
        server.batch(&deposits("F", &account(1), 5)).await;
        server.batch(&deposits("G", &account(2), 20)).await;
        let query = format!("?type=CashDeposited&account={}", account(1));
        let token = server.token(Role::Subscriber);
        let mut first = Subscription::open(&server, token, &query, None).await;
        let head = server.head().await;
        // The five deposits, then a checkpoint past the twenty of another account.
        let frames = first.until(|f| f.event == "checkpoint" && f.id == Some(head)).await;
        assert_eq!(events(&frames).len(), 5, "{backend:?}");
        assert!(events(&frames).iter().all(|e| e["subject"] == account(1).as_str()));
        assert_eq!(frames.last().unwrap().data["position"], head);
        drop(first);

        server.batch(&deposits("G2", &account(2), 10)).await;
        server.batch(&deposits("F2", &account(1), 3)).await;
        let mut second = Subscription::open(&server, token, &query, Some(head)).await;
        let later = second
            .until(|f| f.event == "message" && f.data["commandid"] == "F2-2")
            .await;
        let resumed = events(&later);
        assert_eq!(
            resumed.len(),
            3,
            "{backend:?}: only what came after the checkpoint: {resumed:?}"
        );
        let expected: Vec<Value> = log_as(&server, Role::Auditor)
            .await
            .into_iter()
            .filter(|e| e["type"] == "ledger.account.CashDeposited.v1" && e["subject"] == account(1).as_str())
            .collect();
        assert_eq!([events(&frames), resumed].concat(), expected, "{backend:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_token_limited_to_an_account_never_gets_another_accounts_events() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let server = start(&db, ServerOptions::default()).await;
        assert_eq!(LIMITED_ACCOUNT, account(0));
        server.batch(&setup_lines(2)).await;
        server.batch(&deposits("L0", &account(0), 5)).await;
        server.batch(&deposits("L1", &account(1), 5)).await;
        let head = server.head().await;
        let limited = server.limited_subscriber.clone();
        let mut subscription = Subscription::open(&server, &limited, "", None).await;
        let frames = subscription.until(|f| f.id == Some(head)).await;
        let received = events(&frames);
        assert_eq!(received.len(), 6, "{backend:?}: H0000's opening and five deposits");
        assert!(
            received
                .iter()
                .all(|e| e["subject"] == LIMITED_ACCOUNT && e["aggregatetype"] == "Account"),
            "{backend:?}: {received:?}"
        );
        let other = server
            .get_as(&limited, &format!("/v1/events/stream?account={}", account(1)))
            .await;
        other.assert_problem(403, "forbidden");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_ended_too_slow_with_where_to_resume() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let options = ServerOptions {
        streams: StreamOptions {
            buffer_frames: 8,
            slow_consumer_ms: 300,
            ..StreamOptions::default()
        },
        ..ServerOptions::default()
    };
    let server = start(&db, options).await;
    server.batch(&setup_lines(1)).await;
    // More than the kernel's socket buffers hold, so the server's buffer fills.
    for chunk in deposits("Z", &account(0), 20_000).chunks(1_000) {
        server.batch(chunk).await;
    }
    let head = server.head().await;
    let mut subscription = Subscription::open(&server, server.token(Role::Subscriber), "", None).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut frames = Vec::new();
    while let Some(frame) = subscription.next().await {
        frames.push(frame);
    }
    let end = frames.pop().expect("frames, then the end");
    assert_eq!(end.event, "end", "{end:?}");
    assert_eq!(end.data["reason"], "too_slow");
    let received: Vec<u64> = events(&frames)
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    let last = *received.last().unwrap();
    assert!(last < head, "the stream ended before the head ({last} of {head})");
    assert_eq!(received, (1..=last).collect::<Vec<_>>(), "no gap before the end");
    assert_eq!(end.data["resume_from"], last + 1);
    let mut resumed = Subscription::open(&server, server.token(Role::Subscriber), "", Some(last)).await;
    let next = resumed.next().await.unwrap();
    assert_eq!(next.id, Some(last + 1), "resuming where the end said");
    drop(resumed);
    server.stop().await;
}

#[tokio::test]
async fn streams_are_for_subscribers_and_auditors_and_bad_queries_are_400() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let server = start(&db, ServerOptions::default()).await;
    for role in [Role::Gateway, Role::Operations, Role::Compliance] {
        server
            .get(role, "/v1/events/stream")
            .await
            .assert_problem(403, "forbidden");
    }
    let subscriber = server.token(Role::Subscriber);
    for query in ["?from=x", "?from=-1", "?type=Nope", "?since=3"] {
        server
            .get_as(subscriber, &format!("/v1/events/stream{query}"))
            .await
            .assert_problem(400, "invalid_query");
    }
    let bad_id = server
        .anonymous
        .get(server.url("/v1/events/stream"))
        .header("authorization", bearer(subscriber))
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn a_graceful_stop_ends_every_stream_with_where_to_resume() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let mut server = start(&db, ServerOptions::default()).await;
    server.batch(&setup_lines(1)).await;
    let head = server.head().await;
    let mut subscription = Subscription::open(&server, server.token(Role::Auditor), "", None).await;
    subscription.until(|f| f.id == Some(head)).await;
    server.signal_stop();
    let end = subscription.next().await.expect("an end frame before the close");
    assert_eq!(end.event, "end");
    assert_eq!(end.data["reason"], "shutting_down");
    assert_eq!(end.data["resume_from"], head + 1);
    assert!(subscription.next().await.is_none(), "then the stream closes");
    tokio::time::timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server stops with a stream open");
}
