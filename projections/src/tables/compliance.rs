//! `compliance_alerts`: the two kinds of alert compliance reviews. A large cash
//! movement is an event (`LargeCashMovementFlagged`), written by the runner with its
//! batch; a refused suitability check writes no event, so its alert comes from the
//! command outcomes the store keeps, read by [`suitability_refusals`] alone.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Pool, QueryBuilder};

use super::backend::{connection, insert_rows, Backend, Operation};
use super::checkpoints::{self, REFUSAL_ALERTS};
use super::columns::{Cell, Column, Money, OnConflict, RecordedAt, Table};
use crate::ProjectionError;

/// A large cash movement flagged by the account.
#[derive(Debug, Clone)]
pub(crate) struct LargeCashAlert {
    /// `event:<global_position>`.
    pub alert_id: String,
    pub position: u64,
    pub account_id: String,
    pub direction: &'static str,
    pub amount_cny: Decimal,
    pub threshold_cny: Decimal,
    pub bank_ref: String,
    pub recorded_at: DateTime<Utc>,
}

pub(crate) const LARGE_CASH_ALERTS: Table<LargeCashAlert> = Table {
    name: "compliance_alerts",
    on_conflict: OnConflict::Fail,
    filter: Some("kind = 'large_cash_movement'"),
    columns: &[
        Column::key("alert_id", |a| Cell::Text(&a.alert_id)),
        Column::data("global_position", |a| Cell::Count(a.position)),
        Column::data("account_id", |a| Cell::Text(&a.account_id)),
        Column::data("kind", |_| Cell::Text("large_cash_movement")),
        Column::data("direction", |a| Cell::Text(a.direction)),
        Column::data("amount", |a| Cell::Money(Money::cny(a.amount_cny))),
        Column::data("threshold", |a| Cell::Money(Money::cny(a.threshold_cny))),
        Column::data("bank_ref", |a| Cell::Text(&a.bank_ref)),
        Column::not_compared("recorded_at", |a| Cell::RecordedAt(RecordedAt(a.recorded_at))),
    ],
};

pub(crate) async fn insert_large_cash<DB: Backend>(
    conn: &mut DB::Connection,
    alerts: &[LargeCashAlert],
) -> Result<(), ProjectionError> {
    insert_rows::<DB, _>(conn, &LARGE_CASH_ALERTS, alerts).await
}

/// A command refused for suitability, with the account it named.
#[derive(Debug, Clone)]
pub(crate) struct SuitabilityRefusal {
    pub command_id: String,
    pub account_id: String,
    pub message: Option<String>,
    pub recorded_at: RecordedAt,
}

/// The alert of a refusal.
struct RefusalAlert {
    /// `command:<command_id>`.
    alert_id: String,
    refusal: SuitabilityRefusal,
}

const REFUSAL_ALERT_ROWS: Table<RefusalAlert> = Table {
    name: "compliance_alerts",
    // The alert's key is the command's: a rerun, or a crash mid-way, adds nothing twice.
    on_conflict: OnConflict::Ignore,
    filter: Some("kind = 'suitability_refused'"),
    columns: &[
        Column::key("alert_id", |a| Cell::Text(&a.alert_id)),
        Column::data("kind", |_| Cell::Text("suitability_refused")),
        Column::data("account_id", |a| Cell::Text(&a.refusal.account_id)),
        Column::data("command_id", |a| Cell::Text(&a.refusal.command_id)),
        Column::data("message", |a| Cell::OptionalText(a.refusal.message.as_deref())),
        Column::not_compared("recorded_at", |a| Cell::RecordedAt(a.refusal.recorded_at)),
    ],
};

/// Every suitability refusal the store kept with its account: the one read of
/// `command_outcomes`. Refusals recorded before commands carried their account
/// (migration 0006) cannot be alerted and are left out.
async fn suitability_refusals<DB: Backend>(
    conn: &mut DB::Connection,
) -> Result<Vec<SuitabilityRefusal>, ProjectionError> {
    let mut query = QueryBuilder::<DB>::new(
        "SELECT command_id, account_id, message, recorded_at FROM command_outcomes \
         WHERE code = 'suitability' AND account_id IS NOT NULL",
    );
    DB::fetch_all(conn, &mut query)
        .await?
        .iter()
        .map(|row| {
            Ok(SuitabilityRefusal {
                command_id: DB::text(row, "command_id")?,
                account_id: DB::text(row, "account_id")?,
                message: DB::optional_text(row, "message")?,
                recorded_at: DB::recorded_at(row, "recorded_at")?,
            })
        })
        .collect()
}

/// Raises an alert for every refused suitability check not yet alerted, and records
/// how many refusals that covered. One snapshot serves the read and both writes, so the
/// count covers exactly the refusals alerted.
pub(crate) struct AlertRefusals;

impl Operation for AlertRefusals {
    type Output = ();

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<(), ProjectionError> {
        let mut tx = pool
            .begin_with(DB::BEGIN_SNAPSHOT)
            .await
            .map_err(ProjectionError::database)?;
        let raised = alert_refusals_in::<DB>(&mut tx).await;
        ledger_eventstore::commit_or_roll_back(tx, raised, ProjectionError::database).await
    }
}

async fn alert_refusals_in<DB: Backend>(conn: &mut DB::Connection) -> Result<(), ProjectionError> {
    let refusals = suitability_refusals::<DB>(conn).await?;
    let alerts: Vec<RefusalAlert> = refusals
        .into_iter()
        .map(|refusal| RefusalAlert {
            alert_id: format!("command:{}", refusal.command_id),
            refusal,
        })
        .collect();
    insert_rows::<DB, _>(conn, &REFUSAL_ALERT_ROWS, &alerts).await?;
    checkpoints::set::<DB>(conn, REFUSAL_ALERTS, alerts.len() as u64).await
}

/// Whether the last pass of the refusal alerts saw every suitability refusal the store
/// holds now; if not, a refusal may simply not be alerted yet.
pub(crate) struct RefusalAlertsCaughtUp;

impl Operation for RefusalAlertsCaughtUp {
    type Output = bool;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<bool, ProjectionError> {
        let mut conn = connection(pool).await?;
        let covered = checkpoints::read::<DB>(&mut conn, REFUSAL_ALERTS, false).await?;
        let refusals = suitability_refusals::<DB>(&mut conn).await?;
        Ok(covered == refusals.len() as u64)
    }
}

/// Suitability refusals the store kept that have no alert, plus refusal alerts with no
/// suitability refusal behind them.
pub(crate) struct UnmatchedRefusalAlerts;

impl Operation for UnmatchedRefusalAlerts {
    type Output = u64;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<u64, ProjectionError> {
        let mut conn = connection(pool).await?;
        let refused: BTreeSet<(String, String)> = suitability_refusals::<DB>(&mut conn)
            .await?
            .into_iter()
            .map(|refusal| (refusal.command_id, refusal.account_id))
            .collect();
        let mut query = QueryBuilder::<DB>::new(REFUSAL_ALERT_ROWS.select_only(&["command_id", "account_id"]));
        let mut alerted = BTreeSet::new();
        for row in DB::fetch_all(&mut conn, &mut query).await? {
            alerted.insert((DB::text(&row, "command_id")?, DB::text(&row, "account_id")?));
        }
        Ok(refused.symmetric_difference(&alerted).count() as u64)
    }
}
