//! `GET /api/v2/search`: accounts (an exact address first, then username and display-name
//! prefixes), statuses (full text with `from:` and `#tag`, public and unlisted only) and
//! hashtags (by prefix, with usage counts) from this node's search index, hydrated like
//! timelines. Results by or from accounts the viewer blocks, mutes or is blocked by are left out.

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use starling_schema::{Id, policy};
use starling_search::StatusQuery;
use starling_store::Store;
use starling_timeline::TrendKind;

use crate::Api;
use crate::entities::{self, Json};
use crate::error::{ApiError, ApiResult};
use crate::extract::{MaybeAuth, Query};
use crate::hydrate::{self, Accounts};
use crate::pagination::{DEFAULT_LIMIT, MAX_LIMIT};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v2/search", web::get().to(search));
}

/// Account search for autocomplete (issue 13); registered before `/api/v1/accounts/{id}`.
pub fn configure_accounts(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/accounts/search", web::get().to(account_search));
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    account_id: Option<String>,
    min_id: Option<String>,
    max_id: Option<String>,
    /// Remote lookups (WebFinger) are not supported; accepted and ignored.
    #[allow(dead_code)]
    resolve: Option<String>,
    #[allow(dead_code)]
    following: Option<String>,
    #[allow(dead_code)]
    exclude_unreviewed: Option<String>,
}

fn number(name: &str, v: Option<&str>) -> Result<Option<usize>, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{name} must be a number"))),
    }
}

fn id(name: &str, v: Option<&str>) -> Result<Option<Id>, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{name} must be an id"))),
    }
}

/// The index failed: searching is unavailable, the rest of the API is not.
fn index_error(e: starling_search::SearchError) -> ApiError {
    match e.kind() {
        starling_schema::ErrorKind::Unavailable => {
            tracing::warn!(error = %e, "search index unavailable");
            ApiError::new(
                starling_schema::ErrorKind::Unavailable,
                "search is unavailable, try again",
            )
        }
        _ => ApiError::internal("search index failure", &e),
    }
}

/// Longest search query accepted.
const MAX_QUERY_CHARS: usize = 500;

async fn search(
    api: web::Data<Api>,
    viewer: MaybeAuth,
    Query(q): Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let viewer = viewer.0.map(|a| a.account.id);
    let raw = q.q.as_deref().unwrap_or_default();
    // Bounded before the query parser sees it.
    if raw.len() > MAX_QUERY_CHARS * 4 || raw.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid(format!(
            "q is too long (at most {MAX_QUERY_CHARS} characters)"
        )));
    }
    let query = raw.trim().to_owned();
    let kind = q.kind.as_deref().map(str::trim).unwrap_or_default();
    if !matches!(kind, "" | "accounts" | "statuses" | "hashtags") {
        return Err(ApiError::invalid(
            "type must be accounts, statuses or hashtags",
        ));
    }
    let limit = number("limit", q.limit.as_deref())?
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let offset = number("offset", q.offset.as_deref())?.unwrap_or(0);
    if offset > starling_search::MAX_WINDOW - MAX_LIMIT {
        return Err(ApiError::invalid("offset is too large"));
    }
    let account_id = id("account_id", q.account_id.as_deref())?;
    let min_id = id("min_id", q.min_id.as_deref())?;
    let max_id = id("max_id", q.max_id.as_deref())?;
    let wants = |k: &str| kind.is_empty() || kind == k;

    let mut accounts = Vec::new();
    let mut statuses = Vec::new();
    let mut hashtags = Vec::new();
    let answer = |accounts: &[Json], statuses: &[Json], hashtags: &[Value]| {
        Json::object([
            ("accounts", &Json::array(accounts)),
            ("statuses", &Json::array(statuses)),
            ("hashtags", &Json::of(hashtags)),
        ])
        .response()
    };
    if query.is_empty() {
        return Ok(answer(&accounts, &statuses, &hashtags));
    }
    if wants("accounts") {
        accounts = search_accounts(&api, viewer, &query, limit, offset).await?;
    }
    if wants("statuses") {
        statuses = search_statuses(
            &api, viewer, &query, account_id, min_id, max_id, limit, offset,
        )
        .await?;
    }
    if wants("hashtags") {
        let index = api.search.clone();
        let prefix = query.clone();
        let found = web::block(move || index.hashtags(&prefix, limit, offset))
            .await
            .map_err(|e| ApiError::internal("search task failed", &e))?
            .map_err(index_error)?;
        let names: Vec<String> = found.iter().map(|(name, _)| name.clone()).collect();
        let history = super::explore::histories(&api, TrendKind::Tags, &names).await?;
        let followed: HashSet<String> = match viewer {
            Some(v) if !names.is_empty() => api.store.followed_tags(v).await?.into_iter().collect(),
            _ => HashSet::new(),
        };
        hashtags = found
            .into_iter()
            .zip(history)
            .map(|((name, uses), days)| {
                json!({
                    "name": name,
                    "url": format!("{}/tags/{name}", api.base_url()),
                    "history": entities::history(&days),
                    "statuses_count": uses,
                    "following": followed.contains(&name),
                })
            })
            .collect();
    }
    Ok(answer(&accounts, &statuses, &hashtags))
}

