//! Opening a database as operations staff do: only commands that write create a ledger,
//! a wrong name or an unreachable server is said plainly and at once, and no message ever
//! shows a password.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ledger_testkit::{Backend, TestDatabase, BACKENDS};

mod common;
use common::{ledger_in, ledger_on};

/// The password planted in every URL whose output is searched.
const PASSWORD: &str = "Pa55wordNeverShown";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_reconcile_files(dir: &Path) {
    std::fs::write(dir.join("bank.csv"), "account,balance\n").unwrap();
    std::fs::write(dir.join("depository.csv"), "account,instrument,quantity\n").unwrap();
}

/// Every command that only reads, or writes into an existing ledger (eod, settle, reconcile).
const NON_CREATING: [&[&str]; 12] = [
    &["balances"],
    &["positions"],
    &["orders"],
    &["trades"],
    &["events"],
    &["verify"],
    &["eod", "--date", "2024-03-04"],
    &["settle", "--date", "2024-03-04"],
    &[
        "reconcile",
        "--date",
        "2024-03-04",
        "--bank",
        "bank.csv",
        "--depository",
        "depository.csv",
    ],
    &[
        "statement",
        "--account",
        "D0000001",
        "--from",
        "2024-03-04",
        "--to",
        "2024-03-04",
    ],
    &["projections", "run"],
    &["projections", "rebuild"],
];

#[tokio::test]
async fn commands_that_do_not_create_refuse_a_database_without_a_ledger() {
    for backend in BACKENDS {
        let database = TestDatabase::fresh(backend).await;
        let dir = tempfile::tempdir().unwrap();
        write_reconcile_files(dir.path());
        for args in NON_CREATING {
            let out = ledger_on(dir.path(), &database.url, args);
            let said = text(&out);
            assert!(!out.status.success(), "{backend:?} {args:?} must refuse: {said}");
            assert!(said.contains("holds no ledger"), "{backend:?} {args:?}: {said}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.lines().any(|line| line.starts_with("error: no_ledger: ")),
                "{backend:?} {args:?}: the stable code first: {stderr}"
            );
            assert!(
                said.contains("ledger init"),
                "{backend:?} {args:?} says what to do: {said}"
            );
        }
        if backend == Backend::Sqlite {
            let path = database.url.trim_start_matches("sqlite://");
            assert!(!Path::new(path).exists(), "no file was created at {path}");
        }
        // Still nothing there: the refusals created no schema either.
        let out = ledger_on(dir.path(), &database.url, &["balances"]);
        assert!(text(&out).contains("holds no ledger"), "{backend:?}: {}", text(&out));

        let out = ledger_on(dir.path(), &database.url, &["init"]);
        assert!(out.status.success(), "{backend:?} init: {}", text(&out));
        let out = ledger_on(dir.path(), &database.url, &["balances"]);
        assert!(out.status.success(), "{backend:?} balances after init: {}", text(&out));
    }
}

