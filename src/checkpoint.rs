//! `ledger checkpoint keygen` and `ledger checkpoint --key FILE`: signed checkpoints of the
//! log kept apart from it (docs/operations.md, "Signed checkpoints"); and the checks
//! `ledger verify --checkpoints` adds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ledger_app::checkpoints::{Checkpoint, CheckpointReport};
use ledger_app::EventStore;

/// The checkpoint file when none is named.
pub const DEFAULT_CHECKPOINT_FILE: &str = "ledger-checkpoints.jsonl";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CheckpointArgs {
    #[command(subcommand)]
    action: Option<CheckpointAction>,
    /// The private key (a file of `ledger checkpoint keygen`) that signs the head.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The file the signed checkpoint is appended to, one JSON object a line.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CHECKPOINT_FILE)]
    file: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum CheckpointAction {
    /// Make a key pair: FILE (the private key, readable by its owner only) and FILE.pub.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub async fn run(db: &str, args: CheckpointArgs) -> anyhow::Result<ExitCode> {
    if let Some(CheckpointAction::Keygen { out }) = args.action {
        return keygen(&out);
    }
    let Some(key) = args.key else {
        anyhow::bail!(
            "name the private key that signs: --key FILE (make one with `ledger checkpoint keygen --out FILE`)"
        );
    };
    let store = crate::cli::open_existing(db).await?;
    let checkpoint = sign_to_file(store.as_ref(), &read_key(&key)?, &args.file).await?;
    println!(
        "checkpoint: position {} hash {} signed at {} by key {}, appended to {}",
        checkpoint.position,
        checkpoint.hash,
        checkpoint.signed_at,
        checkpoint.key,
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    for path in [out, public_path.as_path()] {
        anyhow::ensure!(
            !path.exists(),
            "{} exists: a key is never overwritten; name another file",
            path.display()
        );
    }
    let (private, public) = ledger_app::checkpoints::new_key_pair()?;
    write_private(out, &private)?;
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!(
        "private key {} (keep it where the ledger's database is not), public key {} ({public}): give the public key to the auditors",
        out.display(),
        public_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the private key readable by its owner only.
fn write_private(path: &Path, private: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(format!("{private}\n").as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read the key {}", path.display()))
}

/// Signs the head and appends the checkpoint to `file`, durably.
pub async fn sign_to_file(store: &dyn EventStore, private_key: &str, file: &Path) -> anyhow::Result<Checkpoint> {
    let checkpoint = ledger_app::checkpoints::sign_head(store, private_key, chrono::Utc::now()).await?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("cannot open the checkpoint file {}", file.display()))?;
    out.write_all(format!("{}\n", serde_json::to_string(&checkpoint)?).as_bytes())?;
    out.sync_all()?;
    Ok(checkpoint)
}

/// `ledger verify --checkpoints FILE --pubkey FILE`: the file's checkpoints against the log.
pub async fn check_file(store: &dyn EventStore, file: &Path, public_key: &Path) -> anyhow::Result<CheckpointReport> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read the checkpoints {}", file.display()))?;
    Ok(ledger_app::checkpoints::check(store, &text, &read_key(public_key)?).await?)
}

/// Prints what the checkpoints said; whether they all hold.
pub fn print_report(report: &CheckpointReport) -> bool {
    if report.findings.is_empty() {
        println!(
            "checkpoints: {} checked, every one signed by the trusted key and found in the log",
            report.checked
        );
        return true;
    }
    println!(
        "checkpoints: {} checked, {} do not hold",
        report.checked,
        report.findings.len()
    );
    for finding in &report.findings {
        let at = finding.position.map_or("-".to_owned(), |p| p.to_string());
        let kind = serde_json::to_value(finding.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "  line {:>6}  position {at:>8}  {kind}: {}",
            finding.line, finding.detail
        );
    }
    false
}

/// `ledger serve`'s checkpoints: signed as it runs when a key is given.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeCheckpointArgs {
    /// Sign checkpoints of the log as it grows, with this private key (`ledger checkpoint keygen`).
    #[arg(long, value_name = "FILE")]
    checkpoint_key: Option<PathBuf>,
    /// The file the server appends its checkpoints to.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CHECKPOINT_FILE, requires = "checkpoint_key")]
    checkpoint_file: PathBuf,
    /// A checkpoint every N events written.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), requires = "checkpoint_key")]
    checkpoint_every_events: Option<u64>,
    /// A checkpoint every M minutes in which events were written.
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(1..), requires = "checkpoint_key")]
    checkpoint_every_minutes: Option<u64>,
}

/// What the serving ledger signs, and how often.
#[derive(Debug, Clone)]
struct ServeCheckpoints {
    key: String,
    file: PathBuf,
    every_events: Option<u64>,
    every_minutes: Option<u64>,
}

/// Starts signing checkpoints beside the server when `--checkpoint-key` is given (with
/// `--checkpoint-every-events` or `--checkpoint-every-minutes`, or both).
pub fn start_signing(
    store: std::sync::Arc<dyn EventStore>,
    args: &ServeCheckpointArgs,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(key_file) = &args.checkpoint_key else {
        return Ok(None);
    };
    anyhow::ensure!(
        args.checkpoint_every_events.is_some() || args.checkpoint_every_minutes.is_some(),
        "--checkpoint-key needs --checkpoint-every-events N or --checkpoint-every-minutes M (or both)"
    );
    let key = read_key(key_file)?;
    // A key that does not read is said now, not at the first checkpoint.
    ledger_app::checkpoints::check_private_key(&key)?;
    let plan = ServeCheckpoints {
        key,
        file: args.checkpoint_file.clone(),
        every_events: args.checkpoint_every_events,
        every_minutes: args.checkpoint_every_minutes,
    };
    Ok(Some(tokio::spawn(keep_signing(store, plan))))
}

/// How often the serving ledger looks whether a checkpoint is due.
const CHECKPOINT_POLL_MS: u64 = 1_000;

/// Signs a checkpoint whenever `every_events` events were written since the last one,
/// or `every_minutes` passed with events written; until the task is aborted.
async fn keep_signing(store: std::sync::Arc<dyn EventStore>, plan: ServeCheckpoints) {
    let (mut signed_at_position, mut signed_at) = (0_u64, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(CHECKPOINT_POLL_MS)).await;
        let Ok(head) = store.head_position().await else {
            continue;
        };
        let by_events = plan.every_events.is_some_and(|n| head >= signed_at_position + n);
        let by_time = plan
            .every_minutes
            .is_some_and(|m| head > signed_at_position && signed_at.elapsed() >= Duration::from_secs(m * 60));
        if !(by_events || by_time) {
            continue;
        }
        match sign_to_file(store.as_ref(), &plan.key, &plan.file).await {
            Ok(checkpoint) => {
                tracing::info!(position = checkpoint.position, file = %plan.file.display(), "checkpoint signed");
                (signed_at_position, signed_at) = (checkpoint.position, Instant::now());
            }
            Err(error) => tracing::warn!(%error, "a checkpoint could not be signed; trying again"),
        }
    }
}
