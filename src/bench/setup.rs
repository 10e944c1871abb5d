//! What every bench shares: a server of its own in this process, on an empty ledger,
//! with tokens only this process knows; and latency percentiles.

use std::sync::Arc;

use hdrhistogram::Histogram;
use ledger_app::access::{new_token, Role, TokenEntry, TokenHash, Tokens};
use ledger_app::{Config, EventStore, MarketRules};
use ledger_server::{Server, ServerError, ServerOptions};

/// Longest latency the histograms hold, microseconds; a longer one is recorded as this.
pub const MAX_RECORDED_LATENCY_US: u64 = 600_000_000;

/// A token of each role a bench uses.
pub struct BenchTokens {
    pub operations: String,
    pub gateway: String,
    pub subscriber: String,
}

/// A running server on an empty ledger (a temporary SQLite file unless `--db` named one).
pub struct BenchServer {
    pub base: String,
    /// The database's URL, for a reader beside the server with a pool of its own.
    pub url: String,
    pub backend: &'static str,
    pub store: Arc<dyn EventStore>,
    pub tokens: BenchTokens,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), ServerError>>,
    _scratch: tempfile::TempDir,
}

impl BenchServer {
    /// Opens the database (`db`, else a temporary SQLite file), which must hold no event,
    /// and serves it on 127.0.0.1:0.
    pub async fn start(db: Option<&str>, rules: Arc<MarketRules>, cache_aggregates: usize) -> anyhow::Result<Self> {
        let EmptyLedger { url, store, scratch } = EmptyLedger::open(db).await?;
        let (configured, tokens) = bench_tokens()?;
        let options = ServerOptions {
            cache_aggregates,
            ..ServerOptions::default()
        };
        let server = Server::bind(
            "127.0.0.1:0",
            (Arc::clone(&store), rules),
            configured,
            Arc::new(Config::default()),
            options,
        )
        .await?;
        let base = format!("http://{}", server.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            base,
            url,
            backend: store.backend(),
            store,
            tokens,
            stop,
            serving,
            _scratch: scratch,
        })
    }

    /// Stops the server and waits for it, whatever the bench's own result was.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.serving.await??;
        Ok(())
    }
}

/// The ledger a bench writes: `db`, which must hold no event, else a temporary SQLite
/// file that lives as long as `scratch`.
pub struct EmptyLedger {
    pub url: String,
    pub store: Arc<dyn EventStore>,
    pub scratch: tempfile::TempDir,
}

impl EmptyLedger {
    pub async fn open(db: Option<&str>) -> anyhow::Result<EmptyLedger> {
        let scratch = tempfile::tempdir()?;
        let url = match db {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", scratch.path().join("bench.db").display()),
        };
        let store = crate::cli::open_store(&url).await?;
        let head = ledger_app::head_position(store.as_ref()).await?;
        anyhow::ensure!(
            head == 0,
            "the bench writes a ledger of its own and needs an empty ledger, but {} holds {head} events",
            ledger_app::redact_url(&url)
        );
        Ok(EmptyLedger { url, store, scratch })
    }
}

/// Tokens known to this process only.
fn bench_tokens() -> anyhow::Result<(Tokens, BenchTokens)> {
    let tokens = BenchTokens {
        operations: new_token()?,
        gateway: new_token()?,
        subscriber: new_token()?,
    };
    let entry = |name: &str, role, token: &str| TokenEntry {
        name: name.to_owned(),
        role,
        sha256: TokenHash::of(token),
        accounts: None,
        created_at: chrono::Utc::now(),
    };
    let configured = Tokens::new(vec![
        entry("bench-operations", Role::Operations, &tokens.operations),
        entry("bench-gateway", Role::Gateway, &tokens.gateway),
        entry("bench-subscriber", Role::Subscriber, &tokens.subscriber),
    ])
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok((configured, tokens))
}

/// A histogram of latencies in microseconds, 1 µs to [`MAX_RECORDED_LATENCY_US`].
pub fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, MAX_RECORDED_LATENCY_US, 3)?)
}

/// Records a latency in a histogram of [`latency_histogram`], held within its bounds.
pub fn record_latency_us(histogram: &mut Histogram<u64>, latency_us: u64) {
    histogram.saturating_record(latency_us.clamp(1, MAX_RECORDED_LATENCY_US));
}

/// Latency percentiles of a histogram in milliseconds: p50, p99, p99.9, max.
pub fn percentiles_ms(histogram: &Histogram<u64>) -> [f64; 4] {
    // Display only: the ledger's amounts never pass through floats.
    let ms = |us: u64| us as f64 / 1_000.0;
    [
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.value_at_quantile(0.999)),
        ms(histogram.max()),
    ]
}
