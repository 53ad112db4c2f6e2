//! Content filters: `/api/v2/filters` with their keywords and statuses, and the v1 view
//! in which each keyword is a filter of its own. Where filters apply is `crate::filters`.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::startup::{
    Filter, FilterAction, FilterContext, FilterDraft, KeywordDraft, StatusDraft,
};
use starling_store::Store;

use super::{json, path_id};
use crate::Api;
use crate::entities::iso8601;
use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::fields::{self, Fields};
use crate::filters::{filter_json, keyword_json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One keyword or status: Mastodon's paths are `/api/v2/filters/keywords/:id` and
    // `/api/v2/filters/statuses/:id` (Mastodon.py uses them); `/api/v2/filter_keywords/:id`
    // and `/api/v2/filter_statuses/:id` are accepted too.
    for prefix in ["/api/v2/filters/keywords", "/api/v2/filter_keywords"] {
        let path = format!("{prefix}/{{id}}");
        cfg.route(&path, web::get().to(keyword_show))
            .route(&path, web::put().to(keyword_update))
            .route(&path, web::delete().to(keyword_delete));
    }
    for prefix in ["/api/v2/filters/statuses", "/api/v2/filter_statuses"] {
        let path = format!("{prefix}/{{id}}");
        cfg.route(&path, web::get().to(status_show))
            .route(&path, web::delete().to(status_delete));
    }
    cfg.route("/api/v2/filters", web::get().to(list))
        .route("/api/v2/filters", web::post().to(create))
        .route("/api/v2/filters/{id}", web::get().to(show))
        .route("/api/v2/filters/{id}", web::put().to(update))
        .route("/api/v2/filters/{id}", web::delete().to(delete))
        .route("/api/v2/filters/{id}/keywords", web::get().to(keywords))
        .route("/api/v2/filters/{id}/keywords", web::post().to(add_keyword))
        .route("/api/v2/filters/{id}/statuses", web::get().to(statuses))
        .route("/api/v2/filters/{id}/statuses", web::post().to(add_status))
        .route("/api/v1/filters", web::get().to(v1_list))
        .route("/api/v1/filters", web::post().to(v1_create))
        .route("/api/v1/filters/{id}", web::get().to(v1_show))
        .route("/api/v1/filters/{id}", web::put().to(v1_update))
        .route("/api/v1/filters/{id}", web::delete().to(v1_delete));
}

// ---- parsing ------------------------------------------------------------------------------

/// `context[]`: `None` when absent; every value must be a known context.
fn contexts(v: Option<&Value>) -> ApiResult<Option<Vec<FilterContext>>> {
    if v.is_none_or(Value::is_null) {
        return Ok(None);
    }
    fields::list(v)
        .iter()
        .map(|c| {
            let name = fields::text(Some(c)).unwrap_or_default();
            FilterContext::parse(&name).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Validation failed: Context {name:?} is not one of home, notifications, \
                     public, thread, account"
                ))
            })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

fn action(v: Option<&Value>) -> ApiResult<Option<FilterAction>> {
    match fields::text(v) {
        None => Ok(None),
        Some(a) => FilterAction::parse(&a).map(Some).ok_or_else(|| {
            ApiError::invalid(format!("filter_action {a:?} is not one of warn, hide"))
        }),
    }
}

/// `expires_in` (seconds): absent → `None` (unchanged); empty or null → `Some(None)`
/// (never expires); otherwise the time it expires.
fn expiry(obj: &Value) -> ApiResult<Option<Option<u64>>> {
    let Some(v) = obj.get("expires_in") else {
        return Ok(None);
    };
    let raw = fields::text(Some(v)).unwrap_or_default();
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Some(None));
    }
    let secs: u64 = raw
        .parse()
        .ok()
        .filter(|s| *s > 0 && *s <= 10 * 365 * 24 * 3600)
        .ok_or_else(|| ApiError::invalid("expires_in must be a positive number of seconds"))?;
    Ok(Some(Some(now_ms() + secs * 1000)))
}

fn whole_word(v: Option<&Value>) -> ApiResult<Option<bool>> {
    fields::boolean("whole_word", v)
}

fn keyword_text(v: Option<&Value>) -> ApiResult<String> {
    fields::text(v)
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("Validation failed: Keyword can't be blank"))
}

