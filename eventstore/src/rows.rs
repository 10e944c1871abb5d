//! Rows as both backends read them back (`recorded_at` as canonical text), the
//! integer conversions between the log's `u64` and SQL's `BIGINT`, and the reads
//! whose SQL is the same on every backend.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::chain::payload_bytes_of_text;
use crate::records::{
    EventMetadata, OutcomeStatus, OutcomeTotals, RawEvent, RecordedEvent, StoreError, StoredOutcome, StreamId,
    UnreadableEvent,
};

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

pub(crate) fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::LimitExceeded {
        what: "a position or sequence",
        limit: i64::MAX as usize,
    })
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("recorded_at {text:?}: {e}")))
}

pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("business_date {text:?}: {e}")))
}

/// Events read back, every one decoded.
pub(crate) fn all_decoded(rows: Vec<Result<RawEvent, UnreadableEvent>>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.into_iter().map(decoded).collect()
}

/// Events read back to be decoded by their reader, every row readable.
pub(crate) fn all_readable(rows: Vec<Result<RawEvent, UnreadableEvent>>) -> Result<Vec<RawEvent>, StoreError> {
    rows.into_iter()
        .map(|row| row.map_err(|unreadable| broken_row(unreadable.global_position, &unreadable.reason)))
        .collect()
}

/// A stream read back, every event decoded; its sequences must be 1, 2, 3, … with no hole.
pub(crate) fn decoded_stream(
    stream: &StreamId,
    rows: impl Iterator<Item = Result<Result<RawEvent, UnreadableEvent>, StoreError>>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let events = rows.map(|row| decoded(row?)).collect::<Result<Vec<_>, _>>()?;
    check_stream_sequences(stream, &events)?;
    Ok(events)
}

/// A stream read back must be 1, 2, 3, … with no hole.
fn check_stream_sequences(stream: &StreamId, events: &[RecordedEvent]) -> Result<(), StoreError> {
    for (index, event) in events.iter().enumerate() {
        if event.sequence != index as u64 + 1 {
            return Err(StoreError::Corrupt(format!(
                "stream {stream} has sequence {} at index {index}: a gap",
                event.sequence
            )));
        }
    }
    Ok(())
}

/// An event read back for a reader that needs it decoded (`read_after`,
/// `load_stream`): a row that does not read or decode fails the read, naming its
/// position. `verify` takes the rows as they are instead (`raw_event_from_row`).
fn decoded(row: Result<RawEvent, UnreadableEvent>) -> Result<RecordedEvent, StoreError> {
    match row {
        Ok(raw) => {
            let position = raw.global_position;
            raw.into_recorded().map_err(|reason| broken_row(position, &reason))
        }
        Err(unreadable) => Err(broken_row(unreadable.global_position, &unreadable.reason)),
    }
}

fn broken_row(position: u64, reason: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the event at position {position} does not read ({reason}); `ledger verify` names every broken event"
    ))
}

/// What to do with the payload bytes a backend gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadForm {
    /// Keep them: SQLite's stored bytes, which are the bytes hashed; or bytes that
    /// are only to be decoded.
    AsStored,
    /// Put the value in canonical form again, for the hash: the server's own spelling
    /// of the value it holds (PostgreSQL's JSONB as text).
    Respelled,
}

/// The columns of one row as a driver hands them over, each value read or its problem
/// said: the one mapping of an `events` row ([`raw_event_of`]) serves every driver.
pub(crate) trait RowColumns {
    fn int(&self, name: &str) -> Result<i64, String>;
    fn bytes(&self, name: &str) -> Result<Vec<u8>, String>;
    fn text(&self, name: &str) -> Result<String, String>;
    fn optional_text(&self, name: &str) -> Result<Option<String>, String>;
}

/// An sqlx row's columns.
pub(crate) struct SqlxColumns<'r, R>(&'r R);

impl<R> RowColumns for SqlxColumns<'_, R>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, name: &str) -> Result<i64, String> {
        self.0.try_get(name).map_err(|e| e.to_string())
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>, String> {
        self.0.try_get(name).map_err(|e| e.to_string())
    }

    fn text(&self, name: &str) -> Result<String, String> {
        self.0.try_get(name).map_err(|e| e.to_string())
    }

    fn optional_text(&self, name: &str) -> Result<Option<String>, String> {
        self.0.try_get(name).map_err(|e| e.to_string())
    }
}

/// An `events` row as read through sqlx: see [`raw_event_of`].
pub(crate) fn raw_event_from_row<R>(row: &R, form: PayloadForm) -> Result<Result<RawEvent, UnreadableEvent>, StoreError>
where
    for<'r> SqlxColumns<'r, R>: RowColumns,
{
    raw_event_of(&SqlxColumns(row), form)
}

