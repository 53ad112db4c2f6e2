//! Direct conversations in the fan-out pass: a direct post enters the conversation view of
//! its author and of every account it mentions that may see it (the visibility policy:
//! not those who block or mute the author, nor those the author blocks), and leaves them
//! when it is deleted. Applied with the rest of the event, before its ack, so a worker
//! killed part-way leaves the event to be applied again (views ignore a post they have).
//! Recipients streaming `direct` hear of the change.

use starling_schema::Id;
use starling_schema::conversations::{conversation_id, is_conversational, participants};
use starling_schema::events::LiveEvent;
use starling_schema::model::Post;
use starling_schema::policy::{self, Relation, Surface};
use starling_store::Store;

use crate::{Fanout, FanoutError};

impl<S: Store + Clone> Fanout<S> {
    /// A new direct post into its participants' conversation views.
    pub(crate) async fn converse(&self, post: &Post) -> Result<(), FanoutError> {
        if !is_conversational(post) {
            return Ok(());
        }
        let everyone = participants(post.author_id, &post.mentions);
        let mut admitted = Vec::with_capacity(everyone.len());
        for account in everyone.iter().copied() {
            // Each recipient's relationship to the author, from their side (a direct post
            // has few participants).
            if account != post.author_id {
                let rel = self.store.relationships(account, &[post.author_id]).await?;
                let sees = rel.first().is_some_and(|r| {
                    policy::may_see(
                        post,
                        Some(account),
                        &Relation::from_relationship(r),
                        Surface::Feed,
                    )
                });
                if !sees {
                    continue;
                }
            }
            let unread = account != post.author_id;
            match self
                .store
                .add_to_conversation(account, &everyone, post.id, unread)
                .await
            {
                Ok(Some(_)) => admitted.push(account),
                Ok(None) => {}
                // The account is gone: nobody to keep it for.
                Err(e) if e.kind() == starling_schema::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Deleted meanwhile (its delete may have been applied first): take it out again.
        if self.store.posts_by_ids(&[post.id]).await?.is_empty() {
            return self
                .unconverse(post.id, post.author_id, &post.mentions)
                .await;
        }
        let online = self.online(&admitted).await;
        self.tell(
            &online,
            &LiveEvent::Conversation {
                id: conversation_id(&everyone),
            },
        )
        .await;
        Ok(())
    }

    /// A deleted direct post out of its participants' conversation views; those whose view
    /// now shows an earlier post hear of it.
    pub(crate) async fn unconverse(
        &self,
        post: Id,
        author: Id,
        mentions: &[Id],
    ) -> Result<(), FanoutError> {
        let everyone = participants(author, mentions);
        let id = conversation_id(&everyone);
        let mut changed = Vec::new();
        for account in &everyone {
            if self
                .store
                .remove_from_conversation(*account, id, post)
                .await?
                .is_some()
            {
                changed.push(*account);
            }
        }
        let online = self.online(&changed).await;
        self.tell(&online, &LiveEvent::Conversation { id }).await;
        Ok(())
    }
}
