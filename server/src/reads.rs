//! The read routes: balances, positions, orders, trades, the clearing report, compliance
//! alerts, statements and the events. Each checks the caller (role and, for a token
//! limited to accounts, the account it reads), reads its query, waits for `min_position`
//! when asked, and answers what one `ledger_app` function read. The read models are
//! read as they stand (`ledger_app::live`): the server's runner keeps them live.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::NaiveDate;
use ledger_app::access::{Principal, Read};
use ledger_app::live::{self, MAX_ACCOUNT_ROWS};
use ledger_app::{
    AlertFilter, AppError, OrderFilter, OrderKey, TradeFilter, MAX_ALERT_ROWS, MAX_ORDER_ROWS, MAX_TRADE_ROWS,
    ORDER_STATUSES,
};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::schemas::{AlertPage, BalanceDoc, BalancePage, OrderPage, PositionDoc, PositionPage, TradePage};

use crate::access::{forbidden, Outcome};
use crate::problem::Problem;
use crate::runner::{NotReached, MAX_MIN_POSITION_WAIT_MS};
use crate::AppState;

/// Rows of a page of balances, positions, orders, trades, alerts or events when `limit`
/// is not given.
pub const DEFAULT_READ_PAGE: usize = 100;

/// `?min_position=P`, taken by every read route.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Consistency {
    /// Answer only once the read models have reached this global position (a write's
    /// `last_position`), waiting at most MAX_MIN_POSITION_WAIT_MS (5,000 ms); past it,
    /// 503 `read_models_behind`. A position beyond the log's head is 400 `min_position_beyond_head`.
    pub min_position: Option<u64>,
}

/// What a read route does before reading: the caller may read `read` of `account`
/// (`None`: of every account), the query parses, and the read models have reached
/// `min_position`.
pub(crate) async fn admit<T>(
    state: &AppState,
    principal: &Principal,
    (read, account): (Read, Option<&str>),
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<T>, QueryRejection>,
) -> Result<T, Response> {
    let noted = || Outcome {
        account: account.map(str::to_owned),
        ..Outcome::default()
    };
    if let Err(error) = principal.authorize_read(read, account) {
        return Err(forbidden(&error, noted()));
    }
    let query = query.map_err(|rejection| with_account(invalid_query(rejection.body_text()), noted()))?;
    let Query(Consistency { min_position }) =
        consistency.map_err(|rejection| with_account(invalid_query(rejection.body_text()), noted()))?;
    if let Some(position) = min_position {
        reached(state, position)
            .await
            .map_err(|problem| with_account(problem, noted()))?;
    }
    Ok(query.0)
}

/// Waits until the read models have reached `position`, bounded.
async fn reached(state: &AppState, position: u64) -> Result<(), Problem> {
    let head = ledger_app::head_position(state.store.as_ref())
        .await
        .map_err(|error| Problem::from_app_code(error.code(), error.to_string()))?;
    if position > head {
        let detail =
            format!("min_position {position} is beyond the log's head, {head}: no write has that position yet");
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "min_position_beyond_head",
            detail,
        ));
    }
    match state.read_models.wait_for(position).await {
        Ok(_) => Ok(()),
        Err(NotReached::TimedOut(at)) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "read_models_behind",
            format!(
                "the read models are at position {at}, not yet {position}, after {MAX_MIN_POSITION_WAIT_MS} ms; \
                 ask again after Retry-After"
            ),
        )),
        Err(NotReached::Stopped) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is stopping; ask its successor",
        )),
    }
}

pub(crate) fn invalid_query(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_query", detail)
}

/// A problem's response, telling the access log the account it was about.
pub(crate) fn with_account(problem: Problem, noted: Outcome) -> Response {
    let mut response = problem.into_response();
    let code = response.extensions().get::<Outcome>().and_then(|o| o.code.clone());
    response.extensions_mut().insert(Outcome { code, ..noted });
    response
}

/// The answer to a read: JSON, or the application error as a problem.
pub(crate) fn answer<T: Serialize>(result: Result<T, AppError>, account: Option<&str>) -> Response {
    let mut response = match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => app_problem(&error).into_response(),
    };
    let code = response.extensions().get::<Outcome>().and_then(|o| o.code.clone());
    response.extensions_mut().insert(Outcome {
        code,
        command: None,
        account: account.map(str::to_owned),
    });
    response
}

