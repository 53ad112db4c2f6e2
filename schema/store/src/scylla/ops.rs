//! Steps that several operations share: minting ids, reading accounts and posts, and the
//! multi-table writes (publishing and tombstoning a post, changing a follow), each ordered
//! so that a crash part-way leaves nothing a reader would trip over.

use ::scylla::value::MaybeUnset;
use starling_schema::Id;
use starling_schema::ids::{Mint, now_ms};
use starling_schema::model::{Account, Created, Page, Post, Window};

use super::exec::{self, db, each, ms, ms_to_us, now_us, unset};
use super::rows::{AccountRow, StoredPost, StoredPostRow, role_str};
use super::{ScyllaStore, statements};
use crate::{Result, StoreError};

impl ScyllaStore {
    // ---- ids ----------------------------------------------------------------------------

    /// Mint an id, persisting a new lease first when the old one runs out, and renewing it
    /// ahead of time when it runs short.
    pub(super) async fn mint(&self) -> Result<Id> {
        loop {
            match self.inner.ids.next() {
                Mint::Id(id) => {
                    // If the lock is taken, someone is renewing already.
                    if let Some(until) = self.inner.ids.lease_wanted(now_ms())
                        && let Ok(persisted) = self.inner.lease.try_lock()
                        && let Err(e) = self.persist_lease(persisted, until).await
                    {
                        tracing::warn!(error = %e, "renewing the id lease early failed");
                    }
                    return Ok(id);
                }
                Mint::NeedLease(until) => {
                    let persisted = self.inner.lease.lock().await;
                    self.persist_lease(persisted, until).await?;
                }
            }
        }
    }

    async fn persist_lease(
        &self,
        mut persisted: tokio::sync::MutexGuard<'_, u64>,
        until: u64,
    ) -> Result<()> {
        if until > *persisted {
            // The lease as its own write time: a larger lease always wins.
            let values = (ms(until), self.inner.node_id);
            let st = &self.st().lease_set;
            self.write_at("persisting the id lease", st, ms_to_us(until), values)
                .await?;
            *persisted = until;
        }
        self.inner.ids.extend_lease(*persisted);
        Ok(())
    }

    // ---- reads shared by several operations ------------------------------------------------

    /// An account with its profile (two partitions, read together).
    pub(super) async fn account(&self, id: Id) -> Result<Option<Account>> {
        let (row, profile) = futures::try_join!(
            self.row::<AccountRow>("reading an account", &self.st().account_get, (db(id),)),
            self.profile(id),
        )?;
        let Some(mut account) = row.map(AccountRow::into_account).transpose()? else {
            return Ok(None);
        };
        account.profile = profile;
        Ok(Some(account))
    }

    pub(super) async fn require_accounts<const N: usize>(&self, ids: [Id; N]) -> Result<()> {
        let found = each(ids, |id| {
            self.exists("reading an account", &self.st().account_get, (db(id),))
        })
        .await?;
        if found.into_iter().all(|f| f) {
            Ok(())
        } else {
            Err(StoreError::NotFound("account"))
        }
    }

    pub(super) async fn stored_post(&self, id: Id) -> Result<Option<StoredPost>> {
        self.row::<StoredPostRow>("reading a post", &self.st().post_get, (db(id),))
            .await?
            .map(StoredPostRow::into_stored)
            .transpose()
    }

    pub(super) async fn live_post(&self, id: Id) -> Result<Option<Post>> {
        Ok(self
            .stored_post(id)
            .await?
            .filter(|s| !s.deleted)
            .map(|s| s.post))
    }

    pub(super) async fn blocked_either_way(&self, a: Id, b: Id) -> Result<bool> {
        const CTX: &str = "reading a block";
        let (ab, ba) = futures::try_join!(
            self.exists(CTX, &self.st().block_get, (db(a), db(b))),
            self.exists(CTX, &self.st().block_get, (db(b), db(a))),
        )?;
        Ok(ab || ba)
    }

    pub(super) async fn ids_page(
        &self,
        context: &'static str,
        st: &statements::Ordered,
        partition: Id,
        w: Window,
    ) -> Result<Page<Id>> {
        self.window(
            context,
            st.pick(w.order),
            partition,
            w,
            |(v,): (i64,)| Ok(exec::id(v)),
            |i| *i,
        )
        .await
    }

    // ---- writes shared by several operations -----------------------------------------------

