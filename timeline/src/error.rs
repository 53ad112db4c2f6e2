use std::time::Duration;

use deadpool_redis::PoolError;
use deadpool_redis::redis::RedisError;
use starling_schema::{ErrorKind, Id};
use starling_store::StoreError;

/// Why a timeline operation failed. Shard failures name the shard (its index in
/// `redis.shards` and its address without credentials).
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// `redis.shards` is empty.
    #[error("no Redis shards are configured (redis.shards is empty)")]
    NoShards,
    /// A shard URL could not be turned into a connection pool.
    #[error("Redis shard {shard} ({addr}) is misconfigured")]
    BadShard {
        shard: usize,
        addr: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No connection to the shard could be had (refused, closed, pool exhausted).
    #[error("Redis shard {shard} ({addr}) unreachable while {context}")]
    Unreachable {
        shard: usize,
        addr: String,
        context: &'static str,
        #[source]
        source: PoolError,
    },
    /// The shard did not answer within `redis.timeout_ms`.
    #[error("Redis shard {shard} ({addr}) timed out after {after:?} while {context}")]
    TimedOut {
        shard: usize,
        addr: String,
        context: &'static str,
        after: Duration,
    },
    /// The shard answered with an error, or the connection broke mid-command.
    #[error("Redis shard {shard} ({addr}) failed while {context}")]
    Redis {
        shard: usize,
        addr: String,
        context: &'static str,
        #[source]
        source: RedisError,
    },
    /// Another reader held the rebuild lock and the timeline did not appear in time.
    #[error(
        "timeline of {user} on shard {shard} did not appear within {waited:?} of waiting for another rebuild"
    )]
    RebuildBusy {
        shard: usize,
        user: Id,
        waited: Duration,
    },
    /// Reading the store for a rebuild failed.
    #[error("reading the store to rebuild a timeline")]
    Store(#[source] StoreError),
}

impl TimelineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TimelineError::NoShards | TimelineError::BadShard { .. } => ErrorKind::Internal,
            TimelineError::Unreachable { .. }
            | TimelineError::TimedOut { .. }
            | TimelineError::RebuildBusy { .. } => ErrorKind::Unavailable,
            TimelineError::Redis { source, .. } => {
                if is_transient(source) {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Internal
                }
            }
            TimelineError::Store(e) => e.kind(),
        }
    }

    /// The shard that failed, if a shard did.
    pub fn shard(&self) -> Option<usize> {
        match self {
            TimelineError::BadShard { shard, .. }
            | TimelineError::Unreachable { shard, .. }
            | TimelineError::TimedOut { shard, .. }
            | TimelineError::Redis { shard, .. }
            | TimelineError::RebuildBusy { shard, .. } => Some(*shard),
            TimelineError::NoShards | TimelineError::Store(_) => None,
        }
    }
}

impl From<StoreError> for TimelineError {
    fn from(e: StoreError) -> Self {
        TimelineError::Store(e)
    }
}

/// A failure that retrying later may cure: the connection, not the command.
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.code(),
            Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN")
        )
}
