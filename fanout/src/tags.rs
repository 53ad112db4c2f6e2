//! Followed hashtags in fan-out: a public original with hashtags reaches the home timelines
//! of its tags' followers, paged like an author's followers, except those who follow the
//! author (the home pass reached them) and those the post may not reach (blocks either
//! way, mutes, the reply rule). A follower of several of its tags is written once.

use std::collections::HashSet;

use starling_schema::Id;
use starling_schema::feeds::check_tag;
use starling_schema::model::{Post, Window};
use starling_schema::policy;
use starling_store::{MAX_BATCH, MAX_PAGE, Store, all_ids as all_pages};

use crate::{Audience, Fanout, FanoutError, Write};

impl<S: Store + Clone> Fanout<S> {
    pub(crate) async fn to_tag_followers(
        &self,
        post: &Post,
        write: Write,
        audience: &Audience,
    ) -> Result<(), FanoutError> {
        if !policy::listed_publicly(post) || post.hashtags.is_empty() {
            return Ok(());
        }
        let author = post.author_id;
        // Blocks go both ways here: strangers were never filtered by a follow.
        let mut shunning = audience.shunning.clone();
        shunning.extend(all_pages(|w| self.store.blocks_of(author, w)).await?);
        let audience = Audience {
            shunning,
            reply_to: audience.reply_to,
        };
        let mut reached: HashSet<Id> = HashSet::new();
        let window = Window::oldest(self.settings.follower_page.clamp(1, MAX_PAGE));
        for tag in post.hashtags.iter().filter(|t| check_tag(t).is_ok()) {
            let mut page = self.store.tag_followers(tag, window).await?;
            loop {
                let mut users = std::mem::take(&mut page.items);
                users.retain(|u| *u != author && !reached.contains(u));
                let users = self.strangers(author, users).await?;
                let users = self.admit(post, users, &audience, false).await?;
                reached.extend(users.iter().copied());
                self.write(write, &users).await?;
                match page.next {
                    Some(next) => page = self.store.tag_followers(tag, next).await?,
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Those of `users` who do not follow `author`.
    async fn strangers(&self, author: Id, users: Vec<Id>) -> Result<Vec<Id>, FanoutError> {
        let mut out = Vec::with_capacity(users.len());
        for chunk in users.chunks(MAX_BATCH) {
            let rels = self.store.relationships(author, chunk).await?;
            out.extend(rels.iter().filter(|r| !r.followed_by).map(|r| r.target));
        }
        Ok(out)
    }
}
