//! The write path's publisher and its outbox.
//!
//! An event is either acked by JetStream or kept in the store's outbox before
//! [`Publisher::publish`] returns, so a write acknowledged to a client is never lost while
//! NATS is down. Order: while the outbox holds events, new events are appended to it
//! rather than published directly, and the outbox is drained oldest first, so an event can
//! never overtake one that was published (returned) before it, such as a delete its create.
//!
//! The switch back to direct publishing is the delicate part. "Queued" is set before an
//! event is pushed to the outbox, under a shared guard of `gate`; it is cleared only under
//! the exclusive guard, after the outbox was read empty. So no push is in progress when
//! the outbox is seen empty, and an event that returned from `publish` through the outbox
//! is either published already or keeps the publisher queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use starling_schema::events::{Envelope, Event};
use starling_schema::ids::now_ms;
use starling_schema::settings::NatsSettings;
use starling_store::Store;
use tokio::sync::{Notify, OnceCell, RwLock};
use tokio_util::sync::CancellationToken;

use crate::{Bus, BusError, PublishError, metrics, new_event_id};

/// Outbox events published per round trip while draining.
const DRAIN_BATCH: usize = 64;

/// Publishes events for the write path; see the module docs. Cheap to clone.
pub struct Publisher<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Publisher<S> {
    fn clone(&self) -> Self {
        Publisher {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<S> {
    bus: Bus,
    store: S,
    retry_every: Duration,
    /// New events must go behind the outbox.
    queued: AtomicBool,
    /// Shared by outbox pushes, exclusive while deciding the outbox is empty.
    gate: RwLock<()>,
    /// Events in the outbox as far as this process knows (exact once drained empty).
    pending: AtomicU64,
    /// Whether the outbox left by an earlier run has been looked at.
    checked: OnceCell<()>,
    /// Wakes the drain loop after a failed publish.
    wake: Notify,
}

impl<S: Store + Clone> Publisher<S> {
    pub fn new(bus: Bus, store: S, settings: &NatsSettings) -> Self {
        Publisher {
            shared: Arc::new(Shared {
                bus,
                store,
                retry_every: Duration::from_millis(settings.outbox_retry_ms.max(1)),
                queued: AtomicBool::new(false),
                gate: RwLock::new(()),
                pending: AtomicU64::new(0),
                checked: OnceCell::new(),
                wake: Notify::new(),
            }),
        }
    }

    /// Publish `event` in a new envelope. Returns once JetStream acked it or it is kept in
    /// the outbox; fails only if both failed.
    pub async fn publish(&self, event: Event) -> Result<(), PublishError> {
        let env = Envelope::new(new_event_id(), event, now_ms());
        let s = &self.shared;
        let checked = self.check_outbox().await;
        if checked && !s.queued.load(Ordering::SeqCst) {
            match s.bus.publish(&env).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    metrics::publish_failed();
                    tracing::warn!(
                        event_id = %env.id,
                        event_type = env.event.type_name(),
                        error = %e,
                        "publish failed; keeping the event in the outbox"
                    );
                    let kept = self.push(&env).await;
                    s.wake.notify_one();
                    return kept.map_err(|outbox| PublishError {
                        event_id: env.id.clone(),
                        publish: e,
                        outbox,
                    });
                }
            }
        }
        match self.push(&env).await {
            Ok(()) => Ok(()),
            Err(outbox) => {
                // Out of order is better than lost: the consumers apply events idempotently
                // and re-check the store where order matters.
                tracing::warn!(
                    event_id = %env.id,
                    error = %outbox,
                    "the outbox cannot take an event; publishing it directly"
                );
                s.bus.publish(&env).await.map_err(|publish| PublishError {
                    event_id: env.id.clone(),
                    publish,
                    outbox,
                })
            }
        }
    }

    /// Keep `env` in the outbox, switching new events to the outbox first.
    async fn push(&self, env: &Envelope) -> Result<(), starling_store::StoreError> {
        let s = &self.shared;
        let _shared = s.gate.read().await;
        s.queued.store(true, Ordering::SeqCst);
        s.store.outbox_push(env.encode()).await?;
        let n = s.pending.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::outbox_pending(n);
        Ok(())
    }

    /// Look once at the outbox an earlier run may have left. False if the store could not
    /// say (then events go to the outbox, to be safe).
    async fn check_outbox(&self) -> bool {
        let s = &self.shared;
        let result = s
            .checked
            .get_or_try_init(|| async {
                let left = s.store.outbox_peek(1).await?;
                if !left.is_empty() {
                    tracing::info!(
                        "events left in the outbox by an earlier run; queueing behind them"
                    );
                    s.queued.store(true, Ordering::SeqCst);
                    let n = s.pending.fetch_max(1, Ordering::SeqCst).max(1);
                    metrics::outbox_pending(n);
                }
                Ok::<(), starling_store::StoreError>(())
            })
            .await;
        match result {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                false
            }
        }
    }

