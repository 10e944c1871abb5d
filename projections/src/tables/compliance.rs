//! `compliance_alerts`: the two kinds of alert compliance reviews. A large cash
//! movement is an event (`LargeCashMovementFlagged`), written by the runner with its
//! batch; a refused suitability check writes no event, so its alert comes from the
//! command outcomes the store keeps, read through the store's API by
//! [`suitability_refusals_after`] alone.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use ledger_eventstore::{EventStore, MAX_REFUSAL_READS};
use rust_decimal::Decimal;
use sqlx::{Pool, QueryBuilder};

use ledger_domain::money::format_cny;

use super::backend::{connection, insert_rows, to_u64, Backend, Operation};
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

/// The refusal code whose refusals compliance reviews.
const SUITABILITY: &str = "suitability";

/// One page of suitability refusals that named an account, after `after_command_id`
/// in command-id order: the one read of the refusals, through the store's API (they
/// write no event). Refusals recorded before commands carried their account
/// (migration 0006) cannot be alerted and are not returned.
async fn suitability_refusals_after(
    store: &dyn EventStore,
    after_command_id: Option<&str>,
) -> Result<Vec<SuitabilityRefusal>, ProjectionError> {
    let page = store
        .refusals_naming_account(SUITABILITY, after_command_id, MAX_REFUSAL_READS)
        .await?;
    page.into_iter()
        .map(|outcome| {
            let account_id = outcome
                .account_id
                .ok_or_else(|| ProjectionError::Corrupt(format!("refusal {} names no account", outcome.command_id)))?;
            Ok(SuitabilityRefusal {
                command_id: outcome.command_id,
                account_id,
                message: outcome.message,
                recorded_at: RecordedAt(outcome.recorded_at),
            })
        })
        .collect()
}

/// Every page of suitability refusals, in command-id order.
struct RefusalPages<'a> {
    store: &'a dyn EventStore,
    after: Option<String>,
    /// Refusals returned so far.
    read: u64,
}

impl<'a> RefusalPages<'a> {
    fn new(store: &'a dyn EventStore) -> Self {
        Self {
            store,
            after: None,
            read: 0,
        }
    }

    /// The next page, or None after the last.
    async fn next(&mut self) -> Result<Option<Vec<SuitabilityRefusal>>, ProjectionError> {
        let page = suitability_refusals_after(self.store, self.after.as_deref()).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        if self
            .after
            .as_deref()
            .is_some_and(|previous| previous >= last.command_id.as_str())
        {
            return Err(ProjectionError::Corrupt(format!(
                "the store's refusals went back to {} after {:?}: pages must move forward",
                last.command_id, self.after
            )));
        }
        self.after = Some(last.command_id.clone());
        self.read += page.len() as u64;
        Ok(Some(page))
    }
}

/// Raises an alert for every refused suitability check not yet alerted, a page per
/// transaction, then records how many refusals that pass covered. Alerts are keyed by
/// the command, so a pass cut short and run again raises nothing twice; a refusal
/// recorded during a pass is covered by the next one.
pub(crate) struct AlertRefusals<'a> {
    pub store: &'a dyn EventStore,
}

impl Operation for AlertRefusals<'_> {
    type Output = ();

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<(), ProjectionError> {
        // Refusals are never removed, so an unchanged count means the last pass covered
        // them all: every read-out catches up, and most find nothing new to alert.
        let covered = checkpoints::read::<DB>(&mut *connection(pool).await?, REFUSAL_ALERTS, false).await?;
        if covered == self.store.count_refusals_naming_account(SUITABILITY).await? {
            return Ok(());
        }
        let mut pages = RefusalPages::new(self.store);
        while let Some(page) = pages.next().await? {
            let alerts: Vec<RefusalAlert> = page
                .into_iter()
                .map(|refusal| RefusalAlert {
                    alert_id: format!("command:{}", refusal.command_id),
                    refusal,
                })
                .collect();
            let mut tx = pool
                .begin_with(DB::BEGIN_WRITE)
                .await
                .map_err(ProjectionError::database)?;
            let inserted = insert_rows::<DB, _>(&mut tx, &REFUSAL_ALERT_ROWS, &alerts).await;
            ledger_eventstore::commit_or_roll_back(tx, inserted, ProjectionError::database).await?;
        }
        let mut tx = pool
            .begin_with(DB::BEGIN_WRITE)
            .await
            .map_err(ProjectionError::database)?;
        let recorded = checkpoints::set::<DB>(&mut tx, REFUSAL_ALERTS, pages.read).await;
        ledger_eventstore::commit_or_roll_back(tx, recorded, ProjectionError::database).await
    }
}

