//! The baseline runs the stock cqrs-es stack for real on PostgreSQL: every command is
//! answered, a refusal is counted as one, the events are stored, and the run's tables
//! are gone afterwards.

use chrono::NaiveDate;
use ledger_bench_baseline::{run, AccountStep, BaselineCommand, BaselineError};
use ledger_testkit::{Backend, TestDatabase};
use rust_decimal_macros::dec;
use sqlx::Connection;

fn steps_of(account_id: &str, orders: u32) -> Vec<AccountStep> {
    let step = |command| AccountStep {
        account_id: account_id.to_owned(),
        command,
    };
    let mut steps = vec![
        step(BaselineCommand::Open),
        step(BaselineCommand::Deposit {
            amount_cny: dec!(100000.00),
            bank_ref: format!("{account_id}-B1"),
        }),
    ];
    for order in 0..orders {
        let order_id = format!("{account_id}-O{order}");
        steps.push(step(BaselineCommand::Buy {
            order_id: order_id.clone(),
            quantity: 100,
            price_cny: dec!(10.00),
            trade_date: NaiveDate::from_ymd_opt(2024, 3, 4).expect("a date"),
            prev_close_cny: dec!(10.00),
        }));
        steps.push(step(BaselineCommand::Fill {
            order_id,
            exec_id: format!("{account_id}-E{order}"),
            quantity: 100,
            price_cny: dec!(10.00),
        }));
    }
    steps
}

fn rules() -> ledger_domain::MarketRules {
    ledger_domain::MarketRules::china_a_share().expect("the built-in rules")
}

async fn tables_named_like(url: &str, pattern: &str) -> i64 {
    let mut connection = sqlx::PgConnection::connect(url).await.expect("the test database");
    sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1")
        .bind(pattern)
        .fetch_one(&mut connection)
        .await
        .expect("pg_tables")
}

#[tokio::test]
async fn the_baseline_answers_every_command_and_leaves_no_table_behind() {
    let database = TestDatabase::fresh(Backend::Postgres).await;
    let mut first = steps_of("BA0000001", 3);
    // A second fill of an order already filled whole: the aggregate refuses it.
    first.push(AccountStep {
        account_id: "BA0000001".to_owned(),
        command: BaselineCommand::Fill {
            order_id: "BA0000001-O0".to_owned(),
            exec_id: "BA0000001-E9".to_owned(),
            quantity: 100,
            price_cny: dec!(10.00),
        },
    });
    let clients = vec![first, steps_of("BA0000002", 2)];
    let commands: usize = clients.iter().map(Vec::len).sum();

    let result = run(&database.url, rules(), clients).await.expect("the baseline runs");

    assert_eq!(result.latencies_us.len(), commands, "one latency per command");
    assert_eq!(result.refused, 1, "only the over-fill is refused");
    assert!(result.elapsed.as_micros() > 0);
    assert_eq!(tables_named_like(&database.url, "bench_baseline_%").await, 0);
}

#[tokio::test]
async fn the_baseline_refuses_bad_input_before_touching_the_database() {
    let database = TestDatabase::fresh(Backend::Postgres).await;
    let bad = vec![vec![AccountStep {
        account_id: "not an id".to_owned(),
        command: BaselineCommand::Open,
    }]];
    let error = run(&database.url, rules(), bad).await.expect_err("a bad id is refused");
    assert!(
        matches!(
            error,
            BaselineError::Id {
                field: "account id",
                ..
            }
        ),
        "{error}"
    );
    assert!(matches!(
        run(&database.url, rules(), vec![]).await,
        Err(BaselineError::Clients(0))
    ));
    assert_eq!(tables_named_like(&database.url, "bench_baseline_%").await, 0);
}
