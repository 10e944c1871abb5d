//! The writer: group commit for concurrent submitters (the HTTP server's handlers,
//! `ledger bench engine`'s clients). Requests wait in a bounded queue; one task owns
//! the [`Ledger`], takes as many queued commands as one engine batch holds
//! ([`MAX_SUBMISSIONS`]), decides them in arrival order, commits them in one
//! transaction ([`submit_requests`]) and only then answers each request.
//!
//! The queue is bounded in commands, not requests (a request may hold many): a
//! request that does not fit is refused at once ([`QueueRefusal::Full`]), never left
//! waiting. A failure of the database answers every request of the batch in flight
//! with a [`WriteFailure`] and gives the next batch a new `Ledger` (nothing cached
//! from the failed one: the failed commit may have happened all the same, and the
//! idempotency records answer a resent command `duplicate` if it did).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_commands::{Ledger, Status};
use ledger_domain::MarketRules;
use ledger_eventstore::EventStore;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::batch::MAX_SUBMISSIONS;
use crate::{submit_requests, CommandRequest, RequestOutcome};

/// Default limit of the queue, in commands waiting to be decided: ten engine batches,
/// so a burst waits at most about ten group commits before it is refused.
pub const DEFAULT_QUEUE_COMMANDS: usize = 10 * MAX_SUBMISSIONS;

/// Why a batch was not committed: the [`crate::AppError`]'s stable code, the error
/// itself (for the operator's log), and the sentence a sender is answered, which says
/// that resending is safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct WriteFailure {
    pub code: &'static str,
    pub error: String,
    pub detail: String,
}

/// What a request gets back: one outcome per command, in order, once committed.
pub type Reply = Result<Vec<RequestOutcome>, WriteFailure>;

/// Told of every batch the writer decides (the server's metrics and log).
pub trait BatchObserver: Send + Sync + 'static {
    /// A batch committed: its requests, their outcomes and the time from its decision
    /// starting to its commit.
    fn committed(&self, requests: &[CommandRequest], outcomes: &[RequestOutcome], took: Duration);
    /// A batch failed; every request of it was answered `failure`.
    fn failed(&self, commands: usize, failure: &WriteFailure);
}

struct Job {
    requests: Vec<CommandRequest>,
    reply: oneshot::Sender<Reply>,
    /// Its room in the queue, given back when the writer takes the job.
    permit: OwnedSemaphorePermit,
}

/// The sending side of the queue; clone it for each submitter.
#[derive(Clone)]
pub struct Queue {
    jobs: mpsc::UnboundedSender<Job>,
    room: Arc<Semaphore>,
    limit_commands: usize,
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRefusal {
    /// Its commands do not fit in what is left of the queue.
    Full,
    /// The writer has stopped.
    Closed,
}

impl Queue {
    /// Queues the requests (at least one, at most [`MAX_SUBMISSIONS`]) as one job; its
    /// answers come on the returned receiver once their batch is committed.
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

/// How the writer is set up.
pub struct WriterOptions {
    /// The queue's limit in commands (at least one).
    pub limit_commands: usize,
    /// Aggregates the engine keeps in memory.
    pub cache_aggregates: usize,
    pub observer: Arc<dyn BatchObserver>,
}

/// The queue and the writer task that drains it. The task ends once every [`Queue`]
/// is dropped and what was queued is answered. The receiver hears the last global
/// position of each commit that wrote events (a projection runner listens).
pub fn start(
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    options: WriterOptions,
) -> (Queue, watch::Receiver<u64>, tokio::task::JoinHandle<()>) {
    // A queue of no room would refuse everything, forever.
    let limit_commands = options.limit_commands.max(1);
    let (jobs, receiver) = mpsc::unbounded_channel();
    let queue = Queue {
        jobs,
        room: Arc::new(Semaphore::new(limit_commands)),
        limit_commands,
    };
    let (commits, committed) = watch::channel(0);
    let writer = Writer {
        ledger: Ledger::with_cache(Arc::clone(&store), Arc::clone(&rules), options.cache_aggregates),
        store,
        rules,
        cache_aggregates: options.cache_aggregates,
        observer: options.observer,
        commits,
    };
    (queue, committed, tokio::spawn(writer.run(receiver)))
}

struct Writer {
    ledger: Ledger,
    store: Arc<dyn EventStore>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
    observer: Arc<dyn BatchObserver>,
    /// The last position committed (dropped with the writer: its listeners then stop).
    commits: watch::Sender<u64>,
}

impl Writer {
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
        assert!(requests.len() <= MAX_SUBMISSIONS, "a batch is one engine batch at most");
        let started = Instant::now();
        match submit_requests(&mut self.ledger, &requests).await {
            Ok(outcomes) => {
                assert_eq!(outcomes.len(), requests.len(), "one outcome per request");
                self.observer.committed(&requests, &outcomes, started.elapsed());
                self.announce(&outcomes);
                let mut outcomes = outcomes.into_iter();
                for (reply, count) in replies {
                    // A submitter gone away no longer hears its answer; its command stands.
                    let _ = reply.send(Ok(outcomes.by_ref().take(count).collect()));
                }
            }
            Err(error) => {
                let failure = WriteFailure {
                    code: error.code(),
                    error: error.to_string(),
                    detail: format!(
                        "{error}; the commands of this request may have been committed: resending it \
                         with the same command ids is safe (a recorded one answers `duplicate`)"
                    ),
                };
                self.observer.failed(requests.len(), &failure);
                for (reply, _) in replies {
                    let _ = reply.send(Err(failure.clone()));
                }
                self.ledger =
                    Ledger::with_cache(Arc::clone(&self.store), Arc::clone(&self.rules), self.cache_aggregates);
            }
        }
    }

    /// Tells the listeners the last position this batch wrote, before anyone is
    /// answered: a client's next read with `min_position` finds the runner started.
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
