//! Durable pull consumers: decoded events with a handle to acknowledge them.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use starling_schema::events::{DecodeError, Envelope};

use crate::{Bus, BusError};

/// How long an event of a newer format is held back before it is offered again, so that
/// during a rolling upgrade a newer worker can take it.
pub const NEWER_VERSION_RETRY: Duration = Duration::from_secs(60);
/// Longest a pull request waits at the server for events before a new one is sent.
const MAX_PULL_WAIT: Duration = Duration::from_secs(5);
const MIN_PULL_WAIT: Duration = Duration::from_millis(100);
/// How much longer than its expiry a request may stay silent after a reconnection before
/// it is taken for lost.
const LOST_REQUEST_GRACE: Duration = Duration::from_secs(1);

pub(crate) fn check_name(name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidName(name.to_owned()))
    }
}

/// A durable pull consumer of the event stream (see [`Bus::durable_consumer`]).
///
/// Events are pulled only as fast as the caller has room for them ([`next`](Self::next)
/// takes the number of free slots), so none waits in a local buffer while its `ack_wait`
/// runs out. A pull request stays open at the server for a few seconds; events published
/// meanwhile arrive at once.
pub struct EventConsumer {
    name: String,
    consumer: PullConsumer,
    /// The open pull request, if any.
    batch: Option<consumer::pull::Batch>,
    pull_wait: Duration,
    /// When the open request was sent, until it yields an event.
    opened: Option<std::time::Instant>,
    /// When a reconnection was seen while the open request was waiting.
    reconnected: Option<tokio::time::Instant>,
    /// Changes when the connection is made again: a restarted server has forgotten the
    /// open pull request, so a new one is sent at once.
    connections: tokio::sync::watch::Receiver<u64>,
}

impl EventConsumer {
    pub(crate) fn new(bus: &Bus, name: String, consumer: PullConsumer, ack_wait: Duration) -> Self {
        let mut connections = bus.connections.clone();
        connections.mark_unchanged();
        EventConsumer {
            name,
            connections,
            consumer,
            batch: None,
            pull_wait: (ack_wait / 3).clamp(MIN_PULL_WAIT, MAX_PULL_WAIT),
            opened: None,
            reconnected: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next event, waiting for one if none is available. When a new pull request is
    /// needed it asks for at most `room` events (at least one).
    ///
    /// An `Err` is not the end: a [`BusError::Decode`] names an event that was already
    /// answered (held back or terminated) and skipped; other errors mean NATS could not be
    /// reached, and the caller should wait a little and call again.
    pub async fn next(&mut self, room: usize) -> Result<Delivery, BusError> {
        loop {
            let batch = match self.batch.as_mut() {
                Some(batch) => batch,
                None => {
                    // A request that ended at once, empty, must not become a busy loop.
                    if let Some(opened) = self.opened.take()
                        && opened.elapsed() < self.pull_wait / 2
                    {
                        tokio::time::sleep(MIN_PULL_WAIT / 2).await;
                    }
                    // Only a reconnection after this request is sent can lose it.
                    self.connections.mark_unchanged();
                    self.reconnected = None;
                    let batch = self
                        .consumer
                        .batch()
                        .max_messages(room.max(1))
                        .expires(self.pull_wait)
                        .messages()
                        .await
                        .map_err(|source| BusError::Pull {
                            name: self.name.clone(),
                            source: Box::new(source),
                        })?;
                    self.opened = Some(std::time::Instant::now());
                    self.batch.insert(batch)
                }
            };
            // After a reconnection the open request may be gone (a restarted server forgets
            // it) or still live (the server only lost the connection, and will deliver to it
            // or end it when it expires). A live one always answers within `pull_wait`, so one
            // that stays silent longer is renewed; dropping a live one would strand events
            // until their ack wait ran out.
            let lost_after = self
                .reconnected
                .map(|at| at + self.pull_wait + LOST_REQUEST_GRACE);
            let next = tokio::select! {
                next = batch.next() => next,
                Ok(()) = self.connections.changed(), if lost_after.is_none() => {
                    self.reconnected = Some(tokio::time::Instant::now());
                    continue;
                }
                () = tokio::time::sleep_until(lost_after.unwrap_or_else(tokio::time::Instant::now)),
                    if lost_after.is_some() =>
                {
                    tracing::debug!(consumer = %self.name, "pull request lost with the connection; renewing it");
                    self.batch = None;
                    self.reconnected = None;
                    continue;
                }
            };
            self.reconnected = None;
            match next {
                Some(Ok(message)) => {
                    self.opened = None;
                    return self.decode(message).await;
                }
                Some(Err(source)) => {
                    self.batch = None;
                    return Err(BusError::Pull {
                        name: self.name.clone(),
                        source,
                    });
                }
                // The request was served or expired: open another.
                None => self.batch = None,
            }
        }
    }

    /// The next event of the pull request already open, without opening another; `None`
    /// once that request is done (served, or expired within a few seconds). Used when
    /// stopping, so events the server already handed to this consumer are processed here
    /// rather than redelivered elsewhere after `ack_wait`.
    pub async fn next_requested(&mut self) -> Option<Result<Delivery, BusError>> {
        let batch = self.batch.as_mut()?;
        match batch.next().await {
            Some(Ok(message)) => Some(self.decode(message).await),
            Some(Err(source)) => {
                self.batch = None;
                Some(Err(BusError::Pull {
                    name: self.name.clone(),
                    source,
                }))
            }
            None => {
                self.batch = None;
                None
            }
        }
    }

    /// What the server knows of this consumer.
    pub async fn stats(&self) -> Result<ConsumerStats, BusError> {
        let info = self
            .consumer
            .get_info()
            .await
            .map_err(|source| BusError::Consumer {
                name: self.name.clone(),
                action: "reading the state of",
                source: Box::new(source),
            })?;
        Ok(ConsumerStats::from_info(&info))
    }

    async fn decode(&self, message: jetstream::Message) -> Result<Delivery, BusError> {
        let (stream_sequence, deliveries) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered.max(1)),
            Err(_) => (0, 1),
        };
        let (message, acker) = message.split();
        match Envelope::decode(&message.payload) {
            Ok(envelope) => Ok(Delivery {
                envelope,
                redelivered: deliveries > 1,
                deliveries: u64::try_from(deliveries).unwrap_or(1),
                stream_sequence,
                acker,
            }),
            Err(source) => {
                let subject = message.subject.to_string();
                let answer = match &source {
                    DecodeError::NewerVersion { found } => {
                        tracing::error!(
                            consumer = %self.name,
                            stream_sequence,
                            %subject,
                            version = found,
                            error = %source,
                            "event of a newer format; holding it back for a newer worker"
                        );
                        AckKind::Nak(Some(NEWER_VERSION_RETRY))
                    }
                    DecodeError::NoVersion(_) | DecodeError::Malformed { .. } => {
                        tracing::error!(
                            consumer = %self.name,
                            stream_sequence,
                            %subject,
                            error = %source,
                            "malformed event; terminating it"
                        );
                        AckKind::Term
                    }
                };
                if let Err(e) = acker.ack_with(answer).await {
                    tracing::warn!(stream_sequence, error = %e, "could not answer an unreadable event");
                }
                Err(BusError::Decode {
                    stream_sequence,
                    subject,
                    source,
                })
            }
        }
    }
}

