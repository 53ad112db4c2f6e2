//! The ScyllaDB backend (also runs on Cassandra 4+): the [`Store`] over a CQL cluster, with
//! the schema of `schema/cql/`.
//!
//! # Layout
//!
//! One table per query, mirroring the embedded store: accounts by id, usernames by
//! `username_key`, credentials, apps by client id, tokens by digest and by account, the
//! follow graph in both directions (`following`, `followers`), posts by id (a
//! `deleted_at_ms` tombstone), `posts_by_author` (denormalised, newest first), idempotency
//! keys, favourites and reblogs by post, blocks (and `blocked_by`), mutes, notifications by
//! account (newest first), counter tables, and each node's event outbox. Every read is a
//! single-partition read: a point read, a short `IN` list on a clustering key, or a
//! clustering-range slice.
//!
//! Batch reads (`accounts_by_ids`, `posts_by_ids`, counts) run concurrent single-partition
//! prepared reads, 64 at a time, rather than a multi-partition `IN`, which would make one
//! coordinator gather from every replica set; results keep the order asked for.
//! Relationship lookups read one partition per kind with `IN` on the clustering key, in
//! chunks of 100 (ScyllaDB's default cap on clustering keys per query).
//!
//! Every statement is prepared once at connect (after the schema is checked), with the
//! validated keyspace name spliced into its text; every value is bound.
//!
//! # Paging
//!
//! A window (`above`/`below`, order, limit) becomes clustering bounds plus `LIMIT limit + 1`
//! (the extra row says whether a next page exists), read with the driver's paging
//! (`store.scylla.page_size` rows per request), so paging the followers of an account with
//! millions of them reads one page, never the partition. Filtered notification reads page
//! through the partition until enough rows match or it ends.
//!
//! # Consistency: LWTs and counters
//!
//! Reads and writes run at `LOCAL_QUORUM`, conditional writes at `LOCAL_SERIAL`.
//! Lightweight transactions are used only where uniqueness demands them: claiming a
//! username, claiming an `Idempotency-Key` (with a one-hour TTL), and the edges that
//! counters count. Counter increments are not idempotent (a retried `+ 1` counts twice), so
//! follow/unfollow, favourite/unfavourite, reblog/unreblog and post deletion first write
//! their edge conditionally (`INSERT ... IF NOT EXISTS`, `DELETE ... IF EXISTS`, `UPDATE
//! ... IF version = ?`, `UPDATE ... IF deleted_at_ms = null`) and touch the counters only
//! when `[applied]` is true: of any number of concurrent repeats, exactly one counts.
//! Those statements and the counter updates are marked non-idempotent, so the driver never
//! retries them blindly; plain reads and writes are idempotent and may be retried. A crash
//! between the edge write and the counter write leaves a counter off by one; `starling
//! admin counters recount` (a later issue) recomputes counters from the edges.
//!
//! Writes that span partitions are ordered so that a crash part-way leaves nothing a reader
//! would trip over: a post row is written before it is claimed or listed, an account before
//! its username is claimed, and a post leaves its author's list before it is tombstoned.
//! A follow's state lives in `follow_edges` with a version that each compare-and-set
//! raises; `following` and `followers` are written after it with the version as their
//! write time, so follows and unfollows of a pair racing each other leave both lists at the
//! edge's final state whatever order their writes land in (a crash between the decision
//! and the lists leaves them behind until the next change or the repair command).
//! Optional values are bound unset rather than null, so inserts write no tombstones, and
//! write times come from the client (monotonic per process), so two writes of one cell
//! from this process apply in the order they were made.
//!
//! # Schema
//!
//! [`ScyllaStore::migrate`] (and [`ScyllaStore::migrate_cluster`], for `starling migrate`
//! before any table exists) creates the keyspace with `store.scylla.replication` if it is
//! missing (an existing keyspace keeps its replication; on ScyllaDB 6.0 onwards it is
//! created off tablets, which refused counters and LWTs), applies `schema/cql/*.cql` and
//! records the version. [`ScyllaStore::connect`] refuses a keyspace that lacks a table or
//! is at another version, naming `starling migrate` as the fix.
//!
//! # Ids
//!
//! Ids are minted here by [`IdGenerator`] under a lease persisted in `id_leases`, and stored
//! as `bigint` by casting (`id as i64`): an id is `unix_ms << 16 | low16`, below 2^63 until
//! about the year 6429.

mod conversations;
mod exec;
mod feeds;
mod media;
mod ops;
mod polls;
mod push;
mod rows;
mod schema;
mod social;
mod startup;
mod statements;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use ::scylla::client::execution_profile::ExecutionProfile;
use ::scylla::client::session::Session;
use ::scylla::client::session_builder::SessionBuilder;
use ::scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use ::scylla::value::Counter;
use starling_schema::Id;
use starling_schema::conversations::{Conversation, ConversationState};
use starling_schema::feeds::{List, ListDraft, ListRef, Mark, MarkKind};
use starling_schema::ids::{IdGenerator, now_ms};
use starling_schema::media::{MediaAttachment, NewMedia, ProfileImages};
use starling_schema::model::{
    Account, AccountCounts, App, AuthCode, Created, ImportAccount, IssuedApp, IssuedToken,
    NewAccount, NewApp, NewNotification, NewPost, NewToken, Notification, NotificationKind, Page,
    Post, PostCounts, Relationship, Role, TokenInfo, ViewerFlags, Window,
};
use starling_schema::policy;
use starling_schema::polls::{Poll, PostEdit, PostVersion};
use starling_schema::profile::ProfileUpdate;
use starling_schema::push::PushSubscription;
use starling_schema::settings::{Limits, Replication, ScyllaSettings};
use starling_schema::startup::{
    Announcement, Filter, FilterDraft, Marker, MarkerTimeline, NewAnnouncement,
};
use starling_schema::{Invalid, validate};

use self::exec::{db, each, empty_page, fail, finish, ms, unms, unset};
use self::ops::same_digest;
use self::rows::{
    AccountRow, AppRow, AuthCodeRow, NotificationRow, PostRow, StoredPost, StoredPostRow, TokenRow,
};
use self::statements::{Preparer, Statements};
use crate::{IDEMPOTENCY_TTL_MS, MAX_BATCH, Result, Scan, Store, StoreError, check, secrets};

/// A keyspace name, checked to be a plain identifier, and its quoted CQL form (quoted so
/// that its case is kept exactly).
struct Keyspace {
    name: String,
    quoted: String,
}

impl Keyspace {
    fn parse(name: &str) -> Result<Keyspace> {
        let ok = !name.is_empty()
            && name.len() <= 48
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(
                Invalid::new("keyspace", "must be 1-48 letters, digits or underscores").into(),
            );
        }
        Ok(Keyspace {
            name: name.to_owned(),
            quoted: format!("\"{name}\""),
        })
    }
}

/// The ScyllaDB store. Cheap to clone; clones share one session.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    keyspace: Keyspace,
    replication: Replication,
    limits: Limits,
    ids: IdGenerator,
    node_id: i32,
    /// The lease last persisted; held while persisting so leases are written in order.
    lease: tokio::sync::Mutex<u64>,
    st: Statements,
}

