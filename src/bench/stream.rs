//! `ledger bench stream`: how fast the event streams deliver, end to end in one process.
//!
//! A server of its own writes `--events` events; then an SSE consumer (a subscriber
//! token, from position 0) and the NATS relay (to a stream made for the run) each catch
//! up with them: events per second. Then deposits are offered at `--rate` for
//! `--duration` seconds, and each consumer timestamps every new event as it arrives
//! (the SSE consumer its frame, a plain NATS subscriber on the relay's subjects its
//! message): latency from the event's `time`, when the engine decided it, to its
//! receipt. That span holds the group commit as well, so it is an upper bound of
//! commit-to-receipt. Client, server, relay and NATS share the machine's cores.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use ledger_app::MarketRules;
use ledger_relay::{Progress, RelayOptions};
use serde_json::Value;
use tokio::sync::watch;

use super::setup::{latency_histogram, percentiles_ms, record_latency_us, BenchServer};

/// Most events the bench writes before the consumers start.
pub const MAX_EVENTS: u64 = 10_000_000;
/// Highest live rate, commands per second, and longest live phase, seconds.
pub const MAX_RATE_PER_SECOND: u64 = 100_000;
pub const MAX_DURATION_SECONDS: u64 = 3_600;
/// Live commands sent and not yet answered, at most.
const MAX_IN_FLIGHT_REQUESTS: usize = 4_096;
/// Longest the consumers may take to catch up, and to receive the last live event.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600);
const ACCOUNT: &str = "BS0000001";

#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// Events written before the consumers start; each consumer catches up with them.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..=MAX_EVENTS))]
    events: u64,
    /// Deposits per second in the live phase (one event each).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=MAX_RATE_PER_SECOND))]
    rate: u64,
    /// Seconds of the live phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_SECONDS))]
    duration: u64,
    /// The NATS server (with JetStream) of the relay; the run makes a stream of its own
    /// there and deletes it afterwards.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A consumer's live latencies and what it received.
struct Received {
    latencies: Histogram<u64>,
    last_position: u64,
}

type Shared = Arc<Mutex<Received>>;

fn shared() -> anyhow::Result<Shared> {
    Ok(Arc::new(Mutex::new(Received {
        latencies: latency_histogram()?,
        last_position: 0,
    })))
}

struct Measured {
    events: u64,
    sse_catch_up: Duration,
    relay_catch_up: Duration,
    live_events: u64,
    sse: Histogram<u64>,
    nats: Histogram<u64>,
}

pub async fn run(
    args: StreamArgs,
    db: Option<&str>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
) -> anyhow::Result<std::process::ExitCode> {
    let nats = async_nats::connect(args.nats_url.as_str()).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach NATS at {} ({e}): start `nats-server -js` or name another with --nats-url",
            args.nats_url
        )
    })?;
    let server = BenchServer::start(db, rules, cache_aggregates).await?;
    let measured = measure(&server, &nats, &args).await;
    let backend = server.backend;
    server.stop().await?;
    print(&measured?, &args, backend)?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn measure(server: &BenchServer, nats: &async_nats::Client, args: &StreamArgs) -> anyhow::Result<Measured> {
    let client = reqwest::Client::new();
    prefill(&client, server, args.events).await?;
    let sse = shared()?;
    let started = Instant::now();
    let sse_task = tokio::spawn(consume_sse(
        client.clone(),
        server.base.clone(),
        server.tokens.subscriber.clone(),
        args.events,
        Arc::clone(&sse),
    ));
    wait_until(|| sse.lock().map_or(0, |r| r.last_position) >= args.events).await?;
    let sse_catch_up = started.elapsed();

    let pid = std::process::id();
    let options = RelayOptions {
        url: args.nats_url.clone(),
        stream: format!("LEDGERBENCH{pid}"),
        subject_prefix: format!("ledgerbench{pid}"),
        source: ledger_app::stream::DEFAULT_SOURCE.to_owned(),
    };
    let (relayed, relayed_through) = watch::channel(0_u64);
    let (stop_relay, relay_stopping) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    // The relay runs as its own process would: its own pool on the database.
    let relay_store = crate::cli::open_existing(&server.url).await?;
    let relay = {
        let options = options.clone();
        let store = relay_store;
        tokio::spawn(async move {
            let stop = async move {
                let _ = relay_stopping.await;
            };
            ledger_relay::run(store, &options, stop, |p: Progress| {
                let _ = relayed.send(p.relayed_through);
            })
            .await
        })
    };
    wait_until(|| *relayed_through.borrow() >= args.events).await?;
    let relay_catch_up = started.elapsed();
    let nats_received = shared()?;
    let subscriber = nats.subscribe(format!("{}.>", options.subject_prefix)).await?;
    let nats_task = tokio::spawn(consume_nats(subscriber, args.events, Arc::clone(&nats_received)));

    offer_deposits(&client, server, args).await?;
    let head = ledger_app::head_position(server.store.as_ref()).await?;
    wait_until(|| {
        let at = |r: &Shared| r.lock().map_or(0, |r| r.last_position);
        at(&sse) >= head && at(&nats_received) >= head
    })
    .await?;
    let _ = stop_relay.send(());
    relay.await??;
    sse_task.abort();
    nats_task.abort();
    jetstream::new(nats.clone()).delete_stream(&options.stream).await?;
    let take = |r: &Shared| {
        r.lock()
            .map_or_else(|_| latency_histogram(), |r| Ok(r.latencies.clone()))
    };
    Ok(Measured {
        events: args.events,
        sse_catch_up,
        relay_catch_up,
        live_events: head - args.events,
        sse: take(&sse)?,
        nats: take(&nats_received)?,
    })
}

