//! `ledger import FILE` and `ledger migrate-store --from URL --to URL`: a log moved into
//! an empty store with its positions, times and hashes, proved by the head hashes.

use std::path::Path;
use std::process::ExitCode;

/// `ledger import FILE`: the envelopes of `ledger events --json` into the empty `--db`.
pub async fn import(db: &str, file: &Path) -> anyhow::Result<ExitCode> {
    let store = crate::cli::open_store(db).await?;
    let moved = ledger_app::import::import_file(store.as_ref(), file).await?;
    println!(
        "imported {} events of {} commands from {} into {}; head hash {}",
        moved.events,
        moved.commands,
        file.display(),
        ledger_app::redact_url(db),
        moved.head_hash
    );
    Ok(ExitCode::SUCCESS)
}

/// `ledger migrate-store --from URL --to URL`: the whole log of one store into another,
/// empty one; both head hashes are read back from the stores and must be equal.
pub async fn migrate_store(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let source = crate::cli::open_existing(from).await?;
    let target = crate::cli::open_store(to).await?;
    let moved = ledger_app::import::migrate_store(source.as_ref(), target.as_ref()).await?;
    // The source may have grown while it was copied: compare at the last position moved.
    let source_hash = hash_at(source.as_ref(), moved.events).await?;
    let target_hash = hash_at(target.as_ref(), target.head_position().await?).await?;
    println!(
        "moved {} events of {} commands from {} to {}",
        moved.events,
        moved.commands,
        ledger_app::redact_url(from),
        ledger_app::redact_url(to)
    );
    println!("source hash at position {}: {source_hash}", moved.events);
    println!("target head hash {target_hash}");
    anyhow::ensure!(
        source_hash == target_hash,
        "the hashes differ: the target does not hold the source's log"
    );
    println!("equal: the target holds the source's log, every event with its position and hash");
    Ok(ExitCode::SUCCESS)
}

/// The hash of the event at `position` (64 zeros for 0).
async fn hash_at(store: &dyn ledger_app::EventStore, position: u64) -> anyhow::Result<String> {
    let head = store.head_position().await?;
    ledger_app::hash_at(store, position, head)
        .await?
        .ok_or_else(|| anyhow::anyhow!("position {position} cannot be read"))
}
