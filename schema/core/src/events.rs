//! The events that travel on NATS, and their wire format.
//!
//! An event is a JSON envelope
//! `{"v": 1, "id": "...", "type": "post.created", "at_ms": ..., "data": {...}}`.
//! `v` is the format version. A reader accepts every version up to [`WIRE_VERSION`] and rejects
//! a newer one with [`DecodeError::NewerVersion`], so an old worker facing a new producer
//! stops with a clear message instead of misreading. Adding an optional field keeps `v`;
//! anything an old reader would misunderstand bumps it.

use serde::{Deserialize, Serialize};

use crate::ids::Id;
use crate::model::{Account, Notification, Post, Visibility};

/// The newest envelope version this build writes and reads.
pub const WIRE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    #[serde(rename = "account.created")]
    AccountCreated { account: Account },
    /// The account changed (its owner edited the profile, or an operator suspended it or
    /// changed its role): readers and indexes refresh it.
    #[serde(rename = "account.updated")]
    AccountUpdated { account: Account },
    /// An operator deleted the account; its posts were deleted first, each with its event.
    #[serde(rename = "account.deleted")]
    AccountDeleted { account_id: Id },
    #[serde(rename = "post.created")]
    PostCreated { post: Post },
    /// The author edited the post (`post` is it as it now is): readers, streams and indexes
    /// refresh it, and those who reblogged it are told.
    #[serde(rename = "post.updated")]
    PostUpdated { post: Post },
    #[serde(rename = "post.deleted")]
    PostDeleted {
        post_id: Id,
        author_id: Id,
        visibility: Visibility,
        reblog_of: Option<Id>,
        /// Accounts the post mentioned: a direct post reached them without their following.
        #[serde(default)]
        mentions: Vec<Id>,
    },
    #[serde(rename = "follow.created")]
    Followed { follower_id: Id, followee_id: Id },
    #[serde(rename = "follow.deleted")]
    Unfollowed { follower_id: Id, followee_id: Id },
    /// `follower_id` asked to follow the locked `followee_id`, who has not decided yet.
    #[serde(rename = "follow_request.created")]
    FollowRequested { follower_id: Id, followee_id: Id },
    /// `followee_id` accepted `follower_id`'s request: a follow now stands between them, as
    /// after `follow.created`, but nobody is notified of it.
    #[serde(rename = "follow_request.authorized")]
    FollowAuthorized { follower_id: Id, followee_id: Id },
    #[serde(rename = "block.created")]
    Blocked { account_id: Id, target_id: Id },
    #[serde(rename = "block.deleted")]
    Unblocked { account_id: Id, target_id: Id },
    #[serde(rename = "mute.created")]
    Muted {
        account_id: Id,
        target_id: Id,
        notifications: bool,
    },
    #[serde(rename = "mute.deleted")]
    Unmuted { account_id: Id, target_id: Id },
    #[serde(rename = "favourite.created")]
    Favourited {
        account_id: Id,
        post_id: Id,
        post_author_id: Id,
    },
    #[serde(rename = "favourite.deleted")]
    Unfavourited {
        account_id: Id,
        post_id: Id,
        post_author_id: Id,
    },
    /// `reblog` is the wrapper post (its `reblog_of` names the original).
    #[serde(rename = "reblog.created")]
    Reblogged { reblog: Post, post_author_id: Id },
    #[serde(rename = "reblog.deleted")]
    Unreblogged {
        account_id: Id,
        reblog_id: Id,
        post_id: Id,
    },
    /// An upload was stored and waits for a media worker to process it.
    #[serde(rename = "media.uploaded")]
    MediaUploaded { media_id: Id, account_id: Id },
    /// A notification was created (by the fan-out worker): the push worker sends it on.
    #[serde(rename = "notification.created")]
    NotificationCreated { notification: Notification },
}