/// Authors whose posts and accounts `viewer` must not see in results: blocked either way, muted.
async fn hidden_from(api: &Api, viewer: Option<Id>, ids: &[Id]) -> ApiResult<HashSet<Id>> {
    let Some(viewer) = viewer else {
        return Ok(HashSet::new());
    };
    let mut others: Vec<Id> = ids.iter().copied().filter(|&id| id != viewer).collect();
    others.sort_unstable();
    others.dedup();
    if others.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(api
        .store
        .relationships(viewer, &others)
        .await?
        .into_iter()
        .filter(|r| r.blocking || r.blocked_by || r.muting)
        .map(|r| r.target)
        .collect())
}

async fn search_accounts(
    api: &Api,
    viewer: Option<Id>,
    query: &str,
    limit: usize,
    offset: usize,
) -> ApiResult<Vec<Json>> {
    let ids = account_ids(api, viewer, query, limit, offset).await?;
    let loaded = Accounts::load(api, &ids).await?;
    Ok(ids.iter().filter_map(|&id| loaded.json(id)).collect())
}

/// Accounts matching `query` (an exact address first, then username and display-name
/// prefixes), without those the viewer must not see.
async fn account_ids(
    api: &Api,
    viewer: Option<Id>,
    query: &str,
    limit: usize,
    offset: usize,
) -> ApiResult<Vec<Id>> {
    let mut ids = Vec::new();
    // An exact address (`name`, `@name`, `name@this.domain`) comes first: clients resolve
    // an account to follow this way.
    if offset == 0 {
        let acct = query.trim_start_matches('@');
        let (name, domain) = acct.split_once('@').unwrap_or((acct, ""));
        let ours = domain.is_empty() || domain.eq_ignore_ascii_case(&api.settings.api.domain);
        if ours
            && starling_schema::validate::normalize_username(name).is_ok()
            && let Some(found) = api.store.accounts_by_usernames(&[name]).await?.first()
        {
            ids.push(found.id);
        }
    }
    let index = api.search.clone();
    let q = query.to_owned();
    let found = web::block(move || index.accounts(&q, limit, offset))
        .await
        .map_err(|e| ApiError::internal("search task failed", &e))?
        .map_err(index_error)?;
    for id in found {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.truncate(limit);
    let hidden = hidden_from(api, viewer, &ids).await?;
    ids.retain(|id| !hidden.contains(id));
    Ok(ids)
}

#[derive(Deserialize)]
struct AccountSearchQuery {
    q: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    /// Only accounts the viewer follows.
    #[serde(default, deserialize_with = "crate::extract::flex_bool")]
    following: Option<bool>,
    /// Remote lookups (WebFinger) are not supported; accepted and ignored.
    #[allow(dead_code)]
    resolve: Option<String>,
}

/// Candidates ranked before the viewer's follows are moved first.
const ACCOUNT_CANDIDATES: usize = 200;

/// `GET /api/v1/accounts/search`: prefix matches on username and display name, accounts
/// the viewer follows first (or only them with `following=true`).
async fn account_search(
    api: web::Data<Api>,
    auth: crate::extract::Auth,
    Query(q): Query<AccountSearchQuery>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let raw = q.q.as_deref().unwrap_or_default();
    if raw.len() > MAX_QUERY_CHARS * 4 || raw.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid(format!(
            "q is too long (at most {MAX_QUERY_CHARS} characters)"
        )));
    }
    let query = raw.trim();
    let limit = number("limit", q.limit.as_deref())?
        .unwrap_or(MAX_LIMIT)
        .clamp(1, 80);
    let offset = number("offset", q.offset.as_deref())?.unwrap_or(0);
    if query.is_empty() || offset >= ACCOUNT_CANDIDATES {
        return Ok(Json::array([]).response());
    }
    let mut ids = account_ids(&api, Some(me), query, ACCOUNT_CANDIDATES, 0).await?;
    let others: Vec<Id> = ids.iter().copied().filter(|id| *id != me).collect();
    let followed: HashSet<Id> = api
        .store
        .relationships(me, &others)
        .await?
        .into_iter()
        .filter(|r| r.following)
        .map(|r| r.target)
        .collect();
    if q.following == Some(true) {
        ids.retain(|id| followed.contains(id));
    }
    // A stable sort keeps the index's ranking within each group.
    ids.sort_by_key(|id| !followed.contains(id));
    let ids: Vec<Id> = ids.into_iter().skip(offset).take(limit).collect();
    let loaded = Accounts::load(&api, &ids).await?;
    let body: Vec<Json> = ids.iter().filter_map(|&id| loaded.json(id)).collect();
    Ok(Json::array(&body).response())
}

