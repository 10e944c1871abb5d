#![allow(clippy::too_many_lines)]
//! The engine on a real SQLite file: idempotency, bad input that changes
//! nothing, the end-of-day process, batch limits, and the aggregate cache.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ledger_commands::{parse_line, EngineError, Ledger, LineRunner, Status, Submission, MAX_BATCH_COMMANDS};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_projections::AccountsView;
use ledger_testkit::faults::{Fault, FaultPlan, FaultyStore, StoreCall};
use ledger_testkit::{Backend, TestDatabase};

const SETUP: &[&str] = &[
    r#"{"type":"list_instrument","command_id":"S1","instrument":"601398.SH","name":"ICBC","board":"main","risk_level":1}"#,
    r#"{"type":"set_prev_close","command_id":"S2","instrument":"601398.SH","trade_date":"2024-03-04","price":"5.12"}"#,
    r#"{"type":"open_account","command_id":"S3","account_id":"A1","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#,
    r#"{"type":"deposit","command_id":"S4","account_id":"A1","amount":"10000.00","bank_ref":"B1"}"#,
    r#"{"type":"place_order","command_id":"S5","account_id":"A1","order_id":"O1","instrument":"601398.SH","side":"buy","quantity":1000,"price":"5.10","trade_date":"2024-03-04"}"#,
    r#"{"type":"fill","command_id":"S6","account_id":"A1","order_id":"O1","exec_id":"E1","quantity":400,"price":"5.10"}"#,
];

fn rules() -> Arc<MarketRules> {
    Arc::new(MarketRules::china_a_share().unwrap())
}

fn submit(line: &str) -> Submission {
    Submission::new(parse_line(line).unwrap(), "test")
}

async fn fresh() -> (TestDatabase, Arc<dyn EventStore>, Ledger) {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let store = connect(&db.url).await.unwrap();
    let mut ledger = Ledger::new(Arc::clone(&store), rules());
    let batch: Vec<Submission> = SETUP.iter().map(|l| submit(l)).collect();
    let results = ledger.execute(&batch).await.unwrap();
    assert!(results.iter().all(|r| r.status == Status::Accepted), "{results:?}");
    (db, store, ledger)
}

async fn balances(store: &dyn EventStore) -> String {
    let mut view = AccountsView::default();
    view.catch_up(store).await.unwrap();
    format!("{:?} {:?}", view.balances(), view.positions())
}

#[tokio::test]
async fn a_command_id_is_answered_once_within_a_batch_across_batches_and_restarts() {
    let (db, store, mut ledger) = fresh().await;
    let deposit = r#"{"type":"deposit","command_id":"C1","account_id":"A1","amount":"5.00","bank_ref":"B2"}"#;
    let results = ledger.execute(&[submit(deposit), submit(deposit)]).await.unwrap();
    assert_eq!(results[0].status, Status::Accepted);
    assert_eq!(results[1].status, Status::Duplicate);
    assert_eq!(results[1].first_status.as_deref(), Some("accepted"));
    assert_eq!(results[1].events, 0);
    let head = store.head_position().await.unwrap();

    let again = ledger.execute(&[submit(deposit)]).await.unwrap();
    assert_eq!(
        (again[0].status, again[0].first_position),
        (Status::Duplicate, results[0].first_position)
    );

    drop(ledger);
    drop(store);
    let store = connect(&db.url).await.unwrap();
    let mut restarted = Ledger::new(Arc::clone(&store), rules());
    let after_restart = restarted.execute(&[submit(deposit)]).await.unwrap();
    assert_eq!(after_restart[0].status, Status::Duplicate);
    assert_eq!(
        store.head_position().await.unwrap(),
        head,
        "no duplicate wrote anything"
    );
}

#[tokio::test]
async fn a_refusal_writes_no_event_and_is_remembered() {
    let (_db, store, mut ledger) = fresh().await;
    let head = store.head_position().await.unwrap();
    let too_much = r#"{"type":"withdraw","command_id":"C2","account_id":"A1","amount":"99999.00","bank_ref":"W1"}"#;
    let first = ledger.execute(&[submit(too_much)]).await.unwrap();
    assert_eq!(
        (first[0].status, first[0].code.as_deref()),
        (Status::Rejected, Some("insufficient_funds"))
    );
    assert_eq!(store.head_position().await.unwrap(), head);
    let second = ledger.execute(&[submit(too_much)]).await.unwrap();
    assert_eq!(second[0].status, Status::Duplicate);
    assert_eq!(second[0].first_status.as_deref(), Some("rejected"));
    assert_eq!(second[0].first_code.as_deref(), Some("insufficient_funds"));
}

