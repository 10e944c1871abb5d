//! The application layer's use cases called directly, on every backend: what the
//! CLI and the HTTP server rely on without printing anything.

#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use chrono::NaiveDate;
use ledger_app::{
    AppError, ClearingStep, EventStore, Ledger, LineAnswer, MarketRules, StatementFormat, StatementRequest, Status,
};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};

const TWO_DAYS: &str = include_str!("../../tests/conformance/two-days.jsonl");
/// The worked example's first day, up to (not including) its end_of_day line.
const DAY_ONE_LINES: usize = 92;

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

async fn open(db: &TestDatabase) -> (Arc<dyn EventStore>, Ledger) {
    let store = ledger_app::open_store(&db.url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    let mut ledger = Ledger::new(Arc::clone(&store), rules);
    // Events dated on the worked example's first day, as `ledger exec --recorded-at` stamps them.
    let at = chrono::DateTime::parse_from_rfc3339("2024-03-04T01:30:00Z")
        .unwrap()
        .to_utc();
    ledger.set_clock(move || at);
    (store, ledger)
}

async fn run(ledger: &mut Ledger, lines: &[&str]) -> Vec<LineAnswer> {
    ledger_app::run_lines(ledger, "test", 1, lines.iter().copied(), |_| {})
        .await
        .unwrap()
}

async fn day_one(ledger: &mut Ledger) {
    let lines: Vec<&str> = TWO_DAYS.lines().take(DAY_ONE_LINES).collect();
    let answers = run(ledger, &lines).await;
    assert_eq!(answers.len(), DAY_ONE_LINES);
}

#[tokio::test]
async fn end_of_day_run_twice_is_one_end_of_day() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        day_one(&mut ledger).await;
        let day = date("2024-03-04");

        // The next day, not yet closed: refused, and (app/tests/clearing.rs) still settles after its eod.
        let early = ledger_app::settle(&mut ledger, "test", date("2024-03-05"))
            .await
            .unwrap_err();
        assert_eq!(early.code(), "refused", "{backend:?}");
        assert!(early.to_string().contains("run end_of_day before settle"), "{early}");

        let first = ledger_app::end_of_day(&mut ledger, "test", day).await.unwrap();
        assert_eq!(first.status, Status::Accepted, "{backend:?}");
        assert!(first.events > 0);
        assert_eq!(first.report.total.trades, 22);
        let head = ledger_app::head_position(store.as_ref()).await.unwrap();

        let second = ledger_app::end_of_day(&mut ledger, "test", day).await.unwrap();
        assert_eq!(second.status, Status::Duplicate, "{backend:?}");
        assert_eq!(second.events, 0);
        assert_eq!(second.report, first.report, "the report is the date's, whoever asks");
        assert_eq!(ledger_app::head_position(store.as_ref()).await.unwrap(), head);

        // The idempotency key is the date's: a fresh engine (another process) agrees.
        let mut other = Ledger::new(Arc::clone(&store), Arc::new(MarketRules::china_a_share().unwrap()));
        let third = ledger_app::end_of_day(&mut other, "another", day).await.unwrap();
        assert_eq!(third.status, Status::Duplicate);
        assert_eq!(
            ClearingStep::EndOfDay(ledger_app::CalendarCheck::On).command_id(day),
            "eod:2024-03-04"
        );

        let settled = ledger_app::settle(&mut ledger, "test", day).await.unwrap();
        assert_eq!(settled.status, Status::Accepted);
        let again = ledger_app::settle(&mut ledger, "test", day).await.unwrap();
        assert_eq!(again.status, Status::Duplicate);
    }
}

