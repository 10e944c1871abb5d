//! Running the `ledger` binary from the end-to-end tests, one way in every file.
//!
//! Each file of tests/ is a crate of its own that uses some of these helpers only.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The binary, run in `dir`, inheriting no ledger settings and no PostgreSQL
/// credentials from the environment: a test says everything it depends on.
pub fn ledger_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command
        .current_dir(dir)
        .env_remove("LEDGER_DATABASE_URL")
        .env_remove("LEDGER_RULES")
        .env_remove("LEDGER_CONFIG")
        .env_remove("PGPASSWORD")
        .env_remove("PGDATABASE");
    command
}

/// Runs `ledger ARGS` in `dir`, whatever it answers.
pub fn ledger_in(dir: &Path, args: &[&str]) -> Output {
    ledger_command(dir).args(args).output().expect("the ledger binary runs")
}

/// Runs `ledger --db DB ARGS` in `dir`, whatever it answers.
pub fn ledger_on(dir: &Path, db: &str, args: &[&str]) -> Output {
    let mut all = vec!["--db", db];
    all.extend_from_slice(args);
    ledger_in(dir, &all)
}

/// Runs `ledger --db DB ARGS` in `dir`, which must succeed.
pub fn ledger_ok(dir: &Path, db: &str, args: &[&str]) -> Output {
    let output = ledger_on(dir, db, args);
    assert!(
        output.status.success(),
        "ledger {args:?} on {db}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
