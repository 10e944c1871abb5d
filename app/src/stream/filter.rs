//! Which events a follower wants: some event types, some accounts, or everything, and
//! for a token limited to accounts never more than its accounts' events (the
//! information barrier holds for streams as for reads).
//!
//! A filter decides what is delivered, never where a follower stands: the position of
//! the last event examined, matched or not, is what a follower resumes after.

use std::collections::BTreeSet;

use ledger_domain::{AccountEvent, ClearingDayEvent, InstrumentEvent};
use ledger_eventstore::RecordedEvent;
use strum::VariantNames;

use crate::access::{AccessError, Principal, Read};
use crate::AppError;

/// The aggregate type of the account streams, the only ones an account filter passes.
pub const ACCOUNT_STREAM: &str = "Account";
/// Most event types or accounts one filter names: bounds the work per event.
pub const MAX_FILTER_TERMS: usize = 1_000;

/// The events a follower wants. An empty set of types means every type; `None` for
/// accounts means every stream, `Some` only the account streams named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    types: BTreeSet<String>,
    accounts: Option<BTreeSet<String>>,
}

/// Every event type the ledger writes, in the order of their enums.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    AccountEvent::VARIANTS
        .iter()
        .chain(InstrumentEvent::VARIANTS)
        .chain(ClearingDayEvent::VARIANTS)
        .copied()
}

impl EventFilter {
    /// Events of these types (all when empty) of these accounts (all streams when empty).
    /// An event type the ledger does not write is refused, so a misspelling is said
    /// instead of matching nothing forever.
    pub fn new(types: &[String], accounts: &[String]) -> Result<Self, AppError> {
        if types.len() > MAX_FILTER_TERMS || accounts.len() > MAX_FILTER_TERMS {
            return Err(AppError::InvalidInput(format!(
                "a filter names at most {MAX_FILTER_TERMS} event types and {MAX_FILTER_TERMS} accounts"
            )));
        }
        if let Some(unknown) = types.iter().find(|t| !event_types().any(|known| known == t.as_str())) {
            return Err(AppError::InvalidInput(format!(
                "unknown event type {unknown:?}; the event types are: {}",
                event_types().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(Self {
            types: types.iter().cloned().collect(),
            accounts: (!accounts.is_empty()).then(|| accounts.iter().cloned().collect()),
        })
    }

    /// This filter as `principal` may follow it: unchanged for a token of every account;
    /// for a token limited to accounts, its accounts (or those of them the filter names).
    /// Naming an account outside the token's is refused, not silently dropped.
    pub fn limited_to(self, principal: &Principal) -> Result<Self, AppError> {
        let Some(allowed) = &principal.accounts else {
            return Ok(self);
        };
        let accounts = match self.accounts {
            None => allowed.iter().cloned().collect(),
            Some(named) => {
                if let Some(outside) = named.iter().find(|a| !principal.may_see_account(a)) {
                    return Err(AccessError::Forbidden {
                        principal: principal.name.clone(),
                        role: principal.role,
                        what: format!(
                            "{} of account {outside}",
                            crate::access::Action::Read(Read::EventStream)
                        ),
                    }
                    .into());
                }
                named
            }
        };
        Ok(Self {
            types: self.types,
            accounts: Some(accounts),
        })
    }

    /// Whether `event` is one the follower wants.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let type_matches = self.types.is_empty() || self.types.contains(&event.event_type);
        let account_matches = self.accounts.as_ref().is_none_or(|accounts| {
            event.stream.aggregate_type == ACCOUNT_STREAM && accounts.contains(&event.stream.aggregate_id)
        });
        type_matches && account_matches
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use ledger_eventstore::{EventMetadata, StreamId};

    use super::*;
    use crate::access::Role;

    fn event(aggregate_type: &str, id: &str, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            global_position: 1,
            stream: StreamId::new(aggregate_type, id),
            sequence: 1,
            event_type: event_type.to_owned(),
            event_version: 1,
            payload: serde_json::json!({}),
            metadata: EventMetadata {
                command_id: "C1".to_owned(),
                correlation_id: "C1".to_owned(),
                causation_id: "C1".to_owned(),
                actor: "test".to_owned(),
                recorded_at: Utc::now(),
                business_date: None,
            },
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn subscriber(accounts: Option<&[&str]>) -> Principal {
        Principal {
            name: "feed".to_owned(),
            role: Role::Subscriber,
            accounts: accounts.map(strings),
        }
    }

    #[test]
    fn no_terms_match_everything() {
        let all = EventFilter::new(&[], &[]).unwrap();
        assert!(all.matches(&event("ClearingDay", "2024-03-04", "DayClosed")));
        assert!(all.matches(&event("Account", "A1", "FillBooked")));
    }

    #[test]
    fn types_and_accounts_both_must_match() {
        let filter = EventFilter::new(&strings(&["FillBooked"]), &strings(&["A1"])).unwrap();
        assert!(filter.matches(&event("Account", "A1", "FillBooked")));
        assert!(!filter.matches(&event("Account", "A2", "FillBooked")));
        assert!(!filter.matches(&event("Account", "A1", "CashDeposited")));
        assert!(
            !filter.matches(&event("Instrument", "A1", "FillBooked")),
            "only account streams"
        );
    }

    #[test]
    fn an_unknown_type_is_refused_with_the_known_ones() {
        let error = EventFilter::new(&strings(&["FillBookd"]), &[]).unwrap_err();
        assert_eq!(error.code(), "invalid_input");
        assert!(error.to_string().contains("FillBooked"), "{error}");
    }

    #[test]
    fn a_limited_token_follows_its_accounts_only() {
        let limited = subscriber(Some(&["A1"]));
        let all = EventFilter::new(&[], &[]).unwrap().limited_to(&limited).unwrap();
        assert!(all.matches(&event("Account", "A1", "FillBooked")));
        assert!(!all.matches(&event("Account", "A2", "FillBooked")));
        assert!(!all.matches(&event("ClearingDay", "2024-03-04", "DayClosed")));
        let outside = EventFilter::new(&[], &strings(&["A2"])).unwrap().limited_to(&limited);
        assert_eq!(outside.unwrap_err().code(), "forbidden");
        let unlimited = EventFilter::new(&[], &[])
            .unwrap()
            .limited_to(&subscriber(None))
            .unwrap();
        assert!(unlimited.matches(&event("ClearingDay", "2024-03-04", "DayClosed")));
    }

    #[test]
    fn event_types_are_unique() {
        let all: Vec<_> = event_types().collect();
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
        assert!(all.contains(&"FillBooked") && all.contains(&"DayClosed"));
    }
}
