//! Domain events to and from the store's envelope.
//!
//! The store keeps the variant name as `event_type` and the variant's fields
//! as the JSON payload, so that payloads read naturally in SQL and in exports.
//! Events are written at their type's current version and read at any version
//! from 1 to it: an older payload is upcast in memory first (`versions`), the
//! stored event is never rewritten.

use crate::tagged::from_variant_and_payload;
use crate::versions::{check_readable, current_version, upcast};
use crate::{NewEvent, RawEvent, RecordedEvent};
use cqrs_es::DomainEvent;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("event at position {position} ({event_type} v{version}) cannot be read: {reason}")]
pub struct DecodeError {
    pub position: u64,
    pub event_type: String,
    pub version: u32,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
#[error("event {event_type} cannot be encoded: {reason}")]
pub struct EncodeError {
    pub event_type: String,
    pub reason: String,
}

/// The payload the store keeps for `event`, at the version its type is written at today.
pub fn encode<E: DomainEvent>(event: &E) -> Result<NewEvent, EncodeError> {
    let event_type = event.event_type();
    let fail = |reason: String| EncodeError {
        event_type: event_type.clone(),
        reason,
    };
    let value = serde_json::to_value(event).map_err(|e| fail(e.to_string()))?;
    let Value::Object(mut tagged) = value else {
        return Err(fail("it does not serialize as a named variant with fields".into()));
    };
    let payload = tagged
        .remove(&event_type)
        .ok_or_else(|| fail("variant name differs from event_type".into()))?;
    if !tagged.is_empty() {
        return Err(fail("more than one variant key".into()));
    }
    let version: u32 = event
        .event_version()
        .parse()
        .map_err(|_| fail("event_version is not a number".into()))?;
    // Written only at the version the reader takes as current, so every event written
    // can be read back by the build that wrote it.
    match current_version(&event_type) {
        Some(current) if current == version => {}
        Some(current) => {
            return Err(fail(format!(
                "the domain writes version {version}, the codec's table of versions says {current}"
            )))
        }
        None => return Err(fail("not in the codec's table of event versions".into())),
    }
    Ok(NewEvent {
        event_type,
        event_version: version,
        payload,
    })
}

/// The event `recorded` holds, as the current version of its type: an older version's
/// payload is upcast first (on a copy), a version this build does not know is refused.
pub fn decode<E: DomainEvent>(recorded: &RecordedEvent) -> Result<E, DecodeError> {
    let fail = decode_error(recorded.global_position, &recorded.event_type, recorded.event_version);
    let event_type = recorded.event_type.as_str();
    let current = check_readable(event_type, recorded.event_version).map_err(|e| fail(e.to_string()))?;
    if recorded.event_version == current {
        return from_variant_and_payload(event_type, &recorded.payload).map_err(|e| fail(e.to_string()));
    }
    upcast_and_read(event_type, recorded.event_version, recorded.payload.clone()).map_err(fail)
}

/// The event `raw` holds, read from its stored bytes: at its type's current version in
/// one pass, with no JSON value in between (what replays and rebuilds read); an older
/// version through its upcasters, as [`decode`] does.
pub fn decode_raw<E: DomainEvent>(raw: &RawEvent) -> Result<E, DecodeError> {
    let fail = decode_error(raw.global_position, &raw.event_type, raw.event_version);
    let event_type = raw.event_type.as_str();
    let current = check_readable(event_type, raw.event_version).map_err(|e| fail(e.to_string()))?;
    if raw.event_version == current {
        let mut payload = serde_json::Deserializer::from_slice(&raw.payload);
        let event = from_variant_and_payload(event_type, &mut payload).and_then(|event| payload.end().map(|()| event));
        return event.map_err(|e| fail(payload_error(&e)));
    }
    let stored: Value = serde_json::from_slice(&raw.payload).map_err(|e| fail(format!("payload is not JSON: {e}")))?;
    upcast_and_read(event_type, raw.event_version, stored).map_err(fail)
}

/// An older version's payload brought to the current version, then read as its event.
fn upcast_and_read<E: DomainEvent>(event_type: &str, version: u32, stored: Value) -> Result<E, String> {
    let payload = upcast(event_type, version, stored).map_err(|e| e.to_string())?;
    from_variant_and_payload(event_type, &payload).map_err(|e| e.to_string())
}

/// What a payload read in one pass fails with: bytes that are not JSON say so, as a
/// payload read into a value first says it.
fn payload_error(error: &serde_json::Error) -> String {
    if error.is_syntax() || error.is_eof() {
        format!("payload is not JSON: {error}")
    } else {
        error.to_string()
    }
}

fn decode_error(position: u64, event_type: &str, version: u32) -> impl Fn(String) -> DecodeError + '_ {
    move |reason| DecodeError {
        position,
        event_type: event_type.to_owned(),
        version,
        reason,
    }
}
