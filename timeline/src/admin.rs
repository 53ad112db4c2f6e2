//! What the operator's commands need of the shards: how each shard is doing, which
//! timelines it holds, and moving a timeline whole from one shard to another (when a shard
//! is added to or removed from the ring).

use deadpool_redis::redis;
use starling_schema::Id;

use crate::error::TimelineError;
use crate::shard::Request;
use crate::{Timelines, pending_key, timeline_key};

/// One shard as it reports itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardInfo {
    /// Keys of every kind (`DBSIZE`).
    pub keys: u64,
    /// `used_memory` from `INFO memory`, in bytes.
    pub used_memory: u64,
}

/// One page of a shard's timelines and the cursor of the next (`0`: done), as `SCAN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelinePage {
    pub users: Vec<Id>,
    pub next: u64,
}

impl Timelines {
    /// How shard `i` is named (its URL without credentials), if it exists.
    pub fn shard_addr(&self, i: usize) -> Option<&str> {
        self.inner.shards.get(i).map(|s| s.addr.as_str())
    }

    /// The index of the shard named `addr` (a URL, credentials ignored), if it is one.
    pub fn shard_index(&self, addr: &str) -> Option<usize> {
        let name = crate::ring::ring_name(addr);
        self.inner.shards.iter().position(|s| s.addr == name)
    }

    /// Key count and memory of shard `shard`.
    pub async fn shard_info(&self, shard: usize) -> Result<ShardInfo, TimelineError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DBSIZE").cmd("INFO").arg("memory");
        let (keys, info): (u64, String) = self
            .call(shard, "reading shard statistics", Request::Pipe(&pipe))
            .await?;
        let used_memory = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(ShardInfo { keys, used_memory })
    }

    /// The users whose timelines shard `shard` holds, a `SCAN` page at a time (start with
    /// cursor 0; a page may be empty before the scan is done). Each user appears at least
    /// once over a whole scan.
    pub async fn scan_timelines(
        &self,
        shard: usize,
        cursor: u64,
        count: usize,
    ) -> Result<TimelinePage, TimelineError> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg("tl:*")
            .arg("COUNT")
            .arg(count.max(1))
            .arg("TYPE")
            .arg("zset");
        let (next, keys): (u64, Vec<String>) = self
            .call(shard, "listing timelines", Request::Cmd(&scan))
            .await?;
        let users = keys
            .iter()
            .filter_map(|k| k.strip_prefix("tl:").and_then(|id| id.parse().ok()))
            .collect();
        Ok(TimelinePage { users, next })
    }

    /// Move `user`'s timeline whole from shard `from` of these timelines to shard `to` of
    /// `target` (`DUMP`, `RESTORE … REPLACE`, then delete the source), so it is never absent
    /// from both. False if `from` had no such timeline (already moved). Safe to repeat.
    pub async fn move_timeline(
        &self,
        user: Id,
        from: usize,
        target: &Timelines,
        to: usize,
    ) -> Result<bool, TimelineError> {
        let key = timeline_key(user);
        let mut dump = redis::cmd("DUMP");
        dump.arg(&key);
        let payload: Option<Vec<u8>> = self
            .call(from, "dumping a timeline", Request::Cmd(&dump))
            .await?;
        let Some(payload) = payload else {
            return Ok(false);
        };
        let mut restore = redis::cmd("RESTORE");
        restore.arg(&key).arg(0).arg(payload).arg("REPLACE");
        target
            .call::<()>(to, "restoring a timeline", Request::Cmd(&restore))
            .await?;
        let mut del = redis::cmd("DEL");
        del.arg(&key).arg(pending_key(user));
        self.call::<i64>(from, "deleting a moved timeline", Request::Cmd(&del))
            .await?;
        Ok(true)
    }
}

/// Operational counters (a Redis hash on the first shard), shared by every process: the
/// push workers count their deliveries here for `starling admin push stats`.
impl Timelines {
    /// Add `by` to each named counter of the hash `stats:{name}`.
    pub async fn bump_counters(&self, name: &str, by: &[(&str, u64)]) -> Result<(), TimelineError> {
        let mut pipe = redis::pipe();
        let key = format!("stats:{name}");
        for (field, n) in by {
            pipe.cmd("HINCRBY").arg(&key).arg(*field).arg(*n).ignore();
        }
        self.call(0, "counting", Request::Pipe(&pipe)).await
    }

    /// Every counter of the hash `stats:{name}`, by name.
    pub async fn counters(&self, name: &str) -> Result<Vec<(String, u64)>, TimelineError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(format!("stats:{name}"));
        let mut all: Vec<(String, u64)> =
            self.call(0, "reading counters", Request::Cmd(&cmd)).await?;
        all.sort();
        Ok(all)
    }
}
