//! The embedded backend: an LSM store (fjall) inside the process, under one data directory.
//!
//! Layout mirrors the CQL schema: one keyspace per table, keys are the partition key
//! followed by the clustering key, both as big-endian ids so byte order is id order. A
//! partition is a key prefix, and a page is a range scan over it (`scan`), forwards or
//! backwards, so paging the followers of a huge account reads only the page.
//!
//! Every write runs in one serializable transaction (fjall's single-writer transactions)
//! on a blocking thread: an operation touches its rows and counters atomically, so a
//! follow and its counts can never disagree, and concurrent follow/unfollow of a pair
//! settle on a consistent state. A committed transaction has reached the OS (each commit
//! flushes fjall's journal buffer), so it survives `kill -9` of the process; with
//! `store.embedded.fsync` it is also `fdatasync`ed and survives a power cut.
//!
//! Values are JSON: readable with any tool, and cheap next to the I/O.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::Arc;

use fjall::{
    KeyspaceCreateOptions, PersistMode, Readable, SingleWriterTxDatabase, SingleWriterTxKeyspace,
    SingleWriterWriteTx,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use starling_schema::Id;
use starling_schema::conversations::{Conversation, ConversationState};
use starling_schema::feeds::{List, ListDraft, ListRef, Mark, MarkKind};
use starling_schema::ids::{IdGenerator, Mint, now_ms};
use starling_schema::media::{MediaAttachment, NewMedia, ProfileImages};
use starling_schema::model::{
    Account, AccountCounts, App, AuthCode, Created, ImportAccount, IssuedApp, IssuedToken,
    NewAccount, NewApp, NewNotification, NewPost, NewToken, Notification, NotificationKind, Order,
    Page, Post, PostCounts, Relationship, Role, TokenInfo, ViewerFlags, Window,
};
use starling_schema::policy;
use starling_schema::polls::{Poll, PostEdit, PostVersion};
use starling_schema::profile::ProfileUpdate;
use starling_schema::push::PushSubscription;
use starling_schema::settings::{EmbeddedSettings, Limits};
use starling_schema::validate;

use crate::secrets;
use starling_schema::startup::{
    Announcement, Filter, FilterDraft, Marker, MarkerTimeline, NewAnnouncement,
};

mod conversations;
mod feeds;
mod media;
mod polls;
mod push;
mod social;
mod startup;
use crate::{IDEMPOTENCY_TTL_MS, Result, SCHEMA_VERSION, Scan, Store, StoreError, check};
pub(crate) use startup::build_filter;

/// The tables, one fjall keyspace each.
struct Tables {
    /// `schema_version`, `id_lease/{node}`.
    meta: SingleWriterTxKeyspace,
    /// id → Account
    accounts: SingleWriterTxKeyspace,
    /// username_key → id
    usernames: SingleWriterTxKeyspace,
    /// id → Credentials
    credentials: SingleWriterTxKeyspace,
    /// id → AccountCounts
    account_counts: SingleWriterTxKeyspace,
    /// client_id → StoredApp
    apps: SingleWriterTxKeyspace,
    /// token digest → TokenInfo
    tokens: SingleWriterTxKeyspace,
    /// account ++ token digest → ()
    tokens_by_account: SingleWriterTxKeyspace,
    /// follower ++ followee → created_at
    following: SingleWriterTxKeyspace,
    /// followee ++ follower → created_at
    followers: SingleWriterTxKeyspace,
    /// id → StoredPost (with tombstone)
    posts: SingleWriterTxKeyspace,
    /// author ++ post id → ()
    posts_by_author: SingleWriterTxKeyspace,
    /// id → PostCounts
    post_counts: SingleWriterTxKeyspace,
    /// author ++ key → IdempotencyRecord
    idempotency: SingleWriterTxKeyspace,
    /// post ++ account → created_at
    favourites: SingleWriterTxKeyspace,
    /// post ++ account → reblog wrapper id
    reblogs: SingleWriterTxKeyspace,
    /// account ++ target → created_at
    blocks: SingleWriterTxKeyspace,
    /// account ++ target → MuteRecord
    mutes: SingleWriterTxKeyspace,
    /// account ++ notification id → Notification
    notifications: SingleWriterTxKeyspace,
    /// account ++ kind ++ from ++ post (0 if none) → notification id: one per cause
    notification_keys: SingleWriterTxKeyspace,
    /// parent post ++ reply id → ()
    replies: SingleWriterTxKeyspace,
    /// 0 ++ post id → (): live public originals
    public_posts: SingleWriterTxKeyspace,
    /// tag ++ 0x00 ++ post id → (): live public originals by hashtag
    tagged_posts: SingleWriterTxKeyspace,
    /// target ++ blocker → ()
    blocked_by: SingleWriterTxKeyspace,
    /// target ++ muter → ()
    muted_by: SingleWriterTxKeyspace,
    /// node ++ outbox id → event payload
    outbox: SingleWriterTxKeyspace,
    /// app id → client_id (schema version 3)
    apps_by_id: SingleWriterTxKeyspace,
    /// code digest → AuthCode (schema version 3)
    auth_codes: SingleWriterTxKeyspace,
    /// email key (`validate::email_key`) → account id (schema version 5)
    accounts_by_email: SingleWriterTxKeyspace,
    // start-up state (see `startup.rs`)
    markers: SingleWriterTxKeyspace,
    filters: SingleWriterTxKeyspace,
    announcements: SingleWriterTxKeyspace,
    announcement_dismissals: SingleWriterTxKeyspace,
    // web push (see `push.rs`)
    push_subscriptions: SingleWriterTxKeyspace,
    server_keys: SingleWriterTxKeyspace,
    // follow requests (schema version 6, see `social.rs`)
    follow_requests: SingleWriterTxKeyspace,
    follow_requests_sent: SingleWriterTxKeyspace,
    conversation_mutes: SingleWriterTxKeyspace,
    // media attachments (see `media.rs`, schema version 7)
    media: SingleWriterTxKeyspace,
    media_by_post: SingleWriterTxKeyspace,
    profile_images: SingleWriterTxKeyspace,
    // lists and marks (schema version 9, see `feeds.rs`)
    lists: SingleWriterTxKeyspace,
    list_members: SingleWriterTxKeyspace,
    member_lists: SingleWriterTxKeyspace,
    marks: SingleWriterTxKeyspace,
    mark_keys: SingleWriterTxKeyspace,
    /// account ++ tag → ()
    tag_follows: SingleWriterTxKeyspace,
    /// tag ++ 0x00 ++ account → ()
    tag_followers: SingleWriterTxKeyspace,
    // edits and polls (schema version 10, see `polls.rs`)
    post_versions: SingleWriterTxKeyspace,
    polls: SingleWriterTxKeyspace,
    poll_votes: SingleWriterTxKeyspace,
    polls_due: SingleWriterTxKeyspace,
    poll_claims: SingleWriterTxKeyspace,
    // direct conversations (schema version 11, see `conversations.rs`)
    conversations: SingleWriterTxKeyspace,
    conversations_by_last: SingleWriterTxKeyspace,
    conversation_posts: SingleWriterTxKeyspace,
    /// account ++ dismissed account → when (schema version 12)
    suggestion_dismissals: SingleWriterTxKeyspace,
}

#[derive(Serialize, Deserialize)]
struct Credentials {
    password_hash: String,
    email: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredApp {
    app: App,
    secret_digest: String,
}

#[derive(Serialize, Deserialize)]
struct StoredPost {
    post: Post,
    deleted_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct IdempotencyRecord {
    post_id: Id,
    expires_at_ms: u64,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct MuteRecord {
    notifications: bool,
}

struct Inner {
    db: SingleWriterTxDatabase,
    t: Tables,
    ids: IdGenerator,
    lease_key: Vec<u8>,
    limits: Limits,
    fsync: bool,
}

/// The embedded store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

type Tx<'a> = SingleWriterWriteTx<'a>;

const EMAIL_TAKEN: &str = "email is already taken";

fn k1(a: Id) -> [u8; 8] {
    a.to_be_bytes()
}

fn k2(a: Id, b: Id) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a.to_be_bytes());
    key[8..].copy_from_slice(&b.to_be_bytes());
    key
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::backend("encoding a record", e))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::backend("decoding a stored record", e))
}

trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> Ctx<T> for fjall::Result<T> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|e| StoreError::backend(context, e))
    }
}

/// The inclusive key range of the partition whose keys start with `prefix` that a window
/// covers, or `None` if it is empty.
fn window_range(prefix: &[u8], w: &Window) -> Option<RangeInclusive<Vec<u8>>> {
    let lo = match w.above {
        Some(a) => a.0.checked_add(1)?,
        None => 0,
    };
    let hi = match w.below {
        Some(b) => b.0.checked_sub(1)?,
        None => u64::MAX,
    };
    let key = |id: u64| [prefix, &id.to_be_bytes()].concat();
    (lo <= hi).then(|| key(lo)..=key(hi))
}