#[tokio::test]
async fn a_query_after_a_batch_sees_the_batch_without_a_catch_up() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run(
            &mut ledger,
            &[
                r#"{"type":"open_account","command_id":"C1","account_id":"A1","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#,
                r#"{"type":"deposit","command_id":"C2","account_id":"A1","amount":"100.00","bank_ref":"B1"}"#,
            ],
        )
        .await;
        let balances = ledger_app::balances(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(balances.len(), 1, "{backend:?}");
        assert_eq!(balances[0].available, "100.00");

        run(
            &mut ledger,
            &[r#"{"type":"deposit","command_id":"C3","account_id":"A1","amount":"50.00","bank_ref":"B2"}"#],
        )
        .await;
        let balances = ledger_app::balances(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(balances[0].available, "150.00", "{backend:?}");
        assert_eq!(
            ledger_app::read_models_checkpoint(store.as_ref()).await.unwrap(),
            ledger_app::head_position(store.as_ref()).await.unwrap()
        );
    }
}

#[tokio::test]
async fn positions_and_trades_of_a_date_see_the_day_just_run() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        day_one(&mut ledger).await;
        let trades = ledger_app::trades_of(store.as_ref(), date("2024-03-04")).await.unwrap();
        assert_eq!(trades.len(), 22, "{backend:?}");
        let positions = ledger_app::positions(store.as_ref(), |_| {}).await.unwrap();
        assert!(!positions.is_empty(), "{backend:?}");
        let head = ledger_app::head_position(store.as_ref()).await.unwrap();
        let page = ledger_app::events_after(store.as_ref(), 4, head, 3).await.unwrap();
        let positions: Vec<u64> = page.iter().map(|e| e.global_position).collect();
        assert_eq!(positions, vec![5, 6, 7]);
    }
}

#[tokio::test]
async fn a_statement_of_an_unknown_account_is_the_unknown_account_error() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        day_one(&mut ledger).await;
        let (from, to) = (date("2024-03-01"), date("2024-03-31"));
        let config = ledger_app::Config::default();
        let rules = MarketRules::china_a_share().unwrap();
        let request = |account_id, from, to, format| StatementRequest {
            account_id,
            from,
            to,
            format,
            shown_to: None,
        };
        let error = ledger_app::statement(
            store.as_ref(),
            &rules,
            &config,
            request("NOBODY", from, to, StatementFormat::Html),
        )
        .await
        .unwrap_err();
        assert_eq!(error.code(), "unknown_account", "{backend:?}");
        assert_eq!(error.to_string(), "no account NOBODY has been opened");

        let backwards = ledger_app::statement(
            store.as_ref(),
            &rules,
            &config,
            request("A0001", to, from, StatementFormat::Csv),
        )
        .await
        .unwrap_err();
        assert_eq!(backwards.code(), "invalid_input");
        let csv = ledger_app::statement(
            store.as_ref(),
            &rules,
            &config,
            request("A0001", from, to, StatementFormat::Csv),
        )
        .await
        .unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.starts_with("\u{feff}section,broker,account,customer"), "{csv}");
    }
}

async fn stored_breaks(db: &TestDatabase) -> i64 {
    use sqlx::Connection;
    let query = "SELECT COUNT(*) FROM reconciliation_breaks";
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&mut conn).await.unwrap()
        }
    }
}

