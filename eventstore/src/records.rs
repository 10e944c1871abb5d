//! What the log holds and answers: streams, events, command outcomes, and the
//! errors of the store. Plain data, the same on every backend.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::chain::{canonical_json, ChainedFields};
use crate::store::MAX_APPEND_LOCK_WAIT_MS;

/// One aggregate's stream of events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    pub aggregate_type: String,
    pub aggregate_id: String,
}

impl StreamId {
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.aggregate_type, self.aggregate_id)
    }
}

/// Who asked for a command and why; shared by every event the command wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The idempotency key of the command that wrote the event.
    pub command_id: String,
    /// Groups the commands of one business flow (a file, a session).
    pub correlation_id: String,
    /// What caused the command: the command itself, or the command whose process sent it.
    pub causation_id: String,
    /// Who sent it: `cli:exec`, `demo`, a user or a system.
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
    /// The trade date the command's movements belong to, fixed when it was
    /// decided (docs/events.md, "Business dates"). `None` in a log written before
    /// business dates were stored, and for commands decided before the ledger
    /// knew any trade date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_date: Option<NaiveDate>,
}

/// An event to append; the store assigns its sequence and global position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_type: String,
    pub event_version: u32,
    pub payload: serde_json::Value,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub global_position: u64,
    pub stream: StreamId,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: u32,
    pub payload: serde_json::Value,
    pub metadata: EventMetadata,
    /// Hash of the event before this one in global order (see `chain`).
    pub prev_hash: String,
    /// SHA-256 of this event's canonical bytes, lower-case hex.
    pub hash: String,
}

impl RecordedEvent {
    /// The hash of this event's own fields (its payload in canonical form), which its
    /// `hash` must equal: what an import checks of every event it is given.
    pub fn hash_of_fields(&self) -> String {
        let payload = canonical_json(&self.payload);
        ChainedFields {
            global_position: self.global_position,
            stream: &self.stream,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: self.event_version,
            payload: payload.as_bytes(),
            metadata: &self.metadata,
            prev_hash: &self.prev_hash,
        }
        .hash()
    }
}

/// An event as stored, its payload still the bytes the hash covers: what `verify`
/// reads, so that a payload that no longer decodes (not JSON, not UTF-8, cut short,
/// empty) is a broken event at its position rather than a read that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub global_position: u64,
    pub stream: StreamId,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: u32,
    /// SQLite: the stored bytes as they are. PostgreSQL, which keeps JSONB and
    /// spells it its own way: the value it holds, in canonical form (`chain`).
    pub payload: Vec<u8>,
    pub metadata: EventMetadata,
    pub prev_hash: String,
    pub hash: String,
}

impl RawEvent {
    /// The fields the hash covers, the payload as its bytes.
    pub fn chained_fields(&self) -> ChainedFields<'_> {
        ChainedFields {
            global_position: self.global_position,
            stream: &self.stream,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: self.event_version,
            payload: &self.payload,
            metadata: &self.metadata,
            prev_hash: &self.prev_hash,
        }
    }

    /// The event with its payload decoded as JSON, or why the bytes are not JSON.
    pub fn into_recorded(self) -> Result<RecordedEvent, String> {
        let payload = serde_json::from_slice(&self.payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        Ok(RecordedEvent {
            global_position: self.global_position,
            stream: self.stream,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload,
            metadata: self.metadata,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

impl From<RecordedEvent> for RawEvent {
    /// A decoded event back to the bytes its hash covers.
    fn from(event: RecordedEvent) -> Self {
        RawEvent {
            global_position: event.global_position,
            payload: canonical_json(&event.payload).into_bytes(),
            stream: event.stream,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            metadata: event.metadata,
            prev_hash: event.prev_hash,
            hash: event.hash,
        }
    }
}

/// A stored row one of whose columns does not read as its type (text that is not
/// UTF-8, a time that is not a time): `verify` reports it at its position and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableEvent {
    pub global_position: u64,
    /// The stored hash as far as it reads (bytes that are not UTF-8 replaced), so the
    /// next event's link can still be checked against it.
    pub hash: String,
    /// Which column, and why.
    pub reason: String,
}

/// Events for one stream, valid only if the stream is still at `expected_sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    pub stream: StreamId,
    /// The sequence of the stream's last event when the command was decided (0: new stream).
    pub expected_sequence: u64,
    pub events: Vec<NewEvent>,
}

/// The `status` column of `command_outcomes`: the strings are the stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OutcomeStatus {
    Accepted,
    Rejected,
}

impl OutcomeStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A decided command: its outcome and, if accepted, its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub metadata: EventMetadata,
    pub status: OutcomeStatus,
    /// The refusal code, for a rejected command.
    pub code: Option<String>,
    pub message: Option<String>,
    /// The account the command named, if any: kept with the outcome, since a refusal
    /// writes no event and compliance still asks who was refused.
    pub account_id: Option<String>,
    /// In order; a stream may appear more than once (a later append expects the earlier one's end).
    pub appends: Vec<StreamAppend>,
    /// The digest of the request body that carried the command, if one did: stored with
    /// its outcome, in the same transaction, so a command id is bound to that body
    /// exactly when its outcome is recorded.
    pub request_sha256: Option<String>,
}

