//! Typed submissions (what the HTTP server will send) whose values only the
//! domain can check against the market rules: answered `malformed`, without a
//! line number, and never recorded, so the command id stays free for the
//! corrected command, in a later call or later in the same batch.

use std::sync::Arc;

use ledger_app::{EventStore, Ledger, LedgerCommand, Status, Submission};
use ledger_testkit::{TestDatabase, BACKENDS};
use rust_decimal::Decimal;

fn amount(text: &str) -> Decimal {
    text.parse().unwrap()
}

const SETUP: &[&str] = &[
    r#"{"type":"list_instrument","command_id":"S1","instrument":"600519.SH","name":"Kweichow Moutai","board":"main","risk_level":2}"#,
    r#"{"type":"set_prev_close","command_id":"S2","instrument":"600519.SH","trade_date":"2024-03-04","price":"1688.00"}"#,
    r#"{"type":"open_account","command_id":"S3","account_id":"A1","customer_name":"Wang Fang","id_number":"110101199003071234","risk_level":3}"#,
    r#"{"type":"deposit","command_id":"S4","account_id":"A1","amount":"400000.00","bank_ref":"B1"}"#,
];

async fn open(db: &TestDatabase) -> (Arc<dyn EventStore>, Ledger) {
    let store = ledger_app::open_store(&db.url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    let mut ledger = Ledger::new(Arc::clone(&store), rules);
    let answers = ledger_app::run_lines(&mut ledger, "test", 1, SETUP.iter().copied(), |_| {})
        .await
        .unwrap();
    assert!(answers.iter().all(|a| a.status == Status::Accepted), "{answers:?}");
    (store, ledger)
}

fn typed(line: &str) -> Submission {
    Submission::new(ledger_commands::parse_line(line).unwrap(), "http")
}

fn deposit(command_id: &str, amount: Decimal) -> Submission {
    let mut submission = typed(&format!(
        r#"{{"type":"deposit","command_id":"{command_id}","account_id":"A1","amount":"1.00","bank_ref":"B-{command_id}"}}"#
    ));
    // A typed command skips the wire's checks: the domain is the last line of defence.
    if let LedgerCommand::Deposit { amount_cny, .. } = &mut submission.command {
        *amount_cny = amount;
    }
    submission
}

fn list_instrument(command_id: &str, level: u8) -> Submission {
    let mut submission = typed(&format!(
        r#"{{"type":"list_instrument","command_id":"{command_id}","instrument":"300750.SZ","name":"CATL","board":"chinext","risk_level":3}}"#
    ));
    if let LedgerCommand::ListInstrument { risk_level, .. } = &mut submission.command {
        *risk_level = level;
    }
    submission
}

fn place_order(command_id: &str, quantity: u64) -> Submission {
    typed(&format!(
        r#"{{"type":"place_order","command_id":"{command_id}","account_id":"A1","order_id":"O-{command_id}","instrument":"600519.SH","side":"buy","quantity":{quantity},"price":"1690.00","trade_date":"2024-03-04"}}"#
    ))
}

fn answers(results: &[ledger_app::CommandResult]) -> Vec<(Status, Option<&str>)> {
    results.iter().map(|r| (r.status, r.code.as_deref())).collect()
}

const MALFORMED: (Status, Option<&str>) = (Status::Rejected, Some("malformed"));
const ACCEPTED: (Status, Option<&str>) = (Status::Accepted, None);

#[tokio::test]
async fn a_typed_malformed_command_is_not_recorded_and_its_id_stays_free() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        let head = ledger_app::head_position(store.as_ref()).await.unwrap();
        let refused = ledger_app::submit(
            &mut ledger,
            &[
                deposit("T1", amount("1.001")),
                list_instrument("T2", 9),
                place_order("T3", 0),
            ],
        )
        .await
        .unwrap();
        assert_eq!(answers(&refused), [MALFORMED; 3], "{backend:?}: {refused:?}");
        assert!(refused[0].message.as_deref().unwrap().contains("decimal places"));
        assert!(refused[1].message.as_deref().unwrap().contains("risk_level"));
        assert!(refused[2].message.as_deref().unwrap().contains("quantity"));
        assert!(
            refused
                .iter()
                .all(|r| !r.message.as_deref().unwrap().starts_with("line")),
            "a typed command has no line: {refused:?}"
        );
        assert_eq!(ledger_app::head_position(store.as_ref()).await.unwrap(), head);

        let corrected = ledger_app::submit(
            &mut ledger,
            &[
                deposit("T1", amount("1.00")),
                list_instrument("T2", 3),
                place_order("T3", 100),
            ],
        )
        .await
        .unwrap();
        assert_eq!(answers(&corrected), [ACCEPTED; 3], "{backend:?}: {corrected:?}");
    }
}

#[tokio::test]
async fn a_malformed_command_then_its_correction_in_one_batch_applies_the_correction() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        let results = ledger_app::submit(
            &mut ledger,
            &[
                place_order("T1", 0),
                deposit("T2", amount("5.00")),
                place_order("T1", 100),
                place_order("T1", 0),
                deposit("T3", amount("0.001")),
                deposit("T3", amount("0.001")),
            ],
        )
        .await
        .unwrap();
        // A malformed command is malformed whatever its command id has answered before:
        // the same line is answered the same way each time it is sent.
        assert_eq!(
            answers(&results),
            [MALFORMED, ACCEPTED, ACCEPTED, MALFORMED, MALFORMED, MALFORMED],
            "{backend:?}: {results:?}"
        );
        let balances = ledger_app::balances(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(balances[0].frozen, "169053.08", "{backend:?}: the order was placed");
        let report = ledger_app::verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(report.is_ok(), "{backend:?}: {report:?}");
    }
}
