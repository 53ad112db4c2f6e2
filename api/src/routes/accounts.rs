//! Accounts: registration, the signed-in user, lookups, lists and follows.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::{NewAccount, NewToken, Page, Role, Visibility, Window};
use starling_store::Store;

use super::path_id;
use crate::entities::Json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyToken, Auth, Body, MaybeAuth, Query, flex_bool, one_or_many};
use crate::hydrate::{self, Accounts};
use crate::pagination::{PageParams, link_header};
use crate::{Api, entities};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/accounts", web::post().to(register))
        .route(
            "/api/v1/accounts/verify_credentials",
            web::get().to(verify_credentials),
        )
        .route("/api/v1/accounts/lookup", web::get().to(lookup))
        .route(
            "/api/v1/accounts/relationships",
            web::get().to(relationships),
        )
        .route("/api/v1/accounts/{id}", web::get().to(show))
        .route("/api/v1/accounts/{id}/statuses", web::get().to(statuses))
        .route("/api/v1/accounts/{id}/followers", web::get().to(followers))
        .route("/api/v1/accounts/{id}/following", web::get().to(following))
        .route("/api/v1/accounts/{id}/follow", web::post().to(follow))
        .route("/api/v1/accounts/{id}/unfollow", web::post().to(unfollow))
        .route("/api/v1/accounts/{id}/block", web::post().to(block))
        .route("/api/v1/accounts/{id}/unblock", web::post().to(unblock))
        .route("/api/v1/accounts/{id}/mute", web::post().to(mute))
        .route("/api/v1/accounts/{id}/unmute", web::post().to(unmute))
        .route("/api/v1/blocks", web::get().to(blocks))
        .route("/api/v1/mutes", web::get().to(mutes));
}

#[derive(Deserialize)]
struct Registration {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    #[serde(default, deserialize_with = "flex_bool")]
    agreement: Option<bool>,
}

async fn register(
    api: web::Data<Api>,
    token: AnyToken,
    Body(form): Body<Registration>,
) -> ApiResult<HttpResponse> {
    if !api.settings.api.registrations {
        return Err(ApiError::forbidden(
            "Registrations are closed on this server",
        ));
    }
    // Mastodon: `doorkeeper_authorize! :write, :'write:accounts'`; never for a suspended user.
    if !token
        .0
        .scopes
        .iter()
        .any(|s| s == "write" || s == "write:accounts")
    {
        return Err(ApiError::forbidden(
            "This action is outside the authorized scopes",
        ));
    }
    // Read from the store, not the cache: a suspension takes effect here at once.
    if let Some(owner) = token.0.account_id
        && api
            .store
            .accounts_by_ids(&[owner])
            .await?
            .first()
            .is_none_or(|a| a.suspended)
    {
        return Err(ApiError::forbidden("Your login is currently disabled"));
    }
    if form.agreement != Some(true) {
        return Err(ApiError::invalid(
            "Validation failed: Agreement must be accepted",
        ));
    }
    let username = form.username.unwrap_or_default();
    starling_schema::validate::validate_local_username(
        &username,
        &api.settings.limits.reserved_usernames,
    )?;
    let _permit = api.limits.hash_permit()?;
    let account = api
        .store
        .create_account(NewAccount {
            username,
            email: form.email.filter(|e| !e.is_empty()),
            password: form.password.unwrap_or_default(),
            display_name: None,
            role: Role::User,
            bot: false,
        })
        .await
        .map_err(|e| match &e {
            // Mastodon's words for an address another account signed up with.
            starling_store::StoreError::Conflict(m) if m.starts_with("email") => {
                ApiError::invalid("Validation failed: Email has already been taken")
            }
            _ => ApiError::from(e),
        })?;
    // The new user's timeline exists from the start, so fan-out fills it at once. If the
    // shard is down, the first home read rebuilds it instead; sign-up still succeeds.
    if let Err(e) = api.timelines.create_empty(account.id).await {
        tracing::warn!(error = %e, account = %account.id, "could not create the new timeline; it will be rebuilt on first read");
    }
    api.publish(Event::AccountCreated {
        account: account.clone(),
    })
    .await?;
    let issued = api
        .store
        .issue_token(NewToken {
            account_id: Some(account.id),
            app_id: token.0.app_id,
            scopes: token.0.scopes.clone(),
            expires_at_ms: None,
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "scope": token.0.scopes.join(" "),
        "created_at": issued.info.created_at_ms / 1000,
    })))
}

