//! Signed checkpoints: a position of the log and the hash of its event, signed with an
//! Ed25519 key and kept apart from the log (a file the auditor holds). The hash chain
//! shows that no event was changed *unless the whole chain from it on was recomputed*;
//! a checkpoint signed before such a rewrite still names the old hash at its position,
//! so `verify --checkpoints` catches what the chain alone cannot.
//!
//! What is signed is fixed text, so any tool can check it: the lines
//! `ledger-checkpoint-v1`, the position, the hash, the signing time
//! (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) and the public key (hex), each followed by `\n`.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use ledger_eventstore::chain::format_recorded_at;
use ledger_eventstore::{event_at, EventStore, StoreError};
use serde::{Deserialize, Serialize};

/// The first line of the signed text, and the `version` of a checkpoint.
pub const SIGNED_TEXT_TAG: &str = "ledger-checkpoint-v1";
pub const CHECKPOINT_VERSION: u32 = 1;
/// Most checkpoints one check reads: a file longer than this is refused, not half read.
pub const MAX_CHECKPOINTS: usize = 1_000_000;

/// One signed checkpoint, a line of the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub version: u32,
    /// The global position checkpointed.
    pub position: u64,
    /// The `hash` of the event at `position`.
    pub hash: String,
    pub signed_at: String,
    /// The signer's public key, hex.
    pub key: String,
    /// The Ed25519 signature of the signed text, hex.
    pub signature: String,
}

/// A key that is not 32 bytes of hex, or a signature that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// A signing key from its file's text: 64 hex digits (the seed).
pub fn signing_key_from_hex(text: &str) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&key_bytes(text, "private key")?))
}

/// A public key from its file's text: 64 hex digits.
pub fn verifying_key_from_hex(text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&key_bytes(text, "public key")?)
        .map_err(|e| KeyError(format!("the public key is not a point of the curve: {e}")))
}

fn key_bytes(text: &str, what: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError(format!("the {what} is not hex")))?;
    bytes
        .try_into()
        .map_err(|_| KeyError(format!("the {what} is not 32 bytes (64 hex digits)")))
}

/// A new key pair from the operating system's random source: (private, public), hex.
pub fn new_key_pair() -> Result<(String, String), KeyError> {
    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError(format!("the operating system's random source failed: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((hex::encode(seed), hex::encode(key.verifying_key().to_bytes())))
}

/// The text a checkpoint's signature covers.
pub fn signed_text(position: u64, hash: &str, signed_at: &str, key: &str) -> String {
    format!("{SIGNED_TEXT_TAG}\n{position}\n{hash}\n{signed_at}\n{key}\n")
}

impl Checkpoint {
    /// Signs `position` and `hash` at `at` with `key`.
    pub fn sign(key: &SigningKey, position: u64, hash: &str, at: DateTime<Utc>) -> Self {
        let signed_at = format_recorded_at(&at);
        let public = hex::encode(key.verifying_key().to_bytes());
        let signature = key.sign(signed_text(position, hash, &signed_at, &public).as_bytes());
        Self {
            version: CHECKPOINT_VERSION,
            position,
            hash: hash.to_owned(),
            signed_at,
            key: public,
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Whether `trusted` made this checkpoint's signature over its fields.
    fn check_signature(&self, trusted: &VerifyingKey) -> Result<(), (FindingKind, String)> {
        if self.version != CHECKPOINT_VERSION {
            return Err((FindingKind::Unreadable, format!("version {} is not 1", self.version)));
        }
        if self.key != hex::encode(trusted.to_bytes()) {
            return Err((
                FindingKind::OtherKey,
                format!("signed by key {}, not the trusted key", self.key),
            ));
        }
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or((
                FindingKind::BadSignature,
                "the signature is not 64 bytes of hex".to_owned(),
            ))?;
        let text = signed_text(self.position, &self.hash, &self.signed_at, &self.key);
        trusted
            .verify(text.as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| {
                (
                    FindingKind::BadSignature,
                    "the signature does not match the checkpoint".to_owned(),
                )
            })
    }
}

/// What is wrong with one checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The line is not a checkpoint.
    Unreadable,
    /// Signed by another key than the one trusted.
    OtherKey,
    /// The signature does not cover these fields: the checkpoint was edited or forged.
    BadSignature,
    /// The log no longer reaches the checkpoint's position.
    PositionMissing,
    /// The event at the position has another hash: history was rewritten there or before.
    HashDiffers,
}

/// One checkpoint that does not hold, by its line in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub line: usize,
    pub position: Option<u64>,
    pub kind: FindingKind,
    pub detail: String,
}

/// What the checkpoints said of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    pub checked: usize,
    pub findings: Vec<Finding>,
}

/// Checks every line of a checkpoint file against `trusted` and the log.
pub async fn check_checkpoints(
    store: &dyn EventStore,
    file_text: &str,
    trusted: &VerifyingKey,
) -> Result<CheckpointReport, StoreError> {
    let lines: Vec<(usize, &str)> = (1..)
        .zip(file_text.lines())
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if lines.len() > MAX_CHECKPOINTS {
        return Err(StoreError::LimitExceeded {
            what: "checkpoints in one file",
            limit: MAX_CHECKPOINTS,
        });
    }
    let head = store.head_position().await?;
    let mut findings = Vec::new();
    for (line, text) in &lines {
        let finding = |position, (kind, detail)| Finding {
            line: *line,
            position,
            kind,
            detail,
        };
        let checkpoint: Checkpoint = match serde_json::from_str(text) {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                findings.push(finding(
                    None,
                    (FindingKind::Unreadable, format!("not a checkpoint: {e}")),
                ));
                continue;
            }
        };
        let position = Some(checkpoint.position);
        if let Err(problem) = checkpoint.check_signature(trusted) {
            findings.push(finding(position, problem));
            continue;
        }
        if let Some(problem) = against_log(store, &checkpoint, head).await? {
            findings.push(finding(position, problem));
        }
    }
    Ok(CheckpointReport {
        checked: lines.len(),
        findings,
    })
}

