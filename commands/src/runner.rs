//! Runs a stream of command-file lines through the engine in batches and
//! answers every line, in order, malformed ones included. Lines come as bytes:
//! one that is not UTF-8 text is a malformed line like any other, not the end
//! of the file.

use serde::Serialize;

use crate::engine::{CommandResult, EngineError, Ledger, Status, Submission, MAX_BATCH_COMMANDS};
use crate::wire::{parse_line_bytes, Malformed};

/// The answer to one line of a command file (`ledger exec --json` prints one per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineAnswer {
    pub line: u64,
    pub command_id: Option<String>,
    pub status: Status,
    pub code: Option<String>,
    pub message: Option<String>,
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_code: Option<String>,
}

impl LineAnswer {
    /// A line that is not a valid command, answered without being recorded.
    pub fn malformed(line: u64, error: Malformed) -> Self {
        Self {
            line,
            command_id: error.command_id,
            status: Status::Rejected,
            code: Some(ledger_domain::RejectCode::Malformed.as_str().to_owned()),
            message: Some(at_line(line, &error.message)),
            events: 0,
            first_position: None,
            last_position: None,
            first_status: None,
            first_code: None,
        }
    }

    /// The engine's answer; a malformed one names its line, as the parser's do.
    pub fn from_result(line: u64, result: CommandResult) -> Self {
        let message = match result.message {
            Some(message) if result.is_malformed() => Some(at_line(line, &message)),
            message => message,
        };
        Self {
            line,
            command_id: Some(result.command_id),
            status: result.status,
            code: result.code,
            message,
            events: result.events,
            first_position: result.first_position,
            last_position: result.last_position,
            first_status: result.first_status,
            first_code: result.first_code,
        }
    }
}

/// A malformed answer's message starts with the line it answers.
fn at_line(line: u64, message: &str) -> String {
    format!("line {line}: {message}")
}

/// A line of nothing but white space; one that is not UTF-8 is not blank.
fn is_blank(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_ok_and(|text| text.trim().is_empty())
}

enum Pending {
    Malformed(u64, Malformed),
    Submitted(u64),
}

/// Collects lines into batches of at most `MAX_BATCH_COMMANDS` commands.
pub struct LineRunner<'a> {
    ledger: &'a mut Ledger,
    actor: String,
    pending: Vec<Pending>,
    submissions: Vec<Submission>,
}

impl<'a> LineRunner<'a> {
    pub fn new(ledger: &'a mut Ledger, actor: &str) -> Self {
        Self {
            ledger,
            actor: actor.to_owned(),
            pending: Vec::new(),
            submissions: Vec::new(),
        }
    }

    /// Adds a line (1-based `line` number), as read: text or bytes. Blank lines
    /// are skipped. Returns the answers of a batch when this line filled it, else
    /// nothing yet.
    pub async fn push(&mut self, line: u64, text: impl AsRef<[u8]>) -> Result<Vec<LineAnswer>, EngineError> {
        let text = text.as_ref();
        if is_blank(text) {
            return Ok(Vec::new());
        }
        match parse_line_bytes(text) {
            Ok(parsed) => {
                self.submissions.push(Submission::new(parsed, &self.actor));
                self.pending.push(Pending::Submitted(line));
            }
            Err(malformed) => self.pending.push(Pending::Malformed(line, malformed)),
        }
        if self.submissions.len() >= MAX_BATCH_COMMANDS {
            return self.flush().await;
        }
        Ok(Vec::new())
    }

    /// Lines pushed and not answered yet (blank lines are not counted).
    pub fn pending_lines(&self) -> usize {
        self.pending.len()
    }

    /// Runs what is left and returns its answers.
    pub async fn flush(&mut self) -> Result<Vec<LineAnswer>, EngineError> {
        let submissions = std::mem::take(&mut self.submissions);
        let results = if submissions.is_empty() {
            Vec::new()
        } else {
            self.ledger.execute(&submissions).await?
        };
        assert_eq!(results.len(), submissions.len(), "one result per submission");
        let mut results = results.into_iter();
        let answers = std::mem::take(&mut self.pending)
            .into_iter()
            .filter_map(|pending| match pending {
                Pending::Malformed(line, error) => Some(LineAnswer::malformed(line, error)),
                Pending::Submitted(line) => results.next().map(|result| LineAnswer::from_result(line, result)),
            })
            .collect();
        Ok(answers)
    }
}
