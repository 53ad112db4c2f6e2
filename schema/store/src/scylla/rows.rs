//! Rows as the statements read them, and their conversion to domain types. Columns are
//! matched by name; text and flags that were never written read as empty and false.

use ::scylla::DeserializeRow;
use starling_schema::model::{
    Account, App, AuthCode, Notification, NotificationKind, Post, Role, TokenInfo, Visibility,
};

use super::exec::{id, unms};
use crate::{Result, StoreError};

fn corrupt(what: &'static str) -> StoreError {
    StoreError::backend("decoding a stored row", format!("unknown {what}"))
}

pub(super) fn role_str(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Admin => "admin",
    }
}

fn role(s: &str) -> Result<Role> {
    match s {
        "user" => Ok(Role::User),
        "admin" => Ok(Role::Admin),
        _ => Err(corrupt("role")),
    }
}

#[derive(DeserializeRow)]
pub(super) struct AccountRow {
    id: i64,
    #[scylla(default_when_null)]
    username: String,
    #[scylla(default_when_null)]
    display_name: String,
    #[scylla(default_when_null)]
    note: String,
    #[scylla(default_when_null)]
    locked: bool,
    #[scylla(default_when_null)]
    bot: bool,
    #[scylla(default_when_null)]
    role: String,
    #[scylla(default_when_null)]
    suspended: bool,
    #[scylla(default_when_null)]
    created_at_ms: i64,
}

impl AccountRow {
    pub(super) fn into_account(self) -> Result<Account> {
        Ok(Account {
            id: id(self.id),
            username: self.username,
            display_name: self.display_name,
            note: self.note,
            locked: self.locked,
            bot: self.bot,
            role: role(&self.role)?,
            suspended: self.suspended,
            created_at_ms: unms(self.created_at_ms),
            // Kept in `account_profiles`; `ScyllaStore::account` reads it beside.
            profile: Default::default(),
        })
    }
}

/// The columns of [`super::statements::POST_COLUMNS`], plus `$extra` fields. One list
/// serves `posts_by_author` (live posts only) and `posts` (with its tombstone column).
macro_rules! post_row {
    ($name:ident { $( $extra:ident : $ty:ty ),* }) => {
        #[derive(DeserializeRow)]
        pub(super) struct $name {
            id: i64,
            #[scylla(default_when_null)]
            author_id: i64,
            #[scylla(default_when_null)]
            text: String,
            #[scylla(default_when_null)]
            spoiler_text: String,
            #[scylla(default_when_null)]
            sensitive: bool,
            #[scylla(default_when_null)]
            visibility: String,
            in_reply_to_id: Option<i64>,
            in_reply_to_account_id: Option<i64>,
            reblog_of: Option<i64>,
            mentions: Vec<i64>,
            hashtags: Vec<String>,
            language: Option<String>,
            #[scylla(default_when_null)]
            created_at_ms: i64,
            edited_at_ms: Option<i64>,
            poll_id: Option<i64>,
            $( pub(super) $extra: $ty, )*
        }

        impl $name {
            pub(super) fn into_post(self) -> Result<Post> {
                Ok(Post {
                    id: id(self.id),
                    author_id: id(self.author_id),
                    text: self.text,
                    spoiler_text: self.spoiler_text,
                    sensitive: self.sensitive,
                    visibility: Visibility::parse(&self.visibility)
                        .ok_or_else(|| corrupt("visibility"))?,
                    in_reply_to_id: self.in_reply_to_id.map(id),
                    in_reply_to_account_id: self.in_reply_to_account_id.map(id),
                    reblog_of: self.reblog_of.map(id),
                    mentions: self.mentions.into_iter().map(id).collect(),
                    hashtags: self.hashtags,
                    language: self.language,
                    created_at_ms: unms(self.created_at_ms),
                    edited_at_ms: self.edited_at_ms.map(unms),
                    poll_id: self.poll_id.map(id),
                })
            }
        }
    };
}

