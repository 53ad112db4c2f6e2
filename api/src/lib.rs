//! The HTTP face of Starling: the Mastodon client API over actix-web.
//!
//! Owns: routes, request parsing, authentication, the mapping from error kinds to status
//! codes and `{"error": ...}` bodies (only here), hydration of statuses and accounts through
//! in-process caches, the write path's hand-off to the event publisher, and the read path
//! over Redis timelines, and search over the index the search crate keeps. It talks to the
//! store, the timelines, the bus and the index through their crates; it never depends on
//! the fan-out crate, and handlers never see driver types.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use moka::future::Cache;
use starling_bus::{Bus, Publisher};
use starling_schema::Id;
use starling_schema::model::{Account, Post, TokenInfo};
use starling_schema::settings::Settings;
use starling_store::{AnyStore, Store};
use starling_timeline::Timelines;

mod cors;
pub mod entities;
pub mod error;
pub mod extract;
pub mod fields;
pub mod filters;
mod hydrate;
mod metrics;
pub mod openapi;
pub mod pagination;
pub mod ratelimit;
mod routes;
pub mod scopes;
pub mod streaming;
pub mod text;

use error::ApiResult;

/// Everything a request handler may use. Shared by all workers of one api node.
pub struct Api {
    pub store: AnyStore,
    pub timelines: Timelines,
    pub bus: Bus,
    pub publisher: Publisher<AnyStore>,
    pub settings: Settings,
    /// This node's search index (read side; the indexer role writes it).
    pub search: starling_search::SearchIndex,
    /// This node's live streams.
    pub hub: streaming::Hub,
    /// Rate limits and the password-hashing queue.
    pub limits: ratelimit::RateLimits,
    posts: Cache<Id, Arc<Post>>,
    accounts: Cache<Id, Arc<Account>>,
    tokens: Cache<String, Arc<TokenInfo>>,
    // ---- sign-in (OAuth pages) and discovery ----
    /// Signs the sign-in pages' session cookies and CSRF tokens.
    sessions: routes::oauth::session::SessionKey,
    /// Users and posts for nodeinfo, counted now and then.
    pub(crate) usage: routes::discovery::UsageCounts,
    /// Each viewer's content filters (issue 11, start-up endpoints).
    pub filters: filters::FilterCache,
    /// Render once, serve many: each post's and account's unchanging JSON members.
    status_members: Cache<Id, Arc<str>>,
    account_members: Cache<Id, Arc<str>>,
    /// Per viewer: the accounts they block, are blocked by or mute, kept true by block and
    /// mute events (this node's at once, other nodes' through the live channel).
    shunned: Cache<Id, Arc<HashSet<Id>>>,
    /// Where uploads are kept (issue 12), and the base URL files are served from.
    pub storage: starling_media::storage::AnyStorage,
    pub media_base: String,
    /// The VAPID key, loaded on first use (from settings or the store).
    vapid: tokio::sync::OnceCell<starling_push::VapidKey>,
}

