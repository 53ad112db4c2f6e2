//! Integration tests of home timelines against real `redis-server` shards (started by the
//! test kit) and the embedded store.

mod rate;
mod rebuild;
mod shards;
mod writes;

use anyhow::{Context, Result};
use deadpool_redis::redis;
use starling_schema::Id;
use starling_schema::model::{ImportAccount, NewPost, Visibility};
use starling_schema::settings::{EmbeddedSettings, Limits, RedisSettings};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::RedisShards;
use starling_timeline::Timelines;

/// Three Redis shards and timelines over them.
pub struct Cluster {
    pub shards: RedisShards,
    pub timelines: Timelines,
}

pub fn settings(urls: Vec<String>, cap: usize) -> RedisSettings {
    RedisSettings {
        shards: urls,
        pool_size: 4,
        timeline_cap: cap,
        virtual_nodes: 160,
        rebuild_lock_ms: 5_000,
        timeout_ms: 2_000,
        ..RedisSettings::default()
    }
}

impl Cluster {
    pub async fn start(cap: usize) -> Result<Cluster> {
        let shards = RedisShards::start(3)?;
        let timelines = Timelines::connect(&settings(shards.urls(), cap)).await?;
        Ok(Cluster { shards, timelines })
    }

    /// A plain connection to shard `i`, to look at what is really stored.
    pub async fn raw(&self, i: usize) -> Result<redis::aio::MultiplexedConnection> {
        raw(&self.shards[i].url()).await
    }

    /// A plain connection to the shard that holds `user`.
    pub async fn raw_of(&self, user: Id) -> Result<redis::aio::MultiplexedConnection> {
        self.raw(self.timelines.shard_of(user)).await
    }
}

