//! The one envelope every reader of the log gets, whatever the front end (`ledger events
//! --json`, `GET /v1/events`, the SSE stream, the NATS relay): a CloudEvents 1.0 event in
//! its JSON format, with the ledger's own fields as extension attributes (lower-case
//! letters only, as the specification asks). Every field the hash covers is in it, as it
//! was hashed, so an auditor rebuilds the canonical bytes from the envelope alone
//! (docs/events.md, "Rechecking the chain yourself").
//!
//! Nothing in it is random or read from a clock: `id` is the global position, so the
//! same log gives the same envelopes byte for byte on every read.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use ledger_eventstore::chain::format_recorded_at;
use ledger_eventstore::{EventMetadata, RecordedEvent, StreamId};
use serde::{Deserialize, Serialize};

/// The CloudEvents version of the envelope.
pub const SPEC_VERSION: &str = "1.0";
/// `datacontenttype`: the payload is a JSON object.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// `source` when `[events] source` is not set in ledger.toml.
pub const DEFAULT_SOURCE: &str = "/ledger";
/// The first segment of every `type`.
pub const TYPE_PREFIX: &str = "ledger";

/// One event of the log as a CloudEvent. The field order is the order printed.
#[derive(Debug, Clone, Serialize)]
pub struct CloudEvent<'a> {
    pub specversion: &'static str,
    /// The global position in decimal: with `source`, unique and stable forever.
    pub id: String,
    pub source: &'a str,
    /// `ledger.<aggregate type in lower case>.<event type>.v<event version>`,
    /// for example `ledger.account.FillBooked.v1`: the version the event is stored at,
    /// so an old log's `OrderPlaced` is `.v1` and `data` is its version 1 payload. The
    /// envelope is the log as stored (the hash covers it); readers in this code base
    /// upcast on decode, a consumer of the stream reads each version by its `type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The aggregate id: an account, an instrument code, a trade date.
    pub subject: &'a str,
    /// When the engine decided the event, `YYYY-MM-DDTHH:MM:SS.ffffffZ` as hashed.
    pub time: String,
    pub datacontenttype: &'static str,
    /// The payload, personal data masked for a reader who may not see it.
    pub data: Cow<'a, serde_json::Value>,
    /// The global position (a JSON integer): 1, 2, 3, … with no gap.
    pub position: u64,
    /// The aggregate's own sequence: 1, 2, 3, … within `aggregatetype`/`subject`.
    pub sequence: u64,
    /// The aggregate type as stored: `Account`, `Instrument`, `ClearingDay`.
    pub aggregatetype: &'a str,
    pub hash: &'a str,
    pub prevhash: &'a str,
    pub commandid: &'a str,
    pub correlationid: &'a str,
    pub causationid: &'a str,
    pub actor: &'a str,
    /// The trade date the event belongs to; absent for an event stored without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub businessdate: Option<NaiveDate>,
}

impl<'a> CloudEvent<'a> {
    /// The envelope of `event` from `source`, its payload as stored (never upcast).
    pub fn of(event: &'a RecordedEvent, source: &'a str) -> Self {
        Self::with_data(event, source, Cow::Borrowed(&event.payload))
    }

    /// The envelope of `event` with `data` in place of its payload (a masked one).
    pub fn with_data(event: &'a RecordedEvent, source: &'a str, data: Cow<'a, serde_json::Value>) -> Self {
        let metadata = &event.metadata;
        Self {
            specversion: SPEC_VERSION,
            id: event.global_position.to_string(),
            source,
            event_type: type_of(&event.stream.aggregate_type, &event.event_type, event.event_version),
            subject: &event.stream.aggregate_id,
            time: format_recorded_at(&metadata.recorded_at),
            datacontenttype: DATA_CONTENT_TYPE,
            data,
            position: event.global_position,
            sequence: event.sequence,
            aggregatetype: &event.stream.aggregate_type,
            hash: &event.hash,
            prevhash: &event.prev_hash,
            commandid: &metadata.command_id,
            correlationid: &metadata.correlation_id,
            causationid: &metadata.causation_id,
            actor: &metadata.actor,
            businessdate: metadata.business_date,
        }
    }
}

/// The CloudEvents `type` of an event: `ledger.account.FillBooked.v1`.
pub fn type_of(aggregate_type: &str, event_type: &str, event_version: u32) -> String {
    format!(
        "{TYPE_PREFIX}.{}.{event_type}.v{event_version}",
        aggregate_type.to_ascii_lowercase()
    )
}

/// An envelope read back (`ledger import`): every field the hash covers, owned.
#[derive(Debug, Deserialize)]
struct ReadEnvelope {
    #[serde(rename = "type")]
    event_type: String,
    subject: String,
    time: String,
    data: serde_json::Value,
    position: u64,
    sequence: u64,
    aggregatetype: String,
    hash: String,
    prevhash: String,
    commandid: String,
    correlationid: String,
    causationid: String,
    actor: String,
    #[serde(default)]
    businessdate: Option<NaiveDate>,
}

