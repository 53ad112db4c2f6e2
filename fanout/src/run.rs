//! The worker loop: the shared durable consumer, a bounded number of events in flight.

use std::sync::Arc;
use std::time::Duration;

use starling_bus::{Bus, Delivery};
use starling_schema::ids::now_ms;
use starling_store::Store;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{Fanout, FanoutError, metrics};

/// Redelivery delay after a failure that may pass (a shard or the store was unavailable).
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Redelivery delay after a failure that will probably not pass by itself (a bug, corrupt
/// data): the event is kept, not dropped, but does not spin.
const FAILED_DELAY: Duration = Duration::from_secs(30);
/// How often the consumer-pending gauge is refreshed.
const STATS_EVERY: Duration = Duration::from_secs(5);

impl<S: Store + Clone> Fanout<S> {
    /// Consume the durable consumer `settings.consumer` (shared by every worker) with up to
    /// `settings.concurrency` events in flight. An event is acked once applied; on a
    /// failure it is handed back to be redelivered after a delay. While an event takes
    /// long (a big fan-out), its ack wait is extended so it is not redelivered meanwhile.
    ///
    /// When `shutdown` is cancelled: no new pull request is made, the events the server
    /// already handed to this worker and those in flight are applied and acked, and it
    /// returns. If NATS is down at start it waits for it. Dropping the future (aborting
    /// the task) stops everything at once; unacked events are then redelivered to another
    /// worker after `ack_wait`.
    pub async fn run(&self, bus: Bus, shutdown: CancellationToken) -> Result<(), FanoutError> {
        let Some(mut consumer) = bus
            .wait_for_consumer(&self.settings.consumer, &shutdown)
            .await?
        else {
            return Ok(());
        };
        tracing::info!(
            consumer = consumer.name(),
            concurrency = self.settings.concurrency,
            "fan-out worker started"
        );
        let ack_wait = Duration::from_millis(bus.settings().ack_wait_ms.max(1));
        // Owned here, so aborting `run` aborts every task in them.
        let mut background: JoinSet<()> = JoinSet::new();
        background.spawn(refresh_pending(bus.clone(), consumer.name().to_owned()));
        let mut workers = Workers {
            fanout: self.clone(),
            slots: Arc::new(Semaphore::new(self.settings.concurrency.max(1))),
            in_flight: JoinSet::new(),
            ack_wait,
        };
        starling_bus::consume(&mut consumer, &mut workers, &shutdown).await;
        let mut in_flight = workers.in_flight;
        tracing::info!(
            in_flight = in_flight.len(),
            "fan-out worker stopping: finishing the events in flight"
        );
        while let Some(done) = in_flight.join_next().await {
            report(done);
        }
        background.shutdown().await;
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "acks may not have reached NATS; those events will be applied again");
        }
        tracing::info!("fan-out worker stopped");
        Ok(())
    }

    /// Apply one delivery and answer it, holding its slot until done.
    async fn handle(self, delivery: Delivery, permit: OwnedSemaphorePermit, ack_wait: Duration) {
        let _slot = permit;
        let event = &delivery.envelope.event;
        let type_name = event.type_name();
        let result = {
            let apply = self.apply(event);
            tokio::pin!(apply);
            let every = (ack_wait / 2).max(Duration::from_millis(50));
            let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    result = &mut apply => break result,
                    _ = progress.tick() => {
                        if let Err(e) = delivery.in_progress().await {
                            tracing::debug!(error = %e, "could not extend an event's ack wait");
                        }
                    }
                }
            }
        };
        let sequence = delivery.stream_sequence;
        match result {
            Ok(()) => {
                let lag_ms = now_ms().saturating_sub(delivery.envelope.at_ms);
                metrics::lag(lag_ms as f64 / 1_000.0);
                metrics::event(type_name, "applied");
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, sequence, "ack failed; the event will be applied again");
                }
            }
            Err(e) => {
                let (outcome, delay) = if e.is_retryable() {
                    tracing::warn!(error = %e, sequence, event = type_name, "fan-out failed; retrying");
                    ("retried", RETRY_DELAY)
                } else {
                    tracing::error!(error = ?e, sequence, event = type_name, "fan-out failed");
                    ("failed", FAILED_DELAY)
                };
                metrics::event(type_name, outcome);
                if let Err(e) = delivery.nak(Some(delay)).await {
                    tracing::warn!(error = %e, sequence, "nak failed; the event comes back after its ack wait");
                }
            }
        }
    }
}

/// The worker's room for events: `concurrency` slots, each event applied in its own task.
struct Workers<S> {
    fanout: Fanout<S>,
    slots: Arc<Semaphore>,
    /// Owned here, so aborting `run` aborts every task in it.
    in_flight: JoinSet<()>,
    ack_wait: Duration,
}

impl<S: Store + Clone> starling_bus::Sink for Workers<S> {
    type Slot = OwnedSemaphorePermit;

    async fn reserve(&mut self) -> Option<(OwnedSemaphorePermit, usize)> {
        loop {
            tokio::select! {
                biased;
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => report(done),
                permit = Arc::clone(&self.slots).acquire_owned() => {
                    let permit = permit.ok()?;
                    return Some((permit, self.slots.available_permits() + 1));
                }
            }
        }
    }

    fn deliver(&mut self, permit: OwnedSemaphorePermit, delivery: Delivery) {
        self.in_flight
            .spawn(self.fanout.clone().handle(delivery, permit, self.ack_wait));
    }

    fn unreadable(&mut self) {
        metrics::event("unknown", "unreadable");
    }
}

fn report(done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "a fan-out task panicked; its event will be redelivered");
    }
}

async fn refresh_pending(bus: Bus, name: String) {
    loop {
        match bus.consumer_stats(&name).await {
            Ok(stats) => metrics::consumer_pending(stats.pending),
            Err(e) => tracing::debug!(error = %e, "could not read the consumer's state"),
        }
        tokio::time::sleep(STATS_EVERY).await;
    }
}