impl Api {
    pub fn new(
        store: AnyStore,
        timelines: Timelines,
        bus: Bus,
        publisher: Publisher<AnyStore>,
        settings: Settings,
        search: starling_search::SearchIndex,
        storage: starling_media::storage::AnyStorage,
    ) -> Api {
        Api {
            posts: Cache::builder()
                .max_capacity(settings.api.post_cache)
                // Another node's delete reaches this cache as a live `Forget`, or, if
                // that message is lost, through this expiry.
                .time_to_live(Duration::from_secs(60))
                .build(),
            accounts: Cache::builder()
                .max_capacity(settings.api.account_cache)
                .time_to_live(Duration::from_secs(60))
                .build(),
            tokens: Cache::builder()
                .max_capacity(100_000)
                // A token revoked on another node stops working within this time.
                .time_to_live(Duration::from_secs(10))
                .build(),
            // The same lifetime as the posts and accounts they are rendered from.
            status_members: Cache::builder()
                .max_capacity(settings.api.post_cache)
                .time_to_live(Duration::from_secs(60))
                .build(),
            account_members: Cache::builder()
                .max_capacity(settings.api.account_cache)
                .time_to_live(Duration::from_secs(60))
                .build(),
            shunned: Cache::builder()
                .max_capacity(settings.api.account_cache)
                // A change announced by another node that never arrived (core NATS is
                // fire-and-forget) is picked up within this time.
                .time_to_live(Duration::from_secs(30))
                .build(),
            hub: streaming::Hub::new(settings.streaming.clone()),
            storage,
            media_base: entities::media_base(&settings),
            sessions: routes::oauth::session::SessionKey::new(
                settings.api.session_secret.as_deref(),
                settings.api.session_hours,
                &settings.api.public_url,
            ),
            usage: routes::discovery::UsageCounts::default(),
            filters: filters::FilterCache::default(),
            limits: ratelimit::RateLimits::new(
                &settings.rate_limits,
                settings.limits.password_hash_queue,
            ),
            vapid: tokio::sync::OnceCell::new(),
            store,
            timelines,
            bus,
            publisher,
            settings,
            search,
        }
    }

    /// The server's VAPID key (`push.vapid_private_key`, or the one kept in the store).
    pub async fn vapid(&self) -> ApiResult<&starling_push::VapidKey> {
        self.vapid
            .get_or_try_init(|| starling_push::vapid_key(&self.store, &self.settings.push))
            .await
            .map_err(|e| match e {
                starling_push::PushError::Store(e) => e.into(),
                other => error::ApiError::internal("loading the VAPID key", &other),
            })
    }

    pub fn base_url(&self) -> &str {
        self.settings.api.public_url.trim_end_matches('/')
    }

    /// What a presented token grants, through a short-lived cache keyed by its digest.
    pub async fn token(&self, token: &str) -> ApiResult<Option<Arc<TokenInfo>>> {
        let key = starling_store::token_digest(token);
        if let Some(info) = self.tokens.get(&key).await
            && !info.expired_at(starling_schema::ids::now_ms())
        {
            return Ok(Some(info));
        }
        match self.store.token(token).await? {
            Some(info) => {
                let info = Arc::new(info);
                self.tokens.insert(key, info.clone()).await;
                Ok(Some(info))
            }
            None => Ok(None),
        }
    }

    pub async fn forget_token(&self, token_hash: &str) {
        self.tokens.invalidate(token_hash).await;
    }

    /// A token was revoked: forget it here and tell every node (this one included) to
    /// forget it too and close the streams opened with it.
    pub async fn revoked(&self, token_hash: String) {
        self.forget_token(&token_hash).await;
        let event = starling_schema::events::LiveEvent::Revoked { token_hash };
        if let Err(e) = self
            .bus
            .publish_live(&starling_bus::Channel::Revoked, &event)
            .await
        {
            tracing::warn!(error = %e, "could not tell other nodes of a revoked token; their caches forget it within 10 s");
        }
    }

    /// Drop a cached account (an operator suspended, changed or deleted it).
    pub async fn forget_account(&self, id: Id) {
        self.accounts.invalidate(&id).await;
        self.account_members.invalidate(&id).await;
    }

    /// An account was edited here: forget it, and tell every other api node to forget it
    /// too, so the edit shows everywhere at once.
    pub async fn account_changed(&self, id: Id) {
        self.forget_account(id).await;
        let event = starling_schema::events::LiveEvent::AccountChanged { account: id };
        if let Err(e) = self
            .bus
            .publish_live(&starling_bus::Channel::Revoked, &event)
            .await
        {
            tracing::warn!(error = %e, "could not tell other nodes of an edited account; their caches forget it within 60 s");
        }
    }

