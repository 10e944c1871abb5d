//! Signed checkpoints of the log (`ledger checkpoint`, `ledger verify --checkpoints`):
//! the keys, signing the head, and checking a checkpoint file against the log. The
//! cryptography and the checks are `ledger_replay::checkpoints`'.

use chrono::{DateTime, Utc};
use ledger_eventstore::{event_at, EventStore};
use ledger_replay::checkpoints::{self as signed, KeyError};
pub use ledger_replay::checkpoints::{Checkpoint, CheckpointReport, Finding, FindingKind};

use crate::AppError;

impl From<KeyError> for AppError {
    fn from(error: KeyError) -> Self {
        AppError::InvalidInput(error.0)
    }
}

/// A new key pair: (private key, public key), each 64 hex digits.
pub fn new_key_pair() -> Result<(String, String), AppError> {
    Ok(signed::new_key_pair()?)
}

/// Whether the text of a private key's file reads as a key.
pub fn check_private_key(private_key: &str) -> Result<(), AppError> {
    signed::signing_key_from_hex(private_key)?;
    Ok(())
}

/// A checkpoint of the log's head (its position and its last event's hash) signed at
/// `at` with the private key `private_key` (its file's text). An empty log has nothing
/// to sign.
pub async fn sign_head(store: &dyn EventStore, private_key: &str, at: DateTime<Utc>) -> Result<Checkpoint, AppError> {
    let key = signed::signing_key_from_hex(private_key)?;
    let head = store.head_position().await?;
    if head == 0 {
        return Err(AppError::InvalidInput(
            "the log is empty: there is nothing to checkpoint".to_owned(),
        ));
    }
    let event = event_at(store, head, head)
        .await?
        .ok_or_else(|| AppError::InvalidInput(format!("the event at the head ({head}) cannot be read")))?;
    Ok(Checkpoint::sign(&key, head, &event.hash, at))
}

/// Checks every checkpoint of a file (its text) against the public key (its file's
/// text) and the log.
pub async fn check(store: &dyn EventStore, file_text: &str, public_key: &str) -> Result<CheckpointReport, AppError> {
    let trusted = signed::verifying_key_from_hex(public_key)?;
    Ok(signed::check_checkpoints(store, file_text, &trusted).await?)
}