/// An application error of a read as a problem: what the caller asked for that does
/// not exist is 404, what it asked wrongly 400, the database's failures as for writes.
pub(crate) fn app_problem(error: &AppError) -> Problem {
    let detail = error.to_string();
    match error.code() {
        "unknown_account" => Problem::new(StatusCode::NOT_FOUND, "unknown_account", detail),
        "invalid_input" => invalid_query(detail),
        "forbidden" => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        "period_not_reached" => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "period_not_reached", detail),
        code => Problem::from_app_code(code, detail),
    }
}

/// The page size asked for, 1 to `max`.
pub(crate) fn page_limit(limit: Option<usize>, max: usize) -> Result<usize, Problem> {
    let limit = limit.unwrap_or(DEFAULT_READ_PAGE);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(invalid_query(format!("limit must be 1 to {max}, not {limit}")))
    }
}

/// A `YYYY-MM-DD` date of the query or the path.
pub(crate) fn date_of(text: &str, name: &str) -> Result<NaiveDate, Problem> {
    // Ten characters: chrono alone would also take 2024-3-4.
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == "YYYY-MM-DD".len())
        .ok_or_else(|| invalid_query(format!("{name} must be a date YYYY-MM-DD, not {text:?}")))
}

/// A two-part page key `FIRST,SECOND` (ids hold no comma).
fn pair_of<'a>(text: &'a str, what: &str) -> Result<(&'a str, &'a str), Problem> {
    text.split_once(',').ok_or_else(|| {
        invalid_query(format!(
            "after must be {what} (the previous page's next_after), not {text:?}"
        ))
    })
}

/// One page of rows, and where the next starts.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The rows, in key order; fewer than `limit` (or none) at the end.
    pub rows: Vec<T>,
    /// The last row's key, the next page's `after`; null when the page is empty.
    pub next_after: Option<String>,
}

fn page<T: Serialize>(rows: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
    let next_after = rows.last().map(key);
    Page { rows, next_after }
}

/// The query of the pages of balances and positions.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountPageQuery {
    /// The page starts after this key, the previous page's `next_after` (an account id;
    /// for positions `ACCOUNT,INSTRUMENT`); left out: from the first.
    pub after: Option<String>,
    /// Rows in the page, 1 to MAX_ACCOUNT_ROWS (1,000); DEFAULT_READ_PAGE (100) when left out.
    pub limit: Option<usize>,
}

/// No query beyond `min_position`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct NoQuery {}

/// `GET /v1/accounts/{account_id}/balance`.
#[utoipa::path(get, path = "/v1/accounts/{account_id}/balance", tag = "reads",
    params(("account_id" = String, Path, description = "The account"), Consistency),
    responses(
        (status = 200, description = "The account's cash as the read models stand", body = BalanceDoc),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: the role may not read balances, or the token is limited to other accounts", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown_account (not opened, or not yet in the read models: send min_position)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn account_balance(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<String>, PathRejection>,
    consistency: Result<Query<Consistency>, QueryRejection>,
) -> Response {
    let Ok(Path(account)) = path else {
        return invalid_query("the account id cannot be read").into_response();
    };
    let query: Result<Query<NoQuery>, QueryRejection> = Ok(Query(NoQuery {}));
    if let Err(response) = admit(&state, &principal, (Read::Balances, Some(&account)), consistency, query).await {
        return response;
    }
    answer(
        live::account_balance(state.store.as_ref(), &account).await,
        Some(&account),
    )
}

/// `GET /v1/accounts/{account_id}/positions`.
#[utoipa::path(get, path = "/v1/accounts/{account_id}/positions", tag = "reads",
    params(("account_id" = String, Path, description = "The account"), Consistency),
    responses(
        (status = 200, description = "The account's positions (held or frozen) by instrument; `[]` when none", body = [PositionDoc]),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown_account", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn account_positions(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<String>, PathRejection>,
    consistency: Result<Query<Consistency>, QueryRejection>,
) -> Response {
    let Ok(Path(account)) = path else {
        return invalid_query("the account id cannot be read").into_response();
    };
    let query: Result<Query<NoQuery>, QueryRejection> = Ok(Query(NoQuery {}));
    if let Err(response) = admit(
        &state,
        &principal,
        (Read::Positions, Some(&account)),
        consistency,
        query,
    )
    .await
    {
        return response;
    }
    answer(
        live::account_positions(state.store.as_ref(), &account).await,
        Some(&account),
    )
}

