//! The system of record: accounts, credentials, apps and tokens, the follow graph in both
//! directions, posts, favourites, reblogs, blocks, mutes, notifications and counters.
//!
//! One trait, [`Store`], and two backends: [`embedded::EmbeddedStore`] (an LSM store inside
//! the process, the default on one machine) and [`scylla::ScyllaStore`] (a ScyllaDB or
//! Cassandra cluster). Both lay data out the same way, one partition per query, as in
//! `schema/cql/`. [`AnyStore`] picks one from settings. Both pass the same conformance
//! suite (`tests/it/conformance.rs`).
//!
//! Callers see domain types from `starling-schema` and [`StoreError`]; no driver type leaks.
//! This crate knows nothing of HTTP, Redis or NATS.

use std::future::Future;

use starling_schema::Id;
use starling_schema::conversations::Conversation;
use starling_schema::feeds::{List, ListDraft, ListRef, Mark, MarkKind};
use starling_schema::media::{MediaAttachment, NewMedia, ProfileImages};
use starling_schema::model::{
    Account, AccountCounts, App, AuthCode, Created, ImportAccount, IssuedApp, IssuedToken,
    NewAccount, NewApp, NewNotification, NewPost, NewToken, Notification, NotificationKind, Page,
    Post, PostCounts, Relationship, Role, TokenInfo, ViewerFlags, Window,
};
use starling_schema::polls::{Poll, PostEdit, PostVersion};
use starling_schema::profile::ProfileUpdate;
use starling_schema::push::PushSubscription;
use starling_schema::settings::{Settings, StoreBackend};
use starling_schema::startup::{
    Announcement, Filter, FilterDraft, Marker, MarkerTimeline, NewAnnouncement,
};

pub mod embedded;
mod error;
pub mod scylla;
mod secrets;

pub use error::{Result, StoreError};
/// The at-rest form of a token: callers that cache token lookups key them by this.
pub use secrets::digest as token_digest;

/// Most ids one batch call accepts.
pub const MAX_BATCH: usize = 1_000;
/// Most items one page returns. Fan-out pages followers in pages this large.
pub const MAX_PAGE: usize = 10_000;
/// How long an `Idempotency-Key` keeps returning the first post (Mastodon: one hour).
pub const IDEMPOTENCY_TTL_MS: u64 = 3_600_000;
/// Version of the data layout; `starling migrate` records it.
pub const SCHEMA_VERSION: u32 = 12;
/// How long an authorization code may wait to be exchanged (Doorkeeper's default).
pub const AUTH_CODE_TTL_MS: u64 = 600_000;