/// The first outcome of a command id, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutcome {
    pub command_id: String,
    pub status: OutcomeStatus,
    pub code: Option<String>,
    pub message: Option<String>,
    pub account_id: Option<String>,
    pub event_count: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 (hex) of the canonical request body the command was decided for (the
    /// HTTP API's idempotency key binding); `None` for a command-file line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sha256: Option<String>,
}

/// Sums over `command_outcomes`: every accepted command's events must be in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutcomeTotals {
    pub commands: u64,
    pub events_claimed: u64,
    pub highest_position: u64,
}

/// What went wrong while connecting to a database server: what a program matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Nothing listens at the host and port (or the host name does not resolve).
    Refused,
    /// The server did not answer in time.
    TimedOut,
    /// The server has no database of that name.
    NoSuchDatabase,
    /// The server refused the user or the password.
    Authentication,
    /// The TLS handshake failed, or the server does not offer TLS when `sslmode=require` asks for it.
    Tls,
    /// Anything else the server or the network said.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream} is at sequence {actual}, expected {expected}: another writer got there first")]
    Conflict {
        stream: StreamId,
        expected: u64,
        actual: u64,
    },
    #[error("command id {0} already has an outcome")]
    DuplicateCommand(String),
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded { what: &'static str, limit: usize },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database URL {url:?} is not supported: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    /// The server could not be reached or would not let us in; `failure` says which, `reason` in a sentence.
    #[error("{reason}")]
    Unreachable { failure: ConnectFailure, reason: String },
    /// A command that must not create a ledger named a SQLite file that is not there.
    /// (The URL is named by whoever shows this, without its password.)
    #[error(
        "the SQLite file does not exist, so it holds no ledger; check --db for a typo, \
         or create a ledger there with `ledger init`"
    )]
    NoSuchFile,
    /// A SQLite file to be created in a directory that is not there (the URL is named by whoever shows this).
    #[error("the directory the SQLite file would be created in does not exist; create it first")]
    NoSuchDirectory,
    /// A command that must not create a ledger named a database without the ledger's tables.
    #[error(
        "the database holds no ledger (no `events` table{place}); check --db for a typo, \
         or create a ledger there with `ledger init`"
    )]
    NoLedger { place: String },
    /// A PostgreSQL URL without a database name would put the ledger into the server's default database.
    #[error(
        "the PostgreSQL URL names no database; add one, as in postgres://USER@HOST:PORT/DATABASE \
         (the password belongs in PGPASSWORD or ~/.pgpass)"
    )]
    NoDatabaseName,
    #[error(
        "events from position {position} are committed but held back for {waited_ms} ms behind an older \
         transaction still open on the database server (see pg_stat_activity); close it and retry"
    )]
    HeldBack { position: u64, waited_ms: u64 },
    /// The connection to the database server was lost mid-work: the server shut down or
    /// restarted, an operator ended the session, or the network dropped. Nothing after the
    /// last committed transaction was written.
    #[error("the connection to the database was lost ({0})")]
    ConnectionLost(DbFailure),
    /// Another writer held the database's write lock (SQLite's, or PostgreSQL's append
    /// lock) for all of `waited_ms`; nothing was written.
    #[error("waited {waited_ms} ms for the database's write lock, which another writer held all that time")]
    LockTimeout { waited_ms: u64 },
    #[error("database error: {0}")]
    Database(DbFailure),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    /// Sorts a driver error by what the caller can do about it: a lost connection and a
    /// lock wait that ran out are said as such (and a rerun is safe after either).
    fn from(error: sqlx::Error) -> Self {
        let failure = DbFailure(error);
        if failure.is_lock_timeout() {
            StoreError::LockTimeout {
                waited_ms: MAX_APPEND_LOCK_WAIT_MS,
            }
        } else if failure.is_connection_lost() {
            StoreError::ConnectionLost(failure)
        } else {
            StoreError::Database(failure)
        }
    }
}