async fn session(settings: &ScyllaSettings) -> Result<Session> {
    if settings.page_size <= 0 {
        return Err(Invalid::new("page_size", "must be positive").into());
    }
    let timeout = (settings.request_timeout_ms > 0)
        .then(|| Duration::from_millis(settings.request_timeout_ms));
    let profile = ExecutionProfile::builder().request_timeout(timeout).build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&settings.nodes)
        .default_execution_profile_handle(profile.into_handle())
        // Client-side write times: two writes of this process to one cell land in the order
        // they were made, whichever coordinators (and clocks) serve them.
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
    match (&settings.username, &settings.password) {
        (Some(user), Some(password)) => builder = builder.user(user, password),
        (None, None) => {}
        _ => {
            return Err(Invalid::new("username", "and password must be given together").into());
        }
    }
    builder
        .build()
        .await
        .map_err(fail("connecting to the cluster"))
}

impl ScyllaStore {
    /// Connect, apply the schema first if `migrate_on_start`, check it, and prepare every
    /// statement.
    pub async fn connect(
        settings: &ScyllaSettings,
        node_id: u32,
        limits: Limits,
    ) -> Result<ScyllaStore> {
        let keyspace = Keyspace::parse(&settings.keyspace)?;
        let session = session(settings).await?;
        Self::open(session, keyspace, settings, node_id, limits).await
    }

    /// Apply the schema without opening a store: what `starling migrate` needs on a
    /// cluster whose tables do not exist yet (where [`ScyllaStore::connect`] refuses).
    pub async fn migrate_cluster(settings: &ScyllaSettings) -> Result<u32> {
        let keyspace = Keyspace::parse(&settings.keyspace)?;
        let session = session(settings).await?;
        schema::apply(&session, &keyspace, &settings.replication).await
    }

    /// For the conformance suite: a store on `uri` (`host:port`) in keyspace `keyspace`,
    /// created with the schema if it does not exist (pick a new name for an empty store).
    /// Calling it again with the same name opens the same data, as a restart would. Drop
    /// the keyspace with [`ScyllaStore::drop_keyspace`].
    pub async fn connect_fresh_keyspace(
        uri: &str,
        keyspace: &str,
        node_id: u32,
        limits: Limits,
    ) -> Result<ScyllaStore> {
        let settings = ScyllaSettings {
            nodes: vec![uri.to_owned()],
            keyspace: keyspace.to_owned(),
            migrate_on_start: true,
            ..ScyllaSettings::default()
        };
        let keyspace = Keyspace::parse(keyspace)?;
        let session = session(&settings).await?;
        Self::open(session, keyspace, &settings, node_id, limits).await
    }

    /// Drop this store's keyspace and everything in it.
    /// The server's `commitlog_sync` setting, if it says (see
    /// [`Replication::crash_can_lose_acknowledged`](starling_schema::settings::Replication::crash_can_lose_acknowledged)).
    pub async fn commitlog_sync(&self) -> Option<String> {
        schema::commitlog_sync(&self.inner.session).await
    }

    pub async fn drop_keyspace(&self) -> Result<()> {
        drop_keyspace(&self.inner.session, &self.inner.keyspace).await
    }

    /// Apply the schema (idempotent) and return the version now in place.
    pub async fn migrate(&self) -> Result<u32> {
        schema::apply(
            &self.inner.session,
            &self.inner.keyspace,
            &self.inner.replication,
        )
        .await
    }

    async fn open(
        session: Session,
        keyspace: Keyspace,
        settings: &ScyllaSettings,
        node_id: u32,
        limits: Limits,
    ) -> Result<ScyllaStore> {
        if settings.migrate_on_start {
            schema::apply(&session, &keyspace, &settings.replication).await?;
        }
        schema::check(&session, &keyspace).await?;
        if let Some(sync) = schema::commitlog_sync(&session).await
            && settings.replication.crash_can_lose_acknowledged(&sync)
        {
            tracing::warn!(
                commitlog_sync = %sync,
                replication_factor = settings.replication.min_factor(),
                "the CQL server acknowledges writes before its commit log is on disk, and each row \
                 has one replica: a crash of that server loses its last writes, acknowledged \
                 posts included; set commitlog_sync: batch (or group) on it, or replicate"
            );
        }
        // Hundreds of statements: the preparing future is large, so it lives on the heap
        // rather than in every caller's (a debug build's test overflowed its stack).
        let st = Box::pin(Statements::prepare(&Preparer {
            session: &session,
            keyspace: &keyspace.quoted,
            page_size: settings.page_size,
        }))
        .await?;
        let node =
            i32::try_from(node_id).map_err(|_| Invalid::new("node_id", "is out of range"))?;
        let lease = session
            .execute_unpaged(&st.lease_get, (node,))
            .await
            .map_err(fail("reading the id lease"))?
            .into_rows_result()
            .map_err(exec::corrupt("reading the id lease"))?
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(exec::corrupt("reading the id lease"))?
            .and_then(|(until,)| until)
            .map_or(0, unms);
        let ids = IdGenerator::new(node_id, lease)
            .map_err(|e| StoreError::Invalid(Invalid::new("node_id", e.to_string())))?;
        Ok(ScyllaStore {
            inner: Arc::new(Inner {
                session,
                keyspace,
                replication: settings.replication.clone(),
                limits,
                ids,
                node_id: node,
                lease: tokio::sync::Mutex::new(lease),
                st,
            }),
        })
    }

    fn st(&self) -> &Statements {
        &self.inner.st
    }
}

async fn drop_keyspace(session: &Session, ks: &Keyspace) -> Result<()> {
    let cql = format!("DROP KEYSPACE IF EXISTS {}", ks.quoted);
    schema::ddl(session, "dropping the keyspace", cql).await
}

const EMAIL_TAKEN: &str = "email is already taken";

impl Store for ScyllaStore {
    // ---- accounts -------------------------------------------------------------------------

    async fn create_account(&self, new: NewAccount) -> Result<Account> {
        const CTX: &str = "creating an account";
        let username = validate::validate_new_account(&new)?;
        let key = validate::username_key(&username);
        let st = self.st();
        // Spares the hashing for a name already taken; the claim below decides.
        if self.exists(CTX, &st.username_get, (key.as_str(),)).await? {
            return Err(StoreError::Conflict("username is already taken".into()));
        }
        let email_key = new.email.as_deref().and_then(validate::email_key);
        if let Some(email) = &email_key
            && self.exists(CTX, &st.email_get, (email.as_str(),)).await?
        {
            return Err(StoreError::Conflict(EMAIL_TAKEN.into()));
        }
        let password = new.password;
        let hash = secrets::hash_password(password).await?;
        let id = self.mint().await?;
        // The address is claimed before anything else is written, so a refusal leaves
        // nothing behind; it is released again if the username turns out to be taken.
        if let Some(email) = &email_key
            && !self
                .lwt(CTX, &st.email_claim, (email.as_str(), db(id)))
                .await?
                .applied
        {
            return Err(StoreError::Conflict(EMAIL_TAKEN.into()));
        }
        let display_name = new.display_name.unwrap_or_default();
        let account = Account::local(id, username, display_name, new.bot, new.role);
        let credentials = (db(id), hash.as_str(), unset(new.email.as_deref()));
        self.write(CTX, &st.credentials_insert, credentials).await?;
        if !self.insert_account(&account, &key).await? {
            if let Some(email) = &email_key
                && let Err(e) = self
                    .lwt(CTX, &st.email_release, (email.as_str(), db(id)))
                    .await
            {
                tracing::warn!(error = %e, "releasing the email of an account whose username was taken");
            }
            return Err(StoreError::Conflict("username is already taken".into()));
        }
        Ok(account)
    }