async fn verify_credentials(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    super::profile::credential_account(&api, &auth.account).await
}

async fn account_json(api: &Api, id: Id) -> ApiResult<Json> {
    Accounts::load(api, &[id])
        .await?
        .json(id)
        .ok_or_else(|| ApiError::not_found("Record"))
}

/// `_viewer` checks a presented token's scope (Mastodon's `authorize_if_got_token!`).
async fn show(
    api: web::Data<Api>,
    _viewer: MaybeAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    Ok(account_json(&api, id).await?.response())
}

#[derive(Deserialize)]
struct LookupQuery {
    acct: Option<String>,
}

async fn lookup(
    api: web::Data<Api>,
    _viewer: MaybeAuth,
    Query(q): Query<LookupQuery>,
) -> ApiResult<HttpResponse> {
    let acct = q.acct.unwrap_or_default();
    let acct = acct.trim().trim_start_matches('@');
    let (name, domain) = acct.split_once('@').unwrap_or((acct, ""));
    if !domain.is_empty() && !domain.eq_ignore_ascii_case(&api.settings.api.domain) {
        return Err(ApiError::not_found("Record"));
    }
    let found = api.store.accounts_by_usernames(&[name]).await?;
    let account = found.first().ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(account_json(&api, account.id).await?.response())
}

#[derive(Deserialize)]
struct RelationshipsQuery {
    #[serde(
        rename = "id[]",
        alias = "id",
        default,
        deserialize_with = "one_or_many"
    )]
    ids: Vec<String>,
}

async fn relationships(
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<RelationshipsQuery>,
) -> ApiResult<HttpResponse> {
    if q.ids.len() > crate::pagination::MAX_LIMIT {
        return Err(ApiError::invalid(format!(
            "at most {} ids",
            crate::pagination::MAX_LIMIT
        )));
    }
    // Ids that cannot be ids name nobody; Mastodon answers with the others.
    let ids: Vec<Id> = q.ids.iter().filter_map(|s| s.parse().ok()).collect();
    let rels = api.store.relationships(auth.account.id, &ids).await?;
    let body: Vec<Json> = rels.iter().map(entities::relationship).collect();
    Ok(Json::array(&body).response())
}

#[derive(Deserialize)]
struct StatusesQuery {
    #[serde(flatten)]
    page: PageParams,
    #[serde(default, deserialize_with = "flex_bool")]
    exclude_replies: Option<bool>,
    #[serde(default, deserialize_with = "flex_bool")]
    exclude_reblogs: Option<bool>,
    #[serde(default, deserialize_with = "flex_bool")]
    only_media: Option<bool>,
    #[serde(default, deserialize_with = "flex_bool")]
    pinned: Option<bool>,
}