/// `GET /v1/balances`: every account's cash, a page at a time.
#[utoipa::path(get, path = "/v1/balances", tag = "reads",
    params(AccountPageQuery, Consistency),
    responses(
        (status = 200, description = "A page of balances in account order", body = BalancePage),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden (a token limited to accounts reads them one by one)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn balances(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<AccountPageQuery>, QueryRejection>,
) -> Response {
    let query = match admit(&state, &principal, (Read::Balances, None), consistency, query).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    let limit = match page_limit(query.limit, MAX_ACCOUNT_ROWS) {
        Ok(limit) => limit,
        Err(problem) => return problem.into_response(),
    };
    let rows = live::balances_page(state.store.as_ref(), query.after.as_deref(), limit).await;
    answer(rows.map(|rows| page(rows, |row| row.account_id.clone())), None)
}

/// `GET /v1/positions`: every account's positions, a page at a time.
#[utoipa::path(get, path = "/v1/positions", tag = "reads",
    params(AccountPageQuery, Consistency),
    responses(
        (status = 200, description = "A page of positions in account and instrument order; `next_after` is `ACCOUNT,INSTRUMENT`", body = PositionPage),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden (a token limited to accounts reads them one by one)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn positions(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<AccountPageQuery>, QueryRejection>,
) -> Response {
    let query = match admit(&state, &principal, (Read::Positions, None), consistency, query).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    let checked = page_limit(query.limit, MAX_ACCOUNT_ROWS).and_then(|limit| {
        let after = query
            .after
            .as_deref()
            .map(|after| pair_of(after, "ACCOUNT,INSTRUMENT"))
            .transpose()?;
        Ok((limit, after))
    });
    let (limit, after) = match checked {
        Ok(checked) => checked,
        Err(problem) => return problem.into_response(),
    };
    let rows = live::positions_page(state.store.as_ref(), after, limit).await;
    answer(
        rows.map(|rows| page(rows, |row| format!("{},{}", row.account_id, row.instrument))),
        None,
    )
}

/// The blotter's filters of `GET /v1/orders`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only this account's orders (required of a token limited to accounts: one of its own).
    pub account: Option<String>,
    /// Only orders of this trade date, YYYY-MM-DD.
    pub date: Option<String>,
    /// `open`: orders that can still be filled (`open`, `cancel_requested`); `cancel_requested`,
    /// `filled`, `canceled`, `rejected` or `expired`: orders in that status.
    pub status: Option<String>,
    /// The previous page's `next_after`, `ACCOUNT,ORDER`.
    pub after: Option<String>,
    /// Rows in the page, 1 to MAX_ORDER_ROWS (1,000); DEFAULT_READ_PAGE (100) when left out.
    pub limit: Option<usize>,
}

impl OrdersQuery {
    fn filter(&self) -> Result<OrderFilter, Problem> {
        // `open` is the blotter's "can still be filled" (open or cancel_requested), as
        // `ledger orders --open`; any other status is matched exactly.
        let (open_only, status) = match self.status.as_deref() {
            None => (false, None),
            Some("open") => (true, None),
            Some(wanted) => match ORDER_STATUSES.iter().find(|known| **known == wanted) {
                Some(known) => (false, Some(*known)),
                None => {
                    let detail = format!("status must be one of {}, not {wanted:?}", ORDER_STATUSES.join(", "));
                    return Err(invalid_query(detail));
                }
            },
        };
        let after = self
            .after
            .as_deref()
            .map(|after| {
                pair_of(after, "ACCOUNT,ORDER").map(|(account, order)| OrderKey {
                    account_id: account.to_owned(),
                    order_id: order.to_owned(),
                })
            })
            .transpose()?;
        Ok(OrderFilter {
            account_id: self.account.clone(),
            trade_date: self.date.as_deref().map(|d| date_of(d, "date")).transpose()?,
            open_only,
            status,
            after,
            limit: page_limit(self.limit, MAX_ORDER_ROWS)?,
        })
    }
}

/// `GET /v1/orders`: the blotter's orders.
#[utoipa::path(get, path = "/v1/orders", tag = "reads",
    params(OrdersQuery, Consistency),
    responses(
        (status = 200, description = "A page of orders by account and order id; `next_after` is `ACCOUNT,ORDER`", body = OrderPage),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn orders(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<OrdersQuery>, QueryRejection>,
) -> Response {
    let account = query.as_ref().ok().and_then(|q| q.account.clone());
    let query = match admit(
        &state,
        &principal,
        (Read::Orders, account.as_deref()),
        consistency,
        query,
    )
    .await
    {
        Ok(query) => query,
        Err(response) => return response,
    };
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(problem) => return with_account(problem, outcome_of(account.as_deref())),
    };
    let rows = live::orders(state.store.as_ref(), &filter).await;
    answer(
        rows.map(|rows| page(rows, |row| format!("{},{}", row.account_id, row.order_id))),
        account.as_deref(),
    )
}

pub(crate) fn outcome_of(account: Option<&str>) -> Outcome {
    Outcome {
        account: account.map(str::to_owned),
        ..Outcome::default()
    }
}

/// The blotter's filters of `GET /v1/trades`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TradesQuery {
    /// Only this account's trades (required of a token limited to accounts: one of its own).
    pub account: Option<String>,
    /// Only trades of this trade date, YYYY-MM-DD.
    pub date: Option<String>,
    /// The previous page's `next_after`: a global position.
    pub after: Option<u64>,
    /// Rows in the page, 1 to MAX_TRADE_ROWS (1,000); DEFAULT_READ_PAGE (100) when left out.
    pub limit: Option<usize>,
}