    async fn import_accounts(&self, accounts: Vec<ImportAccount>) -> Result<Vec<Account>> {
        check::batch(accounts.len())?;
        let mut named = Vec::with_capacity(accounts.len());
        let mut seen = HashSet::new();
        for new in accounts {
            let username = validate::normalize_username(&new.username)?;
            let key = validate::username_key(&username);
            // The first of two equal names in one batch wins, as if imported one by one.
            if seen.insert(key.clone()) {
                named.push((key, username, new));
            }
        }
        // Ids are minted here, in input order, before anything runs concurrently: ids
        // order accounts (scans, lists), and the embedded store keeps the input order too.
        // A name already taken wastes its id, which is harmless.
        let mut minted = Vec::with_capacity(named.len());
        for (key, username, new) in named {
            minted.push((self.mint().await?, key, username, new));
        }
        let created = each(minted, |(id, key, username, new)| async move {
            const CTX: &str = "importing accounts";
            if self
                .exists(CTX, &self.st().username_get, (key.as_str(),))
                .await?
            {
                return Ok(None);
            }
            let display_name = new.display_name.unwrap_or_default();
            let account = Account::local(id, username, display_name, new.bot, Role::User);
            Ok(self
                .insert_account(&account, &key)
                .await?
                .then_some(account))
        })
        .await?;
        Ok(created.into_iter().flatten().collect())
    }