async fn statuses(
    req: HttpRequest,
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
    Query(q): Query<StatusesQuery>,
) -> ApiResult<HttpResponse> {
    let author = path_id(&path)?;
    if api.account(author).await?.is_none() {
        return Err(ApiError::not_found("Record"));
    }
    let viewer = viewer.0.map(|a| a.account.id);
    let cursor = q.page.cursor()?;
    if q.pinned == Some(true) {
        return super::kept::pinned(&req, &api, viewer, author, &cursor).await;
    }
    let page = api.store.posts_by_author(author, cursor.window).await?;
    let scanned: Vec<Id> = page.items.iter().map(|p| p.id).collect();
    // Every post here has the same author: one follow lookup serves the page.
    let needs_follow = page
        .items
        .iter()
        .any(|p| p.visibility == Visibility::Private);
    let follows_author = needs_follow && hydrate::follows(&api, viewer, author).await?;
    let mut shown = Vec::with_capacity(page.items.len());
    for post in page.items {
        if q.exclude_replies == Some(true)
            && post
                .in_reply_to_id
                .is_some_and(|_| post.in_reply_to_account_id != Some(author))
        {
            continue;
        }
        if q.exclude_reblogs == Some(true) && post.reblog_of.is_some() {
            continue;
        }
        if hydrate::visible(&post, viewer, follows_author) {
            shown.push(std::sync::Arc::new(post));
        }
    }
    if cursor.reverse {
        shown.reverse();
    }
    if q.only_media == Some(true) {
        shown = hydrate::only_media(&api, shown).await?;
    }
    // Filter hook (issue 11): the viewer's `account` filters hide or mark statuses.
    let ctx = starling_schema::startup::FilterContext::Account;
    let verdicts = crate::filters::judge(&api, viewer, ctx, &shown).await?;
    let shown = verdicts.keep(shown);
    let mut body = hydrate::statuses(&api, viewer, &shown).await?;
    verdicts.mark(&mut body);
    let body = Json::array(&body);
    Ok(with_link(&req, scanned, cursor.reverse, body))
}

/// Answer with a page and its Link header, computed from every id the page scanned (even
/// ones filtered out), so the next page starts where this one stopped.
pub(super) fn with_link(
    req: &HttpRequest,
    mut scanned: Vec<Id>,
    reversed: bool,
    body: Json,
) -> HttpResponse {
    if reversed {
        scanned.reverse();
    }
    let mut res = HttpResponse::Ok();
    if let (Some(newest), Some(oldest)) = (scanned.first(), scanned.last()) {
        res.insert_header((header::LINK, link_header(req, *newest, *oldest)));
    }
    Json::respond(&mut res, body)
}

pub(super) async fn account_list(
    req: HttpRequest,
    api: &Api,
    ids: Vec<Id>,
    reversed: bool,
) -> ApiResult<HttpResponse> {
    let mut ordered = ids.clone();
    if reversed {
        ordered.reverse();
    }
    let accounts = Accounts::load(api, &ordered).await?;
    let body: Vec<Json> = ordered.iter().filter_map(|id| accounts.json(*id)).collect();
    Ok(with_link(&req, ids, reversed, Json::array(&body)))
}

async fn followers(
    req: HttpRequest,
    api: web::Data<Api>,
    _viewer: MaybeAuth,
    path: web::Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    if api.account(id).await?.is_none() {
        return Err(ApiError::not_found("Record"));
    }
    let cursor = page.cursor_with(40, 80)?;
    let ids = api.store.followers(id, cursor.window).await?.items;
    account_list(req, &api, ids, cursor.reverse).await
}

async fn following(
    req: HttpRequest,
    api: web::Data<Api>,
    _viewer: MaybeAuth,
    path: web::Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    if api.account(id).await?.is_none() {
        return Err(ApiError::not_found("Record"));
    }
    let cursor = page.cursor_with(40, 80)?;
    let ids = api.store.following(id, cursor.window).await?.items;
    account_list(req, &api, ids, cursor.reverse).await
}

async fn relationship(api: &Api, me: Id, target: Id) -> ApiResult<HttpResponse> {
    let rels = api.store.relationships(me, &[target]).await?;
    let rel = rels.first().ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(entities::relationship(rel).response())
}

/// The end of a relationship action on `target`: publish `event` if the store says it
/// changed something, then answer the relationship as it now stands.
async fn settle(
    api: &Api,
    me: Id,
    target: Id,
    changed: bool,
    event: Event,
) -> ApiResult<HttpResponse> {
    if changed {
        if matches!(
            event,
            Event::Blocked { .. }
                | Event::Unblocked { .. }
                | Event::Muted { .. }
                | Event::Unmuted { .. }
        ) {
            // Before answering: the next page this user reads already hides (or shows) them.
            api.shun_changed(me, target).await;
        }
        api.publish(event).await?;
    }
    relationship(api, me, target).await
}

