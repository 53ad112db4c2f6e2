//! The push worker: its own durable consumer on the event stream (any number of processes
//! share it), turning each `notification.created` into encrypted pushes to the recipient's
//! subscriptions that take it.
//!
//! An event is acked once every push for it is sent, refused or given up on, so a worker
//! that dies mid-way leaves the event to be redelivered (at least once). A push carries the
//! notification id as its `Topic`, so a push service replaces a not yet delivered duplicate
//! rather than showing it twice. Each subscription's push runs in its own task and each
//! host has its own bounded slots and timeouts, so one slow push service holds only its own
//! pushes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use starling_bus::{Bus, Delivery, Sink};
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::ids::now_ms;
use starling_schema::model::Notification;
use starling_schema::push::{PushPayload, PushSubscription, body, decode_keys, title};
use starling_schema::settings::PushSettings;
use starling_store::Store;
use starling_timeline::Timelines;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::crypto::{Encoding, Receiver};
use crate::deliver::{Deliverer, Message, Outcome};
use crate::{PushError, metrics};

/// Redelivery delay after a failure that may pass (the store was unavailable).
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Sends pushes for notifications. Cheap to clone.
#[derive(Clone)]
pub struct PushWorker<S> {
    store: S,
    deliverer: Deliverer,
    settings: Arc<PushSettings>,
    /// Where delivery counts are kept for `starling admin push stats`; none keeps none.
    counters: Option<Timelines>,
    /// The instance's base URL, for icons.
    public_url: Arc<str>,
}

/// What became of the pushes for one notification, per subscription.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub outcomes: Vec<(String, Outcome)>,
    /// Subscriptions left out by their alerts or policy.
    pub filtered: usize,
}

impl<S: Store + Clone> PushWorker<S> {
    pub fn new(
        store: S,
        deliverer: Deliverer,
        settings: &PushSettings,
        public_url: &str,
    ) -> PushWorker<S> {
        PushWorker {
            store,
            deliverer,
            settings: Arc::new(settings.clone()),
            counters: None,
            public_url: public_url.trim_end_matches('/').into(),
        }
    }

    /// Also count deliveries in Redis, where every worker's counts add up.
    pub fn with_counters(mut self, timelines: Timelines) -> Self {
        self.counters = Some(timelines);
        self
    }

