//! One Redis shard: its connections, the round trip with timeout and error mapping, and
//! the setup every shard needs (listpack limits and the `starling_tl` function library).
//!
//! Each thread keeps its own multiplexed connection to each shard, made on first use from
//! that thread: its driver task then runs on the thread's runtime (an actix worker's, or
//! fan-out's), so a round trip wakes no other thread, and no health check (`PING`) precedes
//! each use as it would on every pool checkout. A connection that fails is dropped and the
//! next call on that thread makes a new one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, FromRedisValue, RedisError};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};
use prometheus::{IntCounter, IntCounterVec, Opts};
use starling_schema::settings::RedisSettings;
use tracing::warn;

use crate::error::TimelineError;
use crate::ring::ring_name;

/// The function library, loaded with `FUNCTION LOAD REPLACE`.
const LIBRARY: &str = include_str!("starling_tl.lua");

/// Members a timeline may briefly hold beyond its cap (sentinel plus one Lua chunk of 32),
/// rounded into the listpack limit with room to spare.
const LISTPACK_HEADROOM: usize = 64;
/// Longest member: a post id is 8 bytes.
const LISTPACK_VALUE: u64 = 64;

static SHARD_ERRORS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        Opts::new(
            "starling_timeline_shard_errors_total",
            "Failed calls to a Redis timeline shard, by shard index in redis.shards.",
        ),
        &["shard"],
    )
    .map_err(|e| warn!(error = %e, "cannot define the timeline shard error counter"))
    .ok()?;
    if let Err(e) = prometheus::default_registry().register(Box::new(counter.clone())) {
        warn!(error = %e, "cannot register the timeline shard error counter");
    }
    Some(counter)
});

/// Distinguishes shards (of every `Timelines` in the process) in the per-thread connections.
static NEXT_SHARD_KEY: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's connection to each shard, by [`Shard::key`].
    static CONNECTIONS: RefCell<HashMap<u64, MultiplexedConnection>> = RefCell::new(HashMap::new());
}

/// Why one round trip failed, before it is tied to a shard and a context.
pub(crate) enum Failure {
    Pool(PoolError),
    Redis(RedisError),
    Timeout,
}

impl Failure {
    /// The shard restarted without our functions (or never had them).
    pub(crate) fn is_missing_function(&self) -> bool {
        match self {
            Failure::Redis(e) => {
                e.code() == Some("NOSCRIPT")
                    || e.to_string()
                        .to_ascii_lowercase()
                        .contains("function not found")
            }
            Failure::Pool(_) | Failure::Timeout => false,
        }
    }
}

/// Something that can be sent in one round trip: a command or a pipeline.
pub(crate) enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

pub(crate) struct Shard {
    pub(crate) index: usize,
    /// URL without credentials, for messages.
    pub(crate) addr: String,
    /// Makes the connections (then taken out of it for good, one per thread).
    pool: Pool,
    key: u64,
    timeout: Duration,
    errors: Option<IntCounter>,
}

impl Shard {
    pub(crate) fn new(
        index: usize,
        url: &str,
        settings: &RedisSettings,
    ) -> Result<Shard, TimelineError> {
        let addr = ring_name(url);
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let bad = |source: Box<dyn std::error::Error + Send + Sync>| TimelineError::BadShard {
            shard: index,
            addr: addr.clone(),
            source,
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let manager = Manager::new_with_config(url, config).map_err(|e| bad(e.into()))?;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| bad(e.into()))?;
        let errors = SHARD_ERRORS
            .as_ref()
            .map(|c| c.with_label_values(&[index.to_string()]));
        Ok(Shard {
            index,
            addr,
            pool,
            key: NEXT_SHARD_KEY.fetch_add(1, Ordering::Relaxed),
            timeout,
            errors,
        })
    }