/// The partition prefix of hashtag `tag` in `tagged_posts` (tags never hold a NUL).
fn tag_prefix(tag: &str) -> Vec<u8> {
    [tag.as_bytes(), &[0]].concat()
}

/// Whether a post belongs on the public and tag timelines (the policy's rule).
fn listed(post: &Post) -> bool {
    policy::listed_publicly(post)
}

fn notification_key(n: &NewNotification) -> Vec<u8> {
    let kind: u8 = match n.kind {
        NotificationKind::Mention => 1,
        NotificationKind::Follow => 2,
        NotificationKind::Favourite => 3,
        NotificationKind::Reblog => 4,
        NotificationKind::FollowRequest => 5,
        NotificationKind::Poll => 6,
        NotificationKind::Update => 7,
    };
    let mut key = Vec::with_capacity(25);
    key.extend_from_slice(&k1(n.account_id));
    key.push(kind);
    key.extend_from_slice(&k1(n.from_account_id));
    key.extend_from_slice(&k1(n.post_id.unwrap_or(Id::MIN)));
    key
}

/// Read one page of partition `p` of `table` through `window`. `keep` turns a row
/// (clustering id, value) into an item or skips it; the page holds `window.limit` kept
/// items, and `next` is set only when another kept item exists.
fn scan<T>(
    reader: &impl Readable,
    table: &SingleWriterTxKeyspace,
    p: Id,
    window: &Window,
    keep: impl FnMut(Id, &[u8]) -> Result<Option<T>>,
) -> Result<Page<T>> {
    scan_prefixed(reader, table, &k1(p), window, keep)
}

/// [`scan`] over the partition whose keys start with `prefix`.
fn scan_prefixed<T>(
    reader: &impl Readable,
    table: &SingleWriterTxKeyspace,
    prefix: &[u8],
    window: &Window,
    mut keep: impl FnMut(Id, &[u8]) -> Result<Option<T>>,
) -> Result<Page<T>> {
    check::window(window)?;
    let Some(range) = window_range(prefix, window) else {
        return Ok(Page {
            items: Vec::new(),
            next: None,
        });
    };
    let iter = reader.range(table, range);
    let rows: Box<dyn Iterator<Item = fjall::Guard>> = match window.order {
        Order::NewestFirst => Box::new(iter.rev()),
        Order::OldestFirst => Box::new(iter),
    };
    let mut items = Vec::with_capacity(window.limit.min(1024));
    let mut last = None;
    let mut more = false;
    for row in rows {
        let (key, value) = row.into_inner().ctx("scanning a partition")?;
        let id = Id::from_be_slice(key.get(prefix.len()..).unwrap_or_default())
            .ok_or_else(|| StoreError::backend("scanning a partition", "short key"))?;
        if let Some(item) = keep(id, &value)? {
            if items.len() == window.limit {
                more = true;
                break;
            }
            items.push(item);
            last = Some(id);
        }
    }
    let next = match (more, last) {
        (true, Some(last)) => Some(window.after(last)),
        _ => None,
    };
    Ok(Page { items, next })
}

/// One page of a whole id-keyed table after `after`, in id order: `limit` rows looked at,
/// those `keep` returns kept, and the last key looked at as the next cursor.
fn scan_table<T>(
    reader: &impl Readable,
    table: &SingleWriterTxKeyspace,
    after: Option<Id>,
    limit: usize,
    keep: impl Fn(&[u8]) -> Result<Option<T>>,
) -> Result<Scan<T>> {
    let lo = match after {
        Some(a) => match a.0.checked_add(1) {
            Some(lo) => lo,
            None => {
                return Ok(Scan {
                    items: Vec::new(),
                    next: None,
                });
            }
        },
        None => 0,
    };
    let mut items = Vec::with_capacity(limit.min(1024));
    let mut seen = 0;
    for row in reader.range(table, k1(Id(lo))..) {
        let (key, value) = row.into_inner().ctx("scanning a table")?;
        let id = Id::from_be_slice(&key)
            .ok_or_else(|| StoreError::backend("scanning a table", "short key"))?;
        if let Some(item) = keep(&value)? {
            items.push(item);
        }
        seen += 1;
        if seen == limit {
            return Ok(Scan {
                items,
                next: Some(id),
            });
        }
    }
    Ok(Scan { items, next: None })
}

impl EmbeddedStore {
    /// Open (or create) the store under `settings.path`.
    pub fn open(settings: &EmbeddedSettings, node_id: u32, limits: Limits) -> Result<Self> {
        std::fs::create_dir_all(&settings.path)
            .map_err(|e| StoreError::backend("creating the data directory", e))?;
        let db = SingleWriterTxDatabase::builder(&settings.path)
            .cache_size(settings.cache_mib.saturating_mul(1024 * 1024))
            .open()
            .ctx("opening the embedded store")?;
        let open = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        let t = Tables {
            meta: open("meta").ctx("opening table meta")?,
            accounts: open("accounts").ctx("opening table accounts")?,
            usernames: open("usernames").ctx("opening table usernames")?,
            credentials: open("credentials").ctx("opening table credentials")?,
            account_counts: open("account_counts").ctx("opening table account_counts")?,
            apps: open("apps").ctx("opening table apps")?,
            tokens: open("tokens").ctx("opening table tokens")?,
            tokens_by_account: open("tokens_by_account").ctx("opening table tokens_by_account")?,
            following: open("following").ctx("opening table following")?,
            followers: open("followers").ctx("opening table followers")?,
            posts: open("posts").ctx("opening table posts")?,
            posts_by_author: open("posts_by_author").ctx("opening table posts_by_author")?,
            post_counts: open("post_counts").ctx("opening table post_counts")?,
            idempotency: open("idempotency").ctx("opening table idempotency")?,
            favourites: open("favourites").ctx("opening table favourites")?,
            reblogs: open("reblogs").ctx("opening table reblogs")?,
            blocks: open("blocks").ctx("opening table blocks")?,
            mutes: open("mutes").ctx("opening table mutes")?,
            notifications: open("notifications").ctx("opening table notifications")?,
            notification_keys: open("notification_keys").ctx("opening table notification_keys")?,
            replies: open("replies").ctx("opening table replies")?,
            public_posts: open("public_posts").ctx("opening table public_posts")?,
            tagged_posts: open("tagged_posts").ctx("opening table tagged_posts")?,
            blocked_by: open("blocked_by").ctx("opening table blocked_by")?,
            muted_by: open("muted_by").ctx("opening table muted_by")?,
            outbox: open("outbox").ctx("opening table outbox")?,
            apps_by_id: open("apps_by_id").ctx("opening table apps_by_id")?,
            auth_codes: open("auth_codes").ctx("opening table auth_codes")?,
            accounts_by_email: open("accounts_by_email").ctx("opening table accounts_by_email")?,
            markers: open("markers").ctx("opening table markers")?,
            filters: open("filters").ctx("opening table filters")?,
            announcements: open("announcements").ctx("opening table announcements")?,
            announcement_dismissals: open("announcement_dismissals")
                .ctx("opening table announcement_dismissals")?,
            push_subscriptions: open("push_subscriptions")
                .ctx("opening table push_subscriptions")?,
            server_keys: open("server_keys").ctx("opening table server_keys")?,
            follow_requests: open("follow_requests").ctx("opening table follow_requests")?,
            follow_requests_sent: open("follow_requests_sent")
                .ctx("opening table follow_requests_sent")?,
            conversation_mutes: open("conversation_mutes")
                .ctx("opening table conversation_mutes")?,
            media: open("media").ctx("opening table media")?,
            media_by_post: open("media_by_post").ctx("opening table media_by_post")?,
            profile_images: open("profile_images").ctx("opening table profile_images")?,
            lists: open("lists").ctx("opening table lists")?,
            list_members: open("list_members").ctx("opening table list_members")?,
            member_lists: open("member_lists").ctx("opening table member_lists")?,
            marks: open("marks").ctx("opening table marks")?,
            mark_keys: open("mark_keys").ctx("opening table mark_keys")?,
            tag_follows: open("tag_follows").ctx("opening table tag_follows")?,
            tag_followers: open("tag_followers").ctx("opening table tag_followers")?,
            post_versions: open("post_versions").ctx("opening table post_versions")?,
            polls: open("polls").ctx("opening table polls")?,
            poll_votes: open("poll_votes").ctx("opening table poll_votes")?,
            polls_due: open("polls_due").ctx("opening table polls_due")?,
            poll_claims: open("poll_claims").ctx("opening table poll_claims")?,
            conversations: open("conversations").ctx("opening table conversations")?,
            conversations_by_last: open("conversations_by_last")
                .ctx("opening table conversations_by_last")?,
            conversation_posts: open("conversation_posts")
                .ctx("opening table conversation_posts")?,
            suggestion_dismissals: open("suggestion_dismissals")
                .ctx("opening table suggestion_dismissals")?,
        };
        let lease_key = format!("id_lease/{node_id}").into_bytes();
        let lease = match t.meta.get(&lease_key).ctx("reading the id lease")? {
            Some(v) => Id::from_be_slice(&v).map_or(0, |id| id.0),
            None => 0,
        };
        let ids = IdGenerator::new(node_id, lease).map_err(|e| {
            StoreError::Invalid(starling_schema::Invalid::new("node_id", e.to_string()))
        })?;
        let store = EmbeddedStore {
            inner: Arc::new(Inner {
                db,
                t,
                ids,
                lease_key,
                limits,
                fsync: settings.fsync,
            }),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Record the layout version. Tables are created on open, so this only refuses data
    /// written by a newer Starling.
    pub fn migrate(&self) -> Result<u32> {
        let meta = &self.inner.t.meta;
        if let Some(v) = meta
            .get("schema_version")
            .ctx("reading the schema version")?
        {
            let found = v
                .as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .unwrap_or(u32::MAX);
            if found > SCHEMA_VERSION {
                return Err(StoreError::backend(
                    "checking the schema version",
                    format!("data is at version {found}, this build knows up to {SCHEMA_VERSION}"),
                ));
            }
        }
        self.backfill_apps_by_id()?;
        self.backfill_accounts_by_email()?;
        meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes())
            .ctx("writing the schema version")?;
        Ok(SCHEMA_VERSION)
    }

    /// Version 3 looks apps up by id too: index the apps registered before it (few rows,
    /// and re-indexing an app writes the same value again).
    fn backfill_apps_by_id(&self) -> Result<()> {
        let t = &self.inner.t;
        let snap = self.snapshot();
        let mut tx = self.inner.db.write_tx();
        for row in snap.iter(&t.apps) {
            let (_, value) = row.into_inner().ctx("indexing apps by id")?;
            let stored: StoredApp = decode(&value)?;
            if !exists(&snap, &t.apps_by_id, k1(stored.app.id))? {
                tx.insert(
                    &t.apps_by_id,
                    k1(stored.app.id),
                    stored.app.client_id.as_bytes(),
                );
            }
        }
        tx.commit().ctx("indexing apps by id")?;
        Ok(())
    }

    /// Version 5 looks accounts up by email: index the addresses stored before it. Skipped
    /// once the data is at version 5, since every account written since indexes its own
    /// address. Should two older accounts share an address, the older keeps it.
    fn backfill_accounts_by_email(&self) -> Result<()> {
        let t = &self.inner.t;
        let at = t
            .meta
            .get("schema_version")
            .ctx("reading the schema version")?;
        // Version 5 itself, not the current one: data written at 5 or later is indexed.
        const EMAIL_INDEX_VERSION: u32 = 5;
        if at.is_some_and(|v| v.as_ref() >= EMAIL_INDEX_VERSION.to_be_bytes().as_slice()) {
            return Ok(());
        }
        let snap = self.snapshot();
        let mut tx = self.inner.db.write_tx();
        let mut claimed = HashSet::new();
        for row in snap.iter(&t.credentials) {
            let (id, value) = row.into_inner().ctx("indexing accounts by email")?;
            let credentials: Credentials = decode(&value)?;
            let Some(key) = credentials.email.as_deref().and_then(validate::email_key) else {
                continue;
            };
            if !exists(&snap, &t.accounts_by_email, key.as_str())? && claimed.insert(key.clone()) {
                tx.insert(&t.accounts_by_email, key.as_str(), id.as_ref());
            }
        }
        tx.commit().ctx("indexing accounts by email")?;
        Ok(())
    }

    /// Run `f` in one write transaction on a blocking thread, and commit if it succeeds.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Tx<'_>) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A transaction commit only reaches fjall's journal buffer unless asked to go
            // further; `Buffer` hands it to the OS, which is what survives `kill -9`.
            let mode = if inner.fsync {
                PersistMode::SyncData
            } else {
                PersistMode::Buffer
            };
            let mut tx = inner.db.write_tx().durability(Some(mode));
            let out = f(&inner, &mut tx)?;
            tx.commit().ctx("committing a write")?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::backend("running a write", e))?
    }

    fn snapshot(&self) -> fjall::Snapshot {
        self.inner.db.read_tx()
    }
}

