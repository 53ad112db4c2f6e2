//! Lists in the fan-out pass: which lists of a page of followers take a post, written in
//! the same per-shard calls as their homes, and what leaves lists when a follow ends.

use std::collections::HashSet;

use starling_schema::Id;
use starling_schema::feeds::{RepliesPolicy, list_admits};
use starling_schema::model::Post;
use starling_schema::policy;
use starling_store::Store;
use starling_timeline::Feed;

use crate::{Audience, Fanout, FanoutError, Write};

impl<S: Store + Clone> Fanout<S> {
    /// The feeds one page of `author`'s followers (`users`, whose ids lie in `owners`,
    /// `(after, through]`) holds for `write`: each admitted follower's home, unless
    /// `author` is in one of that follower's exclusive lists, and each of their lists that
    /// holds `author` and whose replies policy admits `post` (every such list, for a
    /// removal).
    pub(crate) async fn page_feeds(
        &self,
        author: Id,
        post: Option<&Post>,
        write: Write,
        users: Vec<Id>,
        audience: Option<&Audience>,
        (after, through): (Option<Id>, Option<Id>),
    ) -> Result<Vec<Feed>, FanoutError> {
        let admitted = async {
            match (post, audience) {
                (Some(post), Some(audience)) => self.admit(post, users, audience, true).await,
                _ => Ok(users),
            }
        };
        let (users, lists) = tokio::join!(
            admitted,
            self.store.lists_with_member(author, after, through)
        );
        let (users, lists) = (users?, lists?);
        if lists.is_empty() {
            return Ok(users.into_iter().map(Feed::Home).collect());
        }
        let inserting = !matches!(write, Write::Remove(_));
        let post = post.filter(|_| inserting);
        let reply_to = post
            .and_then(|p| p.in_reply_to_account_id)
            .filter(|to| *to != author);
        // Lists of this page that hold the account replied to (for `replies_policy: list`).
        let by_list = lists
            .iter()
            .any(|l| l.replies_policy == RepliesPolicy::List);
        let holding_target: HashSet<Id> = match reply_to {
            Some(to) if by_list => self
                .store
                .lists_with_member(to, after, through)
                .await?
                .into_iter()
                .map(|l| l.list_id)
                .collect(),
            _ => HashSet::new(),
        };
        let admitted: HashSet<Id> = users.iter().copied().collect();
        let mut away = HashSet::new();
        let mut feeds = Vec::with_capacity(users.len() + lists.len());
        for list in &lists {
            let takes = match post {
                None => true,
                // Admitted means the home rule holds for the owner (they follow whom it
                // answers, or it answers them).
                Some(p) => {
                    admitted.contains(&list.owner_id)
                        && policy::delivery(p).followers
                        && list_admits(
                            list.replies_policy,
                            p,
                            list.owner_id,
                            true,
                            holding_target.contains(&list.list_id),
                        )
                }
            };
            if takes {
                feeds.push(Feed::List {
                    owner: list.owner_id,
                    list: list.list_id,
                });
            }
            if inserting && list.exclusive {
                away.insert(list.owner_id);
            }
        }
        feeds.extend(
            users
                .into_iter()
                .filter(|u| !away.contains(u))
                .map(Feed::Home),
        );
        Ok(feeds)
    }

    /// `author`'s recent posts out of every list of `user`'s (a follow ended, and with it
    /// the author's place in those lists).
    pub(crate) async fn unmerge_lists(&self, user: Id, author: Id) -> Result<(), FanoutError> {
        let lists = self.store.lists_of(user).await?;
        if lists.is_empty() {
            return Ok(());
        }
        let posts: Vec<Id> = self
            .recent_posts(author)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        for list in lists {
            let feed = Feed::List {
                owner: user,
                list: list.id,
            };
            self.timelines.remove_many_from(feed, &posts).await?;
        }
        Ok(())
    }
}
