//! Reconciliation of a date compares the files with the ledger at the close of that date,
//! replayed from the log, whatever was written after it: the next date's trading, a
//! deposit after the close, a late settlement. On every backend.

#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use chrono::NaiveDate;
use ledger_app::{EventStore, Ledger, LineAnswer, Reconciliation};
use ledger_testkit::{Backend, TestDatabase, BACKENDS};
use rust_decimal::Decimal;

const TWO_DAYS: &str = include_str!("../../tests/conformance/two-days.jsonl");

fn day1() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 4).unwrap()
}

fn day2() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()
}

/// The worked example's lines, without its end_of_day and settle lines (the tests run those
/// through the application, under `eod:{date}` and `settle:{date}`), split at the first
/// date's close: what comes before it, and the second date's lines.
fn trading_lines() -> (Vec<&'static str>, Vec<&'static str>) {
    let lines: Vec<&str> = TWO_DAYS.lines().collect();
    let close = lines
        .iter()
        .position(|l| l.contains(r#""type": "end_of_day""#))
        .unwrap();
    let clearing = |l: &&str| l.contains(r#""type": "end_of_day""#) || l.contains(r#""type": "settle""#);
    let first: Vec<&str> = lines[..close].to_vec();
    let second: Vec<&str> = lines[close..].iter().filter(|l| !clearing(l)).copied().collect();
    (first, second)
}

async fn open(db: &TestDatabase) -> (Arc<dyn EventStore>, Ledger) {
    let store = ledger_app::open_store(&db.url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    (Arc::clone(&store), Ledger::new(store, rules))
}

async fn run(ledger: &mut Ledger, lines: &[&str]) -> Vec<LineAnswer> {
    ledger_app::run_lines(ledger, "test", 1, lines.iter().copied(), |_| {})
        .await
        .unwrap()
}

async fn deposit(ledger: &mut Ledger, command_id: &str, amount: &str) {
    let line = format!(
        r#"{{"type":"deposit","command_id":"{command_id}","account_id":"A0001","amount":"{amount}","bank_ref":"B-{command_id}"}}"#
    );
    let answers = run(ledger, &[&line]).await;
    assert_eq!(answers.len(), 1);
}

/// The bank's and the depository's files as they would be if they agreed with the ledger
/// right now, built from today's read-outs: available + frozen, and quantity.
async fn files_of_now(store: &dyn EventStore) -> (String, String) {
    let mut bank = String::from("account,balance\n");
    for row in ledger_app::balances(store, |_| {}).await.unwrap() {
        let cash: Decimal = row.available.parse::<Decimal>().unwrap() + row.frozen.parse::<Decimal>().unwrap();
        bank.push_str(&format!("{},{}\n", row.account_id, ledger_app::format_cny(cash)));
    }
    let mut depository = String::from("account,instrument,quantity\n");
    for row in ledger_app::positions(store, |_| {}).await.unwrap() {
        depository.push_str(&format!("{},{},{}\n", row.account_id, row.instrument, row.quantity));
    }
    (bank, depository)
}

async fn reconcile(store: &dyn EventStore, date: NaiveDate, files: &(String, String)) -> Reconciliation {
    ledger_app::reconcile(store, date, files.0.as_bytes(), files.1.as_bytes())
        .await
        .unwrap()
}

async fn stored_breaks(db: &TestDatabase) -> Vec<(String, String, String)> {
    use sqlx::Connection;
    let query = "SELECT CAST(trade_date AS TEXT), kind, account_id FROM reconciliation_breaks \
                 ORDER BY trade_date, kind, account_id, instrument";
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(query).fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(query).fetch_all(&mut conn).await.unwrap()
        }
    }
}

#[tokio::test]
async fn a_past_date_reconciles_against_its_close_after_the_next_dates_trading() {
    let (first, second) = trading_lines();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run(&mut ledger, &first).await;
        ledger_app::end_of_day(&mut ledger, "test", day1()).await.unwrap();
        ledger_app::settle(&mut ledger, "test", day1()).await.unwrap();
        let close_of_day1 = store.head_position().await.unwrap();
        let day1_files = files_of_now(store.as_ref()).await;

        run(&mut ledger, &second).await;
        ledger_app::end_of_day(&mut ledger, "test", day2()).await.unwrap();
        ledger_app::settle(&mut ledger, "test", day2()).await.unwrap();
        let day2_files = files_of_now(store.as_ref()).await;
        assert_ne!(day1_files, day2_files, "the second date moved cash and shares");

        let found = reconcile(store.as_ref(), day1(), &day1_files).await;
        assert_eq!(
            found.breaks,
            vec![],
            "{backend:?}: the close of D1 agrees with files of D1"
        );
        assert_eq!(found.as_of_position, close_of_day1, "{backend:?}");
        assert_eq!(found.trade_date, day1());

        // The same files are not the close of D2: breaks.
        let against_day2 = reconcile(store.as_ref(), day2(), &day1_files).await;
        assert!(!against_day2.breaks.is_empty(), "{backend:?}");
        assert_eq!(
            against_day2.as_of_position,
            store.head_position().await.unwrap(),
            "{backend:?}: D2 was closed and settled last"
        );
        assert!(reconcile(store.as_ref(), day2(), &day2_files).await.breaks.is_empty());

        // Rerun later, after more was written: the same answer, and the same stored rows.
        let stored = stored_breaks(&db).await;
        deposit(&mut ledger, "LATER1", "5000.00").await;
        let again = reconcile(store.as_ref(), day1(), &day1_files).await;
        assert_eq!(again, found, "{backend:?}");
        assert_eq!(stored_breaks(&db).await, stored, "{backend:?}");
    }
}

#[tokio::test]
async fn a_deposit_after_the_close_is_not_in_the_cut_nor_a_settlement_after_it() {
    let (first, second) = trading_lines();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run(&mut ledger, &first).await;
        ledger_app::end_of_day(&mut ledger, "test", day1()).await.unwrap();
        let closed_at = store.head_position().await.unwrap();
        let at_close = files_of_now(store.as_ref()).await;

        // 20:00, after the close: a deposit, then D1's settlement, then D2's orders.
        deposit(&mut ledger, "EVENING1", "1000.00").await;
        let with_deposit = files_of_now(store.as_ref()).await;
        ledger_app::settle(&mut ledger, "test", day1()).await.unwrap();
        run(&mut ledger, &second).await;

        let cut = ledger_app::close_cut(store.as_ref(), day1()).await.unwrap().unwrap();
        assert_eq!(cut.position, closed_at, "{backend:?}");
        assert!(!cut.settlement_included, "{backend:?}: a deposit came between");

        let found = reconcile(store.as_ref(), day1(), &at_close).await;
        assert_eq!(found.breaks, vec![], "{backend:?}");
        assert_eq!(found.as_of_position, closed_at);
        let found = reconcile(store.as_ref(), day1(), &with_deposit).await;
        let kinds: Vec<(&str, &str, &str, &str)> = found
            .breaks
            .iter()
            .map(|b| {
                (
                    b.kind.as_str(),
                    b.account_id.as_str(),
                    b.ours.as_str(),
                    b.theirs.as_str(),
                )
            })
            .collect();
        assert_eq!(kinds.len(), 1, "{backend:?}: {kinds:?}");
        assert_eq!((kinds[0].0, kinds[0].1), ("cash_differs", "A0001"), "{backend:?}");
        let (ours, theirs): (Decimal, Decimal) = (kinds[0].2.parse().unwrap(), kinds[0].3.parse().unwrap());
        assert_eq!(theirs - ours, Decimal::new(100_000, 2), "{backend:?}: the deposit");
    }
}

