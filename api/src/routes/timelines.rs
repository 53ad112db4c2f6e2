//! Timelines. Home: one range read on the reader's Redis shard (rebuilt from the store if
//! missing), filtered again by the reader's blocks and mutes, then hydration in batches.
//! Public and hashtag: pages of the store's lists of public originals, filtered the same way.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use serde::Deserialize;
use starling_schema::Id;
use starling_store::Store;

use crate::entities::Json;
use crate::error::ApiResult;
use crate::extract::{Auth, MaybeAuth, Query, flex_bool};
use crate::pagination::{PageParams, link_header};
use crate::{Api, filters, hydrate, text};
use starling_schema::startup::FilterContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/timelines/home", web::get().to(home))
        .route("/api/v1/timelines/public", web::get().to(public))
        .route("/api/v1/timelines/tag/{hashtag}", web::get().to(tag))
        .route("/api/v1/timelines/list/{id}", web::get().to(list));
}

#[derive(Deserialize)]
struct PublicQuery {
    #[serde(flatten)]
    page: PageParams,
    /// Every account is local, so `local` changes nothing and `remote` selects nothing.
    #[serde(default, deserialize_with = "flex_bool")]
    remote: Option<bool>,
    /// Only posts with media attachments.
    #[serde(default, deserialize_with = "flex_bool")]
    only_media: Option<bool>,
}

async fn public(
    req: HttpRequest,
    api: web::Data<Api>,
    viewer: MaybeAuth,
    Query(q): Query<PublicQuery>,
) -> ApiResult<HttpResponse> {
    let cursor = q.page.cursor()?;
    if q.remote == Some(true) {
        return Ok(Json::array([]).response());
    }
    let ids = api.store.public_posts(cursor.window).await?.items;
    listed(
        req,
        &api,
        viewer,
        ids,
        cursor.reverse,
        q.only_media == Some(true),
    )
    .await
}

async fn tag(
    req: HttpRequest,
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
    Query(q): Query<PublicQuery>,
) -> ApiResult<HttpResponse> {
    let cursor = q.page.cursor()?;
    // The tag as posts store it: what `#name` parses to. Anything that is not a whole tag
    // names no posts.
    let raw = path.trim_start_matches('#');
    let tag = text::hashtags(&format!("#{raw}"))
        .into_iter()
        .next()
        .filter(|t| t.chars().count() == raw.chars().count());
    let Some(tag) = tag else {
        return Ok(Json::array([]).response());
    };
    if q.remote == Some(true) {
        return Ok(Json::array([]).response());
    }
    let ids = api.store.tagged_posts(&tag, cursor.window).await?.items;
    listed(
        req,
        &api,
        viewer,
        ids,
        cursor.reverse,
        q.only_media == Some(true),
    )
    .await
}

/// A page of listed post ids as statuses the viewer may see, with its Link header (from
/// every id scanned, so the next page starts where this one stopped).
async fn listed(
    req: HttpRequest,
    api: &Api,
    viewer: MaybeAuth,
    mut ids: Vec<Id>,
    reverse: bool,
    only_media: bool,
) -> ApiResult<HttpResponse> {
    let viewer = viewer.0.map(|a| a.account.id);
    if reverse {
        ids.reverse();
    }
    let mut posts = api.posts_by_ids(&ids).await?;
    if only_media {
        posts = hydrate::only_media(api, posts).await?;
    }
    let posts = hydrate::filter_for(api, viewer, posts).await?;
    // Filter hook (issue 11): the viewer's `public` filters hide or mark statuses.
    let verdicts = filters::judge(api, viewer, FilterContext::Public, &posts).await?;
    let posts = verdicts.keep(posts);
    let mut body = hydrate::statuses(api, viewer, &posts).await?;
    verdicts.mark(&mut body);
    let body = Json::array(&body);
    let mut res = HttpResponse::Ok();
    if let (Some(newest), Some(oldest)) = (ids.first(), ids.last()) {
        res.insert_header((header::LINK, link_header(&req, *newest, *oldest)));
    }
    Ok(Json::respond(&mut res, body))
}

async fn home(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let cursor = page.cursor()?;
    let mut ids = match api.timelines.read(&api.store, me, cursor.window).await {
        Ok(ids) => ids,
        // Degrade, don't fail: a shard that is down or busy is replaced by the store.
        Err(e) if e.kind() == starling_schema::ErrorKind::Unavailable => {
            tracing::warn!(error = %e, user = %me, "timeline shard unavailable; reading home from the store");
            api.timelines
                .read_from_store(&api.store, me, cursor.window)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    if cursor.reverse {
        ids.reverse();
    }
    own_feed(&req, &api, me, ids).await
}

/// One of the viewer's lists (issue 13), read like home from its Redis feed (rebuilt from
/// the members' posts when missing, computed from the store when its shard is down).
/// Someone else's list is not found.
async fn list(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let list = super::lists::owned(&api, me, super::path_id(&path)?).await?;
    let cursor = page.cursor()?;
    let mut ids = match api
        .timelines
        .read_list(&api.store, &list, cursor.window)
        .await
    {
        Ok(ids) => ids,
        // Degrade, don't fail: as home, a list on a shard that is down or busy is read
        // from the store.
        Err(e) if e.kind() == starling_schema::ErrorKind::Unavailable => {
            tracing::warn!(error = %e, list = %list.id, "timeline shard unavailable; reading a list from the store");
            api.timelines
                .read_list_from_store(&api.store, &list, cursor.window)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    if cursor.reverse {
        ids.reverse();
    }
    own_feed(&req, &api, me, ids).await
}

/// A page of one of the viewer's own feeds (home or a list), newest first.
async fn own_feed(req: &HttpRequest, api: &Api, me: Id, ids: Vec<Id>) -> ApiResult<HttpResponse> {
    let posts = api.posts_by_ids(&ids).await?;
    // Blocks and mutes newer than what fan-out saw still hide their posts at once.
    let posts = hydrate::filter_for(api, Some(me), posts).await?;
    // Filter hook (issue 11): the viewer's `home` filters hide or mark statuses (lists too,
    // as Mastodon's `home` context covers lists).
    let verdicts = filters::judge(api, Some(me), FilterContext::Home, &posts).await?;
    let posts = verdicts.keep(posts);
    let mut body = hydrate::statuses(api, Some(me), &posts).await?;
    verdicts.mark(&mut body);
    let body = Json::array(&body);
    let mut res = HttpResponse::Ok();
    if let (Some(newest), Some(oldest)) = (ids.first(), ids.last()) {
        res.insert_header((header::LINK, link_header(req, *newest, *oldest)));
    }
    Ok(Json::respond(&mut res, body))
}
