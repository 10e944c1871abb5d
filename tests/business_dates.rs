//! Business dates, end to end: every movement gets the trade date it belongs
//! to when it is decided, and keeps it; end of day follows the trading
//! calendar; a log written before business dates were stored still reads.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{ledger_ok, ledger_on, stderr, stdout};

fn repo_path(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn write_lines(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.display().to_string()
}

/// `ledger events --json`, one object a line.
fn events(dir: &Path, db: &str) -> Vec<Value> {
    stdout(&ledger_ok(dir, db, &["events", "--json"]))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The business date `events --json` shows for the event of this command id and type.
fn business_date_of(events: &[Value], command_id: &str, event_type: &str) -> Value {
    events
        .iter()
        .find(|e| e["commandid"] == command_id && e["type"].as_str().unwrap().split('.').nth(2) == Some(event_type))
        .unwrap_or_else(|| panic!("an {event_type} of {command_id}"))
        .get("businessdate")
        .cloned()
        .unwrap_or(Value::Null)
}

fn statement_csv(dir: &Path, db: &str, account: &str, from: &str, to: &str) -> String {
    let args = [
        "statement",
        "--account",
        account,
        "--from",
        from,
        "--to",
        to,
        "--format",
        "csv",
    ];
    stdout(&ledger_ok(dir, db, &args))
}

const FRIDAY_SETUP: &[&str] = &[
    r#"{"type": "list_instrument", "command_id": "C1", "instrument": "601398.SH", "name": "ICBC", "board": "main", "risk_level": 1}"#,
    r#"{"type": "set_prev_close", "command_id": "C3", "instrument": "601398.SH", "trade_date": "2024-03-08", "price": "5.00"}"#,
    r#"{"type": "open_account", "command_id": "C2", "account_id": "A0001", "customer_name": "Li Lei", "id_number": "110101199003074578", "risk_level": 3}"#,
    r#"{"type": "deposit", "command_id": "C4", "account_id": "A0001", "amount": "1000.00", "bank_ref": "BANK-FRIDAY"}"#,
    r#"{"type": "end_of_day", "command_id": "C5", "trade_date": "2024-03-08"}"#,
];

/// 20:00 in Beijing on Friday 8 March 2024, after that day's close.
const FRIDAY_EVENING: &str = "2024-03-08T12:00:00Z";

#[test]
fn a_deposit_after_the_close_belongs_to_the_next_trade_date_and_stays_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let setup = write_lines(dir.path(), "setup.jsonl", FRIDAY_SETUP);
    ledger_ok(dir.path(), &db, &["exec", &setup, "--recorded-at", FRIDAY_EVENING]);
    let late = write_lines(
        dir.path(),
        "late.jsonl",
        &[
            r#"{"type": "deposit", "command_id": "C6", "account_id": "A0001", "amount": "250.00", "bank_ref": "BANK-EVENING"}"#,
        ],
    );
    ledger_ok(dir.path(), &db, &["exec", &late, "--recorded-at", FRIDAY_EVENING]);

    let log = events(dir.path(), &db);
    assert_eq!(business_date_of(&log, "C4", "CashDeposited"), "2024-03-08");
    assert_eq!(business_date_of(&log, "C5", "DayClosed"), "2024-03-08");
    // Not the wall clock's Friday: the next trading day of the calendar, over the weekend.
    assert_eq!(business_date_of(&log, "C6", "CashDeposited"), "2024-03-11");
    assert_eq!(business_date_of(&log, "C2", "AccountOpened"), "2024-03-08");
    // Listed before the ledger named any trade date: no business date (docs/events.md).
    assert!(business_date_of(&log, "C1", "InstrumentListed").is_null());

    let friday = |dir: &Path| statement_csv(dir, &db, "A0001", "2024-03-08", "2024-03-08");
    let monday = |dir: &Path| statement_csv(dir, &db, "A0001", "2024-03-11", "2024-03-11");
    let (friday_before, monday_before) = (friday(dir.path()), monday(dir.path()));
    // The CSV's movement lines: the Friday deposit of 1,000.00, the evening one of 250.00.
    assert!(
        friday_before.contains(",1000.00,1000.00") && !friday_before.contains(",250.00,"),
        "{friday_before}"
    );
    assert!(monday_before.contains(",250.00,1250.00"), "{monday_before}");

    // Monday closes; the evening deposit neither moves nor changes either statement's lines.
    ledger_ok(dir.path(), &db, &["eod", "--date", "2024-03-11"]);
    let movement_lines = |csv: &str| -> Vec<String> {
        csv.lines()
            .filter(|line| line.starts_with("movement,"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(movement_lines(&friday(dir.path())), movement_lines(&friday_before));
    assert_eq!(movement_lines(&monday(dir.path())), movement_lines(&monday_before));
    assert_eq!(
        business_date_of(&events(dir.path(), &db), "C6", "CashDeposited"),
        "2024-03-11"
    );
    ledger_ok(dir.path(), &db, &["verify"]);
}

#[test]
fn end_of_day_closes_only_the_open_trade_date_of_the_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let setup = write_lines(dir.path(), "setup.jsonl", FRIDAY_SETUP);
    ledger_ok(dir.path(), &db, &["exec", &setup]);
    let head = |dir: &Path| {
        let out = stdout(&ledger_ok(dir, &db, &["verify"]));
        out.lines().find(|l| l.starts_with("head hash ")).unwrap().to_owned()
    };
    let head_before = head(dir.path());

    // A typo of the year, a Saturday, a day after the open one.
    for (date, why) in [
        ("2042-03-11", "the trading calendar covers"),
        ("2024-03-09", "not a trading day"),
        ("2024-03-12", "the open trade date is 2024-03-11"),
    ] {
        let out = ledger_on(dir.path(), &db, &["eod", "--date", date]);
        assert_eq!(out.status.code(), Some(1), "eod {date}: {}", stdout(&out));
        let message = stderr(&out);
        assert!(
            message.contains("not_open_trade_date") && message.contains(why),
            "eod {date}: {message}"
        );
    }
    assert_eq!(head(dir.path()), head_before, "nothing was written");

    // An order for the closed Friday or for the Saturday is refused; Monday is open.
    let orders = write_lines(
        dir.path(),
        "orders.jsonl",
        &[
            r#"{"type": "set_prev_close", "command_id": "P1", "instrument": "601398.SH", "trade_date": "2024-03-09", "price": "5.00"}"#,
            r#"{"type": "place_order", "command_id": "O1", "account_id": "A0001", "order_id": "O1", "instrument": "601398.SH", "side": "buy", "quantity": 100, "price": "5.00", "trade_date": "2024-03-09"}"#,
            r#"{"type": "set_prev_close", "command_id": "P2", "instrument": "601398.SH", "trade_date": "2024-03-11", "price": "5.00"}"#,
            r#"{"type": "place_order", "command_id": "O2", "account_id": "A0001", "order_id": "O2", "instrument": "601398.SH", "side": "buy", "quantity": 100, "price": "5.00", "trade_date": "2024-03-11"}"#,
        ],
    );
    let answers = stdout(&ledger_ok(dir.path(), &db, &["exec", &orders, "--json"]));
    let answers: Vec<Value> = answers.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers[1]["code"], "day_closed", "{answers:?}");
    assert_eq!(answers[3]["status"], "accepted", "{answers:?}");

    ledger_ok(dir.path(), &db, &["eod", "--date", "2024-03-11"]);
    // An unscheduled closure: the operator closes a date off the calendar, on purpose.
    let out = ledger_on(dir.path(), &db, &["eod", "--date", "2024-03-13"]);
    assert!(
        stderr(&out).contains("the open trade date is 2024-03-12"),
        "{}",
        stderr(&out)
    );
    ledger_ok(dir.path(), &db, &["eod", "--date", "2024-03-13", "--off-calendar"]);
    let log = events(dir.path(), &db);
    assert!(log
        .iter()
        .any(|e| e["type"] == "ledger.clearingday.DayClosed.v1" && e["data"]["trade_date"] == "2024-03-13"));
}

/// The old log of tests/fixtures has no business date on any event: it still reads,
/// verifies and dates its movements, and new commands on it get theirs.
#[test]
fn the_old_log_without_business_dates_still_replays_and_dates_its_movements() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("two-days.sqlite3");
    std::fs::copy(repo_path("tests/fixtures/two-days.sqlite3"), &db_path).unwrap();
    let db = format!("sqlite://{}", db_path.display());
    ledger_ok(dir.path(), &db, &["verify"]);
    let log = events(dir.path(), &db);
    assert!(
        log.iter().all(|e| e.get("businessdate").is_none()),
        "the old log has none"
    );

    // Deposits before the first end of day belong to 2024-03-04, by the rule for old events.
    let first_day = statement_csv(dir.path(), &db, "A0001", "2024-03-04", "2024-03-04");
    assert!(first_day.contains("movement,2024-03-04,18,"), "{first_day}");
    let second_day_before = statement_csv(dir.path(), &db, "A0001", "2024-03-05", "2024-03-05");

    // Business goes on on the old log: the next trade date after its last close, 2024-03-06.
    let more = write_lines(
        dir.path(),
        "more.jsonl",
        &[
            r#"{"type": "deposit", "command_id": "N1", "account_id": "A0001", "amount": "10.00", "bank_ref": "BN000001"}"#,
            r#"{"type": "end_of_day", "command_id": "N2", "trade_date": "2024-03-06"}"#,
        ],
    );
    ledger_ok(dir.path(), &db, &["exec", &more]);
    let log = events(dir.path(), &db);
    assert_eq!(business_date_of(&log, "N1", "CashDeposited"), "2024-03-06");
    assert_eq!(
        statement_csv(dir.path(), &db, "A0001", "2024-03-05", "2024-03-05")
            .lines()
            .filter(|l| l.starts_with("movement,"))
            .collect::<Vec<_>>(),
        second_day_before
            .lines()
            .filter(|l| l.starts_with("movement,"))
            .collect::<Vec<_>>(),
        "the old log's movements keep their dates"
    );
    // Old and new events verify together: the old bytes hash as they always did.
    ledger_ok(dir.path(), &db, &["verify"]);
}