    async fn accounts_by_ids(&self, ids: &[Id]) -> Result<Vec<Account>> {
        check::batch(ids.len())?;
        let found = each(ids.iter().copied(), |id| self.account(id)).await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn accounts_by_usernames(&self, usernames: &[&str]) -> Result<Vec<Account>> {
        check::batch(usernames.len())?;
        // An empty name names nobody (and CQL refuses an empty partition key).
        let keys: Vec<String> = usernames
            .iter()
            .map(|n| validate::username_key(n))
            .filter(|k| !k.is_empty())
            .collect();
        let found = each(keys, |key| async move {
            let owner = self
                .row::<(i64,)>(
                    "looking up a username",
                    &self.st().username_get,
                    (key.as_str(),),
                )
                .await?;
            match owner {
                Some((id,)) => self.account(exec::id(id)).await,
                None => Ok(None),
            }
        })
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
        let Some(key) = validate::email_key(email) else {
            return Ok(None);
        };
        let owner = self
            .row::<(i64,)>("looking up an email", &self.st().email_get, (key.as_str(),))
            .await?;
        match owner {
            Some((id,)) => self.account(exec::id(id)).await,
            None => Ok(None),
        }
    }

    async fn account_counts(&self, ids: &[Id]) -> Result<Vec<AccountCounts>> {
        const CTX: &str = "reading account counts";
        let st = self.st();
        let mut out = Vec::with_capacity(ids.len());
        // A page may name more accounts than one batch (40 posts × 50 mentions): read them
        // a batch at a time so no call runs more than a batch of queries at once.
        for chunk in ids.chunks(crate::MAX_BATCH) {
            let counts = each(chunk.iter().copied(), |id| async move {
                type Counts = (Option<Counter>, Option<Counter>, Option<Counter>);
                let (counts, last) = futures::try_join!(
                    self.row::<Counts>(CTX, &st.account_counters_get, (db(id),)),
                    self.row::<(Option<i64>,)>(CTX, &st.last_status_get, (db(id),)),
                )?;
                let (followers, following, statuses) = counts.unwrap_or_default();
                Ok(AccountCounts {
                    followers: exec::count(followers),
                    following: exec::count(following),
                    statuses: exec::count(statuses),
                    last_status_at_ms: last.and_then(|(at,)| at).map(unms),
                })
            })
            .await?;
            out.extend(counts);
        }
        Ok(out)
    }

    async fn update_profile(&self, id: Id, update: ProfileUpdate) -> Result<Account> {
        self.update_profile_(id, update).await
    }

    async fn verify_password(&self, username: &str, password: &str) -> Result<Account> {
        const CTX: &str = "checking a password";
        let st = self.st();
        let key = validate::username_key(username);
        // An empty name has no row (CQL refuses an empty key); the hash is still checked
        // below, so the answer takes as long as for any unknown name.
        let owner = if key.is_empty() {
            None
        } else {
            self.row::<(i64,)>(CTX, &st.username_get, (key.as_str(),))
                .await?
        };
        let hash = match owner {
            Some((id,)) => self
                .row::<(Option<String>,)>(CTX, &st.credentials_get, (id,))
                .await?
                .and_then(|(hash,)| hash),
            None => None,
        };
        let password = password.to_owned();
        let ok = secrets::verify_password(password, hash).await?;
        let account = match owner {
            Some((id,)) if ok => self.account(exec::id(id)).await?,
            _ => None,
        };
        account.ok_or(StoreError::Unauthorized("invalid username or password"))
    }

    // ---- apps and tokens ------------------------------------------------------------------

    async fn create_app(&self, new: NewApp) -> Result<IssuedApp> {
        validate::validate_new_app(&new)?;
        let client_secret = secrets::random_secret();
        let app = App {
            id: self.mint().await?,
            name: new.name.trim().to_owned(),
            website: new.website,
            redirect_uris: new.redirect_uris,
            scopes: new.scopes,
            client_id: secrets::random_secret(),
            created_at_ms: now_ms(),
        };
        let values = (
            app.client_id.as_str(),
            db(app.id),
            app.name.as_str(),
            unset(app.website.as_deref()),
            app.redirect_uris.as_slice(),
            app.scopes.as_slice(),
            secrets::digest(&client_secret),
            ms(app.created_at_ms),
        );
        self.write("registering an app", &self.st().app_insert, values)
            .await?;
        self.write(
            "registering an app",
            &self.st().app_id_insert,
            (db(app.id), app.client_id.as_str()),
        )
        .await?;
        Ok(IssuedApp { app, client_secret })
    }

    async fn verify_app(&self, client_id: &str, client_secret: &str) -> Result<App> {
        let row = self
            .row::<AppRow>("checking an app", &self.st().app_get, (client_id,))
            .await?;
        match row {
            Some(row) if same_digest(&row.secret_hash, &secrets::digest(client_secret)) => {
                Ok(row.into_app())
            }
            _ => Err(StoreError::Unauthorized("invalid client credentials")),
        }
    }

    async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>> {
        let row = self
            .row::<AppRow>("reading an app", &self.st().app_get, (client_id,))
            .await?;
        Ok(row.map(AppRow::into_app))
    }

    async fn app_by_id(&self, id: Id) -> Result<Option<App>> {
        let row = self
            .row::<(String,)>("reading an app", &self.st().app_id_get, (db(id),))
            .await?;
        match row {
            Some((client_id,)) => self.app_by_client_id(&client_id).await,
            None => Ok(None),
        }
    }

    async fn create_auth_code(&self, code: AuthCode) -> Result<String> {
        const CTX: &str = "keeping an authorization code";
        self.require_accounts([code.account_id]).await?;
        let secret = secrets::random_secret();
        let ttl_secs = code
            .expires_at_ms
            .saturating_sub(now_ms())
            .div_ceil(1000)
            .clamp(1, i32::MAX as u64);
        let values = (
            secrets::digest(&secret),
            db(code.app_id),
            code.client_id.as_str(),
            db(code.account_id),
            code.redirect_uri.as_str(),
            code.scopes.as_slice(),
            unset(code.code_challenge.as_deref()),
            unset(code.code_challenge_method.as_deref()),
            ms(code.created_at_ms),
            ms(code.expires_at_ms),
            i32::try_from(ttl_secs).unwrap_or(i32::MAX),
        );
        self.write(CTX, &self.st().auth_code_insert, values).await?;
        Ok(secret)
    }

    async fn take_auth_code(&self, code: &str) -> Result<Option<AuthCode>> {
        const CTX: &str = "using an authorization code";
        let hash = secrets::digest(code);
        let Some(row) = self
            .row::<AuthCodeRow>(CTX, &self.st().auth_code_get, (hash.as_str(),))
            .await?
        else {
            return Ok(None);
        };
        // Two exchanges of one code may both read it; only one deletes it.
        let taken = self
            .lwt(CTX, &self.st().auth_code_take, (hash.as_str(),))
            .await?;
        let code = row.into_code();
        Ok((taken.applied && code.expires_at_ms > now_ms()).then_some(code))
    }

    async fn issue_token(&self, new: NewToken) -> Result<IssuedToken> {
        const CTX: &str = "issuing a token";
        let st = self.st();
        if let Some(account) = new.account_id {
            self.require_accounts([account]).await?;
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
        let hash = info.token_hash.as_str();
        let app = unset(info.app_id.map(db));
        let scopes = info.scopes.as_slice();
        let created = ms(info.created_at_ms);
        let expires = unset(info.expires_at_ms.map(ms));
        let account = unset(info.account_id.map(db));
        futures::try_join!(
            self.write(
                CTX,
                &st.token_insert,
                (hash, account, app, scopes, created, expires)
            ),
            async {
                match info.account_id {
                    Some(account) => {
                        let values = (db(account), hash, app, scopes, created, expires);
                        self.write(CTX, &st.token_of_insert, values).await
                    }
                    None => Ok(()),
                }
            },
        )?;
        Ok(IssuedToken { token, info })
    }

    async fn token(&self, token: &str) -> Result<Option<TokenInfo>> {
        let hash = secrets::digest(token);
        let row = self
            .row::<TokenRow>("reading a token", &self.st().token_get, (hash,))
            .await?;
        Ok(row
            .map(TokenRow::into_info)
            .filter(|info| !info.expired_at(now_ms())))
    }

    async fn revoke_token(&self, token_hash: &str) -> Result<bool> {
        const CTX: &str = "revoking a token";
        let st = self.st();
        let Some(row) = self
            .row::<TokenRow>(CTX, &st.token_get, (token_hash,))
            .await?
        else {
            return Ok(false);
        };
        let info = row.into_info();
        // The listing first: a crash in between leaves a working token that a retry revokes.
        if let Some(account) = info.account_id {
            self.write(CTX, &st.token_of_delete, (db(account), token_hash))
                .await?;
        }
        self.write(CTX, &st.token_delete, (token_hash,)).await?;
        Ok(true)
    }

    async fn tokens_of(&self, account: Id) -> Result<Vec<TokenInfo>> {
        let mut out = Vec::new();
        self.scan(
            "listing tokens",
            &self.st().tokens_of,
            (db(account),),
            |row: TokenRow| {
                out.push(row.into_info());
                Ok(ControlFlow::Continue(()))
            },
        )
        .await?;
        Ok(out)
    }

    // ---- follows --------------------------------------------------------------------------

    async fn follow(&self, follower: Id, followee: Id) -> Result<bool> {
        check::distinct(follower, followee)?;
        let (_, blocked) = futures::try_join!(
            self.require_accounts([follower, followee]),
            self.blocked_either_way(follower, followee),
        )?;
        if blocked {
            return Err(StoreError::Forbidden(
                "a block stands between these accounts",
            ));
        }
        // A follow made directly settles a request that was pending.
        self.withdraw(follower, followee).await?;
        self.set_follow(follower, followee, true).await
    }

    async fn unfollow(&self, follower: Id, followee: Id) -> Result<bool> {
        check::distinct(follower, followee)?;
        let withdrawn = self.withdraw(follower, followee).await?;
        Ok(self.set_follow(follower, followee, false).await? || withdrawn)
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
        self.muted_conversations_(account, roots).await
    }

    async fn followers(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading followers",
            &self.st().followers_page,
            account,
            window,
        )
        .await
    }

    async fn following(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading follows",
            &self.st().following_page,
            account,
            window,
        )
        .await
    }

    // ---- posts ----------------------------------------------------------------------------

