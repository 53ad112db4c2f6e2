//! The event bus: Starling's side of NATS JetStream, shared by the api and fan-out roles.
//!
//! This crate owns the connection to NATS ([`Bus`]), the one stream that holds every event
//! (`{prefix}.events.{type}`, deduplicated by envelope id), durable pull consumers that
//! yield decoded [`Envelope`]s with a handle to acknowledge them ([`EventConsumer`],
//! [`Delivery`]), and the write path's [`Publisher`], which returns only once an event is
//! either acknowledged by JetStream or durably kept in the store's outbox, and drains that
//! outbox in order when NATS is back. Callers see Starling types and [`BusError`]; the only
//! async-nats type handed out is the raw client ([`Bus::client`]). Live streaming rides on
//! core NATS subjects scoped to a user or a public stream ([`Channel`], [`LiveSubscription`]).
//! It depends on `starling-schema` and the store trait only: never on the api, the fan-out
//! workers, the timelines or the search index.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use starling_schema::events::{Envelope, Event};
use starling_schema::settings::NatsSettings;

mod consumer;
mod error;
mod live;
mod metrics;
mod publisher;
mod worker;

pub use consumer::{ConsumerStats, Delivery, EventConsumer};
pub use error::{BusError, PublishError};
pub use live::{Channel, LiveSubscription};
pub use publisher::Publisher;
pub use worker::{Backoff, Handler, Sink, Slots, consume, extending_ack_wait};

