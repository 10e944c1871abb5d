//! The reads of a trade date as a whole, for clearing staff: the clearing report and the
//! breaks its last reconciliation stored. Neither is about one account, so a token
//! limited to accounts reads neither.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::NaiveDate;
use ledger_app::access::{Principal, Read};
use ledger_app::live;

use crate::problem::Problem;
use crate::reads::{admit, answer, date_of, invalid_query, Consistency, NoQuery};
use crate::AppState;

/// `GET /v1/clearing/{date}`: the clearing report of a trade date.
#[utoipa::path(get, path = "/v1/clearing/{date}", tag = "reads",
    params(("date" = String, Path, description = "The trade date, YYYY-MM-DD"), Consistency),
    responses(
        (status = 200, description = "`trade_date`, `day_status` and `report` (docs/api.md, `ledger clearing-report --json`)", body = Object),
        (status = 400, description = "invalid_query (not a date), min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn clearing_report(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<String>, PathRejection>,
    consistency: Result<Query<Consistency>, QueryRejection>,
) -> Response {
    match admitted_date(&state, &principal, Read::ClearingReport, path, consistency).await {
        Ok(date) => answer(live::clearing_report(state.store.as_ref(), date).await, None),
        Err(response) => response,
    }
}

/// `GET /v1/reconciliation/{date}`: the breaks the date's last reconciliation stored.
#[utoipa::path(get, path = "/v1/reconciliation/{date}", tag = "reads",
    params(("date" = String, Path, description = "The trade date, YYYY-MM-DD"), Consistency),
    responses(
        (status = 200, description = "`trade_date` and `breaks` (each `kind`, `account_id`, `instrument`, `ours`, `theirs`, as `ledger reconcile --json` prints them); empty when the date's last reconciliation found no break, or none has run", body = Object),
        (status = 400, description = "invalid_query (not a date), min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: operations and auditors only, and no token limited to accounts", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reconciliation_breaks(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<String>, PathRejection>,
    consistency: Result<Query<Consistency>, QueryRejection>,
) -> Response {
    match admitted_date(&state, &principal, Read::ReconciliationBreaks, path, consistency).await {
        Ok(date) => answer(live::stored_breaks(state.store.as_ref(), date).await, None),
        Err(response) => response,
    }
}

/// The date of the path once the caller may `read` (a read of every account) and the
/// read models have reached `min_position`; else the answer that says why not.
async fn admitted_date(
    state: &AppState,
    principal: &Principal,
    read: Read,
    path: Result<Path<String>, PathRejection>,
    consistency: Result<Query<Consistency>, QueryRejection>,
) -> Result<NaiveDate, Response> {
    let query: Result<Query<NoQuery>, QueryRejection> = Ok(Query(NoQuery {}));
    admit(state, principal, (read, None), consistency, query).await?;
    match path {
        Ok(Path(text)) => date_of(&text, "the path's date"),
        Err(rejection) => Err(invalid_query(rejection.body_text())),
    }
    .map_err(IntoResponse::into_response)
}
