//! `verify` on both backends: a clean log passes; every kind of tampering done
//! directly in the database is caught at the first broken position.

use std::sync::Arc;

use ledger_replay::{verify, ProblemKind, VerifyReport};
use ledger_testkit::{Backend, BACKENDS};

mod common;
use common::{loaded, run_lines};

fn kinds(report: &VerifyReport) -> Vec<ProblemKind> {
    report.problems.iter().map(|p| p.kind).collect()
}

#[tokio::test]
async fn a_clean_log_verifies_and_both_backends_write_the_same_chain() {
    let mut heads = Vec::new();
    for backend in BACKENDS {
        let (_db, store) = loaded(backend).await;
        let mut progress_calls = 0;
        let report = verify(store.as_ref(), |_| progress_calls += 1).await.unwrap();
        assert!(report.is_ok(), "{backend:?}: {report:?}");
        assert_eq!(report.events, 169);
        assert_eq!(report.accounts, 6);
        assert!(progress_calls > 0);
        let hashes: Vec<String> = ledger_eventstore::read_towards(store.as_ref(), 0, report.events, 1_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.hash)
            .collect();
        heads.push((report.head_hash, hashes));
    }
    assert_eq!(
        heads[0], heads[1],
        "SQLite and PostgreSQL chain the same input to the same hashes"
    );
}

#[tokio::test]
async fn an_edited_payload_is_caught_at_its_position() {
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        // Position 18 is A0001's deposit of 40834.19: make it 40835.19.
        let edit = match backend {
            Backend::Sqlite => "UPDATE events SET payload = REPLACE(payload, '40834.19', '40835.19') WHERE global_position = 18",
            Backend::Postgres => {
                "UPDATE events SET payload = jsonb_set(payload, '{amount_cny}', '\"40835.19\"') WHERE global_position = 18"
            }
        };
        db.tamper(&[edit]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(18), "{backend:?}: {report:?}");
        assert_eq!(kinds(&report), vec![ProblemKind::HashMismatch], "{backend:?}");
    }
}

/// Ways a payload's stored bytes can stop being JSON, as SQL that does it to position 18
/// (A0001's deposit) on each backend. PostgreSQL's JSONB column refuses anything that is
/// not JSON, so there the column is first turned into text, as someone with the rights
/// to alter the table could.
const PAYLOADS_NO_LONGER_JSON: [(&str, &str, Option<&str>); 5] = [
    (
        "a quote flipped to #",
        "UPDATE events SET payload = REPLACE(payload, '\"amount_cny\"', '#amount_cny\"') WHERE global_position = 18",
        Some("UPDATE events SET payload = REPLACE(payload, '\"amount_cny\"', '#amount_cny\"') WHERE global_position = 18"),
    ),
    (
        "not UTF-8",
        "UPDATE events SET payload = CAST(X'7B22FF223A317D' AS TEXT) WHERE global_position = 18",
        None,
    ),
    (
        "truncated",
        "UPDATE events SET payload = SUBSTR(payload, 1, 20) WHERE global_position = 18",
        Some("UPDATE events SET payload = SUBSTR(payload, 1, 20) WHERE global_position = 18"),
    ),
    (
        "empty",
        "UPDATE events SET payload = '' WHERE global_position = 18",
        Some("UPDATE events SET payload = '' WHERE global_position = 18"),
    ),
    (
        "a blob of zeros",
        "UPDATE events SET payload = ZEROBLOB(8) WHERE global_position = 18",
        None,
    ),
];

#[tokio::test]
async fn a_payload_that_is_no_longer_json_is_caught_at_its_position() {
    for backend in BACKENDS {
        for (what, sqlite_edit, postgres_edit) in PAYLOADS_NO_LONGER_JSON {
            let edits = match (backend, postgres_edit) {
                (Backend::Sqlite, _) => vec![sqlite_edit],
                (Backend::Postgres, Some(edit)) => vec!["ALTER TABLE events ALTER COLUMN payload TYPE text", edit],
                (Backend::Postgres, None) => continue,
            };
            let (db, store) = loaded(backend).await;
            let clean = verify(store.as_ref(), |_| {}).await.unwrap();
            db.tamper(&edits).await;
            let report = verify(store.as_ref(), |_| {})
                .await
                .unwrap_or_else(|e| panic!("{backend:?}, {what}: verify must report the broken event, not fail: {e}"));
            assert_eq!(
                report.first_broken_position,
                Some(18),
                "{backend:?}, {what}: {report:?}"
            );
            assert_eq!(
                kinds(&report),
                vec![ProblemKind::HashMismatch, ProblemKind::Undecodable],
                "{backend:?}, {what}: {report:?}"
            );
            assert!(report.problems.iter().all(|p| p.position == Some(18)), "{report:?}");
            assert_eq!(
                report.head_hash, clean.head_hash,
                "{backend:?}, {what}: the chain is read on past the broken event to its head"
            );
            assert_eq!(report.events, clean.events);
        }
    }
}

