//! `ledger orders` and `ledger trades`: the blotter, as a table or a JSON array. Both
//! read every matching row (or the first `--limit`), page by page through the
//! application layer, whose pages are bounded.

use std::num::NonZeroU64;
use std::process::ExitCode;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use ledger_app::{
    format_cny, EventStore, OrderFilter, OrderRecord, TradeFilter, TradeRecord, MAX_ORDER_ROWS, MAX_TRADE_ROWS,
};

use crate::readouts::align_numbers;

/// What `ledger orders` was asked for.
#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    /// Only this account's orders.
    #[arg(long)]
    pub account: Option<String>,
    /// Only orders of this trade date, as YYYY-MM-DD.
    #[arg(long, value_parser = crate::cli::parse_date, value_name = "YYYY-MM-DD")]
    pub date: Option<chrono::NaiveDate>,
    /// Only orders that can still be filled (open, or asked to cancel).
    #[arg(long)]
    pub open: bool,
    /// Most orders to show (all by default).
    #[arg(long)]
    pub limit: Option<NonZeroU64>,
    /// Print one JSON array of rows instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `ledger trades` was asked for.
#[derive(Debug, clap::Args)]
pub struct TradesArgs {
    /// Only this account's trades.
    #[arg(long)]
    pub account: Option<String>,
    /// Only trades of this trade date, as YYYY-MM-DD.
    #[arg(long, value_parser = crate::cli::parse_date, value_name = "YYYY-MM-DD")]
    pub date: Option<chrono::NaiveDate>,
    /// Most trades to show (all by default).
    #[arg(long)]
    pub limit: Option<NonZeroU64>,
    /// Print one JSON array of rows instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn orders(store: &dyn EventStore, args: OrdersArgs) -> anyhow::Result<ExitCode> {
    let filter = OrderFilter {
        account_id: args.account,
        trade_date: args.date,
        open_only: args.open,
        status: None,
        after: None,
        limit: MAX_ORDER_ROWS,
    };
    let rows = read_pages(args.limit, MAX_ORDER_ROWS, OrderRecord::key, async |after, limit| {
        let page = OrderFilter {
            after,
            limit,
            ..filter.clone()
        };
        Ok(ledger_app::orders(store, &page).await?)
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", order_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn trades(store: &dyn EventStore, args: TradesArgs) -> anyhow::Result<ExitCode> {
    let filter = TradeFilter {
        account_id: args.account,
        trade_date: args.date,
        after: None,
        limit: MAX_TRADE_ROWS,
    };
    let rows = read_pages(
        args.limit,
        MAX_TRADE_ROWS,
        |trade: &TradeRecord| trade.global_position,
        async |after, limit| {
            let page = TradeFilter {
                after,
                limit,
                ..filter.clone()
            };
            Ok(ledger_app::trades(store, &page).await?)
        },
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", trade_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every row `fetch` gives (or the first `limit`), asking for bounded pages, each
/// after the key of the last row of the one before; a short page is the last.
async fn read_pages<R, K>(
    limit: Option<NonZeroU64>,
    max_rows: usize,
    key: impl Fn(&R) -> K,
    mut fetch: impl AsyncFnMut(Option<K>, usize) -> anyhow::Result<Vec<R>>,
) -> anyhow::Result<Vec<R>> {
    let mut rows: Vec<R> = Vec::new();
    let mut after = None;
    let mut left = limit.map_or(u64::MAX, NonZeroU64::get);
    while left > 0 {
        let asked = page_size(left, max_rows);
        let page = fetch(after, asked).await?;
        let Some(last) = page.last() else { break };
        after = Some(key(last));
        left -= page.len() as u64;
        let full = page.len() == asked;
        rows.extend(page);
        if !full {
            break;
        }
    }
    Ok(rows)
}

/// The rows to ask for next: what is left to show, at most one bounded page.
fn page_size(left: u64, max_rows: usize) -> usize {
    usize::try_from(left).map_or(max_rows, |left| left.min(max_rows))
}

pub fn order_table(rows: &[OrderRecord]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([
        "account",
        "order",
        "trade date",
        "instrument",
        "side",
        "status",
        "quantity",
        "filled",
        "limit price",
    ]);
    for row in rows {
        table.add_row([
            row.account_id.clone(),
            row.order_id.clone(),
            row.trade_date.to_string(),
            row.instrument.clone(),
            row.side.clone(),
            row.status.clone(),
            row.quantity.to_string(),
            row.filled_quantity.to_string(),
            row.limit_price_cny.to_string(),
        ]);
    }
    align_numbers(&mut table, 6..9);
    table
}

fn trade_table(rows: &[TradeRecord]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([
        "position",
        "trade date",
        "account",
        "order",
        "exec",
        "instrument",
        "side",
        "quantity",
        "price",
        "value",
        "fees",
        "net cash",
    ]);
    for row in rows {
        table.add_row([
            row.global_position.to_string(),
            row.trade_date.to_string(),
            row.account_id.clone(),
            row.order_id.clone(),
            row.exec_id.clone(),
            row.instrument.clone(),
            row.side.clone(),
            row.quantity.to_string(),
            row.price_cny.to_string(),
            format_cny(row.value_cny),
            format_cny(row.fees_cny),
            format_cny(row.net_cash_cny),
        ]);
    }
    align_numbers(&mut table, 0..1);
    align_numbers(&mut table, 7..12);
    table
}
