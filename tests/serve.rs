//! `ledger serve` as a process: on a fresh directory it creates ledger.toml and says
//! how to get a token; once `ledger token create` has made one, a restart lets that
//! token in (and its role only), and SIGTERM stops it with exit 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};

mod common;
use common::{ledger_command, ledger_in, stderr, stdout};

/// A running `ledger serve` and what it printed up to the line naming its address.
struct Serving {
    child: Child,
    address: String,
    printed: Vec<String>,
}

fn serve(dir: &Path) -> Serving {
    let mut child = ledger_command(dir)
        .args(["serve", "--db", "serve.db", "--listen", "127.0.0.1:0"])
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
    Serving {
        child,
        address,
        printed,
    }
}

impl Serving {
    /// A bodyless GET; the status code.
    fn get(&self, path: &str, token: Option<&str>) -> u16 {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            self.address
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
    }

    fn stop(mut self) {
        // SIGTERM, the graceful stop; kill(1) keeps this test free of `unsafe`.
        let terminated = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(terminated.success());
        let status = self.child.wait().unwrap();
        let mut errors = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut errors).unwrap();
        assert!(status.success(), "serve exits 0 on SIGTERM: {status:?} {errors}");
    }
}

#[test]
fn serve_creates_its_config_says_how_to_get_a_token_and_lets_tokens_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ledger.toml");
    assert!(!config.exists());

    let first = serve(dir.path());
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

    let second = serve(dir.path());
    let said = second.printed.join("\n");
    assert!(said.contains("2 tokens loaded"), "{said}");
    assert_eq!(second.get("/v1/access-log", Some(&auditor)), 200);
    assert_eq!(second.get("/v1/access-log", Some(&operations)), 403);
    assert_eq!(second.get("/v1/access-log", Some("lgr_00")), 401);
    second.stop();
}
