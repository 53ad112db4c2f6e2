//! Discovery in Redis: trend scores with time decay, hashtag and link usage history, and
//! who-to-follow suggestions with the state of the job that computes them.
//!
//! Trends and the job's shared state live on one shard, the one the key `discovery` hashes
//! to; suggestions live on their user's shard, like the user's home. A trend list is a
//! sorted set scored by forward decay: a use at time `t` adds `2^((t - L) / half_life)`
//! for a landmark `L` kept beside it, so the order of the set is the order of the decayed
//! scores at any later time, nothing is rewritten as time passes, and the score now is the
//! stored one times `2^((L - now) / half_life)`. When the weights grow large (32 half-lives
//! past `L`) one call rescales the set to a new landmark. Each use counts once per account:
//! per day for a hashtag or link (a set of the day's accounts, which is also the history's
//! `accounts`; the day's posts are a HyperLogLog, the history's `uses`), and once per
//! status for a favourite or reblog. A redelivered event therefore changes nothing.

use deadpool_redis::redis;
use starling_schema::Id;
use starling_schema::discovery::{DayUse, HISTORY_DAYS, Suggestion, day_of, history_days};

use crate::shard::Request;
use crate::{TimelineError, Timelines};

/// A trend list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrendKind {
    /// Hashtags, by the accounts that used them each day.
    Tags,
    /// Links in posts, likewise.
    Links,
    /// Posts, by the accounts that favourited or reblogged them.
    Statuses,
    /// Authors, by the accounts that favourited or reblogged their posts (the global
    /// suggestions' `most_interactions`).
    Accounts,
}

impl TrendKind {
    fn zset(self) -> &'static str {
        match self {
            TrendKind::Tags => "tr:tags",
            TrendKind::Links => "tr:links",
            TrendKind::Statuses => "tr:statuses",
            TrendKind::Accounts => "tr:accounts",
        }
    }

    fn landmark(self) -> String {
        format!("{}:L", self.zset())
    }

    fn day_key(self, name: &str, day: u64, what: &str) -> String {
        let prefix = match self {
            TrendKind::Links => "tr:l",
            _ => "tr:t",
        };
        format!("{prefix}:{day}:{what}:{name}")
    }
}

/// How trend scores are kept.
#[derive(Clone, Copy, Debug)]
pub struct TrendParams {
    pub half_life_ms: u64,
    /// Entries kept per list; the lowest scored fall off.
    pub max_entries: usize,
}

/// Longest hashtag or link counted, in bytes (longer links are not counted).
pub const MAX_NAME_BYTES: usize = 512;
/// How long a day's history is kept (a week and a day).
const HISTORY_TTL_SECS: u64 = 8 * 86_400;
/// How long the accounts that favourited or reblogged a post are remembered.
const STATUS_SEEN_TTL_SECS: u64 = 7 * 86_400;