/// An undo (unfollow, unblock, unmute) names an account that must exist, even when there is
/// nothing to undo.
async fn existing(api: &Api, target: Id) -> ApiResult<Id> {
    match api.account(target).await? {
        Some(_) => Ok(target),
        None => Err(ApiError::not_found("Record")),
    }
}

async fn follow(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (me, target) = (auth.account.id, path_id(&path)?);
    // A locked account decides who follows it: the follow waits as a request.
    let locked = api.account(target).await?.is_some_and(|a| a.locked);
    let (changed, event) = if locked {
        let event = Event::FollowRequested {
            follower_id: me,
            followee_id: target,
        };
        (api.store.request_follow(me, target).await?, event)
    } else {
        let event = Event::Followed {
            follower_id: me,
            followee_id: target,
        };
        (api.store.follow(me, target).await?, event)
    };
    settle(&api, me, target, changed, event).await
}

async fn unfollow(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (me, target) = (auth.account.id, existing(&api, path_id(&path)?).await?);
    let changed = api.store.unfollow(me, target).await?;
    let event = Event::Unfollowed {
        follower_id: me,
        followee_id: target,
    };
    settle(&api, me, target, changed, event).await
}

/// Block `target`. The store ends follows both ways; fan-out, given the block, takes each
/// one's posts out of the other's timeline.
async fn block(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (me, target) = (auth.account.id, path_id(&path)?);
    let changed = api.store.block(me, target).await?;
    let event = Event::Blocked {
        account_id: me,
        target_id: target,
    };
    settle(&api, me, target, changed, event).await
}

async fn unblock(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (me, target) = (auth.account.id, existing(&api, path_id(&path)?).await?);
    let changed = api.store.unblock(me, target).await?;
    let event = Event::Unblocked {
        account_id: me,
        target_id: target,
    };
    settle(&api, me, target, changed, event).await
}

#[derive(Deserialize)]
struct MuteForm {
    /// Also hide their notifications (Mastodon's default: true).
    #[serde(default, deserialize_with = "flex_bool")]
    notifications: Option<bool>,
}

async fn mute(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Body(form): Body<MuteForm>,
) -> ApiResult<HttpResponse> {
    let (me, target) = (auth.account.id, path_id(&path)?);
    let notifications = form.notifications.unwrap_or(true);
    let changed = api.store.mute(me, target, notifications).await?;
    let event = Event::Muted {
        account_id: me,
        target_id: target,
        notifications,
    };
    settle(&api, me, target, changed, event).await
}

async fn unmute(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (me, target) = (auth.account.id, existing(&api, path_id(&path)?).await?);
    let changed = api.store.unmute(me, target).await?;
    let event = Event::Unmuted {
        account_id: me,
        target_id: target,
    };
    settle(&api, me, target, changed, event).await
}

/// A page of one of the signed-in user's own lists of accounts, which `read` pages (40 by
/// default, at most 80), with its Link header.
pub(super) async fn own_list<F, Fut>(
    req: HttpRequest,
    api: &Api,
    page: &PageParams,
    read: F,
) -> ApiResult<HttpResponse>
where
    F: FnOnce(Window) -> Fut,
    Fut: std::future::Future<Output = starling_store::Result<Page<Id>>>,
{
    let cursor = page.cursor_with(40, 80)?;
    let ids = read(cursor.window).await?.items;
    account_list(req, api, ids, cursor.reverse).await
}

async fn blocks(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    own_list(req, &api, &page, |w| api.store.blocks_of(me, w)).await
}

async fn mutes(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    own_list(req, &api, &page, |w| api.store.mutes_of(me, w)).await
}
