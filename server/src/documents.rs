//! The reads that are documents rather than rows of the read models: the events of the
//! log (personal data masked for the caller's role), a customer's statement,
//! `verify` run as a job ([`crate::jobs`]), and a reconciliation of the bank's and the
//! depository's files.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ledger_app::access::{Principal, Read, Role};
use ledger_app::stream::{envelope_for, CloudEvent};
use ledger_app::{StatementFormat, StatementRequest};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::access::Outcome;
use crate::jobs::{JobView, MAX_KEPT_VERIFY_JOBS};
use crate::problem::Problem;
use crate::reads::{admit, app_problem, date_of, invalid_query, outcome_of, page_limit, with_account, Consistency};
use crate::AppState;

/// Most events of a page of `GET /v1/events`.
pub const MAX_EVENTS_PAGE: usize = 1_000;

/// The query of `GET /v1/events`.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The page starts after this global position (0 or left out: from the first event).
    pub after: Option<u64>,
    /// Events in the page, 1 to MAX_EVENTS_PAGE (1,000); DEFAULT_READ_PAGE (100) when left out.
    pub limit: Option<usize>,
}

/// `GET /v1/events`: the log, a page at a time, personal data masked for the caller's role.
#[utoipa::path(get, path = "/v1/events", tag = "reads",
    params(EventsQuery, Consistency),
    responses(
        (status = 200, description = "`{\"events\":[…],\"next_after\":P}`: events after `after` in log order, each as a line of `ledger events --json`; `next_after` is the last one's position (`after` when none)", body = Object),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let query = match admit(&state, &principal, (Read::Events, None), consistency, query).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    let limit = match page_limit(query.limit, MAX_EVENTS_PAGE) {
        Ok(limit) => limit,
        Err(problem) => return problem.into_response(),
    };
    let after = query.after.unwrap_or(0);
    let store = state.store.as_ref();
    let read = async {
        let head = ledger_app::head_position(store).await?;
        ledger_app::events_after(store, after, head, limit).await
    };
    let events = match read.await {
        Ok(events) => events,
        Err(error) => return app_problem(&error).into_response(),
    };
    // Each event as `ledger events --json` prints it, the payload as the caller's role may see it.
    let source = state.config.events.source.as_str();
    let shown: Vec<CloudEvent<'_>> = events
        .iter()
        .map(|event| envelope_for(event, source, Some(principal.role)))
        .collect();
    let next_after = events.last().map_or(after, |event| event.global_position);
    Json(EventsPage {
        events: shown,
        next_after,
    })
    .into_response()
}

/// A page of `GET /v1/events`.
#[derive(serde::Serialize)]
struct EventsPage<'a> {
    events: Vec<CloudEvent<'a>>,
    next_after: u64,
}

/// The query of `GET /v1/accounts/{account_id}/statement`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// The first trade date of the period, YYYY-MM-DD.
    pub from: String,
    /// The last trade date of the period, YYYY-MM-DD (clamped to the last date the ledger has reached).
    pub to: String,
    /// `html` (the default), `csv`, `pdf` or `json`.
    pub format: Option<String>,
}

