//! Tokens and roles over real sockets, on every backend: every role against every
//! route (and every command type), from one table that docs/api.md shows
//! ("Authentication"); a token limited to accounts; and the access log holding every
//! request of the run with its principal and outcome, read by auditors, never edited.

#![allow(clippy::too_many_lines)]

mod common;

use std::path::Path;

use common::{account, bearer, start, Running, INSTRUMENT, LIMITED_ACCOUNT, LIMITED_GATEWAY, TRADE_DATE};
use ledger_app::access::{may, read_access_log, Action, CommandType, Role};
use ledger_server::ServerOptions;
use ledger_testkit::{TestDatabase, BACKENDS};
use serde_json::Value;
use strum::IntoEnumIterator;

use Role::{Auditor, Compliance, Gateway, Operations, Subscriber};

const EVERY_ROLE: &[Role] = &[Gateway, Operations, Compliance, Auditor, Subscriber];

/// The route × role table: a request (method, route and, for commands, the command type,
/// sent alone and as a one-line batch), whether it needs a token, and the roles it lets
/// in. docs/api.md ("Authentication") shows the same table; a test holds them equal.
const MATRIX: &[(&str, bool, &[Role])] = &[
    ("POST /v1/commands list_instrument", true, &[Operations]),
    ("POST /v1/commands set_prev_close", true, &[Operations]),
    ("POST /v1/commands open_account", true, &[Operations]),
    ("POST /v1/commands deposit", true, &[Operations]),
    ("POST /v1/commands withdraw", true, &[Operations]),
    ("POST /v1/commands confirm_withdrawal", true, &[Operations]),
    ("POST /v1/commands fail_withdrawal", true, &[Operations]),
    ("POST /v1/commands place_order", true, &[Gateway]),
    ("POST /v1/commands reject_order", true, &[Gateway]),
    ("POST /v1/commands fill", true, &[Gateway]),
    ("POST /v1/commands cancel_order", true, &[Gateway]),
    ("POST /v1/commands confirm_cancel", true, &[Gateway]),
    ("POST /v1/commands end_of_day", true, &[Operations]),
    ("POST /v1/commands settle", true, &[Operations]),
    ("POST /v1/commands freeze_account", true, &[Compliance]),
    ("POST /v1/commands unfreeze_account", true, &[Compliance]),
    ("GET /v1/access-log", true, &[Auditor]),
    (
        "GET /v1/accounts/{account_id}/balance",
        true,
        &[Operations, Compliance, Auditor],
    ),
    (
        "GET /v1/accounts/{account_id}/positions",
        true,
        &[Operations, Compliance, Auditor],
    ),
    ("GET /v1/accounts/{account_id}/statement", true, &[Operations, Auditor]),
    ("GET /v1/balances", true, &[Operations, Compliance, Auditor]),
    ("GET /v1/positions", true, &[Operations, Compliance, Auditor]),
    ("GET /v1/orders", true, &[Operations, Compliance, Auditor]),
    ("GET /v1/trades", true, &[Operations, Compliance, Auditor]),
    ("GET /v1/clearing/{date}", true, &[Operations, Auditor]),
    ("GET /v1/compliance/alerts", true, &[Compliance, Auditor]),
    ("GET /v1/events", true, &[Auditor]),
    ("GET /v1/events/stream", true, &[Auditor, Subscriber]),
    ("POST /v1/reconciliation", true, &[Operations, Auditor]),
    ("GET /v1/reconciliation/{date}", true, &[Operations, Auditor]),
    ("POST /v1/verify", true, &[Auditor]),
    ("GET /v1/verify/{job_id}", true, &[Auditor]),
    ("GET /metrics", true, &[Operations, Auditor]),
    ("GET /v1/health", false, EVERY_ROLE),
    ("GET /v1/openapi.json", false, EVERY_ROLE),
];

