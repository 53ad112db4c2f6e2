//! Live events from fan-out: each timeline write is also told to the users it reached who
//! are streaming right now (presence, asked alongside the write), on their own subject; a
//! public post goes once to the public and hashtag streams. Live delivery is best effort:
//! a failure is logged and never fails or repeats the timeline write.

use std::collections::HashSet;

use starling_bus::Channel;
use starling_schema::Id;
use starling_schema::events::LiveEvent;
use starling_schema::model::Post;
use starling_store::Store;
use starling_timeline::Feed;

use crate::{Fanout, metrics};

impl<S: Store + Clone> Fanout<S> {
    /// Which of `users` are streaming now; none when live events are off or presence is
    /// unreadable.
    pub(crate) async fn online(&self, users: &[Id]) -> Vec<Id> {
        if self.live.is_none() {
            return Vec::new();
        }
        match self.timelines.online(users).await {
            Ok(online) => online,
            Err(e) => {
                tracing::warn!(error = %e, "presence unreadable; skipping live events for a page");
                Vec::new()
            }
        }
    }

    /// Send `event` to each user's live subject.
    pub(crate) async fn tell(&self, users: &[Id], event: &LiveEvent) {
        let Some(bus) = &self.live else { return };
        for user in users {
            if let Err(e) = bus.publish_live(&Channel::User(*user), event).await {
                tracing::warn!(error = %e, "dropping live events for the rest of a page");
                return;
            }
        }
        metrics::live_sent(users.len());
    }

    /// That `post` entered (or left) the feeds written, to those of their owners who are
    /// `online`: `update`/`delete` for homes, `list_update`/`list_delete` for lists.
    pub(crate) async fn tell_feeds(&self, feeds: &[Feed], online: &[Id], post: Id, entered: bool) {
        if online.is_empty() {
            return;
        }
        let online: HashSet<Id> = online.iter().copied().collect();
        let mut homes = Vec::new();
        for feed in feeds {
            match *feed {
                Feed::Home(user) if online.contains(&user) => homes.push(user),
                Feed::List { owner, list } if online.contains(&owner) => {
                    let event = if entered {
                        LiveEvent::ListUpdate { list, id: post }
                    } else {
                        LiveEvent::ListDelete { list, id: post }
                    };
                    self.tell(&[owner], &event).await;
                }
                Feed::Home(_) | Feed::List { .. } => {}
            }
        }
        let event = if entered {
            LiveEvent::Update { id: post }
        } else {
            LiveEvent::Delete { id: post }
        };
        self.tell(&homes, &event).await;
    }

    /// A new public original (not a reblog) to the public stream and its hashtags' streams.
    pub(crate) async fn broadcast(&self, post: &Post) {
        self.broadcast_public(post, LiveEvent::Update { id: post.id })
            .await;
    }

    /// An edited public original to the public stream and its hashtags' streams.
    pub(crate) async fn broadcast_update(&self, post: &Post) {
        self.broadcast_public(post, LiveEvent::StatusUpdate { id: post.id })
            .await;
    }

    /// `event` about `post` to the public stream and its hashtags' streams, if the post is
    /// listed publicly.
    async fn broadcast_public(&self, post: &Post, event: LiveEvent) {
        if !starling_schema::policy::listed_publicly(post) {
            return;
        }
        let mut channels = vec![Channel::Public];
        channels.extend(post.hashtags.iter().filter_map(|t| Channel::hashtag(t)));
        self.broadcast_to(&channels, &event).await;
    }

    /// A deleted public post out of the public stream.
    pub(crate) async fn broadcast_delete(&self, post: Id) {
        self.broadcast_to(&[Channel::Public], &LiveEvent::Delete { id: post })
            .await;
    }

    async fn broadcast_to(&self, channels: &[Channel], event: &LiveEvent) {
        let Some(bus) = &self.live else { return };
        for channel in channels {
            if let Err(e) = bus.publish_live(channel, event).await {
                tracing::warn!(error = %e, ?channel, "dropping a public live event");
            }
        }
    }
}
