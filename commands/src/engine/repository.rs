//! The aggregates of one type between and during batches: a bounded cache,
//! and the working set of the batch being decided.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use cqrs_es::{Aggregate, DomainEvent};
use ledger_domain::money::MoneyFields;
use ledger_domain::Rejection;
use ledger_eventstore::codec::{decode, encode};
use ledger_eventstore::{EventStore, RecordedEvent, StreamAppend, StreamId};
use lru::LruCache;

use super::EngineError;

/// The business answer to a command: done, or refused with a reason.
pub(super) type Decision = Result<(), Rejection>;

/// An aggregate with the sequence of its last event.
pub(super) struct Loaded<A> {
    pub(super) state: A,
    pub(super) sequence: u64,
}

/// The aggregates of one type: a bounded cache between batches and the
/// working set of the batch being decided (taken out of the cache, so a failed
/// batch can simply drop them). The working set goes back into the cache in id
/// order, so which aggregates a small cache evicts, and so which reads the engine
/// makes, depend on the commands alone (the simulation replays a seed exactly).
pub(super) struct Repository<A: Aggregate> {
    cache: LruCache<String, Loaded<A>>,
    working: BTreeMap<String, Loaded<A>>,
}

impl<A: Aggregate> Repository<A> {
    pub(super) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            cache: LruCache::new(capacity),
            working: BTreeMap::new(),
        }
    }

    pub(super) async fn load(&mut self, store: &dyn EventStore, id: &str) -> Result<&mut Loaded<A>, EngineError> {
        match self.working.entry(id.to_owned()) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let loaded = match self.cache.pop(id) {
                    Some(loaded) => loaded,
                    None => load_from_store::<A>(store, id).await?,
                };
                Ok(entry.insert(loaded))
            }
        }
    }

    pub(super) fn commit_working_set(&mut self) {
        for (id, loaded) in std::mem::take(&mut self.working) {
            self.cache.put(id, loaded);
        }
    }

    pub(super) fn drop_working_set(&mut self) {
        self.working.clear();
    }

    pub(super) fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Brings the cached aggregate of the event's stream, if any, up to the event
    /// (one another writer appended): the next in sequence is applied, one applied
    /// already is skipped, and after a gap the aggregate is evicted, to be loaded
    /// afresh when next needed.
    pub(super) fn follow(&mut self, recorded: &RecordedEvent) -> Result<(), EngineError> {
        let id = recorded.stream.aggregate_id.as_str();
        let Some(cached) = self.cache.peek_mut(id) else {
            return Ok(());
        };
        if recorded.sequence <= cached.sequence {
            return Ok(());
        }
        if recorded.sequence == cached.sequence + 1 {
            let event = decode::<A::Event>(recorded)?;
            cached.state.apply(event);
            cached.sequence = recorded.sequence;
        } else {
            self.cache.pop(id);
        }
        Ok(())
    }
}

async fn load_from_store<A: Aggregate>(store: &dyn EventStore, id: &str) -> Result<Loaded<A>, EngineError> {
    let mut state = A::default();
    let mut sequence = 0;
    for recorded in store.load_stream(&StreamId::new(A::TYPE, id)).await? {
        state.apply(decode::<A::Event>(&recorded)?);
        sequence = recorded.sequence;
    }
    Ok(Loaded { state, sequence })
}

/// Decides a command on a loaded aggregate: on success the events are applied
/// and staged for the stream; a refusal leaves the aggregate as it was. Either
/// way the stream is staged at the sequence it was decided on, with no events
/// when there are none: the append then checks a refusal's stream as it checks
/// an acceptance's, so a refusal decided on state another writer has moved
/// since is caught (and decided again) instead of recorded.
pub(super) fn decide_and_stage<A>(
    loaded: &mut Loaded<A>,
    id: &str,
    decide: impl FnOnce(&A) -> Result<Vec<A::Event>, Rejection>,
    appends: &mut Vec<StreamAppend>,
) -> Result<Decision, EngineError>
where
    A: Aggregate,
    A::Event: MoneyFields,
{
    let decided = decide(&loaded.state);
    let events = decided.as_ref().map(Vec::as_slice).unwrap_or_default();
    let encoded = events
        .iter()
        .map(|event| {
            assert_canonical_money(event);
            encode(event)
        })
        .collect::<Result<Vec<_>, _>>()?;
    appends.push(StreamAppend {
        stream: StreamId::new(A::TYPE, id),
        expected_sequence: loaded.sequence,
        events: encoded,
    });
    let events = match decided {
        Ok(events) => events,
        Err(rejection) => return Ok(Err(rejection)),
    };
    loaded.sequence += events.len() as u64;
    for event in events {
        loaded.state.apply(event);
    }
    Ok(Ok(()))
}

/// Money in a new event has one spelling (`money::canonical_fen`: two decimals, no
/// negative zero), which the domain gives it; an event without it must not reach the
/// log, where it would make the chain depend on how the account was last loaded.
fn assert_canonical_money<E: MoneyFields + DomainEvent>(event: &E) {
    if let Some((field, amount)) = event.non_canonical_money() {
        panic!(
            "event {} would store {field} as {amount:?}, not in its canonical form \
             (two decimals, no negative zero): the domain must spell it with money::canonical_fen",
            event.event_type()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use ledger_domain::account::AccountEvent;
    use ledger_domain::ids::OrderId;
    use ledger_domain::Account;
    use rust_decimal::Decimal;

    use super::*;

    /// An event whose apply needs nothing before it.
    fn completed(released_cny: Decimal) -> AccountEvent {
        AccountEvent::OrderCompleted {
            order_id: OrderId::parse("O1").unwrap(),
            released_cny,
        }
    }

    fn stage(event: AccountEvent) -> Result<Decision, EngineError> {
        let mut loaded = Loaded {
            state: Account::default(),
            sequence: 0,
        };
        decide_and_stage(&mut loaded, "A1", |_| Ok(vec![event]), &mut Vec::new())
    }

    #[test]
    fn an_event_with_money_in_its_canonical_form_is_staged() {
        assert!(matches!(
            stage(completed(Decimal::from_str("0.00").unwrap())),
            Ok(Ok(()))
        ));
    }

    #[test]
    #[should_panic(expected = "event OrderCompleted would store released_cny as -0")]
    fn a_negative_zero_never_reaches_the_log() {
        let _ = stage(completed(-Decimal::ZERO));
    }

    #[test]
    #[should_panic(expected = "would store released_cny as 12.5,")]
    fn an_amount_of_another_scale_never_reaches_the_log() {
        let _ = stage(completed(Decimal::from_str("12.5").unwrap()));
    }
}