pub async fn raw(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Synthetic post ids `first..first+n`, oldest first.
pub fn posts(first: u64, n: u64) -> Vec<Id> {
    (first..first + n).map(Id).collect()
}

/// The first user id at or after `from` that lives on `shard`.
pub fn user_on(timelines: &Timelines, shard: usize, from: u64) -> Id {
    let mut user = Id(from);
    while timelines.shard_of(user) != shard {
        user = Id(user.0 + 1);
    }
    user
}

/// The embedded store in a fresh temporary directory.
pub struct World {
    pub store: EmbeddedStore,
    _dir: tempfile::TempDir,
}

impl World {
    pub fn open() -> Result<World> {
        let dir = tempfile::tempdir()?;
        let settings = EmbeddedSettings {
            path: dir.path().join("store"),
            fsync: false,
            cache_mib: 16,
        };
        let store = EmbeddedStore::open(&settings, 1, Limits::default())?;
        Ok(World { store, _dir: dir })
    }

    pub async fn accounts(&self, names: &[&str]) -> Result<Vec<Id>> {
        let created = self
            .store
            .import_accounts(
                names
                    .iter()
                    .map(|n| ImportAccount {
                        username: (*n).to_owned(),
                        display_name: None,
                        bot: false,
                    })
                    .collect(),
            )
            .await?;
        Ok(created.into_iter().map(|a| a.id).collect())
    }

    pub async fn post(&self, author: Id, text: &str) -> Result<Id> {
        self.post_with(NewPost {
            author_id: author,
            text: text.to_owned(),
            ..NewPost::default()
        })
        .await
    }

    pub async fn direct(&self, author: Id, to: Id, text: &str) -> Result<Id> {
        self.post_with(NewPost {
            author_id: author,
            text: text.to_owned(),
            visibility: Visibility::Direct,
            mentions: vec![to],
            ..NewPost::default()
        })
        .await
    }

    async fn post_with(&self, new: NewPost) -> Result<Id> {
        Ok(self.store.create_post(new, None).await?.value.id)
    }
}

pub use gated::GatedStore;

/// A store whose `posts_by_author` reads, then waits for a gate before answering, to hold a
/// rebuild between reading the store and writing the timeline. Everything else goes straight to the embedded store.
mod gated {
    use std::sync::Arc;

    use starling_schema::Id;
    use starling_schema::conversations::Conversation;
    use starling_schema::media::{MediaAttachment, NewMedia, ProfileImages};
    use starling_schema::model::{
        Account, AccountCounts, App, AuthCode, Created, ImportAccount, IssuedApp, IssuedToken,
        NewAccount, NewApp, NewNotification, NewPost, NewToken, Notification, NotificationKind,
        Page, Post, PostCounts, Relationship, Role, TokenInfo, ViewerFlags, Window,
    };
    use starling_store::embedded::EmbeddedStore;
    use starling_store::{Result, Store};
    use tokio::sync::{Notify, Semaphore};

    #[derive(Clone)]
    pub struct GatedStore {
        pub inner: EmbeddedStore,
        /// Opened (permits added) by the test.
        pub gate: Arc<Semaphore>,
        /// Notified when a reader reaches the gate.
        pub waiting: Arc<Notify>,
    }

    impl GatedStore {
        pub fn new(inner: EmbeddedStore) -> GatedStore {
            GatedStore {
                inner,
                gate: Arc::new(Semaphore::new(0)),
                waiting: Arc::new(Notify::new()),
            }
        }

        pub fn open_gate(&self) {
            self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    macro_rules! delegate {
        ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )*) => {
            impl Store for GatedStore {
                async fn posts_by_author(&self, author: Id, window: Window) -> Result<Page<Post>> {
                    let page = self.inner.posts_by_author(author, window).await;
                    self.waiting.notify_one();
                    let _permit = self.gate.acquire().await.ok();
                    page
                }
                $(
                    async fn $name(&self $(, $arg: $ty)*) -> $ret {
                        self.inner.$name($($arg),*).await
                    }
                )*
            }
        };
    }

    delegate! {
        fn create_account(&self, new: NewAccount) -> Result<Account>;
        fn import_accounts(&self, accounts: Vec<ImportAccount>) -> Result<Vec<Account>>;
        fn accounts_by_ids(&self, ids: &[Id]) -> Result<Vec<Account>>;
        fn accounts_by_usernames(&self, usernames: &[&str]) -> Result<Vec<Account>>;
        fn account_by_email(&self, email: &str) -> Result<Option<Account>>;
        fn account_counts(&self, ids: &[Id]) -> Result<Vec<AccountCounts>>;
        fn verify_password(&self, username: &str, password: &str) -> Result<Account>;
        fn update_profile(&self, id: Id, update: starling_schema::profile::ProfileUpdate) -> Result<Account>;
        fn create_app(&self, new: NewApp) -> Result<IssuedApp>;
        fn verify_app(&self, client_id: &str, client_secret: &str) -> Result<App>;
        fn issue_token(&self, new: NewToken) -> Result<IssuedToken>;
        fn token(&self, token: &str) -> Result<Option<TokenInfo>>;
        fn revoke_token(&self, token_hash: &str) -> Result<bool>;
        fn tokens_of(&self, account: Id) -> Result<Vec<TokenInfo>>;
        fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>>;
        fn app_by_id(&self, id: Id) -> Result<Option<App>>;
        fn create_auth_code(&self, code: AuthCode) -> Result<String>;
        fn take_auth_code(&self, code: &str) -> Result<Option<AuthCode>>;
        fn follow(&self, follower: Id, followee: Id) -> Result<bool>;
        fn unfollow(&self, follower: Id, followee: Id) -> Result<bool>;
        fn followers(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn following(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn request_follow(&self, follower: Id, followee: Id) -> Result<bool>;
        fn follow_requests(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn authorize_follow_request(&self, account: Id, requester: Id) -> Result<bool>;
        fn reject_follow_request(&self, account: Id, requester: Id) -> Result<bool>;
        fn mute_conversation(&self, account: Id, root: Id) -> Result<bool>;
        fn unmute_conversation(&self, account: Id, root: Id) -> Result<bool>;
        fn muted_conversations(&self, account: Id, roots: &[Id]) -> Result<Vec<bool>>;
        fn create_post(&self, new: NewPost, idempotency_key: Option<&str>) -> Result<Created<Post>>;
        fn posts_by_ids(&self, ids: &[Id]) -> Result<Vec<Post>>;
        fn delete_post(&self, id: Id) -> Result<Option<Post>>;
        fn post_counts(&self, ids: &[Id]) -> Result<Vec<PostCounts>>;
        fn favourite(&self, account: Id, post: Id) -> Result<bool>;
        fn unfavourite(&self, account: Id, post: Id) -> Result<bool>;
        fn favourited_by(&self, post: Id, window: Window) -> Result<Page<Id>>;
        fn reblog(&self, account: Id, post: Id) -> Result<Created<Post>>;
        fn unreblog(&self, account: Id, post: Id) -> Result<Option<Post>>;
        fn reblogged_by(&self, post: Id, window: Window) -> Result<Page<Id>>;
        fn viewer_flags(&self, viewer: Id, posts: &[Id]) -> Result<Vec<ViewerFlags>>;
        fn block(&self, account: Id, target: Id) -> Result<bool>;
        fn unblock(&self, account: Id, target: Id) -> Result<bool>;
        fn mute(&self, account: Id, target: Id, notifications: bool) -> Result<bool>;
        fn unmute(&self, account: Id, target: Id) -> Result<bool>;
        fn blocks_of(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn mutes_of(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn relationships(&self, account: Id, targets: &[Id]) -> Result<Vec<Relationship>>;
        fn notify(&self, new: NewNotification) -> Result<Option<Notification>>;
        fn notifications(&self, account: Id, window: Window, kinds: Option<&[NotificationKind]>) -> Result<Page<Notification>>;
        fn notification(&self, account: Id, id: Id) -> Result<Option<Notification>>;
        fn dismiss_notification(&self, account: Id, id: Id) -> Result<bool>;
        fn clear_notifications(&self, account: Id) -> Result<u64>;
        // conversations, public and tag timelines, who shuns whom
        fn replies_to(&self, post: Id, window: Window) -> Result<Page<Id>>;
        fn public_posts(&self, window: Window) -> Result<Page<Id>>;
        fn tagged_posts(&self, tag: &str, window: Window) -> Result<Page<Id>>;
        fn blocked_by(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn muted_by(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn outbox_push(&self, payload: Vec<u8>) -> Result<Id>;
        fn outbox_peek(&self, limit: usize) -> Result<Vec<(Id, Vec<u8>)>>;
        fn outbox_remove(&self, id: Id) -> Result<()>;
        fn scan_posts(&self, after: Option<Id>, limit: usize) -> Result<starling_store::Scan<Post>>;
        fn scan_accounts(&self, after: Option<Id>, limit: usize) -> Result<starling_store::Scan<Account>>;
        // admin
        fn moderate_account(&self, id: Id, suspended: Option<bool>, role: Option<Role>) -> Result<Account>;
        fn import_follows(&self, edges: Vec<(Id, Id)>) -> Result<u64>;
        fn delete_account(&self, id: Id) -> Result<bool>;
        fn set_account_counts(&self, id: Id, counts: AccountCounts) -> Result<()>;
        // start-up state
        fn markers(&self, account: Id) -> Result<Vec<starling_schema::startup::Marker>>;
        fn set_marker(&self, account: Id, timeline: starling_schema::startup::MarkerTimeline, last_read_id: Id) -> Result<starling_schema::startup::Marker>;
        fn filters_of(&self, account: Id) -> Result<Vec<starling_schema::startup::Filter>>;
        fn save_filter(&self, account: Id, draft: starling_schema::startup::FilterDraft) -> Result<starling_schema::startup::Filter>;
        fn delete_filter(&self, account: Id, id: Id) -> Result<bool>;
        fn create_announcement(&self, new: starling_schema::startup::NewAnnouncement) -> Result<starling_schema::startup::Announcement>;
        fn announcements(&self) -> Result<Vec<starling_schema::startup::Announcement>>;
        fn delete_announcement(&self, id: Id) -> Result<bool>;
        fn dismiss_announcement(&self, account: Id, id: Id) -> Result<bool>;
        fn dismissed_announcements(&self, account: Id) -> Result<Vec<Id>>;
        fn create_media(&self, new: NewMedia) -> Result<MediaAttachment>;
        fn media_by_ids(&self, ids: &[Id]) -> Result<Vec<MediaAttachment>>;
        fn update_media(&self, media: MediaAttachment) -> Result<()>;
        fn attach_media(&self, account: Id, post: Id, ids: &[Id]) -> Result<Vec<MediaAttachment>>;
        fn media_of_posts(&self, posts: &[Id]) -> Result<Vec<MediaAttachment>>;
        fn delete_media(&self, id: Id) -> Result<Option<MediaAttachment>>;
        fn scan_media(&self, after: Option<Id>, limit: usize) -> Result<starling_store::Scan<MediaAttachment>>;
        fn set_profile_images(&self, account: Id, images: ProfileImages) -> Result<ProfileImages>;
        fn profile_images(&self, accounts: &[Id]) -> Result<Vec<ProfileImages>>;
        fn save_push_subscription(&self, sub: starling_schema::push::PushSubscription) -> Result<()>;
        fn push_subscriptions_of(&self, account: Id) -> Result<Vec<starling_schema::push::PushSubscription>>;
        fn delete_push_subscription(&self, account: Id, token_hash: &str) -> Result<bool>;
        fn server_key(&self, name: &str, candidate: String) -> Result<String>;
        fn create_list(&self, owner: Id, draft: starling_schema::feeds::ListDraft) -> Result<starling_schema::feeds::List>;
        fn update_list(&self, owner: Id, id: Id, draft: starling_schema::feeds::ListDraft) -> Result<starling_schema::feeds::List>;
        fn delete_list(&self, owner: Id, id: Id) -> Result<bool>;
        fn lists_of(&self, owner: Id) -> Result<Vec<starling_schema::feeds::List>>;
        fn list_members(&self, list: Id, window: Window) -> Result<Page<Id>>;
        fn add_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()>;
        fn remove_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()>;
        fn lists_with_member(&self, member: Id, owners_after: Option<Id>, owners_through: Option<Id>) -> Result<Vec<starling_schema::feeds::ListRef>>;
        fn mark(&self, kind: starling_schema::feeds::MarkKind, account: Id, post: Id) -> Result<bool>;
        fn unmark(&self, kind: starling_schema::feeds::MarkKind, account: Id, post: Id) -> Result<bool>;
        fn marks(&self, kind: starling_schema::feeds::MarkKind, account: Id, window: Window) -> Result<Page<starling_schema::feeds::Mark>>;
        fn follow_tag(&self, account: Id, tag: &str) -> Result<bool>;
        fn unfollow_tag(&self, account: Id, tag: &str) -> Result<bool>;
        fn followed_tags(&self, account: Id) -> Result<Vec<String>>;
        fn tag_followers(&self, tag: &str, window: Window) -> Result<Page<Id>>;
        fn update_post(&self, author: Id, id: Id, edit: starling_schema::polls::PostEdit) -> Result<Post>;
        fn post_versions(&self, id: Id) -> Result<Vec<starling_schema::polls::PostVersion>>;
        fn polls_by_ids(&self, ids: &[Id]) -> Result<Vec<starling_schema::polls::Poll>>;
        fn poll_votes(&self, account: Id, polls: &[Id]) -> Result<Vec<Option<Vec<u32>>>>;
        fn vote(&self, account: Id, poll: Id, choices: &[u32]) -> Result<starling_schema::polls::Poll>;
        fn poll_voters(&self, poll: Id, window: Window) -> Result<Page<Id>>;
        fn due_polls(&self, until_ms: u64, limit: usize) -> Result<Vec<(Id, u64)>>;
        fn claim_poll_expiry(&self, poll: Id, lease_ms: u64) -> Result<bool>;
        fn finish_poll_expiry(&self, poll: Id) -> Result<()>;
        fn add_to_conversation(&self, account: Id, participants: &[Id], post: Id, unread: bool) -> Result<Option<Conversation>>;
        fn remove_from_conversation(&self, account: Id, conversation: Id, post: Id) -> Result<Option<Conversation>>;
        fn conversations(&self, account: Id, window: Window) -> Result<Page<Conversation>>;
        fn conversation(&self, account: Id, id: Id) -> Result<Option<Conversation>>;
        fn read_conversation(&self, account: Id, id: Id) -> Result<Option<Conversation>>;
        fn remove_conversation(&self, account: Id, id: Id) -> Result<bool>;
        fn dismiss_suggestion(&self, account: Id, target: Id) -> Result<bool>;
        fn dismissed_suggestions(&self, account: Id, window: Window) -> Result<Page<Id>>;
        fn ping(&self) -> Result<()>;
    }
}