/// One event handed to a consumer. Answer it with [`ack`](Self::ack) once applied, or
/// [`nak`](Self::nak) to have it redelivered; unanswered, it is redelivered after
/// `ack_wait`.
pub struct Delivery {
    pub envelope: Envelope,
    /// Delivered before (to this or another consumer) without being acked.
    pub redelivered: bool,
    /// How many times it has been delivered, this time included.
    pub deliveries: u64,
    /// Its position in the stream.
    pub stream_sequence: u64,
    acker: jetstream::message::Acker,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .field("redelivered", &self.redelivered)
            .field("deliveries", &self.deliveries)
            .field("stream_sequence", &self.stream_sequence)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Done: never deliver it again.
    pub async fn ack(self) -> Result<(), BusError> {
        self.answer(AckKind::Ack).await
    }

    /// Not done: deliver it again, after `delay` if given.
    pub async fn nak(self, delay: Option<Duration>) -> Result<(), BusError> {
        self.answer(AckKind::Nak(delay)).await
    }

    /// Still working on it: restart its `ack_wait`.
    pub async fn in_progress(&self) -> Result<(), BusError> {
        self.answer(AckKind::Progress).await
    }

    async fn answer(&self, kind: AckKind) -> Result<(), BusError> {
        self.acker
            .ack_with(kind)
            .await
            .map_err(|source| BusError::Ack {
                stream_sequence: self.stream_sequence,
                source,
            })
    }
}

/// A durable consumer's state as the server reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Events in the stream not yet delivered.
    pub pending: u64,
    /// Events delivered and not yet acked.
    pub ack_pending: u64,
    /// Events redelivered and not yet acked.
    pub redelivered: u64,
    /// Stream sequence up to which every event is acked.
    pub ack_floor: u64,
    /// Highest stream sequence delivered.
    pub delivered: u64,
}

impl ConsumerStats {
    pub(crate) fn from_info(info: &consumer::Info) -> Self {
        ConsumerStats {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
            redelivered: info.num_redelivered as u64,
            ack_floor: info.ack_floor.stream_sequence,
            delivered: info.delivered.stream_sequence,
        }
    }
}
