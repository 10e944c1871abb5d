//! The ledger's event log.
//!
//! The store knows the envelope (stream, sequence, global position, type,
//! version, metadata) and nothing of brokerage rules: payloads are JSON.
//! Backends implement [`EventStore`]: embedded SQLite (the default) and PostgreSQL.
//!
//! Modules by role:
//! - `records`: the data the log holds and answers, and [`StoreError`];
//! - `store`: the [`EventStore`] trait, its `MAX_*` limits, [`read_towards`], [`event_at`], [`hash_at`] and
//!   [`read_raw_towards`] (verify's: rows as stored), [`read_encoded_towards`] (replays' and rebuilds': payloads
//!   left as bytes for [`codec::decode_raw`]);
//! - [`appended`]: word that the log has grown, for followers at its head;
//! - [`import`]: events recorded elsewhere, written with their positions and hashes, checked;
//! - `plan`: append planning (conflicts, duplicates, sequences, positions, hashes);
//! - `append`: the one append algorithm, generic over a backend's SQL primitives;
//! - `database`: pools, migrations and [`commit_or_roll_back`];
//! - `rows`: rows as read back, and the reads both backends share;
//! - `connect`: the backend a URL names, [`redact_url`];
//! - `sqlite`, `postgres`: the backends' SQL and what is truly theirs;
//! - [`chain`]: the hash chain; [`codec`]: domain events to and from the envelope
//!   (`tagged` reads an event from its type name and payload in one pass);
//! - [`versions`]: the version each event type is written at, and the upcasters that read
//!   an older one as it (in memory: stored events are never rewritten).

mod append;
pub mod appended;
pub mod chain;
pub mod codec;
mod connect;
mod database;
pub mod import;
mod plan;
mod postgres;
mod records;
mod rows;
mod sqlite;
mod sqlite_reader;
mod store;
mod tagged;
pub mod versions;

pub use connect::{connect, open, redact_url, OpenMode, DEFAULT_DATABASE_URL};
pub use database::{commit_or_roll_back, Database};
pub use postgres::PostgresEventStore;
/// Key of PostgreSQL's advisory lock that serialises appends: who holds it shows in `pg_locks`.
pub use postgres::APPEND_LOCK_KEY as POSTGRES_APPEND_LOCK_KEY;
pub use records::{
    CommandRecord, ConnectFailure, DbFailure, EventMetadata, NewEvent, OutcomeStatus, OutcomeTotals, RawEvent,
    RecordedEvent, StoreError, StoredOutcome, StreamAppend, StreamId, UnreadableEvent,
};
pub use sqlite::SqliteEventStore;
pub use store::{
    event_at, hash_at, read_encoded_towards, read_raw_towards, read_towards, AppendLock, Atomicity, EventStore,
    MAX_APPEND_COMMANDS, MAX_APPEND_LOCK_WAIT_MS, MAX_HELD_BACK_MS, MAX_OUTCOME_LOOKUPS, MAX_READ_EVENTS,
    MAX_REFUSAL_READS,
};
