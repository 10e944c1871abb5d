//! What goes in and comes out of the engine: a [`Submission`] (a command with
//! who sent it) and its [`CommandResult`].

use ledger_domain::RejectCode;
use ledger_eventstore::{OutcomeStatus, StoredOutcome};
use serde::Serialize;

use crate::wire::{CommandLine, LedgerCommand};

/// The code of a request whose command id was recorded for another body.
pub const KEY_REUSED_CODE: &str = "idempotency_key_reused";

/// A command with who sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub command_id: String,
    pub command: LedgerCommand,
    /// Groups related commands; defaults to the command id.
    pub correlation_id: Option<String>,
    pub actor: String,
    /// SHA-256 (hex) of the canonical request body that carried the command (the HTTP
    /// API's idempotency binding), recorded with its outcome; `None` for a command-file
    /// line, which has no body. A command id recorded with one digest is refused to a
    /// body with another ([`CommandResult::is_key_reused`]).
    pub request_sha256: Option<String>,
}

impl Submission {
    pub fn new(line: CommandLine, actor: &str) -> Self {
        Self {
            command_id: line.command_id.into(),
            command: line.command,
            correlation_id: None,
            actor: actor.to_owned(),
            request_sha256: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    Accepted,
    Rejected,
    /// Nothing was written: the command id was seen before, or (code
    /// `duplicate_exec`) the fill's execution id was already booked.
    Duplicate,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandResult {
    pub command_id: String,
    pub status: Status,
    pub code: Option<String>,
    pub message: Option<String>,
    /// Events this command wrote (0 unless accepted).
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// For a duplicate command id: the first outcome's status and code.
    pub first_status: Option<String>,
    pub first_code: Option<String>,
}

impl CommandResult {
    pub(super) fn from_stored(outcome: &StoredOutcome) -> Self {
        let duplicate_exec = outcome.code.as_deref() == Some(RejectCode::DuplicateExec.as_str());
        Self {
            command_id: outcome.command_id.clone(),
            status: match outcome.status {
                OutcomeStatus::Accepted => Status::Accepted,
                OutcomeStatus::Rejected if duplicate_exec => Status::Duplicate,
                OutcomeStatus::Rejected => Status::Rejected,
            },
            code: outcome.code.clone(),
            message: outcome.message.clone(),
            events: outcome.event_count,
            first_position: outcome.first_position,
            last_position: outcome.last_position,
            first_status: None,
            first_code: None,
        }
    }

    /// A malformed command, answered without being recorded.
    pub(crate) fn malformed(command_id: &str, message: &str) -> Self {
        Self {
            command_id: command_id.to_owned(),
            status: Status::Rejected,
            code: Some(RejectCode::Malformed.as_str().to_owned()),
            message: Some(message.to_owned()),
            events: 0,
            first_position: None,
            last_position: None,
            first_status: None,
            first_code: None,
        }
    }

    /// Whether the answer is `malformed`: nothing recorded, the command id still free.
    pub fn is_malformed(&self) -> bool {
        self.code.as_deref() == Some(RejectCode::Malformed.as_str())
    }

    /// A command id already recorded (or decided earlier in the batch) for another
    /// request body: nothing decided, nothing recorded.
    pub(super) fn key_reused(command_id: &str) -> Self {
        Self {
            command_id: command_id.to_owned(),
            status: Status::Rejected,
            code: Some(KEY_REUSED_CODE.to_owned()),
            message: Some(format!(
                "command id {command_id} was first sent with another body; a command id names one command: \
                 resend that body to learn its outcome, or use a new command id"
            )),
            events: 0,
            first_position: None,
            last_position: None,
            first_status: None,
            first_code: None,
        }
    }

    /// Whether the answer is [`KEY_REUSED_CODE`]: the command id names another body.
    pub fn is_key_reused(&self) -> bool {
        self.code.as_deref() == Some(KEY_REUSED_CODE)
    }

    pub(super) fn duplicate_of(outcome: &StoredOutcome) -> Self {
        Self {
            command_id: outcome.command_id.clone(),
            status: Status::Duplicate,
            code: None,
            message: Some(format!(
                "command id {} was already {} at {}; nothing changed",
                outcome.command_id,
                outcome.status.as_str(),
                outcome.recorded_at.format("%Y-%m-%d %H:%M:%S UTC")
            )),
            events: 0,
            first_position: outcome.first_position,
            last_position: outcome.last_position,
            first_status: Some(outcome.status.as_str().to_owned()),
            first_code: outcome.code.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn a_status_reads_as_it_serializes() {
        for status in [Status::Accepted, Status::Rejected, Status::Duplicate] {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
        assert_eq!(Status::Duplicate.as_str(), "duplicate");
    }
}
