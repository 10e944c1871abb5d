//! What a batch of events does to the tables, derived without a database: the events
//! each account's state must apply, and the rows the events add or change. The runner
//! writes these changes; the audit (`ExpectedRows`) folds the same changes into the
//! rows the tables should hold, so the two cannot disagree about a rule.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use ledger_domain::account::{Account, AccountEvent};
use ledger_domain::ids::OrderId;
use ledger_domain::journal::postings;
use ledger_eventstore::codec::decode_raw;
use ledger_eventstore::RawEvent;

use super::compliance::LargeCashAlert;
use super::journal::JournalLine;
use super::obligations::{ObligationKey, ObligationSums};
use super::orders::{OrderChange, OrderRow, OrderWrites};
use super::trades::TradeRow;
use crate::ProjectionError;

/// Which accounts a batch touches, their events in order, and the other rows it changes.
#[derive(Default)]
pub(crate) struct Changes {
    pub events_by_account: BTreeMap<String, Vec<AccountEvent>>,
    pub rows: RowWrites,
}

/// The rows of a batch, sorted by table as they come, in event order within each: the
/// form they are written in. A rebuild holds a whole batch's rows (over 300,000 for
/// 100,000 of the demo's events); kept as one `Vec<RowChange>`, each row took the size of
/// the largest variant, the rows were copied again into lists like these to be written,
/// and the one large buffer re-grew into fresh pages (docs/performance.md).
#[derive(Default)]
pub(crate) struct RowWrites {
    pub trades: Vec<TradeRow>,
    pub orders: OrderWrites,
    pub alerts: Vec<LargeCashAlert>,
    pub journal: Vec<JournalLine>,
}

impl RowWrites {
    fn add(&mut self, row: RowChange) {
        match row {
            RowChange::Trade(trade) => self.trades.push(trade),
            RowChange::OrderPlaced(order) => self.orders.place(order),
            RowChange::Order(change) => self.orders.change(&change),
            RowChange::Alert(alert) => self.alerts.push(alert),
            RowChange::Journal(line) => self.journal.push(line),
        }
    }

    /// The trades summed per (trade date, account, instrument).
    pub(crate) fn obligations(&self) -> BTreeMap<ObligationKey, ObligationSums> {
        let mut sums: BTreeMap<ObligationKey, ObligationSums> = BTreeMap::new();
        for trade in &self.trades {
            sums.entry(trade.obligation_key()).or_default().add_trade(trade);
        }
        sums
    }
}

/// A row an event adds or changes beside the balances and positions.
pub(crate) enum RowChange {
    Trade(TradeRow),
    OrderPlaced(OrderRow),
    Order(OrderChange),
    Alert(LargeCashAlert),
    Journal(JournalLine),
}

impl Changes {
    /// Adds the changes of one event read as stored (other aggregates' events change nothing).
    pub(crate) fn add_encoded(&mut self, raw: &RawEvent) -> Result<(), ProjectionError> {
        if raw.stream.aggregate_type == Account::TYPE {
            self.add(Placed::of_raw(raw), decode_raw(raw)?);
        }
        Ok(())
    }

    fn add(&mut self, placed: Placed<'_>, event: AccountEvent) {
        for row in row_changes(&placed, &event) {
            self.rows.add(row);
        }
        self.events_by_account
            .entry(placed.account_id.to_owned())
            .or_default()
            .push(event);
    }

    /// Applies the events to the states (a missing one starts empty); returns the accounts
    /// they touched.
    pub(crate) fn apply_to(&mut self, states: &mut BTreeMap<String, Account>) -> Vec<String> {
        apply_account_events(std::mem::take(&mut self.events_by_account), states)
    }
}

/// Each account's events among these (read as stored), in order, and nothing else: what
/// a state needs.
pub(crate) fn account_events_of(events: &[RawEvent]) -> Result<BTreeMap<String, Vec<AccountEvent>>, ProjectionError> {
    let mut events_by_account: BTreeMap<String, Vec<AccountEvent>> = BTreeMap::new();
    for raw in events.iter().filter(|e| e.stream.aggregate_type == Account::TYPE) {
        events_by_account
            .entry(raw.stream.aggregate_id.clone())
            .or_default()
            .push(decode_raw(raw)?);
    }
    Ok(events_by_account)
}

/// Where an account event sits in the log: what the rows it adds say of it.
pub(crate) struct Placed<'a> {
    position: u64,
    account_id: &'a str,
    event_type: &'a str,
    recorded_at: DateTime<Utc>,
}

impl<'a> Placed<'a> {
    pub(crate) fn of_raw(raw: &'a RawEvent) -> Self {
        Placed {
            position: raw.global_position,
            account_id: &raw.stream.aggregate_id,
            event_type: &raw.event_type,
            recorded_at: raw.metadata.recorded_at,
        }
    }
}