impl Event {
    /// The wire name of this event's type, also used in NATS subjects.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::AccountCreated { .. } => "account.created",
            Event::AccountUpdated { .. } => "account.updated",
            Event::AccountDeleted { .. } => "account.deleted",
            Event::PostCreated { .. } => "post.created",
            Event::PostUpdated { .. } => "post.updated",
            Event::PostDeleted { .. } => "post.deleted",
            Event::Followed { .. } => "follow.created",
            Event::Unfollowed { .. } => "follow.deleted",
            Event::FollowRequested { .. } => "follow_request.created",
            Event::FollowAuthorized { .. } => "follow_request.authorized",
            Event::Blocked { .. } => "block.created",
            Event::Unblocked { .. } => "block.deleted",
            Event::Muted { .. } => "mute.created",
            Event::Unmuted { .. } => "mute.deleted",
            Event::Favourited { .. } => "favourite.created",
            Event::Unfavourited { .. } => "favourite.deleted",
            Event::Reblogged { .. } => "reblog.created",
            Event::Unreblogged { .. } => "reblog.deleted",
            Event::MediaUploaded { .. } => "media.uploaded",
            Event::NotificationCreated { .. } => "notification.created",
        }
    }
}

/// An event with its envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    /// Unique per occurrence; JetStream drops a re-published duplicate by it, so a retry
    /// from the outbox is applied once.
    pub id: String,
    /// When the event was produced, for lag metrics.
    pub at_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// A message for the api nodes serving live streams (WebSocket and SSE), on a core NATS
/// subject scoped to one user or one public stream: fire-and-forget, so a node that is not
/// subscribed never receives it. It names what happened; each node hydrates the status or
/// notification for its own connections, so a payload is never stale or someone else's view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A status entered the stream (a home timeline, the public timeline, a hashtag).
    Update { id: Id },
    /// A status the stream shows was edited (Mastodon's `status.update`).
    StatusUpdate { id: Id },
    /// A status was deleted.
    Delete { id: Id },
    /// A status entered one of the user's lists (`list`), by the fan-out pass that wrote
    /// the list's feed.
    ListUpdate { list: Id, id: Id },
    /// A status left one of the user's lists.
    ListDelete { list: Id, id: Id },
    /// One of the user's direct conversations (`id`) has a new newest post.
    Conversation { id: Id },
    /// A notification was created for the user.
    Notification { id: Id },
    /// A token was revoked: every node closes the streams opened with it.
    Revoked { token_hash: String },
    /// A post was deleted (or a reblog undone): every api node drops it from its cache, so
    /// a read through another node does not show it until the cache entry expires.
    Forget { post_id: Id },
    /// A block or mute between these accounts was made or undone: every node forgets their
    /// cached block and mute sets. Sent on the same subject as [`LiveEvent::Revoked`].
    Shunned { accounts: Vec<Id> },
    /// An operator changed the account (suspended, unsuspended, deleted it): every node
    /// forgets it and closes its streams if it may no longer use them. Sent on the same
    /// subject as [`LiveEvent::Revoked`].
    AccountChanged { account: Id },
}

impl LiveEvent {
    pub fn encode(&self) -> Vec<u8> {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<LiveEvent, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "event format version {found} is newer than this build understands (up to {WIRE_VERSION}); upgrade this worker"
    )]
    NewerVersion { found: u32 },
    #[error("event has no format version: {0}")]
    NoVersion(#[source] serde_json::Error),
    #[error("event of version {v} is malformed or of an unknown type: {source}")]
    Malformed {
        v: u32,
        #[source]
        source: serde_json::Error,
    },
}

