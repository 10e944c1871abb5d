//! The `ClearingDay` aggregate, one per trade date: Trading -> Closed -> Cleared -> Settled.
//!
//! `end_of_day` closes the day (no more orders or previous closes for it),
//! expires every open order of it in every account, and marks it cleared once
//! that is done; `settle` settles it. Each account's share of that work is its
//! own command, sent by the engine's end-of-day process within the same commit.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::{reject, RejectCode, Rejection};
use crate::money::MoneyFields;
use crate::rules::MarketRules;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    #[default]
    Trading,
    Closed,
    /// Every open order of the day has expired: the day's trades are final and cleared.
    Cleared,
    Settled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClearingDayCommand {
    Close { trade_date: NaiveDate },
    Clear { trade_date: NaiveDate },
    Settle { trade_date: NaiveDate },
}

/// The stored contract of the clearing day stream: every change is a new version,
/// documented in docs/events.md. The variant names are the stored `event_type`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
pub enum ClearingDayEvent {
    DayClosed { trade_date: NaiveDate },
    DayCleared { trade_date: NaiveDate },
    DaySettled { trade_date: NaiveDate },
}

impl MoneyFields for ClearingDayEvent {
    /// A clearing day's events carry no money.
    fn money_fields_mut(&mut self) -> Vec<(&'static str, &mut rust_decimal::Decimal)> {
        vec![]
    }
}

impl DomainEvent for ClearingDayEvent {
    fn event_type(&self) -> String {
        <&'static str>::from(self).to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClearingDay {
    status: DayStatus,
}

impl ClearingDay {
    pub fn status(&self) -> DayStatus {
        self.status
    }

    pub fn is_closed(&self) -> bool {
        self.status != DayStatus::Trading
    }

    pub fn decide(&self, command: ClearingDayCommand) -> Result<Vec<ClearingDayEvent>, Rejection> {
        match (command, self.status) {
            (ClearingDayCommand::Close { trade_date }, DayStatus::Trading) => {
                Ok(vec![ClearingDayEvent::DayClosed { trade_date }])
            }
            (ClearingDayCommand::Close { trade_date }, _) => reject(
                RejectCode::DayClosed,
                format!("trade date {trade_date} is already closed"),
            ),
            (ClearingDayCommand::Clear { trade_date }, DayStatus::Closed) => {
                Ok(vec![ClearingDayEvent::DayCleared { trade_date }])
            }
            (ClearingDayCommand::Clear { trade_date }, status) => reject(
                RejectCode::DayClosed,
                format!("trade date {trade_date} cannot be cleared while {status:?}"),
            ),
            (ClearingDayCommand::Settle { trade_date }, DayStatus::Cleared) => {
                Ok(vec![ClearingDayEvent::DaySettled { trade_date }])
            }
            (ClearingDayCommand::Settle { trade_date }, DayStatus::Trading | DayStatus::Closed) => reject(
                RejectCode::DayClosed,
                format!("trade date {trade_date} is still trading: run end_of_day before settle"),
            ),
            (ClearingDayCommand::Settle { trade_date }, DayStatus::Settled) => reject(
                RejectCode::DayClosed,
                format!("trade date {trade_date} is already settled"),
            ),
        }
    }
}

impl Aggregate for ClearingDay {
    const TYPE: &'static str = "ClearingDay";
    type Command = ClearingDayCommand;
    type Event = ClearingDayEvent;
    type Error = Rejection;
    type Services = MarketRules;

    async fn handle(
        &mut self,
        command: Self::Command,
        _rules: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.status = match event {
            ClearingDayEvent::DayClosed { .. } => DayStatus::Closed,
            ClearingDayEvent::DayCleared { .. } => DayStatus::Cleared,
            ClearingDayEvent::DaySettled { .. } => DayStatus::Settled,
        };
    }
}
