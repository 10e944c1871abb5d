//! Tokens in ledger.toml and the access log: a token created into a commented file keeps
//! the comments, verifies, and is never written; the access log appends and pages on
//! every backend, and the database itself refuses to edit or delete a row; docs/api.md
//! shows the permission matrix the code has.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ledger_app::access::{
    authenticate, create_token, list_tokens, may, read_access_log, AccessEntry, AccessLog, Action, Caller, CommandType,
    Read, Role, MAX_ACCESS_LOG_PAGE, MAX_ROWS_PER_INSERT,
};
use ledger_app::{config_from_toml, load_config, EventStore};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use strum::IntoEnumIterator;

const COMMENTED: &str = "\
# Our ledger's settings. Keep this comment.
[broker]
name = \"示例证券 Example\" # the name on statements
address = \"上海 Shanghai\"

# Statements
[statement]
discrepancy_days = 10
";

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

#[test]
fn a_token_created_into_a_commented_file_keeps_it_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.toml");
    std::fs::write(&path, COMMENTED).unwrap();
    let gateway = create_token(&path, "gw-1", Role::Gateway, &["A0001".to_owned()], at(1_700_000_000)).unwrap();
    let auditor = create_token(&path, "audit", Role::Auditor, &[], at(1_700_000_100)).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(COMMENTED),
        "the file as it was comes first, unchanged:\n{text}"
    );
    assert!(
        !text.contains(&gateway.token) && !text.contains(&auditor.token),
        "{text}"
    );
    assert!(text.contains("created_at = \"2023-11-14T22:13:20Z\""), "{text}");

    let config = load_config(Some(&path)).unwrap();
    assert_eq!(config.broker.name, "示例证券 Example");
    assert_eq!(config.statement.discrepancy_days, 10);
    let principal = authenticate(&config.tokens, Some(&gateway.token)).unwrap();
    assert_eq!((principal.name.as_str(), principal.role), ("gw-1", Role::Gateway));
    assert_eq!(principal.accounts, Some(vec!["A0001".to_owned()]));
    let principal = authenticate(&config.tokens, Some(&auditor.token)).unwrap();
    assert_eq!((principal.role, principal.accounts), (Role::Auditor, None));

    let listed = list_tokens(&path).unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["gw-1", "audit"]);
    assert_eq!(listed[1].created_at, at(1_700_000_100));
}

#[test]
fn a_duplicate_name_or_a_bad_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.toml");
    create_token(&path, "ops", Role::Operations, &[], at(0)).unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let error = create_token(&path, "ops", Role::Auditor, &[], at(1)).unwrap_err();
    assert_eq!(error.code(), "duplicate_token_name");
    for (name, accounts) in [("", vec![]), (" padded", vec![]), ("ok", vec!["A 1".to_owned()])] {
        let error = create_token(&path, name, Role::Auditor, &accounts, at(1)).unwrap_err();
        assert_eq!(error.code(), "invalid_input", "{name:?} {accounts:?}: {error}");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn a_missing_file_is_created_and_an_invalid_one_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.toml");
    assert!(list_tokens(&path).unwrap().is_empty());
    let created = create_token(&path, "sub", Role::Subscriber, &[], at(0)).unwrap();
    assert!(created.token.starts_with("lgr_"));
    assert_eq!(list_tokens(&path).unwrap().len(), 1);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[broker]\nnmae = \"typo\"\n").unwrap();
    let error = create_token(&bad, "x", Role::Auditor, &[], at(0)).unwrap_err();
    assert_eq!(error.code(), "invalid_config");
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "[broker]\nnmae = \"typo\"\n");
}

#[test]
fn token_entries_are_checked_when_the_file_is_read() {
    let entry = |name: &str, extra: &str| {
        format!(
            "[[tokens]]\nname = \"{name}\"\nrole = \"auditor\"\nsha256 = \"{}\"\ncreated_at = \"2024-01-01T00:00:00Z\"\n{extra}",
            "ab".repeat(32)
        )
    };
    assert!(config_from_toml(&entry("a", "")).is_ok());
    let twice = format!("{}{}", entry("a", ""), entry("a", ""));
    assert!(config_from_toml(&twice).unwrap_err().contains("two tokens"));
    let unknown_key = entry("a", "token = \"lgr_plain\"\n");
    assert!(config_from_toml(&unknown_key).unwrap_err().contains("unknown field"));
    let bad_role = entry("a", "").replace("auditor", "admin");
    assert!(config_from_toml(&bad_role).is_err());
    let bad_hash = entry("a", "").replace(&"ab".repeat(32), "abc");
    assert!(config_from_toml(&bad_hash).unwrap_err().contains("64 hex digits"));
}

fn entry(n: u64, principal: Option<(&str, Role)>) -> AccessEntry {
    AccessEntry {
        at: at(1_700_000_000 + i64::try_from(n).unwrap()),
        principal: principal.map(|(name, role)| Caller {
            name: name.to_owned(),
            role,
        }),
        action: format!("GET /v1/balances {n}"),
        account: n.is_multiple_of(2).then(|| format!("A{n:04}")),
        status: if principal.is_some() { 200 } else { 401 },
        code: if principal.is_some() { "ok" } else { "unauthenticated" }.to_owned(),
        latency_us: n * 10,
    }
}

