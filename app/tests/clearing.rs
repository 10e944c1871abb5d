//! A trade date's clearing through the application layer, on every backend: the report
//! read without running anything, and one answer for a day already closed or settled
//! whichever way it was closed.

use std::sync::Arc;

use chrono::NaiveDate;
use ledger_app::{AppError, ClearingStep, DayStatus, EventStore, Ledger, LedgerCommand, Status, Submission};
use ledger_testkit::{TestDatabase, BACKENDS};

const TWO_DAYS: &str = include_str!("../../tests/conformance/two-days.jsonl");
/// How many lines of the worked example come before its first end_of_day line.
fn day_one_lines(example: &str) -> usize {
    example.lines().position(|l| l.contains(r#""end_of_day""#)).unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 4).unwrap()
}

async fn open(db: &TestDatabase) -> (Arc<dyn EventStore>, Ledger) {
    let store = ledger_app::open_store(&db.url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    (Arc::clone(&store), Ledger::new(store, rules))
}

/// Runs the first `count` lines of the worked example.
async fn run_example(ledger: &mut Ledger, count: usize) {
    let lines: Vec<&str> = TWO_DAYS.lines().take(count).collect();
    let answers = ledger_app::run_lines(ledger, "test", 1, lines.iter().copied(), |_| {})
        .await
        .unwrap();
    assert_eq!(answers.len(), count);
}

#[tokio::test]
async fn end_of_day_of_a_day_closed_by_a_command_file_answers_already_closed() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (_store, mut ledger) = open(&db).await;
        // The first day and its end_of_day line (command id C000093, not `eod:2024-03-04`).
        run_example(&mut ledger, day_one_lines(TWO_DAYS) + 1).await;

        for _ in 0..2 {
            let outcome = ledger_app::end_of_day(&mut ledger, "test", day()).await.unwrap();
            assert_eq!(outcome.status, Status::Duplicate, "{backend:?}");
            assert_eq!(outcome.events, 0);
            assert!(outcome.report.total.trades > 0, "the report of the closed day");
        }
    }
}

#[tokio::test]
async fn settle_refused_before_end_of_day_can_settle_after_it() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (_store, mut ledger) = open(&db).await;
        run_example(&mut ledger, day_one_lines(TWO_DAYS)).await;

        let early = ledger_app::settle(&mut ledger, "test", day()).await.unwrap_err();
        assert!(matches!(early, AppError::Refused { .. }), "{backend:?}: {early}");
        assert!(early.to_string().contains("run end_of_day before settle"), "{early}");

        let closed = ledger_app::end_of_day(&mut ledger, "test", day()).await.unwrap();
        assert_eq!(closed.status, Status::Accepted);
        let settled = ledger_app::settle(&mut ledger, "test", day()).await.unwrap();
        assert_eq!(settled.status, Status::Accepted, "{backend:?}");
        assert!(settled.events > 0);
        let again = ledger_app::settle(&mut ledger, "test", day()).await.unwrap();
        assert_eq!(again.status, Status::Duplicate);
        assert_eq!(again.events, 0);
    }
}

#[tokio::test]
async fn clearing_report_reads_the_report_without_running_anything() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run_example(&mut ledger, day_one_lines(TWO_DAYS)).await;

        let head = ledger_app::head_position(store.as_ref()).await.unwrap();
        let open_day = ledger_app::clearing_report(store.as_ref(), day()).await.unwrap();
        assert_eq!(open_day.day_status, DayStatus::Trading, "{backend:?}");
        assert!(open_day.report.total.trades > 0);
        assert_eq!(
            ledger_app::head_position(store.as_ref()).await.unwrap(),
            head,
            "reading wrote nothing"
        );

        let closed = ledger_app::end_of_day(&mut ledger, "test", day()).await.unwrap();
        let read = ledger_app::clearing_report(store.as_ref(), day()).await.unwrap();
        assert_eq!(read.report, closed.report);
        assert_eq!(read.day_status, DayStatus::Cleared);
        ledger_app::settle(&mut ledger, "test", day()).await.unwrap();
        let read = ledger_app::clearing_report(store.as_ref(), day()).await.unwrap();
        assert_eq!(read.day_status, DayStatus::Settled);
        assert_eq!(read.report, closed.report);
    }
}

#[tokio::test]
async fn a_date_whose_settle_id_holds_an_old_refusal_still_settles() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (_store, mut ledger) = open(&db).await;
        run_example(&mut ledger, day_one_lines(TWO_DAYS)).await;
        // As the binary used to record `ledger settle` before `ledger eod`: a refusal under `settle:D`.
        let early = Submission {
            command_id: ClearingStep::Settle.command_id(day()),
            command: LedgerCommand::Settle { trade_date: day() },
            correlation_id: None,
            actor: "old binary".to_owned(),
            request_sha256: None,
        };
        let refused = ledger.execute(&[early]).await.unwrap();
        assert_eq!(refused[0].status, Status::Rejected, "{backend:?}");

        ledger_app::end_of_day(&mut ledger, "test", day()).await.unwrap();
        let settled = ledger_app::settle(&mut ledger, "test", day()).await.unwrap();
        assert_eq!(settled.status, Status::Accepted, "{backend:?}");
        assert!(settled.events > 0);
        let status = ledger_app::day_status(ledger.store().as_ref(), day()).await.unwrap();
        assert_eq!(status, DayStatus::Settled);
    }
}
