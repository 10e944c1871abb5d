//! Signed checkpoints catch what the hash chain alone cannot: a history rewritten from
//! the middle with every hash after it recomputed. Plain `verify` passes such a log;
//! `verify --checkpoints` fails at the first checkpoint after the rewrite and holds the
//! one before it; on both backends. Also: keys, an edited checkpoint, and `serve`
//! signing as it runs.

// A test reads best as one story from input to comparison; the 70-line limit is for production code.
#![allow(clippy::too_many_lines)]

use std::path::{Path, PathBuf};

use ledger_app::stream::envelope::recorded_from_json;
use ledger_eventstore::chain::canonical_json;
use ledger_eventstore::RecordedEvent;
use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use serde_json::Value;

mod common;
use common::{ledger_command, ledger_ok, ledger_on, serve_with, stdout};

fn example_part(dir: &Path, name: &str, range: std::ops::Range<usize>) -> PathBuf {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, lines[range].join("\n")).unwrap();
    path
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("auditor.key");
    ledger_ok(dir, "unused", &["checkpoint", "keygen", "--out", key.to_str().unwrap()]);
    (key.clone(), PathBuf::from(format!("{}.pub", key.display())))
}

fn checkpoint(dir: &Path, db: &str, key: &Path, file: &Path) {
    ledger_ok(
        dir,
        db,
        &[
            "checkpoint",
            "--key",
            key.to_str().unwrap(),
            "--file",
            file.to_str().unwrap(),
        ],
    );
}

fn verify_with(dir: &Path, db: &str, file: &Path, public: &Path) -> std::process::Output {
    ledger_on(
        dir,
        db,
        &[
            "verify",
            "--checkpoints",
            file.to_str().unwrap(),
            "--pubkey",
            public.to_str().unwrap(),
        ],
    )
}

/// Changes the first deposit's bank reference at or after `from` and recomputes every
/// hash from it to the head, as someone with write access and the chain's recipe would:
/// the rewritten log is consistent with itself.
async fn rewrite_history(dir: &Path, db: &TestDatabase, from: u64) -> u64 {
    let log: Vec<RecordedEvent> = stdout(&ledger_ok(dir, &db.url, &["events", "--json"]))
        .lines()
        .map(|line| recorded_from_json(line).unwrap())
        .collect();
    let changed = log
        .iter()
        .find(|e| e.global_position >= from && e.event_type == "CashDeposited")
        .expect("a deposit to rewrite")
        .global_position;
    let first = usize::try_from(changed).unwrap() - 1;
    let mut prev_hash = log[first - 1].hash.clone();
    let mut statements = Vec::new();
    for event in &log[first..] {
        let mut event = event.clone();
        if event.global_position == changed {
            event.payload["bank_ref"] = "REWRITTEN-1".into();
        }
        event.prev_hash = prev_hash;
        let hash = event.hash_of_fields();
        let text = canonical_json(&event.payload);
        let payload_sql = match db.backend {
            Backend::Sqlite => format!("'{}'", text.replace('\'', "''")),
            Backend::Postgres => format!("'{}'::jsonb", text.replace('\'', "''")),
        };
        statements.push(format!(
            "UPDATE events SET payload = {payload_sql}, prev_hash = '{}', hash = '{hash}' WHERE global_position = {}",
            event.prev_hash, event.global_position
        ));
        prev_hash = hash;
    }
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    db.tamper(&statements).await;
    changed
}

