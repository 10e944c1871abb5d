//! The live projection runner: one task that catches the read models up with the log
//! after each commit of the engine (which sends the last position it committed on a
//! watch channel), at start, and every [`READ_MODELS_POLL_MS`] (for what other
//! processes write to the same database). It is the only catch-up of the server: read
//! handlers read the tables as they stand (`ledger_app::live`) and, asked for
//! `min_position`, wait on the position it publishes ([`ReadModels::wait_for`]).
//!
//! Another runner beside it (a CLI read-out on the same database, `projections run`)
//! is safe: a batch applies only over the checkpoint it was read from, and the loser
//! of a race goes on from where the winner got (`ProjectionError::Moved`).

use std::sync::Arc;
use std::time::Duration;

use ledger_app::EventStore;
use tokio::sync::watch;

/// Longest the runner sleeps between catch-ups when the engine commits nothing: the
/// delay before writes of another process show, and before a failed catch-up is retried.
pub const READ_MODELS_POLL_MS: u64 = 1_000;
/// Longest a read with `?min_position=P` waits for the read models to reach P before it
/// is answered 503 `read_models_behind`.
pub const MAX_MIN_POSITION_WAIT_MS: u64 = 5_000;

/// The position the read models have reached, as the runner last saw it.
#[derive(Clone)]
pub struct ReadModels {
    reached: watch::Receiver<u64>,
}

/// Why a wait for a position ended without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReached {
    /// Still at `.0` after [`MAX_MIN_POSITION_WAIT_MS`].
    TimedOut(u64),
    /// The runner has stopped (the server is shutting down).
    Stopped,
}

impl ReadModels {
    /// The position reached.
    pub fn position(&self) -> u64 {
        *self.reached.borrow()
    }

    /// Waits, at most [`MAX_MIN_POSITION_WAIT_MS`], until the read models have reached `position`.
    pub async fn wait_for(&self, position: u64) -> Result<u64, NotReached> {
        let mut reached = self.reached.clone();
        let wait = Duration::from_millis(MAX_MIN_POSITION_WAIT_MS);
        let waited = tokio::time::timeout(wait, async {
            reached.wait_for(|at| *at >= position).await.map(|at| *at)
        })
        .await;
        match waited {
            Ok(Ok(at)) => Ok(at),
            Ok(Err(_)) => Err(NotReached::Stopped),
            Err(_) => Err(NotReached::TimedOut(self.position())),
        }
    }
}

/// Starts the runner. `commits` carries the last position the engine committed; the
/// runner catches up once more and ends when its sender is dropped (the engine stopped).
pub fn start(store: Arc<dyn EventStore>, commits: watch::Receiver<u64>) -> (ReadModels, tokio::task::JoinHandle<()>) {
    let (reached, receiver) = watch::channel(0);
    let task = tokio::spawn(run(store, commits, reached));
    (ReadModels { reached: receiver }, task)
}

async fn run(store: Arc<dyn EventStore>, mut commits: watch::Receiver<u64>, reached: watch::Sender<u64>) {
    let poll = Duration::from_millis(READ_MODELS_POLL_MS);
    loop {
        catch_up(store.as_ref(), &reached).await;
        tokio::select! {
            changed = commits.changed() => {
                if changed.is_err() {
                    // The engine has committed its last batch: apply it, then stop.
                    catch_up(store.as_ref(), &reached).await;
                    return;
                }
            }
            () = tokio::time::sleep(poll) => {}
        }
    }
}

async fn catch_up(store: &dyn EventStore, reached: &watch::Sender<u64>) {
    match ledger_app::catch_up_read_models(store, |_| {}).await {
        Ok(caught_up) => {
            reached.send_if_modified(|at| {
                let moved = caught_up.checkpoint > *at;
                *at = (*at).max(caught_up.checkpoint);
                moved
            });
            crate::metrics::record_read_models_position(*reached.borrow());
        }
        // The reads stay as they were (and `min_position` waits) until a later pass works.
        Err(error) => {
            crate::metrics::record_catch_up_failure();
            tracing::warn!(
                code = error.code(),
                %error,
                retry_within_ms = READ_MODELS_POLL_MS,
                "the read models could not catch up"
            );
        }
    }
}
