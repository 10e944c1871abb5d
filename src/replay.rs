//! `ledger replay --as-of-position P | --as-of TIME | --as-of-date D`: the accounts as
//! they stood at a past point, folded from the log alone (never the read models).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use ledger_app::as_of::{state_as_of, AsOf, StateAsOf};
use ledger_app::EventStore;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("point").required(true).args(["as_of_position", "as_of", "as_of_date"])))]
pub struct ReplayArgs {
    /// The state after the event at this global position (0: before the first event).
    #[arg(long, value_name = "P")]
    as_of_position: Option<u64>,
    /// The state after the last event decided at or before this instant, RFC 3339 with
    /// its offset: 2024-03-04T15:00:00+08:00, 2024-03-04T07:00:00Z.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    as_of: Option<DateTime<Utc>>,
    /// The state at the close of this trade date, YYYY-MM-DD (the cut reconciliation uses).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::cli::parse_date)]
    as_of_date: Option<chrono::NaiveDate>,
    /// Only this account; repeat for several (all when left out).
    #[arg(long = "account", value_name = "ACCOUNT")]
    accounts: Vec<String>,
    /// Print one JSON object ({"position", "balances", "positions", "orders"}) instead of tables.
    #[arg(long)]
    json: bool,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 instant with its offset, such as 2024-03-04T15:00:00+08:00 ({e})"))
}

pub async fn run(store: &dyn EventStore, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let as_of = match (args.as_of_position, args.as_of, args.as_of_date) {
        (Some(position), _, _) => AsOf::Position(position),
        (_, Some(instant), _) => AsOf::Time(instant),
        (_, _, Some(date)) => AsOf::Close(date),
        // clap's group requires one of the three.
        (None, None, None) => anyhow::bail!("name a point: --as-of-position, --as-of or --as-of-date"),
    };
    let state = state_as_of(store, as_of, &args.accounts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&state)?);
    } else {
        print_tables(&state);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tables(state: &StateAsOf) {
    println!("the accounts after position {} of the log", state.position);
    println!("{}", crate::readouts::balance_table(&state.balances));
    println!("{}", crate::readouts::position_table(&state.positions));
    println!("open orders:\n{}", crate::blotter::order_table(&state.orders));
}
