//! Fan-out workers: events in, home timelines out.
//!
//! This crate owns turning the events on the bus into timeline writes: a post (or reblog)
//! into one insert per follower, batched a store page at a time and grouped per Redis shard
//! by the timeline crate; a delete into the same removals; a follow into a merge of the
//! followee's recent posts; an unfollow, block or mute into their removal. [`Fanout::apply`]
//! applies one event idempotently; [`Fanout::run`] consumes the shared durable consumer,
//! acknowledging an event only once it is applied, so a worker killed mid-batch leaves the
//! event to be redelivered and applied again. It depends on the schema, the store trait,
//! the timelines and the bus; never on the api crate (nor the api on this one).

mod error;
mod metrics;
mod run;

use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::{Post, Visibility, Window};
use starling_schema::settings::FanoutSettings;
use starling_store::{MAX_PAGE, Store};
use starling_timeline::Timelines;

pub use error::FanoutError;

/// Applies events to home timelines. Cheap to clone.
#[derive(Clone)]
pub struct Fanout<S> {
    store: S,
    timelines: Timelines,
    settings: FanoutSettings,
}

/// What to do to the timelines of a page of users.
#[derive(Clone, Copy)]
enum Write {
    Insert(Id),
    Remove(Id),
}

impl<S: Store + Clone> Fanout<S> {
    pub fn new(store: S, timelines: Timelines, settings: FanoutSettings) -> Self {
        Fanout {
            store,
            timelines,
            settings,
        }
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
            Event::PostCreated { post } => self.deliver(post).await,
            Event::Reblogged { reblog, .. } => self.deliver(reblog).await,
            Event::PostDeleted {
                post_id,
                author_id,
                mentions,
                ..
            } => {
                // Mentioned accounts that do not follow the author got it directly.
                self.write(Write::Remove(*post_id), mentions).await?;
                self.retract(*post_id, *author_id).await
            }
            Event::Unreblogged {
                account_id,
                reblog_id,
                ..
            } => self.retract(*reblog_id, *account_id).await,
            Event::Followed {
                follower_id,
                followee_id,
            } => self.follow(*follower_id, *followee_id).await,
            Event::Unfollowed {
                follower_id,
                followee_id,
            } => self.unfollow(*follower_id, *followee_id).await,
            Event::Blocked {
                account_id,
                target_id,
            } => {
                self.unmerge(*account_id, *target_id).await?;
                self.unmerge(*target_id, *account_id).await
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
            | Event::Favourited { .. }
            | Event::Unfavourited { .. } => Ok(()),
        }
    }

    /// A new post (or reblog wrapper) into the timelines of its author and of everyone it
    /// is for: every follower, or for a direct post only the accounts it mentions.
    async fn deliver(&self, post: &Post) -> Result<(), FanoutError> {
        self.to_audience(post, Write::Insert(post.id)).await?;
        // Deleted meanwhile (its delete may have been applied first): take it out again.
        if self.store.posts_by_ids(&[post.id]).await?.is_empty() {
            tracing::debug!(post = %post.id, "post deleted while it was fanned out; retracting");
            self.to_audience(post, Write::Remove(post.id)).await?;
        }
        Ok(())
    }

    async fn to_audience(&self, post: &Post, write: Write) -> Result<(), FanoutError> {
        if post.visibility == Visibility::Direct {
            let mut users = vec![post.author_id];
            for m in &post.mentions {
                if !users.contains(m) {
                    users.push(*m);
                }
            }
            self.write(write, &users).await
        } else {
            self.write(write, &[post.author_id]).await?;
            self.to_followers(post.author_id, write).await
        }
    }

    /// A deleted post (or reblog wrapper) out of its author's and every follower's timeline.
    async fn retract(&self, post: Id, author: Id) -> Result<(), FanoutError> {
        self.write(Write::Remove(post), &[author]).await?;
        self.to_followers(author, Write::Remove(post)).await
    }

    /// Apply `write` to every follower of `account`, a store page at a time, never holding
    /// more than a page (the next page is read while the current one is written).
    async fn to_followers(&self, account: Id, write: Write) -> Result<(), FanoutError> {
        let window = Window::oldest(self.settings.follower_page.clamp(1, MAX_PAGE));
        let mut page = self.store.followers(account, window).await?;
        loop {
            let users = std::mem::take(&mut page.items);
            match page.next {
                Some(next) => {
                    let (written, following) = tokio::join!(
                        self.write(write, &users),
                        self.store.followers(account, next)
                    );
                    written?;
                    page = following?;
                }
                None => return self.write(write, &users).await,
            }
        }
    }

    async fn write(&self, write: Write, users: &[Id]) -> Result<(), FanoutError> {
        if users.is_empty() {
            return Ok(());
        }
        match write {
            Write::Insert(post) => {
                self.timelines.insert(post, users).await?;
                metrics::inserted(users.len());
            }
            Write::Remove(post) => self.timelines.remove(post, users).await?,
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
        self.unmerge(follower, followee).await
    }

    /// The followee's newest posts that `user` may see, into `user`'s timeline.
    async fn merge(&self, user: Id, author: Id) -> Result<(), FanoutError> {
        let posts: Vec<Id> = self
            .recent_posts(author)
            .await?
            .into_iter()
            .filter(|p| p.visibility != Visibility::Direct || p.mentions.contains(&user))
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
