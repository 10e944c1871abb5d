//! `ledger bench http`: an open-loop load of orders and fills against a server of its own
//! (and `ledger bench stream`, in [`stream`]; `ledger bench engine`, in [`engine`]).
//!
//! Open loop: request `i` is due at `start + i / rate` whatever became of the earlier
//! ones, and its latency runs from that due instant to its answer. A server that falls
//! behind therefore shows its queueing in the latency instead of slowing the client
//! down (the closed-loop error known as coordinated omission).
//!
//! The server runs in this process, on an empty database of its own (a temporary SQLite
//! file unless `--db` names an empty ledger), so client and server share the machine's
//! cores: the figures say what one machine does with both, not what the server would do
//! alone.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod demo_days;
mod engine;
mod measured;
mod setup;
mod stream;
mod workload;

use hdrhistogram::Histogram;
use ledger_app::MarketRules;
use tokio::sync::mpsc;

use setup::{latency_histogram, percentiles_ms, record_latency_us, BenchServer};

/// Most requests the client has sent and not yet seen answered; a request due while
/// this many are out is not sent and is counted as `not sent`, so a stalled server
/// cannot make the client hold unbounded memory.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 8_192;
/// Highest rate the bench offers, requests per second.
pub const MAX_RATE_PER_SECOND: u64 = 1_000_000;
/// Longest run, seconds.
pub const MAX_DURATION_SECONDS: u64 = 3_600;
/// Most accounts the bench opens.
pub const MAX_ACCOUNTS: u64 = 1_000_000;
/// The instrument every order is for, its previous close and the open trade date.
const INSTRUMENT: &str = "601398.SH";
const PREVIOUS_CLOSE_CNY: &str = "5.29";
const TRADE_DATE: &str = "2024-03-04";
/// Cash deposited in each account before the run: about 1,800 orders of 100 shares.
const DEPOSIT_CNY: &str = "1000000.00";

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: BenchTarget,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchTarget {
    /// Drive `ledger serve` (started in this process, on an empty database) open-loop
    /// with orders and fills; print throughput and latency percentiles.
    Http(HttpArgs),
    /// The event streams: SSE and the NATS relay catching up with a log, then the
    /// latency from a command's decision to its event's receipt.
    Stream(stream::StreamArgs),
    /// The application layer's writer driven in-process by concurrent clients, each
    /// waiting for its answer; with `--baseline-db`, the stock cqrs-es stack beside it.
    Engine(engine::EngineArgs),
}

#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// Requests sent per second, on a fixed schedule (half orders, half fills).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_RATE_PER_SECOND))]
    pub rate: u64,
    /// Seconds of sending.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_SECONDS))]
    pub duration: u64,
    /// Accounts the orders are spread over, round robin.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=MAX_ACCOUNTS))]
    pub accounts: u64,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(
    args: BenchArgs,
    db: Option<&str>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
) -> anyhow::Result<ExitCode> {
    let args = match args.target {
        BenchTarget::Http(args) => args,
        BenchTarget::Stream(args) => return stream::run(args, db, rules, cache_aggregates).await,
        BenchTarget::Engine(args) => return engine::run(args, db, rules, cache_aggregates).await,
    };
    let server = BenchServer::start(db, rules, cache_aggregates).await?;
    let client = reqwest::Client::builder().build()?;
    let tokens = &server.tokens;
    let result = async {
        open_accounts(&client, &server.base, &tokens.operations, args.accounts).await?;
        drive(&client, &server.base, &tokens.gateway, &args).await
    }
    .await;
    let backend = server.backend;
    server.stop().await?;
    print_result(&result?, &args, backend)?;
    Ok(ExitCode::SUCCESS)
}

fn account_id(index: u64) -> String {
    format!("BN{index:07}")
}