/// Polls `done` until it holds, at most [`CATCH_UP_LIMIT`].
async fn wait_until(done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "a consumer did not catch up within {CATCH_UP_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// An account and deposits up to `events` events, in batches; all must be accepted.
async fn prefill(client: &reqwest::Client, server: &BenchServer, events: u64) -> anyhow::Result<()> {
    let open = format!(
        r#"{{"type":"open_account","command_id":"bs-open","account_id":"{ACCOUNT}","customer_name":"Bench","id_number":"BENCH0000000001","risk_level":3}}"#
    );
    let lines: Vec<String> = std::iter::once(open).chain((1..events).map(deposit)).collect();
    for chunk in lines.chunks(ledger_server::MAX_BATCH_REQUEST_LINES) {
        let answered = client
            .post(format!("{}/v1/commands/batch", server.base))
            .bearer_auth(&server.tokens.operations)
            .header("content-type", "application/x-ndjson")
            .body(chunk.join("\n"))
            .send()
            .await?
            .text()
            .await?;
        anyhow::ensure!(
            answered.lines().all(|line| line.contains(r#""status":"accepted""#)),
            "a set-up command was not accepted: {}",
            answered
                .lines()
                .find(|l| !l.contains(r#""status":"accepted""#))
                .unwrap_or_default()
        );
    }
    let head = ledger_app::head_position(server.store.as_ref()).await?;
    anyhow::ensure!(head == events, "the set-up wrote {head} events, not {events}");
    Ok(())
}

fn deposit(n: u64) -> String {
    format!(
        r#"{{"type":"deposit","command_id":"bs-dep-{n}","account_id":"{ACCOUNT}","amount":"100.00","bank_ref":"BS-{n}"}}"#
    )
}

/// Deposits at the rate for the duration, each due on a fixed schedule (open loop).
async fn offer_deposits(client: &reqwest::Client, server: &BenchServer, args: &StreamArgs) -> anyhow::Result<()> {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT_REQUESTS));
    let url = format!("{}/v1/commands", server.base);
    let start = Instant::now();
    let mut sent = Vec::new();
    for i in 0..args.rate * args.duration {
        tokio::time::sleep_until((start + Duration::from_nanos(i * 1_000_000_000 / args.rate)).into()).await;
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let request = client
            .post(&url)
            .bearer_auth(&server.tokens.operations)
            .header("content-type", "application/json")
            .body(deposit(args.events + i));
        sent.push(tokio::spawn(async move {
            let answered = request.send().await.map(|r| r.status().as_u16());
            drop(permit);
            answered
        }));
    }
    for answer in sent {
        let status = answer.await??;
        anyhow::ensure!(status == 200, "a live deposit was answered {status}");
    }
    Ok(())
}

/// Records a received event: its position, and its latency when it is a live one.
fn record(received: &Shared, event: &Value, live_after: u64) {
    let Some(position) = event["position"].as_u64() else {
        return;
    };
    let decided = event["time"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let Ok(mut received) = received.lock() else { return };
    received.last_position = received.last_position.max(position);
    if let (true, Some(decided)) = (position > live_after, decided) {
        let latency_us = (chrono::Utc::now() - decided.with_timezone(&chrono::Utc))
            .num_microseconds()
            .unwrap_or(0);
        record_latency_us(&mut received.latencies, u64::try_from(latency_us).unwrap_or(0));
    }
}

/// Reads the SSE stream from position 0 and records every event.
async fn consume_sse(client: reqwest::Client, base: String, token: String, live_after: u64, received: Shared) {
    let Ok(mut response) = client
        .get(format!("{base}/v1/events/stream"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return;
    };
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let is_event = !frame.lines().any(|l| l.starts_with("event:"));
            let data = frame.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim_start);
            if let (true, Some(Ok(event))) = (is_event, data.map(serde_json::from_str::<Value>)) {
                record(&received, &event, live_after);
            }
        }
    }
}

/// Reads the relay's subjects and records every message.
async fn consume_nats(mut subscriber: async_nats::Subscriber, live_after: u64, received: Shared) {
    while let Some(message) = subscriber.next().await {
        if let Ok(event) = serde_json::from_slice::<Value>(&message.payload) {
            record(&received, &event, live_after);
        }
    }
}

fn print(measured: &Measured, args: &StreamArgs, backend: &str) -> anyhow::Result<()> {
    // Display only: the ledger's amounts never pass through floats.
    let per_second = |events: u64, took: Duration| events as f64 / took.as_secs_f64().max(f64::MIN_POSITIVE);
    let sse_rate = per_second(measured.events, measured.sse_catch_up);
    let relay_rate = per_second(measured.events, measured.relay_catch_up);
    let [sse_p50, sse_p99, sse_p999, sse_max] = percentiles_ms(&measured.sse);
    let [nats_p50, nats_p99, nats_p999, nats_max] = percentiles_ms(&measured.nats);
    if args.json {
        let document = serde_json::json!({
            "backend": backend,
            "events": measured.events,
            "sse_catch_up_events_per_second": sse_rate,
            "relay_catch_up_events_per_second": relay_rate,
            "live_rate_per_second": args.rate,
            "live_seconds": args.duration,
            "live_events": measured.live_events,
            "sse_latency_ms": {"count": measured.sse.len(), "p50": sse_p50, "p99": sse_p99, "p99_9": sse_p999, "max": sse_max},
            "nats_latency_ms": {"count": measured.nats.len(), "p50": nats_p50, "p99": nats_p99, "p99_9": nats_p999, "max": nats_max},
        });
        println!("{}", serde_json::to_string(&document)?);
        return Ok(());
    }
    println!(
        "bench stream: {backend}, {} events written first; server, relay, consumers and NATS share the machine",
        measured.events
    );
    println!(
        "catch-up: SSE {sse_rate:.0} events/s ({:.2} s), relay to JetStream {relay_rate:.0} events/s ({:.2} s)",
        measured.sse_catch_up.as_secs_f64(),
        measured.relay_catch_up.as_secs_f64()
    );
    println!(
        "live: {} deposits/s for {} s, {} events; latency from decision to receipt:",
        args.rate, args.duration, measured.live_events
    );
    println!(
        "  SSE   ms: p50 {sse_p50:.2}  p99 {sse_p99:.2}  p99.9 {sse_p999:.2}  max {sse_max:.2}  ({} received)",
        measured.sse.len()
    );
    println!(
        "  NATS  ms: p50 {nats_p50:.2}  p99 {nats_p99:.2}  p99.9 {nats_p999:.2}  max {nats_max:.2}  ({} received)",
        measured.nats.len()
    );
    Ok(())
}
