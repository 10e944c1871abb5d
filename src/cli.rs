//! Command-line arguments, and dispatch to the printing of each command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ledger_app::{ClearingStep, EventStore, DEFAULT_DATABASE_URL};

#[derive(Debug, Parser)]
#[command(name = "ledger", version, about = "Event-sourced securities brokerage ledger")]
pub struct Cli {
    /// Database URL: sqlite://PATH or a file path [default: ledger.db in the working
    /// directory; for `demo`, a fresh ledger-demo.db]
    #[arg(long, global = true, env = "LEDGER_DATABASE_URL")]
    pub db: Option<String>,
    /// Market rules file (TOML); the built-in China A-share rules by default.
    #[arg(long, global = true, env = "LEDGER_RULES")]
    pub rules: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate and run a realistic trading day on a fresh embedded database, then report.
    Demo(crate::demo::DemoArgs),
    /// Run a file of commands, one JSON object per line; every line is answered.
    Exec {
        /// The command file (JSON lines, see docs/api.md); `-` reads standard input.
        file: PathBuf,
        /// One JSON result object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Stamp every event with this instant (RFC 3339) instead of the wall clock,
        /// for reproducible runs: the same file then gives the same hash chain.
        #[arg(long)]
        recorded_at: Option<String>,
    },
    /// Close a trade date: expire its open orders in every account, then print its clearing report.
    Eod {
        #[arg(long)]
        date: chrono::NaiveDate,
        #[arg(long)]
        json: bool,
    },
    /// Settle a closed trade date (T+1) in every account, then print its clearing report.
    Settle {
        #[arg(long)]
        date: chrono::NaiveDate,
        #[arg(long)]
        json: bool,
    },
    /// Compare the ledger with the bank's custody balances and the depository's holdings (CSV).
    /// Every difference is stored in reconciliation_breaks; exits 1 when there is any.
    Reconcile {
        #[arg(long)]
        date: chrono::NaiveDate,
        /// CSV with a header line: account,balance
        #[arg(long)]
        bank: PathBuf,
        /// CSV with a header line: account,instrument,quantity
        #[arg(long)]
        depository: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// A customer's statement (对账单) for a period of trade dates.
    Statement {
        #[arg(long)]
        account: String,
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        #[arg(long, value_enum, default_value = "html")]
        format: crate::statement::Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create or update the database schema (also done on first use).
    Migrate,
    /// Prove the log intact: hash chain, positions, sequences, replay and invariants.
    /// Exits 1 and names the first broken position if anything fails.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Keep the read models (SQL tables beside the log) up to date.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Cash balances of every account.
    Balances {
        #[arg(long)]
        json: bool,
    },
    /// Securities positions of every account.
    Positions {
        #[arg(long)]
        json: bool,
    },
    /// Orders (the blotter), by account and order id: all, or one account's, one date's, the open ones.
    Orders(crate::blotter::OrdersArgs),
    /// Trades (fills, with their fees) in log order: all, or one account's, one date's.
    Trades(crate::blotter::TradesArgs),
    /// The event log in global order.
    Events {
        /// First global position to show.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Most events to show (all by default).
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON event per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Apply the events written since each projection's checkpoint.
    Run {
        /// Then keep following the log, polling for new events, until interrupted (Ctrl-C).
        #[arg(long)]
        follow: bool,
        /// Polling interval while following.
        #[arg(long, default_value_t = 200)]
        poll_ms: u64,
    },
    /// Empty a projection (or all of them) and rebuild it from the first event.
    Rebuild {
        /// The projection: accounts (every read-model table fed by the account events). All when left out.
        name: Option<String>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let rules = Arc::new(ledger_app::load_rules(cli.rules.as_deref())?);
    let db = cli.db.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    match cli.command {
        Command::Demo(args) => crate::demo::run(args, cli.db, rules).await,
        Command::Exec {
            file,
            json,
            recorded_at,
        } => {
            let recorded_at = recorded_at.as_deref().map(crate::exec::parse_instant).transpose()?;
            crate::exec::run(open_store(&db).await?, rules, &file, json, recorded_at).await
        }
        Command::Eod { date, json } => {
            crate::clearing::run(open_store(&db).await?, rules, ClearingStep::EndOfDay, date, json).await
        }
        Command::Settle { date, json } => {
            crate::clearing::run(open_store(&db).await?, rules, ClearingStep::Settle, date, json).await
        }
        Command::Reconcile {
            date,
            bank,
            depository,
            json,
        } => crate::reconcile::run(open_store(&db).await?.as_ref(), date, &bank, &depository, json).await,
        Command::Statement {
            account,
            from,
            to,
            format,
            out,
        } => {
            let store = open_store(&db).await?;
            crate::statement::run(store.as_ref(), &account, (from, to), format, out.as_deref()).await
        }
        Command::Migrate => {
            let store = open_store(&db).await?;
            let events = ledger_app::head_position(store.as_ref()).await?;
            println!(
                "{} database {} is migrated ({events} events)",
                store.backend(),
                ledger_app::redact_url(&db)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { json } => crate::verify::run(open_store(&db).await?.as_ref(), json).await,
        Command::Projections { action } => crate::readouts::projections(open_store(&db).await?.as_ref(), action).await,
        Command::Balances { json } => crate::readouts::balances(open_store(&db).await?.as_ref(), json).await,
        Command::Positions { json } => crate::readouts::positions(open_store(&db).await?.as_ref(), json).await,
        Command::Orders(args) => crate::blotter::orders(open_store(&db).await?.as_ref(), args).await,
        Command::Trades(args) => crate::blotter::trades(open_store(&db).await?.as_ref(), args).await,
        Command::Events { from, limit, json } => {
            crate::readouts::events(open_store(&db).await?.as_ref(), from, limit, json).await
        }
    }
}

pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(ledger_app::open_store(url).await?)
}