/// KEYS: the set of accounts already counted, the HyperLogLog of posts (ARGV[2] empty: none),
/// then (sorted set, landmark) pairs. ARGV: account, post, at_ms, half_life_ms, ttl_secs,
/// max_entries, then one member per pair. Returns 1 if the account was new (and every set
/// was bumped), 0 if it was counted already.
const BUMP: &str = r"
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if ARGV[2] ~= '' then
  redis.call('PFADD', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
if added == 0 then return 0 end
local t = tonumber(ARGV[3])
local h = tonumber(ARGV[4])
local max = tonumber(ARGV[6])
local pairs_n = (#KEYS - 2) / 2
for i = 1, pairs_n do
  local zset = KEYS[1 + 2 * i]
  local lkey = KEYS[2 + 2 * i]
  local l = tonumber(redis.call('GET', lkey))
  if not l then
    l = t
    redis.call('SET', lkey, string.format('%d', l))
  elseif (t - l) / h > 32 then
    redis.call('ZUNIONSTORE', zset, 1, zset, 'WEIGHTS', string.format('%.17g', 2 ^ (-(t - l) / h)))
    l = t
    redis.call('SET', lkey, string.format('%d', l))
  end
  redis.call('ZINCRBY', zset, string.format('%.17g', 2 ^ ((t - l) / h)), ARGV[6 + i])
  local n = redis.call('ZCARD', zset)
  if n > max then redis.call('ZREMRANGEBYRANK', zset, 0, n - max - 1) end
end
return 1
";

/// Compare-and-delete of a lock.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// KEYS: claims, round. ARGV: claim member, users done, now_ms. Ends a claimed batch; the
/// round is finished when its scan is done and no batch is claimed any more.
const FINISH_CLAIM: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'users', ARGV[2])
if redis.call('HGET', KEYS[2], 'done') == '1' and redis.call('ZCARD', KEYS[1]) == 0
   and not redis.call('HGET', KEYS[2], 'finished') then
  redis.call('HSET', KEYS[2], 'finished', ARGV[3])
end
return 1
";

const ACTIVE: &str = "tr:active";
const GLOBAL: &str = "sg:global";
const DIRTY: &str = "sg:dirty";
const LOCK: &str = "sg:lock";
const ROUND: &str = "sg:round";
const CLAIMS: &str = "sg:claims";

fn suggestions_key(user: Id) -> String {
    format!("sg:{user}")
}

fn claim_member(after: Option<Id>) -> String {
    after.map_or_else(|| "start".to_owned(), |id| id.to_string())
}

fn parse_claim(member: &str) -> Option<Option<Id>> {
    if member == "start" {
        Some(None)
    } else {
        member.parse::<u64>().ok().map(|n| Some(Id(n)))
    }
}

/// Where a round of suggestions stands. Kept in Redis, so every worker (and one restarted
/// mid-round) carries on the same round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Rounds started so far, this one included.
    pub number: u64,
    pub started_ms: u64,
    /// The last account claimed (the next batch starts after it); `None`: none yet.
    pub cursor: Option<Id>,
    /// Every account was claimed.
    pub done: bool,
    /// Users whose suggestions were computed in this round.
    pub users: u64,
    /// When the last claimed batch was finished.
    pub finished_ms: Option<u64>,
}

impl Timelines {
    /// The shard holding trends and the suggestion job's shared state.
    pub fn discovery_shard(&self) -> usize {
        self.ring().shard_of_key(b"discovery")
    }

    /// Count one use of each of `names` (hashtags or links) by `account` in `post` at
    /// `at_ms`: the day's history, and the trend score when the account is new that day.
    pub async fn record_uses(
        &self,
        kind: TrendKind,
        names: &[String],
        account: Id,
        post: Id,
        at_ms: u64,
        p: &TrendParams,
    ) -> Result<(), TimelineError> {
        let day = day_of(at_ms);
        let mut pipe = redis::pipe();
        let mut any = false;
        for name in names
            .iter()
            .filter(|n| !n.is_empty() && n.len() <= MAX_NAME_BYTES)
        {
            any = true;
            let cmd = bump(
                &kind.day_key(name, day, "a"),
                Some((&kind.day_key(name, day, "u"), post)),
                account,
                at_ms,
                HISTORY_TTL_SECS,
                p,
                &[(kind, name.as_str())],
            );
            pipe.add_command(cmd).ignore();
        }
        if !any {
            return Ok(());
        }
        self.call(
            self.discovery_shard(),
            "counting trend uses",
            Request::Pipe(&pipe),
        )
        .await
    }

    /// Count `account`'s favourite or reblog of `post` (by `author`) at `at_ms`, once per
    /// account and post: the post's trend score and its author's interactions.
    pub async fn record_interaction(
        &self,
        post: Id,
        author: Id,
        account: Id,
        at_ms: u64,
        p: &TrendParams,
    ) -> Result<(), TimelineError> {
        let post_name = post.to_string();
        let author_name = author.to_string();
        let cmd = bump(
            &format!("tr:s:{post}"),
            None,
            account,
            at_ms,
            STATUS_SEEN_TTL_SECS,
            p,
            &[
                (TrendKind::Statuses, post_name.as_str()),
                (TrendKind::Accounts, author_name.as_str()),
            ],
        );
        let _: i64 = self
            .call(
                self.discovery_shard(),
                "counting an interaction",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(())
    }

    /// A deleted post leaves the trending statuses at once.
    pub async fn forget_trending_status(&self, post: Id) -> Result<(), TimelineError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM")
            .arg(TrendKind::Statuses.zset())
            .arg(post.to_string())
            .ignore()
            .cmd("DEL")
            .arg(format!("tr:s:{post}"))
            .ignore();
        self.call(
            self.discovery_shard(),
            "forgetting a trending status",
            Request::Pipe(&pipe),
        )
        .await
    }

