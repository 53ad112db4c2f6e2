//! Fan-out workers: events in, home timelines (and lists) out.
//!
//! This crate owns turning the events on the bus into timeline writes: a post (or reblog)
//! into one insert per follower, batched a store page at a time and grouped per Redis shard
//! by the timeline crate; a delete into the same removals; a follow into a merge of the
//! followee's recent posts; an unfollow, block or mute into their removal. [`Fanout::apply`]
//! applies one event idempotently; [`Fanout::run`] consumes the shared durable consumer,
//! acknowledging an event only once it is applied, so a worker killed mid-batch leaves the
//! event to be redelivered and applied again.
//!
//! Who receives a post is the visibility policy's answer (`starling_schema::policy`:
//! [`policy::delivery`], [`policy::home_takes`]); fan-out only gathers its facts a page at a
//! time: its author; for a public, unlisted or private post every follower, and for a
//! private or direct one the accounts it mentions; never an account that blocks or mutes
//! the author (or, for a reblog, the original's author), and a reply to someone else only
//! those who follow that account too (Mastodon's rule). A reblog is not inserted
//! where the 40 newest entries already show its original. The same worker turns events
//! into notifications (mention, follow, favourite, reblog) through [`Fanout::notify`].
//!
//! Edits tell whoever a post reached that it changed, and rebloggers; ended polls tell
//! their voters and author (`polls.rs`, a job beside every worker).
//!
//! Lists ride the same pass (`lists.rs`): a page of followers' homes and the lists of theirs
//! that hold the author go out in one call per shard. Followed hashtags (`tags.rs`) then
//! bring a public post to the tags' followers who do not follow the author.
//!
//! It depends on the schema, the store trait, the timelines and the bus; never on the api
//! crate (nor the api on this one).

mod conversations;
mod error;
mod lists;
mod live;
mod metrics;
mod polls;
mod run;
mod tags;

use std::collections::HashSet;

use starling_schema::Id;
use starling_schema::events::{Event, LiveEvent};
use starling_schema::model::{
    NewNotification, Notification, NotificationKind, Post, Visibility, Window,
};
use starling_schema::policy::{self, Relation, Surface};
use starling_schema::settings::FanoutSettings;
use starling_store::{MAX_BATCH, MAX_PAGE, Store, all_ids as all_pages};
use starling_timeline::{Feed, Timelines};

pub use error::FanoutError;

/// Applies events to home timelines. Cheap to clone.
#[derive(Clone)]
pub struct Fanout<S> {
    store: S,
    timelines: Timelines,
    settings: FanoutSettings,
    /// Where live events for connected users go; `None` sends none.
    live: Option<starling_bus::Bus>,
    /// Where new notifications are announced (`notification.created`, for the push
    /// worker); `None` announces none.
    announce: Option<starling_bus::Publisher<S>>,
}

/// What to do to the timelines of a page of users.
#[derive(Clone, Copy)]
enum Write {
    Insert(Id),
    /// A reblog wrapper and its original (deduped against the newest entries).
    InsertReblog(Id, Id),
    Remove(Id),
    /// No timeline changes (an edited post stays where it is): those streaming hear of the
    /// edit (`status.update`).
    Touch(Id),
}

/// Which followers of an author a post may reach.
#[derive(Default)]
struct Audience {
    /// Accounts that block or mute the author, or the reblogged original's author, or that
    /// the original's author blocks.
    shunning: HashSet<Id>,
    /// For a reply to someone else: only that account and its followers.
    reply_to: Option<Id>,
}

impl<S: Store + Clone> Fanout<S> {
    pub fn new(store: S, timelines: Timelines, settings: FanoutSettings) -> Self {
        Fanout {
            store,
            timelines,
            settings,
            live: None,
            announce: None,
        }
    }

    /// Also announce each new notification on the event stream (`notification.created`),
    /// through `publisher`: acked by JetStream or kept in the store's outbox before the
    /// event that caused it is acked.
    pub fn with_announcements(mut self, publisher: starling_bus::Publisher<S>) -> Self {
        self.announce = Some(publisher);
        self
    }

    /// Also tell connected users (and the public streams) about what reaches them, through
    /// the live subjects on `bus`.
    pub fn with_live(mut self, bus: starling_bus::Bus) -> Self {
        self.live = Some(bus);
        self
    }

    pub fn settings(&self) -> &FanoutSettings {
        &self.settings
    }

