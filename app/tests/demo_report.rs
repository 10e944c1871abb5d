//! The demo's whole report flow through the application layer, on every backend:
//! what `ledger demo` prints and `ledger bench` or the HTTP server would show.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_app::demo::{DemoFiles, DemoProgress, REPORT_PHASE};
use ledger_app::Ledger;
use ledger_testkit::{Backend, TestDatabase, BACKENDS};

const ACCOUNTS: usize = 20;
const SEED: u64 = 7;

/// A directory for one backend's files, removed when dropped (the app crate has no tempfile).
struct FilesDir(PathBuf);

impl FilesDir {
    /// `test` tells apart the tests of one process, which run in parallel.
    fn new(test: &str, backend: Backend) -> FilesDir {
        let name = format!("ledger-app-demo-{}-{test}-{backend:?}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        FilesDir(dir)
    }

    fn files(&self) -> DemoFiles {
        DemoFiles {
            bank: self.0.join("bank.csv"),
            depository: self.0.join("depository.csv"),
            statement: self.0.join("statement.html"),
            commands: Some(self.0.join("commands.jsonl")),
        }
    }
}

impl Drop for FilesDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_demo_report_holds_its_invariants_and_reconciles_on_every_backend() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = ledger_app::open_store(&db.url).await.unwrap();
        let rules = Arc::new(ledger_app::load_rules(None).unwrap());
        let mut ledger = Ledger::new(Arc::clone(&store), rules);
        let dir = FilesDir::new("report", backend);
        let mut phases = Vec::new();
        let report = ledger_app::demo::run_with_report(&mut ledger, SEED, ACCOUNTS, dir.files(), |step| {
            if let DemoProgress::Phase { name, .. } = step {
                phases.push(name.to_owned());
            }
        })
        .await
        .unwrap();

        assert!(report.passed, "{backend:?}: {report:?}");
        assert_eq!(report.seed, SEED);
        assert_eq!(report.summary.accounts, ACCOUNTS, "{backend:?}");
        assert!(report.summary.invariant_violations.is_empty(), "{backend:?}");
        assert!(report.reconciliation.breaks.is_empty(), "{backend:?}");
        assert_eq!(report.reconciliation.trade_date, ledger_app::demo::last_day());
        assert_eq!(phases.last().map(String::as_str), Some(REPORT_PHASE), "{backend:?}");

        // The read models caught up with the whole log the run wrote.
        assert_eq!(report.read_models.applied_events, report.summary.events, "{backend:?}");
        assert_eq!(report.read_models.checkpoint, store.head_position().await.unwrap());
        assert!(
            report.timings.wall_seconds >= report.timings.engine_seconds,
            "{backend:?}"
        );

        let sample = ledger_app::demo::account_id(0);
        assert_eq!(report.statement.account_id, sample);
        let statement = std::fs::read_to_string(&report.files.statement).unwrap();
        assert!(
            statement.contains(&sample),
            "{backend:?}: the statement does not name {sample}"
        );

        let bank = std::fs::read_to_string(&report.files.bank).unwrap();
        assert_eq!(
            bank.lines().count(),
            ACCOUNTS + 1,
            "{backend:?}: a header and one line an account"
        );
        assert!(report.files.depository.exists(), "{backend:?}");
        let commands = std::fs::read_to_string(report.files.commands.as_ref().unwrap()).unwrap();
        assert_eq!(commands.lines().count() as u64, report.summary.commands, "{backend:?}");
    }
}

#[tokio::test]
async fn the_demo_report_refuses_a_ledger_that_is_not_empty() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = ledger_app::open_store(&db.url).await.unwrap();
        let rules = Arc::new(ledger_app::load_rules(None).unwrap());
        let mut ledger = Ledger::new(store, rules);
        let dir = FilesDir::new("refused", backend);
        let mut files = dir.files();
        files.commands = None;
        ledger_app::demo::run_with_report(&mut ledger, SEED, 2, files.clone(), |_| {})
            .await
            .unwrap();
        std::fs::remove_file(&files.statement).unwrap();

        let again = ledger_app::demo::run_with_report(&mut ledger, SEED, 2, files.clone(), |_| {})
            .await
            .unwrap_err();
        assert_eq!(again.code(), "database_not_empty", "{backend:?}");
        assert!(!files.statement.exists(), "{backend:?}: a refused demo writes no file");
    }
}