#[tokio::test]
async fn a_settlement_run_right_after_the_end_of_day_is_in_the_cut() {
    let (first, _) = trading_lines();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run(&mut ledger, &first).await;
        ledger_app::end_of_day(&mut ledger, "test", day1()).await.unwrap();
        let closed_at = store.head_position().await.unwrap();
        let settled = ledger_app::settle(&mut ledger, "test", day1()).await.unwrap();
        assert!(settled.events > 0);
        let settled_at = store.head_position().await.unwrap();
        deposit(&mut ledger, "EVENING1", "1000.00").await;

        let cut = ledger_app::close_cut(store.as_ref(), day1()).await.unwrap().unwrap();
        assert_eq!(cut.position, settled_at, "{backend:?}");
        assert!(cut.settlement_included, "{backend:?}");
        assert!(cut.position > closed_at);
    }
}

#[tokio::test]
async fn a_settlement_under_its_after_refusal_id_is_in_the_cut_too() {
    let (first, _) = trading_lines();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run(&mut ledger, &first).await;
        // A log written before the day's state was checked first: a refused settle under the step's id.
        let early = run(
            &mut ledger,
            &[r#"{"type":"settle","command_id":"settle:2024-03-04","trade_date":"2024-03-04"}"#],
        )
        .await;
        assert_eq!(early[0].code.as_deref(), Some("day_closed"), "{backend:?}");
        ledger_app::end_of_day(&mut ledger, "test", day1()).await.unwrap();
        let settled = ledger_app::settle(&mut ledger, "test", day1()).await.unwrap();
        assert!(
            settled.events > 0,
            "{backend:?}: settled under settle:2024-03-04:after-refusal"
        );
        let settled_at = store.head_position().await.unwrap();

        let cut = ledger_app::close_cut(store.as_ref(), day1()).await.unwrap().unwrap();
        assert_eq!(cut.position, settled_at, "{backend:?}");
        assert!(cut.settlement_included, "{backend:?}");
    }
}

