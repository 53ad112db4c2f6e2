//! The Explore tab (issue 13): trends (`/api/v1/trends/tags`, `/statuses`, `/links`, and
//! `/api/v1/trends` for tags) and who to follow (`/api/v2/suggestions`,
//! `/api/v1/suggestions`, `DELETE /api/v1/suggestions/:id`).
//!
//! Both are computed in the background by the `discovery` role (`starling-discovery`) and
//! read here from Redis: decayed trend scores, usage history, each user's suggestions. What
//! the viewer may see is decided again at read time: a trending status by the policy (and
//! the viewer's blocks and mutes), a suggestion by the viewer's relationships and
//! dismissals as they are now.

use std::collections::HashSet;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use starling_schema::discovery::{DayUse, HISTORY_DAYS, Suggestion, history_days};
use starling_schema::ids::now_ms;
use starling_schema::{ErrorKind, Id, policy};
use starling_store::{Store, all_ids};
use starling_timeline::TrendKind;

use crate::entities::{self, Json};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, MaybeAuth, Query};
use crate::hydrate::{self, Accounts};
use crate::{Api, filters};
use starling_schema::startup::FilterContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/trends", web::get().to(trending_tags))
        .route("/api/v1/trends/tags", web::get().to(trending_tags))
        .route("/api/v1/trends/statuses", web::get().to(trending_statuses))
        .route("/api/v1/trends/links", web::get().to(trending_links))
        .route("/api/v2/suggestions", web::get().to(suggestions_v2))
        .route("/api/v1/suggestions", web::get().to(suggestions_v1))
        .route("/api/v1/suggestions/{id}", web::delete().to(dismiss));
}

#[derive(Deserialize)]
struct TrendQuery {
    limit: Option<String>,
    offset: Option<String>,
}

/// `limit` as Mastodon takes it: `default` when absent, at most `max` (a larger one is
/// clamped), at least 1; not a number is a 422.
fn limit(raw: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => Ok(s
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("limit must be a number"))?
            .clamp(1, max)),
    }
}

fn offset(raw: Option<&str>, max: usize) -> ApiResult<usize> {
    match raw.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => Ok(s
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("offset must be a number"))?
            .min(max)),
    }
}

fn params(api: &Api) -> starling_timeline::TrendParams {
    starling_timeline::TrendParams {
        half_life_ms: api.settings.discovery.half_life_secs.max(1) * 1_000,
        max_entries: api.settings.discovery.max_entries.max(1),
    }
}

