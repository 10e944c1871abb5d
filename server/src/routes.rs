//! The handlers: each reads its request, hands the command to `ledger_app` (through
//! the engine's queue for writes) and writes the answer. No business rule lives here.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ledger_app::access::{CommandType, Principal, MAX_ACCESS_LOG_PAGE};
use ledger_app::{CommandRequest, CommandResult, LineAnswer, RequestOutcome, RequestRefusal, Status};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::{forbidden, Outcome};
use crate::engine::QueueRefusal;
use crate::problem::Problem;
use crate::{AppState, MAX_BATCH_REQUEST_LINES};

/// Rows of a page of `GET /v1/access-log` when `limit` is not given.
pub const DEFAULT_ACCESS_LOG_PAGE: usize = 100;
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
        (status = 401, description = "unauthenticated: no valid bearer token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "forbidden: the token's role may not submit this command type, or the command names an account the token is not limited to; nothing is queued", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "idempotency_key_reused", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "too_large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the ledger's rules: the answer object, `status: rejected` with its code", body = AnswerDoc),
        (status = 500, description = "The ledger failed (code from docs/api.md)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "overloaded, database_lost, database_unreachable, contention",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before resending"))),
    ),
    security(("bearer" = [])))]
pub async fn post_command(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
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
    let request = match ledger_app::read_command_request(&body, key.as_deref(), &principal.name, &state.rules) {
        Ok(request) => request,
        Err(RequestRefusal::Malformed(answer)) => {
            crate::metrics::record_malformed(&body);
            return answer_response(&answer);
        }
        Err(refusal) => {
            return Problem::new(StatusCode::BAD_REQUEST, refusal.code(), refusal.to_string()).into_response()
        }
    };
    let (command, account) = command_of(&request);
    let noted = Outcome {
        code: None,
        command: Some(command),
        account: account.clone(),
    };
    // Checked before the queue: a command the token may not send is never decided.
    if let Err(error) = principal.authorize_submit(command, account.as_deref()) {
        return forbidden(&error, noted);
    }
    let response = match queue_and_wait(&state, vec![request]).await {
        Ok(mut outcomes) => match outcomes.pop() {
            Some(RequestOutcome::Answered(result)) => answer_response(&LineAnswer::from_result(1, result)),
            Some(RequestOutcome::KeyReused(result)) => key_reused(result).into_response(),
            None => unreachable!("one outcome per request"),
        },
        Err(problem) => problem.into_response(),
    };
    with_outcome(response, noted)
}

/// The type of a command request and the account it names.
fn command_of(request: &CommandRequest) -> (CommandType, Option<String>) {
    let command = &request.submission.command;
    let account = command.account_id().map(|id| id.as_str().to_owned());
    (CommandType::from(command), account)
}

/// The response, with the command and account of `noted` added to what it tells the
/// access log (and `noted`'s code when the response names none).
fn with_outcome(mut response: Response, noted: Outcome) -> Response {
    let code = response.extensions().get::<Outcome>().and_then(|o| o.code.clone());
    let code = code.or(noted.code);
    response.extensions_mut().insert(Outcome { code, ..noted });
    response
}

/// `POST /v1/commands/batch`: JSON lines in, one answer line per command line out.
#[utoipa::path(post, path = "/v1/commands/batch", tag = "commands",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "Command lines (docs/api.md), each with its `command_id`; blank lines are skipped; at most MAX_BATCH_REQUEST_LINES lines."),
    responses(
        (status = 200, description = "One answer object per command line, in order, as JSON lines (`ledger exec --json`); a line whose command id was first sent with another body is answered `rejected` with code `idempotency_key_reused`", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "idempotency_key_not_allowed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated: no valid bearer token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "forbidden: a line's command type is not the token's role's, or a line names an account the token is not limited to; the whole batch is refused and nothing is queued", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "too_large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The ledger failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "overloaded, database_lost, database_unreachable, contention",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before resending"))),
    ),
    security(("bearer" = [])))]
pub async fn post_batch(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
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
    let (slots, requests) = read_lines(&state, &lines, &principal.name);
    let noted = Outcome {
        code: Some("answered".to_owned()),
        command: None,
        account: batch_account(&requests),
    };
    // The whole batch or none of it: a line the token may not send refuses the batch
    // before anything is queued (docs/api.md, "Authentication").
    for request in &requests {
        let (command, account) = command_of(request);
        if let Err(error) = principal.authorize_submit(command, account.as_deref()) {
            return forbidden(&error, noted);
        }
    }
    let response = match answer_lines(&state, slots, requests).await {
        Ok(answers) => ndjson_response(&answers),
        Err(problem) => problem.into_response(),
    };
    with_outcome(response, noted)
}

/// The account every command of a batch names, when they all name the same one.
fn batch_account(requests: &[CommandRequest]) -> Option<String> {
    let mut accounts = requests.iter().map(|request| command_of(request).1);
    let first = accounts.next()??;
    accounts
        .all(|account| account.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// A line of a batch: its line number, to be answered after its commit, or its answer now.
type Slot = Result<u64, LineAnswer>;

/// The command lines of a batch read: malformed ones answered at once, the rest requests.
fn read_lines(state: &AppState, lines: &[&[u8]], actor: &str) -> (Vec<Slot>, Vec<CommandRequest>) {
    let mut slots: Vec<Slot> = Vec::new();
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
            Err(answer) => {
                crate::metrics::record_malformed(line);
                slots.push(Err(*answer));
            }
        }
    }
    (slots, requests)
}

