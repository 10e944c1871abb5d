//! Schemathesis (a PyPI package; `.ci/run` installs it) against a running `ledger serve`
//! holding the worked example's two days, on each backend: requests generated from docs/openapi.json,
//! with an operations token and with an auditor token, get no 5xx and no answer the
//! document does not describe (status, content type, body schema).
//!
//! `POST /v1/commands/batch` is left out: its body is JSON lines, which schemathesis
//! cannot generate; server/tests/http.rs sends it bad input of every kind. The event
//! stream never ends, so schemathesis reads each answer of it for about a second: it
//! gets a run of its own with few examples (each frame checked against the document's
//! frame schema), not the main runs' count.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ledger_ok, serve, stderr, stdout, token};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};

/// Examples per operation and phase: small, so CI stays quick; a longer hunt is
/// `LEDGER_SCHEMATHESIS_EXAMPLES=500 cargo test --test schemathesis`.
const DEFAULT_EXAMPLES: u32 = 15;
/// Examples of the event stream (the fuzzing phase alone), whose every answer takes
/// schemathesis about a second.
const STREAM_EXAMPLES: &str = "3";
const STREAM_PATH: &str = "/v1/events/stream";
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

/// Which operations a run generates requests for, and how many.
enum Paths {
    /// Every operation but the batch route and the stream.
    AllButTheStream,
    /// The event stream alone, with [`STREAM_EXAMPLES`].
    TheStream,
}

/// Runs schemathesis in `dir` (where it keeps its cache) with `token` against the
/// server at `address`; its output.
fn run_schemathesis(dir: &Path, address: &str, token: &str, paths: &Paths) -> String {
    let selection: Vec<String> = match paths {
        Paths::AllButTheStream => ["--max-examples", &examples(), "--exclude-path", "/v1/commands/batch"]
            .into_iter()
            .map(str::to_owned)
            .chain(["--exclude-path".to_owned(), STREAM_PATH.to_owned()])
            .collect(),
        // The coverage phase sends dozens of requests whatever the examples asked.
        Paths::TheStream => [
            "--max-examples",
            STREAM_EXAMPLES,
            "--include-path",
            STREAM_PATH,
            "--phases",
            "fuzzing",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
    };
    let ran = Command::new(schemathesis())
        .current_dir(dir)
        .args(["run", &format!("http://{address}/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--seed", SEED, "--workers", "1"])
        .args(&selection)
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
    let runs = [
        (&operations, Paths::AllButTheStream),
        (&auditor, Paths::AllButTheStream),
        (&auditor, Paths::TheStream),
    ];
    for (token, paths) in &runs {
        let said = run_schemathesis(dir.path(), &server.address, token, paths);
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