    /// Write (or overwrite) an account's row.
    pub(super) async fn write_account(&self, context: &'static str, a: &Account) -> Result<()> {
        let values = (
            db(a.id),
            a.username.as_str(),
            a.display_name.as_str(),
            a.note.as_str(),
            a.locked,
            a.bot,
            role_str(a.role),
            a.suspended,
            ms(a.created_at_ms),
        );
        self.write(context, &self.st().account_insert, values).await
    }

    /// Write an account row and claim its username; on a lost claim, take the row back.
    /// Returns whether the account was created.
    pub(super) async fn insert_account(&self, account: &Account, key: &str) -> Result<bool> {
        const CTX: &str = "creating an account";
        let st = self.st();
        let a = account;
        // The account first: a crash before the claim leaves an unreachable row, not a
        // username that points nowhere.
        self.write_account(CTX, a).await?;
        if self
            .lwt(CTX, &st.username_claim, (key, db(a.id)))
            .await?
            .applied
        {
            return Ok(true);
        }
        let cleanup = futures::try_join!(
            self.write(CTX, &st.account_delete, (db(a.id),)),
            self.write(CTX, &st.credentials_delete, (db(a.id),)),
        );
        if let Err(e) = cleanup {
            tracing::warn!(error = %e, "removing the rows of an account whose username was taken");
        }
        Ok(false)
    }

    /// The post an idempotency key was claimed for, as first answered.
    pub(super) async fn first_post(
        &self,
        context: &'static str,
        id: Option<i64>,
    ) -> Result<Created<Post>> {
        let stored = match id {
            Some(id) => self.stored_post(exec::id(id)).await?,
            None => None,
        };
        match stored {
            Some(stored) => {
                // The attempt that claimed the key may have died (or been cancelled with
                // its request) after the claim and before the post was listed: then the
                // post answered now would be missing from its author's page, the public
                // and tag feeds and every home rebuilt from them. Finish the listing.
                if !stored.deleted && !self.listed(&stored.post).await? {
                    tracing::info!(post = %stored.post.id, "a replayed post was never listed; listing it now");
                    self.list_post(&stored.post, false).await?;
                }
                Ok(Created {
                    value: stored.post,
                    created: false,
                })
            }
            None => Err(StoreError::backend(
                context,
                "an idempotency key names no post",
            )),
        }
    }

    /// Whether `post` is on its author's page.
    async fn listed(&self, post: &Post) -> Result<bool> {
        let values = (db(post.author_id), db(post.id));
        self.exists("reading an author's posts", &self.st().post_of_get, values)
            .await
    }

    /// Write a post row (not yet listed or counted).
    pub(super) async fn insert_post_row(&self, post: &Post) -> Result<()> {
        let st = self.st();
        self.write("writing a post", &st.post_insert, post_values(post))
            .await
    }

    /// List a claimed post under its author and count it.
    pub(super) async fn publish_post(&self, post: &Post) -> Result<()> {
        self.list_post(post, true).await
    }

    /// Write what lists a post (its author's page, `last_status_at`, the reply link, the
    /// public and tag feeds) and, if `count`, bump its counters. The listing writes are
    /// idempotent (each at the post's own time, so a later delete still wins); the
    /// increments are not, so a replay that finishes an interrupted create passes `false`.
    async fn list_post(&self, post: &Post, count: bool) -> Result<()> {
        const CTX: &str = "publishing a post";
        let st = self.st();
        let at = ms(post.created_at_ms);
        // Both written at the post's own time: a delete (written later) always wins over the
        // listing, and the newest post's time wins `last_status_at`, in any arrival order.
        let written = ms_to_us(post.created_at_ms);
        futures::try_join!(
            self.write_at(CTX, &st.post_of_insert, written, post_values(post)),
            async {
                if count {
                    self.bump(CTX, &st.statuses_add, post.author_id, 1).await
                } else {
                    Ok(())
                }
            },
            self.write_at(CTX, &st.last_status_set, written, (at, db(post.author_id))),
            async {
                match post.in_reply_to_id {
                    Some(parent) if count => self.bump(CTX, &st.replies_add, parent, 1).await,
                    _ => Ok(()),
                }
            },
            async {
                match post.reblog_of {
                    Some(original) if count => self.bump(CTX, &st.reblogs_add, original, 1).await,
                    _ => Ok(()),
                }
            },
            async {
                match post.in_reply_to_id {
                    Some(parent) => {
                        let values = (db(parent), db(post.id));
                        self.write_at(CTX, &st.reply_insert, written, values).await
                    }
                    None => Ok(()),
                }
            },
            async {
                let day = day_of(post.id);
                each(feeds_of(post), |feed| async move {
                    self.write(CTX, &st.feed_day_insert, (feed.as_str(), day))
                        .await?;
                    let values = (feed.as_str(), day, db(post.id));
                    self.write_at(CTX, &st.feed_post_insert, written, values)
                        .await
                })
                .await
                .map(|_| ())
            },
        )?;
        Ok(())
    }

