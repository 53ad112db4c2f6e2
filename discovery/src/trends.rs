//! The trends worker: events in, decayed scores and usage history out (in Redis).

use std::sync::Arc;
use std::time::Duration;

use starling_bus::{Bus, Delivery};
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::Post;
use starling_schema::policy;
use starling_schema::settings::DiscoverySettings;
use starling_schema::text;
use starling_store::Store;
use starling_timeline::{Timelines, TrendKind};
use tokio_util::sync::CancellationToken;

use crate::{DiscoveryError, trend_params};

/// Redelivery delay after a failure that may pass (Redis or the store was unavailable).
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Redelivery delay after a failure that will probably not pass by itself.
const FAILED_DELAY: Duration = Duration::from_secs(30);
const DAY_MS: u64 = 86_400_000;

/// Counts what trends are made of. Cheap to clone.
#[derive(Clone)]
pub struct TrendsWorker<S> {
    store: S,
    timelines: Timelines,
    settings: Arc<DiscoverySettings>,
}

impl<S: Store + Clone> TrendsWorker<S> {
    pub fn new(store: S, timelines: Timelines, settings: &DiscoverySettings) -> Self {
        TrendsWorker {
            store,
            timelines,
            settings: Arc::new(settings.clone()),
        }
    }

    /// Consume the durable consumer `discovery.consumer` (shared by every discovery
    /// process) until `shutdown`, then finish the events in flight.
    pub async fn run(&self, bus: Bus, shutdown: CancellationToken) -> Result<(), DiscoveryError> {
        let Some(mut consumer) = bus
            .wait_for_consumer(&self.settings.consumer, &shutdown)
            .await?
        else {
            return Ok(());
        };
        tracing::info!(consumer = consumer.name(), "trends worker started");
        let mut slots = starling_bus::Slots::new(self.clone(), self.settings.concurrency, || {
            tracing::debug!("skipped an unreadable event")
        });
        starling_bus::consume(&mut consumer, &mut slots, &shutdown).await;
        slots.finish().await;
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "acks may not have reached NATS; those events count again (once)");
        }
        tracing::info!("trends worker stopped");
        Ok(())
    }

    async fn answer(self, delivery: Delivery) {
        let result = self
            .apply(&delivery.envelope.event, delivery.envelope.at_ms)
            .await;
        let sequence = delivery.stream_sequence;
        let outcome = match result {
            Ok(()) => delivery.ack().await,
            Err(e) => {
                let delay = if e.is_retryable() {
                    tracing::warn!(error = %e, sequence, "counting trends failed; retrying");
                    RETRY_DELAY
                } else {
                    tracing::error!(error = ?e, sequence, "counting trends failed");
                    FAILED_DELAY
                };
                delivery.nak(Some(delay)).await
            }
        };
        if let Err(e) = outcome {
            tracing::debug!(error = %e, sequence, "answering an event failed; it comes back");
        }
    }

    /// Apply one event. Idempotent: every count is once per account (per day or per post).
    pub async fn apply(&self, event: &Event, at_ms: u64) -> Result<(), DiscoveryError> {
        match event {
            Event::PostCreated { post } => self.posted(post).await,
            Event::Favourited {
                account_id,
                post_id,
                ..
            } => self.interacted(*account_id, *post_id, at_ms).await,
            Event::Reblogged { reblog, .. } => match reblog.reblog_of {
                Some(original) => self.interacted(reblog.author_id, original, at_ms).await,
                None => Ok(()),
            },
            Event::PostDeleted { post_id, .. } => {
                Ok(self.timelines.forget_trending_status(*post_id).await?)
            }
            Event::Followed { follower_id, .. } | Event::FollowAuthorized { follower_id, .. } => {
                Ok(self.timelines.want_suggestions(&[*follower_id]).await?)
            }
            Event::AccountCreated { account } => {
                Ok(self.timelines.want_suggestions(&[account.id]).await?)
            }
            _ => Ok(()),
        }
    }

    async fn posted(&self, post: &Post) -> Result<(), DiscoveryError> {
        if post.reblog_of.is_some() {
            return Ok(());
        }
        let Some(author) = self
            .store
            .accounts_by_ids(&[post.author_id])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        if author.suspended {
            return Ok(());
        }
        let active_for = self.settings.active_days.saturating_mul(DAY_MS);
        self.timelines
            .mark_active(
                author.id,
                post.created_at_ms,
                post.created_at_ms.saturating_sub(active_for),
            )
            .await?;
        if !policy::counts_for_trends(post, &author) {
            return Ok(());
        }
        let p = trend_params(&self.settings);
        let at = post.created_at_ms;
        self.timelines
            .record_uses(TrendKind::Tags, &post.hashtags, author.id, post.id, at, &p)
            .await?;
        let links = text::links(&post.text);
        self.timelines
            .record_uses(TrendKind::Links, &links, author.id, post.id, at, &p)
            .await?;
        Ok(())
    }

    /// `account` favourited or reblogged `post_id`: counted if the post may trend and the
    /// account is not its author.
    async fn interacted(&self, account: Id, post_id: Id, at_ms: u64) -> Result<(), DiscoveryError> {
        let Some(post) = self
            .store
            .posts_by_ids(&[post_id])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        if post.author_id == account {
            return Ok(());
        }
        let Some(author) = self
            .store
            .accounts_by_ids(&[post.author_id])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        if !policy::status_may_trend(&post, &author) {
            return Ok(());
        }
        let p = trend_params(&self.settings);
        self.timelines
            .record_interaction(post.id, author.id, account, at_ms, &p)
            .await?;
        Ok(())
    }
}

impl<S: Store + Clone> starling_bus::Handler for TrendsWorker<S> {
    fn handle(self, delivery: Delivery) -> impl Future<Output = ()> + Send + 'static {
        self.answer(delivery)
    }
}