async fn against_log(
    store: &dyn EventStore,
    checkpoint: &Checkpoint,
    head: u64,
) -> Result<Option<(FindingKind, String)>, StoreError> {
    let position = checkpoint.position;
    Ok(match event_at(store, position, head).await? {
        Some(event) if event.hash == checkpoint.hash => None,
        Some(event) => Some((
            FindingKind::HashDiffers,
            format!(
                "the event at {position} has hash {}, but {} was signed there at {}: the history up to {position} was rewritten",
                event.hash, checkpoint.hash, checkpoint.signed_at
            ),
        )),
        None => Some((
            FindingKind::PositionMissing,
            format!(
                "the log ends at {head}: it no longer holds position {position}, signed {}",
                checkpoint.signed_at
            ),
        )),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_checkpoint_signed_checks_and_any_edit_breaks_it() {
        let (private, public) = new_key_pair().unwrap();
        let key = signing_key_from_hex(&private).unwrap();
        let trusted = verifying_key_from_hex(&public).unwrap();
        let at = Utc.with_ymd_and_hms(2024, 3, 4, 7, 0, 0).unwrap();
        let checkpoint = Checkpoint::sign(&key, 42, &"ab".repeat(32), at);
        assert_eq!(checkpoint.signed_at, "2024-03-04T07:00:00.000000Z");
        assert!(checkpoint.check_signature(&trusted).is_ok());
        let moved = Checkpoint {
            position: 43,
            ..checkpoint.clone()
        };
        assert_eq!(
            moved.check_signature(&trusted).unwrap_err().0,
            FindingKind::BadSignature
        );
        let (_, other_public) = new_key_pair().unwrap();
        let other = verifying_key_from_hex(&other_public).unwrap();
        assert_eq!(checkpoint.check_signature(&other).unwrap_err().0, FindingKind::OtherKey);
    }

    #[test]
    fn keys_must_be_32_bytes_of_hex() {
        assert!(signing_key_from_hex("zz").is_err());
        assert!(signing_key_from_hex(&"00".repeat(31)).is_err());
        assert!(signing_key_from_hex(&format!("{}\n", "11".repeat(32))).is_ok());
    }
}
