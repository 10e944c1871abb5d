//! `ledger serve` as a process: on a fresh directory it creates ledger.toml and says
//! how to get a token; once `ledger token create` has made one, a restart lets that
//! token in (and its role only), and SIGTERM stops it with exit 0.

mod common;
use common::{ledger_in, serve, stderr, stdout};

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
