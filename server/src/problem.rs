//! Errors of a request itself, answered as `application/problem+json` (RFC 9457):
//! `type`, `title`, `status`, `detail`, and a stable `code` a program matches on.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client is asked to wait (`Retry-After`) when the queue is full or the
/// database is away: about the time a few group commits take, and what it takes a pool
/// to reconnect.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// A problem document (RFC 9457) with the ledger's stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// `urn:ledger:problem:{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The same short sentence for every problem with this code.
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong with this request, and what to do.
    pub detail: String,
    /// The stable code (docs/api.md, "HTTP API").
    pub code: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:ledger:problem:{code}"),
            title: title_of(code).to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
        }
    }

    /// The status as sent.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A failure of the database or the engine, by the application layer's code: what
    /// may pass (the database away, a lock busy) is 503 with `Retry-After`, the rest 500.
    pub fn from_app_code(code: &str, detail: impl Into<String>) -> Self {
        let status = match code {
            "database_lost" | "database_unreachable" | "contention" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, code, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        // The access log records the code.
        response.extensions_mut().insert(crate::access::Outcome {
            code: Some(self.code),
            ..Default::default()
        });
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// Every code a problem of the server has, with its title: one sentence, the same every
/// time. Other codes (the ledger's failures, from `AppError::code`) are titled
/// [`LEDGER_FAILED_TITLE`]; docs/api.md ("Statuses") lists every code here.
pub const PROBLEM_TITLES: &[(&str, &str)] = &[
    ("invalid_json", "The body is not valid JSON"),
    ("missing_idempotency_key", "No command id"),
    (
        "idempotency_key_mismatch",
        "The Idempotency-Key header and the body's command_id differ",
    ),
    (
        "idempotency_key_reused",
        "The command id was first sent with another body",
    ),
    (
        "idempotency_key_not_allowed",
        "A batch's lines carry their own command ids",
    ),
    ("invalid_header", "A header cannot be read"),
    ("unsupported_media_type", "Wrong content type"),
    ("too_large", "The body is over the limit"),
    ("unreadable_body", "The body cannot be read"),
    ("request_timeout", "The body was not received in time"),
    ("not_found", "No such route"),
    ("unauthenticated", "A valid bearer token is required"),
    ("forbidden", "The token's role or accounts do not allow this"),
    ("invalid_query", "The query string cannot be read"),
    ("method_not_allowed", "Method not allowed on this route"),
    ("overloaded", "The queue is full"),
    ("shutting_down", "The server is shutting down"),
    ("database_lost", "The connection to the database was lost"),
    ("database_unreachable", "The database cannot be reached"),
    ("contention", "Another writer held the ledger's lock too long"),
    ("unknown_account", "No such account"),
    (
        "read_models_behind",
        "The read models have not reached min_position yet",
    ),
    ("min_position_beyond_head", "min_position is beyond the log's head"),
    (
        "period_not_reached",
        "The period starts after the last date the ledger has reached",
    ),
    ("verify_running", "A verify job is running"),
    ("unknown_job", "No such verify job"),
    ("pdf_font_missing", "No font for the PDF statement"),
    ("invalid_input", "A line of a file cannot be read"),
    ("day_not_closed", "The trade date is not closed yet"),
];

/// The title of a problem whose code is a failure of the ledger.
pub const LEDGER_FAILED_TITLE: &str = "The ledger failed";

fn title_of(code: &str) -> &'static str {
    PROBLEM_TITLES
        .iter()
        .find(|(known, _)| *known == code)
        .map_or(LEDGER_FAILED_TITLE, |(_, title)| title)
}
