//! The handlers: each reads its request, hands the command to `ledger_app` (through
//! the engine's queue for writes) and writes the answer. No business rule lives here.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ledger_app::{LineAnswer, RequestOutcome, RequestRefusal, Status};
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::QueueRefusal;
use crate::problem::Problem;
use crate::{AppState, Principal, MAX_BATCH_REQUEST_LINES};

/// The actor recorded with the events of a request no auth layer named.
pub const DEFAULT_HTTP_ACTOR: &str = "http";
const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `POST /v1/commands`: one command, answered as one line of `ledger exec --json`.
#[utoipa::path(post, path = "/v1/commands", tag = "commands",
    request_body(content = Object, content_type = "application/json",
        description = "One command of the command-file contract (docs/api.md); `command_id` may be left out when the Idempotency-Key header names it."),
    params(("Idempotency-Key" = Option<String>, Header, description = "The command id; equal to the body's `command_id` when both are sent.")),
    responses(
        (status = 200, description = "Accepted, or `duplicate` with the first outcome", body = AnswerDoc),
        (status = 400, description = "A malformed command (the answer object, code `malformed`) or a bad request (a problem)",
            content((AnswerDoc = "application/json"), (Problem = "application/problem+json"))),
        (status = 409, description = "idempotency_key_reused", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "too_large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the ledger's rules: the answer object, `status: rejected` with its code", body = AnswerDoc),
        (status = 500, description = "The ledger failed (code from docs/api.md)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "overloaded, database_lost, database_unreachable, contention",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before resending"))),
    ))]
pub async fn post_command(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match checked_body(&headers, JSON, body) {
        Ok(body) => body,
        Err(problem) => return problem.into_response(),
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let actor = actor_of(principal.as_ref());
    let request = match ledger_app::read_command_request(&body, key.as_deref(), &actor, &state.rules) {
        Ok(request) => request,
        Err(RequestRefusal::Malformed(answer)) => return answer_response(&answer),
        Err(refusal) => {
            return Problem::new(StatusCode::BAD_REQUEST, refusal.code(), refusal.to_string()).into_response()
        }
    };
    match queue_and_wait(&state, vec![request]).await {
        Ok(mut outcomes) => match outcomes.pop() {
            Some(RequestOutcome::Answered(result)) => answer_response(&LineAnswer::from_result(1, result)),
            Some(RequestOutcome::KeyReused { command_id }) => key_reused(&command_id).into_response(),
            None => unreachable!("one outcome per request"),
        },
        Err(problem) => problem.into_response(),
    }
}

/// `POST /v1/commands/batch`: JSON lines in, one answer line per command line out.
#[utoipa::path(post, path = "/v1/commands/batch", tag = "commands",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "Command lines (docs/api.md), each with its `command_id`; blank lines are skipped; at most MAX_BATCH_REQUEST_LINES lines."),
    responses(
        (status = 200, description = "One answer object per command line, in order, as JSON lines (`ledger exec --json`); a line whose command id was first sent with another body is answered `rejected` with code `idempotency_key_reused`", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "idempotency_key_not_allowed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "too_large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The ledger failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "overloaded, database_lost, database_unreachable, contention",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before resending"))),
    ))]
pub async fn post_batch(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match checked_body(&headers, NDJSON, body) {
        Ok(body) => body,
        Err(problem) => return problem.into_response(),
    };
    if headers.contains_key(IDEMPOTENCY_KEY) {
        let detail = "a batch's lines each carry their own command_id; send no Idempotency-Key header";
        return Problem::new(StatusCode::BAD_REQUEST, "idempotency_key_not_allowed", detail).into_response();
    }
    // A last line ending in a newline is not followed by another line.
    let text = body.strip_suffix(b"\n").unwrap_or(&body);
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if lines.len() > MAX_BATCH_REQUEST_LINES {
        let detail = format!(
            "the batch has {} lines; the limit is {MAX_BATCH_REQUEST_LINES}",
            lines.len()
        );
        return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", detail).into_response();
    }
    let actor = actor_of(principal.as_ref());
    match answer_lines(&state, &lines, &actor).await {
        Ok(answers) => ndjson_response(&answers),
        Err(problem) => problem.into_response(),
    }
}

/// Every command line of a batch answered in order: malformed ones at once, the rest
/// after their group commit.
async fn answer_lines(state: &AppState, lines: &[&[u8]], actor: &str) -> Result<Vec<LineAnswer>, Problem> {
    let mut slots: Vec<Result<u64, LineAnswer>> = Vec::new();
    let mut requests = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if std::str::from_utf8(line).is_ok_and(|text| text.trim().is_empty()) {
            continue;
        }
        let line_no = index as u64 + 1;
        match ledger_app::read_command_line(line, line_no, actor, &state.rules) {
            Ok(request) => {
                requests.push(request);
                slots.push(Ok(line_no));
            }
            Err(answer) => slots.push(Err(*answer)),
        }
    }
    let outcomes = if requests.is_empty() {
        Vec::new()
    } else {
        queue_and_wait(state, requests).await?
    };
    let mut outcomes = outcomes.into_iter();
    let answers = slots
        .into_iter()
        .filter_map(|slot| match slot {
            Err(answer) => Some(answer),
            Ok(line_no) => outcomes.next().map(|outcome| line_answer(line_no, outcome)),
        })
        .collect();
    Ok(answers)
}

