//! The consumer loop every event-consuming role shares (fan-out workers, search indexers):
//! pull only as many events as the role has room for, back off while NATS is unreachable,
//! and on shutdown hand over the events the server already sent before returning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{BusError, Delivery, EventConsumer, metrics};

/// Exponential backoff between retries of something that fails while a dependency is down:
/// `first`, doubled after each failure up to `max`, back to `first` after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// From 100 ms up to 5 s: what every role uses for NATS, the stream and the index lock.
    pub const FIRST: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(5);

    pub fn new(first: Duration, max: Duration) -> Backoff {
        let first = first.max(Duration::from_millis(1));
        Backoff {
            first,
            max: max.max(first),
            next: first,
        }
    }

    /// The delay to wait now; the one after it is twice as long (at most `max`).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleep for the next delay. `false` if `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(Backoff::FIRST, Backoff::MAX)
    }
}

/// Where a consumer loop puts the events it pulls: a role's bounded room for events.
pub trait Sink: Send {
    /// Proof of room for one event (a semaphore permit, a reserved channel slot).
    type Slot: Send;

    /// Wait for room for one more event. Returns the slot and how many events the next pull
    /// request may ask for (at least one), or `None` when the role takes no more events.
    fn reserve(&mut self) -> impl Future<Output = Option<(Self::Slot, usize)>> + Send;

    /// Hand over a pulled event in the slot reserved for it.
    fn deliver(&mut self, slot: Self::Slot, delivery: Delivery);

    /// An event that could not be decoded was skipped (the consumer already answered it).
    fn unreadable(&mut self) {}
}

/// What a worker role does with one event: apply it and answer it (ack or nak).
pub trait Handler: Clone + Send + Sync + 'static {
    fn handle(self, delivery: Delivery) -> impl Future<Output = ()> + Send + 'static;
}

/// A worker role's room for events: `concurrency` slots, each event handled by `H` in its
/// own task. The [`Sink`] the worker roles (fan-out, media) hand to [`consume`]; the tasks
/// are owned here, so dropping it (aborting the role) aborts them.
pub struct Slots<H> {
    handler: H,
    slots: Arc<Semaphore>,
    in_flight: JoinSet<()>,
    unreadable: fn(),
}

impl<H: Handler> Slots<H> {
    /// `unreadable` is called for each event that could not be decoded (a metric).
    pub fn new(handler: H, concurrency: usize, unreadable: fn()) -> Self {
        Slots {
            handler,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            in_flight: JoinSet::new(),
            unreadable,
        }
    }

    /// Events being handled now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Wait until every event in flight is handled.
    pub async fn finish(self) {
        let mut in_flight = self.in_flight;
        while let Some(done) = in_flight.join_next().await {
            report(done);
        }
    }
}

fn report(done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "an event's task panicked; the event will be redelivered");
    }
}

impl<H: Handler> Sink for Slots<H> {
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
        let handler = self.handler.clone();
        self.in_flight.spawn(async move {
            let _slot = permit;
            handler.handle(delivery).await;
        });
    }

    fn unreadable(&mut self) {
        (self.unreadable)();
    }
}

/// Run `work` for `delivery`, telling the server every `ack_wait / 2` that it is still in
/// progress, so a long event (a big fan-out, a large picture) is not redelivered meanwhile.
pub async fn extending_ack_wait<T>(
    delivery: &Delivery,
    ack_wait: Duration,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let every = (ack_wait / 2).max(Duration::from_millis(50));
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = progress.tick() => {
                if let Err(e) = delivery.in_progress().await {
                    tracing::debug!(error = %e, "could not extend an event's ack wait");
                }
            }
        }
    }
}

/// Pull events from `consumer` into `sink` until `shutdown` is cancelled (or the sink takes
/// no more), backing off while NATS cannot be reached; then hand over the events the server
/// already sent for the open pull request, and return.
///
/// Every pull failure is counted in `starling_consumer_pull_failures_total{consumer}`, and
/// the first pull that works after failures is logged, so an outage and its end both show.
pub async fn consume<S: Sink>(
    consumer: &mut EventConsumer,
    sink: &mut S,
    shutdown: &CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut failing = false;
    loop {
        let reserved = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            reserved = sink.reserve() => reserved,
        };
        let Some((slot, room)) = reserved else {
            return;
        };
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = consumer.next(room.max(1)) => next,
        };
        match next {
            Ok(delivery) => {
                if failing {
                    tracing::info!(consumer = consumer.name(), "pulling events works again");
                    failing = false;
                }
                backoff.reset();
                sink.deliver(slot, delivery);
            }
            // Logged and answered by the consumer; nothing to hand over.
            Err(BusError::Decode { .. }) => sink.unreadable(),
            Err(e) => {
                failing = true;
                metrics::pull_failed(consumer.name());
                let delay = backoff.next_delay();
                tracing::warn!(consumer = consumer.name(), error = %e, retry_in = ?delay, "pulling events failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    drain(consumer, sink).await;
}

/// Hand over the events the server already sent for the open pull request (after shutdown:
/// applying them here beats leaving them to be redelivered elsewhere after the ack wait).
async fn drain<S: Sink>(consumer: &mut EventConsumer, sink: &mut S) {
    while let Some(next) = consumer.next_requested().await {
        match next {
            Ok(delivery) => match sink.reserve().await {
                Some((slot, _)) => sink.deliver(slot, delivery),
                None => return,
            },
            Err(BusError::Decode { .. }) => sink.unreadable(),
            Err(e) => {
                tracing::warn!(consumer = consumer.name(), error = %e, "pulling the last events failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_wait_stops_at_shutdown() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        let shutdown = CancellationToken::new();
        let started = tokio::time::Instant::now();
        assert!(b.wait(&shutdown).await, "an uncancelled wait sleeps it out");
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        shutdown.cancel();
        assert!(!b.wait(&shutdown).await);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(60),
            "a cancelled wait is cut short"
        );
    }
}