/// The instrument, its previous close, and `accounts` accounts each with a deposit,
/// sent as batches; every line must be accepted.
async fn open_accounts(client: &reqwest::Client, base: &str, token: &str, accounts: u64) -> anyhow::Result<()> {
    let mut lines = vec![
        format!(
            r#"{{"type":"list_instrument","command_id":"bench-list","instrument":"{INSTRUMENT}","name":"ICBC","board":"main","risk_level":1}}"#
        ),
        format!(
            r#"{{"type":"set_prev_close","command_id":"bench-close","instrument":"{INSTRUMENT}","trade_date":"{TRADE_DATE}","price":"{PREVIOUS_CLOSE_CNY}"}}"#
        ),
    ];
    for index in 0..accounts {
        let account = account_id(index);
        lines.push(format!(
            r#"{{"type":"open_account","command_id":"bench-open-{index}","account_id":"{account}","customer_name":"Bench {index}","id_number":"BENCH{index:013}","risk_level":3}}"#
        ));
        lines.push(format!(
            r#"{{"type":"deposit","command_id":"bench-deposit-{index}","account_id":"{account}","amount":"{DEPOSIT_CNY}","bank_ref":"BENCH-{index}"}}"#
        ));
    }
    for chunk in lines.chunks(ledger_server::MAX_BATCH_REQUEST_LINES) {
        let response = client
            .post(format!("{base}/v1/commands/batch"))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(chunk.join("\n"))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "set-up batch answered {}", response.status());
        let text = response.text().await?;
        for answer in text.lines() {
            let answer: serde_json::Value = serde_json::from_str(answer)?;
            anyhow::ensure!(answer["status"] == "accepted", "set-up refused: {answer}");
        }
    }
    Ok(())
}

/// What a request was: the latency target of an order and of a fill differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Order,
    Fill,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// 200 `accepted`.
    Accepted,
    /// 422: a business refusal (a fill of an order that was itself refused or not yet decided).
    Rejected,
    /// 503 `overloaded`: the server's queue was full.
    Overloaded,
    /// Any other status.
    OtherStatus,
    /// No answer: the connection failed.
    TransportError,
}

struct Answered {
    kind: Kind,
    ending: Ending,
    latency_us: u64,
}

/// Request `i` of the schedule: even ones place an order, odd ones fill the order
/// placed about a quarter of a second earlier (until then, odd ones place orders too).
fn request_body(i: u64, rate: u64, accounts: u64) -> (Kind, String) {
    let fill_lag_requests = 2 * (rate / 8).max(1);
    if i % 2 == 1 && i > fill_lag_requests {
        let filled = i - 1 - fill_lag_requests;
        let account = account_id(filled % accounts);
        let body = format!(
            r#"{{"type":"fill","command_id":"bench-fill-{filled}","account_id":"{account}","order_id":"BO{filled}","exec_id":"BE{filled}","quantity":100,"price":"{PREVIOUS_CLOSE_CNY}"}}"#
        );
        return (Kind::Fill, body);
    }
    let account = account_id(i % accounts);
    let body = format!(
        r#"{{"type":"place_order","command_id":"bench-order-{i}","account_id":"{account}","order_id":"BO{i}","instrument":"{INSTRUMENT}","side":"buy","quantity":100,"price":"{PREVIOUS_CLOSE_CNY}","trade_date":"{TRADE_DATE}"}}"#
    );
    (Kind::Order, body)
}

/// What the run measured.
struct Outcome {
    offered: u64,
    not_sent: u64,
    endings: std::collections::BTreeMap<&'static str, u64>,
    orders: Histogram<u64>,
    fills: Histogram<u64>,
    /// From the first due instant to the last answer.
    elapsed: Duration,
}

/// Sends every request of the schedule at its due instant and gathers the answers.
async fn drive(client: &reqwest::Client, base: &str, token: &str, args: &HttpArgs) -> anyhow::Result<Outcome> {
    let total = args.rate * args.duration;
    let (answers, mut answered) = mpsc::channel::<Answered>(MAX_IN_FLIGHT_REQUESTS);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT_REQUESTS));
    let url = Arc::new(format!("{base}/v1/commands"));
    let start = Instant::now();
    let collector = tokio::spawn(async move {
        let mut gathered = Vec::new();
        while let Some(answer) = answered.recv().await {
            gathered.push(answer);
        }
        (gathered, Instant::now())
    });
    let mut not_sent = 0;
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / args.rate);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            not_sent += 1;
            continue;
        };
        let (kind, body) = request_body(i, args.rate, args.accounts);
        let request = client
            .post(url.as_str())
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        let answers = answers.clone();
        tokio::spawn(async move {
            let ending = ending_of(request.send().await);
            let latency_us = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
            let _ = answers
                .send(Answered {
                    kind,
                    ending,
                    latency_us,
                })
                .await;
            drop(permit);
        });
    }
    drop(answers);
    let (gathered, last_answer) = collector.await?;
    summarize(total, not_sent, &gathered, last_answer.duration_since(start))
}