fn line_answer(line_no: u64, outcome: RequestOutcome) -> LineAnswer {
    match outcome {
        RequestOutcome::Answered(result) => LineAnswer::from_result(line_no, result),
        RequestOutcome::KeyReused { command_id } => LineAnswer {
            line: line_no,
            message: Some(key_reused(&command_id).detail),
            command_id: Some(command_id),
            status: Status::Rejected,
            code: Some("idempotency_key_reused".to_owned()),
            events: 0,
            first_position: None,
            last_position: None,
            first_status: None,
            first_code: None,
        },
    }
}

/// Queues the requests and waits for their batch's commit.
async fn queue_and_wait(
    state: &AppState,
    requests: Vec<ledger_app::CommandRequest>,
) -> Result<Vec<RequestOutcome>, Problem> {
    let count = requests.len();
    let answer = state.queue.send(requests).map_err(|refusal| match refusal {
        QueueRefusal::Full => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "{count} commands do not fit in the queue ({} of {} commands waiting); resend after Retry-After",
                state.queue.depth(),
                state.queue.limit_commands()
            ),
        ),
        QueueRefusal::Closed => shutting_down(),
    })?;
    answer.await.map_err(|_| shutting_down())?
}

fn shutting_down() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "the server is stopping; resend to its successor",
    )
}

fn key_reused(command_id: &str) -> Problem {
    let detail = format!(
        "command id {command_id} was first sent with another body; a command id names one command: \
         resend that body to learn its outcome, or use a new command id"
    );
    Problem::new(StatusCode::CONFLICT, "idempotency_key_reused", detail)
}

/// The body, once its content type is `expected` and it was read within the route's limit.
fn checked_body(headers: &HeaderMap, expected: &str, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = sent.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(expected) {
        let detail = format!("the body must be sent as Content-Type: {expected}, not {sent:?}");
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        ));
    }
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is over this route's limit (docs/api.md, \"Limits\")",
            )
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", rejection.body_text())
        }
    })
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value.to_str().map(|key| Some(key.to_owned())).map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "the Idempotency-Key header is not visible ASCII text",
            )
        }),
    }
}

fn actor_of(principal: Option<&Extension<Principal>>) -> String {
    principal.map_or_else(|| DEFAULT_HTTP_ACTOR.to_owned(), |Extension(p)| p.actor.clone())
}

/// The answer object with the status its outcome has (docs/api.md, "HTTP API").
fn answer_response(answer: &LineAnswer) -> Response {
    let status = match answer.status {
        Status::Accepted | Status::Duplicate => StatusCode::OK,
        Status::Rejected if answer.code.as_deref() == Some("malformed") => StatusCode::BAD_REQUEST,
        Status::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(answer)).into_response()
}

fn ndjson_response(answers: &[LineAnswer]) -> Response {
    let mut body = Vec::new();
    for answer in answers {
        // A LineAnswer is strings and numbers: it always serializes.
        if serde_json::to_writer(&mut body, answer).is_ok() {
            body.push(b'\n');
        }
    }
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

/// `GET /v1/health`: whether the ledger answers, how far its log is, how full the queue.
#[utoipa::path(get, path = "/v1/health", tag = "service",
    responses(
        (status = 200, description = "The server and its database answer", body = Health),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    ))]
pub async fn health(State(state): State<AppState>) -> Response {
    match ledger_app::head_position(state.store.as_ref()).await {
        Ok(head_position) => Json(Health {
            status: "ok".to_owned(),
            backend: state.store.backend().to_owned(),
            head_position,
            queue_depth_commands: state.queue.depth() as u64,
            queue_limit_commands: state.queue.limit_commands() as u64,
        })
        .into_response(),
        Err(error) => {
            let mut problem = Problem::from_app_code(error.code(), error.to_string());
            problem.status = StatusCode::SERVICE_UNAVAILABLE.as_u16();
            problem.into_response()
        }
    }
}

/// `GET /v1/health`'s answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The last global position of the log (0: empty).
    pub head_position: u64,
    /// Commands waiting in the queue to be decided.
    pub queue_depth_commands: u64,
    /// The queue's limit: a request that does not fit is answered 503 `overloaded`.
    pub queue_limit_commands: u64,
}

/// The answer to one command: the object one line of `ledger exec --json` prints
/// (docs/api.md, "Answers"). Described here for the OpenAPI document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Answer)]
pub struct AnswerDoc {
    /// The line of the request (1 for `POST /v1/commands`).
    pub line: u64,
    pub command_id: Option<String>,
    /// `accepted`, `rejected` or `duplicate`.
    pub status: String,
    /// The refusal code (docs/api.md), when rejected; `duplicate_exec` for a fill already booked.
    pub code: Option<String>,
    pub message: Option<String>,
    /// Events written by this command (0 unless accepted).
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// For `duplicate`: the first outcome's status.
    #[schema(nullable = false)]
    pub first_status: Option<String>,
    /// For `duplicate`: the first outcome's code.
    #[schema(nullable = false)]
    pub first_code: Option<String>,
}

/// The OpenAPI document of these routes.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
pub async fn openapi() -> Response {
    let mut response = crate::openapi_json().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

pub async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; the routes are in /v1/openapi.json",
    )
}

pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /v1/openapi.json",
    )
}
