//! The demo's whole report flow through the application layer, on every backend:
//! what `ledger demo` prints and `ledger bench` or the HTTP server would show.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_app::demo::{DemoFiles, DemoProgress, REPORT_PHASES};
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
        let (mut phases, mut done) = (Vec::new(), Vec::new());
        let report = ledger_app::demo::run_with_report(&mut ledger, SEED, ACCOUNTS, dir.files(), |step| match step {
            DemoProgress::Phase { name, .. } => phases.push(name.to_owned()),
            DemoProgress::PhaseDone { name, .. } => done.push(name.to_owned()),
            DemoProgress::Answered(_) => {}
        })
        .await
        .unwrap();

        assert!(report.passed, "{backend:?}: {report:?}");
        assert_eq!(report.seed, SEED);
        assert_eq!(report.summary.accounts, ACCOUNTS, "{backend:?}");
        assert!(report.summary.invariant_violations.is_empty(), "{backend:?}");
        assert_eq!(report.reconciliation.trade_date, ledger_app::demo::last_day());
        // Every phase announced is reported done, the report's own phases last.
        assert_eq!(phases, done, "{backend:?}");
        assert_eq!(
            &phases[phases.len() - REPORT_PHASES.len()..],
            REPORT_PHASES,
            "{backend:?}"
        );

        // The read models caught up with the whole log the run wrote.
        assert_eq!(report.read_models.applied_events, report.summary.events, "{backend:?}");
        assert_eq!(report.read_models.checkpoint, store.head_position().await.unwrap());
        let timings = &report.timings;
        let phase_names: Vec<String> = timings.phases.iter().map(|p| p.name.clone()).collect();
        assert_eq!(phase_names, phases, "{backend:?}: every phase is timed");
        let phases_seconds: f64 = timings.phases.iter().map(|p| p.seconds).sum();
        assert!(
            timings.total_seconds >= phases_seconds,
            "{backend:?}: the whole run {} s is shorter than its phases {phases_seconds} s",
            timings.total_seconds
        );
        assert!(
            timings.total_seconds >= timings.engine_seconds + timings.read_models_seconds,
            "{backend:?}: the whole run leaves out the engine or the read models: {timings:?}"
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
            ACCOUNTS + 2,
            "{backend:?}: a header, one line an account and the planted unknown account"
        );
        assert!(report.files.depository.exists(), "{backend:?}");
        let commands = std::fs::read_to_string(report.files.commands.as_ref().unwrap()).unwrap();
        assert_eq!(commands.lines().count() as u64, report.summary.commands, "{backend:?}");
    }
}

#[tokio::test]
async fn the_demo_plants_breaks_in_its_files_and_finds_exactly_those() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = ledger_app::open_store(&db.url).await.unwrap();
        let rules = Arc::new(ledger_app::load_rules(None).unwrap());
        let mut ledger = Ledger::new(Arc::clone(&store), rules);
        let dir = FilesDir::new("planted", backend);
        let report = ledger_app::demo::run_with_report(&mut ledger, SEED, ACCOUNTS, dir.files(), |_| {})
            .await
            .unwrap();
        let reconciliation = &report.reconciliation;
        let kinds: Vec<&str> = reconciliation.planted.iter().map(|b| b.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "cash_differs",
                "cash_unknown_to_ledger",
                "position_missing_at_depository"
            ],
            "{backend:?}: one cash difference, one unknown account, one missing holding"
        );
        assert_eq!(reconciliation.breaks, reconciliation.planted, "{backend:?}");
        assert!(report.passed, "{backend:?}: finding exactly the planted breaks passes");

        // The breaks are in the files it wrote: reconciling them again finds the same.
        let bank = std::fs::File::open(&report.files.bank).unwrap();
        let depository = std::fs::File::open(&report.files.depository).unwrap();
        let again = ledger_app::reconcile(store.as_ref(), reconciliation.trade_date, bank, depository)
            .await
            .unwrap();
        assert_eq!(again.breaks, reconciliation.planted, "{backend:?}");
        assert_eq!(again.as_of_position, reconciliation.as_of_position, "{backend:?}");
        // The demo ends with its last date's end of day and settlement: its close is the log's head
        // (the resubmitted commands after it are duplicates and write nothing).
        assert_eq!(reconciliation.as_of_position, store.head_position().await.unwrap());
        let unknown = &reconciliation.planted[1];
        assert!(
            std::fs::read_to_string(&report.files.bank)
                .unwrap()
                .contains(&unknown.account_id),
            "{backend:?}"
        );
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