#[allow(clippy::too_many_arguments)]
async fn search_statuses(
    api: &Api,
    viewer: Option<Id>,
    query: &str,
    account_id: Option<Id>,
    min_id: Option<Id>,
    max_id: Option<Id>,
    limit: usize,
    offset: usize,
) -> ApiResult<Vec<Json>> {
    let mut sq = StatusQuery::parse(query);
    sq.author = account_id;
    if let Some(name) = sq.from.as_deref() {
        let Some(author) = api
            .store
            .accounts_by_usernames(&[name])
            .await?
            .first()
            .map(|a| a.id)
        else {
            return Ok(Vec::new());
        };
        if account_id.is_some_and(|a| a != author) {
            return Ok(Vec::new());
        }
        sq.author = Some(author);
    }
    sq.min_id = min_id;
    sq.max_id = max_id;
    sq.limit = limit;
    sq.offset = offset;
    let index = api.search.clone();
    let ids = web::block(move || index.statuses(&sq))
        .await
        .map_err(|e| ApiError::internal("search task failed", &e))?
        .map_err(index_error)?;
    // The store decides: a post deleted since it was indexed is not shown.
    let posts: Vec<Arc<starling_schema::model::Post>> = api
        .posts_by_ids(&ids)
        .await?
        .into_iter()
        // Unlisted posts are kept out of public discovery: only signed-in users find them.
        .filter(|p| policy::found_by_search(p, viewer.is_some()))
        .collect();
    let authors: Vec<Id> = posts.iter().map(|p| p.author_id).collect();
    let hidden = hidden_from(api, viewer, &authors).await?;
    let posts: Vec<_> = posts
        .into_iter()
        .filter(|p| {
            let rel = policy::Relation::in_feed(false, hidden.contains(&p.author_id));
            policy::may_see(p, viewer, &rel, policy::Surface::Feed)
        })
        .collect();
    hydrate::statuses(api, viewer, &posts).await
}
