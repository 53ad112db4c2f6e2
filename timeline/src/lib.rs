//! Home timelines in Redis, sharded by user.
//!
//! This crate owns the Redis side of home timelines: one capped ordered set of post ids per
//! user (`tl:<user>`), on the shard that a consistent hash of the user id picks ([`Ring`]),
//! and likewise per list (`tll:<list>`, on its owner's shard; see [`Feed`]);
//! the `starling_tl` Redis function library that inserts, removes, merges and trims them
//! server-side so fan-out costs one round trip per shard per batch; and rebuilding a
//! missing timeline (new user, flushed or restarted shard, inactive user) from the store,
//! once, under a per-user lock. Fan-out writes only to timelines that exist, so a missing
//! one is always rebuilt whole rather than half-filled. Entries are 8-byte big-endian post
//! ids with score 0 in listpack-encoded sorted sets, about 12 bytes each.
//!
//! It also keeps discovery's Redis side ([`TrendKind`]: trend scores and usage history;
//! who-to-follow suggestions and their job's state).
//!
//! It depends on `starling-schema` and the store trait (for rebuilds) and never on HTTP,
//! NATS, fan-out or the api crate; no Redis type appears in its public API.

mod admin;
mod discovery;
mod error;
mod presence;
mod rate;
mod rebuild;
mod ring;
mod shard;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool_redis::redis::{self, FromRedisValue};
use futures::future::join_all;
use starling_schema::Id;
use starling_schema::feeds::List;
use starling_schema::model::{Order, Window};
use starling_schema::settings::RedisSettings;
use starling_store::Store;
use tracing::{info, warn};

pub use admin::{ShardInfo, TimelinePage};
pub use discovery::{MAX_NAME_BYTES, Round, TrendKind, TrendParams};
pub use error::TimelineError;
pub use ring::Ring;

pub use rate::RateHit;
use shard::{Request, Shard};

/// How often a reader waiting for someone else's rebuild looks again, at first and at most.
const WAIT_FIRST: Duration = Duration::from_millis(10);
const WAIT_MAX: Duration = Duration::from_millis(100);

/// Home timelines on a set of Redis shards. Cheap to clone; clones share the pools.
#[derive(Clone)]
pub struct Timelines {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Shard>,
    ring: Ring,
    cap: usize,
    lock: Duration,
    /// How long a timeline lives without a read (`None`: forever).
    inactive: Option<Duration>,
    rebuilds: AtomicU64,
}

impl std::fmt::Debug for Timelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timelines")
            .field(
                "shards",
                &self
                    .inner
                    .shards
                    .iter()
                    .map(|s| s.addr.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("cap", &self.inner.cap)
            .finish_non_exhaustive()
    }
}

fn timeline_key(user: Id) -> String {
    format!("tl:{user}")
}

/// A timeline in Redis: a user's home, or one of a user's lists. Both live on their
/// user's shard (a list on its owner's), so one call per shard writes a page of followers'
/// homes and lists together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feed {
    Home(Id),
    List { owner: Id, list: Id },
}

impl Feed {
    /// Whose shard it lives on.
    pub fn owner(self) -> Id {
        match self {
            Feed::Home(user) | Feed::List { owner: user, .. } => user,
        }
    }

    fn key(self) -> String {
        match self {
            Feed::Home(user) => timeline_key(user),
            Feed::List { list, .. } => format!("tll:{list}"),
        }
    }

    fn pending_key(self) -> String {
        match self {
            Feed::Home(user) => pending_key(user),
            Feed::List { list, .. } => format!("tllb:{list}"),
        }
    }

    fn reblogs_key(self) -> String {
        match self {
            Feed::Home(user) => reblogs_key(user),
            Feed::List { list, .. } => format!("tllr:{list}"),
        }
    }

    fn lock_key(self) -> String {
        match self {
            Feed::Home(user) => lock_key(user),
            Feed::List { list, .. } => format!("lock:tll:{list}"),
        }
    }
}

