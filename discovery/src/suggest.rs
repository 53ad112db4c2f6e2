//! Who to follow: the suggestion job.
//!
//! A round recomputes every user's suggestions. Its state is in Redis
//! (`starling_timeline::Round`): the worker that starts a round computes the global list
//! (most followed active accounts, most interactions) and then every worker, in any
//! number of processes, claims the next batch of `discovery.batch` accounts under a short
//! lock, computes it without the lock and marks it finished. A batch claimed longer than
//! the claim timeout ago and not finished (its worker died) is claimed again, so a round
//! always completes; a restarted process carries on the round where the cursor stands.
//! Between batches, users who just followed someone or signed up are computed first.
//!
//! For one user: friends of friends (accounts followed by those the user follows, ranked
//! by how many of them follow each, ties by followers), then the global list, leaving out
//! the user, whom it follows, blocks, is blocked by, mutes or dismissed, and accounts that
//! are suspended or not discoverable; `discovery.per_user` kept, in Redis on the user's
//! shard (derived data: recomputed each round, and the api falls back to the global list
//! while a user has none).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use starling_schema::Id;
use starling_schema::discovery::{Source, Suggestion, friends_of_friends, merge};
use starling_schema::ids::now_ms;
use starling_schema::model::Window;
use starling_schema::policy;
use starling_schema::settings::DiscoverySettings;
use starling_store::{MAX_BATCH, Store, all_ids};
use starling_timeline::{Timelines, TrendKind};
use tokio_util::sync::CancellationToken;

use crate::{DiscoveryError, trend_params};

const DAY_MS: u64 = 86_400_000;
/// How long the job's lock is held at most (claiming a batch, or starting a round).
const LOCK_MS: u64 = 120_000;
/// Pause between looks when there is nothing to do.
const IDLE: Duration = Duration::from_secs(1);
/// Users computed at once within a batch.
const CONCURRENCY: usize = 16;
/// Users asking for suggestions taken at a time.
const WANTED_AT_ONCE: usize = 100;

/// What one call of [`SuggestionJob::step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoundReport {
    /// Nothing was due (the round is done, or another worker holds the lock).
    Idle,
    /// A batch of this many users was computed.
    Batch { users: usize },
}

/// The suggestion job. Cheap to clone.
#[derive(Clone)]
pub struct SuggestionJob<S> {
    store: S,
    timelines: Timelines,
    settings: Arc<DiscoverySettings>,
}

/// What a batch reads more than once: whom an account follows (the first page), and
/// whether an account may be suggested with its follower count.
#[derive(Default)]
struct BatchCache {
    following: Mutex<HashMap<Id, Arc<[Id]>>>,
    candidates: Mutex<HashMap<Id, Option<u64>>>,
}

impl<S: Store + Clone> SuggestionJob<S> {
    pub fn new(store: S, timelines: Timelines, settings: &DiscoverySettings) -> Self {
        SuggestionJob {
            store,
            timelines,
            settings: Arc::new(settings.clone()),
        }
    }