    /// One round trip, bounded by the shard timeout.
    pub(crate) async fn send<T: FromRedisValue>(&self, req: Request<'_>) -> Result<T, Failure> {
        let round_trip = async {
            loop {
                let (mut conn, kept) = self.connection().await?;
                let result = match req {
                    Request::Cmd(cmd) => cmd.query_async(&mut conn).await,
                    Request::Pipe(pipe) => pipe.query_async(&mut conn).await,
                };
                match result {
                    Err(e) if is_connection(&e) || e.is_unrecoverable_error() => {
                        self.forget_connection();
                        // A kept connection may have died since its last use (the shard
                        // restarted): try once more on a new one, as a pool check would.
                        if !kept {
                            return Err(Failure::Redis(e));
                        }
                    }
                    other => return other.map_err(Failure::Redis),
                }
            }
        };
        // Getting a connection and the command each have the timeout; this bounds both.
        match tokio::time::timeout(self.timeout * 2, round_trip).await {
            Ok(result) => result,
            Err(_) => {
                // A connection that does not answer in time may be wedged: make a new one.
                self.forget_connection();
                Err(Failure::Timeout)
            }
        }
    }

    /// This thread's connection, made on first use; true if it was kept from before.
    async fn connection(&self) -> Result<(MultiplexedConnection, bool), Failure> {
        if let Some(conn) = CONNECTIONS.with(|c| c.borrow().get(&self.key).cloned()) {
            return Ok((conn, true));
        }
        let conn = deadpool_redis::Connection::take(self.pool.get().await.map_err(Failure::Pool)?);
        CONNECTIONS.with(|c| c.borrow_mut().insert(self.key, conn.clone()));
        Ok((conn, false))
    }

    fn forget_connection(&self) {
        CONNECTIONS.with(|c| c.borrow_mut().remove(&self.key));
    }

    /// Turn a failure into the caller's error, counting it.
    pub(crate) fn error(&self, context: &'static str, failure: Failure) -> TimelineError {
        if let Some(counter) = &self.errors {
            counter.inc();
        }
        let (shard, addr) = (self.index, self.addr.clone());
        match failure {
            Failure::Pool(PoolError::Backend(source)) => TimelineError::Redis {
                shard,
                addr,
                context,
                source,
            },
            Failure::Pool(source) => TimelineError::Unreachable {
                shard,
                addr,
                context,
                source,
            },
            Failure::Redis(source) => TimelineError::Redis {
                shard,
                addr,
                context,
                source,
            },
            Failure::Timeout => TimelineError::TimedOut {
                shard,
                addr,
                context,
                after: self.timeout * 2,
            },
        }
    }

    /// Raise the listpack limits so a capped timeline stays compact, then load the function
    /// library. Refused `CONFIG` (managed Redis, renamed command) is logged with the setting
    /// the operator must put in redis.conf; failing to reach the shard or to load the library
    /// is an error.
    pub(crate) async fn set_up(&self, cap: usize) -> Result<(), Failure> {
        let entries = (cap + LISTPACK_HEADROOM).div_ceil(LISTPACK_HEADROOM) * LISTPACK_HEADROOM;
        // Entries first: once the library is visible, other processes may create timelines.
        self.raise_config("zset-max-listpack-entries", entries as u64)
            .await?;
        self.raise_config("zset-max-listpack-value", LISTPACK_VALUE)
            .await?;
        let mut load = redis::cmd("FUNCTION");
        load.arg("LOAD").arg("REPLACE").arg(LIBRARY);
        self.send::<String>(Request::Cmd(&load)).await?;
        Ok(())
    }

    /// Set `name` to at least `wanted` (never lower it: an operator may want more).
    async fn raise_config(&self, name: &'static str, wanted: u64) -> Result<(), Failure> {
        let mut get = redis::cmd("CONFIG");
        get.arg("GET").arg(name);
        let current = match self.send::<Vec<String>>(Request::Cmd(&get)).await {
            Ok(pair) => pair.get(1).and_then(|v| v.parse::<u64>().ok()),
            Err(Failure::Redis(e)) if !is_connection(&e) => {
                self.config_refused(name, wanted, &e);
                return Ok(());
            }
            Err(other) => return Err(other),
        };
        if current.is_some_and(|c| c >= wanted) {
            return Ok(());
        }
        let mut set = redis::cmd("CONFIG");
        set.arg("SET").arg(name).arg(wanted);
        match self.send::<()>(Request::Cmd(&set)).await {
            Ok(()) => Ok(()),
            Err(Failure::Redis(e)) if !is_connection(&e) => {
                self.config_refused(name, wanted, &e);
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    fn config_refused(&self, name: &str, wanted: u64, e: &RedisError) {
        warn!(
            shard = self.index,
            addr = %self.addr,
            error = %e,
            "Redis refused CONFIG; timelines will use far more memory unless redis.conf has `{name} {wanted}`"
        );
    }
}

fn is_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}
