//! `ledger serve`: the HTTP API (the `ledger-server` crate) until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use ledger_app::MarketRules;
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
}

pub async fn run(
    args: ServeArgs,
    db: &str,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
) -> anyhow::Result<ExitCode> {
    if args.print_openapi {
        print!("{}", ledger_server::openapi_json());
        return Ok(ExitCode::SUCCESS);
    }
    let store = crate::cli::open_store(db).await?;
    let backend = store.backend();
    let options = ServerOptions {
        queue_commands: args.queue_commands,
        cache_aggregates,
    };
    let server = Server::bind(&args.listen, store, rules, options).await?;
    let address = server.local_addr()?;
    println!(
        "ledger serve: listening on http://{address} ({backend} database {}); stop with Ctrl-C or SIGTERM",
        ledger_app::redact_url(db)
    );
    server.run(|routes| routes, stop_signal()).await?;
    println!("ledger serve: stopped; every request received was answered");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