/// Whether the last pass of the refusal alerts saw every suitability refusal the store
/// holds now; if not, a refusal may simply not be alerted yet.
pub(crate) struct RefusalAlertsCaughtUp<'a> {
    pub store: &'a dyn EventStore,
}

impl Operation for RefusalAlertsCaughtUp<'_> {
    type Output = bool;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<bool, ProjectionError> {
        let covered = checkpoints::read::<DB>(&mut *connection(pool).await?, REFUSAL_ALERTS, false).await?;
        Ok(covered == self.store.count_refusals_naming_account(SUITABILITY).await?)
    }
}

/// Suitability refusals the store kept that have no alert, plus refusal alerts with no
/// suitability refusal behind them.
pub(crate) struct UnmatchedRefusalAlerts<'a> {
    pub store: &'a dyn EventStore,
}

impl Operation for UnmatchedRefusalAlerts<'_> {
    type Output = u64;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<u64, ProjectionError> {
        let mut refused = BTreeSet::new();
        let mut pages = RefusalPages::new(self.store);
        while let Some(page) = pages.next().await? {
            refused.extend(page.into_iter().map(|r| (r.command_id, r.account_id)));
        }
        let mut conn = connection(pool).await?;
        let mut query = QueryBuilder::<DB>::new(REFUSAL_ALERT_ROWS.select_only(&["command_id", "account_id"]));
        let mut alerted = BTreeSet::new();
        for row in DB::fetch_all(&mut conn, &mut query).await? {
            alerted.insert((DB::text(&row, "command_id")?, DB::text(&row, "account_id")?));
        }
        Ok(refused.symmetric_difference(&alerted).count() as u64)
    }
}

/// Most alerts one read returns: a caller pages on with [`AlertFilter::after`].
pub const MAX_ALERT_ROWS: usize = 1_000;

/// Which alerts to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFilter {
    pub account_id: Option<String>,
    /// Only alerts after this alert id: the last row of the previous page.
    pub after: Option<String>,
    /// Most rows to return; more than [`MAX_ALERT_ROWS`] reads [`MAX_ALERT_ROWS`].
    pub limit: usize,
}

/// A row of `compliance_alerts`, either kind: the fields of the other kind are null.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertRecord {
    /// `event:<global_position>` (a large cash movement) or `command:<command_id>` (a refusal).
    pub alert_id: String,
    /// `large_cash_movement` or `suitability_refused`.
    pub kind: String,
    pub account_id: String,
    /// The `LargeCashMovementFlagged` event's position.
    pub global_position: Option<u64>,
    /// The refused command.
    pub command_id: Option<String>,
    /// `deposit` or `withdrawal`.
    pub direction: Option<String>,
    pub amount_cny: Option<String>,
    pub threshold_cny: Option<String>,
    pub bank_ref: Option<String>,
    /// The refusal's message.
    pub message: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// The alerts `filter` keeps, in alert id order (the table's key, so paging is exact).
pub(crate) struct ReadAlerts<'a>(pub &'a AlertFilter);

impl Operation for ReadAlerts<'_> {
    type Output = Vec<AlertRecord>;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<Vec<AlertRecord>, ProjectionError> {
        let filter = self.0;
        let mut query = QueryBuilder::<DB>::new(
            "SELECT alert_id, kind, account_id, global_position, command_id, direction, amount, threshold, \
             bank_ref, message, recorded_at FROM compliance_alerts WHERE 1 = 1",
        );
        if let Some(account_id) = &filter.account_id {
            query.push(" AND account_id = ");
            DB::bind_cell(&mut query, Cell::Text(account_id))?;
        }
        if let Some(after) = &filter.after {
            query.push(" AND alert_id > ");
            DB::bind_cell(&mut query, Cell::Text(after))?;
        }
        query.push(" ORDER BY alert_id LIMIT ");
        DB::bind_cell(&mut query, Cell::Count(filter.limit.min(MAX_ALERT_ROWS) as u64))?;
        let rows = DB::fetch_all(&mut *connection(pool).await?, &mut query).await?;
        rows.iter()
            .map(|row| {
                let money = |column| DB::optional_money(row, column).map(|m| m.map(format_cny));
                Ok(AlertRecord {
                    alert_id: DB::text(row, "alert_id")?,
                    kind: DB::text(row, "kind")?,
                    account_id: DB::text(row, "account_id")?,
                    global_position: DB::optional_int(row, "global_position")?.map(to_u64).transpose()?,
                    command_id: DB::optional_text(row, "command_id")?,
                    direction: DB::optional_text(row, "direction")?,
                    amount_cny: money("amount")?,
                    threshold_cny: money("threshold")?,
                    bank_ref: DB::optional_text(row, "bank_ref")?,
                    message: DB::optional_text(row, "message")?,
                    recorded_at: DB::recorded_at(row, "recorded_at")?,
                })
            })
            .collect()
    }
}