#[tokio::test]
async fn a_malformed_bank_file_is_an_error_naming_its_line_and_changes_nothing() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        day_one(&mut ledger).await;
        let day = date("2024-03-04");
        ledger_app::end_of_day(&mut ledger, "test", day).await.unwrap();
        let depository = "account,instrument,quantity\nA0001,600519.SH,100\n";
        let breaks = ledger_app::reconcile(
            store.as_ref(),
            day,
            "account,balance\nA0001,1.00\n".as_bytes(),
            depository.as_bytes(),
        )
        .await
        .unwrap()
        .breaks;
        assert!(!breaks.is_empty(), "{backend:?}");
        let stored = stored_breaks(&db).await;
        assert_eq!(stored, breaks.len() as i64);

        // More lines run, then a bad bank file: neither the breaks nor the read models move.
        run(
            &mut ledger,
            &[r#"{"type":"deposit","command_id":"LATE1","account_id":"A0001","amount":"1.00","bank_ref":"LATE-B1"}"#],
        )
        .await;
        let checkpoint = ledger_app::read_models_checkpoint(store.as_ref()).await.unwrap();
        let bad_bank = "account,balance\nA0001,1.00\nA0002,lots\n";
        let error = ledger_app::reconcile(store.as_ref(), day, bad_bank.as_bytes(), depository.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "invalid_input", "{backend:?}");
        assert!(
            matches!(
                error,
                AppError::MalformedFileLine {
                    file: ledger_app::ReconcileFile::Bank,
                    line: 3,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().starts_with("line 3 "), "{error}");
        assert_eq!(stored_breaks(&db).await, stored);
        assert_eq!(
            ledger_app::read_models_checkpoint(store.as_ref()).await.unwrap(),
            checkpoint
        );

        let short_line = "account,instrument,quantity\nA0001,600519.SH\n";
        let error = ledger_app::read_depository_file(short_line.as_bytes()).unwrap_err();
        assert!(
            matches!(error, AppError::MalformedFileLine { line: 2, .. }),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_command_file_streams_through_in_order_with_every_line_answered() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let (_store, mut ledger) = open(&db).await;
    let overlong = format!(
        r#"{{"type":"deposit","command_id":"C9","account_id":"A1","amount":"1.00","bank_ref":"{}"}}"#,
        "x".repeat(ledger_app::batch::MAX_LINE_BYTES)
    );
    let file = format!(
        "{}\r\n\nnot json\n{overlong}\n{}",
        r#"{"type":"open_account","command_id":"C1","account_id":"A1","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#,
        r#"{"type":"deposit","command_id":"C2","account_id":"A1","amount":"100.00","bank_ref":"B1"}"#,
    );
    let mut lines = ledger_app::CommandLines::new(file.as_bytes());
    let mut batches = ledger_app::LineBatches::new(&mut ledger, "test");
    let mut answers = Vec::new();
    while let Some((line, text)) = lines.next_line().unwrap() {
        answers.extend(batches.push(line, &text).await.unwrap());
    }
    answers.extend(batches.finish().await.unwrap());
    let summary: Vec<(u64, &str, &str)> = answers
        .iter()
        .map(|a| (a.line, a.status.as_str(), a.code.as_deref().unwrap_or("-")))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "accepted", "-"),
            (3, "rejected", "malformed"),
            (4, "rejected", "malformed"),
            (5, "accepted", "-"),
        ]
    );
    assert!(answers[2].message.as_deref().unwrap().contains("longer than"));
    assert_eq!(batches.tally().total(), 4);
    assert_eq!(batches.tally().by_status["rejected"], 2);

    // Bytes that are not UTF-8 are a line like any other, for the parser to refuse.
    let not_text = [b'{', 0xff, b'\n', b'{', b'\n'];
    let mut lines = ledger_app::CommandLines::new(&not_text[..]);
    assert_eq!(lines.next_line().unwrap(), Some((1, &not_text[..2])));
    assert_eq!(lines.next_line().unwrap(), Some((2, &not_text[3..4])));
    assert_eq!(lines.next_line().unwrap(), None);
}

#[tokio::test]
async fn a_long_run_of_malformed_lines_is_answered_without_waiting_for_the_end() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let (_store, mut ledger) = open(&db).await;
    let mut batches = ledger_app::LineBatches::new(&mut ledger, "test");
    let mut answered_early = 0;
    for line in 1..=ledger_app::batch::MAX_PENDING_LINES {
        answered_early += batches.push(line, "not json").await.unwrap().len() as u64;
    }
    assert_eq!(answered_early, ledger_app::batch::MAX_PENDING_LINES);
    assert!(batches.finish().await.unwrap().is_empty());
    assert_eq!(
        batches.tally().by_status["rejected"],
        ledger_app::batch::MAX_PENDING_LINES
    );
}