    /// Work until `shutdown`: wanted users first, then the round's batches; idle between.
    pub async fn run(&self, shutdown: CancellationToken) {
        tracing::info!("suggestion job started");
        let mut backoff = starling_bus::Backoff::default();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let worked = async {
                let wanted = self.compute_wanted().await?;
                let step = self.step().await?;
                Ok::<_, DiscoveryError>(wanted > 0 || step != RoundReport::Idle)
            }
            .await;
            match worked {
                Ok(true) => backoff.reset(),
                Ok(false) => {
                    backoff.reset();
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(IDLE) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "suggestion job failed a step; retrying");
                    if !backoff.wait(&shutdown).await {
                        break;
                    }
                }
            }
        }
        tracing::info!("suggestion job stopped");
    }

    /// Compute the suggestions of users who asked (followed someone, signed up).
    pub async fn compute_wanted(&self) -> Result<usize, DiscoveryError> {
        let users = self
            .timelines
            .take_wanted_suggestions(WANTED_AT_ONCE)
            .await?;
        if users.is_empty() {
            return Ok(0);
        }
        let global = self.timelines.global_suggestions().await?;
        self.compute(&users, &global).await?;
        Ok(users.len())
    }

    /// One step of the round: start a round if one is due, or claim a batch (a stale one
    /// first) and compute it.
    pub async fn step(&self) -> Result<RoundReport, DiscoveryError> {
        let token = format!("{}-{}", std::process::id(), now_ms());
        if !self.timelines.lock_suggestions(&token, LOCK_MS).await? {
            return Ok(RoundReport::Idle);
        }
        let claimed = self.claim().await;
        if let Err(e) = self.timelines.unlock_suggestions(&token).await {
            tracing::debug!(error = %e, "could not release the suggestion lock; it expires");
        }
        let Some((after, users)) = claimed? else {
            return Ok(RoundReport::Idle);
        };
        let global = self.timelines.global_suggestions().await?;
        self.compute(&users, &global).await?;
        self.timelines
            .finish_suggestion_batch(after, users.len() as u64, now_ms())
            .await?;
        Ok(RoundReport::Batch { users: users.len() })
    }

    /// Under the lock: the batch to compute (its `after` cursor and users), if any.
    async fn claim(&self) -> Result<Option<(Option<Id>, Vec<Id>)>, DiscoveryError> {
        let now = now_ms();
        let interval = self.settings.interval_secs.saturating_mul(1_000);
        let round = self.timelines.suggestion_round().await?;
        let due = round
            .as_ref()
            .is_none_or(|r| r.done && now >= r.started_ms.saturating_add(interval));
        if due {
            let global = self.global(now).await?;
            self.timelines.save_global_suggestions(&global).await?;
            self.timelines.start_suggestion_round(now).await?;
            return self.claim_after(None, now).await.map(Some);
        }
        let timeout = self.settings.claim_timeout_secs.saturating_mul(1_000);
        if let Some(after) = self
            .timelines
            .reclaim_stale_batch(now.saturating_sub(timeout), now)
            .await?
        {
            let page = self.store.scan_accounts(after, self.batch()).await?;
            let users = page
                .items
                .iter()
                .filter(|a| !a.suspended)
                .map(|a| a.id)
                .collect();
            return Ok(Some((after, users)));
        }
        match round {
            Some(r) if !r.done => self.claim_after(r.cursor, now).await.map(Some),
            _ => Ok(None),
        }
    }

    async fn claim_after(
        &self,
        after: Option<Id>,
        now: u64,
    ) -> Result<(Option<Id>, Vec<Id>), DiscoveryError> {
        let page = self.store.scan_accounts(after, self.batch()).await?;
        self.timelines
            .claim_suggestion_batch(after, page.next, now)
            .await?;
        Ok((
            after,
            page.items
                .iter()
                .filter(|a| !a.suspended)
                .map(|a| a.id)
                .collect(),
        ))
    }

    fn batch(&self) -> usize {
        self.settings.batch.clamp(1, MAX_BATCH)
    }

    /// The global list: the most followed accounts that posted within `active_days`,
    /// alternating with the accounts whose posts drew the most distinct favouriting and
    /// reblogging accounts lately; only accounts that may be suggested.
    pub async fn global(&self, now: u64) -> Result<Vec<Suggestion>, DiscoveryError> {
        let size = self.settings.global_size.max(1);
        let since = now.saturating_sub(self.settings.active_days.saturating_mul(DAY_MS));
        let active = self.timelines.active_accounts(since).await?;
        let mut by_followers: Vec<(Id, u64)> = Vec::with_capacity(active.len());
        for chunk in active.chunks(MAX_BATCH) {
            let counts = self.store.account_counts(chunk).await?;
            by_followers.extend(chunk.iter().zip(counts).map(|(id, c)| (*id, c.followers)));
        }
        by_followers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let most_followed = self
            .suggestable(by_followers.iter().take(size * 2).map(|(id, _)| *id))
            .await?;
        let p = trend_params(&self.settings);
        let interacted: Vec<Id> = self
            .timelines
            .trending(TrendKind::Accounts, size * 2, now, &p, 0.0)
            .await?
            .iter()
            .filter_map(|(id, _)| id.parse().ok().map(Id))
            .collect();
        let most_interactions = self.suggestable(interacted.into_iter()).await?;
        let followed = most_followed.iter().take(size).map(|id| Suggestion {
            account: *id,
            sources: Source::MostFollowed.bit(),
        });
        let liked = most_interactions.iter().take(size).map(|id| Suggestion {
            account: *id,
            sources: Source::MostInteractions.bit(),
        });
        let mut alternating = Vec::new();
        let (mut a, mut b) = (followed, liked);
        loop {
            match (a.next(), b.next()) {
                (None, None) => break,
                (x, y) => alternating.extend(x.into_iter().chain(y)),
            }
        }
        Ok(merge(&[], &alternating, size))
    }

    /// Those of `ids` that may be suggested, in order.
    async fn suggestable(&self, ids: impl Iterator<Item = Id>) -> Result<Vec<Id>, DiscoveryError> {
        let ids: Vec<Id> = ids.collect();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH) {
            let accounts = self.store.accounts_by_ids(chunk).await?;
            let ok: HashSet<Id> = accounts
                .iter()
                .filter(|a| policy::may_suggest(a))
                .map(|a| a.id)
                .collect();
            out.extend(chunk.iter().filter(|id| ok.contains(id)));
        }
        Ok(out)
    }

    /// Compute and keep the suggestions of `users`.
    pub async fn compute(&self, users: &[Id], global: &[Suggestion]) -> Result<(), DiscoveryError> {
        let cache = BatchCache::default();
        let results: Vec<Result<(Id, Vec<Suggestion>), DiscoveryError>> =
            futures::stream::iter(users.iter().copied())
                .map(|user| {
                    let cache = &cache;
                    async move { Ok((user, self.for_user(user, global, cache).await?)) }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let lists = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        // Kept for three rounds: a user whose round was missed keeps the last ones.
        let ttl = self.settings.interval_secs.saturating_mul(3).max(3_600);
        self.timelines.save_suggestions(&lists, ttl).await?;
        Ok(())
    }

    async fn for_user(
        &self,
        user: Id,
        global: &[Suggestion],
        cache: &BatchCache,
    ) -> Result<Vec<Suggestion>, DiscoveryError> {
        let s = &self.store;
        let (following, blocks, blocked_by, mutes, dismissed) = futures::try_join!(
            all_ids(|w| s.following(user, w)),
            all_ids(|w| s.blocks_of(user, w)),
            all_ids(|w| s.blocked_by(user, w)),
            all_ids(|w| s.mutes_of(user, w)),
            all_ids(|w| s.dismissed_suggestions(user, w)),
        )?;
        let mut excluded: HashSet<Id> = blocks.into_iter().collect();
        excluded.extend(blocked_by);
        excluded.extend(mutes);
        excluded.extend(dismissed);
        excluded.extend(following.iter().copied());
        excluded.insert(user);
        // Whose follows are read: all of them up to `followees_read`, else an even sample.
        let read = self.settings.followees_read.max(1);
        let step = following.len().div_ceil(read).max(1);
        let sample: Vec<Id> = following.iter().step_by(step).copied().collect();
        let mut theirs = Vec::with_capacity(sample.len());
        for f in sample {
            theirs.push(self.following_of(f, cache).await?);
        }
        let ranked = friends_of_friends(user, &following, theirs.iter().map(|l| &l[..]), &excluded);
        let per_user = self.settings.per_user.max(1);
        let mut fof = Vec::with_capacity(per_user);
        // Candidates in overlap order until enough may be suggested.
        for chunk in ranked.chunks(per_user * 2) {
            let known = self
                .candidates(chunk.iter().map(|(id, _)| *id), cache)
                .await?;
            for (id, overlap) in chunk {
                if let Some(Some(followers)) = known.get(id) {
                    fof.push((*id, *overlap, *followers));
                }
            }
            if fof.len() >= per_user {
                break;
            }
        }
        let global: Vec<Suggestion> = global
            .iter()
            .filter(|g| !excluded.contains(&g.account))
            .copied()
            .collect();
        Ok(merge(&fof, &global, per_user))
    }

    /// Whom `account` follows (the first `their_follows_read`), once per batch.
    async fn following_of(
        &self,
        account: Id,
        cache: &BatchCache,
    ) -> Result<Arc<[Id]>, DiscoveryError> {
        if let Some(hit) = lock(&cache.following).get(&account) {
            return Ok(hit.clone());
        }
        let limit = self
            .settings
            .their_follows_read
            .clamp(1, starling_store::MAX_PAGE);
        let page = self.store.following(account, Window::oldest(limit)).await?;
        let list: Arc<[Id]> = page.items.into();
        lock(&cache.following).insert(account, list.clone());
        Ok(list)
    }

    /// For each of `ids`: `Some(followers)` if it may be suggested, `None` if not.
    async fn candidates(
        &self,
        ids: impl Iterator<Item = Id>,
        cache: &BatchCache,
    ) -> Result<HashMap<Id, Option<u64>>, DiscoveryError> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let known = lock(&cache.candidates);
            for id in ids {
                match known.get(&id) {
                    Some(v) => {
                        out.insert(id, *v);
                    }
                    None => missing.push(id),
                }
            }
        }
        for chunk in missing.chunks(MAX_BATCH) {
            let accounts = self.store.accounts_by_ids(chunk).await?;
            let ok: Vec<Id> = accounts
                .iter()
                .filter(|a| policy::may_suggest(a))
                .map(|a| a.id)
                .collect();
            let counts = self.store.account_counts(&ok).await?;
            let followers: HashMap<Id, u64> = ok
                .iter()
                .zip(counts)
                .map(|(id, c)| (*id, c.followers))
                .collect();
            let mut known = lock(&cache.candidates);
            for id in chunk {
                let v = followers.get(id).copied();
                known.insert(*id, v);
                out.insert(*id, v);
            }
        }
        Ok(out)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
