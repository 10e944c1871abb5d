//! Schemathesis (a PyPI package; `.ci/run` installs it) against a running `ledger serve`
//! holding the worked example's two days, on each backend: requests generated from docs/openapi.json,
//! with an operations token and with an auditor token, get no 5xx and no answer the
//! document does not describe (status, content type, body schema).
//!
//! `POST /v1/commands/batch` is left out: its body is JSON lines, which schemathesis
//! cannot generate; server/tests/http.rs sends it bad input of every kind.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ledger_ok, serve, stderr, stdout, token};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};

/// Examples per operation and phase: small, so CI stays quick; a longer hunt is
/// `LEDGER_SCHEMATHESIS_EXAMPLES=500 cargo test --test schemathesis`.
const DEFAULT_EXAMPLES: u32 = 15;
/// The seed of the generated requests: a failure found in CI reproduces.
const SEED: &str = "1";
/// The checks: no 5xx, and every answer as the document describes it.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// The schemathesis command: `LEDGER_SCHEMATHESIS` if set, else `schemathesis` on PATH.
fn schemathesis() -> String {
    std::env::var("LEDGER_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned())
}

fn examples() -> String {
    std::env::var("LEDGER_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| DEFAULT_EXAMPLES.to_string())
}

/// Runs schemathesis in `dir` (where it keeps its cache) with `token` against the
/// server at `address`; its output.
fn run_schemathesis(dir: &Path, address: &str, token: &str) -> String {
    let ran = Command::new(schemathesis())
        .current_dir(dir)
        .args(["run", &format!("http://{address}/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples(), "--seed", SEED, "--workers", "1"])
        .args(["--exclude-path", "/v1/commands/batch"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install it with `python3 -m pip install schemathesis` \
                 (.ci/run does, into a virtual environment), or name it in LEDGER_SCHEMATHESIS",
                schemathesis()
            )
        });
    let said = format!("{}{}", stdout(&ran), stderr(&ran));
    assert!(ran.status.success(), "schemathesis found failures:\n{said}");
    said
}

async fn generated_requests_on(backend: Backend) {
    let db = TestDatabase::fresh(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/two-days.jsonl");
    ledger_ok(dir.path(), &db.url, &["exec", example]);
    let operations = token(dir.path(), "operations");
    let auditor = token(dir.path(), "auditor");
    let server = serve(dir.path(), &db.url);
    for token in [&operations, &auditor] {
        let said = run_schemathesis(dir.path(), &server.address, token);
        let summary = said.lines().find(|l| l.contains(" generated, ")).unwrap_or("");
        eprintln!("schemathesis on {backend:?}: {summary}");
        assert!(summary.contains("passed"), "{said}");
    }
    server.stop();
}

#[tokio::test]
async fn generated_requests_get_no_server_error_and_no_answer_outside_the_document() {
    for backend in BACKENDS {
        generated_requests_on(backend).await;
    }
}