#[test]
fn a_mistyped_sqlite_file_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledger_on(dir.path(), "typo.db", &["balances"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("typo.db"), "names the database: {said}");
    assert!(said.contains("does not exist"), "{said}");
    assert!(!dir.path().join("typo.db").exists());
    // The default database too.
    let out = ledger_in(dir.path(), &["verify"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!dir.path().join("ledger.db").exists());
}

#[test]
fn a_sqlite_file_that_is_not_a_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    let out = ledger_on(dir.path(), "empty.db", &["balances"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("holds no ledger"), "{said}");
}

#[tokio::test]
async fn verify_on_an_empty_ledger_says_so_and_fails_unless_allowed() {
    for backend in BACKENDS {
        let database = TestDatabase::fresh(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let out = ledger_on(dir.path(), &database.url, &["init"]);
        assert!(out.status.success(), "{backend:?}: {}", text(&out));
        let out = ledger_on(dir.path(), &database.url, &["verify"]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{backend:?}: {said}");
        assert!(said.contains("empty"), "{backend:?}: {said}");
        let out = ledger_on(dir.path(), &database.url, &["verify", "--allow-empty"]);
        assert!(out.status.success(), "{backend:?}: {}", text(&out));
    }
}

#[test]
fn commands_that_write_create_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.jsonl"), "").unwrap();
    for (file, args) in [
        ("a.db", &["exec", "empty.jsonl"][..]),
        ("b.db", &["migrate"][..]),
        ("c.db", &["init"][..]),
    ] {
        let out = ledger_on(dir.path(), file, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(dir.path().join(file).exists(), "{args:?} created {file}");
        let out = ledger_on(dir.path(), file, &["balances"]);
        assert!(out.status.success(), "{args:?} then balances: {}", text(&out));
    }
}

#[test]
fn a_postgres_url_without_a_database_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://postgres@127.0.0.1:5432",
        "postgres://postgres@127.0.0.1:5432/",
    ] {
        for args in [&["init"][..], &["balances"][..]] {
            let out = ledger_on(dir.path(), url, args);
            let said = text(&out);
            assert!(!out.status.success(), "{url} {args:?}: {said}");
            assert!(said.contains("names no database"), "{url} {args:?}: {said}");
        }
    }
}

fn base_host_port() -> String {
    let base = ledger_testkit::postgres_base_url();
    let after_scheme = base.split_once("://").map_or(base.as_str(), |(_, rest)| rest);
    let after_user = after_scheme.rsplit_once('@').map_or(after_scheme, |(_, rest)| rest);
    after_user.split('/').next().unwrap_or(after_user).to_owned()
}

#[test]
fn no_error_shows_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let host = base_host_port();
    let urls = [
        format!("mysql://postgres:{PASSWORD}@{host}/test"),
        format!("postgress://postgres:{PASSWORD}@{host}/test"),
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test"),
        format!("postgres://postgres:{PASSWORD}@{host}/no_such_database_here"),
        format!("postgres://no_such_role_here:{PASSWORD}@{host}/test"),
        format!("postgres://postgres:{PASSWORD}@{host}"),
        format!("postgres://postgres:{PASSWORD}@{host}:notaport/test"),
        format!("postgres://postgres:{PASSWORD}@{host}/test?sslmode=bogus"),
        format!("postgres://postgres:{PASSWORD}@{host}/test?options=-c%20search_path%3Dno_such_schema"),
        format!("postgres://postgres:{PASSWORD}@no-such-host.invalid/test"),
        format!("sqlite://postgres:{PASSWORD}@localhost/missing/dir.db"),
        format!("/missing/dir/{PASSWORD}@x.db"),
    ];
    for url in &urls {
        for args in [&["balances"][..], &["migrate"][..], &["verify", "--json"][..]] {
            let out = ledger_on(dir.path(), url, args);
            let said = text(&out);
            assert!(!out.status.success(), "{url} {args:?} fails: {said}");
            assert!(!said.contains(PASSWORD), "{args:?} printed the password: {said}");
        }
        // Through the environment variable as well.
        let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .current_dir(dir.path())
            .env("LEDGER_DATABASE_URL", url)
            .arg("balances")
            .output()
            .unwrap();
        assert!(!text(&out).contains(PASSWORD), "{}", text(&out));
    }
}

#[test]
fn a_mistyped_scheme_is_named_with_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledger_on(dir.path(), "postgress://postgres@127.0.0.1/test", &["balances"]);
    let said = text(&out);
    assert!(!out.status.success());
    assert!(said.contains("postgres://"), "{said}");
}

#[test]
fn postgres_errors_say_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let host = base_host_port();

    let out = ledger_on(
        dir.path(),
        &format!("postgres://postgres@{host}/no_such_database_here"),
        &["init"],
    );
    let said = text(&out);
    assert!(
        said.contains("database \"no_such_database_here\" does not exist"),
        "{said}"
    );
    assert!(!said.contains("Is PostgreSQL running"), "{said}");

    let out = ledger_on(
        dir.path(),
        &format!("postgres://no_such_role_here@{host}/test"),
        &["init"],
    );
    let said = text(&out);
    assert!(said.contains("no_such_role_here"), "{said}");
    assert!(said.contains("user"), "{said}");
    assert!(!said.contains("Is PostgreSQL running"), "{said}");

    let started = Instant::now();
    let out = ledger_on(dir.path(), "postgres://postgres@127.0.0.1:1/test", &["balances"]);
    let said = text(&out);
    assert!(started.elapsed() < Duration::from_secs(3), "refused at once: {said}");
    assert!(said.contains("refused"), "{said}");
    assert!(!said.contains("timed out"), "{said}");
}

#[tokio::test]
async fn sslmode_require_connects_over_tls() {
    let database = TestDatabase::fresh(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}&sslmode=require", database.url);
    let out = ledger_on(dir.path(), &url, &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ledger_on(dir.path(), &url, &["balances"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// A test database's URL with the password planted (the test server trusts any password).
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, host) = rest.split_once('@').expect("a user in the test URL");
    let user = user.split(':').next().unwrap_or(user);
    format!("{scheme}://{user}:{PASSWORD}@{host}")
}

#[tokio::test]
async fn no_message_of_a_working_run_shows_the_password_either() {
    let database = TestDatabase::fresh(Backend::Postgres).await;
    let url = with_password(&database.url);
    let dir = tempfile::tempdir().unwrap();
    let runs: [(&[&str], bool); 8] = [
        (&["verify"], false),
        (&["init"], true),
        (&["init"], true),
        (&["verify"], false),
        (&["migrate"], true),
        (&["demo", "--accounts", "20", "--seed", "3"], true),
        (&["demo", "--accounts", "20", "--seed", "3"], false),
        (&["verify", "--json"], true),
    ];
    for (args, succeeds) in runs {
        let out = ledger_on(dir.path(), &url, args);
        let said = text(&out);
        assert_eq!(out.status.success(), succeeds, "{args:?}: {said}");
        assert!(!said.contains(PASSWORD), "{args:?} printed the password: {said}");
    }
}
