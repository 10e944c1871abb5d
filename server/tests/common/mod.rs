//! A real server on 127.0.0.1:0 over a test database, and a reqwest client for it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use ledger_app::access::{may, new_token, Action, CommandType, Role, TokenEntry, TokenHash, Tokens};
use ledger_app::EventStore;
use ledger_server::{Server, ServerOptions};
use ledger_testkit::TestDatabase;
use serde_json::Value;
use tokio::sync::oneshot;

/// A running server; `stop` shuts it down gracefully and waits for it.
pub struct Running {
    pub base: String,
    pub store: Arc<dyn EventStore>,
    /// Sends the operations token unless a request names another.
    pub client: reqwest::Client,
    /// Sends no token.
    pub anonymous: reqwest::Client,
    /// A token of each role, named after it (`gateway`, …), every account.
    pub tokens: BTreeMap<Role, String>,
    /// A gateway token named [`LIMITED_GATEWAY`], limited to [`LIMITED_ACCOUNT`].
    pub limited_gateway: String,
    /// An auditor token named [`LIMITED_AUDITOR`], limited to [`LIMITED_ACCOUNT`].
    pub limited_auditor: String,
    /// A subscriber token named [`LIMITED_SUBSCRIBER`], limited to [`LIMITED_ACCOUNT`].
    pub limited_subscriber: String,
    /// `http://HOST:PORT` of the `--metrics-listen` address, when the server has one.
    pub metrics_base: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ledger_server::ServerError>>,
}

pub async fn start(db: &TestDatabase, options: ServerOptions) -> Running {
    start_on(ledger_app::open_store(&db.url).await.unwrap(), options).await
}

/// The name of the limited gateway token.
pub const LIMITED_GATEWAY: &str = "gateway-limited";
/// The name of the limited auditor token.
pub const LIMITED_AUDITOR: &str = "auditor-limited";
/// The name of the limited subscriber token.
pub const LIMITED_SUBSCRIBER: &str = "subscriber-limited";
/// The one account the limited tokens may act on or read.
pub const LIMITED_ACCOUNT: &str = "H0000";

fn entry(name: &str, role: Role, token: &str, accounts: Option<Vec<String>>) -> TokenEntry {
    TokenEntry {
        name: name.to_owned(),
        role,
        sha256: TokenHash::of(token),
        accounts,
        created_at: chrono::Utc::now(),
    }
}

/// The limited tokens: gateway, auditor and subscriber.
struct Limited {
    gateway: String,
    auditor: String,
    subscriber: String,
}