/// Apply `keywords_attributes[]` to a draft: an item with an `id` changes (or with
/// `_destroy` removes) that keyword; one without adds a keyword.
fn apply_keywords(draft: &mut FilterDraft, attrs: Option<&Value>) -> ApiResult<()> {
    for item in fields::list(attrs) {
        let id = match fields::text(item.get("id")) {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<Id>()
                    .map_err(|_| ApiError::not_found("Record"))?,
            ),
        };
        let destroy = fields::boolean("_destroy", item.get("_destroy"))?.unwrap_or(false);
        match id {
            Some(id) => {
                let pos = draft
                    .keywords
                    .iter()
                    .position(|k| k.id == Some(id))
                    .ok_or_else(|| ApiError::not_found("Record"))?;
                if destroy {
                    draft.keywords.remove(pos);
                    continue;
                }
                if let Some(k) = draft.keywords.get_mut(pos) {
                    if let Some(text) = fields::text(item.get("keyword")) {
                        k.keyword = text;
                    }
                    if let Some(w) = whole_word(item.get("whole_word"))? {
                        k.whole_word = w;
                    }
                }
            }
            None if destroy => {}
            None => draft.keywords.push(KeywordDraft {
                id: None,
                keyword: keyword_text(item.get("keyword"))?,
                whole_word: whole_word(item.get("whole_word"))?.unwrap_or(true),
            }),
        }
    }
    Ok(())
}

fn draft_of(f: &Filter) -> FilterDraft {
    FilterDraft {
        id: Some(f.id),
        title: f.title.clone(),
        context: f.context.clone(),
        action: f.action,
        expires_at_ms: f.expires_at_ms,
        keywords: f
            .keywords
            .iter()
            .map(|k| KeywordDraft {
                id: Some(k.id),
                keyword: k.keyword.clone(),
                whole_word: k.whole_word,
            })
            .collect(),
        statuses: f
            .statuses
            .iter()
            .map(|s| StatusDraft {
                id: Some(s.id),
                status_id: s.status_id,
            })
            .collect(),
    }
}

// ---- store access ---------------------------------------------------------------------

async fn filter_of(api: &Api, me: Id, raw: &str) -> ApiResult<Filter> {
    let id = path_id(raw)?;
    api.store
        .filters_of(me)
        .await?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::not_found("Record"))
}

/// The filter holding keyword (or filter status) `raw`.
async fn owner_of(api: &Api, me: Id, raw: &str, keyword: bool) -> ApiResult<(Filter, Id)> {
    let id = path_id(raw)?;
    api.store
        .filters_of(me)
        .await?
        .into_iter()
        .find(|f| {
            if keyword {
                f.keywords.iter().any(|k| k.id == id)
            } else {
                f.statuses.iter().any(|s| s.id == id)
            }
        })
        .map(|f| (f, id))
        .ok_or_else(|| ApiError::not_found("Record"))
}

async fn save(api: &Api, me: Id, draft: FilterDraft) -> ApiResult<Filter> {
    let saved = api.store.save_filter(me, draft).await;
    api.filters.forget(me).await;
    Ok(saved?)
}

// ---- v2 -----------------------------------------------------------------------------------

async fn list(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    let all = api.store.filters_of(auth.account.id).await?;
    Ok(json(
        &all.iter().map(|f| filter_json(f, true)).collect::<Vec<_>>(),
    ))
}

async fn create(api: web::Data<Api>, auth: Auth, Fields(b): Fields) -> ApiResult<HttpResponse> {
    let title = fields::text(b.get("title"))
        .ok_or_else(|| ApiError::invalid("Validation failed: Title can't be blank"))?;
    let context = contexts(b.get("context"))?
        .ok_or_else(|| ApiError::invalid("Validation failed: Context can't be blank"))?;
    let mut draft = FilterDraft {
        id: None,
        title,
        context,
        action: action(b.get("filter_action"))?.unwrap_or_default(),
        expires_at_ms: expiry(&b)?.flatten(),
        keywords: Vec::new(),
        statuses: Vec::new(),
    };
    apply_keywords(&mut draft, b.get("keywords_attributes"))?;
    let f = save(&api, auth.account.id, draft).await?;
    Ok(json(&filter_json(&f, true)))
}

