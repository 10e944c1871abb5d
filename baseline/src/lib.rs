//! The baseline that `ledger bench engine` runs beside the ledger: the same account
//! commands, decided by the same domain aggregate (`ledger_domain::Account`), through
//! the stock cqrs-es `CqrsFramework` over postgres-es's `PersistedEventStore`, as a
//! user of that stack would take them off the shelf (no snapshots, one command per
//! `execute`, each client waiting for its answer).
//!
//! It is not part of the ledger: only the binary's `baseline` feature builds it, so
//! neither the ledger nor its normal build depends on postgres-es or its sqlx.
//!
//! What the baseline does not do and the ledger does: look up the instrument and the
//! previous close for an order (the baseline's orders carry a fixed snapshot), check a
//! command id only once, hash-chain the log, and give the log one global order. Its
//! figure is therefore an upper bound of what that stack would do with the ledger's
//! guarantees.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework};
use ledger_domain::ids::{AccountId, BankRef, ExecId, InstrumentCode, OrderId};
use ledger_domain::{Account, AccountCommand, Board, InstrumentInfo, MarketRules, MarketSnapshot, PlaceOrder, Side};
use postgres_es::PostgresEventRepository;
use rust_decimal::Decimal;
use sqlx08::postgres::PgPoolOptions;
use sqlx08::{Pool, Postgres};

/// Most concurrent clients a run may have.
pub const MAX_CLIENTS: usize = 1_024;
/// Most connections the baseline's pool opens (one per client up to this).
pub const MAX_POOL_CONNECTIONS: u32 = 32;
/// The instrument every order of the baseline is for.
pub const INSTRUMENT: &str = "601398.SH";

/// One command of the workload, for one account.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineCommand {
    Open,
    Deposit {
        amount_cny: Decimal,
        bank_ref: String,
    },
    Buy {
        order_id: String,
        quantity: u64,
        price_cny: Decimal,
        trade_date: NaiveDate,
        /// The previous close of the trade date, which the snapshot carries.
        prev_close_cny: Decimal,
    },
    Fill {
        order_id: String,
        exec_id: String,
        quantity: u64,
        price_cny: Decimal,
    },
}

/// A command for an account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountStep {
    pub account_id: String,
    pub command: BaselineCommand,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct BaselineRun {
    /// From the first command sent to the last answer.
    pub elapsed: Duration,
    /// Each command's latency, microseconds, from sending to its answer.
    pub latencies_us: Vec<u64>,
    /// Commands the aggregate refused (none in a well-formed workload).
    pub refused: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("the baseline takes 1 to {MAX_CLIENTS} clients, not {0}")]
    Clients(usize),
    #[error("the baseline's PostgreSQL {0}")]
    Database(String),
    #[error("the workload's {field} is not an id the ledger accepts: {reason}")]
    Id { field: &'static str, reason: String },
    #[error("the baseline's framework failed on account {account_id}: {error}")]
    Framework { account_id: String, error: String },
}

type Framework = CqrsFramework<Account, PersistedEventStore<PostgresEventRepository, Account>>;

/// Runs each client's steps in order (one client per list, all at once) on tables of
/// its own in `database_url`, dropped at the end whatever became of the run.
pub async fn run(
    database_url: &str,
    rules: MarketRules,
    clients: Vec<Vec<AccountStep>>,
) -> Result<BaselineRun, BaselineError> {
    if clients.is_empty() || clients.len() > MAX_CLIENTS {
        return Err(BaselineError::Clients(clients.len()));
    }
    let commands = clients
        .iter()
        .map(|steps| steps.iter().map(to_account_command).collect::<Result<Vec<_>, _>>())
        .collect::<Result<Vec<_>, _>>()?;
    let connections = u32::try_from(clients.len())
        .unwrap_or(MAX_POOL_CONNECTIONS)
        .min(MAX_POOL_CONNECTIONS);
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect(database_url)
        .await
        .map_err(|error| BaselineError::Database(format!("could not be reached: {error}")))?;
    // Every connection opened before the clock, as the ledger's is by its set-up.
    let mut warm = Vec::with_capacity(connections as usize);
    for _ in 0..connections {
        warm.push(
            pool.acquire()
                .await
                .map_err(|error| BaselineError::Database(error.to_string()))?,
        );
    }
    drop(warm);
    let tables = Tables::create(&pool).await?;
    let outcome = drive(&pool, &tables, rules, commands).await;
    let dropped = tables.drop(&pool).await;
    let run = outcome?;
    dropped?;
    Ok(run)
}

/// The baseline's own event and snapshot tables, named for this run.
struct Tables {
    events: String,
    snapshots: String,
}