    /// Drain the outbox until `shutdown` is cancelled: at once (events left by a crash),
    /// then every `outbox_retry_ms` and whenever a publish fails. Events are published
    /// oldest first and each is removed once JetStream acked it.
    pub async fn run_outbox(&self, shutdown: CancellationToken) {
        let s = &self.shared;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            self.check_outbox().await;
            if let Err(e) = self.drain(&shutdown).await {
                tracing::warn!(error = %e, pending = self.outbox_pending(), "outbox not drained yet");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(s.retry_every) => {}
                () = s.wake.notified() => {}
            }
        }
    }

    /// Publish what the outbox holds, oldest first, until it is empty or a publish fails.
    async fn drain(&self, shutdown: &CancellationToken) -> Result<(), DrainError> {
        let s = &self.shared;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let batch = s.store.outbox_peek(DRAIN_BATCH).await?;
            if batch.is_empty() {
                // Exclusive: no push is in progress, so empty now means empty.
                let _exclusive = s.gate.write().await;
                if s.store.outbox_peek(1).await?.is_empty() {
                    if s.queued.swap(false, Ordering::SeqCst) {
                        tracing::info!("outbox drained; publishing directly again");
                    }
                    s.pending.store(0, Ordering::SeqCst);
                    metrics::outbox_pending(0);
                    return Ok(());
                }
                continue;
            }
            let mut items = Vec::with_capacity(batch.len());
            let mut ids = Vec::with_capacity(batch.len());
            let mut types = Vec::with_capacity(batch.len());
            for (outbox_id, payload) in batch {
                match Head::read(&payload) {
                    Some(head) => {
                        items.push((s.bus.subject_of(&head.r#type), head.id, payload));
                        ids.push(outbox_id);
                        types.push(head.r#type);
                    }
                    None => {
                        // It can never be published, and it would block every event behind it.
                        tracing::error!(%outbox_id, bytes = payload.len(), "dropping an unreadable outbox entry");
                        s.store.outbox_remove(outbox_id).await?;
                        self.removed();
                    }
                }
            }
            let (acked, error) = s.bus.publish_pipelined(&items).await;
            for (outbox_id, type_name) in ids.iter().zip(&types).take(acked) {
                metrics::published(type_name);
                s.store.outbox_remove(*outbox_id).await?;
                self.removed();
            }
            if let Some(e) = error {
                metrics::publish_failed();
                return Err(DrainError::Publish(e));
            }
        }
    }

    fn removed(&self) {
        let s = &self.shared;
        let before = s
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0);
        metrics::outbox_pending(before.saturating_sub(1));
    }

    /// Events waiting in the outbox as far as this process knows: exact once it has been
    /// drained empty; after a restart, at least 1 while events left by the earlier run wait.
    pub fn outbox_pending(&self) -> u64 {
        self.shared.pending.load(Ordering::SeqCst)
    }

    /// Whether new events are currently going to the outbox instead of straight to NATS.
    pub fn queued(&self) -> bool {
        self.shared.queued.load(Ordering::SeqCst)
    }
}

/// Just enough of an envelope to publish it: its id and type. Reading no more lets an
/// outbox entry written by a newer build still be published for newer consumers.
#[derive(Deserialize)]
struct Head {
    id: String,
    r#type: String,
}

impl Head {
    fn read(payload: &[u8]) -> Option<Head> {
        let head: Head = serde_json::from_slice(payload).ok()?;
        let valid = !head.id.is_empty()
            && !head.r#type.is_empty()
            && head
                .r#type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
        valid.then_some(head)
    }
}

#[derive(Debug, thiserror::Error)]
enum DrainError {
    #[error(transparent)]
    Store(#[from] starling_store::StoreError),
    #[error(transparent)]
    Publish(BusError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_schema::Id;

    #[test]
    fn the_head_of_an_envelope_names_its_subject_and_id() {
        let env = Envelope::new(
            "abc".into(),
            Event::Followed {
                follower_id: Id(1),
                followee_id: Id(2),
            },
            5,
        );
        let head = Head::read(&env.encode()).unwrap();
        assert_eq!(head.id, "abc");
        assert_eq!(head.r#type, "follow.created");
        let newer = br#"{"v":7,"id":"x","type":"post.created","at_ms":1,"data":{"novel":1}}"#;
        assert_eq!(Head::read(newer).unwrap().r#type, "post.created");
        assert!(Head::read(b"not json").is_none());
        assert!(Head::read(br#"{"id":"x","type":"a b"}"#).is_none());
    }
}