async fn show(api: web::Data<Api>, auth: Auth, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let f = filter_of(&api, auth.account.id, &path).await?;
    Ok(json(&filter_json(&f, true)))
}

async fn update(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Fields(b): Fields,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let f = filter_of(&api, me, &path).await?;
    let mut draft = draft_of(&f);
    if let Some(title) = fields::text(b.get("title")) {
        draft.title = title;
    }
    if let Some(context) = contexts(b.get("context"))? {
        draft.context = context;
    }
    if let Some(a) = action(b.get("filter_action"))? {
        draft.action = a;
    }
    if let Some(e) = expiry(&b)? {
        draft.expires_at_ms = e;
    }
    apply_keywords(&mut draft, b.get("keywords_attributes"))?;
    let f = save(&api, me, draft).await?;
    Ok(json(&filter_json(&f, true)))
}

async fn delete(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let id = path_id(&path)?;
    let existed = api.store.delete_filter(me, id).await?;
    api.filters.forget(me).await;
    if !existed {
        return Err(ApiError::not_found("Record"));
    }
    Ok(json(&json!({})))
}

async fn keywords(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let f = filter_of(&api, auth.account.id, &path).await?;
    Ok(json(
        &f.keywords.iter().map(keyword_json).collect::<Vec<_>>(),
    ))
}

async fn add_keyword(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Fields(b): Fields,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let f = filter_of(&api, me, &path).await?;
    let mut draft = draft_of(&f);
    draft.keywords.push(KeywordDraft {
        id: None,
        keyword: keyword_text(b.get("keyword"))?,
        whole_word: whole_word(b.get("whole_word"))?.unwrap_or(true),
    });
    let f = save(&api, me, draft).await?;
    let k = f
        .keywords
        .last()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(json(&keyword_json(k)))
}

async fn keyword_show(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (f, id) = owner_of(&api, auth.account.id, &path, true).await?;
    let k = f.keywords.iter().find(|k| k.id == id);
    Ok(json(&k.map(keyword_json)))
}

async fn keyword_update(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Fields(b): Fields,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let (f, id) = owner_of(&api, me, &path, true).await?;
    let mut draft = draft_of(&f);
    for k in draft.keywords.iter_mut().filter(|k| k.id == Some(id)) {
        if b.get("keyword").is_some() {
            k.keyword = keyword_text(b.get("keyword"))?;
        }
        if let Some(w) = whole_word(b.get("whole_word"))? {
            k.whole_word = w;
        }
    }
    let f = save(&api, me, draft).await?;
    let k = f.keywords.iter().find(|k| k.id == id);
    Ok(json(&k.map(keyword_json)))
}

async fn keyword_delete(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let (f, id) = owner_of(&api, me, &path, true).await?;
    let mut draft = draft_of(&f);
    draft.keywords.retain(|k| k.id != Some(id));
    save(&api, me, draft).await?;
    Ok(json(&json!({})))
}

fn status_json(id: Id, status_id: Id) -> Value {
    json!({ "id": id.to_string(), "status_id": status_id.to_string() })
}

async fn statuses(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let f = filter_of(&api, auth.account.id, &path).await?;
    Ok(json(
        &f.statuses
            .iter()
            .map(|s| status_json(s.id, s.status_id))
            .collect::<Vec<_>>(),
    ))
}

async fn add_status(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Fields(b): Fields,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let f = filter_of(&api, me, &path).await?;
    let status_id: Id = fields::text(b.get("status_id"))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| ApiError::invalid("status_id must be a status id"))?;
    let Some(post) = api.posts_by_ids(&[status_id]).await?.into_iter().next() else {
        return Err(ApiError::not_found("Record"));
    };
    if !crate::hydrate::can_see(&api, Some(me), &post).await? {
        return Err(ApiError::not_found("Record"));
    }
    if f.statuses.iter().any(|s| s.status_id == status_id) {
        return Err(ApiError::invalid(
            "Validation failed: Status has already been taken",
        ));
    }
    let mut draft = draft_of(&f);
    draft.statuses.push(StatusDraft {
        id: None,
        status_id,
    });
    let f = save(&api, me, draft).await?;
    let s = f
        .statuses
        .last()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(json(&status_json(s.id, s.status_id)))
}