    /// The `count` highest of a trend list whose decayed score at `now_ms` is at least
    /// `min_score`, highest first, with that score.
    pub async fn trending(
        &self,
        kind: TrendKind,
        count: usize,
        now_ms: u64,
        p: &TrendParams,
        min_score: f64,
    ) -> Result<Vec<(String, f64)>, TimelineError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(kind.landmark())
            .cmd("ZREVRANGE")
            .arg(kind.zset())
            .arg(0)
            .arg(count.saturating_sub(1))
            .arg("WITHSCORES");
        let (landmark, top): (Option<u64>, Vec<(String, f64)>) = self
            .call(
                self.discovery_shard(),
                "reading trends",
                Request::Pipe(&pipe),
            )
            .await?;
        let Some(landmark) = landmark else {
            return Ok(Vec::new());
        };
        let scale = 2f64.powf((landmark as f64 - now_ms as f64) / p.half_life_ms.max(1) as f64);
        Ok(top
            .into_iter()
            .map(|(name, stored)| (name, stored * scale))
            .take_while(|(_, score)| *score >= min_score)
            .collect())
    }

    /// The last [`HISTORY_DAYS`] days of use of each of `names` (hashtags or links), today
    /// first, in the order asked.
    pub async fn usage_history(
        &self,
        kind: TrendKind,
        names: &[String],
        now_ms: u64,
    ) -> Result<Vec<[DayUse; HISTORY_DAYS]>, TimelineError> {
        let days = history_days(now_ms);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for name in names {
            for day in days {
                pipe.cmd("PFCOUNT")
                    .arg(kind.day_key(name, day, "u"))
                    .cmd("SCARD")
                    .arg(kind.day_key(name, day, "a"));
            }
        }
        let counts: Vec<u64> = self
            .call(
                self.discovery_shard(),
                "reading usage history",
                Request::Pipe(&pipe),
            )
            .await?;
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, _)| {
                std::array::from_fn(|d| DayUse {
                    day: days[d],
                    uses: counts.get((i * HISTORY_DAYS + d) * 2).copied().unwrap_or(0),
                    accounts: counts
                        .get((i * HISTORY_DAYS + d) * 2 + 1)
                        .copied()
                        .unwrap_or(0),
                })
            })
            .collect())
    }

    /// `author` posted at `at_ms`: active for the global suggestions. Entries older than
    /// `forget_before_ms` are dropped.
    pub async fn mark_active(
        &self,
        author: Id,
        at_ms: u64,
        forget_before_ms: u64,
    ) -> Result<(), TimelineError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(ACTIVE)
            .arg("GT")
            .arg(at_ms)
            .arg(author.to_string())
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(ACTIVE)
            .arg("-inf")
            .arg(format!("({forget_before_ms}"))
            .ignore();
        self.call(
            self.discovery_shard(),
            "marking an account active",
            Request::Pipe(&pipe),
        )
        .await
    }

    /// The accounts that posted since `since_ms`.
    pub async fn active_accounts(&self, since_ms: u64) -> Result<Vec<Id>, TimelineError> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(ACTIVE).arg(since_ms).arg("+inf");
        let ids: Vec<String> = self
            .call(
                self.discovery_shard(),
                "reading active accounts",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok().map(Id)).collect())
    }

    // ---- suggestions --------------------------------------------------------------------

    /// Keep each user's suggestions (on the user's shard, one pipeline per shard) for
    /// `ttl_secs`.
    pub async fn save_suggestions(
        &self,
        lists: &[(Id, Vec<Suggestion>)],
        ttl_secs: u64,
    ) -> Result<(), TimelineError> {
        let users: Vec<Id> = lists.iter().map(|(u, _)| *u).collect();
        let by_user: std::collections::HashMap<Id, &Vec<Suggestion>> =
            lists.iter().map(|(u, l)| (*u, l)).collect();
        let calls = self.group_by_shard(&users).into_iter().map(|(shard, ids)| {
            let mut pipe = redis::pipe();
            for id in &ids {
                let list = by_user.get(id).map(|l| l.as_slice()).unwrap_or_default();
                pipe.cmd("SET")
                    .arg(suggestions_key(*id))
                    .arg(Suggestion::encode(list))
                    .arg("EX")
                    .arg(ttl_secs.max(1))
                    .ignore();
            }
            async move {
                self.call::<()>(shard, "keeping suggestions", Request::Pipe(&pipe))
                    .await
            }
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// A user's suggestions, if computed (and not expired or lost with their shard).
    pub async fn suggestions(&self, user: Id) -> Result<Option<Vec<Suggestion>>, TimelineError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(suggestions_key(user));
        let bytes: Option<Vec<u8>> = self
            .call(
                self.shard_of(user),
                "reading suggestions",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(bytes.map(|b| Suggestion::decode(&b)))
    }

    /// Keep the global suggestions (what users without their own get).
    pub async fn save_global_suggestions(&self, list: &[Suggestion]) -> Result<(), TimelineError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(GLOBAL).arg(Suggestion::encode(list));
        self.call(
            self.discovery_shard(),
            "keeping global suggestions",
            Request::Cmd(&cmd),
        )
        .await
    }

    pub async fn global_suggestions(&self) -> Result<Vec<Suggestion>, TimelineError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(GLOBAL);
        let bytes: Option<Vec<u8>> = self
            .call(
                self.discovery_shard(),
                "reading global suggestions",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(bytes.map(|b| Suggestion::decode(&b)).unwrap_or_default())
    }

    /// Ask for these users' suggestions to be computed soon (they followed someone, or
    /// are new), ahead of the round.
    pub async fn want_suggestions(&self, users: &[Id]) -> Result<(), TimelineError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("SADD");
        cmd.arg(DIRTY);
        for u in users {
            cmd.arg(u.to_string());
        }
        self.call(
            self.discovery_shard(),
            "asking for suggestions",
            Request::Cmd(&cmd),
        )
        .await
    }

    /// Take up to `n` users whose suggestions were asked for.
    pub async fn take_wanted_suggestions(&self, n: usize) -> Result<Vec<Id>, TimelineError> {
        let mut cmd = redis::cmd("SPOP");
        cmd.arg(DIRTY).arg(n.max(1));
        let ids: Vec<String> = self
            .call(
                self.discovery_shard(),
                "taking users asking for suggestions",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok().map(Id)).collect())
    }

    /// Take the suggestion job's lock for `ttl_ms` under `token`; false if someone holds it.
    pub async fn lock_suggestions(&self, token: &str, ttl_ms: u64) -> Result<bool, TimelineError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(LOCK)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1));
        let set: Option<String> = self
            .call(
                self.discovery_shard(),
                "locking the suggestion job",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(set.is_some())
    }

    /// Release the lock if `token` still holds it.
    pub async fn unlock_suggestions(&self, token: &str) -> Result<(), TimelineError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(UNLOCK).arg(1).arg(LOCK).arg(token);
        let _: i64 = self
            .call(
                self.discovery_shard(),
                "unlocking the suggestion job",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(())
    }

    /// The current round, if one was ever started.
    pub async fn suggestion_round(&self) -> Result<Option<Round>, TimelineError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(ROUND);
        let fields: std::collections::HashMap<String, String> = self
            .call(
                self.discovery_shard(),
                "reading the suggestion round",
                Request::Cmd(&cmd),
            )
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let num = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
        Ok(Some(Round {
            number: num("number").unwrap_or(0),
            started_ms: num("started").unwrap_or(0),
            cursor: num("cursor").map(Id),
            done: fields.get("done").is_some_and(|v| v == "1"),
            users: num("users").unwrap_or(0),
            finished_ms: num("finished"),
        }))
    }

    /// Start a new round at `now_ms` (the caller holds the lock).
    pub async fn start_suggestion_round(&self, now_ms: u64) -> Result<(), TimelineError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL")
            .arg(CLAIMS)
            .ignore()
            .cmd("HDEL")
            .arg(ROUND)
            .arg("cursor")
            .arg("finished")
            .ignore()
            .cmd("HINCRBY")
            .arg(ROUND)
            .arg("number")
            .arg(1)
            .ignore()
            .cmd("HSET")
            .arg(ROUND)
            .arg("started")
            .arg(now_ms)
            .arg("done")
            .arg(0)
            .arg("users")
            .arg(0)
            .ignore();
        self.call(
            self.discovery_shard(),
            "starting a suggestion round",
            Request::Pipe(&pipe),
        )
        .await
    }

    /// Claim the batch of accounts after `after` (the caller holds the lock and read the
    /// batch's end, `next`: `None` when the scan is done).
    pub async fn claim_suggestion_batch(
        &self,
        after: Option<Id>,
        next: Option<Id>,
        now_ms: u64,
    ) -> Result<(), TimelineError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(CLAIMS)
            .arg(now_ms)
            .arg(claim_member(after))
            .ignore();
        match next {
            Some(next) => pipe
                .cmd("HSET")
                .arg(ROUND)
                .arg("cursor")
                .arg(next.0)
                .ignore(),
            None => pipe.cmd("HSET").arg(ROUND).arg("done").arg(1).ignore(),
        };
        self.call(
            self.discovery_shard(),
            "claiming a suggestion batch",
            Request::Pipe(&pipe),
        )
        .await
    }

    /// A batch claimed before `before_ms` and never finished (its worker died), claimed
    /// again at `now_ms`: the `after` cursor it starts from. The caller holds the lock.
    pub async fn reclaim_stale_batch(
        &self,
        before_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Option<Id>>, TimelineError> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(CLAIMS)
            .arg("-inf")
            .arg(format!("({before_ms}"))
            .arg("LIMIT")
            .arg(0)
            .arg(1);
        let stale: Vec<String> = self
            .call(
                self.discovery_shard(),
                "looking for stale suggestion batches",
                Request::Cmd(&cmd),
            )
            .await?;
        let Some(member) = stale.into_iter().next() else {
            return Ok(None);
        };
        let mut again = redis::cmd("ZADD");
        again.arg(CLAIMS).arg(now_ms).arg(&member);
        self.call::<()>(
            self.discovery_shard(),
            "claiming a stale suggestion batch",
            Request::Cmd(&again),
        )
        .await?;
        Ok(parse_claim(&member))
    }

    /// The batch after `after` is done: `users` computed.
    pub async fn finish_suggestion_batch(
        &self,
        after: Option<Id>,
        users: u64,
        now_ms: u64,
    ) -> Result<(), TimelineError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(FINISH_CLAIM)
            .arg(2)
            .arg(CLAIMS)
            .arg(ROUND)
            .arg(claim_member(after))
            .arg(users)
            .arg(now_ms);
        let _: i64 = self
            .call(
                self.discovery_shard(),
                "finishing a suggestion batch",
                Request::Cmd(&cmd),
            )
            .await?;
        Ok(())
    }
}

/// The bump script's call: count `account` in `seen` (and `post` in the HyperLogLog), and
/// if new, add its decayed weight to each list's member.
fn bump(
    seen: &str,
    uses: Option<(&str, Id)>,
    account: Id,
    at_ms: u64,
    ttl_secs: u64,
    p: &TrendParams,
    lists: &[(TrendKind, &str)],
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(BUMP)
        .arg(2 + lists.len() * 2)
        .arg(seen)
        .arg(uses.map_or(seen, |(k, _)| k));
    for (kind, _) in lists {
        cmd.arg(kind.zset()).arg(kind.landmark());
    }
    cmd.arg(account.to_string())
        .arg(uses.map(|(_, post)| post.to_string()).unwrap_or_default())
        .arg(at_ms)
        .arg(p.half_life_ms.max(1))
        .arg(ttl_secs)
        .arg(p.max_entries.max(1));
    for (_, member) in lists {
        cmd.arg(*member);
    }
    cmd
}