async fn open(db: &TestDatabase) -> Arc<dyn EventStore> {
    ledger_app::open_store(&db.url).await.unwrap()
}

#[tokio::test]
async fn the_access_log_appends_and_pages_in_order_on_every_backend() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = open(&db).await;
        let log = AccessLog::new(store.as_ref());
        // More than one statement's worth, so a batch spans statements.
        let total = u64::try_from(MAX_ROWS_PER_INSERT).unwrap() + 7;
        let entries: Vec<AccessEntry> = (0..total)
            .map(|n| entry(n, (!n.is_multiple_of(3)).then_some(("gw-1", Role::Gateway))))
            .collect();
        log.record_batch(&entries[..10]).await.unwrap();
        log.record_batch(&entries[10..]).await.unwrap();
        log.record_batch(&[]).await.unwrap();

        let mut read = Vec::new();
        let mut after = 0;
        loop {
            let page = read_access_log(store.as_ref(), after, 100).await.unwrap();
            let Some(last) = page.last() else { break };
            assert!(page.len() <= 100);
            after = last.id;
            read.extend(page);
        }
        let ids: Vec<u64> = read.iter().map(|r| r.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{backend:?}: ids increase");
        let back: Vec<AccessEntry> = read.into_iter().map(|r| r.entry).collect();
        assert_eq!(back, entries, "{backend:?}: every entry once, in order, as written");

        for limit in [0, MAX_ACCESS_LOG_PAGE + 1] {
            let error = read_access_log(store.as_ref(), 0, limit).await.unwrap_err();
            assert_eq!(error.code(), "invalid_input");
        }
    }
}

#[tokio::test]
async fn the_database_refuses_to_edit_or_delete_the_access_log() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = open(&db).await;
        let entries = [entry(1, Some(("ops", Role::Operations))), entry(2, None)];
        AccessLog::new(store.as_ref()).record_batch(&entries).await.unwrap();
        for statement in [
            "UPDATE access_log SET code = 'edited'",
            "DELETE FROM access_log",
            "DELETE FROM access_log WHERE principal IS NULL",
        ] {
            let refused = run_sql(&db, statement).await;
            assert!(
                refused.as_ref().is_err_and(|e| e.contains("append-only")),
                "{backend:?}: {statement}: {refused:?}"
            );
        }
        if backend == Backend::Postgres {
            let refused = run_sql(&db, "TRUNCATE access_log").await;
            assert!(refused.is_err_and(|e| e.contains("append-only")));
        }
        let rows = read_access_log(store.as_ref(), 0, 10).await.unwrap();
        let kept: Vec<AccessEntry> = rows.into_iter().map(|r| r.entry).collect();
        assert_eq!(kept, entries, "{backend:?}: nothing changed");
    }
}

/// Runs one statement on the test database over a connection of its own, as someone
/// with the database's credentials could.
async fn run_sql(db: &TestDatabase, statement: &str) -> Result<u64, String> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(statement.to_owned());
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .map(|done| done.rows_affected())
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .map(|done| done.rows_affected())
        }
    }
    .map_err(|e| e.to_string())
}

/// docs/api.md's matrix ("Roles and tokens"): every row `| submit|read `name` | yes | … |`
/// with one column per role, in the header's order.
fn documented_matrix() -> Vec<(Action, Vec<Role>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (columns, rows) = ledger_testkit::yes_table(&doc, "| action |");
    let roles: Vec<Role> = columns.iter().map(|r| r.parse().unwrap()).collect();
    assert_eq!(roles, Role::iter().collect::<Vec<_>>(), "one column per role, in order");
    rows.into_iter()
        .map(|(first, allowed)| {
            let (kind, name) = first.split_once(' ').unwrap_or_else(|| panic!("{first}"));
            let name = name.trim_matches('`');
            let action = match kind {
                "submit" => Action::Submit(name.parse().unwrap_or_else(|_| panic!("{first}"))),
                "read" => Action::Read(name.parse().unwrap_or_else(|_| panic!("{first}"))),
                other => panic!("a row is `submit` or `read`, not {other:?}"),
            };
            (action, allowed.iter().map(|r| r.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn the_matrix_in_the_docs_is_the_matrix_in_the_code() {
    let documented = documented_matrix();
    let mut expected: Vec<Action> = CommandType::iter().map(Action::Submit).collect();
    expected.extend(Read::iter().map(Action::Read));
    let listed: Vec<Action> = documented.iter().map(|(action, _)| *action).collect();
    assert_eq!(
        listed, expected,
        "every command type and read once, in the code's order"
    );
    for (action, allowed) in documented {
        let in_code: Vec<Role> = Role::iter().filter(|role| may(*role, action)).collect();
        assert_eq!(allowed, in_code, "docs/api.md and `may` differ on {action}");
    }
}
