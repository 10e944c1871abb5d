//! Domain events to and from the store's envelope.
//!
//! The store keeps the variant name as `event_type` and the variant's fields
//! as the JSON payload, so that payloads read naturally in SQL and in exports.

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
#[error("event {event_type} does not encode as a named variant with fields: {reason}")]
pub struct EncodeError {
    pub event_type: String,
    pub reason: String,
}

/// The version every event type is at today (see docs/events.md).
pub const CURRENT_EVENT_VERSION: u32 = 1;

pub fn encode<E: DomainEvent>(event: &E) -> Result<NewEvent, EncodeError> {
    let event_type = event.event_type();
    let fail = |reason: String| EncodeError {
        event_type: event_type.clone(),
        reason,
    };
    let value = serde_json::to_value(event).map_err(|e| fail(e.to_string()))?;
    let Value::Object(mut tagged) = value else {
        return Err(fail("not an object".into()));
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
    Ok(NewEvent {
        event_type,
        event_version: version,
        payload,
    })
}

pub fn decode<E: DomainEvent>(recorded: &RecordedEvent) -> Result<E, DecodeError> {
    let fail = |reason: String| DecodeError {
        position: recorded.global_position,
        event_type: recorded.event_type.clone(),
        version: recorded.event_version,
        reason,
    };
    if recorded.event_version != CURRENT_EVENT_VERSION {
        return Err(fail(format!("this build reads version {CURRENT_EVENT_VERSION} only")));
    }
    let mut tagged = Map::with_capacity(1);
    tagged.insert(recorded.event_type.clone(), recorded.payload.clone());
    serde_json::from_value(Value::Object(tagged)).map_err(|e| fail(e.to_string()))
}