/// The system of record. Every method is one logical operation that either happens whole
/// or not at all, and that is safe to retry: repeating a follow, favourite, block or
/// delete changes nothing the second time.
///
/// Batch reads return results in the order of the ids asked for, skipping ids that do not
/// exist (or are deleted); per-id lookups that always answer (counts, flags,
/// relationships) return one entry per id asked for.
pub trait Store: Send + Sync + 'static {
    // ---- accounts -------------------------------------------------------------------

    /// Create a local account. The username is unique case-insensitively (see
    /// `starling_schema::validate::username_key`); the password is stored as an argon2id hash.
    fn create_account(&self, new: NewAccount) -> impl Future<Output = Result<Account>> + Send;
    /// Create many accounts at once without passwords (they sign in with issued tokens), for
    /// bulk imports where hashing a password per account would take hours. Usernames
    /// already taken are skipped; returns the accounts created, in input order. Invalid
    /// usernames reject the whole batch before anything is written.
    fn import_accounts(
        &self,
        accounts: Vec<ImportAccount>,
    ) -> impl Future<Output = Result<Vec<Account>>> + Send;
    fn accounts_by_ids(&self, ids: &[Id]) -> impl Future<Output = Result<Vec<Account>>> + Send;
    /// Look up by username, in any case or width.
    fn accounts_by_usernames(
        &self,
        usernames: &[&str],
    ) -> impl Future<Output = Result<Vec<Account>>> + Send;
    /// Counts of each of `ids`, in the order asked (zero for unknown ids). Any number of
    /// ids: a page of posts can mention more accounts than [`MAX_BATCH`], so backends read
    /// them a batch at a time rather than refusing.
    fn account_counts(&self, ids: &[Id])
    -> impl Future<Output = Result<Vec<AccountCounts>>> + Send;
    /// The account registered with this email address, in any case and with surrounding
    /// blanks ignored. One address belongs to at most one account: `create_account`
    /// refuses an address already taken with `Conflict`, and `delete_account` frees it.
    fn account_by_email(&self, email: &str)
    -> impl Future<Output = Result<Option<Account>>> + Send;
    /// The account whose username and password these are, or `Unauthorized`.
    fn verify_password(
        &self,
        username: &str,
        password: &str,
    ) -> impl Future<Output = Result<Account>> + Send;
    /// The owner's edit of their profile (`starling_schema::profile::apply` decides what
    /// is allowed: `Invalid` and nothing written otherwise). Returns the account as it now
    /// is; `NotFound` if there is none. Concurrent edits of different parts may overwrite
    /// each other (the last one wins whole).
    fn update_profile(
        &self,
        id: Id,
        update: ProfileUpdate,
    ) -> impl Future<Output = Result<Account>> + Send;

    // ---- apps and tokens ------------------------------------------------------------

    /// Register a client app; its secret is returned once and stored only as a hash.
    fn create_app(&self, new: NewApp) -> impl Future<Output = Result<IssuedApp>> + Send;
    /// The app whose client id and secret these are, or `Unauthorized`.
    fn verify_app(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> impl Future<Output = Result<App>> + Send;
    /// Issue a bearer token; the token is returned once and stored only as a hash.
    fn issue_token(&self, new: NewToken) -> impl Future<Output = Result<IssuedToken>> + Send;
    /// What a presented token grants: `None` when unknown, revoked or expired.
    fn token(&self, token: &str) -> impl Future<Output = Result<Option<TokenInfo>>> + Send;
    /// Revoke by the token's hash (`TokenInfo::token_hash`). True if it existed.
    fn revoke_token(&self, token_hash: &str) -> impl Future<Output = Result<bool>> + Send;
    fn tokens_of(&self, account: Id) -> impl Future<Output = Result<Vec<TokenInfo>>> + Send;

    // ---- authorization codes (schema version 3) ---------------------------------------

    /// An app by its public client id (the authorize page shows it), or `None`.
    fn app_by_client_id(&self, client_id: &str)
    -> impl Future<Output = Result<Option<App>>> + Send;
    /// An app by its id (a token names its app by id), or `None`. Apps registered before
    /// schema version 3 on ScyllaDB are not found this way.
    fn app_by_id(&self, id: Id) -> impl Future<Output = Result<Option<App>>> + Send;
    /// Keep an authorization code for `code.expires_at_ms`; returns the code, which is
    /// stored only as a digest and shown exactly once.
    fn create_auth_code(&self, code: AuthCode) -> impl Future<Output = Result<String>> + Send;
    /// Use up a code: the first call with a live code returns what it was issued for and
    /// removes it; any later call, an unknown or an expired code returns `None`.
    fn take_auth_code(&self, code: &str) -> impl Future<Output = Result<Option<AuthCode>>> + Send;

    // ---- follows --------------------------------------------------------------------

    /// True if the follow is new. `Forbidden` if either account blocks the other.
    fn follow(&self, follower: Id, followee: Id) -> impl Future<Output = Result<bool>> + Send;
    /// True if there was a follow (or a pending follow request) to remove.
    fn unfollow(&self, follower: Id, followee: Id) -> impl Future<Output = Result<bool>> + Send;
    /// Who follows `account`, ordered by follower id. Pages stream any number of followers.
    fn followers(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Whom `account` follows, ordered by followee id.
    fn following(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;

    // ---- follow requests (schema version 6) ---------------------------------------------

    /// `follower` asks to follow `followee` (a locked account). True if the request is new;
    /// false if one is pending already or `follower` follows `followee` already.
    /// `Forbidden` if either account blocks the other. [`Store::unfollow`] withdraws it.
    fn request_follow(
        &self,
        follower: Id,
        followee: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Who asked to follow `account` and waits, ordered by requester id.
    fn follow_requests(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// `account` accepts `requester`'s pending request: the request becomes a follow, with
    /// its counts. True for the one call that decided it; false when there was no pending
    /// request (never asked, or already authorized or rejected, by a concurrent call too).
    fn authorize_follow_request(
        &self,
        account: Id,
        requester: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// `account` turns `requester`'s pending request down. True for the one call that
    /// decided it, as [`Store::authorize_follow_request`].
    fn reject_follow_request(
        &self,
        account: Id,
        requester: Id,
    ) -> impl Future<Output = Result<bool>> + Send;

    // ---- muted conversations (schema version 6) -----------------------------------------

    /// `account` mutes the thread whose root post is `root` (see
    /// `starling_schema::thread::root_of`). True if new; `NotFound` if the account is missing.
    fn mute_conversation(&self, account: Id, root: Id)
    -> impl Future<Output = Result<bool>> + Send;
    /// True if the thread was muted.
    fn unmute_conversation(
        &self,
        account: Id,
        root: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// For each of `roots`, in order, whether `account` muted that thread.
    fn muted_conversations(
        &self,
        account: Id,
        roots: &[Id],
    ) -> impl Future<Output = Result<Vec<bool>>> + Send;

    // ---- posts ----------------------------------------------------------------------

    /// Create a post. With an idempotency key, the same author and key within
    /// [`IDEMPOTENCY_TTL_MS`] return the first post (`created == false`).
    fn create_post(
        &self,
        new: NewPost,
        idempotency_key: Option<&str>,
    ) -> impl Future<Output = Result<Created<Post>>> + Send;
    /// Live posts among `ids`, in the order asked.
    fn posts_by_ids(&self, ids: &[Id]) -> impl Future<Output = Result<Vec<Post>>> + Send;
    /// Tombstone a post. Returns it if it was live, `None` if already deleted or unknown.
    fn delete_post(&self, id: Id) -> impl Future<Output = Result<Option<Post>>> + Send;
    /// An author's live posts (reblogs included) by id.
    fn posts_by_author(
        &self,
        author: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Post>>> + Send;
    fn post_counts(&self, ids: &[Id]) -> impl Future<Output = Result<Vec<PostCounts>>> + Send;

    // ---- favourites and reblogs ------------------------------------------------------

    /// True if new. `NotFound` if the post is not live.
    fn favourite(&self, account: Id, post: Id) -> impl Future<Output = Result<bool>> + Send;
    fn unfavourite(&self, account: Id, post: Id) -> impl Future<Output = Result<bool>> + Send;
    /// Who favourited `post`, ordered by account id.
    fn favourited_by(
        &self,
        post: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Reblog a post (a reblog of a reblog reblogs the original). Reblogging again returns
    /// the existing wrapper with `created == false`. Private and direct posts cannot be
    /// reblogged by others (`Forbidden`).
    fn reblog(&self, account: Id, post: Id) -> impl Future<Output = Result<Created<Post>>> + Send;
    /// Remove `account`'s reblog of `post`; returns the removed wrapper.
    fn unreblog(&self, account: Id, post: Id) -> impl Future<Output = Result<Option<Post>>> + Send;
    /// Who reblogged `post`, ordered by account id.
    fn reblogged_by(
        &self,
        post: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// For each post, whether `viewer` favourited or reblogged it.
    fn viewer_flags(
        &self,
        viewer: Id,
        posts: &[Id],
    ) -> impl Future<Output = Result<Vec<ViewerFlags>>> + Send;

    // ---- blocks and mutes -----------------------------------------------------------

    /// True if new. Removes follows and pending follow requests in both directions.
    fn block(&self, account: Id, target: Id) -> impl Future<Output = Result<bool>> + Send;
    fn unblock(&self, account: Id, target: Id) -> impl Future<Output = Result<bool>> + Send;
    /// True if new or changed. `notifications` also hides the target's notifications.
    fn mute(
        &self,
        account: Id,
        target: Id,
        notifications: bool,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn unmute(&self, account: Id, target: Id) -> impl Future<Output = Result<bool>> + Send;
    /// Whom `account` blocks, ordered by id.
    fn blocks_of(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Whom `account` mutes, ordered by id.
    fn mutes_of(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// How `account` relates to each of `targets`.
    fn relationships(
        &self,
        account: Id,
        targets: &[Id],
    ) -> impl Future<Output = Result<Vec<Relationship>>> + Send;

    // ---- notifications --------------------------------------------------------------

    /// Notify an account. At most one notification exists per (account, kind, from, post):
    /// a repeat (a redelivered event, a favourite undone and done again) returns `None`
    /// and changes nothing, even after the first was dismissed or cleared.
    fn notify(
        &self,
        new: NewNotification,
    ) -> impl Future<Output = Result<Option<Notification>>> + Send;
    /// `account`'s notifications by id, optionally only some kinds.
    fn notifications(
        &self,
        account: Id,
        window: Window,
        kinds: Option<&[NotificationKind]>,
    ) -> impl Future<Output = Result<Page<Notification>>> + Send;
    fn notification(
        &self,
        account: Id,
        id: Id,
    ) -> impl Future<Output = Result<Option<Notification>>> + Send;
    /// True if it existed.
    fn dismiss_notification(
        &self,
        account: Id,
        id: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Remove all of `account`'s notifications; returns how many.
    fn clear_notifications(&self, account: Id) -> impl Future<Output = Result<u64>> + Send;

    // ---- conversations, public and tag timelines, who shuns whom ----------------------

    /// Live direct replies to `post`, by id (a conversation is walked a level at a time).
    fn replies_to(&self, post: Id, window: Window)
    -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Live public posts (not reblogs, not unlisted, private or direct), by id: the
    /// public timeline. Every account is local, so it is also the local timeline.
    fn public_posts(&self, window: Window) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Live public posts carrying hashtag `tag` (lower-cased, without `#`), by id.
    fn tagged_posts(
        &self,
        tag: &str,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Who blocks `account`, ordered by id.
    fn blocked_by(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Who mutes `account`, ordered by id.
    fn muted_by(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;

    // ---- event outbox ---------------------------------------------------------------

    /// Keep an event that could not be published yet, durably, in this node's outbox.
    /// Returns its outbox id (outbox ids increase in push order).
    fn outbox_push(&self, payload: Vec<u8>) -> impl Future<Output = Result<Id>> + Send;
    /// This node's oldest waiting events, up to `limit`, with their outbox ids.
    fn outbox_peek(&self, limit: usize) -> impl Future<Output = Result<Vec<(Id, Vec<u8>)>>> + Send;
    /// Forget an event once it is published. Removing an absent id is not an error.
    fn outbox_remove(&self, id: Id) -> impl Future<Output = Result<()>> + Send;

    // ---- full scans (index rebuilds) ---------------------------------------------------

    /// Every live post, a page at a time: up to `limit` (at most [`MAX_BATCH`]) after the
    /// cursor `after` (`None`: from the start), and the cursor of the next page (`None`:
    /// done). The order is the backend's own (id order embedded, token order on ScyllaDB);
    /// a page may hold fewer than `limit` posts (deleted ones are skipped) and still have a next.
    fn scan_posts(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> impl Future<Output = Result<Scan<Post>>> + Send;
    /// Every account, a page at a time, as [`Store::scan_posts`].
    fn scan_accounts(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> impl Future<Output = Result<Scan<Account>>> + Send;

    // ---- admin (the operator's commands) --------------------------------------------

    /// Suspend or unsuspend an account and/or change its role; `None` leaves a field as it
    /// is. Returns the account as it now is; `NotFound` if there is none.
    fn moderate_account(
        &self,
        id: Id,
        suspended: Option<bool>,
        role: Option<Role>,
    ) -> impl Future<Output = Result<Account>> + Send;
    /// Follow edges in bulk, for imports: each `(follower, followee)` not yet followed is
    /// added with its counts, as [`Store::follow`] would; self-follows, edges already
    /// present and edges a block forbids are skipped. At most [`MAX_PAGE`] edges per call.
    /// `NotFound` (nothing written on the embedded store) if an account is missing.
    /// Returns how many follows were new.
    fn import_follows(&self, edges: Vec<(Id, Id)>) -> impl Future<Output = Result<u64>> + Send;
    /// Remove an account for good: its row, its username (free again), credentials,
    /// tokens, counts, and its follows in both directions (the other sides' counts follow).
    /// Its posts are the caller's to delete first, each with its own event. True if it
    /// existed.
    fn delete_account(&self, id: Id) -> impl Future<Output = Result<bool>> + Send;
    /// Overwrite an account's follower, following and status counts with values recounted
    /// from the rows (`counts.last_status_at_ms` is ignored). `NotFound` if there is no
    /// such account. Concurrent follows during a recount may leave a count off by their
    /// number; recount again when it is quiet.
    fn set_account_counts(
        &self,
        id: Id,
        counts: AccountCounts,
    ) -> impl Future<Output = Result<()>> + Send;

    // ---- start-up state: read markers, filters, announcements --------------------------

    /// `account`'s read markers, one per timeline that has one, in timeline order.
    fn markers(&self, account: Id) -> impl Future<Output = Result<Vec<Marker>>> + Send;
    /// Move a read marker to `last_read_id`, adding one to its version (the first is 1).
    /// Concurrent updates each count: none is lost.
    fn set_marker(
        &self,
        account: Id,
        timeline: MarkerTimeline,
        last_read_id: Id,
    ) -> impl Future<Output = Result<Marker>> + Send;
    /// `account`'s filters, expired ones included, by id.
    fn filters_of(&self, account: Id) -> impl Future<Output = Result<Vec<Filter>>> + Send;
    /// Create a filter (`draft.id` is `None`) or replace one of `account`'s whole
    /// (`NotFound` if it has no such filter). Keywords and statuses without an id get new
    /// ids; one with an id must already be in the filter (`NotFound` otherwise). At most
    /// [`starling_schema::startup::MAX_FILTERS`] filters per account; the draft is
    /// validated (`Invalid`) before anything is written.
    fn save_filter(
        &self,
        account: Id,
        draft: FilterDraft,
    ) -> impl Future<Output = Result<Filter>> + Send;
    /// True if `account` had the filter.
    fn delete_filter(&self, account: Id, id: Id) -> impl Future<Output = Result<bool>> + Send;
    /// Publish an announcement to every user.
    fn create_announcement(
        &self,
        new: NewAnnouncement,
    ) -> impl Future<Output = Result<Announcement>> + Send;
    /// Every announcement, newest first (ended ones included: callers decide what shows).
    fn announcements(&self) -> impl Future<Output = Result<Vec<Announcement>>> + Send;
    /// True if it existed.
    fn delete_announcement(&self, id: Id) -> impl Future<Output = Result<bool>> + Send;
    /// Mark an announcement read by `account`. True if newly dismissed; `NotFound` if
    /// there is no such announcement.
    fn dismiss_announcement(
        &self,
        account: Id,
        id: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The announcements `account` dismissed, by id.
    fn dismissed_announcements(&self, account: Id) -> impl Future<Output = Result<Vec<Id>>> + Send;

    // ---- media attachments (schema version 7) -----------------------------------------

    /// Keep a new upload's record (state `Processing`); returns it with its id.
    fn create_media(&self, new: NewMedia) -> impl Future<Output = Result<MediaAttachment>> + Send;
    /// Uploads among `ids`, in the order asked, skipping unknown ones.
    fn media_by_ids(&self, ids: &[Id])
    -> impl Future<Output = Result<Vec<MediaAttachment>>> + Send;
    /// Replace an upload's record (processing results, a new description). Which post it
    /// is attached to is not changed by this: only [`Store::attach_media`] sets it.
    /// `NotFound` if it was deleted meanwhile.
    fn update_media(&self, media: MediaAttachment) -> impl Future<Output = Result<()>> + Send;
    /// Attach `ids` (in that order) to `post`, all or none: each must pass
    /// `starling_schema::media::check_attach` for `account` (`NotFound`, `Forbidden`,
    /// `Conflict` or `Invalid` otherwise). Attaching again to the same post changes nothing.
    fn attach_media(
        &self,
        account: Id,
        post: Id,
        ids: &[Id],
    ) -> impl Future<Output = Result<Vec<MediaAttachment>>> + Send;
    /// The attachments of each of `posts`, grouped by post in the order asked, each post's
    /// in the order they were attached.
    fn media_of_posts(
        &self,
        posts: &[Id],
    ) -> impl Future<Output = Result<Vec<MediaAttachment>>> + Send;
    /// Remove an upload's record (its files are the caller's). Returns it if it existed.
    fn delete_media(&self, id: Id) -> impl Future<Output = Result<Option<MediaAttachment>>> + Send;
    /// Every upload, a page at a time, as [`Store::scan_posts`].
    fn scan_media(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> impl Future<Output = Result<Scan<MediaAttachment>>> + Send;
    /// Replace an account's avatar and header keys; returns what they were (the caller
    /// removes the old files). `NotFound` if there is no such account.
    fn set_profile_images(
        &self,
        account: Id,
        images: ProfileImages,
    ) -> impl Future<Output = Result<ProfileImages>> + Send;
    /// The avatar and header keys of each of `accounts`, in the order asked (defaults for
    /// accounts that never set one).
    fn profile_images(
        &self,
        accounts: &[Id],
    ) -> impl Future<Output = Result<Vec<ProfileImages>>> + Send;
    // ---- web push (schema version 8) ---------------------------------------------------

    /// Keep `sub` as its access token's push subscription (one per token), replacing the
    /// one that token had.
    fn save_push_subscription(
        &self,
        sub: PushSubscription,
    ) -> impl Future<Output = Result<()>> + Send;
    /// `account`'s push subscriptions, one per access token, by token hash.
    fn push_subscriptions_of(
        &self,
        account: Id,
    ) -> impl Future<Output = Result<Vec<PushSubscription>>> + Send;
    /// Remove the subscription of the token with this hash. True if there was one.
    fn delete_push_subscription(
        &self,
        account: Id,
        token_hash: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The server key named `name`: the first value ever offered for it. Offers `candidate`:
    /// kept if none is yet, so concurrent first callers on any node agree on one value.
    fn server_key(
        &self,
        name: &str,
        candidate: String,
    ) -> impl Future<Output = Result<String>> + Send;
    // ---- lists and marks (schema version 9) -------------------------------------------

    /// Create a list of `owner`'s (at most [`starling_schema::feeds::MAX_LISTS`];
    /// the draft is validated first, `Invalid` otherwise).
    fn create_list(&self, owner: Id, draft: ListDraft)
    -> impl Future<Output = Result<List>> + Send;
    /// Replace a list's title and settings; `NotFound` unless `owner` owns list `id`. The
    /// members' [`ListRef`]s follow.
    fn update_list(
        &self,
        owner: Id,
        id: Id,
        draft: ListDraft,
    ) -> impl Future<Output = Result<List>> + Send;
    /// Delete one of `owner`'s lists and its memberships. True if it existed.
    fn delete_list(&self, owner: Id, id: Id) -> impl Future<Output = Result<bool>> + Send;
    /// `owner`'s lists, by id.
    fn lists_of(&self, owner: Id) -> impl Future<Output = Result<Vec<List>>> + Send;
    /// The members of list `list`, by account id.
    fn list_members(
        &self,
        list: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Add accounts to one of `owner`'s lists (`NotFound` unless it is theirs). Each must
    /// be an account `owner` follows (`Invalid` otherwise, nothing written); adding a
    /// member again changes nothing. At most [`starling_schema::feeds::MAX_LIST_MEMBERS`]
    /// per list.
    fn add_list_members(
        &self,
        owner: Id,
        list: Id,
        accounts: &[Id],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Remove accounts from one of `owner`'s lists (`NotFound` unless it is theirs).
    fn remove_list_members(
        &self,
        owner: Id,
        list: Id,
        accounts: &[Id],
    ) -> impl Future<Output = Result<()>> + Send;
    /// The lists holding `member` whose owners are after `owners_after` (exclusive) and up
    /// to `owners_through` (inclusive), by owner then list: fan-out reads the range of the
    /// follower page it writes (owners of lists holding an account follow it). An unfollow
    /// (or a block) takes the followee out of the follower's lists.
    fn lists_with_member(
        &self,
        member: Id,
        owners_after: Option<Id>,
        owners_through: Option<Id>,
    ) -> impl Future<Output = Result<Vec<ListRef>>> + Send;
    /// Keep a live post as a bookmark or pin of `account`'s (favourites are kept by
    /// [`Store::favourite`]). True if new. `NotFound` if the post is not live; a pin must be
    /// `account`'s own original, not direct, and one of at most
    /// [`starling_schema::feeds::MAX_PINS`] (`Invalid` otherwise).
    fn mark(
        &self,
        kind: MarkKind,
        account: Id,
        post: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// True if it was kept.
    fn unmark(
        &self,
        kind: MarkKind,
        account: Id,
        post: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// What `account` kept of `kind`, by mark id (the order they were kept in).
    fn marks(
        &self,
        kind: MarkKind,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Mark>>> + Send;

    /// Follow hashtag `tag` (lower-cased, without `#`; checked by
    /// [`starling_schema::feeds::check_tag`]). True if new. At most
    /// [`starling_schema::feeds::MAX_FOLLOWED_TAGS`] per account (`Invalid`).
    fn follow_tag(&self, account: Id, tag: &str) -> impl Future<Output = Result<bool>> + Send;
    /// True if it was followed.
    fn unfollow_tag(&self, account: Id, tag: &str) -> impl Future<Output = Result<bool>> + Send;
    /// The hashtags `account` follows, by name.
    fn followed_tags(&self, account: Id) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Who follows hashtag `tag`, ordered by account id: fan-out pages them like an
    /// author's followers.
    fn tag_followers(
        &self,
        tag: &str,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;

    // ---- edits and polls (schema version 10) -------------------------------------------

    /// `author` edits live post `id` (`NotFound` if it is not live, `Forbidden` if it is
    /// someone else's or a reblog; `Invalid`, nothing written, if the edit breaks the rules
    /// of a new post). The version it replaces is kept in its history; its listing under
    /// hashtags follows the new text; `edit.media_ids` become its attachments (each must
    /// pass `starling_schema::media::check_attach`); `edit.poll` keeps the poll when it asks
    /// the same question and makes a new one otherwise. Returns the post as it now is, with
    /// `edited_at_ms` set.
    fn update_post(
        &self,
        author: Id,
        id: Id,
        edit: PostEdit,
    ) -> impl Future<Output = Result<Post>> + Send;
    /// The versions of post `id`, oldest first, the current one last (one version for a
    /// post never edited; none for a post that is not live).
    fn post_versions(&self, id: Id) -> impl Future<Output = Result<Vec<PostVersion>>> + Send;
    /// Polls among `ids` with their results, in the order asked, skipping unknown ones.
    fn polls_by_ids(&self, ids: &[Id]) -> impl Future<Output = Result<Vec<Poll>>> + Send;
    /// For each of `polls`, the choices `account` voted for (`None`: no vote).
    fn poll_votes(
        &self,
        account: Id,
        polls: &[Id],
    ) -> impl Future<Output = Result<Vec<Option<Vec<u32>>>>> + Send;
    /// `account` votes `choices` in `poll`, once: `starling_schema::polls::check_vote`
    /// decides what may be voted (`Invalid` otherwise); a second vote by the same account is
    /// `Invalid` too, even when both race. Every vote that returns is counted exactly once.
    /// `NotFound` if there is no such poll. Returns the poll with its results.
    fn vote(
        &self,
        account: Id,
        poll: Id,
        choices: &[u32],
    ) -> impl Future<Output = Result<Poll>> + Send;
    /// Who voted in `poll`, by account id.
    fn poll_voters(
        &self,
        poll: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;
    /// Up to `limit` polls whose end is at or before `until_ms` and not yet seen to, with
    /// their end, soonest first: the due list of the poll-expiry job, kept in the store so
    /// that it survives restarts.
    fn due_polls(
        &self,
        until_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Id, u64)>>> + Send;
    /// Take the expiry of `poll` for `lease_ms`: true for one caller at a time; a caller
    /// that dies leaves it to be taken again once the lease lapses.
    fn claim_poll_expiry(
        &self,
        poll: Id,
        lease_ms: u64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The expiry of `poll` is seen to: off the due list for good.
    fn finish_poll_expiry(&self, poll: Id) -> impl Future<Output = Result<()>> + Send;
    // ---- direct conversations (schema version 11) ---------------------------------------

    /// Direct post `post`, among `participants` (see
    /// `starling_schema::conversations::participants`), reached `account`, one of them:
    /// their view of that conversation takes it as its newest post
    /// (`ConversationState::with_post` decides; `unread` when someone else wrote it).
    /// Returns the view when it changed and shows; `None` when nothing changed (an older
    /// post, a replay, a post from before the account removed the conversation).
    fn add_to_conversation(
        &self,
        account: Id,
        participants: &[Id],
        post: Id,
        unread: bool,
    ) -> impl Future<Output = Result<Option<Conversation>>> + Send;
    /// Direct post `post` of conversation `conversation` was deleted: it leaves `account`'s
    /// view, which falls back to their newest other post of it, or hides when none is left.
    /// Returns the view when it changed and still shows.
    fn remove_from_conversation(
        &self,
        account: Id,
        conversation: Id,
        post: Id,
    ) -> impl Future<Output = Result<Option<Conversation>>> + Send;
    /// `account`'s visible conversations, by the id of their newest post (the window bounds
    /// are post ids, as Mastodon pages conversations by `last_status_id`).
    fn conversations(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Conversation>>> + Send;
    /// `account`'s view of conversation `id`, if they take part and it shows.
    fn conversation(
        &self,
        account: Id,
        id: Id,
    ) -> impl Future<Output = Result<Option<Conversation>>> + Send;
    /// Mark `account`'s view of conversation `id` read; `None` if they have no such
    /// visible conversation.
    fn read_conversation(
        &self,
        account: Id,
        id: Id,
    ) -> impl Future<Output = Result<Option<Conversation>>> + Send;
    /// Remove conversation `id` from `account`'s conversations (theirs only; a newer direct
    /// post in it brings it back). True if it showed.
    fn remove_conversation(&self, account: Id, id: Id)
    -> impl Future<Output = Result<bool>> + Send;
    // ---- who to follow (schema version 12) ----------------------------------------------

    /// `account` no longer wants `target` suggested to it (`DELETE /api/v1/suggestions/:id`),
    /// for good. True if new; `NotFound` if either account is missing.
    fn dismiss_suggestion(
        &self,
        account: Id,
        target: Id,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Whom `account` dismissed from its suggestions, ordered by id.
    fn dismissed_suggestions(
        &self,
        account: Id,
        window: Window,
    ) -> impl Future<Output = Result<Page<Id>>> + Send;

    // ---- operations -----------------------------------------------------------------

    /// Cheap round trip for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;
}

/// Every id of a paged id list, oldest first, a [`MAX_BATCH`] page at a time: for the
/// lists of one account that callers need whole (whom it follows, blocks, mutes; who mutes
/// or blocks it).
pub async fn all_ids<F, Fut>(mut read: F) -> Result<Vec<Id>>
where
    F: FnMut(Window) -> Fut,
    Fut: Future<Output = Result<Page<Id>>>,
{
    let mut all = Vec::new();
    let mut window = Window::oldest(MAX_BATCH);
    loop {
        let page = read(window).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => window = next,
            None => return Ok(all),
        }
    }
}

/// The root of the thread `post` belongs to, read from the store (see
/// `starling_schema::thread::root_of`).
pub async fn thread_root<S: Store>(store: &S, post: &Post) -> Result<Id> {
    starling_schema::thread::root_of(post.id, post.in_reply_to_id, |id| async move {
        Ok(store
            .posts_by_ids(&[id])
            .await?
            .first()
            .and_then(|p| p.in_reply_to_id))
    })
    .await
}

/// One page of a full scan and the cursor of the next (`None` when the scan is done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan<T> {
    pub items: Vec<T>,
    pub next: Option<Id>,
}

/// The backend chosen by `store.backend`.
#[derive(Clone)]
pub enum AnyStore {
    Embedded(embedded::EmbeddedStore),
    Scylla(scylla::ScyllaStore),
}

impl AnyStore {
    /// Open the configured backend. ScyllaDB applies its schema first when
    /// `store.scylla.migrate_on_start` is set.
    pub async fn open(settings: &Settings) -> Result<AnyStore> {
        match settings.store.backend {
            StoreBackend::Embedded => Ok(AnyStore::Embedded(embedded::EmbeddedStore::open(
                &settings.store.embedded,
                settings.node_id,
                settings.limits.clone(),
            )?)),
            StoreBackend::Scylla => Ok(AnyStore::Scylla(
                scylla::ScyllaStore::connect(
                    &settings.store.scylla,
                    settings.node_id,
                    settings.limits.clone(),
                )
                .await?,
            )),
        }
    }

    /// Apply the configured backend's schema (idempotent) and return the version now in
    /// place. Works on a cluster that has no Starling tables yet.
    pub async fn migrate(settings: &Settings) -> Result<u32> {
        match settings.store.backend {
            StoreBackend::Embedded => embedded::EmbeddedStore::open(
                &settings.store.embedded,
                settings.node_id,
                settings.limits.clone(),
            )?
            .migrate(),
            StoreBackend::Scylla => {
                scylla::ScyllaStore::migrate_cluster(&settings.store.scylla).await
            }
        }
    }
}

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )*) => {
        impl Store for AnyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        AnyStore::Embedded(s) => s.$name($($arg),*).await,
                        AnyStore::Scylla(s) => s.$name($($arg),*).await,
                    }
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
    fn account_counts(&self, ids: &[Id]) -> Result<Vec<AccountCounts>>;
    fn account_by_email(&self, email: &str) -> Result<Option<Account>>;
    fn verify_password(&self, username: &str, password: &str) -> Result<Account>;
    fn update_profile(&self, id: Id, update: ProfileUpdate) -> Result<Account>;
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
    fn posts_by_author(&self, author: Id, window: Window) -> Result<Page<Post>>;
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
    // event outbox
    fn outbox_push(&self, payload: Vec<u8>) -> Result<Id>;
    fn outbox_peek(&self, limit: usize) -> Result<Vec<(Id, Vec<u8>)>>;
    fn outbox_remove(&self, id: Id) -> Result<()>;
    fn scan_posts(&self, after: Option<Id>, limit: usize) -> Result<Scan<Post>>;
    fn scan_accounts(&self, after: Option<Id>, limit: usize) -> Result<Scan<Account>>;
    // admin
    fn moderate_account(&self, id: Id, suspended: Option<bool>, role: Option<Role>) -> Result<Account>;
    fn import_follows(&self, edges: Vec<(Id, Id)>) -> Result<u64>;
    fn delete_account(&self, id: Id) -> Result<bool>;
    fn set_account_counts(&self, id: Id, counts: AccountCounts) -> Result<()>;
    // start-up state
    fn markers(&self, account: Id) -> Result<Vec<Marker>>;
    fn set_marker(&self, account: Id, timeline: MarkerTimeline, last_read_id: Id) -> Result<Marker>;
    fn filters_of(&self, account: Id) -> Result<Vec<Filter>>;
    fn save_filter(&self, account: Id, draft: FilterDraft) -> Result<Filter>;
    fn delete_filter(&self, account: Id, id: Id) -> Result<bool>;
    fn create_announcement(&self, new: NewAnnouncement) -> Result<Announcement>;
    fn announcements(&self) -> Result<Vec<Announcement>>;
    fn delete_announcement(&self, id: Id) -> Result<bool>;
    fn dismiss_announcement(&self, account: Id, id: Id) -> Result<bool>;
    fn dismissed_announcements(&self, account: Id) -> Result<Vec<Id>>;
    // media attachments
    fn create_media(&self, new: NewMedia) -> Result<MediaAttachment>;
    fn media_by_ids(&self, ids: &[Id]) -> Result<Vec<MediaAttachment>>;
    fn update_media(&self, media: MediaAttachment) -> Result<()>;
    fn attach_media(&self, account: Id, post: Id, ids: &[Id]) -> Result<Vec<MediaAttachment>>;
    fn media_of_posts(&self, posts: &[Id]) -> Result<Vec<MediaAttachment>>;
    fn delete_media(&self, id: Id) -> Result<Option<MediaAttachment>>;
    fn scan_media(&self, after: Option<Id>, limit: usize) -> Result<Scan<MediaAttachment>>;
    fn set_profile_images(&self, account: Id, images: ProfileImages) -> Result<ProfileImages>;
    fn profile_images(&self, accounts: &[Id]) -> Result<Vec<ProfileImages>>;
    // web push
    fn save_push_subscription(&self, sub: PushSubscription) -> Result<()>;
    fn push_subscriptions_of(&self, account: Id) -> Result<Vec<PushSubscription>>;
    fn delete_push_subscription(&self, account: Id, token_hash: &str) -> Result<bool>;
    fn server_key(&self, name: &str, candidate: String) -> Result<String>;
    // lists and marks
    fn create_list(&self, owner: Id, draft: ListDraft) -> Result<List>;
    fn update_list(&self, owner: Id, id: Id, draft: ListDraft) -> Result<List>;
    fn delete_list(&self, owner: Id, id: Id) -> Result<bool>;
    fn lists_of(&self, owner: Id) -> Result<Vec<List>>;
    fn list_members(&self, list: Id, window: Window) -> Result<Page<Id>>;
    fn add_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()>;
    fn remove_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()>;
    fn lists_with_member(&self, member: Id, owners_after: Option<Id>, owners_through: Option<Id>) -> Result<Vec<ListRef>>;
    fn mark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool>;
    fn unmark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool>;
    fn marks(&self, kind: MarkKind, account: Id, window: Window) -> Result<Page<Mark>>;
    fn follow_tag(&self, account: Id, tag: &str) -> Result<bool>;
    fn unfollow_tag(&self, account: Id, tag: &str) -> Result<bool>;
    fn followed_tags(&self, account: Id) -> Result<Vec<String>>;
    fn tag_followers(&self, tag: &str, window: Window) -> Result<Page<Id>>;
    fn update_post(&self, author: Id, id: Id, edit: PostEdit) -> Result<Post>;
    fn post_versions(&self, id: Id) -> Result<Vec<PostVersion>>;
    fn polls_by_ids(&self, ids: &[Id]) -> Result<Vec<Poll>>;
    fn poll_votes(&self, account: Id, polls: &[Id]) -> Result<Vec<Option<Vec<u32>>>>;
    fn vote(&self, account: Id, poll: Id, choices: &[u32]) -> Result<Poll>;
    fn poll_voters(&self, poll: Id, window: Window) -> Result<Page<Id>>;
    fn due_polls(&self, until_ms: u64, limit: usize) -> Result<Vec<(Id, u64)>>;
    fn claim_poll_expiry(&self, poll: Id, lease_ms: u64) -> Result<bool>;
    fn finish_poll_expiry(&self, poll: Id) -> Result<()>;
    // direct conversations
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

/// The store's answer to an attachment `check_attach` refuses.
pub(crate) fn attach_refused(refusal: starling_schema::media::AttachRefusal) -> StoreError {
    use starling_schema::media::AttachRefusal;
    match refusal {
        AttachRefusal::NotFound => StoreError::NotFound("media"),
        AttachRefusal::NotOwner => StoreError::Forbidden("media belongs to another account"),
        AttachRefusal::AttachedElsewhere => {
            StoreError::Conflict("media is already attached to another post".into())
        }
        AttachRefusal::Processing | AttachRefusal::Failed => StoreError::Invalid(
            starling_schema::Invalid::new("media_ids", refusal.to_string()),
        ),
    }
}

/// The store's answer to a vote `check_vote` refuses (Mastodon answers each with 422).
pub(crate) fn vote_refused(refusal: starling_schema::polls::VoteRefusal) -> StoreError {
    StoreError::Invalid(starling_schema::Invalid::new("poll", refusal.to_string()))
}

/// Checks every backend applies before touching data, so both reject the same inputs.
pub(crate) mod check {
    use starling_schema::Invalid;
    use starling_schema::model::Window;

    use crate::{MAX_BATCH, MAX_PAGE, StoreError};

    pub fn scan_limit(limit: usize) -> Result<(), StoreError> {
        if limit == 0 || limit > MAX_BATCH {
            return Err(Invalid::new("limit", format!("must be 1 to {MAX_BATCH}")).into());
        }
        Ok(())
    }

    pub fn edges(edges: usize) -> Result<(), StoreError> {
        if edges > MAX_PAGE {
            return Err(Invalid::new("edges", format!("at most {MAX_PAGE} per request")).into());
        }
        Ok(())
    }

    pub fn batch(ids: usize) -> Result<(), StoreError> {
        if ids > MAX_BATCH {
            return Err(Invalid::new("ids", format!("at most {MAX_BATCH} per request")).into());
        }
        Ok(())
    }

    pub fn window(w: &Window) -> Result<(), StoreError> {
        if w.limit == 0 || w.limit > MAX_PAGE {
            return Err(Invalid::new("limit", format!("must be 1 to {MAX_PAGE}")).into());
        }
        Ok(())
    }

    pub fn distinct(a: starling_schema::Id, b: starling_schema::Id) -> Result<(), StoreError> {
        if a == b {
            return Err(Invalid::new("id", "cannot target your own account").into());
        }
        Ok(())
    }
}
