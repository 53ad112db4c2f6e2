//! What an account keeps of posts (issue 13): bookmarks, the favourites list, and pins.
//! Bookmarks and favourites page by when they were kept, newest first, with Link headers
//! over those ids (Mastodon's), not over the posts' ids.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use starling_schema::Id;
use starling_schema::feeds::{Mark, MarkKind};
use starling_schema::model::Post;
use starling_store::Store;

use super::path_id;
use super::statuses::{action_target, one_status};
use crate::entities::Json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Query};
use crate::pagination::{Cursor, PageParams, link_header};
use crate::{Api, hydrate};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/statuses/{id}/bookmark", web::post().to(bookmark))
        .route(
            "/api/v1/statuses/{id}/unbookmark",
            web::post().to(unbookmark),
        )
        .route("/api/v1/statuses/{id}/pin", web::post().to(pin))
        .route("/api/v1/statuses/{id}/unpin", web::post().to(unpin))
        .route("/api/v1/bookmarks", web::get().to(bookmarks))
        .route("/api/v1/favourites", web::get().to(favourites));
}

async fn bookmark(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    keep(&api, &auth, &path, MarkKind::Bookmark, true).await
}

async fn unbookmark(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    keep(&api, &auth, &path, MarkKind::Bookmark, false).await
}

async fn pin(api: web::Data<Api>, auth: Auth, path: web::Path<String>) -> ApiResult<HttpResponse> {
    keep(&api, &auth, &path, MarkKind::Pin, true).await
}

async fn unpin(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    keep(&api, &auth, &path, MarkKind::Pin, false).await
}

/// Keep (or stop keeping) the post a path names and answer with it. A bookmark names the
/// original of a reblog, as favourites do; a pin names the post itself.
async fn keep(
    api: &Api,
    auth: &Auth,
    path: &str,
    kind: MarkKind,
    on: bool,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let id = path_id(path)?;
    let post = match kind {
        MarkKind::Pin => own_post(api, me, id).await?,
        _ => action_target(api, me, id).await?,
    };
    if on {
        api.store.mark(kind, me, post.id).await?;
    } else {
        api.store.unmark(kind, me, post.id).await?;
    }
    one_status(api, me, post).await
}

/// A post the viewer may see, as is (a pin names the post itself, never its original).
async fn own_post(api: &Api, me: Id, id: Id) -> ApiResult<Arc<Post>> {
    let post = api
        .posts_by_ids(&[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    if !hydrate::can_see(api, Some(me), &post).await? {
        return Err(ApiError::not_found("Record"));
    }
    Ok(post)
}

async fn bookmarks(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    kept(&req, &api, &auth, &page, MarkKind::Bookmark).await
}

async fn favourites(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    kept(&req, &api, &auth, &page, MarkKind::Favourite).await
}

/// A page of what the viewer kept of `kind`, newest kept first.
async fn kept(
    req: &HttpRequest,
    api: &Api,
    auth: &Auth,
    page: &PageParams,
    kind: MarkKind,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let cursor = page.cursor()?;
    let marks = api.store.marks(kind, me, cursor.window).await?.items;
    page_of(req, api, Some(me), marks, &cursor).await
}

/// `author`'s pinned posts the viewer may see, newest pinned first (`pinned=true` on an
/// account's statuses).
pub(super) async fn pinned(
    req: &HttpRequest,
    api: &Api,
    viewer: Option<Id>,
    author: Id,
    cursor: &Cursor,
) -> ApiResult<HttpResponse> {
    let marks = api
        .store
        .marks(MarkKind::Pin, author, cursor.window)
        .await?
        .items;
    page_of(req, api, viewer, marks, cursor).await
}

/// The statuses of a page of marks that the viewer may still see (deleted posts and
/// posts of accounts they block or mute are left out), with a Link header over the marks.
async fn page_of(
    req: &HttpRequest,
    api: &Api,
    viewer: Option<Id>,
    mut marks: Vec<Mark>,
    cursor: &Cursor,
) -> ApiResult<HttpResponse> {
    if cursor.reverse {
        marks.reverse();
    }
    let ids: Vec<Id> = marks.iter().map(|m| m.post_id).collect();
    let posts = api.posts_by_ids(&ids).await?;
    let posts = hydrate::filter_for(api, viewer, posts).await?;
    let body = hydrate::statuses(api, viewer, &posts).await?;
    let mut res = HttpResponse::Ok();
    if let (Some(newest), Some(oldest)) = (marks.first(), marks.last()) {
        res.insert_header((header::LINK, link_header(req, newest.id, oldest.id)));
    }
    Ok(Json::respond(&mut res, Json::array(&body)))
}
