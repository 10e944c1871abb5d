//! The aggregates of one type between and during batches: a bounded cache,
//! and the working set of the batch being decided.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use cqrs_es::Aggregate;
use ledger_domain::Rejection;
use ledger_eventstore::codec::{decode, encode};
use ledger_eventstore::{EventStore, StreamAppend, StreamId};
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
/// and staged for the stream; a refusal leaves the aggregate as it was.
pub(super) fn decide_and_stage<A: Aggregate>(
    loaded: &mut Loaded<A>,
    id: &str,
    decide: impl FnOnce(&A) -> Result<Vec<A::Event>, Rejection>,
    appends: &mut Vec<StreamAppend>,
) -> Result<Decision, EngineError> {
    let events = match decide(&loaded.state) {
        Ok(events) => events,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if events.is_empty() {
        return Ok(Ok(()));
    }
    let encoded = events.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
    appends.push(StreamAppend {
        stream: StreamId::new(A::TYPE, id),
        expected_sequence: loaded.sequence,
        events: encoded,
    });
    loaded.sequence += events.len() as u64;
    for event in events {
        loaded.state.apply(event);
    }
    Ok(Ok(()))
}