/// A token per role (named after its role) and the limited tokens.
fn test_tokens() -> (Tokens, BTreeMap<Role, String>, Limited) {
    use strum::IntoEnumIterator;
    let mut entries = Vec::new();
    let mut tokens = BTreeMap::new();
    for role in Role::iter() {
        let token = new_token().unwrap();
        entries.push(entry(&role.to_string(), role, &token, None));
        tokens.insert(role, token);
    }
    let limited = new_token().unwrap();
    let accounts = Some(vec![LIMITED_ACCOUNT.to_owned()]);
    entries.push(entry(LIMITED_GATEWAY, Role::Gateway, &limited, accounts.clone()));
    let limited_auditor = new_token().unwrap();
    entries.push(entry(
        LIMITED_AUDITOR,
        Role::Auditor,
        &limited_auditor,
        accounts.clone(),
    ));
    let limited_subscriber = new_token().unwrap();
    entries.push(entry(
        LIMITED_SUBSCRIBER,
        Role::Subscriber,
        &limited_subscriber,
        accounts,
    ));
    let limited = Limited {
        gateway: limited,
        auditor: limited_auditor,
        subscriber: limited_subscriber,
    };
    (Tokens::new(entries).unwrap(), tokens, limited)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A server on a store of the test's making (one that fails on purpose).
pub async fn start_on(store: Arc<dyn EventStore>, options: ServerOptions) -> Running {
    start_serving(store, options, false).await
}

/// A server that also serves `/metrics` without a token on an address of its own.
pub async fn start_with_metrics_address(db: &TestDatabase) -> Running {
    let store = ledger_app::open_store(&db.url).await.unwrap();
    start_serving(store, ServerOptions::default(), true).await
}

async fn start_serving(store: Arc<dyn EventStore>, options: ServerOptions, metrics_address: bool) -> Running {
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    let (configured, tokens, limited) = test_tokens();
    let config = Arc::new(ledger_app::Config::default());
    let mut server = Server::bind("127.0.0.1:0", (Arc::clone(&store), rules), configured, config, options)
        .await
        .unwrap();
    let metrics_base = if metrics_address {
        Some(format!(
            "http://{}",
            server.listen_metrics("127.0.0.1:0").await.unwrap()
        ))
    } else {
        None
    };
    let base = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let mut headers = reqwest::header::HeaderMap::new();
    let operations = bearer(&tokens[&Role::Operations]);
    headers.insert(reqwest::header::AUTHORIZATION, operations.parse().unwrap());
    Running {
        base,
        store,
        client: reqwest::Client::builder().default_headers(headers).build().unwrap(),
        anonymous: reqwest::Client::new(),
        tokens,
        limited_gateway: limited.gateway,
        limited_auditor: limited.auditor,
        limited_subscriber: limited.subscriber,
        metrics_base,
        stop: Some(stop),
        task,
    }
}

/// The role that may submit the command of a JSON line (operations when it names no
/// known type: malformed lines are answered whoever sends them).
pub fn role_for(line: &str) -> Role {
    use strum::IntoEnumIterator;
    let kind = serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["type"].as_str().and_then(|t| t.parse::<CommandType>().ok()));
    kind.and_then(|kind| Role::iter().find(|role| may(*role, Action::Submit(kind))))
        .unwrap_or(Role::Operations)
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Asks the server to stop (it answers what it has received first).
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        self.signal_stop();
        self.task.await.unwrap().unwrap();
    }

    /// The token of `role`.
    pub fn token(&self, role: Role) -> &str {
        &self.tokens[&role]
    }

    /// POSTs one command with the token of the role that may submit it; the status, the
    /// content type and the body as JSON.
    pub async fn command(&self, body: &str, key: Option<&str>) -> Answer {
        self.command_as(self.token(role_for(body)), body, key).await
    }

    /// POSTs one command with `token`.
    pub async fn command_as(&self, token: &str, body: &str, key: Option<&str>) -> Answer {
        let mut request = self
            .anonymous
            .post(self.url("/v1/commands"))
            .header("authorization", bearer(token))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        Answer::of(request.send().await.unwrap()).await
    }

    /// POSTs JSON lines to the batch route, with the token of the role that may submit
    /// the first line's command; every answer line, parsed.
    pub async fn batch(&self, lines: &[String]) -> Vec<Value> {
        let role = lines.first().map_or(Role::Operations, |line| role_for(line));
        let response = self
            .anonymous
            .post(self.url("/v1/commands/batch"))
            .header("authorization", bearer(self.token(role)))
            .header("content-type", "application/x-ndjson")
            .body(lines.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "a batch is answered 200");
        let text = response.text().await.unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// GETs `path` with `token`; the answer as JSON.
    pub async fn get_as(&self, token: &str, path: &str) -> Answer {
        let request = self
            .anonymous
            .get(self.url(path))
            .header("authorization", bearer(token));
        Answer::of(request.send().await.unwrap()).await
    }

    /// GETs `path` with the token of `role`.
    pub async fn get(&self, role: Role, path: &str) -> Answer {
        self.get_as(self.token(role), path).await
    }

    pub async fn head(&self) -> u64 {
        self.store.head_position().await.unwrap()
    }
}

/// An answer as the client saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    pub async fn of(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text}"));
        Answer {
            status,
            content_type,
            retry_after,
            body,
        }
    }

    /// Asserts a problem document with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "{:?}", self.body);
        assert_eq!(self.body["code"], code, "{:?}", self.body);
        assert_eq!(self.body["status"], status, "{:?}", self.body);
        assert_eq!(self.body["type"], format!("urn:ledger:problem:{code}"));
        for field in ["title", "detail"] {
            assert!(
                self.body[field].as_str().is_some_and(|s| !s.is_empty()),
                "{field}: {:?}",
                self.body
            );
        }
    }

    pub fn str(&self, field: &str) -> &str {
        self.body[field].as_str().unwrap_or("")
    }
}

pub const INSTRUMENT: &str = "601398.SH";
pub const TRADE_DATE: &str = "2024-03-04";

/// An instrument with a previous close (so 2024-03-04 is the open trade date) and `accounts` accounts.
pub fn setup_lines(accounts: usize) -> Vec<String> {
    let mut lines = vec![
        format!(
            r#"{{"type":"list_instrument","command_id":"setup-list","instrument":"{INSTRUMENT}","name":"ICBC","board":"main","risk_level":1}}"#
        ),
        format!(
            r#"{{"type":"set_prev_close","command_id":"setup-close","instrument":"{INSTRUMENT}","trade_date":"{TRADE_DATE}","price":"5.29"}}"#
        ),
    ];
    for i in 0..accounts {
        lines.push(format!(
            r#"{{"type":"open_account","command_id":"setup-open-{i}","account_id":"{}","customer_name":"Customer {i}","id_number":"11010519491231{i:04}","risk_level":3}}"#,
            account(i)
        ));
    }
    lines
}

pub fn date(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

pub fn account(i: usize) -> String {
    format!("H{i:04}")
}

pub fn deposit(account: &str, amount: &str, bank_ref: &str) -> String {
    format!(r#"{{"type":"deposit","account_id":"{account}","amount":"{amount}","bank_ref":"{bank_ref}"}}"#)
}

// Not every test file that includes this module counts events by command.
#[allow(unused_imports)]
pub use ledger_testkit::events_by_command;

/// The log verifies: chain, sequences, replay and invariants.
pub async fn assert_verifies(store: &dyn EventStore) {
    let report = ledger_app::verify(store, |_| {}).await.unwrap();
    assert_eq!(report.problem_count, 0, "verify: {report:?}");
    assert!(report.events > 0);
}