    async fn create_post(
        &self,
        new: NewPost,
        idempotency_key: Option<&str>,
    ) -> Result<Created<Post>> {
        const CTX: &str = "creating a post";
        validate::validate_new_post(&new, &self.inner.limits)?;
        if new.reblog_of.is_some() {
            return Err(Invalid::new("reblog_of", "is set through reblog").into());
        }
        let st = self.st();
        if let Some(key) = idempotency_key {
            validate::validate_idempotency_key(key)?;
            // A retry within the hour: the first post, as it was answered (even if deleted
            // since). The claim below settles retries that race each other.
            let values = (db(new.author_id), key);
            if let Some((first,)) = self.row::<(i64,)>(CTX, &st.idempotency_get, values).await? {
                return self.first_post(CTX, Some(first)).await;
            }
        }
        let (_, parent) = futures::try_join!(self.require_accounts([new.author_id]), async {
            match new.in_reply_to_id {
                Some(parent) => self.live_post(parent).await.map(Some),
                None => Ok(None),
            }
        })?;
        let parent = match parent {
            Some(None) => return Err(StoreError::NotFound("post replied to")),
            Some(Some(parent)) => Some(parent),
            None => None,
        };
        let id = self.mint().await?;
        // The poll first, so that a post never names a poll that is not there.
        let poll = match &new.poll {
            Some(p) => {
                let poll = starling_schema::polls::Poll::from_new(
                    self.mint().await?,
                    id,
                    new.author_id,
                    p,
                    id.unix_ms(),
                );
                self.insert_poll(&poll).await?;
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
            in_reply_to_account_id: parent.map(|p| p.author_id),
            reblog_of: None,
            mentions: new.mentions,
            hashtags: new.hashtags,
            language: new.language,
            created_at_ms: id.unix_ms(),
            edited_at_ms: None,
            poll_id: poll,
        };
        // The row first, so that whoever reads a claimed key finds its post.
        self.insert_post_row(&post).await?;
        if let Some(key) = idempotency_key {
            let ttl = i32::try_from(IDEMPOTENCY_TTL_MS / 1000).unwrap_or(i32::MAX);
            let claim = self
                .lwt(
                    CTX,
                    &st.idempotency_claim,
                    (db(post.author_id), key, db(id), ttl),
                )
                .await?;
            if !claim.applied {
                if let Err(e) = self.write(CTX, &st.post_purge, (db(id),)).await {
                    tracing::warn!(error = %e, "removing the row of a duplicate post");
                }
                return self.first_post(CTX, claim.bigint("post_id")).await;
            }
        }
        self.publish_post(&post).await?;
        Ok(Created {
            value: post,
            created: true,
        })
    }

    async fn posts_by_ids(&self, ids: &[Id]) -> Result<Vec<Post>> {
        check::batch(ids.len())?;
        let found = each(ids.iter().copied(), |id| self.live_post(id)).await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn delete_post(&self, id: Id) -> Result<Option<Post>> {
        self.tombstone(id).await
    }

    async fn posts_by_author(&self, author: Id, window: Window) -> Result<Page<Post>> {
        let st = self.st().posts_of_page.pick(window.order);
        self.window(
            "reading an author's posts",
            st,
            author,
            window,
            PostRow::into_post,
            |p| p.id,
        )
        .await
    }

    async fn post_counts(&self, ids: &[Id]) -> Result<Vec<PostCounts>> {
        check::batch(ids.len())?;
        let st = self.st();
        each(ids.iter().copied(), |id| async move {
            type Counts = (Option<Counter>, Option<Counter>, Option<Counter>);
            let counts = self
                .row::<Counts>("reading post counts", &st.post_counters_get, (db(id),))
                .await?;
            let (replies, reblogs, favourites) = counts.unwrap_or_default();
            Ok(PostCounts {
                replies: exec::count(replies),
                reblogs: exec::count(reblogs),
                favourites: exec::count(favourites),
            })
        })
        .await
    }

    // ---- favourites and reblogs -----------------------------------------------------------

    async fn favourite(&self, account: Id, post: Id) -> Result<bool> {
        const CTX: &str = "favouriting";
        let st = self.st();
        let (_, live) = futures::try_join!(self.require_accounts([account]), self.live_post(post))?;
        if live.is_none() {
            return Err(StoreError::NotFound("post"));
        }
        let values = (db(post), db(account), ms(now_ms()));
        let claimed = self.lwt(CTX, &st.favourite_claim, values).await?.applied;
        if claimed {
            futures::try_join!(
                self.bump(CTX, &st.favourites_add, post, 1),
                self.put_mark(MarkKind::Favourite, account, post),
            )?;
        }
        Ok(claimed)
    }

    async fn unfavourite(&self, account: Id, post: Id) -> Result<bool> {
        const CTX: &str = "unfavouriting";
        let st = self.st();
        let released = self
            .lwt(CTX, &st.favourite_release, (db(post), db(account)))
            .await?
            .applied;
        if released {
            futures::try_join!(
                self.bump(CTX, &st.favourites_add, post, -1),
                self.drop_mark(MarkKind::Favourite, account, post),
            )?;
        }
        Ok(released)
    }

    async fn favourited_by(&self, post: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading favourites",
            &self.st().favourited_by_page,
            post,
            window,
        )
        .await
    }

    async fn reblog(&self, account: Id, post: Id) -> Result<Created<Post>> {
        const CTX: &str = "reblogging";
        let st = self.st();
        let (_, found) =
            futures::try_join!(self.require_accounts([account]), self.live_post(post))?;
        let mut original = found.ok_or(StoreError::NotFound("post"))?;
        if let Some(inner) = original.reblog_of {
            original = self
                .live_post(inner)
                .await?
                .ok_or(StoreError::NotFound("post"))?;
        }
        if !policy::may_reblog(&original, account) {
            return Err(StoreError::Forbidden("this post cannot be reblogged"));
        }
        // Reblogged already: the existing wrapper, without writing anything.
        let key = (db(original.id), db(account));
        if let Some((existing,)) = self.row::<(i64,)>(CTX, &st.reblog_get, key).await?
            && let Some(existing) = self.live_post(exec::id(existing)).await?
        {
            return Ok(Created {
                value: existing,
                created: false,
            });
        }
        let id = self.mint().await?;
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
        self.insert_post_row(&wrapper).await?;
        // A claim can find a stale row left by an unreblog that crashed after tombstoning
        // the wrapper; such a row is released and the claim tried again, a few times.
        for _ in 0..3 {
            let claim = (db(original.id), db(account), db(id));
            let claim = self.lwt(CTX, &st.reblog_claim, claim).await?;
            if claim.applied {
                self.publish_post(&wrapper).await?;
                return Ok(Created {
                    value: wrapper,
                    created: true,
                });
            }
            let Some(existing) = claim.bigint("reblog_id") else {
                continue;
            };
            if let Some(existing) = self.live_post(exec::id(existing)).await? {
                if let Err(e) = self.write(CTX, &st.post_purge, (db(id),)).await {
                    tracing::warn!(error = %e, "removing the row of a duplicate reblog");
                }
                return Ok(Created {
                    value: existing,
                    created: false,
                });
            }
            self.lwt(
                CTX,
                &st.reblog_release,
                (db(original.id), db(account), existing),
            )
            .await?;
        }
        if let Err(e) = self.write(CTX, &st.post_purge, (db(id),)).await {
            tracing::warn!(error = %e, "removing the row of an abandoned reblog");
        }
        Err(StoreError::unavailable(
            CTX,
            "the reblog kept changing under us; try again",
        ))
    }

    async fn unreblog(&self, account: Id, post: Id) -> Result<Option<Post>> {
        const CTX: &str = "unreblogging";
        // Accept the wrapper's id as well as the original's.
        let original = match self.live_post(post).await? {
            Some(p) => p.reblog_of.unwrap_or(p.id),
            None => post,
        };
        let values = (db(original), db(account));
        let Some((wrapper,)) = self
            .row::<(i64,)>(CTX, &self.st().reblog_get, values)
            .await?
        else {
            return Ok(None);
        };
        let removed = self.tombstone(exec::id(wrapper)).await?;
        if removed.is_none() {
            // A wrapper already gone: release the stale row it left.
            self.lwt(
                CTX,
                &self.st().reblog_release,
                (db(original), db(account), wrapper),
            )
            .await?;
        }
        Ok(removed)
    }

    async fn reblogged_by(&self, post: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading reblogs",
            &self.st().reblogged_by_page,
            post,
            window,
        )
        .await
    }

