//! Rows as both backends read them back (`recorded_at` as canonical text), the
//! integer conversions between the log's `u64` and SQL's `BIGINT`, and the reads
//! whose SQL is the same on every backend.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::records::{EventMetadata, OutcomeStatus, OutcomeTotals, RecordedEvent, StoreError, StoredOutcome, StreamId};

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

/// A stream read back must be 1, 2, 3, … with no hole.
pub(crate) fn check_stream_sequences(stream: &StreamId, events: &[RecordedEvent]) -> Result<(), StoreError> {
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

/// An `events` row as read by either backend (`recorded_at` as canonical text).
pub(crate) fn event_from_row<R>(row: &R) -> Result<RecordedEvent, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let payload_text: String = row.try_get("payload")?;
    let payload =
        serde_json::from_str(&payload_text).map_err(|e| StoreError::Corrupt(format!("payload is not JSON: {e}")))?;
    let version: i64 = row.try_get("event_version")?;
    Ok(RecordedEvent {
        global_position: to_u64(row.try_get("global_position")?, "global_position")?,
        stream: StreamId::new(
            row.try_get::<String, _>("aggregate_type")?,
            row.try_get::<String, _>("aggregate_id")?,
        ),
        sequence: to_u64(row.try_get("sequence")?, "sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("event_version {version}")))?,
        payload,
        metadata: EventMetadata {
            command_id: row.try_get("command_id")?,
            correlation_id: row.try_get("correlation_id")?,
            causation_id: row.try_get("causation_id")?,
            actor: row.try_get("actor")?,
            recorded_at: parse_time(&row.try_get::<String, _>("recorded_at")?)?,
            business_date: row
                .try_get::<Option<String>, _>("business_date")?
                .map(|text| parse_date(&text))
                .transpose()?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
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