/// Applies each account's events to its state (a missing one starts empty); returns the
/// accounts touched.
pub(crate) fn apply_account_events(
    events_by_account: BTreeMap<String, Vec<AccountEvent>>,
    states: &mut BTreeMap<String, Account>,
) -> Vec<String> {
    let mut touched = Vec::with_capacity(events_by_account.len());
    for (account_id, events) in events_by_account {
        let account = states.entry(account_id.clone()).or_default();
        for event in events {
            account.apply(event);
        }
        touched.push(account_id);
    }
    touched
}

/// The rows one account event adds or changes, in the order they are written.
pub(crate) fn row_changes(placed: &Placed<'_>, event: &AccountEvent) -> impl Iterator<Item = RowChange> {
    event_row_changes(placed, event)
        .into_iter()
        .chain(journal_lines(placed, event))
}

/// The double-entry lines of one event, numbered from 1.
fn journal_lines(placed: &Placed<'_>, event: &AccountEvent) -> Vec<RowChange> {
    postings(placed.account_id, event)
        .into_iter()
        .enumerate()
        .map(|(line, posting)| {
            RowChange::Journal(JournalLine {
                position: placed.position,
                line: line as u64 + 1,
                account_id: placed.account_id.to_owned(),
                event_type: placed.event_type.to_owned(),
                ledger_account: posting.account,
                amount_cny: posting.amount_cny,
            })
        })
        .collect()
}

fn event_row_changes(placed: &Placed<'_>, event: &AccountEvent) -> Vec<RowChange> {
    let account_id = placed.account_id.to_owned();
    let position = placed.position;
    let status = |order_id: &OrderId, status| {
        RowChange::Order(OrderChange::Status {
            account_id: account_id.clone(),
            order_id: order_id.to_string(),
            status,
            position,
        })
    };
    match event {
        AccountEvent::OrderPlaced {
            order_id,
            instrument,
            side,
            quantity,
            limit_price,
            trade_date,
            ..
        } => vec![RowChange::OrderPlaced(OrderRow {
            account_id: account_id.clone(),
            order_id: order_id.to_string(),
            instrument: instrument.to_string(),
            side: side.as_str(),
            quantity: *quantity,
            limit_price: *limit_price,
            trade_date: *trade_date,
            status: "open",
            filled_quantity: 0,
            as_of_position: position,
        })],
        AccountEvent::FillBooked { .. } => fill_row_changes(placed, event),
        AccountEvent::CancelRequested { order_id } => vec![status(order_id, "cancel_requested")],
        AccountEvent::OrderCompleted { order_id, .. } => vec![status(order_id, "filled")],
        AccountEvent::OrderCanceled { order_id, .. } => vec![status(order_id, "canceled")],
        AccountEvent::OrderRejected { order_id, .. } => vec![status(order_id, "rejected")],
        AccountEvent::OrderExpired { order_id, .. } => vec![status(order_id, "expired")],
        AccountEvent::LargeCashMovementFlagged { .. } => large_cash_alert(placed, event).into_iter().collect(),
        _ => vec![],
    }
}

/// A fill books a trade and fills its order.
fn fill_row_changes(placed: &Placed<'_>, event: &AccountEvent) -> Vec<RowChange> {
    let AccountEvent::FillBooked {
        order_id,
        exec_id,
        instrument,
        side,
        trade_date,
        quantity,
        price,
        value_cny,
        fees,
        ..
    } = event
    else {
        return vec![];
    };
    let account_id = placed.account_id.to_owned();
    let position = placed.position;
    let net_cash_cny = fees.net_cash_cny(*side, *value_cny);
    vec![
        RowChange::Order(OrderChange::Filled {
            account_id: account_id.clone(),
            order_id: order_id.to_string(),
            quantity: *quantity,
            position,
        }),
        RowChange::Trade(TradeRow {
            position,
            account_id,
            order_id: order_id.to_string(),
            exec_id: exec_id.to_string(),
            instrument: instrument.to_string(),
            side: *side,
            trade_date: *trade_date,
            quantity: *quantity,
            price: *price,
            value_cny: *value_cny,
            fees: *fees,
            net_cash_cny,
        }),
    ]
}

fn large_cash_alert(placed: &Placed<'_>, event: &AccountEvent) -> Option<RowChange> {
    let AccountEvent::LargeCashMovementFlagged {
        direction,
        amount_cny,
        threshold_cny,
        bank_ref,
    } = event
    else {
        return None;
    };
    let position = placed.position;
    Some(RowChange::Alert(LargeCashAlert {
        alert_id: format!("event:{position}"),
        position,
        account_id: placed.account_id.to_owned(),
        direction: direction.into(),
        amount_cny: *amount_cny,
        threshold_cny: *threshold_cny,
        bank_ref: bank_ref.to_string(),
        recorded_at: placed.recorded_at,
    }))
}