#[tokio::test]
async fn bad_input_gets_its_code_and_changes_nothing() {
    let (_db, store, mut ledger) = fresh().await;
    let head = store.head_position().await.unwrap();
    let before = balances(store.as_ref()).await;
    let cases: &[(&str, &str, &str)] = &[
        ("{oops", "malformed", "not valid JSON"),
        (
            r#"{"type":"teleport","command_id":"X1"}"#,
            "malformed",
            "unknown command type",
        ),
        (
            r#"{"type":"deposit","command_id":"X2","account_id":"A1","bank_ref":"B9"}"#,
            "malformed",
            "missing field `amount`",
        ),
        (
            r#"{"type":"deposit","command_id":"X3","account_id":"A1","amount":"-5.00","bank_ref":"B9"}"#,
            "malformed",
            "positive",
        ),
        (
            r#"{"type":"deposit","command_id":"X4","account_id":"A1","amount":"0","bank_ref":"B9"}"#,
            "malformed",
            "positive",
        ),
        (
            r#"{"type":"deposit","command_id":"X5","account_id":"A1","amount":"1.005","bank_ref":"B9"}"#,
            "malformed",
            "decimal places",
        ),
        (
            r#"{"type":"deposit","command_id":"X6","account_id":"A1","amount":"ten","bank_ref":"B9"}"#,
            "malformed",
            "decimal string",
        ),
        (
            r#"{"type":"deposit","command_id":"X7","account_id":"A1","amount":"1000000000000000000","bank_ref":"B9"}"#,
            "malformed",
            "too large",
        ),
        (
            r#"{"type":"deposit","command_id":"X8","account_id":"A1","amount":"999999999999.00","bank_ref":"B9"}"#,
            "malformed",
            "largest accepted",
        ),
        (
            r#"{"type":"fill","command_id":"X9","account_id":"A1","order_id":"O1","exec_id":"E9","quantity":18446744073709551616,"price":"5.10"}"#,
            "malformed",
            "quantity",
        ),
        (
            r#"{"type":"deposit","command_id":"X10","account_id":"NOBODY","amount":"1.00","bank_ref":"B9"}"#,
            "unknown_account",
            "no account",
        ),
        (
            r#"{"type":"place_order","command_id":"X11","account_id":"A1","order_id":"O9","instrument":"600000.SH","side":"buy","quantity":100,"price":"5.00","trade_date":"2024-03-04"}"#,
            "unknown_instrument",
            "not listed",
        ),
        (
            r#"{"type":"confirm_cancel","command_id":"X12","account_id":"A1","order_id":"O404"}"#,
            "unknown_order",
            "no order",
        ),
        (
            r#"{"type":"fill","command_id":"X13","account_id":"A1","order_id":"O1","exec_id":"E2","quantity":601,"price":"5.10"}"#,
            "fill_exceeds_order",
            "exceeds",
        ),
        (
            r#"{"type":"fill","command_id":"X14","account_id":"A1","order_id":"O1","exec_id":"E1","quantity":100,"price":"5.10"}"#,
            "duplicate_exec",
            "already booked",
        ),
    ];
    let mut ledger_runner = LineRunner::new(&mut ledger, "test");
    let mut answers = Vec::new();
    for (index, (line, _, _)) in cases.iter().enumerate() {
        answers.extend(ledger_runner.push(index as u64 + 1, line).await.unwrap());
    }
    answers.extend(ledger_runner.flush().await.unwrap());
    assert_eq!(answers.len(), cases.len());
    for (answer, (line, code, words)) in answers.iter().zip(cases) {
        assert_eq!(answer.code.as_deref(), Some(*code), "{line}: {answer:?}");
        let message = answer.message.as_deref().unwrap_or("");
        // The parser's and the domain's malformed answers alike (X8 is the rules' bound).
        assert_eq!(
            message.starts_with(&format!("line {}: ", answer.line)),
            *code == "malformed",
            "{line}: {message}"
        );
        assert!(
            message.contains(words),
            "{line}: message {message:?} should mention {words:?}"
        );
        assert_eq!(answer.events, 0);
    }
    assert_eq!(
        answers.last().map(|a| a.status),
        Some(Status::Duplicate),
        "a repeated execution is a no-op"
    );
    assert_eq!(store.head_position().await.unwrap(), head, "nothing was written");
    assert_eq!(balances(store.as_ref()).await, before, "nothing changed");
}

