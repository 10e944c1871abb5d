//! Domain events to and from the store's envelope.
//!
//! The store keeps the variant name as `event_type` and the variant's fields
//! as the JSON payload, so that payloads read naturally in SQL and in exports.
//! Events are written at their type's current version and read at any version
//! from 1 to it: an older payload is upcast in memory first (`versions`), the
//! stored event is never rewritten.

use crate::versions::{current_version, upcast};
use crate::{NewEvent, RecordedEvent};
use cqrs_es::DomainEvent;
use serde_json::{Map, Value};

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
    let fail = |reason: String| DecodeError {
        position: recorded.global_position,
        event_type: recorded.event_type.clone(),
        version: recorded.event_version,
        reason,
    };
    let payload = upcast(&recorded.event_type, recorded.event_version, recorded.payload.clone())
        .map_err(|e| fail(e.to_string()))?;
    let mut tagged = Map::with_capacity(1);
    tagged.insert(recorded.event_type.clone(), payload);
    serde_json::from_value(Value::Object(tagged)).map_err(|e| fail(e.to_string()))
}
