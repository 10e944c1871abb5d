//! Reading the SQLite log in pages, on connections of its own (rusqlite).
//!
//! Why not sqlx, which does everything else here: for every row it returns, sqlx's
//! worker thread copies each of its values (`sqlite3_value_dup`) and sends the row
//! through a channel to the task, which looks each column up and copies it again. On
//! the demo's log that was 8–29 µs an event, where SQLite itself steps through the
//! same rows at 1.6 µs (docs/performance.md). Replays, rebuilds, `verify` and every
//! follower read the log this way, so it is the one read done on a plain connection
//! that steps a prepared statement on a blocking thread. rusqlite links the same
//! bundled SQLite as sqlx (`libsqlite3-sys`), so both share one library and its
//! locks. Writes stay with sqlx: this connection is `query_only`.
//!
//! An in-memory database lives in sqlx's one connection, out of reach here: a store
//! on one has no reader and reads through sqlx.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::records::{RawEvent, StoreError, UnreadableEvent};
use crate::rows::{raw_event_of, to_i64, PayloadForm, RowColumns};
use crate::store::{MAX_APPEND_LOCK_WAIT_MS, MAX_READ_EVENTS};

/// Most reads of the log at once; a further one waits for a connection. Each holds
/// one connection and its page cache.
const MAX_LOG_READERS: usize = 8;
/// A reader's page cache, in KiB: a page of the log is read once, in order, so a
/// small cache serves.
const READER_PAGE_CACHE_KIB: u32 = 8_192;

/// The connections that read the log, opened on demand and kept for the next read.
pub(crate) struct LogReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl LogReader {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(MAX_LOG_READERS)),
        }
    }

    /// Up to `limit` events after `after_position`, in order; each row that does not
    /// read is given as its problem (as `raw_event_of` says).
    pub(crate) async fn read_after(
        self: &Arc<Self>,
        sql: String,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| reader_stopped("the log's readers are closed".into()))?;
        let reader = Arc::clone(self);
        // The permit goes with the blocking read, not with this future: a caller that
        // stops waiting leaves the read to finish, and its connection still counted.
        tokio::task::spawn_blocking(move || {
            let events = reader.read_blocking(&sql, after_position, limit);
            drop(permit);
            events
        })
        .await
        .map_err(|e| reader_stopped(format!("a read of the log stopped: {e}")))?
    }

    fn read_blocking(
        &self,
        sql: &str,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
        let connection = match self.take_idle() {
            Some(connection) => connection,
            None => self.open()?,
        };
        let events = read_page(&connection, sql, after_position, limit)?;
        // A connection whose read failed is dropped, not kept: its state is unknown.
        self.keep_idle(connection);
        Ok(events)
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().ok()?.pop()
    }

    fn keep_idle(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            assert!(idle.len() < MAX_LOG_READERS, "no more connections than permits");
            idle.push(connection);
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        // Never create: the file is sqlx's, already opened and migrated.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags).map_err(reader_error)?;
        connection
            .busy_timeout(Duration::from_millis(MAX_APPEND_LOCK_WAIT_MS))
            .map_err(reader_error)?;
        connection
            .pragma_update(None, "query_only", true)
            .map_err(reader_error)?;
        connection
            .pragma_update(None, "cache_size", -i64::from(READER_PAGE_CACHE_KIB))
            .map_err(reader_error)?;
        Ok(connection)
    }
}

fn read_page(
    connection: &Connection,
    sql: &str,
    after_position: u64,
    limit: usize,
) -> Result<Vec<Result<RawEvent, UnreadableEvent>>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(reader_error)?;
    let mut rows = statement
        .query((to_i64(after_position)?, to_i64(limit as u64)?))
        .map_err(reader_error)?;
    let mut events = Vec::with_capacity(limit.min(MAX_READ_EVENTS));
    while let Some(row) = rows.next().map_err(reader_error)? {
        // The bytes stored are the bytes hashed.
        events.push(raw_event_of(&Columns(row), PayloadForm::AsStored)?);
    }
    assert!(events.len() <= limit);
    Ok(events)
}

/// A failure of the reader's connection, handed to the store's errors as sqlx's own
/// SQLite errors are: SQLite's message and extended result code, so a busy timeout is
/// `LockTimeout` and anything else `Database` with its code, on both paths alike.
fn reader_error(error: rusqlite::Error) -> StoreError {
    let failure = match &error {
        rusqlite::Error::SqliteFailure(cause, message) => ReaderFailure {
            message: message.clone().unwrap_or_else(|| cause.to_string()),
            code: Some(cause.extended_code.to_string()),
        },
        other => ReaderFailure {
            message: other.to_string(),
            code: None,
        },
    };
    StoreError::from(sqlx::Error::Database(Box::new(failure)))
}

/// A read that ended without SQLite's word (its thread panicked, or the runtime is
/// shutting down): a database failure, not a fault of the data.
fn reader_stopped(message: String) -> StoreError {
    StoreError::from(sqlx::Error::Database(Box::new(ReaderFailure { message, code: None })))
}

/// What SQLite said to the reader, in the form sqlx gives a database's answer.
#[derive(Debug)]
struct ReaderFailure {
    message: String,
    code: Option<String>,
}

impl std::fmt::Display for ReaderFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReaderFailure {}

impl sqlx::error::DatabaseError for ReaderFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.as_deref().map(Cow::Borrowed)
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

/// A rusqlite row's columns, by name.
struct Columns<'r, 's>(&'r rusqlite::Row<'s>);

impl RowColumns for Columns<'_, '_> {
    fn int(&self, name: &str) -> Result<i64, String> {
        self.0.get(name).map_err(|e| e.to_string())
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>, String> {
        let value = self.0.get_ref(name).map_err(|e| e.to_string())?;
        value.as_bytes().map(<[u8]>::to_vec).map_err(|e| e.to_string())
    }

    fn text(&self, name: &str) -> Result<String, String> {
        self.0.get(name).map_err(|e| e.to_string())
    }

    fn optional_text(&self, name: &str) -> Result<Option<String>, String> {
        self.0.get(name).map_err(|e| e.to_string())
    }
}
