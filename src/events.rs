//! `ledger events`: the log in global order, as text or as CloudEvents (one JSON object
//! a line), filtered by type and account, and with `--follow` live until interrupted.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ledger_app::stream::{envelope_for, watch_log_head, EventFilter, Feed};
use ledger_app::{EventStore, RecordedEvent};

/// Events examined per read of the log.
const EVENTS_PER_READ: usize = 1_000;
/// Longest one wait at the head lasts before the follower looks again (and notices Ctrl-C).
const FOLLOW_WAIT_MS: u64 = 1_000;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// First global position to show, included (0, 1 or left out: the first event).
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Most events to show (all by default).
    #[arg(long)]
    limit: Option<u64>,
    /// Print one JSON object per line (the CloudEvents envelope of docs/events.md) instead of text.
    #[arg(long)]
    json: bool,
    /// After the events written so far, print new ones as they commit, until interrupted
    /// (Ctrl-C); implies --json.
    #[arg(long)]
    follow: bool,
    /// Only events of this type (`FillBooked`, `DayClosed`, …); repeat for several.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only the events of this account; repeat for several.
    #[arg(long = "account", value_name = "ACCOUNT")]
    accounts: Vec<String>,
}

/// Prints the events the arguments ask for; with `--follow`, until Ctrl-C.
pub async fn run(store: Arc<dyn EventStore>, source: &str, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let filter = EventFilter::new(&args.types, &args.accounts)?;
    let end = if args.follow {
        None
    } else {
        Some(ledger_app::head_position(store.as_ref()).await?)
    };
    let (head, _task) = watch_log_head(Arc::clone(&store), None);
    let mut feed = Feed::starting_at(store, head, filter, args.from);
    let mut left = args.limit.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let json = args.json || args.follow;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while left > 0 && end.is_none_or(|end| feed.examined_through() < end) {
        let step = tokio::select! {
            step = feed.next(EVENTS_PER_READ, Duration::from_millis(FOLLOW_WAIT_MS)) => step?,
            _ = &mut interrupted => break,
        };
        // Without --follow, nothing past the head the command began with.
        let shown = step
            .events
            .iter()
            .filter(|e| end.is_none_or(|end| e.global_position <= end));
        for event in shown.take(usize::try_from(left).unwrap_or(usize::MAX)) {
            write_event(&mut out, event, source, json)?;
            left -= 1;
        }
        out.flush()?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_event(out: &mut impl Write, event: &RecordedEvent, source: &str, json: bool) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, &envelope_for(event, source, None))?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:>8}  {:<28} #{:<4} {:<26} {:<14} {}",
            event.global_position,
            event.stream.to_string(),
            event.sequence,
            event.event_type,
            event.metadata.command_id,
            event.payload
        )?;
    }
    Ok(())
}