post_row!(PostRow {});
post_row!(StoredPostRow { deleted_at_ms: Option<i64> });

/// A post as `posts` holds it: live or tombstoned.
pub(super) struct StoredPost {
    pub(super) post: Post,
    pub(super) deleted: bool,
}

impl StoredPostRow {
    pub(super) fn into_stored(self) -> Result<StoredPost> {
        let deleted = self.deleted_at_ms.is_some();
        Ok(StoredPost {
            post: self.into_post()?,
            deleted,
        })
    }
}

#[derive(DeserializeRow)]
pub(super) struct AppRow {
    #[scylla(default_when_null)]
    id: i64,
    #[scylla(default_when_null)]
    name: String,
    website: Option<String>,
    redirect_uris: Vec<String>,
    scopes: Vec<String>,
    client_id: String,
    #[scylla(default_when_null)]
    pub(super) secret_hash: String,
    #[scylla(default_when_null)]
    created_at_ms: i64,
}

impl AppRow {
    pub(super) fn into_app(self) -> App {
        App {
            id: id(self.id),
            name: self.name,
            website: self.website,
            redirect_uris: self.redirect_uris,
            scopes: self.scopes,
            client_id: self.client_id,
            created_at_ms: unms(self.created_at_ms),
        }
    }
}

#[derive(DeserializeRow)]
pub(super) struct AuthCodeRow {
    #[scylla(default_when_null)]
    app_id: i64,
    #[scylla(default_when_null)]
    client_id: String,
    #[scylla(default_when_null)]
    account_id: i64,
    #[scylla(default_when_null)]
    redirect_uri: String,
    #[scylla(default_when_null)]
    scopes: Vec<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    #[scylla(default_when_null)]
    created_at_ms: i64,
    #[scylla(default_when_null)]
    expires_at_ms: i64,
}

impl AuthCodeRow {
    pub(super) fn into_code(self) -> AuthCode {
        AuthCode {
            app_id: id(self.app_id),
            client_id: self.client_id,
            account_id: id(self.account_id),
            redirect_uri: self.redirect_uri,
            scopes: self.scopes,
            code_challenge: self.code_challenge,
            code_challenge_method: self.code_challenge_method,
            created_at_ms: unms(self.created_at_ms),
            expires_at_ms: unms(self.expires_at_ms),
        }
    }
}

#[derive(DeserializeRow)]
pub(super) struct TokenRow {
    token_hash: String,
    account_id: Option<i64>,
    app_id: Option<i64>,
    scopes: Vec<String>,
    #[scylla(default_when_null)]
    created_at_ms: i64,
    expires_at_ms: Option<i64>,
}

impl TokenRow {
    pub(super) fn into_info(self) -> TokenInfo {
        TokenInfo {
            token_hash: self.token_hash,
            account_id: self.account_id.map(id),
            app_id: self.app_id.map(id),
            scopes: self.scopes,
            created_at_ms: unms(self.created_at_ms),
            expires_at_ms: self.expires_at_ms.map(unms),
        }
    }
}

#[derive(DeserializeRow)]
pub(super) struct NotificationRow {
    account_id: i64,
    id: i64,
    #[scylla(default_when_null)]
    kind: String,
    #[scylla(default_when_null)]
    from_account_id: i64,
    post_id: Option<i64>,
    #[scylla(default_when_null)]
    created_at_ms: i64,
}

impl NotificationRow {
    pub(super) fn into_notification(self) -> Result<Notification> {
        Ok(Notification {
            id: id(self.id),
            account_id: id(self.account_id),
            kind: NotificationKind::parse(&self.kind)
                .ok_or_else(|| corrupt("notification kind"))?,
            from_account_id: id(self.from_account_id),
            post_id: self.post_id.map(id),
            created_at_ms: unms(self.created_at_ms),
        })
    }
}
