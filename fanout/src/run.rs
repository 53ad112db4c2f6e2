//! The worker loop: the shared durable consumer, a bounded number of events in flight.

use std::sync::Arc;
use std::time::Duration;

use starling_bus::{Bus, BusError, Delivery};
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
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

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
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        // Owned here, so aborting `run` aborts every task in them.
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut background: JoinSet<()> = JoinSet::new();
        background.spawn(refresh_pending(bus.clone(), consumer.name().to_owned()));
        let mut backoff = BACKOFF_FIRST;

        loop {
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    report(done);
                    continue;
                }
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_closed) => break,
                },
            };
            let room = slots.available_permits() + 1;
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                next = consumer.next(room) => next,
            };
            match next {
                Ok(delivery) => {
                    backoff = BACKOFF_FIRST;
                    in_flight.spawn(self.clone().handle(delivery, permit, ack_wait));
                }
                Err(BusError::Decode { .. }) => {
                    // Logged and answered by the consumer; nothing to apply.
                    metrics::event("unknown", "unreadable");
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "pulling events failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }

        tracing::info!(
            in_flight = in_flight.len(),
            "fan-out worker stopping: finishing the events it holds"
        );
        // Events the server already handed to this worker: apply them here rather than
        // leave them to be redelivered elsewhere after the ack wait.
        while let Some(next) = consumer.next_requested().await {
            match next {
                Ok(delivery) => match Arc::clone(&slots).acquire_owned().await {
                    Ok(permit) => {
                        in_flight.spawn(self.clone().handle(delivery, permit, ack_wait));
                    }
                    Err(_closed) => break,
                },
                Err(BusError::Decode { .. }) => metrics::event("unknown", "unreadable"),
                Err(e) => {
                    tracing::warn!(error = %e, "pulling the last events failed");
                    break;
                }
            }
        }
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
