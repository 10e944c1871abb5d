//! Commands sent as requests (the HTTP API), each under an idempotency key that is
//! bound to the request's body: the same key with the same body answers the first
//! outcome (`duplicate`), the same key with another body is refused
//! (`idempotency_key_reused`), also after a restart: the digest of the body is
//! recorded with the command's outcome, in its batch's transaction, and the engine
//! compares it when the command id comes again.
//!
//! The body is canonical before it is digested: an object with its keys sorted,
//! written without white space, `command_id` included whether it came in the body
//! or as the key. Two bodies that differ only in spacing or key order are the same.

use ledger_commands::{parse_line_bytes, CommandResult, Ledger, LineAnswer, Malformed, Submission};
use ledger_domain::MarketRules;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{submit, AppError};

/// A well-formed command read from a request body, ready to be decided: its submission
/// carries the SHA-256 (hex) of the canonical body (`request_sha256`).
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub submission: Submission,
}

/// Why a request's body is not a command; nothing is recorded for any of them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestRefusal {
    /// The body is not JSON at all: an error of the request, not a command.
    #[error("the body is not valid JSON: {0}")]
    UnreadableJson(String),
    #[error("no command id: send it as the Idempotency-Key header or as `command_id` in the body")]
    KeyMissing,
    #[error(
        "the Idempotency-Key header {header:?} and the body's command_id {body:?} differ; send one, or both equal"
    )]
    KeyMismatch { header: String, body: String },
    /// JSON, but not a well-formed command: answered as a command file's line is.
    #[error("{}", .0.message.as_deref().unwrap_or("malformed"))]
    Malformed(Box<LineAnswer>),
}

impl RequestRefusal {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            RequestRefusal::UnreadableJson(_) => "invalid_json",
            RequestRefusal::KeyMissing => "missing_idempotency_key",
            RequestRefusal::KeyMismatch { .. } => "idempotency_key_mismatch",
            RequestRefusal::Malformed(_) => "malformed",
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestOutcome {
    /// Decided (or `duplicate`, or `malformed` by the domain): the command's answer.
    Answered(CommandResult),
    /// Its command id was first sent with another body; nothing was decided. The
    /// engine's answer (code `idempotency_key_reused`, with the sentence to show).
    KeyReused(CommandResult),
}

impl RequestOutcome {
    /// The request's answer as a batch line (`line` numbered from 1): the engine's
    /// answer, a reused key's included (`rejected`, its code and sentence).
    pub fn into_line_answer(self, line: u64) -> LineAnswer {
        match self {
            RequestOutcome::Answered(result) | RequestOutcome::KeyReused(result) => {
                LineAnswer::from_result(line, result)
            }
        }
    }
}

/// One request body (a JSON object) under the `Idempotency-Key` header `key`, if sent.
pub fn read_command_request(
    body: &[u8],
    key: Option<&str>,
    actor: &str,
    rules: &MarketRules,
) -> Result<CommandRequest, RequestRefusal> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| RequestRefusal::UnreadableJson(e.to_string()))?;
    if let Value::Object(fields) = &mut value {
        match (key, fields.get("command_id")) {
            (Some(header), Some(Value::String(body))) if header != body => {
                return Err(RequestRefusal::KeyMismatch {
                    header: header.to_owned(),
                    body: body.clone(),
                })
            }
            (Some(header), None) => {
                fields.insert("command_id".to_owned(), Value::String(header.to_owned()));
            }
            (None, None) => return Err(RequestRefusal::KeyMissing),
            _ => {}
        }
    }
    let canonical = canonical_bytes(&value);
    read_command_line(&canonical, 1, actor, rules).map_err(RequestRefusal::Malformed)
}

/// One line of a batch (a command file's line): the command, or its `malformed` answer.
pub fn read_command_line(
    line: &[u8],
    line_no: u64,
    actor: &str,
    rules: &MarketRules,
) -> Result<CommandRequest, Box<LineAnswer>> {
    let parsed = parse_line_bytes(line).map_err(|error| Box::new(LineAnswer::malformed(line_no, error)))?;
    if let Err(rejection) = parsed.command.check_well_formed(rules) {
        let error = Malformed {
            command_id: Some(parsed.command_id.to_string()),
            message: rejection.message,
        };
        return Err(Box::new(LineAnswer::malformed(line_no, error)));
    }
    // It parsed, so it is JSON: the digest is of its canonical form.
    let value: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
    let mut submission = Submission::new(parsed, actor);
    submission.request_sha256 = Some(sha256_hex(&canonical_bytes(&value)));
    Ok(CommandRequest { submission })
}

/// Decides the requests in one batch (at most [`crate::MAX_SUBMISSIONS`]) and answers
/// each, in order. Each command carries its body's digest, recorded with its outcome;
/// a command id recorded for another body is answered [`RequestOutcome::KeyReused`].
pub async fn submit_requests(
    ledger: &mut Ledger,
    requests: &[CommandRequest],
) -> Result<Vec<RequestOutcome>, AppError> {
    let submissions: Vec<Submission> = requests.iter().map(|r| r.submission.clone()).collect();
    let results = submit(ledger, &submissions).await?;
    assert_eq!(
        results.len(),
        requests.len(),
        "the engine answers every submission, in order"
    );
    Ok(results
        .into_iter()
        .map(|result| {
            if result.is_key_reused() {
                RequestOutcome::KeyReused(result)
            } else {
                RequestOutcome::Answered(result)
            }
        })
        .collect())
}

/// The value with every object's keys sorted, written without white space.
fn canonical_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&sorted(value)).unwrap_or_default()
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&fields[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
