//! The domain: what the system of record holds. Plain data; no I/O.
//!
//! Timestamps are milliseconds since the Unix epoch (`*_ms`); the HTTP layer renders them.

use serde::{Deserialize, Serialize};

use crate::ids::Id;

/// An account's role on the instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    User,
    Admin,
}

/// A local account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: Id,
    /// As the user typed it (NFC); unique by its [`crate::validate::username_key`].
    pub username: String,
    pub display_name: String,
    pub note: String,
    pub locked: bool,
    pub bot: bool,
    pub role: Role,
    pub suspended: bool,
    pub created_at_ms: u64,
    /// What only the owner edits (fields, post defaults); older rows read the default.
    #[serde(default)]
    pub profile: crate::profile::Profile,
}

impl Account {
    /// A new local account as every backend creates it (registration and imports alike):
    /// unlocked, not suspended, empty note, default profile, created when its id was minted.
    pub fn local(id: Id, username: String, display_name: String, bot: bool, role: Role) -> Account {
        Account {
            id,
            username,
            display_name,
            note: String::new(),
            locked: false,
            bot,
            role,
            suspended: false,
            created_at_ms: id.unix_ms(),
            profile: crate::profile::Profile::default(),
        }
    }
}

/// What registration supplies. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub username: String,
    pub email: Option<String>,
    /// Plain text; hashed with argon2id before it is stored, never stored or logged as is.
    pub password: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub bot: bool,
}

/// An account created by a bulk import: no password, so it signs in only with tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportAccount {
    pub username: String,
    pub display_name: Option<String>,
    pub bot: bool,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("bot", &self.bot)
            .finish()
    }
}

/// Counters shown on an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCounts {
    pub followers: u64,
    pub following: u64,
    pub statuses: u64,
    /// When the account last posted, if ever.
    pub last_status_at_ms: Option<u64>,
}

/// A registered client application (`POST /api/v1/apps`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: Id,
    pub name: String,
    pub website: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    /// Public identifier; the secret is stored only as a hash.
    pub client_id: String,
    pub created_at_ms: u64,
}

pub struct NewApp {
    pub name: String,
    pub website: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

/// An app and its client secret, which is shown exactly once.
pub struct IssuedApp {
    pub app: App,
    pub client_secret: String,
}

impl std::fmt::Debug for IssuedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApp")
            .field("app", &self.app)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// What a bearer token grants. The token itself is never stored, only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Hex SHA-256 of the token: the handle to list and revoke it by without knowing it.
    pub token_hash: String,
    /// `None` for an app-only token (`client_credentials`).
    pub account_id: Option<Id>,
    pub app_id: Option<Id>,
    pub scopes: Vec<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: Option<u64>,
}

impl TokenInfo {
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|t| t <= now_ms)
    }
}

pub struct NewToken {
    pub account_id: Option<Id>,
    pub app_id: Option<Id>,
    pub scopes: Vec<String>,
    pub expires_at_ms: Option<u64>,
}

/// An authorization code waiting to be exchanged for a token (OAuth 2 authorization code
/// grant). The code itself is never stored, only its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCode {
    pub app_id: Id,
    pub client_id: String,
    pub account_id: Id,
    /// Exactly as the authorization request named it.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// PKCE (RFC 7636): the challenge and its method (`S256` or `plain`), when the
    /// request carried one.
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
}

/// A token and its secret value, which is shown exactly once.
pub struct IssuedToken {
    pub token: String,
    pub info: TokenInfo,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone, listed on public timelines.
    #[default]
    Public,
    /// Everyone with the link, not on public timelines.
    Unlisted,
    /// Followers and mentioned accounts only.
    Private,
    /// Mentioned accounts only.
    Direct,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
            Visibility::Direct => "direct",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        Some(match s {
            "public" => Visibility::Public,
            "unlisted" => Visibility::Unlisted,
            "private" => Visibility::Private,
            "direct" => Visibility::Direct,
            _ => return None,
        })
    }
}

/// A post (Mastodon: status). A reblog is a post with `reblog_of` set and empty text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub id: Id,
    pub author_id: Id,
    pub text: String,
    pub spoiler_text: String,
    pub sensitive: bool,
    pub visibility: Visibility,
    pub in_reply_to_id: Option<Id>,
    pub in_reply_to_account_id: Option<Id>,
    pub reblog_of: Option<Id>,
    pub mentions: Vec<Id>,
    /// Lower-cased tag names without `#`.
    pub hashtags: Vec<String>,
    pub language: Option<String>,
    pub created_at_ms: u64,
    /// When it was last edited (schema version 10); `None` if never.
    #[serde(default)]
    pub edited_at_ms: Option<u64>,
    /// Its poll, if it has one (see [`crate::polls`]).
    #[serde(default)]
    pub poll_id: Option<Id>,
}