    /// Apply one event to the timelines. Idempotent: applying it again changes nothing
    /// more. Only timelines that exist are written; a missing one is rebuilt whole from
    /// the store when it is next read.
    ///
    /// Events may be applied out of order (several workers, several events in flight, a
    /// redelivery), so where order matters the store, the system of record, has the last
    /// word: a post found deleted after it was delivered is taken out again, and a follow
    /// found undone after its merge is unmerged.
    pub async fn apply(&self, event: &Event) -> Result<(), FanoutError> {
        match event {
            Event::PostCreated { post } => {
                self.deliver(post).await?;
                for mentioned in &post.mentions {
                    self.notify(NewNotification {
                        account_id: *mentioned,
                        kind: NotificationKind::Mention,
                        from_account_id: post.author_id,
                        post_id: Some(post.id),
                    })
                    .await?;
                }
                self.converse(post).await?;
                self.broadcast(post).await;
                Ok(())
            }
            Event::PostUpdated { post } => self.edited(post).await,
            Event::Reblogged {
                reblog,
                post_author_id,
            } => {
                self.deliver(reblog).await?;
                self.notify(NewNotification {
                    account_id: *post_author_id,
                    kind: NotificationKind::Reblog,
                    from_account_id: reblog.author_id,
                    post_id: reblog.reblog_of,
                })
                .await
                .map(drop)
            }
            Event::Favourited {
                account_id,
                post_id,
                post_author_id,
            } => self
                .notify(NewNotification {
                    account_id: *post_author_id,
                    kind: NotificationKind::Favourite,
                    from_account_id: *account_id,
                    post_id: Some(*post_id),
                })
                .await
                .map(drop),
            Event::PostDeleted {
                post_id,
                author_id,
                mentions,
                visibility,
                reblog_of,
            } => {
                // Mentioned accounts that do not follow the author got it directly.
                self.write(Write::Remove(*post_id), mentions).await?;
                self.retract(*post_id, *author_id).await?;
                if *visibility == Visibility::Direct && reblog_of.is_none() {
                    self.unconverse(*post_id, *author_id, mentions).await?;
                }
                if *visibility == Visibility::Public {
                    self.broadcast_delete(*post_id).await;
                }
                Ok(())
            }
            Event::Unreblogged {
                account_id,
                reblog_id,
                ..
            } => self.retract(*reblog_id, *account_id).await,
            Event::Followed {
                follower_id,
                followee_id,
            } => {
                self.follow(*follower_id, *followee_id).await?;
                self.notify(NewNotification {
                    account_id: *followee_id,
                    kind: NotificationKind::Follow,
                    from_account_id: *follower_id,
                    post_id: None,
                })
                .await
                .map(drop)
            }
            Event::Unfollowed {
                follower_id,
                followee_id,
            } => self.unfollow(*follower_id, *followee_id).await,
            Event::FollowRequested {
                follower_id,
                followee_id,
            } => self
                .notify(NewNotification {
                    account_id: *followee_id,
                    kind: NotificationKind::FollowRequest,
                    from_account_id: *follower_id,
                    post_id: None,
                })
                .await
                .map(drop),
            // Accepted: the new follower's timeline takes the account's posts, private ones
            // included; the account was told of the request already.
            Event::FollowAuthorized {
                follower_id,
                followee_id,
            } => self.follow(*follower_id, *followee_id).await,
            Event::Blocked {
                account_id,
                target_id,
            } => {
                self.unmerge(*account_id, *target_id).await?;
                self.unmerge(*target_id, *account_id).await?;
                // A block ends the follows, and with them list memberships.
                self.unmerge_lists(*account_id, *target_id).await?;
                self.unmerge_lists(*target_id, *account_id).await
            }
            Event::Muted {
                account_id,
                target_id,
                ..
            } => self.unmerge(*account_id, *target_id).await,
            Event::Unmuted {
                account_id,
                target_id,
            } => {
                if self.follows(*account_id, *target_id).await? {
                    self.merge(*account_id, *target_id).await?;
                }
                Ok(())
            }
            Event::AccountCreated { .. }
            | Event::AccountUpdated { .. }
            | Event::AccountDeleted { .. }
            | Event::Unblocked { .. }
            | Event::Unfavourited { .. }
            | Event::MediaUploaded { .. }
            | Event::NotificationCreated { .. } => Ok(()),
        }
    }