    /// The accounts `viewer` blocks, is blocked by or mutes, through the cache.
    pub async fn shunned(&self, viewer: Id) -> ApiResult<Arc<HashSet<Id>>> {
        if let Some(hit) = self.shunned.get(&viewer).await {
            return Ok(hit);
        }
        let (blocks, blockers, mutes) = futures::try_join!(
            starling_store::all_ids(|w| self.store.blocks_of(viewer, w)),
            starling_store::all_ids(|w| self.store.blocked_by(viewer, w)),
            starling_store::all_ids(|w| self.store.mutes_of(viewer, w)),
        )?;
        let set: Arc<HashSet<Id>> =
            Arc::new(blocks.into_iter().chain(blockers).chain(mutes).collect());
        self.shunned.insert(viewer, set.clone()).await;
        Ok(set)
    }

    /// Forget the cached block and mute sets of `accounts` on this node.
    pub async fn forget_shunned(&self, accounts: &[Id]) {
        for a in accounts {
            self.shunned.invalidate(a).await;
        }
    }

    /// A block or mute between `account` and `target` was made or undone: forget both
    /// sides' sets here and tell every node to forget them too.
    pub async fn shun_changed(&self, account: Id, target: Id) {
        self.forget_shunned(&[account, target]).await;
        let event = starling_schema::events::LiveEvent::Shunned {
            accounts: vec![account, target],
        };
        if let Err(e) = self
            .bus
            .publish_live(&starling_bus::Channel::Revoked, &event)
            .await
        {
            tracing::warn!(error = %e, "could not tell other nodes of a block or mute; their caches forget it within 30 s");
        }
    }

    /// An account's unchanging JSON members, rendered once.
    pub async fn account_members(&self, account: &Account) -> Arc<str> {
        if let Some(hit) = self.account_members.get(&account.id).await {
            return hit;
        }
        // Without its images it is rendered with the defaults and not kept.
        let images = match self.store.profile_images(&[account.id]).await {
            Ok(mut found) => found.pop(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read profile images");
                None
            }
        };
        let rendered: Arc<str> = entities::account_members(
            account,
            self.base_url(),
            images.as_ref().unwrap_or(&Default::default()),
            &self.media_base,
        )
        .into();
        if images.is_none() {
            return rendered;
        }
        self.account_members
            .insert(account.id, rendered.clone())
            .await;
        rendered
    }

