//! The `Account` aggregate: one customer capital account (资金账户) holding its
//! cash, its positions and its open orders together, so that every command
//! touches one aggregate and 100% funds/position consistency holds by construction.
//!
//! One file per role: `commands` (what is asked), `events` (the stored contract),
//! `state` (the aggregate and its parts), `decide` (the checks: `&self`, so a
//! refused command cannot have changed anything), `apply` (the only place state
//! changes, trusting the event) and `snapshot` (the state as versioned plain data).

mod apply;
mod commands;
mod decide;
mod events;
mod snapshot;
mod state;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

/// Kept here for the old path `ledger_domain::account::price_limits`; it lives in `market`.
pub use crate::market::price_limits;
pub use commands::{AccountCommand, MarketSnapshot, PlaceOrder};
pub use decide::sell_fee_cover;
pub use events::{AccountEvent, CashDirection};
pub use snapshot::{AccountSnapshot, AccountSnapshotView, SnapshotError, ACCOUNT_SNAPSHOT_VERSION};
pub use state::{cost_of_sold, Account, Cash, Customer, Position};

use crate::error::Rejection;
use crate::rules::MarketRules;

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
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
        self.apply_event(event);
    }
}