    /// Create a notification unless it would go to its own cause, the recipient blocks or
    /// is blocked by the actor, mutes the actor's notifications or the post's thread; or it
    /// exists already
    /// (a redelivered event). Returns the notification created, if any. Every notification
    /// is made here, so whatever announces new ones (streaming) hooks on here.
    pub async fn notify(&self, new: NewNotification) -> Result<Option<Notification>, FanoutError> {
        // Never of one's own doing, except that one's own poll has ended.
        if new.account_id == new.from_account_id && new.kind != NotificationKind::Poll {
            return Ok(None);
        }
        let rel = self
            .store
            .relationships(new.account_id, &[new.from_account_id])
            .await?;
        if rel
            .iter()
            .any(|r| r.blocking || r.blocked_by || r.muting_notifications)
        {
            return Ok(None);
        }
        // A thread the recipient muted tells them nothing more (mentions, favourites and
        // reblogs of its posts alike).
        if let Some(post) = new.post_id
            && let Some(post) = self.store.posts_by_ids(&[post]).await?.first()
        {
            let root = starling_store::thread_root(&self.store, post).await?;
            if self
                .store
                .muted_conversations(new.account_id, &[root])
                .await?
                .first()
                .copied()
                .unwrap_or(false)
            {
                return Ok(None);
            }
        }
        match self.store.notify(new).await {
            Ok(created) => {
                if let Some(n) = &created {
                    self.tell(&[n.account_id], &LiveEvent::Notification { id: n.id })
                        .await;
                    if let Some(publisher) = &self.announce {
                        publisher
                            .publish(Event::NotificationCreated {
                                notification: n.clone(),
                            })
                            .await?;
                    }
                }
                Ok(created)
            }
            // The recipient is gone: nobody to tell.
            Err(e) if e.kind() == starling_schema::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A new post (or reblog wrapper) into the timelines of its author and of everyone it
    /// is for: every follower, or for a direct post only the accounts it mentions.
    async fn deliver(&self, post: &Post) -> Result<(), FanoutError> {
        let insert = match post.reblog_of {
            Some(original) => Write::InsertReblog(post.id, original),
            None => Write::Insert(post.id),
        };
        let audience = self.audience(post).await?;
        self.to_audience(post, insert, &audience).await?;
        self.to_tag_followers(post, insert, &audience).await?;
        // Deleted meanwhile (its delete may have been applied first): take it out again.
        if self.store.posts_by_ids(&[post.id]).await?.is_empty() {
            tracing::debug!(post = %post.id, "post deleted while it was fanned out; retracting");
            self.to_audience(post, Write::Remove(post.id), &Audience::default())
                .await?;
            self.to_tag_followers(post, Write::Remove(post.id), &Audience::default())
                .await?;
        }
        Ok(())
    }

    /// An edited post: whoever it reached and is streaming now hears of it (a
    /// `status.update`), as do the public and hashtag streams of a public post; those who
    /// reblogged it get an `update` notification. Timelines hold ids and need nothing.
    async fn edited(&self, post: &Post) -> Result<(), FanoutError> {
        let audience = self.audience(post).await?;
        self.to_audience(post, Write::Touch(post.id), &audience)
            .await?;
        self.broadcast_update(post).await;
        let mut window = Window::oldest(MAX_BATCH);
        loop {
            let page = self.store.reblogged_by(post.id, window).await?;
            for account in &page.items {
                self.notify(NewNotification {
                    account_id: *account,
                    kind: NotificationKind::Update,
                    from_account_id: post.author_id,
                    post_id: Some(post.id),
                })
                .await?;
            }
            match page.next {
                Some(next) => window = next,
                None => return Ok(()),
            }
        }
    }

    /// Who must not get `post` (read once per event), and the reply rule.
    async fn audience(&self, post: &Post) -> Result<Audience, FanoutError> {
        let mut shunning = HashSet::new();
        let author = post.author_id;
        shunning.extend(all_pages(|w| self.store.muted_by(author, w)).await?);
        shunning.extend(all_pages(|w| self.store.blocked_by(author, w)).await?);
        if let Some(original) = post.reblog_of
            && let Some(original) = self.store.posts_by_ids(&[original]).await?.first()
            && original.author_id != author
        {
            let by = original.author_id;
            shunning.extend(all_pages(|w| self.store.muted_by(by, w)).await?);
            shunning.extend(all_pages(|w| self.store.blocked_by(by, w)).await?);
            shunning.extend(all_pages(|w| self.store.blocks_of(by, w)).await?);
            // The original's author still sees their own post reblogged.
            shunning.remove(&by);
        }
        shunning.remove(&author);
        let reply_to = post.in_reply_to_account_id.filter(|to| *to != author);
        Ok(Audience { shunning, reply_to })
    }

    async fn to_audience(
        &self,
        post: &Post,
        write: Write,
        audience: &Audience,
    ) -> Result<(), FanoutError> {
        let delivery = policy::delivery(post);
        let mut users = vec![post.author_id];
        if delivery.mentioned {
            // The reply rule is for followers: a mention reaches its account whatever the
            // post answers.
            users.extend(post.mentions.iter().copied().filter(|m| {
                let rel = Relation::in_feed(false, audience.shunning.contains(m));
                *m != post.author_id && policy::may_see(post, Some(*m), &rel, Surface::Feed)
            }));
        }
        self.write(write, &users).await?;
        if delivery.followers {
            self.to_followers(post.author_id, Some(post), write, Some(audience))
                .await?;
        }
        Ok(())
    }

    /// Those of `users` whose home takes `post` ([`policy::home_takes`]): followers of its
    /// author when `follows_author`, strangers (a followed hashtag's followers) otherwise.
    /// The original of a reblog needs no relation of its own: `audience.shunning` holds
    /// those its author is kept apart from.
    async fn admit(
        &self,
        post: &Post,
        users: Vec<Id>,
        audience: &Audience,
        follows_author: bool,
    ) -> Result<Vec<Id>, FanoutError> {
        let mut follows_replied_to = HashSet::new();
        if let Some(to) = audience.reply_to {
            for chunk in users.chunks(MAX_BATCH) {
                // `followed_by` from the replied-to account's side: the user follows it.
                let rels = self.store.relationships(to, chunk).await?;
                follows_replied_to.extend(rels.iter().filter(|r| r.followed_by).map(|r| r.target));
            }
        }
        Ok(users
            .into_iter()
            .filter(|u| {
                let rel = Relation::in_feed(follows_author, audience.shunning.contains(u));
                policy::home_takes(post, *u, &rel, None, follows_replied_to.contains(u))
            })
            .collect())
    }

    /// A deleted post (or reblog wrapper) out of its author's and every follower's timeline.
    async fn retract(&self, post: Id, author: Id) -> Result<(), FanoutError> {
        self.write(Write::Remove(post), &[author]).await?;
        self.to_followers(author, None, Write::Remove(post), None)
            .await
    }

    /// Apply `write` to the home timeline of every follower of `account` that `audience`
    /// admits (all of them without one) and, in the same per-shard calls, to the lists of
    /// theirs that hold `account` and admit `post` (every such list for a removal); a store
    /// page at a time, never holding more than a page (the next page is read while the
    /// current one is written).
    async fn to_followers(
        &self,
        account: Id,
        post: Option<&Post>,
        write: Write,
        audience: Option<&Audience>,
    ) -> Result<(), FanoutError> {
        let window = Window::oldest(self.settings.follower_page.clamp(1, MAX_PAGE));
        let mut page = self.store.followers(account, window).await?;
        // The follower ids before this page: its list owners are in (after, through].
        let mut after = None;
        loop {
            let users = std::mem::take(&mut page.items);
            let through = page.next.and(users.last().copied());
            let feeds = self
                .page_feeds(account, post, write, users, audience, (after, through))
                .await?;
            after = through;
            match page.next {
                Some(next) => {
                    let (written, following) = tokio::join!(
                        self.write_feeds(write, &feeds),
                        self.store.followers(account, next)
                    );
                    written?;
                    page = following?;
                }
                None => return self.write_feeds(write, &feeds).await,
            }
        }
    }

    async fn write(&self, write: Write, users: &[Id]) -> Result<(), FanoutError> {
        let feeds: Vec<Feed> = users.iter().map(|u| Feed::Home(*u)).collect();
        self.write_feeds(write, &feeds).await
    }

    /// One write to homes and lists together (one call per shard); the owners of the homes
    /// and lists who are streaming hear of it (`update`/`delete` on their user stream, and
    /// on the `list` stream of each list written).
    async fn write_feeds(&self, write: Write, feeds: &[Feed]) -> Result<(), FanoutError> {
        if feeds.is_empty() {
            return Ok(());
        }
        // Presence is asked for every feed's owner (a list's owner is usually among the
        // homes already; duplicates cost nothing).
        let owners: Vec<Id> = feeds.iter().map(|f| f.owner()).collect();
        let owners = &owners;
        match write {
            Write::Insert(post) => {
                let (inserted, online) = tokio::join!(
                    self.timelines.insert_feeds(post, feeds),
                    self.online(owners)
                );
                inserted?;
                metrics::inserted(feeds.len());
                self.tell_feeds(feeds, &online, post, true).await;
            }
            Write::Remove(post) => {
                let (removed, online) = tokio::join!(
                    self.timelines.remove_feeds(post, feeds),
                    self.online(owners)
                );
                removed?;
                self.tell_feeds(feeds, &online, post, false).await;
            }
            Write::Touch(post) => {
                // An edit reaches the streams of the homes it is in.
                let homes: Vec<Id> = feeds
                    .iter()
                    .filter_map(|f| match f {
                        Feed::Home(user) => Some(*user),
                        Feed::List { .. } => None,
                    })
                    .collect();
                let online = self.online(&homes).await;
                self.tell(&online, &LiveEvent::StatusUpdate { id: post })
                    .await;
            }
            Write::InsertReblog(reblog, original) => {
                let (inserted, online) = tokio::join!(
                    self.timelines.insert_reblog_feeds(reblog, original, feeds),
                    self.online(owners)
                );
                inserted?;
                metrics::inserted(feeds.len());
                self.tell_feeds(feeds, &online, reblog, true).await;
            }
        }
        Ok(())
    }

    async fn follow(&self, follower: Id, followee: Id) -> Result<(), FanoutError> {
        self.merge(follower, followee).await?;
        // Unfollowed meanwhile (its event may have been applied first): undo the merge.
        if !self.follows(follower, followee).await? {
            self.unmerge(follower, followee).await?;
        }
        Ok(())
    }

    async fn unfollow(&self, follower: Id, followee: Id) -> Result<(), FanoutError> {
        // Followed again since: that follow's merge stands.
        if self.follows(follower, followee).await? {
            return Ok(());
        }
        self.unmerge(follower, followee).await?;
        self.unmerge_lists(follower, followee).await
    }

    /// The followee's newest posts that `user` may see, into `user`'s timeline.
    /// Replies to others count only where `user` follows the account replied to, as at
    /// fan-out.
    async fn merge(&self, user: Id, author: Id) -> Result<(), FanoutError> {
        let posts = self.recent_posts(author).await?;
        let mut replied_to: Vec<Id> = posts
            .iter()
            .filter_map(|p| p.in_reply_to_account_id)
            .filter(|to| *to != author && *to != user)
            .collect();
        replied_to.sort_unstable();
        replied_to.dedup();
        let mut followed = HashSet::new();
        for chunk in replied_to.chunks(MAX_BATCH) {
            let rels = self.store.relationships(user, chunk).await?;
            followed.extend(rels.iter().filter(|r| r.following).map(|r| r.target));
        }
        let follower = Relation::in_feed(true, false);
        let posts: Vec<Id> = posts
            .iter()
            .filter(|p| {
                let follows_replied_to = p
                    .in_reply_to_account_id
                    .is_some_and(|to| followed.contains(&to));
                policy::home_takes(p, user, &follower, None, follows_replied_to)
            })
            .map(|p| p.id)
            .collect();
        self.timelines.merge(user, &posts).await?;
        Ok(())
    }

    /// The author's newest posts out of `user`'s timeline.
    async fn unmerge(&self, user: Id, author: Id) -> Result<(), FanoutError> {
        let posts: Vec<Id> = self
            .recent_posts(author)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        self.timelines.remove_many(user, &posts).await?;
        Ok(())
    }

    /// As many of the author's newest posts as a timeline holds.
    async fn recent_posts(&self, author: Id) -> Result<Vec<Post>, FanoutError> {
        let window = Window::newest(self.timelines.cap().clamp(1, MAX_PAGE));
        Ok(self.store.posts_by_author(author, window).await?.items)
    }

    async fn follows(&self, follower: Id, followee: Id) -> Result<bool, FanoutError> {
        let rel = self.store.relationships(follower, &[followee]).await?;
        Ok(rel.iter().any(|r| r.target == followee && r.following))
    }
}