impl Envelope {
    pub fn new(id: String, event: Event, at_ms: u64) -> Envelope {
        Envelope {
            v: WIRE_VERSION,
            id,
            at_ms,
            event,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u32,
        }
        let VersionOnly { v } = serde_json::from_slice(bytes).map_err(DecodeError::NoVersion)?;
        if v > WIRE_VERSION {
            return Err(DecodeError::NewerVersion { found: v });
        }
        serde_json::from_slice(bytes).map_err(|source| DecodeError::Malformed { v, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> Post {
        Post {
            id: Id(7 << 16),
            author_id: Id(3 << 16),
            text: "hello #rust @bob".into(),
            spoiler_text: String::new(),
            sensitive: false,
            visibility: Visibility::Private,
            in_reply_to_id: None,
            in_reply_to_account_id: None,
            reblog_of: None,
            mentions: vec![Id(9 << 16)],
            hashtags: vec!["rust".into()],
            language: Some("en".into()),
            created_at_ms: 7,
            edited_at_ms: None,
            poll_id: None,
        }
    }

    #[test]
    fn round_trips_every_kind_with_its_type_name() {
        let events = vec![
            Event::PostCreated { post: post() },
            Event::PostUpdated { post: post() },
            Event::AccountDeleted { account_id: Id(7) },
            Event::PostDeleted {
                post_id: Id(1),
                author_id: Id(2),
                visibility: Visibility::Direct,
                reblog_of: None,
                mentions: vec![Id(3)],
            },
            Event::Followed {
                follower_id: Id(1),
                followee_id: Id(2),
            },
            Event::Muted {
                account_id: Id(1),
                target_id: Id(2),
                notifications: true,
            },
            Event::Reblogged {
                reblog: post(),
                post_author_id: Id(4),
            },
            Event::MediaUploaded {
                media_id: Id(5),
                account_id: Id(6),
            },
        ];
        for event in events {
            let env = Envelope::new("e1".into(), event.clone(), 42);
            let bytes = env.encode();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json["type"], event.type_name());
            assert_eq!(json["v"], WIRE_VERSION);
            assert_eq!(Envelope::decode(&bytes).unwrap(), env);
        }
    }

    #[test]
    fn a_newer_version_is_rejected_by_name() {
        let bytes = br#"{"v":2,"at_ms":1,"type":"post.created","data":{"whatever":true}}"#;
        let err = Envelope::decode(bytes).unwrap_err();
        assert!(matches!(err, DecodeError::NewerVersion { found: 2 }));
        assert!(err.to_string().contains("upgrade"));
    }

    #[test]
    fn unknown_type_and_missing_version_are_errors() {
        let unknown = br#"{"v":1,"at_ms":1,"type":"post.exploded","data":{}}"#;
        assert!(matches!(
            Envelope::decode(unknown),
            Err(DecodeError::Malformed { v: 1, .. })
        ));
        let unversioned = br#"{"type":"post.created","data":{}}"#;
        assert!(matches!(
            Envelope::decode(unversioned),
            Err(DecodeError::NoVersion(_))
        ));
    }

    #[test]
    fn unknown_optional_fields_from_a_same_version_writer_are_ignored() {
        let bytes = br#"{"v":1,"id":"x","at_ms":1,"type":"follow.created","data":{"follower_id":1,"followee_id":2,"note":"x"},"trace":"abc"}"#;
        let env = Envelope::decode(bytes).unwrap();
        assert_eq!(
            env.event,
            Event::Followed {
                follower_id: Id(1),
                followee_id: Id(2)
            }
        );
    }
    #[test]
    fn live_events_round_trip() {
        for ev in [
            LiveEvent::Update { id: Id(5 << 16) },
            LiveEvent::Delete { id: Id(6 << 16) },
            LiveEvent::StatusUpdate { id: Id(6 << 16) },
            LiveEvent::Notification { id: Id(7 << 16) },
            LiveEvent::Revoked {
                token_hash: "ab".into(),
            },
            LiveEvent::Forget {
                post_id: Id(8 << 16),
            },
            LiveEvent::Shunned {
                accounts: vec![Id(1), Id(2)],
            },
            LiveEvent::AccountChanged { account: Id(3) },
            LiveEvent::ListUpdate {
                list: Id(4),
                id: Id(5 << 16),
            },
            LiveEvent::ListDelete {
                list: Id(4),
                id: Id(5 << 16),
            },
            LiveEvent::Conversation { id: Id(11) },
        ] {
            assert_eq!(LiveEvent::decode(&ev.encode()).unwrap(), ev);
        }
        let json: serde_json::Value =
            serde_json::from_slice(&LiveEvent::Update { id: Id(5 << 16) }.encode()).unwrap();
        assert_eq!(json["event"], "update");
    }
}