    /// The unchanging JSON members of each post, rendered once: posts whose author is gone
    /// are left out.
    pub async fn status_members_of(
        &self,
        posts: &[&Arc<Post>],
    ) -> ApiResult<HashMap<Id, Arc<str>>> {
        let mut out = HashMap::with_capacity(posts.len());
        let mut missing: Vec<&Post> = Vec::new();
        for p in posts {
            match self.status_members.get(&p.id).await {
                Some(hit) => {
                    out.insert(p.id, hit);
                }
                None => missing.push(p),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let mut ids: Vec<Id> = missing
            .iter()
            .flat_map(|p| std::iter::once(p.author_id).chain(p.mentions.iter().copied()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let accounts: HashMap<Id, Arc<Account>> = self
            .accounts_by_ids(&ids)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        // Attachments never change once attached: they are rendered with the rest.
        let originals: Vec<Id> = missing
            .iter()
            .filter(|p| p.reblog_of.is_none())
            .map(|p| p.id)
            .collect();
        let media = self.media_of_posts(&originals).await?;
        for p in missing {
            let Some(author) = accounts.get(&p.author_id) else {
                continue;
            };
            let mentioned: Vec<&Account> = p
                .mentions
                .iter()
                .filter_map(|id| accounts.get(id).map(|a| a.as_ref()))
                .collect();
            let rendered: Arc<str> = entities::status_members(
                p,
                &author.username,
                &mentioned,
                media.get(&p.id).map_or(&[], Vec::as_slice),
                self.base_url(),
                &self.media_base,
            )
            .into();
            self.status_members.insert(p.id, rendered.clone()).await;
            out.insert(p.id, rendered);
        }
        Ok(out)
    }

    /// The attachments of each of `posts` that has any, in order, a store batch at a time.
    pub async fn media_of_posts(
        &self,
        posts: &[Id],
    ) -> ApiResult<HashMap<Id, Vec<starling_schema::media::MediaAttachment>>> {
        let mut out: HashMap<Id, Vec<_>> = HashMap::new();
        for chunk in posts.chunks(starling_store::MAX_BATCH) {
            for m in self.store.media_of_posts(chunk).await? {
                if let Some(post) = m.post_id {
                    out.entry(post).or_default().push(m);
                }
            }
        }
        Ok(out)
    }

    pub async fn account(&self, id: Id) -> ApiResult<Option<Arc<Account>>> {
        Ok(self.accounts_by_ids(&[id]).await?.into_iter().next())
    }

    /// Accounts by id through the cache, in the order asked, skipping unknown ids.
    pub async fn accounts_by_ids(&self, ids: &[Id]) -> ApiResult<Vec<Arc<Account>>> {
        through_cache(
            &self.accounts,
            ids,
            |a| a.id,
            |chunk| async move { self.store.accounts_by_ids(&chunk).await },
        )
        .await
    }

    /// Live posts by id through the cache, in the order asked, skipping unknown or deleted.
    pub async fn posts_by_ids(&self, ids: &[Id]) -> ApiResult<Vec<Arc<Post>>> {
        through_cache(
            &self.posts,
            ids,
            |p| p.id,
            |chunk| async move { self.store.posts_by_ids(&chunk).await },
        )
        .await
    }

    /// Hand an event to the bus: back once JetStream has it or the outbox keeps it.
    pub async fn publish(&self, event: starling_schema::events::Event) -> ApiResult<()> {
        self.publisher.publish(event).await.map_err(|e| {
            tracing::error!(error = %e, "an event could be neither published nor kept in the outbox");
            error::ApiError::new(starling_schema::ErrorKind::Unavailable, "the event bus is unavailable, try again")
        })
    }

    pub async fn forget_post(&self, id: Id) {
        self.posts.invalidate(&id).await;
        self.status_members.invalidate(&id).await;
    }

    /// A post was deleted or edited here: forget it, and tell every other api node to forget
    /// it too.
    pub async fn post_gone(&self, id: Id) {
        self.forget_post(id).await;
        let event = starling_schema::events::LiveEvent::Forget { post_id: id };
        if let Err(e) = self
            .bus
            .publish_live(&starling_bus::Channel::Revoked, &event)
            .await
        {
            tracing::warn!(error = %e, "could not tell other nodes of a deleted post; their caches forget it within 60 s");
        }
    }
}

/// Look `ids` up in `cache`, load the misses with `load` in store-sized batches, and
/// answer in the order asked, skipping ids the store does not have.
async fn through_cache<T, F, Fut>(
    cache: &Cache<Id, Arc<T>>,
    ids: &[Id],
    id_of: impl Fn(&T) -> Id,
    load: F,
) -> ApiResult<Vec<Arc<T>>>
where
    T: Send + Sync + 'static,
    F: Fn(Vec<Id>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, starling_store::StoreError>>,
{
    let mut found: HashMap<Id, Arc<T>> = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match cache.get(id).await {
            Some(hit) => {
                found.insert(*id, hit);
            }
            None => missing.push(*id),
        }
    }
    missing.sort_unstable();
    missing.dedup();
    for chunk in missing.chunks(starling_store::MAX_BATCH) {
        for item in load(chunk.to_vec()).await? {
            let item = Arc::new(item);
            let id = id_of(&item);
            cache.insert(id, item.clone()).await;
            found.insert(id, item);
        }
    }
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// Start the HTTP server on `listener` with `workers` threads (0: one per core).
pub fn server(api: Arc<Api>, listener: std::net::TcpListener) -> std::io::Result<Server> {
    let workers = match api.settings.api.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let max_body = api.settings.api.max_body_bytes;
    let data = web::Data::from(api);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(actix_web::middleware::from_fn(ratelimit::enforce))
            .wrap(actix_web::middleware::from_fn(metrics::observe))
            // Outermost, so error answers and preflights carry CORS headers too.
            .wrap(actix_web::middleware::from_fn(cors::cors))
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .workers(workers)
    .shutdown_timeout(30)
    .listen(listener)?
    .run();
    Ok(server)
}
