//! A nats-server of a test's own: `nats-server -js` on a free port with its store in the
//! test's temporary directory, never the machine's shared server.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NATS_SERVER: &str = "nats-server";

/// A nats-server of the test's own.
pub struct Nats {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl Nats {
    pub fn start(store: &Path) -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, store)
    }

    fn start_on(port: u16, store: &Path) -> Nats {
        let child = Command::new(NATS_SERVER)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {NATS_SERVER} ({e}): install it (Debian: apt-get install nats-server; .ci/run does)")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            child,
            port,
            store: store.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Copies its store to `to` with the server stopped, then starts it again: a backup.
    pub fn back_up(self, to: &Path) -> Nats {
        self.replace_store(|store| copy_dir(store, to))
    }

    /// Stops it, puts the store of `backup` in place of its own, and starts it again: a
    /// server restored from a backup, without what it acknowledged since.
    pub fn restore(self, backup: &Path) -> Nats {
        self.replace_store(|store| {
            std::fs::remove_dir_all(store).unwrap();
            copy_dir(backup, store);
        })
    }

    fn replace_store(mut self, change: impl FnOnce(&Path)) -> Nats {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        change(&self.store);
        Self::start_on(self.port, &self.store.clone())
    }

    /// Kills it and starts it again on the same port and store.
    pub fn restart(mut self, down_for: Duration) -> Nats {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(down_for);
        Self::start_on(self.port, &self.store.clone())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let copied = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(copied.success(), "cp -a {} {}", from.display(), to.display());
}