#[tokio::test]
async fn a_flip_that_keeps_the_payload_json_is_caught_at_its_position() {
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        // A byte of a key: still JSON, no longer this event.
        let edit = match backend {
            Backend::Sqlite => {
                "UPDATE events SET payload = REPLACE(payload, '\"amount_cny\"', '\"amount#cny\"') WHERE global_position = 18"
            }
            Backend::Postgres => {
                "UPDATE events SET payload = (payload - 'amount_cny') || jsonb_build_object('amount#cny', payload->'amount_cny') \
                 WHERE global_position = 18"
            }
        };
        db.tamper(&[edit]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(18), "{backend:?}: {report:?}");
        assert_eq!(
            kinds(&report),
            vec![ProblemKind::HashMismatch, ProblemKind::Undecodable],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn an_event_at_a_version_this_build_does_not_know_is_undecodable_and_says_why() {
    // Position 34 is A0001's first order, stored at version 2; made version 3, as a newer
    // build might one day write it: the hash breaks, and the event is not guessed at.
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        db.tamper(&["UPDATE events SET event_version = 3 WHERE global_position = 34"])
            .await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(34), "{backend:?}: {report:?}");
        assert_eq!(
            kinds(&report),
            vec![ProblemKind::HashMismatch, ProblemKind::Undecodable],
            "{backend:?}"
        );
        let undecodable = &report.problems[1].detail;
        assert!(
            undecodable.contains("(OrderPlaced v3)") && undecodable.contains("newer than this build reads (version 2)"),
            "{backend:?}: {undecodable}"
        );
        assert_eq!(report.events, 169, "{backend:?}: verify reads on to the head");
    }
}

#[tokio::test]
async fn an_edited_event_is_never_replayed_into_its_aggregate() {
    // Position 36 is a fill of A0001's order O000001; made a fill of O000000, which does
    // not exist, the order's expiry at 94 would release another reserve than it holds,
    // which the rules assert never happens: the replay must stop at the edit instead.
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        let edit = match backend {
            Backend::Sqlite => {
                "UPDATE events SET payload = REPLACE(payload, '\"O000001\"', '\"O000000\"') WHERE global_position = 36"
            }
            Backend::Postgres => {
                "UPDATE events SET payload = jsonb_set(payload, '{order_id}', '\"O000000\"') WHERE global_position = 36"
            }
        };
        db.tamper(&[edit]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(36), "{backend:?}: {report:?}");
        assert_eq!(
            kinds(&report),
            vec![ProblemKind::HashMismatch],
            "{backend:?}: {report:?}"
        );
    }
}

#[tokio::test]
async fn a_row_whose_columns_do_not_read_is_caught_at_its_position() {
    // SQLite keeps whatever bytes a column is given; PostgreSQL's types refuse these.
    let edits = [
        "UPDATE events SET recorded_at = 'yesterday' WHERE global_position = 18",
        "UPDATE events SET aggregate_id = CAST(X'41FF' AS TEXT) WHERE global_position = 18",
    ];
    for edit in edits {
        let (db, store) = loaded(Backend::Sqlite).await;
        let clean = verify(store.as_ref(), |_| {}).await.unwrap();
        db.tamper(&[edit]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(18), "{edit}: {report:?}");
        assert_eq!(report.problems[0].kind, ProblemKind::Unreadable, "{edit}: {report:?}");
        assert_eq!(report.head_hash, clean.head_hash, "{edit}");
        assert!(
            !kinds(&report).contains(&ProblemKind::ChainBroken),
            "the next event still links to the unreadable row's hash: {report:?}"
        );
    }
}

#[tokio::test]
async fn a_deleted_event_is_caught_where_the_gap_is() {
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        db.tamper(&["DELETE FROM events WHERE global_position = 40"]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(41), "{backend:?}: {report:?}");
        let found = kinds(&report);
        assert!(
            found.contains(&ProblemKind::PositionGap) && found.contains(&ProblemKind::ChainBroken),
            "{found:?}"
        );
    }
}

