//! `ledger serve` as a process: on a fresh directory it creates ledger.toml and says
//! how to get a token; once `ledger token create` has made one, a restart lets that
//! token in (and its role only), and SIGTERM stops it with exit 0. With `--log-format
//! json` it logs one JSON object per request on standard error, and `--metrics-listen`
//! serves `/metrics` without a token on an address of its own.

mod common;
use common::{get_from, ledger_in, serve, serve_with, stderr, stdout};

#[test]
fn serve_creates_its_config_says_how_to_get_a_token_and_lets_tokens_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ledger.toml");
    assert!(!config.exists());

    let first = serve(dir.path(), "serve.db");
    let said = first.printed.join("\n");
    assert!(config.exists(), "serve creates ledger.toml: {said}");
    assert!(
        said.contains("holds no token") && said.contains("ledger token create --role operations --name"),
        "{said}"
    );
    assert_eq!(first.get("/v1/health", None), 200, "health needs no token");
    assert_eq!(first.get("/v1/access-log", None), 401);
    first.stop();

    let made = ledger_in(
        dir.path(),
        &["token", "create", "--role", "auditor", "--name", "audit-1"],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let auditor = stdout(&made).lines().last().unwrap().to_owned();
    let made = ledger_in(
        dir.path(),
        &["token", "create", "--role", "operations", "--name", "ops-1"],
    );
    let operations = stdout(&made).lines().last().unwrap().to_owned();

    let second = serve(dir.path(), "serve.db");
    let said = second.printed.join("\n");
    assert!(said.contains("2 tokens loaded"), "{said}");
    assert_eq!(second.get("/v1/access-log", Some(&auditor)), 200);
    assert_eq!(second.get("/v1/access-log", Some(&operations)), 403);
    assert_eq!(second.get("/v1/access-log", Some("lgr_00")), 401);
    second.stop();
}

#[test]
fn print_openapi_prints_the_document_alone_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let printed = ledger_in(dir.path(), &["serve", "--print-openapi"]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    let document: serde_json::Value = serde_json::from_str(&stdout(&printed)).expect("stdout is the document alone");
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(
        !dir.path().join("ledger.toml").exists(),
        "no configuration file is created"
    );
    assert!(!dir.path().join("ledger.db").exists(), "no database is opened");
}

#[test]
fn json_logs_say_each_request_without_secrets_and_the_metrics_address_needs_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let made = ledger_in(
        dir.path(),
        &["token", "create", "--role", "operations", "--name", "ops-log"],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let operations = stdout(&made).lines().last().unwrap().to_owned();

    let serving = serve_with(
        dir.path(),
        "serve.db",
        &["--log-format", "json", "--metrics-listen", "127.0.0.1:0"],
    );
    let said = serving.printed.join("\n");
    assert!(said.contains("1 tokens loaded"), "{said}");
    let metrics_address = serving
        .printed
        .iter()
        .find(|l| l.contains("metrics for Prometheus"))
        .and_then(|l| l.split("http://").nth(1))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the metrics address is printed: {said}"))
        .to_owned();
    assert_eq!(serving.get("/v1/access-log", Some(&operations)), 403);
    assert_eq!(serving.get("/metrics", Some(&operations)), 200);
    assert_eq!(serving.get("/metrics", None), 401);
    assert_eq!(serving.get("/v1/accounts/A0001/balance", Some(&operations)), 404);
    let (status, page) = get_from(&metrics_address, "/metrics", None);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(
            r#"ledger_http_request_duration_seconds_count{method="GET",route="/v1/accounts/{account_id}/balance",status="404"} 1"#
        ),
        "{page}"
    );
    let errors = serving.stop();

    let lines: Vec<serde_json::Value> = errors
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 5, "one line per request: {errors}");
    for line in &requests {
        assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
        assert!(line["status"].as_u64().is_some(), "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
    }
    let balance = requests
        .iter()
        .find(|l| l["status"] == 404)
        .unwrap_or_else(|| panic!("the balance read is logged: {errors}"));
    assert_eq!(balance["method"], "GET");
    assert_eq!(
        balance["route"], "/v1/accounts/{account_id}/balance",
        "the template, not the path"
    );
    assert_eq!(balance["role"], "operations");
    assert_eq!(balance["principal"], "ops-log");
    let anonymous = requests.iter().find(|l| l["status"] == 401).unwrap();
    assert_eq!(anonymous["role"], "-");
    assert_eq!(anonymous["principal"], "-");
    assert!(
        !errors.contains(&operations) && !errors.contains("lgr_"),
        "no token in the log: {errors}"
    );
    assert!(!errors.contains("A0001"), "no id of the path in the log: {errors}");
}