#[tokio::test]
async fn typed_submissions_are_answered_in_order_and_bounded() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let (_store, mut ledger) = open(&db).await;
    let submission = |id: &str, day: &str| ledger_app::Submission {
        command_id: id.to_owned(),
        command: ledger_app::LedgerCommand::EndOfDay {
            trade_date: date(day),
            off_calendar: false,
        },
        correlation_id: None,
        actor: "http".to_owned(),
        request_sha256: None,
    };
    let results = ledger_app::submit(
        &mut ledger,
        &[submission("E1", "2024-03-04"), submission("E1", "2024-03-04")],
    )
    .await
    .unwrap();
    let statuses: Vec<Status> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Status::Accepted, Status::Duplicate]);

    let too_many = vec![submission("E2", "2024-03-05"); ledger_app::batch::MAX_SUBMISSIONS + 1];
    let error = ledger_app::submit(&mut ledger, &too_many).await.unwrap_err();
    assert_eq!(error.code(), "invalid_input");
}

#[tokio::test]
async fn read_models_rebuild_by_name_and_refuse_an_unknown_one() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        day_one(&mut ledger).await;
        let head = ledger_app::head_position(store.as_ref()).await.unwrap();
        let mut last = None;
        let caught_up = ledger_app::catch_up_read_models(store.as_ref(), |p| last = Some(p))
            .await
            .unwrap();
        assert_eq!(
            (caught_up.applied_events, caught_up.checkpoint),
            (head, head),
            "{backend:?}"
        );
        assert_eq!(last.map(|p| (p.done, p.total)), Some((head, head)));
        let rebuilt = ledger_app::rebuild_read_models(store.as_ref(), Some("accounts"), |_| {})
            .await
            .unwrap();
        assert_eq!(rebuilt.applied_events, head);
        let error = ledger_app::rebuild_read_models(store.as_ref(), Some("nosuch"), |_| {})
            .await
            .unwrap_err();
        assert_eq!(error.code(), "unknown_projection");
        let report = ledger_app::verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(report.is_ok() && report.projections_checked, "{report:?}");
    }
}

#[tokio::test]
async fn opening_a_store_names_the_database_without_its_password() {
    let error = match ledger_app::open_store("mysql://localhost/x").await {
        Err(error) => error,
        Ok(_) => panic!("mysql is no backend"),
    };
    assert_eq!(error.code(), "invalid_input");
    assert!(error.to_string().contains("unknown scheme"), "{error}");

    let error = match ledger_app::open_store("postgres://ledger:secret@127.0.0.1:1/none").await {
        Err(error) => error,
        Ok(_) => panic!("nothing listens on port 1"),
    };
    let text = error.to_string();
    assert!(text.starts_with("cannot open the ledger database"), "{text}");
    assert!(!text.contains("secret"), "{text}");

    let error = ledger_app::load_rules(Some(std::path::Path::new("missing.toml"))).unwrap_err();
    assert_eq!(error.code(), "invalid_rules");
    assert!(error.to_string().starts_with("cannot read rules file missing.toml"));
}

#[tokio::test]
async fn the_demo_is_the_same_for_a_seed_on_every_backend() {
    let mut runs = Vec::new();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        let mut phases = 0;
        let run = ledger_app::demo::run(&mut ledger, 7, 5, |step| {
            if let ledger_app::demo::DemoProgress::Phase { .. } = step {
                phases += 1;
            }
        })
        .await
        .unwrap();
        assert!(phases > 10, "{backend:?}");
        assert_eq!(run.lines.len(), run.answers.len());
        let summary = ledger_app::demo::summarize(store.as_ref(), &run).await.unwrap();
        assert_eq!(summary.accounts, 5);
        assert!(
            summary.invariant_violations.is_empty(),
            "{:?}",
            summary.invariant_violations
        );
        let again = ledger_app::demo::run(&mut ledger, 7, 5, |_| {}).await.unwrap_err();
        assert_eq!(again.code(), "database_not_empty");
        let head = ledger_app::verify(store.as_ref(), |_| {}).await.unwrap().head_hash;
        runs.push((run.lines, head));
    }
    assert_eq!(
        runs[0], runs[1],
        "the same seed gives the same commands and the same chain"
    );
    assert_eq!(ledger_app::demo::check_accounts(0).unwrap_err().code(), "invalid_input");
}