    /// Consume `settings.consumer` until `shutdown`, up to `concurrency` notifications in
    /// flight; then finish those in flight and return.
    pub async fn run(&self, bus: Bus, shutdown: CancellationToken) -> Result<(), PushError> {
        let Some(mut consumer) = bus
            .wait_for_consumer(&self.settings.consumer, &shutdown)
            .await?
        else {
            return Ok(());
        };
        tracing::info!(consumer = consumer.name(), "push worker started");
        let mut room = Room {
            worker: self.clone(),
            slots: Arc::new(Semaphore::new(self.settings.concurrency.max(1))),
            in_flight: JoinSet::new(),
        };
        starling_bus::consume(&mut consumer, &mut room, &shutdown).await;
        while room.in_flight.join_next().await.is_some() {}
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "acks may not have reached NATS; those pushes may repeat");
        }
        tracing::info!("push worker stopped");
        Ok(())
    }

    async fn handle(self, delivery: Delivery, permit: OwnedSemaphorePermit) {
        let _slot = permit;
        let Event::NotificationCreated { notification } = &delivery.envelope.event else {
            // Not ours: the stream carries every event.
            if let Err(e) = delivery.ack().await {
                tracing::debug!(error = %e, "ack failed");
            }
            return;
        };
        match self.push(notification).await {
            Ok(report) => {
                metrics::lag(now_ms().saturating_sub(delivery.envelope.at_ms));
                self.count(&report).await;
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, "ack failed; the pushes may repeat");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, notification = %notification.id, "push failed; retrying");
                if let Err(e) = delivery.nak(Some(RETRY_DELAY)).await {
                    tracing::debug!(error = %e, "nak failed; redelivered after the ack wait");
                }
            }
        }
    }

    /// Push `n` to its recipient's subscriptions that take it: not for a suspended or gone
    /// recipient, not through a revoked or expired token (whose subscription is deleted),
    /// only where the alerts name its type and the policy lets its actor through. A
    /// subscription answered 404 or 410 is deleted.
    pub async fn push(&self, n: &Notification) -> Result<Report, PushError> {
        let mut report = Report::default();
        let subs = self.store.push_subscriptions_of(n.account_id).await?;
        if subs.is_empty() {
            return Ok(report);
        }
        let accounts = self
            .store
            .accounts_by_ids(&[n.account_id, n.from_account_id])
            .await?;
        let Some(recipient) = accounts.iter().find(|a| a.id == n.account_id) else {
            return Ok(report);
        };
        if recipient.suspended {
            return Ok(report);
        }
        let actor = accounts.iter().find(|a| a.id == n.from_account_id);
        let now = now_ms();
        let live: HashSet<String> = self
            .store
            .tokens_of(n.account_id)
            .await?
            .into_iter()
            .filter(|t| !t.expired_at(now))
            .map(|t| t.token_hash)
            .collect();
        let kind = n.kind.as_str();
        let mut wanted = Vec::new();
        for sub in subs {
            if !live.contains(&sub.token_hash) {
                self.store
                    .delete_push_subscription(sub.account_id, &sub.token_hash)
                    .await?;
                continue;
            }
            if sub.alerts.allows(kind) {
                wanted.push(sub);
            } else {
                report.filtered += 1;
            }
        }
        if wanted.iter().any(|s| s.policy.needs_relationship()) {
            let rel = self
                .store
                .relationships(n.account_id, &[n.from_account_id])
                .await?;
            let (follows, followed_by) = rel
                .first()
                .map_or((false, false), |r| (r.following, r.followed_by));
            let before = wanted.len();
            wanted.retain(|s| s.policy.allows(follows, followed_by));
            report.filtered += before - wanted.len();
        } else {
            let before = wanted.len();
            wanted.retain(|s| s.policy.allows(false, false));
            report.filtered += before - wanted.len();
        }
        if wanted.is_empty() {
            return Ok(report);
        }
        let post = match n.post_id {
            Some(id) => self.store.posts_by_ids(&[id]).await?.into_iter().next(),
            None => None,
        };
        let actor_name = actor.map_or("someone", |a| {
            if a.display_name.trim().is_empty() {
                a.username.as_str()
            } else {
                a.display_name.as_str()
            }
        });
        let text = match (&post, actor) {
            (Some(p), _) => body(&p.spoiler_text, &p.text),
            (None, Some(a)) => body("", &a.note),
            (None, None) => String::new(),
        };
        let base = Template {
            notification_id: n.id.to_string(),
            notification_type: kind.to_owned(),
            icon: format!("{}/avatars/original/missing.png", self.public_url),
            title: title(kind, actor_name),
            body: text,
        };
        let mut sends = JoinSet::new();
        for sub in wanted {
            let worker = self.clone();
            let base = base.clone();
            sends.spawn(async move {
                let outcome = worker.send_one(&sub, &base).await;
                (sub, outcome)
            });
        }
        while let Some(done) = sends.join_next().await {
            let Ok((sub, outcome)) = done else { continue };
            if outcome == Outcome::Gone {
                self.store
                    .delete_push_subscription(sub.account_id, &sub.token_hash)
                    .await?;
            }
            match &outcome {
                Outcome::Failed(why) => {
                    tracing::info!(subscription = %sub.id, reason = %why, "push not delivered")
                }
                Outcome::Refused(status) => {
                    tracing::info!(subscription = %sub.id, status, "push refused by the push service")
                }
                Outcome::Delivered | Outcome::Gone => {}
            }
            report.outcomes.push((sub.token_hash, outcome));
        }
        Ok(report)
    }

    /// Send a test notification to each of `account`'s subscriptions whose token is live,
    /// whatever their alerts and policy (`starling admin push test`).
    pub async fn test(&self, account: Id) -> Result<Report, PushError> {
        let now = now_ms();
        let live: HashSet<String> = self
            .store
            .tokens_of(account)
            .await?
            .into_iter()
            .filter(|t| !t.expired_at(now))
            .map(|t| t.token_hash)
            .collect();
        let base = Template {
            notification_id: "0".into(),
            notification_type: "mention".into(),
            icon: format!("{}/avatars/original/missing.png", self.public_url),
            title: "Test notification".into(),
            body: "Web Push works for this device.".into(),
        };
        let mut report = Report::default();
        for sub in self.store.push_subscriptions_of(account).await? {
            if live.contains(&sub.token_hash) {
                let outcome = self.send_one(&sub, &base).await;
                report.outcomes.push((sub.token_hash, outcome));
            }
        }
        Ok(report)
    }

    async fn send_one(&self, sub: &PushSubscription, base: &Template) -> Outcome {
        let receiver = decode_keys(&sub.p256dh, &sub.auth)
            .ok()
            .and_then(|(p256dh, auth)| Receiver::new(&p256dh, &auth).ok());
        let Some(receiver) = receiver else {
            return Outcome::Failed("the subscription's keys are unusable".into());
        };
        let payload = PushPayload {
            // Sealed under another VAPID key (the key was changed): the token is unknown,
            // and the user agent's subscription no longer matches either.
            access_token: self
                .deliverer
                .vapid()
                .open(&sub.sealed_token)
                .unwrap_or_default(),
            preferred_locale: "en".into(),
            notification_id: base.notification_id.clone(),
            notification_type: base.notification_type.clone(),
            icon: base.icon.clone(),
            title: base.title.clone(),
            body: base.body.clone(),
        };
        let Ok(bytes) = serde_json::to_vec(&payload) else {
            return Outcome::Failed("the payload could not be encoded".into());
        };
        let encoding = if sub.standard {
            Encoding::Aes128Gcm
        } else {
            Encoding::AesGcm
        };
        let urgency = match base.notification_type.as_str() {
            "mention" | "follow_request" => "high",
            _ => "normal",
        };
        let outcome = self
            .deliverer
            .send(&Message {
                endpoint: &sub.endpoint,
                receiver: &receiver,
                encoding,
                payload: &bytes,
                topic: Some(&base.notification_id),
                urgency,
            })
            .await;
        metrics::message(outcome.label());
        outcome
    }

    async fn count(&self, report: &Report) {
        let Some(counters) = &self.counters else {
            return;
        };
        // Only notifications for someone with a subscription: most have none.
        if report.outcomes.is_empty() && report.filtered == 0 {
            return;
        }
        let mut by: Vec<(&str, u64)> = vec![("notifications", 1)];
        if report.filtered > 0 {
            by.push(("filtered", report.filtered as u64));
        }
        for (_, outcome) in &report.outcomes {
            by.push((outcome.label(), 1));
        }
        if let Err(e) = counters.bump_counters("push", &by).await {
            tracing::debug!(error = %e, "push counters not updated");
        }
    }
}

/// What every push for one notification shares.
#[derive(Clone)]
struct Template {
    notification_id: String,
    notification_type: String,
    icon: String,
    title: String,
    body: String,
}

/// The worker's room for notifications: `concurrency` slots, each in its own task.
struct Room<S> {
    worker: PushWorker<S>,
    slots: Arc<Semaphore>,
    in_flight: JoinSet<()>,
}

impl<S: Store + Clone> Sink for Room<S> {
    type Slot = OwnedSemaphorePermit;

    async fn reserve(&mut self) -> Option<(OwnedSemaphorePermit, usize)> {
        loop {
            tokio::select! {
                biased;
                Some(_) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {}
                permit = Arc::clone(&self.slots).acquire_owned() => {
                    let permit = permit.ok()?;
                    return Some((permit, self.slots.available_permits() + 1));
                }
            }
        }
    }

    fn deliver(&mut self, permit: OwnedSemaphorePermit, delivery: Delivery) {
        self.in_flight
            .spawn(self.worker.clone().handle(delivery, permit));
    }
}
