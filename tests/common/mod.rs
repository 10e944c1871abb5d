//! Running the `ledger` binary from the end-to-end tests, one way in every file.
//!
//! Each file of tests/ is a crate of its own that uses some of these helpers only.
#![allow(dead_code)]

pub mod nats;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

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

/// A running `ledger serve` and what it printed up to the line naming its address.
pub struct Serving {
    pub child: Child,
    pub address: String,
    pub printed: Vec<String>,
    /// Its standard error, read as it comes: a pipe nobody reads fills up and then
    /// blocks the server's log writes, and with them its requests.
    errors: std::thread::JoinHandle<String>,
}

/// Starts `ledger serve --db DB` in `dir` on any free port; returns once it has said
/// where it listens and what tokens it holds.
pub fn serve(dir: &Path, db: &str) -> Serving {
    serve_with(dir, db, &[])
}

/// `ledger serve` with more arguments.
pub fn serve_with(dir: &Path, db: &str, more: &[&str]) -> Serving {
    let mut child = ledger_command(dir)
        .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    // The address line, then the tokens line: both come before the first request is served.
    while !printed.last().is_some_and(|l: &String| l.contains("token")) {
        let line = lines.next().expect("serve prints its address and its tokens").unwrap();
        printed.push(line);
    }
    let address = printed
        .iter()
        .find_map(|l| l.split("http://").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .expect("the address is printed")
        .to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut errors = String::new();
        let _ = stderr.read_to_string(&mut errors);
        errors
    });
    Serving {
        child,
        address,
        printed,
        errors,
    }
}

impl Serving {
    /// A bodyless GET; the status code.
    pub fn get(&self, path: &str, token: Option<&str>) -> u16 {
        get_from(&self.address, path, token).0
    }

    /// Stops it with SIGTERM; what it wrote on standard error.
    pub fn stop(mut self) -> String {
        let status = stop_with(&mut self.child, "-TERM");
        let errors = self.errors.join().unwrap();
        assert!(status.success(), "serve exits 0 on SIGTERM: {status:?} {errors}");
        errors
    }
}

/// A new token of `role`, named after it, made by `ledger token create` in `dir`'s
/// ledger.toml; the token itself (the last line printed).
pub fn token(dir: &Path, role: &str) -> String {
    let made = ledger_in(dir, &["token", "create", "--role", role, "--name", role]);
    assert!(made.status.success(), "{}", stderr(&made));
    stdout(&made).lines().last().unwrap().to_owned()
}

/// Sends `signal` (`-TERM`, `-INT`) to `child` and waits for it to end; how it ended.
/// kill(1) keeps the tests free of `unsafe`.
pub fn stop_with(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {}", child.id());
    child.wait().unwrap()
}

/// A bodyless GET to `address`; the status code and the whole answer.
pub fn get_from(address: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    (code, answer)
}
