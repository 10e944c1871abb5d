//! The hash chain that makes the log tamper-evident.
//!
//! Every event stores `prev_hash`, the hash of the event before it in global
//! order (64 zeros for the first), and `hash`, the SHA-256 of its canonical
//! bytes, in lower-case hex. Editing, deleting, inserting or reordering an event
//! breaks the chain at that position; `ledger verify` recomputes it.
//!
//! Canonical bytes: the JSON object below with keys sorted by byte order, no
//! whitespace, strings escaped minimally (RFC 8259), non-ASCII as UTF-8 —
//! what Python's `json.dumps(obj, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False).encode()` produces:
//!
//! `actor`, `aggregate_id`, `aggregate_type`, `causation_id`, `command_id`,
//! `correlation_id`, `event_type`, `event_version` (number), `global_position`
//! (number), `payload` (object, keys sorted at every depth), `prev_hash`,
//! `recorded_at` (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, microseconds, UTC), `sequence` (number),
//! and `business_date` (`YYYY-MM-DD`) only when the event has one: an event
//! written before business dates were stored hashes exactly as it did then.
//!
//! The payload enters the hash as bytes, [`canonical_json`] of the payload when
//! it is appended. SQLite stores exactly those bytes, so `verify` hashes the
//! stored bytes as they are, before (and whether or not) they decode; PostgreSQL
//! keeps the payload as JSONB and gives back its own spelling, so there the
//! value read back is put in canonical form again ([`payload_bytes_of_text`]).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{EventMetadata, NewEvent, StreamId};

/// `prev_hash` of the first event of the log.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The one text form of `recorded_at`, at the microsecond both backends keep.
pub fn format_recorded_at(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Truncates to the microsecond, the precision every backend stores.
pub fn to_stored_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// The canonical text of a payload: what an append stores (the payload column's
/// text on SQLite) and what the hash covers.
pub fn canonical_json(payload: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(payload, &mut out);
    // Every byte written is a JSON token or a UTF-8 string serde_json escaped.
    String::from_utf8(out).unwrap_or_else(|_| unreachable!("canonical JSON is UTF-8"))
}

/// The payload bytes the hash covers, from a backend that keeps its own spelling of
/// the payload (PostgreSQL's JSONB): the value it holds, in canonical form. Text that
/// is not JSON (a column altered to hold text) is taken as it is: it cannot be the
/// canonical JSON that was hashed, so its hash does not match.
pub fn payload_bytes_of_text(text: &str) -> Vec<u8> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => canonical_json(&value).into_bytes(),
        Err(_) => text.as_bytes().to_vec(),
    }
}

/// The fields of one event that the hash covers.
pub struct ChainedFields<'a> {
    pub global_position: u64,
    pub stream: &'a StreamId,
    pub sequence: u64,
    pub event_type: &'a str,
    pub event_version: u32,
    /// The payload's bytes: [`canonical_json`] of a new event's payload, or a stored
    /// event's bytes as its backend keeps them (which need not be JSON at all).
    pub payload: &'a [u8],
    pub metadata: &'a EventMetadata,
    pub prev_hash: &'a str,
}

impl<'a> ChainedFields<'a> {
    /// A new event's fields; `payload` is `canonical_json(&event.payload)`.
    pub fn of_new(
        global_position: u64,
        stream: &'a StreamId,
        sequence: u64,
        event: &'a NewEvent,
        payload: &'a str,
        metadata: &'a EventMetadata,
        prev_hash: &'a str,
    ) -> Self {
        Self {
            global_position,
            stream,
            sequence,
            event_type: &event.event_type,
            event_version: event.event_version,
            payload: payload.as_bytes(),
            metadata,
            prev_hash,
        }
    }

    pub fn canonical_bytes(&self) -> Vec<u8> {
        // `payload` stands in for the payload bytes, written as they are.
        let mut object = json!({
            "actor": self.metadata.actor,
            "aggregate_id": self.stream.aggregate_id,
            "aggregate_type": self.stream.aggregate_type,
            "causation_id": self.metadata.causation_id,
            "command_id": self.metadata.command_id,
            "correlation_id": self.metadata.correlation_id,
            "event_type": self.event_type,
            "event_version": self.event_version,
            "global_position": self.global_position,
            "payload": Value::Null,
            "prev_hash": self.prev_hash,
            "recorded_at": format_recorded_at(&self.metadata.recorded_at),
            "sequence": self.sequence,
        });
        if let (Some(date), Value::Object(map)) = (self.metadata.business_date, &mut object) {
            map.insert("business_date".to_owned(), Value::String(date.to_string()));
        }
        let mut out = Vec::with_capacity(512 + self.payload.len());
        if let Value::Object(map) = &object {
            write_object(map, Some(("payload", self.payload)), &mut out);
        }
        out
    }