/// `GET /v1/accounts/{account_id}/statement`: a customer's statement.
#[utoipa::path(get, path = "/v1/accounts/{account_id}/statement", tag = "reads",
    params(("account_id" = String, Path, description = "The account"), StatementQuery, Consistency),
    responses(
        (status = 200, description = "The statement: `text/html`, `text/csv` (UTF-8 with a byte-order mark), `application/pdf`, or `application/json` (the statement's fields)", content(
            (String = "text/html"), (String = "text/csv"), (String = "application/pdf"), (Object = "application/json"))),
        (status = 400, description = "invalid_query (a bad date or format, a period ending before it starts), min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown_account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "period_not_reached: the period starts after the last business date the ledger has reached", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "pdf_font_missing, or the ledger failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn statement(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<String>, PathRejection>,
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<StatementQuery>, QueryRejection>,
) -> Response {
    let Ok(Path(account)) = path else {
        return invalid_query("the account id cannot be read").into_response();
    };
    let query = match admit(
        &state,
        &principal,
        (Read::Statements, Some(&account)),
        consistency,
        query,
    )
    .await
    {
        Ok(query) => query,
        Err(response) => return response,
    };
    let request = statement_request(&account, &query, principal.role);
    let (request, content_type) = match request {
        Ok(request) => request,
        Err(problem) => return with_account(problem, outcome_of(Some(&account))),
    };
    let made = ledger_app::statement(state.store.as_ref(), &state.rules, &state.config, request).await;
    let mut response = match made {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Err(error) => app_problem(&error).into_response(),
    };
    let code = response.extensions().get::<Outcome>().and_then(|o| o.code.clone());
    response.extensions_mut().insert(Outcome {
        code,
        ..outcome_of(Some(&account))
    });
    response
}

fn statement_request<'a>(
    account: &'a str,
    query: &StatementQuery,
    shown_to: Role,
) -> Result<(StatementRequest<'a>, &'static str), Problem> {
    let (format, content_type) = match query.format.as_deref().unwrap_or("html") {
        "html" => (StatementFormat::Html, "text/html; charset=utf-8"),
        "csv" => (StatementFormat::Csv, "text/csv; charset=utf-8"),
        "pdf" => (StatementFormat::Pdf, "application/pdf"),
        "json" => (StatementFormat::Json, "application/json"),
        other => {
            return Err(invalid_query(format!(
                "format must be html, csv, pdf or json, not {other:?}"
            )))
        }
    };
    let request = StatementRequest {
        account_id: account,
        from: date_of(&query.from, "from")?,
        to: date_of(&query.to, "to")?,
        format,
        shown_to: Some(shown_to),
    };
    Ok((request, content_type))
}

/// `POST /v1/verify`: starts a verify job.
#[utoipa::path(post, path = "/v1/verify", tag = "reads",
    responses(
        (status = 202, description = "Started: the job, `running`; read it at the `Location`", body = JobView,
            headers(("Location" = String, description = "`/v1/verify/{job_id}`"))),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: auditors only", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "verify_running: a job is running (MAX_RUNNING_VERIFY_JOBS); its id is in `detail`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn start_verify(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> Response {
    if let Err(error) = principal.authorize_read(Read::Verify, None) {
        return crate::access::forbidden(&error, Outcome::default());
    }
    match state
        .verify_jobs
        .start(std::sync::Arc::clone(&state.store), &principal.name)
    {
        Ok(job) => {
            let location = format!("/v1/verify/{}", job.job_id);
            let mut response = (StatusCode::ACCEPTED, Json(job)).into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Err(running) => Problem::new(
            StatusCode::CONFLICT,
            "verify_running",
            format!(
                "verify job {running} is running; read it at /v1/verify/{running} and start another once it is done"
            ),
        )
        .into_response(),
    }
}

/// `GET /v1/verify/{job_id}`: a verify job's state and, once done, its report.
#[utoipa::path(get, path = "/v1/verify/{job_id}", tag = "reads",
    params(("job_id" = u64, Path, description = "The job's id, from `POST /v1/verify`")),
    responses(
        (status = 200, description = "The job: `running`, `done` with its report, or `failed` with its error", body = JobView),
        (status = 400, description = "invalid_query: the id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: auditors only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown_job: no such job, or one forgotten (MAX_KEPT_VERIFY_JOBS)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_verify(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<u64>, PathRejection>,
) -> Response {
    if let Err(error) = principal.authorize_read(Read::Verify, None) {
        return crate::access::forbidden(&error, Outcome::default());
    }
    let Ok(Path(id)) = path else {
        return invalid_query("the job id must be a number").into_response();
    };
    match state.verify_jobs.get(id) {
        Some(job) => Json(job).into_response(),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no verify job {id} is kept (the server keeps the last {MAX_KEPT_VERIFY_JOBS} finished ones until it stops)"),
        )
        .into_response(),
    }
}

/// Largest body of `POST /v1/reconciliation`: both files as text. A line is about 40
/// bytes, so 16 MiB holds the files of a few hundred thousand accounts.
pub const MAX_RECONCILIATION_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The body of `POST /v1/reconciliation`: the two files of a trade date, as their text.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationRequest {
    /// The trade date the files are of, YYYY-MM-DD (its end of day must have run).
    pub trade_date: String,
    /// The bank's custody balances: a header line, then `account,balance` lines.
    pub bank_csv: String,
    /// The depository's holdings: a header line, then `account,instrument,quantity` lines.
    pub depository_csv: String,
}

/// `POST /v1/reconciliation`: the bank's and the depository's files against the ledger
/// at the close of their date (`ledger reconcile`).
#[utoipa::path(post, path = "/v1/reconciliation", tag = "reads",
    request_body(content = ReconciliationRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "`trade_date`, `as_of_position` (the close of the date) and `breaks` (docs/api.md, `ledger reconcile --json`); the breaks are stored for the date, replacing earlier ones", body = Object),
        (status = 400, description = "invalid_json (not the body above), invalid_query (not a date), invalid_input (a file line that cannot be read, named)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: operations and auditors only, and no token limited to accounts", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "day_not_closed: the date's end of day has not run", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "too_large (MAX_RECONCILIATION_BODY_BYTES)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reconciliation(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(error) = principal.authorize_read(Read::ReconciliationBreaks, None) {
        return crate::access::forbidden(&error, Outcome::default());
    }
    let body = match crate::routes::checked_body(&headers, "application/json", body) {
        Ok(body) => body,
        Err(problem) => return problem.into_response(),
    };
    let request: ReconciliationRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return Problem::new(StatusCode::BAD_REQUEST, "invalid_json", error.to_string()).into_response(),
    };
    let date = match date_of(&request.trade_date, "trade_date") {
        Ok(date) => date,
        Err(problem) => return problem.into_response(),
    };
    let bank = request.bank_csv.as_bytes();
    let depository = request.depository_csv.as_bytes();
    match ledger_app::reconcile(state.store.as_ref(), date, bank, depository).await {
        Ok(reconciliation) => Json(reconciliation).into_response(),
        Err(error) => {
            let detail = error.to_string();
            match error.code() {
                "invalid_input" => Problem::new(StatusCode::BAD_REQUEST, "invalid_input", detail),
                "day_not_closed" => Problem::new(StatusCode::CONFLICT, "day_not_closed", detail),
                _ => app_problem(&error),
            }
            .into_response()
        }
    }
}