fn ending_of(response: reqwest::Result<reqwest::Response>) -> Ending {
    match response.map(|r| r.status().as_u16()) {
        Ok(200) => Ending::Accepted,
        Ok(422) => Ending::Rejected,
        Ok(503) => Ending::Overloaded,
        Ok(_) => Ending::OtherStatus,
        Err(_) => Ending::TransportError,
    }
}

fn summarize(offered: u64, not_sent: u64, gathered: &[Answered], elapsed: Duration) -> anyhow::Result<Outcome> {
    let (mut orders, mut fills) = (latency_histogram()?, latency_histogram()?);
    let mut endings = std::collections::BTreeMap::new();
    for answer in gathered {
        let name = match answer.ending {
            Ending::Accepted => "accepted",
            Ending::Rejected => "rejected",
            Ending::Overloaded => "overloaded",
            Ending::OtherStatus => "other_status",
            Ending::TransportError => "transport_error",
        };
        *endings.entry(name).or_insert(0) += 1;
        let histogram = if answer.kind == Kind::Order {
            &mut orders
        } else {
            &mut fills
        };
        record_latency_us(histogram, answer.latency_us);
    }
    Ok(Outcome {
        offered,
        not_sent,
        endings,
        orders,
        fills,
        elapsed,
    })
}

fn print_result(outcome: &Outcome, args: &HttpArgs, backend: &str) -> anyhow::Result<()> {
    let answered = outcome.orders.len() + outcome.fills.len();
    let seconds = outcome.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let achieved_per_second = answered as f64 / seconds;
    let accepted = outcome.endings.get("accepted").copied().unwrap_or(0);
    let accepted_per_second = accepted as f64 / seconds;
    let [order_p50, order_p99, order_p999, order_max] = percentiles_ms(&outcome.orders);
    let [fill_p50, fill_p99, fill_p999, fill_max] = percentiles_ms(&outcome.fills);
    if args.json {
        let document = serde_json::json!({
            "backend": backend,
            "rate_per_second": args.rate,
            "duration_seconds": args.duration,
            "accounts": args.accounts,
            "offered": outcome.offered,
            "not_sent": outcome.not_sent,
            "answered": answered,
            "endings": outcome.endings,
            "achieved_per_second": achieved_per_second,
            "accepted_per_second": accepted_per_second,
            "orders_ms": {"count": outcome.orders.len(), "p50": order_p50, "p99": order_p99, "p99_9": order_p999, "max": order_max},
            "fills_ms": {"count": outcome.fills.len(), "p50": fill_p50, "p99": fill_p99, "p99_9": fill_p999, "max": fill_max},
        });
        println!("{}", serde_json::to_string(&document)?);
        return Ok(());
    }
    println!(
        "bench http: {backend}, offered {} requests/s for {} s over {} accounts (client and server in one process, sharing the machine's cores)",
        args.rate, args.duration, args.accounts
    );
    println!(
        "sent {} of {} (not sent, {} in flight already: {}); answered {answered} in {seconds:.2} s",
        outcome.offered - outcome.not_sent,
        outcome.offered,
        MAX_IN_FLIGHT_REQUESTS,
        outcome.not_sent
    );
    println!(
        "achieved {achieved_per_second:.0} answers/s, {accepted_per_second:.0} accepted/s; endings {:?}",
        outcome.endings
    );
    println!(
        "orders  latency ms (from due instant): p50 {order_p50:.2}  p99 {order_p99:.2}  p99.9 {order_p999:.2}  max {order_max:.2}  ({} answered)",
        outcome.orders.len()
    );
    println!(
        "fills   latency ms (from due instant): p50 {fill_p50:.2}  p99 {fill_p99:.2}  p99.9 {fill_p999:.2}  max {fill_max:.2}  ({} answered)",
        outcome.fills.len()
    );
    Ok(())
}
