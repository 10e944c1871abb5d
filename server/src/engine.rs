//! Group commit: requests wait in a bounded queue; one task owns the [`Ledger`], takes
//! as many queued commands as one engine batch holds ([`MAX_SUBMISSIONS`]), decides
//! them in arrival order, commits them in one transaction
//! ([`ledger_app::submit_requests`]) and only then answers each request.
//!
//! The queue is bounded in commands, not requests (a batch request holds many): a
//! request that does not fit is refused at once (`overloaded`), never left waiting.
//! A failure of the database answers every request of the batch in flight with its
//! code and gives the next batch a new `Ledger` (nothing cached from the failed one:
//! the failed commit may have happened all the same, and the idempotency records
//! answer a resent command `duplicate` if it did).

use std::sync::Arc;
use std::time::Instant;

use ledger_app::batch::MAX_SUBMISSIONS;
use ledger_app::{CommandRequest, EventStore, Ledger, MarketRules, RequestOutcome, Status};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::problem::Problem;

/// Default limit of the queue, in commands waiting to be decided: ten engine batches,
/// so a burst waits at most about ten group commits before it is refused.
pub const DEFAULT_QUEUE_COMMANDS: usize = 10 * MAX_SUBMISSIONS;

/// What a request gets back from the engine.
pub type Reply = Result<Vec<RequestOutcome>, Problem>;

struct Job {
    requests: Vec<CommandRequest>,
    reply: oneshot::Sender<Reply>,
    /// Its room in the queue, given back when the engine takes the job.
    permit: OwnedSemaphorePermit,
}

/// The sending side of the queue, shared by the handlers.
#[derive(Clone)]
pub struct Queue {
    jobs: mpsc::UnboundedSender<Job>,
    room: Arc<Semaphore>,
    limit_commands: usize,
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRefusal {
    Full,
    Closed,
}

impl Queue {
    /// Queues the requests (at most [`MAX_SUBMISSIONS`]) as one job; its answers come
    /// on the returned receiver once their batch is committed.
    pub fn send(&self, requests: Vec<CommandRequest>) -> Result<oneshot::Receiver<Reply>, QueueRefusal> {
        assert!(
            !requests.is_empty() && requests.len() <= MAX_SUBMISSIONS,
            "a job is one engine batch at most"
        );
        let count = u32::try_from(requests.len()).map_err(|_| QueueRefusal::Full)?;
        let permit = Arc::clone(&self.room)
            .try_acquire_many_owned(count)
            .map_err(|_| QueueRefusal::Full)?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                requests,
                reply,
                permit,
            })
            .map_err(|_| QueueRefusal::Closed)?;
        Ok(answer)
    }

    /// Commands waiting to be decided.
    pub fn depth(&self) -> usize {
        self.limit_commands.saturating_sub(self.room.available_permits())
    }

    pub fn limit_commands(&self) -> usize {
        self.limit_commands
    }
}

/// The queue and the engine task that drains it. The task ends once every [`Queue`]
/// is dropped and what was queued is answered. The receiver hears the last global
/// position of each commit that wrote events (the projection runner listens).
pub fn start(
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    limit_commands: usize,
    cache_aggregates: usize,
) -> (Queue, watch::Receiver<u64>, tokio::task::JoinHandle<()>) {
    // At least one engine batch fits, so every request the handlers accept can be queued.
    let limit_commands = limit_commands.max(1);
    let (jobs, receiver) = mpsc::unbounded_channel();
    let queue = Queue {
        jobs,
        room: Arc::new(Semaphore::new(limit_commands)),
        limit_commands,
    };
    let (commits, committed) = watch::channel(0);
    let engine = Engine {
        ledger: Ledger::with_cache(Arc::clone(&store), Arc::clone(&rules), cache_aggregates),
        store,
        rules,
        cache_aggregates,
        commits,
    };
    (queue, committed, tokio::spawn(engine.run(receiver)))
}

struct Engine {
    ledger: Ledger,
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
    /// The last position committed (dropped with the engine: the runner then stops).
    commits: watch::Sender<u64>,
}

impl Engine {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Job>) {
        let mut carried: Option<Job> = None;
        loop {
            let first = match carried.take() {
                Some(job) => job,
                None => match receiver.recv().await {
                    Some(job) => job,
                    None => return,
                },
            };
            let mut commands = first.requests.len();
            let mut jobs = vec![first];
            while let Ok(job) = receiver.try_recv() {
                if commands + job.requests.len() > MAX_SUBMISSIONS {
                    carried = Some(job);
                    break;
                }
                commands += job.requests.len();
                jobs.push(job);
            }
            self.decide(jobs).await;
        }
    }

    /// Decides and commits the jobs' commands as one batch, then answers each job.
    async fn decide(&mut self, jobs: Vec<Job>) {
        let mut replies = Vec::with_capacity(jobs.len());
        let mut requests = Vec::new();
        for job in jobs {
            drop(job.permit);
            replies.push((job.reply, job.requests.len()));
            requests.extend(job.requests);
        }
        let started = Instant::now();
        match ledger_app::submit_requests(&mut self.ledger, &requests).await {
            Ok(outcomes) => {
                assert_eq!(outcomes.len(), requests.len(), "one outcome per request");
                let took = started.elapsed();
                crate::metrics::record_batch(&requests, &outcomes, took);
                tracing::debug!(
                    commands = requests.len(),
                    latency_ms = took.as_micros() as f64 / 1_000.0,
                    "group commit"
                );
                self.announce(&outcomes);
                let mut outcomes = outcomes.into_iter();
                for (reply, count) in replies {
                    // A client gone away no longer hears its answer; its command stands.
                    let _ = reply.send(Ok(outcomes.by_ref().take(count).collect()));
                }
            }
            Err(error) => {
                crate::metrics::record_failed_batch();
                tracing::warn!(
                    commands = requests.len(),
                    code = error.code(),
                    %error,
                    "group commit failed; the next batch gets a fresh engine"
                );
                let detail = format!(
                    "{error}; the commands of this request may have been committed: resending it \
                     with the same command ids is safe (a recorded one answers `duplicate`)"
                );
                let problem = Problem::from_app_code(error.code(), detail);
                for (reply, _) in replies {
                    let _ = reply.send(Err(problem.clone()));
                }
                self.ledger =
                    Ledger::with_cache(Arc::clone(&self.store), Arc::clone(&self.rules), self.cache_aggregates);
            }
        }
    }

    /// Tells the projection runner the last position this batch wrote, before anyone
    /// is answered: a client's next read with `min_position` finds the runner started.
    fn announce(&self, outcomes: &[RequestOutcome]) {
        let written = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                RequestOutcome::Answered(result) if result.status == Status::Accepted => result.last_position,
                _ => None,
            })
            .max();
        if let Some(last) = written {
            self.commits.send_if_modified(|at| {
                let moved = last > *at;
                *at = (*at).max(last);
                moved
            });
        }
    }
}