#[tokio::test]
async fn a_deleted_last_event_is_caught_by_the_idempotency_records() {
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        db.tamper(&["DELETE FROM events WHERE global_position = 169"]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(169), "{backend:?}: {report:?}");
        assert!(kinds(&report).contains(&ProblemKind::OutcomesDisagree));
    }
}

#[tokio::test]
async fn reordered_events_are_caught() {
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        // Swap positions 50 and 51 through a free position.
        db.tamper(&[
            "UPDATE events SET global_position = 100000 WHERE global_position = 50",
            "UPDATE events SET global_position = 50 WHERE global_position = 51",
            "UPDATE events SET global_position = 51 WHERE global_position = 100000",
        ])
        .await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(50), "{backend:?}: {report:?}");
        assert!(kinds(&report).contains(&ProblemKind::HashMismatch));
    }
}

#[tokio::test]
async fn an_edited_hash_is_caught() {
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        db.tamper(&["UPDATE events SET hash = REPLACE(hash, SUBSTR(hash, 1, 4), 'beef') WHERE global_position = 77"])
            .await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(report.first_broken_position, Some(77), "{backend:?}: {report:?}");
        // The edited event no longer matches its content, and its successor no longer links to it.
        assert_eq!(
            kinds(&report),
            vec![ProblemKind::HashMismatch, ProblemKind::ChainBroken],
            "{backend:?}"
        );
        assert_eq!(report.problems[1].position, Some(78));
    }
}

#[tokio::test]
async fn read_models_that_differ_from_the_replay_are_caught() {
    use ledger_projections::tables::{run_accounts, RunOptions};
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        let before = verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(!before.projections_checked, "tables behind the log are not compared");
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let clean = verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(clean.is_ok() && clean.projections_checked, "{backend:?}: {clean:?}");
        // The log is intact, but someone edits a balance in the read model.
        let edit = match backend {
            Backend::Sqlite => "UPDATE account_balances SET available = '47365.50' WHERE account_id = 'A0001'",
            Backend::Postgres => "UPDATE account_balances SET available = 47365.50 WHERE account_id = 'A0001'",
        };
        db.tamper(&[edit]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert_eq!(kinds(&report), vec![ProblemKind::ProjectionDiffers], "{backend:?}");
        assert!(report.problems[0].detail.contains("A0001"));
        // An edited posting unbalances the journal and parts it from the replay.
        let posting = match backend {
            Backend::Sqlite => "UPDATE journal_entries SET amount = '1.00' WHERE global_position = 18 AND line = 1",
            Backend::Postgres => "UPDATE journal_entries SET amount = 1.00 WHERE global_position = 18 AND line = 1",
        };
        db.tamper(&[posting]).await;
        let report = verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(
            kinds(&report).contains(&ProblemKind::JournalUnbalanced),
            "{backend:?}: {report:?}"
        );
    }
}

/// A large deposit (an AML alert) and a refused suitability check (an alert with no
/// event behind it), added to the example so every alert kind is there to compare.
const ALERTED: [&str; 4] = [
    r#"{"type": "list_instrument", "command_id": "V1", "instrument": "688981.SH", "name": "SMIC", "board": "star", "risk_level": 4}"#,
    r#"{"type": "open_account", "command_id": "V2", "account_id": "A0900", "customer_name": "Customer 900", "id_number": "455200494606748983", "risk_level": 2}"#,
    r#"{"type": "deposit", "command_id": "V3", "account_id": "A0900", "amount": "600000.00", "bank_ref": "BV3"}"#,
    r#"{"type": "place_order", "command_id": "V4", "account_id": "A0900", "order_id": "OV4", "instrument": "688981.SH", "side": "buy", "quantity": 200, "price": "40.00", "trade_date": "2024-03-06"}"#,
];