impl Tables {
    async fn create(pool: &Pool<Postgres>) -> Result<Tables, BaselineError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let suffix = format!("{}_{nanos}", std::process::id());
        let tables = Tables {
            events: format!("bench_baseline_events_{suffix}"),
            snapshots: format!("bench_baseline_snapshots_{suffix}"),
        };
        // postgres-es's own schema (its db/init.sql), under this run's names.
        let events = format!(
            "CREATE TABLE {} (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
             event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, \
             PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
            tables.events
        );
        let snapshots = format!(
            "CREATE TABLE {} (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, \
             current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL, \
             PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
            tables.snapshots
        );
        for statement in [events, snapshots] {
            sqlx08::query(&statement)
                .execute(pool)
                .await
                .map_err(|error| BaselineError::Database(format!("refused to create a table: {error}")))?;
        }
        Ok(tables)
    }

    async fn drop(&self, pool: &Pool<Postgres>) -> Result<(), BaselineError> {
        let statement = format!("DROP TABLE IF EXISTS {}, {}", self.events, self.snapshots);
        sqlx08::query(&statement)
            .execute(pool)
            .await
            .map_err(|error| BaselineError::Database(format!("refused to drop the baseline's tables: {error}")))?;
        Ok(())
    }
}

async fn drive(
    pool: &Pool<Postgres>,
    tables: &Tables,
    rules: MarketRules,
    clients: Vec<Vec<(String, AccountCommand)>>,
) -> Result<BaselineRun, BaselineError> {
    let repository = PostgresEventRepository::new(pool.clone()).with_tables(&tables.events, &tables.snapshots);
    let framework = std::sync::Arc::new(CqrsFramework::new(
        PersistedEventStore::new_event_store(repository),
        vec![],
        rules,
    ));
    let started = Instant::now();
    // A JoinSet aborts the clients still running when one fails and the run returns,
    // before the tables are dropped under them.
    let mut tasks = tokio::task::JoinSet::new();
    for commands in clients {
        tasks.spawn(run_client(std::sync::Arc::clone(&framework), commands));
    }
    let mut run = BaselineRun {
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        refused: 0,
    };
    while let Some(task) = tasks.join_next().await {
        let (latencies_us, refused) = task.map_err(|error| BaselineError::Framework {
            account_id: String::new(),
            error: format!("a client task ended abnormally: {error}"),
        })??;
        run.latencies_us.extend(latencies_us);
        run.refused += refused;
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

/// One client: each command sent once its previous one is answered.
async fn run_client(
    framework: std::sync::Arc<Framework>,
    commands: Vec<(String, AccountCommand)>,
) -> Result<(Vec<u64>, u64), BaselineError> {
    let mut latencies_us = Vec::with_capacity(commands.len());
    let mut refused = 0;
    for (account_id, command) in commands {
        let sent = Instant::now();
        match framework
            .execute_with_metadata(&account_id, command, HashMap::new())
            .await
        {
            Ok(()) => {}
            Err(AggregateError::UserError(_)) => refused += 1,
            Err(error) => {
                return Err(BaselineError::Framework {
                    account_id,
                    error: error.to_string(),
                })
            }
        }
        latencies_us.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    Ok((latencies_us, refused))
}

fn id_error(field: &'static str) -> impl Fn(ledger_domain::ids::IdError) -> BaselineError {
    move |error| BaselineError::Id {
        field,
        reason: error.reason,
    }
}

/// The domain command a step asks for, with the fixed market snapshot of the baseline.
fn to_account_command(step: &AccountStep) -> Result<(String, AccountCommand), BaselineError> {
    let account_id = AccountId::parse(&step.account_id).map_err(id_error("account id"))?;
    let command = match &step.command {
        BaselineCommand::Open => AccountCommand::Open {
            customer_name: format!("Baseline {account_id}"),
            id_number: format!("BASELINE-{account_id}"),
            account_id: account_id.clone(),
            risk_level: 3,
        },
        BaselineCommand::Deposit { amount_cny, bank_ref } => AccountCommand::Deposit {
            amount_cny: *amount_cny,
            bank_ref: BankRef::parse(bank_ref).map_err(id_error("bank reference"))?,
        },
        BaselineCommand::Buy {
            order_id,
            quantity,
            price_cny,
            trade_date,
            prev_close_cny,
        } => {
            let code = InstrumentCode::parse(INSTRUMENT).map_err(id_error("instrument"))?;
            AccountCommand::PlaceOrder(PlaceOrder {
                order_id: OrderId::parse(order_id).map_err(id_error("order id"))?,
                instrument: code.clone(),
                side: Side::Buy,
                quantity: *quantity,
                price: *price_cny,
                trade_date: *trade_date,
                market: MarketSnapshot {
                    instrument: Some(InstrumentInfo {
                        code,
                        name: "ICBC".to_owned(),
                        board: Board::Main,
                        risk_level: 1,
                    }),
                    prev_close: Some(*prev_close_cny),
                    day_closed: false,
                },
            })
        }
        BaselineCommand::Fill {
            order_id,
            exec_id,
            quantity,
            price_cny,
        } => AccountCommand::BookFill {
            order_id: OrderId::parse(order_id).map_err(id_error("order id"))?,
            exec_id: ExecId::parse(exec_id).map_err(id_error("exec id"))?,
            quantity: *quantity,
            price: *price_cny,
        },
    };
    Ok((account_id.to_string(), command))
}