#[tokio::test]
async fn a_history_rewritten_with_a_recomputed_chain_fails_at_the_first_checkpoint_after_it() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::fresh(backend).await;
        let (key, public) = keygen(dir.path());
        let file = dir.path().join("checkpoints.jsonl");
        let parts = [(0..20), (20..80), (80..157)];
        for (n, range) in parts.into_iter().enumerate() {
            let part = example_part(dir.path(), &format!("part-{n}.jsonl"), range);
            ledger_ok(dir.path(), &db.url, &["exec", part.to_str().unwrap()]);
            checkpoint(dir.path(), &db.url, &key, &file);
        }
        let signed: Vec<Value> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(signed.len(), 3);
        let positions: Vec<u64> = signed.iter().map(|c| c["position"].as_u64().unwrap()).collect();
        let held = verify_with(dir.path(), &db.url, &file, &public);
        assert!(held.status.success(), "{backend:?}: {}", stdout(&held));
        assert!(stdout(&held).contains("checkpoints: 3 checked, every one signed by the trusted key"));

        let changed = rewrite_history(dir.path(), &db, positions[0] + 1).await;
        assert!(
            changed > positions[0] && changed <= positions[1],
            "{backend:?}: rewritten between the first two"
        );
        ledger_ok(dir.path(), &db.url, &["projections", "rebuild"]);
        let plain = ledger_ok(dir.path(), &db.url, &["verify"]);
        assert!(
            stdout(&plain).contains("OK:"),
            "{backend:?}: the rewritten chain is consistent, plain verify passes: {}",
            stdout(&plain)
        );
        let caught = verify_with(dir.path(), &db.url, &file, &public);
        assert_eq!(caught.status.code(), Some(1), "{backend:?}: {}", stdout(&caught));
        let said = stdout(&caught);
        assert!(
            said.contains("checkpoints: 3 checked, 2 do not hold"),
            "{backend:?}: {said}"
        );
        assert!(
            said.contains(&format!("line      2  position {:>8}  hash_differs", positions[1])),
            "{said}"
        );
        assert!(
            !said.contains("line      1"),
            "{backend:?}: the checkpoint before the rewrite holds: {said}"
        );
        let json: Value = serde_json::from_str(&stdout(&ledger_on(
            dir.path(),
            &db.url,
            &[
                "verify",
                "--json",
                "--checkpoints",
                file.to_str().unwrap(),
                "--pubkey",
                public.to_str().unwrap(),
            ],
        )))
        .unwrap();
        assert_eq!(json["checkpoints"]["findings"][0]["position"], positions[1]);
        assert_eq!(json["checkpoints"]["findings"][0]["kind"], "hash_differs");
    }
}

#[test]
fn an_edited_checkpoint_or_another_key_is_named_and_keys_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("keys.db").display());
    let part = example_part(dir.path(), "part.jsonl", 0..30);
    ledger_ok(dir.path(), &db, &["exec", part.to_str().unwrap()]);
    let (key, public) = keygen(dir.path());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the private key is its owner's alone");
    let again = ledger_on(
        dir.path(),
        &db,
        &["checkpoint", "keygen", "--out", key.to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(2));
    let file = dir.path().join("cp.jsonl");
    checkpoint(dir.path(), &db, &key, &file);
    let line = std::fs::read_to_string(&file).unwrap();
    let mut edited: Value = serde_json::from_str(line.trim()).unwrap();
    edited["position"] = (edited["position"].as_u64().unwrap() - 1).into();
    std::fs::write(&file, format!("{edited}\nnot json\n")).unwrap();
    let out = verify_with(dir.path(), &db, &file, &public);
    assert_eq!(out.status.code(), Some(1));
    let said = stdout(&out);
    assert!(said.contains("line      1") && said.contains("bad_signature"), "{said}");
    assert!(said.contains("line      2") && said.contains("unreadable"), "{said}");
    let other = dir.path().join("other.key");
    ledger_ok(
        dir.path(),
        &db,
        &["checkpoint", "keygen", "--out", other.to_str().unwrap()],
    );
    std::fs::write(&file, &line).unwrap();
    let out = verify_with(dir.path(), &db, &file, Path::new(&format!("{}.pub", other.display())));
    assert!(stdout(&out).contains("other_key"), "{}", stdout(&out));
}

#[test]
fn serve_signs_a_checkpoint_every_n_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("serve.db").display());
    ledger_ok(dir.path(), &db, &["init"]);
    let (key, public) = keygen(dir.path());
    let file = dir.path().join("served.jsonl");
    let serving = serve_with(
        dir.path(),
        &db,
        &[
            "--checkpoint-key",
            key.to_str().unwrap(),
            "--checkpoint-file",
            file.to_str().unwrap(),
            "--checkpoint-every-events",
            "50",
        ],
    );
    let part = example_part(dir.path(), "part.jsonl", 0..80);
    let ran = ledger_command(dir.path())
        .args(["--db", &db, "exec", part.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ran.status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(&file).map_or(0, |t| t.lines().count()) == 0 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint signed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    serving.stop();
    let out = verify_with(dir.path(), &db, &file, &public);
    assert!(out.status.success(), "{}", stdout(&out));
}
