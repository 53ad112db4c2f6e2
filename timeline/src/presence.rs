//! Presence: which users hold a live stream right now, so fan-out tells only them.
//!
//! Each shard keeps one sorted set `online` of the users the ring assigns to it (8-byte
//! big-endian ids) scored by when their presence lapses (unix ms). Api nodes mark the users
//! streaming from them every few seconds with a lapse time a little further out; nobody
//! removes anyone, because a user may stream from several nodes at once: a user who left is
//! simply not renewed and lapses. Fan-out asks about a page of followers with one `ZMSCORE`
//! per shard, sent alongside the page's timeline writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_redis::redis;
use futures::future::join_all;
use starling_schema::Id;

use crate::shard::Request;
use crate::{TimelineError, Timelines};

const ONLINE_KEY: &str = "online";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Timelines {
    /// Mark `users` online for `ttl` from now (one pipeline per shard, shards in parallel),
    /// and drop the entries that lapsed.
    pub async fn mark_online(&self, users: &[Id], ttl: Duration) -> Result<(), TimelineError> {
        let until = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let now = now_ms();
        let calls = self.group_by_shard(users).into_iter().map(|(shard, ids)| {
            let mut add = redis::cmd("ZADD");
            add.arg(ONLINE_KEY);
            for id in &ids {
                add.arg(until).arg(&id.to_be_bytes()[..]);
            }
            let mut pipe = redis::pipe();
            pipe.add_command(add)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(ONLINE_KEY)
                .arg("-inf")
                .arg(format!("({now}"))
                .ignore();
            async move {
                self.call::<()>(shard, "marking users online", Request::Pipe(&pipe))
                    .await
            }
        });
        join_all(calls)
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// Which of `users` are online (their presence has not lapsed), in the order given.
    pub async fn online(&self, users: &[Id]) -> Result<Vec<Id>, TimelineError> {
        let now = now_ms();
        let calls = self.group_by_shard(users).into_iter().map(|(shard, ids)| {
            let mut cmd = redis::cmd("ZMSCORE");
            cmd.arg(ONLINE_KEY);
            for id in &ids {
                cmd.arg(&id.to_be_bytes()[..]);
            }
            async move {
                let scores: Vec<Option<f64>> = self
                    .call(shard, "asking who is online", Request::Cmd(&cmd))
                    .await?;
                Ok::<_, TimelineError>(
                    ids.into_iter()
                        .zip(scores)
                        .filter(|(_, until)| until.is_some_and(|t| t > now as f64))
                        .map(|(id, _)| id)
                        .collect::<Vec<Id>>(),
                )
            }
        });
        let mut online = Vec::new();
        for found in join_all(calls).await {
            online.extend(found?);
        }
        // Back in the caller's order, so a page's events go out in a stable order.
        let rank: std::collections::HashMap<Id, usize> =
            users.iter().enumerate().map(|(i, u)| (*u, i)).collect();
        online.sort_by_key(|u| rank.get(u).copied().unwrap_or(usize::MAX));
        online.dedup();
        Ok(online)
    }

    pub(crate) fn group_by_shard(&self, users: &[Id]) -> Vec<(usize, Vec<Id>)> {
        let mut groups: Vec<Vec<Id>> = vec![Vec::new(); self.shard_count()];
        for user in users {
            if let Some(group) = groups.get_mut(self.shard_of(*user)) {
                group.push(*user);
            }
        }
        groups
            .into_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .collect()
    }
}
