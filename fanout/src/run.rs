//! The worker loop: the shared durable consumer, a bounded number of events in flight.

use std::time::Duration;

use starling_bus::{Bus, Delivery};
use starling_schema::ids::now_ms;
use starling_store::Store;
use tokio::task::JoinSet;
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
        // Ended polls are seen to by every worker, from the store's due list.
        background.spawn(self.clone().run_poll_expiry(shutdown.clone()));
        let mut workers = starling_bus::Slots::new(
            Worker {
                fanout: self.clone(),
                ack_wait,
            },
            self.settings.concurrency,
            || metrics::event("unknown", "unreadable"),
        );
        starling_bus::consume(&mut consumer, &mut workers, &shutdown).await;
        tracing::info!(
            in_flight = workers.in_flight(),
            "fan-out worker stopping: finishing the events in flight"
        );
        workers.finish().await;
        background.shutdown().await;
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "acks may not have reached NATS; those events will be applied again");
        }
        tracing::info!("fan-out worker stopped");
        Ok(())
    }

    /// Apply one delivery and answer it.
    async fn handle(self, delivery: Delivery, ack_wait: Duration) {
        let event = &delivery.envelope.event;
        let type_name = event.type_name();
        let result = starling_bus::extending_ack_wait(&delivery, ack_wait, self.apply(event)).await;
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

/// What each of the worker's slots runs: one event applied and answered.
#[derive(Clone)]
struct Worker<S> {
    fanout: Fanout<S>,
    ack_wait: Duration,
}

impl<S: Store + Clone> starling_bus::Handler for Worker<S> {
    fn handle(self, delivery: Delivery) -> impl Future<Output = ()> + Send + 'static {
        self.fanout.handle(delivery, self.ack_wait)
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