/// The names on a trend list from `offset`, up to `count` of them (`count` + `offset` read).
async fn trend_names(api: &Api, kind: TrendKind, read: usize) -> ApiResult<Vec<String>> {
    let min = api.settings.discovery.min_score;
    match api
        .timelines
        .trending(kind, read, now_ms(), &params(api), min)
        .await
    {
        Ok(found) => Ok(found.into_iter().map(|(name, _)| name).collect()),
        // Degrade, don't fail: nothing trends while the shard is away.
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            tracing::warn!(error = %e, "trends unavailable");
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// The last 7 days of use of each hashtag or link in `names` (zeros while Redis is away).
pub(crate) async fn histories(
    api: &Api,
    kind: TrendKind,
    names: &[String],
) -> ApiResult<Vec<[DayUse; HISTORY_DAYS]>> {
    let now = now_ms();
    match api.timelines.usage_history(kind, names, now).await {
        Ok(h) => Ok(h),
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            tracing::warn!(error = %e, "usage history unavailable");
            let empty = history_days(now).map(|day| DayUse {
                day,
                ..DayUse::default()
            });
            Ok(vec![empty; names.len()])
        }
        Err(e) => Err(e.into()),
    }
}

/// Hashtags as Tag entities, with history and whether `viewer` follows each.
pub(crate) async fn tags(api: &Api, viewer: Option<Id>, names: &[String]) -> ApiResult<Vec<Json>> {
    let followed: HashSet<String> = match viewer {
        Some(v) if !names.is_empty() => api.store.followed_tags(v).await?.into_iter().collect(),
        _ => HashSet::new(),
    };
    let history = histories(api, TrendKind::Tags, names).await?;
    Ok(names
        .iter()
        .zip(history)
        .map(|(name, days)| entities::tag(api.base_url(), name, followed.contains(name), &days))
        .collect())
}

/// `Link: <...offset=N>; rel="next"` when a page was full, as Mastodon pages trends.
fn offset_links(req: &HttpRequest, offset: usize, limit: usize, full: bool) -> Option<String> {
    let info = req.connection_info();
    let base = format!("{}://{}{}", info.scheme(), info.host(), req.path());
    let mut links = Vec::new();
    if full {
        links.push(format!(
            "<{base}?offset={}&limit={limit}>; rel=\"next\"",
            offset + limit
        ));
    }
    if offset > 0 {
        links.push(format!(
            "<{base}?offset={}&limit={limit}>; rel=\"prev\"",
            offset.saturating_sub(limit)
        ));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

fn page(req: &HttpRequest, body: &[Json], offset: usize, limit: usize) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    if let Some(link) = offset_links(req, offset, limit, body.len() == limit) {
        res.insert_header((header::LINK, link));
    }
    Json::respond(&mut res, Json::array(body))
}

/// The page of trending tags or links that `limit` and `offset` ask for (10 by default, 20
/// at most), with the offset and limit read.
async fn trend_page(
    api: &Api,
    kind: TrendKind,
    q: &TrendQuery,
) -> ApiResult<(Vec<String>, usize, usize)> {
    let limit = limit(q.limit.as_deref(), 10, 20)?;
    let offset = offset(q.offset.as_deref(), api.settings.discovery.max_entries)?;
    let names = trend_names(api, kind, offset + limit)
        .await?
        .into_iter()
        .skip(offset)
        .collect();
    Ok((names, offset, limit))
}

async fn trending_tags(
    req: HttpRequest,
    api: web::Data<Api>,
    viewer: MaybeAuth,
    Query(q): Query<TrendQuery>,
) -> ApiResult<HttpResponse> {
    let (names, offset, limit) = trend_page(&api, TrendKind::Tags, &q).await?;
    let viewer = viewer.0.map(|a| a.account.id);
    let body = tags(&api, viewer, &names).await?;
    Ok(page(&req, &body, offset, limit))
}

async fn trending_statuses(
    req: HttpRequest,
    api: web::Data<Api>,
    viewer: MaybeAuth,
    Query(q): Query<TrendQuery>,
) -> ApiResult<HttpResponse> {
    let limit = limit(q.limit.as_deref(), 20, 40)?;
    let offset = offset(q.offset.as_deref(), api.settings.discovery.max_entries)?;
    // Read a little past the page: some may be gone or hidden from this viewer.
    let ids: Vec<Id> = trend_names(&api, TrendKind::Statuses, (offset + limit) * 2 + 10)
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let posts = api.posts_by_ids(&ids).await?;
    let authors: Vec<Id> = posts.iter().map(|p| p.author_id).collect();
    let accounts = api.accounts_by_ids(&authors).await?;
    // Still allowed to trend now (the author may have gone undiscoverable or suspended).
    let posts: Vec<_> = posts
        .into_iter()
        .filter(|p| {
            accounts
                .iter()
                .find(|a| a.id == p.author_id)
                .is_some_and(|a| policy::status_may_trend(p, a))
        })
        .collect();
    let viewer = viewer.0.map(|a| a.account.id);
    let posts = hydrate::filter_for(&api, viewer, posts).await?;
    let posts: Vec<_> = posts.into_iter().skip(offset).take(limit).collect();
    let verdicts = filters::judge(&api, viewer, FilterContext::Public, &posts).await?;
    let posts = verdicts.keep(posts);
    let mut body = hydrate::statuses(&api, viewer, &posts).await?;
    verdicts.mark(&mut body);
    Ok(page(&req, &body, offset, limit))
}

/// A link as Mastodon's `PreviewCard` (`TrendsLink`). Starling fetches no pages, so the
/// card is made of the URL alone: its title is the URL, its provider the host.
#[derive(Serialize)]
struct LinkJson<'a> {
    url: &'a str,
    title: &'a str,
    description: &'static str,
    r#type: &'static str,
    author_name: &'static str,
    author_url: &'static str,
    provider_name: &'a str,
    provider_url: String,
    html: &'static str,
    width: u32,
    height: u32,
    image: Option<()>,
    image_description: &'static str,
    embed_url: &'static str,
    blurhash: Option<()>,
    published_at: Option<()>,
    authors: [(); 0],
    history: Vec<entities::HistoryJson>,
}

fn host(url: &str) -> (&str, &str) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    (&url[..scheme_end], host)
}

