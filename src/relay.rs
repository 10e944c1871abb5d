//! `ledger relay nats` and `ledger relay status`: the log to NATS JetStream, and how far
//! a relay has got (docs/operations.md, "Relaying events to NATS").

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_app::EventStore;
use ledger_relay::subject::DEFAULT_SUBJECT_PREFIX;
use ledger_relay::{checkpoint_name, Progress, RelayOptions};

use crate::serve::{start_log, stop_signal, LogFormat};

/// How often a running relay says where it is (standard error).
const PROGRESS_EVERY_MS: u64 = 10_000;

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    #[command(subcommand)]
    command: RelayCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RelayCommand {
    /// Publish every event, in order, to a NATS JetStream stream, then each new one as it
    /// commits, until interrupted (Ctrl-C or SIGTERM); resumes where the stream ends.
    Nats(NatsArgs),
    /// Where a NATS relay has got: its checkpoint, the log's head and the lag between.
    Status {
        /// The relay's stream.
        #[arg(long, default_value = "LEDGER")]
        stream: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct NatsArgs {
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// The JetStream stream (made when missing, with subjects PREFIX.>).
    #[arg(long, default_value = "LEDGER")]
    stream: String,
    /// The first tokens of every subject: PREFIX.<aggregate type>.<aggregate id>.<event type>.
    #[arg(long, default_value = DEFAULT_SUBJECT_PREFIX)]
    subject_prefix: String,
    /// The relay's log on standard error; `json` writes one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

pub async fn run(store: Arc<dyn EventStore>, source: &str, args: RelayArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RelayCommand::Nats(args) => relay(store, source, args).await,
        RelayCommand::Status { stream, json } => status(store.as_ref(), &stream, json).await,
    }
}

async fn relay(store: Arc<dyn EventStore>, source: &str, args: NatsArgs) -> anyhow::Result<ExitCode> {
    // Before the first line, so a supervisor that stops the relay once it has said it
    // runs always stops it cleanly.
    let stop = stop_signal();
    start_log(args.log_format)?;
    let options = RelayOptions {
        url: args.url,
        stream: args.stream,
        subject_prefix: args.subject_prefix,
        source: source.to_owned(),
    };
    eprintln!(
        "ledger relay: events to stream {} on {}, subjects {}.<aggregate type>.<aggregate id>.<event type>; stop with Ctrl-C or SIGTERM",
        options.stream, options.url, options.subject_prefix
    );
    let mut said_at = Instant::now();
    let mut last = None;
    let say = |progress: Progress| {
        eprintln!(
            "ledger relay: relayed through {} of {} (lag {} events)",
            progress.relayed_through,
            progress.head,
            progress.head.saturating_sub(progress.relayed_through)
        );
    };
    ledger_relay::run(store, &options, stop, |progress| {
        last = Some(progress);
        if said_at.elapsed() >= Duration::from_millis(PROGRESS_EVERY_MS) {
            say(progress);
            said_at = Instant::now();
        }
    })
    .await?;
    if let Some(progress) = last {
        say(progress);
    }
    eprintln!("ledger relay: stopped");
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct RelayStatus<'a> {
    stream: &'a str,
    checkpoint: u64,
    head_position: u64,
    lag_events: u64,
}

async fn status(store: &dyn EventStore, stream: &str, json: bool) -> anyhow::Result<ExitCode> {
    let checkpoint = ledger_app::stream::named_checkpoint(store, &checkpoint_name(stream)).await?;
    let head_position = ledger_app::head_position(store).await?;
    let status = RelayStatus {
        stream,
        checkpoint,
        head_position,
        lag_events: head_position.saturating_sub(checkpoint),
    };
    if json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        println!(
            "relay to stream {stream}: acknowledged through {checkpoint} of {head_position} (lag {} events)",
            status.lag_events
        );
    }
    Ok(ExitCode::SUCCESS)
}
