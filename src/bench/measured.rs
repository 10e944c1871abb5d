//! What `bench engine` measures of a run, whatever its workload: the clients' sends
//! and answers, the latencies, the writer's group commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ledger_app::writer::{self, BatchObserver, WriteFailure, WriterOptions};
use ledger_app::{CommandRequest, EventStore, MarketRules, RequestOutcome};

use super::setup::{latency_histogram, percentiles_ms, record_latency_us};

/// The writer's batches: how many, how large, how long each took to decide and commit.
pub(super) struct Batches {
    pub(super) count: u64,
    pub(super) commands: u64,
    /// Microseconds from a batch's decision starting to its commit.
    pub(super) decide_and_commit_us: Histogram<u64>,
}

impl Batches {
    fn new() -> anyhow::Result<Batches> {
        Ok(Batches {
            count: 0,
            commands: 0,
            decide_and_commit_us: latency_histogram()?,
        })
    }
}

/// Records every batch the writer commits.
pub(super) struct BatchRecorder(std::sync::Mutex<Batches>);

impl BatchRecorder {
    pub(super) fn new() -> anyhow::Result<BatchRecorder> {
        Ok(BatchRecorder(std::sync::Mutex::new(Batches::new()?)))
    }

    /// The batches recorded so far, the recorder starting afresh.
    pub(super) fn take(&self) -> anyhow::Result<Batches> {
        let mut batches = self.0.lock().map_err(|_| anyhow::anyhow!("a bench thread panicked"))?;
        Ok(std::mem::replace(&mut *batches, Batches::new()?))
    }
}

impl BatchObserver for BatchRecorder {
    fn committed(&self, requests: &[CommandRequest], _outcomes: &[RequestOutcome], took: Duration) {
        // A poisoned lock means a bench thread panicked: the run is lost anyway.
        if let Ok(mut batches) = self.0.lock() {
            batches.count += 1;
            batches.commands += requests.len() as u64;
            let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            record_latency_us(&mut batches.decide_and_commit_us, took_us);
        }
    }

    fn failed(&self, _commands: usize, _failure: &WriteFailure) {}
}

/// What one side of the comparison measured.
pub(super) struct Measured {
    pub(super) commands: u64,
    pub(super) elapsed: Duration,
    pub(super) latencies: Histogram<u64>,
    /// Answers by status (the ledger's `accepted`, `rejected`, ...; the baseline's `accepted`, `refused`).
    pub(super) endings: std::collections::BTreeMap<String, u64>,
    /// The ledger's group commits (the baseline has none).
    pub(super) batches: Option<Batches>,
    /// The process's resident memory when the clock started, where one clock covers the
    /// run (the shape's run, its set-up committed and no client's command built yet).
    pub(super) rss_at_clock_bytes: Option<u64>,
}

impl Measured {
    /// Nothing measured yet.
    pub(super) fn new() -> anyhow::Result<Measured> {
        Ok(Measured {
            commands: 0,
            elapsed: Duration::ZERO,
            latencies: latency_histogram()?,
            endings: Default::default(),
            batches: None,
            rss_at_clock_bytes: None,
        })
    }

    pub(super) fn commands_per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    pub(super) fn to_json(&self) -> serde_json::Value {
        let [p50, p99, p999, max] = percentiles_ms(&self.latencies);
        let batches = self.batches.as_ref().map(|batches| {
            let [p50, p99, p999, max] = percentiles_ms(&batches.decide_and_commit_us);
            serde_json::json!({
                "count": batches.count,
                "mean_commands": batches.commands as f64 / batches.count.max(1) as f64,
                "decide_and_commit_ms": {"p50": p50, "p99": p99, "p99_9": p999, "max": max},
            })
        });
        serde_json::json!({
            "commands": self.commands,
            "seconds": self.elapsed.as_secs_f64(),
            "commands_per_second": self.commands_per_second(),
            "endings": self.endings,
            "latency_ms": {"p50": p50, "p99": p99, "p99_9": p999, "max": max},
            "batches": batches,
        })
    }
}

/// Sends each request once the one before is answered, and hands each one's outcome and
/// latency to `on_answer` as it comes (a caller that only counts them keeps none). A
/// request is taken from `requests` only when it is its turn, so a generated workload
/// is never held whole; a request that could not be built ends the client.
pub(super) async fn send_one_by_one(
    queue: writer::Queue,
    requests: impl IntoIterator<Item = anyhow::Result<CommandRequest>>,
    mut on_answer: impl FnMut(RequestOutcome, u64),
) -> anyhow::Result<()> {
    for request in requests {
        let request = request?;
        let sent = Instant::now();
        let answer = queue
            .send(vec![request])
            .map_err(|refusal| anyhow::anyhow!("the writer's queue refused a command: {refusal:?}"))?;
        let outcomes = answer.await.map_err(|_| anyhow::anyhow!("the writer stopped"))??;
        let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let [outcome] = <[RequestOutcome; 1]>::try_from(outcomes)
            .map_err(|outcomes| anyhow::anyhow!("one request, {} outcomes", outcomes.len()))?;
        on_answer(outcome, latency_us);
    }
    Ok(())
}

/// [`send_one_by_one`] of requests built already, every outcome and latency kept, in order.
pub(super) async fn send_and_keep(
    queue: writer::Queue,
    requests: Vec<CommandRequest>,
) -> anyhow::Result<Vec<(RequestOutcome, u64)>> {
    let mut answers = Vec::with_capacity(requests.len());
    send_one_by_one(queue, requests.into_iter().map(Ok), |outcome, latency_us| {
        answers.push((outcome, latency_us))
    })
    .await?;
    Ok(answers)
}

/// How a command ended, as the figures count it: its status as `ledger exec --json`
/// spells it, or `key_reused`.
pub(super) fn ending_of(outcome: &RequestOutcome) -> &'static str {
    match outcome {
        RequestOutcome::Answered(result) => result.status.as_str(),
        RequestOutcome::KeyReused(_) => "key_reused",
    }
}

/// The writer of a run, with the recorder of its group commits.
pub(super) struct RecordedWriter {
    pub(super) queue: writer::Queue,
    pub(super) recorder: Arc<BatchRecorder>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordedWriter {
    /// Starts the writer, its queue holding at most `limit_commands`.
    pub(super) fn start(
        store: Arc<dyn EventStore>,
        rules: Arc<MarketRules>,
        cache_aggregates: usize,
        limit_commands: usize,
    ) -> anyhow::Result<RecordedWriter> {
        let recorder = Arc::new(BatchRecorder::new()?);
        let options = WriterOptions {
            limit_commands,
            cache_aggregates,
            observer: Arc::clone(&recorder) as Arc<dyn BatchObserver>,
        };
        let (queue, _commits, task) = writer::start(store, rules, options);
        Ok(RecordedWriter { queue, recorder, task })
    }

    /// Closes the queue, waits for the writer to commit what it holds, and gives the
    /// group commits recorded since the last [`BatchRecorder::take`].
    pub(super) async fn finish(self) -> anyhow::Result<Batches> {
        drop(self.queue);
        self.task.await?;
        self.recorder.take()
    }
}
