//! Shared rate-limit buckets: GCRA (the generic cell rate algorithm) kept on the Redis
//! shards, so every api node counts against the same limits.
//!
//! A bucket is one string key on the shard the key hashes to, holding its theoretical
//! arrival time (unix ms, fractional). One small Lua script reads the shard's clock, decides
//! and advances the time in one step, so concurrent nodes never both take the last slot, and
//! the key expires when the bucket is full again: an idle bucket costs nothing. The same
//! algorithm as the in-process limiter (governor), so moving from one node to several does
//! not change what a client sees.

use deadpool_redis::redis;

use crate::shard::Request;
use crate::{TimelineError, Timelines};

/// Arguments: limit, period in ms. Answers {allowed (0/1), remaining, ms until reset}, where
/// reset is when the next hit is allowed (refused) or the bucket is full again (allowed).
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((period - (new_tat - now)) / interval + 0.000001)
return {1, remaining, math.ceil(new_tat - now)}
";

/// What one hit on a bucket found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateHit {
    pub allowed: bool,
    /// Hits left right now.
    pub remaining: u32,
    /// Milliseconds until the next hit is allowed (refused) or the bucket is full (allowed).
    pub reset_ms: u64,
}

impl Timelines {
    /// Count one hit on bucket `key` (at most `limit` per `period_ms`, refilled steadily) on
    /// the shard the key hashes to.
    pub async fn rate_hit(
        &self,
        key: &str,
        limit: u32,
        period_ms: u64,
    ) -> Result<RateHit, TimelineError> {
        let shard = self.ring().shard_of_key(key.as_bytes());
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GCRA)
            .arg(1)
            .arg(format!("rl:{key}"))
            .arg(limit.max(1))
            .arg(period_ms.max(1));
        let (allowed, remaining, reset_ms): (i64, i64, i64) = self
            .call(shard, "counting a rate-limit hit", Request::Cmd(&cmd))
            .await?;
        Ok(RateHit {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            reset_ms: u64::try_from(reset_ms.max(0)).unwrap_or(0),
        })
    }
}
