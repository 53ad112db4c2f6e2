//! Live subjects: core NATS (not JetStream) subjects that carry [`LiveEvent`]s to the api
//! nodes holding streaming connections.
//!
//! `{prefix}.live.user.{id}` carries one user's home and notification events, so a node
//! receives only the events of users connected to it (it subscribes while it holds one of
//! their streams); `{prefix}.live.public` and `{prefix}.live.tag.{tag}` carry the public
//! streams; `{prefix}.live.revoked` tells every node which token to disconnect. Delivery is
//! at most once: a stream is a live view, and a client that reconnects re-reads its
//! timeline. None of these subjects is captured by the event stream (`{prefix}.events.>`).

use futures::StreamExt;
use starling_schema::Id;
use starling_schema::events::LiveEvent;

use crate::{Bus, BusError};

/// Which live subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// One user's home timeline and notifications.
    User(Id),
    /// Every public post (this instance has only local posts: `public` and `public:local`
    /// are the same channel).
    Public,
    /// Public posts with this hashtag (lower-case, without `#`).
    Hashtag(String),
    /// What every api node must forget at once: revoked tokens, deleted posts.
    Revoked,
}

/// Most characters in a hashtag channel's tag, as in a post (`validate::HASHTAG_MAX_CHARS`).
pub const MAX_TAG_CHARS: usize = starling_schema::validate::HASHTAG_MAX_CHARS;

impl Channel {
    /// A hashtag channel, or `None` for a tag no post can carry: empty, longer than
    /// [`MAX_TAG_CHARS`], or holding anything but letters, digits and `_` of any script (as
    /// the post text parser finds them).
    pub fn hashtag(tag: &str) -> Option<Channel> {
        let tag = tag.trim_start_matches('#');
        // Bytes first: a megabyte of input is refused without walking it.
        let valid = !tag.is_empty()
            && tag.len() <= MAX_TAG_CHARS * 4
            && tag.chars().count() <= MAX_TAG_CHARS
            && tag.chars().all(|c| c.is_alphanumeric() || c == '_');
        valid.then(|| Channel::Hashtag(tag.to_lowercase()))
    }
}

/// A tag as one subject token: itself when it is plain ASCII (`rust`), otherwise `~` and the
/// hex of its UTF-8 bytes (`café` → `~636166c3a9`), so the subject holds only characters
/// every NATS server accepts and is at most a few hundred bytes.
fn tag_token(tag: &str) -> String {
    if tag
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return tag.to_owned();
    }
    let mut out = String::with_capacity(1 + tag.len() * 2);
    out.push('~');
    for b in tag.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A subscription to one live subject.
pub struct LiveSubscription {
    inner: async_nats::Subscriber,
}

impl LiveSubscription {
    /// The next event, skipping (and logging) messages this build cannot read. `None` once
    /// the subscription is closed.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        loop {
            let msg = self.inner.next().await?;
            match LiveEvent::decode(&msg.payload) {
                Ok(event) => return Some(event),
                Err(e) => {
                    tracing::warn!(subject = %msg.subject, error = %e, "skipping an unreadable live event")
                }
            }
        }
    }

    /// Stop receiving: the server is told at once, so it stops sending this node the subject.
    pub async fn close(mut self) {
        if let Err(e) = self.inner.unsubscribe().await {
            tracing::debug!(error = %e, "unsubscribing from a live subject failed (connection gone?)");
        }
    }
}

impl Bus {
    /// The subject of a live channel.
    pub fn live_subject(&self, channel: &Channel) -> String {
        let prefix = &self.settings.subject_prefix;
        match channel {
            Channel::User(id) => format!("{prefix}.live.user.{id}"),
            Channel::Public => format!("{prefix}.live.public"),
            Channel::Hashtag(tag) => format!("{prefix}.live.tag.{}", tag_token(tag)),
            Channel::Revoked => format!("{prefix}.live.revoked"),
        }
    }

    /// Send a live event. Fire-and-forget: it reaches the nodes subscribed right now, and
    /// fails only when the client cannot queue it (the connection is gone for good).
    pub async fn publish_live(&self, channel: &Channel, event: &LiveEvent) -> Result<(), BusError> {
        let subject = self.live_subject(channel);
        self.client
            .publish(subject.clone(), event.encode().into())
            .await
            .map_err(|source| BusError::Live {
                subject,
                source: Box::new(source),
            })
    }

    /// Start receiving a live channel.
    pub async fn subscribe_live(&self, channel: &Channel) -> Result<LiveSubscription, BusError> {
        let subject = self.live_subject(channel);
        let inner = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|source| BusError::Live {
                subject,
                source: Box::new(source),
            })?;
        Ok(LiveSubscription { inner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtag_channels_are_lower_case_subject_tokens() {
        assert_eq!(
            Channel::hashtag("#Rust"),
            Some(Channel::Hashtag("rust".into()))
        );
        assert_eq!(
            Channel::hashtag("café"),
            Some(Channel::Hashtag("café".into()))
        );
        assert_eq!(Channel::hashtag("a.b"), None);
        assert_eq!(Channel::hashtag("a b"), None);
        assert_eq!(Channel::hashtag(">"), None);
        assert_eq!(Channel::hashtag(""), None);
        assert_eq!(Channel::hashtag(&"a".repeat(MAX_TAG_CHARS + 1)), None);
        assert_eq!(Channel::hashtag(&"a".repeat(5_000)), None);
        assert!(Channel::hashtag(&"é".repeat(MAX_TAG_CHARS)).is_some());
    }

    #[test]
    fn tag_subject_tokens_are_plain_and_bounded() {
        assert_eq!(tag_token("rust_2"), "rust_2");
        assert_eq!(tag_token("café"), "~636166c3a9");
        let longest = tag_token(&"\u{10348}".repeat(MAX_TAG_CHARS));
        assert!(longest.len() <= 1 + MAX_TAG_CHARS * 8);
        assert!(
            longest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'~')
        );
    }
}
