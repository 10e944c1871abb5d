//! The server's side of the application layer's writer ([`ledger_app::writer`]): its
//! batches counted in the metrics and logged, its failures answered as problems.

use std::sync::Arc;
use std::time::Duration;

use ledger_app::writer::{self, BatchObserver, WriteFailure, WriterOptions};
use ledger_app::{CommandRequest, EventStore, MarketRules, RequestOutcome};
use tokio::sync::watch;

use crate::problem::Problem;

pub use ledger_app::writer::{Queue, QueueRefusal, DEFAULT_QUEUE_COMMANDS};

/// Starts the writer with the server's observer: see [`writer::start`].
pub fn start(
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    limit_commands: usize,
    cache_aggregates: usize,
) -> (Queue, watch::Receiver<u64>, tokio::task::JoinHandle<()>) {
    let options = WriterOptions {
        limit_commands,
        cache_aggregates,
        observer: Arc::new(Metered),
    };
    writer::start(store, rules, options)
}

/// A failed batch as the answer of each of its requests.
pub fn problem_of(failure: WriteFailure) -> Problem {
    Problem::from_app_code(failure.code, failure.detail)
}

/// Counts each batch in the metrics and logs it.
struct Metered;

impl BatchObserver for Metered {
    fn committed(&self, requests: &[CommandRequest], outcomes: &[RequestOutcome], took: Duration) {
        crate::metrics::record_batch(requests, outcomes, took);
        tracing::debug!(
            commands = requests.len(),
            latency_ms = took.as_micros() as f64 / 1_000.0,
            "group commit"
        );
    }

    fn failed(&self, commands: usize, failure: &WriteFailure) {
        crate::metrics::record_failed_batch();
        tracing::warn!(
            commands,
            code = failure.code,
            error = %failure.error,
            "group commit failed; the next batch gets a fresh engine"
        );
    }
}