/// How long JetStream remembers a message id to drop a re-published duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Timeout for stream and consumer management requests (not for publishes).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to NATS and its JetStream context. Cheap to clone; clones share the
/// connection, which reconnects forever on its own.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    /// For publishes: its timeout is `publish_timeout_ms`.
    js: jetstream::Context,
    /// For stream and consumer management: a longer timeout.
    admin: jetstream::Context,
    settings: Arc<NatsSettings>,
    /// Counts (re)connections, so pull requests lost with a restarted server are renewed.
    connections: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("url", &self.settings.url)
            .field("stream", &self.settings.stream)
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// Connect to `settings.url`. The connection is made in the background and retried
    /// forever, so this returns at once even while NATS is down (publishes then time out
    /// and go to the outbox); only a malformed URL is an error.
    ///
    /// `settings.url` may list several servers of one cluster, comma-separated; the client
    /// connects to any that answers and moves to another when it goes away.
    pub async fn connect(settings: &NatsSettings) -> Result<Bus, BusError> {
        Bus::connect_named(settings, "starling").await
    }

    /// A second connection to the same server, for subscriptions that users choose (live
    /// streams): if the server ever refuses one and drops that connection, publishing,
    /// fan-out and the indexer, which use the first, carry on.
    pub async fn live_connection(&self) -> Result<Bus, BusError> {
        Bus::connect_named(&self.settings, "starling-live").await
    }

    async fn connect_named(settings: &NatsSettings, name: &str) -> Result<Bus, BusError> {
        let servers = settings
            .url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| BusError::Connect {
                url: starling_schema::settings::without_credentials(&settings.url),
                source: Box::new(source),
            })?;
        // Logged and shown without the credentials a `nats://user:pass@host` URL carries.
        let url = starling_schema::settings::without_credentials(&settings.url);
        let (connected, connections) = tokio::sync::watch::channel(0u64);
        let connected = Arc::new(connected);
        let client = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let url = url.clone();
                let connected = Arc::clone(&connected);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(%url, "connected to NATS");
                            connected.send_modify(|n| *n += 1);
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(%url, "disconnected from NATS; reconnecting")
                        }
                        other => tracing::debug!(%url, event = %other, "NATS client event"),
                    }
                }
            })
            .connect(servers.as_slice())
            .await
            .map_err(|source| BusError::Connect {
                url: starling_schema::settings::without_credentials(&settings.url),
                source: Box::new(source),
            })?;
        Ok(Bus::from_client(client, settings, connections))
    }

    fn from_client(
        client: async_nats::Client,
        settings: &NatsSettings,
        connections: tokio::sync::watch::Receiver<u64>,
    ) -> Bus {
        let publish_timeout = Duration::from_millis(settings.publish_timeout_ms.max(1));
        let js = jetstream::ContextBuilder::new()
            .timeout(publish_timeout)
            .build(client.clone());
        let admin = jetstream::ContextBuilder::new()
            .timeout(ADMIN_TIMEOUT.max(publish_timeout))
            .build(client.clone());
        Bus {
            client,
            js,
            admin,
            settings: Arc::new(settings.clone()),
            connections,
        }
    }

    pub fn settings(&self) -> &NatsSettings {
        &self.settings
    }

    /// Create the stream, or bring an existing one's configuration up to date: every
    /// `{prefix}.events.>` subject, file storage, `replicas`, `max_age_secs` of history,
    /// and a two-minute duplicate window keyed by envelope id.
    pub async fn ensure_stream(&self) -> Result<(), BusError> {
        let config = stream::Config {
            name: self.settings.stream.clone(),
            subjects: vec![format!("{}.events.>", self.settings.subject_prefix)],
            storage: stream::StorageType::File,
            num_replicas: self.settings.replicas.max(1),
            max_age: Duration::from_secs(self.settings.max_age_secs),
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        self.admin
            .create_or_update_stream(config)
            .await
            .map_err(|source| BusError::Stream {
                stream: self.settings.stream.clone(),
                action: "creating or updating",
                source: Box::new(source),
            })?;
        Ok(())
    }

    /// The subject an event is published on: `{prefix}.events.{type_name}`.
    pub fn subject(&self, event: &Event) -> String {
        self.subject_of(event.type_name())
    }

    fn subject_of(&self, type_name: &str) -> String {
        format!("{}.events.{type_name}", self.settings.subject_prefix)
    }

    /// Publish one event with `Nats-Msg-Id` set to its id and wait for JetStream's ack, at
    /// most `publish_timeout_ms`. A duplicate of an id seen in the last two minutes is
    /// acked without being stored again.
    pub async fn publish(&self, env: &Envelope) -> Result<(), BusError> {
        let type_name = env.event.type_name();
        self.publish_raw(self.subject_of(type_name), &env.id, env.encode())
            .await?;
        metrics::published(type_name);
        Ok(())
    }

    /// Publish an already encoded envelope and wait for its ack.
    async fn publish_raw(
        &self,
        subject: String,
        id: &str,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        let timeout = self.publish_timeout();
        let send = async {
            let ack = self
                .js
                .send_publish(
                    subject.clone(),
                    jetstream::message::PublishMessage::build()
                        .payload(payload.into())
                        .message_id(id),
                )
                .await
                .map_err(|source| BusError::Publish {
                    subject: subject.clone(),
                    source: Box::new(source),
                })?;
            ack.await.map_err(|source| BusError::Publish {
                subject: subject.clone(),
                source: Box::new(source),
            })
        };
        match tokio::time::timeout(timeout, send).await {
            Ok(result) => result.map(|_ack| ()),
            Err(_elapsed) => Err(BusError::Timeout {
                what: "waiting for JetStream to ack a publish",
                after: timeout,
            }),
        }
    }

    /// Publish encoded envelopes (subject, id, payload) in order, pipelined: all are handed
    /// to the client, then their acks are awaited in order. Returns how many leading ones
    /// JetStream acked, and the error that stopped the count if it is short. One connection
    /// keeps the order, so JetStream stores them in the order given.
    pub(crate) async fn publish_pipelined(
        &self,
        items: &[(String, String, Vec<u8>)],
    ) -> (usize, Option<BusError>) {
        let timeout = self.publish_timeout();
        let mut acks = Vec::with_capacity(items.len());
        let mut send_error = None;
        for (subject, id, payload) in items {
            let publish = jetstream::message::PublishMessage::build()
                .payload(payload.clone().into())
                .message_id(id);
            match tokio::time::timeout(timeout, self.js.send_publish(subject.clone(), publish))
                .await
            {
                Ok(Ok(ack)) => acks.push((subject, ack)),
                Ok(Err(source)) => {
                    send_error = Some(BusError::Publish {
                        subject: subject.clone(),
                        source: Box::new(source),
                    });
                    break;
                }
                Err(_elapsed) => {
                    send_error = Some(BusError::Timeout {
                        what: "handing a publish to the NATS client",
                        after: timeout,
                    });
                    break;
                }
            }
        }
        let mut acked = 0;
        for (subject, ack) in acks {
            if let Err(source) = ack.await {
                let err = BusError::Publish {
                    subject: subject.clone(),
                    source: Box::new(source),
                };
                return (acked, Some(err));
            }
            acked += 1;
        }
        (acked, send_error)
    }

    /// Ok if the connection is up and the stream answers within `publish_timeout_ms`.
    pub async fn ping(&self) -> Result<(), BusError> {
        let timeout = self.publish_timeout();
        match tokio::time::timeout(timeout, self.js.get_stream(&self.settings.stream)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(BusError::Stream {
                stream: self.settings.stream.clone(),
                action: "looking up",
                source: Box::new(source),
            }),
            Err(_elapsed) => Err(BusError::Timeout {
                what: "asking JetStream about the stream",
                after: timeout,
            }),
        }
    }

    /// The raw NATS client, for subjects outside the event stream (per-user streaming).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Wait until everything handed to the client (acks included) is written to the server.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|source| BusError::Flush(Box::new(source)))
    }

    /// [`durable_consumer`](Self::durable_consumer) once the stream exists, waiting (with
    /// backoff) while NATS is unavailable. `None` if `shutdown` comes first; an error that
    /// waiting will not cure is returned.
    pub async fn wait_for_consumer(
        &self,
        name: &str,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<EventConsumer>, BusError> {
        let mut backoff = Backoff::default();
        loop {
            let opened = async {
                self.ensure_stream().await?;
                self.durable_consumer(name).await
            }
            .await;
            match opened {
                Ok(consumer) => return Ok(Some(consumer)),
                Err(e) if e.kind() == starling_schema::ErrorKind::Unavailable => {
                    tracing::warn!(consumer = name, error = %e, "waiting for NATS");
                    if !backoff.wait(shutdown).await {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The durable pull consumer `name` on the event stream, created if missing (and its
    /// `ack_wait` updated if it changed): explicit acks, redelivery after `ack_wait_ms`,
    /// starting from the first event kept. Every process that opens the same name shares
    /// its events, each delivered to one of them at a time.
    pub async fn durable_consumer(&self, name: &str) -> Result<EventConsumer, BusError> {
        consumer::check_name(name)?;
        let stream = self.stream_handle().await?;
        let ack_wait = Duration::from_millis(self.settings.ack_wait_ms.max(1));
        let config = pull::Config {
            durable_name: Some(name.to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let consumer =
            stream
                .create_consumer(config)
                .await
                .map_err(|source| BusError::Consumer {
                    name: name.to_owned(),
                    action: "creating or updating",
                    source: Box::new(source),
                })?;
        Ok(EventConsumer::new(
            self,
            name.to_owned(),
            consumer,
            ack_wait,
        ))
    }

    /// What the server knows of the durable consumer `name`: events not yet delivered,
    /// delivered but not acked, redelivered.
    pub async fn consumer_stats(&self, name: &str) -> Result<ConsumerStats, BusError> {
        consumer::check_name(name)?;
        let stream = self.stream_handle().await?;
        let info = stream
            .consumer_info(name)
            .await
            .map_err(|source| BusError::Consumer {
                name: name.to_owned(),
                action: "reading the state of",
                source: Box::new(source),
            })?;
        Ok(ConsumerStats::from_info(&info))
    }

    async fn stream_handle(&self) -> Result<stream::Stream<()>, BusError> {
        self.admin
            .get_stream_no_info(&self.settings.stream)
            .await
            .map_err(|source| BusError::Stream {
                stream: self.settings.stream.clone(),
                action: "looking up",
                source: Box::new(source),
            })
    }

    fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.publish_timeout_ms.max(1))
    }
}

/// A fresh envelope id: 16 random bytes in hex.
pub fn new_event_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_32_hex_digits_and_differ() {
        let a = new_event_id();
        let b = new_event_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