async fn status_show(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (f, id) = owner_of(&api, auth.account.id, &path, false).await?;
    let s = f.statuses.iter().find(|s| s.id == id);
    Ok(json(&s.map(|s| status_json(s.id, s.status_id))))
}

async fn status_delete(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let (f, id) = owner_of(&api, me, &path, false).await?;
    let mut draft = draft_of(&f);
    draft.statuses.retain(|s| s.id != Some(id));
    save(&api, me, draft).await?;
    Ok(json(&json!({})))
}

// ---- v1: each keyword is a filter ----------------------------------------------------------

fn v1_json(f: &Filter, keyword: Id) -> Option<Value> {
    let k = f.keywords.iter().find(|k| k.id == keyword)?;
    Some(json!({
        "id": k.id.to_string(),
        "phrase": k.keyword,
        "context": f.context.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "whole_word": k.whole_word,
        "expires_at": f.expires_at_ms.map(iso8601),
        "irreversible": f.action == FilterAction::Hide,
    }))
}

async fn v1_list(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    let all = api.store.filters_of(auth.account.id).await?;
    let body: Vec<Value> = all
        .iter()
        .flat_map(|f| f.keywords.iter().filter_map(|k| v1_json(f, k.id)))
        .collect();
    Ok(json(&body))
}

async fn v1_show(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (f, id) = owner_of(&api, auth.account.id, &path, true).await?;
    Ok(json(&v1_json(&f, id)))
}

fn v1_action(b: &Value) -> ApiResult<Option<FilterAction>> {
    Ok(
        fields::boolean("irreversible", b.get("irreversible"))?.map(|hide| {
            if hide {
                FilterAction::Hide
            } else {
                FilterAction::Warn
            }
        }),
    )
}

async fn v1_create(api: web::Data<Api>, auth: Auth, Fields(b): Fields) -> ApiResult<HttpResponse> {
    let phrase = fields::text(b.get("phrase"))
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("Validation failed: Phrase can't be blank"))?;
    let context = contexts(b.get("context"))?
        .ok_or_else(|| ApiError::invalid("Validation failed: Context can't be blank"))?;
    let draft = FilterDraft {
        id: None,
        title: phrase.clone(),
        context,
        action: v1_action(&b)?.unwrap_or_default(),
        expires_at_ms: expiry(&b)?.flatten(),
        keywords: vec![KeywordDraft {
            id: None,
            keyword: phrase,
            whole_word: whole_word(b.get("whole_word"))?.unwrap_or(true),
        }],
        statuses: Vec::new(),
    };
    let f = save(&api, auth.account.id, draft).await?;
    let id = f.keywords.first().map(|k| k.id).unwrap_or(f.id);
    Ok(json(&v1_json(&f, id)))
}

async fn v1_update(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Fields(b): Fields,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let (f, id) = owner_of(&api, me, &path, true).await?;
    let mut draft = draft_of(&f);
    if let Some(context) = contexts(b.get("context"))? {
        draft.context = context;
    }
    if let Some(a) = v1_action(&b)? {
        draft.action = a;
    }
    if let Some(e) = expiry(&b)? {
        draft.expires_at_ms = e;
    }
    for k in draft.keywords.iter_mut().filter(|k| k.id == Some(id)) {
        if b.get("phrase").is_some() {
            k.keyword = keyword_text(b.get("phrase"))?;
        }
        if let Some(w) = whole_word(b.get("whole_word"))? {
            k.whole_word = w;
        }
    }
    let f = save(&api, me, draft).await?;
    Ok(json(&v1_json(&f, id)))
}

/// Removes the keyword, and its filter when nothing else is left in it.
async fn v1_delete(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let (f, id) = owner_of(&api, me, &path, true).await?;
    if f.keywords.len() == 1 && f.statuses.is_empty() {
        api.store.delete_filter(me, f.id).await?;
        api.filters.forget(me).await;
    } else {
        let mut draft = draft_of(&f);
        draft.keywords.retain(|k| k.id != Some(id));
        save(&api, me, draft).await?;
    }
    Ok(json(&json!({})))
}