    async fn viewer_flags(&self, viewer: Id, posts: &[Id]) -> Result<Vec<ViewerFlags>> {
        const CTX: &str = "reading viewer flags";
        check::batch(posts.len())?;
        let st = self.st();
        each(posts.iter().copied(), |post| async move {
            let key = (db(post), db(viewer));
            let (favourited, reblogged, bookmarked, pinned) = futures::try_join!(
                self.exists(CTX, &st.favourite_get, key),
                self.exists(CTX, &st.reblog_get, key),
                self.is_marked(MarkKind::Bookmark, viewer, post),
                self.is_marked(MarkKind::Pin, viewer, post),
            )?;
            Ok(ViewerFlags {
                favourited,
                reblogged,
                bookmarked,
                pinned,
            })
        })
        .await
    }

    // ---- blocks and mutes -----------------------------------------------------------------

    async fn block(&self, account: Id, target: Id) -> Result<bool> {
        const CTX: &str = "blocking";
        check::distinct(account, target)?;
        let st = self.st();
        let (_, existed) = futures::try_join!(
            self.require_accounts([account, target]),
            self.exists(CTX, &st.block_get, (db(account), db(target))),
        )?;
        if !existed {
            // The block before the unfollows, so a follow racing with it meets the block.
            let at = ms(now_ms());
            futures::try_join!(
                self.write(CTX, &st.block_insert, (db(account), db(target), at)),
                self.write(CTX, &st.blocked_by_insert, (db(target), db(account), at)),
            )?;
        }
        futures::try_join!(
            self.set_follow(account, target, false),
            self.set_follow(target, account, false),
            self.withdraw(account, target),
            self.withdraw(target, account),
        )?;
        Ok(!existed)
    }

    async fn unblock(&self, account: Id, target: Id) -> Result<bool> {
        const CTX: &str = "unblocking";
        check::distinct(account, target)?;
        let st = self.st();
        let existed = self
            .exists(CTX, &st.block_get, (db(account), db(target)))
            .await?;
        if existed {
            futures::try_join!(
                self.write(CTX, &st.blocked_by_delete, (db(target), db(account))),
                self.write(CTX, &st.block_delete, (db(account), db(target))),
            )?;
        }
        Ok(existed)
    }

    async fn mute(&self, account: Id, target: Id, notifications: bool) -> Result<bool> {
        const CTX: &str = "muting";
        check::distinct(account, target)?;
        let st = self.st();
        let (_, current) = futures::try_join!(
            self.require_accounts([account, target]),
            self.row::<(Option<bool>,)>(CTX, &st.mute_get, (db(account), db(target))),
        )?;
        if current.map(|(n,)| n.unwrap_or(false)) == Some(notifications) {
            return Ok(false);
        }
        let at = ms(now_ms());
        let values = (db(account), db(target), notifications, at);
        futures::try_join!(
            self.write(CTX, &st.mute_insert, values),
            self.write(CTX, &st.muted_by_insert, (db(target), db(account), at)),
        )?;
        Ok(true)
    }

    async fn unmute(&self, account: Id, target: Id) -> Result<bool> {
        const CTX: &str = "unmuting";
        check::distinct(account, target)?;
        let st = self.st();
        let existed = self
            .exists(CTX, &st.mute_get, (db(account), db(target)))
            .await?;
        if existed {
            futures::try_join!(
                self.write(CTX, &st.muted_by_delete, (db(target), db(account))),
                self.write(CTX, &st.mute_delete, (db(account), db(target))),
            )?;
        }
        Ok(existed)
    }

    async fn blocks_of(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page("reading blocks", &self.st().blocks_page, account, window)
            .await
    }

    async fn mutes_of(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page("reading mutes", &self.st().mutes_page, account, window)
            .await
    }

    async fn relationships(&self, account: Id, targets: &[Id]) -> Result<Vec<Relationship>> {
        const CTX: &str = "reading relationships";
        check::batch(targets.len())?;
        let st = self.st();
        let ids: Vec<i64> = targets.iter().copied().map(db).collect();
        let set = |rows: Vec<(i64,)>| rows.into_iter().map(|(v,)| v).collect::<HashSet<i64>>();
        let (following, followed_by, blocking, blocked_by, muting, requested) = futures::try_join!(
            self.among::<(i64,)>(CTX, &st.following_among, account, &ids),
            self.among::<(i64,)>(CTX, &st.followers_among, account, &ids),
            self.among::<(i64,)>(CTX, &st.blocks_among, account, &ids),
            self.among::<(i64,)>(CTX, &st.blocked_by_among, account, &ids),
            self.among::<(i64, Option<bool>)>(CTX, &st.mutes_among, account, &ids),
            self.among::<(i64,)>(CTX, &st.follow_requests_sent_among, account, &ids),
        )?;
        let (following, followed_by) = (set(following), set(followed_by));
        let requested = set(requested);
        let (blocking, blocked_by) = (set(blocking), set(blocked_by));
        let muting: HashMap<i64, bool> = muting
            .into_iter()
            .map(|(t, n)| (t, n.unwrap_or(false)))
            .collect();
        Ok(targets
            .iter()
            .map(|&target| {
                let t = db(target);
                Relationship {
                    target,
                    following: following.contains(&t),
                    followed_by: followed_by.contains(&t),
                    blocking: blocking.contains(&t),
                    blocked_by: blocked_by.contains(&t),
                    muting: muting.contains_key(&t),
                    muting_notifications: muting.get(&t).copied().unwrap_or(false),
                    requested: requested.contains(&t),
                }
            })
            .collect())
    }

    // ---- notifications --------------------------------------------------------------------

    async fn notify(&self, new: NewNotification) -> Result<Option<Notification>> {
        const CTX: &str = "writing a notification";
        self.require_accounts([new.account_id]).await?;
        let id = self.mint().await?;
        let n = Notification {
            id,
            account_id: new.account_id,
            kind: new.kind,
            from_account_id: new.from_account_id,
            post_id: new.post_id,
            created_at_ms: id.unix_ms(),
        };
        let values = (
            db(n.account_id),
            db(id),
            n.kind.as_str(),
            db(n.from_account_id),
            unset(n.post_id.map(db)),
            ms(n.created_at_ms),
        );
        let st = self.st();
        // The row first, then the claim of its cause; a lost claim takes the row back. A
        // crash in between can leave a second notification for one cause, never none.
        self.write(CTX, &st.notification_insert, values).await?;
        let claim = (
            db(new.account_id),
            new.kind.as_str(),
            db(new.from_account_id),
            db(new.post_id.unwrap_or(Id::MIN)),
            db(id),
        );
        if self
            .lwt(CTX, &st.notification_key_claim, claim)
            .await?
            .applied
        {
            return Ok(Some(n));
        }
        self.write(CTX, &st.notification_delete, (db(n.account_id), db(id)))
            .await?;
        Ok(None)
    }

