//! The relay's JetStream stream: made when missing, checked when present, and read back
//! for where the relay got to (its last message's `Nats-Msg-Id`, the position).

use std::time::Duration;

use async_nats::jetstream::stream::{Config, RetentionPolicy, StorageType, Stream};
use async_nats::jetstream::Context;

use crate::subject::stream_subjects;
use crate::RelayError;

/// JetStream's window for dropping a message whose `Nats-Msg-Id` it has seen.
pub const DUPLICATE_WINDOW_MS: u64 = 120_000;
/// The header JetStream deduplicates by: the event's global position.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// What the stream holds of the relay's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEnd {
    /// The stream's last sequence (0: never written; a purged stream keeps its count).
    pub last_sequence: u64,
    /// The position of its last message, when it holds one.
    pub last_position: Option<u64>,
}

/// The stream `name` for the subjects under `prefix`: created when missing (limits-based
/// retention, so events are kept before any consumer exists; files on disk); refused when
/// it exists but does not take those subjects.
pub async fn ensure_stream(js: &Context, name: &str, prefix: &str) -> Result<Stream, RelayError> {
    let subjects = stream_subjects(prefix);
    let config = Config {
        name: name.to_owned(),
        subjects: vec![subjects.clone()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        duplicate_window: Duration::from_millis(DUPLICATE_WINDOW_MS),
        ..Config::default()
    };
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| RelayError::nats("cannot find or create the stream", &e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| RelayError::nats("cannot read the stream's information", &e))?;
    if !info.config.subjects.contains(&subjects) {
        return Err(RelayError::StreamMismatch {
            stream: name.to_owned(),
            subjects: info.config.subjects.clone(),
            wanted: subjects,
        });
    }
    Ok(stream)
}

/// The stream's last sequence and the position of its last message.
pub async fn stream_end(stream: &mut Stream) -> Result<StreamEnd, RelayError> {
    let state = stream
        .info()
        .await
        .map_err(|e| RelayError::nats("cannot read the stream's information", &e))?
        .state
        .clone();
    if state.messages == 0 {
        return Ok(StreamEnd {
            last_sequence: state.last_sequence,
            last_position: None,
        });
    }
    let last = stream
        .get_raw_message(state.last_sequence)
        .await
        .map_err(|e| RelayError::nats("cannot read the stream's last message", &e))?;
    let position = last
        .headers
        .get(MSG_ID_HEADER)
        .and_then(|id| id.as_str().parse::<u64>().ok())
        .ok_or_else(|| RelayError::ForeignMessage {
            sequence: state.last_sequence,
            subject: last.subject.to_string(),
        })?;
    Ok(StreamEnd {
        last_sequence: state.last_sequence,
        last_position: Some(position),
    })
}