#[tokio::test]
async fn end_of_day_expires_and_settlement_clears_then_both_refuse_a_repeat() {
    let (_db, store, mut ledger) = fresh().await;
    let eod = r#"{"type":"end_of_day","command_id":"D1","trade_date":"2024-03-04"}"#;
    let settle = r#"{"type":"settle","command_id":"D2","trade_date":"2024-03-04"}"#;
    let early = ledger
        .execute(&[submit(
            r#"{"type":"settle","command_id":"D0","trade_date":"2024-03-04"}"#,
        )])
        .await
        .unwrap();
    assert_eq!(
        early[0].code.as_deref(),
        Some("day_closed"),
        "no settlement before the day is closed"
    );
    let results = ledger.execute(&[submit(eod), submit(settle)]).await.unwrap();
    assert!(results.iter().all(|r| r.status == Status::Accepted), "{results:?}");
    let mut view = AccountsView::default();
    view.catch_up(store.as_ref()).await.unwrap();
    let account = view.account("A1").unwrap();
    assert!(account.open_orders().is_empty(), "the rest of O1 expired");
    assert_eq!(
        account.cash().frozen_cny,
        rust_decimal::Decimal::ZERO,
        "its reserve was released"
    );
    assert!(view.event_counts().contains_key("OrderExpired") && view.event_counts().contains_key("TradesSettled"));
    let repeat_eod = ledger
        .execute(&[submit(
            r#"{"type":"end_of_day","command_id":"D3","trade_date":"2024-03-04"}"#,
        )])
        .await
        .unwrap();
    assert_eq!(repeat_eod[0].code.as_deref(), Some("day_closed"));
    let repeat_settle = ledger
        .execute(&[submit(
            r#"{"type":"settle","command_id":"D4","trade_date":"2024-03-04"}"#,
        )])
        .await
        .unwrap();
    assert_eq!(repeat_settle[0].code.as_deref(), Some("day_closed"));
    let late = r#"{"type":"place_order","command_id":"D5","account_id":"A1","order_id":"O2","instrument":"601398.SH","side":"buy","quantity":100,"price":"5.10","trade_date":"2024-03-04"}"#;
    assert_eq!(
        ledger.execute(&[submit(late)]).await.unwrap()[0].code.as_deref(),
        Some("day_closed")
    );
}

#[tokio::test]
async fn a_batch_above_the_limit_is_refused_whole() {
    let (_db, store, mut ledger) = fresh().await;
    let head = store.head_position().await.unwrap();
    let batch: Vec<Submission> = (0..=MAX_BATCH_COMMANDS)
        .map(|i| {
            submit(&format!(
                r#"{{"type":"deposit","command_id":"L{i}","account_id":"A1","amount":"1.00","bank_ref":"BL{i}"}}"#
            ))
        })
        .collect();
    assert!(matches!(
        ledger.execute(&batch).await,
        Err(EngineError::BatchTooLarge(_))
    ));
    assert_eq!(store.head_position().await.unwrap(), head);
}