/// What the writer supplies; the store assigns id and time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPost {
    pub author_id: Id,
    pub text: String,
    pub spoiler_text: String,
    pub sensitive: bool,
    pub visibility: Visibility,
    pub in_reply_to_id: Option<Id>,
    pub reblog_of: Option<Id>,
    pub mentions: Vec<Id>,
    pub hashtags: Vec<String>,
    pub language: Option<String>,
    /// Uploads to attach (the caller attaches them with `Store::attach_media` once the
    /// post exists); a post with media may have empty text.
    #[serde(default)]
    pub media_ids: Vec<Id>,
    /// A poll to create with the post (the store creates it, with the post, and sets
    /// `Post::poll_id`); checked by [`crate::polls::validate_new_poll`].
    #[serde(default)]
    pub poll: Option<crate::polls::NewPoll>,
}

/// The outcome of creating a post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created<T> {
    pub value: T,
    /// False when an idempotency key (or a repeated reblog) returned an earlier one.
    pub created: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostCounts {
    pub replies: u64,
    pub reblogs: u64,
    pub favourites: u64,
}

/// What the viewer has done to a post, for the `favourited`/`reblogged`/`bookmarked`/
/// `pinned` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewerFlags {
    pub favourited: bool,
    pub reblogged: bool,
    pub bookmarked: bool,
    pub pinned: bool,
}

/// How one account relates to another, from the first one's side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub target: Id,
    pub following: bool,
    pub followed_by: bool,
    pub blocking: bool,
    pub blocked_by: bool,
    pub muting: bool,
    pub muting_notifications: bool,
    /// The first account asked to follow the target, which has not decided yet.
    #[serde(default)]
    pub requested: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Mention,
    Follow,
    Favourite,
    Reblog,
    /// Someone asked to follow a locked account.
    FollowRequest,
    /// A poll the account voted in or made has ended.
    Poll,
    /// A post the account reblogged was edited.
    Update,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Mention => "mention",
            NotificationKind::Follow => "follow",
            NotificationKind::Favourite => "favourite",
            NotificationKind::Reblog => "reblog",
            NotificationKind::FollowRequest => "follow_request",
            NotificationKind::Poll => "poll",
            NotificationKind::Update => "update",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationKind> {
        Some(match s {
            "mention" => NotificationKind::Mention,
            "follow" => NotificationKind::Follow,
            "favourite" => NotificationKind::Favourite,
            "reblog" => NotificationKind::Reblog,
            "follow_request" => NotificationKind::FollowRequest,
            "poll" => NotificationKind::Poll,
            "update" => NotificationKind::Update,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Id,
    /// Who is notified.
    pub account_id: Id,
    pub kind: NotificationKind,
    /// Who caused it.
    pub from_account_id: Id,
    pub post_id: Option<Id>,
    pub created_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub account_id: Id,
    pub kind: NotificationKind,
    pub from_account_id: Id,
    pub post_id: Option<Id>,
}

/// Which slice of an id-ordered list to read. Bounds are exclusive.
///
/// Mastodon's cursors map onto it: `max_id` is `below`; `since_id` is `above` read newest
/// first; `min_id` is `above` read oldest first (the caller reverses the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub above: Option<Id>,
    pub below: Option<Id>,
    pub order: Order,
    pub limit: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

impl Window {
    pub fn newest(limit: usize) -> Window {
        Window {
            above: None,
            below: None,
            order: Order::NewestFirst,
            limit,
        }
    }

    pub fn oldest(limit: usize) -> Window {
        Window {
            above: None,
            below: None,
            order: Order::OldestFirst,
            limit,
        }
    }

    pub fn below(mut self, id: Id) -> Window {
        self.below = Some(id);
        self
    }

    pub fn above(mut self, id: Id) -> Window {
        self.above = Some(id);
        self
    }

    /// True if `id` lies strictly inside the bounds.
    pub fn contains(&self, id: Id) -> bool {
        self.above.is_none_or(|a| id > a) && self.below.is_none_or(|b| id < b)
    }

    /// The window that continues after the last id of a page read with this one.
    pub fn after(self, last: Id) -> Window {
        match self.order {
            Order::NewestFirst => Window {
                below: Some(last),
                ..self
            },
            Order::OldestFirst => Window {
                above: Some(last),
                ..self
            },
        }
    }
}

/// A page of an id-ordered list and the window that reads the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` when the list is exhausted in the direction read.
    pub next: Option<Window>,
}