    /// SHA-256 of the canonical bytes, lower-case hex.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }
}

/// JSON with object keys sorted at every depth, whatever order the map keeps them in.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_object(map, None, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

/// An object with its keys sorted; `raw` writes one key's value as the bytes given.
fn write_object(map: &serde_json::Map<String, Value>, raw: Option<(&str, &[u8])>, out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push(b'{');
    for (index, key) in keys.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_scalar(&Value::String(key.clone()), out);
        out.push(b':');
        match raw {
            Some((raw_key, bytes)) if raw_key == key => out.extend_from_slice(bytes),
            _ => write_canonical(&map[key.as_str()], out),
        }
    }
    out.push(b'}');
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Serializing a scalar Value into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, value).is_err() {
        unreachable!("a JSON scalar always serializes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> EventMetadata {
        EventMetadata {
            command_id: "C1".into(),
            correlation_id: "C1".into(),
            causation_id: "C1".into(),
            actor: "test".into(),
            recorded_at: DateTime::parse_from_rfc3339("2024-03-04T09:30:00.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            business_date: None,
        }
    }

    #[test]
    fn canonical_bytes_are_sorted_compact_json() {
        let stream = StreamId::new("Account", "A1");
        let payload = canonical_json(&json!({"z": "1.00", "a": {"y": 1, "b": "é\n"}}));
        let meta = metadata();
        let fields = ChainedFields {
            global_position: 7,
            stream: &stream,
            sequence: 2,
            event_type: "CashDeposited",
            event_version: 1,
            payload: payload.as_bytes(),
            metadata: &meta,
            prev_hash: GENESIS_HASH,
        };
        let text = String::from_utf8(fields.canonical_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"actor\":\"test\",\"aggregate_id\":\"A1\",\"aggregate_type\":\"Account\",\"causation_id\":\"C1\",\
                 \"command_id\":\"C1\",\"correlation_id\":\"C1\",\"event_type\":\"CashDeposited\",\"event_version\":1,\
                 \"global_position\":7,\"payload\":{{\"a\":{{\"b\":\"é\\n\",\"y\":1}},\"z\":\"1.00\"}},\
                 \"prev_hash\":\"{GENESIS_HASH}\",\"recorded_at\":\"2024-03-04T09:30:00.123456Z\",\"sequence\":2}}"
            )
        );
        // Recomputed independently with: printf '%s' "$text" | sha256sum
        assert_eq!(fields.hash().len(), 64);
        assert_eq!(fields.hash(), hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn the_canonical_payload_is_what_serde_json_writes_of_a_sorted_map() {
        // Logs written before `canonical_json` stored `serde_json::to_string`: the same bytes.
        let payload = json!({"z": "1.00", "a": {"y": 1, "b": "é\n\u{1f}"}, "q": [1, "-0"]});
        assert_eq!(canonical_json(&payload), serde_json::to_string(&payload).unwrap());
    }

    #[test]
    fn a_respelled_payload_is_canonical_again_and_text_that_is_not_json_stays_as_it_is() {
        // PostgreSQL's spelling of JSONB: a space after each separator, shorter keys first.
        let respelled = r#"{"z": "1.00", "ab": {"y": 1, "b": "é"}}"#;
        assert_eq!(
            payload_bytes_of_text(respelled),
            r#"{"ab":{"b":"é","y":1},"z":"1.00"}"#.as_bytes()
        );
        for broken in ["", "{\"a\"", "#a\":1}"] {
            assert_eq!(payload_bytes_of_text(broken), broken.as_bytes());
        }
    }

    #[test]
    fn a_business_date_is_hashed_and_its_absence_leaves_the_old_bytes() {
        let stream = StreamId::new("Account", "A1");
        let payload = canonical_json(&json!({}));
        let without = metadata();
        let with = EventMetadata {
            business_date: Some("2024-03-04".parse().unwrap()),
            ..metadata()
        };
        let fields = |meta| ChainedFields {
            global_position: 1,
            stream: &stream,
            sequence: 1,
            event_type: "CashDeposited",
            event_version: 1,
            payload: payload.as_bytes(),
            metadata: meta,
            prev_hash: GENESIS_HASH,
        };
        let old = String::from_utf8(fields(&without).canonical_bytes()).unwrap();
        let new = String::from_utf8(fields(&with).canonical_bytes()).unwrap();
        assert!(!old.contains("business_date"), "{old}");
        assert!(
            new.starts_with("{\"actor\":\"test\",\"aggregate_id\":\"A1\",\"aggregate_type\":\"Account\",\"business_date\":\"2024-03-04\","),
            "sorted among the other keys: {new}"
        );
        assert_ne!(fields(&without).hash(), fields(&with).hash());
    }
}
