use std::time::Duration;

use starling_schema::ErrorKind;
use starling_schema::events::DecodeError;
use starling_store::StoreError;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// Why talking to NATS failed. Each variant knows its [`ErrorKind`]; the driver's error is
/// kept only as the source, for logs.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: Source,
    },
    #[error("JetStream failed while {action} stream {stream}")]
    Stream {
        stream: String,
        action: &'static str,
        #[source]
        source: Source,
    },
    #[error("JetStream failed while {action} consumer {name}")]
    Consumer {
        name: String,
        action: &'static str,
        #[source]
        source: Source,
    },
    #[error("JetStream did not take an event on {subject}")]
    Publish {
        subject: String,
        #[source]
        source: Source,
    },
    #[error("timed out after {after:?} {what}")]
    Timeout { what: &'static str, after: Duration },
    #[error("pulling events for consumer {name} failed")]
    Pull {
        name: String,
        #[source]
        source: Source,
    },
    #[error("acknowledging event {stream_sequence} failed")]
    Ack {
        stream_sequence: u64,
        #[source]
        source: Source,
    },
    #[error("flushing the NATS connection failed")]
    Flush(#[source] Source),
    /// An event on the stream that this build cannot read. The consumer has already
    /// answered it: a newer format is handed back for a newer worker, a malformed one is
    /// terminated so it is not redelivered.
    #[error("event {stream_sequence} on {subject} cannot be read: {source}")]
    Decode {
        stream_sequence: u64,
        subject: String,
        #[source]
        source: DecodeError,
    },
    #[error("sending or subscribing to live subject {subject} failed")]
    Live {
        subject: String,
        #[source]
        source: Source,
    },
    #[error("invalid consumer name {0:?}: use letters, digits, '-' and '_'")]
    InvalidName(String),
}

impl BusError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BusError::Connect { .. }
            | BusError::Stream { .. }
            | BusError::Consumer { .. }
            | BusError::Publish { .. }
            | BusError::Timeout { .. }
            | BusError::Pull { .. }
            | BusError::Ack { .. }
            | BusError::Flush(_)
            | BusError::Live { .. } => ErrorKind::Unavailable,
            BusError::Decode { .. } => ErrorKind::Internal,
            BusError::InvalidName(_) => ErrorKind::Invalid,
        }
    }
}

/// An event that was neither taken by JetStream nor kept in the outbox: the write it
/// describes must not be acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("event {event_id} could not be published ({publish}) nor kept in the outbox ({outbox})")]
pub struct PublishError {
    pub event_id: String,
    pub publish: BusError,
    #[source]
    pub outbox: StoreError,
}

impl PublishError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}