    async fn notifications(
        &self,
        account: Id,
        window: Window,
        kinds: Option<&[NotificationKind]>,
    ) -> Result<Page<Notification>> {
        const CTX: &str = "reading notifications";
        let st = self.st();
        let Some(kinds) = kinds else {
            let page = st.notifications_page.pick(window.order);
            return self
                .window(
                    CTX,
                    page,
                    account,
                    window,
                    NotificationRow::into_notification,
                    |n| n.id,
                )
                .await;
        };
        check::window(&window)?;
        let Some((lo, hi)) = exec::bounds(&window) else {
            return Ok(empty_page());
        };
        if kinds.is_empty() {
            return Ok(empty_page());
        }
        // Page through the partition until one more than a page matches, or it ends.
        let want = window.limit + 1;
        let mut items = Vec::with_capacity(want.min(1024));
        let scan = st.notifications_scan.pick(window.order);
        self.scan(CTX, scan, (db(account), lo, hi), |row: NotificationRow| {
            let n = row.into_notification()?;
            if kinds.contains(&n.kind) {
                items.push(n);
            }
            Ok(if items.len() >= want {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(finish(items, window, |n| n.id))
    }

    async fn notification(&self, account: Id, id: Id) -> Result<Option<Notification>> {
        let st = &self.st().notification_get;
        self.row::<NotificationRow>("reading a notification", st, (db(account), db(id)))
            .await?
            .map(NotificationRow::into_notification)
            .transpose()
    }

    async fn dismiss_notification(&self, account: Id, id: Id) -> Result<bool> {
        const CTX: &str = "dismissing a notification";
        let st = self.st();
        let key = (db(account), db(id));
        let existed = self.exists(CTX, &st.notification_get, key).await?;
        if existed {
            self.write(CTX, &st.notification_delete, key).await?;
        }
        Ok(existed)
    }

    async fn clear_notifications(&self, account: Id) -> Result<u64> {
        const CTX: &str = "clearing notifications";
        let st = self.st();
        let mut count = 0u64;
        let mut newest = None::<i64>;
        self.scan(CTX, &st.notification_ids, (db(account),), |(id,): (i64,)| {
            count += 1;
            newest = Some(newest.map_or(id, |n| n.max(id)));
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        // One range deletion up to the newest id counted: notifications that arrive
        // meanwhile (newer ids) are neither counted nor removed.
        if let Some(newest) = newest {
            self.write(CTX, &st.notifications_clear, (db(account), newest))
                .await?;
        }
        Ok(count)
    }

    // ---- conversations, public and tag timelines, who shuns whom ---------------------------

    async fn replies_to(&self, post: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page("reading replies", &self.st().replies_page, post, window)
            .await
    }

    async fn public_posts(&self, window: Window) -> Result<Page<Id>> {
        self.feed_page(ops::PUBLIC_FEED, window).await
    }

    async fn tagged_posts(&self, tag: &str, window: Window) -> Result<Page<Id>> {
        self.feed_page(&ops::tag_feed(tag), window).await
    }

    async fn blocked_by(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading blockers",
            &self.st().blocked_by_page,
            account,
            window,
        )
        .await
    }

    async fn muted_by(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page("reading muters", &self.st().muted_by_page, account, window)
            .await
    }

    // ---- event outbox ---------------------------------------------------------------------

    async fn outbox_push(&self, payload: Vec<u8>) -> Result<Id> {
        let id = self.mint().await?;
        let values = (self.inner.node_id, db(id), payload);
        self.write(
            "keeping an event in the outbox",
            &self.st().outbox_insert,
            values,
        )
        .await?;
        Ok(id)
    }

    async fn outbox_peek(&self, limit: usize) -> Result<Vec<(Id, Vec<u8>)>> {
        check::window(&Window::oldest(limit))?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let values = (self.inner.node_id, limit);
        let mut out = Vec::new();
        let st = &self.st().outbox_head;
        self.scan(
            "reading the outbox",
            st,
            values,
            |(id, payload): (i64, Vec<u8>)| {
                out.push((exec::id(id), payload));
                Ok(ControlFlow::Continue(()))
            },
        )
        .await?;
        Ok(out)
    }

    async fn outbox_remove(&self, id: Id) -> Result<()> {
        let values = (self.inner.node_id, db(id));
        self.write(
            "removing an event from the outbox",
            &self.st().outbox_delete,
            values,
        )
        .await
    }

    // ---- operations -----------------------------------------------------------------------

    async fn scan_posts(&self, after: Option<Id>, limit: usize) -> Result<Scan<Post>> {
        check::scan_limit(limit)?;
        let mut rows: Vec<StoredPost> = Vec::with_capacity(limit);
        let each = |row: StoredPostRow| {
            rows.push(row.into_stored()?);
            Ok(ControlFlow::Continue(()))
        };
        let n = i32::try_from(limit).unwrap_or(i32::MAX);
        const CTX: &str = "scanning posts";
        match after {
            None => {
                self.scan(CTX, &self.st().posts_scan_first, (n,), each)
                    .await?
            }
            Some(a) => {
                self.scan(CTX, &self.st().posts_scan, (db(a), n), each)
                    .await?
            }
        }
        let next = (rows.len() == limit)
            .then(|| rows.last().map(|s| s.post.id))
            .flatten();
        Ok(Scan {
            items: rows
                .into_iter()
                .filter(|s| !s.deleted)
                .map(|s| s.post)
                .collect(),
            next,
        })
    }

    async fn scan_accounts(&self, after: Option<Id>, limit: usize) -> Result<Scan<Account>> {
        check::scan_limit(limit)?;
        let mut items: Vec<Account> = Vec::with_capacity(limit);
        let each = |row: AccountRow| {
            items.push(row.into_account()?);
            Ok(ControlFlow::Continue(()))
        };
        let n = i32::try_from(limit).unwrap_or(i32::MAX);
        const CTX: &str = "scanning accounts";
        match after {
            None => {
                self.scan(CTX, &self.st().accounts_scan_first, (n,), each)
                    .await?
            }
            Some(a) => {
                self.scan(CTX, &self.st().accounts_scan, (db(a), n), each)
                    .await?
            }
        }
        let next = (items.len() == limit)
            .then(|| items.last().map(|a| a.id))
            .flatten();
        let ids: Vec<Id> = items.iter().map(|a| a.id).collect();
        let profiles = exec::each(ids, |id| self.profile(id)).await?;
        for (account, profile) in items.iter_mut().zip(profiles) {
            account.profile = profile;
        }
        Ok(Scan { items, next })
    }

    // ---- admin ----------------------------------------------------------------------------

    async fn moderate_account(
        &self,
        id: Id,
        suspended: Option<bool>,
        role: Option<Role>,
    ) -> Result<Account> {
        let mut account = self
            .account(id)
            .await?
            .ok_or(StoreError::NotFound("account"))?;
        if let Some(suspended) = suspended {
            account.suspended = suspended;
        }
        if let Some(role) = role {
            account.role = role;
        }
        self.write_account("moderating an account", &account)
            .await?;
        Ok(account)
    }

    async fn import_follows(&self, edges: Vec<(Id, Id)>) -> Result<u64> {
        check::edges(edges.len())?;
        let edges: Vec<(Id, Id)> = edges.into_iter().filter(|(a, b)| a != b).collect();
        let ids: HashSet<Id> = edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
        let found = each(ids, |id| self.account(id)).await?;
        if found.iter().any(Option::is_none) {
            return Err(StoreError::NotFound("account"));
        }
        // Each edge is a follow of its own (a compare-and-set on the edge's version), so
        // counts stay right when an import runs beside live follows or is run again.
        let added = each(edges, |(follower, followee)| async move {
            if self.blocked_either_way(follower, followee).await? {
                return Ok(false);
            }
            self.set_follow(follower, followee, true).await
        })
        .await?;
        Ok(added.into_iter().filter(|new| *new).count() as u64)
    }

    async fn delete_account(&self, id: Id) -> Result<bool> {
        const CTX: &str = "deleting an account";
        let st = self.st();
        let Some(account) = self.account(id).await? else {
            return Ok(false);
        };
        // Follows first, a page at a time, then the tokens, then the rows that make the
        // account reachable: a crash part-way leaves an account that a retry finishes.
        let mut window = Window::oldest(MAX_BATCH);
        loop {
            let page = self.following(id, window).await?;
            each(page.items, |followee| self.set_follow(id, followee, false)).await?;
            match page.next {
                Some(next) => window = next,
                None => break,
            }
        }
        let mut window = Window::oldest(MAX_BATCH);
        loop {
            let page = self.followers(id, window).await?;
            each(page.items, |follower| self.set_follow(follower, id, false)).await?;
            match page.next {
                Some(next) => window = next,
                None => break,
            }
        }
        self.withdraw_all(id).await?;
        for token in self.tokens_of(id).await? {
            self.revoke_token(&token.token_hash).await?;
        }
        self.remove_push_subscriptions(id).await?;
        self.forget_conversations(id).await?;
        for list in self.owned_lists(id).await? {
            self.drop_list(id, list.id).await?;
        }
        for tag in self.tags_of(id).await? {
            self.drop_tag_follow(id, &tag).await?;
        }
        let key = validate::username_key(&account.username);
        let email = self
            .row::<(Option<String>,)>(CTX, &st.credentials_email_get, (db(id),))
            .await?
            .and_then(|(email,)| email)
            .as_deref()
            .and_then(validate::email_key);
        if let Some(email) = &email {
            // Only if it is this account's: the condition leaves another's claim alone.
            self.lwt(CTX, &st.email_release, (email.as_str(), db(id)))
                .await?;
        }
        self.write(CTX, &st.account_delete, (db(id),)).await?;
        futures::try_join!(
            self.write(CTX, &st.username_delete, (key.as_str(),)),
            self.write(CTX, &st.credentials_delete, (db(id),)),
            self.write(CTX, &st.account_counters_delete, (db(id),)),
        )?;
        Ok(true)
    }

    async fn set_account_counts(&self, id: Id, counts: AccountCounts) -> Result<()> {
        const CTX: &str = "setting account counts";
        if self.account(id).await?.is_none() {
            return Err(StoreError::NotFound("account"));
        }
        // Counters can only be added to: add the difference to what they hold now.
        let st = self.st();
        let have = self
            .account_counts(&[id])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let delta = |want: u64, have: u64| {
            i64::try_from(want)
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::try_from(have).unwrap_or(i64::MAX))
        };
        let (followers, following, statuses) = (
            delta(counts.followers, have.followers),
            delta(counts.following, have.following),
            delta(counts.statuses, have.statuses),
        );
        if followers != 0 {
            self.bump(CTX, &st.followers_add, id, followers).await?;
        }
        if following != 0 {
            self.bump(CTX, &st.following_add, id, following).await?;
        }
        if statuses != 0 {
            self.bump(CTX, &st.statuses_add, id, statuses).await?;
        }
        Ok(())
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
        self.attach(account, post, ids).await
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
        self.owned_lists(owner).await
    }

    async fn list_members(&self, list: Id, window: Window) -> Result<Page<Id>> {
        self.members_page(list, window).await
    }

    async fn add_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()> {
        self.join_list(owner, list, accounts).await
    }

    async fn remove_list_members(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()> {
        self.leave_list(owner, list, accounts).await
    }

    async fn lists_with_member(
        &self,
        member: Id,
        owners_after: Option<Id>,
        owners_through: Option<Id>,
    ) -> Result<Vec<ListRef>> {
        self.member_of(member, owners_after, owners_through).await
    }

    async fn mark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        self.keep(kind, account, post).await
    }

    async fn unmark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        self.unkeep(kind, account, post).await
    }

    async fn marks(&self, kind: MarkKind, account: Id, window: Window) -> Result<Page<Mark>> {
        self.kept(kind, account, window).await
    }

    async fn follow_tag(&self, account: Id, tag: &str) -> Result<bool> {
        self.add_tag_follow(account, tag).await
    }

    async fn unfollow_tag(&self, account: Id, tag: &str) -> Result<bool> {
        self.drop_tag_follow(account, tag).await
    }

    async fn followed_tags(&self, account: Id) -> Result<Vec<String>> {
        self.tags_of(account).await
    }

    async fn dismiss_suggestion(&self, account: Id, target: Id) -> Result<bool> {
        const CTX: &str = "dismissing a suggestion";
        let st = self.st();
        let (_, existed) = futures::try_join!(
            self.require_accounts([account, target]),
            self.exists(CTX, &st.suggestion_dismissal_get, (db(account), db(target))),
        )?;
        if !existed {
            self.write(
                CTX,
                &st.suggestion_dismissal_insert,
                (db(account), db(target), ms(now_ms())),
            )
            .await?;
        }
        Ok(!existed)
    }

    async fn dismissed_suggestions(&self, account: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading dismissed suggestions",
            &self.st().suggestion_dismissals_page,
            account,
            window,
        )
        .await
    }

    async fn tag_followers(&self, tag: &str, window: Window) -> Result<Page<Id>> {
        self.followers_of_tag(tag, window).await
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
        self.cast_vote(account, poll, choices).await
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
        self.converse(account, participants, post, unread).await
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
        self.conversations_page(account, window).await
    }

    async fn conversation(&self, account: Id, id: Id) -> Result<Option<Conversation>> {
        self.conversation_of(account, id).await
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
        self.write("pinging the cluster", &self.st().ping, ()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_names_are_plain_identifiers_kept_in_case() {
        let ks = Keyspace::parse("Starling_test_1").unwrap();
        assert_eq!(ks.quoted, "\"Starling_test_1\"");
        for bad in ["", "a-b", "a\"b", "a.b", "a b", &"x".repeat(49)] {
            assert!(Keyspace::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn digests_compare_whole() {
        assert!(same_digest("abcd", "abcd"));
        assert!(!same_digest("abcd", "abce"));
        assert!(!same_digest("abcd", "abc"));
    }
}