async fn trending_links(
    req: HttpRequest,
    api: web::Data<Api>,
    // Nothing here depends on the viewer, but a presented token is checked for its scope.
    _viewer: MaybeAuth,
    Query(q): Query<TrendQuery>,
) -> ApiResult<HttpResponse> {
    let (urls, offset, limit) = trend_page(&api, TrendKind::Links, &q).await?;
    let history = histories(&api, TrendKind::Links, &urls).await?;
    let body: Vec<Json> = urls
        .iter()
        .zip(history)
        .map(|(url, days)| {
            let (scheme, host) = host(url);
            Json::of(&LinkJson {
                url,
                title: url,
                description: "",
                r#type: "link",
                author_name: "",
                author_url: "",
                provider_name: host,
                provider_url: format!("{scheme}{host}"),
                html: "",
                width: 0,
                height: 0,
                image: None,
                image_description: "",
                embed_url: "",
                blurhash: None,
                published_at: None,
                authors: [],
                history: entities::history(&days),
            })
        })
        .collect();
    Ok(page(&req, &body, offset, limit))
}

#[derive(Deserialize)]
struct SuggestionQuery {
    limit: Option<String>,
}

/// The viewer's suggestions as they stand now: computed ones (or the global list while
/// there are none), without whom the viewer follows, asked to follow, blocks, is blocked
/// by, mutes or dismissed, and without accounts that may not be suggested.
async fn suggested(api: &Api, me: Id, limit: usize) -> ApiResult<Vec<(Suggestion, Json)>> {
    let own = match api.timelines.suggestions(me).await {
        Ok(own) => own,
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            tracing::warn!(error = %e, "suggestions unavailable");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    let list = match own {
        Some(list) => list,
        None => api
            .timelines
            .global_suggestions()
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "global suggestions unavailable");
                Vec::new()
            }),
    };
    let ids: Vec<Id> = list
        .iter()
        .map(|s| s.account)
        .filter(|&id| id != me)
        .take(starling_store::MAX_BATCH)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let dismissed: HashSet<Id> = all_ids(|w| api.store.dismissed_suggestions(me, w))
        .await?
        .into_iter()
        .collect();
    let shunned: HashSet<Id> = api
        .store
        .relationships(me, &ids)
        .await?
        .into_iter()
        .filter(|r| r.following || r.requested || r.blocking || r.blocked_by || r.muting)
        .map(|r| r.target)
        .collect();
    let ids: Vec<Id> = ids
        .into_iter()
        .filter(|id| !dismissed.contains(id) && !shunned.contains(id))
        .collect();
    let allowed: HashSet<Id> = api
        .accounts_by_ids(&ids)
        .await?
        .iter()
        .filter(|a| policy::may_suggest(a))
        .map(|a| a.id)
        .collect();
    let ids: Vec<Id> = ids
        .into_iter()
        .filter(|id| allowed.contains(id))
        .take(limit)
        .collect();
    let loaded = Accounts::load(api, &ids).await?;
    Ok(list
        .into_iter()
        .filter(|s| ids.contains(&s.account))
        .filter_map(|s| loaded.json(s.account).map(|j| (s, j)))
        .collect())
}

async fn suggestions_v2(
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<SuggestionQuery>,
) -> ApiResult<HttpResponse> {
    let limit = limit(q.limit.as_deref(), 40, 80)?;
    let found = suggested(&api, auth.account.id, limit).await?;
    let body: Vec<Json> = found
        .iter()
        .map(|(s, account)| {
            Json::object([
                ("source", &Json::of(s.legacy_source())),
                ("sources", &Json::of(&s.source_names())),
                ("account", account),
            ])
        })
        .collect();
    Ok(Json::array(&body).response())
}

async fn suggestions_v1(
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<SuggestionQuery>,
) -> ApiResult<HttpResponse> {
    let limit = limit(q.limit.as_deref(), 40, 80)?;
    let found = suggested(&api, auth.account.id, limit).await?;
    let body: Vec<Json> = found.into_iter().map(|(_, account)| account).collect();
    Ok(Json::array(&body).response())
}

/// Never suggest this account again. An id that names no account is 404.
async fn dismiss(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let target = super::path_id(&path)?;
    api.store
        .dismiss_suggestion(auth.account.id, target)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => ApiError::not_found("Record"),
            _ => e.into(),
        })?;
    Ok(Json::object([]).response())
}