/// `GET /v1/trades`: the blotter's trades.
#[utoipa::path(get, path = "/v1/trades", tag = "reads",
    params(TradesQuery, Consistency),
    responses(
        (status = 200, description = "A page of trades in log order; `next_after` is the last trade's global position", body = TradePage),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn trades(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<TradesQuery>, QueryRejection>,
) -> Response {
    let account = query.as_ref().ok().and_then(|q| q.account.clone());
    let query = match admit(
        &state,
        &principal,
        (Read::Trades, account.as_deref()),
        consistency,
        query,
    )
    .await
    {
        Ok(query) => query,
        Err(response) => return response,
    };
    let filter = page_limit(query.limit, MAX_TRADE_ROWS).and_then(|limit| {
        Ok(TradeFilter {
            account_id: query.account.clone(),
            trade_date: query.date.as_deref().map(|d| date_of(d, "date")).transpose()?,
            after: query.after,
            limit,
        })
    });
    let filter = match filter {
        Ok(filter) => filter,
        Err(problem) => return with_account(problem, outcome_of(account.as_deref())),
    };
    let rows = live::trades(state.store.as_ref(), &filter).await;
    answer(
        rows.map(|rows| page(rows, |row| row.global_position.to_string())),
        account.as_deref(),
    )
}

/// The query of `GET /v1/compliance/alerts`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only this account's alerts (required of a token limited to accounts: one of its own).
    pub account: Option<String>,
    /// The previous page's `next_after`: an alert id.
    pub after: Option<String>,
    /// Rows in the page, 1 to MAX_ALERT_ROWS (1,000); DEFAULT_READ_PAGE (100) when left out.
    pub limit: Option<usize>,
}

/// `GET /v1/compliance/alerts`: large cash movements and refused suitability checks.
#[utoipa::path(get, path = "/v1/compliance/alerts", tag = "reads",
    params(AlertsQuery, Consistency),
    responses(
        (status = 200, description = "A page of alerts in alert id order", body = AlertPage),
        (status = 400, description = "invalid_query, min_position_beyond_head", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "read_models_behind, database_lost, database_unreachable, contention", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn compliance_alerts(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    consistency: Result<Query<Consistency>, QueryRejection>,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Response {
    let account = query.as_ref().ok().and_then(|q| q.account.clone());
    let query = match admit(
        &state,
        &principal,
        (Read::ComplianceAlerts, account.as_deref()),
        consistency,
        query,
    )
    .await
    {
        Ok(query) => query,
        Err(response) => return response,
    };
    let limit = match page_limit(query.limit, MAX_ALERT_ROWS) {
        Ok(limit) => limit,
        Err(problem) => return with_account(problem, outcome_of(account.as_deref())),
    };
    let filter = AlertFilter {
        account_id: query.account,
        after: query.after,
        limit,
    };
    let rows = live::compliance_alerts(state.store.as_ref(), &filter).await;
    answer(
        rows.map(|rows| page(rows, |row| row.alert_id.clone())),
        account.as_deref(),
    )
}