#[tokio::test]
async fn a_cache_of_one_gives_the_same_answers_as_a_large_one() {
    let script: Vec<String> = (0..40)
        .flat_map(|i| {
            let account = format!("C{}", i % 5);
            vec![
                format!(r#"{{"type":"open_account","command_id":"o{i}","account_id":"{account}","customer_name":"X","id_number":"1","risk_level":2}}"#),
                format!(r#"{{"type":"deposit","command_id":"d{i}","account_id":"{account}","amount":"{}.00","bank_ref":"b{i}"}}"#, 1000 + i),
                format!(r#"{{"type":"place_order","command_id":"p{i}","account_id":"{account}","order_id":"o{i}","instrument":"601398.SH","side":"buy","quantity":100,"price":"5.12","trade_date":"2024-03-04"}}"#),
                format!(r#"{{"type":"fill","command_id":"f{i}","account_id":"{account}","order_id":"o{i}","exec_id":"e{i}","quantity":100,"price":"5.11"}}"#),
            ]
        })
        .collect();
    let mut outcomes = Vec::new();
    for cache in [1, 10_000] {
        let (_db, store, _) = fresh().await;
        let mut ledger = Ledger::with_cache(Arc::clone(&store), rules(), cache);
        let mut answers = Vec::new();
        // Small batches, so that the cache is used between them.
        for chunk in script.chunks(7) {
            let batch: Vec<Submission> = chunk.iter().map(|l| submit(l)).collect();
            answers.extend(
                ledger
                    .execute(&batch)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.status, r.code)),
            );
        }
        outcomes.push((answers, balances(store.as_ref()).await));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert!(
        outcomes[0]
            .0
            .iter()
            .filter(|(status, _)| *status == Status::Accepted)
            .count()
            > 100
    );
}

#[tokio::test]
async fn a_malformed_outcome_recorded_by_an_older_build_still_answers_duplicate() {
    for backend in ledger_testkit::BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = connect(&db.url).await.unwrap();
        // What builds before malformed outcomes were left unrecorded wrote for a quantity of 0.
        let old = ledger_eventstore::CommandRecord {
            metadata: ledger_eventstore::EventMetadata {
                command_id: "R-ORD-1".into(),
                correlation_id: "R-ORD-1".into(),
                causation_id: "R-ORD-1".into(),
                actor: "cli:exec".into(),
                recorded_at: chrono::DateTime::UNIX_EPOCH,
                business_date: None,
            },
            status: ledger_eventstore::OutcomeStatus::Rejected,
            code: Some("malformed".into()),
            message: Some("order quantity must be 1 to 1000000000 shares, got 0".into()),
            account_id: Some("A1".into()),
            appends: vec![],
            request_sha256: None,
        };
        store.append(&[old]).await.unwrap();
        let mut ledger = Ledger::new(Arc::clone(&store), rules());
        let mut batch: Vec<Submission> = SETUP[..4].iter().map(|l| submit(l)).collect();
        batch.push(submit(
            r#"{"type":"place_order","command_id":"R-ORD-1","account_id":"A1","order_id":"O1","instrument":"601398.SH","side":"buy","quantity":100,"price":"5.10","trade_date":"2024-03-04"}"#,
        ));
        let results = ledger.execute(&batch).await.unwrap();
        let resubmitted = &results[4];
        assert_eq!(resubmitted.status, Status::Duplicate, "{backend:?}: {resubmitted:?}");
        assert_eq!(
            (resubmitted.first_status.as_deref(), resubmitted.first_code.as_deref()),
            (Some("rejected"), Some("malformed"))
        );
        assert_eq!(resubmitted.events, 0);
    }
}

/// A batch whose commit is acknowledged to nobody (the connection drops after the
/// commit) is in the log: the engine must not go on with what it knew before it.
/// Here an end of day: the client resubmits it (`duplicate`), and the ledger must
/// then date and close the next trading day, as if the answer had arrived.
#[tokio::test]
async fn an_end_of_day_committed_behind_a_lost_answer_still_opens_the_next_day() {
    let db = TestDatabase::fresh(Backend::Sqlite).await;
    let log = connect(&db.url).await.unwrap();
    let lose_next_answer = Arc::new(AtomicBool::new(false));
    let lose = Arc::clone(&lose_next_answer);
    let plan: FaultPlan = Box::new(move |call| match call {
        StoreCall::Append if lose.swap(false, Ordering::SeqCst) => Fault::AfterCommit,
        _ => Fault::Pass,
    });
    let store: Arc<dyn EventStore> = Arc::new(FaultyStore::new(Arc::clone(&log), plan));
    let mut ledger = Ledger::new(store, rules());
    let setup: Vec<Submission> = SETUP.iter().map(|l| submit(l)).collect();
    ledger.execute(&setup).await.unwrap();

    let eod = submit(r#"{"type":"end_of_day","command_id":"D1","trade_date":"2024-03-04"}"#);
    lose_next_answer.store(true, Ordering::SeqCst);
    match ledger.execute(std::slice::from_ref(&eod)).await {
        Err(EngineError::Store(e)) => assert!(FaultyStore::is_injected(&e), "{e}"),
        other => panic!("the lost answer is an error: {other:?}"),
    }
    let again = ledger.execute(&[eod]).await.unwrap();
    assert_eq!(
        (again[0].status, again[0].first_status.as_deref()),
        (Status::Duplicate, Some("accepted"))
    );

    let next = [
        submit(r#"{"type":"deposit","command_id":"D2","account_id":"A1","amount":"5.00","bank_ref":"B9"}"#),
        submit(r#"{"type":"end_of_day","command_id":"D3","trade_date":"2024-03-05"}"#),
    ];
    let results = ledger.execute(&next).await.unwrap();
    assert_eq!(results[1].status, Status::Accepted, "{results:?}");
    let deposited = log.read_after(0, 1_000).await.unwrap();
    let deposited = deposited.iter().find(|e| e.metadata.command_id == "D2").unwrap();
    assert_eq!(
        deposited.metadata.business_date.map(|d| d.to_string()).as_deref(),
        Some("2024-03-05"),
        "a deposit after the close of 2024-03-04 belongs to the next trading day"
    );
}