#[tokio::test]
async fn an_edit_to_any_read_model_table_is_caught() {
    use ledger_projections::tables::{rebuild_accounts, run_accounts, RunOptions};
    // One edit per compared table; after each the projections are rebuilt from the log.
    let edits: [(&str, &str); 7] = [
        ("trades", "UPDATE trades SET commission = 999 WHERE global_position = (SELECT MIN(global_position) FROM trades)"),
        ("orders", "UPDATE orders SET filled_quantity = filled_quantity + 100 WHERE order_id = (SELECT MIN(order_id) FROM orders)"),
        ("clearing_obligations", "DELETE FROM clearing_obligations WHERE account_id = (SELECT MIN(account_id) FROM clearing_obligations)"),
        ("compliance_alerts (large_cash_movement)", "DELETE FROM compliance_alerts WHERE kind = 'large_cash_movement'"),
        ("journal_entries", "UPDATE journal_entries SET account_id = 'A0002' WHERE global_position = 18 AND line = 1"),
        ("refused-suitability alerts", "DELETE FROM compliance_alerts WHERE kind = 'suitability_refused'"),
        ("refused-suitability alerts", "UPDATE compliance_alerts SET command_id = 'V3' WHERE kind = 'suitability_refused'"),
    ];
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        run_lines(Arc::clone(&store), ALERTED.into_iter()).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let clean = verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(clean.is_ok() && clean.projections_checked, "{backend:?}: {clean:?}");
        for (table, edit) in edits {
            db.tamper(&[edit]).await;
            let report = verify(store.as_ref(), |_| {}).await.unwrap();
            assert!(report.projections_checked, "{backend:?}");
            let caught = report
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::ProjectionDiffers && p.detail.starts_with(table));
            assert!(caught, "{backend:?}: `{edit}` was not caught: {report:?}");
            rebuild_accounts(store.as_ref(), RunOptions::default(), |_| {})
                .await
                .unwrap();
            let rebuilt = verify(store.as_ref(), |_| {}).await.unwrap();
            assert!(
                rebuilt.is_ok(),
                "{backend:?}: after `{edit}` and a rebuild: {rebuilt:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_edit_to_any_balance_or_position_column_is_caught_and_named_by_account() {
    use ledger_projections::tables::{rebuild_accounts, run_accounts, RunOptions};
    // (table, the account named, the edit): columns the comparison through the read-out
    // rows did not see (`positions.cost`), and rows missing or of no account in the log.
    let edits: [(&str, &str, &str); 4] = [
        (
            "positions",
            "first at account A0002",
            "UPDATE positions SET cost = '1.00' WHERE account_id = 'A0002'",
        ),
        (
            "positions",
            "first at account A0004",
            "DELETE FROM positions WHERE account_id = 'A0004'",
        ),
        (
            "account_balances",
            "first at account A0003",
            "UPDATE account_balances SET withdrawable = '0.01' WHERE account_id = 'A0003'",
        ),
        (
            "account_balances",
            "rows of accounts the log does not hold",
            "INSERT INTO account_balances VALUES ('Z9999', 'CNY', '0.00', '0.00', '0.00', '0.00', 1)",
        ),
    ];
    for backend in BACKENDS {
        let (db, store) = loaded(backend).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let clean = verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(clean.is_ok() && clean.projections_checked, "{backend:?}: {clean:?}");
        for (table, named, edit) in edits {
            db.tamper(&[edit]).await;
            let report = verify(store.as_ref(), |_| {}).await.unwrap();
            assert_eq!(
                kinds(&report),
                vec![ProblemKind::ProjectionDiffers],
                "{backend:?}: `{edit}`: {report:?}"
            );
            let detail = &report.problems[0].detail;
            assert!(
                detail.starts_with(table) && detail.contains(named),
                "{backend:?}: `{edit}` gave {detail}"
            );
            rebuild_accounts(store.as_ref(), RunOptions::default(), |_| {})
                .await
                .unwrap();
            let rebuilt = verify(store.as_ref(), |_| {}).await.unwrap();
            assert!(
                rebuilt.is_ok(),
                "{backend:?}: after `{edit}` and a rebuild: {rebuilt:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_refusal_not_yet_alerted_is_late_not_broken() {
    use ledger_projections::tables::{run_accounts, RunOptions};
    for backend in BACKENDS {
        let (_db, store) = loaded(backend).await;
        run_lines(Arc::clone(&store), ALERTED[..3].iter().copied()).await;
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        assert!(verify(store.as_ref(), |_| {}).await.unwrap().projections_checked);
        // The refusal writes no event: the tables' checkpoint is still the head, but
        // its alert waits for the runner's next pass.
        let head = store.head_position().await.unwrap();
        run_lines(Arc::clone(&store), ALERTED[3..].iter().copied()).await;
        assert_eq!(store.head_position().await.unwrap(), head, "a refusal writes no event");
        let late = verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(late.is_ok() && !late.projections_checked, "{backend:?}: {late:?}");
        run_accounts(store.as_ref(), RunOptions::default(), |_| {})
            .await
            .unwrap();
        let caught_up = verify(store.as_ref(), |_| {}).await.unwrap();
        assert!(
            caught_up.is_ok() && caught_up.projections_checked,
            "{backend:?}: {caught_up:?}"
        );
    }
}
