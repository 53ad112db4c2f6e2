//! The poll-expiry job: when a poll ends, its voters and its author get a `poll`
//! notification. It runs beside every fan-out worker (any number of processes) and works
//! from the store's due list, so a poll that ends while no worker runs, or across a
//! restart, is seen to as soon as one runs again.
//!
//! At least once, never twice: a worker takes a poll's expiry with a lease
//! (`Store::claim_poll_expiry`), notifies, then takes it off the due list; a worker that
//! dies mid-poll leaves the lease to lapse and another redoes it, and the store's one
//! notification per (account, kind, actor, post) keeps anyone from hearing of it twice.

use std::time::Duration;

use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::model::{NewNotification, NotificationKind, Window};
use starling_store::{MAX_BATCH, Store};
use tokio_util::sync::CancellationToken;

use crate::{Fanout, FanoutError};

/// How often the due list is read.
const TICK: Duration = Duration::from_secs(1);
/// Polls taken per pass.
const PER_PASS: usize = 100;
/// How long a worker holds a poll's expiry before another may take it over.
const LEASE_MS: u64 = 60_000;

impl<S: Store + Clone> Fanout<S> {
    /// One pass over the polls due now; returns how many were seen to by this worker.
    pub async fn expire_due_polls(&self) -> Result<usize, FanoutError> {
        let due = self.store.due_polls(now_ms(), PER_PASS).await?;
        let mut done = 0;
        for (poll, _) in due {
            if !self.store.claim_poll_expiry(poll, LEASE_MS).await? {
                continue;
            }
            self.poll_ended(poll).await?;
            self.store.finish_poll_expiry(poll).await?;
            done += 1;
        }
        Ok(done)
    }

    /// Tell the author and every voter that `poll` ended, unless its post is gone or no
    /// longer carries it (edited into another question).
    async fn poll_ended(&self, id: Id) -> Result<(), FanoutError> {
        let Some(poll) = self.store.polls_by_ids(&[id]).await?.into_iter().next() else {
            return Ok(());
        };
        let live = self.store.posts_by_ids(&[poll.post_id]).await?;
        if !live.iter().any(|p| p.poll_id == Some(id)) {
            return Ok(());
        }
        let tell = |account: Id| NewNotification {
            account_id: account,
            kind: NotificationKind::Poll,
            from_account_id: poll.author_id,
            post_id: Some(poll.post_id),
        };
        self.notify(tell(poll.author_id)).await?;
        let mut window = Window::oldest(MAX_BATCH);
        loop {
            let page = self.store.poll_voters(id, window).await?;
            for voter in page.items {
                self.notify(tell(voter)).await?;
            }
            match page.next {
                Some(next) => window = next,
                None => return Ok(()),
            }
        }
    }

    /// Run [`Fanout::expire_due_polls`] every second until `shutdown`.
    pub async fn run_poll_expiry(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.expire_due_polls().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(polls = n, "ended polls notified"),
                Err(e) => tracing::warn!(error = %e, "poll expiry pass failed; retrying"),
            }
        }
    }
}