/// An `events` row as either backend reads it: `payload`, `prev_hash` and `hash` as
/// bytes, `recorded_at` as canonical text. Only a position that cannot be read fails
/// the read; any other column that does not read is that row's problem.
pub(crate) fn raw_event_of(
    row: &impl RowColumns,
    form: PayloadForm,
) -> Result<Result<RawEvent, UnreadableEvent>, StoreError> {
    let position = row
        .int("global_position")
        .map_err(|e| StoreError::Corrupt(format!("column global_position cannot be read: {e}")))?;
    let global_position = to_u64(position, "global_position")?;
    let bytes = |name: &str| {
        row.bytes(name)
            .map_err(|e| format!("column {name} cannot be read: {e}"))
    };
    let text = |name: &str| row.text(name).map_err(|e| format!("column {name} cannot be read: {e}"));
    // A hash is hex: bytes that are not UTF-8 only ever fail to match.
    let lossy = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    let hash = bytes("hash").map(lossy);
    let read = || -> Result<RawEvent, String> {
        let version: i64 = row.int("event_version")?;
        let payload = bytes("payload")?;
        Ok(RawEvent {
            global_position,
            stream: StreamId::new(text("aggregate_type")?, text("aggregate_id")?),
            sequence: to_u64(row.int("sequence")?, "sequence").map_err(|e| e.to_string())?,
            event_type: text("event_type")?,
            event_version: u32::try_from(version).map_err(|_| format!("event_version {version} is out of range"))?,
            payload: match (form, std::str::from_utf8(&payload)) {
                (PayloadForm::Respelled, Ok(respelled)) => payload_bytes_of_text(respelled),
                _ => payload,
            },
            metadata: EventMetadata {
                command_id: text("command_id")?,
                correlation_id: text("correlation_id")?,
                causation_id: text("causation_id")?,
                actor: text("actor")?,
                recorded_at: parse_time(&text("recorded_at")?).map_err(|e| e.to_string())?,
                business_date: row
                    .optional_text("business_date")
                    .map_err(|e| format!("column business_date cannot be read: {e}"))?
                    .map(|date| parse_date(&date))
                    .transpose()
                    .map_err(|e| e.to_string())?,
            },
            prev_hash: bytes("prev_hash").map(lossy)?,
            hash: hash.clone()?,
        })
    };
    Ok(read().map_err(|reason| UnreadableEvent {
        global_position,
        hash: hash.clone().unwrap_or_default(),
        reason,
    }))
}

/// A `command_outcomes` row as read by either backend (`recorded_at` as canonical text).
pub(crate) fn outcome_from_row<R>(row: &R) -> Result<StoredOutcome, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    let status =
        OutcomeStatus::from_str(&status).map_err(|_| StoreError::Corrupt(format!("outcome status {status:?}")))?;
    let position = |name: &str| -> Result<Option<u64>, StoreError> {
        row.try_get::<Option<i64>, _>(name)?
            .map(|p| to_u64(p, "position"))
            .transpose()
    };
    Ok(StoredOutcome {
        command_id: row.try_get("command_id")?,
        status,
        code: row.try_get("code")?,
        message: row.try_get("message")?,
        account_id: row.try_get("account_id")?,
        event_count: to_u64(row.try_get("event_count")?, "event_count")?,
        first_position: position("first_position")?,
        last_position: position("last_position")?,
        recorded_at: parse_time(&row.try_get::<String, _>("recorded_at")?)?,
        request_sha256: row.try_get("request_sha256")?,
    })
}

/// The highest position written; the same SQL on every backend.
pub(crate) async fn head_position_of<DB>(pool: &sqlx::Pool<DB>) -> Result<u64, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let row = sqlx::query("SELECT COALESCE(MAX(global_position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    to_u64(row.try_get::<i64, _>(0)?, "global_position")
}

/// Sums over the idempotency records; the same SQL on every backend.
pub(crate) async fn outcome_totals_of<DB>(pool: &sqlx::Pool<DB>) -> Result<OutcomeTotals, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let row = sqlx::query(
        "SELECT COUNT(*), CAST(COALESCE(SUM(event_count), 0) AS BIGINT), \
         CAST(COALESCE(MAX(last_position), 0) AS BIGINT) FROM command_outcomes",
    )
    .fetch_one(pool)
    .await?;
    Ok(OutcomeTotals {
        commands: to_u64(row.try_get::<i64, _>(0)?, "count")?,
        events_claimed: to_u64(row.try_get::<i64, _>(1)?, "event_count")?,
        highest_position: to_u64(row.try_get::<i64, _>(2)?, "last_position")?,
    })
}
