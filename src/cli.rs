//! Command-line arguments, and dispatch to the printing of each command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand};
use ledger_app::{
    ClearingStep, Config, EventStore, Ledger, MarketRules, DEFAULT_CACHE_AGGREGATES, DEFAULT_DATABASE_URL,
    MAX_CACHE_AGGREGATES,
};

#[derive(Debug, Parser)]
#[command(name = "ledger", version, about = "Event-sourced securities brokerage ledger")]
pub struct Cli {
    /// The ledger's database: a SQLite file path (or sqlite://PATH), or a PostgreSQL URL
    /// postgres://USER@HOST:PORT/DATABASE (password in PGPASSWORD or ~/.pgpass, never here).
    /// Read from LEDGER_DATABASE_URL when not given (its value is never shown)
    /// [default: ledger.db in the working directory; for `demo`, a fresh ledger-demo.db]
    #[arg(
        long,
        global = true,
        env = "LEDGER_DATABASE_URL",
        hide_env_values = true,
        value_name = "PATH_OR_URL"
    )]
    pub db: Option<String>,
    /// Market rules file (TOML: fees, tick sizes, lot sizes, price limits); read from
    /// LEDGER_RULES when not given; the built-in China A-share rules by default.
    #[arg(long, global = true, env = "LEDGER_RULES", value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Configuration file (TOML: [broker], [statement], [[tokens]]; see docs/operations.md); read
    /// from LEDGER_CONFIG when not given [default: ledger.toml in the working directory when it
    /// exists, else built-in placeholders; `token create` and `serve` create it]
    #[arg(long, global = true, env = "LEDGER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Aggregates of each kind the engine keeps in memory between batches (exec, demo, eod,
    /// settle, serve); read from LEDGER_CACHE_AGGREGATES when not given. Above the number of
    /// accounts that trade, every command reloads its account from the log
    /// (docs/operations.md, "Memory").
    #[arg(
        long,
        global = true,
        env = "LEDGER_CACHE_AGGREGATES",
        value_name = "N",
        default_value_t = DEFAULT_CACHE_AGGREGATES,
        value_parser = clap::value_parser!(u64).range(1..=MAX_CACHE_AGGREGATES as u64).map(|n| n as usize)
    )]
    pub cache_aggregates: usize,
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
        /// Print one JSON answer object per line (see docs/api.md) instead of text.
        #[arg(long)]
        json: bool,
        /// Stamp every event with this instant (RFC 3339) instead of the wall clock,
        /// for reproducible runs: the same file then gives the same hash chain.
        #[arg(long)]
        recorded_at: Option<String>,
    },
    /// Close a trade date: expire its open orders in every account, then print its clearing report.
    Eod {
        /// The trade date to close, as YYYY-MM-DD: the open trade date, the next trading
        /// day of the calendar after the last closed one (refused otherwise).
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        date: chrono::NaiveDate,
        /// Close the date even if the trading calendar does not name it as the open trade
        /// date (an unscheduled closure, a year whose holidays are not in the calendar yet).
        #[arg(long)]
        off_calendar: bool,
        /// Print the outcome and the clearing report as one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Settle a closed trade date (T+1) in every account, then print its clearing report.
    Settle {
        /// The closed trade date to settle, as YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        date: chrono::NaiveDate,
        /// Print the outcome and the clearing report as one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the clearing report of a trade date (the one `eod` prints), read only: runs nothing.
    ClearingReport {
        /// The trade date of the report, as YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        date: chrono::NaiveDate,
        /// Print the date, its state and the report as one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Compare the ledger at the close of a date with the bank's custody balances and the
    /// depository's holdings (CSV). The date must be closed (ledger eod). Every difference is
    /// stored in reconciliation_breaks; exits 1 when there is any.
    Reconcile {
        /// The trade date the files are of, as YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        date: chrono::NaiveDate,
        /// CSV with a header line: account,balance
        #[arg(long)]
        bank: PathBuf,
        /// CSV with a header line: account,instrument,quantity
        #[arg(long)]
        depository: PathBuf,
        /// Print one JSON object (trade_date, as_of_position, breaks) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A customer's statement (对账单) for a period of trade dates, as HTML, CSV or PDF.
    /// A period ending after the last business date the ledger has reached is cut there, and says so.
    Statement {
        /// The account, e.g. A0001.
        #[arg(long)]
        account: String,
        /// First trade date of the period, as YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        from: chrono::NaiveDate,
        /// Last trade date of the period, as YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        to: chrono::NaiveDate,
        /// The document to produce.
        #[arg(long, value_enum, default_value = "html")]
        format: crate::statement::Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve the HTTP API (docs/api.md, "HTTP API") until SIGTERM or Ctrl-C, which stop it
    /// gracefully: nothing new is accepted, what is queued is committed and answered.
    Serve(crate::serve::ServeArgs),
    /// Benchmarks (docs/performance.md): `bench http` drives a server of its own open-loop.
    Bench(crate::bench::BenchArgs),
    /// Create or update the database schema (also done by `init`, `exec` and `demo`).
    Migrate,
    /// Create a new, empty ledger where --db points (the SQLite file, or the tables in the
    /// PostgreSQL database, which must exist). Only init, exec, demo and migrate create a ledger:
    /// every other command refuses a database that does not exist or holds no ledger.
    Init,
    /// Prove the log intact: hash chain, positions, sequences, replay and invariants.
    /// Exits 1 and names the first broken position if anything fails, or if the log is empty.
    Verify(crate::verify::VerifyArgs),
    /// Sign the head of the log into a checkpoint file kept apart from it, or make the key.
    Checkpoint(crate::checkpoint::CheckpointArgs),
    /// Keep the read models (SQL tables beside the log) up to date.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Cash balances of every account.
    Balances {
        /// Print one JSON array of rows instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Securities positions of every account.
    Positions {
        /// Print one JSON array of rows instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Orders (the blotter), by account and order id: all, or one account's, one date's, the open ones.
    Orders(crate::blotter::OrdersArgs),
    /// Trades (fills, with their fees) in log order: all, or one account's, one date's.
    Trades(crate::blotter::TradesArgs),
    /// Bearer tokens of the service, kept in the configuration file as hashes (docs/api.md,
    /// "Roles and tokens").
    Token {
        #[command(subcommand)]
        action: crate::token::TokenAction,
    },
    /// The event log in global order; with --follow, live (docs/events.md).
    Events(crate::events::EventsArgs),
    /// Relay the log to other systems: every event, in order, exactly once in the target.
    Relay(crate::relay::RelayArgs),
    /// The accounts at a past point (position, time or close), from the log alone.
    Replay(crate::replay::ReplayArgs),
    /// The log as JSON lines, or the double-entry journal for hledger or Beancount (docs/export.md).
    Export(crate::export::ExportArgs),
    /// Import a log (the envelopes of `ledger events --json`) into an empty --db, every
    /// event with its position, time and hash.
    Import {
        /// The file, one envelope a line.
        file: std::path::PathBuf,
    },
    /// Move a ledger's log into another, empty store (SQLite to PostgreSQL or back),
    /// proved by both head hashes.
    MigrateStore {
        /// The store the log is read from.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty store it is written to.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Apply the events written since each projection's checkpoint.
    Run {
        /// Then keep following the log, polling for new events, until interrupted (Ctrl-C).
        #[arg(long)]
        follow: bool,
        /// Polling interval while following, in milliseconds (10 to 60000).
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
    let db = cli.db.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    // These need neither market rules nor the configuration file (which tokens edit, and
    // which may not exist yet): nothing else is loaded.
    match cli.command {
        Command::Token { action } => crate::token::run(action, cli.config.as_deref()),
        Command::Import { file } => crate::import::import(&db, &file).await,
        Command::MigrateStore { from, to } => crate::import::migrate_store(&from, &to).await,
        Command::Checkpoint(args) => crate::checkpoint::run(&db, args).await,
        _ => run_configured(cli).await,
    }
}

/// Every command but those `run` handles: with the rules and the configuration loaded.
async fn run_configured(cli: Cli) -> anyhow::Result<ExitCode> {
    let rules = Arc::new(ledger_app::load_rules(cli.rules.as_deref())?);
    // `serve --print-openapi` opens nothing, so it creates no configuration file either.
    let creates_config = matches!(&cli.command, Command::Serve(args) if !args.print_openapi);
    let config = load_config(cli.config.as_deref(), creates_config)?;
    let db = cli.db.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let writer = |store| Ledger::with_cache(store, Arc::clone(&rules), cli.cache_aggregates);
    let serve_settings = (cli.cache_aggregates, cli.config.as_deref());
    match cli.command {
        Command::Demo(args) => crate::demo::run(args, cli.db, rules, cli.cache_aggregates).await,
        Command::Exec {
            file,
            json,
            recorded_at,
        } => {
            let recorded_at = recorded_at.as_deref().map(crate::exec::parse_instant).transpose()?;
            crate::exec::run(writer(open_store(&db).await?), &file, json, recorded_at).await
        }
        Command::Eod {
            date,
            off_calendar,
            json,
        } => {
            let step = crate::clearing::end_of_day_step(off_calendar);
            crate::clearing::run(writer(open_existing(&db).await?), step, date, json).await
        }
        Command::Settle { date, json } => {
            crate::clearing::run(writer(open_existing(&db).await?), ClearingStep::Settle, date, json).await
        }
        Command::Serve(args) => crate::serve::run(args, &db, rules, config, serve_settings).await,
        Command::Bench(args) => crate::bench::run(args, cli.db.as_deref(), rules, cli.cache_aggregates).await,
        Command::Migrate => migrate(&db).await,
        Command::Init => init(&db).await,
        other => run_reader(other, &db, &rules, &config).await,
    }
}

/// The commands that read the log or the read models: with the rules and the
/// configuration, never the engine.
async fn run_reader(command: Command, db: &str, rules: &MarketRules, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::ClearingReport { date, json } => {
            crate::clearing::report(open_existing(db).await?.as_ref(), date, json).await
        }
        Command::Reconcile {
            date,
            bank,
            depository,
            json,
        } => crate::reconcile::run(open_existing(db).await?.as_ref(), date, &bank, &depository, json).await,
        Command::Statement {
            account,
            from,
            to,
            format,
            out,
        } => {
            let store = open_existing(db).await?;
            let request = (account.as_str(), from, to, format);
            crate::statement::run((store.as_ref(), rules), config, request, out.as_deref()).await
        }
        Command::Verify(args) => crate::verify::run(open_existing(db).await?.as_ref(), args).await,
        Command::Projections { action } => {
            crate::readouts::projections(open_existing(db).await?.as_ref(), action).await
        }
        Command::Balances { json } => crate::readouts::balances(open_existing(db).await?.as_ref(), json).await,
        Command::Positions { json } => crate::readouts::positions(open_existing(db).await?.as_ref(), json).await,
        Command::Orders(args) => crate::blotter::orders(open_existing(db).await?.as_ref(), args).await,
        Command::Trades(args) => crate::blotter::trades(open_existing(db).await?.as_ref(), args).await,
        Command::Events(args) => crate::events::run(open_existing(db).await?, &config.events.source, args).await,
        Command::Replay(args) => crate::replay::run(open_existing(db).await?.as_ref(), args).await,
        Command::Export(args) => {
            let store = open_existing(db).await?;
            crate::export::run((store.as_ref(), rules), &config.events.source, args).await
        }
        Command::Relay(args) => crate::relay::run(open_existing(db).await?, &config.events.source, args).await,
        Command::Demo(_)
        | Command::Exec { .. }
        | Command::Eod { .. }
        | Command::Settle { .. }
        | Command::Serve(_)
        | Command::Bench(_)
        | Command::Migrate
        | Command::Init
        | Command::Token { .. }
        | Command::Import { .. }
        | Command::MigrateStore { .. }
        | Command::Checkpoint(_) => unreachable!("run() and run_configured() handle the commands that write"),
    }
}

/// `ledger migrate`: creates or migrates the database and says how many events it holds.
async fn migrate(db: &str) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let events = ledger_app::head_position(store.as_ref()).await?;
    println!(
        "{} database {} is migrated ({events} events)",
        store.backend(),
        ledger_app::redact_url(db)
    );
    Ok(ExitCode::SUCCESS)
}

/// The configuration (its file first created when `create_missing` and it does not
/// exist: `serve` and `token` share the file, and serving on a fresh clone creates it).
fn load_config(named: Option<&std::path::Path>, create_missing: bool) -> anyhow::Result<ledger_app::Config> {
    if create_missing {
        crate::serve::create_config_if_missing(named)?;
    }
    Ok(ledger_app::load_config(named)?)
}

/// Parses a date argument; its error names the format, which chrono's own ("input is out
/// of range", "premature end of input") does not.
pub fn parse_date(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("expected a date as YYYY-MM-DD, such as 2024-03-04 ({e})"))
}

/// Opens the database, creating the ledger if missing: only for the commands whose job is to write.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(ledger_app::open_store(url).await?)
}

/// Opens an existing ledger; a database that does not exist or holds none is refused, so a
/// mistyped --db is said instead of silently becoming a new, empty ledger.
pub async fn open_existing(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(ledger_app::open_existing_store(url).await?)
}

/// `ledger init`: creates the ledger, or says that one is already there (and leaves it as it is).
async fn init(url: &str) -> anyhow::Result<ExitCode> {
    let shown = ledger_app::redact_url(url);
    let store = match ledger_app::open_existing_store(url).await {
        Ok(store) => {
            let events = ledger_app::head_position(store.as_ref()).await?;
            println!(
                "{} database {shown} already holds a ledger ({events} events); left as it is",
                store.backend()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) if error.code() == "no_ledger" => ledger_app::open_store(url).await?,
        Err(error) => return Err(error.into()),
    };
    println!("{} database {shown}: created a new, empty ledger", store.backend());
    Ok(ExitCode::SUCCESS)
}