#[tokio::test]
async fn a_date_closed_by_a_command_file_line_has_its_cut_too() {
    let lines: Vec<&str> = TWO_DAYS.lines().collect();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        let answers = run(&mut ledger, &lines).await;
        // The worked example closes and settles each date with lines of its own command ids.
        let settle_of_day1 = answers
            .iter()
            .zip(&lines)
            .find(|(_, l)| l.contains(r#""type": "settle""#))
            .map(|(a, _)| a.clone())
            .unwrap();
        let cut = ledger_app::close_cut(store.as_ref(), day1()).await.unwrap().unwrap();
        assert_eq!(Some(cut.position), settle_of_day1.last_position, "{backend:?}");
        assert!(cut.settlement_included);
    }
}

#[tokio::test]
async fn a_date_not_closed_is_refused_and_nothing_is_stored() {
    let (first, _) = trading_lines();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run(&mut ledger, &first).await;
        let files = files_of_now(store.as_ref()).await;
        let error = ledger_app::reconcile(store.as_ref(), day1(), files.0.as_bytes(), files.1.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "day_not_closed", "{backend:?}");
        assert!(
            error.to_string().contains("run `ledger eod --date 2024-03-04` first"),
            "{error}"
        );
        assert!(ledger_app::close_cut(store.as_ref(), day1()).await.unwrap().is_none());
        assert_eq!(stored_breaks(&db).await, vec![], "{backend:?}");

        // Closed, it reconciles; the next date, still open, is refused and D1's rows stay.
        ledger_app::end_of_day(&mut ledger, "test", day1()).await.unwrap();
        let bad_bank = "account,balance\nA0001,0.01\n";
        let found = ledger_app::reconcile(store.as_ref(), day1(), bad_bank.as_bytes(), files.1.as_bytes())
            .await
            .unwrap();
        assert!(!found.breaks.is_empty());
        let stored = stored_breaks(&db).await;
        assert_eq!(stored.len(), found.breaks.len(), "{backend:?}");
        let error = ledger_app::reconcile(store.as_ref(), day2(), files.0.as_bytes(), files.1.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "day_not_closed", "{backend:?}");
        assert_eq!(stored_breaks(&db).await, stored, "{backend:?}");
    }
}