    /// Tombstone a live post and undo what it counted. Returns it if it was live.
    pub(super) async fn tombstone(&self, id: Id) -> Result<Option<Post>> {
        const CTX: &str = "deleting a post";
        let st = self.st();
        let Some(stored) = self.stored_post(id).await? else {
            return Ok(None);
        };
        if stored.deleted {
            return Ok(None);
        }
        let post = stored.post;
        let author = db(post.author_id);
        // Off the author's list first: a crash here leaves a live, unlisted post, and a
        // retried delete finishes the job. Written after the listing's time, so it wins
        // even over a listing that arrives later.
        let written = now_us().max(ms_to_us(post.created_at_ms) + 1);
        self.write_at(CTX, &st.post_of_delete, written, (author, db(id)))
            .await?;
        let tombstone = self
            .lwt(CTX, &st.post_tombstone, (ms(now_ms()), db(id), author))
            .await?;
        if !tombstone.applied {
            // Someone else deleted it at the same time and undoes the counts.
            return Ok(None);
        }
        self.drop_mark(starling_schema::feeds::MarkKind::Pin, post.author_id, id)
            .await?;
        futures::try_join!(
            self.bump(CTX, &st.statuses_add, post.author_id, -1),
            async {
                match post.in_reply_to_id {
                    Some(parent) => self.bump(CTX, &st.replies_add, parent, -1).await,
                    None => Ok(()),
                }
            },
            async {
                let Some(original) = post.reblog_of else {
                    return Ok(());
                };
                let release = (db(original), author, db(id));
                self.lwt(CTX, &st.reblog_release, release).await?;
                self.bump(CTX, &st.reblogs_add, original, -1).await
            },
            async {
                match post.in_reply_to_id {
                    Some(parent) => {
                        let values = (db(parent), db(id));
                        self.write_at(CTX, &st.reply_delete, written, values).await
                    }
                    None => Ok(()),
                }
            },
            async {
                let day = day_of(post.id);
                each(feeds_of(&post), |feed| async move {
                    let values = (feed.as_str(), day, db(id));
                    self.write_at(CTX, &st.feed_post_delete, written, values)
                        .await
                })
                .await
                .map(|_| ())
            },
        )?;
        Ok(Some(post))
    }

