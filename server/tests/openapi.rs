//! docs/openapi.json is the document the server serves. After changing the routes,
//! regenerate it with `LEDGER_WRITE_OPENAPI=1 cargo test -p ledger-server --test openapi`
//! (or `ledger serve --print-openapi > docs/openapi.json`).

use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

#[test]
fn the_committed_document_is_the_served_one() {
    let served = ledger_server::openapi_json();
    if std::env::var_os("LEDGER_WRITE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &served).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json differs from the served document: run \
         LEDGER_WRITE_OPENAPI=1 cargo test -p ledger-server --test openapi"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_describes_every_route_and_problem() {
    let document: Value = serde_json::from_str(&ledger_server::openapi_json()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/commands",
        "/v1/commands/batch",
        "/v1/access-log",
        "/v1/accounts/{account_id}/balance",
        "/v1/accounts/{account_id}/positions",
        "/v1/accounts/{account_id}/statement",
        "/v1/balances",
        "/v1/positions",
        "/v1/orders",
        "/v1/trades",
        "/v1/clearing/{date}",
        "/v1/compliance/alerts",
        "/v1/events",
        "/v1/verify",
        "/v1/verify/{job_id}",
        "/v1/health",
        "/v1/openapi.json",
        "/metrics",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is described");
    }
    let problem = &document["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(problem[field].is_object(), "Problem has {field}");
    }
    let responses = &document["paths"]["/v1/commands"]["post"]["responses"];
    for status in ["200", "400", "401", "403", "409", "413", "415", "422", "503"] {
        assert!(responses[status].is_object(), "POST /v1/commands documents {status}");
    }
}

#[test]
fn the_guarded_routes_name_the_bearer_scheme_and_the_open_ones_do_not() {
    let document: Value = serde_json::from_str(&ledger_server::openapi_json()).unwrap();
    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    let open = ["/v1/health", "/v1/openapi.json"];
    let paths = document["paths"].as_object().unwrap();
    let guarded: Vec<(&String, &Value)> = paths
        .iter()
        .filter(|(path, _)| !open.contains(&path.as_str()))
        .flat_map(|(path, operations)| operations.as_object().unwrap().values().map(move |op| (path, op)))
        .collect();
    assert!(
        guarded.len() >= 15,
        "every route but health and the document is guarded"
    );
    for (path, operation) in guarded {
        assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]), "{path}");
        for status in ["401", "403"] {
            let problem = &operation["responses"][status]["content"]["application/problem+json"];
            assert!(problem.is_object(), "{path} documents {status} as a problem");
        }
    }
    for path in ["/v1/health", "/v1/openapi.json"] {
        assert!(
            document["paths"][path]["get"]["security"].is_null(),
            "{path} needs no token"
        );
        assert!(document["security"].is_null(), "no token is required document-wide");
    }
}

#[test]
fn the_answer_schema_names_every_field_of_an_answer() {
    let document: Value = serde_json::from_str(&ledger_server::openapi_json()).unwrap();
    let properties = document["components"]["schemas"]["Answer"]["properties"]
        .as_object()
        .unwrap();
    let answer = ledger_app::LineAnswer {
        line: 1,
        command_id: Some("c".into()),
        status: ledger_app::Status::Duplicate,
        code: None,
        message: Some("m".into()),
        events: 0,
        first_position: Some(1),
        last_position: Some(1),
        first_status: Some("accepted".into()),
        first_code: Some("x".into()),
    };
    let fields = serde_json::to_value(&answer).unwrap();
    let mut sent: Vec<&String> = fields.as_object().unwrap().keys().collect();
    let mut described: Vec<&String> = properties.keys().collect();
    sent.sort();
    described.sort();
    assert_eq!(sent, described, "the OpenAPI Answer is the answer object");
}

#[test]
fn the_access_record_schema_names_every_field_of_a_row() {
    use ledger_app::access::{AccessEntry, AccessRecord, Caller, Role};
    let document: Value = serde_json::from_str(&ledger_server::openapi_json()).unwrap();
    let schemas = &document["components"]["schemas"];
    let record = AccessRecord {
        id: 1,
        entry: AccessEntry {
            at: chrono::Utc::now(),
            principal: Some(Caller {
                name: "gw-1".into(),
                role: Role::Gateway,
            }),
            action: "GET /v1/health".into(),
            account: Some("A0001".into()),
            status: 200,
            code: "ok".into(),
            latency_us: 1,
        },
    };
    let keys = |value: &Value| {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let sent = serde_json::to_value(&record).unwrap();
    assert_eq!(keys(&sent), keys(&schemas["AccessRecord"]["properties"]));
    assert_eq!(keys(&sent["principal"]), keys(&schemas["Caller"]["properties"]));
}

/// docs/api.md's status table ("Statuses") names every problem code the server has.
#[test]
fn every_problem_code_has_its_row_in_the_docs() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|line| !line.starts_with("| outcome or code | HTTP status | body |"))
        .take_while(|line| line.starts_with('|'))
        .collect();
    assert!(table.len() > 10, "the status table is found");
    let first_cells: String = table
        .iter()
        .filter_map(|row| row.split('|').nth(1))
        .collect::<Vec<_>>()
        .join(" ");
    for (code, title) in ledger_server::PROBLEM_TITLES {
        assert!(first_cells.contains(&format!("`{code}`")), "{code} ({title}) has a row");
    }
}
