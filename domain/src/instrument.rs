//! The `Instrument` aggregate: reference data of one listed security
//! (name, board, product risk level) and its previous close per trade date.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{reject, RejectCode, Rejection};
use crate::ids::InstrumentCode;
/// Kept here for the old path `ledger_domain::instrument::Board`; it lives in `market`.
pub use crate::market::Board;
use crate::money::{is_on_tick, MoneyFields};
use crate::rules::MarketRules;
use crate::well_formed;

/// Lowest and highest risk level of a customer or a product.
pub const RISK_LEVELS: std::ops::RangeInclusive<u8> = 1..=5;

/// What the account needs to know of an instrument to check an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentInfo {
    pub code: InstrumentCode,
    pub name: String,
    pub board: Board,
    pub risk_level: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InstrumentCommand {
    /// Lists the instrument, or updates its reference data (a rename, a move to the ST board).
    List(InstrumentInfo),
    /// Sets the previous close that a trade date's price limits are computed from.
    /// `day_closed` is the state of that trade date's clearing day, looked up by the caller.
    SetPrevClose {
        trade_date: NaiveDate,
        price: Decimal,
        day_closed: bool,
    },
}

/// The stored contract of the instrument stream: every change is a new version,
/// documented in docs/events.md. The variant names are the stored `event_type`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
pub enum InstrumentEvent {
    InstrumentListed(InstrumentInfo),
    InstrumentUpdated(InstrumentInfo),
    PrevCloseSet { trade_date: NaiveDate, price: Decimal },
}

impl MoneyFields for InstrumentEvent {
    fn money_fields_mut(&mut self) -> Vec<(&'static str, &mut Decimal)> {
        match self {
            InstrumentEvent::InstrumentListed(_) | InstrumentEvent::InstrumentUpdated(_) => vec![],
            InstrumentEvent::PrevCloseSet { price, .. } => vec![("price", price)],
        }
    }
}

impl DomainEvent for InstrumentEvent {
    fn event_type(&self) -> String {
        <&'static str>::from(self).to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Instrument {
    info: Option<InstrumentInfo>,
    prev_close_by_date: BTreeMap<NaiveDate, Decimal>,
}

impl Instrument {
    pub fn info(&self) -> Option<&InstrumentInfo> {
        self.info.as_ref()
    }

    /// The earliest trade date with a previous close: the first day this instrument trades.
    pub fn first_priced_date(&self) -> Option<NaiveDate> {
        self.prev_close_by_date.keys().next().copied()
    }

    pub fn prev_close(&self, trade_date: NaiveDate) -> Option<Decimal> {
        self.prev_close_by_date.get(&trade_date).copied()
    }

    /// The close of `trade_date`, known as the previous close of the next trade date that has one.
    pub fn close_of(&self, trade_date: NaiveDate) -> Option<Decimal> {
        self.prev_close_by_date
            .range(trade_date.succ_opt()?..)
            .next()
            .map(|(_, price)| *price)
    }

    /// Decides the events of a command without changing the state; their prices are
    /// spelled canonically (`money::canonical_fen`).
    pub fn decide(&self, command: InstrumentCommand, rules: &MarketRules) -> Result<Vec<InstrumentEvent>, Rejection> {
        let events = match command {
            InstrumentCommand::List(info) => self.decide_list(info),
            InstrumentCommand::SetPrevClose {
                trade_date,
                price,
                day_closed,
            } => self.decide_set_prev_close(trade_date, price, day_closed, rules),
        }?;
        Ok(events.into_iter().map(MoneyFields::with_canonical_money).collect())
    }

    fn decide_list(&self, info: InstrumentInfo) -> Result<Vec<InstrumentEvent>, Rejection> {
        well_formed::listing(&info.name, info.risk_level)?;
        Ok(match &self.info {
            None => vec![InstrumentEvent::InstrumentListed(info)],
            Some(current) if *current == info => vec![],
            Some(_) => vec![InstrumentEvent::InstrumentUpdated(info)],
        })
    }

    fn decide_set_prev_close(
        &self,
        trade_date: NaiveDate,
        price: Decimal,
        day_closed: bool,
        rules: &MarketRules,
    ) -> Result<Vec<InstrumentEvent>, Rejection> {
        let Some(info) = &self.info else {
            return reject(RejectCode::UnknownInstrument, "the instrument is not listed");
        };
        well_formed::price_in_bounds("price", price, rules)?;
        if !is_on_tick(price, rules.price_tick) {
            return reject(
                RejectCode::PriceTick,
                format!("price {price} is not a multiple of the tick {}", rules.price_tick),
            );
        }
        if day_closed {
            return reject(
                RejectCode::DayClosed,
                format!("trade date {trade_date} is already closed"),
            );
        }
        if self.prev_close(trade_date) == Some(price) {
            return Ok(vec![]);
        }
        debug_assert!(info.code.as_str().len() == 9);
        Ok(vec![InstrumentEvent::PrevCloseSet { trade_date, price }])
    }
}

impl Aggregate for Instrument {
    const TYPE: &'static str = "Instrument";
    type Command = InstrumentCommand;
    type Event = InstrumentEvent;
    type Error = Rejection;
    type Services = MarketRules;

    async fn handle(
        &mut self,
        command: Self::Command,
        rules: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, rules)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            InstrumentEvent::InstrumentListed(info) | InstrumentEvent::InstrumentUpdated(info) => {
                self.info = Some(info)
            }
            InstrumentEvent::PrevCloseSet { trade_date, price } => {
                self.prev_close_by_date.insert(trade_date, price);
            }
        }
    }
}