    /// One page of a feed (see [`feeds_of`]): walks the feed's days in window order, reading
    /// each day's slice of the window until a page and one more are found.
    pub(super) async fn feed_page(&self, feed: &str, w: Window) -> Result<Page<Id>> {
        const CTX: &str = "reading a public timeline";
        crate::check::window(&w)?;
        let Some((lo, hi)) = exec::bounds(&w) else {
            return Ok(exec::empty_page());
        };
        let st = self.st();
        let (lo_day, hi_day) = (day_of(exec::id(lo)), day_of(exec::id(hi)));
        let mut days = Vec::new();
        let days_st = st.feed_days_scan.pick(w.order);
        self.scan(CTX, days_st, (feed, lo_day, hi_day), |(day,): (i32,)| {
            days.push(day);
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .await?;
        let want = w.limit + 1;
        let mut items: Vec<Id> = Vec::with_capacity(want.min(1024));
        let posts_st = st.feed_posts_page.pick(w.order);
        for day in days {
            let limit = i32::try_from(want - items.len()).unwrap_or(i32::MAX);
            self.scan(CTX, posts_st, (feed, day, lo, hi, limit), |(id,): (i64,)| {
                items.push(exec::id(id));
                Ok(if items.len() >= want {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                })
            })
            .await?;
            if items.len() >= want {
                break;
            }
        }
        Ok(exec::finish(items, w, |i| *i))
    }

    /// Set the follow `follower → followee` on or off, with its counts. True if it changed.
    ///
    /// `follow_edges` holds the edge's state and a version that grows with every change;
    /// the change is a compare-and-set on the version, so of concurrent changes each is
    /// decided once, in one order, and only the decided ones count. The lists `following`
    /// and `followers` are then written with the version as their write time, so whatever
    /// order those writes arrive in, both lists end at the latest state.
    pub(super) async fn set_follow(&self, follower: Id, followee: Id, on: bool) -> Result<bool> {
        const CTX: &str = "changing a follow";
        // Each failed attempt means another change was decided meanwhile.
        const ATTEMPTS: usize = 64;
        let st = self.st();
        let (f, e) = (db(follower), db(followee));
        let mut state = self.follow_state(f, e).await?;
        for _ in 0..ATTEMPTS {
            if state.is_some_and(|(active, _)| active) == on {
                return Ok(false);
            }
            let version = now_us().max(state.map_or(0, |(_, v)| v.saturating_add(1)));
            let outcome = match state {
                None => {
                    let values = (f, e, on, version);
                    self.lwt(CTX, &st.follow_edge_create, values).await?
                }
                Some((was, prev)) => {
                    let values = (on, version, f, e, prev, was);
                    self.lwt(CTX, &st.follow_edge_change, values).await?
                }
            };
            if outcome.applied {
                let delta = if on { 1 } else { -1 };
                futures::try_join!(
                    self.list_follow(f, e, on, version),
                    self.bump(CTX, &st.following_add, follower, delta),
                    self.bump(CTX, &st.followers_add, followee, delta),
                )?;
                if !on {
                    self.leave_lists(follower, followee).await?;
                }
                return Ok(true);
            }
            state = match (outcome.boolean("active"), outcome.bigint("version")) {
                (active, Some(v)) => Some((active.unwrap_or(false), v)),
                _ => self.follow_state(f, e).await?,
            };
        }
        Err(StoreError::unavailable(
            CTX,
            "the follow kept changing; try again",
        ))
    }

    /// The state of a follow edge: whether it is on, and its version.
    async fn follow_state(&self, follower: i64, followee: i64) -> Result<Option<(bool, i64)>> {
        let st = &self.st().follow_edge_get;
        let row = self
            .row::<(Option<bool>, Option<i64>)>("reading a follow", st, (follower, followee))
            .await?;
        Ok(row.map(|(active, version)| (active.unwrap_or(false), version.unwrap_or(0))))
    }

    /// Write a follow edge's state into both lists at its version's time.
    async fn list_follow(&self, f: i64, e: i64, on: bool, version: i64) -> Result<()> {
        const CTX: &str = "listing a follow";
        let st = self.st();
        if on {
            let at = version / 1000;
            futures::try_join!(
                self.write_at(CTX, &st.following_insert, version, (f, e, at)),
                self.write_at(CTX, &st.follower_insert, version, (e, f, at)),
            )?;
        } else {
            futures::try_join!(
                self.write_at(CTX, &st.following_delete, version, (f, e)),
                self.write_at(CTX, &st.follower_delete, version, (e, f)),
            )?;
        }
        Ok(())
    }
}

/// The values of a post in [`statements::POST_COLUMNS`] order.
#[allow(clippy::type_complexity)]
pub(super) fn post_values(
    p: &Post,
) -> (
    i64,
    i64,
    &str,
    &str,
    bool,
    &'static str,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
    Vec<i64>,
    &[String],
    MaybeUnset<&str>,
    i64,
    MaybeUnset<i64>,
    MaybeUnset<i64>,
) {
    (
        db(p.id),
        db(p.author_id),
        p.text.as_str(),
        p.spoiler_text.as_str(),
        p.sensitive,
        p.visibility.as_str(),
        unset(p.in_reply_to_id.map(db)),
        unset(p.in_reply_to_account_id.map(db)),
        unset(p.reblog_of.map(db)),
        p.mentions.iter().copied().map(db).collect(),
        p.hashtags.as_slice(),
        unset(p.language.as_deref()),
        ms(p.created_at_ms),
        unset(p.edited_at_ms.map(ms)),
        unset(p.poll_id.map(db)),
    )
}

/// Compare two digests without stopping at the first difference.
pub(super) fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The UTC day (days since the epoch) an id was minted on: the bucket of public feeds.
pub(super) fn day_of(id: Id) -> i32 {
    i32::try_from(id.unix_ms() / 86_400_000).unwrap_or(i32::MAX)
}

/// The feeds a post is listed in: `public` and `#tag` for each hashtag, when it is a
/// public original; none otherwise.
pub(super) fn feeds_of(post: &Post) -> Vec<String> {
    if !starling_schema::policy::listed_publicly(post) {
        return Vec::new();
    }
    std::iter::once(PUBLIC_FEED.to_owned())
        .chain(post.hashtags.iter().map(|t| tag_feed(t)))
        .collect()
}

pub(super) const PUBLIC_FEED: &str = "public";

pub(super) fn tag_feed(tag: &str) -> String {
    format!("#{tag}")
}