impl Inner {
    /// This node's partition in per-node tables.
    fn node(&self) -> Id {
        Id(u64::from(self.ids.node()))
    }

    /// Mint an id, persisting a new lease first when the old one runs out.
    fn mint(&self) -> Result<Id> {
        loop {
            match self.ids.next() {
                Mint::Id(id) => {
                    if let Some(until) = self.ids.lease_wanted(now_ms()) {
                        self.persist_lease(until)?;
                    }
                    return Ok(id);
                }
                Mint::NeedLease(until) => self.persist_lease(until)?,
            }
        }
    }

    fn persist_lease(&self, until: u64) -> Result<()> {
        // Written outside the caller's transaction (it must stick even if that one rolls
        // back) straight to the keyspace; the journal reaches the OS before we go on.
        self.t
            .meta
            .inner()
            .insert(self.lease_key.as_slice(), until.to_be_bytes())
            .ctx("persisting the id lease")?;
        if self.fsync {
            self.db
                .persist(PersistMode::SyncData)
                .ctx("syncing the id lease")?;
        }
        self.ids.extend_lease(until);
        Ok(())
    }
}

// ---- row helpers, usable inside a write transaction or on a snapshot ------------------

fn get<T: DeserializeOwned>(
    r: &impl Readable,
    table: &SingleWriterTxKeyspace,
    key: impl AsRef<[u8]>,
) -> Result<Option<T>> {
    match r.get(table, key).ctx("reading a row")? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

fn exists(
    r: &impl Readable,
    table: &SingleWriterTxKeyspace,
    key: impl AsRef<[u8]>,
) -> Result<bool> {
    r.contains_key(table, key).ctx("reading a row")
}

fn put<T: Serialize>(
    tx: &mut Tx<'_>,
    table: &SingleWriterTxKeyspace,
    key: impl AsRef<[u8]>,
    value: &T,
) -> Result<()> {
    tx.insert(table, key.as_ref(), encode(value)?.as_slice());
    Ok(())
}

fn live_post(r: &impl Readable, t: &Tables, id: Id) -> Result<Option<Post>> {
    Ok(get::<StoredPost>(r, &t.posts, k1(id))?
        .filter(|s| s.deleted_at_ms.is_none())
        .map(|s| s.post))
}

fn require_account(r: &impl Readable, t: &Tables, id: Id) -> Result<()> {
    if exists(r, &t.accounts, k1(id))? {
        Ok(())
    } else {
        Err(StoreError::NotFound("account"))
    }
}

fn bump_account(
    tx: &mut Tx<'_>,
    t: &Tables,
    id: Id,
    f: impl FnOnce(&mut AccountCounts),
) -> Result<()> {
    let mut counts: AccountCounts = get(tx, &t.account_counts, k1(id))?.unwrap_or_default();
    f(&mut counts);
    put(tx, &t.account_counts, k1(id), &counts)
}

fn bump_post(tx: &mut Tx<'_>, t: &Tables, id: Id, f: impl FnOnce(&mut PostCounts)) -> Result<()> {
    let mut counts: PostCounts = get(tx, &t.post_counts, k1(id))?.unwrap_or_default();
    f(&mut counts);
    put(tx, &t.post_counts, k1(id), &counts)
}

fn dec(n: &mut u64) {
    *n = n.saturating_sub(1);
}

/// Both accounts exist and no block stands between them, or why `follower` may not follow
/// (or ask to follow) `followee`.
fn may_follow(tx: &Tx<'_>, t: &Tables, follower: Id, followee: Id) -> Result<()> {
    require_account(tx, t, follower)?;
    require_account(tx, t, followee)?;
    if exists(tx, &t.blocks, k2(follower, followee))?
        || exists(tx, &t.blocks, k2(followee, follower))?
    {
        return Err(StoreError::Forbidden(
            "a block stands between these accounts",
        ));
    }
    Ok(())
}

/// Add the follow edge both ways with its counts; false if it stood already.
fn add_follow(tx: &mut Tx<'_>, t: &Tables, follower: Id, followee: Id) -> Result<bool> {
    if exists(tx, &t.following, k2(follower, followee))? {
        return Ok(false);
    }
    let at = now_ms().to_be_bytes();
    tx.insert(&t.following, k2(follower, followee), at);
    tx.insert(&t.followers, k2(followee, follower), at);
    bump_account(tx, t, follower, |c| c.following += 1)?;
    bump_account(tx, t, followee, |c| c.followers += 1)?;
    Ok(true)
}

/// The second ids of partition `p` of `table` (keys `p ++ id`), whole.
fn partition_ids(tx: &Tx<'_>, table: &SingleWriterTxKeyspace, p: Id) -> Result<Vec<Id>> {
    tx.prefix(table, k1(p))
        .map(|row| {
            let key = row.key().ctx("listing an account's rows")?;
            Id::from_be_slice(key.get(8..16).unwrap_or_default())
                .ok_or_else(|| StoreError::backend("listing an account's rows", "short key"))
        })
        .collect()
}

fn remove_follow(tx: &mut Tx<'_>, t: &Tables, follower: Id, followee: Id) -> Result<bool> {
    if !exists(tx, &t.following, k2(follower, followee))? {
        return Ok(false);
    }
    tx.remove(&t.following, k2(follower, followee));
    tx.remove(&t.followers, k2(followee, follower));
    feeds::leave_lists(tx, t, follower, followee)?;
    bump_account(tx, t, follower, |c| dec(&mut c.following))?;
    bump_account(tx, t, followee, |c| dec(&mut c.followers))?;
    Ok(true)
}

/// Tombstone a live post and undo what it counted. Returns it if it was live.
fn tombstone(tx: &mut Tx<'_>, t: &Tables, id: Id) -> Result<Option<Post>> {
    let Some(mut stored) = get::<StoredPost>(tx, &t.posts, k1(id))? else {
        return Ok(None);
    };
    if stored.deleted_at_ms.is_some() {
        return Ok(None);
    }
    stored.deleted_at_ms = Some(now_ms());
    put(tx, &t.posts, k1(id), &stored)?;
    let post = stored.post;
    tx.remove(&t.posts_by_author, k2(post.author_id, post.id));
    feeds::drop_mark(tx, t, MarkKind::Pin, post.author_id, post.id)?;
    bump_account(tx, t, post.author_id, |c| dec(&mut c.statuses))?;
    if let Some(parent) = post.in_reply_to_id {
        bump_post(tx, t, parent, |c| dec(&mut c.replies))?;
    }
    if let Some(original) = post.reblog_of {
        tx.remove(&t.reblogs, k2(original, post.author_id));
        bump_post(tx, t, original, |c| dec(&mut c.reblogs))?;
    }
    if let Some(parent) = post.in_reply_to_id {
        tx.remove(&t.replies, k2(parent, post.id));
    }
    if listed(&post) {
        tx.remove(&t.public_posts, k2(Id::MIN, post.id));
        for tag in &post.hashtags {
            tx.remove(
                &t.tagged_posts,
                [tag_prefix(tag), k1(post.id).to_vec()].concat(),
            );
        }
    }
    Ok(Some(post))
}

fn insert_post(tx: &mut Tx<'_>, t: &Tables, post: &Post) -> Result<()> {
    put(
        tx,
        &t.posts,
        k1(post.id),
        &StoredPost {
            post: post.clone(),
            deleted_at_ms: None,
        },
    )?;
    tx.insert(&t.posts_by_author, k2(post.author_id, post.id), []);
    if let Some(parent) = post.in_reply_to_id {
        tx.insert(&t.replies, k2(parent, post.id), []);
    }
    if listed(post) {
        tx.insert(&t.public_posts, k2(Id::MIN, post.id), []);
        for tag in &post.hashtags {
            tx.insert(
                &t.tagged_posts,
                [tag_prefix(tag), k1(post.id).to_vec()].concat(),
                [],
            );
        }
    }
    let at = post.created_at_ms;
    bump_account(tx, t, post.author_id, |c| {
        c.statuses += 1;
        c.last_status_at_ms = Some(c.last_status_at_ms.map_or(at, |old| old.max(at)));
    })
}

fn ids_page(
    r: &impl Readable,
    table: &SingleWriterTxKeyspace,
    p: Id,
    w: &Window,
) -> Result<Page<Id>> {
    scan(r, table, p, w, |id, _| Ok(Some(id)))
}

impl Store for EmbeddedStore {
    async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let username = validate::validate_new_account(&new)?;
        let key = validate::username_key(&username);
        let email_key = new.email.as_deref().and_then(validate::email_key);
        let snap = self.snapshot();
        if exists(&snap, &self.inner.t.usernames, &key)? {
            return Err(StoreError::Conflict("username is already taken".into()));
        }
        if let Some(email) = &email_key
            && exists(&snap, &self.inner.t.accounts_by_email, email.as_str())?
        {
            return Err(StoreError::Conflict(EMAIL_TAKEN.into()));
        }
        drop(snap);
        let password = new.password;
        let password_hash = secrets::hash_password(password).await?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            // Checked again inside the transaction: the one above only spares the hashing.
            if exists(tx, &t.usernames, &key)? {
                return Err(StoreError::Conflict("username is already taken".into()));
            }
            if let Some(email) = &email_key
                && exists(tx, &t.accounts_by_email, email.as_str())?
            {
                return Err(StoreError::Conflict(EMAIL_TAKEN.into()));
            }
            let id = inner.mint()?;
            let display_name = new.display_name.unwrap_or_default();
            let account = Account::local(id, username, display_name, new.bot, new.role);
            put(tx, &t.accounts, k1(id), &account)?;
            tx.insert(&t.usernames, key.as_str(), k1(id));
            if let Some(email) = &email_key {
                tx.insert(&t.accounts_by_email, email.as_str(), k1(id));
            }
            put(
                tx,
                &t.credentials,
                k1(id),
                &Credentials {
                    password_hash,
                    email: new.email,
                },
            )?;
            put(tx, &t.account_counts, k1(id), &AccountCounts::default())?;
            Ok(account)
        })
        .await
    }

    async fn import_accounts(&self, accounts: Vec<ImportAccount>) -> Result<Vec<Account>> {
        check::batch(accounts.len())?;
        let mut named = Vec::with_capacity(accounts.len());
        for new in accounts {
            let username = validate::normalize_username(&new.username)?;
            named.push((validate::username_key(&username), username, new));
        }
        self.write(move |inner, tx| {
            let t = &inner.t;
            let mut created = Vec::with_capacity(named.len());
            for (key, username, new) in named {
                if exists(tx, &t.usernames, &key)? {
                    continue;
                }
                let id = inner.mint()?;
                let display_name = new.display_name.unwrap_or_default();
                let account = Account::local(id, username, display_name, new.bot, Role::User);
                put(tx, &t.accounts, k1(id), &account)?;
                tx.insert(&t.usernames, key.as_str(), k1(id));
                put(tx, &t.account_counts, k1(id), &AccountCounts::default())?;
                created.push(account);
            }
            Ok(created)
        })
        .await
    }

    async fn accounts_by_ids(&self, ids: &[Id]) -> Result<Vec<Account>> {
        check::batch(ids.len())?;
        let snap = self.snapshot();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(account) = get(&snap, &self.inner.t.accounts, k1(*id))? {
                out.push(account);
            }
        }
        Ok(out)
    }

    async fn accounts_by_usernames(&self, usernames: &[&str]) -> Result<Vec<Account>> {
        check::batch(usernames.len())?;
        let snap = self.snapshot();
        let t = &self.inner.t;
        let mut out = Vec::with_capacity(usernames.len());
        for name in usernames {
            let key = validate::username_key(name);
            let Some(id) = snap.get(&t.usernames, key).ctx("looking up a username")? else {
                continue;
            };
            if let Some(account) = get(&snap, &t.accounts, &id)? {
                out.push(account);
            }
        }
        Ok(out)
    }

    async fn account_counts(&self, ids: &[Id]) -> Result<Vec<AccountCounts>> {
        let snap = self.snapshot();
        ids.iter()
            .map(|id| Ok(get(&snap, &self.inner.t.account_counts, k1(*id))?.unwrap_or_default()))
            .collect()
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
        let Some(key) = validate::email_key(email) else {
            return Ok(None);
        };
        let t = &self.inner.t;
        let snap = self.snapshot();
        match snap
            .get(&t.accounts_by_email, key.as_str())
            .ctx("looking up an email")?
        {
            Some(id) => get(&snap, &t.accounts, &id),
            None => Ok(None),
        }
    }

    async fn update_profile(&self, id: Id, update: ProfileUpdate) -> Result<Account> {
        self.update_profile_(id, update).await
    }

    async fn verify_password(&self, username: &str, password: &str) -> Result<Account> {
        let t = &self.inner.t;
        let snap = self.snapshot();
        let account: Option<Account> = match snap
            .get(&t.usernames, validate::username_key(username))
            .ctx("looking up a username")?
        {
            Some(id) => get(&snap, &t.accounts, &id)?,
            None => None,
        };
        let hash = match &account {
            Some(a) => {
                get::<Credentials>(&snap, &t.credentials, k1(a.id))?.map(|c| c.password_hash)
            }
            None => None,
        };
        let password = password.to_owned();
        let ok = secrets::verify_password(password, hash).await?;
        match account {
            Some(account) if ok => Ok(account),
            _ => Err(StoreError::Unauthorized("invalid username or password")),
        }
    }

    async fn create_app(&self, new: NewApp) -> Result<IssuedApp> {
        validate::validate_new_app(&new)?;
        self.write(move |inner, tx| {
            let client_secret = secrets::random_secret();
            let app = App {
                id: inner.mint()?,
                name: new.name.trim().to_owned(),
                website: new.website,
                redirect_uris: new.redirect_uris,
                scopes: new.scopes,
                client_id: secrets::random_secret(),
                created_at_ms: now_ms(),
            };
            let stored = StoredApp {
                app,
                secret_digest: secrets::digest(&client_secret),
            };
            put(tx, &inner.t.apps, stored.app.client_id.as_str(), &stored)?;
            tx.insert(
                &inner.t.apps_by_id,
                k1(stored.app.id),
                stored.app.client_id.as_bytes(),
            );
            Ok(IssuedApp {
                app: stored.app,
                client_secret,
            })
        })
        .await
    }

    async fn verify_app(&self, client_id: &str, client_secret: &str) -> Result<App> {
        let stored: Option<StoredApp> = get(&self.snapshot(), &self.inner.t.apps, client_id)?;
        match stored {
            Some(s) if s.secret_digest == secrets::digest(client_secret) => Ok(s.app),
            _ => Err(StoreError::Unauthorized("invalid client credentials")),
        }
    }

    async fn issue_token(&self, new: NewToken) -> Result<IssuedToken> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            if let Some(account) = new.account_id {
                require_account(tx, t, account)?;
            }
            let token = secrets::random_secret();
            let info = TokenInfo {
                token_hash: secrets::digest(&token),
                account_id: new.account_id,
                app_id: new.app_id,
                scopes: new.scopes,
                created_at_ms: now_ms(),
                expires_at_ms: new.expires_at_ms,
            };
            put(tx, &t.tokens, info.token_hash.as_str(), &info)?;
            if let Some(account) = info.account_id {
                let mut key = k1(account).to_vec();
                key.extend_from_slice(info.token_hash.as_bytes());
                tx.insert(&t.tokens_by_account, key.as_slice(), []);
            }
            Ok(IssuedToken { token, info })
        })
        .await
    }

    async fn token(&self, token: &str) -> Result<Option<TokenInfo>> {
        let info: Option<TokenInfo> = get(
            &self.snapshot(),
            &self.inner.t.tokens,
            secrets::digest(token),
        )?;
        Ok(info.filter(|i| !i.expired_at(now_ms())))
    }

    async fn revoke_token(&self, token_hash: &str) -> Result<bool> {
        let hash = token_hash.to_owned();
        self.write(move |inner, tx| {
            let t = &inner.t;
            let Some(info) = get::<TokenInfo>(tx, &t.tokens, hash.as_str())? else {
                return Ok(false);
            };
            tx.remove(&t.tokens, hash.as_str());
            if let Some(account) = info.account_id {
                let mut key = k1(account).to_vec();
                key.extend_from_slice(hash.as_bytes());
                tx.remove(&t.tokens_by_account, key.as_slice());
            }
            Ok(true)
        })
        .await
    }

    async fn tokens_of(&self, account: Id) -> Result<Vec<TokenInfo>> {
        let snap = self.snapshot();
        let t = &self.inner.t;
        let mut out = Vec::new();
        for row in snap.prefix(&t.tokens_by_account, k1(account)) {
            let key = row.key().ctx("listing tokens")?;
            let hash = key.get(8..).unwrap_or_default();
            if let Some(info) = get::<TokenInfo>(&snap, &t.tokens, hash)? {
                out.push(info);
            }
        }
        Ok(out)
    }

    async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>> {
        let stored: Option<StoredApp> = get(&self.snapshot(), &self.inner.t.apps, client_id)?;
        Ok(stored.map(|s| s.app))
    }

    async fn app_by_id(&self, id: Id) -> Result<Option<App>> {
        let snap = self.snapshot();
        let t = &self.inner.t;
        let Some(client_id) = snap.get(&t.apps_by_id, k1(id)).ctx("reading an app id")? else {
            return Ok(None);
        };
        let stored: Option<StoredApp> = get(&snap, &t.apps, client_id)?;
        Ok(stored.map(|s| s.app))
    }

    async fn create_auth_code(&self, code: AuthCode) -> Result<String> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, code.account_id)?;
            let secret = secrets::random_secret();
            put(tx, &t.auth_codes, secrets::digest(&secret), &code)?;
            Ok(secret)
        })
        .await
    }

    async fn take_auth_code(&self, code: &str) -> Result<Option<AuthCode>> {
        let digest = secrets::digest(code);
        self.write(move |inner, tx| {
            let t = &inner.t;
            let Some(found) = get::<AuthCode>(tx, &t.auth_codes, digest.as_str())? else {
                return Ok(None);
            };
            tx.remove(&t.auth_codes, digest.as_str());
            Ok((found.expires_at_ms > now_ms()).then_some(found))
        })
        .await
    }

    async fn follow(&self, follower: Id, followee: Id) -> Result<bool> {
        check::distinct(follower, followee)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            may_follow(tx, t, follower, followee)?;
            // A follow made directly settles a request that was pending.
            social::withdraw(tx, t, follower, followee)?;
            add_follow(tx, t, follower, followee)
        })
        .await
    }

    async fn unfollow(&self, follower: Id, followee: Id) -> Result<bool> {
        check::distinct(follower, followee)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            let withdrawn = social::withdraw(tx, t, follower, followee)?;
            Ok(remove_follow(tx, t, follower, followee)? || withdrawn)
        })
        .await
    }

    async fn request_follow(&self, follower: Id, followee: Id) -> Result<bool> {
        self.request_follow_(follower, followee).await
    }

    async fn follow_requests(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.follow_requests_(account, window).await
    }

    async fn authorize_follow_request(&self, account: Id, requester: Id) -> Result<bool> {
        self.decide_follow_request(account, requester, true).await
    }

    async fn reject_follow_request(&self, account: Id, requester: Id) -> Result<bool> {
        self.decide_follow_request(account, requester, false).await
    }

    async fn mute_conversation(&self, account: Id, root: Id) -> Result<bool> {
        self.set_conversation_muted(account, root, true).await
    }

    async fn unmute_conversation(&self, account: Id, root: Id) -> Result<bool> {
        self.set_conversation_muted(account, root, false).await
    }

    async fn muted_conversations(&self, account: Id, roots: &[Id]) -> Result<Vec<bool>> {
        self.muted_conversations_(account, roots)
    }

    async fn followers(&self, account: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.followers, account, &window)
    }

    async fn following(&self, account: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.following, account, &window)
    }

    async fn create_post(
        &self,
        new: NewPost,
        idempotency_key: Option<&str>,
    ) -> Result<Created<Post>> {
        validate::validate_new_post(&new, &self.inner.limits)?;
        if new.reblog_of.is_some() {
            return Err(starling_schema::Invalid::new("reblog_of", "is set through reblog").into());
        }
        let key = match idempotency_key {
            Some(k) => {
                validate::validate_idempotency_key(k)?;
                let mut key = k1(new.author_id).to_vec();
                key.extend_from_slice(k.as_bytes());
                Some(key)
            }
            None => None,
        };
        self.write(move |inner, tx| {
            let t = &inner.t;
            let now = now_ms();
            if let Some(key) = &key
                && let Some(rec) = get::<IdempotencyRecord>(tx, &t.idempotency, key)?
                && rec.expires_at_ms > now
                && let Some(stored) = get::<StoredPost>(tx, &t.posts, k1(rec.post_id))?
            {
                return Ok(Created {
                    value: stored.post,
                    created: false,
                });
            }
            require_account(tx, t, new.author_id)?;
            let in_reply_to_account_id = match new.in_reply_to_id {
                Some(parent) => {
                    let parent =
                        live_post(tx, t, parent)?.ok_or(StoreError::NotFound("post replied to"))?;
                    bump_post(tx, t, parent.id, |c| c.replies += 1)?;
                    Some(parent.author_id)
                }
                None => None,
            };
            let id = inner.mint()?;
            let poll = match &new.poll {
                Some(p) => {
                    let poll = Poll::from_new(inner.mint()?, id, new.author_id, p, id.unix_ms());
                    polls::insert_poll(tx, t, &poll)?;
                    Some(poll.id)
                }
                None => None,
            };
            let post = Post {
                id,
                author_id: new.author_id,
                text: new.text,
                spoiler_text: new.spoiler_text,
                sensitive: new.sensitive,
                visibility: new.visibility,
                in_reply_to_id: new.in_reply_to_id,
                in_reply_to_account_id,
                reblog_of: None,
                mentions: new.mentions,
                hashtags: new.hashtags,
                language: new.language,
                created_at_ms: id.unix_ms(),
                edited_at_ms: None,
                poll_id: poll,
            };
            insert_post(tx, t, &post)?;
            if let Some(key) = &key {
                let rec = IdempotencyRecord {
                    post_id: id,
                    expires_at_ms: now + IDEMPOTENCY_TTL_MS,
                };
                put(tx, &t.idempotency, key, &rec)?;
            }
            Ok(Created {
                value: post,
                created: true,
            })
        })
        .await
    }

    async fn posts_by_ids(&self, ids: &[Id]) -> Result<Vec<Post>> {
        check::batch(ids.len())?;
        let snap = self.snapshot();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(post) = live_post(&snap, &self.inner.t, *id)? {
                out.push(post);
            }
        }
        Ok(out)
    }

    async fn delete_post(&self, id: Id) -> Result<Option<Post>> {
        self.write(move |inner, tx| tombstone(tx, &inner.t, id))
            .await
    }

    async fn posts_by_author(&self, author: Id, window: Window) -> Result<Page<Post>> {
        let snap = self.snapshot();
        let t = &self.inner.t;
        scan(&snap, &t.posts_by_author, author, &window, |id, _| {
            live_post(&snap, t, id)
        })
    }

    async fn post_counts(&self, ids: &[Id]) -> Result<Vec<PostCounts>> {
        check::batch(ids.len())?;
        let snap = self.snapshot();
        ids.iter()
            .map(|id| Ok(get(&snap, &self.inner.t.post_counts, k1(*id))?.unwrap_or_default()))
            .collect()
    }

    async fn favourite(&self, account: Id, post: Id) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, account)?;
            if live_post(tx, t, post)?.is_none() {
                return Err(StoreError::NotFound("post"));
            }
            if exists(tx, &t.favourites, k2(post, account))? {
                return Ok(false);
            }
            tx.insert(&t.favourites, k2(post, account), now_ms().to_be_bytes());
            feeds::put_mark(inner, tx, MarkKind::Favourite, account, post)?;
            bump_post(tx, t, post, |c| c.favourites += 1)?;
            Ok(true)
        })
        .await
    }

    async fn unfavourite(&self, account: Id, post: Id) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            if !exists(tx, &t.favourites, k2(post, account))? {
                return Ok(false);
            }
            tx.remove(&t.favourites, k2(post, account));
            feeds::drop_mark(tx, t, MarkKind::Favourite, account, post)?;
            bump_post(tx, t, post, |c| dec(&mut c.favourites))?;
            Ok(true)
        })
        .await
    }

    async fn favourited_by(&self, post: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.favourites, post, &window)
    }

    async fn reblog(&self, account: Id, post: Id) -> Result<Created<Post>> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, account)?;
            let mut original = live_post(tx, t, post)?.ok_or(StoreError::NotFound("post"))?;
            if let Some(inner_id) = original.reblog_of {
                original = live_post(tx, t, inner_id)?.ok_or(StoreError::NotFound("post"))?;
            }
            if !policy::may_reblog(&original, account) {
                return Err(StoreError::Forbidden("this post cannot be reblogged"));
            }
            if let Some(existing) = tx
                .get(&t.reblogs, k2(original.id, account))
                .ctx("reading a reblog")?
            {
                let wrapper = Id::from_be_slice(&existing)
                    .ok_or_else(|| StoreError::backend("reading a reblog", "bad reblog id"))?;
                if let Some(wrapper) = live_post(tx, t, wrapper)? {
                    return Ok(Created {
                        value: wrapper,
                        created: false,
                    });
                }
            }
            let id = inner.mint()?;
            let wrapper = Post {
                id,
                author_id: account,
                text: String::new(),
                spoiler_text: String::new(),
                sensitive: original.sensitive,
                visibility: original.visibility,
                in_reply_to_id: None,
                in_reply_to_account_id: None,
                reblog_of: Some(original.id),
                mentions: Vec::new(),
                hashtags: Vec::new(),
                language: original.language.clone(),
                created_at_ms: id.unix_ms(),
                edited_at_ms: None,
                poll_id: None,
            };
            insert_post(tx, t, &wrapper)?;
            tx.insert(&t.reblogs, k2(original.id, account), k1(id));
            bump_post(tx, t, original.id, |c| c.reblogs += 1)?;
            Ok(Created {
                value: wrapper,
                created: true,
            })
        })
        .await
    }

    async fn unreblog(&self, account: Id, post: Id) -> Result<Option<Post>> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            // Accept the wrapper's id as well as the original's.
            let original = match live_post(tx, t, post)? {
                Some(p) => p.reblog_of.unwrap_or(p.id),
                None => post,
            };
            let Some(wrapper) = tx
                .get(&t.reblogs, k2(original, account))
                .ctx("reading a reblog")?
            else {
                return Ok(None);
            };
            let wrapper = Id::from_be_slice(&wrapper)
                .ok_or_else(|| StoreError::backend("reading a reblog", "bad reblog id"))?;
            tombstone(tx, t, wrapper)
        })
        .await
    }

    async fn reblogged_by(&self, post: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.reblogs, post, &window)
    }

    async fn viewer_flags(&self, viewer: Id, posts: &[Id]) -> Result<Vec<ViewerFlags>> {
        check::batch(posts.len())?;
        let snap = self.snapshot();
        let t = &self.inner.t;
        posts
            .iter()
            .map(|post| {
                Ok(ViewerFlags {
                    favourited: exists(&snap, &t.favourites, k2(*post, viewer))?,
                    reblogged: exists(&snap, &t.reblogs, k2(*post, viewer))?,
                    bookmarked: feeds::marked(&snap, t, MarkKind::Bookmark, viewer, *post)?,
                    pinned: feeds::marked(&snap, t, MarkKind::Pin, viewer, *post)?,
                })
            })
            .collect()
    }

    async fn block(&self, account: Id, target: Id) -> Result<bool> {
        check::distinct(account, target)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, account)?;
            require_account(tx, t, target)?;
            remove_follow(tx, t, account, target)?;
            remove_follow(tx, t, target, account)?;
            social::withdraw(tx, t, account, target)?;
            social::withdraw(tx, t, target, account)?;
            if exists(tx, &t.blocks, k2(account, target))? {
                return Ok(false);
            }
            tx.insert(&t.blocks, k2(account, target), now_ms().to_be_bytes());
            tx.insert(&t.blocked_by, k2(target, account), []);
            Ok(true)
        })
        .await
    }

    async fn unblock(&self, account: Id, target: Id) -> Result<bool> {
        check::distinct(account, target)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            let existed = exists(tx, &t.blocks, k2(account, target))?;
            tx.remove(&t.blocks, k2(account, target));
            tx.remove(&t.blocked_by, k2(target, account));
            Ok(existed)
        })
        .await
    }

    async fn mute(&self, account: Id, target: Id, notifications: bool) -> Result<bool> {
        check::distinct(account, target)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, account)?;
            require_account(tx, t, target)?;
            let record = MuteRecord { notifications };
            if get::<MuteRecord>(tx, &t.mutes, k2(account, target))?.as_ref() == Some(&record) {
                return Ok(false);
            }
            put(tx, &t.mutes, k2(account, target), &record)?;
            tx.insert(&t.muted_by, k2(target, account), []);
            Ok(true)
        })
        .await
    }

    async fn unmute(&self, account: Id, target: Id) -> Result<bool> {
        check::distinct(account, target)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            let existed = exists(tx, &t.mutes, k2(account, target))?;
            tx.remove(&t.mutes, k2(account, target));
            tx.remove(&t.muted_by, k2(target, account));
            Ok(existed)
        })
        .await
    }

    async fn blocks_of(&self, account: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.blocks, account, &window)
    }

    async fn mutes_of(&self, account: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.mutes, account, &window)
    }

    async fn relationships(&self, account: Id, targets: &[Id]) -> Result<Vec<Relationship>> {
        check::batch(targets.len())?;
        let snap = self.snapshot();
        let t = &self.inner.t;
        targets
            .iter()
            .map(|&target| {
                let mute: Option<MuteRecord> = get(&snap, &t.mutes, k2(account, target))?;
                Ok(Relationship {
                    target,
                    following: exists(&snap, &t.following, k2(account, target))?,
                    followed_by: exists(&snap, &t.following, k2(target, account))?,
                    blocking: exists(&snap, &t.blocks, k2(account, target))?,
                    blocked_by: exists(&snap, &t.blocks, k2(target, account))?,
                    muting: mute.is_some(),
                    muting_notifications: mute.is_some_and(|m| m.notifications),
                    requested: exists(&snap, &t.follow_requests_sent, k2(account, target))?,
                })
            })
            .collect()
    }

    async fn notify(&self, new: NewNotification) -> Result<Option<Notification>> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, new.account_id)?;
            let key = notification_key(&new);
            if exists(tx, &t.notification_keys, &key)? {
                return Ok(None);
            }
            let id = inner.mint()?;
            tx.insert(&t.notification_keys, key.as_slice(), k1(id));
            let n = Notification {
                id,
                account_id: new.account_id,
                kind: new.kind,
                from_account_id: new.from_account_id,
                post_id: new.post_id,
                created_at_ms: id.unix_ms(),
            };
            put(tx, &t.notifications, k2(n.account_id, id), &n)?;
            Ok(Some(n))
        })
        .await
    }

    async fn notifications(
        &self,
        account: Id,
        window: Window,
        kinds: Option<&[NotificationKind]>,
    ) -> Result<Page<Notification>> {
        scan(
            &self.snapshot(),
            &self.inner.t.notifications,
            account,
            &window,
            |_, bytes| {
                let n: Notification = decode(bytes)?;
                Ok(kinds.is_none_or(|k| k.contains(&n.kind)).then_some(n))
            },
        )
    }

    async fn notification(&self, account: Id, id: Id) -> Result<Option<Notification>> {
        get(
            &self.snapshot(),
            &self.inner.t.notifications,
            k2(account, id),
        )
    }

    async fn dismiss_notification(&self, account: Id, id: Id) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let existed = exists(tx, &t.notifications, k2(account, id))?;
            tx.remove(&t.notifications, k2(account, id));
            Ok(existed)
        })
        .await
    }

    async fn clear_notifications(&self, account: Id) -> Result<u64> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let keys: Vec<_> = tx
                .prefix(&t.notifications, k1(account))
                .map(|row| row.key().ctx("listing notifications"))
                .collect::<Result<_>>()?;
            for key in &keys {
                tx.remove(&t.notifications, key.clone());
            }
            Ok(keys.len() as u64)
        })
        .await
    }

    async fn replies_to(&self, post: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.replies, post, &window)
    }

    async fn public_posts(&self, window: Window) -> Result<Page<Id>> {
        ids_page(
            &self.snapshot(),
            &self.inner.t.public_posts,
            Id::MIN,
            &window,
        )
    }

    async fn tagged_posts(&self, tag: &str, window: Window) -> Result<Page<Id>> {
        let prefix = tag_prefix(tag);
        scan_prefixed(
            &self.snapshot(),
            &self.inner.t.tagged_posts,
            &prefix,
            &window,
            |id, _| Ok(Some(id)),
        )
    }

    async fn blocked_by(&self, account: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.blocked_by, account, &window)
    }

    async fn muted_by(&self, account: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.muted_by, account, &window)
    }

    async fn outbox_push(&self, payload: Vec<u8>) -> Result<Id> {
        self.write(move |inner, tx| {
            let id = inner.mint()?;
            tx.insert(&inner.t.outbox, k2(inner.node(), id), payload.as_slice());
            Ok(id)
        })
        .await
    }

    async fn outbox_peek(&self, limit: usize) -> Result<Vec<(Id, Vec<u8>)>> {
        let snap = self.snapshot();
        let window = Window::oldest(limit);
        let node = self.inner.node();
        let page = scan(&snap, &self.inner.t.outbox, node, &window, |id, payload| {
            Ok(Some((id, payload.to_vec())))
        })?;
        Ok(page.items)
    }

    async fn outbox_remove(&self, id: Id) -> Result<()> {
        self.write(move |inner, tx| {
            tx.remove(&inner.t.outbox, k2(inner.node(), id));
            Ok(())
        })
        .await
    }

    async fn scan_posts(&self, after: Option<Id>, limit: usize) -> Result<Scan<Post>> {
        check::scan_limit(limit)?;
        let snap = self.snapshot();
        scan_table(&snap, &self.inner.t.posts, after, limit, |bytes| {
            let stored: StoredPost = decode(bytes)?;
            Ok(stored.deleted_at_ms.is_none().then_some(stored.post))
        })
    }

    async fn scan_accounts(&self, after: Option<Id>, limit: usize) -> Result<Scan<Account>> {
        check::scan_limit(limit)?;
        let snap = self.snapshot();
        scan_table(&snap, &self.inner.t.accounts, after, limit, |bytes| {
            decode(bytes).map(Some)
        })
    }

    async fn moderate_account(
        &self,
        id: Id,
        suspended: Option<bool>,
        role: Option<Role>,
    ) -> Result<Account> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let mut account: Account =
                get(tx, &t.accounts, k1(id))?.ok_or(StoreError::NotFound("account"))?;
            if let Some(suspended) = suspended {
                account.suspended = suspended;
            }
            if let Some(role) = role {
                account.role = role;
            }
            put(tx, &t.accounts, k1(id), &account)?;
            Ok(account)
        })
        .await
    }

    async fn import_follows(&self, edges: Vec<(Id, Id)>) -> Result<u64> {
        check::edges(edges.len())?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            let mut known = HashSet::new();
            let mut deltas: HashMap<Id, (u64, u64)> = HashMap::new();
            let mut added = 0;
            for (follower, followee) in edges {
                if follower == followee {
                    continue;
                }
                for id in [follower, followee] {
                    if !known.contains(&id) {
                        require_account(tx, t, id)?;
                        known.insert(id);
                    }
                }
                if exists(tx, &t.following, k2(follower, followee))?
                    || exists(tx, &t.blocks, k2(follower, followee))?
                    || exists(tx, &t.blocks, k2(followee, follower))?
                {
                    continue;
                }
                let at = now_ms().to_be_bytes();
                tx.insert(&t.following, k2(follower, followee), at);
                tx.insert(&t.followers, k2(followee, follower), at);
                deltas.entry(follower).or_default().1 += 1;
                deltas.entry(followee).or_default().0 += 1;
                added += 1;
            }
            for (id, (followers, following)) in deltas {
                bump_account(tx, t, id, |c| {
                    c.followers += followers;
                    c.following += following;
                })?;
            }
            Ok(added)
        })
        .await
    }

    async fn delete_account(&self, id: Id) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let Some(account) = get::<Account>(tx, &t.accounts, k1(id))? else {
                return Ok(false);
            };
            for followee in partition_ids(tx, &t.following, id)? {
                remove_follow(tx, t, id, followee)?;
            }
            for follower in partition_ids(tx, &t.followers, id)? {
                remove_follow(tx, t, follower, id)?;
            }
            social::withdraw_all(tx, t, id)?;
            for root in partition_ids(tx, &t.conversation_mutes, id)? {
                tx.remove(&t.conversation_mutes, k2(id, root));
            }
            // Its lists are empty now (leaving a follow leaves the lists too).
            for list in partition_ids(tx, &t.lists, id)? {
                tx.remove(&t.lists, k2(id, list));
            }
            feeds::unfollow_all_tags(tx, t, id)?;
            conversations::forget_all(tx, t, id)?;
            let hashes: Vec<Vec<u8>> = tx
                .prefix(&t.tokens_by_account, k1(id))
                .map(|row| row.key().ctx("listing tokens").map(|k| k.to_vec()))
                .collect::<Result<_>>()?;
            for key in hashes {
                tx.remove(&t.tokens, key.get(8..).unwrap_or_default());
                tx.remove(&t.tokens_by_account, key.as_slice());
            }
            let subscriptions: Vec<Vec<u8>> = tx
                .prefix(&t.push_subscriptions, k1(id))
                .map(|row| {
                    row.key()
                        .ctx("listing push subscriptions")
                        .map(|k| k.to_vec())
                })
                .collect::<Result<_>>()?;
            for key in subscriptions {
                tx.remove(&t.push_subscriptions, key.as_slice());
            }
            tx.remove(
                &t.usernames,
                validate::username_key(&account.username).as_str(),
            );
            let credentials = get::<Credentials>(tx, &t.credentials, k1(id))?;
            if let Some(email) = credentials
                .and_then(|c| c.email)
                .as_deref()
                .and_then(validate::email_key)
            {
                // Only if it is this account's: an older account may hold it (backfill).
                let owner = tx
                    .get(&t.accounts_by_email, email.as_str())
                    .ctx("reading an email")?;
                if owner.is_some_and(|o| o.as_ref() == k1(id).as_slice()) {
                    tx.remove(&t.accounts_by_email, email.as_str());
                }
            }
            tx.remove(&t.credentials, k1(id));
            tx.remove(&t.account_counts, k1(id));
            tx.remove(&t.accounts, k1(id));
            Ok(true)
        })
        .await
    }

    async fn set_account_counts(&self, id: Id, counts: AccountCounts) -> Result<()> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, id)?;
            bump_account(tx, t, id, |c| {
                c.followers = counts.followers;
                c.following = counts.following;
                c.statuses = counts.statuses;
            })
        })
        .await
    }

    async fn markers(&self, account: Id) -> Result<Vec<Marker>> {
        self.markers_of(account).await
    }

    async fn set_marker(
        &self,
        account: Id,
        timeline: MarkerTimeline,
        last_read_id: Id,
    ) -> Result<Marker> {
        self.put_marker(account, timeline, last_read_id).await
    }

    async fn filters_of(&self, account: Id) -> Result<Vec<Filter>> {
        self.filters_for(account).await
    }

    async fn save_filter(&self, account: Id, draft: FilterDraft) -> Result<Filter> {
        self.put_filter(account, draft).await
    }

    async fn delete_filter(&self, account: Id, id: Id) -> Result<bool> {
        self.remove_filter(account, id).await
    }

    async fn create_announcement(&self, new: NewAnnouncement) -> Result<Announcement> {
        self.add_announcement(new).await
    }

    async fn announcements(&self) -> Result<Vec<Announcement>> {
        self.all_announcements().await
    }

    async fn delete_announcement(&self, id: Id) -> Result<bool> {
        self.remove_announcement(id).await
    }

    async fn dismiss_announcement(&self, account: Id, id: Id) -> Result<bool> {
        self.dismiss(account, id).await
    }

    async fn dismissed_announcements(&self, account: Id) -> Result<Vec<Id>> {
        self.dismissed(account).await
    }

    async fn create_media(&self, new: NewMedia) -> Result<MediaAttachment> {
        self.put_new_media(new).await
    }

    async fn media_by_ids(&self, ids: &[Id]) -> Result<Vec<MediaAttachment>> {
        self.get_media(ids).await
    }

    async fn update_media(&self, media: MediaAttachment) -> Result<()> {
        self.replace_media(media).await
    }

    async fn attach_media(
        &self,
        account: Id,
        post: Id,
        ids: &[Id],
    ) -> Result<Vec<MediaAttachment>> {
        self.attach(account, post, ids.to_vec()).await
    }

    async fn media_of_posts(&self, posts: &[Id]) -> Result<Vec<MediaAttachment>> {
        self.media_of(posts).await
    }

    async fn delete_media(&self, id: Id) -> Result<Option<MediaAttachment>> {
        self.remove_media(id).await
    }

    async fn scan_media(&self, after: Option<Id>, limit: usize) -> Result<Scan<MediaAttachment>> {
        self.scan_all_media(after, limit).await
    }

    async fn set_profile_images(
        &self,
        account: Id,
        images: ProfileImages,
    ) -> Result<ProfileImages> {
        self.put_profile_images(account, images).await
    }

    async fn profile_images(&self, accounts: &[Id]) -> Result<Vec<ProfileImages>> {
        self.get_profile_images(accounts).await
    }

    async fn save_push_subscription(&self, sub: PushSubscription) -> Result<()> {
        self.put_push_subscription(sub).await
    }

    async fn push_subscriptions_of(&self, account: Id) -> Result<Vec<PushSubscription>> {
        self.push_subscriptions_for(account).await
    }

    async fn delete_push_subscription(&self, account: Id, token_hash: &str) -> Result<bool> {
        self.remove_push_subscription(account, token_hash).await
    }

    async fn server_key(&self, name: &str, candidate: String) -> Result<String> {
        self.keep_server_key(name, candidate).await
    }

    async fn create_list(&self, owner: Id, draft: ListDraft) -> Result<List> {
        self.new_list(owner, draft).await
    }

    async fn update_list(&self, owner: Id, id: Id, draft: ListDraft) -> Result<List> {
        self.change_list(owner, id, draft).await
    }

    async fn delete_list(&self, owner: Id, id: Id) -> Result<bool> {
        self.drop_list(owner, id).await
    }

    async fn lists_of(&self, owner: Id) -> Result<Vec<List>> {
        self.owned_lists(owner)
    }

    async fn list_members(&self, list: Id, window: Window) -> Result<Page<Id>> {
        ids_page(&self.snapshot(), &self.inner.t.list_members, list, &window)
    }

    async fn add_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()> {
        self.join_list(owner, list, accounts.to_vec()).await
    }

    async fn remove_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()> {
        self.leave_list(owner, list, accounts.to_vec()).await
    }

    async fn lists_with_member(
        &self,
        member: Id,
        owners_after: Option<Id>,
        owners_through: Option<Id>,
    ) -> Result<Vec<ListRef>> {
        self.member_of(member, owners_after, owners_through)
    }

    async fn mark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        self.keep(kind, account, post).await
    }

    async fn unmark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        self.unkeep(kind, account, post).await
    }

    async fn marks(&self, kind: MarkKind, account: Id, window: Window) -> Result<Page<Mark>> {
        self.kept(kind, account, &window)
    }

    async fn follow_tag(&self, account: Id, tag: &str) -> Result<bool> {
        self.add_tag_follow(account, tag.to_owned()).await
    }

    async fn unfollow_tag(&self, account: Id, tag: &str) -> Result<bool> {
        self.drop_tag_follow(account, tag.to_owned()).await
    }

    async fn followed_tags(&self, account: Id) -> Result<Vec<String>> {
        self.tags_of(account)
    }

    async fn dismiss_suggestion(&self, account: Id, target: Id) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, account)?;
            require_account(tx, t, target)?;
            if exists(tx, &t.suggestion_dismissals, k2(account, target))? {
                return Ok(false);
            }
            tx.insert(
                &t.suggestion_dismissals,
                k2(account, target),
                now_ms().to_be_bytes(),
            );
            Ok(true)
        })
        .await
    }

    async fn dismissed_suggestions(&self, account: Id, window: Window) -> Result<Page<Id>> {
        ids_page(
            &self.snapshot(),
            &self.inner.t.suggestion_dismissals,
            account,
            &window,
        )
    }

    async fn tag_followers(&self, tag: &str, window: Window) -> Result<Page<Id>> {
        starling_schema::feeds::check_tag(tag)?;
        scan_prefixed(
            &self.snapshot(),
            &self.inner.t.tag_followers,
            &tag_prefix(tag),
            &window,
            |id, _| Ok(Some(id)),
        )
    }

    async fn update_post(&self, author: Id, id: Id, edit: PostEdit) -> Result<Post> {
        self.edit_post(author, id, edit).await
    }

    async fn post_versions(&self, id: Id) -> Result<Vec<PostVersion>> {
        self.versions_of(id).await
    }

    async fn polls_by_ids(&self, ids: &[Id]) -> Result<Vec<Poll>> {
        self.get_polls(ids).await
    }

    async fn poll_votes(&self, account: Id, polls: &[Id]) -> Result<Vec<Option<Vec<u32>>>> {
        self.votes_of(account, polls).await
    }

    async fn vote(&self, account: Id, poll: Id, choices: &[u32]) -> Result<Poll> {
        self.cast_vote(account, poll, choices.to_vec()).await
    }

    async fn poll_voters(&self, poll: Id, window: Window) -> Result<Page<Id>> {
        self.voters_of(poll, window).await
    }

    async fn due_polls(&self, until_ms: u64, limit: usize) -> Result<Vec<(Id, u64)>> {
        self.due(until_ms, limit).await
    }

    async fn claim_poll_expiry(&self, poll: Id, lease_ms: u64) -> Result<bool> {
        self.claim_expiry(poll, lease_ms).await
    }

    async fn finish_poll_expiry(&self, poll: Id) -> Result<()> {
        self.finish_expiry(poll).await
    }

    async fn add_to_conversation(
        &self,
        account: Id,
        participants: &[Id],
        post: Id,
        unread: bool,
    ) -> Result<Option<Conversation>> {
        self.converse(account, participants.to_vec(), post, unread)
            .await
    }

    async fn remove_from_conversation(
        &self,
        account: Id,
        conversation: Id,
        post: Id,
    ) -> Result<Option<Conversation>> {
        self.unconverse(account, conversation, post).await
    }

    async fn conversations(&self, account: Id, window: Window) -> Result<Page<Conversation>> {
        self.conversations_page(account, &window)
    }

    async fn conversation(&self, account: Id, id: Id) -> Result<Option<Conversation>> {
        self.conversation_of(account, id)
    }

    async fn read_conversation(&self, account: Id, id: Id) -> Result<Option<Conversation>> {
        Ok(self
            .change_conversation(account, id, ConversationState::read)
            .await?
            .and_then(|s| s.view(id, account)))
    }

    async fn remove_conversation(&self, account: Id, id: Id) -> Result<bool> {
        Ok(self
            .change_conversation(account, id, ConversationState::removed)
            .await?
            .is_some())
    }

    async fn ping(&self) -> Result<()> {
        self.inner
            .t
            .meta
            .get("schema_version")
            .ctx("pinging the store")
            .map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Data written before version 5 has no email index: opening it builds one, and an
    /// address shared by two older accounts stays with the older.
    #[tokio::test]
    async fn opening_older_data_indexes_its_email_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let settings = EmbeddedSettings {
            path: dir.path().join("store"),
            fsync: false,
            cache_mib: 16,
        };
        let store = EmbeddedStore::open(&settings, 1, Limits::default()).unwrap();
        let mk = |username: &str, email: &str| NewAccount {
            username: username.into(),
            email: Some(email.into()),
            password: "correct horse battery".into(),
            display_name: None,
            role: Role::User,
            bot: false,
        };
        let old = store
            .create_account(mk("old", "Old@Example.org"))
            .await
            .unwrap();
        let newer = store
            .create_account(mk("newer", "newer@example.org"))
            .await
            .unwrap();
        // Make it look like version 4: no index, and two accounts sharing an address.
        {
            let t = &store.inner.t;
            let mut tx = store.inner.db.write_tx();
            tx.remove(&t.accounts_by_email, "old@example.org");
            tx.remove(&t.accounts_by_email, "newer@example.org");
            let shared = Credentials {
                password_hash: String::new(),
                email: Some("OLD@example.org".into()),
            };
            tx.insert(&t.credentials, k1(newer.id), encode(&shared).unwrap());
            tx.insert(&t.meta, "schema_version", 4u32.to_be_bytes());
            tx.commit().unwrap();
        }
        assert!(
            store
                .account_by_email("old@example.org")
                .await
                .unwrap()
                .is_none()
        );
        drop(store);
        let store = EmbeddedStore::open(&settings, 1, Limits::default()).unwrap();
        let found = store.account_by_email("old@EXAMPLE.org").await.unwrap();
        assert_eq!(found.map(|a| a.id), Some(old.id));
        // Deleting the newer account leaves the older one's address alone.
        assert!(store.delete_account(newer.id).await.unwrap());
        let found = store.account_by_email("old@example.org").await.unwrap();
        assert_eq!(found.map(|a| a.id), Some(old.id));
    }
}
