//! `ledger serve`: the HTTP API (the `ledger-server` crate) until SIGTERM or Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use ledger_app::{Config, MarketRules, DEFAULT_CONFIG_FILE};
use ledger_server::{Server, ServerOptions};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub listen: String,
    /// Most commands waiting in the queue; a request that does not fit is answered
    /// 503 `overloaded` with Retry-After (a batch request larger than the limit never fits).
    #[arg(long, default_value_t = ledger_server::DEFAULT_QUEUE_COMMANDS, value_name = "COMMANDS")]
    pub queue_commands: usize,
    /// Print the OpenAPI 3.1 document (docs/openapi.json) and exit, opening no database.
    #[arg(long)]
    pub print_openapi: bool,
    /// Also serve GET /metrics on HOST:PORT without a token, for a Prometheus scraper on a
    /// private interface (on the API's address /metrics needs an operations or auditor token).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
    /// The service's log on standard error: one line per request, and warnings; `json`
    /// writes one JSON object per line. LEDGER_LOG sets its level (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub checkpoints: crate::checkpoint::ServeCheckpointArgs,
}

/// How the service's log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The environment variable naming the level of the service's log: error, warn, info
/// (the default), debug (adds a line per group commit) or trace.
const LOG_LEVEL_VARIABLE: &str = "LEDGER_LOG";

/// Sends the service's events (the ledger's at LEDGER_LOG's level, other crates' warnings)
/// to standard error, as text or JSON lines; standard output keeps the start lines.
pub(crate) fn start_log(format: LogFormat) -> anyhow::Result<()> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let level = match std::env::var(LOG_LEVEL_VARIABLE) {
        Ok(text) => text.parse::<LevelFilter>().map_err(|_| {
            anyhow::anyhow!("{LOG_LEVEL_VARIABLE}={text:?} is not a level: error, warn, info, debug or trace")
        })?,
        Err(_) => LevelFilter::INFO,
    };
    let filter = Targets::new()
        .with_target("ledger_server", level)
        .with_target("ledger_relay", level)
        .with_target("ledger_app", level)
        .with_target("ledger", level)
        .with_default(LevelFilter::WARN);
    let text = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => tracing_subscriber::registry().with(text.with_filter(filter)).try_init(),
        LogFormat::Json => {
            let json = text
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false);
            tracing_subscriber::registry().with(json.with_filter(filter)).try_init()
        }
    };
    installed.map_err(|e| anyhow::anyhow!("cannot start the log: {e}"))
}

/// What a configuration file `serve` creates says.
const NEW_CONFIG_TEXT: &str = "# The ledger's configuration (docs/operations.md, \"Configuration\").\n\
# `ledger token create --role ROLE --name NAME` adds the [[tokens]] that `ledger serve` lets in.\n";

/// Creates the configuration file (`--config`, else ledger.toml) when it does not exist.
pub fn create_config_if_missing(named: Option<&Path>) -> anyhow::Result<()> {
    let path = named.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
    if !path.exists() {
        std::fs::write(path, NEW_CONFIG_TEXT)
            .map_err(|e| anyhow::anyhow!("cannot create the configuration file {}: {e}", path.display()))?;
        println!("ledger serve: created the configuration file {}", path.display());
    }
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C; `settings` are `--cache-aggregates` and `--config`
/// (the file named in the hint printed when it holds no token).
pub async fn run(
    args: ServeArgs,
    db: &str,
    rules: Arc<MarketRules>,
    mut config: Config,
    settings: (usize, Option<&Path>),
) -> anyhow::Result<ExitCode> {
    let (cache_aggregates, config_path) = settings;
    let config_path = config_path.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
    if args.print_openapi {
        print!("{}", ledger_server::openapi_json());
        return Ok(ExitCode::SUCCESS);
    }
    start_log(args.log_format)?;
    let store = crate::cli::open_store(db).await?;
    let backend = store.backend();
    let options = ServerOptions {
        queue_commands: args.queue_commands,
        cache_aggregates,
        ..ServerOptions::default()
    };
    // The server gets the tokens apart; the configuration it keeps holds none.
    let tokens = std::mem::take(&mut config.tokens);
    let token_count = tokens.entries().len();
    let config = Arc::new(config);
    let signing = crate::checkpoint::start_signing(Arc::clone(&store), &args.checkpoints)?;
    let mut server = Server::bind(&args.listen, (store, rules), tokens, config, options).await?;
    let address = server.local_addr()?;
    println!(
        "ledger serve: listening on http://{address} ({backend} database {}); stop with Ctrl-C or SIGTERM",
        ledger_app::redact_url(db)
    );
    if let Some(metrics_address) = &args.metrics_listen {
        let bound = server.listen_metrics(metrics_address).await?;
        // Printed before the line about tokens (which scripts wait for), and without that word.
        println!(
            "ledger serve: metrics for Prometheus at http://{bound}/metrics, open to whoever reaches that address"
        );
    }
    if token_count == 0 {
        println!(
            "ledger serve: {} holds no token, so every route but /v1/health and /v1/openapi.json answers 401; \
             make one with `ledger token create --role operations --name NAME --config {}` (printed once) \
             and send it as `Authorization: Bearer TOKEN`; a restart loads new tokens",
            config_path.display(),
            config_path.display()
        );
    } else {
        println!(
            "ledger serve: {token_count} tokens loaded from {}",
            config_path.display()
        );
    }
    server.run(stop_signal()).await?;
    if let Some(signing) = signing {
        signing.abort();
    }
    println!("ledger serve: stopped; every request received was answered");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first. The handlers are installed when
/// this is called, not when the future is first polled: a signal that comes while the
/// process is still starting (connecting, binding) stops it cleanly too.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        let wait = |installed: std::io::Result<tokio::signal::unix::Signal>| async move {
            match installed {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {}
            () = wait(interrupt) => {}
        }
    }
}
