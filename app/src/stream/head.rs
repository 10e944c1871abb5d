//! The head of the log as this process sees it, kept by one task for every follower
//! in the process (the SSE consumers of a server, `ledger events --follow`): one
//! reader of the head however many followers wait on it.
//!
//! The task reads the head again on word of an append ([`EventStore::watch_appends`]:
//! PostgreSQL's notifications, SQLite's short poll), on each commit of the process's
//! own engine, and at least every [`HEAD_POLL_MS`] whatever it is told, so lost word
//! delays a follower but never strands it.

use std::sync::Arc;
use std::time::Duration;

use ledger_eventstore::appended::AppendWatch;
use ledger_eventstore::EventStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest the head goes unread, whatever word of appends says (or fails to say).
pub const HEAD_POLL_MS: u64 = 1_000;
/// Pause after a failed read of the head or of word of appends, before trying again.
pub const HEAD_RETRY_MS: u64 = 500;

/// The head position as the task last read it. Cloning is cheap; the task stops when
/// the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LogHead {
    receiver: watch::Receiver<u64>,
}

impl LogHead {
    /// The last head read.
    pub fn position(&self) -> u64 {
        *self.receiver.borrow()
    }

    /// Waits until the head is past `position`, at most `max_wait`; returns the head then.
    pub async fn wait_past(&mut self, position: u64, max_wait: Duration) -> u64 {
        let _ = tokio::time::timeout(max_wait, self.receiver.wait_for(|head| *head > position)).await;
        self.position()
    }
}

/// Starts the task that keeps a [`LogHead`]. `commits`, when given, carries the last
/// position this process's engine committed: its followers wake without waiting for
/// the database to tell.
pub fn watch_log_head(store: Arc<dyn EventStore>, commits: Option<watch::Receiver<u64>>) -> (LogHead, JoinHandle<()>) {
    let (sender, receiver) = watch::channel(0);
    let task = tokio::spawn(keep_head(store, commits, sender));
    (LogHead { receiver }, task)
}

async fn keep_head(store: Arc<dyn EventStore>, mut commits: Option<watch::Receiver<u64>>, head: watch::Sender<u64>) {
    let mut appends: Option<Box<dyn AppendWatch>> = None;
    let poll = Duration::from_millis(HEAD_POLL_MS);
    // A commit of this process's engine says its position itself: the database is read
    // only on word of an append (or a poll), not once more per commit.
    let mut read_head = true;
    loop {
        if appends.is_none() {
            appends = match store.watch_appends().await {
                Ok(watch) => Some(watch),
                Err(error) => {
                    tracing::warn!(%error, poll_ms = HEAD_POLL_MS, "no word of appends: the head is polled");
                    None
                }
            };
        }
        if read_head {
            match store.head_position().await {
                Ok(position) => advance(&head, position),
                Err(error) => {
                    tracing::warn!(%error, retry_ms = HEAD_RETRY_MS, "the head of the log cannot be read");
                    tokio::time::sleep(Duration::from_millis(HEAD_RETRY_MS)).await;
                }
            }
        }
        tokio::select! {
            () = head.closed() => return,
            woke = wait_for_word(appends.as_deref_mut(), poll) => {
                read_head = true;
                if let Err(error) = woke {
                    tracing::warn!(%error, "word of appends was lost: listening again");
                    appends = None;
                    tokio::time::sleep(Duration::from_millis(HEAD_RETRY_MS)).await;
                }
            }
            committed = next_commit(commits.as_mut()) => match committed {
                Some(position) => {
                    advance(&head, position);
                    read_head = false;
                }
                None => commits = None,
            }
        }
    }
}

/// Moves the head to `position` if that is further; followers wake only when it moves.
fn advance(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|at| {
        let moved = position > *at;
        *at = (*at).max(position);
        moved
    });
}

/// Word of an append, or `poll` elapsed (at once without a watch: the loop polls).
async fn wait_for_word(
    appends: Option<&mut (dyn AppendWatch + '_)>,
    poll: Duration,
) -> Result<(), ledger_eventstore::StoreError> {
    match appends {
        Some(watch) => watch.wait(poll).await,
        None => {
            tokio::time::sleep(poll).await;
            Ok(())
        }
    }
}

/// The position of the engine's next commit; `None` when the engine has stopped. Never
/// returns without one.
async fn next_commit(commits: Option<&mut watch::Receiver<u64>>) -> Option<u64> {
    match commits {
        Some(commits) => match commits.changed().await {
            Ok(()) => Some(*commits.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}