/// A driver error as the ledger shows it: the server's own message with its code
/// (PostgreSQL's SQLSTATE, SQLite's result code), without the driver's prefix or the
/// line of the server's source file that raised it (PostgreSQL's "at line 3211", easily
/// read as a line of a command file). Its `Display` says everything: it has no `source`.
#[derive(Debug)]
pub struct DbFailure(sqlx::Error);

/// SQLSTATEs that mean the session is gone: connection exceptions (class 08), and the
/// server shutting down, crashing, starting up, or ending the session (57P01–57P05).
const SESSION_GONE_SQLSTATES: [&str; 5] = ["57P01", "57P02", "57P03", "57P04", "57P05"];
/// PostgreSQL's `lock_not_available`: `lock_timeout` ran out.
const LOCK_NOT_AVAILABLE_SQLSTATE: &str = "55P03";
/// SQLite's `SQLITE_BUSY`: its busy timeout ran out waiting for the write lock.
const SQLITE_BUSY: &str = "5";

impl DbFailure {
    /// The server's error code: SQLSTATE on PostgreSQL, the extended result code on SQLite.
    pub fn code(&self) -> Option<String> {
        match &self.0 {
            sqlx::Error::Database(answer) => answer.code().map(|code| code.into_owned()),
            _ => None,
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(&self.0, sqlx::Error::Database(answer) if answer.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some())
    }

    fn is_connection_lost(&self) -> bool {
        match &self.0 {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                true
            }
            sqlx::Error::Database(_) if self.is_postgres() => self
                .code()
                .is_some_and(|code| code.starts_with("08") || SESSION_GONE_SQLSTATES.contains(&code.as_str())),
            _ => false,
        }
    }

    fn is_lock_timeout(&self) -> bool {
        let code = self.code();
        match code.as_deref() {
            Some(LOCK_NOT_AVAILABLE_SQLSTATE) => self.is_postgres(),
            Some(SQLITE_BUSY) => !self.is_postgres(),
            _ => false,
        }
    }
}

impl std::fmt::Display for DbFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            sqlx::Error::Database(answer) => {
                let label = if self.is_postgres() {
                    "PostgreSQL said"
                } else {
                    "SQLite said"
                };
                let code_name = if self.is_postgres() { "SQLSTATE" } else { "code" };
                match answer.code() {
                    Some(code) => write!(f, "{label}: {}, {code_name} {code}", answer.message()),
                    None => write!(f, "{label}: {}", answer.message()),
                }
            }
            sqlx::Error::Io(io) => write!(f, "{io}"),
            sqlx::Error::PoolTimedOut => write!(f, "no connection could be opened or freed in time"),
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for DbFailure {}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::OutcomeStatus;

    #[test]
    fn outcome_statuses_have_their_stored_strings() {
        for (status, text) in [
            (OutcomeStatus::Accepted, "accepted"),
            (OutcomeStatus::Rejected, "rejected"),
        ] {
            assert_eq!(status.as_str(), text);
            assert_eq!(OutcomeStatus::from_str(text).ok(), Some(status));
            assert_eq!(serde_json::to_value(status).ok(), Some(serde_json::json!(text)));
        }
        assert!(OutcomeStatus::from_str("Accepted").is_err(), "stored strings only");
    }
}