fn homes(users: &[Id]) -> Vec<Feed> {
    users.iter().map(|u| Feed::Home(*u)).collect()
}

/// Which original each recent reblog in `user`'s timeline shows (for reblog dedupe).
fn reblogs_key(user: Id) -> String {
    format!("tlr:{user}")
}

/// How many of a timeline's newest entries a reblog is checked against: a reblog whose
/// original (or another reblog of it) is among them is not inserted again (Mastodon's 40).
pub const REBLOG_WINDOW: usize = 40;

/// Where writes are recorded while a rebuild of `user`'s timeline reads the store.
fn pending_key(user: Id) -> String {
    format!("tlb:{user}")
}

fn lock_key(user: Id) -> String {
    format!("lock:tl:{user}")
}

/// An exclusive lexicographic bound on a post id (`(` + its 8 bytes).
fn exclusive(id: Id) -> Vec<u8> {
    let mut bound = Vec::with_capacity(9);
    bound.push(b'(');
    bound.extend_from_slice(&id.to_be_bytes());
    bound
}

fn fcall(function: &str, keys: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(function).arg(keys.len()).arg(keys);
    cmd
}

/// A value no other lock holder (in any process) uses.
fn lock_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Timelines {
    /// Build a pool per shard, then on each reachable shard raise the listpack limits and
    /// load the function library. A shard that is down is logged, not fatal: it is set up
    /// the first time a write finds the library missing.
    pub async fn connect(settings: &RedisSettings) -> Result<Timelines, TimelineError> {
        if settings.shards.is_empty() {
            return Err(TimelineError::NoShards);
        }
        let shards = settings
            .shards
            .iter()
            .enumerate()
            .map(|(i, url)| Shard::new(i, url, settings))
            .collect::<Result<Vec<_>, _>>()?;
        let timelines = Timelines {
            inner: Arc::new(Inner {
                ring: Ring::new(&settings.shards, settings.virtual_nodes),
                shards,
                cap: settings.timeline_cap.max(1),
                lock: Duration::from_millis(settings.rebuild_lock_ms.max(1)),
                inactive: (settings.timeline_inactive_days > 0).then(|| {
                    Duration::from_secs(u64::from(settings.timeline_inactive_days) * 86_400)
                }),
                rebuilds: AtomicU64::new(0),
            }),
        };
        let cap = timelines.inner.cap;
        let setups = timelines.inner.shards.iter().map(|shard| async move {
            shard
                .set_up(cap)
                .await
                .map_err(|f| shard.error("setting up the shard", f))
        });
        for result in join_all(setups).await {
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == starling_schema::ErrorKind::Unavailable => {
                    warn!(error = %e, "timeline shard is down at start; it will be set up on first use");
                }
                Err(e) => return Err(e),
            }
        }
        info!(
            shards = timelines.inner.shards.len(),
            cap = timelines.inner.cap,
            "timelines connected"
        );
        Ok(timelines)
    }

    pub fn ring(&self) -> &Ring {
        &self.inner.ring
    }

    pub fn shard_of(&self, user: Id) -> usize {
        self.inner.ring.shard_of(user)
    }

    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// Entries kept per timeline.
    pub fn cap(&self) -> usize {
        self.inner.cap
    }

    /// How many rebuilds this handle (and its clones) has completed.
    pub fn rebuilds(&self) -> u64 {
        self.inner.rebuilds.load(Ordering::Relaxed)
    }

    /// Insert `post` into each listed user's timeline that exists; one round trip per
    /// shard, shards in parallel. Idempotent.
    pub async fn insert(&self, post: Id, users: &[Id]) -> Result<(), TimelineError> {
        self.insert_feeds(post, &homes(users)).await
    }

    /// [`Self::insert`] into homes and lists alike.
    pub async fn insert_feeds(&self, post: Id, feeds: &[Feed]) -> Result<(), TimelineError> {
        if post == Id::MIN {
            return Ok(());
        }
        let post = post.to_be_bytes();
        let cap = self.inner.cap;
        self.per_shard(feeds, "inserting a post", |keys| {
            let mut cmd = fcall("tl_insert", keys);
            cmd.arg(&post[..]).arg(cap);
            cmd
        })
        .await
    }

    /// Insert the reblog wrapper `reblog` of `original` into each listed user's timeline
    /// that exists, unless the [`REBLOG_WINDOW`] newest entries there already show the
    /// original or another reblog of it. One round trip per shard, as [`Self::insert`].
    pub async fn insert_reblog(
        &self,
        reblog: Id,
        original: Id,
        users: &[Id],
    ) -> Result<(), TimelineError> {
        self.insert_reblog_feeds(reblog, original, &homes(users))
            .await
    }

    /// [`Self::insert_reblog`] into homes and lists alike.
    pub async fn insert_reblog_feeds(
        &self,
        reblog: Id,
        original: Id,
        feeds: &[Feed],
    ) -> Result<(), TimelineError> {
        if reblog == Id::MIN {
            return Ok(());
        }
        let (reblog, original) = (reblog.to_be_bytes(), original.to_be_bytes());
        let cap = self.inner.cap;
        self.per_shard_keys(
            feeds,
            |feed| [feed.key(), feed.pending_key(), feed.reblogs_key()],
            "inserting a reblog",
            |keys| {
                let mut cmd = fcall("tl_insert_reblog", keys);
                cmd.arg(&reblog[..])
                    .arg(cap)
                    .arg(&original[..])
                    .arg(REBLOG_WINDOW);
                cmd
            },
        )
        .await
    }

    /// Remove `post` from each listed user's timeline.
    pub async fn remove(&self, post: Id, users: &[Id]) -> Result<(), TimelineError> {
        self.remove_feeds(post, &homes(users)).await
    }

    /// [`Self::remove`] from homes and lists alike.
    pub async fn remove_feeds(&self, post: Id, feeds: &[Feed]) -> Result<(), TimelineError> {
        if post == Id::MIN {
            return Ok(());
        }
        let post = post.to_be_bytes();
        self.per_shard(feeds, "removing a post", |keys| {
            let mut cmd = fcall("tl_remove", keys);
            cmd.arg(&post[..]);
            cmd
        })
        .await
    }

    /// Merge posts into one user's timeline if it exists (after a follow), keeping the
    /// newest `cap`.
    pub async fn merge(&self, user: Id, posts: &[Id]) -> Result<(), TimelineError> {
        let posts = encode(posts);
        if posts.is_empty() {
            return Ok(());
        }
        let mut cmd = fcall("tl_merge", &[timeline_key(user), pending_key(user)]);
        cmd.arg(self.inner.cap);
        push_members(&mut cmd, &posts);
        self.call_fn::<i64>(self.shard_of(user), "merging posts", &cmd)
            .await?;
        Ok(())
    }

    /// Remove posts from one user's timeline (after an unfollow).
    pub async fn remove_many(&self, user: Id, posts: &[Id]) -> Result<(), TimelineError> {
        self.remove_many_from(Feed::Home(user), posts).await
    }

    /// [`Self::remove_many`] from a home or a list.
    pub async fn remove_many_from(&self, feed: Feed, posts: &[Id]) -> Result<(), TimelineError> {
        let posts = encode(posts);
        if posts.is_empty() {
            return Ok(());
        }
        let mut cmd = fcall("tl_remove_many", &[feed.key(), feed.pending_key()]);
        push_members(&mut cmd, &posts);
        self.call_fn::<i64>(self.shard_of(feed.owner()), "removing posts", &cmd)
            .await?;
        Ok(())
    }

    /// A page of the user's timeline (post ids in the window's order), or `None` if the
    /// timeline does not exist.
    pub async fn range(&self, user: Id, window: Window) -> Result<Option<Vec<Id>>, TimelineError> {
        self.range_of(Feed::Home(user), window).await
    }

    /// [`Self::range`] of a home or a list.
    pub async fn range_of(
        &self,
        feed: Feed,
        window: Window,
    ) -> Result<Option<Vec<Id>>, TimelineError> {
        let key = feed.key();
        // The sentinel is all zero bytes, so excluding id 0 excludes it.
        let low = exclusive(window.above.unwrap_or(Id::MIN));
        let high = window.below.map_or_else(|| b"+".to_vec(), exclusive);
        let limit = window.limit.min(self.inner.cap + 1);
        let mut pipe = redis::pipe();
        pipe.atomic().exists(&key);
        // A read keeps the timeline (and its reblog index) for another inactive period:
        // writes never do, so Redis holds only the timelines of users who read.
        if let Some(ttl) = self.inactive_ms() {
            pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
            pipe.cmd("PEXPIRE")
                .arg(feed.reblogs_key())
                .arg(ttl)
                .ignore();
        }
        let mut zrange = redis::cmd("ZRANGE");
        zrange.arg(&key);
        match window.order {
            Order::NewestFirst => zrange.arg(&high).arg(&low).arg("BYLEX").arg("REV"),
            Order::OldestFirst => zrange.arg(&low).arg(&high).arg("BYLEX"),
        };
        zrange.arg("LIMIT").arg(0).arg(limit);
        if limit > 0 {
            pipe.add_command(zrange);
        }
        let shard = self.shard_of(feed.owner());
        let (exists, members): (bool, Vec<Vec<u8>>) = if limit > 0 {
            self.call(shard, "reading a timeline", Request::Pipe(&pipe))
                .await?
        } else {
            let (exists,): (bool,) = self
                .call(shard, "reading a timeline", Request::Pipe(&pipe))
                .await?;
            (exists, Vec::new())
        };
        if !exists {
            return Ok(None);
        }
        Ok(Some(decode(shard, &key, members)))
    }

    /// Rebuild the user's timeline from the store (own posts and the recent posts of
    /// everyone followed, newest `cap`), replacing whatever is there in one atomic step.
    /// Writes that reach this user while the store is read are kept.
    pub async fn rebuild<S: Store>(&self, store: &S, user: Id) -> Result<(), TimelineError> {
        self.rebuild_feed(store, Source::Home(user)).await
    }

    async fn rebuild_feed<S: Store>(
        &self,
        store: &S,
        source: Source<'_>,
    ) -> Result<(), TimelineError> {
        let feed = source.feed();
        let shard = self.shard_of(feed.owner());
        let keys = [feed.key(), feed.pending_key()];
        // Record concurrent writes for a while longer than a rebuild may hold its lock.
        let mut begin = fcall("tl_begin", &keys);
        begin.arg(self.inner.lock.as_millis().saturating_mul(2).max(1000) as u64);
        self.call_fn::<i64>(shard, "starting a timeline rebuild", &begin)
            .await?;
        let posts = match source {
            Source::Home(user) => rebuild::newest_posts(store, user, self.inner.cap).await?,
            Source::List(list) => rebuild::newest_list_posts(store, list, self.inner.cap).await?,
        };
        let mut replace = fcall("tl_replace", &keys);
        replace.arg(self.inner.cap);
        push_members(&mut replace, &encode(&posts));
        self.call_fn::<i64>(shard, "writing a rebuilt timeline", &replace)
            .await?;
        self.expire_unread(feed).await?;
        self.inner.rebuilds.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The inactive period in milliseconds, if timelines expire.
    fn inactive_ms(&self) -> Option<u64> {
        self.inner
            .inactive
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Start the inactive clock of a timeline made without a read (at sign-up, by a rebuild
    /// or `starling admin feeds build`): unread for the inactive period, it leaves Redis.
    async fn expire_unread(&self, feed: Feed) -> Result<(), TimelineError> {
        let Some(ttl) = self.inactive_ms() else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        pipe.cmd("PEXPIRE").arg(feed.key()).arg(ttl).ignore();
        pipe.cmd("PEXPIRE")
            .arg(feed.reblogs_key())
            .arg(ttl)
            .ignore();
        self.call::<()>(
            self.shard_of(feed.owner()),
            "setting a timeline's inactive expiry",
            Request::Pipe(&pipe),
        )
        .await
    }

    /// The home timeline computed from the store alone, for when the user's shard cannot
    /// answer (guarantee 5: slower, still correct): the posts a rebuild would hold, sliced
    /// by `window`.
    pub async fn read_from_store<S: Store>(
        &self,
        store: &S,
        user: Id,
        window: Window,
    ) -> Result<Vec<Id>, TimelineError> {
        let newest = rebuild::newest_posts(store, user, self.cap())
            .await
            .map_err(TimelineError::Store)?;
        Ok(slice(newest, window))
    }

    /// One of a user's lists computed from the store alone, as [`Self::read_from_store`]
    /// computes a home: the posts a rebuild of the list would hold, sliced by `window`.
    pub async fn read_list_from_store<S: Store>(
        &self,
        store: &S,
        list: &List,
        window: Window,
    ) -> Result<Vec<Id>, TimelineError> {
        let newest = rebuild::newest_list_posts(store, list, self.cap())
            .await
            .map_err(TimelineError::Store)?;
        Ok(slice(newest, window))
    }

    /// The read path: [`range`](Self::range); if the timeline is missing, rebuild it once
    /// under a per-user lock (concurrent readers wait for that rebuild instead of starting
    /// their own), then range again.
    pub async fn read<S: Store>(
        &self,
        store: &S,
        user: Id,
        window: Window,
    ) -> Result<Vec<Id>, TimelineError> {
        self.read_feed(store, Source::Home(user), window).await
    }

    /// A page of one of a user's lists, as [`Self::read`] reads a home: rebuilt from the
    /// list's members' posts when missing.
    pub async fn read_list<S: Store>(
        &self,
        store: &S,
        list: &List,
        window: Window,
    ) -> Result<Vec<Id>, TimelineError> {
        self.read_feed(store, Source::List(list), window).await
    }

    async fn read_feed<S: Store>(
        &self,
        store: &S,
        source: Source<'_>,
        window: Window,
    ) -> Result<Vec<Id>, TimelineError> {
        let feed = source.feed();
        if let Some(ids) = self.range_of(feed, window).await? {
            return Ok(ids);
        }
        self.rebuild_missing(store, source).await?;
        Ok(self.range_of(feed, window).await?.unwrap_or_default())
    }

    async fn rebuild_missing<S: Store>(
        &self,
        store: &S,
        source: Source<'_>,
    ) -> Result<(), TimelineError> {
        let feed = source.feed();
        let user = feed.owner();
        let shard = self.shard_of(user);
        let lock = feed.lock_key();
        let token = lock_token();
        let lock_ms = self.inner.lock.as_millis() as u64;
        let started = Instant::now();
        // The lock expires after `lock`, so within that a waiter either sees the timeline or
        // takes the lock itself; twice that bounds a wait behind a chain of failed holders.
        let give_up = started + self.inner.lock * 2;
        let mut pause = WAIT_FIRST;
        loop {
            let mut set = redis::cmd("SET");
            set.arg(&lock).arg(&token).arg("NX").arg("PX").arg(lock_ms);
            let taken: Option<String> = self
                .call(shard, "taking a rebuild lock", Request::Cmd(&set))
                .await?;
            if taken.is_some() {
                let result = async {
                    // The previous holder may have finished just before we took the lock.
                    if !self.feed_exists(feed).await? {
                        self.rebuild_feed(store, source).await?;
                    }
                    Ok(())
                }
                .await;
                let mut unlock = fcall("tl_unlock", &[lock]);
                unlock.arg(&token);
                if let Err(e) = self
                    .call_fn::<i64>(shard, "releasing a rebuild lock", &unlock)
                    .await
                {
                    warn!(error = %e, %user, "could not release a rebuild lock; it expires on its own");
                }
                return result;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(WAIT_MAX);
            if self.feed_exists(feed).await? {
                return Ok(());
            }
            if Instant::now() >= give_up {
                return Err(TimelineError::RebuildBusy {
                    shard,
                    user,
                    waited: started.elapsed(),
                });
            }
        }
    }

    /// Ensure an (empty) timeline exists, e.g. at sign-up, so fan-out fills it at once.
    pub async fn create_empty(&self, user: Id) -> Result<(), TimelineError> {
        let cmd = fcall("tl_create", &[timeline_key(user)]);
        let created = self
            .call_fn::<i64>(self.shard_of(user), "creating a timeline", &cmd)
            .await?;
        if created == 1 {
            self.expire_unread(Feed::Home(user)).await?;
        }
        Ok(())
    }

    pub async fn exists(&self, user: Id) -> Result<bool, TimelineError> {
        self.feed_exists(Feed::Home(user)).await
    }

    pub async fn feed_exists(&self, feed: Feed) -> Result<bool, TimelineError> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(feed.key());
        self.call(
            self.shard_of(feed.owner()),
            "checking a timeline exists",
            Request::Cmd(&cmd),
        )
        .await
    }

    /// Forget a timeline (admin; tests). The next read rebuilds it.
    pub async fn clear(&self, user: Id) -> Result<(), TimelineError> {
        self.clear_feed(Feed::Home(user)).await
    }

    /// Forget a home or a list: the next read rebuilds it from the store (after a list's
    /// members or settings change, or when it is deleted).
    pub async fn clear_feed(&self, feed: Feed) -> Result<(), TimelineError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(feed.key())
            .arg(feed.pending_key())
            .arg(feed.reblogs_key());
        self.call::<i64>(
            self.shard_of(feed.owner()),
            "deleting a timeline",
            Request::Cmd(&cmd),
        )
        .await?;
        Ok(())
    }

    /// Per shard, in shard order: `Ok` if it answers `PING`.
    pub async fn ping_all(&self) -> Vec<Result<(), TimelineError>> {
        let ping = redis::cmd("PING");
        join_all((0..self.shard_count()).map(|shard| {
            let ping = &ping;
            async move {
                self.call::<String>(shard, "pinging", Request::Cmd(ping))
                    .await
                    .map(|_| ())
            }
        }))
        .await
    }

    /// Bytes Redis reports for the user's timeline key (`MEMORY USAGE`, every entry
    /// counted) and its entry count without the sentinel; `None` if it does not exist.
    pub async fn memory(&self, user: Id) -> Result<Option<(u64, usize)>, TimelineError> {
        let key = timeline_key(user);
        let mut pipe = redis::pipe();
        pipe.cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .zcard(&key);
        let (bytes, card): (Option<u64>, usize) = self
            .call(
                self.shard_of(user),
                "measuring a timeline",
                Request::Pipe(&pipe),
            )
            .await?;
        Ok(bytes.map(|b| (b, card.saturating_sub(1))))
    }

    /// Group `users` by shard and send each group one command built by `build` from the
    /// group's key pairs (timeline, pending), shards in parallel. The first error wins, after
    /// every shard has answered.
    async fn per_shard(
        &self,
        feeds: &[Feed],
        context: &'static str,
        build: impl Fn(&[String]) -> redis::Cmd,
    ) -> Result<(), TimelineError> {
        self.per_shard_keys(
            feeds,
            |feed| [feed.key(), feed.pending_key()],
            context,
            build,
        )
        .await
    }

    /// [`Self::per_shard`] with each feed's keys named by `keys_of`.
    async fn per_shard_keys<const N: usize>(
        &self,
        feeds: &[Feed],
        keys_of: impl Fn(Feed) -> [String; N],
        context: &'static str,
        build: impl Fn(&[String]) -> redis::Cmd,
    ) -> Result<(), TimelineError> {
        let mut groups: Vec<Vec<String>> = vec![Vec::new(); self.shard_count()];
        for feed in feeds {
            if let Some(keys) = groups.get_mut(self.shard_of(feed.owner())) {
                keys.extend(keys_of(*feed));
            }
        }
        let calls = groups
            .iter()
            .enumerate()
            .filter(|(_, keys)| !keys.is_empty())
            .map(|(shard, keys)| {
                let cmd = build(keys);
                async move { self.call_fn::<i64>(shard, context, &cmd).await }
            });
        join_all(calls)
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// One round trip to a shard.
    async fn call<T: FromRedisValue>(
        &self,
        shard: usize,
        context: &'static str,
        req: Request<'_>,
    ) -> Result<T, TimelineError> {
        let shard = self.shard(shard)?;
        shard.send(req).await.map_err(|f| shard.error(context, f))
    }

    /// A call of one of our functions. If the shard lost the library (it restarted empty, or
    /// was down at start), set the shard up again and retry once.
    async fn call_fn<T: FromRedisValue>(
        &self,
        shard: usize,
        context: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, TimelineError> {
        let shard = self.shard(shard)?;
        match shard.send(Request::Cmd(cmd)).await {
            Err(f) if f.is_missing_function() => {
                warn!(
                    shard = shard.index,
                    addr = %shard.addr,
                    "timeline functions missing on shard (restarted empty?); loading them again"
                );
                shard
                    .set_up(self.inner.cap)
                    .await
                    .map_err(|f| shard.error("setting up the shard again", f))?;
                shard
                    .send(Request::Cmd(cmd))
                    .await
                    .map_err(|f| shard.error(context, f))
            }
            result => result.map_err(|f| shard.error(context, f)),
        }
    }

    fn shard(&self, index: usize) -> Result<&Shard, TimelineError> {
        // The ring only names shards that exist; this guards against a bug, not input.
        self.inner.shards.get(index).ok_or(TimelineError::NoShards)
    }
}

/// What a feed is rebuilt from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Home(Id),
    List(&'a List),
}

impl Source<'_> {
    fn feed(self) -> Feed {
        match self {
            Source::Home(user) => Feed::Home(user),
            Source::List(list) => Feed::List {
                owner: list.owner_id,
                list: list.id,
            },
        }
    }
}

/// The ids of `newest` (newest first) inside `window`, in its order, at most its limit.
fn slice(newest: Vec<Id>, window: Window) -> Vec<Id> {
    let mut ids: Vec<Id> = newest
        .into_iter()
        .filter(|id| window.contains(*id))
        .collect();
    if window.order == Order::OldestFirst {
        ids.reverse();
    }
    ids.truncate(window.limit);
    ids
}

/// Post ids as members, without the sentinel's id.
fn encode(posts: &[Id]) -> Vec<[u8; 8]> {
    posts
        .iter()
        .filter(|p| **p != Id::MIN)
        .map(|p| p.to_be_bytes())
        .collect()
}

fn push_members(cmd: &mut redis::Cmd, members: &[[u8; 8]]) {
    for member in members {
        cmd.arg(&member[..]);
    }
}

fn decode(shard: usize, key: &str, members: Vec<Vec<u8>>) -> Vec<Id> {
    members
        .into_iter()
        .filter_map(|m| match (m.len(), Id::from_be_slice(&m)) {
            (8, Some(id)) if id != Id::MIN => Some(id),
            _ => {
                warn!(shard, key, member = ?m, "skipping a malformed timeline entry");
                None
            }
        })
        .collect()
}