/// Every command line of a batch answered in order, the requests after their group commit.
async fn answer_lines(
    state: &AppState,
    slots: Vec<Slot>,
    requests: Vec<CommandRequest>,
) -> Result<Vec<LineAnswer>, Problem> {
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
            Ok(line_no) => outcomes.next().map(|outcome| outcome.into_line_answer(line_no)),
        })
        .collect();
    Ok(answers)
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
    answer
        .await
        .map_err(|_| shutting_down())?
        .map_err(crate::engine::problem_of)
}

fn shutting_down() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "the server is stopping; resend to its successor",
    )
}

/// A single request's reused key: `409`, with the engine's code and sentence.
fn key_reused(result: CommandResult) -> Problem {
    let code = ledger_app::KEY_REUSED_CODE;
    Problem::new(
        StatusCode::CONFLICT,
        code,
        result.message.unwrap_or_else(|| code.to_owned()),
    )
}

/// The body, once its content type is `expected` and it was read within the route's limit.
pub(crate) fn checked_body(
    headers: &HeaderMap,
    expected: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Problem> {
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

/// The answer object with the status its outcome has (docs/api.md, "HTTP API").
fn answer_response(answer: &LineAnswer) -> Response {
    let status = match answer.status {
        Status::Accepted | Status::Duplicate => StatusCode::OK,
        Status::Rejected if answer.code.as_deref() == Some("malformed") => StatusCode::BAD_REQUEST,
        Status::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let code = answer
        .code
        .clone()
        .unwrap_or_else(|| <&str>::from(answer.status).to_owned());
    let mut response = (status, Json(answer)).into_response();
    response.extensions_mut().insert(Outcome {
        code: Some(code),
        ..Outcome::default()
    });
    response
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
            read_models_position: state.read_models.position(),
            read_models_lag_events: head_position.saturating_sub(state.read_models.position()),
            queue_depth_commands: state.queue.depth() as u64,
            queue_limit_commands: state.queue.limit_commands() as u64,
            access_log_dropped_entries: state.access.dropped_entries(),
            open_connections: state.connections.count() as u64,
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
    /// The position the read models have reached (the projection runner's checkpoint):
    /// reads answer as of this position.
    pub read_models_position: u64,
    /// `head_position` − `read_models_position`: events committed and not yet in the read models.
    pub read_models_lag_events: u64,
    /// Commands waiting in the queue to be decided.
    pub queue_depth_commands: u64,
    /// The queue's limit: a request that does not fit is answered 503 `overloaded`.
    pub queue_limit_commands: u64,
    /// Access-log entries lost since the server started (docs/api.md, "The access log"): 0
    /// unless the writer fell behind by more than its channel for over ACCESS_LOG_WAIT_MS,
    /// or the database refused a batch.
    pub access_log_dropped_entries: u64,
    /// HTTP connections open now, this one included (at most MAX_OPEN_CONNECTIONS).
    pub open_connections: u64,
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

/// The query of `GET /v1/access-log`.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessLogQuery {
    /// The page starts after this row id (0 or left out: from the first row).
    pub after: Option<u64>,
    /// Rows in the page, 1 to MAX_ACCESS_LOG_PAGE (1,000); DEFAULT_ACCESS_LOG_PAGE (100) when left out.
    pub limit: Option<usize>,
}

/// `GET /v1/access-log`: a page of the access log, auditors only.
#[utoipa::path(get, path = "/v1/access-log", tag = "access",
    params(AccessLogQuery),
    responses(
        (status = 200, description = "The rows after `after`, in id order", body = AccessLogPage),
        (status = 400, description = "invalid_query: `after` or `limit` unreadable or out of range", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated: no valid bearer token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "forbidden: only the auditor role reads the access log", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    ),
    security(("bearer" = [])))]
pub async fn get_access_log(
    State(state): State<AppState>,
    query: Result<Query<AccessLogQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => {
            return Problem::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text()).into_response()
        }
    };
    let limit = query.limit.unwrap_or(DEFAULT_ACCESS_LOG_PAGE);
    if limit == 0 || limit > MAX_ACCESS_LOG_PAGE {
        let detail = format!("limit must be 1 to {MAX_ACCESS_LOG_PAGE}, not {limit}");
        return Problem::new(StatusCode::BAD_REQUEST, "invalid_query", detail).into_response();
    }
    let after = query.after.unwrap_or(0);
    match ledger_app::access::read_access_log(state.store.as_ref(), after, limit).await {
        Ok(records) => {
            let next_after = records.last().map_or(after, |record| record.id);
            let page = serde_json::json!({ "records": records, "next_after": next_after });
            Json(page).into_response()
        }
        Err(error) => Problem::from_app_code(error.code(), error.to_string()).into_response(),
    }
}

/// A page of the access log (docs/api.md, "The access log").
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessLogPage {
    /// The rows, in id order; fewer than `limit` (or none) at the end of the log.
    pub records: Vec<AccessRecordDoc>,
    /// The last row's id (`after` when the page is empty): the next page's `after`.
    pub next_after: u64,
}

/// One row of the access log, as `GET /v1/access-log` answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AccessRecord)]
pub struct AccessRecordDoc {
    /// Increasing in the order rows were written.
    pub id: u64,
    /// When the request arrived (RFC 3339, UTC).
    pub at: String,
    /// The token's name and role; null when the request had no valid token.
    pub principal: Option<CallerDoc>,
    /// Method and route, with the command type for one command: `POST /v1/commands place_order`.
    pub action: String,
    /// The account the request named.
    pub account: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The answer's code: `accepted`, a refusal code, `forbidden`, `unauthenticated`, `ok`, …
    pub code: String,
    /// From arrival to answer, in microseconds.
    pub latency_us: u64,
}

/// Who sent a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Caller)]
pub struct CallerDoc {
    pub name: String,
    /// gateway, operations, compliance, auditor or subscriber.
    pub role: String,
}