/// A well-formed command of each type, on the accounts `setup_lines(2)` opens.
fn sample(command: CommandType) -> String {
    let a = account(1);
    let body = match command {
        CommandType::ListInstrument => {
            r#""instrument":"600519.SH","name":"Kweichow Moutai","board":"main","risk_level":2"#.to_owned()
        }
        CommandType::SetPrevClose => {
            format!(r#""instrument":"600519.SH","trade_date":"{TRADE_DATE}","price":"1688.00""#)
        }
        CommandType::OpenAccount => {
            r#""account_id":"H0009","customer_name":"Wang Fang","id_number":"110101199003071234","risk_level":3"#
                .to_owned()
        }
        CommandType::Deposit => format!(r#""account_id":"{a}","amount":"400000.00","bank_ref":"B1""#),
        CommandType::Withdraw => format!(r#""account_id":"{a}","amount":"10.00","bank_ref":"W1""#),
        CommandType::ConfirmWithdrawal => format!(r#""account_id":"{a}","bank_ref":"W1""#),
        CommandType::FailWithdrawal => format!(r#""account_id":"{a}","bank_ref":"W9""#),
        CommandType::PlaceOrder => format!(
            r#""account_id":"{a}","order_id":"O1","instrument":"{INSTRUMENT}","side":"buy","quantity":100,"price":"5.29","trade_date":"{TRADE_DATE}""#
        ),
        CommandType::RejectOrder => format!(r#""account_id":"{a}","order_id":"O1","reason":"closed""#),
        CommandType::Fill => {
            format!(r#""account_id":"{a}","order_id":"O1","exec_id":"E1","quantity":100,"price":"5.29""#)
        }
        CommandType::CancelOrder | CommandType::ConfirmCancel => format!(r#""account_id":"{a}","order_id":"O1""#),
        CommandType::EndOfDay | CommandType::Settle => format!(r#""trade_date":"{TRADE_DATE}""#),
        CommandType::FreezeAccount | CommandType::UnfreezeAccount => {
            format!(r#""account_id":"{a}","reason":"documents""#)
        }
    };
    format!(r#"{{"type":"{command}",{body}}}"#)
}

/// One request as the access log should record it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    principal: Option<(String, Role)>,
    action: String,
    account: Option<String>,
    status: u16,
    code: String,
}

/// An answer as the test saw it.
struct Reply {
    status: u16,
    content_type: String,
    www_authenticate: Option<String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.status, self.text))
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_owned()
    }
}

/// Sends requests and notes what the access log should get for each.
struct Client<'s> {
    server: &'s Running,
    expected: Vec<Expected>,
}

/// Who a request is sent as: a token's name, role and token, or a bad token, or none.
#[derive(Clone, Copy)]
enum As<'t> {
    Token(&'t str, Role, &'t str),
    Bad,
    Nobody,
}

impl<'s> Client<'s> {
    async fn send(&mut self, who: As<'_>, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
        let url = self.server.url(path);
        let mut request = match method {
            "GET" => self.server.anonymous.get(url),
            _ => self.server.anonymous.post(url).body(body.to_owned()),
        };
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        match who {
            As::Token(_, _, token) => request = request.header("authorization", bearer(token)),
            As::Bad => request = request.header("authorization", bearer("lgr_not-a-token")),
            As::Nobody => {}
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, www_authenticate) = (header("content-type").unwrap_or_default(), header("www-authenticate"));
        let status = response.status().as_u16();
        // An event stream does not end: its answer is the status and the headers.
        let text = if content_type == "text/event-stream" {
            String::new()
        } else {
            response.text().await.unwrap()
        };
        Reply {
            status,
            content_type,
            www_authenticate,
            text,
        }
    }

    fn expect(&mut self, who: As<'_>, action: String, account: Option<String>, reply: &Reply, code: &str) {
        let principal = match who {
            As::Token(name, role, _) => Some((name.to_owned(), role)),
            As::Bad | As::Nobody => None,
        };
        self.expected.push(Expected {
            principal,
            action,
            account,
            status: reply.status,
            code: code.to_owned(),
        });
    }
}

fn role_token(server: &Running, role: Role) -> As<'_> {
    As::Token(<&str>::from(role), role, server.token(role))
}

fn assert_unauthenticated(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.text);
    assert_eq!(reply.content_type, "application/problem+json", "{what}");
    assert_eq!(reply.code(), "unauthenticated", "{what}");
    assert_eq!(reply.www_authenticate.as_deref(), Some("Bearer"), "{what}");
}

fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {}", reply.text);
    assert_eq!(reply.content_type, "application/problem+json", "{what}");
    assert_eq!(reply.code(), "forbidden", "{what}");
}

/// Whether the role may submit some command: if not, the route refuses it before reading the body.
fn submits_any(role: Role) -> bool {
    CommandType::iter().any(|command| may(role, Action::Submit(command)))
}

/// One command, alone and as a one-line batch, by every role, a bad token and none.
async fn command_row(client: &mut Client<'_>, command: CommandType, allowed: &[Role]) {
    let server = client.server;
    let body = sample(command);
    let account = serde_json::from_str::<Value>(&body).unwrap()["account_id"]
        .as_str()
        .map(str::to_owned);
    for role in Role::iter() {
        let who = role_token(server, role);
        let what = format!("{role} {command}");
        let head = server.head().await;
        let id = format!("{role}-{command}");
        let single = format!(r#"{{"command_id":"{id}",{}"#, &body[1..]);
        let reply = client
            .send(who, "POST", "/v1/commands", "application/json", &single)
            .await;
        let (action, logged_account) = if submits_any(role) {
            (format!("POST /v1/commands {command}"), account.clone())
        } else {
            ("POST /v1/commands".to_owned(), None)
        };
        if allowed.contains(&role) {
            let answer = reply.json();
            assert_eq!(reply.content_type, "application/json", "{what}: {}", reply.text);
            assert!(
                [200, 422].contains(&reply.status),
                "{what}: a business answer, not {}",
                reply.text
            );
            assert_eq!(answer["command_id"], id.as_str());
            let code = answer["code"]
                .as_str()
                .or(answer["status"].as_str())
                .unwrap()
                .to_owned();
            client.expect(who, action, logged_account, &reply, &code);
        } else {
            assert_forbidden(&reply, &what);
            assert_eq!(server.head().await, head, "{what}: nothing written");
            client.expect(who, action, logged_account, &reply, "forbidden");
        }

        let line = format!(r#"{{"command_id":"{id}-batch",{}"#, &body[1..]);
        let reply = client
            .send(who, "POST", "/v1/commands/batch", "application/x-ndjson", &line)
            .await;
        let logged_account = if submits_any(role) { account.clone() } else { None };
        let action = "POST /v1/commands/batch".to_owned();
        if allowed.contains(&role) {
            assert_eq!(reply.status, 200, "{what} batch: {}", reply.text);
            let answer: Value = serde_json::from_str(reply.text.trim()).unwrap();
            assert_eq!(answer["command_id"], format!("{id}-batch"));
            assert_ne!(answer["code"], "malformed", "{what}: the sample is well formed");
            client.expect(who, action, logged_account, &reply, "answered");
        } else {
            assert_forbidden(&reply, &format!("{what} batch"));
            assert_eq!(server.head().await, head, "{what} batch: nothing written");
            client.expect(who, action, logged_account, &reply, "forbidden");
        }
    }
    for who in [As::Bad, As::Nobody] {
        let head = server.head().await;
        let reply = client
            .send(who, "POST", "/v1/commands", "application/json", &body)
            .await;
        assert_unauthenticated(&reply, &format!("{command} without a valid token"));
        assert_eq!(server.head().await, head);
        client.expect(who, "POST /v1/commands".to_owned(), None, &reply, "unauthenticated");
        let reply = client
            .send(who, "POST", "/v1/commands/batch", "application/x-ndjson", &body)
            .await;
        assert_unauthenticated(&reply, &format!("{command} batch without a valid token"));
        client.expect(
            who,
            "POST /v1/commands/batch".to_owned(),
            None,
            &reply,
            "unauthenticated",
        );
    }
}

/// The request a route of the table stands for: its path's parameters filled in (the
/// account `setup_lines(2)` opens, the test's trade date, the first verify job) and the
/// query a statement needs; and the account the access log records when it is read.
fn request_of(route: &str) -> (String, Option<String>) {
    let account = account(1);
    let path = route
        .replace("{account_id}", &account)
        .replace("{date}", TRADE_DATE)
        .replace("{job_id}", "1");
    let query = if route.ends_with("/statement") {
        format!("?from={TRADE_DATE}&to={TRADE_DATE}&format=csv")
    } else {
        String::new()
    };
    let named = route.contains("{account_id}").then_some(account);
    (format!("{path}{query}"), named)
}

/// A read route by every role, a bad token and none.
async fn read_row(client: &mut Client<'_>, route: &str, needs_token: bool, allowed: &[Role]) {
    let (method, route) = route.split_once(' ').unwrap();
    let (path, named_account) = request_of(route);
    let path = path.as_str();
    let logged_route = format!("{method} {}", path.split('?').next().unwrap_or(path));
    let who_all = Role::iter()
        .map(|role| role_token(client.server, role))
        .chain([As::Bad, As::Nobody]);
    // The reconciliation takes the two files (here each a header alone) as JSON.
    let (content_type, body) = if route == "/v1/reconciliation" {
        let files = format!(
            r#"{{"trade_date":"{TRADE_DATE}","bank_csv":"account,balance\n","depository_csv":"account,instrument,quantity\n"}}"#
        );
        ("application/json", files)
    } else {
        ("", String::new())
    };
    for who in who_all.collect::<Vec<_>>() {
        let reply = client.send(who, method, path, content_type, &body).await;
        let let_in = match who {
            As::Token(_, role, _) => allowed.contains(&role),
            As::Bad | As::Nobody => !needs_token,
        };
        let (code, account) = if let_in && reply.status == 409 {
            // The business answer of a reconciliation before the date's end of day.
            assert_eq!(reply.code(), "day_not_closed", "{route}: {}", reply.text);
            ("day_not_closed", None)
        } else if let_in {
            assert!([200, 202].contains(&reply.status), "{route}: {}", reply.text);
            let expected_type = if route.ends_with("/statement") {
                "text/csv"
            } else if route == "/metrics" {
                "text/plain"
            } else if route == "/v1/events/stream" {
                "text/event-stream"
            } else {
                "application/json"
            };
            assert!(reply.content_type.starts_with(expected_type), "{route}");
            ("ok", named_account.clone())
        } else if matches!(who, As::Token(..)) {
            assert_forbidden(&reply, route);
            // Refused by role before the route reads its account.
            ("forbidden", None)
        } else {
            assert_unauthenticated(&reply, route);
            ("unauthenticated", None)
        };
        // A bad token on an open route is no principal, and no refusal either.
        client.expect(who, logged_route.clone(), account, &reply, code);
    }
}

/// The limited gateway token acts on its account only; a batch with one line for another
/// account is refused whole.
async fn limited_token(client: &mut Client<'_>) {
    let server = client.server;
    let who = As::Token(LIMITED_GATEWAY, Gateway, &server.limited_gateway);
    let order = |account: &str, id: &str| {
        format!(
            r#"{{"type":"place_order","command_id":"{id}","account_id":"{account}","order_id":"{id}","instrument":"{INSTRUMENT}","side":"buy","quantity":100,"price":"5.29","trade_date":"{TRADE_DATE}"}}"#
        )
    };
    let other = account(1);
    assert_ne!(other, LIMITED_ACCOUNT);
    let head = server.head().await;
    let action = "POST /v1/commands place_order".to_owned();
    let reply = client
        .send(who, "POST", "/v1/commands", "application/json", &order(&other, "LIM-1"))
        .await;
    assert_forbidden(&reply, "another account");
    assert!(reply.json()["detail"].as_str().unwrap().contains(&other));
    client.expect(who, action.clone(), Some(other.clone()), &reply, "forbidden");
    let batch = [order(LIMITED_ACCOUNT, "LIM-2"), order(&other, "LIM-3")].join("\n");
    let reply = client
        .send(who, "POST", "/v1/commands/batch", "application/x-ndjson", &batch)
        .await;
    assert_forbidden(&reply, "a batch with a line for another account");
    client.expect(who, "POST /v1/commands/batch".to_owned(), None, &reply, "forbidden");
    assert_eq!(server.head().await, head, "nothing written for a forbidden account");
    let logged = common::events_by_command(server.store.as_ref()).await;
    for id in ["LIM-1", "LIM-2", "LIM-3"] {
        assert!(!logged.contains_key(id), "{id} is not in the log");
    }
    let reply = client
        .send(
            who,
            "POST",
            "/v1/commands",
            "application/json",
            &order(LIMITED_ACCOUNT, "LIM-4"),
        )
        .await;
    assert!([200, 422].contains(&reply.status), "its own account: {}", reply.text);
    let code = reply.json()["code"].as_str().unwrap_or("accepted").to_owned();
    client.expect(who, action, Some(LIMITED_ACCOUNT.to_owned()), &reply, &code);
}

/// 404, 413 and 415 are logged too, with the principal of a valid token.
async fn errors_of_the_request(client: &mut Client<'_>) {
    let who = role_token(client.server, Operations);
    let reply = client.send(who, "GET", "/v1/nothing-here", "", "").await;
    assert_eq!(reply.status, 404);
    client.expect(who, "GET /v1/nothing-here".to_owned(), None, &reply, "not_found");
    let huge = " ".repeat(ledger_server::MAX_COMMAND_BODY_BYTES + 1);
    let reply = client
        .send(who, "POST", "/v1/commands", "application/json", &huge)
        .await;
    assert_eq!(reply.status, 413);
    client.expect(who, "POST /v1/commands".to_owned(), None, &reply, "too_large");
    let reply = client.send(who, "POST", "/v1/commands", "text/plain", "{}").await;
    assert_eq!(reply.status, 415);
    client.expect(
        who,
        "POST /v1/commands".to_owned(),
        None,
        &reply,
        "unsupported_media_type",
    );
}

/// Auditors read the log over HTTP, page by page, until it holds `rows` rows (the
/// writer is asynchronous); every page read is itself a request of the run.
async fn read_log_as_auditor(client: &mut Client<'_>, rows: usize) -> Vec<Value> {
    let server = client.server;
    let who = role_token(server, Auditor);
    let started = std::time::Instant::now();
    loop {
        let mut records = Vec::new();
        let mut after = 0;
        loop {
            let reply = client
                .send(who, "GET", &format!("/v1/access-log?after={after}&limit=50"), "", "")
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            client.expect(who, "GET /v1/access-log".to_owned(), None, &reply, "ok");
            let page = reply.json();
            let rows_read = page["records"].as_array().unwrap().clone();
            assert!(rows_read.len() <= 50);
            after = page["next_after"].as_u64().unwrap();
            if rows_read.is_empty() {
                break;
            }
            records.extend(rows_read);
        }
        if records.len() >= rows {
            return records;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "the access log never reached {rows} rows"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn matrix_on(backend: ledger_testkit::Backend) {
    let db = TestDatabase::fresh(backend).await;
    let server = start(&db, ServerOptions::default()).await;
    let mut client = Client {
        server: &server,
        expected: Vec::new(),
    };
    let setup = common::setup_lines(2).join("\n");
    let operations = role_token(&server, Operations);
    let reply = client
        .send(operations, "POST", "/v1/commands/batch", "application/x-ndjson", &setup)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    client.expect(
        operations,
        "POST /v1/commands/batch".to_owned(),
        None,
        &reply,
        "answered",
    );

    for (route, needs_token, allowed) in MATRIX {
        match route.strip_prefix("POST /v1/commands ") {
            Some(command) => command_row(&mut client, command.parse().unwrap(), allowed).await,
            None => read_row(&mut client, route, *needs_token, allowed).await,
        }
    }
    limited_token(&mut client).await;
    errors_of_the_request(&mut client).await;

    // Paging is checked, and its errors are problems.
    for query in ["limit=0", "limit=1001", "after=x"] {
        let auditor = role_token(&server, Auditor);
        let reply = client
            .send(auditor, "GET", &format!("/v1/access-log?{query}"), "", "")
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_query".to_owned()),
            "{query}"
        );
        client.expect(auditor, "GET /v1/access-log".to_owned(), None, &reply, "invalid_query");
    }
    let sent_so_far = client.expected.len();
    let read = read_log_as_auditor(&mut client, sent_so_far).await;
    assert_eq!(read[0]["principal"]["name"], "operations");
    assert_eq!(read[0]["action"], "POST /v1/commands/batch");

    let expected = client.expected.clone();
    server.stop().await;
    // Stopped gracefully: every entry is written, in the order the requests were sent.
    let records = read_access_log(db_store(&db).await.as_ref(), 0, 1000).await.unwrap();
    let logged: Vec<Expected> = records
        .iter()
        .map(|record| Expected {
            principal: record.entry.principal.as_ref().map(|c| (c.name.clone(), c.role)),
            action: record.entry.action.clone(),
            account: record.entry.account.clone(),
            status: record.entry.status,
            code: record.entry.code.clone(),
        })
        .collect();
    assert_eq!(logged.len(), expected.len(), "one row per request");
    for (index, (logged, expected)) in logged.iter().zip(&expected).enumerate() {
        assert_eq!(logged, expected, "request {index}");
    }
    assert!(records.windows(2).all(|pair| pair[0].id < pair[1].id));
    assert_log_cannot_be_edited(&db).await;
}

async fn db_store(db: &TestDatabase) -> std::sync::Arc<dyn ledger_app::EventStore> {
    ledger_app::open_store(&db.url).await.unwrap()
}

/// UPDATE and DELETE of the access log fail, sent over a connection of its own, as
/// someone with the database's credentials could.
async fn assert_log_cannot_be_edited(db: &TestDatabase) {
    use sqlx::Connection;
    for statement in ["UPDATE access_log SET code = 'edited'", "DELETE FROM access_log"] {
        let sql = sqlx::AssertSqlSafe(statement.to_owned());
        let result = match db.backend {
            ledger_testkit::Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.map(|_| ())
            }
            ledger_testkit::Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.map(|_| ())
            }
        };
        assert!(result.is_err(), "{statement} must fail");
    }
    let store = db_store(db).await;
    let records = read_access_log(store.as_ref(), 0, 1000).await.unwrap();
    assert!(records.iter().all(|record| record.entry.code != "edited"));
}

#[tokio::test]
async fn every_role_against_every_route_and_the_access_log_holds_every_request() {
    for backend in BACKENDS {
        matrix_on(backend).await;
    }
}

/// docs/api.md's route table ("Authentication"): rows `` | `METHOD /route` `type` | yes | … | ``,
/// one column per role; `(no token)` after the route marks a route open to anyone.
fn documented_matrix() -> Vec<(String, bool, Vec<Role>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (columns, rows) = ledger_testkit::yes_table(&doc, "| route × role |");
    let roles: Vec<Role> = columns.iter().map(|r| r.parse().unwrap()).collect();
    assert_eq!(roles, Role::iter().collect::<Vec<_>>(), "one column per role, in order");
    rows.into_iter()
        .map(|(first, allowed)| {
            let open = first.ends_with("(no token)");
            let route = first.trim_end_matches("(no token)").replace('`', "");
            let allowed = allowed.iter().map(|r| r.parse().unwrap()).collect();
            (route.trim().to_owned(), !open, allowed)
        })
        .collect()
}

#[test]
fn the_route_table_in_the_docs_is_the_tests_table() {
    let documented = documented_matrix();
    let table: Vec<(String, bool, Vec<Role>)> = MATRIX
        .iter()
        .map(|(route, needs_token, roles)| ((*route).to_owned(), *needs_token, roles.to_vec()))
        .collect();
    assert_eq!(documented, table);
    // Every command type has its row, and the rows agree with the access library's matrix.
    for command in CommandType::iter() {
        let row = MATRIX
            .iter()
            .find(|(route, ..)| *route == format!("POST /v1/commands {command}"))
            .unwrap_or_else(|| panic!("{command} has a row"));
        let in_code: Vec<Role> = Role::iter().filter(|r| may(*r, Action::Submit(command))).collect();
        assert_eq!(row.2, in_code, "{command}");
    }
}
