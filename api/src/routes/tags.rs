//! Followed hashtags (issue 13): `GET /api/v1/followed_tags`, `GET /api/v1/tags/:name` and
//! follow/unfollow. Fan-out brings a followed tag's public posts into home; following or
//! unfollowing forgets the home feed, so the next read rebuilds it with (or without) them.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use starling_schema::feeds::{TAG_MAX_CHARS, check_tag};
use starling_store::Store;
use starling_timeline::TrendKind;

use crate::Api;
use crate::entities::{self, Json};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, MaybeAuth, Query};
use crate::text;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/followed_tags", web::get().to(followed))
        .route("/api/v1/tags/{name}", web::get().to(show))
        .route("/api/v1/tags/{name}/follow", web::post().to(follow))
        .route("/api/v1/tags/{name}/unfollow", web::post().to(unfollow));
}

/// The tag a path names, as posts store it: what `#name` parses to, whole.
fn tag_name(raw: &str) -> ApiResult<String> {
    let raw = raw.trim_start_matches('#');
    let invalid = || {
        ApiError::invalid(format!(
            "tag must be a hashtag of at most {TAG_MAX_CHARS} characters"
        ))
    };
    if raw.chars().count() > TAG_MAX_CHARS {
        return Err(invalid());
    }
    let tag = text::hashtags(&format!("#{raw}"))
        .into_iter()
        .next()
        .filter(|t| t.chars().count() == raw.chars().count())
        .ok_or_else(invalid)?;
    check_tag(&tag).map_err(|_| invalid())?;
    Ok(tag)
}

/// A hashtag as Mastodon's `Tag`, with its usage history.
async fn tag(api: &Api, name: &str, following: bool) -> ApiResult<Json> {
    let names = [name.to_owned()];
    let days = super::explore::histories(api, TrendKind::Tags, &names)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(entities::tag(api.base_url(), name, following, &days))
}

#[derive(Deserialize)]
struct FollowedQuery {
    limit: Option<String>,
}

async fn followed(
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<FollowedQuery>,
) -> ApiResult<HttpResponse> {
    let limit = match q.limit.as_deref().map(str::trim) {
        None | Some("") => 100,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("limit must be a number"))?
            .clamp(1, 200),
    };
    let mut tags = api.store.followed_tags(auth.account.id).await?;
    tags.truncate(limit);
    let body = super::explore::tags(&api, Some(auth.account.id), &tags).await?;
    Ok(Json::array(&body).response())
}

async fn show(
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let name = tag_name(&path)?;
    let following = match viewer.0 {
        Some(a) => api.store.followed_tags(a.account.id).await?.contains(&name),
        None => false,
    };
    Ok(tag(&api, &name, following).await?.response())
}

async fn follow(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let name = tag_name(&path)?;
    if api.store.follow_tag(auth.account.id, &name).await? {
        api.timelines.clear(auth.account.id).await?;
    }
    Ok(tag(&api, &name, true).await?.response())
}

async fn unfollow(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let name = tag_name(&path)?;
    if api.store.unfollow_tag(auth.account.id, &name).await? {
        api.timelines.clear(auth.account.id).await?;
    }
    Ok(tag(&api, &name, false).await?.response())
}