/// The event an envelope line stands for, as it was recorded; what does not read is
/// said in a sentence. Fields outside the hash (`id`, `source`, …) are not needed.
pub fn recorded_from_json(line: &str) -> Result<RecordedEvent, String> {
    let read: ReadEnvelope = serde_json::from_str(line).map_err(|e| format!("not an event envelope: {e}"))?;
    let (event_type, event_version) = read
        .event_type
        .strip_prefix(TYPE_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(_, rest)| rest.rsplit_once(".v"))
        .and_then(|(name, version)| Some((name.to_owned(), version.parse::<u32>().ok()?)))
        .ok_or_else(|| {
            format!(
                "type {:?} is not ledger.<aggregate>.<event>.v<version>",
                read.event_type
            )
        })?;
    let recorded_at = DateTime::parse_from_rfc3339(&read.time)
        .map_err(|e| format!("time {:?} is not an RFC 3339 instant: {e}", read.time))?
        .with_timezone(&Utc);
    Ok(RecordedEvent {
        global_position: read.position,
        stream: StreamId::new(read.aggregatetype, read.subject),
        sequence: read.sequence,
        event_type,
        event_version,
        payload: read.data,
        metadata: EventMetadata {
            command_id: read.commandid,
            correlation_id: read.correlationid,
            causation_id: read.causationid,
            actor: read.actor,
            recorded_at,
            business_date: read.businessdate,
        },
        prev_hash: read.prevhash,
        hash: read.hash,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn fill() -> RecordedEvent {
        RecordedEvent {
            global_position: 42,
            stream: StreamId::new("Account", "A0001"),
            sequence: 7,
            event_type: "FillBooked".to_owned(),
            event_version: 1,
            payload: serde_json::json!({"order_id": "O1", "quantity": 100}),
            metadata: EventMetadata {
                command_id: "C9".to_owned(),
                correlation_id: "C8".to_owned(),
                causation_id: "C7".to_owned(),
                actor: "cli:exec".to_owned(),
                recorded_at: Utc.with_ymd_and_hms(2024, 3, 4, 9, 30, 0).unwrap(),
                business_date: NaiveDate::from_ymd_opt(2024, 3, 4),
            },
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
        }
    }

    #[test]
    fn the_envelope_is_the_documented_cloudevent() {
        let event = fill();
        let json = serde_json::to_string(&CloudEvent::of(&event, "/ledger")).unwrap();
        assert_eq!(
            json,
            format!(
                "{{\"specversion\":\"1.0\",\"id\":\"42\",\"source\":\"/ledger\",\
                 \"type\":\"ledger.account.FillBooked.v1\",\"subject\":\"A0001\",\
                 \"time\":\"2024-03-04T09:30:00.000000Z\",\"datacontenttype\":\"application/json\",\
                 \"data\":{{\"order_id\":\"O1\",\"quantity\":100}},\"position\":42,\"sequence\":7,\
                 \"aggregatetype\":\"Account\",\"hash\":\"{b}\",\"prevhash\":\"{a}\",\
                 \"commandid\":\"C9\",\"correlationid\":\"C8\",\"causationid\":\"C7\",\
                 \"actor\":\"cli:exec\",\"businessdate\":\"2024-03-04\"}}",
                a = "a".repeat(64),
                b = "b".repeat(64)
            )
        );
    }

    #[test]
    fn an_event_without_a_business_date_has_no_businessdate() {
        let mut event = fill();
        event.metadata.business_date = None;
        let value = serde_json::to_value(CloudEvent::of(&event, "/ledger")).unwrap();
        assert!(value.get("businessdate").is_none());
    }

    #[test]
    fn an_envelope_reads_back_as_the_event_it_was_made_of() {
        let event = fill();
        let line = serde_json::to_string(&CloudEvent::of(&event, "/ledger")).unwrap();
        assert_eq!(recorded_from_json(&line).unwrap(), event);
        let mut without_date = fill();
        without_date.metadata.business_date = None;
        let line = serde_json::to_string(&CloudEvent::of(&without_date, "/ledger")).unwrap();
        assert_eq!(recorded_from_json(&line).unwrap(), without_date);
        assert!(recorded_from_json("{}").unwrap_err().contains("not an event envelope"));
        let bad_type = line.replace("ledger.account.FillBooked.v1", "ledger.account.FillBooked");
        assert!(recorded_from_json(&bad_type).unwrap_err().contains("is not ledger."));
    }

    #[test]
    fn the_type_names_the_aggregate_in_lower_case() {
        assert_eq!(
            type_of("ClearingDay", "DayClosed", 1),
            "ledger.clearingday.DayClosed.v1"
        );
    }
}
