//! Word that the log may have grown, for followers that wait at its head: PostgreSQL
//! sends a notification on [`APPENDED_CHANNEL`] from every append's transaction (the
//! server delivers it at commit, so a follower never wakes before the events are
//! visible); SQLite has no such thing across processes, so a follower polls.
//!
//! Word can be lost (a listener's connection drops and reconnects), so every wait is
//! bounded and a follower reads the head again after it, woken or not: a notification
//! only makes the follower quicker, never correct.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::records::StoreError;

/// The PostgreSQL channel every append notifies, with the last position as payload.
pub const APPENDED_CHANNEL: &str = "ledger_appended";
/// How often a follower of a SQLite log looks for new events.
pub const SQLITE_FOLLOW_POLL_MS: u64 = 50;

/// Waits for word of an append.
#[async_trait]
pub trait AppendWatch: Send {
    /// Returns when the log may have grown, or after `max_wait` at the latest.
    async fn wait(&mut self, max_wait: Duration) -> Result<(), StoreError>;
}

/// SQLite's watch: a short sleep.
pub(crate) struct PollWatch;

#[async_trait]
impl AppendWatch for PollWatch {
    async fn wait(&mut self, max_wait: Duration) -> Result<(), StoreError> {
        tokio::time::sleep(max_wait.min(Duration::from_millis(SQLITE_FOLLOW_POLL_MS))).await;
        Ok(())
    }
}

/// PostgreSQL's watch: a session listening on [`APPENDED_CHANNEL`].
pub(crate) struct ListenWatch {
    listener: PgListener,
}

impl ListenWatch {
    /// Listens on a connection of its own, outside the store's pool: a listener holds its
    /// connection for as long as it lives, which would leave the pool's users one short.
    pub(crate) async fn start(pool: &PgPool) -> Result<Self, StoreError> {
        let options = (*pool.connect_options()).clone();
        let own = PgPoolOptions::new().max_connections(1).connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&own).await?;
        listener.listen(APPENDED_CHANNEL).await?;
        Ok(Self { listener })
    }
}

#[async_trait]
impl AppendWatch for ListenWatch {
    async fn wait(&mut self, max_wait: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(max_wait, self.listener.recv()).await {
            Err(_elapsed) => Ok(()),
            Ok(Ok(_notification)) => {
                // Appends that came together wake once: the follower reads them all.
                while self.listener.next_buffered().is_some() {}
                Ok(())
            }
            // `recv` reconnects by itself on its next call; what was sent meanwhile
            // is lost, which the bounded wait of the caller makes up for.
            Ok(Err(error)) => Err(error.into()),
        }
    }
}
